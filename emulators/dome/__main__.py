"""`python -m emulators.dome --port 8081 --tier dev`: serve the Dome API simulator until interrupted.

`--export-ground-truth PATH` writes every wallet's rows as JSONL first; `--export-only` stops there.
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
    p.add_argument("--tier", choices=("free", "dev", "pro", "none"), default="dev", help="rate-limit preset per key")
    p.add_argument("--per-second", type=int, help="override the tier's per-second limit")
    p.add_argument("--per-10s", type=int, help="override the tier's per-10-seconds limit")
    p.add_argument("--latency-ms", type=float, default=0.0, help="mean latency, jittered ±25%%")
    for name in ("error-5xx", "burst-429", "slow", "drop", "truncated"):
        p.add_argument(f"--{name}-rate", type=float, default=0.0)
    p.add_argument("--slow-seconds", type=float, default=5.0)
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
        counts = Universe(config.seed, config.size, config.whale_trades).export_ground_truth(args.export_ground_truth)
        print(
            f"ground truth: {sum(counts.values()):,} rows of {len(counts)} wallets -> {args.export_ground_truth}",
            flush=True,
        )
        if args.export_only:
            return 0
    hide_drop_tracebacks()
    print(f"Dome simulator: base URL http://{args.host}:{args.port}/v1 (tier {args.tier})", flush=True)
    uvicorn.run(create_app(config), host=args.host, port=args.port, log_level="warning", lifespan="off")
    return 0


if __name__ == "__main__":
    sys.exit(main())
