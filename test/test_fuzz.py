"""Property-based fuzzing (hypothesis) of the image conversions, the point cloud and the output messages.

Each property states what must hold for *every* input a bag, a driver or a hand-built message can hold:
bad input raises a :class:`BadInputError` subclass with a one-line message (nothing else escapes), and
good input comes back exactly (bit for bit where the contract says so), checked against references
written here independently of the code under test (row-by-row byte decoding, float64 pinhole maths).

``FUZZ_EXAMPLES`` holds the number of examples of each property (the reliability benchmark copies it
into docs/RELIABILITY.md). Every property runs with ``derandomize=True`` and no example database, so
a run tests the same examples every time (CI is deterministic; a new hypothesis version may pick
others).
"""

from __future__ import annotations

import array
import dataclasses
import math
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import cv2
import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from rosbags.typesys import Stores, get_typestore

from depth_node.runtime.conversions import (
    ENCODINGS,
    SUPPORTED_ENCODINGS,
    compressed_to_numpy,
    depth_to_image_msg,
    image_msg_to_depth,
    image_to_numpy,
    numpy_to_image,
    to_rgb8,
)
from depth_node.runtime.errors import (
    BadInputError,
    ImageDataError,
    ImageDecodeError,
    UnsupportedEncodingError,
)
from depth_node.runtime.message_types import ros_float64_array, ros_uint8_array, rosbags_types
from depth_node.runtime.messages import build_outputs, camera_info_from_K
from depth_node.runtime.pipeline import DepthResult
from depth_node.runtime.pointcloud import (
    cloud_xyz,
    depth_to_cloud,
    make_pointcloud2,
    pointcloud2_to_array,
    read_fields,
)

# Examples per property (the property names are what docs/RELIABILITY.md shows). About 30 s in all on a
# shared 2-core CPU.
FUZZ_EXAMPLES = {
    "Image message -> image_to_numpy / to_rgb8 / image_msg_to_depth": 1000,
    "numpy_to_image round trip": 500,
    "numpy_to_image value range": 300,
    "depth 32FC1 round trip": 400,
    "depth 16UC1 round trip": 400,
    "CompressedImage decode": 700,
    "depth_to_cloud pinhole model and read-back": 500,
    "read_fields any layout": 500,
    "build_outputs agreement": 250,
}

TYPES = rosbags_types()
# The same classes with rclpy's array converters: data fields become array.array, as from rclpy.
RCLPY_STYLE_TYPES = dataclasses.replace(TYPES, uint8_array=ros_uint8_array, float64_array=ros_float64_array)
TYPESTORE = get_typestore(Stores.ROS2_HUMBLE)
HEADER = TYPES.Header(stamp=TYPES.Time(sec=3, nanosec=4), frame_id="camera_optical")
NAN, INF = float("nan"), float("inf")


def fuzz(name: str) -> Callable:
    return settings(
        max_examples=FUZZ_EXAMPLES[name],
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )


def outcome(function: Callable, *args: Any) -> Any:
    """``function(*args)``, or the BadInputError it raised, checked to be one non-empty line.
    Any other exception propagates and fails the property."""
    try:
        return function(*args)
    except BadInputError as error:
        text = str(error)
        assert text and "\n" not in text, f"{type(error).__name__} message is not one line: {text!r}"
        return error


def assert_bits_equal(actual: Any, expected: np.ndarray) -> None:
    """Same dtype, shape and bytes; NaN only where expected has NaN (any payload)."""
    assert isinstance(actual, np.ndarray), f"expected an array, got {actual!r}"
    assert actual.dtype == expected.dtype and actual.dtype.isnative, (actual.dtype, expected.dtype)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    if expected.dtype.kind == "f":
        nan = np.isnan(expected)
        np.testing.assert_array_equal(np.isnan(actual), nan)
        actual, expected = actual[~nan], expected[~nan]
    assert np.ascontiguousarray(actual).tobytes() == np.ascontiguousarray(expected).tobytes()


# ---------------------------------------------------------------------------------- Image messages

# Buffers a message's data field may be: rosbags (numpy), rclpy (array.array), hand-built ones.
CONTAINERS: dict[str, Callable[[bytes], Any]] = {
    "numpy": lambda raw: np.frombuffer(raw, dtype=np.uint8).copy(),
    "array.array": lambda raw: array.array("B", raw),
    "bytes": bytes,
    "bytearray": bytearray,
    "list": list,
}
UNKNOWN_ENCODINGS = ("bayer_rggb8", "8UC3", "32FC3", "64FC1", "yuv422", "RGB8", "mono16 ", "")
RGB_REFERENCE: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "rgb8": lambda a: a,
    "bgr8": lambda a: a[..., ::-1],
    "rgba8": lambda a: a[..., :3],
    "bgra8": lambda a: a[..., 2::-1],
    "mono8": lambda a: np.repeat(a[..., None], 3, axis=2),
    "mono16": lambda a: np.repeat((a >> 8).astype(np.uint8)[..., None], 3, axis=2),
    "16UC1": lambda a: np.repeat((a >> 8).astype(np.uint8)[..., None], 3, axis=2),
}


