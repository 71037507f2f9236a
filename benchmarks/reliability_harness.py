"""Overload and soak runs of the real depth node: a camera publisher, an output subscriber, counters.

Shared by ``benchmarks/bench_reliability.py`` (the figures in docs/RELIABILITY.md, demo model) and
``test/test_overload_soak.py`` (CI-sized runs of the same code, tiny model); both load this file by
path (``benchmarks/`` is not a package).

The node runs as on the car: :class:`depth_node.ros.node.DepthNode` with its subscription callbacks,
one-slot mailbox and inference thread. The harness plays the camera (Image + CameraInfo at a fixed
rate, each with a fresh stamp) and a subscriber of the outputs, on one executor spun by the calling
thread; inference runs on the node's own worker thread. rclpy is the real one where it imports,
else ``test/rclpy_stand_in`` (see ``ros_api``).
"""

from __future__ import annotations

import contextlib
import gc
import math
import os
import random
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, NamedTuple

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TEST_DIR = ROOT / "test"
for _path in (ROOT, TEST_DIR):  # depth_node, and rclpy_stand_in for machines without ROS 2
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from depth_node.ros.diagnostics import FrameStats  # noqa: E402
from depth_node.runtime.conversions import numpy_to_image  # noqa: E402
from depth_node.runtime.estimator import DepthEstimator  # noqa: E402
from depth_node.runtime.frame import DROP_REASONS, FrameDrop, FramePath  # noqa: E402
from depth_node.runtime.message_types import MessageTypes, stamp_header  # noqa: E402
from depth_node.runtime.messages import camera_info_from_K  # noqa: E402
from depth_node.runtime.parameters import NodeSettings  # noqa: E402
from depth_node.runtime.pipeline import DepthPipeline  # noqa: E402

FRAME_ID = "camera_optical"
ARRIVAL_TIMEOUT_S = 2.0  # a sent frame that has not reached the node's callback by then is lost
# Frames in the node at once, one per stage: in the mailbox, being prepared, prepared and waiting for
# the network, in the network, being finished. More would be a queue.
MOST_IN_FLIGHT = 5


# --- the process: memory, file descriptors, threads ----------------------------------------------
def rss_bytes() -> int:
    """Resident memory of this process (psutil where installed, else /proc/self/status VmRSS)."""
    try:
        import psutil
    except ImportError:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("/proc/self/status has no VmRSS line (not Linux?)") from None
    return int(psutil.Process().memory_info().rss)


@dataclass(frozen=True)
class ProcessSnapshot:
    rss_bytes: int
    fds: int  # entries of /proc/self/fd
    threads: int  # threading.active_count(): Python threads
    os_threads: int  # entries of /proc/self/task: every thread, ONNX Runtime's pool included


def process_snapshot() -> ProcessSnapshot:
    """Memory, open file descriptors and threads of this process, after a full garbage collection."""
    gc.collect()
    return ProcessSnapshot(
        rss_bytes=rss_bytes(),
        fds=len(os.listdir("/proc/self/fd")),
        threads=threading.active_count(),
        os_threads=len(os.listdir("/proc/self/task")),
    )


# --- latency ---------------------------------------------------------------------------------------
def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    """count, p50/p95/p99/max/mean in milliseconds (NaN when empty)."""
    values = np.asarray(seconds, dtype=np.float64) * 1e3
    if values.size == 0:
        return {
            "count": 0,
            **dict.fromkeys(("p50_ms", "p95_ms", "p99_ms", "max_ms", "mean_ms"), float("nan")),
        }
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {
        "count": int(values.size),
        "p50_ms": float(p50),
        "p95_ms": float(p95),
        "p99_ms": float(p99),
        "max_ms": float(values.max()),
        "mean_ms": float(values.mean()),
    }


class Published(NamedTuple):
    """One published frame, seconds (the node's clocks: wall time for the stamp, monotonic otherwise)."""

    time: float  # monotonic, at publish
    latency: float  # header stamp -> publish
    wait: float  # arrival in the callback -> the prepare thread takes it out of the mailbox
    service: float  # the prepare thread takes it -> published (prepare, network, finish)


