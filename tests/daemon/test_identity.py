"""Every distinct project name gets its own stable, readable, runtime-safe agent identity."""

from __future__ import annotations

import re
from contextlib import closing
from pathlib import Path

import pytest

from sidekick.cli import main
from sidekick.config import load_config
from sidekick.models import agent_key, identity_text, legacy_agent_key, slugify
from sidekick.priorities.csv_file import CsvPrioritySource
from sidekick.priorities.memory import InMemorySource
from sidekick.reconciler import Reconciler
from sidekick.runners.memory import InMemoryRunner
from sidekick.runners.tmux import check_key
from sidekick.state import StateStore
from tests.daemon.world import HEADER

# Docker: [a-zA-Z0-9][a-zA-Z0-9_.-]+; tmux: no '.' or ':'. A key must satisfy both.
DOCKER_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")
# Docker image repository components (image tags are built from slugs too).
IMAGE_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*")

COLLIDING_BEFORE = [
    ("Бэкенд", "Фронтенд"),
    ("C++ SDK", "C SDK"),
    ("Foo Bar", "foo-bar"),
    ("Café", "Cafè"),
    ("日本語", "中文"),
    ("a/b", "a.b"),
]

ANY_SCRIPT = [
    "Бэкенд",
    "Фронтенд",
    "Київ",
    "Ελληνικά",
    "日本語プロジェクト",
    "中文",
    "한국어",
    "العربية",
    "עברית",
    "हिन्दी",
    "ไทย",
    "🚀 Launch",
    "Ünïcödé Straße",
    "tab\tseparated",
    "a:b.c",
    "caf\udce9 undecodable",
    "x" * 300,
]


@pytest.mark.parametrize(("first", "second"), COLLIDING_BEFORE)
def test_names_that_shared_a_slug_get_distinct_keys(first: str, second: str) -> None:
    assert legacy_agent_key(first) == legacy_agent_key(second)
    assert agent_key(first) != agent_key(second)


def test_keys_are_stable_and_readable() -> None:
    # Written out: a key is how a running agent is found again after an upgrade.
    assert agent_key("Бэкенд") == "sidekick-bekend_622612a5"
    assert agent_key("Фронтенд") == "sidekick-frontend_39f0c170"
    assert agent_key("C++ SDK") == "sidekick-c-sdk_dcc081b1"
    assert agent_key("C SDK") == "sidekick-c-sdk_993961f4"
    assert agent_key("Foo Bar") == "sidekick-foo-bar_fbc1a9f8"
    assert agent_key("Ελληνικά") == "sidekick-ellinika_8ab16615"
    assert agent_key("日本語") == "sidekick-project_77710aed"


@pytest.mark.parametrize("name", ["example-api", "Backend", "project-00042", "a1-b2-c3", "x"])
def test_names_that_already_were_keys_keep_todays_key(name: str) -> None:
    assert agent_key(name) == legacy_agent_key(name) == "sidekick-" + name.casefold()


@pytest.mark.parametrize(
    ("one", "same"),
    [("Foo Bar", "foo bar"), ("Foo Bar", "Foo   Bar"), ("Café", "Cafe\u0301"), ("ß", "SS")],
)
def test_case_spacing_and_normal_form_do_not_make_another_project(one: str, same: str) -> None:
    assert identity_text(one) == identity_text(same)
    assert agent_key(one) == agent_key(same)


@pytest.mark.parametrize("name", ANY_SCRIPT)
def test_every_key_is_a_valid_tmux_session_docker_name_and_file_name(name: str) -> None:
    key = agent_key(name)
    check_key(key)
    assert DOCKER_NAME.fullmatch(key)
    assert IMAGE_COMPONENT.fullmatch(slugify(name))
    assert len(key.encode()) <= 80


def test_every_script_and_length_keeps_names_apart() -> None:
    names = [*ANY_SCRIPT, *(f"{n} {i}" for n in ANY_SCRIPT for i in range(50)), "x" * 301]
    assert len({agent_key(n) for n in names}) == len(names)


def test_ten_thousand_similar_names_stay_apart() -> None:
    names = [f"{p}{i}{s}" for i in range(2500) for p, s in (("P ", ""), ("p-", "!"), ("p", "+"))]
    names += [f"p-{i}" for i in range(2500)]
    assert len({agent_key(n) for n in names}) == len(names)


def csv(tmp_path: Path, *rows: str) -> Path:
    path = tmp_path / "priorities.csv"
    path.write_text(HEADER + "".join(r + "\n" for r in rows), encoding="utf-8")
    return path


def test_rows_that_differ_only_by_case_or_spacing_are_one_ambiguous_project(
    tmp_path: Path,
) -> None:
    snapshot = CsvPrioritySource(csv(tmp_path, "Foo Bar,1,,,,,,,", "foo  bar,2,,,,,,,")).load()
    assert snapshot.projects == ()
    assert [(f.line, f.project) for f in snapshot.findings] == [(2, "Foo Bar"), (3, "foo  bar")]
    assert "duplicate project name 'Foo Bar' (also on line 3)" in str(snapshot.findings[0])


