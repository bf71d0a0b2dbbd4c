"""Probes of the layout rule ``ledger.compiled.slot_order`` assumes for msgspec structs
(a base's fields first, each class's own sorted by name, one pointer each), shaped as the
engine's structs are — a tagged, array-like, frozen base with a subclass, a keyword-only
config — with their fields out of name order. ``ledger.compiled.layout_rule_holds`` reads
this file's source and checks the classes at every start."""

from __future__ import annotations

import msgspec


class LayoutProbeBase(msgspec.Struct, frozen=True, array_like=True, tag=True, gc=False):
    zeta: int
    alpha: int


class LayoutProbe(LayoutProbeBase, tag="probe"):
    omega: int
    beta: str


class LayoutProbeConfig(msgspec.Struct, frozen=True, kw_only=True):
    yankee: int = 0
    xray: int = 0


PROBES = (LayoutProbe, LayoutProbeConfig)
