"""config/depth.yaml, launch/depth.launch.py and config/depth.rviz agree with the node's parameters."""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml
from optional_stacks import OPTIONAL_STACKS, missing_stacks, stacks_needed

from depth_node.runtime.parameters import PARAMETERS, validate_parameters

# --- config/depth.yaml, launch/depth.launch.py, config/depth.rviz -------------------------------
REPO = Path(__file__).resolve().parents[1]
LAUNCH_ARGUMENTS = {
    "model",
    "image_topic",
    "camera_info_topic",
    "compressed",
    "params_file",
    "namespace",
    "managed",
    "autostart",
    "rviz",
    "use_sim_time",
}


def _flatten(prefix: str, tree: dict) -> dict:
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}.{key}" if prefix else key
        flat.update(_flatten(name, value) if isinstance(value, dict) else {name: value})
    return flat


def test_yaml_has_every_parameter_with_its_default_and_type():
    content = yaml.safe_load((REPO / "config" / "depth.yaml").read_text())
    assert list(content) == ["/**"]  # applies whatever the node's name and namespace
    params = _flatten("", content["/**"]["ros__parameters"])
    declared = {spec.name: spec.default for spec in PARAMETERS}
    assert set(params) == set(declared), set(params) ^ set(declared)
    for name, default in declared.items():
        # Same value and same Python type: rcl would refuse an int where a double is declared.
        assert params[name] == default and type(params[name]) is type(default), name
    validate_parameters(params)


def test_yaml_comments_every_parameter():
    lines = (REPO / "config" / "depth.yaml").read_text().splitlines()
    for index, line in enumerate(lines):
        stripped = line.strip()
        if ":" in stripped and not stripped.startswith("#") and not stripped.endswith(":"):
            above = [lines[i].strip() for i in range(index - 1, -1, -1)]
            key = stripped.split(":")[0]
            # A comment right above it, or it shares the comment of a group it directly follows.
            assert above and (above[0].startswith("#") or ":" in above[0]), f"no comment for {key}"


def test_launch_file_defines_its_arguments():
    path = REPO / "launch" / "depth.launch.py"
    source = path.read_text()
    tree = ast.parse(source, str(path))
    compile(tree, str(path), "exec")
    functions = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
    assert "generate_launch_description" in functions
    declared = {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and getattr(node.func, "id", None) == "DeclareLaunchArgument"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    }
    assert declared == LAUNCH_ARGUMENTS
    if importlib.util.find_spec("launch") is None or importlib.util.find_spec("launch_ros") is None:
        return  # no ROS 2 here: the static checks above are what can be done
    from launch.actions import DeclareLaunchArgument

    spec = importlib.util.spec_from_file_location("depth_launch", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    names = {e.name for e in description.entities if isinstance(e, DeclareLaunchArgument)}
    assert names == LAUNCH_ARGUMENTS


def test_rviz_view_shows_camera_depth_and_cloud_in_the_optical_frame():
    config = yaml.safe_load((REPO / "config" / "depth.rviz").read_text())
    manager = config["Visualization Manager"]
    assert manager["Global Options"]["Fixed Frame"] == "camera_optical"
    displays = {d["Name"]: d for d in manager["Displays"]}
    assert displays["Camera"]["Class"] == "rviz_default_plugins/Image"
    assert displays["Camera"]["Topic"]["Value"] == "/camera/image_raw"
    assert displays["Camera"]["Topic"]["Reliability Policy"] == "Best Effort"
    assert displays["Depth"]["Topic"]["Value"] == "/depth/image"
    cloud = displays["Depth cloud"]
    assert cloud["Class"] == "rviz_default_plugins/PointCloud2"
    assert cloud["Topic"]["Value"] == "/depth/points"
    assert (cloud["Color Transformer"], cloud["Axis"]) == ("AxisColor", "Z")


def test_the_car_does_not_depend_on_rviz2():
    # rviz2 is a desktop GUI; the launch file starts it only with rviz:=true, where it is installed.
    package = (REPO / "package.xml").read_text()
    assert "<exec_depend>rviz2</exec_depend>" not in package and "<depend>rviz2</depend>" not in package


def _setup_arguments(colcon: bool) -> dict:
    """setup.py's setup() keywords, as pip (colcon=False) or colcon (COLCON set) runs it."""
    script = (
        "import json, os, sys, setuptools\n"
        "captured = {}\n"
        "setuptools.setup = lambda **kw: captured.update(kw)\n"
        "exec(compile(open('setup.py').read(), 'setup.py', 'exec'), {'__name__': '__main__'})\n"
        "print(json.dumps({'packages': captured['packages'], "
        "'scripts': captured['entry_points']['console_scripts']}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "COLCON"}
    if colcon:
        env["COLCON"] = "1"
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_ros_workspace_installs_the_runtime_without_training():
    """colcon (the car) gets the nodes and the ROS-free tools; pip with the training extra gets training."""
    ros, pip = _setup_arguments(colcon=True), _setup_arguments(colcon=False)
    assert not any(p.startswith("training") for p in ros["packages"]) and "depth_node.ros" in ros["packages"]
    assert "training" in pip["packages"] and "training.networks" in pip["packages"]
    ros_commands = {s.split(" =")[0] for s in ros["scripts"]}
    assert {"depth_node", "depth_lifecycle_node", "depth_eval_node", "depth-replay"} <= ros_commands
    assert not ros_commands & {"depth-train", "depth-eval", "depth-export"}
    assert {"depth-train", "depth-eval", "depth-export"} <= {s.split(" =")[0] for s in pip["scripts"]}


def test_test_files_not_marked_as_needing_a_stack_import_without_it():
    """optional_stacks.py's marks are complete: each test file imports with every stack it is not
    marked for blocked, as on a ROS machine with the runtime only (colcon test). One fresh Python per
    set of blocked stacks, so no module imported for another file hides a missing mark."""
    test_dir = Path(__file__).resolve().parent
    groups: dict[tuple[str, ...], list[str]] = {}
    for path in sorted(test_dir.glob("test_*.py")):
        blocked = tuple(sorted(set(OPTIONAL_STACKS) - stacks_needed(path)))
        groups.setdefault(blocked, []).append(path.name)
    # Files that need torch are left out: the training extra always brings matplotlib along, and
    # importing torch would cost this test most of its time.
    # A group can only be checked where the stacks its files need are installed.
    missing = missing_stacks()
    groups = {
        blocked: names
        for blocked, names in groups.items()
        if "torch" in blocked and not (set(OPTIONAL_STACKS) - set(blocked)) & missing
    }
    for blocked, names in groups.items():
        script = (
            "import importlib.util, sys\n"
            f"sys.path.insert(0, {str(test_dir)!r})\n"
            f"sys.modules.update(dict.fromkeys({list(blocked)!r}))  # import fails, as where not installed\n"
            "failed = []\n"
            f"for name in {names!r}:\n"
            f"    spec = importlib.util.spec_from_file_location(name[:-3], {str(test_dir)!r} + '/' + name)\n"
            "    module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)  # as pytest does\n"
            "    try:\n"
            "        spec.loader.exec_module(module)\n"
            "    except ImportError as error:\n"
            "        failed.append(f'{name}: {error}')\n"
            "    except BaseException as error:  # pytest's Skipped (launch_testing absent) is fine\n"
            "        if type(error).__name__ != 'Skipped':\n"
            "            failed.append(f'{name}: {type(error).__name__}: {error}')\n"
            "assert not failed, failed\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300
        )
        assert result.returncode == 0, f"blocked {blocked}: {result.stderr[-3000:]}"
