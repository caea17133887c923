"""`python -m emulators.dev` (`make dev`): the whole topology on one machine, without Docker.

Starts the GCS and BigQuery emulators (PyPI processes), the project's Pub/Sub emulator and the Dome
simulator (threads of this process), bootstraps infra/resources.yaml with the push endpoints pointing
at the fetcher and the loader, seeds the traders table with the simulator's wallets, then runs the
three services with uvicorn, each in its own process group. Ctrl-C or SIGTERM stops everything it
started, by PID. `DevCloud` is the same orchestration as a class: tests/e2e drives it.

    python -m emulators.dev --size 20 --whale-trades 5000 --faults --fail-wallet one=400

With `--fetchers N` (N > 1) the fetcher runs as N processes, `fetcher-1` .. `fetcher-N`, behind a
front (emulators/balancer.py: to the instance with the fewest requests in hand) that the wallets push
subscription points at, as Cloud Run's load balancer fronts a service's instances; each gets
FETCHER_MAX_INSTANCES=N unless told otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import requests

from emulators.balancer import Balancer
from emulators.dome.config import SimConfig
from emulators.dome.server import RunningSimulator, run_simulator
from emulators.stack import HOST, EmulatorStack, free_port

STOP_GRACE_SECONDS = 5.0
DEV_API_KEY = "local-dev-key"
JSON = "-H 'content-type: application/json'"
# A faulty simulator for `--faults`: enough 5xx, 429 and cut bodies that every retry path runs.
FAULT_PRESET = {"error_5xx_rate": 0.03, "burst_429_rate": 0.02, "truncated_rate": 0.02}


@dataclass
class DevConfig:
    project: str = "local"
    bucket: str | None = None
    """Default `<project>-backfill-parts`, the Terraform name."""
    dataset: str = "polymarket"
    staging_dataset: str = "polymarket_staging"
    ports: dict[str, int] = field(default_factory=dict)
    """Service name -> port; missing or 0 picks a free one."""
    sim: SimConfig = field(default_factory=lambda: SimConfig(tier="dev", whale_trades=20_000))
    sim_port: int = 0
    source: str = "dome"
    """Which API the fetchers page (TRADE_SOURCE): "dome" or "polymarket" (the simulator serves both)."""
    api_key: str = DEV_API_KEY
    retry_scale: float = 0.01
    """Shrinks the subscriptions' retry back-off (10 s..600 s becomes 0.1 s..6 s), so DLQ takes seconds."""
    service_env: dict[str, str] = field(default_factory=dict)
    """Settings for every service on top of the defaults below (FETCH_MAX_PAGES=..., ...)."""
    workdir: Path | None = None
    """Logs and emulator files; a temporary folder (removed on stop) when None."""
    startup_timeout: float = 60.0
    fetchers: int = 1
    """Fetcher processes; more than one sit behind a balancer (emulators/balancer.py) on the fetcher's port."""


