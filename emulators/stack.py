"""The Google Cloud emulators as local processes, for tests and local runs without Docker.

- Cloud Storage: `gcp-storage-emulator` (PyPI) in disk mode, objects under `<workdir>/gcs/.cloudstorage`.
- BigQuery: `bqemulator` (PyPI, DuckDB inside) with `BQEMU_GCS_LOCAL_ROOT` pointing at that same
  folder, so its gs:// load jobs read the objects the storage emulator holds.
- Pub/Sub: the project's own emulator (emulators.pubsub), in-process, when it can be imported.

    with EmulatorStack(project="local") as stack:
        os.environ.update(stack.env())
        store = GcsObjectStore(stack.storage_client(), "bucket")

bqemulator needs three things on a machine without internet (docs/design.md, "Facts"):
DuckDB's spatial and avro extensions in DuckDB's extension folder (copied here from their wheels,
`install_duckdb_extensions`), numpy, and testcontainers (its pytest plugin imports it) — the last
two are dev dependencies.
"""

from __future__ import annotations

import gc
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from types import TracebackType
from typing import Any

import requests

HOST = "127.0.0.1"
EXTENSION_WHEELS = ("duckdb_extension_spatial", "duckdb_extension_avro")
STOP_GRACE_SECONDS = 5.0


def install_duckdb_extensions() -> Path:
    """Copy the spatial/avro extensions from their wheels to `~/.duckdb/extensions/v<ver>/<platform>/`,
    where bqemulator's `INSTALL spatial` finds them offline. Idempotent; returns the folder."""
    import duckdb

    with duckdb.connect() as con:
        platform = con.execute("PRAGMA platform").fetchone()[0]  # type: ignore[index]
    version = f"v{duckdb.__version__}"
    target = Path.home() / ".duckdb" / "extensions" / version / platform
    target.mkdir(parents=True, exist_ok=True)
    for package in EXTENSION_WHEELS:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise RuntimeError(f"{package} is not installed: pip install '{package.replace('_', '-')}=={version[1:]}'")
        for source in Path(next(iter(spec.submodule_search_locations))).glob(
            f"extensions/{version}/*.duckdb_extension"
        ):
            dest = target / source.name
            if not dest.exists() or dest.stat().st_size != source.stat().st_size:
                tmp = dest.with_suffix(".tmp")
                shutil.copyfile(source, tmp)
                os.replace(tmp, dest)
    return target


_HANDED_OUT: set[int] = set()
_HANDED_OUT_LOCK = threading.Lock()


def free_port() -> int:
    """A port free now and not handed out before by this process: the kernel may give the same free
    port to two calls in a row, and two services started with it fail (the second cannot bind, and a
    readiness probe of its URL is answered by the first)."""
    with _HANDED_OUT_LOCK:
        while True:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind((HOST, 0))
                port = int(sock.getsockname()[1])
            if port not in _HANDED_OUT:
                _HANDED_OUT.add(port)
                return port


def docker_unavailable_reason() -> str | None:
    """None when a Docker engine answers a ping (testcontainers can run the official images)."""
    if not os.environ.get("DOCKER_HOST") and not Path("/var/run/docker.sock").exists():
        return "no Docker engine reachable (no DOCKER_HOST, no /var/run/docker.sock): using the PyPI emulators"
    try:
        from testcontainers.core.docker_client import DockerClient

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)  # the docker SDK leaks its probe socket on failure
            try:
                DockerClient().client.ping()
            finally:
                gc.collect()
    except Exception as exc:
        return f"no Docker engine reachable ({type(exc).__name__}): using the PyPI emulators"
    return None


