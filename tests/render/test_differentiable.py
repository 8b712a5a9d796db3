"""The differentiable rendering path: visibility from the ray caster, barycentrics and
interpolation in torch. Forward values pinned on the G-buffer and on ``render``; gradients by
finite differences; fits by Adam."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh

from avatarkit.errors import MeshError, OptionError
from avatarkit.render.differentiable import barycentrics, interpolate, rasterize, render_attributes
from avatarkit.render.projection import project
from avatarkit.render.raycast import RayCaster
from avatarkit.render.render import RenderConfig, render
from avatarkit.render.rigs import look_at, orbit
from avatarkit.structures import Cameras, Mesh

CENTER = np.array([0.0, 1.0, 0.0])


def _sphere():
    s = trimesh.creation.icosphere(subdivisions=2, radius=0.5)
    return (s.vertices + CENTER).astype(np.float32), s.faces.astype(np.int64)


def _rig(projection, yaws=(0.0, 100.0, 230.0), pitches=(10.0, -25.0)):
    return orbit(CENTER, 0.5, np.array(yaws), np.array(pitches), (32, 32), projection)


def _camera_depth(points: torch.Tensor, cameras: Cameras) -> torch.Tensor:
    """Camera +Z (N, H, W) of world points (N, H, W, 3), one view each."""
    w2c = torch.as_tensor(cameras.world_to_cam, dtype=points.dtype)
    return torch.einsum("nj,nhwj->nhw", w2c[:, 2, :3], points) + w2c[:, 2, 3, None, None]


@pytest.mark.parametrize("projection", ["perspective", "orthographic"])
def test_forward_barycentrics_are_the_ray_casters(projection):
    vertices, faces = _sphere()
    cams = _rig(projection)
    gb = RayCaster(vertices, faces).gbuffer(cams)
    fragments = rasterize(torch.tensor(vertices), faces, cams)
    assert fragments.face.dtype == torch.int64 and fragments.bary.dtype == torch.float32
    assert np.array_equal(fragments.face.numpy(), gb.face)
    assert np.array_equal(fragments.depth.numpy(), gb.depth)
    mask = gb.face >= 0
    assert 0.2 < mask.mean() < 0.9  # the sphere and some background in every view
    for dtype in (torch.float32, torch.float64):
        bary = barycentrics(torch.tensor(vertices, dtype=dtype), faces, fragments, cams)
        assert bary.shape == (6, 32, 32, 3) and bary.dtype == dtype
        assert np.abs(bary.numpy() - gb.bary).max() < 1e-4
        assert np.all(bary.numpy()[~mask] == 0)
        # the pixel centre is inside its face (up to rounding), as visibility said
        assert bary.numpy()[mask].min() > -1e-4


@pytest.mark.parametrize("projection", ["perspective", "orthographic"])
def test_interpolated_positions_sit_on_the_pixel_rays_at_the_gbuffer_depth(projection):
    vertices, faces = _sphere()
    cams = _rig(projection)
    fragments = rasterize(vertices, faces, cams)
    v = torch.tensor(vertices, dtype=torch.float64)
    points = interpolate(v, faces, fragments, barycentrics(v, faces, fragments, cams))
    mask = fragments.mask
    depth = _camera_depth(points, cams)
    assert (depth[mask] - fragments.depth[mask]).abs().max() < 1e-4
    assert torch.all(points[~mask] == 0)
    # and each one projects back onto its own pixel centre
    n, h, w = mask.shape
    uv, _ = project(
        points.reshape(n, -1, 3).float(),
        torch.tensor(cams.K),
        torch.tensor(cams.world_to_cam),
        projection == "orthographic",
    )
    rows, cols = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    pixels = torch.stack([cols, rows], -1).float().expand(n, h, w, 2)
    assert (uv.reshape(n, h, w, 2)[mask] - pixels[mask]).abs().max() < 1e-3


def test_unlit_vertex_colours_are_what_render_writes():
    """Like for like: ``render`` with ``albedo=vertex``, no lighting and no supersampling
    interpolates the colours with the G-buffer's weights and rounds to 8 bits."""
    vertices, faces = _sphere()
    colors = np.random.default_rng(0).integers(0, 256, (len(vertices), 3), dtype=np.uint8)
    cams = _rig("perspective")
    views = render(Mesh(vertices, faces, vertex_colors=colors), cams, RenderConfig(albedo="vertex"))
    v = torch.tensor(vertices, requires_grad=True)  # weights from barycentrics(), not the G-buffer's
    image, mask = render_attributes(v, faces, torch.tensor(colors) / 255.0, cams)
    assert np.array_equal(mask.numpy(), views.mask > 0)
    ours = image.detach().numpy() * 255
    assert np.abs(ours - views.rgb.astype(np.float64)).max() <= 0.5 + 1e-3
    assert np.all(ours[~mask.numpy()] == 0) and np.all(views.rgb[views.mask == 0] == 0)


