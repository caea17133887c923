"""Who may call which route (shared/web/auth.py): ID tokens signed by a key generated here, verified by
the services' real gate against a local certificate source."""

import threading

import pytest
from fastapi.testclient import TestClient

from services.dispatcher.app import create_app as dispatcher_app
from services.fetcher.app import create_app as fetcher_app
from services.loader.app import create_app as loader_app
from shared.bootstrap import Overrides
from shared.core.messages import FileReady, WalletTask, decode
from shared.handlers.fetch import fetch
from shared.ports.deadletters import EmptyInbox
from shared.ports.publisher import Topic
from shared.settings import DispatcherSettings, FetcherSettings, LoaderSettings
from shared.web.auth import Certificates, max_age
from shared.web.push import envelope
from tests.fakes import FakeTradeSource, budget
from tests.services.tokens import CertificateSource, Key, bearer, unsigned

DISPATCHER = "https://dispatcher-123.us-central1.run.app"
FETCHER = "https://fetcher-123.us-central1.run.app"
LOADER = "https://loader-123.us-central1.run.app"
SCHEDULER = "dispatch-scheduler@p.iam.gserviceaccount.com"
OPERATOR = "backfill-operator@p.iam.gserviceaccount.com"
WALLETS_PUSH = "wallets-push-invoker@p.iam.gserviceaccount.com"
FILES_PUSH = "files-push-invoker@p.iam.gserviceaccount.com"
STRANGER = "someone@example.com"
W = "0x" + "a" * 40
KEY, FORGER, ROTATED = Key("key-1"), Key("key-1"), Key("key-2")  # FORGER: another key under KEY's id


@pytest.fixture
def source():
    return CertificateSource(KEY)


@pytest.fixture
def dispatcher(warehouse, publisher, clock, source):
    def make(**settings):
        values = {
            "oidc_audience": DISPATCHER,
            "allowed_scheduler_emails": SCHEDULER,
            "allowed_operator_emails": OPERATOR,
            **settings,
        }
        s = DispatcherSettings(gcp_project="p", gcs_bucket="b", max_in_flight=10, **values)
        o = Overrides(
            warehouse=warehouse, publisher=publisher, inbox=EmptyInbox(), clock=clock, certificates=Certificates(source)
        )
        return TestClient(dispatcher_app(s, o))

    return make


@pytest.fixture
def fetcher(store, publisher, letters, clock, source):
    def make(**settings):
        values = {
            "oidc_audience": FETCHER,
            "allowed_push_emails": WALLETS_PUSH,
            "allowed_operator_emails": OPERATOR,
            **settings,
        }
        s = FetcherSettings(gcp_project="p", gcs_bucket="b", **values)
        o = Overrides(
            publisher=publisher,
            store=store,
            source=FakeTradeSource({W: 3}),
            dead_letters=letters,
            clock=clock,
            certificates=Certificates(source),
        )
        return TestClient(fetcher_app(s, o))

    return make


@pytest.fixture
def loader(warehouse, store, letters, clock, source):
    def make(certificates=None, **settings):
        values = {"oidc_audience": LOADER, "allowed_push_emails": FILES_PUSH, **settings}
        s = LoaderSettings(gcp_project="p", gcs_bucket="b", **values)
        o = Overrides(
            warehouse=warehouse,
            store=store,
            dead_letters=letters,
            clock=clock,
            certificates=certificates or Certificates(source),
        )
        return TestClient(loader_app(s, o))

    return make


def call(client, method, path, token=None, body=None):
    headers = bearer(token) if token else {}
    return client.request(method, path, json=body, headers=headers)


def task_push(wallet=W):
    return envelope(WalletTask(run_id="r", wallet=wallet).encode(), {"wallet": wallet})


def part_files(store, publisher, clock, wallets):
    source = FakeTradeSource(dict.fromkeys(wallets, 4))
    for wallet in wallets:
        task = WalletTask(run_id="r", wallet=wallet)
        fetch(task, source=source, store=store, publisher=publisher, clock=clock, budget=budget(max_pages=100))
    return [decode(FileReady, d) for d in publisher.on(Topic.FILES)]


