"""Rows the daemon cannot start: an empty Next Action (a paid run with nothing to do) and a
directory that does not exist. ``sidekick validate`` says so before the daemon runs, and the
daemon starts none of them, says why on the row once, and starts the others."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sidekick.cli import main
from sidekick.config import Config
from sidekick.daemon import Daemon
from sidekick.launch import DEFAULT_NEXT_ACTION
from sidekick.models import AgentRun, Project, ProjectStatus
from sidekick.planner import NO_NEXT_ACTION, Hold, PlanInput, RunningAgent, Start, plan
from sidekick.priorities.memory import InMemorySource
from sidekick.row_checks import IMAGE_ENV, absent_directory
from sidekick.state import RunEnd, StateStore
from tests.daemon.world import HEADER, World, make_world
from tests.polling import wait_until

P = ProjectStatus
# Gives the row's Next Action to the agent as an argument, as Claude Code gets it as its prompt.
PROMPTED = ["sh", "-c", 'printf "%s\\n" "$SIDEKICK_NEXT_ACTION" > prompt.txt', "{next_action}"]
EMPTY_CELLS = {
    "empty": "",
    "spaces": "   ",
    "tab": "\t",
    "no-break space": "\u00a0",
    "ideographic space": "\u3000",
    "zero-width space": "\u200b",
    "byte order mark": "\ufeff",
    "word joiner and spaces": " \u2060 ",
}


def validate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], config: str, rows: list[str]
) -> tuple[int, str, Path]:
    path = tmp_path / "priorities.csv"
    path.write_text(HEADER + "".join(f"{row}\n" for row in rows), encoding="utf-8")
    config_path = tmp_path / "config.yaml"
    config_path.write_text(config, encoding="utf-8")
    code = main(["validate", "--config", str(config_path), "--file", str(path)])
    return code, capsys.readouterr().out, path


# --- an empty Next Action -----------------------------------------------------------


def test_validate_reports_the_issues_pending_row_with_an_empty_next_action(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "code").mkdir()
    config = f"projects:\n  empty-action: {tmp_path / 'code'}\n"
    code, out, path = validate(tmp_path, capsys, config, ["empty-action,5,Pending,,,,,no,"])
    assert code == 1
    assert f"{path}:2 [Next Action]: empty: it is what the agent is asked to do" in out
    assert "1 problem(s)" in out


@pytest.mark.parametrize("cell", list(EMPTY_CELLS.values()), ids=list(EMPTY_CELLS))
def test_a_next_action_that_shows_nothing_is_empty_in_every_source(cell: str) -> None:
    source = InMemorySource([{"Project": "p", "Priority": "1", "Next Action": cell}])
    (project,) = source.load().projects
    assert project.next_action == ""


@pytest.mark.parametrize(
    "text", ["修复登录测试", "- fix the flaky login test", "إصلاح الاختبار", "\u200bx", "🙂"]
)
def test_a_next_action_with_anything_to_see_is_kept_as_typed(text: str) -> None:
    source = InMemorySource([{"Project": "p", "Priority": "1", "Next Action": text}])
    (project,) = source.load().projects
    assert project.next_action == text


def test_rows_of_other_statuses_and_profiles_without_a_prompt_may_leave_it_empty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = "agents:\n  make:\n    command: [make]\n    claude: false\n"
    rows = [
        "blocked,1,Blocked,,,,,no,",
        "done,2,Complete,,,,,no,",
        "failed,3,Failed,,,,,no,",
        "person,4,In Progress,ana,,,,no,",
        "own command,5,Pending,,,,,no,make",
    ]
    code, out, _ = validate(tmp_path, capsys, config, rows)
    assert (code, out.splitlines()[-1].endswith("5 valid project(s), 0 problem(s)")) == (0, True)


def test_a_profile_that_puts_the_next_action_in_its_command_needs_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = "agents:\n  echo:\n    command: [printf, '%s', '{next_action}']\n    claude: false\n"
    code, out, path = validate(tmp_path, capsys, config, ["p,1,Pending,,,\u3000,,no,echo"])
    assert code == 1 and f"{path}:2 [Next Action]: empty" in out


@pytest.mark.parametrize(
    "profile",
    [
        "command: [cat]\n    stdin: 'Work on {project}: {next_action}'",
        "command: [sh, -c, 'echo \"$PROMPT\"']\n    stdin: ''\n    env: {PROMPT: '{next_action}'}",
        "command: [printf, '%s', 'do {next_action}']\n    stdin: ''",
    ],
    ids=["stdin template", "env template", "inside an argument"],
)
def test_a_profile_given_the_next_action_by_any_template_needs_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], profile: str
) -> None:
    config = f"agents:\n  own:\n    {profile}\n    claude: false\n"
    code, out, path = validate(tmp_path, capsys, config, ["p,1,Pending,,,,,no,own"])
    assert code == 1 and f"{path}:2 [Next Action]: empty" in out, out


def test_a_profile_given_only_the_project_and_directory_may_leave_it_empty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    profile = "command: [make, '{project}']\n    stdin: ''\n    env: {WHERE: '{directory}'}"
    config = f"agents:\n  own:\n    {profile}\n    claude: false\n"
    code, out, _ = validate(tmp_path, capsys, config, ["p,1,Pending,,,,,no,own"])
    assert (code, "[Next Action]" in out) == (0, False), out


def test_an_empty_next_action_takes_no_slot_and_is_said_whether_or_not_one_is_free() -> None:
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    empty = Project("empty", 1, P.PENDING, position=0)
    work = Project("work", 2, P.PENDING, next_action="go", position=1)
    busy = Project("busy", 9, P.IN_PROGRESS, "sidekick-busy", next_action="go", position=2)
    said = Hold("empty", NO_NEXT_ACTION, on_row=True)
    unprompted = frozenset({"empty"})
    free = plan(PlanInput([empty, work], {}, now, max_agents=1, no_next_action=unprompted))
    assert said in free
    assert [a.project.name for a in free if isinstance(a, Start)] == ["work"]
    agents = {busy.key: RunningAgent(busy.key, busy.name)}
    given = PlanInput([empty, busy], agents, now, max_agents=1, preempt=True)
    full = plan(PlanInput(**{**given.__dict__, "no_next_action": unprompted}))
    # Said with no slot free, and a row that cannot start preempts nobody.
    assert full == [said]


def world(tmp_path: Path, worlds: list[World], rows: list[str]) -> World:
    made = make_world(tmp_path, ["ok", *EMPTY_CELLS, "resumed"], PROMPTED, rows=rows)
    worlds.append(made)
    return made


def test_the_daemon_starts_no_row_with_an_empty_next_action_and_says_why_once(
    tmp_path: Path, worlds: list[World]
) -> None:
    cells = enumerate(EMPTY_CELLS.items())
    empties = [f'"{name}",{i},Pending,,,"{cell}",,no,' for i, (name, cell) in cells]
    # Below every empty row: a slot held by an empty row would keep it waiting.
    made = world(tmp_path, worlds, [*empties, "ok,99,Pending,,,write the notes,,no,"])
    config = made.config()
    daemon = Daemon(config)
    daemon.run_once()
    rows = made.rows()
    assert made.sessions() in (["sidekick-ok"], [])
    assert rows["ok"].status in (P.IN_PROGRESS, P.COMPLETE)
    for name in EMPTY_CELLS:
        assert rows[name].status is P.PENDING and rows[name].agent == ""
        assert rows[name].last_update.endswith(NO_NEXT_ACTION), name
    daemon.run_once()
    written = made.csv.read_bytes()
    daemon.run_once()
    daemon.run_once()
    # Said once: later reconciles write nothing more on those rows.
    assert made.csv.read_bytes() == written
    assert not (tmp_path / "projects" / "empty" / "prompt.txt").exists()


def test_validate_and_the_daemon_leave_our_interrupted_row_to_resume_its_session(
    tmp_path: Path, worlds: list[World], capsys: pytest.CaptureFixture[str]
) -> None:
    # A Claude Code profile that records how it was started, as the agent would resume.
    record = 'printf "%s\\n" "$@" > argv.txt; cat > stdin.txt'
    made = make_world(
        tmp_path,
        ["resumed"],
        PROMPTED,
        rows=["resumed,1,In Progress,sidekick-resumed,,,,no,"],
        agents={"default": {"command": ["sh", "-c", record, "sh"], "claude": True}},
    )
    worlds.append(made)
    config = made.config()
    code = main(["validate", "--config", str(made.config_path), "--file", str(made.csv)])
    assert (code, "[Next Action]" in capsys.readouterr().out) == (0, False)
    seed_interrupted_session(config, "resumed", "session-before-the-crash")
    Daemon(config).run_once()
    directory = tmp_path / "projects" / "resumed"
    wait_until((directory / "stdin.txt").exists, timeout=10)
    row = made.rows()["resumed"]
    assert (row.status, row.agent) != (P.PENDING, "")
    assert not row.last_update.endswith(NO_NEXT_ACTION)
    argv = (directory / "argv.txt").read_text(encoding="utf-8").split()
    assert argv[-2:] == ["--resume", "session-before-the-crash"]
    wait_until(lambda: (directory / "stdin.txt").read_text(encoding="utf-8") != "", timeout=10)
    assert (directory / "stdin.txt").read_text(encoding="utf-8") == DEFAULT_NEXT_ACTION


def seed_interrupted_session(config: Config, project: str, session_id: str) -> None:
    """A run of the project that ended interrupted after Claude Code gave it a session."""
    store = StateStore(config.daemon.state_dir / "sidekick.db")
    began = datetime(2026, 11, 30, 11, 0, tzinfo=UTC)
    run = AgentRun("run-before", project, "sidekick-" + project, ("claude",), began)
    store.begin_run(run)
    ended = RunEnd("interrupted", began + timedelta(minutes=5), session_id=session_id)
    store.end_run(run.run_id, ended)
    store.close()


def test_a_next_action_written_later_starts_the_row(tmp_path: Path, worlds: list[World]) -> None:
    made = world(tmp_path, worlds, ["empty,1,Pending,,,,,no,"])
    daemon = Daemon(made.config())
    daemon.run_once()
    made.save(["empty,1,Pending,,,now there is work,,no,"])
    daemon.run_once()
    assert made.rows()["empty"].status in (P.IN_PROGRESS, P.COMPLETE)


# --- directories that do not exist -----------------------------------------------------


def test_validate_reports_a_configured_project_directory_that_does_not_exist(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = "projects:\n  foo: /nonexistent/foo\n"
    code, out, path = validate(tmp_path, capsys, config, ["foo,1,Pending,,,do it,,no,"])
    assert code == 1
    assert (
        f"{path}:2 [Project]: directory /nonexistent/foo does not exist"
        f" (projects.foo in {tmp_path / 'config.yaml'})" in out
    )


def test_validate_reports_a_directory_column_and_a_projects_root_that_do_not_exist(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = "projects_root: /nonexistent\n"
    rows = ["api,1,Pending,,,do it,,no,", "later,2,Blocked,,,do it,,no,"]
    header_with_directory = HEADER.rstrip("\n") + ",Directory\n"
    path = tmp_path / "priorities.csv"
    path.write_text(header_with_directory + "web,3,Pending,,,do it,,no,,/home/me/code/web\n")
    (tmp_path / "config.yaml").write_text(config)
    code = main(["validate", "--config", str(tmp_path / "config.yaml"), "--file", str(path)])
    out = capsys.readouterr().out
    assert code == 1
    assert f"{tmp_path / 'config.yaml'} [projects_root]: directory /nonexistent does not" in out
    assert f"{path}:2 [Directory]: directory /home/me/code/web does not exist" in out
    (tmp_path / "code").mkdir()
    config = f"projects_root: {tmp_path / 'code'}\n"
    code, out, path = validate(tmp_path, capsys, config, rows)
    assert f"{path}:2 [Project]: directory {tmp_path / 'code' / 'api'} does not exist" in out
    assert f"(under projects_root {tmp_path / 'code'})" in out
    # A row the daemon would not start needs no directory yet.
    assert ":3 " not in out


def test_a_missing_projects_root_is_said_once_by_validate_as_the_daemon_says_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], worlds: list[World]
) -> None:
    rows = [f"p{i},{i},Pending,,,do it,,no," for i in range(1, 6)]
    made = make_world(tmp_path, [], PROMPTED, rows=rows, projects_root="/nonexistent")
    worlds.append(made)
    main(["validate", "--config", str(made.config_path), "--file", str(made.csv)])
    out = capsys.readouterr().out
    said = "directory /nonexistent does not exist"
    # One finding naming the one setting, not one per row under it.
    assert out.count(said) == 1, out
    assert f"{made.config_path} [projects_root]: {said}" in out
    assert "1 problem(s)" in out
    Daemon(made.config()).run_once()
    for row in made.rows().values():
        assert row.last_update.endswith(f" projects_root: {said}"), row.last_update


def test_a_relative_directory_is_under_projects_root_when_one_is_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "code" / "api").mkdir(parents=True)
    path = tmp_path / "priorities.csv"
    path.write_text(HEADER.rstrip("\n") + ",Directory\n" + "web,1,Pending,,,do it,,no,,api\n")
    (tmp_path / "config.yaml").write_text(f"projects_root: {tmp_path / 'code'}\n")
    code = main(["validate", "--config", str(tmp_path / "config.yaml"), "--file", str(path)])
    assert code == 0, capsys.readouterr().out


def test_in_the_container_a_missing_directory_says_where_projects_are_mounted() -> None:
    here = absent_directory(Path("/home/me/code/api"), environ={})
    assert here == "directory /home/me/code/api does not exist"
    there = absent_directory(Path("/home/me/code/api"), environ={IMAGE_ENV: "x"})
    assert there.startswith("directory /home/me/code/api does not exist in the container")
    assert "projects directory (SIDEKICK_PROJECTS_DIR) is mounted at /projects" in there


def test_the_daemon_in_the_container_blocks_a_host_path_with_the_mount_on_the_row(
    tmp_path: Path, worlds: list[World], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(IMAGE_ENV, "SIDEKICK_BASE_IMAGE=sidekick-base:bookworm")
    made = make_world(tmp_path, [], PROMPTED, rows=[])
    worlds.append(made)
    made.csv.write_text(
        HEADER.rstrip("\n") + ",Directory\napi,1,Pending,,,do it,,no,,/home/me/code/api\n"
    )
    Daemon(made.config()).run_once()
    row = made.rows()["api"]
    assert row.status is P.BLOCKED
    assert "/home/me/code/api does not exist in the container" in row.last_update
    assert "mounted at /projects" in row.last_update


def test_the_daemon_names_projects_root_when_the_root_itself_does_not_exist(
    tmp_path: Path, worlds: list[World]
) -> None:
    made = make_world(tmp_path, [], PROMPTED, rows=["api,1,Pending,,,do it,,no,"])
    worlds.append(made)
    made.config_path.write_text(made.config_path.read_text() + "projects_root: /nonexistent\n")
    Daemon(made.config()).run_once()
    row = made.rows()["api"]
    assert row.status is P.BLOCKED
    assert row.last_update.endswith("projects_root: directory /nonexistent does not exist")
