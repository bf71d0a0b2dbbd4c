"""Fixtures of the projection tests: seeded journals, and a database URL per backend — a
SQLite file, and a real PostgreSQL 16 (``pgserver``) when it can start here."""

from __future__ import annotations

import itertools
import shutil
import tempfile
from pathlib import Path

import pytest

from replay import generate

GENERATED_EVENTS = 4_000
_pg_names = itertools.count()


@pytest.fixture(scope="session")
def generated_journal(tmp_path_factory) -> Path:
    """A seeded session (RFQs, quotes, fills, closes, funding, liquidations) of ~4 000 events."""
    data_dir = tmp_path_factory.mktemp("generated") / "data"
    generate.generate(data_dir, GENERATED_EVENTS, progress=False, jump_probability=0.01)
    return data_dir / "journal"


@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL 16 server for the session (pgserver), or a skip saying why not."""
    try:
        import pgserver
    except ImportError as error:
        pytest.skip(f"pgserver is not installed: {error}")
    directory = tempfile.mkdtemp(prefix="agentperp-pg-")
    try:
        server = pgserver.get_server(directory, cleanup_mode="stop")
    except Exception as error:  # the bundled binaries cannot run here
        shutil.rmtree(directory, ignore_errors=True)
        pytest.skip(f"pgserver could not start PostgreSQL: {error}")
    yield server
    server.cleanup()
    shutil.rmtree(directory, ignore_errors=True)


def postgres_url(server) -> str:
    """A fresh database on ``server``, as a SQLAlchemy psycopg 3 URL."""
    name = f"readmodel_{next(_pg_names)}"
    server.psql(f"CREATE DATABASE {name};")
    host = server.get_uri().split("host=", 1)[1]
    return f"postgresql+psycopg://postgres@/{name}?host={host}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'read.db'}"
    return postgres_url(request.getfixturevalue("postgres_server"))
