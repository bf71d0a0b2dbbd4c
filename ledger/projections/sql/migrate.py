"""Schema migrations of the read models (alembic). The projection upgrades its database to
the newest revision when it starts, so an upgraded venue upgrades its read model.

The revisions live in ``migrations/versions``; ``alembic`` is driven from code (no
``alembic.ini``): ``upgrade(engine)``, ``current(engine)``, ``head()``.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
VERSION_TABLE = "read_model_version"  # alembic's bookkeeping table, named for what it versions


def config(engine: Engine | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database of ``engine`` to ``revision`` (default: the newest)."""
    with engine.begin() as connection:
        cfg = config(engine)
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)


def current(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE}).get_current_revision()


def head() -> str:
    return ScriptDirectory.from_config(config()).get_current_head()
