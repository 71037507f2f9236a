"""rclpy.duration.Duration."""

from __future__ import annotations

from typing import Any

from builtin_interfaces.msg import Duration as DurationMsg


class Duration:
    def __init__(self, *, seconds: float = 0, nanoseconds: int = 0) -> None:
        self._nanoseconds = int(seconds * 1e9) + int(nanoseconds)

    @property
    def nanoseconds(self) -> int:
        return self._nanoseconds

    def to_msg(self) -> Any:
        sec, nanosec = divmod(self._nanoseconds, 1_000_000_000)
        return DurationMsg(sec=sec, nanosec=nanosec)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Duration) and other.nanoseconds == self.nanoseconds

    def __lt__(self, other: Duration) -> bool:
        return self.nanoseconds < other.nanoseconds

    def __repr__(self) -> str:
        return f"Duration(nanoseconds={self._nanoseconds})"
