"""A rosbag2 (sqlite3 or MCAP) camera recording as a training source.

The bag is indexed once (image stamps from the CDR headers without decoding any image, the first
CameraInfo, all odometry); frames are read lazily by their log time, so a long drive never sits in
memory. Each DataLoader worker opens its own reader. Images decode through
``depth_node.runtime.conversions.to_rgb8`` (Image in any colour/mono encoding, or JPEG/PNG CompressedImage).

Distances for velocity supervision come from ``nav_msgs/Odometry`` positions interpolated to the
image stamps (metres travelled by the odometry frame, ``base_link``; the camera's lever arm is
ignored, which differs from the camera's own travel only by second-order terms while turning).
Frames where the odometry does not cover the stamps get NaN. Without odometry, distances are NaN
and no static filtering happens. The images are assumed rectified (CameraInfo ``k`` is used; ``d``
is ignored).

Stereo (``stereo=True``): a second camera stream, the right camera of a rectified pair, recorded
with the same header stamps (hardware-triggered pairs). Its CameraInfo follows the ROS stereo
convention, P = [K | (Tx, Ty, 0)] with Tx = -fx * baseline, which gives the transform from the left
camera into the right one; its K must equal the left camera's.
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from depth_node.data.bag_convert import MOTION_NAME
from depth_node.runtime.conversions import to_rgb8
from depth_node.runtime.errors import BadInputError
from depth_node.runtime.message_types import stamp_ns
from training.datasets.common import AugmentConfig, DataError, MonoDataset

log = logging.getLogger(__name__)

IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")
CAMERA_INFO_TYPE = "sensor_msgs/msg/CameraInfo"
ODOMETRY_TYPE = "nav_msgs/msg/Odometry"
DEPTH_ENCODINGS = ("32FC1", "16UC1", "32FC", "64FC1")


class BagDatasetError(DataError):
    """A bag that cannot serve as a training source (message says what is missing)."""


@contextlib.contextmanager
def _bag_errors(path: Path, where: str = "") -> Iterator[None]:
    """rosbags' errors (an unreadable database, a message that does not deserialize) and undecodable
    images as one BagDatasetError line naming the bag: training stops with a reason, not a traceback."""
    from rosbags.highlevel import AnyReaderError
    from rosbags.rosbag2 import ReaderError

    try:
        yield
    except (AnyReaderError, ReaderError, BadInputError) as error:
        detail = " ".join(str(error).split())
        if str(path) not in detail:
            detail = f"bag {path}: {where + ': ' if where else ''}{detail}"
        raise BagDatasetError(detail) from None


def _open_reader(path: Path) -> Any:
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore

    # Bags without embedded message definitions (older sqlite3 ones) need a default typestore.
    reader = AnyReader([path], default_typestore=get_typestore(Stores.ROS2_HUMBLE))
    with _bag_errors(path):
        reader.open()
    return reader


def cdr_headerstamp_ns(raw: bytes | memoryview) -> int | None:
    """The ``std_msgs/Header`` stamp of a serialized message that starts with one, without decoding it.

    ROS 2 CDR: a 4-byte encapsulation header (byte 1 = 1 for little endian), then int32 sec and
    uint32 nanosec. Returns None for any other encapsulation (the caller decodes the message).
    """
    if len(raw) < 12 or raw[0] != 0 or raw[1] not in (0, 1):
        return None
    fmt = "<iI" if raw[1] == 1 else ">iI"
    sec, nanosec = struct.unpack_from(fmt, raw, 4)
    return sec * 1_000_000_000 + nanosec


def _connections(reader: Any, wanted: str | None, types: Sequence[str], what: str) -> list[Any]:
    """Connections of topic ``wanted`` (or of every topic when None) with one of the given types."""
    conns = [c for c in reader.connections if c.msgtype in types]
    if wanted is not None:
        chosen = [c for c in conns if c.topic == wanted]
        if not chosen:
            raise BagDatasetError(
                f"bag has no {what} topic {wanted!r}; topics of that kind: {sorted({c.topic for c in conns})}"
            )
        return chosen
    if not conns:
        raise BagDatasetError(f"bag has no {what} topic ({' or '.join(types)})")
    return conns


def _single_topic(conns: list[Any], what: str, key: str) -> Any:
    if len({c.topic for c in conns}) != 1:
        raise BagDatasetError(f"bag has several {what} topics {sorted({c.topic for c in conns})}; set {key}")
    return conns[0]


def _first_message(reader: Any, conn: Any) -> Any:
    for c, _, raw in reader.messages(connections=[conn]):
        return reader.deserialize(raw, c.msgtype)
    return None


def _image_connection(reader: Any, wanted: str | None) -> Any:
    """The camera topic: as configured, else the one colour stream (raw Image preferred to compressed)."""
    conns = _connections(reader, wanted, IMAGE_TYPES, "image")
    if wanted is not None:
        return conns[0]
    colour = []
    for conn in conns:
        if conn.msgtype == "sensor_msgs/msg/Image":
            first = _first_message(reader, conn)
            is_labels = conn.topic.rstrip("/").rsplit("/", 1)[-1] == MOTION_NAME  # mono8, like a camera
            if first is None or first.encoding in DEPTH_ENCODINGS or is_labels:
                continue  # depth and motion-label ground truth images are not camera frames
        colour.append(conn)
    if not colour:
        raise BagDatasetError("bag has no colour image topic")
    raw = [c for c in colour if c.msgtype == "sensor_msgs/msg/Image"]
    return _single_topic(raw or colour, "camera", "data.bag.image_topic")


def _index_stream(reader: Any, conn: Any, path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(log times, header stamps, occurrence) of an image topic's messages in stamp order.

    Stamps come from the CDR headers without decoding images; ``occurrence`` says which of the
    messages sharing a log time each one is.
    """
    log_times, stamps = [], []
    for c, log_time, raw in reader.messages(connections=[conn]):
        stamp = cdr_headerstamp_ns(raw)
        if stamp is None:
            stamp = stamp_ns(reader.deserialize(raw, c.msgtype).header)
        log_times.append(log_time)
        stamps.append(stamp)
    if not log_times:
        raise BagDatasetError(f"bag {path}: topic {conn.topic} has no messages")
    order = np.argsort(np.asarray(stamps), kind="stable")
    times = np.asarray(log_times, dtype=np.int64)[order]
    occurrence = np.zeros(len(order), dtype=np.int64)
    seen: dict[int, int] = {}
    for i, t in enumerate(times.tolist()):
        occurrence[i] = seen.get(t, 0)
        seen[t] = occurrence[i] + 1
    return times, np.asarray(stamps, dtype=np.int64)[order], occurrence


