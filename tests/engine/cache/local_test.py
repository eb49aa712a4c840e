"""The task cache on this machine: entries under the state folder, found again, kept whole, and reused as links."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import stat
import subprocess
import sys
import tempfile
import textwrap
import threading
from pathlib import Path

import pytest
from conftest import PROJECT, cannot_run, wait_until

from fasttrack_gitops.engine import datafolder
from fasttrack_gitops.engine.cache import Entry, Hit, Miss
from fasttrack_gitops.engine.cache.local import LocalCacheIndex

REPOSITORY = "https://github.com/acme/ml.git"
PIPELINE = "ml"
KEY = "1" * 64
JOB_A = "20260101-000000-aaaaaa"
JOB_B = "20260102-000000-bbbbbb"
JOB_C = "20260103-000000-cccccc"


@pytest.fixture
def state(tmp_path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def index(state) -> LocalCacheIndex:
    return LocalCacheIndex(state, REPOSITORY, PIPELINE)


def outputs_of(state: Path, job: str, task: str = "train") -> Path:
    return datafolder.outputs_folder(datafolder.job_folder(state, job), task)


def task_wrote(state: Path, job: str, files: dict[str, bytes], task: str = "train") -> Path:
    folder = outputs_of(state, job, task)
    for relpath, data in files.items():
        (folder / relpath).parent.mkdir(parents=True, exist_ok=True)
        (folder / relpath).write_bytes(data)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def finished(index: LocalCacheIndex, job: str, key: str = KEY, task: str = "train") -> Entry:
    """What the runner does when a cached task succeeds: its manifest, then its entry; the entry that stands."""
    files = asyncio.run(index.outputs(job, task))
    entry = Entry(key, job, task, PIPELINE, "c" * 40, 1767225600.0, {"version": 1, "image": "python:3.11"}, files)
    return asyncio.run(index.record(entry))


def entry_file(index: LocalCacheIndex, key: str = KEY) -> Path:
    return index.folder / datafolder.cache_entry(key)


MODEL = {"model.bin": b"weights" * 100, "metrics/loss.json": b'{"loss": 0.1}'}


# -- lookup and record


def test_an_empty_cache_misses_saying_there_was_no_earlier_run(index, state):
    assert asyncio.run(index.lookup(KEY)) == Miss("no earlier run with this key")
    assert asyncio.run(index.latest("train")) is None
    assert index.folder == datafolder.cache_folder(state, REPOSITORY, PIPELINE)
    assert index.where == f"the task cache in {index.folder}"


def test_a_recorded_entry_is_found_again(index, state):
    task_wrote(state, JOB_A, MODEL)
    standing = finished(index, JOB_A)
    assert standing.job == JOB_A
    assert sorted(standing.local["signatures"]) == ["metrics/loss.json", "model.bin"]
    assert asyncio.run(index.lookup(KEY)) == Hit(standing)
    assert json.loads(entry_file(index).read_bytes())["job"] == JOB_A
    assert [p.name for p in entry_file(index).parent.iterdir() if p.name.startswith(".tmp")] == []


def test_recording_makes_the_outputs_files_read_only_but_not_their_folders(index, state):
    folder = task_wrote(state, JOB_A, MODEL)
    finished(index, JOB_A)
    for relpath in MODEL:
        assert stat.S_IMODE(os.stat(folder / relpath).st_mode) & 0o222 == 0, relpath
    assert os.stat(folder / "metrics").st_mode & stat.S_IWUSR  # a folder stays writable: a retry can empty it


def test_an_entry_whose_outputs_were_deleted_misses_with_that_reason(index, state):
    folder = task_wrote(state, JOB_A, MODEL)
    finished(index, JOB_A)
    for relpath in MODEL:
        (folder / relpath).unlink()
    (folder / "metrics").rmdir()
    folder.rmdir()
    assert asyncio.run(index.lookup(KEY)) == Miss(f"the outputs of job {JOB_A} were deleted")


def test_outputs_that_no_longer_match_their_manifest_miss_with_a_warning(index, state):
    folder = task_wrote(state, JOB_A, MODEL)
    finished(index, JOB_A)
    os.chmod(folder / "model.bin", 0o644)
    (folder / "model.bin").write_bytes(b"tampered" * 100)
    assert asyncio.run(index.lookup(KEY)) == Miss(
        f"the outputs of job {JOB_A} no longer match their manifest (model.bin changed)", warning=True
    )
    (folder / "model.bin").unlink()
    assert asyncio.run(index.lookup(KEY)) == Miss(
        f"the outputs of job {JOB_A} no longer match their manifest (model.bin is missing)", warning=True
    )


def test_a_truncated_entry_misses_with_a_warning_and_the_next_record_replaces_it(index, state):
    task_wrote(state, JOB_A, MODEL)
    finished(index, JOB_A)
    path = entry_file(index)
    path.write_bytes(path.read_bytes()[:50])

    miss = asyncio.run(index.lookup(KEY))
    assert isinstance(miss, Miss) and miss.warning
    assert miss.reason.startswith(f"the cache entry {path} is damaged (the file is not complete JSON (")
    assert miss.reason.endswith("); the task runs again and its entry is replaced")

    task_wrote(state, JOB_B, MODEL)
    standing = finished(index, JOB_B)
    assert standing.job == JOB_B
    assert asyncio.run(index.lookup(KEY)) == Hit(standing)


def test_an_entry_holding_another_key_is_damaged(index, state):
    task_wrote(state, JOB_A, MODEL)
    finished(index, JOB_A, key="2" * 64)
    entry_file(index, "2" * 64).rename(entry_file(index))
    miss = asyncio.run(index.lookup(KEY))
    assert miss == Miss(
        f"the cache entry {entry_file(index)} is damaged (the file holds key 222222222222, not 111111111111); "
        "the task runs again and its entry is replaced",
        warning=True,
    )


def test_an_entry_naming_a_job_outside_the_state_folder_is_damaged_not_followed(index, state):
    task_wrote(state, JOB_A, MODEL)
    finished(index, JOB_A)
    raw = json.loads(entry_file(index).read_bytes())
    raw["job"] = ".."
    entry_file(index).write_text(json.dumps(raw))
    miss = asyncio.run(index.lookup(KEY))
    assert isinstance(miss, Miss) and miss.warning
    assert "is damaged (the file names no job's folder (job id '..' cannot name a folder" in miss.reason


def test_a_valid_entry_stands_against_a_later_writer(index, state):
    task_wrote(state, JOB_A, MODEL)
    first = finished(index, JOB_A)
    task_wrote(state, JOB_B, {"model.bin": b"other weights"})
    assert finished(index, JOB_B) == first  # the first complete writer wins
    assert asyncio.run(index.lookup(KEY)) == Hit(first)
    assert asyncio.run(index.latest("train")) == first


def test_an_entry_whose_outputs_were_deleted_is_replaced_by_the_next_record(index, state):
    folder = task_wrote(state, JOB_A, MODEL)
    finished(index, JOB_A)
    os.chmod(folder / "model.bin", 0o644)
    (folder / "model.bin").write_bytes(b"tampered")
    task_wrote(state, JOB_B, MODEL)
    second = finished(index, JOB_B)
    assert second.job == JOB_B
    assert asyncio.run(index.lookup(KEY)) == Hit(second)


def test_latest_names_the_newest_entry_recorded_for_a_task(index, state):
    task_wrote(state, JOB_A, MODEL)
    first = finished(index, JOB_A, key="1" * 64)
    assert asyncio.run(index.latest("train")) == first
    task_wrote(state, JOB_B, {"model.bin": b"v2"})
    second = finished(index, JOB_B, key="2" * 64)
    assert asyncio.run(index.latest("train")) == second
    assert asyncio.run(index.latest("evaluate")) is None

    (index.folder / datafolder.cache_latest("train")).write_text("{")
    assert asyncio.run(index.latest("train")) is None  # damaged: no comparison, not an error


def test_a_cache_folder_that_cannot_be_made_is_an_os_error_naming_it(index, state):
    task_wrote(state, JOB_A, MODEL)
    (state / "cache").write_text("a file where the cache folder goes")
    with pytest.raises(OSError) as caught:
        finished(index, JOB_A)
    assert f"the task cache in {index.folder} cannot be written (" in str(caught.value)
    assert str(state / "cache") in str(caught.value)


def test_outputs_refuses_a_symlink_to_etc_passwd_naming_the_task(index, state):
    folder = task_wrote(state, JOB_A, MODEL)
    (folder / "passwd").symlink_to("/etc/passwd")
    with pytest.raises(ValueError, match=r"outputs of task 'train' hold a symlink, passwd -> /etc/passwd"):
        asyncio.run(index.outputs(JOB_A, "train"))
    assert asyncio.run(index.outputs(JOB_B, "train")) == ()  # a task that left no outputs folder


# -- two writers of one key


@pytest.mark.parametrize("before", ["no entry", "a damaged entry"])
def test_two_threads_recording_one_key_at_once_agree_on_one_whole_entry(tmp_path, before):
    for attempt in range(5):  # each round a fresh state folder: a fresh race
        state = tmp_path / f"state{attempt}"
        task_wrote(state, JOB_A, {"model.bin": b"from A"})
        task_wrote(state, JOB_B, {"model.bin": b"from B"})
        if before == "a damaged entry":  # both writers find it damaged, and must still agree on one replacement
            damaged = entry_file(LocalCacheIndex(state, REPOSITORY, PIPELINE))
            damaged.parent.mkdir(parents=True)
            damaged.write_text('{"version": 1, "key": "')
        barrier = threading.Barrier(2)
        results: dict[str, Entry] = {}

        def writer(job: str, state: Path = state, barrier: threading.Barrier = barrier, results=results) -> None:
            index = LocalCacheIndex(state, REPOSITORY, PIPELINE)  # one each, like two runners
            files = asyncio.run(index.outputs(job, "train"))
            barrier.wait()
            entry = Entry(KEY, job, "train", PIPELINE, None, 0.0, {}, files)
            results[job] = asyncio.run(index.record(entry))

        threads = [threading.Thread(target=writer, args=(job,)) for job in (JOB_A, JOB_B)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        index = LocalCacheIndex(state, REPOSITORY, PIPELINE)
        assert results[JOB_A] == results[JOB_B]
        standing = results[JOB_A]
        assert asyncio.run(index.lookup(KEY)) == Hit(standing)
        assert asyncio.run(index.latest("train")) == standing
        assert sorted(p.name for p in (index.folder / "entries").iterdir() if not p.name.startswith(".replace")) == [
            f"{KEY}.json"
        ]


WRITER = textwrap.dedent(
    """
    import asyncio, sys, time
    from pathlib import Path
    from fasttrack_gitops.engine.cache import Entry
    from fasttrack_gitops.engine.cache.local import LocalCacheIndex

    state, repository, pipeline, job, key, go = sys.argv[1:]
    index = LocalCacheIndex(Path(state), repository, pipeline)
    files = asyncio.run(index.outputs(job, "train"))
    Path(state, job + ".ready").touch()
    while not Path(go).exists():
        time.sleep(0.001)
    standing = asyncio.run(index.record(Entry(key, job, "train", pipeline, None, 0.0, {}, files)))
    print(standing.job)
    """
)


def test_two_processes_recording_one_key_at_once_agree_on_one_whole_entry(state, tmp_path):
    go = tmp_path / "go"
    writers = []
    for job in (JOB_A, JOB_B):
        task_wrote(state, job, {"model.bin": f"from {job}".encode()})
        argv = [sys.executable, "-c", WRITER, str(state), REPOSITORY, PIPELINE, job, KEY, str(go)]
        writers.append(subprocess.Popen(argv, cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    try:
        wait_until(lambda: all((state / f"{job}.ready").exists() for job in (JOB_A, JOB_B)), what="both writers ready")
        go.touch()
        answers = [writer.communicate(timeout=60) for writer in writers]
    finally:
        for writer in writers:
            if writer.poll() is None:
                writer.kill()
                writer.wait()
    assert [w.returncode for w in writers] == [0, 0], answers
    said = {out.strip() for out, _ in answers}
    assert len(said) == 1 and said <= {JOB_A, JOB_B}, answers
    hit = asyncio.run(LocalCacheIndex(state, REPOSITORY, PIPELINE).lookup(KEY))
    assert isinstance(hit, Hit) and hit.entry.job == said.pop()
    assert (outputs_of(state, hit.entry.job) / "model.bin").read_bytes() == f"from {hit.entry.job}".encode()


# -- reuse


def test_reuse_links_the_entrys_files_into_the_new_job_read_only(index, state):
    task_wrote(state, JOB_A, MODEL)
    finished(index, JOB_A)
    hit = asyncio.run(index.lookup(KEY))
    assert isinstance(hit, Hit)

    asyncio.run(index.reuse(hit.entry, JOB_B))

    source, target = outputs_of(state, JOB_A), outputs_of(state, JOB_B)
    for relpath, data in MODEL.items():
        assert (target / relpath).read_bytes() == data
        assert os.stat(target / relpath).st_ino == os.stat(source / relpath).st_ino, f"{relpath} is not a hard link"
        assert stat.S_IMODE(os.stat(target / relpath).st_mode) & 0o222 == 0, f"{relpath} is writable"
    # Linking changed nothing the entry vouches for: it still hits.
    assert asyncio.run(index.lookup(KEY)) == hit


def test_reuse_in_a_retry_first_empties_what_an_earlier_attempt_left(index, state):
    task_wrote(state, JOB_A, MODEL)
    entry = finished(index, JOB_A)
    task_wrote(state, JOB_B, {"partial.tmp": b"half a model", "model.bin": b"half"})
    asyncio.run(index.reuse(entry, JOB_B))
    target = outputs_of(state, JOB_B)
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()) == sorted(MODEL)
    assert (target / "model.bin").read_bytes() == MODEL["model.bin"]


def test_reuse_across_file_systems_copies_and_says_so(index, state, caplog):
    with tempfile.TemporaryDirectory(dir="/dev/shm") as elsewhere:
        job_a = datafolder.job_folder(state, JOB_A)
        job_a.parent.mkdir(parents=True)
        job_a.symlink_to(elsewhere)  # job A's folder on another file system (tmpfs)
        task_wrote(state, JOB_A, MODEL)
        datafolder.job_folder(state, JOB_B).mkdir()
        if os.stat(elsewhere).st_dev == os.stat(datafolder.job_folder(state, JOB_B)).st_dev:
            cannot_run("/dev/shm is on the same file system as the temporary folder: no hard link fails")
        entry = finished(index, JOB_A)
        caplog.set_level(logging.WARNING, logger="fasttrack_gitops")

        asyncio.run(index.reuse(entry, JOB_B))

        target = outputs_of(state, JOB_B)
        for relpath, data in MODEL.items():
            assert (target / relpath).read_bytes() == data
            assert stat.S_IMODE(os.stat(target / relpath).st_mode) & 0o222 == 0
        size = sum(len(d) for d in MODEL.values())
        [warning] = [r.getMessage() for r in caplog.records if r.name == "fasttrack_gitops.engine.cache.local"]
        assert f"task 'train' reuses the outputs of job {JOB_A} by copying {size:,} bytes into job {JOB_B}" in warning
        assert "hard links" in warning and "are impossible (Invalid cross-device link)" in warning
