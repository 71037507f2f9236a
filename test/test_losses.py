"""Self-supervised losses against independent hand/numpy computations on tiny tensors."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from training.geometry import transformation_from_parameters, warp_image  # noqa: E402
from training.losses import (  # noqa: E402
    DEFAULT_LOSS_CFG,
    SSIM,
    SelfSupervisedLoss,
    depth_supervision_loss,
    dipe_mask,
    explainability_loss,
    loss_config,
    photometric_error,
    reduce_reprojection,
    second_order_smoothness,
    smoothness_loss,
    training_mode,
    velocity_loss,
    without_scale_gradient,
)

torch.set_num_threads(2)


def numpy_dssim(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(1 - SSIM) / 2 per pixel of 2-D arrays: 3x3 windows, reflection padding, C1=0.01², C2=0.03²."""
    xp, yp = np.pad(x, 1, mode="reflect"), np.pad(y, 1, mode="reflect")
    out = np.zeros_like(x, dtype=np.float64)
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            wx, wy = xp[i : i + 3, j : j + 3], yp[i : i + 3, j : j + 3]
            mx, my = wx.mean(), wy.mean()
            vx, vy = ((wx - mx) ** 2).mean(), ((wy - my) ** 2).mean()
            cxy = ((wx - mx) * (wy - my)).mean()
            ssim = ((2 * mx * my + 1e-4) * (2 * cxy + 9e-4)) / ((mx**2 + my**2 + 1e-4) * (vx + vy + 9e-4))
            out[i, j] = min(max((1 - ssim) / 2, 0.0), 1.0)
    return out


def test_ssim_matches_hand_computation() -> None:
    rng = np.random.default_rng(0)
    x = rng.random((4, 5))
    y = np.clip(x + 0.2 * rng.standard_normal((4, 5)), 0, 1)
    got = SSIM()(torch.tensor(x).view(1, 1, 4, 5), torch.tensor(y).view(1, 1, 4, 5))[0, 0].numpy()
    np.testing.assert_allclose(got, numpy_dssim(x, y), atol=1e-9)
    same = SSIM()(torch.tensor(x).view(1, 1, 4, 5), torch.tensor(x).view(1, 1, 4, 5))
    assert float(same.max()) < 1e-6


def test_photometric_error_is_ssim_plus_l1() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.random((3, 4, 5)), rng.random((3, 4, 5))
    expected = np.mean(
        [0.85 * numpy_dssim(x[c], y[c]) + 0.15 * np.abs(x[c] - y[c]) for c in range(3)], axis=0
    )
    got = photometric_error(torch.tensor(x)[None], torch.tensor(y)[None], SSIM(), 0.85)
    assert got.shape == (1, 1, 4, 5)
    np.testing.assert_allclose(got[0, 0].numpy(), expected, atol=1e-9)


# Per-source errors of a 2x2 image with two source frames, and the unwarped (identity) errors.
REPROJ = torch.tensor([[[[0.1, 0.5], [0.3, 0.9]], [[0.2, 0.4], [0.6, 0.8]]]])  # min: .1 .4 / .3 .8
IDENTITY = torch.tensor([[[[0.05, 1.0], [1.0, 1.0]], [[0.07, 1.0], [1.0, 1.0]]]])


def test_minimum_reprojection_without_masks_is_the_mean_of_minima() -> None:
    loss, mask = reduce_reprojection(REPROJ, None, dipe=False)
    assert math.isclose(float(loss), (0.1 + 0.4 + 0.3 + 0.8) / 4, rel_tol=1e-6)
    assert torch.equal(mask, torch.ones(1, 1, 2, 2))
    loss, _ = reduce_reprojection(REPROJ, None, min_reprojection=False, dipe=False)
    assert math.isclose(float(loss), float(REPROJ.mean()), rel_tol=1e-6)


def test_automasking_matches_monodepth2() -> None:
    # Top-left: the unwarped source (0.05) beats the best warp (0.1): masked out. Monodepth2's loss
    # is the mean of the per-pixel minimum over [identity, reprojection].
    loss, mask = reduce_reprojection(REPROJ, IDENTITY, dipe=False)
    assert mask[0, 0].tolist() == [[0.0, 1.0], [1.0, 1.0]]
    assert math.isclose(float(loss), (0.05 + 0.4 + 0.3 + 0.8) / 4, rel_tol=1e-6)
    # Monodepth2's --avg_reprojection: the identity errors are averaged over sources as well.
    loss, mask = reduce_reprojection(REPROJ, IDENTITY, min_reprojection=False, dipe=False)
    identity, reprojection = IDENTITY.mean(1, keepdim=True), REPROJ.mean(1, keepdim=True)
    assert torch.equal(mask, (reprojection < identity).float())
    assert math.isclose(float(loss), float(torch.minimum(identity, reprojection).mean()), rel_tol=1e-6)


