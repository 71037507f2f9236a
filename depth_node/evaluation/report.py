"""The replay's visual report: PNG pictures (matplotlib, no pyplot) and one HTML page that shows them.

Everything here works from plain numbers and numpy arrays, so the report can be rebuilt from a
replay's ``results.json`` and its frame panels without ROS or a model. Layout of a report folder::

    report.html                 the page (relative links only: the folder can be moved or zipped)
    report_files/*.png          frame panels, metrics over time, latency histogram

A recording is untrusted input: topic names, frame ids, encodings, paths and model metadata can hold
anything (``<script>``, quotes). Every value put into the page goes through :func:`_e` (HTML-escaped,
quotes too) or :func:`_image` (URL-quoted, then escaped); the page has no script of its own. Text drawn
by matplotlib is drawn with ``parse_math=False``: a ``$`` in it is a character, never mathtext.
"""

from __future__ import annotations

import html
import math
import urllib.parse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from matplotlib import colormaps
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from depth_node.colormap import spread_sparse_depth, spread_sparse_depth_error
from depth_node.files import atomic_write_text
from depth_node.metrics import METRIC_NAMES, relative_error_map

REPORT_FILES = "report_files"
DEPTH_CMAP = "magma_r"  # near = bright, far = dark, as depth pictures usually read
ERROR_CMAP = "RdBu_r"  # red: prediction too far, blue: too near
ERROR_RANGE = 0.5  # relative error shown saturates at +-50 %
# Lower-is-better metrics; the a1..a3 accuracies are higher-is-better.
LOWER_IS_BETTER = ("abs_rel", "sq_rel", "rmse", "rmse_log")


def _depth_limits(pred: np.ndarray, gt: np.ndarray | None, cap: float) -> tuple[float, float]:
    """A log colour range shared by prediction and ground truth, robust to a few outliers.

    Taken from the ground truth when there is some (the truth's range is what the picture should
    show; a bad prediction then shows up as saturated colour), else from the prediction.
    """
    values = np.empty(0)
    for depth in (gt, pred):
        if depth is not None and values.size < 50:
            values = depth[np.isfinite(depth) & (depth > 0)].ravel()
    if values.size == 0:
        return 1.0, cap
    low, high = np.percentile(values, [1, 99])
    low = max(float(low), 0.5)
    high = min(max(float(high), low * 2.0), cap)
    return low, high


PANEL_WIDTH_PX = 860  # drawn width of one picture in a frame panel (9 in at 100 dpi, minus colour bar)


