"""rclpy.clock: Clock and ROSClock. ROS time follows the system clock here (no /clock source)."""

from __future__ import annotations

import time as _time

from rclpy.clock_type import ClockType
from rclpy.time import Time

__all__ = ["Clock", "ClockType", "ROSClock"]


class Clock:
    def __init__(self, *, clock_type: ClockType = ClockType.SYSTEM_TIME) -> None:
        self._clock_type = clock_type

    @property
    def clock_type(self) -> ClockType:
        return self._clock_type

    def now(self) -> Time:
        if self._clock_type == ClockType.STEADY_TIME:
            return Time(nanoseconds=_time.monotonic_ns(), clock_type=self._clock_type)
        return Time(nanoseconds=_time.time_ns(), clock_type=self._clock_type)


class ROSClock(Clock):
    def __init__(self) -> None:
        super().__init__(clock_type=ClockType.ROS_TIME)
        self._ros_time_is_active = False

    @property
    def ros_time_is_active(self) -> bool:
        return self._ros_time_is_active
