"""The ``sidekick`` command.

Heavy modules (libtmux, APScheduler, gspread, docker) are imported inside the
commands that need them, so ``sidekick check`` and ``sidekick status`` start
fast enough to run as a health check every few seconds.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import sys
import time
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from sidekick import __version__
from sidekick.errors import SidekickError
from sidekick.startup import started

if TYPE_CHECKING:
    from sidekick.config import Config
    from sidekick.health import Heartbeat
    from sidekick.models import AgentRun, Finding, Snapshot
    from sidekick.runners.tmux import TmuxRunner

Command = Callable[[argparse.Namespace], int]
CONFIG_HELP = "config file (default: $SIDEKICK_CONFIG, ./config.yaml)"


def main(argv: Sequence[str] | None = None) -> int:
    if argv is not None:
        return _quiet_on_closed_pipe(_main, argv)
    try:
        return _quiet_on_closed_pipe(_main, sys.argv[1:])
    finally:
        # The process's own command line: the process ends when this returns. Its objects
        # leave the collector's sight, so the collection at interpreter exit does not walk
        # them all to free what the OS frees anyway: 35-100 ms of a ``prod status`` on the
        # CI machine, 4 ms once frozen.
        gc.freeze()


def _quiet_on_closed_pipe(command: Callable[[Sequence[str]], int], argv: Sequence[str]) -> int:
    """Run the command; a reader that closed the pipe (``sidekick context X | head``) ends it
    quietly, the way Python's note on SIGPIPE says, whichever command was printing."""
    try:
        try:
            return command(argv)
        finally:
            # Flushed here (after --help's exit too), so a closed pipe is met inside this
            # try, not at interpreter exit.
            sys.stdout.flush()
    except BrokenPipeError:
        # The interpreter flushes stdout again at exit: point it at devnull so that flush
        # does not fail too.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 1


