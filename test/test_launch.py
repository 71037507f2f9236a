"""launch_testing: the real launch file starts the node, which answers camera frames on its topics.

Needs a ROS 2 environment (launch_testing, launch_ros, rclpy, the built depth_node package) and is
skipped without one. Run it with ``colcon test --packages-select depth_node`` or
``launch_test test/test_launch.py`` after ``colcon build`` and ``source install/setup.bash``.
DDS traffic stays on this machine (Humble: ROS_LOCALHOST_ONLY; Jazzy: ROS_AUTOMATIC_DISCOVERY_RANGE).
"""

from __future__ import annotations

import os

# Before rclpy or any launched process reads them: keep discovery on the loopback interface. Humble
# reads ROS_LOCALHOST_ONLY; Jazzy reads ROS_AUTOMATIC_DISCOVERY_RANGE and warns (twice a node) when
# the deprecated ROS_LOCALHOST_ONLY is set, so each distribution gets only its own variable.
if os.environ.get("ROS_DISTRO", "humble") == "humble":
    os.environ["ROS_LOCALHOST_ONLY"] = "1"
else:
    os.environ.pop("ROS_LOCALHOST_ONLY", None)
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"

import importlib.util
import sys
import tempfile
import time
import unittest
from pathlib import Path

import pytest

# Without launch_testing its pytest plugin is not loaded either, so a module-level skip is safe here.
# Everything else is checked with a skipif mark: where the plugin is loaded it imports every test
# module while collecting, and a module-level skip raised then would skip the whole test folder.
pytest.importorskip("launch_testing")

import launch_testing
import launch_testing.actions
import launch_testing.asserts
import launch_testing.markers
import numpy as np
from launch import LaunchDescription
from launch.actions import IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource


def _skip_reason() -> str | None:
    """Why this launch test cannot run here, or None."""
    for module in ("launch_ros", "rclpy", "sensor_msgs", "ament_index_python"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not importable (source a ROS 2 installation)"
    if importlib.util.find_spec("onnx") is None:
        return "onnx is not installed (the test model is built with it: test/onnx_models.py)"
    from ament_index_python.packages import PackageNotFoundError, get_package_prefix

    try:  # launch_ros finds the node's executable (and the launch file its config) in the ament index
        get_package_prefix("depth_node")
    except PackageNotFoundError:
        return (
            "depth_node is not installed in a sourced ROS 2 workspace "
            "(colcon build --packages-select depth_node; source install/setup.bash)"
        )
    return None


SKIP_REASON = _skip_reason()

HERE = Path(__file__).resolve().parent
LAUNCH_FILE = HERE.parent / "launch" / "depth.launch.py"
NAMESPACE = "launch_test"
IMAGE_TOPIC = "/launch_test_camera/image_raw"
INFO_TOPIC = "/launch_test_camera/camera_info"
FRAME = "camera_optical"
WIDTH, HEIGHT = 192, 64


def _write_inputs(folder: Path) -> tuple[Path, Path]:
    """A tiny contract-conforming model and a params file: CPU only, no TensorRT cache."""
    sys.path.insert(0, str(HERE))
    from onnx_models import make_linear_depth_model

    model = make_linear_depth_model(folder / "linear.onnx", height=32, width=96)
    params = folder / "params.yaml"
    params.write_text('/**:\n  ros__parameters:\n    providers: ["cpu"]\n    tensorrt_cache_dir: ""\n')
    return model, params


@pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or "")
@pytest.mark.ros
@pytest.mark.launch_test
@launch_testing.markers.keep_alive
@launch_testing.parametrize("managed", ["false", "true"])
def generate_test_description(managed: str):
    """The plain node, and the managed one configured and activated by the launch file (autostart)."""
    folder = Path(tempfile.mkdtemp(prefix="depth_launch_test_"))
    model, params = _write_inputs(folder)
    depth_launch = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(str(LAUNCH_FILE)),
        launch_arguments={
            "model": str(model),
            "params_file": str(params),
            "image_topic": IMAGE_TOPIC,
            "camera_info_topic": INFO_TOPIC,
            "namespace": NAMESPACE,
            "rviz": "false",
            "use_sim_time": "false",
            "managed": managed,
            "autostart": managed,
        }.items(),
    )
    return LaunchDescription([depth_launch, launch_testing.actions.ReadyToTest()])


