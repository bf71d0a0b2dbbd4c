"""The demo agents of ``agentperp run``: traders, five market makers (three inventory makers, a
swarm-consensus maker, ``agents/swarm.py``, and an arbitrage maker, ``agents/arbitrage.py``)
and a keeper, each a real TCP client of the venue on loopback — exactly what an outside agent
would run.

The arbitrage maker prices from the exchange simulator the venue started for its hedger
(``venue.hedger.feed_client()``: the first of ``[hedging] exchanges``, public endpoints only,
polled every ``ARBITRAGE_REFRESH_S``); it is one of ``[hedging] makers`` by default, so the
hedger hedges its fills on the simulators with the account the venue opened for it there.
With hedging off it has nothing to price from or hedge on, and does not run.

``start(venue)`` tops up every demo agent to ``[demo] faucet_usdc`` (a ``Deposit`` with a
unique ref, only when its free balance is below it), connects them and returns their tasks
(the caller cancels them to stop; each ends its session on the way out). Keys and
randomness derive from ``[demo] seed``, so a demo run is the same agents every time.
"""

from __future__ import annotations

import asyncio
import logging

from agents import sdk
from agents.arbitrage import ArbitrageAgent, ArbitrageMaker, CcxtFeed
from agents.keeper import KeeperAgent
from agents.makers import AggressiveMaker, ConservativeMaker, InventoryMaker, MakerAgent
from agents.swarm import SwarmMaker
from agents.trader import TraderAgent
from engine import commands as cmd
from engine import views
from engine.units import USDC_E6

log = logging.getLogger("agentperp.agents.demo")

MAKERS = (("maker-conservative", ConservativeMaker), ("maker-balanced", InventoryMaker),
          ("maker-aggressive", AggressiveMaker), ("maker-swarm", SwarmMaker), ("maker-arbitrage", ArbitrageMaker))
ARBITRAGE_REFRESH_S = 2.0  # the arbitrage maker's polls of the simulator (funding rate + book per market)
ARBITRAGE_FAILURES_MAX = 2  # failed polls in a row before it stops quoting a market
ARBITRAGE_STALE_S = 10.0  # or its last good poll older than this


def roles(traders: int) -> list[tuple[str, int]]:
    """Every demo agent as (role, index)."""
    return [("trader", i) for i in range(traders)] + [(name, 0) for name, _ in MAKERS] + [("keeper", 0)]


async def fund(venue, agent: str, amount_e6: int, keypair=None) -> None:
    """Top ``agent`` up to ``amount_e6`` of free balance (nothing if it has that already): on the
    embedded chain the agent deposits into the escrow itself and the deposit watcher journals
    it (``venue.settlement``); otherwise the dev faucet."""
    free_e6 = views.account(venue.state, agent).free_e6
    if free_e6 >= amount_e6:
        return
    settlement = getattr(venue.projections, "settlement", None)
    if keypair is not None and settlement is not None and settlement.on_chain_deposits:
        await settlement.deposit(keypair, amount_e6 - free_e6)
        return
    outcome = await venue.execute(cmd.Deposit(agent, amount_e6 - free_e6, f"demo-faucet:{agent}:{venue.clock()}"))
    if outcome.rejection is not None:
        log.warning("demo faucet for %s refused: %s", agent, outcome.rejection)


async def start(venue) -> list[asyncio.Task]:
    """Fund, connect and start the demo agents; their tasks."""
    demo = venue.config.demo
    host = venue.config.gateway.host
    host = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
    agents = []
    for role, index in roles(demo.traders):
        keypair = sdk.demo_keypair(demo.seed, role, index)
        await fund(venue, str(keypair.pubkey()), demo.faucet_usdc * USDC_E6, keypair)
        seed = demo.seed * 1_000 + len(agents)
        if role == "trader":
            client = await sdk.connect(host, venue.tcp_port, keypair)
            agents.append((f"{role}-{index}", TraderAgent(client, seed)))
        elif role == "keeper":
            client = await sdk.connect(host, venue.tcp_port, keypair)
            agents.append((role, KeeperAgent(client)))
        elif role == "maker-arbitrage":
            feed = arbitrage_feed(venue)
            if feed is None:
                log.info("demo: hedging is off: no exchange for the arbitrage maker to price from; not started")
                continue
            client = await sdk.connect(host, venue.tcp_port, keypair)
            agents.append((role, ArbitrageAgent(client, ArbitrageMaker(seed), feed)))
        else:
            strategy = dict(MAKERS)[role](seed)
            if role == "maker-swarm":  # its drawdown is measured from what the faucet gave it
                strategy = SwarmMaker(seed, capital_e6=demo.faucet_usdc * USDC_E6)
            client = await sdk.connect(host, venue.tcp_port, keypair, "json" if role == "maker-balanced" else "msgpack")
            agents.append((role, MakerAgent(client, strategy)))
    return [asyncio.create_task(_guarded(name, agent), name=f"demo-{name}") for name, agent in agents]


def arbitrage_feed(venue) -> CcxtFeed | None:
    """A ``CcxtFeed`` of the venue's first hedge exchange for every hedged market; None when
    hedging is off."""
    hedging = getattr(venue, "hedger", None)
    client = hedging.feed_client() if hedging is not None else None
    if client is None:
        return None
    return CcxtFeed(client, hedging.markets, refresh_s=ARBITRAGE_REFRESH_S, stale_s=ARBITRAGE_STALE_S,
                    failures_max=ARBITRAGE_FAILURES_MAX)


async def _guarded(name: str, agent) -> None:
    try:
        await agent.run()
    except sdk.ConnectionClosed as closed:
        log.warning("demo agent %s stopped: %s", name, closed)
