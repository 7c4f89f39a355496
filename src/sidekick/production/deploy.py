"""``sidekick prod deploy`` and ``rollback``: plan, lock, release, backup, apply, health gate.

A deploy: the plan (files added, changed, deleted; images to rebuild), then under
the project's deploy lock a release record, a backup and journal of everything it
will change, the running images tagged for this release, the files copied (temp
file, rename), ``docker compose build`` and ``up -d``, the wait for health and the
smoke checks. Any failure undoes it: files restored from the backup, the previous
images tagged back, ``up -d`` again and health awaited. A deploy killed midway
leaves its release ``deploying`` with its journal; the next deploy or rollback,
once it holds the lock, undoes it first.
"""

from __future__ import annotations

import logging
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from sidekick.containers.engine import ContainerEngine
from sidekick.containers.errors import ContainerError
from sidekick.containers.scope import ScopedEngine
from sidekick.models import slugify
from sidekick.production.audit import Action
from sidekick.production.compose import ComposeFailed, run_compose
from sidekick.production.errors import ProductionError
from sidekick.production.files import FilePlan, dirty, git_commit, is_git, plan_files
from sidekick.production.health import Verdict, smoke, wait_healthy
from sidekick.production.journal import Journal, apply_files, back_up, restore_files
from sidekick.production.lock import deploy_lock
from sidekick.production.secrets import redactor
from sidekick.production.settings import ComposeProject, read_compose_builds
from sidekick.production.store import LIVE, ROLLED_BACK, ProductionStore, Release
from sidekick.production.target import Target

logger = logging.getLogger(__name__)

DEPLOYED, FAILED, REFUSED = 0, 1, 2
BEFORE_TAG = "sidekick-before-r{number}"
_ROLLBACK_OUTCOMES = {DEPLOYED: "rolled back", FAILED: "failed", REFUSED: "refused"}


@dataclass(frozen=True)
class DeployPlan:
    files: FilePlan
    rebuild: tuple[str, ...]
    recreate: tuple[str, ...]

    def lines(self) -> list[str]:
        files = self.files
        lines = [f"  + {p}" for p in files.added] + [f"  ~ {p}" for p in files.changed]
        lines += [f"  - {p}" for p in files.deleted]
        summary = (
            f"{len(files.added)} added, {len(files.changed)} changed, {len(files.deleted)} deleted"
        )
        lines.insert(0, f"files: {summary}")
        if files.kept:
            lines.append(
                f"  ({len(files.kept)} file(s) only in production are kept: deploy.delete is off)"
            )
        lines.append(f"images to rebuild: {', '.join(self.rebuild) or 'none'}")
        lines.append(f"services to recreate: {', '.join(self.recreate) or 'none'}")
        return lines

    def to_dict(self) -> dict[str, object]:
        files = self.files
        return {
            "added": files.added,
            "changed": files.changed,
            "deleted": files.deleted,
            "kept": files.kept,
            "manifest": files.manifest,
            "rebuild": self.rebuild,
            "recreate": self.recreate,
        }


@dataclass
class Outcome:
    code: int
    detail: str
    release: str = ""
    plan: DeployPlan | None = None
    why: str = ""
    back_on: str = ""


