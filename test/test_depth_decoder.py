"""Depth decoders: Monodepth2's (the default, unchanged), the slim and the light options."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from training.export import count_flops  # noqa: E402
from training.geometry import depth_to_sigmoid_logit, disp_to_depth  # noqa: E402
from training.networks import (  # noqa: E402
    DEFAULT_MODEL_CFG,
    DepthDecoder,
    LightDepthDecoder,
    SlimDepthDecoder,
    build_depth_net,
)

torch.set_num_threads(1)
H, W = 96, 320


def test_monodepth2_decoder_is_the_default_and_unchanged() -> None:
    assert DEFAULT_MODEL_CFG["decoder"] == "monodepth2"
    net = build_depth_net({"backbone": "resnet18"})
    assert type(net.decoder) is DepthDecoder
    shapes = {k: tuple(v.shape) for k, v in net.decoder.state_dict().items()}
    assert shapes["blocks.upconv_4_0.conv.conv.weight"] == (256, 512, 3, 3)
    assert shapes["blocks.upconv_0_1.conv.conv.weight"] == (16, 16, 3, 3)
    assert shapes["blocks.dispconv_3.conv.bias"] == (1,)
    # Monodepth2's ResNet18 depth decoder (4 scales): 3,152,724 parameters.
    assert sum(p.numel() for p in net.decoder.parameters()) == 3_152_724


@pytest.mark.parametrize(
    ("backbone", "decoder", "kind"),
    [
        ("resnet18", "light", LightDepthDecoder),
        ("stdc1", "light", LightDepthDecoder),
        ("stdc1", "slim", SlimDepthDecoder),
    ],
)
def test_lighter_decoders_outputs_and_initial_depth(backbone: str, decoder: str, kind: type) -> None:
    torch.manual_seed(0)
    net = build_depth_net({"backbone": backbone, "decoder": decoder}).eval()
    assert type(net.decoder) is kind
    with torch.no_grad():
        outputs = net(torch.rand(2, 3, H, W))
    assert sorted(outputs) == [("disp", s) for s in range(4)]
    for s in range(4):
        disp = outputs[("disp", s)]
        assert disp.shape == (2, 1, H // 2**s, W // 2**s)
        assert 0.0 < float(disp.min()) and float(disp.max()) < 1.0
    depth = disp_to_depth(outputs[("disp", 0)], net.min_depth, net.max_depth)[1]
    assert 10.0 <= float(depth.median()) <= 15.0
    logit = depth_to_sigmoid_logit(12.0, net.min_depth, net.max_depth)
    for s in range(4):
        assert torch.allclose(net.decoder.blocks[f"dispconv_{s}"].conv.bias, torch.tensor([logit]))


def test_light_decoder_trains_and_honours_num_scales() -> None:
    torch.manual_seed(0)
    net = build_depth_net({"backbone": "stdc1", "decoder": "light", "num_scales": 1})
    outputs = net(torch.rand(1, 3, 64, 128))
    assert list(outputs) == [("disp", 0)]
    outputs[("disp", 0)].mean().backward()
    assert net.decoder.blocks["upconv_0_1"].depthwise.weight.grad is not None
    assert net.encoder.features[0].conv.weight.grad is not None


def test_lighter_decoders_have_fewer_macs() -> None:
    image = torch.rand(1, 3, 192, 640)
    macs = {}
    for decoder in ("monodepth2", "slim", "light"):
        net = build_depth_net({"backbone": "mobilenetv3_large", "decoder": decoder}).eval()
        macs[decoder] = count_flops(net, image)["macs"] - count_flops(net.encoder, image)["macs"]
    # Monodepth2's decoder is ~2.7 GMAC here, the slim one ~1.0 (the wide skips still feed dense
    # 3x3 convolutions), the light one ~0.15.
    assert 0.3 * macs["monodepth2"] < macs["slim"] < 0.5 * macs["monodepth2"]
    assert macs["light"] < 0.1 * macs["monodepth2"]
    # Slim keeps Monodepth2's dense blocks (and their state-dict names) at half the channels.
    slim = build_depth_net({"backbone": "stdc1", "decoder": "slim"}).decoder.state_dict()
    assert slim["blocks.upconv_0_1.conv.conv.weight"].shape == (8, 8, 3, 3)


def test_unknown_decoder_is_named() -> None:
    with pytest.raises(ValueError, match=r"unknown decoder 'unet'.*monodepth2, slim, light"):
        build_depth_net({"backbone": "stdc1", "decoder": "unet"})
