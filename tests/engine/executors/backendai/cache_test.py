"""The task cache in the pipeline data folder: entries written, found, judged and shared through the emulator.

Every call is real HTTP to the manager emulator on 127.0.0.1 and its storage
proxy; the folder's files are made and damaged the way a session, a crash or a
retention sweep would leave them, directly in the emulator's directory.
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import time
from pathlib import Path

import pytest
from engine.backendai.emulator import ACCESS_KEY, SECRET_KEY, Emulator
from engine.backendai.emulator_vfolders import install as install_vfolders
from engine.executors.backendai.fixtures import FOLDER, JOB

from fasttrack_gitops.core import cache
from fasttrack_gitops.engine.backendai import vfolders
from fasttrack_gitops.engine.backendai.client import Client
from fasttrack_gitops.engine.backendai.credentials import Credentials
from fasttrack_gitops.engine.backendai.retry import RetryPolicy
from fasttrack_gitops.engine.cache import Entry, Hit, Miss
from fasttrack_gitops.engine.executors.backendai.cache import BackendAICacheIndex

KEY = "ab" * 32
OTHER_JOB = "20261129-080000-0b0b0b"


@pytest.fixture
def emu():
    """The manager emulator with the pipeline folder made (as the executor makes it before any session)."""
    with Emulator() as emulator, install_vfolders(emulator):

        async def make(client):
            await vfolders.create_vfolder(client, FOLDER)

        call(emulator, make)
        yield emulator


def folder(emu: Emulator) -> Path:
    return emu.vfolders.directory(FOLDER)


def call(emu: Emulator, scenario):
    """asyncio.run(scenario(client)) on a fresh client, closed afterwards."""

    async def main():
        client = Client(
            Credentials(emu.endpoint, ACCESS_KEY, SECRET_KEY),
            trust_env=False,
            retry=RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05),
        )
        try:
            return await scenario(client)
        finally:
            await client.aclose()

    return asyncio.run(main())


def with_index(emu: Emulator, scenario, **options):
    """scenario(index) on an index of the pipeline folder."""
    return call(emu, lambda client: scenario(BackendAICacheIndex(client, FOLDER, **options)))


def outputs_of(emu: Emulator, job: str = JOB, task: str = "train") -> Path:
    return folder(emu) / "jobs" / job / "tasks" / task / "outputs"


def make_outputs(emu: Emulator, job: str = JOB, task: str = "train", files=None) -> tuple[cache.OutputFile, ...]:
    """Outputs as a session leaves them, and their manifest's files."""
    files = files if files is not None else {"model.bin": b"weights", "logs/train.txt": b"loss 0.1\n"}
    outputs = outputs_of(emu, job, task)
    for relpath, data in files.items():
        (outputs / relpath).parent.mkdir(parents=True, exist_ok=True)
        (outputs / relpath).write_bytes(data)
    outputs.mkdir(parents=True, exist_ok=True)
    return cache.parse_manifest(
        cache.manifest_text(cache.OutputFile(p, len(d), hashlib.sha256(d).hexdigest()) for p, d in files.items())
    )


def entry_for(files, job: str = JOB, key: str = KEY, task: str = "train") -> Entry:
    return Entry(key, job, task, "demo", "c0ffee" * 6 + "beef", time.time(), {"task": task, "job": job}, files)


def test_a_recorded_entry_is_found_and_names_the_latest_of_its_task(emu):
    entry = entry_for(make_outputs(emu))

    async def scenario(index):
        return await index.lookup(KEY), await index.record(entry), await index.lookup(KEY), await index.latest("train")

    before, stood, found, latest = with_index(emu, scenario)
    assert before == Miss("no earlier run with this key")  # not a warning: the cache is merely empty
    assert stood == entry and found == Hit(entry) and latest == entry
    assert Entry.from_json((folder(emu) / "cache/entries" / f"{KEY}.json").read_bytes(), key=KEY, what="x") == entry
    assert list((folder(emu) / "cache/tmp").iterdir()) == [] and list((folder(emu) / "cache/locks").iterdir()) == []


def test_a_lookup_before_any_job_made_the_folder_is_a_plain_miss(emu):
    async def scenario(index):
        return await BackendAICacheIndex(index.client, "ftg-never-made").lookup(KEY)

    assert with_index(emu, scenario) == Miss("no earlier run with this key")


@pytest.mark.parametrize("damage", [lambda data: data[:40], lambda data: b"\x00garbage", lambda data: b"{}"])
def test_a_damaged_entry_is_a_miss_with_a_warning_and_is_replaced(emu, damage):
    entry = entry_for(make_outputs(emu))
    path = folder(emu) / "cache/entries" / f"{KEY}.json"

    async def scenario(index):
        await index.record(entry)
        path.write_bytes(damage(path.read_bytes()))  # as a crash, a full disk or a stray edit leaves it
        missed = await index.lookup(KEY)
        again = entry_for(entry.files)
        return missed, again, await index.record(again), await index.lookup(KEY)

    missed, again, stood, found = with_index(emu, scenario)
    assert isinstance(missed, Miss) and missed.warning
    assert missed.reason.startswith(f"the cache entry cache/entries/{KEY}.json in {FOLDER} is damaged (")
    assert stood == again and found == Hit(again)  # the damaged entry was replaced by a whole one


