"""``depth_eval_node``: live accuracy of the depth node while ``ros2 bag play`` runs.

Subscribes to the depth node's ``/depth/image`` and to a ground truth topic — a depth image
(``/ground_truth/depth``, 32FC1/16UC1) or a LiDAR ``PointCloud2`` projected into the camera image
the KITTI way (needs the camera's CameraInfo and the LiDAR->camera transform from /tf_static or the
``T_cam_lidar`` parameter) — pairs them by header stamp (approximate time), scores each pair with
:mod:`depth_node.metrics` (metric and median-scaled, capped at ``max_depth``), logs running means
every ``log_every`` scored frames and publishes them as a ``diagnostic_msgs/DiagnosticArray`` on
``/diagnostics`` (rqt_runtime_monitor shows them).

All logic lives in ROS-free code shared with the offline replay (ground truth from
:mod:`depth_node.evaluation.ground_truth`, pairing and scoring from :mod:`depth_node.evaluation.scoring`),
so the scores equal ``depth-replay``'s for the same frames. Example::

    ros2 launch depth_node depth.launch.py model:=... &
    ros2 run depth_node depth_eval_node --ros-args -p gt_topic:=/ground_truth/depth &
    ros2 bag play drive_bag
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import rclpy
import rclpy.logging
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.exceptions import ParameterException
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image, PointCloud2

from depth_node.evaluation.ground_truth import StaticTransforms, depth_truth, lidar_truth, parse_transform
from depth_node.evaluation.scoring import StreamEvaluator, metrics_key_values, running_metrics_line
from depth_node.metrics import MAX_DEPTH, MIN_DEPTH
from depth_node.ros.shutdown import ignore_sigint_from_now_on, init_or_one_line
from depth_node.runtime.conversions import image_msg_to_depth
from depth_node.runtime.errors import BadInputError
from depth_node.runtime.message_types import stamp_ns

try:  # raised by spin() when Ctrl-C shut the context down
    from rclpy.executors import ExternalShutdownException
except ImportError:  # pragma: no cover - older rclpy
    ExternalShutdownException = KeyboardInterrupt  # type: ignore[assignment, misc]

NODE_NAME = "depth_eval"


class DepthEvalNode(Node):
    """Scores /depth/image against ground truth as messages arrive."""

    def __init__(self, **node_kwargs: Any) -> None:
        # node_kwargs (context, parameter_overrides, ...) go to rclpy's Node: tests and composition.
        super().__init__(NODE_NAME, **node_kwargs)
        p = self.declare_parameter
        depth_topic = p("depth_topic", "/depth/image").value
        self.gt_topic = gt_topic = p("gt_topic", "/ground_truth/depth").value
        self.gt_type = p("gt_type", "depth").value  # "depth" (Image) or "lidar" (PointCloud2)
        info_topic = p("camera_info_topic", "/camera/camera_info").value
        T_text = p("T_cam_lidar", "").value  # empty: from /tf_static
        self.log_every = max(1, int(p("log_every", 10).value))
        self.evaluator = StreamEvaluator(
            min_depth=float(p("min_depth", MIN_DEPTH).value),
            max_depth=float(p("max_depth", MAX_DEPTH).value),
            garg_crop=bool(p("garg_crop", False).value),
            tolerance_s=float(p("sync_tolerance", 0.05).value),
        )
        if self.gt_type not in ("depth", "lidar"):
            raise ValueError(f"parameter gt_type must be 'depth' or 'lidar', got {self.gt_type!r}")
        self.T_cam_lidar = parse_transform(T_text) if T_text else None
        self.transforms = StaticTransforms()
        self.camera_info: Any = None
        self.bad_messages = 0
        self.scored_since_log = 0

        sensor_qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.create_subscription(Image, depth_topic, self.on_depth, sensor_qos)
        if self.gt_type == "depth":
            self.create_subscription(Image, gt_topic, self.on_gt_depth, sensor_qos)
        else:
            from tf2_msgs.msg import TFMessage  # only the LiDAR mode needs tf2_msgs

            self.create_subscription(PointCloud2, gt_topic, self.on_lidar, sensor_qos)
            self.create_subscription(CameraInfo, info_topic, self.on_camera_info, sensor_qos)
            latched = QoSProfile(
                depth=10, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
            )
            self.create_subscription(TFMessage, "/tf_static", self.transforms.add_message, latched)
        self.diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.get_logger().info(
            f"scoring {depth_topic} against {self.gt_type} ground truth on {gt_topic} "
            f"(running means every {self.log_every} frames on /diagnostics)"
        )

    def _bad(self, what: str, err: Exception) -> None:
        # Never die on a bad message: count it and say so (throttled).
        self.bad_messages += 1
        self.get_logger().warning(f"skipped a bad {what} message: {err}", throttle_duration_sec=5.0)

    def on_depth(self, msg: Any) -> None:
        try:
            depth = image_msg_to_depth(msg)
        except BadInputError as err:
            self._bad("depth", err)
            return
        self._scored(self.evaluator.add_prediction(stamp_ns(msg.header), depth))

    def on_gt_depth(self, msg: Any) -> None:
        try:
            truth = depth_truth(msg, self.gt_topic)
        except BadInputError as err:
            self._bad("ground truth", err)
            return
        self._scored(self.evaluator.add_truth(stamp_ns(msg.header), truth))

    def on_camera_info(self, msg: Any) -> None:
        self.camera_info = msg

    def on_lidar(self, msg: Any) -> None:
        info = self.camera_info
        if info is None or int(info.width) == 0:
            self.get_logger().info("waiting for camera_info before scoring LiDAR", throttle_duration_sec=5.0)
            return
        T = self.T_cam_lidar
        if T is None:
            T = self.transforms.lookup(info.header.frame_id, msg.header.frame_id)
            if T is None:
                self.get_logger().warning(
                    f"no transform {msg.header.frame_id} -> {info.header.frame_id} on /tf_static yet",
                    throttle_duration_sec=5.0,
                )
                return
        try:
            truth = lidar_truth(msg, info, T, self.gt_topic)
        except BadInputError as err:
            self._bad("LiDAR", err)
            return
        self._scored(self.evaluator.add_truth(stamp_ns(msg.header), truth))

    def _scored(self, scored: Sequence[Any]) -> None:
        self.evaluator.take_unmatched()  # given-up predictions only matter to the replay's report
        self.scored_since_log += sum(s.scores is not None for s in scored)
        if self.scored_since_log < self.log_every:
            return
        self.scored_since_log = 0
        summary = self.evaluator.summary()
        if summary is None:
            return
        self.get_logger().info(running_metrics_line(summary))
        status = DiagnosticStatus(
            level=DiagnosticStatus.OK,
            name=f"{NODE_NAME}: depth accuracy",
            message=f"{summary['frames']} frames scored",
            hardware_id="",
            values=[
                KeyValue(key=k, value=v)
                for k, v in metrics_key_values(summary, self.evaluator, self.bad_messages)
            ],
        )
        self.diagnostics.publish(DiagnosticArray(header=self._header_now(), status=[status]))

    def _header_now(self) -> Any:
        from std_msgs.msg import Header

        return Header(stamp=self.get_clock().now().to_msg(), frame_id="")


def main(args: Sequence[str] | None = None) -> int:
    """``ros2 run depth_node depth_eval_node``: 0 after Ctrl-C, 1 (one error line) for a bad parameter."""
    if not init_or_one_line(lambda: rclpy.init(args=args), NODE_NAME):
        return 1
    # Lines logged after the node is gone (the final summary after Ctrl-C, when rclpy has already shut
    # the context down) go through a plain logger of the same name: the console, not /rosout.
    logger = rclpy.logging.get_logger(NODE_NAME)
    node = None
    code = 0
    try:
        try:
            node = DepthEvalNode()
        except (ValueError, ParameterException) as error:
            logger.error(f"invalid parameter: {error}")
            code = 1
        else:
            rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):  # Ctrl-C: a clean stop, no traceback
        ignore_sigint_from_now_on()  # a second one (launch forwards it) must not interrupt the shutdown
    finally:
        if node is not None:
            summary = node.evaluator.summary()
            node.destroy_node()
            if summary is not None:
                logger.info("final: " + running_metrics_line(summary))
        rclpy.try_shutdown()
    return code


if __name__ == "__main__":
    sys.exit(main())
