"""Offline evaluation: replay a rosbag2 through the depth pipeline, score it, write a bag and a report.

``depth-replay BAG --model MODEL [--out DIR]`` reads the camera stream of a rosbag2 (sqlite3 or
MCAP) with rosbags (no ROS needed), runs exactly what the node runs on each frame
(:class:`depth_node.runtime.pipeline.DepthPipeline` + :func:`depth_node.runtime.messages.build_outputs`), scores
the depth against ground truth (a depth image topic, or LiDAR projected the KITTI way) with
:mod:`depth_node.metrics`, and writes into DIR::

    depth_bag/          rosbag2 with /depth/image, /depth/camera_info, /depth/points
                        (+ copies of the camera image, camera_info and /tf_static topics)
    results.json        every number: summary, per-frame metrics and per-stage latencies
    report.html         the visual report (+ report_files/*.png)

DIR appears only when everything succeeded (it is built in a temporary sibling and renamed).

The ROS-free pieces the live evaluator node (:mod:`depth_node.ros.eval_node`) shares live here too:
:class:`StaticTransforms`, :func:`cloud_xyz`, :class:`GroundTruth`, :class:`StreamEvaluator`.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import shutil
import sqlite3
import struct
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from depth_node.geometry import points_to_depth_map, transform_points
from depth_node.metrics import (
    MAX_DEPTH,
    MIN_DEPTH,
    evaluate_depth,
    format_metrics_table,
    mean_metrics,
)
from depth_node.runtime.conversions import BadInputError, image_msg_to_depth, to_rgb8

IMAGE_TYPE = "sensor_msgs/msg/Image"
COMPRESSED_TYPE = "sensor_msgs/msg/CompressedImage"
INFO_TYPE = "sensor_msgs/msg/CameraInfo"
CLOUD_TYPE = "sensor_msgs/msg/PointCloud2"
TF_TYPE = "tf2_msgs/msg/TFMessage"

OUTPUT_BAG = "depth_bag"
RESULTS_JSON = "results.json"
REPORT_HTML = "report.html"
OUT_TOPICS = {"image": "/depth/image", "camera_info": "/depth/camera_info", "points": "/depth/points"}
TYPESTORE = "ros2_humble"  # message definitions written into output bags (same as messages.rosbags_types())
END_TO_END = "end_to_end"


class ReplayError(Exception):
    """A replay that cannot run: the message is one line naming the input and what was expected."""


# ---------------------------------------------------------------- transforms and LiDAR ground truth


def quaternion_matrix(x: float, y: float, z: float, w: float) -> np.ndarray:
    """3x3 rotation of a (normalised) quaternion, geometry_msgs order x, y, z, w."""
    q = np.array([x, y, z, w], dtype=np.float64)
    norm = np.linalg.norm(q)
    if norm == 0:
        raise ValueError("zero quaternion")
    x, y, z, w = q / norm
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def parse_transform(text: str) -> np.ndarray:
    """``--T-cam-lidar`` value -> 4x4 mapping LiDAR points into the camera frame.

    Accepts 7 numbers ``x y z qx qy qz qw`` (the LiDAR frame's pose in the camera frame, as
    static_transform_publisher takes it), or 12/16 numbers of a row-major 3x4/4x4 matrix.
    Separators: spaces and/or commas.
    """
    values = [float(v) for v in text.replace(",", " ").split()]
    T = np.eye(4)
    if len(values) == 7:
        T[:3, :3] = quaternion_matrix(*values[3:])
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
            T[:3, :3] = quaternion_matrix(rot.x, rot.y, rot.z, rot.w)
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


_POINTFIELD_DTYPES = {1: "i1", 2: "u1", 3: "i2", 4: "u2", 5: "i4", 6: "u4", 7: "f4", 8: "f8"}


def cloud_xyz(msg: Any) -> np.ndarray:
    """Finite x, y, z of any PointCloud2 (LiDAR layouts with intensity, ring, ... included) -> (N, 3)."""
    fields = {f.name: f for f in msg.fields}
    if not {"x", "y", "z"} <= set(fields):
        raise BadInputError(f"PointCloud2 has no x, y, z fields (fields: {', '.join(fields)})")
    order = ">" if msg.is_bigendian else "<"
    dtype = np.dtype(
        {
            "names": ["x", "y", "z"],
            "formats": [order + _POINTFIELD_DTYPES[fields[n].datatype] for n in "xyz"],
            "offsets": [fields[n].offset for n in "xyz"],
            "itemsize": msg.point_step,
        }
    )
    data = np.asarray(msg.data, dtype=np.uint8)
    rows = data[: msg.row_step * msg.height].reshape(msg.height, msg.row_step)[
        :, : msg.point_step * msg.width
    ]
    points = np.ascontiguousarray(rows).view(dtype).reshape(-1)
    xyz = np.stack([points["x"], points["y"], points["z"]], axis=1).astype(np.float64)
    return xyz[np.isfinite(xyz).all(axis=1)]


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


# ---------------------------------------------------------------- scoring


def resize_depth(depth: np.ndarray, width: int, height: int) -> np.ndarray:
    """Prediction resized to the ground truth's size, the Monodepth2 evaluation way.

    Monodepth2 resizes *disparity* bilinearly; we do the same on 1/depth, and keep pixels invalid
    (NaN) wherever the nearest source pixel was invalid so that sky/holes are not smeared.
    """
    if depth.shape == (height, width):
        return depth
    valid = np.isfinite(depth) & (depth > 0)
    disparity = np.where(valid, 1.0 / np.where(valid, depth, 1.0), 0.0).astype(np.float32)
    disparity = cv2.resize(disparity, (width, height), interpolation=cv2.INTER_LINEAR)
    keep = cv2.resize(valid.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST).astype(bool)
    out = np.full((height, width), np.nan, dtype=np.float32)
    keep &= disparity > 0
    out[keep] = 1.0 / disparity[keep]
    return out


def crop_to_prediction(gt: np.ndarray, crop: tuple[int, int, int, int] | None) -> np.ndarray:
    """The part of the camera-sized ground truth that the depth image covers (pipeline crop)."""
    if crop is None:
        return gt
    left, top, width, height = crop
    return gt[top : top + height, left : left + width]


def score_frame(
    gt: np.ndarray,
    pred: np.ndarray,
    *,
    min_depth: float = MIN_DEPTH,
    max_depth: float = MAX_DEPTH,
    garg_crop: bool = False,
) -> dict[str, Any] | None:
    """Metric and median-scaled scores of one frame (both via :func:`depth_node.metrics.evaluate_depth`).

    ``pred`` must already be at ``gt``'s size. Returns None when no pixel can be scored.
    ``median_scale`` is median(gt)/median(pred): how far the runtime's metric scale is off (1 = right).
    """
    kwargs = {"min_depth": min_depth, "max_depth": max_depth, "garg_crop": garg_crop}
    metric = evaluate_depth(gt, pred, **kwargs)
    if metric is None:
        return None
    scaled = evaluate_depth(gt, pred, median_scaling=True, **kwargs)
    assert scaled is not None
    return {
        "metric": metric.metrics,
        "median_scaled": scaled.metrics,
        "median_scale": scaled.scale,
        "valid_pixels": metric.valid_pixels,
    }


@dataclass
class Scored:
    """A prediction matched with its ground truth and scored (``scores`` None: nothing to score)."""

    key: Any
    stamp_ns: int
    pred: np.ndarray  # at the ground truth's size
    gt: np.ndarray
    scores: dict[str, Any] | None
    extra: Any = None


@dataclass
class _Pending:
    stamp_ns: int
    item: Any
    key: Any = None
    extra: Any = None


class StreamEvaluator:
    """Approximate-time pairing of predictions with ground truth, then scoring; ROS-free.

    Predictions and ground truth arrive in any order; each is paired with the other side's nearest
    stamp within ``tolerance_s``. Entries older than ``max_age_s`` behind the newest stamp seen are
    given up (counted, and unmatched predictions handed back by :meth:`take_unmatched`). Used by the
    replay and by the live evaluator node, so both score the same way.
    """

    def __init__(
        self,
        *,
        min_depth: float = MIN_DEPTH,
        max_depth: float = MAX_DEPTH,
        garg_crop: bool = False,
        tolerance_s: float = 0.05,
        max_age_s: float = 2.0,
    ) -> None:
        self.min_depth, self.max_depth, self.garg_crop = min_depth, max_depth, garg_crop
        self.tolerance_ns = int(tolerance_s * 1e9)
        self.max_age_ns = int(max_age_s * 1e9)
        self._predictions: list[_Pending] = []
        self._truths: list[_Pending] = []
        self._unmatched: list[_Pending] = []
        self._newest = -(2**63)
        self.frames: list[dict[str, Any]] = []  # scores of every scored frame, in scoring order
        self.unmatched_truth = 0
        self.unscorable = 0

    @staticmethod
    def _take_nearest(pool: list[_Pending], stamp_ns: int, tolerance_ns: int) -> _Pending | None:
        if not pool:
            return None
        best = min(range(len(pool)), key=lambda i: abs(pool[i].stamp_ns - stamp_ns))
        if abs(pool[best].stamp_ns - stamp_ns) > tolerance_ns:
            return None
        return pool.pop(best)

    def _expire(self) -> None:
        horizon = self._newest - self.max_age_ns
        keep = [p for p in self._predictions if p.stamp_ns >= horizon]
        self._unmatched += [p for p in self._predictions if p.stamp_ns < horizon]
        self._predictions = keep
        old = len(self._truths)
        self._truths = [t for t in self._truths if t.stamp_ns >= horizon]
        self.unmatched_truth += old - len(self._truths)

    def add_prediction(
        self,
        stamp_ns: int,
        depth: np.ndarray,
        key: Any = None,
        crop: tuple[int, int, int, int] | None = None,
        extra: Any = None,
    ) -> list[Scored]:
        """A depth image (metres, NaN invalid) of the camera image stamped ``stamp_ns``.

        ``crop`` (left, top, width, height) in camera pixels: the part of the image it covers.
        """
        self._newest = max(self._newest, stamp_ns)
        truth = self._take_nearest(self._truths, stamp_ns, self.tolerance_ns)
        pending = _Pending(stamp_ns, (depth, crop), key, extra)
        out = [] if truth is None else [self._score(pending, truth.item)]
        if truth is None:
            self._predictions.append(pending)
        self._expire()
        return out

    def add_truth(self, stamp_ns: int, truth: GroundTruth) -> list[Scored]:
        """Ground truth for the camera image stamped ``stamp_ns``."""
        self._newest = max(self._newest, stamp_ns)
        prediction = self._take_nearest(self._predictions, stamp_ns, self.tolerance_ns)
        out = [] if prediction is None else [self._score(prediction, truth)]
        if prediction is None:
            self._truths.append(_Pending(stamp_ns, truth))
        self._expire()
        return out

    def _score(self, prediction: _Pending, truth: GroundTruth) -> Scored:
        depth, crop = prediction.item
        gt = crop_to_prediction(truth.depth(), crop)
        pred = resize_depth(depth, gt.shape[1], gt.shape[0])
        scores = score_frame(
            gt, pred, min_depth=self.min_depth, max_depth=self.max_depth, garg_crop=self.garg_crop
        )
        if scores is None:
            self.unscorable += 1
        else:
            self.frames.append(scores)
        return Scored(prediction.key, prediction.stamp_ns, pred, gt, scores, prediction.extra)

    def take_unmatched(self, flush: bool = False) -> list[tuple[Any, int, Any]]:
        """(key, stamp_ns, extra) of predictions given up on (all still pending with ``flush``)."""
        if flush:
            self._unmatched += self._predictions
            self._predictions = []
            self.unmatched_truth += len(self._truths)
            self._truths = []
        out = [(p.key, p.stamp_ns, p.extra) for p in self._unmatched]
        self._unmatched = []
        return out

    def summary(self) -> dict[str, Any] | None:
        """Mean metric and median-scaled metrics over the scored frames (None before any)."""
        if not self.frames:
            return None
        scales = np.array([f["median_scale"] for f in self.frames])
        return {
            "frames": len(self.frames),
            "metric": mean_metrics([f["metric"] for f in self.frames]),
            "median_scaled": mean_metrics([f["median_scaled"] for f in self.frames]),
            "median_scale_mean": float(scales.mean()),
            "median_scale_std": float(scales.std()),
        }


def running_metrics_line(summary: Mapping[str, Any]) -> str:
    """One log line of a :meth:`StreamEvaluator.summary` (the live node logs this)."""
    m, s = summary["metric"], summary["median_scaled"]
    return (
        f"{summary['frames']} frames: abs_rel {m['abs_rel']:.4f} rmse {m['rmse']:.3f} m a1 {m['a1']:.4f}"
        f" | median-scaled abs_rel {s['abs_rel']:.4f} a1 {s['a1']:.4f}"
        f" | median scale {summary['median_scale_mean']:.3f}"
    )


def metrics_key_values(
    summary: Mapping[str, Any], evaluator: StreamEvaluator, bad_messages: int = 0
) -> list[tuple[str, str]]:
    """(key, value) strings for a diagnostic_msgs/DiagnosticStatus of the running evaluation."""
    values = [("frames scored", str(summary["frames"]))]
    values += [(f"metric {k}", f"{v:.4f}") for k, v in summary["metric"].items()]
    values += [(f"median-scaled {k}", f"{v:.4f}") for k, v in summary["median_scaled"].items()]
    values += [
        ("median scale mean", f"{summary['median_scale_mean']:.4f}"),
        ("median scale std", f"{summary['median_scale_std']:.4f}"),
        ("ground truth unmatched", str(evaluator.unmatched_truth)),
        ("frames without valid ground truth", str(evaluator.unscorable)),
        ("bad messages", str(bad_messages)),
    ]
    return values


# ---------------------------------------------------------------- timing


def latency_stats(samples_s: Sequence[float]) -> dict[str, float]:
    """mean / p50 / p95 / p99 / max of a list of durations in seconds, reported in milliseconds."""
    ms = np.asarray(samples_s, dtype=np.float64) * 1e3
    if ms.size == 0:
        return {}
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return {
        "mean": float(ms.mean()),
        "p50": float(p50),
        "p95": float(p95),
        "p99": float(p99),
        "max": float(ms.max()),
    }


class NewestFrameGate:
    """The node's input queue of depth one (newest frame wins), replayed against recorded arrival times.

    Frames are pushed in stream order with their arrival time; :meth:`push` returns the frame the
    node would process next, once it is known that no newer frame superseded it. A frame is
    superseded when the next one arrives before the node finished the frame before it.
    Times are seconds on any clock shared by arrivals and :meth:`finished`.
    """

    def __init__(self) -> None:
        self._pending: tuple[Any, float] | None = None
        self._busy_until = -math.inf
        self.dropped = 0

    def push(self, item: Any, arrival: float) -> tuple[Any, float] | None:
        previous, self._pending = self._pending, (item, arrival)
        if previous is None:
            return None
        if arrival <= self._busy_until:  # both arrived while the node was busy: the newer one wins
            self.dropped += 1
            return None
        return previous

    def finished(self, time_s: float) -> None:
        """The node finished a frame at ``time_s``."""
        self._busy_until = time_s

    def flush(self) -> tuple[Any, float] | None:
        pending, self._pending = self._pending, None
        return pending


class PausableClock:
    """Seconds since start, not counting paused stretches (replay-only work: scoring, bag writing)."""

    def __init__(self) -> None:
        self._origin = time.perf_counter()
        self._paused_total = 0.0
        self._paused_at: float | None = None

    def now(self) -> float:
        at = self._paused_at if self._paused_at is not None else time.perf_counter()
        return at - self._origin - self._paused_total

    def pause(self) -> None:
        if self._paused_at is None:
            self._paused_at = time.perf_counter()

    def resume(self) -> None:
        if self._paused_at is not None:
            self._paused_total += time.perf_counter() - self._paused_at
            self._paused_at = None


# ---------------------------------------------------------------- bag access

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


def _bag_error_types() -> tuple[type[BaseException], ...]:
    from rosbags.highlevel import AnyReaderError
    from rosbags.rosbag2 import ReaderError

    extra: tuple[type[BaseException], ...] = ()
    try:  # rosbags reads sqlite3 bags through apsw where it is installed
        import apsw

        extra = (apsw.Error,)
    except ImportError:
        pass
    return (AnyReaderError, ReaderError, *_BAG_ERRORS, *extra)


def _one_line(err: BaseException) -> str:
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
    except _bag_error_types() as err:
        raise ReplayError(f"cannot read bag {path} (corrupt or truncated?): {_one_line(err)}") from None
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


def _namespace(topic: str) -> str:
    parts = topic.rstrip("/").split("/")
    if parts[-1] == "compressed":  # image_transport: /ns/image_raw/compressed
        parts = parts[:-1]
    return "/".join(parts[:-1])


def _is_output_topic(topic: str) -> bool:
    return topic.startswith("/depth/")


def select_topics(
    topics: Mapping[str, str],
    counts: Mapping[str, int],
    bag: Path,
    *,
    image: str | None = None,
    camera_info: str | None = None,
    gt: str = "auto",
    gt_topic: str | None = None,
) -> Topics:
    """Pick the camera, camera_info and ground truth topics of a bag (``topics``: name -> type).

    ``gt``: 'auto' (a depth image topic if there is one, else a LiDAR PointCloud2), 'depth',
    'lidar' or 'none'; ``gt_topic`` names the ground truth topic explicitly.
    """
    listing = (
        ", ".join(f"{name} [{typ.rsplit('/', 1)[-1]}]" for name, typ in sorted(topics.items())) or "none"
    )

    def need(name: str, allowed: tuple[str, ...], what: str) -> str:
        if name not in topics:
            raise ReplayError(f"{what} topic {name} not in bag {bag}; topics: {listing}")
        if topics[name] not in allowed:
            raise ReplayError(
                f"{what} topic {name} in {bag} is {topics[name]}, expected {' or '.join(allowed)}"
            )
        return name

    if not topics:
        raise ReplayError(f"bag {bag} is empty: it has no topics")

    infos = [t for t, typ in topics.items() if typ == INFO_TYPE and not _is_output_topic(t)]
    if camera_info is not None:
        info = need(camera_info, (INFO_TYPE,), "camera_info")
    elif image is not None and (same := [t for t in infos if _namespace(t) == _namespace(image)]):
        info = same[0]
    elif infos:
        info = sorted(infos, key=lambda t: ("camera" not in t, t))[0]
    else:
        raise ReplayError(
            f"bag {bag} has no sensor_msgs/CameraInfo topic (needed for the intrinsics); topics: {listing}"
        )

    if image is not None:
        image_topic = need(image, (IMAGE_TYPE, COMPRESSED_TYPE), "camera image")
    else:
        candidates = [
            t
            for t, typ in topics.items()
            if typ in (IMAGE_TYPE, COMPRESSED_TYPE) and not _is_output_topic(t) and "depth" not in t.lower()
        ]
        if not candidates:
            raise ReplayError(
                f"bag {bag} has no camera image topic (sensor_msgs/Image or CompressedImage); "
                f"topics: {listing}"
            )
        # Same namespace as the camera_info first, raw before compressed, then by name.
        candidates.sort(key=lambda t: (_namespace(t) != _namespace(info), topics[t] != IMAGE_TYPE, t))
        image_topic = candidates[0]
    if counts.get(image_topic, 0) == 0:
        raise ReplayError(f"bag {bag} has no messages on the camera topic {image_topic}")
    if counts.get(info, 0) == 0:
        raise ReplayError(f"bag {bag} has no messages on the camera_info topic {info}")

    selected = Topics(image=image_topic, image_type=topics[image_topic], camera_info=info)
    selected.tf_static = "/tf_static" if topics.get("/tf_static") == TF_TYPE else None
    if gt_topic is not None:
        need(gt_topic, (IMAGE_TYPE, CLOUD_TYPE), "ground truth")
        if topics[gt_topic] == IMAGE_TYPE:
            selected.gt_depth = gt_topic
        else:
            selected.lidar = gt_topic
        return selected
    if gt in ("auto", "depth"):
        depth_topics = sorted(
            (
                t
                for t, typ in topics.items()
                if typ == IMAGE_TYPE and "depth" in t.lower() and not _is_output_topic(t)
            ),
            key=lambda t: ("ground_truth" not in t and "gt" not in t, t),
        )
        if depth_topics and counts.get(depth_topics[0], 0):
            selected.gt_depth = depth_topics[0]
            return selected
        if gt == "depth":
            raise ReplayError(f"bag {bag} has no ground truth depth image topic; topics: {listing}")
    if gt in ("auto", "lidar"):
        clouds = sorted(t for t, typ in topics.items() if typ == CLOUD_TYPE and not _is_output_topic(t))
        if clouds and counts.get(clouds[0], 0):
            selected.lidar = clouds[0]
        elif gt == "lidar":
            raise ReplayError(f"bag {bag} has no LiDAR PointCloud2 topic; topics: {listing}")
    return selected


def _header_ns(msg: Any) -> int:
    return int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec)


def check_camera_info(
    info: Any, width: int, height: int, info_topic: str, image_topic: str, where: str = ""
) -> np.ndarray:
    """K of ``info`` after checking it describes ``width`` x ``height`` images; ReplayError if not.

    ``where`` (e.g. " in bag X") is appended to the topic name in messages.
    """
    K = np.asarray(info.k, dtype=np.float64).reshape(3, 3)
    if K[0, 0] <= 0 or K[1, 1] <= 0:
        raise ReplayError(f"camera_info on {info_topic}{where} has no usable K (fx={K[0, 0]}, fy={K[1, 1]})")
    info_w, info_h = int(info.width), int(info.height)
    if (info_w, info_h) != (0, 0) and (info_w, info_h) != (width, height):
        raise ReplayError(
            f"camera_info on {info_topic}{where} is for {info_w}x{info_h} images but {image_topic} has "
            f"{width}x{height} images"
        )
    return K


# ---------------------------------------------------------------- the replay


@dataclass
class ReplayOptions:
    """Everything ``depth-replay`` takes on the command line (see :func:`build_parser`).

    ``node_params`` are the depth node's own ROS parameters (names as in ``config/depth.yaml``,
    validated by :func:`depth_node.runtime.parameters.validate_parameters`), so the replay runs the pipeline
    and builds the messages exactly as the node configured the same way would. ``model`` None:
    the ``model_path`` parameter, else the demo model, as the node does.
    """

    bag: Path
    model: Path | None = None
    out: Path | None = None
    image_topic: str | None = None
    camera_info_topic: str | None = None
    gt: str = "auto"
    gt_topic: str | None = None
    T_cam_lidar: np.ndarray | None = None
    realtime: bool = False
    max_frames: int | None = None
    storage: str | None = None
    copy_inputs: bool = True
    min_depth: float = MIN_DEPTH
    max_depth: float = MAX_DEPTH
    garg_crop: bool = False
    sync_tolerance: float = 0.05
    report_frames: int = 6
    node_params: dict[str, Any] = field(default_factory=dict)
    force: bool = False
    progress: bool = True


@dataclass
class ReplayResult:
    """What a replay produced: the output folder and the results dict written as results.json."""

    out_dir: Path
    results: dict[str, Any]

    @property
    def report(self) -> Path:
        return self.out_dir / REPORT_HTML

    @property
    def bag(self) -> Path:
        return self.out_dir / OUTPUT_BAG


def default_out_dir(bag: Path) -> Path:
    return bag.with_name(bag.name.removesuffix(".mcap").removesuffix(".db3") + "_replay")


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return None if not math.isfinite(float(value)) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.ndarray):
        return _json_safe(value.tolist())
    if isinstance(value, Path):
        return str(value)
    return value


class _Writer:
    """Output rosbag2: depth topics plus (optionally) copies of the input camera topics."""

    def __init__(self, path: Path, storage: str) -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer
        from rosbags.typesys import Stores, get_typestore

        self.typestore = get_typestore(Stores(TYPESTORE))
        plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
        self.writer = Writer(path, version=8, storage_plugin=plugin)
        self.writer.open()
        self.connections: dict[str, Any] = {}

    def add(self, topic: str, msgtype: str, qos: Sequence[Any] = ()) -> None:
        self.connections[topic] = self.writer.add_connection(
            topic, msgtype, typestore=self.typestore, offered_qos_profiles=list(qos)
        )

    def write_raw(self, topic: str, timestamp: int, data: bytes | memoryview) -> None:
        self.writer.write(self.connections[topic], timestamp, data)

    def write(self, topic: str, timestamp: int, msg: Any) -> None:
        msgtype = self.connections[topic].msgtype
        self.writer.write(self.connections[topic], timestamp, self.typestore.serialize_cdr(msg, msgtype))

    def close(self) -> None:
        self.writer.close()


def model_dirs() -> list[Path]:
    """Where the node looks for its default (demo) model without ROS: share/, then the repo's models/."""
    return [
        Path(sys.prefix) / "share" / "depth_node" / "models",
        Path(__file__).resolve().parent.parent / "models",
    ]


