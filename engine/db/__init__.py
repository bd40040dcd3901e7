"""SQL storage: typed models, the session factory and Alembic migrations."""

from engine.db.session import Database, migrate

__all__ = ["Database", "migrate"]
