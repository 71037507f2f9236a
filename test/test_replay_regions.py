"""Motion regions in the replay: /ground_truth/motion written by the converter, picked up, paired with
the depth ground truth of its stamp and every region scored with the whole frame's median scale.

Real parts throughout: the synthetic drive and its bags from conftest.py, rosbags' own message
classes, the tiny ONNX model (conftest's ``tiny_model``: depth = 2 + 30 * grey), and hand-written
bags whose ground truth makes the region scores computable by hand. ``depth-eval``
(training/evaluate.py) scores regions by the same rule; one test holds the two to the same numbers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rosbags.rosbag2 import Writer
from rosbags.typesys import Stores, get_typestore

from depth_node.data import bag_convert, kitti
from depth_node.evaluation.bag_input import IMAGE_TYPE, INFO_TYPE, ReplayError, select_topics
from depth_node.evaluation.ground_truth import GroundTruth
from depth_node.evaluation.replay import ReplayOptions, ReplayResult, replay
from depth_node.evaluation.replay_cli import build_parser, options_from_args, summary_text
from depth_node.evaluation.scoring import (
    MOTION_DROP_REASONS,
    MotionLabelsError,
    MotionPairing,
    StreamEvaluator,
    motion_labels_from_msg,
    score_frame,
)
from depth_node.metrics import MOTION_LABELS, MOTION_REGIONS, evaluate_depth, mean_metrics, resize_depth
from depth_node.runtime.conversions import depth_to_image_msg, image_msg_to_depth, numpy_to_image
from depth_node.runtime.message_types import rosbags_types, stamp_header, stamp_ns
from depth_node.runtime.messages import camera_info_from_K

TYPESTORE = get_typestore(Stores.ROS2_HUMBLE)
TYPES = rosbags_types()
STATIC, SAME_WAY, ONCOMING = (MOTION_LABELS[k] for k in ("static", "same_way", "oncoming"))


def _options(bag: Path, model: Path, out: Path, **kw: Any) -> ReplayOptions:
    params = {"providers": ["cpu"], "threads": 1, "publish_points": False}
    return ReplayOptions(
        bag=bag, model=model, out=out, progress=False, report_frames=1, node_params=params, **kw
    )


# ---------------------------------------------------------------- the converter writes the labels


def test_bag_convert_writes_motion_labels_beside_the_depth(sim_bag: Path, kitti_drive_dir: Path, read_topics):
    topics = read_topics(sim_bag, {"/ground_truth/depth", "/ground_truth/motion"})
    depths, labels = topics["/ground_truth/depth"], topics["/ground_truth/motion"]
    assert len(labels) == len(depths) == 12
    assert bag_convert.TOPICS["motion"] == ("/ground_truth/motion", IMAGE_TYPE)
    for i, ((t_label, msg), (t_depth, depth)) in enumerate(zip(labels, depths)):
        assert type(msg).__name__ == "sensor_msgs__msg__Image" and msg.encoding == "mono8"
        # Same header as the frame's depth ground truth, and written at the same bag time.
        assert t_label == t_depth and stamp_ns(msg.header) == stamp_ns(depth.header)
        assert msg.header.frame_id == depth.header.frame_id == bag_convert.CAMERA_FRAME
        png = kitti.read_motion_labels(kitti.motion_labels_path(kitti_drive_dir, i))
        assert (msg.height, msg.width, msg.step) == (*png.shape, png.shape[1])
        np.testing.assert_array_equal(np.asarray(msg.data).reshape(png.shape), png)
    assert all((np.asarray(m.data) == ONCOMING).any() for _, m in labels)  # the drive has every region


def test_no_gt_skips_the_motion_labels_too(kitti_drive_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "no_gt"
    argv = [str(kitti_drive_dir), str(out), "--no-gt", "--no-compressed", "--no-lidar", "--max-frames", "2"]
    assert bag_convert.main(argv) == 0
    topics = bag_convert.bag_summary(out)["topics"]
    assert "/ground_truth/motion" not in topics and "/ground_truth/depth" not in topics
    assert topics["/camera/image_raw"] == 2


# ---------------------------------------------------------------- topic selection


def test_motion_topic_is_found_beside_the_depth_ground_truth_and_never_taken_for_the_camera() -> None:
    topics = {
        "/cam/camera_info": INFO_TYPE,
        "/ground_truth/depth": IMAGE_TYPE,
        "/ground_truth/motion": IMAGE_TYPE,  # sorts before the camera: it must still not be taken for it
        "/zed/image_raw": IMAGE_TYPE,
        "/lidar/points": "sensor_msgs/msg/PointCloud2",
    }
    counts = dict.fromkeys(topics, 5)
    bag = Path("drive_bag")
    auto = select_topics(topics, counts, bag)
    assert (auto.image, auto.gt_depth, auto.motion) == (
        "/zed/image_raw",
        "/ground_truth/depth",
        "/ground_truth/motion",
    )
    assert select_topics(topics, counts, bag, motion_topic="none").motion is None
    # Not beside the chosen depth topic, or no messages on it: no labels.
    assert select_topics(topics, counts, bag, gt_topic="/zed/image_raw").motion is None
    assert select_topics(topics, {**counts, "/ground_truth/motion": 0}, bag).motion is None
    assert select_topics(topics, counts, bag, gt="lidar").motion is None
    with pytest.raises(
        ReplayError, match=r"motion labels topic /ground_truth/motion in drive_bag pairs with a depth"
    ):
        select_topics(topics, counts, bag, gt="lidar", motion_topic="/ground_truth/motion")
    with pytest.raises(ReplayError, match=r"motion labels topic /lidar/points in drive_bag is .*PointCloud2"):
        select_topics(topics, counts, bag, motion_topic="/lidar/points")
    with pytest.raises(ReplayError, match="motion labels topic /labels not in bag drive_bag"):
        select_topics(topics, counts, bag, motion_topic="/labels")


def test_motion_topic_option_reaches_the_replay() -> None:
    assert options_from_args(build_parser().parse_args(["bag"])).motion_topic is None
    args = build_parser().parse_args(["bag", "--motion-topic", "none"])
    assert options_from_args(args).motion_topic == "none"


# ---------------------------------------------------------------- hand-computed scores


def _hand_frame() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """gt 10 m, one same-way block at 20 m, one oncoming block at 10 m, a row without truth; the
    prediction 5 m everywhere: half the metric depth, and the same-way car 2x too near after the
    whole frame's median scale (x2)."""
    labels = np.full((8, 12), STATIC, np.uint8)
    labels[2:4, 2:5] = SAME_WAY  # 6 pixels
    labels[5:7, 6:10] = ONCOMING  # 8 pixels
    gt = np.full(labels.shape, 10.0, np.float32)
    gt[labels == SAME_WAY] = 20.0
    gt[0] = np.nan  # no truth on the top row (12 static pixels)
    return gt, np.full(labels.shape, 5.0, np.float32), labels


