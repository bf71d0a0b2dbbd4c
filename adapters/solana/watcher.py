"""The deposit watcher: escrow ``deposit`` instructions that landed on chain become
``engine.commands.Deposit`` commands, the transaction signature as ``ref`` (a second
deposit instruction in the same transaction gets ``{signature}:{n}``). The engine treats a
repeated ref as a no-op, so delivering a deposit twice is harmless.

- ``parse_*``: pure translation of what a chain returns (RPC ``getTransaction`` JSON, or a
  solders message from the embedded chain) into ``DepositSeen``.
- ``RpcDepositWatcher``: polls ``getSignaturesForAddress`` newest-first down to its cursor
  (``WatchCursor``: what is already handled), fetches each new transaction with
  ``getTransaction`` and yields the deposits oldest first, at most ``per_poll_max``
  signatures a poll; the caller stores the cursor durably (``CursorStore``) after the
  commands are accepted.
- ``LiteSvmDepositWatcher``: in embedded mode agents' own transactions reach the chain
  through ``LiteSvmBackend.send_external``; the watcher reads what landed there.

Transactions marked with the venue's dev-deposit memo are the settlement projection's own
mirrors of faucet deposits (already in the journal) and are skipped.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import based58  # a dependency of anchorpy
from solders.pubkey import Pubkey

from adapters.solana.backend import DepositSeen, TransientError
from adapters.solana.backend_litesvm import DEV_DEPOSIT_MEMO, MEMO_PROGRAM_ID
from engine.commands import Deposit

DEPOSIT_DISCRIMINATOR = hashlib.sha256(b"global:deposit").digest()[:8]  # Anchor's rule
SIGNATURES_PAGE_MAX = 1_000  # getSignaturesForAddress's own limit
NEW_SIGNATURES_PER_POLL_MAX = 10_000  # one poll reads at most this many signatures (the rest: the next polls)


@dataclass(frozen=True)
class IxView:
    program_id: Pubkey
    accounts: list[Pubkey]
    data: bytes


def deposits_in(signature: str, slot: int, instructions: list[IxView], program_id: Pubkey) -> list[DepositSeen]:
    """The escrow deposits among a successful transaction's instructions."""
    if any(ix.program_id == MEMO_PROGRAM_ID and ix.data.startswith(DEV_DEPOSIT_MEMO) for ix in instructions):
        return []
    out = []
    for ix in instructions:
        if ix.program_id != program_id or ix.data[:8] != DEPOSIT_DISCRIMINATOR or len(ix.data) < 16 or not ix.accounts:
            continue
        ref = signature if not out else f"{signature}:{len(out)}"
        out.append(DepositSeen(ref, str(ix.accounts[0]), int.from_bytes(ix.data[8:16], "little"), slot))
    return out


def parse_get_transaction(result: dict | None, program_id: Pubkey) -> list[DepositSeen]:
    """Deposits in a ``getTransaction`` result (encoding ``json``); [] for a failed or
    missing transaction. Instructions the program ran through CPI are in
    ``meta.innerInstructions`` and count too."""
    if not result or (result.get("meta") or {}).get("err") is not None:
        return []
    message = result["transaction"]["message"]
    keys = [Pubkey.from_string(k if isinstance(k, str) else k["pubkey"]) for k in message["accountKeys"]]
    loaded = (result.get("meta") or {}).get("loadedAddresses") or {}
    keys += [Pubkey.from_string(k) for k in loaded.get("writable", []) + loaded.get("readonly", [])]

    def view(raw: dict) -> IxView:
        return IxView(keys[raw["programIdIndex"]], [keys[i] for i in raw["accounts"]],
                      based58.b58decode(raw["data"].encode()))

    ixs = [view(raw) for raw in message["instructions"]]
    for inner in (result.get("meta") or {}).get("innerInstructions") or []:
        ixs += [view(raw) for raw in inner["instructions"]]
    signature = result["transaction"]["signatures"][0]
    return deposits_in(signature, int(result.get("slot", 0)), ixs, program_id)


def parse_signatures_page(result: list[dict]) -> list[tuple[str, int, bool]]:
    """(signature, slot, succeeded) of a ``getSignaturesForAddress`` page, newest first."""
    return [(r["signature"], int(r["slot"]), r.get("err") is None) for r in result]


def to_command(seen: DepositSeen) -> Deposit:
    return Deposit(seen.owner, seen.amount_e6, seen.signature)


@dataclass(frozen=True)
class WatchCursor:
    """How far the RPC watcher has read a newest-first history. ``done``: every signature at
    or below it is handled. A poll that hit its bound before reaching ``done`` leaves a walk
    in progress: ``top`` (the newest signature of that walk, handled) and ``resume`` (its
    oldest handled one: the next poll continues below it, down to ``done``)."""

    done: str | None = None
    top: str | None = None
    resume: str | None = None


