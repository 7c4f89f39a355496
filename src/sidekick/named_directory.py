"""What a command that takes a project name or a directory says when it finds neither."""

from __future__ import annotations

from pathlib import Path

from sidekick.config import Config


def no_directory_problem(config: Config, name: str, directory: Path) -> str:
    """Why ``name`` led to no directory: a configured project whose directory is missing,
    or a text that is neither a configured project nor an existing directory."""
    where = str(config.file) if config.file else "no config file"
    if name in config.projects:
        return (
            f"project {name!r} (configured in {where}) has no directory: {directory} does not exist"
        )
    if config.projects_root is not None:
        return (
            f"{name!r} is neither a project configured in {where} nor an existing directory, "
            f"and projects_root holds no {directory.name!r}"
        )
    return f"{name!r} is neither a project configured in {where} nor an existing directory"
