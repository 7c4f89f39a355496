"""The arguments of ``sidekick insight``; only argparse here, so every command starts fast."""

from __future__ import annotations

import argparse

DEFAULT_INTERVAL = 2.0


def insight_options(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "targets", nargs="*", metavar="TARGET", help="a project or a container name"
    )
    command.add_argument(
        "--all", action="store_true", dest="every", help="every container sidekick manages"
    )
    command.add_argument("--json", action="store_true", help="one JSON document (lines if --watch)")
    command.add_argument("--watch", action="store_true", help="refresh in place until Ctrl-C")
    command.add_argument(
        "--interval", type=float, default=DEFAULT_INTERVAL, help="seconds between refreshes"
    )


def dockerfile_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("project", help="a project name from the config, or a directory")
    command.add_argument("--write", action="store_true", help="write Dockerfile and .dockerignore")
    command.add_argument(
        "--force", action="store_true", help="with --write: replace existing files"
    )
    command.add_argument("--check", action="store_true", help="build and start it before anything")
    command.add_argument("--base-image", help="the BASE_IMAGE build argument for --check")
    command.add_argument("--json", action="store_true", help="machine-readable output")


def investigate_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("target", metavar="TARGET", help="a project or a container name")
    command.add_argument("question", nargs="?", default="", help="what to find out")
    command.add_argument(
        "--timeout", type=float, default=600.0, help="seconds before the run is stopped"
    )
