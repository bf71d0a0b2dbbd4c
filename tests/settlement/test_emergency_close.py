"""The escape hatch from the command line (issue 13): with the venue stopped, one party alone
closes a position at the oracle price after the program's delay — `agentperp escrow
emergency-close`, on the embedded chain rebuilt from the journal (--data-dir) and against a
chain behind JSON-RPC (--rpc-url: the LiteSVM peer on loopback, the real AsyncClient)."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from adapters.solana.backend_litesvm import oracle_key
from adapters.solana.checkpoint import CheckpointStore
from adapters.solana.projection import SettlementProjection
from adapters.solana.rpc_peer import INVALID_PARAMS, RpcPeer, serve
from agents.sdk import demo_keypair
from engine import commands as cmd
from engine.risk.formulas import funding_long_to_short_e6, pnl_long_e6
from programs.escrow.localnet import ESCAPE_DELAY_S
from tests.settlement.journal import BASE_NS, H, S, USDC, JournalBuilder, usd
from venue import cli
from venue.settlement import litesvm_backend

OPEN_NS = BASE_NS + 7 * H
BOUNDARY_NS = BASE_NS + 8 * H  # funding settled: the venue's last touch of the position
LAST_PRICE_E8 = usd(66_000)  # the venue's last oracle price before it stopped


@pytest.fixture(scope="module")
def stopped(tmp_path_factory):
    """A venue's data dir (its journal) with one open position, the venue stopped; keypair files."""
    data = tmp_path_factory.mktemp("stopped-venue")
    j = JournalBuilder(data / "journal")
    trader, maker = j.agent("trader"), j.agent("maker")
    j.must(BASE_NS + S, cmd.Deposit(trader, 1_000 * USDC, "faucet:trader"))
    j.must(BASE_NS + S, cmd.Deposit(maker, 2_000 * USDC, "faucet:maker"))
    j.oracle(OPEN_NS, usd(65_000))
    position_id = j.open(OPEN_NS, trader, maker)  # trader long 1 000 USDC at 10x, 0.5 %/8h
    j.must(BOUNDARY_NS, cmd.Tick())
    j.oracle(BASE_NS + 9 * H, LAST_PRICE_E8)
    j.close()
    files = {}
    for name, key in (("trader", trader), ("maker", maker)):
        files[name] = data / f"{name}.json"
        files[name].write_text(json.dumps(list(bytes(j.keys[key]))))
    return data, j, position_id, files


def expected_returns(j: JournalBuilder, position_id: int, price_e8: int) -> tuple[int, int]:
    """What each side gets back by the engine's formulas: the funding of the escape delay
    (the venue settled up to the boundary), then the PnL at ``price_e8`` paid by the loser
    (capped by its margin), then both margins released."""
    p, row = j.state.positions, j.state.position_row[position_id]
    size, entry = int(p.size_e6[row]), int(p.entry_price_e8[row])
    margin_long, margin_short = int(p.margin_long_e6[row]), int(p.margin_short_e6[row])
    funding, _ = funding_long_to_short_e6(size, int(p.rate_e9[row]), True, ESCAPE_DELAY_S * S, margin_long,
                                          margin_short)
    margin_long, margin_short = margin_long - funding, margin_short + funding
    pnl = pnl_long_e6(size, entry, price_e8)
    paid = min(pnl, margin_short) if pnl >= 0 else -min(-pnl, margin_long)
    return margin_long + paid, margin_short - paid


def engine_free(j: JournalBuilder, agent: str) -> int:
    row = j.state.agent_row[agent]
    return int(j.state.agents.free_e6[row]) + int(j.state.agents.held_e6[row])