class ServiceProcess:
    """One uvicorn process in its own process group (so a stop reaches anything it spawned). `name`:
    the service (dispatcher, fetcher, loader), or one instance of it (fetcher-2)."""

    def __init__(self, name: str, port: int, env: dict[str, str], workdir: Path) -> None:
        self.name, self.port, self.env, self.workdir = name, port, env, workdir
        self.service = name.partition("-")[0]
        self.url = f"http://{HOST}:{port}"
        self.log_path = workdir / f"{name}.log"
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        argv = [sys.executable, "-m", "uvicorn", f"services.{self.service}.app:create_app", "--factory"]
        argv += ["--host", HOST, "--port", str(self.port)]
        with open(self.log_path, "ab") as log:  # the child keeps its own descriptor
            self.popen = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=self.workdir, start_new_session=True
            )

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited with {self.returncode()}:\n{self.log_tail()}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not answer {self.url}/healthz within {timeout:.0f} s:\n{self.log_tail()}")

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def returncode(self) -> int | None:
        return None if self.popen is None else self.popen.poll()

    def signal(self, signum: int) -> None:
        if self.alive():
            assert self.popen is not None
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signum)  # start_new_session: the group id is the child's PID

    def kill(self) -> None:
        """SIGKILL, no shutdown: what a crashed or evicted instance looks like to Pub/Sub."""
        self.signal(signal.SIGKILL)
        if self.popen is not None:
            self.popen.wait()

    def stop(self) -> None:
        if self.popen is None:
            return
        self.signal(signal.SIGTERM)
        try:
            self.popen.wait(STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            self.kill()

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@contextlib.contextmanager
def scoped_env(env: dict[str, str]) -> Iterator[None]:
    """The Google clients read the emulator hosts from os.environ when they are built; set them only
    for that, so this process (a test session, say) keeps its own environment."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class DevCloud:
    def __init__(self, config: DevConfig | None = None) -> None:
        self.config = config or DevConfig()
        self.bucket = self.config.bucket or f"{self.config.project}-backfill-parts"
        self._own_workdir = self.config.workdir is None
        self.workdir = Path(self.config.workdir or tempfile.mkdtemp(prefix="dev-cloud-")).resolve()
        self.stack = EmulatorStack(self.config.project, self.workdir / "emulators", pubsub=False)
        self.pubsub: Any = None
        self.sim: RunningSimulator | None = None
        self.services: dict[str, ServiceProcess] = {}
        self.balancer: Balancer | None = None
        self.wallets: list[str] = []

    # -- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> DevCloud:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        from emulators.bootstrap import bootstrap_pubsub, bootstrap_storage
        from emulators.pubsub.server import start_emulator
        from shared.adapters.gcp.bigquery import BigQueryWarehouse

        self.workdir.mkdir(parents=True, exist_ok=True)
        self.stack.start()
        self.pubsub = start_emulator(HOST, 0)
        self.sim = run_simulator(self.config.sim, HOST, self.config.sim_port)
        for name in self.service_names():
            port = (0 if name.startswith("fetcher-") else self.config.ports.get(name)) or free_port()
            self.services[name] = ServiceProcess(name, port, self.service_env(), self.workdir)
        if self.config.fetchers > 1:
            backends = [self.services[f"fetcher-{k}"].url for k in range(1, self.config.fetchers + 1)]
            self.balancer = Balancer(backends, HOST, self.config.ports.get("fetcher") or 0).start()
        push = {name: self.url(name) for name in ("fetcher", "loader")}
        with scoped_env(self.env()):
            bootstrap_pubsub(self.config.project, push, retry_scale=self.config.retry_scale)
            bootstrap_storage(self.config.project, self.bucket)
        warehouse = BigQueryWarehouse(
            self.stack.bigquery_client(), self.config.project, self.config.dataset, self.config.staging_dataset
        )
        warehouse.create_schema()  # what Terraform does in a deployment: the services only check it
        self.wallets = self.sim.state.universe.wallets(self.config.source)
        warehouse.add_traders(self.wallets)
        warehouse.close()
        for service in self.services.values():
            service.start()
        for service in self.services.values():
            service.wait_ready(self.config.startup_timeout)

    def stop(self) -> None:
        """Stop what this started, services first (by process group), then the stand-ins. Idempotent."""
        for service in self.services.values():
            service.stop()
        if self.balancer is not None:
            self.balancer.stop()
            self.balancer = None
        if self.sim is not None:
            self.sim.stop()
            self.sim = None
        if self.pubsub is not None:
            self.pubsub.stop()
            self.pubsub = None
        self.stack.stop()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> DevCloud:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def kill(self, name: str) -> None:
        self.services[name].kill()

    def restart(self, name: str) -> None:
        """Start `name` again on its port (the push endpoint does not move) and wait until it answers."""
        service = self.services[name]
        service.stop()
        service.start()
        service.wait_ready(self.config.startup_timeout)

    # -- what the clients and the services read --------------------------------------------------------

    def service_names(self) -> list[str]:
        """dispatcher, fetcher (or fetcher-1 .. fetcher-N), loader."""
        n = self.config.fetchers
        fetchers = ["fetcher"] if n == 1 else [f"fetcher-{k}" for k in range(1, n + 1)]
        return ["dispatcher", *fetchers, "loader"]

    def env(self) -> dict[str, str]:
        """The emulator variables for clients: PUBSUB_EMULATOR_HOST, STORAGE_EMULATOR_HOST, ..."""
        out = self.stack.env()
        if self.pubsub is not None:
            out["PUBSUB_EMULATOR_HOST"] = self.pubsub.host_port
        return out

    def service_env(self) -> dict[str, str]:
        assert self.sim is not None, "start() first"
        tier = self.config.sim.tier
        env = {
            **os.environ,
            **self.env(),
            "PYTHONUNBUFFERED": "1",
            "GCS_BUCKET": self.bucket,
            "BQ_DATASET": self.config.dataset,
            "BQ_STAGING_DATASET": self.config.staging_dataset,
            "TRADERS_TABLE": f"{self.config.project}.{self.config.dataset}.traders",
            "OIDC_AUDIENCE": "",  # the emulator's push carries no Google-signed token
            "LOG_LEVEL": "INFO",
            "TRADE_SOURCE": self.config.source,
            "DOME_API_BASE_URL": self.sim.base_url,
            "POLYMARKET_API_BASE_URL": self.sim.data_api_url,
            "GAMMA_API_BASE_URL": self.sim.gamma_url,
            "DOME_API_KEY": self.config.api_key,
            "DOME_TIER": tier if tier in ("free", "dev", "pro") else "pro",
            "FETCH_BUDGET_SECONDS": "60",
            "FETCH_MAX_PAGES": "50",
            "LOADER_FLUSH_FILES": "50",
            "LOADER_FLUSH_SECONDS": "2",
            "LEASE_SECONDS": "3600",
            "MAX_IN_FLIGHT": "500",
            "FETCHER_MAX_INSTANCES": str(self.config.fetchers),
        }
        env.update(self.config.service_env)
        return env

    def url(self, name: str) -> str:
        """A service's address; "fetcher" is the balancer in front when there are several."""
        if name == "fetcher" and self.balancer is not None:
            return self.balancer.url
        return self.services[name].url

    def publisher_client(self) -> Any:
        from google.cloud.pubsub_v1 import PublisherClient

        with scoped_env(self.env()):
            return PublisherClient()

    def subscriber_client(self) -> Any:
        from google.cloud.pubsub_v1 import SubscriberClient

        with scoped_env(self.env()):
            return SubscriberClient()

    def backlog(self, subscription: str) -> int:
        """Messages of a subscription not yet acknowledged (delivered or not), read from the emulator's
        store: what Cloud Monitoring's num_undelivered_messages shows in the cloud."""
        store = self.pubsub.store
        with store.changed:
            return len(store._sub(f"projects/{self.config.project}/subscriptions/{subscription}").backlog)

    def summary(self) -> str:
        assert self.sim is not None
        d = self.url("dispatcher")
        lines = [
            f"API simulator   {self.sim.base_url if self.config.source == 'dome' else self.sim.data_api_url}"
            f"  (TRADE_SOURCE={self.config.source}, {len(self.wallets)} wallets in the traders table)",
            f"Pub/Sub         PUBSUB_EMULATOR_HOST={self.pubsub.host_port}",
            f"Cloud Storage   {self.stack.gcs_endpoint}  bucket {self.bucket}",
            f"BigQuery        {self.stack.bigquery_endpoint}  project {self.config.project}",
        ]
        if self.balancer is not None:
            lines.append(f"{'fetcher':<15} {self.balancer.url}  balancing {', '.join(self.balancer.backends)}")
        lines += [f"{name:<15} {s.url}  pid {s.popen.pid if s.popen else '-'}" for name, s in self.services.items()]
        lines += [
            f"logs            {self.workdir}",
            "",
            f'back-fill:    curl -X POST {d}/dispatch {JSON} -d \'{{"mode":"backfill"}}\'',
            f"status:       curl {d}/status",
            f"dead letters: curl -X POST {d}/dead-letters/replay {JSON} -d '{{\"dry_run\":true}}'",
        ]
        return "\n".join(lines)


# -- the command line -----------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m emulators.dev", description=__doc__)
    p.add_argument("--project", default="local")
    for name, port in (("dispatcher", 8081), ("fetcher", 8082), ("loader", 8083)):
        p.add_argument(f"--{name}-port", type=int, default=port, help=f"default {port}; 0 picks a free port")
    p.add_argument("--fetchers", type=int, default=1, help="fetcher processes (more than one: behind a balancer)")
    p.add_argument("--sim-port", type=int, default=8090, help="the Dome simulator; 0 picks a free port")
    p.add_argument("--source", choices=("dome", "polymarket"), default="dome", help="TRADE_SOURCE of the fetchers")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--size", type=int, default=40, help="ordinary wallets besides the special ones")
    p.add_argument("--whale-trades", type=int, default=20_000)
    p.add_argument("--tier", choices=("free", "dev", "pro", "none"), default="dev")
    p.add_argument("--latency-ms", type=float, default=20.0)
    p.add_argument("--max-page-rows", type=int, help="the simulator's Dome pages hold at most this many rows")
    p.add_argument(
        "--no-ratelimit-headers", action="store_true", help="the simulator sends no x-ratelimit-*, only Retry-After"
    )
    p.add_argument("--faults", action="store_true", help=f"turn on {FAULT_PRESET}")
    for name in ("error-5xx", "burst-429", "truncated", "drop", "slow"):
        p.add_argument(f"--{name}-rate", type=float)
    p.add_argument(
        "--fail-wallet",
        action="append",
        default=[],
        metavar="WALLET=STATUS",
        help="the API always answers STATUS for WALLET (an address or a special name: one, whale, ...)",
    )
    p.add_argument("--retry-scale", type=float, default=0.01, help="scale of the subscriptions' retry back-off")
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="extra service setting")
    p.add_argument("--workdir", type=Path, help="keep logs and emulator files here (default: a temp folder)")
    return p


