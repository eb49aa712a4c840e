"""Where the daemon's commits come from: mirrors fetched from real repositories, and watched local repositories."""

from __future__ import annotations

import asyncio
import logging
import random
import shutil
import socket
import subprocess
import time
from functools import partial
from pathlib import Path

import pytest
from conftest import git

from fasttrack_gitops.core.events import ZERO_COMMIT, Push
from fasttrack_gitops.daemon import watching
from fasttrack_gitops.daemon.sources import Backoff, FetchError, fetch, mirror_path
from fasttrack_gitops.daemon.watching import branch_moves, watch_repository
from fasttrack_gitops.engine.gitrepo import default_branch, has_commit, heads, is_ancestor


def commit(repo: Path, message: str) -> str:
    """Commit a file named after the message, and return the commit id."""
    (repo / f"{message}.txt").write_text(message)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return rev_parse(repo, "HEAD")


def rev_parse(repo: Path, rev: str) -> str:
    return git(repo, "rev-parse", rev).strip()


# -- Backoff -----------------------------------------------------------------------------------------------------


def test_backoff_doubles_from_base_up_to_maximum_with_seeded_jitter():
    backoff, rng, twin = Backoff(base=2, maximum=60), random.Random(7), random.Random(7)
    for failures in range(8):
        assert backoff.failures == failures
        raw = min(60, 2 * 2**failures)  # 2, 4, 8, 16, 32, 60, 60, 60
        assert backoff.delay(rng) == pytest.approx(min(60, raw * twin.uniform(0.8, 1.2)))
        backoff.failed()


def test_backoff_jitter_stays_within_twenty_percent_and_under_the_maximum():
    rng = random.Random(1)
    delays = [Backoff(base=10, maximum=100, failures=1).delay(rng) for _ in range(500)]
    assert min(delays) >= 16 and max(delays) <= 24
    assert max(delays) - min(delays) > 4  # it does spread the mirrors out
    capped = [Backoff(base=10, maximum=100, failures=9).delay(rng) for _ in range(500)]
    assert min(capped) >= 80 and max(capped) <= 100


def test_backoff_resets_on_success_and_survives_endless_failure():
    backoff = Backoff(base=1, maximum=300, failures=10_000)
    assert backoff.delay(random.Random(0)) <= 300
    backoff.succeeded()
    assert backoff.failures == 0
    assert 0.8 <= backoff.delay(random.Random(0)) <= 1.2


# -- names and urls ----------------------------------------------------------------------------------------------


def test_mirror_path_is_readable_for_ordinary_names(tmp_path: Path):
    assert mirror_path(tmp_path, "lablup/models") == tmp_path / "repos" / "lablup__models.git"
    assert mirror_path(tmp_path, "group/sub/repo") == tmp_path / "repos" / "group__sub__repo.git"


@pytest.mark.parametrize("name", ["../../etc", "..", ".hidden/x", "a b/c", "", "owner/répo", "/abs/path"])
def test_mirror_path_stays_in_the_state_folder_for_any_name(tmp_path: Path, name: str):
    path = mirror_path(tmp_path, name)
    assert path.parent == tmp_path / "repos"
    assert path.name.endswith(".git") and not path.name.startswith(".") and "/" not in path.name
    assert path.resolve().parent == (tmp_path / "repos").resolve()  # one plain folder name, whatever it holds


def test_mirror_paths_of_odd_names_do_not_collide(tmp_path: Path):
    assert mirror_path(tmp_path, "a b/c") != mirror_path(tmp_path, "a_b/c")
    assert mirror_path(tmp_path, "a b/c") != mirror_path(tmp_path, "a?b/c")


