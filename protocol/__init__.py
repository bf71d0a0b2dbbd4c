"""The protocol between the venue and its agents: what both sides may import (DESIGN §2).

- ``protocol.wire``: the TCP wire schema (messages, frames, codecs), derived from the engine's
  commands and events;
- ``protocol.signing``: agent keys and what each signature covers (login, accept, HTTP);
- ``protocol.codes``: the stable codes of the edge (the engine's are ``engine.rejections``);
- ``protocol.strategy``: the market-making ``Strategy`` interface that the reference makers
  (``agents``) implement and ``replay.backtest`` drives.

It imports ``engine`` only; ``adapters.gateway``, ``agents`` and ``replay`` import it, never
each other (``tests/unit/test_dependency_direction.py`` holds the graph).
"""
