"""PIFu against Geo-PIFu on the same data, the same held-out people and the same wall-clock
training budget (issue 15, "Measured").

The pipeline, sized by environment variables:

- ``PEOPLE`` synthetic people (``synth --seed 0``), rendered once with ``render --preset
  RENDER_PRESET`` (default geopifu: orthographic, 4 yaws, ``SIZE`` px high), ``voxelize
  --preset geopifu`` and ``sample-sdf --preset geopifu``: both methods train on the same views
  and the same samples;
- the last ``TEST`` people are held out: the training files are passed by name, so they are
  never seen (each trainer's ``--val-fraction`` validation subject comes out of the others);
- ``train pifu --config CONFIG`` (default small) and ``train geopifu`` for ``SECONDS`` of wall
  clock each (``--max-time``): with ``PARALLEL=1`` (the default) both at once, one thread each,
  so that the machine's other load falls on both alike, with the CPU seconds each used
  reported; with ``PARALLEL=0`` one after the other, all threads each. Geo-PIFu is one
  ``--stage both`` run (its stage 2 begins once ``COARSE_SHARE`` of the time is spent); with
  ``PARALLEL=0 GEO_MODE=split`` two runs as Geo-PIFu trains (``--stage coarse`` for that share
  of the time, then ``--stage query --coarse-run`` for the rest); ``GEO_ARGS``: options for
  ``train geopifu`` alone;
- ``reconstruct RUN VIEWS --view 0 --resolution RESOLUTION`` of each held-out person with both
  runs, scored with ``evaluate-chamfer --protocol geopifu`` (vertex CD and PSD x1e4, normal
  cosine; Geo-PIFu's Table 1 on DeepHuman: PIFu 2.604 / 4.026 / 0.0914, Geo-PIFu 1.742 /
  1.922 / 0.0682) and the default protocol (chamfer, P2S in cm, normal consistency).

    python benchmarks/bench_geopifu.py OUT     # or through benchmarks/run.py geopifu
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from common import AVATARKIT, flags, machine, metrics, setting, timed, together

PAPER = {  # Geo-PIFu (He et al. 2020) Table 1, DeepHuman test set: CD, PSD (x1e4), normal cosine
    "pifu": {"cd": 2.604, "psd": 4.026, "normal_cosine": 0.0914},
    "geopifu": {"cd": 1.742, "psd": 1.922, "normal_cosine": 0.0682},
}


def last_step(rows: list[dict]) -> int:
    return max((int(r.get("step", 0)) for r in rows), default=0)


def query_from(run: Path) -> int | None:
    """The step a --stage both run's stage 2 began at (saved with its last checkpoint)."""
    from avatarkit.methods import checkpoint

    return checkpoint.load(checkpoint.find(run, "last")).get("method_state", {}).get("query_from")


def mean(rows: list[dict], key: str) -> float | None:
    values = [r[key] for r in rows if isinstance(r.get(key), (int, float))]
    return sum(values) / len(values) if values else None


