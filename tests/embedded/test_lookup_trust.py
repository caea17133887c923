"""The loader trusts only lookup files the fetcher wrote: in its store, under the name a lookup of that
run and kind gets (shared/handlers/load.py check_part)."""

import pytest

from shared.adapters.local.files import LocalObjectStore
from shared.core.errors import UntrustedPart
from shared.core.messages import LookupReady
from shared.handlers.load import check_part


def ready(uri: str, kind: str = "markets", run_id: str = "r1") -> LookupReady:
    return LookupReady(kind=kind, run_id=run_id, uri=uri, rows=1, keys=("0x" + "a" * 64,))


def test_a_lookup_file_of_this_run_and_kind_in_the_store_is_trusted(tmp_path):
    store = LocalObjectStore(tmp_path)
    check_part(ready(store.uri("runs/r1/lookups/markets/0123456789abcdef.jsonl")), store)


@pytest.mark.parametrize(
    ("name", "kind", "run_id"),
    [
        ("runs/r1/lookups/events/0123456789abcdef.jsonl", "markets", "r1"),  # another kind's file
        ("runs/r2/lookups/markets/0123456789abcdef.jsonl", "markets", "r1"),  # another run's
        ("runs/r1/0x" + "a" * 40 + "/part-00000-0123456789abcdef.jsonl", "markets", "r1"),  # a wallet's part
        ("runs/r1/lookups/markets/not-a-digest.jsonl", "markets", "r1"),
        ("elsewhere/r1/lookups/markets/0123456789abcdef.jsonl", "markets", "r1"),
    ],
)
def test_anything_else_is_untrusted(tmp_path, name, kind, run_id):
    store = LocalObjectStore(tmp_path)
    with pytest.raises(UntrustedPart):
        check_part(ready(store.uri(name), kind, run_id), store)


def test_a_file_outside_the_store_is_untrusted(tmp_path):
    with pytest.raises(UntrustedPart, match="not in this loader's store"):
        check_part(ready("file:///etc/passwd"), LocalObjectStore(tmp_path / "parts"))
