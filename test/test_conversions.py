"""sensor_msgs Image/CompressedImage <-> numpy with rosbags message classes (and rclpy-like buffers)."""

from __future__ import annotations

import array
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from rosbags.typesys import Stores, get_typestore

from depth_node.runtime.conversions import (
    ENCODINGS,
    SUPPORTED_ENCODINGS,
    depth_to_image_msg,
    image_msg_to_depth,
    image_to_numpy,
    jpeg_size,
    numpy_to_image,
    to_colour8,
    to_rgb8,
)
from depth_node.runtime.errors import (
    BadInputError,
    ImageDataError,
    ImageDecodeError,
    UnsupportedEncodingError,
)
from depth_node.runtime.message_types import ros_uint8_array, rosbags_types

TYPES = rosbags_types()
_TIME = get_typestore(Stores.ROS2_HUMBLE).types["builtin_interfaces/msg/Time"]
HEADER = TYPES.Header(stamp=_TIME(sec=12, nanosec=345), frame_id="camera_optical")
RNG = np.random.default_rng(3)


def _random_image(encoding: str, height: int = 5, width: int = 7) -> np.ndarray:
    dtype, channels = ENCODINGS[encoding]
    shape = (height, width) if channels == 1 else (height, width, channels)
    if dtype == np.float32:
        return RNG.uniform(-50, 50, size=shape).astype(np.float32)
    return RNG.integers(0, np.iinfo(dtype).max + 1, size=shape, dtype=dtype)


@pytest.mark.parametrize("encoding", SUPPORTED_ENCODINGS)
@pytest.mark.parametrize(("pad", "bigendian"), [(0, False), (5, False), (0, True), (6, True)])
def test_round_trip_every_encoding(encoding: str, pad: int, bigendian: bool) -> None:
    image = _random_image(encoding)
    dtype, channels = ENCODINGS[encoding]
    row = image.shape[1] * channels * dtype.itemsize
    msg = numpy_to_image(image, encoding, HEADER, TYPES, step=row + pad, is_bigendian=bigendian)
    assert isinstance(msg, TYPES.Image)
    assert msg.step == row + pad and msg.data.dtype == np.uint8 and msg.data.size == msg.step * msg.height
    back = image_to_numpy(msg)
    assert back.dtype == dtype and back.dtype.isnative
    np.testing.assert_array_equal(back, image)


def test_big_endian_bytes_are_decoded_not_just_round_tripped() -> None:
    # Build the wire bytes by hand: 0x0102 big-endian is 258.
    msg = TYPES.Image(
        header=HEADER, height=1, width=2, encoding="16UC1", is_bigendian=1, step=6,
        data=np.array([1, 2, 0, 7, 0xFF, 0xFF], dtype=np.uint8),
    )  # fmt: skip
    np.testing.assert_array_equal(image_to_numpy(msg), [[258, 7]])
    value = np.array([[1.5]], dtype=">f4")
    msg32 = TYPES.Image(
        header=HEADER, height=1, width=1, encoding="32FC1", is_bigendian=1, step=4,
        data=np.frombuffer(value.tobytes(), dtype=np.uint8).copy(),
    )  # fmt: skip
    assert image_to_numpy(msg32)[0, 0] == np.float32(1.5)


def test_rclpy_style_buffers_are_accepted() -> None:
    image = _random_image("bgr8", 4, 6)
    packed = image.tobytes()
    for data in (array.array("B", packed), packed, bytearray(packed), ros_uint8_array(image)):
        msg = SimpleNamespace(height=4, width=6, encoding="bgr8", is_bigendian=0, step=18, data=data)
        np.testing.assert_array_equal(image_to_numpy(msg), image)
        np.testing.assert_array_equal(to_rgb8(msg), image[..., ::-1])


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8", "bgra8", "mono8", "mono16", "16UC1"])
def test_to_rgb8_every_colour_and_mono_encoding(encoding: str) -> None:
    image = _random_image(encoding, 6, 9)
    msg = numpy_to_image(image, encoding, HEADER, TYPES, step=None)
    rgb = to_rgb8(msg)
    assert rgb.shape == (6, 9, 3) and rgb.dtype == np.uint8
    expected = {
        "rgb8": lambda a: a,
        "bgr8": lambda a: a[..., ::-1],
        "rgba8": lambda a: a[..., :3],
        "bgra8": lambda a: a[..., 2::-1],
        "mono8": lambda a: np.repeat(a[..., None], 3, axis=2),
        "mono16": lambda a: np.repeat((a >> 8).astype(np.uint8)[..., None], 3, axis=2),
        "16UC1": lambda a: np.repeat((a >> 8).astype(np.uint8)[..., None], 3, axis=2),
    }[encoding](image)
    np.testing.assert_array_equal(rgb, expected)


