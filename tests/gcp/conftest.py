import uuid

import pytest

from emulators.stack import EmulatorStack
from tests.gcp.session import session_stack


@pytest.fixture(scope="session")
def emulator_stack(request: pytest.FixtureRequest) -> EmulatorStack:
    """GCS + BigQuery emulators (PyPI, plain processes) and the project's Pub/Sub emulator, once per run.

    Where a Docker engine answers, the official images could stand in (see test_docker.py); the PyPI
    path runs everywhere, so it is the one the suite relies on."""
    return session_stack(request)


@pytest.fixture
def bucket(emulator_stack):
    name = f"b-{uuid.uuid4().hex[:16]}"
    emulator_stack.storage_client().create_bucket(name)
    return name