def node_settings(params: Mapping[str, Any]) -> Any:
    """The node's validated settings (node_core.NodeSettings) for these parameter values."""
    from depth_node.runtime.parameters import ParameterError, validate_parameters

    try:
        return validate_parameters(params)
    except ParameterError as err:
        raise ReplayError(f"invalid node parameter: {err}") from None


def resolve_model(model: Path | None, settings: Any) -> Path:
    """--model, else the model_path parameter, else the demo model (the node's choice)."""
    from depth_node.runtime.parameters import find_default_model

    if model is None and settings.model_path:
        model = Path(settings.model_path).expanduser()
    if model is None:
        model = find_default_model(model_dirs())
        if model is None:
            looked = ", ".join(str(d) for d in model_dirs())
            raise ReplayError(f"no model given and no demo model in {looked}: pass --model PATH.onnx")
    if not Path(model).is_file():
        raise ReplayError(f"model not found: {model}")
    return Path(model)


def build_pipeline(model: Path, settings: Any) -> tuple[Any, Any]:
    """(DepthEstimator, DepthPipeline) exactly as the node builds them from its settings."""
    from depth_node.runtime.estimator import DepthEstimator, ModelLoadError
    from depth_node.runtime.pipeline import DepthPipeline

    try:
        estimator = DepthEstimator(
            model,
            providers=settings.providers,
            threads=settings.threads,
            trt_cache_dir=settings.tensorrt_cache_dir,
            trt_fp16=settings.tensorrt_fp16,
        )
        return estimator, DepthPipeline(estimator, settings.pipeline_config())
    except ModelLoadError as err:
        raise ReplayError(str(err)) from None
    except ValueError as err:  # PipelineConfig refusing a combination
        raise ReplayError(f"invalid node parameters: {err}") from None


