"""The RPC backend against a real peer on loopback: LiteSVM served as a Solana JSON-RPC node
(``adapters.solana.rpc_peer``), driven by the real solana-py ``AsyncClient``. Deposits are
made on chain and found by the RPC deposit watcher; a journal of the engine is settled by
``RpcBackend`` through HTTP and reconciles to zero."""

from __future__ import annotations

import base64
import contextlib
import json

import httpx
import pytest
from solana.rpc.async_api import AsyncClient
from solana.rpc.core import RPCException
from solana.rpc.types import TxOpts
from solders.keypair import Keypair
from solders.litesvm import LiteSVM
from solders.message import Message
from solders.signature import Signature
from solders.system_program import TransferParams, transfer
from solders.transaction import Transaction
from spl.token.instructions import MintToParams, create_idempotent_associated_token_account, mint_to

from adapters.solana.backend_rpc import RpcBackend
from adapters.solana.checkpoint import CheckpointStore
from adapters.solana.escrow import STATUS_CLOSED, STATUS_LIQUIDATED, STATUS_OPEN, TOKEN_PROGRAM_ID
from adapters.solana.projection import SettlementProjection
from adapters.solana.reconcile import reconcile_async
from adapters.solana.rpc_peer import RpcPeer, serve
from adapters.solana.watcher import RpcDepositWatcher, to_command
from adapters.solana.backend import read_config, read_positions
from engine import commands as cmd
from programs.escrow import localnet
from tests.settlement.journal import BASE_NS, H, S, USDC, JournalBuilder, usd
from venue.settlement import escrow_program

SOL = 10**9


@contextlib.asynccontextmanager
async def served_chain(program_path):
    """(world, peer, url, client): a fresh chain served on a free loopback port."""
    world = localnet.World(program_path, svm=LiteSVM().with_sigverify(True))
    peer = RpcPeer(world.svm)
    runner, url = await serve(peer)
    client = AsyncClient(url)
    try:
        yield world, peer, url, client
    finally:
        await client.close()
        await runner.cleanup()


@pytest.fixture
async def node(program_path):
    async with served_chain(program_path) as chain:
        yield chain


async def send(client: AsyncClient, ixs, payer: Keypair, *signers: Keypair) -> str:
    blockhash = (await client.get_latest_blockhash()).value.blockhash
    keys = list({k.pubkey(): k for k in (payer, *signers)}.values())
    tx = Transaction(keys, Message.new_with_blockhash(ixs, payer.pubkey(), blockhash), blockhash)
    resp = await client.send_raw_transaction(bytes(tx), opts=TxOpts(skip_confirmation=True))
    return str(resp.value)


# ---------------------------------------------------------------------- the wire, by the real client
async def test_real_client_against_the_peer(node):
    world, peer, url, client = node
    assert (await client.is_connected())
    latest = (await client.get_latest_blockhash()).value
    assert latest.blockhash == world.svm.latest_blockhash() and latest.last_valid_block_height > 0

    alice, bob = Keypair(), Keypair()
    airdrop = (await client.request_airdrop(alice.pubkey(), 2 * SOL)).value
    assert (await client.get_balance(alice.pubkey())).value == 2 * SOL == world.svm.get_balance(alice.pubkey())
    assert (await client.get_signature_statuses([airdrop])).value[0].err is None

    slot_before = (await client.get_slot()).value
    sig = await send(client, [transfer(TransferParams(from_pubkey=alice.pubkey(), to_pubkey=bob.pubkey(),
                                                      lamports=12_345))], alice)
    status = (await client.get_signature_statuses([Signature.from_string(sig)])).value[0]
    assert status.err is None and str(status.confirmation_status).endswith("Finalized")
    assert status.slot == slot_before and (await client.get_slot()).value == slot_before + 1  # a block per tx
    assert (await client.get_balance(bob.pubkey())).value == 12_345
    confirmed = await client.confirm_transaction(Signature.from_string(sig))
    assert confirmed.value[0].err is None

    # account bytes: the config PDA and the vault, single and multiple, equal LiteSVM's
    keys = [world.config, world.vault, Keypair().pubkey()]
    info = (await client.get_account_info(world.config)).value
    raw = world.svm.get_account(world.config)
    assert bytes(info.data) == bytes(raw.data) and info.owner == raw.owner == localnet.PROGRAM_ID
    multi = (await client.get_multiple_accounts(keys)).value
    assert [bytes(a.data) for a in multi[:2]] == [bytes(world.svm.get_account(k).data) for k in keys[:2]]
    assert multi[2] is None
    assert (await client.get_token_account_balance(world.vault)).value.amount == "0"
    rent = (await client.get_minimum_balance_for_rent_exemption(165)).value
    assert rent == world.svm.minimum_balance_for_rent_exemption(165)

    # a transaction that fails: preflight refuses it (the program's error, decoded), nothing lands
    too_much = transfer(TransferParams(from_pubkey=alice.pubkey(), to_pubkey=bob.pubkey(), lamports=10 * SOL))
    with pytest.raises(RPCException) as refused:
        await send(client, [too_much], alice)
    data = refused.value.args[0].data
    assert "Custom(1)" in str(data.err) and any("insufficient lamports" in line for line in data.logs)
    blockhash = (await client.get_latest_blockhash()).value.blockhash
    tx = Transaction([alice], Message.new_with_blockhash([too_much], alice.pubkey(), blockhash), blockhash)
    sim = (await client.simulate_transaction(tx)).value
    assert sim.err is not None and sim.units_consumed > 0
    # ... and with skipPreflight it lands failed, fee paid, as on a cluster
    failed = (await client.send_raw_transaction(bytes(tx), opts=TxOpts(skip_preflight=True))).value
    assert "Custom(1)" in str((await client.get_signature_statuses([failed])).value[0].err)

    # history: the transaction as json, and the address's signatures newest first
    got = json.loads((await client.get_transaction(Signature.from_string(sig), encoding="json")).to_json())["result"]
    assert got["transaction"]["signatures"] == [sig] and got["meta"]["err"] is None
    assert got["meta"]["postBalances"][1] == 12_345
    sigs = (await client.get_signatures_for_address(alice.pubkey())).value
    assert [str(s.signature) for s in sigs] == [str(failed), sig, str(airdrop)]
    assert (await client.get_genesis_hash()).value == (await client.get_genesis_hash()).value


