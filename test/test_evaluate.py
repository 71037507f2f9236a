"""depth-eval (training/evaluate.py): model and baseline rows on hand-computed cases, the outputs, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from depth_node.metrics import resize_depth
from training.baselines import training_prior
from training.evaluate import EvalFrame, EvalOptions, evaluate_model, evaluate_predictions
from training.predictors import Predictor

NO_CROP = EvalOptions(garg_crop=False)


def test_constant_and_layout_baselines_hand_computed() -> None:
    gt = np.array([[1.0, 2.0], [4.0, 8.0]], dtype=np.float32)
    # Training prior from this very frame: median 3 m, layout = exactly its depths.
    prior = training_prior([gt], (2, 2), garg_crop=False)
    pred = gt * 3.0  # a perfect prediction up to scale
    result = evaluate_predictions([(gt, pred)], prior, options=NO_CROP, metric=True)
    ms, metric = result.median_scaled, result.metric
    assert ms["model"]["abs_rel"] == pytest.approx(0.0, abs=1e-6)
    # Constant, median-scaled: the median of {1,2,4,8} is 3 -> |gt-3|/gt = 2, 0.5, 0.25, 0.625.
    assert ms["constant"]["abs_rel"] == pytest.approx((2 + 0.5 + 0.25 + 0.625) / 4)
    assert ms["layout"]["abs_rel"] == pytest.approx(0.0, abs=1e-6)
    # Metric: the model is 3x too far -> abs_rel 2; the constant is the training median, 3 m.
    assert metric["model"]["abs_rel"] == pytest.approx(2.0)
    assert result.train_median_depth == pytest.approx(3.0)
    assert metric["constant"]["abs_rel"] == pytest.approx((2 + 0.5 + 0.25 + 0.625) / 4)
    assert metric["layout"]["abs_rel"] == pytest.approx(0.0, abs=1e-6)
    assert result.scale_ratio == pytest.approx(1 / 3)
    table = result.table()
    assert "constant (median-scaled)" in table and "layout (metric)" in table


def test_each_motion_region_scored_alone_with_the_whole_frame_scale() -> None:
    gt = np.array([[2.0, 2.0, 2.0], [2.0, 8.0, 4.0]], dtype=np.float32)
    # The car moving the camera's way (8 m) is predicted 2x too near, the oncoming one (4 m) right.
    pred = np.array([[1.0, 1.0, 1.0], [1.0, 2.0, 2.0]], dtype=np.float32)
    motion = np.array([[0, 0, 0], [0, 1, 2]], dtype=np.uint8)  # static, same_way, oncoming
    prior = training_prior([gt], (3, 2), garg_crop=False)
    result = evaluate_predictions(
        [(gt, pred), (gt, pred)], prior, options=NO_CROP, metric=True, motion=[motion, None]
    )
    regions = result.regions
    assert regions is not None and set(regions) == {"static", "same_way", "oncoming", "moving"}
    assert [regions[r]["pixels"] for r in ("static", "same_way", "oncoming", "moving")] == [4, 1, 1, 2]
    assert all(r["frames"] == 1 for r in regions.values())  # the frame without labels adds none
    # Whole-frame median scale 2/1 = 2: same way predicts 4 m for 8 m (0.5), oncoming 4 m for 4 m (0).
    assert regions["same_way"]["median_scaled"]["model"]["abs_rel"] == pytest.approx(0.5)
    assert regions["oncoming"]["median_scaled"]["model"]["abs_rel"] == pytest.approx(0.0)
    assert regions["moving"]["median_scaled"]["model"]["abs_rel"] == pytest.approx(0.25)
    assert regions["static"]["median_scaled"]["model"]["abs_rel"] == pytest.approx(0.0)
    # Constant: the frame's median (2 m) for 8 m; metric model: 2 m for 8 m.
    assert regions["same_way"]["median_scaled"]["constant"]["abs_rel"] == pytest.approx(0.75)
    assert regions["same_way"]["metric"]["model"]["abs_rel"] == pytest.approx(0.75)
    # The whole-frame rows are unchanged by the labels.
    assert result.median_scaled["model"]["abs_rel"] == pytest.approx(0.5 / 6)
    assert "model (same way, median-scaled)" in result.table()
    assert "layout (oncoming, metric)" in result.table()
    no_labels = evaluate_predictions([(gt, pred)], prior, options=NO_CROP, metric=True)
    assert no_labels.regions is None and no_labels.to_json()["regions"] is None
    with pytest.raises(ValueError, match=r"motion labels: expected values in \[0, 1, 2\].*got \[7\]"):
        evaluate_predictions([(gt, pred)], prior, options=NO_CROP, motion=[np.full((2, 3), 7, np.uint8)])
    with pytest.raises(ValueError, match=r"motion labels of shape \(3, 2\) for ground truth of \(2, 3\)"):
        evaluate_predictions([(gt, pred)], prior, options=NO_CROP, motion=[np.zeros((3, 2), np.uint8)])


def test_frames_without_ground_truth_are_skipped_for_all_methods() -> None:
    gt_empty = np.zeros((2, 2), dtype=np.float32)
    gt = np.full((2, 2), 5.0, dtype=np.float32)
    result = evaluate_predictions([(gt_empty, gt), (gt, gt)], None, options=NO_CROP)
    assert result.frames == 1
    assert result.metric is None
    assert set(result.median_scaled) == {"model", "constant"}  # the layout needs training GT
    with pytest.raises(ValueError, match="valid ground truth"):
        evaluate_predictions([(gt_empty, gt)], None, options=NO_CROP)


def test_resize_goes_through_disparity() -> None:
    # evaluate_model brings predictions to the ground truth's size with depth_node.metrics.resize_depth.
    depth = np.array([[1.0, 4.0]], dtype=np.float32)
    out = resize_depth(depth, 3, 1)
    # The middle pixel interpolates disparity (1 + 0.25) / 2 = 0.625 -> 1.6 m, not depth 2.5 m.
    assert out[0, 1] == pytest.approx(1.6, rel=1e-5)
    np.testing.assert_array_equal(resize_depth(depth, 2, 1), depth)


class _RampPredictor(Predictor):
    """A fake model: depth = 2x the true ramp, so median scaling recovers it exactly."""

    def __init__(self, truth: np.ndarray, metric: bool) -> None:
        self.truth = truth
        self.input_size = (truth.shape[1], truth.shape[0])
        self.metric = metric
        self.name = "ramp"

    def predict_batch(self, images: np.ndarray) -> np.ndarray:
        return (self.truth * 2.0)[None]


def test_evaluate_model_writes_json_and_grid(tmp_path: Path) -> None:
    h, w = 64, 96
    truth = np.tile(np.linspace(2.0, 40.0, h, dtype=np.float32)[:, None], (1, w))
    rgb = np.full((h, w, 3), 128, np.uint8)
    frames = [EvalFrame(f"frame {i}", lambda: rgb, lambda: truth) for i in range(3)]
    prior = training_prior([np.full((h, w), 10.0, np.float32)], (w, h))
    result = evaluate_model(
        _RampPredictor(truth, metric=True), frames, prior, out_dir=tmp_path, progress=False
    )
    assert result.median_scaled["model"]["abs_rel"] == pytest.approx(0.0, abs=1e-5)
    assert result.metric["model"]["abs_rel"] == pytest.approx(1.0, rel=1e-4)  # 2x too far
    assert result.scale_ratio == pytest.approx(0.5)
    data = json.loads((tmp_path / "metrics.json").read_text())
    assert data["frames"] == 3 and data["median_scaled"]["constant"]["abs_rel"] > 0.1
    grid = cv2.imread(str(tmp_path / "grid.png"))
    assert grid is not None and grid.shape[1] == 4 * 640 and grid.shape[0] == 3 * round(h * 640 / w)


DRIVE = "2011_09_26/2011_09_26_drive_0001_sync"


def _tiny_checkpoint(path: Path) -> Path:
    """An untrained checkpoint with the trainer's layout (what export and depth-eval read)."""
    import torch

    from training.config import load_config
    from training.networks import build_depth_net
    from training.train import resolve_config

    torch.manual_seed(0)
    config = resolve_config(
        load_config(None, ["data.height=64", "data.width=192", "model.backbone=resnet18"])
    )
    torch.save({"config": config, "depth_net": build_depth_net(config["model"]).state_dict(),
                "training_mode": "self_supervised"}, path)  # fmt: skip
    return path