def test_an_entry_whose_outputs_were_deleted_is_a_miss(emu):
    entry = entry_for(make_outputs(emu))

    async def scenario(index):
        await index.record(entry)
        shutil.rmtree(folder(emu) / "jobs" / JOB)  # as a retention sweep does
        return await index.lookup(KEY)

    assert with_index(emu, scenario) == Miss(f"the outputs of job {JOB} were deleted")


@pytest.mark.parametrize(
    "change, why",
    [
        (lambda out: (out / "model.bin").write_bytes(b"other weights"), "model.bin changed (7 bytes in the manifest"),
        (lambda out: (out / "logs/train.txt").unlink(), "logs/train.txt is missing"),
        (lambda out: (out / "extra").write_bytes(b""), "extra is not in the manifest"),
        (lambda out: (out / "model.bin").unlink() or (out / "model.bin").symlink_to("/etc/passwd"), "model.bin is a"),
    ],
)
def test_outputs_that_no_longer_match_their_manifest_are_a_miss_with_a_warning(emu, change, why):
    entry = entry_for(make_outputs(emu))

    async def scenario(index):
        await index.record(entry)
        change(outputs_of(emu))
        return await index.lookup(KEY)

    missed = with_index(emu, scenario)
    assert isinstance(missed, Miss) and missed.warning
    assert missed.reason.startswith(f"the outputs of job {JOB} no longer match their manifest ({why}")


def test_two_writers_of_one_key_at_once_leave_one_entry_and_both_return_it(emu):
    first, second = entry_for(make_outputs(emu)), entry_for(make_outputs(emu, OTHER_JOB), job=OTHER_JOB)

    async def scenario(index):
        other = BackendAICacheIndex(index.client, FOLDER)  # another runner on the same cluster
        return await asyncio.gather(index.record(first), other.record(second))

    stood = with_index(emu, scenario)
    assert stood[0] == stood[1] and stood[0] in (first, second)
    on_disk = Entry.from_json((folder(emu) / "cache/entries" / f"{KEY}.json").read_bytes(), key=KEY, what="x")
    assert on_disk == stood[0]
    assert list((folder(emu) / "cache/tmp").iterdir()) == [] and list((folder(emu) / "cache/locks").iterdir()) == []


def test_a_valid_entry_is_never_replaced(emu):
    first, second = entry_for(make_outputs(emu)), entry_for(make_outputs(emu, OTHER_JOB), job=OTHER_JOB)

    async def scenario(index):
        return await index.record(first), await index.record(second), await index.lookup(KEY)

    assert with_index(emu, scenario) == (first, first, Hit(first))  # the first complete writer wins


def test_a_lock_left_by_a_writer_that_died_is_taken_over(emu):
    entry = entry_for(make_outputs(emu))
    (folder(emu) / "cache/locks" / KEY).mkdir(parents=True)  # its writer died holding it

    async def scenario(index):
        started = time.monotonic()
        stood = await index.record(entry)
        return stood, time.monotonic() - started

    stood, took = with_index(emu, scenario, stale_after=0.4, poll=0.05)
    assert stood == entry and took >= 0.4
    assert not (folder(emu) / "cache/locks" / KEY).exists()


def test_a_lock_that_is_released_is_waited_for(emu):
    entry = entry_for(make_outputs(emu))
    lock = folder(emu) / "cache/locks" / KEY
    lock.mkdir(parents=True)

    async def scenario(index):
        recording = asyncio.ensure_future(index.record(entry))
        await asyncio.sleep(0.3)
        assert not recording.done()  # it waits for the holder
        lock.rmdir()
        return await recording

    assert with_index(emu, scenario, stale_after=30, poll=0.05) == entry


def test_outputs_reads_the_manifest_the_session_wrote(emu):
    files = make_outputs(emu)
    task_folder = folder(emu) / "jobs" / JOB / "tasks" / "train"

    async def scenario(index):
        found = []
        for text in (
            None,
            cache.manifest_text(files),
            "! outputs/link is a symbolic link; the outputs are not cached\n",
        ):
            if text is not None:
                (task_folder / "manifest.txt").write_text(text)
            try:
                found.append(await index.outputs(JOB, "train"))
            except cache.ManifestError as e:
                found.append(str(e))
        return found

    missing, listed, refused = with_index(emu, scenario)
    assert missing.startswith("task 'train' of job 20261128-101530-3fa9c1 left no manifest of its outputs")
    assert listed == files
    assert refused == "the outputs of task 'train' cannot be cached: outputs/link is a symbolic link"
