"""Offline evaluation: replay a rosbag2 through the node's frame path, score it, write a bag and a report.

(Over 500 lines: one session class whose stages read in stream order; every tool it uses — bag input,
ground truth, scoring, real time, output bag, report — lives in its own module.)

``depth-replay BAG --model MODEL [--out DIR]`` (:mod:`depth_node.evaluation.replay_cli`) reads the
camera stream of a rosbag2 (sqlite3 or MCAP) with rosbags (no ROS needed), runs every frame through
exactly what the node runs (:class:`depth_node.runtime.frame.FramePath`, configured by the node's
own parameters), scores the published depth against ground truth (a depth image topic, or LiDAR
projected the KITTI way; with per-pixel motion labels beside a depth topic, each motion region too)
and writes into DIR::

    depth_bag/          rosbag2 with /depth/image, /depth/camera_info, /depth/points
                        (+ copies of the camera image, camera_info and /tf_static topics)
    results.json        every number: summary, per-region and per-frame metrics, per-stage latencies
    report.html         the visual report (+ report_files/*.png)

DIR appears only when everything succeeded (it is built in a temporary sibling and renamed). A bad
frame is dropped and counted under the node's drop reason, never the end of the replay.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from depth_node.evaluation import report
from depth_node.evaluation.bag_input import (
    CLOUD_TYPE,
    IMAGE_TYPE,
    INFO_TYPE,
    TYPESTORE,
    ReplayError,
    Topics,
    bag_storage,
    deserialize,
    iter_messages,
    open_bag,
    select_topics,
)
from depth_node.evaluation.ground_truth import StaticTransforms, depth_truth, lidar_truth
from depth_node.evaluation.output_bag import OUT_TOPICS, OutputBag
from depth_node.evaluation.realtime import NewestFrameGate, PausableClock, latency_stats, wait_until
from depth_node.evaluation.scoring import (
    MotionLabelsError,
    MotionPairing,
    Scored,
    StreamEvaluator,
    TruthWithLabels,
    motion_labels_from_msg,
)
from depth_node.files import WriteError, atomic_write_text, named_write_errors
from depth_node.metrics import MAX_DEPTH, MIN_DEPTH
from depth_node.runtime.conversions import image_msg_to_depth
from depth_node.runtime.errors import BadInputError, ModelLoadError
from depth_node.runtime.estimator import ModelInfo
from depth_node.runtime.frame import (
    DROP_REASONS,
    END_TO_END,
    RESET_REASONS,
    FrameDrop,
    FrameOutputs,
    FramePath,
)
from depth_node.runtime.message_types import rosbags_types, stamp_ns
from depth_node.runtime.parameters import NodeSettings, ParameterError, validate_parameters
from depth_node.runtime.pipeline import FRAME_MODES

OUTPUT_BAG = "depth_bag"
RESULTS_JSON = "results.json"
REPORT_HTML = "report.html"


@dataclass
class ReplayOptions:
    """Everything ``depth-replay`` takes on the command line (see ``replay_cli.build_parser``).

    ``node_params`` are the depth node's own ROS parameters (names as in ``config/depth.yaml``,
    validated by :func:`depth_node.runtime.parameters.validate_parameters`), so the replay runs the
    frame path exactly as the node configured the same way would. ``model`` None: the
    ``model_path`` parameter, else the demo model, as the node does.
    """

    bag: Path
    model: Path | None = None
    out: Path | None = None
    image_topic: str | None = None
    camera_info_topic: str | None = None
    gt: str = "auto"
    gt_topic: str | None = None
    motion_topic: str | None = None  # None: <depth ground truth namespace>/motion if there; 'none': off
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


def node_settings(params: Mapping[str, Any]) -> NodeSettings:
    """The node's validated settings for these parameter values; ReplayError if the node would refuse."""
    try:
        return validate_parameters(params)
    except ParameterError as err:
        raise ReplayError(f"invalid node parameter: {err}") from None


def build_frame_path(options: ReplayOptions, settings: NodeSettings) -> FramePath:
    """The node's frame path from its settings (``--model`` first); ReplayError when it would not start."""
    try:
        return FramePath.from_settings(settings, rosbags_types(TYPESTORE), options.model)
    except ModelLoadError as err:
        raise ReplayError(str(err)) from None
    except ValueError as err:  # PipelineConfig refusing a combination
        raise ReplayError(f"invalid node parameters: {err}") from None


