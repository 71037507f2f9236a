"""Training configuration: defaults, YAML files, section.key=value overrides, validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.config import ConfigError, apply_overrides, load_config, load_yaml, parse_override


def test_defaults_follow_monodepth2() -> None:
    cfg = load_config()
    assert (cfg["data"]["width"], cfg["data"]["height"]) == (640, 192)
    assert cfg["data"]["frame_ids"] == [0, -1, 1]
    assert cfg["train"]["batch_size"] == 12
    assert cfg["train"]["lr"] == pytest.approx(1e-4)
    assert cfg["train"]["epochs"] == 20
    assert cfg["train"]["scheduler_step"] == 15
    assert cfg["train"]["scheduler_gamma"] == pytest.approx(0.1)
    aug = cfg["data"]["augment"]
    assert (aug["brightness"], aug["contrast"], aug["saturation"], aug["hue"]) == (0.2, 0.2, 0.2, 0.1)


def test_overrides_parse_yaml_values() -> None:
    assert parse_override("train.lr=2e-4") == (["train", "lr"], 2e-4)  # YAML 1.1 would give a string
    assert parse_override("data.frame_ids=[0, -1]") == (["data", "frame_ids"], [0, -1])
    assert parse_override("train.max_steps=null") == (["train", "max_steps"], None)
    assert parse_override("model.backbone=stdc1") == (["model", "backbone"], "stdc1")
    assert parse_override("train.amp=false") == (["train", "amp"], False)


def test_file_then_overrides(tmp_path: Path) -> None:
    path = tmp_path / "cfg.yaml"
    path.write_text("train:\n  lr: 3.0e-4\n  batch_size: 4\nmodel:\n  backbone: stdc2\n")
    cfg = load_config(path, ["train.lr=2e-4", "model.backbone=stdc1", "data.augment.hue=0.05"])
    assert cfg["train"]["lr"] == pytest.approx(2e-4)  # the command line wins over the file
    assert cfg["train"]["batch_size"] == 4  # the file wins over the defaults
    assert cfg["model"]["backbone"] == "stdc1"
    assert cfg["data"]["augment"]["hue"] == pytest.approx(0.05)
    assert cfg["data"]["augment"]["brightness"] == pytest.approx(0.2)  # siblings kept


def test_unknown_keys_are_refused_outside_open_sections(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"train\.lrr"):
        load_config(None, ["train.lrr=1"])
    path = tmp_path / "typo.yaml"
    path.write_text("data:\n  hieght: 96\n")
    with pytest.raises(ConfigError, match=r"data\.hieght"):
        load_config(path)
    # model/loss keys belong to the networks and losses, which check them themselves.
    cfg = load_config(None, ["model.init_depth=10", "loss.velocity_weight=0"])
    assert cfg["model"]["init_depth"] == 10
    assert cfg["loss"]["velocity_weight"] == 0


@pytest.mark.parametrize(
    "override, message",
    [
        ("data.height=100", "multiple of 32"),
        ("data.frame_ids=[-1, 0, 1]", "starting with 0"),
        ("data.source=video", "kitti, bag or folder"),
        ("train.device=tpu", "auto, cpu or cuda"),
        ("data.depth_gt=radar", "velodyne"),
        ("train.max_steps=0", "max_steps"),
    ],
)
def test_validation_names_the_key(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_section_cannot_be_replaced_by_a_value() -> None:
    with pytest.raises(ConfigError, match="section"):
        apply_overrides(load_config(), ["train=3"])
    with pytest.raises(ConfigError, match=r"section\.key=value"):
        parse_override("train.lr")


def test_shipped_configs_load() -> None:
    configs = sorted((Path(__file__).parent.parent / "training" / "configs").glob("*.yaml"))
    assert any(p.name == "default.yaml" for p in configs)
    for path in configs:
        assert isinstance(load_yaml(path), dict)
        load_config(path)
