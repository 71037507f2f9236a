"""sensor_msgs Image / CompressedImage <-> numpy, without cv_bridge and without ROS.

Works with message classes from rclpy (``data`` is an ``array.array('B')``) and from rosbags
(``data`` is a numpy uint8 array) alike: reading goes through ``np.frombuffer``, and writing goes
through the ``uint8_array`` converter of the :class:`~depth_node.runtime.messages.MessageTypes` namespace.

Arrays returned by :func:`image_to_numpy` may be read-only views of the message's buffer (no copy
on the hot path); copy them before writing into them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from depth_node.runtime.errors import ImageDataError, ImageDecodeError, UnsupportedEncodingError

if TYPE_CHECKING:
    from depth_node.runtime.message_types import MessageTypes


# encoding -> (numpy dtype of one channel, channels). Names follow sensor_msgs/image_encodings.h.
ENCODINGS: dict[str, tuple[np.dtype, int]] = {
    "rgb8": (np.dtype(np.uint8), 3),
    "bgr8": (np.dtype(np.uint8), 3),
    "rgba8": (np.dtype(np.uint8), 4),
    "bgra8": (np.dtype(np.uint8), 4),
    "mono8": (np.dtype(np.uint8), 1),
    "mono16": (np.dtype(np.uint16), 1),
    "16UC1": (np.dtype(np.uint16), 1),
    "32FC1": (np.dtype(np.float32), 1),
}
SUPPORTED_ENCODINGS = tuple(ENCODINGS)
DEPTH_ENCODINGS = ("32FC1", "16UC1")

# cv2 colour conversions to RGB for the colour/mono encodings (None: already RGB).
_TO_RGB: dict[str, int | None] = {
    "rgb8": None,
    "bgr8": cv2.COLOR_BGR2RGB,
    "rgba8": cv2.COLOR_RGBA2RGB,
    "bgra8": cv2.COLOR_BGRA2RGB,
    "mono8": cv2.COLOR_GRAY2RGB,
    "mono16": cv2.COLOR_GRAY2RGB,
    "16UC1": cv2.COLOR_GRAY2RGB,
}
_HOST_BIGENDIAN = sys.byteorder == "big"


def _unsupported(encoding: str, supported: tuple[str, ...] = SUPPORTED_ENCODINGS) -> UnsupportedEncodingError:
    return UnsupportedEncodingError(
        f"unsupported image encoding {encoding!r}; supported: {', '.join(supported)}"
    )


def _check_size(width: int, height: int, what: str) -> None:
    # A 0-pixel image is never a frame: readers refuse it, so writers do too (what is written reads back).
    if height <= 0 or width <= 0:
        raise ImageDataError(f"{what} has empty size {width}x{height}")


def uint8_view(data: Any) -> np.ndarray:
    """A flat uint8 view of a message's ``data`` (numpy array, array.array, bytes, list): rosbags,
    rclpy and hand-built messages alike (Image, CompressedImage, PointCloud2)."""
    if isinstance(data, np.ndarray):
        return (
            data.reshape(-1).view(np.uint8) if data.dtype.itemsize == 1 else data.view(np.uint8).reshape(-1)
        )
    try:
        return np.frombuffer(data, dtype=np.uint8)
    except TypeError:  # a plain list of ints (some hand-built messages)
        return np.asarray(data, dtype=np.uint8)


def image_to_numpy(msg: Any) -> np.ndarray:
    """Image message -> (H, W) or (H, W, C) array in the encoding's dtype, native byte order.

    Honours row padding (``step`` > width * bytes per pixel, any number of bytes) and
    ``is_bigendian``. Zero-copy where the data is already in native byte order (the result may then
    be a read-only view). Raises UnsupportedEncodingError for an unknown encoding, ImageDataError for
    an empty size, a step below the row size, or data that is not exactly step * height bytes.
    """
    encoding = msg.encoding
    if encoding not in ENCODINGS:
        raise _unsupported(encoding)
    dtype, channels = ENCODINGS[encoding]
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    row_bytes = width * channels * dtype.itemsize
    _check_size(width, height, "image")
    if step < row_bytes:
        raise ImageDataError(
            f"image step {step} is smaller than width*bytes per pixel = {row_bytes} ({encoding})"
        )
    data = uint8_view(msg.data)
    # sensor_msgs/Image: data holds exactly step * height bytes. Any other length means the header
    # and the data disagree, and no reading of the bytes can be trusted (longer ones included).
    if data.size != step * height:
        raise ImageDataError(
            f"image data has {data.size} bytes, expected step*height = {step}*{height} = {step * height}"
        )
    rows = data.reshape(height, step)[:, :row_bytes]
    if dtype.itemsize > 1:
        wire = dtype.newbyteorder(">" if msg.is_bigendian else "<")
        array = rows.view(wire)
        if wire != dtype:  # swap to native only when the wire order differs
            array = array.astype(dtype)
    else:
        array = rows
    return array.reshape(height, width, channels) if channels > 1 else array


def numpy_to_image(
    array: np.ndarray,
    encoding: str,
    header: Any,
    types: MessageTypes,
    step: int | None = None,
    is_bigendian: bool = False,
) -> Any:
    """(H, W[, C]) array -> Image message of ``types``.

    ``step`` (bytes per row, >= the packed row size) pads each row; ``is_bigendian`` writes
    multi-byte data big-endian. Both exist so that messages from other machines can be reproduced.
    Raises ImageDataError for an empty array, a shape that does not fit the encoding, values the
    encoding's pixel type cannot hold exactly (no wrap-around, no truncated floats) or a short step.
    """
    if encoding not in ENCODINGS:
        raise _unsupported(encoding)
    dtype, channels = ENCODINGS[encoding]
    array = np.asarray(array)
    expected_ndim = 2 if channels == 1 else 3
    if array.ndim == 3 and channels == 1 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim != expected_ndim or (channels > 1 and array.shape[2] != channels):
        raise ImageDataError(
            f"array of shape {array.shape} does not fit encoding {encoding} ({channels} channel(s))"
        )
    height, width = array.shape[:2]
    _check_size(width, height, "image array")
    _check_values_fit(array, dtype, encoding)
    wire = dtype.newbyteorder(">" if is_bigendian else "<") if dtype.itemsize > 1 else dtype
    row_bytes = width * channels * dtype.itemsize
    step = row_bytes if step is None else int(step)
    if step < row_bytes:
        raise ImageDataError(f"step {step} is smaller than the row size {row_bytes}")
    packed = np.ascontiguousarray(array, dtype=wire).reshape(height, row_bytes // wire.itemsize)
    if step == row_bytes:
        data = packed.view(np.uint8).reshape(-1)
    else:
        padded = np.zeros((height, step), dtype=np.uint8)
        padded[:, :row_bytes] = packed.view(np.uint8)
        data = padded.reshape(-1)
    return types.Image(
        header=header,
        height=height,
        width=width,
        encoding=encoding,
        is_bigendian=int(bool(is_bigendian)),
        step=step,
        data=types.uint8_array(data),
    )


def _check_values_fit(array: np.ndarray, dtype: np.dtype, encoding: str) -> None:
    # A cast that wraps around (300 -> 44 in mono8) or truncates (0.7 -> 0) writes a different image.
    # 32FC1 takes any real numbers (rounded to float32, as depth_to_image_msg does).
    if array.dtype == dtype or (dtype.kind == "f" and array.dtype.kind in "fiub"):
        return
    if array.dtype.kind in "iub":
        limits = np.iinfo(dtype)
        low, high = array.min(), array.max()
        if low >= limits.min and high <= limits.max:
            return
        detail = f"values {low}..{high} outside {limits.min}..{limits.max}"
    else:
        detail = "convert it to integers first"
    raise ImageDataError(f"{array.dtype} array does not fit encoding {encoding} ({dtype} pixels): {detail}")


def _is_compressed(msg: Any) -> bool:
    return hasattr(msg, "format") and not hasattr(msg, "encoding")


def _compressed_is_rgb_order(fmt: str) -> bool:
    # image_transport writes "<orig>; jpeg compressed <enc>". Publishers convert colour to bgr8 before
    # encoding (OpenCV's order); only an explicit "compressed rgb8" means the bytes hold RGB order.
    _, _, compressed = fmt.partition("compressed")
    return compressed.strip().startswith("rgb")


def _check_compressed_format(fmt: str) -> None:
    lowered = fmt.lower()
    if "compresseddepth" in lowered:
        raise UnsupportedEncodingError(
            f"unsupported compressed format {fmt!r} (compressedDepth); supported: jpeg, png"
        )
    if lowered and not any(name in lowered for name in ("jpeg", "jpg", "png")):
        raise UnsupportedEncodingError(f"unsupported compressed format {fmt!r}; supported: jpeg, png")


_JPEG_START, _JPEG_END = b"\xff\xd8\xff", b"\xff\xd9"  # SOI + the next marker's FF; EOI
_PNG_START, _PNG_END = b"\x89PNG\r\n\x1a\n", b"IEND\xaeB`\x82"  # signature; IEND chunk + its fixed CRC


def _whole_file(buffer: np.ndarray, fmt: str) -> np.ndarray:
    """The JPEG/PNG file in ``buffer`` without trailing zero padding, or ImageDecodeError.

    Why: libjpeg turns a truncated JPEG into a partly grey image with only a warning on stderr (in
    some OpenCV builds), so a file that does not end as a whole file does is refused before decoding.
    Only JPEG and PNG reach the decoder (cv2.imdecode would also try BMP, TIFF, PPM, ... on any
    bytes). Zero padding after the end is allowed: some drivers send fixed-size buffers.
    """
    end = buffer.size
    if end and buffer[end - 1] == 0:
        nonzero = np.flatnonzero(buffer)
        end = int(nonzero[-1]) + 1 if nonzero.size else 0
    head, tail = buffer[:8].tobytes(), buffer[max(end - 8, 0) : end].tobytes()
    if head.startswith(_JPEG_START):
        if not tail.endswith(_JPEG_END):
            raise ImageDecodeError(
                f"JPEG image ({fmt!r}, {buffer.size} bytes) is truncated or has trailing data: "
                "it does not end with the EOI marker FF D9"
            )
    elif head.startswith(_PNG_START):
        if not tail.endswith(_PNG_END):
            raise ImageDecodeError(
                f"PNG image ({fmt!r}, {buffer.size} bytes) is truncated or has trailing data: "
                "it does not end with an IEND chunk"
            )
    else:
        raise ImageDecodeError(
            f"compressed image ({fmt!r}, {buffer.size} bytes) is neither JPEG nor PNG data "
            f"(starts with {head[:4].hex(' ') or 'nothing'})"
        )
    return buffer[:end]


def compressed_to_numpy(msg: Any, flags: int = cv2.IMREAD_UNCHANGED) -> np.ndarray:
    """CompressedImage (JPEG/PNG) -> array as cv2.imdecode returns it (BGR order for colour).

    The bytes are decoded by what they hold (JPEG or PNG), whatever the format string names.
    """
    return _imdecode(_compressed_file(msg), flags, msg.format)


def _compressed_file(msg: Any) -> np.ndarray:
    """The CompressedImage's JPEG or PNG file, checked whole (:func:`_whole_file`)."""
    _check_compressed_format(msg.format)
    buffer = uint8_view(msg.data)
    if buffer.size == 0:
        raise ImageDecodeError(f"compressed image ({msg.format!r}) has no data")
    return _whole_file(buffer, msg.format)