# -- fetching into a mirror --------------------------------------------------------------------------------------


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A repository on main with a feature branch, a lightweight and an annotated tag, and a pull request head."""
    root = tmp_path / "source"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    commit(root, "first")
    git(root, "tag", "light")
    git(root, "checkout", "-q", "-b", "feature")
    commit(root, "feature-work")
    git(root, "tag", "-a", "-m", "release", "v1")
    git(root, "checkout", "-q", "main")
    commit(root, "second")
    git(root, "update-ref", "refs/pull/1/head", "feature")
    git(root, "update-ref", "refs/pull/1/merge", "main")  # GitHub's merge preview: not asked for
    return root


def remote_refs(repo: Path, *prefixes: str) -> dict[str, str]:
    """The refs git itself lists, as fetch should mirror them."""
    refs = {}
    for line in git(repo, "for-each-ref", "--format=%(refname) %(objectname)").splitlines():
        ref, sha = line.split()
        pull_head = ref.startswith("refs/pull/") and ref.endswith("/head")
        if ref.startswith(prefixes) if prefixes else ref.startswith(("refs/heads/", "refs/tags/")) or pull_head:
            refs[ref] = sha
    return refs


def stored_objects(mirror: Path) -> int:
    """Objects stored in the mirror, duplicates counted: what fetches wrote."""
    counts = dict(line.split(": ") for line in git(mirror, "count-objects", "-v").splitlines())
    return int(counts["count"]) + int(counts["in-pack"])


@pytest.fixture
def mirror(tmp_path: Path) -> Path:
    return mirror_path(tmp_path / "state", "lablup/source")


@pytest.mark.parametrize("as_url", [False, True])
def test_a_first_fetch_mirrors_branches_tags_and_pull_request_heads(source: Path, mirror: Path, as_url: bool):
    url = source.as_uri() if as_url else str(source)
    refs = fetch(url, mirror)
    assert refs == remote_refs(source)
    assert "refs/pull/1/head" in refs and "refs/pull/1/merge" not in refs
    assert heads(mirror, ["refs/**"]) == {**refs, "refs/tags/v1": rev_parse(source, "feature")}  # tag peeled
    assert default_branch(mirror) == "main"  # the remote's HEAD
    assert all(has_commit(mirror, sha) for sha in heads(mirror, ["refs/**"]).values())


def test_a_new_commit_is_fetched_and_nothing_is_fetched_twice(source: Path, mirror: Path):
    fetch(str(source), mirror)
    written = stored_objects(mirror)
    assert fetch(str(source), mirror) == remote_refs(source)
    assert stored_objects(mirror) == written  # nothing new: nothing written
    new = commit(source, "third")
    assert fetch(str(source), mirror)["refs/heads/main"] == new
    assert stored_objects(mirror) == written + 3  # the commit, its tree and the file: not the history again


def test_a_force_push_moves_the_mirrored_branch(source: Path, mirror: Path):
    old = fetch(str(source), mirror)["refs/heads/feature"]
    git(source, "checkout", "-q", "feature")
    git(source, "reset", "-q", "--hard", "main")
    new = commit(source, "rewritten")
    refs = fetch(str(source), mirror)
    assert refs["refs/heads/feature"] == new
    assert heads(mirror)["refs/heads/feature"] == new
    assert not is_ancestor(mirror, old, new)


def test_a_deleted_branch_disappears_from_the_mirror(source: Path, mirror: Path):
    fetch(str(source), mirror)
    git(source, "branch", "-q", "-D", "feature")
    git(source, "update-ref", "-d", "refs/pull/1/head")
    refs = fetch(str(source), mirror)
    assert "refs/heads/feature" not in refs and "refs/pull/1/head" not in refs
    assert set(heads(mirror, ["refs/**"])) == {"refs/heads/main", "refs/tags/light", "refs/tags/v1"}


def test_refspecs_choose_what_is_mirrored(source: Path, mirror: Path):
    fetch(str(source), mirror)
    assert fetch(str(source), mirror, refspecs=["refs/heads/*"]) == remote_refs(source, "refs/heads/")
    assert set(heads(mirror, ["refs/**"])) == {"refs/heads/main", "refs/heads/feature"}  # exactly the selection


def test_a_branch_with_a_slash_is_a_branch(source: Path, mirror: Path):
    git(source, "branch", "release/1.0", "main")
    assert "refs/heads/release/1.0" in fetch(str(source), mirror)


def test_the_remote_head_is_recorded_when_it_changes(source: Path, mirror: Path):
    fetch(str(source), mirror)
    git(source, "symbolic-ref", "HEAD", "refs/heads/feature")
    fetch(str(source), mirror)
    assert default_branch(mirror) == "feature"


def test_an_unreachable_host_is_a_fetch_error_without_the_credentials(tmp_path: Path):
    with pytest.raises(FetchError) as failure:
        fetch("https://user:secret@127.0.0.1:9/x.git", tmp_path / "m.git", timeout=2)
    message = str(failure.value)
    assert "secret" not in message and "user" not in message
    assert "https://***@127.0.0.1:9/x.git" in message
    assert "connection refused" in message and "check the url" in message
    assert failure.value.__cause__ is None and failure.value.__suppress_context__  # no traceback to leak it either


def test_a_host_that_never_answers_times_out(tmp_path: Path):
    with socket.socket() as silent:  # accepts connections (the kernel does) and never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/x.git"
        started = time.monotonic()
        with pytest.raises(FetchError, match="no answer within 0.5 s"):
            fetch(url, tmp_path / "m.git", timeout=0.5)
    # the bound is the behaviour: the timeout given is kept (urllib3 retries a few times), never the 60 s default
    assert time.monotonic() - started < 20


def test_a_path_that_is_no_repository_is_a_fetch_error(tmp_path: Path):
    with pytest.raises(FetchError, match=r"cannot fetch /nonexistent/path: .*check the url"):
        fetch("/nonexistent/path", tmp_path / "m.git")
    (tmp_path / "plain").mkdir()
    with pytest.raises(FetchError, match="no git repository there"):
        fetch((tmp_path / "plain").as_uri(), tmp_path / "m.git")


def test_a_mirror_folder_that_is_no_repository_is_a_fetch_error(source: Path, tmp_path: Path):
    (tmp_path / "junk.git").mkdir()
    (tmp_path / "junk.git" / "file").write_text("not git")
    with pytest.raises(FetchError, match="the mirror .*junk.git is not a git repository; remove it"):
        fetch(str(source), tmp_path / "junk.git")


# -- branch_moves ------------------------------------------------------------------------------------------------

A, B, C = "a" * 40, "b" * 40, "c" * 40


def ancestry(*pairs: tuple[str, str]):
    """An is_ancestor answering from a list of (ancestor, descendant) pairs, recording what it was asked."""
    asked = []

    def is_ancestor(old: str, new: str) -> bool:
        asked.append((old, new))
        return (old, new) in pairs

    is_ancestor.asked = asked
    return is_ancestor


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ({}, {"refs/heads/x": A}, [("refs/heads/x", ZERO_COMMIT, A, False)]),
        ({"refs/heads/x": A}, {}, [("refs/heads/x", A, ZERO_COMMIT, False)]),
        ({"refs/heads/x": A}, {"refs/heads/x": B}, [("refs/heads/x", A, B, False)]),  # B descends from A
        ({"refs/heads/x": B}, {"refs/heads/x": C}, [("refs/heads/x", B, C, True)]),  # C does not: rewritten
        ({"refs/heads/x": A}, {"refs/heads/x": A}, []),
        (
            {"refs/heads/z": A, "refs/heads/a": A},
            {"refs/heads/z": B, "refs/tags/v1": C},
            [
                ("refs/heads/a", A, ZERO_COMMIT, False),
                ("refs/heads/z", A, B, False),
                ("refs/tags/v1", ZERO_COMMIT, C, False),
            ],
        ),
    ],
)
def test_branch_moves(old, new, expected):
    moves = branch_moves(old, new, "o/r", sender="poll", is_ancestor=ancestry((A, B)))
    assert [(p.ref, p.before, p.after, p.forced) for p in moves] == expected
    assert all(p.repository == "o/r" and p.sender == "poll" for p in moves)


def test_branch_moves_asks_about_ancestry_only_for_moves():
    is_ancestor = ancestry((A, B))
    branch_moves(
        {"refs/heads/x": A, "refs/heads/gone": C},
        {"refs/heads/x": B, "refs/heads/new": C},
        "o/r",
        sender="watch",
        is_ancestor=is_ancestor,
        default_branch="main",
    )
    assert is_ancestor.asked == [(A, B)]


def test_branch_moves_carries_the_default_branch():
    [push] = branch_moves({}, {"refs/heads/x": A}, "o/r", sender="poll", is_ancestor=ancestry(), default_branch="main")
    assert push == Push("o/r", "refs/heads/x", ZERO_COMMIT, A, default_branch="main", sender="poll")


def test_branch_moves_between_two_fetches_of_a_real_mirror(source: Path, mirror: Path):
    before = fetch(str(source), mirror)
    new_main = commit(source, "third")
    git(source, "checkout", "-q", "feature")
    git(source, "reset", "-q", "--hard", "main~1")
    git(source, "checkout", "-q", "main")
    after = fetch(str(source), mirror)
    moves = branch_moves(before, after, "lablup/source", sender="poll", is_ancestor=partial(is_ancestor, mirror))
    assert [(p.ref, p.after, p.forced) for p in moves] == [
        ("refs/heads/feature", rev_parse(source, "main~1"), True),
        ("refs/heads/main", new_main, False),
    ]


# -- watching a local repository ---------------------------------------------------------------------------------

PATIENCE = 5.0  # how long a test waits for the watcher's next report (it needs < 1 s; a busy machine gets more)


class Watch:
    """A running watch_repository and what it reported, in order; tests wait for reports, never for a while.

    A report is ("change", the repository's HEAD commit then, or None), ("idle", None) from on_idle (caught
    up: watching, and done with every change so far), or ("missing", None) for the watcher's warning that
    the repository is gone.
    """

    def __init__(self, path: Path, on_change=None, *, until_watching: bool = True) -> None:
        self.path, self.extra, self.until_watching = path, on_change, until_watching
        self.stop = asyncio.Event()
        self.reports: list[tuple[str, str | None]] = []
        self._waited = 0  # the reports before this index were waited for already
        self._news = asyncio.Event()
        self._warnings = _MissingWarnings(lambda: self._report("missing"))

    def _report(self, kind: str, detail: str | None = None) -> None:
        self.reports.append((kind, detail))
        self._news.set()

    def on_change(self):
        self._report("change", head_of(self.path))
        if self.extra is not None:
            return self.extra()

    async def __aenter__(self) -> Watch:
        logging.getLogger(watching.__name__).addHandler(self._warnings)
        self.task = asyncio.create_task(
            watch_repository(self.path, self.on_change, stop=self.stop, on_idle=lambda: self._report("idle"))
        )
        if self.until_watching:
            await self.next("idle")  # from here on, nothing done to the repository goes unseen
        return self

    async def __aexit__(self, *exc) -> None:
        self.stop.set()
        try:
            await asyncio.wait_for(self.task, 3)  # stop ends it, promptly
        finally:
            logging.getLogger(watching.__name__).removeHandler(self._warnings)

    async def next(self, kind: str, detail: str | None = None) -> None:
        """Wait for the next report of this kind (and with this detail, when given) after those waited for."""

        async def found() -> None:
            while True:
                for i in range(self._waited, len(self.reports)):
                    if self.reports[i][0] == kind and detail in (None, self.reports[i][1]):
                        self._waited = i + 1
                        return
                self._news.clear()
                await self._news.wait()

        await asyncio.wait_for(found(), PATIENCE)

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.reports]


class _MissingWarnings(logging.Handler):
    """Calls back on the watcher's warning that a repository is missing (logged on the loop, so this runs there)."""

    def __init__(self, callback) -> None:
        super().__init__(logging.WARNING)
        self.callback = callback

    def emit(self, record: logging.LogRecord) -> None:
        if "is missing" in record.getMessage():
            self.callback()


