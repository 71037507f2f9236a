"""Reliability of the depth node: overload, soak, the bad-input corpus, fuzzing and crash safety.

    .venv/bin/python benchmarks/bench_reliability.py                 # demo model; writes docs/RELIABILITY.md
    .venv/bin/python benchmarks/bench_reliability.py --overload-s 10 --soak-frames 1000 --crash-kills 0

The node is the real DepthNode (rclpy where it imports, else test/rclpy_stand_in), fed bgr8 camera
frames from the synthetic world by a publisher in this process (benchmarks/reliability_harness.py):

- single frame: frames sent one at a time; the median stamp -> publish latency is the node's
  single-frame latency, and its inverse the most frames per second it can take;
- overload: frames at 3x that rate for a minute. Targets: p99 latency under 2x the single-frame
  latency, every frame accounted for (sent == published + dropped, by reason), no queue growth (at
  most one frame waiting and one in inference, no frame waiting longer than an inference);
- soak: 10,000 frames, each published before the next. Targets: resident memory growth under 5%
  from the end of the warm-up to the end, open file descriptors and threads unchanged.

The other sections come from modules other parts of the project provide, each "not run" where it is
missing: the bad-input corpus (test/bad_inputs.py: its frame and stamp cases run through the frame
path with this model), the fuzzed properties (test/test_fuzz.py ``FUZZ_EXAMPLES``) and the crash loop
(benchmarks/bench_crash_safety.py ``run``). Prints the tables, writes JSON and docs/RELIABILITY.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib
import json
import os
import platform
import shlex
import sys
import time
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import cv2
import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = ROOT / "benchmarks"
TEST_DIR = ROOT / "test"
# benchmarks/ and test/ are folders of modules, not packages: the harness, the crash loop, the corpus.
for _folder in (ROOT, BENCH_DIR, TEST_DIR):
    if str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))

import reliability_harness as harness  # noqa: E402

from depth_node.runtime.estimator import DepthEstimator  # noqa: E402
from depth_node.runtime.message_types import rosbags_types  # noqa: E402
from depth_node.runtime.parameters import validate_parameters  # noqa: E402

DEMO_MODEL = ROOT / "models" / "demo_resnet18_320x96.onnx"
OVERLOAD_FACTOR = 3.0  # frames arrive this many times faster than the node can take them
P99_RATIO_TARGET = 2.0  # overload p99 latency / single-frame latency
RSS_GROWTH_TARGET_PCT = 5.0
TREND_WINDOW_S = 10.0
NOT_RUN = "not run"


def log(message: str) -> None:
    print(f"[reliability] {message}", flush=True)


# --- sections -------------------------------------------------------------------------------------
def node_params(args: argparse.Namespace) -> dict[str, Any]:
    return {"model_path": str(args.model), "providers": args.providers, "threads": args.threads}


def run_node(args: argparse.Namespace) -> dict[str, Any]:
    """Single-frame latency, overload and soak on one node (as on the car: one long-running node)."""
    camera = harness.Camera.synthetic(args.width, args.height, frames=args.camera_frames)
    result: dict[str, Any] = {"camera": f"{camera.width}x{camera.height} bgr8, {camera.source}"}
    with (
        harness.ros_api() as ros,
        harness.node_under_test(ros, node_params(args), camera, points=args.points) as nut,
    ):
        result["rclpy"] = "stand-in (test/rclpy_stand_in)" if ros.stand_in else _real_rclpy()
        result["provider"] = nut.frame_path.estimator.provider
        log(f"single frame: {args.single_frames} frames one at a time (after {args.warmup} warm-up)")
        single = harness.single_frame(nut, args.single_frames, args.warmup)
        result["single_frame"] = dataclasses.asdict(single)
        log(
            f"single-frame latency p50 {single.latency['p50_ms']:.1f} ms -> at most "
            f"{single.max_rate_hz:.1f} frames/s"
        )
        if args.overload_s > 0:
            rate = OVERLOAD_FACTOR * single.max_rate_hz
            log(f"overload: {rate:.1f} frames/s ({OVERLOAD_FACTOR:g}x) for {args.overload_s:g} s")

            def overload_progress(elapsed: float, nut: Any) -> None:
                _, frames_out, _ = nut.counters()
                log(f"  {elapsed:.0f} s: sent {nut.sent}, published {frames_out}")

            window = min(TREND_WINDOW_S, args.overload_s / 3)  # first and last windows never overlap
            overload = harness.overload(nut, rate, args.overload_s, window, overload_progress)
            result["overload"] = dataclasses.asdict(overload)
            # Again after: on a shared machine the load may have changed under the reference.
            log(f"single frame again: {args.single_frames} frames one at a time")
            after = harness.single_frame(nut, args.single_frames, 0)
            result["single_frame_after"] = dataclasses.asdict(after)
        if args.soak_frames > 0:
            warmup = min(args.soak_warmup, args.soak_frames // 2)
            log(f"soak: {args.soak_frames} frames, each published before the next (warm-up {warmup})")

            def soak_progress(index: int, nut: Any) -> None:
                log(f"  {index} frames, RSS {harness.rss_bytes() / 2**20:.1f} MiB")

            soak = harness.soak(nut, args.soak_frames, warmup, progress=soak_progress)
            result["soak"] = dataclasses.asdict(soak)
    return result


def _real_rclpy() -> str:
    return (
        f"rclpy ({os.environ.get('ROS_DISTRO', '?')}, {os.environ.get('RMW_IMPLEMENTATION', 'default RMW')})"
    )


def provided(name: str, folder: Path) -> ModuleType | str:
    """The module ``folder/name.py`` that another part of the project provides, else why it is not run
    (reused where pytest imported it already)."""
    path = folder / f"{name}.py"
    if not path.is_file():
        return f"{NOT_RUN}: {path.relative_to(ROOT)} is missing"
    try:
        return importlib.import_module(name)
    except Exception as error:
        return f"{NOT_RUN}: importing {path.relative_to(ROOT)} failed: {type(error).__name__}: {error}"


def run_bad_inputs(args: argparse.Namespace) -> dict[str, Any]:
    """The corpus counted per target, its frame and stamp cases through the frame path with the model."""
    if not args.bad_inputs:
        return {"status": f"{NOT_RUN}: --no-bad-inputs"}
    module = provided("bad_inputs", TEST_DIR)
    if isinstance(module, str):
        return {"status": module}
    cases = list(module.CASES)
    settings = validate_parameters(node_params(args))
    estimator = DepthEstimator(args.model, providers=settings.providers, threads=settings.threads)
    runnable = sum(case.target in harness.FRAME_TARGETS for case in cases)
    log(f"bad input: {runnable} frame and stamps cases through the frame path")
    outcomes = harness.run_frame_cases(cases, estimator, settings, rosbags_types(), args.case_limit_s)
    return bad_input_report(cases, outcomes, args.case_limit_s)


def bad_input_report(cases: list[Any], outcomes: list[Any], limit_s: float) -> dict[str, Any]:
    """The corpus's size per target and what the frame path made of the cases it ran."""
    per_target: dict[str, dict[str, int]] = {}
    for target in sorted({case.target for case in cases}):
        of_target = [case for case in cases if case.target == target]
        per_target[target] = {"kinds": len({case.kind for case in of_target}), "cases": len(of_target)}
    slowest = max(outcomes, key=lambda o: o.seconds, default=None)
    return {
        "status": "ran",
        "cases": len(cases),
        "kinds": len({case.kind for case in cases}),
        "per_target": per_target,
        "run_through_frame_path": len(outcomes),
        "as_expected": sum(o.as_expected for o in outcomes),
        "case_limit_s": limit_s,
        "slowest": None if slowest is None else {"name": slowest.name, "seconds": slowest.seconds},
        "outcomes": [{**dataclasses.asdict(o), "as_expected": o.as_expected} for o in outcomes],
    }