def _main(argv: Sequence[str]) -> int:
    parser = _parser(argv)
    args = _arguments(parser, argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return 2
    if args.handler is not cmd_prod:  # prod's actions say when theirs begins
        started()
    try:
        return int(args.handler(args))
    except SidekickError as exc:
        print(f"sidekick: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The parser of the command ``argv`` names, with its options alone (every command when it
    names none, for the help and for a name that is no command): building them all, and
    importing the modules that declare them, costs a ``prod status`` a tenth; argparse's
    subparser for each command costs about 0.1 ms more, most of it gettext looking for
    translations. ``prod`` builds only the action named after it, the same way."""
    chosen, rest = _word_named(argv, _NAMES)
    formatter = _formatter()
    parser = argparse.ArgumentParser(
        prog="sidekick",
        description="Keeps AI coding agents working on your most important projects.",
        formatter_class=formatter,
    )
    parser.add_argument("--version", action="version", version=f"sidekick {__version__}")
    parser.add_argument("--config", help=CONFIG_HELP)
    sub = parser.add_subparsers(metavar="COMMAND")
    for name, handler, helptext, extra in _COMMANDS:
        if chosen not in (None, name):
            continue
        command = sub.add_parser(
            name, help=helptext, description=helptext, formatter_class=formatter
        )
        # Before or after the command name alike; SUPPRESS keeps the first when only it is given.
        command.add_argument("--config", help=CONFIG_HELP, default=argparse.SUPPRESS)
        if extra is _prod_options:
            _prod_options(command, rest)
        else:
            extra(command)
        command.set_defaults(handler=handler)
    return parser


def _formatter() -> Callable[..., argparse.HelpFormatter]:
    """argparse's help formatter at the width of the terminal, found as
    shutil.get_terminal_size finds it ($COLUMNS, else the terminal on stdout, else 80 columns)
    but without importing shutil: argparse makes a formatter for every option it adds and
    imports shutil in the first, 2 ms of a ``prod logs`` that shows no help (-X importtime on
    the CI machine). Subparsers take it as ``parent.formatter_class``."""
    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return functools.partial(argparse.HelpFormatter, width=(columns or 80) - 2)


def _arguments(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.Namespace:
    """``argv`` as the parser reads it, and services named after an option too
    (``prod logs Shop --tail 5 web``): argparse matches a command's positionals once, so it
    refuses words after an option (bpo-14191, python/cpython#58399), and its parse_intermixed_args
    takes no subcommands. Any other word left over is an error, as argparse makes it."""
    args, left = parser.parse_known_args(argv)
    if left:
        services = getattr(args, "services", None)
        if services is None or any(word.startswith("-") for word in left):
            parser.error(f"unrecognized arguments: {' '.join(left)}")
        args.services = [*services, *left]
    return args


def _word_named(argv: Sequence[str], names: Collection[str]) -> tuple[str | None, list[str]]:
    """The command (or action) the arguments run, and the arguments after it: the first word
    that is not an option (or the value of ``--config``), if it is one of ``names``."""
    for at, arg in enumerate(argv):
        if not arg.startswith("-") and (at == 0 or argv[at - 1] != "--config"):
            return (arg, list(argv[at + 1 :])) if arg in names else (None, [])
    return None, []


def _config(args: argparse.Namespace) -> Config:
    from sidekick.config import load_config

    return load_config(args.config)


# --- run / supervise ------------------------------------------------------------


def _run_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--log-format", choices=("text", "json"), default="text")
    command.add_argument("--log-level", default="INFO")
    command.add_argument("--once", action="store_true", help="reconcile once and exit")


def cmd_run(args: argparse.Namespace) -> int:
    from sidekick.daemon import Daemon
    from sidekick.logs import setup_logging

    setup_logging(args.log_format, args.log_level)
    daemon = Daemon(_config(args))
    if args.once:
        daemon.run_once()
        return 0
    return daemon.run()


def _supervise_options(command: argparse.ArgumentParser) -> None:
    _run_options(command)


def cmd_supervise(args: argparse.Namespace) -> int:
    from sidekick.supervise import supervise

    child = [sys.executable, "-m", "sidekick", "run", "--log-format", args.log_format]
    child += ["--log-level", args.log_level]
    if args.config:
        child += ["--config", args.config]
    return supervise(child)


# --- check / status / runs --------------------------------------------------------


def _no_options(command: argparse.ArgumentParser) -> None:
    return None


def cmd_check(args: argparse.Namespace) -> int:
    from sidekick.health import heartbeat_path, read_heartbeat, verdict

    config = _config(args)
    beat = read_heartbeat(heartbeat_path(config.daemon.state_dir))
    healthy, why = verdict(beat, config.daemon.heartbeat_max_age)
    print(why, file=sys.stdout if healthy else sys.stderr)
    return 0 if healthy else 1


def _json_option(command: argparse.ArgumentParser) -> None:
    command.add_argument("--json", action="store_true", help="machine-readable output")


def cmd_status(args: argparse.Namespace) -> int:
    from sidekick.state import StateStore
    from sidekick.status import read_report, render_table, status_data

    config = _config(args)
    store = StateStore(config.daemon.state_dir / "sidekick.db")
    try:
        report, active = read_report(config.daemon.state_dir), store.active_runs()
        costs = store.costs()
    finally:
        store.close()
    data = status_data(report, active, costs, _agent_nodes(config) if active else None)
    daemon = _daemon_state(config)
    if args.json:
        print(json.dumps({"daemon": daemon, **data}, indent=2))
        return 0
    if daemon["problem"]:
        print(daemon["problem"])
    print(render_table(data))
    return 0


def _daemon_state(config: Config) -> dict[str, object]:
    """Whether the daemon runs, as ``check`` tells it from the heartbeat: a list shown
    without its daemon is what the daemon last saw, and nothing acts on it."""
    from sidekick.errors import StateFileError
    from sidekick.health import heartbeat_path, read_heartbeat, verdict

    try:
        beat = read_heartbeat(heartbeat_path(config.daemon.state_dir))
    except StateFileError as exc:
        return {"running": False, "healthy": False, "heartbeat_age_s": None, "problem": str(exc)}
    max_age = config.daemon.heartbeat_max_age
    healthy, why = verdict(beat, max_age)
    age = None if beat is None else round(time.time() - beat.loop_at, 1)
    running = beat is not None and not beat.stopped and age is not None and age <= max_age
    return {
        "running": running,
        "healthy": healthy,
        "heartbeat_age_s": age,
        "problem": "" if healthy else _daemon_problem(beat, running, age, why),
    }


def _daemon_problem(beat: Heartbeat | None, running: bool, age: float | None, why: str) -> str:
    if running:
        return f"daemon unhealthy: {why}"
    if beat is None:
        return "daemon not running (no heartbeat yet)"
    stopped = "it stopped; last " if beat.stopped else ""
    return f"daemon not running ({stopped}heartbeat {age:.0f} s old)"


def _agent_nodes(config: Config) -> dict[str, str]:
    """Where swarm agents run; asked only when a profile runs agents on a swarm."""
    if not any(profile.runner == "swarm" for profile in config.agents.values()):
        return {}
    from sidekick.runners.swarm import agent_nodes

    return agent_nodes(config)


def _runs_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("project")
    command.add_argument("--limit", type=int, default=20)
    _json_option(command)


def cmd_runs(args: argparse.Namespace) -> int:
    from sidekick.state import StateStore

    config = _config(args)
    store = StateStore(config.daemon.state_dir / "sidekick.db")
    try:
        runs = store.runs(args.project, args.limit)
    finally:
        store.close()
    rows = [_run_row(r) for r in runs]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        return _no_runs(config, args.project)
    print(_runs_table(rows))
    return 0


_RUNS_HEADER = (
    "STARTED", "RUN", "STATE", "EXIT", "OUTCOME", "TURNS", "TOKENS IN/OUT", "COST", "SESSION",
)  # fmt: skip


def _runs_table(rows: list[dict[str, object]]) -> str:
    """One line a run under a header; the reason (and a pushed branch), which varies most in
    length, closes each line so the columns stay aligned."""
    cells = [_run_cells(row) for row in rows]
    widths = [
        max(len(line[i]) for line in [_RUNS_HEADER, *cells]) for i in range(len(_RUNS_HEADER))
    ]
    lines = []
    for line, reason in [
        (_RUNS_HEADER, "REASON"),
        *zip(cells, map(_run_reason, rows), strict=True),
    ]:
        columns = "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True))
        lines.append(f"{columns}  {reason}".rstrip())
    return "\n".join(lines)


def _run_reason(row: dict[str, object]) -> str:
    pushed = f" (pushed {row['branch']} {str(row['commit'])[:12]})" if row["branch"] else ""
    return f"{row['reason']}{pushed}"


def _run_cells(row: dict[str, object]) -> tuple[str, ...]:
    def shown(value: object) -> str:
        return "-" if value is None or value == "" else str(value)

    cost = row["cost_usd"]
    tokens = f"{shown(row['input_tokens'])}/{shown(row['output_tokens'])}"
    return (
        str(row["started_at"]),
        str(row["run_id"]),
        str(row["state"]),
        shown(row["exit_code"]),
        shown(row["outcome"]),
        shown(row["turns"]),
        "-" if tokens == "-/-" else tokens,
        f"${cost:.4f}" if isinstance(cost, float | int) else "-",
        shown(row["session_id"]),
    )


def _no_runs(config: Config, project: str) -> int:
    """No run of that name: say whether it is a project at all (a typo looks the same)."""
    unknown = _not_in_list(config, project)
    if unknown:
        print(f"sidekick: no runs recorded for {project!r}: {unknown}", file=sys.stderr)
        return 1
    print(f"no runs recorded for {project!r} yet")
    return 0


def _not_in_list(config: Config, name: str) -> str:
    """Why ``name`` is not a row of the list; empty when it is one."""
    from difflib import get_close_matches

    names, source = _list_names(config)
    if name in names:
        return ""
    close = get_close_matches(name, names, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"it is not a project of the list ({source}){hint}"


def _list_names(config: Config) -> tuple[list[str], str]:
    """The projects of the list as the daemon last read it; read here before its first
    read (a Google Sheet costs one request then)."""
    from sidekick.priorities.choose import build_source
    from sidekick.status import read_report

    report = read_report(config.daemon.state_dir)
    if report is not None:
        return [str(row.get("project", "")) for row in report.projects], report.source
    source = build_source(config)
    return [p.name for p in source.load().projects], source.name


def _run_row(run: AgentRun) -> dict[str, object]:
    from dataclasses import asdict

    from sidekick.runners.swarm_workspace import read_pushed_branch

    data = asdict(run)
    data["started_at"] = run.started_at.isoformat(timespec="seconds")
    data["ended_at"] = run.ended_at.isoformat(timespec="seconds") if run.ended_at else None
    data.pop("extra", None)
    # A swarm run with workspace: git pushed a branch; its name and commit are kept by its log.
    pushed = read_pushed_branch(Path(run.log_path)) if run.log_path else None
    data["branch"], data["commit"] = (pushed.branch, pushed.commit) if pushed else ("", "")
    return data


# --- validate / stop-agent ----------------------------------------------------------


def _validate_options(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--file", help="a priorities CSV to check instead of the configured source"
    )


def cmd_validate(args: argparse.Namespace) -> int:
    from sidekick.priorities.choose import build_source
    from sidekick.priorities.csv_file import CsvPrioritySource

    config, note = _config_to_validate(args)
    models = frozenset(config.agents)
    source = (
        CsvPrioritySource(Path(args.file), models=models) if args.file else build_source(config)
    )
    print(f"validating {source.name} ({_config_named(config)})")
    if note:
        print(f"note: {note}")
    snapshot = source.load()
    shared = _shared_directories(config, snapshot, source.name)
    unstartable = _unstartable(config, snapshot, source.name, shared)
    findings = sorted([*snapshot.findings, *shared, *unstartable], key=lambda f: f.line)
    for finding in findings:
        print(finding)
    valid, problems = len(snapshot.projects), len(findings)
    print(f"{source.name}: {valid} valid project(s), {problems} problem(s)")
    return 1 if findings else 0


def _config_to_validate(args: argparse.Namespace) -> tuple[Config, str]:
    """The config, and a note when its API key file is not here: checking the list needs no
    key, and the Compose config names a path that exists only in its container."""
    from sidekick.config import load_config
    from sidekick.errors import ConfigError

    try:
        return _config(args), ""
    except ConfigError as exc:
        if exc.key != _KEY_FILE:
            raise
        without_key = {**os.environ, _KEY_FILE_ENV: "null"}
        note = f"{exc.key}: {exc.problem} (not needed to validate; the daemon needs it)"
        return load_config(args.config, without_key), note


_KEY_FILE, _KEY_FILE_ENV = "api.key_file", "SIDEKICK_API__KEY_FILE"


def _config_named(config: Config) -> str:
    if config.file is not None:
        return f"config {config.file}"
    # In a checkout, ./priorities.csv is the example list; the Compose daemon's is in data/.
    compose = Path("data", "config.yaml")
    hint = f"; the Compose daemon's is {compose}" if compose.is_file() else ""
    return f"no config file, defaults; name one with --config or SIDEKICK_CONFIG{hint}"


def _unstartable(
    config: Config, snapshot: Snapshot, source: str, shared: list[Finding]
) -> list[Finding]:
    """What would keep the daemon from starting a row: the rows the daemon would start whose
    Next Action is empty or whose directory does not exist, and a projects_root missing."""
    from sidekick.row_checks import config_problems, unstartable_rows

    skip = [finding.project for finding in shared]
    return [*config_problems(config), *unstartable_rows(config, snapshot.projects, source, skip)]


def _shared_directories(config: Config, snapshot: Snapshot, source: str) -> list[Finding]:
    from sidekick.directories import shared_directory_problem, shared_root_directories
    from sidekick.models import Finding

    shared = shared_root_directories(config, snapshot.projects)
    return [
        Finding(source, p.line, "Project", shared_directory_problem(config, p.name, others), p.name)
        for p in snapshot.projects
        if (others := shared.get(p.name))
    ]


def _project_option(command: argparse.ArgumentParser) -> None:
    command.add_argument("project")


def cmd_stop_agent(args: argparse.Namespace) -> int:
    from sidekick.models import ProjectStatus
    from sidekick.runners.tmux import TmuxRunner
    from sidekick.state import StateStore

    config = _config(args)
    store = StateStore(config.daemon.state_dir / "sidekick.db")
    try:
        # Its open run names the key it runs under: an older version's key, perhaps.
        runs = store.active_runs().values()
        run = next((r for r in runs if r.project == args.project), None)
        runner = TmuxRunner(config.tmux_socket)
        key = run.key if run is not None else _live_key(runner, args.project)
        if key is None:
            return _nothing_to_stop(config, args.project)
        if run is not None:
            reason = "stopped by a person (sidekick stop-agent)"
            # Blocked, so the next reconcile does not start it again; Pending re-queues it.
            store.set_state(run.run_id, "stopping", reason, ProjectStatus.BLOCKED.value)
        runner.stop(key, config.policy.stop_grace)
        store.record_event(args.project, "stop-agent", f"{key} stopped on request")
    finally:
        store.close()
    print(f"stopped {key}")
    return 0


def _live_key(runner: TmuxRunner, project: str) -> str | None:
    """The key of the project's running agent without an open run (a run the store lost),
    under today's key or the one an older version started it under; None when none runs."""
    from sidekick.models import agent_key, legacy_agent_key

    live = {key for key, agent in runner.list_agents().items() if not agent.finished}
    return next((k for k in (agent_key(project), legacy_agent_key(project)) if k in live), None)


def _nothing_to_stop(config: Config, project: str) -> int:
    why = _not_in_list(config, project) or "it is a project of the list, but not running"
    print(f"sidekick: no agent for {project!r}: {why}", file=sys.stderr)
    return 1


def _context_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("project", help="a project name from the config, or a directory")
    _json_option(command)


def cmd_context(args: argparse.Namespace) -> int:
    from sidekick.containers.context import context_report, detect_context

    config = _config(args)
    directory = config.directory_of(args.project) or Path(args.project)
    if not directory.is_dir():
        from sidekick.named_directory import no_directory_problem

        print(f"sidekick: {no_directory_problem(config, args.project, directory)}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(detect_context(directory).to_dict(), indent=2))
    else:
        print(context_report(directory))
    return 0


def _prod_options(command: argparse.ArgumentParser, rest: Sequence[str] = ()) -> None:
    from sidekick.production.cli import ACTIONS, register

    register(command, _word_named(rest, ACTIONS)[0])


def cmd_prod(args: argparse.Namespace) -> int:
    from sidekick.production.cli import run

    return run(args)


# --- insight (issue 12: sidekick.insight) -------------------------------------------


def _insight_options(command: argparse.ArgumentParser) -> None:
    from sidekick.insight.options import insight_options

    insight_options(command)


def cmd_insight(args: argparse.Namespace) -> int:
    from sidekick.insight.commands import InsightRequest, run_insight

    request = InsightRequest(tuple(args.targets), args.every, args.json, args.watch, args.interval)
    return run_insight(_config(args), request)


def _dockerfile_options(command: argparse.ArgumentParser) -> None:
    from sidekick.insight.options import dockerfile_options

    dockerfile_options(command)


def cmd_dockerfile(args: argparse.Namespace) -> int:
    from sidekick.insight.dockerfile_command import DockerfileRequest, run_dockerfile

    options = (args.write, args.force, args.check, args.base_image, args.json)
    return run_dockerfile(_config(args), DockerfileRequest(args.project, *options))


def _investigate_options(command: argparse.ArgumentParser) -> None:
    from sidekick.insight.options import investigate_options

    investigate_options(command)


def cmd_investigate(args: argparse.Namespace) -> int:
    from sidekick.insight.investigate_command import run_investigate

    return run_investigate(_config(args), args.target, args.question, args.timeout)


# --- web (sidekick.web) -------------------------------------------------------------


def _web_options(command: argparse.ArgumentParser) -> None:
    from sidekick.web.options import register

    register(command)


def cmd_web(args: argparse.Namespace) -> int:
    from sidekick.web.serve import run

    return run(_config(args), args)


_COMMANDS: list[tuple[str, Command, str, Callable[[argparse.ArgumentParser], None]]] = [
    ("run", cmd_run, "run the daemon in the foreground", _run_options),
    ("supervise", cmd_supervise, "run the daemon and restart it if it dies", _supervise_options),
    ("check", cmd_check, "health check: exit 0 when healthy, 1 otherwise", _no_options),
    ("status", cmd_status, "show projects, agents and costs", _json_option),
    ("runs", cmd_runs, "show the runs of one project", _runs_options),
    ("validate", cmd_validate, "check the priority list and print its problems", _validate_options),
    ("stop-agent", cmd_stop_agent, "stop one project's agent on purpose", _project_option),
    ("context", cmd_context, "how a project is containerised, and its commands", _context_options),
    ("insight", cmd_insight, "what runs in containers: health, load, problems", _insight_options),
    ("dockerfile", cmd_dockerfile, "a checked Dockerfile for a project", _dockerfile_options),
    ("investigate", cmd_investigate, "an agent diagnoses a container", _investigate_options),
    ("prod", cmd_prod, "production: detect, status, logs, restart, deploy", _prod_options),
    ("web", cmd_web, "serve the dashboard and /metrics", _web_options),
]
_NAMES = frozenset(name for name, *_ in _COMMANDS)
