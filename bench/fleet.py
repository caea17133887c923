"""`python -m bench.fleet`: does a fleet of fetchers use the whole API key? (docs/design.md, rule 10)

Starts the local cloud (emulators/dev.py: the GCS and BigQuery emulators, the project's Pub/Sub
emulator, the Dome simulator at the Dev tier, the dispatcher and the loader) with N fetcher
processes behind a balancer (emulators/balancer.py, Cloud Run's front: each push to the instance with
the fewest in hand), dispatches a backlog of wallets, and watches the simulator: the key's requests
admitted and refused, second by second, and each fetcher's pace and requests (its GET /status).
Prints the requests per 10 s over time, the share of the key used while the backlog lasts (Dev: 500
per 10 s, 50/s sustained; target >= 90%) and the 429 share (target < 1%).
Figures only: nothing here asserts on time.

    python -m bench.fleet                       # adaptive shares (FETCHER_MAX_INSTANCES=10), 3 fetchers
    python -m bench.fleet --fixed               # the old fixed share: each fetcher limited to key / 10
    python -m bench.fleet --compare             # both, one after the other
    python -m bench.fleet --no-headers          # a simulator that sends no x-ratelimit-*: 429s alone
    [--fetchers N] [--max-instances N] [--seconds S] [--size N] [--page-rows N] [--latency-ms MS]

The backlog: `--size` ordinary wallets plus the special ones, served `--page-rows` rows a page
(the simulator's `max_page_rows`), so a small universe makes thousands of requests.
"""

from __future__ import annotations

import argparse
import bisect
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import requests

from emulators.dev import DevCloud, DevConfig
from emulators.dome.config import SimConfig

KEY_PER_10S = 500  # the Dev tier: 100/s and 500 per 10 s; the 10 s window binds (50/s sustained)
KEY_PER_SECOND = 100
TARGET_SHARE = 0.90
STORM_SHARE = 0.01


@dataclass
class Sample:
    at: float  # seconds since the first request the simulator admitted
    admitted: int  # cumulative, on the key (trades, markets, events)
    refused: int
    window: int  # admitted in the 10 s before `at`: the simulator's 10 s window
    backlog: int  # wallets-push messages not yet acknowledged
    paces: dict[str, float | None]
    requests: dict[str, int | None]


@dataclass
class Run:
    label: str
    samples: list[Sample] = field(default_factory=list)
    load: tuple[tuple[float, float, float], tuple[float, float, float]] | None = None
    forwarded: dict[str, int] = field(default_factory=dict)


class KeyCounter:
    """Every admission decision of the simulator's per-key windows, with its time (wraps the running
    simulator's `SlidingWindows.admit`; changes nothing it answers)."""

    def __init__(self, cloud: DevCloud) -> None:
        assert cloud.sim is not None
        limiter = cloud.sim.state.limiter
        admit = limiter.admit
        self.lock = threading.Lock()
        self.times: list[float] = []  # when each request was admitted, in order
        self.refused = 0
        self.first: float | None = None

        def counted(key: str) -> Any:
            verdict = admit(key)
            with self.lock:
                if verdict is None or verdict.allowed:
                    self.times.append(time.monotonic())
                    self.first = self.first or self.times[-1]
                else:
                    self.refused += 1
            return verdict

        limiter.admit = counted  # type: ignore[method-assign]

    def read(self) -> tuple[float, int, int, int]:
        """(seconds since the first request, admitted, refused, admitted in the last 10 s), now."""
        with self.lock:
            now = time.monotonic()
            assert self.first is not None
            window = len(self.times) - bisect.bisect_right(self.times, now - 10.0)
            return now - self.first, len(self.times), self.refused, window


