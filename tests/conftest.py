"""Shared fixtures. Anny is loaded once per session (its first build takes minutes)."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    if not has_cuda:
        skip = pytest.mark.skip(reason="needs a CUDA GPU")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def anny_body():
    from avatarkit.parametric.anny import AnnyBody

    return AnnyBody.load("cpu")


@pytest.fixture(scope="session")
def make_generator(anny_body):
    from avatarkit.synth.generate import HumanGenerator, SynthConfig

    def make(**kwargs):
        return HumanGenerator(SynthConfig(**kwargs), body=anny_body)

    return make


@pytest.fixture
def textured_sphere():
    """A 0.5 m sphere with random separate UV topology and a small texture."""
    from avatarkit.structures import Mesh

    s = trimesh.creation.icosphere(subdivisions=3, radius=0.5)
    rng = np.random.default_rng(0)
    n_faces = len(s.faces)
    uvs = rng.random((n_faces * 2, 2)).astype(np.float32)
    return Mesh(
        vertices=s.vertices + np.array([0.0, 1.0, 0.0]),
        faces=s.faces,
        uvs=uvs,
        face_uvs=rng.integers(0, len(uvs), (n_faces, 3)),
        texture=rng.integers(0, 256, (16, 32, 3), dtype=np.uint8),
        vertex_labels=np.arange(len(s.vertices)) % 4,
        label_names=["a", "b", "c", "d"],
    )


@pytest.fixture(scope="session")
def pifu_data(tmp_path_factory, make_generator):
    """Three Anny people as PIFu trains on them: meshes/, views/ (PIFu's orthographic rig, 8
    views of 64 x 64) and samples/ (20k points each), one file per subject by stem."""
    from avatarkit.geometry.sample_sdf import preset_config, sample_sdf
    from avatarkit.io.hdf5 import Provenance, write_artifact
    from avatarkit.render.render import RenderConfig, render
    from avatarkit.render.rigs import pifu_rig

    root = tmp_path_factory.mktemp("pifu_data")
    generator = make_generator(texture="clothes")
    for i in range(3):
        mesh = generator.subject(i)
        stem = f"human_{i:04d}"
        mesh_path = write_artifact(root / "meshes" / f"{stem}.h5", mesh)
        views = render(mesh, pifu_rig(mesh.vertices, 64, np.arange(8) * 45.0), RenderConfig())
        write_artifact(root / "views" / f"{stem}.h5", views)
        samples = sample_sdf(mesh, preset_config("pifu", points=20_000), seed=i)
        write_artifact(root / "samples" / f"{stem}.h5", samples, Provenance("test", (str(mesh_path),)))
    return root


GEOPIFU_TINY_GRID = (16, 32, 16)
"""The voxels grid of ``geopifu_data`` (``train geopifu --grid 16,32,16``)."""


@pytest.fixture(scope="session")
def geopifu_data(pifu_data, tmp_path_factory):
    """``pifu_data`` plus voxels/: each mesh voxelized as ``voxelize --preset geopifu`` does
    (Geo-PIFu's fit with a 15% margin), on a 16 x 32 x 16 grid instead of 128 x 192 x 128."""
    from unittest import mock

    from avatarkit.geometry import voxelize as vox
    from avatarkit.io.hdf5 import write_artifact
    from avatarkit.io.meshfile import load_mesh

    root = tmp_path_factory.mktemp("geopifu_voxels")
    with mock.patch.object(vox, "GEOPIFU_SHAPE", GEOPIFU_TINY_GRID):
        for path in sorted((pifu_data / "meshes").glob("*.h5")):
            mesh = load_mesh(path)
            write_artifact(root / path.name, vox.voxelize(mesh, vox.plan_grid(mesh, preset="geopifu")))
    return root
