"""`held_open`: a repository opened once for several questions, the same answers, and closed at the block's end."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest
from conftest import git
from engine.gitrepo.history_test import commit

from fasttrack_gitops.core.events import Push
from fasttrack_gitops.engine.gitrepo import (
    GitError,
    has_commit,
    held_open,
    open_snapshot,
    push_changes,
    read_file,
    repository_of,
)

pytestmark = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts open files in /proc/self/fd")


def open_files() -> set[str]:
    """What this process has open now: the targets of /proc/self/fd, and the files it maps (pack indexes)."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            found.add(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            pass
    for line in Path("/proc/self/maps").read_text().splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and fields[5].startswith("/"):
            found.add(fields[5])
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


def held_by_us(top: Path) -> set[str]:
    """The files of the repository at top this process holds open."""
    return {f for f in open_files() if f.startswith(str(top))}


def test_kept_open_between_blocks_it_sees_new_commits_and_reopens_when_a_pack_comes_or_goes(repo):
    top, first, second = repo
    try:
        with held_open(keep=True):
            assert answers(top, first, second)[0]
        held = held_by_us(top)
        assert held, "the thread keeps the repository open for its next block"
        third = commit(top, "third", {"pipelines/a.yaml": "three\n"})  # a loose object and a moved ref
        with held_open(keep=True):
            assert has_commit(top, third) and read_file(open_snapshot(top, third), "pipelines/a.yaml") == b"three\n"
            assert push_changes(top, Push("acme/pipes", "refs/heads/main", second, third)) == {"pipelines/a.yaml"}
        assert held_by_us(top) == held  # the same files: not opened again
        git(top, "repack", "-a", "-d", "-q")  # the pack that held everything replaced by a new one
        with held_open(keep=True):
            assert answers(top, second, third)[0] and has_commit(top, first)
        after = held_by_us(top)
        assert after and not any(f.endswith("(deleted)") for f in after), after  # the old pack let go
    finally:
        with held_open(keep=False):  # a plain block leaves what is kept alone; closed only with the thread
            pass
    assert held_by_us(top), "kept for this thread's next keep=True block"


def test_a_kept_repository_whose_folder_was_replaced_is_opened_anew(repo, tmp_path):
    top, first, second = repo
    with held_open(keep=True):
        assert has_commit(top, first)
    shutil.rmtree(top)  # a new clone in its place: other commits, other packs
    top.mkdir()
    git(top, "init", "-q", "-b", "main")
    other = commit(top, "another history", {"pipelines/b.yaml": "b\n"})
    git(top, "gc", "-q")
    with held_open(keep=True):
        assert not has_commit(top, first) and not has_commit(top, second)  # not the old packs' answers
        assert has_commit(top, other)


def test_where_a_folder_s_repository_is_asked_once_a_block_and_anew_in_the_next(repo, tmp_path: Path):
    """repository_of() is remembered within a block only: a folder made a repository between blocks is seen."""
    plain = tmp_path / "plain"
    plain.mkdir()
    with held_open():
        assert repository_of(plain) is None
        git(plain, "init", "-q")
        assert repository_of(plain) is None  # the block's answer
    assert repository_of(plain) == (plain.resolve(), "")
    with held_open():
        assert repository_of(plain) == (plain.resolve(), "")


@pytest.mark.parametrize("midx", [False, True], ids=["no multi-pack-index", "a multi-pack-index"])
def test_a_multi_pack_index_is_looked_for_once_per_opening_not_per_object(repo, monkeypatch, midx):
    """dulwich stats `objects/pack/multi-pack-index` before every object it reads while there is none; a
    repository opened without one is told not to look (a fifth of a push burst's git time). One that has it
    still reads through it."""
    top, first, second = repo
    if midx:
        git(top, "multi-pack-index", "write")
    looked = []
    real_exists = os.path.exists

    def exists(path):
        if str(path).endswith("multi-pack-index"):
            looked.append(path)
        return real_exists(path)

    monkeypatch.setattr(os.path, "exists", exists)
    with held_open():
        found = [answers(top, first, second) for _ in range(5)]
    assert found == [(True, False, {"pipelines/a.yaml", "code/x.py"}, b"two\n")] * 5
    # when the repository was opened: our look, and dulwich's own first (it keeps an index it found)
    assert len(looked) == (2 if midx else 1), looked