def replay(options: ReplayOptions) -> ReplayResult:
    """Run a replay (see the module docstring). Raises ReplayError with a one-line message."""
    bag = Path(options.bag)
    out_dir = Path(options.out) if options.out is not None else default_out_dir(bag)
    if out_dir.exists() and not options.force:
        raise ReplayError(f"output {out_dir} exists already (pass --force to replace it)")
    settings = node_settings(options.node_params)
    frame_path = build_frame_path(options, settings)
    reader = open_bag(bag)
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
        try:
            with named_write_errors(out_dir):  # a write error without a file name names the folder
                session = ReplaySession(reader, bag, options, settings, frame_path, tmp)
                results = session.run(out_dir)
                _commit(tmp, out_dir)
        except WriteError as err:  # a full disk: one line, and an old output folder stays as it was
            shutil.rmtree(tmp, ignore_errors=True)
            raise ReplayError(_write_failure(err, tmp, out_dir)) from None
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    finally:
        reader.close()
    return ReplayResult(out_dir, results)


def _write_failure(err: WriteError, tmp: Path, out_dir: Path) -> str:
    """One line naming the file that failed by its final name (it was written in ``tmp``)."""
    name = Path(err.filename)
    if name.is_relative_to(tmp):
        name = out_dir / name.relative_to(tmp)
    kept = f"{out_dir} left as it was" if out_dir.exists() else f"{out_dir} not created"
    return f"cannot write {name}: {err.strerror}; {kept}"


