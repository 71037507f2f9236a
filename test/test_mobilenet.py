"""MobileNetV3-Large encoder: torchvision's layout and names, its weight file loader, the pyramid
levels, the depth net built on it and its ONNX export."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from training.geometry import disp_to_depth  # noqa: E402
from training.networks import MobileNetV3Encoder, build_depth_net, load_mobilenet_weights  # noqa: E402

torch.set_num_threads(1)
H, W = 96, 320

# torchvision's mobilenet_v3_large table (width 1.0), written down independently of the module:
# (in, kernel, expanded, out, squeeze-excite, stride).
TORCHVISION_TABLE = [
    (16, 3, 16, 16, False, 1),
    (16, 3, 64, 24, False, 2),
    (24, 3, 72, 24, False, 1),
    (24, 5, 72, 40, True, 2),
    (40, 5, 120, 40, True, 1),
    (40, 5, 120, 40, True, 1),
    (40, 3, 240, 80, False, 2),
    (80, 3, 200, 80, False, 1),
    (80, 3, 184, 80, False, 1),
    (80, 3, 184, 80, False, 1),
    (80, 3, 480, 112, True, 1),
    (112, 3, 672, 112, True, 1),
    (112, 5, 672, 160, True, 2),
    (160, 5, 960, 160, True, 1),
    (160, 5, 960, 160, True, 1),
]
# SE squeeze widths: torchvision's _make_divisible(expanded // 4, 8).
SQUEEZE = {72: 24, 120: 32, 480: 120, 672: 168, 960: 240}


def torchvision_shapes() -> dict[str, tuple[int, ...]]:
    """Keys and shapes of torchvision's ``mobilenet_v3_large().state_dict()``, classifier included."""
    shapes: dict[str, tuple[int, ...]] = {}

    def conv_bn(prefix: str, c_out: int, c_in: int, k: int) -> None:
        shapes[f"{prefix}.0.weight"] = (c_out, c_in, k, k)
        for name in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{prefix}.1.{name}"] = (c_out,)
        shapes[f"{prefix}.1.num_batches_tracked"] = ()

    conv_bn("features.0", 16, 3, 3)
    for i, (c_in, k, exp, out, se, _) in enumerate(TORCHVISION_TABLE, start=1):
        j = 0
        if exp != c_in:
            conv_bn(f"features.{i}.block.0", exp, c_in, 1)
            j = 1
        conv_bn(f"features.{i}.block.{j}", exp, 1, k)
        if se:
            sq = SQUEEZE[exp]
            shapes[f"features.{i}.block.{j + 1}.fc1.weight"] = (sq, exp, 1, 1)
            shapes[f"features.{i}.block.{j + 1}.fc1.bias"] = (sq,)
            shapes[f"features.{i}.block.{j + 1}.fc2.weight"] = (exp, sq, 1, 1)
            shapes[f"features.{i}.block.{j + 1}.fc2.bias"] = (exp,)
            j += 1
        conv_bn(f"features.{i}.block.{j + 1}", out, exp, 1)
    conv_bn("features.16", 960, 160, 1)
    shapes |= {
        "classifier.0.weight": (1280, 960),
        "classifier.0.bias": (1280,),
        "classifier.3.weight": (1000, 1280),
        "classifier.3.bias": (1000,),
    }
    return shapes


