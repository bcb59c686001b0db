"""The database's schema history (Alembic): ``env.py`` and one script per revision.

Run by ``capture_api.store.db.migrate`` at start-up and by ``capture-api migrate``; nothing
here is imported by other packages.
"""

__all__: list[str] = []
