"""Release tags carry the Compose project, and images a project pulls are never retagged."""

from __future__ import annotations

import contextlib

import docker
import docker.errors

from tests.containers.helpers import BASE_IMAGE
from tests.production.fixture import ProdApp


def _tags(client: docker.DockerClient, reference: str) -> list[str]:
    return sorted(client.images.get(reference).tags)


def _add_pulled_service(app: ProdApp, image: str) -> None:
    """A service that runs an image the project does not build, as redis:7 would be."""
    compose = app.workspace / "compose.yaml"
    compose.write_text(
        compose.read_text()
        + f"  cache:\n    image: {image}\n    command: [sleep, infinity]\n"
        + "    stop_grace_period: 1s\n"
    )
    app.commit("a pulled service")


def _deploy(app: ProdApp, version: str) -> None:
    (app.workspace / "VERSION").write_text(f"{version}\n")
    app.commit(f"version {version}")
    result = app.sidekick("deploy", app.name, "--yes")
    assert result.returncode == 0, result.stderr


def test_a_pulled_image_is_never_retagged_and_a_moved_reference_refuses_the_rollback(
    prod_app: ProdApp,
) -> None:
    client = docker.from_env()
    # A repository of this test's own standing in for a registry image: the shared base
    # image is not this test's to retag.
    pulled = f"{prod_app.compose_project}-pulled:7"
    base = client.images.get(BASE_IMAGE)
    base.tag(pulled)
    try:
        _add_pulled_service(prod_app, pulled)
        _deploy(prod_app, "2")
        _deploy(prod_app, "3")
        before = _tags(client, pulled)
        result = prod_app.sidekick("rollback", prod_app.name, "--yes")
        assert result.returncode == 0, result.stderr
        assert prod_app.version() == "2"
        # Neither the release tags nor the rollback touched the pulled image's tags.
        assert _tags(client, pulled) == before
        assert not [t for t in before if ":sidekick-" in t]
        # The built image's release tags name the Compose project.
        web = client.images.get(f"{prod_app.compose_project}-web:latest")
        assert f"{prod_app.compose_project}-web:sidekick-{prod_app.compose_project}-r1" in web.tags
        # A newer pull moves the reference: r2 can no longer be restored exactly.
        web.tag(pulled)
        refused = prod_app.sidekick("rollback", prod_app.name, "r2", "--yes")
        assert refused.returncode == 2
        assert f"{pulled} no longer names the image r2 ran" in refused.stderr
        assert prod_app.version() == "2"
    finally:
        with contextlib.suppress(docker.errors.APIError):
            client.images.remove(pulled, noprune=True)
        client.close()