def _quad_camera(projection):
    """Two triangles near z = 0, slightly folded, and an 8 x 8 camera on +Z seeing both."""
    vertices = torch.tensor(
        [[-0.5, -0.4, 0.0], [0.5, -0.5, 0.05], [0.45, 0.5, 0.0], [-0.5, 0.45, -0.1]], dtype=torch.float64
    )
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]])
    f = 9.0 if projection == "perspective" else 7.0
    k = np.array([[f, 0, 3.5], [0, f, 3.5], [0, 0, 1]])
    w2c = look_at(np.array([0.1, -0.2, 2.0]), np.zeros(3), up=(0.0, -1.0, 0.0))
    return vertices, faces, Cameras(k[None], w2c[None], projection, 8, 8)


@pytest.mark.parametrize("projection", ["perspective", "orthographic"])
def test_barycentrics_and_interpolation_pass_gradcheck(projection):
    vertices, faces, cams = _quad_camera(projection)
    fragments = rasterize(vertices, faces, cams)
    assert set(fragments.face.unique().tolist()) == {-1, 0, 1}  # both faces and some background
    torch.autograd.gradcheck(
        lambda v: barycentrics(v, faces, fragments, cams), (vertices.clone().requires_grad_(),), atol=1e-6
    )
    attributes = torch.randn(4, 2, dtype=torch.float64, requires_grad=True)
    corners = torch.randn(2, 3, 2, dtype=torch.float64, requires_grad=True)
    bary = fragments.bary.double()
    torch.autograd.gradcheck(lambda a: interpolate(a, faces, fragments, bary), (attributes,))
    torch.autograd.gradcheck(lambda a: interpolate(a, faces, fragments, bary), (corners,))
    torch.autograd.gradcheck(
        lambda v, a: interpolate(a, faces, fragments, barycentrics(v, faces, fragments, cams)),
        (vertices.clone().requires_grad_(), attributes),
    )


