"""Shared fixtures: one small synthetic drive, in KITTI raw layout and as rosbag2 files.

Session-scoped, built once on first use (a few seconds on a shared CPU):

- ``sim_drive``: ``SyntheticDrive`` (seed 7, 12 frames, 416x128; moving cars on).
- ``sim_frames``: its frames rendered once, ``list[Frame]`` (compare against these instead of
  calling ``sim_drive.frame(i)`` again: rendering is the slow part).
- ``kitti_root``: KITTI raw root holding ``2011_09_26/`` (calib files + one drive).
- ``kitti_drive_dir``: ``kitti_root/2011_09_26/2011_09_26_drive_0001_sync`` (images, LiDAR, OXTS,
  timestamps, dense GT in ``proj_depth/groundtruth/image_02``, motion labels in
  ``proj_depth/motion/image_02``).
- ``sim_bag``: that drive converted to a sqlite3 rosbag2 (all topics of ``depth_node.data.bag_convert``,
  ``/ground_truth/motion`` included).
- ``sim_bag_mcap``: the same as mcap.

Function-scoped: ``real_kitti_date_dir``: a date folder with the real 2011_09_26 calibration files
and a 3-frame drive ``2011_09_26_drive_0001_sync`` in the real sizes (1242x375 images, LiDAR
.bin, OXTS records in the raw files' text format, KITTI timestamps), for testing that code handles
real KITTI as well as the synthetic drives.

Treat them as read-only; copy a drive (``shutil.copytree``) before changing it.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import optional_stacks
import pytest

# A ROS machine that runs the node has the runtime only: test files that import the training stack or
# the replay's report are left out there, file by file (see optional_stacks.py).
LEFT_OUT = optional_stacks.left_out(Path(__file__).resolve().parent)
# rclpy_stand_in/ is a helper package, not tests (launch_testing's plugin would import its modules).
collect_ignore = ["rclpy_stand_in", *LEFT_OUT]


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [f"left out (needs {', '.join(stacks)}): {name}" for name, stacks in LEFT_OUT.items()]


SIM_SEED = 7
SIM_FRAMES = 12
SIM_WIDTH, SIM_HEIGHT = 416, 128
SIM_DATE = "2011_09_26"

# calib_cam_to_cam.txt / calib_velo_to_cam.txt / calib_imu_to_velo.txt of KITTI raw 2011_09_26.
REAL_CAM_TO_CAM = """calib_time: 09-Jan-2012 13:57:47
corner_dist: 9.950000e-02
S_00: 1.392000e+03 5.120000e+02
K_00: 9.842439e+02 0.000000e+00 6.900000e+02 0.000000e+00 9.808141e+02 2.331966e+02 0.000000e+00 0.000000e+00 1.000000e+00
D_00: -3.728755e-01 2.037299e-01 2.219027e-03 1.383707e-03 -7.233722e-02
R_00: 1.000000e+00 0.000000e+00 0.000000e+00 0.000000e+00 1.000000e+00 0.000000e+00 0.000000e+00 0.000000e+00 1.000000e+00
T_00: 2.573699e-16 -1.059758e-16 1.614870e-16
S_rect_00: 1.242000e+03 3.750000e+02
R_rect_00: 9.999239e-01 9.837760e-03 -7.445048e-03 -9.869795e-03 9.999421e-01 -4.278459e-03 7.402527e-03 4.351614e-03 9.999631e-01
P_rect_00: 7.215377e+02 0.000000e+00 6.095593e+02 0.000000e+00 0.000000e+00 7.215377e+02 1.728540e+02 0.000000e+00 0.000000e+00 0.000000e+00 1.000000e+00 0.000000e+00
S_01: 1.392000e+03 5.120000e+02
K_01: 9.895267e+02 0.000000e+00 7.020000e+02 0.000000e+00 9.878386e+02 2.455590e+02 0.000000e+00 0.000000e+00 1.000000e+00
D_01: -3.644661e-01 1.790019e-01 1.148107e-03 -6.298563e-04 -5.314062e-02
R_01: 9.993513e-01 1.860866e-02 -3.083487e-02 -1.887662e-02 9.997863e-01 -8.421873e-03 3.067156e-02 8.998467e-03 9.994890e-01
T_01: -5.370000e-01 4.822061e-03 -1.252488e-02
S_rect_01: 1.242000e+03 3.750000e+02
R_rect_01: 9.996878e-01 -8.976826e-03 2.331651e-02 8.876121e-03 9.999508e-01 4.397694e-03 -2.335498e-02 -4.189416e-03 9.997185e-01
P_rect_01: 7.215377e+02 0.000000e+00 6.095593e+02 -3.875744e+02 0.000000e+00 7.215377e+02 1.728540e+02 0.000000e+00 0.000000e+00 0.000000e+00 1.000000e+00 0.000000e+00
S_02: 1.392000e+03 5.120000e+02
K_02: 9.597910e+02 0.000000e+00 6.960217e+02 0.000000e+00 9.569251e+02 2.241806e+02 0.000000e+00 0.000000e+00 1.000000e+00
D_02: -3.691481e-01 1.968681e-01 1.353473e-03 5.677587e-04 -6.770705e-02
R_02: 9.999758e-01 -5.267463e-03 -4.552439e-03 5.251945e-03 9.999804e-01 -3.413835e-03 4.570332e-03 3.389843e-03 9.999838e-01
T_02: 5.956621e-02 2.900141e-04 2.577209e-03
S_rect_02: 1.242000e+03 3.750000e+02
R_rect_02: 9.998817e-01 1.511453e-02 -2.841595e-03 -1.511724e-02 9.998853e-01 -9.338510e-04 2.827154e-03 9.766976e-04 9.999955e-01
P_rect_02: 7.215377e+02 0.000000e+00 6.095593e+02 4.485728e+01 0.000000e+00 7.215377e+02 1.728540e+02 2.163791e-01 0.000000e+00 0.000000e+00 1.000000e+00 2.745884e-03
S_03: 1.392000e+03 5.120000e+02
K_03: 9.037596e+02 0.000000e+00 6.957519e+02 0.000000e+00 9.019653e+02 2.242509e+02 0.000000e+00 0.000000e+00 1.000000e+00
D_03: -3.639558e-01 1.788651e-01 6.029694e-04 -3.922424e-04 -5.382460e-02
R_03: 9.995599e-01 1.699522e-02 -2.431313e-02 -1.704422e-02 9.998531e-01 -1.809756e-03 2.427880e-02 2.223358e-03 9.997028e-01
T_03: -4.731050e-01 5.551470e-03 -5.250882e-03
S_rect_03: 1.242000e+03 3.750000e+02
R_rect_03: 9.998321e-01 -7.193136e-03 1.685599e-02 7.232804e-03 9.999712e-01 -2.293585e-03 -1.683901e-02 2.415116e-03 9.998231e-01
P_rect_03: 7.215377e+02 0.000000e+00 6.095593e+02 -3.395242e+02 0.000000e+00 7.215377e+02 1.728540e+02 2.199936e+00 0.000000e+00 0.000000e+00 1.000000e+00 2.729905e-03
"""  # noqa: E501
REAL_VELO_TO_CAM = """calib_time: 15-Mar-2012 11:37:16
R: 7.533745e-03 -9.999714e-01 -6.166020e-04 1.480249e-02 7.280733e-04 -9.998902e-01 9.998621e-01 7.523790e-03 1.480755e-02
T: -4.069766e-03 -7.631618e-02 -2.717806e-01
delta_f: 0.000000e+00 0.000000e+00
delta_c: 0.000000e+00 0.000000e+00
"""  # noqa: E501
REAL_IMU_TO_VELO = """calib_time: 25-May-2012 16:47:16
R: 9.999976e-01 7.553071e-04 -2.035826e-03 -7.854027e-04 9.998898e-01 -1.482298e-02 2.024406e-03 1.482454e-02 9.998881e-01
T: -8.086759e-01 3.195559e-01 -7.997231e-01
"""  # noqa: E501
# An OXTS record in the raw files' text format (floats, then five integer status fields).
REAL_STYLE_OXTS = (
    "49.015003823272 8.4342971002335 116.43032836914 0.035752 0.00903 -2.6087069803847 "
    "-2.2811458413047 -10.5048 11.6011 0.0245 -0.0127 -0.4253 0.0781 9.8137 -0.4239 0.1132 9.8096 "
    "-0.0165 0.0151 0.0146 -0.0161 0.0152 0.0149 0.41004447911071 0.27 4 10 4 4 0\n"
)


@pytest.fixture
def real_kitti_date_dir(tmp_path: Path) -> Path:
    date_dir = tmp_path / "2011_09_26"
    drive_dir = date_dir / "2011_09_26_drive_0001_sync"
    (date_dir / "calib_cam_to_cam.txt").parent.mkdir(parents=True)
    (date_dir / "calib_cam_to_cam.txt").write_text(REAL_CAM_TO_CAM)
    (date_dir / "calib_velo_to_cam.txt").write_text(REAL_VELO_TO_CAM)
    (date_dir / "calib_imu_to_velo.txt").write_text(REAL_IMU_TO_VELO)
    rng = np.random.default_rng(0)
    stamps = {"image_02": [], "velodyne_points": [], "oxts": []}
    for i in range(3):
        for sub in stamps:
            (drive_dir / sub / "data").mkdir(parents=True, exist_ok=True)
        # Each sensor has its own clock offset in real drives.
        stamps["image_02"].append(f"2011-09-26 13:02:25.{464389546 + i * 103_724_000:09d}")
        stamps["velodyne_points"].append(f"2011-09-26 13:02:25.{451199337 + i * 103_677_000:09d}")
        stamps["oxts"].append(f"2011-09-26 13:02:25.{449999971 + i * 103_000_000:09d}")
        image = np.full((375, 1242, 3), 40 * i, np.uint8)
        cv2.imwrite(str(drive_dir / "image_02" / "data" / f"{i:010d}.png"), image)
        points = np.hstack(
            [rng.uniform([2, -10, -1.7], [40, 10, 1], (2000, 3)), rng.uniform(0, 1, (2000, 1))]
        )
        points.astype("<f4").tofile(drive_dir / "velodyne_points" / "data" / f"{i:010d}.bin")
        fields = REAL_STYLE_OXTS.split()
        fields[0] = repr(float(fields[0]) + i * 1e-5)  # about 1.1 m north per frame
        (drive_dir / "oxts" / "data" / f"{i:010d}.txt").write_text(" ".join(fields) + "\n")
    for sub, lines in stamps.items():
        (drive_dir / sub / "timestamps.txt").write_text("\n".join(lines) + "\n")
    return date_dir


@pytest.fixture(scope="session")
def sim_drive():  # -> depth_node.data.sim.world.SyntheticDrive
    from depth_node.data.sim.world import SyntheticDrive, WorldConfig

    return SyntheticDrive(
        WorldConfig(seed=SIM_SEED, num_frames=SIM_FRAMES, width=SIM_WIDTH, height=SIM_HEIGHT)
    )


@pytest.fixture(scope="module")
def module_tmp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A folder for one module's shared training runs, removed when the module is done: pytest.ini
    drops a passed test's tmp_path at once, but factory folders would stay to the session's end,
    and a few training runs' checkpoints fill a small disk."""
    path = tmp_path_factory.mktemp("module")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def sim_frames(sim_drive) -> list:  # -> list[depth_node.data.sim.world.Frame]
    return list(sim_drive)


