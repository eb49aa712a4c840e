"""SECURITY.md "Paths never leave their roots": code: folders, task outputs and the Backend.AI upload, symlinks
included, also a symlink swapped in after a path was checked.

Real files, real git commits, the real outputs reader and the real upload to the Backend.AI emulator's storage
proxy. The swaps race a thread that flips a folder between itself and a link to a secret outside, as a task still
running could do to its outputs; the checks are on what came back or what reached the storage, never on our word.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path

import httpx
import pytest
from conftest import git
from daemon.conftest import deliver, load, push_payload, running, write_config
from engine.backendai.emulator_vfolders import install

from fasttrack_gitops.core.job import JobStatus
from fasttrack_gitops.engine import gitrepo
from fasttrack_gitops.engine.backendai import vfolders
from fasttrack_gitops.engine.outputs import LocalOutputsFolder, OutputNotFoundError, OutputPathError, OutputsError

SECRET = b"secret-outside-the-root-6b2f0c"
RACE_SECONDS = 1.5


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder outside every root, holding the secret at the name the swapped-in link will lead to."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "file.txt").write_bytes(SECRET)
    return folder


class Swapper:
    """Flips `folder` between the real folder and a link to `target`, as fast as it can, until stopped."""

    def __init__(self, folder: Path, target: Path, hold: float = 0.0):
        self.folder, self.parked, self.link = folder, folder.with_name("parked"), folder.with_name("link")
        self.link.symlink_to(target, target_is_directory=True)
        self.hold = hold  # seconds each state stays (0: none; the GIL is then the swapper's most of the time)
        self.flips = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            os.rename(self.folder, self.parked)  # the link in place of the folder ...
            os.rename(self.link, self.folder)
            time.sleep(self.hold)
            os.rename(self.folder, self.link)  # ... and back
            os.rename(self.parked, self.folder)
            self.flips += 1
            time.sleep(self.hold)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def test_an_output_path_through_a_symlink_swapped_in_after_the_check_is_never_followed(tmp_path, outside):
    state = tmp_path / "state"
    folder = LocalOutputsFolder(state)
    top = folder.outputs("20261203-000000-abcdef", "train")
    (top / "d").mkdir(parents=True)
    (top / "d" / "file.txt").write_bytes(b"inside")
    seen: dict[str, int] = {}

    async def reads():
        deadline = time.monotonic() + RACE_SECONDS
        while time.monotonic() < deadline:
            try:
                data = await folder.read("20261203-000000-abcdef", "train", "d/file.txt", limit=1024)
            except (OutputPathError, OutputNotFoundError) as e:
                seen[type(e).__name__] = seen.get(type(e).__name__, 0) + 1
                continue
            seen[data.decode()] = seen.get(data.decode(), 0) + 1

    with Swapper(top / "d", outside) as swapper:
        asyncio.run(reads())
    assert SECRET.decode() not in seen, seen
    assert seen.get("inside") and swapper.flips > 100, (seen, swapper.flips)  # the race really ran both ways
    assert seen.get("OutputPathError") or seen.get("OutputNotFoundError"), seen


def test_a_download_of_the_outputs_never_copies_a_file_through_a_symlink_swapped_in_after_the_walk(tmp_path, outside):
    folder = LocalOutputsFolder(tmp_path / "state")
    top = folder.outputs("20261203-000000-abcdef", "train")
    (top / "d").mkdir(parents=True)
    (top / "d" / "file.txt").write_bytes(b"inside")
    copies: dict[str, int] = {}

    async def downloads():
        deadline, n = time.monotonic() + RACE_SECONDS, 0
        while time.monotonic() < deadline:
            n += 1
            try:
                await folder.download("20261203-000000-abcdef", "train", tmp_path / "dest" / str(n))
            except OutputsError as e:
                copies[type(e).__name__] = copies.get(type(e).__name__, 0) + 1
            copied = tmp_path / "dest" / str(n) / "d" / "file.txt"
            key = copied.read_bytes().decode() if copied.exists() else "not copied"
            copies[key] = copies.get(key, 0) + 1

    with Swapper(top / "d", outside, hold=0.0005):
        asyncio.run(downloads())
    assert SECRET.decode() not in copies and copies.get("inside"), copies


def test_the_backendai_upload_never_sends_a_file_through_a_symlink_swapped_in_after_the_scan(
    tmp_path, outside, emulator, make_client
):
    tree = tmp_path / "tree"
    (tree / "d").mkdir(parents=True)
    (tree / "d" / "file.txt").write_bytes(b"inside")
    for n in range(3):  # a few files: the scan and the opens a little apart
        (tree / f"f{n:02}.txt").write_bytes(b"x" * 1000)
    with install(emulator) as vf:
        client = make_client(emulator)
        outcomes: dict[str, int] = {}

        async def uploads():
            async with client:
                await vfolders.create_vfolder(client, "data")
                deadline, n = time.monotonic() + RACE_SECONDS * 2, 0
                while time.monotonic() < deadline:
                    n += 1
                    try:
                        sent = await vfolders.upload_tree(client, "data", f"code/{n}", tree)
                    except (vfolders.InvalidPathError, FileNotFoundError) as e:
                        outcomes[type(e).__name__] = outcomes.get(type(e).__name__, 0) + 1
                        continue
                    key = "sent d/file.txt" if "d/file.txt" in sent.files else "skipped d"
                    outcomes[key] = outcomes.get(key, 0) + 1

        with Swapper(tree / "d", outside, hold=0.002):
            asyncio.run(uploads())
        stored = [p for p in vf.root.rglob("*") if p.is_file() and SECRET in p.read_bytes()]
    assert stored == [], (stored, outcomes)
    assert outcomes.get("sent d/file.txt"), outcomes


def test_a_committed_symlink_leading_out_is_written_as_a_link_and_never_uploaded(tmp_path, emulator, make_client):
    """A code: folder whose commit holds `key -> /etc/hostname` and `up -> ../../outside`: materialised, both stay
    links (a local task could read those files anyway: SECURITY.md "The local sandbox"); the upload to Backend.AI
    skips them, so nothing of this machine reaches the cluster."""
    repo = tmp_path / "repo"
    (repo / "tasks" / "train").mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    (repo / "tasks" / "train" / "main.py").write_text("print('train')\n")
    (repo / "tasks" / "train" / "key").symlink_to("/etc/hostname")
    (repo / "tasks" / "train" / "up").symlink_to("../../../outside")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "file.txt").write_bytes(SECRET)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "links")
    tree = git(repo, "rev-parse", "HEAD:tasks/train").strip()
    snap = gitrepo.open_snapshot(repo, "HEAD")
    dest = tmp_path / "materialised"
    gitrepo.materialise(snap, tree, dest)
    assert os.readlink(dest / "key") == "/etc/hostname" and (dest / "main.py").is_file()
    with install(emulator) as vf:
        client = make_client(emulator)

        async def upload():
            async with client:
                await vfolders.create_vfolder(client, "data")
                return await vfolders.upload_tree(client, "data", f"code/{tree}", dest)

        sent = asyncio.run(upload())
        hostname = Path("/etc/hostname").read_bytes()
        stored = {p.relative_to(vf.root).as_posix(): p.read_bytes() for p in vf.root.rglob("*") if p.is_file()}
    assert sent.files == ("main.py",) and sorted(sent.skipped) == ["key", "up"]
    assert not [p for p, data in stored.items() if SECRET in data or (hostname.strip() and data == hostname)]


ESCAPING = """\
version: "26.4.4"
name: {name}
tasks:
  - name: train
    code: {code}
    command: cat {loot} > "$PIPELINE_OUTPUT_ROOT/stolen.txt"