@st.composite
def image_messages(draw: st.DrawFn) -> SimpleNamespace:
    """Image messages as a bag or a driver may hold them: any encoding, size, step, byte order, and
    data of the right length or shorter or longer."""
    kind = draw(st.sampled_from(["known", "known", "unknown", "any text"]))
    if kind == "any text":
        encoding = draw(st.text(max_size=6))
    else:
        encoding = draw(st.sampled_from(SUPPORTED_ENCODINGS if kind == "known" else UNKNOWN_ENCODINGS))
    dtype, channels = ENCODINGS.get(encoding, (np.dtype(np.uint8), 3))
    height, width = draw(st.integers(-1, 5)), draw(st.integers(-1, 5))
    row = max(width, 0) * channels * dtype.itemsize
    step = draw(
        st.one_of(
            st.just(row),  # packed
            st.integers(row, row + 7),  # padded, often not a multiple of the pixel size
            st.integers(max(row - 5, -2), row),  # too small
            st.integers(0, 70),
        )
    )
    is_bigendian = draw(st.sampled_from([0, 1, False, True]))
    container = CONTAINERS[draw(st.sampled_from(sorted(CONTAINERS)))]
    size = max(step, 0) * max(height, 0)
    length = draw(
        st.sampled_from(["exact", "exact", "near", "any"]).flatmap(
            lambda kind: {
                "exact": st.just(size),
                "near": st.integers(max(size - 9, 0), size + 9),  # shorter or longer by a few bytes
                "any": st.integers(0, 300),
            }[kind]
        )
    )
    raw = draw(st.binary(min_size=length, max_size=length))
    return SimpleNamespace(
        header=HEADER,
        height=height,
        width=width,
        encoding=encoding,
        is_bigendian=is_bigendian,
        step=step,
        data=container(raw),
    )


def reference_pixels(msg: SimpleNamespace) -> np.ndarray | None:
    """What image_to_numpy must return, decoded row by row from the raw bytes; None for a malformed
    message (unknown encoding, empty size, step below the row size, data not step * height bytes)."""
    if msg.encoding not in ENCODINGS:
        return None
    dtype, channels = ENCODINGS[msg.encoding]
    row = msg.width * channels * dtype.itemsize
    raw = bytes(msg.data)
    if msg.height < 1 or msg.width < 1 or msg.step < row or len(raw) != msg.step * msg.height:
        return None
    wire = dtype.newbyteorder(">" if msg.is_bigendian else "<")
    rows = [np.frombuffer(raw[r * msg.step : r * msg.step + row], dtype=wire) for r in range(msg.height)]
    shape = (msg.height, msg.width, channels) if channels > 1 else (msg.height, msg.width)
    return np.array(rows).astype(dtype).reshape(shape)


def reference_depth(encoding: str, pixels: np.ndarray) -> np.ndarray:
    """REP 118 depth in metres from decoded 32FC1 / 16UC1 pixels: invalid (NaN, inf, <= 0; 0 mm) -> NaN."""
    if encoding == "16UC1":
        depth = pixels.astype(np.float32) * np.float32(0.001)
        return np.where(pixels == 0, np.float32(NAN), depth)
    return np.where(np.isfinite(pixels) & (pixels > 0), pixels, np.float32(NAN))


@fuzz("Image message -> image_to_numpy / to_rgb8 / image_msg_to_depth")
@given(image_messages())
def test_any_image_message_decodes_exactly_or_raises_bad_input(msg: SimpleNamespace) -> None:
    pixels = reference_pixels(msg)
    wrong_type = UnsupportedEncodingError if msg.encoding not in ENCODINGS else ImageDataError

    decoded = outcome(image_to_numpy, msg)
    event(f"image_to_numpy -> {type(decoded).__name__}")
    if pixels is None:
        assert isinstance(decoded, wrong_type), f"malformed message gave {decoded!r}"
    else:
        assert_bits_equal(decoded, pixels)

    rgb = outcome(to_rgb8, msg)
    if msg.encoding not in RGB_REFERENCE:
        assert isinstance(rgb, UnsupportedEncodingError), f"{msg.encoding!r} gave {rgb!r}"
    elif pixels is None:
        assert isinstance(rgb, ImageDataError), f"malformed message gave {rgb!r}"
    else:
        assert_bits_equal(rgb, RGB_REFERENCE[msg.encoding](pixels))

    depth = outcome(image_msg_to_depth, msg)
    if msg.encoding not in ("32FC1", "16UC1"):
        assert isinstance(depth, UnsupportedEncodingError), f"{msg.encoding!r} gave {depth!r}"
    elif pixels is None:
        assert isinstance(depth, ImageDataError), f"malformed message gave {depth!r}"
    else:
        assert_bits_equal(depth, reference_depth(msg.encoding, pixels))