class _Process:
    """One emulator subprocess with its log file; stopped by its own PID only."""

    def __init__(self, name: str, argv: list[str], log_path: Path, env: dict[str, str]) -> None:
        self.name = name
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115  (closed in stop())
        self.popen = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=log_path.parent)

    def wait_ready(self, url: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.popen.returncode}:\n{self.log_tail()}")
            try:
                if requests.get(url, timeout=1.0).status_code < 500:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not answer {url} within {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        self._log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(STOP_GRACE_SECONDS)
        self._log.close()


class EmulatorStack:
    """GCS + BigQuery emulators as subprocesses on free loopback ports, Pub/Sub in-process (optional)."""

    def __init__(
        self,
        project: str = "local-project",
        workdir: str | os.PathLike[str] | None = None,
        *,
        pubsub: bool = True,
        startup_timeout: float = 60.0,
    ) -> None:
        self.project = project
        self.pubsub = pubsub
        self.startup_timeout = startup_timeout
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="emulators-")).resolve()
        self.gcs_root = self.workdir / "gcs" / ".cloudstorage"  # where the storage emulator keeps objects
        self.gcs_endpoint = ""
        self.bigquery_endpoint = ""
        self.pubsub_host_port: str | None = None
        self.pubsub_skip_reason: str | None = None
        self._processes: list[_Process] = []
        self._pubsub: Any = None

    def start(self) -> EmulatorStack:
        try:
            self._start_storage()
            self._start_bigquery()
            if self.pubsub:
                self._start_pubsub()
            else:
                self.pubsub_skip_reason = "Pub/Sub emulator not requested"
        except BaseException:
            self.stop()
            raise
        return self

    def _start_storage(self) -> None:
        port = free_port()
        self.gcs_root.mkdir(parents=True, exist_ok=True)
        proc = self._spawn(
            "gcp-storage-emulator",
            [
                "-m",
                "gcp_storage_emulator",
                "-d",
                str(self.gcs_root.parent),
                "start",
                "--host",
                HOST,
                "--port",
                str(port),
            ],
            {},
        )
        self.gcs_endpoint = f"http://{HOST}:{port}"
        proc.wait_ready(f"{self.gcs_endpoint}/storage/v1/b?project={self.project}", self.startup_timeout)

    def _start_bigquery(self) -> None:
        install_duckdb_extensions()
        rest, grpc = free_port(), free_port()
        proc = self._spawn(
            "bqemulator",
            [
                "-m",
                "bqemulator",
                "start",
                "--rest-host",
                HOST,
                "--rest-port",
                str(rest),
                "--grpc-port",
                str(grpc),
                "--project",
                self.project,
                "--log-level",
                "warning",
            ],
            {"BQEMU_GCS_LOCAL_ROOT": str(self.gcs_root)},
        )
        self.bigquery_endpoint = f"http://{HOST}:{rest}"
        proc.wait_ready(f"{self.bigquery_endpoint}/readyz", self.startup_timeout)

    def _start_pubsub(self) -> None:
        try:
            from emulators.pubsub.server import start_emulator
        except ImportError as exc:
            self.pubsub_skip_reason = f"the Pub/Sub emulator (emulators.pubsub.server) cannot be imported: {exc}"
            return
        self._pubsub = start_emulator(host=HOST, port=0)
        self.pubsub_host_port = self._pubsub.host_port

    def _spawn(self, name: str, args: list[str], extra_env: dict[str, str]) -> _Process:
        env = {**os.environ, **extra_env}
        for key in ("STORAGE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST"):  # the emulators are servers, not clients
            env.pop(key, None)
        proc = _Process(name, [sys.executable, *args], self.workdir / f"{name}.log", env)
        self._processes.append(proc)
        return proc

    def stop(self) -> None:
        """Stop what this stack started (by PID), newest first. Idempotent."""
        if self._pubsub is not None:
            self._pubsub.stop()
            self._pubsub = None
        while self._processes:
            self._processes.pop().stop()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> EmulatorStack:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def env(self) -> dict[str, str]:
        """The variables the clients (and shared/bootstrap.py) read to talk to these emulators."""
        out = {
            "STORAGE_EMULATOR_HOST": self.gcs_endpoint,
            "BIGQUERY_API_ENDPOINT": self.bigquery_endpoint,
            "GCP_PROJECT": self.project,
            "GOOGLE_CLOUD_PROJECT": self.project,
        }
        if self.pubsub_host_port:
            out["PUBSUB_EMULATOR_HOST"] = self.pubsub_host_port
        return out

    def storage_client(self) -> Any:
        from google.api_core.client_options import ClientOptions
        from google.auth.credentials import AnonymousCredentials
        from google.cloud.storage import Client

        return Client(
            project=self.project,
            credentials=AnonymousCredentials(),
            client_options=ClientOptions(api_endpoint=self.gcs_endpoint),
        )

    def bigquery_client(self) -> Any:
        from google.api_core.client_options import ClientOptions
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import bigquery

        return bigquery.Client(
            project=self.project,
            credentials=AnonymousCredentials(),
            client_options=ClientOptions(api_endpoint=self.bigquery_endpoint),
        )
