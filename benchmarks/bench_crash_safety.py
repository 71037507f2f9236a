"""Crash safety of training, and what a full disk does to checkpoints, ONNX export and replay outputs.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_crash_safety.py --kills 20 [--seed 0]

**SIGKILL loop.** A real tiny training run (``depth-train`` in a subprocess: ResNet18, 128x64,
batch 2, one thread, a checkpoint after every step) is killed with SIGKILL, ``--kills`` times. Each
run is the ``--resume`` of the previous run's ``last.pt``, so every kill is followed by a resume
that must continue: the kill is armed only once the run has logged a step past its start and
committed the checkpoint after it. Half the kills (odd numbers) are aimed at a checkpoint write:
the watcher polls the checkpoint folder for the ``.tmp`` file and kills after a random fraction of
the time a write takes; the other half come at a random moment up to two steps later (they land in
a write as often as writes fill the time). A kill counts as "in a write" when the run's temporary
file is still there after it. After each kill every checkpoint must load with
``torch.load(weights_only=True)``. A last resume runs to ``max_steps`` and must end normally.

**Full disk.** The writer runs in a subprocess whose file size limit (``RLIMIT_FSIZE``, SIGXFSZ
ignored) makes a write past the limit fail with a real ``EFBIG`` from the OS. Cases: the trainer's
checkpoint (a resume whose first save hits the limit early and late in the file); ``depth-export``
(at half the ONNX file: the exporter's own write; at all but one byte: the metadata rewrite, the
last write); ``depth-replay --force`` over an existing output folder: its results.json and
report.html (the limit armed when the process opens that file's temporary for writing: every other
output is bigger, a limit from the start would hit it first), its output bag as sqlite3 and as
MCAP, a report figure. Each case must give one error line on stderr naming the file and the
reason, exit non-zero, leave the previous file(s) byte-identical and leave no temporary file
behind. Two limits of the wording: SQLite reports EFBIG only as a disk I/O error (the line says
"disk full or file too large?"; a real full disk is SQLITE_FULL, "no space left on device"), and a
report figure's error names the output folder (matplotlib's write error carries no file name).

Results: a table on stdout and JSON at ``--json`` (default out/bench_crash_safety.json).
``run(kills, seed, workdir)`` returns the same dict (used by benchmarks/bench_reliability.py); the
CI-sized checks are test/test_crash_safety.py, which loads this file by path.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from depth_node.files import TEMP_SUFFIX  # noqa: E402

DATE = "2011_09_26"
DRIVE = f"{DATE}/{DATE}_drive_0001_sync"
HEIGHT, WIDTH = 64, 128  # ResNet18's decoder needs >= 64x128 (reflection padding at 1/32 scale)
DRIVE_FRAMES = 10  # 8 training samples: 4 steps per epoch, so epoch checkpoints are written too
POLL_S = 0.005
RUN_TIMEOUT_S = 120.0  # a run that commits no checkpoint in this time is a failure, not a wait
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE", "PYTHONUNBUFFERED": "1"}

Say = Callable[[str], None]


# --- data and the training command -----------------------------------------------------------------
def make_drive(root: Path, seed: int = 7, frames: int = DRIVE_FRAMES) -> Path:
    """A synthetic drive in KITTI raw layout under ``root`` (with dense ground truth); its folder."""
    from depth_node.data.kitti import write_drive
    from depth_node.data.sim.world import SyntheticDrive, WorldConfig

    world = WorldConfig(seed=seed, num_frames=frames, width=256, height=128, lidar=False)
    return write_drive(SyntheticDrive(world), root, date=DATE, drive_number=1, dense_gt=True)


def train_command(
    data_root: Path, out_dir: Path, resume: Path | None = None, max_steps: int = 10**6
) -> list[str]:
    """``depth-train`` for the tiny run: a fresh start, or the resume of ``resume`` (its config)."""
    cmd = [sys.executable, "-m", "training.train"]
    if resume is not None:
        return [*cmd, "--resume", str(resume), f"train.max_steps={max_steps}"]
    return [
        *cmd,
        f"data.root={data_root}",
        f"data.drives=[{DRIVE}]",
        f"data.height={HEIGHT}",
        f"data.width={WIDTH}",
        "data.num_workers=0",
        "data.depth_gt=none",
        "train.batch_size=2",
        f"train.max_steps={max_steps}",
        "train.epochs=1000000",
        f"train.out_dir={out_dir}",
        "train.threads=1",
        "train.progress=false",
        "train.tensorboard=false",
        "train.checkpoint_every=1",  # a checkpoint after every step: kills often land in a write
    ]


def load_step(path: Path) -> int:
    """The checkpoint's global step, read the way ``--resume`` reads it (``weights_only=True``)."""
    from training.checkpoint import RESUME_KEYS, load_checkpoint

    return int(load_checkpoint(path, RESUME_KEYS)["global_step"])


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


