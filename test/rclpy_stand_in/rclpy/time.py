"""rclpy.time.Time (nanoseconds since the epoch of its clock)."""

from __future__ import annotations

from typing import Any

from builtin_interfaces.msg import Time as TimeMsg
from rclpy.clock_type import ClockType
from rclpy.duration import Duration


class Time:
    def __init__(
        self, *, seconds: float = 0, nanoseconds: int = 0, clock_type: ClockType = ClockType.SYSTEM_TIME
    ):
        total = int(seconds * 1e9) + int(nanoseconds)
        if total < 0:
            raise ValueError("Total nanoseconds value is too low to store")
        self._nanoseconds = total
        self._clock_type = clock_type

    @property
    def nanoseconds(self) -> int:
        return self._nanoseconds

    @property
    def clock_type(self) -> ClockType:
        return self._clock_type

    def seconds_nanoseconds(self) -> tuple[int, int]:
        return divmod(self._nanoseconds, 1_000_000_000)

    def to_msg(self) -> Any:
        sec, nanosec = self.seconds_nanoseconds()
        return TimeMsg(sec=sec, nanosec=nanosec)

    @classmethod
    def from_msg(cls, msg: Any, clock_type: ClockType = ClockType.ROS_TIME) -> Time:
        return cls(seconds=msg.sec, nanoseconds=msg.nanosec, clock_type=clock_type)

    def __sub__(self, other: Time | Duration) -> Time | Duration:
        if isinstance(other, Time):
            if other.clock_type != self.clock_type:
                raise TypeError("Can't subtract times with different clock types")
            return Duration(nanoseconds=self._nanoseconds - other.nanoseconds)
        return Time(nanoseconds=self._nanoseconds - other.nanoseconds, clock_type=self._clock_type)

    def __add__(self, other: Duration) -> Time:
        return Time(nanoseconds=self._nanoseconds + other.nanoseconds, clock_type=self._clock_type)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Time) and (other.nanoseconds, other.clock_type) == (
            self.nanoseconds,
            self.clock_type,
        )

    def __lt__(self, other: Time) -> bool:
        return self.nanoseconds < other.nanoseconds

    def __repr__(self) -> str:
        return f"Time(nanoseconds={self._nanoseconds}, clock_type={self._clock_type.name})"
