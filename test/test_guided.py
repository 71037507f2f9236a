"""The two-frame model that searches the frames around the single-frame depth
(training/networks/guided.py, training/checkpoint.py ``guided_net_from_checkpoint``, depth-eval --guided).

The geometry is checked on a textured plane seen from a camera that moved sideways by a known amount:
the matched depth is the plane's, whatever the prior inside the search range.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from training.checkpoint import (
    guided_net_from_checkpoint,
    load_checkpoint,
    save_checkpoint,
    two_frame_net_from_checkpoint,
)
from training.evaluate import build_parser
from training.export import export_onnx, guided_metadata
from training.export import main as export_main
from training.networks import (
    GUIDED_PRIORS,
    build_depth_net,
    build_multi_depth_net,
    build_pose_net,
    multi_frame_config,
)
from training.networks.guided import GuidedTwoFrameNet, box_all, box_mean, guided_depth, guided_hypotheses
from training.predictors import CheckpointPredictor

HEIGHT, WIDTH = 48, 96
FX = 0.58  # normalised, KITTI's
PLANE_DEPTH = 10.0
SHIFT_PX = 4  # the plane's parallax between the two frames


class ConstantDepth(nn.Module):
    """A depth net whose prediction is one depth everywhere (``DepthNet.predict_depth``'s signature)."""

    def __init__(self, depth: float) -> None:
        super().__init__()
        self.depth = depth

    def predict_depth(self, image: Tensor) -> Tensor:
        return torch.full((image.shape[0], 1, *image.shape[-2:]), self.depth)


class KnownMotion(nn.Module):
    """A pose net that reports one motion: the earlier camera ``offset`` metres along x from the later
    (``PoseNet.forward``'s signature and Monodepth2's convention)."""

    def __init__(self, offset: float) -> None:
        super().__init__()
        self.offset = offset

    def forward(self, earlier: Tensor, later: Tensor) -> tuple[Tensor, Tensor]:
        translation = torch.tensor([[-self.offset, 0.0, 0.0]]).expand(later.shape[0], 3)
        return torch.zeros(later.shape[0], 3), translation


def textured_pair(height: int = HEIGHT, width: int = WIDTH) -> tuple[Tensor, Tensor]:
    """(image, previous frame) [1,3,H,W] of a fronto-parallel plane at ``PLANE_DEPTH``: the previous
    camera sat to the left, so the plane appears ``SHIFT_PX`` pixels further right in it."""
    generator = torch.Generator().manual_seed(0)
    texture = F.avg_pool2d(torch.rand(1, 3, height, width + SHIFT_PX, generator=generator), 3, 1, 1)
    return texture[..., SHIFT_PX:], texture[..., :width]


def plane_net(prior: float, offset: float, **options) -> GuidedTwoFrameNet:
    baseline = SHIFT_PX * PLANE_DEPTH / (FX * WIDTH)  # metres: the parallax fx t / Z is SHIFT_PX
    intrinsics = (FX, FX * WIDTH / HEIGHT, 0.5, 0.5)  # square pixels
    return GuidedTwoFrameNet(
        ConstantDepth(prior), KnownMotion(offset * baseline), intrinsics, HEIGHT, WIDTH, **options
    )


def test_hypotheses_are_evenly_spaced_in_log_depth_around_the_prior() -> None:
    prior = torch.tensor([[[[4.0, 10.0]]]])
    hypotheses = guided_hypotheses(prior, 2.0, 5)
    assert hypotheses.shape == (1, 5, 1, 2)
    np.testing.assert_allclose(hypotheses[0, :, 0, 1], 10.0 * 2.0 ** np.linspace(-1, 1, 5), rtol=1e-6)
    np.testing.assert_allclose(hypotheses[0, :, 0, 0] / hypotheses[0, :, 0, 1], 0.4, rtol=1e-6)


def test_guided_depth_is_the_geometric_mean_of_prior_and_the_parabola_vertex() -> None:
    ratio, count = 2.0, 5
    step = 2 * math.log(ratio) / (count - 1)
    prior = torch.full((1, 1, 1, 4), 8.0)
    # Pixel 0: a symmetric minimum at hypothesis 3; pixel 1: a parabola with its vertex at 1.25;
    # pixel 2: the lowest cost at the range's end (no vertex); pixel 3: not usable.
    k = torch.arange(count, dtype=torch.float32)
    costs = [(k - 3.0).abs(), (k - 1.25) ** 2, 4.0 - k, torch.zeros(count)]
    cost = torch.stack(costs, dim=-1).view(1, count, 1, 4)
    usable = torch.tensor([True, True, True, False]).view(1, 1, 1, 4)
    depth = guided_depth(prior, cost, usable, ratio)[0, 0, 0]
    matched = [3.0, 1.25, 4.0]
    expected = [8.0 * math.exp(0.5 * (m * step - math.log(ratio))) for m in matched] + [8.0]
    np.testing.assert_allclose(depth.numpy(), expected, rtol=1e-5)


@pytest.mark.parametrize("prior", [7.5, 13.0])
def test_a_plane_seen_from_a_moved_camera_is_pulled_to_its_true_depth(prior: float) -> None:
    image, prev = textured_pair()
    with torch.no_grad():
        depth = plane_net(prior, 1.0, ratio=2.0, count=17, window=5)(image, prev)[0, 0]
    # Where every hypothesis lands inside the previous frame (the nearest moves a pixel up to 11 px
    # right), the match is the plane: the output is sqrt(prior x its depth).
    interior = depth[8:-8, 8:-16]
    np.testing.assert_allclose(interior.numpy(), math.sqrt(prior * PLANE_DEPTH), rtol=0.03)


def test_wide_frames_are_searched_pooled_and_the_correction_upsampled() -> None:
    image, prev = textured_pair()
    net = plane_net(7.5, 1.0, ratio=2.0, count=17, window=5, search_width=WIDTH // 2)
    assert net.search_factor == 2
    with torch.no_grad():
        depth = net(image, prev)[0, 0]
        same = net(image, image)
    # The plane's parallax is 2 px in the pooled frames: still pulled to sqrt(prior x its depth), but
    # for the last pixel or two before the prior takes over, where the upsampled correction fades.
    np.testing.assert_allclose(depth[8:-8, 8:-18].numpy(), math.sqrt(7.5 * PLANE_DEPTH), rtol=0.03)
    assert torch.equal(same, torch.full_like(same, 7.5))


def test_the_box_filters_are_the_two_dimensional_ones() -> None:
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(2, 3, 9, 14, generator=gen)
    np.testing.assert_allclose(
        box_mean(x, 5).numpy(), F.avg_pool2d(x, 5, 1, 2, count_include_pad=False).numpy(), rtol=1e-5
    )
    mask = (torch.rand(2, 1, 9, 14, generator=gen) > 0.1).float()
    assert torch.equal(box_all(mask, 5), -F.max_pool2d(-mask, 5, 1, 2) > 0)


def test_the_prior_stays_where_the_frames_cannot_tell_the_hypotheses_apart() -> None:
    image, prev = textured_pair()
    with torch.no_grad():
        # The same frame twice with no motion: every hypothesis lands on the pixel itself.
        same = plane_net(13.0, 0.0)(image, image)
        # A camera that moved a hundredth as far: the hypotheses land within a pixel of each other.
        tiny = plane_net(13.0, 0.01, min_parallax=1.0)(image, prev)
    assert torch.equal(same, torch.full_like(same, 13.0))
    assert torch.equal(tiny, torch.full_like(tiny, 13.0))


def test_the_automask_keeps_the_prior_where_the_pixel_did_not_move() -> None:
    image, _ = textured_pair()
    with torch.no_grad():
        # The camera reports motion but the picture did not change (a car driving with the camera).
        masked = plane_net(13.0, 1.0, automask=True)(image, image)
        unmasked = plane_net(13.0, 1.0, automask=False)(image, image)
    assert torch.equal(masked, torch.full_like(masked, 13.0))
    assert not torch.allclose(unmasked, masked)


def test_bad_options_are_refused_in_one_line() -> None:
    with pytest.raises(ValueError, match="odd window"):
        plane_net(10.0, 1.0, window=4)
    with pytest.raises(ValueError, match="ratio > 1"):
        plane_net(10.0, 1.0, ratio=1.0)


NET_HEIGHT, NET_WIDTH = 64, 96  # the networks take multiples of 32


def _multi_frame_checkpoint(path: Path) -> Path:
    torch.manual_seed(0)
    model_cfg = multi_frame_config({"backbone": "stdc1", "multi_frame": True, "num_depth_bins": 8})
    student = build_multi_depth_net(model_cfg)
    student.set_intrinsics(np.array([[0.58, 0, 0.5], [0, 1.92, 0.5], [0, 0, 1]]), (1, 1))
    return save_checkpoint(
        path,
        {
            "config": {"model": model_cfg, "data": {"height": NET_HEIGHT, "width": NET_WIDTH}},
            "depth_net": build_depth_net(model_cfg).state_dict(),
            "pose_net": build_pose_net(model_cfg).state_dict(),
            "multi_depth_net": student.state_dict(),
        },
    )


def test_a_checkpoint_becomes_a_guided_two_frame_model_for_depth_eval(tmp_path: Path) -> None:
    path = _multi_frame_checkpoint(tmp_path / "multi.pt")
    net = guided_net_from_checkpoint(load_checkpoint(path))
    # The recorded camera, the pose net's frame size of a multi-frame run.
    np.testing.assert_allclose(net.K[0, 0, 0], 0.58 * NET_WIDTH, rtol=1e-6)
    assert net.pose_downsample == 2
    predictor = CheckpointPredictor(path, device="cpu", guided="single_frame")
    assert predictor.frames == 2

    rng = np.random.default_rng(0)
    rgb, prev = (rng.integers(0, 256, (NET_HEIGHT, NET_WIDTH, 3), dtype=np.uint8) for _ in range(2))
    image, previous = (torch.from_numpy(predictor._network_input(x)) for x in (rgb, prev))
    with torch.no_grad():
        expected = net(image, previous)[0, 0].numpy()
        prior = net.depth_net.predict_depth(image)[0, 0].numpy()
    np.testing.assert_allclose(predictor.predict(rgb, prev), expected, rtol=1e-5)
    np.testing.assert_allclose(predictor.predict(rgb), prior, rtol=1e-5)  # first frame: the prior


def test_a_single_frame_checkpoint_needs_its_camera(tmp_path: Path) -> None:
    model_cfg = {"backbone": "stdc1"}
    path = save_checkpoint(
        tmp_path / "single.pt",
        {
            "config": {"model": model_cfg, "data": {"height": NET_HEIGHT, "width": NET_WIDTH}},
            "depth_net": build_depth_net(model_cfg).state_dict(),
            "pose_net": build_pose_net(model_cfg).state_dict(),
        },
    )
    ckpt = load_checkpoint(path)
    with pytest.raises(ValueError, match="records no camera"):
        guided_net_from_checkpoint(ckpt)
    net = guided_net_from_checkpoint(ckpt, intrinsics=(0.58, 1.92, 0.5, 0.5))
    assert net.pose_downsample == 1  # a single-frame run's pose net sees full-size frames
    predictor = CheckpointPredictor(
        path, device="cpu", guided="single_frame", intrinsics=(0.58, 1.92, 0.5, 0.5)
    )
    assert predictor.frames == 2
    np.testing.assert_allclose(predictor.net.K[0, 1, 1], 1.92 * NET_HEIGHT, rtol=1e-6)


def test_the_student_is_searched_around_and_its_first_frame_is_the_students(tmp_path: Path) -> None:
    path = _multi_frame_checkpoint(tmp_path / "multi.pt")
    ckpt = load_checkpoint(path)
    net = guided_net_from_checkpoint(ckpt, prior="student")
    assert net.student is not None and json.loads(guided_metadata(net)["guided"])["prior"] == "student"
    image = torch.rand(1, 3, NET_HEIGHT, NET_WIDTH, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        # The same frame twice: no parallax, so the student's own first-frame depth.
        torch.testing.assert_close(net(image, image), two_frame_net_from_checkpoint(ckpt)(image, image))
    single = {key: value for key, value in ckpt.items() if key != "multi_depth_net"}
    with pytest.raises(ValueError, match="needs a multi-frame checkpoint"):
        guided_net_from_checkpoint(single, intrinsics=(0.58, 1.92, 0.5, 0.5), prior="student")
    with pytest.raises(ValueError, match="guided prior 'teacher'"):
        guided_net_from_checkpoint(ckpt, prior="teacher")
    # depth-eval offers the same priors (spelt out there: it runs ONNX models without torch).
    action = next(a for a in build_parser()._actions if a.dest == "guided")
    assert tuple(action.choices) == GUIDED_PRIORS


def test_a_guided_export_runs_in_the_depth_estimator(tmp_path: Path) -> None:
    prior = "single_frame"  # the student's export is the same path with the student in the graph
    import onnxruntime as ort

    from depth_node.runtime.estimator import DepthEstimator

    path = _multi_frame_checkpoint(tmp_path / "multi.pt")
    out = tmp_path / "guided.onnx"
    args = ["--checkpoint", str(path), "--out", str(out), "--guided", prior, "--latency-runs", "1"]
    assert export_main(args) == 0
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["image", "prev_image"]
    meta = session.get_modelmeta().custom_metadata_map
    search = json.loads(meta["guided"])
    assert meta["frames"] == "2" and search["prior"] == prior and search["window"] == 11
    np.testing.assert_allclose(search["intrinsics"], [0.58, 1.92, 0.5, 0.5], rtol=1e-6)
    card = out.with_suffix(".md").read_text()
    assert "| matching | guided: 9 depths per pixel" in card
    assert "| matching intrinsics | fx/W 0.5800," in card
    assert "(all but the worst 0.01 % of the pixels: argmins over near-equal costs) |" in card

    # The runtime runs it as a two-frame model; a pair with motion, and the first frame (fed twice).
    net = guided_net_from_checkpoint(load_checkpoint(path), prior=prior)
    image, prev = textured_pair(NET_HEIGHT, NET_WIDTH)
    estimator = DepthEstimator(out, providers=("cpu",), threads=1)
    assert estimator.info.frames == 2
    for previous in (prev, image):
        with torch.no_grad():
            reference = net(image, previous).numpy()
        depth = estimator.infer(image.numpy(), previous.numpy())
        close = np.abs(depth - reference) <= 1e-4 * reference
        assert close.mean() >= 1 - 1e-3  # an argmin over near-equal costs may fall the other way
    with pytest.raises(ValueError, match="model exports in fp32 only"):
        export_onnx(path, tmp_path / "half.onnx", fp16=True, verbose=False, guided=prior)