def run_fuzzing() -> dict[str, Any]:
    """The fuzzed properties and their example counts, as test/test_fuzz.py declares them."""
    module = provided("test_fuzz", TEST_DIR)
    if isinstance(module, str):
        return {"status": module}
    examples = dict(module.FUZZ_EXAMPLES)
    return {"status": "listed", "properties": len(examples), "examples": examples}


def run_crash_safety(args: argparse.Namespace) -> dict[str, Any]:
    """benchmarks/bench_crash_safety.py's ``run(kills, seed, workdir)``, its figures as it returns them."""
    if args.crash_kills <= 0:
        return {"status": f"{NOT_RUN}: --crash-kills {args.crash_kills}"}
    module = provided("bench_crash_safety", BENCH_DIR)
    if isinstance(module, str):
        return {"status": module}
    workdir = args.out.parent / "crash_safety"
    workdir.mkdir(parents=True, exist_ok=True)
    log(f"crash safety: {args.crash_kills} kills (seed {args.crash_seed}) in {workdir}")
    figures = module.run(kills=args.crash_kills, seed=args.crash_seed, workdir=workdir)
    return {"status": "ran", "kills": args.crash_kills, "seed": args.crash_seed, "figures": figures}


def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [
            line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if "model name" in line
        ]
        cpu = names[0] if names else cpu
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0],
        "os": platform.platform(),
        "python": platform.python_version(),
        "onnxruntime": ort.__version__,
        "opencv": cv2.__version__,
    }


