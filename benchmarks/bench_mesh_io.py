"""Mesh I/O: avatarkit's mesh HDF5 against OBJ through trimesh, on an Anny human.

Both sides store the same textured, UV-mapped mesh; the ratio says how much faster a
pipeline step reads its input from our HDF5 than from the OBJ it would otherwise use.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from common import best


def run() -> dict:
    from avatarkit.io.hdf5 import read_mesh, write_artifact
    from avatarkit.io.meshfile import load_mesh, save_mesh
    from avatarkit.synth.generate import HumanGenerator, SynthConfig

    t = time.perf_counter()
    generator = HumanGenerator(SynthConfig(texture="clothes"))
    load = time.perf_counter() - t
    synth = best(lambda: generator.subject(0), repeat=3)
    mesh = generator.subject(0)
    with tempfile.TemporaryDirectory() as d:
        h5, obj = Path(d) / "h.h5", Path(d) / "h.obj"
        write_h5 = best(lambda: write_artifact(h5, mesh))
        write_obj = best(lambda: save_mesh(mesh, obj))
        read_h5 = best(lambda: read_mesh(h5))
        read_obj = best(lambda: load_mesh(obj))
        size_h5, size_obj = h5.stat().st_size, sum(p.stat().st_size for p in Path(d).glob("h.*") if p != h5)
    return {
        "faces": len(mesh.faces),
        "anny_load_s": round(load, 3),
        "synth_one_person_s": round(synth, 3),
        "write_h5_s": round(write_h5, 4),
        "write_obj_trimesh_s": round(write_obj, 4),
        "read_h5_s": round(read_h5, 4),
        "read_obj_trimesh_s": round(read_obj, 4),
        "read_speedup_h5_vs_obj": round(read_obj / read_h5, 1),
        "write_speedup_h5_vs_obj": round(write_obj / write_h5, 1),
        "bytes_h5": size_h5,
        "bytes_obj_mtl_png": size_obj,
    }
