"""``depth-sim``: KITTI folders, bags and contact sheets of synthetic drives from the command line."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from depth_node.data import bag_convert, kitti
from depth_node.data.sim import cli as sim_cli

SIZE = ["--frames", "3", "--width", "160", "--height", "48"]


def test_depth_sim_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert sim_cli.main(["kitti", "--out", str(tmp_path / "kitti"), "--seeds", "1", "2", *SIZE]) == 0
    date_dir = tmp_path / "kitti" / "2011_09_26"
    drives = sorted(p.name for p in date_dir.iterdir() if p.is_dir())
    assert drives == ["2011_09_26_drive_0001_sync", "2011_09_26_drive_0002_sync"]
    assert kitti.frame_indices(date_dir / drives[1]) == [0, 1, 2]
    assert (
        sim_cli.main(["bag", "--out", str(tmp_path / "bag"), "--seed", "3", "--storage", "mcap", *SIZE]) == 0
    )
    assert bag_convert.bag_summary(tmp_path / "bag")["topics"]["/camera/image_raw"] == 3
    out = capsys.readouterr().out
    assert "2011_09_26_drive_0002_sync" in out and str(tmp_path / "bag") in out


def test_sheet_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sheet.png"
    assert sim_cli.main(["sheet", "--out", str(out), "--count", "2", *SIZE]) == 0
    assert "frames [0, 2]" in capsys.readouterr().out
    sheet = cv2.imread(str(out))
    assert sheet is not None and sheet.shape[0] == 2 * 48 and sheet.shape[1] > 2 * 160
    # An existing bag is a one-line error, not a traceback.
    (tmp_path / "bag").mkdir()
    assert sim_cli.main(["bag", "--out", str(tmp_path / "bag"), *SIZE]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("depth-sim bag: error:") and "exists already" in err and "\n" not in err


def test_stereo_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stereo = ["--stereo", "--baseline", "0.3"]
    assert sim_cli.main(["kitti", "--out", str(tmp_path / "kitti"), *stereo, *SIZE]) == 0
    date_dir = tmp_path / "kitti" / "2011_09_26"
    assert kitti.frame_indices(date_dir / "2011_09_26_drive_0001_sync", cam=3) == [0, 1, 2]
    assert kitti.stereo_baseline(date_dir) == pytest.approx(0.3)
    assert sim_cli.main(["bag", "--out", str(tmp_path / "bag"), "--stereo", *SIZE]) == 0
    topics = bag_convert.bag_summary(tmp_path / "bag")["topics"]
    assert topics["/camera_right/image_raw"] == topics["/camera_right/camera_info"] == 3
    capsys.readouterr()
    # A baseline without --stereo, or a bad one, is a one-line error.
    for argv, expected in (
        (["--baseline", "0.3"], "needs --stereo"),
        ([*stereo[:2], "-1"], "stereo_baseline"),
    ):
        assert sim_cli.main(["kitti", "--out", str(tmp_path / "bad"), *argv, *SIZE]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("depth-sim kitti: error:") and expected in err and "\n" not in err
    assert not (tmp_path / "bad").exists()
