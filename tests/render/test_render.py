"""render pinned on the conventions: cameras project onto masks and depths, albedo exactness,
orbit directions, PIFu framing, camera files, lighting and shadows."""

from __future__ import annotations

import json

import numpy as np
import pytest
import trimesh
from scipy.ndimage import binary_dilation

from avatarkit.errors import InputError, OptionError
from avatarkit.geometry.surface import sample_texture
from avatarkit.io.cameras import idr_scale_mat, read_cameras, write_idr
from avatarkit.io.hdr import read_hdr, write_hdr
from avatarkit.render.render import RenderConfig, render
from avatarkit.render.rigs import look_at, orbit, pifu_rig
from avatarkit.structures import Cameras, Mesh


def _sphere_with_sides():
    """A unit sphere, red in front (+Z), blue behind, green on the subject's left (+X)."""
    s = trimesh.creation.icosphere(subdivisions=4, radius=0.5)
    v = s.vertices
    colors = np.where((v[:, 2] > 0.2)[:, None], [255, 0, 0], [0, 0, 255])
    colors[v[:, 0] > 0.3] = [0, 255, 0]
    return Mesh(v + np.array([0.0, 1.0, 0.0]), s.faces, vertex_colors=colors, vertex_labels=(v[:, 1] > 0).astype(int))


@pytest.mark.parametrize("projection", ["perspective", "orthographic"])
def test_vertices_project_onto_the_mask_and_the_depth(projection, textured_sphere):
    mesh = textured_sphere
    cams = orbit(np.array([0.0, 1.0, 0.0]), 0.5, np.arange(0, 360, 60), [0.0, 30.0], (96, 80), projection)
    views = render(mesh, cams, RenderConfig())
    pix, depth = cams.project(mesh.vertices.astype(np.float64))
    outward = mesh.vertices - np.array([0.0, 1.0, 0.0])
    outward /= np.linalg.norm(outward, axis=1, keepdims=True)
    for i in range(len(cams)):
        col, row = np.rint(pix[i]).astype(int).T
        inside = (col >= 0) & (col < 96) & (row >= 0) & (row < 80)
        assert inside.all()
        assert binary_dilation(views.mask[i] > 0)[row, col].all()  # every vertex lands on the mask
        # vertices facing the camera (away from the silhouette) are the surface seen, at their depth
        if projection == "perspective":
            to_camera = cams.centers()[i] - mesh.vertices
            to_camera /= np.linalg.norm(to_camera, axis=1, keepdims=True)
        else:
            to_camera = -cams.world_to_cam[i, 2, :3]
        facing = np.sum(outward * to_camera, axis=1) > 0.7
        assert facing.sum() > 20
        # a pixel is about 1 cm here: rounding to the nearest pixel centre moves the depth < 1 cm
        assert np.abs(views.depth[i][row, col][facing] - depth[i][facing]).max() < 0.01
    assert np.all(views.depth[views.mask == 0] == 0)
    assert views.K.shape == (12, 3, 3) and views.projection == projection


def test_unlit_colour_is_exactly_the_texture_at_the_pixel_uv(textured_sphere):
    cams = orbit(np.array([0.0, 1.0, 0.0]), 0.5, [0.0, 90.0, 200.0], [10.0], (64, 64))
    views = render(textured_sphere, cams, RenderConfig(lighting="none"))
    m = views.mask > 0
    expected = sample_texture(textured_sphere.texture, views.uv[m])
    diff = np.abs(views.rgb[m].astype(int) - expected.astype(int))
    assert np.mean(diff <= 1) > 0.99
    assert (views.uv[~m] == -1).all()
    normals_len = np.linalg.norm(views.normal[m], axis=-1)
    assert np.allclose(normals_len, 1, atol=1e-4)


