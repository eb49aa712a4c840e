"""The daemon keeps its place in the store: restarts, `kill -9` and SIGTERM (issue 5, item 6).

Real `fasttrack-gitops serve` processes on a port the test picks, jobs made by
signed push webhooks or by the watcher, observed through the real SQLite store
and GET /api/jobs. Every task appends a line to a runs file each time it runs,
so "nothing ran twice" is counted, not assumed; the long tasks write their
pids, so a test can tell whether a task outlived its daemon. Waits are polls
with generous timeouts: a slow machine makes these tests slower, not red.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import textwrap
from pathlib import Path

import httpx
import pytest
from conftest import PATIENCE, alive, await_until, console_script, git, require_bwrap, wait_until
from daemon.conftest import (
    REPO_NAME,
    SECRET,
    commit_file,
    free_port,
    github_headers,
    load,
    push_payload,
    running,
    write_config,
)
from engine.executors.local_fixtures import MARK, marked, none_marked_within

from fasttrack_gitops.core.job import JobStatus, JobView, Outcome, TaskState
from fasttrack_gitops.engine.state.ledger import Ledger
from fasttrack_gitops.engine.state.store import Store

pytestmark = pytest.mark.skipif(os.name != "posix", reason="daemon processes, signals and process groups")

ENDED = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)
SIGTERM_REASON = "the daemon stopped (SIGTERM)"


class Served:
    """`fasttrack-gitops serve` as a real process on a known port; its output goes to a file failures show."""

    def __init__(self, config: Path, port: int, output: Path, env: dict[str, str]):
        self.config = config
        self.port = port
        self.output = output
        self.env = env
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def state(self) -> Path:
        return self.config.parent / "state"

    def start(self) -> Served:
        """Start the daemon and wait until /healthz answers 200 (it has re-attached by then)."""
        assert self.proc is None or self.proc.poll() is not None, "the daemon runs already"
        self.starts += 1
        with open(self.output, "ab") as out:
            out.write(f"--- start {self.starts}\n".encode())
            self.proc = subprocess.Popen(
                [console_script(), "serve", "--config", str(self.config)],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_until(self._healthy, what=lambda: f"the daemon to answer /healthz; its output:\n{self.log()}")
        return self

    def _healthy(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"the daemon exited with {self.proc.returncode}; its output:\n{self.log()}")
        try:
            return httpx.get(self.url + "/healthz", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(PATIENCE)

    def terminate(self, timeout: float = PATIENCE) -> int:
        """SIGTERM; its exit code (fails when it does not exit within timeout seconds)."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the daemon did not exit {timeout:g}s after SIGTERM; its output:\n{self.log()}")

    def stop(self) -> None:
        """For finally: whatever state it is in, the process is gone afterwards."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(PATIENCE)

    def log(self) -> str:
        return self.output.read_text(errors="replace")[-6000:] if self.output.exists() else ""

    def push(self, contracts: Path, *, before: str, after: str, delivery: str) -> httpx.Response:
        body = json.dumps(push_payload(contracts, ref="refs/heads/main", before=before, after=after)).encode()
        return httpx.post(
            self.url + "/webhooks/github",
            content=body,
            timeout=PATIENCE,
            headers=github_headers(body, "push", delivery),
        )

    def jobs(self) -> list[dict]:
        token = self.env.get("FTG_TEST_API_TOKEN")  # with a token configured, the read API wants it too
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        answer = httpx.get(self.url + "/api/jobs", params={"limit": 100}, timeout=PATIENCE, headers=headers)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def view(self, job_id: str) -> JobView:
        """The job as the real store has it now (read as `jobs show` in another process would)."""
        with Store(self.state) as store:
            return store.view(job_id)

    def positions(self) -> dict[str, str]:
        with Store(self.state) as store:
            return Ledger(store).positions(REPO_NAME)

    def ended(self, job_id: str) -> JobView:
        return wait_until(
            lambda: (v := self.view(job_id)).status in ENDED and v,
            what=lambda: f"job {job_id} to end: {self.view(job_id)}; the daemon's output:\n{self.log()}",
        )


class Marks:
    """The folder where tasks count their runs (<name>.runs) and leave their pids (<name>.pid), and the variable
    every process of the test's daemons inherits (`mark`), by which whatever they left is found from /proc."""

    def __init__(self, folder: Path, mark: str):
        folder.mkdir()
        self.folder = folder
        self.mark = mark

    def __truediv__(self, name: str) -> Path:
        return self.folder / name

    def runs(self, name: str) -> int:
        path = self.folder / f"{name}.runs"
        return len(path.read_text().splitlines()) if path.exists() else 0

    def pid(self, name: str) -> int:
        """The pid a task wrote (waits for it); the task's namespace's under bubblewrap, so ours only without."""
        path = self.folder / f"{name}.pid"
        return int(wait_until(lambda: path.exists() and path.read_text().strip(), what=f"{path} to be written"))

    def kill_leftovers(self) -> None:
        """Kill every process of the test's daemons still running (a failed test leaves none)."""
        for pid in marked(self.mark):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def pipeline(name: str, tasks: str) -> str:
    return f'version: "26.4.4"\nname: {name}\ntasks:\n' + textwrap.indent(textwrap.dedent(tasks), "  ")