# --- the SIGKILL loop ------------------------------------------------------------------------------
class CheckpointWatch:
    """What a running trainer does to its output folder, polled: commits of ``last.pt`` (a new inode:
    ``os.replace``), temporary files being written (created since the run started) and the steps
    it logs (``loss_log.jsonl``, one line per step, written before that step's checkpoint)."""

    def __init__(self, out_dir: Path, step_before: int) -> None:
        self.ckpt_dir = out_dir / "checkpoints"
        self.last = self.ckpt_dir / "last.pt"
        self.loss_log = out_dir / "loss_log.jsonl"
        self.step_before = step_before
        self.since = time.time()
        self.inode = self._inode()
        self.commits: list[float] = []  # times of this run's commits of last.pt
        self.writes: list[float] = []  # durations of this run's completed temp-file writes
        self.stepped_at: float | None = None  # when a step past step_before was logged
        self._writing: dict[str, float] = {}
        self._log_size = -1

    def _inode(self) -> int | None:
        try:
            return self.last.stat().st_ino
        except FileNotFoundError:
            return None

    def temps(self) -> list[str]:
        """Temporary files this run is writing (a stale one of a killed run is older than ``since``)."""
        names = []
        for name in os.listdir(self.ckpt_dir) if self.ckpt_dir.is_dir() else []:
            if name.endswith(TEMP_SUFFIX):
                try:
                    if os.stat(self.ckpt_dir / name).st_mtime >= self.since:
                        names.append(name)
                except FileNotFoundError:
                    pass  # renamed into place while we looked
        return names

    def writing(self) -> bool:
        return bool(self._writing)

    def progressed(self) -> bool:
        """A checkpoint past ``step_before`` was committed (an epoch end finished on resume is not)."""
        return self.stepped_at is not None and any(t >= self.stepped_at for t in self.commits)

    def _logged_step(self) -> int:
        lines = self.loss_log.read_bytes().splitlines()
        for line in reversed(lines):
            try:
                return int(json.loads(line)["step"])
            except (ValueError, KeyError):
                continue  # a line cut by a kill
        return 0

    def poll(self) -> None:
        now = time.time()
        if self.stepped_at is None and self.loss_log.is_file():
            size = self.loss_log.stat().st_size
            if size != self._log_size:
                self._log_size = size
                if self._logged_step() > self.step_before:
                    self.stepped_at = now
        temps = set(self.temps())
        for name in list(self._writing):
            if name not in temps:
                self.writes.append(now - self._writing.pop(name))
        for name in temps - set(self._writing):
            self._writing[name] = now
        inode = self._inode()
        if inode is not None and inode != self.inode:
            self.inode = inode
            self.commits.append(now)


@dataclass
class Kill:
    """One SIGKILL and what the checkpoints looked like after it."""

    index: int
    mode: str  # "in_write": while a checkpoint temp file is written; "random": any moment
    delay_s: float  # after arming: the run's first newer checkpoint, or (in_write) the temp file
    step_before: int  # the checkpoint this run resumed from (0: a fresh start)
    step_after: int = -1  # last.pt's step after the kill (-1: did not load)
    write_interrupted: bool = False  # a temp file of this run was left: the kill landed in a write
    temp_bytes: int = 0  # how much of that temp file was written
    loaded: int = 0  # checkpoints that loaded with weights_only=True
    checkpoints: int = 0  # checkpoint files found
    progressed: bool = False  # the run committed a checkpoint newer than step_before before the kill
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error and self.progressed and self.loaded == self.checkpoints > 0


