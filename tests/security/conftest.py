"""The security tests (SECURITY.md) use the daemon's and the engine's test fixtures: a real repository, the
Backend.AI emulator."""

from daemon.conftest import source_repo  # noqa: F401 (a fixture, shared)
from engine.backendai.conftest import emulator, make_client, sleeps  # noqa: E402, F401 (fixtures, shared)
