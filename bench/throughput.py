"""`make bench`: the embedded run against the API simulator, ~80 ms latency, 2% of requests 5xx.

Two lists per source (Dome at the Dev tier, 50 requests/s sustained; the Data API at 200 per 10 s),
each a fresh DuckDB file in its own child process (so its peak RSS is its own; the simulator stays in
this process):

  no-whale     108 ordinary wallets, ~390,000 trades
  whale-last   the same, and a 250,000-trade wallet last in the file

Printed: wall time against the API's floor (the requests over the key's sustained rate; target
<= 1.2x without the whale, <= 1.25x with it), 429s (< 1%), requests/s, trades/s, where the fetch
workers' time went, the loader and dispatch, the simulator's 10 s windows, CPU, peak RSS, and a
row-for-row check against the simulator's ground truth. PASS/MISS against the targets; the exit
status is non-zero only when a run failed or was not exact.

    python -m bench.throughput [--quick] [--source dome|polymarket|both] [--size N] [--scale N]
                               [--whale-trades N] [--workers N] [--part-pages N] [--in-flight N]
                               [--flush-files N] [--no-split] [--keep DIR]
"""

from __future__ import annotations

import argparse
import bisect
import dataclasses
import itertools
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.memory import duckdb_connection, peak_rss_mb, rss_mb, warehouse_peak_rss_mb, warehouse_rss_mb

LATENCY_MS = 80.0
FAULT_RATE = 0.02  # requests the simulator answers 5xx (the independent server: 2%)
TARGET_FRACTION = 0.90  # of the sustained limit
STORM_FRACTION = 0.01  # more 429s than this share of the requests is a storm
WHALE_TARGET, NO_WHALE_TARGET = 1.25, 1.20  # wall time over the API's floor
CORES = os.cpu_count() or 1

# ---------------------------------------------------------------- child: one case, one process


class Probe:
    """Where the run's time goes: the fetch workers' limiter waits, HTTP round trips and waits for a
    task; the loader's batches; the dispatch calls. Wraps the runner's collaborators, changes nothing."""

    def __init__(self, runner: Any) -> None:
        from shared.embedded import runner as runner_module

        self.lock = threading.Lock()
        self.seconds = {"limiter": 0.0, "limiter_waited": 0.0, "http": 0.0, "idle": 0.0}
        self.calls: dict[str, int] = {"limiter_waits": 0}
        self.longest: dict[str, float] = {"limiter_wait": 0.0}
        limiter, session, bus = runner.deps.source.limiter, runner.deps.source.session, runner.bus
        self.sustained_per_second: float = limiter.sustained_per_second
        acquire, get, bus_get = limiter.acquire, session.get, bus.get

        def timed_acquire() -> float:
            t = time.monotonic()
            waited = acquire()
            with self.lock:
                self.seconds["limiter"] += time.monotonic() - t
                if waited > 0:
                    self.seconds["limiter_waited"] += waited
                    self.calls["limiter_waits"] += 1
                    self.longest["limiter_wait"] = max(self.longest["limiter_wait"], waited)
            return waited

        limiter.acquire = timed_acquire
        session.get = self._timed("http", get)
        bus.get = self._timed("idle", bus_get)  # only the fetch workers take from the bus one at a time
        runner._load = self._timed("load", runner._load)
        runner_module.dispatch = self._timed("dispatch", runner_module.dispatch)

    def _timed(self, what: str, function: Any) -> Any:
        self.calls[what], self.seconds[what], self.longest[what] = 0, 0.0, 0.0

        def timed(*args: Any, **kwargs: Any) -> Any:
            t = time.monotonic()
            try:
                return function(*args, **kwargs)
            finally:
                spent = time.monotonic() - t
                with self.lock:
                    self.calls[what] += 1
                    self.seconds[what] += spent
                    self.longest[what] = max(self.longest[what], spent)

        return timed