def counted(marks: Marks, name: str) -> str:
    """A task command that only counts that it ran."""
    return f"echo run >> {marks / f'{name}.runs'}"


def stuck_once(marks: Marks, name: str) -> str:
    """A command that the first time writes its pids and hangs (a shell and its sleep in one group), then succeeds."""
    return (
        f"echo run >> {marks / f'{name}.runs'}; "
        f"if [ -e {marks / f'{name}.again'} ]; then exit 0; fi; touch {marks / f'{name}.again'}; "
        f"sleep 300 & echo $! > {marks / f'{name}-child.pid'}; echo $$ > {marks / f'{name}.pid'}; wait"
    )


def chain(marks: Marks, *, retry: bool) -> str:
    """first -> slow -> last; slow hangs on its first run (and may retry once)."""
    return pipeline(
        "demo",
        f"""\
        - name: first
          command: {counted(marks, "first")}
        - name: slow
          dependencies: [first]
          retry: {{max_attempts: {2 if retry else 1}}}
          command: '{stuck_once(marks, "slow")}'
        - name: last
          dependencies: [slow]
          command: {counted(marks, "last")}
        """,
    )


@pytest.fixture
def marks(tmp_path: Path):
    made = Marks(tmp_path / "marks", f"recovery-{os.getpid()}-{tmp_path.name}")
    try:
        yield made
    finally:
        made.kill_leftovers()


@pytest.fixture
def daemon(tmp_path: Path, source_repo: Path, marks: Marks):
    """daemon(repo_extra=, extra=, grace=) -> a Served (not started) for source_repo; stopped at the end."""
    made: list[Served] = []

    def make(*, repo_extra: str = "watch: false\n", extra: str = "", grace: str = "2s", bwrap: bool = False) -> Served:
        port = free_port()
        config = write_config(
            tmp_path, source_repo, repo_extra=repo_extra, extra=extra, listen=f"127.0.0.1:{port}", shutdown_grace=grace
        )
        # Every process of the daemon's inherits the mark: its launcher, its tasks and what they start.
        env = {**os.environ, "FTG_TEST_WEBHOOK_SECRET": SECRET, "FTG_BWRAP": "1" if bwrap else "0", MARK: marks.mark}
        served = Served(config, port, tmp_path / "daemon.log", env)
        made.append(served)
        return served

    try:
        yield make
    finally:
        for served in made:
            served.stop()


