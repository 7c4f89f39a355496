"""The labels that mark the containers sidekick manages, and the engine filters that find them.

Kept apart from :mod:`sidekick.containers.spec` so that a look (``prod logs``,
``prod status``), which only lists and reads containers, does not define the
specification's classes.
"""

from __future__ import annotations

LABEL_MANAGED = "sidekick.managed"
LABEL_PROJECT = "sidekick.project"
LABEL_RUN = "sidekick.run"
LABEL_INSTANCE = "sidekick.instance"
MANAGED_FILTER = f"{LABEL_MANAGED}=true"


def selector(instance: str = "", project: str | None = None) -> list[str]:
    """Label filters for the engine: managed, this instance's, and one project's if given."""
    labels = [MANAGED_FILTER]
    if instance:
        labels.append(f"{LABEL_INSTANCE}={instance}")
    if project is not None:
        labels.append(f"{LABEL_PROJECT}={project}")
    return labels
