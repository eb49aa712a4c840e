"""How the daemon notices commits in a local repository, and turns any two views of a repository's refs into pushes.

`watch_repository` watches a clone's git folder (refs/, packed-refs, HEAD)
and reacts within a fraction of a second of a commit; `branch_moves`
compares the refs seen before with the refs seen now, for the watcher and
the poller alike, and gives the same `Push` records a webhook gives, so the
trigger rules cannot tell the sources apart. Remote repositories and their
mirrors are sources.py.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path

from fasttrack_gitops.core.events import ZERO_COMMIT, Push

log = logging.getLogger(__name__)


# -- what moved --------------------------------------------------------------------------------------------------


def branch_moves(
    old: Mapping[str, str],
    new: Mapping[str, str],
    repository: str,
    *,
    sender: str,
    is_ancestor: Callable[[str, str], bool],
    default_branch: str | None = None,
) -> list[Push]:
    """The Push records that turn the ref snapshot old into new, sorted by ref.

    A new ref comes from ZERO_COMMIT, a deleted one goes to it, and a move
    is forced when the new commit does not descend from the old one
    (is_ancestor(old, new) is asked only for moves; the caller answers it
    from git, e.g. gitrepo.is_ancestor on the mirror).
    """
    pushes = []
    for ref in sorted(set(old) | set(new)):
        before, after = old.get(ref, ZERO_COMMIT), new.get(ref, ZERO_COMMIT)
        if before == after:
            continue
        forced = before != ZERO_COMMIT and after != ZERO_COMMIT and not is_ancestor(before, after)
        pushes.append(
            Push(
                repository=repository,
                ref=ref,
                before=before,
                after=after,
                forced=forced,
                default_branch=default_branch,
                sender=sender,
            )
        )
    return pushes


# -- local repositories ------------------------------------------------------------------------------------------

_POLL_SECONDS = 1.0  # how often a missing repository is looked for again, and the watcher checks it still exists
_NOT_REFS = frozenset({"objects", "logs", "hooks", "info", "lfs", "modules"})  # churn, or other repositories


async def watch_repository(
    path: Path,
    on_change: Callable[[], Awaitable[None] | None],
    *,
    stop: asyncio.Event,
    debounce_ms: int = 50,
    on_idle: Callable[[], None] | None = None,
) -> None:
    """Call on_change() after each batch of ref changes (a commit, a branch made or moved) in the repository at path.

    Watches the git folder's refs/, packed-refs and HEAD (following a
    linked work tree's `.git` file), ignoring object writes and lock files,
    and reacts within debounce_ms of the last change. Returns when stop is
    set. A repository that is missing or disappears is looked for again
    every second, with a warning; when it is back (or was replaced, say by
    `rm -rf` and a new clone), on_change() is called once, as its refs may
    have changed meanwhile. An on_change() that raises is logged, and
    watching goes on.

    on_idle(), when given, says the watcher has caught up: it is called
    once the OS watches are in place (at the start, and whenever a
    repository is watched anew), and after each batch of file changes,
    handled or ignored. Whatever happens to the repository after the first
    call is seen. Tests wait for it instead of sleeping, and for the next
    one to know a change was looked at (and, say, found to move no ref).
    """
    warned = False  # the missing-repository warning, once per absence
    resumed = False  # watching again after a gap: commits may have come meanwhile
    while not stop.is_set():
        roots = _git_folders(Path(path))
        if roots is None:
            if not warned:
                log.warning("the repository %s is missing (or no git repository); looking again every second", path)
                warned = True
            resumed = True
            await _wait(stop, _POLL_SECONDS)
            continue
        if warned:
            log.warning("the repository %s is back; watching it again", path)
            warned = False
        if resumed:
            await _call(on_change, path)
        try:
            await _watch_folders(Path(path), roots, on_change, stop, debounce_ms, on_idle)
        except (OSError, RuntimeError) as e:  # the folder went away under the watcher
            log.warning("watching %s stopped (%s); looking again every second", path, e)
            await _wait(stop, _POLL_SECONDS)
        resumed = True


async def _watch_folders(
    path: Path,
    roots: list[Path],
    on_change: Callable[[], Awaitable[None] | None],
    stop: asyncio.Event,
    debounce_ms: int,
    on_idle: Callable[[], None] | None,
) -> None:
    """Call on_change() per batch of ref changes in roots, until stop is set or path's git folders are not roots."""
    from watchfiles import awatch  # imported here: only `serve` with a local repository needs it

    is_ref_change = _ref_filter(roots)
    halt = threading.Event()  # awatch sets its stop event when cancelled: never hand it the caller's
    relay = asyncio.ensure_future(_relay(stop, halt))
    # Runs once this task first waits, which awatch does only after its watcher has set the OS watches up
    # (should that fail, the finally below cancels it before it runs).
    watching = asyncio.get_running_loop().call_soon(on_idle) if on_idle is not None else None
    try:
        async for changes in awatch(
            *roots,
            watch_filter=None,  # every batch comes here, filtered below, so that each one ends with on_idle
            debounce=max(1, debounce_ms),
            step=max(1, min(50, debounce_ms)),
            stop_event=halt,
            rust_timeout=int(_POLL_SECONDS * 1000),
            yield_on_timeout=True,
        ):
            if _torn_down(changes, roots) or _git_folders(path) != roots:
                return  # deleted, replaced (rm -rf; git clone), or now another git folder: look again
            if any(is_ref_change(change, changed) for change, changed in changes):
                await _call(on_change, path)
            if changes and on_idle is not None:
                on_idle()
    finally:
        if watching is not None:
            watching.cancel()
        halt.set()
        relay.cancel()


