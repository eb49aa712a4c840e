"""`held_open`: a repository opened once for several questions, the same answers, and closed at the block's end."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from conftest import git
from engine.gitrepo.history_test import commit

from fasttrack_gitops.core.events import Push
from fasttrack_gitops.engine.gitrepo import GitError, has_commit, held_open, open_snapshot, push_changes, read_file

pytestmark = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts open files in /proc/self/fd")


def open_files() -> set[str]:
    """What this process has open now (the targets of /proc/self/fd)."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            found.add(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            pass
    return found


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, str, str]:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    first = commit(repo, "first", {"pipelines/a.yaml": "one\n"})
    second = commit(repo, "second", {"pipelines/a.yaml": "two\n", "code/x.py": "x\n"})
    git(repo, "gc", "-q")  # packed: what opening a repository reads (its pack indexes) is what the block saves
    return repo, first, second


def answers(repo: Path, first: str, second: str) -> tuple:
    push = Push("acme/pipes", "refs/heads/main", first, second)
    snap = open_snapshot(repo, second)
    return (
        has_commit(repo, second),
        has_commit(repo, "0" * 39 + "1"),
        push_changes(repo, push),
        read_file(snap, "pipelines/a.yaml"),
    )


def test_answers_inside_the_block_are_the_same_and_nothing_stays_open_after_it(repo):
    top, first, second = repo
    outside = answers(top, first, second)
    before = open_files()
    with held_open():
        inside = answers(top, first, second)
        again = answers(top, first, second)  # the same repository, reused
        with held_open():  # nested: the outer block's
            nested = answers(top, first, second)
    assert inside == again == nested == outside == (True, False, {"pipelines/a.yaml", "code/x.py"}, b"two\n")
    assert {f for f in open_files() - before if str(top) in f} == set()  # every pack file closed again


def test_each_thread_holds_its_own(repo):
    """A dulwich Repo reads packs through shared file handles: two threads never share one."""
    top, first, second = repo
    results, errors = [], []

    def read() -> None:
        try:
            with held_open():
                for _ in range(20):
                    results.append(answers(top, first, second))
        except Exception as e:  # reported below, with what it was
            errors.append(e)

    threads = [threading.Thread(target=read) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == [] and len(results) == 80 and all(r == results[0] for r in results)


def test_a_folder_that_is_no_repository_is_still_an_error_inside_the_block(tmp_path):
    with held_open(), pytest.raises(GitError, match="not in a git repository"):
        has_commit(tmp_path, "0" * 40)
