"""rclpy.qos_overriding_options: QoS parameter overrides for publishers and subscriptions (stand-in).

As in rclpy: creating an entity with ``qos_overriding_options`` declares the read-only parameters
``qos_overrides.<topic>.<publisher|subscription>.<policy>`` (history, depth, reliability by default)
with the entity's QoS as defaults, and the values given at start-up (``--ros-args -p``, a params
file) replace those policies. An unknown policy value raises RuntimeError, as rclpy does.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from typing import Any

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.exceptions import ParameterAlreadyDeclaredException
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy


class InvalidQosOverridesError(Exception):
    pass


class QoSPolicyKind(enum.IntEnum):
    # The subset of rclpy's QoSPolicyKind the stand-in can override (ids as in rclpy).
    HISTORY = 1 << 5
    DEPTH = 1 << 6
    RELIABILITY = 1 << 7


class QoSOverridingOptions:
    """Options to customize QoS parameter overrides."""

    def __init__(
        self,
        policy_kinds: Iterable[QoSPolicyKind],
        *,
        callback: Callable[[QoSProfile], Any] | None = None,
        entity_id: str | None = None,
    ) -> None:
        self._policy_kinds = tuple(policy_kinds)
        self._callback = callback
        self._entity_id = entity_id

    @property
    def policy_kinds(self) -> Iterable[QoSPolicyKind]:
        return self._policy_kinds

    @property
    def callback(self) -> Callable[[QoSProfile], Any] | None:
        return self._callback

    @property
    def entity_id(self) -> str | None:
        return self._entity_id

    @classmethod
    def with_default_policies(
        cls, *, callback: Callable[[QoSProfile], Any] | None = None, entity_id: str | None = None
    ) -> QoSOverridingOptions:
        return cls(
            policy_kinds=(QoSPolicyKind.HISTORY, QoSPolicyKind.DEPTH, QoSPolicyKind.RELIABILITY),
            callback=callback,
            entity_id=entity_id,
        )


_ENUMS = {QoSPolicyKind.HISTORY: HistoryPolicy, QoSPolicyKind.RELIABILITY: ReliabilityPolicy}


def _declare_qos_parameters(
    entity_type: str, node: Any, topic_name: str, qos: QoSProfile, options: QoSOverridingOptions
) -> None:
    """Declare the entity's QoS parameters and apply their values to ``qos`` (rclpy's behaviour)."""
    id_suffix = "" if options.entity_id is None else f"_{options.entity_id}"
    for policy in options.policy_kinds:
        policy_name = policy.name.lower()
        name = f"qos_overrides.{topic_name}.{entity_type}{id_suffix}.{policy_name}"
        default = getattr(qos, policy_name)
        default = default.name.lower() if policy in _ENUMS else default
        descriptor = ParameterDescriptor(
            description=f"{policy_name} for {entity_type} `{topic_name}` with id `{options.entity_id}`",
            read_only=True,
        )
        try:
            value = node.declare_parameter(name, default, descriptor).value
        except ParameterAlreadyDeclaredException:
            value = node.get_parameter(name).value
        if policy in _ENUMS:
            try:
                value = _ENUMS[policy][str(value).upper()]
            except KeyError:
                raise RuntimeError(f"Unexpected QoS override for policy `{policy_name}`: `{value}`") from None
        setattr(qos, policy_name, value)
    if options.callback is not None:
        result = options.callback(qos)
        if not result.successful:
            raise InvalidQosOverridesError(
                f"Provided QoS overrides for {entity_type} `{topic_name}`, are not valid: {result.reason}"
            )
