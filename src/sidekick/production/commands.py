"""The handlers of the ``sidekick prod`` commands that only look: detect, status, logs,
history (see :mod:`sidekick.production.cli`); those that change production live in
:mod:`sidekick.production.actions`, so a look never imports the deploy machinery.
``status`` and ``logs`` are the looks a person runs most, so each handler imports what it
alone needs: a run of ``prod status`` costs the interpreter, the configuration and one
list call over the engine's socket (no docker-py, see :mod:`sidekick.containers.wire`)."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, TextIO

from sidekick.config_cache import load_view
from sidekick.containers.engine import ContainerEngine
from sidekick.production.errors import ProductionError
from sidekick.production.target import Target, targets
from sidekick.production.view import ProductionView

if TYPE_CHECKING:
    from sidekick.config import Config
    from sidekick.production.logs import LogQuery
    from sidekick.production.store import ProductionStore

Handler = Callable[[argparse.Namespace], int]
LOG_BUFFER = 1 << 16


def _config(args: argparse.Namespace) -> Config:
    from sidekick.config import load_config

    return load_config(args.config)


def _view(args: argparse.Namespace) -> ProductionView:
    """What a look needs of the configuration: kept from the last look while nothing it
    was made from has changed (see :mod:`sidekick.config_cache`)."""
    return load_view(ProductionView, args.config)


def _print_json(data: object) -> None:
    print(json.dumps(data, indent=2))


# --- detect ---------------------------------------------------------------------------


def cmd_detect(args: argparse.Namespace) -> int:
    from sidekick.production.detect import detect
    from sidekick.production.detect import render as render_detect

    config = _config(args)
    settings = config.production.get(args.project)
    path = Path(args.path) if args.path else (settings.path if settings else None)
    engine = ContainerEngine(config.containers)
    try:
        found = detect(engine, args.project, path)
    finally:
        engine.close()
    workspace = config.project_directory(args.project)
    if args.json:
        _print_json([f.to_dict() for f in found])
    else:
        print(render_detect(args.project, workspace, found))
    return 0 if found else 1


# --- status ---------------------------------------------------------------------------


def cmd_status(args: argparse.Namespace) -> int:
    from sidekick.production.status import project_status
    from sidekick.production.status import render as render_status
    from sidekick.production.store import ProductionStore

    view = _view(args)
    engine = ContainerEngine(view.containers)
    try:
        with ProductionStore(_db(view.state_dir)) as store:
            statuses = [
                project_status(t, engine, _release_name(store, t.name))
                for t in targets(view, args.project)
            ]
    finally:
        engine.close()
    if args.json:
        _print_json([s.to_dict() for s in statuses])
    else:
        print(render_status(statuses) if statuses else "no project has a production block")
    return 0 if all(s.healthy for s in statuses) else 1


# --- logs -------------------------------------------------------------------------------


def cmd_logs(args: argparse.Namespace) -> int:
    from sidekick.production.logs import LogWriter, copy_logs

    view = _view(args)
    (chosen,) = targets(view, args.project)
    query = _log_query(args, chosen)
    out, err = _output(sys.stdout, query.follow), _output(sys.stderr, query.follow)
    writer = LogWriter(out, err, timestamps=query.timestamps, as_json=args.json)
    engine = ContainerEngine(view.containers)
    try:
        scoped = chosen.engine(engine)
        rows = chosen.select(scoped.list(), query.services)
        if not rows:
            raise ProductionError(
                chosen.name, f"no containers for {', '.join(query.services) or 'any service'}"
            )
        copy_logs(scoped, rows, query, writer)
    except BrokenPipeError:
        return 0
    finally:
        _close_quietly(out, err)
        engine.close()
    return 0


def _output(stream: TextIO, follow: bool) -> BinaryIO:
    """Our own buffer over the descriptor (PYTHONUNBUFFERED would write each line alone);
    a followed log is written through at once, so a person sees each line as it comes."""
    stream.flush()
    raw = io.FileIO(stream.fileno(), "w", closefd=False)
    return raw if follow else io.BufferedWriter(raw, LOG_BUFFER)


def _close_quietly(*streams: BinaryIO) -> None:
    for stream in streams:
        with contextlib.suppress(BrokenPipeError):
            stream.flush()


def _log_query(args: argparse.Namespace, chosen: Target) -> LogQuery:
    """The query of ``prod logs``; its times and pattern were read with the arguments."""
    from sidekick.production.logs import LogQuery

    primary = chosen.settings.primary
    return LogQuery(
        services=tuple(args.services) or ((primary,) if primary else ()),
        tail=args.tail,
        since=args.since,
        until=args.until,
        follow=args.follow,
        grep=args.grep,
        timestamps=args.timestamps,
    )


# --- history ----------------------------------------------------------------------------


def cmd_history(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from sidekick.production.store import ProductionStore

    view = _view(args)
    with ProductionStore(_db(view.state_dir)) as store:
        releases = store.releases(args.project, args.limit)
        audit = store.audit_log(args.project, args.limit)
    if args.json:
        _print_json(
            {"releases": [r.to_dict() for r in releases], "audit": [asdict(a) for a in audit]}
        )
        return 0
    print(f"{args.project}: releases")
    for r in releases:
        commit = r.git_commit[:10] or "-"
        print(f"  {r.name:<5} {_when(r.created_at)}  {r.state:<11} {commit:<10}  {r.detail}")
    print(f"{args.project}: audit log")
    for a in audit:
        took, reason = f"{a.seconds:.1f}s", a.detail.partition("\n")[0]  # --json has it whole
        print(f"  {_when(a.at)}  {a.who:<10} {a.action:<16} {a.outcome:<12} {took:>7}  {reason}")
    return 0


def _when(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds")


def _db(state_dir: Path) -> Path:
    return state_dir / "sidekick.db"


def _release_name(store: ProductionStore, project: str) -> str:
    """The live release; r0 (production as it was before the first deploy) when none is."""
    live = store.live(project)
    return live.name if live else "r0"


HANDLERS: dict[str, Handler] = {
    "detect": cmd_detect,
    "status": cmd_status,
    "logs": cmd_logs,
    "history": cmd_history,
}