def test_to_rgb8_with_padded_rows() -> None:
    image = _random_image("rgb8", 3, 5)
    msg = numpy_to_image(image, "rgb8", HEADER, TYPES, step=32)
    np.testing.assert_array_equal(to_rgb8(msg), image)


def _smooth_rgb(height: int = 32, width: int = 48) -> np.ndarray:
    v, u = np.mgrid[0:height, 0:width]
    return np.stack([u * 5, v * 7, (u + v) * 3], axis=-1).astype(np.uint8)


@pytest.mark.parametrize(
    ("fmt", "ext", "tolerance"),
    [
        ("jpeg", ".jpg", 12),
        ("rgb8; jpeg compressed bgr8", ".jpg", 12),
        ("png", ".png", 0),
        ("bgr8; png compressed bgr8", ".png", 0),
    ],
)
def test_compressed_decode(fmt: str, ext: str, tolerance: int) -> None:
    rgb = _smooth_rgb()
    ok, encoded = cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    msg = TYPES.CompressedImage(header=HEADER, format=fmt, data=encoded.reshape(-1))
    decoded = to_rgb8(msg)
    assert decoded.shape == rgb.shape
    assert np.abs(decoded.astype(int) - rgb.astype(int)).max() <= tolerance


def test_compressed_mono_png_gives_grey_rgb() -> None:
    grey = _smooth_rgb()[..., 0]
    _, encoded = cv2.imencode(".png", grey)
    rgb = to_rgb8(
        TYPES.CompressedImage(header=HEADER, format="mono8; png compressed mono8", data=encoded.reshape(-1))
    )
    np.testing.assert_array_equal(rgb, np.repeat(grey[..., None], 3, axis=2))


def test_bad_compressed_data_and_formats() -> None:
    junk = TYPES.CompressedImage(header=HEADER, format="jpeg", data=np.arange(50, dtype=np.uint8))
    with pytest.raises(ImageDecodeError, match="neither JPEG nor PNG data \\(starts with 00 01 02 03\\)"):
        to_rgb8(junk)
    # JPEG markers around junk pass the completeness check; the decoder refuses them.
    framed = np.frombuffer(b"\xff\xd8\xff" + bytes(range(40)) + b"\xff\xd9", np.uint8)
    with pytest.raises(ImageDecodeError, match="cannot decode"):
        to_rgb8(TYPES.CompressedImage(header=HEADER, format="jpeg", data=framed))
    for fmt in ("16UC1; compressedDepth png", "tiff"):
        msg = TYPES.CompressedImage(header=HEADER, format=fmt, data=np.zeros(4, dtype=np.uint8))
        with pytest.raises(UnsupportedEncodingError) as info:
            to_rgb8(msg)
        assert "\n" not in str(info.value) and "jpeg" in str(info.value)


def test_unsupported_encoding_gives_one_line_error_naming_it() -> None:
    msg = TYPES.Image(
        header=HEADER, height=2, width=2, encoding="bayer_rggb8", is_bigendian=0, step=2,
        data=np.zeros(4, dtype=np.uint8),
    )  # fmt: skip
    for function in (image_to_numpy, to_rgb8):
        with pytest.raises(UnsupportedEncodingError) as info:
            function(msg)
        text = str(info.value)
        assert "bayer_rggb8" in text and "rgb8" in text and "\n" not in text
        assert isinstance(info.value, BadInputError)
    depth_msg = numpy_to_image(np.ones((2, 2), np.float32), "32FC1", HEADER, TYPES)
    with pytest.raises(UnsupportedEncodingError, match="32FC1"):
        to_rgb8(depth_msg)
    with pytest.raises(UnsupportedEncodingError, match="16UC1"):
        depth_to_image_msg(np.ones((2, 2), np.float32), HEADER, TYPES, encoding="8UC1")


def test_malformed_images() -> None:
    short = TYPES.Image(
        header=HEADER, height=4, width=4, encoding="rgb8", is_bigendian=0, step=12,
        data=np.zeros(20, dtype=np.uint8),
    )  # fmt: skip
    with pytest.raises(ImageDataError, match="expected step\\*height"):
        image_to_numpy(short)
    narrow = TYPES.Image(
        header=HEADER, height=1, width=4, encoding="rgb8", is_bigendian=0, step=6,
        data=np.zeros(12, dtype=np.uint8),
    )  # fmt: skip
    with pytest.raises(ImageDataError, match="step 6"):
        image_to_numpy(narrow)