def head(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD").strip()


def one_job(answer: httpx.Response) -> str:
    assert answer.status_code == 202, answer.text
    jobs = answer.json()["jobs"]
    assert len(jobs) == 1 and "invalid" not in answer.json()["note"], answer.text
    return jobs[0]


def attempt_outcomes(view: JobView, task: str) -> list[Outcome | None]:
    return [a.outcome for a in view.tasks[task].attempts]


# -- kill -9 -----------------------------------------------------------------------------------------------------


def escaping_once(marks: Marks, name: str) -> str:
    """A command that the first time hangs and leaves processes every way it can (a background child, a setsid
    escapee, a double fork, the shell and its children ignoring SIGTERM and SIGHUP), then succeeds."""
    return (
        f"echo run >> {marks / f'{name}.runs'}; "
        f"if [ -e {marks / f'{name}.again'} ]; then exit 0; fi; touch {marks / f'{name}.again'}; "
        'sleep 301 & setsid sleep 302 & (sleep 303 &); trap "" TERM HUP; sleep 304'
    )


ESCAPED = {"sleep 301", "sleep 302", "sleep 303", "sleep 304"}


@pytest.mark.parametrize(
    "retry, bwrap",
    [(True, False), (False, False), (True, True), (False, True)],
    ids=["with-retry", "without-retry", "with-retry-under-bwrap", "without-retry-under-bwrap"],
)
def test_after_kill_9_no_task_process_runs_within_a_second_and_a_restart_retries_or_fails_the_interrupted_task(
    retry, bwrap, daemon, marks, source_repo, contracts
):
    if bwrap:
        require_bwrap()
    before = head(source_repo)
    text = chain(marks, retry=retry).replace(stuck_once(marks, "slow"), escaping_once(marks, "slow"))
    after = commit_file(source_repo, "pipelines/demo.yaml", text)
    served = daemon(bwrap=bwrap).start()
    job = one_job(served.push(contracts, before=before, after=after, delivery="d-1"))
    running = wait_until(
        lambda: (v := served.view(job)).tasks["slow"].state == TaskState.RUNNING and v, what="slow to run"
    )
    # Found from /proc by the mark the daemon's processes inherit, with the pids we see (a task's own, $$ and $!,
    # are its PID namespace's under bubblewrap).
    processes = wait_until(
        lambda: set((found := marked(marks.mark)).values()) >= ESCAPED and found,
        what=lambda: f"the task's processes to run: {marked(marks.mark)}",
    )
    assert served.view(job).runner_alive
    with Store(served.state) as store:
        handle = store.attempt_handle(job, "slow", 1)
    assert handle is not None and processes[handle["pgid"]].startswith("/bin/sh -c echo run")  # the task's shell

    served.kill9()

    none_marked_within(marks.mark, 1.0)  # the daemon's task launcher, the task's shell, all it started
    down = served.view(job)
    assert down.status == JobStatus.INTERRUPTED and not down.runner_alive
    assert down.tasks["first"].state == TaskState.SUCCEEDED
    assert down.tasks["slow"].state == TaskState.RUNNING and down.tasks["slow"].attempts[-1].ended_at is None
    assert running.tasks["slow"].attempts == down.tasks["slow"].attempts

    served.start()
    view = served.ended(job)

    slow = view.tasks["slow"]
    first_attempt = slow.attempts[0]
    assert first_attempt.outcome == Outcome.INTERRUPTED
    assert first_attempt.message == (
        f"interrupted: the runner stopped while it ran; its process group {handle['pgid']} had already ended"
    )
    with Store(served.state) as store:
        log = store.log_path(job, "slow", 1).read_text()
    assert "fasttrack-gitops: interrupted: the runner stopped while it ran" in log
    if retry:
        assert attempt_outcomes(view, "slow") == [Outcome.INTERRUPTED, Outcome.SUCCEEDED]
        assert view.status == JobStatus.SUCCEEDED
        assert (marks.runs("first"), marks.runs("slow"), marks.runs("last")) == (1, 2, 1)
    else:
        assert attempt_outcomes(view, "slow") == [Outcome.INTERRUPTED]
        assert slow.state == TaskState.FAILED and slow.reason == first_attempt.message
        assert view.tasks["last"].state == TaskState.SKIPPED
        assert view.status == JobStatus.FAILED
        assert (marks.runs("first"), marks.runs("slow"), marks.runs("last")) == (1, 1, 0)
    assert view.tasks["first"].attempts == down.tasks["first"].attempts, "a task that had succeeded never runs again"
    record = next(j for j in served.jobs() if j["id"] == job)
    assert record["status"] == str(view.status)
    assert [j["id"] for j in served.jobs()] == [job]


def test_after_kill_9_queued_jobs_start_after_the_restart_and_nothing_runs_twice(daemon, marks, source_repo, contracts):
    def waiting(name: str) -> str:
        return pipeline(
            name,
            f"""\
            - name: work
              retry: {{max_attempts: 2}}
              command: 'echo run >> {marks / f"{name}.runs"}; echo $$ > {marks / f"{name}.pid"}; [ -e {marks / "go"} ] || sleep 300'
            """,
        )

    before = head(source_repo)
    commit_file(source_repo, "pipelines/other.yaml", waiting("other"))
    after = commit_file(source_repo, "pipelines/demo.yaml", waiting("demo"))
    served = daemon(extra="max_running_jobs: 1\n").start()
    answer = served.push(contracts, before=before, after=after, delivery="d-1")
    assert answer.status_code == 202, answer.text
    jobs = answer.json()["jobs"]
    assert len(jobs) == 2
    started = wait_until(lambda: [n for n in ("demo", "other") if marks.runs(n)], what="one of the jobs to start")
    assert len(started) == 1
    (first,) = started
    second = "other" if first == "demo" else "demo"
    pid = marks.pid(first)
    by_pipeline = {served.view(j).job.pipeline: j for j in jobs}
    assert served.view(by_pipeline[second]).status == JobStatus.QUEUED

    served.kill9()

    assert served.view(by_pipeline[first]).status == JobStatus.INTERRUPTED
    assert served.view(by_pipeline[second]).status == JobStatus.QUEUED
    assert marks.runs(second) == 0
    (marks / "go").touch()

    served.start()
    views = {name: served.ended(job) for name, job in by_pipeline.items()}

    assert not alive(pid)
    assert attempt_outcomes(views[first], "work") == [Outcome.INTERRUPTED, Outcome.SUCCEEDED]
    assert attempt_outcomes(views[second], "work") == [Outcome.SUCCEEDED]
    assert all(v.status == JobStatus.SUCCEEDED for v in views.values())
    assert marks.runs(first) == 2 and marks.runs(second) == 1  # the retry of the interrupted attempt; once
    # max_running_jobs: 1 holds across the restart: the queued job started once the taken-over one ended
    assert views[second].tasks["work"].attempts[0].started_at >= views[first].tasks["work"].attempts[-1].ended_at
    assert sorted(j["id"] for j in served.jobs()) == sorted(jobs)
    with Store(served.state) as store:
        assert Ledger(store).open_queue() == []


# -- SIGTERM ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("retry", [True, False], ids=["with-retry", "without-retry"])
def test_sigterm_interrupts_what_outlives_the_grace_and_a_restart_takes_it_over(
    retry, daemon, marks, source_repo, contracts
):
    before = head(source_repo)
    after = commit_file(source_repo, "pipelines/demo.yaml", chain(marks, retry=retry))
    served = daemon(grace="1s").start()
    job = one_job(served.push(contracts, before=before, after=after, delivery="d-1"))
    shell, child = marks.pid("slow"), marks.pid("slow-child")

    assert served.terminate() == 0

    assert not alive(shell) and not alive(child), "the drain stopped the task it interrupted"
    down = served.view(job)
    assert down.status == JobStatus.INTERRUPTED
    slow = down.tasks["slow"]
    assert slow.state == TaskState.RUNNING  # not ended: the next daemon decides (retry or fail)
    assert attempt_outcomes(down, "slow") == [Outcome.INTERRUPTED]
    assert slow.attempts[0].message == f"interrupted: {SIGTERM_REASON} before the task ended"
    assert down.tasks["last"].state == TaskState.PENDING
    assert "stopping: no new jobs" in served.log()

    served.start()
    view = served.ended(job)

    if retry:
        assert attempt_outcomes(view, "slow") == [Outcome.INTERRUPTED, Outcome.SUCCEEDED]
        assert view.status == JobStatus.SUCCEEDED
        assert (marks.runs("first"), marks.runs("slow"), marks.runs("last")) == (1, 2, 1)
    else:
        assert attempt_outcomes(view, "slow") == [Outcome.INTERRUPTED]
        assert view.tasks["slow"].state == TaskState.FAILED
        assert view.tasks["slow"].reason == f"interrupted: {SIGTERM_REASON} before the task ended"
        assert view.tasks["last"].state == TaskState.SKIPPED
        assert view.status == JobStatus.FAILED
        assert (marks.runs("first"), marks.runs("slow"), marks.runs("last")) == (1, 1, 0)


def test_sigterm_lets_a_job_that_ends_within_the_grace_finish(daemon, marks, source_repo, contracts):
    before = head(source_repo)
    after = commit_file(
        source_repo,
        "pipelines/demo.yaml",
        pipeline(
            "demo",
            f"""\
        - name: short
          command: '{counted(marks, "short")}; echo $$ > {marks / "short.pid"}; sleep 2'
        - name: last
          dependencies: [short]
          command: {counted(marks, "last")}
        """,
        ),
    )
    served = daemon(grace="60s").start()
    job = one_job(served.push(contracts, before=before, after=after, delivery="d-1"))
    marks.pid("short")

    assert served.terminate(timeout=90) == 0

    view = served.view(job)
    assert view.status == JobStatus.SUCCEEDED
    assert all(a.outcome == Outcome.SUCCEEDED for i in view.tasks.values() for a in i.attempts)
    assert (marks.runs("short"), marks.runs("last")) == (1, 1)
    with Store(served.state) as store:
        assert Ledger(store).open_queue() == [], "a job that ended during the drain is done, not left to recover()"

    served.start()  # nothing to take over, nothing runs again
    assert served.view(job).status == JobStatus.SUCCEEDED
    assert httpx.get(served.url + "/healthz", timeout=PATIENCE).json()["running"] == 0
    assert (marks.runs("short"), marks.runs("last")) == (1, 1)


def test_while_draining_healthz_and_webhooks_answer_503_and_the_running_job_finishes(
    tmp_path, marks, source_repo, contracts
):
    """In-process, so the drain window stays open until the test lets the task end."""
    from fasttrack_gitops.daemon.app import listening_socket, run_daemon

    before = head(source_repo)
    after = commit_file(
        source_repo,
        "pipelines/demo.yaml",
        pipeline(
            "demo",
            f"""\
        - name: held
          command: '{counted(marks, "held")}; while [ ! -e {marks / "release"} ]; do sleep 0.05; done'
        """,
        ),
    )
    config = load(write_config(tmp_path, source_repo, repo_extra="watch: false\n", shutdown_grace="120s"))

    async def scenario() -> None:
        sock = listening_socket("127.0.0.1", 0)
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        stop = asyncio.Event()
        ready = asyncio.get_running_loop().create_future()
        served = asyncio.create_task(run_daemon(config, sock, stop=stop, ready=ready.set_result))
        try:
            daemon = await ready
            async with httpx.AsyncClient(base_url=url, timeout=PATIENCE) as client:
                body = json.dumps(push_payload(contracts, ref="refs/heads/main", before=before, after=after)).encode()
                answer = await client.post(
                    "/webhooks/github", content=body, headers=github_headers(body, "push", "d-1")
                )
                job = one_job(answer)
                await await_until(lambda: marks.runs("held") == 1)
                stop.set()  # what SIGTERM does
                await await_until(lambda: daemon.pool.draining)
                health = await client.get("/healthz")
                assert health.status_code == 503 and health.json()["status"] == "draining"
                assert health.json()["running"] == 1
                later = commit_file(
                    source_repo, "pipelines/demo.yaml", (source_repo / "pipelines/demo.yaml").read_text() + "# v3\n"
                )
                body = json.dumps(push_payload(contracts, ref="refs/heads/main", before=after, after=later)).encode()
                refused = await client.post(
                    "/webhooks/github", content=body, headers=github_headers(body, "push", "d-2")
                )
                assert refused.status_code == 503, refused.text
                assert not served.done()
                (marks / "release").touch()
                assert await asyncio.wait_for(served, PATIENCE) == 0
        finally:
            stop.set()
            await asyncio.gather(served, return_exceptions=True)
        with Store(config.state_dir) as store:
            view = store.view(job)
            assert view.status == JobStatus.SUCCEEDED
            assert attempt_outcomes(view, "held") == [Outcome.SUCCEEDED]
            assert len(store.list_jobs(limit=0)) == 1, "the refused delivery made no job"
            assert Ledger(store).seen_delivery("github", "d-2") is False, "GitHub may deliver it again later"

    asyncio.run(scenario())


def test_a_drain_while_a_job_is_being_set_up_leaves_it_to_the_next_start(tmp_path, marks, source_repo):
    """SIGTERM with shutdown_grace 0 as a restarted daemon re-attaches: the job has no runner yet (its commit is
    still being read); the drain must neither wait for it to run to its end nor lose it."""
    from fasttrack_gitops.core.events import Manual
    from fasttrack_gitops.daemon.service import Daemon
    from fasttrack_gitops.engine.executors.local import LocalExecutor

    commit_file(
        source_repo,
        "pipelines/demo.yaml",
        pipeline(
            "demo",
            f"""\
        - name: held
          command: '{counted(marks, "held")}; while [ ! -e {marks / "release"} ]; do sleep 0.05; done'
        """,
        ),
    )
    config = load(write_config(tmp_path, source_repo, repo_extra="watch: false\n", shutdown_grace="0s"))

    async def stopped_at_once() -> str:
        executor = LocalExecutor(bwrap=False)
        daemon = Daemon(config, executor=executor)
        try:
            (job,) = (await daemon.handle(Manual(REPO_NAME, "demo", "main", "request-1"))).created
            daemon.ledger.mark_started(job)  # as a daemon killed right after starting it leaves it
            assert daemon.pool.recover() == [job]
            await asyncio.wait_for(daemon.pool.drain(0.0), PATIENCE)
            return job
        finally:
            (marks / "release").touch()  # should the drain have let it run: never hang
            await executor.close()
            daemon.close()

    job = asyncio.run(stopped_at_once())

    with Store(config.state_dir) as store:
        view = store.view(job)
        assert view.status == JobStatus.INTERRUPTED
        # PENDING when the drain came before its runner, WAITING ("not started") when it came as the runner handed
        # the task to the executor: either way nothing ran and no attempt was spent
        assert view.tasks["held"].state in (TaskState.PENDING, TaskState.WAITING)
        assert view.tasks["held"].attempts == ()
    assert marks.runs("held") == 0

    async def next_start() -> JobView:
        async with running(config) as (daemon, _):
            return await await_until(lambda: (v := daemon.store.view(job)).status in ENDED and v)

    view = asyncio.run(next_start())
    assert view.status == JobStatus.SUCCEEDED and marks.runs("held") == 1


def test_a_job_that_cannot_start_fails_at_once_frees_its_slot_and_never_runs_later(
    tmp_path, marks, source_repo, contracts, monkeypatch
):
    monkeypatch.delenv("FTG_SECRET_API_TOKEN", raising=False)
    before = head(source_repo)
    commit_file(
        source_repo,
        "pipelines/secretive.yaml",
        pipeline(
            "secretive",
            f"""\
        - name: use
          command: {counted(marks, "use")}
        """,
        ).replace("tasks:", 'environment:\n  envs: {TOKEN: "${{ secrets.API_TOKEN }}"}\ntasks:'),
    )
    after = commit_file(
        source_repo,
        "pipelines/demo.yaml",
        pipeline(
            "demo",
            f"""\
        - name: plain
          command: {counted(marks, "plain")}
        """,
        ),
    )
    config = load(write_config(tmp_path, source_repo, repo_extra="watch: false\n", extra="max_running_jobs: 1\n"))

    async def first_start() -> tuple[dict[str, str], list[str]]:
        async with running(config) as (daemon, url):
            body = json.dumps(push_payload(contracts, ref="refs/heads/main", before=before, after=after)).encode()
            async with httpx.AsyncClient(base_url=url, timeout=PATIENCE) as client:
                answer = await client.post(
                    "/webhooks/github", content=body, headers=github_headers(body, "push", "d-1")
                )
            jobs = {daemon.store.view(j).job.pipeline: j for j in answer.json()["jobs"]}
            assert sorted(jobs) == ["demo", "secretive"], answer.text
            for job in jobs.values():
                await await_until(lambda job=job: daemon.store.view(job).status in ENDED)
            await await_until(lambda: daemon.ledger.open_queue() == [])
            return jobs, [e.kind for e in daemon.store.events(jobs["secretive"])]

    jobs, history = asyncio.run(first_start())

    async def second_start() -> None:
        from fasttrack_gitops.core.events import Manual

        async with running(config) as (daemon, _):
            assert daemon.ledger.open_queue() == []
            # One slot: a job asked for now runs after whatever this start took over, so once it has ended,
            # anything taken over has run (and left its events).
            (later,) = (await daemon.handle(Manual(REPO_NAME, "demo", "main", "after-the-restart"))).created
            await await_until(lambda: daemon.store.view(later).status in ENDED)
            assert [e.kind for e in daemon.store.events(jobs["secretive"])] == history, "it was taken over"
            secretive = daemon.store.view(jobs["secretive"])
            assert secretive.status == JobStatus.FAILED
            assert secretive.tasks["use"].reason.startswith("secret API_TOKEN is not given to the daemon")
            assert secretive.tasks["use"].attempts == ()
            assert daemon.store.view(jobs["demo"]).status == JobStatus.SUCCEEDED

    asyncio.run(second_start())
    assert (marks.runs("use"), marks.runs("plain")) == (0, 2)  # plain: the first start's job, and the later one


# -- one job per commit, whoever reports it --------------------------------------------------------------------


def test_a_commit_seen_by_the_watcher_a_webhook_and_a_restart_makes_one_job(daemon, marks, source_repo, contracts):
    text = pipeline(
        "demo",
        f"""\
        - name: only
          command: {counted(marks, "only")}
        """,
    )
    served = daemon(repo_extra="watch: true\n").start()
    wait_until(lambda: "" in served.positions(), what="the watcher's first scan")
    before = head(source_repo)
    c1 = commit_file(source_repo, "pipelines/demo.yaml", text, "c1")
    seen = wait_until(lambda: [j for j in served.jobs() if j["commit"] == c1], what="the watcher to make a job")
    job1 = seen[0]["id"]
    assert seen[0]["trigger"]["sender"] == "watch"
    reported = served.push(contracts, before=before, after=c1, delivery="d-1")
    assert reported.status_code == 202 and reported.json()["jobs"] == [job1] and reported.json()["created"] == []
    served.ended(job1)

    assert served.terminate() == 0
    c2 = commit_file(source_repo, "pipelines/demo.yaml", text + "# c2\n", "c2")  # while no daemon runs
    served.start()

    moved = wait_until(lambda: [j for j in served.jobs() if j["commit"] == c2], what="the restart to notice c2")
    job2 = moved[0]["id"]
    for before_, after_, delivery in ((c1, c2, "d-2"), (before, c1, "d-3")):
        again = served.push(contracts, before=before_, after=after_, delivery=delivery)
        assert again.status_code == 202, again.text
        assert again.json()["created"] == [] and again.json()["jobs"] == [job2 if after_ == c2 else job1]
    served.ended(job2)
    assert served.terminate() == 0
    served.start()  # positions are where they were: nothing is new
    assert served.push(contracts, before=c1, after=c2, delivery="d-4").json()["created"] == []

    jobs = served.jobs()
    assert sorted((j["commit"], j["status"]) for j in jobs) == sorted([(c1, "succeeded"), (c2, "succeeded")])
    assert marks.runs("only") == 2