class RecordingStats(FrameStats):
    """The node's own FrameStats, also keeping every published frame's figures while ``log`` is set.

    FrameStats keeps a bounded window (the node's diagnostics); a benchmark wants every frame.
    ``taken`` (arrival -> when the prepare thread took that frame) is filled by
    :class:`NodeUnderTest`; a frame is published by the finish thread after the prepare thread has
    taken the next one.
    """

    def __init__(self) -> None:
        super().__init__()
        self.log: list[Published] | None = None
        self.taken: dict[float, float] = {}

    def frame_out(self, arrival: float, latency: float | None, frame_mode: str = "single") -> None:
        super().frame_out(arrival, latency, frame_mode)
        taken = self.taken.pop(arrival, math.nan)
        if self.log is not None:
            now = time.monotonic()
            stamp_latency = math.nan if latency is None else latency
            self.log.append(Published(now, stamp_latency, taken - arrival, now - taken))

    def counts(self) -> tuple[int, int, dict[str, int]]:
        """(frames in, frames published, dropped by reason) at one instant (the worker updates them)."""
        with self._lock:
            return self.frames_in, self.frames_out, dict(self.dropped_by_reason)


# --- the camera ------------------------------------------------------------------------------------
@dataclass
class Camera:
    """RGB frames sent in turn, as bgr8 Images, with the CameraInfo of ``K``."""

    frames: list[np.ndarray]
    K: np.ndarray
    source: str

    @property
    def width(self) -> int:
        return int(self.frames[0].shape[1])

    @property
    def height(self) -> int:
        return int(self.frames[0].shape[0])

    @classmethod
    def synthetic(cls, width: int, height: int, frames: int = 8, seed: int = 7) -> Camera:
        """Frames of one drive of the synthetic world (KITTI's field of view at this size)."""
        from depth_node.data.sim.world import SyntheticDrive, WorldConfig

        drive = SyntheticDrive(
            WorldConfig(seed=seed, num_frames=frames, width=width, height=height, lidar=False)
        )
        return cls([f.image for f in drive], drive.K, f"synthetic world, seed {seed}, {frames} frames")

    @classmethod
    def pattern(cls, width: int, height: int, frames: int = 4) -> Camera:
        """Fixed gradients (cheap to make: for tests)."""
        v, u = np.mgrid[0:height, 0:width].astype(np.float32)
        images = [
            np.clip(np.stack([u / width * 200 + k * 10, v / height * 200, (u + v) % 255], -1), 0, 255).astype(
                np.uint8
            )
            for k in range(frames)
        ]
        K = np.array([[0.6 * width, 0, (width - 1) / 2], [0, 0.6 * width, (height - 1) / 2], [0, 0, 1]])
        return cls(images, K, f"fixed pattern, {frames} frames")


# --- rclpy and the node under test ------------------------------------------------------------------
@contextlib.contextmanager
def ros_api() -> Iterator[SimpleNamespace]:
    """rclpy (real where it imports, else the stand-in), the node module and the message classes.

    Everything imported here is valid only inside the ``with`` block (the stand-in is unloaded after).
    """
    from rclpy_stand_in import rclpy_or_stand_in

    with rclpy_or_stand_in() as stand_in:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.parameter import Parameter
        from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import CameraInfo, Image, PointCloud2

        from depth_node.ros import node as node_module
        from depth_node.runtime.message_types import ros_types

        yield SimpleNamespace(
            stand_in=stand_in,
            rclpy=rclpy,
            node_module=node_module,
            Executor=SingleThreadedExecutor,
            Parameter=Parameter,
            QoSProfile=QoSProfile,
            HistoryPolicy=HistoryPolicy,
            ReliabilityPolicy=ReliabilityPolicy,
            Image=Image,
            CameraInfo=CameraInfo,
            PointCloud2=PointCloud2,
            types=ros_types(),
        )


