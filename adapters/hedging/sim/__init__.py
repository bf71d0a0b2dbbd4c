"""A local exchange simulator speaking Binance USDⓈ-M futures REST (and OKX v5) as ccxt calls it.

The real ccxt client is the peer: tests and demos point ``urls['api']`` at it. See
``docs/hedging.md`` for what is simulated and what is not.
"""
