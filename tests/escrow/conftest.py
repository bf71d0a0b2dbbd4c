"""Build the escrow program once per session; each test gets a fresh LiteSVM world."""

from __future__ import annotations

import pytest

from programs.escrow.build import build
from tests.escrow.harness import World


@pytest.fixture(scope="session")
def program_path():
    return build()


@pytest.fixture
def world(program_path) -> World:
    return World(program_path)
