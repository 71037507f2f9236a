"""Ordinal pairs from dense ground truth (training/diw_pairs.py), DIW's CSV writer, and depth-eval's
DIW protocol on hand-computed cases."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from training.datasets.diw import DiwDataset, DiwPair, read_diw_csv, write_diw_csv
from training.diw_pairs import main as pairs_main
from training.diw_pairs import sample_ordinal_pairs

DRIVE = "2011_09_26/2011_09_26_drive_0001_sync"
NO_AUG = {"flip_prob": 0.0, "color_prob": 0.0}


def test_pairs_are_ordered_by_the_ground_truth_and_half_lie_on_mirrored_rows() -> None:
    rng = np.random.default_rng(0)
    depth = np.exp(rng.uniform(0.0, 3.0, size=(24, 40))).astype(np.float32)
    depth[:4] = 0.0  # no ground truth in the top rows
    pairs = sample_ordinal_pairs(depth, rng, 40, min_ratio=1.05)
    assert pairs.shape == (40, 5)
    y_a, x_a, y_b, x_b, relation = (pairs[:, i] for i in range(5))
    d_a, d_b = depth[y_a - 1, x_a - 1], depth[y_b - 1, x_b - 1]  # 1-based, as DIW writes them
    assert (d_a > 0).all() and (d_b > 0).all()
    assert np.array_equal(relation, np.where(d_a > d_b, 1, -1))
    assert (np.maximum(d_a / d_b, d_b / d_a) >= 1.05).all()
    on_rows = pairs[:20]
    assert np.array_equal(on_rows[:, 0], on_rows[:, 2])
    assert np.array_equal(on_rows[:, 1] + on_rows[:, 3], [41] * 20)  # x_b = W + 1 - x_a, 1-based


def test_a_flat_or_empty_map_gives_fewer_pairs_not_wrong_ones() -> None:
    rng = np.random.default_rng(1)
    assert len(sample_ordinal_pairs(np.full((8, 8), 5.0, np.float32), rng, 10)) == 0  # no order anywhere
    assert len(sample_ordinal_pairs(np.zeros((8, 8), np.float32), rng, 10)) == 0  # no ground truth
    with pytest.raises(ValueError, match=r"min_ratio=1\.0: expected > 1"):
        sample_ordinal_pairs(np.ones((8, 8), np.float32), rng, 10, min_ratio=1.0)


def test_pairs_from_a_drive_round_trip_through_the_diw_reader(tmp_path: Path, kitti_root: Path) -> None:
    from depth_node.data.kitti import read_depth_png

    csv = tmp_path / "pairs.csv"
    argv = ["--data-root", str(kitti_root), "--drives", DRIVE, "--pairs-per-frame", "3", "--out", str(csv)]
    assert pairs_main(argv) == 0
    samples = read_diw_csv(csv, kitti_root)
    assert not Path(csv.read_text().splitlines()[0]).is_absolute()  # relative to the data root
    drive_dir = kitti_root / DRIVE
    frames = len(list((drive_dir / "image_02" / "data").iterdir()))
    assert len(samples) == 3 * frames
    for pair in samples[:12]:  # the label is the ground truth's order at the written pixels
        depth = read_depth_png(drive_dir / "proj_depth" / "groundtruth" / "image_02" / pair.image.name)
        assert (depth.shape[1], depth.shape[0]) == (pair.width, pair.height)
        d_a, d_b = depth[pair.y_a - 1, pair.x_a - 1], depth[pair.y_b - 1, pair.x_b - 1]
        assert pair.relation == (1 if d_a > d_b else -1)
    dataset = DiwDataset(kitti_root, csv, 64, 192, augment=NO_AUG)  # one sample per frame, its 3 pairs
    assert len(dataset) == frames and dataset.max_pairs == 3
    batch = dataset[0]
    assert batch["pairs"].shape == (3, 4) and batch["relation"].tolist() == [p.relation for p in samples[:3]]


def test_depth_eval_diw_protocol_by_hand(tmp_path: Path, kitti_root: Path, capsys) -> None:
    """A model whose depth grows with brightness, on an image dark on the left and bright on the right:
    of the two pairs "left nearer" agrees and "left farther" disagrees, so pair accuracy is 0.5."""
    from onnx_models import make_linear_depth_model

    from training.evaluate import main as eval_main

    image = np.zeros((48, 64, 3), np.uint8)
    image[:, 32:] = 200
    cv2.imwrite(str(tmp_path / "half.png"), image)
    pairs = [DiwPair(tmp_path / "half.png", 24, 8, 24, 56, relation, 64, 48) for relation in (-1, 1)]
    csv = write_diw_csv(tmp_path / "test.csv", pairs, tmp_path)
    model = make_linear_depth_model(tmp_path / "lin.onnx", 24, 32, a=2.0, b=30.0)
    out_dir = tmp_path / "eval"
    argv = ["--onnx", str(model), "--protocol", "diw", "--data-root", str(tmp_path), "--split", str(csv),
            "--train-root", str(kitti_root), "--train-drives", DRIVE, "--out-dir", str(out_dir)]  # fmt: skip
    assert eval_main(argv) == 0
    result = json.loads((out_dir / "metrics.json").read_text())
    assert result["protocol"] == "diw"
    assert result["model"] == {"whdr": 0.5, "pair_accuracy": 0.5, "pairs": 2.0}
    assert set(result) >= {"layout"}  # the training drive's average layout, scored on the same pairs
    assert "pair accuracy" in capsys.readouterr().out
    assert eval_main(["--onnx", str(model), "--protocol", "diw", "--data-root", str(tmp_path),
                      "--drives", DRIVE]) == 2  # fmt: skip
    assert "--protocol diw needs --split" in capsys.readouterr().err
