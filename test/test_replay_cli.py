"""depth_node.evaluation.replay_cli: ``depth-replay``'s arguments, its one-line errors and summary table.

End-to-end runs use conftest's ``tiny_model`` and ``write_small_bag``; argument mapping and the
summary table are checked without replaying anything.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from onnx_models import bad_model_files

from depth_node.evaluation.replay import ReplayResult
from depth_node.evaluation.replay_cli import build_parser, main, options_from_args, summary_text
from depth_node.geometry import make_transform
from depth_node.metrics import MAX_DEPTH, MIN_DEPTH


def test_cli_prints_one_line_errors_and_a_summary(
    tiny_model: Path, tmp_path: Path, capsys, write_small_bag
) -> None:
    assert main([str(tmp_path / "missing"), "--model", str(tiny_model), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("depth-replay: error: bag not found") and err.count("\n") == 1

    bag = write_small_bag(tmp_path / "ok")
    out = tmp_path / "cli_out"
    assert main([str(bag), "--model", str(tmp_path / "nope.onnx"), "--out", str(out), "--quiet"]) == 1
    assert "model file not found" in capsys.readouterr().err and not out.exists()

    run = [str(bag), "--model", str(tiny_model), "--out", str(out), "--quiet", "--report-frames", "1"]
    assert main([*run, "--threads", "1", "-p", "output_resolution:=model", "--no-cloud"]) == 0
    printed = capsys.readouterr().out
    assert "latency end-to-end p50" in printed and str(out / "report.html") in printed
    results = json.loads((out / "results.json").read_text())
    assert results["inputs"]["depth_size"] == [104, 32]  # -p output_resolution:=model reached the pipeline
    assert results["outputs"]["bag_topics"][:2] == ["/depth/image", "/depth/camera_info"]
    assert "/depth/points" not in results["outputs"]["bag_topics"]
    # An existing output is kept unless --force.
    assert main(run) == 1
    assert "exists already" in capsys.readouterr().err
    assert main([*run, "--force", "-p", "scale_mode:=bogus"]) == 1
    assert "invalid node parameter: parameter scale_mode: 'bogus'" in capsys.readouterr().err
    assert main([*run, "--force"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".cli_out")) == []


def test_node_parameter_file_and_overrides(tmp_path: Path) -> None:
    """The replay reads the node's ROS 2 parameter YAML (nested names flattened as ROS does)."""
    from depth_node.evaluation.replay_cli import build_parser, options_from_args
    from depth_node.runtime.parameters import ParameterError, load_params_file

    params = tmp_path / "depth.yaml"
    params.write_text(
        "/**:\n  ros__parameters:\n    output_resolution: model\n    camera_height: 1.5\n"
        "    input_qos:\n      depth: 2\n"
    )
    assert load_params_file(params) == {
        "output_resolution": "model",
        "camera_height": 1.5,
        "input_qos.depth": 2,
    }
    args = build_parser().parse_args(
        ["bag", "--params-file", str(params), "-p", "camera_height:=1.7", "--threads", "2", "--no-cloud"]
    )
    options = options_from_args(args)
    assert options.node_params == {
        "output_resolution": "model",
        "camera_height": 1.7,
        "input_qos.depth": 2,
        "threads": 2,
        "publish_points": False,
    }
    (tmp_path / "bad.yaml").write_text("other_node:\n  ros__parameters: {a: 1}\n")
    with pytest.raises(ParameterError, match="no '/\\*\\*' or 'depth_node' section"):
        load_params_file(tmp_path / "bad.yaml")