# ---------------------------------------------------------------------- hostile or malformed requests
async def test_malformed_and_unknown_requests_get_json_rpc_errors(node):
    world, peer, url, client = node
    async with httpx.AsyncClient(base_url=url) as http:
        async def post(body) -> dict:
            resp = await http.post("/", content=body if isinstance(body, (bytes, str)) else json.dumps(body),
                                   headers={"content-type": "application/json"})
            assert resp.status_code == 200
            return resp.json()

        assert (await post(b"{not json"))["error"]["code"] == -32700
        assert (await post(b"\xff\xfe"))["error"]["code"] == -32700
        assert (await post([]))["error"]["code"] == -32600
        assert (await post("7"))["error"]["code"] == -32600
        assert (await post({"jsonrpc": "1.0", "id": 1, "method": "getSlot"}))["error"]["code"] == -32600
        assert (await post({"jsonrpc": "2.0", "id": 1, "method": "getSlot", "params": {"a": 1}}))["error"]["code"] \
            == -32600
        unknown = await post({"jsonrpc": "2.0", "id": "x", "method": "__class__", "params": []})
        assert unknown == {"jsonrpc": "2.0", "id": "x",
                           "error": {"code": -32601, "message": "Method not found: __class__"}}
        assert (await post({"jsonrpc": "2.0", "id": 2, "method": "getAccountInfo", "params": ["nope"]}))[
            "error"]["code"] == -32602
        assert (await post({"jsonrpc": "2.0", "id": 3, "method": "getBalance", "params": []}))["error"]["code"] \
            == -32602
        assert (await post({"jsonrpc": "2.0", "id": 4, "method": "sendTransaction",
                            "params": [base64.b64encode(b"\x01garbage").decode(), {"encoding": "base64"}]}))[
            "error"]["code"] == -32602
        assert (await post({"jsonrpc": "2.0", "id": 5, "method": "requestAirdrop",
                            "params": [str(Keypair().pubkey()), 10**30]}))["error"]["code"] == -32602
        too_many = [str(Keypair().pubkey())] * 101
        assert (await post({"jsonrpc": "2.0", "id": 6, "method": "getMultipleAccounts", "params": [too_many]}))[
            "error"]["code"] == -32602
        batch = await post([{"jsonrpc": "2.0", "id": 7, "method": "getSlot"}, {"id": 8}])
        assert batch[0]["result"] == world.svm.get_clock().slot and batch[1]["error"]["code"] == -32600
        big = await http.post("/", content=b"[" + b" " * (2 << 20) + b"]")
        assert big.status_code == 413  # over REQUEST_BYTES_MAX: refused before parsing
    # ... and it keeps serving the real client
    assert (await client.get_latest_blockhash()).value.blockhash == world.svm.latest_blockhash()
    assert peer.errors >= 12


