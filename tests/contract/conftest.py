import pytest

from emulators.stack import EmulatorStack
from tests.gcp.session import session_stack


@pytest.fixture(scope="session")
def emulator_stack(request: pytest.FixtureRequest) -> EmulatorStack:
    return session_stack(request)