def run(out: Path | None = None) -> dict:
    people, test = int(setting("PEOPLE", "12")), int(setting("TEST", "3"))
    size, resolution = int(setting("SIZE", "256")), int(setting("RESOLUTION", "128"))
    budget = float(setting("SECONDS", "300"))
    render_preset = setting("RENDER_PRESET", "geopifu")
    geo_mode = setting("GEO_MODE", "both")
    parallel = setting("PARALLEL", "1") == "1"
    geo_extra = setting("GEO_ARGS", "").split()  # options for train geopifu only, e.g. --coarse-upsample 4
    coarse_share = float(setting("COARSE_SHARE", "0.45"))
    config = setting("CONFIG", "small")  # small (CPU) or default (the papers' networks)
    extra = setting("TRAIN_ARGS", "").split()  # options for both trainers, e.g. --image-size 128
    root = Path(out or tempfile.mkdtemp(prefix="bench_geopifu_"))
    root.mkdir(parents=True, exist_ok=True)
    data, seconds = root / "data", {}
    started = time.perf_counter()

    if not (data / "samples").is_dir():
        timed(seconds, "synth", "synth", "-n", people, "--seed", 0, "-o", data / "meshes", "-q")
        meshes = sorted((data / "meshes").glob("*.h5"))
        timed(
            seconds, "render", "render", *meshes, "-o", data / "views", "--preset", render_preset, "--size", size, "-q"
        )
        timed(seconds, "voxelize", "voxelize", *meshes, "-o", data / "voxels", "--preset", "geopifu", "-q")
        timed(seconds, "sample_sdf", "sample-sdf", *meshes, "-o", data / "samples", "--preset", "geopifu", "-q")
    stems = sorted(p.stem for p in (data / "meshes").glob("*.h5"))
    train_stems, test_stems = stems[:-test], stems[-test:]

    def files(kind: str, chosen: list[str]) -> list[Path]:
        return [data / kind / f"{s}.h5" for s in chosen]

    views, voxels, samples = files("views", train_stems), files("voxels", train_stems), files("samples", train_stems)
    common = ["--config", config, "--max-steps", 1_000_000, "--device", "cpu", "--overwrite", "-q", *extra]
    runs = {"pifu": root / "runs" / "pifu", "geopifu": root / "runs" / "geopifu"}

    pifu_args = ["train", "pifu", *flags("--views", views), *flags("--samples", samples), "-o", runs["pifu"],
                 *common, "--max-time", budget]  # fmt: skip
    geo = [*flags("--views", views), *flags("--voxels", voxels), *flags("--samples", samples)]
    geo_args = ["train", "geopifu", *geo, "-o", runs["geopifu"], *common, "--stage", "both",
                "--coarse-share", coarse_share, "--max-time", budget, *geo_extra]  # fmt: skip
    cpu = {}
    if parallel:  # both at once, one thread each: whatever else the machine runs loads both alike
        cpu = together({"train_pifu": [*AVATARKIT, *pifu_args], "train_geopifu": [*AVATARKIT, *geo_args]}, seconds)
        geo_mode = "both"
    else:
        timed(seconds, "train_pifu", *pifu_args)
    curves = {"pifu": metrics(runs["pifu"])}
    steps = {"pifu": last_step(curves["pifu"])}
    if parallel:
        curves["geopifu"] = metrics(runs["geopifu"])
        steps["geopifu"] = last_step(curves["geopifu"])
        steps["geopifu_query_from"] = query_from(runs["geopifu"])
    elif geo_mode == "both":
        timed(seconds, "train_geopifu", *geo_args)
        curves["geopifu"] = metrics(runs["geopifu"])
        steps["geopifu"] = last_step(curves["geopifu"])
        steps["geopifu_query_from"] = query_from(runs["geopifu"])
    else:
        coarse = root / "runs" / "geopifu_coarse"
        timed(seconds, "train_geopifu", "train", "geopifu", *geo, "-o", coarse, *common,
              "--stage", "coarse", "--max-time", round(coarse_share * budget, 1))  # fmt: skip
        timed(seconds, "train_geopifu", "train", "geopifu", *geo, "-o", runs["geopifu"], *common,
              "--stage", "query", "--coarse-run", coarse, "--max-time", round((1 - coarse_share) * budget, 1))  # fmt: skip
        curves["geopifu_coarse"], curves["geopifu"] = metrics(coarse), metrics(runs["geopifu"])
        steps["geopifu_coarse"], steps["geopifu_query"] = (
            last_step(curves["geopifu_coarse"]),
            last_step(curves["geopifu"]),
        )
        steps["geopifu"] = steps["geopifu_coarse"] + steps["geopifu_query"]

    rows = []
    for method, run_dir in runs.items():
        for stem in test_stems:
            pred = root / "preds" / method / f"{stem}.h5"
            timed(seconds, f"reconstruct_{method}", "reconstruct", run_dir, data / "views" / f"{stem}.h5",
                  "--view", 0, "-o", pred, "--resolution", resolution, "--device", "cpu", "--overwrite", "-q")  # fmt: skip
            gt = data / "meshes" / f"{stem}.h5"
            geo_m = timed(seconds, "evaluate", "evaluate-chamfer", pred, gt, "--protocol", "geopifu", "--json",
                          json_out=True)  # fmt: skip
            default = timed(seconds, "evaluate", "evaluate-chamfer", pred, gt, "--json", json_out=True)
            row = {"method": method, "person": stem, "geopifu": geo_m, "default": default}
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)

    table = {}
    for method in runs:
        sel = [r for r in rows if r["method"] == method]
        table[method] = {
            "geopifu": {k: mean([r["geopifu"] for r in sel], k) for k in sel[0]["geopifu"] if k != "protocol"},
            "default": {k: mean([r["default"] for r in sel], k) for k in sel[0]["default"] if k != "protocol"},
        }
        table[method] = {p: {k: v for k, v in m.items() if v is not None} for p, m in table[method].items()}
    ratio = {}
    for protocol, key in (("geopifu", "chamfer"), ("default", "chamfer_l1"), ("default", "p2s")):
        a, b = table["geopifu"][protocol].get(key), table["pifu"][protocol].get(key)
        if a is not None and b:
            ratio[f"{protocol}_{key}"] = a / b
    result = {
        "machine": machine(),
        "settings": {
            "people": people,
            "test": test,
            "test_people": test_stems,
            "size": size,
            "render_preset": render_preset,
            "sample_preset": "geopifu",
            "resolution": resolution,
            "seconds_each": budget,
            "geo_mode": geo_mode,
            "coarse_share": coarse_share,
            "parallel": parallel,
            "geo_args": geo_extra,
            "config": config,
            "train_args": extra,
        },
        "steps": steps,
        "train_cpu_seconds": cpu,
        "curves": curves,
        "table": table,
        "ratio_geopifu_over_pifu": ratio,
        "target_met": ratio.get("geopifu_chamfer", 1.0) <= 0.8,
        "paper": PAPER,
        "rows": rows,
        "part_seconds": seconds,
        "seconds": round(time.perf_counter() - started, 1),
    }
    (root / "bench_geopifu.json").write_text(json.dumps(result, indent=2, default=float) + "\n")
    print_table(result)
    return result


