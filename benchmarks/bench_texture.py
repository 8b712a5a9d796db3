"""Sample&Refine (``train texture``, ``unwrap-uv --complete``) against three baselines on held-out
synthetic people, one view in (issue 16, "Measured").

The pipeline, sized by environment variables:

- ``PEOPLE`` training people and ``TEST`` held-out ones (``synth --texture clothes
  --texture-size SIZE``, seeds 0 and 1: the held-out people are never seen in training),
  rendered with ``render --preset texture`` (7 views, yaw -90 to 90, ``RENDER`` px) and
  unwrapped with ``unwrap-uv --per-view --symmetric --size SIZE``;
- ``train texture --config CONFIG`` (default small) for ``SECONDS`` of wall clock;
- every held-out person's views at ``YAWS`` (default -30 0 30), one at a time: the
  partial texture of that one view, completed by
  - **mirror only**: the mirror-filled partial texture as ``unwrap-uv --symmetric`` writes it
    (texels neither seen nor mirrored take the nearest filled texel's colour),
  - **OpenCV inpainting** (Telea, radius ``RADIUS``) of the texels neither seen nor mirrored,
  - **SamplerNet alone** (the run's SamplerNet, the same blend as the full method),
  - **Sample&Refine** (``complete_texture``: SamplerNet and RefinerNet, observed texels kept);
- scored against the person's full texture: PSNR (dB) and SSIM on the texels the view did
  not see and on all texels of the UV layout, and on 8 re-rendered views (yaws 0, 45, ...,
  315, ``RENDER`` px, albedo) against the same views rendered with the true texture (inside
  the silhouette);
- throughput: training steps per second at the config's batch, completions per second.

Writes ``OUT/strip.png`` (input view | partial | each method | truth, one row per shown
person) and ``OUT/results.json``.

    python benchmarks/bench_texture.py OUT     # or through benchmarks/run.py texture
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import avatarkit, machine, setting

METHODS = ("mirror", "telea", "sampler", "sample_refine")


def prepare(root: Path, people: int, seed: int, size: int, render: int) -> tuple[Path, Path, Path]:
    meshes, views, partial = root / f"meshes{seed}", root / f"views{seed}", root / f"partial{seed}"
    if not partial.is_dir():
        avatarkit("synth", "-n", people, "--texture", "clothes", "--texture-size", size, "--seed", seed, "-o", meshes)
        avatarkit("render", *sorted(meshes.glob("*.h5")), "-o", views, "--preset", "texture", "--size", render)
        avatarkit("unwrap-uv", *sorted(meshes.glob("*.h5")), "--views", views, "-o", partial, "--symmetric",
                  "--per-view", "--size", size)  # fmt: skip
    return meshes, views, partial


def telea(texture, filled, radius: float):
    import cv2

    return cv2.inpaint(np.ascontiguousarray(texture), (~filled).astype(np.uint8) * 255, radius, cv2.INPAINT_TELEA)


def scores(pred, truth, mask) -> tuple[float, float]:
    """PSNR (dB, peak 255) and mean SSIM over ``mask`` of (H, W, 3) uint8 images."""
    from skimage.metrics import structural_similarity

    diff = (pred.astype(np.float64) - truth.astype(np.float64))[mask]
    mse = float(np.mean(diff**2)) if diff.size else float("nan")
    psnr = 10 * np.log10(255**2 / max(mse, 1e-12))
    _, smap = structural_similarity(pred, truth, channel_axis=2, data_range=255, full=True, gaussian_weights=True,
                                    sigma=1.5, use_sample_covariance=False)  # fmt: skip
    return float(psnr), float(smap.mean(-1)[mask].mean())


def rerender(mesh, texture, size: int):
    """(8, S, S, 3) albedo views at yaws 0, 45, ... and their (8, S, S) masks."""
    import dataclasses

    from avatarkit.render.render import RenderConfig, render_rig
    from avatarkit.render.rigs import RigSpec

    views = render_rig(dataclasses.replace(mesh, texture=texture), RigSpec(views=8, size=size), RenderConfig())
    return views.rgb, views.mask > 0


def run() -> dict:
    import torch

    from avatarkit.io.hdf5 import read_artifact, read_mesh
    from avatarkit.methods.texture.complete import complete_texture, load_texture_run

    out = Path(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1] != "--one" else Path(tempfile.mkdtemp())
    out.mkdir(parents=True, exist_ok=True)
    people, test = int(setting("PEOPLE", "120")), int(setting("TEST", "8"))
    size, render = int(setting("SIZE", "128")), int(setting("RENDER", "256"))
    seconds, config = float(setting("SECONDS", "600")), setting("CONFIG", "small")
    yaws = [float(y) for y in setting("YAWS", "-30 0 30").split()]
    radius = float(setting("RADIUS", "3"))
    torch.set_num_threads(int(setting("THREADS", "2")))

    t0 = time.perf_counter()
    train_meshes, _, train_partial = prepare(out, people, 0, size, render)
    test_meshes, test_views, test_partial = prepare(out, test, 1, size, render)
    prep_s = time.perf_counter() - t0
    run_dir = out / "run"
    if not (run_dir / "checkpoints" / "last.pt").is_file():
        summary = avatarkit("train", "texture", "--partial", train_partial, "--meshes", train_meshes, "-o", run_dir,
                            "--config", config, "--max-time", seconds, "--max-steps", 1_000_000, "--json",
                            json_out=True)  # fmt: skip
        (out / "train.json").write_text(json.dumps(summary, indent=2))
    summary = json.loads((out / "train.json").read_text())
    trained = load_texture_run(run_dir, "cpu")

    totals: dict[str, dict[str, list[float]]] = {m: {} for m in METHODS}
    strip_rows, complete_s, completions = [], 0.0, 0
    for mesh_path in sorted(test_meshes.glob("*.h5")):
        mesh = read_mesh(mesh_path)
        tex = read_artifact(test_partial / mesh_path.name, "texture")
        truth = np.asarray(mesh.texture)
        coverage = np.abs(tex.normal_map).sum(-1) > 0
        views = read_artifact(test_views / mesh_path.name, "views")
        truth_views, masks = rerender(mesh, truth, render)
        for yaw in yaws:
            v = int(np.argmin(np.abs(tex.view_yaw - yaw)))
            seen = tex.view_visibility[v] > 0
            filled = seen | (tex.view_mirrored[v] > 0)
            one = type(tex)(tex.view_texture[v], tex.view_visibility[v], tex.normal_map, tex.view_mirrored[v],
                            dict(tex.attrs))  # fmt: skip
            start = time.perf_counter()
            full = complete_texture(trained, one).texture
            complete_s += time.perf_counter() - start
            completions += 1
            refined = bool(trained.model.refiner_trained)
            trained.model.refiner_trained.fill_(False)
            sampler_only = complete_texture(trained, one).texture
            trained.model.refiner_trained.fill_(refined)
            results = {
                "mirror": one.texture,
                "telea": np.where(seen[..., None], one.texture, telea(one.texture, filled, radius)),
                "sampler": sampler_only,
                "sample_refine": full,
            }
            unseen = coverage & ~seen
            for name, pred in results.items():
                rendered, _ = rerender(mesh, pred, render)
                for key, mask, a, b in (("unseen", unseen, pred, truth), ("all", coverage, pred, truth)):
                    p, s = scores(a, b, mask)
                    totals[name].setdefault(f"psnr_{key}", []).append(p)
                    totals[name].setdefault(f"ssim_{key}", []).append(s)
                ps, ss = zip(
                    *(scores(rendered[i], truth_views[i], masks[i]) for i in range(len(rendered))), strict=True
                )
                totals[name].setdefault("psnr_views", []).append(float(np.mean(ps)))
                totals[name].setdefault("ssim_views", []).append(float(np.mean(ss)))
            if yaw == yaws[len(yaws) // 2] and len(strip_rows) < 4:
                strip_rows.append(_strip_row(views.rgb[v], one.texture, filled, results, truth, size))
    figures = {m: {k: round(float(np.mean(vals)), 3) for k, vals in t.items()} for m, t in totals.items()}
    _write_strip(out / "strip.png", strip_rows)

    steps = summary.get("steps", 0)
    result = {
        "machine": machine(),
        "people": people,
        "held_out": test,
        "yaws": yaws,
        "texture_size": size,
        "config": config,
        "train_seconds": seconds,
        "train_steps": steps,
        "train_samples_per_s": summary.get("samples_per_s"),
        "val_psnr_unseen": summary.get("metrics", {}).get("val/psnr_unseen"),
        "prepare_s": round(prep_s, 1),
        "completions_per_s_cpu": round(completions / complete_s, 2) if complete_s else None,
        "methods": figures,
        "gain_over_telea_unseen_db": round(
            figures["sample_refine"]["psnr_unseen"] - figures["telea"]["psnr_unseen"], 2
        ),
        "items_better_than_telea_unseen": int(
            np.sum(np.array(totals["sample_refine"]["psnr_unseen"]) > np.array(totals["telea"]["psnr_unseen"]))
        ),
        "items": len(totals["telea"]["psnr_unseen"]),
        "per_item_psnr_unseen": {m: [round(v, 2) for v in t["psnr_unseen"]] for m, t in totals.items()},
    }
    (out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def _strip_row(photo, partial, filled, results, truth, size):
    from PIL import Image

    h = size
    photo_small = np.asarray(Image.fromarray(photo).resize((h, h), Image.Resampling.BOX))
    shown = np.where(filled[..., None], partial, 0).astype(np.uint8)
    tiles = [photo_small, shown, *[results[m] for m in METHODS], truth]
    gap = np.full((h, 2, 3), 255, np.uint8)
    row = []
    for t in tiles:
        row += [t, gap]
    return np.concatenate(row[:-1], axis=1)


def _write_strip(path: Path, rows) -> None:
    from PIL import Image

    if not rows:
        return
    gap = np.full((2, rows[0].shape[1], 3), 255, np.uint8)
    image = np.concatenate([x for r in rows for x in (r, gap)][:-1], axis=0)
    Image.fromarray(image).save(path)


if __name__ == "__main__":
    print(json.dumps(run(), indent=2, default=float))
