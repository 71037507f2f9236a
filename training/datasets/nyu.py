"""NYU Depth V2 as a supervised source, in its two published layouts.

**Labelled MATLAB file** (``data.root`` = ``nyu_depth_v2_labeled.mat``, MATLAB v7.3 = HDF5, read with
h5py): dataset ``images`` is stored [N, 3, W, H] uint8 RGB and ``depths`` [N, W, H] float32 metres
(MATLAB's H×W×3×N arrays seen column-major), so a frame is ``images[i].transpose(2, 1, 0)``. The
official train/test split is ``splits.mat`` (from the NYU "indoor_seg_sup" page): ``trainNdxs`` (795)
and ``testNdxs`` (654), 1-based column vectors; the published file is MATLAB v5 (read with scipy), a
re-saved v7.3 one is read with h5py. A plain text file of 1-based indices (whitespace or commas,
``#`` comments) works too.

**CSV of pairs** (``data.root`` = the folder DenseDepth's ``nyu_data.zip`` was extracted to): each line
``rgb_path,depth_path`` relative to root, e.g. ``data/nyu2_train/<scene>_out/1.jpg,...1.png`` in
``data/nyu2_train.csv``. Depth PNG units differ between the two files of that distribution (see
DenseDepth's ``data.py``): the train PNGs are 8-bit with 255 = 10 m, the test PNGs
(``data/nyu2_test.csv``) 16-bit millimetres. ``depth_scale="auto"`` picks by bit depth; a number
(metres per count) overrides it. 0 is invalid in both.

Both layouts are 640×480 frames of the Kinect's RGB camera, whose intrinsics (NYU toolbox
``camera_params.m``) are ``NYU_K``. Ground truth is dense, in metres (0 = invalid).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import h5py
import numpy as np

from training.datasets.common import AugmentConfig, DataError, MonoDataset, resolve_data_path

# Kinect RGB camera of NYU Depth V2 at 640x480 (fx_rgb, fy_rgb, cx_rgb, cy_rgb of the toolbox).
NYU_K = np.array(
    [[518.857901, 0.0, 325.582449], [0.0, 519.469611, 253.736166], [0.0, 0.0, 1.0]], dtype=np.float64
)
NYU_K.setflags(write=False)
NYU_SIZE = (640, 480)  # (width, height) the intrinsics belong to
SPLIT_KEYS = {"train": "trainNdxs", "test": "testNdxs"}
# DenseDepth's NYU PNGs: 8-bit train depths scaled so 255 = 10 m, 16-bit test depths in millimetres.
AUTO_DEPTH_SCALE = {np.dtype(np.uint8): 10.0 / 255.0, np.dtype(np.uint16): 1e-3}


def read_split_indices(path: str | Path, subset: str = "train", count: int | None = None) -> list[int]:
    """0-based frame indices of ``subset`` ("train" | "test") from ``splits.mat`` or a text index file.

    The file holds 1-based indices (MATLAB's, as the official ``trainNdxs``/``testNdxs``); a text file
    is one list whatever ``subset`` is. With ``count``, each index must name one of ``count`` frames.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"NYU split file {path} does not exist")
    if path.suffix.lower() == ".mat":
        values = _mat_split(path, SPLIT_KEYS[subset])
    else:
        values = _text_split(path)
    if values.size == 0:
        raise DataError(f"{path}: no frame indices")
    last = np.inf if count is None else count
    bad = values[(values != np.round(values)) | (values < 1) | (values > last)]
    if bad.size:
        limit = ">= 1" if count is None else f"1..{count}"
        raise DataError(f"{path}: index {bad[0]:g} is not a 1-based frame index ({limit})")
    return [int(v) - 1 for v in values]


def _mat_split(path: Path, key: str) -> np.ndarray:
    if h5py.is_hdf5(path):  # MATLAB v7.3
        with h5py.File(path, "r") as f:
            if key not in f:
                raise DataError(f"{path}: no dataset {key!r} (expected trainNdxs and testNdxs)")
            return np.asarray(f[key], dtype=np.float64).ravel()
    import scipy.io  # only the published v5 splits.mat needs it; slow to import

    try:
        mat = scipy.io.loadmat(str(path), variable_names=[key])
    except (ValueError, TypeError, OSError) as err:
        raise DataError(f"{path}: cannot read as a MATLAB file ({err})") from None
    if key not in mat:
        raise DataError(f"{path}: no variable {key!r} (expected trainNdxs and testNdxs)")
    return np.asarray(mat[key], dtype=np.float64).ravel()


