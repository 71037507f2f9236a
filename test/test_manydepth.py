"""The multi-frame model (training/networks/manydepth.py), its loss terms, training and two-frame export.

The cost volume against a literal per-hypothesis loop written as Manydepth's code does it (warp with
the training geometry's back-projection and projection, zero padding, its edge masks, "missing"
filled with the maximum, confidence from the filled volume, argmin with zeros set to 100), and
against poses whose answer is known; the hypothesis-range update, the consistency mask and the
matching augmentations on hand-made values; the bilinear lookup against ``grid_sample``; the cheap
design's parts (the prematching conv learns through the cost volume, the pose net sees half-size
frames, the config refuses bad values); the student's loss terms; a few real training steps on
the synthetic drive for ResNet18 and STDC1 (teacher freezing included); the export as a two-frame
ONNX model run by ONNX Runtime and by the runtime's DepthEstimator.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from depth_node.geometry import scale_intrinsics
from depth_node.runtime.estimator import DepthEstimator
from training.checkpoint import load_checkpoint
from training.config import load_config
from training.export import export_onnx, two_frame_net_from_checkpoint
from training.geometry import BackprojectDepth, Project3D, disp_to_depth, transformation_from_parameters
from training.losses import ManydepthLoss, SelfSupervisedLoss, student_mask
from training.networks import (
    ManyDepthModel,
    RefineNet,
    TwoFrameDepthNet,
    build_depth_net,
    build_multi_depth_net,
    build_pose_net,
    multi_frame_config,
)
from training.networks.manydepth import (
    bilinear_lookup,
    cost_volume,
    depth_bins,
    matching_augmentation,
    matching_mask,
    object_motion,
    pooled_cost_volume,
    relative_cost,
    reliable_pixels,
    update_depth_range,
)
from training.train import Trainer

DRIVE = "2011_09_26/2011_09_26_drive_0001_sync"
H, W = 64, 128


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _K(fx: float, fy: float, cx: float, cy: float, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    K = torch.eye(4)
    K[0, 0], K[1, 1], K[0, 2], K[1, 2] = fx, fy, cx, cy
    K = K.expand(batch, 4, 4).contiguous()
    return K, torch.linalg.inv(K)


# ------------------------------------------------------------------------------------ cost volume


def literal_cost_volume(current, lookup, T, K, inv_K, bins, empty):
    """Manydepth's ``match_features`` for one lookup frame, hypothesis by hypothesis."""
    b, _, h, w = current.shape
    backproject, project = BackprojectDepth(h, w), Project3D(h, w)
    volumes, masks, lowest = [], [], []
    for i in range(b):
        cost = torch.zeros(len(bins), h, w)
        if not empty[i]:
            for k, depth in enumerate(bins):
                points = backproject(torch.full((1, 1, h, w), float(depth)), inv_K[i : i + 1])
                grid = project(points, K[i : i + 1], T[i : i + 1])
                warped = F.grid_sample(lookup[i : i + 1], grid, padding_mode="zeros", align_corners=True)
                x = (grid[..., 0] / 2 + 0.5) * (w - 1)
                y = (grid[..., 1] / 2 + 0.5) * (h - 1)
                edge = ((x >= 2.0) & (x <= w - 2) & (y >= 2.0) & (y <= h - 2)).float()
                current_mask = torch.zeros_like(edge)
                current_mask[:, 2:-2, 2:-2] = 1.0
                cost[k] = ((warped - current[i : i + 1]).abs().mean(1) * edge * current_mask)[0]
        missing = (cost == 0).float()
        cost = cost * (1 - missing) + cost.max(0)[0].unsqueeze(0) * missing
        confidence = ((cost * (1 - missing) > 0).sum(0) == len(bins)).float()
        shown = cost.clone()
        shown[shown == 0] = 100
        lowest.append(bins[shown.argmin(0)])
        volumes.append(cost * confidence)
        masks.append(confidence)
    return torch.stack(volumes), torch.stack(masks)[:, None], torch.stack(lowest)[:, None]


def test_cost_volume_matches_a_literal_loop_over_hypotheses() -> None:
    gen = torch.Generator().manual_seed(0)
    b, c, h, w = 3, 5, 10, 14
    current = torch.rand(b, c, h, w, generator=gen)
    lookup = torch.rand(b, c, h, w, generator=gen)
    axisangle = 0.05 * torch.randn(b, 3, generator=gen)
    translation = torch.tensor([[0.3, 0.0, -1.0], [-0.5, 0.1, -0.6], [0.1, -0.1, 0.8]])
    T = transformation_from_parameters(axisangle, translation, invert=True)
    K, inv_K = _K(8.0, 9.0, 6.5, 4.5, b)
    bins = depth_bins(torch.tensor(1.0), torch.tensor(12.0), 6)
    empty = torch.tensor([False, True, False])

    volume = cost_volume(current, lookup, T, K, inv_K, bins, empty)
    cost, confidence, lowest = literal_cost_volume(current, lookup, T, K, inv_K, bins, empty)
    assert volume.cost.shape == (b, 6, h, w)
    torch.testing.assert_close(volume.cost, cost, atol=1e-5, rtol=1e-5)
    assert torch.equal(volume.confidence, confidence)
    confident = confidence.bool()
    assert 0 < int(confident.sum()) < confident.numel()  # some hypotheses leave the image, some do not
    assert torch.equal(volume.matching_depth, lowest)
    # The emptied sample: no cost, nothing confident, the argmin falls on the first hypothesis.
    assert not volume.cost[1].any() and not volume.confidence[1].any()
    assert torch.all(volume.matching_depth[1] == bins[0])


def test_identity_pose_costs_the_unwarped_difference_at_every_hypothesis() -> None:
    gen = torch.Generator().manual_seed(1)
    current, lookup = torch.rand(2, 2, 4, 9, 13, generator=gen)
    # Dyadic intrinsics: pixel 2 maps back onto exactly 2.0, where the border test is sharp.
    K, inv_K = _K(8.0, 8.0, 6.0, 4.0, 2)
    bins = depth_bins(torch.tensor(0.5), torch.tensor(30.0), 7, "inverse")
    volume = cost_volume(current, lookup, torch.eye(4).expand(2, 4, 4), K, inv_K, bins)
    interior = torch.zeros(1, 1, 9, 13)
    interior[..., 2:-2, 2:-2] = 1.0  # every hypothesis lands on the pixel itself
    assert torch.equal(volume.confidence, interior.expand(2, 1, 9, 13))
    expected = (lookup - current).abs().mean(1, keepdim=True) * interior
    torch.testing.assert_close(volume.cost, expected.expand(2, 7, 9, 13), atol=1e-5, rtol=0)


