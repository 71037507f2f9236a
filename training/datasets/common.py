"""What every training source shares: resizing, Monodepth2's augmentation, sample assembly.

A source (KITTI raw, rosbag2, image folder) subclasses ``MonoDataset`` and only answers "what is
frame ``index + offset``, at its own size": ``load_color``, ``intrinsics``, ``distance`` and
optionally ``load_depth_gt``. ``MonoDataset.__getitem__`` turns that into the batch items of
docs/INTERFACES.md (Monodepth2's keys):

- ``("color", f, 0)`` / ``("color_aug", f, 0)``: float32 [3,H,W] in [0,1] for f in frame_ids,
- ``"K"`` / ``"inv_K"``: float32 [4,4] at the training size (after a flip, if any),
- ``("distance", f)``: float32 scalar, metres the camera moved between frame 0 and f (NaN: unknown),
- ``"depth_gt"``: float32 [1,H,W] metres, 0 = invalid (only when the dataset has ground truth),
- ``"index"``: the sample's index (int64), for logging,
- whatever a source adds in ``sample_extras`` (DIW: ``"pairs"``, ``"relation"``; see ``diw.py``).

Randomness (flip, colour jitter) comes from a generator seeded by (seed, epoch, index), so a sample
is the same whichever DataLoader worker builds it and whether or not training was resumed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from depth_node.geometry import resize_area, scale_intrinsics


class DataError(ValueError):
    """Training data that cannot be read (an undecodable image, a broken bag, missing calibration):
    the message is one line naming the file; ``depth-train`` prints it and stops."""


# ITU-R 601 luma weights, the ones torchvision's rgb_to_grayscale (and so Monodepth2) uses.
_LUMA = np.array([0.2989, 0.587, 0.114], dtype=np.float32)


@dataclass(frozen=True)
class AugmentConfig:
    """Monodepth2's training augmentation (``ColorJitter(0.2, 0.2, 0.2, 0.1)`` with p=0.5, flips p=0.5)."""

    flip_prob: float = 0.5
    color_prob: float = 0.5
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 0.1

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> AugmentConfig:
        values = dict(values or {})
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown augmentation keys {sorted(unknown)}; expected some of {sorted(known)}")
        return cls(**{k: float(v) for k, v in values.items()})


@dataclass(frozen=True)
class ColorJitterParams:
    """One draw of ColorJitter: factors and the order in which the four operations apply."""

    order: tuple[int, ...]  # permutation of 0=brightness, 1=contrast, 2=saturation, 3=hue
    brightness: float
    contrast: float
    saturation: float
    hue: float

    @classmethod
    def sample(cls, rng: np.random.Generator, cfg: AugmentConfig) -> ColorJitterParams:
        """Draw as torchvision's ColorJitter.get_params does: factors in [1-x, 1+x], hue in [-h, h]."""
        order = tuple(int(i) for i in rng.permutation(4))
        b = rng.uniform(max(0.0, 1 - cfg.brightness), 1 + cfg.brightness)
        c = rng.uniform(max(0.0, 1 - cfg.contrast), 1 + cfg.contrast)
        s = rng.uniform(max(0.0, 1 - cfg.saturation), 1 + cfg.saturation)
        h = rng.uniform(-cfg.hue, cfg.hue)
        return cls(order, float(b), float(c), float(s), float(h))


def _grayscale(image: np.ndarray) -> np.ndarray:
    return image @ _LUMA


def color_jitter(image: np.ndarray, params: ColorJitterParams) -> np.ndarray:
    """Apply one ColorJitter draw to a float32 RGB image in [0,1] (H,W,3), torchvision's formulas.

    brightness scales, contrast blends with the image's mean grey level, saturation blends with the
    per-pixel grey image, hue rotates the HSV hue by ``hue`` of a full turn; each clips to [0,1].
    """
    out = np.asarray(image, dtype=np.float32)
    for op in params.order:
        if op == 0:
            out = np.clip(out * params.brightness, 0.0, 1.0)
        elif op == 1:
            mean = float(_grayscale(out).mean())
            out = np.clip(params.contrast * out + (1.0 - params.contrast) * mean, 0.0, 1.0)
        elif op == 2:
            grey = _grayscale(out)[..., None]
            out = np.clip(params.saturation * out + (1.0 - params.saturation) * grey, 0.0, 1.0)
        elif params.hue != 0.0:
            hsv = cv2.cvtColor(np.ascontiguousarray(out, dtype=np.float32), cv2.COLOR_RGB2HSV)
            hsv[..., 0] = np.mod(hsv[..., 0] + params.hue * 360.0, 360.0)  # float HSV: hue in degrees
            out = np.clip(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB), 0.0, 1.0)
    return out.astype(np.float32, copy=False)