def emergency_close(capsys, *args) -> tuple[int, dict]:
    code = cli.main(["escrow", "emergency-close", *map(str, args), "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_refused_before_the_delay_with_the_time_left(stopped, capsys):
    data, j, position_id, files = stopped
    code, out = emergency_close(capsys, "--data-dir", data, "--position", position_id, "--keypair", files["maker"])
    assert code == 1
    assert out["code"] == "EscapeTooEarly" and "--after-delay" in out["hint"]
    assert out["detail"]["last_settled_ts"] == BOUNDARY_NS // S == out["detail"]["chain_time_s"]
    assert out["detail"]["time_left_s"] == ESCAPE_DELAY_S == out["detail"]["escape_delay_s"]


def test_after_the_delay_one_party_closes_at_the_oracle_price(stopped, capsys):
    data, j, position_id, files = stopped
    code, out = emergency_close(capsys, "--data-dir", data, "--position", position_id, "--keypair", files["maker"],
                                "--after-delay")
    assert code == 0, out
    assert out["demonstration"] and out["rebuilt"]["unmirrored"] == 0
    assert out["status_after"] == "emergency-closed" and out["side"] == "short" and out["party"] == j.maker
    assert (out["price"]["price"], out["price"]["exponent"]) == (LAST_PRICE_E8, -8)
    assert out["chain_time_s"] == BOUNDARY_NS // S + ESCAPE_DELAY_S == out["price"]["publish_time_s"]
    long_back, short_back = expected_returns(j, position_id, LAST_PRICE_E8)
    assert long_back > 0 and short_back > 0
    for side, agent, back in (("long", j.trader, long_back), ("short", j.maker, short_back)):
        s = out["sides"][side]
        assert s["owner"] == agent
        assert s["free_e6_before"] == engine_free(j, agent)  # the rebuilt chain is the engine's books
        assert s["returned_e6"] == back, side
        assert s["free_e6_after"] == s["free_e6_before"] + back and s["locked_e6_after"] == 0


def test_a_non_party_is_refused(stopped, capsys):
    data, _, position_id, _ = stopped
    code, out = emergency_close(capsys, "--data-dir", data, "--position", position_id, "--demo-agent", "keeper",
                                "--after-delay")
    assert code == 1
    assert out["code"] == "NotParty" and str(demo_keypair(1, "keeper", 0).pubkey()) in out["message"]


def test_over_json_rpc(stopped, capsys, program_path, tmp_path):
    """The real escape hatch against a chain that outlives the venue: the venue's chain (the
    journal settled on it) served by the JSON-RPC peer; the CLI through solana-py's AsyncClient."""
    data, j, position_id, files = stopped

    async def scenario():
        backend = litesvm_backend(program_path, keyring=j.keys, sigverify=True)
        await SettlementProjection(backend, CheckpointStore(tmp_path / "cp.json"), on_unmirrorable="halt").run(
            data / "journal")
        runner, url = await serve(RpcPeer(backend.svm))
        rpc = ["--rpc-url", url, "--position", position_id, "--price-account", oracle_key(0)]
        try:
            early = await asyncio.to_thread(emergency_close, capsys, *rpc, "--keypair", files["trader"])
            opens_at = early[1]["detail"]["opens_at_s"]
            async with aiohttp.ClientSession() as http:
                async def warp(ts):
                    body = {"jsonrpc": "2.0", "id": 1, "method": "dev_warpClock", "params": [ts]}
                    async with http.post(url, json=body) as response:
                        return await response.json()
                back = await warp(opens_at - 10**6)
                warped = await warp(opens_at)
            # Pyth's push oracle, on a cluster: here the test writes the market's price account.
            await backend.post_price(0, LAST_PRICE_E8, 0, opens_at * S)
            closed = await asyncio.to_thread(emergency_close, capsys, *rpc, "--keypair", files["trader"])
            again = await asyncio.to_thread(emergency_close, capsys, *rpc, "--keypair", files["maker"])
            return early, back, warped, closed, again
        finally:
            await runner.cleanup()

    early, back, warped, closed, again = asyncio.run(scenario())
    assert early[0] == 1 and early[1]["code"] == "EscapeTooEarly"
    assert early[1]["detail"]["time_left_s"] == ESCAPE_DELAY_S
    assert back["error"]["code"] == INVALID_PARAMS  # a clock never goes back
    assert warped["result"]["unixTimestamp"] == early[1]["detail"]["opens_at_s"]
    code, out = closed
    assert code == 0, out
    assert "demonstration" not in out and out["side"] == "long" and out["status_after"] == "emergency-closed"
    long_back, short_back = expected_returns(j, position_id, LAST_PRICE_E8)
    assert (out["sides"]["long"]["returned_e6"], out["sides"]["short"]["returned_e6"]) == (long_back, short_back)
    assert again[0] == 1 and again[1]["code"] == "PositionNotOpen"
