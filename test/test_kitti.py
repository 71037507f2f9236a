"""KITTI raw layout: the synthetic writer read back with the readers, and real-KITTI text parsed."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from depth_node.data import kitti
from depth_node.geometry import make_transform

KITTI_STAMP = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{9}$")


def _monodepth2_velo_to_image(date_dir: Path, cam: int) -> np.ndarray:
    """P_velo2im exactly as Monodepth2's generate_depth_map composes it."""
    cam2cam = kitti.read_calib_file(date_dir / "calib_cam_to_cam.txt")
    velo2cam = kitti.read_calib_file(date_dir / "calib_velo_to_cam.txt")
    velo2cam = np.vstack((np.hstack((velo2cam["R"].reshape(3, 3), velo2cam["T"][..., None])), [0, 0, 0, 1.0]))
    R_cam2rect = np.eye(4)
    R_cam2rect[:3, :3] = cam2cam["R_rect_00"].reshape(3, 3)
    P_rect = cam2cam[f"P_rect_0{cam}"].reshape(3, 4)
    return P_rect @ R_cam2rect @ velo2cam


# ------------------------------------------------------------------------------------------
# Real KITTI text


@pytest.mark.parametrize("cam", [2, 3])
def test_real_kitti_calib_parses(real_kitti_date_dir: Path, cam: int) -> None:
    calib = kitti.read_calib(real_kitti_date_dir, cam=cam)
    assert calib.image_size == (1242, 375)
    np.testing.assert_allclose(calib.K, [[721.5377, 0, 609.5593], [0, 721.5377, 172.854], [0, 0, 1]])
    # K @ T_cam_velo is Monodepth2's P_velo2im: same projection and the same depth (third row).
    np.testing.assert_allclose(
        calib.K @ calib.T_cam_velo[:3], _monodepth2_velo_to_image(real_kitti_date_dir, cam)
    )
    # The velodyne sits ~8 cm above and ~27 cm behind camera 0; camera 2 is ~6 cm left of camera 0.
    lidar_in_cam = calib.T_cam_velo[:3, 3]
    assert lidar_in_cam[1] == pytest.approx(-0.076, abs=0.01)
    assert lidar_in_cam[2] == pytest.approx(-0.27, abs=0.01)
    assert lidar_in_cam[0] == pytest.approx(0.06 if cam == 2 else -0.48, abs=0.02)
    assert calib.T_velo_imu[:3, 3] == pytest.approx([-0.8086759, 0.3195559, -0.7997231])
    assert calib.T_cam_imu is not None
    # A drive folder works as well as its date folder.
    drive = kitti.read_calib(real_kitti_date_dir / "2011_09_26_drive_0001_sync", cam=cam)
    np.testing.assert_array_equal(drive.T_cam_velo, calib.T_cam_velo)


def test_real_kitti_oxts_record(real_kitti_date_dir: Path) -> None:
    record = kitti.read_oxts(
        real_kitti_date_dir / "2011_09_26_drive_0001_sync" / "oxts" / "data" / "0000000000.txt"
    )
    assert record.shape == (30,) and record[0] == pytest.approx(49.015003823272)
    assert record[25:].tolist() == [4, 10, 4, 4, 0]
    (pose,) = kitti.oxts_poses([record])
    np.testing.assert_allclose(pose[:3, 3], 0.0)
    np.testing.assert_allclose(pose[:3, :3] @ pose[:3, :3].T, np.eye(3), atol=1e-12)


def test_timestamp_text_round_trip() -> None:
    text = "2011-09-26 13:02:25.964389546"
    ns = kitti.parse_timestamp_ns(text)
    assert ns % 1_000_000_000 == 964389546
    assert kitti.format_timestamp_ns(ns) == text


