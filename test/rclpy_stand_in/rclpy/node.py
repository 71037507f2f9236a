"""rclpy.node.Node: parameters (with rclpy's typing and descriptor rules), pub/sub, timers, logger."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy._arguments import RosArguments, node_pattern_matches, parse_ros_args
from rclpy.clock import Clock, ROSClock
from rclpy.context import Context
from rclpy.exceptions import (
    InvalidNamespaceException,
    InvalidNodeNameException,
    InvalidParameterException,
    InvalidParameterTypeException,
    InvalidParameterValueException,
    InvalidTopicNameException,
    NotInitializedException,
    ParameterAlreadyDeclaredException,
    ParameterImmutableException,
    ParameterNotDeclaredException,
    ParameterUninitializedException,
)
from rclpy.logging import RcutilsLogger, get_logger
from rclpy.parameter import Parameter
from rclpy.publisher import Publisher
from rclpy.qos import QoSProfile
from rclpy.subscription import Subscription
from rclpy.timer import Timer
from rclpy.utilities import get_default_context

_NAME_TOKEN = r"[A-Za-z_][A-Za-z0-9_]*"
_NODE_NAME = re.compile(_NAME_TOKEN)
_TOPIC = re.compile(rf"(~|~/)?/?({_NAME_TOKEN}|\{{node\}}|\{{ns\}})(/({_NAME_TOKEN}|\{{node\}}|\{{ns\}}))*")


class Node:
    PARAM_REL_TOL = 1e-6

    def __init__(
        self,
        node_name: str,
        *,
        context: Context | None = None,
        cli_args: list[str] | None = None,
        namespace: str | None = None,
        use_global_arguments: bool = True,
        enable_rosout: bool = True,
        start_parameter_services: bool = True,
        parameter_overrides: list[Parameter] | None = None,
        allow_undeclared_parameters: bool = False,
        automatically_declare_parameters_from_overrides: bool = False,
    ) -> None:
        self._context = get_default_context() if context is None else context
        if not self._context.ok():
            raise NotInitializedException("cannot create node")
        arguments = RosArguments()
        if use_global_arguments:
            arguments.parameters += self._context.ros_arguments.parameters
            arguments.remaps += self._context.ros_arguments.remaps
        local = parse_ros_args(cli_args or [])
        arguments.parameters += local.parameters
        arguments.remaps += local.remaps

        for node, source, target in arguments.remaps:
            if node in ("", node_name) and source == "__node":
                node_name = target
            elif node in ("", node_name) and source == "__ns":
                namespace = target
        if not _NODE_NAME.fullmatch(node_name):
            raise InvalidNodeNameException(f"Invalid node name: {node_name!r}")
        namespace = namespace or "/"
        if not namespace.startswith("/"):
            namespace = "/" + namespace
        if namespace != "/" and not re.fullmatch(rf"(/{_NAME_TOKEN})+", namespace):
            raise InvalidNamespaceException(f"Invalid namespace: {namespace!r}")
        self._name = node_name
        self._namespace = namespace
        self._remaps = [
            (source, target)
            for node, source, target in arguments.remaps
            if node in ("", node_name) and not source.startswith("__")
        ]

        self._parameters: dict[str, Parameter] = {}
        self._descriptors: dict[str, ParameterDescriptor] = {}
        self._allow_undeclared_parameters = allow_undeclared_parameters
        self._parameters_callbacks: list[Callable[[list[Parameter]], SetParametersResult]] = []
        self._parameter_overrides: dict[str, Parameter] = {}
        fully_qualified_name = self.get_fully_qualified_name()
        for pattern, name, value in arguments.parameters:
            if value is not None and node_pattern_matches(pattern, fully_qualified_name):
                self._parameter_overrides[name] = Parameter(name, value=value)
        for parameter in parameter_overrides or []:
            self._parameter_overrides[parameter.name] = parameter

        self._publishers: list[Publisher] = []
        self._subscriptions: list[Subscription] = []
        self._timers: list[Timer] = []
        self._destroyed = False
        self.executor: Any = None
        logger_name = ".".join([*self._namespace.strip("/").split("/"), self._name]).lstrip(".")
        self._logger = get_logger(logger_name)
        self._clock = ROSClock()

        if automatically_declare_parameters_from_overrides:
            self.declare_parameters(
                "",
                [(name, p.value, ParameterDescriptor()) for name, p in self._parameter_overrides.items()],
                ignore_override=True,
            )
        # rclpy's TimeSource declares use_sim_time on every node.
        if not self.has_parameter("use_sim_time"):
            self.declare_parameter("use_sim_time", False)

    # --- names -------------------------------------------------------------------------------
    @property
    def context(self) -> Context:
        return self._context

    @property
    def publishers(self) -> Iterator[Publisher]:
        yield from list(self._publishers)

    @property
    def subscriptions(self) -> Iterator[Subscription]:
        yield from list(self._subscriptions)

    @property
    def timers(self) -> Iterator[Timer]:
        yield from list(self._timers)

    def get_name(self) -> str:
        return self._name

    def get_namespace(self) -> str:
        return self._namespace

    def get_fully_qualified_name(self) -> str:
        return f"{self._namespace.rstrip('/')}/{self._name}"

    def get_clock(self) -> Clock:
        return self._clock

    def get_logger(self) -> RcutilsLogger:
        return self._logger

    def resolve_topic_name(self, topic: str, *, only_expand: bool = False) -> str:
        """Expand ~ and relative names against the namespace, then apply remap rules."""
        if not topic or not _TOPIC.fullmatch(topic):
            raise InvalidTopicNameException(f"Invalid topic name: {topic!r}")
        expanded = self._expand(topic)
        if not only_expand:
            for source, target in self._remaps:
                if self._expand(source) == expanded:
                    return self._expand(target)
        return expanded

    def _expand(self, name: str) -> str:
        name = name.replace("{node}", self._name).replace("{ns}", self._namespace.strip("/"))
        if name.startswith("~"):
            return self.get_fully_qualified_name() + name[1:]
        if name.startswith("/"):
            return name
        return f"{self._namespace.rstrip('/')}/{name}"

    # --- parameters --------------------------------------------------------------------------
    def declare_parameter(
        self,
        name: str,
        value: Any = None,
        descriptor: ParameterDescriptor | None = None,
        ignore_override: bool = False,
    ) -> Parameter:
        if value is None and descriptor is None:
            args: tuple[Any, ...] = (name,)
        else:
            args = (name, value, ParameterDescriptor() if descriptor is None else descriptor)
        return self.declare_parameters("", [args], ignore_override)[0]

    def declare_parameters(
        self, namespace: str, parameters: list[tuple[Any, ...]], ignore_override: bool = False
    ) -> list[Parameter]:
        parameter_list: list[Parameter] = []
        descriptors: dict[str, ParameterDescriptor] = {}
        for index, parameter_tuple in enumerate(parameters):
            if len(parameter_tuple) < 1 or len(parameter_tuple) > 3:
                raise TypeError(
                    f"Invalid parameter tuple length at index {index} in parameters list: "
                    f"{parameter_tuple}; expecting length between 1 and 3"
                )
            name = parameter_tuple[0]
            second_arg = parameter_tuple[1] if len(parameter_tuple) > 1 else None
            descriptor = parameter_tuple[2] if len(parameter_tuple) > 2 else ParameterDescriptor()
            if not isinstance(name, str):
                raise TypeError(f"First element {name} at index {index} in parameters list is not a str.")
            if not isinstance(descriptor, ParameterDescriptor):
                raise TypeError(
                    f"Third element {descriptor} at index {index} in parameters list "
                    "is not a ParameterDescriptor."
                )
            value = None
            if len(parameter_tuple) == 1:
                descriptor.dynamic_typing = True
            if isinstance(second_arg, Parameter.Type):
                if second_arg == Parameter.Type.NOT_SET:
                    raise ValueError(
                        f"Cannot declare parameter {{{name}}} as statically typed of type NOT_SET"
                    )
                if descriptor.dynamic_typing:
                    raise ValueError(
                        f"When declaring parameter {{{name}}} passing a descriptor with"
                        "`dynamic_typing=True` is not allowed when the parameter type is provided"
                    )
                descriptor.type = second_arg.value
            else:
                value = second_arg
                if not descriptor.dynamic_typing and value is not None:
                    descriptor.type = Parameter.Type.from_parameter_value(value).value
            if not ignore_override and name in self._parameter_overrides:
                value = self._parameter_overrides[name].value
            if namespace:
                name = f"{namespace}.{name}"
            if not name:  # rclpy's validate_parameter_name refuses only an empty name
                raise InvalidParameterException(name)
            parameter_list.append(Parameter(name, value=value))
            descriptors[name] = descriptor

        already = [p.name for p in parameter_list if p.name in self._parameters]
        if already:
            raise ParameterAlreadyDeclaredException(already)
        self._set_parameters(
            parameter_list, descriptors, raise_on_failure=True, allow_undeclared_parameters=True
        )
        return [self._parameters[p.name] for p in parameter_list]

    def undeclare_parameter(self, name: str) -> None:
        if not self.has_parameter(name):
            raise ParameterNotDeclaredException(name)
        if self._descriptors[name].read_only:
            raise ParameterImmutableException(name)
        del self._parameters[name]
        del self._descriptors[name]

    def has_parameter(self, name: str) -> bool:
        return name in self._parameters

    def get_parameter(self, name: str) -> Parameter:
        if self.has_parameter(name):
            parameter = self._parameters[name]
            if parameter.type_ != Parameter.Type.NOT_SET or self._descriptors[name].dynamic_typing:
                return parameter
            raise ParameterUninitializedException(name)
        if self._allow_undeclared_parameters:
            return Parameter(name, Parameter.Type.NOT_SET, None)
        raise ParameterNotDeclaredException(name)

    def get_parameters(self, names: list[str]) -> list[Parameter]:
        return [self.get_parameter(name) for name in names]

    def get_parameter_or(self, name: str, alternative_value: Parameter | None = None) -> Parameter:
        if alternative_value is None:
            alternative_value = Parameter(name, Parameter.Type.NOT_SET)
        return self._parameters.get(name, alternative_value)

    def describe_parameter(self, name: str) -> ParameterDescriptor:
        try:
            return self._descriptors[name]
        except KeyError:
            if self._allow_undeclared_parameters:
                return ParameterDescriptor()
            raise ParameterNotDeclaredException(name) from None

    def set_parameters(self, parameter_list: list[Parameter]) -> list[SetParametersResult]:
        return self._set_parameters(parameter_list)

    def add_on_set_parameters_callback(
        self, callback: Callable[[list[Parameter]], SetParametersResult]
    ) -> None:
        self._parameters_callbacks.insert(0, callback)

    def _set_parameters(
        self,
        parameter_list: list[Parameter],
        descriptors: dict[str, ParameterDescriptor] | None = None,
        raise_on_failure: bool = False,
        allow_undeclared_parameters: bool = False,
    ) -> list[SetParametersResult]:
        results = []
        for param in parameter_list:
            if (
                not allow_undeclared_parameters
                and not self._allow_undeclared_parameters
                and not self.has_parameter(param.name)
            ):
                raise ParameterNotDeclaredException([param.name])
            if descriptors is not None:
                result = self._apply_descriptor(param, descriptors[param.name], check_read_only=False)
            elif param.name in self._descriptors:
                result = self._apply_descriptor(param, self._descriptors[param.name], check_read_only=True)
            else:
                result = SetParametersResult(successful=True)
            if result.successful:
                for callback in self._parameters_callbacks:
                    result = callback([param])
                    if not result.successful:
                        break
            if raise_on_failure and not result.successful:
                if result.reason.startswith("Wrong parameter type"):
                    assert descriptors is not None
                    raise InvalidParameterTypeException(
                        param, Parameter.Type(descriptors[param.name].type).name
                    )
                raise InvalidParameterValueException(param.name, param.value, result.reason)
            if result.successful:
                if descriptors is not None:
                    self._descriptors[param.name] = descriptors[param.name]
                elif param.name not in self._descriptors:
                    self._descriptors[param.name] = ParameterDescriptor(dynamic_typing=True)
                self._parameters[param.name] = param
            results.append(result)
        return results

    def _apply_descriptor(
        self, parameter: Parameter, descriptor: ParameterDescriptor, check_read_only: bool = True
    ) -> SetParametersResult:
        descriptor.name = parameter.name
        if check_read_only and descriptor.read_only:
            return SetParametersResult(
                successful=False, reason=f"Trying to set a read-only parameter: {parameter.name}."
            )
        if descriptor.dynamic_typing:
            descriptor.type = parameter.type_.value
        elif self.has_parameter(parameter.name) and parameter.type_ == Parameter.Type.NOT_SET:
            return SetParametersResult(successful=False, reason="Static parameter cannot be undeclared")
        elif parameter.type_ != Parameter.Type.NOT_SET and parameter.type_.value != descriptor.type:
            return SetParametersResult(
                successful=False,
                reason="Wrong parameter type, expected "
                f"'{Parameter.Type(descriptor.type)}' got '{parameter.type_}'",
            )
        if parameter.type_ == Parameter.Type.INTEGER and descriptor.integer_range:
            return self._apply_integer_range(parameter, descriptor.integer_range[0])
        if parameter.type_ == Parameter.Type.DOUBLE and descriptor.floating_point_range:
            return self._apply_floating_point_range(parameter, descriptor.floating_point_range[0])
        return SetParametersResult(successful=True)

    def _apply_integer_range(self, parameter: Parameter, integer_range: IntegerRange) -> SetParametersResult:
        low = min(integer_range.from_value, integer_range.to_value)
        high = max(integer_range.from_value, integer_range.to_value)
        if parameter.value in (low, high):
            return SetParametersResult(successful=True)
        if not low < parameter.value < high:
            return SetParametersResult(
                successful=False,
                reason=f"Parameter {parameter.name} out of range. "
                f"Min: {low}, Max: {high}, value: {parameter.value}",
            )
        if integer_range.step != 0 and (parameter.value - low) % integer_range.step != 0:
            return SetParametersResult(
                successful=False,
                reason=f"The parameter value for {parameter.name} is not a valid step. "
                f"Min: {low}, max: {high}, value: {parameter.value}, step: {integer_range.step}",
            )
        return SetParametersResult(successful=True)

    def _apply_floating_point_range(
        self, parameter: Parameter, floating_point_range: FloatingPointRange
    ) -> SetParametersResult:
        low = min(floating_point_range.from_value, floating_point_range.to_value)
        high = max(floating_point_range.from_value, floating_point_range.to_value)
        value = parameter.value
        if math.isclose(value, low, rel_tol=self.PARAM_REL_TOL) or math.isclose(
            value, high, rel_tol=self.PARAM_REL_TOL
        ):
            return SetParametersResult(successful=True)
        if not low < value < high:
            return SetParametersResult(
                successful=False,
                reason=f"Parameter {parameter.name} out of range Min: {low}, Max: {high}, value: {value}",
            )
        step = floating_point_range.step
        if step != 0.0 and not math.isclose(
            low + round((value - low) / step) * step, value, rel_tol=self.PARAM_REL_TOL
        ):
            return SetParametersResult(
                successful=False,
                reason=f"The parameter value for {parameter.name} is not close enough to a valid step. "
                f"Min: {low}, max: {high}, value: {value}, step: {step}",
            )
        return SetParametersResult(successful=True)

    # --- entities ----------------------------------------------------------------------------
    def _validate_qos_or_depth_parameter(self, qos_or_depth: QoSProfile | int) -> QoSProfile:
        if isinstance(qos_or_depth, QoSProfile):
            return qos_or_depth
        if isinstance(qos_or_depth, int) and not isinstance(qos_or_depth, bool):
            if qos_or_depth < 0:
                raise ValueError("history depth must be greater than or equal to zero")
            return QoSProfile(depth=qos_or_depth)
        raise TypeError(f"Expected QoSProfile or int, but received {type(qos_or_depth)!r}")

    def _check_alive(self) -> None:
        if self._destroyed:
            raise RuntimeError("node has been destroyed")

    def create_publisher(
        self,
        msg_type: type,
        topic: str,
        qos_profile: QoSProfile | int,
        *,
        callback_group: Any = None,
        event_callbacks: Any = None,
        qos_overriding_options: Any = None,
        publisher_class: type[Publisher] = Publisher,
    ) -> Publisher:
        self._check_alive()
        qos = self._validate_qos_or_depth_parameter(qos_profile)
        if qos_overriding_options is not None:
            from rclpy.qos_overriding_options import _declare_qos_parameters

            _declare_qos_parameters(
                "publisher", self, self.resolve_topic_name(topic), qos, qos_overriding_options
            )
        publisher = publisher_class(self, msg_type, self.resolve_topic_name(topic), qos)
        with self._context.graph_lock:
            self._context.publishers.append(publisher)
        self._publishers.append(publisher)
        return publisher

    def create_subscription(
        self,
        msg_type: type,
        topic: str,
        callback: Callable[[Any], None],
        qos_profile: QoSProfile | int,
        *,
        callback_group: Any = None,
        event_callbacks: Any = None,
        qos_overriding_options: Any = None,
        raw: bool = False,
    ) -> Subscription:
        self._check_alive()
        if raw:
            raise NotImplementedError("the stand-in does not deliver raw (serialized) messages")
        qos = self._validate_qos_or_depth_parameter(qos_profile)
        if qos_overriding_options is not None:
            from rclpy.qos_overriding_options import _declare_qos_parameters

            _declare_qos_parameters(
                "subscription", self, self.resolve_topic_name(topic), qos, qos_overriding_options
            )
        subscription = Subscription(self, msg_type, self.resolve_topic_name(topic), callback, qos)
        with self._context.graph_lock:
            self._context.subscriptions.append(subscription)
        self._subscriptions.append(subscription)
        return subscription

    def create_timer(
        self,
        timer_period_sec: float,
        callback: Callable[[], Any],
        callback_group: Any = None,
        clock: Clock | None = None,
        autostart: bool = True,
    ) -> Timer:
        self._check_alive()
        timer = Timer(
            callback,
            callback_group,
            int(float(timer_period_sec) * 1e9),
            clock or self._clock,
            context=self._context,
        )
        if not autostart:
            timer.cancel()
        self._timers.append(timer)
        self._context.notify()
        return timer

    def destroy_publisher(self, publisher: Publisher) -> bool:
        if publisher not in self._publishers:
            return False
        self._publishers.remove(publisher)
        publisher._destroyed = True
        with self._context.graph_lock:
            self._context.publishers.remove(publisher)
        return True

    def destroy_subscription(self, subscription: Subscription) -> bool:
        if subscription not in self._subscriptions:
            return False
        self._subscriptions.remove(subscription)
        with self._context.graph_lock:
            self._context.subscriptions.remove(subscription)
        return True

    def destroy_timer(self, timer: Timer) -> bool:
        if timer not in self._timers:
            return False
        self._timers.remove(timer)
        timer.destroy()
        return True

    def destroy_node(self) -> None:
        for publisher in list(self._publishers):
            self.destroy_publisher(publisher)
        for subscription in list(self._subscriptions):
            self.destroy_subscription(subscription)
        for timer in list(self._timers):
            self.destroy_timer(timer)
        if self.executor is not None:
            self.executor.remove_node(self)
        self._destroyed = True

    # --- graph -------------------------------------------------------------------------------
    def count_publishers(self, topic_name: str) -> int:
        topic = self.resolve_topic_name(topic_name, only_expand=True)
        with self._context.graph_lock:
            return sum(p.topic_name == topic for p in self._context.publishers)

    def count_subscribers(self, topic_name: str) -> int:
        topic = self.resolve_topic_name(topic_name, only_expand=True)
        with self._context.graph_lock:
            return sum(s.topic_name == topic for s in self._context.subscriptions)
