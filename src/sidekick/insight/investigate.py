"""``sidekick investigate``: a read-only agent run that diagnoses a container from its evidence.

The run goes through the normal runner (a tmux agent under the wrapper, like
every agent), is recorded in the state store (so ``sidekick runs`` lists it
and its cost counts in the budgets) and writes its answer into a report kept
beside its evidence pack. Its Claude Code command may read files and run
read-only ``docker`` commands; Edit, Write and NotebookEdit are disabled for
the session, so an attempt to change a file is refused by the CLI itself.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from sidekick import claude_code
from sidekick.claude_code import AgentResult
from sidekick.config import Config
from sidekick.containers.engine import ContainerEngine
from sidekick.insight.evidence import evidence_pack
from sidekick.insight.kept import investigations_dir
from sidekick.insight.report import ContainerInsight, InsightCollector
from sidekick.insight.targets import resolve_targets
from sidekick.launch import read_api_key
from sidekick.models import AgentRun, slugify
from sidekick.reconciler import with_result
from sidekick.runners.base import LaunchSpec, Runner, write_private
from sidekick.runners.tmux import TmuxRunner
from sidekick.state import RunEnd, StateStore

logger = logging.getLogger(__name__)

EDIT_TOOLS = ("Edit", "MultiEdit", "Write", "NotebookEdit")
READ_ONLY_TOOLS = (
    "Read",
    "Grep",
    "Glob",
    "LS",
    "Bash(docker logs:*)",
    "Bash(docker inspect:*)",
    "Bash(docker top:*)",
    "Bash(docker stats --no-stream:*)",
    "Bash(docker events:*)",
    "Bash(docker ps:*)",
)
# The agents' own headless command (prompt on stdin, stream-json), with the
# permissions swapped for read-only ones.
_HEADLESS = claude_code.DEFAULT_COMMAND[: claude_code.DEFAULT_COMMAND.index("--permission-mode")]
READ_ONLY_COMMAND: tuple[str, ...] = (
    *_HEADLESS,
    "--permission-mode",
    "default",
    "--allowedTools",
    *READ_ONLY_TOOLS,
    "--disallowedTools",
    *EDIT_TOOLS,
)
KEY_PREFIX = "sidekick-investigate-"
# Investigations have a tmux server of their own: the daemon's reconciler would
# take an agent it has no row for as one to stop.
SOCKET_NAME = "inv.sock"
DEFAULT_QUESTION = "What is wrong with this container, why, and what should a person do about it?"
RUN_TIMEOUT = 600.0
POLL = 0.5
INSTRUCTIONS = """You are investigating production containers for a person. Use only the
evidence below and read-only commands (docker logs, inspect, top, ps, events) and
the project's files; you may not change anything. Answer in plain words: the
diagnosis first, then the evidence that shows it, then what the person should do.
"""


@dataclass(frozen=True)
class Investigation:
    run_id: str
    project: str
    containers: tuple[str, ...]
    question: str
    answer: str
    exit_code: int | None
    denied_edits: tuple[str, ...]
    cost_usd: float | None
    report_path: Path

    def summary(self) -> str:
        first = next((ln.strip() for ln in self.answer.splitlines() if ln.strip()), "")
        return first or "no answer"


class Waits(Protocol):
    """A stop request: ``wait`` returns True once stopping is asked (threading.Event, ...)."""

    def wait(self, timeout: float | None) -> bool: ...


def investigation_socket(config: Config) -> Path:
    """Beside the agents' socket, with a name no longer than its (so within the OS limit)."""
    return config.tmux_socket.with_name(SOCKET_NAME)


def investigation_runner(config: Config) -> TmuxRunner:
    """A tmux runner whose server and agent locks the daemon's runner never lists."""
    lock_dir = investigations_dir(config) / "agents"
    return TmuxRunner(investigation_socket(config), lock_dir=lock_dir)


