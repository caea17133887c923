"""What the end-to-end tests do to a running DevCloud and read back from it: HTTP calls to the
dispatcher, waits on its /status, the BigQuery rows against the simulator's ground truth, the logs."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from emulators.dev import DevCloud
from emulators.dome.universe import DOME_FIELDS

# A ceiling so a broken pipeline ends the test with its logs instead of hanging; never a speed check.
PATIENCE_SECONDS = 240.0
Row = tuple[Any, ...]


def post(cloud: DevCloud, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = requests.post(cloud.url("dispatcher") + path, json=body, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def status(cloud: DevCloud) -> dict[str, Any]:
    response = requests.get(cloud.url("dispatcher") + "/status", timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def logs(cloud: DevCloud) -> str:
    return "\n\n".join(f"--- {name} ---\n{s.log_tail(15)}" for name, s in cloud.services.items())


def wait_for(cloud: DevCloud, what: str, check: Callable[[], Any], interval: float = 0.25) -> Any:
    """Poll `check` until it returns something truthy; give up (with the services' logs) only after
    PATIENCE_SECONDS, which no healthy run comes near."""
    deadline = time.monotonic() + PATIENCE_SECONDS
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"gave up waiting for {what} (last: {last!r})\n{logs(cloud)}")


def settled(cloud: DevCloud, complete: int, dead_letters: int = 0) -> Callable[[], dict[str, Any] | None]:
    """`complete` wallets complete, `dead_letters` letters waiting, and nothing left on the push
    subscriptions: every message acknowledged, so no work is still on its way."""

    def check() -> dict[str, Any] | None:
        if cloud.backlog("wallets-push") or cloud.backlog("files-push"):
            return None
        now = status(cloud)
        if now["by_status"].get("complete", 0) == complete and now["dead_letters"] == dead_letters:
            return now
        return None

    return check


def ground_truth(cloud: DevCloud, wallets: list[str], folder: Path) -> Counter[Row]:
    """The simulator's own export, one row per fill: (wallet, every Dome field)."""
    assert cloud.sim is not None
    path = folder / "ground-truth.jsonl"
    cloud.sim.state.universe.export_ground_truth(path)
    wanted = set(wallets)
    out: Counter[Row] = Counter()
    with path.open() as lines:
        for line in lines:
            row = json.loads(line)
            if row["wallet"] in wanted:
                out[(row["wallet"], *(row[f] for f in DOME_FIELDS))] += 1
    return out


def bigquery_trades(cloud: DevCloud) -> Counter[Row]:
    """Every row of the BigQuery emulator's `trades`, read back with the BigQuery client, in the
    ground truth's shape (timestamps as epoch seconds, as the API sends them)."""
    columns = ", ".join(f"UNIX_SECONDS(`{f}`) AS `{f}`" if f == "timestamp" else f"`{f}`" for f in DOME_FIELDS)
    table = f"`{cloud.config.project}.{cloud.config.dataset}.trades`"
    client = cloud.stack.bigquery_client()
    try:
        rows = client.query(f"SELECT wallet_address, {columns} FROM {table}").result(page_size=5000)
        return Counter(tuple(row.values()) for row in rows)
    finally:
        client.close()


def difference(have: Counter[Row], truth: Counter[Row]) -> dict[str, int]:
    """Multiset difference: a row loaded twice is one `extra`, a row never loaded one `missing`."""
    return {
        "missing": sum((truth - have).values()),
        "extra": sum((have - truth).values()),
        "duplicated": sum(n - 1 for n in have.values() if n > 1),
    }


def assert_exact(cloud: DevCloud, truth: Counter[Row]) -> None:
    have = bigquery_trades(cloud)
    diff = difference(have, truth)
    assert diff == {"missing": 0, "extra": 0, "duplicated": 0}, (diff, sum(have.values()), sum(truth.values()))
    assert have == truth


def fetcher_parts(cloud: DevCloud, wallet: str) -> list[dict[str, Any]]:
    """The fetcher's structured 'fetched part N: R rows in P pages' lines for `wallet`."""
    out = []
    for line in cloud.services["fetcher"].log_path.read_text().splitlines():
        if not line.startswith("{"):
            continue  # uvicorn's own lines
        entry = json.loads(line)
        if entry.get("wallet") == wallet and entry["message"].startswith("fetched part"):
            words = entry["message"].split()
            entry["rows"], entry["pages"] = int(words[3]), int(words[6])
            entry["final"] = entry["message"].endswith("(final)")
            out.append(entry)
    return out
