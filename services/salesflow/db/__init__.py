"""Postgres: table definitions, the engine factory and migrations."""
