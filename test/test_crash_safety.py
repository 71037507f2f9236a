"""Crash safety: a SIGKILLed training run always leaves a checkpoint that loads and resumes, and a full
disk never leaves a torn file (depth_node/files.py; its writers: training/checkpoint.py,
training/export.py, the replay's outputs).

CI-sized runs of benchmarks/bench_crash_safety.py (loaded by path; ``benchmarks/`` is no package):
three SIGKILLs of a real tiny training subprocess (ResNet18 at 128x64, a checkpoint every step), two
of them the moment a checkpoint's temporary file appears, each followed by a resume that must
continue. A full disk is real: a file size limit (``RLIMIT_FSIZE``, SIGXFSZ ignored) makes writes
past it fail with EFBIG from the OS — set for this process around an in-process CLI call (the
limit's soft value, restored after), or for a subprocess from its start or from the moment it opens
the file that must fail (``bench.run_limited``).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import importlib.util
import resource
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from depth_node.evaluation.replay_cli import main as replay_main
from depth_node.files import WriteError, atomic_open, atomic_write_text, named_write_errors, temp_path
from training.checkpoint import RESUME_KEYS, load_checkpoint, save_checkpoint
from training.export import main as export_main
from training.train import main as train_main

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location(
    "bench_crash_safety", REPO / "benchmarks" / "bench_crash_safety.py"
)
bench = importlib.util.module_from_spec(_spec)
sys.modules["bench_crash_safety"] = bench  # dataclasses look their module up by name
_spec.loader.exec_module(bench)

KILLS = 3


@contextlib.contextmanager
def file_size_limit(limit: int) -> Iterator[None]:
    """A full disk for this process: a write past ``limit`` bytes of any file fails with EFBIG."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old_handler)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


@pytest.fixture
def restore_threads() -> Iterator[None]:
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def killed_run(module_tmp: Path) -> dict[str, Any]:
    """The SIGKILL loop: 3 kills, the 1st and 3rd the moment a checkpoint's temporary file appears.
    The last resume is the test's own (in this process: no second start of torch)."""
    workdir = module_tmp / "crash"
    data_root = workdir / "kitti_raw"
    bench.make_drive(data_root)
    result = bench.kill_loop(KILLS, 0, workdir, data_root, in_write_fraction=0.0, finish=False)
    return {**result, "last": workdir / "train_run" / "checkpoints" / "last.pt"}