# --- the report -----------------------------------------------------------------------------------
def _ms(value: float) -> str:
    return f"{value:.1f} ms"


def _mib(value: float) -> str:
    return f"{value / 2**20:.1f} MiB"


def _verdict(ok: bool) -> str:
    return "meets" if ok else "**misses**"


def _table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |" for row in rows]
    return lines


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return "; ".join(_cell(item) for item in value)
    return " ".join(str(value).split())  # one line: a table cell


def _is_records(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(item, dict) for item in value)


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Nested dicts as (dotted key, value) rows; lists of dicts are left to :func:`_records_table`."""
    if isinstance(value, dict):
        rows = []
        for key, item in value.items():
            if not _is_records(item):
                rows += _flatten(item, f"{prefix}.{key}" if prefix else str(key))
        return rows
    return [(prefix, _cell(value))]


def _records_table(records: list[dict[str, Any]]) -> list[str]:
    """A list of dicts as one table, a column per key."""
    columns = list(dict.fromkeys(key for record in records for key in record))
    rows = [tuple(_cell(record.get(column, "")) for column in columns) for record in records]
    return _table(tuple(columns), rows)


Row = tuple[Any, ...]  # part, tried, measured, target, verdict


def _not_run(part: str, why: str) -> Row:
    return (part, why, "", "", "")


def single_frame_rows(node: dict[str, Any]) -> list[Row]:
    rows = []
    for key, when in (("single_frame", ""), ("single_frame_after", ", after the overload")):
        if key in node:
            latency = node[key]["timing"]["latency"]
            measured = f"p50 {_ms(latency['p50_ms'])}, p99 {_ms(latency['p99_ms'])}"
            tried = f"{node[key]['frames']} frames one at a time{when}"
            rows.append(("single frame", tried, measured, "(the reference)" if not when else "", ""))
    return rows


def queue_is_bounded(overload: dict[str, Any]) -> bool:
    """No queue: at most one frame per stage (the mailbox, being prepared, prepared and waiting, in the
    network, being finished), and no published frame waited in the mailbox longer than a typical
    inference (a queue makes frames wait for several)."""
    timing = overload["timing"]
    return (
        overload["max_in_flight"] <= harness.MOST_IN_FLIGHT
        and timing["wait"]["p99_ms"] <= timing["service"]["p50_ms"]
    )


def overload_rows(single: dict[str, Any], overload: dict[str, Any]) -> list[Row]:
    """Latency against the single frame's, the drop identity, and no queue."""
    timing, reference = overload["timing"], single["timing"]["latency"]["p50_ms"]
    ratio = timing["latency"]["p99_ms"] / reference
    tried = f"{OVERLOAD_FACTOR:g}x the max rate for {overload['seconds']:.0f} s: {overload['sent']} frames"
    counts = f"{overload['sent']} sent = {overload['published']} published + {overload['dropped']} dropped"
    queue = (
        f"at most {overload['max_in_flight']} in flight; mailbox wait p99 {_ms(timing['wait']['p99_ms'])} "
        f"vs inference p50 {_ms(timing['service']['p50_ms'])}"
    )
    return [
        (
            "overload latency",
            tried,
            f"p99 {_ms(timing['latency']['p99_ms'])} = {ratio:.2f}x single",
            f"< {P99_RATIO_TARGET:g}x",
            _verdict(ratio < P99_RATIO_TARGET),
        ),
        ("overload drops", "", counts, "exact", _verdict(overload["identity_holds"] and overload["drained"])),
        ("overload queue", "", queue, "<= 3; wait < inference", _verdict(queue_is_bounded(overload))),
    ]


