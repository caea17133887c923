"""The ObjectStore port: part files, written as a stream and visible only once complete.

Adapters: `LocalObjectStore` (a folder; atomic writes by temp file + rename) in
shared/adapters/local/files.py, and `GcsObjectStore` (resumable uploads) in shared/adapters/gcp/storage.py.
Names are relative ('runs/<run>/<wallet>/part-00001-<digest>.jsonl'); `uri()` gives what a
warehouse load reads (file:///... or gs://bucket/...).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import IO, Protocol


class ObjectStore(Protocol):
    def open_writer(self, name: str) -> AbstractContextManager[IO[str]]:
        """A text stream; the object exists under `name` only after the block exits without error."""
        ...

    def rename(self, src: str, dst: str) -> None:
        """Move a complete object to its final name (replacing an identical earlier copy)."""
        ...

    def exists(self, name: str) -> bool: ...

    def read_lines(self, name: str) -> Iterator[str]: ...

    def list(self, prefix: str) -> Iterator[str]: ...

    def delete(self, name: str) -> None: ...

    def uri(self, name: str) -> str: ...

    def name_from_uri(self, uri: str) -> str: ...


def safe_name(name: str) -> str:
    """Object names are relative paths without '..' (both adapters refuse anything else)."""
    if not name or name.startswith("/") or ".." in name.split("/"):
        raise ValueError(f"object names are relative paths without '..': {name!r}")
    return name