class Deployer:
    """Deploys and rollbacks of one project's production."""

    def __init__(
        self,
        target: Target,
        engine: ContainerEngine,
        store: ProductionStore,
        state_dir: Path,
        *,
        progress: TextIO | None = None,
    ) -> None:
        if target.compose is None or target.settings.path is None:
            raise ProductionError(target.name, "deploys need a Compose project (production.path)")
        self.target = target
        self.compose: ComposeProject = target.compose
        self.production: Path = target.settings.path
        self.scoped: ScopedEngine = target.engine(engine)
        self.store = store
        self.home = state_dir / "production" / slugify(target.name)
        self.progress = progress or sys.stderr
        self.redact = redactor(self.production)

    # --- before anything changes ----------------------------------------------------

    def refusal(self, agent_running: bool) -> str | None:
        """Why a deploy may not start now, or None."""
        if agent_running:
            return "an agent of this project is running: deploy when it has finished"
        workspace = self._workspace()
        if self.target.settings.deploy.require_clean and is_git(workspace):
            changes = dirty(workspace)
            if changes:
                shown = ", ".join(changes[:5]) + (", ..." if len(changes) > 5 else "")
                return f"the workspace has uncommitted changes ({shown}); commit them first"
        return None

    def ensure_free(self, recover_for: str | None = None) -> None:
        """Raise DeployLocked now, before planning against a directory being changed.

        With ``recover_for`` (who asks), a deploy that was killed midway is undone first,
        so the plan is made against the release production ran before it: its files may
        already be copied, and a plan made over them would find nothing to deploy.
        """
        with deploy_lock(self._lock_file(), self.target.name):
            if recover_for is not None:
                self.recover(recover_for)

    def _lock_file(self) -> Path:
        return self.home.with_suffix(".lock")

    def plan(self) -> DeployPlan:
        return deploy_plan(self.target)

    def _workspace(self) -> Path:
        return _workspace(self.target)

    # --- deploy ---------------------------------------------------------------------

    def deploy(self, plan: DeployPlan, action: Action) -> Outcome:
        with deploy_lock(self._lock_file(), self.target.name):
            self.recover(action.who)
            release = self.store.new_release(
                self.target.name, git_commit(self._workspace()), plan.files.manifest
            )
            outcome = self._release(release, plan)
        action.record("deployed" if outcome.code == DEPLOYED else "rolled back", outcome.detail)
        return outcome

    def _release(self, release: Release, plan: DeployPlan) -> Outcome:
        where = self.home / release.name
        journal = Journal(release.number)
        try:
            journal = self._prepare(where, release, plan)
            apply_files(self._workspace(), self.production, plan.files)
            verdict = self._start(build=bool(plan.rebuild))
        except (ComposeFailed, ContainerError, OSError) as exc:
            verdict = Verdict(False, str(exc))
        if verdict.healthy:
            self.store.finish(self.target.name, release.number, LIVE, verdict.detail)
            self._prune()
            return Outcome(
                DEPLOYED, f"{release.name} is live: {verdict.detail}", release.name, plan
            )
        return self._undo_failed(where, release, journal, self.redact(verdict.detail), plan)

    def _prepare(self, where: Path, release: Release, plan: DeployPlan) -> Journal:
        journal = back_up(where, self.production, plan.files, release.number)
        journal.images = self._current_images()
        journal.write(where)
        for reference, image_id in journal.images.items():
            self.scoped.tag(
                image_id, _repository(reference), BEFORE_TAG.format(number=release.number)
            )
        self.store.set_images(self.target.name, release.number, journal.images)
        return journal

    def _current_images(self) -> dict[str, str]:
        rows = self.target.select(self.scoped.list())
        return {r.image: str(r.raw.get("ImageID", "")) for r in rows if r.raw.get("ImageID")}

    def _start(self, *, build: bool) -> Verdict:
        # One compose run builds and recreates: a second would load the project again.
        run_compose(
            self.compose, "up", "-d", "--build" if build else "--no-build", progress=self.progress
        )
        return self._gate()

    def _gate(self) -> Verdict:
        deploy = self.target.settings.deploy
        verdict = wait_healthy(self.target, self.scoped, (), deploy.wait_timeout)
        return smoke(self.target, self.scoped, deploy.smoke) if verdict.healthy else verdict

    def _undo_failed(
        self, where: Path, release: Release, journal: Journal, why: str, plan: DeployPlan
    ) -> Outcome:
        back = self._undo(where, journal)
        previous = self.store.live(self.target.name)
        name = previous.name if previous else "the release before it"
        state = "runs" if back.healthy else "was restored to, but is not healthy on,"
        detail = f"{release.name} failed: {why}; production {state} {name} again"
        self.store.finish(self.target.name, release.number, ROLLED_BACK, detail)
        return Outcome(FAILED, detail, release.name, plan, why=why, back_on=name)

    def _undo(self, where: Path, journal: Journal, *, smoke_too: bool = False) -> Verdict:
        """Back to before the release; health awaited (the smoke checks only on request:
        after a failed deploy they may be what failed, whatever runs)."""
        restore_files(where, self.production, journal)
        for reference, image_id in journal.images.items():
            self.scoped.tag(image_id, _repository(reference), _tag(reference))
        try:
            run_compose(self.compose, "up", "-d", "--no-build", progress=self.progress)
        except ComposeFailed as exc:
            return Verdict(False, self.redact(str(exc)))
        if smoke_too:
            return self._gate()
        return wait_healthy(self.target, self.scoped, (), self.target.settings.deploy.wait_timeout)

    # --- after a crash, and on request ----------------------------------------------

    def recover(self, who: str) -> str | None:
        """Undo a deploy that was killed midway (its release still says deploying)."""
        unfinished = self.store.unfinished(self.target.name)
        if unfinished is None:
            return None
        where = self.home / unfinished.name
        journal = Journal.read(where) or Journal(unfinished.number)
        verdict = self._undo(where, journal)
        detail = f"{unfinished.name} was interrupted; undone by {who}: {verdict.detail}"
        self.store.finish(self.target.name, unfinished.number, ROLLED_BACK, detail)
        logger.warning("%s: %s", self.target.name, detail)
        return detail

    def rollback(self, action: Action, to: int | None = None) -> Outcome:
        with deploy_lock(self._lock_file(), self.target.name):
            recovered = self.recover(action.who)
            outcome = (
                self._roll_back(to)
                if recovered is None or to is not None
                else _recovered(recovered)
            )
        action.record(_ROLLBACK_OUTCOMES[outcome.code], outcome.detail)
        return outcome

    def _roll_back(self, to: int | None) -> Outcome:
        releases = self.store.releases(self.target.name, limit=1000)
        current = next((r for r in releases if r.state == LIVE), None)
        if current is None:
            return Outcome(REFUSED, "no live release to roll back")
        goal = to if to is not None else previous_release(releases, current)
        if goal >= current.number or (goal and all(r.number != goal for r in releases)):
            return Outcome(REFUSED, f"r{goal} is not a release before the live {current.name}")
        # Newest first, each journal undoing its own release; undone ones are skipped.
        undone = [
            r for r in releases if goal < r.number <= current.number and r.state != ROLLED_BACK
        ]
        verdict = Verdict(True, "")
        for release in undone:
            journal = Journal.read(self.home / release.name)
            if journal is None:
                return Outcome(FAILED, f"the backup of {release.name} is gone (deploy.keep)")
            verdict = self._undo(self.home / release.name, journal, smoke_too=True)
            self.store.finish(
                self.target.name, release.number, ROLLED_BACK, f"rolled back to r{goal}"
            )
        if goal > 0:
            self.store.finish(self.target.name, goal, LIVE, verdict.detail)
        code = DEPLOYED if verdict.healthy else FAILED
        return Outcome(code, f"back on r{goal}: {verdict.detail}", f"r{goal}")

    def _prune(self) -> None:
        """Past the newest ``keep`` releases a rollback can undo, a release loses its backup
        and before-tags; so does every rolled-back one, which a rollback skips: failed
        deploys never push a healthy release's backup out."""
        keep = self.target.settings.deploy.keep
        releases = self.store.releases(self.target.name, limit=1000)
        standing = [r for r in releases if r.state != ROLLED_BACK]
        for release in standing[keep:] + [r for r in releases if r.state == ROLLED_BACK]:
            where = self.home / release.name
            if where.exists():
                shutil.rmtree(where, ignore_errors=True)
                for reference in release.images:
                    self.scoped.untag(
                        f"{_repository(reference)}:{BEFORE_TAG.format(number=release.number)}"
                    )


