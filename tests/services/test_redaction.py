"""The API key never leaves the process: an upstream that echoes the request's Authorization header
into its error answers, and every place that text could go (shared/core/errors.py, `redact`)."""

import io
import json
import logging
import secrets
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fastapi.testclient import TestClient

from services.fetcher.app import create_app
from shared import bootstrap
from shared.bootstrap import Overrides
from shared.cli.options import setup_logging
from shared.core.errors import REDACTED, PipelineError, redact, register_secret, upstream_text
from shared.core.messages import DeadLetter, WalletTask
from shared.logs import JsonFormatter
from shared.settings import FetcherSettings, Settings
from shared.web.push import envelope

W = "0x" + "b" * 40
KEY = "dk_live_" + secrets.token_hex(20)  # registered by the settings that read it, as in every process


class Echo(BaseHTTPRequestHandler):
    """Answers every GET with `server.status` and a body that quotes the request's Authorization header."""

    def do_GET(self) -> None:
        auth = self.headers.get("Authorization", "")
        status = self.server.status  # type: ignore[attr-defined]
        if status == 401:
            body, kind = f"unauthorized: you sent {auth} and that is not a key we know".encode(), "text/plain"
        else:
            detail = {"message": f"invalid request ({auth}) " + "x" * 5000, "echo": {"authorization": auth}}
            body, kind = json.dumps({"error": f"bad: {auth}", **detail}).encode(), "application/json"
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def echo() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    server.status = 400  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """Everything logged during the test, as the services' JSON formatter writes it."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter("p"))
    root = logging.getLogger()
    root.addHandler(handler)
    level, root.level = root.level, logging.INFO
    yield out
    root.removeHandler(handler)
    root.setLevel(level)


def settings(server: ThreadingHTTPServer) -> FetcherSettings:
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    return FetcherSettings(
        gcp_project="p", gcs_bucket="b", dome_api_key=KEY, dome_api_base_url=url, http_max_attempts=1, dome_tier="pro"
    )


def test_the_echoed_key_is_in_no_exception_text(echo):
    source = bootstrap.make_source(settings(echo))  # the real source, from settings (which register the key)
    for status in (400, 401, 403, 404, 500):
        echo.status = status
        with pytest.raises(PipelineError) as caught:
            next(source.pages(W, None, None, None))
        exc = caught.value
        texts = [str(exc), repr(exc), exc.message, *map(str, exc.args), *map(str, exc.fields.values())]
        assert not any(KEY in t for t in texts), (status, texts)
        if status != 500:  # a 5xx body is not quoted at all
            assert "Bearer [redacted]" in exc.message, exc.message
            assert len(exc.message) < 2 * 300 + 200  # each quoted field cut to 300 characters


@pytest.mark.parametrize(("status", "code"), [(400, 204), (401, 503), (403, 503), (500, 503)])
def test_the_echoed_key_is_in_no_dead_letter_503_body_or_log_line(
    echo, store, publisher, letters, clock, caplog, json_log, status, code
):
    echo.status = status
    app = create_app(settings(echo), Overrides(publisher=publisher, store=store, dead_letters=letters, clock=clock))
    with TestClient(app) as client:
        task = WalletTask(run_id="r", wallet=W)
        response = client.post("/", json=envelope(task.encode(), {"wallet": W, "note": f"Bearer {KEY}"}))
        status_body = client.get("/status").text
    assert response.status_code == code
    assert KEY not in response.text and KEY not in status_body
    if code == 204:  # a 400 about the wallet: dead-lettered with the reason
        [letter] = letters.letters
        assert letter.error_class == "PermanentError" and "Bearer [redacted]" in letter.error
        assert KEY not in letter.model_dump_json()  # error, attributes (the push's too), data
    else:
        assert letters.letters == []
        assert response.json()["message"]
    logged = json_log.getvalue()
    assert logged and all(KEY not in line for line in logged.splitlines())
    assert all(KEY not in r.getMessage() for r in caplog.records)


def test_the_log_formatters_redact_whatever_is_logged(tmp_path, json_log):
    log = logging.getLogger("anything")
    try:
        raise ValueError(f"the server said: Authorization: Bearer {KEY}")
    except ValueError:
        log.exception("failed with key %s", KEY, extra={"uri": f"https://x/?key={KEY}"})
    entry = json.loads(json_log.getvalue().splitlines()[-1])
    assert KEY not in json.dumps(entry)
    assert entry["message"] == f"failed with key {REDACTED}" and entry["uri"] == f"https://x/?key={REDACTED}"
    assert "ValueError: the server said: Authorization: Bearer [redacted]" in entry["stack_trace"]

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        setup_logging(tmp_path / "backfill.log")  # the CLI's file log
        try:
            raise RuntimeError(KEY)
        except RuntimeError:
            log.exception("key=%s token=Bearer %s", KEY, "eyJhbGciOiJSUzI1NiJ9.e30.c2ln")
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers[:], root.level = handlers, level
    text = (tmp_path / "backfill.log").read_text()
    assert KEY not in text and "eyJhbGci" not in text and f"key={REDACTED} token=Bearer {REDACTED}" in text


def test_a_dead_letter_is_redacted_however_it_is_made():
    letter = DeadLetter.of("wallets", "{}", ValueError(f"Bearer {KEY}"), attributes={"a": KEY})
    direct = DeadLetter(topic="wallets", data="{}", error_class="X", error=KEY, attributes={"b": f"x{KEY}y"})
    for made in (letter, direct):
        assert KEY not in made.model_dump_json()
    # a reason cut at its limit is redacted first: no prefix of the key is left at the cut
    long = DeadLetter.of("wallets", "{}", ValueError("y" * 1990 + KEY))
    assert KEY[:10] not in long.error


def test_redact_and_the_registered_key():
    assert redact("Authorization: Bearer ya29.a0AfH6SMB-x_y~z+/=") == f"Authorization: Bearer {REDACTED}"
    assert redact("authorization: bearer abcdefghij") == f"authorization: bearer {REDACTED}"
    assert redact("a missing bearer token") == "a missing bearer token"  # prose is not a token
    other = "sk+" + secrets.token_hex(8)
    assert redact(f"key {other}") == f"key {other}"
    Settings(dome_api_key=other)  # reading the setting registers it, once, for the whole process
    encoded = other.replace("+", "%2B")
    assert redact(f"key {other}, in a URL {encoded}") == f"key {REDACTED}, in a URL {REDACTED}"
    register_secret("short")  # under 8 characters: would redact ordinary words
    assert redact("a short note") == "a short note"
    cut = upstream_text("z" * 1000)
    assert cut == "z" * 300 + "… [1,000 characters cut to 300]"
    assert KEY[:5] not in upstream_text("z" * 295 + KEY)  # redacted before it is cut: no prefix is left
