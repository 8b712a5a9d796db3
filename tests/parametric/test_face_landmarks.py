"""The 68 iBUG points (and H3DS's six) on Anny's mesh, checked as a reader of landmark files
and a face tracker would use them: where they sit on the neutral head and on drawn people,
their order, their symmetry, how expressions move them, and their evaluation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avatarkit.errors import MeshError
from avatarkit.parametric.anny import FACE_LANDMARKS, AnnyModel
from avatarkit.parametric.face_landmarks import (
    DATA_FILE,
    H3DS_NAMES,
    IBUG68_GROUPS,
    IBUG68_MIRROR,
    IBUG68_NAMES,
    LandmarkEmbedding,
    anny_h3ds6,
    anny_ibug68,
    build_anny_face_landmarks,
    h3ds_points,
    ibug68_group,
    ibug68_points,
    landmark_points,
)

MM = 1e-3


@pytest.fixture(scope="module")
def model(anny_body):
    return AnnyModel(anny_body)


@pytest.fixture(scope="module")
def neutral(model):
    with torch.no_grad():
        return model().vertices[0].numpy().astype(np.float64)


@pytest.fixture(scope="module")
def drawn_people(model, make_generator):
    """Three people as synth draws them (identity and random facial actions), rest pose:
    (phenotype, expression) groups for the model."""
    generator = make_generator(part="head", pose="rest", expressions=True, texture="none", seed=7)
    people = []
    for index in range(3):
        params = generator.subject(index).params["anny"]
        phenotype = torch.tensor([[float(params["phenotype"][k]) for k in model.phenotype_labels]])
        expression = torch.as_tensor(np.asarray(params["facial_actions"]), dtype=torch.float32)[None]
        # ARKit's mouthClose closes the lips of an open jaw and is at most jawOpen; alone it
        # pushes the lips through each other, and no contour order survives that
        close, jaw = (model.expression_labels.index(n) for n in ("mouthClose", "jawOpen"))
        expression[0, close] = min(expression[0, close], expression[0, jaw])
        people.append((phenotype, expression))
    return people


def blinking(model, drawn_people) -> list[set[int]]:
    """Per drawn person, the eyes (36: right, 42: left) a blink action half closes or more."""
    index = {36: model.expression_labels.index("eyeBlinkRight"), 42: model.expression_labels.index("eyeBlinkLeft")}
    return [{eye for eye, k in index.items() if expression[0, k] >= 0.5} for _, expression in drawn_people]


def heads(model, drawn_people, expressions: bool):
    """(B, V, 3) vertices of the drawn people, with or without their expressions."""
    phenotype = torch.cat([p for p, _ in drawn_people])
    expression = torch.cat([e for _, e in drawn_people]) if expressions else torch.zeros(len(drawn_people), 52)
    with torch.no_grad():
        return model(phenotype=phenotype, expression=expression).vertices.numpy().astype(np.float64)


def mid_plane(points: np.ndarray) -> float:
    """x of the face's mid-plane: half-way between the eyes' outer and inner corners."""
    return float(points[[36, 39, 42, 45], 0].mean())


def image(points: np.ndarray) -> np.ndarray:
    """A frontal photo's pixel axes for points of an upright head facing +Z: right, down."""
    return np.stack([points[:, 0], -points[:, 1]], axis=1)


def clockwise_in_image(points: np.ndarray) -> bool:
    """A closed contour turns clockwise in a frontal image (y down): positive shoelace sum."""
    p = image(points)
    q = np.roll(p, -1, axis=0)
    return float((p[:, 0] * q[:, 1] - q[:, 0] * p[:, 1]).sum()) > 0


def inside_polygon(point: np.ndarray, polygon: np.ndarray) -> bool:
    """Even-odd rule in 2D."""
    x, y = point
    inside = False
    for (x1, y1), (x2, y2) in zip(polygon, np.roll(polygon, -1, axis=0), strict=True):
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside


# ----------------------------------------------------------------------------- the layout


