"""HDR environments for lit renders: .exr maps read as .hdr ones, a folder gives each view a map
of its own, the built-in sky needs no file, and lit views keep their unlit albedo."""

from __future__ import annotations

import numpy as np
import OpenEXR
import pytest

from avatarkit.errors import InputError, OptionError
from avatarkit.io.hdr import list_environments, read_environment, write_hdr
from avatarkit.render import lighting as L
from avatarkit.render.render import RenderConfig, render
from avatarkit.render.rigs import pifu_rig


def _write_exr(path, image):
    with OpenEXR.File({"type": OpenEXR.scanlineimage}, {"RGB": image.astype(np.float32)}) as f:
        f.write(str(path))


def test_exr_and_hdr_maps_read_alike(tmp_path):
    sky = L.procedural_sky(np.random.default_rng(3), 16, 32)
    write_hdr(tmp_path / "a.hdr", sky)
    _write_exr(tmp_path / "b.exr", sky)
    (tmp_path / "notes.txt").write_text("not a map")
    assert [p.name for p in list_environments(tmp_path)] == ["a.hdr", "b.exr"]
    np.testing.assert_allclose(read_environment(tmp_path / "b.exr"), sky, rtol=1e-6)
    np.testing.assert_allclose(read_environment(tmp_path / "a.hdr"), sky, rtol=0.02, atol=1e-6)  # RGBE: 8-bit mantissas
    (tmp_path / "c.exr").write_bytes(b"\x76\x2f\x31\x01 truncated")
    with pytest.raises(InputError, match="not a readable OpenEXR"):
        read_environment(tmp_path / "c.exr")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="holds no environment maps"):
        list_environments(tmp_path / "empty")


def test_the_sky_is_a_sky():
    sky = L.procedural_sky(np.random.default_rng(0))
    assert sky.shape == (64, 128, 3) and sky.dtype == np.float32 and (sky >= 0).all()
    coeffs = L.equirect_to_sh(sky)
    up, down = L.irradiance(coeffs, np.array([[0, 1.0, 0], [0, -1.0, 0]])).mean(-1)
    assert up > 2 * down  # light comes from above the horizon
    assert not np.allclose(sky, L.procedural_sky(np.random.default_rng(1)))


def test_a_folder_or_the_sky_lights_each_view_its_own_way(textured_sphere, tmp_path):
    write_hdr(tmp_path / "a.hdr", L.procedural_sky(np.random.default_rng(1), 16, 32))
    _write_exr(tmp_path / "b.exr", L.procedural_sky(np.random.default_rng(2), 16, 32) * 3)
    cameras = pifu_rig(textured_sphere.vertices, 32, np.arange(6) * 60.0)
    folder = render(textured_sphere, cameras, RenderConfig(lighting="sh", hdri=tmp_path), seed=0)
    index = folder.lighting["environment_index"]
    assert index.shape == (6,) and set(index.tolist()) == {0, 1}  # both maps drawn (seed 0)
    sky = render(textured_sphere, cameras, RenderConfig(lighting="prt", hdri="sky"), seed=0)
    assert "procedural sky" in sky.lighting["environment"]
    sh = sky.lighting["sh"]
    assert not np.allclose(sh[0], sh[1])
    again = render(textured_sphere, cameras, RenderConfig(lighting="prt", hdri="sky"), seed=0)
    np.testing.assert_array_equal(again.rgb, sky.rgb)
    with pytest.raises(OptionError, match="no such file or folder"):
        RenderConfig(lighting="sh", hdri=tmp_path / "absent").check()


def test_lit_views_keep_the_unlit_albedo(textured_sphere):
    cameras = pifu_rig(textured_sphere.vertices, 32, np.arange(2) * 180.0)
    unlit = render(textured_sphere, cameras, RenderConfig())
    assert unlit.albedo is None  # unlit views are their albedo
    for ssaa in (1, 2):
        lit = render(textured_sphere, cameras, RenderConfig(lighting="sh", hdri="sky", ssaa=ssaa))
        np.testing.assert_array_equal(lit.albedo, unlit.rgb)  # pixel centres, black background
        assert not np.array_equal(lit.rgb, unlit.rgb)
