"""The ObjectStore port on Cloud Storage: part files as resumable uploads, visible only once complete.

`open_writer` streams through a resumable upload in fixed chunks (memory: one chunk), and finalises
it only when the block exits cleanly. A block that raises cancels the upload session instead: an
unfinished resumable upload is never an object (https://cloud.google.com/storage/docs/resumable-uploads),
so nothing appears at the name. `blob.open("w")` alone is not enough here — its text wrapper's
`__exit__` closes (and so commits) the partial upload even when the block raised.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any, NoReturn

from google.api_core import exceptions as gexc
from google.cloud.storage import Blob, Client
from google.cloud.storage.fileio import BlobWriter

from shared.adapters.gcp.clients import short_retry, translate
from shared.ports.objectstore import safe_name

CHUNK_MULTIPLE = 256 * 1024  # resumable chunks must be multiples of 256 KiB (except the last)
DEFAULT_CHUNK_SIZE = 32 * CHUNK_MULTIPLE  # 8 MiB: few requests per part file, bounded memory
CONTENT_TYPE = "application/x-ndjson"


class GcsObjectStore:
    """Objects in one bucket; names are the same relative paths LocalObjectStore uses."""

    def __init__(
        self,
        client: Client,
        bucket: str,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        timeout: float = 60.0,
        retry_deadline: float = 120.0,
    ) -> None:
        if chunk_size <= 0 or chunk_size % CHUNK_MULTIPLE:
            raise ValueError(f"chunk_size must be a positive multiple of {CHUNK_MULTIPLE} bytes, not {chunk_size}")
        self.client = client
        self.bucket_name = bucket
        self.bucket = client.bucket(bucket)
        self.chunk_size = chunk_size
        self.timeout = timeout
        self.retry = short_retry(retry_deadline)

    @contextmanager
    def open_writer(self, name: str) -> Iterator[IO[str]]:
        # No generation precondition: like the local folder, a completed write replaces the name
        # (callers write to unique temporary names and rename; the rename is the create-only step).
        blob = self.bucket.blob(safe_name(name))
        raw = _Upload(
            f"write gs://{self.bucket_name}/{name}",
            blob,
            chunk_size=self.chunk_size,
            ignore_flush=True,
            retry=self.retry,
            timeout=self.timeout,
            content_type=CONTENT_TYPE,
        )
        text = io.TextIOWrapper(raw, encoding="utf-8")
        try:
            yield text
            text.close()  # uploads the last chunk and finalises: only now does the object exist
        except BaseException:
            _abandon(raw)  # the block's own error (or the upload's, already mapped) goes on unchanged
            raise

    def rename(self, src: str, dst: str) -> None:
        """Server-side copy to `dst`, create-only, then delete the source pinned to the generation copied.

        Nothing at a final name is ever replaced (ifGenerationMatch=0): a FileReady may already point at
        it, and the writer then needs no delete permission there (infra/terraform/iam.tf). Part names say
        what a part covers (shared/handlers/fetch.py), so an object already at `dst` is this same part,
        from an earlier attempt or from this copy retried after a lost answer: the 412 is success. The
        source's name is unique to its writer, so its pinned generation cannot have moved in between."""
        source = self._get(src)
        try:
            self.bucket.copy_blob(
                source,
                self.bucket,
                safe_name(dst),
                if_generation_match=0,
                if_source_generation_match=source.generation,
                retry=self.retry,
                timeout=self.timeout,
            )
        except gexc.PreconditionFailed:
            pass  # the part is already at `dst`
        except gexc.NotFound:
            raise FileNotFoundError(f"no object gs://{self.bucket_name}/{src}") from None
        except Exception as exc:
            _raise_mapped(exc, f"copy {src} -> {dst}")
        try:
            source.delete(if_generation_match=source.generation, retry=self.retry, timeout=self.timeout)
        except (gexc.NotFound, gexc.PreconditionFailed):
            pass  # already gone, or replaced by a newer write that is not ours to delete
        except Exception as exc:
            _raise_mapped(exc, f"delete {src} after copying it to {dst}")

    def exists(self, name: str) -> bool:
        try:
            return bool(self.bucket.blob(safe_name(name)).exists(retry=self.retry, timeout=self.timeout))
        except Exception as exc:
            _raise_mapped(exc, f"stat {name}")

    def read_lines(self, name: str) -> Iterator[str]:
        blob = self._get(name)  # carries the generation, so every ranged read sees the same object
        try:
            with blob.open(
                "r", encoding="utf-8", chunk_size=self.chunk_size, retry=self.retry, timeout=self.timeout
            ) as fh:
                yield from fh
        except gexc.NotFound:
            raise FileNotFoundError(f"gs://{self.bucket_name}/{name} was replaced or deleted while read") from None
        except Exception as exc:
            _raise_mapped(exc, f"read {name}")

    def list(self, prefix: str) -> Iterator[str]:
        try:
            for blob in self.client.list_blobs(
                self.bucket_name, prefix=prefix or None, retry=self.retry, timeout=self.timeout
            ):
                yield blob.name
        except Exception as exc:
            _raise_mapped(exc, f"list {prefix!r}")

    def delete(self, name: str) -> None:
        try:
            self.bucket.blob(safe_name(name)).delete(retry=self.retry, timeout=self.timeout)
        except gexc.NotFound:
            pass
        except Exception as exc:
            _raise_mapped(exc, f"delete {name}")

    def uri(self, name: str) -> str:
        return f"gs://{self.bucket_name}/{safe_name(name)}"

    def name_from_uri(self, uri: str) -> str:
        prefix = f"gs://{self.bucket_name}/"
        if not uri.startswith(prefix):
            raise ValueError(f"{uri!r} is not in this store ({prefix})")
        return uri[len(prefix) :]

    def _get(self, name: str) -> Blob:
        try:
            blob = self.bucket.get_blob(safe_name(name), retry=self.retry, timeout=self.timeout)
        except Exception as exc:
            _raise_mapped(exc, f"stat {name}")
        if blob is None:
            raise FileNotFoundError(f"no object gs://{self.bucket_name}/{name}")
        return blob


class _Upload(BlobWriter):
    """A BlobWriter whose upload failures arrive as taxonomy errors, whichever write triggers them."""

    def __init__(self, doing: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._doing = doing

    def write(self, b: Any) -> int:
        try:
            return int(super().write(b))
        except Exception as exc:
            _raise_mapped(exc, self._doing)

    def close(self) -> None:
        try:
            super().close()
        except Exception as exc:
            _raise_mapped(exc, self._doing)


def _abandon(raw: BlobWriter) -> None:
    """Cancel the resumable session (if one was opened) without finalising it; best effort."""
    with contextlib.suppress(Exception):  # the session expires on its own; the block's error is what matters
        raw.terminate()


def _raise_mapped(exc: Exception, doing: str) -> NoReturn:
    """Raise the taxonomy error for a client failure; anything unrecognised goes on as it was."""
    mapped = translate(exc, doing)
    if mapped is None or mapped is exc:
        raise exc
    raise mapped from exc
