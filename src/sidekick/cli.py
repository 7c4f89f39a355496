"""The ``sidekick`` command.

Heavy modules (libtmux, APScheduler, gspread, docker) are imported inside the
commands that need them, so ``sidekick check`` and ``sidekick status`` start
fast enough to run as a health check every few seconds.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

from sidekick import __version__
from sidekick.config import Config, load_config
from sidekick.errors import SidekickError
from sidekick.models import AgentRun, Finding, Snapshot

Command = Callable[[argparse.Namespace], int]
CONFIG_HELP = "config file (default: $SIDEKICK_CONFIG, ./config.yaml)"


def main(argv: Sequence[str] | None = None) -> int:
    if argv is not None:
        return _main(argv)
    try:
        return _main(sys.argv[1:])
    finally:
        # The process's own command line: the process ends when this returns. Its objects
        # leave the collector's sight, so the collection at interpreter exit does not walk
        # them all to free what the OS frees anyway: 35-100 ms of a ``prod status`` on the
        # CI machine, 4 ms once frozen.
        gc.freeze()


def _main(argv: Sequence[str]) -> int:
    parser = _parser(_command_named(argv))
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args))
    except SidekickError as exc:
        print(f"sidekick: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _parser(chosen: str | None = None) -> argparse.ArgumentParser:
    """Every command; the options only of the ``chosen`` one (all when None): building them
    all, and importing the modules that declare them, costs a ``prod status`` a tenth."""
    parser = argparse.ArgumentParser(
        prog="sidekick",
        description="Keeps AI coding agents working on your most important projects.",
    )
    parser.add_argument("--version", action="version", version=f"sidekick {__version__}")
    parser.add_argument("--config", help=CONFIG_HELP)
    sub = parser.add_subparsers(metavar="COMMAND")
    for name, handler, helptext, extra in _COMMANDS:
        command = sub.add_parser(name, help=helptext, description=helptext)
        # Before or after the command name alike; SUPPRESS keeps the first when only it is given.
        command.add_argument("--config", help=CONFIG_HELP, default=argparse.SUPPRESS)
        if chosen in (None, name):
            extra(command)
        command.set_defaults(handler=handler)
    return parser


def _command_named(argv: Sequence[str]) -> str | None:
    """The command the arguments run: the first one that is not an option (or the value of
    ``--config``), if it names a command."""
    rest = iter(argv)
    for arg in rest:
        if arg == "--config":
            next(rest, None)
        elif not arg.startswith("-"):
            return arg if arg in _NAMES else None
    return None


def _config(args: argparse.Namespace) -> Config:
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
    print(json.dumps(data, indent=2) if args.json else render_table(data))
    return 0


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
    for row in rows:
        cost = f"${row['cost_usd']:.4f}" if row["cost_usd"] is not None else "-"
        exit_code = row["exit_code"] if row["exit_code"] is not None else "-"
        pushed = f"  {row['branch']} {str(row['commit'])[:12]}" if row["branch"] else ""
        print(
            f"{row['started_at']}  {row['run_id']}  {row['state']:<15} exit={exit_code}  "
            f"{row['outcome'] or '-':<11} {cost:>9}  {row['reason']}{pushed}"
        )
    if not rows:
        print(f"no runs recorded for {args.project!r}")
    return 0


def _run_row(run: AgentRun) -> dict[str, object]:
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

    config = _config(args)
    models = frozenset(config.agents)
    source = (
        CsvPrioritySource(Path(args.file), models=models) if args.file else build_source(config)
    )
    snapshot = source.load()
    shared = _shared_directories(config, snapshot, source.name)
    unstartable = _unstartable(config, snapshot, source.name, shared)
    findings = sorted([*snapshot.findings, *shared, *unstartable], key=lambda f: f.line)
    for finding in findings:
        print(finding)
    valid, problems = len(snapshot.projects), len(findings)
    print(f"{source.name}: {valid} valid project(s), {problems} problem(s)")
    return 1 if findings else 0


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

    shared = shared_root_directories(config, snapshot.projects)
    return [
        Finding(source, p.line, "Project", shared_directory_problem(config, p.name, others), p.name)
        for p in snapshot.projects
        if (others := shared.get(p.name))
    ]


def _project_option(command: argparse.ArgumentParser) -> None:
    command.add_argument("project")


def cmd_stop_agent(args: argparse.Namespace) -> int:
    from sidekick.models import ProjectStatus, agent_key
    from sidekick.runners.tmux import TmuxRunner
    from sidekick.state import StateStore

    config = _config(args)
    store = StateStore(config.daemon.state_dir / "sidekick.db")
    try:
        # Its open run names the key it runs under: an older version's key, perhaps.
        runs = store.active_runs().values()
        run = next((r for r in runs if r.project == args.project), None)
        key = run.key if run is not None else agent_key(args.project)
        if run is not None:
            reason = "stopped by a person (sidekick stop-agent)"
            # Blocked, so the next reconcile does not start it again; Pending re-queues it.
            store.set_state(run.run_id, "stopping", reason, ProjectStatus.BLOCKED.value)
        TmuxRunner(config.tmux_socket).stop(key, config.policy.stop_grace)
        store.record_event(args.project, "stop-agent", f"{key} stopped on request")
    finally:
        store.close()
    print(f"stopped {key}")
    return 0


def _context_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("project", help="a project name from the config, or a directory")
    _json_option(command)


def cmd_context(args: argparse.Namespace) -> int:
    from sidekick.containers.context import context_report, detect_context

    config = _config(args)
    directory = config.directory_of(args.project) or Path(args.project)
    if not directory.is_dir():
        print(f"sidekick: no directory for {args.project!r} ({directory})", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(detect_context(directory).to_dict(), indent=2))
    else:
        print(context_report(directory))
    return 0


def _prod_options(command: argparse.ArgumentParser) -> None:
    from sidekick.production.cli import register

    register(command)


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