def test_pure_translation_moves_features_by_the_expected_disparity() -> None:
    """A sideways move tx shifts a point at depth d by fx * tx / d pixels: the previous frame's
    features are the current ones shifted by 2 pixels, which is the disparity of the 4 m hypothesis."""
    gen = torch.Generator().manual_seed(2)
    h, w, fx = 10, 20, 8.0
    current = torch.rand(1, 3, h, w, generator=gen)
    lookup = torch.roll(current, shifts=2, dims=-1)  # lookup[u + 2] = current[u]
    T = torch.eye(4)[None].clone()
    T[0, 0, 3] = 2.0 * 4.0 / fx
    K, inv_K = _K(fx, fx, 9.5, 4.5, 1)
    bins = torch.tensor([2.0, 4.0, 8.0, 16.0])
    volume = cost_volume(current, lookup, T, K, inv_K, bins)
    # Confident where every hypothesis (shift 4, 2, 1, 0.5 px) lands inside: u in [2, w - 6].
    expected = torch.zeros(1, 1, h, w)
    expected[..., 2 : h - 2, 2 : w - 5] = 1.0
    assert torch.equal(volume.confidence, expected)
    confident = expected.bool()[0, 0]
    assert float(volume.cost[0, 1][confident].abs().max()) < 1e-5
    for k in (0, 2, 3):
        assert float(volume.cost[0, k][confident].min()) > 1e-3, k
    assert torch.all(volume.matching_depth[0, 0][confident] == 4.0)