def test_a_region_2x_too_near_under_the_whole_frames_median_scale_has_abs_rel_one_half() -> None:
    gt, pred, labels = _hand_frame()
    scores = score_frame(gt, pred, motion=labels)
    assert scores["median_scale"] == pytest.approx(2.0)  # median(gt) 10 / median(pred) 5
    regions = scores["regions"]
    assert {r: regions[r]["valid_pixels"] for r in MOTION_REGIONS} == {
        "static": 96 - 6 - 8 - 12,
        "same_way": 6,
        "oncoming": 8,
        "moving": 14,
    }
    same_way = regions["same_way"]
    assert same_way["median_scaled"]["abs_rel"] == pytest.approx(0.5)  # scaled 10 m against 20 m
    assert same_way["median_scaled"]["rmse"] == pytest.approx(10.0)
    assert same_way["median_scaled"]["a3"] == 0.0  # 2 > 1.25^3
    assert same_way["metric"]["abs_rel"] == pytest.approx(0.75)  # 5 m against 20 m, unscaled
    for region in ("static", "oncoming"):
        assert regions[region]["median_scaled"]["abs_rel"] == pytest.approx(0.0)
        assert regions[region]["median_scaled"]["a1"] == 1.0
        assert regions[region]["metric"]["abs_rel"] == pytest.approx(0.5)
    assert regions["moving"]["median_scaled"]["abs_rel"] == pytest.approx(0.5 * 6 / 14)
    # The region's own median would have hidden the error: the rule is the whole frame's scale.
    own = evaluate_depth(np.where(labels == SAME_WAY, gt, np.nan), pred, median_scaling=True)
    assert own.metrics["abs_rel"] == pytest.approx(0.0)


