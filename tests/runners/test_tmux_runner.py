"""The tmux runner against a real tmux server on a socket of the test's own."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sidekick.errors import AgentAlreadyRunning, RunnerError
from sidekick.runners import agent_lock
from sidekick.runners.base import LiveAgent, exit_status_path, read_exit_status
from sidekick.runners.tmux import PaneRow, TmuxRunner, agent_pane_rows, join_commands
from tests.runners.helpers import (
    WAIT_FOR_RELEASE,
    group_alive,
    make_spec,
    read_pid,
    release,
    wait_for,
    write_script,
)

KEY = "sidekick-alpha"


def tmux(socket: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["tmux", "-S", str(socket), *args], check=False, capture_output=True, text=True
    )


def finished(runner: TmuxRunner, key: str = KEY) -> LiveAgent | None:
    agent = runner.list_agents().get(key)
    return agent if agent is not None and agent.finished else None


def run_to_end(runner: TmuxRunner, tmp_path: Path, body: str, **kwargs: object) -> LiveAgent:
    agent = write_script(tmp_path, "agent.sh", body)
    runner.start(make_spec(tmp_path, KEY, (str(agent),), **kwargs))  # type: ignore[arg-type]
    return wait_for(lambda: finished(runner), what="the agent to finish")


def test_everything_the_agent_prints_reaches_its_log_and_its_pane(
    tmux_runner: TmuxRunner, tmp_path: Path
) -> None:
    agent = run_to_end(tmux_runner, tmp_path, "echo to-stdout\necho to-stderr >&2\nexit 0\n")
    assert agent.exit_code == 0
    log = (tmp_path / "logs" / f"run-{KEY}.log").read_text()
    assert log.splitlines() == ["to-stdout", "to-stderr"]
    screen = tmux(tmux_runner.socket_path, "capture-pane", "-p", "-S", "-", "-t", f"={KEY}:").stdout
    assert "to-stdout" in screen and "to-stderr" in screen


def test_the_exit_status_file_beside_the_log_records_the_code(
    tmux_runner: TmuxRunner, tmp_path: Path
) -> None:
    run_to_end(tmux_runner, tmp_path, "exit 3\n", run_id="r7")
    assert exit_status_path(tmp_path / "logs" / "r7.log").read_text().strip() == "3"


def test_an_agent_killed_by_a_signal_ends_with_128_plus_the_signal(
    tmux_runner: TmuxRunner, tmp_path: Path
) -> None:
    agent = run_to_end(tmux_runner, tmp_path, "kill -s KILL $$\n")
    assert agent.exit_code == 128 + signal.SIGKILL


# Repeated: Debian's tmux misses the SIGCHLD of about one such pane in four, and
# the runner must notice and make it reap (see TmuxRunner._nudge_server).
@pytest.mark.parametrize("attempt", range(4))
def test_a_killed_wrapper_is_finished_with_the_signal_of_its_pane(
    tmux_runner: TmuxRunner, tmp_path: Path, attempt: int
) -> None:
    agent = write_script(tmp_path, "agent.sh", "sleep 60\n")
    tmux_runner.start(make_spec(tmp_path, KEY, (str(agent),)))
    pane_pid = int(
        tmux(tmux_runner.socket_path, "display", "-p", "-t", f"={KEY}:", "#{pane_pid}").stdout
    )
    os.kill(pane_pid, signal.SIGKILL)
    ended = wait_for(lambda: finished(tmux_runner), what="the pane to die")
    assert ended.exit_code == 128 + signal.SIGKILL
    assert not exit_status_path(tmp_path / "logs" / f"run-{KEY}.log").exists()


def test_the_status_file_is_the_truth_even_while_the_pane_lives(
    tmux_runner: TmuxRunner, tmp_path: Path
) -> None:
    agent = write_script(tmp_path, "agent.sh", "sleep 60\n")
    spec = make_spec(tmp_path, KEY, (str(agent),))
    tmux_runner.start(spec)
    assert not tmux_runner.list_agents()[KEY].finished
    exit_status_path(spec.log_path).write_text("5\n")
    assert tmux_runner.list_agents()[KEY].exit_code == 5


def pane_line(dead: str, status: str, sig: str, log: Path) -> str:
    fields = [KEY, "%1", "123", dead, status, sig, "1700000000", "99", "%1", "r1", str(log)]
    return "\x1f".join(fields)


def test_a_dead_pane_without_any_status_yet_is_not_finished(tmp_path: Path) -> None:
    # tmux marks a pane dead when its terminal closes, before it has collected
    # the exit status: that moment cannot be produced on demand, so the row is built.
    log = tmp_path / "r1.log"
    (row,) = agent_pane_rows([pane_line("1", "", "", log)]).values()
    assert row.dead and not row.to_agent().finished
    exit_status_path(log).write_text("0\n")
    assert row.to_agent().exit_code == 0


def test_a_pane_row_prefers_the_status_file_then_the_status_then_the_signal(
    tmp_path: Path,
) -> None:
    log = tmp_path / "r1.log"
    assert PaneRow.parse(pane_line("1", "4", "", log)).exit_code() == 4  # type: ignore[union-attr]
    assert PaneRow.parse(pane_line("1", "", "15", log)).exit_code() == 143  # type: ignore[union-attr]
    assert PaneRow.parse(pane_line("0", "", "", log)).exit_code() is None  # type: ignore[union-attr]
    exit_status_path(log).write_text("9\n")
    assert PaneRow.parse(pane_line("1", "4", "", log)).exit_code() == 9  # type: ignore[union-attr]


def test_a_pane_a_person_split_off_is_not_taken_for_the_agent(
    tmux_runner: TmuxRunner, tmp_path: Path
) -> None:
    agent = write_script(tmp_path, "agent.sh", "sleep 60\n")
    tmux_runner.start(make_spec(tmp_path, KEY, (str(agent),)))
    assert tmux(tmux_runner.socket_path, "split-window", "-t", f"={KEY}:", "exit 7").returncode == 0
    wait_for(
        lambda: (
            "1"
            in tmux(
                tmux_runner.socket_path, "list-panes", "-t", f"={KEY}:", "-F", "#{pane_dead}"
            ).stdout
        ),
        what="the split pane to die",
    )
    assert not tmux_runner.list_agents()[KEY].finished


def test_stop_ends_an_agent_and_its_whole_process_group_within_the_grace(
    tmux_runner: TmuxRunner, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pid"
    body = f'echo $$ > "{pid_file}"\nsleep 300 &\nsleep 300 &\nwait\n'
    agent = write_script(tmp_path, "agent.sh", body)
    tmux_runner.start(make_spec(tmp_path, KEY, (str(agent),)))
    group = read_pid(pid_file)
    assert group_alive(group)
    began = time.monotonic()
    tmux_runner.stop(KEY, grace_seconds=5)
    assert time.monotonic() - began < 5
    assert KEY not in tmux_runner.list_agents()
    wait_for(lambda: not group_alive(group), timeout=5, what="the process group to end")
    status = exit_status_path(tmp_path / "logs" / f"run-{KEY}.log").read_text()
    assert int(status) == 128 + signal.SIGTERM


def test_stop_kills_an_agent_that_ignores_sigterm_once_the_grace_is_over(
    tmux_runner: TmuxRunner, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pid"
    body = f"trap '' TERM\necho $$ > \"{pid_file}\"\nwhile :; do sleep 0.1; done\n"
    agent = write_script(tmp_path, "agent.sh", body)
    tmux_runner.start(make_spec(tmp_path, KEY, (str(agent),)))
    group = read_pid(pid_file)
    began = time.monotonic()
    tmux_runner.stop(KEY, grace_seconds=0.5)
    elapsed = time.monotonic() - began
    assert 0.5 <= elapsed < 3
    assert KEY not in tmux_runner.list_agents()
    wait_for(lambda: not group_alive(group), timeout=5, what="the process group to end")


def test_the_environment_and_working_directory_reach_the_agent(
    tmux_runner: TmuxRunner, tmp_path: Path
) -> None:
    workdir = tmp_path / "project #{session_name} ;"
    workdir.mkdir()
    out = tmp_path / "seen"
    show = 'pwd; echo "$GREETING"; echo "$SIDEKICK_RUN_ID"; echo "$SIDEKICK_LOG_PATH"'
    body = f'{{ {show}; }} > "{out}"\n'
    env = {"GREETING": "hello; $HOME #{pane_id}"}
    agent = run_to_end(tmux_runner, tmp_path, body, env=env, cwd=workdir, run_id="r42")
    assert agent.exit_code == 0
    assert out.read_text().splitlines() == [
        str(workdir),
        "hello; $HOME #{pane_id}",
        "r42",
        str(tmp_path / "logs" / "r42.log"),
    ]


def test_arguments_reach_the_agent_literally(tmux_runner: TmuxRunner, tmp_path: Path) -> None:
    out = tmp_path / "argv.json"
    weird = (
        "two words",
        "'single'",
        '"double"',
        "$HOME",
        "`id`",
        "a;b",
        ";",
        "end;",
        "x\\;",
        "#{session_name}",
        "*",
        "~",
        "",
        "-e",
        "--",
        "{",
        "ünï",
    )
    show = "import json, sys; open(sys.argv[1], 'w').write(json.dumps(sys.argv[2:]))"
    tmux_runner.start(make_spec(tmp_path, KEY, (sys.executable, "-c", show, str(out), *weird)))
    wait_for(lambda: finished(tmux_runner), what="the agent to finish")
    assert tuple(json.loads(out.read_text())) == weird


def test_a_start_in_a_missing_directory_is_refused(tmux_runner: TmuxRunner, tmp_path: Path) -> None:
    spec = make_spec(tmp_path, KEY, ("true",), cwd=tmp_path / "gone")
    with pytest.raises(RunnerError, match="does not exist"):
        tmux_runner.start(spec)
    assert tmux_runner.list_agents() == {}


@pytest.mark.parametrize("key", ["alpha", "sidekick-a.b", "sidekick-a:b", "sidekick-"])
def test_a_key_tmux_would_rename_is_refused(
    tmux_runner: TmuxRunner, tmp_path: Path, key: str
) -> None:
    with pytest.raises(RunnerError):
        tmux_runner.start(make_spec(tmp_path, key, ("true",)))


def test_sessions_without_the_prefix_are_not_agents(
    tmux_runner: TmuxRunner, tmp_path: Path
) -> None:
    agent = write_script(tmp_path, "agent.sh", "sleep 60\n")
    tmux_runner.start(make_spec(tmp_path, KEY, (str(agent),)))
    assert tmux(tmux_runner.socket_path, "new-session", "-d", "-s", "someone-else").returncode == 0
    assert set(tmux_runner.list_agents()) == {KEY}


def test_the_socket_directory_is_private(tmux_runner: TmuxRunner, tmp_path: Path) -> None:
    assert not tmux_runner.socket_path.parent.exists()
    tmux_runner.start(make_spec(tmp_path, KEY, ("sleep", "60")))
    mode = stat.S_IMODE(tmux_runner.socket_path.parent.stat().st_mode)
    assert mode & 0o077 == 0


def test_the_attach_command_names_the_socket_and_the_session(
    tmux_runner: TmuxRunner, tmp_path: Path
) -> None:
    tmux_runner.start(make_spec(tmp_path, KEY, ("sleep", "60")))
    command = tmux_runner.attach_command(KEY)
    assert command[1:] == ["-S", str(tmux_runner.socket_path), "attach", "-t", KEY]
    probe = subprocess.run([*command[:-3], "has-session", "-t", command[-1]], check=False)
    assert probe.returncode == 0


def kill_server(socket: Path, how: str) -> None:
    """End the agents' tmux server from outside, as a person or a crash would."""
    if how == "kill-server":
        assert tmux(socket, "kill-server").returncode == 0
    else:
        os.kill(int(tmux(socket, "display", "-p", "#{pid}").stdout), signal.SIGKILL)
    wait_for(lambda: tmux(socket, "list-sessions").returncode != 0, what="the server to die")


