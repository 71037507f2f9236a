"""benchmarks/bench_models.py and bench_startup.py run end to end on small models and write JSON."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
if str(BENCHMARKS) not in sys.path:  # a folder of scripts, not a package
    sys.path.insert(0, str(BENCHMARKS))


def test_bench_models_reports_cost_and_peak_share_per_precision(tmp_path, capsys):
    torch = pytest.importorskip("torch")  # exports with training.export: not on a runtime-only machine
    threads = torch.get_num_threads()
    try:
        _run_bench_models(tmp_path, capsys)
    finally:
        torch.set_num_threads(threads)


def _run_bench_models(tmp_path, capsys):
    bench = importlib.import_module("bench_models")
    out = tmp_path / "models.json"
    argv = ["--models", "mobilenetv3_large:light", "--size", "128x64", "--threads", "1", "--runs", "2"]
    assert bench.main([*argv, "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["size"] == [128, 64] and set(report["matmul_peak_gops"]) == {"fp32", "int8"}
    rows = {row["precision"]: row for row in report["models"]}
    assert set(rows) == {"fp32", "int8"}
    for row in rows.values():
        assert row["ms"] > 0 and row["gflops"] == pytest.approx(2 * row["gmac"] / (row["ms"] / 1000))
        assert 0 < row["peak_share"] < 1.5  # a share, not a unit slip of 1000
    printed = capsys.readouterr().out
    assert "mobilenetv3_large:light" in printed and "int8 speed-up" in printed


def test_bench_startup_times_first_start_restart_and_frames_per_provider(tmp_path, capsys):
    from onnx_models import make_linear_depth_model

    bench = importlib.import_module("bench_startup")
    model = make_linear_depth_model(tmp_path / "m.onnx")
    out = tmp_path / "startup.json"
    assert (
        bench.main(["--model", str(model), "--providers", "tensorrt,cpu", "--frames", "3", "--out", str(out)])
        == 0
    )
    rows = {row["provider"]: row for row in json.loads(out.read_text())["rows"]}
    if "TensorrtExecutionProvider" not in json.loads(out.read_text())["available"]:
        assert rows["tensorrt"]["ran_on"] == "not available here"  # said, not timed
    cpu = rows["cpu"]
    assert cpu["ran_on"] == "CPUExecutionProvider" and cpu["file"] == "m.onnx" and cpu["precision"] == "fp32"
    assert cpu["first_start_s"] > 0 and cpu["restart_s"] > 0 and cpu["ms_per_frame"] > 0
    assert "m.onnx" in capsys.readouterr().out