def test_stream_evaluator_sums_regions_over_the_frames_that_have_them() -> None:
    gt, pred, labels = _hand_frame()
    no_oncoming_truth = gt.copy()
    no_oncoming_truth[labels == ONCOMING] = np.nan
    evaluator = StreamEvaluator()
    evaluator.add_prediction(10, pred)
    evaluator.add_truth(10, GroundTruth("hand", dense=gt), labels)
    evaluator.add_prediction(20, pred)
    evaluator.add_truth(20, GroundTruth("hand", dense=no_oncoming_truth), labels)
    evaluator.add_prediction(30, pred)
    evaluator.add_truth(30, GroundTruth("hand", dense=gt))  # no labels: scored whole only
    summary = evaluator.summary()
    assert summary["frames"] == 3
    regions = summary["regions"]
    assert {r: (regions[r]["frames"], regions[r]["pixels"]) for r in MOTION_REGIONS} == {
        "static": (2, 140),
        "same_way": (2, 12),
        "oncoming": (1, 8),  # a region without valid truth in a frame adds nothing for it
        "moving": (2, 20),
    }
    assert regions["same_way"]["median_scaled"]["abs_rel"] == pytest.approx(0.5)
    assert regions["moving"]["median_scaled"]["abs_rel"] == pytest.approx((0.5 * 6 / 14 + 0.5) / 2)
    with pytest.raises(MotionLabelsError, match=r"motion labels of 12x7 for ground truth of 12x8") as err:
        evaluator.add_truth(40, GroundTruth("hand", dense=gt), labels[:7])
    assert err.value.reason == "size_mismatch"
    assert StreamEvaluator().summary() is None


def test_motion_pairing_waits_for_either_side_then_gives_up() -> None:
    gt, _, labels = _hand_frame()
    second = 1_000_000_000
    pairing = MotionPairing("/m", max_wait_s=1.0)
    truth = GroundTruth("hand", dense=gt)
    assert pairing.add_labels(0, labels) == []  # labels first: waits for its truth
    [(stamp, paired_truth, paired_labels)] = pairing.add_truth(0, truth)
    assert (stamp, paired_truth, paired_labels is labels) == (0, truth, True)
    assert pairing.add_truth(1 * second, truth) == []  # truth first: waits for its labels ...
    [(stamp, _, none)] = pairing.add_labels(int(2.5 * second), labels)  # ... until 1 s newer is seen
    assert (stamp, none) == (1 * second, None)
    assert pairing.add_truth(int(2.6 * second), truth) == []  # no labels of this stamp
    [(stamp, _, none)] = pairing.flush()  # the end of the stream: the truth goes on alone
    assert (stamp, none) == (int(2.6 * second), None)
    assert (pairing.paired, pairing.truths_without_labels) == (1, 2)
    assert pairing.dropped == {**dict.fromkeys(MOTION_DROP_REASONS, 0), "no_ground_truth": 1}
    assert (
        pairing.first_drop
        == "motion labels on /m at stamp 2.500 s have no depth ground truth of the same stamp"
    )
    mismatch = MotionPairing("/m")
    mismatch.add_labels(5, labels[:, :6])
    [(_, _, none)] = mismatch.add_truth(5, truth)
    assert none is None and mismatch.dropped["size_mismatch"] == 1
    assert (
        mismatch.first_drop
        == "motion labels of 6x8 for ground truth of 12x8 (expected the same size) on /m at stamp 0.000 s"
    )


def test_motion_labels_from_msg_names_what_is_wrong() -> None:
    header = stamp_header(TYPES, 1_500_000_000, "cam")
    labels = np.array([[0, 1], [2, 0]], np.uint8)
    np.testing.assert_array_equal(
        motion_labels_from_msg(numpy_to_image(labels, "mono8", header, TYPES), "/m"), labels
    )
    cases = {
        "unknown_label": numpy_to_image(np.array([[0, 7]], np.uint8), "mono8", header, TYPES),
        "bad_message": numpy_to_image(np.zeros((2, 2, 3), np.uint8), "rgb8", header, TYPES),
    }
    for reason, msg in cases.items():
        with pytest.raises(MotionLabelsError, match=r"^motion labels on /m at stamp 1\.500 s: ") as err:
            motion_labels_from_msg(msg, "/m")
        assert err.value.reason == reason and "\n" not in str(err.value)
        assert ("got [7]" in str(err.value)) == (reason == "unknown_label")


