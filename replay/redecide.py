"""Re-decide a journal's commands into a fresh state with ``engine.core.execute`` — the
live venue's loop — under another config (what-if) or beside injected commands (backtest).

Commands refer to objects by id (``SubmitQuote.rfq_id``, ``ClosePosition.position_id``
...), and ids are handed out in order by the engine. Once the re-decided world differs
(an RFQ rejected that was accepted, a position liquidated earlier, a backtest quote
filled instead of a recorded one) the same ids would name other objects, so the ids are
translated: each RFQ, quote and position created by a journaled command is paired with
the one the same command creates now (RFQ by command, quote by RFQ and maker, position by
RFQ), and later commands are rewritten to the new ids. A command that refers to an object
that does not exist in the new world is skipped (counted, not executed). An id the journal
never created is passed through unchanged.
"""

from __future__ import annotations

import msgspec

from engine import commands as cmd
from engine import events as ev
from engine.core import execute
from engine.markets import EngineConfig
from engine.state import State

# Which command fields hold which kind of id.
_ID_FIELDS = {
    cmd.SubmitQuote: (("rfq_id", "rfq"),),
    cmd.CancelRfq: (("rfq_id", "rfq"),),
    cmd.AcceptQuote: (("rfq_id", "rfq"), ("quote_id", "quote")),
    cmd.CancelQuote: (("quote_id", "quote"),),
    cmd.ClosePosition: (("position_id", "position"),),
    cmd.Liquidate: (("position_id", "position"),),
    cmd.AddMargin: (("position_id", "position"),),
    cmd.RemoveMargin: (("position_id", "position"),),
}

SKIPPED = object()  # the outcome of a command whose object does not exist in the new world


class Redecider:
    """A fresh state under ``config`` fed commands one by one."""

    def __init__(self, config: EngineConfig) -> None:
        self.state = State(config)
        self.ids: dict[str, dict[int, int | None]] = {"rfq": {}, "quote": {}, "position": {}}
        self.back: dict[str, dict[int, int]] = {"rfq": {}, "quote": {}, "position": {}}  # new id -> journal id
        self.cmd_id = 0
        self.skipped = 0

    def translate(self, command):
        """``command`` with its ids rewritten to this world's, or SKIPPED."""
        fields = _ID_FIELDS.get(type(command))
        if fields is None:
            return command
        changes = {}
        for name, kind in fields:
            old = getattr(command, name)
            if kind == "quote" and old == cmd.BEST_QUOTE:
                continue
            mapping = self.ids[kind]
            if old not in mapping:
                continue
            new = mapping[old]
            if new is None:
                return SKIPPED
            if new != old:
                changes[name] = new
        return msgspec.structs.replace(command, **changes) if changes else command

    def run(self, command, ts_ns: int, cmd_id: int | None = None):
        """Execute ``command`` (already translated) as the next command; return the outcome."""
        self.cmd_id = cmd_id if cmd_id is not None else self.cmd_id + 1
        return execute(self.state, command, ts_ns, self.cmd_id)

    def replay(self, command, ts_ns: int, cmd_id: int | None, journaled: list):
        """Translate, execute and pair the created ids with the journaled events."""
        translated = self.translate(command)
        if translated is SKIPPED:
            self.skipped += 1
            self._pair(journaled, [])
            return SKIPPED
        outcome = self.run(translated, ts_ns, cmd_id)
        self._pair(journaled, outcome if type(outcome) is list else [])
        return outcome

    def _pair(self, journaled: list, decided: list) -> None:
        if not journaled:
            return
        new_rfqs = [e.rfq_id for e in decided if type(e) is ev.RfqOpened]
        new_quotes = {(e.rfq_id, e.maker): e.quote_id for e in decided if type(e) is ev.QuoteSubmitted}
        new_positions = {e.rfq_id: e.position_id for e in decided if type(e) is ev.PositionOpened}
        rfqs = self.ids["rfq"]
        for e in journaled:
            kind = type(e)
            if kind is ev.RfqOpened:
                self._map("rfq", e.rfq_id, new_rfqs.pop(0) if new_rfqs else None)
            elif kind is ev.QuoteSubmitted:
                self._map("quote", e.quote_id, new_quotes.get((rfqs.get(e.rfq_id, e.rfq_id), e.maker)))
            elif kind is ev.PositionOpened:
                self._map("position", e.position_id, new_positions.get(rfqs.get(e.rfq_id, e.rfq_id)))

    def _map(self, kind: str, journal_id: int, new_id: int | None) -> None:
        self.ids[kind][journal_id] = new_id
        if new_id is not None:
            self.back[kind][new_id] = journal_id
