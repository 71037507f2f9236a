"""The depth node: camera image + camera_info in, depth image, its camera_info and a cloud out.

Thin rclpy glue over the ROS-free runtime: parameters and their validation, the frame mailbox and
the inference thread in :mod:`depth_node.runtime.parameters` and :mod:`depth_node.ros.worker`; each
frame goes through the one frame path, :class:`depth_node.runtime.frame.FramePath` (as in the replay).

Threads: subscription callbacks only store the newest frame (they never block the executor); a
prepare thread decodes it and makes the network's input, the inference thread runs the network, and a
finish thread builds and publishes each frame's messages, all three at once on consecutive frames.
Preparing runs at idle priority by default (``prepare_priority``,
:mod:`depth_node.runtime.background`): it takes only what the network leaves of the cores. A frame
still waiting when a newer one arrives is dropped and counted, so latency stays bounded when the
model is slower than the camera.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.exceptions import ParameterException
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.qos_overriding_options import InvalidQosOverridesError, QoSOverridingOptions
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from std_msgs.msg import Header

from depth_node.ros.diagnostics import DiagnosticSummary, FrameStats, LogThrottle, diagnostic_summary
from depth_node.ros.shutdown import ignore_sigint_from_now_on, init_or_one_line
from depth_node.ros.worker import LatestSlot, MailboxWorker
from depth_node.runtime.background import BackgroundThread
from depth_node.runtime.errors import ModelLoadError
from depth_node.runtime.estimator import DepthEstimator
from depth_node.runtime.frame import (
    FinishThread,
    FrameDrop,
    FrameOutputs,
    FramePath,
    PreparedFrame,
    prepare_thread,
)
from depth_node.runtime.message_types import ros_types, stamp_ns
from depth_node.runtime.parameters import (
    NODE_NAME,
    PARAMETER_NAMES,
    PARAMETERS,
    NodeSettings,
    ParameterError,
    ParamSpec,
    check_parameter,
    validate_parameters,
)
from depth_node.runtime.pipeline import DepthPipeline

try:  # executors.ExternalShutdownException: raised by spin() when the context is shut down (Ctrl-C)
    from rclpy.executors import ExternalShutdownException
except ImportError:  # pragma: no cover - older rclpy
    ExternalShutdownException = KeyboardInterrupt  # type: ignore[assignment, misc]

_LEVELS = {0: DiagnosticStatus.OK, 1: DiagnosticStatus.WARN, 2: DiagnosticStatus.ERROR}
_RELIABILITY = {"reliable": ReliabilityPolicy.RELIABLE, "best_effort": ReliabilityPolicy.BEST_EFFORT}
DROP_LOG_PERIOD_S = 5.0


class StartupError(RuntimeError):
    """The node cannot start (bad parameter, model missing or corrupt): one line for the log."""


@dataclass
class _Frame:
    image: Any  # sensor_msgs Image or CompressedImage
    camera_info: Any
    arrival: float  # FrameStats clock (monotonic seconds)


@dataclass
class _Prepared:
    frame: _Frame
    prepared: PreparedFrame


def _descriptor(spec: ParamSpec) -> ParameterDescriptor:
    descriptor = ParameterDescriptor(
        description=spec.description,
        additional_constraints=spec.additional_constraints,
        read_only=spec.read_only,
    )
    if spec.value_range is not None:
        low, high = spec.value_range
        if isinstance(spec.default, float):
            descriptor.floating_point_range = [
                FloatingPointRange(from_value=float(low), to_value=float(high), step=0.0)
            ]
        else:
            descriptor.integer_range = [IntegerRange(from_value=int(low), to_value=int(high), step=1)]
    return descriptor


def _qos(reliability: str, depth: int) -> QoSProfile:
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=_RELIABILITY[reliability],
        durability=DurabilityPolicy.VOLATILE,
    )


class DepthNodeBase:
    """The depth node's work, mixed into an rclpy ``Node`` (:class:`DepthNode`) or a managed
    ``LifecycleNode`` (``depth_node.ros.lifecycle_node``), in four steps that map onto the lifecycle:

    - :meth:`configure`: declare and validate parameters, load the model (ONNX Runtime session,
      TensorRT engine). Raises StartupError with a one-line reason.
    - :meth:`activate`: publishers, the inference thread, the subscriptions, the diagnostics timer.
    - :meth:`deactivate`: all of those gone again, the model kept.
    - :meth:`cleanup`: the model freed.
    """

    def _init_depth(self) -> None:
        self.types = ros_types()
        self.settings: NodeSettings | None = None
        self.frame_path: FramePath | None = None
        self.pipeline: DepthPipeline | None = None
        self.estimator: DepthEstimator | None = None
        self.stats = FrameStats()
        self._throttle = LogThrottle(DROP_LOG_PERIOD_S)
        self._slot: LatestSlot[_Frame] = LatestSlot()  # frames as they arrive
        self._prepared: LatestSlot[_Prepared] = LatestSlot()  # frames ready for the network
        self._preparer: MailboxWorker[_Frame] | None = None
        self._prepare_thread: BackgroundThread | None = None
        self._worker: MailboxWorker[_Prepared] | None = None
        self._finisher: FinishThread[_Frame] | None = None
        self._camera_info: Any = None
        self._waiting_logged = False
        self._scale: float | None = None
        self._reported_drops: dict[str, int] = dict(self.stats.dropped_by_reason)
        self._image_sub = self._info_sub = self._timer = None
        self._image_pub = self._info_pub = self._points_pub = self._diag_pub = None
        self._parameter_callback_added = False
        self._unknown_warned = False

    # --- configure / activate / deactivate / cleanup ---------------------------------------------
    def configure(self) -> None:
        """Declare (once) and validate the parameters, then load the model. Nothing is subscribed."""
        try:
            for spec in PARAMETERS:
                if self.has_parameter(spec.name):
                    continue  # configured before (a lifecycle node after cleanup): keep the values
                try:
                    self.declare_parameter(spec.name, spec.default, _descriptor(spec))
                except ParameterException as error:  # rclpy refused an override (type, range)
                    raise ParameterError(self._refused_override(spec, error)) from None
            settings = validate_parameters({name: self.get_parameter(name).value for name in PARAMETER_NAMES})
        except ParameterError as error:
            raise StartupError(f"invalid parameter: {error}") from None
        try:
            self.frame_path = FramePath.from_settings(settings, self.types)
        except ModelLoadError as error:
            raise StartupError(str(error)) from None
        except ValueError as error:  # PipelineConfig refusing a combination
            raise StartupError(f"invalid parameter: {error}") from None
        self.pipeline, self.estimator = self.frame_path.pipeline, self.frame_path.estimator
        self.settings = settings
        if not self._parameter_callback_added:
            self.add_on_set_parameters_callback(self._on_set_parameters)
            self._parameter_callback_added = True
        info = self.estimator.info
        self.get_logger().info(
            f"model {info.name} ({info.backbone}, {info.input_width}x{info.input_height}) on "
            f"{self.estimator.provider}, scale mode {self.pipeline.scale_mode}"
        )

    def activate(self) -> None:
        """Publishers first, then the worker, then the subscriptions: no frame arrives half set up.

        Each topic's QoS is the ``output_qos.*`` / ``input_qos.*`` parameters', unless rclpy's
        ``qos_overrides.<topic>.<publisher|subscription>.<history|depth|reliability>`` overrides it.
        Raises StartupError for an override rclpy refuses.
        """
        settings = self.settings
        assert settings is not None, "configure() first"
        out_qos, in_qos = settings.output_reliability, settings.input_reliability
        try:
            self._image_pub = self._publisher(
                Image, settings.depth_image_topic, out_qos, settings.output_depth
            )
            self._info_pub = self._publisher(
                CameraInfo, settings.depth_camera_info_topic, out_qos, settings.output_depth
            )
            self._points_pub = self._publisher(
                PointCloud2, settings.points_topic, out_qos, settings.output_depth
            )
            self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
            self._slot, self._prepared = LatestSlot(), LatestSlot()
            assert self.frame_path is not None, "configure() first"
            self._finisher = FinishThread(self.frame_path, self._deliver, self._on_worker_error)
            self._prepare_thread = prepare_thread(settings.prepare_priority)
            self._worker = MailboxWorker(
                self._prepared, self._process, self._on_prepared_error, "depth_inference"
            )
            self._preparer = MailboxWorker(self._slot, self._prepare, self._on_worker_error, "depth_prepare")
            self._worker.start()
            self._preparer.start()
            self._info_sub = self._subscription(
                CameraInfo, settings.camera_info_topic, self._on_camera_info, in_qos, settings.input_depth
            )
            image_type = CompressedImage if settings.compressed else Image
            self._image_sub = self._subscription(
                image_type, settings.subscribed_image_topic, self._on_image, in_qos, settings.input_depth
            )
        except (ParameterException, InvalidQosOverridesError, RuntimeError) as error:
            text = " ".join(str(error).split())
            raise StartupError(f"invalid parameter: qos_overrides: {text}") from None
        self._timer = self.create_timer(1.0, self.publish_diagnostics)
        unknown = self._unknown_overrides()
        if unknown and not self._unknown_warned:
            self._unknown_warned = True
            self.get_logger().warning(
                f"ignoring parameter(s) {', '.join(unknown)}: not parameters of this node (a typo?)"
            )
        self.get_logger().info(
            f"{self._image_sub.topic_name} + {self._info_sub.topic_name} -> {self._image_pub.topic_name}, "
            f"{self._info_pub.topic_name}, {self._points_pub.topic_name}"
        )

    def _publisher(self, msg_type: Any, topic: str, reliability: str, depth: int) -> Any:
        return self.create_publisher(
            msg_type,
            topic,
            _qos(reliability, depth),
            qos_overriding_options=QoSOverridingOptions.with_default_policies(),
        )

    def _subscription(self, msg_type: Any, topic: str, callback: Any, reliability: str, depth: int) -> Any:
        return self.create_subscription(
            msg_type,
            topic,
            callback,
            _qos(reliability, depth),
            qos_overriding_options=QoSOverridingOptions.with_default_policies(),
        )

    def deactivate(self) -> None:
        """Stop taking frames: subscriptions, timer and inference thread (after its frame), publishers."""
        for subscription in (self._image_sub, self._info_sub):
            if subscription is not None:
                self.destroy_subscription(subscription)
        self._image_sub = self._info_sub = None
        if self._timer is not None:
            self.destroy_timer(self._timer)
            self._timer = None
        for name in ("_preparer", "_worker"):  # the prepare thread first: no frame is left half-way
            worker = getattr(self, name)
            if worker is not None and not worker.stop(timeout=10.0):
                self.get_logger().warning(f"{worker.name} thread did not stop within 10 s")
            setattr(self, name, None)
        if self._prepare_thread is not None:
            self._prepare_thread.close()
            self._prepare_thread = None
        if self._finisher is not None:
            self._finisher.close()  # the last frame's messages go out before the publishers go
            self._finisher = None
        for publisher in (self._image_pub, self._info_pub, self._points_pub, self._diag_pub):
            if publisher is not None:
                self.destroy_publisher(publisher)
        self._image_pub = self._info_pub = self._points_pub = self._diag_pub = None
        self._camera_info = None

    def cleanup(self) -> None:
        """Free the model (ONNX Runtime session, TensorRT engine)."""
        self.frame_path = self.pipeline = self.estimator = None
        self.settings = None

    def _overrides(self) -> dict[str, Any]:
        # rclpy keeps the --ros-args / params-file / parameter_overrides values here (Humble, Jazzy);
        # there is no public accessor for overrides that were not declared.
        return dict(getattr(self, "_parameter_overrides", None) or {})

    def _refused_override(self, spec: ParamSpec, error: Exception) -> str:
        """One line for an override that rclpy refused: the node's own wording where it can."""
        override = self._overrides().get(spec.name)
        if override is not None:
            try:
                check_parameter(spec.name, override.value)
            except ParameterError as own:
                return str(own)
        return f"parameter {spec.name}: {error}"

    def _unknown_overrides(self) -> list[str]:
        """Overrides given to the node that it does not declare (rclpy silently ignores those), a
        qos_overrides.* for a topic the node does not have included."""
        return sorted(name for name in self._overrides() if not self.has_parameter(name))

    def _on_set_parameters(self, parameters: list[Any]) -> SetParametersResult:
        # Only the output parameters are writable (read_only=False); they apply from the next frame.
        if self.settings is None:
            return SetParametersResult(successful=True, reason="")
        values = {name: self.get_parameter(name).value for name in PARAMETER_NAMES}
        values.update({p.name: p.value for p in parameters if p.name in values})
        try:
            self.settings = validate_parameters(values)
        except ParameterError as error:
            return SetParametersResult(successful=False, reason=str(error))
        return SetParametersResult(successful=True, reason="")

    # --- callbacks (executor thread: cheap, never block) ----------------------------------------
    def _on_camera_info(self, msg: Any) -> None:
        if self._camera_info is None and self._waiting_logged:
            self.get_logger().info(f"camera_info received ({msg.width}x{msg.height}); depth starts now")
        self._camera_info = msg

    def _on_image(self, msg: Any) -> None:
        arrival = self.stats.frame_in()
        camera_info = self._camera_info
        if camera_info is None:
            self.stats.drop("no_camera_info")
            if not self._waiting_logged:
                self._waiting_logged = True
                self.get_logger().warning(
                    f"waiting for camera_info on {self._info_sub.topic_name}; "
                    "images are dropped until it arrives"
                )
            return
        if self._slot.put(_Frame(msg, camera_info, arrival)) is not None:
            self.stats.drop("superseded")

    # --- worker thread ---------------------------------------------------------------------------
    def _drop(self, reason: str, detail: str) -> None:
        count = self.stats.drop(reason)
        if self._throttle.should_log(reason):
            self.get_logger().warning(f"dropped frame ({reason}): {detail} [{count} so far]")

    # --- prepare thread ------------------------------------------------------------------------------
    def _prepare(self, frame: _Frame) -> None:
        """Decode, checks and the network's input (at ``prepare_priority``), while the network runs
        on the frame before; the result waits for the inference thread in the second mailbox."""
        settings = self.settings
        assert settings is not None and self.frame_path is not None and self._prepare_thread is not None
        prepared = self._prepare_thread.run(self.frame_path.prepare, frame.image, frame.camera_info, settings)
        if isinstance(prepared, FrameDrop):
            self._drop(prepared.reason, prepared.detail)
        elif self._prepared.put(_Prepared(frame, prepared)) is not None:
            self.stats.drop("superseded")

    # --- inference thread ----------------------------------------------------------------------------
    def _process(self, item: _Prepared) -> None:
        """The network on a prepared frame; its messages are built and published on the finish thread
        while this thread runs the network on the next frame."""
        settings = self.settings
        assert settings is not None and self.frame_path is not None and self._finisher is not None
        started = self.frame_path.infer(item.prepared)
        if isinstance(started, FrameDrop):
            self._drop(started.reason, started.detail)
            return
        cloud = settings.publish_points and self._points_pub.get_subscription_count() > 0
        self._finisher.submit(started, cloud, item.frame)

    def _deliver(self, frame: _Frame, outputs: FrameOutputs | FrameDrop) -> None:
        """Finish thread: publish one finished frame, or count its drop."""
        if isinstance(outputs, FrameDrop):
            self._drop(outputs.reason, outputs.detail)
            return
        self._image_pub.publish(outputs.image)
        self._info_pub.publish(outputs.camera_info)
        if outputs.points is not None:
            self._points_pub.publish(outputs.points)
        self._scale = outputs.result.scale
        if outputs.reset is not None:
            self.stats.reset(outputs.reset)
        stamp = stamp_ns(frame.image.header)
        latency = (self.get_clock().now().nanoseconds - stamp) * 1e-9 if stamp > 0 else None
        self.stats.frame_out(frame.arrival, latency, outputs.frame_mode)

    def _on_prepared_error(self, item: _Prepared, error: Exception) -> None:
        self._on_worker_error(item.frame, error)

    def _on_worker_error(self, frame: _Frame, error: Exception) -> None:
        # A publish that failed (the frame path itself never raises): dropped, the node keeps running.
        if not self.context.ok():
            return  # Ctrl-C shut the context down under a publish: not a bad frame
        self._drop("error", f"{type(error).__name__}: {error}")

    # --- diagnostics (1 Hz timer) ----------------------------------------------------------------
    def diagnostic_summary(self) -> DiagnosticSummary:
        settings, estimator = self.settings, self.estimator
        assert settings is not None and estimator is not None and self.pipeline is not None
        snapshot = self.stats.snapshot()
        new_bad = {
            reason: count - self._reported_drops.get(reason, 0)
            for reason, count in snapshot.dropped_by_reason.items()
            if reason not in ("superseded", "no_camera_info")
        }
        self._reported_drops = dict(snapshot.dropped_by_reason)
        return diagnostic_summary(
            snapshot,
            image_topic=self._image_sub.topic_name,
            camera_info_topic=self._info_sub.topic_name,
            waiting_for_camera_info=self._camera_info is None,
            provider=estimator.provider,
            model_name=estimator.info.name,
            scale_mode=self.pipeline.scale_mode,
            scale=self._scale,
            new_bad_drops=new_bad,
        )

    def _hardware_id(self) -> str:
        """The device this status is about: the camera (its optical frame), else this node."""
        info = self._camera_info
        frame = info.header.frame_id if info is not None else ""
        return frame or self.get_fully_qualified_name()

    def publish_diagnostics(self) -> None:
        summary = self.diagnostic_summary()
        status = DiagnosticStatus(
            level=_LEVELS[summary.level],
            name=f"{self.get_name()}: depth estimation",
            message=summary.message,
            hardware_id=self._hardware_id(),
            values=[KeyValue(key=key, value=value) for key, value in summary.values],
        )
        header = Header(stamp=self.get_clock().now().to_msg(), frame_id="")
        self._diag_pub.publish(DiagnosticArray(header=header, status=[status]))


