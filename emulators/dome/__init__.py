"""A faithful simulator of the trade and market APIs, for tests, the demo and benchmarks, all served from
one seeded universe of wallets and markets covering every edge, on one port:

- Dome's trade history, `GET /v1/polymarket/orders` (docs/design.md, "Facts"): the documented
  parameters, errors and `pagination_key` cursor, both per-key rate-limit windows (429 with
  Retry-After; `x-ratelimit-limit`, `-remaining` and `-reset` on every answer, for the window with
  the least room: simulator behaviour, as third-party clients read Dome's "when present", dome-api.md
  §4; `ratelimit_headers=False` leaves them out);
- Dome's `GET /v1/polymarket/markets` and `/events` (dome-api.md §5), on the same key budget;
- Polymarket's Data API v2, `GET /v2/trades` (docs/design.md, "Facts"): the `{data,
  pagination}` envelope, snake_case rows in shares, the signed `next_cursor`, `taker_only` defaulting
  to true, the 3-year default window, the size filter's 0.01 default, the per-client 200 per 10 s
  window, v2 error bodies and `x-trace-id`;
- Polymarket's Gamma `GET /gamma/markets/keyset` and `/gamma/events` (polymarket-data-api.md §5),
  with its JSON-encoded string fields, the `closed` filter and its own per-client windows;

plus latency and injectable faults (5xx, 429 bursts, 503 with Retry-After, a CDN's HTML block page,
slow answers, dropped connections, truncated JSON, rows missing a field, short pages), a virtual now
that `advance` moves (new fills, late-indexed fills, a market resolving; cursors stay valid), and the
ground truth of rows, markets and events for either source, to check a run line for line.

    universe.py     wallets, fills and the catalogue now: seeded rows merged with what advances added
    wallets.py      who is in the universe and their seeded histories (`Seeded`: row i computed, never stored)
    fills.py        how fills are derived from (seed, wallet, position); markets.py the market catalogue
    growth.py       time moves: the overlay of added fills, late-indexed fills, resolutions (`advance`)
    catalog.py      what the markets APIs know: times, status, volumes, events, the market edge cases
    market_views.py a market and an event as Dome and as Gamma serve them
    dome_rows.py    a fill as a Dome row; polymarket.py a fill as a Data API v2 row, and which fills a query shows
    orders.py       Dome's /orders without HTTP: parameter checks, error bodies, keyset pages
    cursor.py       Dome's signed base64 `pagination_key` (a keyset cursor on the sort key)
    dome_markets.py Dome's /markets and /events without HTTP; gamma.py Gamma's
    trades.py       the Data API's endpoint without HTTP: parameter checks, v2 errors, keyset pages
    truth.py        ground-truth JSONL of rows, markets and events
    app.py          the FastAPI app; routes_markets.py, routes_sim.py its other routes; pipeline.py the
                    request paths (auth, faults, limits); state.py its live state; responses.py the answers
    server.py       `run_simulator(config)` on a background thread; `python -m emulators.dome` for a process

Deliberate differences: only queries with `user=` are served on the trade endpoints (without it:
501); market filters narrow a wallet's rows by a scan; Dome's `total` is exact; old Dome rows carry
null block_number/log_index; on `/v2/trades`, `event_id` is not simulated (501); Gamma lives under
`/gamma` of the same host (`RunningSimulator.gamma_url`); volumes do not move with time.
"""
