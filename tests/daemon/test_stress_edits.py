"""A person editing the list as fast as tools can while agents start and finish loses nothing.

A "person" process makes over a thousand random edits to priorities.csv with
every save pattern people's tools use: a temp file renamed over the list, a
save in place in several ``write()`` calls with 2 ms pauses between them,
``sed -i``; changing a prompt or a priority, adding, deleting and reordering
rows. Meanwhile the reconciler (the real one, with the CSV source, the state
store and the in-memory runner) starts agents and writes their outcomes as the
test finishes them. Before each edit the person checks that every earlier edit
of theirs is still in the file; at the end every row holds the person's last
values and the daemon's last write-back for it.
"""

from __future__ import annotations

import csv
import io
import json
import random
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from sidekick.models import ProjectStatus, RowUpdate, WriteResult, agent_key
from sidekick.priorities.base import LastGoodSource
from sidekick.priorities.csv_file import CsvPrioritySource
from sidekick.reconciler import Reconciler
from sidekick.runners.memory import InMemoryRunner
from sidekick.state import StateStore
from tests.daemon.world import World, make_world
from tests.polling import wait_until

EDITS = 1_000
BASE = [f"base{i:02d}" for i in range(30)]
HEADER = ["Project", "Priority", "Status", "Agent", "Last Update", "Next Action"]
PERSON_COLUMNS = (0, 1, 5)
DAEMON_COLUMNS = {"Status": 2, "Agent": 3, "Last Update": 4}

PERSON = textwrap.dedent(
    """
    import csv, io, json, os, random, subprocess, sys, time
    path, edits, report, seed = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    rng = random.Random(seed)
    MINE = (0, 1, 5)
    lost = []
    counts = {}

    def read():
        with open(path, "rb") as f:
            raw = f.read()
        rows = csv.reader(io.StringIO(raw.decode(errors="replace"), newline=""))
        # A cut save leaves short rows; they are read padded, and the loss is reported.
        return raw, [r + [""] * (6 - len(r)) for r in rows]

    def settled():
        # A write-back that meets a save in the instant of its swap shows its own bytes
        # until it swaps back, microseconds later (longer when the machine is busy).
        # A person's editor that notices a change reads again once it settles; so does this.
        raw, rows = read()
        for _ in range(50):
            time.sleep(0.02)
            again = read()
            if again[0] == raw:
                break
            raw, rows = again
        return raw, rows

    def mine(rows):
        return [[r[i] for i in MINE] for r in rows[1:]]

    def render(rows):
        out = io.StringIO()
        csv.writer(out, lineterminator="\\n").writerows(rows)
        return out.getvalue().encode()

    def save_by_rename(raw, data):
        tmp = path + ".person~"
        with open(tmp, "wb") as f:
            f.write(data)
        # A careful editor: it saves only over what it loaded.
        if read()[0] != raw:
            return False
        os.replace(tmp, path)
        return True

    def save_in_place(raw, data):
        if read()[0] != raw:
            return False
        cuts = sorted(rng.sample(range(1, len(data)), 2))
        with open(path, "wb") as f:
            for start, end in zip([0, *cuts], [*cuts, len(data)]):
                f.write(data[start:end])
                f.flush()
                time.sleep(0.002)
        return True

    def save_with_sed(old, new):
        subprocess.run(["sed", "-i", f"s/{old}$/{new}/", path], check=True)
        return True

    expected = None
    glimpses = 0
    added = []
    n = 0
    while n < edits:
        raw, rows = read()
        if expected is not None and mine(rows) != expected:
            raw, rows = settled()
            glimpses += mine(rows) == expected
        if expected is not None and mine(rows) != expected:
            lost.append({"edit": n, "expected": expected, "found": mine(rows)})
            expected = mine(rows)
        body = rows[1:]
        choice = rng.random()
        pattern = rng.choice(["rename", "in_place", "sed"]) if choice < 0.5 else None
        if choice < 0.5:
            row = rng.choice(body)
            old, new = row[5], f"note-{row[0]}-{n}"
            row[5] = new
            if pattern == "sed":
                ok = save_with_sed(old, new)
                counts["sed"] = counts.get("sed", 0) + 1
                expected = mine([rows[0]] + body)
                n += 1
                continue
        elif choice < 0.65:
            rng.choice(body)[1] = str(rng.randint(1, 99))
        elif choice < 0.8:
            body.append([f"new{n}", str(100 + n), "Blocked", "", "", f"note-new{n}-{n}"])
            added.append(f"new{n}")
        elif choice < 0.9 and added:
            gone = added.pop(rng.randrange(len(added)))
            body = [r for r in body if r[0] != gone]
        else:
            rng.shuffle(body)
        pattern = pattern or rng.choice(["rename", "in_place"])
        data = render([rows[0]] + body)
        saved = save_in_place(raw, data) if pattern == "in_place" else save_by_rename(raw, data)
        if not saved:
            continue
        counts[pattern] = counts.get(pattern, 0) + 1
        expected = mine([rows[0]] + body)
        n += 1
        time.sleep(rng.uniform(0, 0.004))
    with open(report, "w") as f:
        json.dump({"expected": expected, "lost": lost, "counts": counts, "glimpses": glimpses}, f)
    """
)


