"""The seeds' networks as depth-net options: the U-Net++ decoder, the ResNeXt50 encoder (torchvision's
names), the LR-ASPP head on MobileNetV3-Large, the Inception-ResNet-v2 encoder (timm's / Cadene's
names) and the attention-and-skip decoder; their outputs, training through the loss, weight files and
ONNX export."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from training.geometry import disp_to_depth  # noqa: E402
from training.losses import SelfSupervisedLoss  # noqa: E402
from training.networks import (  # noqa: E402
    AttentionDepthDecoder,
    InceptionResNetV2Encoder,
    LRASPPDecoder,
    ResnetEncoder,
    UNetPlusPlusDecoder,
    build_depth_net,
    load_inception_resnet_v2_weights,
    load_torchvision_weights,
)

torch.set_num_threads(1)
H, W = 64, 128
# The four new networks, as model configs.
SEED_NETWORKS = {
    "resnext50_unetpp": {"backbone": "resnext50_32x4d", "decoder": "unetpp"},
    "mobilenet_lraspp": {"backbone": "mobilenetv3_large", "decoder": "lraspp"},
    "inception_attention": {"backbone": "inception_resnet_v2", "decoder": "attention"},
    "resnet18_unetpp": {"backbone": "resnet18", "decoder": "unetpp"},
}


def bn_shapes(shapes: dict[str, tuple[int, ...]], prefix: str, c: int) -> None:
    for name in ("weight", "bias", "running_mean", "running_var"):
        shapes[f"{prefix}.{name}"] = (c,)
    shapes[f"{prefix}.num_batches_tracked"] = ()


def fake_state(shapes: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors under ``shapes``' names (positive BN variances, a recognisable batch count)."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in shapes.items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(9, dtype=torch.int64)
        elif key.endswith("running_var"):
            state[key] = 0.5 + torch.rand(shape, generator=gen)
        else:
            state[key] = 0.05 * torch.randn(shape, generator=gen)
    return state


# ---------------------------------------------------------------------------------------------
# ResNeXt50-32x4d


def torchvision_resnext50_shapes() -> dict[str, tuple[int, ...]]:
    """Keys and shapes of torchvision's ``resnext50_32x4d().state_dict()``, from its ResNet/Bottleneck
    source: Bottleneck(groups=32, base_width=4), inner width = int(planes * 4 / 64) * 32."""
    shapes: dict[str, tuple[int, ...]] = {"conv1.weight": (64, 3, 7, 7)}
    bn_shapes(shapes, "bn1", 64)
    inplanes = 64
    for stage, count in enumerate([3, 4, 6, 3]):
        planes = 64 * 2**stage
        width = int(planes * 4 / 64) * 32
        for b in range(count):
            p = f"layer{stage + 1}.{b}"
            shapes[f"{p}.conv1.weight"] = (width, inplanes, 1, 1)
            bn_shapes(shapes, f"{p}.bn1", width)
            shapes[f"{p}.conv2.weight"] = (width, width // 32, 3, 3)
            bn_shapes(shapes, f"{p}.bn2", width)
            shapes[f"{p}.conv3.weight"] = (planes * 4, width, 1, 1)
            bn_shapes(shapes, f"{p}.bn3", planes * 4)
            if b == 0:
                shapes[f"{p}.downsample.0.weight"] = (planes * 4, inplanes, 1, 1)
                bn_shapes(shapes, f"{p}.downsample.1", planes * 4)
            inplanes = planes * 4
    shapes["fc.weight"] = (1000, 2048)
    shapes["fc.bias"] = (1000,)
    return shapes


def test_resnext50_matches_torchvision_layout() -> None:
    shapes = torchvision_resnext50_shapes()
    enc = ResnetEncoder(50, groups=32, width_per_group=4)
    own = {k: tuple(v.shape) for k, v in enc.state_dict().items()}
    assert own == {k: s for k, s in shapes.items() if not k.startswith("fc.")}
    # torchvision's published num_params for resnext50_32x4d (classifier included): 25,028,904.
    params = sum(
        torch.Size(s).numel()
        for k, s in shapes.items()
        if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))
    )
    assert params == sum(p.numel() for p in enc.parameters()) + 2048 * 1000 + 1000 == 25_028_904
    assert enc.num_ch_enc == [64, 256, 512, 1024, 2048]
    assert enc.layer2[0].conv2.groups == 32


def test_resnext50_loads_torchvision_file_and_refuses_a_missing_key(tmp_path: Path) -> None:
    state = fake_state(torchvision_resnext50_shapes())
    path = tmp_path / "resnext50_32x4d.pth"
    torch.save(state, path)
    net = build_depth_net({"backbone": "resnext50_32x4d", "decoder": "unetpp", "weights": str(path)})
    loaded = net.encoder.state_dict()
    for key in (
        "conv1.weight",
        "layer2.0.conv2.weight",
        "layer4.2.bn3.running_var",
        "layer3.0.downsample.0.weight",
    ):
        assert torch.equal(loaded[key], state[key]), key
    assert int(loaded["bn1.num_batches_tracked"]) == 9

    del state["layer3.1.conv2.weight"]
    torch.save(state, path)
    with pytest.raises(
        ValueError, match=r"resnext50_32x4d\.pth: resnext50_32x4d weights.*layer3\.1\.conv2\.weight"
    ) as err:
        build_depth_net({"backbone": "resnext50_32x4d", "weights": str(path)})
    assert "\n" not in str(err.value)
    # The right names with an ungrouped 3x3 (as in a ResNet, not a ResNeXt) are refused by shape.
    resnet50 = fake_state(torchvision_resnext50_shapes() | {"layer1.0.conv2.weight": (128, 128, 3, 3)})
    with pytest.raises(ValueError, match=r"shape mismatch for \['layer1\.0\.conv2\.weight'\]"):
        load_torchvision_weights(ResnetEncoder(50, groups=32, width_per_group=4), resnet50)


# ---------------------------------------------------------------------------------------------
# Inception-ResNet-v2


def timm_inception_resnet_v2_shapes() -> dict[str, tuple[int, ...]]:
    """Keys and shapes of timm's ``inception_resnet_v2().state_dict()`` (= Cadene's with ``classif``
    for ``last_linear``), written from timm's inception_resnet_v2.py."""
    shapes: dict[str, tuple[int, ...]] = {}

    def conv(prefix: str, c_out: int, c_in: int, kh: int, kw: int | None = None) -> None:
        shapes[f"{prefix}.conv.weight"] = (c_out, c_in, kh, kw or kh)
        bn_shapes(shapes, f"{prefix}.bn", c_out)

    def conv_1x1_bias(prefix: str, c_out: int, c_in: int) -> None:
        shapes[f"{prefix}.weight"] = (c_out, c_in, 1, 1)
        shapes[f"{prefix}.bias"] = (c_out,)

    for name, c_out, c_in, k in [
        ("conv2d_1a", 32, 3, 3),
        ("conv2d_2a", 32, 32, 3),
        ("conv2d_2b", 64, 32, 3),
        ("conv2d_3b", 80, 64, 1),
        ("conv2d_4a", 192, 80, 3),
    ]:
        conv(name, c_out, c_in, k)
    m = "mixed_5b"
    conv(f"{m}.branch0", 96, 192, 1)
    conv(f"{m}.branch1.0", 48, 192, 1)
    conv(f"{m}.branch1.1", 64, 48, 5)
    conv(f"{m}.branch2.0", 64, 192, 1)
    conv(f"{m}.branch2.1", 96, 64, 3)
    conv(f"{m}.branch2.2", 96, 96, 3)
    conv(f"{m}.branch3.1", 64, 192, 1)
    for b in (f"repeat.{i}" for i in range(10)):
        conv(f"{b}.branch0", 32, 320, 1)
        conv(f"{b}.branch1.0", 32, 320, 1)
        conv(f"{b}.branch1.1", 32, 32, 3)
        conv(f"{b}.branch2.0", 32, 320, 1)
        conv(f"{b}.branch2.1", 48, 32, 3)
        conv(f"{b}.branch2.2", 64, 48, 3)
        conv_1x1_bias(f"{b}.conv2d", 320, 128)
    m = "mixed_6a"
    conv(f"{m}.branch0", 384, 320, 3)
    conv(f"{m}.branch1.0", 256, 320, 1)
    conv(f"{m}.branch1.1", 256, 256, 3)
    conv(f"{m}.branch1.2", 384, 256, 3)
    for b in (f"repeat_1.{i}" for i in range(20)):
        conv(f"{b}.branch0", 192, 1088, 1)
        conv(f"{b}.branch1.0", 128, 1088, 1)
        conv(f"{b}.branch1.1", 160, 128, 1, 7)
        conv(f"{b}.branch1.2", 192, 160, 7, 1)
        conv_1x1_bias(f"{b}.conv2d", 1088, 384)
    m = "mixed_7a"
    conv(f"{m}.branch0.0", 256, 1088, 1)
    conv(f"{m}.branch0.1", 384, 256, 3)
    conv(f"{m}.branch1.0", 256, 1088, 1)
    conv(f"{m}.branch1.1", 288, 256, 3)
    conv(f"{m}.branch2.0", 256, 1088, 1)
    conv(f"{m}.branch2.1", 288, 256, 3)
    conv(f"{m}.branch2.2", 320, 288, 3)
    for b in [*(f"repeat_2.{i}" for i in range(9)), "block8"]:
        conv(f"{b}.branch0", 192, 2080, 1)
        conv(f"{b}.branch1.0", 192, 2080, 1)
        conv(f"{b}.branch1.1", 224, 192, 1, 3)
        conv(f"{b}.branch1.2", 256, 224, 3, 1)
        conv_1x1_bias(f"{b}.conv2d", 2080, 448)
    conv("conv2d_7b", 1536, 2080, 1)
    shapes["classif.weight"] = (1000, 1536)
    shapes["classif.bias"] = (1000,)
    return shapes


