from __future__ import annotations

from pathlib import Path

import pytest

from sidekick.config import load_config
from sidekick.errors import ConfigError
from sidekick.production.settings import compose_project

COMPOSE = "services:\n  web:\n    image: x\n  worker:\n    image: y\n"


def _layout(tmp_path: Path) -> tuple[Path, Path]:
    workspace, production = tmp_path / "work" / "shop", tmp_path / "prod" / "Shop_App"
    workspace.mkdir(parents=True)
    production.mkdir(parents=True)
    (production / "compose.yaml").write_text(COMPOSE)
    return workspace, production


def _load(tmp_path: Path, block: str) -> object:
    path = tmp_path / "config.yaml"
    path.write_text(block)
    return load_config(path, environ={})


def _error(tmp_path: Path, block: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, block)
    return caught.value


def test_a_mapping_entry_gives_the_directory_and_the_production_block(tmp_path: Path) -> None:
    workspace, production = _layout(tmp_path)
    config = load_config(
        _write(
            tmp_path,
            f"projects:\n  Shop:\n    directory: {workspace}\n    production:\n"
            f"      path: {production}\n      primary: web\n  Blog: {tmp_path}\n",
        ),
        environ={},
    )
    assert config.projects == {"Shop": workspace, "Blog": tmp_path}
    settings = config.production["Shop"]
    assert settings.path == production and settings.primary == "web"
    assert settings.deploy.keep == 5 and settings.deploy.require_clean
    assert settings.deploy.auto == "off" and not settings.deploy.delete


def test_the_plain_string_form_keeps_working(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, f"projects:\n  Blog: {tmp_path}\n"), environ={})
    assert config.projects == {"Blog": tmp_path} and config.production == {}


def test_a_production_path_inside_the_workspace_is_an_error_naming_the_key(
    tmp_path: Path,
) -> None:
    workspace, _ = _layout(tmp_path)
    inside = workspace / "deploy"
    inside.mkdir()
    (inside / "compose.yaml").write_text(COMPOSE)
    error = _error(tmp_path, _entry(workspace, f"path: {inside}"))
    assert error.key == "projects.Shop.production.path" and "inside" in error.problem
    assert error.file == str(tmp_path / "config.yaml")


def test_a_workspace_inside_the_production_path_is_an_error(tmp_path: Path) -> None:
    workspace, production = _layout(tmp_path)
    error = _error(tmp_path, _entry(workspace, f"path: {workspace.parent}"))
    assert error.key == "projects.Shop.production.path"
    assert production.exists()


def test_a_missing_compose_file_is_an_error_naming_the_key(tmp_path: Path) -> None:
    workspace, production = _layout(tmp_path)
    (production / "compose.yaml").unlink()
    error = _error(tmp_path, _entry(workspace, f"path: {production}"))
    assert error.key == "projects.Shop.production.path"
    assert "no compose file" in error.problem


def test_an_unknown_service_is_an_error_naming_the_key_and_the_compose_file(
    tmp_path: Path,
) -> None:
    workspace, production = _layout(tmp_path)
    error = _error(tmp_path, _entry(workspace, f"path: {production}\n      services: [web, db]"))
    assert error.key == "projects.Shop.production.services[1]"
    assert "'db'" in error.problem and str(production / "compose.yaml") in error.problem
    error = _error(tmp_path, _entry(workspace, f"path: {production}\n      primary: api"))
    assert error.key == "projects.Shop.production.primary"


def test_an_unknown_key_in_an_entry_or_block_is_named(tmp_path: Path) -> None:
    workspace, production = _layout(tmp_path)
    error = _error(tmp_path, f"projects:\n  Shop:\n    dir: {workspace}\n")
    assert error.key == "projects.Shop.dir"
    error = _error(tmp_path, _entry(workspace, f"path: {production}\n      primry: web"))
    assert error.key == "projects.Shop.production.primry"


def test_auto_deploy_needs_a_gate_and_a_known_mode(tmp_path: Path) -> None:
    workspace, production = _layout(tmp_path)
    base = f"path: {production}\n      deploy:\n        auto: "
    assert _error(tmp_path, _entry(workspace, base + "always")).key.endswith("deploy.auto")
    assert _error(tmp_path, _entry(workspace, base + "on_complete")).key.endswith("deploy.gate")


def test_a_smoke_check_is_a_url_or_a_command_in_a_known_service(tmp_path: Path) -> None:
    workspace, production = _layout(tmp_path)
    smoke = f"path: {production}\n      deploy:\n        smoke:\n          - "
    error = _error(tmp_path, _entry(workspace, smoke + "{service: db, command: [echo, ok]}"))
    assert error.key == "projects.Shop.production.deploy.smoke[0].service"
    error = _error(tmp_path, _entry(workspace, smoke + "{service: web}"))
    assert error.key == "projects.Shop.production.deploy.smoke[0]"


def test_compose_default_name_follows_compose_rules(tmp_path: Path) -> None:
    workspace, production = _layout(tmp_path)
    config = load_config(_write(tmp_path, _entry(workspace, f"path: {production}")), environ={})
    project = compose_project(config.production["Shop"])
    assert project is not None and project.name == "shop_app"
    assert project.services == ("web", "worker")
    (production / "compose.yaml").write_text("name: Store-1\n" + COMPOSE)
    project = compose_project(config.production["Shop"])
    assert project is not None and project.name == "store-1"


def _entry(workspace: Path, production: str) -> str:
    return f"projects:\n  Shop:\n    directory: {workspace}\n    production:\n      {production}\n"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_keep_below_2_is_an_error_since_it_leaves_no_release_to_roll_back_to(
    tmp_path: Path,
) -> None:
    workspace, production = _layout(tmp_path)
    for keep in (1, 0):
        block = f"path: {production}\n      deploy:\n        keep: {keep}"
        error = _error(tmp_path, _entry(workspace, block))
        assert error.key == "projects.Shop.production.deploy.keep"
        assert "at least 2" in error.problem


def test_an_environment_override_reaches_a_project_spelled_in_any_case(tmp_path: Path) -> None:
    """Variable names are in capitals; a project's name in config.yaml need not be."""
    workspace, production = _layout(tmp_path)
    path = _write(
        tmp_path,
        f"projects:\n  Shop:\n    directory: {workspace}\n    production:\n"
        f"      path: {production}\n      primary: web\n",
    )
    env = {"SIDEKICK_PROJECTS__SHOP__PRODUCTION__PRIMARY": "worker"}
    config = load_config(path, environ=env)
    assert list(config.production) == ["Shop"]
    assert config.production["Shop"].primary == "worker"
    assert config.production["Shop"].path == production
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={"SIDEKICK_PROJECTS__SHOP__PRODUCTION__PRIMARY": "nope"})
    assert caught.value.file == "environment variable SIDEKICK_PROJECTS__SHOP__PRODUCTION__PRIMARY"
    assert caught.value.key == "projects.Shop.production.primary"


def test_an_override_that_could_mean_two_projects_says_so(tmp_path: Path) -> None:
    path = _write(tmp_path, f"projects:\n  Shop: {tmp_path}\n  SHOP: {tmp_path}\n")
    with pytest.raises(ConfigError, match="names several keys: SHOP, Shop"):
        load_config(path, environ={"SIDEKICK_PROJECTS__SHOP": str(tmp_path)})
