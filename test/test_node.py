"""The rclpy depth node, end to end: topics in, depth image + camera_info + cloud out.

Runs against the real rclpy where it imports, otherwise against the stand-in in
``test/rclpy_stand_in`` (real sensor_msgs classes from rosbags, an in-process graph). Only the
public rclpy API is used, so the same tests are meaningful on a ROS 2 machine (there with DDS, so
every wait below is a poll with a timeout, never a fixed count of spins).
"""

from __future__ import annotations

import contextlib
import gc
import os
import random
import signal
import threading
import time
import tracemalloc
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import cv2
import numpy as np
import pytest
from onnx_models import make_linear_depth_model, write_corrupt_model
from rclpy_stand_in import rclpy_or_stand_in

MODEL_H, MODEL_W = 32, 96
FRAME = "camera_optical"


@pytest.fixture(scope="module")
def ros():
    """rclpy (real or stand-in), the node module and the message classes, for this module only."""
    with rclpy_or_stand_in() as stand_in:
        import rclpy
        from builtin_interfaces.msg import Time
        from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.parameter import Parameter
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
        from std_msgs.msg import Header

        from depth_node.ros import node as node_module
        from depth_node.runtime.message_types import ros_types

        yield SimpleNamespace(
            stand_in=stand_in,
            rclpy=rclpy,
            node_module=node_module,
            Parameter=Parameter,
            Executor=SingleThreadedExecutor,
            QoSProfile=QoSProfile,
            Reliability=ReliabilityPolicy,
            Image=Image,
            CompressedImage=CompressedImage,
            CameraInfo=CameraInfo,
            PointCloud2=PointCloud2,
            DiagnosticArray=DiagnosticArray,
            DiagnosticStatus=DiagnosticStatus,
            Header=Header,
            Time=Time,
            types=ros_types(),
        )


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    return make_linear_depth_model(tmp_path_factory.mktemp("node_models") / "linear.onnx", MODEL_H, MODEL_W)


