"""The ObjectStore port's contract, run against both twins: the local folder and Cloud Storage (emulator)."""

import tracemalloc
import uuid

import pytest

from shared.adapters.gcp.storage import CHUNK_MULTIPLE, GcsObjectStore
from shared.adapters.local.files import LocalObjectStore

NAME = "runs/r1/0xabc/part-00000.jsonl"


@pytest.fixture(params=["local", pytest.param("gcs", marks=pytest.mark.emulators)])
def store(request, tmp_path):
    if request.param == "local":
        return LocalObjectStore(tmp_path / "store")
    stack = request.getfixturevalue("emulator_stack")
    client = stack.storage_client()
    bucket = f"b-{uuid.uuid4().hex[:16]}"
    client.create_bucket(bucket)
    # The smallest chunk, so a few hundred KiB already spans several uploaded chunks.
    return GcsObjectStore(client, bucket, chunk_size=CHUNK_MULTIPLE, timeout=10, retry_deadline=10)


def write(store, name, text):
    with store.open_writer(name) as out:
        out.write(text)


def test_a_written_object_reads_back_line_for_line(store):
    lines = [f'{{"i": {i}, "title": "Will ü win? #{i}"}}\n' for i in range(2000)]
    with store.open_writer(NAME) as out:
        out.writelines(lines)
    assert store.exists(NAME)
    assert list(store.read_lines(NAME)) == lines


def test_an_object_is_invisible_until_the_writer_block_exits(store):
    with store.open_writer(NAME) as out:
        for _ in range(700):  # 700 KiB: chunks of a resumable upload are already on the server
            out.write("x" * 1023 + "\n")
        assert not store.exists(NAME)
        assert list(store.list("runs/")) == []
    assert store.exists(NAME)
    assert list(store.list("runs/")) == [NAME]


@pytest.mark.parametrize("size", [10, 700 * 1024], ids=["small", "several-chunks"])
def test_a_raising_writer_leaves_no_object(store, size):
    with pytest.raises(RuntimeError, match="the source failed"), store.open_writer(NAME) as out:
        out.write("y" * size)
        raise RuntimeError("the source failed")
    assert not store.exists(NAME)
    assert list(store.list("")) == []


def test_a_raising_writer_leaves_an_earlier_object_of_that_name_as_it_was(store):
    write(store, NAME, "first\n")
    with pytest.raises(RuntimeError), store.open_writer(NAME) as out:
        out.write("second\n" * 100_000)
        raise RuntimeError("the source failed")
    assert list(store.read_lines(NAME)) == ["first\n"]


def test_rename_moves_a_complete_object(store):
    write(store, "tmp/part.jsonl", "a\nb\n")
    store.rename("tmp/part.jsonl", NAME)
    assert not store.exists("tmp/part.jsonl")
    assert list(store.read_lines(NAME)) == ["a\n", "b\n"]


def test_rename_replaces_an_identical_earlier_copy(store):
    write(store, NAME, "a\n")
    write(store, "tmp/again.jsonl", "a\n")
    store.rename("tmp/again.jsonl", NAME)
    assert sorted(store.list("")) == [NAME]
    assert list(store.read_lines(NAME)) == ["a\n"]


def test_a_missing_object_does_not_exist_cannot_be_read_or_moved_and_deletes_quietly(store):
    assert not store.exists(NAME)
    with pytest.raises(FileNotFoundError):
        list(store.read_lines(NAME))
    with pytest.raises(FileNotFoundError):
        store.rename(NAME, "runs/elsewhere.jsonl")
    store.delete(NAME)


def test_delete_removes_an_object(store):
    write(store, NAME, "a\n")
    store.delete(NAME)
    assert not store.exists(NAME)


def test_list_finds_the_objects_under_a_prefix(store):
    names = ["runs/r1/0xa/part-0.jsonl", "runs/r1/0xb/part-0.jsonl", "runs/r2/0xa/part-0.jsonl", "tmp/x.jsonl"]
    for name in names:
        write(store, name, "a\n")
    assert sorted(store.list("runs/r1/")) == names[:2]
    assert sorted(store.list("runs/")) == names[:3]
    assert sorted(store.list("")) == names
    assert list(store.list("nothing/")) == []


def test_a_uri_round_trips_to_its_name_and_a_foreign_uri_is_refused(store):
    uri = store.uri(NAME)
    assert uri.startswith(("file:///", "gs://")) and uri.endswith(NAME)
    assert store.name_from_uri(uri) == NAME
    with pytest.raises(ValueError):
        store.name_from_uri("gs://another-bucket/" + NAME)


@pytest.mark.parametrize("name", ["/etc/passwd", "runs/../../x", ""])
def test_names_are_relative_paths(store, name):
    with pytest.raises(ValueError), store.open_writer(name):
        pass


def test_a_20_mb_write_streams_in_bounded_memory(store):
    line = '{"row": "' + "z" * 1012 + '"}\n'  # 1 KiB
    tracemalloc.start()
    try:
        with store.open_writer(NAME) as out:
            for _ in range(20 * 1024):
                out.write(line)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * 1024 * 1024  # a few chunks at most, never the 20 MB
    count = total = 0
    for got in store.read_lines(NAME):
        count += 1
        total += len(got)
    assert (count, total) == (20 * 1024, 20 * 1024 * 1024)
