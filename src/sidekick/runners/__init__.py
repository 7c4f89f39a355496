"""Runners start, watch and stop agents: tmux sessions, containers, or memory for tests."""