@st.composite
def images_with_encoding(draw: st.DrawFn) -> tuple[str, np.ndarray]:
    encoding = draw(st.sampled_from(SUPPORTED_ENCODINGS))
    dtype, channels = ENCODINGS[encoding]
    height, width = draw(st.integers(0, 6)), draw(st.integers(0, 6))
    shape = (height, width, channels) if channels > 1 else (height, width)
    return encoding, draw(hnp.arrays(dtype, shape))  # float32: NaN (any payload), inf, subnormals too


@fuzz("numpy_to_image round trip")
@given(images_with_encoding(), st.integers(0, 9), st.booleans(), st.booleans())
def test_numpy_to_image_round_trip_is_exact(
    encoded: tuple[str, np.ndarray], pad: int, bigendian: bool, rclpy_style: bool
) -> None:
    encoding, image = encoded
    dtype, channels = ENCODINGS[encoding]
    height, width = image.shape[:2]
    row = width * channels * dtype.itemsize
    types = RCLPY_STYLE_TYPES if rclpy_style else TYPES
    msg = outcome(numpy_to_image, image, encoding, HEADER, types, row + pad, bigendian)
    if height == 0 or width == 0:  # an image no reader accepts is not written either
        assert isinstance(msg, ImageDataError), f"empty {image.shape} image gave {msg!r}"
        return
    assert (msg.height, msg.width, msg.step, msg.encoding) == (height, width, row + pad, encoding)
    assert bool(msg.is_bigendian) == bigendian and len(msg.data) == msg.step * msg.height
    assert isinstance(msg.data, array.array if rclpy_style else np.ndarray)
    back = image_to_numpy(msg)
    assert_bits_equal(back, image)
    assert np.ascontiguousarray(back).tobytes() == image.tobytes()  # NaN payloads included
    if encoding in RGB_REFERENCE:
        assert_bits_equal(to_rgb8(msg), RGB_REFERENCE[encoding](image))


@st.composite
def arrays_of_other_dtypes(draw: st.DrawFn) -> tuple[str, np.ndarray]:
    """An array in a dtype other than the encoding's (int64 from numpy arithmetic, float64, bool)."""
    encoding = draw(st.sampled_from(SUPPORTED_ENCODINGS))
    channels = ENCODINGS[encoding][1]
    dtype = np.dtype(draw(st.sampled_from([np.int64, np.int32, np.int8, np.uint32, np.float64, np.bool_])))
    shape = (draw(st.integers(1, 4)), draw(st.integers(1, 4))) + ((channels,) if channels > 1 else ())
    if dtype.kind == "f":
        elements = st.floats(-1e5, 1e5)
    elif dtype.kind == "b":
        elements = st.booleans()
    else:
        info = np.iinfo(dtype)
        elements = st.integers(max(info.min, -70000), min(info.max, 70000))
    return encoding, draw(hnp.arrays(dtype, shape, elements=elements))


@fuzz("numpy_to_image value range")
@given(arrays_of_other_dtypes())
def test_numpy_to_image_never_wraps_or_truncates_values(encoded: tuple[str, np.ndarray]) -> None:
    encoding, image = encoded
    dtype = ENCODINGS[encoding][0]
    msg = outcome(numpy_to_image, image, encoding, HEADER, TYPES)
    if dtype.kind == "f":  # 32FC1: any real numbers, rounded to float32 once
        assert_bits_equal(image_to_numpy(msg), image.astype(np.float32))
        return
    limits = np.iinfo(dtype)
    fits = image.dtype.kind in "iub" and limits.min <= image.min() and image.max() <= limits.max
    event(f"{'fits' if fits else 'does not fit'} the encoding")
    if fits:
        assert_bits_equal(image_to_numpy(msg), image.astype(dtype))
    else:
        assert isinstance(msg, ImageDataError), f"{image.dtype} {image.min()}..{image.max()} gave {msg!r}"


def depth_arrays(dtype: Any = np.float32) -> st.SearchStrategy[np.ndarray]:
    shapes = st.tuples(st.integers(1, 6), st.integers(1, 6))
    return hnp.arrays(dtype, shapes, elements=st.floats(allow_nan=True, width=np.dtype(dtype).itemsize * 8))


