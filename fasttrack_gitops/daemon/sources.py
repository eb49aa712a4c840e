"""Where the daemon's commits come from: remote repositories fetched into local mirrors (watching.py: local ones).

A remote repository is polled by `fetch` into a bare mirror under the
state folder (blocking; the daemon runs it in a worker thread, one fetch
per mirror at a time), failures spaced out by a `Backoff`. A local
repository is watched by `watch_repository`, which reacts within a fraction
of a second of a commit. Both compare the refs they saw before with the refs
they see now, and `branch_moves` turns the difference into the same `Push`
records a webhook gives, so the trigger rules cannot tell the sources apart.

dulwich talks git (local paths, file://, https://, ssh://, git@host:path);
no `git` binary is needed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import re
import shutil
import socket
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from dulwich.client import get_transport_and_path
from dulwich.config import ConfigDict, StackedConfig
from dulwich.errors import HangupException, NotGitRepository
from dulwich.repo import Repo

from fasttrack_gitops.core.errors import OperationalError
from fasttrack_gitops.core.events import ZERO_COMMIT
from fasttrack_gitops.core.masking import masked, masked_url_credentials, url_secrets
from fasttrack_gitops.engine.gitrepo import ref_matches

log = logging.getLogger(__name__)

DEFAULT_REFSPECS = ("refs/heads/*", "refs/tags/*", "refs/pull/*/head")


# -- when to try again -------------------------------------------------------------------------------------------


@dataclass
class Backoff:
    """When to try again after failures: doubling from base up to maximum, jittered so mirrors do not fetch in step."""

    base: float
    maximum: float
    failures: int = 0

    def delay(self, rng: random.Random | None = None) -> float:
        """Seconds to wait: base * 2**failures, capped at maximum, then +-20% (never above maximum)."""
        raw = min(self.maximum, self.base * 2.0 ** min(self.failures, 64))
        return min(self.maximum, raw * (rng or random).uniform(0.8, 1.2))

    def failed(self) -> None:
        self.failures += 1

    def succeeded(self) -> None:
        self.failures = 0


# -- remote repositories into mirrors ----------------------------------------------------------------------------


class FetchError(OperationalError):
    """A fetch that failed; the message names the url (credentials masked) and what to check. Exit code 3."""


def mirror_path(state_dir: Path, name: str) -> Path:
    """<state_dir>/repos/<name, / as __>.git: one folder per repository name, whatever characters it holds.

    A name that needs more than `/` replaced (spaces, `..`, a leading dot)
    gets a short hash of the original, so two such names cannot share a folder.
    """
    readable = name.replace("/", "__")
    slug = re.sub(r"[^A-Za-z0-9._-]", "_", readable).lstrip(".")
    if slug != readable or not slug:
        slug = f"{slug or 'repo'}-{hashlib.sha256(name.encode()).hexdigest()[:10]}"
    return Path(state_dir) / "repos" / f"{slug}.git"


def fetch(url: str, mirror: Path, *, refspecs: Sequence[str] = DEFAULT_REFSPECS, timeout: float = 60) -> dict[str, str]:
    """Fetch url into the bare mirror and return its refs after the fetch: {full ref: sha}.

    The mirror is created when missing. Its refs become exactly the remote's
    refs that the patterns select (ref globs: a trailing `/*` matches any
    depth): a force-pushed branch moves, a deleted one disappears. The
    remote's HEAD is recorded as the mirror's, so `default_branch` answers
    for it. Objects already in the mirror are not fetched again. Values are
    as the remote advertises them (an annotated tag is its tag object).
    Blocking: call it in a worker thread, one fetch per mirror at a time.
    """
    shown = masked_url_credentials(url)
    repo = _open_mirror(Path(mirror), shown)
    try:
        client, path = get_transport_and_path(url, config=_transport_config(timeout))
        result = client.fetch(path, repo, determine_wants=_wanted(repo, refspecs), ref_prefix=_ref_prefixes(refspecs))
        remote = _selected(result.refs, refspecs)
        missing = [ref for ref, sha in remote.items() if sha.encode() not in repo.object_store]
        if missing:
            raise FetchError(
                f"cannot fetch {shown}: the remote did not send the commits of {', '.join(missing[:3])}; "
                "try again, or check the remote repository"
            )
        _update_refs(repo, remote)
        head = result.symrefs.get(b"HEAD")
        if head is not None:
            repo.refs.set_symbolic_ref(b"HEAD", head)
    except FetchError:
        raise
    except Exception as e:  # noqa: BLE001 - whatever the transport raises: one message, never credentials
        raise FetchError(_scrub(f"cannot {_reason(e, url, timeout)}", url)) from None
    finally:
        repo.close()
    return remote


def _open_mirror(mirror: Path, shown: str) -> Repo:
    """The mirror's Repo; created bare when missing, beside it and renamed in, so it is whole or absent."""
    try:
        if not mirror.exists():
            tmp = mirror.with_name(f"{mirror.name}.tmp-{os.getpid()}-{threading.get_ident()}")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            Repo.init_bare(str(tmp)).close()
            try:
                os.rename(tmp, mirror)
            except OSError:
                shutil.rmtree(tmp, ignore_errors=True)
                if not mirror.exists():
                    raise
        return Repo(str(mirror))
    except NotGitRepository:
        raise FetchError(
            f"cannot fetch {shown}: the mirror {mirror} is not a git repository; remove it and it is fetched again"
        ) from None
    except OSError as e:
        raise FetchError(
            f"cannot fetch {shown}: cannot write the mirror {mirror}: {e.strerror or e}; "
            "check the state folder's permissions and free space"
        ) from None


