"""``sidekick investigate``: wire the runner, the store and the engine, run, print the answer."""

from __future__ import annotations

import sys
from typing import TextIO

from sidekick.config import Config
from sidekick.containers.engine import ContainerEngine
from sidekick.insight.investigate import Investigator, investigation_runner
from sidekick.state import StateStore


def run_investigate(
    config: Config, target: str, question: str, timeout: float, out: TextIO | None = None
) -> int:
    out = out or sys.stdout
    engine = ContainerEngine(config.containers)
    store = StateStore(config.daemon.state_dir / "sidekick.db")
    try:
        runner = investigation_runner(config)
        investigator = Investigator(config, runner, store, engine, timeout=timeout)
        done = investigator.investigate(target, question)
    finally:
        store.close()
        engine.close()
    out.write(f"investigation {done.run_id} of {', '.join(done.containers)}\n\n")
    out.write(done.answer + "\n\n")
    if done.denied_edits:
        out.write(f"edits refused (read-only profile): {'; '.join(done.denied_edits)}\n")
    out.write(f"report: {done.report_path}\n")
    return 0 if done.answer and not done.answer.startswith("no answer") else 1
