"""The ObjectStore port: part files, written as a stream and visible only once complete.

Adapters: `LocalObjectStore` (a folder; atomic writes by temp file + rename) here, and
`GcsObjectStore` (google-cloud-storage resumable uploads) in shared/gcp/storage.py.
Names are relative ('runs/<run>/<wallet>/part-00001-<digest>.jsonl'); `uri()` gives what a
warehouse load reads (file:///... or gs://bucket/...).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
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


def _safe_name(name: str) -> str:
    if not name or name.startswith("/") or ".." in name.split("/"):
        raise ValueError(f"object names are relative paths without '..': {name!r}")
    return name


class LocalObjectStore:
    """A folder on disk. Writes go to a hidden temp file and are renamed into place when complete."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, name: str) -> Path:
        return self.root / _safe_name(name)

    @contextmanager
    def open_writer(self, name: str) -> Iterator[IO[str]]:
        path = self._path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                yield fh
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    def rename(self, src: str, dst: str) -> None:
        target = self._path(dst)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self._path(src), target)

    def exists(self, name: str) -> bool:
        return self._path(name).is_file()

    def read_lines(self, name: str) -> Iterator[str]:
        with open(self._path(name), encoding="utf-8") as fh:
            yield from fh

    def list(self, prefix: str) -> Iterator[str]:
        for path in sorted(self.root.rglob("*")):
            if path.is_file() and not path.name.startswith("."):
                rel = path.relative_to(self.root).as_posix()
                if rel.startswith(prefix):
                    yield rel

    def delete(self, name: str) -> None:
        self._path(name).unlink(missing_ok=True)

    def uri(self, name: str) -> str:
        return self._path(name).as_uri()

    def name_from_uri(self, uri: str) -> str:
        prefix = self.root.as_uri() + "/"
        if not uri.startswith(prefix):
            raise ValueError(f"{uri!r} is not in this store ({prefix})")
        return uri[len(prefix) :]
