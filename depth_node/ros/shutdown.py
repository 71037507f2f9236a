"""A clean start and exit for the nodes' ``main``: one line for a refused command line, and a clean
exit after Ctrl-C however many SIGINTs arrive (ROS-free, so it is tested without rclpy).

A terminal's Ctrl-C under ``ros2 launch`` reaches a node twice: once through the terminal's process
group and once forwarded by launch. The first ends ``rclpy.spin``; a second one arriving while the
node destroys its publishers used to end the process with a KeyboardInterrupt traceback (exit -2,
"process has died"). While the node shuts down, further SIGINTs are ignored.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator


def init_or_one_line(init: Callable[[], None], node_name: str) -> bool:
    """Run ``rclpy.init``; when rcl refuses the command line (``-p image_topic:=`` has no value), say so
    in one line on stderr instead of a traceback and return False."""
    try:
        init()
    except RuntimeError as error:  # rclpy's RCLError is a RuntimeError
        print(f"[ERROR] [{node_name}]: cannot start: {' '.join(str(error).split())}", file=sys.stderr)
        return False
    return True


@contextlib.contextmanager
def sigint_ignored() -> Iterator[None]:
    """Ignore SIGINT inside the block (main thread only: Python handles signals there), then restore."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
