"""rclpy.qos: QoSProfile and the policy enums (same names and values as rclpy)."""

from __future__ import annotations

from enum import IntEnum
from typing import Any


class InvalidQoSProfileException(Exception):
    """Raised when constructing a QoSProfile with invalid arguments."""

    def __init__(self, *args: Any) -> None:
        Exception.__init__(self, "Invalid QoSProfile", *args)


class QoSPolicyEnum(IntEnum):
    @property
    def short_key(self) -> str:
        return self.name.lower()


class HistoryPolicy(QoSPolicyEnum):
    SYSTEM_DEFAULT = 0
    KEEP_LAST = 1
    KEEP_ALL = 2
    UNKNOWN = 3


class ReliabilityPolicy(QoSPolicyEnum):
    SYSTEM_DEFAULT = 0
    RELIABLE = 1
    BEST_EFFORT = 2
    UNKNOWN = 3


class DurabilityPolicy(QoSPolicyEnum):
    SYSTEM_DEFAULT = 0
    TRANSIENT_LOCAL = 1
    VOLATILE = 2
    UNKNOWN = 3


class LivelinessPolicy(QoSPolicyEnum):
    SYSTEM_DEFAULT = 0
    AUTOMATIC = 1
    MANUAL_BY_TOPIC = 3
    UNKNOWN = 4


# The pre-Foxy names, still exported by rclpy.
QoSHistoryPolicy = HistoryPolicy
QoSReliabilityPolicy = ReliabilityPolicy
QoSDurabilityPolicy = DurabilityPolicy
QoSLivelinessPolicy = LivelinessPolicy


class QoSProfile:
    """Define Quality of Service policies (history, depth, reliability, durability)."""

    __slots__ = ["_depth", "_durability", "_history", "_reliability"]

    def __init__(self, **kwargs: Any) -> None:
        assert all("_" + key in self.__slots__ or key in _IGNORED for key in kwargs), (
            f"Invalid arguments passed to constructor: {kwargs.keys()!r}"
        )
        if "history" not in kwargs:
            if "depth" not in kwargs:
                raise InvalidQoSProfileException("History and/or depth settings are required.")
            kwargs["history"] = HistoryPolicy.KEEP_LAST
        self.history = kwargs["history"]
        if self.history == HistoryPolicy.KEEP_LAST and "depth" not in kwargs:
            raise InvalidQoSProfileException("History set to KEEP_LAST without a depth setting.")
        self.depth = kwargs.get("depth", 10)
        # rmw's default profile: reliable, volatile.
        self.reliability = kwargs.get("reliability", ReliabilityPolicy.RELIABLE)
        self.durability = kwargs.get("durability", DurabilityPolicy.VOLATILE)

    @property
    def history(self) -> HistoryPolicy:
        return self._history

    @history.setter
    def history(self, value: HistoryPolicy | int) -> None:
        assert isinstance(value, (HistoryPolicy, int))
        self._history = HistoryPolicy(value)

    @property
    def depth(self) -> int:
        return self._depth

    @depth.setter
    def depth(self, value: int) -> None:
        assert isinstance(value, int)
        self._depth = value

    @property
    def reliability(self) -> ReliabilityPolicy:
        return self._reliability

    @reliability.setter
    def reliability(self, value: ReliabilityPolicy | int) -> None:
        assert isinstance(value, (ReliabilityPolicy, int))
        self._reliability = ReliabilityPolicy(value)

    @property
    def durability(self) -> DurabilityPolicy:
        return self._durability

    @durability.setter
    def durability(self, value: DurabilityPolicy | int) -> None:
        assert isinstance(value, (DurabilityPolicy, int))
        self._durability = DurabilityPolicy(value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, QoSProfile) and all(
            getattr(self, slot) == getattr(other, slot) for slot in self.__slots__
        )

    def __repr__(self) -> str:
        return (
            f"QoSProfile(history={self.history.name}, depth={self.depth}, "
            f"reliability={self.reliability.name}, durability={self.durability.name})"
        )


# Deadline, lifespan and liveliness are accepted and ignored: the stand-in has no timing QoS.
_IGNORED = {
    "lifespan",
    "deadline",
    "liveliness",
    "liveliness_lease_duration",
    "avoid_ros_namespace_conventions",
}

qos_profile_sensor_data = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=5,
    reliability=ReliabilityPolicy.BEST_EFFORT,
    durability=DurabilityPolicy.VOLATILE,
)
qos_profile_system_default = QoSProfile(
    history=HistoryPolicy.SYSTEM_DEFAULT,
    reliability=ReliabilityPolicy.SYSTEM_DEFAULT,
    durability=DurabilityPolicy.SYSTEM_DEFAULT,
)
qos_profile_parameter_events = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=1000,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
)


def _offered_matches_requested(publisher: QoSProfile, subscription: QoSProfile) -> bool:
    """DDS request/offer matching: a RELIABLE reader needs a RELIABLE writer, TRANSIENT_LOCAL likewise."""
    if (
        subscription.reliability == ReliabilityPolicy.RELIABLE
        and publisher.reliability == ReliabilityPolicy.BEST_EFFORT
    ):
        return False
    return not (
        subscription.durability == DurabilityPolicy.TRANSIENT_LOCAL
        and publisher.durability == DurabilityPolicy.VOLATILE
    )
