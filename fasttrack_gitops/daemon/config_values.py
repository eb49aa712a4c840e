"""Values in the daemon's configuration, judged and resolved. Pure, but for reading a secret file.

The rules for one value (an address to listen on, a repository URL, a
`${VAR}`, a path relative to the file, a secret file), and how a message
names a key, read and tested apart from the walk over the whole file
(config_resolver.py, config_secrets.py).
"""

from __future__ import annotations

import ipaddress
import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from fasttrack_gitops.core.pipeline.diagnostics import json_path

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_REFERENCE = re.compile(r"\$\$|\$\{(?P<name>[^{}]*)\}|\$\{")
_SCP_LIKE = re.compile(r"(?:[^@/:\s]+@)?[A-Za-z0-9._-]+:.+")  # git@host:owner/repo.git
_HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?")
_TOKEN_PREFIXES = ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "glpat", "xox")
MAX_SECRET_FILE = 1 << 20  # a key or token is a few kilobytes; anything bigger is the wrong file


def dotted(path: tuple) -> str:
    """('repositories', 0, 'url') -> 'repositories[0].url': how the messages name a key."""
    return json_path(path)[2:].replace(".[", "[") if path else "the configuration"


def local_path(folder: Path, text: str) -> Path:
    """A path as written in the configuration: ~ expanded; relative to the configuration's `folder`."""
    return Path(os.path.normpath(folder / Path(text).expanduser()))


def url_kind(url: str) -> str | None:
    """'local' (a path or file:// URL), 'remote' (http(s), ssh, scp-like), or None: git could not fetch it.

    Git's own rule tells an scp-like address from a path: a ':' before any '/'.
    """
    if "://" in url:
        try:
            parts = urlsplit(url)
            if parts.scheme.lower() == "file":
                return "local" if parts.path and parts.netloc in ("", "localhost") else None
            ok = parts.scheme.lower() in ("http", "https", "ssh") and bool(parts.hostname) and parts.port != 0
        except ValueError:  # a port that is not a number, an unclosed [
            return None
        return "remote" if ok else None
    if _SCP_LIKE.fullmatch(url) and "/" not in url.split(":", 1)[0]:
        return "remote"
    return "local"


def parse_listen(text: str) -> tuple[str, int]:
    """'127.0.0.1:8080' -> ('127.0.0.1', 8080); '[::1]:80' -> ('::1', 80); ':8080' -> ('0.0.0.0', 8080).

    Raises ValueError saying what is wrong.
    """
    if text.startswith("["):
        host, bracket, port = text[1:].partition("]:")
        if not bracket:
            raise ValueError("an IPv6 address is written [address]:port")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"'{host}' is not an IPv6 address") from None
    else:
        host, colon, port = text.rpartition(":")
        if not colon:
            raise ValueError("it has no port")
        if ":" in host:
            raise ValueError("an IPv6 address is written in brackets, e.g. [::1]:8080")
        if host and not _HOST.fullmatch(host):
            raise ValueError(f"'{host}' is not a host name or address")
    if not port.isdigit() or int(port) > 65535:
        raise ValueError(f"the port '{port}' is not a number from 0 to 65535")
    return host or "0.0.0.0", int(port)


def expand(text: str, environ: Mapping[str, str]) -> str:
    """Replace each ${VAR} by the variable's value and $$ by $; ValueError names a variable that is not set."""

    def one(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group("name")
        if name is None:
            raise ValueError("'${' is not closed; write ${NAME}, or $$ for a literal $")
        if not _ENV_NAME.fullmatch(name):
            raise ValueError(
                f"'${{{name}}}' does not name a variable (letters, digits and '_'); write $$ for a literal $"
            )
        if name not in environ:
            raise ValueError(f"${{{name}}} is not set in the environment; set it or write the value")
        return environ[name]

    return _REFERENCE.sub(one, text)


def looks_like_secret(name: str) -> bool:
    """Whether an *_env value looks like a token pasted in place of a variable's name (never echo it)."""
    return name.lower().startswith(_TOKEN_PREFIXES) or (
        len(name) >= 24 and any(c.islower() for c in name) and any(c.isdigit() for c in name)
    )


def read_secret_file(file: Path) -> str:
    """The secret a file holds, without surrounding white space; ValueError says why not (never what it holds).

    Only a regular file is opened: a FIFO or a device would block the start.
    """
    try:
        info = file.stat()
        if not stat.S_ISREG(info.st_mode):
            raise ValueError(f"cannot read {file}: not a regular file")
        if info.st_size > MAX_SECRET_FILE:
            raise ValueError(f"{file} is larger than 1 MiB, too large for a key or token; is it the right file?")
        raw = file.read_bytes()
    except OSError as e:
        raise ValueError(f"cannot read {file}: {e.strerror or e}") from None
    try:
        value = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ValueError(f"{file} is not UTF-8 text; is it the right file?") from None
    if not value:
        raise ValueError(f"{file} is empty; write the secret into it")
    return value