def test_dipe_masking_with_automasking() -> None:
    # Minimum errors .1 .4 .3 .8: mu = 0.4, sd = sqrt((.09 + 0 + .01 + .16) / 4) = 0.2550, so the
    # kept band is (0.145, 0.5275): 0.1 and 0.8 are outliers. Auto-masking drops the top-left too.
    sd = math.sqrt((0.09 + 0.0 + 0.01 + 0.16) / 4)
    assert 0.4 - sd < 0.3 and 0.4 + 0.5 * sd < 0.8 and 0.4 - sd > 0.1
    only_dipe = dipe_mask(REPROJ.min(1, keepdim=True)[0], 1.0, 0.5)
    assert only_dipe[0, 0].tolist() == [[0.0, 1.0], [1.0, 0.0]]
    loss, mask = reduce_reprojection(REPROJ, IDENTITY, dipe=True)
    assert mask[0, 0].tolist() == [[0.0, 1.0], [1.0, 0.0]]
    assert math.isclose(float(loss), (0.4 + 0.3) / 2, rel_tol=1e-6)  # normalised by the mask's sum


def test_dipe_statistics_are_per_image() -> None:
    errors = torch.stack([REPROJ.min(1, keepdim=True)[0][0], 10 * REPROJ.min(1, keepdim=True)[0][0]])
    mask = dipe_mask(errors)
    assert torch.equal(mask[0], mask[1])


def test_smoothness_matches_hand_computation() -> None:
    rng = np.random.default_rng(2)
    disp, image = rng.random((2, 3)), rng.random((3, 2, 3))
    gx = sum(
        abs(disp[i, j] - disp[i, j + 1]) * math.exp(-np.mean(np.abs(image[:, i, j] - image[:, i, j + 1])))
        for i in range(2)
        for j in range(2)
    )
    gy = sum(
        abs(disp[0, j] - disp[1, j]) * math.exp(-np.mean(np.abs(image[:, 0, j] - image[:, 1, j])))
        for j in range(3)
    )
    got = smoothness_loss(torch.tensor(disp).view(1, 1, 2, 3), torch.tensor(image)[None])
    assert math.isclose(float(got), gx / 4 + gy / 3, rel_tol=1e-9)


def test_velocity_loss_uses_only_known_distances() -> None:
    translations = {
        -1: torch.tensor([[3.0, 4.0, 0.0], [0.0, 0.0, 1.0]]),  # norms 5, 1
        1: torch.tensor([[0.0, 0.0, -2.0], [1.0, 2.0, 2.0]]),  # norms 2, 3
    }
    distances = {-1: torch.tensor([4.0, float("nan")]), 1: torch.tensor([2.5, 1.0])}
    got = velocity_loss(translations, distances)
    assert math.isclose(float(got), (1.0 + 0.5 + 2.0) / 3, rel_tol=1e-6)
    assert velocity_loss(translations, {1: torch.tensor([float("nan")] * 2)}) is None


def test_depth_supervision_losses() -> None:
    depth = torch.tensor([[[[2.0, 4.0], [8.0, 1.0]]]])
    gt = torch.tensor([[[[1.0, 0.0], [16.0, 1.0]]]])  # 0 = invalid
    log_l1 = depth_supervision_loss(depth, gt, "log_l1")
    assert math.isclose(float(log_l1), (math.log(2) + math.log(2) + 0) / 3, rel_tol=1e-6)
    abs_rel = depth_supervision_loss(depth, gt, "abs_rel")
    assert math.isclose(float(abs_rel), (1.0 + 0.5 + 0.0) / 3, rel_tol=1e-6)
    assert depth_supervision_loss(depth, torch.zeros_like(gt)) is None


def test_loss_config_refuses_unknown_keys() -> None:
    assert loss_config({})["ssim_weight"] == 0.85 == DEFAULT_LOSS_CFG["ssim_weight"]
    with pytest.raises(ValueError, match="smoothnes_weight"):
        loss_config({"smoothnes_weight": 1.0})


