"""``avatarkit track-face``: a parametric face fitted to a photo, photos or a video."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from avatarkit.cli import console
from avatarkit.cli.options import Device, Json, Overwrite, Quiet, Seed


def track_face(
    inputs: Annotated[
        list[Path],
        typer.Argument(
            help="A photo, photos of one person, a folder of a video's frames, a video (.mp4, .mov, ...), or a "
            "views .h5 (its cameras and masks are used, and the fit is scored against its mesh)."
        ),
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="The fit: a `face` .h5 (docs/hdf5.md).")],
    landmarks: Annotated[
        str | None,
        typer.Option(
            help="2D landmarks to fit instead of detecting them: a file (68 iBUG or 478 MediaPipe points; JSON, "
            "TXT, PTS or NPY), or 'truth' (a views file's true points, projected).",
            show_default=False,
        ),
    ] = None,
    landmark_noise: Annotated[
        float, typer.Option(min=0.0, help="Gaussian noise in pixels added to --landmarks truth.")
    ] = 0.0,
    detector: Annotated[
        str,
        typer.Option(
            help="builtin (shipped with avatarkit), mediapipe (needs --detector-model) or a `train landmarks` run."
        ),
    ] = "builtin",
    detector_model: Annotated[
        Path | None,
        typer.Option(help="MediaPipe's face_landmarker.task, for --detector mediapipe.", show_default=False),
    ] = None,
    model: Annotated[Literal["anny", "flame"], typer.Option(help="The face model.")] = "anny",
    flame_model: Annotated[
        Path | None, typer.Option(help="FLAME's .pkl (generic_model.pkl, flame2023.pkl), for --model flame.")
    ] = None,
    flame_landmarks: Annotated[
        Path | None, typer.Option(help="FLAME's landmark embedding (default: beside --flame-model).")
    ] = None,
    same_person: Annotated[
        bool | None,
        typer.Option(
            "--same-person/--different-people",
            help="One identity for every frame (default: yes for a video or a views file, no for photos and "
            "folders). Consecutive frames of one person are also held smooth in time.",
            show_default=False,
        ),
    ] = None,
    focal_mm: Annotated[
        float | None,
        typer.Option(min=1.0, help="Photos' focal length, 35 mm equivalent (default: EXIF, else optimised from 50)."),
    ] = None,
    focal: Annotated[
        Literal["given", "optimise"] | None,
        typer.Option(help="Keep the focal length or optimise it (default: optimise only a 50 mm guess)."),
    ] = None,
    photometric: Annotated[
        bool, typer.Option("--photometric/--landmarks-only", help="Fit the photo's pixels too, after the landmarks.")
    ] = True,
    time_budget: Annotated[
        float, typer.Option(min=0.0, help="Seconds for the whole fit (0: no limit); stages end early to keep it.")
    ] = 0.0,
    truth: Annotated[
        Path | None,
        typer.Option(help="The true head mesh .h5 to score the fit against (default: a views file's source mesh)."),
    ] = None,
    stride: Annotated[int, typer.Option(min=1, help="Keep every STRIDE-th frame of a video or folder.")] = 1,
    max_frames: Annotated[int | None, typer.Option(min=1, help="Track at most this many frames.")] = None,
    preview: Annotated[
        bool, typer.Option("--preview", help="Also write OUTPUT.preview.png: input | landmarks | shaded fit | blend.")
    ] = False,
    seed: Seed = 0,
    device: Device = "auto",
    overwrite: Overwrite = False,
    quiet: Quiet = False,
    json: Json = False,
) -> None:
    """Fit a face model (identity, expression, head pose, focal length, lighting, albedo) to a photo,
    photos or a video, from 2D landmarks and the pixels.

    Landmarks come from the built-in detector (trained on avatarkit's synthetic faces, shipped
    in the package), MediaPipe, a `train landmarks` run, or a file. The fit lands as a `face`
    .h5 that render, evaluate-chamfer, icp-align and inspect read as a mesh (its first frame).
    Given a views .h5 from `render --preset portrait`, the fit is scored against the true head
    as NoW scores it (mm, after a 7-landmark similarity and ICP).
    """
    import time

    import numpy as np

    from avatarkit.cli.progress import Progress
    from avatarkit.device import resolve_device
    from avatarkit.errors import OptionError
    from avatarkit.fitting.face import FaceFitConfig
    from avatarkit.fitting.track import projected_truth, truth_landmarks
    from avatarkit.fitting.track import track_face as track
    from avatarkit.io.formats import is_hdf5
    from avatarkit.io.frames import read_frames
    from avatarkit.io.outputs import check_outputs

    if not is_hdf5(output):
        raise OptionError(f"-o must name a face .h5 file, got {output}")
    if detector_model is not None and detector != "mediapipe":
        raise OptionError("--detector-model goes with --detector mediapipe")
    if landmark_noise and landmarks != "truth":
        raise OptionError("--landmark-noise goes with --landmarks truth")
    preview_file = output.with_name(f"{output.stem}.preview.png")
    landmark_file = Path(landmarks) if landmarks not in (None, "truth") else None
    outputs = [output] + ([preview_file] if preview else [])
    check_outputs(outputs, [*inputs, landmark_file, truth, flame_model, detector_model], "face", overwrite)
    frames = read_frames(inputs, stride, max_frames)
    device = resolve_device(device)
    truth_pair = _read_truth(truth if truth is not None else frames.truth, explicit=truth is not None)
    if landmarks == "truth" and truth_pair is None:
        raise OptionError("--landmarks truth needs a views file of a head whose mesh is found, or --truth MESH")
    if landmarks == "truth" and frames.cameras is None:
        raise OptionError("--landmarks truth needs a views file (its cameras project the truth)")
    if same_person is None:
        same_person = frames.kind in ("video", "views")
    given, source, finder = None, "", None
    if landmark_file is not None:  # read before the model loads: a bad file is refused at once
        from avatarkit.io.face_landmarks import read_face_landmarks

        sizes = [(frames.images.shape[2], frames.images.shape[1])] * len(frames)
        given, source = read_face_landmarks(landmark_file, sizes, frames.names), "file"
    elif landmarks is None:
        from avatarkit.methods.landmarks.detect import load_detector

        finder = load_detector(detector, device, detector_model)

    from avatarkit.parametric.face import load_face_model

    face_model = load_face_model(model, flame_model=flame_model, flame_landmarks=flame_landmarks, device=device)
    anny_model = face_model if model == "anny" or truth_pair is None else load_face_model("anny", device=device)
    if landmarks == "truth":
        assert truth_pair is not None and frames.cameras is not None
        points = truth_landmarks(truth_pair[0], truth_pair[1], anny_model)
        given = projected_truth(frames, frames.cameras, points, landmark_noise, seed)
        source = "truth" + (f" + {landmark_noise:g} px noise" if landmark_noise else "")
    config = FaceFitConfig(photometric_steps=FaceFitConfig.photometric_steps if photometric else 0,
                           time_budget=time_budget)  # fmt: skip
    reporter = Progress(quiet or json, 10, label="fit")
    started = time.perf_counter()
    tracked = track(
        frames, face_model, landmarks=given, detector=finder, landmark_source=source, same_person=same_person,
        focal_mm=focal_mm, focal=focal, config=config, device=device, truth=truth_pair, anny_model=anny_model,
        model_name=model, model_file=str(flame_model or ""), reporter=reporter,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    written = _write(tracked.track, frames.images, output, preview_file if preview else None, device, inputs)
    fit = tracked.track
    summary: dict = {
        "written": [str(p) for p in written],
        "frames": len(fit),
        "model": model,
        "landmarks": fit.attrs["landmark_source"],
        "same_person": same_person,
        "focal": fit.attrs["focal"],
        "focal_px": [round(float(k), 2) for k in fit.K[:, 0, 0]],
        "landmark_error_px": [round(float(e), 3) for e in fit.landmark_error_px],
        "converged": [bool(c) for c in fit.converged],
        "stopped": fit.attrs["stopped"],
        "seconds": round(seconds, 2),
        "seconds_per_frame": round(seconds / len(fit), 2),
    }
    if fit.photometric_residual is not None:
        summary["photometric_residual"] = [round(float(r), 4) for r in fit.photometric_residual]
    if tracked.scores is not None:
        from avatarkit.evaluate.face_truth import summarise

        summary["truth"] = str(truth_pair[1]) if truth_pair else None
        summary["score_mm"] = {k: round(float(v), 4) for k, v in summarise(tracked.scores).items()}
        summary["score_mm_per_frame"] = [
            {"median": round(s.median, 4), "mean": round(s.mean, 4)} for s in tracked.scores
        ]  # fmt: skip
        assert tracked.truth_landmark_px is not None
        summary["truth_landmark_px"] = [round(float(e), 3) for e in tracked.truth_landmark_px]
    bad = [name for name, ok in zip(fit.frame_names, fit.converged, strict=True) if not ok]
    if bad:
        worst = float(np.max(fit.landmark_error_px[~fit.converged]))
        console.warning(
            f"{len(bad)} of {len(fit)} frames did not converge (first: {bad[0]}; landmark residual up to "
            f"{worst:.1f} px, kept in {output} /residuals): check the landmarks"
        )
    if json:
        console.emit_json(summary)
    else:
        score = ""
        if "score_mm" in summary:
            score = f"; against the truth: median {summary['score_mm']['median']:.2f} mm"
        console.info(
            f"tracked {len(fit)} frame{'s' * (len(fit) != 1)} in {seconds:.1f} s (landmarks: "
            f"{summary['landmarks']}; residual {float(np.mean(fit.landmark_error_px)):.2f} px{score}); "
            f"wrote {', '.join(summary['written'])}",
            quiet,
        )
    if fit.attrs["stopped"] == "interrupted":
        raise typer.Exit(130)


def _read_truth(path: Path | None, explicit: bool):
    """(mesh, path) of the true head, or None: a --truth that cannot be read is an error; a
    views file's recorded source that is not a mesh file is passed over."""
    from avatarkit.errors import AvatarkitError
    from avatarkit.io.meshfile import load_mesh

    if path is None:
        return None
    try:
        return load_mesh(path), path
    except AvatarkitError:
        if explicit:
            raise
        return None


def _write(track, images, output: Path, preview: Path | None, device: str, inputs: list[Path]) -> list[Path]:
    from avatarkit.fitting.face_preview import preview_image
    from avatarkit.io.atomic import landing
    from avatarkit.io.hdf5 import write_artifact
    from avatarkit.io.images import write_png

    written = []
    with landing():
        written.append(write_artifact(output, track, console.provenance(inputs)))
        if preview is not None:
            written.append(write_png(preview, preview_image(images, track, device=device)))
    return written