# --- Each route admits its own callers, and only them --------------------------------------------------

DISPATCHER_ROUTES = [
    ("POST", "/dispatch", {"run_id": "r1"}, SCHEDULER, OPERATOR, "ALLOWED_SCHEDULER_EMAILS"),
    ("POST", "/dead-letters/replay", {"dry_run": True}, OPERATOR, SCHEDULER, "ALLOWED_OPERATOR_EMAILS"),
    ("GET", "/status", None, OPERATOR, SCHEDULER, "ALLOWED_OPERATOR_EMAILS"),
    ("POST", "/verify", {"requeue": True}, OPERATOR, SCHEDULER, "ALLOWED_OPERATOR_EMAILS"),
]


@pytest.mark.parametrize(("method", "path", "body", "caller", "other", "variable"), DISPATCHER_ROUTES)
def test_each_dispatcher_route_admits_only_its_callers(dispatcher, method, path, body, caller, other, variable):
    with dispatcher() as client:
        assert call(client, method, path, KEY.token(caller, DISPATCHER), body).status_code == 200
        for someone in (other, STRANGER):
            refused = call(client, method, path, KEY.token(someone, DISPATCHER), body)
            assert refused.status_code == 403, refused.text
            assert someone in refused.json()["message"] and variable in refused.json()["message"]
        assert call(client, method, path, None, body).status_code == 401


def test_operators_cannot_dispatch_and_the_scheduler_cannot_read_status(dispatcher, publisher, warehouse):
    warehouse.add_traders(["0x" + "1" * 40])
    with dispatcher() as client:
        assert call(client, "POST", "/dispatch", KEY.token(OPERATOR, DISPATCHER), {}).status_code == 403
        assert publisher.messages == []  # refused before the route ran
        assert call(client, "POST", "/dispatch", KEY.token(SCHEDULER, DISPATCHER), {}).json()["published"] == 1


@pytest.mark.parametrize(
    ("method", "path", "caller", "other", "expected"),
    [("POST", "/", WALLETS_PUSH, OPERATOR, 204), ("GET", "/status", OPERATOR, WALLETS_PUSH, 200)],
)
def test_each_fetcher_route_admits_only_its_callers(fetcher, publisher, method, path, caller, other, expected):
    body = task_push() if method == "POST" else None
    with fetcher() as client:
        assert call(client, method, path, KEY.token(other, FETCHER), body).status_code == 403
        assert publisher.messages == []
        assert call(client, method, path, KEY.token(caller, FETCHER), body).status_code == expected


def test_the_loader_admits_its_own_push_identity_only(loader, store, publisher, clock, warehouse):
    [ready] = part_files(store, publisher, clock, [W])
    push = envelope(ready.encode(), {"wallet": W})
    with loader(loader_flush_files=1, loader_flush_seconds=0.1) as client:
        for other in (WALLETS_PUSH, OPERATOR, SCHEDULER):  # the other push subscription's identity too
            assert call(client, "POST", "/", KEY.token(other, LOADER), push).status_code == 403
        assert client.app.state.batcher.batches == []
        assert call(client, "POST", "/", KEY.token(FILES_PUSH, LOADER), push).status_code == 204
    assert warehouse.cursor().execute("SELECT count(*) FROM trades").fetchone()[0] == 4


def test_healthz_needs_no_token(dispatcher, fetcher, loader):
    for make in (dispatcher, fetcher, loader):
        with make() as client:
            assert client.get("/healthz").status_code == 200


# --- What a valid token is -----------------------------------------------------------------------------