# --- SIGKILL --------------------------------------------------------------------------------------
def test_sigkilled_training_leaves_a_loadable_checkpoint_and_resumes(
    killed_run: dict[str, Any], restore_threads: None
) -> None:
    records = killed_run["records"]
    assert len(records) == KILLS, records
    for kill in records:
        # Every checkpoint file loads with weights_only=True right after the kill ...
        assert kill["checkpoints"] >= 1 and kill["loaded"] == kill["checkpoints"], kill
        # ... and the killed run (a --resume of the previous one but for the first) had gone past it.
        assert kill["progressed"] and kill["step_after"] > kill["step_before"], kill
        assert not kill["error"], kill
    assert [k["step_before"] for k in records[1:]] == [k["step_after"] for k in records[:-1]]
    in_write = [k for k in records if k["write_interrupted"]]
    assert in_write, f"no kill landed while a checkpoint was written: {records}"

    # The last kill's checkpoint resumes too: depth-train --resume runs to max_steps and ends normally.
    last, step = killed_run["last"], records[-1]["step_after"]
    assert train_main(["--resume", str(last), f"train.max_steps={step + 1}"]) == 0
    # What --resume reads, checked here as well: torch.load(weights_only=True) and the resume keys.
    ckpt = torch.load(last, map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == step + 1 and set(RESUME_KEYS) <= set(ckpt)


# --- a full disk ------------------------------------------------------------------------------------
def test_checkpoint_save_into_a_full_disk_keeps_the_previous_file(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "last.pt", {"config": {}, "depth_net": {"w": torch.ones(10)}})
    before = digest(path)
    with file_size_limit(64 * 1024), pytest.raises(WriteError) as caught:
        save_checkpoint(path, {"config": {}, "depth_net": {"w": torch.zeros(100_000)}})  # 400 kB
    assert str(caught.value) == f"cannot write {path}: file too large"
    assert caught.value.errno == errno.EFBIG
    assert digest(path) == before and not temp_path(path).exists()
    assert torch.equal(load_checkpoint(path)["depth_net"]["w"], torch.ones(10))


def test_atomic_writes_leave_the_old_file_on_any_failure(tmp_path: Path) -> None:
    path = atomic_write_text(tmp_path / "results.json", "old")
    with file_size_limit(1024), pytest.raises(WriteError, match=r"results\.json: file too large"):
        atomic_write_text(path, "x" * 4096)
    with pytest.raises(KeyboardInterrupt), atomic_open(path, "w") as f:  # killed from inside
        f.write("half")
        raise KeyboardInterrupt
    assert path.read_text() == "old" and not temp_path(path).exists()
    with pytest.raises(WriteError, match=r"cannot write .*no_dir/x\.txt: no such file or directory"):
        atomic_write_text(tmp_path / "no_dir" / "x.txt", "text")
    assert atomic_write_text(path, "new").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


def test_depth_train_into_a_full_disk_is_one_error_line(
    killed_run: dict[str, Any], capsys: pytest.CaptureFixture, restore_threads: None
) -> None:
    last = killed_run["last"]
    for stale in last.parent.glob("*.tmp"):  # a killed run's leftovers are not this test's
        stale.unlink()
    before, step = digest(last), load_checkpoint(last, RESUME_KEYS)["global_step"]
    capsys.readouterr()
    with file_size_limit(2**20):
        code = train_main(["--resume", str(last), f"train.max_steps={step + 3}"])
    err = error_lines(capsys.readouterr().err)
    assert code == 1
    assert err == [
        f"depth-train: error: cannot write {last}: file too large (the previous checkpoint is kept)"
    ]
    assert digest(last) == before and load_checkpoint(last, RESUME_KEYS)["global_step"] == step
    assert not list(last.parent.glob("*.tmp"))


def test_depth_export_into_a_full_disk_is_one_error_line(
    killed_run: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "models" / "tiny.onnx"
    args = ["--checkpoint", str(killed_run["last"]), "--out", str(out), "--latency-runs", "1"]
    assert export_main(args) == 0
    before = bench.tree_hashes(out.parent)
    assert sorted(before) == ["tiny.md", "tiny.onnx"]
    capsys.readouterr()
    with file_size_limit(out.stat().st_size // 2):
        code = export_main(args)
    err = error_lines(capsys.readouterr().err)
    assert code == 1
    assert err == [f"depth-export: error: cannot write {out}: file too large"]
    assert bench.tree_hashes(out.parent) == before  # the model and its card as they were, no temp


def test_depth_replay_into_a_full_disk_keeps_the_old_output(
    tmp_path: Path, tiny_model: Path, write_small_bag: Any
) -> None:
    bag = write_small_bag(tmp_path / "bag")
    out = tmp_path / "replay"
    args = [bag, "--model", tiny_model, "--out", out, "--force", "--quiet", "--storage", "mcap"]
    assert replay_main([str(a) for a in args]) == 0  # the output a failed replay must not touch
    before = bench.tree_hashes(out)
    assert {"results.json", "report.html", "depth_bag/depth_bag.mcap"} <= set(before)
    cases = [  # the file that must fail, the limit armed when its temporary opens, extra arguments
        (out / "results.json", "results.json.tmp", []),
        (out / "depth_bag", "", ["--report-frames", "0"]),  # armed from the start: the bag fails first
    ]
    for target, trigger, extra in cases:
        proc = bench.run_limited("depth_node.evaluation.replay_cli", [*args, *extra], 256, trigger)
        assert proc.returncode == 1, proc.stderr
        assert error_lines(proc.stderr) == [
            f"depth-replay: error: cannot write {target}: file too large; {out} left as it was"
        ]
        assert bench.tree_hashes(out) == before, target
        assert sorted(p.name for p in tmp_path.iterdir()) == ["bag", "replay"], target  # no temp folder


def test_only_write_failures_become_write_errors(tmp_path: Path) -> None:
    # An error raised `from None` over an OSError (how the replay reports an unreadable bag) is no
    # write failure: it must keep its own message.
    def unreadable() -> None:
        try:
            raise OSError(errno.EIO, "Input/output error")
        except OSError:
            raise ValueError("cannot read bag x.db3") from None

    with pytest.raises(ValueError, match="cannot read bag"), named_write_errors(tmp_path / "out"):
        unreadable()
    with pytest.raises(WriteError, match=r"cannot write .*out: input/output error"):
        with named_write_errors(tmp_path / "out"):
            raise RuntimeError("writer failed") from OSError(errno.EIO, "Input/output error")
