"""Phorhum against PIFu on the same synthetic people, the same held-out people and the same
wall-clock training budget (issue 17, "Measured"): geometry for both, albedo for Phorhum.

The pipeline, sized by environment variables:

- ``PEOPLE`` synthetic people (``synth --texture clothes --seed 0``), rendered once with
  ``render --preset pifu --views VIEWS --size SIZE --lighting prt --hdri HDRI`` (default
  ``sky``, the built-in procedural sky: each view lit by its own sky; the views keep the true
  albedo in ``/images/albedo``); ``sample-sdf --preset osa --points POINTS`` for Phorhum and
  ``--preset pifu`` for PIFu (each method's own samples of the same meshes);
- the last ``TEST`` people are held out: the training files are passed by name, so they are
  never seen (each trainer's validation subject comes out of the others);
- ``train pifu --config small`` and ``train phorhum --config small`` for ``SECONDS`` of wall
  clock each (``--max-time``): with ``PARALLEL=1`` (the default) both at once, one thread each,
  so that the machine's other load falls on both alike, with the CPU seconds each used
  reported (``common.together``); with ``PARALLEL=0`` one after the other, all threads each;
  ``TRAIN_ARGS`` adds options to both, ``PHORHUM_ARGS`` to Phorhum's;
- each held-out person is reconstructed from its view 0 (the front) at ``RESOLUTION`` with the
  last checkpoint of each run, and scored with ``evaluate-chamfer`` (default protocol: chamfer
  and P2S in cm, normal consistency);
- Phorhum's coloured mesh is rendered unlit (``render --cameras VIEWS --lighting none``: its
  vertex albedo) from the held-out view's camera (front) and from the opposite camera (back),
  and compared with the true albedo renders in the views file: PSNR (dB) and SSIM over the whole
  image (black background in both), as Phorhum's Table 2 reports albedo front and back; and,
  since the background inflates both, PSNR over the true mask's pixels and SSIM over the
  masks' bounding box (``_fg``), beside the same scores of a flat guess (the true silhouette
  filled with the person's mean albedo, ``flat_``) for scale;
- ``TRAIN`` (default ``pifu,phorhum``) names the methods trained; a method left out is scored
  from its run already in ``OUT/runs`` (to retrain one method against the other's last run).

    python benchmarks/bench_phorhum.py OUT     # or through benchmarks/run.py phorhum
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from common import AVATARKIT, flags, machine, metrics, setting, timed, together

PAPER = {  # Phorhum (Alldieck et al. 2022), as listed by a paper-tracking site; not checked against the paper's tables
    "chamfer": 1.1,
    "albedo_front_ssim": 0.85,
    "albedo_back_ssim": 0.76,
    "shaded_front_ssim": 0.86,
    "normal_front_angular_deg": 18.41,
    "normal_back_angular_deg": 22.82,
    "source": "wizwand.com's listing of arXiv 2204.08906 (Monocular 3D Human Reconstruction test set); unverified",
}


def mean(values: list) -> float | None:
    values = [v for v in values if isinstance(v, (int, float))]
    return sum(values) / len(values) if values else None


def albedo_scores(pred_views: Path, truth_views: Path, front: int, back: int) -> dict:
    """PSNR (dB) and SSIM of the predicted mesh's unlit renders against the true albedo renders."""
    import numpy as np
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    from avatarkit.io.hdf5 import read_artifact

    pred, truth = read_artifact(pred_views, "views"), read_artifact(truth_views, "views")
    if truth.albedo is None:
        raise RuntimeError(f"{truth_views} has no /images/albedo (render it lit)")
    out = {}
    for name, i in (("front", front), ("back", back)):
        inside = truth.mask[i] > 0
        b = np.where(inside[..., None], truth.albedo[i], 0).astype(np.uint8)
        flat = np.where(inside[..., None], np.rint(truth.albedo[i][inside].mean(0)), 0).astype(np.uint8)
        rows, cols = np.nonzero(inside | (pred.mask[i] > 0))
        box = (slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))
        for prefix, a in (("", pred.rgb[i]), ("flat_", flat)):
            key = f"{prefix}albedo_{name}"
            out[f"{key}_psnr"] = float(peak_signal_noise_ratio(b, a, data_range=255))
            out[f"{key}_ssim"] = float(structural_similarity(b, a, channel_axis=-1, data_range=255))
            out[f"{key}_psnr_fg"] = float(peak_signal_noise_ratio(b[inside], a[inside], data_range=255))
            out[f"{key}_ssim_fg"] = float(structural_similarity(b[box], a[box], channel_axis=-1, data_range=255))
    return out


