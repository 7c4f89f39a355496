"""A container agent's prompt arrives on its stdin, whatever its length or first character."""

from __future__ import annotations

from pathlib import Path

import pytest

from sidekick.config import AgentProfile
from sidekick.containers.engine import ContainerEngine
from sidekick.containers.spec import container_name
from sidekick.runners.base import LaunchSpec, write_private
from sidekick.runners.container import ContainerRunner
from tests.containers.helpers import project_dir
from tests.polling import wait_until

pytestmark = pytest.mark.docker

PROMPTS = {
    "argv-too-long-140000": "- " + "x" * 140_000,
    "shell-syntax": "$(touch pwned) `touch pwned2`; echo 'quoted' \"too\"",
    "none": None,
}


@pytest.mark.parametrize("name", list(PROMPTS))
def test_the_prompt_file_is_the_container_agents_stdin(
    engine: ContainerEngine, base_image: str, slug: str, tmp_path: Path, name: str
) -> None:
    prompt = PROMPTS[name]
    stdin_path = None
    if prompt is not None:
        stdin_path = tmp_path / "state" / "logs" / slug / "run-1.stdin"
        write_private(stdin_path, prompt.encode())
    runner = ContainerRunner(engine, AgentProfile(runner="container", image=base_image))
    spec = LaunchSpec(
        key=container_name(slug),
        project=slug,
        run_id="run-1",
        argv=("sh", "-c", "cat > got.txt"),
        cwd=project_dir(tmp_path),
        log_path=tmp_path / "state" / "logs" / slug / "run-1.log",
        stdin_path=stdin_path,
    )
    runner.start(spec)
    wait_until(lambda: (a := runner.list_agents().get(spec.key)) is not None and a.finished)
    assert runner.list_agents()[spec.key].exit_code == 0
    assert (spec.cwd / "got.txt").read_text() == (prompt or "")
    assert not (spec.cwd / "pwned").exists()
    runner.reap(spec.key)
