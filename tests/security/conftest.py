"""The security tests (SECURITY.md) use the other folders' fixtures: a real repository and `serve` as a real
process (daemon), the Backend.AI emulator (engine/backendai), a simulated Actions runner and the contract-checking
GitHub server (ci)."""

from ci.conftest import github, runner  # noqa: F401 (fixtures, shared)
from daemon.conftest import source_repo  # noqa: F401
from daemon.recovery_test import daemon, marks  # noqa: F401
from engine.backendai.conftest import emulator, make_client, sleeps  # noqa: F401