def _transport_config(timeout: float) -> StackedConfig:
    """The user's git configuration (proxies, CA files) with a network timeout and a non-interactive ssh on top."""
    ours = ConfigDict()
    ours.set((b"http",), b"timeout", f"{timeout:g}".encode())
    defaults = StackedConfig.default_backends()
    configured = os.environ.get("GIT_SSH_COMMAND") or _config_value(defaults, b"core", b"sshCommand")
    if configured:
        ours.set((b"core",), b"sshCommand", configured.encode())
    else:  # a daemon cannot answer a password prompt, and must not hang on a silent host
        ours.set((b"core",), b"sshCommand", f"ssh -o BatchMode=yes -o ConnectTimeout={max(1, round(timeout))}".encode())
    return StackedConfig([ours, *defaults])


def _config_value(configs: Sequence[ConfigDict], section: bytes, name: bytes) -> str | None:
    for config in configs:
        try:
            return config.get((section,), name).decode()
        except KeyError:
            continue
    return None


def _wanted(repo: Repo, patterns: Sequence[str]) -> Callable[..., list[bytes]]:
    """dulwich's determine_wants: the selected refs' objects that the mirror does not hold yet."""

    def determine_wants(refs: Mapping[bytes, bytes | None], depth: int | None = None) -> list[bytes]:
        shas = set(_selected(refs, patterns).values())
        return sorted(sha.encode() for sha in shas if sha.encode() not in repo.object_store)

    return determine_wants


def _ref_prefixes(patterns: Sequence[str]) -> list[bytes]:
    """What to ask a protocol-v2 server to advertise: the patterns' fixed heads, and HEAD for the default branch."""
    prefixes = {re.split(r"[*?\[]", p, maxsplit=1)[0] for p in patterns if not p.startswith("!")}
    return sorted({b"HEAD", *(p.encode() for p in prefixes)})


def _selected(refs: Mapping[bytes, bytes | None], patterns: Sequence[str]) -> dict[str, str]:
    """The advertised refs the patterns select, as text; peeled entries (`^{}`) and empty ones left out."""
    selected = {}
    for name, sha in refs.items():
        ref = name.decode(errors="replace")
        if sha and sha.decode() != ZERO_COMMIT and not ref.endswith("^{}") and ref_matches(ref, patterns):
            selected[ref] = sha.decode()
    return selected


def _update_refs(repo: Repo, remote: Mapping[str, str]) -> None:
    """Make the mirror's refs/ exactly the remote's selection: set, move and delete."""
    wanted = {ref.encode(): sha.encode() for ref, sha in remote.items()}
    for name in list(repo.refs.allkeys()):
        if name.startswith(b"refs/") and name not in wanted:
            repo.refs.remove_if_equals(name, None)
    current = repo.refs.as_dict()
    for name, sha in wanted.items():
        if current.get(name) != sha:
            repo.refs.set_if_equals(name, None, sha)


def _reason(error: BaseException, url: str, timeout: float) -> str:
    """What went wrong and what to check, in words, from whatever the transport raised."""
    shown = masked_url_credentials(url)
    chain = list(_causes(error))
    text = (
        " ".join(str(e) for e in chain)
        + " "
        + " ".join(
            line.decode(errors="replace")
            for e in chain
            if isinstance(e, HangupException)
            for line in e.stderr_lines or ()
        )
    )
    lower = text.lower()
    if isinstance(error, PermissionError):
        return f"fetch {shown}: permission denied on {error.filename or 'a file'}; check the file permissions"
    if (
        any(type(e).__name__ in ("HTTPUnauthorized", "HTTPProxyUnauthorized") for e in chain)
        or "permission denied" in lower
        or " 403 " in f" {lower} "
    ):
        return f"fetch {shown}: access denied; check the credentials (token or ssh key) for this repository"
    if "host key verification failed" in lower:
        return f"fetch {shown}: the ssh host key is unknown; add the host to known_hosts"
    if (
        any(isinstance(e, NotGitRepository) for e in chain)
        or "not found" in lower
        or "does not exist" in lower
        or "not a git repository" in lower
        or "does not appear to be a git repository" in lower
    ):
        return f"fetch {shown}: no git repository there; check the url"
    if any(isinstance(e, ConnectionRefusedError) for e in chain) or "connection refused" in lower:
        return f"reach {shown}: connection refused; check the url and the network"
    if any(isinstance(e, socket.gaierror) for e in chain) or any(
        s in lower
        for s in (
            "name or service not known",
            "name resolution",
            "nodename nor servname",
            "could not resolve hostname",
            "getaddrinfo",
        )
    ):
        return f"reach {shown}: the host name does not resolve; check the url and DNS"
    if any(isinstance(e, TimeoutError) for e in chain) or "timed out" in lower or "timeout" in lower:
        return f"reach {shown}: no answer within {timeout:g} s; check the url and the network"
    if "certificate" in lower:
        return f"reach {shown}: the server's TLS certificate is not trusted; check the url, or git's http.sslCAInfo"
    if isinstance(error, OSError) and not isinstance(error, ConnectionError):
        return f"fetch {shown}: {error.strerror or error}; check the url and the state folder"
    detail = str(error).strip() or "; ".join(
        line.decode(errors="replace").strip() for line in getattr(error, "stderr_lines", None) or ()
    )
    return f"fetch {shown}: {type(error).__name__}: {detail or 'no detail'}; check the url and the network"


def _causes(error: BaseException) -> Iterator[BaseException]:
    """error, what it was raised from, and urllib3's wrapped reason, each once."""
    seen: set[int] = set()
    todo = [error]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo.extend(x for x in (e.__cause__, e.__context__, getattr(e, "reason", None)) if isinstance(x, BaseException))


def _scrub(text: str, url: str) -> str:
    """text without the url's credentials, wherever a library repeated them (raw or percent-decoded)."""
    return masked(masked_url_credentials(text), url_secrets(url))
