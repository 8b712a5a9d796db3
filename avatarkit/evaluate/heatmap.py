"""Where a prediction fails: its vertices coloured by their distance to the ground truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avatarkit.errors import OptionError
from avatarkit.structures import Mesh

# blue (0) -> cyan -> green -> yellow -> red (the largest distance shown)
_STOPS = np.array([[0, 0, 255], [0, 255, 255], [0, 255, 0], [255, 255, 0], [255, 0, 0]], dtype=np.float64)


def colormap(values: np.ndarray, vmax: float) -> np.ndarray:
    """(N, 3) uint8 colours for ``values`` in [0, vmax] (clipped)."""
    x = np.clip(values / max(vmax, 1e-12), 0, 1) * (len(_STOPS) - 1)
    i = np.minimum(np.floor(x).astype(int), len(_STOPS) - 2)
    f = (x - i)[:, None]
    return np.rint(_STOPS[i] * (1 - f) + _STOPS[i + 1] * f).astype(np.uint8)


def error_mesh(pred: Mesh, gt: Mesh, device: str = "cpu") -> tuple[Mesh, float]:
    """``pred`` with vertex colours by distance to ``gt``'s surface, and the distance shown as red
    (the 95th percentile, at least 1 mm)."""
    from avatarkit.geometry.sdf import MeshDistance

    d = np.abs(MeshDistance(gt.vertices, gt.faces, device).query(pred.vertices, "normal").sdf)
    vmax = max(float(np.percentile(d, 95)), 1e-3)
    return Mesh(pred.vertices, pred.faces, vertex_colors=colormap(d, vmax)), vmax


HEATMAP_SUFFIXES = (".ply", ".png")


def check_heatmap_path(path: Path) -> None:
    """Raise :class:`OptionError` unless ``path`` ends in a suffix :func:`write_heatmap` writes."""
    if Path(path).suffix.lower() not in HEATMAP_SUFFIXES:
        raise OptionError(f"--heatmap must end in .ply or .png, got {Path(path).name}")


def write_heatmap(path: Path, pred: Mesh, gt: Mesh, device: str = "cpu") -> float:
    """Write the coloured prediction as ``.ply``, or a ``.png`` of it from the front and the
    side with a colour bar; return the distance (metres) shown as red."""
    path = Path(path)
    mesh, vmax = error_mesh(pred, gt, device)
    suffix = path.suffix.lower()
    if suffix == ".ply":
        from avatarkit.io.meshfile import save_mesh

        save_mesh(mesh, path)
        return vmax
    check_heatmap_path(path)
    from avatarkit.io.images import write_png
    from avatarkit.render.render import RenderConfig, render
    from avatarkit.render.rigs import orbit

    cameras = orbit(*mesh.bounding_sphere(), [0.0, 90.0], [0.0], (512, 512))
    views = render(
        mesh, cameras, RenderConfig(albedo="vertex", lighting="sh", background=(255, 255, 255)), device=device
    )
    bar = np.repeat(colormap(np.linspace(0, vmax, 1024), vmax)[None], 16, axis=0)
    image = np.concatenate([np.concatenate(list(views.rgb), axis=1), bar], axis=0)
    write_png(path, image)
    return vmax
