"""The dashboard and ``/metrics``: reads what the daemon records, hands confirmed actions to it.

Nothing here touches the Docker engine or tmux: an action becomes a request row
in the state store (:mod:`sidekick.web.action_requests`) that the daemon
executes and answers, so only the orchestrator acts on agents.
"""
