"""Depth in the Wild (Chen et al., NIPS 2016): one human-labelled point pair per image, no depth.

Layout of the published annotation CSVs (``DIW_train_val.csv``, ``DIW_test.csv``), as the authors'
loader (princeton-vl/relative_depth, ``DataLoader_DIW.lua``) reads them: two lines per sample,

    <image path>
    y_A,x_A,y_B,x_B,<ordinal>,image_width,image_height

with 1-based pixel coordinates (row y, column x) in an image of the given size, and ordinal ``>``
(depth of A greater: A is farther) or ``<`` (A is closer). Relative image paths resolve against
``data.root`` (the published CSVs name the authors' folders: point root where they land, or edit them).

Batch items added (``sample_extras``), besides the image:

- ``"pairs"``: float32 [P,4] = (x_A, y_A, x_B, y_B) (x right, y down, the order of
  ``training.losses.ranking_loss``), 0-based pixel coordinates at the training size with pixel centres
  at integers (the frame of ``K``; ``round()`` gives the pixel a point falls in, the same pixel
  ``resize_sparse_depth`` would put it in), mirrored with the image on a flip;
- ``"relation"``: float32 [P], +1 where depth(A) > depth(B), -1 where depth(A) < depth(B).

An image that appears on several samples of the CSV (pairs sampled from ground truth by
``training.diw_pairs`` repeat it, one pair per sample) becomes one training sample with all its pairs.
P is the CSV's largest number of pairs for one image (1 for the published DIW files), and images with
fewer are padded with NaN pairs and relation 0, which the ranking loss skips; the default collate then
stacks them to [B,P,4] and [B,P].

There is no camera model: ``K`` is a nominal pinhole (fx = fy = image width, about 53° horizontal
field of view, principal point at the centre). The ranking loss compares the predicted depth at two
pixels and never projects a point, so K does not enter it; it is there so every source's batches have
the same keys. There is no ``depth_gt``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from training.datasets.common import AugmentConfig, DataError, MonoDataset, resolve_data_path

RELATIONS = {">": 1, "<": -1}
COORDINATE_LINE = "y_A,x_A,y_B,x_B,>|<,image_width,image_height"


@dataclass(frozen=True)
class DiwPair:
    """One annotated image: the CSV's path, 1-based (row, column) of A and B, relation and image size."""

    image: Path
    y_a: int
    x_a: int
    y_b: int
    x_b: int
    relation: int  # +1: depth(A) > depth(B), -1: depth(A) < depth(B)
    width: int
    height: int

    def training_pixels(self, width: int, height: int) -> np.ndarray:
        """(x_A, y_A, x_B, y_B) at a (width, height) image: 0-based, pixel centres at integers.

        1-based pixel x covers [x-1, x) of the original image; its centre x - 0.5 scales by
        width / self.width, minus 0.5 for centres at integers.
        """
        sy, sx = height / self.height, width / self.width
        ys = (np.array([self.y_a, self.y_b], dtype=np.float64) - 0.5) * sy - 0.5
        xs = (np.array([self.x_a, self.x_b], dtype=np.float64) - 0.5) * sx - 0.5
        return np.array([xs[0], ys[0], xs[1], ys[1]], dtype=np.float32)


def parse_coordinate_line(line: str, image: Path, where: str) -> DiwPair:
    """``"12,40,30,7,>,64,48"`` (with the preceding image line's path) -> DiwPair."""
    fields = [field.strip() for field in line.split(",")]
    try:
        if len(fields) != 7 or fields[4] not in RELATIONS:
            raise ValueError
        y_a, x_a, y_b, x_b, width, height = (int(fields[i]) for i in (0, 1, 2, 3, 5, 6))
    except ValueError:
        raise DataError(f"{where}: expected '{COORDINATE_LINE}', got {line.strip()!r}") from None
    inside = all(1 <= y <= height for y in (y_a, y_b)) and all(1 <= x <= width for x in (x_a, x_b))
    if width < 1 or height < 1 or not inside or (y_a, x_a) == (y_b, x_b):
        raise DataError(
            f"{where}: points must be two different 1-based pixels of the image, got {line.strip()!r}"
        )
    return DiwPair(image, y_a, x_a, y_b, x_b, RELATIONS[fields[4]], width, height)


