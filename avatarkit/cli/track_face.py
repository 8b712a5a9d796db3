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

    from avatarkit.cli.progress import Progress
    from avatarkit.device import resolve_device
    from avatarkit.errors import OptionError
    from avatarkit.fitting.track import TrackRequest, summary, track_request
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
    finder = None
    if landmarks is None:
        from avatarkit.methods.landmarks.detect import load_detector

        finder = load_detector(detector, device, detector_model)
    request = TrackRequest(
        model=model, flame_model=flame_model, flame_landmarks=flame_landmarks, landmarks=landmarks,
        landmark_noise=landmark_noise, same_person=same_person, focal_mm=focal_mm, focal=focal,
        photometric=photometric, time_budget=time_budget, truth=truth, seed=seed,
    )  # fmt: skip
    started = time.perf_counter()
    tracked = track_request(frames, request, finder, device, Progress(quiet or json, 10, label="fit"))
    seconds = time.perf_counter() - started
    written = _write(tracked.track, frames.images, output, preview_file if preview else None, device, inputs)
    report = {"written": [str(p) for p in written], **summary(tracked, seconds)}
    fit = tracked.track
    bad = [name for name, ok in zip(fit.frame_names, fit.converged, strict=True) if not ok]
    if bad:
        worst = max(e for e, ok in zip(report["landmark_error_px"], report["converged"], strict=True) if not ok)
        console.warning(
            f"{len(bad)} of {len(fit)} frames did not converge (first: {bad[0]}; landmark residual up to "
            f"{worst:.1f} px, kept in {output} /residuals): check the landmarks"
        )
    if json:
        console.emit_json(report)
    else:
        score = f"; against the truth: median {report['score_mm']['median']:.2f} mm" if "score_mm" in report else ""
        residual = sum(report["landmark_error_px"]) / len(fit)
        console.info(
            f"tracked {len(fit)} frame{'s' * (len(fit) != 1)} in {seconds:.1f} s (landmarks: {report['landmarks']}; "
            f"residual {residual:.2f} px{score}); wrote {', '.join(report['written'])}",
            quiet,
        )
    if fit.attrs["stopped"] == "interrupted":
        raise typer.Exit(130)


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