def _text_split(path: Path) -> np.ndarray:
    values: list[float] = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        text = line.split("#", 1)[0].replace(",", " ")
        try:
            values.extend(float(v) for v in text.split())
        except ValueError:
            raise DataError(
                f"{path}:{number}: expected 1-based frame indices, got {line.strip()!r}"
            ) from None
    return np.asarray(values, dtype=np.float64)


def read_pairs_csv(path: str | Path, root: str | Path) -> list[tuple[Path, Path]]:
    """``rgb_path,depth_path`` lines (relative to ``root``, or absolute) -> existing file pairs."""
    path, root = resolve_data_path(path, root), Path(root)
    if not path.is_file():
        raise FileNotFoundError(f"NYU pairs CSV {path} does not exist")
    pairs = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = [field.strip() for field in line.split(",")]
        if len(fields) != 2 or not all(fields):
            raise DataError(f"{path}:{number}: expected 'rgb_path,depth_path', got {line.strip()!r}")
        files = tuple(root / field for field in fields)
        for file in files:
            if not file.is_file():
                raise FileNotFoundError(f"{path}:{number}: {file} does not exist")
        pairs.append(files)
    if not pairs:
        raise DataError(f"{path}: no 'rgb_path,depth_path' lines")
    return pairs


def depth_png_to_metres(
    raw: np.ndarray, depth_scale: float | str, path: str | Path = "depth PNG"
) -> np.ndarray:
    """A depth PNG's counts -> float32 metres (0 stays 0 = invalid); ``"auto"``: DenseDepth's units."""
    if raw.ndim != 2 or raw.dtype not in AUTO_DEPTH_SCALE:
        raise DataError(f"{path}: {raw.dtype} {raw.shape}, expected a single-channel 8- or 16-bit depth PNG")
    scale = AUTO_DEPTH_SCALE[raw.dtype] if depth_scale == "auto" else float(depth_scale)
    return (raw.astype(np.float32) * np.float32(scale)).astype(np.float32)


class _LabelledFile:
    """The labelled .mat, opened lazily once per process (an HDF5 handle must not cross a fork)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: h5py.File | None = None
        self._pid = -1
        if not path.is_file():
            raise FileNotFoundError(f"NYU labelled file {path} does not exist")
        if not h5py.is_hdf5(path):
            raise DataError(f"{path}: not an HDF5 file (expected MATLAB v7.3 nyu_depth_v2_labeled.mat)")
        with h5py.File(path, "r") as f:
            for name in ("images", "depths"):
                if name not in f or not isinstance(f[name], h5py.Dataset):
                    raise DataError(f"{path}: no dataset {name!r} (expected 'images' and 'depths')")
            images, depths = f["images"].shape, f["depths"].shape
        if len(images) != 4 or images[1] != 3 or len(depths) != 3 or depths != (images[0], *images[2:]):
            raise DataError(
                f"{path}: images {images} / depths {depths}, expected [N,3,W,H] uint8 and [N,W,H] float"
            )
        self.count = int(images[0])

    def _open(self) -> h5py.File:
        if self._file is None or self._pid != os.getpid():
            self._file = h5py.File(self.path, "r")
            self._pid = os.getpid()
        return self._file

    def __getstate__(self) -> dict[str, Any]:  # spawn-started workers pickle the dataset
        return {**self.__dict__, "_file": None, "_pid": -1}

    def image(self, index: int) -> np.ndarray:
        """RGB uint8 (H,W,3): MATLAB stores H×W×3 column-major, h5py shows it as [3,W,H]."""
        return np.ascontiguousarray(
            np.asarray(self._open()["images"][index], dtype=np.uint8).transpose(2, 1, 0)
        )

    def depth(self, index: int) -> np.ndarray:
        depth = np.asarray(self._open()["depths"][index], dtype=np.float32).T
        return np.where(np.isfinite(depth) & (depth > 0), depth, 0.0).astype(np.float32)


class _NyuBase(MonoDataset):
    """Single RGB frames with dense metric ground truth and NYU's Kinect intrinsics."""

    def __init__(
        self,
        height: int,
        width: int,
        frame_ids: Sequence[int],
        augment: AugmentConfig | Mapping[str, Any] | None,
        is_train: bool,
        seed: int,
    ) -> None:
        if list(frame_ids) != [0]:
            raise ValueError(f"NYU samples are single images: frame_ids must be [0], got {list(frame_ids)}")
        super().__init__(
            height, width, [0], augment=augment, is_train=is_train, seed=seed, with_depth_gt=True
        )

    def intrinsics(self, index: int) -> tuple[np.ndarray, tuple[int, int]]:
        return NYU_K, NYU_SIZE


