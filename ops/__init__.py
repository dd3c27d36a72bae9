"""Operator commands: topics, replay, rebuild, dead letters."""
