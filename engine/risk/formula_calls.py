"""How the engine's scalar paths call the money formulas of ``formulas`` (DESIGN §4): here,
in the interpreted engine, the formulas themselves — numba's dispatcher, or the plain
functions under ``NUMBA_DISABLE_JIT``.

The compiled engine imports ``formula_calls.pyx`` in this module's place: the same
functions, calling numba's machine code of the same formulas directly (C entry points,
``formula_entries``) instead of through the dispatcher (~300-400 ns a call from Python).
"""

from engine.risk.formulas import funding_long_to_short_e6, liquidatable_side, pnl_long_e6, requirement_e6, safe_band_e8

__all__ = ["funding_long_to_short_e6", "liquidatable_side", "pnl_long_e6", "requirement_e6", "safe_band_e8"]
