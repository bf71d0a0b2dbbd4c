"""A reference keeper: liquidates what the venue flags, for the 5% reward.

It watches the public ``liquidations`` stream: each ``LiquidationWatch`` event lists the
positions of a market that the last oracle sweep found liquidatable (``flagged``). The
keeper sends ``Liquidate`` for each at once; a position that recovered in between, or that
someone (or the engine, after its grace period) liquidated first, is answered with
``NOT_LIQUIDATABLE`` / ``UNKNOWN_POSITION`` and simply skipped.
"""

from __future__ import annotations

import logging

from agents import sdk
from engine import commands as cmd
from engine import events as ev

log = logging.getLogger("agentperp.agents.keeper")


class KeeperAgent:
    def __init__(self, client: sdk.Client):
        self.client = client
        self.stats = {"flagged": 0, "liquidated": 0, "missed": 0}
        self.rewards_e6 = 0

    async def run(self) -> None:
        """Keep until cancelled (or the session ends for good)."""
        subscription = await self.client.subscribe(["liquidations"])
        try:
            async for event in subscription:
                if type(event) is ev.LiquidationWatch:
                    for position_id in event.flagged:
                        self.stats["flagged"] += 1
                        future = self.client.send(cmd.Liquidate(self.client.agent, position_id))
                        future.add_done_callback(self._answered)
        finally:
            await self.client.disconnect()

    def _answered(self, future) -> None:
        if future.cancelled() or future.exception() is not None:
            return
        result = future.result()
        if type(result) is sdk.Rejection:
            self.stats["missed"] += 1
            return
        liquidated = result.first(ev.PositionLiquidated)
        if liquidated is not None:
            self.stats["liquidated"] += 1
            self.rewards_e6 += liquidated.reward_e6