def test_layout_table_names_every_point_once():
    sizes = {name: stop - start for name, start, stop in IBUG68_GROUPS}
    assert sizes == {
        "jaw": 17,
        "right_brow": 5,
        "left_brow": 5,
        "nose_bridge": 4,
        "nostrils": 5,
        "right_eye": 6,
        "left_eye": 6,
        "outer_lips": 12,
        "inner_lips": 8,
    }
    covered = [i for _, start, stop in IBUG68_GROUPS for i in range(start, stop)]
    assert covered == list(range(68))
    assert len(set(IBUG68_NAMES)) == 68 and IBUG68_NAMES[8] == "jaw_8" and IBUG68_NAMES[67] == "inner_lips_7"
    assert list(ibug68_group("left_eye")) == [42, 43, 44, 45, 46, 47]
    with pytest.raises(KeyError, match="groups are"):
        ibug68_group("mouth")
    # the mirror is an involution that swaps right and left groups
    mirror = np.array(IBUG68_MIRROR)
    assert np.array_equal(mirror[mirror], np.arange(68))
    assert sorted(np.flatnonzero(mirror == np.arange(68))) == [8, 27, 28, 29, 30, 33, 51, 57, 62, 66]
    assert [mirror[i] for i in (0, 17, 21, 31, 36, 39, 37, 41, 48, 49, 59, 60, 61, 67)] == [
        16,
        26,
        22,
        35,
        45,
        42,
        44,
        46,
        54,
        53,
        55,
        64,
        63,
        65,
    ]


def test_shipped_definitions_belong_to_annys_mesh(anny_body):
    ibug, h3ds = anny_ibug68(), anny_h3ds6()
    assert DATA_FILE.is_file() and DATA_FILE.suffix == ".json"
    assert ibug.names == IBUG68_NAMES and h3ds.names == H3DS_NAMES == FACE_LANDMARKS
    for embedding in (ibug, h3ds):
        embedding.check(anny_body.faces, n_vertices=13718)
        assert (embedding.bary >= 0).all() and np.allclose(embedding.bary.sum(axis=1), 1.0)
    # every iBUG point is on the skin: not in an eye, the mouth's inside or the tongue
    labels = {anny_body.label_names[i] for i in anny_body.face_labels[ibug.face_index]}
    assert labels <= {"head", "body"}
    # the six H3DS landmarks are AnnyBody's vertices, exactly
    corners = h3ds.vertex_index[np.arange(6), h3ds.bary.argmax(axis=1)]
    assert corners.tolist() == [anny_body.landmark_vertices[n] for n in H3DS_NAMES]
    assert np.array_equal(h3ds.bary.max(axis=1), np.ones(6))


def test_rebuilding_from_anny_gives_the_shipped_file(anny_body):
    """The rebuilt points lie where the shipped ones do on Anny's neutral mesh (a point on an edge
    may name either triangle beside it). One point is looser: the nostrils' midline point (33) is
    the steepest fall of the frontal depth in 0.1 mm rows, where two rows fall almost alike, and
    numpy builds differ in which they pick (1.85 mm apart with numpy 2.4.6; the shipped file
    holds the other)."""
    from avatarkit.parametric.anny import AnnyModel

    vertices = AnnyModel(anny_body)().vertices[0].detach().cpu().numpy().astype(np.float64)
    rebuilt = build_anny_face_landmarks(anny_body)
    for name, shipped in (("ibug68", anny_ibug68()), ("h3ds6", anny_h3ds6())):
        gap = np.linalg.norm(np.asarray(rebuilt[name].points(vertices)) - np.asarray(shipped.points(vertices)), axis=1)
        loose = np.isin(np.arange(len(gap)), [33] if name == "ibug68" else [])
        assert gap[~loose].max() < 1e-5, name  # metres: a hundredth of a millimetre
        assert gap[loose].max(initial=0.0) < 2.5e-3, name