def test_depth_out_32fc1_and_16uc1() -> None:
    depth = np.array([[0.5, np.nan, 2.0], [70.0, 100.0, 1.2345]], dtype=np.float32)
    msg32 = depth_to_image_msg(depth, HEADER, TYPES, "32FC1")
    assert msg32.encoding == "32FC1" and msg32.step == 12 and msg32.header is HEADER
    back = image_msg_to_depth(msg32)
    np.testing.assert_array_equal(np.isnan(back), np.isnan(depth))
    np.testing.assert_allclose(back[~np.isnan(back)], depth[~np.isnan(depth)])

    msg16 = depth_to_image_msg(depth, HEADER, TYPES, "16UC1")
    raw = image_to_numpy(msg16)
    np.testing.assert_array_equal(raw, [[500, 0, 2000], [65535, 65535, 1234]])  # NaN -> 0, clipped
    mm = image_msg_to_depth(msg16)
    assert np.isnan(mm[0, 1]) and mm[0, 0] == pytest.approx(0.5)


def _compressed(fmt: str, data: bytes) -> object:
    return TYPES.CompressedImage(header=HEADER, format=fmt, data=np.frombuffer(data, np.uint8).copy())


@pytest.mark.parametrize(("ext", "fmt"), [(".jpg", "jpeg"), (".png", "png")])
def test_truncated_or_trailing_compressed_data_is_refused_and_zero_padding_is_not(ext: str, fmt: str) -> None:
    # Found by test_fuzz.py. Some OpenCV/libjpeg builds decode a truncated JPEG into a partly grey
    # image with only a stderr warning; the check refuses it before decoding, in every build.
    rgb = _smooth_rgb()
    whole = cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes()
    expected = to_rgb8(_compressed(fmt, whole))
    np.testing.assert_array_equal(to_rgb8(_compressed(fmt, whole + bytes(37))), expected)
    marker = "EOI marker FF D9" if fmt == "jpeg" else "IEND chunk"
    for cut in (len(whole) - 1, len(whole) - 2, len(whole) // 2, 40):
        with pytest.raises(ImageDecodeError, match=f"truncated or has trailing data: .*{marker}") as info:
            to_rgb8(_compressed(fmt, whole[:cut]))
        assert "\n" not in str(info.value) and f"{cut} bytes" in str(info.value)
    with pytest.raises(ImageDecodeError, match="trailing data"):
        to_rgb8(_compressed(fmt, whole + b"\x07junk"))


def test_other_image_formats_are_not_decoded_as_jpeg_or_png() -> None:
    # cv2.imdecode would decode BMP (and TIFF, PPM, ...) bytes labelled "jpeg"; only JPEG/PNG are read.
    bmp = cv2.imencode(".bmp", _smooth_rgb())[1].tobytes()
    with pytest.raises(ImageDecodeError, match="neither JPEG nor PNG data \\(starts with 42 4d"):
        to_rgb8(_compressed("jpeg", bmp))


def test_data_longer_than_step_times_height_is_refused() -> None:
    # Found by test_fuzz.py: a 1x1 rgb8 image with 4 data bytes was read from the first 3.
    msg = TYPES.Image(
        header=HEADER, height=1, width=1, encoding="rgb8", is_bigendian=0, step=3,
        data=np.zeros(4, dtype=np.uint8),
    )  # fmt: skip
    for function in (image_to_numpy, to_rgb8):
        with pytest.raises(
            ImageDataError, match="image data has 4 bytes, expected step\\*height = 3\\*1 = 3"
        ):
            function(msg)


def test_writers_refuse_empty_images_and_values_the_encoding_cannot_hold() -> None:
    # Found by test_fuzz.py: a (0, 0, 3) array was written as an Image no reader accepts, and
    # int64 300 was written to mono8 as 44.
    with pytest.raises(ImageDataError, match="image array has empty size 0x0"):
        numpy_to_image(np.zeros((0, 0, 3), np.uint8), "rgb8", HEADER, TYPES)
    with pytest.raises(ImageDataError, match="depth image has empty size 3x0"):
        depth_to_image_msg(np.zeros((0, 3), np.float32), HEADER, TYPES)
    with pytest.raises(
        ImageDataError, match=r"int64 array does not fit encoding mono8 .* values 0\.\.300 outside 0\.\.255"
    ):
        numpy_to_image(np.array([[0, 300]]), "mono8", HEADER, TYPES)
    with pytest.raises(ImageDataError, match="float64 array does not fit encoding mono16"):
        numpy_to_image(np.array([[0.7, 2.0]]), "mono16", HEADER, TYPES)
    # In-range integers of another dtype, and floats for 32FC1, are written exactly.
    np.testing.assert_array_equal(
        image_to_numpy(numpy_to_image(np.array([[0, 255]]), "mono8", HEADER, TYPES)), [[0, 255]]
    )
    back = image_to_numpy(numpy_to_image(np.array([[0.1, -2.0]]), "32FC1", HEADER, TYPES))
    np.testing.assert_array_equal(back, np.array([[0.1, -2.0]], dtype=np.float32))


def _jpeg(bgr: np.ndarray, *params: int) -> np.ndarray:
    ok, encoded = cv2.imencode(".jpg", bgr, list(params))
    assert ok
    return encoded.reshape(-1)


def _png(bgr: np.ndarray) -> np.ndarray:
    ok, encoded = cv2.imencode(".png", bgr)
    assert ok
    return encoded.reshape(-1)


@pytest.mark.parametrize("progressive", [False, True])
def test_jpeg_size_reads_the_frame_header_without_decoding(progressive: bool) -> None:
    for width, height in [(1920, 1080), (1918, 1080), (17, 9)]:
        encoded = _jpeg(
            np.zeros((height, width, 3), np.uint8), cv2.IMWRITE_JPEG_PROGRESSIVE, int(progressive)
        )
        assert jpeg_size(encoded) == (width, height)
    # An APP1 segment (where EXIF goes), with fill bytes before the next marker, ahead of the header.
    encoded = _jpeg(np.zeros((30, 50, 3), np.uint8)).tobytes()
    app1 = b"\xff\xe1" + (2 + 5000).to_bytes(2, "big") + bytes(5000) + b"\xff\xff"
    assert jpeg_size(np.frombuffer(encoded[:2] + app1 + encoded[2:], np.uint8)) == (50, 30)
    png = _png(np.zeros((30, 50, 3), np.uint8))
    for not_a_header in (png, encoded[:20], b"\xff\xd8\x00\x01", bytes(64)):
        assert jpeg_size(np.frombuffer(bytes(not_a_header), np.uint8)) is None


def test_a_jpeg_is_decoded_smaller_only_where_the_caller_can_use_it() -> None:
    """to_colour8 asks ``reduction_for`` with the JPEG's own size; libjpeg's reduced decode is the 4x4
    block means of the full decode to within a few grey levels (a low-pass of its own)."""
    height, width = 1080, 1920
    bgr = cv2.resize(_smooth_rgb(), (width, height), interpolation=cv2.INTER_LINEAR)
    msg = TYPES.CompressedImage(header=HEADER, format="jpeg", data=_jpeg(bgr, cv2.IMWRITE_JPEG_QUALITY, 90))
    asked: list[tuple[int, int]] = []

    def quarter(w: int, h: int) -> int:
        asked.append((w, h))
        return 4

    image, is_bgr, reduction = to_colour8(msg, quarter)
    assert asked == [(width, height)] and reduction == 4 and is_bgr and image.shape == (270, 480, 3)
    full, _, none = to_colour8(msg)
    binned = cv2.resize(full, (480, 270), interpolation=cv2.INTER_AREA)
    difference = np.abs(image.astype(int) - binned.astype(int))
    assert none == 1 and difference.mean() < 1.0 and difference.max() <= 8
    # A factor that libjpeg lacks or that does not divide the size: the full decode.
    for factor in (1, 3, 16, 7):
        decoded, _, reduction = to_colour8(msg, lambda w, h, f=factor: f)
        assert reduction == 1 and decoded.shape == (height, width, 3)
    odd = TYPES.CompressedImage(header=HEADER, format="jpeg", data=_jpeg(bgr[:, :1918]))
    assert to_colour8(odd, lambda w, h: 4)[2] == 1
    # PNG and raw images: never asked.
    for msg in (
        TYPES.CompressedImage(header=HEADER, format="png", data=_png(bgr[:64, :64])),
        numpy_to_image(bgr[:64, :64].copy(), "bgr8", HEADER, TYPES),
    ):
        assert to_colour8(msg, lambda w, h: pytest.fail("asked for a reduction"))[2] == 1