class KillLoop:
    """start -> (checkpoint committed) -> SIGKILL -> verify -> resume -> ... (see the module doc)."""

    def __init__(self, data_root: Path, out_dir: Path, seed: int, in_write_fraction: float = 0.9) -> None:
        self.data_root, self.out_dir = data_root, out_dir
        # In-write kills come up to this fraction of a typical write after its temp file appears.
        self.in_write_fraction = in_write_fraction
        self.ckpt_dir = out_dir / "checkpoints"
        self.rng = random.Random(seed)
        self.write_s: list[float] = []  # every completed checkpoint write seen
        self.step_s: list[float] = []  # time between consecutive commits of last.pt
        self.stderr_log = out_dir.parent / "train_stderr.log"  # the current run's

    @property
    def last(self) -> Path:
        return self.ckpt_dir / "last.pt"

    def _start(self, step: int) -> subprocess.Popen:
        resume = self.last if step else None
        cmd = train_command(self.data_root, self.out_dir, resume)
        self.stderr_log.parent.mkdir(parents=True, exist_ok=True)
        with self.stderr_log.open("w") as stderr:  # a file, not a pipe: a full pipe would stall the run
            return subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=stderr)

    def _wait(self, proc: subprocess.Popen, watch: CheckpointWatch, done: Callable[[], bool]) -> str:
        """Poll until ``done()``; an error text if the run ended or took too long first."""
        deadline = time.time() + RUN_TIMEOUT_S
        while not done():
            if proc.poll() is not None:
                return f"trainer exited with {proc.returncode}: {_tail(self.stderr_log.read_text())}"
            if time.time() > deadline:
                return f"no checkpoint within {RUN_TIMEOUT_S:.0f} s"
            time.sleep(POLL_S)
            watch.poll()
        return ""

    def cycle(self, index: int, step: int) -> Kill:
        """Start (``step`` 0) or resume the run, kill it, check what it left."""
        mode = "in_write" if index % 2 else "random"
        proc = self._start(step)
        watch = CheckpointWatch(self.out_dir, step)
        kill = Kill(index, mode, 0.0, step)
        try:
            # Armed once this run has committed a newer last.pt: the resume continued.
            kill.error = self._wait(proc, watch, watch.progressed)
            kill.progressed = not kill.error
            if kill.progressed and mode == "in_write":
                kill.error = self._wait(proc, watch, watch.writing)
                seen = self.write_s + watch.writes
                typical = statistics.median(seen) if seen else 0.3
                kill.delay_s = self.rng.uniform(0.0, self.in_write_fraction * typical)
            elif kill.progressed:
                typical = statistics.median(self.step_s) if self.step_s else 2.0
                kill.delay_s = self.rng.uniform(0.0, 2.0 * typical)
            end = time.time() + kill.delay_s
            while time.time() < end and proc.poll() is None:
                time.sleep(POLL_S)
                watch.poll()
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            proc.wait()
        temps = watch.temps()
        kill.write_interrupted = bool(temps)
        kill.temp_bytes = sum((self.ckpt_dir / name).stat().st_size for name in temps)
        self.write_s += watch.writes
        self.step_s += [b - a for a, b in zip(watch.commits, watch.commits[1:])]
        self._verify(kill)
        return kill

    def _verify(self, kill: Kill) -> None:
        files = sorted(self.ckpt_dir.glob("*.pt"))
        kill.checkpoints = len(files)
        for path in files:
            try:
                step = load_step(path)
            except Exception as exc:  # what a torn checkpoint would raise: recorded, not fatal
                kill.error = kill.error or f"{path.name} does not load: {exc}"
                continue
            kill.loaded += 1
            if path == self.last:
                kill.step_after = step
        if kill.progressed and kill.step_after <= kill.step_before and not kill.error:
            kill.error = f"last.pt at step {kill.step_after}, not past {kill.step_before}"

    def finish(self, step: int) -> dict[str, Any]:
        """The last resume: one more step to ``max_steps``, a normal end, a newer last.pt."""
        cmd = train_command(self.data_root, self.out_dir, self.last, max_steps=step + 1)
        proc = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
        final = load_step(self.last) if proc.returncode == 0 else -1
        return {
            "from_step": step,
            "returncode": proc.returncode,
            "final_step": final,
            "ok": proc.returncode == 0 and final == step + 1,
            "stderr": _tail(proc.stderr) if proc.returncode else "",
        }


