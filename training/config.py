"""Training configuration: YAML defaults + a YAML file + ``section.key=value`` overrides.

The configuration is a plain nested dict (so it goes into checkpoints as-is and loads with
``torch.load(weights_only=True)``). ``training/configs/default.yaml`` holds every key with its
default; a user file only needs the keys it changes. Keys unknown to the defaults are refused
(a typo must not silently train with the default), except in the open sections listed in
``OPEN_SECTIONS``, whose keys belong to the networks/losses (``build_depth_net``,
``SelfSupervisedLoss``), which apply their own defaults to what is missing.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
DEFAULT_CONFIG = CONFIG_DIR / "default.yaml"
# Sections whose keys are defined by other modules (networks, losses); new keys are passed through.
OPEN_SECTIONS = ("model", "loss")


# Monodepth2's training modalities: monocular video, stereo pairs, both.
MODALITIES = ("M", "S", "MS")
# data.source values; the last three are single labelled images (no video: frame_ids are [0]).
SOURCES = ("kitti", "bag", "folder", "nyu", "diw", "cityscapes")
SINGLE_IMAGE_SOURCES = ("nyu", "diw", "cityscapes")


class ConfigError(ValueError):
    """A configuration file or override that cannot be applied (message names the key)."""


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read one YAML mapping (an empty file is an empty mapping)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        with path.open() as f:
            data = yaml.safe_load(f)  # safe: a config's !!python tags must not run code
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise ConfigError(f"cannot read config file {path}: {' '.join(str(err).split())}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"config file {path}: expected a YAML mapping at the top level, got {type(data).__name__}"
        )
    return data


def merge(
    base: dict[str, Any], update: Mapping[str, Any], *, strict: bool = True, _prefix: str = ""
) -> dict[str, Any]:
    """Deep-merge ``update`` into a copy of ``base``.

    With ``strict``, a key missing from ``base`` is an error unless it sits in an open section.
    Mappings merge key by key; any other value (lists included) replaces the old one.
    """
    out = copy.deepcopy(base)
    for key, value in update.items():
        name = f"{_prefix}{key}"
        top = name.split(".")[0]
        if key not in out:
            if strict and top not in OPEN_SECTIONS:
                raise ConfigError(f"unknown config key {name!r} (not in {DEFAULT_CONFIG.name})")
            out[key] = copy.deepcopy(value)
        elif isinstance(out[key], dict) and isinstance(value, Mapping):
            out[key] = merge(out[key], value, strict=strict, _prefix=f"{name}.")
        elif isinstance(out[key], dict) and value is not None:
            raise ConfigError(f"config key {name!r} is a section; cannot set it to {value!r}")
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"train.lr=2e-4"`` -> (["train", "lr"], 2e-4). Values are parsed as YAML (``[0,-1,1]``, ``null``)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected section.key=value")
    key, raw = text.split("=", 1)
    path = [part for part in key.strip().split(".") if part]
    if not path:
        raise ConfigError(f"override {text!r}: empty key")
    value = yaml.safe_load(raw) if raw.strip() else None
    # YAML 1.1 reads "1e-4" (no dot) as a string; a number is what anyone typing it means.
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    return path, value


def apply_overrides(config: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` strings in order (strictly: unknown keys are refused)."""
    for text in overrides:
        path, value = parse_override(text)
        nested: dict[str, Any] = value
        for part in reversed(path):
            nested = {part: nested}
        config = merge(config, nested)
    return config


def load_config(path: str | Path | None = None, overrides: Iterable[str] = ()) -> dict[str, Any]:
    """The full configuration: defaults, then the file at ``path`` (if any), then the overrides."""
    config = load_yaml(DEFAULT_CONFIG)
    if path is not None:
        config = merge(config, load_yaml(path))
    config = apply_overrides(config, overrides)
    validate(config)
    return config


def validate(config: Mapping[str, Any]) -> None:
    """Check the values the trainer relies on, with one-line errors naming the key."""
    data, train = config["data"], config["train"]
    if data["source"] not in SOURCES:
        raise ConfigError(
            f"data.source={data['source']!r}: expected kitti, bag or folder (video) "
            "or nyu, diw or cityscapes (single labelled images)"
        )
    validate_single_image_source(data)
    for key in ("height", "width"):
        if not isinstance(data[key], int) or data[key] <= 0 or data[key] % 32:
            raise ConfigError(f"data.{key}={data[key]!r}: expected a positive multiple of 32")
    frame_ids = data["frame_ids"]
    if not frame_ids or frame_ids[0] != 0 or not all(isinstance(f, int) for f in frame_ids):
        raise ConfigError(f"data.frame_ids={frame_ids!r}: expected integers starting with 0, e.g. [0, -1, 1]")
    if data.get("modality", "M") not in MODALITIES:
        raise ConfigError(f"data.modality={data.get('modality')!r}: expected one of {', '.join(MODALITIES)}")
    if data["depth_gt"] not in (None, "none", "velodyne", "dense"):
        raise ConfigError(f"data.depth_gt={data['depth_gt']!r}: expected none, velodyne or dense")
    if train["batch_size"] < 1 or train["epochs"] < 1:
        raise ConfigError("train.batch_size and train.epochs must be >= 1")
    if train["max_steps"] is not None and train["max_steps"] < 1:
        raise ConfigError(f"train.max_steps={train['max_steps']!r}: expected null or >= 1")
    if train["device"] not in ("auto", "cpu") and not str(train["device"]).startswith("cuda"):
        raise ConfigError(f"train.device={train['device']!r}: expected auto, cpu or cuda[:N]")


def validate_single_image_source(data: Mapping[str, Any]) -> None:
    """The ``data.nyu`` / ``data.diw`` / ``data.cityscapes`` keys of the selected source."""
    source = data["source"]
    if source not in SINGLE_IMAGE_SOURCES:
        return
    if data.get("modality", "M") != "M":
        raise ConfigError(
            f"data.modality={data['modality']}: data.source={source} has no stereo pairs (M only)"
        )
    if data.get("depth_gt") not in (None, "none"):
        raise ConfigError(
            f"data.depth_gt={data['depth_gt']!r}: leave it none for data.source={source} "
            "(nyu and cityscapes always add their own dense ground truth, diw has none)"
        )
    section = data.get(source) or {}
    if source == "nyu":
        scale = section.get("depth_scale", "auto")
        if scale != "auto" and (isinstance(scale, bool) or not isinstance(scale, (int, float)) or scale <= 0):
            raise ConfigError(f"data.nyu.depth_scale={scale!r}: expected auto or metres per PNG count > 0")
    if source == "diw" and not section.get("split"):
        raise ConfigError("data.diw.split: expected the DIW annotation CSV (e.g. DIW_train_val.csv)")
    if source == "cityscapes" and not (isinstance(section.get("split"), str) and section["split"]):
        raise ConfigError(f"data.cityscapes.split={section.get('split')!r}: expected a split folder (train)")


def temporal_frame_ids(data: Mapping[str, Any]) -> list[int]:
    """The video frames a sample holds: ``data.frame_ids``, or only frame 0 for stereo-only training
    and for the single-image sources."""
    single = data.get("modality", "M") == "S" or data.get("source") in SINGLE_IMAGE_SOURCES
    return [0] if single else [int(f) for f in data["frame_ids"]]


def uses_stereo(data: Mapping[str, Any]) -> bool:
    """Whether samples carry the stereo partner (``data.modality`` S or MS)."""
    return data.get("modality", "M") in ("S", "MS")
