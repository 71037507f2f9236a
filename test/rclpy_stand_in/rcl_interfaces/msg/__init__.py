"""rcl_interfaces parameter messages, with rclpy's keyword defaults (every field optional).

Plain dataclasses instead of rosbags' classes: rclpy code builds descriptors incrementally
(``ParameterDescriptor(description=...)``, then ``descriptor.type = ...``), which needs defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class ParameterType:
    """rcl_interfaces/msg/ParameterType constants."""

    PARAMETER_NOT_SET = 0
    PARAMETER_BOOL = 1
    PARAMETER_INTEGER = 2
    PARAMETER_DOUBLE = 3
    PARAMETER_STRING = 4
    PARAMETER_BYTE_ARRAY = 5
    PARAMETER_BOOL_ARRAY = 6
    PARAMETER_INTEGER_ARRAY = 7
    PARAMETER_DOUBLE_ARRAY = 8
    PARAMETER_STRING_ARRAY = 9


@dataclass
class FloatingPointRange:
    from_value: float = 0.0
    to_value: float = 0.0
    step: float = 0.0


@dataclass
class IntegerRange:
    from_value: int = 0
    to_value: int = 0
    step: int = 0


@dataclass
class ParameterDescriptor:
    name: str = ""
    type: int = 0
    description: str = ""
    additional_constraints: str = ""
    read_only: bool = False
    dynamic_typing: bool = False
    # rosidl bounded sequences (<=1): a list holding at most one range.
    floating_point_range: list[FloatingPointRange] = field(default_factory=list)
    integer_range: list[IntegerRange] = field(default_factory=list)


@dataclass
class ParameterValue:
    type: int = 0
    bool_value: bool = False
    integer_value: int = 0
    double_value: float = 0.0
    string_value: str = ""
    byte_array_value: list[bytes] = field(default_factory=list)
    bool_array_value: list[bool] = field(default_factory=list)
    integer_array_value: list[int] = field(default_factory=list)
    double_array_value: list[float] = field(default_factory=list)
    string_array_value: list[str] = field(default_factory=list)


@dataclass
class Parameter:
    name: str = ""
    value: Any = field(default_factory=ParameterValue)


@dataclass
class SetParametersResult:
    successful: bool = False
    reason: str = ""


__all__ = [
    "FloatingPointRange",
    "IntegerRange",
    "Parameter",
    "ParameterDescriptor",
    "ParameterType",
    "ParameterValue",
    "SetParametersResult",
]