class BagDataset(MonoDataset):
    """Training samples from a rosbag2 camera stream (see ``MonoDataset`` for the keys).

    Args:
        path: the bag (a rosbag2 folder, or an .mcap / .db3 file).
        image_topic, camera_info_topic: None picks the only topic of the type.
        odom_topic: nav_msgs/Odometry topic for distances and static filtering (None: none).
        static_speed: drop frames slower than this (m/s, from odometry); None/0 keeps all.
        stereo, right_image_topic, right_camera_info_topic: add the right camera's frame with the
            same stamp as stereo partner (see the module docstring); frames without one are dropped.
    """

    def __init__(
        self,
        path: str | Path,
        height: int,
        width: int,
        frame_ids: Sequence[int] = (0, -1, 1),
        *,
        image_topic: str | None = None,
        camera_info_topic: str | None = None,
        odom_topic: str | None = "/odom",
        static_speed: float | None = 1.0,
        augment: AugmentConfig | Mapping[str, Any] | None = None,
        is_train: bool = True,
        seed: int = 0,
        stereo: bool = False,
        right_image_topic: str | None = None,
        right_camera_info_topic: str | None = None,
    ) -> None:
        super().__init__(
            height, width, frame_ids, augment=augment, is_train=is_train, seed=seed, stereo=stereo
        )
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"bag {self.path} does not exist")
        if stereo and not (right_image_topic and right_camera_info_topic):
            raise BagDatasetError(
                f"bag {self.path}: stereo training needs data.bag.right_image_topic and "
                "data.bag.right_camera_info_topic"
            )
        reader = _open_reader(self.path)
        try:
            with _bag_errors(self.path):
                self._index(reader, image_topic, camera_info_topic, odom_topic)
                if stereo:
                    self._index_right(reader, str(right_image_topic), str(right_camera_info_topic))
        finally:
            reader.close()
        self._reader: Any = None
        self._reader_pid: int | None = None
        self._conn: Any = None
        self._right_conn: Any = None

        lo, hi = -min(self.frame_ids), max(self.frame_ids)
        candidates = np.arange(lo, len(self.log_times) - hi)
        if stereo:
            paired = self.right_position[candidates] >= 0
            if (~paired).any():
                log.info("bag %s: dropped %d frames without a right image", self.path, (~paired).sum())
            candidates = candidates[paired]
        if static_speed and self.speeds is not None:
            moving = ~(self.speeds[candidates] < static_speed)  # NaN speed (no odometry there): keep
            if (~moving).any():
                log.info(
                    "bag %s: dropped %d static frames (speed < %.2f m/s)",
                    self.path,
                    (~moving).sum(),
                    static_speed,
                )
            candidates = candidates[moving]
        if candidates.size == 0:
            raise BagDatasetError(f"bag {self.path}: no usable frames on {self.image_topic}")
        self.samples = candidates

    def _index(
        self, reader: Any, image_topic: str | None, info_topic: str | None, odom_topic: str | None
    ) -> None:
        conn = _image_connection(reader, image_topic)
        recorded_as = sorted({c.msgtype for c in reader.connections if c.topic == conn.topic})
        if len(recorded_as) > 1:
            raise BagDatasetError(f"bag {self.path}: topic {conn.topic} holds several types {recorded_as}")
        self.image_topic = conn.topic
        self.image_msgtype = conn.msgtype
        self.log_times, self.stamps_ns, self.occurrence = _index_stream(reader, conn, self.path)
        info = self._camera_info(reader, info_topic, "data.bag.camera_info_topic")
        self.K = np.asarray(info.k, dtype=np.float64).reshape(3, 3)
        self.info_size = (int(info.width), int(info.height))

        self.positions: np.ndarray | None = None
        self.speeds: np.ndarray | None = None
        odom = [
            c
            for c in reader.connections
            if odom_topic and c.topic == odom_topic and c.msgtype == ODOMETRY_TYPE
        ]
        if odom:
            times, points = [], []
            for c, _, raw in reader.messages(connections=odom):
                msg = reader.deserialize(raw, c.msgtype)
                p = msg.pose.pose.position
                times.append(stamp_ns(msg.header))
                points.append((p.x, p.y, p.z))
            if len(times) >= 2:
                self.positions = self._interpolate(np.asarray(times), np.asarray(points, dtype=np.float64))
                self.speeds = self._speeds()
        elif odom_topic:
            log.info(
                "bag %s: no %s odometry; distances unknown (no velocity supervision)", self.path, odom_topic
            )

    def _camera_info(self, reader: Any, topic: str | None, key: str) -> Any:
        """The first CameraInfo of ``topic`` (None: the only one), checked for usable intrinsics."""
        conn = _single_topic(
            _connections(reader, topic, (CAMERA_INFO_TYPE,), "camera_info"), "camera_info", key
        )
        info = _first_message(reader, conn)
        if info is None:
            raise BagDatasetError(f"bag {self.path}: camera_info topic {conn.topic} has no messages")
        if info.k[0] <= 0 or info.width <= 0:
            raise BagDatasetError(f"bag {self.path}: camera_info on {conn.topic} has no intrinsics")
        return info

    def _index_right(self, reader: Any, image_topic: str, info_topic: str) -> None:
        """The right camera's stream, each left frame's partner (same stamp) and the pair's transform."""
        conn = _image_connection(reader, image_topic)
        self.right_topic, self.right_msgtype = conn.topic, conn.msgtype
        self.right_log_times, right_stamps, self.right_occurrence = _index_stream(reader, conn, self.path)
        info = self._camera_info(reader, info_topic, "data.bag.right_camera_info_topic")
        K_right = np.asarray(info.k, dtype=np.float64).reshape(3, 3)
        if (int(info.width), int(info.height)) != self.info_size or not np.allclose(
            K_right, self.K, rtol=1e-6
        ):
            raise BagDatasetError(
                f"bag {self.path}: {info_topic} is not rectified with the left camera (K or size differ)"
            )
        P = np.asarray(info.p, dtype=np.float64).reshape(3, 4)
        if P[0, 3] >= 0:
            raise BagDatasetError(
                f"bag {self.path}: {info_topic} P[0,3]={P[0, 3]}: expected -fx*baseline < 0 (a right camera)"
            )
        self.T_right_left = np.eye(4)
        self.T_right_left[:2, 3] = P[0, 3] / P[0, 0], P[1, 3] / P[1, 1]
        where = np.searchsorted(right_stamps, self.stamps_ns)
        where = np.minimum(where, len(right_stamps) - 1)
        self.right_position = np.where(right_stamps[where] == self.stamps_ns, where, -1)

    def _interpolate(self, times: np.ndarray, points: np.ndarray) -> np.ndarray:
        """Odometry positions at the image stamps; NaN outside the odometry's time span."""
        order = np.argsort(times, kind="stable")
        times, points = times[order], points[order]
        # Relative times in float64 seconds keep sub-microsecond precision over long drives.
        t0 = times[0]
        t = (times - t0) / 1e9
        query = (self.stamps_ns - t0) / 1e9
        out = np.stack([np.interp(query, t, points[:, k]) for k in range(3)], axis=1)
        outside = (query < t[0]) | (query > t[-1])
        out[outside] = np.nan
        return out

    def _speeds(self) -> np.ndarray:
        """Speed (m/s) per frame from the interpolated positions (central differences)."""
        assert self.positions is not None
        seconds = (self.stamps_ns - self.stamps_ns[0]) / 1e9
        n = len(seconds)
        if n < 2:
            return np.full(n, np.nan)
        prev_i = np.maximum(np.arange(n) - 1, 0)
        next_i = np.minimum(np.arange(n) + 1, n - 1)
        dt = seconds[next_i] - seconds[prev_i]
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.linalg.norm(self.positions[next_i] - self.positions[prev_i], axis=1) / dt

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        # Readers (and connections, which point back to them) do not cross process boundaries.
        state["_reader"], state["_reader_pid"], state["_conn"], state["_right_conn"] = None, None, None, None
        return state

    def reader(self) -> Any:
        """This process's open reader (each DataLoader worker opens its own)."""
        if self._reader is None or self._reader_pid != os.getpid():
            self._reader = _open_reader(self.path)
            self._reader_pid = os.getpid()
            self._conn = self._find(self.image_topic, self.image_msgtype)
            if self.stereo:
                self._right_conn = self._find(self.right_topic, self.right_msgtype)
        return self._reader

    def _find(self, topic: str, msgtype: str) -> Any:
        return next(c for c in self._reader.connections if c.topic == topic and c.msgtype == msgtype)

    def close(self) -> None:
        if self._reader is not None and self._reader_pid == os.getpid():
            self._reader.close()
        self._reader = None

    def __len__(self) -> int:
        return len(self.samples)

    def frame(self, position: int) -> np.ndarray:
        """Image number ``position`` of the stream (in stamp order) as RGB uint8."""
        self.reader()  # opens this process's reader and connections
        return self._read(self._conn, int(self.log_times[position]), int(self.occurrence[position]))

    def _read(self, conn: Any, log_time: int, wanted: int) -> np.ndarray:
        """The ``wanted``-th message at ``log_time`` on ``conn`` as RGB uint8."""
        reader = self.reader()
        for k, (c, _, raw) in enumerate(
            reader.messages(connections=[conn], start=log_time, stop=log_time + 1)
        ):
            if k == wanted:
                with _bag_errors(self.path, f"{conn.topic} at log time {log_time}"):
                    return np.array(to_rgb8(reader.deserialize(raw, c.msgtype)))  # own the pixels
        raise BagDatasetError(f"bag {self.path}: frame at log time {log_time} on {conn.topic} vanished")

    def load_stereo_color(self, index: int) -> np.ndarray:
        self.reader()
        j = int(self.right_position[int(self.samples[index])])
        return self._read(self._right_conn, int(self.right_log_times[j]), int(self.right_occurrence[j]))

    def stereo_transform(self, index: int) -> np.ndarray:
        return self.T_right_left

    def load_color(self, index: int, offset: int) -> np.ndarray:
        return self.frame(int(self.samples[index]) + offset)

    def intrinsics(self, index: int) -> tuple[np.ndarray, tuple[int, int]]:
        return self.K, self.info_size

    def distance(self, index: int, offset: int) -> float:
        if self.positions is None:
            return float("nan")
        i = int(self.samples[index])
        return float(np.linalg.norm(self.positions[i + offset] - self.positions[i]))

    def stamp(self, index: int) -> int:
        """Header stamp (ns) of sample ``index``'s frame 0."""
        return int(self.stamps_ns[int(self.samples[index])])
