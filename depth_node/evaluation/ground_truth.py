"""Ground truth for scoring: depth image topics, or LiDAR projected into the camera the KITTI way.

The replay and the live eval node build their ground truth here, from the same messages the same
way, so their scores agree: :func:`depth_truth` for a depth Image, :func:`lidar_truth` for a
PointCloud2 moved into the camera frame by a transform from ``/tf_static`` (:class:`StaticTransforms`)
or given by hand (:func:`parse_transform`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from depth_node.geometry import points_to_depth_map, quaternion_to_matrix, transform_points
from depth_node.runtime.conversions import image_msg_to_depth
from depth_node.runtime.pointcloud import cloud_xyz


def parse_transform(text: str) -> np.ndarray:
    """``--T-cam-lidar`` value -> 4x4 mapping LiDAR points into the camera frame.

    Accepts 7 numbers ``x y z qx qy qz qw`` (the LiDAR frame's pose in the camera frame, as
    static_transform_publisher takes it), or 12/16 numbers of a row-major 3x4/4x4 matrix.
    Separators: spaces and/or commas.
    """
    values = [float(v) for v in text.replace(",", " ").split()]
    T = np.eye(4)
    if len(values) == 7:
        T[:3, :3] = quaternion_to_matrix(*values[3:])
        T[:3, 3] = values[:3]
    elif len(values) in (12, 16):
        T[: len(values) // 4] = np.reshape(values, (-1, 4))
    else:
        raise ValueError(f"expected 7 (x y z qx qy qz qw), 12 or 16 numbers, got {len(values)}")
    return T


class StaticTransforms:
    """A tf tree from /tf_static messages: finds the 4x4 between any two connected frames."""

    def __init__(self) -> None:
        # child -> (parent, T_parent_child): T maps points in the child frame into the parent frame.
        self._edges: dict[str, tuple[str, np.ndarray]] = {}

    def add_message(self, msg: Any) -> None:
        """Add every TransformStamped of a tf2_msgs/TFMessage."""
        for t in msg.transforms:
            tr, rot = t.transform.translation, t.transform.rotation
            T = np.eye(4)
            T[:3, :3] = quaternion_to_matrix(rot.x, rot.y, rot.z, rot.w)
            T[:3, 3] = (tr.x, tr.y, tr.z)
            self._edges[t.child_frame_id.lstrip("/")] = (t.header.frame_id.lstrip("/"), T)

    def _to_root(self, frame: str) -> list[tuple[str, np.ndarray]]:
        """Chain of (frame, T_frame_start) from ``frame`` up to its root."""
        chain, T, seen = [(frame, np.eye(4))], np.eye(4), {frame}
        while frame in self._edges:
            parent, T_parent_child = self._edges[frame]
            if parent in seen:  # a cycle in a malformed tree: stop rather than loop
                break
            T = T_parent_child @ T
            chain.append((parent, T))
            seen.add(parent)
            frame = parent
        return chain

    def lookup(self, target: str, source: str) -> np.ndarray | None:
        """4x4 that maps points in ``source`` into ``target``, or None when not connected."""
        target, source = target.lstrip("/"), source.lstrip("/")
        up_source = dict(self._to_root(source))
        for frame, T_frame_target in self._to_root(target):
            if frame in up_source:
                return np.linalg.inv(T_frame_target) @ up_source[frame]
        return None

    @property
    def frames(self) -> list[str]:
        return sorted(set(self._edges) | {parent for parent, _ in self._edges.values()})


@dataclass
class GroundTruth:
    """One frame's ground truth: a dense/sparse depth image, or LiDAR points still to be projected.

    LiDAR projection is deferred to :meth:`depth` so that frames never scored (dropped, unmatched)
    cost nothing.
    """

    source: str
    dense: np.ndarray | None = None  # (H, W) float32 metres, NaN = invalid
    points_cam: np.ndarray | None = None  # (N, 3) in the camera optical frame
    K: np.ndarray | None = None
    size: tuple[int, int] | None = None  # (width, height) of the camera image

    def depth(self) -> np.ndarray:
        """Ground truth depth image, float32 metres, NaN where there is none."""
        if self.dense is None:
            assert self.points_cam is not None and self.K is not None and self.size is not None
            self.dense = lidar_depth_map(self.points_cam, self.K, self.size[1], self.size[0])
            self.points_cam = None
        return self.dense


def lidar_depth_map(points_cam: np.ndarray, K: np.ndarray, height: int, width: int) -> np.ndarray:
    """Project camera-frame LiDAR points the way KITTI builds its ground truth; NaN = no point."""
    depth = points_to_depth_map(points_cam, K, height, width)
    depth[depth <= 0] = np.nan
    return depth


def depth_truth(msg: Any, topic: str) -> GroundTruth:
    """Ground truth from a REP 118 depth Image (32FC1 metres or 16UC1 mm); BadInputError if not one."""
    return GroundTruth(f"depth image {topic}", dense=image_msg_to_depth(msg))


def lidar_truth(
    msg: Any, camera_info: Any, T_cam_lidar: np.ndarray, topic: str, image_size: tuple[int, int] | None = None
) -> GroundTruth:
    """Ground truth from a LiDAR PointCloud2: points moved into the camera frame, projected lazily.

    ``image_size`` (w, h) stands in for a camera_info without width/height. BadInputError for a
    cloud without x, y, z; ValueError when no image size is known.
    """
    size = (int(camera_info.width), int(camera_info.height))
    if not all(size):
        if image_size is None:
            raise ValueError(f"camera_info on {camera_info.header.frame_id!r} has no image size")
        size = image_size
    return GroundTruth(
        f"LiDAR {topic} projected (KITTI recipe)",
        points_cam=transform_points(T_cam_lidar, cloud_xyz(msg)),
        K=np.asarray(camera_info.k, dtype=np.float64).reshape(3, 3),
        size=size,
    )
