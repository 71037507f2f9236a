"""Supervised losses of training/losses.py (silog, densedepth, ranking) against hand computations.

Tiny tensors whose logs are integers, so that every expected value is a literal; the SSIM part of
DenseDepth's loss against an independent numpy SSIM. Then the wiring: ``SelfSupervisedLoss`` in
supervised mode with each kind, DIW-style batches with pairs only, and each term mixed into the
self-supervised loss.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from depth_node.metrics import whdr  # noqa: E402
from training.geometry import disp_to_depth  # noqa: E402
from training.losses import (  # noqa: E402
    SSIM,
    SelfSupervisedLoss,
    densedepth_loss,
    depth_supervision_loss,
    loss_config,
    ranking_loss,
    silog_loss,
)

torch.set_num_threads(1)


def map_(rows: list[list[float]]) -> torch.Tensor:
    """A [1,1,H,W] float64 map."""
    return torch.tensor(rows, dtype=torch.float64)[None, None]


# --- silog ----------------------------------------------------------------------------------------

# d = log(pred / gt): image 1 has d = 1, 0, 2 / -1, 0 and one invalid pixel; image 2 has d = 0.5.
GT_1 = [[1.0, 2.0, 4.0], [0.0, 3.0, 5.0]]
D_1 = [[1.0, 0.0, 2.0], [7.0, -1.0, 0.0]]  # the 7 sits on the invalid pixel: must not count
GT_2 = [[2.0, 2.0, 2.0], [1.0, 1.0, 1.0]]


def silog_batch() -> tuple[torch.Tensor, torch.Tensor]:
    gt = torch.cat([map_(GT_1), map_(GT_2)])
    d = torch.cat([map_(D_1), torch.full((1, 1, 2, 3), 0.5, dtype=torch.float64)])
    return gt * torch.exp(d), gt


def test_silog_by_hand_per_image_with_an_invalid_pixel() -> None:
    pred, gt = silog_batch()
    # Image 1: mean d^2 = (1 + 0 + 4 + 1 + 0) / 5, mean d = 2 / 5; image 2: 0.25 and 0.5.
    image_1 = 6 / 5 - 0.5 * (2 / 5) ** 2
    image_2 = 0.25 - 0.5 * 0.5**2
    assert float(silog_loss(pred, gt, 0.5)) == pytest.approx((image_1 + image_2) / 2, rel=1e-12)
    assert float(silog_loss(pred, gt, 1.0)) == pytest.approx((6 / 5 - 0.16 + 0.0) / 2, rel=1e-12)
    assert float(silog_loss(pred, gt, 0.0)) == pytest.approx((6 / 5 + 0.25) / 2, rel=1e-12)
    # An image without any valid pixel is left out, not averaged in as zero.
    with_empty = silog_loss(torch.cat([pred, pred[:1]]), torch.cat([gt, torch.zeros_like(gt[:1])]), 0.5)
    assert float(with_empty) == pytest.approx((image_1 + image_2) / 2, rel=1e-12)
    assert silog_loss(pred, torch.zeros_like(gt)) is None
    assert depth_supervision_loss(pred, gt, "silog", silog_lambda=0.5) == silog_loss(pred, gt, 0.5)


def test_silog_is_scale_invariant_per_image_at_lambda_one() -> None:
    pred, gt = silog_batch()
    factors = torch.tensor([3.0, 0.2], dtype=torch.float64).view(2, 1, 1, 1)
    assert float(silog_loss(pred * factors, gt, 1.0)) == pytest.approx(float(silog_loss(pred, gt, 1.0)))
    # lambda = 0.5: D(a y) = D(y) + log(a) mean(d) + log(a)^2 / 2 per image (means 0.4 and 0.5).
    a = np.log([3.0, 0.2])
    shift = np.mean(a * np.array([0.4, 0.5]) + a**2 / 2)
    got = float(silog_loss(pred * factors, gt, 0.5)) - float(silog_loss(pred, gt, 0.5))
    assert got == pytest.approx(shift, rel=1e-10)


# --- densedepth -------------------------------------------------------------------------------------

MAX_D, MIN_D = 10.0, 0.1  # y = 10 m / depth, SSIM range L = 100: DenseDepth's NYU setting


def numpy_dssim(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(1 - SSIM) / 2 per pixel: 3x3 windows, reflection padding, C1 = 0.01², C2 = 0.03²."""
    xp, yp = np.pad(x, 1, mode="reflect"), np.pad(y, 1, mode="reflect")
    out = np.zeros_like(x)
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            wx, wy = xp[i : i + 3, j : j + 3], yp[i : i + 3, j : j + 3]
            mx, my = wx.mean(), wy.mean()
            vx, vy, cxy = wx.var(), wy.var(), ((wx - mx) * (wy - my)).mean()
            ssim = ((2 * mx * my + 1e-4) * (2 * cxy + 9e-4)) / ((mx**2 + my**2 + 1e-4) * (vx + vy + 9e-4))
            out[i, j] = min(max((1 - ssim) / 2, 0.0), 1.0)
    return out


