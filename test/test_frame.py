"""The one per-frame path (runtime/frame.py): outputs for a good frame, a named drop for each bad one.

Real messages (rosbags classes), a real ONNX Runtime session on a tiny linear model; the node and the
replay call exactly this, so what is asserted here holds for both.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import cv2
import numpy as np
import pytest
from onnx_models import make_linear_depth_model, make_two_frame_model

from depth_node.runtime.background import BackgroundThread
from depth_node.runtime.conversions import image_msg_to_depth, numpy_to_image
from depth_node.runtime.errors import ModelLoadError
from depth_node.runtime.frame import (
    DROP_REASONS,
    END_TO_END,
    QUEUED,
    FinishThread,
    FrameDrop,
    FrameOutputs,
    FramePath,
)
from depth_node.runtime.message_types import rosbags_types, stamp_header, stamp_ns
from depth_node.runtime.messages import camera_info_from_K
from depth_node.runtime.parameters import validate_parameters
from depth_node.runtime.pointcloud import pointcloud2_to_array

TYPES = rosbags_types()
W, H = 64, 24
K = np.array([[40.0, 0.0, 31.5], [0.0, 40.0, 11.5], [0.0, 0.0, 1.0]])
HEADER = stamp_header(TYPES, 1_700_000_000_123_456_789, "camera_optical")
_FRAME_NUMBER = itertools.count(1)


def _next_header() -> object:
    """Each camera frame its own stamp (10 Hz), as a camera sends them: a repeated one is dropped."""
    return stamp_header(TYPES, stamp_ns(HEADER) + next(_FRAME_NUMBER) * 100_000_000, "camera_optical")


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_linear_depth_model(tmp_path_factory.mktemp("frame") / "linear.onnx", 12, 16, a=2.0, b=30.0)


def _path(model: Path, **params: object) -> tuple[FramePath, object]:
    settings = validate_parameters({"model_path": str(model), "providers": ["cpu"], **params})
    return FramePath.from_settings(settings, TYPES), settings


def _image(rgb: np.ndarray | None = None, header: object | None = None) -> object:
    rgb = np.full((H, W, 3), 100, np.uint8) if rgb is None else rgb
    return numpy_to_image(rgb, "rgb8", header or _next_header(), TYPES)


def _info(K: np.ndarray = K, width: int = W, height: int = H) -> object:
    return camera_info_from_K(K, width, height, HEADER, TYPES)


def test_a_good_frame_gives_every_output_with_the_input_header(model: Path) -> None:
    path, settings = _path(model)
    out = path.process(_image(header=HEADER), _info(), settings, cloud=True)
    assert isinstance(out, FrameOutputs)
    for message in (out.image, out.camera_info, out.points):
        assert stamp_ns(message.header) == stamp_ns(HEADER) and message.header.frame_id == "camera_optical"
    depth = image_msg_to_depth(out.image)
    # Defaults: the 64x24 camera is 8x the model's 16x12 pixels, so the depth image is the camera
    # binned 2x2 (auto) and the cloud every pixel of it (auto stride 1: 2x the model's points).
    assert depth.shape == (H // 2, W // 2) and np.allclose(depth, 2.0 + 30.0 * 100 / 255, rtol=1e-4)
    assert (out.camera_info.width, out.camera_info.height) == (W // 2, H // 2)
    assert (out.points.height, out.points.width) == (H // 2, W // 2)
    assert out.rgb.shape == (H, W, 3)
    stages = {
        "decode",
        "preprocess",
        "inference",
        "scale",
        "postprocess",
        "build_outputs",
        QUEUED,
        END_TO_END,
    }
    assert set(out.timings) == stages
    assert out.timings[END_TO_END] >= sum(v for k, v in out.timings.items() if k != END_TO_END) * 0.999


def test_settings_are_read_per_frame(model: Path) -> None:
    path, settings = _path(model)
    assert path.process(_image(), _info(), settings, cloud=False).points is None
    mm = validate_parameters({"model_path": str(model), "providers": ["cpu"], "depth_encoding": "16UC1"})
    out = path.process(_image(), _info(), mm, cloud=False)
    assert out.image.encoding == "16UC1"


def _bad_cases() -> list[tuple[str, str, dict]]:
    rgb = np.full((H, W, 3), 100, np.uint8)
    _, jpeg = cv2.imencode(".jpg", rgb)
    return [
        ("no camera_info", "no_camera_info", {"info": None}),
        (
            "unsupported encoding",
            "bad_encoding",
            {
                "image": TYPES.Image(
                    header=HEADER,
                    height=H,
                    width=W,
                    encoding="yuv422",
                    is_bigendian=0,
                    step=W * 2,
                    data=np.zeros(H * W * 2, np.uint8),
                )
            },
        ),
        (
            "undecodable JPEG",
            "bad_encoding",
            {"image": TYPES.CompressedImage(header=HEADER, format="jpeg", data=jpeg.reshape(-1)[:40].copy())},
        ),
        (
            "data shorter than step*height",
            "bad_image",
            {
                "image": TYPES.Image(
                    header=HEADER,
                    height=H,
                    width=W,
                    encoding="rgb8",
                    is_bigendian=0,
                    step=W * 3,
                    data=np.zeros(10, np.uint8),
                )
            },
        ),
        ("camera_info for another size", "size_mismatch", {"info": _info(K, 2 * W, 2 * H)}),
        ("NaN in K", "nan", {"info": _info(np.full((3, 3), np.nan))}),
        ("uncalibrated K", "bad_camera_info", {"info": _info(np.zeros((3, 3)))}),
        ("negative focal length", "bad_camera_info", {"info": _info(np.diag([-40.0, 40.0, 1.0]))}),
    ]


@pytest.mark.parametrize(("case", "reason", "change"), _bad_cases(), ids=[c[0] for c in _bad_cases()])
def test_each_bad_frame_is_a_named_drop(model: Path, case: str, reason: str, change: dict) -> None:
    path, settings = _path(model)
    image = change.get("image", _image())
    info = change["info"] if "info" in change else _info()
    out = path.process(image, info, settings, cloud=True)
    assert isinstance(out, FrameDrop), case
    assert out.reason == reason and out.reason in DROP_REASONS
    assert out.detail and "\n" not in out.detail


def test_a_model_without_valid_depth_is_a_nan_drop(tmp_path: Path) -> None:
    nan_model = make_linear_depth_model(tmp_path / "nan.onnx", 12, 16, a=float("nan"))
    path, settings = _path(nan_model)
    out = path.process(_image(), _info(), settings, cloud=True)
    assert isinstance(out, FrameDrop) and out.reason == "nan"


def test_a_crop_that_does_not_fit_is_a_size_mismatch(model: Path) -> None:
    path, settings = _path(model, crop=[0, 0, W, H])
    assert isinstance(path.process(_image(), _info(), settings, cloud=False), FrameOutputs)
    small = np.full((H // 2, W // 2, 3), 100, np.uint8)
    out = path.process(_image(small), _info(K, W // 2, H // 2), settings, cloud=False)
    assert isinstance(out, FrameDrop) and out.reason == "size_mismatch" and "crop" in out.detail


def test_an_unforeseen_failure_is_an_error_drop_not_an_exception(model: Path) -> None:
    path, settings = _path(model)

    def broken(batch: np.ndarray) -> np.ndarray:
        raise RuntimeError("device lost")

    path.estimator.infer = broken  # type: ignore[method-assign]
    out = path.process(_image(), _info(), settings, cloud=False)
    assert isinstance(out, FrameDrop) and out.reason == "error" and "RuntimeError: device lost" in out.detail


def test_from_settings_finds_the_model_as_the_node_does(model: Path, tmp_path: Path) -> None:
    settings = validate_parameters({"providers": ["cpu"]})
    assert FramePath.from_settings(settings, TYPES, model).estimator.model_path == model
    with pytest.raises(ModelLoadError, match="model file not found"):
        FramePath.from_settings(settings, TYPES, tmp_path / "missing.onnx")


def test_stamps_a_repeat_is_dropped_a_step_back_or_a_jump_restarts_the_temporal_state(model: Path) -> None:
    path, settings = _path(model, scale_mode="camera_height", camera_height=1.5)
    t0 = 1_700_000_000 * 10**9

    def frame(t: int) -> FrameOutputs | FrameDrop:
        return path.process(_image(header=stamp_header(TYPES, t, "camera_optical")), _info(), settings, False)

    resets = []
    for t in (t0, t0 + 10**8, t0 + 10**8, t0 + 5 * 10**7, t0 + 3600 * 10**9, t0 + 3600 * 10**9 + 10**8):
        out = frame(t)
        resets.append(out.reason if isinstance(out, FrameDrop) else out.reset)
    assert resets == [None, None, "duplicate_stamp", "backwards_stamp", "time_jump", None]
    # stamp 0 (a driver that sets none) cannot be ordered: never a duplicate, never a reset
    assert [frame(0).reset, frame(0).reset] == [None, None]


def _textured(width: int, height: int) -> np.ndarray:
    """A fixed frame with near and far (beyond max_range) parts, from integer arithmetic only."""
    v, u = np.mgrid[0:height, 0:width]
    channels = [(7 * u + 3 * v) % 256, (u * v // 5) % 256, (255 - 2 * v + u) % 256]
    return np.stack(channels, axis=-1).astype(np.uint8)


def test_depth_image_values_are_pinned(tmp_path: Path) -> None:
    """The published depth image of a fixed frame (resize_area to the model, linear upsampling, the
    range rule). Pinned before the cloud and pre/post-processing were sped up; re-pinned each time the
    shrink to the model changed steps (now a 2x halving, then INTER_AREA: this high-frequency texture
    moves by a few grey levels, x0.4 m each in this model, and so do the pixels near 80 m), the range
    rule unchanged."""
    model = make_linear_depth_model(tmp_path / "pin.onnx", 16, 40, a=2.0, b=100.0)
    width, height = 250, 90
    K_pin = np.array([[200.0, 0.0, width / 2 - 0.5], [0.0, 200.0, height / 2 - 0.5], [0.0, 0.0, 1.0]])
    path, settings = _path(model, output_resolution="camera")
    out = path.process(_image(_textured(width, height)), _info(K_pin, width, height), settings, cloud=True)
    depth = np.frombuffer(out.image.data, np.float32).reshape(height, width)
    assert np.isnan(depth).sum() == 398  # beyond max_range (80 m) or the model's max_depth
    assert np.nansum(depth.astype(np.float64)) == pytest.approx(1115671.2443990707, rel=1e-6)
    pinned = {
        (0, 0): 29.320262908935547,
        (10, 37): 23.000001907348633,
        (45, 124): 45.61775207519531,
        (89, 249): 52.718955993652344,
        (33, 201): 62.6583366394043,
        (70, 5): 47.60000228881836,
    }
    for (v, u), value in pinned.items():
        assert depth[v, u] == pytest.approx(value, rel=1e-6), (v, u)


@pytest.mark.parametrize("organized", [True, False])
def test_a_1920x1080_frame_gives_a_binned_depth_image_and_a_cloud_of_the_models_size(
    tmp_path: Path, organized: bool
) -> None:
    """Defaults (output_resolution and points_stride auto): a 320x96 model on a 1920x1080 camera
    publishes the camera image binned 4x4 (480x270, the input shrink's exact steps) with its K, and
    a cloud of every 2nd pixel of that (240x135 = 32400 points >= 320x96), not 2 million points;
    output_resolution camera keeps every camera pixel."""
    model = make_linear_depth_model(tmp_path / "m320.onnx", 96, 320, a=2.0, b=30.0)
    width, height = 1920, 1080
    K_hd = np.array([[1000.0, 0.0, 959.5], [0.0, 1000.0, 539.5], [0.0, 0.0, 1.0]])
    path, settings = _path(model, points_organized=organized)
    rgb = _textured(width, height)
    out = path.process(_image(rgb), _info(K_hd, width, height), settings, cloud=True)
    assert (out.image.width, out.image.height) == (480, 270)
    np.testing.assert_allclose(out.camera_info.k.reshape(3, 3), np.diag([0.25, 0.25, 1.0]) @ K_hd)
    halved = cv2.resize(rgb, (960, 540), interpolation=cv2.INTER_AREA)
    binned = cv2.resize(halved, (480, 270), interpolation=cv2.INTER_AREA)  # 4x4 block means
    np.testing.assert_array_equal(out.result.colour, binned)
    cloud = pointcloud2_to_array(out.points)
    depth = image_msg_to_depth(out.image)[::2, ::2]
    if organized:
        assert cloud.shape == (135, 240, 4)
    else:
        assert cloud.shape == (1, np.isfinite(depth).sum(), 4) and 0 < cloud.shape[1] <= 32400
    # colour from the binned camera pixels themselves
    kept = binned[::2, ::2].reshape(-1, 3)[np.isfinite(depth).reshape(-1) | organized]
    packed = (kept[:, 0].astype(np.uint32) << 16) | (kept[:, 1].astype(np.uint32) << 8) | kept[:, 2]
    np.testing.assert_array_equal(np.ascontiguousarray(cloud[..., 3]).view(np.uint32).reshape(-1), packed)
    camera, camera_settings = _path(model, output_resolution="camera", points_organized=organized)
    full = camera.process(_image(rgb), _info(K_hd, width, height), camera_settings, cloud=True)
    assert (full.image.width, full.image.height) == (width, height)
    if organized:
        assert (full.points.height, full.points.width) == (135, 240)  # every 8th camera pixel
    every_pixel = validate_parameters({"model_path": str(model), "providers": ["cpu"], "points_stride": 1})
    K_vga = np.array([[500.0, 0.0, 319.5], [0.0, 500.0, 95.5], [0.0, 0.0, 1.0]])
    vga = path.process(_image(rgb[:192, :640].copy()), _info(K_vga, 640, 192), every_pixel, cloud=True)
    # 640x192 is 4x the model's pixels: auto keeps the camera's size; stride 1: every pixel (auto: 2)
    assert (vga.points.height, vga.points.width) == (192, 640)


@pytest.mark.parametrize("resolution", ["auto", "camera", "model"])
def test_bgr_and_compressed_frames_give_exactly_the_rgb8_frames_outputs(model: Path, resolution: str) -> None:
    """bgr8 and PNG (which OpenCV decodes to BGR) have their channels swapped after the first shrink,
    not at camera size: the published messages are the same bytes as for the rgb8 frame. A 63x39
    camera is 13x the 16x12 model's pixels: auto bins it 3x3 (an odd step: the box filter's path)."""
    width, height = 63, 39
    rgb = _textured(width, height)
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    png = TYPES.CompressedImage(
        header=HEADER, format="bgr8; png compressed bgr8", data=cv2.imencode(".png", bgr)[1].reshape(-1)
    )
    messages = {
        "rgb8": numpy_to_image(rgb, "rgb8", HEADER, TYPES),
        "bgr8": numpy_to_image(bgr, "bgr8", HEADER, TYPES),
        "png": png,
    }
    outputs = {}
    for name, message in messages.items():
        path, settings = _path(model, output_resolution=resolution)
        outputs[name] = path.process(message, _info(K, width, height), settings, cloud=True)
        assert isinstance(outputs[name], FrameOutputs), outputs[name]
        np.testing.assert_array_equal(outputs[name].rgb, rgb)
    reference = outputs.pop("rgb8")
    if resolution == "auto":
        assert reference.result.colour.shape == (13, 21, 3)
    for name, out in outputs.items():
        assert out.bgr, name  # the swap was left to the pipeline
        np.testing.assert_array_equal(out.result.colour, reference.result.colour, err_msg=name)
        assert bytes(out.image.data) == bytes(reference.image.data), name
        assert bytes(out.points.data) == bytes(reference.points.data), name


def test_a_1920x1080_jpeg_is_decoded_at_a_quarter_for_the_same_outputs(tmp_path: Path) -> None:
    """A 1080p JPEG camera with a 320x96 model: libjpeg decodes it at 480x270, the grid the depth image
    is binned to anyway, and the outputs are those of the full decode (messages, K, sizes; depth to
    within the decoders' difference). The size check reads the JPEG's own size, not the decoded one."""
    model = make_linear_depth_model(tmp_path / "m320.onnx", 96, 320, a=2.0, b=30.0)
    width, height = 1920, 1080
    K_hd = np.array([[1000.0, 0.0, 959.5], [0.0, 1000.0, 539.5], [0.0, 0.0, 1.0]])
    smooth = cv2.GaussianBlur(_textured(width, height), (0, 0), 6)
    _, encoded = cv2.imencode(".jpg", smooth, [cv2.IMWRITE_JPEG_QUALITY, 90])
    header = _next_header()
    jpeg = TYPES.CompressedImage(header=header, format="bgr8; jpeg compressed bgr8", data=encoded.reshape(-1))
    reduced_path, settings = _path(model)
    full_path, full_settings = _path(model, jpeg_reduced_decode=False)
    reduced = reduced_path.process(jpeg, _info(K_hd, width, height), settings, cloud=True)
    full = full_path.process(jpeg, _info(K_hd, width, height), full_settings, cloud=True)
    assert (reduced.reduction, full.reduction) == (4, 1)
    assert reduced.camera_image.shape == (270, 480, 3) and full.camera_image.shape == (height, width, 3)
    assert reduced.result.input_size == full.result.input_size == (width, height)
    assert reduced.cropped_rgb().shape == (270, 480, 3)
    for a, b in ((reduced.camera_info, full.camera_info), (reduced.image, full.image)):
        assert (a.width, a.height) == (b.width, b.height) == (480, 270)
    np.testing.assert_array_equal(reduced.camera_info.k, full.camera_info.k)
    np.testing.assert_array_equal(reduced.camera_info.p, full.camera_info.p)
    assert (reduced.points.width, reduced.points.height) == (full.points.width, full.points.height)
    depth, full_depth = image_msg_to_depth(reduced.image), image_msg_to_depth(full.image)
    assert np.isfinite(depth).all() and np.abs(depth / full_depth - 1).mean() < 0.01
    # 1916x1080 (a reduced decode of 479x270) against a 1920x1080 camera_info: not silently accepted.
    _, narrow = cv2.imencode(".jpg", np.ascontiguousarray(smooth[:, :1916]))
    odd = TYPES.CompressedImage(header=_next_header(), format="jpeg", data=narrow.reshape(-1))
    drop = reduced_path.process(odd, _info(K_hd, width, height), settings, cloud=False)
    assert isinstance(drop, FrameDrop) and drop.reason == "size_mismatch" and "1916x1080" in drop.detail


@pytest.mark.parametrize("resolution", ["auto", "model"])
@pytest.mark.parametrize("frames", [1, 2])
def test_frames_prepared_ahead_and_finished_behind_come_out_as_one_at_a_time(
    tmp_path: Path, frames: int, resolution: str
) -> None:
    """The node's overlap (frame N+1 prepared on a :class:`BackgroundThread` and frame N-1 finished on a
    :class:`FinishThread` while frame N's network runs) changes no output: a stream with a repeated
    stamp, a step back and a time jump, with the ground-plane scale and, for a two-frame model, the
    previous frame, gives the messages of :meth:`FramePath.process` one frame at a time, in order.
    Also in the worst order the node allows: every frame prepared before any network runs, and frame
    N+1's network run in full before frame N's finish begins."""
    if frames == 2:
        model = make_two_frame_model(tmp_path / "two.onnx", a=2.0, b=10.0, c=20.0)
    else:
        model = make_linear_depth_model(tmp_path / "one.onnx", 12, 16, a=2.0, b=30.0)
    params = {"scale_mode": "camera_height", "camera_height": 1.5, "output_resolution": resolution}
    t0 = 1_700_000_000 * 10**9
    stamps = [t0, t0 + 10**8, t0 + 10**8, t0 + 5 * 10**7, t0 + 3600 * 10**9] + [
        t0 + 3600 * 10**9 + k * 10**8 for k in range(1, 6)
    ]
    rng = np.random.default_rng(3)
    messages = [
        _image(rng.integers(0, 256, (H, W, 3), dtype=np.uint8), stamp_header(TYPES, t, "camera_optical"))
        for t in stamps
    ]
    one_at_a_time, settings = _path(model, **params)
    expected = [one_at_a_time.process(m, _info(), settings, cloud=True) for m in messages]

    threaded, settings = _path(model, **params)
    got: dict[int, FrameOutputs | FrameDrop] = {}
    preparer = BackgroundThread("test_prepare")
    finisher: FinishThread[int] = FinishThread(threaded, got.__setitem__, _fail)
    ahead = preparer.submit(threaded.prepare, messages[0], _info(), settings)
    for index in range(len(messages)):
        prepared = ahead.result()
        if index + 1 < len(messages):
            ahead = preparer.submit(threaded.prepare, messages[index + 1], _info(), settings)
        started = prepared if isinstance(prepared, FrameDrop) else threaded.infer(prepared)
        if isinstance(started, FrameDrop):
            got[index] = started
        else:
            finisher.submit(started, True, index)
    finisher.close()
    preparer.close()
    assert sorted(got) == list(range(len(messages)))

    interleaved, settings = _path(model, **params)
    all_prepared = [interleaved.prepare(m, _info(), settings) for m in messages]
    worst: list[FrameOutputs | FrameDrop] = []
    waiting = None
    for prepared in [*all_prepared, None]:
        started = None if prepared is None else interleaved.infer(prepared)
        if waiting is not None:
            worst.append(interleaved.finish(waiting, True))
        waiting = None if isinstance(started, FrameDrop) else started
        if isinstance(started, FrameDrop):
            worst.append(started)

    for outputs in ([got[i] for i in range(len(messages))], worst):
        for index, (want, out) in enumerate(zip(expected, outputs, strict=True)):
            if isinstance(want, FrameDrop):
                assert out == want, index
                continue
            assert isinstance(out, FrameOutputs), (index, out)
            assert (out.reset, out.frame_mode) == (want.reset, want.frame_mode), index
            assert out.result.scale == want.result.scale, index
            assert bytes(out.image.data) == bytes(want.image.data), index
            assert bytes(out.points.data) == bytes(want.points.data), index
            np.testing.assert_array_equal(out.camera_info.p, want.camera_info.p)
    resets = [out.reset if isinstance(out, FrameOutputs) else out.reason for out in expected]
    assert resets[:5] == [None, None, "duplicate_stamp", "backwards_stamp", "time_jump"]
    if frames == 2:
        assert [out.frame_mode for out in expected if isinstance(out, FrameOutputs)][:5] == [
            "first", "two", "first", "first", "two"
        ]  # fmt: skip


def _fail(tag: object, error: Exception) -> None:
    raise AssertionError(f"frame {tag}: {error!r}")


def test_a_failing_delivery_is_reported_and_the_next_frames_still_come(model: Path) -> None:
    """A publish that raises (deliver) goes to on_error with its frame; the thread keeps finishing."""
    path, settings = _path(model)
    delivered: list[int] = []
    errors: list[tuple[int, str]] = []

    def deliver(index: int, outputs: FrameOutputs | FrameDrop) -> None:
        if index == 1:
            raise RuntimeError("publisher gone")
        delivered.append(index)

    finisher: FinishThread[int] = FinishThread(path, deliver, lambda i, e: errors.append((i, str(e))))
    for index in range(4):
        prepared = path.prepare(_image(), _info(), settings)
        started = prepared if isinstance(prepared, FrameDrop) else path.infer(prepared)
        assert not isinstance(started, FrameDrop)
        finisher.submit(started, False, index)
    finisher.close()  # delivers the frame still in progress
    assert delivered == [0, 2, 3] and errors == [(1, "publisher gone")]
