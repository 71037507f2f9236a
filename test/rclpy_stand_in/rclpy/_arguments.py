"""The ROS command-line arguments the stand-in understands (a subset of rcl's)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass
class RosArguments:
    # (node name pattern, parameter name, value), in the order given: later entries win.
    parameters: list[tuple[str, str, Any]] = field(default_factory=list)
    # (node name or "" for all nodes, from, to) for topic names and __ns / __node.
    remaps: list[tuple[str, str, str]] = field(default_factory=list)


def _parse_value(text: str) -> Any:
    # rcl parses -p values as YAML, as it does parameter files.
    return yaml.safe_load(text) if text != "" else ""


def _flatten(prefix: str, params: dict[str, Any]) -> list[tuple[str, Any]]:
    items: list[tuple[str, Any]] = []
    for key, value in params.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            items.extend(_flatten(name, value))
        else:
            items.append((name, value))
    return items


def load_params_file(path: str) -> list[tuple[str, str, Any]]:
    """A ROS 2 parameter file -> (node pattern, name, value); node keys as rcl reads them."""
    content = yaml.safe_load(Path(path).read_text())
    if not isinstance(content, dict):
        raise RuntimeError(f"Failed to parse parameters from file '{path}': not a mapping")
    entries: list[tuple[str, str, Any]] = []
    for node_key, body in content.items():
        if not isinstance(body, dict) or "ros__parameters" not in body:
            raise RuntimeError(
                f"Failed to parse parameters from file '{path}': no ros__parameters under {node_key}"
            )
        pattern = str(node_key) if str(node_key).startswith("/") else "/" + str(node_key)
        for name, value in _flatten("", body["ros__parameters"] or {}):
            entries.append((pattern, name, value))
    return entries


def parse_ros_args(args: list[str]) -> RosArguments:
    """Parse ``--ros-args ... [--]`` sections: -p/--param, -r/--remap, --params-file (others skipped)."""
    result = RosArguments()
    in_ros_args = False
    tokens = list(args)
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token == "--ros-args":
            in_ros_args = True
        elif token == "--":
            in_ros_args = False
        elif in_ros_args and token in ("-p", "--param", "-r", "--remap", "--params-file"):
            if i + 1 >= len(tokens):
                raise RuntimeError(f"Couldn't parse trailing {token} flag. No argument given.")
            value = tokens[i + 1]
            i += 1
            if token == "--params-file":
                result.parameters.extend(load_params_file(value))
                continue
            if ":=" not in value:
                raise RuntimeError(f"Couldn't parse {token} argument '{value}': expected name:=value")
            lhs, text = value.split(":=", 1)
            if token in ("-p", "--param") and not text.strip():  # rcl's YAML parser refuses an empty value
                raise RuntimeError(
                    f"failed to initialize rcl: Couldn't parse parameter override rule: '{token} {value}'"
                )
            node, _, name = lhs.rpartition(":")  # an optional "node_name:" prefix
            if token in ("-p", "--param"):
                result.parameters.append(("/" + node if node else "/**", name, _parse_value(text)))
            else:
                result.remaps.append((node, name, text))
        i += 1
    return result


def node_pattern_matches(pattern: str, fully_qualified_name: str) -> bool:
    """rcl's node-name wildcards: ``*`` one token, ``**`` any number of tokens."""
    regex = re.escape(pattern).replace(r"/\*\*", "(/[^/]+)*").replace(r"\*\*", ".*").replace(r"\*", "[^/]*")
    return re.fullmatch(regex, fully_qualified_name) is not None
