"""Observers on the Google clients' transports: every request the adapters make, as an API method on a
resource, and what IAM must allow for it (through the table in tests/infra/permissions.py).

- HTTP (google-cloud-storage, google-cloud-bigquery): a `response` hook on the client's requests
  session records the method, path, query and body of every request, resumable-upload chunks included.
- gRPC (google-cloud-pubsub): the GAPIC transport's own client interceptor is wrapped, so every call
  (`google.pubsub.v1.Publisher/Publish`, `Subscriber/Pull`, ...) is recorded with its topic or subscription.
Both observe and pass everything on unchanged. What each call needs: tests/gcp/iam_needs.py.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from google.cloud import bigquery, storage
from google.cloud.pubsub_v1 import PublisherClient, SubscriberClient

from tests.gcp.iam_needs import Need, analyse_sql, load_job, object_name, rules, table_name


@dataclass(frozen=True)
class Call:
    method: str  # as in permissions.METHODS
    resource: str
    status: int | None = None
    needs: tuple[Need, ...] = ()
    statements: tuple[str, ...] = ()  # a job's statements: "MERGE polymarket.trades <- polymarket_staging.rows_…"
    request: str = ""  # what went over the wire: "POST /storage/v1/b/..." or the RPC


class Recorder:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._lock = threading.Lock()

    def watch(self, root: Any) -> set[str]:
        """Hook every Google client reachable from `root` (a service's deps); returns their kinds."""
        kinds = set()
        for client in _clients(root):
            if isinstance(client, storage.Client | bigquery.Client):
                client._http.hooks["response"].append(self._on_response)
            else:
                _wrap_interceptor(client._transport._interceptor, self._on_rpc)
            kinds.add(_KIND[next(t for t in _KIND if isinstance(client, t))])
        return kinds

    def needs(self) -> set[Need]:
        return {need for call in self.calls for need in call.needs}

    def _add(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)

    def _on_response(self, response: Any, **_: Any) -> None:
        request = response.request
        call = http_call(request.method, request.url, request.body, response.status_code)
        if call.method == "storage.buckets.get" and _from_bucket_metadata_cache():
            call = dataclasses.replace(call, method="storage.buckets.get:client-metadata", needs=())
        self._add(
            dataclasses.replace(
                call, request=f"{request.method} {urlsplit(request.url).path}?{urlsplit(request.url).query}"
            )
        )

    def _on_rpc(self, method: str, request: Any) -> None:
        name = getattr(request, "topic", None) or getattr(request, "subscription", None) or ""
        kind = "topic" if getattr(request, "topic", None) else "subscription"
        self._add(Call(method, name, needs=rules(method, {kind: name})))


_KIND = {
    storage.Client: "storage",
    bigquery.Client: "bigquery",
    PublisherClient: "publisher",
    SubscriberClient: "subscriber",
}


def _from_bucket_metadata_cache() -> bool:
    """google-cloud-storage >= 3.17 fetches a bucket's metadata (location, project number) for its trace
    attributes on a background thread, whatever the caller does; it caches a fallback on 403."""
    return any(f.filename.endswith("_bucket_metadata_cache.py") for f in traceback.extract_stack())


def _clients(root: Any, depth: int = 0, seen: set[int] | None = None) -> Iterable[Any]:
    seen = set() if seen is None else seen
    if id(root) in seen or depth > 3:
        return
    seen.add(id(root))
    if isinstance(root, tuple(_KIND)):
        yield root
        return
    for value in getattr(root, "__dict__", {}).values():
        if not isinstance(value, str | bytes | int | float | dict | list | tuple):
            yield from _clients(value, depth + 1, seen)


def _wrap_interceptor(interceptor: Any, record: Any) -> None:
    inner = interceptor.intercept_unary_unary

    def recording(continuation: Any, details: Any, request: Any) -> Any:
        record(details.method.lstrip("/"), request)
        return inner(continuation, details, request)

    interceptor.intercept_unary_unary = recording


# -- HTTP requests as API methods -------------------------------------------------------------------


def http_call(verb: str, url: str, body: Any, status: int | None) -> Call:
    parts = urlsplit(url)
    segments = [unquote(s) for s in parts.path.split("/") if s]
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    if "storage" in segments:
        return _storage(verb, segments, query, _json(body), status)
    if "bigquery" in segments:
        return _bigquery(verb, segments, _json(body), status)
    raise AssertionError(f"a request to no known Google API: {verb} {url}")


def _storage(verb: str, seg: list[str], query: dict[str, str], body: dict[str, Any], status: int | None) -> Call:
    i = seg.index("storage")
    upload, rest = (i > 0 and seg[i - 1] == "upload"), seg[i + 2 :]  # after storage/v1
    bucket = rest[1]
    replaces = query.get("ifGenerationMatch") != "0"  # may an existing object be replaced?
    if upload and "upload_id" in query:
        method, where = "storage.objects.insert:session", {}
    elif upload:
        name = query.get("name") or body.get("name", "")  # a resumable upload names its object in the body
        method, where = "storage.objects.insert", {"object": object_name(bucket, name)}
        where.update({"object-replaced": where["object"]} if replaces else {})
    elif len(rest) == 2:
        method, where = "storage.buckets.get", {"bucket": f"projects/_/buckets/{bucket}"}
    elif len(rest) == 3:
        method, where = "storage.objects.list", {"bucket": f"projects/_/buckets/{bucket}"}
    elif len(rest) == 4:
        method = {"GET": "storage.objects.get", "DELETE": "storage.objects.delete"}[verb]
        where = {"object": object_name(bucket, rest[3])}
    elif len(rest) == 9 and rest[4] in ("copyTo", "rewriteTo"):
        method = "storage.objects.copy" if rest[4] == "copyTo" else "storage.objects.rewrite"
        where = {"source": object_name(bucket, rest[3]), "destination": object_name(rest[6], rest[8])}
        where.update({"destination-replaced": where["destination"]} if replaces else {})
    else:
        raise AssertionError(f"an unmapped Cloud Storage request: {verb} {'/'.join(seg)}")
    resource = where.get("object") or where.get("destination") or where.get("bucket") or ""
    return Call(method, resource, status, rules(method, where))


def _bigquery(verb: str, seg: list[str], body: dict[str, Any], status: int | None) -> Call:
    rest = seg[seg.index("projects") :]  # projects/P/...
    project, tail = f"projects/{rest[1]}", rest[2:]
    shape = (verb, *[t if i % 2 == 0 else "*" for i, t in enumerate(tail)])
    routes = {
        ("POST", "jobs"): "bigquery.jobs.insert",
        ("POST", "queries"): "bigquery.jobs.query",
        ("GET", "jobs", "*"): "bigquery.jobs.get",
        ("POST", "jobs", "*", "cancel"): "bigquery.jobs.cancel",
        ("GET", "queries", "*"): "bigquery.jobs.getQueryResults",
        ("POST", "datasets"): "bigquery.datasets.insert",
        ("GET", "datasets", "*"): "bigquery.datasets.get",
        ("POST", "datasets", "*", "tables"): "bigquery.tables.insert",
        ("GET", "datasets", "*", "tables"): "bigquery.tables.list",
        ("GET", "datasets", "*", "tables", "*"): "bigquery.tables.get",
        ("DELETE", "datasets", "*", "tables", "*"): "bigquery.tables.delete",
        ("GET", "datasets", "*", "tables", "*", "data"): "bigquery.tabledata.list",
    }
    method = routes.get(shape)
    if method is None:
        raise AssertionError(f"an unmapped BigQuery request: {verb} {'/'.join(seg)}")
    dataset = f"{project}/datasets/{tail[1]}" if len(tail) > 1 and tail[0] == "datasets" else ""
    table = f"{dataset}/tables/{tail[3]}" if len(tail) > 3 else ""
    if method == "bigquery.tabledata.list" and tail[1].startswith("_"):
        return Call(method, table, status)  # a query's anonymous result table: its creator's own
    needs = rules(method, {"project": project, "dataset": dataset, "table": table})
    if method not in ("bigquery.jobs.insert", "bigquery.jobs.query"):
        return Call(method, table or dataset or project, status, needs)
    config = body.get("configuration", body)
    if "load" in config:
        load = config["load"]
        statements, job_needs = load_job(load, method)
        return Call(method, table_name(load["destinationTable"]), status, needs + job_needs, statements)
    sql = (config.get("query") or {}).get("query") if "query" in config else body.get("query")
    statements, job_needs = analyse_sql(sql or "", method)
    return Call(method, project, status, needs + job_needs, statements)


def _json(body: Any) -> dict[str, Any]:
    if not body:
        return {}
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return {}  # a media upload's bytes
    return value if isinstance(value, dict) else {}
