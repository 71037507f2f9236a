"""Start depth_node with its YAML parameters (and optionally rviz2 with the depth view).

    ros2 launch depth_node depth.launch.py image_topic:=/cam/image_raw camera_info_topic:=/cam/camera_info
    ros2 launch depth_node depth.launch.py use_sim_time:=true rviz:=true   # with `ros2 bag play --clock`
    ros2 launch depth_node depth.launch.py managed:=true    # a lifecycle node: `ros2 lifecycle set`
    ros2 launch depth_node depth.launch.py managed:=true autostart:=true   # configured and activated

model, image_topic, camera_info_topic and compressed override params_file only when given, so a
value edited in the YAML file is not silently replaced by a launch default.
"""

from launch import LaunchContext, LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, OpaqueFunction, RegisterEventHandler
from launch.conditions import IfCondition
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import LifecycleNode, Node
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from launch_ros.substitutions import FindPackageShare
from lifecycle_msgs.msg import Transition

# launch argument -> node parameter, passed only when the argument is not empty.
_OPTIONAL_OVERRIDES = {
    "model": "model_path",
    "image_topic": "image_topic",
    "camera_info_topic": "camera_info_topic",
    "compressed": "compressed",
}


def _as_bool(name: str, text: str) -> bool:
    lowered = text.strip().lower()
    if lowered not in ("true", "false"):
        raise ValueError(f"launch argument {name}: expected true or false, got {text!r}")
    return lowered == "true"


def _transition(node: LifecycleNode, transition_id: int) -> EmitEvent:
    return EmitEvent(
        event=ChangeState(lifecycle_node_matcher=matches_action(node), transition_id=transition_id)
    )


def _depth_node(context: LaunchContext) -> list[Node | EmitEvent | RegisterEventHandler]:
    use_sim_time = _as_bool("use_sim_time", LaunchConfiguration("use_sim_time").perform(context))
    overrides: dict[str, object] = {"use_sim_time": use_sim_time}
    for argument, parameter in _OPTIONAL_OVERRIDES.items():
        value = LaunchConfiguration(argument).perform(context).strip()
        if value:
            overrides[parameter] = _as_bool(argument, value) if parameter == "compressed" else value
    common = {
        "package": "depth_node",
        "name": "depth_node",
        "namespace": LaunchConfiguration("namespace"),
        "parameters": [LaunchConfiguration("params_file"), overrides],
        "output": "screen",
        "emulate_tty": True,
    }
    if not _as_bool("managed", LaunchConfiguration("managed").perform(context)):
        return [Node(executable="depth_node", **common)]
    node = LifecycleNode(executable="depth_lifecycle_node", **common)
    if not _as_bool("autostart", LaunchConfiguration("autostart").perform(context)):
        return [node]  # unconfigured until a lifecycle manager or `ros2 lifecycle set` moves it
    activate_when_inactive = OnStateTransition(
        target_lifecycle_node=node,
        goal_state="inactive",
        entities=[_transition(node, Transition.TRANSITION_ACTIVATE)],
    )
    return [
        node,
        RegisterEventHandler(activate_when_inactive),
        _transition(node, Transition.TRANSITION_CONFIGURE),
    ]


def generate_launch_description() -> LaunchDescription:
    share = FindPackageShare("depth_node")
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "model", default_value="", description="ONNX model (default: params_file's)"
            ),
            DeclareLaunchArgument("image_topic", default_value="", description="camera image topic"),
            DeclareLaunchArgument(
                "camera_info_topic", default_value="", description="camera CameraInfo topic"
            ),
            DeclareLaunchArgument(
                "compressed",
                default_value="",
                description="true: subscribe to <image_topic>/compressed (default: params_file's)",
            ),
            DeclareLaunchArgument(
                "params_file",
                default_value=PathJoinSubstitution([share, "config", "depth.yaml"]),
                description="node parameters (YAML)",
            ),
            DeclareLaunchArgument(
                "namespace", default_value="", description="namespace of the node and outputs"
            ),
            DeclareLaunchArgument(
                "rviz",
                default_value="false",
                choices=["true", "false"],
                description="start rviz2 with the depth view",
            ),
            DeclareLaunchArgument(
                "managed",
                default_value="false",
                choices=["true", "false"],
                description="a managed (lifecycle) node: configure loads the model, activate subscribes",
            ),
            DeclareLaunchArgument(
                "autostart",
                default_value="false",
                choices=["true", "false"],
                description="managed:=true only: configure and activate it at launch",
            ),
            DeclareLaunchArgument(
                "use_sim_time",
                default_value="false",
                choices=["true", "false"],
                description="follow /clock (ros2 bag play --clock)",
            ),
            OpaqueFunction(function=_depth_node),
            Node(
                package="rviz2",
                executable="rviz2",
                name="depth_rviz",
                arguments=["-d", PathJoinSubstitution([share, "config", "depth.rviz"])],
                parameters=[{"use_sim_time": LaunchConfiguration("use_sim_time")}],
                condition=IfCondition(LaunchConfiguration("rviz")),
                output="screen",
            ),
        ]
    )
