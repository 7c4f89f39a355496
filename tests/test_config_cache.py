"""sidekick.config_cache: a look is served what a full load would give it now, or a full load.

Each test writes an entry with one look, changes one thing the entry was made from, and
checks that the next look sees the change. Whether a look was served from the entry is
seen by making the full load fail: a served look does not call it."""

from __future__ import annotations

import os
import pickle
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

import sidekick
import sidekick.config
from sidekick import config_cache
from sidekick.config_cache import cache_dir, load_view
from sidekick.errors import ConfigError
from sidekick.models import slugify
from sidekick.production.settings import ProductionConfig, compose_project
from sidekick.production.target import targets
from sidekick.production.view import ProductionView

COMPOSE = "services:\n  web:\n    image: x\n  worker:\n    image: y\n"


class FullLoad(Exception):
    """Raised instead of loading config.yaml: the look was not served from its entry."""


@pytest.fixture
def cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The cache directory, outside the test's tmp_path: making it must not change a
    directory the entries follow."""
    base = tmp_path_factory.mktemp("xdg")
    monkeypatch.setenv("XDG_CACHE_HOME", str(base))
    for name in [n for n in os.environ if n.startswith("SIDEKICK_")]:
        monkeypatch.delenv(name)
    return base / "sidekick"


@pytest.fixture
def world(tmp_path: Path, cache: Path) -> Path:
    return _world(tmp_path, "compose.yaml")


def _world(root: Path, compose_name: str) -> Path:
    """A workspace, a production directory with its compose file, and their config."""
    (root / "work" / "shop").mkdir(parents=True)
    (root / "prod" / "shop").mkdir(parents=True)
    (root / "prod" / "shop" / compose_name).write_text(COMPOSE)
    config = root / "config.yaml"
    config.write_text(_config(root, "primary: web"))
    _settle(root)
    return config


def _settle(root: Path) -> None:
    """Everything under root as if made a minute ago: an entry is not written while a
    compose file it reads, or a directory holding a path it follows, changed in the last
    seconds."""
    for path in [root, *root.rglob("*")]:
        ago = path.lstat().st_mtime - 60
        os.utime(path, (ago, ago), follow_symlinks=False)


def _config(root: Path, extra: str) -> str:
    return (
        f"daemon:\n  state_dir: {root / 'state'}\n"
        f"projects:\n  Shop:\n    directory: {root / 'work' / 'shop'}\n    production:\n"
        f"      path: {root / 'prod' / 'shop'}\n      {extra}\n"
    )


def _served(config: Path) -> ProductionView | None:
    """The view if the entry served it, None if a full load was needed."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sidekick.config, "load_config", _refuse)
        try:
            return load_view(ProductionView, config)
        except FullLoad:
            return None


def _refuse(*_args: object, **_kwargs: object) -> None:
    raise FullLoad


def test_a_second_look_is_served_the_first_ones_view(world: Path, cache: Path) -> None:
    first = load_view(ProductionView, world)
    assert first.production["Shop"].primary == "web"
    assert [p.name for p in cache.iterdir()] == [next(cache.iterdir()).name]
    served = _served(world)
    assert served == first


def test_the_entry_is_the_users_own_and_nobody_elses_to_write(world: Path, cache: Path) -> None:
    load_view(ProductionView, world)
    (entry,) = cache.iterdir()
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    entry.chmod(0o666)
    assert _served(world) is None


def test_an_edit_of_the_config_file_is_seen(world: Path, tmp_path: Path) -> None:
    load_view(ProductionView, world)
    world.write_text(_config(tmp_path, "primary: worker"))
    assert _served(world) is None
    assert load_view(ProductionView, world).production["Shop"].primary == "worker"
    assert _served(world) is not None


