"""The ops dashboard (DESIGN §9): a read-only page served by the venue at ``GET /``, live over
``/ws``, with alerts and forecasts computed here. ``docs/dashboard.md`` is its manual.

| module | what it does |
|---|---|
| ``alerts`` | robust z-scores and the alert rules (pure functions) |
| ``forecast`` | volatility and funding-rate forecasts with bands (statsmodels ETS; pure) |
| ``model`` | bounded rolling series fed by the hub's durable batches |
| ``service`` | the model, the background forecaster and the alerts of one venue; ``/metrics`` |
| ``routes`` | ``register(app, gateway)``: ``GET /``, ``/dashboard/state``, ``/dashboard/assets/{name}`` |
"""