def test_rows_whose_keys_meet_are_a_finding_naming_both_lines(tmp_path: Path) -> None:
    # Two names whose 32-bit hashes meet, found by search: validate must still refuse them.
    assert agent_key("a?#'") == agent_key("a!/]|")
    path = csv(tmp_path, '"a?#\'",1,,,,,,,', "ok,2,,,,,,,", '"a!/]|",3,,,,,,,')
    snapshot = CsvPrioritySource(path).load()
    assert [p.name for p in snapshot.projects] == ["ok"]
    first, second = snapshot.findings
    assert (first.line, second.line) == (2, 4)
    assert "same agent name sidekick-a_c9a767fc as 'a!/]|' on line 4" in first.problem
    assert 'as "a?#\'" on line 2' in second.problem


def test_names_that_once_collided_all_pass_validate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [f'"{name}",{i},,,,,,,' for i, pair in enumerate(COLLIDING_BEFORE) for name in pair]
    path = csv(tmp_path, *rows)
    config = tmp_path / "config.yaml"
    config.write_text('agents:\n  default:\n    command: ["true"]\n    claude: false\n')
    assert main(["validate", "--config", str(config), "--file", str(path)]) == 0
    assert f"{len(rows)} valid project(s), 0 problem(s)" in capsys.readouterr().out


def test_validate_fails_a_list_whose_rows_would_share_an_agent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = csv(tmp_path, "Бэкенд,1,,,,,,,", "Фронтенд,2,Blocked,,,,,,", "БЭКЕНД,3,,,,,,,")
    config = tmp_path / "config.yaml"
    config.write_text('agents:\n  default:\n    command: ["true"]\n    claude: false\n')
    assert main(["validate", "--config", str(config), "--file", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"{path}:2 [Project]: duplicate project name 'Бэкенд' (also on line 4)" in out
    assert f"{path}:4 [Project]: duplicate project name 'БЭКЕНД' (also on line 2)" in out
    assert "1 valid project(s), 2 problem(s)" in out


def test_projects_root_names_directories_readably_and_by_key_where_made(
    tmp_path: Path,
) -> None:
    root = tmp_path / "code"
    (root / "website-redesign").mkdir(parents=True)
    path = tmp_path / "config.yaml"
    path.write_text(
        f"projects_root: {root}\nagents:\n  default:\n    command: [claude]\n    claude: false\n"
    )
    config = load_config(path, environ={})
    # The readable name a person makes by hand, as before keys were unique.
    assert config.project_directory("Website Redesign") == root / "website-redesign"
    assert config.project_directory("example-api") == root / "example-api"
    back, front = config.project_directory("Бэкенд"), config.project_directory("Фронтенд")
    assert (back, front) == (root / "bekend", root / "frontend")
    # Names that read the same are told apart by a directory named after the key.
    own = root / slugify("Foo Bar")
    own.mkdir()
    assert config.project_directory("Foo Bar") == own
    assert config.project_directory("foo-bar") == root / "foo-bar"


def root_config(tmp_path: Path) -> Path:
    root = tmp_path / "code"
    (root / "foo-bar").mkdir(parents=True)
    (root / "website-redesign").mkdir()
    path = tmp_path / "config.yaml"
    path.write_text(
        f"projects_root: {root}\ncapacity:\n  max_agents: 5\n"
        "agents:\n  default:\n    command: [claude]\n    claude: false\n"
    )
    return path


def test_validate_fails_rows_that_would_share_a_projects_root_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = root_config(tmp_path)
    path = csv(tmp_path, "Foo Bar,1,,,,,,,", "Website Redesign,2,,,,,,,", "foo-bar,3,,,,,,,")
    argv = ["validate", "--config", str(config), "--file", str(path)]
    assert main(argv) == 1
    out = capsys.readouterr().out
    root = tmp_path / "code"
    assert (
        f"{path}:2 [Project]: its directory {root / 'foo-bar'} would also be 'foo-bar''s"
        f" (names that read the same); make {root / 'foo-bar_fbc1a9f8'} for it" in out
    )
    assert f"{path}:4 [Project]: its directory {root / 'foo-bar'} would also be 'Foo Bar''s" in out
    assert "3 valid project(s), 2 problem(s)" in out
    (root / "foo-bar_fbc1a9f8").mkdir()
    assert main(argv) == 0


def test_rows_that_would_share_a_directory_are_blocked_not_started_together(
    tmp_path: Path,
) -> None:
    config = load_config(root_config(tmp_path), environ={})
    rows = [{"Project": n, "Priority": "1"} for n in ("Foo Bar", "foo-bar", "Website Redesign")]
    source, runner = InMemorySource(rows), InMemoryRunner()
    with closing(StateStore(tmp_path / "state.db")) as store:
        Reconciler(config, source, runner, store).tick()
        assert [s.project for s in runner.started] == ["Website Redesign"]
        for name, other in (("Foo Bar", "foo-bar"), ("foo-bar", "Foo Bar")):
            assert source.row(name)["Status"] == "Blocked"
            assert f"would also be {other!r}'s" in source.row(name)["Last Update"]
        (tmp_path / "code" / slugify("Foo Bar")).mkdir()
        for name in ("Foo Bar", "foo-bar"):
            source.edit(name, Status="Pending")
        Reconciler(config, source, runner, store).tick()
    directories = {s.project: s.cwd.name for s in runner.started}
    assert directories == {
        "Website Redesign": "website-redesign",
        "Foo Bar": "foo-bar_fbc1a9f8",
        "foo-bar": "foo-bar",
    }