@fuzz("depth 32FC1 round trip")
@given(st.one_of(depth_arrays(np.float32), depth_arrays(np.float64)))
def test_depth_32fc1_round_trip(depth: np.ndarray) -> None:
    with np.errstate(over="ignore"):  # float64 beyond float32's range becomes inf (then invalid)
        msg = depth_to_image_msg(depth, HEADER, TYPES, "32FC1")
        written = depth.astype(np.float32)  # float64 input rounds to float32 once
    assert_bits_equal(image_msg_to_depth(msg), reference_depth("32FC1", written))


@fuzz("depth 16UC1 round trip")
@given(st.one_of(depth_arrays(np.float32), depth_arrays(np.float64)))
def test_depth_16uc1_round_trip(depth: np.ndarray) -> None:
    with np.errstate(over="ignore"):
        msg = depth_to_image_msg(depth, HEADER, TYPES, "16UC1")
    millimetres = image_to_numpy(msg).astype(np.float64)
    # As documented: NaN, inf and <= 0 -> 0 (invalid); finite beyond 65.535 m -> 65535; else the
    # nearest millimetre (float32 arithmetic may move an exact .5 tie, hence the 1e-3 mm slack).
    with np.errstate(over="ignore", invalid="ignore"):
        exact = np.clip(depth.astype(np.float64) * 1000.0, 0.0, 65535.0)
    exact[np.isnan(depth) | (depth <= 0) | np.isinf(depth)] = 0.0
    assert (np.abs(millimetres - exact) <= 0.5 + 1e-3).all(), (depth, millimetres)
    assert_bits_equal(image_msg_to_depth(msg), reference_depth("16UC1", image_to_numpy(msg)))


# ---------------------------------------------------------------------------------- CompressedImage

FORMATS = (
    "jpeg",
    "png",
    "JPEG",
    "rgb8; jpeg compressed bgr8",
    "rgb8; jpeg compressed rgb8",
    "bgr8; png compressed bgr8",
    "mono8; png compressed mono8",
    "",
    "16UC1; compressedDepth png",
    "tiff",
    "webp",
)
MUTATIONS = ("intact", "zero_padding", "truncated", "flipped", "garbage_tail", "random", "framed_random")
JPEG_END, PNG_SIGNATURE = b"\xff\xd9", b"\x89PNG\r\n\x1a\n"
PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"


def format_is_supported(fmt: str) -> bool:
    lowered = fmt.lower()
    return "compresseddepth" not in lowered and (
        not lowered or any(n in lowered for n in ("jpeg", "jpg", "png"))
    )


def rgb_from_opencv_order(pixels: np.ndarray) -> np.ndarray:
    """(H, W) grey, (H, W, 3) BGR or (H, W, 4) BGRA, 8 or 16 bit -> (H, W, 3) uint8 RGB (16 bit: high
    byte), as OpenCV's IMREAD_COLOR then a BGR -> RGB swap give it."""
    pixels = (pixels >> 8).astype(np.uint8) if pixels.dtype == np.uint16 else pixels
    if pixels.ndim == 2:
        return np.repeat(pixels[..., None], 3, axis=2)
    return np.ascontiguousarray(pixels[..., 2::-1])


