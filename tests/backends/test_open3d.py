"""open3d imports on a machine without the system libusb, through the bundled one."""

from __future__ import annotations

import subprocess
import sys


def test_open3d_imports_with_bundled_libusb():
    code = (
        "from avatarkit.backends.open3d import import_open3d, preload_libusb;"
        "o3d = import_open3d(); import numpy as np;"
        "s = o3d.t.geometry.RaycastingScene();"
        "import open3d.core as c;"
        "v = c.Tensor(np.array([[0,0,0],[1,0,0],[0,1,0]], np.float32));"
        "f = c.Tensor(np.array([[0,1,2]], np.uint32)); s.add_triangles(v, f);"
        "maps = [l.split()[-1] for l in open('/proc/self/maps') if 'libusb-1.0' in l];"
        "print(preload_libusb()); print(sorted(set(maps)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    bundled, loaded = out.stdout.strip().splitlines()
    assert "libusb_package" in bundled
    assert bundled in loaded  # the library open3d uses is the one we ship, whatever the system has
