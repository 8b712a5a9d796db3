"""Whole processes, as a shell pipeline pays for them: start-up, imports, reading, work and
writing, each command run as its own process, side by side with its peer as a script.

- ``avatarkit --help``; ``sample-sdf`` and ``voxelize`` of a small mesh (start-up bound);
- ``sample-sdf`` of 250k points (DeepSDF's near-surface mix) on an Anny human against a
  script calling mesh-to-sdf's ``sample_sdf_near_surface`` and saving its points;
- ``voxelize`` of three Anny humans at 384 voxels against a script calling trimesh's
  ``voxelized(pitch).fill()`` on each and saving the grids;
- ``render`` of 72 views of 512 x 512 with every buffer written (rgb, mask, depth, normal,
  UV, label) against a script rendering rgb and depth with pyrender (OpenGL through Mesa EGL)
  and saving them.

Each figure is the fastest of ``REPEAT`` runs; the inputs are PLY files for both sides.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from common import anny_human, machine

REPEAT = 3
AVATARKIT = [sys.executable, "-m", "avatarkit"]

MESH_TO_SDF = """
import sys, numpy as np, trimesh, mesh_to_sdf
mesh = trimesh.load(sys.argv[1], force="mesh")
points, sdf = mesh_to_sdf.sample_sdf_near_surface(mesh, number_of_points=250_000)
np.savez(sys.argv[2], points=points, sdf=sdf)
"""

TRIMESH_VOXELIZE = """
import sys, numpy as np, trimesh
for i, path in enumerate(sys.argv[2:]):
    mesh = trimesh.load(path, force="mesh")
    pitch = float(mesh.extents.max()) / 384
    np.save(f"{sys.argv[1]}/{i}.npy", mesh.voxelized(pitch).fill().matrix)
"""

PYRENDER = """
import os, sys, numpy as np, trimesh, pyrender
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
mesh = trimesh.load(sys.argv[1], force="mesh")
center, radius = mesh.bounding_box.centroid, float(np.linalg.norm(mesh.vertices - mesh.bounding_box.centroid, axis=1).max())
scene = pyrender.Scene(ambient_light=np.ones(3), bg_color=np.zeros(4))
scene.add(pyrender.Mesh.from_trimesh(mesh, smooth=False))
f = 256 / np.tan(np.radians(20))
node = scene.add(pyrender.IntrinsicsCamera(f, f, 256, 256, znear=0.05, zfar=20.0), pose=np.eye(4))
renderer = pyrender.OffscreenRenderer(512, 512)
distance = radius / np.sin(np.arctan(0.9 * 512 / (2 * f)))
rgb, depth = [], []
for yaw in np.radians(np.arange(72) * 5.0):
    eye = center + distance * np.array([np.sin(yaw), 0.0, np.cos(yaw)])
    z = (eye - center) / np.linalg.norm(eye - center)
    x = np.cross([0.0, 1.0, 0.0], z); x /= np.linalg.norm(x)
    pose = np.eye(4); pose[:3, :3] = np.stack([x, np.cross(z, x), z], 1); pose[:3, 3] = eye
    scene.set_pose(node, pose)
    color, d = renderer.render(scene, flags=pyrender.RenderFlags.FLAT)
    rgb.append(color); depth.append(d)
np.savez(sys.argv[2], rgb=np.stack(rgb), depth=np.stack(depth))
renderer.delete()
"""


def _time(cmd: list[str], env: dict | None = None) -> float:
    times = []
    for _ in range(REPEAT):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, env=env)
        times.append(time.perf_counter() - t)
    return min(times)


def _script(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


def run() -> dict:
    import trimesh

    from avatarkit.io.meshfile import save_mesh
    from avatarkit.synth.generate import HumanGenerator, SynthConfig

    env = dict(os.environ, PYOPENGL_PLATFORM="egl")
    out: dict = {**machine(), "repeat": REPEAT}
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        small = d / "ico.ply"
        trimesh.creation.icosphere(subdivisions=3).export(small)
        human = anny_human()
        humans = [save_mesh(human, d / "human_0.ply")[0]]
        generator = HumanGenerator(SynthConfig(texture="none", texture_size=16))
        humans += [save_mesh(generator.subject(i), d / f"human_{i}.ply")[0] for i in (1, 2)]

        out["help_s"] = round(_time([*AVATARKIT, "--help"]), 2)
        out["small_sample_sdf_s"] = round(
            _time([*AVATARKIT, "sample-sdf", str(small), "-o", str(d / "s.h5"), "--points", "1000", "--overwrite"]), 2
        )
        out["small_voxelize_s"] = round(
            _time([*AVATARKIT, "voxelize", str(small), "-o", str(d / "v.h5"), "--resolution", "32", "--overwrite"]), 2
        )
        ours = _time([*AVATARKIT, "sample-sdf", str(humans[0]), "-o", str(d / "s250k.h5"), "--preset", "deepsdf",
                      "--points", "250000", "--overwrite"])  # fmt: skip
        peer = _time([*_script(MESH_TO_SDF), str(humans[0]), str(d / "m2s.npz")], env)
        out["sample_sdf_250k"] = {"ours_s": round(ours, 2), "mesh_to_sdf_s": round(peer, 2),
                                  "speedup": round(peer / ours, 1)}  # fmt: skip
        ours = _time([*AVATARKIT, "voxelize", *map(str, humans), "-o", str(d / "vox"), "--resolution", "384",
                      "--margin", "0", "--overwrite"])  # fmt: skip
        (d / "tv").mkdir()
        peer = _time([*_script(TRIMESH_VOXELIZE), str(d / "tv"), *map(str, humans)])
        out["voxelize_3x384"] = {"ours_s": round(ours, 2), "trimesh_s": round(peer, 2),
                                 "speedup": round(peer / ours, 1)}  # fmt: skip
        ours = _time([*AVATARKIT, "render", str(humans[0]), "-o", str(d / "views.h5"), "--views", "72",
                      "--size", "512", "--overwrite"])  # fmt: skip
        peer = _time([*_script(PYRENDER), str(humans[0]), str(d / "pyrender.npz")], env)
        out["render_72x512"] = {"ours_all_buffers_s": round(ours, 2), "pyrender_rgb_depth_s": round(peer, 2),
                                "speedup": round(peer / ours, 2)}  # fmt: skip
    return out
