"""DiPE's masking and weighted multi-scale (training/losses.py: ``masking: dipe``, ``multiscale:
dipe_weighted``) against literal computations of what DiPE's own ``trainer.py`` computes.

The references below are plain loops over images, frames and pixels in float64 numpy, written from
HalleyJiang/DiPE ``trainer.py`` (``generate_images_pred``, ``compute_losses``) and ``layers.py``, not
from training/losses.py: warp (back-project, project, bilinear with border padding), SSIM + L1,
per-frame masks, batch-wide normalisation, scale weights.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from training.checkpoint import RESUME_KEYS, load_checkpoint  # noqa: E402
from training.config import load_config  # noqa: E402
from training.geometry import transformation_from_parameters  # noqa: E402
from training.losses import (  # noqa: E402
    DEFAULT_LOSS_CFG,
    SelfSupervisedLoss,
    dipe_mask,
    dipe_reprojection_loss,
    loss_config,
)
from training.train import Trainer, build_parser, config_for  # noqa: E402

MIN_DEPTH, MAX_DEPTH = DEFAULT_LOSS_CFG["min_depth"], DEFAULT_LOSS_CFG["max_depth"]
FRAMES = (-1, 1)
# Decisions (band edges, minimum, auto-mask, image border) closer than this to their threshold could
# flip between the float32 loss and the float64 reference; the random cases below stay clear of it.
MARGIN = 1e-4


# --- the literal reference ------------------------------------------------------------------------


def literal_dssim(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(1 - SSIM) / 2 of 2-D arrays: 3x3 windows, reflection padding, C1 = 0.01², C2 = 0.03², in [0, 1]."""
    xp, yp = np.pad(x, 1, mode="reflect"), np.pad(y, 1, mode="reflect")
    out = np.zeros(x.shape)
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            wx, wy = xp[i : i + 3, j : j + 3], yp[i : i + 3, j : j + 3]
            mx, my = wx.mean(), wy.mean()
            vx, vy, cxy = ((wx - mx) ** 2).mean(), ((wy - my) ** 2).mean(), ((wx - mx) * (wy - my)).mean()
            ssim = ((2 * mx * my + 1e-4) * (2 * cxy + 9e-4)) / ((mx**2 + my**2 + 1e-4) * (vx + vy + 9e-4))
            out[i, j] = min(max((1 - ssim) / 2, 0.0), 1.0)
    return out


