"""Cityscapes as a supervised source: left images with metric depth from the published disparity.

Layout (cityscapesScripts README): ``root/<type>/<split>/<city>/<city>_<seq>_<frame>_<type><ext>`` with

- ``leftImg8bit/.../<name>_leftImg8bit.png``: the left camera's 8-bit image (2048×1024),
- ``disparity/.../<name>_disparity.png``: 16-bit; a pixel p > 0 holds d = (p - 1) / 256 pixels of
  disparity, p = 0 is an invalid measurement,
- ``camera/.../<name>_camera.json``: ``intrinsic.fx, fy, u0, v0`` (pixels) and ``extrinsic.baseline``
  (metres) of the stereo rig.

Depth = baseline · fx / d (metres) where d > 0, else 0 (invalid: p = 0, and p = 1, whose zero
disparity would be infinitely far). ``K`` = [[fx, 0, u0], [0, fy, v0], [0, 0, 1]] at 2048×1024.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from training.datasets.common import AugmentConfig, DataError, MonoDataset

CITYSCAPES_SIZE = (2048, 1024)  # (width, height) of the published images, disparity and calibration
IMAGE_SUFFIX = "_leftImg8bit.png"


def disparity_to_depth(raw: np.ndarray, baseline: float, fx: float) -> np.ndarray:
    """Cityscapes disparity PNG counts -> float32 metres, 0 = invalid (p = 0 or zero disparity)."""
    disparity = (raw.astype(np.float64) - 1.0) / 256.0
    valid = (raw > 0) & (disparity > 0)
    depth = np.zeros(raw.shape, dtype=np.float32)
    depth[valid] = baseline * fx / disparity[valid]
    return depth


@lru_cache(maxsize=4096)
def read_camera(path: str) -> tuple[np.ndarray, float]:
    """3x3 K (at 2048×1024) and the stereo baseline (m) of a ``*_camera.json``."""
    try:
        data = json.loads(Path(path).read_text())
        intrinsic, baseline = data["intrinsic"], float(data["extrinsic"]["baseline"])
        fx, fy, u0, v0 = (float(intrinsic[k]) for k in ("fx", "fy", "u0", "v0"))
    except FileNotFoundError:
        raise DataError(f"camera file {path} does not exist") from None
    except (OSError, ValueError, KeyError, TypeError):
        raise DataError(
            f"{path}: expected JSON with intrinsic.fx, fy, u0, v0 and extrinsic.baseline"
        ) from None
    if not (fx > 0 and fy > 0 and baseline > 0):
        raise DataError(f"{path}: fx={fx}, fy={fy}, baseline={baseline}, expected positive values")
    K = np.array([[fx, 0.0, u0], [0.0, fy, v0], [0.0, 0.0, 1.0]])
    K.setflags(write=False)  # shared by every caller of the cache
    return K, baseline


class CityscapesDataset(MonoDataset):
    """Left images of one split with dense metric ground truth from disparity (see the module docstring).

    Args:
        root: the Cityscapes root (holds leftImg8bit/, disparity/, camera/).
        split: the split folder: train, val, test, train_extra.
        cities: city folders to use; empty: every city of the split.
    """

    def __init__(
        self,
        root: str | Path,
        split: str,
        height: int,
        width: int,
        frame_ids: Sequence[int] = (0,),
        *,
        cities: Sequence[str] = (),
        augment: AugmentConfig | Mapping[str, Any] | None = None,
        is_train: bool = True,
        seed: int = 0,
    ) -> None:
        if list(frame_ids) != [0]:
            raise ValueError(
                f"Cityscapes samples are single images: frame_ids must be [0], got {list(frame_ids)}"
            )
        super().__init__(
            height, width, [0], augment=augment, is_train=is_train, seed=seed, with_depth_gt=True
        )
        self.root = Path(root)
        image_dir = self.root / "leftImg8bit" / split
        if not image_dir.is_dir():
            raise FileNotFoundError(f"Cityscapes image folder {image_dir} does not exist")
        dirs = (
            [image_dir / c for c in cities]
            if cities
            else sorted(d for d in image_dir.iterdir() if d.is_dir())
        )
        missing = [d for d in dirs if not d.is_dir()]
        if missing:
            raise FileNotFoundError(f"Cityscapes city folders missing: {', '.join(map(str, missing))}")
        self.names = [  # (split/city, <city>_<seq>_<frame>)
            (f"{split}/{d.name}", p.name[: -len(IMAGE_SUFFIX)])
            for d in dirs
            for p in sorted(d.glob(f"*{IMAGE_SUFFIX}"))
        ]
        if not self.names:
            raise ValueError(f"no *{IMAGE_SUFFIX} images under {image_dir}")
        for index in range(len(self.names)):
            for path in (self.disparity_path(index), self.camera_path(index)):
                if not path.is_file():
                    raise FileNotFoundError(
                        f"{path} does not exist (the disparity and camera of {self.image_path(index)})"
                    )

    def _path(self, index: int, kind: str, suffix: str) -> Path:
        folder, name = self.names[index]
        return self.root / kind / folder / f"{name}_{kind}{suffix}"

    def image_path(self, index: int) -> Path:
        return self._path(index, "leftImg8bit", ".png")

    def disparity_path(self, index: int) -> Path:
        return self._path(index, "disparity", ".png")

    def camera_path(self, index: int) -> Path:
        return self._path(index, "camera", ".json")

    def __len__(self) -> int:
        return len(self.names)

    def load_color(self, index: int, offset: int) -> np.ndarray:
        path = self.image_path(index)
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise DataError(f"cannot decode image {path} (not a PNG, missing, or truncated)")
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)

    def intrinsics(self, index: int) -> tuple[np.ndarray, tuple[int, int]]:
        return read_camera(str(self.camera_path(index)))[0], CITYSCAPES_SIZE

    def load_depth_gt(self, index: int) -> np.ndarray:
        path = self.disparity_path(index)
        raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if raw is None:
            raise DataError(f"cannot decode disparity PNG {path} (missing or truncated)")
        if raw.dtype != np.uint16 or raw.shape != CITYSCAPES_SIZE[::-1]:
            raise DataError(
                f"{path}: {raw.dtype} {raw.shape}, expected a uint16 disparity PNG of "
                f"{CITYSCAPES_SIZE[0]}x{CITYSCAPES_SIZE[1]} (the camera JSON's fx belongs to that size)"
            )
        K, baseline = read_camera(str(self.camera_path(index)))
        return disparity_to_depth(raw, baseline, float(K[0, 0]))