def head_of(repo: Path) -> str | None:
    """The commit HEAD names, or None while there is none (no repository, or no commit yet)."""
    try:
        done = subprocess.run(["git", "rev-parse", "--verify", "-q", "HEAD"], cwd=repo, capture_output=True, text=True)
    except OSError:  # the folder is gone
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def new_repository(path: Path, message: str) -> str:
    """Make a repository at path with one commit; its id."""
    path.mkdir(exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    return commit(path, message)


async def in_thread(fn, *args):
    return await asyncio.to_thread(fn, *args)


@pytest.fixture
def local(tmp_path: Path) -> Path:
    root = tmp_path / "local"
    new_repository(root, "first")
    return root


def test_a_commit_calls_on_change(local: Path):
    async def main() -> None:
        async with Watch(local) as watch:
            second = await in_thread(commit, local, "second")
            await watch.next("change", second)

    asyncio.run(main())


def test_branches_made_and_moved_are_changes_too(local: Path):
    async def main() -> None:
        async with Watch(local) as watch:
            await in_thread(git, local, "branch", "topic/x")
            await watch.next("change")
            await in_thread(git, local, "update-ref", "refs/heads/topic/x", "HEAD")
            await in_thread(git, local, "tag", "-a", "-m", "t", "v1")
            await watch.next("change")
            await in_thread(git, local, "pack-refs", "--all")
            await watch.next("change")

    asyncio.run(main())


def test_object_writes_alone_are_not_changes(local: Path):
    async def main() -> list[str]:
        async with Watch(local) as watch:
            (local / "loose.txt").write_text("an object, not a commit")
            await in_thread(git, local, "hash-object", "-w", "loose.txt")
            await watch.next("idle")  # the watcher saw the object's files come, and was done with them
            return watch.kinds()

    assert "change" not in asyncio.run(main())


def test_stop_ends_the_watch_promptly(local: Path):
    async def main() -> None:
        stop, watching = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(watch_repository(local, lambda: None, stop=stop, on_idle=watching.set))
        await asyncio.wait_for(watching.wait(), PATIENCE)
        stop.set()
        await asyncio.wait_for(task, 3)  # the bound is the behaviour: stop ends it, not its next look a second on

    asyncio.run(main())
    assert not asyncio.run(_stop_is_not_touched_by_cancellation(local)).is_set()


async def _stop_is_not_touched_by_cancellation(local: Path) -> asyncio.Event:
    stop, watching = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(watch_repository(local, lambda: None, stop=stop, on_idle=watching.set))
    await asyncio.wait_for(watching.wait(), PATIENCE)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    return stop  # cancelling one watcher must not stop the daemon's others


def test_a_deleted_repository_is_waited_for_and_watched_again(local: Path):
    async def main() -> None:
        async with Watch(local) as watch:
            await in_thread(shutil.rmtree, local)
            await watch.next("missing")
            assert not watch.task.done()  # no exception: it waits for the folder
            reborn = await in_thread(new_repository, local, "reborn")
            await watch.next("change", reborn)  # back: the commits made while it was gone are news
            await watch.next("idle")  # and the new folder is watched
            after = await in_thread(commit, local, "after")
            await watch.next("change", after)

    asyncio.run(main())


def test_a_repository_replaced_at_once_is_watched_anew(local: Path):
    def replace() -> str:
        shutil.rmtree(local)
        return new_repository(local, "a new clone")

    async def main() -> None:
        async with Watch(local) as watch:
            clone = await in_thread(replace)
            await watch.next("change", clone)
            await watch.next("idle")  # the new folder is watched, not the old one's dead watches
            newer = await in_thread(commit, local, "on the new one")
            await watch.next("change", newer)

    asyncio.run(main())


def test_a_repository_missing_at_the_start_does_not_raise(tmp_path: Path):
    async def main() -> None:
        async with Watch(tmp_path / "nothing-here", until_watching=False) as watch:
            await watch.next("missing")
            assert not watch.task.done()
            first = await in_thread(new_repository, tmp_path / "nothing-here", "first")
            await watch.next("change", first)  # it kept looking, and found it

    asyncio.run(main())


def test_a_linked_work_tree_is_watched_through_its_git_file(local: Path, tmp_path: Path):
    git(local, "worktree", "add", "-q", "-b", "side", str(tmp_path / "wt"))

    async def main() -> None:
        async with Watch(tmp_path / "wt") as watch:
            side = await in_thread(commit, tmp_path / "wt", "in the work tree")
            await watch.next("change", side)

    asyncio.run(main())


def test_an_async_on_change_that_fails_does_not_end_the_watch(local: Path):
    async def failing() -> None:
        raise RuntimeError("the daemon's handler broke")

    async def main() -> None:
        async with Watch(local, on_change=failing) as watch:
            one = await in_thread(commit, local, "one")
            await watch.next("change", one)
            two = await in_thread(commit, local, "two")
            await watch.next("change", two)

    asyncio.run(main())
