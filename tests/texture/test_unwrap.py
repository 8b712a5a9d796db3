"""unwrap-uv: round trips through render, visibility and occlusion, mirror completion, atlases."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from avatarkit.errors import InputError, MeshError
from avatarkit.render.render import RenderConfig, render
from avatarkit.render.rigs import orbit
from avatarkit.structures import Mesh
from avatarkit.texture.unwrap import make_atlas, splat_uv_images, unwrap


def psnr(a, b) -> float:
    return float(10 * np.log10(255.0**2 / np.mean((a.astype(float) - b.astype(float)) ** 2)))


@pytest.fixture(scope="module")
def rest_human(make_generator):
    return make_generator(pose="rest", texture="clothes", texture_size=256).subject(0)


def _rig(mesh, yaws, size):
    v = mesh.vertices.astype(np.float64)
    center = 0.5 * (v.min(0) + v.max(0))
    return orbit(center, float(np.linalg.norm(v - center, axis=1).max()), np.asarray(yaws, float), [0.0], (size, size))


def test_render_then_unwrap_recovers_the_texture(rest_human):
    views = render(rest_human, _rig(rest_human, np.arange(8) * 45.0, 512), RenderConfig())
    tex = unwrap(rest_human, views, size=256)  # the subject spans about 256 pixels of the 512 views
    good = tex.visibility > 0.5
    assert good.mean() > 0.3
    assert psnr(tex.texture[good], rest_human.texture[good]) >= 30.0
    # and rendering with the recovered texture gives back the renders
    again = rest_human.__class__(**{**rest_human.__dict__, "texture": tex.texture})
    rerender = render(again, _rig(rest_human, np.arange(8) * 45.0, 512), RenderConfig())
    m = views.mask > 0
    assert psnr(rerender.rgb[m], views.rgb[m]) >= 28.0
    # the normal map holds unit world normals on the UV islands
    lengths = np.linalg.norm(tex.normal_map, axis=-1)
    assert np.allclose(lengths[lengths > 0], 1, atol=1e-4)


def test_visibility_is_the_viewing_cosine_and_occlusion_hides():
    s = trimesh.creation.icosphere(subdivisions=4, radius=0.3)
    uv = np.stack([0.5 + np.arctan2(s.vertices[:, 0], s.vertices[:, 2]) / (2 * np.pi), 0.5 + s.vertices[:, 1] / 0.6], 1)
    front = Mesh(s.vertices + np.array([0.0, 1.0, 0.5]), s.faces, uvs=uv, face_uvs=s.faces)
    back = Mesh(s.vertices + np.array([0.0, 1.0, -0.5]), s.faces, uvs=uv, face_uvs=s.faces)
    both = Mesh(
        np.vstack([front.vertices, back.vertices]),
        np.vstack([front.faces, back.faces + len(front.vertices)]),
        uvs=np.vstack([uv * [0.5, 1.0], uv * [0.5, 1.0] + [0.5, 0.0]]),
        face_uvs=np.vstack([s.faces, s.faces + len(uv)]),
    )
    cams = orbit(np.array([0.0, 1.0, 0.0]), 1.0, [0.0], [0.0], (256, 256))  # looks along -Z at the front sphere
    views = render(both, cams, RenderConfig(albedo="flat"))
    tex = unwrap(both, views, size=256)
    left, right = tex.visibility[:, :128], tex.visibility[:, 128:]
    assert left.max() > 0.99  # the front sphere faces the camera
    assert right.max() == 0.0  # the back sphere is hidden behind it
    # visibility is the cosine between the texel's normal and the direction to the camera
    seen = tex.visibility > 0
    n = tex.normal_map[seen]
    points = np.array([0.0, 1.0, 0.5]) + 0.3 * n  # on the front sphere
    to_camera = cams.centers()[0] - points
    to_camera /= np.linalg.norm(to_camera, axis=1, keepdims=True)
    assert np.abs(tex.visibility[seen] - np.sum(n * to_camera, axis=1)).max() < 0.02


def test_symmetric_fills_the_unseen_side_from_the_mirror(make_generator):
    human = make_generator(pose="rest", texture="skin", texture_size=256).subject(1)
    views = render(human, _rig(human, [60.0, 90.0, 120.0], 384), RenderConfig())  # the subject's left side only
    plain = unwrap(human, views, size=256)
    mirrored = unwrap(human, views, size=256, symmetric=True)
    filled = mirrored.mirrored > 0
    assert filled.sum() > 1000
    assert (plain.visibility[filled] == 0).all() and (mirrored.visibility[filled] == 0).all()
    assert psnr(mirrored.texture[filled], human.texture[filled]) > 25.0  # one skin tone left and right


def test_atlas_bakes_vertex_colours():
    box = trimesh.creation.box(extents=(0.4, 0.4, 0.4))
    colors = (np.abs(box.vertices) > 0).astype(np.uint8) * np.array([200, 30, 60], np.uint8)
    colors[box.vertices[:, 1] > 0] = [20, 180, 40]
    mesh = Mesh(box.vertices + np.array([0.0, 1.0, 0.0]), box.faces, vertex_colors=colors)
    with pytest.raises(MeshError, match="no UVs"):
        unwrap(mesh, None)
    atlas = make_atlas(mesh, size=128)
    assert atlas.has_uvs and atlas.texture.shape == (128, 128, 3)
    cams = _rig(mesh, [20.0, 200.0], 64)
    by_vertex = render(mesh, cams, RenderConfig(albedo="vertex"))
    by_texture = render(atlas, cams, RenderConfig(albedo="texture"))
    m = by_vertex.mask > 0
    assert np.mean(np.abs(by_vertex.rgb[m].astype(int) - by_texture.rgb[m].astype(int)) <= 6) > 0.95


def test_uv_images_alone_splat_into_a_texture(rest_human):
    views = render(rest_human, _rig(rest_human, np.arange(4) * 90.0, 512), RenderConfig())
    tex = splat_uv_images(views, size=256)
    seen = tex.visibility > 0.5
    assert seen.mean() > 0.1
    assert psnr(tex.texture[seen], rest_human.texture[seen]) > 22.0
    views.uv = None
    with pytest.raises(Exception, match="no /images/uv"):
        splat_uv_images(views)


def test_idr_folder_is_read_and_counts_are_checked(tmp_path, rest_human):
    from avatarkit.io.cameras import idr_scale_mat
    from avatarkit.io.view_folders import read_idr_folder, write_idr_folder

    views = render(rest_human, _rig(rest_human, [0.0, 120.0, 240.0], 96), RenderConfig())
    write_idr_folder(tmp_path, views, idr_scale_mat(np.zeros(3), 1.0))
    back = read_idr_folder(tmp_path)
    assert np.array_equal(back.rgb, views.rgb) and np.array_equal(back.mask, views.mask)
    assert np.allclose(back.world_to_cam, views.world_to_cam, atol=1e-5)
    (tmp_path / "image" / "002.png").unlink()
    with pytest.raises(InputError, match="2 images in image/ but 3 cameras"):
        read_idr_folder(tmp_path)


def test_views_that_see_nothing_are_named_and_no_view_at_all_is_an_error(rest_human):
    from avatarkit.errors import AvatarkitWarning

    views = render(rest_human, _rig(rest_human, [0.0, 180.0], 96), RenderConfig())
    views.mask[1] = 0  # the second view's mask misses the subject entirely
    with pytest.warns(AvatarkitWarning, match="view 1 sees nothing of the mesh"):
        tex = unwrap(rest_human, views, size=64)
    assert tex.attrs["seen_fraction"] > 0.2
    views.mask[0] = np.roll(views.mask[0], 12, axis=1)  # a mask beside the mesh's silhouette
    with pytest.warns(AvatarkitWarning) as caught:
        unwrap(rest_human, views, size=64)
    assert sorted(str(w.message) for w in caught) == [
        "view 0: the mask and the mesh's silhouette overlap less than 50% (IoU); are these the mesh's views?",
        "view 1 sees nothing of the mesh",
    ]
    views.mask[0] = 0
    with pytest.raises(InputError, match="no view sees any texel"):
        unwrap(rest_human, views, size=64)
    views.mask[...] = 255  # the UV images alone say where the mesh is
    views.uv[0] = -1
    with pytest.warns(AvatarkitWarning, match="view 0 sees nothing"):
        splat_uv_images(views, size=32)
    views.uv[1] = -1
    with pytest.raises(InputError, match="no view has any pixel with a mesh UV"):
        splat_uv_images(views, size=32)


def _write_iuv_folder(folder, parts, size=(40, 30)):
    """Photos whose colour encodes (U, V, part) and IUV PNGs written as OpenCV writes DensePose's."""
    from PIL import Image

    h, w = size
    u = np.tile(np.linspace(0, 255, w).astype(np.uint8), (h, 1))
    v = np.tile(np.linspace(255, 0, h).astype(np.uint8)[:, None], (1, w))
    (folder / "image").mkdir(parents=True)
    (folder / "iuv").mkdir()
    for n, part in enumerate(parts):
        index = np.zeros((h, w), np.uint8)
        index[5:-5, 5:-5] = part
        Image.fromarray(np.stack([u, v, np.full_like(u, 10 * part)], -1)).save(folder / "image" / f"{n:03d}.png")
        Image.fromarray(np.stack([v, u, index], -1)).save(folder / "iuv" / f"{n:03d}_IUV.png")  # BGR: I, U, V


