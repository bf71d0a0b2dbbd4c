"""Dask workers that run the engine this process would: ``ledger.compiled.prepare()`` in
every worker before any task imports ``engine``.

A task of ``replay.tournament`` is unpickled on the worker, which imports
``replay.tournament`` and so ``engine``; a worker that did not prepare first would load the
compiled engine modules even when they are older than their sources (old rules, or an
``AttributeError`` on a name the sources added). ``PrepareEngine`` is a worker plugin:
``Client.register_plugin`` runs its ``setup`` on every worker before returning, and on
every worker that joins later, before it runs a task. It carries this process's
``AGENTPERP_ENGINE=python`` (asked for, or set because the local build is stale), so the
workers run the interpreted engine when this process does; otherwise each worker checks
its own build.

This module imports nothing of ``engine`` (it is unpickled on a fresh worker first).
"""

from __future__ import annotations

import os

from distributed.diagnostics.plugin import WorkerPlugin

from ledger import compiled

PLUGIN_NAME = "agentperp-prepare-engine"


class PrepareEngine(WorkerPlugin):
    """``ledger.compiled.prepare()`` on a worker (fails the worker's setup if the worker
    imported ``engine`` already and must switch engines: a stale engine never runs)."""

    name = PLUGIN_NAME

    def __init__(self, engine: str | None = None) -> None:
        self.engine = engine if engine is not None else os.environ.get(compiled.ENGINE_ENV)

    def setup(self, worker=None) -> None:
        if self.engine == "python":
            os.environ[compiled.ENGINE_ENV] = "python"
        compiled.prepare()