def fake_torchvision_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """A full-model state dict with torchvision's names and random values (positive BN variances)."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in torchvision_shapes().items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(5, dtype=torch.int64)
        elif key.endswith("running_var"):
            state[key] = 0.5 + torch.rand(shape, generator=gen)
        else:
            state[key] = 0.1 * torch.randn(shape, generator=gen)
    return state


def test_layout_matches_torchvision() -> None:
    shapes = torchvision_shapes()
    own = MobileNetV3Encoder().state_dict()
    assert {k: tuple(v.shape) for k, v in own.items()} == {
        k: s for k, s in shapes.items() if k.startswith("features.")
    }
    for key in ("features.0.0.weight", "features.1.block.0.0.weight", "features.4.block.2.fc1.weight"):
        assert key in own
    # torchvision's published parameter count for mobilenet_v3_large: 5,483,032 (with the classifier).
    classifier = sum(torch.Size(s).numel() for k, s in shapes.items() if k.startswith("classifier."))
    assert sum(p.numel() for p in MobileNetV3Encoder().parameters()) + classifier == 5_483_032


def test_pyramid_levels_at_strides_2_to_32() -> None:
    enc = MobileNetV3Encoder().eval()
    with torch.no_grad():
        feats = enc(torch.rand(1, 3, H, W))
    assert enc.num_ch_enc == [16, 24, 40, 112, 960]
    assert [tuple(f.shape) for f in feats] == [
        (1, c, H // 2**s, W // 2**s) for s, c in enumerate(enc.num_ch_enc, start=1)
    ]


def test_loads_torchvision_file_and_changes_outputs(tmp_path: Path) -> None:
    state = fake_torchvision_state()
    path = tmp_path / "mobilenet_v3_large.pth"
    torch.save(state, path)
    torch.manual_seed(0)
    enc = MobileNetV3Encoder().eval()
    image = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        before = enc(image)[-1]
        load_mobilenet_weights(enc, path)
        after = enc(image)[-1]
    loaded = enc.state_dict()
    for key in ("features.0.0.weight", "features.4.block.2.fc1.weight", "features.16.1.running_var"):
        assert torch.equal(loaded[key], state[key]), key
    assert int(loaded["features.0.1.num_batches_tracked"]) == 5
    assert not torch.allclose(before, after)
    net = build_depth_net({"backbone": "mobilenetv3_large", "weights": str(path)})
    assert torch.equal(
        net.encoder.state_dict()["features.7.block.1.0.weight"], state["features.7.block.1.0.weight"]
    )


def test_missing_or_mis_shaped_key_is_a_one_line_error_naming_file_and_key(tmp_path: Path) -> None:
    state = fake_torchvision_state()
    del state["features.4.block.2.fc1.bias"]
    path = tmp_path / "broken.pth"
    torch.save(state, path)
    with pytest.raises(ValueError, match=r"broken\.pth.*features\.4\.block\.2\.fc1\.bias") as err:
        load_mobilenet_weights(MobileNetV3Encoder(), path)
    assert "\n" not in str(err.value)

    state = fake_torchvision_state() | {"features.0.0.weight": torch.zeros(16, 3, 5, 5)}
    torch.save(state, path)
    with pytest.raises(ValueError, match=r"broken\.pth.*shape mismatch.*features\.0\.0\.weight"):
        load_mobilenet_weights(MobileNetV3Encoder(), path)

    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, path)  # a ResNet file
    with pytest.raises(ValueError, match=r"broken\.pth: no 'features\.\*' tensors"):
        load_mobilenet_weights(MobileNetV3Encoder(), path)
    with pytest.raises(FileNotFoundError, match=r"nothing\.pth"):
        load_mobilenet_weights(MobileNetV3Encoder(), tmp_path / "nothing.pth")


@pytest.mark.parametrize("decoder", ["monodepth2", "light"])
def test_depth_net_outputs_and_initial_depth(decoder: str) -> None:
    torch.manual_seed(0)
    net = build_depth_net({"backbone": "mobilenetv3_large", "decoder": decoder}).eval()
    with torch.no_grad():
        outputs = net(torch.rand(1, 3, H, W))
    assert sorted(outputs) == [("disp", s) for s in range(4)]
    for s in range(4):
        disp = outputs[("disp", s)]
        assert disp.shape == (1, 1, H // 2**s, W // 2**s)
        assert 0.0 < float(disp.min()) and float(disp.max()) < 1.0
    depth = disp_to_depth(outputs[("disp", 0)], net.min_depth, net.max_depth)[1]
    assert 10.0 <= float(depth.median()) <= 15.0


def test_onnx_round_trip(tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from training.export import DepthExportWrapper

    torch.manual_seed(0)
    net = build_depth_net({"backbone": "mobilenetv3_large", "decoder": "light"}).eval()
    wrapper = DepthExportWrapper(net).eval()
    image = torch.rand(1, 3, 64, 128)
    path = tmp_path / "mobilenet.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's constant-folding notes
        torch.onnx.export(
            wrapper,
            (image,),
            str(path),
            input_names=["image"],
            output_names=["depth"],
            opset_version=17,
            dynamo=False,
        )
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    got = session.run(["depth"], {"image": image.numpy()})[0]
    with torch.no_grad():
        ref = wrapper(image).numpy()
    assert got.shape == ref.shape == (1, 1, 64, 128)
    assert float(abs(got - ref).max() / abs(ref).min()) < 1e-4
