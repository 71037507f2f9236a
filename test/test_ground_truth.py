"""depth_node.evaluation.ground_truth: depth image topics, LiDAR projected into the camera, static tf.

The LiDAR clouds are read with ``depth_node.runtime.pointcloud.cloud_xyz`` (tested here where it
feeds the ground truth: KITTI-style layouts with intensity/ring fields, padding, NaN returns).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rosbags.typesys import Stores, get_typestore

from depth_node.evaluation.ground_truth import (
    GroundTruth,
    StaticTransforms,
    depth_truth,
    lidar_depth_map,
    lidar_truth,
    parse_transform,
)
from depth_node.geometry import make_transform, matrix_to_quaternion, rotation_matrix
from depth_node.runtime.conversions import depth_to_image_msg, image_msg_to_depth
from depth_node.runtime.errors import BadInputError
from depth_node.runtime.message_types import rosbags_types, stamp_header
from depth_node.runtime.messages import camera_info_from_K
from depth_node.runtime.pointcloud import cloud_xyz

TYPESTORE = get_typestore(Stores.ROS2_HUMBLE)
TYPES = rosbags_types()
K = np.array([[100.0, 0.0, 40.0], [0.0, 100.0, 20.0], [0.0, 0.0, 1.0]])
WIDTH, HEIGHT = 80, 40


def _lidar_cloud(xyz: np.ndarray, big_endian: bool = False, names=("x", "y", "z")) -> object:
    """A Velodyne-like PointCloud2: x, y, z, intensity float32, ring uint16, padded to 24 bytes a point,
    in rows of 4 points with 8 bytes of row padding."""
    width = 4
    height = len(xyz) // width
    order = ">" if big_endian else "<"
    point = np.dtype(
        {
            "names": [*names, "intensity", "ring"],
            "formats": [order + "f4"] * 4 + [order + "u2"],
            "offsets": [0, 4, 8, 16, 20],
            "itemsize": 24,
        }
    )
    rows = np.zeros((height, width * 24 + 8), np.uint8)
    for r in range(height):
        record = np.zeros(width, point)
        for i, name in enumerate(names):
            record[name] = xyz[r * width : (r + 1) * width, i]
        record["intensity"], record["ring"] = 0.5, r
        rows[r, : width * 24] = record.view(np.uint8)
    fields = [
        TYPES.PointField(name=n, offset=o, datatype=dt, count=1)
        for n, o, dt in zip([*names, "intensity", "ring"], [0, 4, 8, 16, 20], [7, 7, 7, 7, 4])
    ]
    return TYPES.PointCloud2(
        header=stamp_header(TYPES, 0, "velodyne"),
        height=height,
        width=width,
        fields=fields,
        is_bigendian=big_endian,
        point_step=24,
        row_step=width * 24 + 8,
        data=rows.reshape(-1),
        is_dense=False,
    )


def _points_in_view(count: int, seed: int = 0) -> np.ndarray:
    """Camera-frame points that land inside the 80x40 image (z 2..40 m)."""
    rng = np.random.default_rng(seed)
    z = rng.uniform(2.0, 40.0, count)
    u, v = rng.uniform(0, WIDTH - 1, count), rng.uniform(0, HEIGHT - 1, count)
    return np.stack([(u - K[0, 2]) * z / K[0, 0], (v - K[1, 2]) * z / K[1, 1], z], axis=1)


def test_lidar_ground_truth_matches_the_dense_ground_truth(sim_bag: Path, read_topics) -> None:
    """LiDAR projected with /tf_static + camera_info agrees with the dense depth where both exist."""
    msgs = read_topics(sim_bag, {"/lidar/points", "/ground_truth/depth", "/camera/camera_info", "/tf_static"})
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


def test_static_transforms_chain_and_parse_transform() -> None:
    T_base_velo = make_transform(rotation_matrix(0.0, 0.0, 0.3), [1.0, 0.0, 1.7])
    T_velo_cam = make_transform(rotation_matrix(-np.pi / 2, 0.0, -np.pi / 2), [0.3, -0.1, -0.08])
    msg_type = TYPESTORE.types["tf2_msgs/msg/TFMessage"]
    from depth_node.data.bag_convert import transform_stamped  # the converter's own builder

    tf = msg_type(
        transforms=[
            transform_stamped(TYPESTORE, stamp_header(TYPES, 0, "base_link"), "velodyne", T_base_velo),
            transform_stamped(TYPESTORE, stamp_header(TYPES, 0, "velodyne"), "camera_optical", T_velo_cam),
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


# ---------------------------------------------------------------- new: LiDAR clouds, depth images, tf


def test_cloud_xyz_reads_a_padded_velodyne_layout_and_drops_nan_returns() -> None:
    xyz = _points_in_view(8).astype(np.float32)
    xyz[5] = np.nan  # no return
    for big_endian in (False, True):
        got = cloud_xyz(_lidar_cloud(xyz, big_endian=big_endian))
        assert got.dtype == np.float64 and got.shape == (7, 3)
        np.testing.assert_array_equal(got, np.delete(xyz, 5, axis=0).astype(np.float64))
    with pytest.raises(BadInputError, match="no z field"):
        cloud_xyz(_lidar_cloud(xyz, names=("x", "y", "height")))


def test_lidar_truth_projects_the_cloud_through_the_transform() -> None:
    """A point at camera (x, y, z) must land on pixel round(fx x / z + cx, fy y / z + cy) with depth z."""
    points_cam = _points_in_view(12, seed=3)
    T_cam_lidar = make_transform(rotation_matrix(0.1, -0.2, 0.3), [0.2, -0.5, 1.0])
    points_lidar = (points_cam - T_cam_lidar[:3, 3]) @ T_cam_lidar[:3, :3]  # inverse transform
    cloud = _lidar_cloud(points_lidar.astype(np.float32))
    info = camera_info_from_K(K, WIDTH, HEIGHT, stamp_header(TYPES, 0, "cam"), TYPES)

    truth = lidar_truth(cloud, info, T_cam_lidar, "/velodyne_points")
    assert "/velodyne_points" in truth.source and truth.size == (WIDTH, HEIGHT)
    np.testing.assert_allclose(truth.points_cam, points_cam, atol=1e-4)  # float32 cloud
    depth = truth.depth()
    assert depth.shape == (HEIGHT, WIDTH) and truth.points_cam is None  # projected once, lazily
    assert truth.depth() is depth
    u = np.round(points_cam[:, 0] / points_cam[:, 2] * K[0, 0] + K[0, 2]).astype(int)
    v = np.round(points_cam[:, 1] / points_cam[:, 2] * K[1, 1] + K[1, 2]).astype(int)
    np.testing.assert_allclose(depth[v, u], points_cam[:, 2], rtol=1e-5)
    assert np.isfinite(depth).sum() == len({(a, b) for a, b in zip(u, v)})  # NaN everywhere else

    # A camera_info without width/height: the decoded image's size stands in, or a ValueError.
    unsized = camera_info_from_K(K, 0, 0, stamp_header(TYPES, 0, "cam"), TYPES)
    assert lidar_truth(cloud, unsized, T_cam_lidar, "/l", image_size=(WIDTH, HEIGHT)).size == (WIDTH, HEIGHT)
    with pytest.raises(ValueError, match="no image size"):
        lidar_truth(cloud, unsized, T_cam_lidar, "/l")


def test_lidar_depth_map_keeps_the_nearest_point_and_drops_points_behind() -> None:
    points = np.array(
        [
            [0.0, 0.0, 10.0],  # centre pixel (40, 20)
            [0.0, 0.0, 5.0],  # same pixel, nearer: wins
            [0.0, 0.0, -5.0],  # behind the camera
            [100.0, 0.0, 1.0],  # projects far outside the image
            [0.2, 0.1, 2.0],  # pixel (50, 25)
        ]
    )
    depth = lidar_depth_map(points, K, HEIGHT, WIDTH)
    assert depth.dtype == np.float32 and depth.shape == (HEIGHT, WIDTH)
    assert depth[20, 40] == 5.0 and depth[25, 50] == 2.0
    assert np.isfinite(depth).sum() == 2  # NaN (not 0) where no point landed


def test_depth_truth_reads_32fc1_metres_and_16uc1_millimetres() -> None:
    depth = np.array([[1.5, np.nan], [0.0, 42.25]], np.float32)
    header = stamp_header(TYPES, 0, "cam")
    for encoding, tolerance in (("32FC1", 0.0), ("16UC1", 0.0005)):
        truth = depth_truth(depth_to_image_msg(depth, header, TYPES, encoding), "/gt")
        assert truth.source == "depth image /gt"
        got = truth.depth()
        assert np.isnan(got[0, 1]) and np.isnan(got[1, 0])  # NaN and 0 are both "no truth"
        assert got[0, 0] == pytest.approx(1.5, abs=tolerance)
        assert got[1, 1] == pytest.approx(42.25, abs=tolerance)
    rgb = TYPES.Image(
        header=header, height=1, width=1, encoding="rgb8", is_bigendian=0, step=3, data=np.zeros(3, np.uint8)
    )
    with pytest.raises(BadInputError):
        depth_truth(rgb, "/gt")


def test_parse_transform_quaternion_and_matrix_forms_agree() -> None:
    R = rotation_matrix(0.3, -0.4, 1.2)
    T = make_transform(R, [0.5, -1.0, 2.0])
    qx, qy, qz, qw = matrix_to_quaternion(R)
    for text in (
        f"0.5 -1.0 2.0 {qx} {qy} {qz} {qw}",
        f"0.5, -1.0, 2.0, {qx}, {qy}, {qz}, {qw}",
        " ".join(map(str, T[:3].ravel())),  # 3x4
        ",".join(map(str, T.ravel())),  # 4x4
    ):
        np.testing.assert_allclose(parse_transform(text), T, atol=1e-12)
    # 90 degrees about z: x -> y.
    half = np.sqrt(0.5)
    np.testing.assert_allclose(
        parse_transform(f"0 0 0 0 0 {half} {half}")[:3, :3] @ [1, 0, 0], [0, 1, 0], atol=1e-12
    )
    with pytest.raises(ValueError, match="got 5"):
        parse_transform("1 2 3 4 5")


def test_static_transforms_strip_slashes_and_survive_a_cycle() -> None:
    from depth_node.data.bag_convert import transform_stamped

    def tf(parent: str, child: str, T: np.ndarray) -> object:
        header = stamp_header(TYPES, 0, parent)
        return TYPESTORE.types["tf2_msgs/msg/TFMessage"](
            transforms=[transform_stamped(TYPESTORE, header, child, T)]
        )

    T_ab = make_transform(rotation_matrix(0.0, 0.0, 0.5), [1.0, 2.0, 3.0])
    transforms = StaticTransforms()
    transforms.add_message(tf("/a", "/b", T_ab))
    assert transforms.frames == ["a", "b"]
    np.testing.assert_allclose(transforms.lookup("a", "/b"), T_ab)
    np.testing.assert_allclose(transforms.lookup("/b", "a"), np.linalg.inv(T_ab))
    # A later message adds to the tree; a malformed cycle (c -> a -> b -> c) must not hang lookup.
    transforms.add_message(tf("b", "c", np.eye(4)))
    np.testing.assert_allclose(transforms.lookup("a", "c"), T_ab)
    transforms.add_message(tf("c", "a", np.eye(4)))
    assert transforms.lookup("a", "zzz") is None


def test_ground_truth_from_a_dense_image_is_that_image() -> None:
    dense = np.full((3, 4), 7.0, np.float32)
    truth = GroundTruth("hand", dense=dense)
    assert truth.depth() is dense
