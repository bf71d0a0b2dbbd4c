"""The RPC backend and the RPC deposit watcher without a cluster (none is reachable here):
transactions built and signed for the wire, preflight failures classified, and the
watcher's parsing and paging on payloads in the shapes the JSON-RPC API returns."""

from __future__ import annotations

import asyncio
import hashlib
from types import SimpleNamespace

import based58
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from solana.rpc.core import RPCException
from solders.hash import Hash
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.rpc.responses import SendTransactionResp
from solders.transaction import Transaction

from adapters.solana.backend import TransientError, Unmirrorable
from adapters.solana.backend_rpc import RpcBackend
from adapters.solana.escrow import ALREADY_APPLIED
from venue.settlement import escrow_program
from adapters.solana.watcher import RpcDepositWatcher, parse_get_transaction, to_command

PROGRAM_ID = Keypair.from_seed(bytes([3] * 32)).pubkey()
VAULT = Keypair().pubkey()


def preflight_error(err_json: str, logs=()) -> RPCException:
    raw = ('{"jsonrpc":"2.0","error":{"code":-32002,"message":"Transaction simulation failed","data":{"accounts":null,'
           f'"err":{err_json},"logs":{list(logs)!r},"unitsConsumed":0,"returnData":null,"innerInstructions":null,'
           '"replacementBlockhash":null}},"id":1}').replace("'", '"')
    return RPCException(SendTransactionResp.from_json(raw))


class StubClient:
    def __init__(self, send_error=None):
        self.sent: list[bytes] = []
        self.send_error = send_error
        self.blockhash = Hash.new_unique()

    async def get_latest_blockhash(self, commitment=None):
        return SimpleNamespace(value=SimpleNamespace(blockhash=self.blockhash, last_valid_block_height=1_000))

    async def send_raw_transaction(self, data, opts=None):
        self.sent.append(data)
        if self.send_error:
            raise self.send_error
        return SimpleNamespace(value=Transaction.from_bytes(data).signatures[0])

    async def get_signature_statuses(self, sigs, search_transaction_history=False):
        return SimpleNamespace(value=[SimpleNamespace(confirmation_status="TransactionConfirmationStatus.Confirmed",
                                                      err=None)])


def backend(client) -> RpcBackend:
    return RpcBackend(client, escrow_program(PROGRAM_ID), VAULT, Keypair(), Keypair(),
                      oracle_accounts={0: Keypair().pubkey()})


def test_transaction_is_built_signed_and_serialized():
    client = StubClient()
    b = backend(client)
    long, short = Keypair().pubkey(), Keypair().pubkey()
    ix = b.escrow.close_position(b.authority.pubkey(), 7, long, short, seq=42, fraction_bps=2_500,
                                 exit_price_e8=6_600_000_000_000, funding_long_to_short_e6=-12, pnl_long_e6=1_234,
                                 until_ns=5)
    built = asyncio.run(b.build([ix], [b.authority]))
    outcome = asyncio.run(b.submit(built))
    assert outcome.ok and outcome.signature == str(built.signature)
    tx = Transaction.from_bytes(client.sent[0])
    tx.verify()  # every signature checks out against the message
    assert tx.message.recent_blockhash == client.blockhash
    assert tx.message.account_keys[0] == b.payer.pubkey()  # the fee payer
    assert b.authority.pubkey() in tx.message.account_keys[:tx.message.header.num_required_signatures]
    data = bytes(tx.message.instructions[0].data)
    assert data[:8] == hashlib.sha256(b"global:close_position").digest()[:8]
    decoded = b.escrow._program.coder.instruction.parse(data)
    assert decoded.name == "close_position"
    assert (decoded.data.seq, decoded.data.fraction_bps, decoded.data.pnl_long_e6,
            decoded.data.funding_long_to_short_e6) == (42, 2_500, 1_234, -12)
    keys = [tx.message.account_keys[i] for i in tx.message.instructions[0].accounts]
    assert keys == [b.authority.pubkey(), b.escrow.config, b.escrow.position_pda(7), b.escrow.agent_pda(long),
                    b.escrow.agent_pda(short)]
    assert len(client.sent[0]) <= 1232


def settle_ix(b):
    return b.escrow.settle_funding(b.authority.pubkey(), 1, Keypair().pubkey(), Keypair().pubkey(), seq=3,
                                   long_to_short_e6=5, until_ns=9)


def test_preflight_failures_are_classified():
    custom = StubClient(preflight_error('{"InstructionError":[0,{"Custom":6032}]}', ["Program log: already"]))
    b = backend(custom)
    outcome = asyncio.run(b.submit(asyncio.run(b.build([settle_ix(b)], [b.authority]))))
    assert not outcome.ok and outcome.custom_code == b.escrow.errors[ALREADY_APPLIED]
    assert outcome.logs == ["Program log: already"]
    stale = backend(StubClient(preflight_error('"BlockhashNotFound"')))
    with pytest.raises(TransientError):
        asyncio.run(stale.submit(asyncio.run(stale.build([settle_ix(stale)], [stale.authority]))))


def test_what_a_cluster_cannot_mirror():
    b = backend(StubClient())
    with pytest.raises(Unmirrorable):
        asyncio.run(b.dev_deposit(Keypair().pubkey(), 1, 1))
    with pytest.raises(Unmirrorable):  # withdraw without the agent's key
        asyncio.run(b.build([], [b.authority], [Keypair().pubkey()]))
    with pytest.raises(Unmirrorable):
        asyncio.run(b.price_account(2, 1, 1))