def print_table(result: dict) -> None:
    def cm(value):
        return None if value is None else 100 * value

    def f(value) -> str:
        return "-" if value is None else f"{value:.4g}"

    print(
        "| method | steps | CD (geopifu) | PSD x1e4 | normal cos | chamfer_l1 cm | P2S cm | normal consistency |",
        file=sys.stderr,
    )
    print("|---|---|---|---|---|---|---|---|", file=sys.stderr)
    for method in ("pifu", "geopifu"):
        g, d = result["table"][method]["geopifu"], result["table"][method]["default"]
        print(
            f"| {method} (here) | {result['steps'][method]} | {f(g.get('chamfer'))} | {f(g.get('psd'))} | "
            f"{f(g.get('normal_cos'))} | {f(cm(d.get('chamfer_l1')))} | {f(cm(d.get('p2s')))} | "
            f"{f(d.get('normal_consistency'))} |",
            file=sys.stderr,
        )
    for method, p in PAPER.items():
        print(
            f"| {method} (paper, DeepHuman) | | {p['cd']} | {p['psd']} | {p['normal_cosine']} | | | |", file=sys.stderr
        )
    print(f"ratio geopifu/pifu: {result['ratio_geopifu_over_pifu']}", file=sys.stderr)


if __name__ == "__main__":
    print(json.dumps(run(Path(sys.argv[1]) if len(sys.argv) > 1 else None), indent=2, default=float))