def test_training_mode_from_config() -> None:
    assert training_mode({"data": {"source": "kitti"}, "loss": {}}) == "self_supervised+velocity"
    assert training_mode({"data": {"source": "folder"}, "loss": {}}) == "self_supervised"
    assert training_mode({"data": {"source": "kitti"}, "loss": {}}, used_velocity=False) == "self_supervised"
    lidar = {"data": {"source": "kitti", "depth_gt": "velodyne"}, "loss": {"depth_weight": 0.1}}
    assert training_mode(lidar) == "lidar"
    assert training_mode({"data": {}, "loss": {"mode": "supervised"}}) == "supervised"
    # Warping with odometry-scaled translations (predict_poses) makes the model metric too.
    assert training_mode({"loss": {"velocity_weight": 0.0, "odometry_scale": True}}) == (
        "self_supervised+velocity"
    )
    # Stereo pairs: the baseline (metres) makes the model metric, whatever the velocity settings.
    assert training_mode({"data": {"source": "kitti", "modality": "S"}, "loss": {}}) == "stereo"
    assert training_mode({"data": {"source": "bag", "modality": "MS"}, "loss": {}}) == "mono+stereo"
    assert training_mode({"data": {"modality": "M"}, "loss": {"velocity_weight": 0}}) == "self_supervised"


def test_loss_config_refuses_unknown_masking_and_smoothness() -> None:
    with pytest.raises(ValueError, match="masking='dipe_faithful'"):
        loss_config({"masking": "dipe_faithful"})
    with pytest.raises(ValueError, match="smoothness='third_order'"):
        loss_config({"smoothness": "third_order"})


def test_second_order_smoothness_matches_hand_computation() -> None:
    # d = x² + 3xy: d_xx = 2, d_xy = d_yx = 3, d_yy = 0 everywhere.
    y, x = np.mgrid[0:5, 0:6].astype(np.float64)
    disp = torch.tensor(x**2 + 3 * x * y, dtype=torch.float32)[None, None]
    assert float(second_order_smoothness(disp)) == pytest.approx(2 + 3 + 3 + 0)
    # A plane has no second derivative, whatever its slope (first-order smoothness penalises it).
    plane = torch.tensor(2 * x - y, dtype=torch.float32)[None, None]
    assert float(second_order_smoothness(plane)) == pytest.approx(0.0, abs=1e-6)


def test_explainability_loss_matches_literal_computation() -> None:
    rng = np.random.default_rng(3)
    error = rng.uniform(0, 1, (2, 3, 4, 5))
    mask = rng.uniform(0.05, 1, (2, 3, 4, 5))
    loss, mean_mask = explainability_loss(torch.tensor(error), torch.tensor(mask), 0.2)
    photometric = np.mean([np.mean(mask[:, f] * error[:, f]) for f in range(3)])
    regulariser = np.mean([np.mean(-np.log(mask[:, f])) for f in range(3)])
    assert float(loss) == pytest.approx(photometric + 0.2 * regulariser, rel=1e-9)
    np.testing.assert_allclose(mean_mask.numpy()[:, 0], mask.mean(1))


# --- end to end on a textured fronto-parallel plane --------------------------------------------

PH, PW, FX, PLANE_Z, SHIFT_M = 32, 64, 40.0, 8.0, 0.4