@pytest.fixture(scope="session")
def kitti_root(tmp_path_factory: pytest.TempPathFactory, sim_drive) -> Path:
    from depth_node.data.kitti import write_drive

    root = tmp_path_factory.mktemp("kitti_raw")
    write_drive(sim_drive, root, date=SIM_DATE, drive_number=1, dense_gt=True)
    return root


@pytest.fixture(scope="session")
def kitti_drive_dir(kitti_root: Path) -> Path:
    return kitti_root / SIM_DATE / f"{SIM_DATE}_drive_0001_sync"


@pytest.fixture(scope="session")
def sim_bag(tmp_path_factory: pytest.TempPathFactory, kitti_drive_dir: Path) -> Path:
    from depth_node.data.bag_convert import convert_drive

    return convert_drive(kitti_drive_dir, tmp_path_factory.mktemp("bags") / "sim_sqlite3", storage="sqlite3")


@pytest.fixture(scope="session")
def sim_bag_mcap(tmp_path_factory: pytest.TempPathFactory, kitti_drive_dir: Path) -> Path:
    from depth_node.data.bag_convert import convert_drive

    return convert_drive(kitti_drive_dir, tmp_path_factory.mktemp("bags") / "sim_mcap", storage="mcap")


# ---------------------------------------------------------------- replay tests: a tiny model, small bags
# Used by test_replay.py, test_replay_cli.py, test_bag_input.py and test_ground_truth.py.

