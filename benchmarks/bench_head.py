"""Few-shot heads, H3DS protocol: a DeepSDF head prior (H3D-Net) against no prior (IDR), and
the volume renderer (NeuS) against sphere tracing (IDR), on synthetic heads the prior never saw.

The pipeline is the one ``examples/head_pipeline.sh`` runs, sized by environment variables
(defaults fit a 2-core CPU in about an hour):

- ``HEADS`` training heads (``synth --part head --expressions``), ``sample-sdf --preset
  deepsdf`` (``POINTS`` each), ``train deepsdf --config small`` for ``PRIOR_SECONDS``;
- ``TEST`` held-out heads (seed 777) rendered with ``render --preset h3ds`` (``SIZE`` px high);
- ``fit-head --config small`` (``FIT_STEPS`` steps) at each of ``VIEWS`` (H3DS subsets), with
  the prior and with ``--no-prior``, with each of ``RENDERERS``;
- ``evaluate-chamfer --protocol h3ds``: mean ground truth to prediction distance in mm over the
  full head and the face region, as H3D-Net reports (its Table 2: 3 views, H3D-Net 1.33 face /
  10.52 head, IDR 2.79 / 14.58; 32 views, H3D-Net 1.03 / 5.25).

    python benchmarks/bench_head.py OUT       # or through benchmarks/run.py head
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from common import avatarkit, machine, setting


def run(out: Path | None = None) -> dict:
    heads, test = int(setting("HEADS", "60")), int(setting("TEST", "2"))
    points, size = int(setting("POINTS", "100000")), int(setting("SIZE", "256"))
    prior_seconds, fit_steps = int(setting("PRIOR_SECONDS", "600")), int(setting("FIT_STEPS", "600"))
    view_counts = [int(v) for v in setting("VIEWS", "3,8").split(",")]
    renderers = setting("RENDERERS", "surface,volume").split(",")
    root = Path(out or tempfile.mkdtemp(prefix="bench_head_"))
    root.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    if not (root / "prior" / "checkpoints" / "last.pt").is_file():
        avatarkit("synth", "-n", heads, "--part", "head", "--expressions", "--seed", 0, "-o", root / "heads", "-q")
        avatarkit("sample-sdf", *sorted((root / "heads").glob("*.h5")), "-o", root / "samples", "--preset", "deepsdf",
                  "--points", points, "-q")  # fmt: skip
        avatarkit("train", "deepsdf", "--samples", root / "samples", "-o", root / "prior", "--config", "small",
                  "--max-steps", 1_000_000, "--max-time", prior_seconds, "--val-fraction", 0.1, "--overwrite", "-q")  # fmt: skip
    prior_metrics = [json.loads(line) for line in (root / "prior" / "metrics.jsonl").read_text().splitlines()]
    if not (root / "test").is_dir():
        avatarkit("synth", "-n", test, "--part", "head", "--expressions", "--seed", 777, "-o", root / "test", "-q")
    rows = []
    for gt in sorted((root / "test").glob("*.h5")):
        scene = root / "scenes" / gt.stem  # an IDR/H3DS folder, as the user's pipeline makes it
        if not (scene / "cameras.npz").is_file():
            avatarkit("render", gt, "--preset", "h3ds", "--size", size, "--export", "idr", "-o", scene, "-q")
        for views in view_counts:
            for renderer in renderers:
                for prior in ("prior", "none"):
                    name = f"{gt.stem}_v{views}_{renderer}_{prior}"
                    fit = root / "fits" / f"{name}.h5"
                    source = ["--prior", root / "prior"] if prior == "prior" else ["--no-prior"]
                    done = fit.with_suffix(".json")
                    if done.is_file():  # a rerun keeps the fits it has (remove fits/ to redo them)
                        rows.append(json.loads(done.read_text()))
                        continue
                    summary = avatarkit("fit-head", scene, *source, "--views", views, "--config", "small",
                                        "--renderer", renderer, "--steps", fit_steps, "-o", fit, "--overwrite",
                                        "--json", json_out=True)  # fmt: skip
                    head = avatarkit("evaluate-chamfer", fit, gt, "--protocol", "h3ds", "--json", json_out=True)
                    face = avatarkit("evaluate-chamfer", fit, gt, "--protocol", "h3ds", "--region", "face", "--json",
                                     json_out=True)  # fmt: skip
                    row = {
                        "head_id": gt.stem, "views": views, "renderer": renderer, "prior": prior == "prior",
                        "head_mm": head["gt_to_pred"], "face_mm": face["gt_to_pred"],
                        "fit_seconds": summary["fit_seconds"],
                    }  # fmt: skip
                    rows.append(row)
                    done.write_text(json.dumps(row) + "\n")
                    print(json.dumps(row), file=sys.stderr, flush=True)
    table = {}
    for views in view_counts:
        for renderer in renderers:
            for prior in (True, False):
                sel = [r for r in rows if r["views"] == views and r["renderer"] == renderer and r["prior"] == prior]
                if not sel:
                    continue
                key = f"v{views}_{renderer}_{'prior' if prior else 'no_prior'}"
                table[key] = {
                    "face_mm": sum(r["face_mm"] for r in sel) / len(sel),
                    "head_mm": sum(r["head_mm"] for r in sel) / len(sel),
                    "fit_seconds": sum(r["fit_seconds"] for r in sel) / len(sel),
                }
    result = {
        "machine": machine(),
        "settings": {
            "heads": heads,
            "test": test,
            "points": points,
            "size": size,
            "prior_seconds": prior_seconds,
            "fit_steps": fit_steps,
        },
        "prior_last_validation": prior_metrics[-1] if prior_metrics else {},
        "table": table,
        "rows": rows,
        "seconds": round(time.perf_counter() - started, 1),
    }
    (root / "bench_head.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    print(json.dumps(run(Path(sys.argv[1]) if len(sys.argv) > 1 else None), indent=2))
