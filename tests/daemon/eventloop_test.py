"""The daemon's event loop never waits for the disk: it answers while a task's code tree is being written.

The slow path is a real one: one blob of the task's code folder is, in the
repository's object store, a named pipe (FIFO). Writing the tree opens it and
waits there until this test's helper thread feeds it the object's bytes; in
between, the helper asks the daemon for /healthz. Its answer comes only if
the tree is written off the event loop. The helper's timeout is no latency
threshold: it only detects a loop that is stuck, and then lets it go on.
"""

from __future__ import annotations

import asyncio
import errno
import os
import threading
import time
from pathlib import Path

import httpx
from conftest import await_until, git
from daemon.conftest import REPO_NAME, commit_file, load, running, write_config

from fasttrack_gitops.core.job import JobStatus

ENDED = (JobStatus.SUCCEEDED, JobStatus.FAILED)

STUCK = 10.0  # seconds after which the helper takes the loop for stuck (and feeds the pipe anyway)

PIPELINE = """\
version: "26.4.4"
name: coded
tasks:
  - name: work
    code: code/work
    command: grep -q "held back" data.txt
"""


class HeldObject:
    """A git object turned into a FIFO, fed by a thread once someone opens it and /healthz was asked meanwhile."""

    def __init__(self, repo: Path, relpath: str):
        sha = git(repo, "rev-parse", f"HEAD:{relpath}").strip()
        self.path = repo / ".git" / "objects" / sha[:2] / sha[2:]
        self.content = self.path.read_bytes()
        self.path.unlink()
        os.mkfifo(self.path)
        self.health: int | str | None = None  # /healthz's status while the object was held, or what went wrong
        self.fed = threading.Event()

    def serve(self, url: str) -> threading.Thread:
        thread = threading.Thread(target=self._feed, args=(url,), daemon=True)
        thread.start()
        return thread

    def _feed(self, url: str) -> None:
        deadline = time.monotonic() + 60
        fd = None
        while fd is None:  # a writer's non-blocking open succeeds once a reader waits in open()
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as e:
                if e.errno != errno.ENXIO or time.monotonic() > deadline:
                    self.health = f"nobody opened the object: {e}"
                    return
                time.sleep(0.01)
        try:  # the reader is now inside read(), waiting for the bytes
            self.health = httpx.get(f"{url}/healthz", timeout=STUCK).status_code
        except httpx.HTTPError as e:
            self.health = f"no answer while the tree was being written: {type(e).__name__}"
        finally:
            os.write(fd, self.content)
            os.close(fd)
            self.fed.set()


def test_the_daemon_answers_while_a_tasks_code_tree_is_being_written(tmp_path, source_repo):
    commit_file(source_repo, "code/work/data.txt", "held back\n")
    commit_file(source_repo, "pipelines/coded.yaml", PIPELINE)
    held = HeldObject(source_repo, "code/work/data.txt")
    config = load(write_config(tmp_path, source_repo, repo_extra="watch: false\n"))

    async def scenario():
        async with running(config) as (daemon, url):
            feeder = held.serve(url)
            async with httpx.AsyncClient(base_url=url, timeout=60) as client:
                request = {"repository": REPO_NAME, "pipeline": "coded", "ref": "main"}
                answer = await client.post("/api/trigger", json=request)
                assert answer.status_code == 201, answer.text
                (job_id,) = answer.json()["created"]
            await asyncio.to_thread(feeder.join)
            view = await await_until(lambda: (v := daemon.store.view(job_id)).status in ENDED and v)
        assert held.fed.is_set() and held.health == 200, held.health
        assert view.status == JobStatus.SUCCEEDED, view.tasks["work"].reason

    asyncio.run(scenario())