def config_from(args: argparse.Namespace) -> DevConfig:
    from emulators.dome.universe import SPECIAL, Universe

    rates = dict(FAULT_PRESET) if args.faults else {}
    for name in ("error_5xx", "burst_429", "truncated", "drop", "slow"):
        if getattr(args, f"{name}_rate") is not None:
            rates[f"{name}_rate"] = getattr(args, f"{name}_rate")
    fail: dict[str, int] = {}
    special = Universe(args.seed, 0, 0).special if args.fail_wallet else {}
    for item in args.fail_wallet:
        wallet, _, status = item.partition("=")
        fail[special[wallet] if wallet in SPECIAL else wallet] = int(status)
    sim = SimConfig.model_validate(
        {
            "seed": args.seed,
            "size": args.size,
            "whale_trades": args.whale_trades,
            "tier": args.tier,
            "latency_ms": args.latency_ms,
            "max_page_rows": args.max_page_rows,
            "ratelimit_headers": not args.no_ratelimit_headers,
            "fail_wallets": fail,
            **rates,
        }
    )
    ports = {"dispatcher": args.dispatcher_port, "fetcher": args.fetcher_port, "loader": args.loader_port}
    return DevConfig(
        project=args.project,
        ports=ports,
        sim=sim,
        sim_port=args.sim_port,
        source=args.source,
        retry_scale=args.retry_scale,
        service_env=dict(item.split("=", 1) for item in args.env),
        workdir=args.workdir,
        fetchers=args.fetchers,
    )


def main(argv: list[str] | None = None) -> int:
    config = config_from(_parser().parse_args(argv))
    done = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: done.set())
    cloud = DevCloud(config)
    try:
        print("starting the emulators, the simulator and the services ...", flush=True)
        cloud.start()
        print(cloud.summary(), "\n\nCtrl-C stops everything.", flush=True)
        reported: set[str] = set()
        while not done.wait(1.0):
            for name, service in cloud.services.items():
                if not service.alive() and name not in reported:
                    reported.add(name)
                    print(f"\n{name} exited ({service.returncode()}); last lines:\n{service.log_tail()}", flush=True)
    except (OSError, RuntimeError) as exc:
        print(f"dev: {exc}", file=sys.stderr)
        return 1
    finally:
        print("stopping ...", flush=True)
        cloud.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
