"""Overload and soak of the real depth node on CI sizes (benchmarks/reliability_harness.py).

The benchmark (benchmarks/bench_reliability.py) runs the same harness for a minute and 10,000 frames
with the demo model and writes docs/RELIABILITY.md; here a tiny real ONNX model, a few seconds of
overload and a few hundred soak frames. The checks are counts and bounds, never timing targets.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from onnx_models import make_linear_depth_model

from depth_node.runtime.conversions import numpy_to_image
from depth_node.runtime.estimator import DepthEstimator
from depth_node.runtime.message_types import rosbags_types, stamp_header
from depth_node.runtime.messages import camera_info_from_K
from depth_node.runtime.parameters import validate_parameters

ROOT = Path(__file__).resolve().parents[1]
WIDTH, HEIGHT = 640, 192  # the car's camera size in the benchmark
MODEL_H, MODEL_W = 96, 320  # the demo model's input size
LEAK_BOUND = 30 * 2**20  # bytes of RSS growth over a CI soak (allocator noise is far below)

BENCHMARKS = ROOT / "benchmarks"
if str(BENCHMARKS) not in sys.path:  # a folder of scripts, not a package
    sys.path.insert(0, str(BENCHMARKS))
harness = importlib.import_module("reliability_harness")


@pytest.fixture
def ros():
    # Per test: the benchmark's own run (last test) enters and leaves the stand-in itself.
    with harness.ros_api() as api:
        yield api


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_linear_depth_model(tmp_path_factory.mktemp("overload") / "linear.onnx", MODEL_H, MODEL_W)


@pytest.fixture(scope="module")
def camera():
    return harness.Camera.pattern(WIDTH, HEIGHT)


def _params(model: Path) -> dict[str, Any]:
    return {"model_path": str(model), "providers": ["cpu"], "threads": 1}


# --- overload -------------------------------------------------------------------------------------
def test_overload_at_three_times_the_max_rate_counts_every_frame_and_never_queues(ros, model, camera):
    with harness.node_under_test(ros, _params(model), camera, points=True) as nut:
        single = harness.single_frame(nut, frames=10, warmup=3)
        assert single.latency["count"] == 10 and nut.stats.dropped_by_reason["superseded"] == 0
        result = harness.overload(nut, 3 * single.max_rate_hz, seconds=3.0, trend_window_s=1.0)
        frames_in, frames_out, dropped = nut.counters()

    assert result.drained and result.lost_before_node == 0
    assert result.sent == result.arrived == frames_in - 13  # the single-frame run sent 13
    assert result.sent == result.published + sum(result.dropped_by_reason.values())  # exactly
    assert frames_in == frames_out + sum(dropped.values())
    assert result.identity_holds
    assert result.dropped_by_reason["superseded"] > 0
    assert result.dropped == result.dropped_by_reason["superseded"]  # good frames: no other reason
    assert result.received == result.published  # every published depth image reached the subscriber
    assert result.latency["count"] == result.published
    assert result.timing["wait"]["count"] == result.timing["service"]["count"] == result.published
    # Each frame's own wait and service (the finish thread publishes frame N after frame N+1 is taken).
    assert 0.0 <= result.timing["wait"]["p99_ms"] < math.inf
    assert 0.0 < result.timing["service"]["p50_ms"] < math.inf
    # One frame per stage at most (in the mailbox, being prepared, prepared and waiting, in the
    # network, being finished beside the next one's network): nothing queues up.
    assert 1 <= result.max_in_flight <= harness.MOST_IN_FLIGHT
    # A queue would add a frame period of latency per frame: seconds by the last third, not ms.
    first, last = result.first_window["latency"], result.last_window["latency"]
    assert first["count"] > 0 and last["count"] > 0
    assert last["p50_ms"] < 3 * first["p50_ms"] + 50.0, (first, last)


# --- soak -----------------------------------------------------------------------------------------
def test_soak_keeps_memory_file_descriptors_and_threads_flat(ros, model, camera):
    with harness.node_under_test(ros, _params(model), camera, points=True) as nut:
        result = harness.soak(nut, frames=300, warmup_frames=60, sample_every=60)

    assert result.published == 300 and result.dropped_by_reason == {}
    assert result.at_end.fds == result.after_warmup.fds
    assert result.at_end.threads == result.after_warmup.threads
    assert result.at_end.os_threads == result.after_warmup.os_threads
    assert [index for index, _ in result.rss_samples] == [60, 120, 180, 240, 300]
    # Keeping one 368 kB camera image per frame would add ~90 MB over these 240 frames (an absolute
    # bound: the percentage depends on what else this test process holds).
    growth = result.at_end.rss_bytes - result.after_warmup.rss_bytes
    assert growth < LEAK_BOUND, result.rss_samples


def test_the_soak_sees_a_leak_of_memory_and_file_descriptors(ros, model, camera):
    """The soak's figures can fail: a node that keeps every frame and a file per frame shows both."""
    kept: list[Any] = []
    opened: list[int] = []
    with harness.node_under_test(ros, _params(model), camera, points=False) as nut:
        frame_path = nut.node.frame_path
        prepare = frame_path.prepare

        def leaky_prepare(image: Any, *args: Any, **kwargs: Any) -> Any:
            kept.append((image, np.ones(2**20, np.uint8)))  # the frame and 1 MiB (written: resident)
            opened.append(os.open(os.devnull, os.O_RDONLY))
            return prepare(image, *args, **kwargs)

        frame_path.prepare = leaky_prepare  # the node calls node.frame_path.prepare per frame
        try:
            result = harness.soak(nut, frames=150, warmup_frames=50, sample_every=50)
        finally:
            for fd in opened:
                os.close(fd)
    assert result.published == 150
    assert result.at_end.fds - result.after_warmup.fds == 100
    growth = result.at_end.rss_bytes - result.after_warmup.rss_bytes
    assert growth > 100 * 2**20 > LEAK_BOUND, result.rss_samples  # 100 frames after the warm-up


