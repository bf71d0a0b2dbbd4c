"""The audit trail of the running venue's hedger in its SQL read model: a venue with the read
models on (SQLite in its data dir) and hedging on the embedded simulators trades over HTTP;
then ``GET /hedging/audit`` and ``/hedging/orders`` and ``agentperp hedge audit`` show the
decisions and orders, bad parameters get stable codes, and no secret is in any row. With the
read models off (``--no-sql``) the routes answer ``UNAVAILABLE``."""

from __future__ import annotations

import json

from sqlalchemy import create_engine, text

from adapters.hedging import cli
from protocol.codes import UNAVAILABLE
from tests.hedging import test_venue as tv
from tests.support import agent_of

WAIT_S = 30.0


async def test_the_venues_hedge_audit_in_sql_over_http_and_cli(tmp_path, capsys):
    cfg = tv.config(tmp_path)
    cfg.projections.sql = True  # the read models on, at their default place (DATA/read_model.sqlite)
    rig = await tv.start_venue(cfg)
    try:
        await tv.fund_and_price(rig)
        for t in tv.TRADES:
            await tv.trade(rig, *t)
        await tv.hedged_through(rig)
        hedger = rig.venue.hedger.sink.hedger
        assert hedger.audit_sql.wait_caught_up(WAIT_S)
        maker = agent_of(tv.MAKERS[0])

        audit = (await rig.get(f"/hedging/audit?maker={maker}&limit=1000")).body["entries"]
        assert audit and {e["maker"] for e in audit} == {maker}
        assert {"decision", "request", "response"} <= {e["kind"] for e in audit}
        decisions = (await rig.get("/hedging/audit?kind=decision&limit=1000")).body["entries"]
        sent = [d["record"] for d in decisions if d["action"] == "order"]
        orders = (await rig.get("/hedging/orders?limit=1000")).body["orders"]
        assert len(orders) == len(sent) == hedger.orders_sent > 0
        assert {o["cid"] for o in orders} == {d["cid"] for d in sent}
        okx_spelling = {o["cid"].replace("-", "x") for o in orders}  # OKX takes letters and digits only
        assert okx_spelling == {c.replace("-", "x") for c in tv.client_ids(rig.venue.hedger.sims)}
        assert all(o["status"] in ("closed", "expired", "canceled") and o["filled"] is not None for o in orders)
        assert len((await rig.get("/hedging/audit?limit=2")).body["entries"]) == 2

        for query, code in (("limit=0", "OUT_OF_RANGE"), ("limit=1001", "OUT_OF_RANGE"), ("limit=x", "INVALID_FIELD"),
                            ("kind=nope", "INVALID_FIELD"), ("maker=" + "x" * 65, "INVALID_FIELD")):
            answer = await rig.get(f"/hedging/audit?{query}")
            assert answer.status == 400 and answer.body["error"]["code"] == code, (query, answer)
        spec = (await rig.get("/openapi.json")).body
        assert {"/hedging/audit", "/hedging/orders"} <= set(spec["paths"])

        data_dir = cfg.venue.data_dir
        assert cli.hedge(["audit", "--data", data_dir, "--orders", "--limit", "1000", "--json"]) == 0
        assert {o["cid"] for o in json.loads(capsys.readouterr().out)} == {o["cid"] for o in orders}
        assert cli.hedge(["audit", "--data", data_dir, "--maker", maker, "--limit", "5"]) == 0
        printed = capsys.readouterr().out.splitlines()
        assert len(printed) == 5 and all(f"maker={maker}" in line for line in printed)

        secrets = [v for creds in rig.venue.hedger.credentials.values() for c in creds.values()
                   for v in (c.secret, c.api_key)]
        engine = create_engine(f"sqlite:///{data_dir}/read_model.sqlite")
        with engine.connect() as conn:
            dump = json.dumps([list(map(str, r)) for table in ("hedge_audit", "hedge_orders")
                               for r in conn.execute(text(f"SELECT * FROM {table}"))])
        engine.dispose()
        assert not any(secret in dump for secret in secrets)
    finally:
        await tv.stop_venue(rig)


async def test_without_the_read_models_the_routes_say_unavailable(tmp_path):
    rig = await tv.start_venue(tv.config(tmp_path))  # projections.sql off, hedging on: the JSONL only
    try:
        await tv.fund_and_price(rig)
        await tv.trade(rig, *tv.TRADES[0])
        await tv.hedged_through(rig)
        for path in ("/hedging/audit", "/hedging/orders"):
            answer = await rig.get(path)
            assert answer.status == 503 and answer.body["error"]["code"] == UNAVAILABLE
        assert (tmp_path / "venue" / "hedging" / "audit.jsonl").stat().st_size > 0
        assert not (tmp_path / "venue" / "read_model.sqlite").exists()
    finally:
        await tv.stop_venue(rig)


def test_the_cli_refuses_a_bad_limit(capsys):
    for bad in ("0", "1001", "x"):
        try:
            cli.hedge(["audit", "--limit", bad])
        except SystemExit as stop:
            assert stop.code == 2
        else:
            raise AssertionError(f"--limit {bad} accepted")
        assert "--limit" in capsys.readouterr().err