@st.composite
def compressed_messages(draw: st.DrawFn) -> tuple[SimpleNamespace, str, str, np.ndarray, bytes]:
    """(message, codec, mutation, the encoded image, its intact bytes)."""
    # Choices first, bulk bytes last: hypothesis fills draws past its buffer with the simplest choice.
    codec = draw(st.sampled_from(["jpeg", "png"]))
    mutation = draw(st.sampled_from(MUTATIONS))
    fmt = draw(
        st.sampled_from(["listed"] * 3 + ["any text"]).flatmap(
            lambda kind: st.sampled_from(FORMATS) if kind == "listed" else st.text(max_size=12)
        )
    )
    container = CONTAINERS[draw(st.sampled_from(["numpy", "array.array", "bytes"]))]
    height, width = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    channels = draw(st.sampled_from([1, 3] if codec == "jpeg" else [1, 3, 4]))  # PNG: grey, BGR, BGRA
    shape = (height, width, channels) if channels > 1 else (height, width)
    dtype = np.uint8 if codec == "jpeg" else draw(st.sampled_from([np.uint8, np.uint16]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    image = rng.integers(0, np.iinfo(dtype).max, size=shape, dtype=dtype, endpoint=True)
    ok, encoded = cv2.imencode(".jpg" if codec == "jpeg" else ".png", image)
    assert ok
    intact = data = encoded.tobytes()
    if mutation == "zero_padding":
        data = intact + bytes(draw(st.integers(1, 16)))
    elif mutation == "truncated":
        data = intact[: draw(st.integers(0, len(intact) - 1))]
    elif mutation == "flipped":
        flipped = bytearray(intact)
        for _ in range(draw(st.integers(1, 3))):
            flipped[draw(st.integers(0, len(intact) - 1))] ^= draw(st.integers(1, 255))
        data = bytes(flipped)
    elif mutation == "garbage_tail":
        data = intact + draw(st.binary(min_size=1, max_size=8)) + b"\x01"
    elif mutation == "random":
        data = draw(st.binary(max_size=80))
    elif mutation == "framed_random":  # right signature and end marker around random bytes
        start, end = (b"\xff\xd8\xff", JPEG_END) if codec == "jpeg" else (PNG_SIGNATURE, PNG_END)
        data = start + draw(st.binary(max_size=80)) + end
    msg = SimpleNamespace(header=HEADER, format=fmt, data=container(data))
    return msg, codec, mutation, image, intact


@fuzz("CompressedImage decode")
@given(compressed_messages())
def test_compressed_images_decode_exactly_or_raise_bad_input(
    case: tuple[SimpleNamespace, str, str, np.ndarray, bytes],
) -> None:
    msg, codec, mutation, image, intact = case
    unchanged = outcome(compressed_to_numpy, msg)
    rgb = outcome(to_rgb8, msg)
    if not format_is_supported(msg.format):
        assert isinstance(unchanged, UnsupportedEncodingError) and isinstance(rgb, UnsupportedEncodingError)
        return
    event(f"{codec} {mutation} -> {type(rgb).__name__}")
    # What the intact bytes hold: PNG is lossless (the image itself), JPEG is what OpenCV decodes.
    pixels = image if codec == "png" else cv2.imdecode(np.frombuffer(intact, np.uint8), cv2.IMREAD_UNCHANGED)
    expected_rgb = rgb_from_opencv_order(pixels)
    if "compressed rgb" in msg.format:  # the bytes hold RGB order: no channel swap
        expected_rgb = np.ascontiguousarray(expected_rgb[..., ::-1])
    if mutation in ("intact", "zero_padding"):
        assert_bits_equal(rgb, expected_rgb)
        assert_bits_equal(unchanged, pixels)
    elif mutation in ("truncated", "garbage_tail", "random", "framed_random"):
        assert isinstance(unchanged, ImageDecodeError), f"{mutation} {codec} gave {unchanged!r}"
        assert isinstance(rgb, ImageDecodeError), f"{mutation} {codec} gave {rgb!r}"
    elif codec == "png":  # flipped bytes: PNG's CRCs catch them, or they changed nothing that matters
        for got, expected in ((rgb, expected_rgb), (unchanged, pixels)):
            if not isinstance(got, ImageDecodeError):
                assert_bits_equal(got, expected)
    else:  # flipped JPEG bytes: JPEG has no checksum, so the pixels and even the size (a flipped SOF
        # byte) may be wrong; the frame path's camera_info size check catches the latter.
        if not isinstance(rgb, ImageDecodeError):
            assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3


# ---------------------------------------------------------------------------------- point clouds

SPECIAL_DEPTHS = (NAN, INF, -INF, 0.0, -0.0, -2.5, -1e3)
RANGE_RTOL = 1e-5  # a point this close to min_range/max_range may fall either side (float32 maths)


def sometimes_unusable(usable: st.SearchStrategy[float], unusable: list[float]) -> st.SearchStrategy[float]:
    """Mostly ``usable`` values, one time in eight an unusable one (an uncalibrated CameraInfo)."""
    return st.sampled_from(["usable"] * 7 + ["unusable"]).flatmap(
        lambda kind: usable if kind == "usable" else st.sampled_from(unusable)
    )


@st.composite
def cloud_cases(draw: st.DrawFn) -> dict[str, Any]:
    height, width = draw(st.integers(0, 8)), draw(st.integers(0, 8))
    elements = st.one_of(st.floats(2.0**-10, 1e3, width=32), st.sampled_from(SPECIAL_DEPTHS))
    depth = draw(hnp.arrays(np.float32, (height, width), elements=elements))
    min_range = draw(st.one_of(st.just(0.0), st.floats(0.0, 100.0)))
    max_range = draw(st.one_of(st.just(INF), st.floats(0.01, 2000.0)))
    return {
        "depth": depth,
        "fx": draw(sometimes_unusable(st.floats(0.5, 1000.0), [0.0, -3.0, NAN, INF])),
        "fy": draw(st.floats(0.5, 1000.0)),
        "cx": draw(st.floats(-5.0, 15.0)),
        "cy": draw(sometimes_unusable(st.floats(-5.0, 15.0), [NAN, -INF])),
        "stride": draw(st.integers(1, 4)),
        "min_range": min_range,
        "max_range": max_range,
        "organized": draw(st.booleans()),
        "rgb": draw(st.none() | hnp.arrays(np.uint8, (height, width, 3))),
    }


def pinhole_reference(case: dict[str, Any]) -> dict[str, np.ndarray]:
    """Per pixel of the strided grid, in float64 from the full image's pixel indices: x, y, z, the
    allowed float32 error of x and y, and whether the point must be in the cloud, out, or either."""
    s = case["stride"]
    z = case["depth"][::s, ::s].astype(np.float64)
    v, u = np.mgrid[0 : case["depth"].shape[0] : s, 0 : case["depth"].shape[1] : s].astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        x = (u - case["cx"]) * z / case["fx"]
        y = (v - case["cy"]) * z / case["fy"]
        distance = np.sqrt(x * x + y * y + z * z)
        depth_ok = np.isfinite(z) & (z > 0)  # REP 118: NaN, inf and <= 0 are no depth
        low, high = case["min_range"], case["max_range"]
        inside = depth_ok & (distance >= low * (1 + RANGE_RTOL)) & (distance <= high * (1 - RANGE_RTOL))
        outside = ~depth_ok | (distance < low * (1 - RANGE_RTOL)) | (distance > high * (1 + RANGE_RTOL))
    # float32 inputs and arithmetic: a few ulps of each term of (u - cx) * z / f.
    tol_x = 2.0**-20 * (np.abs(u) + abs(case["cx"]) + 1) * np.abs(z) / case["fx"]
    tol_y = 2.0**-20 * (np.abs(v) + abs(case["cy"]) + 1) * np.abs(z) / case["fy"]
    return {"x": x, "y": y, "z": z, "tol_x": tol_x, "tol_y": tol_y, "inside": inside, "outside": outside}


def packed_rgb(rgb: np.ndarray) -> np.ndarray:
    r, g, b = (rgb[..., i].astype(np.uint32) for i in range(3))
    return (r << 16) | (g << 8) | b


def check_organized(cloud: np.ndarray, case: dict[str, Any]) -> None:
    ref = pinhole_reference(case)
    channels = 3 if case["rgb"] is None else 4
    assert cloud.dtype == np.float32 and cloud.shape == ref["z"].shape + (channels,), cloud.shape
    xyz = cloud[..., :3].astype(np.float64)
    present = np.isfinite(xyz).all(axis=-1)
    absent = np.isnan(xyz).all(axis=-1)
    assert (present | absent).all(), "a point is neither valid nor all-NaN"
    assert not (present & ref["outside"]).any(), "an invalid or out-of-range point is in the cloud"
    assert not (absent & ref["inside"]).any(), "a valid in-range point is missing"
    np.testing.assert_array_equal(xyz[present, 2], ref["z"][present])  # z is the depth, bit for bit
    assert (np.abs(xyz[present, 0] - ref["x"][present]) <= ref["tol_x"][present]).all()
    assert (np.abs(xyz[present, 1] - ref["y"][present]) <= ref["tol_y"][present]).all()
    if case["rgb"] is not None:
        s = case["stride"]
        colour = np.ascontiguousarray(cloud[..., 3]).view(np.uint32)
        np.testing.assert_array_equal(colour, packed_rgb(case["rgb"][::s, ::s]))


def check_message(msg: Any, cloud: np.ndarray, organized: bool) -> None:
    channels = cloud.shape[-1]
    height, width = cloud.shape[:2] if organized else (1, cloud.shape[0])
    assert [f.name for f in msg.fields] == ["x", "y", "z", "rgb"][:channels]
    assert [(f.offset, f.datatype, f.count) for f in msg.fields] == [(4 * i, 7, 1) for i in range(channels)]
    assert (msg.height, msg.width, msg.point_step) == (height, width, 4 * channels)
    assert msg.row_step == msg.point_step * msg.width and len(msg.data) == msg.row_step * msg.height
    # is_dense: every point finite. Organized clouds say False (they keep NaN for invalid pixels).
    assert msg.is_dense is (False if organized else bool(np.isfinite(cloud[..., :3]).all()))
    back = pointcloud2_to_array(msg)
    assert_bits_equal(back, cloud.reshape(height, width, channels))
    xyz = cloud[..., :3].reshape(-1, 3).astype(np.float64)
    assert_bits_equal(cloud_xyz(msg), xyz[np.isfinite(xyz).all(axis=1)])
    TYPESTORE.serialize_cdr(msg, "sensor_msgs/msg/PointCloud2")  # field types are what the wire wants


@fuzz("depth_to_cloud pinhole model and read-back")
@given(cloud_cases())
def test_cloud_follows_the_pinhole_model_and_reads_back_exactly(case: dict[str, Any]) -> None:
    args = [case[k] for k in ("depth", "fx", "fy", "cx", "cy", "stride", "min_range", "max_range")]
    organized = outcome(depth_to_cloud, *args, True, case["rgb"])
    if case["depth"].size == 0:
        assert isinstance(organized, ImageDataError), f"empty depth gave {organized!r}"
        return
    if not (case["fx"] > 0 and math.isfinite(case["fx"]) and math.isfinite(case["cy"])):
        assert isinstance(organized, BadInputError), f"fx={case['fx']}, cy={case['cy']} gave {organized!r}"
        return
    check_organized(organized, case)
    flat = organized.reshape(-1, organized.shape[-1])
    # Unorganized: exactly the organized cloud's valid points, in row-major order.
    unorganized = depth_to_cloud(*args, False, case["rgb"])
    assert_bits_equal(unorganized, flat[~np.isnan(flat[:, 2])])
    cloud = organized if case["organized"] else unorganized
    check_message(make_pointcloud2(cloud, HEADER, TYPES), cloud, case["organized"])


POINTFIELD_TYPES = {1: "i1", 2: "u1", 3: "i2", 4: "u2", 5: "i4", 6: "u4", 7: "f4", 8: "f8"}


@st.composite
def any_pointclouds(draw: st.DrawFn) -> tuple[SimpleNamespace, list[str]]:
    """PointCloud2 messages of any layout (LiDAR-like extra fields, padding, either byte order),
    with data of the right size or not, and the field names a reader asks for."""
    names = draw(
        st.lists(st.sampled_from(["x", "y", "z", "intensity", "ring", "t"]), min_size=1, unique=True)
    )
    fields = [
        SimpleNamespace(
            name=name,
            offset=draw(st.integers(0, 24)),
            datatype=draw(st.sampled_from([*POINTFIELD_TYPES, 0, 9])),
            count=1,
        )
        for name in names
    ]
    point_step = draw(st.integers(0, 32))
    height, width = draw(st.integers(0, 4)), draw(st.integers(0, 4))
    row_step = draw(st.one_of(st.just(point_step * width), st.integers(0, point_step * width + 9)))
    size = row_step * height
    length = draw(st.one_of(st.just(size), st.integers(max(size - 9, 0), size + 9)))
    raw = draw(st.binary(min_size=length, max_size=length))
    msg = SimpleNamespace(
        header=HEADER,
        height=height,
        width=width,
        fields=fields,
        is_bigendian=draw(st.booleans()),
        point_step=point_step,
        row_step=row_step,
        data=CONTAINERS[draw(st.sampled_from(["numpy", "array.array", "bytes"]))](raw),
        is_dense=False,
    )
    wanted = draw(st.lists(st.sampled_from([*names, "rgb"]), min_size=1, max_size=3, unique=True))
    return msg, wanted


def reference_fields(msg: SimpleNamespace, names: list[str]) -> np.ndarray | None:
    """Each point's fields read one at a time from the raw bytes; None for a malformed message."""
    fields = {f.name: f for f in msg.fields}
    if any(n not in fields or fields[n].datatype not in POINTFIELD_TYPES for n in names):
        return None
    types = [np.dtype(POINTFIELD_TYPES[fields[n].datatype]).newbyteorder(">" if msg.is_bigendian else "<")
             for n in names]  # fmt: skip
    raw = bytes(msg.data)
    if any(fields[n].offset + t.itemsize > msg.point_step for n, t in zip(names, types)):
        return None
    if msg.row_step < msg.point_step * msg.width or len(raw) != msg.row_step * msg.height:
        return None
    out = np.empty(
        (msg.height, msg.width, len(names)), dtype=np.result_type(*[t.newbyteorder("=") for t in types])
    )
    for r in range(msg.height):
        for c in range(msg.width):
            for k, (n, t) in enumerate(zip(names, types)):
                at = r * msg.row_step + c * msg.point_step + fields[n].offset
                out[r, c, k] = np.frombuffer(raw[at : at + t.itemsize], dtype=t)[0]
    return out


@fuzz("read_fields any layout")
@given(any_pointclouds())
def test_read_fields_reads_any_layout_exactly_or_raises_bad_input(
    case: tuple[SimpleNamespace, list[str]],
) -> None:
    msg, names = case
    expected = reference_fields(msg, names)
    got = outcome(read_fields, msg, names)
    if expected is None:
        assert isinstance(got, BadInputError), f"malformed cloud gave {got!r}"
    else:
        assert isinstance(got, np.ndarray) and got.shape == expected.shape, got
        assert_bits_equal(got.astype(expected.dtype), expected)


@st.composite
def output_cases(draw: st.DrawFn) -> dict[str, Any]:
    height, width = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    elements = st.one_of(st.floats(0.0625, 90.0, width=32), st.sampled_from(SPECIAL_DEPTHS))
    return {
        "depth": draw(hnp.arrays(np.float32, (height, width), elements=elements)),
        "fx": draw(st.floats(1.0, 500.0)),
        "fy": draw(st.floats(1.0, 500.0)),
        "cx": draw(st.floats(-2.0, 9.0)),
        "cy": draw(st.floats(-2.0, 9.0)),
        "camera_scale": draw(st.sampled_from([None, 1, 2, 3])),  # camera image = depth size * this
        "stride": draw(st.integers(1, 3)),
        "max_range": draw(st.one_of(st.just(INF), st.floats(1.0, 100.0))),
        "organized": draw(st.booleans()),
        "rgb_size": draw(st.none() | st.tuples(st.integers(1, 12), st.integers(1, 12))),
        "encoding": draw(st.sampled_from(["32FC1", "16UC1"])),
    }


@fuzz("build_outputs agreement")
@given(output_cases())
def test_build_outputs_image_camera_info_and_cloud_agree(case: dict[str, Any]) -> None:
    depth = case["depth"]
    height, width = depth.shape
    K = np.array([[case["fx"], 0, case["cx"]], [0, case["fy"], case["cy"]], [0, 0, 1]])
    camera_info, input_size = None, None
    if case["camera_scale"]:  # the camera's own CameraInfo, at its own (larger) resolution
        f = case["camera_scale"]
        input_size = (width * f, height * f)
        camera_info = camera_info_from_K(np.diag([f, f, 1.0]) @ K, *input_size, HEADER, TYPES)
    result = DepthResult(depth=depth, K=K, scale=1.0, input_size=input_size)
    rgb = None
    if case["rgb_size"]:
        rgb = np.arange(case["rgb_size"][0] * case["rgb_size"][1] * 3, dtype=np.uint8).reshape(
            case["rgb_size"] + (3,)
        )
    out = build_outputs(
        result, HEADER, camera_info, TYPES, cloud=True, stride=case["stride"],
        max_range=case["max_range"], organized=case["organized"], rgb=rgb, encoding=case["encoding"],
    )  # fmt: skip
    assert out.image.header is HEADER and out.camera_info.header is HEADER and out.points.header is HEADER
    assert (out.image.height, out.image.width, out.image.encoding) == (height, width, case["encoding"])
    assert (out.camera_info.height, out.camera_info.width) == (height, width)
    np.testing.assert_allclose(out.camera_info.k.reshape(3, 3), K, rtol=1e-12, atol=1e-12)
    published = image_msg_to_depth(out.image)
    if case["encoding"] == "32FC1":
        assert_bits_equal(published, reference_depth("32FC1", depth))
    # The cloud and the published camera_info agree: every point projects back through P onto the
    # pixel it came from (what depth_image_proc and rviz rely on), and the valid pixels are all there.
    cloud = pointcloud2_to_array(out.points)
    assert [f.name for f in out.points.fields][3:] == (["rgb"] if rgb is not None else [])
    P = out.camera_info.p.reshape(3, 4)
    s = case["stride"]
    if case["organized"]:
        assert cloud.shape[:2] == (math.ceil(height / s), math.ceil(width / s))
        v, u = np.mgrid[0:height:s, 0:width:s].astype(np.float64)
    points = cloud[..., :3].reshape(-1, 3).astype(np.float64)
    finite = np.isfinite(points).all(axis=1)
    x, y, z = points[finite].T
    u_back, v_back = P[0, 0] * x / z + P[0, 2], P[1, 1] * y / z + P[1, 2]
    tolerance = 1e-5 * (np.abs(u_back) + abs(P[0, 2]) + 1)
    if case["organized"]:
        assert (np.abs(u_back - u.reshape(-1)[finite]) <= tolerance).all()
        assert (np.abs(v_back - v.reshape(-1)[finite]) <= 1e-5 * (np.abs(v_back) + abs(P[1, 2]) + 1)).all()
    else:  # unorganized: on the strided pixel grid, inside the image
        assert (np.abs(u_back - s * np.round(u_back / s)) <= tolerance).all()
        assert ((u_back > -0.5) & (u_back < width - 0.5) & (v_back > -0.5) & (v_back < height - 0.5)).all()
    valid = np.isfinite(depth[::s, ::s]) & (depth[::s, ::s] > 0)
    if np.isinf(case["max_range"]):
        assert finite.sum() == valid.sum()
