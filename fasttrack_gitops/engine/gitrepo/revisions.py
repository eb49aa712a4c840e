"""Revisions: what HEAD, main, v1.2, HEAD~2 or an abbreviated commit id name in a repository."""

from __future__ import annotations

import re
from pathlib import Path

from dulwich.objects import Commit, Tag
from dulwich.repo import Repo

from fasttrack_gitops.engine.gitrepo.model import GitUsageError
from fasttrack_gitops.engine.gitrepo.objects import _HEX

_REV = re.compile(r"(?P<base>.*?)(?P<ops>(?:[~^][0-9]*)*)\Z", re.S)
_BAD_REF = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//|^[/.-]|[/.]\Z|\.lock\Z|/\.")


def _resolve(repo: Repo, rev: str, where: Path) -> tuple[bytes, str]:
    """The commit id a revision names, and the ref it was read through (or rev itself).

    A revision is HEAD (or @), a branch, a tag (annotated tags are peeled),
    any ref name, a full or abbreviated (4+ hex) commit id, each followed by
    any number of ~N (N-th first-parent ancestor) and ^N (N-th parent).
    """
    match = _REV.match(rev)
    assert match is not None  # every string matches: both groups may be empty
    base, ops = match["base"], match["ops"]
    not_found = GitUsageError(f"revision '{rev}' not found in {where} (try a branch, tag or commit id)")
    if not base or _BAD_REF.search(base):
        raise not_found
    sha, ref = _resolve_name(repo, base, where)
    if sha is None:
        raise not_found
    commit = _peel_to_commit(repo, sha, rev)
    for op, digits in re.findall(r"([~^])([0-9]*)", ops):
        n = int(digits) if digits else 1
        steps, index = (n, 0) if op == "~" else (1 if n else 0, n - 1)
        for _ in range(steps):
            parents = repo[commit].parents
            if len(parents) <= index:
                raise GitUsageError(f"revision '{rev}' not found in {where}: the history has no such ancestor")
            commit = parents[index]
    return commit, (ref if not ops and ref else rev)


def _peel_to_commit(repo: Repo, sha: bytes, rev: str) -> bytes:
    """The commit sha leads to through annotated tags."""
    obj = repo[sha]
    while isinstance(obj, Tag):
        sha = obj.object[1]
        obj = repo[sha]
    if not isinstance(obj, Commit):
        raise GitUsageError(f"revision '{rev}' names a {obj.type_name.decode()}, not a commit")
    return sha


def _resolve_name(repo: Repo, name: str, where: Path) -> tuple[bytes | None, str | None]:
    """The object a revision's name part points to, and the ref read (None for an object id)."""
    if name in ("HEAD", "@"):
        chain, sha = repo.refs.follow(b"HEAD")
        if sha is None:
            raise GitUsageError(f"{where} has no commits yet (HEAD is an unborn branch); make a first commit")
        return sha, chain[-1].decode() if len(chain) > 1 else "HEAD"
    encoded = name.encode()
    if len(name) == 40 and _HEX.match(name) and encoded.lower() in repo.object_store:
        return encoded.lower(), None
    for ref in (
        name,
        f"refs/{name}",
        f"refs/tags/{name}",
        f"refs/heads/{name}",
        f"refs/remotes/{name}",
        f"refs/remotes/{name}/HEAD",
    ):
        if ref != "HEAD" and "/" not in ref and not ref.isupper():
            continue  # only refs/... and the ALL_CAPS files in the git folder (FETCH_HEAD, ORIG_HEAD)
        chain, sha = repo.refs.follow(ref.encode())
        if sha:
            return sha, chain[-1].decode()
    if 4 <= len(name) < 40 and _HEX.match(name):
        found = {sha for sha in repo.object_store.iter_prefix(encoded.lower()) if _is_committish(repo, sha)}
        if len(found) > 1:
            raise GitUsageError(
                f"revision '{name}' is ambiguous in {where}: it starts {len(found)} commit ids; give more digits"
            )
        if found:
            return found.pop(), None
    return None, None


def _is_committish(repo: Repo, sha: bytes) -> bool:
    """Whether the object is a commit, or a tag leading to one."""
    obj = repo[sha]
    while isinstance(obj, Tag):
        obj = repo[obj.object[1]]
    return isinstance(obj, Commit)
