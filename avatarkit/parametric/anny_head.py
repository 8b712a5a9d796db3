"""The head of Anny's mesh, as ``synth --part head`` and the Anny face model cut it.

One selection for both (a head scan's surface, as H3DS's ground truth is): the faces whose
three vertices are skinned mostly to the neck, head or eye bones (:data:`HEAD_BONES`) and
that touch the outside, i.e. have one vertex at least that is not of :data:`HIDDEN_PARTS`
(so the rims of the lips and eyelids, where landmarks sit, stay; eye sockets, eye backs,
the mouth's inside and the tongue go).

This module imports no torch, so ``synth`` may import it at module level.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from avatarkit.parametric.anny import AnnyBody

HEAD_BONES = ("neck01", "neck02", "neck03", "head", "eye.L", "eye.R")
"""Anny's bones of the head part: a vertex whose largest skinning weight is one of these is
a head vertex."""

HIDDEN_PARTS = ("eye_back", "eye_cavity", "mouth_cavity", "tongue")
"""Anny's labels (prefixes) of what lies inside a head, where no camera or scanner sees."""


def head_face_mask(body: AnnyBody) -> np.ndarray:
    """(F,) bool over ``body.faces``: the faces of the head part (see the module docstring)."""
    head = [body.bone_labels.index(b) for b in HEAD_BONES]
    head_vertices = np.isin(body.dominant_bone, head)
    hidden = [i for i, n in enumerate(body.label_names) if n.startswith(HIDDEN_PARTS)]
    outer_vertices = ~np.isin(body.vertex_labels, hidden)
    faces = body.faces
    return head_vertices[faces].all(axis=1) & outer_vertices[faces].any(axis=1)
