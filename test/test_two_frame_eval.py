"""depth-eval on two-frame models (training/predictors.py, training/evaluate.py, training/checkpoint.py).

Each test frame goes in with the previous frame of its own drive (KITTI frame index - 1, Manydepth's
protocol, not the previous test frame), a drive's first frame with itself (the runtime's first-frame
mode); an ONNX two-frame export runs through the runtime's DepthEstimator, a multi-frame checkpoint
as its two-frame student (not the single-frame teacher).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SIM_DATE
from onnx_models import make_two_frame_model

from training.checkpoint import load_checkpoint, save_checkpoint, two_frame_net_from_checkpoint
from training.datasets.kitti import SplitEntry
from training.evaluate import EvalOptions, evaluate_model, kitti_frames
from training.networks import build_depth_net, build_multi_depth_net, build_pose_net, multi_frame_config
from training.predictors import CheckpointPredictor, OnnxPredictor

DRIVES = [f"{SIM_DATE}/{SIM_DATE}_drive_000{n}_sync" for n in (1, 2)]
# Drive 1: frames 0, 1, 5 (5's previous frame is 4, not the test frame before it); drive 2: 0, 1.
ENTRIES = [SplitEntry(DRIVES[0], f) for f in (0, 1, 5)] + [SplitEntry(DRIVES[1], f) for f in (0, 1)]
EXPECTED_PREVIOUS = [None, 0, 4, None, 0]


@pytest.fixture(scope="module")
def two_drive_root(tmp_path_factory: pytest.TempPathFactory, sim_drive) -> Path:
    from depth_node.data.kitti import write_drive

    root = tmp_path_factory.mktemp("kitti_two_drives")
    for number in (1, 2):
        write_drive(sim_drive, root, date=SIM_DATE, drive_number=number, dense_gt=False)
    return root


def _frames(root: Path, entries: list[SplitEntry]):
    return kitti_frames(root, entries, gt_maps=[np.full((8, 8), 10.0, np.float32)] * len(entries))


def test_kitti_frames_give_the_previous_frame_of_the_same_drive(two_drive_root: Path) -> None:
    frames = _frames(two_drive_root, ENTRIES)
    for frame, entry, previous in zip(frames, ENTRIES, EXPECTED_PREVIOUS, strict=True):
        got = frame.load_previous()
        if previous is None:
            assert got is None, entry
        else:
            (reference,) = _frames(two_drive_root, [SplitEntry(entry.folder, previous)])
            np.testing.assert_array_equal(got, reference.load_image())


class RecordingOnnxPredictor(OnnxPredictor):
    """The real predictor; keeps each prediction to check which frames went in."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, threads=1)
        self.outputs: list[np.ndarray] = []

    def predict_batch(self, images: np.ndarray, prev: np.ndarray | None = None) -> np.ndarray:
        depth = super().predict_batch(images, prev)
        self.outputs.append(depth[0])
        return depth


def test_a_two_frame_export_is_fed_each_frames_previous_frame_and_resets_at_drives(
    two_drive_root: Path, tmp_path: Path
) -> None:
    # depth = 1 + 10 * mean_c(image) + 50 * mean_c(prev_image): the output tells which frames went in.
    predictor = RecordingOnnxPredictor(make_two_frame_model(tmp_path / "two.onnx", height=12, width=16))
    assert predictor.frames == 2
    frames = _frames(two_drive_root, ENTRIES)
    result = evaluate_model(
        predictor, frames, None, options=EvalOptions(garg_crop=False, grid_frames=0), progress=False
    )
    assert result.frames == len(ENTRIES)

    def network_mean(entry: SplitEntry) -> np.ndarray:
        (frame,) = _frames(two_drive_root, [entry])
        return predictor._network_input(frame.load_image())[0].mean(axis=0)

    for got, entry, previous in zip(predictor.outputs, ENTRIES, EXPECTED_PREVIOUS, strict=True):
        current = network_mean(entry)
        prev = current if previous is None else network_mean(SplitEntry(entry.folder, previous))
        np.testing.assert_allclose(got, 1.0 + 10.0 * current + 50.0 * prev, rtol=1e-5, err_msg=str(entry))
    # Not trivially equal: frame 5 with frame 4 is not frame 5 twice.
    assert not np.allclose(predictor.outputs[2], 1.0 + 60.0 * network_mean(ENTRIES[2]), rtol=1e-3)

    # --repeat-frame: every frame goes in twice, whatever its previous frame.
    predictor.outputs.clear()
    options = EvalOptions(garg_crop=False, grid_frames=0, repeat_frame=True)
    result = evaluate_model(predictor, frames, None, options=options, progress=False)
    assert result.info["repeat_frame"] is True
    for got, entry in zip(predictor.outputs, ENTRIES, strict=True):
        np.testing.assert_allclose(got, 1.0 + 60.0 * network_mean(entry), rtol=1e-5, err_msg=str(entry))


def test_a_multi_frame_checkpoint_is_scored_as_its_two_frame_student(tmp_path: Path) -> None:
    torch.manual_seed(0)
    height, width = 64, 96
    model_cfg = multi_frame_config({"backbone": "stdc1", "multi_frame": True, "num_depth_bins": 8})
    teacher, pose_net, student = (
        build_depth_net(model_cfg),
        build_pose_net(model_cfg),
        build_multi_depth_net(model_cfg),
    )
    path = save_checkpoint(
        tmp_path / "multi.pt",
        {
            "config": {"model": model_cfg, "data": {"height": height, "width": width}},
            "depth_net": teacher.state_dict(),
            "pose_net": pose_net.state_dict(),
            "multi_depth_net": student.state_dict(),
        },
    )
    predictor = CheckpointPredictor(path, device="cpu")
    assert predictor.frames == 2 and predictor.input_size == (width, height)

    rng = np.random.default_rng(0)
    rgb, prev = (rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(2))
    net = two_frame_net_from_checkpoint(load_checkpoint(path))
    image, previous = (torch.from_numpy(predictor._network_input(x)) for x in (rgb, prev))
    with torch.no_grad():
        expected = net(image, previous)[0, 0].numpy()
        expected_first = net(image, image)[0, 0].numpy()
        teacher_depth = teacher.eval().predict_depth(image)[0, 0].numpy()
    np.testing.assert_allclose(predictor.predict(rgb, prev), expected, rtol=1e-5)
    np.testing.assert_allclose(predictor.predict(rgb), expected_first, rtol=1e-5)  # first-frame mode
    assert not np.allclose(expected, teacher_depth, rtol=1e-2)
    with pytest.raises(ValueError, match="previous frame of shape"):
        predictor.predict(rgb, prev[:-1])
