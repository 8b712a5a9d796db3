"""Run every benchmark in this folder and write ``benchmarks/results.json``.

Each ``bench_*.py`` module has ``run() -> dict``: the timings of avatarkit and its peer
taken in the same process, and their ratio.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

HERE = Path(__file__).parent


def main(selected: list[str]) -> None:
    results = {}
    for path in sorted(HERE.glob("bench_*.py")):
        name = path.stem.removeprefix("bench_")
        if selected and name not in selected:
            continue
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        print(f"== {name}", flush=True)
        results[name] = module.run()
        for key, value in results[name].items():
            print(f"  {key}: {value}")
    (HERE / "results.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
