"""Errors of production commands, built from typed fields like every sidekick error."""

from __future__ import annotations

from sidekick.errors import SidekickError


class ProductionError(SidekickError):
    """A production command cannot go on for this project."""

    def __init__(self, project: str, problem: str) -> None:
        super().__init__(project, problem)
        self.project, self.problem = project, problem

    def message(self) -> str:
        return f"{self.project}: {self.problem}"


class DeployRefused(ProductionError):
    """A deploy that was not started: an agent runs, the workspace is dirty, not confirmed."""


class DeployLocked(ProductionError):
    """Another process deploys this project right now."""