def kill_loop(
    kills: int,
    seed: int,
    workdir: Path,
    data_root: Path,
    say: Say = print,
    in_write_fraction: float = 0.9,
    finish: bool = True,
) -> dict[str, Any]:
    """``kills`` SIGKILLs of a resumed tiny training run (see the module docstring); ``finish``: the
    last resume too (a caller may run it itself: ``train_run/checkpoints/last.pt``)."""
    shutil.rmtree(workdir / "train_run", ignore_errors=True)  # a fresh start, also in a reused workdir
    loop = KillLoop(data_root, workdir / "train_run", seed, in_write_fraction)
    records: list[Kill] = []
    step = 0
    start = time.time()
    for index in range(1, kills + 1):
        kill = loop.cycle(index, step)
        records.append(kill)
        say(
            f"[kill {index:2d}/{kills}] {kill.mode:<8} +{kill.delay_s:5.2f} s  step {kill.step_before:3d} -> "
            f"{kill.step_after:3d}  {'IN WRITE' if kill.write_interrupted else 'between writes'}  "
            f"loaded {kill.loaded}/{kill.checkpoints}  {'ok' if kill.ok else 'FAILED: ' + kill.error}"
        )
        if kill.step_after < 0:
            break  # nothing to resume from: the loop cannot go on
        step = kill.step_after
    final = loop.finish(step) if finish else None
    if final is not None:
        verdict = "ok" if final["ok"] else "FAILED: " + final["stderr"]
        say(f"[final resume] step {final['from_step']} -> {final['final_step']}: {verdict}")
    final_ok = final is None or final["ok"]
    return {
        "kills": len(records),
        "kills_in_write": sum(k.write_interrupted for k in records),
        "kills_ok": sum(k.ok for k in records),
        "checkpoints_loaded": sum(k.loaded for k in records),
        "checkpoints_checked": sum(k.checkpoints for k in records),
        # Every run but the first is a --resume of the previous run's last.pt.
        "resumes_continued": sum(k.progressed for k in records[1:]) + int(final is not None and final_ok),
        "resumes": len(records) - 1 + int(final is not None),
        "final_resume": final,
        "checkpoint_write_s_median": statistics.median(loop.write_s) if loop.write_s else None,
        "step_s_median": statistics.median(loop.step_s) if loop.step_s else None,
        "checkpoint_bytes": loop.last.stat().st_size if loop.last.is_file() else None,
        "wall_s": time.time() - start,
        "ok": bool(records) and all(k.ok for k in records) and final_ok,
        "records": [asdict(k) | {"ok": k.ok} for k in records],
    }


def _tail(text: str | None, lines: int = 3) -> str:
    return " | ".join((text or "").strip().splitlines()[-lines:])