class DepthNode(DepthNodeBase, Node):
    """The depth node (plain, the default): :meth:`start` configures and activates it at once."""

    def __init__(self, node_name: str = NODE_NAME, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self._init_depth()

    def start(self) -> None:
        """Parameters, model, topics, worker (StartupError with a one-line reason)."""
        self.configure()
        self.activate()

    def destroy_node(self) -> None:
        """Stop and join the inference thread before the publishers go away."""
        self.deactivate()
        super().destroy_node()


def run_node(make_node: Callable[[], Any], args: list[str] | None, start: bool) -> int:
    """Init rclpy, make the node (and :meth:`DepthNode.start` it), spin until Ctrl-C, shut down.

    Exit code 0 after Ctrl-C, 1 when the command line or the start is refused (one error line). The
    managed node is not started here: its lifecycle transitions come from outside.
    """
    if not init_or_one_line(lambda: rclpy.init(args=args), NODE_NAME):
        return 1
    node: Any = None
    code = 0
    try:
        node = make_node()
        if start:
            node.start()
        rclpy.spin(node)
    except StartupError as error:
        assert node is not None
        node.get_logger().error(str(error))
        code = 1
    except (KeyboardInterrupt, ExternalShutdownException):  # Ctrl-C: a clean stop, no traceback
        ignore_sigint_from_now_on()  # a second one (launch forwards it) must not interrupt the shutdown
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return code


def main(args: list[str] | None = None) -> int:
    """``ros2 run depth_node depth_node``: exit code 0 after Ctrl-C, 1 when the node cannot start."""
    return run_node(DepthNode, args, start=True)


if __name__ == "__main__":
    sys.exit(main())
