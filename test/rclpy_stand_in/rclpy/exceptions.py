"""rclpy.exceptions: the parameter exceptions, with rclpy's messages."""

from __future__ import annotations

from typing import Any


class NotInitializedException(Exception):
    """Raised when the rclpy implementation is accessed before rclpy.init()."""

    def __init__(self, *args: Any) -> None:
        Exception.__init__(self, "rclpy.init() has not been called", *args)


class InvalidNamespaceException(ValueError):
    """Raised when a namespace is invalid."""


class InvalidTopicNameException(ValueError):
    """Raised when a topic name is invalid."""


class ParameterException(Exception):
    """Base exception for parameter-related errors."""

    def __init__(self, error_msg: str, parameters: Any, *args: Any) -> None:
        Exception.__init__(self, f"{error_msg}: {parameters}")


class ParameterNotDeclaredException(ParameterException):
    """Raised when handling an undeclared parameter when it is not allowed."""

    def __init__(self, parameters: Any, *args: Any) -> None:
        Exception.__init__(self, "Invalid access to undeclared parameter(s)", parameters, *args)


class ParameterAlreadyDeclaredException(ParameterException):
    """Raised when declaring a parameter that had been declared before."""

    def __init__(self, parameters: Any, *args: Any) -> None:
        Exception.__init__(self, "Parameter(s) already declared", parameters, *args)


class InvalidParameterException(ParameterException):
    """Raised when a parameter to be declared has an invalid name."""

    def __init__(self, parameter: Any, *args: Any) -> None:
        Exception.__init__(self, "Invalid parameter name", parameter, *args)


class InvalidParameterTypeException(ParameterException):
    """Raised when a parameter is rejected for having an invalid type."""

    def __init__(self, desired_parameter: Any, expected_type: str, *args: Any) -> None:
        from rclpy.parameter import Parameter

        Exception.__init__(
            self,
            f"Trying to set parameter '{desired_parameter._name}' to '{desired_parameter._value}'"
            f" of type '{Parameter.Type.from_parameter_value(desired_parameter._value).name}'"
            f", expecting type '{expected_type}'",
            *args,
        )
        self._actual_type = desired_parameter.type_
        self._param_name = desired_parameter.name


class InvalidParameterValueException(ParameterException):
    """Raised when a parameter is rejected by a user callback or when applying a descriptor."""

    def __init__(self, parameter: Any, value: Any, reason: str, *args: Any) -> None:
        Exception.__init__(
            self, f"Invalid parameter value ({value}) for parameter. Reason: {reason}", parameter, *args
        )


class ParameterImmutableException(ParameterException):
    """Raised when a read-only parameter is modified."""

    def __init__(self, parameter: Any, *args: Any) -> None:
        Exception.__init__(self, "Attempted to modify read-only parameter", parameter, *args)


class ParameterUninitializedException(ParameterException):
    """Raised when an uninitialized parameter is accessed."""

    def __init__(self, parameter_name: str, *args: Any) -> None:
        Exception.__init__(self, f"The parameter '{parameter_name}' is not initialized", *args)


class ROSInterruptException(Exception):
    """Raised when an operation is canceled by rclpy shutting down."""

    def __init__(self, *args: Any) -> None:
        Exception.__init__(self, "rclpy.shutdown() has been called", *args)


class InvalidNodeNameException(ValueError):
    """Raised when a node name is invalid."""


class InvalidQoSProfileException(Exception):
    """Raised when a QoS profile is invalid (rclpy.qos re-exports its own)."""
