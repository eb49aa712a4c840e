"""The exceptions the program raises on purpose; the CLI turns each into one line and an exit code."""


class FastTrackError(Exception):
    """Something the user can fix; the message says what. Exit code 1."""

    exit_code = 1


class UsageError(FastTrackError):
    """A bad command line or configuration. Exit code 2."""

    exit_code = 2
