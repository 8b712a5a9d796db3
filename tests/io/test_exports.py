"""Exports read by the tools they are for, never by our own readers: binvox by trimesh (and
by the spec's formula), .npy by numpy, render's PNG folders by Pillow and imageio, its IDR
folders the way IDR's own loader reads them (cv2.decomposeProjectionMatrix), and
``convert``'s mesh files by trimesh and open3d. Each export is made through the CLI."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from helpers import invoke
from PIL import Image

from avatarkit.io.hdf5 import read_artifact, write_artifact
from avatarkit.io.meshfile import save_mesh
from avatarkit.structures import Mesh

# ---------------------------------------------------------------- voxel grids


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    """A ball (a cubic grid) and a tall box, 0.4 x 1.6 x 0.3 m (non-cubic grids), as OBJ files."""
    folder = tmp_path_factory.mktemp("shapes")
    ball = trimesh.creation.icosphere(subdivisions=3, radius=0.3)
    box = trimesh.creation.box(extents=(0.4, 1.6, 0.3))
    return {
        "ball": save_mesh(Mesh(ball.vertices + np.array([0.1, 1.0, -0.2]), ball.faces), folder / "ball.obj")[0],
        "box": save_mesh(Mesh(box.vertices + np.array([0.05, 0.8, 0.0]), box.faces), folder / "box.obj")[0],
    }


def voxelize(shapes, tmp_path, mesh, export, *grid):
    out = tmp_path / f"{mesh}.h5"
    r = invoke("voxelize", shapes[mesh], "-o", out, "--export", export, *grid)
    assert r.exit_code == 0, r.output
    return read_artifact(out, "voxels"), out.with_suffix(f".{export}")


GRIDS = {
    "cubic": ("ball", "--resolution", 16),
    "tall, --resolution": ("box", "--resolution", 24),
    "geopifu": ("box", "--preset", "geopifu"),
}


@pytest.mark.parametrize("case", list(GRIDS))
def test_binvox_is_a_cube_that_trimesh_reads_with_our_voxels_at_our_world_centres(shapes, tmp_path, case):
    mesh, *grid = GRIDS[case]
    v, path = voxelize(shapes, tmp_path, mesh, "binvox", *grid)
    side = max(v.occupancy.shape)
    assert (v.occupancy.shape == (side, side, side)) == (case == "cubic")
    if case == "geopifu":
        assert v.occupancy.shape == (128, 192, 128)  # the .h5 keeps its grid

    # the header is the five lines, in binvox's order (binvox-rw-py reads them by position)
    lines = path.read_bytes().split(b"\n", 5)[:5]
    assert lines[0] == b"#binvox 1" and lines[1] == f"dim {side} {side} {side}".encode()
    assert lines[2].startswith(b"translate ") and lines[3].startswith(b"scale ") and lines[4] == b"data"

    grid_tm = trimesh.load(path)  # trimesh's loader asserts on non-cubic dims
    assert isinstance(grid_tm, trimesh.voxel.VoxelGrid) and tuple(grid_tm.shape) == (side, side, side)
    ours = np.argwhere(v.occupancy)  # row-major: sorted by x, then y, then z
    theirs = np.asarray(grid_tm.sparse_indices)
    theirs = theirs[np.lexsort(theirs.T[::-1])]
    assert np.array_equal(theirs, ours)  # voxel (i, j, k) of the .h5 is voxel (i, j, k) of the .binvox
    assert grid_tm.matrix[v.occupancy.shape[0] :].sum() == 0  # the padding is empty

    # the spec: centre = translate + scale * (index + 0.5) / dim, with the header as trimesh parses it
    with open(path, "rb") as f:
        header = trimesh.exchange.binvox.parse_binvox(f)
    assert list(header.shape) == [side] * 3
    world = header.translate + header.scale * (ours + 0.5) / side
    assert np.abs(world - v.centers()[v.occupancy]).max() < 1e-9  # metres

    # trimesh's own VoxelGrid puts voxel i at translate + i * scale / (dim - 1), against the
    # spec: its lattice is stretched by dim / (dim - 1), at most half a voxel off ours
    off = np.abs(grid_tm.indices_to_points(ours) - v.centers()[v.occupancy]).max()
    assert off <= 0.5 * v.pitch * (1 + 1e-9)


@pytest.mark.parametrize("fill", ["random", "full"])
def test_binvox_encoded_in_slabs_is_one_cube_for_trimesh(tmp_path, monkeypatch, fill):
    # the writer pads and encodes a few x slabs at a time: runs span slabs, the padding, and 255
    from avatarkit.io import voxel_export
    from avatarkit.structures import Voxels

    monkeypatch.setattr(voxel_export, "_CHUNK_VOXELS", 3 * 40 * 40)
    rng = np.random.default_rng(0)
    occ = rng.random((20, 40, 3)) < 0.4 if fill == "random" else np.ones((20, 40, 3), bool)
    voxel_export.write_binvox(tmp_path / "v.binvox", Voxels(occ, np.zeros(3), 0.01))
    matrix = trimesh.load(tmp_path / "v.binvox").matrix
    assert matrix.shape == (40, 40, 40) and np.array_equal(matrix[:20, :40, :3], occ)
    assert matrix.sum() == occ.sum()


def test_binvox_files_written_by_others_read_back(tmp_path):
    from avatarkit.io.voxel_export import read_binvox

    # laid out by hand from the spec: index = x * dim * dim + z * dim + y, one voxel at (1, 2, 3)
    side = 4
    flat = np.zeros(side**3, np.uint8)
    flat[1 * side * side + 3 * side + 2] = 1
    runs = [(0, 1 * side * side + 3 * side + 2), (1, 1), (0, side**3 - (1 * side * side + 3 * side + 2) - 1)]
    data = b"".join(bytes([value, n]) for value, n in runs)
    (tmp_path / "spec.binvox").write_bytes(b"#binvox 1\ndim 4 4 4\ntranslate -1 0 2\nscale 8\ndata\n" + data)
    v = read_binvox(tmp_path / "spec.binvox")
    assert v.occupancy.sum() == 1 and v.occupancy[1, 2, 3]
    assert np.allclose(v.centers()[1, 2, 3], np.array([-1, 0, 2]) + 8 * (np.array([1, 2, 3]) + 0.5) / 4)

    # written by trimesh's exporter (a comment line, xzy order): the same voxels
    occ = np.random.default_rng(0).random((6, 6, 6)) < 0.3
    encoded = trimesh.exchange.binvox.export_binvox(trimesh.voxel.VoxelGrid(occ))
    (tmp_path / "trimesh.binvox").write_bytes(encoded)
    assert np.array_equal(read_binvox(tmp_path / "trimesh.binvox").occupancy, occ)


def test_npy_is_the_h5_grid_indexed_x_y_z(shapes, tmp_path):
    v, path = voxelize(shapes, tmp_path, "box", "npy", "--resolution", 24)
    occ = np.load(path, allow_pickle=False)
    assert occ.dtype == np.bool_ and occ.shape == v.occupancy.shape and np.array_equal(occ, v.occupancy)
    # the box is 0.4 (x) by 1.6 (y) by 0.3 (z): axis 1 is y, the longest; axis 0 (x) beats axis 2 (z)
    assert occ.shape[1] == 24 and occ.shape[0] > occ.shape[2]
    centres = v.origin + (np.argwhere(occ) + 0.5) * v.pitch
    extent = centres.max(axis=0) - centres.min(axis=0) + v.pitch  # occupied span, voxel edges included
    assert np.allclose(extent, [0.4, 1.6, 0.3], atol=v.pitch)
    assert np.allclose(centres.mean(axis=0), [0.05, 0.8, 0.0], atol=v.pitch / 2)


# ---------------------------------------------------------------- rendered views


@pytest.fixture
def sphere_h5(tmp_path, textured_sphere):
    return write_artifact(tmp_path / "sphere.h5", textured_sphere)


def test_png_export_read_with_pillow_and_imageio(sphere_h5, tmp_path):
    import imageio.v3 as iio

    out = tmp_path / "pngs"
    r = invoke("render", sphere_h5, "-o", out, "--views", 4, "--size", 32, "--export", "png")
    assert r.exit_code == 0, r.output
    views = read_artifact(out / "views.h5", "views")
    for i in range(4):
        with Image.open(out / f"rgb_{i:03d}.png") as im:
            assert im.format == "PNG" and im.mode == "RGB" and im.size == (32, 32)
            assert np.array_equal(np.asarray(im), views.rgb[i])
        with Image.open(out / f"mask_{i:03d}.png") as im:
            assert im.mode == "L" and im.size == (32, 32)
            mask = np.asarray(im)
        assert set(np.unique(mask)) == {0, 255} and np.array_equal(mask, views.mask[i])
    sheet = iio.imread(out / "contact_sheet.png")
    assert sheet.shape == (64, 64, 3) and sheet.dtype == np.uint8  # 4 views on a 2 x 2 grid
    tiles = [sheet[r * 32 : (r + 1) * 32, c * 32 : (c + 1) * 32] for r in range(2) for c in range(2)]
    assert all(np.array_equal(tile, rgb) for tile, rgb in zip(tiles, views.rgb, strict=True))


def idr_load_K_Rt_from_P(P):
    """IDR's ``rend_util.load_K_Rt_from_P`` (P given), line for line: intrinsics (4, 4) and the
    camera-to-world pose (4, 4) in its unit-sphere frame."""
    import cv2

    out = cv2.decomposeProjectionMatrix(P)
    K, R, t = out[0], out[1], out[2]
    K = K / K[2, 2]
    intrinsics = np.eye(4)
    intrinsics[:3, :3] = K
    pose = np.eye(4, dtype=np.float32)
    pose[:3, :3] = R.transpose()
    pose[:3, 3] = (t[:3] / t[3])[:, 0]
    return intrinsics, pose


def test_idr_export_read_as_idr_reads_it(sphere_h5, textured_sphere, tmp_path):
    import imageio.v3 as iio
    from scipy.ndimage import binary_dilation

    out = tmp_path / "idr"
    r = invoke("render", sphere_h5, "-o", out, "--views", 4, "--size", 64, "--export", "idr")
    assert r.exit_code == 0, r.output
    views = read_artifact(out / "views.h5", "views")
    cameras = np.load(out / "cameras.npz")  # IDR's SceneDataset.__init__
    n_images = len(sorted((out / "image").glob("*.png")))
    assert n_images == len(sorted((out / "mask").glob("*.png"))) == 4
    vertices = np.c_[textured_sphere.vertices, np.ones(len(textured_sphere.vertices))]
    for i in range(n_images):
        scale_mat = cameras[f"scale_mat_{i}"].astype(np.float32)
        world_mat = cameras[f"world_mat_{i}"].astype(np.float32)
        P = (world_mat @ scale_mat)[:3, :4]
        intrinsics, pose = idr_load_K_Rt_from_P(P)
        assert np.allclose(intrinsics[:3, :3], views.K[i], atol=1e-3)

        # IDR's frame: the mesh inside its unit sphere, the camera outside it
        unit = vertices @ np.linalg.inv(scale_mat).T
        assert np.linalg.norm(unit[:, :3], axis=1).max() < 1 < np.linalg.norm(pose[:3, 3])
        cam = unit @ np.linalg.inv(pose).T  # IDR's rays: pixel -> K^-1 -> pose
        assert (cam[:, 2] > 0).all()
        uv = cam[:, :3] @ intrinsics[:3, :3].T
        uv = uv[:, :2] / uv[:, 2:]
        ours = textured_sphere.vertices @ views.world_to_cam[i, :3, :3].T + views.world_to_cam[i, :3, 3]
        ours = ours @ views.K[i].T
        assert np.abs(uv - ours[:, :2] / ours[:, 2:]).max() < 1e-2  # pixels (float32 in IDR's path)

        # IDR's load_mask: imread(as_gray=True) (imageio's mode "F" today), then > 127.5
        mask = iio.imread(out / "mask" / f"{i:03d}.png", mode="F") > 127.5
        assert np.array_equal(mask, views.mask[i] > 0)
        px = np.round(uv).astype(int)
        assert ((px >= 0) & (px < 64)).all()
        landed = mask[px[:, 1], px[:, 0]]
        assert landed.mean() > 0.9  # the rest sit on the silhouette's edge, within a pixel of it
        assert binary_dilation(mask, np.ones((3, 3), bool))[px[:, 1], px[:, 0]].all()
        rows, cols = np.nonzero(mask)  # and the mask is the vertices' silhouette, not more
        assert cols.min() >= uv[:, 0].min() - 1 and cols.max() <= uv[:, 0].max() + 1
        assert rows.min() >= uv[:, 1].min() - 1 and rows.max() <= uv[:, 1].max() + 1

        rgb = iio.imread(out / "image" / f"{i:03d}.png")  # IDR's load_rgb
        assert rgb.shape == (64, 64, 3) and np.array_equal(rgb, views.rgb[i])


# ---------------------------------------------------------------- mesh files


def seam_copies_of(written: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """For each written vertex, the mesh vertex at the same position."""
    from scipy.spatial import cKDTree

    distance, index = cKDTree(vertices).query(written)
    assert distance.max() < 1e-6
    return index


@pytest.mark.parametrize("ext", ["obj", "ply", "glb", "off"])
def test_convert_mesh_files_read_with_trimesh_and_open3d(sphere_h5, textured_sphere, tmp_path, ext):
    from avatarkit.backends.open3d import import_open3d

    mesh = textured_sphere
    out = tmp_path / f"sphere.{ext}"
    r = invoke("convert", sphere_h5, out)
    assert r.exit_code == 0, r.output
    n = len(mesh.vertices)

    tm = trimesh.load(out, process=False, force="mesh")
    assert np.abs(tm.vertices[:n] - mesh.vertices).max() < 1e-6  # vertex ids kept, seam copies after
    assert np.abs(tm.vertices[tm.faces] - mesh.face_corners()).max() < 1e-6
    if ext == "off":
        assert len(tm.vertices) == n
    else:
        assert len(tm.vertices) > n  # this sphere has UV seams
        assert np.abs(tm.visual.uv[tm.faces] - mesh.face_corner_uvs()).max() < 1e-6
    if ext == "obj":
        assert np.array_equal(np.asarray(tm.visual.material.image.convert("RGB")), mesh.texture)
    if ext == "glb":
        assert np.array_equal(np.asarray(tm.visual.material.baseColorTexture.convert("RGB")), mesh.texture)
    if ext == "ply":
        labels = np.asarray(tm.metadata["_ply_raw"]["vertex"]["data"]["label"])
        assert np.array_equal(labels[:n], mesh.vertex_labels)
        assert np.array_equal(labels, mesh.vertex_labels[seam_copies_of(tm.vertices, mesh.vertices)])

    # open3d: a second, independent parser (tinyobjloader, rply, tinygltf)
    o3d = import_open3d()
    m = o3d.io.read_triangle_mesh(str(out), enable_post_processing=False)
    corners = np.asarray(m.vertices)[np.asarray(m.triangles)]
    assert len(m.vertices) == len(tm.vertices) and np.abs(corners - mesh.face_corners()).max() < 1e-6
    if ext in ("obj", "glb"):
        corner_uvs = np.asarray(m.triangle_uvs).reshape(-1, 3, 2)
        assert np.abs(corner_uvs - mesh.face_corner_uvs()).max() < 1e-6
        (texture,) = [np.asarray(t) for t in m.textures if np.asarray(t).ndim == 3]
        assert np.array_equal(texture[::-1], mesh.texture)  # open3d keeps images bottom row first


def test_convert_ply_vertex_colours_and_labels_read_with_trimesh(tmp_path, textured_sphere):
    mesh = textured_sphere
    mesh.uvs = mesh.face_uvs = mesh.texture = None
    mesh.vertex_colors = np.random.default_rng(1).integers(0, 256, (len(mesh.vertices), 3)).astype(np.uint8)
    r = invoke("convert", write_artifact(tmp_path / "coloured.h5", mesh), tmp_path / "coloured.ply")
    assert r.exit_code == 0, r.output
    tm = trimesh.load(tmp_path / "coloured.ply", process=False, force="mesh")
    assert len(tm.vertices) == len(mesh.vertices) and np.abs(tm.vertices - mesh.vertices).max() < 1e-6
    assert np.array_equal(tm.visual.vertex_colors[:, :3], mesh.vertex_colors)
    raw = tm.metadata["_ply_raw"]["vertex"]
    assert raw["properties"]["label"] == "<i2"  # PLY 'short'
    assert np.array_equal(raw["data"]["label"], mesh.vertex_labels)
