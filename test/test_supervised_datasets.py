"""Supervised single-image sources (NYU Depth V2, DIW, Cityscapes) on tiny files in the published layouts."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest
import scipy.io
import torch
from torch.utils.data import DataLoader

from training.config import ConfigError, load_config, temporal_frame_ids
from training.datasets import CityscapesDataset, DiwDataset, NyuCsvDataset, NyuMatDataset, build_dataset
from training.datasets.cityscapes import disparity_to_depth
from training.datasets.common import AugmentConfig, DataError, resize_sparse_depth
from training.datasets.nyu import NYU_K, read_split_indices

NO_AUG = AugmentConfig(flip_prob=0.0, color_prob=0.0)
FLIP = AugmentConfig(flip_prob=1.0, color_prob=0.0)

# -- NYU Depth V2: the labelled MATLAB v7.3 file ----------------------------------------------
MAT_H, MAT_W, MAT_N = 48, 64, 3


def write_labelled_mat(path: Path, *, names: tuple[str, str] = ("images", "depths")) -> None:
    """A v7.3 .mat as MATLAB writes it: HDF5 behind a 512-byte header, arrays seen column-major.

    MATLAB's ``images(row, col, c, n)`` (H×W×3×N) is HDF5 dataset ``images[n, c, col, row]``. Frame n
    is grey 60·n; frame 1 has red 200 at (row 5, col 40) and depth 3.25 m at (row 30, col 10).
    """
    images = np.zeros((MAT_N, 3, MAT_W, MAT_H), np.uint8)
    depths = np.full((MAT_N, MAT_W, MAT_H), 2.0, np.float32)
    for n in range(MAT_N):
        images[n] = 60 * n
    images[1, 0, 40, 5] = 200  # red channel, column 40, row 5
    depths[1, 10, 30] = 3.25  # column 10, row 30
    with h5py.File(path, "w", userblock_size=512) as f:
        f.create_dataset(names[0], data=images)
        f.create_dataset(names[1], data=depths)
    with path.open("r+b") as f:
        f.write(
            b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2012 HDF5 schema 1.00 ."
        )


@pytest.fixture
def labelled_mat(tmp_path: Path) -> Path:
    path = tmp_path / "nyu_depth_v2_labeled.mat"
    write_labelled_mat(path)
    return path


def test_nyu_mat_transposes_matlab_storage_to_rows_and_columns(labelled_mat: Path) -> None:
    ds = NyuMatDataset(labelled_mat, MAT_H, MAT_W, augment=NO_AUG)
    assert len(ds) == MAT_N
    sample = ds[1]
    color = sample[("color", 0, 0)]
    assert color.shape == (3, MAT_H, MAT_W)
    assert float(color[0, 5, 40]) == pytest.approx(200 / 255)  # written at MATLAB (row 5, col 40)
    assert float(color[1, 5, 40]) == pytest.approx(60 / 255) and float(color[0, 40, 5]) == pytest.approx(
        60 / 255
    )
    depth = sample["depth_gt"]
    assert depth.shape == (1, MAT_H, MAT_W)
    assert float(depth[0, 30, 10]) == pytest.approx(3.25) and float(depth[0, 10, 30]) == pytest.approx(2.0)
    # The Kinect K belongs to 640x480; this file's frames are 64x48, a tenth of that.
    np.testing.assert_allclose(sample["K"][:3, :3].numpy(), NYU_K * [[0.1], [0.1], [1.0]], rtol=1e-6)
    assert float(sample["K"][0, 0]) == pytest.approx(51.8857901, rel=1e-6)
    assert ("color", -1, 0) not in sample


def test_nyu_split_files_are_one_based(labelled_mat: Path, tmp_path: Path) -> None:
    # The published splits.mat is MATLAB v5 with 1-based column vectors.
    v5 = tmp_path / "splits.mat"
    scipy.io.savemat(v5, {"trainNdxs": np.array([[1.0], [3.0]]), "testNdxs": np.array([[2.0]])})
    assert read_split_indices(v5, "train") == [0, 2] and read_split_indices(v5, "test") == [1]
    v73 = tmp_path / "splits73.mat"
    with h5py.File(v73, "w") as f:
        f.create_dataset("trainNdxs", data=np.array([[3.0, 1.0]]))
        f.create_dataset("testNdxs", data=np.array([[2.0]]))
    assert read_split_indices(v73, "train") == [2, 0]
    text = tmp_path / "train.txt"
    text.write_text("# official train frames\n3\n1, 2\n")
    assert read_split_indices(text) == [2, 0, 1]

    train = NyuMatDataset(labelled_mat, MAT_H, MAT_W, split=v5, subset="train", augment=NO_AUG)
    test = NyuMatDataset(labelled_mat, MAT_H, MAT_W, split=v5, subset="test", augment=NO_AUG)
    assert len(train) == 2 and len(test) == 1
    # Frame n is grey 60n: split index 3 is frame 2, index 2 is frame 1.
    assert float(train[1][("color", 0, 0)][2, 0, 0]) == pytest.approx(120 / 255)
    assert float(test[0][("color", 0, 0)][2, 0, 0]) == pytest.approx(60 / 255)

    text.write_text("1\n4\n")
    with pytest.raises(DataError, match=r"train\.txt: index 4 is not a 1-based frame index \(1\.\.3\)"):
        NyuMatDataset(labelled_mat, MAT_H, MAT_W, split=text)
    text.write_text("0\n")  # a 0-based list
    with pytest.raises(DataError, match="index 0 is not a 1-based"):
        read_split_indices(text)
    text.write_text("1\ntwo\n")
    with pytest.raises(DataError, match=r"train\.txt:2: expected 1-based frame indices"):
        read_split_indices(text)
    scipy.io.savemat(v5, {"train": np.array([[1.0]])})
    with pytest.raises(DataError, match="no variable 'trainNdxs'"):
        read_split_indices(v5)


def test_nyu_mat_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"missing\.mat does not exist"):
        NyuMatDataset(tmp_path / "missing.mat", MAT_H, MAT_W)
    wrong = tmp_path / "wrong.mat"
    write_labelled_mat(wrong, names=("rgb", "depths"))
    with pytest.raises(
        DataError, match=r"wrong\.mat: no dataset 'images' \(expected 'images' and 'depths'\)"
    ):
        NyuMatDataset(wrong, MAT_H, MAT_W)
    v5 = tmp_path / "v5.mat"
    scipy.io.savemat(v5, {"images": np.zeros((2, 2))})
    with pytest.raises(DataError, match=r"v5\.mat: not an HDF5 file \(expected MATLAB v7\.3"):
        NyuMatDataset(v5, MAT_H, MAT_W)
    with pytest.raises(ValueError, match="frame_ids must be \\[0\\]"):
        NyuMatDataset(tmp_path / "missing.mat", MAT_H, MAT_W, [0, -1, 1])


# -- NYU Depth V2: DenseDepth's CSV-of-pairs layout --------------------------------------------


@pytest.fixture
def densedepth_root(tmp_path: Path) -> Path:
    """``data/nyu2_train`` (JPEG + 8-bit depth, 255 = 10 m) and ``data/nyu2_test`` (PNG + 16-bit mm)."""
    root = tmp_path / "nyu_data"
    scene = root / "data" / "nyu2_train" / "living_room_0038_out"
    scene.mkdir(parents=True)
    cv2.imwrite(str(scene / "37.jpg"), np.full((48, 64, 3), (30, 90, 150), np.uint8))  # BGR
    train_depth = np.full((48, 64), 51, np.uint8)  # 51 / 255 * 10 m = 2 m
    train_depth[0, :] = 0
    cv2.imwrite(str(scene / "37.png"), train_depth)
    test = root / "data" / "nyu2_test"
    test.mkdir(parents=True)
    cv2.imwrite(str(test / "00000_colors.png"), np.full((48, 64, 3), 80, np.uint8))
    test_depth = np.full((48, 64), 1500, np.uint16)  # 1.5 m in millimetres
    test_depth[5, 7] = 9876
    cv2.imwrite(str(test / "00000_depth.png"), test_depth)
    (root / "data" / "nyu2_train.csv").write_text(
        "data/nyu2_train/living_room_0038_out/37.jpg,data/nyu2_train/living_room_0038_out/37.png\n"
    )
    (root / "data" / "nyu2_test.csv").write_text(
        "data/nyu2_test/00000_colors.png,data/nyu2_test/00000_depth.png\n"
    )
    return root


def test_nyu_csv_pairs_and_depth_units(densedepth_root: Path) -> None:
    train = NyuCsvDataset(densedepth_root, "data/nyu2_train.csv", 48, 64, augment=NO_AUG)
    sample = train[0]
    rgb = sample[("color", 0, 0)][:, 20, 20].numpy() * 255
    np.testing.assert_allclose(rgb, [150, 90, 30], atol=3)  # JPEG, BGR on disk -> RGB
    depth = sample["depth_gt"][0]
    assert float(depth[10, 10]) == pytest.approx(2.0, rel=1e-6) and float(depth[0, 10]) == 0.0

    test = NyuCsvDataset(densedepth_root, "data/nyu2_test.csv", 48, 64, augment=NO_AUG)
    depth = test[0]["depth_gt"][0]
    assert float(depth[0, 0]) == pytest.approx(1.5) and float(depth[5, 7]) == pytest.approx(9.876)
    forced = NyuCsvDataset(densedepth_root, "data/nyu2_test.csv", 48, 64, depth_scale=0.002, augment=NO_AUG)
    assert float(forced[0]["depth_gt"][0, 0, 0]) == pytest.approx(3.0)


def test_nyu_csv_errors_name_file_and_line(densedepth_root: Path) -> None:
    csv = densedepth_root / "data" / "bad.csv"
    csv.write_text(
        "data/nyu2_test/00000_colors.png,data/nyu2_test/00000_depth.png\n"
        "data/nyu2_test/00000_colors.png;data/nyu2_test/00000_depth.png\n"
    )
    with pytest.raises(DataError, match=r"bad\.csv:2: expected 'rgb_path,depth_path'"):
        NyuCsvDataset(densedepth_root, csv, 48, 64)
    csv.write_text("data/nyu2_test/00000_colors.png,data/nyu2_test/00001_depth.png\n")
    with pytest.raises(FileNotFoundError, match=r"bad\.csv:1: .*00001_depth\.png does not exist"):
        NyuCsvDataset(densedepth_root, csv, 48, 64)
    with pytest.raises(FileNotFoundError, match=r"nope\.csv does not exist"):
        NyuCsvDataset(densedepth_root, "data/nope.csv", 48, 64)


# -- DIW ---------------------------------------------------------------------------------------


@pytest.fixture
def diw_root(tmp_path: Path) -> Path:
    """Two DIW-style images (100x80 JPEGs named .thumb) and their annotation CSV."""
    root = tmp_path / "diw"
    (root / "DIW_train_val").mkdir(parents=True)
    for name in ("a", "b"):
        jpg = root / "DIW_train_val" / f"{name}.jpg"
        cv2.imwrite(str(jpg), np.full((80, 100, 3), 128, np.uint8))
        jpg.rename(jpg.with_suffix(".thumb"))
    (root / "DIW_train_val.csv").write_text(
        "./DIW_train_val/a.thumb\n10,20,70,90,>,100,80\n./DIW_train_val/b.thumb\n40,1,40,100,<,100,80\n"
    )
    return root


def test_diw_pairs_scale_to_the_training_size(diw_root: Path) -> None:
    ds = DiwDataset(diw_root, "DIW_train_val.csv", 48, 64, augment=NO_AUG)
    assert len(ds) == 2
    first, second = ds[0], ds[1]
    # CSV rows are 1-based (y, x); pairs are 0-based (x, y) pixel centres:
    # x -> (x - 0.5) * 64/100 - 0.5, y -> (y - 0.5) * 48/80 - 0.5.
    np.testing.assert_allclose(first["pairs"].numpy(), [[11.98, 5.2, 56.78, 41.2]], atol=1e-5)
    np.testing.assert_allclose(second["pairs"].numpy(), [[-0.18, 23.2, 63.18, 23.2]], atol=1e-5)
    assert first["relation"].tolist() == [1.0] and second["relation"].tolist() == [-1.0]
    assert first[("color", 0, 0)].shape == (3, 48, 64) and "depth_gt" not in first
    # Nominal K: fx = fy = 100 (the image width), scaled to the training size: 100 * 64/100, 100 * 48/80.
    assert float(first["K"][0, 0]) == pytest.approx(64.0) and float(first["K"][1, 1]) == pytest.approx(60.0)
    # A pair's rounded coordinates are the pixels resize_sparse_depth carries those points to.
    marks = np.zeros((80, 100), np.float32)
    marks[10 - 1, 20 - 1], marks[70 - 1, 90 - 1] = 1.0, 2.0
    small = resize_sparse_depth(marks, 64, 48)
    x_a, y_a, x_b, y_b = np.round(first["pairs"][0].numpy()).astype(int)
    assert small[y_a, x_a] == 1.0 and small[y_b, x_b] == 2.0

    flipped = DiwDataset(diw_root, "DIW_train_val.csv", 48, 64, augment=FLIP)[0]
    np.testing.assert_allclose(flipped["pairs"].numpy(), [[63 - 11.98, 5.2, 63 - 56.78, 41.2]], atol=1e-5)
    assert flipped["relation"].tolist() == [1.0]


def test_diw_batch_feeds_the_ranking_loss(diw_root: Path) -> None:
    from training.losses import ranking_loss

    batch = next(
        iter(DataLoader(DiwDataset(diw_root, "DIW_train_val.csv", 48, 64, augment=NO_AUG), batch_size=2))
    )
    # Depth grows to the right. Sample 0 says its left point A is farther (wrong here), sample 1 that
    # its left point A is nearer (right here): the loss must be above log 2 for the first only.
    depth = (1.0 + torch.arange(64, dtype=torch.float32)).expand(2, 1, 48, 64)
    wrong = ranking_loss(depth[:1], batch["pairs"][:1], batch["relation"][:1])
    right = ranking_loss(depth[1:], batch["pairs"][1:], batch["relation"][1:])
    assert float(wrong) > np.log(2) > float(right)


def test_diw_repeated_image_is_one_sample_padded_for_the_batch(diw_root: Path) -> None:
    """Pairs sampled from ground truth repeat an image: its pairs form one sample; an image with fewer
    pairs is padded with NaN pairs (relation 0) that the ranking loss skips."""
    from training.losses import ranking_loss

    (diw_root / "many.csv").write_text(
        "./DIW_train_val/a.thumb\n10,20,70,90,>,100,80\n./DIW_train_val/b.thumb\n40,1,40,100,<,100,80\n"
        "DIW_train_val/a.thumb\n40,1,40,100,<,100,80\n"
    )
    ds = DiwDataset(diw_root, "many.csv", 48, 64, augment=NO_AUG)
    assert len(ds) == 2 and ds.max_pairs == 2
    a, b = ds[0], ds[1]
    assert a["relation"].tolist() == [1.0, -1.0] and b["relation"].tolist() == [-1.0, 0.0]
    assert torch.isfinite(b["pairs"][0]).all() and torch.isnan(b["pairs"][1]).all()
    batch = next(iter(DataLoader(ds, batch_size=2)))
    depth = (1.0 + torch.arange(64, dtype=torch.float32)).expand(2, 1, 48, 64)
    alone = ranking_loss(depth[1:], b["pairs"][:1][None], b["relation"][:1][None])
    assert float(ranking_loss(depth[1:], batch["pairs"][1:], batch["relation"][1:])) == pytest.approx(
        float(alone)
    )


@pytest.mark.parametrize(
    "text, error",
    [
        ("./DIW_train_val/a.thumb\n10,20,70,90,=,100,80\n", r"\.csv:2: expected 'y_A,x_A,y_B,x_B,>\|<"),
        ("./DIW_train_val/a.thumb\n10,20,70,90,>,100\n", r"\.csv:2: expected 'y_A,x_A,y_B,x_B"),
        ("./DIW_train_val/a.thumb\n10,20,81,90,>,100,80\n", r"\.csv:2: points must be two different 1-based"),
        (
            "./DIW_train_val/a.thumb\n10,20,70,90,>,100,80\n./DIW_train_val/b.thumb\n",
            r"\.csv:3: image line without",
        ),
    ],
)
def test_diw_malformed_lines_name_file_and_line(diw_root: Path, text: str, error: str) -> None:
    (diw_root / "bad.csv").write_text(text)
    with pytest.raises(DataError, match=error):
        DiwDataset(diw_root, "bad.csv", 48, 64)


def test_diw_missing_image_names_the_line(diw_root: Path) -> None:
    (diw_root / "bad.csv").write_text(
        "./DIW_train_val/a.thumb\n10,20,70,90,>,100,80\nDIW_test/c.thumb\n1,1,2,2,<,4,4\n"
    )
    with pytest.raises(FileNotFoundError, match=r"bad\.csv:3: image .*c\.thumb does not exist"):
        DiwDataset(diw_root, "bad.csv", 48, 64)


# -- Cityscapes --------------------------------------------------------------------------------
CAMERA = {
    "extrinsic": {
        "baseline": 0.209313,
        "pitch": 0.038,
        "roll": 0.0,
        "x": 1.7,
        "y": 0.1,
        "yaw": -0.0195,
        "z": 1.18,
    },
    "intrinsic": {"fx": 2262.52, "fy": 2265.3017905988554, "u0": 1096.98, "v0": 513.137},
}
CITY_NAME = "aachen_000000_000019"


@pytest.fixture
def cityscapes_root(tmp_path: Path) -> Path:
    """One city, one frame at the published 2048x1024: disparity p = 2561 (d = 10 px) on a 16x16 block."""
    root = tmp_path / "cityscapes"
    folders = {kind: root / kind / "train" / "aachen" for kind in ("leftImg8bit", "disparity", "camera")}
    for folder in folders.values():
        folder.mkdir(parents=True)
    cv2.imwrite(
        str(folders["leftImg8bit"] / f"{CITY_NAME}_leftImg8bit.png"), np.full((1024, 2048, 3), 90, np.uint8)
    )
    disparity = np.zeros((1024, 2048), np.uint16)
    disparity[512:528, 1024:1040] = 2561  # one 16x16 block = one pixel at 128x64
    disparity[0:16, 0:16] = 1  # zero disparity: infinitely far, invalid
    cv2.imwrite(str(folders["disparity"] / f"{CITY_NAME}_disparity.png"), disparity)
    (folders["camera"] / f"{CITY_NAME}_camera.json").write_text(json.dumps(CAMERA))
    return root


def test_cityscapes_depth_from_disparity_and_camera(cityscapes_root: Path) -> None:
    raw = np.array([[0, 1, 257, 2561]], np.uint16)
    np.testing.assert_allclose(
        disparity_to_depth(raw, 0.209313, 2262.52), [[0.0, 0.0, 0.209313 * 2262.52, 0.209313 * 2262.52 / 10]]
    )

    ds = CityscapesDataset(cityscapes_root, "train", 64, 128, augment=NO_AUG)
    assert len(ds) == 1 and ds.names == [("train/aachen", CITY_NAME)]
    sample = ds[0]
    depth = sample["depth_gt"][0]
    assert float(depth[32, 64]) == pytest.approx(
        0.209313 * 2262.52 / ((2561 - 1) / 256), rel=1e-6
    )  # 47.357 m
    assert int((depth > 0).sum()) == 1 and float(depth[0, 0]) == 0.0  # p = 0 and p = 1 stay invalid
    # K from the JSON at 2048x1024, scaled by 1/16 to 128x64.
    expected = [[2262.52 / 16, 0, 1096.98 / 16], [0, 2265.3017905988554 / 16, 513.137 / 16], [0, 0, 1]]
    np.testing.assert_allclose(sample["K"][:3, :3].numpy(), expected, rtol=1e-6)
    assert float(sample[("color", 0, 0)][0, 10, 10]) == pytest.approx(90 / 255)


def test_cityscapes_errors_name_the_file(cityscapes_root: Path) -> None:
    camera = cityscapes_root / "camera" / "train" / "aachen" / f"{CITY_NAME}_camera.json"
    camera.write_text(json.dumps({"intrinsic": CAMERA["intrinsic"]}))
    with pytest.raises(
        DataError, match=r"_camera\.json: expected JSON with intrinsic\.fx.*extrinsic\.baseline"
    ):
        CityscapesDataset(cityscapes_root, "train", 64, 128)[0]
    disparity = cityscapes_root / "disparity" / "train" / "aachen" / f"{CITY_NAME}_disparity.png"
    cv2.imwrite(str(disparity), np.zeros((512, 1024), np.uint16))
    camera.write_text(json.dumps(CAMERA))
    with pytest.raises(
        DataError, match=r"_disparity\.png: uint16 \(512, 1024\), expected a uint16 disparity PNG"
    ):
        CityscapesDataset(cityscapes_root, "train", 64, 128)[0]
    disparity.unlink()
    with pytest.raises(FileNotFoundError, match=r"_disparity\.png does not exist \(the disparity and camera"):
        CityscapesDataset(cityscapes_root, "train", 64, 128)
    with pytest.raises(FileNotFoundError, match=r"leftImg8bit/val does not exist"):
        CityscapesDataset(cityscapes_root, "val", 64, 128)


# -- build_dataset from a config ---------------------------------------------------------------


def test_build_dataset_from_config_and_batch(
    labelled_mat: Path, diw_root: Path, cityscapes_root: Path, tmp_path: Path
) -> None:
    splits = tmp_path / "splits.mat"
    scipy.io.savemat(splits, {"trainNdxs": np.array([[1.0], [3.0]]), "testNdxs": np.array([[2.0]])})
    size = ["data.height=32", "data.width=64", "data.augment.color_prob=0.0"]
    nyu = load_config(
        None,
        [
            "data.source=nyu",
            f"data.root={labelled_mat}",
            "data.nyu.split=splits.mat",
            f"data.nyu.val_split={splits}",
            *size,
        ],
    )
    assert temporal_frame_ids(nyu["data"]) == [
        0
    ]  # frame_ids [0, -1, 1] in the defaults: not for single images
    train, val = build_dataset(nyu, "train"), build_dataset(nyu, "val")
    assert isinstance(train, NyuMatDataset) and len(train) == 2 and len(val) == 1
    train[0]  # opens the HDF5 file in this process; the worker must open its own
    batch = next(iter(DataLoader(train, batch_size=2, num_workers=1)))
    assert batch[("color", 0, 0)].shape == (2, 3, 32, 64) and batch[("color_aug", 0, 0)].shape == (
        2,
        3,
        32,
        64,
    )
    assert batch["depth_gt"].shape == (2, 1, 32, 64) and batch["K"].shape == (2, 4, 4)
    assert batch["inv_K"].shape == (2, 4, 4) and batch["index"].tolist() == [0, 1]
    assert not any(isinstance(k, tuple) and k[1] != 0 for k in batch)

    diw = load_config(
        None, ["data.source=diw", f"data.root={diw_root}", "data.diw.split=DIW_train_val.csv", *size]
    )
    assert build_dataset(diw, "val") is None
    batch = next(iter(DataLoader(build_dataset(diw, "train"), batch_size=2)))
    assert batch["pairs"].shape == (2, 1, 4) and batch["relation"].tolist() == [[1.0], [-1.0]]
    assert "depth_gt" not in batch and batch[("color", 0, 0)].shape == (2, 3, 32, 64)

    city = load_config(
        None,
        ["data.source=cityscapes", f"data.root={cityscapes_root}", "data.cityscapes.val_split=null", *size],
    )
    assert build_dataset(city, "val") is None
    batch = next(iter(DataLoader(build_dataset(city, "train"), batch_size=1)))
    assert batch["depth_gt"].shape == (1, 1, 32, 64) and float(batch["depth_gt"].max()) > 40.0
    assert isinstance(batch["K"], torch.Tensor) and batch["K"].shape == (1, 4, 4)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["data.source=nyu", "data.nyu.depth_scale=-1"], "data.nyu.depth_scale=-1: expected auto"),
        (["data.source=nyu", "data.nyu.depth_scale=mm"], "data.nyu.depth_scale='mm'"),
        (["data.source=diw"], "data.diw.split: expected the DIW annotation CSV"),
        (["data.source=cityscapes", "data.cityscapes.split=null"], "data.cityscapes.split=None"),
        (["data.source=nyu", "data.modality=S"], "data.source=nyu has no stereo pairs"),
        (["data.source=cityscapes", "data.depth_gt=dense"], "leave it none for data.source=cityscapes"),
    ],
)
def test_config_validation_of_single_image_sources(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(None, overrides)


def test_nyu_folder_root_needs_a_csv(densedepth_root: Path) -> None:
    config = load_config(None, ["data.source=nyu", f"data.root={densedepth_root}"])
    with pytest.raises(ValueError, match="needs a CSV of 'rgb_path,depth_path' lines"):
        build_dataset(config, "train")
    config = load_config(
        None,
        [
            "data.source=nyu",
            f"data.root={densedepth_root}",
            "data.nyu.split=data/nyu2_train.csv",
            "data.nyu.val_split=data/nyu2_test.csv",
        ],
    )
    assert isinstance(build_dataset(config, "train"), NyuCsvDataset)
    assert float(build_dataset(config, "val")[0]["depth_gt"].max()) == pytest.approx(9.876, rel=1e-3)