def waiting_agent(tmp_path: Path, name: str, trap_hup: bool = False) -> tuple[Path, Path]:
    """An agent that exits with the code written to its release file; (script, release)."""
    release_file = tmp_path / f"{name}.release"
    pid_file = tmp_path / f"{name}.pid"
    trap = "trap '' HUP\n" if trap_hup else ""
    body = f'{trap}echo $$ > "{pid_file}"\nexport RELEASE="{release_file}"\n{WAIT_FOR_RELEASE}'
    return write_script(tmp_path, f"{name}.sh", body), release_file


@pytest.mark.parametrize("how", ["kill-server", "kill -9"])
def test_an_agent_outlives_its_killed_tmux_server_and_its_real_exit_is_listed(
    tmux_runner: TmuxRunner, tmp_path: Path, how: str
) -> None:
    script, release_file = waiting_agent(tmp_path, "agent")
    spec = make_spec(tmp_path, KEY, (str(script),), run_id="before")
    tmux_runner.start(spec)
    read_pid(tmp_path / "agent.pid")
    kill_server(tmux_runner.socket_path, how)
    alive = tmux_runner.list_agents()[KEY]
    assert (alive.run_id, alive.finished) == ("before", False)
    with pytest.raises(AgentAlreadyRunning):
        tmux_runner.start(make_spec(tmp_path, KEY, (str(script),), run_id="second"))
    release(release_file, 5)
    ended = wait_for(lambda: finished(tmux_runner), what="the agent to end by itself")
    assert (ended.run_id, ended.exit_code) == ("before", 5)
    assert read_exit_status(spec.log_path) == 5
    tmux_runner.reap(KEY)
    assert tmux_runner.list_agents() == {}
    tmux_runner.start(make_spec(tmp_path, KEY, ("sleep", "60"), run_id="after"))
    assert tmux_runner.list_agents()[KEY].run_id == "after"