INVALID = {
    "missing": lambda: None,
    "not a JWT": lambda: "not-a-jwt",
    "unsigned (alg none)": lambda: unsigned(SCHEDULER, DISPATCHER),
    "signed by another key": lambda: FORGER.token(SCHEDULER, DISPATCHER),
    "an unknown key id": lambda: ROTATED.token(SCHEDULER, DISPATCHER),
    "another audience": lambda: KEY.token(SCHEDULER, FETCHER),
    "expired": lambda: KEY.token(SCHEDULER, DISPATCHER, expires_in=-3600),
    "another issuer": lambda: KEY.token(SCHEDULER, DISPATCHER, issuer="https://evil.example.com"),
    "an unverified email": lambda: KEY.token(SCHEDULER, DISPATCHER, email_verified=False),
    "no email": lambda: KEY.token("", DISPATCHER),
}


@pytest.mark.parametrize("kind", sorted(INVALID))
def test_a_missing_or_invalid_token_is_401_and_nothing_runs(dispatcher, publisher, warehouse, kind):
    warehouse.add_traders(["0x" + "1" * 40])
    with dispatcher() as client:
        response = call(client, "POST", "/dispatch", INVALID[kind](), {})
    assert response.status_code == 401, (kind, response.text)
    assert response.headers["www-authenticate"] == "Bearer"
    assert publisher.messages == []


def test_a_basic_or_malformed_authorization_header_is_401(dispatcher):
    with dispatcher() as client:
        for header in ("Basic dXNlcjpwYXNz", "Bearer", "Bearer    ", KEY.token(SCHEDULER, DISPATCHER)):
            assert client.post("/dispatch", json={}, headers={"Authorization": header}).status_code == 401


def test_an_unknown_key_id_fetches_the_certificates_again_at_most_once_a_minute(dispatcher, source):
    with dispatcher() as client:
        assert call(client, "GET", "/status", KEY.token(OPERATOR, DISPATCHER)).status_code == 200
        source.add(ROTATED)  # Google publishes a new key, and tokens signed with it arrive at once
        assert call(client, "GET", "/status", ROTATED.token(OPERATOR, DISPATCHER)).status_code == 401
    assert source.calls == 1  # a burst of unknown key ids (or forged ones) does not hammer the source
    now = [0.0]
    certificates = Certificates(source, now=lambda: now[0])
    assert set(certificates.for_key("key-1")) == {"key-1", "key-2"} and source.calls == 2
    source.add(Key("key-3"))
    assert "key-3" not in certificates.for_key("key-3") and source.calls == 2
    now[0] = 61.0
    assert "key-3" in certificates.for_key("key-3") and source.calls == 3


# --- Google's certificates: fetched once, kept for their max-age, never on the event loop ----------------


def test_the_certificates_are_fetched_once_for_many_requests(dispatcher, source):
    with dispatcher() as client:
        for i in range(25):
            token = KEY.token(OPERATOR if i % 2 else SCHEDULER, DISPATCHER)
            path = "/status" if i % 2 else "/dispatch"
            assert call(client, "GET" if i % 2 else "POST", path, token, None if i % 2 else {}).status_code == 200
    assert source.calls == 1


def test_the_certificates_are_kept_for_their_max_age_then_fetched_again(source):
    now = [0.0]
    source.seconds = 600
    certificates = Certificates(source, now=lambda: now[0])
    for t in (0.0, 100.0, 599.0):
        now[0] = t
        assert "key-1" in certificates.for_key("key-1")
    assert source.calls == 1
    now[0] = 600.0
    certificates.for_key("key-1")
    assert source.calls == 2


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("public, max-age=19766, must-revalidate, no-transform", 19766), ("max-age=0", 0), (None, 300), ("no-cache", 300)],
)
def test_max_age_is_read_from_cache_control(header, seconds):
    assert max_age(header) == seconds


