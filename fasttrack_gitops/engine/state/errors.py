"""What can go wrong with the state folder and database, classed by who must act (see core/errors.py)."""

from __future__ import annotations

from fasttrack_gitops.core.errors import FastTrackError, OperationalError, UsageError


class StoreError(FastTrackError):
    """The state folder or database cannot be used; the message says what to do. Raise one of the two kinds below."""


class StoreUnavailableError(StoreError, OperationalError):
    """The state database cannot be used now (exit 3): locked or busy past the timeout, written by a newer
    version, corrupt, a disk error; or a job's runner lock held by another process."""


class StateFolderError(StoreError, UsageError):
    """The state folder given cannot hold the state (exit 2): not a folder we can write, or its state.db
    belongs to another program; pass another --state-dir, or make it writable."""


class JobRecordError(UsageError):
    """A job, task instance or attempt that the store does not hold as asked; exit code 2.

    A job id (or prefix) that names no job or several, a task or attempt the
    job does not have, one stored twice: the caller must ask for another.
    (A StoreError is the other kind: the state folder or database cannot be used.)
    """
