"""``depth-replay``: the command line of :mod:`depth_node.evaluation.replay`, and its summary table."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from depth_node.evaluation.bag_input import ReplayError
from depth_node.evaluation.ground_truth import parse_transform
from depth_node.evaluation.replay import ReplayOptions, ReplayResult, replay
from depth_node.metrics import MAX_DEPTH, MIN_DEPTH, format_metrics_table
from depth_node.runtime.frame import END_TO_END
from depth_node.runtime.parameters import ParameterError, load_params_file, parse_param_override


def _param_override(text: str) -> tuple[str, Any]:
    try:
        return parse_param_override(text)
    except ParameterError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def summary_text(result: ReplayResult) -> str:
    """The short table printed at the end of a replay."""
    r = result.results
    lines = []
    if r.get("metrics"):
        rows = {
            "metric (runtime scale)": r["metrics"]["metric"],
            "median-scaled": r["metrics"]["median_scaled"],
        }
        regions = r.get("regions") or {}
        for region, scores in regions.items():
            name = region.replace("_", " ")
            rows[f"{name}: metric"] = scores["metric"]
            rows[f"{name}: median-scaled"] = scores["median_scaled"]
        lines.append(format_metrics_table(rows))
        ev = r["evaluation"]
        lines.append(
            f"scored {r['frames']['scored']} frames against {ev['gt_source']}, "
            f"median scale {ev['median_scale_mean']:.3f} ± {ev['median_scale_std']:.3f}"
        )
        if regions:
            counts = ", ".join(
                f"{region.replace('_', ' ')} {s['frames']} frames {s['pixels']} px"
                for region, s in regions.items()
            )
            lines.append(f"motion regions (each with the whole frame's median scale): {counts}")
    else:
        lines.append("no ground truth scored")
    f, e2e = r["frames"], r["latency_ms"].get(END_TO_END, {})
    fps = r["fps"]
    lines.append(
        f"frames {f['processed']}/{f['total']} processed, {f['dropped']} dropped, {f['bad']} bad"
        + ("  (real time)" if r["realtime"] else "")
    )
    if r.get("model", {}).get("frames") == 2:
        modes = f["processed_by_mode"]
        lines.append(
            f"two-frame model: {modes['two']} frames with the previous frame, "
            f"{modes['first']} fed twice (first frame, reset or size change)"
        )
    if e2e:
        lines.append(
            f"latency end-to-end p50 {e2e['p50']:.1f} ms  p95 {e2e['p95']:.1f} ms  p99 {e2e['p99']:.1f} ms"
            f"   pipeline {fps['pipeline']:.1f} fps, throughput {fps['throughput']:.1f} fps"
            + (f", recorded {fps['recorded']:.1f} fps" if fps.get("recorded") else "")
            + f"  [{r['provider']}]"
        )
    for warning in r.get("warnings", []):
        lines.append(f"warning: {warning}")
    lines.append(f"report  {r['outputs']['report']}")
    lines.append(f"bag     {r['outputs']['bag']}")
    lines.append(f"results {r['outputs']['json']}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    # Long: one declaration per command-line option, grouped as --help shows them.
    p = argparse.ArgumentParser(
        prog="depth-replay",
        description="Replay a rosbag2 through the depth pipeline: score it against ground truth, "
        "measure latency, write a depth rosbag2, results.json and an HTML report.",
    )
    p.add_argument(
        "bag", type=Path, help="input rosbag2 folder (sqlite3 or MCAP) or a single .db3/.mcap file"
    )
    p.add_argument(
        "--model", type=Path, help="ONNX depth model (default: the model_path parameter, else the demo model)"
    )
    p.add_argument("--out", type=Path, help="output folder (default: <bag>_replay next to the bag)")
    p.add_argument("--force", action="store_true", help="replace an existing output folder")
    g = p.add_argument_group("input topics (found automatically when not given)")
    g.add_argument("--image-topic", help="camera topic, sensor_msgs/Image or CompressedImage")
    g.add_argument("--camera-info-topic", help="sensor_msgs/CameraInfo of the camera")
    g.add_argument(
        "--gt",
        choices=("auto", "depth", "lidar", "none"),
        default="auto",
        help="ground truth: a depth image topic, LiDAR projected into the image, or none",
    )
    g.add_argument("--gt-topic", help="ground truth topic (32FC1/16UC1 Image or PointCloud2)")
    g.add_argument(
        "--motion-topic",
        help="per-pixel motion labels (mono8 Image: 0 static, 1 moving the camera's way, 2 oncoming) "
        "to score each motion region; default: <depth ground truth namespace>/motion if the bag has it; "
        "'none': off",
    )
    g.add_argument(
        "--T-cam-lidar",
        dest="T_cam_lidar",
        type=parse_transform,
        help="LiDAR->camera transform instead of /tf_static: 'x y z qx qy qz qw' or 12/16 matrix numbers",
    )
    g = p.add_argument_group("evaluation")
    g.add_argument("--min-depth", type=float, default=MIN_DEPTH, help="smallest scored depth in metres")
    g.add_argument("--max-depth", type=float, default=MAX_DEPTH, help="depth cap in metres (default 80)")
    g.add_argument("--garg-crop", action="store_true", help="score only inside the Garg crop (KITTI Eigen)")
    g.add_argument(
        "--sync-tolerance", type=float, default=0.05, help="max stamp difference image<->truth [s]"
    )
    g.add_argument("--report-frames", type=int, default=6, help="frames pictured in the report")
    g = p.add_argument_group("run")
    g.add_argument(
        "--realtime",
        action="store_true",
        help="feed frames at the recorded rate; frames arriving while busy are dropped (newest wins)",
    )
    g.add_argument("--max-frames", type=int, help="stop after this many camera frames")
    g = p.add_argument_group(
        "the depth node's parameters (the pipeline runs as the node configured so would)"
    )
    g.add_argument("--params-file", type=Path, help="ROS 2 parameter YAML, e.g. config/depth.yaml")
    g.add_argument(
        "-p",
        "--param",
        dest="params",
        action="append",
        default=[],
        type=_param_override,
        metavar="NAME:=VALUE",
        help="one node parameter, e.g. -p scale_mode:=camera_height -p output_resolution:=model",
    )
    g.add_argument("--providers", help="shortcut for -p providers: comma list of tensorrt,cuda,cpu")
    g.add_argument("--threads", type=int, help="shortcut for -p threads:=N (ONNX Runtime intra-op threads)")
    g.add_argument(
        "--no-cloud", dest="cloud", action="store_false", help="shortcut for -p publish_points:=false"
    )
    g = p.add_argument_group("output bag")
    g.add_argument(
        "--storage", choices=("sqlite3", "mcap"), help="output bag storage (default: as the input)"
    )
    g.add_argument(
        "--no-copy-inputs",
        dest="copy_inputs",
        action="store_false",
        help="do not copy the camera image, camera_info and /tf_static topics into the output bag",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def options_from_args(args: argparse.Namespace) -> ReplayOptions:
    try:
        params: dict[str, Any] = load_params_file(args.params_file) if args.params_file else {}
    except ParameterError as err:
        raise ReplayError(str(err)) from None
    params.update(dict(args.params))
    if args.providers:
        params["providers"] = [p.strip() for p in args.providers.split(",") if p.strip()]
    if args.threads is not None:
        params["threads"] = args.threads
    if not args.cloud:
        params["publish_points"] = False
    return ReplayOptions(
        bag=args.bag,
        model=args.model,
        out=args.out,
        image_topic=args.image_topic,
        camera_info_topic=args.camera_info_topic,
        gt=args.gt,
        gt_topic=args.gt_topic,
        motion_topic=args.motion_topic,
        T_cam_lidar=args.T_cam_lidar,
        realtime=args.realtime,
        max_frames=args.max_frames,
        storage=args.storage,
        copy_inputs=args.copy_inputs,
        min_depth=args.min_depth,
        max_depth=args.max_depth,
        garg_crop=args.garg_crop,
        sync_tolerance=args.sync_tolerance,
        report_frames=args.report_frames,
        node_params=params,
        force=args.force,
        progress=not args.quiet,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = replay(options_from_args(args))
    except ReplayError as err:
        print(f"depth-replay: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("depth-replay: interrupted, nothing written", file=sys.stderr)
        return 130
    print(summary_text(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