# --- a full disk: a file size limit in a subprocess --------------------------------------------------
# Runs ``python -m MODULE ARGS`` with RLIMIT_FSIZE set from the start, or armed when the process first
# opens a file named TRIGGER for writing (builtins.open: the files module's atomic writes use it).
LIMITED_RUNNER = """
import builtins, pathlib, resource, runpy, signal, sys
limit, trigger, module = sys.argv[1], sys.argv[2], sys.argv[3]
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
arm = lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (int(limit), int(limit)))
if limit == "none":
    pass
elif trigger:
    real_open = builtins.open
    def watching_open(file, mode="r", *args, **kwargs):
        if pathlib.Path(str(file)).name == trigger and any(c in mode for c in "wax+"):
            arm()
        return real_open(file, mode, *args, **kwargs)
    builtins.open = watching_open
else:
    arm()
sys.argv = [module, *sys.argv[4:]]
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""


def run_limited(
    module: str, args: Sequence[Any], limit: int | None, trigger: str = "", timeout: float = RUN_TIMEOUT_S
) -> subprocess.CompletedProcess:
    """``python -m module args`` whose writes fail with EFBIG past ``limit`` bytes per file (None: no
    limit); with ``trigger``, the limit is armed when a file of that name is opened for writing."""
    limit_arg = "none" if limit is None else str(limit)
    cmd = [sys.executable, "-c", LIMITED_RUNNER, limit_arg, trigger, module, *map(str, args)]
    return subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=timeout)


@dataclass
class DiskFullCase:
    """One writer run into a full disk, and what it left."""

    name: str
    target: str  # the file whose write must fail
    limit: int  # RLIMIT_FSIZE, bytes
    returncode: int
    stderr_lines: list[str]
    reason_named: bool  # the error line names the target and "file too large"/"no space left"
    previous_intact: bool  # the file(s) from before are byte-identical
    temps_left: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        one_line = len(self.stderr_lines) == 1
        return (
            self.returncode != 0
            and one_line
            and self.reason_named
            and self.previous_intact
            and not self.temps_left
        )


REASONS = ("file too large", "no space left")


def _case(
    name: str,
    target: Path,
    limit: int,
    proc: subprocess.CompletedProcess,
    before: dict[str, str],
    after: dict[str, str],
    temps: list[Path],
) -> DiskFullCase:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    error = lines[-1] if lines else ""
    return DiskFullCase(
        name=name,
        target=str(target),
        limit=limit,
        returncode=proc.returncode,
        stderr_lines=lines,
        reason_named=str(target) in error and any(r in error for r in REASONS),
        previous_intact=before == after,
        temps_left=[str(p) for p in temps],
    )


def tree_hashes(folder: Path) -> dict[str, str]:
    """{relative path: sha256} of every file under ``folder``."""
    return {str(p.relative_to(folder)): sha256(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def _temps(folder: Path) -> list[Path]:
    return sorted(folder.rglob(f"*{TEMP_SUFFIX}"))


def disk_full_checkpoint(ckpt: Path) -> list[DiskFullCase]:
    """``depth-train --resume ckpt`` whose first checkpoint write fails (1 MiB into the file and
    64 KiB before its end, the new checkpoint being as large as the old); ckpt must stay as it was."""
    size = ckpt.stat().st_size
    cases = []
    for what, limit in (("1 MiB in", 2**20), ("64 KiB before the end", size - 2**16)):
        for stale in _temps(ckpt.parent):  # a killed run's leftovers are not this case's
            stale.unlink()
        before = {ckpt.name: sha256(ckpt)}
        step = load_step(ckpt)
        proc = run_limited("training.train", ["--resume", ckpt, f"train.max_steps={step + 5}"], limit)
        after = {ckpt.name: sha256(ckpt)}
        case = _case(f"checkpoint ({what})", ckpt, limit, proc, before, after, _temps(ckpt.parent))
        case.previous_intact = case.previous_intact and load_step(ckpt) == step
        cases.append(case)
    return cases


def disk_full_export(ckpt: Path, out: Path) -> list[DiskFullCase]:
    """``depth-export`` over an existing model: the .onnx and its card must stay as they were."""
    args = ["--checkpoint", ckpt, "--out", out, "--latency-runs", "1"]
    good = run_limited("training.export", args, limit=None)  # the previous export
    if good.returncode != 0:
        raise RuntimeError(f"the reference export failed: {_tail(good.stderr)}")
    # The exporter's file is smaller than the final one by the metadata (~1 kB): a limit of all but
    # one byte of the final file fails the last write, the metadata rewrite.
    size = out.stat().st_size
    cases = []
    for what, limit in (("half of the file", size // 2), ("metadata rewrite", size - 1)):
        before = tree_hashes(out.parent)
        proc = run_limited("training.export", args, limit)
        name = f"ONNX export ({what})"
        cases.append(_case(name, out, limit, proc, before, tree_hashes(out.parent), _temps(out.parent)))
    return cases


def disk_full_replay(bag: Path, model: Path, out: Path) -> list[DiskFullCase]:
    """``depth-replay --force`` over an existing output folder: the folder must stay as it was."""
    args = [bag, "--model", model, "--out", out, "--force", "--quiet", "--storage", "sqlite3"]
    good = run_limited("depth_node.evaluation.replay_cli", args, limit=None)
    if good.returncode != 0:
        raise RuntimeError(f"the reference replay failed: {_tail(good.stderr)}")
    # Per case: the file that must fail, the trigger arming the limit, the limit, extra arguments.
    # The bag cases picture no frames: a frame panel (written while the bag is open) is bigger than
    # the limit; the figures case is that one (a figure's error names the output folder).
    no_panels = ["--report-frames", "0"]
    cases = []
    for name, target, trigger, limit, extra in (
        ("replay results.json", out / "results.json", "results.json" + TEMP_SUFFIX, 256, []),
        ("replay report.html", out / "report.html", "report.html" + TEMP_SUFFIX, 256, []),
        ("replay output bag (sqlite3)", out / "depth_bag", "", 16 * 1024, no_panels),
        ("replay output bag (mcap)", out / "depth_bag", "", 16 * 1024, [*no_panels, "--storage", "mcap"]),
        ("replay report figures (PNG)", out, "", 16 * 1024, ["--storage", "mcap"]),
    ):
        before = tree_hashes(out)
        proc = run_limited("depth_node.evaluation.replay_cli", [*args, *extra], limit, trigger=trigger)
        left = [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")] + _temps(out)
        cases.append(_case(name, target, limit, proc, before, tree_hashes(out), left))
    return cases


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 1024:.0f} KiB" if n >= 1024 else f"{n} B"


# --- everything, the table, the CLI -----------------------------------------------------------------
def run(kills: int, seed: int, workdir: Path, say: Say = print) -> dict[str, Any]:
    """The SIGKILL loop and the full-disk cases in ``workdir``; the results dict (also the JSON)."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    data_root = workdir / "kitti_raw"
    if not (data_root / DRIVE).is_dir():
        make_drive(data_root)
    start = time.time()
    loop = kill_loop(kills, seed, workdir, data_root, say)
    ckpt = workdir / "train_run" / "checkpoints" / "last.pt"
    cases = disk_full_checkpoint(ckpt)
    model = workdir / "export" / "model.onnx"
    cases += disk_full_export(ckpt, model)
    from depth_node.data.bag_convert import convert_drive

    bag = workdir / "drive_bag"
    if not bag.exists():
        convert_drive(data_root / DRIVE, bag, storage="sqlite3", lidar=False)
    cases += disk_full_replay(bag, model, workdir / "replay_out")
    for case in cases:
        line = case.stderr_lines[-1] if case.stderr_lines else "(no error line)"
        say(f"[disk full] {case.name}: {'ok' if case.ok else 'FAILED'}: {line}")
    return {
        "kills": loop,
        "disk_full": [asdict(c) | {"ok": c.ok} for c in cases],
        "disk_full_ok": sum(c.ok for c in cases),
        "disk_full_cases": len(cases),
        "ok": loop["ok"] and all(c.ok for c in cases),
        "seed": seed,
        "wall_s": time.time() - start,
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()},
    }


