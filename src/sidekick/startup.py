"""The ``sidekick`` command's entry point, which holds the garbage collector back while a
command starts.

A command's start imports its modules, builds its parser and reads its configuration:
objects that live as long as the process. CPython's cyclic collector walks them again
and again meanwhile and finds next to nothing to free: on a ``prod logs --tail 10000``,
30 collections (counted with ``gc.callbacks``), all before the first log line, 4-5 ms of
a 110 ms command on the 2-core CI machine. So the collector is off from the start until
the command calls :func:`started`, when its own work begins; the objects made so far are
then frozen (``gc.freeze``: kept out of every later collection) and the collector is on
again. This is the sequence the ``gc.freeze`` documentation gives for a process that
forks after its start.

Only the process's own command line is held: :func:`sidekick.cli.main` called with
arguments (tests, other Python code) leaves the collector as it finds it.
"""

from __future__ import annotations

import gc


class _Collector:
    held = False  # this module turned the collector off, and nobody has turned it on


def main() -> int:
    """The console script: ``sidekick ARGS``; returns the exit status."""
    if gc.isenabled():
        gc.disable()
        _Collector.held = True
    try:
        from sidekick.cli import main as command

        return command()
    finally:
        started()


def started() -> None:
    """The command's own work begins: the collector, if held, is on again, with what the
    start made frozen. Safe to call more than once, and a no-op when nothing was held."""
    if _Collector.held:
        _Collector.held = False
        gc.freeze()
        gc.enable()
