"""alembic's environment for the read models: online only, on the connection that
``ledger.projections.sql.migrate`` hands over (or a URL given to the alembic CLI)."""

from alembic import context
from sqlalchemy import create_engine

from ledger.projections.sql.migrate import VERSION_TABLE
from ledger.projections.sql.schema import metadata

config = context.config
connection = config.attributes.get("connection")


def _run(conn) -> None:
    context.configure(connection=conn, target_metadata=metadata, version_table=VERSION_TABLE,
                      render_as_batch=conn.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


if connection is not None:
    _run(connection)
else:
    with create_engine(config.get_main_option("sqlalchemy.url")).connect() as conn:
        _run(conn)
        conn.commit()