def _for_display(image: np.ndarray) -> np.ndarray:
    """Shrink to the drawn size first: Agg then draws ~1.5x fewer pixels, which halves a panel's time.

    Nearest-neighbour for maps (keeps NaN and sparse LiDAR blobs), area averaging for the photo.
    """
    height, width = image.shape[:2]
    if width <= PANEL_WIDTH_PX:
        return image
    size = (PANEL_WIDTH_PX, max(1, round(height * PANEL_WIDTH_PX / width)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if image.ndim == 3 else cv2.INTER_NEAREST)


def _show(ax: Any, image: np.ndarray, title: str, cmap: str | None = None, norm: Any = None) -> Any:
    image = _for_display(image)
    if cmap is not None:
        colour_map = colormaps[cmap].with_extremes(bad="#202020")  # invalid (sky, no LiDAR) dark grey
        artist = ax.imshow(np.ma.masked_invalid(image), cmap=colour_map, norm=norm, interpolation="nearest")
    else:
        artist = ax.imshow(image, interpolation="nearest")
    ax.set_title(title, fontsize=9, loc="left", parse_math=False)
    ax.set_axis_off()
    return artist


def _depth_ticks(low: float, high: float) -> list[float]:
    """Colour-bar ticks in metres: both ends plus round values (1, 2, 3, 5, 10, ...) between them."""
    nice = [m * 10.0**e for e in range(-1, 4) for m in (1, 2, 3, 5)]
    inner = [t for t in nice if low * 1.15 < t < high / 1.15]
    return [low, *inner, high]


def frame_panel(
    path: Path,
    rgb: np.ndarray,
    pred: np.ndarray,
    gt: np.ndarray | None,
    title: str,
    max_depth: float = 80.0,
) -> Path:
    """One PNG: input | predicted depth | ground truth | relative error, stacked for wide images.

    ``pred`` and ``gt`` are metres (NaN = invalid) at the same size; ``rgb`` may be any size.
    """
    rows = 4 if gt is not None else 2
    height, width = pred.shape
    aspect = height / width
    fig = Figure(figsize=(9.0, rows * 8.4 * aspect + 0.35 * rows + 0.4), dpi=100, layout="constrained")
    # A colour-bar column on every row (empty for the input) keeps all pictures the same width.
    grid = fig.add_gridspec(rows, 2, width_ratios=(1.0, 0.018))
    axes = [fig.add_subplot(grid[r, 0]) for r in range(rows)]
    bars = [fig.add_subplot(grid[r, 1]) for r in range(rows)]
    fig.suptitle(title, fontsize=10, x=0.01, ha="left", parse_math=False)
    _show(axes[0], cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA), "input")
    bars[0].set_axis_off()
    low, high = _depth_limits(pred, gt, cap=max_depth)
    norm = LogNorm(vmin=low, vmax=high, clip=True)
    ticks = _depth_ticks(low, high)

    def depth_bar(artist: Any, cax: Any) -> None:
        bar = fig.colorbar(artist, cax=cax, ticks=ticks)
        bar.ax.minorticks_off()
        bar.ax.set_yticklabels([f"{t:.3g}" for t in ticks], fontsize=8)

    depth_bar(_show(axes[1], pred, "predicted depth [m]", DEPTH_CMAP, norm), bars[1])
    if gt is not None:
        depth_bar(_show(axes[2], spread_sparse_depth(gt), "ground truth [m]", DEPTH_CMAP, norm), bars[2])
        error = spread_sparse_depth_error(relative_error_map(pred, gt), gt)
        artist = _show(
            axes[3],
            error,
            "relative error (pred - gt) / gt   red: too far, blue: too near",
            ERROR_CMAP,
            Normalize(-ERROR_RANGE, ERROR_RANGE, clip=True),
        )
        bar = fig.colorbar(artist, cax=bars[3], ticks=[-0.5, -0.25, 0, 0.25, 0.5])
        bar.ax.tick_params(labelsize=8)
    fig.savefig(path)
    return path


class ReportFrames:
    """The frames pictured in the report: evenly over the drive, a dropped or unscored frame handing
    its turn to the next one."""

    def __init__(self, files_dir: Path, total: int, count: int, max_depth: float) -> None:
        self.files_dir, self.count, self.max_depth = files_dir, max(count, 0), max_depth
        self.wanted = list(np.unique(np.linspace(0, max(total - 1, 0), self.count).round().astype(int)))
        self.panels: list[str] = []

    def wants(self, index: int) -> bool:
        return bool(self.wanted) and index >= self.wanted[0] and len(self.panels) < self.count

    def render(
        self, index: int, rgb: np.ndarray, pred: np.ndarray, gt: np.ndarray | None, caption: str
    ) -> None:
        if not self.wants(index):
            return
        while self.wanted and self.wanted[0] <= index:  # this frame stands in for every target up to it
            self.wanted.pop(0)
        name = f"frame_{index:06d}.png"
        frame_panel(self.files_dir / name, rgb, pred, gt, caption, max_depth=self.max_depth)
        self.panels.append(f"{REPORT_FILES}/{name}")


def plot_metrics_over_time(path: Path, per_frame: Sequence[Mapping[str, Any]]) -> Path | None:
    """abs_rel and a1 per frame (metric and median-scaled), and the scale error, against frame index."""
    scored = [f for f in per_frame if f.get("metric")]
    if not scored:
        return None
    index = np.array([f["index"] for f in scored])
    fig = Figure(figsize=(9.0, 6.6), dpi=100, layout="constrained")
    ax_rel, ax_a1, ax_scale = fig.subplots(3, 1, sharex=True)
    for key, label, style in (
        ("metric", "metric (runtime scale)", "-"),
        ("median_scaled", "median-scaled", "--"),
    ):
        ax_rel.plot(index, [f[key]["abs_rel"] for f in scored], style, marker=".", label=label)
        ax_a1.plot(index, [f[key]["a1"] for f in scored], style, marker=".", label=label)
    ax_rel.set_ylabel("abs_rel (lower is better)")
    ax_rel.legend(fontsize=8)
    ax_rel.grid(alpha=0.3)
    ax_a1.set_ylabel("a1 = δ<1.25 (higher is better)")
    ax_a1.set_ylim(0, 1.02)
    ax_a1.grid(alpha=0.3)
    ax_scale.plot(index, [f["median_scale"] for f in scored], marker=".", color="tab:green")
    ax_scale.axhline(1.0, color="grey", lw=0.8)
    ax_scale.set_ylabel("median(gt)/median(pred)\n(1 = metric scale right)")
    ax_scale.set_xlabel("frame")
    ax_scale.grid(alpha=0.3)
    fig.savefig(path)
    return path


