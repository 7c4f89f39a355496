"""What a deploy copies: computed here from the workspace and production directories."""

from __future__ import annotations

import subprocess
from pathlib import Path

from sidekick.production.files import plan_files
from sidekick.production.journal import Journal, apply_files, back_up, restore_files


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def _git(root: Path) -> None:
    subprocess.run(["git", "init", "-q", str(root)], check=True)


def test_gitignore_dockerignore_exclude_and_env_files_are_never_deployed(tmp_path: Path) -> None:
    workspace = _tree(
        tmp_path / "ws",
        {
            "app.py": "v2",
            "build/out.bin": "x",
            "debug.log": "x",
            "notes/draft.md": "x",
            ".env": "SECRET=dev",
            ".env.local": "SECRET=dev",
            ".gitignore": "build/\n",
            ".dockerignore": "# comment\n*.log\n",
        },
    )
    _git(workspace)
    production = _tree(tmp_path / "prod", {"app.py": "v1", ".env": "SECRET=prod"})
    plan = plan_files(workspace, production, ("notes",), delete=True)
    assert plan.added == (".dockerignore", ".gitignore")
    assert plan.changed == ("app.py",)
    assert plan.deleted == ()


def test_files_only_in_production_are_kept_unless_delete_is_on(tmp_path: Path) -> None:
    workspace = _tree(tmp_path / "ws", {"app.py": "v1"})
    production = _tree(tmp_path / "prod", {"app.py": "v1", "old.py": "gone", "data/x": "1"})
    kept = plan_files(workspace, production, ("data",), delete=False)
    assert kept.empty and kept.kept == ("old.py",)
    deleting = plan_files(workspace, production, ("data",), delete=True)
    assert deleting.deleted == ("old.py",) and deleting.count == 1


def test_a_file_of_the_same_size_but_other_bytes_is_changed(tmp_path: Path) -> None:
    workspace = _tree(tmp_path / "ws", {"a.txt": "abc"})
    production = _tree(tmp_path / "prod", {"a.txt": "abd"})
    assert plan_files(workspace, production, (), delete=False).changed == ("a.txt",)


def test_names_in_other_scripts_and_with_spaces_round_trip_through_backup_and_restore(
    tmp_path: Path,
) -> None:
    names = {"данные/отчёт.txt": "новый", "文件 名.md": "new", "café/menu (1).txt": "new"}
    workspace = _tree(tmp_path / "ws", {**names, "keep.bin": "same"})
    _git(workspace)
    production = _tree(tmp_path / "prod", {"данные/отчёт.txt": "старый", "keep.bin": "same"})
    (production / "run.sh").write_bytes(b"#!/bin/sh\n")
    (production / "run.sh").chmod(0o755)
    before = {p: p.read_bytes() for p in production.rglob("*") if p.is_file()}
    plan = plan_files(workspace, production, (), delete=True)
    assert set(plan.added) == {"文件 名.md", "café/menu (1).txt"}
    assert plan.changed == ("данные/отчёт.txt",) and plan.deleted == ("run.sh",)
    journal = back_up(tmp_path / "r1", production, plan, 1)
    apply_files(workspace, production, plan)
    assert (production / "данные/отчёт.txt").read_text() == "новый"
    assert not (production / "run.sh").exists()
    restore_files(tmp_path / "r1", production, Journal.read(tmp_path / "r1") or journal)
    after = {p: p.read_bytes() for p in production.rglob("*") if p.is_file()}
    assert after == before
    assert (production / "run.sh").stat().st_mode & 0o777 == 0o755


def test_the_manifest_names_the_content_not_the_time(tmp_path: Path) -> None:
    workspace = _tree(tmp_path / "ws", {"a.txt": "1"})
    production = _tree(tmp_path / "prod", {})
    first = plan_files(workspace, production, (), delete=False).manifest
    (workspace / "a.txt").write_text("1")
    assert plan_files(workspace, production, (), delete=False).manifest == first
    (workspace / "a.txt").write_text("2")
    assert plan_files(workspace, production, (), delete=False).manifest != first
