"""KITTI drive -> rosbag2: read the bags back with rosbags and compare with the drive's files."""

from __future__ import annotations

import shutil
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import pytest
from rosbags.interfaces import QosDurability, QosReliability
from rosbags.rosbag2 import Reader
from rosbags.typesys import Stores, get_typestore

from depth_node.data import bag_convert, kitti
from depth_node.geometry import make_transform, quaternion_to_matrix, rotation_matrix
from depth_node.runtime.message_types import rosbags_types, stamp_header, stamp_ns

TYPESTORE = get_typestore(Stores.ROS2_HUMBLE)
RIGHT_KEYS = ("right_image", "right_compressed", "right_camera_info")
# A mono drive's bag: every topic but the right camera's.
EXPECTED_TYPES = {
    topic: msgtype for key, (topic, msgtype) in bag_convert.TOPICS.items() if key not in RIGHT_KEYS
}
RIGHT_TOPICS = {bag_convert.TOPICS[key][0] for key in RIGHT_KEYS}


def _read_bag(bag: Path) -> tuple[dict[str, list], dict[str, list[int]], dict]:
    """Messages and log times per topic, plus the connections by topic."""
    messages: dict[str, list] = defaultdict(list)
    times: dict[str, list[int]] = defaultdict(list)
    with Reader(bag) as reader:
        connections = {c.topic: c for c in reader.connections}
        for conn, timestamp, raw in reader.messages():
            messages[conn.topic].append(TYPESTORE.deserialize_cdr(raw, conn.msgtype))
            times[conn.topic].append(timestamp)
    return messages, times, connections


def _compose(transform) -> np.ndarray:
    """4x4 of a geometry_msgs Transform or Pose."""
    q = getattr(transform, "rotation", None) or transform.orientation
    t = getattr(transform, "translation", None) or transform.position
    return make_transform(quaternion_to_matrix(q.x, q.y, q.z, q.w), [t.x, t.y, t.z])


@pytest.fixture(params=["sqlite3", "mcap"])
def bag(request: pytest.FixtureRequest) -> Path:
    return request.getfixturevalue("sim_bag" if request.param == "sqlite3" else "sim_bag_mcap")


def test_bag_topics_qos_and_stamps(bag: Path, kitti_drive_dir: Path, sim_drive) -> None:
    n = len(sim_drive)
    messages, times, connections = _read_bag(bag)
    assert {t: c.msgtype for t, c in connections.items()} == EXPECTED_TYPES
    assert {t: len(m) for t, m in messages.items()} == {
        t: (1 if t == "/tf_static" else n) for t in EXPECTED_TYPES
    }

    # QoS that `ros2 bag play` offers again.
    for topic, conn in connections.items():
        (qos,) = conn.ext.offered_qos_profiles
        assert qos.reliability == QosReliability.RELIABLE
        expected = QosDurability.TRANSIENT_LOCAL if topic == "/tf_static" else QosDurability.VOLATILE
        assert qos.durability == expected, topic

    image_ns = kitti.read_timestamps_ns(kitti_drive_dir / "image_02" / "timestamps.txt")
    for topic, stamps in times.items():
        assert np.all(np.diff(stamps) > 0), topic
        headers = [m.transforms[0] if topic == "/tf_static" else m for m in messages[topic]]
        assert [stamp_ns(m.header) for m in headers] == stamps, topic
    assert times["/camera/image_raw"] == image_ns.tolist()


