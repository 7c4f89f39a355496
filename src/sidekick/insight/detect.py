"""How a project is built, read from its files; every decision names the file that made it.

Python (pyproject with setuptools, hatch, poetry or uv; requirements.txt;
Pipfile; FastAPI, Django, Flask or a plain script), Node (npm, yarn or pnpm
from the lockfile; Express, Next.js or plain), Go, Rust, and static sites.
Only the top of the project is read (and ``src/`` for Python modules), so a
detection takes milliseconds.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sidekick.errors import SidekickError

WEB_PORT = 8000
# Inside a container a server must listen on every interface to be reachable.
ALL_INTERFACES = "0.0.0.0"  # noqa: S104
NODE_PORT = 3000
STATIC_PORT = 8080
STATIC_DIRS = ("public", "site", "dist", "build", "docs", "www")
_REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_PY_APP = re.compile(r"^(\w+)\s*=\s*(FastAPI|Flask)\(", re.MULTILINE)
_LISTEN = re.compile(r"(?:listen\(|PORT\s*(?:\|\||\?\?)\s*|\"[\w.]*:)(\d{2,5})")
# A plain Python server's port in its entry module: ``PORT = 8000``, ``port=8000``,
# ``PORT = int(os.environ.get("PORT", "8000"))``, ``HTTPServer(("", 8000), ...)``.
_PY_PORT = re.compile(
    r"""\bport\s*=\s*(?:int\(\s*)?(?:os\.(?:environ\.get|getenv)\(\s*["']PORT["']\s*,\s*)?["']?(\d{2,5})\b"""
    r"""|["']PORT["']\s*,\s*["']?(\d{2,5})\b"""
    r"""|Server\(\s*\(\s*["'][\w.:]*["']\s*,\s*(\d{2,5})\s*\)""",
    re.IGNORECASE,
)
MAX_PORT = 65535
# Production servers for a WSGI app, the first one declared wins; Flask's and Django's
# own servers are for development only.
WSGI_SERVERS = ("gunicorn", "waitress", "uvicorn")
MONOREPO_MARKERS = (".git", "pnpm-workspace.yaml", "go.work", "lerna.json", "nx.json", "turbo.json")


@dataclass(frozen=True)
class Decision:
    """One thing detection decided, and the file (relative to the project) that said so."""

    topic: str
    value: str
    file: str

    def __str__(self) -> str:
        return f"{self.topic}: {self.value} (from {self.file})"


@dataclass
class BuildPlan:
    directory: Path
    kind: str = ""
    tool: str = ""
    framework: str = ""
    port: int | None = None
    start: tuple[str, ...] = ()
    dependency_files: tuple[str, ...] = ()
    dependencies: tuple[str, ...] = ()
    build_script: bool = False
    static_dir: str = "."
    binary: str = ""
    decisions: list[Decision] = field(default_factory=list)
    # What a person should know before shipping the result (a development server).
    notes: list[Decision] = field(default_factory=list)

    def decide(self, topic: str, value: str, file: str) -> None:
        self.decisions.append(Decision(topic, value, file))

    def warn(self, topic: str, value: str, file: str) -> None:
        self.notes.append(Decision(topic, value, file))

    def to_dict(self) -> dict[str, Any]:
        return {
            "directory": str(self.directory),
            "kind": self.kind,
            "tool": self.tool,
            "framework": self.framework,
            "port": self.port,
            "start": list(self.start),
            "dependency_files": list(self.dependency_files),
            "decisions": [str(d) for d in self.decisions],
            "notes": [str(n) for n in self.notes],
        }


@dataclass(eq=False)
class NotDetected(SidekickError):
    directory: str

    def message(self) -> str:
        return (
            f"{self.directory}: no pyproject.toml, requirements.txt, Pipfile, package.json, "
            "go.mod, Cargo.toml or index.html found, so how it is built is unknown"
        )


def detect_build(directory: Path) -> BuildPlan:
    plan = BuildPlan(directory)
    _note_monorepo(plan)
    for detector in (_python, _node, _go, _rust, _static):
        if detector(plan):
            return plan
    raise NotDetected(str(directory))


def _note_monorepo(plan: BuildPlan) -> None:
    """A project below a repository or workspace root is built from its own directory."""
    here = plan.directory.resolve()
    if any((here / m).exists() for m in MONOREPO_MARKERS):
        return
    for parent in here.parents:
        marker = next((m for m in MONOREPO_MARKERS if (parent / m).exists()), None)
        if marker is not None:
            inside = here.relative_to(parent)
            plan.decide("monorepo", f"{inside} inside {parent.name}/, built on its own", marker)
            return


# --- Python ------------------------------------------------------------------------


def _python(plan: BuildPlan) -> bool:
    root = plan.directory
    pyproject = _toml(root / "pyproject.toml")
    if pyproject is not None:
        _python_pyproject(plan, pyproject)
    elif (root / "requirements.txt").is_file():
        plan.tool = "pip"
        plan.dependency_files = ("requirements.txt",)
        plan.dependencies = _requirements(root / "requirements.txt")
        plan.decide("dependencies", "pip from requirements.txt", "requirements.txt")
    elif (root / "Pipfile").is_file():
        plan.tool = "pipenv"
        plan.dependency_files = _existing(root, "Pipfile", "Pipfile.lock")
        plan.dependencies = tuple((_toml(root / "Pipfile") or {}).get("packages", {}))
        plan.decide("dependencies", "pipenv", "Pipfile")
    elif not any(root.glob("*.py")):
        return False
    else:
        plan.tool = "none"
        plan.decide("dependencies", "none declared (standard library only)", _first_py(root))
    plan.kind = "python"
    _python_start(plan, pyproject or {})
    return True


def _python_pyproject(plan: BuildPlan, pyproject: Mapping[str, Any]) -> None:
    root = plan.directory
    backend = str(pyproject.get("build-system", {}).get("build-backend", ""))
    poetry = pyproject.get("tool", {}).get("poetry")
    if (root / "uv.lock").is_file():
        plan.tool, why = "uv", "uv.lock"
    elif poetry is not None or "poetry" in backend:
        plan.tool, why = "poetry", "pyproject.toml"
    elif "hatchling" in backend:
        plan.tool, why = "hatch", "pyproject.toml"
    else:
        plan.tool, why = "setuptools", "pyproject.toml"
    plan.decide("build tool", plan.tool, why)
    lock = {"uv": "uv.lock", "poetry": "poetry.lock"}.get(plan.tool, "")
    plan.dependency_files = _existing(root, "pyproject.toml", lock, "README.md")
    names = list(pyproject.get("project", {}).get("dependencies", []))
    if isinstance(poetry, Mapping):
        names += [n for n in poetry.get("dependencies", {}) if n != "python"]
    plan.dependencies = tuple(names)


def _python_start(plan: BuildPlan, pyproject: Mapping[str, Any]) -> None:
    names = {_name_of(d) for d in plan.dependencies}
    framework = next((f for f in ("fastapi", "django", "flask") if f in names), "script")
    plan.framework = framework
    if framework != "script":
        plan.decide("framework", framework, _dependency_file(plan))
        plan.port = WEB_PORT
    declared = _declared_start(plan, pyproject)
    if declared:
        plan.start = declared
        return
    plan.start = _framework_start(plan, framework, names)


def _declared_start(plan: BuildPlan, pyproject: Mapping[str, Any]) -> tuple[str, ...]:
    procfile = plan.directory / "Procfile"
    if procfile.is_file():
        for line in procfile.read_text(errors="replace").splitlines():
            if line.startswith("web:"):
                plan.decide("start command", line[4:].strip(), "Procfile")
                return tuple(shlex.split(line[4:].replace("$PORT", str(plan.port or WEB_PORT))))
    scripts = pyproject.get("project", {}).get("scripts", {})
    if scripts and plan.framework == "script":
        name = next(iter(scripts))
        plan.decide("start command", f"{name} ([project.scripts])", "pyproject.toml")
        return (name,)
    return ()


def _framework_start(plan: BuildPlan, framework: str, names: set[str]) -> tuple[str, ...]:
    if framework == "django":
        return _django_start(plan, names)
    if framework in {"fastapi", "flask"}:
        module, file = _app_module(plan.directory, framework)
        plan.decide("application", module, file)
        if framework == "fastapi":
            if "uvicorn" not in names:
                plan.dependencies += ("uvicorn",)
                plan.decide("server", "uvicorn (added: FastAPI needs a server)", file)
            return ("uvicorn", module, "--host", ALL_INTERFACES, "--port", str(WEB_PORT))
        flask_run = ("python", "-m", "flask", "--app", module, "run")
        dev = (*flask_run, "--host", ALL_INTERFACES, "--port", str(WEB_PORT))
        return _wsgi_start(plan, names, module) or _development_server(
            plan, "python -m flask run, Flask's", dev, module
        )
    return _script_start(plan)


def _wsgi_start(plan: BuildPlan, names: set[str], module: str) -> tuple[str, ...]:
    """The start command of the first production WSGI server the project declares."""
    server = next((s for s in WSGI_SERVERS if s in names), None)
    if server is None:
        return ()
    plan.decide("server", server, _dependency_file(plan))
    return _wsgi_command(server, module)


def _wsgi_command(server: str, module: str) -> tuple[str, ...]:
    address = f"{ALL_INTERFACES}:{WEB_PORT}"
    if server == "gunicorn":
        return ("gunicorn", "--bind", address, module)
    if server == "waitress":
        return ("waitress-serve", f"--listen={address}", module)
    return (
        "uvicorn",
        "--interface",
        "wsgi",
        "--host",
        ALL_INTERFACES,
        "--port",
        str(WEB_PORT),
        module,
    )


def _development_server(
    plan: BuildPlan, whose: str, command: tuple[str, ...], module: str
) -> tuple[str, ...]:
    """The framework's own server, with a note saying so and how to switch."""
    file = _dependency_file(plan)
    servers = f"{', '.join(WSGI_SERVERS[:-1])} or {WSGI_SERVERS[-1]}"
    plan.warn(
        "server",
        f"{whose} development server, not meant for production: {file} declares no {servers};"
        f" to switch, add gunicorn to {file} and generate again (the start command becomes"
        f" `{' '.join(_wsgi_command('gunicorn', module))}`)",
        file,
    )
    return command


def _script_start(plan: BuildPlan) -> tuple[str, ...]:
    script = _first_py(plan.directory, ("main.py", "app.py", "__main__.py", "cli.py"))
    plan.decide("start command", f"python {script}", script)
    _script_port(plan, script)
    return ("python", script)


def _script_port(plan: BuildPlan, script: str) -> None:
    """A plain server's port, where no framework decides: from its entry module."""
    path = plan.directory / script
    if not path.is_file():
        return
    for match in _PY_PORT.finditer(path.read_text(errors="replace")):
        port = int(next(group for group in match.groups() if group))
        if 0 < port <= MAX_PORT:
            plan.port = port
            plan.decide("port", str(port), script)
            return


def _django_start(plan: BuildPlan, names: set[str]) -> tuple[str, ...]:
    wsgi = next(plan.directory.glob("*/wsgi.py"), None)
    module = f"{wsgi.parent.name}.wsgi:application" if wsgi else "<project>.wsgi:application"
    if wsgi is not None:
        plan.decide("application", module, str(wsgi.relative_to(plan.directory)))
        started = _wsgi_start(plan, names, module)
        if started:
            return started
    plan.decide("start command", "manage.py runserver", "manage.py")
    runserver = ("python", "manage.py", "runserver", f"{ALL_INTERFACES}:{WEB_PORT}")
    return _development_server(plan, "manage.py runserver, Django's", runserver, module)


def _app_module(root: Path, framework: str) -> tuple[str, str]:
    """``module:variable`` of the first file that creates the app."""
    for path in sorted([*root.glob("*.py"), *root.glob("src/*/*.py"), *root.glob("*/*.py")]):
        text = path.read_text(errors="replace")
        for variable, kind in _PY_APP.findall(text):
            if kind.lower() == framework:
                relative = path.relative_to(root).with_suffix("")
                parts = relative.parts[1:] if relative.parts[0] == "src" else relative.parts
                return f"{'.'.join(parts)}:{variable}", str(path.relative_to(root))
    return "app:app", "(convention)"


def _requirements(path: Path) -> tuple[str, ...]:
    lines = path.read_text(errors="replace").splitlines()
    return tuple(line.split("#", 1)[0].strip() for line in lines if _REQUIREMENT_NAME.match(line))


def _name_of(requirement: str) -> str:
    match = _REQUIREMENT_NAME.match(requirement)
    return match.group(1).lower().replace("_", "-") if match else ""


def _dependency_file(plan: BuildPlan) -> str:
    return plan.dependency_files[0] if plan.dependency_files else "(imports)"


def _first_py(root: Path, preferred: tuple[str, ...] = ()) -> str:
    for name in preferred:
        if (root / name).is_file():
            return name
    found = sorted(p.name for p in root.glob("*.py"))
    return found[0] if found else "main.py"


# --- Node --------------------------------------------------------------------------


def _node(plan: BuildPlan) -> bool:
    package = _json(plan.directory / "package.json")
    if package is None:
        return False
    deps = {**package.get("dependencies", {})}
    scripts = package.get("scripts", {})
    if not deps and not package.get("main") and not scripts.get("start") and _static_dir(plan):
        return False  # a package.json only for tooling around a static site
    plan.kind = "node"
    _node_tool(plan)
    plan.dependencies = tuple(deps)
    plan.framework = "next" if "next" in deps else "express" if "express" in deps else "plain"
    if plan.framework != "plain":
        plan.decide("framework", plan.framework, "package.json")
    plan.build_script = "build" in scripts
    plan.start = _node_start(plan, package)
    plan.port = _port_in_sources(plan, ("*.js", "*.mjs", "src/*.js")) or NODE_PORT
    return True


def _node_tool(plan: BuildPlan) -> None:
    for lock, tool in (
        ("pnpm-lock.yaml", "pnpm"),
        ("yarn.lock", "yarn"),
        ("package-lock.json", "npm"),
    ):
        if (plan.directory / lock).is_file():
            plan.tool = tool
            plan.dependency_files = ("package.json", lock)
            plan.decide("package manager", tool, lock)
            return
    plan.tool = "npm"
    plan.dependency_files = ("package.json",)
    plan.decide("package manager", "npm (no lockfile: npm install)", "package.json")


def _node_start(plan: BuildPlan, package: Mapping[str, Any]) -> tuple[str, ...]:
    start = str(package.get("scripts", {}).get("start", ""))
    words = shlex.split(start) if start else []
    if len(words) == 2 and words[0] == "node":
        plan.decide("start command", start, "package.json scripts.start")
        return ("node", words[1])
    if start:
        plan.decide("start command", f"{plan.tool} start ({start})", "package.json scripts.start")
        return (plan.tool, "start")
    main = str(package.get("main") or _first_existing(plan.directory, "server.js", "index.js"))
    plan.decide("start command", f"node {main}", "package.json main")
    return ("node", main)


# --- Go and Rust ---------------------------------------------------------------------


def _go(plan: BuildPlan) -> bool:
    go_mod = plan.directory / "go.mod"
    if not go_mod.is_file():
        return False
    plan.kind, plan.tool = "go", "go"
    module = next(
        (ln.split()[1] for ln in go_mod.read_text().splitlines() if ln.startswith("module ")), "app"
    )
    plan.binary = module.rsplit("/", 1)[-1]
    plan.dependency_files = _existing(plan.directory, "go.mod", "go.sum")
    package = "." if (plan.directory / "main.go").is_file() else _go_cmd(plan.directory)
    plan.static_dir = package
    plan.decide("module", f"{module}, main package {package}", "go.mod")
    plan.start = (f"/usr/local/bin/{plan.binary}",)
    plan.port = _port_in_sources(plan, ("*.go", "cmd/*/*.go"))
    return True


def _go_cmd(root: Path) -> str:
    found = sorted(root.glob("cmd/*/main.go"))
    return f"./{found[0].parent.relative_to(root)}" if found else "."


def _rust(plan: BuildPlan) -> bool:
    cargo = _toml(plan.directory / "Cargo.toml")
    if cargo is None:
        return False
    plan.kind, plan.tool = "rust", "cargo"
    plan.binary = str(cargo.get("package", {}).get("name", "app"))
    plan.dependency_files = _existing(plan.directory, "Cargo.toml", "Cargo.lock")
    plan.decide("crate", plan.binary, "Cargo.toml")
    plan.start = (f"/usr/local/bin/{plan.binary}",)
    plan.port = _port_in_sources(plan, ("src/*.rs",))
    return True


# --- static sites ----------------------------------------------------------------------


def _static(plan: BuildPlan) -> bool:
    where = _static_dir(plan)
    if where is None:
        return False
    plan.kind, plan.tool, plan.framework = "static", "none", "static"
    plan.static_dir = where
    plan.port = STATIC_PORT
    plan.decide("static site", f"served from {where}", f"{where}/index.html".lstrip("./"))
    plan.start = ("python3", "-m", "http.server", str(STATIC_PORT), "--directory", "/site")
    return True


def _static_dir(plan: BuildPlan) -> str | None:
    if (plan.directory / "index.html").is_file():
        return "."
    return next((d for d in STATIC_DIRS if (plan.directory / d / "index.html").is_file()), None)


# --- small readers ---------------------------------------------------------------------


def _port_in_sources(plan: BuildPlan, patterns: tuple[str, ...]) -> int | None:
    for path in _files(plan.directory, patterns):
        match = _LISTEN.search(path.read_text(errors="replace"))
        if match:
            plan.decide("port", match.group(1), str(path.relative_to(plan.directory)))
            return int(match.group(1))
    return None


def _files(root: Path, patterns: tuple[str, ...]) -> Iterator[Path]:
    for pattern in patterns:
        yield from sorted(root.glob(pattern))


def _existing(root: Path, *names: str) -> tuple[str, ...]:
    return tuple(name for name in names if name and (root / name).is_file())


def _first_existing(root: Path, *names: str) -> str:
    return next((n for n in names if (root / n).is_file()), names[-1])


def _toml(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        return tomllib.loads(path.read_text(errors="replace"))
    except tomllib.TOMLDecodeError:
        return None


def _json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(errors="replace"))
    except json.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None
