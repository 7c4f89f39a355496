"""Shared helpers for the bench scripts: a scratch world and small statistics."""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from sidekick.runners.tmux import TmuxRunner

HEADER = "Project,Priority,Status,Agent,Last Update,Next Action,Deadline,GPU,Model\n"


def scratch(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"sidekick-bench-{prefix}-"))


def write_config(root: Path, projects: list[str], command: list[str], **extra: object) -> Path:
    directories = {}
    for name in projects:
        (root / "projects" / name).mkdir(parents=True, exist_ok=True)
        directories[name] = str(root / "projects" / name)
    settings: dict[str, object] = {
        "projects": directories,
        "daemon": {"state_dir": "state", "reconcile_interval": 30},
        "tmux": {"socket": str(root / "tmux.sock")},
        "agents": {"default": {"command": command, "claude": False}},
    }
    settings.update(extra)
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path


def save_by_rename(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.bench~")
    tmp.write_text(text)
    tmp.replace(path)


def kill_tmux(socket: Path) -> None:
    """End the bench's agents (they outlive a killed tmux server) and the server."""
    TmuxRunner(socket).end_all()


def median_p95(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered), p95


@contextmanager
def daemon_process(config: Path) -> Iterator[int]:
    """A real `sidekick run` on this config, stopped with its tmux server; yields its pid."""
    daemon = subprocess.Popen(
        [sys.executable, "-m", "sidekick", "run", "--config", str(config), "--log-level", "WARNING"]
    )
    try:
        yield daemon.pid
    finally:
        daemon.terminate()
        daemon.wait(10)
        kill_tmux(config.parent / "tmux.sock")


@contextmanager
def running_daemon(name: str, projects: int, agents: int) -> Iterator[tuple[Path, int]]:
    """A real `sidekick run` over Pending projects whose agents sleep; yields (config, pid)."""
    root = scratch(name)
    names = [f"p{i:03d}" for i in range(projects)]
    config = write_config(
        root, names, ["sleep", "600"], capacity={"max_agents": agents, "gpu_slots": 0}
    )
    rows = "".join(f"{n},{i},Pending,,,,,,\n" for i, n in enumerate(names))
    save_by_rename(root / "priorities.csv", HEADER + rows)
    with daemon_process(config) as pid:
        yield config, pid
