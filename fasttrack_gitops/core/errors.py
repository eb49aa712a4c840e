"""The exceptions raised on purpose, classed by who must act; the CLI turns each into one line and an exit code.

- exit 1, `FastTrackError`: what was checked or run failed (a pipeline file
  that is not valid, a job that failed); the message says what.
- exit 2, `UsageError`: the command line or the configuration is wrong
  (a bad option, a revision or job id that names nothing, wrong keys);
  running the same command again cannot help, changing it can.
- exit 3, `OperationalError`: the command is right but what it needs failed
  (the state database locked, busy or written by a newer version, a
  repository or server that cannot be reached); retry, or fix the machine.

A topic's own error class takes the class of who must act as a base, and a
topic with both kinds has a class for each: the state store's
StoreUnavailableError (3) and StateFolderError or JobRecordError (2), git's
GitAccessError (3) and GitUsageError (2), the Backend.AI client's
ConnectionFailedError (3) and AuthError (2), ...
"""


class FastTrackError(Exception):
    """Something failed as checked or run; the message says what. Exit code 1."""

    exit_code = 1


class UsageError(FastTrackError):
    """A bad command line or configuration: the user must change what they asked. Exit code 2."""

    exit_code = 2


class OperationalError(FastTrackError):
    """The environment failed a right command (a database locked, a server down): retry or fix it. Exit code 3."""

    exit_code = 3
