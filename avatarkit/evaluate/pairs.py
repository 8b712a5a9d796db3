"""Predicted meshes scored against their ground truth, pair by pair (the core of
``avatarkit evaluate-chamfer``).

- :func:`find_pairs`: two files, two folders matched by stem, or a pairs file (``PRED GT``
  per line, paths relative to the file);
- :func:`choose_protocol`: a named protocol (``default``, ``pifuhd``, ``icon``; or ``h3ds``,
  with its landmark and region files, or the ground-truth file's own landmarks and ``face``
  region) with the user's changes, checked;
- :func:`evaluate_pair`: one pair read and scored; a failed reconstruction (an empty mesh,
  or one whose faces have no area) is a failure row with infinite distances, not an error;
- :func:`summarize`: means and medians over the rows of several pairs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from avatarkit.errors import AvatarkitError, InputError, MeshError, OptionError
from avatarkit.evaluate.chamfer import PROTOCOLS, Protocol, evaluate, failed_metrics
from avatarkit.structures import Mesh, Metrics
from avatarkit.structures.mesh import ZERO_AREA, is_failed_surface

PROTOCOL_NAMES = (*PROTOCOLS, "h3ds")
REGIONS = ("face",)
FACE_REGION = "face"
"""The ground truth's own region the h3ds protocol uses when no ``--gt-region`` file is given."""


@dataclasses.dataclass(frozen=True)
class H3dsOptions:
    """The h3ds protocol's per-scene files (see :mod:`avatarkit.evaluate.h3ds`)."""

    region: str | None = None
    """``face``: evaluate the ground truth's face region only (needs ``gt_region``)."""
    landmarks_pred: Path | None = None
    """Landmarks on the prediction, ``name vertex_id`` lines (default: the mesh file's)."""
    landmarks_gt: Path | None = None
    """Landmarks on the ground truth (default: the mesh file's)."""
    gt_region: Path | None = None
    """The ground truth's face region, vertex indices (default: the mesh file's ``face`` region,
    ``/regions/face``)."""

    def given(self) -> bool:
        return any(getattr(self, f.name) is not None for f in dataclasses.fields(self))


@dataclasses.dataclass(frozen=True)
class PairResult:
    """One pair scored: ``row`` (JSON-ready: paths, protocol, units, every metric, ``error`` for
    a failed reconstruction), the ``metrics`` (with per-point errors), and the prediction as
    scored (aligned to the ground truth under h3ds; None when it failed) and the ground truth,
    for a heat map."""

    row: dict
    metrics: Metrics
    prediction: Mesh | None
    ground_truth: Mesh


def choose_protocol(
    name: str,
    samples: int | None = None,
    units: str | None = None,
    taus: tuple[float, ...] | None = None,
    h3ds: H3dsOptions = H3dsOptions(),
) -> Protocol | None:
    """The protocol ``name`` with the changes given (None: the protocol's own); None for
    ``h3ds``, which fixes its own numbers. Raises :class:`OptionError` for changes the protocol
    does not take."""
    if name not in PROTOCOL_NAMES:
        raise OptionError(f"--protocol must be one of {', '.join(PROTOCOL_NAMES)}, got {name!r}")
    if name != "h3ds" and h3ds.given():
        raise OptionError("--region, --landmarks-pred, --landmarks-gt and --gt-region belong to --protocol h3ds")
    if name == "h3ds":
        if samples is not None or taus or units is not None:
            raise OptionError(
                "--protocol h3ds fixes its own numbers (every vertex, mm): drop --samples, --tau and --units"
            )
        if h3ds.region is not None and h3ds.region not in REGIONS:
            raise OptionError(f"--region must be one of {', '.join(REGIONS)}, got {h3ds.region!r}")
        return None
    protocol = PROTOCOLS[name]
    if protocol.measures != "surface" and taus:
        raise OptionError(f"--protocol {name} reports no F-score: drop --tau")
    changes = {"samples": samples, "units": units, "taus": tuple(taus) if taus else None}
    protocol = dataclasses.replace(protocol, **{k: v for k, v in changes.items() if v is not None})
    if protocol.samples < 1:
        raise OptionError(f"--samples must be positive, got {protocol.samples}")
    return protocol


def find_pairs(pred: Path, gt: Path | None) -> list[tuple[Path, Path]]:
    """(prediction, ground truth) paths: ``pred`` and ``gt`` themselves (two files), their files
    matched by stem (two folders; stems in one only are left out with a warning), or, with no
    ``gt``, the lines of the pairs file ``pred``."""
    from avatarkit.io.formats import HDF5_SUFFIXES, MESH_SUFFIXES
    from avatarkit.io.stems import files_by_stem, match_stems

    if gt is None:
        return _read_pairs_file(pred)
    if pred.is_dir() != gt.is_dir():
        raise OptionError("give two files or two folders")
    if not pred.is_dir():
        return [(pred, gt)]
    suffixes = (*HDF5_SUFFIXES, *MESH_SUFFIXES)  # a stem's .h5 before its mesh file
    preds = files_by_stem([pred], suffixes, "predicted mesh")
    gts = files_by_stem([gt], suffixes, "ground-truth mesh")
    stems = match_stems({"prediction": preds, "ground-truth": gts})
    return [(preds[s], gts[s]) for s in stems]


def _read_pairs_file(path: Path) -> list[tuple[Path, Path]]:
    if not path.is_file():
        raise InputError("no such pairs file", path)
    pairs = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if len(words) != 2:
            raise InputError(f"line {number}: expected 'PRED GT', got {line!r}", path)
        pairs.append((path.parent / words[0], path.parent / words[1]))
    if not pairs:
        raise InputError("the pairs file lists no pairs", path)
    return pairs


