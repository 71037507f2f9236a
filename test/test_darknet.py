"""CSP-Darknet (YOLOv8 backbone) encoder: Ultralytics' layout and names, its weight loader, the
pyramid levels and the depth net built on it."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from training.geometry import disp_to_depth  # noqa: E402
from training.networks import DarknetEncoder, build_depth_net, load_darknet_weights  # noqa: E402

torch.set_num_threads(1)
H, W = 96, 320

# Per-layer parameter counts of layers 0-9 in Ultralytics' model summaries of yolov8n / yolov8s.
YOLOV8_LAYER_PARAMS = {
    "n": [464, 4672, 7360, 18560, 49664, 73984, 197632, 295424, 460288, 164608],
    "s": [928, 18560, 29056, 73984, 197632, 295424, 788480, 1180672, 1838080, 656896],
}


def fake_detection_state(size: str = "s", seed: int = 0) -> dict[str, torch.Tensor]:
    """A YOLOv8 detection model's state dict: the backbone's names with random values, plus head keys."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, value in DarknetEncoder(size).state_dict().items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(3, dtype=torch.int64)
        elif key.endswith("running_var"):
            state[key] = 0.5 + torch.rand(value.shape, generator=gen)
        else:
            state[key] = 0.1 * torch.randn(value.shape, generator=gen)
    state["model.12.cv1.conv.weight"] = torch.zeros(128, 384, 1, 1)  # the neck ...
    state["model.22.dfl.conv.weight"] = torch.zeros(1, 16, 1, 1)  # ... and the detection head
    return state


@pytest.mark.parametrize("size", ["n", "s"])
def test_layout_matches_ultralytics_yolov8(size: str) -> None:
    enc = DarknetEncoder(size)
    counts = [sum(p.numel() for p in layer.parameters()) for layer in enc.model]
    assert counts == YOLOV8_LAYER_PARAMS[size]
    shapes = {k: tuple(v.shape) for k, v in enc.state_dict().items()}
    c = enc.num_ch_enc
    assert shapes["model.0.conv.weight"] == (c[0], 3, 3, 3)
    assert shapes["model.0.bn.running_var"] == (c[0],)
    assert shapes["model.2.cv1.conv.weight"] == (c[1], c[1], 1, 1)
    assert shapes["model.2.m.0.cv2.conv.weight"] == (c[1] // 2, c[1] // 2, 3, 3)
    assert shapes["model.4.cv2.conv.weight"] == (c[2], 2 * c[2], 1, 1)  # (2 + 2 repeats) * c/2
    assert shapes["model.9.cv2.conv.weight"] == (c[4], 2 * c[4], 1, 1)  # 4 pools of c/2
    assert "model.4.m.1.cv1.bn.weight" in shapes and "model.2.m.1.cv1.bn.weight" not in shapes


def test_pyramid_levels_at_strides_2_to_32() -> None:
    enc = DarknetEncoder().eval()
    with torch.no_grad():
        feats = enc(torch.rand(1, 3, H, W))
    assert enc.num_ch_enc == [32, 64, 128, 256, 512]
    assert [tuple(f.shape) for f in feats] == [
        (1, c, H // 2**s, W // 2**s) for s, c in enumerate(enc.num_ch_enc, start=1)
    ]


def test_loads_detection_state_dict_file_and_changes_outputs(tmp_path: Path) -> None:
    state = fake_detection_state()
    path = tmp_path / "yolov8s_backbone.pt"
    # Saved from the YOLO wrapper, keys carry an extra "model." and the dict sits under "model".
    torch.save({"model": {f"model.{k}": v for k, v in state.items()}}, path)
    torch.manual_seed(0)
    enc = DarknetEncoder().eval()
    image = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        before = enc(image)[-1]
        load_darknet_weights(enc, path)
        after = enc(image)[-1]
    loaded = enc.state_dict()
    for key in ("model.0.conv.weight", "model.6.m.1.cv2.bn.bias", "model.9.cv1.bn.running_mean"):
        assert torch.equal(loaded[key], state[key]), key
    assert not torch.allclose(before, after)
    net = build_depth_net({"backbone": "darknet", "weights": str(path)})
    assert torch.equal(net.encoder.state_dict()["model.3.conv.weight"], state["model.3.conv.weight"])


def test_bad_weights_are_one_line_errors_naming_file_and_key(tmp_path: Path) -> None:
    state = fake_detection_state()
    del state["model.4.m.0.cv1.bn.bias"]
    path = tmp_path / "broken.pt"
    torch.save(state, path)
    with pytest.raises(ValueError, match=r"broken\.pt.*model\.4\.m\.0\.cv1\.bn\.bias") as err:
        load_darknet_weights(DarknetEncoder(), path)
    assert "\n" not in str(err.value)

    torch.save(fake_detection_state("n"), path)
    with pytest.raises(ValueError, match=r"broken\.pt.*shape mismatch.*model\.0\.conv\.weight.*n vs s"):
        load_darknet_weights(DarknetEncoder("s"), path)

    # An Ultralytics .pt pickles the model object: refused without unpickling it.
    torch.save({"model": torch.nn.Conv2d(3, 16, 3)}, path)
    with pytest.raises(ValueError, match=r"broken\.pt: not a plain state dict.*re-save") as err:
        load_darknet_weights(DarknetEncoder(), path)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("decoder", ["monodepth2", "light"])
def test_depth_net_outputs_and_initial_depth(decoder: str) -> None:
    torch.manual_seed(0)
    net = build_depth_net({"backbone": "darknet", "decoder": decoder}).eval()
    with torch.no_grad():
        outputs = net(torch.rand(1, 3, H, W))
    assert sorted(outputs) == [("disp", s) for s in range(4)]
    for s in range(4):
        disp = outputs[("disp", s)]
        assert disp.shape == (1, 1, H // 2**s, W // 2**s)
        assert 0.0 < float(disp.min()) and float(disp.max()) < 1.0
    depth = disp_to_depth(outputs[("disp", 0)], net.min_depth, net.max_depth)[1]
    assert 10.0 <= float(depth.median()) <= 15.0
