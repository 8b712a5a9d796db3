"""``avatarkit evaluate-chamfer``: Chamfer, P2S, normal consistency, F-score between meshes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from avatarkit.cli import console
from avatarkit.cli.options import Device, Json, Overwrite, Quiet, Seed, Shard, Up
from avatarkit.errors import OptionError
from avatarkit.evaluate.pairs import PROTOCOL_NAMES, REGIONS
from avatarkit.io.units import UNIT_NAMES


def evaluate_chamfer(
    pred: Annotated[Path, typer.Argument(help="Predicted mesh, a folder of them, or a pairs file (PRED GT per line).")],
    gt: Annotated[Path | None, typer.Argument(help="Ground-truth mesh or folder (matched by file stem).")] = None,
    protocol: Annotated[Literal[PROTOCOL_NAMES], typer.Option(help="Named protocol (docs/evaluation.md).")] = "default",
    region: Annotated[
        Literal[REGIONS] | None, typer.Option(help="h3ds: evaluate the ground truth's face region only.")
    ] = None,
    landmarks_pred: Annotated[
        Path | None, typer.Option(help="h3ds: landmarks on the prediction, 'name vertex_id' lines.")
    ] = None,
    landmarks_gt: Annotated[
        Path | None, typer.Option(help="h3ds: landmarks on the ground truth (default: the mesh file's).")
    ] = None,
    gt_region: Annotated[
        Path | None,
        typer.Option(help="h3ds: the ground truth's face region, vertex indices (default: the .h5's /regions/face)."),
    ] = None,
    samples: Annotated[int | None, typer.Option(help="Points sampled per surface (default: the protocol's).")] = None,
    tau: Annotated[list[float] | None, typer.Option(help="F-score threshold in metres; repeat for several.")] = None,
    units: Annotated[
        Literal[UNIT_NAMES] | None, typer.Option(help="Units to report in (default: the protocol's).")
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
    overwrite: Overwrite = False,
    shard: Shard = None,
    quiet: Quiet = False,
    json: Json = False,
) -> None:
    """Evaluate predicted meshes against ground truth with one documented protocol.

    Prints accuracy (prediction to ground truth), completeness (the reverse), chamfer_l1,
    chamfer_l2, p2s (ground-truth samples to the predicted surface, exact),
    normal_consistency, fscore at each --tau and hausdorff; the named protocols (pifuhd, icon,
    h3ds, geopifu) print their own numbers (docs/evaluation.md). An empty prediction is
    reported with infinite distances (null in --json), not as an error. Of several pairs, one
    that cannot be read is reported by name and the others still scored; the exit code is 1.
    """
    from avatarkit.cli.batch import in_shard, parse_shard
    from avatarkit.device import resolve_device
    from avatarkit.evaluate.heatmap import check_heatmap_path, write_heatmap
    from avatarkit.evaluate.pairs import H3dsOptions, Unreadable, choose_protocol, evaluate_pairs, find_pairs, summarize
    from avatarkit.io.atomic import landing
    from avatarkit.io.hdf5 import write_artifact
    from avatarkit.io.outputs import check_outputs

    h3ds = H3dsOptions(region, landmarks_pred, landmarks_gt, gt_region)
    if protocol == "geopifu" and (samples is not None or units is not None or tau):
        raise OptionError(
            "--protocol geopifu fixes its own numbers (every vertex, x1e4 in its normalised box): "
            "drop --samples, --tau and --units"
        )
    chosen = choose_protocol(protocol, samples, units, tuple(tau) if tau else None, h3ds)
    chosen_shard = parse_shard(shard)
    pairs = [(p, g) for p, g in find_pairs(pred, gt) if in_shard(p, chosen_shard)]
    if len(pairs) > 1 and (output is not None or heatmap is not None or chosen is None):
        raise OptionError(
            "--protocol h3ds takes one pair (its landmark and region files are per scene)"
            if chosen is None
            else "-o and --heatmap take one pair; run them per pair"
        )
    if heatmap is not None:
        check_heatmap_path(heatmap)
    read = [pred, gt, landmarks_pred, landmarks_gt, gt_region, *(f for pair in pairs for f in pair)]
    check_outputs([p for p in (output,) if p is not None], read, "metrics", overwrite)
    check_outputs([p for p in (heatmap,) if p is not None], read, None, overwrite)
    device = resolve_device(device, "torch" if heatmap is not None and heatmap.suffix.lower() == ".png" else "warp")
    rows, unreadable = [], []
    with console.progress(quiet or len(pairs) <= 1) as bar:
        task = bar.add_task("evaluate", total=len(pairs))
        for result in evaluate_pairs(pairs, chosen, h3ds, seed, device, input_units, up):
            bar.advance(task)
            if isinstance(result, Unreadable):
                console.error(result.message)
                unreadable.append({"pred": str(result.pred), "gt": str(result.gt), "error": result.message})
                continue
            rows.append(result.row)
            with landing():  # the metrics file and the heat map land together
                if output is not None:
                    write_artifact(output, result.metrics, console.provenance([result.row["pred"], result.row["gt"]]))
                if heatmap is not None and result.prediction is not None:
                    write_heatmap(heatmap, result.prediction, result.ground_truth, device)
            if len(pairs) > 1 and not json:
                console.info(_line(rows[-1]), quiet)
    failed = sum("error" in r for r in rows)
    if len(pairs) == 1:
        summary = rows[0]
    else:
        summary = {"pairs": rows, "n_pairs": len(rows), "n_failed": failed, "summary": summarize(rows) if rows else {}}
        if unreadable:
            summary["unreadable"] = unreadable
    if json:
        console.emit_json(summary)  # strict JSON: infinite distances are null
    elif len(pairs) == 1:
        console.info(_line(rows[0]), quiet)
    else:
        console.info(f"{len(rows)} pairs, {failed} failed (infinite distances: see the medians)", quiet)
        for name, stats in summary["summary"].items():
            console.info(f"{name}: mean {stats['mean']:.5g}, median {stats['median']:.5g}", quiet)
    if unreadable:
        console.error(
            f"{len(unreadable)} of {len(pairs)} pairs could not be read: "
            f"{', '.join(u['pred'] for u in unreadable)} ({len(rows)} scored)"
        )
        raise typer.Exit(1)


def _line(row: dict) -> str:
    if row["protocol"] == "h3ds":
        numbers = f"gt_to_pred {row['gt_to_pred']:.4g} mm, pred_to_gt {row['pred_to_gt']:.4g} mm"
        return f"{row['pred']}: {numbers}" + (f" [{row['error']}]" if "error" in row else "")
    keys = ("chamfer_l1", "accuracy", "completeness", "p2s", "normal_consistency")
    if row["protocol"] == "geopifu":
        keys = ("chamfer", "psd", "normal_cos", "normal_l2")
    elif "chamfer" in row:
        keys = ("chamfer", "p2s")
    numbers = ", ".join(f"{k} {row[k]:.4g}" for k in keys)
    return f"{row['pred']}: {numbers} ({row['units']})" + (f" [{row['error']}]" if "error" in row else "")