def test_depth_png_round_trip(tmp_path: Path) -> None:
    depth = np.array([[np.nan, 0.0, 1.0, 12.3456], [80.0, 255.9, 300.0, -1.0]], dtype=np.float32)
    path = tmp_path / "d.png"
    kitti.write_depth_png(path, depth)
    png = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert png.dtype == np.uint16 and png[0, 2] == 256
    back = kitti.read_depth_png(path)
    expected = np.array([[0, 0, 1.0, 12.3456], [80.0, 255.9, 0, 0]], dtype=np.float32)
    np.testing.assert_allclose(back, expected, atol=0.5 / 256)


def test_read_depth_png_rejects_colour(tmp_path: Path) -> None:
    path = tmp_path / "rgb.png"
    cv2.imwrite(str(path), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(kitti.KittiLayoutError, match="uint16"):
        kitti.read_depth_png(path)


# ------------------------------------------------------------------------------------------
# Synthetic drive written and read back


def test_layout(kitti_root: Path, kitti_drive_dir: Path, sim_drive) -> None:
    n = len(sim_drive)
    date_dir = kitti_root / "2011_09_26"
    for name in ("calib_cam_to_cam.txt", "calib_velo_to_cam.txt", "calib_imu_to_velo.txt"):
        assert (date_dir / name).is_file()
    assert kitti.frame_indices(kitti_drive_dir) == list(range(n))
    assert kitti.check_drive(kitti_drive_dir) == list(range(n))
    for sub, ext in (("image_02", "png"), ("velodyne_points", "bin"), ("oxts", "txt")):
        files = sorted(p.name for p in (kitti_drive_dir / sub / "data").iterdir())
        assert files == [f"{i:010d}.{ext}" for i in range(n)]
    gt_files = sorted(p.name for p in (kitti_drive_dir / "proj_depth" / "groundtruth" / "image_02").iterdir())
    assert gt_files == [f"{i:010d}.png" for i in range(n)]
    for stamps in (
        "image_02/timestamps.txt",
        "velodyne_points/timestamps.txt",
        "velodyne_points/timestamps_start.txt",
        "velodyne_points/timestamps_end.txt",
        "oxts/timestamps.txt",
    ):
        lines = (kitti_drive_dir / stamps).read_text().splitlines()
        assert len(lines) == n and all(KITTI_STAMP.match(line) for line in lines), stamps
    assert (kitti_drive_dir / "oxts" / "dataformat.txt").read_text().startswith("lat:")
    calib_text = (date_dir / "calib_cam_to_cam.txt").read_text()
    for key in ("calib_time", "S_02", "K_02", "D_02", "R_02", "T_02", "S_rect_02", "R_rect_00", "P_rect_03"):
        assert re.search(rf"^{key}: ", calib_text, re.M), key
    assert "delta_f: " in (date_dir / "calib_velo_to_cam.txt").read_text()


def test_calibration_round_trip(kitti_root: Path, sim_drive) -> None:
    date_dir = kitti_root / "2011_09_26"
    calib = kitti.read_calib(date_dir)
    cfg = sim_drive.config
    assert calib.image_size == (cfg.width, cfg.height)
    np.testing.assert_allclose(calib.K, sim_drive.K, rtol=0, atol=1e-12)
    np.testing.assert_allclose(calib.T_cam_velo, sim_drive.T_cam_lidar, rtol=0, atol=1e-12)
    np.testing.assert_allclose(calib.T_cam_imu, sim_drive.T_cam_imu, rtol=0, atol=1e-12)
    # Third-party code composing KITTI's way sees the same camera.
    np.testing.assert_allclose(
        _monodepth2_velo_to_image(date_dir, 2), sim_drive.K @ sim_drive.T_cam_lidar[:3], rtol=0, atol=1e-9
    )


def test_frames_round_trip(kitti_drive_dir: Path, sim_frames) -> None:
    for frame in sim_frames:
        i = frame.index
        bgr = cv2.imread(str(kitti.image_path(kitti_drive_dir, i)), cv2.IMREAD_COLOR)
        np.testing.assert_array_equal(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), frame.image)
        velo = kitti.load_velodyne(kitti.velodyne_path(kitti_drive_dir, i))
        assert velo.dtype == np.float32 and velo.ndim == 2 and velo.shape[1] == 4
        np.testing.assert_array_equal(velo, frame.lidar)
        gt = kitti.read_depth_png(kitti.depth_gt_path(kitti_drive_dir, i))
        quantized = np.round(np.nan_to_num(frame.depth, nan=0.0) * 256.0)
        valid = (quantized > 0) & (quantized <= 65535)
        np.testing.assert_array_equal(gt > 0, valid)
        np.testing.assert_allclose(gt[valid], frame.depth[valid], atol=0.5 / 256 + 1e-6)
        labels = kitti.read_motion_labels(kitti.motion_labels_path(kitti_drive_dir, i))
        np.testing.assert_array_equal(labels, frame.motion)


