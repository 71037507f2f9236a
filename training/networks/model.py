"""The training forward pass: depth net on frame 0, pose net on (earlier, later) pairs with frame 0.

Outputs use Monodepth2's keys: ``("disp", s)`` from the depth net, and per source frame f
``("axisangle", 0, f)``, ``("translation", 0, f)`` [B,3] and ``("cam_T_cam", 0, f)`` [B,4,4], which
the losses (``training.losses.SelfSupervisedLoss``) read. With a pose net that predicts
SfMLearner's explainability mask, ``("explainability", 0, f)`` [B,1,H,W] in (0, 1) as well. The
stereo partner (source ``"s"``) gets ``("cam_T_cam", 0, "s")`` from the batch's calibration
(``batch["stereo_T"]``), never from the pose net: its pose is known, and its baseline in metres is
what makes stereo-trained depth metric.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from training.geometry import transformation_from_parameters


def rescale_to_distance(translation: Tensor, distance: Tensor) -> Tensor:
    """``translation`` [B,3] rescaled to norm ``distance`` [B] where the distance is finite (else kept).

    The gradient still reaches the translation's direction.
    """
    dist = distance.to(translation.dtype).reshape(-1, 1)
    known = torch.isfinite(dist)
    norm = torch.linalg.norm(translation, dim=1, keepdim=True).clamp(min=1e-6)
    return torch.where(known, translation * (torch.nan_to_num(dist) / norm), translation)


def predict_poses(
    pose_net: nn.Module,
    batch: Mapping[Any, Tensor],
    frame_ids: Sequence[int],
    odometry_scale: bool = False,
) -> dict:
    """Run the pose net on (earlier, later) pairs with frame 0 and build Monodepth2's outputs.

    For f < 0 the pair is (f, 0) and the transform is inverted so that every
    ``("cam_T_cam", 0, f)`` maps frame-0 camera points into frame f's camera. Adds
    ``("axisangle", 0, f)``, ``("translation", 0, f)`` [B,3] (raw pose-net output for the pair) and
    ``("cam_T_cam", 0, f)`` [B,4,4]. Uses the augmented images ``("color_aug", f, 0)``.

    ``odometry_scale``: build ``cam_T_cam`` from the translation rescaled to ``batch[("distance", f)]``
    (metres travelled, from OXTS or odometry) where it is known. The photometric loss then sees
    the true motion's length from the first step, so depth is metric and consistent across drives
    of different speeds; the pose net only has to learn the direction and rotation. The raw
    translation stays in the outputs for the velocity loss.
    """
    outputs: dict = {}
    for f in frame_ids:
        if f == 0:
            continue
        pair = (f, 0) if f < 0 else (0, f)
        earlier, later = (batch[("color_aug", g, 0)] for g in pair)
        if getattr(pose_net, "explainability", None) is not None:
            axisangle, translation, logits = pose_net.forward_with_mask(earlier, later)
            # The mask weights the source frame's warped pixels, seen from frame 0: one mask per pair.
            outputs[("explainability", 0, f)] = torch.sigmoid(logits)
        else:
            axisangle, translation = pose_net(earlier, later)
        outputs[("axisangle", 0, f)] = axisangle
        outputs[("translation", 0, f)] = translation
        if odometry_scale and ("distance", f) in batch:
            translation = rescale_to_distance(translation.reshape(-1, 3), batch[("distance", f)])
        outputs[("cam_T_cam", 0, f)] = transformation_from_parameters(axisangle, translation, invert=f < 0)
    return outputs


class DepthPoseModel(nn.Module):
    """Depth net + pose net as one module, so DistributedDataParallel syncs both in one pass."""

    def __init__(
        self,
        depth_net: nn.Module,
        pose_net: nn.Module,
        frame_ids: Sequence[int],
        odometry_scale: bool = False,
    ) -> None:
        super().__init__()
        self.depth_net = depth_net
        self.pose_net = pose_net
        self.frame_ids = list(frame_ids)
        self.odometry_scale = odometry_scale  # see predict_poses

    def forward(self, batch: Mapping[Any, Tensor]) -> dict[Any, Tensor]:
        outputs = dict(self.depth_net(batch[("color_aug", 0, 0)]))
        if len(self.frame_ids) > 1:
            outputs.update(predict_poses(self.pose_net, batch, self.frame_ids, self.odometry_scale))
        if "stereo_T" in batch:
            outputs[("cam_T_cam", 0, "s")] = batch["stereo_T"]
        return outputs