def test_densedepth_by_hand_on_dense_ground_truth() -> None:
    gt = map_([[1.0, 2.0, 5.0], [10.0, 2.0, 1.0]])  # y* = 10, 5, 2 / 1, 5, 10
    pred = map_([[2.0, 2.0, 5.0], [5.0, 1.0, 1.0]])  # y  =  5, 5, 2 / 2, 10, 10
    l_depth = (5 + 0 + 0 + 1 + 5 + 0) / 6
    # dx: y (0, -3 / 8, 0) vs y* (-5, -3 / 4, 5); dy: y (-3, 5, 8) vs y* (-9, 0, 8).
    l_grad = ((5 + 0 + 4 + 5) + (6 + 5 + 0)) / 6
    y, y_gt = MAX_D / pred[0, 0].numpy(), MAX_D / gt[0, 0].numpy()
    l_ssim = numpy_dssim(y / 100, y_gt / 100).mean()
    got = densedepth_loss(pred, gt, SSIM(), MIN_D, MAX_D, 0.1)
    assert float(got) == pytest.approx(0.1 * l_depth + l_grad + l_ssim, rel=1e-10)
    assert l_ssim > 0.01  # the SSIM term is really in the sum
    assert float(densedepth_loss(gt, gt, SSIM(), MIN_D, MAX_D)) == pytest.approx(0.0, abs=1e-12)
    same = depth_supervision_loss(pred, gt, "densedepth", min_depth=MIN_D, max_depth=MAX_D)
    assert float(same) == pytest.approx(float(got), rel=1e-12)


def test_densedepth_masks_invalid_pixels() -> None:
    gt = map_([[0.0, 2.0, 5.0], [10.0, 2.0, 1.0]])  # top-left pixel unmeasured
    pred = map_([[2.0, 2.0, 5.0], [5.0, 1.0, 1.0]])
    l_depth = (0 + 0 + 1 + 5 + 0) / 5
    # Only neighbour pairs of two valid pixels: dx (0,1)-(0,2) and the bottom row; dy columns 1, 2.
    l_grad = ((0 + 4 + 5) + (5 + 0)) / 5
    # A 3x3 window (reflection padded) misses column 0 only at column 2: pixels (0,2) and (1,2).
    y, y_gt = MAX_D / pred[0, 0].numpy(), MAX_D / np.where(gt[0, 0].numpy() > 0, gt[0, 0].numpy(), 1.0)
    l_ssim = numpy_dssim(y / 100, y_gt / 100)[:, 2].mean()
    got = densedepth_loss(pred, gt, SSIM(), MIN_D, MAX_D, 0.1)
    assert float(got) == pytest.approx(0.1 * l_depth + l_grad + l_ssim, rel=1e-10)
    # Whatever the prediction says where there is no truth does not matter.
    other = pred.clone()
    other[0, 0, 0, 0] = 0.3
    unchanged = densedepth_loss(other, gt, SSIM(), MIN_D, MAX_D, 0.1)
    assert float(unchanged) == pytest.approx(float(got), rel=1e-12)
    assert densedepth_loss(pred, torch.zeros_like(gt), SSIM(), MIN_D, MAX_D) is None


# --- ranking ----------------------------------------------------------------------------------------

