"""The escape hatch: one party closes a position alone, without the venue.

The escrow program's ``emergency_close`` lets either owner of a position, signing alone,
close it at the Pyth price once the venue has left the position untouched for the config's
``escape_delay_s`` (funding accrued since the last settlement, then the PnL at that price,
then both margins back to their owners' free balances: ``programs/escrow/README.md``).

``close(backend, position_id, party, price_update)`` checks first what the program will
check — the position is open, the signer is a party, the delay has passed on the chain's
clock (from the config account and the position's ``last_settled_ts``) — and refuses with
the program's own error name as the code, a hint and the time left; then sends the
party-signed instruction and reads both parties' balances before and after.

``main(argv, ...)`` is ``agentperp escrow emergency-close``:
- ``--rpc-url``: the real escape hatch against a chain that outlives the venue;
- ``--data-dir``: a demonstration — the venue's embedded chain rebuilt from the journal into
  a throwaway LiteSVM (as the venue does at each start), its clock moved past the delay
  (``--after-delay``), the journal's last oracle price posted at that time, the position
  closed by the one party. Nothing leaves the process; the venue's data is not touched.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from solders.clock import Clock
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from adapters.solana.backend import Backend, read_agents, read_config, read_positions
from adapters.solana.escrow import (POSITION_NOT_OPEN, STATUS_CLOSED, STATUS_EMERGENCY_CLOSED, STATUS_LIQUIDATED,
                                    STATUS_OPEN, decode_price_update)

NS = 1_000_000_000
SYSVAR_CLOCK = Pubkey.from_string("SysvarC1ock11111111111111111111111111111111")
STATUS_NAMES = {STATUS_OPEN: "open", STATUS_CLOSED: "closed", STATUS_LIQUIDATED: "liquidated",
                STATUS_EMERGENCY_CLOSED: "emergency-closed"}
# The program's errors a caller can act on, and what to do (the code is the IDL name).
HINTS = {
    "EscapeTooEarly": "the hatch opens escape_delay_s after the venue last touched the position; wait, or on "
                      "the embedded demo pass --after-delay",
    "NotParty": "sign with the keypair of the position's long or short owner (--keypair, --demo-agent)",
    "PositionNotOpen": "the position is already closed, liquidated or emergency-closed on chain",
    "OracleStale": "the price account must hold a price no older than the config's oracle_max_age_s on the "
                   "chain's clock (a cluster's Pyth push oracle keeps it fresh)",
    "OracleWrongFeed": "pass the PriceUpdateV2 account of the position's market (--price-account)",
    "OracleWrongOwner": "pass an account written by the Pyth receiver (--price-account)",
    "OracleUncertain": "the price's confidence is wider than the market allows; try again with a newer price",
}


class Refused(Exception):
    """The escape hatch refused: ``code`` is the program's error name."""

    def __init__(self, code: str, message: str, detail: dict | None = None):
        super().__init__(message)
        self.code, self.message, self.detail = code, message, detail or {}

    def to_json(self) -> dict:
        return {"ok": False, "code": self.code, "message": self.message, "hint": HINTS.get(self.code, ""),
                "detail": self.detail}


@dataclass
class Closed:
    """What the program did: each side's balances before and after, the price it used."""

    position_id: int
    party: str
    side: str  # the party's side: long | short
    signature: str
    chain_time_s: int
    price: dict  # the price account: price, conf, exponent, publish_time_s, account
    sides: dict = field(default_factory=dict)  # long|short -> owner, free/locked before/after, margin_before
    status_after: str = ""

    def to_json(self) -> dict:
        return {"ok": True, "position_id": self.position_id, "party": self.party, "side": self.side,
                "signature": self.signature, "chain_time_s": self.chain_time_s, "price": self.price,
                "sides": self.sides, "status_after": self.status_after}


async def chain_time_s(backend: Backend) -> int:
    """The chain's clock (the Clock sysvar), as the program reads it."""
    raw = (await backend.get_raw_accounts([SYSVAR_CLOCK]))[0]
    if raw is None:
        raise RuntimeError("the chain has no Clock sysvar account")
    return Clock.from_bytes(raw[1]).unix_timestamp


async def open_at(backend: Backend, position_id: int) -> tuple:
    """(position, config, hatch opens at, chain now), refusing a position that is not open."""
    position = (await read_positions(backend, [position_id]))[0]
    if position is None:
        raise Refused(POSITION_NOT_OPEN, f"position {position_id} is not on this chain")
    if position.status != STATUS_OPEN:
        raise Refused(POSITION_NOT_OPEN, f"position {position_id} is {STATUS_NAMES.get(position.status, position.status)}"
                      " on chain", {"status": STATUS_NAMES.get(position.status, position.status)})
    config = await read_config(backend)
    if config is None:
        raise RuntimeError("the escrow config account is missing on this chain")
    return position, config, position.last_settled_ts + config.escape_delay_s, await chain_time_s(backend)


