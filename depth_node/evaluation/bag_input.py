"""Reading rosbag2 recordings for evaluation: open (sqlite3 or MCAP), pick topics, iterate messages.

Every failure is a :class:`ReplayError` whose one line names the bag, the topic and what was
expected; a damaged bag's exceptions from rosbags, sqlite3 or the MCAP parser are turned into one.
"""

from __future__ import annotations

import sqlite3
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from depth_node.data.bag_convert import MOTION_NAME

IMAGE_TYPE = "sensor_msgs/msg/Image"
COMPRESSED_TYPE = "sensor_msgs/msg/CompressedImage"
INFO_TYPE = "sensor_msgs/msg/CameraInfo"
CLOUD_TYPE = "sensor_msgs/msg/PointCloud2"
TF_TYPE = "tf2_msgs/msg/TFMessage"
TYPESTORE = "ros2_humble"  # message definitions for reading and writing bags (as message_types.rosbags_types)


class ReplayError(Exception):
    """A replay that cannot run: the message is one line naming the input and what was expected."""


# Errors that a damaged bag raises from inside rosbags / sqlite3 / the MCAP parser.
_BAG_ERRORS: tuple[type[BaseException], ...] = (
    sqlite3.Error,
    struct.error,
    EOFError,
    OSError,
    ValueError,
    KeyError,
    IndexError,
    AssertionError,
    UnicodeDecodeError,
)


def bag_error_types() -> tuple[type[BaseException], ...]:
    from rosbags.highlevel import AnyReaderError
    from rosbags.rosbag2 import ReaderError

    extra: tuple[type[BaseException], ...] = ()
    try:  # rosbags reads sqlite3 bags through apsw where it is installed
        import apsw

        extra = (apsw.Error,)
    except ImportError:
        pass
    return (AnyReaderError, ReaderError, *_BAG_ERRORS, *extra)


def one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) < 300 else text[:297] + "..."


def open_bag(path: Path) -> Any:
    """An opened rosbags AnyReader (caller closes it); ReplayError when missing or unreadable."""
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore

    if not path.exists():
        raise ReplayError(f"bag not found: {path}")
    if path.is_dir() and not (path / "metadata.yaml").exists():
        raise ReplayError(f"{path} is not a rosbag2: no metadata.yaml in the folder")
    try:
        reader = AnyReader([path], default_typestore=get_typestore(Stores(TYPESTORE)))
        reader.open()
    except bag_error_types() as err:
        raise ReplayError(f"cannot read bag {path} (corrupt or truncated?): {one_line(err)}") from None
    return reader


def bag_storage(path: Path) -> str:
    """'mcap' or 'sqlite3': the storage of an input bag (folder or single file)."""
    if path.is_file():
        return "mcap" if path.suffix == ".mcap" else "sqlite3"
    metadata = path / "metadata.yaml"
    if metadata.exists() and "storage_identifier: mcap" in metadata.read_text(errors="replace"):
        return "mcap"
    return "mcap" if any(path.glob("*.mcap")) else "sqlite3"


@dataclass
class Topics:
    """The input topics a replay uses (None: not present / not used)."""

    image: str
    image_type: str
    camera_info: str
    gt_depth: str | None = None
    lidar: str | None = None
    tf_static: str | None = None
    motion: str | None = None  # motion labels paired with gt_depth (scored per region)


def _namespace(topic: str) -> str:
    parts = topic.rstrip("/").split("/")
    if parts[-1] == "compressed":  # image_transport: /ns/image_raw/compressed
        parts = parts[:-1]
    return "/".join(parts[:-1])


def _is_ground_truth_image(topic: str) -> bool:
    """Depth or motion-label images are ground truth, never the camera."""
    return "depth" in topic.lower() or topic.rstrip("/").rsplit("/", 1)[-1] == MOTION_NAME


@dataclass(frozen=True)
class _BagTopics:
    """A bag's topics (name -> type) and message counts, with the one-line errors that name them."""

    types: Mapping[str, str]
    counts: Mapping[str, int]
    bag: Path

    @property
    def listing(self) -> str:
        return ", ".join(f"{n} [{typ.rsplit('/', 1)[-1]}]" for n, typ in sorted(self.types.items())) or "none"

    def of_type(self, *types: str) -> list[str]:
        """Input topics of these types (the node's own outputs, /depth/..., are never inputs)."""
        return [t for t, typ in self.types.items() if typ in types and not t.startswith("/depth/")]

    def need(self, name: str, allowed: tuple[str, ...], what: str) -> str:
        if name not in self.types:
            raise ReplayError(f"{what} topic {name} not in bag {self.bag}; topics: {self.listing}")
        if self.types[name] not in allowed:
            raise ReplayError(
                f"{what} topic {name} in {self.bag} is {self.types[name]}, expected {' or '.join(allowed)}"
            )
        return name

    def has_messages(self, name: str) -> bool:
        return self.counts.get(name, 0) > 0


def _pick_camera_info(bag: _BagTopics, camera_info: str | None, image: str | None) -> str:
    infos = bag.of_type(INFO_TYPE)
    if camera_info is not None:
        return bag.need(camera_info, (INFO_TYPE,), "camera_info")
    if image is not None and (same := [t for t in infos if _namespace(t) == _namespace(image)]):
        return same[0]
    if infos:
        return sorted(infos, key=lambda t: ("camera" not in t, t))[0]
    raise ReplayError(
        f"bag {bag.bag} has no sensor_msgs/CameraInfo topic (needed for the intrinsics); "
        f"topics: {bag.listing}"
    )