def test_timestamps(kitti_drive_dir: Path, sim_drive, sim_frames) -> None:
    fps = sim_drive.config.fps
    seconds = kitti.read_timestamps(kitti_drive_dir / "image_02" / "timestamps.txt")
    ns = kitti.read_timestamps_ns(kitti_drive_dir / "image_02" / "timestamps.txt")
    expected = np.array([frame.timestamp for frame in sim_frames])
    np.testing.assert_allclose((ns - ns[0]) / 1e9, expected - expected[0], atol=1e-9)
    np.testing.assert_allclose(np.diff(seconds), 1.0 / fps, atol=1e-6)
    start = kitti.read_timestamps_ns(kitti_drive_dir / "velodyne_points" / "timestamps_start.txt")
    end = kitti.read_timestamps_ns(kitti_drive_dir / "velodyne_points" / "timestamps_end.txt")
    assert np.all(start < ns) and np.all(ns < end)


def test_oxts_round_trip(kitti_drive_dir: Path, sim_drive, sim_frames) -> None:
    records = kitti.read_drive_oxts(kitti_drive_dir)
    assert records.shape == (len(sim_drive), 30)
    poses = kitti.oxts_poses(records)
    truth = [frame.T_world_cam @ sim_drive.T_cam_imu for frame in sim_frames]
    for i, (pose, T) in enumerate(zip(poses, truth)):
        np.testing.assert_allclose(pose[:3, 3], T[:3, 3] - truth[0][:3, 3], atol=1e-3, err_msg=f"frame {i}")
        np.testing.assert_allclose(pose[:3, :3], T[:3, :3], atol=1e-9)
    relative = kitti.oxts_poses(records, relative_to_first=True)
    np.testing.assert_allclose(relative[-1], np.linalg.inv(truth[0]) @ truth[-1], atol=1e-3)
    # Velocities: (ve, vn) is the world-frame velocity, wx..wz the body rates.
    frame = sim_frames[3]
    v_world = truth[3][:3, :3] @ frame.velocity_imu
    np.testing.assert_allclose(records[3, [7, 6, 10]], v_world, atol=1e-9)
    np.testing.assert_allclose(records[3, 17:20], frame.angular_velocity_imu, atol=1e-12)


def test_lidar_agrees_with_dense_gt(kitti_root: Path, kitti_drive_dir: Path, sim_drive) -> None:
    calib = kitti.read_calib(kitti_root / "2011_09_26")
    w, h = calib.image_size
    errors = []
    for i in range(len(sim_drive)):
        sparse = kitti.velodyne_depth_map(
            calib, kitti.load_velodyne(kitti.velodyne_path(kitti_drive_dir, i)), h, w
        )
        dense = kitti.read_depth_png(kitti.depth_gt_path(kitti_drive_dir, i))
        both = (sparse > 0) & (dense > 0)
        assert both.sum() > 100, f"frame {i}: only {both.sum()} LiDAR pixels with ground truth"
        errors.append(np.abs(sparse[both] - dense[both]) / dense[both])
    median = float(np.median(np.concatenate(errors)))
    print(f"LiDAR vs dense GT: median relative error {median:.4%}")
    assert median < 0.01