# ---------------------------------------------------------------- a hand-written bag through the replay

WIDTH, HEIGHT = 64, 32
GREY = 100  # the tiny model sees a uniform image: one depth c everywhere


def _block_labels() -> np.ndarray:
    labels = np.full((HEIGHT, WIDTH), STATIC, np.uint8)
    labels[10:20, 10:20] = SAME_WAY  # 100 pixels
    labels[10:20, 40:50] = ONCOMING  # 100 pixels
    return labels


def _block_truth() -> np.ndarray:
    gt = np.full((HEIGHT, WIDTH), 10.0, np.float32)
    gt[_block_labels() == SAME_WAY] = 20.0  # the lead car 2x farther than the prediction says
    gt[0] = np.nan  # no truth on the top row
    return gt


def _write_labelled_bag(path: Path, truths: list[bool], labels: list[tuple[np.ndarray, str] | None]) -> Path:
    """Camera (uniform grey), camera_info, /ground_truth/depth where ``truths[i]`` and
    /ground_truth/motion where ``labels[i]`` is (array, encoding), frames 100 ms apart."""
    K = np.array([[50.0, 0, WIDTH / 2], [0, 50.0, HEIGHT / 2], [0, 0, 1]])
    with Writer(path, version=8) as writer:
        conns = {
            name: writer.add_connection(topic, msgtype, typestore=TYPESTORE)
            for name, (topic, msgtype) in {
                "image": ("/camera/image_raw", IMAGE_TYPE),
                "info": ("/camera/camera_info", INFO_TYPE),
                "depth": ("/ground_truth/depth", IMAGE_TYPE),
                "motion": ("/ground_truth/motion", IMAGE_TYPE),
            }.items()
        }

        def write(name: str, t: int, msg: object, msgtype: str = IMAGE_TYPE) -> None:
            writer.write(conns[name], t, TYPESTORE.serialize_cdr(msg, msgtype))

        for i, (truth, label) in enumerate(zip(truths, labels, strict=True)):
            t = 1_000_000_000 + i * 100_000_000
            header = stamp_header(TYPES, t, "camera_optical")
            write("info", t, camera_info_from_K(K, WIDTH, HEIGHT, header, TYPES), INFO_TYPE)
            write(
                "image", t, numpy_to_image(np.full((HEIGHT, WIDTH, 3), GREY, np.uint8), "rgb8", header, TYPES)
            )
            if label is not None:  # labels before their depth here: the pairing takes either order
                write("motion", t, numpy_to_image(label[0], label[1], header, TYPES))
            if truth:
                write("depth", t, depth_to_image_msg(_block_truth(), header, TYPES))
    return path


def test_replay_scores_each_region_by_hand(tiny_model: Path, tmp_path: Path) -> None:
    good = (_block_labels(), "mono8")
    bag = _write_labelled_bag(tmp_path / "bag", [True] * 3, [good] * 3)
    r = replay(_options(bag, tiny_model, tmp_path / "out")).results
    assert r["inputs"]["motion_topic"] == "/ground_truth/motion" and r["frames"]["scored"] == 3
    assert r["evaluation"]["motion_labels"] == {
        "topic": "/ground_truth/motion",
        "paired": 3,
        "ground_truth_without_labels": 0,
        "dropped": 0,
        "dropped_by_reason": dict.fromkeys(MOTION_DROP_REASONS, 0),
    }
    regions = r["regions"]
    assert list(regions) == list(MOTION_REGIONS)
    valid = WIDTH * HEIGHT - WIDTH
    assert {k: (v["frames"], v["pixels"]) for k, v in regions.items()} == {
        "static": (3, 3 * (valid - 200)),
        "same_way": (3, 300),
        "oncoming": (3, 300),
        "moving": (3, 600),
    }
    # The model's one depth c is scaled to the frame's median 10 m: the same-way car, at 20 m, is
    # predicted 2x too near; static and oncoming pixels are right.
    assert regions["same_way"]["median_scaled"]["abs_rel"] == pytest.approx(0.5, abs=1e-6)
    assert regions["same_way"]["median_scaled"]["rmse"] == pytest.approx(10.0, abs=1e-4)
    assert regions["static"]["median_scaled"]["abs_rel"] == pytest.approx(0.0, abs=1e-6)
    assert regions["oncoming"]["median_scaled"]["abs_rel"] == pytest.approx(0.0, abs=1e-6)
    assert regions["moving"]["median_scaled"]["abs_rel"] == pytest.approx(0.25, abs=1e-6)
    c = 10.0 / r["per_frame"][0]["median_scale"]
    assert regions["same_way"]["metric"]["abs_rel"] == pytest.approx(abs(20.0 - c) / 20.0, rel=1e-5)
    assert regions["static"]["metric"]["abs_rel"] == pytest.approx(abs(10.0 - c) / 10.0, rel=1e-5)
    assert r["per_frame"][1]["regions"]["same_way"]["valid_pixels"] == 100


