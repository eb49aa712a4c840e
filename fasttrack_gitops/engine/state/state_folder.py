"""The state folder's layout: where the database, the runner locks, the attempt logs and the jobs' data live.

    <state dir>/state.db                          the database (store.py)
    <state dir>/runners/<job id>.lock             a job's runner lock (runner_lock.py)
    <state dir>/logs/<job id>/<task>/<n>.log      an attempt's output
    <state dir>/data/<job id>/                    a job's pipeline data folder (datafolder.py)

and which folder that is when none is given.
"""

from __future__ import annotations

import os
from pathlib import Path

from fasttrack_gitops.engine import datafolder
from fasttrack_gitops.engine.state.errors import JobRecordError
from fasttrack_gitops.engine.state.migrations import unwritable

DB_NAME = "state.db"


def default_state_dir() -> Path:
    """$FTG_STATE_DIR, else $XDG_STATE_HOME/fasttrack-gitops, else ~/.local/state/fasttrack-gitops."""
    if os.environ.get("FTG_STATE_DIR"):
        return Path(os.environ["FTG_STATE_DIR"]).expanduser()
    xdg = os.environ.get("XDG_STATE_HOME")
    if xdg and os.path.isabs(xdg):  # the XDG spec says to ignore a relative one
        return Path(xdg) / "fasttrack-gitops"
    return Path.home() / ".local" / "state" / "fasttrack-gitops"


class StateFolder:
    """The paths of one state folder; the folders a path needs are made the first time it is asked for."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._made: set[Path] = set()  # folders already created

    @property
    def db(self) -> Path:
        return self.path / DB_NAME

    def create(self) -> None:
        """Make the state folder itself, or say it cannot be one."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise unwritable(self.path, e.strerror or str(e)) from e

    def lock_path(self, job_id: str) -> Path:
        """The job's runner lock file (its folder is made by whoever takes the lock)."""
        return self.path / "runners" / f"{_component(job_id)}.lock"

    def log_path(self, job_id: str, task: str, attempt: int) -> Path:
        """Where an attempt's output goes: <state dir>/logs/<job id>/<task>/<attempt>.log (folders made)."""
        folder = self.path / "logs" / _component(job_id) / _component(task)
        self._mkdir(folder)
        return folder / f"{int(attempt)}.log"

    def data_dir(self, job_id: str) -> Path:
        """The job's pipeline data folder in the state folder (datafolder.job_folder), made if missing."""
        folder = datafolder.job_folder(self.path, _component(job_id))
        self._mkdir(folder)
        return folder

    def _mkdir(self, folder: Path) -> None:
        if folder in self._made:  # a 200-task job asks for the same folders a thousand times
            return
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise unwritable(self.path, f"{folder}: {e.strerror or e}") from e
        self._made.add(folder)


def _component(name: str) -> str:
    """A job id or task name as one path component (they are generated or schema-checked; this is a guard)."""
    if not name or "/" in name or "\0" in name or name in (".", ".."):
        raise JobRecordError(f"{name!r} cannot name a folder in the state folder")
    return name
