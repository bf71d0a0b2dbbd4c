"""The settlement projection: journal events -> escrow transactions.

Reads the journal after its checkpoint, turns every money event into the escrow
instructions that reproduce it on chain (see README.md for the table), sends them through
a backend and advances the checkpoint.

Idempotent, so it can be killed anywhere and run again:
- every venue-signed instruction carries the event's journal ``seq``; the program refuses
  one that is not newer than what the position (or, for a withdrawal, the agent) has seen
  with ``AlreadyApplied``, and a second lock of a position with ``PositionExists``: both
  mean "already done";
- a mirrored (faucet) deposit has no such guard: it carries its seq in a memo the backend
  looks up before sending (embedded chain), and its signature is written to the
  checkpoint *before* it is sent; on restart the chain is asked whether it landed.
So the checkpoint may lag the chain (it is saved every ``checkpoint_every_events`` and at
the end of a run) without anything being applied twice or skipped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from adapters.solana.backend import Backend, SignatureStatus, TransientError, Unmirrorable, read_positions
from adapters.solana.checkpoint import Checkpoint, CheckpointStore, Pending
from adapters.solana.escrow import (ALREADY_APPLIED, POSITION_EXISTS, POSITION_NOT_OPEN, SIDE_LONG,
                                    SIDE_SHORT, pubkey_of)
from adapters.solana.retry import Backoff, with_backoff
from engine import events as ev
from ledger.journal import JournalReader
from ledger.records import decode_record

log = logging.getLogger("agentperp.settlement")

CHECKPOINT_EVERY_EVENTS_DEFAULT = 256
FUNDING_IXS_PER_TX_MAX = 5  # settle_funding instructions packed per transaction (1232-byte limit)
PARTIES_CACHED_MAX = 100_000

SETTLED_EVENTS = (ev.Deposited, ev.Withdrawn, ev.PositionOpened, ev.FundingSettled, ev.PositionClosed,
                  ev.PositionLiquidated, ev.MarginChanged)
_MIRRORED = frozenset((ev.OracleUpdated, *SETTLED_EVENTS))  # the event types settle() does more than count


class SettlementHalted(Exception):
    """An event could not be mirrored and the policy is ``halt``."""


class ProgramRefused(SettlementHalted):
    """The program refused an event's transaction and the policy for program errors is
    ``halt``: settlement stops at that seq (the runner retries it with backoff; nothing is
    skipped). The message names the seq, the instruction and the program's error."""


@dataclass
class Action:
    """One transaction's worth of instructions for the event at ``seq``."""

    seq: int
    index: int  # position among the event's actions (the pending-transaction key)
    what: str
    ixs: list[Instruction]
    signers: list[Keypair] = field(default_factory=list)
    unsigned: list[Pubkey] = field(default_factory=list)
    done_codes: frozenset[int] = frozenset()
    dedup_by_signature: bool = False  # no on-chain guard: record the signature before sending
    parts: list[Action] | None = None  # a packed action, split into these if it fails
    position_id: int | None = None  # for a venue instruction on an existing position
    opened_as: tuple | None = None  # lock_position: (long, short, market, entry) the position on chain must have


@dataclass
class RunStats:
    events_read: int = 0
    events_settled: int = 0  # events that needed at least one transaction
    transactions: int = 0
    already_applied: int = 0
    unmirrored: int = 0
    last_seq: int = 0


