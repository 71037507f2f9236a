"""rclpy.parameter.Parameter: typed parameter values (same type rules as rclpy)."""

from __future__ import annotations

import array
from enum import Enum
from typing import Any

from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.msg import ParameterType, ParameterValue

PARAMETER_SEPARATOR_STRING = "."


class Parameter:
    class Type(Enum):
        NOT_SET = ParameterType.PARAMETER_NOT_SET
        BOOL = ParameterType.PARAMETER_BOOL
        INTEGER = ParameterType.PARAMETER_INTEGER
        DOUBLE = ParameterType.PARAMETER_DOUBLE
        STRING = ParameterType.PARAMETER_STRING
        BYTE_ARRAY = ParameterType.PARAMETER_BYTE_ARRAY
        BOOL_ARRAY = ParameterType.PARAMETER_BOOL_ARRAY
        INTEGER_ARRAY = ParameterType.PARAMETER_INTEGER_ARRAY
        DOUBLE_ARRAY = ParameterType.PARAMETER_DOUBLE_ARRAY
        STRING_ARRAY = ParameterType.PARAMETER_STRING_ARRAY

        @classmethod
        def from_parameter_value(cls, parameter_value: Any) -> Parameter.Type:
            """The Parameter.Type of a Python value; TypeError where there is none."""
            if parameter_value is None:
                return Parameter.Type.NOT_SET
            if isinstance(parameter_value, bool):
                return Parameter.Type.BOOL
            if isinstance(parameter_value, int):
                return Parameter.Type.INTEGER
            if isinstance(parameter_value, float):
                return Parameter.Type.DOUBLE
            if isinstance(parameter_value, str):
                return Parameter.Type.STRING
            if isinstance(parameter_value, (list, tuple, array.array)):
                if all(isinstance(v, bytes) for v in parameter_value):
                    return Parameter.Type.BYTE_ARRAY
                if all(isinstance(v, bool) for v in parameter_value):
                    return Parameter.Type.BOOL_ARRAY
                if all(isinstance(v, int) for v in parameter_value):
                    return Parameter.Type.INTEGER_ARRAY
                if all(isinstance(v, float) for v in parameter_value):
                    return Parameter.Type.DOUBLE_ARRAY
                if all(isinstance(v, str) for v in parameter_value):
                    return Parameter.Type.STRING_ARRAY
                raise TypeError(
                    f"The given value is not a list of one of the allowed types '{parameter_value}'."
                )
            raise TypeError(f"The given value is not one of the allowed types '{parameter_value}'.")

        def check(self, parameter_value: Any) -> bool:
            if self == Parameter.Type.NOT_SET:
                return parameter_value is None
            if self == Parameter.Type.BOOL:
                return isinstance(parameter_value, bool)
            if self == Parameter.Type.INTEGER:
                return isinstance(parameter_value, int)
            if self == Parameter.Type.DOUBLE:
                return isinstance(parameter_value, float)
            if self == Parameter.Type.STRING:
                return isinstance(parameter_value, str)
            element = {
                Parameter.Type.BYTE_ARRAY: bytes,
                Parameter.Type.BOOL_ARRAY: bool,
                Parameter.Type.INTEGER_ARRAY: int,
                Parameter.Type.DOUBLE_ARRAY: float,
                Parameter.Type.STRING_ARRAY: str,
            }[self]
            return isinstance(parameter_value, (list, tuple, array.array)) and all(
                isinstance(v, element) for v in parameter_value
            )

    def __init__(self, name: str, type_: Parameter.Type | None = None, value: Any = None) -> None:
        if type_ is None:
            type_ = Parameter.Type.from_parameter_value(value)
        if not isinstance(type_, Parameter.Type):
            raise TypeError(f"type must be an instance of '{Parameter.Type!r}'")
        if not type_.check(value):
            raise ValueError(f"Type '{type_}' and value '{value}' do not agree")
        self._type_ = type_
        self._name = name
        self._value = value

    @property
    def name(self) -> str:
        return self._name

    @property
    def type_(self) -> Parameter.Type:
        return self._type_

    @property
    def value(self) -> Any:
        return self._value

    def get_parameter_value(self) -> ParameterValue:
        parameter_value = ParameterValue(type=self.type_.value)
        attribute = {
            Parameter.Type.BOOL: "bool_value",
            Parameter.Type.INTEGER: "integer_value",
            Parameter.Type.DOUBLE: "double_value",
            Parameter.Type.STRING: "string_value",
            Parameter.Type.BYTE_ARRAY: "byte_array_value",
            Parameter.Type.BOOL_ARRAY: "bool_array_value",
            Parameter.Type.INTEGER_ARRAY: "integer_array_value",
            Parameter.Type.DOUBLE_ARRAY: "double_array_value",
            Parameter.Type.STRING_ARRAY: "string_array_value",
        }.get(self.type_)
        if attribute is not None:
            setattr(parameter_value, attribute, self.value)
        return parameter_value

    def to_parameter_msg(self) -> ParameterMsg:
        return ParameterMsg(name=self.name, value=self.get_parameter_value())

    def __repr__(self) -> str:
        return f"Parameter(name={self._name!r}, type_={self._type_}, value={self._value!r})"