def test_yaw_zero_faces_the_front_and_yaw_90_sees_the_left():
    mesh = _sphere_with_sides()
    cams = orbit(np.array([0.0, 1.0, 0.0]), 0.5, [0.0, 90.0, 180.0], [0.0], (64, 64))
    views = render(mesh, cams, RenderConfig())
    center = views.rgb[:, 28:36, 28:36].reshape(3, -1, 3).mean(1)
    assert center[0].argmax() == 0  # red front
    assert center[1].argmax() == 1  # green left side
    assert center[2].argmax() == 2  # blue back
    # world normals: the centre pixel of the front view points at the camera (+Z)
    assert views.normal[0, 32, 32] @ np.array([0, 0, 1]) > 0.95
    # labels: vertex labels per pixel, -1 on background; top half is label 1
    assert views.label[0, 5, 5] == -1 and views.label[0, 20, 32] == 1 and views.label[0, 44, 32] == 0


def test_pifu_preset_frames_the_subject_as_pifu():
    box = trimesh.creation.box(extents=(0.5, 1.6, 0.3))
    mesh = Mesh(box.vertices + np.array([0.2, 0.8, 0.0]), box.faces)
    cams = pifu_rig(mesh.vertices)
    assert len(cams) == 360 and cams.projection == "orthographic" and (cams.width, cams.height) == (512, 512)
    views = render(mesh, Cameras(cams.K[:2], cams.world_to_cam[:2], "orthographic", 512, 512), RenderConfig())
    rows = np.flatnonzero(views.mask[0].any(axis=1))
    assert rows[-1] - rows[0] + 1 == pytest.approx(512 * 180 / 204.8, abs=2)  # 180 of 204.8 units
    assert (rows[0] + rows[-1]) / 2 == pytest.approx(255.5, abs=1)


def test_idr_cameras_round_trip_and_project_the_same(tmp_path):
    cams = orbit(np.array([0.0, 1.0, 0.0]), 0.5, [0.0, 123.0], [20.0], (200, 150), fov_deg=35)
    write_idr(tmp_path / "cameras.npz", cams, idr_scale_mat(np.array([0.0, 1.0, 0.0]), 0.6))
    back = read_cameras(tmp_path / "cameras.npz")
    assert (back.width, back.height) == (200, 150)
    assert np.allclose(back.K, cams.K, atol=1e-6) and np.allclose(back.world_to_cam, cams.world_to_cam, atol=1e-6)
    point = np.array([[0.1, 1.2, 0.05]])
    assert np.allclose(back.project(point)[0], cams.project(point)[0], atol=1e-5)
    data = np.load(tmp_path / "cameras.npz")
    assert np.allclose(data["scale_mat_1"], idr_scale_mat(np.array([0.0, 1.0, 0.0]), 0.6))


def test_nerf_transforms_json_is_converted_from_opengl_axes(tmp_path):
    eye = np.array([0.0, 1.0, 3.0])
    c2w = np.eye(4)  # OpenGL camera at eye looking down -Z: straight at the origin's column
    c2w[:3, 3] = eye
    meta = {"camera_angle_x": np.radians(50), "w": 64, "h": 48, "frames": [{"transform_matrix": c2w.tolist()}]}
    (tmp_path / "transforms.json").write_text(json.dumps(meta))
    cams = read_cameras(tmp_path / "transforms.json")
    expected = look_at(eye, np.array([0.0, 1.0, 0.0]))
    assert np.allclose(cams.world_to_cam[0], expected, atol=1e-9)
    assert cams.K[0, 0, 0] == pytest.approx(32 / np.tan(np.radians(25)))
    assert (cams.K[0, 0, 2], cams.K[0, 1, 2]) == (31.5, 23.5)


