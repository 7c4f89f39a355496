"""The agent wrapper run as its own process, the way a tmux pane runs it."""

from __future__ import annotations

import fcntl
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sidekick.runners import agent_lock
from sidekick.runners.agent_wrapper import (
    EXIT_LOCKED,
    FORCE_SIGNAL,
    WrapperArgs,
    launch_file_text,
    parse_args,
    write_exit_status,
)
from sidekick.runners.base import exit_status_path, read_exit_status
from tests.runners.helpers import (
    WAIT_FOR_RELEASE,
    group_alive,
    read_pid,
    release,
    wait_for,
    write_script,
)


def wrapper(log: Path, *argv: str, cwd: Path | None = None) -> list[str]:
    where = ["--cwd", str(cwd)] if cwd else []
    return [
        sys.executable,
        "-P",
        "-m",
        "sidekick.runners.agent_wrapper",
        "--log",
        str(log),
        *where,
        "--",
        *argv,
    ]


def run_wrapper(log: Path, *argv: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(wrapper(log, *argv), check=False, capture_output=True, timeout=30)


def test_output_goes_to_the_log_and_the_terminal_and_the_status_is_recorded(
    tmp_path: Path,
) -> None:
    log = tmp_path / "deep" / "run.log"
    agent = write_script(tmp_path, "agent.sh", "echo out\necho err >&2\nexit 4\n")
    done = run_wrapper(log, str(agent))
    assert done.returncode == 4
    assert done.stdout == b"out\nerr\n"
    assert log.read_bytes() == b"out\nerr\n"
    assert read_exit_status(log) == 4
    assert sorted(p.name for p in log.parent.iterdir()) == ["run.log", "run.log.exit"]


def test_binary_output_is_copied_byte_for_byte(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    payload = bytes(range(256)) * 1000
    emit = "import sys; sys.stdout.buffer.write(bytes(range(256)) * 1000)"
    done = run_wrapper(log, sys.executable, "-c", emit)
    assert done.returncode == 0
    assert log.read_bytes() == payload == done.stdout


def test_an_agent_killed_by_a_signal_gives_128_plus_the_signal(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    done = run_wrapper(log, "sh", "-c", "kill -s TERM $$")
    assert done.returncode == read_exit_status(log) == 128 + signal.SIGTERM


def test_a_missing_command_is_reported_and_recorded_as_127(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    done = run_wrapper(log, str(tmp_path / "no-such-agent"))
    assert done.returncode == read_exit_status(log) == 127
    assert b"cannot start" in log.read_bytes()


def test_an_argument_no_program_can_take_is_reported_and_recorded_as_126(
    tmp_path: Path,
) -> None:
    log = tmp_path / "run.log"
    launch = tmp_path / "run.launch.json"
    args = WrapperArgs(log=log, cwd=None, argv=("echo", "a\x00b"))
    launch.write_text(launch_file_text(args), encoding="ascii")
    done = subprocess.run(
        [sys.executable, "-P", "-m", "sidekick.runners.agent_wrapper", "--launch", str(launch)],
        check=False,
        capture_output=True,
        timeout=30,
    )
    assert done.returncode == read_exit_status(log) == 126
    assert b"embedded null byte" in log.read_bytes()
    assert not launch.exists()


def test_the_agent_runs_in_the_given_directory(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    workdir = tmp_path / "work"
    workdir.mkdir()
    done = subprocess.run(
        wrapper(log, "pwd", cwd=workdir), check=False, capture_output=True, timeout=30
    )
    assert done.stdout.decode().strip() == str(workdir)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signals_are_forwarded_to_the_agent(tmp_path: Path, signum: signal.Signals) -> None:
    log = tmp_path / "run.log"
    pid_file = tmp_path / "pid"
    name = signum.name.removeprefix("SIG")
    body = f'trap "echo got-{name}; exit 7" {name}\necho $$ > "{pid_file}"\n'
    body += "while :; do sleep 0.05; done\n"
    agent = write_script(tmp_path, "agent.sh", body)
    process = subprocess.Popen(wrapper(log, str(agent)), stdout=subprocess.PIPE)
    read_pid(pid_file)
    process.send_signal(signum)
    assert process.wait(timeout=10) == 7
    assert f"got-{name}" in log.read_text()
    assert read_exit_status(log) == 7


@pytest.mark.parametrize("code", [0, 3])
def test_a_hangup_leaves_the_agent_running_and_its_real_exit_is_recorded(
    tmp_path: Path, code: int
) -> None:
    """The pane vanished (tmux killed), not the agent: it ends by itself and that is recorded."""
    log = tmp_path / "run.log"
    pid_file = tmp_path / "pid"
    release_file = tmp_path / "release"
    body = f'trap "echo got-HUP; exit 9" HUP\necho $$ > "{pid_file}"\n'
    body += f'export RELEASE="{release_file}"\n' + WAIT_FOR_RELEASE
    agent = write_script(tmp_path, "agent.sh", body)
    process = subprocess.Popen(wrapper(log, str(agent)), stdout=subprocess.DEVNULL)
    read_pid(pid_file)
    process.send_signal(signal.SIGHUP)
    time.sleep(0.2)
    assert process.poll() is None
    release(release_file, code)
    assert process.wait(timeout=10) == code
    assert "got-HUP" not in log.read_text()
    assert read_exit_status(log) == code


def test_the_force_signal_kills_an_agent_that_ignores_sigterm(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    pid_file = tmp_path / "pid"
    body = f"trap '' TERM\necho $$ > \"{pid_file}\"\nwhile :; do sleep 0.05; done\n"
    agent = write_script(tmp_path, "agent.sh", body)
    process = subprocess.Popen(wrapper(log, str(agent)), stdout=subprocess.DEVNULL)
    group = read_pid(pid_file)
    process.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    assert process.poll() is None
    process.send_signal(FORCE_SIGNAL)
    assert process.wait(timeout=10) == 128 + signal.SIGKILL
    wait_for(lambda: not group_alive(group), timeout=5, what="the group to end")


def test_what_the_agent_left_running_in_its_group_ends_with_it(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    pid_file = tmp_path / "pid"
    # The leftover keeps the output pipe open: the wrapper must not wait for it.
    agent = write_script(tmp_path, "agent.sh", f'echo $$ > "{pid_file}"\nsleep 300 &\nexit 0\n')
    began = time.monotonic()
    done = run_wrapper(log, str(agent))
    assert done.returncode == 0
    assert time.monotonic() - began < 10
    wait_for(lambda: not group_alive(read_pid(pid_file)), timeout=5, what="the leftover to end")


def test_the_agents_own_arguments_are_never_parsed_by_the_wrapper() -> None:
    args = parse_args(["--log", "x.log", "--", "claude", "--log", "-p", "--"])
    assert args.argv == ("claude", "--log", "-p", "--")
    assert args.log == Path("x.log") and args.cwd is None


@pytest.mark.parametrize("argv", [["--log", "x.log"], ["--log", "x.log", "--"], ["--", "a"]])
def test_a_call_without_a_command_or_log_is_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(argv)


def test_the_status_file_is_replaced_whole(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    write_exit_status(log, 1)
    write_exit_status(log, 0)
    assert exit_status_path(log).read_text() == "0\n"
    assert [p.name for p in tmp_path.iterdir()] == ["run.log.exit"]


def test_a_wrapper_whose_project_lock_is_held_does_not_start_the_agent(tmp_path: Path) -> None:
    """Another agent of the project is alive: this one is recorded as not started (75)."""
    log = tmp_path / "run.log"
    lock = tmp_path / "sidekick-alpha.lock"
    lock.touch()
    marker = tmp_path / "ran"
    with lock.open() as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)
        argv = wrapper(log, "touch", str(marker))
        argv[argv.index("--") : argv.index("--")] = ["--lock", str(lock)]
        done = subprocess.run(argv, check=False, capture_output=True, timeout=30)
    assert done.returncode == read_exit_status(log) == EXIT_LOCKED
    assert not marker.exists()
    assert b"another agent of this project" in log.read_bytes()


def test_the_agent_holds_the_project_lock_while_it_runs(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    lock = tmp_path / "sidekick-alpha.lock"
    release_file = tmp_path / "release"
    script = write_script(
        tmp_path, "agent.sh", f'export RELEASE="{release_file}"\n{WAIT_FOR_RELEASE}'
    )
    argv = wrapper(log, str(script))
    argv[argv.index("--") : argv.index("--")] = ["--lock", str(lock)]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    ids = wait_for(lambda: agent_lock.read_pids(log), what="the recorded pids")
    assert ids.wrapper == process.pid and agent_lock.is_held(lock)
    release(release_file, 0)
    assert process.wait(timeout=10) == 0
    assert not agent_lock.is_held(lock)
