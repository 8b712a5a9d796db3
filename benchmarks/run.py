"""Run every benchmark in this folder and write ``benchmarks/results.json``.

Each ``bench_*.py`` module has ``run() -> dict``: the timings of avatarkit and its peer
taken in the same process, and their ratio. Every module runs in a fresh process of its
own: no import state, cache or thread pool carries over from one benchmark to the next
(mesh-to-sdf, for one, must be imported before pyrender).

    python benchmarks/run.py [NAME...]     # e.g. sample_sdf voxelize

Peers that are not avatarkit dependencies are installed by hand: ``landmarks`` compares with
dlib (``pip install dlib-bin face_recognition_models``; ``REAL_PHOTOS=DIR`` adds insightface's
sample photos) and measures only our side without it. ``geopifu`` (PIFu against Geo-PIFu, trained
for the same wall clock on the same people; sized by ``PEOPLE``, ``TEST``, ``SIZE``, ``SECONDS``,
``RESOLUTION``, ``CONFIG``, ``TRAIN_ARGS``) takes minutes per method, like ``head``; so does ``phorhum``
(Phorhum against PIFu for the same wall clock, geometry and albedo PSNR/SSIM; sized by ``PEOPLE``,
``TEST``, ``SIZE``, ``VIEWS``, ``POINTS``, ``SECONDS``, ``RESOLUTION``, ``HDRI``, ``TRAIN_ARGS``,
``PHORHUM_ARGS``). ``view`` (frames per second of ``avatarkit view`` by point count in headless
Chromium; ``POINTS``, ``SECONDS``, ``CHROMIUM_FLAGS``) needs Debian's ``chromium``, as the
viewer's screenshots do. ``texture`` (Sample&Refine against mirror only, OpenCV's Telea and
SamplerNet alone, one view in; ``PEOPLE``, ``TEST``, ``SIZE``, ``RENDER``, ``SECONDS``, ``CONFIG``,
``YAWS``) trains for ``SECONDS`` too and needs OpenCV (the ``test`` extra).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent


def run_one(name: str) -> dict:
    path = HERE / f"bench_{name}.py"
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.run()


def main(selected: list[str]) -> None:
    out = HERE / "results.json"
    # a partial run updates the benchmarks it ran and keeps the others' last results
    results = json.loads(out.read_text()) if selected and out.is_file() else {}
    failed = []
    for path in sorted(HERE.glob("bench_*.py")):
        name = path.stem.removeprefix("bench_")
        if selected and name not in selected:
            continue
        print(f"== {name}", flush=True)
        done = subprocess.run(
            [sys.executable, __file__, "--one", name], stdout=subprocess.PIPE, text=True, cwd=HERE, check=False
        )
        if done.returncode != 0:
            print(f"  failed (exit {done.returncode})", flush=True)
            failed.append(name)
            continue
        results[name] = json.loads(done.stdout.strip().splitlines()[-1])
        for key, value in results[name].items():
            print(f"  {key}: {value}", flush=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    if failed:
        sys.exit(f"benchmarks failed: {', '.join(failed)}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--one"]:
        result = run_one(sys.argv[2])
        sys.stdout.write("\n" + json.dumps(result, default=float) + "\n")
    else:
        main(sys.argv[1:])