def test_a_mesh_of_another_topology_is_refused(anny_body):
    ibug = anny_ibug68()
    shuffled = np.roll(anny_body.faces, 1, axis=0)
    with pytest.raises(MeshError, match="not the topology"):
        ibug.check(shuffled)
    with pytest.raises(MeshError, match="out of range"):
        ibug.check(anny_body.faces[:100])
    with pytest.raises(ValueError, match="one of each per landmark"):
        LandmarkEmbedding(("a", "b"), np.zeros(1), np.ones((1, 3)) / 3, np.zeros((1, 3)))


# ----------------------------------------------------------------------------- evaluation


def test_evaluation_batched_unbatched_numpy_torch_and_differentiable(model, neutral):
    points = ibug68_points(neutral)
    assert points.shape == (68, 3) and points.dtype == np.float64
    up = np.array([0.0, 0.1, 0.0])
    batch = np.stack([neutral, neutral + up])
    np.testing.assert_allclose(ibug68_points(batch)[1], points + up, atol=1e-12)
    # by hand: the weighted corners of each landmark's face
    ibug = anny_ibug68()
    by_hand = np.einsum("lk,lkc->lc", ibug.bary, neutral[model.faces.numpy()[ibug.face_index]])
    np.testing.assert_allclose(points, by_hand, atol=1e-12)

    vertices = torch.tensor(batch, dtype=torch.float32, requires_grad=True)
    ours = ibug68_points(vertices)
    assert ours.shape == (2, 68, 3) and ours.dtype == torch.float32
    np.testing.assert_allclose(ours.detach().numpy(), ibug68_points(batch), atol=1e-6)
    ours[:, :, 1].sum().backward()  # each point's weights sum to one
    assert vertices.grad[:, :, 1].sum().item() == pytest.approx(2 * 68, rel=1e-6)
    assert vertices.grad[:, :, [0, 2]].abs().sum() == 0
    assert (vertices.grad[0, :, 1] != 0).sum() <= 3 * 68

    params = model.zero_parameters(1)
    params["expression"].requires_grad_(True)
    lips = ibug68_points(model(**params).vertices)[0, 57]
    lips[1].backward()
    assert params["expression"].grad[0, model.expression_labels.index("jawOpen")] < 0  # opening lowers the lip


def test_h3ds_six_are_the_models_landmarks(model):
    expression = torch.zeros(2, 52)
    expression[1, model.expression_labels.index("mouthSmileLeft")] = 1.0
    with torch.no_grad():
        out = model(expression=expression, phenotype=torch.full((1, 6), 0.3))
    six = h3ds_points(out.vertices)
    assert six.shape == (2, 6, 3)
    torch.testing.assert_close(six, out.landmarks[:, :6], atol=1e-7, rtol=0)
    assert landmark_points(out.vertices[0], anny_h3ds6()).shape == (6, 3)


# ----------------------------------------------------------------------------- where the points sit


def test_neutral_head_is_symmetric_about_the_mid_plane(neutral):
    points = ibug68_points(neutral)
    x0 = mid_plane(points)
    mirrored = points[list(IBUG68_MIRROR)] * [-1, 1, 1] + [2 * x0, 0, 0]
    assert np.abs(mirrored - points).max() < 1 * MM
    midline = [i for i in range(68) if IBUG68_MIRROR[i] == i]
    assert np.abs(points[midline, 0] - x0).max() < 0.5 * MM


def test_identities_keep_the_layout_symmetric(model, drawn_people):
    for vertices in heads(model, drawn_people, expressions=False):
        points = ibug68_points(vertices)
        x0 = mid_plane(points)
        mirrored = points[list(IBUG68_MIRROR)] * [-1, 1, 1] + [2 * x0, 0, 0]
        assert np.abs(mirrored - points).max() < 2 * MM