Z = [[0.0, 1.0, 2.0], [1.0, 0.0, 3.0]]  # log depth of the 2x3 map


def ranking_inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    depth = torch.exp(torch.cat([map_(Z), map_(Z)]))
    nan = float("nan")
    pairs = torch.tensor(
        [
            [[0, 0, 2, 1], [1, 0, 0, 1], [2, 0, 1, 1]],  # (x_a, y_a, x_b, y_b)
            [[0.5, 0, 1, 1], [nan, nan, nan, nan], [0, 0, 1, 0]],  # sub-pixel point, padding row
        ],
        dtype=torch.float64,
    )
    relation = torch.tensor([[1, 0, -1], [1, 1, -1]])
    return depth, pairs, relation


def test_ranking_loss_by_hand() -> None:
    depth, pairs, relation = ranking_inputs()
    # z_a - z_b: 0 - 3 (r=+1), 1 - 1 (r=0), 2 - 0 (r=-1); 0.5 - 0 (r=+1, bilinear), 0 - 1 (r=-1).
    expected = [math.log1p(math.exp(3)), 0.0, math.log1p(math.exp(2)), math.log1p(math.exp(-0.5))]
    expected.append(math.log1p(math.exp(-1)))
    got = ranking_loss(depth, pairs, relation)
    assert float(got) == pytest.approx(np.mean(expected), rel=1e-10)
    # Equal pairs cost (z_a - z_b)^2; log depth makes the loss blind to the scene's scale.
    equal = ranking_loss(depth[:1], torch.tensor([[[0.0, 0, 2, 0]]]), torch.tensor([[0]]))
    assert float(equal) == pytest.approx(4.0)
    assert float(ranking_loss(depth * 7.0, pairs, relation)) == pytest.approx(float(got), rel=1e-10)
    assert ranking_loss(depth, torch.full((2, 1, 4), float("nan")), torch.ones(2, 1)) is None
    with pytest.raises(ValueError, match=r"pairs/relation: expected \[B,P,4\] and \[B,P\]"):
        ranking_loss(depth, pairs[..., :3], relation)
    with pytest.raises(ValueError, match="pairs: 2 images of pairs for 1 depth maps"):
        ranking_loss(depth[:1], pairs, relation)
    # (y, x) order on a 2x3 map puts x = 2 into y: refused, not silently clamped to the border.
    with pytest.raises(ValueError, match=r"pairs: a point lies outside the 3x2 depth map"):
        ranking_loss(depth[:1], torch.tensor([[[0.0, 2.0, 1.0, 1.0]]]), torch.tensor([[1]]))
    edge = ranking_loss(depth[:1], torch.tensor([[[-0.5, 1.5, 2.5, 0.0]]]), torch.tensor([[-1]]))
    assert float(edge) == pytest.approx(math.log1p(math.exp(1.0 - 2.0)))  # half-pixel margin reads the border


def test_ranking_loss_gradients_and_descent_reach_the_human_order() -> None:
    depth, pairs, relation = ranking_inputs()
    log_depth = torch.log(depth).clone().requires_grad_(True)
    loss = ranking_loss(torch.exp(log_depth), pairs, relation)
    loss.backward()
    grad = log_depth.grad
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    # Image 1, pair 1 says a (0,0) is farther than b (2,1): descent pushes z_a up and z_b down.
    assert grad[0, 0, 0, 0] < 0 and grad[0, 0, 1, 2] > 0
    before = whdr(torch.exp(log_depth[0, 0]).detach().numpy(), pairs[0].numpy(), relation[0].numpy())
    assert before["whdr"] == pytest.approx(2 / 3)  # the equal pair agrees (exact tie), the others not
    losses = []
    for _ in range(30):  # plain gradient descent on the log depth
        log_depth.grad = None
        loss = ranking_loss(torch.exp(log_depth), pairs, relation)
        loss.backward()
        with torch.no_grad():
            log_depth -= 2.0 * log_depth.grad
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.3 * losses[0] and all(b <= a + 1e-12 for a, b in itertools.pairwise(losses))
    ordered = pairs[0, [0, 2]].numpy(), relation[0, [0, 2]].numpy()
    assert whdr(torch.exp(log_depth[0, 0]).detach().numpy(), *ordered)["whdr"] == 0.0


