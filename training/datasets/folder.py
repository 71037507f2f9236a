"""Plain folders of image sequences as a training source.

Layout: ``root/<sequence>/*.png`` (or .jpg/.jpeg), frames in file-name order, and an intrinsics
file in the sequence folder or, shared by all sequences, in ``root``: ``intrinsics.txt`` with
``fx fy cx cy`` (or the 9 numbers of a row-major 3x3 K), or ``intrinsics.yaml``/``.yml`` with keys
``fx, fy, cx, cy`` or ``K``/``camera_matrix`` (9 numbers, a 3x3 list, or OpenCV's ``{data: [...]}``).
The intrinsics are at the images' own size. There is no ego-motion, so distances are NaN.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

from training.datasets.common import AugmentConfig, MonoDataset

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
INTRINSICS_NAMES = ("intrinsics.txt", "intrinsics.yaml", "intrinsics.yml")


def _K_from_values(values: Sequence[float], path: Path) -> np.ndarray:
    values = [float(v) for v in values]
    if len(values) == 4:
        fx, fy, cx, cy = values
        return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
    if len(values) == 9:
        return np.array(values, dtype=np.float64).reshape(3, 3)
    raise ValueError(f"{path}: expected 'fx fy cx cy' or 9 numbers of K, got {len(values)} numbers")


def read_intrinsics(path: str | Path) -> np.ndarray:
    """3x3 K from an intrinsics.txt / .yaml file (formats in the module docstring)."""
    path = Path(path)
    if path.suffix in (".yaml", ".yml"):
        data = yaml.safe_load(path.read_text()) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a YAML mapping with fx, fy, cx, cy or K")
        if all(k in data for k in ("fx", "fy", "cx", "cy")):
            return _K_from_values([data["fx"], data["fy"], data["cx"], data["cy"]], path)
        for key in ("K", "camera_matrix", "k"):
            if key in data:
                value = data[key]
                if isinstance(value, dict):
                    value = value.get("data", [])
                return _K_from_values(np.asarray(value, dtype=np.float64).ravel().tolist(), path)
        raise ValueError(f"{path}: expected keys fx, fy, cx, cy or K / camera_matrix")
    numbers = path.read_text().replace(",", " ").split()
    try:
        return _K_from_values([float(v) for v in numbers], path)
    except ValueError as exc:
        if "expected" in str(exc):
            raise
        raise ValueError(f"{path}: expected numbers 'fx fy cx cy', got {path.read_text()[:60]!r}") from None


def find_intrinsics(sequence_dir: Path, root: Path) -> Path:
    for folder in (sequence_dir, root):
        for name in INTRINSICS_NAMES:
            if (folder / name).is_file():
                return folder / name
    raise FileNotFoundError(f"no intrinsics file ({', '.join(INTRINSICS_NAMES)}) in {sequence_dir} or {root}")


def list_images(sequence_dir: Path) -> list[Path]:
    return sorted(p for p in sequence_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


class FolderDataset(MonoDataset):
    """Training samples from image sequences in folders (see ``MonoDataset`` for the keys).

    Args:
        root: folder holding one sub-folder per sequence (or the images themselves).
        sequences: sub-folder names to use; empty: every sub-folder with images (or root itself).
    """

    def __init__(
        self,
        root: str | Path,
        height: int,
        width: int,
        frame_ids: Sequence[int] = (0, -1, 1),
        *,
        sequences: Sequence[str] = (),
        augment: AugmentConfig | Mapping[str, Any] | None = None,
        is_train: bool = True,
        seed: int = 0,
    ) -> None:
        super().__init__(height, width, frame_ids, augment=augment, is_train=is_train, seed=seed)
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"image folder {self.root} does not exist")
        if sequences:
            dirs = [self.root / name for name in sequences]
            missing = [d for d in dirs if not d.is_dir()]
            if missing:
                raise FileNotFoundError(f"sequence folders missing: {', '.join(map(str, missing))}")
        else:
            dirs = sorted(d for d in self.root.iterdir() if d.is_dir() and list_images(d))
            if not dirs and list_images(self.root):
                dirs = [self.root]
        self.sequences: list[tuple[list[Path], np.ndarray, tuple[int, int]]] = []
        self.samples: list[tuple[int, int]] = []  # (sequence, frame position)
        lo, hi = -min(self.frame_ids), max(self.frame_ids)
        for seq_dir in dirs:
            images = list_images(seq_dir)
            if len(images) < lo + hi + 1:
                continue
            K = read_intrinsics(find_intrinsics(seq_dir, self.root))
            first = cv2.imread(str(images[0]), cv2.IMREAD_UNCHANGED)
            if first is None:
                raise ValueError(f"cannot read image {images[0]}")
            size = (first.shape[1], first.shape[0])
            seq = len(self.sequences)
            self.sequences.append((images, K, size))
            self.samples.extend((seq, i) for i in range(lo, len(images) - hi))
        if not self.samples:
            raise ValueError(f"no image sequences with at least {lo + hi + 1} frames under {self.root}")

    def __len__(self) -> int:
        return len(self.samples)

    def load_color(self, index: int, offset: int) -> np.ndarray:
        seq, position = self.samples[index]
        path = self.sequences[seq][0][position + offset]
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"cannot read image {path}")
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)

    def intrinsics(self, index: int) -> tuple[np.ndarray, tuple[int, int]]:
        _, K, size = self.sequences[self.samples[index][0]]
        return K, size
