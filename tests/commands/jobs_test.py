"""`fasttrack-gitops jobs`: list, show, logs (and --follow), cancel and rerun of real jobs.

Every job here is a real one: a git repository in tmp_path with committed
pipelines, run through the CLI (in-process, or as a process where a second
process has to watch, cancel or kill it), always with --state-dir in tmp_path.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import select
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import alive, console_script, git, wait_until

from fasttrack_gitops.cli import main
from fasttrack_gitops.engine.state.store import Store

HELLO = """\
version: "26.4.4"
name: hello
tasks:
  - name: greet
    command: echo hello
"""

FAILING = """\
version: "26.4.4"
name: failing
tasks:
  - name: boom
    command: echo about to fail; exit 3
  - name: after
    dependencies: [boom]
    command: echo never
"""


# -- helpers -----------------------------------------------------------------


def make_repo(root: Path, files: dict[str, str]) -> Path:
    """A git repository at root/repo with `files` committed."""
    repo = root / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    commit(repo, files)
    return repo


def commit(repo: Path, files: dict[str, str], message: str = "pipelines") -> str:
    for relpath, text in files.items():
        path = repo / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD").strip()


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_job(capsys, repo: Path, pipeline: str, state: Path, *extra: str) -> tuple[int, dict]:
    """Run a committed pipeline in-process; (exit code, the job record `run --format json` printed)."""
    code, out, err = cli(capsys, "run", str(repo / pipeline), "--state-dir", str(state), "--format", "json", *extra)
    assert "Traceback" not in err and out, err
    return code, json.loads(out)


def show(capsys, state: Path, job: str) -> dict:
    code, out, err = cli(capsys, "jobs", "show", job, "--state-dir", str(state), "--format", "json")
    assert (code, err) == (0, ""), err
    return json.loads(out)


def task(record: dict, name: str) -> dict:
    return next(t for t in record["tasks"] if t["name"] == name)


def wait_while_running(proc: subprocess.Popen, predicate, what: str):
    """wait_until predicate() holds; fail at once, with the process's output, should proc end before it does."""

    def holds():
        value = predicate()
        if not value and proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the process ended ({proc.returncode}) before {what}:\n{out}\n{err}")
        return value

    return wait_until(holds, what=what)


def started_job(state: Path, proc: subprocess.Popen, task_name: str) -> str:
    """The id of the job a `run` process started, once `task_name` runs (its log folder exists)."""

    def running() -> str | None:
        logs = state / "logs"
        jobs = [p.name for p in logs.iterdir()] if logs.is_dir() else []
        if not jobs or not (logs / jobs[0] / task_name).is_dir():
            return None
        with Store(state) as store:
            view = store.view(jobs[0])
            instance = view.tasks[task_name]
            return jobs[0] if instance.state.value == "running" and instance.attempts else None

    return wait_while_running(proc, running, f"task {task_name} to run")


def spawn_run(repo: Path, pipeline: str, state: Path) -> subprocess.Popen:
    # Without bubblewrap: these tests signal the pid a task writes, which under it would be its PID namespace's.
    return subprocess.Popen(
        [console_script(), "run", str(repo / pipeline), "--state-dir", str(state)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "FTG_BWRAP": "0"},
    )


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.communicate()


def kill_pid_file(path: Path) -> None:
    """Kill the task process whose pid a task wrote (an orphan once its runner is gone)."""
    try:
        pid = int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return
    try:
        pgid = os.getpgid(pid)
        if pgid != os.getpgrp():
            os.killpg(pgid, signal.SIGKILL)
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def three_jobs(tmp_path, state, capsys):
    """hello, failing, hello: run in that order; their records, oldest first."""
    repo = make_repo(tmp_path, {"pipelines/hello.yaml": HELLO, "pipelines/failing.yaml": FAILING})
    records = []
    for name in ("hello", "failing", "hello"):
        _, record = run_job(capsys, repo, f"pipelines/{name}.yaml", state)
        records.append(record)
    return records


def common_prefix(a: str, b: str) -> str:
    return os.path.commonprefix([a, b])


def test_progress_goes_to_the_stderr_of_the_moment(tmp_path, state, monkeypatch):
    monkeypatch.undo()  # without the workaround above
    repo = make_repo(tmp_path, {"hello.yaml": HELLO})
    for _ in range(2):
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            assert main(["run", str(repo / "hello.yaml"), "--state-dir", str(state)]) == 0
        assert "greet succeeded" in err.getvalue()