def test_directional_light_casts_shadows():
    plane = trimesh.creation.box(extents=(2.0, 0.02, 2.0))
    block = trimesh.creation.box(extents=(0.3, 0.3, 0.3))
    block.apply_translation([0, 0.5, 0])
    both = trimesh.util.concatenate([plane, block])
    mesh = Mesh(both.vertices, both.faces)
    cams = Cameras(
        [[[60.0, 0, 31.5], [0, 60.0, 31.5], [0, 0, 1]]],
        look_at([0.0, 3.0, 0.01], [0.0, 0.0, 0.0])[None],
        "perspective",
        64,
        64,
    )
    import avatarkit.render.render as R

    original = R._light_directions
    light = np.array([[-1.0, 1.0, 0.0]]) / np.sqrt(2)  # from above and -x: the shadow falls towards +x
    R._light_directions = lambda cameras, rng: light
    try:
        views = render(mesh, cams, RenderConfig(lighting="directional", ambient=0.2, flat_color=(200, 200, 200)))
    finally:
        R._light_directions = original
    img = views.rgb[0, ..., 0].astype(int)
    # top view, image columns along world +x: the block's shadow lies on the plane at x = 0.35 to 0.8
    shadow, lit, top = img[32, 43], img[32, 20], img[32, 32]
    assert views.depth[0, 32, 43] == pytest.approx(views.depth[0, 32, 20], abs=1e-3)  # both on the plane
    assert lit > 120 and top > 120
    assert shadow < lit - 60


def test_prt_darkens_occluded_surfaces_that_sh_does_not():
    mesh = _sphere_with_sides()
    pair = trimesh.util.concatenate(
        [
            trimesh.Trimesh(mesh.vertices, mesh.faces),
            trimesh.Trimesh(mesh.vertices + np.array([0.0, 0.0, 0.9]), mesh.faces),
        ]
    )
    two = Mesh(pair.vertices, pair.faces)
    cams = orbit(np.array([0.0, 1.0, 0.45]), 1.0, [90.0], [0.0], (64, 64))
    sh = render(two, cams, RenderConfig(lighting="sh", flat_color=(200, 200, 200)), seed=3)
    prt = render(two, cams, RenderConfig(lighting="prt", flat_color=(200, 200, 200)), seed=3)
    m = sh.mask[0] > 0
    assert prt.rgb[0][m].mean() < sh.rgb[0][m].mean()  # the spheres shade each other
    assert np.array_equal(sh.lighting["sh"], prt.lighting["sh"])


def test_ssaa_smooths_edges_without_moving_them():
    mesh = _sphere_with_sides()
    cams = orbit(np.array([0.0, 1.0, 0.0]), 0.5, [0.0], [0.0], (48, 48))
    one = render(mesh, cams, RenderConfig(background=(255, 255, 255)))
    four = render(mesh, cams, RenderConfig(background=(255, 255, 255), ssaa=4))
    assert np.array_equal(one.mask, four.mask) and np.array_equal(one.depth, four.depth)
    levels_one = len(np.unique(one.rgb[..., 1]))
    levels_four = len(np.unique(four.rgb[..., 1]))
    assert levels_four > levels_one  # blended edge pixels


def test_backgrounds_are_random_crops_from_a_folder(tmp_path):
    from PIL import Image

    mesh = _sphere_with_sides()
    cams = orbit(np.array([0.0, 1.0, 0.0]), 0.5, [0.0, 90.0], [0.0], (40, 40))
    folder = tmp_path / "lsun"
    folder.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (30, 50, 3), dtype=np.uint8)).save(folder / "room.png")  # smaller: scaled up
    plain = render(mesh, cams, RenderConfig())
    backed = render(mesh, cams, RenderConfig(background_dir=folder), seed=1)
    m = plain.mask > 0
    assert np.array_equal(backed.rgb[m], plain.rgb[m])  # the subject is untouched
    assert backed.rgb[~m].std() > 30 and not np.array_equal(backed.rgb[0][~m[0]], backed.rgb[1][~m[1]])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no images"):
        render(mesh, cams, RenderConfig(background_dir=tmp_path / "empty"))


