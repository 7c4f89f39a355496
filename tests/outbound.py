"""What this process tried to reach over the network, seen through Python's audit hooks.

Every socket connect, datagram send and name lookup raises an audit event
(PEP 578) in whichever thread makes it, so a library's background threads are
seen as well as the caller's, without replacing any of the library's code.
"""

from __future__ import annotations

import contextlib
import ipaddress
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", ""})
_EVENTS = frozenset({"socket.connect", "socket.sendto", "socket.getaddrinfo"})


@dataclass
class Outbound:
    """The hosts named by connects, sends and lookups while recording."""

    hosts: list[str] = field(default_factory=list)

    def leaving_this_machine(self) -> list[str]:
        return [host for host in self.hosts if not is_local(host)]


def is_local(host: str) -> bool:
    if host.lower() in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%", maxsplit=1)[0]).is_loopback
    except ValueError:
        return False


_recorders: list[Outbound] = []
_recorders_lock = threading.Lock()
# Audit hooks cannot be removed, so the one hook is added once per process.
_hook_installed = threading.Event()


def _audit(event: str, args: tuple[object, ...]) -> None:
    if event not in _EVENTS or not _recorders:
        return
    host = _host_of(event, args)
    if host is None:
        return
    with _recorders_lock:
        for recorder in _recorders:
            recorder.hosts.append(host)


def _host_of(event: str, args: tuple[object, ...]) -> str | None:
    target = args[0] if event == "socket.getaddrinfo" else args[1]
    if isinstance(target, tuple) and target:
        target = target[0]
    if isinstance(target, bytes):
        target = target.decode(errors="replace")
    if not isinstance(target, str):
        return None
    # A Unix socket's address is a path (or an abstract name): always local.
    return "localhost" if target.startswith(("/", "\0")) else target


@contextlib.contextmanager
def recording(settle: float = 10.0) -> Iterator[Outbound]:
    """Record every host reached while the block runs and, after it, until the
    threads it started have ended (at most ``settle`` seconds): background work
    a library leaves behind counts too."""
    with _recorders_lock:
        if not _hook_installed.is_set():
            sys.addaudithook(_audit)
            _hook_installed.set()
    outbound = Outbound()
    before = set(threading.enumerate())
    with _recorders_lock:
        _recorders.append(outbound)
    try:
        yield outbound
        _join_new_threads(before, time.monotonic() + settle)
    finally:
        with _recorders_lock:
            _recorders.remove(outbound)


def _join_new_threads(before: set[threading.Thread], deadline: float) -> None:
    for thread in set(threading.enumerate()) - before:
        thread.join(max(0.0, deadline - time.monotonic()))
