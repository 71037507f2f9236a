"""The managed (lifecycle) depth node: the same node, its steps driven by lifecycle transitions.

For launch systems that bring nodes up in order (navigation2's lifecycle manager, ``ros2 lifecycle
set``). ``configure`` validates the parameters and loads the model (ONNX Runtime session; with
TensorRT, the engine is built or read from its cache), ``activate`` creates the publishers and the
subscriptions, ``deactivate`` stops taking frames but keeps the model, ``cleanup`` frees the model.
A configure that fails (bad parameter, missing model) logs the one-line reason and stays unconfigured.

    ros2 launch depth_node depth_lifecycle.launch.py            # then:
    ros2 lifecycle set /depth_node configure && ros2 lifecycle set /depth_node activate
"""

from __future__ import annotations

import sys
from typing import Any

from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn

from depth_node.ros.node import DepthNodeBase, StartupError, run_node
from depth_node.runtime.parameters import NODE_NAME

SUCCESS, FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE


class DepthLifecycleNode(DepthNodeBase, LifecycleNode):
    """Monocular depth as a managed node; starts unconfigured."""

    def __init__(self, node_name: str = NODE_NAME, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self._init_depth()

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self.configure()
        except StartupError as error:
            self.get_logger().error(str(error))
            return FAILURE
        return SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self.activate()
        except StartupError as error:  # a qos_overrides value rclpy refuses
            self.get_logger().error(str(error))
            self.deactivate()
            return FAILURE
        return SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.deactivate()
        return SUCCESS

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.cleanup()
        return SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.deactivate()
        self.cleanup()
        return SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.deactivate()
        self.cleanup()
        return SUCCESS  # back to unconfigured: a later configure may succeed

    def destroy_node(self) -> None:
        self.deactivate()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """``ros2 run depth_node depth_lifecycle_node``: waits, unconfigured, for lifecycle transitions."""
    return run_node(DepthLifecycleNode, args, start=False)


if __name__ == "__main__":
    sys.exit(main())
