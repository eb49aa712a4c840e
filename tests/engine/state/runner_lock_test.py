"""One runner per job: a claim is exclusive, ends with its block, and dies with its process."""

from __future__ import annotations

import os
import signal

import pytest
from engine.state.store_test import make_job, python, raw, wait_for_line

from fasttrack_gitops.core.job import JobStatus, TaskState
from fasttrack_gitops.engine.state.errors import JobRecordError, StoreError
from fasttrack_gitops.engine.state.store import Store


def test_a_job_cannot_be_claimed_twice_and_the_claim_ends_with_the_block(store):
    job = make_job()
    store.create_job(job)
    lock = store.state_dir / "runners" / f"{job.id}.lock"
    with store.claim(job.id):
        assert lock.read_text().strip() == str(os.getpid())
        with pytest.raises(StoreError, match=rf"job {job.id} is already being run by another process \(pid "):
            with store.claim(job.id):
                pass
        assert store.view(job.id).runner_alive
    assert not lock.exists() and not store.view(job.id).runner_alive
    with store.claim(job.id):
        assert store.view(job.id).runner_alive
    with pytest.raises(JobRecordError, match="no job 'ghost'"), store.claim("ghost"):
        pass


@pytest.mark.parametrize("then", ["sleep", "write"])
def test_a_runner_killed_with_sigkill_leaves_an_interrupted_job_and_a_sound_database(tmp_path, then):
    with Store(tmp_path) as store:
        job = make_job()
        store.create_job(job)
        runner = python(
            """
        store = Store(Path(sys.argv[1]))
        job_id = sys.argv[2]
        with store.claim(job_id):
            store.set_task_state(job_id, "prepare", TaskState.RUNNING)
            store.start_attempt(job_id, "prepare", 1, started_at=time.time())
            print("ready", flush=True)
            while True:
                if sys.argv[3] == "sleep":
                    time.sleep(60)
                else:
                    store.add_event(job_id, "progress", task="prepare", data={"at": time.time()})
        """,
            tmp_path,
            job.id,
            then,
        )
        wait_for_line(runner, "ready")
        view = store.view(job.id)
        assert view.status == JobStatus.RUNNING and view.runner_alive
        with pytest.raises(StoreError, match=f"job {job.id} is already being run by another process"):
            with store.claim(job.id):
                pass
        os.kill(runner.pid, signal.SIGKILL)
        runner.wait()

        view = store.view(job.id)
        assert view.status == JobStatus.INTERRUPTED and not view.runner_alive
        assert view.tasks["prepare"].state == TaskState.RUNNING  # as the runner left it
        with raw(tmp_path) as cx:
            assert cx.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        with store.claim(job.id):  # the job can be taken up again
            assert store.view(job.id).runner_alive