class RpcDepositWatcher:
    """Polls a cluster: ``getSignaturesForAddress(address)`` newest-first down to the cursor,
    then ``getTransaction`` for each. ``address`` is the program id by default; the venue
    watches the vault (every deposit moves USDC into it) so the venue's own settlement
    transactions are not fetched again. ``cursor`` says what is already turned into commands."""

    def __init__(self, client, program_id: Pubkey, cursor: WatchCursor | None = None, commitment: str = "confirmed",
                 *, address: Pubkey | None = None, page_max: int = SIGNATURES_PAGE_MAX,
                 per_poll_max: int = NEW_SIGNATURES_PER_POLL_MAX):
        self.client = client  # solana.rpc.async_api.AsyncClient (or anything with its two calls)
        self.program_id = program_id
        self.address = address or program_id
        self.cursor = cursor or WatchCursor()
        self.commitment = commitment
        self.page_max = page_max
        self.per_poll_max = per_poll_max

    async def poll(self) -> list[DepositSeen]:
        """New deposits since the cursor, oldest first; advances ``self.cursor``."""
        seen, self.cursor = await self.fetch()
        return seen

    async def fetch(self) -> tuple[list[DepositSeen], WatchCursor]:
        """New deposits since the cursor (oldest first) and the cursor after them, which the
        caller stores once their commands are accepted. At most ``per_poll_max`` signatures
        per call: a longer history is read over several calls, none skipped (the older part of
        a walk may come after newer deposits: each deposit is independent)."""
        from solders.signature import Signature
        c = self.cursor
        new: list[tuple[str, int, bool]] = []
        before = c.resume
        reached_done = False
        try:
            while len(new) < self.per_poll_max:
                limit = min(self.page_max, self.per_poll_max - len(new))
                resp = await self.client.get_signatures_for_address(
                    self.address, before=Signature.from_string(before) if before else None,
                    until=Signature.from_string(c.done) if c.done else None,
                    limit=limit, commitment=self.commitment)
                page = parse_signatures_page(_json_result(resp))
                new += page
                if len(page) < limit:
                    reached_done = True  # the history ran out above ``done`` (or altogether)
                    break
                before = page[-1][0]
            seen: list[DepositSeen] = []
            for signature, _slot, ok in reversed(new):
                if not ok:
                    continue
                resp = await self.client.get_transaction(Signature.from_string(signature), encoding="json",
                                                         commitment=self.commitment,
                                                         max_supported_transaction_version=0)
                seen += parse_get_transaction(_json_result(resp), self.program_id)
        except (OSError, TimeoutError) as error:
            raise TransientError(str(error)) from error
        top = c.top if c.resume else (new[0][0] if new else None)
        if reached_done:
            return seen, WatchCursor(done=top or c.done)
        return seen, WatchCursor(done=c.done, top=top, resume=new[-1][0])


class CursorStore:
    """The RPC watcher's cursor, durable: one small JSON file ``{version, chain_id, done, top,
    resume}`` replaced atomically (``ledger.files.replace_durably``). A cursor of another chain
    (a fresh dev node: a new genesis) is void: the watcher reads that chain from its start."""

    FORMAT_VERSION = 1

    def __init__(self, path):
        from pathlib import Path
        self.path = Path(path)

    def load(self, chain_id: str) -> WatchCursor:
        import json
        if not self.path.exists():
            return WatchCursor()
        data = json.loads(self.path.read_text())
        if data.get("version") != self.FORMAT_VERSION:
            raise ValueError(f"{self.path}: deposit cursor format {data.get('version')}, expected "
                             f"{self.FORMAT_VERSION}")
        if data.get("chain_id") != chain_id:
            return WatchCursor()
        return WatchCursor(data.get("done"), data.get("top"), data.get("resume"))

    def save(self, chain_id: str, cursor: WatchCursor) -> None:
        import json

        from ledger.files import replace_durably
        replace_durably(self.path, json.dumps({"version": self.FORMAT_VERSION, "chain_id": chain_id,
                                               "done": cursor.done, "top": cursor.top, "resume": cursor.resume},
                                              separators=(",", ":")).encode())


def _json_result(resp):
    """The ``result`` of a solana-py response object (or of raw JSON in tests)."""
    if isinstance(resp, dict):
        return resp.get("result")
    import json
    return json.loads(resp.to_json())["result"]


class LiteSvmDepositWatcher:
    """Reads the deposits among transactions sent to the embedded chain from outside the
    venue (``LiteSvmBackend.send_external``), in the order they landed."""

    def __init__(self, backend, cursor: int = 0):
        self.backend = backend
        self.cursor = cursor  # index into backend.external_log

    async def poll(self) -> list[DepositSeen]:
        seen, self.cursor = await self.fetch()
        return seen

    async def fetch(self) -> tuple[list[DepositSeen], int]:
        """New deposits since the cursor and the cursor after them (as ``RpcDepositWatcher``'s)."""
        log = self.backend.external_log
        seen: list[DepositSeen] = []
        for signature, slot, message in log[self.cursor:]:
            keys = list(message.account_keys)
            ixs = [IxView(keys[ix.program_id_index], [keys[i] for i in ix.accounts], bytes(ix.data))
                   for ix in message.instructions]
            seen += deposits_in(signature, slot, ixs, self.backend.escrow.program_id)
        return seen, len(log)