def test_check_drive_errors(tmp_path: Path, kitti_drive_dir: Path) -> None:
    with pytest.raises(kitti.KittiLayoutError, match="not found"):
        kitti.check_drive(tmp_path / "nope")
    copy = tmp_path / "2011_09_26" / kitti_drive_dir.name
    shutil.copytree(kitti_drive_dir, copy)
    with pytest.raises(kitti.KittiLayoutError, match=r"calib_cam_to_cam\.txt"):
        kitti.check_drive(copy)
    shutil.copy(kitti_drive_dir.parent / "calib_cam_to_cam.txt", copy.parent)
    shutil.copy(kitti_drive_dir.parent / "calib_velo_to_cam.txt", copy.parent)
    (copy / "velodyne_points" / "timestamps.txt").write_text("")
    with pytest.raises(kitti.KittiLayoutError, match="timestamps"):
        kitti.check_drive(copy)


def test_write_drive_refuses_existing_and_foreign_rig(
    real_kitti_date_dir: Path, kitti_root: Path, sim_drive
) -> None:
    with pytest.raises(kitti.KittiLayoutError, match="exists"):
        kitti.write_drive(sim_drive, kitti_root, drive_number=1)
    with pytest.raises(kitti.KittiLayoutError, match="different rig"):
        kitti.write_drive(sim_drive, real_kitti_date_dir.parent, drive_number=2)
    assert not (real_kitti_date_dir / "2011_09_26_drive_0002_sync").exists()


# ------------------------------------------------------------------------------------------
# Stereo: the right camera as camera 3


def _stereo_drive(baseline: float = 0.54, stereo: bool = True):  # -> SyntheticDrive
    from depth_node.data.sim.world import SyntheticDrive, WorldConfig

    return SyntheticDrive(
        WorldConfig(
            seed=5, num_frames=3, width=64, height=32, lidar=False, stereo=stereo, stereo_baseline=baseline
        )
    )


@pytest.fixture(scope="module")
def stereo_written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object, list]:
    """A 3-frame stereo drive (64x32, default baseline) written with write_drive, and its frames."""
    drive = _stereo_drive()
    drive_dir = kitti.write_drive(drive, tmp_path_factory.mktemp("stereo"), drive_number=1)
    return drive_dir, drive, list(drive)


def test_stereo_drive_layout(stereo_written) -> None:
    drive_dir, _, frames = stereo_written
    assert kitti.check_drive(drive_dir, cam=3) == kitti.frame_indices(drive_dir, cam=3) == [0, 1, 2]
    stamps = (drive_dir / "image_03" / "timestamps.txt").read_text()
    assert stamps == (drive_dir / "image_02" / "timestamps.txt").read_text() and len(stamps.splitlines()) == 3
    for frame in frames:
        bgr = cv2.imread(str(kitti.image_path(drive_dir, frame.index, cam=3)), cv2.IMREAD_COLOR)
        np.testing.assert_array_equal(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), frame.right_image)
        gt = kitti.read_depth_png(kitti.depth_gt_path(drive_dir, frame.index, cam=3))
        valid = gt > 0
        assert valid.mean() > 0.3
        np.testing.assert_allclose(gt[valid], frame.right_depth[valid], atol=0.5 / 256 + 1e-6)
        assert not np.array_equal(frame.right_image, frame.image)


