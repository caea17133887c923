"""One emulator stack per test session, shared by tests/gcp and tests/contract (each has a fixture
that asks for it here, so two directories in one run still start the processes once)."""

from __future__ import annotations

import pytest

from emulators.stack import EmulatorStack

PROJECT = "contract-tests"
_stack: EmulatorStack | None = None


def session_stack(request: pytest.FixtureRequest) -> EmulatorStack:
    global _stack
    if _stack is None:
        try:
            _stack = EmulatorStack(project=PROJECT).start()
        except (OSError, RuntimeError) as exc:
            pytest.fail(f"the PyPI emulators did not start: {exc}")
        request.addfinalizer(_stop)
    return _stack


def _stop() -> None:
    global _stack
    if _stack is not None:
        _stack.stop()
        _stack = None