def _git_folders(path: Path) -> list[Path] | None:
    """The folders holding the repository's refs and HEAD; None when path is no repository (now).

    A work tree's `.git` folder; a linked work tree's or submodule's `.git`
    file leads to its git folder, and the shared one (`commondir`) holds
    the branches; a bare repository is its own git folder.
    """
    dotgit = path / ".git"
    try:
        if dotgit.is_dir():
            return [dotgit.resolve()]
        if dotgit.is_file():
            line = dotgit.read_text(encoding="utf-8").strip()
            if not line.startswith("gitdir:"):
                return None
            gitdir = (path / line[len("gitdir:") :].strip()).resolve()
            if not gitdir.is_dir():
                return None
            common_file = gitdir / "commondir"
            if common_file.is_file():
                common = (gitdir / common_file.read_text(encoding="utf-8").strip()).resolve()
                return [common] if gitdir.is_relative_to(common) else [gitdir, common]
            return [gitdir]
        if (path / "HEAD").is_file() and (path / "refs").is_dir():
            return [path.resolve()]
    except OSError:
        return None
    return None


def _torn_down(changes: Iterable[tuple[object, str]], roots: Sequence[Path]) -> bool:
    """Whether a batch deleted a git folder's HEAD or refs/, which git never does: the repository went away.

    Its OS watches went with it, even when a new repository appears under
    the same name at once (which may even get the same inode numbers).
    """
    from watchfiles import Change

    gone = {Path(changed) for change, changed in changes if change == Change.deleted}
    return any(root in gone or root / "HEAD" in gone or root / "refs" in gone for root in roots)


def _ref_filter(roots: Sequence[Path]) -> Callable[[object, str], bool]:
    """A test of one (change, path) watchfiles reports: HEAD, packed-refs or under refs/; not objects, logs, *.lock."""

    def is_ref_change(_change: object, changed: str) -> bool:
        where = Path(changed)
        if where.name.endswith(".lock"):
            return False
        for root in roots:
            if where.is_relative_to(root):
                parts = where.relative_to(root).parts
                if not parts or parts[0] in _NOT_REFS:
                    return False
                return where.name in ("HEAD", "packed-refs") or "refs" in parts
        return False

    return is_ref_change


async def _call(on_change: Callable[[], Awaitable[None] | None], path: Path) -> None:
    """on_change(), awaited when it is a coroutine; its failure is logged, not raised into the watcher."""
    try:
        result = on_change()
        if inspect.isawaitable(result):
            await result
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("handling a change in %s failed", path)


async def _relay(stop: asyncio.Event, halt: threading.Event) -> None:
    await stop.wait()
    halt.set()


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    """Sleep, but wake as soon as stop is set."""
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except asyncio.TimeoutError:
        pass
