"""A faithful simulator of the two trade APIs, for tests, the demo and benchmarks, both served from one
seeded universe of wallets covering every edge, on one port:

- Dome's trade history, `GET /v1/polymarket/orders` (reference/dome-api.md): the documented
  parameters, errors and `pagination_key` cursor, both per-key rate-limit windows;
- Polymarket's Data API v2, `GET /v2/trades` (reference/polymarket-data-api.md): the `{data,
  pagination}` envelope, snake_case rows in shares, the signed `next_cursor`, `taker_only` defaulting
  to true, the 3-year default window, the size filter's 0.01 default, the per-client 200 per 10 s
  window, v2 error bodies and `x-trace-id`;

plus latency and injectable faults (5xx, 429 bursts, 503 with Retry-After, a CDN's HTML block page,
slow answers, dropped connections, truncated JSON, rows missing a field, short pages). The ground
truth of either source can be exported to check a run row for row.

    universe.py    wallets and fills (lazy: row i of a wallet is computed, never stored)
    fills.py       how fills are derived from (seed, wallet, position); markets.py the market catalogue
    orders.py      Dome's endpoint without HTTP: parameter checks, error bodies, keyset pages
    cursor.py      Dome's signed base64 `pagination_key`
    polymarket.py  a fill as a Data API v2 row, and which fills a query shows
    trades.py      the Data API's endpoint without HTTP: parameter checks, v2 errors, keyset pages
    app.py         the FastAPI app; state.py its live state; responses.py the fault and error answers
    server.py      `run_simulator(config)` on a background thread; `python -m emulators.dome` for a process

Deliberate differences: only queries with `user=` are served (without it: 501); market filters
narrow a wallet's rows by a scan; Dome's `total` is exact; old Dome rows carry null
block_number/log_index; on `/v2/trades`, `event_id` is not simulated (501).
"""
