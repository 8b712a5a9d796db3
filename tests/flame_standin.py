"""A stand-in for FLAME's model file (FLAME itself is licensed and never shipped): FLAME's
structure with random values, pickled with chumpy arrays as FLAME's files are, and DECA's
landmark embedding layout. Shared by the face-model and track-face tests."""

from __future__ import annotations

import contextlib
import pickle
import sys
import types

import numpy as np
import scipy.sparse
import torch
import trimesh


@contextlib.contextmanager
def fake_chumpy():
    """A module ``chumpy.ch`` with a class ``Ch`` that pickles as chumpy's does (its array in
    its ``__dict__`` under ``x``), present in ``sys.modules`` only while writing."""

    class Ch:
        def __init__(self, x):
            self.x = np.asarray(x, dtype=np.float64)
            self._dirty_vars = set()
            self._itr = None
            self._depends_on_deps = {}
            self._make_dense = False
            self._make_sparse = False

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    package, module = types.ModuleType("chumpy"), types.ModuleType("chumpy.ch")
    module.Ch = Ch
    package.ch = module
    saved = {name: sys.modules.get(name) for name in ("chumpy", "chumpy.ch")}
    sys.modules.update({"chumpy": package, "chumpy.ch": module})
    try:
        yield Ch
    finally:
        for name, old in saved.items():
            if old is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = old


def stand_in_flame(seed: int = 0) -> dict:
    """FLAME's arrays with its structure (5 joints, 300 + 100 components, 36 pose
    correctives) on a small head-sized mesh, random values."""
    rng = np.random.default_rng(seed)
    sphere = trimesh.creation.icosphere(subdivisions=2, radius=0.1)
    vertices = np.array(sphere.vertices) * [0.8, 1.0, 0.9] + rng.normal(0, 0.002, sphere.vertices.shape)
    n = len(vertices)
    regressor = np.zeros((5, n))
    for j in range(5):
        ids = rng.choice(n, 6, replace=False)
        regressor[j, ids] = rng.dirichlet(np.ones(6))
    weights = rng.dirichlet(np.full(5, 0.5), size=n)
    return {
        "v_template": vertices,
        "shapedirs": rng.normal(0, 2e-3, (n, 3, 400)),
        "posedirs": rng.normal(0, 5e-3, (n, 3, 36)),
        "J_regressor": regressor,
        "weights": weights,
        "kintree_table": np.array([[2**32 - 1, 0, 1, 1, 1], [0, 1, 2, 3, 4]], dtype=np.uint32),
        "f": np.array(sphere.faces, dtype=np.uint32),
    }


def write_flame_pickle(path, model: dict) -> None:
    """Pickled as FLAME's files are: chumpy arrays, a scipy sparse regressor, protocol 2."""
    with fake_chumpy() as Ch:
        data = {
            "v_template": Ch(model["v_template"]),
            "shapedirs": Ch(model["shapedirs"]),
            "posedirs": model["posedirs"],
            "J_regressor": scipy.sparse.csc_matrix(model["J_regressor"]),
            "J": Ch(model["J_regressor"] @ model["v_template"]),
            "weights": Ch(model["weights"]),
            "kintree_table": model["kintree_table"],
            "f": model["f"],
            "bs_style": "lbs",
            "bs_type": "lrotmin",
        }
        path.write_bytes(pickle.dumps(data, protocol=2))


def stand_in_embedding(n_faces: int, seed: int = 1) -> dict:
    """DECA's landmark_embedding.npy layout: 51 static points, a 17-point contour per yaw
    (torch tensors, as DECA's file has) and a static 68-point fallback."""
    rng = np.random.default_rng(seed)
    full_faces = rng.integers(0, n_faces, 68)
    full_bary = rng.dirichlet(np.ones(3), 68)
    static_faces = rng.integers(0, n_faces, 51)  # differ from full[17:], to see which is used
    static_bary = rng.dirichlet(np.ones(3), 51)
    return {
        "static_lmk_faces_idx": static_faces,
        "static_lmk_bary_coords": static_bary,
        "dynamic_lmk_faces_idx": torch.as_tensor(rng.integers(0, n_faces, (79, 17))),
        "dynamic_lmk_bary_coords": torch.as_tensor(rng.dirichlet(np.ones(3), (79, 17))),
        "full_lmk_faces_idx": full_faces[None],
        "full_lmk_bary_coords": full_bary[None],
    }