def deploy_plan(target: Target) -> DeployPlan:
    """What a deploy would change; reads files only (the dashboard shows it before asking)."""
    if target.compose is None or target.settings.path is None:
        raise ProductionError(target.name, "deploys need a Compose project (production.path)")
    deploy, compose = target.settings.deploy, target.compose
    files = plan_files(
        _workspace(target), target.settings.path, deploy.exclude, delete=deploy.delete
    )
    builds = read_compose_builds(compose.file)
    rebuild = tuple(s for s, context in builds.items() if deploy.build and _touches(files, context))
    compose_changed = any(p.startswith(".env") or compose.file.name == p for p in files.copied())
    recreate = compose.services if compose_changed else rebuild
    return DeployPlan(files, rebuild, tuple(recreate))


def _workspace(target: Target) -> Path:
    if target.workspace is None:
        raise ProductionError(target.name, "has no workspace directory to deploy from")
    return target.workspace


def previous_release(releases: list[Release], current: Release) -> int:
    """The release a rollback of ``current`` goes back to (0: before the first)."""
    older = [r.number for r in releases if r.number < current.number and r.state != ROLLED_BACK]
    return max(older, default=0)


def _recovered(detail: str) -> Outcome:
    return Outcome(DEPLOYED, detail)


def _touches(files: FilePlan, context: str) -> bool:
    prefix = context.strip("./")
    return any(not prefix or p == prefix or p.startswith(prefix + "/") for p in files.copied())


def _repository(reference: str) -> str:
    name, _, tag = reference.rpartition(":")
    return name if name and "/" not in tag else reference


def _tag(reference: str) -> str:
    name, _, tag = reference.rpartition(":")
    return tag if name and "/" not in tag else "latest"
