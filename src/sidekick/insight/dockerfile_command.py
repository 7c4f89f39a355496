"""``sidekick dockerfile``: detect, generate, optionally prove by building, then print or write."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from sidekick.config import Config
from sidekick.containers.engine import ContainerEngine
from sidekick.insight.check import Checker, CheckResult
from sidekick.insight.detect import BuildPlan, detect_build
from sidekick.insight.generate import Generated, generate
from sidekick.named_directory import no_directory_problem

FILES = ("Dockerfile", ".dockerignore")


@dataclass(frozen=True)
class DockerfileRequest:
    project: str
    write: bool = False
    force: bool = False
    check: bool = False
    base_image: str | None = None
    as_json: bool = False


def run_dockerfile(config: Config, request: DockerfileRequest, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    directory = config.directory_of(request.project) or Path(request.project)
    if not directory.is_dir():
        problem = no_directory_problem(config, request.project, directory)
        print(f"sidekick: {problem}", file=sys.stderr)
        return 1
    plan = detect_build(directory)
    generated = generate(plan)
    taken = [name for name in FILES if (directory / name).exists()]
    if request.write and taken and not request.force:
        print(
            f"sidekick: {', '.join(taken)} already in {directory}; --force replaces",
            file=sys.stderr,
        )
        return 1
    result = _check(config, plan, generated, request.base_image) if request.check else None
    wrote = request.write and (result is None or result.passed)
    if wrote:
        (directory / "Dockerfile").write_text(generated.dockerfile)
        (directory / ".dockerignore").write_text(generated.dockerignore)
    _show(out, plan, generated, result, request, wrote=wrote)
    return 0 if result is None or result.passed else 1


def _check(
    config: Config, plan: BuildPlan, generated: Generated, base_image: str | None
) -> CheckResult:
    engine = ContainerEngine(config.containers)
    try:
        return Checker(engine, base_image).check(plan, generated)
    finally:
        engine.close()


def _show(
    out: TextIO,
    plan: BuildPlan,
    generated: Generated,
    result: CheckResult | None,
    request: DockerfileRequest,
    *,
    wrote: bool,
) -> None:
    if request.as_json:
        document = {
            "plan": plan.to_dict(),
            "dockerfile": generated.dockerfile,
            "dockerignore": generated.dockerignore,
            "check": result.to_dict() if result else None,
            "written": wrote,
        }
        out.write(json.dumps(document, indent=2) + "\n")
        return
    if not request.write:
        out.write(generated.dockerfile + "\n# --- .dockerignore\n" + generated.dockerignore)
    for note in plan.notes:
        out.write(f"note: {note}\n")
    if result is not None:
        out.write(_result_text(result) + "\n")
    if wrote:
        out.write(f"wrote {plan.directory / 'Dockerfile'} and {plan.directory / '.dockerignore'}\n")
    elif request.write:
        out.write("nothing written: the check failed\n")


def _result_text(result: CheckResult) -> str:
    verdict = "check passed" if result.passed else f"check FAILED at {result.stage}"
    lines = [f"{verdict} in {result.seconds:.0f} s: {result.detail}"]
    if not result.passed:
        lines += [f"  | {line}" for line in result.log[-20:]]
    return "\n".join(lines)
