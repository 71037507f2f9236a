"""ros/shutdown.py: SIGINT ignored once a node shuts down (until the process ends), one line for a
refused command line."""

from __future__ import annotations

import os
import signal
import threading

from depth_node.ros.shutdown import ignore_sigint_from_now_on, init_or_one_line


def test_sigint_is_ignored_from_then_on() -> None:
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        ignore_sigint_from_now_on()
        os.kill(os.getpid(), signal.SIGINT)  # would raise KeyboardInterrupt otherwise
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def test_outside_the_main_thread_it_changes_nothing() -> None:
    before = signal.getsignal(signal.SIGINT)
    thread = threading.Thread(target=ignore_sigint_from_now_on)
    thread.start()
    thread.join()
    assert signal.getsignal(signal.SIGINT) is before


def test_a_refused_init_is_one_line_and_false(capsys) -> None:
    def refuse() -> None:
        raise RuntimeError("failed to initialize rcl: Couldn't parse\n parameter override rule")

    assert init_or_one_line(refuse, "depth_node") is False
    err = capsys.readouterr().err
    expected = "failed to initialize rcl: Couldn't parse parameter override rule"
    assert err == f"[ERROR] [depth_node]: cannot start: {expected}\n"
    assert init_or_one_line(lambda: None, "depth_node") is True
