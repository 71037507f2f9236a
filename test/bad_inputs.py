"""The bad-input corpus: every kind of broken input the package was tried with, each case named.

One list, :data:`CASES`, run by ``test_bad_inputs.py`` through the one frame path, the depth node
(rclpy or its stand-in), the eval node's ground-truth reader, the replay and the training data
loaders, and counted by ``benchmarks/bench_reliability.py`` into docs/RELIABILITY.md.

A case's ``target`` says what it is fed to, and ``build`` makes it:

- ``frame``: ``build(types, stamp_ns) -> (image, camera_info or None)``; ``expect`` is the frame
  path's drop reason (:data:`depth_node.runtime.frame.DROP_REASONS`) or ``ok`` (processed, and
  ``check(outputs)`` proves the output right).
- ``stamps``: ``build(types, stamp_ns) -> [(image, camera_info), ...]``; ``expect`` is what the last
  frame gets: a drop reason, a reset reason (:data:`depth_node.runtime.frame.RESET_REASONS`) or ``ok``.
- ``ground_truth``: ``build(types, stamp_ns) -> depth Image``; ``expect`` is ``ok`` (read, with
  ``check(depth)``) or ``error`` (one line, a BadInputError).
- ``model``: ``build(folder) -> model file``; ``expect`` is ``error`` (ModelLoadError, one line).
- ``bag``: ``build(folder, types) -> bag folder``; ``expect`` is ``error`` (one line from the replay
  and from the training loader).
- ``training_data``: ``build(folder) -> KITTI-layout root``; ``expect`` is ``error`` (one line).

Messages are rosbags classes (``types`` = :func:`depth_node.runtime.message_types.rosbags_types`);
the node test converts them to its own classes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from depth_node.runtime.message_types import MessageTypes, stamp_header
from depth_node.runtime.messages import camera_info_from_K

W, H = 96, 32  # the camera of every frame case (the corpus's tiny test model takes any size)
FRAME_ID = "camera_optical"
K = np.array([[60.0, 0.0, 47.5], [0.0, 60.0, 15.5], [0.0, 0.0, 1.0]])
FRAME_NS = 100_000_000  # 10 Hz


@dataclass(frozen=True)
class BadInput:
    name: str
    kind: str  # the group in docs/RELIABILITY.md
    target: str  # frame, stamps, ground_truth, model, bag, training_data
    expect: str  # a drop or reset reason, "ok" or "error"
    build: Callable[..., Any]
    check: Callable[[Any], bool] | None = None  # for "ok": the output is right, not just present
    in_bag: bool = True  # frame cases: also written to the corpus bag (False: too big for a bag)


# --- builders -------------------------------------------------------------------------------------
def good_rgb(width: int = W, height: int = H) -> np.ndarray:
    """A camera image with some texture (a gradient), RGB uint8."""
    u = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
    v = np.linspace(0, 255, height, dtype=np.float32)[:, None, None]
    return np.broadcast_to((u + v) / 2, (height, width, 3)).astype(np.uint8)


def camera_info(
    types: MessageTypes,
    stamp: int,
    K: np.ndarray = K,
    width: int = W,
    height: int = H,
    frame_id: str = FRAME_ID,
) -> Any:
    return camera_info_from_K(K, width, height, stamp_header(types, stamp, frame_id), types)


def raw_image(
    types: MessageTypes,
    stamp: int,
    encoding: str,
    data: np.ndarray | bytes,
    *,
    width: int = W,
    height: int = H,
    step: int | None = None,
    bigendian: bool = False,
    frame_id: str = FRAME_ID,
) -> Any:
    """An Image with exactly the given fields, nothing checked (that is the point)."""
    buffer = (
        np.frombuffer(bytes(data), np.uint8) if isinstance(data, bytes) else data.reshape(-1).view(np.uint8)
    )
    return types.Image(
        header=stamp_header(types, stamp, frame_id),
        height=height,
        width=width,
        encoding=encoding,
        is_bigendian=int(bigendian),
        step=width * 3 if step is None else step,
        data=types.uint8_array(buffer),
    )


def rgb_image(
    types: MessageTypes, stamp: int, rgb: np.ndarray | None = None, frame_id: str = FRAME_ID
) -> Any:
    rgb = good_rgb() if rgb is None else rgb
    return raw_image(
        types,
        stamp,
        "rgb8",
        rgb,
        width=rgb.shape[1],
        height=rgb.shape[0],
        step=rgb.shape[1] * 3,
        frame_id=frame_id,
    )


def compressed(types: MessageTypes, stamp: int, fmt: str, data: bytes) -> Any:
    return types.CompressedImage(
        header=stamp_header(types, stamp, FRAME_ID), format=fmt, data=np.frombuffer(data, np.uint8).copy()
    )


def _encoded(ext: str) -> bytes:
    ok, buffer = cv2.imencode(ext, cv2.cvtColor(good_rgb(), cv2.COLOR_RGB2BGR))
    assert ok
    return buffer.tobytes()


def _corrupt_middle(data: bytes) -> bytes:
    """The same length, with the entropy-coded middle overwritten (headers and end marker kept)."""
    out = bytearray(data)
    start, stop = len(out) // 4, len(out) * 3 // 4
    out[start:stop] = bytes(range(256)) * ((stop - start) // 256) + bytes((stop - start) % 256)
    return bytes(out)


def _with_info(make_image: Callable[[MessageTypes, int], Any], **info: Any) -> Callable[..., Any]:
    """A frame builder: ``make_image(types, stamp)`` with a camera_info (``info`` overrides its fields)."""

    def build(types: MessageTypes, stamp: int) -> tuple[Any, Any]:
        return make_image(types, stamp), (
            None if info.get("missing") else _info_variant(types, stamp, **info)
        )

    return build


def _info_variant(
    types: MessageTypes,
    stamp: int,
    *,
    K: np.ndarray = K,
    width: int = W,
    height: int = H,
    frame_id: str = FRAME_ID,
    P_zero: bool = False,
    missing: bool = False,
) -> Any:
    info = camera_info(types, stamp, K, width, height, frame_id)
    if P_zero:
        info.p = np.zeros(12)
    return info


def _mono16_bigendian(types: MessageTypes, stamp: int) -> Any:
    gray = (good_rgb()[:, :, 0].astype(np.uint16) << 8) | 0x5A  # the low byte must be dropped
    return raw_image(types, stamp, "mono16", gray.astype(">u2").tobytes(), step=W * 2, bigendian=True)


def _rgb_is(expected: np.ndarray) -> Callable[[Any], bool]:
    return lambda outputs: bool(np.array_equal(outputs.rgb, expected))


def _depth_image(
    types: MessageTypes, stamp: int, values: np.ndarray, encoding: str = "32FC1", bigendian: bool = False
) -> Any:
    dtype = {"32FC1": "f4", "16UC1": "u2"}.get(encoding, "f4")
    data = values.astype((">" if bigendian else "<") + dtype).tobytes()
    itemsize = 4 if dtype == "f4" else 2
    return raw_image(
        types,
        stamp,
        encoding,
        data,
        width=values.shape[1],
        height=values.shape[0],
        step=values.shape[1] * itemsize,
        bigendian=bigendian,
    )


def _float_depth_with_invalid() -> np.ndarray:
    depth = np.full((H, W), 10.0, np.float32)
    depth[0, :4] = [np.nan, np.inf, -np.inf, -3.0]
    depth[1, 0] = 0.0
    return depth


def _invalid_become_nan(depth: np.ndarray) -> bool:
    return bool(np.isnan(depth[0, :4]).all() and np.isnan(depth[1, 0]) and (depth[2:] == 10.0).all())


def _sequence(*offsets_ns: int, same_image: bool = True) -> Callable[..., list[tuple[Any, Any]]]:
    """Frames at ``stamp + offset`` each (the last frame is the one the case is about)."""

    def build(types: MessageTypes, stamp: int) -> list[tuple[Any, Any]]:
        return [(rgb_image(types, stamp + dt), camera_info(types, stamp + dt)) for dt in offsets_ns]

    return build


# --- model, bag and training data builders ---------------------------------------------------------
def _model(name: str) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        from onnx_models import bad_model_files  # test/onnx_models.py: real (broken) ONNX files

        return bad_model_files(folder)[name]

    return build


def write_camera_bag(
    folder: Path,
    types: MessageTypes,
    frames: list[tuple[Any, Any]],
    *,
    image_type: str = "sensor_msgs/msg/Image",
    extra: Callable[[Any], None] | None = None,
    storage: str = "sqlite3",
) -> Path:
    """A rosbag2 with /camera/image_raw and /camera/camera_info (each frame's info just before it)."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    typestore = get_typestore(Stores.ROS2_HUMBLE)
    plugin = StoragePlugin.SQLITE3 if storage == "sqlite3" else StoragePlugin.MCAP
    with Writer(folder, version=8, storage_plugin=plugin) as writer:
        image_conn = writer.add_connection("/camera/image_raw", image_type, typestore=typestore)
        info_conn = writer.add_connection(
            "/camera/camera_info", "sensor_msgs/msg/CameraInfo", typestore=typestore
        )
        for k, (image, info) in enumerate(frames):
            t = 1_000_000_000 + k * FRAME_NS
            if info is not None:
                writer.write(info_conn, t, typestore.serialize_cdr(info, "sensor_msgs/msg/CameraInfo"))
            writer.write(image_conn, t + 1, typestore.serialize_cdr(image, image_type))
        if extra is not None:
            extra(writer)
    return folder


def _good_frames(types: MessageTypes, count: int = 3) -> list[tuple[Any, Any]]:
    stamps = [1_000_000_000 + k * FRAME_NS for k in range(count)]
    return [(rgb_image(types, t), camera_info(types, t)) for t in stamps]


def _bag_zero_messages(folder: Path, types: MessageTypes) -> Path:
    return write_camera_bag(folder, types, [])


def _bag_unknown_type(folder: Path, types: MessageTypes) -> Path:
    """The camera topic holds a message type nobody knows: not in any typestore, no definition in the bag."""
    from rosbags.rosbag2 import Writer

    with Writer(folder, version=8) as writer:
        conn = writer.add_connection(
            "/camera/image_raw", "acme_msgs/msg/Frame", msgdef="", rihs01="RIHS01_" + "0" * 64
        )
        writer.write(conn, 1_000_000_000, bytes(12))
    return folder


def _bag_mixed_types(folder: Path, types: MessageTypes) -> Path:
    """/camera/image_raw recorded twice: once as Image, once as CompressedImage."""
    from rosbags.typesys import Stores, get_typestore

    typestore = get_typestore(Stores.ROS2_HUMBLE)

    def add_compressed(writer: Any) -> None:
        conn = writer.add_connection(
            "/camera/image_raw", "sensor_msgs/msg/CompressedImage", typestore=typestore
        )
        msg = compressed(types, 2_000_000_000, "jpeg", _encoded(".jpg"))
        writer.write(conn, 2_000_000_000, typestore.serialize_cdr(msg, "sensor_msgs/msg/CompressedImage"))

    return write_camera_bag(folder, types, _good_frames(types), extra=add_compressed)


def _bag_truncated_database(folder: Path, types: MessageTypes) -> Path:
    write_camera_bag(folder, types, _good_frames(types, 6))
    database = next(folder.glob("*.db3"))
    data = database.read_bytes()
    database.write_bytes(data[: len(data) // 3])
    return folder


def _bag_garbage_database(folder: Path, types: MessageTypes) -> Path:
    write_camera_bag(folder, types, _good_frames(types))
    database = next(folder.glob("*.db3"))
    database.write_bytes(
        np.random.default_rng(0).integers(0, 256, database.stat().st_size, np.uint8).tobytes()
    )
    return folder


def _bag_no_camera_info(folder: Path, types: MessageTypes) -> Path:
    return write_camera_bag(folder, types, [(image, None) for image, _ in _good_frames(types)])


def _bag_corrupt_message(folder: Path, types: MessageTypes) -> Path:
    """A camera message whose CDR bytes were cut short on disk (the row is there, its data broken)."""
    write_camera_bag(folder, types, _good_frames(types))
    database = next(folder.glob("*.db3"))
    with sqlite3.connect(database) as db:
        topic_id = db.execute("SELECT id FROM topics WHERE name='/camera/image_raw'").fetchone()[0]
        db.execute("UPDATE messages SET data=substr(data, 1, 40) WHERE topic_id=?", (topic_id,))
    return folder


def _kitti_drive(folder: Path, damage: Callable[[Path], None]) -> Path:
    """A small synthetic KITTI raw drive (the real layout), then ``damage`` applied to its folder."""
    from depth_node.data import kitti
    from depth_node.data.sim.world import SyntheticDrive, WorldConfig

    root = folder / "kitti"
    drive = SyntheticDrive(WorldConfig(seed=3, num_frames=4, width=64, height=32))
    drive_dir = kitti.write_drive(drive, root, drive_number=1)
    damage(drive_dir)
    return root


def _truncate_first_image(drive_dir: Path) -> None:
    image = sorted((drive_dir / "image_02" / "data").iterdir())[1]
    image.write_bytes(image.read_bytes()[:100])


def _garbage_first_image(drive_dir: Path) -> None:
    image = sorted((drive_dir / "image_02" / "data").iterdir())[1]
    image.write_bytes(bytes(range(256)) * 4)


def _no_calibration(drive_dir: Path) -> None:
    (drive_dir.parent / "calib_cam_to_cam.txt").unlink()


def _calibration_without_P(drive_dir: Path) -> None:
    calib = drive_dir.parent / "calib_cam_to_cam.txt"
    calib.write_text(
        "\n".join(line for line in calib.read_text().splitlines() if not line.startswith("P_rect_02"))
    )


# --- the corpus -------------------------------------------------------------------------------------
def _frame(name: str, kind: str, expect: str, build: Callable[..., Any], **kwargs: Any) -> BadInput:
    return BadInput(name, kind, "frame", expect, build, **kwargs)


BAD_MODEL_KINDS = (
    "empty",
    "directory",
    "garbage",
    "truncated",
    "initializer without data",
    "wrong input rank",
    "channels-last input",
    "wrong output rank",
    "half-size depth output",
    "wrong channel count",
    "wrong input name",
    "no depth output",
    "no metadata",
    "missing metadata keys",
    "bad metadata value",
    "negative metadata value",
    "inconsistent metadata",
    "min_depth not below max_depth",
    "huge input size",
    "metadata not UTF-8",
    "external data outside its folder",
    "external data at an absolute path",
    "external data missing",
)
_UNSUPPORTED_ENCODINGS = ("yuv422", "bayer_rggb8", "8UC3", "16SC1", "32FC3", "64FC1", "", "RGB8")

CASES: tuple[BadInput, ...] = (
    # Image encodings the runtime does not read, and depth encodings that are no camera image
    *(
        _frame(
            f"encoding {enc!r}",
            "unsupported encoding",
            "bad_encoding",
            _with_info(lambda t, s, enc=enc: raw_image(t, s, enc, np.zeros(W * H * 4, np.uint8), step=W * 4)),
        )
        for enc in _UNSUPPORTED_ENCODINGS
    ),
    _frame(
        "32FC1 depth as the camera image",
        "unsupported encoding",
        "bad_encoding",
        _with_info(lambda t, s: _depth_image(t, s, np.ones((H, W), np.float32))),
    ),
    # Image sizes and layouts
    _frame(
        "zero width",
        "image size",
        "bad_image",
        _with_info(lambda t, s: raw_image(t, s, "rgb8", b"", width=0)),
    ),
    _frame(
        "zero height",
        "image size",
        "bad_image",
        _with_info(lambda t, s: raw_image(t, s, "rgb8", b"", height=0)),
    ),
    _frame(
        "1x1 image",
        "image size",
        "bad_image",
        _with_info(lambda t, s: rgb_image(t, s, good_rgb(1, 1)), width=1, height=1),
    ),
    _frame(
        "8000x8000 image",
        "image size",
        "ok",
        _with_info(
            lambda t, s: rgb_image(t, s, np.full((8000, 8000, 3), 90, np.uint8)),
            width=8000,
            height=8000,
            K=np.array([[5000.0, 0, 3999.5], [0, 5000.0, 3999.5], [0, 0, 1]]),
        ),
        check=lambda out: out.image.width * out.image.height > 0 and out.rgb.shape == (8000, 8000, 3),
        in_bag=False,
    ),
    _frame(
        "step smaller than a row",
        "image layout",
        "bad_image",
        _with_info(lambda t, s: raw_image(t, s, "rgb8", good_rgb(), step=W * 3 - 3)),
    ),
    _frame(
        "step not a multiple of the pixel size (mono16, odd step)",
        "image layout",
        "ok",
        _with_info(
            lambda t, s: raw_image(
                t,
                s,
                "mono16",
                np.pad(np.full((H, W), 0x4000, "<u2").view(np.uint8), ((0, 0), (0, 1))),
                step=W * 2 + 1,
            )
        ),
        check=lambda out: bool((out.rgb == 0x40).all()),
    ),
    _frame(
        "padded rows (step > row)",
        "image layout",
        "ok",
        _with_info(
            lambda t, s: raw_image(
                t, s, "rgb8", np.pad(good_rgb(), ((0, 0), (0, 4), (0, 0))), step=(W + 4) * 3
            )
        ),
        check=_rgb_is(good_rgb()),
    ),
    _frame(
        "data shorter than step*height",
        "image layout",
        "bad_image",
        _with_info(lambda t, s: raw_image(t, s, "rgb8", good_rgb().reshape(-1)[:-1])),
    ),
    _frame(
        "data longer than step*height",
        "image layout",
        "bad_image",
        _with_info(
            lambda t, s: raw_image(
                t, s, "rgb8", np.concatenate([good_rgb().reshape(-1), np.zeros(7, np.uint8)])
            )
        ),
    ),
    _frame("empty data", "image layout", "bad_image", _with_info(lambda t, s: raw_image(t, s, "rgb8", b""))),
    _frame(
        "big-endian mono16",
        "byte order",
        "ok",
        _with_info(_mono16_bigendian),
        check=lambda out: bool((out.rgb[:, :, 0] == good_rgb()[:, :, 0]).all()),
    ),
    _frame(
        "bgr8 is swapped to RGB",
        "byte order",
        "ok",
        _with_info(lambda t, s: raw_image(t, s, "bgr8", good_rgb()[:, :, ::-1].copy())),
        check=_rgb_is(good_rgb()),
    ),
    # CompressedImage
    _frame(
        "truncated JPEG",
        "compressed image",
        "bad_encoding",
        _with_info(lambda t, s: compressed(t, s, "rgb8; jpeg compressed bgr8", _encoded(".jpg")[:-200])),
    ),
    _frame(
        "corrupt JPEG",
        "compressed image",
        "bad_encoding",
        _with_info(lambda t, s: compressed(t, s, "jpeg", _corrupt_middle(_encoded(".jpg")))),
    ),
    _frame(
        "truncated PNG",
        "compressed image",
        "bad_encoding",
        _with_info(lambda t, s: compressed(t, s, "png", _encoded(".png")[:-30])),
    ),
    _frame(
        "garbage bytes as JPEG",
        "compressed image",
        "bad_encoding",
        _with_info(lambda t, s: compressed(t, s, "jpeg", bytes(range(256)) * 8)),
    ),
    _frame(
        "empty CompressedImage",
        "compressed image",
        "bad_encoding",
        _with_info(lambda t, s: compressed(t, s, "jpeg", b"")),
    ),
    _frame(
        "unknown compression format",
        "compressed image",
        "bad_encoding",
        _with_info(lambda t, s: compressed(t, s, "webp", _encoded(".png"))),
    ),
    _frame(
        "compressedDepth format",
        "compressed image",
        "bad_encoding",
        _with_info(lambda t, s: compressed(t, s, "16UC1; compressedDepth png", _encoded(".png"))),
    ),
    # CameraInfo
    _frame("camera_info missing", "camera_info", "no_camera_info", _with_info(rgb_image, missing=True)),
    _frame("all-zero K", "camera_info", "bad_camera_info", _with_info(rgb_image, K=np.zeros((3, 3)))),
    _frame(
        "negative focal length",
        "camera_info",
        "bad_camera_info",
        _with_info(rgb_image, K=np.diag([-60.0, 60.0, 1.0])),
    ),
    _frame("NaN focal length", "camera_info", "nan", _with_info(rgb_image, K=np.diag([np.nan, 60.0, 1.0]))),
    _frame(
        "infinite principal point",
        "camera_info",
        "nan",
        _with_info(rgb_image, K=np.array([[60.0, 0, np.inf], [0, 60.0, 15.5], [0, 0, 1]])),
    ),
    _frame(
        "camera_info for another size",
        "camera_info",
        "size_mismatch",
        _with_info(rgb_image, width=2 * W, height=2 * H),
    ),
    _frame("P all zero", "camera_info", "bad_camera_info", _with_info(rgb_image, P_zero=True)),
    _frame(
        "camera_info from another frame",
        "camera_info",
        "frame_mismatch",
        _with_info(rgb_image, frame_id="other_camera_optical"),
    ),
    _frame(
        "camera_info size unset (0x0)",
        "camera_info",
        "ok",
        _with_info(rgb_image, width=0, height=0),
        check=lambda out: (out.camera_info.width, out.camera_info.height) != (0, 0),
    ),
    # Stamps
    BadInput("stamp repeated", "stamps", "stamps", "duplicate_stamp", _sequence(0, FRAME_NS, FRAME_NS)),
    BadInput(
        "stamp going backwards", "stamps", "stamps", "backwards_stamp", _sequence(0, FRAME_NS, -5 * FRAME_NS)
    ),
    BadInput(
        "stamp jumping by hours", "stamps", "stamps", "time_jump", _sequence(0, FRAME_NS, 3 * 3600 * 10**9)
    ),
    BadInput(
        "stamp zero (unset)",
        "stamps",
        "stamps",
        "ok",
        lambda t, s: [(rgb_image(t, 0), camera_info(t, 0))] * 2,
    ),
    # Ground truth depth images (the replay and the eval node read these)
    BadInput(
        "NaN, inf, negative and zero in 32FC1 ground truth",
        "ground truth",
        "ground_truth",
        "ok",
        lambda t, s: _depth_image(t, s, _float_depth_with_invalid()),
        check=_invalid_become_nan,
    ),
    BadInput(
        "big-endian 16UC1 ground truth",
        "ground truth",
        "ground_truth",
        "ok",
        lambda t, s: _depth_image(t, s, np.full((H, W), 12345, np.float32), "16UC1", bigendian=True),
        check=lambda depth: bool(np.allclose(depth, 12.345)),
    ),
    BadInput("rgb8 as ground truth", "ground truth", "ground_truth", "error", lambda t, s: rgb_image(t, s)),
    BadInput(
        "ground truth data shorter than step*height",
        "ground truth",
        "ground_truth",
        "error",
        lambda t, s: raw_image(t, s, "32FC1", b"\0" * 10, step=W * 4),
    ),
    # Model files (test/onnx_models.py writes each: real ONNX files, broken one way each)
    *(BadInput(f"model: {name}", "model file", "model", "error", _model(name)) for name in BAD_MODEL_KINDS),
    # Bags
    BadInput("bag with zero messages", "bag", "bag", "error", _bag_zero_messages),
    BadInput("bag with an unknown message type", "bag", "bag", "error", _bag_unknown_type),
    BadInput("topic recorded with two types", "bag", "bag", "error", _bag_mixed_types),
    BadInput("truncated bag database", "bag", "bag", "error", _bag_truncated_database),
    BadInput("bag database of garbage", "bag", "bag", "error", _bag_garbage_database),
    BadInput("bag without camera_info", "bag", "bag", "error", _bag_no_camera_info),
    BadInput("camera message cut short in the bag", "bag", "bag", "error", _bag_corrupt_message),
    # Training data on disk (KITTI raw layout)
    BadInput(
        "KITTI image truncated",
        "training data",
        "training_data",
        "error",
        lambda folder: _kitti_drive(folder, _truncate_first_image),
    ),
    BadInput(
        "KITTI image of garbage",
        "training data",
        "training_data",
        "error",
        lambda folder: _kitti_drive(folder, _garbage_first_image),
    ),
    BadInput(
        "KITTI calibration missing",
        "training data",
        "training_data",
        "error",
        lambda folder: _kitti_drive(folder, _no_calibration),
    ),
    BadInput(
        "KITTI calibration without P_rect_02",
        "training data",
        "training_data",
        "error",
        lambda folder: _kitti_drive(folder, _calibration_without_P),
    ),
)


def cases(target: str) -> list[BadInput]:
    """The corpus cases fed to ``target``."""
    return [case for case in CASES if case.target == target]


def case_id(case: BadInput) -> str:
    return case.name
