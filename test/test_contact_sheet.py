"""Contact sheet of a synthetic drive: image over colourised depth per frame, in a grid."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from depth_node.colormap import colorize_depth
from depth_node.data.sim.contact_sheet import MAX_DEPTH, frame_tile, make_contact_sheet, write_grid
from depth_node.data.sim.world import SyntheticDrive, WorldConfig

W, H = 320, 96
FX, FY = 721.5377 * W / 1242, 721.5377 * H / 375


@pytest.fixture(scope="module")
def drive() -> SyntheticDrive:
    return SyntheticDrive(WorldConfig(seed=3, num_frames=30, width=W, height=H, fx=FX, fy=FY, lidar=False))


def test_contact_sheet(tmp_path, drive: SyntheticDrive) -> None:
    out = make_contact_sheet(drive, [0, 5], tmp_path / "sheet.png")
    sheet = cv2.imread(str(out))
    assert sheet is not None and sheet.shape[0] == 2 * H and sheet.shape[1] >= 2 * W


def test_tile_is_image_over_depth_with_black_sky(drive: SyntheticDrive) -> None:
    frame = drive.frame(0)
    tile = frame_tile(frame)
    assert tile.shape == (2 * H, W, 3) and tile.dtype == np.uint8
    depth_part = tile[H:]
    np.testing.assert_array_equal(
        depth_part, colorize_depth(frame.depth, 2.0, MAX_DEPTH, invalid_rgb=(0, 0, 0))
    )
    sky = ~np.isfinite(frame.depth)
    assert sky.any() and (depth_part[sky] == 0).all()


def test_grid_layout_and_errors(tmp_path, drive: SyntheticDrive) -> None:
    tiles = [np.full((10, 20, 3), k * 50, np.uint8) for k in range(3)]
    sheet = cv2.imread(str(write_grid(tiles, tmp_path / "grid.png", columns=2)))
    assert sheet.shape == (2 * 10 + 4, 2 * 20 + 4, 3)
    assert (sheet[14:, 24:] == 255).all()  # the empty fourth cell stays white
    with pytest.raises(ValueError, match="at least one frame"):
        make_contact_sheet(drive, [], tmp_path / "none.png")
