"""checkov in a virtual environment of its own, created on first use: .cache/checkov/venv (git-ignored).

checkov brings ~100 dependencies whose pins clash with the project's (PyYAML, packaging, pydantic...),
so it never enters .venv. Its whole closure is pinned with hashes in tests/infra/checkov.lock; the
environment is built from that lock once (about 40 s), then reused while the lock and the interpreter
are unchanged (a stamp file records both), so a second run costs only the scan (about 6 s).

    python -m tests.infra.checkov_env          # install if needed, then print checkov's report (make checkov)

Regenerate the lock after changing CHECKOV_VERSION (uv from PyPI, in a throwaway venv):

    echo checkov==<version> | uv pip compile - --universal --python-version 3.11 --generate-hashes \
        -o tests/infra/checkov.lock
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

CHECKOV_VERSION = "3.3.30"
REPO = Path(__file__).resolve().parents[2]
LOCK = Path(__file__).with_name("checkov.lock")
CACHE = REPO / ".cache" / "checkov"
VENV = CACHE / "venv"
STAMP = VENV / ".installed"
TERRAFORM = REPO / "infra" / "terraform"

# What pip prints when it cannot reach an index: the only failures that may skip the test.
NETWORK_SIGNS = (
    "NewConnectionError",
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "Name or service not known",
    "nodename nor servname provided",
    "Network is unreachable",
    "No route to host",
    "Connection refused",
    "ConnectTimeoutError",
    "ReadTimeoutError",
    "ProxyError",
    "Max retries exceeded",
    "connection broken",
)


class CheckovUnavailable(Exception):
    """checkov could not be installed because no package index was reachable."""


def _wanted_stamp() -> str:
    digest = hashlib.sha256(LOCK.read_bytes()).hexdigest()
    return f"checkov=={CHECKOV_VERSION} lock={digest} python={sys.version.split()[0]}\n"


def executable() -> Path:
    return VENV / "bin" / "checkov"


def ensure(timeout: float = 900) -> Path:
    """checkov's executable, installing it from the hashed lock first if the environment is missing or stale.

    Raises CheckovUnavailable when the install failed for lack of network, RuntimeError for any other
    failure (a broken lock, a conflict): that must fail the test, not skip it.
    """
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / ".lock").open("w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)  # two runs at once install once
        wanted = _wanted_stamp()
        if STAMP.is_file() and STAMP.read_text() == wanted and executable().is_file():
            return executable()
        shutil.rmtree(VENV, ignore_errors=True)  # half-built or stale: start again
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, timeout=300)
        command = [
            str(VENV / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--require-hashes",
            "-r",
            str(LOCK),
        ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            shutil.rmtree(VENV, ignore_errors=True)
            output = (result.stdout + result.stderr)[-4000:]
            if any(sign in output for sign in NETWORK_SIGNS):
                reason = f"no package index reachable to install checkov=={CHECKOV_VERSION}"
                raise CheckovUnavailable(f"{reason}: {output[-600:]}")
            raise RuntimeError(f"installing checkov=={CHECKOV_VERSION} from {LOCK.name} failed:\n{output}")
        version = subprocess.run([str(executable()), "--version"], capture_output=True, text=True, timeout=120)
        if version.stdout.strip() != CHECKOV_VERSION:
            raise RuntimeError(f"installed checkov reports {version.stdout.strip()!r}, want {CHECKOV_VERSION}")
        STAMP.write_text(wanted)
        return executable()


def _environment() -> dict[str, str]:
    # No call home: no guideline mapping, no platform download, no version check.
    return {
        **os.environ,
        "BC_SKIP_MAPPING": "TRUE",
        "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false",
        "ENABLE_DEFINITION_KEY": "false",
        "PYTHONWARNINGS": "ignore",
    }


def arguments(directory: Path, output: str) -> list[str]:
    return [
        "-d",
        str(directory),
        "--framework",
        "terraform",
        "--skip-download",
        "--download-external-modules",
        "false",
        "-o",
        output,
    ]


def scan(directory: Path = TERRAFORM, timeout: float = 600) -> dict[str, Any]:
    """checkov's JSON report of `directory` (framework terraform, local modules resolved through their calls)."""
    result = subprocess.run(
        [str(ensure()), *arguments(directory, "json")],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_environment(),
        cwd=directory,
    )
    if result.returncode not in (0, 1):  # 1: some check failed; anything else: checkov itself broke
        raise RuntimeError(f"checkov exited {result.returncode}:\n{result.stderr[-4000:]}")
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    (terraform,) = [r for r in reports if r.get("check_type") == "terraform"]
    return terraform


def main() -> int:
    try:
        checkov = ensure()
    except CheckovUnavailable as exc:
        print(exc, file=sys.stderr)
        return 2
    return subprocess.run([str(checkov), *arguments(TERRAFORM, "cli"), "--compact"], env=_environment()).returncode


if __name__ == "__main__":
    raise SystemExit(main())