def texture(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """A smooth RGB pattern evaluated at (possibly shifted) pixel coordinates -> [3,H,W]."""
    return torch.stack(
        [
            0.5 + 0.3 * torch.sin(0.7 * u) * torch.cos(0.3 * v),
            0.5 + 0.3 * torch.cos(0.45 * u + 0.2 * v),
            0.5 + 0.2 * torch.sin(0.25 * u - 0.5 * v),
        ]
    )


def plane_batch() -> dict:
    """Target frame 0 and sources ±1 whose cameras are shifted by ∓/±SHIFT_M along x.

    Frame f's camera sits at x = f * SHIFT_M, so a target point at x appears in frame f at
    x - f * SHIFT_M: pixel u moves by -f * FX * SHIFT_M / Z (2 px).
    """
    v, u = torch.meshgrid(
        torch.arange(PH, dtype=torch.float32), torch.arange(PW, dtype=torch.float32), indexing="ij"
    )
    K = torch.tensor([[FX, 0, PW / 2, 0], [0, FX, PH / 2, 0], [0, 0, 1, 0], [0, 0, 0, 1]]).unsqueeze(0)
    batch = {"K": K, "inv_K": torch.linalg.inv(K)}
    flow = FX * SHIFT_M / PLANE_Z
    for f in (0, -1, 1):
        # Source image value at u' equals the target's at u' + f * flow.
        image = texture(u + f * flow, v).unsqueeze(0)
        batch[("color", f, 0)] = image
        batch[("color_aug", f, 0)] = image
        if f:
            batch[("distance", f)] = torch.tensor([SHIFT_M])
    return batch


def plane_outputs(depth: float, scales: int = 2) -> dict:
    outputs = {}
    min_d, max_d = DEFAULT_LOSS_CFG["min_depth"], DEFAULT_LOSS_CFG["max_depth"]
    disp_value = (1 / depth - 1 / max_d) / (1 / min_d - 1 / max_d)
    for s in range(scales):
        disp = torch.full((1, 1, PH // 2**s, PW // 2**s), disp_value, requires_grad=True)
        outputs[("disp", s)] = disp
    for f in (-1, 1):
        # Points of frame 0 go into frame f's camera: x_f = x_0 - f * SHIFT_M.
        translation = torch.tensor([[-f * SHIFT_M, 0.0, 0.0]], requires_grad=True)
        outputs[("translation", 0, f)] = translation
        outputs[("cam_T_cam", 0, f)] = transformation_from_parameters(torch.zeros(1, 3), translation)
    return outputs


def test_true_depth_and_motion_minimise_the_loss() -> None:
    batch = plane_batch()
    criterion = SelfSupervisedLoss({}, PH, PW)
    outputs = plane_outputs(PLANE_Z)
    keys = set(outputs)
    loss_true, diagnostics = criterion(batch, outputs)
    stats = diagnostics.stats
    loss_wrong, _ = criterion(batch, plane_outputs(PLANE_Z / 2))
    assert float(loss_true.detach()) < 0.3 * float(loss_wrong.detach())
    assert stats["velocity"] < 1e-6 and abs(stats["median_depth"] - PLANE_Z) < 1e-3
    assert {"loss", "photometric", "smoothness", "mask_fraction", "translation_norm"} <= set(stats)
    assert diagnostics.warped[1].shape == (1, 3, PH, PW) and diagnostics.mask.shape == (1, 1, PH, PW)
    assert set(diagnostics.depth) == {0, 1} and diagnostics.depth[1].shape == (1, 1, PH, PW)
    assert set(outputs) == keys  # the loss only reads the model's outputs
    # The warped interior (away from the 2-px border the source does not see) matches the target.
    warped, target = diagnostics.warped[1], batch[("color", 0, 0)]
    assert float((warped.detach() - target)[..., 4:-4].abs().max()) < 0.02
    loss_true.backward()
    assert outputs[("disp", 0)].grad is not None and outputs[("translation", 0, 1)].grad is not None


def test_loss_warps_with_warp_image() -> None:
    batch, outputs = plane_batch(), plane_outputs(PLANE_Z)
    _, diagnostics = SelfSupervisedLoss({}, PH, PW)(batch, outputs)
    depth, K, inv_K = diagnostics.depth[0], batch["K"], batch["inv_K"]
    for f in (-1, 1):
        expected = warp_image(batch[("color", f, 0)], depth, outputs[("cam_T_cam", 0, f)], K, inv_K)
        torch.testing.assert_close(diagnostics.warped[f], expected, rtol=0, atol=0)


def test_velocity_term_enters_only_with_distances() -> None:
    batch = plane_batch()
    criterion = SelfSupervisedLoss({"dipe": False, "automask": False}, PH, PW)
    outputs = plane_outputs(PLANE_Z)
    outputs[("translation", 0, 1)] = torch.tensor([[0.0, 0.0, 2.0]])  # norm 2 vs distance 0.4
    base = {k: v for k, v in batch.items() if not (isinstance(k, tuple) and k[0] == "distance")}
    with_v, diagnostics = criterion(batch, outputs)
    without_v, diagnostics_no = criterion(base, outputs)
    stats, stats_no = diagnostics.stats, diagnostics_no.stats
    assert "velocity" not in stats_no
    # Only frame 1's pair is off (|2 - 0.4|, frame -1 is exact): mean 0.8, weight 0.1.
    assert math.isclose(stats["velocity"], 0.8, rel_tol=1e-5)
    assert math.isclose(float((with_v - without_v).detach()), 0.1 * 0.8, rel_tol=1e-4)


def test_supervised_mode_uses_only_depth() -> None:
    batch = plane_batch()
    batch["depth_gt"] = torch.zeros(1, 1, PH, PW)
    batch["depth_gt"][0, 0, ::4, ::4] = 2 * PLANE_Z
    outputs = {("disp", 0): plane_outputs(PLANE_Z)[("disp", 0)]}
    loss, diagnostics = SelfSupervisedLoss({"mode": "supervised"}, PH, PW)(batch, outputs)
    assert math.isclose(float(loss.detach()), math.log(2), rel_tol=1e-4)
    assert diagnostics.stats["photometric"] == 0.0 and diagnostics.mask is None
    with pytest.raises(KeyError, match="depth_gt"):
        SelfSupervisedLoss({"mode": "supervised"}, PH, PW)(plane_batch(), outputs)


def test_loss_runs_in_float32_under_autocast() -> None:
    batch, outputs = plane_batch(), plane_outputs(PLANE_Z)
    criterion = SelfSupervisedLoss({}, PH, PW)
    reference, _ = criterion(batch, outputs)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, _ = criterion(batch, plane_outputs(PLANE_Z))
    assert loss.dtype == torch.float32
    assert abs(float(loss.detach()) - float(reference.detach())) < 1e-6


def test_supervised_batch_without_valid_depth_still_backpropagates() -> None:
    batch = plane_batch()
    batch["depth_gt"] = torch.zeros(1, 1, PH, PW)
    outputs = {("disp", 0): plane_outputs(PLANE_Z)[("disp", 0)]}
    loss, diagnostics = SelfSupervisedLoss({"mode": "supervised"}, PH, PW)(batch, outputs)
    loss.backward()
    assert float(loss.detach()) == 0.0 and "depth_sup" not in diagnostics.stats


# --- stereo: the partner camera as source "s" with the calibration's pose --------------------------

BASELINE = 0.54


def stereo_batch(flow: float) -> dict:
    """Frame 0 and its right partner, whose camera sits BASELINE m to the right.

    A point at pixel u of the left image appears at u - fx * B / Z in the right one.
    """
    batch = plane_batch()
    v, u = torch.meshgrid(
        torch.arange(PH, dtype=torch.float32), torch.arange(PW, dtype=torch.float32), indexing="ij"
    )
    batch[("color", "s", 0)] = batch[("color_aug", "s", 0)] = texture(u + flow, v).unsqueeze(0)
    T = torch.eye(4).unsqueeze(0)
    T[0, 0, 3] = -BASELINE  # left-camera points seen from the right camera
    batch["stereo_T"] = T
    return batch


def test_stereo_partner_is_a_source_with_the_calibration_pose() -> None:
    batch = stereo_batch(FX * BASELINE / PLANE_Z)
    outputs = plane_outputs(PLANE_Z)
    outputs[("cam_T_cam", 0, "s")] = batch["stereo_T"]
    criterion = SelfSupervisedLoss({"velocity_weight": 0.0}, PH, PW)
    loss_true, diagnostics = criterion(batch, outputs)
    assert set(diagnostics.warped) == {-1, 1, "s"}
    warped, target = diagnostics.warped["s"], batch[("color", 0, 0)]
    assert float((warped - target)[..., 4:-4].abs().max()) < 0.02
    # Only the true metric depth makes the stereo warp fit: the baseline fixes the scale.
    only_stereo = {k: v for k, v in outputs.items() if not (k[0] == "cam_T_cam" and k[2] != "s")}
    loss_stereo, _ = criterion(batch, only_stereo)
    wrong = plane_outputs(PLANE_Z * 1.5)
    wrong = {k: v for k, v in wrong.items() if k[0] == "disp"} | {("cam_T_cam", 0, "s"): batch["stereo_T"]}
    loss_wrong, _ = criterion(batch, wrong)
    assert float(loss_stereo.detach()) < 0.3 * float(loss_wrong.detach())
    assert float(loss_true.detach()) < 0.3 * float(loss_wrong.detach())


def scaled_stereo_outputs(k: float) -> dict:
    """Depth k * PLANE_Z with the video translations scaled by k as well (the same video warps: the
    scale a monocular loss cannot see), and the stereo partner at the calibration's pose."""
    outputs = plane_outputs(PLANE_Z * k)
    for f in (-1, 1):
        outputs[("cam_T_cam", 0, f)] = transformation_from_parameters(
            torch.zeros(1, 3), torch.tensor([[-f * SHIFT_M * k, 0.0, 0.0]])
        )
    outputs[("cam_T_cam", 0, "s")] = stereo_batch(0.0)["stereo_T"]
    return outputs


def test_a_separate_stereo_term_ties_every_pixel_to_the_baseline() -> None:
    batch = stereo_batch(FX * BASELINE / PLANE_Z)
    config = {"velocity_weight": 0.0, "smoothness_weight": 0.0, "automask_noise": 0.0}
    minimum = SelfSupervisedLoss({**config, "stereo": "minimum"}, PH, PW)
    separate = SelfSupervisedLoss(config, PH, PW)  # the default

    def loss(criterion: SelfSupervisedLoss, outputs: dict) -> float:
        return float(criterion(batch, outputs)[0].detach())

    true, too_far = scaled_stereo_outputs(1.0), scaled_stereo_outputs(1.5)
    # Under the minimum the video sources explain the wrong scale as well as the true one ...
    assert loss(minimum, too_far) < 0.05 + loss(minimum, true)
    # ... the separate term does not: the stereo warp needs the metric depth.
    assert loss(separate, too_far) > 3 * loss(separate, true) + 0.02
    # It is the mean of the video sources' minimum term and the stereo partner's own term.
    for outputs in (true, too_far):
        video = {k: v for k, v in outputs.items() if not (k[0] == "cam_T_cam" and k[2] == "s")}
        stereo = {k: v for k, v in outputs.items() if not (k[0] == "cam_T_cam" and k[2] != "s")}
        expected = (loss(minimum, video) + loss(minimum, stereo)) / 2
        assert loss(separate, outputs) == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match=r"loss\.stereo='both'"):
        SelfSupervisedLoss({"stereo": "both"}, PH, PW)


def test_explainability_masking_weights_each_source() -> None:
    batch, outputs = plane_batch(), plane_outputs(PLANE_Z / 2)  # wrong depth: large errors
    half = torch.full((1, 1, PH, PW), 0.5)
    config = {"masking": "explainability", "velocity_weight": 0.0, "smoothness_weight": 0.0}
    criterion = SelfSupervisedLoss(config, PH, PW)
    loss_full, diagnostics = criterion(
        batch, outputs | {("explainability", 0, f): torch.ones_like(half) for f in (-1, 1)}
    )
    loss_half, _ = criterion(batch, outputs | {("explainability", 0, f): half for f in (-1, 1)})
    # E = 1: no regulariser, plain mean of the errors; E = 0.5: half of it plus 0.2 * log 2.
    expected = 0.5 * float(loss_full.detach()) + 0.2 * math.log(2)
    assert float(loss_half.detach()) == pytest.approx(expected, rel=1e-5)
    assert diagnostics.mask.shape == (1, 1, PH, PW) and float(diagnostics.mask.mean()) == 1.0


def test_without_scale_gradient_keeps_values_and_drops_the_scale_direction() -> None:
    torch.manual_seed(0)
    depth = (torch.rand(2, 1, 6, 8) * 10 + 1).requires_grad_()
    weights = torch.randn(2, 1, 6, 8)
    shaped = without_scale_gradient(depth)
    assert torch.equal(shaped, depth)
    (grad,) = torch.autograd.grad((weights * shaped).sum(), depth)
    # No first-order change when an image's depth is scaled: <grad, depth> = 0 per image ...
    assert torch.allclose((grad * depth).sum(dim=(1, 2, 3)), torch.zeros(2), atol=1e-4)
    # ... while the shape still gets a gradient.
    assert float(grad.abs().mean()) > 0.1


def test_stereo_scale_baseline_changes_gradients_not_the_loss() -> None:
    batch = stereo_batch(FX * BASELINE / PLANE_Z)
    config = {"velocity_weight": 0.0, "smoothness_weight": 0.0, "automask_noise": 0.0}
    outputs = scaled_stereo_outputs(1.5)
    values, grads = [], []
    assert DEFAULT_LOSS_CFG["stereo_scale"] == "baseline"
    for stereo_scale in ("shared", "baseline"):
        disp = {k: v.clone().requires_grad_() for k, v in outputs.items() if k[0] == "disp"}
        criterion = SelfSupervisedLoss({**config, "stereo_scale": stereo_scale}, PH, PW)
        loss, _ = criterion(batch, outputs | disp)
        values.append(float(loss.detach()))
        grads.append(torch.autograd.grad(loss, disp[("disp", 0)])[0])
    assert values[0] == pytest.approx(values[1], rel=1e-6)
    assert not torch.allclose(grads[0], grads[1])
    with pytest.raises(ValueError, match=r"loss\.stereo_scale='metric'"):
        SelfSupervisedLoss({"stereo_scale": "metric"}, PH, PW)