def test_inception_resnet_v2_matches_timm_layout() -> None:
    shapes = timm_inception_resnet_v2_shapes()
    enc = InceptionResNetV2Encoder()
    own = {k: tuple(v.shape) for k, v in enc.state_dict().items()}
    assert own == {k: s for k, s in shapes.items() if not k.startswith("classif.")}
    # timm's published size of inception_resnet_v2: 55.8 M parameters (with the 1000-class classifier).
    total = sum(p.numel() for p in enc.parameters()) + 1536 * 1000 + 1000
    assert round(total / 1e5) == 558
    assert enc.num_ch_enc == [64, 192, 320, 1088, 1536]
    assert enc.conv2d_1a.bn.eps == 1e-3


def test_inception_resnet_v2_levels_align_at_640x192_and_see_inception_inputs() -> None:
    enc = InceptionResNetV2Encoder().eval()
    rgb = torch.rand(1, 3, 192, 640)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    seen = {}
    hook = enc.conv2d_1a.register_forward_pre_hook(lambda _m, args: seen.update(x=args[0]))
    with torch.no_grad():
        feats = enc((rgb - mean) / std)  # what DepthNet hands the encoder
    hook.remove()
    assert [tuple(f.shape) for f in feats] == [
        (1, c, 192 // 2**s, 640 // 2**s) for s, c in enumerate(enc.num_ch_enc, start=1)
    ]
    # The checkpoint's normalisation: RGB in [0, 1] -> [-1, 1].
    assert torch.allclose(seen["x"], (rgb - 0.5) / 0.5, atol=1e-5)


def test_inception_resnet_v2_loads_timm_and_cadene_files_and_refuses_a_missing_key(tmp_path: Path) -> None:
    timm_state = fake_state(timm_inception_resnet_v2_shapes())
    path = tmp_path / "inception_resnet_v2.pth"
    torch.save(timm_state, path)
    net = build_depth_net({"backbone": "inception_resnet_v2", "decoder": "attention", "weights": str(path)})
    loaded = net.encoder.state_dict()
    for key in ("conv2d_1a.conv.weight", "repeat_1.19.branch1.2.conv.weight", "block8.conv2d.bias"):
        assert torch.equal(loaded[key], timm_state[key]), key
    assert int(loaded["conv2d_7b.bn.num_batches_tracked"]) == 9

    # Cadene's pretrainedmodels: ``last_linear`` (1001 classes), saved from DataParallel.
    cadene = {k: v for k, v in timm_state.items() if not k.startswith("classif.")}
    cadene |= {"last_linear.weight": torch.zeros(1001, 1536), "last_linear.bias": torch.zeros(1001)}
    enc = InceptionResNetV2Encoder()
    load_inception_resnet_v2_weights(enc, {f"module.{k}": v for k, v in cadene.items()})
    assert torch.equal(
        enc.state_dict()["mixed_5b.branch3.1.conv.weight"], timm_state["mixed_5b.branch3.1.conv.weight"]
    )

    del timm_state["repeat.3.branch2.1.bn.running_var"]
    torch.save(timm_state, path)
    with pytest.raises(
        ValueError, match=r"inception_resnet_v2\.pth: .*missing \['repeat\.3\.branch2\.1\.bn\.running_var'\]"
    ) as err:
        build_depth_net({"backbone": "inception_resnet_v2", "weights": str(path)})
    assert "\n" not in str(err.value)


# ---------------------------------------------------------------------------------------------
# Decoders


def check_disparities(outputs: dict, scales: list[int], height: int = H, width: int = W) -> None:
    assert sorted(outputs) == [("disp", s) for s in scales]
    for s in scales:
        disp = outputs[("disp", s)]
        assert disp.shape == (1, 1, height // 2**s, width // 2**s)
        assert 0.0 < float(disp.min()) and float(disp.max()) < 1.0


@pytest.mark.parametrize("backbone", ["resnet18", "resnext50_32x4d", "stdc1", "mobilenetv3_large", "darknet"])
def test_unetpp_outputs_on_every_encoder(backbone: str) -> None:
    torch.manual_seed(0)
    net = build_depth_net({"backbone": backbone, "decoder": "unetpp"}).eval()
    assert type(net.decoder) is UNetPlusPlusDecoder
    with torch.no_grad():
        outputs = net(torch.rand(1, 3, H, W))
    check_disparities(outputs, [0, 1, 2, 3])
    depth = disp_to_depth(outputs[("disp", 0)], net.min_depth, net.max_depth)[1]
    assert 10.0 <= float(depth.median()) <= 15.0  # init_depth 12 m, as every decoder
    # The nested dense pathway: 10 nodes X[k][j] (k + j <= 4), and X[k][j] reads the encoder map,
    # its j - 1 predecessors on level k and the upsampled node below.
    nodes = sorted(name for name in net.decoder.blocks if name.startswith("node_"))
    assert nodes == sorted(f"node_{k}_{j}" for j in range(1, 5) for k in range(5 - j))
    enc = net.encoder.num_ch_enc
    assert net.decoder.blocks["node_0_4"].conv.conv.in_channels == enc[0] + 4 * 32
    assert net.decoder.blocks["node_3_1"].conv.conv.in_channels == enc[3] + 256


def test_unetpp_honours_num_scales() -> None:
    net = build_depth_net({"backbone": "resnet18", "decoder": "unetpp", "num_scales": 5}).eval()
    with torch.no_grad():
        check_disparities(net(torch.rand(1, 3, H, W)), [0, 1, 2, 3, 4])


def test_lraspp_is_torchvisions_layout_on_the_dilated_mobilenet() -> None:
    net = build_depth_net({"backbone": "mobilenetv3_large", "decoder": "lraspp"}).eval()
    assert type(net.decoder) is LRASPPDecoder
    own = {k: tuple(v.shape) for k, v in net.decoder.state_dict().items() if "running" not in k}
    assert own == {
        "cbr.0.weight": (128, 960, 1, 1),
        "cbr.1.weight": (128,),
        "cbr.1.bias": (128,),
        "cbr.1.num_batches_tracked": (),
        "scale.1.weight": (128, 960, 1, 1),
        "low_classifier.weight": (1, 40, 1, 1),
        "low_classifier.bias": (1,),
        "high_classifier.weight": (1, 128, 1, 1),
        "high_classifier.bias": (1,),
    }
    # torchvision's published num_params of lraspp_mobilenet_v3_large (21 classes): 3,221,538; ours
    # has one output channel, i.e. 20 fewer per classifier (weights + bias).
    assert sum(p.numel() for p in net.parameters()) + 20 * (40 + 1) + 20 * (128 + 1) == 3_221_538
    with torch.no_grad():
        feats = net.encoder(torch.rand(1, 3, H, W))
    # torchvision's dilated=True: the last stage stays at stride 16.
    assert [tuple(f.shape[-2:]) for f in feats] == [(32, 64), (16, 32), (8, 16), (4, 8), (4, 8)]
    depthwise = net.encoder.features[13].block[1][0]
    assert (depthwise.stride, depthwise.dilation, depthwise.padding) == ((1, 1), (2, 2), (4, 4))


def test_lraspp_predicts_one_full_resolution_scale_and_refuses_other_encoders() -> None:
    torch.manual_seed(0)
    net = build_depth_net({"backbone": "mobilenetv3_large", "decoder": "lraspp"}).eval()
    with torch.no_grad():
        outputs = net(torch.rand(1, 3, H, W))
    check_disparities(outputs, [0])
    depth = disp_to_depth(outputs[("disp", 0)], net.min_depth, net.max_depth)[1]
    assert 10.0 <= float(depth.median()) <= 15.0
    with pytest.raises(
        ValueError, match=r"^decoder 'lraspp' needs backbone 'mobilenetv3_large', got 'resnet18'$"
    ):
        build_depth_net({"backbone": "resnet18", "decoder": "lraspp"})


def test_attention_gates_sit_on_the_skips() -> None:
    torch.manual_seed(0)
    net = build_depth_net({"backbone": "resnet18", "decoder": "attention"}).eval()
    assert type(net.decoder) is AttentionDepthDecoder
    enc = net.encoder.num_ch_enc
    for i in range(1, 5):
        gate = net.decoder.blocks[f"attention_{i}"]
        assert (gate.W_x.in_channels, gate.W_g.in_channels, gate.W_x.out_channels) == (
            enc[i - 1],
            net.decoder.num_ch_dec[i],
            enc[i - 1] // 2,
        )
    with torch.no_grad():
        features = net.encoder(torch.rand(1, 3, H, W))
        check_disparities(net.decoder(features), [0, 1, 2, 3])
        gate = torch.rand(1, net.decoder.num_ch_dec[2], H // 4, W // 4)  # the decoder's features at H/4
        alpha = net.decoder.blocks["attention_2"].coefficients(features[1], gate)
        assert alpha.shape == (1, 1, H // 4, W // 4) and 0.0 < float(alpha.min()) and float(alpha.max()) < 1.0
        # Closed gates (alpha ~ 0) make the decoder blind to the skips: the same output as with the
        # encoder's skip maps zeroed, and different from the open-gate output.
        opened = net.decoder(features)[("disp", 0)]
        for i in range(1, 5):
            net.decoder.blocks[f"attention_{i}"].psi.bias.fill_(-60.0)
        closed = net.decoder(features)[("disp", 0)]
        no_skips = net.decoder([torch.zeros_like(f) for f in features[:4]] + [features[4]])[("disp", 0)]
    assert torch.allclose(closed, no_skips, atol=1e-7)
    assert not torch.allclose(closed, opened, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# Training through the loss, and ONNX export


@pytest.mark.parametrize("name", sorted(SEED_NETWORKS))
def test_trains_through_the_self_supervised_loss(name: str) -> None:
    torch.manual_seed(0)
    net = build_depth_net(SEED_NETWORKS[name]).train()
    image = torch.rand(1, 3, H, W)
    K = torch.tensor([[[60.0, 0, W / 2, 0], [0, 60.0, H / 2, 0], [0, 0, 1, 0], [0, 0, 0, 1]]])
    batch = {("color", f, 0): torch.roll(image, 2 * f, dims=3) for f in (-1, 0, 1)}
    batch |= {("color_aug", 0, 0): image, "K": K, "inv_K": torch.linalg.inv(K)}
    outputs = dict(net(batch[("color_aug", 0, 0)]))
    for f in (-1, 1):
        pose = torch.eye(4)[None].clone()
        pose[0, 0, 3] = 0.1 * f
        outputs[("cam_T_cam", 0, f)] = pose
    # The loss takes whichever scales the net gives (LR-ASPP: scale 0 only).
    loss, diagnostics = SelfSupervisedLoss({}, H, W)(batch, outputs)
    assert sorted(diagnostics.depth) == sorted(key[1] for key in outputs if key[0] == "disp")
    loss.backward()
    assert torch.isfinite(loss)
    grads = [p.grad for p in net.parameters() if p.requires_grad]
    assert all(g is not None and bool(torch.isfinite(g).all()) for g in grads)
    first_conv = next(m for m in net.encoder.modules() if isinstance(m, torch.nn.Conv2d))
    assert float(first_conv.weight.grad.abs().sum()) > 0.0


@pytest.mark.parametrize("name", ["resnext50_unetpp", "mobilenet_lraspp", "inception_attention"])
def test_onnx_export_runs_in_onnxruntime_with_pytorchs_depth(name: str, tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from training.export import DepthExportWrapper, _torch_onnx_export

    torch.manual_seed(0)
    net = build_depth_net(SEED_NETWORKS[name]).eval()
    # Non-trivial BatchNorm statistics, so that the exported (folded) graph has something to get wrong.
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    wrapper = DepthExportWrapper(net).eval()
    image = torch.rand(1, 3, H, W)
    path = tmp_path / f"{name}.onnx"
    _torch_onnx_export(wrapper, image, path, 17, False)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    got = session.run(["depth"], {"image": image.numpy()})[0]
    with torch.no_grad():
        ref = wrapper(image).numpy()
    assert got.shape == ref.shape == (1, 1, H, W)
    assert float(ref.std()) > 1e-4 * float(ref.mean())  # a depth map, not a constant
    assert float(abs(got - ref).max() / abs(ref).min()) < 1e-4
