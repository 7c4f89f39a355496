"""``sidekick prod ...``: the production subcommands, registered under ``sidekick prod``.

This module stays light (argparse only): ``sidekick prod ACTION`` builds the parser
of that action alone, and the handlers and their docker imports live in
:mod:`sidekick.production.commands` and :mod:`sidekick.production.actions`, loaded
only when the action runs.
Exit codes: 0 done and healthy, 1 failed or unhealthy, 2 refused (not confirmed,
locked, an agent runs, the workspace is dirty).
"""

from __future__ import annotations

import argparse
import importlib
import re
from collections.abc import Callable, Mapping

from sidekick.startup import started

REFUSED = 2


def register(command: argparse.ArgumentParser, chosen: str | None = None) -> None:
    """The actions' parsers under ``command``: the ``chosen`` one alone, or every one when
    None (for ``sidekick prod -h`` and a name that is no action)."""
    sub = command.add_subparsers(metavar="ACTION", dest="prod_action")
    for name, helptext, options in _ACTIONS:
        if chosen not in (None, name):
            continue
        action = sub.add_parser(
            name, help=helptext, description=helptext, formatter_class=command.formatter_class
        )
        action.add_argument(
            "--config",
            help="config file (default: $SIDEKICK_CONFIG, ./config.yaml)",
            default=argparse.SUPPRESS,
        )
        action.add_argument("--json", action="store_true", help="machine-readable output")
        options(action)


def run(args: argparse.Namespace) -> int:
    if not args.prod_action:
        print("sidekick prod: name an action (detect, status, ...); see sidekick prod -h")
        return REFUSED
    # A look (status, logs) loads only what it needs: it is the command a person runs often.
    module = importlib.import_module(_HANDLERS[args.prod_action])
    handlers: Mapping[str, Callable[[argparse.Namespace], int]] = module.HANDLERS
    started()
    return handlers[args.prod_action](args)


def _detect_options(action: argparse.ArgumentParser) -> None:
    action.add_argument("project")
    action.add_argument("--path", help="the production directory (default: the configured one)")


def _status_options(action: argparse.ArgumentParser) -> None:
    action.add_argument("project", nargs="?")


def _logs_options(action: argparse.ArgumentParser) -> None:
    action.add_argument("project")
    action.add_argument("services", nargs="*", metavar="SERVICE", help="default: primary, else all")
    action.add_argument("--tail", type=int, help="last N lines of each container")
    action.add_argument(
        "--since", type=_moment, help="from this time: 10m, 2h, an ISO time, Unix seconds"
    )
    action.add_argument("--until", type=_moment, help="up to this time (same forms as --since)")
    action.add_argument("--follow", "-f", action="store_true", help="keep streaming")
    action.add_argument("--grep", type=_pattern, help="only lines matching this regular expression")
    action.add_argument("--timestamps", "-t", action="store_true", help="show each line's time")


def _moment(text: str) -> float | None:
    """``--since``/``--until`` in Unix seconds, read with the arguments: empty is no limit
    (``--since "$SINCE"`` with the variable unset), and one that is no time is a usage error
    (exit 2), as argparse makes every other."""
    if not text:
        return None
    from datetime import UTC, datetime

    from sidekick.production.logs import moment

    try:
        return moment(text, datetime.now(UTC))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _pattern(text: str) -> re.Pattern[bytes] | None:
    """``--grep``, compiled for the log's bytes: empty is no filter, and one that is no
    regular expression is a usage error (exit 2)."""
    if not text:
        return None
    try:
        return re.compile(text.encode())
    except re.error as exc:
        raise argparse.ArgumentTypeError(f"not a regular expression: {exc}") from None


def _restart_options(action: argparse.ArgumentParser) -> None:
    action.add_argument("project")
    action.add_argument("services", nargs="*", metavar="SERVICE", help="default: all")
    action.add_argument("--yes", "-y", action="store_true", help="do not ask (for scripts)")


def _deploy_options(action: argparse.ArgumentParser) -> None:
    action.add_argument("project")
    action.add_argument("--dry-run", action="store_true", help="show the plan, change nothing")
    action.add_argument("--yes", "-y", action="store_true", help="do not ask (for scripts)")


def _rollback_options(action: argparse.ArgumentParser) -> None:
    action.add_argument("project")
    action.add_argument("release", nargs="?", help="r3 or 3 (default: the previous one)")
    action.add_argument("--yes", "-y", action="store_true", help="do not ask (for scripts)")


def _history_options(action: argparse.ArgumentParser) -> None:
    action.add_argument("project")
    action.add_argument("--limit", type=int, default=20)


_LOOKS, _CHANGES = "sidekick.production.commands", "sidekick.production.actions"
_HANDLERS = {
    "detect": _LOOKS,
    "status": _LOOKS,
    "logs": _LOOKS,
    "history": _LOOKS,
    "restart": _CHANGES,
    "deploy": _CHANGES,
    "rollback": _CHANGES,
}

_ACTIONS: list[tuple[str, str, Callable[[argparse.ArgumentParser], None]]] = [
    ("detect", "find the Compose project of a project's production", _detect_options),
    ("status", "containers, health, uptime and release of production", _status_options),
    ("logs", "services' logs merged in time order", _logs_options),
    ("restart", "restart services and wait until they are healthy", _restart_options),
    ("deploy", "ship the workspace to production behind a health gate", _deploy_options),
    ("rollback", "go back to the previous (or a named) release", _rollback_options),
    ("history", "releases and the audit log", _history_options),
]
ACTIONS = frozenset(name for name, _, _ in _ACTIONS)