def test_bad_labels_are_counted_named_drops_and_their_frames_scored_whole(
    tiny_model: Path, tmp_path: Path
) -> None:
    good = (_block_labels(), "mono8")
    unknown = _block_labels()
    unknown[0, 0] = 7
    labels = [
        good,  # 0: paired
        (_block_labels()[:, :32], "mono8"),  # 1: half the ground truth's width
        (unknown, "mono8"),  # 2: a label value outside MOTION_LABELS
        (np.zeros((HEIGHT, WIDTH, 3), np.uint8), "rgb8"),  # 3: not mono8
        good,  # 4: no depth ground truth of this stamp
        None,  # 5: depth ground truth without labels
    ]
    bag = _write_labelled_bag(tmp_path / "bad", [True, True, True, True, False, True], labels)
    result = replay(_options(bag, tiny_model, tmp_path / "out"))
    r = result.results
    assert r["frames"]["processed"] == 6 and r["frames"]["scored"] == 5  # no frame lost its whole-frame score
    motion = r["evaluation"]["motion_labels"]
    assert motion["dropped_by_reason"] == {
        "bad_message": 1,
        "size_mismatch": 1,
        "unknown_label": 1,
        "no_ground_truth": 1,
    }
    assert (motion["paired"], motion["ground_truth_without_labels"], motion["dropped"]) == (1, 4, 4)
    assert r["regions"]["same_way"]["frames"] == 1 and r["regions"]["same_way"]["pixels"] == 100
    [dropped] = [w for w in r["warnings"] if "motion label image(s) dropped" in w]
    assert dropped.startswith(
        "4 motion label image(s) dropped (bad_message 1, size_mismatch 1, unknown_label 1, "
    )
    assert (
        "first: motion labels of 32x32 for ground truth of 64x32" in dropped
        and "/ground_truth/motion" in dropped
    )
    assert any("4 ground truth frame(s) without usable motion labels" in w for w in r["warnings"])
    assert "regions" in r["per_frame"][0] and "regions" not in r["per_frame"][1]

    # --motion-topic none: no pairing, no regions, nothing dropped.
    off = replay(_options(bag, tiny_model, tmp_path / "off", motion_topic="none")).results
    assert off["regions"] is None and off["evaluation"]["motion_labels"] is None
    assert off["inputs"]["motion_topic"] is None and off["frames"]["scored"] == 5
    for kind in ("metric", "median_scaled"):  # the whole-frame numbers do not depend on the labels
        assert off["metrics"][kind] == pytest.approx(r["metrics"][kind])


# ---------------------------------------------------------------- the synthetic drive through the replay


