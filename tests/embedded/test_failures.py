"""`backfill run` when the fault is not one wallet's (design rule 13), as a hostile user would try it:
a systemic fault halts the run early with its cause and exit 1, leaving the wallets resumable (not
dead-lettered); a fixed run afterwards is exact; a walk that never ends is one wallet's dead letter.
Each case drives the real command against a real server (the simulator, or tests/hostile.py)."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from emulators.dome.config import SimConfig
from emulators.dome.server import run_simulator
from emulators.truth import verify_dome
from tests.hostile import HostileApi

pytestmark = pytest.mark.slow
EXIT_OK, EXIT_HALTED, EXIT_USAGE, EXIT_DEAD_LETTERS, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


@pytest.fixture(scope="module")
def sim():
    with run_simulator(SimConfig(seed=5, size=6, whale_trades=3_000, tier="pro")) as running:
        yield running


def env_for(base_url: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DOME_API_BASE_URL": base_url,
        "DOME_API_KEY": "k",
        "DOME_TIER": "pro",
        "HTTP_MAX_ATTEMPTS": "3",
        "LOOKUPS": "false",  # the trades are the subject here (markets: tests/contract/test_market_sources.py)
        **extra,
    }


def backfill(args: list[str], env: dict[str, str], cwd: Path, **kw) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "shared.cli.main", *args]
    return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=300, **kw)


def wallets_file(tmp_path: Path, wallets: list[str], prefix: str = "") -> Path:
    path = tmp_path / "wallets.txt"
    path.write_text(prefix + "\n".join(wallets) + "\n", encoding="utf-8")
    return path


def dead_letters(db: Path) -> list[tuple[str, str]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute("SELECT wallet, error FROM dead_letters WHERE replayed_at IS NULL").fetchall()


def assert_exact_after_a_fixed_run(sim, tmp_path: Path, db: Path) -> None:
    wallets = sim.state.universe.wallets()
    fixed = backfill(["run", "--wallets", "wallets.txt", "--db", str(db)], env_for(sim.base_url), tmp_path)
    assert fixed.returncode == EXIT_OK, fixed.stderr[-2000:]
    truth = tmp_path / "truth.jsonl"
    sim.state.universe.export_ground_truth(truth)
    with duckdb.connect(str(db), read_only=True) as con:
        check = verify_dome(con, str(truth), wallets)
    assert check.exact and check.warehouse_rows == check.truth_rows, check


@pytest.mark.parametrize("behaviour", ["refused", "500", "html", "stall"])
def test_an_api_that_fails_for_every_wallet_halts_the_run_with_its_cause_and_leaves_the_wallets_resumable(
    sim, tmp_path, behaviour
):
    wallets_file(tmp_path, sim.state.universe.wallets())
    db = tmp_path / "w.duckdb"
    with HostileApi(None if behaviour == "refused" else behaviour) as api:
        base = "http://127.0.0.1:9/v1" if behaviour == "refused" else f"{api.root}/v1"  # port 9: nothing listens
        started = time.monotonic()
        run = backfill(
            ["run", "--wallets", "wallets.txt", "--db", str(db)], env_for(base, HTTP_READ_TIMEOUT_SECONDS="1"), tmp_path
        )
        seconds = time.monotonic() - started
    assert run.returncode == EXIT_HALTED, run.stderr[-2000:]
    assert "halted: the trade API is failing for every wallet" in run.stderr
    cause = {"refused": "ConnectionError", "500": "HTTP 500", "html": "not JSON", "stall": "no answer within 1 s"}
    assert cause[behaviour] in run.stderr
    assert "run the same command again" in run.stderr and "summary:" in run.stderr and "Traceback" not in run.stderr
    assert dead_letters(db) == []  # resumable, not dead-lettered
    assert seconds < 120, seconds  # a liveness bound (a halt, not the old minutes of retries), not a speed target
    assert_exact_after_a_fixed_run(sim, tmp_path, db)


def test_a_malformed_base_url_is_bad_configuration_before_any_request(sim, tmp_path):
    wallets_file(tmp_path, sim.state.universe.wallets())
    run = backfill(["run", "--wallets", "wallets.txt", "--db", "w.duckdb"], env_for("htp//nowhere"), tmp_path)
    assert run.returncode == EXIT_USAGE and "DOME_API_BASE_URL" in run.stderr.replace("\n", "").upper()
    assert not (tmp_path / "w.duckdb").exists()


def _limit_file_size(limit: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG) instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@pytest.mark.parametrize(("pages", "limit"), [("10", 1_000_000), ("1", 2_500_000)], ids=["part files", "warehouse"])
def test_a_full_disk_halts_with_its_cause_not_a_rollback_error(sim, tmp_path, pages, limit):
    """The disk is full (here: the file-size limit): part files that cannot be written, or a DuckDB file
    that cannot grow, stop the run with that cause; a run with room afterwards is exact."""
    wallets_file(tmp_path, sim.state.universe.wallets())
    db = tmp_path / "w.duckdb"
    env = env_for(sim.base_url, FETCH_MAX_PAGES=pages)
    run = backfill(
        ["run", "--wallets", "wallets.txt", "--db", str(db)], env, tmp_path, preexec_fn=_limit_file_size(limit)
    )
    assert run.returncode == EXIT_HALTED, run.stderr[-2000:]
    assert "halted:" in run.stderr and "File too large" in run.stderr.replace("\n", " ")
    assert "cannot rollback" not in run.stderr and "Traceback" not in run.stderr
    assert_exact_after_a_fixed_run(sim, tmp_path, db)


@pytest.mark.parametrize(
    ("behaviour", "reason"), [("cycle", "a cursor it had given before"), ("empty", "empty pages in a row")]
)
def test_a_walk_that_never_ends_is_that_wallets_dead_letter_and_the_others_complete(sim, tmp_path, behaviour, reason):
    wallets = sim.state.universe.wallets()
    bad = wallets[3]
    wallets_file(tmp_path, wallets)
    db = tmp_path / "w.duckdb"
    with HostileApi(wallets={bad: behaviour}, upstream=sim.root_url) as api:
        env = env_for(f"{api.root}/v1", FETCH_MAX_PAGES="1")  # one page per part: the loop spans parts
        run = backfill(["run", "--wallets", "wallets.txt", "--db", str(db)], env, tmp_path)
        asked = sum(bad in path for path in api.requests)
    assert run.returncode == EXIT_DEAD_LETTERS, run.stderr[-2000:]
    ((wallet, error),) = dead_letters(db)
    assert wallet == bad and reason in error
    assert f"{len(wallets) - 1} complete" in run.stderr
    assert asked <= 25  # stopped by the guard, not by luck


def test_a_db_holding_someone_elses_trades_table_is_refused_before_any_request(sim, tmp_path):
    db = tmp_path / "theirs.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE trades (id INTEGER, note VARCHAR)")
    wallets_file(tmp_path, sim.state.universe.wallets())
    before = sim.state.stats.requests
    run = backfill(["run", "--wallets", "wallets.txt", "--db", str(db)], env_for(sim.base_url), tmp_path)
    assert run.returncode == EXIT_USAGE and "not the backfill's" in run.stderr
    assert sim.state.stats.requests == before


def test_ctrl_c_stops_within_seconds_keeps_what_was_committed_and_a_rerun_is_exact(tmp_path):
    # Big enough that two workers are still paging when Ctrl-C comes (4 s in), windows or not.
    with run_simulator(SimConfig(seed=5, size=6, whale_trades=200_000, tier="pro", latency_ms=150)) as slow:
        _interrupt_then_resume(slow, tmp_path)


def _interrupt_then_resume(sim, tmp_path: Path) -> None:
    wallets_file(tmp_path, sim.state.universe.wallets())
    db = tmp_path / "w.duckdb"
    env = env_for(sim.base_url, FETCH_MAX_PAGES="1")
    argv = [
        sys.executable,
        "-m",
        "shared.cli.main",
        "run",
        "--wallets",
        "wallets.txt",
        "--db",
        str(db),
        "--workers",
        "2",
    ]
    with subprocess.Popen(argv, env=env, cwd=tmp_path, stderr=subprocess.PIPE, text=True) as proc:
        time.sleep(4)  # the run is under way
        proc.send_signal(signal.SIGINT)
        started = time.monotonic()
        _, err = proc.communicate(timeout=60)
        stopped_in = time.monotonic() - started
    assert proc.returncode == EXIT_INTERRUPTED, err[-2000:]
    assert "everything committed is kept" in err and "Traceback" not in err
    assert stopped_in < 30, stopped_in  # a liveness bound: it ends, it does not hang
    assert_exact_after_a_fixed_run(sim, tmp_path, db)


def test_a_wallets_file_with_a_utf8_bom_keeps_its_first_address(sim, tmp_path):
    wallets = sim.state.universe.wallets()[:3]
    wallets_file(tmp_path, wallets, prefix="\ufeff")
    run = backfill(["run", "--wallets", "wallets.txt", "--db", "w.duckdb"], env_for(sim.base_url), tmp_path)
    assert run.returncode == EXIT_OK, run.stderr[-2000:]
    assert "3 valid" in run.stderr and "0 invalid" in run.stderr


@pytest.mark.parametrize("command", [["status"], ["dead-letters", "list"], ["dead-letters", "replay"]])
def test_operating_commands_on_a_mistyped_db_create_nothing_and_exit_2(tmp_path, command):
    run = backfill([*command, "--db", "typo/trades.duckdb"], dict(os.environ), tmp_path)
    assert run.returncode == EXIT_USAGE and "no warehouse at typo/trades.duckdb" in run.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_redirect_is_refused_with_a_message_that_says_so(sim, tmp_path):
    wallets_file(tmp_path, sim.state.universe.wallets()[:2])
    with HostileApi("redirect") as api:
        run = backfill(["run", "--wallets", "wallets.txt", "--db", "w.duckdb"], env_for(f"{api.root}/v1"), tmp_path)
    assert run.returncode == EXIT_USAGE, run.stderr[-2000:]
    text = run.stderr.replace("\n", " ")
    assert "answered 301" in text and "redirects are not followed" in text and "key was rejected" not in text
