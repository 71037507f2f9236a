"""The node's parameters (runtime/parameters.py): the table, validation, the model lookup."""

from __future__ import annotations

import array

import pytest

from depth_node.runtime.parameters import (
    PARAMETERS,
    ParameterError,
    check_parameter,
    find_default_model,
    validate_parameters,
)


# --- parameters --------------------------------------------------------------------------------
def test_defaults_validate_and_match_the_documented_qos():
    settings = validate_parameters({})
    assert settings.providers == ("tensorrt", "cuda", "cpu")
    assert (settings.input_reliability, settings.input_depth) == ("best_effort", 1)
    assert (settings.output_reliability, settings.output_depth) == ("reliable", 5)
    assert settings.depth_encoding == "32FC1" and settings.output_resolution == "auto"
    assert settings.crop is None
    assert settings.subscribed_image_topic == "/camera/image_raw"
    config = settings.pipeline_config()
    assert config.scale_mode == "auto" and config.camera_height == pytest.approx(1.65)


def test_every_parameter_has_a_description_and_a_ros_type():
    for spec in PARAMETERS:
        assert spec.description, spec.name
        assert isinstance(spec.default, (bool, int, float, str, list)), spec.name
        if isinstance(spec.default, list):
            assert spec.default and len({type(v) for v in spec.default}) == 1, spec.name  # typed, non-empty
        if spec.value_range is not None:
            assert spec.value_range[0] <= spec.default <= spec.value_range[1], spec.name
        if spec.choices is not None:
            assert spec.default in spec.choices, spec.name


def test_every_string_choice_stays_a_string_in_ros_yaml():
    """rcl reads `-p name:=value` and params files with YAML typing: a choice such as nan, inf, on
    or no would arrive as a number or a bool and be refused as the wrong type."""
    for spec in PARAMETERS:
        for choice in spec.choices or ():
            with pytest.raises(ValueError):
                float(choice)
            assert choice.lower() not in {"true", "false", "yes", "no", "on", "off", "y", "n", "null", "~"}


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"depth_encoding": "8UC1"}, "depth_encoding: '8UC1' is not one of 32FC1, 16UC1"),
        ({"output_resolution": "full"}, "output_resolution"),
        ({"scale_mode": "magic"}, "scale_mode"),
        ({"points_stride": -1}, "points_stride: -1 is outside [0, 32]"),
        ({"points_stride": 33}, "points_stride: 33 is outside [0, 32]"),
        ({"min_range": 1}, "min_range: 1 is not a float"),
        ({"min_range": 50.0, "max_range": 10.0}, "need min < max"),
        ({"providers": ["cpu", "gpu"]}, "providers: 'gpu'"),
        ({"providers": []}, "providers: empty"),
        ({"scale_mode": "fixed", "fixed_scale": 0.0}, "fixed_scale"),
        ({"scale_mode": "camera_height", "camera_height": 0.0}, "camera_height"),
        ({"crop": [0, 0, 10]}, "crop"),
        ({"image_topic": ""}, "image_topic"),
        ({"input_qos.reliability": "sometimes"}, "input_qos.reliability"),
        ({"input_qos.depth": 0}, "input_qos.depth"),
        ({"compressed": "yes"}, "compressed: 'yes' is not a bool"),
        ({"stride": 2}, "unknown parameter(s): stride"),
    ],
)
def test_invalid_values_are_refused_with_a_clear_message(values, fragment):
    with pytest.raises(ParameterError) as info:
        validate_parameters(values)
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message


def test_points_stride_is_automatic_by_default_and_1_keeps_every_pixel():
    assert validate_parameters({}).points_stride == 0  # auto: see pointcloud.auto_stride
    assert validate_parameters({"points_stride": 1}).points_stride == 1
    assert validate_parameters({"points_stride": 32}).points_stride == 32
    check_parameter("points_stride", 0)


def test_valid_settings_reach_the_pipeline_config():
    settings = validate_parameters(
        {
            "providers": ["CPU", "CUDAExecutionProvider"],
            "compressed": True,
            "image_topic": "/cam/front/image",
            "crop": [0, 10, 400, 100],
            "scale_mode": "fixed",
            "fixed_scale": 2.5,
            "camera_height": 0.0,
            "output_resolution": "model",
            "upsample": "nearest",
            "tensorrt_cache_dir": "",
        }
    )
    assert settings.providers == ("cpu", "CUDAExecutionProvider")
    assert settings.subscribed_image_topic == "/cam/front/image/compressed"
    assert settings.tensorrt_cache_dir is None
    config = settings.pipeline_config()
    assert config.crop == (0, 10, 400, 100)
    assert (config.scale_mode, config.fixed_scale, config.camera_height) == ("fixed", 2.5, None)
    assert (config.output_resolution, config.upsample) == ("model", "nearest")


def test_rclpy_array_values_are_accepted():
    # rclpy returns INTEGER_ARRAY parameters from a params file as array.array('q').
    settings = validate_parameters({"crop": array.array("q", [0, 8, 64, 32])})
    assert settings.crop == (0, 8, 64, 32)


def test_check_parameter_words_values_that_rclpy_refuses():
    # The node uses it for an override that rclpy refused while declaring (type, descriptor range).
    with pytest.raises(ParameterError, match=r"^parameter points_stride: -1 is outside \[0, 32\]$"):
        check_parameter("points_stride", -1)
    with pytest.raises(ParameterError, match="parameter min_range: 1 is not a float"):
        check_parameter("min_range", 1)
    with pytest.raises(ParameterError, match="unknown parameter bogus"):
        check_parameter("bogus", 1)
    check_parameter("crop", array.array("q", [0, 0, 0, 0]))


def test_default_model_prefers_a_demo_model(tmp_path):
    empty, models = tmp_path / "empty", tmp_path / "models"
    empty.mkdir()
    models.mkdir()
    assert find_default_model([empty]) is None
    (models / "a_resnet.onnx").write_bytes(b"x")
    assert find_default_model([empty, models]) == models / "a_resnet.onnx"
    (models / "stdc1_demo.onnx").write_bytes(b"x")
    assert find_default_model([empty, models]) == models / "stdc1_demo.onnx"
