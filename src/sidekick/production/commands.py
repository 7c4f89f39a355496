"""The handlers of ``sidekick prod ...`` (see :mod:`sidekick.production.cli`)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

from sidekick.config import Config, load_config
from sidekick.containers.engine import ContainerEngine
from sidekick.production.detect import detect
from sidekick.production.detect import render as render_detect
from sidekick.production.status import project_status
from sidekick.production.status import render as render_status
from sidekick.production.store import ProductionStore
from sidekick.production.target import targets

Handler = Callable[[argparse.Namespace], int]


def _config(args: argparse.Namespace) -> Config:
    return load_config(args.config)


def _print_json(data: object) -> None:
    print(json.dumps(data, indent=2))


# --- detect ---------------------------------------------------------------------------


def cmd_detect(args: argparse.Namespace) -> int:
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
    config = _config(args)
    engine = ContainerEngine(config.containers)
    try:
        with ProductionStore(_db(config)) as store:
            statuses = [
                project_status(t, engine, _release_name(store, t.name))
                for t in targets(config, args.project)
            ]
    finally:
        engine.close()
    if args.json:
        _print_json([s.to_dict() for s in statuses])
    else:
        print(render_status(statuses) if statuses else "no project has a production block")
    return 0 if all(s.healthy for s in statuses) else 1


def _db(config: Config) -> Path:
    return config.daemon.state_dir / "sidekick.db"


def _release_name(store: ProductionStore, project: str) -> str:
    live = store.live(project)
    return live.name if live else ""


HANDLERS: dict[str, Handler] = {"detect": cmd_detect, "status": cmd_status}