async def check(backend: Backend, position_id: int, party: Pubkey):
    """What the program will check, before anything is sent: (position, config, now)."""
    position, config, opens_at, now = await open_at(backend, position_id)
    if party not in (position.long_owner, position.short_owner):
        raise Refused("NotParty", f"{party} is not a party to position {position_id} (long {position.long_owner}, "
                                  f"short {position.short_owner})")
    if now < opens_at:
        left = opens_at - now
        raise Refused("EscapeTooEarly", f"the escape hatch of position {position_id} opens in {_duration(left)} "
                                        f"at {_utc(opens_at)} (the venue last touched it at {_utc(position.last_settled_ts)}"
                                        f", the delay is {config.escape_delay_s} s; the chain's clock says "
                                        f"{_utc(now)})",
                      {"time_left_s": left, "opens_at_s": opens_at, "chain_time_s": now,
                       "last_settled_ts": position.last_settled_ts, "escape_delay_s": config.escape_delay_s})
    return position, config, now


async def close(backend: Backend, position_id: int, party: Keypair, price_update: Pubkey) -> Closed:
    """Close ``position_id`` by ``party`` alone at the price in ``price_update``; Refused
    with the program's error name when it may not."""
    owner = party.pubkey()
    position, _, now = await check(backend, position_id, owner)
    owners = [position.long_owner, position.short_owner]
    before = await read_agents(backend, owners)
    ix = backend.escrow.emergency_close(owner, position_id, position.long_owner, position.short_owner, price_update)
    outcome = await backend.submit(await backend.build([ix], [party]))
    if not outcome.ok:
        name = backend.escrow.error_names.get(outcome.custom_code, "") if outcome.custom_code is not None else ""
        said = next((line for line in reversed(outcome.logs) if "Program log:" in line), "")
        raise Refused(name or "TransactionFailed", f"the program refused: {name or outcome.error} {said}".strip(),
                      {"signature": outcome.signature})
    after = await read_agents(backend, owners)
    closed_position = (await read_positions(backend, [position_id]))[0]
    raw = (await backend.get_raw_accounts([price_update]))[0]
    price, conf, exponent, publish_time = decode_price_update(raw[1])
    sides = {}
    for side, key, b, a, margin in (("long", position.long_owner, before[0], after[0], position.margin_long_e6),
                                    ("short", position.short_owner, before[1], after[1], position.margin_short_e6)):
        sides[side] = {"owner": str(key), "margin_e6_before": margin,
                       "free_e6_before": b.free_e6, "free_e6_after": a.free_e6,
                       "locked_e6_before": b.locked_e6, "locked_e6_after": a.locked_e6,
                       "returned_e6": a.free_e6 - b.free_e6}
    return Closed(position_id, str(owner), "long" if owner == position.long_owner else "short", outcome.signature,
                  now, {"account": str(price_update), "price": price, "conf": conf, "exponent": exponent,
                        "publish_time_s": publish_time},
                  sides, STATUS_NAMES.get(closed_position.status, str(closed_position.status)))


def _utc(unix_s: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(unix_s))


def _duration(seconds: int) -> str:
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    return (f"{days}d " if days else "") + f"{hours:02d}:{minutes:02d}:{secs:02d}"


# ---------------------------------------------------------------------- the embedded demonstration
async def demonstrate(backend, journal_dir: Path, position_id: int, party: Keypair, *, after_delay: bool,
                      checkpoint_path: Path) -> tuple[dict, Closed]:
    """Settle the whole journal onto ``backend`` (a fresh embedded chain, ``LiteSvmBackend``),
    move its clock past the delay if ``after_delay``, post the market's last journal price at
    that time (the dev chain's stand-in for Pyth), then ``close``. (rebuild figures, Closed)."""
    from adapters.solana.checkpoint import CheckpointStore
    from adapters.solana.projection import SettlementProjection

    started = time.perf_counter()
    projection = SettlementProjection(backend, CheckpointStore(checkpoint_path), on_unmirrorable="record")
    stats = await projection.run(journal_dir)
    rebuilt = {"events_read": stats.events_read, "events_settled": stats.events_settled,
               "transactions": stats.transactions, "unmirrored": stats.unmirrored,
               "seconds": round(time.perf_counter() - started, 3)}
    position, _, opens_at, now = await open_at(backend, position_id)
    if after_delay and now < opens_at:
        await backend.set_time(opens_at * NS)
        now = opens_at
    posted = backend.posted.get(position.market)
    if posted is None:
        raise Refused("OracleStale", f"the journal has no oracle price for market {position.market}")
    await backend.post_price(position.market, posted[0], 0, now * NS)
    return rebuilt, await close(backend, position_id, party, await backend.price_account(position.market, posted[0],
                                                                                         now * NS))


