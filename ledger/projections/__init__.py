"""Projections: consumers of the journal, each from its own checkpoint (DESIGN §1, §9).

- ``runner``: one runner for every consumer — reads the journal in bounded batches from the
  projection's checkpoint, follows the durable tail, retries a failing batch at the same seq
  (backoff with jitter, never a skip) and reports each projection's lag.
- ``source``: the journal reader the runner (and the gateways' hub) reads with.
- ``external``: the durable checkpoint and seq-derived idempotency key of external sinks.
- ``sql``: the SQL read models and per-agent KPIs (SQLAlchemy 2 Core, alembic), a
  transactional sink: rows and checkpoint commit together (exactly once).
"""
