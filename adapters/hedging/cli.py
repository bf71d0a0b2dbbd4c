"""`agentperp exchange-sim` and `agentperp hedge status|keys` (wired in venue/cli.py)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from decimal import Decimal
from pathlib import Path

KEYFILE_DEFAULT = "data/hedging/keys.json"
STATE_DEFAULT = "data/hedging/hedger.json"
DATA_DIR_DEFAULT = "data"


SIM_EXCHANGES = {"binanceusdm": "Binance USDⓈ-M futures", "okx": "OKX v5 USDT swaps"}  # --exchange → what it speaks
SIM_ACCOUNT_DEFAULT = {"binanceusdm": "demo:demo-secret", "okx": "demo:demo-secret:demo-passphrase"}


def build_sim(exchange: str, seed: int, accounts: list[str]):
    """The simulator of ``exchange`` (a key of ``SIM_EXCHANGES``) with ``accounts``:
    ``KEY:SECRET`` for Binance, ``KEY:SECRET:PASSPHRASE`` for OKX (none: the demo account).
    Raise ``ValueError`` for an account that is not in that shape."""
    if exchange == "binanceusdm":
        from adapters.hedging.sim.binance import BinanceSim

        sim = BinanceSim(seed=seed)
    elif exchange == "okx":
        from adapters.hedging.sim.okx import OkxSim

        sim = OkxSim(seed=seed)
    else:
        raise ValueError(f"no simulator for {exchange!r}; one of {', '.join(SIM_EXCHANGES)}")
    parts_needed = 3 if exchange == "okx" else 2
    for account in accounts or [SIM_ACCOUNT_DEFAULT[exchange]]:
        parts = account.split(":", parts_needed - 1)
        if len(parts) != parts_needed or not all(parts):
            shape = "KEY:SECRET:PASSPHRASE" if exchange == "okx" else "KEY:SECRET"
            raise ValueError(f"--account {parts[0]}:… for {exchange} must be {shape}")
        sim.add_account(*parts)
    return sim


def exchange_sim(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="agentperp exchange-sim",
                                     description="Serve a simulated exchange on loopback, speaking REST as "
                                                 "ccxt calls it: Binance USDⓈ-M futures (ccxt.binanceusdm) or "
                                                 "OKX v5 USDT swaps (ccxt.okx).")
    parser.add_argument("--exchange", choices=list(SIM_EXCHANGES), default="binanceusdm",
                        help="the exchange to simulate (default binanceusdm)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7410, help="default 7410 (0: any free port)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--account", action="append", default=[], metavar="KEY:SECRET[:PASSPHRASE]",
                        help="an API key and its secret, for OKX also its passphrase (repeatable); default "
                             "demo:demo-secret (OKX: demo:demo-secret:demo-passphrase)")
    parser.add_argument("--duration", type=float, metavar="SECONDS", help="stop by itself after this long")
    args = parser.parse_args(argv)
    from adapters.hedging.sim.server import start

    try:
        sim = build_sim(args.exchange, args.seed, args.account)
    except ValueError as error:
        parser.error(str(error))

    async def serve() -> None:
        runner, port = await start(sim.app(), args.host, args.port)
        keys = [a.split(":")[0] for a in args.account] or ["demo"]
        print(f"exchange simulator ({SIM_EXCHANGES[args.exchange]}) on http://{args.host}:{port}  "
              f"accounts: {', '.join(keys)}  "
              f"faults: POST /sim/faults {{\"outage\": true, \"latency_s\": 0.2}}", flush=True)
        try:
            await asyncio.sleep(args.duration if args.duration is not None else 10**9)
        finally:
            await runner.cleanup()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass
    return 0


def hedge(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="agentperp hedge",
                                     description="The hedging projection: status, audit trail and keys.")
    sub = parser.add_subparsers(dest="action", required=True)
    status = sub.add_parser("status", help="exposure, hedge and residual per maker and market (from the state file)")
    status.add_argument("--state", default=STATE_DEFAULT)
    status.add_argument("--json", action="store_true")
    audit = sub.add_parser("audit", help="the audit trail (decisions, requests, responses) or the hedge orders, "
                                         "newest first, from the SQL read model")
    audit.add_argument("--maker", help="only this maker's (agent id)")
    audit.add_argument("--kind", help="only lines of this kind (decision, request, response, resolved, reconcile)")
    audit.add_argument("--orders", action="store_true", help="the hedge orders instead of the audit lines")
    audit.add_argument("--limit", type=_limit, default=50, help="rows (1..1000, default 50)")
    audit.add_argument("--data", default=DATA_DIR_DEFAULT, metavar="DIR", help="the venue's data directory (default ./data)")
    audit.add_argument("--sql", metavar="URL", help="the read models' database (default: DATA/read_model.sqlite)")
    audit.add_argument("--json", action="store_true")
    k = sub.add_parser("keys", help="the encrypted keyfile (passphrase from AGENTPERP_KEYS_PASSPHRASE or a prompt)")
    k.add_argument("op", choices=["add", "list", "remove"])
    k.add_argument("--file", default=KEYFILE_DEFAULT)
    k.add_argument("--maker")
    k.add_argument("--exchange")
    k.add_argument("--api-key", help="add: the API key (the secret is read from AGENTPERP_KEYS_SECRET or a prompt)")
    args = parser.parse_args(argv)
    if args.action == "status":
        return _status(Path(args.state), args.json)
    if args.action == "audit":
        return _audit(args)
    return _keys(args)


def _limit(text: str) -> int:
    from adapters.hedging.audit_sql import LIMIT_MAX

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 1 <= value <= LIMIT_MAX:
        raise argparse.ArgumentTypeError(f"{value} is outside [1, {LIMIT_MAX}]")
    return value


def _audit(args) -> int:
    from sqlalchemy import inspect

    from adapters.hedging import audit_sql
    from ledger.projections.external import SQLITE_FILE
    from ledger.projections.sql.model import make_engine

    url = args.sql
    if url is None:
        path = Path(args.data) / SQLITE_FILE
        if not path.exists():
            print(f"agentperp hedge audit: no read model at {path} (--data DIR, or --sql URL)", file=sys.stderr)
            return 1
        url = f"sqlite:///{path.resolve()}"
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("hedge_audit"):
                print("agentperp hedge audit: this read model has no hedge_audit table yet (a venue with hedging "
                      "on migrates it at start)", file=sys.stderr)
                return 1
            if args.orders:
                rows = audit_sql.orders(conn, maker=args.maker, limit=args.limit)
            else:
                rows = audit_sql.recent(conn, maker=args.maker, kind=args.kind, limit=args.limit)
    finally:
        engine.dispose()
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    for row in rows:
        print(_audit_line(row, args.orders))
    if not rows:
        print("(no rows)")
    return 0


def _audit_line(row: dict, is_order: bool) -> str:
    import datetime as dt

    if is_order:
        when = dt.datetime.fromtimestamp(row["sent_ts_ns"] / 1e9, dt.timezone.utc).strftime("%H:%M:%S.%f")[:-3]
        filled = "-" if row["filled_e9"] is None else str(Decimal(row["filled_e9"]) / 10**9)
        return (f"{when}  {row['cid']:<30} {row['maker'][:12]:<12} {row['exchange']:<10} {row['symbol']:<14} "
                f"{row['side']:<4} {Decimal(row['qty_e9']) / 10**9:>12} @ {Decimal(row['price_e8']) / 10**8:<12} "
                f"{row['status']:<12} filled {filled}" + (f"  {row['error']}" if row["error"] else ""))
    when = dt.datetime.fromtimestamp(row["ts_ns"] / 1e9, dt.timezone.utc).strftime("%H:%M:%S.%f")[:-3]
    shown = {k: v for k, v in row["record"].items() if k not in ("ts", "kind")}
    return f"{when}  {row['kind']:<9} " + " ".join(f"{k}={v}" for k, v in shown.items())


def _status(path: Path, as_json: bool) -> int:
    if not path.exists():
        print(f"agentperp hedge status: no hedger state at {path}", file=sys.stderr)
        return 1
    data = json.loads(path.read_text())
    hedges: dict[tuple[str, int], Decimal] = {}
    for maker, market, _exchange, qty in data["hedges"]:
        hedges[(maker, market)] = hedges.get((maker, market), Decimal(0)) + Decimal(qty)
    rows = []
    for maker, market, net_e9 in data["exposure"]["net_e9"]:
        exposure = Decimal(net_e9) / Decimal(10**9)
        hedge_qty = hedges.get((maker, market), Decimal(0))
        rows.append({"maker": maker, "market": market, "exposure": str(exposure), "hedge": str(hedge_qty),
                     "residual": str(-exposure - hedge_qty)})
    out = {"applied_seq": data["applied_seq"], "pending_orders": len(data["intents"]), "dirty": len(data["dirty"]),
           "positions": rows}
    if as_json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"applied seq {out['applied_seq']}; orders of unknown outcome {out['pending_orders']}; "
          f"targets not reached {out['dirty']}")
    print(f"{'maker':<46} {'mkt':>3} {'exposure':>14} {'hedge':>14} {'residual':>14}")
    for r in rows:
        print(f"{r['maker']:<46} {r['market']:>3} {r['exposure']:>14} {r['hedge']:>14} {r['residual']:>14}")
    return 0


def _keys(args) -> int:
    import getpass
    import os

    from adapters.hedging import keys
    from adapters.hedging.exchanges import Credentials

    try:
        phrase = keys.passphrase()
        if args.op == "list":
            for entry in keys.listing(args.file, phrase):
                print(f"{entry['maker']}  {entry['exchange']}  {entry['api_key']}")
            return 0
        if not args.maker or not args.exchange:
            print(f"agentperp hedge keys {args.op}: --maker and --exchange are required", file=sys.stderr)
            return 2
        if args.op == "remove":
            found = keys.remove(args.file, phrase, args.maker, args.exchange)
            print("removed" if found else "no such entry")
            return 0 if found else 1
        if not args.api_key:
            print("agentperp hedge keys add: --api-key is required", file=sys.stderr)
            return 2
        secret = os.environ.get("AGENTPERP_KEYS_SECRET") or getpass.getpass("API secret: ")
        password = os.environ.get("AGENTPERP_KEYS_PASSWORD", "")
        keys.add(args.file, phrase, args.maker, args.exchange, Credentials(args.api_key, secret, password))
        print(f"added {args.maker} {args.exchange} {args.api_key[:4]}…")
        return 0
    except keys.KeyfileError as error:
        print(f"agentperp hedge keys: {error}", file=sys.stderr)
        return 1
