"""Orchestration: trigger, fan-out, worker, inbox feed. Uses core, store, channels."""
