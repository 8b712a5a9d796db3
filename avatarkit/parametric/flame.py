"""FLAME (Li et al. 2017) as a face model, read from the user's own FLAME file without chumpy.

FLAME's files are not shipped (its licence asks each user to register and download them);
``track-face --model flame --flame-model flame2023.pkl`` reads one. Its pickles
(``generic_model.pkl``, ``flame2023.pkl``, ...) hold chumpy arrays, and chumpy does not
import on current NumPy, so :func:`read_flame` reads them with a restricted unpickler:
chumpy's classes become a stand-in that keeps the pickled state (a chumpy ``Ch`` keeps its
array under ``x``), scipy's sparse matrices a stand-in rebuilt as a dense array, NumPy's
arrays themselves; any other class is refused (a pickle can run code: only data is read).

:class:`FlameModel` is FLAME's standard forward (as FLAME's own code and smplx compute it):
identity and expression blend shapes, joints regressed from the shaped template, pose-corrective
blend shapes, five joints (root, neck, jaw, left eye, right eye) by linear blend skinning.
FLAME works in metres, +Y up, the face looking +Z, +X the subject's left (its template is
rendered frontally by a camera on +Z: DECA's orthographic camera only flips y and z into image
axes), which is our world frame, so nothing is turned.

Speed (CPU, one thread, float32, forward and backward through every group with landmarks, a
FLAME-sized stand-in: 5023 vertices, 100 + 50 components): 4.5 ms at batch 1, 10 ms at batch 8.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avatarkit.errors import InputError, OptionError
from avatarkit.parametric.face import FACE_LANDMARK_NAMES, FaceOutput, GroupPrior
from avatarkit.parametric.face_landmarks import H3DS_NAMES, IBUG68_NAMES, LandmarkEmbedding, ibug68_group

FLAME_KEYS = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f")
"""What a FLAME model file must hold."""

SHAPE_COMPONENTS = 300
"""FLAME's ``shapedirs`` are its 300 identity components, then its expression components (100)."""

FLAME_JOINTS = ("root", "neck", "jaw", "left_eye", "right_eye")
"""FLAME's five joints, in its order: ``rotation`` turns the root, the pivot."""

LANDMARK_FILE = "landmark_embedding.npy"
"""The landmark embedding looked for next to the model file when none is given."""

SHAPE_STD = 1.0
"""Prior scale of FLAME's identity and expression coefficients: its components are scaled by
their standard deviations, so the coefficients are standard normal."""
JAW_STD = 0.2
"""Prior scale of the jaw's rotation, radians."""
NECK_STD = 0.3
"""Prior scale of the ``neck`` rotation, radians."""
EYES_STD = 0.25
"""Prior scale of each eye's rotation, radians."""


# ----------------------------------------------------------------------------- reading


class _Refused(Exception):
    """A pickle asked for a class that a FLAME file does not hold."""


class _ChumpyObject:
    """What a chumpy object unpickles to: its class's name and its pickled state."""

    chumpy_class = "chumpy"

    def __setstate__(self, state: Any) -> None:
        self.state = state[0] if isinstance(state, tuple) else state


class _SparseMatrix:
    """What a scipy sparse matrix unpickles to: its format and its pickled state."""

    sparse_format = "csc"

    def __setstate__(self, state: Any) -> None:
        self.state = state[0] if isinstance(state, tuple) else state


_SAFE_GLOBALS = {
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("copyreg", "_reconstructor"),
    ("builtins", "object"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "slice"),
    ("builtins", "complex"),
    ("_codecs", "encode"),
    ("collections", "OrderedDict"),
}
_RENAMED = {"copy_reg": "copyreg", "__builtin__": "builtins", "numpy.core": "numpy._core"}


def _torch_storage_from_bytes(data: bytes) -> Any:
    """torch's ``_load_from_bytes`` for a tensor's storage, with torch's safe loader."""
    return torch.load(io.BytesIO(data), weights_only=True)


