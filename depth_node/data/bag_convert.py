"""Convert a KITTI raw drive (real or synthetic) into a rosbag2 (sqlite3 or mcap) with rosbags.

Topics (all stamps from the drive's timestamps files, in nanoseconds):

- ``/camera/image_raw``             sensor_msgs/Image, ``rgb8``, frame ``camera_optical``
- ``/camera/image_raw/compressed``  sensor_msgs/CompressedImage, format ``jpeg``
- ``/camera/camera_info``           sensor_msgs/CameraInfo: K = P_rect[:, :3], P = [K | 0] (see below)
- ``/lidar/points``                 sensor_msgs/PointCloud2, x y z intensity float32, frame ``velodyne``
- ``/tf_static``                    tf2_msgs/TFMessage: base_link -> velodyne -> camera_optical
- ``/odom``                         nav_msgs/Odometry from OXTS, ``odom`` -> ``base_link`` (the IMU)
- ``/ground_truth/depth``           sensor_msgs/Image 32FC1 metres, NaN invalid (when GT PNGs exist)

``camera_optical`` is the rectified frame of the chosen camera (cam 2 by default), the frame
that ``KittiCalib.T_cam_velo`` ends in. CameraInfo's P therefore has a zero translation column:
KITTI's P_rect column is the offset to camera 0's frame, not a stereo baseline of this frame.

Bags are metadata version 8 (what Jazzy writes; Humble reads it) with offered QoS profiles that
``ros2 bag play`` reuses: reliable/volatile for the sensor streams, reliable/transient_local for
/tf_static so that late subscribers still get the static transforms.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore
from tqdm import tqdm

from depth_node.data import kitti
from depth_node.geometry import scale_intrinsics

CAMERA_FRAME = "camera_optical"
LIDAR_FRAME = "velodyne"
BASE_FRAME = "base_link"
ODOM_FRAME = "odom"
TOPICS = {
    "image": ("/camera/image_raw", "sensor_msgs/msg/Image"),
    "compressed": ("/camera/image_raw/compressed", "sensor_msgs/msg/CompressedImage"),
    "camera_info": ("/camera/camera_info", "sensor_msgs/msg/CameraInfo"),
    "lidar": ("/lidar/points", "sensor_msgs/msg/PointCloud2"),
    "tf_static": ("/tf_static", "tf2_msgs/msg/TFMessage"),
    "odom": ("/odom", "nav_msgs/msg/Odometry"),
    "depth": ("/ground_truth/depth", "sensor_msgs/msg/Image"),
}
BAG_VERSION = 8
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


def quaternion_xyzw(R: np.ndarray) -> tuple[float, float, float, float]:
    """Unit quaternion (x, y, z, w) of a rotation matrix, via OpenCV's axis-angle."""
    rvec, _ = cv2.Rodrigues(np.asarray(R, dtype=np.float64))
    rvec = rvec.ravel()
    angle = float(np.linalg.norm(rvec))
    if angle < 1e-12:
        return 0.0, 0.0, 0.0, 1.0
    axis = rvec / angle * np.sin(angle / 2.0)
    return float(axis[0]), float(axis[1]), float(axis[2]), float(np.cos(angle / 2.0))