def resize_image(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize to (width, height) as the runtime does (:func:`depth_node.geometry.resize_area`)."""
    return resize_area(image, (width, height))


def resize_sparse_depth(depth: np.ndarray, width: int, height: int) -> np.ndarray:
    """Downsample a sparse depth map (0 or NaN = no point) without inventing or blending depths.

    Each valid pixel goes to the target pixel that contains its centre; where several land on one
    target pixel the nearest wins (as in the KITTI GT recipe). Interpolating would mix LiDAR
    returns with empty pixels and make up depths that were never measured.
    """
    depth = np.asarray(depth, dtype=np.float32)
    src_h, src_w = depth.shape
    if (src_w, src_h) == (width, height):
        return np.where(np.isfinite(depth), depth, 0.0).astype(np.float32)
    with np.errstate(invalid="ignore"):
        v, u = np.nonzero(np.isfinite(depth) & (depth > 0))
    z = depth[v, u]
    # Pixel u covers [u, u+1) in continuous coordinates; its centre u + 0.5 lands in target pixel floor(...).
    tu = np.minimum(((u + 0.5) * (width / src_w)).astype(np.int64), width - 1)
    tv = np.minimum(((v + 0.5) * (height / src_h)).astype(np.int64), height - 1)
    out = np.zeros((height, width), dtype=np.float32)
    order = np.argsort(-z)  # far first, so the nearest point per pixel is written last
    out[tv[order], tu[order]] = z[order]
    return out


def flip_intrinsics(K: np.ndarray, width: int) -> np.ndarray:
    """K after mirroring the image left-right: column u goes to width - 1 - u, so cx does too."""
    flipped = np.array(K, dtype=np.float64, copy=True)
    flipped[0, 2] = width - 1 - flipped[0, 2]
    return flipped


def flip_transform(T: np.ndarray) -> np.ndarray:
    """A camera-to-camera transform seen in horizontally flipped images: x mirrored on both sides.

    Flipping a rectified pair swaps the cameras' roles (Monodepth2's stereo flip): the partner that
    sat at +b along x sits at -b.
    """
    F = np.diag([-1.0, 1.0, 1.0, 1.0])
    return F @ T @ F


def to_homogeneous_K(K: np.ndarray) -> np.ndarray:
    """3x3 intrinsics -> the 4x4 form the losses use (Monodepth2's)."""
    K4 = np.eye(4, dtype=np.float64)
    K4[:3, :3] = np.asarray(K, dtype=np.float64)[:3, :3]
    return K4


def image_to_tensor(image: np.ndarray) -> torch.Tensor:
    """(H,W,3) uint8 or float in [0,1] -> float32 [3,H,W] in [0,1]."""
    array = np.asarray(image)
    if array.dtype == np.uint8:
        array = array.astype(np.float32) / 255.0
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1), dtype=np.float32))


