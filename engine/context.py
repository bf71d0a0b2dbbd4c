"""What every decision needs besides the state: the stamped time, the command id, and
the seq numbers of the events it emits."""

from __future__ import annotations

from engine.events import Transfer


class Ctx:
    """Stamps for the events of one decision. ``seq()`` hands out gap-free seqs."""

    __slots__ = ("ts_ns", "cmd_id", "next_seq")

    def __init__(self, last_seq: int, ts_ns: int, cmd_id: int):
        self.ts_ns = ts_ns
        self.cmd_id = cmd_id
        self.next_seq = last_seq + 1

    def seq(self) -> int:
        seq = self.next_seq
        self.next_seq = seq + 1
        return seq


def transfer(out: list[Transfer], debit: int, debit_ref, credit: int, credit_ref, amount_e6: int,
             kind: str) -> None:
    """Append a transfer of ``amount_e6``; a negative amount flows the other way, zero is dropped."""
    if amount_e6 > 0:
        out.append(Transfer(debit, debit_ref, credit, credit_ref, amount_e6, kind))
    elif amount_e6 < 0:
        out.append(Transfer(credit, credit_ref, debit, debit_ref, -amount_e6, kind))
