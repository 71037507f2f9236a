"""A clean start and exit for the nodes' ``main``: one line for a refused command line, and a clean
exit after Ctrl-C however many SIGINTs arrive (ROS-free, so it is tested without rclpy).

A terminal's Ctrl-C under ``ros2 launch`` reaches a node twice: once through the terminal's process
group and once forwarded by launch. The first ends ``rclpy.spin``; a second one arriving while the
node destroys its publishers, or after ``main`` returned while Python exits, used to end the process
by SIGINT (exit -2, "process has died"). Once a node shuts down, further SIGINTs are ignored until the
process ends.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable


def init_or_one_line(init: Callable[[], None], node_name: str) -> bool:
    """Run ``rclpy.init``; when rcl refuses the command line (``-p image_topic:=`` has no value), say so
    in one line on stderr instead of a traceback and return False."""
    try:
        init()
    except RuntimeError as error:  # rclpy's RCLError is a RuntimeError
        print(f"[ERROR] [{node_name}]: cannot start: {' '.join(str(error).split())}", file=sys.stderr)
        return False
    return True


def ignore_sigint_from_now_on() -> None:
    """The node is shutting down and ``main`` returns next: SIGINT is ignored until the process ends
    (main thread only: Python handles signals there). Not restored: a Ctrl-C arriving while Python
    exits would otherwise turn exit code 0 into a death by SIGINT."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
