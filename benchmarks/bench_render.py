"""render against pyrender (OpenGL through Mesa EGL, headless), on an Anny human.

36 views of 512 x 512 around the subject. Ours writes all five buffers (rgb, mask, depth,
world normal, mesh UV, and the label) with unlit albedo; pyrender renders rgb + depth of
the same textured mesh from the same cameras. Both timed in this process, before any
file writing. The masks of both are compared as an independent check of our cameras.
Also: PRT precomputation per mesh, and PIFu's 360 views per mesh end to end (PRT
lighting, written to a views file).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np
from common import anny_human, best, machine

SIZE = 512
VIEWS = 36


def _pyrender(mesh, cameras):
    import pyrender
    import trimesh
    from PIL import Image

    visual = trimesh.visual.TextureVisuals(
        uv=None, image=Image.fromarray(mesh.texture)
    )  # per-vertex UVs are needed by pyrender: split at seams
    corners = mesh.face_corners().reshape(-1, 3)
    tm = trimesh.Trimesh(corners, np.arange(len(corners)).reshape(-1, 3), process=False)
    visual.uv = mesh.face_corner_uvs().reshape(-1, 2)
    tm.visual = visual
    scene = pyrender.Scene(ambient_light=np.ones(3), bg_color=np.zeros(4))
    scene.add(pyrender.Mesh.from_trimesh(tm, smooth=False))
    k = cameras.K[0]
    cam = pyrender.IntrinsicsCamera(k[0, 0], k[1, 1], k[0, 2] + 0.5, k[1, 2] + 0.5, znear=0.05, zfar=20.0)
    node = scene.add(cam, pose=np.eye(4))
    renderer = pyrender.OffscreenRenderer(SIZE, SIZE)

    def run():
        out = []
        for w2c in cameras.world_to_cam:
            scene.set_pose(node, np.linalg.inv(w2c) @ np.diag([1.0, -1.0, -1.0, 1.0]))
            out.append(renderer.render(scene, flags=pyrender.RenderFlags.FLAT))
        return out

    return run, renderer


def run() -> dict:
    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    from avatarkit.geometry.surface import vertex_normals
    from avatarkit.io.hdf5 import write_artifact
    from avatarkit.render import lighting
    from avatarkit.render.raycast import RayCaster
    from avatarkit.render.render import RenderConfig, render
    from avatarkit.render.rigs import orbit, pifu_rig

    mesh = anny_human()
    v = mesh.vertices.astype(np.float64)
    center = 0.5 * (v.min(0) + v.max(0))
    radius = float(np.linalg.norm(v - center, axis=1).max())
    cameras = orbit(center, radius, np.arange(VIEWS) * 360.0 / VIEWS, [0.0], (SIZE, SIZE))
    ours = render(mesh, cameras, RenderConfig())
    ours_s = best(lambda: render(mesh, cameras, RenderConfig()))

    peer, renderer = _pyrender(mesh, cameras)
    peer_images = peer()
    peer_s = best(peer)
    renderer.delete()
    peer_mask = np.stack([d > 0 for _, d in peer_images])
    our_mask = ours.mask > 0
    iou = float((peer_mask & our_mask).sum() / (peer_mask | our_mask).sum())

    caster = RayCaster(mesh.vertices, mesh.faces)
    normals = vertex_normals(mesh).astype(np.float64)
    prt_s = best(lambda: lighting.prt_transfer(v, normals, caster.occluded), repeat=2)

    pifu = pifu_rig(mesh.vertices)
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        views = render(mesh, pifu, RenderConfig(lighting="prt"))
        render_360 = time.perf_counter() - t
        write_artifact(Path(d) / "v.h5", views)
        pifu_total = time.perf_counter() - t
    return {
        **machine(),
        "faces": len(mesh.faces),
        "views": VIEWS,
        "size": SIZE,
        "ours_5_buffers_s": round(ours_s, 3),
        "ours_views_per_s": round(VIEWS / ours_s, 1),
        "pyrender_rgb_depth_s": round(peer_s, 3),
        "pyrender_views_per_s": round(VIEWS / peer_s, 1),
        "speedup_vs_pyrender": round(peer_s / ours_s, 2),
        "mask_iou_ours_vs_pyrender": round(iou, 5),
        "prt_precompute_s": round(prt_s, 3),
        "pifu_360_views_prt_render_s": round(render_360, 2),
        "pifu_360_views_end_to_end_s": round(pifu_total, 2),
    }
