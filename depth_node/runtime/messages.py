"""The one place where output messages are built: depth image, its CameraInfo, the point cloud.

The frame path (:mod:`depth_node.runtime.frame`) calls :func:`build_outputs` for the node and the
replay alike, so what the car publishes and what the replay evaluates are the same construction.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from depth_node.geometry import crop_image, crop_intrinsics, resize_area, scale_intrinsics
from depth_node.runtime.conversions import depth_to_image_msg
from depth_node.runtime.errors import ImageDataError
from depth_node.runtime.message_types import MessageTypes
from depth_node.runtime.pointcloud import (
    auto_stride,
    cloud_intrinsics,
    depth_to_cloud,
    distance_factor,
    make_pointcloud2,
)

if TYPE_CHECKING:
    from depth_node.runtime.pipeline import DepthResult


def _empty_roi(types: MessageTypes) -> Any:
    return types.RegionOfInterest(x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)


def scale_camera_info(
    camera_info: Any,
    width: int,
    height: int,
    types: MessageTypes,
    header: Any = None,
    crop: tuple[int, int, int, int] | None = None,
    image_size: tuple[int, int] | None = None,
) -> Any:
    """CameraInfo for an image of ``width`` x ``height`` made from the camera's image.

    K and P follow with :func:`depth_node.geometry.scale_intrinsics` (and ``crop_intrinsics`` for
    a ``crop`` = (left, top, width, height) in camera pixels); D and R are unchanged (distortion is
    in normalised coordinates); binning and ROI are reset, since the new K/P describe the depth image
    itself. ``image_size`` (w, h) is the size of the image the crop refers to, when the CameraInfo's
    own width/height differ from it (or are unset).
    """
    from_size = (int(camera_info.width), int(camera_info.height))
    if image_size is None:
        image_size = from_size
    if min(image_size) <= 0:
        raise ImageDataError(f"camera_info has no usable size ({from_size[0]}x{from_size[1]})")
    K = np.asarray(camera_info.k, dtype=np.float64).reshape(3, 3)
    P = np.asarray(camera_info.p, dtype=np.float64).reshape(3, 4)
    if from_size != tuple(image_size) and min(from_size) > 0:
        K, P = scale_intrinsics(K, from_size, image_size), scale_intrinsics(P, from_size, image_size)
    size = tuple(image_size)
    if crop is not None:
        left, top, crop_w, crop_h = crop
        K, P = crop_intrinsics(K, left, top), crop_intrinsics(P, left, top)
        size = (crop_w, crop_h)
    K = scale_intrinsics(K, size, (width, height))
    P = scale_intrinsics(P, size, (width, height))
    return types.CameraInfo(
        header=camera_info.header if header is None else header,
        height=int(height),
        width=int(width),
        distortion_model=camera_info.distortion_model,
        d=types.float64_array(np.asarray(camera_info.d, dtype=np.float64)),
        k=K.reshape(-1),
        r=np.asarray(camera_info.r, dtype=np.float64).reshape(-1).copy(),
        p=P.reshape(-1),
        binning_x=0,
        binning_y=0,
        roi=_empty_roi(types),
    )


def camera_info_from_K(K: np.ndarray, width: int, height: int, header: Any, types: MessageTypes) -> Any:
    """CameraInfo of an ideal rectified pinhole camera (no distortion, P = [K | 0])."""
    K = np.asarray(K, dtype=np.float64).reshape(3, 3)
    P = np.hstack([K, np.zeros((3, 1))])
    return types.CameraInfo(
        header=header,
        height=int(height),
        width=int(width),
        distortion_model="plumb_bob",
        d=types.float64_array(np.zeros(5)),
        k=K.reshape(-1).copy(),
        r=np.eye(3).reshape(-1),
        p=P.reshape(-1),
        binning_x=0,
        binning_y=0,
        roi=_empty_roi(types),
    )


# How a depth outside [min_range, max_range] is published: "rep118", NaN for every invalid pixel, or
# "rep117", -Inf ("too close") / +Inf ("too far"), NaN then meaning only "no estimate". (Not "nan" and
# "inf": YAML and `-p name:=value` would read those as numbers.)
OUT_OF_RANGE = ("rep118", "rep117")


def apply_range(
    depth: np.ndarray,
    intrinsics: tuple[float, float, float, float],
    min_range: float,
    max_range: float,
    out_of_range: str = "rep118",
) -> np.ndarray:
    """The one validity rule of the depth image and the cloud: a pixel whose point lies nearer than
    ``min_range`` or farther than ``max_range`` metres from the camera centre is invalid (NaN, or
    -Inf / +Inf with ``out_of_range="rep117"``); so is NaN, +-Inf or <= 0. ``depth`` is changed in place.

    The distance is Euclidean, as the cloud's range limits always were, so an image pixel is valid
    exactly when its point is in the cloud.
    """
    if out_of_range not in OUT_OF_RANGE:
        raise ValueError(f"out_of_range must be one of {OUT_OF_RANGE}, got {out_of_range!r}")
    # |p| < r  <=>  z < r / sqrt(factor): per-pixel depth limits, made once per camera and range.
    nearest, farthest = range_limits(depth.shape, intrinsics, min_range, max_range)
    if out_of_range == "rep118":
        invalid = depth >= nearest  # False for NaN
        invalid &= depth <= farthest
        np.logical_not(invalid, out=invalid)
        _fill(depth, invalid, "nan")
        return depth
    with np.errstate(invalid="ignore", over="ignore"):
        no_estimate = ~((depth > 0) & (depth < np.inf))  # True for NaN
        near = depth < nearest
        far = depth > farthest
    # The no-estimate mask is written last: a pixel without depth (say -inf, whose distance is +inf)
    # is NaN whatever its distance says.
    _fill(depth, near, "-inf")
    _fill(depth, far, "inf")
    _fill(depth, no_estimate, "nan")
    return depth


def range_limits(
    shape: tuple[int, ...], intrinsics: tuple[float, float, float, float], min_range: float, max_range: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel depth limits (float32 images) of the points between ``min_range`` and ``max_range``
    metres from the camera centre; the nearest limit is above 0 and the farthest finite, so that
    ``nearest <= z <= farthest`` also rejects z <= 0, +-Inf and NaN."""
    height, width = shape
    key = (height, width, *map(float, intrinsics), float(min_range), float(max_range))
    if height * width <= _FILL_CACHE_MAX_PIXELS:
        return _cached_range_limits(*key)
    return _range_limits(*key)