# ---------------------------------------------------------------------- CLI
def main(argv: list[str] | None, *, idl, program_id: Pubkey, litesvm_backend, demo_keypair,
         demo_seed: int) -> int:
    """``agentperp escrow emergency-close``: 0 closed, 1 refused, 2 bad usage.

    ``idl``, ``program_id``, ``litesvm_backend()`` (a fresh embedded chain) and
    ``demo_keypair(seed, role, index)`` are given by ``venue`` (adapters never import
    ``programs`` or ``agents``)."""
    parser = argparse.ArgumentParser(prog="agentperp escrow emergency-close",
                                     description="The escape hatch: one party closes a position alone at the oracle "
                                                 "price, once the venue has left it untouched for the program's "
                                                 "escape delay.")
    parser.add_argument("--position", type=int, required=True, metavar="ID", help="the position id")
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--keypair", type=Path, metavar="FILE", help="the party's keypair (solana-keygen JSON)")
    who.add_argument("--demo-agent", metavar="ROLE[:INDEX]",
                     help="a demo agent's keypair (trader:0, maker-balanced, keeper, ...), from --demo-seed")
    parser.add_argument("--demo-seed", type=int, default=demo_seed, help=f"[demo] seed (default {demo_seed})")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--rpc-url", help="a chain that outlives the venue (its JSON-RPC URL): the real escape hatch")
    where.add_argument("--data-dir", type=Path, help="demonstration: the venue's embedded chain rebuilt from "
                                                     "DATA_DIR/journal in a throwaway LiteSVM")
    parser.add_argument("--program-id", default=str(program_id), help=f"--rpc-url: the program (default {program_id})")
    parser.add_argument("--price-account", help="--rpc-url: the market's Pyth PriceUpdateV2 account")
    parser.add_argument("--after-delay", action="store_true",
                        help="--data-dir: move the throwaway chain's clock to when the hatch opens")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)

    try:
        party = _party(args, demo_keypair)
    except (OSError, ValueError) as error:
        print(f"agentperp escrow emergency-close: {error}", file=sys.stderr)
        return 2
    try:
        if args.rpc_url:
            if not args.price_account:
                parser.error("--rpc-url needs --price-account (the market's Pyth PriceUpdateV2 account)")
            closed = asyncio.run(_over_rpc(args, idl, party))
            rebuilt = None
        else:
            from ledger.recovery import JOURNAL_DIR

            journal_dir = args.data_dir / JOURNAL_DIR
            if not journal_dir.is_dir():
                print(f"agentperp escrow emergency-close: no journal at {journal_dir}", file=sys.stderr)
                return 2
            rebuilt, closed = _demonstration(args, journal_dir, party, litesvm_backend)
    except Refused as refused:
        out = refused.to_json()
        print(json.dumps(out, indent=2) if args.json else
              f"REFUSED {out['code']}: {out['message']}" + (f"\nhint: {out['hint']}" if out["hint"] else ""))
        return 1
    _print(closed, rebuilt, args.json)
    return 0


def _party(args, demo_keypair) -> Keypair:
    if args.keypair:
        return Keypair.from_bytes(bytes(json.loads(args.keypair.read_text())))
    role, _, index = args.demo_agent.partition(":")
    return demo_keypair(args.demo_seed, role, int(index or 0))


async def _over_rpc(args, idl, party: Keypair) -> Closed:
    from solana.rpc.async_api import AsyncClient

    from adapters.solana.backend_rpc import RpcBackend
    from adapters.solana.escrow import EscrowProgram

    escrow = EscrowProgram(Pubkey.from_string(args.program_id), idl)
    # The party alone: it signs and pays the fee; the vault is not touched (margins go to free).
    backend = RpcBackend(AsyncClient(args.rpc_url), escrow, Pubkey.default(), party, party)
    try:
        return await close(backend, args.position, party, Pubkey.from_string(args.price_account))
    finally:
        await backend.close()


def _demonstration(args, journal_dir: Path, party: Keypair, litesvm_backend):
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        return asyncio.run(demonstrate(litesvm_backend(), journal_dir, args.position, party,
                                       after_delay=args.after_delay, checkpoint_path=Path(tmp) / "settlement.json"))


def _print(closed: Closed, rebuilt: dict | None, as_json: bool) -> None:
    if as_json:
        out = closed.to_json()
        if rebuilt is not None:
            out["demonstration"] = True
            out["rebuilt"] = rebuilt
        print(json.dumps(out, indent=2))
        return
    if rebuilt is not None:
        print(f"DEMONSTRATION on a throwaway embedded chain: the journal settled onto a fresh LiteSVM "
              f"({rebuilt['events_settled']:,} events, {rebuilt['transactions']:,} transactions, "
              f"{rebuilt['seconds']} s), its clock at {_utc(closed.chain_time_s)}. It shows what the escrow "
              f"program guarantees: with the venue gone, one party alone closes at the oracle price after the "
              f"delay. No real chain and none of the venue's files were touched.")
    p = closed.price
    print(f"position {closed.position_id} {closed.status_after} by its {closed.side} party {closed.party} alone "
          f"(tx {closed.signature})")
    print(f"oracle price used: {p['price']}e{p['exponent']} (conf {p['conf']}, published {_utc(p['publish_time_s'])}) "
          f"from {p['account']}")
    for side, s in closed.sides.items():
        print(f"{side:5s} {s['owner']}: margin {s['margin_e6_before']} µUSDC; free {s['free_e6_before']} -> "
              f"{s['free_e6_after']} ({s['returned_e6']:+d}); locked {s['locked_e6_before']} -> {s['locked_e6_after']}")
