"""Parametric body and face models behind one interface (:class:`ParametricModel`).

- :mod:`avatarkit.parametric.base`: :class:`ModelOutput` and the :class:`ParametricModel`
  protocol that fitting code depends on.
- :mod:`avatarkit.parametric.anny`: the Anny body model (loading, its frame, derived
  labels and landmarks) and ``AnnyModel``, its :class:`ParametricModel`.
- :mod:`avatarkit.parametric.face_landmarks`: landmarks as barycentric embeddings on a
  model's mesh; the 68 iBUG points and H3DS's six on Anny.

Importing this package (or ``base``) imports no torch; ``avatarkit.parametric.anny`` does.
"""

from avatarkit.parametric.base import ModelOutput, ParametricModel, axis_angle_to_matrix

__all__ = ["ModelOutput", "ParametricModel", "axis_angle_to_matrix"]
