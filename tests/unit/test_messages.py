import json

import pytest

from shared.core.errors import InvalidMessage
from shared.core.messages import FileReady, WalletTask, decode


def test_round_trip_keeps_every_field():
    task = WalletTask(run_id="r1", wallet="0x" + "a" * 40, part=3, cursor="abc", since=5)
    assert decode(WalletTask, task.encode()) == task


def test_unknown_version_is_rejected_with_a_clear_error():
    body = json.dumps({"v": 2, "run_id": "r", "wallet": "0x" + "a" * 40})
    with pytest.raises(InvalidMessage, match="unknown message version 2"):
        decode(WalletTask, body)


@pytest.mark.parametrize(
    "body, fragment",
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (json.dumps({"v": 1, "wallet": "0x"}).encode(), "run_id"),
        (json.dumps({"v": 1, "run_id": "r", "wallet": "w", "part": -1}).encode(), "part"),
        (json.dumps({"v": 1, "run_id": "r", "wallet": "w", "surprise": 1}).encode(), "surprise"),
    ],
)
def test_malformed_bodies_name_the_problem(body, fragment):
    with pytest.raises(InvalidMessage, match=fragment):
        decode(WalletTask, body)


def test_file_ready_requires_rows_and_final():
    with pytest.raises(InvalidMessage, match="rows"):
        decode(FileReady, json.dumps({"v": 1, "run_id": "r", "wallet": "w", "part": 0, "uri": "u", "final": True}))
