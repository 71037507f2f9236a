"""Depth/pose networks: torchvision/STDC weight formats, output shapes, initialisation defaults, and
the training forward pass's pose pairs (``predict_poses``)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from training.geometry import disp_to_depth, transformation_from_parameters  # noqa: E402
from training.networks import (  # noqa: E402
    BACKBONES,
    DepthPoseModel,
    PoseNet,
    ResnetEncoder,
    STDCEncoder,
    build_depth_net,
    build_pose_net,
    load_stdc_weights,
    load_torchvision_weights,
    predict_poses,
    rescale_to_distance,
)

torch.set_num_threads(2)
H, W = 64, 128


def torchvision_resnet_shapes(depth: int) -> dict[str, tuple[int, ...]]:
    """Keys and shapes of torchvision's ``resnet{depth}().state_dict()``, written from its definition."""
    blocks = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3], 50: [3, 4, 6, 3]}[depth]
    bottleneck = depth >= 50
    expansion = 4 if bottleneck else 1
    shapes: dict[str, tuple[int, ...]] = {}

    def bn(prefix: str, c: int) -> None:
        for name in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{prefix}.{name}"] = (c,)
        shapes[f"{prefix}.num_batches_tracked"] = ()

    shapes["conv1.weight"] = (64, 3, 7, 7)
    bn("bn1", 64)
    inplanes = 64
    for stage, count in enumerate(blocks):
        planes = 64 * 2**stage
        for b in range(count):
            p = f"layer{stage + 1}.{b}"
            if bottleneck:
                shapes[f"{p}.conv1.weight"] = (planes, inplanes, 1, 1)
                bn(f"{p}.bn1", planes)
                shapes[f"{p}.conv2.weight"] = (planes, planes, 3, 3)
                bn(f"{p}.bn2", planes)
                shapes[f"{p}.conv3.weight"] = (planes * 4, planes, 1, 1)
                bn(f"{p}.bn3", planes * 4)
            else:
                shapes[f"{p}.conv1.weight"] = (planes, inplanes, 3, 3)
                bn(f"{p}.bn1", planes)
                shapes[f"{p}.conv2.weight"] = (planes, planes, 3, 3)
                bn(f"{p}.bn2", planes)
            if b == 0 and (stage > 0 or inplanes != planes * expansion):
                shapes[f"{p}.downsample.0.weight"] = (planes * expansion, inplanes, 1, 1)
                bn(f"{p}.downsample.1", planes * expansion)
            inplanes = planes * expansion
    shapes["fc.weight"] = (1000, 512 * expansion)
    shapes["fc.bias"] = (1000,)
    return shapes


