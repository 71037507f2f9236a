"""The replay's HTML report and its pictures (real replay on the synthetic bag, real PNG files)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from onnx_models import make_linear_depth_model

from depth_node.colormap import spread_sparse_depth
from depth_node.evaluation import report
from depth_node.evaluation.replay import ReplayOptions, replay
from depth_node.metrics import relative_error_map


@pytest.fixture(scope="module")
def report_run(sim_bag: Path, tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("report")
    model = make_linear_depth_model(tmp / "m.onnx", height=32, width=104, a=2.0, b=30.0)
    options = ReplayOptions(
        bag=sim_bag,
        model=model,
        out=tmp / "out",
        progress=False,
        report_frames=3,
        max_frames=6,
        node_params={"providers": ["cpu"], "threads": 1},
    )
    return replay(options)


def test_report_exists_and_every_image_it_references_exists(report_run) -> None:
    page = report_run.report
    assert page.is_file()
    text = page.read_text()
    sources = re.findall(r'<img src="([^"]+)"', text)
    assert len(sources) == 3 + 2  # 3 frame panels, metrics over time, latency
    for source in sources:
        assert not Path(source).is_absolute()  # the folder can be moved or zipped
        image = cv2.imread(str(page.parent / source))
        assert image is not None and image.shape[0] > 100 and image.shape[1] > 400
    assert "report_files/metrics_over_time.png" in sources and "report_files/latency.png" in sources


def test_report_shows_the_numbers_of_results_json(report_run) -> None:
    text = report_run.report.read_text()
    results = json.loads((report_run.out_dir / "results.json").read_text())
    assert f"{results['metrics']['metric']['abs_rel']:.4f}" in text
    assert f"{results['metrics']['median_scaled']['a1']:.4f}" in text
    assert f"{results['latency_ms']['end_to_end']['p95']:.2f}" in text
    assert "/ground_truth/depth" in text and "ros2 bag play" in text


def test_frame_panel_draws_sparse_lidar_ground_truth(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    pred = np.full((60, 200), 10.0, np.float32)
    pred[:15] = np.nan  # sky
    gt = np.full((60, 200), np.nan, np.float32)
    rows, cols = rng.integers(20, 60, 300), rng.integers(0, 200, 300)
    gt[rows, cols] = rng.uniform(5, 40, 300)
    rgb = rng.integers(0, 255, (120, 400, 3), dtype=np.uint8)  # camera size differs from depth size
    path = report.frame_panel(tmp_path / "p.png", rgb, pred, gt, "test frame")
    image = cv2.imread(str(path))
    assert image is not None and image.shape[1] == 900

    # Spreading keeps the nearest point where blobs overlap and never touches dense maps.
    sparse = np.full((5, 5), np.nan, np.float32)
    sparse[2, 1], sparse[2, 3] = 10.0, 5.0
    grown = spread_sparse_depth(sparse, radius=1)
    assert grown[2, 2] == pytest.approx(5.0) and grown[2, 0] == pytest.approx(10.0)
    dense = np.full((5, 5), 3.0, np.float32)
    assert spread_sparse_depth(dense) is dense
    err = relative_error_map(np.array([[2.0, np.nan]]), np.array([[4.0, 4.0]]))
    assert err[0, 0] == pytest.approx(-0.5) and np.isnan(err[0, 1])


def test_page_without_ground_truth_says_so(tmp_path: Path) -> None:
    summary = {"bag": "/data/x", "metrics": None, "frames": {"total": 3}, "warnings": ["no ground truth"]}
    page = report.write_html(tmp_path / "r.html", summary, {"frames": [], "metrics": [], "latency": []})
    text = page.read_text()
    assert "accuracy not available" in text and "no ground truth" in text
    assert report.plot_metrics_over_time(tmp_path / "m.png", [{"index": 0, "metric": None}]) is None
    assert report.plot_latency(tmp_path / "l.png", {}) is None
