"""The ObjectStore port on a local folder: writes go to a hidden temp file, fsynced, then renamed into
place, so a name exists only once its content is complete."""

from __future__ import annotations

import errno
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from shared.core.errors import SystemicError
from shared.ports.objectstore import safe_name

WRITE_BUFFER = 1 << 18  # bytes a part file gathers before it writes them (a worker holds one)


class LocalObjectStore:
    """A folder on disk. Writes go to a hidden temp file and are renamed into place when complete."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()  # created by the first write, never by merely opening

    def _path(self, name: str) -> Path:
        return self.root / safe_name(name)

    @contextmanager
    def open_writer(self, name: str) -> Iterator[IO[str]]:
        path = self._path(name)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        try:
            with _disk(f"write {path}"):
                path.parent.mkdir(parents=True, exist_ok=True)
                # A page's lines (~700 KB) in a few writes: each write to the disk lets go of the GIL and
                # waits to take it back behind the other workers.
                fh = open(tmp, "w", encoding="utf-8", buffering=WRITE_BUFFER)  # noqa: SIM115 - closed below
            with _disk(f"write {path}"), fh:
                yield fh
                fh.flush()
                os.fsync(fh.fileno())
            with _disk(f"write {path}"):
                os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    def rename(self, src: str, dst: str) -> None:
        target = self._path(dst)
        with _disk(f"move a part file to {target}"):
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


# The errors of the disk, not of one part file: every other write would fail the same way.
_DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG, errno.EIO, errno.EACCES, errno.EPERM}


@contextmanager
def _disk(doing: str) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        if exc.errno in _DISK_ERRNOS:
            raise SystemicError(f"cannot {doing}: {exc.strerror or exc}") from exc
        raise
