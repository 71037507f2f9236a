"""Convert a KITTI raw drive (real or synthetic) into a rosbag2 (sqlite3 or mcap) with rosbags.

Topics (all stamps from the drive's timestamps files, in nanoseconds):

- ``/camera/image_raw``             sensor_msgs/Image, ``rgb8``, frame ``camera_optical``
- ``/camera/image_raw/compressed``  sensor_msgs/CompressedImage, format ``jpeg``
- ``/camera/camera_info``           sensor_msgs/CameraInfo: K = P_rect[:, :3], P = [K | 0] (see below)
- ``/camera_right/image_raw``       sensor_msgs/Image, ``rgb8``, frame ``camera_right_optical`` (stereo)
- ``/camera_right/image_raw/compressed``  sensor_msgs/CompressedImage, format ``jpeg`` (stereo)
- ``/camera_right/camera_info``     sensor_msgs/CameraInfo: K as the left's, P = [K | (-fx B, 0, 0)]
- ``/lidar/points``                 sensor_msgs/PointCloud2, x y z intensity float32, frame ``velodyne``
- ``/tf_static``                    tf2_msgs/TFMessage: base_link -> velodyne -> camera_optical
                                    (-> camera_right_optical, translation (+B, 0, 0), with stereo)
- ``/odom``                         nav_msgs/Odometry from OXTS, ``odom`` -> ``base_link`` (the IMU)
- ``/ground_truth/depth``           sensor_msgs/Image 32FC1 metres, NaN invalid (when GT PNGs exist)
- ``/ground_truth/motion``          sensor_msgs/Image ``mono8`` per-pixel motion labels
                                    (``depth_node.metrics.MOTION_LABELS``: 0 static, 1 moving the
                                    camera's way, 2 oncoming), same header as /ground_truth/depth
                                    (when the drive has ``proj_depth/motion`` PNGs: synthetic drives)

``camera_optical`` is the rectified frame of the chosen camera (cam 2 by default), the frame
that ``KittiCalib.T_cam_velo`` ends in. CameraInfo's P therefore has a zero translation column:
KITTI's P_rect column is the offset to camera 0's frame, not a stereo baseline of this frame.

Stereo: when camera 2 is converted and the drive has image_03 (KITTI's right colour camera), the
right camera's topics follow the ROS stereo convention (sensor_msgs/CameraInfo): the pair is
rectified, the right CameraInfo's P has Tx = -fx * B with B = ``kitti.stereo_baseline`` (metres),
and its messages carry the left camera's stamps, as the pair is triggered together and stereo
consumers (stereo_image_proc) pair images by exact stamp.

Bags are metadata version 8 (what Jazzy writes; Humble reads it) with offered QoS profiles that
``ros2 bag play`` reuses: reliable/volatile for the sensor streams, reliable/transient_local for
/tf_static so that late subscribers still get the static transforms.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore
from rosbags.typesys.store import Typestore
from tqdm import tqdm

from depth_node.data import kitti
from depth_node.geometry import make_transform, matrix_to_quaternion, scale_intrinsics
from depth_node.runtime.conversions import depth_to_image_msg, numpy_to_image
from depth_node.runtime.message_types import MessageTypes, rosbags_types, stamp_header
from depth_node.runtime.messages import camera_info_from_K

CAMERA_FRAME = "camera_optical"
RIGHT_CAMERA_FRAME = "camera_right_optical"
LIDAR_FRAME = "velodyne"
BASE_FRAME = "base_link"
ODOM_FRAME = "odom"
# Per-pixel motion labels sit beside a depth ground truth as <its namespace>/motion (the replay
# pairs them by that name; training and the replay never take them for a camera).
MOTION_NAME = "motion"
TOPICS = {
    "image": ("/camera/image_raw", "sensor_msgs/msg/Image"),
    "compressed": ("/camera/image_raw/compressed", "sensor_msgs/msg/CompressedImage"),
    "camera_info": ("/camera/camera_info", "sensor_msgs/msg/CameraInfo"),
    "right_image": ("/camera_right/image_raw", "sensor_msgs/msg/Image"),
    "right_compressed": ("/camera_right/image_raw/compressed", "sensor_msgs/msg/CompressedImage"),
    "right_camera_info": ("/camera_right/camera_info", "sensor_msgs/msg/CameraInfo"),
    "lidar": ("/lidar/points", "sensor_msgs/msg/PointCloud2"),
    "tf_static": ("/tf_static", "tf2_msgs/msg/TFMessage"),
    "odom": ("/odom", "nav_msgs/msg/Odometry"),
    "depth": ("/ground_truth/depth", "sensor_msgs/msg/Image"),
    "motion": (f"/ground_truth/{MOTION_NAME}", "sensor_msgs/msg/Image"),
}
BAG_VERSION = 8
TYPE_STORE = Stores.ROS2_HUMBLE  # message definitions written (Jazzy's are the same for these types)
STORAGES = {"sqlite3": StoragePlugin.SQLITE3, "mcap": StoragePlugin.MCAP}


def _qos(durability: QosDurability, depth: int) -> Qos:
    zero = QosTime(0, 0)  # 0 = the RMW default (infinite) on Humble and Jazzy alike
    return Qos(
        QosHistory.KEEP_LAST,
        depth,
        QosReliability.RELIABLE,
        durability,
        zero,
        zero,
        QosLiveliness.AUTOMATIC,
        zero,
        False,
    )


SENSOR_QOS = _qos(QosDurability.VOLATILE, 10)
TF_STATIC_QOS = _qos(QosDurability.TRANSIENT_LOCAL, 1)


def transform_stamped(typestore: Typestore, header: object, child: str, T: np.ndarray) -> object:
    """TransformStamped ``header.frame_id`` -> ``child``; T maps points of ``child`` into the parent."""
    x, y, z, w = matrix_to_quaternion(T[:3, :3])
    t = typestore.types
    return t["geometry_msgs/msg/TransformStamped"](
        header=header,
        child_frame_id=child,
        transform=t["geometry_msgs/msg/Transform"](
            translation=t["geometry_msgs/msg/Vector3"](x=T[0, 3], y=T[1, 3], z=T[2, 3]),
            rotation=t["geometry_msgs/msg/Quaternion"](x=x, y=y, z=z, w=w),
        ),
    )


def odometry(typestore: Typestore, header: object, T: np.ndarray, record: np.ndarray) -> object:
    """nav_msgs/Odometry of the IMU pose T (world, ENU) and an OXTS record's velocities and accuracies."""
    t = typestore.types
    x, y, z, w = matrix_to_quaternion(T[:3, :3])
    # Twist in the child (base_link) frame: world-frame velocity (ve, vn, vu) rotated into the body.
    v_body = T[:3, :3].T @ np.array([record[7], record[6], record[10]])
    pose_cov = np.zeros((6, 6))
    pose_cov[[0, 1, 2], [0, 1, 2]] = record[23] ** 2
    twist_cov = np.zeros((6, 6))
    twist_cov[[0, 1, 2], [0, 1, 2]] = record[24] ** 2
    vec = t["geometry_msgs/msg/Vector3"]
    return t["nav_msgs/msg/Odometry"](
        header=header,
        child_frame_id=BASE_FRAME,
        pose=t["geometry_msgs/msg/PoseWithCovariance"](
            pose=t["geometry_msgs/msg/Pose"](
                position=t["geometry_msgs/msg/Point"](x=T[0, 3], y=T[1, 3], z=T[2, 3]),
                orientation=t["geometry_msgs/msg/Quaternion"](x=x, y=y, z=z, w=w),
            ),
            covariance=pose_cov.reshape(-1),
        ),
        twist=t["geometry_msgs/msg/TwistWithCovariance"](
            twist=t["geometry_msgs/msg/Twist"](
                linear=vec(x=v_body[0], y=v_body[1], z=v_body[2]),
                angular=vec(x=record[17], y=record[18], z=record[19]),
            ),
            covariance=twist_cov.reshape(-1),
        ),
    )


