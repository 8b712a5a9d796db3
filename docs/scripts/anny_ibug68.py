"""Draw docs/images/anny_ibug68.png: the 68 iBUG points on Anny's neutral head, numbered.

Two views rendered with avatarkit's own renderer (front, and three-quarter from the subject's
left), the points of ``avatarkit.parametric.face_landmarks`` drawn with PIL: filled where the
surface sees them, hollow where the head hides them. Run from the repository root:

    python docs/scripts/anny_ibug68.py [OUTPUT.png] [--rebuild]

``--rebuild`` draws freshly built definitions instead of the shipped file (to check a change to
the construction before writing it with ``write_anny_face_landmarks``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from avatarkit.parametric.anny import AnnyBody, AnnyModel
from avatarkit.parametric.face_landmarks import (
    IBUG68_CLOSED,
    IBUG68_GROUPS,
    anny_h3ds6,
    anny_ibug68,
    build_anny_face_landmarks,
    landmark_points,
)
from avatarkit.render.render import RenderConfig, render
from avatarkit.render.rigs import direction, look_at
from avatarkit.structures import Cameras, Mesh

SIZE = 1000  # pixels per view
HALF = 0.09  # metres from the image centre to its edge
HIDDEN_MM = 4.0  # a point this far behind the surface a pixel sees is drawn hidden
COLORS = {  # per group, RGB
    "jaw": (220, 40, 40),
    "right_brow": (230, 130, 0),
    "left_brow": (230, 130, 0),
    "nose_bridge": (0, 140, 60),
    "nostrils": (0, 140, 60),
    "right_eye": (30, 90, 230),
    "left_eye": (30, 90, 230),
    "outer_lips": (170, 0, 170),
    "inner_lips": (0, 150, 170),
}
PART_COLORS = {"head": (214, 180, 160), "body": (214, 180, 160), "mouth_cavity": (120, 40, 40), "tongue": (150, 60, 60)}


def camera(center: np.ndarray, yaw: float) -> Cameras:
    """A perspective camera at ``yaw`` about +Y (0: in front), aimed at ``center``."""
    distance = 1.2
    f = SIZE / 2 / HALF * distance
    k = np.array([[f, 0, (SIZE - 1) / 2], [0, f, (SIZE - 1) / 2], [0, 0, 1]])
    pose = look_at(center + distance * direction(yaw, 0.0), center)
    return Cameras(k[None], pose[None], "perspective", SIZE, SIZE)


def panel(
    mesh: Mesh, points: np.ndarray, h3ds: np.ndarray, center: np.ndarray, yaw: float, title: str, all_labels: bool
) -> Image.Image:
    """One view: the head, the groups as lines, the points (hollow where hidden) and numbers."""
    cams = camera(center, yaw)
    views = render(
        mesh, cams, RenderConfig(lighting="directional", albedo="vertex", background=(255, 255, 255), ssaa=2)
    )
    image = Image.fromarray(views.rgb[0])
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(15)
    uv, depth = cams.project(points)
    uv, depth = uv[0], depth[0]
    seen = np.zeros(len(points), dtype=bool)
    for i, (u, v) in enumerate(uv):
        col, row = round(u), round(v)
        if 0 <= col < SIZE and 0 <= row < SIZE:
            surface = views.depth[0, row - 1 : row + 2, col - 1 : col + 2]
            seen[i] = bool((surface > 0).any() and depth[i] <= surface[surface > 0].max() + HIDDEN_MM / 1000)
    for name, start, stop in IBUG68_GROUPS:
        index = list(range(start, stop)) + ([start] if name in IBUG68_CLOSED else [])
        draw.line([tuple(uv[i]) for i in index], fill=COLORS[name], width=2)
    centre_2d = uv.mean(axis=0)
    for name, start, stop in IBUG68_GROUPS:
        group_centre = uv[start:stop].mean(axis=0) if name not in ("jaw", "nose_bridge") else centre_2d
        for i in range(start, stop):
            u, v = uv[i]
            r = 4
            if seen[i]:
                draw.ellipse([u - r, v - r, u + r, v + r], fill=COLORS[name], outline=(0, 0, 0))
            else:
                draw.ellipse([u - r, v - r, u + r, v + r], outline=COLORS[name], width=2)
            if not (seen[i] or all_labels):
                continue
            offset = label_offset(name, i, uv[i], group_centre)
            draw.text((u + offset[0], v + offset[1]), str(i), fill=(0, 0, 0), font=font, anchor="mm")
    hu, _ = cams.project(h3ds)
    for u, v in hu[0]:
        draw.line([u - 5, v - 5, u + 5, v + 5], fill=(0, 0, 0), width=1)
        draw.line([u - 5, v + 5, u + 5, v - 5], fill=(0, 0, 0), width=1)
    draw.text((12, 10), title, fill=(0, 0, 0), font=ImageFont.load_default(22))
    legend = "filled: visible, hollow: hidden by the head;  x: the six H3DS landmarks"
    draw.text((12, SIZE - 30), legend, fill=(60, 60, 60), font=ImageFont.load_default(16))
    return image


def label_offset(group: str, index: int, point: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Where a point's number goes: away from its group's centre (inner lips: into the lip)."""
    if group == "inner_lips":
        return np.array([0.0, -13.0 if index <= 64 else 13.0])
    if group == "nose_bridge":
        return np.array([15.0, 0.0])
    away = point - centre
    norm = np.linalg.norm(away)
    away = away / norm if norm > 1e-6 else np.array([0.0, -1.0])
    return away * (16.0 if group in ("right_eye", "left_eye", "outer_lips", "nostrils") else 17.0)


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    out = Path(args[0]) if args else Path(__file__).resolve().parents[1] / "images" / "anny_ibug68.png"
    body = AnnyBody.load()
    with torch.no_grad():
        vertices = AnnyModel(body)().vertices[0].cpu().numpy().astype(np.float64)
    ibug = build_anny_face_landmarks(body)["ibug68"] if "--rebuild" in sys.argv else anny_ibug68()
    points = landmark_points(vertices, ibug.check(body.faces))
    h3ds = landmark_points(vertices, anny_h3ds6().check(body.faces))
    colors = np.full((len(vertices), 3), 235, dtype=np.uint8)
    for name, rgb in PART_COLORS.items():
        colors[body.vertex_labels == body.label_names.index(name)] = rgb
    mesh = Mesh(vertices=vertices, faces=body.faces, vertex_colors=colors)
    center = points.mean(axis=0) + np.array([0.0, 0.004, 0.0])
    front = panel(mesh, points, h3ds, center, 0.0, "Anny, neutral: iBUG 68, front", all_labels=True)
    turned = center + np.array([0.012, 0.0, -0.01])  # the near ear in the frame
    three_quarter = panel(mesh, points, h3ds, turned, 35.0, "three-quarter, from the subject's left", all_labels=False)
    sheet = Image.new("RGB", (2 * SIZE, SIZE), (255, 255, 255))
    sheet.paste(front, (0, 0))
    sheet.paste(three_quarter, (SIZE, 0))
    out.parent.mkdir(parents=True, exist_ok=True)
    # 256 colours: a third of the bytes, no visible banding on the smooth shading
    sheet.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(out, optimize=True)


if __name__ == "__main__":
    main()
