"""Alembic revisions, oldest first (``0001_initial`` ...): each changes the schema once."""

__all__: list[str] = []
