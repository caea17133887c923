"""DuckDB's client tries `import pandas` at every statement with parameters; without pandas installed,
the adapter's finder makes that import fail at once (no walk of sys.path), and pyarrow still works."""

import importlib.metadata
import importlib.util
import sys
import traceback

import pyarrow as pa
import pytest

import shared.adapters.local.duckdb as adapter


def test_without_pandas_its_import_fails_at_once_and_the_rest_still_imports() -> None:
    try:
        importlib.metadata.distribution("pandas")
        pytest.skip("pandas is installed here: the finder is (rightly) not installed")
    except importlib.metadata.PackageNotFoundError:
        pass
    assert isinstance(sys.meta_path[0], adapter._NoPandas)  # asked before the path finders
    with pytest.raises(ModuleNotFoundError, match="pandas") as caught:
        import pandas  # noqa: F401
    frames = [f.name for f in traceback.extract_tb(caught.value.__traceback__)]
    assert "find_spec" in frames  # the finder refused it: no directory of sys.path was walked
    assert importlib.util.find_spec("json") is not None  # other imports go on as before
    assert pa.array([1, 2]).to_pylist() == [1, 2]  # pyarrow's pandas shim takes the ImportError


def test_a_statement_with_parameters_runs() -> None:
    warehouse = adapter.DuckDBWarehouse(":memory:")
    assert warehouse.cursor().execute("SELECT $a::INT + 1", {"a": 1}).fetchone() == (2,)
