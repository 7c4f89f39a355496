"""The handlers of the ``sidekick prod`` commands that change production: restart, deploy,
rollback (see :mod:`sidekick.production.cli`)."""

from __future__ import annotations

import argparse
import json
import sys
from functools import partial

from sidekick.config import Config
from sidekick.containers.engine import ContainerEngine
from sidekick.production.audit import Action
from sidekick.production.commands import Handler, _config, _db, _print_json
from sidekick.production.confirm import confirmed
from sidekick.production.deploy import DEPLOYED, REFUSED, Deployer, DeployPlan, Outcome
from sidekick.production.errors import DeployLocked, ProductionError
from sidekick.production.restart import NO_TERMINAL, restart
from sidekick.production.row_note import note_on_row
from sidekick.production.store import ProductionStore
from sidekick.production.target import Target, targets
from sidekick.state import StateStore

# --- restart ----------------------------------------------------------------------------


def cmd_restart(args: argparse.Namespace) -> int:
    config = _config(args)
    (chosen,) = targets(config, args.project)
    engine = ContainerEngine(config.containers)
    try:
        with ProductionStore(_db(config.daemon.state_dir)) as store:
            action = Action(store, chosen.name, "restart")
            ask = partial(confirmed, yes=args.yes)
            outcome = restart(chosen, chosen.engine(engine), action, tuple(args.services), ask)
    finally:
        engine.close()
    if args.json:
        _print_json(
            {"exit": outcome.code, "detail": outcome.detail, "containers": outcome.containers}
        )
    else:
        print(
            f"{chosen.name}: {outcome.detail}", file=sys.stdout if outcome.code == 0 else sys.stderr
        )
    return outcome.code


# --- deploy, rollback, history ------------------------------------------------------------


def cmd_deploy(args: argparse.Namespace) -> int:
    config = _config(args)
    (chosen,) = targets(config, args.project)
    engine = ContainerEngine(config.containers)
    try:
        with ProductionStore(_db(config.daemon.state_dir)) as store:
            return _deploy(
                args, config, chosen, Deployer(chosen, engine, store, config.daemon.state_dir)
            )
    finally:
        engine.close()


def _deploy(args: argparse.Namespace, config: Config, chosen: Target, deployer: Deployer) -> int:
    action = Action(deployer.store, chosen.name, "deploy --dry-run" if args.dry_run else "deploy")
    why = deployer.refusal(_agent_running(config, chosen.name))
    if why is not None and not args.dry_run:
        return _refuse(action, why)
    try:
        # A dry run changes nothing, an interrupted deploy's files included.
        deployer.ensure_free(None if args.dry_run else action.who)
    except DeployLocked as exc:
        return _refuse(action, exc.problem)
    plan = deployer.plan()
    action.plan = json.dumps(plan.to_dict())
    if not args.json:
        print(f"{chosen.name}: deploy plan", *plan.lines(), sep="\n")
    if args.dry_run:
        return _dry_run(args, action, plan, why)
    return _confirm_and_deploy(args, config, deployer, action, plan)


def _confirm_and_deploy(
    args: argparse.Namespace,
    config: Config,
    deployer: Deployer,
    action: Action,
    plan: DeployPlan,
) -> int:
    chosen = deployer.target
    if plan.files.empty:
        action.record("nothing to deploy")
        _say(args, Outcome(DEPLOYED, "nothing to deploy", plan=plan))
        return DEPLOYED
    answer = confirmed(f"Deploy {plan.files.count} file change(s) to {chosen.name}?", yes=args.yes)
    if not answer:
        return _refuse(
            action, NO_TERMINAL.replace("restart", "deploy") if answer is None else "not confirmed"
        )
    try:
        outcome = deployer.deploy(plan, action)
    except DeployLocked as exc:
        return _refuse(action, exc.problem)
    if outcome.code == DEPLOYED:
        _note(config, chosen.name, f"deployed {outcome.release}")
    _say(args, outcome)
    return outcome.code


def _dry_run(args: argparse.Namespace, action: Action, plan: DeployPlan, why: str | None) -> int:
    """The plan, and whether the deploy itself would be refused now (the exit code too)."""
    if why is None:
        action.record("planned")
        _say(
            args,
            Outcome(DEPLOYED, "nothing to deploy" if plan.files.empty else "dry run", plan=plan),
        )
        return DEPLOYED
    detail = f"dry run: the deploy would be refused: {why}"
    action.record("planned, would be refused", why)
    _say(args, Outcome(REFUSED, detail, plan=plan))
    return REFUSED


def _refuse(action: Action, why: str) -> int:
    action.record("refused", why)
    print(f"sidekick: {action.project}: {action.action} refused: {why}", file=sys.stderr)
    return REFUSED


def _say(args: argparse.Namespace, outcome: Outcome) -> None:
    if args.json:
        plan = outcome.plan.to_dict() if outcome.plan else None
        _print_json(
            {
                "exit": outcome.code,
                "detail": outcome.detail,
                "release": outcome.release,
                "plan": plan,
            }
        )
    else:
        print(outcome.detail, file=sys.stdout if outcome.code == DEPLOYED else sys.stderr)


def _note(config: Config, project: str, text: str) -> None:
    """The row says what production runs now, as after a deploy from the dashboard."""
    store = StateStore(_db(config.daemon.state_dir))
    try:
        note_on_row(store, project, text)
    finally:
        store.close()


def _agent_running(config: Config, project: str) -> bool:
    store = StateStore(_db(config.daemon.state_dir))
    try:
        return any(run.project == project for run in store.active_runs().values())
    finally:
        store.close()


def cmd_rollback(args: argparse.Namespace) -> int:
    config = _config(args)
    (chosen,) = targets(config, args.project)
    goal = _release_number(chosen.name, args.release) if args.release else None
    engine = ContainerEngine(config.containers)
    try:
        with ProductionStore(_db(config.daemon.state_dir)) as store:
            deployer = Deployer(chosen, engine, store, config.daemon.state_dir)
            action = Action(store, chosen.name, f"rollback {args.release or ''}".strip())
            answer = confirmed(
                f"Roll {chosen.name} back to {args.release or 'the previous release'}?",
                yes=args.yes,
            )
            if not answer:
                return _refuse(
                    action,
                    NO_TERMINAL.replace("restart", "roll back")
                    if answer is None
                    else "not confirmed",
                )
            try:
                outcome = deployer.rollback(action, goal)
            except DeployLocked as exc:
                return _refuse(action, exc.problem)
    finally:
        engine.close()
    if outcome.code == DEPLOYED:
        _note(config, chosen.name, f"rolled back to {outcome.release}")
    _say(args, outcome)
    return outcome.code


def _release_number(project: str, text: str) -> int:
    number = text.removeprefix("r")
    if not number.isdigit():
        raise ProductionError(project, f"not a release: {text!r} (write r3 or 3)")
    return int(number)


HANDLERS: dict[str, Handler] = {
    "restart": cmd_restart,
    "deploy": cmd_deploy,
    "rollback": cmd_rollback,
}