def service_env(args: argparse.Namespace, fixed: bool) -> dict[str, str]:
    env = {"FETCH_MAX_PAGES": "50", "FETCH_BUDGET_SECONDS": "60", "MAX_IN_FLIGHT": "2000"}
    if fixed:  # what Terraform used to give each instance: floor(limit / max instances), fixed
        env |= {
            "DOME_TIER": "custom",
            "DOME_RATE_PER_SECOND": str(KEY_PER_SECOND // args.max_instances),
            "DOME_RATE_PER_10S": str(KEY_PER_10S // args.max_instances),
            "FETCHER_MAX_INSTANCES": "1",
        }
    else:  # what Terraform gives now: the key's windows as the ceiling, the fleet's size for the floor
        env |= {"DOME_TIER": "dev", "FETCHER_MAX_INSTANCES": str(args.max_instances)}
    return env


def measure(args: argparse.Namespace, fixed: bool) -> Run:
    label = f"{'fixed share (key / ' + str(args.max_instances) + ')' if fixed else 'adaptive share'}"
    label += f", {args.fetchers} fetcher{'s' if args.fetchers > 1 else ''}" + (
        ", no rate-limit headers" if args.no_headers else ""
    )
    print(f"\n== {label}: starting the local cloud ...", flush=True)
    sim = SimConfig(
        tier="dev",
        size=args.size,
        whale_trades=args.whale_trades,
        latency_ms=args.latency_ms,
        max_page_rows=args.page_rows,
        ratelimit_headers=not args.no_headers,
    )
    config = DevConfig(sim=sim, fetchers=args.fetchers, service_env=service_env(args, fixed), workdir=args.keep)
    run = Run(label)
    with DevCloud(config) as cloud:
        counter = KeyCounter(cloud)
        fetchers = [n for n in cloud.services if n.startswith("fetcher")]
        before = os.getloadavg()
        answer = requests.post(f"{cloud.url('dispatcher')}/dispatch", json={"mode": "backfill"}, timeout=120)
        answer.raise_for_status()
        print(f"dispatched {answer.json()['published']} wallets; measuring {args.seconds:.0f} s", flush=True)
        deadline = time.monotonic() + 120
        while counter.first is None and time.monotonic() < deadline:
            time.sleep(0.1)
        if counter.first is None:
            raise RuntimeError("the simulator saw no request within 120 s of the dispatch")
        next_at = counter.first
        while True:
            next_at += 1.0
            time.sleep(max(0.0, next_at - time.monotonic()))
            at, admitted, refused, window = counter.read()
            backlog = cloud.backlog("wallets-push")
            status = {n: _status(cloud.services[n].url) for n in fetchers}
            paces = {n: s.get("pace_per_second") for n, s in status.items()}
            sent = {n: s.get("requests") for n, s in status.items()}
            run.samples.append(Sample(at, admitted, refused, window, backlog, paces, sent))
            if at >= args.seconds or backlog == 0:
                break
        run.load = (before, os.getloadavg())
        if cloud.balancer is not None:
            run.forwarded = dict(cloud.balancer.forwarded)
    return run


def _status(url: str) -> dict[str, Any]:
    try:
        body = requests.get(f"{url}/status", timeout=2).json()
    except (requests.RequestException, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def report(run: Run) -> dict[str, float]:
    samples = run.samples
    print(f"\n-- {run.label}")
    print("  t (s)  requests in the last 10 s (of 500)  429s  backlog  each fetcher: pace / requests per s sent")
    start = Sample(0.0, 0, 0, 0, samples[0].backlog, {}, {n: 0 for n in samples[0].requests})
    for k in range(10, int(samples[-1].at) + 1, 10):
        s = next(x for x in samples if x.at >= k)
        back = max((x for x in samples if x.at <= s.at - 10), key=lambda x: x.at, default=start)
        fetchers = "  ".join(_fetcher(s, back, name) for name in s.paces)
        print(
            f"  {s.at:5.0f}  {s.window:>5}  {'#' * (s.window // 20):<25}"
            f"  {s.refused - back.refused:>4}  {s.backlog:>7}  {fetchers}"
        )
    with_backlog = [s for s in samples if s.backlog > 0]
    end = with_backlog[-1] if with_backlog else samples[-1]
    steady = next((s for s in samples if s.at >= 10 - 1e-6), samples[0])
    share = end.admitted / (KEY_PER_10S / 10 * end.at)
    steady_share = (end.admitted - steady.admitted) / (KEY_PER_10S / 10 * max(end.at - steady.at, 1e-9))
    refused = end.refused / max(end.admitted + end.refused, 1)
    print(f"  backlog throughout {end.at:.0f} s: {end.admitted} requests admitted, {end.refused} refused (429)")
    print(f"  the fullest 10 s window: {max(x.window for x in samples)} of {KEY_PER_10S} (sampled each second)")
    print(
        f"  share of the key used: {share:.1%} from the first request, {steady_share:.1%} after the first 10 s"
        f" (target >= {TARGET_SHARE:.0%}: {'met' if steady_share >= TARGET_SHARE else 'MISSED'})"
    )
    print(f"  429 share: {refused:.2%} (target < {STORM_SHARE:.0%}: {'met' if refused < STORM_SHARE else 'MISSED'})")
    if run.forwarded:
        print(f"  pushes per fetcher: {list(run.forwarded.values())}")
    if run.load:
        print(f"  load average (1, 5, 15 min): before {_load(run.load[0])}, after {_load(run.load[1])}")
    return {"share": share, "steady": steady_share, "refused": refused}


def _fetcher(now: Sample, back: Sample, name: str) -> str:
    pace, sent, before = now.paces.get(name), now.requests.get(name), back.requests.get(name)
    rate = "-" if sent is None or before is None or now.at <= back.at else f"{(sent - before) / (now.at - back.at):.1f}"
    return f"{'-' if pace is None else f'{pace:.1f}':>5} / {rate:<5}"


def _load(load: tuple[float, float, float]) -> str:
    return " ".join(f"{x:.2f}" for x in load)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.fleet", description=__doc__)
    p.add_argument("--fetchers", type=int, default=3, help="fetcher processes")
    p.add_argument("--max-instances", type=int, default=10, help="the fleet's most instances (Terraform's default)")
    p.add_argument("--fixed", action="store_true", help="the old fixed share: each fetcher key / max instances")
    p.add_argument("--compare", action="store_true", help="run the adaptive share, then the fixed one")
    p.add_argument("--no-headers", action="store_true", help="the simulator sends no x-ratelimit-* headers")
    p.add_argument("--seconds", type=float, default=60.0, help="how long to measure from the first request")
    p.add_argument("--size", type=int, default=400, help="ordinary wallets besides the special ones")
    p.add_argument("--whale-trades", type=int, default=20_000)
    p.add_argument("--page-rows", type=int, default=20, help="rows per page the simulator serves at most")
    p.add_argument("--latency-ms", type=float, default=80.0, help="the simulator's mean latency")
    p.add_argument("--keep", help="keep the logs and emulator files in this folder")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    modes = [False, True] if args.compare else [args.fixed]
    results = [(fixed, report(measure(args, fixed))) for fixed in modes]
    if len(results) > 1:
        print("\n-- compared (share of the key while there is a backlog, after the first 10 s; 429 share)")
        for fixed, r in results:
            print(f"  {'fixed   ' if fixed else 'adaptive'}  {r['steady']:6.1%}  {r['refused']:6.2%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
