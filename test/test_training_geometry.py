"""training/geometry.py: analytic cases and a warp of the synthetic world with true depth and motion."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from depth_node import geometry as np_geometry  # noqa: E402
from training.geometry import (  # noqa: E402
    BackprojectDepth,
    Project3D,
    disp_to_depth,
    rot_from_axisangle,
    transformation_from_parameters,
    warp_image,
)
from training.losses import SSIM, photometric_error  # noqa: E402

torch.set_num_threads(2)
H, W = 24, 40
FX, FY, CX, CY = 30.0, 28.0, 19.5, 11.0


def intrinsics(batch: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    K = torch.tensor([[FX, 0, CX, 0], [0, FY, CY, 0], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=torch.float64)
    K = K.expand(batch, 4, 4).contiguous()
    return K, torch.linalg.inv(K)


def pixel_coords(depth: torch.Tensor, T: torch.Tensor) -> torch.Tensor:
    K, inv_K = intrinsics(depth.shape[0])
    points = BackprojectDepth(H, W).double()(depth, inv_K)
    return Project3D(H, W).pixel_coords(points, K, T)


def grid_uv() -> tuple[torch.Tensor, torch.Tensor]:
    v, u = torch.meshgrid(
        torch.arange(H, dtype=torch.float64), torch.arange(W, dtype=torch.float64), indexing="ij"
    )
    return u, v


def test_identity_pose_returns_the_pixel_grid() -> None:
    depth = torch.rand(2, 1, H, W, dtype=torch.float64) * 50 + 1
    uv = pixel_coords(depth, torch.eye(4, dtype=torch.float64).expand(2, 4, 4))
    u, v = grid_uv()
    assert torch.allclose(uv[..., 0], u.expand(2, H, W), atol=1e-6)
    assert torch.allclose(uv[..., 1], v.expand(2, H, W), atol=1e-6)
    image = torch.rand(2, 3, H, W, dtype=torch.float64)
    K, inv_K = intrinsics(2)
    warped = warp_image(image, depth, torch.eye(4, dtype=torch.float64).expand(2, 4, 4), K, inv_K)
    assert torch.allclose(warped, image, atol=1e-6)


def test_lateral_translation_gives_analytic_flow_on_a_fronto_parallel_plane() -> None:
    Z, tx, ty = 6.0, 0.3, -0.2
    T = transformation_from_parameters(
        torch.zeros(1, 3, dtype=torch.float64), torch.tensor([[tx, ty, 0.0]]).double()
    )
    uv = pixel_coords(torch.full((1, 1, H, W), Z, dtype=torch.float64), T)
    u, v = grid_uv()
    assert torch.allclose(uv[0, ..., 0], u + FX * tx / Z, atol=1e-6)
    assert torch.allclose(uv[0, ..., 1], v + FY * ty / Z, atol=1e-6)


def test_forward_translation_gives_radial_flow() -> None:
    # Driving forward by d: the plane at Z is at Z - d in the later camera, pixels move away from
    # the principal point by Z / (Z - d).
    Z, d = 10.0, 1.0
    T = transformation_from_parameters(
        torch.zeros(1, 3, dtype=torch.float64), torch.tensor([[0.0, 0.0, -d]]).double()
    )
    uv = pixel_coords(torch.full((1, 1, H, W), Z, dtype=torch.float64), T)
    u, v = grid_uv()
    assert torch.allclose(uv[0, ..., 0], CX + (u - CX) * Z / (Z - d), atol=1e-6)
    assert torch.allclose(uv[0, ..., 1], CY + (v - CY) * Z / (Z - d), atol=1e-6)


def rodrigues(axis_angle: np.ndarray) -> np.ndarray:
    angle = np.linalg.norm(axis_angle)
    k = axis_angle / angle
    Kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + math.sin(angle) * Kx + (1 - math.cos(angle)) * Kx @ Kx


def test_rotation_and_inverse() -> None:
    a = 0.3
    R = rot_from_axisangle(torch.tensor([[0.0, a, 0.0]], dtype=torch.float64))[0, :3, :3].numpy()
    expected = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
    np.testing.assert_allclose(R, expected, atol=1e-9)
    vec = np.array([0.2, -0.5, 0.4])
    R = rot_from_axisangle(torch.tensor(vec)[None])[0, :3, :3].numpy()
    np.testing.assert_allclose(R, rodrigues(vec), atol=1e-6)
    assert torch.allclose(rot_from_axisangle(torch.zeros(1, 3)), torch.eye(4)[None])

    axisangle, translation = torch.tensor([[0.1, -0.2, 0.05]]), torch.tensor([[0.5, 0.1, -1.2]])
    forward = transformation_from_parameters(axisangle, translation)
    inverse = transformation_from_parameters(axisangle, translation, invert=True)
    assert torch.allclose(forward @ inverse, torch.eye(4)[None], atol=1e-6)
    assert torch.allclose(forward[0, :3, 3], translation[0])  # p' = R p + t


def test_projection_agrees_with_runtime_geometry() -> None:
    """Training and runtime share one pixel convention (depth_node.geometry)."""
    rng = np.random.default_rng(0)
    depth = rng.uniform(2, 30, (H, W))
    points = np_geometry.depth_to_points(depth.astype(np.float32), FX, FY, CX, CY).reshape(-1, 3)
    R = np_geometry.rotation_matrix(0.02, -0.03, 0.05)
    T = np_geometry.make_transform(R, [0.2, -0.1, -0.8])
    K3 = np.array([[FX, 0, CX], [0, FY, CY], [0, 0, 1]])
    u_ref, v_ref, _ = np_geometry.project_points(np_geometry.transform_points(T, points), K3)
    uv = pixel_coords(torch.tensor(depth)[None, None], torch.tensor(T)[None])
    np.testing.assert_allclose(uv[0, ..., 0].numpy().reshape(-1), u_ref, atol=1e-3)
    np.testing.assert_allclose(uv[0, ..., 1].numpy().reshape(-1), v_ref, atol=1e-3)


def test_true_depth_and_motion_warp_the_synthetic_world(sim_drive) -> None:
    """Warping neighbours with the world's true depth and relative pose explains the target view."""
    K = np.eye(4)
    K[:3, :3] = sim_drive.K
    K_t = torch.tensor(K, dtype=torch.float32)[None]
    inv_K = torch.linalg.inv(K_t)
    ssim = SSIM()
    target_index = len(sim_drive) // 2
    target = sim_drive.frame(target_index)
    to_tensor = lambda image: torch.tensor(image, dtype=torch.float32).permute(2, 0, 1)[None] / 255.0  # noqa: E731
    target_image = to_tensor(target.image)
    # Sky (NaN) is far away: it moves with the rotation only.
    depth = torch.tensor(np.nan_to_num(target.depth, nan=1e4), dtype=torch.float32)[None, None]
    height, width = target.depth.shape
    backproject, project = BackprojectDepth(height, width), Project3D(height, width)
    for offset in (-1, 1):
        source = sim_drive.frame(target_index + offset)
        # Target camera -> world -> source camera.
        cam_T_cam = np.linalg.inv(source.T_world_cam) @ target.T_world_cam
        T = torch.tensor(cam_T_cam, dtype=torch.float32)[None]
        source_image = to_tensor(source.image)
        warped = warp_image(source_image, depth, T, K_t, inv_K, backproject, project)
        uv = project.pixel_coords(backproject(depth, inv_K), K_t, T)[0]
        inside = (
            (uv[..., 0] >= 0) & (uv[..., 0] <= width - 1) & (uv[..., 1] >= 0) & (uv[..., 1] <= height - 1)
        )
        # Independently moving cars do not follow the camera motion; the border has no source.
        valid = inside & ~torch.tensor(target.moving_mask) & ~torch.tensor(source.moving_mask)
        valid[:2], valid[-2:], valid[:, :2], valid[:, -2:] = False, False, False, False
        assert float(valid.float().mean()) > 0.5
        warped_loss = photometric_error(warped, target_image, ssim)[0, 0][valid].mean()
        still_loss = photometric_error(source_image, target_image, ssim)[0, 0][valid].mean()
        assert float(warped_loss) < 0.5 * float(still_loss), (offset, float(warped_loss), float(still_loss))


def test_disp_to_depth_range() -> None:
    scaled, depth = disp_to_depth(torch.tensor([0.0, 1.0]), 0.1, 100.0)
    assert torch.allclose(depth, torch.tensor([100.0, 0.1]))
    assert torch.allclose(scaled, torch.tensor([0.01, 10.0]))