def _pick_image(bag: _BagTopics, image: str | None, info: str) -> str:
    if image is not None:
        return bag.need(image, (IMAGE_TYPE, COMPRESSED_TYPE), "camera image")
    candidates = [t for t in bag.of_type(IMAGE_TYPE, COMPRESSED_TYPE) if not _is_ground_truth_image(t)]
    if not candidates:
        raise ReplayError(
            f"bag {bag.bag} has no camera image topic (sensor_msgs/Image or CompressedImage); "
            f"topics: {bag.listing}"
        )
    # Same namespace as the camera_info first, raw before compressed, then by name.
    candidates.sort(key=lambda t: (_namespace(t) != _namespace(info), bag.types[t] != IMAGE_TYPE, t))
    return candidates[0]


def _pick_ground_truth(bag: _BagTopics, selected: Topics, gt: str, gt_topic: str | None) -> None:
    """Set ``selected.gt_depth`` or ``selected.lidar`` (or neither, for gt 'none' or none found)."""
    if gt_topic is not None:
        bag.need(gt_topic, (IMAGE_TYPE, CLOUD_TYPE), "ground truth")
        if bag.types[gt_topic] == IMAGE_TYPE:
            selected.gt_depth = gt_topic
        else:
            selected.lidar = gt_topic
        return
    if gt in ("auto", "depth"):
        depth_topics = sorted(
            (t for t in bag.of_type(IMAGE_TYPE) if "depth" in t.lower()),
            key=lambda t: ("ground_truth" not in t and "gt" not in t, t),
        )
        if depth_topics and bag.has_messages(depth_topics[0]):
            selected.gt_depth = depth_topics[0]
            return
        if gt == "depth":
            raise ReplayError(f"bag {bag.bag} has no ground truth depth image topic; topics: {bag.listing}")
    if gt in ("auto", "lidar"):
        clouds = sorted(bag.of_type(CLOUD_TYPE))
        if clouds and bag.has_messages(clouds[0]):
            selected.lidar = clouds[0]
        elif gt == "lidar":
            raise ReplayError(f"bag {bag.bag} has no LiDAR PointCloud2 topic; topics: {bag.listing}")


def _pick_motion(bag: _BagTopics, selected: Topics, motion_topic: str | None) -> None:
    """Set ``selected.motion``: the named topic, or <depth ground truth namespace>/motion where the
    bag has it (``motion_topic`` None), or none ('none')."""
    if motion_topic == "none":
        return
    if motion_topic is not None:
        bag.need(motion_topic, (IMAGE_TYPE,), "motion labels")
        if selected.gt_depth is None:
            got = f"LiDAR {selected.lidar}" if selected.lidar else "none"
            raise ReplayError(
                f"motion labels topic {motion_topic} in {bag.bag} pairs with a depth image ground truth, "
                f"got {got} (pass --motion-topic none, or a depth ground truth with --gt depth)"
            )
        selected.motion = motion_topic
    elif selected.gt_depth is not None:
        beside = f"{_namespace(selected.gt_depth)}/{MOTION_NAME}"
        if bag.types.get(beside) == IMAGE_TYPE and bag.has_messages(beside):
            selected.motion = beside


def select_topics(
    topics: Mapping[str, str],
    counts: Mapping[str, int],
    bag: Path,
    *,
    image: str | None = None,
    camera_info: str | None = None,
    gt: str = "auto",
    gt_topic: str | None = None,
    motion_topic: str | None = None,
) -> Topics:
    """Pick the camera, camera_info and ground truth topics of a bag (``topics``: name -> type).

    ``gt``: 'auto' (a depth image topic if there is one, else a LiDAR PointCloud2), 'depth',
    'lidar' or 'none'; ``gt_topic`` names the ground truth topic explicitly. ``motion_topic``: the
    motion labels' topic (None: ``<depth ground truth namespace>/motion`` where the bag has it;
    'none': no labels).
    """
    if not topics:
        raise ReplayError(f"bag {bag} is empty: it has no topics")
    table = _BagTopics(topics, counts, bag)
    info = _pick_camera_info(table, camera_info, image)
    image_topic = _pick_image(table, image, info)
    if not table.has_messages(image_topic):
        raise ReplayError(f"bag {bag} has no messages on the camera topic {image_topic}")
    if not table.has_messages(info):
        raise ReplayError(f"bag {bag} has no messages on the camera_info topic {info}")
    selected = Topics(image=image_topic, image_type=topics[image_topic], camera_info=info)
    selected.tf_static = "/tf_static" if topics.get("/tf_static") == TF_TYPE else None
    _pick_ground_truth(table, selected, gt, gt_topic)
    _pick_motion(table, selected, motion_topic)
    return selected


def iter_messages(reader: Any, connections: list[Any], bag: Path) -> Iterator[tuple[Any, int, Any]]:
    """reader.messages() with a damaged bag's exceptions turned into ReplayError."""
    errors = bag_error_types()
    iterator = reader.messages(connections=connections)
    while True:
        try:
            item = next(iterator)
        except StopIteration:
            return
        except errors as err:
            raise ReplayError(f"cannot read bag {bag} (corrupt or truncated?): {one_line(err)}") from None
        yield item


def deserialize(reader: Any, raw: Any, conn: Any, bag: Path) -> Any:
    try:
        return reader.deserialize(raw, conn.msgtype)
    except bag_error_types() as err:
        raise ReplayError(
            f"cannot decode a {conn.msgtype} message on {conn.topic} in {bag}: {one_line(err)}"
        ) from None
