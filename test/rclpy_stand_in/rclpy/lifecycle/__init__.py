"""rclpy.lifecycle: a managed node with the ROS 2 lifecycle state machine (stand-in).

Mirrors rclpy's ``LifecycleNode``: ``trigger_configure/activate/deactivate/cleanup/shutdown`` run
the ``on_*`` callback of the transition and move to the state its return value selects, as
rcl_lifecycle does (SUCCESS: the goal state, FAILURE: back to the start state, ERROR or an exception:
``on_error``, then unconfigured on SUCCESS, else finalized). The lifecycle services that
``ros2 lifecycle`` calls are not stood in for (no services here); the real rclpy serves them.
"""

from __future__ import annotations

import enum
from typing import Any, NamedTuple

from rclpy.node import Node


class TransitionCallbackReturn(enum.Enum):
    SUCCESS = 97  # lifecycle_msgs/Transition TRANSITION_CALLBACK_SUCCESS
    FAILURE = 98
    ERROR = 99


class LifecycleState(NamedTuple):
    state_id: int
    label: str


# lifecycle_msgs/State ids of the primary states.
_IDS = {"unconfigured": 1, "inactive": 2, "active": 3, "finalized": 4}
# transition -> (from states, callback, goal state on success)
_TRANSITIONS = {
    "configure": (("unconfigured",), "on_configure", "inactive"),
    "cleanup": (("inactive",), "on_cleanup", "unconfigured"),
    "activate": (("inactive",), "on_activate", "active"),
    "deactivate": (("active",), "on_deactivate", "inactive"),
    "shutdown": (("unconfigured", "inactive", "active"), "on_shutdown", "finalized"),
}


class _StateMachine:
    def __init__(self) -> None:
        self.current_state = (_IDS["unconfigured"], "unconfigured")


class LifecycleNode(Node):
    """A node whose entities are set up and torn down by lifecycle transitions."""

    def __init__(self, node_name: str, *, enable_communication_interface: bool = True, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self._state_machine = _StateMachine()

    def _state(self) -> LifecycleState:
        state_id, label = self._state_machine.current_state
        return LifecycleState(state_id, label)

    def _change_state(self, transition: str) -> TransitionCallbackReturn:
        sources, callback, goal = _TRANSITIONS[transition]
        previous = self._state()
        if previous.label not in sources:
            raise RuntimeError(f"transition {transition} is not possible from state {previous.label}")
        try:
            result = getattr(self, callback)(previous)
        except Exception:  # rclpy: an exception in a callback counts as ERROR
            result = TransitionCallbackReturn.ERROR
        if result == TransitionCallbackReturn.SUCCESS:
            label = goal
        elif result == TransitionCallbackReturn.FAILURE:
            label = previous.label
        else:
            try:
                recovered = self.on_error(previous) == TransitionCallbackReturn.SUCCESS
            except Exception:
                recovered = False
            label = "unconfigured" if recovered else "finalized"
        self._state_machine.current_state = (_IDS[label], label)
        return result

    def trigger_configure(self) -> TransitionCallbackReturn:
        return self._change_state("configure")

    def trigger_cleanup(self) -> TransitionCallbackReturn:
        return self._change_state("cleanup")

    def trigger_activate(self) -> TransitionCallbackReturn:
        return self._change_state("activate")

    def trigger_deactivate(self) -> TransitionCallbackReturn:
        return self._change_state("deactivate")

    def trigger_shutdown(self) -> TransitionCallbackReturn:
        return self._change_state("shutdown")

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        return TransitionCallbackReturn.SUCCESS

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        return TransitionCallbackReturn.SUCCESS


Node = LifecycleNode
State = LifecycleState

__all__ = ["LifecycleNode", "LifecycleState", "Node", "State", "TransitionCallbackReturn"]