# ---------------------------------------------------------------------- the watcher
def get_transaction_payload(signature: str, owner: Pubkey, amount: int, *, err=None, program=PROGRAM_ID):
    """A getTransaction result (encoding json) of an escrow deposit, in the RPC's shape."""
    esc = escrow_program(program)
    ix = esc.deposit(owner, Keypair().pubkey(), VAULT, amount)
    keys = [str(owner)] + [str(m.pubkey) for m in ix.accounts if m.pubkey != owner] + [str(program)]
    return {
        "slot": 321, "blockTime": 1_767_225_600,
        "meta": {"err": err, "fee": 5000, "innerInstructions": [], "logMessages": [], "preBalances": [],
                 "postBalances": [], "loadedAddresses": {"writable": [], "readonly": []}},
        "transaction": {"signatures": [signature], "message": {
            "accountKeys": keys, "header": {"numRequiredSignatures": 1, "numReadonlySignedAccounts": 0,
                                            "numReadonlyUnsignedAccounts": 3},
            "recentBlockhash": str(Hash.new_unique()),
            "instructions": [{"programIdIndex": keys.index(str(program)),
                              "accounts": [keys.index(str(m.pubkey)) for m in ix.accounts],
                              "data": based58.b58encode(bytes(ix.data)).decode(), "stackHeight": None}]}},
        "version": "legacy"}


def test_parse_get_transaction():
    owner = Keypair().pubkey()
    sig = str(Keypair().sign_message(b"x"))
    seen = parse_get_transaction(get_transaction_payload(sig, owner, 25_000_000), PROGRAM_ID)
    assert [(s.signature, s.owner, s.amount_e6, s.slot) for s in seen] == [(sig, str(owner), 25_000_000, 321)]
    cmd = to_command(seen[0])
    assert (cmd.agent, cmd.amount_e6, cmd.ref) == (str(owner), 25_000_000, sig)
    failed = get_transaction_payload(sig, owner, 1, err={"InstructionError": [0, {"Custom": 6013}]})
    assert parse_get_transaction(failed, PROGRAM_ID) == []
    other = get_transaction_payload(sig, owner, 1, program=Keypair().pubkey())
    assert parse_get_transaction(other, PROGRAM_ID) == []
    assert parse_get_transaction(None, PROGRAM_ID) == []


class WatcherClient:
    """getSignaturesForAddress newest first, paged with before/until, as the RPC does."""

    def __init__(self, txs):
        self.txs = txs  # oldest first: (signature, payload)

    async def get_signatures_for_address(self, address, before=None, until=None, limit=None, commitment=None):
        sigs = [s for s, _ in reversed(self.txs)]
        start = sigs.index(str(before)) + 1 if before else 0
        end = sigs.index(str(until)) if until else len(sigs)
        page = sigs[start:end][:limit]
        return {"result": [{"signature": s, "slot": 300 + i, "err": None, "memo": None, "blockTime": None,
                            "confirmationStatus": "confirmed"} for i, s in enumerate(page)]}

    async def get_transaction(self, sig, encoding="json", commitment=None, max_supported_transaction_version=None):
        return {"result": dict(self.txs)[str(sig)]}


def test_watcher_pages_and_resumes_from_its_cursor():
    owners = [Keypair().pubkey() for _ in range(5)]
    txs = []
    for i, owner in enumerate(owners):
        sig = str(Keypair().sign_message(b"%d" % i))
        txs.append((sig, get_transaction_payload(sig, owner, (i + 1) * 1_000_000)))
    client = WatcherClient(txs[:3])
    w = RpcDepositWatcher(client, PROGRAM_ID, page_max=2)
    first = asyncio.run(w.poll())
    assert [s.amount_e6 for s in first] == [1_000_000, 2_000_000, 3_000_000]  # oldest first, over two pages
    assert w.cursor.done == txs[2][0] and w.cursor.resume is None
    client.txs = txs
    assert [s.amount_e6 for s in asyncio.run(w.poll())] == [4_000_000, 5_000_000]
    assert asyncio.run(w.poll()) == []



@settings(max_examples=40, deadline=None)
@given(page_max=st.integers(1, 4), per_poll_max=st.integers(1, 6),
       steps=st.lists(st.one_of(st.tuples(st.just("arrive"), st.integers(1, 5)), st.just(("poll", 0)),
                                st.just(("restart", 0))), max_size=25))
def test_bounded_walks_deliver_every_deposit_exactly_once(page_max, per_poll_max, steps):
    """Model: the deposits that arrived. Whatever the bounds, the interleaving of arrivals, polls
    and restarts (a new watcher from the last cursor handed back), each poll delivers only
    arrived deposits never delivered before, and polling until quiet delivers all of them."""
    from adapters.solana.watcher import WatchCursor

    owner = Keypair().pubkey()
    client = WatcherClient([])
    arrived: list[str] = []
    delivered: list[str] = []
    w = RpcDepositWatcher(client, PROGRAM_ID, page_max=page_max, per_poll_max=per_poll_max)

    def poll() -> list[str]:
        batch = [d.signature for d in asyncio.run(w.poll())]
        assert set(batch) <= set(arrived) and not set(batch) & set(delivered), "delivered twice or never sent"
        delivered.extend(batch)
        return batch

    for op, n in steps:
        if op == "arrive":
            for _ in range(n):
                sig = str(Keypair().sign_message(b"%d" % len(arrived)))
                arrived.append(sig)
                client.txs.append((sig, get_transaction_payload(sig, owner, len(arrived))))
        elif op == "poll":
            poll()
        else:
            w = RpcDepositWatcher(client, PROGRAM_ID, WatchCursor(w.cursor.done, w.cursor.top, w.cursor.resume),
                                  page_max=page_max, per_poll_max=per_poll_max)
    for _ in range(2 * len(arrived) + 2):  # of two polls in a row, one delivers while any is left
        if not poll() and sorted(delivered) == sorted(arrived):
            break
    assert sorted(delivered) == sorted(arrived)
