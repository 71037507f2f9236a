"""Differentiable view-synthesis geometry for self-supervised training (PyTorch).

Conventions follow Monodepth2 (and ``depth_node.geometry`` for pixels): camera optical frame
(x right, y down, z forward), pixel (u, v) = (column, row) with the pixel centre at its integer
index, intrinsics ``K``/``inv_K`` as [B,4,4]. A relative pose ``cam_T_cam`` maps points from the
target camera (frame 0) into the source camera (frame f): ``p_f = T @ p_0``. For a car driving
forward by 1 m between an earlier and a later frame, the transform from the earlier into the later
camera has translation ~[0, 0, -1] (a static point ahead gets 1 m closer).

Camera intrinsics on the numpy side (scaling to network size etc.) live in ``depth_node.geometry``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def disp_to_depth(disp: Tensor, min_depth: float, max_depth: float) -> tuple[Tensor, Tensor]:
    """Monodepth2's mapping of a sigmoid output in [0,1] to (scaled disparity, depth).

    The disparity is mapped linearly to [1/max_depth, 1/min_depth], so depth is in
    [min_depth, max_depth] and always positive.
    """
    min_disp = 1.0 / max_depth
    max_disp = 1.0 / min_depth
    scaled_disp = min_disp + (max_disp - min_disp) * disp
    return scaled_disp, 1.0 / scaled_disp


def depth_to_disp(depth: Tensor, min_depth: float, max_depth: float) -> Tensor:
    """The sigmoid output in [0,1] for which ``disp_to_depth`` yields ``depth`` (its inverse)."""
    min_disp, max_disp = 1.0 / max_depth, 1.0 / min_depth
    return (1.0 / depth - min_disp) / (max_disp - min_disp)


def depth_to_sigmoid_logit(depth: float, min_depth: float, max_depth: float) -> float:
    """The pre-sigmoid value for which ``disp_to_depth`` yields ``depth`` (used to initialise heads)."""
    min_disp, max_disp = 1.0 / max_depth, 1.0 / min_depth
    disp = (1.0 / depth - min_disp) / (max_disp - min_disp)
    disp = min(max(disp, 1e-6), 1.0 - 1e-6)
    return float(torch.logit(torch.tensor(disp, dtype=torch.float64)))


def rot_from_axisangle(vec: Tensor) -> Tensor:
    """Rotation matrices [B,4,4] (homogeneous) from axis-angle vectors [B,3] (Rodrigues' formula).

    Also accepts Monodepth2's [B,1,3] shape.
    """
    vec = vec.reshape(-1, 3)
    angle = torch.linalg.norm(vec, dim=1, keepdim=True)  # [B,1]
    # The clamp keeps the axis finite for a zero rotation (the result is then the identity) without
    # biasing small angles the way Monodepth2's "+ 1e-7" does.
    axis = vec / angle.clamp(min=1e-12)
    ca, sa = torch.cos(angle), torch.sin(angle)
    c1 = 1.0 - ca
    x, y, z = axis[:, 0:1], axis[:, 1:2], axis[:, 2:3]
    xs, ys, zs = x * sa, y * sa, z * sa
    xc, yc, zc = x * c1, y * c1, z * c1
    r00 = x * xc + ca
    r01 = x * yc - zs
    r02 = x * zc + ys
    r10 = y * xc + zs
    r11 = y * yc + ca
    r12 = y * zc - xs
    r20 = z * xc - ys
    r21 = z * yc + xs
    r22 = z * zc + ca
    zero = torch.zeros_like(x)
    one = torch.ones_like(x)
    rows = [
        torch.cat([r00, r01, r02, zero], dim=1),
        torch.cat([r10, r11, r12, zero], dim=1),
        torch.cat([r20, r21, r22, zero], dim=1),
        torch.cat([zero, zero, zero, one], dim=1),
    ]
    return torch.stack(rows, dim=1)


def translation_matrix(translation: Tensor) -> Tensor:
    """Homogeneous [B,4,4] translation matrices from [B,3] (or [B,1,3]) vectors."""
    t = translation.reshape(-1, 3)
    T = torch.eye(4, dtype=t.dtype, device=t.device).repeat(t.shape[0], 1, 1)
    T[:, :3, 3] = t
    return T


def transformation_from_parameters(axisangle: Tensor, translation: Tensor, invert: bool = False) -> Tensor:
    """4x4 transform from the pose network's (axisangle, translation), Monodepth2's convention.

    Without ``invert`` the transform is ``p' = R p + t``; with ``invert`` it is the exact inverse,
    ``p' = R^T (p - t)``. The pose net's output for the pair (earlier, later) maps points from the
    earlier camera into the later one, so frame -1 (earlier than the target 0) needs ``invert=True``
    to map target points into it.
    """
    # Float32 even under mixed precision: an fp16 matmul would perturb the pose by ~1e-3.
    with torch.autocast(device_type=axisangle.device.type, enabled=False):
        if axisangle.dtype in (torch.float16, torch.bfloat16):
            axisangle, translation = axisangle.float(), translation.float()
        R = rot_from_axisangle(axisangle)
        t = translation.reshape(-1, 3)
        if invert:
            R = R.transpose(1, 2)
            t = -t
        T = translation_matrix(t)
        return torch.matmul(R, T) if invert else torch.matmul(T, R)


class BackprojectDepth(nn.Module):
    """Depth [B,1,H,W] + inv_K [B,4,4] -> homogeneous camera points [B,4,H*W].

    Works for any batch size (unlike Monodepth2's fixed-batch version); the pixel grid is a buffer.
    """

    def __init__(self, height: int, width: int) -> None:
        super().__init__()
        self.height, self.width = height, width
        v, u = torch.meshgrid(
            torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32), indexing="ij"
        )
        pix = torch.stack([u.reshape(-1), v.reshape(-1), torch.ones(height * width)], dim=0)  # [3,HW]
        self.register_buffer("pix_coords", pix, persistent=False)

    def forward(self, depth: Tensor, inv_K: Tensor) -> Tensor:
        batch = depth.shape[0]
        pix = self.pix_coords.to(inv_K.dtype).unsqueeze(0).expand(batch, -1, -1)
        rays = torch.matmul(inv_K[:, :3, :3], pix)
        points = rays * depth.reshape(batch, 1, -1)
        ones = torch.ones(batch, 1, points.shape[2], dtype=points.dtype, device=points.device)
        return torch.cat([points, ones], dim=1)


class Project3D(nn.Module):
    """Homogeneous points [B,4,H*W] -> sampling grid [B,H,W,2] in [-1,1] for ``grid_sample``.

    ``T`` ([B,4,4]) moves the points into the camera whose intrinsics ``K`` are given. The grid
    uses the align_corners=True normalisation (pixel 0 -> -1, pixel W-1 -> +1), so sample with
    ``F.grid_sample(..., align_corners=True)`` (``warp_image`` does).
    """

    def __init__(self, height: int, width: int, eps: float = 1e-7) -> None:
        super().__init__()
        self.height, self.width, self.eps = height, width, eps

    def pixel_coords(self, points: Tensor, K: Tensor, T: Tensor) -> Tensor:
        """Pixel coordinates (u, v) [B,H,W,2] of the points after transform and projection."""
        P = torch.matmul(K, T)[:, :3, :]
        cam = torch.matmul(P, points)  # [B,3,HW]
        # Clamp rather than Monodepth2's "+ eps": exact for points in front of the camera, and points
        # behind it land far outside the image instead of mirrored into it.
        uv = cam[:, :2, :] / cam[:, 2:3, :].clamp(min=self.eps)
        return uv.reshape(-1, 2, self.height, self.width).permute(0, 2, 3, 1)

    def forward(self, points: Tensor, K: Tensor, T: Tensor) -> Tensor:
        uv = self.pixel_coords(points, K, T)
        scale = torch.tensor([self.width - 1, self.height - 1], dtype=uv.dtype, device=uv.device)
        return (uv / scale - 0.5) * 2.0


def warp_image(
    source: Tensor,
    depth: Tensor,
    cam_T_cam: Tensor,
    K: Tensor,
    inv_K: Tensor,
    backproject: BackprojectDepth | None = None,
    project: Project3D | None = None,
) -> Tensor:
    """Synthesise the target view from ``source`` using the target's depth and ``cam_T_cam``.

    ``cam_T_cam`` maps target-camera points into the source camera. Border padding as in
    Monodepth2 (pixels that leave the image repeat the edge; auto-masking handles them).
    """
    height, width = depth.shape[-2:]
    backproject = backproject or BackprojectDepth(height, width).to(depth.device)
    project = project or Project3D(height, width).to(depth.device)
    grid = project(backproject(depth, inv_K), K, cam_T_cam)
    return F.grid_sample(source, grid, mode="bilinear", padding_mode="border", align_corners=True)