def soak_rows(soak: dict[str, Any]) -> list[Row]:
    warm, end = soak["after_warmup"], soak["at_end"]
    growth = soak["rss_growth_pct"]
    constant = warm["fds"] == end["fds"] and warm["os_threads"] == end["os_threads"]
    return [
        (
            "soak memory",
            f"{soak['frames']} frames (warm-up {soak['warmup_frames']})",
            f"RSS {_mib(warm['rss_bytes'])} -> {_mib(end['rss_bytes'])} ({growth:+.2f}%)",
            f"< {RSS_GROWTH_TARGET_PCT:g}%",
            _verdict(growth < RSS_GROWTH_TARGET_PCT),
        ),
        (
            "soak fds, threads",
            "",
            f"fds {warm['fds']} -> {end['fds']}, threads {warm['os_threads']} -> {end['os_threads']}",
            "constant",
            _verdict(constant),
        ),
    ]


def bad_input_rows(bad: dict[str, Any]) -> list[Row]:
    if bad["status"] != "ran":
        return [_not_run("bad input", bad["status"])]
    ran, slowest = bad["run_through_frame_path"], bad["slowest"]
    slowest_ms = "-" if slowest is None else _ms(1e3 * slowest["seconds"])
    return [
        (
            "bad input",
            f"{bad['cases']} named cases in {bad['kinds']} groups; {ran} through the frame path",
            f"{bad['as_expected']}/{ran} as expected; slowest {slowest_ms}",
            f"all, each < {bad['case_limit_s']:g} s",
            _verdict(bad["as_expected"] == ran),
        )
    ]


def summary_rows(report: dict[str, Any]) -> list[Row]:
    """One row per thing tried: how many cases, the figure, the target and the verdict."""
    node = report["node"]
    rows = single_frame_rows(node)
    if "overload" in node:
        rows += overload_rows(node["single_frame"], node["overload"])
    else:
        rows.append(_not_run("overload", NOT_RUN))
    rows += soak_rows(node["soak"]) if "soak" in node else [_not_run("soak", NOT_RUN)]
    rows += bad_input_rows(report["bad_inputs"])
    fuzz = report["fuzzing"]
    if fuzz["status"] == "listed":
        examples = f"{sum(fuzz['examples'].values())} examples"
        rows.append(("fuzzing", f"{fuzz['properties']} properties", examples, "", ""))
    else:
        rows.append(_not_run("fuzzing", fuzz["status"]))
    crash = report["crash_safety"]
    if crash["status"] == "ran":
        rows.append(("crash safety", f"{crash['kills']} kills", "see below", "", ""))
    else:
        rows.append(_not_run("crash safety", crash["status"]))
    return rows


def _p(summary: dict[str, float], keys: tuple[str, ...] = ("p50_ms", "p95_ms", "p99_ms", "max_ms")) -> str:
    return " / ".join(_ms(summary[key]) for key in keys)