def test_densepose_iuv_images_fill_densepose_atlas(tmp_path):
    from avatarkit.io.view_folders import read_iuv_folder
    from avatarkit.texture.unwrap import densepose_texel, splat_iuv_images

    _write_iuv_folder(tmp_path, [3, 20, 0])
    rgb, iuv, names = read_iuv_folder(tmp_path)
    assert iuv[0, 20, 15, 0] == 3 and iuv[0, 0, 0, 0] == 0 and iuv[0, 20, 0, 1] == 0 and iuv[0, 0, 20, 2] == 255
    with pytest.warns(Warning, match="no body part in the IUV images of .*002.png"):
        tex = splat_iuv_images(rgb, iuv, tile=50, names=names)
    assert tex.texture.shape == (300, 200, 3) and tex.attrs["source"] == "densepose iuv"
    # part 3 is in tile row 2, column 0; part 20 in tile row 1, column 3 (DensePose's layout)
    assert tex.visibility[100:150, 0:50].sum() > 0 and tex.visibility[50:100, 150:200].sum() > 0
    assert tex.visibility[:, 50:150].sum() == 0
    for i, part in enumerate([3, 20]):
        on = iuv[i, ..., 0] > 0
        row, col = densepose_texel(iuv[i][on][:, 0], iuv[i][on][:, 1], iuv[i][on][:, 2], 50)
        expected = np.stack([iuv[i][on][:, 1], iuv[i][on][:, 2], np.full(on.sum(), 10 * part)], -1)
        # several pixels share a texel (50 texels for 256 values): their mean is within a few levels
        assert np.abs(tex.texture[row, col].astype(int) - expected).max() <= 6
    (tmp_path / "iuv" / "002_IUV.png").unlink()
    with pytest.raises(InputError, match="2 IUV images in iuv/ for 3 images"):
        read_iuv_folder(tmp_path)