class _Messages:
    """Builds the messages of one bag from rosbags' typestore classes."""

    def __init__(self, typestore: object) -> None:
        self.ts = typestore
        self.t = typestore.types

    def header(self, stamp_ns: int, frame_id: str) -> object:
        sec, nanosec = divmod(int(stamp_ns), 1_000_000_000)
        return self.t["std_msgs/msg/Header"](
            stamp=self.t["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec), frame_id=frame_id
        )

    def image(self, header: object, array: np.ndarray, encoding: str) -> object:
        h, w = array.shape[:2]
        data = np.ascontiguousarray(array)
        return self.t["sensor_msgs/msg/Image"](
            header=header,
            height=h,
            width=w,
            encoding=encoding,
            is_bigendian=0,
            step=data.strides[0],
            data=data.view(np.uint8).reshape(-1),
        )

    def compressed(self, header: object, rgb: np.ndarray, quality: int) -> object:
        ok, jpeg = cv2.imencode(
            ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
        )
        if not ok:
            raise RuntimeError("JPEG encoding failed")
        return self.t["sensor_msgs/msg/CompressedImage"](header=header, format="jpeg", data=jpeg.reshape(-1))

    def camera_info(self, header: object, K: np.ndarray, size: tuple[int, int]) -> object:
        roi = self.t["sensor_msgs/msg/RegionOfInterest"](
            x_offset=0, y_offset=0, height=0, width=0, do_rectify=False
        )
        return self.t["sensor_msgs/msg/CameraInfo"](
            header=header,
            height=size[1],
            width=size[0],
            distortion_model="plumb_bob",
            d=np.zeros(5),
            k=K.astype(np.float64).reshape(-1),
            r=np.eye(3).reshape(-1),
            p=np.hstack([K, np.zeros((3, 1))]).reshape(-1),
            binning_x=0,
            binning_y=0,
            roi=roi,
        )

    def cloud(self, header: object, velo: np.ndarray) -> object:
        field = self.t["sensor_msgs/msg/PointField"]
        fields = [
            field(name=name, offset=4 * i, datatype=field.FLOAT32, count=1)
            for i, name in enumerate(("x", "y", "z", "intensity"))
        ]
        data = np.ascontiguousarray(velo, dtype="<f4")
        return self.t["sensor_msgs/msg/PointCloud2"](
            header=header,
            height=1,
            width=len(data),
            fields=fields,
            is_bigendian=False,
            point_step=16,
            row_step=16 * len(data),
            data=data.view(np.uint8).reshape(-1),
            is_dense=bool(np.isfinite(data).all()),
        )

    def transform(self, header: object, child: str, T: np.ndarray) -> object:
        x, y, z, w = quaternion_xyzw(T[:3, :3])
        t = self.t
        return t["geometry_msgs/msg/TransformStamped"](
            header=header,
            child_frame_id=child,
            transform=t["geometry_msgs/msg/Transform"](
                translation=t["geometry_msgs/msg/Vector3"](x=T[0, 3], y=T[1, 3], z=T[2, 3]),
                rotation=t["geometry_msgs/msg/Quaternion"](x=x, y=y, z=z, w=w),
            ),
        )

    def odometry(self, header: object, T: np.ndarray, record: np.ndarray) -> object:
        t = self.t
        x, y, z, w = quaternion_xyzw(T[:3, :3])
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


def _sensor_stamps(drive_dir: Path, folder: str) -> np.ndarray | None:
    path = drive_dir / folder / "timestamps.txt"
    return kitti.read_timestamps_ns(path) if path.is_file() else None


def convert_drive(
    drive_dir: Path | str,
    out_path: Path | str,
    storage: str = "sqlite3",
    *,
    cam: int = 2,
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
    indices = kitti.check_drive(drive_dir, cam)
    if max_frames is not None:
        indices = indices[:max_frames]
    calib = kitti.read_calib(drive_dir.parent, cam)
    oxts_ns = _sensor_stamps(drive_dir, "oxts")
    oxts_indices = (
        [i for i in indices if kitti.oxts_path(drive_dir, i).is_file()] if oxts_ns is not None else []
    )
    records = kitti.read_drive_oxts(drive_dir, oxts_indices)
    source = _Source(
        drive_dir=drive_dir,
        cam=cam,
        indices=indices,
        calib=calib,
        image_ns=kitti.read_timestamps_ns(drive_dir / f"image_{cam:02d}" / "timestamps.txt"),
        velo_ns=_sensor_stamps(drive_dir, "velodyne_points") if lidar else None,
        oxts_ns=oxts_ns,
        poses=dict(zip(oxts_indices, kitti.oxts_poses(records), strict=True)),
        records=dict(zip(oxts_indices, records, strict=True)),
        gt_root=Path(gt_dir) if gt_dir is not None else drive_dir,
    )

    out_path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_path.name}.", suffix=".partial", dir=out_path.parent))
    try:
        # The bag directory keeps its final name inside the staging folder: rosbags names the
        # storage file after it, and metadata.yaml refers to that file.
        staged_bag = staging / out_path.name
        _write_bag(
            staged_bag,
            STORAGES[storage],
            source,
            raw=raw,
            compressed=compressed,
            ground_truth=ground_truth,
            jpeg_quality=jpeg_quality,
            progress=progress,
        )
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


def _write_bag(
    bag_path: Path,
    plugin: StoragePlugin,
    src: _Source,
    *,
    raw: bool,
    compressed: bool,
    ground_truth: bool,
    jpeg_quality: int,
    progress: bool,
) -> None:
    typestore = get_typestore(Stores.ROS2_HUMBLE)
    msgs = _Messages(typestore)
    drive_dir, cam, indices, calib = src.drive_dir, src.cam, src.indices, src.calib
    image_ns, velo_ns, oxts_ns, poses, records = (
        src.image_ns,
        src.velo_ns,
        src.oxts_ns,
        src.poses,
        src.records,
    )
    have_lidar = velo_ns is not None and (drive_dir / "velodyne_points" / "data").is_dir()
    have_gt = ground_truth and kitti.depth_gt_path(src.gt_root, indices[0], cam).parent.is_dir()
    wanted = {
        "image": raw,
        "compressed": compressed,
        "camera_info": True,
        "lidar": have_lidar,
        "tf_static": True,
        "odom": bool(poses),
        "depth": have_gt,
    }
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

        # Static transforms go out first, before any sensor's first message (clocks differ on KITTI).
        firsts = [image_ns[indices[0]]]
        firsts += [velo_ns[indices[0]]] if have_lidar and len(velo_ns) > indices[0] else []
        firsts += [oxts_ns[min(poses)]] if poses else []
        first_ns = int(min(firsts))
        static = [
            msgs.transform(msgs.header(first_ns, LIDAR_FRAME), CAMERA_FRAME, np.linalg.inv(calib.T_cam_velo))
        ]
        if calib.T_velo_imu is not None:
            static.insert(
                0,
                msgs.transform(
                    msgs.header(first_ns, BASE_FRAME), LIDAR_FRAME, np.linalg.inv(calib.T_velo_imu)
                ),
            )
        write("tf_static", first_ns, typestore.types["tf2_msgs/msg/TFMessage"](transforms=static))

        for i in tqdm(indices, desc=drive_dir.name, unit="frame", disable=not progress):
            stamp = int(image_ns[i])
            header = msgs.header(stamp, CAMERA_FRAME)
            path = kitti.image_path(drive_dir, i, cam)
            bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if bgr is None:
                raise kitti.KittiLayoutError(f"{path}: cannot read image")
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            size = (rgb.shape[1], rgb.shape[0])
            K = calib.K if size == calib.image_size else scale_intrinsics(calib.K, calib.image_size, size)
            if raw:
                write("image", stamp, msgs.image(header, rgb, "rgb8"))
            if compressed:
                write("compressed", stamp, msgs.compressed(header, rgb, jpeg_quality))
            write("camera_info", stamp, msgs.camera_info(header, K, size))
            if have_lidar and kitti.velodyne_path(drive_dir, i).is_file():
                velo = kitti.load_velodyne(kitti.velodyne_path(drive_dir, i))
                write("lidar", velo_ns[i], msgs.cloud(msgs.header(velo_ns[i], LIDAR_FRAME), velo))
            if i in poses:
                write(
                    "odom",
                    oxts_ns[i],
                    msgs.odometry(msgs.header(oxts_ns[i], ODOM_FRAME), poses[i], records[i]),
                )
            gt_path = kitti.depth_gt_path(src.gt_root, i, cam)
            if have_gt and gt_path.is_file():
                depth = kitti.read_depth_png(gt_path)
                depth[depth <= 0] = np.nan
                write("depth", stamp, msgs.image(header, depth.astype("<f4"), "32FC1"))


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
    parser.add_argument("--no-gt", action="store_true", help="skip /ground_truth/depth")
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
