"""The swarm options of an agent profile: read, typed, and refused with the key named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from sidekick.config import AgentProfile, load_config
from sidekick.errors import ConfigError


def _load(tmp_path: Path, profile: dict[str, Any]) -> AgentProfile:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"agents": {"default": profile}}))
    return load_config(path, environ={}).agents["default"]


def test_a_swarm_profile_reads_placement_reservations_and_workspace(tmp_path: Path) -> None:
    profile = _load(
        tmp_path,
        {
            "runner": "swarm",
            "image": "agents:1",
            "constraints": ["node.labels.zone==eu"],
            "reserve_cpus": 1.5,
            "reserve_memory": "2g",
            "gpu_resources": {"NVIDIA-GPU": 1},
            "workspace": "git",
            "git_remote": "ssh://git@example.org/repo.git",
            "shared_paths": ["/srv/projects"],
        },
    )
    assert profile.runner == "swarm"
    assert profile.constraints == ("node.labels.zone==eu",)
    assert (profile.reserve_cpus, profile.reserve_memory) == (1.5, "2g")
    assert profile.gpu_resources == {"NVIDIA-GPU": 1}
    assert (profile.workspace, profile.git_remote) == ("git", "ssh://git@example.org/repo.git")
    assert profile.shared_paths == (Path("/srv/projects"),)


@pytest.mark.parametrize(
    ("profile", "key"),
    [
        ({"runner": "swarm"}, "agents.default.image"),
        ({"runner": "swarm", "image": "a", "workspace": "nfs"}, "agents.default.workspace"),
        ({"runner": "swarm", "image": "a", "reserve_cpus": 0}, "agents.default.reserve_cpus"),
        ({"runner": "swarm", "image": "a", "reserve_memory": "2t"}, "reserve_memory"),
        ({"runner": "kubernetes"}, "agents.default.runner"),
        ({"runner": "swarm", "image": "a", "gpu_resources": {"GPU": "x"}}, "gpu_resources"),
    ],
)
def test_a_bad_swarm_option_is_refused_naming_its_key(
    tmp_path: Path, profile: dict[str, Any], key: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        _load(tmp_path, profile)
    assert key in refused.value.key
