"""The replay's HTML report and its pictures (real replay on the synthetic bag, real PNG files)."""

from __future__ import annotations

import html
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import cv2
import numpy as np
import pytest
from onnx_models import make_linear_depth_model
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from depth_node.colormap import spread_sparse_depth
from depth_node.evaluation import report
from depth_node.evaluation.replay import ReplayOptions, replay
from depth_node.metrics import relative_error_map
from depth_node.runtime.conversions import numpy_to_image
from depth_node.runtime.message_types import rosbags_types
from depth_node.runtime.messages import camera_info_from_K


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


# ---------------------------------------------------------------- a recording is untrusted input

SCRIPT = "<script>alert(1)</script>"
HOSTILE = "\"'<>&"
# What a bag and a model may carry: topic names (ROS forbids these characters, a bag's metadata does
# not), frame ids, encodings, the bag's and the model's file names, the model's metadata_props.
HOSTILE_TOPIC = f"/cam{HOSTILE}{SCRIPT}"
HOSTILE_ENCODING = '<script>alert("enc")</script>&\''
HOSTILE_BAG = f"bag{HOSTILE}<script>alert(2)"  # no '/' in a file name
HOSTILE_MODEL_META = {
    "name": "<script>alert(3)</script>",
    "backbone": HOSTILE,
    "training_mode": "<img src=x onerror=alert(4)>",
    "source": "</code><script>alert(5)</script>",
}
PAGE_TAGS = {"html", "head", "meta", "title", "style", "body", "h1", "h2", "p", "code", "div", "table"}
PAGE_TAGS |= {"tr", "th", "td", "img"}
PAGE_ATTRIBUTES = {"charset", "class", "src", "alt"}


class _Page(HTMLParser):
    """The page as a browser parses it: tags, attributes, and the text shown."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.text: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _write_hostile_bag(path: Path) -> Path:
    """A real rosbag2: hostile topic names and frame_id; the third frame has a hostile encoding."""
    typestore, types = get_typestore(Stores.ROS2_HUMBLE), rosbags_types()
    K = np.array([[50.0, 0, 32.0], [0, 50.0, 16.0], [0, 0, 1]])
    time_type = typestore.types["builtin_interfaces/msg/Time"]
    with Writer(path, version=8, storage_plugin=StoragePlugin.SQLITE3) as writer:
        c_img = writer.add_connection(
            f"{HOSTILE_TOPIC}/image_raw", "sensor_msgs/msg/Image", typestore=typestore
        )
        c_info = writer.add_connection(
            f"{HOSTILE_TOPIC}/camera_info", "sensor_msgs/msg/CameraInfo", typestore=typestore
        )
        for i in range(4):
            t = 1_000_000_000 + i * 100_000_000
            header = types.Header(stamp=time_type(sec=t // 10**9, nanosec=t % 10**9), frame_id=SCRIPT)
            info = camera_info_from_K(K, 64, 32, header, types)
            writer.write(c_info, t, typestore.serialize_cdr(info, "sensor_msgs/msg/CameraInfo"))
            image = numpy_to_image(np.full((32, 64, 3), 40 * i + 20, np.uint8), "rgb8", header, types)
            if i == 2:
                image.encoding = HOSTILE_ENCODING
            writer.write(c_img, t, typestore.serialize_cdr(image, "sensor_msgs/msg/Image"))
    return path


def test_nothing_from_a_bag_or_model_becomes_markup(tmp_path: Path) -> None:
    """Replayed end to end, every hostile string shows as text: no tag, attribute or script of its own."""
    bag = _write_hostile_bag(tmp_path / HOSTILE_BAG)
    model_dir = tmp_path / f"model{HOSTILE}"
    model_dir.mkdir()
    model = make_linear_depth_model(model_dir / f"m{HOSTILE}.onnx", metadata=HOSTILE_MODEL_META)
    options = ReplayOptions(
        bag=bag,
        model=model,
        out=tmp_path / f"out{HOSTILE}",
        progress=False,
        report_frames=2,
        node_params={"providers": ["cpu"], "threads": 1},
    )
    result = replay(options)
    assert result.results["frames"]["bad"] == 1  # the hostile encoding: dropped, named in a warning
    text = result.report.read_text()
    assert "<script" not in text.lower()  # the page has no script of its own; none came in
    assert html.escape(SCRIPT) in text

    page = _Page(text)
    assert {tag for tag, _ in page.tags} <= PAGE_TAGS
    assert {name for _, attrs in page.tags for name, _ in attrs} <= PAGE_ATTRIBUTES
    sources = [value for tag, attrs in page.tags if tag == "img" for name, value in attrs if name == "src"]
    assert len(sources) == 2 + 1 and all((result.report.parent / s).is_file() for s in sources)
    shown = "".join(page.text)
    for value in (
        f"{HOSTILE_TOPIC}/image_raw",  # camera topic
        f"{HOSTILE_TOPIC}/camera_info",
        SCRIPT,  # camera frame
        HOSTILE_ENCODING[:-1],  # in the bad-frame warning (a repr there: its ' is backslashed)
        HOSTILE_BAG,  # title, heading, no-ground-truth warning
        str(model.resolve()),
        *HOSTILE_MODEL_META.values(),
        str(result.out_dir.resolve()),
    ):
        assert value in shown, value


def test_image_paths_are_url_quoted_and_text_in_pictures_is_not_mathtext(tmp_path: Path) -> None:
    name = f"{report.REPORT_FILES}/a b{HOSTILE}#?.png"
    page = report.write_html(
        tmp_path / "r.html", {"bag": "x"}, {"frames": [name], "metrics": [], "latency": []}
    )
    (tag,) = [attrs for tag, attrs in _Page(page.read_text()).tags if tag == "img"]
    assert dict(tag)["src"] == f"{report.REPORT_FILES}/a%20b%22%27%3C%3E%26%23%3F.png"
    # '$' opens mathtext in matplotlib; unbalanced, it would raise when the panel is drawn.
    rgb = np.zeros((8, 16, 3), np.uint8)
    depth = np.full((8, 16), 5.0, np.float32)
    path = report.frame_panel(tmp_path / "p.png", rgb, depth, depth, r"camera $\frac{$ frame")
    assert cv2.imread(str(path)) is not None
    assert report.plot_latency(tmp_path / "l.png", {"end_to_end": [1.0, 2.0], r"$\undefined$": [1.0]})