# -- jobs list ---------------------------------------------------------------


def test_list_is_newest_first_as_json_records(capsys, state, three_jobs):
    code, out, err = cli(capsys, "jobs", "list", "--state-dir", str(state), "--format", "json")
    assert (code, err) == (0, "")
    listed = json.loads(out)
    assert isinstance(listed, list)
    assert [r["id"] for r in listed] == [r["id"] for r in reversed(three_jobs)]
    assert [r["status"] for r in listed] == ["succeeded", "failed", "succeeded"]
    for record in listed:
        assert {"id", "status", "pipeline", "commit", "tasks", "spec_id", "rerun_of"} <= set(record)
        assert len(record["commit"]) == 40
    assert listed == list(reversed(three_jobs))  # the same records `run --format json` printed


def test_list_filters_by_pipeline_status_and_limit(capsys, state, three_jobs):
    def ids(*argv: str) -> list[str]:
        code, out, err = cli(capsys, "jobs", "list", "--state-dir", str(state), "--format", "json", *argv)
        assert (code, err) == (0, "")
        return [r["id"] for r in json.loads(out)]

    first, failing, last = (r["id"] for r in three_jobs)
    assert ids("--pipeline", "hello") == [last, first]
    assert ids("--pipeline", "failing") == [failing]
    assert ids("--pipeline", "nope") == []
    assert ids("--status", "failed") == [failing]
    assert ids("--status", "succeeded") == [last, first]
    assert ids("--status", "cancelled") == []
    assert ids("--limit", "1") == [last]
    assert ids("--limit", "2") == [last, failing]
    assert ids("--pipeline", "hello", "--status", "succeeded", "--limit", "1") == [last]


def test_list_rejects_a_bad_status_or_limit(capsys, state):
    assert cli(capsys, "jobs", "list", "--state-dir", str(state), "--status", "done")[0] == 2
    assert cli(capsys, "jobs", "list", "--state-dir", str(state), "--limit", "0")[0] == 2


def test_list_text_table_has_a_header_and_one_row_per_job(capsys, state, three_jobs):
    code, out, err = cli(capsys, "jobs", "list", "--state-dir", str(state))
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["job", "pipeline", "status"]
    assert len(lines) == 4
    for line, record in zip(lines[1:], reversed(three_jobs)):
        assert line.split()[:4] == [
            record["id"],
            record["pipeline"],
            record["status"],
            f"{len(record['tasks'])}/{len(record['tasks'])}",
        ]
        assert record["commit"][:12] in line


def test_list_of_an_empty_state_dir_exits_0_with_a_hint(capsys, tmp_path):
    empty = tmp_path / "empty-state"
    code, out, err = cli(capsys, "jobs", "list", "--state-dir", str(empty))
    assert (code, out) == (0, "")
    assert "no jobs yet" in err and "fasttrack-gitops run" in err
    code, out, err = cli(capsys, "jobs", "list", "--state-dir", str(empty), "--format", "json")
    assert (code, json.loads(out), err) == (0, [], "")


# -- jobs show ---------------------------------------------------------------


def test_show_json_is_the_record_run_printed(capsys, state, three_jobs):
    for record in three_jobs:
        assert show(capsys, state, record["id"]) == record


def test_show_by_a_unique_prefix(capsys, state, three_jobs):
    a = three_jobs[0]["id"]
    prefix = a[: max(len(common_prefix(a, r["id"])) for r in three_jobs[1:]) + 1]
    assert not any(r["id"].startswith(prefix) for r in three_jobs[1:])
    assert show(capsys, state, prefix) == three_jobs[0]


def test_show_text_names_the_job_and_its_tasks(capsys, state, three_jobs):
    failing = three_jobs[1]
    code, out, err = cli(capsys, "jobs", "show", failing["id"][:-1], "--state-dir", str(state))
    assert (code, err) == (0, "")
    head, _, table = out.partition("\n\n")
    assert head.split()[:4] == ["job", failing["id"], "failing", "failed"]
    assert failing["commit"][:12] in head
    rows = table.splitlines()
    assert rows[0].split()[:2] == ["task", "status"]
    assert rows[1].split()[:2] == ["boom", "failed"]
    assert rows[2].split()[:2] == ["after", "skipped"]