def load_params_file(path: Path) -> dict[str, Any]:
    """ROS 2 parameter YAML (``/**`` or node-name key, ``ros__parameters``) -> flat name -> value.

    Nested maps become dotted names (``input_qos: {depth: 1}`` -> ``input_qos.depth``), as in ROS.
    """
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ReplayError(f"cannot read parameter file {path}: {_one_line(err)}") from None
    params: dict[str, Any] = {}

    def flatten(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                flatten(f"{prefix}{key}.", item)
        else:
            params[prefix[:-1]] = value

    for node_key, section in (data or {}).items() if isinstance(data, dict) else []:
        if node_key in ("/**", "**", "depth_node", "/depth_node") and isinstance(section, dict):
            flatten("", section.get("ros__parameters", {}))
    if not params:
        raise ReplayError(f"parameter file {path} has no '/**' or 'depth_node' section with ros__parameters")
    return params


def parse_param_override(text: str) -> tuple[str, Any]:
    """``name:=value`` (value read as YAML, like ``ros2 run ... -p``) -> (name, value)."""
    import yaml

    name, sep, value = text.partition(":=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected name:=value, got {text!r}")
    return name.strip(), yaml.safe_load(value)


@dataclass
class _FrameJob:
    index: int
    timestamp: int  # bag receive time, ns
    raw: bytes | memoryview


def replay(options: ReplayOptions) -> ReplayResult:
    """Run a replay (see the module docstring). Raises ReplayError with a one-line message."""
    bag = Path(options.bag)
    out_dir = Path(options.out) if options.out is not None else default_out_dir(bag)
    if out_dir.exists() and not options.force:
        raise ReplayError(f"output {out_dir} exists already (pass --force to replace it)")
    settings = node_settings(options.node_params)
    model = resolve_model(options.model, settings)
    reader = open_bag(bag)
    try:
        estimator, pipeline = build_pipeline(model, settings)
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
        try:
            results = _run(reader, bag, options, settings, model, estimator, pipeline, tmp, out_dir)
            _commit(tmp, out_dir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    finally:
        reader.close()
    return ReplayResult(out_dir, results)


def _commit(tmp: Path, out_dir: Path) -> None:
    """Move the finished output into place (replacing an old one only now, when --force)."""
    if out_dir.exists():
        old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
        out_dir.rename(old)
        tmp.rename(out_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(out_dir)


def _iter_messages(reader: Any, connections: list[Any], bag: Path) -> Iterator[tuple[Any, int, Any]]:
    """reader.messages() with a damaged bag's exceptions turned into ReplayError."""
    errors = _bag_error_types()
    iterator = reader.messages(connections=connections)
    while True:
        try:
            item = next(iterator)
        except StopIteration:
            return
        except errors as err:
            raise ReplayError(f"cannot read bag {bag} (corrupt or truncated?): {_one_line(err)}") from None
        yield item


def _deserialize(reader: Any, raw: Any, conn: Any, bag: Path) -> Any:
    try:
        return reader.deserialize(raw, conn.msgtype)
    except _bag_error_types() as err:
        raise ReplayError(
            f"cannot decode a {conn.msgtype} message on {conn.topic} in {bag}: {_one_line(err)}"
        ) from None


def _run(
    reader: Any,
    bag: Path,
    options: ReplayOptions,
    settings: Any,
    model: Path,
    estimator: Any,
    pipeline: Any,
    tmp: Path,
    out_dir: Path,
) -> dict[str, Any]:
    from tqdm import tqdm

    from depth_node.evaluation import report
    from depth_node.runtime.message_types import rosbags_types
    from depth_node.runtime.parameters import build_frame_outputs

    types = rosbags_types(TYPESTORE)
    conns_by_topic: dict[str, list[Any]] = {}
    for conn in reader.connections:
        conns_by_topic.setdefault(conn.topic, []).append(conn)
    topic_types = {topic: conns[0].msgtype for topic, conns in conns_by_topic.items()}
    counts = {topic: sum(c.msgcount for c in conns) for topic, conns in conns_by_topic.items()}
    if not topic_types or reader.message_count == 0:
        raise ReplayError(f"bag {bag} is empty: it has no messages")
    topics = select_topics(
        topic_types,
        counts,
        bag,
        image=options.image_topic,
        camera_info=options.camera_info_topic,
        gt=options.gt,
        gt_topic=options.gt_topic,
    )
    total = (
        counts[topics.image] if options.max_frames is None else min(counts[topics.image], options.max_frames)
    )

    # Static transforms and the first camera_info are needed before the first frame: read them first.
    transforms = StaticTransforms()
    if topics.tf_static:
        for conn, _, raw in _iter_messages(reader, conns_by_topic[topics.tf_static], bag):
            transforms.add_message(_deserialize(reader, raw, conn, bag))
    info_msg = None
    for conn, _, raw in _iter_messages(reader, conns_by_topic[topics.camera_info], bag):
        info_msg = _deserialize(reader, raw, conn, bag)
        break
    warnings: list[str] = []
    if not (topics.gt_depth or topics.lidar):
        warnings.append(f"no ground truth topic in {bag.name}: depth is not scored")

    # Output bag.
    storage = options.storage or bag_storage(bag)
    writer = _Writer(tmp / OUTPUT_BAG, storage)
    writer.add(OUT_TOPICS["image"], IMAGE_TYPE)
    writer.add(OUT_TOPICS["camera_info"], INFO_TYPE)
    if settings.publish_points:
        writer.add(OUT_TOPICS["points"], CLOUD_TYPE)
    copied = (
        [t for t in (topics.image, topics.camera_info, topics.tf_static) if t] if options.copy_inputs else []
    )
    for topic in copied:
        conn = conns_by_topic[topic][0]
        writer.add(topic, conn.msgtype, getattr(conn.ext, "offered_qos_profiles", ()))

    files_dir = tmp / report.REPORT_FILES
    files_dir.mkdir()
    evaluator = StreamEvaluator(
        min_depth=options.min_depth,
        max_depth=options.max_depth,
        garg_crop=options.garg_crop,
        tolerance_s=options.sync_tolerance,
    )
    # Frames whose pictures go into the report, evenly over the drive; a dropped or unscored frame
    # hands its turn to the next one.
    wanted = list(
        np.unique(np.linspace(0, max(total - 1, 0), max(options.report_frames, 0)).round().astype(int))
    )
    panels: list[str] = []
    per_frame: dict[int, dict[str, Any]] = {}
    stage_samples: dict[str, list[float]] = {}
    clock = PausableClock()
    gate = NewestFrameGate()
    bad_frames: list[str] = []
    first_stamp: dict[str, int] = {}
    last_stamp = 0
    state: dict[str, Any] = {"info": info_msg, "K": None, "size": None}

    def render(index: int, rgb: np.ndarray, pred: np.ndarray, gt: np.ndarray | None, stamp_ns: int) -> None:
        if not wanted or index < wanted[0] or len(panels) >= options.report_frames:
            return
        while wanted and wanted[0] <= index:  # this frame stands in for every target up to it
            wanted.pop(0)
        rec = per_frame.get(index, {})
        caption = f"frame {index}   t = {(stamp_ns - first_stamp.get('header', stamp_ns)) / 1e9:.2f} s"
        if rec.get("metric"):
            caption += (
                f"   abs_rel {rec['metric']['abs_rel']:.3f}"
                f" (median-scaled {rec['median_scaled']['abs_rel']:.3f})"
                f"   a1 {rec['metric']['a1']:.3f}   scale {rec['scale']:.3f}"
            )
        name = f"frame_{index:06d}.png"
        report.frame_panel(files_dir / name, rgb, pred, gt, caption, max_depth=options.max_depth)
        panels.append(f"{report.REPORT_FILES}/{name}")

    def handle_scored(scored: list[Scored]) -> None:
        for s in scored:
            rec = per_frame[s.key]
            if s.scores is not None:
                rec.update(_json_safe(s.scores))
            if s.extra is not None:
                render(s.key, s.extra["rgb"], s.pred, s.gt, s.stamp_ns)

    def process(job: _FrameJob) -> None:
        conn = conns_by_topic[topics.image][0]
        t_start = time.perf_counter()
        msg = _deserialize(reader, job.raw, conn, bag)
        try:
            rgb = to_rgb8(msg)
        except BadInputError as err:  # the node drops a bad frame and goes on; so does the replay
            bad_frames.append(f"frame {job.index}: {err}")
            gate.finished(clock.now())
            return
        height, width = rgb.shape[:2]
        if state["size"] != (width, height) or state["K"] is None:
            state["K"] = check_camera_info(
                state["info"], width, height, topics.camera_info, topics.image, f" in {bag}"
            )
            state["size"] = (width, height)
        t_decoded = time.perf_counter()
        result = pipeline.process(rgb, state["K"])
        if not np.isfinite(result.depth).any():  # the node drops such a frame ("nan") too
            bad_frames.append(f"frame {job.index}: the model's depth has no valid (finite, in-range) pixel")
            gate.finished(clock.now())
            return
        t_processed = time.perf_counter()
        outputs = build_frame_outputs(
            settings, result, msg.header, state["info"], types, rgb, cloud=settings.publish_points
        )
        t_end = time.perf_counter()
        gate.finished(clock.now())
        clock.pause()  # from here on: replay-only work, not the node's
        timings = {"decode": t_decoded - t_start}
        timings.update({k: float(v) for k, v in result.timings.items()})
        timings["build_outputs"] = t_end - t_processed
        timings[END_TO_END] = t_end - t_start
        for name, value in timings.items():
            stage_samples.setdefault(name, []).append(value)
        stamp = _header_ns(msg)
        # Real time: stamped in the output bag when the node would have published it.
        out_time = job.timestamp + (int((t_end - t_start) * 1e9) if options.realtime else 0)
        writer.write(OUT_TOPICS["image"], out_time, outputs.image)
        writer.write(OUT_TOPICS["camera_info"], out_time, outputs.camera_info)
        if outputs.points is not None:
            writer.write(OUT_TOPICS["points"], out_time, outputs.points)
        per_frame[job.index] = {
            "index": job.index,
            "stamp": stamp / 1e9,
            "scale": float(result.scale),
            "latency_ms": {k: v * 1e3 for k, v in timings.items()},
        }
        # Score what was published (16UC1 output is scored in its millimetre steps), as the live
        # evaluator node does.
        published = image_msg_to_depth(outputs.image)
        state.setdefault("depth_size", list(published.shape[::-1]))
        first_stamp.setdefault("header", stamp)
        keep = bool(wanted) and job.index >= wanted[0] and len(panels) < options.report_frames
        panel = {"rgb": crop_to_prediction(rgb, result.crop).copy(), "depth": published} if keep else None
        if topics.gt_depth or topics.lidar:
            handle_scored(
                evaluator.add_prediction(stamp, published, key=job.index, crop=result.crop, extra=panel)
            )
            for key, stamp_ns, kept in evaluator.take_unmatched():
                if kept is not None:
                    render(key, kept["rgb"], kept["depth"], None, stamp_ns)
        elif panel is not None:
            render(job.index, panel["rgb"], published, None, stamp)
        clock.resume()

    wanted_topics = [topics.image, topics.camera_info]
    wanted_topics += [t for t in (topics.gt_depth, topics.lidar) if t]
    wanted_topics += [t for t in copied if t not in wanted_topics]
    connections = [c for t in wanted_topics for c in conns_by_topic[t]]
    image_index = 0
    progress = tqdm(
        total=total, unit="frame", desc="replay", disable=not options.progress, dynamic_ncols=True
    )
    wall_start = time.perf_counter()
    lidar_warned = False
    try:
        for conn, timestamp, raw in _iter_messages(reader, connections, bag):
            topic = conn.topic
            if topic == topics.image and image_index >= total:
                break
            if topic in copied:
                writer.write_raw(topic, timestamp, raw)
            if topic == topics.image:
                first_stamp.setdefault("bag", timestamp)
                job = _FrameJob(image_index, timestamp, raw)
                image_index += 1
                last_stamp = timestamp
                if not options.realtime:
                    process(job)
                    progress.update(1)
                    continue
                arrival = (timestamp - first_stamp["bag"]) / 1e9
                ready = gate.push(job, arrival)
                if ready is not None:
                    _wait_until(clock, ready[1])
                    process(ready[0])
                progress.update(1)
            elif topic == topics.camera_info:
                info = _deserialize(reader, raw, conn, bag)
                if state["size"] is not None:
                    state["K"] = check_camera_info(
                        info, *state["size"], topics.camera_info, topics.image, f" in {bag}"
                    )
                state["info"] = info
            elif topic == topics.gt_depth:
                clock.pause()
                msg = _deserialize(reader, raw, conn, bag)
                try:
                    gt = GroundTruth(f"depth image {topic}", dense=image_msg_to_depth(msg))
                except BadInputError as err:
                    raise ReplayError(f"ground truth on {topic} in {bag}: {err}") from None
                handle_scored(evaluator.add_truth(_header_ns(msg), gt))
                clock.resume()
            elif topic == topics.lidar:
                clock.pause()
                msg = _deserialize(reader, raw, conn, bag)
                T = options.T_cam_lidar
                if T is None:
                    camera_frame = state["info"].header.frame_id
                    T = transforms.lookup(camera_frame, msg.header.frame_id)
                    if T is None:
                        raise ReplayError(
                            f"no transform from LiDAR frame {msg.header.frame_id!r} to camera frame "
                            f"{camera_frame!r} in /tf_static of {bag} "
                            f"(frames: {', '.join(transforms.frames) or 'none'}); "
                            "pass --T-cam-lidar"
                        )
                try:
                    points = transform_points(T, cloud_xyz(msg))
                except BadInputError as err:
                    if not lidar_warned:
                        warnings.append(f"LiDAR cloud on {topic} skipped: {err}")
                        lidar_warned = True
                    clock.resume()
                    continue
                info = state["info"]
                size = (int(info.width), int(info.height)) if int(info.width) else state["size"]
                if size is not None:
                    gt = GroundTruth(
                        f"LiDAR {topic} projected (KITTI recipe)",
                        points_cam=points,
                        K=np.asarray(info.k, dtype=np.float64).reshape(3, 3),
                        size=size,
                    )
                    handle_scored(evaluator.add_truth(_header_ns(msg), gt))
                clock.resume()
        if options.realtime and (pending := gate.flush()) is not None:
            _wait_until(clock, pending[1])
            process(pending[0])
    finally:
        progress.close()
    wall_time = time.perf_counter() - wall_start
    evaluator.take_unmatched(flush=True)

    if image_index == 0:
        raise ReplayError(f"bag {bag} has no readable messages on {topics.image}")
    processed = len(per_frame)
    if processed == 0:
        raise ReplayError(
            f"no frame of {bag} could be processed: {bad_frames[0] if bad_frames else 'unknown'}"
        )
    writer.close()

    # Numbers.
    summary_metrics = evaluator.summary()
    frames_sorted = [per_frame[k] for k in sorted(per_frame)]
    latency = {name: latency_stats(samples) for name, samples in stage_samples.items()}
    e2e = stage_samples.get(END_TO_END, [])
    duration_s = (last_stamp - first_stamp["bag"]) / 1e9 if image_index > 1 else 0.0
    model_info = getattr(estimator, "info", None)
    gt_source = (
        f"depth image {topics.gt_depth}"
        if topics.gt_depth
        else f"LiDAR {topics.lidar} projected (KITTI recipe)"
        if topics.lidar
        else None
    )
    if bad_frames:
        warnings.append(f"{len(bad_frames)} bad frame(s) skipped, first: {bad_frames[0]}")
    out_bag = out_dir / OUTPUT_BAG
    if options.copy_inputs:
        play = f"ros2 bag play {out_bag}   (then: rviz2 -d config/depth.rviz)"
    else:
        play = f"ros2 bag play {bag} {out_bag}   (both bags together; then: rviz2 -d config/depth.rviz)"
    results: dict[str, Any] = {
        "created": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "bag": str(bag.resolve()),
        "realtime": options.realtime,
        "provider": getattr(estimator, "provider", None),
        "model": {"path": str(model.resolve()), **(_model_dict(model_info) if model_info else {})},
        "node_params": options.node_params,
        "inputs": {
            "image_topic": topics.image,
            "image_type": topics.image_type,
            "camera_info_topic": topics.camera_info,
            "gt_depth_topic": topics.gt_depth,
            "lidar_topic": topics.lidar,
            "image_size": list(state["size"]) if state["size"] else None,
            "depth_size": state.get("depth_size"),
            "storage": bag_storage(bag),
        },
        "frames": {
            "total": total,
            "read": image_index,
            "processed": processed,
            "dropped": gate.dropped,
            "bad": len(bad_frames),
            "scored": len(evaluator.frames),
            "unscored": processed - len(evaluator.frames),
        },
        "evaluation": {
            "gt_source": gt_source,
            "min_depth": options.min_depth,
            "max_depth": options.max_depth,
            "garg_crop": options.garg_crop,
            "sync_tolerance_s": options.sync_tolerance,
            "median_scale_mean": summary_metrics["median_scale_mean"] if summary_metrics else None,
            "median_scale_std": summary_metrics["median_scale_std"] if summary_metrics else None,
        },
        "metrics": (
            {"metric": summary_metrics["metric"], "median_scaled": summary_metrics["median_scaled"]}
            if summary_metrics
            else None
        ),
        "latency_ms": latency,
        "fps": {
            "recorded": (image_index - 1) / duration_s if duration_s > 0 else None,
            "pipeline": 1.0 / float(np.mean(e2e)) if e2e else None,
            "throughput": processed / wall_time if wall_time > 0 else None,
        },
        "wall_time_s": wall_time,
        "outputs": {
            "dir": str(out_dir.resolve()),
            "bag": str(out_bag.resolve()),
            "bag_storage": storage,
            "bag_topics": [*OUT_TOPICS.values()][: 3 if settings.publish_points else 2] + copied,
            "json": str((out_dir / RESULTS_JSON).resolve()),
            "report": str((out_dir / REPORT_HTML).resolve()),
            "play_command": play,
        },
        "warnings": warnings,
        "per_frame": frames_sorted,
    }
    results = _json_safe(results)

    # Pictures and page.
    images: dict[str, list[str]] = {"frames": panels, "metrics": [], "latency": []}
    if report.plot_metrics_over_time(files_dir / "metrics_over_time.png", frames_sorted):
        images["metrics"].append(f"{report.REPORT_FILES}/metrics_over_time.png")
    latency_ms = {name: [v * 1e3 for v in samples] for name, samples in stage_samples.items()}
    if report.plot_latency(files_dir / "latency.png", latency_ms, END_TO_END):
        images["latency"].append(f"{report.REPORT_FILES}/latency.png")
    report.write_html(tmp / REPORT_HTML, results, images)
    (tmp / RESULTS_JSON).write_text(json.dumps(results, indent=1))
    return results


def _model_dict(info: Any) -> dict[str, Any]:
    keys = (
        "name",
        "backbone",
        "input_width",
        "input_height",
        "min_depth",
        "max_depth",
        "metric_scale",
        "scale_is_metric",
        "training_mode",
        "source",
    )
    return {k: getattr(info, k) for k in keys if hasattr(info, k)}


def _wait_until(clock: PausableClock, t: float) -> None:
    """Real-time replay: sleep until the recorded arrival time of the next frame."""
    delay = t - clock.now()
    if delay > 0:
        time.sleep(delay)


# ---------------------------------------------------------------- command line


def summary_text(result: ReplayResult) -> str:
    """The short table printed at the end of a replay."""
    r = result.results
    lines = []
    if r.get("metrics"):
        lines.append(
            format_metrics_table(
                {
                    "metric (runtime scale)": r["metrics"]["metric"],
                    "median-scaled": r["metrics"]["median_scaled"],
                }
            )
        )
        ev = r["evaluation"]
        lines.append(
            f"scored {r['frames']['scored']} frames against {ev['gt_source']}, "
            f"median scale {ev['median_scale_mean']:.3f} ± {ev['median_scale_std']:.3f}"
        )
    else:
        lines.append("no ground truth scored")
    f, e2e = r["frames"], r["latency_ms"].get(END_TO_END, {})
    fps = r["fps"]
    lines.append(
        f"frames {f['processed']}/{f['total']} processed, {f['dropped']} dropped, {f['bad']} bad"
        + ("  (real time)" if r["realtime"] else "")
    )
    if e2e:
        lines.append(
            f"latency end-to-end p50 {e2e['p50']:.1f} ms  p95 {e2e['p95']:.1f} ms  p99 {e2e['p99']:.1f} ms"
            f"   pipeline {fps['pipeline']:.1f} fps, throughput {fps['throughput']:.1f} fps"
            + (f", recorded {fps['recorded']:.1f} fps" if fps.get("recorded") else "")
            + f"  [{r['provider']}]"
        )
    for warning in r.get("warnings", []):
        lines.append(f"warning: {warning}")
    lines.append(f"report  {r['outputs']['report']}")
    lines.append(f"bag     {r['outputs']['bag']}")
    lines.append(f"results {r['outputs']['json']}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="depth-replay",
        description="Replay a rosbag2 through the depth pipeline: score it against ground truth, "
        "measure latency, write a depth rosbag2, results.json and an HTML report.",
    )
    p.add_argument(
        "bag", type=Path, help="input rosbag2 folder (sqlite3 or MCAP) or a single .db3/.mcap file"
    )
    p.add_argument(
        "--model", type=Path, help="ONNX depth model (default: the model_path parameter, else the demo model)"
    )
    p.add_argument("--out", type=Path, help="output folder (default: <bag>_replay next to the bag)")
    p.add_argument("--force", action="store_true", help="replace an existing output folder")
    g = p.add_argument_group("input topics (found automatically when not given)")
    g.add_argument("--image-topic", help="camera topic, sensor_msgs/Image or CompressedImage")
    g.add_argument("--camera-info-topic", help="sensor_msgs/CameraInfo of the camera")
    g.add_argument(
        "--gt",
        choices=("auto", "depth", "lidar", "none"),
        default="auto",
        help="ground truth: a depth image topic, LiDAR projected into the image, or none",
    )
    g.add_argument("--gt-topic", help="ground truth topic (32FC1/16UC1 Image or PointCloud2)")
    g.add_argument(
        "--T-cam-lidar",
        dest="T_cam_lidar",
        type=parse_transform,
        help="LiDAR->camera transform instead of /tf_static: 'x y z qx qy qz qw' or 12/16 matrix numbers",
    )
    g = p.add_argument_group("evaluation")
    g.add_argument("--min-depth", type=float, default=MIN_DEPTH, help="smallest scored depth in metres")
    g.add_argument("--max-depth", type=float, default=MAX_DEPTH, help="depth cap in metres (default 80)")
    g.add_argument("--garg-crop", action="store_true", help="score only inside the Garg crop (KITTI Eigen)")
    g.add_argument(
        "--sync-tolerance", type=float, default=0.05, help="max stamp difference image<->truth [s]"
    )
    g.add_argument("--report-frames", type=int, default=6, help="frames pictured in the report")
    g = p.add_argument_group("run")
    g.add_argument(
        "--realtime",
        action="store_true",
        help="feed frames at the recorded rate; frames arriving while busy are dropped (newest wins)",
    )
    g.add_argument("--max-frames", type=int, help="stop after this many camera frames")
    g = p.add_argument_group(
        "the depth node's parameters (the pipeline runs as the node configured so would)"
    )
    g.add_argument("--params-file", type=Path, help="ROS 2 parameter YAML, e.g. config/depth.yaml")
    g.add_argument(
        "-p",
        "--param",
        dest="params",
        action="append",
        default=[],
        type=parse_param_override,
        metavar="NAME:=VALUE",
        help="one node parameter, e.g. -p scale_mode:=camera_height -p output_resolution:=model",
    )
    g.add_argument("--providers", help="shortcut for -p providers: comma list of tensorrt,cuda,cpu")
    g.add_argument("--threads", type=int, help="shortcut for -p threads:=N (ONNX Runtime intra-op threads)")
    g.add_argument(
        "--no-cloud", dest="cloud", action="store_false", help="shortcut for -p publish_points:=false"
    )
    g = p.add_argument_group("output bag")
    g.add_argument(
        "--storage", choices=("sqlite3", "mcap"), help="output bag storage (default: as the input)"
    )
    g.add_argument(
        "--no-copy-inputs",
        dest="copy_inputs",
        action="store_false",
        help="do not copy the camera image, camera_info and /tf_static topics into the output bag",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def options_from_args(args: argparse.Namespace) -> ReplayOptions:
    params: dict[str, Any] = load_params_file(args.params_file) if args.params_file else {}
    params.update(dict(args.params))
    if args.providers:
        params["providers"] = [p.strip() for p in args.providers.split(",") if p.strip()]
    if args.threads is not None:
        params["threads"] = args.threads
    if not args.cloud:
        params["publish_points"] = False
    return ReplayOptions(
        bag=args.bag,
        model=args.model,
        out=args.out,
        image_topic=args.image_topic,
        camera_info_topic=args.camera_info_topic,
        gt=args.gt,
        gt_topic=args.gt_topic,
        T_cam_lidar=args.T_cam_lidar,
        realtime=args.realtime,
        max_frames=args.max_frames,
        storage=args.storage,
        copy_inputs=args.copy_inputs,
        min_depth=args.min_depth,
        max_depth=args.max_depth,
        garg_crop=args.garg_crop,
        sync_tolerance=args.sync_tolerance,
        report_frames=args.report_frames,
        node_params=params,
        force=args.force,
        progress=not args.quiet,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = replay(options_from_args(args))
    except ReplayError as err:
        print(f"depth-replay: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("depth-replay: interrupted, nothing written", file=sys.stderr)
        return 130
    print(summary_text(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
