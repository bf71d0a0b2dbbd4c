"""ccxt pro clients for the CCXT median, with every websocket frame screened before ccxt reads it.

``make_ws_client(kind, base_url, ...)`` is ``make_client`` (``adapters/hedging/exchanges.py``:
REST and websocket URLs pointed at ``base_url``, the same options) with a ``ccxt.pro`` class
of ours: ``binanceusdm`` or ``okx`` that

- decodes a frame that is not JSON into ``ccxt_parse.NotJson`` instead of raising: ccxt's
  client decodes inside a callback, and an exception there ends its receive loop for good
  (the connection stays open and silent);
- hands each decoded frame to ``ccxt_parse.screen_ws`` first: a frame of the wrong shape goes to
  ``on_drop(reason, detail)`` and never reaches ccxt; one that ccxt still fails on is dropped
  the same way (``malformed``), never raised into the loop.

The same client serves REST (``fetch_bids_asks``/``fetch_tickers``, ccxt pro's classes extend
``ccxt.async_support``'s), so the REST fallback needs no second client.
"""

from __future__ import annotations

from collections.abc import Callable

import ccxt.pro as ccxt_pro
from ccxt.async_support.base.ws.client import Client, json_parser
from ccxt.async_support.base.ws.functions import is_json_encoded_object

from adapters.hedging.exchanges import make_client
from adapters.oracle import ccxt_parse as parse

DETAIL_LEN_MAX = 200


class _ScreenedClient(Client):
    """ccxt's websocket client, decoding without raising (see the module's docstring)."""

    def handle_text_or_binary_message(self, data):
        try:
            if self.decompressBinary and isinstance(data, bytes):
                data = data.decode()
            decoded = json_parser.loads(data) if is_json_encoded_object(data) else data
        except ValueError:  # json's and orjson's decode errors, UnicodeDecodeError: all ValueErrors
            decoded = parse.NotJson(str(data)[:DETAIL_LEN_MAX])
        self.on_message_callback(self, decoded)


class _Screened:
    """Mixed into a ``ccxt.pro`` exchange class (see the module's docstring)."""

    kind = ""
    on_drop: Callable[[str, str], None] | None = None

    def client(self, url):
        client = super().client(url)
        # ccxt builds its Client inline, with no hook for the class: the instance is given ours
        if type(client) is Client:
            client.__class__ = _ScreenedClient
        return client

    def handle_message(self, client, message):
        drop = parse.screen_ws(self.kind, message)
        if drop is None:
            try:
                super().handle_message(client, message)
                return
            except Exception as error:  # ccxt's handler on a frame it cannot read: dropped, loop kept
                drop = parse.Drop(parse.MALFORMED, f"ccxt could not read it ({type(error).__name__})")
        if self.on_drop is not None:
            self.on_drop(drop.reason, drop.detail[:DETAIL_LEN_MAX])


class BinanceUsdmWs(_Screened, ccxt_pro.binanceusdm):
    kind = "binanceusdm"


class OkxWs(_Screened, ccxt_pro.okx):
    kind = "okx"


WS_CLASSES = {"binanceusdm": BinanceUsdmWs, "okx": OkxWs}


def make_ws_client(kind: str, base_url: str | None, *, timeout_ms: int,
                   on_drop: Callable[[str, str], None] | None = None):
    """A screened ccxt pro client for ``kind``; ``base_url=None`` keeps the real exchange's URLs."""
    if kind not in WS_CLASSES:
        raise ValueError(f"no websocket client for {kind!r}; known: {', '.join(WS_CLASSES)}")
    client = make_client(kind, base_url, None, timeout_ms=timeout_ms, client_class=WS_CLASSES[kind])
    client.on_drop = on_drop
    return client
