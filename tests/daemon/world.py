"""A small world for daemon tests: project directories, config, priorities.csv, tmux socket."""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

from sidekick.config import Config, load_config
from sidekick.models import Project
from sidekick.priorities.csv_file import CsvPrioritySource
from sidekick.runners.tmux import TmuxRunner

HEADER = "Project,Priority,Status,Agent,Last Update,Next Action,Deadline,GPU,Model\n"


@dataclass
class World:
    root: Path
    config_path: Path

    @property
    def csv(self) -> Path:
        return self.root / "priorities.csv"

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def socket(self) -> Path:
        return self.root / "tmux.sock"

    def config(self) -> Config:
        return load_config(self.config_path, environ={})

    def rows(self) -> dict[str, Project]:
        return CsvPrioritySource(self.csv).load().by_name()

    def save(self, rows: Iterable[str]) -> None:
        """Save the list the way editors do: a temp file renamed over it."""
        tmp = self.root / ".priorities.csv.swp~"
        tmp.write_text(HEADER + "".join(r + "\n" for r in rows))
        tmp.replace(self.csv)

    def sessions(self) -> list[str]:
        out = subprocess.run(
            ["tmux", "-S", str(self.socket), "list-sessions", "-F", "#{session_name}"],
            capture_output=True,
            text=True,
            check=False,
        )
        return sorted(line for line in out.stdout.splitlines() if line)

    def kill_tmux(self) -> None:
        """End every agent (they outlive a killed tmux server) and then the server."""
        TmuxRunner(self.socket).end_all()

    def kill_tmux_server(self) -> None:
        subprocess.run(
            ["tmux", "-S", str(self.socket), "kill-server"], capture_output=True, check=False
        )


def make_world(
    root: Path,
    projects: Iterable[str],
    command: list[str],
    /,
    *,
    rows: Iterable[str] = (),
    **overrides: object,
) -> World:
    """A world; ``overrides`` merge into the config's sections (``projects=`` adds blocks)."""
    directories = {}
    for name in projects:
        directory = root / "projects" / name
        directory.mkdir(parents=True, exist_ok=True)
        directories[name] = str(directory)
    settings: dict[str, object] = {
        "projects": directories,
        "daemon": {"state_dir": "state", "reconcile_interval": 60},
        "tmux": {"socket": str(root / "tmux.sock")},
        "agents": {"default": {"command": command, "claude": False}},
        "policy": {"stop_grace": 2},
    }
    for key, value in overrides.items():
        section = settings.setdefault(key, {})
        if isinstance(section, dict) and isinstance(value, dict):
            section.update(value)
        else:
            settings[key] = value
    config_path = root / "config.yaml"
    config_path.write_text(yaml.safe_dump(settings))
    world = World(root, config_path)
    world.save(rows)
    return world