def _imdecode(buffer: np.ndarray, flags: int, fmt: str) -> np.ndarray:
    what = f"compressed image ({fmt!r}, {buffer.size} bytes)"
    try:
        image = cv2.imdecode(buffer, flags)
    except cv2.error as error:  # OpenCV asserts on some malformed headers instead of returning None
        raise ImageDecodeError(f"cannot decode {what}: {str(error).strip().splitlines()[-1]}") from None
    if image is None:
        raise ImageDecodeError(f"cannot decode {what}")
    return image


# Frame header (SOFn) markers, which hold the image size: C0..CF but DHT (C4), JPG (C8) and DAC (CC).
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_NO_LENGTH = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM and RSTn carry no length field
_JPEG_HEADER_BYTES = 4 * 65536  # room for a few 64 KiB APPn segments (EXIF, ICC profile) before it
_REDUCED_COLOUR = {
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8,
}


def jpeg_size(buffer: np.ndarray) -> tuple[int, int] | None:
    """(width, height) from a JPEG file's frame header, without decoding; None where ``buffer`` holds
    no JPEG with a readable one. Why by hand: OpenCV cannot read a header alone, and a reduced decode
    must know the full size first (the decoded size rounds up, so it cannot tell 1918 from 1920)."""
    data = memoryview(buffer[:_JPEG_HEADER_BYTES])  # no copy: this runs on every JPEG frame
    if data[:2] != b"\xff\xd8":
        return None
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
        elif marker in _JPEG_NO_LENGTH:
            i += 2
        elif marker in _JPEG_SOF:
            if i + 9 > len(data):
                return None
            height = int.from_bytes(data[i + 5 : i + 7], "big")
            width = int.from_bytes(data[i + 7 : i + 9], "big")
            return (width, height) if width and height else None  # height 0: set later by a DNL marker
        elif marker == 0xDA:  # start of scan: no frame header came before it
            return None
        else:
            i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    return None