def test_an_override_in_the_environment_is_seen(
    world: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    load_view(ProductionView, world)
    monkeypatch.setenv("SIDEKICK_DAEMON__STATE_DIR", str(tmp_path / "elsewhere"))
    assert _served(world) is None
    assert load_view(ProductionView, world).state_dir == tmp_path / "elsewhere"


def test_a_changed_compose_file_is_read_again(world: Path, tmp_path: Path) -> None:
    load_view(ProductionView, world)
    compose = tmp_path / "prod" / "shop" / "compose.yaml"
    compose.write_text("name: renamed\n" + COMPOSE + "  cron:\n    image: z\n")
    assert _served(world) is None
    (chosen,) = targets(load_view(ProductionView, world), "Shop")
    assert chosen.compose is not None
    assert chosen.compose.name == "renamed"
    assert chosen.compose.services == ("web", "worker", "cron")


def test_a_compose_file_no_longer_naming_a_configured_service_is_refused_again(
    world: Path, tmp_path: Path
) -> None:
    load_view(ProductionView, world)
    (tmp_path / "prod" / "shop" / "compose.yaml").write_text("services:\n  api:\n    image: x\n")
    with pytest.raises(ConfigError, match="unknown service 'web'"):
        load_view(ProductionView, world)


def test_a_compose_file_changed_seconds_ago_is_not_kept(world: Path, tmp_path: Path) -> None:
    """A second change in the same tick of the file system's clock, of the same size, would
    keep the inode, size and time of the first: such a read is not trusted (racily clean)."""
    compose = tmp_path / "prod" / "shop" / "compose.yaml"
    compose.write_text(COMPOSE.replace("web", "api"))
    world.write_text(_config(tmp_path, "primary: api"))
    assert load_view(ProductionView, world).production["Shop"].primary == "api"
    assert _served(world) is None
    ago = compose.stat().st_mtime - 60
    os.utime(compose, (ago, ago))
    load_view(ProductionView, world)
    assert _served(world) is not None


def test_a_served_look_parses_no_compose_file(world: Path, tmp_path: Path) -> None:
    """The compose file's reads come with the entry (its name and services, while the file
    stays the same file), in a process that has read nothing yet."""
    load_view(ProductionView, world)
    script = (
        "import sys\n"
        "from sidekick.config_cache import load_view\n"
        "from sidekick.production.target import targets\n"
        "from sidekick.production.view import ProductionView\n"
        f"(t,) = targets(load_view(ProductionView, {str(world)!r}), 'Shop')\n"
        "print(t.compose.services, 'yaml' in sys.modules, 'sidekick.config' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert done.stdout.split("\n")[0] == "('web', 'worker') False False"


def test_a_served_logs_look_defines_no_dataclass(world: Path) -> None:
    """What ``prod logs`` loads up to its first engine call, its configuration served, defines
    no dataclass: importing ``dataclasses`` (with the ``inspect`` it loads) and defining the
    classes would cost a ``prod logs`` about a tenth (see sidekick.errors)."""
    load_view(ProductionView, world)
    script = (
        "import sys\n"
        "from sidekick.cli import _arguments, _parser\n"
        "from sidekick.production import commands, logs\n"
        f"argv = ['prod', 'logs', 'Shop', 'web', '--tail', '5', '--config', {str(world)!r}]\n"
        "args = _arguments(_parser(argv), argv)\n"
        "(t,) = commands.targets(commands._view(args), 'Shop')\n"
        "print(commands._log_query(args, t).services, 'dataclasses' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert done.stdout.split("\n")[0] == "('web',) False"


def test_a_removed_directory_is_a_full_load_that_says_so(world: Path, tmp_path: Path) -> None:
    load_view(ProductionView, world)
    (tmp_path / "prod" / "shop" / "compose.yaml").unlink()
    (tmp_path / "prod" / "shop").rmdir()
    with pytest.raises(ConfigError, match="directory does not exist"):
        load_view(ProductionView, world)


def test_a_file_the_checks_need_that_is_gone_is_seen(world: Path, tmp_path: Path) -> None:
    key = tmp_path / "api-key"
    key.write_text("secret\n")
    world.write_text(world.read_text() + f"api:\n  key_file: {key}\n")
    _settle(tmp_path)
    load_view(ProductionView, world)
    assert _served(world) is not None
    key.unlink()
    with pytest.raises(ConfigError, match=r"api\.key_file"):
        load_view(ProductionView, world)


def test_a_workspace_under_projects_root_is_chosen_again_when_another_appears(
    tmp_path: Path, cache: Path
) -> None:
    root = tmp_path / "root"
    (root / "my-shop").mkdir(parents=True)
    production = tmp_path / "prod"
    production.mkdir()
    (production / "compose.yaml").write_text(COMPOSE)
    config = tmp_path / "config.yaml"
    config.write_text(
        f"projects_root: {root}\nprojects:\n  My_Shop:\n    production:\n      path: {production}\n"
    )
    _settle(tmp_path)
    before = load_view(ProductionView, config).project_directory("My_Shop")
    assert before == root / "my-shop"
    assert _served(config) is not None
    (root / slugify("My_Shop")).mkdir()
    assert _served(config) is None
    chosen = load_view(ProductionView, config).project_directory("My_Shop")
    assert chosen == root / slugify("My_Shop")


def test_a_config_that_does_not_load_is_not_kept(world: Path, cache: Path) -> None:
    world.write_text(world.read_text() + "capacity:\n  max_agents: -1\n")
    for _ in range(2):
        with pytest.raises(ConfigError, match=r"capacity\.max_agents"):
            load_view(ProductionView, world)
    assert not cache.exists() or not list(cache.iterdir())


def test_a_damaged_entry_is_loaded_again_and_replaced(world: Path, cache: Path) -> None:
    load_view(ProductionView, world)
    (entry,) = cache.iterdir()
    entry.write_bytes(b"\x80\x05not a pickle")
    assert _served(world) is None
    load_view(ProductionView, world)
    assert _served(world) is not None


def test_a_cache_directory_that_cannot_be_written_costs_only_the_full_load(
    world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    assert load_view(ProductionView, world).production["Shop"].primary == "web"
    assert _served(world) is None


def test_the_cache_keeps_a_bounded_number_of_entries(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config_cache, "KEEP", 3)
    for n in range(5):
        (tmp_path / f"config-{n}.yaml").write_text(f"daemon:\n  state_dir: {tmp_path / 'state'}\n")
    _settle(tmp_path)
    for n in range(5):
        load_view(ProductionView, tmp_path / f"config-{n}.yaml")
    assert len(list(cache.iterdir())) == 3


def test_no_config_file_means_defaults_and_no_entry(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_view(ProductionView).production == {}
    assert not cache.exists()


def test_the_cache_directory_follows_xdg(tmp_path: Path) -> None:
    assert cache_dir({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "sidekick"
    assert cache_dir({"HOME": "/home/someone"}) == Path("/home/someone/.cache/sidekick")


def test_compose_project_still_reads_an_unkept_file(tmp_path: Path) -> None:
    """The module-level reads serve only files that stayed the same."""
    (tmp_path / "compose.yaml").write_text(COMPOSE)
    settings = ProductionConfig(path=tmp_path)
    first = compose_project(settings)
    (tmp_path / "compose.yaml").write_text("services:\n  other:\n    image: x\n")
    second = compose_project(settings)
    assert first is not None and second is not None
    assert (first.services, second.services) == (("web", "worker"), ("other",))


def test_a_compose_file_compose_would_now_prefer_is_a_full_load(
    tmp_path: Path, cache: Path
) -> None:
    """Compose reads compose.yaml before docker-compose.yml: one that appears is seen."""
    config = _world(tmp_path, "docker-compose.yml")
    load_view(ProductionView, config)
    assert _served(config) is not None
    (tmp_path / "prod" / "shop" / "compose.yaml").write_text("services:\n  api:\n    image: x\n")
    with pytest.raises(ConfigError, match="unknown service 'web'"):
        load_view(ProductionView, config)


def test_a_workspace_link_that_now_leads_around_production_is_a_full_load(
    tmp_path: Path, cache: Path
) -> None:
    (tmp_path / "real-workspace").mkdir()
    production = tmp_path / "srv" / "prod" / "shop"
    production.mkdir(parents=True)
    (production / "compose.yaml").write_text(COMPOSE)
    link = tmp_path / "ws"
    link.symlink_to(tmp_path / "real-workspace")
    config = tmp_path / "config.yaml"
    config.write_text(
        f"projects:\n  Shop:\n    directory: {link}\n    production:\n      path: {production}\n"
    )
    _settle(tmp_path)
    load_view(ProductionView, config)
    assert _served(config) is not None
    link.unlink()
    link.symlink_to(tmp_path / "srv")
    with pytest.raises(ConfigError, match="inside the project's workspace"):
        load_view(ProductionView, config)


def test_another_installation_is_not_served_this_ones_entry(
    world: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_view(ProductionView, world)
    monkeypatch.setattr(sidekick, "__version__", "99.0")
    assert _served(world) is None


def test_a_linked_entry_is_never_unpickled(world: Path, cache: Path, tmp_path: Path) -> None:
    """Whoever may write the cache directory must not choose what a look unpickles: an
    entry that is a link to a file of this user's (one in a cloned repository, say) is
    not opened, so the code its pickle names never runs."""
    load_view(ProductionView, world)
    (entry,) = cache.iterdir()
    marker = tmp_path / "ran"
    payload = tmp_path / "innocent.bin"
    payload.write_bytes(pickle.dumps(_Opens(str(marker))))
    entry.unlink()
    entry.symlink_to(payload)
    assert _served(world) is None
    assert not marker.exists()


class _Opens:
    """Unpickled, it opens (creates) a file: a stand-in for any code a pickle may run."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return open, (self.path, "w")


def test_a_cache_directory_others_may_write_is_not_used(world: Path, cache: Path) -> None:
    load_view(ProductionView, world)
    cache.chmod(0o777)
    assert _served(world) is None
    cache.chmod(0o700)
    assert _served(world) is not None


def test_an_entry_with_another_link_or_no_file_at_all_is_not_used(
    world: Path, cache: Path, tmp_path: Path
) -> None:
    load_view(ProductionView, world)
    (entry,) = cache.iterdir()
    os.link(entry, tmp_path / "second-link")
    assert _served(world) is None
    (tmp_path / "second-link").unlink()
    assert _served(world) is not None
    entry.unlink()
    os.mkfifo(entry)  # opened without waiting for a writer, then refused
    assert _served(world) is None


@pytest.mark.parametrize("damage", [b"\x80\x09", b"\x80\x05\x95", b"\x80\x04K\x01.", b""], ids=repr)
def test_any_damage_to_an_entry_is_a_full_load(world: Path, cache: Path, damage: bytes) -> None:
    load_view(ProductionView, world)
    (entry,) = cache.iterdir()
    entry.write_bytes(damage)
    assert _served(world) is None
    assert load_view(ProductionView, world).production["Shop"].primary == "web"


def test_a_relative_xdg_cache_home_is_ignored_and_a_relative_home_keeps_nothing() -> None:
    home = {"XDG_CACHE_HOME": "relative/cache", "HOME": "/home/someone"}
    assert cache_dir(home) == Path("/home/someone/.cache/sidekick")
    assert cache_dir({"XDG_CACHE_HOME": "relative/cache", "HOME": "relative-home"}) is None


def test_every_projects_compose_file_is_followed_however_many(tmp_path: Path, cache: Path) -> None:
    """More projects than the compose reads an in-process cache holds (64)."""
    lines = [f"daemon:\n  state_dir: {tmp_path / 'state'}\nprojects:"]
    for n in range(70):
        production = tmp_path / "prod" / f"p{n}"
        production.mkdir(parents=True)
        (production / "compose.yaml").write_text(COMPOSE)
        lines.append(f"  P{n}:\n    production:\n      path: {production}\n      primary: web")
    config = tmp_path / "config.yaml"
    config.write_text("\n".join(lines) + "\n")
    _settle(tmp_path)
    load_view(ProductionView, config)
    assert _served(config) is not None
    (tmp_path / "prod" / "p1" / "compose.yaml").write_text("services:\n  api:\n    image: x\n")
    with pytest.raises(ConfigError, match=r"projects\.P1\.production\.primary"):
        load_view(ProductionView, config)


def test_a_loop_of_links_at_a_configured_path_is_a_look_like_any_other(
    world: Path, tmp_path: Path
) -> None:
    """Path.resolve raises RuntimeError for a loop; load_config itself does not mind it."""
    (tmp_path / "a").symlink_to(tmp_path / "loop.csv")
    (tmp_path / "loop.csv").symlink_to(tmp_path / "a")
    world.write_text(world.read_text() + f"priority_source:\n  csv:\n    path: {tmp_path / 'a'}\n")
    _settle(tmp_path)
    assert load_view(ProductionView, world).production["Shop"].primary == "web"
    assert _served(world) is not None


def test_a_config_given_as_a_pipe_is_read_once_by_the_load(tmp_path: Path, cache: Path) -> None:
    """``--config <(...)``: reading it for the cache would leave the load an empty pipe."""
    read, write = os.pipe()
    os.write(write, f"daemon:\n  state_dir: {tmp_path / 'piped'}\n".encode())
    os.close(write)
    try:
        assert load_view(ProductionView, f"/proc/self/fd/{read}").state_dir == tmp_path / "piped"
    finally:
        os.close(read)
    assert not cache.exists()


def test_a_config_written_while_it_was_loaded_is_not_kept(
    world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even written back as it was: the entry would pair those bytes with the other view."""
    real = sidekick.config.load_config
    before = world.read_text()

    def edited_meanwhile(*args: object, **kwargs: object) -> object:
        world.write_text(_config(tmp_path, "primary: worker"))
        try:
            return real(*args, **kwargs)  # type: ignore[arg-type]
        finally:
            world.write_text(before)

    with monkeypatch.context() as patch:
        patch.setattr(sidekick.config, "load_config", edited_meanwhile)
        assert load_view(ProductionView, world).production["Shop"].primary == "worker"
    assert _served(world) is None
    assert load_view(ProductionView, world).production["Shop"].primary == "web"


def test_a_directory_made_while_the_config_was_loaded_is_not_missed(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "root"
    (root / "my-shop").mkdir(parents=True)
    (tmp_path / "prod").mkdir()
    (tmp_path / "prod" / "compose.yaml").write_text(COMPOSE)
    config = tmp_path / "config.yaml"
    config.write_text(
        f"projects_root: {root}\nprojects:\n  My_Shop:\n    production:\n"
        f"      path: {tmp_path / 'prod'}\n"
    )
    _settle(tmp_path)
    real = sidekick.config.load_config

    def made_meanwhile(*args: object, **kwargs: object) -> object:
        loaded = real(*args, **kwargs)  # type: ignore[arg-type]
        (root / slugify("My_Shop")).mkdir()
        return loaded

    with monkeypatch.context() as patch:
        patch.setattr(sidekick.config, "load_config", made_meanwhile)
        load_view(ProductionView, config)
    assert _served(config) is None
    assert load_view(ProductionView, config).project_directory("My_Shop") == root / slugify(
        "My_Shop"
    )


def test_missing_directories_are_made_only_inside_this_users_own(
    tmp_path: Path, world: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Root with another user's HOME (``sudo -E``) must not leave a root-owned ~/.cache
    there: seen here as a user whose id is not the home's owner's."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setattr(os, "geteuid", lambda: os.stat(home).st_uid + 1)
    assert load_view(ProductionView, world).production["Shop"].primary == "web"
    assert not (home / ".cache").exists()


def test_the_entries_last_used_are_kept_and_left_temporary_files_go(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config_cache, "KEEP", 2)
    configs = []
    for name in ("a", "b", "c"):
        configs.append(tmp_path / f"{name}.yaml")
        configs[-1].write_text(f"daemon:\n  state_dir: {tmp_path / name}\n")
    _settle(tmp_path)
    load_view(ProductionView, configs[0])
    load_view(ProductionView, configs[1])
    for age, entry in enumerate(sorted(cache.iterdir(), key=lambda p: p.stat().st_mtime)):
        os.utime(entry, (time.time() - 50 + age, time.time() - 50 + age))
    left = cache / ".config-00000000.pickle.1.abcd.tmp"
    left.write_bytes(b"")
    os.utime(left, (time.time() - 120, time.time() - 120))
    fresh = cache / ".config-00000000.pickle.2.abcd.tmp"
    fresh.write_bytes(b"")
    assert _served(configs[0]) is not None  # a is used again: b is now the least recent
    load_view(ProductionView, configs[2])
    assert _served(configs[0]) is not None
    assert _served(configs[2]) is not None
    assert _served(configs[1]) is None
    assert not left.exists()
    assert fresh.exists()