def test_show_an_ambiguous_prefix_exits_2(capsys, state, three_jobs):
    a, b = three_jobs[0]["id"], three_jobs[1]["id"]
    prefix = common_prefix(a, b)
    assert prefix  # same day at least
    code, out, err = cli(capsys, "jobs", "show", prefix, "--state-dir", str(state))
    assert (code, out) == (2, "")
    assert "ambiguous" in err and a in err and b in err
    assert "Traceback" not in err and err.count("\n") == 1


@pytest.mark.parametrize(
    "argv",
    [
        ["jobs", "show", "nope"],
        ["jobs", "show", "19990101-000000-abcdef"],
        ["jobs", "logs", "nope"],
        ["jobs", "cancel", "nope"],
        ["jobs", "rerun", "nope"],
    ],
)
def test_an_unknown_job_exits_2_with_one_clear_line(capsys, state, three_jobs, argv):
    code, out, err = cli(capsys, *argv, "--state-dir", str(state))
    assert (code, out) == (2, "")
    assert err.startswith("error: no job ") and repr(argv[2]) in err
    assert "Traceback" not in err and err.count("\n") == 1


def test_an_unknown_job_through_the_console_script_has_no_traceback(state, three_jobs):
    proc = subprocess.run(
        [console_script(), "jobs", "show", "zzz", "--state-dir", str(state)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "no job 'zzz'" in proc.stderr and "Traceback" not in proc.stderr


# -- jobs logs ---------------------------------------------------------------

RETRIED = """\
version: "26.4.4"
name: retried
tasks:
  - name: flaky
    retry: {{max_attempts: 2}}
    command: |
      if [ -f {counter} ]; then echo second try; else touch {counter}; echo first try; exit 1; fi
  - name: quiet
    command: echo quiet output; echo on stderr >&2
"""


@pytest.fixture
def retried(tmp_path, state, capsys) -> dict:
    repo = make_repo(tmp_path, {"retried.yaml": RETRIED.format(counter=tmp_path / "counter")})
    code, record = run_job(capsys, repo, "retried.yaml", state)
    assert code == 0
    assert [a["outcome"] for a in task(record, "flaky")["attempts"]] == ["failed", "succeeded"]
    return record


def logs(capsys, state, *argv: str) -> tuple[int, str, str]:
    return cli(capsys, "jobs", "logs", *argv, "--state-dir", str(state))


def test_logs_of_a_task_print_its_output(capsys, state, retried):
    job = retried["id"]
    assert logs(capsys, state, job, "quiet") == (0, "quiet output\non stderr\n", "")
    assert logs(capsys, state, job[:-2], "quiet") == (0, "quiet output\non stderr\n", "")


def test_logs_default_to_the_last_attempt_and_attempt_picks_one(capsys, state, retried):
    job = retried["id"]
    assert logs(capsys, state, job, "flaky") == (0, "second try\n", "")
    assert logs(capsys, state, job, "flaky", "--attempt", "1") == (0, "first try\n", "")
    assert logs(capsys, state, job, "flaky", "--attempt", "2") == (0, "second try\n", "")


def test_logs_of_an_attempt_that_does_not_exist_exit_2(capsys, state, retried):
    code, out, err = logs(capsys, state, retried["id"], "flaky", "--attempt", "3")
    assert (code, out) == (2, "")
    assert "2 attempt(s)" in err and "not 3" in err and "Traceback" not in err
    code, out, err = logs(capsys, state, retried["id"], "quiet", "--attempt", "2")
    assert (code, out) == (2, "")
    assert logs(capsys, state, retried["id"], "flaky", "--attempt", "0")[0] == 2


def test_logs_of_an_unknown_task_exit_2_with_did_you_mean(capsys, state, retried):
    code, out, err = logs(capsys, state, retried["id"], "flakey")
    assert (code, out) == (2, "")
    assert f"job {retried['id']} has no task 'flakey'" in err
    assert "did you mean 'flaky'" in err and "Traceback" not in err


def test_logs_without_a_task_print_every_last_attempt_under_a_header(capsys, state, retried):
    code, out, err = logs(capsys, state, retried["id"])
    assert (code, err) == (0, "")
    assert out == (
        "==> flaky (attempt 2, succeeded) <==\nsecond try\n"
        "==> quiet (attempt 1, succeeded) <==\nquiet output\non stderr\n"
    )


@pytest.fixture
def failed_job(tmp_path, state, capsys) -> dict:
    repo = make_repo(tmp_path, {"failing.yaml": FAILING})
    code, record = run_job(capsys, repo, "failing.yaml", state)
    assert code == 1
    assert task(record, "after")["status"] == "skipped" and task(record, "after")["attempts"] == []
    return record


def test_logs_of_a_skipped_task_say_it_did_not_run(capsys, state, failed_job):
    code, out, err = logs(capsys, state, failed_job["id"], "after")
    assert (code, out) == (0, "")
    assert "'after' has not run" in err and "skipped" in err and "dependency 'boom' failed" in err


def test_logs_without_a_task_show_the_failed_one(capsys, state, failed_job):
    code, out, _ = logs(capsys, state, failed_job["id"])
    assert code == 0
    assert out.startswith("==> boom (attempt 1, failed) <==\nabout to fail\n")
    assert "never" not in out


def test_logs_without_a_task_mention_a_skipped_task(capsys, state, failed_job):
    code, out, err = logs(capsys, state, failed_job["id"])
    assert code == 0
    assert "after" in out + err and "skipped" in out + err


# -- jobs logs --follow ------------------------------------------------------

STREAMING = """\
version: "26.4.4"
name: streaming
tasks:
  - name: talk
    command: |
      echo first line
      sleep 0.5
      n=0; while [ ! -f {go} ] && [ $n -lt 400 ]; do sleep 0.05; n=$((n+1)); done
      echo second line
"""


class Lines:
    """A process's stdout line by line with a timeout (raw reads: nothing hides in a Python buffer)."""

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self.fd = proc.stdout.fileno()
        self.buffer = b""

    def next(self, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.fd], [], [], max(0.0, left))
            if not ready:
                pytest.fail(f"no line from `jobs logs --follow` in {timeout:g}s (so far: {self.buffer!r})")
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                pytest.fail(f"`jobs logs --follow` ended its output early (so far: {self.buffer!r})")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.decode() + "\n"

    def rest(self, timeout: float = 20.0) -> tuple[str, str]:
        """What is left of stdout, and stderr, once the process ends by itself."""
        out, err = self.proc.communicate(timeout=timeout)
        return (self.buffer + out).decode(), err.decode()


@pytest.mark.parametrize("with_task", [True, False], ids=["task", "every-task"])
def test_follow_streams_lines_while_the_job_runs_and_exits_when_it_ends(tmp_path, state, with_task):
    go = tmp_path / "go"
    repo = make_repo(tmp_path, {"streaming.yaml": STREAMING.format(go=go)})
    runner = spawn_run(repo, "streaming.yaml", state)
    follower = None
    try:
        job = started_job(state, runner, "talk")
        argv = [
            console_script(),
            "jobs",
            "logs",
            job,
            *(["talk"] if with_task else []),
            "--follow",
            "--state-dir",
            str(state),
        ]
        follower = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        lines = Lines(follower)
        prefix = "" if with_task else "talk: "
        if not with_task:
            assert lines.next() == "==> talk (attempt 1) <==\n"
        assert lines.next() == f"{prefix}first line\n"
        # The task is still waiting for `go`: the line came while the job ran.
        assert runner.poll() is None
        with Store(state) as store:
            assert store.view(job).status.value == "running"
        go.touch()
        assert lines.next() == f"{prefix}second line\n"
        rest, err = lines.rest()  # follow ends by itself
        assert (follower.returncode, rest, err) == (0, "", "")
        assert runner.wait(timeout=20) == 0
    finally:
        go.touch()
        stop(runner)
        if follower is not None:
            stop(follower)


def test_follow_of_an_ended_job_prints_the_log_and_exits(capsys, state, retried):
    assert logs(capsys, state, retried["id"], "quiet", "--follow") == (0, "quiet output\non stderr\n", "")
    code, out, _ = logs(capsys, state, retried["id"], "flaky", "-f", "--attempt", "1")
    assert (code, out) == (0, "first try\n")


def test_follow_prints_a_last_line_without_a_newline(tmp_path, state, capsys):
    repo = make_repo(
        tmp_path,
        {
            "nonl.yaml": """\
version: "26.4.4"
name: nonl
tasks:
  - name: t
    command: printf 'whole line\\nno newline at the end'
"""
        },
    )
    code, record = run_job(capsys, repo, "nonl.yaml", state)
    assert code == 0
    assert logs(capsys, state, record["id"], "t")[1] == "whole line\nno newline at the end"
    assert logs(capsys, state, record["id"], "t", "--follow")[1] == "whole line\nno newline at the end"


# -- jobs cancel -------------------------------------------------------------

SLEEPER = """\
version: "26.4.4"
name: sleeper
tasks:
  - name: nap
    command: echo $$ > {pidfile}; exec sleep 30
  - name: later
    dependencies: [nap]
    command: echo later
"""


def test_cancel_a_running_job(tmp_path, state, capsys):
    pidfile = tmp_path / "nap.pid"
    repo = make_repo(tmp_path, {"sleeper.yaml": SLEEPER.format(pidfile=pidfile)})
    runner = spawn_run(repo, "sleeper.yaml", state)
    try:
        job = started_job(state, runner, "nap")
        wait_while_running(runner, lambda: pidfile.is_file() and pidfile.read_text().strip(), "the task's pid")
        asked = time.monotonic()
        code, out, err = cli(capsys, "jobs", "cancel", job[:-1], "--state-dir", str(state))
        assert (code, err) == (0, "")
        assert out == f"job {job}: cancel requested\n"
        assert runner.wait(timeout=15) == 1
        took = time.monotonic() - asked
        # the bound is the behaviour: the runner notices the request, long before the sleep ends
        assert took < 5, f"the runner took {took:.1f}s to stop a cancelled job"
        record = show(capsys, state, job)
        assert record["status"] == "cancelled"
        assert record["cancel_requested"] is True
        assert [(t["name"], t["status"]) for t in record["tasks"]] == [("nap", "cancelled"), ("later", "cancelled")]
        assert task(record, "nap")["attempts"][0]["outcome"] == "cancelled"
        assert task(record, "later")["attempts"] == []
        pid = int(pidfile.read_text())
        wait_until(lambda: not alive(pid), what="the task's process to go", timeout=10)
    finally:
        stop(runner)
        kill_pid_file(pidfile)


def test_cancel_an_ended_job_says_so(capsys, state, three_jobs):
    for record in three_jobs[:2]:
        code, out, err = cli(capsys, "jobs", "cancel", record["id"], "--state-dir", str(state))
        assert (code, err) == (0, "")
        assert out == f"job {record['id']} has already ended: {record['status']}\n"
        assert show(capsys, state, record["id"]) == record  # nothing changed, no cancel request


@pytest.fixture
def interrupted(tmp_path, state, capsys):
    """A job whose runner was killed with SIGKILL while its task slept: (job id, pid file)."""
    pidfile = tmp_path / "nap.pid"
    repo = make_repo(tmp_path, {"sleeper.yaml": SLEEPER.format(pidfile=pidfile)})
    runner = spawn_run(repo, "sleeper.yaml", state)
    try:
        job = started_job(state, runner, "nap")
        wait_while_running(runner, lambda: pidfile.is_file() and pidfile.read_text().strip(), "the task's pid")
        runner.send_signal(signal.SIGKILL)
        runner.wait(timeout=10)
        yield job
    finally:
        stop(runner)
        kill_pid_file(pidfile)


def test_cancel_an_interrupted_job(capsys, state, interrupted):
    job = interrupted
    record = show(capsys, state, job)
    assert record["status"] == "interrupted"
    assert task(record, "nap")["status"] == "running"
    code, out, _ = cli(capsys, "jobs", "list", "--state-dir", str(state), "--status", "interrupted", "--format", "json")
    assert [r["id"] for r in json.loads(out)] == [job]

    code, out, err = cli(capsys, "jobs", "cancel", job, "--state-dir", str(state))
    assert (code, out, err) == (0, f"job {job}: cancel requested\n", "")
    record = show(capsys, state, job)
    assert record["status"] == "cancelled"
    assert record["cancel_requested"] is True
    for name in ("nap", "later"):
        assert (task(record, name)["status"], task(record, name)["reason"]) == ("cancelled", "the job was cancelled")
    code, out, _ = cli(capsys, "jobs", "cancel", job, "--state-dir", str(state))
    assert (code, out) == (0, f"job {job} has already ended: cancelled\n")


def test_cancel_an_interrupted_job_closes_its_open_attempt(capsys, state, interrupted):
    assert cli(capsys, "jobs", "cancel", interrupted, "--state-dir", str(state))[0] == 0
    attempt = task(show(capsys, state, interrupted), "nap")["attempts"][-1]
    assert attempt["ended_at"] is not None
    assert attempt["outcome"] in ("interrupted", "cancelled")


# -- jobs rerun --------------------------------------------------------------


def rerun(capsys, state, job: str, *extra: str) -> tuple[int, dict]:
    code, out, err = cli(capsys, "jobs", "rerun", job, "--state-dir", str(state), "--format", "json", *extra)
    assert "Traceback" not in err and out, err
    return code, json.loads(out)


def test_rerun_is_a_new_job_of_the_same_spec(capsys, state, three_jobs):
    old = three_jobs[1]  # failing
    code, new = rerun(capsys, state, old["id"][:-1])
    assert code == 1  # the new job failed too
    assert new["id"] != old["id"]
    assert new["rerun_of"] == old["id"]
    assert new["trigger"] == {"event": "rerun", "of": old["id"]}
    for key in ("spec_id", "pipeline", "pipeline_path", "repository", "source", "commit", "ref", "dirty"):
        assert new[key] == old[key], key
    assert new["status"] == "failed"
    assert task(new, "boom")["exit_code"] == 3
    assert show(capsys, state, new["id"]) == new
    assert show(capsys, state, old["id"]) == old  # the old job is untouched

    code, listed, _ = cli(capsys, "jobs", "list", "--state-dir", str(state), "--format", "json", "--limit", "1")
    assert json.loads(listed)[0]["id"] == new["id"]  # newest first

    code, again = rerun(capsys, state, three_jobs[0]["id"])
    assert (code, again["status"], again["rerun_of"]) == (0, "succeeded", three_jobs[0]["id"])


def test_rerun_text_output_is_the_summary(capsys, state, three_jobs):
    code, out, err = cli(capsys, "jobs", "rerun", three_jobs[1]["id"], "--state-dir", str(state))
    assert code == 1
    new_id = out.split()[1]
    assert new_id != three_jobs[1]["id"]
    assert f"see why: fasttrack-gitops jobs logs {new_id} boom" in out
    assert "Traceback" not in err


def test_rerun_runs_with_the_parameter_values_of_the_job_it_repeats(tmp_path, state, capsys):
    tuned = HELLO.replace("tasks:", "params:\n  - name: lr\n    default: 0.1\ntasks:")
    repo = make_repo(tmp_path, {"tuned.yaml": tuned})
    code, old = run_job(capsys, repo, "tuned.yaml", state, "--param", "lr=0.7")
    assert code == 0

    code, out, err = cli(capsys, "jobs", "rerun", old["id"], "--state-dir", str(state), "--format", "json")

    assert code == 0, err
    new = json.loads(out)
    assert new["rerun_of"] == old["id"]
    assert [(p["name"], p["value"], p["overridden"]) for p in new["params"]] == [("lr", 0.7, True)]


FLAKY_CHAIN = """\
version: "26.4.4"
name: chain
tasks:
  - name: a
    command: |
      echo run >> {a_runs}
      echo from-a > "$PIPELINE_OUTPUT_ROOT/out.txt"
      echo a done
  - name: b
    dependencies: [a]
    command: |
      echo "b read: $(cat "$PIPELINE_INPUT1/out.txt")"
      if [ -f {counter} ]; then echo b passes; else touch {counter}; echo b fails; exit 1; fi
"""


@pytest.fixture
def chain(tmp_path, state, capsys):
    """A job where a succeeded and b (after a) failed; b passes when run again. (record, a's run log)."""
    a_runs = tmp_path / "a-runs"
    repo = make_repo(tmp_path, {"chain.yaml": FLAKY_CHAIN.format(a_runs=a_runs, counter=tmp_path / "counter")})
    code, old = run_job(capsys, repo, "chain.yaml", state)
    assert code == 1
    assert [(t["name"], t["status"]) for t in old["tasks"]] == [("a", "succeeded"), ("b", "failed")]
    assert logs(capsys, state, old["id"], "b")[1] == "b read: from-a\nb fails\n"
    return old, a_runs


def test_rerun_exit_code_follows_the_new_job(capsys, state, chain):
    old, a_runs = chain
    code, new = rerun(capsys, state, old["id"])
    assert (code, new["status"]) == (0, "succeeded")
    assert len(task(new, "a")["attempts"]) == 1  # a full re-run runs a again
    assert a_runs.read_text() == "run\nrun\n"


def test_rerun_failed_only_reuses_what_succeeded(capsys, state, chain):
    old, a_runs = chain
    code, new = rerun(capsys, state, old["id"], "--failed-only")
    assert code == 0
    assert new["status"] == "succeeded"
    assert new["rerun_of"] == old["id"] and new["spec_id"] == old["spec_id"] and new["commit"] == old["commit"]
    a, b = task(new, "a"), task(new, "b")
    assert (a["status"], a["attempts"], a["reason"]) == ("reused", [], f"reused from job {old['id']}")
    assert a_runs.read_text() == "run\n"  # a did not run again
    assert (b["status"], len(b["attempts"])) == ("succeeded", 1)
    # b saw the outputs a wrote in the old job
    assert logs(capsys, state, new["id"], "b") == (0, "b read: from-a\nb passes\n", "")
    # a reused task has no log; asking for it is not an error
    code, out, err = logs(capsys, state, new["id"], "a")
    assert (code, out) == (0, "")
    assert "'a' has not run" in err and "reused from job" in err
    assert show(capsys, state, new["id"]) == new


def test_rerun_failed_only_of_a_succeeded_job_runs_nothing(capsys, state, chain):
    old, a_runs = chain
    _, middle = rerun(capsys, state, old["id"], "--failed-only")
    code, new = rerun(capsys, state, middle["id"], "--failed-only")
    assert (code, new["status"]) == (0, "succeeded")
    assert all(t["attempts"] == [] and t["reason"] == f"reused from job {middle['id']}" for t in new["tasks"])
    assert a_runs.read_text() == "run\n"


SCRIPTED = """\
version: "26.4.4"
name: scripted
tasks:
  - name: show-version
    command: sh version.sh
"""


@pytest.mark.parametrize("drop_tree_cache", [False, True], ids=["cached-tree", "no-tree-cache"])
def test_rerun_of_a_commit_reads_the_commit_not_the_working_tree(tmp_path, state, capsys, drop_tree_cache):
    repo = make_repo(tmp_path, {"scripted.yaml": SCRIPTED, "version.sh": "echo version one\n"})
    code, old = run_job(capsys, repo, "scripted.yaml", state)
    assert code == 0 and old["source"] == "commit" and not old["dirty"]
    # The repository moves on: a new commit, and uncommitted changes on top.
    commit(
        repo, {"version.sh": "echo version two\n", "scripted.yaml": SCRIPTED.replace("sh version.sh", "exit 9")}, "v2"
    )
    (repo / "version.sh").write_text("echo version three\n")
    (repo / "scripted.yaml").write_text("not: [a pipeline")
    if drop_tree_cache:
        shutil.rmtree(state / "trees")
    code, new = rerun(capsys, state, old["id"])
    assert (code, new["status"]) == (0, "succeeded")
    assert new["commit"] == old["commit"] and new["spec_id"] == old["spec_id"]
    assert logs(capsys, state, new["id"], "show-version") == (0, "version one\n", "")


@pytest.mark.parametrize("drop_tree_cache", [False, True], ids=["cached-tree", "no-tree-cache"])
def test_rerun_of_a_worktree_job_reads_its_snapshot(tmp_path, state, capsys, drop_tree_cache):
    repo = make_repo(tmp_path, {"scripted.yaml": SCRIPTED, "version.sh": "echo version one\n"})
    (repo / "version.sh").write_text("echo uncommitted\n")
    code, old = run_job(capsys, repo, "scripted.yaml", state, "--worktree")
    assert code == 0 and old["source"] == "worktree" and old["dirty"]
    (repo / "version.sh").write_text("echo changed later\n")
    if drop_tree_cache:
        shutil.rmtree(state / "trees")
    code, new = rerun(capsys, state, old["id"])
    assert (code, new["source"], new["dirty"]) == (0, "worktree", True)
    assert logs(capsys, state, new["id"], "show-version") == (0, "uncommitted\n", "")
