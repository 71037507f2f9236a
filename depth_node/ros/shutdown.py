"""A clean exit after Ctrl-C, however many SIGINTs arrive (ROS-free, so it is tested without rclpy).

A terminal's Ctrl-C under ``ros2 launch`` reaches a node twice: once through the terminal's process
group and once forwarded by launch. The first ends ``rclpy.spin``; a second one arriving while the
node destroys its publishers used to end the process with a KeyboardInterrupt traceback (exit -2,
"process has died"). While the node shuts down, further SIGINTs are ignored.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator


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