@pytest.mark.parametrize("trap_hup", [False, True])
def test_stop_ends_an_agent_whose_tmux_server_died(
    tmux_runner: TmuxRunner, tmp_path: Path, trap_hup: bool
) -> None:
    script, _ = waiting_agent(tmp_path, "agent", trap_hup=trap_hup)
    tmux_runner.start(make_spec(tmp_path, KEY, (str(script),)))
    group = read_pid(tmp_path / "agent.pid")
    kill_server(tmux_runner.socket_path, "kill-server")
    tmux_runner.stop(KEY, grace_seconds=2)
    wait_for(lambda: not group_alive(group), timeout=5, what="the agent's group to end")
    assert tmux_runner.list_agents() == {}


def test_an_agent_whose_wrapper_was_killed_is_alive_until_it_ends(
    tmux_runner: TmuxRunner, tmp_path: Path
) -> None:
    """The wrapper dies (SIGKILL): the agent holds the lock, so no second agent starts."""
    script, _ = waiting_agent(tmp_path, "agent")
    spec = make_spec(tmp_path, KEY, (str(script),))
    tmux_runner.start(spec)
    group = read_pid(tmp_path / "agent.pid")
    ids = wait_for(lambda: agent_lock.read_pids(spec.log_path), what="the recorded pids")
    os.kill(ids.wrapper, signal.SIGKILL)
    wait_for(lambda: tmux_runner.list_agents()[KEY] and _pane_dead(tmux_runner), what="dead pane")
    assert not tmux_runner.list_agents()[KEY].finished
    with pytest.raises(AgentAlreadyRunning):
        tmux_runner.start(make_spec(tmp_path, KEY, (str(script),), run_id="second"))
    tmux_runner.stop(KEY, grace_seconds=2)
    wait_for(lambda: not group_alive(group), timeout=5, what="the agent's group to end")