# ---------------------------------------------------------------------- settlement through the peer
async def deposit_on_chain(client: AsyncClient, world, escrow, agent: Keypair, amount_e6: int) -> str:
    """The agent's own deposit, as on a cluster: SOL by airdrop, test USDC minted to its
    token account, then the program's deposit signed and paid by the agent."""
    owner = agent.pubkey()
    await client.request_airdrop(owner, SOL)
    ata = create_idempotent_associated_token_account(world.payer.pubkey(), owner, world.mint)
    token = ata.accounts[1].pubkey
    await send(client, [ata, mint_to(MintToParams(program_id=TOKEN_PROGRAM_ID, mint=world.mint, dest=token,
                                                  mint_authority=world.mint_authority.pubkey(), amount=amount_e6))],
               world.payer, world.mint_authority)
    return await send(client, [escrow.deposit(owner, token, world.vault, amount_e6)], agent)


async def test_rpc_backend_settles_a_journal_through_the_peer(node, tmp_path):
    world, peer, url, client = node
    escrow = escrow_program(localnet.PROGRAM_ID)
    j = JournalBuilder(tmp_path / "journal")
    amounts = {"trader": 1_000, "maker": 2_000, "keeper": 10, "c": 500, "d": 500, "e": 500, "f": 500}
    for name, amount in amounts.items():
        await deposit_on_chain(client, world, escrow, j.keys[j.agent(name)], amount * USDC)
    # the deposit watcher, by RPC, turns them into the engine's Deposit commands
    watcher = RpcDepositWatcher(client, localnet.PROGRAM_ID)
    seen = await watcher.poll()
    assert [s.amount_e6 for s in seen] == [a * USDC for a in amounts.values()] and await watcher.poll() == []
    for deposit in seen:
        j.must(BASE_NS + S, to_command(deposit))

    t = BASE_NS + 7 * H
    j.oracle(t, usd(65_000))
    p1 = j.open(t, j.trader, j.maker)
    p4 = j.open(t, j.maker, j.trader, side="short", size_e6=400 * USDC, leverage=5, rate_e9=-2_000_000,
                collateral_e6=50 * USDC)
    j.must(t + S, cmd.AddMargin(j.trader, p1, 30 * USDC))
    j.must(BASE_NS + 8 * H, cmd.Tick())  # funding boundary
    t = BASE_NS + 9 * H
    j.oracle(t, usd(66_000))
    j.must(t + S // 2, cmd.RemoveMargin(j.trader, p1, 10 * USDC))
    j.must(t + S, cmd.ClosePosition(j.trader, p1, 4_000))  # partial
    j.must(t + 3 * S, cmd.ClosePosition(j.maker, p1))
    t = BASE_NS + 10 * H
    j.oracle(t, usd(65_000))
    p2 = j.open(t, j.c, j.d, leverage=20, rate_e9=1_000_000)
    j.oracle(t + S, usd(63_000))
    j.must(t + S + 500_000_000, cmd.Liquidate(j.keeper, p2))  # by a keeper
    t = BASE_NS + 11 * H
    j.oracle(t, usd(65_000))
    j.open(t, j.e, j.f, leverage=20, rate_e9=0)
    j.oracle(t + S, usd(63_000))
    j.must(t + 4 * S, cmd.Tick())  # by the engine
    j.must(t + 5 * S, cmd.Withdraw(j.trader, 500 * USDC, j.trader))
    j.close()

    # On a cluster the Pyth push oracle keeps the PriceUpdateV2 account fresh; here the test
    # stands in for it (both liquidations are at 63 000, which the program checks).
    oracle = Keypair().pubkey()
    world.set_price(oracle, 0, usd(63_000))
    backend = RpcBackend(client, escrow, world.vault, world.authority, world.payer, usdc_mint=world.mint,
                         oracle_accounts={0: oracle}, keyring=j.keys)
    projection = SettlementProjection(backend, CheckpointStore(tmp_path / "cp.json"), on_unmirrorable="halt")
    stats = await projection.run(tmp_path / "journal")
    assert stats.last_seq == j.state.last_seq and stats.unmirrored == 0 and stats.transactions > 0

    report = await reconcile_async(j.state, backend)
    assert report.ok, "\n".join(map(str, report.differences))
    assert report.agents_checked == 7 and report.positions_checked == 4
    cfg = await read_config(backend)
    vault = await backend.token_balance(backend.vault)
    assert vault == report.chain_held_e6 == cfg.total_deposited_e6 - cfg.total_withdrawn_e6
    assert [p.status for p in await read_positions(backend, [1, 2, 3, 4])] == \
        [STATUS_CLOSED, STATUS_OPEN, STATUS_LIQUIDATED, STATUS_LIQUIDATED]
    assert (await backend.chain_id()).startswith(f"rpc:{peer.genesis_hash}:")

    # run again from seq 0 on the settled chain: every action is already applied, nothing changes
    again = SettlementProjection(backend, CheckpointStore(tmp_path / "cp2.json"), on_unmirrorable="halt")
    await again.run(tmp_path / "journal")
    assert (await reconcile_async(j.state, backend)).ok
    assert await backend.token_balance(backend.vault) == vault
