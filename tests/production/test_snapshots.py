from __future__ import annotations

from pathlib import Path

import pytest

from sidekick.production.health import REASON_LIMIT, Verdict, last_line
from sidekick.production.snapshots import (
    OBJECTS,
    Snapshot,
    apply_snapshot,
    collect,
    drop,
    kept,
    managed,
    numbers,
    restore_plan,
    take,
)


def _files(root: Path, files: dict[str, bytes]) -> None:
    for path, data in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)


def _kept(home: Path, number: int, production: Path, paths: list[str], kept: list[str]) -> None:
    take(home, number, production, paths, kept).write(home)


def test_a_snapshot_restores_contents_modes_and_deletes_what_later_releases_added(
    tmp_path: Path,
) -> None:
    home, production = tmp_path / "home", tmp_path / "production"
    _files(
        production, {"app.py": b"v1\r\n", "run.sh": b"#!/bin/sh\n", "docs/\u00e9t\u00e9.md": b"x"}
    )
    (production / "run.sh").chmod(0o755)
    _files(production, {"uploads/own.bin": b"\x00\xff"})
    _kept(home, 1, production, ["app.py", "run.sh", "docs/\u00e9t\u00e9.md"], ["uploads/own.bin"])
    # A later release: one file changed, one mode changed, one deleted, one added.
    _files(production, {"app.py": b"v2\n", "new.py": b"added"})
    (production / "run.sh").chmod(0o644)
    (production / "docs/\u00e9t\u00e9.md").unlink()
    _kept(home, 2, production, ["app.py", "run.sh", "new.py"], ["uploads/own.bin"])
    # Written by the app after that: no release holds it, so no rollback touches it.
    _files(production, {"data.db": b"live data", "uploads/own.bin": b"changed by the app"})
    first = Snapshot.read(home, 1)
    assert first is not None
    plan = restore_plan(first, production, managed(home))
    assert plan.added == ("docs/\u00e9t\u00e9.md",)
    assert plan.changed == ("app.py", "run.sh")
    assert plan.deleted == ("new.py",)
    apply_snapshot(home, first, production, plan)
    assert (production / "app.py").read_bytes() == b"v1\r\n"
    assert (production / "run.sh").stat().st_mode & 0o777 == 0o755
    assert (production / "docs/\u00e9t\u00e9.md").read_bytes() == b"x"
    assert not (production / "new.py").exists()
    assert (production / "data.db").read_bytes() == b"live data"
    assert (production / "uploads/own.bin").read_bytes() == b"changed by the app"
    assert restore_plan(first, production, managed(home)).empty


def test_contents_are_stored_once_and_dropped_with_the_last_snapshot_holding_them(
    tmp_path: Path,
) -> None:
    home, production = tmp_path / "home", tmp_path / "production"
    _files(production, {"a.txt": b"same", "b.txt": b"same", "c.txt": b"only in r1"})
    _kept(home, 1, production, ["a.txt", "b.txt", "c.txt"], [])
    (production / "c.txt").unlink()
    _kept(home, 2, production, ["a.txt", "b.txt"], [])
    assert numbers(home) == [2, 1]
    assert len(list((home / OBJECTS).iterdir())) == 2
    drop(home, 1)
    collect(home)
    assert numbers(home) == [2]
    assert not (home / "r1").exists()
    assert [p.read_bytes() for p in (home / OBJECTS).iterdir()] == [b"same"]


def test_an_unreadable_snapshot_counts_as_not_kept(tmp_path: Path) -> None:
    (tmp_path / "r3").mkdir()
    (tmp_path / "r3" / "release.json").write_text("{half")
    assert Snapshot.read(tmp_path, 3) is None
    assert Snapshot.read(tmp_path, 4) is None


@pytest.mark.parametrize(
    ("output", "reason"),
    [
        (
            'Traceback (most recent call last):\n  File "/app/probe.py", line 4\n'
            "urllib.error.HTTPError: HTTP Error 500: Internal Server Error\n\n",
            "urllib.error.HTTPError: HTTP Error 500: Internal Server Error",
        ),
        ("first\r\nlast\tone  \r\n\r\n", "last one"),
        ("    \n\n", ""),
        ("", ""),
        ("\u5065\u5eb7\u68c0\u67e5\u5931\u8d25\n", "\u5065\u5eb7\u68c0\u67e5\u5931\u8d25"),
        ("caf\u00e9 \u2014 d\u00e9faillance\n", "caf\u00e9 \u2014 d\u00e9faillance"),
    ],
)
def test_a_probes_reason_is_its_last_non_empty_line(output: str, reason: str) -> None:
    assert last_line(output) == reason


def test_a_long_last_line_is_cut_and_the_whole_output_stays_in_the_report() -> None:
    output = "Traceback\n" + "x" * 5000 + "\n"
    line = last_line(output)
    assert len(line) == REASON_LIMIT and line.endswith("...")
    verdict = Verdict(False, f"timed out: {line}", output)
    assert verdict.report() == f"timed out: {line}\n{output.strip()}"
    assert Verdict(True, "1 container(s) healthy").report() == "1 container(s) healthy"


@pytest.mark.parametrize(
    "text",
    [
        b'{"files": {}}',
        b'{"files": [], "kept": [], "images": {}}',
        b'{"files": {"a.txt": 5}, "kept": [], "images": {}}',
        b'{"files": {"a.txt": ["abc", "rw"]}, "kept": [], "images": {}}',
        b"[]",
        b"null",
        b'{"files": {}, "kept": [], "images": {}, "live_at": "\xff"}',
    ],
)
def test_a_damaged_snapshot_is_not_kept_and_is_logged_never_a_traceback(
    tmp_path: Path, text: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    home, production = tmp_path / "home", tmp_path / "production"
    _files(production, {"a.txt": b"kept"})
    _kept(home, 1, production, ["a.txt"], [])
    (home / "r2").mkdir()
    (home / "r2" / "release.json").write_bytes(text)
    assert Snapshot.read(home, 2) is None
    assert [s.number for s in kept(home)] == [1]
    assert managed(home) == {"a.txt"}
    assert "snapshot" in caplog.text and "damaged" in caplog.text
