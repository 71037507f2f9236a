"""The bad-input corpus (bad_inputs.py) through the frame path, the ground-truth reader, the model
loader, the replay and the training data loaders: each case a named drop, the right output, or one
clear line - never a crash, a hang or a traceback. (The depth node runs the same corpus in
test_node.py, the eval node reads ground truth with the same ``depth_truth``.)
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from bad_inputs import (
    BAD_MODEL_KINDS,
    CASES,
    BadInput,
    camera_info,
    case_id,
    cases,
    rgb_image,
    write_camera_bag,
)
from onnx_models import bad_model_files, make_linear_depth_model

from depth_node.evaluation.ground_truth import depth_truth
from depth_node.evaluation.replay_cli import main as replay_main
from depth_node.runtime.errors import BadInputError, ModelLoadError
from depth_node.runtime.estimator import DepthEstimator
from depth_node.runtime.frame import DROP_REASONS, RESET_REASONS, FrameDrop, FrameOutputs, FramePath
from depth_node.runtime.message_types import rosbags_types
from depth_node.runtime.parameters import validate_parameters

TYPES = rosbags_types()
T0 = 1_700_000_000 * 10**9
CASE_TIME_LIMIT_S = 120.0  # a hang, not a slow case: the 8000x8000 frame takes a few seconds


def _within(seconds: float, work: Callable[[], Any]) -> Any:
    """``work()``'s result, or a test failure if it does not return in ``seconds`` (a hang)."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["result"] = work()
        except BaseException as error:  # handed to the test thread as it is
            box["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"hung for more than {seconds:.0f} s"
    if "error" in box:
        raise box["error"]
    return box["result"]


def _one_line(text: str) -> None:
    assert text and "\n" not in text.strip() and "Traceback" not in text, text


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_linear_depth_model(tmp_path_factory.mktemp("corpus") / "linear.onnx", 16, 48, a=2.0, b=30.0)


def _frame_path(model: Path) -> tuple[FramePath, Any]:
    settings = validate_parameters({"model_path": str(model), "providers": ["cpu"]})
    return FramePath.from_settings(settings, TYPES), settings


def test_the_corpus_is_what_the_issue_asks_for(tmp_path: Path) -> None:
    assert len({case.kind for case in CASES}) >= 10 and len(CASES) >= 60
    assert len({case.name for case in CASES}) == len(CASES)  # every case named once
    for case in CASES:
        allowed = {"ok", "error", *DROP_REASONS, *RESET_REASONS}
        assert case.expect in allowed, case.name
        assert (case.check is not None) == (case.expect == "ok" and case.target not in ("stamps",)), case.name
    assert set(BAD_MODEL_KINDS) == set(bad_model_files(tmp_path))  # every bad model file is a case


@pytest.mark.parametrize("case", cases("frame"), ids=case_id)
def test_frame_cases_through_the_frame_path(model: Path, case: BadInput) -> None:
    path, settings = _frame_path(model)
    image, info = case.build(TYPES, T0)
    out = _within(CASE_TIME_LIMIT_S, lambda: path.process(image, info, settings, cloud=True))
    if case.expect == "ok":
        assert isinstance(out, FrameOutputs), getattr(out, "detail", out)
        assert case.check is not None and case.check(out)
    else:
        assert isinstance(out, FrameDrop) and out.reason == case.expect, out
        _one_line(out.detail)


@pytest.mark.parametrize("case", cases("stamps"), ids=case_id)
def test_stamp_cases_through_the_frame_path(model: Path, case: BadInput) -> None:
    path, settings = _frame_path(model)
    outcomes = [path.process(image, info, settings, cloud=False) for image, info in case.build(TYPES, T0)]
    *earlier, last = outcomes
    assert all(isinstance(out, FrameOutputs) for out in earlier)
    if case.expect in DROP_REASONS:
        assert isinstance(last, FrameDrop) and last.reason == case.expect
    else:
        assert isinstance(last, FrameOutputs)
        assert last.reset == (None if case.expect == "ok" else case.expect)


@pytest.mark.parametrize("case", cases("ground_truth"), ids=case_id)
def test_ground_truth_cases(case: BadInput) -> None:
    msg = case.build(TYPES, T0)
    if case.expect == "ok":
        truth = depth_truth(msg, "/ground_truth/depth")
        assert case.check is not None and case.check(truth.dense)
    else:
        with pytest.raises(BadInputError) as error:
            depth_truth(msg, "/ground_truth/depth")
        _one_line(str(error.value))


@pytest.mark.parametrize("case", cases("model"), ids=case_id)
def test_model_cases_give_one_line(case: BadInput, tmp_path: Path) -> None:
    path = case.build(tmp_path / "models")
    with pytest.raises(ModelLoadError) as error:
        _within(CASE_TIME_LIMIT_S, lambda: DepthEstimator(path, providers=["cpu"]))
    _one_line(str(error.value))
    assert path.name in str(error.value)


def _replay(bag: Path, model: Path, out: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = _within(
        CASE_TIME_LIMIT_S,
        lambda: replay_main([str(bag), "--model", str(model), "--out", str(out), "--quiet"]),
    )
    return code, capsys.readouterr().err


@pytest.mark.parametrize("case", cases("model"), ids=case_id)
def test_model_cases_through_the_replay(case: BadInput, tmp_path: Path, capsys, write_small_bag) -> None:
    bag = write_small_bag(tmp_path / "bag")
    code, err = _replay(bag, case.build(tmp_path / "models"), tmp_path / "out", capsys)
    assert code != 0
    _one_line(err)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("case", cases("bag"), ids=case_id)
def test_bag_cases_through_the_replay(case: BadInput, model: Path, tmp_path: Path, capsys) -> None:
    bag = case.build(tmp_path / "bag", TYPES)
    code, err = _replay(bag, model, tmp_path / "out", capsys)
    assert code != 0
    _one_line(err)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("case", cases("bag"), ids=case_id)
def test_bag_cases_through_the_training_loader(case: BadInput, tmp_path: Path) -> None:
    from training.datasets.bag import BagDataset

    bag = case.build(tmp_path / "bag", TYPES)

    def load_all() -> None:
        dataset = BagDataset(bag, 32, 96, static_speed=None, is_train=False)
        for index in range(len(dataset)):
            dataset[index]

    with pytest.raises((ValueError, OSError)) as error:
        _within(CASE_TIME_LIMIT_S, load_all)
    _one_line(str(error.value))


@pytest.mark.parametrize("case", cases("training_data"), ids=case_id)
def test_training_data_cases_through_the_kitti_loader(case: BadInput, tmp_path: Path) -> None:
    from training.datasets.kitti import KittiDataset, split_from_drives

    root = case.build(tmp_path)
    drives = [p.relative_to(root) for p in root.glob("*/*_sync")]

    def load_all() -> None:
        dataset = KittiDataset(
            root, split_from_drives(root, drives, static_speed=None), 32, 64, is_train=False
        )
        for index in range(len(dataset)):
            dataset[index]

    with pytest.raises((ValueError, OSError)) as error:
        _within(CASE_TIME_LIMIT_S, load_all)
    _one_line(str(error.value))


@pytest.mark.parametrize("compressed", [False, True], ids=["Image", "CompressedImage"])
def test_every_frame_case_in_one_bag_is_counted_by_the_replay(
    model: Path, tmp_path: Path, capsys, compressed: bool
) -> None:
    """The replay meets each bad frame in a drive (each with its own camera_info) and counts it."""
    frames, expected = [], Counter()
    for k, case in enumerate(case for case in cases("frame") if case.in_bag):
        image, info = case.build(TYPES, T0 + k * 10**8)
        # A missing camera_info can only be the first frame's: later ones would use the previous.
        if hasattr(image, "format") != compressed or (info is None and frames):
            continue
        frames.append((image, info))
        expected[case.expect] += 1
    if not compressed:  # two good frames at the end: the replay has something to score
        for k in range(2):
            stamp = T0 + (len(CASES) + k) * 10**8
            frames.append((rgb_image(TYPES, stamp), camera_info(TYPES, stamp)))
            expected["ok"] += 1
    image_type = "sensor_msgs/msg/CompressedImage" if compressed else "sensor_msgs/msg/Image"
    bag = write_camera_bag(tmp_path / "corpus_bag", TYPES, frames, image_type=image_type)
    code, err = _replay(bag, model, tmp_path / "out", capsys)
    if not expected["ok"]:  # every frame bad: one line naming the first, nothing written
        assert code != 0 and "could be processed" in err
        _one_line(err)
        return
    assert code == 0, err
    results = json.loads((tmp_path / "out" / "results.json").read_text())["frames"]
    dropped = {reason: n for reason, n in results["dropped_by_reason"].items() if n}
    assert dropped == {reason: n for reason, n in expected.items() if reason != "ok"}
    assert results["processed"] == expected["ok"]


def test_training_meets_a_bad_frame_mid_run_and_stops_with_one_line(tmp_path: Path, capsys) -> None:
    """A bag whose index is fine but one image is malformed: depth-train stops with the bag, topic and
    log time of that frame in one line (the checkpoint before it stays usable), not a traceback."""
    from bad_inputs import raw_image

    from training.train import main as train_main

    frames = []
    for k in range(8):
        stamp = T0 + k * 10**8
        image = rgb_image(TYPES, stamp) if k != 4 else raw_image(TYPES, stamp, "rgb8", b"\0" * 10)
        frames.append((image, camera_info(TYPES, stamp)))
    bag = write_camera_bag(tmp_path / "bag", TYPES, frames)
    overrides = [
        "data.source=bag",
        f"data.root={bag}",
        "data.height=32",
        "data.width=96",
        "data.num_workers=0",
        "data.augment.flip_prob=0",
        "model.backbone=resnet18",
        "model.weights=null",
        "train.batch_size=1",
        "train.max_steps=8",
        "train.threads=1",
        f"train.out_dir={tmp_path / 'run'}",
        "train.image_every=0",
    ]
    code = _within(CASE_TIME_LIMIT_S, lambda: train_main(overrides))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len([line for line in err if line.startswith("depth-train")]) == 1 and "Traceback" not in "".join(
        err
    )
    assert "/camera/image_raw at log time" in err[-1] and "step*height" in err[-1]
