"""Journals with hedged makers, hedgers pointed at simulators, and what to compare."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from adapters.hedging.exchanges import Credentials
from adapters.hedging.hedger import ExchangeConfig, HedgerConfig
from ledger.journal import JournalReader
from ledger.records import decode_record

MAKERS = ("maker00", "maker01")
MARKETS = {0: "BTC/USDT:USDT", 1: "ETH/USDT:USDT", 2: "SOL/USDT:USDT"}
SIM_SYMBOLS = {"BTC/USDT:USDT": "BTCUSDT", "ETH/USDT:USDT": "ETHUSDT", "SOL/USDT:USDT": "SOLUSDT"}


def make_journal(data_dir: Path, events: int, seed: int = 11) -> Path:
    """A seeded engine session (``replay.generate``): 20 makers, 200 traders, three markets."""
    from replay.generate import generate

    generate(data_dir, events, seed=seed, progress=False)
    return data_dir / "journal"


def records(journal_dir: Path, from_seq: int = 1) -> list:
    return [decode_record(payload) for _, payload in JournalReader(journal_dir).read(from_seq)]


def batches(journal_dir: Path, from_seq: int = 1, size: int = 200):
    rs = records(journal_dir, from_seq)
    for i in range(0, len(rs), size):
        yield rs[i:i + size]


def key_of(maker: str, exchange: str) -> Credentials:
    return Credentials(f"{maker}-{exchange}-key", f"{maker}-{exchange}-secret")


def add_accounts(sim, exchange: str, makers=MAKERS) -> None:
    for maker in makers:
        creds = key_of(maker, exchange)
        sim.add_account(creds.api_key, creds.secret, wallet_usdt=100_000_000)


def config(tmp: Path, urls: dict[str, str], makers=MAKERS, **overrides) -> HedgerConfig:
    exchange_overrides = overrides.pop("exchange", {})
    exchange_settings = {"recv_window_ms": 1_000, "timeout_ms": 3_000, "rate_limit_ms": 1,
                         **exchange_overrides}
    exchanges = tuple(ExchangeConfig(name, "binanceusdm", url, **exchange_settings) for name, url in urls.items())
    return HedgerConfig(makers={m: {name: key_of(m, name) for name in urls} for m in makers},
                        exchanges=exchanges, markets=dict(MARKETS), state_path=tmp / "hedger.json",
                        audit_path=tmp / "audit.jsonl", clock_margin_ms=100, **overrides)


def exchange_positions(sims: dict, maker: str) -> dict[str, Decimal]:
    """Base quantity per ccxt symbol summed over the simulators, for one maker."""
    out = {s: Decimal(0) for s in MARKETS.values()}
    for name, sim in sims.items():
        account = sim.accounts[key_of(maker, name).api_key]
        for symbol, sim_symbol in SIM_SYMBOLS.items():
            position = account.positions.get(sim_symbol)
            if position is not None:
                out[symbol] += position.amount
    return out


def tolerance(sim, symbol: str) -> Decimal:
    """What may stay unhedged: one lot, or the minimum notional at the price, whichever is more."""
    spec = sim.specs[SIM_SYMBOLS[symbol]]
    return max(spec.step, spec.min_notional / sim.books[spec.symbol].reference) + spec.step
