"""Agents in tmux sessions on the daemon's own tmux server.

One session per project, named by its key (``sidekick-<slug>``), on a server
reached only through ``-S socket_path`` and started with no configuration file
(a person's ``~/.tmux.conf`` could set ``destroy-unattached`` and kill every
agent). Every tmux command goes through :meth:`TmuxRunner._tmux`, the one
choke point, which also protects arguments from tmux's own parsing.

The pane runs :mod:`sidekick.runners.agent_wrapper`, which runs the agent and
writes its exit status beside the log. Panes stay after their process ends
(``remain-on-exit``), so a finished agent is listed with its status until it
is reaped. The pane's command is only the wrapper and the path of a launch
file (the agent's argv and environment, written owner-only beside the log),
so no prompt, however long, passes through tmux's command line.

A pane is not the agent: the wrapper holds the project's lock
(:mod:`sidekick.runners.agent_lock`) for as long as the agent runs, so an
agent whose session or whole tmux server was killed is still listed alive, is
never started twice, is stopped through its process group, and is listed with
its real exit status once it ends.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from libtmux import Server, exc

from sidekick import stopping
from sidekick.errors import AgentAlreadyRunning, RunnerError, RunnerUnavailable
from sidekick.models import SESSION_PREFIX
from sidekick.runners import agent_lock
from sidekick.runners.agent_wrapper import (
    FORCE_SIGNAL,
    SIGNAL_EXIT_BASE,
    WrapperArgs,
    launch_file_text,
)
from sidekick.runners.base import LaunchSpec, LiveAgent, read_exit_status, write_private

logger = logging.getLogger(__name__)

WRAPPER_MODULE = "sidekick.runners.agent_wrapper"
RUN_ID_OPTION = "@sidekick_run_id"
LOG_OPTION = "@sidekick_log"
PANE_OPTION = "@sidekick_pane"
RUN_ID_ENV = "SIDEKICK_RUN_ID"
LOG_ENV = "SIDEKICK_LOG_PATH"
PROJECT_ENV = "SIDEKICK_PROJECT"
FORCE_WAIT_SECONDS = 2.0
LAUNCH_SUFFIX = ".launch.json"
START_ATTEMPTS = 3

# Unit separator: cannot appear in session names, pane ids or numbers; the log
# path, the only free text, is the last field so it may hold anything but a newline.
_SEPARATOR = "\x1f"
_PANE_FORMAT = _SEPARATOR.join(
    (
        "#{session_name}",
        "#{pane_id}",
        "#{pane_pid}",
        "#{pane_dead}",
        "#{pane_dead_status}",
        "#{pane_dead_signal}",
        "#{session_created}",
        "#{pid}",
        "#{" + PANE_OPTION + "}",
        "#{" + RUN_ID_OPTION + "}",
        "#{" + LOG_OPTION + "}",
    )
)
_FIELD_COUNT = 11
# tmux turns "." and ":" in a session name into "_": such a key would be listed
# under another name and the project could get a second agent.
_VALID_KEY = re.compile(r"[A-Za-z0-9_-]+")
# The last two come from a client that reached a server just as it exited
# (killed, or empty after its last session went).
_SERVER_DOWN = re.compile(
    r"no server running on|error connecting to .*\((No such file or directory|Connection refused)\)"
    r"|server exited unexpectedly|lost server"
)
_NOT_FOUND = re.compile(r"can't find (session|window|pane)|no such session")
_DUPLICATE = "duplicate session"
# list-panes -a on a server whose last session just went (it exits next).
_NO_SESSIONS = "no current target"


@dataclass(frozen=True)
class TmuxReply:
    """What one tmux client invocation answered."""

    returncode: int
    stdout: tuple[str, ...]
    error: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.error

    @property
    def server_down(self) -> bool:
        return bool(_SERVER_DOWN.search(self.error))

    @property
    def not_found(self) -> bool:
        return bool(_NOT_FOUND.search(self.error))

    @property
    def duplicate(self) -> bool:
        return _DUPLICATE in self.error

    @property
    def gone(self) -> bool:
        """The session (or the whole server) does not exist."""
        return self.server_down or self.not_found


@dataclass(frozen=True)
class PaneRow:
    """One line of ``list-panes``: a pane and the sidekick options of its session."""

    session: str
    pane_id: str
    pid: int | None
    dead: bool
    dead_status: int | None
    dead_signal: int | None
    created: datetime | None
    server_pid: int | None
    agent_pane: str
    run_id: str
    log_path: str

    @classmethod
    def parse(cls, line: str) -> PaneRow | None:
        fields = line.split(_SEPARATOR, _FIELD_COUNT - 1)
        if len(fields) != _FIELD_COUNT:
            return None
        created = _to_int(fields[6])
        return cls(
            session=fields[0],
            pane_id=fields[1],
            pid=_to_int(fields[2]),
            dead=fields[3] == "1",
            dead_status=_to_int(fields[4]),
            dead_signal=_to_int(fields[5]),
            created=None if created is None else datetime.fromtimestamp(created, UTC),
            server_pid=_to_int(fields[7]),
            agent_pane=fields[8],
            run_id=fields[9],
            log_path=fields[10],
        )

    @property
    def is_agent_pane(self) -> bool:
        """The pane the agent was started in (a person may have split the window)."""
        return not self.agent_pane or self.agent_pane == self.pane_id

    def exit_code(self) -> int | None:
        """The status file is the truth; the pane's own status only when the wrapper died."""
        recorded = read_exit_status(Path(self.log_path)) if self.log_path else None
        if recorded is not None or not self.dead:
            return recorded
        if self.dead_status is not None:
            return self.dead_status
        if self.dead_signal is not None:
            return SIGNAL_EXIT_BASE + self.dead_signal
        # Dead, but tmux has not collected the status yet: not finished.
        return None

    @property
    def awaits_status(self) -> bool:
        """Dead, yet neither the wrapper nor tmux has told how it ended."""
        return self.dead and self.exit_code() is None

    def to_agent(self) -> LiveAgent:
        return LiveAgent(
            key=self.session,
            run_id=self.run_id,
            started_at=self.created,
            exit_code=self.exit_code(),
        )