def to_rgb8(msg: Any) -> np.ndarray:
    """Any colour or mono Image, or a JPEG/PNG CompressedImage -> (H, W, 3) uint8 RGB.

    16-bit mono keeps its 8 most significant bits. rgb8 input is returned without a copy (it may be
    a read-only view with padded rows).
    """
    image, bgr, _ = to_colour8(msg)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if bgr else image


def to_colour8(
    msg: Any, reduction_for: Callable[[int, int], int] | None = None
) -> tuple[np.ndarray, bool, int]:
    """:func:`to_rgb8` but for the last channel swap, and a JPEG maybe decoded smaller:
    ``(image, bgr, reduction)``.

    ``bgr``: the channels are still in BGR order (bgr8, and JPEG or PNG as OpenCV decodes them). The
    frame path swaps them after its first shrink: at 1080p, the swap at camera size costs as much as
    the shrink.
    ``reduction_for(width, height)``: for a JPEG of that size, the factor (1, 2, 4 or 8, dividing both
    sides) by which the caller can use the image decoded smaller; ``reduction`` is the one applied.
    libjpeg's scaled inverse DCT then makes each output pixel from one 2x2, 4x4 or 8x8 block of the
    full image: a 1080p JPEG decodes in half the time at a quarter of the size.
    """
    if _is_compressed(msg):
        buffer = _compressed_file(msg)
        bgr = not _compressed_is_rgb_order(msg.format)
        size = jpeg_size(buffer) if reduction_for is not None else None
        reduction = reduction_for(*size) if reduction_for is not None and size is not None else 1
        if size is None or reduction not in _REDUCED_COLOUR or size[0] % reduction or size[1] % reduction:
            return _imdecode(buffer, cv2.IMREAD_COLOR, msg.format), bgr, 1  # always 8-bit, 3 channels
        image = _imdecode(buffer, _REDUCED_COLOUR[reduction], msg.format)
        width, height = size[0] // reduction, size[1] // reduction
        if image.shape[:2] != (height, width):  # e.g. an EXIF rotation: the header's size is not the image's
            raise ImageDecodeError(
                f"JPEG ({msg.format!r}) decoded at 1/{reduction} is {image.shape[1]}x{image.shape[0]}, "
                f"not {width}x{height} as its {size[0]}x{size[1]} frame header says"
            )
        return image, bgr, reduction
    encoding = msg.encoding
    if encoding not in _TO_RGB:
        supported = tuple(_TO_RGB)
        if encoding in ENCODINGS:
            raise UnsupportedEncodingError(
                f"image encoding {encoding!r} is not a colour/mono image; supported: {', '.join(supported)}"
            )
        raise _unsupported(encoding, supported)
    array = image_to_numpy(msg)
    if array.dtype == np.uint16:
        array = (array >> 8).astype(np.uint8)
    code = _TO_RGB[encoding]
    if code == cv2.COLOR_BGR2RGB:
        return array, True, 1
    return (array if code is None else cv2.cvtColor(array, code)), False, 1


