"""Which API version to send: the newest one both we and the manager know (backendai-api.md §1.4).

The manager's unauthenticated `GET /` answers `{"version": <its latest API
version>, "manager": <its package version>}`, and it accepts every version up
to its latest (`VALID_VERSIONS`) and refuses any other with 400 "Unsupported
API version." So we send the newest of ours that is not newer than its latest:
v7.20230615 to 23.09, v8.20240315 to 24.03, v9.20250722 to 25.x and later.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fasttrack_gitops.engine.backendai.errors import UnsupportedVersionError

# The versions this client speaks, oldest first; each is a version some manager release lists.
KNOWN_VERSIONS = ("v7.20230615", "v8.20240315", "v8.20240915", "v9.20250722")
# The manager release that introduced each, for messages.
RELEASES = {"v7.20230615": "23.09", "v8.20240315": "24.03", "v8.20240915": "24.09", "v9.20250722": "25.x"}

_VERSION = re.compile(r"v(\d+)\.(\d{8})")


@dataclass(frozen=True)
class ServerInfo:
    endpoint: str
    version: str  # the manager's latest API version, from GET /
    manager: str  # the manager's package version, e.g. 23.09.10
    api_version: str  # the version we send


def parse_version(text: str) -> tuple[int, str] | None:
    """v7.20230615 -> (7, "20230615"); None when it is not of that form."""
    match = _VERSION.fullmatch(text.strip()) if isinstance(text, str) else None
    return (int(match[1]), match[2]) if match else None


def choose_version(server_version: str, *, endpoint: str = "", manager: str = "") -> str:
    """The newest known version not newer than the server's latest; UnsupportedVersionError when none is."""
    where = f"the Backend.AI manager at {endpoint}" if endpoint else "the Backend.AI manager"
    which = f"{where} (manager {manager})" if manager else where
    server = parse_version(server_version)
    if server is None:
        raise UnsupportedVersionError(
            f"{which} reports API version {server_version!r}, which is not of the form vN.YYYYMMDD"
        )
    usable = [known for known in KNOWN_VERSIONS if parse_version(known) <= server]  # type: ignore[operator]  # they all parse
    if not usable:
        oldest = KNOWN_VERSIONS[0]
        raise UnsupportedVersionError(
            f"{which} speaks API {server_version}, older than any this client knows: "
            f"fasttrack-gitops needs API {oldest} (Backend.AI {RELEASES[oldest]}) or newer"
        )
    return usable[-1]
