"""The interface of face models: one protocol, more than one model (Anny's head, FLAME).

A face model is a :class:`~avatarkit.parametric.base.ParametricModel` of a head whose
groups, outputs and landmarks are the same whatever the model, so that a face fit
(``track-face``) depends on :class:`FaceModel` only. Models:
:class:`~avatarkit.parametric.anny_face.AnnyFaceModel` (the default: nothing to register or
download) and :class:`~avatarkit.parametric.flame.FlameModel` (a FLAME file the user has);
:func:`load_face_model` makes either by name. ``docs/face_models.md`` has the details.

Parameter groups (``B`` the batch; every group is ``(B, *shape)``; omitted groups are
neutral; groups of batch 1 broadcast), where the model has them:

| group | shape | meaning |
|---|---|---|
| ``identity`` | (I,) | the person's shape (model-specific units; :meth:`FaceModel.prior`) |
| ``expression`` | (E,) | expression coefficients (model-specific) |
| ``jaw`` | (3,) | the jaw's rotation about its joint (FLAME; Anny opens its jaw by expression) |
| ``neck`` | (3,) | the head's rotation on the neck, about the model's neck joint |
| ``eyes`` | (2, 3) | each eyeball's rotation about its centre: the subject's left eye, then the right |
| ``rotation`` | (3,) | the whole head's rotation about the **pivot** |
| ``translation`` | (3,) | metres, added last: the pivot ends at ``pivot + translation`` |

Rotations are axis-angle vectors (axis times angle, radians) in the world axes of the rest
pose, composed down the chain as in SMPL and FLAME: a child's rotation is carried by its
parents'. The **pivot** is a point of the model (``FaceOutput.pivot``, the first joint):
FLAME's root joint, Anny's head/neck joint; each model's docstring says where it is.
``x_world = R(rotation) @ (x - pivot) + pivot + translation`` for every output point ``x``
of the posed head.

Outputs (:class:`FaceOutput`, a :class:`~avatarkit.parametric.base.ModelOutput`) are in
our world frame: metres, +Y up, the face looking +Z, +X the subject's left
(``docs/conventions.md``): ``vertices`` (B, V, 3) of the head mesh (``faces``), ``joints``
(B, J, 3) with the pivot first, and ``landmarks`` (B, 74, 3): the 68 iBUG points
(``landmarks68``) then the six H3DS landmarks (``h3ds``), each a barycentric point of the
mesh (:attr:`FaceModel.embeddings`).

A fitter regularises each group with :meth:`FaceModel.prior`: a mean and a standard
deviation per entry (a diagonal Gaussian; ``((x - mean) / std) ** 2`` summed is its negative
log-density up to a constant). The groups without a prior (``rotation``, ``translation``)
are free.

This module imports no torch at import time.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Protocol, runtime_checkable

from avatarkit.parametric.base import ModelOutput, ParametricModel
from avatarkit.parametric.face_landmarks import H3DS_NAMES, IBUG68_NAMES

if TYPE_CHECKING:
    from torch import Tensor

    from avatarkit.parametric.face_landmarks import LandmarkEmbedding

FACE_MODELS = ("anny", "flame")
"""The face models :func:`load_face_model` makes (``--model``)."""

FACE_GROUPS = ("identity", "expression", "jaw", "neck", "eyes", "rotation", "translation")
"""The common group names, in this order (a model has a subset: Anny has no ``jaw``)."""

FACE_LANDMARK_NAMES: tuple[str, ...] = (*IBUG68_NAMES, *H3DS_NAMES)
"""The names of a face model's 74 landmarks: iBUG's 68 then H3DS's six."""


class GroupPrior(NamedTuple):
    """A diagonal Gaussian over one parameter group.

    Attributes:
        mean: the group's per-sample shape, on the model's device and dtype.
        std: same shape, positive: the scale a fitter divides the offset from ``mean`` by.
    """

    mean: Tensor
    std: Tensor


