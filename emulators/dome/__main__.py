"""`python -m emulators.dome --port 8081 --tier dev`: serve the trade API simulator until interrupted:
Dome at http://HOST:PORT/v1/polymarket/orders (and /markets, /events), the Polymarket Data API at
http://HOST:PORT/v2/trades, Gamma at http://HOST:PORT/gamma/markets/keyset and /gamma/events.

`--export-ground-truth PATH` writes every wallet's rows as JSONL first (in the shape of
`--export-source`: dome, or polymarket = what `/v2/trades?taker_only=false&start=1` returns);
`--export-only` stops there.
"""

from __future__ import annotations

import argparse
import sys

import uvicorn

from emulators.dome.app import create_app
from emulators.dome.config import SimConfig
from emulators.dome.server import hide_drop_tracebacks
from emulators.dome.universe import Universe


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m emulators.dome", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8081)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--size", type=int, default=40, help="ordinary wallets besides the special ones")
    p.add_argument("--whale-trades", type=int, default=250_000)
    p.add_argument("--wallet-scale", type=int, default=1, help="ordinary wallets' fills times this")
    p.add_argument("--tier", choices=("free", "dev", "pro", "none"), default="dev", help="rate-limit preset per key")
    p.add_argument("--per-second", type=int, help="override the tier's per-second limit")
    p.add_argument("--per-10s", type=int, help="override the tier's per-10-seconds limit")
    p.add_argument("--latency-ms", type=float, default=0.0, help="mean latency, jittered ±25%%")
    p.add_argument(
        "--no-ratelimit-headers", action="store_true", help="Dome: no x-ratelimit-*, only Retry-After on 429"
    )
    p.add_argument("--max-page-rows", type=int, help="Dome: at most this many rows per /orders page")
    p.add_argument("--data-api-per-10s", type=int, default=200, help="per-client window of /v2/trades (0: unlimited)")
    for name in ("error-5xx", "burst-429", "slow", "drop", "truncated", "unavailable", "html", "missing-field"):
        p.add_argument(f"--{name}-rate", type=float, default=0.0)
    p.add_argument("--short-page-rate", type=float, default=0.0, help="/v2/trades: half pages, has_more true")
    p.add_argument("--slow-seconds", type=float, default=5.0)
    p.add_argument("--unavailable-retry-after", type=int, default=1, help="Retry-After of the 503 fault")
    p.add_argument("--html-status", type=int, default=403, help="status of the CDN block page fault")
    p.add_argument("--fault-seed", type=int, default=1)
    p.add_argument(
        "--fail-wallet",
        action="append",
        default=[],
        metavar="WALLET=STATUS",
        help="always answer STATUS for WALLET (repeatable)",
    )
    p.add_argument(
        "--api-key",
        action="append",
        dest="api_keys",
        metavar="KEY",
        help="accepted bearer key (repeatable); none given: any non-empty key",
    )
    p.add_argument("--export-ground-truth", metavar="PATH", help="write the ground truth JSONL before serving")
    p.add_argument("--export-source", choices=("dome", "polymarket"), default="dome", help="shape of the export")
    p.add_argument("--export-only", action="store_true", help="write the ground truth and exit")
    return p


def config_from(args: argparse.Namespace) -> SimConfig:
    fail_wallets = {}
    for item in args.fail_wallet:
        wallet, _, status = item.partition("=")
        fail_wallets[wallet] = int(status)
    return SimConfig(
        seed=args.seed,
        size=args.size,
        whale_trades=args.whale_trades,
        wallet_scale=args.wallet_scale,
        tier=args.tier,
        per_second=args.per_second,
        per_10s=args.per_10s,
        latency_ms=args.latency_ms,
        error_5xx_rate=args.error_5xx_rate,
        burst_429_rate=args.burst_429_rate,
        slow_rate=args.slow_rate,
        slow_seconds=args.slow_seconds,
        drop_rate=args.drop_rate,
        truncated_rate=args.truncated_rate,
        unavailable_rate=args.unavailable_rate,
        unavailable_retry_after=args.unavailable_retry_after,
        html_rate=args.html_rate,
        html_status=args.html_status,
        missing_field_rate=args.missing_field_rate,
        short_page_rate=args.short_page_rate,
        data_api_per_10s=args.data_api_per_10s or None,
        ratelimit_headers=not args.no_ratelimit_headers,
        max_page_rows=args.max_page_rows,
        fault_seed=args.fault_seed,
        fail_wallets=fail_wallets,
        api_keys=set(args.api_keys) if args.api_keys else None,
    )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.export_only and not args.export_ground_truth:
        print("--export-only needs --export-ground-truth PATH", file=sys.stderr)
        return 2
    config = config_from(args)
    if args.export_ground_truth:
        universe = Universe(config.seed, config.size, config.whale_trades, config.wallet_scale)
        counts = universe.export_ground_truth(args.export_ground_truth, args.export_source)
        print(
            f"ground truth ({args.export_source}): {sum(counts.values()):,} rows of {len(counts)} wallets "
            f"-> {args.export_ground_truth}",
            flush=True,
        )
        if args.export_only:
            return 0
    hide_drop_tracebacks()
    root = f"http://{args.host}:{args.port}"
    print(f"Dome simulator: base URL {root}/v1 (tier {args.tier})", flush=True)
    print(f"Polymarket Data API simulator: base URL {root} (GET /v2/trades)", flush=True)
    print(f"Gamma simulator: base URL {root}/gamma (GET /markets/keyset, /events)", flush=True)
    uvicorn.run(create_app(config), host=args.host, port=args.port, log_level="warning", lifespan="off")
    return 0


if __name__ == "__main__":
    sys.exit(main())