def test_hdr_round_trip_and_lighting_from_it(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.uniform(0.01, 20.0, (16, 32, 3)).astype(np.float32)
    write_hdr(tmp_path / "env.hdr", image)
    back = read_hdr(tmp_path / "env.hdr")
    # RGBE keeps 8 bits of mantissa relative to each pixel's brightest channel
    assert (np.abs(back - image) <= image.max(-1, keepdims=True) / 128).all()
    sky = np.zeros((16, 32, 3), np.float32)
    sky[:4] = 5.0  # light from above only
    write_hdr(tmp_path / "sky.hdr", sky)
    mesh = _sphere_with_sides()
    cams = orbit(np.array([0.0, 1.0, 0.0]), 0.5, [0.0], [0.0], (64, 64))
    views = render(mesh, cams, RenderConfig(lighting="sh", hdri=tmp_path / "sky.hdr", flat_color=(200, 200, 200)))
    img = views.rgb[0].astype(int).sum(-1)
    assert img[12, 32] > img[52, 32] + 100  # top of the sphere lit, bottom dark
    (tmp_path / "bad.hdr").write_bytes(b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 4 +X 8\n\x02\x02")
    with pytest.raises(InputError, match="corrupt"):
        read_hdr(tmp_path / "bad.hdr")
    (tmp_path / "junk.hdr").write_bytes(b"\x89PNG....")
    with pytest.raises(InputError, match="not a Radiance"):
        read_hdr(tmp_path / "junk.hdr")


def test_bad_settings_are_refused():
    for kwargs in ({"ssaa": 0}, {"lighting": "disco"}, {"hdri": "x.hdr"}, {"background": (0, 0, 300)}):
        with pytest.raises(OptionError):
            RenderConfig(**kwargs).check()
    with pytest.raises(OptionError, match="no texture"):
        render(_sphere_with_sides(), orbit(np.zeros(3), 1.0, [0.0], [0.0], (8, 8)), RenderConfig(albedo="texture"))


def _rle_hdr(rgbe: np.ndarray) -> bytes:
    """A Radiance file with new-style run-length encoded scanlines (as Poly Haven's are)."""
    h, w = rgbe.shape[:2]
    body = bytearray()
    for row in range(h):
        body += bytes([2, 2, w >> 8, w & 255])
        for channel in range(4):
            line, x = rgbe[row, :, channel], 0
            while x < w:
                run = 1
                while x + run < w and run < 127 and line[x + run] == line[x]:
                    run += 1
                if run >= 3:
                    body += bytes([128 + run, line[x]])
                    x += run
                else:
                    body += bytes([1, line[x]])
                    x += 1
    return f"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y {h} +X {w}\n".encode() + bytes(body)


def test_run_length_encoded_hdr_is_decoded_and_corrupt_sizes_are_refused(tmp_path):
    rng = np.random.default_rng(1)
    rgbe = rng.integers(0, 256, (6, 40, 4), dtype=np.uint8)
    rgbe[:, :25] = rgbe[:, :1]  # long runs
    rgbe[..., 3] = rng.integers(120, 140, (6, 40))
    (tmp_path / "rle.hdr").write_bytes(_rle_hdr(rgbe))
    expected = rgbe[..., :3] * np.ldexp(1.0, rgbe[..., 3].astype(int) - 136)[..., None]
    assert np.allclose(read_hdr(tmp_path / "rle.hdr"), expected)
    header = b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n"
    for name, data, needle in [
        ("words", header + b"-Y tall +X 8\n" + bytes(64), "size line"),
        ("empty", header + b"-Y 0 +X 0\n", "no pixels"),
        ("huge", header + b"-Y 100000000 +X 100000000\n" + bytes(64), "too short"),
        ("cut", _rle_hdr(rgbe)[:200], "corrupt"),
    ]:
        (tmp_path / f"{name}.hdr").write_bytes(data)
        with pytest.raises(InputError, match=needle):
            read_hdr(tmp_path / f"{name}.hdr")