class TestDepthTopics(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        import rclpy

        rclpy.init()

    @classmethod
    def tearDownClass(cls) -> None:
        import rclpy

        rclpy.shutdown()

    def setUp(self) -> None:
        import rclpy

        self.node = rclpy.create_node("depth_launch_tester")

    def tearDown(self) -> None:
        self.node.destroy_node()

    def test_frames_come_back_as_depth_camera_info_and_cloud(self, proc_output) -> None:
        import rclpy
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import CameraInfo, Image, PointCloud2

        from depth_node.runtime.conversions import numpy_to_image
        from depth_node.runtime.message_types import ros_types
        from depth_node.runtime.messages import camera_info_from_K

        types = ros_types()
        image_pub = self.node.create_publisher(Image, IMAGE_TOPIC, 1)
        info_pub = self.node.create_publisher(CameraInfo, INFO_TOPIC, 1)
        received: dict[str, list] = {"image": [], "info": [], "points": []}
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)  # what rviz2 asks for
        self.node.create_subscription(Image, f"/{NAMESPACE}/depth/image", received["image"].append, reliable)
        self.node.create_subscription(
            CameraInfo, f"/{NAMESPACE}/depth/camera_info", received["info"].append, reliable
        )
        self.node.create_subscription(
            PointCloud2, f"/{NAMESPACE}/depth/points", received["points"].append, reliable
        )

        K = np.array([[200.0, 0.0, WIDTH / 2], [0.0, 200.0, HEIGHT / 2], [0.0, 0.0, 1.0]])
        rgb = np.full((HEIGHT, WIDTH, 3), 110, dtype=np.uint8)
        sent: set[tuple[int, int]] = set()
        deadline = time.monotonic() + 60.0  # node start-up (model load) included
        while time.monotonic() < deadline and not all(received.values()):
            stamp = self.node.get_clock().now().to_msg()
            header = types.Header(stamp=stamp, frame_id=FRAME)
            info_pub.publish(camera_info_from_K(K, WIDTH, HEIGHT, header, types))
            image_pub.publish(numpy_to_image(rgb, "rgb8", header, types))
            sent.add((stamp.sec, stamp.nanosec))
            end = time.monotonic() + 0.1  # a 10 Hz camera
            while time.monotonic() < end:
                rclpy.spin_once(self.node, timeout_sec=0.01)

        for key, messages in received.items():
            self.assertTrue(messages, f"nothing received on depth/{key}")
            msg = messages[0]
            self.assertEqual(msg.header.frame_id, FRAME)
            self.assertIn((msg.header.stamp.sec, msg.header.stamp.nanosec), sent)
        image = received["image"][0]
        self.assertEqual((image.encoding, image.width, image.height), ("32FC1", WIDTH, HEIGHT))
        self.assertEqual((received["info"][0].width, received["info"][0].height), (WIDTH, HEIGHT))
        proc_output.assertWaitFor("CPUExecutionProvider", timeout=5.0)  # the start-up line names it


@launch_testing.post_shutdown_test()
class TestShutdown(unittest.TestCase):
    def test_node_exits_cleanly(self, proc_info, proc_output) -> None:
        # SIGINT from launch: the node joins its worker and returns 0, without a traceback.
        launch_testing.asserts.assertExitCodes(
            proc_info, allowable_exit_codes=[launch_testing.asserts.EXIT_OK]
        )
        for process_output in proc_output:
            self.assertNotIn(b"Traceback", process_output.text)  # ProcessIO.text is bytes
