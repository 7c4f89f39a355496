"""What a deploy copies: computed here from the workspace and production directories."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

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


def _git_or_plain(root: Path, kind: str) -> None:
    """A git workspace is listed by git itself, any other is walked: both must agree."""
    if kind == "git":
        _git(root)


@pytest.mark.parametrize("kind", ["git", "plain"])
def test_dockerignore_negations_double_stars_and_directories_follow_docker(
    tmp_path: Path, kind: str
) -> None:
    dockerignore = (
        "# comment\n*.log\n!keep.log\ndocs\n!docs/README.md\n**/*.tmp\ncache/\n"
        "Dockerfile\n  spaced.txt  \n"
    )
    kept = ["Dockerfile", "app.py", "docs/README.md", "keep.log", "sub/debug.log"]
    skipped = ["debug.log", "docs/a.md", "x.tmp", "a/b/c.tmp", "cache/x", "spaced.txt"]
    workspace = _tree(
        tmp_path / "ws", {".dockerignore": dockerignore, **dict.fromkeys(kept + skipped, "x")}
    )
    _git_or_plain(workspace, kind)
    plan = plan_files(workspace, _tree(tmp_path / "prod", {}), (), delete=False)
    # `*.log` is anchored at the root as Docker reads it; the Dockerfile is always sent.
    assert plan.added == tuple(sorted([".dockerignore", *kept]))


@pytest.mark.parametrize("kind", ["git", "plain"])
def test_nested_gitignore_files_apply_to_their_own_subtree(tmp_path: Path, kind: str) -> None:
    kept = ["app.py", "local.txt", "only-here", "lib/deeper/only-here", "sub/keep.log"]
    skipped = [
        "a.log",
        "build/out.bin",
        "sub/build/out.bin",
        "sub/other.log",
        "sub/local.txt",
        "lib/only-here",
        "vendor/keep.txt",
    ]
    ignores = {
        ".gitignore": "*.log\nbuild/\nvendor/\n!vendor/keep.txt\n",
        "sub/.gitignore": "!keep.log\nlocal.txt\n",
        "lib/.gitignore": "/only-here\n",
    }
    workspace = _tree(tmp_path / "ws", {**ignores, **dict.fromkeys(kept + skipped, "x")})
    _git_or_plain(workspace, kind)
    plan = plan_files(workspace, _tree(tmp_path / "prod", {}), (), delete=False)
    assert plan.added == tuple(sorted([*ignores, *kept]))


def test_configured_exclude_reads_as_gitignore_and_never_brings_back_env_files(
    tmp_path: Path,
) -> None:
    kept = ["important.log", "sub/data", "sub/top.txt", "app.py"]
    skipped = ["x.log", "sub/y.log", "data/a", "top.txt", ".env", "sub/.env.prod"]
    workspace = _tree(tmp_path / "ws", dict.fromkeys(kept + skipped, "x"))
    exclude = ("*.log", "!important.log", "data/", "/top.txt", "!.env", "!.env.*")
    plan = plan_files(workspace, _tree(tmp_path / "prod", {}), exclude, delete=False)
    assert plan.added == tuple(sorted(kept))


def test_production_files_the_rules_skip_are_never_deleted(tmp_path: Path) -> None:
    workspace = _tree(
        tmp_path / "ws",
        {
            "app.py": "1",
            ".gitignore": "build/\n",
            ".dockerignore": "*.log\n",
            "sub/.gitignore": "*",
        },
    )
    _git(workspace)
    production = _tree(
        tmp_path / "prod",
        {
            "app.py": "1",
            "build/cache.bin": "x",
            "server.log": "x",
            "uploads/u.png": "x",
            "sub/state.db": "x",
            ".env": "SECRET=prod",
            "old.py": "gone",
        },
    )
    plan = plan_files(workspace, production, ("uploads/",), delete=True)
    assert plan.deleted == ("old.py",)
    assert plan.added == (".dockerignore", ".gitignore")


def test_after_the_copy_the_next_plan_finds_nothing_to_deploy(tmp_path: Path) -> None:
    workspace = _tree(
        tmp_path / "ws",
        {
            ".gitignore": "vendor/\n*.log\n",
            ".dockerignore": "docs\n!docs/README.md\n",
            "app.py": "2",
            "vendor/lib.js": "pinned",
            "docs/README.md": "read me",
            "docs/draft.md": "x",
            "run.log": "x",
            "pkg/__init__.py": "",
        },
    )
    _git(workspace)
    # A file git tracks although .gitignore names it is deployed like any other.
    subprocess.run(["git", "-C", str(workspace), "add", "-f", "vendor/lib.js"], check=True)
    production = _tree(tmp_path / "prod", {"app.py": "1", "old.py": "gone", "x.log": "kept"})
    plan = plan_files(workspace, production, (), delete=True)
    assert plan.added == (
        ".dockerignore",
        ".gitignore",
        "docs/README.md",
        "pkg/__init__.py",
        "vendor/lib.js",
    )
    assert plan.changed == ("app.py",) and plan.deleted == ("old.py",)
    apply_files(workspace, production, plan)
    files = {p.relative_to(production).as_posix() for p in production.rglob("*") if p.is_file()}
    assert files == {*plan.copied(), "x.log"}
    assert plan_files(workspace, production, (), delete=True).empty
    (workspace / "vendor/lib.js").write_text("upgraded")
    assert plan_files(workspace, production, (), delete=True).changed == ("vendor/lib.js",)