def test_depth_eval_cli_checkpoint_and_onnx_agree(tmp_path: Path, kitti_root: Path, capsys) -> None:
    from training.evaluate import main as eval_main
    from training.export import export_onnx

    ckpt = _tiny_checkpoint(tmp_path / "tiny.pt")
    onnx_path = export_onnx(ckpt, tmp_path / "tiny.onnx", latency_runs=1, verbose=False)
    results = {}
    for flag, model in (("--checkpoint", ckpt), ("--onnx", onnx_path)):
        out_dir = tmp_path / flag.strip("-")
        argv = [flag, str(model), "--data-root", str(kitti_root), "--drives", DRIVE, "--train-drives", DRIVE,
                "--out-dir", str(out_dir), "--max-frames", "4", "--grid-frames", "2"]  # fmt: skip
        assert eval_main(argv) == 0
        printed = capsys.readouterr().out
        assert "constant (median-scaled)" in printed and "layout (median-scaled)" in printed
        assert "(metric)" not in printed  # a self-supervised model is only median-scaled
        results[flag] = json.loads((out_dir / "metrics.json").read_text())
        assert cv2.imread(str(out_dir / "grid.png")) is not None
    a, b = results["--checkpoint"], results["--onnx"]
    assert a["frames"] == b["frames"] == 4
    # Same network, same frames: PyTorch and ONNX Runtime give the same scores.
    assert a["median_scaled"]["model"]["abs_rel"] == pytest.approx(
        b["median_scaled"]["model"]["abs_rel"], rel=1e-3
    )
    assert a["median_scaled"]["layout"] == b["median_scaled"]["layout"]


