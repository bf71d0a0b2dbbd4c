"""The feed's screen and failover, driven through the Sink interface every source writes to,
on an injected clock: what reaches the sequencer, in which order, from which source."""

from __future__ import annotations

from adapters.oracle import feed as f
from engine.commands import OracleUpdate, SwitchOracleSource
from tests.support import FakeClock

MS = 1_000_000
SYMBOLS = ["BTC-PERP", "ETH-PERP"]


class Named:
    def __init__(self, name):
        self.name = name

    async def run(self, sink):  # driven by the test through the feed's sinks
        pass


class Sequencer:
    """Where the feed submits: keeps the commands (the engine's answer is not under test)."""

    def __init__(self):
        self.commands = []

    def submit_with(self, command, reply):
        self.commands.append(command)

    @property
    def prices(self):
        return [c for c in self.commands if type(c) is OracleUpdate]

    @property
    def switches(self):
        return [(c.market, c.from_source, c.to_source, c.reason) for c in self.commands
                if type(c) is SwitchOracleSource]


def make(check=True, **kw):
    clock, seq = FakeClock(), Sequencer()
    params = dict(stale_ns=1_000 * MS, divergence_bps_max=100, failback_ns=500 * MS, future_skew_ns_max=2_000 * MS,
                  watch_interval_s=1.0)
    feed = f.OracleFeed(SYMBOLS, Named("pyth"), Named("synthetic") if check else None, submit_with=seq.submit_with,
                        clock=clock, **{**params, **kw})
    return feed, clock, seq


def price(market, price_e8, publish_ns, source):
    return OracleUpdate(market, price_e8, price_e8 // 1_000, publish_ns, source)


def test_screen_future_repeat_backwards():
    feed, clock, seq = make(check=False)
    now = clock()
    feed.primary.update(price(0, 100, now + 3_000 * MS, "pyth"))  # clock skew: 3 s ahead
    feed.primary.update(price(0, 100, now - 10 * MS, "pyth"))
    feed.primary.update(price(0, 101, now - 10 * MS, "pyth"))  # same publish time
    feed.primary.update(price(0, 102, now - 20 * MS, "pyth"))  # backwards
    feed.primary.update(price(5, 102, now, "pyth"))
    assert [c.price_e8 for c in seq.prices] == [100]
    assert feed.dropped == {("pyth", f.FUTURE): 1, ("pyth", f.REPEAT): 1, ("pyth", f.BACKWARDS): 1,
                            ("pyth", f.UNKNOWN_MARKET): 1}


def test_stale_primary_fails_over_then_back_after_the_hold():
    feed, clock, seq = make()
    switches = []
    feed.on_switch.append(lambda *switch: switches.append(switch))
    t0 = clock()
    feed.primary.update(price(0, 10_000, t0, "pyth:btc"))
    feed.check.update(price(0, 10_010, t0, "synthetic"))
    assert [c.source for c in seq.prices] == ["pyth:btc"]
    clock.advance_ms(1_001)  # the primary's price is now too old
    feed.check.update(price(0, 10_020, clock(), "synthetic"))
    assert switches == [(0, "pyth", "synthetic", f.STALE)]
    # Journaled: the switch goes to the sequencer just before the check's price.
    assert seq.commands[-2:] == [SwitchOracleSource(0, "pyth", "synthetic", f.STALE),
                                 price(0, 10_020, clock(), "synthetic")]
    assert [c.source for c in seq.prices] == ["pyth:btc", "synthetic"]
    clock.advance_ms(10)
    feed.primary.update(price(0, 10_000, clock() - 5 * MS, "pyth:btc"))  # healthy again, held back
    feed.check.update(price(0, 10_030, clock(), "synthetic"))
    assert feed.active[0] is feed.check and seq.prices[-1].price_e8 == 10_030
    clock.advance_ms(500)
    feed.check.update(price(0, 10_001, clock(), "synthetic"))  # the hold is over: back to the primary
    assert switches[-1] == (0, "synthetic", "pyth", f.RECOVERED)
    assert seq.switches == switches  # failover and failback, each journaled
    assert seq.prices[-1].price_e8 == 10_030  # the primary's last is older than the engine's: not sent
    feed.primary.update(price(0, 10_003, clock(), "pyth:btc"))
    assert [c.price_e8 for c in seq.prices][-2:] == [10_030, 10_003]
    assert type(seq.commands[-2]) is SwitchOracleSource  # the failback precedes the primary's first price
    publish = [c.publish_ns for c in seq.prices]
    assert publish == sorted(publish) and len(set(publish)) == len(publish)  # never older, never equal


def test_divergence_switches_only_that_market_and_the_watch_sees_staleness():
    feed, clock, seq = make()
    t0 = clock()
    for market, (p, c) in enumerate([(10_000, 10_050), (5_000, 5_001)]):
        feed.check.update(price(market, c, t0, "synthetic"))
        feed.primary.update(price(market, p, t0, "pyth"))
    assert [feed.active[m].name for m in (0, 1)] == ["pyth", "pyth"]  # 50 bps: within 100
    clock.advance_ms(1)
    feed.primary.update(price(0, 10_200, clock(), "pyth"))  # 149 bps from the check
    assert [feed.active[m].name for m in (0, 1)] == ["synthetic", "pyth"]
    assert seq.switches == [(0, "pyth", "synthetic", f.DIVERGED)]
    assert feed.status()["markets"]["BTC-PERP"] == {"source": "synthetic", "pyth_age_ms": 0, "synthetic_age_ms": 1,
                                                    "divergence_bps": 149}
    clock.advance_ms(2_000)  # both stale now: no fresh check, nothing to switch to
    feed._evaluate(1, clock())
    assert feed.active[1] is feed.primary


def test_check_going_stale_hands_back_to_a_healthy_primary_at_once():
    feed, clock, seq = make()
    t0 = clock()
    feed.check.update(price(0, 10_000, t0, "synthetic"))
    feed.primary.update(price(0, 12_000, t0, "pyth"))  # diverged: the check is used
    assert feed.active[0] is feed.check
    clock.advance_ms(1_001)
    feed.primary.update(price(0, 12_000, clock(), "pyth"))  # check stale, primary fresh
    assert feed.active[0] is feed.primary and feed.switches[-1]["reason"] == f.CHECK_STALE
    assert seq.switches == [(0, "pyth", "synthetic", f.DIVERGED), (0, "synthetic", "pyth", f.CHECK_STALE)]


def test_primary_gets_a_grace_period_before_its_first_price():
    feed, clock, seq = make()
    feed.check.update(price(0, 10_000, clock(), "synthetic"))
    assert feed.active[0] is feed.primary and seq.prices == []
    clock.advance_ms(1_001)
    feed.check.update(price(0, 10_001, clock(), "synthetic"))
    assert feed.active[0] is feed.check and seq.prices[-1].price_e8 == 10_001


def test_drop_logging_is_bounded():
    assert [n for n in range(1, 2_000) if f._worth_logging(n)] == [*range(1, 11), 100, 1_000]