def _assert_stereo_calibration(date_dir: Path, baseline: float) -> None:
    left, right = kitti.read_calib(date_dir, cam=2), kitti.read_calib(date_dir, cam=3)
    # Maps points of camera 2 into camera 3, which sits `baseline` metres to its right.
    T_right_left = right.T_cam_velo @ np.linalg.inv(left.T_cam_velo)
    np.testing.assert_allclose(T_right_left, make_transform(np.eye(3), [-baseline, 0, 0]), atol=1e-12)
    np.testing.assert_array_equal(right.K, left.K)
    assert right.P_rect[0, 3] - left.P_rect[0, 3] == pytest.approx(-left.K[0, 0] * baseline, rel=1e-12)
    assert kitti.stereo_baseline(date_dir) == pytest.approx(baseline, abs=1e-12)


def test_stereo_calibration(stereo_written) -> None:
    drive_dir, drive, _ = stereo_written
    _assert_stereo_calibration(drive_dir.parent, drive.stereo_baseline)
    assert kitti.stereo_baseline(drive_dir) == pytest.approx(0.54)  # a drive folder works too


def test_mono_drive_gets_the_default_baseline(kitti_root: Path, kitti_drive_dir: Path) -> None:
    _assert_stereo_calibration(kitti_root / "2011_09_26", kitti.SIM_STEREO_BASELINE)
    assert not (kitti_drive_dir / "image_03").exists()
    assert not kitti.depth_gt_path(kitti_drive_dir, 0, cam=3).parent.exists()


def test_stereo_baseline_round_trip_and_rig_check(tmp_path: Path) -> None:
    drive_dir = kitti.write_drive(_stereo_drive(0.3), tmp_path, drive_number=1)
    _assert_stereo_calibration(drive_dir.parent, 0.3)
    with pytest.raises(kitti.KittiLayoutError, match=r"different rig.*baseline 0\.3 m.*0\.54 m"):
        kitti.write_drive(_stereo_drive(0.54), tmp_path, drive_number=2)
    assert not (drive_dir.parent / kitti.drive_dir_name("2011_09_26", 2)).exists()
    # A drive without a right camera writes nothing that the baseline describes: it may share the date.
    mono = kitti.write_drive(_stereo_drive(0.54, stereo=False), tmp_path, drive_number=3)
    assert not (mono / "image_03").exists()
    assert kitti.stereo_baseline(drive_dir.parent) == pytest.approx(0.3, abs=1e-12)


def test_real_kitti_stereo_drive(real_kitti_date_dir: Path) -> None:
    # KITTI's own layout: image_03 next to image_02, with its own (slightly later) stamps.
    drive_dir = real_kitti_date_dir / "2011_09_26_drive_0001_sync"
    shutil.copytree(drive_dir / "image_02", drive_dir / "image_03")
    stamps = (drive_dir / "image_02" / "timestamps.txt").read_text().replace(".4", ".5")
    (drive_dir / "image_03" / "timestamps.txt").write_text(stamps)
    assert kitti.check_drive(drive_dir, cam=3) == [0, 1, 2]
    # 2011_09_26's P_rect_02 / P_rect_03: camera 3 sits ~0.532 m right of camera 2 (KITTI's 0.54 m
    # nominal), with a few millimetres of y offset that rectification leaves in P_rect.
    assert kitti.stereo_baseline(real_kitti_date_dir) == pytest.approx(0.5327, abs=1e-4)
    left, right = (kitti.read_calib(real_kitti_date_dir, cam=c) for c in (2, 3))
    T_right_left = right.T_cam_velo @ np.linalg.inv(left.T_cam_velo)
    np.testing.assert_allclose(T_right_left[:3, :3], np.eye(3), atol=1e-12)
    np.testing.assert_allclose(T_right_left[:3, 3], [-0.5327, 0.0028, 0.0], atol=1e-4)


def test_stereo_baseline_needs_both_cameras(tmp_path: Path) -> None:
    (tmp_path / "calib_cam_to_cam.txt").write_text("P_rect_02: 1 0 0 0 0 1 0 0 0 0 1 0\n")
    with pytest.raises(kitti.KittiLayoutError, match="P_rect_03"):
        kitti.stereo_baseline(tmp_path)
