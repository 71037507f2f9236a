"""The replay's output rosbag2: the node's depth topics, plus copies of the input camera topics.

Played back with ``ros2 bag play`` it shows in rviz2 exactly what the node would have published.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from depth_node.evaluation.bag_input import TYPESTORE
from depth_node.files import named_write_errors

OUT_TOPICS = {"image": "/depth/image", "camera_info": "/depth/camera_info", "points": "/depth/points"}


class OutputBag:
    """Output rosbag2: depth topics plus (optionally) copies of the input camera topics."""

    def __init__(self, path: Path, storage: str) -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer
        from rosbags.typesys import Stores, get_typestore

        self.typestore = get_typestore(Stores(TYPESTORE))
        plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
        self.path = path
        self.writer = Writer(path, version=8, storage_plugin=plugin)
        with named_write_errors(path):  # a full disk: an error naming the bag
            self.writer.open()
        self.connections: dict[str, Any] = {}

    def add(self, topic: str, msgtype: str, qos: Sequence[Any] = ()) -> None:
        with named_write_errors(self.path):
            self.connections[topic] = self.writer.add_connection(
                topic, msgtype, typestore=self.typestore, offered_qos_profiles=list(qos)
            )

    def write_raw(self, topic: str, timestamp: int, data: bytes | memoryview) -> None:
        with named_write_errors(self.path):
            self.writer.write(self.connections[topic], timestamp, data)

    def write(self, topic: str, timestamp: int, msg: Any) -> None:
        msgtype = self.connections[topic].msgtype
        self.write_raw(topic, timestamp, self.typestore.serialize_cdr(msg, msgtype))

    def close(self) -> None:
        with named_write_errors(self.path):
            self.writer.close()
