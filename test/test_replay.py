"""Replay evaluation on real rosbag2 files (rosbags) and real onnxruntime sessions; no mocks.

The synthetic bags come from conftest.py (world -> KITTI layout -> converter, 12 frames 416x128);
small hand-written bags cover the error cases.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from onnx_models import make_linear_depth_model
from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from depth_node.evaluation.bag_input import ReplayError
from depth_node.evaluation.ground_truth import GroundTruth, StaticTransforms, parse_transform
from depth_node.evaluation.realtime import NewestFrameGate
from depth_node.evaluation.replay import ReplayOptions, replay
from depth_node.evaluation.replay_cli import main
from depth_node.evaluation.scoring import (
    StreamEvaluator,
    metrics_key_values,
    running_metrics_line,
    score_frame,
)
from depth_node.geometry import make_transform, rotation_matrix
from depth_node.metrics import evaluate_depth, resize_depth
from depth_node.runtime.conversions import image_msg_to_depth, numpy_to_image, to_rgb8
from depth_node.runtime.estimator import DepthEstimator
from depth_node.runtime.message_types import rosbags_types
from depth_node.runtime.messages import build_outputs, camera_info_from_K
from depth_node.runtime.parameters import validate_parameters
from depth_node.runtime.pipeline import DepthPipeline
from depth_node.runtime.pointcloud import cloud_xyz

TYPESTORE = get_typestore(Stores.ROS2_HUMBLE)
TYPES = rosbags_types()
MODEL_H, MODEL_W = 32, 104  # ~ the 416x128 camera's aspect


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # depth = 2 + 30 * grey level: real ONNX, contract metadata, metric (scale 1).
    return make_linear_depth_model(
        tmp_path_factory.mktemp("model") / "linear.onnx", height=MODEL_H, width=MODEL_W, a=2.0, b=30.0
    )


def _options(bag: Path, model: Path, out: Path, params: dict | None = None, **kw: object) -> ReplayOptions:
    node_params = {"providers": ["cpu"], "threads": 1, **(params or {})}
    return ReplayOptions(
        bag=bag, model=model, out=out, progress=False, report_frames=2, node_params=node_params, **kw
    )


def _read_topics(bag: Path, topics: set[str]) -> dict[str, list[tuple[int, object]]]:
    out: dict[str, list[tuple[int, object]]] = {t: [] for t in topics}
    with AnyReader([bag], default_typestore=TYPESTORE) as reader:
        conns = [c for c in reader.connections if c.topic in topics]
        for conn, timestamp, raw in reader.messages(connections=conns):
            out[conn.topic].append((timestamp, reader.deserialize(raw, conn.msgtype)))
    return out


def _stamp(msg: object) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec  # type: ignore[attr-defined]


def _no_leftovers(parent: Path, name: str) -> None:
    """Neither the output nor a temporary sibling of it may remain after a failure."""
    assert not (parent / name).exists()
    assert not [p for p in parent.iterdir() if p.name.startswith(f".{name}.")]


# ---------------------------------------------------------------- the replay on a synthetic bag


@pytest.fixture(scope="module")
def replayed(sim_bag: Path, tiny_model: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("replay") / "out"
    return replay(_options(sim_bag, tiny_model, out))


def test_output_bag_matches_the_runtime_core_exactly(replayed, sim_bag: Path, tiny_model: Path) -> None:
    """Every /depth/* message in the output bag equals what pipeline + build_outputs give for the frame."""
    results = replayed.results
    assert results["frames"]["processed"] == results["frames"]["total"] == 12
    assert results["inputs"]["image_topic"] == "/camera/image_raw"
    assert results["inputs"]["gt_depth_topic"] == "/ground_truth/depth"

    inputs = _read_topics(sim_bag, {"/camera/image_raw", "/camera/camera_info"})
    # The node's defaults (node_core.PARAMETERS): camera resolution, coloured organized cloud 0.5-80 m.
    settings = validate_parameters({"providers": ["cpu"], "threads": 1})
    pipeline = DepthPipeline(
        DepthEstimator(tiny_model, providers=("cpu",), threads=1), settings.pipeline_config()
    )
    expected = []
    for (_, image), (_, info) in zip(inputs["/camera/image_raw"], inputs["/camera/camera_info"]):
        rgb = to_rgb8(image)
        result = pipeline.process(rgb, np.asarray(info.k).reshape(3, 3))
        expected.append(
            build_outputs(
                result,
                image.header,
                info,
                TYPES,
                cloud=True,
                min_range=settings.min_range,
                max_range=settings.max_range,
                rgb=rgb,
            )
        )

    out = _read_topics(
        replayed.bag, {"/depth/image", "/depth/camera_info", "/depth/points", "/camera/image_raw"}
    )
    assert len(out["/depth/image"]) == len(out["/depth/points"]) == len(expected) == 12
    assert len(out["/camera/image_raw"]) == 12  # the camera is copied for rviz
    for exp, (_, image), (_, info), (_, cloud), (_, image_in) in zip(
        expected,
        out["/depth/image"],
        out["/depth/camera_info"],
        out["/depth/points"],
        inputs["/camera/image_raw"],
    ):
        assert _stamp(image) == _stamp(image_in) and image.header.frame_id == image_in.header.frame_id
        assert (image.width, image.height, image.encoding, image.step) == (
            exp.image.width,
            exp.image.height,
            exp.image.encoding,
            exp.image.step,
        )
        assert np.array_equal(np.asarray(image.data), np.asarray(exp.image.data))
        assert np.array_equal(info.k, exp.camera_info.k) and np.array_equal(info.p, exp.camera_info.p)
        assert (info.width, info.height) == (exp.camera_info.width, exp.camera_info.height)
        assert np.array_equal(np.asarray(cloud.data), np.asarray(exp.points.data))
        assert (cloud.width, cloud.height, cloud.point_step) == (
            exp.points.width,
            exp.points.height,
            exp.points.point_step,
        )


def test_results_json_holds_metrics_latency_and_frames(replayed, sim_bag: Path) -> None:
    results = json.loads((replayed.out_dir / "results.json").read_text())
    assert results["frames"]["scored"] == 12
    for kind in ("metric", "median_scaled"):
        assert set(results["metrics"][kind]) == {"abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3"}
    for stage in ("decode", "inference", "build_outputs", "end_to_end"):
        stats = results["latency_ms"][stage]
        assert 0 <= stats["p50"] <= stats["p95"] <= stats["p99"] <= stats["max"]
    assert results["fps"]["pipeline"] > 0 and results["fps"]["recorded"] == pytest.approx(10.0, rel=0.05)
    assert len(results["per_frame"]) == 12

    # The overall numbers are the mean of the per-frame numbers (KITTI averages frames).
    per_frame = results["per_frame"]
    assert results["metrics"]["metric"]["abs_rel"] == pytest.approx(
        np.mean([f["metric"]["abs_rel"] for f in per_frame])
    )
    # And a per-frame entry is exactly evaluate_depth on the bag's ground truth (metric scale).
    frame = per_frame[3]
    truth = _read_topics(sim_bag, {"/ground_truth/depth"})["/ground_truth/depth"][3][1]
    depth = _read_topics(replayed.bag, {"/depth/image"})["/depth/image"][3][1]
    gt, pred = image_msg_to_depth(truth), image_msg_to_depth(depth)
    assert pred.shape == gt.shape  # the pipeline outputs at camera resolution by default
    direct = evaluate_depth(gt, pred, max_depth=80.0)
    assert frame["metric"] == pytest.approx(direct.metrics)


def test_lidar_ground_truth_matches_the_dense_ground_truth(sim_bag: Path) -> None:
    """LiDAR projected with /tf_static + camera_info agrees with the dense depth where both exist."""
    msgs = _read_topics(
        sim_bag, {"/lidar/points", "/ground_truth/depth", "/camera/camera_info", "/tf_static"}
    )
    transforms = StaticTransforms()
    for _, tf in msgs["/tf_static"]:
        transforms.add_message(tf)
    info = msgs["/camera/camera_info"][0][1]
    K = np.asarray(info.k).reshape(3, 3)
    checked = 0
    for (_, cloud), (_, dense_msg) in zip(msgs["/lidar/points"], msgs["/ground_truth/depth"]):
        T = transforms.lookup(info.header.frame_id, cloud.header.frame_id)
        assert T is not None
        points = cloud_xyz(cloud) @ T[:3, :3].T + T[:3, 3]
        lidar = GroundTruth("lidar", points_cam=points, K=K, size=(info.width, info.height)).depth()
        dense = image_msg_to_depth(dense_msg)
        both = np.isfinite(lidar) & np.isfinite(dense) & (dense < 80)
        assert both.sum() > 200
        rel = np.abs(lidar[both] - dense[both]) / dense[both]
        assert np.median(rel) < 0.01
        checked += 1
    assert checked == 12


def test_replay_with_lidar_ground_truth_and_mcap(
    sim_bag_mcap: Path, tiny_model: Path, tmp_path: Path
) -> None:
    result = replay(
        _options(
            sim_bag_mcap, tiny_model, tmp_path / "out", {"publish_points": False}, gt="lidar", max_frames=4
        )
    )
    r = result.results
    assert r["inputs"]["lidar_topic"] == "/lidar/points" and r["inputs"]["gt_depth_topic"] is None
    assert r["frames"]["scored"] == r["frames"]["processed"] == 4
    assert r["outputs"]["bag_storage"] == "mcap" and list(result.bag.glob("*.mcap"))
    with AnyReader([result.bag]) as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
    assert "/depth/points" not in counts
    assert counts["/depth/image"] == counts["/camera/image_raw"] == 4 and counts["/tf_static"] == 1


def test_realtime_replay_accounts_for_every_frame(sim_bag: Path, tiny_model: Path, tmp_path: Path) -> None:
    result = replay(_options(sim_bag, tiny_model, tmp_path / "rt", realtime=True, copy_inputs=False))
    f = result.results["frames"]
    assert f["processed"] + f["dropped"] + f["bad"] == f["total"] == 12
    assert len(_read_topics(result.bag, {"/depth/image"})["/depth/image"]) == f["processed"]
    # The tiny model is far faster than 10 fps: nothing to drop.
    assert f["dropped"] == 0
    assert result.results["wall_time_s"] >= 1.0  # 12 frames at 10 Hz take 1.1 s of bag time


# ---------------------------------------------------------------- pure pieces


def test_metrics_equal_a_hand_computation_on_2x2_images() -> None:
    # gt 100 m is beyond the 80 m cap and the NaN has no truth: 3 pixels count.
    gt = np.array([[2.0, 4.0], [8.0, 100.0]], dtype=np.float32)
    pred = np.array([[1.0, 2.0], [16.0, 5.0]], dtype=np.float32)
    scores = score_frame(gt, pred, max_depth=80.0)
    assert scores is not None and scores["valid_pixels"] == 3
    # Metric: every prediction is off by a factor 2 -> a1 = a2 = a3 = 0, rmse_log = ln 2.
    m = scores["metric"]
    assert m["abs_rel"] == pytest.approx((1 / 2 + 2 / 4 + 8 / 8) / 3)
    assert m["sq_rel"] == pytest.approx((1 / 2 + 4 / 4 + 64 / 8) / 3)
    assert m["rmse"] == pytest.approx(math.sqrt((1 + 4 + 64) / 3))
    assert m["rmse_log"] == pytest.approx(math.log(2))
    assert (m["a1"], m["a2"], m["a3"]) == (0.0, 0.0, 0.0)
    # Median scaling: median(gt) = 4, median(pred) = 2 -> x2: pred 2, 4, 32.
    s = scores["median_scaled"]
    assert scores["median_scale"] == pytest.approx(2.0)
    assert s["abs_rel"] == pytest.approx((0 + 0 + 24 / 8) / 3)
    assert s["sq_rel"] == pytest.approx((24**2 / 8) / 3)
    assert s["rmse"] == pytest.approx(math.sqrt(24**2 / 3))
    assert s["rmse_log"] == pytest.approx(math.sqrt(math.log(4) ** 2 / 3))
    assert s["a1"] == s["a2"] == s["a3"] == pytest.approx(2 / 3)

    # Through the stream evaluator (as replay and the live node score), averaged over two frames.
    evaluator = StreamEvaluator(max_depth=80.0)
    assert evaluator.add_prediction(10, pred) == []
    [scored] = evaluator.add_truth(10, GroundTruth("hand", dense=gt))
    assert scored.scores["metric"] == pytest.approx(m)
    second = np.array([[2.0, 4.0], [8.0, np.nan]], dtype=np.float32)  # perfect where valid
    evaluator.add_truth(20, GroundTruth("hand", dense=gt))
    evaluator.add_prediction(20, second)
    summary = evaluator.summary()
    assert summary["frames"] == 2
    assert summary["metric"]["abs_rel"] == pytest.approx(m["abs_rel"] / 2)
    assert summary["metric"]["a1"] == pytest.approx(0.5)
    assert "2 frames: abs_rel" in running_metrics_line(summary)
    assert dict(metrics_key_values(summary, evaluator))["frames scored"] == "2"


def test_stream_evaluator_pairs_by_nearest_stamp_within_tolerance() -> None:
    ev = StreamEvaluator(tolerance_s=0.02, max_age_s=1.0)
    gt = GroundTruth("flat", dense=np.full((4, 4), 10.0, np.float32))
    ms = 1_000_000
    assert ev.add_truth(100 * ms, gt) == []
    assert ev.add_prediction(130 * ms, np.full((4, 4), 10.0, np.float32), key="late") == []  # 30 ms: too far
    [s] = ev.add_prediction(110 * ms, np.full((4, 4), 10.0, np.float32), key="near")
    assert s.key == "near" and s.scores["metric"]["abs_rel"] == 0.0
    # Much later truth pushes the unmatched prediction out.
    ev.add_truth(5000 * ms, gt)
    assert [k for k, _, _ in ev.take_unmatched()] == ["late"]
    assert [k for k, _, _ in ev.take_unmatched(flush=True)] == []
    assert ev.unmatched_truth == 1


def test_prediction_is_resized_to_the_ground_truth_like_monodepth2() -> None:
    depth = np.array([[2.0, 4.0], [np.nan, 4.0]], dtype=np.float32)
    big = resize_depth(depth, 4, 4)
    assert big.shape == (4, 4)
    assert np.isnan(big[3, 0]) and np.isnan(big[2, 1])  # invalid stays invalid, not smeared
    assert big[0, 0] == pytest.approx(2.0) and big[0, 3] == pytest.approx(4.0)
    # Between 2 m and 4 m the interpolation is on disparity: 1 / mean(1/2, 1/4) at the midpoint.
    assert 2.0 < big[0, 1] < big[0, 2] < 4.0
    assert resize_depth(depth, 2, 2) is depth


def test_newest_frame_wins_gate() -> None:
    """Frames every 100 ms, node takes 250 ms: frames that arrive while busy are superseded."""
    gate = NewestFrameGate()
    processed, now = [], 0.0
    for index in range(8):
        ready = gate.push(index, index * 0.1)
        if ready is not None:
            item, arrival = ready
            now = max(now, arrival) + 0.25
            processed.append(item)
            gate.finished(now)
    item, arrival = gate.flush()
    processed.append(item)
    # 0 done at .25 (1, 2 arrived; 2 wins) -> 2 done at .5 (3, 4, 5 arrived by .5; 5 wins) -> 5 done at .75
    # (6, 7 arrived; 7 wins, flushed at the end).
    assert processed == [0, 2, 5, 7]
    assert gate.dropped == 4


def test_static_transforms_chain_and_parse_transform() -> None:
    T_base_velo = make_transform(rotation_matrix(0.0, 0.0, 0.3), [1.0, 0.0, 1.7])
    T_velo_cam = make_transform(rotation_matrix(-np.pi / 2, 0.0, -np.pi / 2), [0.3, -0.1, -0.08])
    msg_type = TYPESTORE.types["tf2_msgs/msg/TFMessage"]
    from depth_node.data.bag_convert import _Messages  # the converter's own TransformStamped builder

    msgs = _Messages(TYPESTORE)
    tf = msg_type(
        transforms=[
            msgs.transform(msgs.header(0, "base_link"), "velodyne", T_base_velo),
            msgs.transform(msgs.header(0, "velodyne"), "camera_optical", T_velo_cam),
        ]
    )
    transforms = StaticTransforms()
    transforms.add_message(tf)
    T_cam_base = transforms.lookup("camera_optical", "base_link")
    assert np.allclose(T_cam_base, np.linalg.inv(T_base_velo @ T_velo_cam))
    assert np.allclose(transforms.lookup("base_link", "base_link"), np.eye(4))
    assert transforms.lookup("camera_optical", "map") is None

    T = parse_transform("1 2 3 0 0 0 1")
    assert np.allclose(T, make_transform(np.eye(3), [1, 2, 3]))
    assert np.allclose(parse_transform(",".join(map(str, T_velo_cam.ravel()))), T_velo_cam)
    with pytest.raises(ValueError, match="expected 7"):
        parse_transform("1 2 3")


# ---------------------------------------------------------------- bad input: one clear line, no output


def _write_small_bag(
    path: Path,
    frames: int = 3,
    size: tuple[int, int] = (64, 32),
    info_size: tuple[int, int] | None = None,
    image: bool = True,
    info: bool = True,
    storage: StoragePlugin = StoragePlugin.SQLITE3,
) -> Path:
    width, height = size
    info_w, info_h = info_size or size
    K = np.array([[50.0, 0, info_w / 2], [0, 50.0, info_h / 2], [0, 0, 1]])
    time_type = TYPESTORE.types["builtin_interfaces/msg/Time"]
    with Writer(path, version=8, storage_plugin=storage) as writer:
        c_img = writer.add_connection("/camera/image_raw", "sensor_msgs/msg/Image", typestore=TYPESTORE)
        c_info = writer.add_connection(
            "/camera/camera_info", "sensor_msgs/msg/CameraInfo", typestore=TYPESTORE
        )
        for i in range(frames):
            t = 1_000_000_000 + i * 100_000_000
            header = TYPES.Header(
                stamp=time_type(sec=t // 10**9, nanosec=t % 10**9), frame_id="camera_optical"
            )
            rgb = np.full((height, width, 3), 40 * i + 20, np.uint8)
            if info:
                msg = camera_info_from_K(K, info_w, info_h, header, TYPES)
                writer.write(c_info, t, TYPESTORE.serialize_cdr(msg, "sensor_msgs/msg/CameraInfo"))
            if image:
                msg = numpy_to_image(rgb, "rgb8", header, TYPES)
                writer.write(c_img, t, TYPESTORE.serialize_cdr(msg, "sensor_msgs/msg/Image"))
    return path


def _expect_error(bag: Path, model: Path, tmp_path: Path, pattern: str) -> str:
    out_parent = tmp_path / "outputs"
    out_parent.mkdir(exist_ok=True)
    with pytest.raises(ReplayError, match=pattern) as error:
        replay(_options(bag, model, out_parent / "result"))
    message = str(error.value)
    assert "\n" not in message and str(bag) in message
    _no_leftovers(out_parent, "result")
    return message


def test_small_handwritten_bag_replays(tiny_model: Path, tmp_path: Path) -> None:
    bag = _write_small_bag(tmp_path / "ok")
    result = replay(_options(bag, tiny_model, tmp_path / "out"))
    assert result.results["frames"]["processed"] == 3
    assert result.results["metrics"] is None  # no ground truth in this bag: latency only
    assert any("no ground truth" in w for w in result.results["warnings"])


def test_missing_bag(tiny_model: Path, tmp_path: Path) -> None:
    _expect_error(tmp_path / "nowhere", tiny_model, tmp_path, "bag not found")


def test_folder_that_is_not_a_bag(tiny_model: Path, tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    _expect_error(tmp_path / "plain", tiny_model, tmp_path, "not a rosbag2: no metadata.yaml")


def test_corrupt_bag(tiny_model: Path, tmp_path: Path) -> None:
    bag = _write_small_bag(tmp_path / "corrupt")
    (bag / "metadata.yaml").write_text("rosbag2_bagfile_information: [this is : not {valid")
    _expect_error(bag, tiny_model, tmp_path, "cannot read bag .*corrupt or truncated")
    bag2 = _write_small_bag(tmp_path / "garbage_db")
    db = next(bag2.glob("*.db3"))
    db.write_bytes(b"\x13\x37 definitely not sqlite " * 200)
    _expect_error(bag2, tiny_model, tmp_path, "cannot read bag .*corrupt or truncated")


@pytest.mark.parametrize("storage", [StoragePlugin.SQLITE3, StoragePlugin.MCAP])
def test_truncated_bag(storage: StoragePlugin, tiny_model: Path, tmp_path: Path) -> None:
    bag = _write_small_bag(tmp_path / "cut", frames=6, size=(160, 96), storage=storage)
    data_file = next(p for p in bag.iterdir() if p.suffix in (".db3", ".mcap"))
    data = data_file.read_bytes()
    data_file.write_bytes(data[: len(data) // 2])  # a recording cut off mid-write
    _expect_error(bag, tiny_model, tmp_path, "cannot read bag .*corrupt or truncated")


def test_empty_bag(tiny_model: Path, tmp_path: Path) -> None:
    bag = _write_small_bag(tmp_path / "empty", frames=0)
    _expect_error(bag, tiny_model, tmp_path, "is empty")
    with Writer(tmp_path / "no_topics", version=8):
        pass
    _expect_error(tmp_path / "no_topics", tiny_model, tmp_path, "is empty")


def test_missing_topics(tiny_model: Path, tmp_path: Path) -> None:
    no_images = _write_small_bag(tmp_path / "no_images", image=False)
    _expect_error(no_images, tiny_model, tmp_path, "no messages on the camera topic /camera/image_raw")
    no_info = _write_small_bag(tmp_path / "no_info", info=False)
    _expect_error(no_info, tiny_model, tmp_path, "no messages on the camera_info topic")
    bag = _write_small_bag(tmp_path / "named")
    out_parent = tmp_path / "named_out"
    out_parent.mkdir()
    with pytest.raises(
        ReplayError, match=r"camera image topic /front/image not in bag .*topics: /camera/camera_info"
    ):
        replay(_options(bag, tiny_model, out_parent / "r", image_topic="/front/image"))
    with pytest.raises(ReplayError, match="no ground truth depth image topic"):
        replay(_options(bag, tiny_model, out_parent / "r", gt="depth"))
    _no_leftovers(out_parent, "r")


def test_camera_info_that_does_not_match_the_images(tiny_model: Path, tmp_path: Path) -> None:
    # Every frame is dropped as the node drops it; with nothing left to score, one clear line.
    bag = _write_small_bag(tmp_path / "mismatch", size=(64, 32), info_size=(128, 64))
    message = _expect_error(
        bag, tiny_model, tmp_path, r"no frame of .*mismatch could be processed: frame 0 \(size_mismatch\)"
    )
    assert "64x32" in message and "128x64" in message


def test_a_bad_camera_info_drops_and_counts_its_frames_only(tiny_model: Path, tmp_path: Path) -> None:
    """A bad camera_info mid-drive drops the frames that use it (the node's reason), never the replay."""
    good = np.array([[50.0, 0, 32], [0, 50.0, 16], [0, 0, 1]])
    infos = [good, np.zeros((3, 3)), np.full((3, 3), np.nan), good]  # uncalibrated, then NaN, then good
    bag = tmp_path / "bad_info"
    time_type = TYPESTORE.types["builtin_interfaces/msg/Time"]
    with Writer(bag, version=8) as writer:
        c_img = writer.add_connection("/camera/image_raw", "sensor_msgs/msg/Image", typestore=TYPESTORE)
        c_info = writer.add_connection(
            "/camera/camera_info", "sensor_msgs/msg/CameraInfo", typestore=TYPESTORE
        )
        for i, K in enumerate(infos):
            t = 1_000_000_000 + i * 100_000_000
            header = TYPES.Header(stamp=time_type(sec=t // 10**9, nanosec=t % 10**9), frame_id="cam")
            info = camera_info_from_K(K, 64, 32, header, TYPES)
            writer.write(c_info, t, TYPESTORE.serialize_cdr(info, "sensor_msgs/msg/CameraInfo"))
            image = numpy_to_image(np.full((32, 64, 3), 60, np.uint8), "rgb8", header, TYPES)
            writer.write(c_img, t, TYPESTORE.serialize_cdr(image, "sensor_msgs/msg/Image"))
    results = replay(_options(bag, tiny_model, tmp_path / "out")).results
    frames = results["frames"]
    assert frames["processed"] == 2 and frames["bad"] == 2 and frames["total"] == 4
    assert frames["dropped_by_reason"]["bad_camera_info"] == 1 and frames["dropped_by_reason"]["nan"] == 1
    assert [f["index"] for f in results["per_frame"]] == [0, 3]
    assert any("frame 1 (bad_camera_info)" in w for w in results["warnings"])


def test_cli_prints_one_line_errors_and_a_summary(tiny_model: Path, tmp_path: Path, capsys) -> None:
    assert main([str(tmp_path / "missing"), "--model", str(tiny_model), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("depth-replay: error: bag not found") and err.count("\n") == 1

    bag = _write_small_bag(tmp_path / "ok")
    out = tmp_path / "cli_out"
    assert main([str(bag), "--model", str(tmp_path / "nope.onnx"), "--out", str(out), "--quiet"]) == 1
    assert "model file not found" in capsys.readouterr().err and not out.exists()

    run = [str(bag), "--model", str(tiny_model), "--out", str(out), "--quiet", "--report-frames", "1"]
    assert main([*run, "--threads", "1", "-p", "output_resolution:=model", "--no-cloud"]) == 0
    printed = capsys.readouterr().out
    assert "latency end-to-end p50" in printed and str(out / "report.html") in printed
    results = json.loads((out / "results.json").read_text())
    assert results["inputs"]["depth_size"] == [104, 32]  # -p output_resolution:=model reached the pipeline
    assert results["outputs"]["bag_topics"][:2] == ["/depth/image", "/depth/camera_info"]
    assert "/depth/points" not in results["outputs"]["bag_topics"]
    # An existing output is kept unless --force.
    assert main(run) == 1
    assert "exists already" in capsys.readouterr().err
    assert main([*run, "--force", "-p", "scale_mode:=bogus"]) == 1
    assert "invalid node parameter: parameter scale_mode: 'bogus'" in capsys.readouterr().err
    assert main([*run, "--force"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".cli_out")) == []


def test_eval_node_scores_like_the_replay(replayed, sim_bag: Path) -> None:
    """The live evaluator, fed the replay's /depth/image and the bag's ground truth, gets its numbers.

    Runs against the real rclpy where it imports (with DDS), else against test/rclpy_stand_in.
    """
    from rclpy_stand_in import rclpy_or_stand_in

    with rclpy_or_stand_in():
        try:
            _run_eval_node(replayed, sim_bag)
        finally:
            sys.modules.pop("depth_node.ros.eval_node", None)  # it bound the stand-in's modules


def _run_eval_node(replayed, sim_bag: Path) -> None:
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter

    from depth_node.ros.eval_node import DepthEvalNode
    from depth_node.runtime.conversions import depth_to_image_msg
    from depth_node.runtime.message_types import ros_types

    ros = ros_types()
    from builtin_interfaces.msg import Time

    def ros_depth(msg: object) -> object:
        header = ros.Header(
            stamp=Time(sec=msg.header.stamp.sec, nanosec=msg.header.stamp.nanosec),  # type: ignore[attr-defined]
            frame_id=msg.header.frame_id,  # type: ignore[attr-defined]
        )
        return depth_to_image_msg(image_msg_to_depth(msg), header, ros)

    depths = [m for _, m in _read_topics(replayed.bag, {"/depth/image"})["/depth/image"]]
    truths = [m for _, m in _read_topics(sim_bag, {"/ground_truth/depth"})["/ground_truth/depth"]]
    context = rclpy.Context()
    rclpy.init(context=context)
    executor = SingleThreadedExecutor(context=context)
    node = DepthEvalNode(context=context, parameter_overrides=[Parameter("log_every", value=4)])
    feeder = rclpy.create_node("feeder", context=context)
    try:
        pub_depth = feeder.create_publisher(ros.Image, "/depth/image", 10)
        pub_gt = feeder.create_publisher(ros.Image, "/ground_truth/depth", 10)
        diagnostics: list[object] = []
        feeder.create_subscription(DiagnosticArray, "/diagnostics", diagnostics.append, 10)
        executor.add_node(node)
        executor.add_node(feeder)
        deadline = time.monotonic() + 10.0  # DDS discovery (instant with the stand-in)
        while min(pub_depth.get_subscription_count(), pub_gt.get_subscription_count()) == 0:
            assert time.monotonic() < deadline, "the evaluator never subscribed"
            executor.spin_once(timeout_sec=0.05)
        for count, (depth, truth) in enumerate(zip(depths, truths), start=1):
            pub_depth.publish(ros_depth(depth))
            pub_gt.publish(ros_depth(truth))
            for _ in range(50):  # until both callbacks ran (real DDS may need a few rounds)
                executor.spin_once(timeout_sec=0.02)
                if len(node.evaluator.frames) == count:
                    break
        for _ in range(10):
            executor.spin_once(timeout_sec=0.02)
        summary = node.evaluator.summary()
        assert summary is not None and summary["frames"] == 12
        assert summary["metric"] == pytest.approx(replayed.results["metrics"]["metric"])
        assert summary["median_scaled"] == pytest.approx(replayed.results["metrics"]["median_scaled"])
        assert len(diagnostics) == 3  # every 4 scored frames
        values = {kv.key: kv.value for kv in diagnostics[-1].status[0].values}
        assert values["frames scored"] == "12"
    finally:
        executor.shutdown()
        node.destroy_node()
        feeder.destroy_node()
        rclpy.try_shutdown(context=context)


def test_unreadable_output_location_leaves_nothing(tiny_model: Path, tmp_path: Path) -> None:
    bag = _write_small_bag(tmp_path / "ok")
    blocker = tmp_path / "file_not_dir"
    blocker.write_text("x")
    with pytest.raises((ReplayError, OSError)):
        replay(_options(bag, tiny_model, blocker / "out"))
    assert blocker.read_text() == "x"


def test_copy_of_bag_is_untouched_by_replay(sim_bag: Path, tiny_model: Path, tmp_path: Path) -> None:
    before = {p.name: p.stat().st_size for p in sim_bag.iterdir()}
    copy = tmp_path / "copy"
    shutil.copytree(sim_bag, copy)
    replay(_options(copy, tiny_model, tmp_path / "o", {"publish_points": False}, max_frames=1))
    assert {p.name: p.stat().st_size for p in copy.iterdir()} == before


def test_node_parameter_file_and_overrides(tmp_path: Path) -> None:
    """The replay reads the node's ROS 2 parameter YAML (nested names flattened as ROS does)."""
    from depth_node.evaluation.replay_cli import build_parser, options_from_args
    from depth_node.runtime.parameters import ParameterError, load_params_file

    params = tmp_path / "depth.yaml"
    params.write_text(
        "/**:\n  ros__parameters:\n    output_resolution: model\n    camera_height: 1.5\n"
        "    input_qos:\n      depth: 2\n"
    )
    assert load_params_file(params) == {
        "output_resolution": "model",
        "camera_height": 1.5,
        "input_qos.depth": 2,
    }
    args = build_parser().parse_args(
        ["bag", "--params-file", str(params), "-p", "camera_height:=1.7", "--threads", "2", "--no-cloud"]
    )
    options = options_from_args(args)
    assert options.node_params == {
        "output_resolution": "model",
        "camera_height": 1.7,
        "input_qos.depth": 2,
        "threads": 2,
        "publish_points": False,
    }
    (tmp_path / "bad.yaml").write_text("other_node:\n  ros__parameters: {a: 1}\n")
    with pytest.raises(ParameterError, match="no '/\\*\\*' or 'depth_node' section"):
        load_params_file(tmp_path / "bad.yaml")
