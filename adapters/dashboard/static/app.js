// The ops dashboard page: REST reads, then /ws live. Read-only: it sends no command.
// Every buffer is bounded (the *_MAX names below); docs/dashboard.md describes the page.
"use strict";
(function () {
  const FLOW_ROWS_MAX = 100, LIQUIDATION_ROWS_MAX = 50, EQUITY_POINTS_MAX = 2000, QUEUE_MAX = 50000;
  const STATE_POLL_MS = 1000, HEALTH_POLL_MS = 2000, LEADERBOARD_POLL_MS = 5000, AGENT_POLL_MS = 2000;
  const STREAMS = "trade_request,quote,position_opened,funding,position_closed,liquidation,oracle";
  const stats = window.__dashboard = { received: 0, applied: 0, lastSeq: 0, reconnects: 0, dropped: 0, ready: false };
  const $ = (id) => document.getElementById(id);
  let charts = null;         // window.LightweightCharts once the vendored library loaded
  let paths = {};            // /openapi.json's paths: which optional endpoints this venue has
  let markets = {};          // symbol -> {el, chart, series, cone, rateSeries, lastTime}
  let queue = [];            // /ws messages waiting for the next frame (at most QUEUE_MAX)
  let ws = null, agent = null, equity = [], chartsOk = false;
  const RFQ_MARKETS_MAX = 10000, rfqMarket = new Map();  // request_id -> market, for quote rows

  const esc = (s) => String(s ?? "").replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]));
  const short = (k) => (k ? String(k).slice(0, 6) + "…" : "engine");
  const time = (ns) => new Date(Number(ns) / 1e6).toISOString().slice(11, 19);
  const pct = (r) => (r == null ? "–" : (Number(r) * 100).toFixed(4) + "%");
  async function getJson(path) {   // {status, body (200 only), code: the error body's code, if any}
    const r = await fetch(path, { headers: { Accept: "application/json" } });
    if (r.status === 200) return { status: 200, body: await r.json(), code: null };
    let code = null;
    try { code = (await r.json()).error.code; } catch (err) { code = null; }  // e.g. aiohttp's bare 404
    return { status: r.status, body: null, code };
  }
  // USDC decimal strings (the gateway's X_usdc) added exactly: micro-USDC as BigInt, back to the
  // gateway's rendering (no trailing zeros).
  function micro(s) {
    const t = String(s ?? "0"), neg = t.startsWith("-"), [i, f = ""] = (neg ? t.slice(1) : t).split(".");
    const v = BigInt(i || "0") * 1000000n + BigInt((f + "000000").slice(0, 6));
    return neg ? -v : v;
  }
  function usdc(v) {
    const neg = v < 0n, a = neg ? -v : v, f = (a % 1000000n).toString().padStart(6, "0").replace(/0+$/, "");
    return (neg ? "-" : "") + (a / 1000000n).toString() + (f ? "." + f : "");
  }

  // -- markets --------------------------------------------------------------------------
  function marketCard(m) {
    const el = document.createElement("div");
    el.className = "market"; el.dataset.market = m.market;
    el.innerHTML = `<h2>${esc(m.market)} <small class="source" data-testid="source-${esc(m.market)}"></small></h2>
      <div><span class="price" data-testid="price-${esc(m.market)}">–</span> <span class="meta">± <span class="conf">–</span> · age <span class="age">–</span></span></div>
      <div class="chart" data-chart="price"></div>
      <div class="meta">open interest: taker long <b class="oi-long">–</b> / taker short <b class="oi-short">–</b> USDC</div>
      <div class="oi"><div class="long"></div><div class="short"></div></div>
      <div class="meta">funding being negotiated: live quotes <b class="quotes">–</b>, best <b class="best">–</b>, median <b class="median">–</b>, last fill <b class="last-rate">–</b> (per 8h)</div>
      <div class="chart small" data-chart="rate"></div>
      <div class="estimate forecast">forecast: –</div>`;
    $("markets").appendChild(el);
    const entry = { el, lastTime: 0, lastRateTime: 0 };
    if (chartsOk) {
      const opts = { layout: { background: { color: "#161c23" }, textColor: "#8b949e" }, grid: { vertLines: { color: "#21262d" }, horzLines: { color: "#21262d" } },
        timeScale: { timeVisible: true, secondsVisible: true }, autoSize: true };
      entry.chart = charts.createChart(el.querySelector('[data-chart="price"]'), opts);
      entry.series = entry.chart.addSeries(charts.LineSeries, { color: "#58a6ff", lineWidth: 2, title: "oracle" });
      const cone = { color: "#a371f7", lineWidth: 1, lineStyle: 2, title: "80% range (estimate)", lastValueVisible: false, priceLineVisible: false };
      entry.coneUp = entry.chart.addSeries(charts.LineSeries, cone);
      entry.coneDown = entry.chart.addSeries(charts.LineSeries, { ...cone, title: "" });
      entry.rateChart = charts.createChart(el.querySelector('[data-chart="rate"]'), opts);
      const percent = { type: "price", precision: 4, minMove: 0.0001 };  // rates drawn in % per 8h
      entry.rateSeries = entry.rateChart.addSeries(charts.LineSeries, { color: "#3fb950", lineWidth: 1, title: "fill rate %", lineType: 1, priceFormat: percent });
      entry.rateFc = entry.rateChart.addSeries(charts.LineSeries, { color: "#a371f7", lineWidth: 1, lineStyle: 2, title: "forecast (estimate)", priceLineVisible: false, priceFormat: percent });
      const band = { color: "#a371f755", lineWidth: 1, lineStyle: 2, lastValueVisible: false, priceLineVisible: false, priceFormat: percent };
      entry.rateHi = entry.rateChart.addSeries(charts.LineSeries, band);
      entry.rateLo = entry.rateChart.addSeries(charts.LineSeries, band);
    }
    return entry;
  }
  const q = (entry, sel) => entry.el.querySelector(sel);
  function perSecond(points) {   // [[ms, value]] -> one point per second (the chart's time unit), ascending
    const out = [];
    for (const [ms, v] of points) {
      const t = Math.floor(ms / 1000);
      if (out.length && out[out.length - 1].time >= t) out[out.length - 1] = { time: out[out.length - 1].time, value: Number(v) };
      else out.push({ time: t, value: Number(v) });
    }
    return out;
  }
  function setPrice(entry, price, conf, source, ms) {
    q(entry, ".price").textContent = price ?? "–";
    q(entry, ".conf").textContent = conf ?? "–";
    if (source != null) q(entry, ".source").textContent = "source: " + source;
    if (entry.series && price != null) {
      const t = Math.max(Math.floor(ms / 1000), entry.lastTime);
      entry.series.update({ time: t, value: Number(price) }); entry.lastTime = t;
    }
  }
  function applyMarketState(m, history) {
    let entry = markets[m.market];
    if (!entry) entry = markets[m.market] = marketCard(m);
    if (history && entry.series && m.prices) {
      const data = perSecond(m.prices.map(([ms, p]) => [ms, p]));
      entry.series.setData(data); entry.lastTime = data.length ? data[data.length - 1].time : 0;
      const rates = perSecond(m.rates.map(([ms, r]) => [ms, 100 * Number(r)]));
      entry.rateSeries.setData(rates); entry.lastRateTime = rates.length ? rates[rates.length - 1].time : 0;
    }
    if (history || q(entry, ".price").textContent === "–") setPrice(entry, m.price, m.conf, m.source, m.publish_ns / 1e6);
    q(entry, ".age").textContent = m.age_ms == null ? "no price" : (m.age_ms / 1000).toFixed(1) + " s";
    q(entry, ".oi-long").textContent = m.oi_taker_long_usdc; q(entry, ".oi-short").textContent = m.oi_taker_short_usdc;
    const l = Number(m.oi_taker_long_usdc), s = Number(m.oi_taker_short_usdc), tot = l + s || 1;
    q(entry, ".oi .long").style.width = (100 * l / tot) + "%"; q(entry, ".oi .short").style.width = (100 * s / tot) + "%";
    q(entry, ".quotes").textContent = m.live_quotes; q(entry, ".best").textContent = pct(m.quote_rate_best);
    q(entry, ".median").textContent = pct(m.quote_rate_median); q(entry, ".last-rate").textContent = pct(m.last_fill_rate);
    showForecast(entry, m.forecast);
  }
  function showForecast(entry, f) {
    const el = q(entry, ".forecast");
    if (!f || !f.volatility) { el.textContent = "forecast (estimate): not enough data yet"; }
    else {
      const v = f.volatility, n = v.mean.length;
      let text = `estimate: σ of a 5 s move next minute ≈ ${v.mean[0].toFixed(2)} bps (80%: ${v.lower[0].toFixed(2)}–${v.upper[n - 1].toFixed(2)})`;
      if (f.funding_rate) { const r = f.funding_rate; text += ` · next fills' rate ≈ ${pct(r.mean[0])} (80%: ${pct(r.lower[0])}–${pct(r.upper[0])})`; }
      el.textContent = text;
    }
    if (!entry.series || !f) return;
    if (f.price_cone) {
      const c = f.price_cone, t0 = Math.floor(c.from_ms / 1000), step = c.step_ms / 1000;
      entry.coneUp.setData(c.upper.map((v, k) => ({ time: t0 + Math.round((k + 1) * step), value: v })));
      entry.coneDown.setData(c.lower.map((v, k) => ({ time: t0 + Math.round((k + 1) * step), value: v })));
    }
    if (f.funding_rate && entry.lastRateTime) {
      const r = f.funding_rate, t0 = entry.lastRateTime;
      const pts = (xs) => xs.map((v, k) => ({ time: t0 + k + 1, value: 100 * v }));
      entry.rateFc.setData(pts(r.mean)); entry.rateHi.setData(pts(r.upper)); entry.rateLo.setData(pts(r.lower));
    }
  }

  // -- flow, liquidations -----------------------------------------------------------------
  function describe(e) {
    switch (e.type) {
      case "rfq_opened.v1": return ["RFQ", e.market, `#${e.request_id} ${e.side} ${e.size_usdc} USDC ×${e.leverage}, max ${pct(e.max_funding_rate)} by ${short(e.trader)}`];
      case "rfq_closed.v1": return ["RFQ " + e.reason, "", `#${e.request_id}`];
      case "quote_submitted.v1": return ["quote", "", `#${e.quote_id} on RFQ #${e.request_id}: ${pct(e.funding_rate)}, ${e.collateral_usdc} USDC by ${short(e.maker)}`];
      case "position_opened.v1": return ["fill", e.market, `position #${e.position_id} ${e.size_usdc} USDC at ${e.entry_price}, ${pct(e.funding_rate)} (RFQ #${e.request_id}, quote #${e.quote_id})`];
      case "position_closed.v1": return ["close", "", `position #${e.position_id} ${e.reason} at ${e.price}`];
      case "funding_settled.v1": return ["funding", "", `${(e.position_ids || []).length} positions settled`];
      case "oracle_source_switched.v1": return ["oracle source", e.market, `${e.from_source} → ${e.to_source} (${e.reason})`];
      default: return [e.type, e.market || "", ""];
    }
  }
  function prepend(tbody, html, max, attrs) {
    const tr = document.createElement("tr"); tr.innerHTML = html;
    for (const [k, v] of Object.entries(attrs || {})) tr.dataset[k] = v;
    tbody.insertBefore(tr, tbody.firstChild);
    while (tbody.rows.length > max) tbody.deleteRow(tbody.rows.length - 1);
  }
  function addFlow(e, live = true) {
    if (e.type === "rfq_opened.v1") { rfqMarket.set(e.request_id, e.market); if (rfqMarket.size > RFQ_MARKETS_MAX) rfqMarket.delete(rfqMarket.keys().next().value); }
    let [what, market, detail] = describe(e);
    if (!market && e.request_id) market = rfqMarket.get(e.request_id) || "";
    if (live && e.type === "position_opened.v1") {
      const m = markets[e.market];
      if (m && m.rateSeries) { const t = Math.max(Math.floor(e.ts_ns / 1e9), m.lastRateTime); m.rateSeries.update({ time: t, value: 100 * Number(e.funding_rate) }); m.lastRateTime = t; }
    }
    prepend($("flow"), `<td>${e.seq}</td><td>${time(e.ts_ns)}</td><td>${esc(what)}</td><td>${esc(market)}</td><td>${esc(detail)}</td>`,
      FLOW_ROWS_MAX, { type: e.type, seq: e.seq });
  }
  function addLiquidation(e) {
    prepend($("liquidations"), `<td>${e.seq}</td><td>${time(e.ts_ns)}</td><td>#${e.position_id}</td><td>${esc(e.side)}</td><td>${esc(e.price)}</td><td>${esc(short(e.keeper))}</td><td>${esc(e.insurance_usdc)}</td>`,
      LIQUIDATION_ROWS_MAX, { positionId: e.position_id, seq: e.seq });
  }

  // -- the live stream --------------------------------------------------------------------
  function apply(e) {
    if (e.seq <= stats.lastSeq) return;   // the same event on two streams (or a resume overlap)
    stats.lastSeq = e.seq;
    if (e.type === "oracle_updated.v1") { const m = markets[e.market]; if (m) setPrice(m, e.price, e.conf, e.source, e.publish_ns / 1e6); }
    else if (e.type === "position_liquidated.v1") addLiquidation(e);
    else if (e.type !== "quote_released.v1") addFlow(e);
  }
  function drain() {
    if (queue.length) {
      const batch = queue; queue = [];
      for (const e of batch) apply(e);
      stats.applied += batch.length;
      $("last-seq").textContent = stats.lastSeq;
    }
    if (document.hidden) setTimeout(drain, 100); else requestAnimationFrame(drain);
  }
  function connect(fromSeq) {
    const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws?streams=${STREAMS}&from_seq=${fromSeq}`;
    ws = new WebSocket(url);
    ws.onopen = () => { $("ws-status").textContent = "live"; $("ws-status").dataset.state = "live"; };
    ws.onmessage = (m) => {
      const e = JSON.parse(m.data);
      if (e.type === "subscribed" || e.type === "pong") return;
      if (e.type === "error") { stats.slow = e.code; return; }
      stats.received++;
      if (queue.length >= QUEUE_MAX) { stats.dropped += queue.length; queue = []; }  // resynced by the next state read
      queue.push(e);
    };
    ws.onclose = () => {
      $("ws-status").textContent = "reconnecting…"; $("ws-status").dataset.state = "closed";
      stats.reconnects++;
      // Resume after the last applied event; a slow consumer resumes live from a fresh state read.
      setTimeout(async () => connect(stats.slow ? (await readState(true)) + 1 : stats.lastSeq + 1), 500);
      stats.slow = null;
    };
  }

  // -- periodic reads ---------------------------------------------------------------------
  async function readState(history) {
    const { body } = await getJson("/dashboard/state?history=" + (history ? 1 : 0));
    if (!body) return stats.lastSeq;
    for (const m of body.markets) applyMarketState(m, history);
    $("insurance").textContent = body.books.insurance_usdc; $("bad-debt").textContent = body.books.bad_debt_usdc;
    $("fees").textContent = body.books.fees_usdc; $("forecast-note").textContent = body.forecast_note;
    const ul = $("alerts");
    ul.innerHTML = body.alerts.length ? body.alerts.map((a) => `<li class="${esc(a.severity)}" data-kind="${esc(a.kind)}" data-subject="${esc(a.subject)}">${esc(a.severity)} · ${esc(a.message)}</li>`).join("")
      : '<li class="none">none</li>';
    $("health-edges").innerHTML = table(body.edges);
    if (history) {
      for (const e of body.flow.slice(-FLOW_ROWS_MAX)) addFlow(e, false);
      for (const e of body.liquidations) addLiquidation(e);
      stats.lastSeq = Math.max(stats.lastSeq, body.last_seq);
      $("charts-missing").hidden = chartsOk;
    }
    return body.last_seq;
  }
  function table(obj) {
    if (obj == null) return "–";
    if (typeof obj !== "object") return esc(obj);
    const rows = Object.entries(obj).map(([k, v]) => `<tr><th>${esc(k)}</th><td>${typeof v === "object" && v !== null ? table(v) : esc(v)}</td></tr>`);
    return rows.length ? `<table>${rows.join("")}</table>` : "–";
  }
  // /health: {status, last_seq, server_time_ms, queue_depth, markets, dev, oracle (the feed's
  // status() or null), projections: [{name, state, seq, lag_seq, lag_s, failures, retry_attempt,
  // failing_seq, last_error, events_applied, batches_from_memory, batches_from_journal, and in
  // its own process process_id, process_exits}]} (adapters/gateway/http_schemas.py Health).
  let health = null;           // the last /health body
  const PROJECTION_COLUMNS = ["name", "state", "seq", "lag_seq", "lag_s", "failures", "retry_attempt", "failing_seq", "events_applied",
    "batches_from_memory", "batches_from_journal", "process_id", "process_exits", "last_error"];
  function sqlOn() {           // the SQL read models run iff /health lists the "sql" projection
    return !!health && health.projections.some((p) => p.name === "sql");
  }
  function projectionsTable(rows) {
    if (!rows.length) return '<span class="off">no projections on this venue (SQL read models off)</span>';
    return `<table><thead><tr>${PROJECTION_COLUMNS.map((k) => `<th>${esc(k)}</th>`).join("")}</tr></thead><tbody>${rows.map((p) =>
      `<tr data-projection="${esc(p.name)}" data-state="${esc(p.state)}">${PROJECTION_COLUMNS.map((k) => `<td data-field="${k}">${esc(p[k] ?? "–")}</td>`).join("")}</tr>`).join("")}</tbody></table>`;
  }
  // /health's oracle: null without a feed ([oracle] source = none), else the feed's status():
  // {primary, check, markets: {SYM: {source, <src>_age_ms..., divergence_bps?}}, failovers,
  // last_switches: [{market, from, to, reason, at_ns, ...}], dropped: {source: {reason: n}}, rejected: {code: n}}.
  function oracleView(o) {
    if (!o) return '<span class="off" data-testid="oracle-off">no oracle feed on this venue ([oracle] source = none): prices only from /dev/oracle</span>';
    const ages = [...new Set(Object.values(o.markets).flatMap((m) => Object.keys(m).filter((k) => k !== "source")))];
    const markets = `<table><thead><tr><th>market</th><th>source in use</th>${ages.map((k) => `<th>${esc(k)}</th>`).join("")}</tr></thead><tbody>${Object.entries(o.markets).map(([sym, m]) =>
      `<tr data-oracle-market="${esc(sym)}"><td>${esc(sym)}</td><td data-field="source">${esc(m.source)}</td>${ages.map((k) => `<td data-field="${esc(k)}">${esc(m[k] ?? "–")}</td>`).join("")}</tr>`).join("")}</tbody></table>`;
    const counts = (obj) => Object.keys(obj).length ? table(obj) : "none";
    const switches = o.last_switches.length ? `<table>${o.last_switches.slice().reverse().map((w) =>
      `<tr><td>${time(w.at_ns)}</td><td>${esc(w.market)}</td><td>${esc(w.from)} → ${esc(w.to)}</td><td>${esc(w.reason)}</td></tr>`).join("")}</table>` : "none";
    return `<div>primary <b data-testid="oracle-primary">${esc(o.primary)}</b> · check <b data-testid="oracle-check">${esc(o.check ?? "none")}</b> · failovers <b data-testid="oracle-failovers">${esc(o.failovers)}</b></div>${markets}
      <div class="meta">last switches</div>${switches}<div class="meta">dropped (source → reason → count)</div>${counts(o.dropped)}<div class="meta">rejected by the engine</div>${counts(o.rejected)}`;
  }
  async function readHealth() {
    const { status, body } = await getJson("/health");
    if (!body) { $("health-venue").innerHTML = `<span class="off">/health answered ${status}</span>`; return; }
    health = body;
    const { oracle, projections, ...venue } = body;
    $("health-venue").innerHTML = table(venue);
    $("health-projections").innerHTML = projectionsTable(projections);
    $("health-oracle").innerHTML = oracleView(oracle);
    // The read models moved past what the leaderboard shows: read it now, not at the next poll.
    const sql = projections.find((p) => p.name === "sql");
    if (sql && leaderboardAsOf !== null && sql.seq > leaderboardAsOf) readLeaderboard();
  }

  // /leaderboard?by=: {as_of_seq, by, agents: [{rank, agent, <agent_kpis columns in human units>}]}
  // (adapters/gateway/http_history.py, ledger/projections/sql/queries.py). 503 UNAVAILABLE with
  // the SQL read models off; a venue without the route: not in /openapi.json (or a 404).
  const LEADERBOARD_COLUMNS = [["rank", "#"], ["agent", "agent"], ["net_pnl_usdc", "net PnL"], ["sharpe_daily", "Sharpe"],
    ["max_drawdown_usdc", "max drawdown"], ["volume_usdc", "volume"], ["win_rate_bps", "win rate"], ["reliability_bps", "maker reliability"]];
  const bps = (v) => (v == null ? "–" : (Number(v) / 100).toFixed(2) + "%");
  const kpi = (k, v) => (v == null ? "–" : k.endsWith("_bps") ? bps(v) : k === "sharpe_daily" ? Number(v).toFixed(2) : String(v));
  let leaderboardAsOf = null;  // as_of_seq of the leaderboard shown
  function sqlOff(why) {
    leaderboardAsOf = null;
    $("leaderboard").innerHTML = `<span class="off">SQL read models off (${esc(why)})</span>`;
  }
  async function readLeaderboard() {
    if (!paths["/leaderboard"]) return sqlOff("no /leaderboard on this venue");
    if (!health) { $("leaderboard").textContent = "waiting for /health"; return; }
    if (!sqlOn()) return sqlOff("no sql projection in /health");
    const { status, body, code } = await getJson("/leaderboard?by=" + encodeURIComponent($("leaderboard-by").value));
    if (status === 404 || status === 503) return sqlOff(`/leaderboard answered ${status}${code ? " " + code : ""}`);
    if (!body) { $("leaderboard").innerHTML = `<span class="off">/leaderboard answered ${status}${code ? " " + esc(code) : ""}</span>`; return; }
    leaderboardAsOf = body.as_of_seq;
    const asOf = `<div class="meta">by ${esc(body.by)} · as of seq <b data-testid="leaderboard-as-of">${esc(body.as_of_seq)}</b></div>`;
    if (!body.agents.length) { $("leaderboard").innerHTML = asOf + '<span class="off">no agents yet</span>'; return; }
    $("leaderboard").innerHTML = asOf + `<table><thead><tr>${LEADERBOARD_COLUMNS.map(([, t]) => `<th>${esc(t)}</th>`).join("")}</tr></thead><tbody>${body.agents.map((r) =>
      `<tr data-agent="${esc(r.agent)}">${LEADERBOARD_COLUMNS.map(([k]) => `<td data-kpi="${k}">${k === "agent" ? `<a href="#/agent/${esc(r.agent)}">${esc(short(r.agent))}</a>` : esc(kpi(k, r[k]))}</td>`).join("")}</tr>`).join("")}</tbody></table>`;
  }

  // -- an agent's page --------------------------------------------------------------------
  // /agents/{agent}/stats: {as_of_seq, agent, <agent_kpis columns>, first_seq, first_ts_ns,
  // free_usdc, held_usdc, deposited_usdc, withdrawn_usdc, open_positions} (human units); 404
  // UNKNOWN_AGENT before the read model saw the agent; 503 UNAVAILABLE with SQL off. It has no
  // equity series: the page's curve is sampled while it is open.
  const KPI_ROWS = [["net_pnl_usdc", "net PnL"], ["realized_pnl_usdc", "realized PnL"], ["fees_paid_usdc", "fees paid"],
    ["funding_received_usdc", "funding received"], ["funding_paid_usdc", "funding paid"], ["liquidation_penalty_usdc", "liquidation penalty"],
    ["keeper_rewards_usdc", "keeper rewards"], ["max_drawdown_usdc", "max drawdown"], ["sharpe_daily", "Sharpe (daily, ×√365)"],
    ["days", "days"], ["volume_usdc", "volume"], ["positions_opened", "positions opened"], ["positions_ended", "positions ended"],
    ["win_rate_bps", "win rate"], ["open_positions", "open positions"], ["quotes_submitted", "quotes submitted"],
    ["fill_ratio_bps", "fill ratio"], ["reliability_bps", "maker reliability"], ["deposited_usdc", "deposited"],
    ["withdrawn_usdc", "withdrawn"], ["free_usdc", "free"], ["held_usdc", "held"]];
  async function readStats(id) {   // {stats, why}: stats null with the reason shown instead
    if (!paths["/agents/{agent}/stats"]) return { stats: null, why: "SQL read models off (no /agents/{agent}/stats on this venue)" };
    if (!sqlOn()) return { stats: null, why: "SQL read models off (no sql projection in /health)" };
    const { status, body, code } = await getJson(`/agents/${id}/stats`);
    if (status === 503 || (status === 404 && code !== "UNKNOWN_AGENT")) return { stats: null, why: `SQL read models off (/agents/…/stats answered ${status}${code ? " " + code : ""})` };
    if (code === "UNKNOWN_AGENT") return { stats: null, why: "not in the SQL read models yet (no trade, deposit or quote applied)" };
    return body ? { stats: body, why: "" } : { stats: null, why: `/agents/…/stats answered ${status}${code ? " " + code : ""}` };
  }
  async function readAgent() {
    if (!agent) return;
    const id = encodeURIComponent(agent);
    const { status, body } = await getJson(`/accounts/${id}`);
    if (!body) { $("agent-account").textContent = `/accounts answered ${status}`; return; }
    // Unrealized PnL is live (the engine's marks), not in the read models.
    const unrealized = body.positions.reduce((s, p) => s + (p.long_agent === agent ? 1n : -1n) * micro(p.unrealized_pnl_long_usdc), 0n);
    const live = micro(body.free_usdc) + micro(body.held_usdc) + micro(body.margin_usdc);
    const { stats, why } = await readStats(id);
    let booked, source;
    if (stats) {   // the agent's money per the read models: deposits − withdrawals + net PnL from trading
      booked = micro(stats.deposited_usdc) - micro(stats.withdrawn_usdc) + micro(stats.net_pnl_usdc);
      source = `SQL read models, as of seq ${stats.as_of_seq}: deposited − withdrawn + net PnL`;
      $("agent-stats").innerHTML = `<div class="meta">as of seq <b data-testid="stats-as-of">${esc(stats.as_of_seq)}</b></div><table>${KPI_ROWS.map(([k, t]) =>
        `<tr><th>${esc(t)}</th><td data-kpi="${k}">${esc(kpi(k, stats[k]))}</td></tr>`).join("")}</table>`;
    } else {
      booked = live;
      source = "/accounts: free + held + margin";
      $("agent-stats").innerHTML = `<span class="off">${esc(why)}</span>`;
    }
    const value = booked + unrealized;
    const el = $("agent-account");
    el.innerHTML = `free ${esc(body.free_usdc)} · held ${esc(body.held_usdc)} · margin ${esc(body.margin_usdc)} (live) · booked equity <b data-testid="agent-booked">${usdc(booked)}</b>
      <small>(${esc(source)})</small> + unrealized PnL ${usdc(unrealized)} = equity <b data-testid="agent-equity">${usdc(value)}</b> USDC`;
    el.dataset.source = stats ? "sql" : "accounts";
    $("agent-positions").innerHTML = body.positions.length ? table(Object.fromEntries(body.positions.map((p) => [`#${p.position_id} ${p.market}`,
      { side: p.long_agent === agent ? "long" : "short", size_usdc: p.size_usdc, entry_price: p.entry_price, funding_rate: pct(p.funding_rate),
        margin_usdc: p.long_agent === agent ? p.margin_long_usdc : p.margin_short_usdc }]))) : "none";
    if (paths["/agents/{agent}/risk"]) {
      const r = await getJson(`/agents/${id}/risk`);
      $("agent-risk").innerHTML = r.body ? table(r.body) : `<span class="off">/agents/…/risk answered ${r.status}</span>`;
    } else $("agent-risk").innerHTML = '<span class="off">risk view not on this venue</span>';
    equity.push([Date.now(), Number(value) / 1e6]); if (equity.length > EQUITY_POINTS_MAX) equity.shift();
    $("equity-note").textContent = `sampled every ${AGENT_POLL_MS / 1000} s by this page while it is open (${stats ? "booked from the SQL read models" : "from /accounts"} + live unrealized PnL)`;
    if (chartsOk) {
      if (!window.__equity) { window.__equity = charts.createChart($("equity-chart"), { autoSize: true, layout: { background: { color: "#161c23" }, textColor: "#8b949e" } });
        window.__equitySeries = window.__equity.addSeries(charts.LineSeries, { color: "#3fb950" }); }
      window.__equitySeries.setData(perSecond(equity));
    }
  }
  function route() {
    const m = location.hash.match(/^#\/agent\/([1-9A-HJ-NP-Za-km-z]{32,44})$/);
    agent = m ? m[1] : null; equity = [];
    $("venue-view").hidden = !!agent; $("agent-view").hidden = !agent;
    if (agent) { $("agent-id").textContent = agent; readAgent(); }
  }

  async function every(ms, fn) { for (;;) { try { await fn(); } catch (err) { console.warn("dashboard read failed", err); } await new Promise((r) => setTimeout(r, ms)); } }

  async function main() {
    $("health").innerHTML = '<h3>venue (/health)</h3><div id="health-venue">–</div>'
      + '<h3>projections (/health)</h3><div id="health-projections">–</div>'
      + '<h3>oracle feed (/health)</h3><div id="health-oracle">–</div>'
      + '<h3>journal, sequencer, lags, hedger (dashboard)</h3><div id="health-edges">–</div>';
    const probe = await getJson("/dashboard/state?history=0");
    if (probe.body && probe.body.charts_asset) {   // only asked for when the venue has it: no 404 in the console
      await new Promise((resolve) => {
        const tag = document.createElement("script");
        tag.src = "/dashboard/assets/lightweight-charts.js"; tag.onload = resolve; tag.onerror = resolve;
        document.head.appendChild(tag);
      });
    }
    charts = window.LightweightCharts || null;
    chartsOk = !!charts;
    $("charts-missing").hidden = chartsOk;
    try { paths = (await getJson("/openapi.json")).body.paths || {}; } catch (err) { paths = {}; }
    const lastSeq = await readState(true);
    connect(lastSeq + 1);
    requestAnimationFrame(drain);
    stats.ready = true;
    document.body.dataset.ready = "1";
    $("agent-form").onsubmit = (ev) => { ev.preventDefault(); location.hash = "#/agent/" + $("agent-input").value.trim(); };
    $("leaderboard-by").onchange = readLeaderboard;
    try { await readHealth(); } catch (err) { console.warn("dashboard read failed", err); }  // before the SQL reads: is SQL on?
    window.addEventListener("hashchange", route); route();
    every(STATE_POLL_MS, () => readState(false));
    every(HEALTH_POLL_MS, readHealth);
    every(LEADERBOARD_POLL_MS, readLeaderboard);
    every(AGENT_POLL_MS, readAgent);
  }
  main();
})();
