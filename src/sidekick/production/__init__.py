"""A project's production: status, logs, restart, releases, health-gated deploys, audit.

Production runs as a Compose project (or named containers) on the same engine,
from a production directory of its own; every engine call goes through
:mod:`sidekick.containers`, and ``docker compose`` runs as an argument list with
``-p`` and ``-f`` from the configuration.
"""