def evaluate_pair(
    pred: Path,
    gt: Path,
    protocol: Protocol | None,
    h3ds: H3dsOptions = H3dsOptions(),
    seed: int = 0,
    device: str = "cpu",
    units: str | None = None,
    up: str = "y",
) -> PairResult:
    """Read and score one pair (``protocol`` None: h3ds); ``units`` and ``up`` convert mesh files
    (HDF5 files are metres already). Unreadable files raise; an empty prediction is a row with
    an ``error`` and infinite distances."""
    if protocol is None:
        return _evaluate_h3ds(pred, gt, h3ds, units, up)
    from avatarkit.io.meshfile import load_pair_member

    def load(path):
        return load_pair_member(path, units, up, units_flag="--input-units")

    ground_truth = load(gt)
    prediction, error = load_prediction(pred, load)
    metrics = (
        failed_metrics(protocol) if prediction is None else evaluate(prediction, ground_truth, protocol, seed, device)
    )
    row = {"pred": str(pred), "gt": str(gt), "protocol": protocol.name, "units": protocol.units}
    row |= {"n_samples": protocol.samples, **metrics.values}
    if error:
        row["error"] = error
    return PairResult(row, metrics, prediction, ground_truth)


@dataclasses.dataclass(frozen=True)
class Unreadable:
    """A pair that could not be read (a missing or broken file), with the one-line reason."""

    pred: Path
    gt: Path
    message: str


def evaluate_pairs(
    pairs: list[tuple[Path, Path]],
    protocol: Protocol | None,
    h3ds: H3dsOptions = H3dsOptions(),
    seed: int = 0,
    device: str = "cpu",
    units: str | None = None,
    up: str = "y",
) -> Iterator[PairResult | Unreadable]:
    """:func:`evaluate_pair` over ``pairs``, in order. Of several pairs, one that cannot be read
    is an :class:`Unreadable` naming the file at fault, and the others are still scored; a lone
    pair raises."""
    for pred, gt in pairs:
        try:
            yield evaluate_pair(pred, gt, protocol, h3ds, seed, device, units, up)
        except AvatarkitError as exc:
            if len(pairs) == 1:
                raise
            yield Unreadable(pred, gt, str(exc) if exc.path is not None else f"pair {pred} {gt}: {exc}")


def load_prediction(path: Path, load) -> tuple[Mesh | None, str | None]:
    """The predicted mesh read by ``load``, or (None, why) for a failed reconstruction: an empty
    mesh, or one whose faces have no area, in any format (a mesh file or a mesh HDF5).
    Unreadable files still raise."""
    from avatarkit.geometry.surface import face_areas_normals

    try:
        mesh = load(path)
    except MeshError as exc:
        if not is_failed_surface(exc):
            raise
        return None, str(exc) if exc.path is not None else f"{path}: {exc}"
    if not face_areas_normals(mesh.vertices, mesh.faces)[0].sum() > 0:
        return None, f"{path}: {ZERO_AREA}"
    return mesh, None


def _evaluate_h3ds(pred: Path, gt: Path, options: H3dsOptions, units: str | None, up: str) -> PairResult:
    from avatarkit.evaluate.h3ds import evaluate_h3ds, failed_h3ds_metrics, load_h3ds_mesh
    from avatarkit.io.landmarks import check_vertex_ids, read_landmark_file, read_region_file

    def load(path):
        return load_h3ds_mesh(path, units, up, "--input-units")

    ground_truth = load(gt)
    prediction, error = load_prediction(pred, load)
    row = {"pred": str(pred), "gt": str(gt), "protocol": "h3ds", "units": "mm", "region": options.region or "full head"}
    if prediction is None:
        metrics = failed_h3ds_metrics()
        return PairResult({**row, "landmarks": False, "n_samples": 0, **metrics.values, "error": error}, metrics,
                          None, ground_truth)  # fmt: skip
    named = {}
    for key, path, mesh, what in (
        ("pred", options.landmarks_pred, prediction, "landmark"),
        ("gt", options.landmarks_gt, ground_truth, "landmark"),
        ("region", options.gt_region, ground_truth, "region index"),
    ):
        if path is not None:
            named[key] = read_region_file(path) if key == "region" else read_landmark_file(path)
            check_vertex_ids(named[key], len(mesh.vertices), path, what)
    lp = named.get("pred", prediction.landmark_ids())
    lg = named.get("gt", ground_truth.landmark_ids())
    own = (ground_truth.regions or {}).get(FACE_REGION)
    region = named.get("region", own)
    metrics, aligned = evaluate_h3ds(prediction, ground_truth, lp or None, lg or None, region, options.region)
    source = str(options.gt_region) if options.gt_region is not None else None
    source = source or (f"/regions/{FACE_REGION}" if own is not None else None)
    row |= {"landmarks": bool(lp and lg), "gt_region": source, "n_samples": len(prediction.vertices)}
    row |= metrics.values
    return PairResult(row, metrics, aligned, ground_truth)


def summarize(rows: list[dict]) -> dict[str, dict[str, float]]:
    """Mean and median of every metric over ``rows`` (failure rows count, with their infinities)."""
    names = [k for k, v in rows[0].items() if isinstance(v, float)]
    return {name: {"mean": float(np.mean([r[name] for r in rows])), "median": float(np.median([r[name] for r in rows]))}
            for name in names}  # fmt: skip