TINY_MODEL_H, TINY_MODEL_W = 32, 104  # ~ the 416x128 camera's aspect


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # depth = 2 + 30 * grey level: real ONNX, contract metadata, metric (scale 1).
    from onnx_models import make_linear_depth_model

    return make_linear_depth_model(
        tmp_path_factory.mktemp("model") / "linear.onnx",
        height=TINY_MODEL_H,
        width=TINY_MODEL_W,
        a=2.0,
        b=30.0,
    )


def _read_topics(bag: Path, topics: set[str]) -> dict[str, list[tuple[int, object]]]:
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore

    out: dict[str, list[tuple[int, object]]] = {t: [] for t in topics}
    with AnyReader([bag], default_typestore=get_typestore(Stores.ROS2_HUMBLE)) as reader:
        conns = [c for c in reader.connections if c.topic in topics]
        for conn, timestamp, raw in reader.messages(connections=conns):
            out[conn.topic].append((timestamp, reader.deserialize(raw, conn.msgtype)))
    return out


@pytest.fixture(scope="session")
def read_topics():
    """``read_topics(bag, {topic, ...})`` -> {topic: [(bag timestamp, message), ...]} in bag order."""
    return _read_topics


def _write_small_bag(
    path: Path,
    frames: int = 3,
    size: tuple[int, int] = (64, 32),
    info_size: tuple[int, int] | None = None,
    image: bool = True,
    info: bool = True,
    storage: object = None,
) -> Path:
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    from depth_node.runtime.conversions import numpy_to_image
    from depth_node.runtime.message_types import rosbags_types
    from depth_node.runtime.messages import camera_info_from_K

    typestore, types = get_typestore(Stores.ROS2_HUMBLE), rosbags_types()
    width, height = size
    info_w, info_h = info_size or size
    K = np.array([[50.0, 0, info_w / 2], [0, 50.0, info_h / 2], [0, 0, 1]])
    time_type = typestore.types["builtin_interfaces/msg/Time"]
    with Writer(path, version=8, storage_plugin=storage or StoragePlugin.SQLITE3) as writer:
        c_img = writer.add_connection("/camera/image_raw", "sensor_msgs/msg/Image", typestore=typestore)
        c_info = writer.add_connection(
            "/camera/camera_info", "sensor_msgs/msg/CameraInfo", typestore=typestore
        )
        for i in range(frames):
            t = 1_000_000_000 + i * 100_000_000
            header = types.Header(
                stamp=time_type(sec=t // 10**9, nanosec=t % 10**9), frame_id="camera_optical"
            )
            rgb = np.full((height, width, 3), 40 * i + 20, np.uint8)
            if info:
                msg = camera_info_from_K(K, info_w, info_h, header, types)
                writer.write(c_info, t, typestore.serialize_cdr(msg, "sensor_msgs/msg/CameraInfo"))
            if image:
                msg = numpy_to_image(rgb, "rgb8", header, types)
                writer.write(c_img, t, typestore.serialize_cdr(msg, "sensor_msgs/msg/Image"))
    return path


@pytest.fixture(scope="session")
def write_small_bag():
    """``write_small_bag(path, frames=3, size=(64, 32), info_size=None, image=True, info=True,
    storage=StoragePlugin.SQLITE3)``: a hand-written rosbag2 with /camera/image_raw (uniform grey
    rgb8, 40 * i + 20) and /camera/camera_info (fx = fy = 50, centred; ``info_size`` makes it
    disagree with the images), frames 100 ms apart from t = 1 s, frame_id camera_optical."""
    return _write_small_bag