class SettlementProjection:
    def __init__(self, backend: Backend, store: CheckpointStore, *, backoff: Backoff = Backoff(),
                 on_unmirrorable: str = "record", checkpoint_every_events: int = CHECKPOINT_EVERY_EVENTS_DEFAULT,
                 sleep=asyncio.sleep, on_program_error: str | None = None):
        """``on_unmirrorable``: an event this chain cannot express (an agent id that is no
        pubkey, a maker fee, a market without a feed) is recorded and passed, or halts.
        ``on_program_error`` (default: the same): a transaction the program refused is
        recorded as unmirrored and passed, or halts (``ProgramRefused``) — the running venue
        halts, so settlement stops at that seq and is retried, never skipped."""
        on_program_error = on_unmirrorable if on_program_error is None else on_program_error
        if on_unmirrorable not in ("record", "halt") or on_program_error not in ("record", "halt"):
            raise ValueError("on_unmirrorable and on_program_error are 'record' or 'halt'")
        self.on_program_error = on_program_error
        self.backend = backend
        self.store = store
        self.backoff = backoff
        self.on_unmirrorable = on_unmirrorable
        self.checkpoint_every_events = checkpoint_every_events
        self.sleep = sleep
        self.checkpoint: Checkpoint | None = None
        self._landed: tuple[int, int] | None = None  # (seq, index) of a pending tx found landed
        self._parties: dict[int, tuple[Pubkey, Pubkey, int]] = {}  # position id -> (long, short, market)
        self.stats = RunStats()

    # ------------------------------------------------------------------ running
    async def start(self) -> Checkpoint:
        """Load the checkpoint, void it if it belongs to another chain, resolve a pending send."""
        cp = self.store.load()
        chain_id = await with_backoff(self.backend.chain_id, self.backoff, "chain id", self.sleep)
        if cp.chain_id != chain_id:
            if cp.chain_id:
                log.warning("checkpoint is for chain %s, now on %s: settling again from seq 0", cp.chain_id, chain_id)
            cp = Checkpoint(chain_id=chain_id)
            self.store.save(cp)
        if cp.pending is not None:
            p = cp.pending
            status = await with_backoff(lambda: self._pending_status(p), self.backoff, "pending signature",
                                        self.sleep)
            if status == SignatureStatus.LANDED_OK:
                self._landed = (p.seq, p.index)
            log.info("pending transaction of seq %d (%s): %s", p.seq, p.signature, status)
        self.checkpoint = cp
        self.stats.last_seq = cp.seq
        return cp

    async def _pending_status(self, p: Pending) -> str:
        status = await self.backend.signature_status(p.signature, p.last_valid_block_height)
        if status == SignatureStatus.UNKNOWN:
            raise TransientError(f"transaction {p.signature} may still land")
        return status

    async def run(self, journal_dir: Path | str, *, until_seq: int | None = None) -> RunStats:
        """Settle every journaled event after the checkpoint (up to ``until_seq``)."""
        cp = await self.start()
        try:
            for event in journal_events(journal_dir, cp.seq):
                if until_seq is not None and event.seq > until_seq:
                    break
                await self.settle(event)
        finally:
            if self.checkpoint is not None:
                self.store.save(self.checkpoint)
        return self.stats

    async def settle(self, event) -> None:
        """Mirror one event (its seq must follow the checkpoint) and advance the checkpoint."""
        cp = self.checkpoint
        assert cp is not None, "call start() first"
        assert event.seq > cp.seq, f"event {event.seq} is not after the checkpoint {cp.seq}"
        self.stats.events_read += 1
        if type(event) is ev.OracleUpdated:
            # The program checks a liquidation against its oracle account: keep it at the
            # venue's oracle, in journal order (a cluster's Pyth push oracle does it there).
            await self.backend.post_price(event.market, event.price_e8, event.conf_e8, event.publish_ns)
        elif isinstance(event, SETTLED_EVENTS):
            try:
                await self.backend.set_time(event.ts_ns)
                actions = await self._actions(event)
                for action in actions:
                    await self._execute(action)
                if actions:
                    self.stats.events_settled += 1
            except Unmirrorable as why:
                self._unmirrored(event.seq, type(event).__name__, str(why))
        self._moved_to(event.seq, self.stats.events_read - 1)

    async def settle_all(self, events: list) -> None:
        """``settle`` each of ``events`` (consecutive seqs after the checkpoint) in turn; those
        with nothing to mirror (most: quotes and RFQs) are passed over a stretch at a time.
        The venue's sink runs under the sequencer's GIL, and a call per such event cost it
        ~1.3 µs of it an event."""
        if not events:
            return
        first = events[0].seq
        assert events[-1].seq - first == len(events) - 1, f"events {first}..{events[-1].seq} have a gap"
        assert self.checkpoint is not None and first > self.checkpoint.seq, (first, self.checkpoint)
        start = 0
        for i in [i for i, event in enumerate(events) if type(event) in _MIRRORED]:
            self._pass_over(events, start, i)
            await self.settle(events[i])
            start = i + 1
        self._pass_over(events, start, len(events))

    def _pass_over(self, events: list, start: int, end: int) -> None:
        """``events[start:end]`` have nothing to mirror: the checkpoint moves past them."""
        if start < end:
            read_before = self.stats.events_read
            self.stats.events_read += end - start
            self._moved_to(events[end - 1].seq, read_before)

    def _moved_to(self, seq: int, read_before: int) -> None:
        """Every event up to ``seq`` is mirrored; saved each ``checkpoint_every_events`` read."""
        self.checkpoint.seq = self.stats.last_seq = seq
        every = self.checkpoint_every_events
        if read_before // every != self.stats.events_read // every:
            self.store.save(self.checkpoint)

    def _unmirrored(self, seq: int, what: str, reason: str) -> None:
        if self.on_unmirrorable == "halt":
            raise SettlementHalted(f"seq {seq} {what}: {reason}")
        log.error("not mirrored: seq %d %s: %s", seq, what, reason)
        self.stats.unmirrored += 1
        self.checkpoint.note_unmirrored(seq, what, reason)

    # ------------------------------------------------------------------ sending
    async def _execute(self, action: Action) -> None:
        if self._landed == (action.seq, action.index):
            self._landed = None
            self.stats.already_applied += 1
            return
        outcome = await with_backoff(lambda: self._send(action), self.backoff, action.what, self.sleep)
        self.stats.transactions += 1
        if outcome.ok:
            return
        if outcome.custom_code in action.done_codes:
            if action.opened_as is not None:
                await self._same_position(action)
            self.stats.already_applied += 1
            return
        if outcome.custom_code == self.backend.escrow.errors[POSITION_NOT_OPEN] and action.position_id is not None:
            # The program checks the status before the replay guard: a position that this
            # very event (or a later one) closed answers PositionNotOpen, not AlreadyApplied.
            chain = (await read_positions(self.backend, [action.position_id]))[0]
            if chain is not None and chain.last_seq >= action.seq:
                self.stats.already_applied += 1
                return
        if action.parts:  # a packed transaction failed as a whole: settle each part alone
            for part in action.parts:
                await self._execute(part)
            return
        name = self.backend.escrow.error_names.get(outcome.custom_code, "") if outcome.custom_code is not None else ""
        detail = next((line for line in reversed(outcome.logs) if "Program log:" in line), "")
        reason = f"{name or outcome.error} {detail}".strip()
        if self.on_program_error == "halt":
            raise ProgramRefused(f"seq {action.seq} {action.what}: the program refused it: {reason}")
        self._unmirrored(action.seq, action.what, reason)

    async def _same_position(self, action: Action) -> None:
        """A position that exists already must be this journal's: a chain settled from another
        journal (a second data dir on one dev chain) has other positions under the same ids."""
        chain = (await read_positions(self.backend, [action.position_id]))[0]
        found = None if chain is None else (chain.long_owner, chain.short_owner, chain.market, chain.entry_price_e8)
        if found != action.opened_as:
            raise SettlementHalted(
                f"seq {action.seq} {action.what}: position {action.position_id} on chain is another journal's "
                f"(long, short, market, entry {found} != {action.opened_as}): this chain was settled from another "
                f"data dir; give this one a fresh chain")

    async def _send(self, action: Action):
        built = await self.backend.build(action.ixs, action.signers, action.unsigned)
        if action.dedup_by_signature:
            cp = self.checkpoint
            cp.seq = action.seq - 1 if cp.seq < action.seq else cp.seq
            cp.pending = Pending(action.seq, action.index, str(built.signature), built.last_valid_block_height)
            self.store.save(cp)
        return await self.backend.submit(built)

    # ------------------------------------------------------------------ mapping
    async def _parties_of(self, position_id: int) -> tuple[Pubkey, Pubkey, int]:
        found = self._parties.get(position_id)
        if found is None:
            chain = (await read_positions(self.backend, [position_id]))[0]
            if chain is None:
                raise Unmirrorable(f"position {position_id} is not on chain")
            found = (chain.long_owner, chain.short_owner, chain.market)
            self._remember(position_id, found)
        return found

    def _remember(self, position_id: int, parties: tuple[Pubkey, Pubkey, int]) -> None:
        if len(self._parties) >= PARTIES_CACHED_MAX:
            self._parties.clear()  # a cache: the chain has the truth
        self._parties[position_id] = parties

    async def _actions(self, event) -> list[Action]:
        b, esc = self.backend, self.backend.escrow
        auth = b.authority
        guard = frozenset({esc.errors[ALREADY_APPLIED]})
        t = type(event)
        if t is ev.Deposited:
            if await b.deposit_on_chain(event.ref):
                return []  # the watcher saw it on chain: the escrow already holds it
            if await b.dev_deposit_landed(event.seq):
                self.stats.already_applied += 1
                return []
            owner = _key(event.agent)
            ixs, signers, unsigned = await b.dev_deposit(owner, event.amount_e6, event.seq)
            return [Action(event.seq, 0, f"deposit {event.agent} {event.amount_e6}", ixs, signers, unsigned,
                           dedup_by_signature=True)]
        if t is ev.Withdrawn:
            owner = _key(event.agent)
            dest, setup = await b.withdraw_destination(owner, event.destination)
            signer = b.signer_for(owner)
            ix = esc.withdraw(auth.pubkey(), owner, b.vault, dest, event.seq, event.amount_e6)
            return [Action(event.seq, 0, f"withdraw {event.agent} {event.amount_e6}", setup + [ix],
                           [auth] + ([signer] if signer else []), [] if signer else [owner], guard)]
        if t is ev.PositionOpened:
            long, short = _key(event.long_agent), _key(event.short_agent)
            self._remember(event.position_id, (long, short, event.market))
            if event.maker_fee_e6:
                raise Unmirrorable(f"maker fee {event.maker_fee_e6}: lock_position charges the taker's fee only")
            ix = esc.lock_position(auth.pubkey(), position_id=event.position_id, seq=event.seq, market=event.market,
                                   taker_is_long=event.taker_side == "long", long_owner=long, short_owner=short,
                                   size_e6=event.size_e6, entry_price_e8=event.entry_price_e8,
                                   margin_long_e6=event.margin_long_e6, margin_short_e6=event.margin_short_e6,
                                   fee_e6=event.taker_fee_e6, funding_rate_e9=event.funding_rate_e9,
                                   opened_ns=event.ts_ns)
            return [Action(event.seq, 0, f"lock_position {event.position_id}", [ix], [auth],
                           done_codes=frozenset({esc.errors[POSITION_EXISTS]}), position_id=event.position_id,
                           opened_as=(long, short, event.market, event.entry_price_e8))]
        if t is ev.FundingSettled:
            singles: list[Action] = []
            for i, (pid, amount) in enumerate(zip(event.position_ids, event.long_to_short_e6)):
                try:
                    long, short, _ = await self._parties_of(pid)
                except Unmirrorable as why:
                    self._unmirrored(event.seq, f"FundingSettled position {pid}", str(why))
                    continue
                ix = esc.settle_funding(auth.pubkey(), pid, long, short, seq=event.seq, long_to_short_e6=amount,
                                        until_ns=event.boundary_ns)
                singles.append(Action(event.seq, i, f"settle_funding {pid}", [ix], [auth], done_codes=guard,
                                      position_id=pid))
            return _packed(singles, FUNDING_IXS_PER_TX_MAX)
        if t is ev.PositionClosed:
            long, short, _ = await self._parties_of(event.position_id)
            ix = esc.close_position(auth.pubkey(), event.position_id, long, short, seq=event.seq,
                                    fraction_bps=event.fraction_bps, exit_price_e8=event.price_e8,
                                    funding_long_to_short_e6=event.funding_long_to_short_e6,
                                    pnl_long_e6=event.pnl_long_e6, until_ns=event.ts_ns)
            return [Action(event.seq, 0, f"close_position {event.position_id}", [ix], [auth], done_codes=guard,
                           position_id=event.position_id)]
        if t is ev.PositionLiquidated:
            long, short, market = await self._parties_of(event.position_id)
            oracle = await b.price_account(market, event.price_e8, event.publish_ns)
            ix = esc.liquidate(auth.pubkey(), event.position_id, long, short, seq=event.seq,
                               side=SIDE_LONG if event.side == "long" else SIDE_SHORT, exit_price_e8=event.price_e8,
                               funding_long_to_short_e6=event.funding_long_to_short_e6,
                               pnl_long_e6=event.pnl_long_e6, until_ns=event.ts_ns,
                               keeper=_key(event.keeper) if event.keeper else None, price_update=oracle)
            return [Action(event.seq, 0, f"liquidate {event.position_id}", [ix], [auth], done_codes=guard,
                           position_id=event.position_id)]
        if t is ev.MarginChanged:
            long, short, _ = await self._parties_of(event.position_id)
            ix = esc.adjust_margin(auth.pubkey(), event.position_id, long, short, seq=event.seq,
                                   side=SIDE_LONG if event.side == "long" else SIDE_SHORT, delta_e6=event.delta_e6)
            return [Action(event.seq, 0, f"adjust_margin {event.position_id} {event.side} {event.delta_e6:+d}", [ix],
                           [auth], done_codes=guard, position_id=event.position_id)]
        return []


def _key(agent: str) -> Pubkey:
    try:
        return pubkey_of(agent)
    except ValueError as error:
        raise Unmirrorable(f"agent {agent!r} is not a Solana public key") from error


def _packed(singles: list[Action], per_tx: int) -> list[Action]:
    if per_tx <= 1:
        return singles
    out = []
    for start in range(0, len(singles), per_tx):
        chunk = singles[start:start + per_tx]
        if len(chunk) == 1:
            out.append(chunk[0])
            continue
        first = chunk[0]
        # Index space: packed actions take indexes after every single one (never pending:
        # funding is guarded on chain, so no index is ever recorded for these).
        out.append(Action(first.seq, 1_000_000 + start, f"{len(chunk)} x settle_funding",
                          [a.ixs[0] for a in chunk], first.signers, done_codes=frozenset(), parts=chunk))
    return out


def journal_events(journal_dir: Path | str, after_seq: int) -> Iterator:
    """Every event of the journal with seq > ``after_seq``, in order."""
    for header, payload in JournalReader(journal_dir).read(from_seq=after_seq + 1):
        if header.last_seq <= after_seq:
            continue
        for event in decode_record(payload).events:
            if event.seq > after_seq:
                yield event
