"""Ports on this machine: a free one to start a process on, whether something listens on one, and waiting until it
does. Every local tool and test uses these, so a port is found and waited for one way."""

from __future__ import annotations

import socket
import time
from typing import Callable

HOST = "127.0.0.1"


def free_port() -> int:
    """A port nothing listens on now (the OS picks it; a process started next may take it)."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def port_open(port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts connections on `port`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(timeout)
        return probe.connect_ex((HOST, port)) == 0


def wait_for_port(port: int, timeout: float, alive: Callable[[], bool] = lambda: True, every: float = 0.1) -> bool:
    """Waits until something listens on `port`: True once it does; False after `timeout`, or as soon as `alive()`
    says the process meant to listen has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(port):
            return True
        if not alive():
            return False
        time.sleep(every)
    return port_open(port)