@lru_cache(maxsize=2)
def _cached_range_limits(*key: float) -> tuple[np.ndarray, np.ndarray]:
    limits = _range_limits(*key)
    for image in limits:
        image.flags.writeable = False
    return limits


def _range_limits(
    height: int, width: int, fx: float, fy: float, cx: float, cy: float, min_range: float, max_range: float
) -> tuple[np.ndarray, np.ndarray]:
    inverse_norm = 1.0 / np.sqrt(distance_factor(int(height), int(width), fx, fy, cx, cy), dtype=np.float64)
    tiny, huge = np.finfo(np.float32).smallest_subnormal, np.finfo(np.float32).max
    nearest = np.maximum(min_range * inverse_norm, tiny).astype(np.float32)
    with np.errstate(over="ignore"):
        farthest = np.minimum(max_range * inverse_norm, huge).astype(np.float32)
    return nearest, farthest


_FILL_VALUES = {"nan": np.nan, "-inf": -np.inf, "inf": np.inf}
# Above this many pixels no constant image is kept between frames (8000x8000: 256 MB).
_FILL_CACHE_MAX_PIXELS = 4096 * 2160


@lru_cache(maxsize=2)
def _constant_image(height: int, width: int, value: str) -> np.ndarray:
    image = np.full((height, width), _FILL_VALUES[value], dtype=np.float32)
    image.flags.writeable = False
    return image


