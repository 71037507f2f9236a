"""depth_node.evaluation.bag_input: opening rosbag2 files, choosing topics, reading messages.

Direct tests of the module; the replay's own handling of the same bad bags (one line, nothing left
behind) is in test_replay.py. Bags are written by hand with conftest's ``write_small_bag``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from rosbags.rosbag2 import StoragePlugin

from depth_node.evaluation.bag_input import (
    CLOUD_TYPE,
    COMPRESSED_TYPE,
    IMAGE_TYPE,
    INFO_TYPE,
    TF_TYPE,
    ReplayError,
    Topics,
    bag_storage,
    deserialize,
    iter_messages,
    open_bag,
    select_topics,
)

BAG = Path("/data/drive")


def _select(topics: dict[str, str], counts: dict[str, int] | None = None, **kw: object) -> Topics:
    return select_topics(topics, counts or dict.fromkeys(topics, 5), BAG, **kw)


# ---------------------------------------------------------------- opening and reading


def test_open_bag_reads_a_good_bag_and_its_messages(tmp_path: Path, write_small_bag) -> None:
    bag = write_small_bag(tmp_path / "ok", frames=2)
    reader = open_bag(bag)
    try:
        assert {c.topic: c.msgcount for c in reader.connections} == {
            "/camera/image_raw": 2,
            "/camera/camera_info": 2,
        }
        messages = list(iter_messages(reader, reader.connections, bag))
        assert len(messages) == 4
        conn, _, raw = next(m for m in messages if m[0].topic == "/camera/image_raw")
        image = deserialize(reader, raw, conn, bag)
        assert (image.width, image.height, image.encoding) == (64, 32, "rgb8")
        with pytest.raises(ReplayError, match=r"cannot decode a sensor_msgs/msg/Image message on /camera/"):
            deserialize(reader, b"\x00\x01", conn, bag)
    finally:
        reader.close()


def test_open_bag_names_what_is_wrong(tmp_path: Path, write_small_bag) -> None:
    with pytest.raises(ReplayError, match=f"^bag not found: {re.escape(str(tmp_path / 'nowhere'))}$"):
        open_bag(tmp_path / "nowhere")
    (tmp_path / "plain").mkdir()
    with pytest.raises(ReplayError, match=r"is not a rosbag2: no metadata\.yaml in the folder"):
        open_bag(tmp_path / "plain")
    bag = write_small_bag(tmp_path / "corrupt")
    (bag / "metadata.yaml").write_text("rosbag2_bagfile_information: [this is : not {valid")
    with pytest.raises(ReplayError, match=r"cannot read bag .*corrupt \(corrupt or truncated\?\)") as error:
        open_bag(bag)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("storage", [StoragePlugin.SQLITE3, StoragePlugin.MCAP])
def test_a_truncated_bag_fails_with_one_line_while_opening_or_reading(
    storage: StoragePlugin, tmp_path: Path, write_small_bag
) -> None:
    bag = write_small_bag(tmp_path / "cut", frames=6, size=(160, 96), storage=storage)
    data_file = next(p for p in bag.iterdir() if p.suffix in (".db3", ".mcap"))
    data_file.write_bytes(data_file.read_bytes()[: data_file.stat().st_size // 2])
    with pytest.raises(ReplayError, match=r"cannot read bag .*cut \(corrupt or truncated\?\)") as error:
        reader = open_bag(bag)
        try:
            for _ in iter_messages(reader, reader.connections, bag):
                pass
        finally:
            reader.close()
    assert "\n" not in str(error.value) and len(str(error.value)) < 400


def test_bag_storage(tmp_path: Path, write_small_bag) -> None:
    assert bag_storage(write_small_bag(tmp_path / "s", frames=1)) == "sqlite3"
    mcap = write_small_bag(tmp_path / "m", frames=1, storage=StoragePlugin.MCAP)
    assert bag_storage(mcap) == "mcap"
    assert bag_storage(next(mcap.glob("*.mcap"))) == "mcap"  # a single file
    (tmp_path / "x.db3").write_bytes(b"")
    assert bag_storage(tmp_path / "x.db3") == "sqlite3"


# ---------------------------------------------------------------- choosing topics


def test_select_topics_finds_the_camera_and_its_ground_truth() -> None:
    topics = {
        "/camera/image_raw": IMAGE_TYPE,
        "/camera/image_raw/compressed": COMPRESSED_TYPE,
        "/camera/camera_info": INFO_TYPE,
        "/ground_truth/depth": IMAGE_TYPE,
        "/other/depth": IMAGE_TYPE,
        "/lidar/points": CLOUD_TYPE,
        "/tf_static": TF_TYPE,
        # The node's own outputs (a replay of a replay) are never inputs.
        "/depth/image": IMAGE_TYPE,
        "/depth/camera_info": INFO_TYPE,
        "/depth/points": CLOUD_TYPE,
    }
    selected = _select(topics)
    assert selected == Topics(
        image="/camera/image_raw",
        image_type=IMAGE_TYPE,
        camera_info="/camera/camera_info",
        gt_depth="/ground_truth/depth",  # ground truth named so wins over any depth image
        lidar=None,
        tf_static="/tf_static",
    )
    lidar = _select(topics, gt="lidar")
    assert (lidar.gt_depth, lidar.lidar) == (None, "/lidar/points")
    none = _select(topics, gt="none")
    assert (none.gt_depth, none.lidar) == (None, None)
    # Without a depth image, or with its topic empty, auto falls back to the LiDAR.
    counts = {**dict.fromkeys(topics, 5), "/ground_truth/depth": 0}
    assert _select(topics, counts).lidar == "/lidar/points"
    # Raw before compressed; compressed when that is all there is.
    del topics["/camera/image_raw"]
    chosen = _select(topics)
    assert (chosen.image, chosen.image_type) == ("/camera/image_raw/compressed", COMPRESSED_TYPE)


def test_select_topics_pairs_camera_info_and_image_by_namespace() -> None:
    topics = {
        "/camera/image_raw": IMAGE_TYPE,
        "/camera/camera_info": INFO_TYPE,
        "/front/image_raw/compressed": COMPRESSED_TYPE,
        "/front/camera_info": INFO_TYPE,
        "/rear/image_raw": IMAGE_TYPE,
        "/rear/camera_info": INFO_TYPE,
    }
    front = _select(topics, image="/front/image_raw/compressed")
    assert front.camera_info == "/front/camera_info"
    rear = _select(topics, camera_info="/rear/camera_info")
    assert rear.image == "/rear/image_raw"
    # Nothing given: the camera_info named "camera" first, then the image in its namespace.
    auto = _select(topics)
    assert (auto.image, auto.camera_info) == ("/camera/image_raw", "/camera/camera_info")


def test_select_topics_explicit_ground_truth_topic() -> None:
    topics = {
        "/cam/image": IMAGE_TYPE,
        "/cam/camera_info": INFO_TYPE,
        "/velodyne": CLOUD_TYPE,
        "/stereo/disparity_m": IMAGE_TYPE,
    }
    assert _select(topics, gt_topic="/velodyne").lidar == "/velodyne"
    assert _select(topics, gt_topic="/stereo/disparity_m").gt_depth == "/stereo/disparity_m"
    assert _select(topics).tf_static is None
    with pytest.raises(
        ReplayError, match="ground truth topic /cam/camera_info in /data/drive is sensor_msgs"
    ):
        _select(topics, gt_topic="/cam/camera_info")


@pytest.mark.parametrize(
    ("topics", "counts", "kw", "message"),
    [
        ({}, {}, {}, r"^bag /data/drive is empty: it has no topics$"),
        ({"/cam/image": IMAGE_TYPE}, None, {}, "has no sensor_msgs/CameraInfo topic .*topics: /cam/image"),
        ({"/cam/camera_info": INFO_TYPE}, None, {}, "has no camera image topic"),
        (
            {"/cam/image": IMAGE_TYPE, "/cam/camera_info": INFO_TYPE},
            {"/cam/image": 0, "/cam/camera_info": 3},
            {},
            "no messages on the camera topic /cam/image",
        ),
        (
            {"/cam/image": IMAGE_TYPE, "/cam/camera_info": INFO_TYPE},
            {"/cam/image": 3},
            {},
            "no messages on the camera_info topic /cam/camera_info",
        ),
        (
            {"/cam/image": IMAGE_TYPE, "/cam/camera_info": INFO_TYPE},
            None,
            {"image": "/front/image"},
            r"camera image topic /front/image not in bag /data/drive; "
            r"topics: /cam/camera_info \[CameraInfo\], /cam/image \[Image\]",
        ),
        (
            {"/cam/image": INFO_TYPE, "/cam/camera_info": INFO_TYPE},
            None,
            {"image": "/cam/image"},
            "camera image topic /cam/image in /data/drive is sensor_msgs/msg/CameraInfo, expected",
        ),
        (
            {"/cam/image": IMAGE_TYPE, "/cam/camera_info": INFO_TYPE},
            None,
            {"gt": "depth"},
            "has no ground truth depth image topic",
        ),
        (
            {"/cam/image": IMAGE_TYPE, "/cam/camera_info": INFO_TYPE},
            None,
            {"gt": "lidar"},
            "has no LiDAR PointCloud2 topic",
        ),
    ],
)
def test_select_topics_errors_name_the_bag_and_what_was_expected(
    topics: dict[str, str], counts: dict[str, int] | None, kw: dict, message: str
) -> None:
    with pytest.raises(ReplayError, match=message) as error:
        _select(topics, counts, **kw)
    assert "\n" not in str(error.value) and "/data/drive" in str(error.value)