def test_bag_frames_match_drive_files(bag: Path, kitti_drive_dir: Path, sim_drive) -> None:
    messages, _, _ = _read_bag(bag)
    for i in range(len(sim_drive)):
        png = cv2.cvtColor(cv2.imread(str(kitti.image_path(kitti_drive_dir, i))), cv2.COLOR_BGR2RGB)
        raw = messages["/camera/image_raw"][i]
        assert (raw.encoding, raw.height, raw.width, raw.step) == ("rgb8", *png.shape[:2], png.shape[1] * 3)
        assert raw.header.frame_id == bag_convert.CAMERA_FRAME
        np.testing.assert_array_equal(raw.data.reshape(png.shape), png)

        jpeg = messages["/camera/image_raw/compressed"][i]
        assert jpeg.format == "jpeg"
        decoded = cv2.imdecode(jpeg.data, cv2.IMREAD_COLOR)
        bgr = cv2.cvtColor(png, cv2.COLOR_RGB2BGR)
        assert cv2.PSNR(decoded, bgr) > 25.0
        # Within JPEG tolerance means: exactly what a quality-90 JPEG of the PNG decodes to.
        _, reference = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 90])
        np.testing.assert_array_equal(decoded, cv2.imdecode(reference, cv2.IMREAD_COLOR))

        velo = kitti.load_velodyne(kitti.velodyne_path(kitti_drive_dir, i))
        cloud = messages["/lidar/points"][i]
        assert [f.name for f in cloud.fields] == ["x", "y", "z", "intensity"]
        assert cloud.header.frame_id == bag_convert.LIDAR_FRAME and cloud.width == len(velo)
        np.testing.assert_array_equal(cloud.data.view("<f4").reshape(-1, 4), velo)

        gt = kitti.read_depth_png(kitti.depth_gt_path(kitti_drive_dir, i))
        depth_msg = messages["/ground_truth/depth"][i]
        assert depth_msg.encoding == "32FC1"
        depth = depth_msg.data.view("<f4").reshape(gt.shape)
        np.testing.assert_array_equal(np.isnan(depth), gt == 0)
        np.testing.assert_array_equal(depth[gt > 0], gt[gt > 0])


def test_bag_camera_info_tf_and_odom(bag: Path, kitti_drive_dir: Path, sim_drive, sim_frames) -> None:
    messages, _, _ = _read_bag(bag)
    calib = kitti.read_calib(kitti_drive_dir.parent)
    info = messages["/camera/camera_info"][0]
    assert (info.width, info.height) == calib.image_size and info.distortion_model == "plumb_bob"
    np.testing.assert_allclose(info.k.reshape(3, 3), sim_drive.K, atol=1e-12)
    np.testing.assert_allclose(info.p.reshape(3, 4)[:, :3], sim_drive.K, atol=1e-12)
    np.testing.assert_array_equal(info.r, np.eye(3).ravel())

    # /tf_static: base_link -> velodyne -> camera_optical reproduces the drive's extrinsics.
    (tf,) = messages["/tf_static"]
    frames = {(t.header.frame_id, t.child_frame_id): _compose(t.transform) for t in tf.transforms}
    T_velo_cam = frames[(bag_convert.LIDAR_FRAME, bag_convert.CAMERA_FRAME)]
    T_base_velo = frames[(bag_convert.BASE_FRAME, bag_convert.LIDAR_FRAME)]
    np.testing.assert_allclose(np.linalg.inv(T_velo_cam), sim_drive.T_cam_lidar, atol=1e-9)
    np.testing.assert_allclose(np.linalg.inv(T_base_velo @ T_velo_cam), sim_drive.T_cam_imu, atol=1e-9)

    # /odom: the drive's IMU trajectory (origin at the first position, east-north-up axes).
    truth = [frame.T_world_cam @ sim_drive.T_cam_imu for frame in sim_frames]
    for i, odom in enumerate(messages["/odom"]):
        assert (odom.header.frame_id, odom.child_frame_id) == ("odom", "base_link")
        p = odom.pose.pose.position
        np.testing.assert_allclose([p.x, p.y, p.z], truth[i][:3, 3] - truth[0][:3, 3], atol=1e-3)
        np.testing.assert_allclose(_compose(odom.pose.pose)[:3, :3], truth[i][:3, :3], atol=1e-6)
        v = odom.twist.twist.linear
        np.testing.assert_allclose([v.x, v.y, v.z], sim_frames[i].velocity_imu, atol=1e-6)


def test_bag_sizes(sim_bag: Path, sim_bag_mcap: Path) -> None:
    for bag in (sim_bag, sim_bag_mcap):
        summary = bag_convert.bag_summary(bag)
        print(f"{bag.name}: {summary['bytes'] / 1e6:.2f} MB, {summary['duration_s']:.2f} s")
        assert summary["bytes"] > 0 and sum(summary["topics"].values()) > 0