def _to_int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def escape_argument(argument: str) -> str:
    """Keep tmux from reading an argument that ends in ';' as the end of a command."""
    return argument[:-1] + "\\;" if argument.endswith(";") else argument


def escape_format(text: str) -> str:
    """For options tmux expands as a format (``-c``): '#' stands for itself."""
    return text.replace("#", "##")


def join_commands(commands: Iterable[Sequence[str]]) -> list[str]:
    """One argument list for several tmux commands, run by the server in order."""
    args: list[str] = []
    for command in commands:
        if args:
            args.append(";")
        args.extend(escape_argument(argument) for argument in command)
    return args


def agent_pane_rows(lines: Iterable[str]) -> dict[str, PaneRow]:
    """The agent pane of every ``sidekick-*`` session, by session name."""
    rows: dict[str, PaneRow] = {}
    for line in lines:
        row = PaneRow.parse(line)
        if row is None or not row.session.startswith(SESSION_PREFIX):
            continue
        if row.is_agent_pane and row.session not in rows:
            rows[row.session] = row
    return rows


def check_key(key: str) -> None:
    if not key.startswith(SESSION_PREFIX) or not _VALID_KEY.fullmatch(key[len(SESSION_PREFIX) :]):
        raise RunnerError(
            key,
            f"not a usable tmux session name (want {SESSION_PREFIX} and letters, digits, - or _)",
        )


