"""Training datasets: KITTI raw, rosbag2 and image folders, on the shared synthetic drive."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from depth_node.data import kitti
from depth_node.geometry import scale_intrinsics
from training.datasets import (
    BagDataset,
    FolderDataset,
    KittiDataset,
    SplitEntry,
    build_dataset,
    read_split_file,
    split_from_drives,
    write_split_file,
)
from training.datasets.common import AugmentConfig, ColorJitterParams, color_jitter, resize_sparse_depth
from training.datasets.folder import read_intrinsics
from training.datasets.kitti import parse_split_line

H, W = 96, 320
DRIVE = "2011_09_26/2011_09_26_drive_0001_sync"
NO_AUG = AugmentConfig(flip_prob=0.0, color_prob=0.0)
SPLITS_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "kitti_splits"


@pytest.fixture(scope="module")
def entries(kitti_root: Path) -> list[SplitEntry]:
    return split_from_drives(kitti_root, [DRIVE], [0, -1, 1], ["l"], static_speed=1.0)


def test_sample_keys_shapes_and_intrinsics(kitti_root: Path, entries: list[SplitEntry], sim_drive) -> None:
    ds = KittiDataset(kitti_root, entries, H, W, [0, -1, 1], depth_gt="dense", augment=NO_AUG)
    # 12 frames, first and last lack a neighbour; the synthetic car never stands still.
    assert len(ds) == len(sim_drive) - 2 and ds.entries[0].frame == 1
    sample = ds[0]
    for f in (0, -1, 1):
        assert sample[("color", f, 0)].shape == (3, H, W) and sample[("color", f, 0)].dtype == torch.float32
        assert sample[("color_aug", f, 0)].shape == (3, H, W)
        assert 0.0 <= float(sample[("color", f, 0)].min()) and float(sample[("color", f, 0)].max()) <= 1.0
    assert set(k for k in sample if isinstance(k, tuple) and k[0] == "distance") == {
        ("distance", -1),
        ("distance", 1),
    }
    assert sample["depth_gt"].shape == (1, H, W)
    width, height = sim_drive.config.width, sim_drive.config.height
    expected = scale_intrinsics(sim_drive.K, (width, height), (W, H))
    np.testing.assert_allclose(sample["K"][:3, :3].numpy(), expected, rtol=1e-5)
    np.testing.assert_allclose(sample["inv_K"].numpy() @ sample["K"].numpy(), np.eye(4), atol=1e-5)
    # The image is the drive's frame resized with INTER_AREA.
    rgb = cv2.resize(sim_drive.frame(1).image, (W, H), interpolation=cv2.INTER_AREA)
    np.testing.assert_allclose(sample[("color", 0, 0)].numpy().transpose(1, 2, 0), rgb / 255.0, atol=1e-6)
    # Dense GT keeps measured depths only: every valid value is one of the frame's depths nearby.
    gt = sample["depth_gt"][0].numpy()
    truth = sim_drive.frame(1).depth
    assert 0.5 < (gt > 0).mean() <= np.isfinite(truth).mean() + 0.05
    assert np.nanmin(truth) - 0.01 <= gt[gt > 0].min() and gt.max() <= np.nanmax(truth) + 0.01


def test_distances_match_the_worlds_motion(kitti_root: Path, entries: list[SplitEntry], sim_drive) -> None:
    ds = KittiDataset(kitti_root, entries, H, W, [0, -1, 1], augment=NO_AUG)
    for index in (0, 4, len(ds) - 1):
        frame = ds.entries[index].frame
        centre = sim_drive.pose(frame)[:3, 3]
        sample = ds[index]
        for f in (-1, 1):
            expected = np.linalg.norm(sim_drive.pose(frame + f)[:3, 3] - centre)
            assert float(sample[("distance", f)]) == pytest.approx(expected, abs=2e-3)
            assert 0.4 < expected < 1.6  # 5-15 m/s at 10 fps


def test_flip_mirrors_images_depth_and_principal_point(kitti_root: Path, entries: list[SplitEntry]) -> None:
    plain = KittiDataset(kitti_root, entries, H, W, depth_gt="dense", augment=NO_AUG)
    flipped = KittiDataset(kitti_root, entries, H, W, depth_gt="dense", augment=AugmentConfig(1.0, 0.0))
    a, b = plain[2], flipped[2]
    for f in (0, -1, 1):
        torch.testing.assert_close(b[("color", f, 0)], a[("color", f, 0)].flip(-1))
    torch.testing.assert_close(b["depth_gt"], a["depth_gt"].flip(-1))
    assert float(b["K"][0, 2]) == pytest.approx(W - 1 - float(a["K"][0, 2]), abs=1e-4)
    torch.testing.assert_close(b["K"][:, [0, 1, 3]], a["K"][:, [0, 1, 3]])  # only cx changes
    torch.testing.assert_close(b[("distance", 1)], a[("distance", 1)])


def test_flip_keeps_the_geometry_consistent() -> None:
    # A point projected with K at column u must land at W-1-u in the mirrored image with flipped K.
    from training.datasets.common import flip_intrinsics

    K = np.array([[100.0, 0, 150.3], [0, 100.0, 40.0], [0, 0, 1]])
    point = np.array([2.0, 0.5, 10.0])
    u = (K @ point / point[2])[0]
    mirrored = np.array([-point[0], point[1], point[2]])
    u_flip = (flip_intrinsics(K, W) @ mirrored / mirrored[2])[0]
    assert u_flip == pytest.approx(W - 1 - u)


def test_augmentation_depends_on_seed_epoch_index_only(kitti_root: Path, entries: list[SplitEntry]) -> None:
    ds = KittiDataset(kitti_root, entries, H, W, augment=AugmentConfig(), seed=3)
    first = ds[1][("color_aug", 0, 0)]
    ds[0], ds[5]  # other samples in between must not change sample 1
    torch.testing.assert_close(ds[1][("color_aug", 0, 0)], first)
    draws = []
    for epoch in range(6):
        ds.set_epoch(epoch)
        draws.append(ds[1][("color_aug", 0, 0)])
    assert any(not torch.equal(draws[0], d) for d in draws[1:])
    ds.set_epoch(0)
    torch.testing.assert_close(ds[1][("color_aug", 0, 0)], first)
    # Validation sets never augment.
    val = KittiDataset(kitti_root, entries, H, W, augment=AugmentConfig(1.0, 1.0), is_train=False)
    torch.testing.assert_close(val[1][("color_aug", 0, 0)], val[1][("color", 0, 0)])


def test_color_jitter_formulas() -> None:
    rng = np.random.default_rng(0)
    image = rng.random((4, 5, 3)).astype(np.float32)
    identity = dict(brightness=1.0, contrast=1.0, saturation=1.0, hue=0.0)
    out = color_jitter(image, ColorJitterParams((0, 1, 2, 3), **{**identity, "brightness": 1.2}))
    np.testing.assert_allclose(out, np.clip(image * 1.2, 0, 1), atol=1e-6)
    grey = image @ np.array([0.2989, 0.587, 0.114], dtype=np.float32)
    out = color_jitter(image, ColorJitterParams((1, 0, 2, 3), **{**identity, "contrast": 0.8}))
    np.testing.assert_allclose(out, np.clip(0.8 * image + 0.2 * grey.mean(), 0, 1), atol=1e-6)
    out = color_jitter(image, ColorJitterParams((2, 0, 1, 3), **{**identity, "saturation": 0.0}))
    np.testing.assert_allclose(out, np.repeat(grey[..., None], 3, axis=2), atol=1e-6)
    # A full turn of hue is the identity; a third of a turn maps pure red to pure green.
    out = color_jitter(image, ColorJitterParams((3, 0, 1, 2), **{**identity, "hue": 1.0}))
    np.testing.assert_allclose(out, image, atol=1e-4)
    red = np.zeros((1, 1, 3), np.float32)
    red[..., 0] = 1.0
    green = color_jitter(red, ColorJitterParams((3, 0, 1, 2), **{**identity, "hue": 1 / 3}))
    np.testing.assert_allclose(green[0, 0], [0, 1, 0], atol=1e-4)
    params = ColorJitterParams.sample(np.random.default_rng(1), AugmentConfig())
    assert 0.8 <= params.brightness <= 1.2 and -0.1 <= params.hue <= 0.1
    assert sorted(params.order) == [0, 1, 2, 3]


def test_one_jitter_draw_for_all_frames(kitti_root: Path, entries: list[SplitEntry]) -> None:
    # Hue only (a per-pixel function): equal colours in two frames must stay equal after jitter.
    hue_only = AugmentConfig(flip_prob=0, color_prob=1, brightness=0, contrast=0, saturation=0, hue=0.1)
    ds = KittiDataset(kitti_root, entries, H, W, augment=hue_only, seed=1)
    sample = ds[3]
    before = [sample[("color", f, 0)].numpy() for f in (0, 1)]
    after = [sample[("color_aug", f, 0)].numpy() for f in (0, 1)]
    assert not np.allclose(after[0], before[0], atol=1e-3)
    same = np.all(np.isclose(before[0], before[1], atol=1e-7), axis=0)
    assert same.sum() > 100
    np.testing.assert_allclose(after[0][:, same], after[1][:, same], atol=1e-5)


def test_velodyne_ground_truth_is_downsampled_sparsely(kitti_root: Path, entries: list[SplitEntry]) -> None:
    ds = KittiDataset(kitti_root, entries, H, W, depth_gt="velodyne", augment=NO_AUG)
    gt = ds[0]["depth_gt"][0].numpy()
    assert 0.01 < (gt > 0).mean() < 0.6  # LiDAR: sparse
    dense = KittiDataset(kitti_root, entries, H, W, depth_gt="dense", augment=NO_AUG)[0]["depth_gt"][
        0
    ].numpy()
    both = (gt > 0) & (dense > 0)
    # LiDAR and rendered depth agree where both exist (a few pixels at edges may not).
    assert np.median(np.abs(gt[both] - dense[both]) / dense[both]) < 0.05


def test_resize_sparse_depth_keeps_the_nearest_point() -> None:
    depth = np.zeros((4, 4), np.float32)
    depth[0, 0], depth[1, 1], depth[3, 3], depth[2, 0] = 5.0, 3.0, 7.0, np.nan
    out = resize_sparse_depth(depth, 2, 2)
    np.testing.assert_array_equal(out, [[3.0, 0.0], [0.0, 7.0]])


def test_split_parsing_real_lines(tmp_path: Path) -> None:
    # Lines exactly as in the published files (Eigen test: 10-digit frames; Eigen-Zhou: plain ints).
    assert parse_split_line("2011_09_26/2011_09_26_drive_0002_sync 0000000069 l") == SplitEntry(
        "2011_09_26/2011_09_26_drive_0002_sync", 69, "l"
    )
    assert parse_split_line("2011_09_29/2011_09_29_drive_0026_sync 1 r").cam == 3
    assert parse_split_line("2011_09_26/2011_09_26_drive_0022_sync 473").side == "l"
    with pytest.raises(ValueError, match="side"):
        parse_split_line("2011_09_26/x_sync 4 x")
    with pytest.raises(ValueError, match="expected"):
        parse_split_line("2011_09_26/x_sync")
    entries = [SplitEntry(DRIVE, 5, "l"), SplitEntry(DRIVE, 6, "r")]
    path = write_split_file(tmp_path / "split.txt", entries)
    path.write_text("# comment\n\n" + path.read_text())
    assert read_split_file(path) == entries


@pytest.mark.skipif(not SPLITS_DIR.is_dir(), reason="shared KITTI split files not present")
def test_published_split_files_parse() -> None:
    counts = {
        "eigen/test_files.txt": 697,
        "eigen_benchmark/test_files.txt": 652,
        "eigen_zhou/train_files.txt": 39810,
        "eigen_zhou/val_files.txt": 4424,
    }
    for name, count in counts.items():
        entries = read_split_file(SPLITS_DIR / name)
        assert len(entries) == count
        assert {e.side for e in entries} <= {"l", "r"}
    first = read_split_file(SPLITS_DIR / "eigen/test_files.txt")[0]
    assert first == SplitEntry("2011_09_26/2011_09_26_drive_0002_sync", 69, "l")


def test_static_frames_are_dropped(tmp_path: Path, kitti_root: Path) -> None:
    root = tmp_path / "kitti"
    shutil.copytree(kitti_root, root)
    drive_dir = root / DRIVE
    for frame in (3, 4, 5):  # the car "stops" here: forward/leftward OXTS velocity 0.2 m/s
        path = kitti.oxts_path(drive_dir, frame)
        record = kitti.read_oxts(path)
        record[8:10] = (0.2, 0.0)
        path.write_text(" ".join(repr(float(v)) for v in record) + "\n")
    kept = [e.frame for e in split_from_drives(root, [DRIVE], [0, -1, 1], ["l"], static_speed=1.0)]
    assert kept == [1, 2, 6, 7, 8, 9, 10]
    everything = [e.frame for e in split_from_drives(root, [DRIVE], [0, -1, 1], ["l"], static_speed=None)]
    assert everything == list(range(1, 11))
    # Wider frame_ids need wider margins.
    assert split_from_drives(root, [DRIVE], [0, -2, 2], ["l"], None)[0].frame == 2


def test_missing_frames_are_skipped_not_fatal(kitti_root: Path) -> None:
    entries = [
        SplitEntry(DRIVE, 0, "l"),
        SplitEntry(DRIVE, 5, "l"),
        SplitEntry("2011_09_26/nope_sync", 3, "l"),
    ]
    ds = KittiDataset(kitti_root, entries, H, W, augment=NO_AUG)
    assert [e.frame for e in ds.entries] == [5]  # frame 0 has no frame -1
    with pytest.raises(ValueError, match="no usable KITTI frames"):
        KittiDataset(kitti_root, entries[:1], H, W)


@pytest.mark.parametrize("bag_fixture", ["sim_bag", "sim_bag_mcap"])
def test_bag_reads_the_same_frames_as_kitti(
    request: pytest.FixtureRequest, bag_fixture: str, kitti_root: Path, entries: list[SplitEntry]
) -> None:
    bag_path = request.getfixturevalue(bag_fixture)
    bag = BagDataset(bag_path, H, W, [0, -1, 1], augment=NO_AUG)
    ref = KittiDataset(kitti_root, entries, H, W, [0, -1, 1], augment=NO_AUG)
    assert bag.image_topic == "/camera/image_raw"  # raw beats compressed; the GT depth image is skipped
    assert len(bag) == len(ref)
    for index in (0, len(ref) // 2, len(ref) - 1):
        a, b = ref[index], bag[index]
        for f in (0, -1, 1):
            torch.testing.assert_close(b[("color", f, 0)], a[("color", f, 0)])
        torch.testing.assert_close(b["K"], a["K"], rtol=1e-5, atol=1e-4)
        for f in (-1, 1):
            # The bag's odometry is the IMU (base_link), KITTI's distance the camera's: both travel
            # the same path up to the lever arm's effect while turning.
            assert float(b[("distance", f)]) == pytest.approx(float(a[("distance", f)]), rel=0.02)


def test_bag_lazy_reader_is_per_process_and_pickles(sim_bag: Path) -> None:
    import pickle

    bag = BagDataset(sim_bag, H, W, [0, -1, 1], augment=NO_AUG, odom_topic=None)
    assert bag.positions is None and np.isnan(float(bag[0][("distance", 1)]))
    clone = pickle.loads(pickle.dumps(bag))  # what a DataLoader worker gets
    torch.testing.assert_close(clone[2][("color", 0, 0)], bag[2][("color", 0, 0)])
    bag.close()
    clone.close()


def test_folder_dataset(tmp_path: Path, sim_drive) -> None:
    seq = tmp_path / "seq_a"
    seq.mkdir()
    for i in range(5):
        cv2.imwrite(str(seq / f"{i:06d}.png"), cv2.cvtColor(sim_drive.frame(i).image, cv2.COLOR_RGB2BGR))
    K = sim_drive.K
    (seq / "intrinsics.txt").write_text(f"{K[0, 0]} {K[1, 1]} {K[0, 2]} {K[1, 2]}\n")
    ds = FolderDataset(tmp_path, H, W, [0, -1, 1], augment=NO_AUG)
    assert len(ds) == 3
    sample = ds[0]
    size = (sim_drive.config.width, sim_drive.config.height)
    np.testing.assert_allclose(sample["K"][:3, :3].numpy(), scale_intrinsics(K, size, (W, H)), rtol=1e-5)
    rgb = cv2.resize(sim_drive.frame(0).image, (W, H), interpolation=cv2.INTER_AREA)
    np.testing.assert_allclose(sample[("color", -1, 0)].numpy().transpose(1, 2, 0), rgb / 255.0, atol=1e-6)
    assert np.isnan(float(sample[("distance", 1)]))
    yaml_path = tmp_path / "intrinsics.yaml"
    yaml_path.write_text("camera_matrix:\n  rows: 3\n  cols: 3\n  data: [100, 0, 50, 0, 110, 20, 0, 0, 1]\n")
    np.testing.assert_allclose(read_intrinsics(yaml_path), [[100, 0, 50], [0, 110, 20], [0, 0, 1]])
    (tmp_path / "bad.txt").write_text("1 2 3\n")
    with pytest.raises(ValueError, match="fx fy cx cy"):
        read_intrinsics(tmp_path / "bad.txt")


def test_build_dataset_from_config(kitti_root: Path, sim_bag: Path) -> None:
    from training.config import load_config

    cfg = load_config(
        None, [f"data.root={kitti_root}", f"data.drives=[{DRIVE}]", "data.height=96", "data.width=320"]
    )
    train = build_dataset(cfg, "train")
    assert isinstance(train, KittiDataset) and len(train) == 10 and train.augment is not None
    assert build_dataset(cfg, "val") is None
    cfg = load_config(None, ["data.source=bag", f"data.root={sim_bag}", "data.height=96", "data.width=320"])
    assert isinstance(build_dataset(cfg, "train"), BagDataset)
    cfg = load_config(None, ["data.source=kitti", f"data.root={kitti_root}"])
    with pytest.raises(ValueError, match=r"data\.split"):
        build_dataset(cfg, "train")


# --- stereo pairs (data.modality S / MS) -------------------------------------------------------

STEREO_W, STEREO_H, BASELINE = 320, 96, 0.54


@pytest.fixture(scope="module")
def stereo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from depth_node.data.sim.world import SyntheticDrive, WorldConfig

    drive = SyntheticDrive(
        WorldConfig(seed=5, num_frames=4, width=STEREO_W, height=STEREO_H, lidar=False, stereo=True)
    )
    root = tmp_path_factory.mktemp("stereo_kitti")
    kitti.write_drive(drive, root)
    return root


def _stereo_set(root: Path, side: str = "l", flip: float = 0.0) -> KittiDataset:
    entries = split_from_drives(root, [DRIVE], [0, -1, 1], [side], static_speed=None)
    augment = AugmentConfig(flip_prob=flip, color_prob=0.0)
    return KittiDataset(root, entries, STEREO_H, STEREO_W, [0, -1, 1], augment=augment, stereo=True)


def test_stereo_partner_and_pose_come_from_the_other_camera(stereo_root: Path) -> None:
    drive_dir = stereo_root / DRIVE
    for side, partner_cam, x in (("l", 3, -BASELINE), ("r", 2, BASELINE)):
        ds = _stereo_set(stereo_root, side)
        sample = ds[0]
        frame = ds.entries[0].frame
        partner = cv2.cvtColor(
            cv2.imread(str(kitti.image_path(drive_dir, frame, partner_cam))), cv2.COLOR_BGR2RGB
        )
        np.testing.assert_allclose(
            sample[("color", "s", 0)].numpy().transpose(1, 2, 0), partner / 255.0, atol=1e-6
        )
        expected = np.eye(4)
        expected[0, 3] = x  # frame-0 camera points seen from the partner camera
        np.testing.assert_allclose(sample["stereo_T"].numpy(), expected, atol=1e-6)
        assert ("distance", "s") not in sample


def test_stereo_flip_swaps_the_cameras_roles(stereo_root: Path) -> None:
    plain, flipped = _stereo_set(stereo_root)[0], _stereo_set(stereo_root, flip=1.0)[0]
    assert float(flipped["stereo_T"][0, 3]) == pytest.approx(BASELINE, abs=1e-6)
    torch.testing.assert_close(flipped[("color", "s", 0)], plain[("color", "s", 0)].flip(-1))


@pytest.mark.parametrize("flip", [0.0, 1.0])
def test_true_depth_warps_the_partner_onto_frame_0(stereo_root: Path, flip: float) -> None:
    """Calibration, flip handling and the loss's warp agree: the true depth explains the partner."""
    from training.geometry import warp_image

    ds = _stereo_set(stereo_root, flip=flip)
    index = 1
    sample = ds[index]
    entry = ds.entries[index]
    depth = kitti.read_depth_png(kitti.depth_gt_path(stereo_root / DRIVE, entry.frame, 2))
    depth = depth[:, ::-1] if flip else depth
    depth = np.where(depth > 0, depth, 80.0)  # the sky (0 in the PNG) is far away
    depth_t = torch.from_numpy(np.ascontiguousarray(depth, np.float32))[None, None]
    target, partner = sample[("color", 0, 0)][None], sample[("color", "s", 0)][None]
    warped = warp_image(partner, depth_t, sample["stereo_T"][None], sample["K"][None], sample["inv_K"][None])
    valid = torch.ones_like(depth_t, dtype=torch.bool)
    valid[..., : STEREO_W // 8] = valid[..., -STEREO_W // 8 :] = False  # where the partner does not look
    error_warped = (warped - target).abs().mean(1, keepdim=True)[valid].mean()
    error_plain = (partner - target).abs().mean(1, keepdim=True)[valid].mean()
    assert float(error_warped) < 0.5 * float(error_plain)


def test_build_dataset_modalities(stereo_root: Path, tmp_path: Path) -> None:
    from training.config import ConfigError, load_config

    base = [f"data.root={stereo_root}", f"data.drives=[{DRIVE}]", "data.height=96", "data.width=320"]
    stereo_only = build_dataset(load_config(None, [*base, "data.modality=S", f"data.val_drives=[{DRIVE}]"]))
    assert stereo_only.frame_ids == [0] and stereo_only.stereo
    assert len(stereo_only) == 4  # no neighbours needed: every frame is a sample
    assert {k[1] for k in stereo_only[0] if isinstance(k, tuple) and k[0] == "color"} == {0, "s"}
    both = build_dataset(load_config(None, [*base, "data.modality=MS"]))
    assert both.frame_ids == [0, -1, 1] and both.stereo and len(both) == 2
    # Validation is scored on single images: no partner there.
    val = build_dataset(load_config(None, [*base, "data.modality=S", f"data.val_drives=[{DRIVE}]"]), "val")
    assert not val.stereo
    with pytest.raises(ConfigError, match=r"data\.modality='SM'"):
        load_config(None, [*base, "data.modality=SM"])
    folder = load_config(None, ["data.source=folder", f"data.root={tmp_path}", "data.modality=MS"])
    with pytest.raises(ValueError, match="needs stereo pairs"):
        build_dataset(folder)
    # A mono drive has no image_03: its frames are skipped, and none left is a clear error.
    mono = tmp_path / "mono"
    shutil.copytree(stereo_root, mono)
    shutil.rmtree(mono / DRIVE / "image_03")
    with pytest.raises(ValueError, match="no usable KITTI frames"):
        build_dataset(load_config(None, [f"data.root={mono}", *base[1:], "data.modality=S"]))


def test_bag_stereo_pairs_match_kitti(stereo_root: Path, tmp_path: Path) -> None:
    from depth_node.data.bag_convert import convert_drive

    bag = convert_drive(stereo_root / DRIVE, tmp_path / "stereo_bag", compressed=False, lidar=False)
    # A stereo bag has two cameras: the left one is named, as for any bag with several.
    left = {"image_topic": "/camera/image_raw", "camera_info_topic": "/camera/camera_info"}
    topics = left | {
        "right_image_topic": "/camera_right/image_raw",
        "right_camera_info_topic": "/camera_right/camera_info",
    }
    ds = BagDataset(
        bag, STEREO_H, STEREO_W, [0, -1, 1], static_speed=None, stereo=True, augment=NO_AUG, **topics
    )
    reference = _stereo_set(stereo_root)
    assert len(ds) == len(reference) == 2
    sample, expected = ds[0], reference[0]
    torch.testing.assert_close(sample[("color", "s", 0)], expected[("color", "s", 0)])
    torch.testing.assert_close(sample["stereo_T"], expected["stereo_T"], atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="right_image_topic"):
        BagDataset(bag, STEREO_H, STEREO_W, stereo=True, **left)
    # The left camera's info as the right one's: P has no baseline.
    wrong = topics | {"right_camera_info_topic": "/camera/camera_info"}
    with pytest.raises(ValueError, match=r"expected -fx\*baseline"):
        BagDataset(bag, STEREO_H, STEREO_W, stereo=True, **wrong)
