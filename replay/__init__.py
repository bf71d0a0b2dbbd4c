"""The quants' replay toolkit: verify, state-at, export, what-if and backtest over journals.

Everything here drives the engine's own ``apply`` / ``decide`` (``engine.core.execute``);
no rule of the venue is implemented twice. See docs/replay.md. The Python API, one module
per command (each mirrors ``agentperp replay COMMAND``):

    from replay.source import ReplayJournal       # records / events as structs, at a seq
    from replay.rebuild import rebuild            # the State at a seq or time
    from replay.verify import verify
    from replay.state_at import state_at
    from replay.export import export, batches     # batches: Arrow record batches (numpy via to_numpy)
    from replay.whatif import whatif
    from replay.backtest import backtest
"""