# --- bad-input cases ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """The corpus's case interface (test/bad_inputs.py), for cases made here."""

    name: str
    kind: str
    target: str
    expect: str
    build: Callable[..., Any]
    check: Callable[[Any], bool] | None = None


def _frame(types: Any, stamp: int, rgb: np.ndarray, encoding: str = "rgb8", info_size=(96, 32)) -> tuple:
    header = stamp_header(types, stamp, "camera_optical")
    K = np.array([[60.0, 0, 47.5], [0, 60.0, 15.5], [0, 0, 1]])
    return numpy_to_image(rgb, encoding, header, types), camera_info_from_K(K, *info_size, header, types)


GOOD = np.full((32, 96, 3), 120, np.uint8)


def test_frame_cases_run_through_the_frame_path_with_outcome_and_time_limit(model):
    release = threading.Event()

    def hangs(types: Any, stamp: int) -> tuple:
        release.wait(10.0)
        return _frame(types, stamp, GOOD)

    def broken(types: Any, stamp: int) -> tuple:
        raise ValueError("no such image")

    cases = [
        Case(
            "good",
            "sizes",
            "frame",
            "ok",
            lambda t, s: _frame(t, s, GOOD),
            check=lambda out: out.rgb.shape == (32, 96, 3),
        ),
        Case("wrong check", "sizes", "frame", "ok", lambda t, s: _frame(t, s, GOOD), check=lambda out: False),
        Case(
            "depth image",
            "encodings",
            "frame",
            "bad_encoding",
            lambda t, s: _frame(t, s, GOOD[..., 0].astype(np.float32), "32FC1"),
        ),
        Case(
            "mismatch expected ok",
            "sizes",
            "frame",
            "ok",
            lambda t, s: _frame(t, s, GOOD, info_size=(64, 32)),
        ),
        Case(
            "same stamp twice", "stamps", "stamps", "duplicate_stamp", lambda t, s: [_frame(t, s, GOOD)] * 2
        ),
        Case("a model case", "models", "model", "error", lambda folder: folder),
        Case("broken builder", "sizes", "frame", "ok", broken),
        Case("hangs", "sizes", "frame", "ok", hangs),
    ]
    settings = validate_parameters(_params(model))
    estimator = DepthEstimator(model, providers=["cpu"], threads=1)
    try:
        outcomes = harness.run_frame_cases(cases, estimator, settings, rosbags_types(), limit_s=1.0)
    finally:
        release.set()
    got = {o.name: o.outcome for o in outcomes}
    assert "a model case" not in got  # only frame and stamps cases run through the frame path
    assert got["good"] == "ok" and got["depth image"] == "bad_encoding"
    assert got["wrong check"] == "ok, but the output is wrong"
    assert got["mismatch expected ok"] == "size_mismatch"
    assert got["same stamp twice"] == "duplicate_stamp"
    assert got["broken builder"] == "build failed: ValueError: no such image"
    assert got["hangs"] == "timeout (> 1 s)"
    expected = {o.name for o in outcomes if o.as_expected}
    assert expected == {"good", "depth image", "same stamp twice"}

    # The benchmark's section: the corpus per target, and every case that went otherwise by name.
    bench = importlib.import_module("bench_reliability")
    report = bench.bad_input_report(cases, outcomes, 1.0)
    assert report["per_target"] == {
        "frame": {"kinds": 2, "cases": 6},
        "model": {"kinds": 1, "cases": 1},
        "stamps": {"kinds": 1, "cases": 1},
    }
    assert (report["run_through_frame_path"], report["as_expected"]) == (7, 3)
    lines = bench.bad_input_lines(report)
    assert "| hangs | ok | timeout (> 1 s) |" in lines
    assert "| mismatch expected ok | ok | size_mismatch |" in lines
    assert not any(line.startswith("| good |") for line in lines)  # as expected: not listed


