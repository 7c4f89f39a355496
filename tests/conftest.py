from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from tests import docker_leftovers
from tests.containers.helpers import SESSION as CONTAINERS_SESSION
from tests.integration.compose import IMAGE_REPOSITORY
from tests.integration.compose import SESSION as COMPOSE_SESSION
from tests.needs import in_ci

logger = logging.getLogger(__name__)

SESSIONS = docker_leftovers.Sessions(CONTAINERS_SESSION, COMPOSE_SESSION, IMAGE_REPOSITORY)
_DOCKER_REPORT = pytest.StashKey[list[str]]()


@pytest.fixture(scope="session", autouse=True)
def _own_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The production looks keep their configuration in the user's cache directory
    (sidekick.config_cache): the session's, and every sidekick it starts, use one of their
    own, not the person's ~/.cache."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
        yield


@pytest.fixture(autouse=True)
def _debug_logging(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="sidekick")


@pytest.fixture(scope="session", autouse=True)
def _no_docker_leftovers(request: pytest.FixtureRequest) -> Iterator[None]:
    """Whatever the session made on the Docker engine is gone when it ends.

    The tests remove what they make; this runs after every other fixture and
    removes anything they missed (a crashed test, an agent container started
    by a daemon killed mid-run), then, in CI, fails the session for it. What the
    engine held before and after is printed, so the report shows it.
    """
    client = docker_leftovers.engine_or_none()
    if client is None:
        yield
        return
    before = docker_leftovers.inventory(client)
    yield
    after = docker_leftovers.inventory(client)
    leftovers = docker_leftovers.inventory(client, SESSIONS)
    docker_leftovers.remove(client, leftovers)
    remaining = docker_leftovers.inventory(client, SESSIONS)
    client.close()
    _report(request, before, after, leftovers, remaining)
    if leftovers.names() and in_ci():
        pytest.fail(f"the session left Docker objects behind: {leftovers.names()}", pytrace=False)


def _report(
    request: pytest.FixtureRequest,
    before: docker_leftovers.Inventory,
    after: docker_leftovers.Inventory,
    leftovers: docker_leftovers.Inventory,
    remaining: docker_leftovers.Inventory,
) -> None:
    lines = [
        f"docker objects before the session: {before.counts()}",
        f"docker objects after the session: {after.counts()}",
        f"left behind by this session and removed: {leftovers.names() or 'nothing'}",
        f"still there after removal: {remaining.names() or 'nothing'}",
    ]
    for line in lines:
        logger.info("%s", line)
    request.config.stash[_DOCKER_REPORT] = lines


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The Docker inventory, after the tests (their output is captured until then)."""
    lines = terminalreporter.config.stash.get(_DOCKER_REPORT, [])
    if lines:
        terminalreporter.section("docker objects")
        for line in lines:
            terminalreporter.write_line(line)