def resolve_data_path(path: str | Path, root: str | Path) -> Path:
    """A file named in a data config: as given when it exists (or is absolute), else inside ``root``."""
    path = Path(path)
    return path if path.is_absolute() or path.exists() else Path(root) / path


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The per-sample generator: depends on (seed, epoch, index) only, never on worker state."""
    return np.random.default_rng([int(seed), int(epoch), int(index)])


class MonoDataset(Dataset):
    """Base of the training sources: subclasses provide frames at their own size, this class the rest.

    Args:
        height, width: training size (network input).
        frame_ids: frame offsets; 0 first (Monodepth2's ``[0, -1, 1]``).
        augment: augmentation settings; ``None`` or ``is_train=False`` turns augmentation off.
        is_train: flips and colour jitter only when training.
        seed: base seed of the per-sample randomness (see ``sample_rng``).
        with_depth_gt: add ``"depth_gt"`` (the subclass must implement ``load_depth_gt``).
        stereo: add the stereo partner of frame 0 as source frame ``"s"`` (Monodepth2's key) and
            ``"stereo_T"`` [4,4], the transform from frame 0's camera into the partner's (the
            subclass must implement ``load_stereo_color`` and ``stereo_transform``).
    """

    def __init__(
        self,
        height: int,
        width: int,
        frame_ids: Sequence[int] = (0, -1, 1),
        *,
        augment: AugmentConfig | Mapping[str, Any] | None = None,
        is_train: bool = True,
        seed: int = 0,
        with_depth_gt: bool = False,
        stereo: bool = False,
    ) -> None:
        if list(frame_ids)[:1] != [0]:
            raise ValueError(f"frame_ids must start with 0, got {list(frame_ids)}")
        self.height, self.width = int(height), int(width)
        self.frame_ids = [int(f) for f in frame_ids]
        if augment is not None and not isinstance(augment, AugmentConfig):
            augment = AugmentConfig.from_dict(augment)
        self.augment = augment if is_train else None
        self.is_train = is_train
        self.seed = int(seed)
        self.epoch = 0
        self.with_depth_gt = with_depth_gt
        self.stereo = stereo

    # -- what a source provides -------------------------------------------------------------
    def __len__(self) -> int:
        raise NotImplementedError

    def load_color(self, index: int, offset: int) -> np.ndarray:
        """Frame ``offset`` relative to sample ``index``: RGB uint8 (h,w,3) at the source's size."""
        raise NotImplementedError

    def intrinsics(self, index: int) -> tuple[np.ndarray, tuple[int, int]]:
        """3x3 K of sample ``index`` and the (width, height) it belongs to."""
        raise NotImplementedError

    def distance(self, index: int, offset: int) -> float:
        """Metres the camera moved between frame 0 and frame ``offset`` of sample ``index`` (NaN: unknown)."""
        return float("nan")

    def load_stereo_color(self, index: int) -> np.ndarray:
        """The stereo partner of frame 0 of sample ``index`` (RGB uint8, rectified: same K and size)."""
        raise NotImplementedError(f"{type(self).__name__} has no stereo partner")

    def stereo_transform(self, index: int) -> np.ndarray:
        """4x4 transform of frame 0's camera points into the stereo partner's camera (from calibration)."""
        raise NotImplementedError(f"{type(self).__name__} has no stereo partner")

    def load_depth_gt(self, index: int) -> np.ndarray:
        """Ground-truth depth of frame 0 (metres, 0/NaN invalid) at the source's size, resized here."""
        raise NotImplementedError(f"{type(self).__name__} has no ground-truth depth")

    def sample_extras(self, index: int, flip: bool) -> dict[str, torch.Tensor]:
        """Source-specific batch items of sample ``index`` (DIW's point pairs), mirrored when ``flip``."""
        return {}

    def resize_depth_gt(self, depth: np.ndarray) -> np.ndarray:
        """Bring ground truth to the training size keeping only measured depths (LiDAR or dense)."""
        return resize_sparse_depth(depth, self.width, self.height)

    # -- shared assembly ----------------------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose augmentation draws ``__getitem__`` makes (call before iterating)."""
        self.epoch = int(epoch)

    def __getitem__(self, index: int) -> dict[Any, torch.Tensor]:
        rng = sample_rng(self.seed, self.epoch, index)
        aug = self.augment
        flip = aug is not None and rng.random() < aug.flip_prob
        jitter = (
            ColorJitterParams.sample(rng, aug) if aug is not None and rng.random() < aug.color_prob else None
        )

        sample: dict[Any, torch.Tensor] = {"index": torch.tensor(index, dtype=torch.int64)}
        sources: list[int | str] = [*self.frame_ids, "s"] if self.stereo else list(self.frame_ids)
        for f in sources:
            image = self.load_stereo_color(index) if f == "s" else self.load_color(index, f)
            image = resize_image(image, self.width, self.height)
            if flip:
                image = image[:, ::-1]
            color = image.astype(np.float32) / 255.0
            sample[("color", f, 0)] = image_to_tensor(color)
            # One jitter draw for all frames of the sample (as Monodepth2): the pose net compares the
            # frames, so they must share one colour transform. The loss uses the unjittered "color".
            sample[("color_aug", f, 0)] = (
                image_to_tensor(color_jitter(color, jitter)) if jitter else sample[("color", f, 0)]
            )
            if f not in (0, "s"):
                sample[("distance", f)] = torch.tensor(self.distance(index, f), dtype=torch.float32)

        # K belongs to the calibration's image size; scaling from there (not from the file's size)
        # also covers images stored downsampled on disk.
        K, calib_size = self.intrinsics(index)
        K = scale_intrinsics(K, calib_size, (self.width, self.height))
        if flip:
            K = flip_intrinsics(K, self.width)
        K4 = to_homogeneous_K(K)
        sample["K"] = torch.from_numpy(K4.astype(np.float32))
        sample["inv_K"] = torch.from_numpy(np.linalg.inv(K4).astype(np.float32))
        if self.stereo:
            T = self.stereo_transform(index)
            sample["stereo_T"] = torch.from_numpy((flip_transform(T) if flip else T).astype(np.float32))

        if self.with_depth_gt:
            depth = self.resize_depth_gt(self.load_depth_gt(index))
            if flip:
                depth = depth[:, ::-1]
            sample["depth_gt"] = torch.from_numpy(np.ascontiguousarray(depth, dtype=np.float32))[None]
        sample.update(self.sample_extras(index, flip))
        return sample