class Harness:
    """A started DepthNode plus a tester node that publishes camera topics and records outputs."""

    def __init__(
        self,
        ros,
        params: dict[str, Any],
        *,
        points: bool = True,
        compressed: bool = False,
        namespace: str | None = None,
        store: bool = True,
        lifecycle: bool = False,
    ) -> None:
        self.ros = ros
        domain = None if ros.stand_in else random.randint(100, 200)
        ros.rclpy.init(args=[], domain_id=domain)
        overrides = [ros.Parameter(name, value=value) for name, value in params.items()]
        kwargs = {"namespace": namespace} if namespace else {}
        if lifecycle:
            from depth_node.ros.lifecycle_node import DepthLifecycleNode

            self.node = DepthLifecycleNode(parameter_overrides=overrides, **kwargs)
        else:
            self.node = ros.node_module.DepthNode(parameter_overrides=overrides, **kwargs)
        self.tester = ros.rclpy.create_node("depth_node_tester")
        self.executor = ros.Executor()
        self.executor.add_node(self.node)
        self.executor.add_node(self.tester)
        self.received: dict[str, list] = {"image": [], "info": [], "points": [], "diagnostics": []}
        self.counts = dict.fromkeys(self.received, 0)
        self.store = store
        self.points = points
        prefix = f"/{namespace}" if namespace else ""
        self.image_pub = self.tester.create_publisher(
            ros.CompressedImage if compressed else ros.Image,
            "/camera/image_raw/compressed" if compressed else "/camera/image_raw",
            1,  # a reliable camera publisher (depth 1), as ros2 bag play offers by default
        )
        self.info_pub = self.tester.create_publisher(ros.CameraInfo, "/camera/camera_info", 1)
        reliable = ros.QoSProfile(depth=10, reliability=ros.Reliability.RELIABLE)  # rviz2's default
        self.tester.create_subscription(ros.Image, f"{prefix}/depth/image", self._recorder("image"), reliable)
        self.tester.create_subscription(
            ros.CameraInfo, f"{prefix}/depth/camera_info", self._recorder("info"), reliable
        )
        self.tester.create_subscription(
            ros.DiagnosticArray, "/diagnostics", self._recorder("diagnostics"), reliable
        )
        if points:
            self.tester.create_subscription(
                ros.PointCloud2, f"{prefix}/depth/points", self._recorder("points"), reliable
            )

    def start(self) -> Harness:
        self.node.start()
        # Real DDS needs discovery before the first sample counts; the stand-in is connected at once.
        self.spin_until(lambda: self.image_pub.get_subscription_count() > 0, "discovery")
        return self

    def _recorder(self, key: str):
        def record(msg) -> None:
            self.counts[key] += 1
            if self.store:
                self.received[key].append(msg)

        return record

    def spin_until(self, predicate, what: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            self.executor.spin_once(timeout_sec=0.01)

    def spin_for(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=0.01)

    def header(self, stamp_ns: int | None = None, frame_id: str = FRAME):
        stamp_ns = time.time_ns() if stamp_ns is None else stamp_ns
        return self.ros.Header(
            stamp=self.ros.Time(sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9), frame_id=frame_id
        )

    def send_info(self, K: np.ndarray, width: int, height: int) -> None:
        from depth_node.runtime.messages import camera_info_from_K

        self.info_pub.publish(camera_info_from_K(K, width, height, self.header(), self.ros.types))
        self.spin_until(lambda: self.node._camera_info is not None, "camera_info")

    def send_image(self, rgb: np.ndarray, encoding: str = "rgb8", stamp_ns: int | None = None, msg=None):
        from depth_node.runtime.conversions import numpy_to_image

        header = self.header(stamp_ns)
        if msg is None:
            msg = numpy_to_image(rgb, encoding, header, self.ros.types)
        before = self.node.stats.frames_in
        self.image_pub.publish(msg)
        self.spin_until(lambda: self.node.stats.frames_in > before, "the image to arrive")
        return header

    def settle(self, timeout: float = 10.0) -> None:
        """Wait until every arrived frame is published or dropped and its outputs are delivered."""

        def done() -> bool:
            stats = self.node.stats
            return stats.frames_out + sum(stats.dropped_by_reason.values()) == stats.frames_in

        self.spin_until(done, "the worker to finish", timeout)
        out = self.node.stats.frames_out
        self.spin_until(
            lambda: self.counts["image"] == self.counts["info"] == out, "outputs to arrive", timeout
        )
        if self.points and self.node.settings.publish_points:
            self.spin_until(lambda: self.counts["points"] == out, "clouds to arrive", timeout)

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        self.tester.destroy_node()
        self.ros.rclpy.try_shutdown()


@pytest.fixture
def harness(ros, model_path):
    created: list[Harness] = []

    def make(params: dict[str, Any] | None = None, **kwargs) -> Harness:
        merged = {"model_path": str(model_path), "providers": ["cpu"]}
        merged.update(params or {})
        created.append(Harness(ros, merged, **kwargs))
        return created[-1]

    yield make
    for h in created:
        h.close()


def _points_xyz(msg) -> np.ndarray:
    from depth_node.runtime.pointcloud import pointcloud2_to_array

    return pointcloud2_to_array(msg)


# --- the main path ------------------------------------------------------------------------------
def test_one_depth_image_camera_info_and_cloud_per_frame(ros, harness, sim_drive):
    h = harness().start()
    width, height = sim_drive.config.width, sim_drive.config.height
    h.send_info(sim_drive.K, width, height)
    stamps = []
    for frame in (sim_drive.frame(i) for i in range(4)):
        stamp_ns = 1_700_000_000_000_000_000 + int(frame.timestamp * 1e9)
        stamps.append(h.send_image(frame.image, stamp_ns=stamp_ns).stamp)
        h.settle()  # one frame at a time: none is superseded
    stats = h.node.stats
    assert (stats.frames_in, stats.frames_out) == (4, 4)
    for key in ("image", "info", "points"):
        assert len(h.received[key]) == 4, key
        for msg, stamp in zip(h.received[key], stamps):
            assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (stamp.sec, stamp.nanosec)
            assert msg.header.frame_id == FRAME

    image, info, cloud = h.received["image"][0], h.received["info"][0], h.received["points"][0]
    # Defaults: the 416x128 camera is 16x the 96x32 model's pixels, so the depth image is the camera
    # binned 4x4 (output_resolution auto), with K to match, and the cloud every pixel of it (auto
    # stride 1: 104x32 points, at least the model's).
    width, height = width // 4, height // 4
    assert (image.encoding, image.width, image.height) == ("32FC1", width, height)
    depth = np.frombuffer(bytes(image.data), dtype=np.float32).reshape(height, width)
    assert np.isfinite(depth).all() and (depth > 0).all()
    assert (info.width, info.height) == (width, height)
    np.testing.assert_allclose(np.asarray(info.k).reshape(3, 3), np.diag([0.25, 0.25, 1.0]) @ sim_drive.K)
    assert (cloud.height, cloud.width) == (32, 104)
    assert [f.name for f in cloud.fields] == ["x", "y", "z", "rgb"]
    xyz = _points_xyz(cloud)
    assert np.nanmax(xyz[..., 2]) <= 80.0 + 1e-3  # max_range keeps the cloud inside 80 m

    # Diagnostics from the 1 Hz timer (the next report after the frames).
    h.received["diagnostics"].clear()
    h.spin_until(lambda: h.received["diagnostics"], "diagnostics", timeout=3.0)
    status = h.received["diagnostics"][-1].status[0]
    values = {kv.key: kv.value for kv in status.values}
    assert values["frames out"] == "4" and values["provider"] == "CPUExecutionProvider"
    assert status.hardware_id == FRAME  # the camera it is about, not the ONNX provider
    assert values["model"] == "linear-test" and values["scale"] != "n/a"
    assert float(values["latency p50 (ms)"]) >= 0.0
    assert status.level in (ros.DiagnosticStatus.OK, ros.DiagnosticStatus.WARN)


def test_outputs_follow_namespace_encoding_and_resolution(harness):
    h = harness(
        {
            "depth_encoding": "16UC1",
            "output_resolution": "model",
            "points_stride": 2,
            "points_organized": False,
        },
        namespace="car",
    ).start()
    K = np.array([[200.0, 0, 96], [0, 200.0, 32], [0, 0, 1]])
    h.send_info(K, 192, 64)
    h.send_image(np.full((64, 192, 3), 128, np.uint8))
    h.settle()
    image, info, cloud = h.received["image"][0], h.received["info"][0], h.received["points"][0]
    assert (image.encoding, image.width, image.height) == ("16UC1", MODEL_W, MODEL_H)
    assert (info.width, info.height) == (MODEL_W, MODEL_H)
    np.testing.assert_allclose(
        np.asarray(info.k)[[0, 2, 4, 5]], [100.0, 48.0, 100.0, 16.0]
    )  # K at model size
    assert cloud.height == 1 and cloud.width == (MODEL_W // 2) * (MODEL_H // 2)  # unorganized, stride 2
    assert h.node._image_pub.topic_name == "/car/depth/image"


def test_compressed_input(harness):
    h = harness({"compressed": True}, compressed=True).start()
    K = np.array([[150.0, 0, 64], [0, 150.0, 24], [0, 0, 1]])
    h.send_info(K, 128, 48)
    rgb = np.zeros((48, 128, 3), np.uint8)
    rgb[:, :, 0] = 200
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    msg = h.ros.CompressedImage(
        header=h.header(), format="rgb8; jpeg compressed bgr8", data=h.ros.types.uint8_array(jpeg)
    )
    h.send_image(None, msg=msg)
    h.settle()
    assert len(h.received["image"]) == 1 and h.received["image"][0].width == 128


def test_cloud_is_built_only_while_someone_subscribes(ros, harness, monkeypatch):
    from depth_node.runtime.frame import FramePath

    calls: list[bool] = []
    real_finish = FramePath.finish

    def spy(self, frame, cloud):
        calls.append(cloud)
        return real_finish(self, frame, cloud)

    monkeypatch.setattr(FramePath, "finish", spy)
    h = harness(points=False).start()
    K = np.array([[100.0, 0, 48], [0, 100.0, 16], [0, 0, 1]])
    h.send_info(K, 96, 32)
    h.send_image(np.full((32, 96, 3), 90, np.uint8))
    h.settle()
    assert calls == [False] and h.counts["points"] == 0

    h.tester.create_subscription(ros.PointCloud2, "/depth/points", h._recorder("points"), 1)
    h.spin_until(lambda: h.node._points_pub.get_subscription_count() > 0, "cloud subscriber discovery")
    h.send_image(np.full((32, 96, 3), 90, np.uint8))
    h.settle()
    h.spin_until(lambda: h.counts["points"] == 1, "the cloud")
    assert calls == [False, True]

    h.node.set_parameters([ros.Parameter("publish_points", value=False)])  # writable at run time
    h.send_image(np.full((32, 96, 3), 90, np.uint8))
    h.settle()
    assert calls == [False, True, False]


# --- bad input ----------------------------------------------------------------------------------
def test_bad_frames_are_dropped_counted_and_not_fatal(ros, harness, tmp_path, capfd):
    h = harness().start()
    good = np.full((32, 96, 3), 120, np.uint8)
    for _ in range(3):
        h.send_image(good)  # no camera_info yet
    K = np.array([[100.0, 0, 48], [0, 100.0, 16], [0, 0, 1]])
    h.send_info(K, 96, 32)
    h.send_image(np.zeros((32, 96), np.float32), encoding="32FC1")  # a depth image is no camera image
    h.settle()  # one at a time, so none is superseded
    msg = ros.Image(
        header=h.header(),
        height=32,
        width=96,
        encoding="yuv422",
        is_bigendian=0,
        step=192,
        data=ros.types.uint8_array(np.zeros(32 * 192, np.uint8)),
    )
    h.send_image(None, msg=msg)  # unsupported encoding
    h.settle()  # one at a time, so none is superseded
    h.send_image(np.full((40, 96, 3), 120, np.uint8))  # camera_info says 96x32
    h.settle()  # one at a time, so none is superseded
    short = ros.Image(
        header=h.header(),
        height=32,
        width=96,
        encoding="rgb8",
        is_bigendian=0,
        step=288,
        data=ros.types.uint8_array(np.zeros(100, np.uint8)),
    )
    h.send_image(None, msg=short)  # data shorter than step * height
    h.settle()
    h.send_info(np.full((3, 3), np.nan), 96, 32)
    h.spin_until(lambda: np.isnan(h.node._camera_info.k[0]), "NaN camera_info")
    h.send_image(good)
    h.settle()
    h.send_info(np.zeros((3, 3)), 96, 32)  # an uncalibrated camera
    h.spin_until(lambda: h.node._camera_info.k[0] == 0, "zero camera_info")
    h.send_image(good)
    h.settle()
    h.send_info(K, 96, 32)
    h.spin_until(lambda: h.node._camera_info.k[0] == 100.0, "good camera_info")
    h.send_image(good)  # and the node still works
    h.settle()

    dropped = h.node.stats.dropped_by_reason
    assert dropped["no_camera_info"] == 3
    assert dropped["bad_encoding"] == 2
    assert dropped["size_mismatch"] == 1 and dropped["bad_image"] == 1
    assert dropped["nan"] == 1
    assert dropped["bad_camera_info"] == 1
    assert dropped["error"] == 0
    assert h.node.stats.frames_out == 1 and len(h.received["image"]) == 1

    summary = h.node.diagnostic_summary()
    assert summary.level == 1 and "dropping bad frames" in summary.message
    values = dict(summary.values)
    assert values["dropped: bad_encoding"] == "2" and values["dropped: no_camera_info"] == "3"

    err = capfd.readouterr().err
    assert err.count("waiting for camera_info") == 1  # said once, not per frame
    assert err.count("dropped frame (bad_encoding)") == 1  # throttled per reason
    assert "dropped frame (size_mismatch)" in err and "dropped frame (bad_image)" in err
    assert "dropped frame (nan)" in err
    assert "Traceback" not in err


def test_model_with_nan_output_is_dropped_as_nan(ros, harness, tmp_path):
    nan_model = make_linear_depth_model(tmp_path / "nan.onnx", MODEL_H, MODEL_W, a=float("nan"))
    h = harness({"model_path": str(nan_model)}).start()
    h.send_info(np.array([[100.0, 0, 48], [0, 100.0, 16], [0, 0, 1]]), 96, 32)
    h.send_image(np.full((32, 96, 3), 120, np.uint8))
    h.settle()
    assert h.node.stats.dropped_by_reason["nan"] == 1 and h.counts["image"] == 0


# --- load ---------------------------------------------------------------------------------------
def test_flood_drops_frames_keeps_latency_bounded_and_memory_flat(ros, harness):
    """Frames arrive three times faster than inference: two of three are superseded, none queue up."""
    h = harness(store=False).start()
    h.send_info(np.array([[100.0, 0, 96], [0, 100.0, 32], [0, 0, 1]]), 192, 64)
    # A model that finishes only when the test says so: the drop pattern is then exact, not timing.
    gate = threading.Semaphore(0)
    real_infer = h.node.pipeline.infer

    def gated_infer(*args, **kwargs):
        assert gate.acquire(timeout=10.0), "the test never released the model"
        return real_infer(*args, **kwargs)

    h.node.pipeline.infer = gated_infer
    frames = [np.full((64, 192, 3), v, np.uint8) for v in range(0, 250, 25)]
    sent = 0

    def settled() -> bool:
        """Every sent frame is published, dropped, in the network, or prepared and waiting for it
        (none on its way between two of those)."""
        snap = h.node.stats.snapshot()
        waiting = h.node._prepared._item is not None
        return snap.frames_in == snap.frames_out + snap.dropped + h.node._worker.busy + waiting

    def worker_holds_a_frame() -> bool:
        return h.node._worker.busy and h.node._prepared._item is None and settled()

    def send() -> None:
        nonlocal sent
        h.send_image(frames[sent % len(frames)])
        sent += 1

    send()
    h.spin_until(worker_holds_a_frame, "the worker to take the first frame")

    def cycles(n: int) -> None:
        for _ in range(n):
            for _ in range(3):  # the first is prepared and waits, the next two replace it
                send()
            h.spin_until(settled, "the prepare thread to be done with the three")
            published = h.node.stats.frames_out
            gate.release()  # the frame in inference is published; the newest waiting one is taken
            h.spin_until(lambda p=published: h.node.stats.frames_out > p, "a publication")
            h.spin_until(worker_holds_a_frame, "the worker to take the newest frame")

    cycles(10)  # warm-up: allocator pools, statistics buffers
    gc.collect()
    tracemalloc.start()
    try:
        cycles(5)
        gc.collect()
        baseline = tracemalloc.get_traced_memory()[0]
        cycles(50)
        gc.collect()
        growth = tracemalloc.get_traced_memory()[0] - baseline
    finally:
        tracemalloc.stop()
    gate.release()
    h.settle()

    snap = h.node.stats.snapshot()
    assert snap.frames_in == sent == 1 + 3 * 65
    assert snap.dropped_by_reason["superseded"] == 2 * 65
    assert snap.frames_out == 66 and snap.frames_out + snap.dropped == snap.frames_in
    h.spin_until(lambda: h.counts["points"] == 66, "the last cloud")
    assert h.counts["image"] == h.counts["info"] == 66
    # At most one frame in inference and one waiting: arrival -> publish stays within a cycle.
    assert snap.processing_p95 < 1.0, snap
    # A leak of anything per frame (the 37 kB input image per arriving frame, the 49 kB depth image
    # per published one) would add several MB over these 150 frames; one frame in flight is < 1 MB.
    assert growth < 2_500_000, f"traced memory grew by {growth} bytes over 150 frames"
    summary = h.node.diagnostic_summary()
    assert summary.level == 1 and "below the camera" in summary.message


# --- parameters and start-up --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"points_stride": -1}, "parameter points_stride: -1 is outside [0, 32]"),  # IntegerRange (rclpy)
        ({"min_range": 1}, "parameter min_range: 1 is not a float"),  # an int for a double (rclpy)
        ({"depth_encoding": "8UC1"}, "depth_encoding"),  # refused by the node's validation
        ({"min_range": 20.0, "max_range": 10.0}, "min_range"),
        ({"providers": ["npu"]}, "providers"),
        ({"model_path": "/nonexistent/model.onnx"}, "model file not found"),
    ],
)
def test_invalid_parameters_refuse_to_start(ros, harness, params, fragment):
    h = harness(params)
    with pytest.raises(ros.node_module.StartupError) as info:
        h.node.start()
    assert fragment in str(info.value) and "\n" not in str(info.value)
    assert h.node._worker is None  # nothing was started
    assert not any(t.name == "depth_inference" for t in threading.enumerate())