class NodeUnderTest:
    """A started DepthNode plus a camera node (publishes Image + CameraInfo, counts the outputs).

    ``points``: subscribe to the point cloud too (the node builds it only while someone does).
    """

    def __init__(self, ros: SimpleNamespace, params: dict[str, Any], camera: Camera, *, points: bool) -> None:
        self.ros = ros
        self.camera = camera
        self.points = points
        ros.rclpy.init(args=[], domain_id=None if ros.stand_in else random.randint(100, 200))
        overrides = [ros.Parameter(name, value=value) for name, value in params.items()]
        try:
            self.node = ros.node_module.DepthNode(parameter_overrides=overrides)
        except BaseException:
            ros.rclpy.try_shutdown()  # a later run must be able to init again
            raise
        self.stats = RecordingStats()
        self.node.stats = self.stats  # before start(): the callbacks and the worker read node.stats
        self.tester = ros.rclpy.create_node("reliability_camera")
        self.executor = ros.Executor()
        self.executor.add_node(self.node)
        self.executor.add_node(self.tester)
        self.sent = 0
        self.lost = 0  # sent, but never reached the node's image callback
        self.received = {"image": 0, "camera_info": 0, "points": 0}
        # A reliable camera publisher of depth 1, as ros2 bag play offers by default.
        self._image_pub = self.tester.create_publisher(ros.Image, "/camera/image_raw", 1)
        self._info_pub = self.tester.create_publisher(ros.CameraInfo, "/camera/camera_info", 1)
        # Deep queues on the receiving side: a frame the node published is counted, never lost here.
        receive = ros.QoSProfile(
            depth=100, history=ros.HistoryPolicy.KEEP_LAST, reliability=ros.ReliabilityPolicy.RELIABLE
        )
        outputs = [
            (ros.Image, "/depth/image", "image"),
            (ros.CameraInfo, "/depth/camera_info", "camera_info"),
        ]
        if points:
            outputs.append((ros.PointCloud2, "/depth/points", "points"))
        for msg_type, topic, key in outputs:
            self.tester.create_subscription(msg_type, topic, self._counter(key), receive)

    def _counter(self, key: str) -> Callable[[Any], None]:
        def count(_msg: Any) -> None:
            self.received[key] += 1

        return count

    def start(self) -> NodeUnderTest:
        # The prepare thread calls node._prepare once per frame taken from the mailbox: note when
        # (before start(), which hands the method to the thread).
        prepare = self.node._prepare

        def timed_prepare(frame: Any) -> None:
            self.stats.taken[frame.arrival] = time.monotonic()
            prepare(frame)

        self.node._prepare = timed_prepare
        self.node.start()
        # Real DDS needs discovery before the first sample counts; the stand-in is connected at once.
        self.spin_until(lambda: self._image_pub.get_subscription_count() > 0, "discovery", 20.0)
        if self.points:
            self.spin_until(lambda: self.node._points_pub.get_subscription_count() > 0, "discovery", 20.0)
        return self

    @property
    def frame_path(self) -> FramePath:
        return self.node.frame_path

    def spin_until(self, predicate: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
        if not self.spin_while_not(predicate, timeout):
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")

    def spin_while_not(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Spin the executor until ``predicate()``; False when ``timeout`` passed first."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                return False
            self.executor.spin_once(timeout_sec=0.005)
        return True

    def send(self) -> None:
        """Publish the camera's next frame and its CameraInfo, stamped now; wait until it arrived.

        Waiting for the image callback (microseconds) keeps the count of frames that reached the node
        exact; a frame that does not arrive within ARRIVAL_TIMEOUT_S is counted lost.
        """
        camera, types = self.camera, self.ros.types
        rgb = camera.frames[self.sent % len(camera.frames)]
        header = stamp_header(types, time.time_ns(), FRAME_ID)
        before = self.stats.frames_in
        self._info_pub.publish(camera_info_from_K(camera.K, camera.width, camera.height, header, types))
        self._image_pub.publish(numpy_to_image(rgb[:, :, ::-1], "bgr8", header, types))
        self.sent += 1
        if not self.spin_while_not(lambda: self.stats.frames_in > before, ARRIVAL_TIMEOUT_S):
            self.lost += 1

    def counters(self) -> tuple[int, int, dict[str, int]]:
        """(frames in, frames published, dropped by reason), read at one instant."""
        return self.stats.counts()

    def in_flight(self) -> int:
        """Frames that arrived and are neither published nor dropped: in the mailbox or in inference."""
        frames_in, frames_out, dropped = self.counters()
        return frames_in - frames_out - sum(dropped.values())

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until every arrived frame is published or dropped and every output was received."""

        def done() -> bool:
            frames_in, frames_out, dropped = self.counters()
            if frames_in != frames_out + sum(dropped.values()):
                return False
            keys = ("image", "camera_info", "points") if self.points else ("image", "camera_info")
            return all(self.received[key] == frames_out for key in keys)

        return self.spin_while_not(done, timeout)

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        self.tester.destroy_node()
        self.ros.rclpy.try_shutdown()


@contextlib.contextmanager
def node_under_test(
    ros: SimpleNamespace, params: dict[str, Any], camera: Camera, *, points: bool
) -> Iterator[NodeUnderTest]:
    """A started :class:`NodeUnderTest`, closed (worker joined, context shut down) on exit."""
    nut = NodeUnderTest(ros, params, camera, points=points)
    try:
        yield nut.start()
    finally:
        nut.close()


# --- the runs -------------------------------------------------------------------------------------
def timing_summary(log: Sequence[Published]) -> dict[str, dict[str, float]]:
    """Latency (stamp -> publish), mailbox wait and service time of published frames, in ms."""
    return {
        "latency": latency_summary([row.latency for row in log]),
        "wait": latency_summary([row.wait for row in log]),
        "service": latency_summary([row.service for row in log]),
    }


@dataclass
class SingleFrameResult:
    """Frames sent one at a time (each published before the next is sent)."""

    frames: int
    timing: dict[str, dict[str, float]]  # timing_summary
    max_rate_hz: float  # 1 / median latency: the most frames per second the node can take

    @property
    def latency(self) -> dict[str, float]:
        return self.timing["latency"]


def single_frame(nut: NodeUnderTest, frames: int, warmup: int) -> SingleFrameResult:
    """The node's end-to-end latency with no load: send, wait until published, repeat."""
    for index in range(warmup + frames):
        if index == warmup:
            nut.stats.log = []
        published = nut.stats.frames_out
        nut.send()
        if not nut.drain():
            raise RuntimeError(f"frame {index} was neither published nor dropped within 30 s")
        if nut.stats.frames_out != published + 1:
            _, _, dropped = nut.counters()
            reasons = {reason: n for reason, n in dropped.items() if n}
            raise RuntimeError(f"the node dropped a benchmark frame (dropped so far: {reasons})")
    log, nut.stats.log = nut.stats.log or [], None
    timing = timing_summary(log)
    return SingleFrameResult(frames=frames, timing=timing, max_rate_hz=1e3 / timing["latency"]["p50_ms"])


@dataclass
class OverloadResult:
    seconds: float
    target_rate_hz: float
    sent_rate_hz: float  # achieved: frames sent / seconds
    late_ticks: int  # send times skipped because the previous send or a callback ran late
    sent: int
    arrived: int  # frames that reached the node's image callback
    lost_before_node: int  # sent - arrived (the node cannot count these)
    published: int
    received: int  # depth images that reached the subscriber
    dropped: int
    dropped_by_reason: dict[str, int]
    drained: bool  # every arrived frame published or dropped within the drain timeout
    identity_holds: bool  # sent == published + dropped, exactly
    max_in_flight: int  # arrived - published - dropped, sampled at every send: one per stage at most
    timing: dict[str, dict[str, float]]  # timing_summary of every published frame
    trend_window_s: float
    first_window: dict[str, dict[str, float]]  # timing_summary of frames published in the first window
    last_window: dict[str, dict[str, float]]  # ... and in the last
    rss_start_bytes: int
    rss_end_bytes: int

    @property
    def latency(self) -> dict[str, float]:
        return self.timing["latency"]


def overload(
    nut: NodeUnderTest,
    rate_hz: float,
    seconds: float,
    trend_window_s: float,
    progress: Callable[[float, NodeUnderTest], None] | None = None,
) -> OverloadResult:
    """Publish at ``rate_hz`` for ``seconds`` (a fixed-rate camera: no catching up), then drain."""
    period = 1.0 / rate_hz
    frames_in0, frames_out0, dropped0 = nut.counters()
    sent0, lost0, received0 = nut.sent, nut.lost, nut.received["image"]
    rss_start = rss_bytes()
    nut.stats.log = []
    max_in_flight = late = 0
    start = next_send = time.monotonic()
    next_report = start + 10.0
    end = start + seconds
    while (now := time.monotonic()) < end:
        if now < next_send:
            nut.executor.spin_once(timeout_sec=min(next_send - now, 0.005))
            continue
        nut.send()
        max_in_flight = max(max_in_flight, nut.in_flight())
        next_send += period
        if next_send < time.monotonic() - period:  # more than one period behind: skip, as a camera would
            skipped = int((time.monotonic() - next_send) / period)
            late += skipped
            next_send += skipped * period
        if progress is not None and now >= next_report:
            progress(now - start, nut)
            next_report += 10.0
    elapsed = time.monotonic() - start
    drained = nut.drain()
    log, nut.stats.log = nut.stats.log or [], None
    frames_in, frames_out, dropped = nut.counters()
    by_reason = {reason: dropped[reason] - dropped0[reason] for reason in DROP_REASONS}
    sent, published = nut.sent - sent0, frames_out - frames_out0
    return OverloadResult(
        seconds=elapsed,
        target_rate_hz=rate_hz,
        sent_rate_hz=sent / elapsed,
        late_ticks=late,
        sent=sent,
        arrived=frames_in - frames_in0,
        lost_before_node=nut.lost - lost0,
        published=published,
        received=nut.received["image"] - received0,
        dropped=sum(by_reason.values()),
        dropped_by_reason=by_reason,
        drained=drained,
        identity_holds=sent == published + sum(by_reason.values()),
        max_in_flight=max_in_flight,
        timing=timing_summary(log),
        trend_window_s=trend_window_s,
        first_window=timing_summary([row for row in log if row.time - start <= trend_window_s]),
        last_window=timing_summary([row for row in log if row.time - start >= elapsed - trend_window_s]),
        rss_start_bytes=rss_start,
        rss_end_bytes=rss_bytes(),
    )


@dataclass
class SoakResult:
    frames: int
    warmup_frames: int
    published: int
    dropped_by_reason: dict[str, int]
    at_start: ProcessSnapshot  # before the first soak frame
    after_warmup: ProcessSnapshot
    at_end: ProcessSnapshot
    rss_growth_pct: float  # end vs after warm-up
    rss_samples: list[tuple[int, int]] = field(default_factory=list)  # (frames sent, RSS bytes)


def soak(
    nut: NodeUnderTest,
    frames: int,
    warmup_frames: int,
    sample_every: int = 500,
    progress: Callable[[int, NodeUnderTest], None] | None = None,
) -> SoakResult:
    """``frames`` frames one after another, each published before the next: every one through inference.

    Memory, file descriptors and threads are read before the first frame, after ``warmup_frames``
    (allocator pools, ONNX Runtime's arenas and threads) and after the last frame.
    """
    if not 0 < warmup_frames < frames:
        raise ValueError(f"warmup_frames must be in (0, {frames}), got {warmup_frames}")
    _, frames_out0, dropped0 = nut.counters()
    at_start = process_snapshot()
    after_warmup = at_start
    samples: list[tuple[int, int]] = []
    for index in range(1, frames + 1):
        nut.send()
        if not nut.drain():
            raise RuntimeError(f"soak frame {index} was neither published nor dropped within 30 s")
        if index == warmup_frames:
            after_warmup = process_snapshot()
        if index % sample_every == 0 or index == warmup_frames:
            samples.append((index, rss_bytes()))
            if progress is not None:
                progress(index, nut)
    at_end = process_snapshot()
    _, frames_out, dropped = nut.counters()
    return SoakResult(
        frames=frames,
        warmup_frames=warmup_frames,
        published=frames_out - frames_out0,
        dropped_by_reason={r: dropped[r] - dropped0[r] for r in DROP_REASONS if dropped[r] - dropped0[r]},
        at_start=at_start,
        after_warmup=after_warmup,
        at_end=at_end,
        rss_growth_pct=100.0 * (at_end.rss_bytes - after_warmup.rss_bytes) / after_warmup.rss_bytes,
        rss_samples=samples,
    )


# --- bad-input cases through the frame path ---------------------------------------------------------
FRAME_TARGETS = ("frame", "stamps")  # the corpus's targets that run through FramePath.process


@dataclass
class CaseOutcome:
    name: str
    kind: str
    target: str
    expect: str
    outcome: str  # "ok", a drop or reset reason, or what went wrong ("raised ...", "timeout ...", ...)
    seconds: float

    @property
    def as_expected(self) -> bool:
        return self.outcome == self.expect


def _case_outcome(case: Any, frame_path: FramePath, settings: NodeSettings, built: Any) -> str:
    """What the frame path made of one case: the last frame's drop reason, reset reason or "ok"."""
    frames = [built] if case.target == "frame" else list(built)
    *earlier, last = [frame_path.process(image, info, settings, cloud=True) for image, info in frames]
    for out in earlier:  # a stamps case's lead-in frames are good ones
        if isinstance(out, FrameDrop):
            return f"an earlier frame dropped ({out.reason})"
    if isinstance(last, FrameDrop):
        return last.reason
    if case.check is not None and not case.check(last):
        return "ok, but the output is wrong"
    return last.reset or "ok"


def run_frame_cases(
    cases: Sequence[Any],
    estimator: DepthEstimator,
    settings: NodeSettings,
    types: MessageTypes,
    limit_s: float,
    stamp_ns: int = 1_700_000_000 * 10**9,
) -> list[CaseOutcome]:
    """The corpus's "frame" and "stamps" cases through ``FramePath.process`` (cloud on), each at most
    ``limit_s`` seconds, each on a fresh frame path (no stamp or scale state from the case before)
    around one shared ONNX Runtime session.

    A case (test/bad_inputs.py): ``.name``, ``.kind``, ``.target``, ``.expect``, ``.check`` and
    ``.build(types, stamp_ns)`` -> ``(image, camera_info)``, or a list of them for "stamps". A case
    still running after ``limit_s`` is reported as a timeout (its thread finishes in the background).
    """
    outcomes = []
    for case in cases:
        if case.target not in FRAME_TARGETS:
            continue
        box: dict[str, str] = {}

        def run(case: Any = case, box: dict[str, str] = box) -> None:
            try:
                built = case.build(types, stamp_ns)
            except Exception as error:  # a broken case, not a frame-path result
                box["outcome"] = f"build failed: {type(error).__name__}: {error}"
                return
            frame_path = FramePath(DepthPipeline(estimator, settings.pipeline_config()), types)
            try:
                box["outcome"] = _case_outcome(case, frame_path, settings, built)
            except Exception as error:  # the frame path's contract is never to raise: report it
                box["outcome"] = f"raised {type(error).__name__}: {error}"

        worker = threading.Thread(target=run, name=f"case {case.name}", daemon=True)
        start = time.perf_counter()
        worker.start()
        worker.join(limit_s)
        seconds = time.perf_counter() - start
        outcome = box.get("outcome", f"timeout (> {limit_s:g} s)")
        outcomes.append(CaseOutcome(case.name, case.kind, case.target, case.expect, outcome, seconds))
    return outcomes