def check_order(points: np.ndarray, open_mouth: bool = False, closed_eyes: frozenset[int] = frozenset()) -> None:
    """The iBUG order on an upright head facing +Z (x: the subject's left, y: up). The lids of
    ``closed_eyes`` (36, 42) may cross: a blink brings the upper lid's edge over the lower's."""
    x, y, z = points.T
    jaw, chin = points[0:17], 8
    # jaw: right ear -> chin -> left ear, going down then up; the chin is its lowest point
    assert (np.diff(x[0:17]) > 0).all()
    assert (np.diff(y[0:9]) < 0).all() and (np.diff(y[8:17]) > 0).all()
    assert jaw[:, 1].argmin() == chin
    assert min(y[0], y[16]) > y[30] > y[chin]  # the jaw starts level with the eyes, above the nose tip
    # brows: outer to inner, right then left, above the eyes
    assert (np.diff(x[17:27]) > 0).all()
    assert y[17:22].min() > y[36:42].max() and y[22:27].min() > y[42:48].max()
    # nose: the bridge goes down and forward to the tip, the most forward point of the nose
    assert (np.diff(y[27:31]) < 0).all() and (np.diff(z[27:31]) > 0).all()
    assert z[27:36].argmax() == 3
    assert (np.diff(x[31:36]) > 0).all() and y[33] < y[30] and y[33] <= y[[31, 35]].min() + 1 * MM
    # eyes: corners at the ends, upper lid above lower lid, clockwise in the image
    for start in (36, 42):
        eye = points[start : start + 6]
        assert eye[:, 0].argmin() == 0 and eye[:, 0].argmax() == 3
        if start not in closed_eyes:
            assert y[start + 1] > y[start + 5] and y[start + 2] > y[start + 4]
            assert clockwise_in_image(eye)
    assert x[39] < x[27] < x[42]  # inner corners either side of the bridge
    # lips: corners at the ends, clockwise, the inner contour inside the outer one, below the nose
    outer, inner = points[48:60], points[60:68]
    assert outer[:, 0].argmin() == 0 and outer[:, 0].argmax() == 6
    assert clockwise_in_image(outer)
    for k in (61, 62, 63, 65, 66, 67):
        assert inside_polygon(image(points[k : k + 1])[0], image(outer)), k
    assert x[48] <= x[60] and x[64] <= x[54]
    assert y[33] > y[51] > y[62] and y[66] > y[57] > y[chin]
    if open_mouth:
        assert clockwise_in_image(inner)
        assert y[62] - y[66] > 5 * MM
    else:
        assert y[62] > y[66] - 1 * MM


def test_order_on_the_neutral_head(neutral):
    points = ibug68_points(neutral)
    check_order(points)
    assert points[:, 2].argmax() == 30  # the nose tip is the face's most forward point


def test_order_on_drawn_people_with_expressions(model, drawn_people):
    closed = blinking(model, drawn_people)
    assert any(closed)  # one of them blinks
    for vertices, eyes in zip(heads(model, drawn_people, expressions=True), closed, strict=True):
        check_order(ibug68_points(vertices), closed_eyes=frozenset(eyes))