def run(out: Path | None = None) -> dict:
    people, test = int(setting("PEOPLE", "15")), int(setting("TEST", "6"))
    size, views_n = int(setting("SIZE", "256")), int(setting("VIEWS", "8"))
    points, resolution = int(setting("POINTS", "200000")), int(setting("RESOLUTION", "128"))
    budget = float(setting("SECONDS", "600"))
    hdri = setting("HDRI", "sky")
    extra = setting("TRAIN_ARGS", "").split()
    phorhum_extra = setting("PHORHUM_ARGS", "").split()
    parallel = setting("PARALLEL", "1") == "1"
    root = Path(out or tempfile.mkdtemp(prefix="bench_phorhum_"))
    root.mkdir(parents=True, exist_ok=True)
    data, seconds = root / "data", {}
    started = time.perf_counter()

    if not (data / "samples_pifu").is_dir():
        timed(seconds, "synth", "synth", "-n", people, "--texture", "clothes", "--seed", 0, "-o", data / "meshes", "-q")
        meshes = sorted((data / "meshes").glob("*.h5"))
        timed(seconds, "render", "render", *meshes, "-o", data / "views", "--preset", "pifu", "--views", views_n,
              "--size", size, "--lighting", "prt", "--hdri", hdri, "-q")  # fmt: skip
        timed(seconds, "sample_sdf", "sample-sdf", *meshes, "-o", data / "samples_osa", "--preset", "osa",
              "--points", points, "-q")  # fmt: skip
        timed(seconds, "sample_sdf", "sample-sdf", *meshes, "-o", data / "samples_pifu", "--preset", "pifu", "-q")
    stems = sorted(p.stem for p in (data / "meshes").glob("*.h5"))
    train_stems, test_stems = stems[:-test], stems[-test:]

    def files(kind: str, chosen: list[str]) -> list[Path]:
        return [data / kind / f"{s}.h5" for s in chosen]

    views = files("views", train_stems)
    common = ["--config", "small", "--max-steps", 1_000_000, "--device", "cpu", "--overwrite", "-q", *extra]
    runs = {"pifu": root / "runs" / "pifu", "phorhum": root / "runs" / "phorhum"}
    samples = {"pifu": files("samples_pifu", train_stems), "phorhum": files("samples_osa", train_stems)}
    method_args = {"pifu": [], "phorhum": phorhum_extra}
    trained = setting("TRAIN", "pifu,phorhum").split(",")
    jobs = {
        f"train_{method}": ["train", method, *flags("--views", views), *flags("--samples", samples[method]),
                            "-o", run_dir, *common, "--max-time", budget, *method_args[method]]
        for method, run_dir in runs.items()
        if method in trained
    }  # fmt: skip
    cpu = {}
    if parallel and len(jobs) > 1:
        cpu = together({key: [*AVATARKIT, *args] for key, args in jobs.items()}, seconds)
    else:
        for key, args in jobs.items():
            timed(seconds, key, *args)
    curves = {m: metrics(r) for m, r in runs.items()}
    steps = {m: max((int(r.get("step", 0)) for r in c), default=0) for m, c in curves.items()}

    rows = []
    for method, run_dir in runs.items():
        for stem in test_stems:
            pred = root / "preds" / method / f"{stem}.h5"
            truth_views = data / "views" / f"{stem}.h5"
            timed(seconds, f"reconstruct_{method}", "reconstruct", run_dir, truth_views, "--view", 0, "-o", pred,
                  "--resolution", resolution, "--checkpoint", "last", "--device", "cpu", "--overwrite", "-q")  # fmt: skip
            gt = data / "meshes" / f"{stem}.h5"
            row = {"method": method, "person": stem}
            row.update(timed(seconds, "evaluate", "evaluate-chamfer", pred, gt, "--json", json_out=True))
            if method == "phorhum":
                rendered = root / "preds" / "renders" / f"{stem}.h5"
                timed(seconds, "render_pred", "render", pred, "--cameras", truth_views, "-o", rendered,
                      "--lighting", "none", "--overwrite", "-q")  # fmt: skip
                row.update(albedo_scores(rendered, truth_views, 0, views_n // 2))
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)

    scores = [f"{p}albedo_{v}_{m}" for p in ("", "flat_") for v in ("front", "back")
              for m in ("psnr", "ssim", "psnr_fg", "ssim_fg")]  # fmt: skip
    keys = ("chamfer_l1", "p2s", "normal_consistency", *scores)
    table = {m: {k: mean([r.get(k) for r in rows if r["method"] == m]) for k in keys} for m in runs}
    table = {m: {k: v for k, v in t.items() if v is not None} for m, t in table.items()}
    ratio = {k: table["phorhum"][k] / table["pifu"][k] for k in ("chamfer_l1", "p2s") if table["pifu"].get(k)}
    result = {
        "machine": machine(),
        "settings": {
            "people": people,
            "test": test,
            "test_people": test_stems,
            "size": size,
            "views": views_n,
            "hdri": hdri,
            "points": points,
            "resolution": resolution,
            "seconds_each": budget,
            "config": "small",
            "train_args": extra,
            "phorhum_args": phorhum_extra,
            "trained": trained,
            "parallel": parallel,
        },
        "steps": steps,
        "train_cpu_seconds": cpu,
        "curves": curves,
        "table": table,
        "ratio_phorhum_over_pifu": ratio,
        "targets": {
            "geometry_no_worse_than_pifu": bool(ratio) and ratio.get("chamfer_l1", 2.0) <= 1.0,
            "albedo_front_ssim_at_least_0.8": table["phorhum"].get("albedo_front_ssim", 0.0) >= 0.8,
        },
        "paper": PAPER,
        "rows": rows,
        "part_seconds": seconds,
        "seconds": round(time.perf_counter() - started, 1),
    }
    (root / "bench_phorhum.json").write_text(json.dumps(result, indent=2, default=float) + "\n")
    print_table(result)
    return result


def print_table(result: dict) -> None:
    def f(value, scale: float = 1.0) -> str:
        return "-" if value is None else f"{value * scale:.4g}"

    print("| method | steps | chamfer cm | P2S cm | normal consistency | albedo front PSNR / SSIM | "
          "albedo back PSNR / SSIM |", file=sys.stderr)  # fmt: skip
    print("|---|---|---|---|---|---|---|", file=sys.stderr)
    for method in ("pifu", "phorhum"):
        t = result["table"][method]
        print(
            f"| {method} | {result['steps'][method]} | {f(t.get('chamfer_l1'), 100)} | {f(t.get('p2s'), 100)} | "
            f"{f(t.get('normal_consistency'))} | {f(t.get('albedo_front_psnr'))} / {f(t.get('albedo_front_ssim'))} | "
            f"{f(t.get('albedo_back_psnr'))} / {f(t.get('albedo_back_ssim'))} |",
            file=sys.stderr,
        )
    print(f"ratio phorhum/pifu: {result['ratio_phorhum_over_pifu']}; targets: {result['targets']}", file=sys.stderr)


if __name__ == "__main__":
    print(json.dumps(run(Path(sys.argv[1]) if len(sys.argv) > 1 else None), indent=2, default=float))