# --- the benchmark's report -----------------------------------------------------------------------
def test_the_benchmark_writes_its_own_figures_into_the_doc(model, tmp_path, capsys):
    """A short run of the benchmark itself: the doc carries the JSON's figures, "not run" where skipped."""
    bench = importlib.import_module("bench_reliability")
    doc, out = tmp_path / "RELIABILITY.md", tmp_path / "reliability.json"
    code = bench.main(
        [
            *("--model", str(model), "--width", "192", "--height", "64", "--camera-frames", "2"),
            *("--warmup", "2", "--single-frames", "5", "--overload-s", "1.5"),
            *("--soak-frames", "40", "--soak-warmup", "10", "--crash-kills", "0", "--no-bad-inputs"),
            *("--doc", str(doc), "--out", str(out)),
        ]
    )
    assert code == 0
    report, text = json.loads(out.read_text()), doc.read_text()
    overload, soak = report["node"]["overload"], report["node"]["soak"]
    assert overload["sent"] == overload["published"] + overload["dropped"]
    assert (
        f"{overload['sent']} sent = {overload['published']} published + {overload['dropped']} dropped" in text
    )
    assert f"| frames sent | {overload['sent']} |" in text
    assert f"{soak['published']} of 40 frames published" in text
    assert f"({soak['rss_growth_pct']:+.2f}%)" in text
    assert "## Crash safety\n\nnot run: --crash-kills 0." in text
    assert "## Bad input\n\nnot run: --no-bad-inputs." in text  # the corpus: the test above
    assert report["command"] in text and "--crash-kills 0" in report["command"]
    status = report["fuzzing"]["status"]  # listed from test/test_fuzz.py, or "not run", never made up
    assert status == "listed" or status.startswith("not run: "), status
    assert capsys.readouterr().out.count("## Overload") == 1  # the report is printed as well

    again = tmp_path / "again.md"  # --from-json: the same doc from the JSON, nothing rerun
    assert bench.main(["--from-json", str(out), "--doc", str(again)]) == 0
    assert again.read_text() == text


def test_crash_safety_figures_are_shown_as_the_crash_loop_returns_them():
    """Whatever bench_crash_safety.run returns: nested figures by dotted name, lists of records as tables."""
    bench = importlib.import_module("bench_reliability")
    figures = {
        "kills": {"kills": 3, "ok": True, "final_resume": {"stderr": "two\nlines"}},
        "disk_full": [{"name": "checkpoint", "ok": True}, {"name": "export", "limit": 2**20, "ok": False}],
        "wall_s": 12.345678,
    }
    lines = bench.crash_lines({"status": "ran", "kills": 3, "seed": 0, "figures": figures})
    assert "| kills.kills | 3 |" in lines and "| kills.final_resume.stderr | two lines |" in lines
    assert "| wall_s | 12.35 |" in lines
    assert "| name | ok | limit |" in lines
    assert "| checkpoint | True |  |" in lines and "| export | False | 1048576 |" in lines
    assert bench.crash_lines({"status": "not run: --crash-kills 0"}) == ["not run: --crash-kills 0."]