def test_unknown_parameters_are_named_in_a_warning(ros, harness, capfd):
    # rclpy ignores overrides that the node never declares: a typo would go unnoticed otherwise.
    h = harness({"points_strid": 4}).start()
    assert h.node.settings is not None and h.node.settings.points_stride == 0
    err = capfd.readouterr().err
    assert "ignoring parameter(s) points_strid: not parameters of this node" in err


def test_qos_overrides_are_honoured_per_topic(ros, harness, capfd):
    """rclpy's qos_overrides.<topic>.<entity>.<policy> replace the output_qos/input_qos defaults of
    that one topic; one for a topic the node does not have is named in a warning."""
    h = harness(
        {
            "qos_overrides./depth/points.publisher.depth": 9,
            "qos_overrides./depth/points.publisher.reliability": "best_effort",
            "qos_overrides./camera/image_raw.subscription.depth": 3,
            "qos_overrides./depth/pointz.publisher.depth": 2,
        }
    ).start()
    points, image = h.node._points_pub.qos_profile, h.node._image_pub.qos_profile
    assert points.depth == 9 and points.reliability == ros.Reliability.BEST_EFFORT
    assert image.depth == h.node.settings.output_depth and image.reliability == ros.Reliability.RELIABLE
    assert h.node._image_sub.qos_profile.depth == 3
    assert h.node.get_parameter("qos_overrides./depth/image.publisher.depth").value == 5  # declared
    err = capfd.readouterr().err
    assert "ignoring parameter(s) qos_overrides./depth/pointz.publisher.depth" in err