class _DataUnpickler(pickle.Unpickler):
    """Unpickles arrays and containers only; chumpy and scipy sparse objects as stand-ins.

    With ``tensors``, torch tensors too (DECA's landmark embedding holds some), their storage
    read by torch's ``weights_only`` loader.
    """

    def __init__(self, file, tensors: bool = False) -> None:
        super().__init__(file, encoding="latin1")  # FLAME's pickles come from Python 2
        self._tensors = tensors
        self._classes: dict[tuple[str, str], type] = {}

    def find_class(self, module: str, name: str) -> Any:
        for old, new in _RENAMED.items():
            if module == old or module.startswith(old + "."):
                module = new + module[len(old) :]
        if module == "chumpy" or module.startswith("chumpy."):
            return self._stand_in(module, name, _ChumpyObject, chumpy_class=f"{module}.{name}")
        if module.startswith("scipy.sparse") and name in ("csc_matrix", "csr_matrix", "coo_matrix"):
            return self._stand_in(module, name, _SparseMatrix, sparse_format=name[:3])
        if self._tensors and (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return super().find_class(module, name)
        if self._tensors and (module, name) == ("torch.storage", "_load_from_bytes"):
            return _torch_storage_from_bytes
        if (module, name) in _SAFE_GLOBALS:
            return super().find_class(module, name)
        raise _Refused(f"{module}.{name}")

    def _stand_in(self, module: str, name: str, base: type, **attributes: str) -> type:
        key = (module, name)
        if key not in self._classes:
            self._classes[key] = type(name, (base,), attributes)
        return self._classes[key]


def _load(path: Path, what: str, tensors: bool = False) -> Any:
    """The data of a pickle (``.pkl``) or of a NumPy file (``.npy``, ``.npz``), restricted."""
    try:
        with open(path, "rb") as file:
            head = file.read(6)
            file.seek(0)
            if head == b"\x93NUMPY":
                return _load_npy(file, tensors)
            if head[:2] == b"PK":
                with np.load(file, allow_pickle=False) as archive:
                    return {key: archive[key] for key in archive.files}
            return _DataUnpickler(file, tensors).load()
    except FileNotFoundError:
        raise InputError(f"no such {what} file", path) from None
    except IsADirectoryError:
        raise InputError(f"is a folder, not a {what} file", path) from None
    except _Refused as refused:
        raise InputError(f"not a {what} file: the pickle holds a {refused} object, not arrays", path) from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as error:
        raise InputError(f"not a {what} file: cannot read it as a pickle ({type(error).__name__})", path) from None


def _load_npy(file, tensors: bool) -> Any:
    version = np.lib.format.read_magic(file)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(file)
    else:
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(file)
    if dtype.hasobject:
        array = _DataUnpickler(file, tensors).load()
    else:
        count = int(np.prod(shape))
        array = np.frombuffer(file.read(count * dtype.itemsize), dtype=dtype, count=count)
        array = array.reshape(shape, order="F" if fortran else "C")
    array = np.asarray(array)
    return array.item() if array.dtype == object and array.shape == () else array


def _array(value: Any, key: str, path: Path) -> np.ndarray:
    """A NumPy array from an array, a chumpy stand-in, a sparse stand-in or a tensor."""
    if isinstance(value, _ChumpyObject):
        state = getattr(value, "state", None)
        if not isinstance(state, dict) or "x" not in state:
            raise InputError(
                f"not a FLAME model: {key} is a {value.chumpy_class} expression without stored values", path
            )
        return _array(state["x"], key, path)
    if isinstance(value, _SparseMatrix):
        return _sparse_to_dense(value, key, path)
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    try:
        return np.asarray(value)
    except (TypeError, ValueError):
        raise InputError(f"not a FLAME model: {key} is a {type(value).__name__}, not an array", path) from None


def _sparse_to_dense(value: _SparseMatrix, key: str, path: Path) -> np.ndarray:
    import scipy.sparse

    state = getattr(value, "state", None) or {}
    shape = state.get("_shape", state.get("shape"))
    try:
        if value.sparse_format == "coo":
            rows, cols = state["coords"] if "coords" in state else (state["row"], state["col"])
            matrix = scipy.sparse.coo_matrix((state["data"], (rows, cols)), shape=shape)
        else:
            cls = scipy.sparse.csc_matrix if value.sparse_format == "csc" else scipy.sparse.csr_matrix
            matrix = cls((state["data"], state["indices"], state["indptr"]), shape=shape)
        return np.asarray(matrix.toarray())
    except (KeyError, TypeError, ValueError):
        raise InputError(f"not a FLAME model: {key} is a sparse matrix that cannot be rebuilt", path) from None


class FlameData:
    """A FLAME model file's arrays (float64), checked.

    Attributes:
        v_template: (V, 3) the template's vertices, metres.
        shapedirs: (V, 3, K) identity (the first :data:`SHAPE_COMPONENTS`) then expression
            components.
        posedirs: (V, 3, 9 (J - 1)) pose-corrective blend shapes.
        j_regressor: (J, V) joints from the shaped vertices (dense).
        weights: (V, J) skinning weights.
        parents: (J,) int64, each joint's parent (-1 for the root).
        faces: (F, 3) int64.
    """

    def __init__(self, raw: dict, path: Path) -> None:
        def bad(message: str) -> InputError:
            return InputError(f"not a FLAME model: {message}", path)

        def get(key: str) -> np.ndarray:
            value = _array(raw[key], key, path)
            try:
                return value.astype(np.float64)
            except (TypeError, ValueError):
                raise bad(f"{key} holds {value.dtype} values, not numbers") from None

        self.v_template = get("v_template")
        if self.v_template.ndim != 2 or self.v_template.shape[1] != 3 or len(self.v_template) < 3:
            raise bad(f"v_template is {self.v_template.shape}, not (V, 3)")
        n = len(self.v_template)
        self.shapedirs = get("shapedirs")
        if self.shapedirs.ndim != 3 or self.shapedirs.shape[:2] != (n, 3):
            raise bad(f"shapedirs is {self.shapedirs.shape}, not ({n}, 3, K)")
        if self.shapedirs.shape[2] <= SHAPE_COMPONENTS:
            raise bad(
                f"shapedirs has {self.shapedirs.shape[2]} components: no expression after FLAME's 300 of identity"
            )
        self.weights = get("weights")
        if self.weights.ndim != 2 or self.weights.shape != (n, len(FLAME_JOINTS)):
            raise bad(f"weights is {self.weights.shape}, not ({n}, {len(FLAME_JOINTS)}): FLAME has five joints")
        joints = len(FLAME_JOINTS)
        self.j_regressor = get("J_regressor")
        if self.j_regressor.shape != (joints, n):
            raise bad(f"J_regressor is {self.j_regressor.shape}, not ({joints}, {n})")
        self.posedirs = get("posedirs")
        if self.posedirs.shape != (n, 3, 9 * (joints - 1)):
            raise bad(f"posedirs is {self.posedirs.shape}, not ({n}, 3, {9 * (joints - 1)})")
        kintree = _array(raw["kintree_table"], "kintree_table", path)
        if kintree.ndim != 2 or kintree.shape != (2, joints):
            raise bad(f"kintree_table is {kintree.shape}, not (2, {joints})")
        parents = kintree[0].astype(np.int64)
        parents[0] = -1  # FLAME stores the root's parent as the largest uint32
        if any(not 0 <= parents[i] < i for i in range(1, joints)):
            raise bad(f"kintree_table's parents {parents.tolist()} are not a tree from joint 0")
        self.parents = parents
        faces = _array(raw["f"], "f", path)
        if faces.ndim != 2 or faces.shape[1] != 3 or not np.issubdtype(faces.dtype, np.integer) or len(faces) == 0:
            raise bad(f"f is {faces.shape} {faces.dtype}, not (F, 3) integers")
        if faces.min() < 0 or faces.max() >= n:
            raise bad(f"f has vertex indices outside 0 .. {n - 1}")
        self.faces = faces.astype(np.int64)
        for key in ("v_template", "shapedirs", "posedirs", "j_regressor", "weights"):
            if not np.isfinite(getattr(self, key)).all():
                raise bad(f"{key} has values that are not finite")


def read_flame(path: str | Path) -> FlameData:
    """Read a FLAME model file (``.pkl``) without chumpy.

    Raises:
        InputError: a missing or unreadable file, or one that is not FLAME's (not a pickle,
            other classes than arrays, missing keys, wrong shapes); one line naming the file.
    """
    path = Path(path)
    raw = _load(path, "FLAME model")
    if not isinstance(raw, dict):
        raise InputError(f"not a FLAME model: the pickle holds a {type(raw).__name__}, not a dict of arrays", path)
    missing = [key for key in FLAME_KEYS if key not in raw]
    if missing:
        raise InputError(f"not a FLAME model: no {', '.join(missing)}", path)
    return FlameData(raw, path)


def read_flame_landmarks(path: str | Path, faces: np.ndarray) -> LandmarkEmbedding:
    """The 68 iBUG points on a FLAME mesh, from a landmark embedding file.

    Reads DECA's ``landmark_embedding.npy`` (a dict): points 17-67 are its
    ``static_lmk_faces_idx`` / ``static_lmk_bary_coords`` (FLAME's 51 static points), points
    0-16 (the jaw line) the first 17 of ``full_lmk_faces_idx`` / ``full_lmk_bary_coords``
    (FLAME's contour for a frontal face, used as a static fallback: FLAME's dynamic contour,
    looked up by head yaw, is not used). Also reads a dict, ``.pkl`` or ``.npz`` with 68
    ``lmk_face_idx`` / ``lmk_b_coords`` (FLAME's static-embedding layout with all 68 points).

    Raises:
        InputError: not such a file, fewer than 68 points (FLAME's 51-point static embedding
            has no jaw line), or faces out of range for ``faces``.
    """
    path = Path(path)
    raw = _load(path, "FLAME landmark embedding", tensors=True)
    if not isinstance(raw, dict):
        raise InputError(f"not a FLAME landmark embedding: it holds a {type(raw).__name__}, not a dict", path)

    def pair(faces_key: str, bary_key: str) -> tuple[np.ndarray, np.ndarray] | None:
        if faces_key not in raw or bary_key not in raw:
            return None
        face_index = _array(raw[faces_key], faces_key, path).reshape(-1).astype(np.int64)
        bary = _array(raw[bary_key], bary_key, path).astype(np.float64).reshape(-1, 3)
        if len(face_index) != len(bary):
            raise InputError(f"{faces_key} has {len(face_index)} faces for {len(bary)} weights", path)
        return face_index, bary

    full = pair("full_lmk_faces_idx", "full_lmk_bary_coords") or pair("lmk_face_idx", "lmk_b_coords")
    static = pair("static_lmk_faces_idx", "static_lmk_bary_coords")
    if full is None or len(full[0]) != 68:
        count = len(full[0]) if full else len(static[0]) if static else 0
        raise InputError(
            f"not a 68-point FLAME landmark embedding ({count} points; FLAME's 51 static points have no jaw line: "
            "use DECA's landmark_embedding.npy)",
            path,
        )
    face_index, bary = full
    if static is not None and len(static[0]) == 51:
        face_index = np.concatenate([face_index[:17], static[0]])
        bary = np.concatenate([bary[:17], static[1]])
    if face_index.min() < 0 or face_index.max() >= len(faces):
        raise InputError(f"landmark faces outside the model's {len(faces)} faces", path)
    return LandmarkEmbedding.from_faces(IBUG68_NAMES, faces, face_index, bary)


def h3ds_from_ibug68(ibug: LandmarkEmbedding, vertices: np.ndarray, faces: np.ndarray) -> LandmarkEmbedding:
    """H3DS's six on a face mesh with the 68 iBUG points, by rule (on the neutral mesh,
    our frame): ``nose_tip`` is point 30, ``nose_base`` (subnasale) 33, ``right_lips`` 48,
    ``left_lips`` 54; each eye (the cornea's apex) is where a frontal ray (along -Z) through
    the centre of that eye's six points first meets the mesh (the nearest point of the mesh
    to that centre if the ray misses)."""
    from avatarkit.parametric.face_landmarks import FrontalRays, snap_to_surface

    names = {"nose_tip": 30, "nose_base": 33, "right_lips": 48, "left_lips": 54}
    points = ibug.points(vertices)
    rays = FrontalRays(vertices, faces, np.ones(len(faces), dtype=bool))
    face_index, bary = [], []
    for name in H3DS_NAMES:
        if name in names:
            face_index.append(ibug.face_index[names[name]])
            bary.append(ibug.bary[names[name]])
            continue
        centre = points[list(ibug68_group(name))].mean(axis=0)
        hit, face = rays.frontal_faces(centre[:1], centre[1:2])
        allowed = np.zeros(len(faces), dtype=bool)
        if face[0] >= 0:
            allowed[face[0]] = True
            target = hit[0]
        else:
            allowed[:] = True
            target = centre
        f, b, _ = snap_to_surface(target[None], vertices, faces, allowed)
        face_index.append(int(f[0]))
        bary.append(b[0])
    return LandmarkEmbedding.from_faces(H3DS_NAMES, faces, face_index, np.array(bary))


# ----------------------------------------------------------------------------- the model


class FlameModel(torch.nn.Module):
    """FLAME as a :class:`~avatarkit.parametric.face.FaceModel` (FLAME's frame is ours).

    Parameter groups (``(B, *shape)``; omitted groups neutral (zero); batch 1 broadcasts):

    - ``identity`` (B, n_shape): FLAME's shape coefficients (its first n_shape of 300).
    - ``expression`` (B, n_expression): FLAME's expression coefficients.
    - ``jaw``, ``neck`` (B, 3), ``eyes`` (B, 2, 3): FLAME's jaw, neck and eyeball rotations
      (joints 2, 1, 3 and 4: the subject's left eye first), axis-angle, world axes.
    - ``rotation`` (B, 3): FLAME's global rotation, about its root joint (the **pivot**,
      regressed by FLAME's ``J_regressor`` from the shaped head, so it moves with identity
      and expression); ``translation`` (B, 3) added after, as FLAME's ``transl``. The same numbers mean the same head in FLAME's own
      code (smplx's ``global_orient``, ``neck_pose``, ``jaw_pose``, ``leye_pose``,
      ``reye_pose``, ``transl``, ``betas``, ``expression``).

    Outputs (:class:`~avatarkit.parametric.face.FaceOutput`, metres): ``vertices`` (B, V, 3)
    (5023 for FLAME); ``joints`` (B, 5, 3) (:data:`FLAME_JOINTS`); ``landmarks`` (B, 74, 3):
    the 68 iBUG points of the landmark embedding (:func:`read_flame_landmarks`) then H3DS's
    six made from them (:func:`h3ds_from_ibug68`); none without an embedding.

    Args:
        path: FLAME's ``.pkl`` (``generic_model.pkl``, ``flame2023.pkl``, ...).
        landmarks: its landmark embedding; default ``landmark_embedding.npy`` next to ``path``
            if there is one, else the model has no landmarks.
        n_shape: identity components used (default 100; at most 300).
        n_expression: expression components used (default 50, or all the file has if fewer).
        device, dtype: where and how the model computes.

    Raises:
        InputError: ``path`` or ``landmarks`` is not FLAME's (one line naming the file).
        OptionError: more components asked for than the file has.
    """

    name = "flame"
    faces: torch.Tensor
    joint_names: tuple[str, ...]
    landmark_names: tuple[str, ...]
    _template: torch.Tensor
    _shape_dirs: torch.Tensor
    _expression_dirs: torch.Tensor
    _pose_dirs: torch.Tensor
    _regressor: torch.Tensor
    _weights: torch.Tensor
    _landmark_vertices: torch.Tensor
    _landmark_bary: torch.Tensor

    def __init__(
        self,
        path: str | Path,
        landmarks: str | Path | None = None,
        n_shape: int | None = None,
        n_expression: int | None = None,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        path = Path(path)
        data = read_flame(path)
        available = data.shapedirs.shape[2] - SHAPE_COMPONENTS
        n_shape = 100 if n_shape is None else n_shape
        n_expression = min(50, available) if n_expression is None else n_expression
        if not 0 <= n_shape <= SHAPE_COMPONENTS:
            raise OptionError(f"FLAME has {SHAPE_COMPONENTS} identity components, {n_shape} asked for")
        if not 0 <= n_expression <= available:
            raise OptionError(f"{path.name} has {available} expression components, {n_expression} asked for")
        self.path = path
        self.n_shape, self.n_expression = n_shape, n_expression
        self.parents: tuple[int, ...] = tuple(int(p) for p in data.parents)
        n = len(data.v_template)

        def buffer(name: str, value, kind=None) -> None:
            self.register_buffer(name, torch.as_tensor(value, dtype=kind or dtype, device=device), persistent=False)

        def directions(block: np.ndarray) -> np.ndarray:  # (V, 3, K) -> (K, V * 3)
            return block.reshape(n * 3, -1).T.copy()

        buffer("faces", data.faces, torch.int64)
        buffer("_template", data.v_template)
        buffer("_shape_dirs", directions(data.shapedirs[:, :, :n_shape]))
        expression = data.shapedirs[:, :, SHAPE_COMPONENTS : SHAPE_COMPONENTS + n_expression]
        buffer("_expression_dirs", directions(expression))
        buffer("_pose_dirs", directions(data.posedirs))
        buffer("_regressor", data.j_regressor)
        buffer("_weights", data.weights)
        self.joint_names = FLAME_JOINTS

        if landmarks is None and (path.parent / LANDMARK_FILE).is_file():
            landmarks = path.parent / LANDMARK_FILE
        self.landmarks_path = None if landmarks is None else Path(landmarks)
        self.embeddings: dict[str, LandmarkEmbedding] = {}
        if self.landmarks_path is not None:
            ibug = read_flame_landmarks(self.landmarks_path, data.faces)
            self.embeddings = {"ibug68": ibug, "h3ds6": h3ds_from_ibug68(ibug, data.v_template, data.faces)}
            both = [self.embeddings["ibug68"], self.embeddings["h3ds6"]]
            buffer("_landmark_vertices", np.concatenate([e.vertex_index for e in both]), torch.int64)
            buffer("_landmark_bary", np.concatenate([e.bary for e in both]))
            self.landmark_names = FACE_LANDMARK_NAMES
        else:
            buffer("_landmark_vertices", np.zeros((0, 3)), torch.int64)
            buffer("_landmark_bary", np.zeros((0, 3)))
            self.landmark_names = ()

    @property
    def device(self) -> torch.device:
        return self._template.device

    @property
    def dtype(self) -> torch.dtype:
        return self._template.dtype

    def parameter_shapes(self) -> dict[str, tuple[int, ...]]:
        """``identity`` (n_shape,), ``expression`` (n_expression,), ``jaw``, ``neck`` (3,),
        ``eyes`` (2, 3), ``rotation``, ``translation`` (3,)."""
        return {
            "identity": (self.n_shape,),
            "expression": (self.n_expression,),
            "jaw": (3,),
            "neck": (3,),
            "eyes": (2, 3),
            "rotation": (3,),
            "translation": (3,),
        }

    def zero_parameters(self, batch: int = 1) -> dict[str, torch.Tensor]:
        """Neutral groups (all zero: FLAME's template), ``(batch, *shape)``."""
        return {
            name: torch.zeros((batch, *shape), dtype=self.dtype, device=self.device)
            for name, shape in self.parameter_shapes().items()
        }

    def prior(self) -> dict[str, GroupPrior]:
        """Zero-mean Gaussians: identity and expression standard normal (FLAME's scaling),
        ``jaw`` 0.2 rad, ``neck`` 0.3 rad, ``eyes`` 0.25 rad; ``rotation`` and ``translation``
        free."""
        scales = {"identity": SHAPE_STD, "expression": SHAPE_STD, "jaw": JAW_STD, "neck": NECK_STD, "eyes": EYES_STD}
        neutral = self.zero_parameters(1)
        return {name: GroupPrior(neutral[name][0], torch.full_like(neutral[name][0], s)) for name, s in scales.items()}

    def forward(self, **groups: torch.Tensor) -> FaceOutput:
        """FLAME's forward for the given groups (see the class docstring)."""
        from avatarkit.parametric.base import axis_angle_to_matrix, broadcast_groups

        values = broadcast_groups(
            groups, self.parameter_shapes(), self.zero_parameters(1), self.dtype, self.device, "FlameModel"
        )
        batch = values["identity"].shape[0]
        offsets = values["identity"] @ self._shape_dirs + values["expression"] @ self._expression_dirs
        shaped = self._template + offsets.view(batch, -1, 3)
        rest_joints = torch.einsum("jv,bvc->bjc", self._regressor, shaped)
        pose = torch.stack(
            (values["rotation"], values["neck"], values["jaw"], values["eyes"][:, 0], values["eyes"][:, 1]), dim=1
        )
        rotations = axis_angle_to_matrix(pose)  # (B, 5, 3, 3)
        eye = torch.eye(3, dtype=self.dtype, device=self.device)
        features = (rotations[:, 1:] - eye).reshape(batch, -1)
        posed = shaped + (features @ self._pose_dirs).view(batch, -1, 3)

        # the kinematic chain: each joint's world rotation and position
        world_rotations: list[torch.Tensor] = []
        world_positions: list[torch.Tensor] = []
        for j, parent in enumerate(self.parents):
            if parent < 0:
                world_rotations.append(rotations[:, j])
                world_positions.append(rest_joints[:, j])
            else:
                offset = rest_joints[:, j] - rest_joints[:, parent]
                world_rotations.append(world_rotations[parent] @ rotations[:, j])
                world_positions.append(world_positions[parent] + (world_rotations[parent] @ offset[..., None])[..., 0])
        chain_rotations = torch.stack(world_rotations, dim=1)  # (B, J, 3, 3)
        joints = torch.stack(world_positions, dim=1)  # (B, J, 3)
        # skinning transforms x -> G_j (x - J_j) + P_j, blended by the weights, column by column
        shifts = joints - (chain_rotations @ rest_joints[..., None])[..., 0]
        vertices = torch.einsum("vj,bji->bvi", self._weights, shifts)
        for column in range(3):
            blended = torch.einsum("vj,bji->bvi", self._weights, chain_rotations[..., column])
            vertices = vertices + blended * posed[..., column, None]
        shift = values["translation"][:, None]
        vertices, joints = vertices + shift, joints + shift
        landmarks = (vertices[:, self._landmark_vertices] * self._landmark_bary[..., None]).sum(-2)
        return FaceOutput(vertices, joints, landmarks, self.joint_names, self.landmark_names)