def depth_to_image_msg(depth_m: np.ndarray, header: Any, types: MessageTypes, encoding: str = "32FC1") -> Any:
    """Depth in metres (NaN = invalid) -> REP 118 Image: 32FC1 metres, or 16UC1 millimetres.

    16UC1: the nearest millimetre; invalid (NaN, +-inf, <= 0) -> 0 (16UC1 has no REP 117 +-Inf), and
    so are depths under 0.5 mm; finite depths beyond 65.535 m clip to 65535 mm. Written in the host's
    byte order with ``is_bigendian`` set accordingly (no swap on the hot path). An empty depth image is
    an ImageDataError.
    """
    depth_m = np.asarray(depth_m)
    if depth_m.ndim != 2:
        raise ImageDataError(f"depth image must be 2-D (H, W), got shape {depth_m.shape}")
    _check_size(depth_m.shape[1], depth_m.shape[0], "depth image")
    if encoding == "32FC1":
        data = np.ascontiguousarray(depth_m, dtype=np.float32)
        itemsize = 4
    elif encoding == "16UC1":
        millimetres = np.multiply(depth_m, 1000.0, dtype=np.float32)
        np.nan_to_num(millimetres, copy=False, nan=0.0, posinf=65535.0, neginf=0.0)  # float32 overflow
        millimetres[np.isinf(depth_m)] = 0.0  # REP 117's +-Inf (too far / too near): no 16UC1 value
        np.clip(millimetres, 0.0, 65535.0, out=millimetres)
        data = np.rint(millimetres, out=millimetres).astype(np.uint16)
        itemsize = 2
    else:
        raise _unsupported(encoding, DEPTH_ENCODINGS)
    height, width = data.shape
    return types.Image(
        header=header,
        height=height,
        width=width,
        encoding=encoding,
        is_bigendian=int(_HOST_BIGENDIAN),
        step=width * itemsize,
        data=types.uint8_array(data.reshape(-1).view(np.uint8)),
    )


def image_msg_to_depth(msg: Any) -> np.ndarray:
    """REP 118 depth Image (32FC1 metres or 16UC1 millimetres) -> float32 metres, NaN = invalid."""
    if msg.encoding not in DEPTH_ENCODINGS:
        raise _unsupported(msg.encoding, DEPTH_ENCODINGS)
    array = image_to_numpy(msg)
    if msg.encoding == "16UC1":
        depth = array.astype(np.float32) * np.float32(0.001)
        depth[array == 0] = np.nan
        return depth
    depth = np.array(array, dtype=np.float32)  # writable copy: the caller owns it
    depth[~np.isfinite(depth) | (depth <= 0)] = np.nan
    return depth
