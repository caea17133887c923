"""Each adapter satisfies its port (mypy checks the wiring in shared/bootstrap.py; this checks every
adapter by name, signature for signature), and the bootstrap refuses a misspelt override."""

import inspect
from dataclasses import FrozenInstanceError

import pytest

from shared.adapters.clock import SystemClock
from shared.adapters.gcp.bigquery import BigQueryWarehouse
from shared.adapters.gcp.pubsub import PubSubDeadLetterInbox, PubSubDeadLetterSink, PubSubPublisher
from shared.adapters.gcp.storage import GcsObjectStore
from shared.adapters.local.bus import Bus
from shared.adapters.local.duckdb import DuckDBWarehouse
from shared.adapters.local.files import LocalObjectStore
from shared.adapters.sources.dome import DomeSource
from shared.adapters.sources.polymarket import PolymarketSource
from shared.adapters.sql.deadletters import SqlDeadLetters
from shared.bootstrap import Overrides
from shared.embedded.observed import ObservedSource
from shared.ports.clock import Clock
from shared.ports.deadletters import DeadLetterInbox, DeadLetterSink, DeadLetterStore, EmptyInbox
from shared.ports.objectstore import ObjectStore
from shared.ports.publisher import Publisher
from shared.ports.source import TradeSource
from shared.ports.warehouse import Warehouse

PAIRS = [
    (DuckDBWarehouse, Warehouse),
    (BigQueryWarehouse, Warehouse),
    (SqlDeadLetters, DeadLetterStore),
    (PubSubDeadLetterSink, DeadLetterSink),
    (PubSubDeadLetterInbox, DeadLetterInbox),
    (EmptyInbox, DeadLetterInbox),
    (Bus, Publisher),
    (PubSubPublisher, Publisher),
    (LocalObjectStore, ObjectStore),
    (GcsObjectStore, ObjectStore),
    (DomeSource, TradeSource),
    (PolymarketSource, TradeSource),
    (ObservedSource, TradeSource),  # the embedded runner's watch on its source, for the progress display
    (SystemClock, Clock),
]


def port_methods(port):
    return {
        name: member
        for klass in port.__mro__
        if klass.__dict__.get("_is_protocol")
        for name, member in vars(klass).items()
        if callable(member) and not name.startswith("_")
    }


@pytest.mark.parametrize(("adapter", "port"), PAIRS, ids=[f"{a.__name__}-{p.__name__}" for a, p in PAIRS])
def test_the_adapter_has_every_method_of_its_port_with_a_compatible_signature(adapter, port):
    methods = port_methods(port)
    assert methods, f"{port.__name__} declares no methods?"
    for name, declared in methods.items():
        assert hasattr(adapter, name), f"{adapter.__name__} lacks {port.__name__}.{name}"
        want = list(inspect.signature(declared).parameters.values())[1:]
        have = list(inspect.signature(getattr(adapter, name)).parameters.values())[1:]
        assert [p.name for p in have[: len(want)]] == [p.name for p in want], (adapter.__name__, name)
        extra = [
            p.name
            for p in have[len(want) :]
            if p.default is inspect.Parameter.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
        assert extra == [], f"{adapter.__name__}.{name} requires {extra}, which its port does not pass"


def test_an_override_with_a_misspelt_name_is_refused_not_ignored():
    with pytest.raises(TypeError, match="warehous"):
        Overrides(warehous=object())  # type: ignore[call-arg]
    with pytest.raises(FrozenInstanceError):
        Overrides().clock = SystemClock()  # type: ignore[misc]
