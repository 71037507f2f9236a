"""The demo's plumbing (world -> bag -> replay -> summary) at a tiny size with a tiny real model."""

from __future__ import annotations

import json
from pathlib import Path

from onnx_models import make_linear_depth_model

from depth_node.evaluation import demo


def test_demo_runs_end_to_end_at_a_tiny_size(tmp_path: Path, capsys) -> None:
    model = make_linear_depth_model(tmp_path / "m.onnx", height=16, width=48, a=2.0, b=30.0)
    out = tmp_path / "demo"
    argv = ["--frames", "3", "--width", "192", "--height", "64", "--seed", "1234"]
    argv += ["--model", str(model), "--out", str(out), "--quiet", "--threads", "1"]
    assert demo.main(argv) == 0
    printed = capsys.readouterr().out
    # KITTI's field of view at 192 px wide: fx = 721.5377 * 192 / 1242 = 111.5 px.
    bag = out / "synthetic_seed1234_3f_192x64_fx112_sqlite3"
    assert (bag / "metadata.yaml").is_file()
    assert (out / "replay" / "report.html").is_file() and (out / "replay" / "depth_bag").is_dir()
    results = json.loads((out / "replay" / "results.json").read_text())
    assert results["frames"]["scored"] == 3 and results["inputs"]["gt_depth_topic"] == "/ground_truth/depth"
    assert "median-scaled" in printed and str(out / "replay" / "report.html") in printed
    headline = json.loads(printed.strip().splitlines()[-1].split(": ", 1)[1])
    assert headline["abs_rel"] == results["metrics"]["metric"]["abs_rel"]

    # A second run reuses the bag and replaces its own replay.
    assert demo.main(argv) == 0
    assert "reusing" in capsys.readouterr().out


def test_demo_without_model_gives_one_clear_line(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "nope.onnx"
    assert demo.main(["--model", str(missing), "--out", str(tmp_path / "o"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err == f"depth-demo: error: model file not found: {missing}\n"
    assert not (tmp_path / "o").exists()
    # The default model's error names where it looked and what to do.
    if not any(any(d.glob("*.onnx")) for d in demo.model_dirs()):
        try:
            demo.default_model()
        except demo.DemoError as error:
            assert demo.DEMO_MODEL_NAME in str(error) and "--model" in str(error)
        else:
            raise AssertionError("expected DemoError")
