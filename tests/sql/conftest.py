"""The `zetasql` fixture: one ZetaSQL analyser for the session (tests/sql/zetasql.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.sql import zetasql as zs


@pytest.fixture(scope="session")
def zetasql() -> Iterator[zs.Analyzer]:
    binary = zs.ensure_installed()
    if binary is None:
        pytest.skip(f"ZetaSQL analysis unavailable: {zs.why}")
    with zs.Analyzer(binary) as analyzer:
        yield analyzer
