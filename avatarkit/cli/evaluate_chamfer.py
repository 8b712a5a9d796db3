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
    if protocol == "h3ds" and (samples is not None or tau or units is not None):
        raise OptionError("--protocol h3ds fixes its own numbers (every vertex, mm): drop --samples, --tau and --units")
    if protocol in ("icon", "pifuhd") and tau:
        raise OptionError(f"--protocol {protocol} reports no F-score: drop --tau")
    if protocol == "h3ds":
        pairs = _pairs(pred, gt)
        if len(pairs) != 1:
            raise OptionError("--protocol h3ds takes one pair (its landmark and region files are per scene)")
        row = _evaluate_h3ds(*pairs[0], h3ds, input_units, up, output, heatmap, resolve_device(device))
        if json:
            console.emit_json(row)
        else:
            failed = f" [{row['error']}]" if "error" in row else ""
            console.info(
                f"{row['pred']}: gt_to_pred {row['gt_to_pred']:.4g} mm, pred_to_gt {row['pred_to_gt']:.4g} mm{failed}",
                quiet,
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
    failed = sum("error" in r for r in rows)
    result = rows[0] if len(pairs) == 1 else {"pairs": rows, "n_pairs": len(rows), "n_failed": failed}
    if len(pairs) > 1:
        result["summary"] = _summary(rows)
    if json:
        console.emit_json(result)
    elif len(pairs) == 1:
        console.info(_line(rows[0]), quiet)
    else:
        console.info(f"{len(rows)} pairs, {failed} failed (infinite distances: see the medians)", quiet)
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
        found: dict[str, Path] = {}
        for p in sorted(folder.iterdir()):
            if p.suffix.lower() not in (*MESH_SUFFIXES, *HDF5_SUFFIXES):
                continue
            if p.stem in found:  # x.obj beside x.h5: pick one, visibly (the .h5 if there is one)
                keep = found[p.stem] if found[p.stem].suffix.lower() in HDF5_SUFFIXES else p
                console.warning(f"{folder}: {found[p.stem].name} and {p.name} share a stem; using {keep.name}")
                p = keep
            found[p.stem] = p
        return found

    preds, gts = by_stem(pred), by_stem(gt)
    common = sorted(set(preds) & set(gts))
    if not common:
        raise InputError(f"no file stems in common with {gt}", pred)
    for folder, names in ((gt, set(preds) - set(gts)), (pred, set(gts) - set(preds))):
        if names:
            shown = ", ".join(sorted(names)[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
            console.warning(f"no match in {folder} for {len(names)} file(s), left out: {shown}")
    return [(preds[s], gts[s]) for s in common]


def _evaluate_pair(pred, gt, protocol, seed, device, input_units, up, output, heatmap) -> dict:
    from avatarkit.evaluate.chamfer import evaluate_icon, evaluate_meshes, evaluate_pifuhd, failed_metrics
    from avatarkit.io.hdf5 import write_artifact
    from avatarkit.io.meshfile import load_pair_member

    def load(path):
        return load_pair_member(path, input_units, up, units_flag="--input-units")

    ground_truth = load(gt)
    prediction, error = _load_prediction(pred, load)
    if prediction is None:
        metrics = failed_metrics(protocol)
    elif protocol.name == "icon":
        metrics = evaluate_icon(prediction, ground_truth, protocol, seed, device)
    elif protocol.name == "pifuhd":
        metrics = evaluate_pifuhd(prediction, ground_truth, protocol, seed, device)
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


def _load_prediction(path, load):
    """The predicted mesh, or (None, why) for a failed reconstruction: an empty mesh, or one
    whose faces have no area. Unreadable files still raise (exit 1)."""
    from avatarkit.errors import MeshError
    from avatarkit.geometry.surface import face_areas_normals

    try:
        mesh = load(path)
    except MeshError as exc:
        if "empty mesh" not in str(exc):
            raise
        return None, str(exc)
    if not face_areas_normals(mesh.vertices, mesh.faces)[0].sum() > 0:
        return None, f"{path}: every face has zero area"
    return mesh, None


def _evaluate_h3ds(pred, gt, options, input_units, up, output, heatmap, device) -> dict:
    import numpy as np

    from avatarkit.errors import InputError
    from avatarkit.evaluate.h3ds import (
        evaluate_h3ds,
        failed_h3ds_metrics,
        load_h3ds_mesh,
        mesh_landmarks,
        read_landmark_file,
        read_region_file,
    )
    from avatarkit.io.hdf5 import write_artifact

    def load(path):
        return load_h3ds_mesh(path, input_units, up, "--input-units")

    ground_truth = load(gt)
    prediction, error = _load_prediction(pred, load)
    row = {
        "pred": str(pred),
        "gt": str(gt),
        "protocol": "h3ds",
        "units": "mm",
        "region": options["region"] or "full head",
    }
    if prediction is None:
        metrics = failed_h3ds_metrics()
        if output is not None:
            write_artifact(output, metrics, console.provenance([pred, gt]))
        return {**row, "landmarks": False, "n_samples": 0, **metrics.values, "error": error}
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
        **row,
        "landmarks": bool(lp and lg),
        "n_samples": len(prediction.vertices),
        **metrics.values,
    }


def _line(row: dict) -> str:
    keys = ("chamfer_l1", "accuracy", "completeness", "p2s", "normal_consistency")
    if row["protocol"] in ("icon", "pifuhd"):
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
