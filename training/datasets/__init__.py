"""Training data sources: KITTI raw, rosbag2 recordings, plain image folders, and the supervised
single-image sets NYU Depth V2, DIW (Depth in the Wild) and Cityscapes.

``build_dataset(config, "train" | "val")`` makes the dataset a training config's ``data`` section
describes (``None`` for "val" when no validation data is configured). Every dataset yields the
batch items of docs/INTERFACES.md (see ``training.datasets.common``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from training.config import SINGLE_IMAGE_SOURCES, SOURCES, temporal_frame_ids, uses_stereo
from training.datasets.bag import BagDataset
from training.datasets.cityscapes import CityscapesDataset
from training.datasets.common import AugmentConfig, MonoDataset
from training.datasets.diw import DiwDataset
from training.datasets.folder import FolderDataset
from training.datasets.kitti import (
    KittiDataset,
    SplitEntry,
    read_split_file,
    split_from_drives,
    write_split_file,
)
from training.datasets.nyu import NyuCsvDataset, NyuMatDataset, open_nyu

__all__ = [
    "AugmentConfig",
    "BagDataset",
    "CityscapesDataset",
    "DiwDataset",
    "FolderDataset",
    "KittiDataset",
    "MonoDataset",
    "NyuCsvDataset",
    "NyuMatDataset",
    "SplitEntry",
    "build_dataset",
    "kitti_entries",
    "read_split_file",
    "split_from_drives",
    "write_split_file",
]


def kitti_entries(data: Mapping[str, Any], which: str = "train") -> list[SplitEntry] | None:
    """The KITTI frames of the ``data`` section: its split file, else its drives (None: neither)."""
    split_key, drives_key = ("split", "drives") if which == "train" else ("val_split", "val_drives")
    if data.get(split_key):
        return read_split_file(data[split_key])
    if data.get(drives_key):
        return split_from_drives(
            data["root"],
            data[drives_key],
            temporal_frame_ids(data),
            data.get("sides", ["l"]),
            data.get("static_speed"),
        )
    return None


def build_dataset(config: Mapping[str, Any], which: str = "train") -> MonoDataset | None:
    """The dataset for ``which`` ("train" or "val") from a full training config.

    Validation sets are built without augmentation or stereo partners; "train" without data is an
    error.
    """
    data, seed = config["data"], int(config["train"]["seed"])
    is_train = which == "train"
    common = {
        "height": data["height"],
        "width": data["width"],
        "frame_ids": temporal_frame_ids(data),
        "augment": data.get("augment") if is_train else None,
        "is_train": is_train,
        "seed": seed,
    }
    source = data["source"]
    if source == "kitti":
        entries = kitti_entries(data, which)
        if entries is None:
            if is_train:
                raise ValueError("data.source=kitti needs data.split (a split file) or data.drives")
            return None
        return KittiDataset(
            data["root"],
            entries,
            png=data.get("png"),
            depth_gt=data.get("depth_gt"),
            stereo=is_train and uses_stereo(data),
            **common,
        )
    if data.get("depth_gt") not in (None, "none"):  # nyu and cityscapes add their own, always
        raise ValueError(f"data.depth_gt={data['depth_gt']!r} is only available for data.source=kitti")
    if source == "bag":
        bag = data.get("bag", {})
        path = data["root"] if is_train else bag.get("val_path")
        if path is None:
            return None
        stereo = is_train and uses_stereo(data)
        return BagDataset(
            path,
            image_topic=bag.get("image_topic"),
            camera_info_topic=bag.get("camera_info_topic"),
            odom_topic=bag.get("odom_topic"),
            static_speed=data.get("static_speed"),
            right_image_topic=bag.get("right_image_topic") if stereo else None,
            right_camera_info_topic=bag.get("right_camera_info_topic") if stereo else None,
            stereo=stereo,
            **common,
        )
    if uses_stereo(data):
        raise ValueError(f"data.modality={data['modality']} needs stereo pairs: data.source kitti or bag")
    if source == "folder":
        folder = data.get("folder", {})
        sequences = folder.get("sequences", []) if is_train else folder.get("val_sequences", [])
        if not is_train and not sequences:
            return None
        return FolderDataset(data["root"], sequences=sequences, **common)
    if source in SINGLE_IMAGE_SOURCES:
        return build_single_image_dataset(data, is_train, common)
    raise ValueError(f"data.source={source!r}: expected one of {', '.join(SOURCES)}")


def build_single_image_dataset(
    data: Mapping[str, Any], is_train: bool, common: Mapping[str, Any]
) -> MonoDataset | None:
    """NYU, DIW or Cityscapes from ``data.<source>`` (None for validation when none is configured)."""
    source = data["source"]
    section = data.get(source) or {}
    split = section.get("split") if is_train else section.get("val_split")
    if not is_train and not split:
        return None
    if source == "nyu":
        subset = "train" if is_train else "test"  # a splits.mat's trainNdxs / testNdxs
        return open_nyu(data["root"], split, subset, depth_scale=section.get("depth_scale", "auto"), **common)
    if not split:
        raise ValueError(f"data.source={source} needs data.{source}.split")
    if source == "diw":
        return DiwDataset(data["root"], split, **common)
    return CityscapesDataset(data["root"], split, cities=section.get("cities") or (), **common)
