"""The run's DuckDB file in a process of its own (WarehouseProcess): what the process boundary adds to
the Warehouse port — the port itself is held by tests/contract/test_warehouse.py on this twin too.

A kill of the runner kills its warehouse process; a warehouse process that dies is a systemic error the
next call reports; Ctrl-C is the runner's; close hands the file back at once; a call the port does not
have is refused; and the runner's own process never imports DuckDB."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from shared.adapters.local.warehouse_process import WarehouseProcess
from shared.adapters.sql.dialect import Sql
from shared.core.errors import SystemicError, WarehouseUnavailable

ROOT = Path(__file__).resolve().parents[2]
W1 = "0x" + "1" * 40


def _alive(pid: int) -> bool:
    """Any thread of it still running (a zombie holds no file and no lock, but its leader turns zombie
    while its other threads may still be exiting with the file open)."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    for tid in tasks:
        try:
            state = Path(f"/proc/{pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state not in ("Z", "X"):
            return True
    return False


def _wait_gone(pid: int, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while _alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.fixture
def warehouse(tmp_path):
    made = WarehouseProcess(tmp_path / "w.duckdb")
    made.create_schema()
    yield made
    made.close()


def test_calls_run_in_another_process_and_close_hands_the_file_back_at_once(tmp_path, warehouse):
    assert warehouse.pid != os.getpid() and _alive(warehouse.pid)
    assert warehouse.add_traders([W1, W1]) == 1
    assert [c.wallet for c in warehouse.candidates(datetime.now(UTC), 10)] == [W1]
    pid = warehouse.pid
    warehouse.close()
    assert not _alive(pid)
    con = duckdb.connect(str(tmp_path / "w.duckdb"))  # no lock left: no wait, no retry
    try:
        assert con.execute("SELECT wallet_address FROM traders").fetchall() == [(W1,)]
    finally:
        con.close()
    with pytest.raises(WarehouseUnavailable, match="closed"):
        warehouse.in_flight(datetime.now(UTC))


def test_a_warehouse_process_that_dies_is_a_systemic_error_naming_its_exit(warehouse):
    os.kill(warehouse.pid, signal.SIGKILL)
    with pytest.raises(WarehouseUnavailable, match=r"ended \(exit status -9\)") as caught:
        warehouse.in_flight(datetime.now(UTC))
    assert isinstance(caught.value, SystemicError)  # the run halts with the reason, it does not retry forever
    warehouse.close()  # and closing after it does not hang


def test_ctrl_c_is_the_runners_the_warehouse_process_keeps_serving(warehouse):
    os.kill(warehouse.pid, signal.SIGINT)  # what a terminal's Ctrl-C sends to the whole process group
    time.sleep(0.2)
    assert warehouse.add_traders([W1]) == 1


def test_a_call_the_port_does_not_have_is_refused_and_the_process_serves_on(warehouse):
    with pytest.raises(SystemicError, match="no call 'close_file'"):
        warehouse._call("close_file")
    with pytest.raises(SystemicError, match="no call '__class__'"):
        warehouse._call("__class__")
    assert warehouse.add_traders([W1]) == 1


def test_a_killed_runner_takes_its_warehouse_process_with_it(tmp_path):
    script = textwrap.dedent(
        f"""
        import sys, time
        from shared.adapters.local.warehouse_process import WarehouseProcess
        w = WarehouseProcess({str(tmp_path / "w.duckdb")!r})
        w.create_schema()
        print(w.pid, "duckdb" in sys.modules, flush=True)
        time.sleep(60)
        """
    )
    runner = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        line = runner.stdout.readline().split() if runner.stdout else []
        assert len(line) == 2, "the runner did not start its warehouse process"
        child, imported = int(line[0]), line[1]
        assert imported == "False"  # DuckDB lives in the warehouse process only (its memory too)
        assert _alive(child)
        runner.send_signal(signal.SIGKILL)
        runner.wait(timeout=10)
        assert _wait_gone(child), "the warehouse process outlived its runner"
    finally:
        runner.kill()
        runner.wait()
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.close()


def test_opening_a_file_another_warehouse_process_holds_fails_with_the_reason(tmp_path, warehouse):
    started = time.monotonic()
    with pytest.raises(SystemicError, match="is another backfill using it"):
        WarehouseProcess(tmp_path / "w.duckdb")
    assert time.monotonic() - started >= 4  # it waited for a killed run's process to let go first


def test_a_call_interrupted_before_its_reply_ends_the_channel_it_never_answers_the_next_call(warehouse):
    """A KeyboardInterrupt (here: an alarm's handler raising one) while the runner waits for a reply
    leaves that reply unread; the next call must not take it for its own."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    slow = Sql("SELECT sum(hash(i)) AS n FROM range(3000000000) t(i)")  # seconds of work in the child
    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        with pytest.raises(KeyboardInterrupt):
            list(warehouse.query(slow))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    with pytest.raises(WarehouseUnavailable, match="closed"):
        warehouse.in_flight(datetime.now(UTC))
    assert _wait_gone(warehouse.pid), "the child outlived a channel that is out of step"