def test_image_matching_pools_full_size_costs_over_patches_of_the_matching_grid() -> None:
    """``matching_source: image``: the frames are matched at full size and each cost is averaged over
    the (2f)^2-pixel patch around every f-th pixel. Checked against a literal loop over the grid's
    pixels; on frames shifted by the 4 m hypothesis' disparity, every confident patch matches at 4 m."""
    gen = torch.Generator().manual_seed(6)
    h, w, fx, factor = 16, 24, 8.0, 2
    current = torch.rand(1, 3, h, w, generator=gen)
    lookup = torch.roll(current, shifts=2, dims=-1)
    T = torch.eye(4)[None].clone()
    T[0, 0, 3] = 2.0 * 4.0 / fx
    K, inv_K = _K(fx, fx, 11.5, 7.5, 1)
    bins = torch.tensor([2.0, 4.0, 8.0, 16.0])
    full = cost_volume(current, lookup, T, K, inv_K, bins)
    pooled = pooled_cost_volume(full, factor, bins)
    assert pooled.cost.shape == (1, 4, h // factor, w // factor)
    for i in range(h // factor):
        for j in range(w // factor):
            rows = slice(max(i * factor - 1, 0), min(i * factor + 3, h))
            cols = slice(max(j * factor - 1, 0), min(j * factor + 3, w))
            confident = bool(full.confidence[0, 0, rows, cols].all())
            assert bool(pooled.confidence[0, 0, i, j]) == confident, (i, j)
            expected = full.cost[0, :, rows, cols].mean(dim=(1, 2)) if confident else torch.zeros(4)
            torch.testing.assert_close(pooled.cost[0, :, i, j], expected, atol=1e-6, rtol=1e-6)
    confident = pooled.confidence[0, 0].bool()
    assert int(confident.sum()) > 10
    assert torch.all(pooled.matching_depth[0, 0][confident] == 4.0)


def test_object_motion_finds_a_moving_patch_and_the_cost_volume_matches_it_where_it_stood() -> None:
    """Manydepth2's step: the camera moves sideways, every pixel is 4 m away, and a patch has moved
    on by (2, 1) pixels of its own. The search around the static flow finds that motion on the patch
    and none elsewhere; compensated, the cost volume matches the patch at 4 m as it does the rest."""
    gen = torch.Generator().manual_seed(3)
    h, w, fx = 14, 24, 8.0
    current = torch.rand(1, 8, h, w, generator=gen)
    lookup = torch.roll(current, shifts=2, dims=-1)  # the static flow at 4 m: 2 px to the right
    rows, cols = slice(5, 9), slice(6, 11)
    lookup[..., 5:9, 8:13] = torch.rand(1, 8, 4, 5, generator=gen)  # where it stood: now background
    lookup[..., 6:10, 10:15] = current[..., rows, cols]  # the patch: 2 + 2 px right, 1 px down
    T = torch.eye(4)[None].clone()
    T[0, 0, 3] = 2.0 * 4.0 / fx
    K, inv_K = _K(fx, fx, 11.5, 6.5, 1)
    depth = torch.full((1, 1, h, w), 4.0)
    motion = object_motion(current, lookup, T, K, inv_K, depth, radius=3)
    assert motion.shape == (1, 2, h, w)
    patch = torch.zeros(h, w, dtype=torch.bool)
    patch[rows, cols] = True
    assert torch.all(motion[0, 0][patch] == 2) and torch.all(motion[0, 1][patch] == 1)
    # Static pixels whose match the patch did not cover, inside the searched map: no motion.
    untouched = torch.ones(h, w, dtype=torch.bool)
    untouched[5:10, 6:13] = False  # pixels whose match (2 px right) the patch's move changed
    untouched[patch] = False
    untouched[:2] = untouched[-2:] = False
    untouched[:, :2] = untouched[:, -5:] = False
    assert not motion[0][:, untouched].any()

    bins = torch.tensor([2.0, 4.0, 8.0])
    plain = cost_volume(current, lookup, T, K, inv_K, bins)
    compensated = cost_volume(current, lookup, T, K, inv_K, bins, motion=motion)
    assert float(plain.cost[0, 1][patch].min()) > 1e-3  # the patch breaks the static matching at 4 m
    assert torch.all(compensated.matching_depth[0, 0][patch] == 4.0)
    assert float(compensated.cost[0, 1][patch].abs().max()) < 1e-5


def test_object_motion_resolves_equal_matches_the_same_way_whatever_the_rounding() -> None:
    """Features that vary only across the image (a ramp: every vertical offset matches exactly as
    well) and no motion: the search keeps the zero offset, also when float noise of the size that
    separates ONNX Runtime from PyTorch (1e-7) is added, which a plain argmin would follow."""
    h, w = 10, 16
    ramp = torch.linspace(0, 1, w).view(1, 1, 1, w).expand(1, 4, h, w).contiguous()
    K, inv_K = _K(8.0, 8.0, 7.5, 4.5, 1)
    still, depth = torch.eye(4)[None], torch.full((1, 1, h, w), 5.0)
    gen = torch.Generator().manual_seed(4)
    for lookup in (ramp, ramp + 1e-7 * torch.randn(ramp.shape, generator=gen)):
        motion = object_motion(ramp, lookup, still, K, inv_K, depth, radius=2)
        assert not motion[..., 2:-2, 2:-2].any()  # where the zero offset lies inside the map


def test_bilinear_lookup_is_grid_sample_wherever_all_four_neighbours_are_inside() -> None:
    gen = torch.Generator().manual_seed(5)
    b, c, h, w, d = 2, 3, 7, 11, 4
    features = torch.rand(b, c, h, w, generator=gen)
    x = torch.rand(b, d, 20, generator=gen) * (w + 4) - 2  # some samples outside the map
    y = torch.rand(b, d, 20, generator=gen) * (h + 4) - 2
    x[0, 0, :3], y[0, 0, :3] = (
        torch.tensor([0.0, w - 1.0, 3.0]),
        torch.tensor([0.0, h - 1.0, 2.0]),
    )  # on pixels
    got = bilinear_lookup(features, x, y)
    assert got.shape == (b, d, 20, c) and torch.isfinite(got).all()
    grid = torch.stack([x / (w - 1), y / (h - 1)], -1) * 2 - 1  # [B,D,20,2]
    reference = F.grid_sample(features, grid, padding_mode="zeros", align_corners=True).permute(0, 2, 3, 1)
    inside = (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)
    assert int(inside.sum()) > 20 and int((~inside).sum()) > 20
    torch.testing.assert_close(got[inside], reference[inside], atol=1e-6, rtol=1e-6)
    # The channels-first layout holds the same samples.
    torch.testing.assert_close(bilinear_lookup(features, x, y, channels_first=True).permute(0, 2, 3, 1), got)


def test_the_prematching_conv_learns_through_the_cost_volume_and_the_pose_net_sees_half_size_frames() -> None:
    cfg = multi_frame_config({"backbone": "stdc1", "multi_frame": True, "num_depth_bins": 4})
    assert (cfg["matching_channels"], cfg["pose_downsample"], cfg["num_depth_bins"]) == (16, 2, 4)
    net, pose_net = build_multi_depth_net(cfg), build_pose_net(cfg)
    assert net.prematching_conv[0].out_channels == 16 and net.reduce_conv[0].in_channels == 64 + 4
    batch = _batch(height=64, width=96)
    K, inv_K = batch["K"], batch["inv_K"]
    T = torch.eye(4).expand(2, 4, 4).clone()
    T[:, 0, 3] = 0.2  # a sideways move: the hypotheses land on different pixels
    net.min_depth_bin.fill_(2.0)  # at most 1.4 feature pixels apart: some pixels keep every hypothesis
    out = net(batch[("color", 0, 0)], batch[("color", -1, 0)], T, K, inv_K)
    assert float(out["cost_confidence"].sum()) > 0
    out[("disp", 0)].mean().backward()
    assert float(net.prematching_conv[0].weight.grad.abs().sum()) > 0

    seen: list[tuple[int, ...]] = []
    pose_net.encoder.register_forward_pre_hook(lambda _module, args: seen.append(tuple(args[0].shape)))
    with torch.no_grad():
        TwoFrameDepthNet(net, pose_net, 64, 96).eval()(batch[("color", 0, 0)], batch[("color", -1, 0)])
        model = ManyDepthModel(build_depth_net(cfg), pose_net, net, [0, -1, 1]).eval()
        model(batch)
    assert seen == [(2, 6, 32, 48)] * 3  # the export's pair, then training's (-1, 0) and (0, 1)


@pytest.mark.parametrize("level", [1, 0])
@pytest.mark.parametrize("backbone", ["resnet18", "stdc1"])
def test_a_student_started_from_single_frame_weights_predicts_what_its_teacher_does(
    backbone: str, level: int
) -> None:
    cfg = multi_frame_config(
        {"backbone": backbone, "multi_frame": True, "num_depth_bins": 4, "matching_level": level}
    )
    teacher, student = build_depth_net(cfg).eval(), build_multi_depth_net(cfg).eval()
    with torch.no_grad():  # a teacher that is not at its initial weights
        for p in teacher.parameters():
            p.add_(0.01 * torch.randn_like(p))
    student.start_from_single_frame(teacher.state_dict())
    batch = _batch(height=64, width=96)
    T = torch.eye(4).expand(2, 4, 4).clone()
    T[:, 0, 3] = 0.2
    student.min_depth_bin.fill_(2.0)
    with torch.no_grad():
        out = student(batch[("color", 0, 0)], batch[("color", -1, 0)], T, batch["K"], batch["inv_K"])
        expected = teacher(batch[("color", 0, 0)])
    assert float(out["cost_confidence"].sum()) > 0  # a real cost volume went in, and changed nothing
    for scale in range(4):
        torch.testing.assert_close(out[("disp", scale)], expected[("disp", scale)], atol=1e-5, rtol=1e-5)
    # The cost volume's weights start at zero yet learn.
    student.train()
    out = student(batch[("color", 0, 0)], batch[("color", -1, 0)], T, batch["K"], batch["inv_K"])
    out[("disp", 0)].mean().backward()
    assert float(student.reduce_conv[0].weight.grad[:, -4:].abs().sum()) > 0

    other = build_depth_net({"backbone": "stdc1" if backbone == "resnet18" else "resnet18"})
    with pytest.raises(ValueError, match="do not fit this multi-frame net"):
        student.start_from_single_frame(other.state_dict())


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("matching_channels", 0, "matching_channels=0"),
        ("pose_downsample", 0, "pose_downsample=0"),
        ("num_depth_bins", 1, "num_depth_bins=1"),
        ("matching_level", 2, "matching_level=2"),
        ("cost_scale", "softmax", "cost_scale='softmax'"),
        ("motion_search_radius", 0, "motion_search_radius=0"),
        ("motion_threshold", 5.0, "motion_threshold=5.0"),
        ("matching_source", "pixels", "matching_source='pixels'"),
        ("student", "teacher", "student='teacher'"),
    ],
)
def test_multi_frame_config_names_a_bad_value(key: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        multi_frame_config({"backbone": "resnet18", key: value})
    with pytest.raises(ValueError, match="explainability"):
        multi_frame_config({"backbone": "resnet18", "explainability": True})
    with pytest.raises(ValueError, match="matching_source=image with model"):
        multi_frame_config({"backbone": "resnet18", "matching_source": "image", "motion_aware": True})
    with pytest.raises(ValueError, match=r"student=refine with model\.motion_aware"):
        multi_frame_config({"backbone": "resnet18", "student": "refine", "motion_aware": True})


def test_a_refining_student_starts_as_its_teacher_and_learns_its_correction() -> None:
    """``student: refine``: the teacher's disparity at every scale, exactly, until the head learns;
    the head and the prematching conv both get gradients from the student's disparity."""
    cfg = multi_frame_config(
        {"backbone": "resnet18", "multi_frame": True, "num_depth_bins": 4, "student": "refine"}
    )
    teacher, student = build_depth_net(cfg).eval(), build_multi_depth_net(cfg).eval()
    assert isinstance(student, RefineNet) and student.needs_reference
    batch = _batch(height=64, width=96)
    T = torch.eye(4).expand(2, 4, 4).clone()
    T[:, 0, 3] = 0.2
    student.min_depth_bin.fill_(2.0)
    image, lookup = batch[("color", 0, 0)], batch[("color", -1, 0)]
    with torch.no_grad():
        disps = {key[1]: value for key, value in teacher(image).items() if key[0] == "disp"}
        out = student(image, lookup, T, batch["K"], batch["inv_K"], reference_disps=disps)
        depth = student.predict_depth(
            image, lookup, T, batch["K"], batch["inv_K"], teacher.predict_depth(image)
        )
    assert float(out["cost_confidence"].sum()) > 0
    for scale in range(4):
        torch.testing.assert_close(out[("disp", scale)], disps[scale], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(depth, teacher.predict_depth(image), atol=1e-4, rtol=1e-4)

    student.train()
    with torch.no_grad():  # a head that has learnt something, so gradients reach its first layers
        student.head[-1].weight.normal_(0, 0.01)
    out = student(image, lookup, T, batch["K"], batch["inv_K"], reference_disps=disps)
    out[("disp", 0)].mean().backward()
    assert float(student.head[0].weight.grad[:, -5:-1].abs().sum()) > 0  # the cost volume's inputs
    assert float(student.prematching_conv[0].weight.grad.abs().sum()) > 0  # learns through the matching
    with pytest.raises(ValueError, match="needs its teacher's disparities"):
        student(image, lookup, T, batch["K"], batch["inv_K"])


def test_relative_cost_divides_each_pixel_by_its_mean_over_the_hypotheses() -> None:
    cost = torch.zeros(1, 3, 1, 2)
    cost[0, :, 0, 0] = torch.tensor([1.0, 2.0, 3.0])  # the second pixel: emptied, all zero
    torch.testing.assert_close(relative_cost(cost)[0, :, 0, 0], torch.tensor([0.5, 1.0, 1.5]))
    assert float(relative_cost(cost)[0, :, 0, 1].abs().sum()) == 0.0
    torch.testing.assert_close(relative_cost(10 * cost), relative_cost(cost))  # the scale is gone


# ------------------------------------------------------------------ hypotheses, masks, augmentations


def test_depth_bins_and_the_running_range_update() -> None:
    low, high = torch.tensor(0.5), torch.tensor(20.0)
    linear = depth_bins(low, high, 5, "linear")
    torch.testing.assert_close(linear, torch.tensor([0.5, 5.375, 10.25, 15.125, 20.0]))
    inverse = depth_bins(low, high, 5, "inverse")
    assert float(inverse[0]) == pytest.approx(0.5) and float(inverse[-1]) == pytest.approx(20.0)
    torch.testing.assert_close((1 / inverse).diff(), torch.full((4,), (1 / 20.0 - 1 / 0.5) / 4))

    # Image 1 spans 2..20 m, image 2 4..40 m: mean min 3, max 30, widened to 2.7 and 33.
    depth = torch.full((2, 1, 4, 6), 10.0)
    depth[0, 0, 0, 0], depth[0, 0, 1, 1], depth[1, 0, 2, 2], depth[1, 0, 3, 3] = 2.0, 20.0, 4.0, 40.0
    new_min, new_max = update_depth_range(torch.tensor(0.1), torch.tensor(10.0), depth, floor=0.1)
    assert float(new_min) == pytest.approx(0.99 * 0.1 + 0.01 * 2.7)
    assert float(new_max) == pytest.approx(0.99 * 10.0 + 0.01 * 33.0)
    # The widened minimum never goes below the model's min_depth.
    new_min, _ = update_depth_range(torch.tensor(0.1), torch.tensor(10.0), depth * 0.01, floor=0.1)
    assert float(new_min) == pytest.approx(0.1)

    net = build_multi_depth_net({"backbone": "resnet18", "num_depth_bins": 4})
    net.update_depth_bins(depth)
    assert float(net.min_depth_bin) == pytest.approx(0.126) and float(net.max_depth_bin) == pytest.approx(
        10.23
    )
    assert {"min_depth_bin", "max_depth_bin", "intrinsics"} <= set(net.state_dict())


def test_consistency_mask_on_hand_made_depths() -> None:
    teacher = torch.full((1, 1, 1, 6), 10.0)
    matching = torch.tensor([5.1, 4.9, 10.0, 19.9, 20.1, 100.0]).view(1, 1, 1, 6)
    # Trusted within a factor 2 of the teacher's depth, either way.
    assert matching_mask(matching, teacher).flatten().tolist() == [1.0, 0.0, 1.0, 1.0, 0.0, 0.0]

    # The cost volume at half the resolution: upsampled nearest; unconfident or augmented -> 0.
    confidence = torch.tensor([[1.0, 1.0], [0.0, 1.0]]).view(1, 1, 2, 2).repeat(2, 1, 1, 1)
    matching = torch.tensor([[10.0, 30.0], [10.0, 12.0]]).view(1, 1, 2, 2).repeat(2, 1, 1, 1)
    keep = reliable_pixels(confidence, matching, torch.full((2, 1, 4, 4), 10.0), torch.tensor([False, True]))
    expected = torch.tensor([[1.0, 1.0, 0.0, 0.0]] * 2 + [[0.0, 0.0, 1.0, 1.0]] * 2)
    assert torch.equal(keep[0, 0], expected)
    assert not keep[1].any()


def _model(static: float, empty: float) -> ManyDepthModel:
    cfg = {"backbone": "stdc1", "num_depth_bins": 4}
    return ManyDepthModel(
        build_depth_net(cfg),
        build_pose_net(cfg),
        build_multi_depth_net(cfg),
        [0, -1, 1],
        False,
        static,
        empty,
    )


def _batch(batch: int = 2, height: int = 64, width: int = 96) -> dict:
    gen = torch.Generator().manual_seed(3)
    K, inv_K = _K(0.58 * width, 1.92 * height, width / 2, height / 2, batch)
    out: dict = {"K": K, "inv_K": inv_K}
    for f in (0, -1, 1):
        out[("color", f, 0)] = torch.rand(batch, 3, height, width, generator=gen)
        out[("color_aug", f, 0)] = (out[("color", f, 0)] * 0.9).clamp(0, 1)
    return out


def test_matching_augmentations_with_probability_one_and_zero() -> None:
    static, empty = matching_augmentation(5, 1.0, 0.0)
    assert static.all() and not empty.any()
    static, empty = matching_augmentation(5, 0.0, 1.0)
    assert not static.any() and empty.all()
    static, empty = matching_augmentation(5, 0.0, 0.0)
    assert not static.any() and not empty.any()

    batch = _batch()
    poses = {
        ("axisangle", 0, -1): torch.zeros(2, 3),
        ("translation", 0, -1): torch.tensor([[0.0, 0, -1]] * 2),
    }
    model = _model(1.0, 0.0).train()
    lookup, pose, empty, augmented = model.matching_inputs(batch, poses)
    # Static camera: the current frame (without colour augmentation) looked up, the motion kept.
    assert torch.equal(lookup, batch[("color", 0, 0)]) and not empty.any() and augmented.all()
    assert float(pose[0, 2, 3]) == pytest.approx(1.0)  # the inverse of 1 m forward
    model = _model(0.0, 1.0).train()
    lookup, _, empty, augmented = model.matching_inputs(batch, poses)
    assert torch.equal(lookup, batch[("color_aug", -1, 0)]) and empty.all() and augmented.all()
    outputs = model(batch)
    assert not outputs["cost_confidence"].any()  # emptied volumes
    assert not outputs["reprojection_mask"].any()  # augmented samples go to the consistency loss
    assert outputs["matching_augmented"].all()  # and every student_mask leaves them to it
    model = _model(0.0, 0.0).train()
    lookup, _, empty, augmented = model.matching_inputs(batch, poses)
    assert torch.equal(lookup, batch[("color_aug", -1, 0)]) and not empty.any() and not augmented.any()
    # Evaluation never augments.
    lookup, _, empty, augmented = _model(1.0, 0.0).eval().matching_inputs(batch, poses)
    assert torch.equal(lookup, batch[("color_aug", -1, 0)]) and empty is None and not augmented.any()


def test_student_loss_is_the_masked_reprojection_plus_consistency_and_the_teacher_adds_its_own() -> None:
    batch = _batch()
    gen = torch.Generator().manual_seed(4)
    disp, teacher_disp = torch.rand(2, 2, 1, 64, 96, generator=gen) * 0.5 + 0.1
    # No tie-break noise: the teacher's loss (auto-masking) is computed twice below.
    criterion = SelfSupervisedLoss({"smoothness_weight": 0.0, "automask_noise": 0.0}, 64, 96)
    pose = {("cam_T_cam", 0, f): torch.eye(4).expand(2, 4, 4) for f in (-1, 1)}
    student = {("disp", 0): disp, **pose, ("consistency_disp", 0): teacher_disp}
    depth, target = (disp_to_depth(d, 0.1, 100.0)[1] for d in (disp, teacher_disp))

    # Nothing trusted: no photometric term, the teacher's depth everywhere.
    loss, diagnostics = criterion(batch, {**student, "reprojection_mask": torch.zeros(2, 1, 64, 96)})
    consistency = float((depth - target).abs().mean())
    assert diagnostics.stats["photometric"] == 0.0 and float(loss) == pytest.approx(consistency, rel=1e-5)
    # consistency: log, the same in log depth: a relative error, far pixels weigh as much as near ones.
    log_criterion = SelfSupervisedLoss(
        {"smoothness_weight": 0.0, "automask_noise": 0.0, "consistency": "log"}, 64, 96
    )
    loss, _ = log_criterion(batch, {**student, "reprojection_mask": torch.zeros(2, 1, 64, 96)})
    assert float(loss) == pytest.approx(float((depth.log() - target.log()).abs().mean()), rel=1e-5)
    # consistency: none, the ablation: nothing trusted leaves the student without a loss.
    no_criterion = SelfSupervisedLoss(
        {"smoothness_weight": 0.0, "automask_noise": 0.0, "consistency": "none"}, 64, 96
    )
    loss, diagnostics = no_criterion(batch, {**student, "reprojection_mask": torch.zeros(2, 1, 64, 96)})
    assert float(loss) == 0.0 and "consistency" not in diagnostics.stats
    # Everything trusted: the mean minimum reprojection error, no auto-masking, no consistency.
    loss, diagnostics = criterion(batch, {**student, "reprojection_mask": torch.ones(2, 1, 64, 96)})
    errors = [criterion.photometric(batch[("color", f, 0)], batch[("color", 0, 0)]) for f in (-1, 1)]
    assert float(loss) == pytest.approx(float(torch.minimum(*errors).mean()), rel=1e-5)
    assert diagnostics.stats["consistency"] == 0.0

    # ManydepthLoss: the student's loss, plus the teacher's own on its ("teacher", ...) outputs.
    mask = {"reprojection_mask": torch.zeros(2, 1, 64, 96)}
    teacher = {("teacher", "disp", 0): teacher_disp, **{("teacher", *k): v for k, v in pose.items()}}
    total, diagnostics = ManydepthLoss(criterion)(batch, {**student, **mask, **teacher})
    teacher_loss, _ = criterion(batch, {("disp", 0): teacher_disp, **pose})
    assert float(total) == pytest.approx(consistency + float(teacher_loss), rel=1e-5)
    assert diagnostics.stats["loss"] == pytest.approx(float(total), rel=1e-5)
    assert "teacher_photometric" in diagnostics.stats


def test_student_mask_all_and_automask_train_every_unaugmented_pixel_or_the_auto_masked_ones() -> None:
    reliable = torch.tensor([[[[1.0, 0.0, 0.0]]], [[[0.0, 0.0, 0.0]]]])  # [2,1,1,3]; sample 1 augmented
    augmented = torch.tensor([False, True])
    reprojection = torch.tensor([[[[0.1, 0.5, 0.2]], [[0.3, 0.4, 0.9]]]] * 2)  # [2,2,1,3], 2 sources
    identity = torch.tensor([[[[0.2, 0.3, 0.1]], [[0.5, 0.1, 0.8]]]] * 2)
    # matching (Manydepth): the reliable pixels as they are.
    assert torch.equal(student_mask("matching", reliable, None, reprojection, identity), reliable)
    # all (Manydepth's --disable_motion_masking): every pixel of the unaugmented sample.
    expected_all = torch.tensor([[[[1.0, 1.0, 1.0]]], [[[0.0, 0.0, 0.0]]]])
    assert torch.equal(student_mask("all", reliable, augmented, reprojection, identity), expected_all)
    # automask: of those, where the best warped error (0.1, 0.4, 0.2) beats the best unwarped (0.2, 0.1, 0.1).
    expected_auto = torch.tensor([[[[1.0, 0.0, 0.0]]], [[[0.0, 0.0, 0.0]]]])
    assert torch.equal(student_mask("automask", reliable, augmented, reprojection, identity), expected_auto)
    assert torch.equal(student_mask("automask", reliable, augmented, reprojection, None), expected_all)
    with pytest.raises(KeyError, match="matching_augmented"):
        student_mask("all", reliable, None, reprojection, identity)

    # Through the loss: with student_mask all, the first sample's photometric error over every pixel,
    # the second (augmented) sample's consistency term; Manydepth's mask (all zeros here) is ignored.
    batch = _batch()
    gen = torch.Generator().manual_seed(5)
    disp, teacher_disp = torch.rand(2, 2, 1, 64, 96, generator=gen) * 0.5 + 0.1
    pose = {("cam_T_cam", 0, f): torch.eye(4).expand(2, 4, 4) for f in (-1, 1)}
    outputs = {
        ("disp", 0): disp,
        **pose,
        ("consistency_disp", 0): teacher_disp,
        "reprojection_mask": torch.zeros(2, 1, 64, 96),
        "matching_augmented": augmented,
    }
    criterion = SelfSupervisedLoss({"smoothness_weight": 0.0, "student_mask": "all"}, 64, 96)
    loss, diagnostics = criterion(batch, outputs)
    errors = [criterion.photometric(batch[("color", f, 0)], batch[("color", 0, 0)]) for f in (-1, 1)]
    photometric = float(torch.minimum(*errors)[0].mean())
    depth, target = (disp_to_depth(d, 0.1, 100.0)[1] for d in (disp, teacher_disp))
    consistency = float((depth[1] - target[1]).abs().mean()) / 2  # mean over both samples' pixels
    assert float(loss) == pytest.approx(photometric + consistency, rel=1e-5)
    assert diagnostics.stats["mask_fraction"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="student_mask"):
        SelfSupervisedLoss({"student_mask": "everything"}, 64, 96)


# ------------------------------------------------------------------------- training and export


def _overrides(root: Path, out_dir: Path, backbone: str, steps: int, *extra: str) -> list[str]:
    return [
        f"data.root={root}",
        f"data.drives=[{DRIVE}]",
        f"data.height={H}",
        f"data.width={W}",
        "data.num_workers=0",
        "train.batch_size=2",
        f"train.max_steps={steps}",
        f"train.out_dir={out_dir}",
        "train.threads=1",
        "train.progress=false",
        "train.tensorboard=false",
        "model.multi_frame=true",
        f"model.backbone={backbone}",
        "model.num_depth_bins=8",
        *extra,
    ]


def _state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items()}


def _changed(before: dict[str, torch.Tensor], module: torch.nn.Module) -> bool:
    return any(not torch.equal(before[k], v) for k, v in module.state_dict().items())


def test_teacher_and_pose_freeze_while_the_student_trains(kitti_root: Path, tmp_path: Path) -> None:
    trainer = Trainer(
        load_config(None, _overrides(kitti_root, tmp_path, "resnet18", 3, "model.freeze_teacher_step=1"))
    )
    model = trainer.model
    assert isinstance(model, ManyDepthModel)
    # The training camera, normalised by image size, is what the export will bake in.
    K, size = trainer.train_set.intrinsics(0)
    normalised = scale_intrinsics(K, size, (1, 1))
    expected = [normalised[0, 0], normalised[1, 1], normalised[0, 2], normalised[1, 2]]
    torch.testing.assert_close(model.multi_depth_net.intrinsics, torch.tensor(expected, dtype=torch.float32))

    batch = next(iter(trainer.loader(trainer.train_set, 0)))
    teacher, pose, student = (_state(m) for m in (model.depth_net, model.pose_net, model.multi_depth_net))
    loss, diagnostics, _ = trainer.train_step(batch)
    assert math.isfinite(loss) and "teacher_loss" in diagnostics.stats and "consistency" in diagnostics.stats
    assert _changed(teacher, model.depth_net) and _changed(pose, model.pose_net)
    assert float(model.multi_depth_net.min_depth_bin) != pytest.approx(0.1)  # the range follows the teacher

    trainer.global_step = 1  # model.freeze_teacher_step
    teacher, pose, student = (_state(m) for m in (model.depth_net, model.pose_net, model.multi_depth_net))
    loss, diagnostics, _ = trainer.train_step(batch)
    assert model.teacher_frozen and not model.depth_net.training and model.multi_depth_net.training
    assert math.isfinite(loss) and "teacher_loss" not in diagnostics.stats
    # Weights, BatchNorm statistics and the hypothesis range stay; the student learns on.
    assert not _changed(teacher, model.depth_net) and not _changed(pose, model.pose_net)
    assert torch.equal(student["min_depth_bin"], model.multi_depth_net.min_depth_bin)
    assert _changed(student, model.multi_depth_net)
    model.train()  # the trainer's call after validation must not wake the frozen networks
    assert not model.depth_net.training and not model.pose_net.training


@pytest.fixture(scope="module")
def trained(kitti_root: Path, module_tmp: Path) -> dict[str, Path]:
    """A few real training steps per backbone (STDC1's cost volume at level 0, inverse bins, relative
    costs, motion-aware), ResNet18 matching the frames themselves, and a ResNet18 refining student at
    level 0; the last checkpoint of each."""
    runs = {}
    level_0 = [
        "model.matching_level=0",
        "model.depth_binning=inverse",
        "model.cost_scale=relative",
        "model.motion_aware=true",
    ]
    for name, backbone, extra in (
        ("resnet18", "resnet18", []),
        ("stdc1", "stdc1", level_0),
        ("resnet18_image", "resnet18", ["model.matching_source=image"]),
        ("resnet18_refine", "resnet18", ["model.student=refine", "model.matching_level=0"]),
    ):
        out_dir = module_tmp / name
        summary = Trainer(load_config(None, _overrides(kitti_root, out_dir, backbone, 2, *extra))).run()
        assert summary.steps == 2 and all(math.isfinite(v) for v in summary.losses), summary
        runs[name] = Path(summary.checkpoint)
    return runs


@pytest.mark.parametrize("backbone", ["resnet18", "stdc1"])
def test_a_few_training_steps_checkpoint_the_student_teacher_and_range(
    trained: dict[str, Path], backbone: str
) -> None:
    ckpt = load_checkpoint(trained[backbone])
    assert {"depth_net", "pose_net", "multi_depth_net"} <= set(ckpt)
    model = ckpt["config"]["model"]
    assert model["multi_frame"] and model["num_depth_bins"] == 8 and model["static_camera_prob"] == 0.1
    student = ckpt["multi_depth_net"]
    # The matched level's channels (ResNet18's 1/4 level: 64; STDC1's 1/2 level: 32) + hypotheses.
    channels, level = {"resnet18": (64, 1), "stdc1": (32, 0)}[backbone]
    assert (
        model["matching_level"] == level
        and model["cost_scale"] == {"resnet18": "raw", "stdc1": "relative"}[backbone]
    )
    assert student["reduce_conv.0.weight"].shape[1] == channels + 8
    assert student["prematching_conv.0.weight"].shape[:2] == (16, channels)  # matching on 16 channels
    assert model["matching_channels"] == 16 and model["pose_downsample"] == 2
    low, high = float(student["min_depth_bin"]), float(student["max_depth_bin"])
    assert 0.1 < low < high and high != 10.0  # moved from the initial [0.1, 10] with the teacher
    lines = (trained[backbone].parent.parent / "loss_log.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [1, 2]
    assert all("consistency" in json.loads(line) for line in lines)
    # The teacher's velocity term made the pose net, and so the student, metric.
    assert all("teacher_velocity" in json.loads(line) for line in lines)
    assert ckpt["training_mode"] == "self_supervised+velocity"


def test_init_from_a_single_frame_checkpoint_starts_the_student_as_its_teacher(
    trained: dict[str, Path], kitti_root: Path, tmp_path: Path
) -> None:
    """``depth-train model.multi_frame=true train.init_from=<single-frame .pt>``: the first step's
    consistency term is zero, since student and teacher predict the same depth."""
    ckpt = load_checkpoint(trained["resnet18"])
    single = {k: v for k, v in ckpt.items() if k in ("config", "depth_net", "pose_net", "epoch", "step")}
    single["config"] = {**ckpt["config"], "model": {**ckpt["config"]["model"], "multi_frame": False}}
    path = tmp_path / "single.pt"
    torch.save(single, path)
    overrides = _overrides(kitti_root, tmp_path / "run", "resnet18", 1, f"train.init_from={path}")
    trainer = Trainer(load_config(None, overrides))
    student = trainer.model.multi_depth_net
    for name, value in ckpt["depth_net"].items():
        torch.testing.assert_close(student.state_dict()[name], value)
    loss, diagnostics, _ = trainer.train_step(next(iter(trainer.loader(trainer.train_set, 0))))
    assert math.isfinite(loss) and diagnostics.stats["consistency"] == pytest.approx(0.0, abs=1e-6)


def test_resuming_makes_the_step_an_uninterrupted_run_makes(
    trained: dict[str, Path], kitti_root: Path, tmp_path: Path
) -> None:
    """The student, the hypothesis range and the augmentation draws (torch's RNG) all resume."""
    import shutil

    from training.train import build_parser, config_for

    reference_dir, resumed_dir = tmp_path / "reference", tmp_path / "resumed"
    Trainer(load_config(None, _overrides(kitti_root, reference_dir, "resnet18", 3))).run()
    shutil.copytree(trained["resnet18"].parents[1], resumed_dir)  # the 2-step run, left as it is
    checkpoint = resumed_dir / "checkpoints" / "last.pt"
    args = build_parser().parse_args(
        ["--resume", str(checkpoint), "train.max_steps=3", f"train.out_dir={resumed_dir}"]
    )
    Trainer(config_for(args), resume=args.resume).run()
    resumed, reference = (
        [json.loads(line) for line in (d / "loss_log.jsonl").read_text().splitlines()]
        for d in (resumed_dir, reference_dir)
    )
    assert [r["step"] for r in resumed] == [1, 2, 3]
    assert resumed[2]["loss"] == pytest.approx(reference[2]["loss"], rel=1e-6)
    final = [
        load_checkpoint(d / "checkpoints" / "last.pt")["multi_depth_net"]
        for d in (resumed_dir, reference_dir)
    ]
    assert torch.equal(final[0]["max_depth_bin"], final[1]["max_depth_bin"])


def _frame_pair(kitti_root: Path, out_dir: Path, backbone: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(frame, previous frame) [1,3,H,W] of the test drive at the model's size, as training loads them."""
    from training.datasets import build_dataset

    sample = build_dataset(load_config(None, _overrides(kitti_root, out_dir, backbone, 1)), "train")[3]
    image, prev = (sample[("color", f, 0)][None] for f in (0, -1))
    return image, prev


def test_two_frame_export_runs_in_onnx_runtime_and_the_depth_estimator(
    trained: dict[str, Path], tmp_path: Path, kitti_root: Path
) -> None:
    import onnxruntime as ort

    checkpoint = trained["resnet18"]
    out = export_onnx(checkpoint, tmp_path / "two.onnx", latency_runs=1, verbose=False)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    inputs = [(i.name, i.type, i.shape) for i in session.get_inputs()]
    assert inputs == [("image", "tensor(float)", [1, 3, H, W]), ("prev_image", "tensor(float)", [1, 3, H, W])]
    assert [o.name for o in session.get_outputs()] == ["depth"]
    meta = session.get_modelmeta().custom_metadata_map
    ckpt = load_checkpoint(checkpoint)
    assert meta["frames"] == "2" and meta["backbone"] == "resnet18"
    assert "motion_aware" not in meta  # Manydepth's cost volume, no teacher in the graph
    np.testing.assert_allclose(
        json.loads(meta["cost_volume_intrinsics"]), ckpt["multi_depth_net"]["intrinsics"]
    )
    bins = json.loads(meta["depth_bins"])
    assert bins["count"] == 8 and bins["min"] == pytest.approx(
        float(ckpt["multi_depth_net"]["min_depth_bin"])
    )
    # The model card lists both inputs and the cost volume's camera and hypotheses.
    card = out.with_suffix(".md").read_text()
    assert f"| inputs | `image` float32 [1,3,{H},{W}]" in card and "`prev_image` the same" in card
    fx = float(ckpt["multi_depth_net"]["intrinsics"][0])
    assert f"| cost volume intrinsics | fx/W {fx:.4f}," in card
    assert f"| depth hypotheses | 8 (linear) from {bins['min']:.3g} to {bins['max']:.3g} model units" in card

    # Two consecutive frames of the drive, at the model's size: ONNX Runtime vs PyTorch.
    image, prev = _frame_pair(kitti_root, tmp_path, "resnet18")
    net = two_frame_net_from_checkpoint(ckpt)
    with torch.no_grad():
        reference = net(image, prev).numpy()
    got = session.run(["depth"], {"image": image.numpy(), "prev_image": prev.numpy()})[0]
    assert float(np.max(np.abs(got - reference) / reference)) < 1e-4

    # The runtime runs it unchanged, as a two-frame model.
    estimator = DepthEstimator(out, providers=("cpu",), threads=1)
    assert estimator.info.frames == 2
    depth = estimator.infer(image.numpy(), prev.numpy())
    np.testing.assert_allclose(depth, reference, rtol=1e-4)
    first = estimator.infer(image.numpy(), image.numpy())  # the first frame: fed twice
    assert np.isfinite(first).all() and float(first.min()) > 0

    with pytest.raises(ValueError, match="model exports in fp32 only"):
        export_onnx(checkpoint, tmp_path / "half.onnx", fp16=True, verbose=False)


def test_a_level_0_student_exports_and_matches_pytorch(
    trained: dict[str, Path], tmp_path: Path, kitti_root: Path
) -> None:
    """STDC1 matching at stride 2, inverse bins, relative costs, motion-aware (its teacher inside the
    graph): the export runs what PyTorch runs."""
    import onnxruntime as ort

    checkpoint = trained["stdc1"]
    out = export_onnx(checkpoint, tmp_path / "level0.onnx", latency_runs=1, verbose=False)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    assert json.loads(meta["depth_bins"])["binning"] == "inverse"
    assert json.loads(meta["motion_aware"]) == {"search_radius": 3, "threshold_px": 1.5}
    assert "| motion-aware matching | Manydepth2's: pixels whose best match lies more than 1.5 px" in (
        out.with_suffix(".md").read_text()
    )

    image, prev = _frame_pair(kitti_root, tmp_path, "stdc1")
    with torch.no_grad():
        reference = two_frame_net_from_checkpoint(load_checkpoint(checkpoint))(image, prev).numpy()
    got = session.run(["depth"], {"image": image.numpy(), "prev_image": prev.numpy()})[0]
    assert float(np.max(np.abs(got - reference) / reference)) < 1e-4


def test_an_image_matching_student_exports_and_matches_pytorch(
    trained: dict[str, Path], tmp_path: Path, kitti_root: Path
) -> None:
    """``matching_source: image`` at level 1: the frames pooled to twice the 1/4 grid, matched in
    patches; no prematching conv; the export says so and runs what PyTorch runs."""
    import onnxruntime as ort

    checkpoint = trained["resnet18_image"]
    ckpt = load_checkpoint(checkpoint)
    assert ckpt["config"]["model"]["matching_source"] == "image"
    assert not any(key.startswith("prematching_conv") for key in ckpt["multi_depth_net"])
    out = export_onnx(checkpoint, tmp_path / "image.onnx", latency_runs=1, verbose=False)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert session.get_modelmeta().custom_metadata_map["matching_source"] == "image"
    assert "| matching | the frames themselves" in out.with_suffix(".md").read_text()

    image, prev = _frame_pair(kitti_root, tmp_path, "resnet18")
    with torch.no_grad():
        reference = two_frame_net_from_checkpoint(ckpt)(image, prev).numpy()
    got = session.run(["depth"], {"image": image.numpy(), "prev_image": prev.numpy()})[0]
    assert float(np.max(np.abs(got - reference) / reference)) < 1e-4


def test_a_refining_student_exports_with_its_teacher_and_matches_pytorch(
    trained: dict[str, Path], tmp_path: Path, kitti_root: Path
) -> None:
    """``student: refine``: the checkpoint's student is the small net only; the export holds the
    teacher too, says so, and runs what PyTorch runs."""
    import onnxruntime as ort

    checkpoint = trained["resnet18_refine"]
    ckpt = load_checkpoint(checkpoint)
    assert not any(key.startswith(("encoder", "decoder")) for key in ckpt["multi_depth_net"])
    assert ckpt["multi_depth_net"]["head.0.weight"].shape[1] == 32 + 8 + 1  # features, costs, teacher
    out = export_onnx(checkpoint, tmp_path / "refine.onnx", latency_runs=1, verbose=False)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert session.get_modelmeta().custom_metadata_map["student"] == "refine"
    assert "| student | refines its single-frame teacher's disparity" in out.with_suffix(".md").read_text()

    image, prev = _frame_pair(kitti_root, tmp_path, "resnet18")
    net = two_frame_net_from_checkpoint(ckpt)
    assert net.reference_net is not None
    with torch.no_grad():
        reference = net(image, prev).numpy()
        teacher = net.reference_net.predict_depth(image).numpy()
    assert float(np.max(np.abs(reference - teacher))) > 0  # two steps moved the head off zero
    got = session.run(["depth"], {"image": image.numpy(), "prev_image": prev.numpy()})[0]
    assert float(np.max(np.abs(got - reference) / reference)) < 1e-4
