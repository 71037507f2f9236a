"""The model card beside each exported model (training/model_card.py)."""

from __future__ import annotations

from training.model_card import _input_rows, _metrics_markdown, two_frame_info


def test_model_card_metrics_include_nested_motion_region_tables() -> None:
    row = dict.fromkeys(("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3"), 0.5)
    metrics = {
        "frames": 3,
        "median_scaled": {"model": row, "constant": row},
        "regions": {"moving": {"frames": 2, "pixels": 40, "median_scaled": {"model": row}, "metric": None}},
        "scale_ratio": {"median": 0.9, "std_over_median": 0.1},
    }
    text = "\n".join(_metrics_markdown(metrics))
    assert "median_scaled:" in text and "regions / moving / median_scaled:" in text
    assert "| regions / moving / pixels | 40 |" in text and "| frames | 3 |" in text
    assert "| scale_ratio / median | 0.9000 |" in text  # nested scalars flattened, not a dict's repr
    assert text.count("| entry | value |") == 1  # one key/value table: two in a row would merge


def test_a_single_frame_card_has_one_input_row() -> None:
    info = {"batch": 1, "height": 192, "width": 640, **two_frame_info({"frames": "1"})}
    assert _input_rows(info) == ["| input | `image` float32 [1,3,192,640] RGB in [0,1] |"]


def test_a_two_frame_card_says_what_is_matched() -> None:
    metadata = {
        "frames": "2",
        "cost_volume_intrinsics": "[0.58, 1.92, 0.5, 0.5]",
        "depth_bins": '{"count": 16, "binning": "inverse", "min": 4.9, "max": 97.8}',
    }
    size = {"batch": 1, "height": 96, "width": 320}
    features = _input_rows({**size, **two_frame_info(metadata)})
    image = _input_rows({**size, **two_frame_info({**metadata, "matching_source": "image"})})
    assert len(features) == 3 and not any(row.startswith("| matching |") for row in features)
    assert image[:3] == features and image[3].startswith("| matching | the frames themselves")
