"""A faithful simulator of Dome's trade-history API (`GET /v1/polymarket/orders`), for tests, the
demo and benchmarks: the documented parameters, errors and `pagination_key` cursor, both per-key
rate-limit windows, latency, injectable faults, and a seeded universe of wallets covering every edge
(reference/dome-api.md). Its ground truth can be exported to check a run row for row.

    universe.py  wallets and rows (lazy: row i of a wallet is computed, never stored)
    fills.py     how fills are derived from (seed, wallet, position); markets.py the market catalogue
    orders.py    the endpoint without HTTP: parameter checks, Dome's error bodies, keyset pages
    cursor.py    the signed base64 `pagination_key`
    app.py       the FastAPI app; state.py its live state; responses.py the fault and error answers
    server.py    `run_simulator(config)` on a background thread; `python -m emulators.dome` for a process

Deliberate differences from Dome: only queries with `user=` are served (without it: 501); the market
filters narrow a wallet's rows by a scan; `total` is exact; old rows carry null block_number/log_index.
"""