# --- gradients of the dense losses ------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["silog", "densedepth"])
def test_dense_losses_give_finite_nonzero_gradients(kind: str) -> None:
    pred, gt = silog_batch()
    pred = pred.clamp(0.2, 9.0).requires_grad_(True)
    loss = depth_supervision_loss(pred, gt, kind, min_depth=MIN_D, max_depth=MAX_D)
    loss.backward()
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0
    assert pred.grad[0, 0, 1, 0] == 0.0  # the invalid pixel gets no gradient


# --- the loss module: supervised mode, DIW batches, mixing ----------------------------------------

H, W = 8, 12
CFG = {"min_depth": MIN_D, "max_depth": MAX_D}


def outputs_for(depth: torch.Tensor) -> dict:
    """('disp', 0) whose disp_to_depth is ``depth`` [B,1,H,W] (float32, requires grad)."""
    disp = (1 / depth - 1 / MAX_D) / (1 / MIN_D - 1 / MAX_D)
    return {("disp", 0): disp.float().requires_grad_(True)}


def tiny_batch(with_gt: bool = True, with_pairs: bool = False) -> tuple[dict, torch.Tensor]:
    """Colour frames -1, 0, 1 (the same texture), K, and ground truth / pairs; and the predicted depth."""
    rng = np.random.default_rng(5)
    image = torch.tensor(rng.uniform(0.2, 0.8, (1, 3, H, W)), dtype=torch.float32)
    K = torch.tensor([[10.0, 0, W / 2, 0], [0, 10.0, H / 2, 0], [0, 0, 1, 0], [0, 0, 0, 1]])[None]
    batch = {("color", f, 0): image for f in (-1, 0, 1)} | {"K": K, "inv_K": torch.linalg.inv(K)}
    gt = torch.tensor(rng.uniform(1.0, 8.0, (1, 1, H, W)), dtype=torch.float32)
    gt[0, 0, :2, :3] = 0.0  # unmeasured
    if with_gt:
        batch["depth_gt"] = gt
    if with_pairs:
        batch["pairs"] = torch.tensor([[[1.0, 1.0, 10.0, 6.0], [4.0, 2.0, 4.0, 7.0]]])
        batch["relation"] = torch.tensor([[1, -1]])
    depth = torch.tensor(rng.uniform(1.0, 8.0, (1, 1, H, W)), dtype=torch.float32)
    return batch, depth


@pytest.mark.parametrize("kind", ["silog", "densedepth", "log_l1", "abs_rel"])
def test_supervised_mode_uses_the_chosen_depth_loss(kind: str) -> None:
    batch, depth = tiny_batch()
    outputs = outputs_for(depth)
    criterion = SelfSupervisedLoss({**CFG, "mode": "supervised", "depth_loss": kind}, H, W)
    loss, diagnostics = criterion(batch, outputs)
    pred = disp_to_depth(outputs[("disp", 0)].detach(), MIN_D, MAX_D)[1]
    expected = depth_supervision_loss(pred, batch["depth_gt"], kind, min_depth=MIN_D, max_depth=MAX_D)
    assert float(loss.detach()) == pytest.approx(float(expected), rel=1e-5)
    assert diagnostics.stats["depth_sup"] == pytest.approx(float(expected), rel=1e-5)
    assert "ranking" not in diagnostics.stats and diagnostics.stats["photometric"] == 0.0
    loss.backward()
    grad = outputs[("disp", 0)].grad
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_supervised_mode_on_pairs_alone_is_the_ranking_loss() -> None:
    batch, depth = tiny_batch(with_gt=False, with_pairs=True)
    outputs = outputs_for(depth)
    loss, diagnostics = SelfSupervisedLoss({**CFG, "mode": "supervised"}, H, W)(batch, outputs)
    pred = disp_to_depth(outputs[("disp", 0)].detach(), MIN_D, MAX_D)[1]
    expected = float(ranking_loss(pred, batch["pairs"], batch["relation"]))
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-5)
    assert diagnostics.stats["ranking"] == pytest.approx(expected, rel=1e-5)
    assert "depth_sup" not in diagnostics.stats
    loss.backward()
    assert outputs[("disp", 0)].grad.abs().sum() > 0
    # Both kinds of label in one batch: the terms add up (ranking weighted by loss.ranking_weight).
    both, _ = tiny_batch(with_pairs=True)
    cfg = {**CFG, "mode": "supervised", "depth_loss": "silog", "ranking_weight": 0.5}
    total, _ = SelfSupervisedLoss(cfg, H, W)(both, outputs_for(depth))
    silog = float(silog_loss(pred, both["depth_gt"], 0.5))
    assert float(total.detach()) == pytest.approx(silog + 0.5 * expected, rel=1e-5)