def _commit(tmp: Path, out_dir: Path) -> None:
    """Move the finished output into place (replacing an old one only now, when --force)."""
    if out_dir.exists():
        old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
        out_dir.rename(old)
        tmp.rename(out_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(out_dir)


@dataclass
class _FrameJob:
    index: int
    timestamp: int  # bag receive time, ns
    raw: bytes | memoryview


class ReplaySession:
    """One replay from the first message to results.json: the stream's state with names.

    :meth:`run` reads top to bottom: static inputs first (``/tf_static``, the first camera_info),
    then every message in bag order (camera frames through the frame path, camera_info updates,
    ground truth into the evaluator), then the numbers and the report.
    """

    def __init__(
        self,
        reader: Any,
        bag: Path,
        options: ReplayOptions,
        settings: NodeSettings,
        frame_path: FramePath,
        tmp: Path,
    ) -> None:
        self.reader, self.bag, self.options, self.settings = reader, bag, options, settings
        self.frame_path, self.estimator, self.tmp = frame_path, frame_path.estimator, tmp
        self.connections: dict[str, list[Any]] = {}
        for conn in reader.connections:
            self.connections.setdefault(conn.topic, []).append(conn)
        self.topics = self._select_topics()
        counts = self._counts()[self.topics.image]
        self.total = counts if options.max_frames is None else min(counts, options.max_frames)
        self.transforms = StaticTransforms()
        self.camera_info: Any = None
        self.image_size: tuple[int, int] | None = None  # of the last decoded camera image
        self.depth_size: list[int] | None = None  # of the first published depth image
        self.warnings: list[str] = []
        self.evaluator = StreamEvaluator(
            min_depth=options.min_depth,
            max_depth=options.max_depth,
            garg_crop=options.garg_crop,
            tolerance_s=options.sync_tolerance,
        )
        # Motion labels wait here for the depth ground truth of their stamp (and the other way round).
        self.motion = MotionPairing(self.topics.motion) if self.topics.motion else None
        self.clock = PausableClock()
        self.gate = NewestFrameGate()
        self.drops = dict.fromkeys(DROP_REASONS, 0)
        self.resets = dict.fromkeys(RESET_REASONS, 0)
        self.frame_modes = dict.fromkeys(FRAME_MODES, 0)
        self.bad_frames: list[str] = []
        self.per_frame: dict[int, dict[str, Any]] = {}
        self.stage_samples: dict[str, list[float]] = {}
        self.frames_read = 0
        self.first_bag_time: int | None = None
        self.last_bag_time = 0
        self.first_stamp: int | None = None
        self.lidar_warned = False
        self.copied: list[str] = []
        self.storage = ""
        self.writer: OutputBag | None = None
        self.pictures: report.ReportFrames | None = None

    # --- set-up ----------------------------------------------------------------------------------
    def _counts(self) -> dict[str, int]:
        return {topic: sum(c.msgcount for c in conns) for topic, conns in self.connections.items()}

    def _select_topics(self) -> Topics:
        topic_types = {topic: conns[0].msgtype for topic, conns in self.connections.items()}
        if not topic_types or self.reader.message_count == 0:
            raise ReplayError(f"bag {self.bag} is empty: it has no messages")
        o = self.options
        return select_topics(
            topic_types,
            self._counts(),
            self.bag,
            image=o.image_topic,
            camera_info=o.camera_info_topic,
            gt=o.gt,
            gt_topic=o.gt_topic,
            motion_topic=o.motion_topic,
        )

    def _messages(self, topics: list[str]) -> Any:
        return iter_messages(self.reader, [c for t in topics for c in self.connections[t]], self.bag)

    def _read_static_inputs(self) -> None:
        """Static transforms and the first camera_info are needed before the first frame."""
        if self.topics.tf_static:
            for conn, _, raw in self._messages([self.topics.tf_static]):
                self.transforms.add_message(deserialize(self.reader, raw, conn, self.bag))
        for conn, _, raw in self._messages([self.topics.camera_info]):
            self.camera_info = deserialize(self.reader, raw, conn, self.bag)
            break
        if not (self.topics.gt_depth or self.topics.lidar):
            self.warnings.append(f"no ground truth topic in {self.bag.name}: depth is not scored")

    def _open_output_bag(self) -> OutputBag:
        self.storage = self.options.storage or bag_storage(self.bag)
        writer = OutputBag(self.tmp / OUTPUT_BAG, self.storage)
        writer.add(OUT_TOPICS["image"], IMAGE_TYPE)
        writer.add(OUT_TOPICS["camera_info"], INFO_TYPE)
        if self.settings.publish_points:
            writer.add(OUT_TOPICS["points"], CLOUD_TYPE)
        t = self.topics
        self.copied = (
            [x for x in (t.image, t.camera_info, t.tf_static) if x] if self.options.copy_inputs else []
        )
        for topic in self.copied:
            conn = self.connections[topic][0]
            writer.add(topic, conn.msgtype, getattr(conn.ext, "offered_qos_profiles", ()))
        return writer

    # --- the stream ------------------------------------------------------------------------------
    def run(self, out_dir: Path) -> dict[str, Any]:
        """Replay the whole bag into ``self.tmp``; the results dict (also written as results.json)."""
        from tqdm import tqdm

        self._read_static_inputs()
        self.writer = self._open_output_bag()
        files_dir = self.tmp / report.REPORT_FILES
        files_dir.mkdir()
        self.pictures = report.ReportFrames(
            files_dir, self.total, self.options.report_frames, self.options.max_depth
        )
        t = self.topics
        wanted = [t.image, t.camera_info, *(x for x in (t.gt_depth, t.lidar, t.motion) if x)]
        wanted += [x for x in self.copied if x not in wanted]
        progress = tqdm(
            total=self.total,
            unit="frame",
            desc="replay",
            disable=not self.options.progress,
            dynamic_ncols=True,
        )
        wall_start = time.perf_counter()
        try:
            for conn, timestamp, raw in self._messages(wanted):
                if conn.topic == t.image and self.frames_read >= self.total:
                    break
                if conn.topic in self.copied:
                    self.writer.write_raw(conn.topic, timestamp, raw)
                if conn.topic == t.image:
                    self._on_image(_FrameJob(self.frames_read, timestamp, raw))
                    progress.update(1)
                elif conn.topic == t.camera_info:
                    self.camera_info = deserialize(self.reader, raw, conn, self.bag)
                elif conn.topic in (t.gt_depth, t.lidar, t.motion):
                    self.clock.pause()  # replay-only work: not the node's time
                    self._on_ground_truth(conn, raw)
                    self.clock.resume()
            if self.options.realtime and (pending := self.gate.flush()) is not None:
                wait_until(self.clock, pending[1])
                self._process(pending[0])
        finally:
            progress.close()
        wall_time = time.perf_counter() - wall_start
        if self.motion is not None:  # truths still waiting for labels are scored whole
            self._add_truths(self.motion.flush())
        self.evaluator.take_unmatched(flush=True)
        if self.frames_read == 0:
            raise ReplayError(f"bag {self.bag} has no readable messages on {t.image}")
        if not self.per_frame:
            first = self.bad_frames[0] if self.bad_frames else "unknown"
            raise ReplayError(f"no frame of {self.bag} could be processed: {first}")
        self.writer.close()
        results = _json_safe(self._results(out_dir, wall_time))
        self._write_report(results)
        atomic_write_text(self.tmp / RESULTS_JSON, json.dumps(results, indent=1))
        return results

    def _on_image(self, job: _FrameJob) -> None:
        self.first_bag_time = job.timestamp if self.first_bag_time is None else self.first_bag_time
        self.frames_read += 1
        self.last_bag_time = job.timestamp
        if not self.options.realtime:
            self._process(job)
            return
        ready = self.gate.push(job, (job.timestamp - self.first_bag_time) / 1e9)
        if ready is not None:
            wait_until(self.clock, ready[1])
            self._process(ready[0])

    def _process(self, job: _FrameJob) -> None:
        """One camera frame through the node's frame path; the outputs recorded, scored and written."""
        start = time.perf_counter()
        conn = self.connections[self.topics.image][0]
        msg = deserialize(self.reader, job.raw, conn, self.bag)
        deserialized = time.perf_counter() - start
        # As the node: its worker takes the next frame once the network is done (gate.finished) while
        # its finish thread builds this frame's messages (here, on this thread).
        prepared = self.frame_path.prepare(msg, self.camera_info, self.settings)
        started = prepared if isinstance(prepared, FrameDrop) else self.frame_path.infer(prepared)
        self.gate.finished(self.clock.now())
        if isinstance(started, FrameDrop):
            outputs: FrameOutputs | FrameDrop = started
        else:
            outputs = self.frame_path.finish(started, self.settings.publish_points)
        if isinstance(outputs, FrameDrop):
            self.drops[outputs.reason] += 1
            self.bad_frames.append(f"frame {job.index} ({outputs.reason}): {outputs.detail}")
            return
        self.clock.pause()  # from here on: replay-only work, not the node's
        if outputs.reset is not None:
            self.resets[outputs.reset] += 1
        self.frame_modes[outputs.frame_mode] += 1
        # The node's own stages, plus reading the message from the bag (the node's "decode" too).
        timings = {**outputs.timings, "decode": deserialized + outputs.timings["decode"]}
        timings[END_TO_END] += deserialized
        for name, value in timings.items():
            self.stage_samples.setdefault(name, []).append(value)
        self._write_outputs(job, outputs, timings[END_TO_END])
        self._record(job, msg, outputs, timings)
        self.clock.resume()

    def _write_outputs(self, job: _FrameJob, outputs: FrameOutputs, latency_s: float) -> None:
        assert self.writer is not None
        # Real time: stamped in the output bag when the node would have published it.
        out_time = job.timestamp + (int(latency_s * 1e9) if self.options.realtime else 0)
        self.writer.write(OUT_TOPICS["image"], out_time, outputs.image)
        self.writer.write(OUT_TOPICS["camera_info"], out_time, outputs.camera_info)
        if outputs.points is not None:
            self.writer.write(OUT_TOPICS["points"], out_time, outputs.points)

    def _record(self, job: _FrameJob, msg: Any, outputs: FrameOutputs, timings: dict[str, float]) -> None:
        """Per-frame numbers, and the published depth handed to the evaluator (and the report)."""
        assert self.pictures is not None
        stamp = stamp_ns(msg.header)
        self.image_size = outputs.result.input_size
        self.per_frame[job.index] = {
            "index": job.index,
            "stamp": stamp / 1e9,
            "scale": float(outputs.result.scale),
            "reset": outputs.reset,
            "frame_mode": outputs.frame_mode,
            "latency_ms": {k: v * 1e3 for k, v in timings.items()},
        }
        # Score what was published (16UC1 output is scored in its millimetre steps), as the live
        # evaluator node does.
        published = image_msg_to_depth(outputs.image)
        self.depth_size = self.depth_size or list(published.shape[::-1])
        self.first_stamp = stamp if self.first_stamp is None else self.first_stamp
        panel = None
        if self.pictures.wants(job.index):
            panel = {"rgb": outputs.cropped_rgb(), "depth": published}
        if self.topics.gt_depth or self.topics.lidar:
            self._scored(
                self.evaluator.add_prediction(
                    stamp, published, key=job.index, crop=outputs.result.crop, extra=panel
                )
            )
            for key, stamp_unmatched, kept in self.evaluator.take_unmatched():
                if kept is not None:
                    self._picture(key, kept["rgb"], kept["depth"], None, stamp_unmatched)
        elif panel is not None:
            self._picture(job.index, panel["rgb"], published, None, stamp)

    def _on_ground_truth(self, conn: Any, raw: Any) -> None:
        msg = deserialize(self.reader, raw, conn, self.bag)
        stamp = stamp_ns(msg.header)
        if conn.topic == self.topics.motion:
            assert self.motion is not None
            try:
                labels = motion_labels_from_msg(msg, conn.topic)
            except MotionLabelsError as err:  # counted and named, as the node drops a bad frame
                self.motion.drop(err)
                return
            self._add_truths(self.motion.add_labels(stamp, labels))
            return
        if conn.topic == self.topics.gt_depth:
            try:
                truth = depth_truth(msg, conn.topic)
            except BadInputError as err:
                raise ReplayError(f"ground truth on {conn.topic} in {self.bag}: {err}") from None
        else:
            truth = self._lidar_truth(conn.topic, msg)
            if truth is None:
                return
        self._add_truths(
            [(stamp, truth, None)] if self.motion is None else self.motion.add_truth(stamp, truth)
        )

    def _add_truths(self, truths: list[TruthWithLabels]) -> None:
        for stamp, truth, labels in truths:
            self._scored(self.evaluator.add_truth(stamp, truth, labels))

    def _lidar_truth(self, topic: str, msg: Any) -> Any:
        T = self.options.T_cam_lidar
        camera_frame = self.camera_info.header.frame_id
        if T is None:
            T = self.transforms.lookup(camera_frame, msg.header.frame_id)
            if T is None:
                raise ReplayError(
                    f"no transform from LiDAR frame {msg.header.frame_id!r} to camera frame "
                    f"{camera_frame!r} in /tf_static of {self.bag} "
                    f"(frames: {', '.join(self.transforms.frames) or 'none'}); pass --T-cam-lidar"
                )
        try:
            return lidar_truth(msg, self.camera_info, T, topic, self.image_size)
        except BadInputError as err:
            if not self.lidar_warned:
                self.warnings.append(f"LiDAR cloud on {topic} skipped: {err}")
                self.lidar_warned = True
        except ValueError:  # neither camera_info nor a decoded frame says the image size yet
            pass
        return None

    def _scored(self, scored: list[Scored]) -> None:
        for s in scored:
            if s.scores is not None:
                self.per_frame[s.key].update(_json_safe(s.scores))
            if s.extra is not None:
                self._picture(s.key, s.extra["rgb"], s.pred, s.gt, s.stamp_ns)

    def _picture(
        self, index: int, rgb: np.ndarray, pred: np.ndarray, gt: np.ndarray | None, stamp: int
    ) -> None:
        assert self.pictures is not None
        if not self.pictures.wants(index):
            return
        rec = self.per_frame.get(index, {})
        first = self.first_stamp if self.first_stamp is not None else stamp
        caption = f"frame {index}   t = {(stamp - first) / 1e9:.2f} s"
        if rec.get("metric"):
            caption += (
                f"   abs_rel {rec['metric']['abs_rel']:.3f}"
                f" (median-scaled {rec['median_scaled']['abs_rel']:.3f})"
                f"   a1 {rec['metric']['a1']:.3f}   scale {rec['scale']:.3f}"
            )
        self.pictures.render(index, rgb, pred, gt, caption)

    # --- the numbers -----------------------------------------------------------------------------
    def _results(self, out_dir: Path, wall_time: float) -> dict[str, Any]:
        # Long: one dict literal is the whole results.json schema, readable in one place.
        o, t = self.options, self.topics
        summary = self.evaluator.summary()
        processed = len(self.per_frame)
        self.drops["superseded"] = self.gate.dropped
        e2e = self.stage_samples.get(END_TO_END, [])
        first_bag_time = self.first_bag_time or 0
        duration_s = (self.last_bag_time - first_bag_time) / 1e9 if self.frames_read > 1 else 0.0
        gt_source = (
            f"depth image {t.gt_depth}"
            if t.gt_depth
            else f"LiDAR {t.lidar} projected (KITTI recipe)"
            if t.lidar
            else None
        )
        if self.bad_frames:
            self.warnings.append(f"{len(self.bad_frames)} bad frame(s) skipped, first: {self.bad_frames[0]}")
        self.warnings += self._motion_warnings()
        out_bag = out_dir / OUTPUT_BAG
        if o.copy_inputs:
            play = f"ros2 bag play {out_bag}   (then: rviz2 -d config/depth.rviz)"
        else:
            play = (
                f"ros2 bag play {self.bag} {out_bag}   (both bags together; then: rviz2 -d config/depth.rviz)"
            )
        return {
            "created": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            "bag": str(self.bag.resolve()),
            "realtime": o.realtime,
            "provider": self.estimator.provider,
            "model": {"path": str(self.estimator.model_path.resolve()), **_model_dict(self.estimator.info)},
            "node_params": o.node_params,
            "inputs": {
                "image_topic": t.image,
                "image_type": t.image_type,
                "camera_info_topic": t.camera_info,
                "camera_frame": self.camera_info.header.frame_id if self.camera_info is not None else None,
                "gt_depth_topic": t.gt_depth,
                "lidar_topic": t.lidar,
                "motion_topic": t.motion,
                "image_size": list(self.image_size) if self.image_size else None,
                "depth_size": self.depth_size,
                "storage": bag_storage(self.bag),
            },
            "frames": {
                "total": self.total,
                "read": self.frames_read,
                "processed": processed,
                "dropped": self.gate.dropped,
                "bad": len(self.bad_frames),
                "dropped_by_reason": dict(self.drops),
                "resets_by_reason": dict(self.resets),
                "processed_by_mode": dict(self.frame_modes),
                "scored": len(self.evaluator.frames),
                "unscored": processed - len(self.evaluator.frames),
            },
            "evaluation": {
                "gt_source": gt_source,
                "min_depth": o.min_depth,
                "max_depth": o.max_depth,
                "garg_crop": o.garg_crop,
                "sync_tolerance_s": o.sync_tolerance,
                "median_scale_mean": summary["median_scale_mean"] if summary else None,
                "median_scale_std": summary["median_scale_std"] if summary else None,
                "motion_labels": self._motion_counts(),
            },
            "metrics": (
                {"metric": summary["metric"], "median_scaled": summary["median_scaled"]} if summary else None
            ),
            # Per motion region: {region: {frames, pixels, median_scaled, metric}}; None without labels.
            "regions": summary["regions"] if summary else None,
            "latency_ms": {name: latency_stats(samples) for name, samples in self.stage_samples.items()},
            "fps": {
                "recorded": (self.frames_read - 1) / duration_s if duration_s > 0 else None,
                "pipeline": 1.0 / float(np.mean(e2e)) if e2e else None,
                "throughput": processed / wall_time if wall_time > 0 else None,
            },
            "wall_time_s": wall_time,
            "outputs": {
                "dir": str(out_dir.resolve()),
                "bag": str(out_bag.resolve()),
                "bag_storage": self.storage,
                "bag_topics": [*OUT_TOPICS.values()][: 3 if self.settings.publish_points else 2]
                + self.copied,
                "json": str((out_dir / RESULTS_JSON).resolve()),
                "report": str((out_dir / REPORT_HTML).resolve()),
                "play_command": play,
            },
            "warnings": self.warnings,
            "per_frame": [self.per_frame[k] for k in sorted(self.per_frame)],
        }

    def _motion_counts(self) -> dict[str, Any] | None:
        m = self.motion
        if m is None:
            return None
        return {
            "topic": m.topic,
            "paired": m.paired,
            "ground_truth_without_labels": m.truths_without_labels,
            "dropped": sum(m.dropped.values()),
            "dropped_by_reason": dict(m.dropped),
        }

    def _motion_warnings(self) -> list[str]:
        m, out = self.motion, []
        if m is not None and (dropped := sum(m.dropped.values())):
            reasons = ", ".join(f"{reason} {n}" for reason, n in m.dropped.items() if n)
            out.append(f"{dropped} motion label image(s) dropped ({reasons}), first: {m.first_drop}")
        if m is not None and m.truths_without_labels:
            out.append(
                f"{m.truths_without_labels} ground truth frame(s) without usable motion labels on {m.topic}: "
                "scored whole, not per region"
            )
        return out

    def _write_report(self, results: dict[str, Any]) -> None:
        assert self.pictures is not None
        files_dir = self.tmp / report.REPORT_FILES
        images: dict[str, list[str]] = {"frames": self.pictures.panels, "metrics": [], "latency": []}
        per_frame = [self.per_frame[k] for k in sorted(self.per_frame)]
        if report.plot_metrics_over_time(files_dir / "metrics_over_time.png", per_frame):
            images["metrics"].append(f"{report.REPORT_FILES}/metrics_over_time.png")
        latency_ms = {name: [v * 1e3 for v in samples] for name, samples in self.stage_samples.items()}
        if report.plot_latency(files_dir / "latency.png", latency_ms, END_TO_END):
            images["latency"].append(f"{report.REPORT_FILES}/latency.png")
        report.write_html(self.tmp / REPORT_HTML, results, images)


def _model_dict(info: ModelInfo) -> dict[str, Any]:
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
        "frames",
    )
    return {k: getattr(info, k) for k in keys}


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
