"""Malformed input never breaks the reader, and a person editing alongside never loses an edit."""

from __future__ import annotations

import contextlib
import json
import random
import subprocess
import sys
import textwrap
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sidekick.errors import SourceUnreadable, WriteConflict
from sidekick.models import ProjectStatus, RowUpdate
from sidekick.priorities.csv_file import CsvPrioritySource
from sidekick.priorities.csv_table import tokenize

HEADER = "Project,Priority,Status,Agent,Last Update,Next Action\n"
DAEMON_INDEXES = {2, 3, 4}

csv_chars = st.text(alphabet='ab ,"\r\n\t1é\ufeff', max_size=200)
fuzz_settings = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@fuzz_settings
@given(body=csv_chars)
def test_any_text_is_served_or_rejected_with_the_sources_own_error(
    tmp_path: Path, body: str
) -> None:
    path = tmp_path / "p.csv"
    path.write_bytes(body.encode("utf-8"))
    with contextlib.suppress(SourceUnreadable):
        CsvPrioritySource(path).load()


garbage_line = st.text(alphabet="ab ,1x-é\t", max_size=30)
balanced_quoted = st.text(alphabet='ab ,\n"', max_size=20).map(
    lambda s: 'z,"' + s.replace('"', '""') + '",'
)


@fuzz_settings
@given(
    garbage=st.lists(st.one_of(garbage_line, balanced_quoted), max_size=15),
    seed=st.integers(0, 1000),
)
def test_valid_rows_survive_garbage_around_them(
    tmp_path: Path, garbage: list[str], seed: int
) -> None:
    valid = [f"valid{i},{i},Pending,,,do {i}" for i in range(5)]
    lines = valid + garbage
    random.Random(seed).shuffle(lines)
    path = tmp_path / "p.csv"
    path.write_text(HEADER + "\n".join(lines) + "\n", encoding="utf-8")
    served = {p.name for p in CsvPrioritySource(path).load().projects}
    assert {f"valid{i}" for i in range(5)} <= served


@fuzz_settings
@given(body=csv_chars, status=st.sampled_from(list(ProjectStatus)), agent=st.text(max_size=8))
def test_write_back_changes_nothing_but_daemon_cells(
    tmp_path: Path, body: str, status: ProjectStatus, agent: str
) -> None:
    path = tmp_path / "p.csv"
    path.write_bytes((HEADER + "target,1,Pending,,,keep\n" + body).encode("utf-8"))
    before = tokenize(path.read_text(encoding="utf-8"))
    result = CsvPrioritySource(path).write_back([RowUpdate("target", status, agent, "now")])
    after = tokenize(path.read_text(encoding="utf-8"))
    assert len(after) == len(before)
    for old, new in zip(before, after, strict=True):
        for i, value in enumerate(old.values):
            if i not in DAEMON_INDEXES or "target" not in result.written:
                assert new.values[i] == value


PERSON = textwrap.dedent(
    """
    import csv, io, json, os, random, sys, time
    path, rounds, report = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    rng = random.Random(7)
    PERSON_COLS = (0, 1, 5)
    def read():
        with open(path, newline="") as f:
            return list(csv.reader(f))
    def mine(rows):
        return sorted(tuple(r[i] for i in PERSON_COLS) for r in rows[1:])
    expected = None
    added = []
    for n in range(rounds):
        rows = read()
        if expected is not None and mine(rows) != expected:
            lost = sorted(set(mine(rows)) ^ set(expected))
            print("person edit lost at round", n, lost, file=sys.stderr)
            sys.exit(1)
        body = rows[1:]
        action = rng.random()
        if action < 0.5:
            rng.choice(body)[5] = f"note {n}"
        elif action < 0.7:
            body.append([f"new{n}", str(100 + n), "Pending", "", "", f"added {n}"])
            added.append(f"new{n}")
        elif action < 0.85 and added:
            gone = added.pop(0)
            body = [r for r in body if r[0] != gone]
        else:
            rng.shuffle(body)
        rows = [rows[0]] + body
        out = io.StringIO()
        csv.writer(out, lineterminator="\\r\\n").writerows(rows)
        tmp = path + ".person~"
        with open(tmp, "w", newline="") as f:
            f.write(out.getvalue())
        os.replace(tmp, path)
        expected = mine(rows)
        # A fast person (or a sync tool) still takes a moment between a save and the next read.
        time.sleep(rng.uniform(0.001, 0.004))
    with open(report, "w") as f:
        json.dump(expected, f)
    """
)


def test_person_editing_alongside_many_write_backs_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "priorities.csv"
    base = [f"base{i}" for i in range(20)]
    rows = "".join(f"{name},{i},Pending,,,start\r\n" for i, name in enumerate(base))
    path.write_bytes((HEADER.replace("\n", "\r\n") + rows).encode())
    report = tmp_path / "person.json"
    person = subprocess.Popen(
        [sys.executable, "-c", PERSON, str(path), "400", str(report)],
        stderr=subprocess.PIPE,
        text=True,
    )
    rng = random.Random(3)
    last: dict[str, RowUpdate] = {}
    source = CsvPrioritySource(path)
    attempts = []
    conflicts = 0
    while person.poll() is None:
        name = rng.choice(base)
        update = RowUpdate(name, rng.choice(list(ProjectStatus)), f"agent-{rng.random():.6f}", "t")
        last[name] = update
        try:
            attempts.append(source.write_back([update]).attempts)
        except WriteConflict:
            conflicts += 1  # the daemon keeps the update and writes it on its next reconcile
    assert person.wait() == 0, person.stderr.read() if person.stderr else ""
    source.write_back(list(last.values()))

    person_state = json.loads(report.read_text())
    final = CsvPrioritySource(path).load()
    served = sorted([p.name, str(p.priority), p.next_action] for p in final.projects)
    assert served == person_state
    by_name = final.by_name()
    for name, update in last.items():
        assert by_name[name].status is update.status and by_name[name].agent == update.agent
    assert len(attempts) > 20
    raced = sum(a > 1 for a in attempts) + conflicts
    assert raced > 0, "the person never saved during a write-back, so nothing was proven"