class TmuxRunner:
    """The :class:`~sidekick.runners.base.Runner` that keeps agents in tmux sessions."""

    name = "tmux"

    def __init__(
        self,
        socket_path: Path,
        *,
        python: str | None = None,
        tmux_bin: str | None = None,
        bell: Path | None = None,
        lock_dir: Path | None = None,
        poll_seconds: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = stopping.sleep,
    ) -> None:
        self.socket_path = Path(socket_path)
        self.python = python or sys.executable
        self.tmux_bin = tmux_bin or shutil.which("tmux")
        self.bell = bell
        self.lock_dir = lock_dir or self.socket_path.parent / "agents"
        self.poll_seconds = poll_seconds
        self._clock = clock
        self._sleep = sleep
        self._server = Server(
            socket_path=self.socket_path, config_file=os.devnull, tmux_bin=self.tmux_bin
        )

    # --- the one way to tmux -----------------------------------------------------

    def _tmux(self, *commands: Sequence[str], key: str = "") -> TmuxReply:
        """Run tmux commands in one client call on our socket; every call passes here."""
        if self.tmux_bin is None:
            raise RunnerUnavailable(key or str(self.socket_path), "tmux is not installed")
        try:
            result = self._server.cmd(*join_commands(commands))
        except exc.TmuxCommandNotFound as error:
            raise RunnerUnavailable(key or str(self.socket_path), "tmux cannot be run") from error
        reply = TmuxReply(result.returncode, tuple(result.stdout), " ".join(result.stderr))
        if not reply.ok:
            logger.debug("tmux %s: %s", commands[0][0], reply.error)
        return reply

    def _fail(self, key: str, what: str, reply: TmuxReply) -> RunnerUnavailable:
        problem = f"tmux {what} on {self.socket_path} failed: {reply.error or reply.returncode}"
        return RunnerUnavailable(key or "all agents", problem)

    # --- Runner ----------------------------------------------------------------------

    def start(self, spec: LaunchSpec) -> None:
        """Create the session and its agent in one tmux call; a taken key raises."""
        check_key(spec.key)
        if not spec.cwd.is_dir():
            raise RunnerError(spec.key, f"working directory {spec.cwd} does not exist")
        self._prepare_socket_directory()
        lock = agent_lock.lock_path(self.lock_dir, spec.key)
        if self._agent_alive(spec.key):
            raise AgentAlreadyRunning(
                spec.key, "its agent is still running (its tmux pane is gone)"
            )
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        agent_lock.write_record(
            lock, agent_lock.LockRecord(spec.run_id, spec.log_path, time.time())
        )
        self._write_launch_file(spec, lock)
        reply = self._create_session(spec)
        if not reply.ok:
            # No wrapper will read it, and it may hold the API key.
            _launch_path(spec).unlink(missing_ok=True)
        if reply.duplicate:
            raise AgentAlreadyRunning(spec.key, "a tmux session with this name is live")
        if not reply.ok:
            raise self._fail(spec.key, "new-session", reply)
        logger.info("started %s for %s (run %s)", spec.key, spec.project, spec.run_id)

    def list_agents(self) -> dict[str, LiveAgent]:
        """Every ``sidekick-*`` session and every agent that outlived its pane."""
        rows = self._list_rows()
        waiting = [row for row in rows.values() if row.awaits_status]
        if waiting:
            self._nudge_server(waiting[0])
            rows = self._list_rows()
        agents = {key: self._with_lock(row.to_agent()) for key, row in rows.items()}
        for agent in self._paneless_agents(set(agents)):
            agents[agent.key] = agent
        return agents

    def _with_lock(self, agent: LiveAgent) -> LiveAgent:
        # A dead pane without a status file, while the lock is held: the wrapper was
        # killed but the agent it started works on.
        if agent.exit_code is None or not agent.run_id:
            return agent
        record = self._record(agent.key)
        if record is not None and record.run_id == agent.run_id and self._agent_alive(agent.key):
            return replace(agent, exit_code=None)
        return agent

    def _paneless_agents(self, listed: set[str]) -> Iterator[LiveAgent]:
        """Agents whose session is gone: alive while locked, or ended with a status."""
        for path in self._lock_files():
            key = path.name.removesuffix(agent_lock.LOCK_SUFFIX)
            if key in listed:
                continue  # its pane answers for it; most agents, most of the time
            record = agent_lock.read_record(path)
            if record is None:
                continue
            code = read_exit_status(record.log_path)
            if code is None and not agent_lock.is_held(path):
                continue  # killed with its wrapper before it ended: nothing is running
            started = datetime.fromtimestamp(record.started, UTC)
            yield LiveAgent(key=key, run_id=record.run_id, started_at=started, exit_code=code)

    def _record(self, key: str) -> agent_lock.LockRecord | None:
        return agent_lock.read_record(agent_lock.lock_path(self.lock_dir, key))

    def _agent_alive(self, key: str) -> bool:
        """The lock is held for a run with no exit status yet.

        Once the status is written, a holder left is only a leftover of the ended
        agent being killed (or one that escaped its group): not a live agent.
        """
        path = agent_lock.lock_path(self.lock_dir, key)
        if not agent_lock.is_held(path):
            return False
        record = agent_lock.read_record(path)
        return record is None or read_exit_status(record.log_path) is None

    def _list_rows(self) -> dict[str, PaneRow]:
        reply = self._tmux(["list-panes", "-a", "-F", _PANE_FORMAT])
        if reply.server_down or _NO_SESSIONS in reply.error:
            return {}
        if not reply.ok:
            raise self._fail("", "list-panes", reply)
        return agent_pane_rows(reply.stdout)

    def _nudge_server(self, row: PaneRow) -> None:
        # A tmux linked with libutempter can miss a pane's SIGCHLD (tmux issue
        # #311; seen here with Debian's 3.3a on about one wrapper killed in four):
        # the pane then stays dead with its process an unreaped zombie and no
        # status, until some other child exits. Another SIGCHLD makes it reap.
        if row.server_pid is not None:
            logger.debug("%s is dead without a status; nudging tmux to reap it", row.session)
            _signal_process(row.server_pid, signal.SIGCHLD)

    def degraded(self) -> list[str]:
        """Never degraded: the tmux server is started on demand by the next start."""
        return []

    def stop(self, key: str, grace_seconds: float = 10.0) -> None:
        """SIGTERM the agent, force it after the grace, then remove its session."""
        row = self._agent_row(key)
        if row is not None and not row.dead and row.pid is not None:
            self._end_agent(key, row.pid, grace_seconds)
        if self._agent_alive(key):
            self._end_paneless(key, grace_seconds)
        if row is not None:
            self._kill_session(key)
        self._forget_lock(key)
        logger.info("stopped %s", key)

    def reap(self, key: str) -> None:
        """Remove a finished agent's session and lock file; either already gone is fine."""
        self._kill_session(key)
        self._forget_lock(key)
        logger.info("reaped %s", key)

    def _forget_lock(self, key: str) -> None:
        lock = agent_lock.lock_path(self.lock_dir, key)
        # Starts, stops and reaps come from one thread: a free lock cannot be taken meanwhile.
        if not self._agent_alive(key):
            lock.unlink(missing_ok=True)

    def end_all(self) -> None:
        """SIGKILL every agent and end the tmux server: a test's or a bench's teardown.

        Killing the server alone no longer ends agents (they outlive their panes).
        A wrapper told to force its agent before it has one kills it as it starts.
        """
        for row in self._list_rows().values():
            if not row.dead and row.pid is not None:
                _signal_process(row.pid, FORCE_SIGNAL)
        for path in self._lock_files():
            record = agent_lock.read_record(path)
            ids = None if record is None else agent_lock.read_pids(record.log_path)
            if ids is not None and agent_lock.is_held(path):
                _signal_group(ids.agent_group, signal.SIGKILL)
        reply = self._tmux(["kill-server"])
        if not reply.ok and not reply.server_down:
            raise self._fail("", "kill-server", reply)

    def _lock_files(self) -> list[Path]:
        if not self.lock_dir.is_dir():
            return []
        return sorted(self.lock_dir.glob(f"{SESSION_PREFIX}*{agent_lock.LOCK_SUFFIX}"))

    def attach_command(self, key: str) -> list[str]:
        """What a person types to watch an agent."""
        return [self.tmux_bin or "tmux", "-S", str(self.socket_path), "attach", "-t", key]

    # --- helpers -------------------------------------------------------------------

    def _prepare_socket_directory(self) -> None:
        directory = self.socket_path.parent
        if not directory.exists():
            # Anyone who can reach the socket can run commands as us.
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)

    def _write_launch_file(self, spec: LaunchSpec, lock: Path) -> None:
        environment = {
            **spec.env,
            RUN_ID_ENV: spec.run_id,
            LOG_ENV: str(spec.log_path),
            PROJECT_ENV: spec.project,
        }
        launch = WrapperArgs(
            log=spec.log_path,
            cwd=spec.cwd,
            argv=spec.argv,
            bell=self.bell,
            env=environment,
            stdin=spec.stdin_path,
            lock=lock,
        )
        write_private(_launch_path(spec), launch_file_text(launch).encode("ascii"))

    def _create_session(self, spec: LaunchSpec) -> TmuxReply:
        # A server on its way out (just killed, or exiting because it became empty)
        # can take our call and vanish; the next call starts a fresh one.
        for _ in range(START_ATTEMPTS - 1):
            reply = self._tmux(*self._start_commands(spec), key=spec.key)
            if not reply.server_down:
                return reply
            logger.info("tmux server on %s went away during a start; retrying", self.socket_path)
            self._sleep(self.poll_seconds)
        return self._tmux(*self._start_commands(spec), key=spec.key)

    def _start_commands(self, spec: LaunchSpec) -> list[list[str]]:
        # The server runs these in order before it handles any child's exit, so the
        # options are set even for an agent that ends at once; if new-session fails
        # (a duplicate), the later commands are skipped and the live session is untouched.
        target = f"={spec.key}:"
        return [
            ["start-server"],
            ["set-option", "-g", "remain-on-exit", "on"],
            self._new_session_command(spec),
            ["set-option", "-t", target, RUN_ID_OPTION, spec.run_id],
            ["set-option", "-t", target, LOG_OPTION, str(spec.log_path)],
            ["set-option", "-F", "-t", target, PANE_OPTION, "#{pane_id}"],
        ]

    def _new_session_command(self, spec: LaunchSpec) -> list[str]:
        command = ["new-session", "-d", "-s", spec.key, "-c", escape_format(str(spec.cwd))]
        # Several arguments: tmux 3.x executes them directly, no shell in between.
        # -P: the project's directory must not shadow the wrapper's imports.
        wrapper = [self.python, "-P", "-m", WRAPPER_MODULE, "--launch", str(_launch_path(spec))]
        return [*command, "--", *wrapper]

    def _agent_row(self, key: str) -> PaneRow | None:
        reply = self._tmux(["list-panes", "-s", "-t", f"={key}", "-F", _PANE_FORMAT], key=key)
        if reply.gone:
            return None
        if not reply.ok:
            raise self._fail(key, "list-panes", reply)
        return agent_pane_rows(reply.stdout).get(key)

    def _end_agent(self, key: str, wrapper_pid: int, grace_seconds: float) -> None:
        _signal_process(wrapper_pid, signal.SIGTERM)
        if self._wait_until_dead(key, grace_seconds):
            return
        logger.warning("%s ignored SIGTERM for %.1fs; killing it", key, grace_seconds)
        _signal_process(wrapper_pid, FORCE_SIGNAL)
        self._wait_until_dead(key, FORCE_WAIT_SECONDS)

    def _wait_until_dead(self, key: str, timeout: float) -> bool:
        deadline = self._clock() + timeout
        while True:
            row = self._agent_row(key)
            if row is None or row.dead:
                return True
            if self._clock() >= deadline:
                return False
            self._sleep(self.poll_seconds)

    def _end_paneless(self, key: str, grace_seconds: float) -> None:
        """An agent whose pane is gone: signal its process group, then force it."""
        record = self._record(key)
        ids = None if record is None else agent_lock.read_pids(record.log_path)
        if ids is None:
            raise RunnerError(key, "its agent holds the project's lock but recorded no process")
        _signal_group(ids.agent_group, signal.SIGTERM)
        if self._wait_until_unlocked(key, grace_seconds):
            return
        logger.warning("%s ignored SIGTERM for %.1fs; killing it", key, grace_seconds)
        _signal_group(ids.agent_group, signal.SIGKILL)
        self._wait_until_unlocked(key, FORCE_WAIT_SECONDS)

    def _wait_until_unlocked(self, key: str, timeout: float) -> bool:
        deadline = self._clock() + timeout
        while self._agent_alive(key):
            if self._clock() >= deadline:
                return False
            self._sleep(self.poll_seconds)
        return True

    def _kill_session(self, key: str) -> None:
        reply = self._tmux(["kill-session", "-t", f"={key}"], key=key)
        if not reply.ok and not reply.gone:
            raise self._fail(key, "kill-session", reply)


def _launch_path(spec: LaunchSpec) -> Path:
    return spec.log_path.with_name(spec.log_path.stem + LAUNCH_SUFFIX)


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        logger.debug("process group %d already gone", pgid)


def _signal_process(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        logger.debug("process %d already gone", pid)
