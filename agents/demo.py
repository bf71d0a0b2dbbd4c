"""The demo agents of ``agentperp run``: traders, four market makers (three inventory makers and
a swarm-consensus maker, ``agents/swarm.py``) and a keeper, each a
real TCP client of the venue on loopback — exactly what an outside agent would run.

``start(venue)`` tops up every demo agent to ``[demo] faucet_usdc`` (a ``Deposit`` with a
unique ref, only when its free balance is below it), connects them and returns their tasks
(the caller cancels them to stop; each ends its session on the way out). Keys and
randomness derive from ``[demo] seed``, so a demo run is the same agents every time.
"""

from __future__ import annotations

import asyncio
import logging

from agents import sdk
from agents.keeper import KeeperAgent
from agents.makers import AggressiveMaker, ConservativeMaker, InventoryMaker, MakerAgent
from agents.swarm import SwarmMaker
from agents.trader import TraderAgent
from engine import commands as cmd
from engine import views
from engine.units import USDC_E6

log = logging.getLogger("agentperp.agents.demo")

MAKERS = (("maker-conservative", ConservativeMaker), ("maker-balanced", InventoryMaker),
          ("maker-aggressive", AggressiveMaker), ("maker-swarm", SwarmMaker))


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
        else:
            strategy = dict(MAKERS)[role](seed)
            if role == "maker-swarm":  # its drawdown is measured from what the faucet gave it
                strategy = SwarmMaker(seed, capital_e6=demo.faucet_usdc * USDC_E6)
            client = await sdk.connect(host, venue.tcp_port, keypair, "json" if role == "maker-balanced" else "msgpack")
            agents.append((role, MakerAgent(client, strategy)))
    return [asyncio.create_task(_guarded(name, agent), name=f"demo-{name}") for name, agent in agents]


async def _guarded(name: str, agent) -> None:
    try:
        await agent.run()
    except sdk.ConnectionClosed as closed:
        log.warning("demo agent %s stopped: %s", name, closed)
