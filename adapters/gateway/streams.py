"""Which stream each event belongs to — the one place both the TCP gateway and the
WebSocket read it from.

Public streams carry the market's events to anyone (observers too). The private stream
``account`` carries, to a logged-in agent only, every event that names it: as trader,
maker, party of a position, keeper, or owner of a free/held account a transfer touches.
Checkpoints go to the ``checkpoints`` stream (for replicas and auditors).
"""

from __future__ import annotations

from engine import events as ev

PUBLIC_STREAMS: dict[str, tuple[type, ...]] = {
    "rfqs": (ev.RfqOpened, ev.RfqClosed),
    "quotes": (ev.QuoteSubmitted, ev.QuoteReleased),
    "fills": (ev.PositionOpened,),
    "closes": (ev.PositionClosed,),
    "funding": (ev.FundingSettled,),
    "liquidations": (ev.PositionLiquidated, ev.LiquidationWatch),
    "oracle": (ev.OracleUpdated, ev.OracleSourceSwitched),
    "checkpoints": (ev.Checkpoint,),
}
ACCOUNT_STREAM = "account"
STREAMS = (*PUBLIC_STREAMS, ACCOUNT_STREAM)

_STREAM_OF_TYPE = {t: name for name, types in PUBLIC_STREAMS.items() for t in types}
_AGENT_FIELDS = ("agent", "trader", "maker", "keeper", "long_agent", "short_agent")
_AGENT_ACCOUNTS = (ev.FREE, ev.HELD)


class PositionParties:
    """position_id -> (long_agent, short_agent) of every open position: how the account stream
    finds the agents of an event that names only a position (``names_agent``).

    Bounded by the open positions (the engine's own capacity): an entry is added by
    ``PositionOpened`` and removed once the batch holding the position's end (a full close,
    a fixed-duration end, a liquidation) has been published, so that batch's own events still
    find their agents. Backfill of a closed position's later-filtered events relies on the
    agent fields and transfers those events carry (DESIGN §8 streams)."""

    def __init__(self) -> None:
        self._agents: dict[int, tuple[str, str]] = {}

    def __len__(self) -> int:
        return len(self._agents)

    def __contains__(self, position_id: int) -> bool:
        return position_id in self._agents

    def get(self, position_id: int, default=()):
        return self._agents.get(position_id, default)

    def add(self, position_id: int, long_agent: str, short_agent: str) -> None:
        self._agents[position_id] = (long_agent, short_agent)

    def opened(self, events: list) -> list[int]:
        """Record the batch's new positions; the ids of those it ended (prune them after publishing)."""
        ended = []
        for event in events:
            kind = type(event)
            if kind is ev.PositionOpened:
                self._agents[event.position_id] = (event.long_agent, event.short_agent)
            elif (kind is ev.PositionClosed and event.remaining_size_e6 == 0) or kind is ev.PositionLiquidated:
                ended.append(event.position_id)
        return ended

    def prune(self, ended: list[int]) -> None:
        for position_id in ended:
            self._agents.pop(position_id, None)


def stream_of(event) -> str | None:
    """The public stream of ``event`` (None: private only, e.g. deposits)."""
    return _STREAM_OF_TYPE.get(type(event))


def names_agent(event, agent: str, position_agents: PositionParties) -> bool:
    """Whether ``event`` concerns ``agent``; ``position_agents`` maps open and recently
    opened positions to their (long, short) agents for events that name only a position."""
    for name in _AGENT_FIELDS:
        if getattr(event, name, None) == agent:
            return True
    for transfer in getattr(event, "transfers", ()):
        if (transfer.debit in _AGENT_ACCOUNTS and transfer.debit_ref == agent) or \
                (transfer.credit in _AGENT_ACCOUNTS and transfer.credit_ref == agent):
            return True
    position_id = getattr(event, "position_id", None)
    if position_id is not None:
        return agent in position_agents.get(position_id, ())
    if type(event) is ev.FundingSettled:
        return any(agent in position_agents.get(p, ()) for p in event.position_ids)
    return False


def predicate(streams: list[str], agent: str | None, position_agents: PositionParties):
    """A filter for a subscription to ``streams`` (``account`` needs ``agent``)."""
    public = {t for name in streams if name in PUBLIC_STREAMS for t in PUBLIC_STREAMS[name]}
    private = agent if ACCOUNT_STREAM in streams else None

    def matches(event) -> bool:
        if type(event) in public:
            return True
        return private is not None and names_agent(event, private, position_agents)

    return matches