def literal_error(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """DiPE's ``compute_reprojection_loss`` of [3,h,w] images: 0.85 SSIM term + 0.15 L1, channel mean."""
    channels = [
        0.85 * literal_dssim(pred[c], target[c]) + 0.15 * np.abs(pred[c] - target[c]) for c in range(3)
    ]
    return np.mean(channels, axis=0)


def literal_warp(
    source: np.ndarray, depth: np.ndarray, T: np.ndarray, K: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float]:
    """(warped [3,h,w], inside [h,w], smallest distance of a projection to the image border).

    Pixel (u, v) at depth d goes to d K^-1 (u, v, 1), through T into the source camera, through K
    onto its pixel (x, y); inside iff 0 <= x <= w-1 and 0 <= y <= h-1 (DiPE's -1 <= grid <= 1);
    the colour is bilinear at (x, y) clamped to the image (grid_sample, border, align_corners).
    """
    h, w = depth.shape
    inv_K, P = np.linalg.inv(K), (K @ T)[:3]
    warped, inside, margin = np.zeros(source.shape), np.zeros((h, w), bool), math.inf
    for v in range(h):
        for u in range(w):
            point = depth[v, u] * (inv_K[:3, :3] @ np.array([u, v, 1.0]))
            x, y, z = P @ np.append(point, 1.0)
            x, y = x / max(z, 1e-7), y / max(z, 1e-7)
            inside[v, u] = 0 <= x <= w - 1 and 0 <= y <= h - 1
            margin = min(margin, abs(x), abs(x - (w - 1)), abs(y), abs(y - (h - 1)))
            x, y = min(max(x, 0.0), w - 1), min(max(y, 0.0), h - 1)
            x0, y0 = math.floor(x), math.floor(y)
            x1, y1 = min(x0 + 1, w - 1), min(y0 + 1, h - 1)
            ax, ay = x - x0, y - y0
            top = (1 - ax) * source[:, y0, x0] + ax * source[:, y0, x1]
            bottom = (1 - ax) * source[:, y1, x0] + ax * source[:, y1, x1]
            warped[:, v, u] = (1 - ay) * top + ay * bottom
    return warped, inside, margin


def literal_dipe(
    errors: np.ndarray,
    identity: np.ndarray | None,
    inside: np.ndarray | None,
    lower: float,
    upper: float,
    minimum: bool = True,
) -> tuple[float, np.ndarray, dict[str, np.ndarray], float]:
    """DiPE's ``compute_losses`` masking, pixel by pixel: (loss, masks, the four parts, decision margin).

    ``errors``, ``identity``, ``inside``: [B,S,h,w]. Per image b: mu and the unbiased sd over all
    frames' pixels. Per frame f and pixel: inside x (e_f <= min over frames + 1e-7, if ``minimum``)
    x (e_f < identity_f) x (mu - lower sd < e_f < mu + upper sd). Loss: sum over f of sum over (b, pixels)
    of mask e_f / (sum of mask + 1e-7).
    """
    B, S, h, w = errors.shape
    parts = {name: np.ones(errors.shape) for name in ("inside", "minimum", "automask", "band")}
    margin = math.inf
    for b in range(B):
        values = [errors[b, f, i, j] for f in range(S) for i in range(h) for j in range(w)]
        mu = sum(values) / len(values)
        sd = math.sqrt(sum((e - mu) ** 2 for e in values) / (len(values) - 1))
        for f in range(S):
            for i in range(h):
                for j in range(w):
                    e = errors[b, f, i, j]
                    others = [errors[b, g, i, j] for g in range(S) if g != f]
                    parts["inside"][b, f, i, j] = 1.0 if inside is None else inside[b, f, i, j]
                    parts["minimum"][b, f, i, j] = not minimum or e <= min([e, *others]) + 1e-7
                    parts["band"][b, f, i, j] = mu - lower * sd < e < mu + upper * sd
                    margin = min(margin, abs(e - (mu - lower * sd)), abs(e - (mu + upper * sd)))
                    margin = min(margin, *(abs(e - o) for o in others))
                    if identity is not None:
                        parts["automask"][b, f, i, j] = e < identity[b, f, i, j]
                        margin = min(margin, abs(e - identity[b, f, i, j]))
    masks = parts["inside"] * parts["minimum"] * parts["automask"] * parts["band"]
    loss = 0.0
    for f in range(S):
        numerator = sum(
            masks[b, f, i, j] * errors[b, f, i, j] for b in range(B) for i in range(h) for j in range(w)
        )
        loss += numerator / (masks[:, f].sum() + 1e-7)
    return loss, masks, parts, margin


def literal_smoothness(disp: np.ndarray, image: np.ndarray) -> float:
    """Edge-aware smoothness of DiPE's ``get_smooth_loss`` on disp / mean(disp), one image [h,w], [3,h,w]."""
    d = disp / (disp.mean() + 1e-7)
    h, w = d.shape
    gx = [
        abs(d[i, j] - d[i, j + 1]) * math.exp(-np.mean(np.abs(image[:, i, j] - image[:, i, j + 1])))
        for i in range(h)
        for j in range(w - 1)
    ]
    gy = [
        abs(d[i, j] - d[i + 1, j]) * math.exp(-np.mean(np.abs(image[:, i, j] - image[:, i + 1, j])))
        for i in range(h - 1)
        for j in range(w)
    ]
    return float(np.mean(gx) + np.mean(gy))


def literal_scale(
    case: dict, s: int, lower: float = 1.0, upper: float = 0.5
) -> tuple[float, np.ndarray, dict[str, np.ndarray], list[np.ndarray], float]:
    """DiPE's photometric loss of scale s at that scale's own resolution (DiPE's default scheme).

    Images 2^s x 2^s block means (area), K rows scaled by the size ratio (``mono_dataset.py``),
    depth from the scale's own disparity. (loss, masks, parts, warped per frame of image 0, margin)
    """
    disp = case["disp"][s].astype(np.float64)
    B, _, h, w = disp.shape
    K = case["K"].astype(np.float64).copy()
    H, W = case["images"][0].shape[-2:]
    K[0] *= w / W
    K[1] *= h / H

    def at_scale(image: np.ndarray) -> np.ndarray:
        return image.astype(np.float64).reshape(3, h, H // h, w, W // w).mean((2, 4))

    min_disp, max_disp = 1 / MAX_DEPTH, 1 / MIN_DEPTH
    errors, identity, inside = (np.zeros((B, len(FRAMES), h, w)) for _ in range(3))
    warped_0, margin = [], math.inf
    for b in range(B):
        depth = 1 / (min_disp + (max_disp - min_disp) * disp[b, 0])
        target = at_scale(case["images"][0][b])
        for k, f in enumerate(FRAMES):
            source = at_scale(case["images"][f][b])
            warped, inside[b, k], border = literal_warp(source, depth, case["T"][f][b].astype(np.float64), K)
            margin = min(margin, border)
            errors[b, k] = literal_error(warped, target)
            identity[b, k] = literal_error(source, target)  # DiPE adds no tie-break noise
            if b == 0:
                warped_0.append(warped)
    loss, masks, parts, band_margin = literal_dipe(errors, identity, inside, lower, upper)
    return loss, masks, parts, warped_0, min(margin, band_margin)


# --- the cases --------------------------------------------------------------------------------------


def random_case(seed: int, batch: int, height: int, width: int, scales: int) -> dict:
    """Random images, disparities and poses; K puts the principal point off the pixel grid."""
    rng = np.random.default_rng(seed)
    fx = 0.7 * width
    K = np.array([[fx, 0, 0.45 * width, 0], [0, fx, 0.4 * height, 0], [0, 0, 1, 0], [0, 0, 0, 1]], np.float32)
    images = {f: rng.random((batch, 3, height, width), dtype=np.float32) for f in (0, *FRAMES)}
    # Depths of ~1-5 m and ~0.3 m motions: flows of about a pixel, so border pixels leave the image.
    disp = [
        rng.uniform(0.02, 0.1, (batch, 1, height // 2**s, width // 2**s)).astype(np.float32)
        for s in range(scales)
    ]
    T = {}
    for f in FRAMES:
        axisangle = torch.tensor(rng.normal(0, 0.02, (batch, 3)), dtype=torch.float32)
        translation = torch.tensor(rng.normal(0, 0.3, (batch, 3)), dtype=torch.float32)
        T[f] = transformation_from_parameters(axisangle, translation).numpy()
    return {"images": images, "disp": disp, "K": K, "T": T}


def torch_inputs(case: dict) -> tuple[dict, dict]:
    """(batch, outputs) for ``SelfSupervisedLoss`` from a random case; the disparities require grad."""
    K = torch.tensor(case["K"]).expand(case["images"][0].shape[0], 4, 4)
    batch = {"K": K, "inv_K": torch.linalg.inv(K)}
    for f, image in case["images"].items():
        batch[("color", f, 0)] = batch[("color_aug", f, 0)] = torch.tensor(image)
    outputs = {("disp", s): torch.tensor(d, requires_grad=True) for s, d in enumerate(case["disp"])}
    for f in FRAMES:
        outputs[("cam_T_cam", 0, f)] = torch.tensor(case["T"][f])
    return batch, outputs


def assert_every_part_decides(parts: dict[str, np.ndarray]) -> None:
    """Each mask part alone removes some pixel that all the others keep: dropping any one would show."""
    for name, part in parts.items():
        others = np.prod([p for n, p in parts.items() if n != name], axis=0)
        assert ((part == 0) & (others == 1)).any(), f"{name} decides no pixel in this case"


# --- masking: dipe ---------------------------------------------------------------------------------


def test_dipe_masks_match_literal_per_frame_computation() -> None:
    rng = np.random.default_rng(0)
    errors = rng.uniform(0.0, 1.0, (2, 2, 6, 8))
    identity = rng.uniform(0.1, 1.1, (2, 2, 6, 8))
    inside = (rng.random((2, 2, 6, 8)) > 0.2).astype(np.float64)
    # Ties inside the band, inside the image, below the identity: both frames count as the minimum.
    errors[:, :, 0, :4], identity[:, :, 0, :4], inside[:, :, 0, :4] = 0.4, 5.0, 1.0
    # Otherwise kept, but equal to the unwarped frame's error: auto-masked (strict <).
    errors[0, :, 1, :3], identity[0, 0, 1, :3], inside[0, 0, 1, :3] = [[0.4], [0.9]], 0.4, 1.0
    errors[1] *= 3.0  # another image, other statistics
    loss, masks = dipe_reprojection_loss(
        torch.tensor(errors), torch.tensor(identity), torch.tensor(inside), True, 1.0, 0.5
    )
    expected_loss, expected_masks, parts, _ = literal_dipe(errors, identity, inside, 1.0, 0.5)
    np.testing.assert_array_equal(masks.numpy(), expected_masks)
    assert float(loss) == pytest.approx(expected_loss, rel=1e-12)
    assert expected_masks[:, :, 0, :4].all()
    assert not expected_masks[0, 0, 1, :3].any() and (parts["band"] * parts["minimum"])[0, 0, 1, :3].all()
    assert_every_part_decides(parts)
    # The normalisation is per frame over the whole batch, not per image.
    per_image = (
        sum(
            (expected_masks[b, f] * errors[b, f]).sum() / (expected_masks[b, f].sum() + 1e-7)
            for b in range(2)
            for f in range(2)
        )
        / 2
    )
    assert abs(per_image - expected_loss) > 1e-3


def test_dipe_band_uses_the_unbiased_sd_over_all_frames() -> None:
    rng = np.random.default_rng(1)
    errors = rng.uniform(0.0, 1.0, (1, 2, 3, 4))
    flat = errors.ravel()
    mu, sd_unbiased, sd_population = flat.mean(), flat.std(ddof=1), flat.std()
    # An upper ratio that puts one error between the two bands' edges: kept with the unbiased sd only.
    e = np.sort(flat[flat > mu])[0]
    upper = (e - mu) / ((sd_unbiased + sd_population) / 2)
    assert mu + upper * sd_population < e < mu + upper * sd_unbiased
    at = np.argwhere(errors == e)[0]
    band = dipe_mask(torch.tensor(errors), 1.0, upper, unbiased=True).numpy()
    assert band[tuple(at)] == 1.0 and dipe_mask(torch.tensor(errors), 1.0, upper).numpy()[tuple(at)] == 0.0
    _, masks = dipe_reprojection_loss(torch.tensor(errors), None, None, False, 1.0, upper)
    np.testing.assert_array_equal(masks.numpy(), literal_dipe(errors, None, None, 1.0, upper, False)[1])
    # Statistics pool both frames: frame 1 alone has another mean, and another mask.
    alone = dipe_mask(torch.tensor(errors[:, 1:]), 1.0, upper, unbiased=True).numpy()
    assert not np.array_equal(alone[0, 0], masks.numpy()[0, 1])


def test_dipe_masking_in_the_loss_matches_literal_warp_and_masks() -> None:
    case = random_case(seed=0, batch=2, height=6, width=8, scales=1)
    batch, outputs = torch_inputs(case)
    # dipe_pooled_min on: with masking: dipe it must not apply.
    config = {"masking": "dipe", "dipe_pooled_min": True, "smoothness_weight": 0.0, "velocity_weight": 0.0}
    loss, diagnostics = SelfSupervisedLoss(config, 6, 8)(batch, outputs)
    expected, masks, parts, warped, margin = literal_scale(case, 0)
    assert margin > MARGIN, f"case too close to a decision threshold ({margin:.2e})"
    for k, f in enumerate(FRAMES):
        np.testing.assert_allclose(diagnostics.warped[f][0].numpy(), warped[k], atol=1e-5)
    assert_every_part_decides(parts)
    np.testing.assert_array_equal(diagnostics.mask[:, 0].numpy(), masks.max(1))
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-4)
    loss.backward()
    assert torch.isfinite(outputs[("disp", 0)].grad).all() and outputs[("disp", 0)].grad.abs().sum() > 0


def test_dipe_automask_has_no_tie_break_noise() -> None:
    # Three identical frames, no motion: every warped error is >= the unwarped one (0). DiPE's strict
    # e_f < identity_f without noise drops every pixel; Monodepth2's noise keeps some.
    rng = np.random.default_rng(2)
    case = random_case(seed=2, batch=2, height=6, width=8, scales=1)
    case["images"] = dict.fromkeys((0, *FRAMES), rng.random((2, 3, 6, 8), dtype=np.float32))
    case["T"] = dict.fromkeys(FRAMES, np.eye(4, dtype=np.float32)[None].repeat(2, 0))
    config = {"smoothness_weight": 0.0, "velocity_weight": 0.0, "dipe_pooled_min": False}
    loss, diagnostics = SelfSupervisedLoss({**config, "masking": "dipe"}, 6, 8)(*torch_inputs(case))
    assert float(loss.detach()) == 0.0 and diagnostics.stats["mask_fraction"] == 0.0
    _, monodepth2 = SelfSupervisedLoss(config, 6, 8)(*torch_inputs(case))
    assert monodepth2.stats["mask_fraction"] > 0.1


# --- multiscale: dipe_weighted ----------------------------------------------------------------------


@pytest.mark.parametrize(("multiscale", "rate"), [("dipe_weighted", 0.25), ("own_resolution", 1.0)])
def test_own_resolution_multiscales_match_literal_weights_and_resolutions(
    multiscale: str, rate: float
) -> None:
    """DiPE's scheme (weight 0.25^s) and Monodepth's (weight 1): each scale at its own resolution."""
    case = random_case(seed=4, batch=2, height=8, width=12, scales=2)
    batch, outputs = torch_inputs(case)
    config = {"masking": "dipe", "multiscale": multiscale, "velocity_weight": 0.0}
    loss, diagnostics = SelfSupervisedLoss(config, 8, 12)(batch, outputs)
    total, margins = 0.0, []
    for s in range(2):
        photometric, _, _, _, margin = literal_scale(case, s)
        margins.append(margin)
        disp, h, w = case["disp"][s].astype(np.float64), 8 // 2**s, 12 // 2**s
        smooth = 0.0
        for b in range(2):
            image = case["images"][0][b].astype(np.float64).reshape(3, h, 2**s, w, 2**s).mean((2, 4))
            smooth += literal_smoothness(disp[b, 0], image) / 2  # the mean over the batch
        total += rate**s * photometric + 1e-3 / 2**s * smooth
        if s == 1:
            scale_1 = photometric
    assert min(margins) > MARGIN, f"case too close to a decision threshold ({min(margins):.2e})"
    assert float(loss.detach()) == pytest.approx(total / 2, rel=1e-4)
    # The weight matters at this tolerance: weighting scale 1 by 1 instead of 0.25 would be seen.
    assert abs(0.75 * scale_1 / 2) > 1e-3 * total / 2
    assert diagnostics.mask.shape == (2, 1, 8, 12) and set(diagnostics.depth) == {0, 1}
    assert diagnostics.depth[1].shape == (2, 1, 8, 12)  # reported at input resolution, as before
    full, _ = SelfSupervisedLoss({**config, "multiscale": "full_resolution"}, 8, 12)(*torch_inputs(case))
    assert abs(float(full.detach()) - float(loss.detach())) > 1e-3 * float(loss.detach())
    loss.backward()
    for s in range(2):
        assert outputs[("disp", s)].grad.abs().sum() > 0


# --- every option on a textured plane: forward, backward, the true depth wins -------------------------

PH, PW, FX, PLANE_Z, SHIFT_M = 16, 32, 20.0, 8.0, 0.8


def plane_inputs(depth: float) -> tuple[dict, dict]:
    """Two textured fronto-parallel planes at PLANE_Z; source f's camera sits f * SHIFT_M along x (2 px)."""
    v, u = torch.meshgrid(
        torch.arange(PH, dtype=torch.float32), torch.arange(PW, dtype=torch.float32), indexing="ij"
    )
    K = torch.tensor([[FX, 0, PW / 2, 0], [0, FX, PH / 2, 0], [0, 0, 1, 0], [0, 0, 0, 1]]).expand(2, 4, 4)
    batch = {"K": K, "inv_K": torch.linalg.inv(K)}
    flow = FX * SHIFT_M / PLANE_Z
    for f in (0, *FRAMES):
        images = []
        for phase in (0.0, 5.0):  # the second image: the texture shifted
            x = u + f * flow + phase
            red = 0.5 + 0.3 * torch.sin(0.7 * x) * torch.cos(0.3 * v)
            green = 0.5 + 0.3 * torch.cos(0.45 * x + 0.2 * v)
            images.append(torch.stack([red, green, 0.5 + 0.2 * torch.sin(0.25 * x - 0.5 * v)]))
        batch[("color", f, 0)] = batch[("color_aug", f, 0)] = torch.stack(images)
    disp_value = (1 / depth - 1 / MAX_DEPTH) / (1 / MIN_DEPTH - 1 / MAX_DEPTH)
    outputs = {
        ("disp", s): torch.full((2, 1, PH // 2**s, PW // 2**s), disp_value, requires_grad=True)
        for s in range(3)
    }
    for f in FRAMES:
        translation = torch.tensor([[-f * SHIFT_M, 0.0, 0.0]] * 2, requires_grad=True)
        outputs[("translation", 0, f)] = translation
        outputs[("cam_T_cam", 0, f)] = transformation_from_parameters(torch.zeros(2, 3), translation)
        outputs[("explainability", 0, f)] = torch.full((2, 1, PH, PW), 0.9, requires_grad=True)
    return batch, outputs


@pytest.mark.parametrize("multiscale", ["full_resolution", "dipe_weighted", "own_resolution"])
@pytest.mark.parametrize("masking", ["monodepth2", "dipe", "explainability"])
def test_every_masking_and_multiscale_trains_on_a_plane(masking: str, multiscale: str) -> None:
    criterion = SelfSupervisedLoss(
        {"masking": masking, "multiscale": multiscale, "velocity_weight": 0.0}, PH, PW
    )
    batch, outputs = plane_inputs(PLANE_Z)
    loss_true, diagnostics = criterion(batch, outputs)
    loss_wrong, _ = criterion(*plane_inputs(PLANE_Z / 2))
    assert float(loss_true.detach()) < 0.5 * float(loss_wrong.detach())
    assert diagnostics.mask.shape == (2, 1, PH, PW) and 0 < diagnostics.stats["mask_fraction"] <= 1
    loss_true.backward()
    grads = [outputs[("disp", s)].grad for s in range(3)] + [outputs[("translation", 0, 1)].grad]
    assert all(g is not None and torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads)
    if masking == "explainability":
        assert outputs[("explainability", 0, 1)].grad.abs().sum() > 0


# --- the old key and old checkpoints ---------------------------------------------------------------


def old_loss_config(**changes: object) -> dict:
    """A loss section as checkpoints stored it before: key ``dipe``, no ``multiscale``."""
    old = {
        ("dipe" if k == "dipe_pooled_min" else k): v for k, v in DEFAULT_LOSS_CFG.items() if k != "multiscale"
    }
    return {**old, **changes}


def test_old_dipe_key_still_validates_as_dipe_pooled_min() -> None:
    for value in (True, False):
        cfg = loss_config(old_loss_config(dipe=value))
        assert cfg["dipe_pooled_min"] is value and "dipe" not in cfg
        assert cfg["masking"] == "monodepth2" and cfg["multiscale"] == "full_resolution"
        assert loss_config({"dipe": value}) == loss_config({"dipe_pooled_min": value})
    assert loss_config({"dipe": False, "dipe_pooled_min": False})["dipe_pooled_min"] is False
    with pytest.raises(ValueError, match=r"loss.dipe=True \(old name of loss.dipe_pooled_min\)"):
        loss_config({"dipe": True, "dipe_pooled_min": False})
    with pytest.raises(ValueError, match=r"loss\.multiscale='dipe'"):
        loss_config({"multiscale": "dipe"})
    assert loss_config({})["masking"] == "monodepth2" and loss_config({})["dipe_pooled_min"] is False
    # The old key switches the same loss term; off by default.
    criterion = {
        name: SelfSupervisedLoss({"automask": False, **cfg}, PH, PW)
        for name, cfg in [("old", {"dipe": True}), ("new", {"dipe_pooled_min": True}), ("default", {})]
    }
    losses = {name: float(c(*plane_inputs(PLANE_Z / 2))[0].detach()) for name, c in criterion.items()}
    assert losses["old"] == losses["new"] and abs(losses["old"] - losses["default"]) > 1e-3 * losses["old"]


def test_dipe_run_trains_and_an_old_checkpoint_resumes(tmp_path: Path, kitti_root: Path) -> None:
    threads = torch.get_num_threads()
    out_dir = tmp_path / "run"
    overrides = [
        f"data.root={kitti_root}",
        "data.drives=[2011_09_26/2011_09_26_drive_0001_sync]",
        "data.height=64",
        "data.width=128",
        "data.num_workers=0",
        "train.batch_size=2",
        "train.max_steps=1",
        f"train.out_dir={out_dir}",
        "train.threads=1",
        "train.progress=false",
        "train.tensorboard=false",
        "loss.masking=dipe",
        "loss.multiscale=dipe_weighted",
    ]
    try:
        summary = Trainer(load_config(None, overrides)).run()
        assert summary.steps == 1
        last = out_dir / "checkpoints" / "last.pt"
        ckpt = load_checkpoint(last, RESUME_KEYS)
        assert ckpt["config"]["loss"]["masking"] == "dipe"
        assert ckpt["config"]["loss"]["multiscale"] == "dipe_weighted"
        # The same checkpoint as an older version wrote it: the old loss keys, no multiscale.
        ckpt["config"]["loss"] = old_loss_config(dipe=False)
        old = tmp_path / "old.pt"
        torch.save(ckpt, old)
        args = build_parser().parse_args(["--resume", str(old), "train.max_steps=2"])
        trainer = Trainer(config_for(args), resume=args.resume)
        assert trainer.config["loss"]["dipe_pooled_min"] is False
        assert trainer.config["loss"]["multiscale"] == "full_resolution"
        assert trainer.run().steps == 2
    finally:
        torch.set_num_threads(threads)