class Timeline:
    """Every second: requests sent, tasks and files pending on the bus, wallets merged, CPU seconds, RSS."""

    def __init__(self, runner: Any, every: float = 1.0) -> None:
        from shared.ports.publisher import Topic

        self.rows: list[tuple[float, int, int, int, int, float, float]] = []
        self.threads: dict[int, tuple[str, float]] = {}  # native thread id -> (group, CPU seconds)
        self._stop = threading.Event()
        started = time.monotonic()

        def sample() -> None:
            while not self._stop.wait(every):
                self._sample_threads()
                self.rows.append(
                    (
                        time.monotonic() - started,
                        runner.source.stats.requests,
                        runner.bus.pending(Topic.WALLETS),
                        runner.bus.pending(Topic.FILES),
                        runner.progress.wallets_completed,
                        cpu_seconds(),
                        rss_mb() + warehouse_rss_mb(runner),  # the runner and its warehouse process
                    )
                )

        self._thread = threading.Thread(target=sample, name="timeline", daemon=True)
        self._thread.start()

    def _sample_threads(self) -> None:
        """CPU per thread from /proc (Linux); threads Python did not start are DuckDB's own."""
        names = {t.native_id: t.name for t in threading.enumerate()}
        for tid in os.listdir("/proc/self/task") if os.path.isdir("/proc/self/task") else ():
            try:
                fields = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # the thread ended
            name = names.get(int(tid), "duckdb")
            group = (
                "fetch workers"
                if name.startswith("fetch-")
                else {"MainThread": "main (start-up, dispatch, progress)"}.get(name, name)
            )
            self.threads[int(tid)] = (group, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"))

    def stop(self) -> tuple[list[tuple[float, int, int, int, int, float]], dict[str, float]]:
        self._stop.set()
        self._thread.join()
        self._sample_threads()
        by_group: dict[str, float] = {}
        for group, seconds in self.threads.values():
            by_group[group] = by_group.get(group, 0.0) + seconds
        return self.rows, by_group


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_case(args: argparse.Namespace) -> int:
    from emulators.truth import verify_dome, verify_polymarket
    from shared import bootstrap
    from shared.cli.run import execute, new_run_id, run_config
    from shared.embedded.runner import EmbeddedRunner
    from shared.embedded.wallets_file import import_wallets
    from shared.settings import Settings

    directory = Path(args.dir)
    knobs: dict[str, Any] = {"fetch_max_pages": args.part_pages} if args.part_pages else {}
    if args.no_split:
        knobs["split_windows"] = False
    settings = Settings(
        trade_source=args.source,
        dome_api_base_url=args.base_url,
        polymarket_api_base_url=args.data_api_url or "http://unused.invalid",
        dome_api_key=args.api_key,
        dome_tier="dev",
        **knobs,
    )
    db = directory / f"{args.case}.duckdb"
    deps = bootstrap.embedded(settings, db=db, process=settings.warehouse_process)  # as `backfill run` opens it
    deps.warehouse.create_schema()
    # Trades only: markets and events spend requests on the same key, which would blur the figure.
    config = run_config(settings, new_run_id(), args.workers, lookups=False)
    overrides = {"max_in_flight": args.in_flight, "flush_files": args.flush_files}
    runner = EmbeddedRunner(dataclasses.replace(config, **{k: v for k, v in overrides.items() if v}), deps)
    import_wallets(directory / f"{args.case}-wallets.txt", runner.warehouse, runner.dead_letters)
    probe = Probe(runner)
    rss_start, cpu_start = peak_rss_mb(), cpu_seconds()
    started, timeline = time.monotonic(), Timeline(runner)
    code = execute(runner, quiet=True)
    elapsed = time.monotonic() - started
    rows, cpu_by_thread = timeline.stop()
    warehouse_rss = warehouse_peak_rss_mb(runner)
    runner.warehouse.close()  # waits for the warehouse process to end: its CPU is then counted
    rss_peak, cpu = peak_rss_mb(), cpu_seconds() - cpu_start  # before the check, which holds the ground truth
    warehouse_cpu = children_cpu_seconds()
    with duckdb_connection(db) as con:
        check = (verify_polymarket if args.source == "polymarket" else verify_dome)(con, args.truth)
    stats, config = runner.source.stats, runner.config
    result = {
        "exit": code,
        "elapsed": elapsed,
        "started": started,  # time.monotonic(): one clock for every process of the machine (Linux)
        "cpu": cpu,
        "requests": stats.requests,
        "rate_limited": stats.rate_limited,
        "retries": stats.retries,
        "errors_by_status": stats.errors_by_status,
        "rows_loaded": runner.progress.rows_loaded,
        "parts_loaded": runner.progress.parts_loaded,
        "wallets_completed": runner.progress.wallets_completed,
        "sustained_per_second": probe.sustained_per_second,
        "config": {
            "workers": config.workers,
            "part_pages": config.budget.max_pages,
            "max_in_flight": config.max_in_flight,
            "flush_files": config.flush_files,
            "warehouse_process": settings.warehouse_process,
        },
        "seconds": probe.seconds,
        "calls": probe.calls,
        "longest": probe.longest,
        "rss_start_mb": rss_start,
        "rss_peak_mb": rss_peak + warehouse_rss,  # both processes' peaks: never less than the peak of their sum
        "runner_rss_peak_mb": rss_peak,
        "warehouse_rss_peak_mb": warehouse_rss,
        "warehouse_cpu": warehouse_cpu,
        "timeline": rows,
        "cpu_by_thread": cpu_by_thread,
        "check": {**vars(check), "exact": check.exact},
    }
    print(json.dumps(result))
    return 0


# ---------------------------------------------------------------- parent: simulator, cases, report


class Sampler:
    """Polls the simulator's request counter, to see its 10 s windows from the server's side."""

    def __init__(self, sim: Any, every: float = 0.05) -> None:
        self.sim, self.every = sim, every
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.monotonic(), self.sim.state.stats.requests))
            time.sleep(self.every)

    def edges(self, started: float) -> tuple[float, float]:
        """When the first and the last request reached the server, in seconds after `started` (a
        time.monotonic() of the case's process: the same clock), each to within one poll."""
        busy = [(t, n) for t, n in self.samples if n > 0]
        if not busy:
            return 0.0, 0.0
        last = next(t for t, n in busy if n == busy[-1][1])
        return busy[0][0] - self.every / 2 - started, last - self.every / 2 - started

    def windows(self) -> tuple[float, list[int], int]:
        """(seconds from first to last request, requests per 10 s from the first, busiest sliding 10 s)."""
        busy = [(t, n) for t, n in self.samples if n > 0]
        if not busy:
            return 0.0, [], 0
        total = busy[-1][1]
        t0 = busy[0][0] - self.every  # the first request came within one poll before its sample
        t_end = next(t for t, n in busy if n == total)
        times = [t for t, _ in busy]

        def seen_by(t: float) -> int:
            i = bisect.bisect_right(times, t)
            return busy[i - 1][1] if i else 0

        edges = [t0 + 10.0 * k for k in range(int((t_end - t0) // 10.0) + 2)]
        buckets = [seen_by(b) - seen_by(a) for a, b in itertools.pairwise(edges)]
        busiest = max(n - seen_by(t - 10.0) for t, n in busy)
        return t_end - t0, buckets, busiest


def run_child(case: Case, sim: Any, directory: Path, knobs: list[str]) -> dict[str, Any]:
    (directory / f"{case.name}-wallets.txt").write_text("\n".join(case.wallets) + "\n")
    if case.source == "polymarket":
        time.sleep(10.5)  # the Data API's window is per client, not per key: let the last case's empty
    sim.state.reset_stats()
    command = [sys.executable, "-m", "bench.throughput", "--case", case.name, "--dir", str(directory)]
    command += ["--truth", str(case.truth), "--source", case.source, "--base-url", sim.base_url]
    command += ["--data-api-url", sim.data_api_url, "--api-key", f"bench-{case.name}", *knobs]  # a key each
    load_before, cpu_before = os.getloadavg()[0], cpu_seconds()
    with Sampler(sim) as sampler:
        done = subprocess.run(command, capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
    if done.returncode != 0 or not done.stdout.strip():
        sys.stderr.write(done.stderr[-4000:])
        raise SystemExit(f"case {case.name!r}: the child process failed (exit {done.returncode})")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["simulator"] = {
        "requests": sim.state.stats.requests,
        "rate_limited": sim.state.stats.rate_limited,
        "cpu": cpu_seconds() - cpu_before,
    }
    result["load_average"] = (load_before, os.getloadavg()[0])
    result["span"], result["buckets"], result["busiest_10s"] = sampler.windows()
    result["first_request"], result["last_request"] = sampler.edges(result["started"])
    return result


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def report_throughput(r: dict[str, Any]) -> bool:
    limit, elapsed, workers = r["sustained_per_second"], r["elapsed"], r["config"]["workers"]
    rate, span_rate = r["requests"] / elapsed, r["simulator"]["requests"] / max(r["span"], 1e-6)
    storm = r["rate_limited"] > STORM_FRACTION * r["requests"]
    s, calls, longest = r["seconds"], r["calls"], r["longest"]
    worker_seconds = workers * elapsed
    other = worker_seconds - s["limiter"] - s["http"] - s["idle"]
    lines = [
        f"  requests          {r['requests']:,} in {elapsed:.1f} s = {rate:.1f}/s"
        f" = {rate / limit:.1%} of the sustained {limit:.0f}/s   "
        f"[target >= {TARGET_FRACTION:.0%}: {verdict(rate >= TARGET_FRACTION * limit)}]",
        f"  key busy          {r['simulator']['requests']:,} from the first request to the last ({r['span']:.1f} s)"
        f" = {span_rate:.1f}/s = {span_rate / limit:.1%}",
        f"  per 10 s (server) {', '.join(str(b) for b in r['buckets'])}; busiest sliding 10 s: {r['busiest_10s']}",
        f"  edges             first request {r['first_request']:.2f} s after the start, last {r['last_request']:.2f} s;"
        f" the run ended {elapsed - r['last_request']:.2f} s after it (the loader's last batches, the end)",
        f"  trades            {r['rows_loaded']:,} = {r['rows_loaded'] / elapsed:,.0f} trades/s"
        f" ({r['wallets_completed']:,} wallets, {r['parts_loaded']:,} parts)",
        f"  429s              {r['rate_limited']} seen by the client, {r['simulator']['rate_limited']} sent by the"
        f" server   [no storm (<= {STORM_FRACTION:.0%} of requests): {verdict(not storm)}]",
        f"  retries           {r['retries']} (non-200 by status: {r['errors_by_status'] or 'none'})",
        f"  client limiter    {calls['limiter_waits']:,} of {r['requests']:,} acquires waited,"
        f" {s['limiter_waited']:.1f} s in all, longest {longest['limiter_wait']:.2f} s",
        f"  fetch workers     {workers} x {elapsed:.1f} s: HTTP {s['http'] / worker_seconds:.0%}"
        f" (on average {s['http'] / elapsed:.1f} requests in flight), limiter {s['limiter'] / worker_seconds:.0%},"
        f" waiting on the task queue {s['idle'] / worker_seconds:.0%}, parse/write/GIL {other / worker_seconds:.0%}",
        f"  loader            busy {s['load']:.1f} s ({s['load'] / elapsed:.0%} of the run) in {calls['load']}"
        f" batches of <= {r['config']['flush_files']} files, longest {longest['load']:.1f} s",
        f"  dispatch          {s['dispatch']:.1f} s in {calls['dispatch']} calls (cap {r['config']['max_in_flight']}"
        f" wallets in flight), longest {longest['dispatch']:.2f} s",
    ]
    print("\n".join(lines))
    return rate >= TARGET_FRACTION * limit and not storm


def report_timeline(r: dict[str, Any], step: float = 5.0) -> None:
    """The runner's own view, every `step` seconds: what it sent, how busy its process was, what waited."""
    print(
        "  timeline          t (s)  requests/s  runner CPU  tasks pending  files pending  wallets merged"
        "  RSS (MB, highest since the last line)"
    )
    last = (0.0, 0, 0, 0, 0, r["timeline"][0][5] if r["timeline"] else 0.0, 0.0)
    highest = 0.0
    for row in r["timeline"]:
        t, requests, tasks, files, merged, cpu, rss = row
        highest = max(highest, rss)
        if t - last[0] < step - 0.5 and row is not r["timeline"][-1]:
            continue
        span = max(t - last[0], 1e-6)
        print(
            f"                    {t:5.0f}  {(requests - last[1]) / span:10.1f}  {(cpu - last[5]) / span:10.0%}"
            f"  {tasks:13,}  {files:13,}  {merged:14,}  {highest:6.0f}"
        )
        last, highest = row, 0.0


def report_resources(r: dict[str, Any]) -> None:
    elapsed = r["elapsed"]
    cpu = r["warehouse_cpu"]
    own = f" its warehouse process {cpu:.1f} s ({cpu / elapsed:.0%}), " if r["config"]["warehouse_process"] else " "
    before, after = r["load_average"]
    print(
        f"  CPU               runner {r['cpu']:.1f} s ({r['cpu'] / elapsed:.0%} of one core),"
        f"{own}simulator"
        f" {r['simulator']['cpu']:.1f} s ({r['simulator']['cpu'] / elapsed:.0%}); {CORES} cores,"
        f" load average {before:.1f} -> {after:.1f}{' (machine busy: figures disturbed)' if before > CORES else ''}"
    )
    threads = sorted(r["cpu_by_thread"].items(), key=lambda item: -item[1])
    print(
        "  by thread        " + ", ".join(f"{group} {seconds:.1f} s" for group, seconds in threads if seconds >= 0.05)
    )


def report_check(r: dict[str, Any]) -> bool:
    c = r["check"]
    print(
        f"  exact             {'yes' if c['exact'] else 'NO'}: {c['warehouse_rows']:,} rows for {c['truth_rows']:,}"
        f" in the ground truth, {c['duplicates']} duplicates, {c['missing']} missing, {c['extra']} extra"
    )
    return bool(c["exact"]) and r["exit"] == 0


@dataclass(frozen=True)
class Case:
    name: str
    source: str
    wallets: list[str]
    truth: Path
    trades: int
    pages: int  # the fewest requests that can page it: one per 1,000 rows of each wallet (at least one)


def report_floor(case: Case, r: dict[str, Any], target: float) -> bool:
    """Wall time against the API's floor: the requests sent over the key's sustained rate (and the
    fewest requests the wallets could take, which splitting adds to by a request or so per window)."""
    limit, elapsed = r["sustained_per_second"], r["elapsed"]
    floor, fewest = r["requests"] / limit, case.pages / limit
    ratio = elapsed / floor
    share = r["rate_limited"] / max(r["requests"], 1)
    print(
        f"  floor             {r['requests']:,} requests / {limit:.0f} per s = {floor:.1f} s; wall {elapsed:.1f} s ="
        f" {ratio:.2f}x the floor   [target <= {target:.2f}x: {verdict(ratio <= target)}]\n"
        f"                    (the fewest requests: {case.pages:,} = {fewest:.1f} s, wall {elapsed / fewest:.2f}x;"
        f" {r['requests'] - case.pages:+,} requests for windows, retries and look-ahead)\n"
        f"  429s              {share:.2%} of requests   [target < 1%: {verdict(share < STORM_FRACTION)}]"
    )
    return ratio <= target and share < STORM_FRACTION


def benchmark(
    directory: Path,
    *,
    size: int,
    scale: int,
    whale_trades: int,
    seed: int,
    sources: list[str],
    knobs: list[str],
    keep_rows: bool = True,
    every: float = 5.0,
) -> int:
    from emulators.dome.config import SimConfig
    from emulators.dome.server import run_simulator

    config = SimConfig(
        seed=seed,
        size=size,
        whale_trades=whale_trades,
        wallet_scale=scale,
        tier="dev",
        latency_ms=LATENCY_MS,
        error_5xx_rate=FAULT_RATE,
    )
    with run_simulator(config) as sim:
        universe = sim.state.universe
        ordinary, whale = universe.ordinary(), universe.special["whale"]
        print(
            f"simulator: ~{LATENCY_MS:.0f} ms latency, {FAULT_RATE:.0%} of requests answered 5xx; Dome at the Dev tier"
            f" (100/s and 500 per 10 s: 50/s sustained), the Data API at its 200 per 10 s (20/s);"
            f" {len(ordinary):,} wallets, {sum(universe.count(w) for w in ordinary):,} trades, the whale"
            f" {universe.count(whale):,} trades (last in the file)",
            flush=True,
        )
        cases = []
        for source in sources:
            for name, wallets in (("no-whale", ordinary), ("whale-last", [*ordinary, whale])):
                truth = directory / f"{source}-{name}-truth.jsonl"
                counts = universe.export_ground_truth(truth, source=source, wallets=wallets)
                pages = sum(max(1, -(-n // 1000)) for n in counts.values())
                cases.append(Case(f"{source}-{name}", source, wallets, truth, sum(counts.values()), pages))
        # The real API's CPU is not on this machine: the simulator computes the rows it will serve before
        # the clock starts (the same rows: tests/emulators), so serving a page costs ~1 ms, not ~9.
        if keep_rows:
            universe.keep([*ordinary, whale])
        results = {case.name: run_child(case, sim, directory, knobs) for case in cases}
    ok = True
    for case in cases:
        r = results[case.name]
        print(
            f"\n{case.name}: {len(case.wallets):,} wallets, {case.trades:,} trades ({r['config']['workers']} workers,"
            f" parts of <= {r['config']['part_pages']} pages, <= {r['config']['max_in_flight']} wallets in flight,"
            f" DuckDB {'in a process of its own' if r['config']['warehouse_process'] else 'in the runner'})"
        )
        met = report_floor(case, r, WHALE_TARGET if case.name.endswith("whale-last") else NO_WHALE_TARGET)
        report_throughput(r)
        report_timeline(r, every)
        report_resources(r)
        exact = report_check(r)
        own = r["config"]["warehouse_process"]
        runner, warehouse = r["runner_rss_peak_mb"], r["warehouse_rss_peak_mb"]
        parts = f" (runner {runner:.0f} MB + its warehouse process {warehouse:.0f} MB)"
        print(f"  peak RSS          {r['rss_peak_mb']:.0f} MB{parts if own else ''}")
        ok = ok and exact
        print(f"  verdict           {'exact' if exact else 'NOT EXACT'}; floor and 429 targets {verdict(met)}")
    print(f"\n{'all runs exact' if ok else 'A RUN FAILED OR WAS NOT EXACT'}")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.throughput", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller list and whale, Dome only")
    parser.add_argument("--size", type=int, help="ordinary wallets (default 108; --quick 40)")
    parser.add_argument("--scale", type=int, help="ordinary wallets' fills times this (default 15: ~3,600 each)")
    parser.add_argument("--whale-trades", type=int, help="the whale's trades (default 250,000; --quick 50,000)")
    parser.add_argument("--source", choices=("dome", "polymarket", "both"), help="default both (--quick: dome)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--every", type=float, default=5.0, help="seconds between the timeline's printed lines")
    parser.add_argument(
        "--cold-simulator",
        action="store_true",
        help="the simulator computes each page's rows when asked (its CPU then competes with the run)",
    )
    parser.add_argument("--keep", metavar="DIR", help="work in DIR and keep the DuckDB files and the ground truth")
    runner_knobs = parser.add_argument_group("runner knobs (forwarded to each case)")
    runner_knobs.add_argument("--workers", type=int, default=8)
    runner_knobs.add_argument("--part-pages", type=int, help="pages per part file (default FETCH_MAX_PAGES)")
    runner_knobs.add_argument("--in-flight", type=int, help="wallets dispatched and not yet merged (RunConfig)")
    runner_knobs.add_argument("--flush-files", type=int, help="files per load batch (RunConfig)")
    runner_knobs.add_argument("--no-split", action="store_true", help="never split a wallet into windows (before)")
    for internal in ("--case", "--dir", "--base-url", "--data-api-url", "--api-key", "--truth"):
        parser.add_argument(internal, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.case:
        args.source = args.source or "dome"
        return run_case(args)
    knobs = ["--workers", str(args.workers)] + (["--no-split"] if args.no_split else [])
    for flag in ("part_pages", "in_flight", "flush_files"):
        if getattr(args, flag):
            knobs += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
    size = args.size if args.size is not None else (40 if args.quick else 108)
    whale = args.whale_trades if args.whale_trades is not None else (50_000 if args.quick else 250_000)
    source = args.source or ("dome" if args.quick else "both")
    sources = ["dome", "polymarket"] if source == "both" else [source]
    directory = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-"))
    directory.mkdir(parents=True, exist_ok=True)
    try:
        return benchmark(
            directory,
            size=size,
            scale=args.scale or 15,
            whale_trades=whale,
            seed=args.seed,
            sources=sources,
            knobs=knobs,
            keep_rows=not args.cold_simulator,
            every=args.every,
        )
    finally:
        if not args.keep:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