def _pane_dead(runner: TmuxRunner) -> bool:
    reply = tmux(runner.socket_path, "display", "-p", "-t", f"={KEY}:", "#{pane_dead}")
    return reply.stdout.strip() == "1"


KILL_ROUNDS = 120
AGENTS_PER_ROUND = 2


def test_many_tmux_server_kills_never_lose_an_outcome_nor_allow_a_second_agent(
    tmux_runner: TmuxRunner, tmp_path: Path
) -> None:
    """120 kills of the tmux server (both ways, in turn) while two agents run."""
    keys = [f"sidekick-p{i}" for i in range(AGENTS_PER_ROUND)]
    for round_ in range(KILL_ROUNDS):
        work = tmp_path / f"round{round_}"
        work.mkdir()
        releases = {}
        for key in keys:
            script, releases[key] = waiting_agent(work, key, trap_hup=round_ % 2 == 1)
            tmux_runner.start(make_spec(work, key, (str(script),), run_id=f"r{round_}-{key}"))
        for key in keys:
            read_pid(work / f"{key}.pid")
        kill_server(tmux_runner.socket_path, "kill-server" if round_ % 2 else "kill -9")
        for key in keys:
            with pytest.raises(AgentAlreadyRunning):
                tmux_runner.start(make_spec(work, key, ("true",), run_id="duplicate"))
        for index, key in enumerate(keys):
            release(releases[key], (round_ + index) % 4)
        ended = wait_for(lambda: _all_finished(tmux_runner, keys), what=f"round {round_} to end")
        assert {k: (a.run_id, a.exit_code) for k, a in ended.items()} == {
            key: (f"r{round_}-{key}", (round_ + index) % 4) for index, key in enumerate(keys)
        }
        for key in keys:
            tmux_runner.reap(key)
        assert tmux_runner.list_agents() == {}


