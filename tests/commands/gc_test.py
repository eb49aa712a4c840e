"""`gc`: real runs in a real state folder, then what gc removes from the store and the disk, and what it keeps."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest
from commands.run_cache_test import chain, ran, run  # noqa: F401  (chain is a fixture)
from commands.run_test import clean, cli, commit, put

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the local executor runs POSIX shells")


def gc(capsys, state: Path, *args) -> tuple[int, str, str]:
    code, out, err = cli(capsys, "gc", "--state-dir", state, *args)
    clean(err)
    return code, out, err


def stored(state: Path) -> set[str]:
    with sqlite3.connect(state / "state.db") as cx:
        return {r[0] for r in cx.execute("SELECT id FROM jobs")}


def test_gc_keeps_the_newest_jobs_and_the_outputs_they_reuse(capsys, chain):  # noqa: F811
    repo, state, runs = chain
    _, first, _ = run(capsys, repo, state)
    put(repo, "tasks/report/README", "changed: only report runs again\n")
    commit(repo)
    _, second, _ = run(capsys, repo, state)
    _, third, _ = run(capsys, repo, state)  # everything reused
    ran(runs)
    assert {t["status"] for t in third["tasks"]} == {"reused"}
    ids = [first["id"], second["id"], third["id"]]

    code, out, _ = gc(capsys, state, "--keep-per-pipeline", "1", "--dry-run")
    # the third job reuses prepare and train from the first, report from the second: nothing may go
    assert code == 0 and "would remove 0 job(s)" in out
    assert f"kept job {first['id']}: job {third['id']} reuses its outputs" in out
    assert stored(state) == set(ids)

    shutil.rmtree(state / "data" / third["id"])  # a job whose files were deleted by hand...
    code, out, _ = gc(capsys, state, "--max-age", "0s", "--format", "json")
    record = json.loads(out)
    assert code == 0 and {i["name"] for i in record["items"] if i["kind"] == "job"} == set(ids)  # ...goes as well
    assert stored(state) == set()
    assert record["rows"]["jobs"] == 3 and record["rows"]["events"] > 0 and record["problems"] == []
    for job_id in ids:
        assert not (state / "data" / job_id).exists() and not (state / "logs" / job_id).exists()
    assert not list((state / "cache").glob("*/entries/*.json")), "entries pointing at removed outputs go"
    trees = list((state / "trees").iterdir())
    assert len(trees) == 4, "trees made in the last ten minutes stay: a job being planned may need them"
    for tree in trees:
        os.utime(tree, (0, 0))
    code, out, _ = gc(capsys, state, "--max-age", "0s")
    assert code == 0 and "removed 0 job(s) and 4 other item(s)" in out
    assert not list((state / "trees").iterdir()), "no kept job names a tree"
    with sqlite3.connect(state / "state.db") as cx:
        assert cx.execute("PRAGMA foreign_key_check").fetchall() == []
        assert cx.execute("PRAGMA integrity_check").fetchone() == ("ok",)

    # the cache misses cleanly afterwards: the next run runs every task again
    code, fourth, _ = run(capsys, repo, state)
    assert code == 0 and ran(runs) == ["prepare", "train", "report"]


def test_dry_run_prints_what_would_go_and_its_bytes_and_removes_nothing(capsys, chain):  # noqa: F811
    repo, state, _ = chain
    _, first, _ = run(capsys, repo, state, "--no-cache")
    _, second, _ = run(capsys, repo, state, "--no-cache")
    before = sorted(p.relative_to(state) for p in state.rglob("*") if "state.db" not in p.name)
    code, out, _ = gc(capsys, state, "--keep-per-pipeline", "1", "--dry-run")
    assert code == 0
    assert out.splitlines()[0].split() == ["WHAT", "NAME", "DETAIL", "SIZE"]
    assert any(line.startswith(f"job          {first['id']}") or first["id"] in line for line in out.splitlines())
    assert second["id"] not in out
    assert "dry run: would remove 1 job(s)" in out and "would free" in out
    after = sorted(p.relative_to(state) for p in state.rglob("*") if "state.db" not in p.name)
    assert after == before and stored(state) == {first["id"], second["id"]}

    code, out, _ = gc(capsys, state, "--keep-per-pipeline", "1")
    assert code == 0 and "removed 1 job(s)" in out and "freed" in out
    assert stored(state) == {second["id"]}
    assert (state / "data" / second["id"]).is_dir() and not (state / "data" / first["id"]).exists()


def test_gc_on_a_state_folder_that_does_not_exist_says_so_and_makes_none(capsys, tmp_path):
    missing = tmp_path / "nowhere"
    code, out, err = cli(capsys, "gc", "--state-dir", missing, "--max-age", "30d")
    clean(err)
    assert code == 2 and f"{missing} holds no fasttrack-gitops state" in err and "--state-dir" in err
    assert not missing.exists()


def test_gc_without_a_limit_or_with_a_bad_one_is_a_usage_error(capsys, tmp_path):
    code, _, err = cli(capsys, "gc", "--state-dir", tmp_path)
    clean(err)
    assert code == 2 and "gc needs a limit" in err
    code, _, err = cli(capsys, "gc", "--state-dir", tmp_path, "--max-age", "30w")
    clean(err)
    assert code == 2 and "'30w' is not a duration" in err
    code, _, err = cli(capsys, "gc", "--state-dir", tmp_path, "--keep-per-pipeline", "-1")
    clean(err)
    assert code == 2 and "-1" in err


def test_gc_removes_the_jobs_folders_in_the_backendai_data_folder(capsys, emulated_cluster, tmp_path):
    from commands.run_cache_backendai_test import PIPELINE, USE
    from commands.run_cache_backendai_test import run as run_on_backendai
    from commands.run_test import make_repo

    from fasttrack_gitops.engine import datafolder

    repo, state = tmp_path / "repo", tmp_path / "state"
    make_repo(repo, {"pipelines/pair.yaml": PIPELINE, "tasks/prepare/data.txt": "abc\n", "tasks/use/use.sh": USE})
    first = run_on_backendai(capsys, repo, state)
    put(repo, "tasks/use/use.sh", USE.replace("tr a-z A-Z", "rev"))
    commit(repo, "use: another result")
    second = run_on_backendai(capsys, repo, state)  # reuses prepare from the first job
    put(repo, "tasks/prepare/data.txt", "xyz\n")
    commit(repo, "new data: both run")
    third = run_on_backendai(capsys, repo, state)
    jobs = emulated_cluster.vfolders.directory(datafolder.folder_name(str(repo), "pair")) / "jobs"
    assert {p.name for p in jobs.iterdir()} == {first["id"], second["id"], third["id"]}

    code, out, _ = gc(capsys, state, "--keep-per-pipeline", "2", "--backendai", "--dry-run")
    assert code == 0 and "would remove 0 job(s)" in out  # the second job reads prepare in the first's folder
    code, out, _ = gc(capsys, state, "--keep-per-pipeline", "1", "--backendai", "--dry-run")
    assert code == 0 and f"jobs/{first['id']}" in out and f"jobs/{second['id']}" in out
    assert {p.name for p in jobs.iterdir()} == {first["id"], second["id"], third["id"]}
    code, out, _ = gc(capsys, state, "--keep-per-pipeline", "1", "--backendai")
    assert code == 0 and "removed 2 job(s)" in out
    assert {p.name for p in jobs.iterdir()} == {third["id"]}
    assert stored(state) == {third["id"]}


def test_gc_while_a_job_runs_never_touches_it(capsys, tmp_path):
    from commands.jobs_test import SLEEPER, kill_pid_file, make_repo, spawn_run, started_job, wait_while_running
    from commands.jobs_test import stop as stop_run

    state, pidfile = tmp_path / "state", tmp_path / "nap.pid"
    repo = make_repo(tmp_path, {"sleeper.yaml": SLEEPER.format(pidfile=pidfile)})
    runner = spawn_run(repo, "sleeper.yaml", state)
    try:
        job = started_job(state, runner, "nap")
        wait_while_running(runner, lambda: pidfile.is_file() and pidfile.read_text().strip(), "the task's pid")
        before = sorted(p.relative_to(state) for p in state.rglob("*") if job in str(p))
        code, out, _ = gc(capsys, state, "--max-age", "0s", "--keep-per-pipeline", "0")
        assert code == 0 and "removed 0 job(s)" in out and f"kept job {job}: it has not ended" in out
        assert stored(state) == {job}
        assert sorted(p.relative_to(state) for p in state.rglob("*") if job in str(p)) == before
        assert runner.poll() is None, "the run goes on"
        code, _, err = cli(capsys, "jobs", "cancel", job, "--state-dir", state)
        assert code == 0, err
        assert runner.wait(timeout=15) == 1
    finally:
        stop_run(runner)
        kill_pid_file(pidfile)
    code, out, _ = gc(capsys, state, "--max-age", "0s")  # ended now: it goes
    assert code == 0 and "removed 1 job(s)" in out and stored(state) == set()


def test_a_file_gc_cannot_remove_is_a_warning_and_the_rest_goes(capsys, chain):  # noqa: F811
    import subprocess

    repo, state, _ = chain
    _, first, _ = run(capsys, repo, state, "--no-cache")
    _, second, _ = run(capsys, repo, state, "--no-cache")
    stuck = state / "logs" / first["id"] / "prepare" / "1.log"
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", stuck], capture_output=True).returncode:
        pytest.skip("needs chattr +i (root, a file system with the immutable flag) to make a file gc cannot remove")
    try:
        code, out, err = gc(capsys, state, "--keep-per-pipeline", "1")
        assert code == 0 and "removed 1 job(s)" in out
        assert f"warning: could not remove {stuck}: Operation not permitted" in err
        assert stored(state) == {second["id"]}  # the rows went; the one file stays
        assert not (state / "data" / first["id"]).exists() and stuck.exists()
        assert not (state / "logs" / first["id"] / "train").exists()
    finally:
        subprocess.run(["chattr", "-i", stuck], check=False)