def test_a_bad_qos_override_refuses_to_start_with_one_line(ros, harness):
    h = harness({"qos_overrides./depth/image.publisher.reliability": "sometimes"})
    with pytest.raises(ros.node_module.StartupError) as error:
        h.start()
    assert "qos_overrides" in str(error.value) and "sometimes" in str(error.value)
    assert "\n" not in str(error.value)


def test_read_only_parameters_cannot_change_at_run_time(ros, harness):
    h = harness().start()
    (result,) = h.node.set_parameters([ros.Parameter("image_topic", value="/other")])
    assert not result.successful
    (result,) = h.node.set_parameters([ros.Parameter("min_range", value=500.0)])  # > max_range
    assert not result.successful and "min_range" in result.reason
    (result,) = h.node.set_parameters([ros.Parameter("points_stride", value=4)])
    assert result.successful and h.node.settings.points_stride == 4


def test_main_exits_non_zero_with_one_error_line_for_a_corrupt_model(ros, tmp_path, capfd):
    corrupt = write_corrupt_model(tmp_path / "corrupt.onnx")
    code = ros.node_module.main(["--ros-args", "-p", f"model_path:={corrupt}", "-p", "providers:=[cpu]"])
    err = capfd.readouterr().err
    assert code == 1
    errors = [line for line in err.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and "not a valid ONNX model" in errors[0], err
    assert "Traceback" not in err
    assert not ros.rclpy.ok()


def _as_node_message(ros, msg):
    """A rosbags message (the corpus's) as the node's class: the same class under the stand-in, CDR
    through rclpy's deserializer on a ROS machine (so a malformed message reaches the node as sent)."""
    if ros.stand_in:
        return msg
    from rclpy.serialization import deserialize_message
    from rosbags.typesys import Stores, get_typestore

    name = type(msg).__msgtype__
    cls = {
        "sensor_msgs/msg/Image": ros.Image,
        "sensor_msgs/msg/CompressedImage": ros.CompressedImage,
        "sensor_msgs/msg/CameraInfo": ros.CameraInfo,
    }[name]
    return deserialize_message(bytes(get_typestore(Stores.ROS2_HUMBLE).serialize_cdr(msg, name)), cls)


@pytest.mark.parametrize("compressed", [False, True], ids=["Image", "CompressedImage"])
def test_the_bad_input_corpus_through_the_node(ros, harness, tmp_path, compressed):
    """Every frame case of bad_inputs.py, one after the other into a running node: each counted under
    its reason (or published, for the good ones), the node alive and publishing afterwards."""
    from bad_inputs import camera_info, cases, rgb_image

    from depth_node.runtime.message_types import rosbags_types

    types = rosbags_types()
    model = make_linear_depth_model(tmp_path / "corpus.onnx", 16, 48)
    h = harness(
        {"model_path": str(model), "compressed": compressed}, compressed=compressed, store=False
    ).start()
    t0 = time.time_ns()
    corpus = [c for c in cases("frame") if hasattr(c.build(types, t0)[0], "format") == compressed]
    corpus.sort(key=lambda case: case.expect != "no_camera_info")  # before any camera_info arrives
    for k, case in enumerate(corpus):
        image, info = case.build(types, t0 + k * 10**8)
        if info is not None:
            before = h.node._camera_info
            h.info_pub.publish(_as_node_message(ros, info))
            h.spin_until(lambda before=before: h.node._camera_info is not before, "camera_info")
        stats = h.node.stats
        out_before, dropped_before = stats.frames_out, dict(stats.dropped_by_reason)
        before = h.node.stats.frames_in
        h.image_pub.publish(_as_node_message(ros, image))
        h.spin_until(lambda before=before: h.node.stats.frames_in > before, f"{case.name} to arrive", 60.0)
        h.settle(timeout=120.0)  # the 8000x8000 frame: 192 MB through CDR both ways, and its cloud
        changed = {
            r: n - dropped_before[r] for r, n in stats.dropped_by_reason.items() if n != dropped_before[r]
        }
        if case.expect == "ok":
            assert stats.frames_out == out_before + 1 and not changed, (case.name, changed)
        else:
            assert changed == {case.expect: 1} and stats.frames_out == out_before, (case.name, changed)
    assert h.node.stats.dropped_by_reason["error"] == 0
    if compressed:
        return
    stamp = t0 + len(corpus) * 10**8
    h.info_pub.publish(_as_node_message(ros, camera_info(types, stamp)))
    h.spin_until(lambda: h.node._camera_info.width == 96, "a good camera_info")
    out_before = h.node.stats.frames_out
    h.image_pub.publish(_as_node_message(ros, rgb_image(types, stamp)))
    h.spin_until(lambda: h.node.stats.frames_out == out_before + 1, "a good frame after the corpus")


def test_the_bad_model_corpus_through_the_node_is_one_error_line_each(ros, tmp_path, capfd):
    from bad_inputs import cases

    for case in cases("model"):
        path = case.build(tmp_path / "models")
        code = ros.node_module.main(["--ros-args", "-p", f"model_path:={path}", "-p", "providers:=[cpu]"])
        err = capfd.readouterr().err
        errors = [line for line in err.splitlines() if "ERROR" in line]
        assert code == 1 and len(errors) == 1 and path.name in errors[0], (case.name, err)
        assert "Traceback" not in err and not ros.rclpy.ok()


def test_the_ground_truth_corpus_through_the_eval_node(ros):
    """The corpus's ground-truth images into depth_eval_node: each bad one skipped and counted, the
    good ones (NaN/inf/negative pixels, big-endian 16UC1) paired with a depth image and scored."""
    from bad_inputs import cases

    from depth_node.ros.eval_node import DepthEvalNode
    from depth_node.runtime.message_types import rosbags_types

    types = rosbags_types()
    ros.rclpy.init(args=[], domain_id=None if ros.stand_in else random.randint(100, 200))
    node = DepthEvalNode()
    feeder = ros.rclpy.create_node("corpus_feeder")
    executor = ros.Executor()
    try:
        executor.add_node(node)
        executor.add_node(feeder)
        pub_depth = feeder.create_publisher(ros.Image, "/depth/image", 10)
        pub_gt = feeder.create_publisher(ros.Image, "/ground_truth/depth", 10)
        deadline = time.monotonic() + 10.0
        while min(pub_depth.get_subscription_count(), pub_gt.get_subscription_count()) == 0:
            assert time.monotonic() < deadline, "the evaluator never subscribed"
            executor.spin_once(timeout_sec=0.05)
        corpus = cases("ground_truth")
        t0 = 1_700_000_000 * 10**9
        for k, case in enumerate(corpus):
            truth = case.build(types, t0 + k * 10**8)
            depth = truth if case.expect == "ok" else corpus[0].build(types, t0 + k * 10**8)
            pub_depth.publish(_as_node_message(ros, depth))
            pub_gt.publish(_as_node_message(ros, truth))
        bad = sum(case.expect == "error" for case in corpus)
        good = len(corpus) - bad
        deadline = time.monotonic() + 10.0
        while node.bad_messages < bad or len(node.evaluator.frames) < good:
            assert time.monotonic() < deadline, (node.bad_messages, len(node.evaluator.frames))
            executor.spin_once(timeout_sec=0.05)
        executor.spin_once(timeout_sec=0.2)
        assert node.bad_messages == bad and len(node.evaluator.frames) == good
    finally:
        executor.shutdown()
        node.destroy_node()
        feeder.destroy_node()
        ros.rclpy.try_shutdown()


def test_the_managed_node_follows_its_lifecycle(ros, harness):
    """configure loads the model, activate subscribes and publishes, deactivate stops taking frames
    and keeps the model, cleanup frees it, shutdown ends it all."""
    from rclpy.lifecycle import TransitionCallbackReturn

    ok = TransitionCallbackReturn.SUCCESS
    h = harness(lifecycle=True)
    node = h.node
    K = np.array([[100.0, 0, 48], [0, 100.0, 16], [0, 0, 1]])
    rgb = np.full((32, 96, 3), 120, np.uint8)

    def subscribed() -> bool:
        return h.tester.count_subscribers("/camera/image_raw") > 0

    def one_frame() -> None:
        h.spin_until(subscribed, "the node's subscription")
        h.send_info(K, 96, 32)
        h.send_image(rgb)
        h.settle()

    assert node.estimator is None and not subscribed()
    assert node.trigger_configure() == ok
    estimator = node.estimator
    assert estimator is not None and not subscribed()  # configured: model loaded, no topics yet
    assert node.trigger_activate() == ok
    one_frame()
    assert node.stats.frames_out == 1 and h.counts["image"] == 1
    assert node.trigger_deactivate() == ok
    h.spin_until(lambda: not subscribed(), "the subscription to go")
    assert node.estimator is estimator  # deactivate keeps the model
    assert node.trigger_activate() == ok
    one_frame()
    assert node.stats.frames_out == 2
    assert node.trigger_deactivate() == ok and node.trigger_cleanup() == ok
    assert node.estimator is None
    assert node.trigger_configure() == ok and node.trigger_activate() == ok
    one_frame()
    assert node.stats.frames_out == 3
    assert node.trigger_shutdown() == ok and not subscribed() and node.estimator is None


def test_a_managed_node_that_cannot_configure_stays_unconfigured(ros, harness, tmp_path, capfd):
    from rclpy.lifecycle import TransitionCallbackReturn

    broken = harness({"model_path": str(tmp_path / "missing.onnx")}, lifecycle=True)
    assert broken.node.trigger_configure() == TransitionCallbackReturn.FAILURE
    assert broken.node._state_machine.current_state[1] == "unconfigured"
    errors = [line for line in capfd.readouterr().err.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and "missing.onnx" in errors[0]


@contextlib.contextmanager
def own_executor(ros, node):
    """An executor for a test's stand-in of rclpy.spin, instead of rclpy's global executor.

    After a SIGINT, rclpy's signal thread shuts the context down below Python, so the global
    executor (kept until a Python-level shutdown of its context) would stay bound to the dead
    context and break every later rclpy.spin_once in this test process.
    """
    executor = ros.Executor()
    executor.add_node(node)
    try:
        yield executor
    finally:
        executor.shutdown()


@pytest.fixture(autouse=True)
def sigint_handler_restored():
    """A node's main() ignores SIGINT once it shuts down (until the process ends, as a program must);
    in this test process the handler is put back after each test."""
    handler = signal.getsignal(signal.SIGINT)
    yield
    signal.signal(signal.SIGINT, handler)


@pytest.fixture
def sigint_raises():
    """SIGINT raises KeyboardInterrupt during the test, as in a terminal.

    A shell that starts a job in the background without job control (``cmd &`` in a script) makes it
    ignore SIGINT, and Python then keeps ignoring it: ``ctrl_c`` would do nothing and spin() would
    never end.
    """
    ignored = signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    if ignored:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    if ignored:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def ctrl_c(ros) -> None:
    """SIGINT to this process, as Ctrl-C in a terminal; re-raises the KeyboardInterrupt it causes.

    With the real rclpy it first waits until rclpy's deferred signal thread has shut the context
    down: in a test process that lives on, that thread would otherwise shut down a later test's
    context (a real node's process simply ends).
    """
    interrupted = False
    deadline = time.monotonic() + 5.0
    try:
        os.kill(os.getpid(), signal.SIGINT)
    except KeyboardInterrupt:
        interrupted = True
    while not ros.stand_in and time.monotonic() < deadline:
        try:
            if not ros.rclpy.ok():
                break
            time.sleep(0.01)
        except KeyboardInterrupt:
            interrupted = True
    if interrupted:
        raise KeyboardInterrupt


def test_main_stops_cleanly_on_ctrl_c(ros, model_path, monkeypatch, capfd, sigint_raises):
    def spin_then_interrupt(node, executor=None):
        with own_executor(ros, node) as own:
            deadline = time.monotonic() + 0.3
            while time.monotonic() < deadline:
                own.spin_once(timeout_sec=0.05)
            ctrl_c(ros)  # rclpy's handler (where real) shuts the context down: spin() ends
            own.spin()

    monkeypatch.setattr(ros.rclpy, "spin", spin_then_interrupt)
    code = ros.node_module.main(["--ros-args", "-p", f"model_path:={model_path}", "-p", "providers:=[cpu]"])
    err = capfd.readouterr().err
    assert code == 0
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert not any(t.name == "depth_inference" for t in threading.enumerate())  # the worker was joined
    assert not ros.rclpy.ok()


@pytest.mark.parametrize("which", ["depth", "eval"])
def test_a_refused_command_line_is_one_error_line(ros, capfd, which):
    """``-p image_topic:=`` (no value): rcl refuses it in rclpy.init; one line, exit 1, no traceback."""
    from depth_node.ros import eval_node

    main = ros.node_module.main if which == "depth" else eval_node.main
    code = main(["--ros-args", "-p", "image_topic:="])
    err = capfd.readouterr().err
    assert code == 1
    assert "Traceback" not in err
    ours = [line for line in err.splitlines() if "cannot start" in line]  # (real rcl logs its own line too)
    assert len(ours) == 1 and "ERROR" in ours[0] and "image_topic" in ours[0], err


def test_a_second_ctrl_c_during_shutdown_is_ignored(ros, model_path, monkeypatch, capfd, sigint_raises):
    """ros2 launch delivers Ctrl-C twice (the terminal's process group, then launch's forward): one
    arriving while the node destroys its publishers must not end it with a traceback."""

    def spin_then_interrupt(node, executor=None):
        with own_executor(ros, node) as own:
            ctrl_c(ros)
            own.spin()

    real_destroy = ros.node_module.DepthNode.destroy_node

    def destroy_with_second_sigint(self):
        os.kill(os.getpid(), signal.SIGINT)  # raises KeyboardInterrupt here unless ignored
        real_destroy(self)

    monkeypatch.setattr(ros.rclpy, "spin", spin_then_interrupt)
    monkeypatch.setattr(ros.node_module.DepthNode, "destroy_node", destroy_with_second_sigint)
    code = ros.node_module.main(["--ros-args", "-p", f"model_path:={model_path}", "-p", "providers:=[cpu]"])
    err = capfd.readouterr().err
    assert code == 0
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    # ignored until the process ends: one arriving while Python exits must not turn exit 0 into -2
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN


def test_eval_node_main_one_error_line_and_a_clean_ctrl_c(ros, monkeypatch, capfd, sigint_raises):
    """depth_eval_node: a bad parameter ends it with one error line; Ctrl-C with its final summary."""
    from depth_node.evaluation.ground_truth import GroundTruth
    from depth_node.ros import eval_node

    code = eval_node.main(["--ros-args", "-p", "gt_type:=radar"])
    err = capfd.readouterr().err
    assert code == 1
    errors = [line for line in err.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and "gt_type" in errors[0], err
    assert "Traceback" not in err and not ros.rclpy.ok()

    def spin_then_ctrl_c(node, executor=None):
        depth = np.full((8, 16), 10.0, np.float32)
        node.evaluator.add_prediction(1_000, depth)
        node.evaluator.add_truth(1_000, GroundTruth("depth image", dense=depth * 1.1))
        with own_executor(ros, node) as own:
            ctrl_c(ros)  # rclpy's handler shuts the context down (so /rosout is gone) and spin ends
            own.spin()

    monkeypatch.setattr(ros.rclpy, "spin", spin_then_ctrl_c)
    code = eval_node.main([])
    err = capfd.readouterr().err
    assert code == 0
    assert "final: 1 frames" in err, err
    assert "Traceback" not in err and "Failed to publish" not in err, err  # no log to a dead /rosout


def test_params_file_loads_with_every_parameter(ros, model_path):
    """config/depth.yaml, as the launch file passes it, gives the node exactly its defaults' types."""
    config = Path(__file__).resolve().parents[1] / "config" / "depth.yaml"
    ros.rclpy.init(
        args=[
            "--ros-args",
            "--params-file",
            str(config),
            "-p",
            f"model_path:={model_path}",
            "-p",
            "providers:=[cpu]",
        ]
    )
    node = ros.node_module.DepthNode()
    try:
        node.start()  # a type mismatch (e.g. 1 for a double) would raise here
        assert node.settings is not None and node.settings.model_path == str(model_path)
    finally:
        node.destroy_node()
        ros.rclpy.try_shutdown()


def test_stand_in_keeps_rclpy_rules_the_node_relies_on(ros):
    """Where the stand-in is used, it must refuse what rclpy/DDS refuse (skipped with real rclpy)."""
    if not ros.stand_in:
        pytest.skip("real rclpy in use")
    from rclpy.exceptions import InvalidParameterTypeException

    ros.rclpy.init(args=["--ros-args", "-p", "ratio:=1"])
    try:
        node = ros.rclpy.create_node("rules")
        with pytest.raises(InvalidParameterTypeException):
            node.declare_parameter("ratio", 0.5)  # an int override for a double parameter
        best_effort = ros.QoSProfile(depth=1, reliability=ros.Reliability.BEST_EFFORT)
        reliable = ros.QoSProfile(depth=1, reliability=ros.Reliability.RELIABLE)
        got: list = []
        publisher = node.create_publisher(ros.CameraInfo, "info", best_effort)
        node.create_subscription(ros.CameraInfo, "info", got.append, reliable)
        assert publisher.get_subscription_count() == 0  # a reliable reader does not match
        with pytest.raises(AssertionError):
            ros.DiagnosticStatus(level=1, name="", message="", hardware_id="", values=[])  # byte field
        node.destroy_node()
    finally:
        ros.rclpy.try_shutdown()