def _all_finished(runner: TmuxRunner, keys: list[str]) -> dict[str, LiveAgent] | None:
    agents = runner.list_agents()
    done = all(key in agents and agents[key].finished for key in keys)
    return agents if done else None


def test_a_session_outlives_the_process_that_started_it(
    tmux_runner: TmuxRunner, tmp_path: Path
) -> None:
    starter = (
        "import sys\n"
        "from pathlib import Path\n"
        "from sidekick.runners.base import LaunchSpec\n"
        "from sidekick.runners.tmux import TmuxRunner\n"
        "root = Path(sys.argv[2])\n"
        "spec = LaunchSpec('sidekick-alpha', 'alpha', 'from-child', ('sleep', '60'), root,\n"
        "                  root / 'child.log')\n"
        "TmuxRunner(Path(sys.argv[1])).start(spec)\n"
    )
    subprocess.run(
        [sys.executable, "-c", starter, str(tmux_runner.socket_path), str(tmp_path)], check=True
    )
    agent = tmux_runner.list_agents()[KEY]
    assert (agent.run_id, agent.finished) == ("from-child", False)


def test_a_duplicate_start_leaves_the_live_sessions_options_alone(
    tmux_runner: TmuxRunner, tmp_path: Path
) -> None:
    tmux_runner.start(make_spec(tmp_path, KEY, ("sleep", "60"), run_id="first"))
    with pytest.raises(AgentAlreadyRunning):
        tmux_runner.start(make_spec(tmp_path, KEY, ("sleep", "60"), run_id="second"))
    log = tmux(tmux_runner.socket_path, "show-options", "-v", "-t", f"={KEY}:", "@sidekick_log")
    assert log.stdout.strip() == str(tmp_path / "logs" / "first.log")
    assert not (tmp_path / "logs" / "second.launch.json").exists()


def test_arguments_ending_in_a_semicolon_are_escaped_for_tmux() -> None:
    assert join_commands([["a", "b;"], ["c\\;"]]) == ["a", "b\\;", ";", "c\\\\;"]