def test_every_option_reaches_the_replay_options(tmp_path: Path) -> None:
    defaults = options_from_args(build_parser().parse_args(["drive"]))
    assert defaults.bag == Path("drive") and defaults.model is None and defaults.out is None
    assert (defaults.gt, defaults.gt_topic, defaults.T_cam_lidar) == ("auto", None, None)
    assert (defaults.min_depth, defaults.max_depth, defaults.garg_crop) == (MIN_DEPTH, MAX_DEPTH, False)
    assert defaults.sync_tolerance == 0.05 and defaults.report_frames == 6 and defaults.node_params == {}
    assert defaults.copy_inputs and defaults.progress and not defaults.realtime and not defaults.force
    assert defaults.storage is None and defaults.max_frames is None

    args = build_parser().parse_args(
        [
            *("drive.mcap", "--model", "m.onnx", "--out", "o", "--force"),
            *("--image-topic", "/front/image", "--camera-info-topic", "/front/camera_info"),
            *("--gt", "lidar", "--gt-topic", "/velodyne", "--T-cam-lidar", "1 2 3 0 0 0 1"),
            *("--min-depth", "0.5", "--max-depth", "50", "--garg-crop", "--sync-tolerance", "0.02"),
            *("--report-frames", "2", "--realtime", "--max-frames", "7", "--storage", "mcap"),
            *("--providers", "cuda, cpu,", "--no-copy-inputs", "--quiet"),
        ]
    )
    o = options_from_args(args)
    assert (o.bag, o.model, o.out, o.force) == (Path("drive.mcap"), Path("m.onnx"), Path("o"), True)
    assert (o.image_topic, o.camera_info_topic) == ("/front/image", "/front/camera_info")
    assert (o.gt, o.gt_topic) == ("lidar", "/velodyne")
    np.testing.assert_allclose(o.T_cam_lidar, make_transform(np.eye(3), [1, 2, 3]))
    assert (o.min_depth, o.max_depth, o.garg_crop, o.sync_tolerance) == (0.5, 50.0, True, 0.02)
    assert (o.report_frames, o.realtime, o.max_frames, o.storage) == (2, True, 7, "mcap")
    assert o.node_params == {"providers": ["cuda", "cpu"]}
    assert not o.copy_inputs and not o.progress


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["bag", "-p", "threads=2"], "expected name:=value, got 'threads=2'"),
        (["bag", "--T-cam-lidar", "1 2 3"], "--T-cam-lidar"),
        (["bag", "--gt", "stereo"], "invalid choice: 'stereo'"),
    ],
)
def test_malformed_arguments_are_usage_errors(argv: list[str], message: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_a_bad_parameter_file_is_one_error_line(tmp_path: Path, capsys) -> None:
    params = tmp_path / "other.yaml"
    params.write_text("other_node:\n  ros__parameters: {a: 1}\n")
    assert main([str(tmp_path / "bag"), "--params-file", str(params), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("depth-replay: error: ") and err.count("\n") == 1
    assert "no '/**' or 'depth_node' section" in err


def test_each_bad_model_is_one_error_line_and_leaves_no_output(
    tmp_path: Path, capfd, write_small_bag
) -> None:
    """test/onnx_models.py's bad model files: exit 1, one line on stderr (ONNX Runtime's own C++
    output included, hence capfd), nothing on stdout, no output folder or temporary sibling."""
    bag = write_small_bag(tmp_path / "bag", frames=1)
    for kind, model in bad_model_files(tmp_path / "models").items():
        out = tmp_path / f"out_{kind}"
        code = main([str(bag), "--model", str(model), "--out", str(out), "--quiet", "--providers", "cpu"])
        captured = capfd.readouterr()
        assert code == 1, kind
        assert captured.err.startswith("depth-replay: error: ") and captured.err.count("\n") == 1, (
            captured.err
        )
        assert model.name in captured.err and captured.out == "", kind
        assert not [p for p in tmp_path.iterdir() if p.name.startswith((f"out_{kind}", f".out_{kind}."))]


def _results(metrics: bool) -> dict:
    scores = dict.fromkeys(("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3"), 0.125)
    return {
        "metrics": {"metric": scores, "median_scaled": scores} if metrics else None,
        "evaluation": {"gt_source": "depth image /gt", "median_scale_mean": 1.05, "median_scale_std": 0.02},
        "frames": {"processed": 9, "total": 10, "dropped": 1, "bad": 0, "scored": 9},
        "latency_ms": {"end_to_end": {"p50": 12.34, "p95": 20.0, "p99": 30.0}} if metrics else {},
        "fps": {"pipeline": 80.0, "throughput": 50.0, "recorded": 10.0},
        "realtime": metrics,
        "provider": "CPUExecutionProvider",
        "warnings": ["something odd"],
        "outputs": {"report": "/o/report.html", "bag": "/o/depth_bag", "json": "/o/results.json"},
    }


def test_summary_text_with_and_without_ground_truth() -> None:
    text = summary_text(ReplayResult(Path("/o"), _results(metrics=True)))
    lines = text.splitlines()
    assert lines[0].split() == ["abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3"]
    assert lines[1].startswith("metric (runtime scale)") and lines[1].split()[-1] == "0.1250"
    assert lines[2].startswith("median-scaled")
    assert "scored 9 frames against depth image /gt, median scale 1.050 ± 0.020" in text
    assert "frames 9/10 processed, 1 dropped, 0 bad  (real time)" in text
    assert "latency end-to-end p50 12.3 ms" in text and "recorded 10.0 fps  [CPUExecutionProvider]" in text
    assert "warning: something odd" in text
    assert lines[-3:] == ["report  /o/report.html", "bag     /o/depth_bag", "results /o/results.json"]

    text = summary_text(ReplayResult(Path("/o"), _results(metrics=False)))
    assert text.splitlines()[0] == "no ground truth scored"
    assert "latency" not in text and "(real time)" not in text