class NyuMatDataset(_NyuBase):
    """Frames of ``nyu_depth_v2_labeled.mat`` (see the module docstring).

    Args:
        path: the labelled .mat file.
        split: ``splits.mat`` or a text file of 1-based indices; None: every frame.
        subset: which list of a ``splits.mat`` to use: "train" (trainNdxs) or "test" (testNdxs).
    """

    def __init__(
        self,
        path: str | Path,
        height: int,
        width: int,
        frame_ids: Sequence[int] = (0,),
        *,
        split: str | Path | None = None,
        subset: str = "train",
        augment: AugmentConfig | Mapping[str, Any] | None = None,
        is_train: bool = True,
        seed: int = 0,
    ) -> None:
        if subset not in SPLIT_KEYS:
            raise ValueError(f"subset={subset!r}: expected train (trainNdxs) or test (testNdxs)")
        super().__init__(height, width, frame_ids, augment, is_train, seed)
        self.file = _LabelledFile(Path(path))
        count = self.file.count
        if split is None:
            self.indices = list(range(count))
        else:
            self.indices = read_split_indices(resolve_data_path(split, self.file.path.parent), subset, count)

    def __len__(self) -> int:
        return len(self.indices)

    def load_color(self, index: int, offset: int) -> np.ndarray:
        return self.file.image(self.indices[index])

    def load_depth_gt(self, index: int) -> np.ndarray:
        return self.file.depth(self.indices[index])


class NyuCsvDataset(_NyuBase):
    """RGB/depth file pairs listed in a CSV (DenseDepth's layout; see the module docstring).

    Args:
        root: the folder the CSV's paths are relative to.
        csv: the pairs file, relative to root or absolute.
        depth_scale: metres per depth-PNG count, or "auto" (8-bit: 10/255, 16-bit: 0.001).
    """

    def __init__(
        self,
        root: str | Path,
        csv: str | Path,
        height: int,
        width: int,
        frame_ids: Sequence[int] = (0,),
        *,
        depth_scale: float | str = "auto",
        augment: AugmentConfig | Mapping[str, Any] | None = None,
        is_train: bool = True,
        seed: int = 0,
    ) -> None:
        super().__init__(height, width, frame_ids, augment, is_train, seed)
        if depth_scale != "auto" and not float(depth_scale) > 0:
            raise ValueError(f"depth_scale={depth_scale!r}: expected 'auto' or metres per count > 0")
        self.depth_scale = depth_scale
        self.pairs = read_pairs_csv(csv, root)

    def __len__(self) -> int:
        return len(self.pairs)

    def load_color(self, index: int, offset: int) -> np.ndarray:
        path = self.pairs[index][0]
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise DataError(f"cannot decode image {path} (not a PNG/JPEG, missing, or truncated)")
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)

    def load_depth_gt(self, index: int) -> np.ndarray:
        path = self.pairs[index][1]
        raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if raw is None:
            raise DataError(f"cannot decode depth PNG {path} (missing or truncated)")
        return depth_png_to_metres(raw, self.depth_scale, path)


def open_nyu(
    root: str | Path, split: str | Path | None, subset: str = "train", **kwargs: Any
) -> NyuMatDataset | NyuCsvDataset:
    """The NYU dataset ``root`` holds: a .mat file -> ``NyuMatDataset``, a folder -> ``NyuCsvDataset``.

    ``split`` is the index file (``subset`` picks trainNdxs/testNdxs of a splits.mat) or the CSV.
    """
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"NYU data {root} does not exist (expected the labelled .mat or a folder)")
    if root.is_dir():
        if split is None:
            raise ValueError(
                f"NYU folder {root}: needs a CSV of 'rgb_path,depth_path' lines (data.nyu.split)"
            )
        return NyuCsvDataset(root, split, **kwargs)
    kwargs.pop("depth_scale", None)  # the .mat holds metres
    return NyuMatDataset(root, split=split, subset=subset, **kwargs)