def first_hit_depth(vertices: np.ndarray, faces: np.ndarray, x: float, y: float) -> float:
    """z of the first surface a ray along -Z through (x, y) meets (a frontal view), -inf if none."""
    tri = vertices[faces]
    a, e1, e2 = tri[:, 0], tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    qx, qy = x - a[:, 0], y - a[:, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = (qx * e2[:, 1] - qy * e2[:, 0]) / det
        w = (e1[:, 0] * qy - e1[:, 1] * qx) / det
    hit = (det != 0) & (u >= 0) & (w >= 0) & (u + w <= 1)
    return float((a[:, 2] + u * e1[:, 2] + w * e2[:, 2])[hit].max(initial=-np.inf))


def test_points_are_on_the_skin_and_seen_from_the_front(neutral, anny_body):
    points = ibug68_points(neutral)
    ibug = anny_ibug68()
    # on the surface: each point is inside its triangle (within 1e-9 m of its plane and edges)
    tri = neutral[ibug.vertex_index]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    assert np.abs(((points - tri[:, 0]) * normal).sum(axis=1)).max() < 1e-9
    # a frontal camera sees every point but the jaw's ends, behind the ears' roots
    seen = [first_hit_depth(neutral, anny_body.faces, *points[i, :2]) - points[i, 2] < 0.5 * MM for i in range(68)]
    hidden = sorted(int(i) for i in np.flatnonzero(~np.array(seen)))
    assert set(hidden) <= {0, 1, 15, 16}, hidden


def test_chin_and_nose_tip_are_the_extremes(neutral):
    points = ibug68_points(neutral)
    jaw = points[:17]
    assert jaw[:, 1].argmin() == 8
    # the chin point is within a few mm of the lowest point of the chin's front (the face seen
    # from the front ends there: below it the surface turns back under the jaw)
    chin = neutral[(np.abs(neutral[:, 0] - points[8, 0]) < 0.005) & (neutral[:, 1] < points[57, 1])]
    chin = chin[(chin[:, 1] > points[57, 1] - 0.06) & (chin[:, 2] > points[8, 2] - 0.005)]
    assert 0 <= points[8, 1] - chin[:, 1].min() < 3 * MM
    nose = neutral[(np.abs(neutral[:, 0] - points[30, 0]) < 0.02) & (np.abs(neutral[:, 1] - points[30, 1]) < 0.02)]
    assert points[30, 2] >= nose[:, 2].max() - 0.5 * MM


# ----------------------------------------------------------------------------- how the face moves them


def act(model, **weights) -> np.ndarray:
    expression = torch.zeros(1, 52)
    for name, value in weights.items():
        expression[0, model.expression_labels.index(name)] = value
    with torch.no_grad():
        return ibug68_points(model(expression=expression).vertices)[0].numpy().astype(np.float64)


def test_jaw_open_parts_the_inner_lips_and_drops_the_chin(model, neutral):
    rest, open_ = ibug68_points(neutral), act(model, jawOpen=1.0)
    gap = lambda p: p[62, 1] - p[66, 1]  # noqa: E731
    assert gap(rest) < 1 * MM and gap(open_) > 10 * MM
    assert rest[8, 1] - open_[8, 1] > 10 * MM  # the chin drops
    assert rest[57, 1] - open_[57, 1] > 10 * MM and abs(rest[51, 1] - open_[51, 1]) < 3 * MM
    assert np.abs(open_[17:27] - rest[17:27]).max() < 0.5 * MM  # the brows stay,
    assert np.abs(open_[36:48] - rest[36:48]).max() < 0.5 * MM  # the eyes too,
    assert np.abs(open_[27:36] - rest[27:36]).max() < 2 * MM  # the nose nearly
    check_order(open_, open_mouth=True)


def test_brow_and_blink_actions_move_their_own_side(model, neutral):
    rest = ibug68_points(neutral)
    down = act(model, browDownLeft=1.0)
    assert (down[22:27, 1] - rest[22:27, 1]).mean() < -1.5 * MM  # the subject's left brow lowers
    assert np.abs(down[17:22] - rest[17:22]).max() < 0.3 * MM
    up = act(model, browInnerUp=1.0)
    assert up[21, 1] - rest[21, 1] > 1.5 * MM and up[22, 1] - rest[22, 1] > 1.5 * MM
    blink = act(model, eyeBlinkRight=1.0)
    opening = lambda p, a, b: p[a, 1] - p[b, 1]  # noqa: E731
    assert opening(blink, 37, 41) < 0.3 * opening(rest, 37, 41)  # the right eye closes
    assert abs(opening(blink, 44, 46) - opening(rest, 44, 46)) < 0.3 * MM  # the left one does not
    smile = act(model, mouthSmileLeft=1.0, mouthSmileRight=1.0)
    assert smile[48, 0] < rest[48, 0] - 1 * MM and smile[54, 0] > rest[54, 0] + 1 * MM  # a wider mouth