def test_depth_eval_nyu_protocol_on_a_labelled_mat(tmp_path: Path, capsys) -> None:
    """--protocol nyu: frames from NYU's labelled .mat and its splits, NYU's caps and extra metrics,
    the baselines from the training indices; a model predicting 2 m everywhere scores as computed."""
    import scipy.io
    from onnx_models import make_linear_depth_model
    from test_supervised_datasets import write_labelled_mat

    from training.evaluate import main as eval_main

    mat = tmp_path / "nyu_depth_v2_labeled.mat"
    write_labelled_mat(mat)  # 3 frames of 64x48; depth 2 m (frame 1: 3.25 m at one pixel)
    scipy.io.savemat(tmp_path / "splits.mat", {"trainNdxs": [[1], [3]], "testNdxs": [[2]]})
    model = make_linear_depth_model(
        tmp_path / "two.onnx", 48, 64, a=2.0, b=0.0, metadata={"training_mode": "supervised"}
    )
    splits = str(tmp_path / "splits.mat")
    argv = ["--onnx", str(model), "--protocol", "nyu", "--data-root", str(mat), "--split", splits,
            "--train-split", splits, "--out-dir", str(tmp_path / "eval")]  # fmt: skip
    assert eval_main(argv) == 0
    result = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert result["frames"] == 1 and result["protocol"]["name"] == "nyu"
    model_metric = result["metric"]["model"]
    # Test frame (index 2 = frame 1): 2 m truth except 3.25 m at (row 30, col 10), inside Eigen's crop.
    cropped = depth_node_nyu_crop_count(48, 64)
    assert model_metric["log10"] == pytest.approx(abs(np.log10(2.0 / 3.25)) / cropped, rel=1e-5)
    assert model_metric["mse"] == pytest.approx(1.25**2 / cropped, rel=1e-5)
    assert "log10" in capsys.readouterr().out


def depth_node_nyu_crop_count(height: int, width: int) -> int:
    from depth_node.metrics import nyu_crop_mask

    return int(nyu_crop_mask(height, width).sum())
