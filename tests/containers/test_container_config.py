"""The config keys the container service reads: containers.* and the container profile's."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sidekick.config import load_config
from sidekick.errors import ConfigError
from sidekick.runners.container import API_KEY_FILE_NAME, ContainerRunner


def write(tmp_path: Path, settings: dict[str, object]) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path


def test_container_settings_load_with_paths_resolved_beside_the_file(tmp_path: Path) -> None:
    (tmp_path / "key").write_text("k")
    path = write(
        tmp_path,
        {
            "api": {"key_file": "key"},
            "containers": {
                "managed_names": ["web-prod"],
                "allowed_paths": ["shared"],
                "instance": "laptop",
                "timeout": 5,
            },
            "agents": {
                "default": {
                    "runner": "container",
                    "image": "dev:1",
                    "restart_policy": "unless-stopped",
                    "secrets": {"npm_token": "npm.txt"},
                }
            },
        },
    )
    config = load_config(path, environ={"SIDEKICK_CONTAINERS__DOCKER_HOST": "unix:///x.sock"})
    containers = config.containers
    assert containers.managed_names == ("web-prod",) and containers.instance == "laptop"
    assert containers.allowed_paths == (tmp_path / "shared",) and containers.timeout == 5.0
    assert containers.docker_host == "unix:///x.sock"
    runner = ContainerRunner.from_config(config)
    assert runner.secrets == {
        "npm_token": tmp_path / "npm.txt",
        API_KEY_FILE_NAME: tmp_path / "key",
    }
    assert runner.profile.restart_policy == "unless-stopped"
    assert config.daemon.state_dir / "claude" in runner.engine.settings.allowed_paths


def test_an_unknown_restart_policy_names_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, {"agents": {"default": {"restart_policy": "sometimes"}}})
    with pytest.raises(ConfigError, match=r"agents\.default\.restart_policy"):
        load_config(path, environ={})