@pytest.mark.parametrize("projection", ["perspective", "orthographic"])
def test_depth_gradient_of_a_tilted_plane_is_analytic(projection):
    """A plane n . x = c (camera frame) moved by delta: the depth of the pixel whose ray has
    direction d = (x', y', 1) (orthographic: (0, 0, 1)) moves by n . delta / n . d. The sum over
    the covered pixels, back in the world, pins the gradient across the ray (not only along)."""
    cams = orbit(np.zeros(3), 0.5, np.array([40.0]), np.array([20.0]), (16, 16), projection)
    r = cams.world_to_cam[0, :3, :3]
    normal_cam = np.array([0.3, -0.4, -1.0]) / np.linalg.norm([0.3, -0.4, -1.0])  # facing the camera
    tangent = np.cross(normal_cam, [0.0, 1.0, 0.0])
    tangent /= np.linalg.norm(tangent)
    bitangent = np.cross(normal_cam, tangent)
    square = 0.3 * np.array([-tangent - bitangent, tangent - bitangent, tangent + bitangent, bitangent - tangent])
    vertices = torch.tensor(square @ r)  # camera to world about the target (the origin)
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]])
    fragments = rasterize(vertices, faces, cams)
    mask = fragments.mask
    assert mask.sum() > 50
    offset = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    moved = vertices + offset
    depth = _camera_depth(interpolate(moved, faces, fragments, barycentrics(moved, faces, fragments, cams)), cams)
    (grad,) = torch.autograd.grad(depth[mask].sum(), offset)
    rows, cols = np.nonzero(mask[0].numpy())
    k = cams.K[0]
    if projection == "perspective":
        rays = np.stack([(cols - k[0, 2]) / k[0, 0], (rows - k[1, 2]) / k[1, 1], np.ones(len(rows))], -1)
    else:
        rays = np.repeat([[0.0, 0.0, 1.0]], len(rows), 0)
    expected = r.T @ (normal_cam * np.sum(1 / (rays @ normal_cam)))
    assert np.allclose(grad.numpy(), expected, rtol=1e-6, atol=1e-6)
    assert abs(expected[0]) > 0.1 * len(rows)  # a real sideways component


def test_adam_recovers_vertex_colours_from_images():
    vertices, faces = _sphere()
    cams = _rig("perspective", yaws=(0.0, 120.0, 240.0), pitches=(20.0,))
    truth = torch.rand(len(vertices), 3, generator=torch.Generator().manual_seed(0))
    target, mask = render_attributes(vertices, faces, truth, cams)
    colors = torch.full_like(truth, 0.5, requires_grad=True)
    optimizer = torch.optim.Adam([colors], lr=0.05)
    losses = []
    for _ in range(80):
        image, _ = render_attributes(vertices, faces, colors, cams)
        loss = ((image - target)[mask] ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 1000


def test_adam_recovers_a_translation_from_one_depth_map():
    """One view: the part of the move across the view shows only through the gradients of the
    barycentrics (with the weights held fixed, a surface point would follow the mesh and its
    depth would change only along the axis)."""
    vertices, faces = _sphere()
    cams = _rig("perspective", yaws=(30.0,), pitches=(20.0,))
    v = torch.tensor(vertices)
    r = torch.tensor(cams.world_to_cam[0, :3, :3], dtype=torch.float32)
    truth = torch.tensor([0.04, -0.03, 0.03]) @ r  # camera x, y, z to the world

    def depth_image(offset):
        moved = v + offset
        points, mask = render_attributes(moved, faces, moved, cams)
        return _camera_depth(points, cams), mask

    target, target_mask = depth_image(truth)
    offset = torch.zeros(3, requires_grad=True)
    optimizer = torch.optim.Adam([offset], lr=0.005)
    losses = []
    for _ in range(100):
        depth, mask = depth_image(offset)
        both = mask & target_mask  # no gradients at the silhouettes: compare inside both
        loss = ((depth - target)[both] ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 100
    assert (offset.detach() - truth).abs().max() < 2e-3


def test_bad_shapes_raise_avatarkit_errors():
    vertices, faces, cams = _quad_camera("perspective")
    with pytest.raises(MeshError):
        rasterize(vertices[:, :2], faces, cams)
    with pytest.raises(MeshError):
        rasterize(vertices, torch.tensor([[0, 1, 7]]), cams)  # a face out of range
    fragments = rasterize(vertices, faces, cams)
    with pytest.raises(OptionError):
        barycentrics(vertices, faces, fragments, cams.scaled(2))
    with pytest.raises(OptionError):
        interpolate(torch.zeros(3, 2), faces, fragments)  # 3 vertices for faces using 4
    with pytest.raises(OptionError):
        interpolate(torch.zeros(5, 3, 2), faces, fragments)  # 5 faces' corners for 2 faces
