"""Camera frame -> metric depth image: crop, resize, infer, scale, mask, resize back.

Three steps, so that a node can overlap them across frames: :meth:`DepthPipeline.prepare` (crop,
resize, normalise: no state between frames), :meth:`~DepthPipeline.infer` (the network, in camera
order) and :meth:`~DepthPipeline.finish` (scale, mask, resize back). Each frame's network input is its
own array: the network reads it while the next frame is prepared.

A two-frame model (``ModelInfo.frames == 2``) also gets the previous frame's network input, kept
after its own network ran (no copy). Where there is no usable previous frame (the first one, after
:meth:`DepthPipeline.reset`, after the camera image changed size) the current frame is fed twice;
each result says which it was (:data:`FRAME_MODES`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Protocol

import cv2
import numpy as np

from depth_node.geometry import (
    box_halvings,
    box_shrink,
    crop_image,
    crop_intrinsics,
    resize_area,
    scale_intrinsics,
)
from depth_node.runtime.errors import ImageDataError
from depth_node.runtime.estimator import ModelInfo
from depth_node.runtime.scale import GroundPlaneScale

LOG = logging.getLogger(__name__)

OUTPUT_RESOLUTIONS = ("auto", "camera", "model")
# output_resolution auto: camera resolution while the camera image has at most this many times the
# network's pixels (640x192 for a 320x96 model: the upsampling and packing cost little); above it,
# the camera image binned by the input shrink's exact box steps.
AUTO_CAMERA_PIXELS = 4
SCALE_MODES = ("auto", "model", "fixed", "camera_height")
_INTERPOLATIONS = {"linear": cv2.INTER_LINEAR, "nearest": cv2.INTER_NEAREST}
# How a frame was fed to the network: "single" (a one-frame model), "first" (a two-frame model given
# the current frame twice: no usable previous one), "two" (current and previous frame).
FRAME_MODES = ("single", "first", "two")


class Estimator(Protocol):
    """What the pipeline needs from :class:`depth_node.runtime.estimator.DepthEstimator`."""

    info: ModelInfo

    def infer(self, batch: np.ndarray, prev: np.ndarray | None = None) -> np.ndarray: ...


@dataclass
class PipelineConfig:
    """How camera frames become depth images.

    output_resolution: "camera" (the camera image's, or the crop's, size), "model" (the network's) or
        "auto": the camera's size up to 4x the network's pixels, above it the camera image binned by
        the input shrink's exact box steps (:func:`~depth_node.geometry.box_shrink`: 1920x1080 ->
        480x270 and 1242x375 -> 414x125 for a 320x96 network), square pixels aligned with camera
        blocks. Why: depth upsampled from the network holds no more than the network's pixels, and
        upsampling, range-checking and packing 2 million of them cost a 1080p camera 3.4 ms a frame,
        an eighth of a 320x96 model's inference, against 0.8 ms binned (docs/INTERFACES.md).
    scale_mode: "model" (the model's metric_scale), "fixed" (``fixed_scale``), "camera_height"
        (online ground-plane recovery from ``camera_height`` metres), "auto" (the model's metric
        scale when the model is metric, else camera height when given, else the model's scale).
    crop: (left, top, width, height) in camera pixels, applied before resizing to the network.
    upsample: "linear" (default: what Monodepth2's evaluation does to predictions; smooth surfaces,
        but points interpolated across depth edges) or "nearest" (no "flying pixels" between a car
        and the road behind it, blocky surfaces).
    reduced_decode: a JPEG may be decoded at 1/2, 1/4 or 1/8 of its size where the input shrink
        halves it that far anyway (:meth:`DepthPipeline.input_reduction`): libjpeg's scaled inverse
        DCT instead of the full decode and the box halvings, half the decode time at 1080p. Training
        saw the full decode: depth differs by a mean 0.3% (docs/INTERFACES.md).
    """

    output_resolution: str = "auto"
    scale_mode: str = "auto"
    fixed_scale: float | None = None
    camera_height: float | None = None
    crop: tuple[int, int, int, int] | None = None
    upsample: str = "linear"
    scale_window: int = 15
    reduced_decode: bool = True

    def __post_init__(self) -> None:
        if self.output_resolution not in OUTPUT_RESOLUTIONS:
            raise ValueError(
                f"output_resolution must be one of {OUTPUT_RESOLUTIONS}, got {self.output_resolution!r}"
            )
        if self.scale_mode not in SCALE_MODES:
            raise ValueError(f"scale_mode must be one of {SCALE_MODES}, got {self.scale_mode!r}")
        if self.upsample not in _INTERPOLATIONS:
            raise ValueError(f"upsample must be one of {tuple(_INTERPOLATIONS)}, got {self.upsample!r}")
        if self.scale_mode == "fixed" and not (self.fixed_scale and self.fixed_scale > 0):
            raise ValueError("scale_mode 'fixed' needs a positive fixed_scale")
        if self.scale_mode == "camera_height" and not (self.camera_height and self.camera_height > 0):
            raise ValueError("scale_mode 'camera_height' needs a positive camera_height (metres)")
        if self.crop is not None:
            self.crop = tuple(int(c) for c in self.crop)  # type: ignore[assignment]
            if len(self.crop) != 4 or self.crop[0] < 0 or self.crop[1] < 0 or min(self.crop[2:]) <= 0:
                raise ValueError(
                    f"crop must be (left, top, width, height) with positive size, got {self.crop}"
                )


@dataclass
class DepthResult:
    """One frame's depth. ``depth``: float32 metres, NaN = invalid, at the output resolution; ``K``:
    3x3 intrinsics of ``depth``; ``scale``: model units -> metres used for this frame; ``timings``:
    seconds per stage; ``input_size``: (w, h) of the camera image; ``crop``: the crop applied;
    ``model_size``: (w, h) of the network's output; ``colour``: the (h, w, 3) uint8 RGB image on the
    grid of ``depth`` (the cropped camera image, or the network's input image at model resolution),
    so the cloud takes its colour without resizing the camera image a second time; ``frame_mode``:
    one of :data:`FRAME_MODES`."""

    depth: np.ndarray
    K: np.ndarray
    scale: float
    timings: dict[str, float] = field(default_factory=dict)
    input_size: tuple[int, int] | None = None
    crop: tuple[int, int, int, int] | None = None
    model_size: tuple[int, int] | None = None
    colour: np.ndarray | None = None
    frame_mode: str = "single"


@dataclass
class PreparedInput:
    """One frame between :meth:`DepthPipeline.prepare` and :meth:`DepthPipeline.infer`:
    ``network_input``, the [1,3,h,w] float32 RGB in [0,1] (this frame's own array); ``K``, the
    intrinsics of the (cropped) camera image of ``source_size`` (w, h); ``colour``, the RGB image on
    the output grid (its size is the depth image's); ``input_size``, the camera image's (w, h). The
    rest as in :class:`DepthResult`."""

    network_input: np.ndarray
    K: np.ndarray
    source_size: tuple[int, int]
    colour: np.ndarray
    input_size: tuple[int, int]
    crop: tuple[int, int, int, int] | None
    timings: dict[str, float]


@dataclass
class NetworkOutput:
    """One frame between :meth:`DepthPipeline.infer` and :meth:`DepthPipeline.finish`: ``raw``, the
    network's (h, w) depth in model units; ``prepared``, what went in; ``reset``: the scale smoothing
    starts afresh here. The rest as in :class:`DepthResult`."""

    raw: np.ndarray
    prepared: PreparedInput
    frame_mode: str
    reset: bool
    timings: dict[str, float]


class DepthPipeline:
    """Runs an estimator on RGB frames and turns its output into metric depth images."""

    def __init__(self, estimator: Estimator, config: PipelineConfig | None = None) -> None:
        self.estimator = estimator
        self.config = config or PipelineConfig()
        self.info = estimator.info
        self.model_size = (self.info.input_width, self.info.input_height)
        self.scale_mode = self._resolve_scale_mode()
        self.ground: GroundPlaneScale | None = None
        if self.scale_mode == "camera_height":
            # Until the first good ground fit, fall back to the model's own scale.
            self.ground = GroundPlaneScale(
                self.config.camera_height,
                window=self.config.scale_window,
                initial_scale=self.info.metric_scale,
            )
        # Reused by prepare: the resized image.
        width, height = self.model_size
        self._resized = np.empty((height, width, 3), dtype=np.uint8)
        # Two-frame models: the previous frame's network input and the camera size it came from
        # (None: no usable previous frame).
        self._prev: np.ndarray | None = None
        self._prev_size: tuple[int, int] | None = None

    def _resolve_scale_mode(self) -> str:
        mode = self.config.scale_mode
        if mode != "auto":
            return mode
        if self.info.scale_is_metric:
            return "model"
        if self.config.camera_height:
            return "camera_height"
        LOG.warning(
            "model %s is not metric and no camera_height is set: depth uses the model's metric_scale %.3g",
            self.info.name,
            self.info.metric_scale,
        )
        return "model"

    def reset(self) -> None:
        """Forget the smoothed scale and the previous frame (call between drives / bags)."""
        if self.ground is not None:
            self.ground.reset()
        self._prev = None

    def _check_inputs(self, rgb: np.ndarray, K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            got = f"{rgb.shape} {rgb.dtype}" if isinstance(rgb, np.ndarray) else type(rgb).__name__
            raise ImageDataError(f"rgb image must be (H, W, 3) uint8, got {got}")
        K = np.asarray(K, dtype=np.float64)
        if K.shape != (3, 3) or not np.isfinite(K).all() or K[0, 0] <= 0 or K[1, 1] <= 0:
            raise ImageDataError(f"K must be a finite 3x3 matrix with fx, fy > 0, got {K.tolist()}")
        return rgb, K

    def input_reduction(self, width: int, height: int) -> int:
        """By how much (1, 2, 4 or 8) a ``width`` x ``height`` camera image may come decoded smaller
        (a JPEG's reduced decode, :func:`~depth_node.runtime.conversions.to_colour8`) for the same
        output grid: the input shrink's first 2x2 halvings, where the depth image is binned or at model
        size, and dividing the crop. Not for a depth image at camera size."""
        crop = self.config.crop
        crop_w, crop_h = (crop[2], crop[3]) if crop is not None else (width, height)
        if not self.config.reduced_decode or self._output_at_camera_size(crop_w * crop_h):
            return 1
        reduction = 2 ** min(box_halvings(crop_w, crop_h, self.model_size), 3)
        while any(side % reduction for side in (width, height, *(crop or ()))):
            reduction //= 2
        return reduction

    def process(self, rgb: np.ndarray, K: np.ndarray, bgr: bool = False, reduction: int = 1) -> DepthResult:
        """RGB (H, W, 3) uint8 + its 3x3 K -> DepthResult (metric depth, NaN = invalid).

        ``bgr``: the image's channels are in BGR order (:func:`~depth_node.runtime.conversions.to_colour8`);
        they are swapped after the first shrink, on the fewest pixels. The result is the same.
        ``reduction``: ``rgb`` is the camera image decoded at 1/reduction of its size, as
        :meth:`input_reduction` allows; ``K`` and the crop stay the camera's.
        """
        return self.finish(self.infer(self.prepare(rgb, K, bgr, reduction)))

    def prepare(self, rgb: np.ndarray, K: np.ndarray, bgr: bool = False, reduction: int = 1) -> PreparedInput:
        """:meth:`process` up to the network: crop, the output grid's image, resize, normalise.

        Keeps no state between frames, so frame N+1 may be prepared on another thread while the network
        runs frame N (:meth:`infer`); calls to ``prepare`` itself must not overlap (a reused buffer).
        """
        t0 = time.perf_counter()
        rgb, K = self._check_inputs(rgb, K)
        height, width = rgb.shape[:2]
        camera_size = (width * reduction, height * reduction)
        crop = self.config.crop
        if reduction != 1:
            K = scale_intrinsics(K, camera_size, (width, height))
        if crop is not None:
            left, top, crop_w, crop_h = (side // reduction for side in crop)
            if left + crop_w > width or top + crop_h > height:
                raise ImageDataError(f"crop {crop} does not fit the {camera_size[0]}x{camera_size[1]} image")
            rgb = crop_image(rgb, (left, top, crop_w, crop_h))
            K = crop_intrinsics(K, left, top)
        source_size = (rgb.shape[1], rgb.shape[0])
        # The output grid's image: the camera image, the network's input (None here) or the camera
        # image binned, which is also the input shrink's first steps (made once, used twice).
        grid_image = self._output_grid_image(rgb, reduction)
        if bgr and grid_image is not None:
            grid_image = cv2.cvtColor(grid_image, cv2.COLOR_BGR2RGB)
        # INTER_AREA, as in training (INTERFACES.md); into a reused buffer, then HWC uint8 -> NCHW [0,1]
        # in a new array: the network (and a two-frame model's next frame) reads it after this returns.
        resize_area(rgb if grid_image is None else grid_image, self.model_size, dst=self._resized)
        if bgr and grid_image is None:
            cv2.cvtColor(self._resized, cv2.COLOR_BGR2RGB, dst=self._resized)
        network_input = np.empty((1, 3, self.model_size[1], self.model_size[0]), dtype=np.float32)
        np.multiply(self._resized.transpose(2, 0, 1), np.float32(1.0 / 255.0), out=network_input[0])
        # A copy: the resized image is a buffer the next frame's prepare overwrites.
        colour = self._resized.copy() if grid_image is None else grid_image
        return PreparedInput(
            network_input=network_input,
            K=K,
            source_size=source_size,
            colour=colour,
            input_size=camera_size,
            crop=crop,
            timings={"preprocess": time.perf_counter() - t0},
        )

    def infer(self, prepared: PreparedInput, reset: bool = False) -> NetworkOutput:
        """The network on a frame from :meth:`prepare`. Frames must come in camera order: a two-frame
        model also gets the frame before. ``reset``: the temporal state starts afresh with this frame
        (the previous frame here, the scale smoothing in :meth:`finish`, so that a finish still running
        for the frame before is not disturbed).

        :meth:`finish` of one frame may run on another thread while ``infer`` runs for the next:
        nothing :meth:`finish` reads is written here after this returns.
        """
        t1 = time.perf_counter()
        if reset:
            self._prev = None
        image = prepared.network_input
        if self.info.frames == 1:
            frame_mode = "single"
            raw = self.estimator.infer(image)[0, 0]
        else:
            usable = self._prev is not None and self._prev_size == prepared.input_size
            frame_mode = "two" if usable else "first"
            raw = self.estimator.infer(image, self._prev if usable else image)[0, 0]
            self._prev, self._prev_size = image, prepared.input_size
        return NetworkOutput(
            raw=raw,
            prepared=prepared,
            frame_mode=frame_mode,
            reset=reset,
            timings={**prepared.timings, "inference": time.perf_counter() - t1},
        )

    def finish(self, out: NetworkOutput) -> DepthResult:
        """The network's output of :meth:`infer` -> metric depth on the output grid."""
        t2 = time.perf_counter()
        if out.reset and self.ground is not None:
            self.ground.reset()
        raw, prepared = out.raw, out.prepared
        K_model = scale_intrinsics(prepared.K, prepared.source_size, self.model_size)
        scale = self._frame_scale(raw, K_model)
        t3 = time.perf_counter()

        # Mask at network resolution (4x fewer pixels than the camera image), in model units, then
        # scale and resize. NaN spreads to the interpolated neighbours of invalid pixels, which is the
        # conservative choice: no depth is invented next to an invalid one.
        valid = (raw >= self.info.min_depth) & (raw <= self.info.max_depth)  # False for NaN
        depth = np.multiply(raw, np.float32(scale), dtype=np.float32)
        depth[~valid] = np.nan
        output_size = (prepared.colour.shape[1], prepared.colour.shape[0])
        if output_size != self.model_size:
            depth = cv2.resize(depth, output_size, interpolation=_INTERPOLATIONS[self.config.upsample])
            K_out = scale_intrinsics(prepared.K, prepared.source_size, output_size)
        else:
            K_out = K_model
        t4 = time.perf_counter()
        timings = {**out.timings, "postprocess": t4 - t3, "scale": t3 - t2}
        return DepthResult(
            depth=depth,
            K=K_out,
            scale=scale,
            timings=timings,
            input_size=prepared.input_size,
            crop=prepared.crop,
            model_size=self.model_size,
            colour=prepared.colour,
            frame_mode=out.frame_mode,
        )

    def _output_grid_image(self, rgb: np.ndarray, reduction: int) -> np.ndarray | None:
        """The RGB image on the depth image's grid (see :class:`PipelineConfig`), None for "model";
        ``rgb`` is the (cropped) camera image, decoded at 1/reduction of its size."""
        if self.config.output_resolution == "model":
            return None
        if self._output_at_camera_size(rgb.shape[0] * rgb.shape[1] * reduction**2):
            return rgb
        return box_shrink(rgb, self.model_size)

    def _output_at_camera_size(self, camera_pixels: int) -> bool:
        """Whether the depth image has the (cropped) camera image's size, for one of ``camera_pixels``."""
        resolution = self.config.output_resolution
        model_pixels = self.model_size[0] * self.model_size[1]
        return resolution == "camera" or (
            resolution == "auto" and camera_pixels <= AUTO_CAMERA_PIXELS * model_pixels
        )

    def _frame_scale(self, raw: np.ndarray, K_model: np.ndarray) -> float:
        mode = self.scale_mode
        if mode == "fixed":
            return float(self.config.fixed_scale)  # type: ignore[arg-type]
        if mode == "camera_height":
            assert self.ground is not None
            # Ground-plane fit in model units; out-of-range depth is not trusted for the fit either.
            in_range = np.where((raw >= self.info.min_depth) & (raw <= self.info.max_depth), raw, np.nan)
            return self.ground.update(in_range, K_model)
        return float(self.info.metric_scale)
