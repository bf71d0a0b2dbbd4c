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


def exchange_sim(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="agentperp exchange-sim",
                                     description="Serve a simulated Binance USDⓈ-M futures exchange (REST, as "
                                                 "ccxt.binanceusdm calls it) on loopback.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7410, help="default 7410 (0: any free port)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--account", action="append", default=[], metavar="KEY:SECRET",
                        help="an API key and its secret (repeatable); default demo:demo-secret")
    parser.add_argument("--duration", type=float, metavar="SECONDS", help="stop by itself after this long")
    args = parser.parse_args(argv)
    from adapters.hedging.sim.binance import BinanceSim
    from adapters.hedging.sim.server import start

    async def serve() -> None:
        sim = BinanceSim(seed=args.seed)
        for pair in args.account or ["demo:demo-secret"]:
            key, _, secret = pair.partition(":")
            sim.add_account(key, secret)
        runner, port = await start(sim.app(), args.host, args.port)
        print(f"exchange simulator (Binance USDⓈ-M) on http://{args.host}:{port}  "
              f"accounts: {', '.join(a.split(':')[0] for a in args.account or ['demo:…'])}  "
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
    parser = argparse.ArgumentParser(prog="agentperp hedge", description="The hedging projection: status and keys.")
    sub = parser.add_subparsers(dest="action", required=True)
    status = sub.add_parser("status", help="exposure, hedge and residual per maker and market (from the state file)")
    status.add_argument("--state", default=STATE_DEFAULT)
    status.add_argument("--json", action="store_true")
    k = sub.add_parser("keys", help="the encrypted keyfile (passphrase from AGENTPERP_KEYS_PASSPHRASE or a prompt)")
    k.add_argument("op", choices=["add", "list", "remove"])
    k.add_argument("--file", default=KEYFILE_DEFAULT)
    k.add_argument("--maker")
    k.add_argument("--exchange")
    k.add_argument("--api-key", help="add: the API key (the secret is read from AGENTPERP_KEYS_SECRET or a prompt)")
    args = parser.parse_args(argv)
    if args.action == "status":
        return _status(Path(args.state), args.json)
    return _keys(args)


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
