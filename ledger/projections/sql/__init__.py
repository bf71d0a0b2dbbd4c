"""SQL read models: ``schema`` (tables), ``model`` (the projection), ``migrate`` (alembic),
``queries`` (what the HTTP reads and the CLI ask)."""
