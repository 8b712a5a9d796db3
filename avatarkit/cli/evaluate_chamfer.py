"""``avatarkit evaluate-chamfer``: Chamfer, P2S, normal consistency, F-score between meshes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from avatarkit.cli import console
from avatarkit.cli.options import Device, Json, Quiet, Seed, Up


def evaluate_chamfer(
    pred: Annotated[Path, typer.Argument(help="Predicted mesh, a folder of them, or a pairs file (PRED GT per line).")],
    gt: Annotated[Path | None, typer.Argument(help="Ground-truth mesh or folder (matched by file stem).")] = None,
    protocol: Annotated[
        Literal["default", "pifuhd", "icon", "h3ds"], typer.Option(help="Named protocol (docs/evaluation.md).")
    ] = "default",
    region: Annotated[
        Literal["face"] | None, typer.Option(help="h3ds: evaluate the ground truth's face region only.")
    ] = None,
    landmarks_pred: Annotated[
        Path | None, typer.Option(help="h3ds: landmarks on the prediction, 'name vertex_id' lines.")
    ] = None,
    landmarks_gt: Annotated[
        Path | None, typer.Option(help="h3ds: landmarks on the ground truth (default: the mesh file's).")
    ] = None,
    gt_region: Annotated[
        Path | None, typer.Option(help="h3ds: the ground truth's face region, vertex indices.")
    ] = None,
    samples: Annotated[int | None, typer.Option(help="Points sampled per surface (default: the protocol's).")] = None,
    tau: Annotated[list[float] | None, typer.Option(help="F-score threshold in metres; repeat for several.")] = None,
    units: Annotated[
        Literal["m", "cm", "mm"] | None, typer.Option(help="Units to report in (default: the protocol's).")
    ] = None,
    input_units: Annotated[
        str | None, typer.Option(help="Units of mesh files (m, cm, mm), for both meshes; .h5 are metres.")
    ] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="metrics .h5 with per-point errors.")] = None,
    heatmap: Annotated[
        Path | None, typer.Option(help="The prediction coloured by its distance to the ground truth: .ply or .png.")
    ] = None,
    seed: Seed = 0,
    device: Device = "auto",
    up: Up = "y",
    quiet: Quiet = False,
    json: Json = False,
) -> None:
    """Evaluate predicted meshes against ground truth with one documented protocol.

    Prints accuracy (prediction to ground truth), completeness (the reverse), chamfer_l1,
    chamfer_l2, p2s (ground-truth samples to the predicted surface, exact),
    normal_consistency, fscore at each --tau and hausdorff. An empty prediction is
    reported with infinite distances, not as an error.
    """
    import dataclasses

    from avatarkit.device import resolve_device
    from avatarkit.errors import OptionError
    from avatarkit.evaluate.chamfer import PROTOCOLS

    h3ds = {"region": region, "landmarks_pred": landmarks_pred, "landmarks_gt": landmarks_gt, "gt_region": gt_region}
    if protocol != "h3ds" and any(v is not None for v in h3ds.values()):
        raise OptionError("--region, --landmarks-pred, --landmarks-gt and --gt-region belong to --protocol h3ds")
    if protocol == "h3ds":
        pairs = _pairs(pred, gt)
        if len(pairs) != 1:
            raise OptionError("--protocol h3ds takes one pair (its landmark and region files are per scene)")
        row = _evaluate_h3ds(*pairs[0], h3ds, input_units, up, output, heatmap, resolve_device(device))
        if json:
            console.emit_json(row)
        else:
            console.info(
                f"{row['pred']}: gt_to_pred {row['gt_to_pred']:.4g} mm, pred_to_gt {row['pred_to_gt']:.4g} mm", quiet
            )
        return
    chosen = PROTOCOLS[protocol]
    given = {"samples": samples, "units": units, "taus": tuple(tau) if tau else None}
    changes = {k: v for k, v in given.items() if v is not None}
    chosen = dataclasses.replace(chosen, **changes)
    if chosen.samples < 1:
        raise OptionError(f"--samples must be positive, got {chosen.samples}")
    pairs = _pairs(pred, gt)
    if len(pairs) > 1 and (output is not None or heatmap is not None):
        raise OptionError("-o and --heatmap take one pair; run them per pair")
    device = resolve_device(device)
    rows = []
    with console.progress(quiet or len(pairs) == 1) as bar:
        task = bar.add_task("evaluate", total=len(pairs))
        for p, g in pairs:
            rows.append(_evaluate_pair(p, g, chosen, seed, device, input_units, up, output, heatmap))
            if len(pairs) > 1 and not json:
                console.info(_line(rows[-1]), quiet)
            bar.advance(task)
    result = rows[0] if len(pairs) == 1 else {"pairs": rows, "summary": _summary(rows)}
    if json:
        console.emit_json(result)
    elif len(pairs) == 1:
        console.info(_line(rows[0]), quiet)
    else:
        for name, stats in result["summary"].items():
            console.info(f"{name}: mean {stats['mean']:.5g}, median {stats['median']:.5g}", quiet)


def _pairs(pred: Path, gt: Path | None) -> list[tuple[Path, Path]]:
    from avatarkit.errors import InputError, OptionError

    if gt is None:
        if not pred.is_file():
            raise InputError("no such pairs file", pred)
        pairs = []
        for number, line in enumerate(pred.read_text().splitlines(), 1):
            words = line.split()
            if not words or words[0].startswith("#"):
                continue
            if len(words) != 2:
                raise InputError(f"line {number}: expected 'PRED GT', got {line!r}", pred)
            pairs.append((pred.parent / words[0], pred.parent / words[1]))
        if not pairs:
            raise InputError("the pairs file lists no pairs", pred)
        return pairs
    if pred.is_dir() != gt.is_dir():
        raise OptionError("give two files or two folders")
    if not pred.is_dir():
        return [(pred, gt)]
    from avatarkit.io.meshfile import HDF5_SUFFIXES, MESH_SUFFIXES

    def by_stem(folder):
        return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in (*MESH_SUFFIXES, *HDF5_SUFFIXES)}

    preds, gts = by_stem(pred), by_stem(gt)
    common = sorted(set(preds) & set(gts))
    if not common:
        raise InputError(f"no file stems in common with {gt}", pred)
    return [(preds[s], gts[s]) for s in common]


def _evaluate_pair(pred, gt, protocol, seed, device, input_units, up, output, heatmap) -> dict:
    from avatarkit.errors import MeshError
    from avatarkit.evaluate.chamfer import evaluate_icon, evaluate_meshes, failed_metrics
    from avatarkit.io.hdf5 import write_artifact
    from avatarkit.io.meshfile import load_pair_member

    def load(path):
        return load_pair_member(path, input_units, up)

    ground_truth = load(gt)
    error = None
    try:
        prediction = load(pred)
    except MeshError as exc:
        if "empty mesh" not in str(exc):
            raise
        prediction, error = None, str(exc)
    if prediction is None:
        metrics = failed_metrics(protocol)
    elif protocol.name == "icon":
        metrics = evaluate_icon(prediction, ground_truth, protocol, seed, device)
    else:
        metrics = evaluate_meshes(prediction, ground_truth, protocol, seed, device)
    row = {
        "pred": str(pred),
        "gt": str(gt),
        "protocol": protocol.name,
        "units": protocol.units,
        "n_samples": protocol.samples,
        **metrics.values,
    }
    if error:
        row["error"] = error
    if output is not None:
        write_artifact(output, metrics, console.provenance([pred, gt]))
    if heatmap is not None and prediction is not None:
        from avatarkit.evaluate.heatmap import write_heatmap

        write_heatmap(heatmap, prediction, ground_truth, device)
    return row


def _evaluate_h3ds(pred, gt, options, input_units, up, output, heatmap, device) -> dict:
    import numpy as np

    from avatarkit.errors import InputError
    from avatarkit.evaluate.h3ds import evaluate_h3ds, mesh_landmarks, read_landmark_file, read_region_file
    from avatarkit.io.hdf5 import write_artifact
    from avatarkit.io.meshfile import load_pair_member

    def load(path):
        return load_pair_member(path, input_units, up)

    prediction, ground_truth = load(pred), load(gt)
    lp = read_landmark_file(options["landmarks_pred"]) if options["landmarks_pred"] else mesh_landmarks(prediction)
    lg = read_landmark_file(options["landmarks_gt"]) if options["landmarks_gt"] else mesh_landmarks(ground_truth)
    region_gt = read_region_file(options["gt_region"]) if options["gt_region"] else None
    checks = [(region_gt, options["gt_region"], ground_truth, "region index")]
    checks += [
        (lp, options["landmarks_pred"], prediction, "landmark"),
        (lg, options["landmarks_gt"], ground_truth, "landmark"),
    ]
    for ids, path, mesh, what in checks:  # name the file that is wrong
        values = np.fromiter(ids.values(), int) if isinstance(ids, dict) else ids
        if (
            path is not None
            and values is not None
            and len(values)
            and (values.min() < 0 or values.max() >= len(mesh.vertices))
        ):
            raise InputError(f"a {what} names vertex {int(values.max())} but the mesh has {len(mesh.vertices)}", path)
    metrics, aligned = evaluate_h3ds(prediction, ground_truth, lp or None, lg or None, region_gt, options["region"])
    if output is not None:
        write_artifact(output, metrics, console.provenance([pred, gt]))
    if heatmap is not None:
        from avatarkit.evaluate.heatmap import write_heatmap

        write_heatmap(heatmap, aligned, ground_truth, device)
    return {
        "pred": str(pred),
        "gt": str(gt),
        "protocol": "h3ds",
        "units": "mm",
        "region": options["region"] or "full head",
        "landmarks": bool(lp and lg),
        "n_samples": len(prediction.vertices),
        **metrics.values,
    }


def _line(row: dict) -> str:
    keys = ("chamfer_l1", "accuracy", "completeness", "p2s", "normal_consistency")
    if row["protocol"] == "icon":
        keys = ("chamfer", "p2s")
    numbers = ", ".join(f"{k} {row[k]:.4g}" for k in keys)
    return f"{row['pred']}: {numbers} ({row['units']})" + (f" [{row['error']}]" if "error" in row else "")


def _summary(rows: list[dict]) -> dict:
    import numpy as np

    names = [k for k, v in rows[0].items() if isinstance(v, float)]
    return {
        name: {
            "mean": float(np.mean([r[name] for r in rows])),
            "median": float(np.median([r[name] for r in rows])),
        }
        for name in names
    }