def test_missing_drive_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out_bag"
    with pytest.raises(kitti.KittiLayoutError, match="not found"):
        bag_convert.convert_drive(tmp_path / "2011_09_26_drive_0042_sync", out)
    assert list(tmp_path.iterdir()) == []
    assert bag_convert.main([str(tmp_path / "missing_drive"), str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "missing_drive" in err and "not found" in err
    assert list(tmp_path.iterdir()) == []


def test_failure_mid_conversion_leaves_nothing(tmp_path: Path, kitti_drive_dir: Path) -> None:
    drive = tmp_path / "2011_09_26" / kitti_drive_dir.name
    shutil.copytree(kitti_drive_dir.parent, drive.parent, ignore=shutil.ignore_patterns("*_sync"))
    shutil.copytree(kitti_drive_dir, drive)
    kitti.image_path(drive, 5).write_bytes(b"not a png")
    out_dir = tmp_path / "bags"
    out_dir.mkdir()
    with pytest.raises(kitti.KittiLayoutError, match="cannot read image"):
        bag_convert.convert_drive(drive, out_dir / "broken", storage="mcap")
    assert list(out_dir.iterdir()) == []


def test_refuses_to_overwrite(sim_bag: Path, kitti_drive_dir: Path) -> None:
    with pytest.raises(FileExistsError):
        bag_convert.convert_drive(kitti_drive_dir, sim_bag)


def test_cli_options(tmp_path: Path, kitti_drive_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "small"
    argv = [
        str(kitti_drive_dir),
        str(out),
        "--storage",
        "mcap",
        "--no-compressed",
        "--no-lidar",
        "--max-frames",
        "3",
    ]
    assert bag_convert.main(argv) == 0
    assert "wrote" in capsys.readouterr().out
    topics = bag_convert.bag_summary(out)["topics"]
    assert "/camera/image_raw/compressed" not in topics and "/lidar/points" not in topics
    assert topics["/camera/image_raw"] == 3 and topics["/tf_static"] == 1


def test_real_kitti_style_drive(real_kitti_date_dir: Path, tmp_path: Path) -> None:
    drive = real_kitti_date_dir / "2011_09_26_drive_0001_sync"
    bag = bag_convert.convert_drive(drive, tmp_path / "real", storage="mcap")
    messages, times, _ = _read_bag(bag)
    ground_truth = ("/ground_truth/depth", "/ground_truth/motion")  # real KITTI has neither in the drive
    assert not set(ground_truth) & set(messages)
    assert {t: len(m) for t, m in messages.items() if t != "/tf_static"} == {
        t: 3 for t in EXPECTED_TYPES if t not in ("/tf_static", *ground_truth)
    }
    assert (
        times["/lidar/points"]
        == kitti.read_timestamps_ns(drive / "velodyne_points" / "timestamps.txt").tolist()
    )
    assert times["/odom"] == kitti.read_timestamps_ns(drive / "oxts" / "timestamps.txt").tolist()
    assert times["/tf_static"][0] == min(t[0] for t in times.values())
    info = messages["/camera/camera_info"][0]
    assert (info.width, info.height) == (1242, 375)
    assert info.k[[0, 2, 4, 5]].tolist() == [721.5377, 609.5593, 721.5377, 172.854]
    calib = kitti.read_calib(real_kitti_date_dir)
    (tf,) = messages["/tf_static"]
    frames = {(t.header.frame_id, t.child_frame_id): _compose(t.transform) for t in tf.transforms}
    T_velo_cam = frames[(bag_convert.LIDAR_FRAME, bag_convert.CAMERA_FRAME)]
    np.testing.assert_allclose(T_velo_cam @ calib.T_cam_velo, np.eye(4), atol=1e-6)
    north = [m.pose.pose.position.y for m in messages["/odom"]]
    assert north[0] == 0.0 and 1.0 < north[1] < 1.2 and 2.0 < north[2] < 2.4


def test_transform_stamped_round_trip() -> None:
    T = make_transform(rotation_matrix(0.1, -0.2, 2.5), [1.0, -2.0, 0.5])
    msg = bag_convert.transform_stamped(TYPESTORE, stamp_header(rosbags_types(), 1_500_000_000, "a"), "b", T)
    assert (msg.header.frame_id, msg.child_frame_id, stamp_ns(msg.header)) == ("a", "b", 1_500_000_000)
    np.testing.assert_allclose(_compose(msg.transform), T, atol=1e-12)
    raw = TYPESTORE.serialize_cdr(msg, "geometry_msgs/msg/TransformStamped")
    back = TYPESTORE.deserialize_cdr(raw, "geometry_msgs/msg/TransformStamped")
    np.testing.assert_allclose(_compose(back.transform), T, atol=1e-12)


# ------------------------------------------------------------------------------------------
# Stereo: the right camera (image_03)

BASELINE = 0.3  # not KITTI's 0.54: the bag must carry the drive's own


@pytest.fixture(scope="module")
def stereo_drive_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from depth_node.data.sim.world import SyntheticDrive, WorldConfig

    config = WorldConfig(
        seed=4, num_frames=3, width=64, height=32, lidar=False, stereo=True, stereo_baseline=BASELINE
    )
    return kitti.write_drive(SyntheticDrive(config), tmp_path_factory.mktemp("stereo"), drive_number=1)


def _raw_messages(bag: Path) -> dict[str, list[tuple[int, bytes]]]:
    out: dict[str, list[tuple[int, bytes]]] = defaultdict(list)
    with Reader(bag) as reader:
        for conn, timestamp, raw in reader.messages():
            out[conn.topic].append((timestamp, bytes(raw)))
    return out


def test_stereo_bag_has_the_right_camera(stereo_drive_dir: Path, tmp_path: Path) -> None:
    bag = bag_convert.convert_drive(stereo_drive_dir, tmp_path / "stereo", storage="mcap")
    messages, times, connections = _read_bag(bag)
    right_types = {bag_convert.TOPICS[key][0]: bag_convert.TOPICS[key][1] for key in RIGHT_KEYS}
    assert {t: c.msgtype for t, c in connections.items()} == EXPECTED_TYPES | right_types
    for topic in RIGHT_TOPICS:
        assert len(messages[topic]) == 3 and times[topic] == times["/camera/image_raw"], topic
        assert all(m.header.frame_id == bag_convert.RIGHT_CAMERA_FRAME for m in messages[topic]), topic
    for i, raw in enumerate(messages["/camera_right/image_raw"]):
        png = cv2.cvtColor(cv2.imread(str(kitti.image_path(stereo_drive_dir, i, cam=3))), cv2.COLOR_BGR2RGB)
        assert raw.encoding == "rgb8"
        np.testing.assert_array_equal(raw.data.reshape(png.shape), png)
    left, right = messages["/camera/camera_info"][0], messages["/camera_right/camera_info"][0]
    np.testing.assert_array_equal(right.k, left.k)
    P = right.p.reshape(3, 4)
    np.testing.assert_array_equal(P[:, :3], left.k.reshape(3, 3))
    assert P[0, 3] == pytest.approx(-left.k[0] * BASELINE, rel=1e-9) and P[1:, 3].tolist() == [0.0, 0.0]
    # /tf_static: camera_optical -> camera_right_optical maps right-camera points into the left frame.
    (tf,) = messages["/tf_static"]
    frames = {(t.header.frame_id, t.child_frame_id): _compose(t.transform) for t in tf.transforms}
    T_left_right = frames[(bag_convert.CAMERA_FRAME, bag_convert.RIGHT_CAMERA_FRAME)]
    np.testing.assert_allclose(T_left_right, make_transform(np.eye(3), [BASELINE, 0, 0]), atol=1e-12)


def test_right_false_leaves_the_right_camera_out(stereo_drive_dir: Path, tmp_path: Path) -> None:
    stereo = _raw_messages(bag_convert.convert_drive(stereo_drive_dir, tmp_path / "stereo"))
    mono = _raw_messages(bag_convert.convert_drive(stereo_drive_dir, tmp_path / "mono", right=False))
    assert set(mono) == set(EXPECTED_TYPES) and set(stereo) == set(mono) | RIGHT_TOPICS
    # The left camera's messages are the same, byte for byte, with or without the right camera.
    for topic in set(mono) - {"/tf_static"}:
        assert stereo[topic] == mono[topic], topic
    # Camera 3 converted on its own has no right camera of its own.
    cam3 = bag_convert.bag_summary(bag_convert.convert_drive(stereo_drive_dir, tmp_path / "cam3", cam=3))
    assert not RIGHT_TOPICS & set(cam3["topics"]) and cam3["topics"]["/camera/image_raw"] == 3


def test_mono_drive_has_no_right_topics(sim_bag: Path) -> None:
    assert not RIGHT_TOPICS & set(bag_convert.bag_summary(sim_bag)["topics"])