@dataclass
class Investigator:
    config: Config
    runner: Runner
    store: StateStore
    engine: ContainerEngine
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    timeout: float = RUN_TIMEOUT
    stop: Waits | None = None
    _started_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def investigate(self, target: str, question: str = "") -> Investigation:
        names = resolve_targets(self.engine, self.config, [target], every=False)
        reports = InsightCollector(self.engine).collect(names)
        project = _project_of(target, reports)
        run_id = f"inv-{self.clock():%Y%m%d%H%M%S}-{uuid.uuid4().hex[:6]}-{slugify(target)[:24]}"
        workdir = investigations_dir(self.config) / slugify(target) / run_id
        workdir.mkdir(parents=True, exist_ok=True)
        evidence = evidence_pack(self.engine, reports)
        (workdir / "EVIDENCE.md").write_text(evidence, encoding="utf-8")
        prompt = f"{INSTRUCTIONS}\nQuestion: {question or DEFAULT_QUESTION}\n\n{evidence}"
        spec = self._spec(target, project, run_id, workdir, prompt)
        self._begin(spec)
        exit_code = self._wait(spec.key)
        return self._finish(spec, names, question or DEFAULT_QUESTION, exit_code, workdir)

    def _spec(
        self, target: str, project: str, run_id: str, workdir: Path, prompt: str
    ) -> LaunchSpec:
        log_path = workdir / "agent.log"
        stdin_path = workdir / "prompt.txt"
        write_private(stdin_path, prompt.encode("utf-8"))
        config_dir = self.config.daemon.state_dir / "claude" / f"investigate-{slugify(target)}"
        api_key = read_api_key(self.config)
        claude_code.prepare_config_dir(config_dir, api_key=api_key, projects=[workdir])
        env = claude_code.agent_environment(config_dir, self.config.api.base_url, api_key)
        argv = READ_ONLY_COMMAND
        directory = self.config.project_directory(project)
        if directory is not None and directory.is_dir():
            argv = (*argv, "--add-dir", str(directory))
        key = KEY_PREFIX + slugify(target)
        return LaunchSpec(key, project, run_id, argv, workdir, log_path, env, stdin_path=stdin_path)

    def _begin(self, spec: LaunchSpec) -> None:
        self._started_at = self.clock()
        self.runner.start(spec)

    def _wait(self, key: str) -> int | None:
        stop = self.stop or threading.Event()
        deadline = self.clock().timestamp() + self.timeout
        while self.clock().timestamp() < deadline:
            agent = self.runner.list_agents().get(key)
            if agent is not None and agent.finished:
                self.runner.reap(key)
                return agent.exit_code
            if stop.wait(POLL):
                break
        self.runner.stop(key, 5.0)
        self.runner.reap(key)
        return None

    def _finish(
        self,
        spec: LaunchSpec,
        names: Sequence[str],
        question: str,
        exit_code: int | None,
        workdir: Path,
    ) -> Investigation:
        log_text = spec.log_path.read_text(encoding="utf-8", errors="replace")
        facts = claude_code.parse_result(log_text)
        answer = _answer(facts, exit_code)
        denied = tuple(_edit_attempts(log_text))
        investigation = Investigation(
            spec.run_id,
            spec.project,
            tuple(names),
            question,
            answer,
            exit_code,
            denied,
            facts.total_cost_usd if facts else None,
            workdir / "REPORT.md",
        )
        _write_report(investigation)
        self._record(spec, facts, investigation)
        return investigation

    def _record(self, spec: LaunchSpec, facts: AgentResult | None, done: Investigation) -> None:
        """The run, once it has ended: an open run would look like a lost agent to the daemon."""
        run = AgentRun(
            spec.run_id,
            spec.project,
            spec.key,
            spec.argv,
            self._started_at,
            log_path=str(spec.log_path),
            runner=self.runner.name,
        )
        self.store.begin_run(run)
        state = "finished" if done.exit_code is not None else "stopped"
        reason = f"investigation: {done.summary()}"[:300]
        # Session, turns, tokens and cost as the reconciler reads them off any run.
        end = with_result(
            RunEnd(state, self.clock(), done.exit_code, reason, "Investigated"), facts
        )
        self.store.end_run(spec.run_id, end)
        self.store.record_event(
            spec.project,
            "investigation",
            done.summary(),
            run_id=spec.run_id,
            containers=list(done.containers),
            report=str(done.report_path),
            denied_edits=list(done.denied_edits),
        )


def _project_of(target: str, reports: Sequence[ContainerInsight]) -> str:
    projects = {r.project for r in reports if r.project}
    return projects.pop() if len(projects) == 1 else target


def _answer(facts: AgentResult | None, exit_code: int | None) -> str:
    if facts is not None and facts.result and not facts.is_error:
        return facts.result.strip()
    if exit_code is None:
        return "no answer: the investigation ran out of time and was stopped"
    why = facts.result if facts is not None else "no result line in its output"
    return f"no answer: the agent ended with exit code {exit_code} ({why})"


def _edit_attempts(log_text: str) -> Iterator[str]:
    """Every Edit/Write the agent asked for: the session has those tools disabled."""
    for line in log_text.splitlines():
        start = line.find("{")
        if start < 0 or '"tool_use"' not in line:
            continue
        try:
            data = json.loads(line[start:])
        except ValueError:
            continue
        content = (data.get("message") or {}).get("content") or []
        for block in content if isinstance(content, list) else ():
            if isinstance(block, dict) and block.get("name") in EDIT_TOOLS:
                target = (block.get("input") or {}).get("file_path", "")
                yield f"{block['name']} {target}".strip()


def _write_report(done: Investigation) -> None:
    lines = [
        f"# Investigation {done.run_id}",
        f"containers: {', '.join(done.containers)}",
        f"project: {done.project}",
        f"question: {done.question}",
        f"exit code: {done.exit_code}",
        f"cost: {'-' if done.cost_usd is None else f'${done.cost_usd:.4f}'}",
    ]
    if done.denied_edits:
        lines.append(f"edits refused (read-only profile): {'; '.join(done.denied_edits)}")
    lines += ["", "## Answer", done.answer, ""]
    done.report_path.write_text("\n".join(lines), encoding="utf-8")
