"""KITTI raw as a training/evaluation source (Monodepth2's ``KITTIRAWDataset`` conventions).

Layout: ``root/<date>/<date>_drive_NNNN_sync/image_0{2,3}/data/%010d.{png,jpg}`` with the date
folder's calibration files, ``oxts/data/%010d.txt`` for ego-motion, ``velodyne_points/data/%010d.bin``
for LiDAR and ``proj_depth/groundtruth/image_0{2,3}/%010d.png`` for the dense (improved) ground truth.
All file reading goes through ``depth_node.data.kitti`` (the readers shared with the bag converter).

Split files have one frame per line, ``<date>/<drive>_sync <frame> <l|r>`` (l = image_02,
r = image_03), as the published Eigen / Eigen-Zhou lists; ``split_from_drives`` builds such a list
from whole drives, dropping frames without neighbours and (optionally) static frames.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from depth_node.data import kitti
from training.datasets.common import AugmentConfig, DataError, MonoDataset

log = logging.getLogger(__name__)

SIDE_TO_CAM = {"l": 2, "r": 3, "2": 2, "3": 3}
STEREO_PARTNER = {"l": "r", "r": "l", "2": "3", "3": "2"}  # image_02 <-> image_03
IMAGE_EXTS = (".png", ".jpg")
# OXTS record fields (KITTI devkit dataformat.txt): vf (forward) and vl (leftward) velocity, m/s.
OXTS_VF, OXTS_VL = 8, 9


@dataclass(frozen=True)
class SplitEntry:
    """One line of a split file: drive folder (relative to the KITTI root, or absolute), frame, side."""

    folder: str
    frame: int
    side: str = "l"

    @property
    def cam(self) -> int:
        return SIDE_TO_CAM[self.side]

    def line(self) -> str:
        return f"{self.folder} {self.frame} {self.side}"

    def partner(self) -> SplitEntry:
        """The same frame from the other camera of the stereo pair."""
        return SplitEntry(self.folder, self.frame, STEREO_PARTNER[self.side])


def parse_split_line(line: str, where: str = "split line") -> SplitEntry:
    """``"2011_09_26/2011_09_26_drive_0002_sync 0000000069 l"`` -> SplitEntry (side defaults to l)."""
    parts = line.split()
    if len(parts) not in (2, 3) or not parts[1].lstrip("-").isdigit():
        raise ValueError(f"{where}: expected '<date>/<drive>_sync <frame> <l|r>', got {line.strip()!r}")
    side = parts[2] if len(parts) == 3 else "l"
    if side not in SIDE_TO_CAM:
        raise ValueError(f"{where}: side {side!r} is not one of l, r (image_02, image_03)")
    return SplitEntry(parts[0], int(parts[1]), side)


def read_split_file(path: str | Path) -> list[SplitEntry]:
    """Parse a split file (blank lines and ``#`` comments are skipped)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"split file {path} does not exist")
    entries = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if line.strip() and not line.lstrip().startswith("#"):
            entries.append(parse_split_line(line, f"{path}:{number}"))
    return entries


def write_split_file(path: str | Path, entries: Iterable[SplitEntry]) -> Path:
    """Write entries in the published split-file format."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(entry.line() + "\n" for entry in entries))
    return path


def resolve_drive(root: str | Path, folder: str | Path) -> Path:
    """A split's drive folder as a path (absolute folders are used as they are)."""
    folder = Path(folder)
    return folder if folder.is_absolute() else Path(root) / folder


def drive_folder_name(root: str | Path, drive_dir: str | Path) -> str:
    """The split-file spelling of a drive folder: relative to root when inside it, else absolute."""
    drive_dir = Path(drive_dir)
    try:
        return drive_dir.resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return drive_dir.resolve().as_posix()


def detect_extension(drive_dir: Path, cam: int = 2) -> str:
    """``.png`` or ``.jpg``, whichever the drive's image folder holds (Monodepth2's --png, detected)."""
    data = drive_dir / f"image_{cam:02d}" / "data"
    for ext in IMAGE_EXTS:
        if next(data.glob(f"*{ext}"), None) is not None:
            return ext
    raise FileNotFoundError(f"no .png or .jpg images in {data}")


def frame_numbers(drive_dir: Path, cam: int = 2) -> list[int]:
    """Sorted frame numbers of one camera of a drive (from the .png/.jpg file names)."""
    ext = detect_extension(drive_dir, cam)
    data = drive_dir / f"image_{cam:02d}" / "data"
    return sorted(int(p.stem) for p in data.glob(f"*{ext}") if p.stem.isdigit())


def oxts_speed(drive_dir: Path, frame: int) -> float | None:
    """Horizontal speed (m/s) from the frame's OXTS record, None when the drive has no OXTS."""
    path = kitti.oxts_path(drive_dir, frame)
    if not path.is_file():
        return None
    record = kitti.read_oxts(path)
    return float(np.hypot(record[OXTS_VF], record[OXTS_VL]))


def split_from_drives(
    root: str | Path,
    drives: Sequence[str | Path],
    frame_ids: Sequence[int] = (0, -1, 1),
    sides: Sequence[str] = ("l",),
    static_speed: float | None = 1.0,
) -> list[SplitEntry]:
    """Every usable frame of the given drives as split entries.

    A frame is used when all its neighbours ``frame + f`` exist and, with ``static_speed``, the car
    moves at least that fast (m/s, from OXTS): a static camera teaches the photometric loss nothing
    and breaks velocity supervision, which is why the Eigen-Zhou split drops static frames too.
    """
    entries: list[SplitEntry] = []
    dropped = 0
    for drive in drives:
        drive_dir = resolve_drive(root, drive)
        if not drive_dir.is_dir():
            raise FileNotFoundError(f"drive folder {drive_dir} does not exist")
        folder = drive if not Path(drive).is_absolute() else drive_folder_name(root, drive_dir)
        folder = Path(folder).as_posix()
        for side in sides:
            numbers = frame_numbers(drive_dir, SIDE_TO_CAM[side])
            present = set(numbers)
            for frame in numbers:
                if not all(frame + f in present for f in frame_ids):
                    continue  # the first/last frames lack a neighbour
                if static_speed:
                    speed = oxts_speed(drive_dir, frame)
                    if speed is not None and speed < static_speed:
                        dropped += 1
                        continue
                entries.append(SplitEntry(folder, frame, side))
    if dropped:
        log.info("split_from_drives: dropped %d static frames (speed < %.2f m/s)", dropped, static_speed)
    return entries


class _DriveReader:
    """Cached per-(drive, camera) access: calibration, image extension, camera centres from OXTS."""

    def __init__(self, drive_dir: Path, cam: int, png: bool | None) -> None:
        self.drive_dir = drive_dir
        self.cam = cam
        self.ext = detect_extension(drive_dir, cam) if png is None else (".png" if png else ".jpg")
        self._calib: Any = None
        self._imu_to_cam: np.ndarray | None = None

    @property
    def calib(self) -> Any:
        if self._calib is None:
            self._calib = _read_calib(str(self.drive_dir.parent), self.cam)
        return self._calib

    def image_path(self, frame: int) -> Path:
        return Path(kitti.image_path(self.drive_dir, frame, cam=self.cam, ext=self.ext))

    def color(self, frame: int) -> np.ndarray:
        path = self.image_path(frame)
        if not path.is_file():
            raise FileNotFoundError(f"image {path} does not exist")
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise DataError(f"cannot decode image {path} (not a PNG/JPEG, or truncated)")
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)

    def camera_distance(self, frame: int, other: int) -> float:
        """Metres between the camera centres at two frames (OXTS poses), NaN without OXTS."""
        paths = [kitti.oxts_path(self.drive_dir, frame), kitti.oxts_path(self.drive_dir, other)]
        if not all(p.is_file() for p in paths):
            return float("nan")
        poses = kitti.oxts_poses([kitti.read_oxts(p) for p in paths])
        if self._imu_to_cam is None:
            # Camera pose in the world = T_world_imu @ T_imu_cam (no IMU calibration: the IMU's path).
            T_cam_imu = self.calib.T_cam_imu
            self._imu_to_cam = np.eye(4) if T_cam_imu is None else np.linalg.inv(T_cam_imu)
        centres = [(pose @ self._imu_to_cam)[:3, 3] for pose in poses]
        return float(np.linalg.norm(centres[1] - centres[0]))

    def velodyne_depth(self, frame: int) -> np.ndarray:
        """Sparse LiDAR depth at the calibration's image size (KITTI GT recipe), 0 = no point."""
        calib = self.calib
        velo = kitti.load_velodyne(kitti.velodyne_path(self.drive_dir, frame))
        width, height = calib.image_size
        return kitti.velodyne_depth_map(calib, velo, height, width)

    def dense_depth(self, frame: int) -> np.ndarray:
        path = kitti.depth_gt_path(self.drive_dir, frame, self.cam)
        if not path.is_file():
            raise FileNotFoundError(f"no dense ground truth {path}")
        return kitti.read_depth_png(path)

    def motion_labels(self, frame: int) -> np.ndarray | None:
        """Per-pixel motion labels (synthetic drives: static, same way, oncoming), None without them."""
        path = kitti.motion_labels_path(self.drive_dir, frame, self.cam)
        return kitti.read_motion_labels(path) if path.is_file() else None