def overload_lines(report: dict[str, Any]) -> list[str]:
    node = report["node"]
    single, overload = node["single_frame"], node["overload"]
    timing, window = overload["timing"], overload["trend_window_s"]
    drops = ", ".join(f"{reason} {n}" for reason, n in overload["dropped_by_reason"].items() if n) or "none"
    published_rate = overload["published"] / overload["seconds"]
    rows = [
        (
            "rate: target / sent",
            f"{overload['target_rate_hz']:.1f} / {overload['sent_rate_hz']:.1f} frames/s",
        ),
        (
            "published: single-frame max / under overload",
            f"{single['max_rate_hz']:.1f} / {published_rate:.1f} frames/s "
            f"(sent / published {overload['sent'] / max(overload['published'], 1):.2f})",
        ),
        ("send times skipped (sender late)", overload["late_ticks"]),
        ("frames sent", overload["sent"]),
        ("arrived at the node / lost before it", f"{overload['arrived']} / {overload['lost_before_node']}"),
        ("published / received by a subscriber", f"{overload['published']} / {overload['received']}"),
        ("dropped (by reason)", f"{overload['dropped']} ({drops})"),
        ("sent == published + dropped (after the drain)", "yes" if overload["identity_holds"] else "**no**"),
        (
            f"most frames in flight (one per stage: at most {harness.MOST_IN_FLIGHT})",
            overload["max_in_flight"],
        ),
        ("latency, stamp -> publish: p50 / p95 / p99 / max", _p(timing["latency"])),
        ("mailbox wait, arrival -> preparing starts", _p(timing["wait"])),
        ("prepare + network + publish", _p(timing["service"])),
        ("single-frame latency before the overload", _p(single["timing"]["latency"])),
    ]
    if "single_frame_after" in node:
        rows.append(
            ("single-frame latency after the overload", _p(node["single_frame_after"]["timing"]["latency"]))
        )
    rows.append(
        (
            "p99 / single-frame p50 (before)",
            f"{timing['latency']['p99_ms'] / single['timing']['latency']['p50_ms']:.2f} "
            f"(target < {P99_RATIO_TARGET:g})",
        )
    )
    for name, part in (("first", overload["first_window"]), ("last", overload["last_window"])):
        rows.append(
            (
                f"{name} {window:g} s: frames; latency / wait / inference p50",
                f"{part['latency']['count']}; {_p(part['latency'], ('p50_ms',))} / "
                f"{_p(part['wait'], ('p50_ms',))} / {_p(part['service'], ('p50_ms',))}",
            )
        )
    rows.append(
        ("RSS start -> end", f"{_mib(overload['rss_start_bytes'])} -> {_mib(overload['rss_end_bytes'])}")
    )
    return _table(("overload", "measured"), rows)


def soak_lines(report: dict[str, Any]) -> list[str]:
    soak = report["node"]["soak"]
    snaps = [soak["at_start"], soak["after_warmup"], soak["at_end"]]
    rows = [
        ("resident memory (RSS)", *(_mib(s["rss_bytes"]) for s in snaps)),
        ("open file descriptors", *(s["fds"] for s in snaps)),
        ("threads (Python)", *(s["threads"] for s in snaps)),
        ("threads (all, /proc/self/task)", *(s["os_threads"] for s in snaps)),
    ]
    header = (
        "soak",
        "before frame 1",
        f"after frame {soak['warmup_frames']}",
        f"after frame {soak['frames']}",
    )
    drops = ", ".join(f"{r} {n}" for r, n in soak["dropped_by_reason"].items()) or "none"
    samples = ", ".join(f"{index}: {rss / 2**20:.1f}" for index, rss in soak["rss_samples"])
    return [
        *_table(header, rows),
        "",
        f"{soak['published']} of {soak['frames']} frames published (dropped: {drops}); RSS growth after the "
        f"warm-up {soak['rss_growth_pct']:+.2f}% (target < {RSS_GROWTH_TARGET_PCT:g}%).",
        f"RSS in MiB after frame {samples}.",
    ]


def bad_input_lines(bad: dict[str, Any]) -> list[str]:
    if bad["status"] != "ran":
        return [f"{bad['status']}."]
    lines = [
        f"{bad['cases']} named cases, each a kind of bad input, in {bad['kinds']} groups "
        "(test/bad_inputs.py). What each target is fed to is in that file; test/test_bad_inputs.py "
        "runs every case. Cases per target:",
        "",
        *_table(
            ("target", "groups", "cases"), [(t, v["kinds"], v["cases"]) for t, v in bad["per_target"].items()]
        ),
        "",
        f"The frame and stamps cases through `FramePath.process` with this model (cloud on), each on a fresh "
        f"frame path, each limited to {bad['case_limit_s']:g} s:",
        "",
    ]
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for outcome in bad["outcomes"]:
        by_kind.setdefault(outcome["kind"], []).append(outcome)
    rows = []
    for kind, outcomes in by_kind.items():
        expected = Counter(o["expect"] for o in outcomes)
        slowest = max(outcomes, key=lambda o: o["seconds"])
        rows.append(
            (
                kind,
                len(outcomes),
                ", ".join(f"{e} {n}" for e, n in expected.items()),
                f"{sum(o['as_expected'] for o in outcomes)}/{len(outcomes)}",
                f"{_ms(1e3 * slowest['seconds'])} ({slowest['name']})",
            )
        )
    lines += _table(("group", "cases", "expected outcome", "as expected", "slowest"), rows)
    wrong = [o for o in bad["outcomes"] if not o["as_expected"]]
    lines.append("")
    if wrong:
        lines.append("Not as expected:")
        lines.append("")
        lines += _table(("case", "expected", "got"), [(o["name"], o["expect"], o["outcome"]) for o in wrong])
    else:
        lines.append(f"All {len(bad['outcomes'])} as expected.")
    return lines


