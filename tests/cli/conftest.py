"""A config with a one-row list, a state directory and its own tmux socket."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """``config.yaml`` for a list holding one project, ``Shop`` (a Node.js package), that has
    never run."""
    (tmp_path / "state").mkdir()
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "package.json").write_text('{"scripts": {"test": "jest"}}')
    (tmp_path / "priorities.csv").write_text(
        "Project,Priority,Status,Next Action\nShop,1,Pending,add a cart\n", encoding="utf-8"
    )
    path = tmp_path / "config.yaml"
    path.write_text(
        "daemon: {state_dir: state}\n"
        "priority_source: {type: csv, csv: {path: priorities.csv}}\n"
        f"tmux: {{socket: {tmp_path / 't.sock'}}}\n"
        "projects: {Shop: shop}\n",
        encoding="utf-8",
    )
    return path