def lidar_cloud(types: MessageTypes, header: object, velo: np.ndarray) -> object:
    """Unorganized PointCloud2 of a KITTI scan: x, y, z, intensity float32 (little-endian)."""
    field = types.PointField
    fields = [
        field(name=name, offset=4 * i, datatype=field.FLOAT32, count=1)
        for i, name in enumerate(("x", "y", "z", "intensity"))
    ]
    data = np.ascontiguousarray(velo, dtype="<f4")
    return types.PointCloud2(
        header=header,
        height=1,
        width=len(data),
        fields=fields,
        is_bigendian=False,
        point_step=16,
        row_step=16 * len(data),
        data=types.uint8_array(data.view(np.uint8)),
        is_dense=bool(np.isfinite(data).all()),
    )


def jpeg_image(types: MessageTypes, header: object, rgb: np.ndarray, quality: int) -> object:
    """CompressedImage (format ``jpeg``) of an RGB image."""
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return types.CompressedImage(header=header, format="jpeg", data=types.uint8_array(jpeg))


def _sensor_stamps(drive_dir: Path, folder: str) -> np.ndarray | None:
    path = drive_dir / folder / "timestamps.txt"
    return kitti.read_timestamps_ns(path) if path.is_file() else None


def convert_drive(
    drive_dir: Path | str,
    out_path: Path | str,
    storage: str = "sqlite3",
    *,
    cam: int = 2,
    right: bool = True,
    raw: bool = True,
    compressed: bool = True,
    lidar: bool = True,
    ground_truth: bool = True,
    gt_dir: Path | str | None = None,
    jpeg_quality: int = 90,
    max_frames: int | None = None,
    progress: bool = False,
) -> Path:
    """Write one KITTI raw drive as a rosbag2 at ``out_path`` (a new directory); return it.

    ``right``: also write the right camera (image_03) where the drive has one and ``cam`` is 2.
    ``gt_dir`` points at a drive folder of the depth benchmark (``.../<drive>_sync``) when the
    ground truth is not inside ``drive_dir`` (real KITTI keeps it in data_depth_annotated). The
    bag is written next to ``out_path`` under a temporary name and renamed at the end, so a
    failed conversion leaves nothing behind.
    """
    drive_dir = Path(drive_dir)
    out_path = Path(out_path)
    if storage not in STORAGES:
        raise ValueError(f"storage {storage!r}: expected one of {', '.join(STORAGES)}")
    if out_path.exists():
        raise FileExistsError(f"{out_path}: exists already, not overwriting")
    source = _read_source(drive_dir, cam, max_frames, lidar, gt_dir, right)
    wanted = _wanted_topics(source, raw=raw, compressed=compressed, ground_truth=ground_truth)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_path.name}.", suffix=".partial", dir=out_path.parent))
    try:
        # The bag directory keeps its final name inside the staging folder: rosbags names the
        # storage file after it, and metadata.yaml refers to that file.
        staged_bag = staging / out_path.name
        _write_bag(staged_bag, STORAGES[storage], source, wanted, jpeg_quality, progress)
        staged_bag.rename(out_path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out_path


@dataclass
class _Source:
    """What convert_drive read from a drive before writing: frames, calibration, stamps, poses."""

    drive_dir: Path
    cam: int
    indices: list[int]
    calib: kitti.KittiCalib
    image_ns: np.ndarray
    velo_ns: np.ndarray | None
    oxts_ns: np.ndarray | None
    poses: dict[int, np.ndarray]
    records: dict[int, np.ndarray]
    gt_root: Path
    baseline: float | None  # metres to the right camera (image_03); None: no right camera in the bag


@dataclass(frozen=True)
class _Camera:
    """One camera of the bag: its image_0c folder, TOPICS keys' prefix, frame and stereo baseline."""

    cam: int
    prefix: str  # "" (left) or "right_"
    frame_id: str
    baseline: float = 0.0  # metres right of the left camera: P's Tx = -fx * baseline


def _read_source(
    drive_dir: Path,
    cam: int,
    max_frames: int | None,
    lidar: bool,
    gt_dir: Path | str | None,
    right: bool,
) -> _Source:
    indices = kitti.check_drive(drive_dir, cam)
    if max_frames is not None:
        indices = indices[:max_frames]
    oxts_ns = _sensor_stamps(drive_dir, "oxts")
    oxts_indices = (
        [i for i in indices if kitti.oxts_path(drive_dir, i).is_file()] if oxts_ns is not None else []
    )
    records = kitti.read_drive_oxts(drive_dir, oxts_indices)
    return _Source(
        drive_dir=drive_dir,
        cam=cam,
        indices=indices,
        calib=kitti.read_calib(drive_dir.parent, cam),
        image_ns=kitti.read_timestamps_ns(drive_dir / f"image_{cam:02d}" / "timestamps.txt"),
        velo_ns=_sensor_stamps(drive_dir, "velodyne_points") if lidar else None,
        oxts_ns=oxts_ns,
        poses=dict(zip(oxts_indices, kitti.oxts_poses(records), strict=True)),
        records=dict(zip(oxts_indices, records, strict=True)),
        gt_root=Path(gt_dir) if gt_dir is not None else drive_dir,
        baseline=_right_baseline(drive_dir, indices) if right and cam == 2 else None,
    )


def _right_baseline(drive_dir: Path, indices: list[int]) -> float | None:
    """Camera 2 -> 3 baseline when the drive has the right camera's images for ``indices``, else None."""
    if not (drive_dir / "image_03").is_dir():
        return None
    missing = sorted(set(indices) - set(kitti.check_drive(drive_dir, 3)))
    if missing:
        raise kitti.KittiLayoutError(
            f"{drive_dir / 'image_03' / 'data'}: no image for frame(s) {missing[:5]} of image_02"
        )
    return kitti.stereo_baseline(drive_dir.parent)


def _cameras(src: _Source) -> list[_Camera]:
    left = _Camera(src.cam, "", CAMERA_FRAME)
    return [left] if src.baseline is None else [left, _Camera(3, "right_", RIGHT_CAMERA_FRAME, src.baseline)]


def _wanted_topics(src: _Source, *, raw: bool, compressed: bool, ground_truth: bool) -> dict[str, bool]:
    """Which of TOPICS the bag carries: what was asked for, where the drive has the data."""
    have_lidar = src.velo_ns is not None and (src.drive_dir / "velodyne_points" / "data").is_dir()
    have_gt = ground_truth and kitti.depth_gt_path(src.gt_root, src.indices[0], src.cam).parent.is_dir()
    first_labels = kitti.motion_labels_path(src.gt_root, src.indices[0], src.cam)
    have_motion = ground_truth and first_labels.parent.is_dir()
    stereo = src.baseline is not None
    return {
        "image": raw,
        "compressed": compressed,
        "camera_info": True,
        "right_image": raw and stereo,
        "right_compressed": compressed and stereo,
        "right_camera_info": stereo,
        "lidar": have_lidar,
        "tf_static": True,
        "odom": bool(src.poses),
        "depth": have_gt,
        "motion": have_motion,
    }


def _write_bag(
    bag_path: Path,
    plugin: StoragePlugin,
    src: _Source,
    wanted: dict[str, bool],
    jpeg_quality: int,
    progress: bool,
) -> None:
    typestore = get_typestore(TYPE_STORE)  # serialises; its message classes build tf and odometry
    types = rosbags_types(TYPE_STORE.value)  # the runtime's builders' classes
    with Writer(bag_path, version=BAG_VERSION, storage_plugin=plugin) as writer:
        conns = {
            key: writer.add_connection(
                topic,
                msgtype,
                typestore=typestore,
                offered_qos_profiles=[TF_STATIC_QOS if key == "tf_static" else SENSOR_QOS],
            )
            for key, (topic, msgtype) in TOPICS.items()
            if wanted[key]
        }

        def write(key: str, stamp_ns: int, msg: object) -> None:
            writer.write(conns[key], int(stamp_ns), typestore.serialize_cdr(msg, TOPICS[key][1]))

        write("tf_static", *_static_transforms(src, typestore, types, wanted["lidar"]))
        for i in tqdm(src.indices, desc=src.drive_dir.name, unit="frame", disable=not progress):
            for key, stamp_ns, msg in _frame_messages(src, i, types, typestore, wanted, jpeg_quality):
                write(key, stamp_ns, msg)


def _static_transforms(
    src: _Source, typestore: Typestore, types: MessageTypes, have_lidar: bool
) -> tuple[int, object]:
    """Stamp and TFMessage of /tf_static: base_link -> velodyne (when the IMU is calibrated) -> camera
    (-> right camera, with stereo).

    Stamped at the first message of any sensor, so that it goes out first (clocks differ on KITTI).
    """
    first = src.indices[0]
    firsts = [src.image_ns[first]]
    firsts += [src.velo_ns[first]] if have_lidar and len(src.velo_ns) > first else []
    firsts += [src.oxts_ns[min(src.poses)]] if src.poses else []
    first_ns = int(min(firsts))
    calib = src.calib
    lidar_header = stamp_header(types, first_ns, LIDAR_FRAME)
    transforms = [transform_stamped(typestore, lidar_header, CAMERA_FRAME, np.linalg.inv(calib.T_cam_velo))]
    if calib.T_velo_imu is not None:
        base_header = stamp_header(types, first_ns, BASE_FRAME)
        T_base_velo = np.linalg.inv(calib.T_velo_imu)
        transforms.insert(0, transform_stamped(typestore, base_header, LIDAR_FRAME, T_base_velo))
    if src.baseline is not None:
        # Maps right-camera points into the left frame: the right camera sits +B along the left's x.
        T_left_right = make_transform(np.eye(3), [src.baseline, 0.0, 0.0])
        camera_header = stamp_header(types, first_ns, CAMERA_FRAME)
        transforms.append(transform_stamped(typestore, camera_header, RIGHT_CAMERA_FRAME, T_left_right))
    return first_ns, typestore.types["tf2_msgs/msg/TFMessage"](transforms=transforms)


def _frame_messages(
    src: _Source,
    i: int,
    types: MessageTypes,
    typestore: Typestore,
    wanted: dict[str, bool],
    jpeg_quality: int,
) -> Iterator[tuple[str, int, object]]:
    """(topic key, stamp in ns, message) of frame i for the wanted topics, in the order written."""
    stamp = int(src.image_ns[i])
    for camera in _cameras(src):
        yield from _camera_messages(src, camera, i, stamp, types, wanted, jpeg_quality)
    velo_path = kitti.velodyne_path(src.drive_dir, i)
    if wanted["lidar"] and velo_path.is_file():
        velo_ns = int(src.velo_ns[i])
        velo_header = stamp_header(types, velo_ns, LIDAR_FRAME)
        yield "lidar", velo_ns, lidar_cloud(types, velo_header, kitti.load_velodyne(velo_path))
    if i in src.poses:
        oxts_ns = int(src.oxts_ns[i])
        odom_header = stamp_header(types, oxts_ns, ODOM_FRAME)
        yield "odom", oxts_ns, odometry(typestore, odom_header, src.poses[i], src.records[i])
    gt_header = stamp_header(types, stamp, CAMERA_FRAME)  # the depth and its motion labels share it
    gt_path = kitti.depth_gt_path(src.gt_root, i, src.cam)
    if wanted["depth"] and gt_path.is_file():
        depth = kitti.read_depth_png(gt_path)
        depth[depth <= 0] = np.nan
        yield "depth", stamp, depth_to_image_msg(depth, gt_header, types)
    labels_path = kitti.motion_labels_path(src.gt_root, i, src.cam)
    if wanted["motion"] and labels_path.is_file():
        labels = kitti.read_motion_labels(labels_path)
        yield "motion", stamp, numpy_to_image(labels, "mono8", gt_header, types)


def _camera_messages(
    src: _Source,
    camera: _Camera,
    i: int,
    stamp: int,
    types: MessageTypes,
    wanted: dict[str, bool],
    jpeg_quality: int,
) -> Iterator[tuple[str, int, object]]:
    """Image, compressed image and CameraInfo of one camera of frame i (the pair shares the stamp)."""
    header = stamp_header(types, stamp, camera.frame_id)
    path = kitti.image_path(src.drive_dir, i, camera.cam)
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise kitti.KittiLayoutError(f"{path}: cannot read image")
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    size = (rgb.shape[1], rgb.shape[0])
    calib = src.calib
    K = calib.K if size == calib.image_size else scale_intrinsics(calib.K, calib.image_size, size)
    key = camera.prefix
    if wanted[key + "image"]:
        yield key + "image", stamp, numpy_to_image(rgb, "rgb8", header, types)
    if wanted[key + "compressed"]:
        yield key + "compressed", stamp, jpeg_image(types, header, rgb, jpeg_quality)
    info = camera_info_from_K(K, size[0], size[1], header, types)
    if camera.baseline:
        info.p[3] = -K[0, 0] * camera.baseline  # ROS stereo: Tx = -fx' * B in the right camera's P
    yield key + "camera_info", stamp, info


def bag_summary(bag_path: Path | str) -> dict[str, object]:
    """Topic counts, duration and size of a written bag (read back with rosbags)."""
    bag_path = Path(bag_path)
    with Reader(bag_path) as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
        duration_s = reader.duration / 1e9 if reader.message_count else 0.0
    size = sum(p.stat().st_size for p in bag_path.rglob("*") if p.is_file())
    return {"topics": counts, "duration_s": duration_s, "bytes": size}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="depth-kitti2bag",
        description="Convert a KITTI raw drive (…/<date>_drive_NNNN_sync) to a rosbag2.",
    )
    parser.add_argument("drive_dir", type=Path, help="KITTI raw drive folder (calibration in its parent)")
    parser.add_argument("out", type=Path, help="output bag directory (must not exist)")
    parser.add_argument("--storage", choices=sorted(STORAGES), default="sqlite3")
    parser.add_argument("--cam", type=int, choices=(2, 3), default=2, help="colour camera to convert")
    parser.add_argument("--no-raw", action="store_true", help="skip /camera/image_raw")
    parser.add_argument("--no-compressed", action="store_true", help="skip /camera/image_raw/compressed")
    parser.add_argument("--no-lidar", action="store_true", help="skip /lidar/points")
    parser.add_argument(
        "--no-gt", action="store_true", help="skip /ground_truth/depth and /ground_truth/motion"
    )
    parser.add_argument("--gt-dir", type=Path, help="depth-benchmark drive folder holding proj_depth/")
    parser.add_argument("--jpeg-quality", type=int, default=90)
    parser.add_argument("--max-frames", type=int, help="convert only the first N frames")
    args = parser.parse_args(argv)
    try:
        bag = convert_drive(
            args.drive_dir,
            args.out,
            args.storage,
            cam=args.cam,
            raw=not args.no_raw,
            compressed=not args.no_compressed,
            lidar=not args.no_lidar,
            ground_truth=not args.no_gt,
            gt_dir=args.gt_dir,
            jpeg_quality=args.jpeg_quality,
            max_frames=args.max_frames,
            progress=True,
        )
    except (kitti.KittiLayoutError, FileExistsError, ValueError) as exc:
        print(f"depth-kitti2bag: error: {exc}", file=sys.stderr)
        return 2
    summary = bag_summary(bag)
    topics = ", ".join(f"{topic} {n}" for topic, n in sorted(summary["topics"].items()))
    print(
        f"wrote {bag} ({args.storage}, {summary['bytes'] / 1e6:.1f} MB, "
        f"{summary['duration_s']:.1f} s): {topics}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