def read_diw_csv(path: str | Path, root: str | Path) -> list[DiwPair]:
    """Every sample of a DIW annotation CSV, image paths resolved against ``root`` and checked."""
    path, root = Path(path), Path(root)
    if not path.is_file():
        raise FileNotFoundError(f"DIW annotation file {path} does not exist")
    lines = [
        (n, line.strip()) for n, line in enumerate(path.read_text().splitlines(), start=1) if line.strip()
    ]
    if len(lines) % 2:
        raise DataError(f"{path}:{lines[-1][0]}: image line without its '{COORDINATE_LINE}' line")
    pairs = []
    for (n_image, image_line), (n_points, point_line) in zip(lines[0::2], lines[1::2]):
        image = Path(image_line) if Path(image_line).is_absolute() else root / image_line
        if not image.is_file():
            raise FileNotFoundError(f"{path}:{n_image}: image {image} does not exist")
        pairs.append(parse_coordinate_line(point_line, image, f"{path}:{n_points}"))
    if not pairs:
        raise DataError(f"{path}: no samples (expected an image line, then '{COORDINATE_LINE}')")
    return pairs


def format_diw_sample(pair: DiwPair, root: str | Path | None = None) -> str:
    """The two CSV lines of one sample (inverse of ``read_diw_csv``); the image path relative to
    ``root`` where it lies under it."""
    image = pair.image
    if root is not None and image.is_relative_to(root):
        image = image.relative_to(root)
    ordinal = next(char for char, value in RELATIONS.items() if value == pair.relation)
    coords = f"{pair.y_a},{pair.x_a},{pair.y_b},{pair.x_b},{ordinal},{pair.width},{pair.height}"
    return f"{image.as_posix()}\n{coords}\n"


def write_diw_csv(path: str | Path, pairs: Iterable[DiwPair], root: str | Path | None = None) -> Path:
    """Write samples in the published DIW CSV layout (an image may repeat, one pair per sample)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(format_diw_sample(pair, root) for pair in pairs))
    return path


class DiwDataset(MonoDataset):
    """DIW images with their point pair and ordinal relation (keys in the module docstring).

    Args:
        root: folder the CSV's relative image paths resolve against.
        csv: the annotation file, as given if it exists, else relative to root.
    """

    def __init__(
        self,
        root: str | Path,
        csv: str | Path,
        height: int,
        width: int,
        frame_ids: Sequence[int] = (0,),
        *,
        augment: AugmentConfig | Mapping[str, Any] | None = None,
        is_train: bool = True,
        seed: int = 0,
    ) -> None:
        if list(frame_ids) != [0]:
            raise ValueError(f"DIW samples are single images: frame_ids must be [0], got {list(frame_ids)}")
        super().__init__(height, width, [0], augment=augment, is_train=is_train, seed=seed)
        self.root = Path(root)
        self.pairs = read_diw_csv(resolve_data_path(csv, self.root), self.root)
        by_image: dict[Path, list[DiwPair]] = {}
        for pair in self.pairs:
            by_image.setdefault(pair.image, []).append(pair)
        self.images = list(by_image.values())  # the samples: one image's pairs each
        self.max_pairs = max(len(group) for group in self.images)

    def __len__(self) -> int:
        return len(self.images)

    def load_color(self, index: int, offset: int) -> np.ndarray:
        path = self.images[index][0].image
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)  # DIW's .thumb files are JPEGs; grey ones become RGB
        if image is None:
            raise DataError(f"cannot decode image {path} (not a JPEG/PNG, missing, or truncated)")
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)

    def intrinsics(self, index: int) -> tuple[np.ndarray, tuple[int, int]]:
        pair = self.images[index][0]
        w, h = pair.width, pair.height
        K = np.array([[w, 0.0, w / 2], [0.0, w, h / 2], [0.0, 0.0, 1.0]], dtype=np.float64)
        return K, (w, h)

    def sample_extras(self, index: int, flip: bool) -> dict[str, torch.Tensor]:
        group = self.images[index]
        pixels = np.full((self.max_pairs, 4), np.nan, dtype=np.float32)
        relation = np.zeros(self.max_pairs, dtype=np.float32)
        pixels[: len(group)] = [pair.training_pixels(self.width, self.height) for pair in group]
        relation[: len(group)] = [pair.relation for pair in group]
        if flip:  # column x goes to width - 1 - x, as flip_intrinsics does for cx
            pixels[:, [0, 2]] = self.width - 1 - pixels[:, [0, 2]]
        return {"pairs": torch.from_numpy(pixels), "relation": torch.from_numpy(relation)}
