"""The host side of an orchestrator under test: its data directory, list and config."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

HEADER = "Project,Priority,Status,Agent,Last Update,Next Action,Deadline,GPU,Model\n"


@dataclass(frozen=True)
class World:
    """The host side of the orchestrator: the data directory and the projects in it."""

    data: Path

    @property
    def priorities(self) -> Path:
        return self.data / "priorities.csv"

    def add_project(self, name: str) -> Path:
        directory = self.data / "projects" / name
        directory.mkdir(parents=True, exist_ok=True)
        return directory

    def save_by_rename(self, rows: str) -> None:
        """Save the list the way vim or VS Code do: a new file renamed over the old one."""
        tmp = self.data / f".{self.priorities.name}.swp"
        tmp.write_text(HEADER + rows, encoding="utf-8")
        tmp.replace(self.priorities)


def world_config() -> dict[str, object]:
    """The orchestrator's config.yaml: the mock API, and a `sleeper` agent that just waits."""
    return {
        "priority_source": {"type": "csv", "csv": {"path": "priorities.csv"}},
        "projects_root": "/projects",
        "capacity": {"max_agents": 2, "gpu_slots": 0},
        "daemon": {"reconcile_interval": 2, "heartbeat_max_age": 15},
        "policy": {"stop_grace": 2},
        "api": {
            "base_url": "http://mock-claude:8080",
            "key_file": "/run/secrets/anthropic_api_key",
        },
        "agents": {
            "default": {},
            "sleeper": {"runner": "tmux", "command": ["sleep", "600"], "claude": False},
        },
    }
