"""The deposit watcher: escrow ``deposit`` instructions that landed on chain become
``engine.commands.Deposit`` commands, the transaction signature as ``ref`` (a second
deposit instruction in the same transaction gets ``{signature}:{n}``). The engine treats a
repeated ref as a no-op, so delivering a deposit twice is harmless.

- ``parse_*``: pure translation of what a chain returns (RPC ``getTransaction`` JSON, or a
  solders message from the embedded chain) into ``DepositSeen``.
- ``RpcDepositWatcher``: polls ``getSignaturesForAddress(program id)`` newest-first down to
  its cursor (the newest signature already handled), fetches each new transaction with
  ``getTransaction`` and yields the deposits oldest first; the cursor is the caller's to
  store durably after the commands are accepted.
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
NEW_SIGNATURES_PER_POLL_MAX = 10_000  # a poll stops paging back after this many


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


class RpcDepositWatcher:
    """Polls a cluster. ``cursor`` is the newest signature already turned into commands."""

    def __init__(self, client, program_id: Pubkey, cursor: str | None = None, commitment: str = "confirmed"):
        self.client = client  # solana.rpc.async_api.AsyncClient (or anything with its two calls)
        self.program_id = program_id
        self.cursor = cursor
        self.commitment = commitment

    async def poll(self) -> list[DepositSeen]:
        """New deposits since the cursor, oldest first; advances ``self.cursor``."""
        from solders.signature import Signature
        new: list[tuple[str, int, bool]] = []
        before = None
        try:
            while len(new) < NEW_SIGNATURES_PER_POLL_MAX:
                resp = await self.client.get_signatures_for_address(
                    self.program_id, before=Signature.from_string(before) if before else None,
                    until=Signature.from_string(self.cursor) if self.cursor else None,
                    limit=SIGNATURES_PAGE_MAX, commitment=self.commitment)
                page = parse_signatures_page(_json_result(resp))
                new += page
                if len(page) < SIGNATURES_PAGE_MAX:
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
        if new:
            self.cursor = new[0][0]
        return seen


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
        log = self.backend.external_log
        seen: list[DepositSeen] = []
        for signature, slot, message in log[self.cursor:]:
            keys = list(message.account_keys)
            ixs = [IxView(keys[ix.program_id_index], [keys[i] for i in ix.accounts], bytes(ix.data))
                   for ix in message.instructions]
            seen += deposits_in(signature, slot, ixs, self.backend.escrow.program_id)
        self.cursor = len(log)
        return seen
