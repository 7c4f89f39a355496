"""``sidekick prod deploy`` and ``rollback``: plan, lock, release, backup, apply, health gate.

A deploy: the plan (files added, changed, deleted; images to rebuild), then under
the project's deploy lock a release record, a backup and journal of everything it
will change, the running images tagged for this release, the files copied (temp
file, rename), ``docker compose build`` and ``up -d``, the wait for health and the
smoke checks. Any failure undoes it: files restored from the backup, the previous
images tagged back, ``up -d`` again and health awaited. A deploy killed midway
leaves its release ``deploying`` with its journal; the next deploy or rollback,
once it holds the lock, undoes it first.

A release that goes live keeps a snapshot of its own files and images
(:mod:`sidekick.production.snapshots`); a rollback to a named release restores that
snapshot, journaled as a deploy is, so a rollback that fails its health gate (or is
killed) goes back to what ran before it.
"""

from __future__ import annotations

import logging
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from sidekick.containers.engine import ContainerEngine
from sidekick.containers.errors import ContainerError
from sidekick.containers.scope import ScopedEngine, service_of
from sidekick.models import slugify
from sidekick.production.audit import Action
from sidekick.production.compose import ComposeFailed, run_compose
from sidekick.production.errors import ProductionError
from sidekick.production.files import FilePlan, dirty, git_commit, is_git, plan_files
from sidekick.production.health import Verdict, gate, report
from sidekick.production.journal import Journal, apply_files, back_up, discard, restore_files
from sidekick.production.lock import deploy_lock
from sidekick.production.secrets import redactor
from sidekick.production.settings import ComposeProject, SmokeCheck, read_compose_builds
from sidekick.production.snapshots import (
    RELEASE_TAG,
    Snapshot,
    apply_snapshot,
    collect,
    drop,
    kept,
    managed,
    numbers,
    remove_if_empty,
    restore_plan,
    surplus,
    take,
)
from sidekick.production.store import DEPLOYING, LIVE, ROLLED_BACK, ProductionStore, Release
from sidekick.production.target import Target

logger = logging.getLogger(__name__)

