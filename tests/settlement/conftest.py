"""Build the escrow program once per session; journals come from the real engine."""

from __future__ import annotations

import pytest

from programs.escrow.build import build
from tests.settlement.journal import lifecycle


@pytest.fixture(scope="session")
def program_path():
    return build()


@pytest.fixture(scope="session")
def lifecycle_journal(tmp_path_factory):
    """(journal dir, builder) of the full lifecycle; read-only for the tests."""
    journal_dir = tmp_path_factory.mktemp("lifecycle") / "journal"
    return journal_dir, lifecycle(journal_dir)
