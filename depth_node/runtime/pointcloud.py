"""Depth image -> sensor_msgs/PointCloud2, vectorised (no per-point Python).

Points follow depth_image_proc's pinhole formula, x = (u - cx) z / fx, y = (v - cy) z / fy, z = depth,
via :func:`depth_node.geometry.depth_to_points`. :func:`cloud_intrinsics` picks fx, fy, cx, cy from a
CameraInfo the way depth_image_proc does: from the rectified projection matrix ``P`` when it is set
(nonzero), from ``K`` otherwise.

A cloud is held as a float32 array whose last axis is x, y, z (+ rgb packed as float32): (h, w, C) for
an organized cloud, (N, C) for an unorganized one. That array's bytes are exactly the PointCloud2
``data`` (little-endian, point_step = 4 * C), so building the message is a view, not a copy loop.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from depth_node.geometry import depth_to_points
from depth_node.runtime.conversions import uint8_view
from depth_node.runtime.errors import BadInputError, ImageDataError

if TYPE_CHECKING:
    from depth_node.runtime.message_types import MessageTypes

_FLOAT32 = 7  # sensor_msgs/PointField.FLOAT32
_HOST_BIGENDIAN = sys.byteorder == "big"


def cloud_intrinsics(camera_info: Any) -> tuple[float, float, float, float]:
    """fx, fy, cx, cy of a CameraInfo: from ``P`` when set (nonzero), else ``K`` (depth_image_proc)."""
    P = np.asarray(camera_info.p, dtype=np.float64).reshape(3, 4)
    K = np.asarray(camera_info.k, dtype=np.float64).reshape(3, 3)
    M = P if P[0, 0] != 0.0 and P[1, 1] != 0.0 else K
    return float(M[0, 0]), float(M[1, 1]), float(M[0, 2]), float(M[1, 2])


def pack_rgb(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W) float32 whose bits are uint32 0x00RRGGBB (PCL / rviz ``rgb``)."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ImageDataError(f"rgb image must be (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
    if _HOST_BIGENDIAN:
        packed = np.zeros(rgb.shape[:2] + (4,), dtype=np.uint8)
        packed[..., 1:] = rgb
        return packed.view(np.float32)[..., 0]
    # Little-endian uint32 0x00RRGGBB is the byte sequence B, G, R, 0: OpenCV's BGRA with alpha cleared
    # (one C pass instead of NumPy's strided channel shuffle).
    bgra = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGRA)
    words = bgra.view(np.uint32)[..., 0]
    words &= np.uint32(0x00FFFFFF)
    return words.view(np.float32)


def auto_stride(image_size: tuple[int, int], model_size: tuple[int, int]) -> int:
    """The cloud stride of ``points_stride`` 0 ("auto") for a depth image of ``image_size`` (w, h)
    made by a model of ``model_size`` (w, h): the stride whose ceil(w/s) * ceil(h/s) points come
    nearest the model's pixel count, by ratio (1 for an image no larger than the model).

    Why: a depth image upsampled from the model holds no more than the model's pixels; a cloud of
    every camera pixel repeats them (2 million points, 33 MB and 28 ms a frame at 1920x1080), and
    one of 4x the model's pixels (a 640x192 model's 1242x375 depth image) costs 4x to build and send.
    """
    width, height = int(image_size[0]), int(image_size[1])
    budget = max(int(model_size[0]) * int(model_size[1]), 1)

    def points(stride: int) -> int:
        return -(-width // stride) * -(-height // stride)

    # ceil(w/s) * ceil(h/s) >= w*h / s^2: every stride up to sqrt(w*h / budget) keeps at least the
    # budget. Go up to the largest that does, then take one more where that comes nearer.
    stride = max(math.isqrt(width * height // budget), 1)
    while points(stride + 1) >= budget and stride < max(width, height):  # one point at the most
        stride += 1
    if points(stride) >= budget and points(stride) * points(stride + 1) > budget * budget:
        stride += 1  # points(s+1) / budget is nearer 1 than points(s) / budget
    return stride


# Above this many pixels the distance factor is not kept between frames (8000x8000: 256 MB).
_FACTOR_CACHE_MAX_PIXELS = 4096 * 2160


@lru_cache(maxsize=2)  # the depth image's and a strided cloud's, for one camera
def _cached_factor(height: int, width: int, fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    factor = distance_factor(height, width, fx, fy, cx, cy)
    factor.flags.writeable = False
    return factor


def distance_factor(height: int, width: int, fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    across = np.square((np.arange(width, dtype=np.float32) - np.float32(cx)) / np.float32(fx))
    down = np.square((np.arange(height, dtype=np.float32) - np.float32(cy)) / np.float32(fy))
    down += np.float32(1.0)
    return down[:, None] + across[None, :]


def squared_distance(depth: np.ndarray, fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    """Squared Euclidean distance from the camera centre of each pixel's point (float32, NaN stays NaN).

    |p|^2 = z^2 (((u - cx)/fx)^2 + ((v - cy)/fy)^2 + 1): the factor depends only on the camera, so it
    is computed once per camera and image size (the per-frame cost is two multiplications a pixel).
    """
    h, w = depth.shape
    if h * w <= _FACTOR_CACHE_MAX_PIXELS:
        factor = _cached_factor(h, w, float(fx), float(fy), float(cx), float(cy))
    else:
        factor = distance_factor(h, w, fx, fy, cx, cy)
    distance = np.square(depth, dtype=np.float32)
    distance *= factor
    return distance


def depth_to_cloud(
    depth: np.ndarray,
    fx: float,
    fy: float,
    cx: float,
    cy: float,
    stride: int = 1,
    min_range: float = 0.0,
    max_range: float = float("inf"),
    organized: bool = True,
    rgb: np.ndarray | None = None,
) -> np.ndarray:
    """Back-project a depth image (metres, NaN = invalid) into a cloud array.

    ``stride`` keeps every stride-th row and column (pixel indices stay those of the full image).
    ``min_range``/``max_range`` bound the Euclidean distance from the camera centre. A pixel without
    depth (NaN, +-inf, <= 0: REP 118) is no point. Organized: (ceil(H/stride), ceil(W/stride), C) with
    NaN for pixels without depth or out of range; unorganized: (N, C) with only the valid points.
    C = 3 (x, y, z) or 4 with ``rgb`` (an (H, W, 3) uint8 image at the depth image's size) packed in
    the last column. Raises ImageDataError for an empty or mismatched image, BadInputError for
    intrinsics that are not finite with fx, fy > 0.
    """
    depth = np.asarray(depth, dtype=np.float32)
    if depth.ndim != 2 or depth.size == 0:
        raise ImageDataError(f"depth image must be 2-D (H, W) and not empty, got shape {depth.shape}")
    if rgb is not None and np.shape(rgb)[:2] != depth.shape:
        raise ImageDataError(f"rgb image {np.shape(rgb)[:2]} does not match the depth image {depth.shape}")
    if not (fx > 0 and fy > 0 and np.isfinite([fx, fy, cx, cy]).all()):
        raise BadInputError(
            f"cloud intrinsics must be finite with fx, fy > 0, got fx={fx:g}, fy={fy:g}, cx={cx:g}, cy={cy:g}"
        )
    stride = int(stride)
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    if stride > 1:
        depth = depth[::stride, ::stride]
        # Pixel (u', v') of the subsampled image is pixel (s u', s v') of the full one, hence the
        # intrinsics of a 1/s image: x = (s u' - cx) z / fx = (u' - cx/s) z / (fx/s).
        fx, fy, cx, cy = fx / stride, fy / stride, cx / stride, cy / stride
    keep = (depth > 0.0) & (depth < np.inf)  # False for NaN too
    if min_range > 0.0 or np.isfinite(max_range):
        distance = squared_distance(depth, fx, fy, cx, cy)
        keep &= (distance >= np.float32(min_range) ** 2) & (distance <= np.float32(max_range) ** 2)
    # Failing pixels become NaN. NaN depth back-projects to NaN by itself, so the depth is copied only
    # when some other pixel fails (a range test, or depth <= 0 / inf, rare in a model's output).
    failing = keep.size - np.count_nonzero(keep)
    if failing and failing != np.count_nonzero(np.isnan(depth)):
        depth = np.where(keep, depth, np.float32(np.nan))
    # x, y, z (and rgb) are written straight into the cloud: its bytes are the message's data.
    cloud = np.empty(depth.shape + (3 if rgb is None else 4,), dtype=np.float32)
    depth_to_points(depth, fx, fy, cx, cy, out=cloud)  # NaN stays NaN
    if rgb is not None:
        # Only the kept pixels: whole kept rows first (a copy of 3-byte pixels one by one costs 5x
        # more), then the kept columns of the packed 4-byte words.
        cloud[..., 3] = pack_rgb(np.ascontiguousarray(np.asarray(rgb)[::stride]))[:, ::stride]
    if organized:
        return cloud
    # np.compress copies whole rows, several times faster than boolean indexing of a 3-D array.
    return np.compress(keep.reshape(-1), cloud.reshape(-1, cloud.shape[-1]), axis=0)


def point_fields(types: MessageTypes, rgb: bool) -> list[Any]:
    """PointField list for x, y, z (+ rgb) float32."""
    names = ("x", "y", "z", "rgb") if rgb else ("x", "y", "z")
    return [
        types.PointField(name=name, offset=4 * i, datatype=_FLOAT32, count=1) for i, name in enumerate(names)
    ]


def make_pointcloud2(cloud: np.ndarray, header: Any, types: MessageTypes) -> Any:
    """Cloud array from :func:`depth_to_cloud` -> PointCloud2 (organized when ``cloud`` is 3-D)."""
    cloud = np.ascontiguousarray(cloud, dtype=np.float32)
    if cloud.ndim == 3:
        height, width, channels = cloud.shape
        is_dense = False  # organized clouds keep NaN for invalid pixels
    elif cloud.ndim == 2:
        height, (width, channels) = 1, cloud.shape
        is_dense = bool(np.isfinite(cloud[:, :3]).all())
    else:
        raise ImageDataError(f"cloud array must be (h, w, C) or (N, C), got shape {cloud.shape}")
    if channels not in (3, 4):
        raise ImageDataError(f"cloud array must have 3 (xyz) or 4 (xyz+rgb) channels, got {channels}")
    point_step = 4 * channels
    return types.PointCloud2(
        header=header,
        height=height,
        width=width,
        fields=point_fields(types, rgb=channels == 4),
        is_bigendian=_HOST_BIGENDIAN,
        point_step=point_step,
        row_step=point_step * width,
        data=types.uint8_array(cloud.reshape(-1).view(np.uint8)),
        is_dense=is_dense,
    )


def depth_to_pointcloud2(
    depth: np.ndarray,
    fx: float,
    fy: float,
    cx: float,
    cy: float,
    header: Any,
    types: MessageTypes,
    stride: int = 1,
    min_range: float = 0.0,
    max_range: float = float("inf"),
    organized: bool = True,
    rgb: np.ndarray | None = None,
) -> Any:
    """:func:`depth_to_cloud` followed by :func:`make_pointcloud2`."""
    cloud = depth_to_cloud(depth, fx, fy, cx, cy, stride, min_range, max_range, organized, rgb)
    return make_pointcloud2(cloud, header, types)


_POINTFIELD_DTYPES = {1: "i1", 2: "u1", 3: "i2", 4: "u2", 5: "i4", 6: "u4", 7: "f4", 8: "f8"}


def read_fields(msg: Any, names: Sequence[str]) -> np.ndarray:
    """Named fields of any PointCloud2 (LiDAR layouts with intensity, ring, ... included).

    Returns (height, width, len(names)) in the fields' own precision (float32 for ours), honouring
    offsets, ``point_step``, ``row_step`` padding and ``is_bigendian``; ``data`` may be any buffer
    (numpy, array.array, bytes). BadInputError names what is missing, unknown or of the wrong size.
    """
    fields = {f.name: f for f in msg.fields}
    missing = [n for n in names if n not in fields]
    if missing:
        raise BadInputError(
            f"PointCloud2 has no {', '.join(missing)} field(s) (fields: {', '.join(fields) or 'none'})"
        )
    unknown = [n for n in names if fields[n].datatype not in _POINTFIELD_DTYPES]
    if unknown:
        raise BadInputError(f"PointCloud2 field(s) {', '.join(unknown)} have an unknown datatype")
    height, width = int(msg.height), int(msg.width)
    point_step, row_step = int(msg.point_step), int(msg.row_step)
    sizes = {n: np.dtype(_POINTFIELD_DTYPES[fields[n].datatype]).itemsize for n in names}
    beyond = [n for n in names if fields[n].offset + sizes[n] > point_step]
    if beyond:
        raise BadInputError(f"PointCloud2 field(s) {', '.join(beyond)} run past point_step {point_step}")
    data = uint8_view(msg.data)
    # sensor_msgs/PointCloud2: data holds exactly row_step * height bytes (as Image's step * height).
    if row_step < point_step * width or data.size != row_step * height:
        raise BadInputError(
            f"PointCloud2 data has {data.size} bytes, expected row_step*height = {row_step}*{height} "
            f"with row_step >= point_step*width = {point_step}*{width}"
        )
    order = ">" if msg.is_bigendian else "<"
    dtype = np.dtype(
        {
            "names": list(names),
            "formats": [order + _POINTFIELD_DTYPES[fields[n].datatype] for n in names],
            "offsets": [fields[n].offset for n in names],
            "itemsize": point_step,
        }
    )
    rows = data.reshape(height, row_step)[:, : point_step * width]
    points = np.ascontiguousarray(rows).view(dtype).reshape(height, width)
    return np.stack([points[n] for n in names], axis=-1)


def pointcloud2_to_array(msg: Any) -> np.ndarray:
    """PointCloud2 with float32 x, y, z (+ rgb) fields -> (height, width, C) float32 (tests, benchmarks)."""
    names = [field.name for field in msg.fields]
    if names not in (["x", "y", "z"], ["x", "y", "z", "rgb"]) or msg.point_step != 4 * len(names):
        raise ImageDataError(f"unsupported PointCloud2 layout: fields {names}, point_step {msg.point_step}")
    return read_fields(msg, names).astype(np.float32)


def cloud_xyz(msg: Any) -> np.ndarray:
    """Finite x, y, z of any PointCloud2 -> (N, 3) float64 (LiDAR ground truth)."""
    xyz = read_fields(msg, ("x", "y", "z")).reshape(-1, 3).astype(np.float64)
    return xyz[np.isfinite(xyz).all(axis=1)]
