"""A reference trader: asks for positions at random and takes the best quote.

Every ``interval_s`` (a seeded uniform draw) it opens an RFQ on a random market, side, size
and leverage. Then either it lets the venue fill it (``auto_accept``: the best quote at the
RFQ's expiry) or it waits ``accept_after_s`` for quotes and accepts the best one itself
(cancelling the RFQ when none came). It closes each position after a random holding time.
Everything random comes from ``seed``.
"""

from __future__ import annotations

import asyncio
import logging
import random

from agents import sdk
from engine import events as ev
from engine import rejections as rj
from engine.units import USDC_E6

log = logging.getLogger("agentperp.agents.trader")


class TraderAgent:
    def __init__(self, client: sdk.Client, seed: int, *, interval_s: tuple[float, float] = (0.5, 2.0),
                 size_usdc: tuple[int, int] = (10, 2_000), leverage: tuple[int, int] = (1, 20),
                 max_funding_rate_e9: int = 20_000_000, auto_accept_probability: float = 0.3,
                 accept_after_s: float = 1.0, hold_s: tuple[float, float] = (5.0, 60.0)):
        self.client = client
        self.rng = random.Random(seed)
        self.interval_s = interval_s
        self.size_usdc = size_usdc
        self.leverage = leverage
        self.max_funding_rate_e9 = max_funding_rate_e9
        self.auto_accept_probability = auto_accept_probability
        self.accept_after_s = accept_after_s
        self.hold_s = hold_s
        self.positions: dict[int, float] = {}  # position_id -> when to close (loop time)
        self.stats = {"rfqs": 0, "fills": 0, "closes": 0, "no_quotes": 0, "rejected": 0}
        self.rejections: dict[str, int] = {}

    async def run(self) -> None:
        """Trade until cancelled (or the session ends for good)."""
        subscription = await self.client.subscribe(["account"])
        watcher = asyncio.ensure_future(self._watch(subscription))
        try:
            while True:
                await asyncio.sleep(self.rng.uniform(*self.interval_s))
                await self._close_due()
                await self.trade_once()
        finally:
            watcher.cancel()
            await self.client.disconnect()

    async def trade_once(self) -> None:
        """One RFQ: random terms, then auto-accept or accept the best quote after a wait."""
        config = self.client.engine_config
        market = self.rng.randrange(len(config.markets))
        leverage_max = min(self.leverage[1], config.markets[market].leverage_max)
        side = self.rng.choice(("long", "short"))
        size_e6 = self.rng.randint(*self.size_usdc) * USDC_E6
        leverage = self.rng.randint(self.leverage[0], leverage_max)
        auto = self.rng.random() < self.auto_accept_probability
        expires_in_ms = int(self.accept_after_s * 1000) + 1_000 if auto else 0
        try:
            ack = await self.client.request_quote(market, side, size_e6, leverage, self.max_funding_rate_e9,
                                                  expires_in_ms=expires_in_ms, auto_accept=auto)
        except sdk.Rejection as rejection:
            self._rejected(rejection)
            return
        self.stats["rfqs"] += 1
        if auto:
            return  # the venue fills it at expiry; the fill arrives on the account stream
        rfq_id = ack.first(ev.RfqOpened).rfq_id
        await asyncio.sleep(self.accept_after_s)
        try:
            await self.client.accept(rfq_id)
        except sdk.Rejection as rejection:
            if rejection.code == rj.NO_QUOTES:
                self.stats["no_quotes"] += 1
                await self._quietly(self.client.cancel_rfq(rfq_id))
            else:
                self._rejected(rejection)

    async def _watch(self, subscription: sdk.Subscription) -> None:
        """Track this trader's positions from its account stream."""
        me = self.client.agent
        loop = asyncio.get_running_loop()
        async for event in subscription:
            kind = type(event)
            if kind is ev.PositionOpened and me in (event.long_agent, event.short_agent):
                self.stats["fills"] += 1
                self.positions[event.position_id] = loop.time() + self.rng.uniform(*self.hold_s)
            elif (kind is ev.PositionClosed and event.remaining_size_e6 == 0) or kind is ev.PositionLiquidated:
                self.positions.pop(event.position_id, None)

    async def _close_due(self) -> None:
        now = asyncio.get_running_loop().time()
        for position_id, due in list(self.positions.items()):
            if due <= now:
                self.positions.pop(position_id, None)
                if await self._quietly(self.client.close(position_id)):
                    self.stats["closes"] += 1

    async def _quietly(self, call) -> bool:
        try:
            await call
            return True
        except sdk.Rejection as rejection:
            self._rejected(rejection)
            return False

    def _rejected(self, rejection: sdk.Rejection) -> None:
        self.stats["rejected"] += 1
        self.rejections[rejection.code] = self.rejections.get(rejection.code, 0) + 1
        log.debug("trader %s: %s", self.client.agent, rejection)