class RecordingSource(CsvPrioritySource):
    """The CSV source, remembering the cells it last wrote to each row."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.last_written: dict[str, dict[str, str]] = {}

    def write_back(self, updates: Sequence[RowUpdate]) -> WriteResult:
        result = super().write_back(updates)
        for update in updates:
            if update.project in result.written:
                cells = self.last_written.setdefault(update.project, {})
                cells.update({k: " ".join(v.splitlines()) for k, v in update.cells().items()})
        return result


@pytest.fixture
def world(tmp_path: Path) -> World:
    rows = [f"{name},{i + 1},Pending,,,note-{name}-start" for i, name in enumerate(BASE)]
    world = make_world(tmp_path, BASE, ["true"], capacity={"max_agents": 3})
    world.csv.write_text(",".join(HEADER) + "\n" + "".join(r + "\n" for r in rows))
    return world


@pytest.fixture
def store(world: World) -> Iterator[StateStore]:
    opened = StateStore(world.state / "sidekick.db")
    yield opened
    opened.close()


def start_person(world: World, report: Path) -> subprocess.Popen[str]:
    command = [sys.executable, "-c", PERSON, str(world.csv), str(EDITS), str(report), "11"]
    return subprocess.Popen(command, stderr=subprocess.PIPE, text=True)


def finish_some(runner: InMemoryRunner, rng: random.Random) -> int:
    """End a random live agent now and then, the way agents end: at any moment."""
    live = [key for key, agent in runner.list_agents().items() if agent.exit_code is None]
    if live and rng.random() < 0.3:
        runner.finish(rng.choice(live), rng.choice([0, 0, 0, 1]))
        return 1
    return 0


def settled(reconciler: Reconciler, runner: InMemoryRunner, store: StateStore) -> bool:
    reconciler.tick()
    for key, agent in runner.list_agents().items():
        if agent.exit_code is None:
            runner.finish(key, 0)
    return not runner.list_agents() and not store.pending_updates()[0]


def test_a_thousand_edits_with_every_save_pattern_lose_nothing_while_agents_come_and_go(
    world: World, store: StateStore, tmp_path: Path
) -> None:
    source = RecordingSource(world.csv)
    runner = InMemoryRunner()
    reconciler = Reconciler(world.config(), LastGoodSource(source), runner, store)
    report = tmp_path / "person.json"
    rng = random.Random(5)
    person = start_person(world, report)
    ended = 0
    while person.poll() is None:
        reconciler.tick()
        ended += finish_some(runner, rng)
        time.sleep(0.005)
    assert person.returncode == 0, person.stderr.read() if person.stderr else ""
    wait_until(lambda: settled(reconciler, runner, store), timeout=30, what="the daemon settles")

    outcome = json.loads(report.read_text())
    assert outcome["lost"] == [], f"person edits lost: {outcome['lost'][:2]}"
    print(f"moments the list showed a write-back's bytes: {outcome['glimpses']}")
    assert sum(outcome["counts"].values()) == EDITS
    assert set(outcome["counts"]) == {"rename", "in_place", "sed"}
    assert ended > 20, "too few agents ended during the edits to prove anything"
    rows = list(csv.reader(io.StringIO(world.csv.read_text(), newline="")))[1:]
    assert [[r[i] for i in PERSON_COLUMNS] for r in rows] == outcome["expected"]
    by_name = {r[0]: r for r in rows}
    for project, cells in source.last_written.items():
        for column, value in cells.items():
            assert by_name[project][DAEMON_COLUMNS[column]] == value, (project, column)
    for name in BASE:
        assert by_name[name][2] in (ProjectStatus.COMPLETE.value, ProjectStatus.FAILED.value)
        assert by_name[name][3] == agent_key(name)
    # The rows the person added are Blocked: the daemon never had a word to write on them.
    for row in rows:
        if row[0] not in BASE:
            assert row[2:5] == [ProjectStatus.BLOCKED.value, "", ""], row


HALF_SAVE = """
import sys
data = open(sys.argv[1], "rb").read().replace(b"note-base29-start", b"note-base29-person")
with open(sys.argv[1], "wb") as f:
    f.write(data[: len(data) // 2])
    f.flush()
    print("half", flush=True)
    sys.stdin.readline()
    f.write(data[len(data) // 2 :])
"""


def test_a_reconcile_during_a_save_in_place_waits_quietly_and_loses_nothing(
    world: World, store: StateStore, caplog: pytest.LogCaptureFixture
) -> None:
    source = LastGoodSource(CsvPrioritySource(world.csv, lock_wait=0.2))
    runner = InMemoryRunner()
    reconciler = Reconciler(world.config(), source, runner, store)
    reconciler.tick()
    first = agent_key(BASE[0])
    runner.finish(first, 0)
    writer = subprocess.Popen(
        [sys.executable, "-c", HALF_SAVE, str(world.csv)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdout is not None and writer.stdout.readline() == "half\n"
    try:
        during = reconciler.tick()
    finally:
        assert writer.stdin is not None
        writer.stdin.write("go\n")
        writer.stdin.close()
        assert writer.wait(10) == 0
    assert "saving" in during.postponed
    assert during.snapshot is not None and len(during.snapshot.projects) == len(BASE)
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]
    reconciler.tick()
    rows = {line.split(",")[0]: line.split(",") for line in world.csv.read_text().splitlines()}
    assert rows["base29"][5] == "note-base29-person"
    assert rows[BASE[0]][2] == ProjectStatus.COMPLETE.value
