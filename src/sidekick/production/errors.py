"""Errors of production commands, built from typed fields like every sidekick error."""

from __future__ import annotations

from dataclasses import dataclass

from sidekick.errors import SidekickError


@dataclass(eq=False)
class ProductionError(SidekickError):
    """A production command cannot go on for this project."""

    project: str
    problem: str

    def message(self) -> str:
        return f"{self.project}: {self.problem}"


class DeployRefused(ProductionError):
    """A deploy that was not started: an agent runs, the workspace is dirty, not confirmed."""


class DeployLocked(ProductionError):
    """Another process deploys this project right now."""