def _fill(depth: np.ndarray, mask: np.ndarray, value: str) -> None:
    """depth[mask] = value, in place. Why OpenCV's masked copy from a constant image: NumPy's masked
    assignment costs 4 ms on a 1920x1080 image whose mask follows object edges, the copy 1 ms."""
    if depth.dtype == np.float32 and depth.size <= _FILL_CACHE_MAX_PIXELS:
        source = _constant_image(*depth.shape, value)
        if cv2.copyTo(source, mask.view(np.uint8), depth) is depth:
            return
    np.putmask(depth, mask, np.float32(_FILL_VALUES[value]))


@dataclass
class DepthOutputs:
    """The messages published for one input frame (all with the input image's header)."""

    image: Any
    camera_info: Any
    points: Any | None = None


def build_outputs(
    result: DepthResult,
    header: Any,
    camera_info: Any | None,
    types: MessageTypes,
    cloud: bool = False,
    stride: int = 0,
    min_range: float = 0.0,
    max_range: float = float("inf"),
    organized: bool = True,
    rgb: np.ndarray | None = None,
    encoding: str = "32FC1",
    out_of_range: str = "rep118",
) -> DepthOutputs:
    """Depth image, its CameraInfo and (optionally) a PointCloud2 for one pipeline result.

    ``header`` is the input image's header (same stamp and frame_id on every output). The output
    CameraInfo is the input ``camera_info`` scaled (and cropped) to the depth image, or, when
    ``camera_info`` is None, an ideal pinhole camera built from ``result.K``. The cloud uses that
    CameraInfo's P when set, else its K (depth_image_proc's choice). ``stride`` 0 (the node's
    default) is :func:`~depth_node.runtime.pointcloud.auto_stride` of the depth image and
    ``result.model_size`` (1 for a result without one). ``rgb`` colours the cloud: ``result.colour``
    (on the depth image's grid already, nothing to resize) or the camera image, cropped and resized
    to the depth image with INTER_AREA when needed. ``min_range``, ``max_range`` and
    ``out_of_range`` are the validity rule of :func:`apply_range`, for the image and the cloud alike
    (``result.depth`` is changed in place).
    """
    depth = result.depth
    height, width = depth.shape
    if camera_info is None:
        info = camera_info_from_K(result.K, width, height, header, types)
    else:
        info = scale_camera_info(
            camera_info, width, height, types, header=header, crop=result.crop, image_size=result.input_size
        )
    fx, fy, cx, cy = cloud_intrinsics(info)
    if min_range > 0.0 or np.isfinite(max_range):
        apply_range(depth, (fx, fy, cx, cy), min_range, max_range, out_of_range)
    image = depth_to_image_msg(depth, header, types, encoding)
    points = None
    if cloud:
        if stride == 0:
            stride = auto_stride((width, height), result.model_size or (width, height))
        colour = None if rgb is None else _on_depth_grid(np.asarray(rgb), result.crop, (width, height))
        points = make_pointcloud2(
            depth_to_cloud(depth, fx, fy, cx, cy, stride, organized=organized, rgb=colour),  # range: above
            header,
            types,
        )
    return DepthOutputs(image=image, camera_info=info, points=points)


def _on_depth_grid(
    rgb: np.ndarray, crop: tuple[int, int, int, int] | None, size: tuple[int, int]
) -> np.ndarray:
    """The camera image ``rgb`` on the depth image's grid of ``size`` (w, h): itself when it is
    already there, else its crop, resized with INTER_AREA (as the network's input) if still needed."""
    if rgb.shape[:2] != size[::-1]:
        rgb = crop_image(rgb, crop)
    if rgb.shape[:2] != size[::-1]:
        rgb = resize_area(rgb, size)
    return rgb