class FaceOutput(ModelOutput):
    """What a face model's forward returns (a :class:`ModelOutput`, in the world frame).

    ``landmarks`` (B, 74, 3) are :data:`FACE_LANDMARK_NAMES`: iBUG's 68 then H3DS's six;
    ``joints[:, 0]`` is the pivot that ``rotation`` turns the head about.
    """

    __slots__ = ()

    @property
    def landmarks68(self) -> Tensor:
        """(B, 68, 3) the iBUG-68 points (``face_landmarks.IBUG68_GROUPS`` has the layout)."""
        self._check_landmarks()
        return self.landmarks[:, :68]

    @property
    def h3ds(self) -> Tensor:
        """(B, 6, 3) the six H3DS landmarks, in ``face_landmarks.H3DS_NAMES`` order."""
        self._check_landmarks()
        return self.landmarks[:, 68:74]

    @property
    def pivot(self) -> Tensor:
        """(B, 3) the pivot of ``rotation`` (joint 0), after ``translation``."""
        return self.joints[:, 0]

    def _check_landmarks(self) -> None:
        if tuple(self.landmark_names[:74]) != FACE_LANDMARK_NAMES:
            raise ValueError(
                "this face model has no iBUG-68 and H3DS landmarks (a FLAME model read without a landmark embedding)"
            )


@runtime_checkable
class FaceModel(ParametricModel, Protocol):
    """A differentiable face model (structural type), a :class:`ParametricModel` with:

    Attributes:
        name: ``"anny"`` or ``"flame"`` (:data:`FACE_MODELS`).
        faces: (F, 3) int64 tensor, the head mesh's triangles, counter-clockwise from outside.
        joint_names: the J joints of ``FaceOutput.joints``, the pivot first.
        landmark_names: :data:`FACE_LANDMARK_NAMES` (empty for a FLAME model read without
            landmarks).
        embeddings: ``"ibug68"`` and ``"h3ds6"`` as barycentric embeddings on ``faces``
            (:class:`~avatarkit.parametric.face_landmarks.LandmarkEmbedding`), e.g. to test a
            landmark's triangle for visibility.
    """

    name: str
    embeddings: dict[str, LandmarkEmbedding]

    def prior(self) -> dict[str, GroupPrior]:
        """The Gaussian prior of each regularised group (see the module docstring)."""
        ...

    def forward(self, **groups: Tensor) -> FaceOutput:
        """Evaluate the head; omitted groups are neutral, groups of batch 1 broadcast."""
        ...

    def __call__(self, **groups: Tensor) -> FaceOutput: ...


def load_face_model(
    name: str = "anny",
    *,
    flame_model: str | Path | None = None,
    flame_landmarks: str | Path | None = None,
    n_shape: int | None = None,
    n_expression: int | None = None,
    device: str = "cpu",
    body=None,
) -> FaceModel:
    """The face model called ``name`` (``--model``).

    Args:
        name: ``"anny"`` (Anny's head) or ``"flame"``.
        flame_model: FLAME's ``.pkl`` (``generic_model.pkl``, ``flame2023.pkl``); ``flame`` only.
        flame_landmarks: FLAME's landmark embedding (default: ``landmark_embedding.npy`` next
            to ``flame_model``, if there is one); ``flame`` only.
        n_shape, n_expression: FLAME's identity and expression components used (default 100
            and 50, or fewer if the file has fewer).
        device: where the model lives.
        body: an :class:`~avatarkit.parametric.anny.AnnyBody` already loaded (``anny`` only).

    Raises:
        OptionError: an unknown name, a FLAME model without ``flame_model``, or options of the
            other model.
        InputError: a FLAME file that cannot be read as FLAME (one line naming it).
    """
    from avatarkit.errors import OptionError

    if name not in FACE_MODELS:
        raise OptionError(f"--model must be one of {', '.join(FACE_MODELS)}, got {name!r}")
    if name == "anny":
        given = [o for o, v in (("--flame-model", flame_model), ("--flame-landmarks", flame_landmarks)) if v]
        if given:
            raise OptionError(f"{' and '.join(given)} need --model flame")
        from avatarkit.parametric.anny_face import AnnyFaceModel

        return AnnyFaceModel(body, device=device)
    if flame_model is None:
        raise OptionError(
            "--model flame needs --flame-model FILE.pkl (FLAME is not shipped: download it from flame.is.tue.mpg.de)"
        )
    from avatarkit.parametric.flame import FlameModel

    return FlameModel(flame_model, landmarks=flame_landmarks, n_shape=n_shape, n_expression=n_expression, device=device)