@lru_cache(maxsize=64)
def _read_calib(date_dir: str, cam: int) -> Any:
    return kitti.read_calib(Path(date_dir), cam=cam)


class KittiDataset(MonoDataset):
    """KITTI raw frames of a split as training samples (see ``MonoDataset`` for the keys).

    Args:
        root: KITTI raw root (holds the ``<date>`` folders).
        entries: split entries (``read_split_file`` or ``split_from_drives``).
        png: True/False forces .png/.jpg; None detects per drive.
        depth_gt: "none", "velodyne" (sparse LiDAR GT) or "dense" (proj_depth/groundtruth PNGs).
        check_files: drop entries whose frames (incl. neighbours and the stereo partner) are
            missing, with a log line, instead of failing mid-epoch.
        stereo: add the other camera's frame (image_03 for side l, image_02 for r) and the
            rectified pair's transform from the calibration (see ``MonoDataset``).
    """

    def __init__(
        self,
        root: str | Path,
        entries: Sequence[SplitEntry],
        height: int,
        width: int,
        frame_ids: Sequence[int] = (0, -1, 1),
        *,
        png: bool | None = None,
        depth_gt: str | None = "none",
        augment: AugmentConfig | Mapping[str, Any] | None = None,
        is_train: bool = True,
        seed: int = 0,
        check_files: bool = True,
        stereo: bool = False,
    ) -> None:
        depth_gt = depth_gt or "none"
        if depth_gt not in ("none", "velodyne", "dense"):
            raise ValueError(f"depth_gt={depth_gt!r}: expected none, velodyne or dense")
        super().__init__(
            height,
            width,
            frame_ids,
            augment=augment,
            is_train=is_train,
            seed=seed,
            with_depth_gt=depth_gt != "none",
            stereo=stereo,
        )
        self.root = Path(root)
        self.png = png
        self.depth_gt = depth_gt
        self._readers: dict[tuple[str, int], _DriveReader] = {}
        entries = list(entries)
        if check_files:
            kept = [e for e in entries if self._complete(e)]
            if len(kept) < len(entries):
                log.warning(
                    "KITTI: %d of %d split entries skipped (missing frames or neighbours)",
                    len(entries) - len(kept),
                    len(entries),
                )
            entries = kept
        if not entries:
            raise ValueError(f"no usable KITTI frames under {self.root} (check data.root and the split)")
        self.entries = entries

    def reader(self, entry: SplitEntry) -> _DriveReader:
        key = (entry.folder, entry.cam)
        if key not in self._readers:
            self._readers[key] = _DriveReader(resolve_drive(self.root, entry.folder), entry.cam, self.png)
        return self._readers[key]

    def _complete(self, entry: SplitEntry) -> bool:
        drive_dir = resolve_drive(self.root, entry.folder)
        cams = [entry, entry.partner()] if self.stereo else [entry]
        if not all((drive_dir / f"image_{e.cam:02d}" / "data").is_dir() for e in cams):
            return False
        reader = self.reader(entry)
        if self.stereo and not self.reader(entry.partner()).image_path(entry.frame).is_file():
            return False
        return all(reader.image_path(entry.frame + f).is_file() for f in self.frame_ids)

    def __len__(self) -> int:
        return len(self.entries)

    def load_color(self, index: int, offset: int) -> np.ndarray:
        entry = self.entries[index]
        return self.reader(entry).color(entry.frame + offset)

    def load_stereo_color(self, index: int) -> np.ndarray:
        partner = self.entries[index].partner()
        return self.reader(partner).color(partner.frame)

    def stereo_transform(self, index: int) -> np.ndarray:
        # Both calibrations end in their camera's rectified frame: T_partner_cam = T_partner_velo T_velo_cam.
        entry = self.entries[index]
        T_cam_velo = self.reader(entry).calib.T_cam_velo
        T_partner_velo = self.reader(entry.partner()).calib.T_cam_velo
        return T_partner_velo @ np.linalg.inv(T_cam_velo)

    def intrinsics(self, index: int) -> tuple[np.ndarray, tuple[int, int]]:
        calib = self.reader(self.entries[index]).calib
        return np.asarray(calib.K, dtype=np.float64), tuple(int(v) for v in calib.image_size)

    def distance(self, index: int, offset: int) -> float:
        entry = self.entries[index]
        return self.reader(entry).camera_distance(entry.frame, entry.frame + offset)

    def load_depth_gt(self, index: int) -> np.ndarray:
        entry = self.entries[index]
        reader = self.reader(entry)
        if self.depth_gt == "dense":
            return reader.dense_depth(entry.frame)
        return reader.velodyne_depth(entry.frame)
