"""GcsObjectStore.rename writes a part's final name create-only, and a 412 there is success.

The GCS emulator ignores preconditions (gcp-storage-emulator copies over an existing object), so the 412
comes from a stand-in endpoint that answers the three requests of a rename as Cloud Storage does when
the final name is taken: the object's metadata, 412 Precondition Failed for the copy, 204 for the delete.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from shared.adapters.gcp.storage import GcsObjectStore

GENERATION = "1712"


@contextmanager
def part_already_there() -> Iterator[tuple[str, list[tuple[str, str, dict[str, str]]]]]:
    seen: list[tuple[str, str, dict[str, str]]] = []

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            if int(self.headers.get("content-length") or 0):
                self.rfile.read(int(self.headers["content-length"]))
            url = urlsplit(self.path)
            path, query = unquote(url.path), {k: v[-1] for k, v in parse_qs(url.query).items()}
            seen.append((self.command, path, query))
            if self.command == "GET" and path == "/storage/v1/b/b/o/tmp/a.jsonl":
                status, body = 200, {"bucket": "b", "name": "tmp/a.jsonl", "generation": GENERATION}
            elif self.command == "POST" and "/copyTo/" in path:
                status, body = 412, {"error": {"code": 412, "message": "At least one of the pre-conditions failed."}}
            elif self.command == "DELETE" and path == "/storage/v1/b/b/o/tmp/a.jsonl":
                status, body = 204, None
            else:  # e.g. the client library's own bucket metadata fetch
                status, body = 404, {"error": {"code": 404, "message": "not here"}}
            data = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = _answer

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_a_rename_onto_an_existing_part_keeps_it_and_deletes_the_temporary_object():
    with part_already_there() as (url, seen):
        client = storage.Client(
            project="p", credentials=AnonymousCredentials(), client_options=ClientOptions(api_endpoint=url)
        )
        GcsObjectStore(client, "b", timeout=5, retry_deadline=2).rename("tmp/a.jsonl", "runs/a.jsonl")
    requests = [(verb, path, query) for verb, path, query in seen if "/o/" in path]
    (copy,) = [q for verb, path, q in requests if "/copyTo/" in path]
    (delete,) = [q for verb, path, q in requests if verb == "DELETE"]
    assert (copy["ifGenerationMatch"], copy["ifSourceGenerationMatch"]) == ("0", GENERATION)  # create-only
    assert delete["ifGenerationMatch"] == GENERATION  # only the generation that was copied
    assert [verb for verb, _, _ in requests] == ["GET", "POST", "DELETE"]  # the 412 was not retried