def fuzzing_lines(fuzz: dict[str, Any]) -> list[str]:
    if fuzz["status"] != "listed":
        return [f"{fuzz['status']}."]
    return [
        f"{fuzz['properties']} properties, as test/test_fuzz.py declares them (`FUZZ_EXAMPLES`); hypothesis "
        "runs that many examples of each in the test suite:",
        "",
        *_table(("property", "examples"), sorted(fuzz["examples"].items())),
    ]


def crash_lines(crash: dict[str, Any]) -> list[str]:
    if crash["status"] != "ran":
        return [f"{crash['status']}."]
    figures = crash["figures"]
    lines = [
        f"benchmarks/bench_crash_safety.py, {crash['kills']} kills (seed {crash['seed']}), "
        "its figures as it returns them:",
        "",
        *_table(("figure", "value"), _flatten(figures)),
    ]
    for key, value in figures.items():
        if _is_records(value):
            lines += ["", f"{key}:", "", *_records_table(value)]
    return lines


def render_doc(report: dict[str, Any]) -> str:
    """docs/RELIABILITY.md: every figure from ``report`` (this run), "not run" where a part did not run."""
    machine, node = report["machine"], report["node"]
    lines = [
        "# Reliability",
        "",
        f"Written by `benchmarks/bench_reliability.py` on {report['date']}; do not edit by hand, rerun it:",
        "",
        f"    {report['command']}",
        "",
        f"- machine: {machine['cpu']}, {machine['cores']} cores (shared; 1-min load average "
        f"{machine['load_average_1min']:.2f} at the start, {machine['load_average_1min_at_end']:.2f} at the "
        f"end), {machine['os']}, Python {machine['python']}, ONNX Runtime {machine['onnxruntime']}",
        f"- run time: {report['seconds'] / 60:.1f} min",
        f"- model: `{report['model']}` on {node['provider']}, {report['threads']} intra-op thread(s)",
        f"- node: the real `DepthNode` on {node['rclpy']}; camera {node['camera']}; outputs depth image, "
        f"camera_info{' and point cloud' if report['points'] else ''}",
        "",
        "## What was tried",
        "",
        *_table(("part", "tried", "measured", "target", "verdict"), summary_rows(report)),
        "",
        "## Overload",
        "",
        "Frames sent one at a time give the single-frame latency (header stamp -> publish, the node's "
        "clock); its median sets the most frames per second the node takes. Then frames arrive at "
        f"{OVERLOAD_FACTOR:g}x that rate, each with a fresh stamp; the node keeps the newest frame in its "
        'one-slot mailbox and drops ("superseded") the one it replaces. After the last frame the node '
        "drains and the counters must add up exactly. Frames in flight (arrived, neither published nor "
        "dropped) are sampled at every send: more than 5 (one per stage: in the mailbox, being prepared, "
        "prepared and waiting for the network, in the network, being finished) would be a queue. "
        "A published frame's time splits into its wait in the mailbox (arrival -> the prepare thread takes "
        "it) and prepare + network + publish; a queue would show as waits of several inferences, so the "
        "queue verdict asks the p99 wait to stay under the median inference. The first and last "
        f"{TREND_WINDOW_S:g} s (a third of a shorter run) are shown apart: latency that grows with the "
        "inference time while the wait stays short is the machine getting slower, not a queue. The camera "
        "(a publisher in the same process) waits for each frame to reach the node's callback before the "
        "next, so no frame is lost unseen between them; the node's own input queue is its "
        "`input_qos.depth` (1).",
        "",
    ]
    lines += overload_lines(report) if "overload" in node else [f"{NOT_RUN} (--overload-s 0)."]
    lines += [
        "",
        "## Soak",
        "",
        "Frames one after another, each published before the next is sent, so every frame goes through "
        "inference. Memory, file descriptors and threads of the whole process (node, camera, subscriber) "
        "after a garbage collection.",
        "",
    ]
    lines += soak_lines(report) if "soak" in node else [f"{NOT_RUN} (--soak-frames 0)."]
    lines += ["", "## Bad input", "", *bad_input_lines(report["bad_inputs"])]
    lines += ["", "## Fuzzing", "", *fuzzing_lines(report["fuzzing"])]
    lines += ["", "## Crash safety", "", *crash_lines(report["crash_safety"]), ""]
    return "\n".join(lines)