"""


def test_a_pushed_code_folder_that_leaves_the_repository_makes_an_invalid_job_and_runs_nothing(
    tmp_path, source_repo, contracts
):
    """Through the daemon, at a pushed commit: `code: ../x`, `code: a/../../x`, an absolute path, and a committed
    symlink leading out of the repository each make an invalid job (FT112) whose task never starts."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "file.txt").write_bytes(SECRET)
    (source_repo / "tasks").mkdir()
    (source_repo / "tasks" / "out").symlink_to(outside, target_is_directory=True)
    (source_repo / "tasks" / "up").symlink_to("../../outside", target_is_directory=True)
    cases = {"dotdot": "../outside", "deep": "tasks/../../outside", "absolute": str(outside), "link": "tasks/out"}
    cases["relative-link"] = "tasks/up"
    for name, code in cases.items():
        (source_repo / "pipelines" / f"{name}.yaml").write_text(
            ESCAPING.format(name=name, code=code, loot=outside / "file.txt")
        )
    before = git(source_repo, "rev-parse", "HEAD").strip()
    git(source_repo, "add", "-A")
    git(source_repo, "commit", "-q", "-m", "code folders that leave")
    after = git(source_repo, "rev-parse", "HEAD").strip()
    config = load(write_config(tmp_path, source_repo, repo_extra="watch: false\n"))

    async def scenario():
        async with running(config) as (daemon, url), httpx.AsyncClient(base_url=url) as client:
            push = push_payload(contracts, ref="refs/heads/main", before=before, after=after)
            await deliver(client, "push", push, "p-1")
            return {v.job.pipeline: v for v in daemon.store.list_jobs(limit=0)}

    views = asyncio.run(scenario())
    for name in cases:
        view = views[name]
        assert view.status == JobStatus.INVALID and not view.tasks, (name, view.status)
        assert [d["code"] for d in view.job.diagnostics] == ["FT112"], (name, view.job.diagnostics)
    assert list((tmp_path / "state").rglob("stolen.txt")) == []
