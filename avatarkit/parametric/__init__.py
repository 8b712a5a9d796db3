"""Parametric body and face models behind one interface (:class:`ParametricModel`).

- :mod:`avatarkit.parametric.base`: :class:`ModelOutput` and the :class:`ParametricModel`
  protocol that fitting code depends on.
- :mod:`avatarkit.parametric.anny`: the Anny body model (loading, its frame, derived
  labels and landmarks) and ``AnnyModel``, its :class:`ParametricModel`.
- :mod:`avatarkit.parametric.anny_head`: the head part of Anny's mesh (``synth --part head``
  and the Anny face model).
- :mod:`avatarkit.parametric.face_landmarks`: landmarks as barycentric embeddings on a
  model's mesh; the 68 iBUG points and H3DS's six on Anny.
- :mod:`avatarkit.parametric.face`: the :class:`FaceModel` protocol (common groups,
  :class:`FaceOutput` with ``landmarks68``, ``h3ds`` and the pivot, priors) and
  :func:`load_face_model`; the models are ``anny_face.AnnyFaceModel`` (Anny's head) and
  ``flame.FlameModel`` (a user's FLAME file, read without chumpy).

Importing this package (or ``base``, ``face``, ``face_landmarks``, ``anny_head``) imports no
torch; ``anny``, ``anny_face`` and ``flame`` do.
"""

from avatarkit.parametric.base import ModelOutput, ParametricModel, axis_angle_to_matrix
from avatarkit.parametric.face import FaceModel, FaceOutput, GroupPrior, load_face_model

__all__ = [
    "FaceModel",
    "FaceOutput",
    "GroupPrior",
    "ModelOutput",
    "ParametricModel",
    "axis_angle_to_matrix",
    "load_face_model",
]
