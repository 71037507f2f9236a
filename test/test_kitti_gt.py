"""Ground-truth export for the Eigen evaluation (training/kitti_gt.py): its npz format, Monodepth2's
format, and agreement with the drive's readers."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from training.kitti_gt import load_gt_depths

DRIVE = "2011_09_26/2011_09_26_drive_0001_sync"


def test_gt_npz_round_trip_and_monodepth2_format(tmp_path: Path) -> None:
    maps = [np.random.default_rng(i).random((3, 5)).astype(np.float32) for i in range(2)]
    ours = tmp_path / "ours.npz"
    with ours.open("wb") as f:
        np.savez_compressed(f, lines=np.array(["a 1 l", "b 2 r"]), gt_00000=maps[0], gt_00001=maps[1])
    loaded, lines = load_gt_depths(ours)
    assert lines == ["a 1 l", "b 2 r"]
    np.testing.assert_array_equal(loaded[1], maps[1])
    # Monodepth2's export_gt_depth writes an object array under "data".
    legacy = tmp_path / "gt_depths.npz"
    data = np.empty(2, dtype=object)
    data[0], data[1] = maps[0], maps[1]
    np.savez_compressed(legacy, data=data)
    loaded, lines = load_gt_depths(legacy)
    assert lines is None and len(loaded) == 2
    np.testing.assert_array_equal(loaded[0], maps[0])


def test_kitti_gt_export_matches_the_readers(tmp_path: Path, kitti_root: Path, sim_drive) -> None:
    from training.datasets import SplitEntry, write_split_file
    from training.kitti_gt import main as kitti_gt_main

    split = write_split_file(tmp_path / "test.txt", [SplitEntry(DRIVE, 2, "l"), SplitEntry(DRIVE, 7, "l")])
    for source in ("velodyne", "dense"):
        out = tmp_path / f"gt_{source}.npz"
        assert kitti_gt_main(["--data-root", str(kitti_root), "--split", str(split), "--source", source,
                              "--out", str(out)]) == 0  # fmt: skip
        maps, lines = load_gt_depths(out)
        assert lines == [f"{DRIVE} 2 l", f"{DRIVE} 7 l"]
        truth = sim_drive.frame(7).depth
        gt = maps[1]
        assert gt.shape == truth.shape
        valid = gt > 0
        if source == "dense":
            np.testing.assert_allclose(gt[valid], truth[valid], atol=1 / 256)  # 1/256 m PNG steps
        else:
            assert 0.01 < valid.mean() < 0.6  # LiDAR is sparse, and agrees with the rendered depth
            assert np.median(np.abs(gt[valid] - truth[valid]) / truth[valid]) < 0.02
    assert kitti_gt_main(["--data-root", str(tmp_path), "--split", str(split), "--out", str(out)]) == 2
