"""From a project row and its agent profile to the exact command, directory and environment.

The profile's command is a template: ``{next_action}``, ``{project}`` and
``{directory}`` are replaced inside each argument, never joined into a shell
line (and never inside a shell's script: the config refuses that). The
profile's ``stdin`` template (the default: the Next Action) is written to a
file beside the run's log and given to the agent as its standard input, so a
prompt of any length and any first character reaches it as data. The row's
fields are also in the environment (``SIDEKICK_NEXT_ACTION``, ...). Profiles
that run Claude Code also get their own config directory and the API
settings; the API key is read from its secret file at launch and never logged.

A launch that Linux could not exec (one argument over 128 KiB, or all of them
over ``ARG_MAX``) is refused here with a :class:`~sidekick.errors.RunnerError`
that says which argument, before any runtime is asked.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sidekick import agent_command, claude_code
from sidekick.config import Config
from sidekick.errors import RunnerError
from sidekick.models import Project, slugify
from sidekick.runners.base import LaunchSpec, write_private

logger = logging.getLogger(__name__)

DEFAULT_NEXT_ACTION = "Continue with the most valuable next step for this project."


@dataclass(frozen=True)
class LaunchPlan:
    spec: LaunchSpec
    profile_name: str
    resumed_from: str = ""


def render(template: tuple[str, ...], values: Mapping[str, str]) -> tuple[str, ...]:
    """Fill placeholders argument by argument; other braces stay as they are."""
    return agent_command.render(template, values)


def build_launch(
    config: Config,
    project: Project,
    directory: Path,
    run_id: str,
    resume_session: str = "",
) -> LaunchPlan:
    profile_name = project.model or config.default_agent
    profile = config.profile(project.model)
    fields = {
        "next_action": project.next_action or DEFAULT_NEXT_ACTION,
        "project": project.name,
        "directory": str(directory),
    }
    values = {name: agent_command.encodable(value) for name, value in fields.items()}
    argv = render(profile.command, values)
    if resume_session and profile.claude and profile.resume:
        argv = (*argv, *claude_code.resume_arguments(resume_session))
    log_path = config.daemon.state_dir / "logs" / slugify(project.name) / f"{run_id}.log"
    env = agent_command.field_environment(values)
    env.update(zip(profile.env, render(tuple(profile.env.values()), values), strict=True))
    if profile.claude:
        env.update(_claude_env(config, project, directory))
    problem = agent_command.oversized(argv, env)
    if problem:
        raise RunnerError(project.key, f"cannot start with profile {profile_name!r}: {problem}")
    stdin_path = _write_stdin(log_path, agent_command.fill(profile.stdin, values))
    spec = LaunchSpec(
        project.key,
        project.name,
        run_id,
        argv,
        directory,
        log_path,
        env,
        runner=profile.runner,
        profile=profile_name,
        stdin_path=stdin_path,
        gpu=project.gpu,
    )
    return LaunchPlan(spec, profile_name, resume_session)


def _write_stdin(log_path: Path, text: str) -> Path | None:
    """The agent's standard input, beside its log; None (no input) for an empty template."""
    if not text:
        return None
    path = log_path.with_name(log_path.stem + ".stdin")
    write_private(path, agent_command.encodable(text).encode("utf-8"))
    return path


def _claude_env(config: Config, project: Project, directory: Path) -> dict[str, str]:
    config_dir = config.daemon.state_dir / "claude" / slugify(project.name)
    api_key = read_api_key(config)
    claude_code.prepare_config_dir(config_dir, api_key=api_key, projects=[directory])
    return claude_code.agent_environment(config_dir, config.api.base_url, api_key)


def read_api_key(config: Config) -> str | None:
    """The API key from its secret file; None when no file is configured."""
    if config.api.key_file is None:
        return None
    return config.api.key_file.read_text(encoding="utf-8").strip()