@pytest.mark.parametrize("kind", ["silog", "densedepth"])
def test_depth_and_ranking_terms_mix_into_the_self_supervised_loss(kind: str) -> None:
    batch, depth = tiny_batch(with_pairs=True)
    plain = {k: v for k, v in batch.items() if k not in ("depth_gt", "pairs", "relation")}
    identity = torch.eye(4)[None]
    cfg = {**CFG, "automask": False, "dipe": False, "depth_loss": kind, "depth_weight": 0.3}
    cfg["ranking_weight"] = 0.2
    criterion = SelfSupervisedLoss(cfg, H, W)

    def run(b: dict) -> tuple[float, dict]:
        outputs = outputs_for(depth) | {("cam_T_cam", 0, f): identity for f in (-1, 1)}
        loss, diagnostics = criterion(b, outputs)
        return float(loss.detach()), diagnostics.stats

    with_labels, stats = run(batch)
    without, _ = run(plain)
    pred = disp_to_depth(outputs_for(depth)[("disp", 0)].detach(), MIN_D, MAX_D)[1]
    d_loss = depth_supervision_loss(pred, batch["depth_gt"], kind, min_depth=MIN_D, max_depth=MAX_D)
    r_loss = ranking_loss(pred, batch["pairs"], batch["relation"])
    assert with_labels - without == pytest.approx(0.3 * float(d_loss) + 0.2 * float(r_loss), rel=1e-4)
    assert stats["photometric"] > 0 and {"depth_sup", "ranking"} <= set(stats)


def test_batches_and_configs_the_supervised_mode_refuses() -> None:
    batch, depth = tiny_batch(with_gt=False)
    supervised = SelfSupervisedLoss({**CFG, "mode": "supervised"}, H, W)
    with pytest.raises(KeyError, match=r"needs batch\['depth_gt'\] or ordinal batch\['pairs'\]"):
        supervised(batch, outputs_for(depth))
    batch["pairs"] = torch.zeros(1, 1, 4)
    with pytest.raises(KeyError, match=r"batch\['pairs'\] needs batch\['relation'\]"):
        supervised(batch, outputs_for(depth))
    assert loss_config({})["silog_lambda"] == 0.5 and loss_config({})["densedepth_lambda"] == 0.1
    with pytest.raises(ValueError, match=r"loss\.silog_lambda=1\.5: expected a number in \[0, 1\]"):
        loss_config({"silog_lambda": 1.5})
    with pytest.raises(ValueError, match=r"loss\.ranking_weight=-1: expected a number >= 0"):
        loss_config({"ranking_weight": -1})
    with pytest.raises(ValueError, match=r"loss\.depth_loss='ranking': expected one of"):
        loss_config({"depth_loss": "ranking"})


def test_ordinal_and_scale_invariant_training_is_not_marked_metric():
    from training.losses import METRIC_TRAINING_MODES, training_mode

    def mode(data: dict, **loss: object) -> str:
        return training_mode({"data": data, "loss": {"mode": "supervised", **loss}})

    assert mode({"source": "nyu"}) == "supervised" and "supervised" in METRIC_TRAINING_MODES
    assert mode({"source": "nyu"}, depth_loss="silog") == "supervised"  # lambda 0.5 keeps the scale
    for unscaled in (mode({"source": "diw"}), mode({"source": "nyu"}, depth_loss="silog", silog_lambda=1.0)):
        assert unscaled in ("supervised_ordinal", "supervised_scale_invariant")
        assert unscaled not in METRIC_TRAINING_MODES