@pytest.fixture(scope="module")
def sim_replay(sim_bag: Path, tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> ReplayResult:
    return replay(_options(sim_bag, tiny_model, tmp_path_factory.mktemp("regions") / "out", max_frames=6))


def _frames(
    sim_replay: ReplayResult, sim_bag: Path, read_topics
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(gt, published depth brought to the ground truth's size as the replay's scorer does, labels)
    of every replayed frame (the 416x128 camera is 16x the model's pixels: the depth image is binned)."""
    truth = read_topics(sim_bag, {"/ground_truth/depth", "/ground_truth/motion"})
    depth = read_topics(sim_replay.bag, {"/depth/image"})["/depth/image"]
    return [
        (
            image_msg_to_depth(g),
            resize_depth(image_msg_to_depth(d), g.width, g.height),
            np.asarray(m.data).reshape(g.height, g.width),
        )
        for (_, g), (_, m), (_, d) in zip(truth["/ground_truth/depth"], truth["/ground_truth/motion"], depth)
    ]


def test_sim_replay_reports_every_region_with_the_labels_pixel_counts(
    sim_replay, sim_bag: Path, read_topics
) -> None:
    r = json.loads((sim_replay.out_dir / "results.json").read_text())
    assert r["inputs"]["motion_topic"] == "/ground_truth/motion" and r["frames"]["scored"] == 6
    assert r["evaluation"]["motion_labels"]["paired"] == 6 and not r["warnings"]
    regions = r["regions"]
    assert list(regions) == list(MOTION_REGIONS)
    frames = _frames(sim_replay, sim_bag, read_topics)
    assert len(frames) == 6
    counts = dict.fromkeys(MOTION_REGIONS, 0)
    for gt, pred, labels in frames:
        assert pred.shape == gt.shape == labels.shape
        scored = np.isfinite(gt) & (gt > 1e-3) & (gt < 80.0) & np.isfinite(pred) & (pred > 0)
        for region, values in (("static", (STATIC,)), ("same_way", (SAME_WAY,)), ("oncoming", (ONCOMING,))):
            counts[region] += int((np.isin(labels, values) & scored).sum())
        counts["moving"] += int(((labels != STATIC) & scored).sum())
    assert {k: v["pixels"] for k, v in regions.items()} == counts
    assert all(v["frames"] == 6 for v in regions.values())
    assert regions["static"]["pixels"] + regions["moving"]["pixels"] == sum(
        f["valid_pixels"] for f in r["per_frame"]
    )

    # A region's numbers: its pixels alone, with the whole frame's median scale (checked on the last
    # frame with evaluate_depth), averaged over frames as the whole-frame numbers are.
    gt, pred, labels = frames[-1]
    last = r["per_frame"][-1]
    region_gt = np.where(labels == ONCOMING, gt, np.nan)
    expected = evaluate_depth(region_gt, pred * last["median_scale"]).metrics
    assert last["regions"]["oncoming"]["median_scaled"] == pytest.approx(expected, rel=1e-5)
    assert last["regions"]["oncoming"]["metric"] == pytest.approx(
        evaluate_depth(region_gt, pred).metrics, rel=1e-5
    )
    mean = mean_metrics([f["regions"]["oncoming"]["median_scaled"] for f in r["per_frame"]])
    assert regions["oncoming"]["median_scaled"] == pytest.approx(mean)


def test_sim_replay_regions_equal_depth_eval(sim_replay, sim_bag: Path, read_topics) -> None:
    """depth-eval (training/evaluate.py) scores the same frames' regions to the same numbers."""
    from training.evaluate import EvalOptions, evaluate_predictions

    frames = _frames(sim_replay, sim_bag, read_topics)
    offline = evaluate_predictions(
        [(gt, pred) for gt, pred, _ in frames],
        None,
        options=EvalOptions(garg_crop=False),
        metric=True,
        motion=[labels for *_, labels in frames],
    )
    regions = sim_replay.results["regions"]
    assert set(offline.regions) == set(regions)
    for region, scores in regions.items():
        theirs = offline.regions[region]
        assert (scores["frames"], scores["pixels"]) == (theirs["frames"], theirs["pixels"]), region
        assert scores["median_scaled"] == pytest.approx(theirs["median_scaled"]["model"], rel=1e-5), region
        assert scores["metric"] == pytest.approx(theirs["metric"]["model"], rel=1e-5), region


def test_sim_replay_report_and_summary_show_the_regions(sim_replay) -> None:
    regions = sim_replay.results["regions"]
    page = sim_replay.report.read_text()
    assert "Per motion region" in page and "/ground_truth/motion" in page
    for region, scores in regions.items():
        assert (
            f"<td>{region.replace('_', ' ')}</td><td>median-scaled</td><td>6</td><td>{scores['pixels']}</td>"
            in page
        )
        assert f"{scores['median_scaled']['abs_rel']:.4f}" in page and f"{scores['metric']['a1']:.4f}" in page
    text = summary_text(sim_replay)
    assert "same way: median-scaled" in text and "oncoming: metric" in text
    assert f"oncoming 6 frames {regions['oncoming']['pixels']} px" in text