# --- main -----------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model", type=Path, default=DEMO_MODEL, help="ONNX depth model (default: the demo model)"
    )
    parser.add_argument("--width", type=int, default=640, help="camera width")
    parser.add_argument("--height", type=int, default=192, help="camera height")
    parser.add_argument("--camera-frames", type=int, default=8, help="synthetic frames sent in turn")
    parser.add_argument("--providers", default="cpu", help="comma-separated, e.g. tensorrt,cuda,cpu")
    parser.add_argument(
        "--threads", type=int, default=1, help="ONNX Runtime intra-op threads (0: its default, all cores)"
    )
    parser.add_argument("--no-points", dest="points", action="store_false", help="no point-cloud subscriber")
    parser.add_argument("--warmup", type=int, default=10, help="frames before the single-frame measurement")
    parser.add_argument("--single-frames", type=int, default=50, help="frames for the single-frame latency")
    parser.add_argument("--overload-s", type=float, default=60.0, help="seconds of overload (0: skip)")
    parser.add_argument("--soak-frames", type=int, default=10_000, help="soak frames (0: skip)")
    parser.add_argument("--soak-warmup", type=int, default=500, help="soak frames before the memory baseline")
    parser.add_argument(
        "--no-bad-inputs", dest="bad_inputs", action="store_false", help="skip the bad-input corpus"
    )
    parser.add_argument("--case-limit-s", type=float, default=60.0, help="time limit per bad-input case")
    parser.add_argument(
        "--crash-kills", type=int, default=20, help="kills for the crash-safety loop (0: skip)"
    )
    parser.add_argument("--crash-seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "bench_reliability.json")
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "RELIABILITY.md")
    parser.add_argument(
        "--from-json", type=Path, help="run nothing: write --doc again from the JSON of an earlier run"
    )
    args = parser.parse_args(argv)
    args.providers = [p.strip() for p in args.providers.split(",") if p.strip()]
    if not args.model.is_file():
        parser.error(f"--model {args.model}: file not found (an ONNX depth model was expected)")
    if args.single_frames < 1:
        parser.error(f"--single-frames must be at least 1, got {args.single_frames}")
    if args.soak_frames and args.soak_frames < 2:
        parser.error(f"--soak-frames must be 0 or at least 2, got {args.soak_frames}")
    return args


def _shown_path(path: Path) -> str:
    absolute = path.absolute()  # not resolve(): .venv/bin/python is a link out of the repository
    return str(absolute.relative_to(ROOT)) if absolute.is_relative_to(ROOT) else str(path)


def write_report(report: dict[str, Any], out: Path | None, doc_path: Path) -> None:
    """Print the doc; write it and (unless ``out`` is None) the JSON it was made from."""
    doc = render_doc(report)
    print()
    print(doc)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2))
    doc_path.parent.mkdir(parents=True, exist_ok=True)
    doc_path.write_text(doc)
    log(f"wrote {doc_path}" + ("" if out is None else f" and {out}"))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.from_json is not None:  # the doc again from a run's JSON (its own command and date)
        write_report(json.loads(args.from_json.read_text()), None, args.doc)
        return 0
    command = "benchmarks/bench_reliability.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    started = time.monotonic()
    report: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": f"{_shown_path(Path(sys.executable))} {command}".strip(),
        "machine": machine_info(),
        "model": _shown_path(args.model),
        "threads": args.threads,
        "points": args.points,
    }
    report["node"] = run_node(args)
    report["bad_inputs"] = run_bad_inputs(args)
    report["fuzzing"] = run_fuzzing()
    report["crash_safety"] = run_crash_safety(args)
    report["seconds"] = time.monotonic() - started
    report["machine"]["load_average_1min_at_end"] = os.getloadavg()[0]

    write_report(report, args.out, args.doc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