def plot_latency(
    path: Path, latencies_ms: Mapping[str, Sequence[float]], end_to_end: str = "end_to_end"
) -> Path | None:
    """Histogram of end-to-end latency with p50/p95/p99 marks, and a box per pipeline stage."""
    total = np.asarray(latencies_ms.get(end_to_end, []), dtype=np.float64)
    if total.size == 0:
        return None
    stages = [name for name in latencies_ms if name != end_to_end and len(latencies_ms[name])]
    fig = Figure(figsize=(9.0, 3.4 + 0.25 * len(stages)), dpi=100, layout="constrained")
    ax_hist, ax_box = fig.subplots(1, 2, width_ratios=(3, 2))
    ax_hist.hist(total, bins=min(40, max(5, total.size // 2)), color="tab:blue", alpha=0.8)
    for q, colour in ((50, "black"), (95, "tab:orange"), (99, "tab:red")):
        value = float(np.percentile(total, q))
        ax_hist.axvline(value, color=colour, ls="--", lw=1, label=f"p{q} {value:.1f} ms")
    ax_hist.set_xlabel("end-to-end latency per frame [ms]")
    ax_hist.set_ylabel("frames")
    ax_hist.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax_hist.legend(fontsize=8)
    if stages:
        stages = stages[::-1]  # first stage at the top
        data = [latencies_ms[name] for name in stages]
        try:
            ax_box.boxplot(data, orientation="horizontal")  # matplotlib >= 3.10
        except TypeError:
            ax_box.boxplot(data, vert=False)
        ax_box.set_yticks(range(1, len(stages) + 1), stages, fontsize=8, parse_math=False)
        ax_box.set_xlabel("stage latency [ms]")
        ax_box.grid(alpha=0.3, axis="x")
    else:
        ax_box.set_axis_off()
    fig.savefig(path)
    return path


# ---------------------------------------------------------------- HTML

_CSS = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; max-width: 1100px; }
h1 { font-size: 22px; margin-bottom: 4px; }
h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #ddd; }
h3 { font-size: 15px; margin-top: 18px; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f3f3f3; }
.kv td { text-align: left; font-family: ui-monospace, monospace; }
.kv td:first-child { font-family: system-ui, sans-serif; font-weight: 600; background: #fafafa; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 12px 0 4px; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 8px 14px; background: #fafafa; }
.card .v { font-size: 20px; font-weight: 600; }
.card .k { font-size: 12px; color: #666; }
img { max-width: 100%; border: 1px solid #ccc; margin: 6px 0; }
.note { color: #666; font-size: 13px; }
.warn { color: #a40; font-weight: 600; }
code { background: #f3f3f3; padding: 1px 4px; }
"""


def _e(value: Any) -> str:
    """Any value as text safe inside HTML elements and quoted attributes alike."""
    return html.escape(str(value), quote=True)


def _fmt(value: Any, digits: int = 4) -> str:
    """A table cell's text: floats rounded, None as a dash, anything else escaped."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.{digits}f}"
    return _e(value)


def _metric_headers() -> str:
    return "".join(f"<th>{name} {'↓' if name in LOWER_IS_BETTER else '↑'}</th>" for name in METRIC_NAMES)


def _metrics_table(metrics: Mapping[str, Mapping[str, float] | None]) -> str:
    header = _metric_headers()
    rows = []
    for label, values in metrics.items():
        cells = "".join(f"<td>{_fmt(values.get(name) if values else None)}</td>" for name in METRIC_NAMES)
        rows.append(f"<tr><td>{_e(label)}</td>{cells}</tr>")
    return f"<table><tr><th></th>{header}</tr>{''.join(rows)}</table>"


def _regions_table(regions: Mapping[str, Mapping[str, Any]]) -> str:
    """One row per motion region and protocol: frames and pixels scored, then the metrics."""
    header = f"<tr><th>region</th><th></th><th>frames</th><th>pixels</th>{_metric_headers()}</tr>"
    rows = []
    for region, scores in regions.items():
        for key, label in (("metric", "metric"), ("median_scaled", "median-scaled")):
            values = scores.get(key) or {}
            cells = "".join(f"<td>{_fmt(values.get(name))}</td>" for name in METRIC_NAMES)
            rows.append(
                f"<tr><td>{_e(region.replace('_', ' '))}</td><td>{_e(label)}</td>"
                f"<td>{_fmt(scores.get('frames'))}</td><td>{_fmt(scores.get('pixels'))}</td>{cells}</tr>"
            )
    return f"<table>{header}{''.join(rows)}</table>"


def _latency_table(latency: Mapping[str, Mapping[str, float]]) -> str:
    columns = ("mean", "p50", "p95", "p99", "max")
    header = "".join(f"<th>{c} [ms]</th>" for c in columns)
    rows = "".join(
        f"<tr><td>{_e(stage)}</td>" + "".join(f"<td>{_fmt(stats.get(c), 2)}</td>" for c in columns) + "</tr>"
        for stage, stats in latency.items()
    )
    return f"<table><tr><th>stage</th>{header}</tr>{rows}</table>"


def _kv_table(items: Mapping[str, Any]) -> str:
    rows = "".join(f"<tr><td>{_e(k)}</td><td>{_fmt(v)}</td></tr>" for k, v in items.items())
    return f'<table class="kv">{rows}</table>'


def _cards(s: Mapping[str, Any]) -> str:
    """The headline numbers as a row of boxes at the top of the page."""
    metrics = s.get("metrics") or {}
    metric, scaled = metrics.get("metric") or {}, metrics.get("median_scaled") or {}
    e2e = (s.get("latency_ms") or {}).get("end_to_end", {})
    frames, fps = s.get("frames", {}), s.get("fps", {})
    cards = [
        ("abs_rel (metric)", _fmt(metric.get("abs_rel"), 3)),
        ("abs_rel (median-scaled)", _fmt(scaled.get("abs_rel"), 3)),
        ("a1 (metric)", _fmt(metric.get("a1"), 3)),
        ("latency p50 / p95", f"{_fmt(e2e.get('p50'), 1)} / {_fmt(e2e.get('p95'), 1)} ms"),
        ("pipeline rate", f"{_fmt(fps.get('pipeline'), 1)} fps"),
        ("frames processed / dropped", f"{_fmt(frames.get('processed'))} / {_fmt(frames.get('dropped'))}"),
    ]
    boxes = "".join(
        f"<div class='card'><div class='v'>{v}</div><div class='k'>{k}</div></div>" for k, v in cards
    )
    return f"<div class='cards'>{boxes}</div>"


def _image(relative: str, alt: str) -> str:
    """An <img> of a file in the report folder: its path URL-quoted ('/' kept), then escaped."""
    return f'<img src="{_e(urllib.parse.quote(relative))}" alt="{_e(alt)}">'


def write_html(
    path: Path,
    summary: Mapping[str, Any],
    images: Mapping[str, Sequence[str]],
) -> Path:
    """Write the HTML page. ``images`` maps a section ("frames", "metrics", "latency") to image
    paths relative to ``path``'s folder; ``summary`` is the replay's results dict (see replay.py)."""
    # Long: the page's sections in the order they appear, each a few lines of HTML.
    s = summary
    frames = s.get("frames", {})
    fps = s.get("fps", {})
    bag_name = Path(str(s.get("bag", ""))).name
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>depth replay: {_e(bag_name)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Depth replay report — {_e(bag_name)}</h1>",
        f"<p class='note'>{_e(s.get('created', ''))} · model "
        f"<code>{_e(s.get('model', {}).get('name', ''))}</code> on "
        f"<code>{_e(s.get('provider', ''))}</code></p>",
    ]
    parts.append(_cards(s))
    for warning in s.get("warnings", []):
        parts.append(f"<p class='warn'>{_e(warning)}</p>")

    parts.append("<h2>Accuracy</h2>")
    metrics = s.get("metrics")
    if metrics:
        parts.append(
            _metrics_table(
                {
                    "metric (runtime's own scale)": metrics.get("metric"),
                    "median-scaled (per frame)": metrics.get("median_scaled"),
                }
            )
        )
        ev = s.get("evaluation", {})
        parts.append(
            f"<p class='note'>Mean over {_e(frames.get('scored', 0))} scored frames (KITTI protocol: frames "
            f"are averaged, not pixels). Ground truth: {_e(ev.get('gt_source'))}; depth range "
            f"({_e(ev.get('min_depth'))}, {_e(ev.get('max_depth'))}) m; "
            f"Garg crop: {_e(ev.get('garg_crop'))}. "
            f"Median scale median(gt)/median(pred) over frames: {_fmt(ev.get('median_scale_mean'), 3)} "
            f"(± {_fmt(ev.get('median_scale_std'), 3)}).</p>"
        )
        if s.get("regions"):
            motion = ev.get("motion_labels") or {}
            parts.append("<h3>Per motion region</h3>")
            parts.append(_regions_table(s["regions"]))
            parts.append(
                f"<p class='note'>Motion labels from {_e(motion.get('topic'))}: static pixels, cars moving "
                "the camera's way (the lead car among them: a photometric loss sees them nearly still), "
                "oncoming cars, and all moving cars. Each region's pixels are scored alone, median-scaled "
                "with the whole frame's median scale (so a region at another scale than the rest shows), "
                "in the frames where the region has ground truth.</p>"
            )
    else:
        parts.append("<p class='warn'>No ground truth was scored: accuracy not available.</p>")
    for rel in images.get("metrics", []):
        parts.append(_image(rel, "metrics over time"))

    parts.append("<h2>Speed</h2>")
    parts.append(
        _kv_table(
            {
                "frames in bag": frames.get("total"),
                "frames processed": frames.get("processed"),
                "frames dropped (newest-frame-wins)": frames.get("dropped"),
                "bad frames skipped": frames.get("bad"),
                "mode": "real time (recorded rate)" if s.get("realtime") else "as fast as possible",
                "recorded camera rate [fps]": _fmt(fps.get("recorded"), 2),
                "pipeline rate 1/mean(end_to_end) [fps]": _fmt(fps.get("pipeline"), 2),
                "throughput incl. bag I/O and scoring [fps]": _fmt(fps.get("throughput"), 2),
            }
        )
    )
    latency = s.get("latency_ms")
    if latency:
        parts.append(_latency_table(latency))
    for rel in images.get("latency", []):
        parts.append(_image(rel, "latency histogram"))

    parts.append("<h2>Frames</h2>")
    parts.append(
        "<p class='note'>Each picture: input image, predicted depth, ground truth (LiDAR points are "
        "drawn enlarged), and the prediction's relative error (metric scale). Depth colours are on a "
        "log scale shared by prediction and ground truth.</p>"
    )
    for rel in images.get("frames", []):
        parts.append(_image(rel, "frame panel"))

    parts.append("<h2>Run</h2>")
    inputs = s.get("inputs", {})
    outputs = s.get("outputs", {})
    model = s.get("model", {})
    parts.append(
        _kv_table(
            {
                "input bag": s.get("bag"),
                "bag storage": inputs.get("storage"),
                "camera topic": f"{inputs.get('image_topic')} ({inputs.get('image_type')})",
                "camera_info topic": inputs.get("camera_info_topic"),
                "camera frame": inputs.get("camera_frame"),
                "ground truth": s.get("evaluation", {}).get("gt_source"),
                "image size": inputs.get("image_size"),
                "depth image size": inputs.get("depth_size"),
                "model file": model.get("path"),
                "model source": model.get("source"),
                "model": f"{model.get('backbone')} {model.get('input_width')}x{model.get('input_height')}, "
                f"{model.get('training_mode')}, metric_scale {model.get('metric_scale')}",
                "output bag": outputs.get("bag"),
                "results": outputs.get("json"),
            }
        )
    )
    if outputs.get("play_command"):
        parts.append(
            "<p class='note'>Show the depth next to the camera in rviz2: "
            f"<code>{_e(outputs['play_command'])}</code></p>"
        )
    parts.append("</body></html>")
    atomic_write_text(path, "\n".join(parts))
    return path