DEPLOYED, FAILED, REFUSED = 0, 1, 2
BEFORE_TAG = "sidekick-{project}-before-r{number}"
# Where a rollback journals what it changes, so a failed or killed one can be undone.
ROLLBACK = "rollback"
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
    # The whole output the one-line ``detail`` quotes the last line of (a probe's traceback).
    output: str = ""

    def report(self) -> str:
        return report(self.detail, self.output)


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
        clock: Callable[[], float] = time.time,
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
        self.clock = clock

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
        action.record("deployed" if outcome.code == DEPLOYED else "rolled back", outcome.report())
        return outcome

    def _release(self, release: Release, plan: DeployPlan) -> Outcome:
        where = self.home / release.name
        journal = Journal(release.number)
        try:
            journal = self._prepare(where, release, plan)
            apply_files(self._workspace(), self.production, plan.files)
            verdict = self._start(build=bool(plan.rebuild))
            if verdict.healthy:
                files = plan.files
                self._keep(
                    take(self.home, release.number, self.production, files.deployed, files.kept)
                )
        except (ComposeFailed, ContainerError, OSError) as exc:
            verdict = Verdict(False, str(exc))
        if verdict.healthy:
            self.store.finish(self.target.name, release.number, LIVE, verdict.detail)
            self._prune()
            return Outcome(
                DEPLOYED, f"{release.name} is live: {verdict.detail}", release.name, plan
            )
        outcome = self._undo_failed(where, release, journal, self.redact(verdict.detail), plan)
        outcome.output = self.redact(verdict.output)
        return outcome

    def _prepare(self, where: Path, release: Release, plan: DeployPlan) -> Journal:
        self._baseline(plan.files)
        journal = back_up(where, self.production, plan.files, release.number)
        journal.images = self._current_images()
        journal.write(where)
        for reference, image_id in journal.images.items():
            self.scoped.tag(image_id, _repository(reference), self._before_tag(release.number))
        self.store.set_images(self.target.name, release.number, journal.images)
        return journal

    def _baseline(self, files: FilePlan) -> None:
        """What production runs now, kept as the live release (r0 before the first deploy)
        when no snapshot holds it yet, so a rollback can come back to it."""
        live = self.store.live(self.target.name)
        number = live.number if live else 0
        if Snapshot.read(self.home, number) is None:
            paths = (*files.deployed, *files.deleted)
            self._keep(take(self.home, number, self.production, paths, files.kept))

    def _keep(self, snapshot: Snapshot) -> None:
        """The snapshot with the images running now, tagged so a later build keeps them."""
        snapshot.images = self._current_images()
        snapshot.pulled = self._current_images(built=False)
        snapshot.live_at = self.clock()
        for reference, image_id in snapshot.images.items():
            tag = self._release_tag(snapshot.number)
            self.scoped.tag(image_id, _repository(reference), tag)
        snapshot.write(self.home)

    def _current_images(self, *, built: bool = True) -> dict[str, str]:
        """The images the services run: those the project builds (sidekick may tag and
        retag them), or with ``built=False`` those it pulls (other projects share them)."""
        builds = read_compose_builds(self.compose.file)
        rows = self.target.select(self.scoped.list())
        return {
            r.image: str(r.raw["ImageID"])
            for r in rows
            if r.raw.get("ImageID") and (service_of(r) in builds) == built
        }

    def _release_tag(self, number: int) -> str:
        return RELEASE_TAG.format(project=self.compose.name, number=number)

    def _before_tag(self, number: int) -> str:
        return BEFORE_TAG.format(project=self.compose.name, number=number)

    def _start(self, *, build: bool) -> Verdict:
        # One compose run builds and recreates: a second would load the project again.
        run_compose(
            self.compose, "up", "-d", "--build" if build else "--no-build", progress=self.progress
        )
        return self._gate()

    def _gate(self) -> Verdict:
        return gate(self.target, self.scoped, (), self.target.settings.deploy.smoke)

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

    def _undo(self, where: Path, journal: Journal, checks: tuple[SmokeCheck, ...] = ()) -> Verdict:
        """Back to before the release; health awaited, then the smoke checks given (none after
        a failed deploy: they may be what failed, whatever runs)."""
        restore_files(where, self.production, journal)
        for reference, image_id in journal.images.items():
            self.scoped.tag(image_id, _repository(reference), _tag(reference))
        try:
            run_compose(self.compose, "up", "-d", "--no-build", progress=self.progress)
        except ComposeFailed as exc:
            return Verdict(False, self.redact(str(exc)))
        return gate(self.target, self.scoped, (), checks)

    # --- after a crash, and on request ----------------------------------------------

    def recover(self, who: str) -> str | None:
        """Undo a deploy (its release still says deploying) or a rollback killed midway."""
        rollback = self._recover_rollback(who)
        return self._recover_deploy(who) or rollback

    def _recover_deploy(self, who: str) -> str | None:
        unfinished = self.store.unfinished(self.target.name)
        if unfinished is None:
            return None
        where = self.home / unfinished.name
        journal = Journal.read(where) or Journal(unfinished.number)
        verdict = self._undo(where, journal)
        # Killed after its snapshot was taken but before it was recorded live: it never
        # went live, so nothing may come back to it.
        self._drop_snapshot(unfinished.number)
        detail = f"{unfinished.name} was interrupted; undone by {who}: {verdict.detail}"
        self.store.finish(self.target.name, unfinished.number, ROLLED_BACK, detail)
        logger.warning("%s: %s", self.target.name, detail)
        return detail

    def _recover_rollback(self, who: str) -> str | None:
        where = self.home / ROLLBACK
        journal = Journal.read(where)
        if journal is None:
            return None
        live = self.store.live(self.target.name)
        if (live.number if live else 0) == journal.release:
            # Killed after the store recorded the goal live: the rollback had finished.
            shutil.rmtree(where, ignore_errors=True)
            logger.info("%s: a finished rollback's journal removed", self.target.name)
            return None
        verdict = self._undo(where, journal)
        shutil.rmtree(where, ignore_errors=True)
        detail = f"a rollback to r{journal.release} was interrupted; undone by {who}: "
        logger.warning("%s: %s%s", self.target.name, detail, verdict.detail)
        return detail + verdict.detail

    def rollback(self, action: Action, to: int | None = None) -> Outcome:
        with deploy_lock(self._lock_file(), self.target.name):
            # An undone rollback is not one: production is back where it was, so go on.
            self._recover_rollback(action.who)
            # An undone deploy is the rollback asked for, unless a release was named.
            undone = self._recover_deploy(action.who)
            outcome = _recovered(undone) if undone and to is None else self._roll_back(to)
            self._prune()
        action.record(_ROLLBACK_OUTCOMES[outcome.code], outcome.report())
        return outcome

    def _roll_back(self, to: int | None) -> Outcome:
        releases = self.store.releases(self.target.name, limit=1000)
        current = next((r for r in releases if r.state == LIVE), None)
        if to is not None:
            goal = to
        elif current is not None:
            goal = previous_release(releases, current)
        else:
            return Outcome(REFUSED, "no live release to roll back")
        snapshot = Snapshot.read(self.home, goal)
        if snapshot is None and current and self._journaled_back(current, releases) == goal:
            return self._undo_live(current, goal)
        why = self._unrestorable(goal, snapshot, releases, current)
        if why is not None or snapshot is None:
            return Outcome(REFUSED, why or f"r{goal} cannot be restored")
        return self._restore(snapshot, releases, current)

    def _journaled_back(self, current: Release, releases: list[Release]) -> int | None:
        """The release before the live one when only the live release's own journal leads
        back to it (releases deployed before snapshots existed have a journal, no snapshot)."""
        before = previous_release(releases, current)
        if Snapshot.read(self.home, before) is not None:
            return None
        return before if Journal.read(self.home / current.name) is not None else None

    def _undo_live(self, current: Release, goal: int) -> Outcome:
        """Back to ``goal`` through the live release's journal (what ran just before it)."""
        where = self.home / current.name
        journal = Journal.read(where) or Journal(current.number)
        verdict = self._undo(where, journal, self.target.settings.deploy.smoke)
        self.store.went_back(self.target.name, goal, current.number, verdict.detail)
        discard(where)
        name = f"r{goal}"
        if verdict.healthy:
            return Outcome(
                DEPLOYED, f"back on {name} (from {current.name}'s journal): {verdict.detail}", name
            )
        why = self.redact(verdict.detail)
        detail = f"production runs {name}'s files again but is not healthy: {why}"
        return Outcome(FAILED, detail, name, why=why, output=self.redact(verdict.output))

    def _unrestorable(
        self,
        goal: int,
        snapshot: Snapshot | None,
        releases: list[Release],
        current: Release | None,
    ) -> str | None:
        """Why production cannot go back to release ``goal`` exactly, or None."""
        if goal == (current.number if current else 0):
            return f"r{goal} is what production runs now"
        if goal and all(r.number != goal for r in releases):
            return f"there is no release r{goal}"
        if snapshot is None:
            return self._not_kept(goal)
        return self._missing_image(snapshot)

    def _not_kept(self, goal: int) -> str:
        held = numbers(self.home)
        if held and min(held) < goal:
            return f"r{goal} never went live (its deploy was rolled back): nothing of it to restore"
        shown = ", ".join(f"r{n}" for n in sorted(held)) or "none"
        keep = self.target.settings.deploy.keep
        return (
            f"r{goal}'s files and images are no longer kept (deploy.keep is {keep}; kept: {shown})"
        )

    def _missing_image(self, snapshot: Snapshot) -> str | None:
        tag = self._release_tag(snapshot.number)
        for reference, image_id in sorted(snapshot.images.items()):
            if self.scoped.image_id(f"{_repository(reference)}:{tag}") != image_id:
                return f"the image {reference} of {snapshot.name} ({image_id[:19]}) is gone"
        for reference, image_id in sorted(snapshot.pulled.items()):
            if self.scoped.image_id(reference) != image_id:
                return (
                    f"{reference} no longer names the image {snapshot.name} ran"
                    f" ({image_id[:19]}); pulled images are not tagged by sidekick"
                )
        return None

    def _restore(
        self, snapshot: Snapshot, releases: list[Release], current: Release | None
    ) -> Outcome:
        """Production's files and images as ``snapshot`` holds them, behind the health gate
        and the smoke checks; journaled first, so a failure goes back to what ran before."""
        where = self.home / ROLLBACK
        shutil.rmtree(where, ignore_errors=True)
        plan = restore_plan(snapshot, self.production, managed(self.home))
        journal = back_up(where, self.production, plan, snapshot.number)
        journal.images = self._current_images()
        journal.write(where)
        try:
            apply_snapshot(self.home, snapshot, self.production, plan)
            for reference, image_id in snapshot.images.items():
                self.scoped.tag(image_id, _repository(reference), _tag(reference))
            verdict = self._start(build=False)
        except (ComposeFailed, ContainerError, OSError) as exc:
            verdict = Verdict(False, str(exc))
        if verdict.healthy:
            snapshot.live_at = self.clock()
            snapshot.write(self.home)
            self._went_back(snapshot, current, verdict.detail)
            outcome = Outcome(DEPLOYED, f"back on {snapshot.name}: {verdict.detail}", snapshot.name)
        else:
            outcome = self._undo_rollback(where, journal, snapshot, current, verdict)
        shutil.rmtree(where, ignore_errors=True)
        return outcome

    def _went_back(self, snapshot: Snapshot, current: Release | None, detail: str) -> None:
        """The releases gone back over are rolled back (a later rollback skips them), in one
        transaction with the goal going live: recovery tells a finished rollback by it."""
        newest = current.number if current else 0
        self.store.went_back(self.target.name, snapshot.number, newest, detail)

    def _undo_rollback(
        self,
        where: Path,
        journal: Journal,
        snapshot: Snapshot,
        current: Release | None,
        verdict: Verdict,
    ) -> Outcome:
        back = self._undo(where, journal)
        name = current.name if current else "the release before it"
        state = "runs" if back.healthy else "was restored to, but is not healthy on,"
        why = self.redact(verdict.detail)
        detail = f"rollback to {snapshot.name} failed: {why}; production {state} {name} again"
        output = self.redact(verdict.output)
        return Outcome(FAILED, detail, snapshot.name, why=why, back_on=name, output=output)

    def _prune(self) -> None:
        """Past ``keep`` snapshots (the live release, the one a rollback goes back to, then
        the most recently live), a release loses its snapshot and release tags; a finished
        release its journal and before-tags (only an unfinished one needs them)."""
        releases = self.store.releases(self.target.name, limit=1000)
        current = next((r for r in releases if r.state == LIVE), None)
        protected = {current.number, previous_release(releases, current)} if current else {0}
        keep = self.target.settings.deploy.keep
        for number in surplus(kept(self.home), protected, keep):
            self._drop_snapshot(number)
        # The live release's journal stays while it is the only way back (no snapshot of
        # the release before it: deployed before snapshots existed).
        journaled = current and self._journaled_back(current, releases) is not None
        way_back = current if journaled else None
        for release in releases:
            where = self.home / release.name
            if release.state != DEPLOYING and release != way_back and discard(where):
                self._untag(release.images, self._before_tag(release.number))
                remove_if_empty(where)
        collect(self.home)

    def _drop_snapshot(self, number: int) -> None:
        snapshot = Snapshot.read(self.home, number)
        if snapshot is not None:
            self._untag(snapshot.images, self._release_tag(number))
            drop(self.home, number)

    def _untag(self, images: Mapping[str, str], tag: str) -> None:
        for reference in images:
            self.scoped.untag(f"{_repository(reference)}:{tag}")


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
