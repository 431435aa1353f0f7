"""Handlers used by the tests only (crashing, printing, failing to load)."""