def test_a_slow_certificate_fetch_does_not_stop_the_loader_accepting_and_loading(loader, store, publisher, clock):
    """One push waits on a slow fetch of the certificates (a key id not seen before); meanwhile the
    loader's event loop, which also runs its batcher, answers /healthz and loads another push's file."""
    first, slow, fast = part_files(store, publisher, clock, ["0x" + c * 40 for c in "123"])
    source = CertificateSource(KEY)
    certificates = Certificates(source, min_refetch_seconds=0)
    done: dict[str, int] = {}

    def post(name, ready, key):
        push = envelope(ready.encode(), {"wallet": ready.wallet})
        done[name] = call(client, "POST", "/", key.token(FILES_PUSH, LOADER), push).status_code

    with loader(certificates, loader_flush_files=1, loader_flush_seconds=0.1) as client:
        post("first", first, KEY)  # certificates fetched and cached
        source.hold()
        source.add(ROTATED)
        waiting = threading.Thread(target=post, args=("slow", slow, ROTATED))
        waiting.start()
        assert source.entered.wait(10)  # the slow push is inside the fetch now
        assert client.get("/healthz").status_code == 200
        quick = threading.Thread(target=post, args=("fast", fast, KEY))
        quick.start()
        quick.join(10)
        assert done.get("fast") == 204 and waiting.is_alive()  # loaded while the other one still waits
        source.release()
        waiting.join(10)
    assert done == {"first": 204, "fast": 204, "slow": 204}
    assert client.app.state.batcher.batches == [1, 1, 1]


# --- Fail closed on Cloud Run; open locally --------------------------------------------------------------


@pytest.mark.parametrize("service", ["dispatcher", "fetcher", "loader"])
def test_on_cloud_run_without_an_audience_every_call_but_healthz_is_refused(request, caplog, service):
    make = request.getfixturevalue(service)
    token = KEY.token(SCHEDULER, DISPATCHER)
    with make(oidc_audience=None, k_service=service) as client:
        assert client.get("/healthz").status_code == 200
        for method, path in (("POST", "/"), ("POST", "/dispatch"), ("GET", "/status"), ("GET", "/docs")):
            response = call(client, method, path, token, {} if method == "POST" else None)
            assert response.status_code == 503 and "OIDC_AUDIENCE" in response.json()["message"]
    assert any(
        r.levelname == "ERROR" and "OIDC_AUDIENCE is not set on Cloud Run" in r.getMessage() for r in caplog.records
    )


def test_on_cloud_run_a_route_without_callers_is_refused_and_said_at_start_up(dispatcher, caplog):
    with dispatcher(k_service="dispatcher", allowed_operator_emails="") as client:
        said = {r.getMessage() for r in caplog.records if r.levelname == "ERROR"}
        assert said == {
            "refusing calls: ALLOWED_OPERATOR_EMAILS is empty: GET /status is refused to everyone",
            "refusing calls: ALLOWED_OPERATOR_EMAILS is empty: POST /dead-letters/replay is refused to everyone",
            "refusing calls: ALLOWED_OPERATOR_EMAILS is empty: POST /verify is refused to everyone",
        }
        refused = call(client, "GET", "/status", KEY.token(OPERATOR, DISPATCHER))
        assert refused.status_code == 503 and "ALLOWED_OPERATOR_EMAILS" in refused.json()["message"]
        assert call(client, "POST", "/dispatch", KEY.token(SCHEDULER, DISPATCHER), {}).status_code == 200


def test_locally_without_an_audience_calls_need_no_token(dispatcher, fetcher, loader):
    """The local cloud's emulator push carries no token (emulators/dev.py sets OIDC_AUDIENCE empty)."""
    with dispatcher(oidc_audience="") as client:
        assert client.post("/dispatch", json={}).status_code == 200
        assert client.get("/status").status_code == 200
    with fetcher(oidc_audience=None) as client:
        assert client.post("/", json=task_push()).status_code == 204


# --- The dispatch cap ------------------------------------------------------------------------------------


def test_max_in_flight_may_lower_the_cap_but_never_raise_it(dispatcher, warehouse):
    warehouse.add_traders(["0x" + c * 40 for c in "12345"])
    with dispatcher(oidc_audience="") as client:
        above = client.post("/dispatch", json={"max_in_flight": 11})
        assert above.status_code == 422 and "MAX_IN_FLIGHT=10" in above.json()["message"]
        assert client.post("/dispatch", json={"max_in_flight": 1_000_000}).status_code == 422
        assert client.post("/dispatch", json={"run_id": "r", "max_in_flight": 2}).json()["published"] == 2
