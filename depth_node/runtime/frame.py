"""The one per-frame path: image message + latest camera_info + settings -> outputs, or a named drop.

The depth node, the replay and the runtime benchmark all run :meth:`FramePath.process` (the node
and the benchmark as its three steps overlapped across frames: prepare the next, run the network,
finish the last), so a frame that is bad in one is bad in all, and is counted under the same reason
(:data:`DROP_REASONS`). The checks run in the order a frame's data is needed: camera_info present,
image decodable, camera_info describing this image (size, frame, calibration), a new stamp, depth
with at least one valid pixel.

Stamps: a frame with the same stamp as the last one processed is dropped ("duplicate_stamp": an
exact-time synchroniser downstream could not tell the two apart). A stamp that goes backwards (a bag
played in a loop, another recording) or jumps forward by more than :data:`TIME_JUMP_S` is processed,
but the temporal state (the scale smoothing, a two-frame model's previous frame) starts afresh, and the
frame says why in ``reset``; a two-frame model then gets this frame twice (``frame_mode`` "first").
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import cv2
import numpy as np

from depth_node.geometry import crop_image
from depth_node.runtime.background import BackgroundThread
from depth_node.runtime.conversions import to_colour8
from depth_node.runtime.errors import BadInputError, ImageDataError
from depth_node.runtime.estimator import DepthEstimator
from depth_node.runtime.message_types import MessageTypes, stamp_ns
from depth_node.runtime.messages import build_outputs
from depth_node.runtime.parameters import NodeSettings, resolve_model
from depth_node.runtime.pipeline import DepthPipeline, DepthResult, NetworkOutput, PreparedInput

# Why a frame was not published. "superseded": a newer frame arrived before inference took it (the
# node's mailbox, the replay's --realtime); the others come from FramePath.process.
DROP_REASONS = (
    "superseded",
    "no_camera_info",
    "duplicate_stamp",
    "bad_image",  # malformed Image: empty or tiny size, step, data length
    "bad_encoding",  # unsupported encoding or compression format, undecodable JPEG/PNG
    "size_mismatch",  # image and camera_info disagree on the size
    "frame_mismatch",  # image and camera_info come from different frames
    "bad_camera_info",
    "nan",
    "error",
)
# Why the temporal state (scale smoothing, previous frame) started afresh on a processed frame.
RESET_REASONS = ("backwards_stamp", "time_jump")
# A forward gap this long between frames means another stream (a pause, a bag with a gap).
TIME_JUMP_S = 1.0
# Below this many pixels per side an image holds nothing a depth network can use.
MIN_IMAGE_SIDE = 8
T = TypeVar("T")


@dataclass(frozen=True)
class FrameDrop:
    """A frame that produced no output: ``reason`` is one of :data:`DROP_REASONS`, ``detail`` one line."""

    reason: str
    detail: str


@dataclass
class FrameOutputs:
    """One frame's published messages (all with the input image's header) and how they were made.

    ``camera_image``: the decoded camera image, its channels in BGR order where ``bgr`` (see
    :attr:`rgb`), at 1/``reduction`` of the camera's size (a JPEG decoded smaller, see
    :meth:`DepthPipeline.input_reduction`); ``timings``: seconds per stage (decode, the pipeline's
    preprocess / inference / scale / postprocess, build_outputs), ``queued`` (:data:`QUEUED`) and
    ``end_to_end`` for all of them;
    ``reset``: one of :data:`RESET_REASONS` when this frame started the temporal state afresh.
    """

    image: Any
    camera_info: Any
    points: Any | None
    result: DepthResult
    camera_image: np.ndarray
    bgr: bool = False
    reduction: int = 1
    timings: dict[str, float] = field(default_factory=dict)
    reset: str | None = None

    @property
    def rgb(self) -> np.ndarray:
        """The decoded camera image in RGB (converted here, off the per-frame path, where it was BGR)."""
        return cv2.cvtColor(self.camera_image, cv2.COLOR_BGR2RGB) if self.bgr else self.camera_image

    def cropped_rgb(self) -> np.ndarray:
        """:attr:`rgb` cut to the pipeline's crop (what the depth image covers), as a new array."""
        crop = self.result.crop
        if crop is not None:
            crop = tuple(side // self.reduction for side in crop)  # type: ignore[assignment]
        return crop_image(self.rgb, crop).copy()

    @property
    def frame_mode(self) -> str:
        """How the network was fed: one of :data:`depth_node.runtime.pipeline.FRAME_MODES`."""
        return self.result.frame_mode


END_TO_END = "end_to_end"
# In a frame's timings: how long it waited, prepared, for the network (the node prepares frame N+1
# while frame N's network runs); part of END_TO_END.
QUEUED = "queued"


def check_camera_info(
    camera_info: Any, width: int, height: int, frame_id: str = ""
) -> np.ndarray | FrameDrop:
    """The 3x3 K of ``camera_info`` for a ``width`` x ``height`` image in ``frame_id``, or why not.

    A camera_info with width and height 0 (some drivers leave them unset) fits any image size, and an
    empty frame_id on either side fits any frame. P must be set: the published camera_info carries
    it, and depth_image_proc and rviz2 project with P, not K.
    """
    info_w, info_h = int(camera_info.width), int(camera_info.height)
    if info_w and info_h and (info_w, info_h) != (width, height):
        return FrameDrop("size_mismatch", f"image is {width}x{height} but camera_info says {info_w}x{info_h}")
    info_frame = camera_info.header.frame_id
    if frame_id and info_frame and frame_id != info_frame:
        return FrameDrop(
            "frame_mismatch", f"image frame_id {frame_id!r} but camera_info frame_id {info_frame!r}"
        )
    K = np.asarray(camera_info.k, dtype=np.float64).reshape(3, 3)
    P = np.asarray(camera_info.p, dtype=np.float64)
    if not (np.isfinite(K).all() and np.isfinite(P).all()):
        return FrameDrop("nan", "camera_info K or P holds NaN/inf")
    if K[0, 0] <= 0 or K[1, 1] <= 0:
        return FrameDrop(
            "bad_camera_info", f"camera_info K has fx={K[0, 0]:g}, fy={K[1, 1]:g} (uncalibrated camera?)"
        )
    if not P.any():
        return FrameDrop("bad_camera_info", "camera_info P is all zero (a monocular camera has P = [K | 0])")
    if P[0] <= 0 or P[5] <= 0:
        return FrameDrop("bad_camera_info", f"camera_info P has fx={P[0]:g}, fy={P[5]:g}")
    return K


class FramePath:
    """Runs one camera frame through decode, checks, the depth pipeline and the output messages."""

    def __init__(self, pipeline: DepthPipeline, types: MessageTypes) -> None:
        self.pipeline = pipeline
        self.types = types
        self._last_stamp: int | None = None  # ns, of the last frame that got past the stamp check

    def _check_stamp(self, stamp: int) -> FrameDrop | str | None:
        """A drop for a repeated stamp, a reset reason for a backwards or jumping one, else None.

        Stamp 0 (a driver that sets none) cannot be ordered: it is never a duplicate and never resets.
        """
        last = self._last_stamp
        if not stamp:
            return None
        if stamp == last:
            return FrameDrop("duplicate_stamp", f"stamp {stamp * 1e-9:.9f} s was already processed")
        self._last_stamp = stamp
        if last is not None and stamp < last:
            return "backwards_stamp"
        if last is not None and stamp - last > TIME_JUMP_S * 1e9:
            return "time_jump"
        return None

    @classmethod
    def from_settings(
        cls, settings: NodeSettings, types: MessageTypes, model: str | Path | None = None
    ) -> FramePath:
        """The frame path as the node builds it: ``model`` (else ``settings.model_path``, else the demo
        model), its ONNX Runtime session on the preferred provider, the pipeline. Raises
        ModelLoadError (model) or ValueError (a combination of settings the pipeline refuses)."""
        estimator = DepthEstimator(
            resolve_model(model or settings.model_path),
            providers=settings.providers,
            threads=settings.threads,
            precision=settings.precision,
            trt_cache_dir=settings.tensorrt_cache_dir,
            trt_fp16=settings.tensorrt_fp16,
        )
        return cls(DepthPipeline(estimator, settings.pipeline_config()), types)

    @property
    def estimator(self) -> DepthEstimator:
        return self.pipeline.estimator  # type: ignore[return-value]

    def process(
        self, image: Any, camera_info: Any | None, settings: NodeSettings, cloud: bool
    ) -> FrameOutputs | FrameDrop:
        """``image`` (Image or CompressedImage) with the latest ``camera_info`` -> outputs or a drop.
        ``settings`` are the node's (output encoding and cloud options, read per frame because some
        are dynamic parameters); ``cloud``: build the point cloud (the node builds it only while
        someone subscribes). Never raises for a bad frame: anything unforeseen is an "error" drop.

        :meth:`prepare`, :meth:`infer` then :meth:`finish`; the node overlaps the three across frames
        (:class:`FinishThread`, :class:`~depth_node.runtime.background.BackgroundThread`).
        """
        prepared = self.prepare(image, camera_info, settings)
        if isinstance(prepared, FrameDrop):
            return prepared
        started = self.infer(prepared)
        return started if isinstance(started, FrameDrop) else self.finish(started, cloud)

    def prepare(
        self, image: Any, camera_info: Any | None, settings: NodeSettings
    ) -> PreparedFrame | FrameDrop:
        """The first step of :meth:`process`: decode, the camera_info checks, the network's input. It
        keeps no state, so frame N+1 may be prepared while frame N's network runs (and a prepared frame
        may be dropped unseen); calls to ``prepare`` must not overlap each other."""
        start = time.perf_counter()
        if camera_info is None:
            return FrameDrop("no_camera_info", "no camera_info received yet")
        try:
            camera_image, bgr, reduction = to_colour8(image, self.pipeline.input_reduction)
        except ImageDataError as error:
            return FrameDrop("bad_image", str(error))
        except BadInputError as error:  # unsupported encoding, undecodable JPEG/PNG
            return FrameDrop("bad_encoding", str(error))
        except Exception as error:  # a decoder failing in a way nobody foresaw: still one frame
            return FrameDrop("error", f"{type(error).__name__}: {error}")
        decoded = time.perf_counter()
        height, width = (side * reduction for side in camera_image.shape[:2])
        if min(height, width) < MIN_IMAGE_SIDE:
            return FrameDrop("bad_image", f"image is {width}x{height}; at least {MIN_IMAGE_SIDE} px per side")
        K = check_camera_info(camera_info, width, height, image.header.frame_id)
        if isinstance(K, FrameDrop):
            return K
        try:
            pipeline_input = self.pipeline.prepare(camera_image, K, bgr, reduction)
        except ImageDataError as error:  # e.g. a crop that does not fit this image
            return FrameDrop("size_mismatch", str(error))
        except Exception as error:  # a bad frame must never stop the node or abort a replay
            return FrameDrop("error", f"{type(error).__name__}: {error}")
        return PreparedFrame(
            image,
            camera_info,
            settings,
            pipeline_input,
            camera_image,
            bgr,
            reduction,
            started_at=start,
            decode_seconds=decoded - start,
            ready_at=time.perf_counter(),
        )

    def infer(self, prepared: PreparedFrame) -> StartedFrame | FrameDrop:
        """The second step of :meth:`process`: the stamp checks and the network. Frames come in camera
        order (they carry the temporal state); :meth:`finish` of one may run while the next is here."""
        queued = time.perf_counter() - prepared.ready_at
        reset = self._check_stamp(stamp_ns(prepared.image.header))
        if isinstance(reset, FrameDrop):
            return reset
        try:
            network = self.pipeline.infer(prepared.pipeline_input, reset=reset is not None)
        except Exception as error:  # a bad frame must never stop the node or abort a replay
            return FrameDrop("error", f"{type(error).__name__}: {error}")
        return StartedFrame(prepared, network, reset, queued)

    def finish(self, frame: StartedFrame, cloud: bool) -> FrameOutputs | FrameDrop:
        """The last step of :meth:`process`: metric depth and the output messages."""
        prepared = frame.prepared
        settings = prepared.settings
        try:
            result = self.pipeline.finish(frame.network)
            if not np.isfinite(result.depth).any():
                return FrameDrop("nan", "the model's depth has no valid (finite, in-range) pixel")
            processed = time.perf_counter()
            outputs = build_outputs(
                result,
                prepared.image.header,
                prepared.camera_info,
                self.types,
                cloud=cloud,
                stride=settings.points_stride,
                min_range=settings.min_range,
                max_range=settings.max_range,
                organized=settings.points_organized,
                rgb=result.colour if settings.points_color else None,
                encoding=settings.depth_encoding,
                out_of_range=settings.out_of_range,
            )
        except ImageDataError as error:  # the depth image and the colour or camera_info disagree
            return FrameDrop("size_mismatch", str(error))
        except Exception as error:  # a bad frame must never stop the node or abort a replay
            return FrameDrop("error", f"{type(error).__name__}: {error}")
        end = time.perf_counter()
        timings = {
            "decode": prepared.decode_seconds,
            **result.timings,
            "build_outputs": end - processed,
            QUEUED: frame.queued_seconds,
        }
        timings[END_TO_END] = end - prepared.started_at
        return FrameOutputs(
            outputs.image,
            outputs.camera_info,
            outputs.points,
            result,
            prepared.camera_image,
            prepared.bgr,
            prepared.reduction,
            timings,
            frame.reset,
        )


@dataclass
class PreparedFrame:
    """A frame between :meth:`FramePath.prepare` and :meth:`FramePath.infer`: its messages and the
    settings it came with, the network's input, the decoded image, and when it started."""

    image: Any
    camera_info: Any
    settings: NodeSettings
    pipeline_input: PreparedInput
    camera_image: np.ndarray
    bgr: bool
    reduction: int
    started_at: float
    decode_seconds: float
    ready_at: float


@dataclass
class StartedFrame:
    """A frame between :meth:`FramePath.infer` and :meth:`FramePath.finish`: the prepared frame, the
    network's output, the reason the temporal state started afresh here (None: it did not), and how
    long the prepared frame waited for the network."""

    prepared: PreparedFrame
    network: NetworkOutput
    reset: str | None
    queued_seconds: float


def prepare_thread(priority: str) -> BackgroundThread:
    """The thread that prepares frame N+1 beside frame N's network (the node, ``bench_runtime.py``), at
    ``priority``. At "idle", OpenCV's worker threads are switched off for the process: they run at
    normal priority, and the shrink they would share out competes with the network again; on this
    thread alone it fills the network's gaps (0.01-0.02 more of the network's frame rate at 1920x1080
    on 2 cores, docs/FAST_MODEL_STUDY.md)."""
    if priority == "idle":
        cv2.setNumThreads(1)
    return BackgroundThread("depth_prepare", priority)


class FinishThread(Generic[T]):
    """Finishes started frames on a :class:`~depth_node.runtime.background.BackgroundThread`, in
    order, while the caller runs the network on the next.

    Why: ONNX Runtime's threads leave gaps in their work (layers too small to split, the hand-over
    between them), and the depth image, cloud and messages of frame N fill them while the network
    runs on frame N+1. At ``priority`` "normal" (the default), not "idle": at idle priority frame N
    would wait for the gaps in frame N+1's network: 10-17 ms more latency on a saturated 2-core
    machine, for 0.01-0.02 more frame rate (docs/FAST_MODEL_STUDY.md).

    ``deliver(tag, outputs)`` gets each frame's :meth:`FramePath.finish` result (or drop) on this
    thread; an exception from it goes to ``on_error(tag, error)``. One frame at most waits here:
    :meth:`submit` first waits for the frame before.
    """

    def __init__(
        self,
        frame_path: FramePath,
        deliver: Callable[[T, FrameOutputs | FrameDrop], None],
        on_error: Callable[[T, Exception], None],
        name: str = "depth_finish",
        priority: str = "normal",
    ) -> None:
        self._frame_path = frame_path
        self._deliver = deliver
        self._on_error = on_error
        self._thread = BackgroundThread(name, priority)
        self._last: Future[None] | None = None

    def submit(self, frame: StartedFrame, cloud: bool, tag: T) -> None:
        """Finish ``frame`` (building its cloud where ``cloud``) and deliver it with ``tag``."""
        self.wait()
        self._last = self._thread.submit(self._finish, frame, cloud, tag)

    def _finish(self, frame: StartedFrame, cloud: bool, tag: T) -> None:
        try:
            self._deliver(tag, self._frame_path.finish(frame, cloud))
        except Exception as error:  # reported by on_error: a failed publish must not stop the thread
            self._on_error(tag, error)

    def wait(self) -> None:
        """Until the frame submitted last has been delivered (an exception from on_error raised here)."""
        last, self._last = self._last, None
        if last is not None:
            last.result()

    def close(self) -> None:
        """Deliver the frame still in progress, then end the thread."""
        self.wait()
        self._thread.close()
