"""Reconcile the escrow with the engine: every on-chain agent (free, locked) and position
(size, entry, margins, status) against the engine's state, the config's totals against the
engine's books, and the vault's token balance against what the program says it holds.

Mapping (engine -> chain): an agent's ``free + held`` is the chain's ``free`` (RFQ and quote
holds are a venue-side reservation, not on chain); the sum of its margins in open positions
is the chain's ``locked``. An engine position that is no longer open must be closed,
liquidated or emergency-closed on chain with empty margins.

``main(argv)`` is ``agentperp escrow reconcile``: rebuild the state from the journal, then
compare it with the chain — a cluster through RPC, or (``--backend litesvm``, the default)
a fresh embedded chain onto which the whole journal is settled first, which checks that
the journal settles without a difference. Exit status 1 on any difference.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from solders.pubkey import Pubkey

from adapters.solana.backend import Backend, read_agents, read_config, read_positions
from adapters.solana.escrow import STATUS_OPEN


@dataclass(frozen=True)
class Difference:
    kind: str  # agent, position, config, vault
    key: str  # agent pubkey, position id, or the config/vault field
    field: str
    engine: int | str | None
    chain: int | str | None

    def __str__(self) -> str:
        return f"{self.kind} {self.key} {self.field}: engine {self.engine}, chain {self.chain}"


@dataclass
class Report:
    differences: list[Difference] = field(default_factory=list)
    agents_checked: int = 0
    positions_checked: int = 0
    vault_balance_e6: int = 0
    chain_held_e6: int = 0  # sum of agents' free + locked, plus fees and insurance

    @property
    def ok(self) -> bool:
        return not self.differences

    def to_json(self) -> dict:
        out = asdict(self)
        out["ok"] = self.ok
        return out


def reconcile(state, backend: Backend) -> Report:
    """Compare ``state`` with the chain behind ``backend`` (run inside no event loop)."""
    return asyncio.run(reconcile_async(state, backend))


async def reconcile_async(state, backend: Backend) -> Report:
    report = Report()
    diff = report.differences.append

    # -- the engine's view, in the chain's terms
    positions = state.positions
    n_pos = state.next_position_id - 1
    engine_pos: dict[int, dict] = {}
    locked: dict[str, int] = {}
    keys = state.agent_keys
    for pid, row in state.position_row.items():
        la, sa = keys[int(positions.long_agent[row])], keys[int(positions.short_agent[row])]
        ml, ms = int(positions.margin_long_e6[row]), int(positions.margin_short_e6[row])
        engine_pos[pid] = {"long_owner": la, "short_owner": sa, "size_e6": int(positions.size_e6[row]),
                           "entry_price_e8": int(positions.entry_price_e8[row]), "margin_long_e6": ml,
                           "margin_short_e6": ms, "market": int(positions.market[row])}
        locked[la] = locked.get(la, 0) + ml
        locked[sa] = locked.get(sa, 0) + ms

    # -- agents
    owners: list[Pubkey] = []
    names: list[str] = []
    for agent in keys:
        try:
            owners.append(Pubkey.from_string(agent))
            names.append(agent)
        except ValueError:
            diff(Difference("agent", agent, "key", agent, "not a Solana public key"))
    chain_agents = await read_agents(backend, owners)
    for agent, chain in zip(names, chain_agents):
        row = state.agent_row[agent]
        free = int(state.agents.free_e6[row]) + int(state.agents.held_e6[row])
        lock = locked.get(agent, 0)
        report.agents_checked += 1
        if chain is None:
            if free or lock:
                diff(Difference("agent", agent, "account", "present", "missing"))
            continue
        if chain.free_e6 != free:
            diff(Difference("agent", agent, "free_e6", free, chain.free_e6))
        if chain.locked_e6 != lock:
            diff(Difference("agent", agent, "locked_e6", lock, chain.locked_e6))

    # -- positions (ids are dense from 1)
    ids = list(range(1, n_pos + 1))
    chain_positions = await read_positions(backend, ids)
    open_margins = 0
    for pid, chain in zip(ids, chain_positions):
        report.positions_checked += 1
        want = engine_pos.get(pid)
        if chain is None:
            diff(Difference("position", str(pid), "account", "open" if want else "closed", "missing"))
            continue
        if chain.status == STATUS_OPEN:
            open_margins += chain.margin_long_e6 + chain.margin_short_e6
        if want is None:
            if chain.status == STATUS_OPEN or chain.margin_long_e6 or chain.margin_short_e6:
                diff(Difference("position", str(pid), "status", "closed", f"status {chain.status}, margins "
                                f"{chain.margin_long_e6}/{chain.margin_short_e6}"))
            continue
        if chain.status != STATUS_OPEN:
            diff(Difference("position", str(pid), "status", "open", chain.status))
        got = {"long_owner": str(chain.long_owner), "short_owner": str(chain.short_owner), "size_e6": chain.size_e6,
               "entry_price_e8": chain.entry_price_e8, "margin_long_e6": chain.margin_long_e6,
               "margin_short_e6": chain.margin_short_e6, "market": chain.market}
        for name, value in want.items():
            if got[name] != value:
                diff(Difference("position", str(pid), name, value, got[name]))

    # -- the books and the vault
    cfg = await read_config(backend)
    if cfg is None:
        diff(Difference("config", "config", "account", "present", "missing"))
        return report
    for name, engine_value, chain_value in (
            ("fees_e6", state.fees_e6, cfg.fees_e6), ("insurance_e6", state.insurance_e6, cfg.insurance_e6),
            ("bad_debt_e6", state.bad_debt_e6, cfg.bad_debt_e6),
            ("deposited_e6", state.deposited_e6, cfg.total_deposited_e6),
            ("withdrawn_e6", state.withdrawn_e6, cfg.total_withdrawn_e6)):
        if engine_value != chain_value:
            diff(Difference("config", "config", name, engine_value, chain_value))
    chain_locked = sum(a.locked_e6 for a in chain_agents if a is not None)
    report.chain_held_e6 = (sum(a.free_e6 + a.locked_e6 for a in chain_agents if a is not None)
                            + cfg.fees_e6 + cfg.insurance_e6)
    report.vault_balance_e6 = await backend.token_balance(backend.vault)
    if report.vault_balance_e6 != report.chain_held_e6:
        diff(Difference("vault", str(backend.vault), "balance_e6", report.chain_held_e6, report.vault_balance_e6))
    if report.vault_balance_e6 != cfg.total_deposited_e6 - cfg.total_withdrawn_e6:
        diff(Difference("vault", str(backend.vault), "deposited - withdrawn",
                        cfg.total_deposited_e6 - cfg.total_withdrawn_e6, report.vault_balance_e6))
    if chain_locked != open_margins:
        diff(Difference("vault", "chain", "agents' locked vs open margins", open_margins, chain_locked))
    return report


# ---------------------------------------------------------------------- CLI
def main(argv: list[str] | None, *, idl, litesvm_backend) -> int:
    """``agentperp escrow reconcile``; 0 when the chain and the journal agree, 1 otherwise.

    ``idl``: the program's IDL; ``litesvm_backend()``: a fresh embedded chain (both given by
    ``venue``, which owns the program's files: adapters never import ``programs``)."""
    parser = argparse.ArgumentParser(prog="agentperp escrow reconcile", description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--data-dir", type=Path, help="the venue's data dir (its journal is DATA_DIR/journal)")
    where.add_argument("--journal", type=Path, help="a journal directory")
    where.add_argument("--url", help="a running venue's HTTP base URL (e.g. http://127.0.0.1:7401): its live chain "
                                     "against its engine, by GET /escrow/reconcile")
    parser.add_argument("--backend", choices=("litesvm", "rpc"), default="litesvm")
    parser.add_argument("--rpc-url", help="rpc backend: the cluster's JSON-RPC URL")
    parser.add_argument("--program-id", help="rpc backend: the escrow program id")
    parser.add_argument("--vault", help="rpc backend: the vault token account")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)

    if args.url:
        return _live(args.url, args.json)
    from engine.state import State
    from ledger.genesis import journal_config
    from ledger.recovery import JOURNAL_DIR, replay_into

    journal_dir = args.journal if args.journal else args.data_dir / JOURNAL_DIR
    if not journal_dir.is_dir():
        print(f"no journal at {journal_dir}", file=sys.stderr)
        return 2
    # The journal's own configuration (its genesis record); an older journal without one is
    # read with the defaults, and journal_config logs a notice saying so.
    state = State(journal_config(journal_dir).config)
    replay_into(state, journal_dir)
    report = asyncio.run(_reconcile_cli(args, state, journal_dir, idl, litesvm_backend))
    if args.json:
        print(json.dumps(report.to_json(), indent=2, default=str))
    else:
        print(f"{report.agents_checked} agents, {report.positions_checked} positions checked; vault "
              f"{report.vault_balance_e6} µUSDC, held {report.chain_held_e6} µUSDC")
        for d in report.differences:
            print(f"DIFFERENCE {d}")
        print("ok: no difference" if report.ok else f"{len(report.differences)} difference(s)")
    return 0 if report.ok else 1


