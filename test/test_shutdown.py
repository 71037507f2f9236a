"""ros/shutdown.py: SIGINT ignored while a node shuts down, the previous handler back afterwards."""

from __future__ import annotations

import os
import signal
import threading

from depth_node.ros.shutdown import init_or_one_line, sigint_ignored


def test_sigint_is_ignored_inside_and_restored_after() -> None:
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with sigint_ignored():
            os.kill(os.getpid(), signal.SIGINT)  # would raise KeyboardInterrupt outside the block
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)


def test_outside_the_main_thread_it_changes_nothing() -> None:
    seen = []

    def worker() -> None:
        with sigint_ignored():
            seen.append(signal.getsignal(signal.SIGINT))

    before = signal.getsignal(signal.SIGINT)
    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen == [before]


def test_a_refused_init_is_one_line_and_false(capsys) -> None:
    def refuse() -> None:
        raise RuntimeError("failed to initialize rcl: Couldn't parse\n parameter override rule")

    assert init_or_one_line(refuse, "depth_node") is False
    err = capsys.readouterr().err
    expected = "failed to initialize rcl: Couldn't parse parameter override rule"
    assert err == f"[ERROR] [depth_node]: cannot start: {expected}\n"
    assert init_or_one_line(lambda: None, "depth_node") is True