def print_table(result: dict[str, Any]) -> None:
    k = result["kills"]
    print()
    print(f"{'check':<52}{'result':>12}")
    rows = [
        ("SIGKILLs of a training run", f"{k['kills']}"),
        ("  of them while a checkpoint was written", f"{k['kills_in_write']}"),
        (
            "checkpoints loading weights_only after a kill",
            f"{k['checkpoints_loaded']}/{k['checkpoints_checked']}",
        ),
        ("resumes that continued (+ the final one)", f"{k['resumes_continued']}/{k['resumes']}"),
        ("checkpoint size", _size(k["checkpoint_bytes"] or 0)),
        ("checkpoint write, median", f"{k['checkpoint_write_s_median'] or float('nan'):.2f} s"),
    ]
    rows += [(f"disk full: {c['name']}", "ok" if c["ok"] else "FAILED") for c in result["disk_full"]]
    for label, value in rows:
        print(f"{label:<52}{value:>12}")
    for c in result["disk_full"]:
        print(f"  {c['name']}: {c['stderr_lines'][-1] if c['stderr_lines'] else '(no error line)'}")
    print(f"overall: {'ok' if result['ok'] else 'FAILED'} in {result['wall_s'] / 60:.1f} min")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20, help="SIGKILLs of the training run (default 20)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill delays")
    parser.add_argument(
        "--workdir", type=Path, help="where runs, models and bags go (default: a temporary folder)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary workdir")
    parser.add_argument("--json", type=Path, default=ROOT / "out" / "bench_crash_safety.json")
    args = parser.parse_args(argv)
    import tempfile

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench_crash_safety."))
    try:
        result = run(args.kills, args.seed, workdir)
    finally:
        if args.workdir is None and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print_table(result)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    print(f"[bench] wrote {args.json}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
