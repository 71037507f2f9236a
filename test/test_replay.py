"""depth_node.evaluation.replay end to end, on real rosbag2 files (rosbags) and real onnxruntime sessions.

No mocks. The synthetic bags come from conftest.py (world -> KITTI layout -> converter, 12 frames
416x128); small hand-written bags (conftest's ``write_small_bag``) cover the error cases, each of
which must end the replay with one clear line and leave no output behind. The pieces the replay is
built from have their own files: test_bag_input.py, test_ground_truth.py, test_scoring.py,
test_realtime.py and test_replay_cli.py.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from depth_node.evaluation.bag_input import ReplayError
from depth_node.evaluation.replay import ReplayOptions, replay
from depth_node.metrics import evaluate_depth, resize_depth
from depth_node.runtime.conversions import image_msg_to_depth, numpy_to_image, to_rgb8
from depth_node.runtime.estimator import DepthEstimator
from depth_node.runtime.message_types import rosbags_types
from depth_node.runtime.messages import build_outputs, camera_info_from_K
from depth_node.runtime.parameters import validate_parameters
from depth_node.runtime.pipeline import DepthPipeline

TYPESTORE = get_typestore(Stores.ROS2_HUMBLE)
TYPES = rosbags_types()


def _options(bag: Path, model: Path, out: Path, params: dict | None = None, **kw: object) -> ReplayOptions:
    node_params = {"providers": ["cpu"], "threads": 1, **(params or {})}
    return ReplayOptions(
        bag=bag, model=model, out=out, progress=False, report_frames=2, node_params=node_params, **kw
    )


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


def test_output_bag_matches_the_runtime_core_exactly(
    replayed, sim_bag: Path, tiny_model: Path, read_topics
) -> None:
    """Every /depth/* message in the output bag equals what pipeline + build_outputs give for the frame."""
    results = replayed.results
    assert results["frames"]["processed"] == results["frames"]["total"] == 12
    assert results["inputs"]["image_topic"] == "/camera/image_raw"
    assert results["inputs"]["gt_depth_topic"] == "/ground_truth/depth"

    inputs = read_topics(sim_bag, {"/camera/image_raw", "/camera/camera_info"})
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

    out = read_topics(
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


def test_results_json_holds_metrics_latency_and_frames(replayed, sim_bag: Path, read_topics) -> None:
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
    truth = read_topics(sim_bag, {"/ground_truth/depth"})["/ground_truth/depth"][3][1]
    depth = read_topics(replayed.bag, {"/depth/image"})["/depth/image"][3][1]
    gt, pred = image_msg_to_depth(truth), image_msg_to_depth(depth)
    # 416x128 is 16x the model's pixels: the default (auto) depth image is the camera binned 4x4,
    # which the replay brings to the ground truth's size before scoring.
    assert pred.shape == (gt.shape[0] // 4, gt.shape[1] // 4)
    pred = resize_depth(pred, gt.shape[1], gt.shape[0])
    direct = evaluate_depth(gt, pred, max_depth=80.0)
    assert frame["metric"] == pytest.approx(direct.metrics)


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


def test_a_jpeg_camera_decoded_smaller_is_scored_as_the_full_decode(
    sim_bag_mcap: Path, tiny_model: Path, tmp_path: Path
) -> None:
    """The 416x128 JPEG camera with the 104x32 model is decoded at 104x32 (1/4): LiDAR is still
    projected into the 416x128 camera, and the scores are the full decode's to within the decoders'
    difference."""
    results = {}
    for reduced in (True, False):
        params = {"publish_points": False, "jpeg_reduced_decode": reduced}
        options = _options(
            sim_bag_mcap, tiny_model, tmp_path / f"out_{reduced}", params, gt="lidar", max_frames=4
        )
        options.image_topic = "/camera/image_raw/compressed"
        results[reduced] = replay(options).results
    for r in results.values():
        assert r["inputs"]["image_size"] == [416, 128] and r["frames"]["scored"] == 4
    reduced, full = results[True]["metrics"]["metric"], results[False]["metrics"]["metric"]
    assert reduced["abs_rel"] == pytest.approx(full["abs_rel"], rel=0.02)
    assert reduced["rmse"] == pytest.approx(full["rmse"], rel=0.02)


def test_realtime_replay_accounts_for_every_frame(
    sim_bag: Path, tiny_model: Path, tmp_path: Path, read_topics
) -> None:
    result = replay(_options(sim_bag, tiny_model, tmp_path / "rt", realtime=True, copy_inputs=False))
    f = result.results["frames"]
    assert f["processed"] + f["dropped"] + f["bad"] == f["total"] == 12
    assert len(read_topics(result.bag, {"/depth/image"})["/depth/image"]) == f["processed"]
    # Realtime: a frame still in work when the next one is due is superseded, and only that; how many
    # depends on the machine's load (the suite's other tests), so the count is not pinned here.
    assert f["dropped"] == f["dropped_by_reason"]["superseded"] and f["processed"] >= f["total"] // 2
    assert result.results["wall_time_s"] >= 1.0  # 12 frames at 10 Hz take 1.1 s of bag time


# ---------------------------------------------------------------- bad input: one clear line, no output


def _expect_error(bag: Path, model: Path, tmp_path: Path, pattern: str) -> str:
    out_parent = tmp_path / "outputs"
    out_parent.mkdir(exist_ok=True)
    with pytest.raises(ReplayError, match=pattern) as error:
        replay(_options(bag, model, out_parent / "result"))
    message = str(error.value)
    assert "\n" not in message and str(bag) in message
    _no_leftovers(out_parent, "result")
    return message


def test_small_handwritten_bag_replays(tiny_model: Path, tmp_path: Path, write_small_bag) -> None:
    bag = write_small_bag(tmp_path / "ok")
    result = replay(_options(bag, tiny_model, tmp_path / "out"))
    assert result.results["frames"]["processed"] == 3
    assert result.results["metrics"] is None  # no ground truth in this bag: latency only
    assert any("no ground truth" in w for w in result.results["warnings"])


def test_missing_bag(tiny_model: Path, tmp_path: Path) -> None:
    _expect_error(tmp_path / "nowhere", tiny_model, tmp_path, "bag not found")


def test_folder_that_is_not_a_bag(tiny_model: Path, tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    _expect_error(tmp_path / "plain", tiny_model, tmp_path, "not a rosbag2: no metadata.yaml")


def test_corrupt_bag(tiny_model: Path, tmp_path: Path, write_small_bag) -> None:
    bag = write_small_bag(tmp_path / "corrupt")
    (bag / "metadata.yaml").write_text("rosbag2_bagfile_information: [this is : not {valid")
    _expect_error(bag, tiny_model, tmp_path, "cannot read bag .*corrupt or truncated")
    bag2 = write_small_bag(tmp_path / "garbage_db")
    db = next(bag2.glob("*.db3"))
    db.write_bytes(b"\x13\x37 definitely not sqlite " * 200)
    _expect_error(bag2, tiny_model, tmp_path, "cannot read bag .*corrupt or truncated")


@pytest.mark.parametrize("storage", [StoragePlugin.SQLITE3, StoragePlugin.MCAP])
def test_truncated_bag(storage: StoragePlugin, tiny_model: Path, tmp_path: Path, write_small_bag) -> None:
    bag = write_small_bag(tmp_path / "cut", frames=6, size=(160, 96), storage=storage)
    data_file = next(p for p in bag.iterdir() if p.suffix in (".db3", ".mcap"))
    data = data_file.read_bytes()
    data_file.write_bytes(data[: len(data) // 2])  # a recording cut off mid-write
    _expect_error(bag, tiny_model, tmp_path, "cannot read bag .*corrupt or truncated")


def test_empty_bag(tiny_model: Path, tmp_path: Path, write_small_bag) -> None:
    bag = write_small_bag(tmp_path / "empty", frames=0)
    _expect_error(bag, tiny_model, tmp_path, "is empty")
    with Writer(tmp_path / "no_topics", version=8):
        pass
    _expect_error(tmp_path / "no_topics", tiny_model, tmp_path, "is empty")


def test_missing_topics(tiny_model: Path, tmp_path: Path, write_small_bag) -> None:
    no_images = write_small_bag(tmp_path / "no_images", image=False)
    _expect_error(no_images, tiny_model, tmp_path, "no messages on the camera topic /camera/image_raw")
    no_info = write_small_bag(tmp_path / "no_info", info=False)
    _expect_error(no_info, tiny_model, tmp_path, "no messages on the camera_info topic")
    bag = write_small_bag(tmp_path / "named")
    out_parent = tmp_path / "named_out"
    out_parent.mkdir()
    with pytest.raises(
        ReplayError, match=r"camera image topic /front/image not in bag .*topics: /camera/camera_info"
    ):
        replay(_options(bag, tiny_model, out_parent / "r", image_topic="/front/image"))
    with pytest.raises(ReplayError, match="no ground truth depth image topic"):
        replay(_options(bag, tiny_model, out_parent / "r", gt="depth"))
    _no_leftovers(out_parent, "r")


def test_camera_info_that_does_not_match_the_images(
    tiny_model: Path, tmp_path: Path, write_small_bag
) -> None:
    # Every frame is dropped as the node drops it; with nothing left to score, one clear line.
    bag = write_small_bag(tmp_path / "mismatch", size=(64, 32), info_size=(128, 64))
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


def test_eval_node_scores_like_the_replay(replayed, sim_bag: Path, read_topics) -> None:
    """The live evaluator, fed the replay's /depth/image and the bag's ground truth, gets its numbers.

    Runs against the real rclpy where it imports (with DDS), else against test/rclpy_stand_in.
    """
    from rclpy_stand_in import rclpy_or_stand_in

    with rclpy_or_stand_in():
        try:
            _run_eval_node(replayed, sim_bag, read_topics)
        finally:
            sys.modules.pop("depth_node.ros.eval_node", None)  # it bound the stand-in's modules


def _run_eval_node(replayed, sim_bag: Path, read_topics) -> None:
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

    depths = [m for _, m in read_topics(replayed.bag, {"/depth/image"})["/depth/image"]]
    truths = [m for _, m in read_topics(sim_bag, {"/ground_truth/depth"})["/ground_truth/depth"]]
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


def test_unreadable_output_location_leaves_nothing(tiny_model: Path, tmp_path: Path, write_small_bag) -> None:
    bag = write_small_bag(tmp_path / "ok")
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
