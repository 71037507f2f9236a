"""benchmarks/bench_models.py runs end to end on a small network and writes what it printed."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
if str(BENCHMARKS) not in sys.path:  # a folder of scripts, not a package
    sys.path.insert(0, str(BENCHMARKS))


@pytest.fixture
def restore_torch_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_bench_models_reports_cost_and_peak_share_per_precision(tmp_path, capsys, restore_torch_threads):
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