def fake_torchvision_state(depth: int, seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in torchvision_resnet_shapes(depth).items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(7, dtype=torch.int64)
        else:
            state[key] = torch.randn(shape, generator=gen)
    return state


# torchvision's published parameter counts (with fc): resnet18 11,689,512; resnet34 21,797,672;
# resnet50 25,557,032.
@pytest.mark.parametrize(("depth", "params", "tensors"), [(18, 11_689_512, 122), (34, 21_797_672, 218)])
def test_resnet_matches_torchvision_layout(depth: int, params: int, tensors: int) -> None:
    shapes = torchvision_resnet_shapes(depth)
    assert len(shapes) == tensors
    own = ResnetEncoder(depth).state_dict()
    assert {k: tuple(v.shape) for k, v in own.items()} == {
        k: s for k, s in shapes.items() if not k.startswith("fc.")
    }
    fc = 1000 * 512 + 1000
    assert sum(p.numel() for p in ResnetEncoder(depth).parameters()) + fc == params


def test_resnet50_parameter_count() -> None:
    enc = ResnetEncoder(50)
    assert sum(p.numel() for p in enc.parameters()) + 2048 * 1000 + 1000 == 25_557_032
    assert enc.num_ch_enc == [64, 256, 512, 1024, 2048]


def test_resnet18_loads_torchvision_state_dict_file(tmp_path: Path) -> None:
    state = fake_torchvision_state(18)
    path = tmp_path / "resnet18.pth"
    torch.save(state, path)
    net = build_depth_net({"backbone": "resnet18", "weights": str(path)})
    loaded = net.encoder.state_dict()
    for key in (
        "conv1.weight",
        "layer1.0.conv1.weight",
        "layer4.1.bn2.running_var",
        "layer3.0.downsample.0.weight",
    ):
        assert torch.equal(loaded[key], state[key]), key
    assert int(loaded["bn1.num_batches_tracked"]) == 7

    # The pose net (6-channel input) reuses the file: conv1 replicated over both frames and halved.
    pose = build_pose_net({"backbone": "resnet18", "weights": str(path)})
    expected = torch.cat([state["conv1.weight"]] * 2, dim=1) / 2
    assert torch.allclose(pose.encoder.conv1.weight, expected)
    assert torch.equal(pose.encoder.state_dict()["layer2.0.conv2.weight"], state["layer2.0.conv2.weight"])


def test_resnet_weights_mismatch_is_a_clear_error() -> None:
    state = fake_torchvision_state(18)
    del state["layer2.0.bn1.bias"]
    with pytest.raises(ValueError, match=r"layer2\.0\.bn1\.bias"):
        load_torchvision_weights(ResnetEncoder(18), state)
    state = fake_torchvision_state(18) | {"conv1.weight": torch.zeros(64, 3, 3, 3)}
    with pytest.raises(ValueError, match="shape mismatch"):
        load_torchvision_weights(ResnetEncoder(18), state)
    with pytest.raises(ValueError, match="missing"):
        load_torchvision_weights(ResnetEncoder(34), fake_torchvision_state(18))


def stdc_checkpoint(variant: str, seed: int = 0) -> tuple[dict, dict[str, torch.Tensor]]:
    """A checkpoint shaped like STDC-Seg's ImageNet release: DataParallel prefixes, classifier head."""
    gen = torch.Generator().manual_seed(seed)
    backbone = {}
    for key, value in STDCEncoder(variant).state_dict().items():
        backbone[key] = (
            value.clone() if value.dtype == torch.int64 else torch.randn(value.shape, generator=gen)
        )
    state = {f"module.{k}": v for k, v in backbone.items()}
    head = {
        "conv_last.conv.weight": (1024, 1024, 1, 1),
        "conv_last.bn.weight": (1024,),
        "conv_last.bn.bias": (1024,),
        "conv_last.bn.running_mean": (1024,),
        "conv_last.bn.running_var": (1024,),
        "fc.weight": (1024, 1024),
        "bn.weight": (1024,),
        "bn.bias": (1024,),
        "bn.running_mean": (1024,),
        "bn.running_var": (1024,),
        "linear.weight": (1000, 1024),
    }
    state.update({f"module.{k}": torch.zeros(s) for k, s in head.items()})
    # STDC-Seg's stage aliases (x2 = Sequential(features[:1]) ...) also appear in its state dicts.
    state["module.x2.0.0.conv.weight"] = backbone["features.0.conv.weight"]
    return {"epoch": 300, "state_dict": state}, backbone


@pytest.mark.parametrize(("variant", "num_features"), [("stdc1", 8), ("stdc2", 14)])
def test_stdc_loads_stdc_seg_checkpoint(tmp_path: Path, variant: str, num_features: int) -> None:
    checkpoint, backbone = stdc_checkpoint(variant)
    path = tmp_path / f"{variant}.tar"
    torch.save(checkpoint, path)
    net = build_depth_net({"backbone": variant, "weights": str(path)})
    loaded = net.encoder.state_dict()
    assert set(loaded) == set(backbone)
    for key, value in backbone.items():
        assert torch.equal(loaded[key], value), key
    assert len(net.encoder.features) == num_features
    # Shapes from the STDC paper / STDC-Seg: first stride-2 STDC module, 64 -> 256 channels.
    assert tuple(loaded["features.2.conv_list.0.conv.weight"].shape) == (128, 64, 1, 1)
    assert tuple(loaded["features.2.avd_layer.0.weight"].shape) == (128, 1, 3, 3)
    assert tuple(loaded["features.2.conv_list.1.conv.weight"].shape) == (64, 128, 3, 3)
    assert tuple(loaded["features.2.conv_list.3.conv.weight"].shape) == (32, 32, 3, 3)
    assert net.encoder.num_ch_enc == [32, 64, 256, 512, 1024]


def test_stdc1_weights_do_not_load_into_stdc2() -> None:
    checkpoint, _ = stdc_checkpoint("stdc1")
    with pytest.raises(ValueError, match="missing"):
        load_stdc_weights(STDCEncoder("stdc2"), checkpoint)


@pytest.mark.parametrize("backbone", BACKBONES)
def test_depth_net_shapes_and_initial_depth(backbone: str) -> None:
    torch.manual_seed(0)
    net = build_depth_net({"backbone": backbone})
    image = torch.rand(1, 3, H, W)
    with torch.no_grad():
        outputs = net(image)
    assert sorted(outputs) == [("disp", s) for s in range(4)]
    for s in range(4):
        disp = outputs[("disp", s)]
        assert disp.shape == (1, 1, H // 2**s, W // 2**s)
        assert float(disp.min()) >= 0.0 and float(disp.max()) <= 1.0
    depth = disp_to_depth(outputs[("disp", 0)], net.min_depth, net.max_depth)[1]
    assert 10.0 <= float(depth.median()) <= 15.0
    assert torch.allclose(net.predict_depth(image).detach(), depth, rtol=1e-5)


def test_depth_net_rejects_bad_size() -> None:
    net = build_depth_net({"backbone": "stdc1"})
    with pytest.raises(ValueError, match="multiple of 32"):
        net(torch.rand(1, 3, 60, 192))


def test_monodepth2_init_is_an_option() -> None:
    torch.manual_seed(0)
    net = build_depth_net({"backbone": "stdc1", "init_depth": None})
    with torch.no_grad():
        depth = net.predict_depth(torch.rand(1, 3, H, W))
    assert float(depth.median()) < 1.0  # sigmoid(~0) -> ~2 * min_depth
    pose = build_pose_net({"pose_init": "monodepth2", "pose_translation_scale": 0.01})
    with torch.no_grad():
        _, translation = pose(torch.rand(1, 3, H, W), torch.rand(1, 3, H, W))
    assert float(translation.norm()) < 0.05


def test_pose_net_initial_motion_is_one_metre_forward() -> None:
    torch.manual_seed(0)
    pose = build_pose_net({})
    assert isinstance(pose, PoseNet)
    earlier, later = torch.rand(3, 3, H, W), torch.rand(3, 3, H, W)
    axisangle, translation = pose(earlier, later)
    assert axisangle.shape == (3, 3) and translation.shape == (3, 3)
    expected = torch.tensor([0.0, 0.0, -1.0]).expand(3, 3)
    assert torch.allclose(translation.detach(), expected, atol=0.05)
    assert float(axisangle.detach().abs().max()) < 1e-2
    (translation.sum() + axisangle.sum()).backward()
    assert pose.encoder.conv1.weight.grad is not None


# --- the training forward pass (training/networks/model.py) ----------------------------------


def test_predict_poses_inverts_the_earlier_pair() -> None:
    class FixedPose(torch.nn.Module):
        """Returns a fixed motion earlier -> later and records the pair order."""

        def __init__(self) -> None:
            super().__init__()
            self.calls: list[tuple[float, float]] = []

        def forward(self, earlier: torch.Tensor, later: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            self.calls.append((float(earlier.mean()), float(later.mean())))
            return torch.tensor([[0.0, 0.1, 0.0]]), torch.tensor([[0.0, 0.0, -1.0]])

    batch = {("color_aug", f, 0): torch.full((1, 3, 4, 4), float(f)) for f in (0, -1, 1)}
    pose = FixedPose()
    outputs = predict_poses(pose, batch, [0, -1, 1])
    assert pose.calls == [(-1.0, 0.0), (0.0, 1.0)]
    forward = transformation_from_parameters(
        torch.tensor([[0.0, 0.1, 0.0]]), torch.tensor([[0.0, 0.0, -1.0]])
    )
    assert torch.allclose(outputs[("cam_T_cam", 0, 1)], forward)
    # Frame -1: the pair (-1, 0) maps -1 into 0, so 0 into -1 is its inverse.
    assert torch.allclose(outputs[("cam_T_cam", 0, -1)], torch.linalg.inv(forward), atol=1e-6)
    # A static point 10 m ahead in frame 0 is 1 m closer in frame 1 and 1 m farther in frame -1.
    point = torch.tensor([0.0, 0.0, 10.0, 1.0])
    assert math.isclose(
        float((outputs[("cam_T_cam", 0, -1)][0] @ point)[2]), 11.0 * math.cos(0.1), rel_tol=0.02
    )
    assert outputs[("translation", 0, -1)].shape == (1, 3)


def test_rescale_to_distance_keeps_direction_and_unknown_rows() -> None:
    translation = torch.tensor([[0.0, 0.0, -0.5], [0.3, 0.0, 0.4]], requires_grad=True)
    out = rescale_to_distance(translation, torch.tensor([2.0, float("nan")]))
    assert torch.allclose(out, torch.tensor([[0.0, 0.0, -2.0], [0.3, 0.0, 0.4]]))
    # The known row's length is fixed, so only its direction gets a gradient: none along itself.
    out[0].sum().backward()
    assert torch.allclose(translation.grad[0] @ translation[0].detach(), torch.tensor(0.0), atol=1e-6)


def test_predict_poses_odometry_scale_warps_with_the_travelled_distance() -> None:
    class HalfStep(torch.nn.Module):
        def forward(self, earlier: torch.Tensor, later: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return torch.zeros(1, 3), torch.tensor([[0.0, 0.0, -0.5]])

    batch = {("color_aug", f, 0): torch.zeros(1, 3, 4, 4) for f in (0, -1, 1)}
    batch[("distance", -1)] = torch.tensor([1.5])
    batch[("distance", 1)] = torch.tensor([float("nan")])
    outputs = predict_poses(HalfStep(), batch, [0, -1, 1], odometry_scale=True)
    # Frame -1: inverted pose with the known 1.5 m; frame 1: unknown distance, raw 0.5 m kept.
    assert math.isclose(float(outputs[("cam_T_cam", 0, -1)][0, 2, 3]), 1.5, rel_tol=1e-6)
    assert math.isclose(float(outputs[("cam_T_cam", 0, 1)][0, 2, 3]), -0.5, rel_tol=1e-6)
    # The raw translation stays for the velocity loss.
    assert torch.allclose(outputs[("translation", 0, -1)], torch.tensor([[0.0, 0.0, -0.5]]))


def test_explainability_mask_is_one_per_source_at_input_size() -> None:
    torch.manual_seed(0)
    pose = build_pose_net({"explainability": True})
    model = DepthPoseModel(build_depth_net({}), pose, [0, -1, 1])
    batch = {("color_aug", f, 0): torch.rand(2, 3, H, W) for f in (0, -1, 1)}
    outputs = model(batch)
    for f in (-1, 1):
        mask = outputs[("explainability", 0, f)]
        mask = mask.detach()
        assert mask.shape == (2, 1, H, W) and 0 < float(mask.min()) and float(mask.max()) < 1
    outputs[("explainability", 0, 1)].mean().backward()
    assert pose.explainability.logits.weight.grad is not None
    # Without the option the pose net has no mask decoder and the outputs no mask.
    assert build_pose_net({}).explainability is None
    plain = DepthPoseModel(build_depth_net({}), build_pose_net({}), [0, -1, 1])(batch)
    assert not any(k[0] == "explainability" for k in plain if isinstance(k, tuple))


def test_stereo_partner_pose_comes_from_the_calibration_not_the_pose_net() -> None:
    class NoPose(torch.nn.Module):
        def forward(self, earlier: torch.Tensor, later: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            raise AssertionError("stereo-only training must not run the pose net")

    stereo_T = torch.eye(4).repeat(2, 1, 1)
    stereo_T[:, 0, 3] = -0.54
    batch = {("color_aug", f, 0): torch.rand(2, 3, H, W) for f in (0, "s")} | {"stereo_T": stereo_T}
    outputs = DepthPoseModel(build_depth_net({}), NoPose(), [0])(batch)
    assert torch.equal(outputs[("cam_T_cam", 0, "s")], stereo_T)
    assert not any(k[0] in ("translation", "axisangle") for k in outputs if isinstance(k, tuple))