def _live(url: str, as_json: bool) -> int:
    """``--url``: the running venue reconciles its live chain (at its settlement checkpoint)."""
    import urllib.error
    import urllib.request
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/escrow/reconcile", timeout=300) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as error:
        print(f"{url}: {error.code} {error.read().decode(errors='replace')}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"{url}: {error}", file=sys.stderr)
        return 2
    if as_json:
        print(json.dumps(body, indent=2))
    else:
        print(f"live chain ({body['backend']}) at seq {body['seq']:,} (engine at {body['engine_seq']:,}, "
              f"settlement {body['lag_seq']:,} behind): {body['agents_checked']} agents, "
              f"{body['positions_checked']} positions checked; vault {body['vault_balance_e6']} µUSDC, "
              f"held {body['chain_held_e6']} µUSDC")
        for d in body["differences"]:
            print(f"DIFFERENCE {d['kind']} {d['key']} {d['field']}: engine {d['engine']}, chain {d['chain']}")
        for item in body["unmirrored"]:
            print(f"NOT MIRRORED seq {item['seq']} {item['event']}: {item['reason']}")
        print("ok: no difference" if body["ok"] else f"{len(body['differences'])} difference(s)")
    return 0 if body["ok"] else 1


async def _reconcile_cli(args, state, journal_dir: Path, idl, litesvm_backend) -> Report:
    if args.backend == "rpc":
        from adapters.solana.backend_rpc import RpcBackend
        if not (args.rpc_url and args.program_id and args.vault):
            raise SystemExit("--backend rpc needs --rpc-url, --program-id and --vault")
        from adapters.solana.escrow import EscrowProgram
        backend = RpcBackend.for_reading(args.rpc_url, EscrowProgram(Pubkey.from_string(args.program_id), idl),
                                         Pubkey.from_string(args.vault))
        try:
            return await reconcile_async(state, backend)
        finally:
            await backend.close()
    import tempfile

    from adapters.solana.checkpoint import CheckpointStore
    from adapters.solana.projection import SettlementProjection
    backend = litesvm_backend()
    with tempfile.TemporaryDirectory() as tmp:
        projection = SettlementProjection(backend, CheckpointStore(Path(tmp) / "settlement.json"))
        stats = await projection.run(journal_dir)
    report = await reconcile_async(state, backend)
    for item in projection.checkpoint.unmirrored:
        report.differences.append(Difference("journal", str(item["seq"]), item["event"], "mirrored",
                                             f"not mirrored: {item['reason']}"))
    del stats
    return report


