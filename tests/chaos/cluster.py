"""The Backend.AI manager a chaos campaign runs against: the emulator here, the real 23.09 one in tests/integration.

A cluster gives the daemon its endpoint and keypair, restarts its manager
(stop_serving / start_serving), lists the sessions it created (name and
status, TERMINATED ones included) for the counts, and says which fault kinds
it can inject and how a task is written for it.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from engine.backendai.emulator import ACCESS_KEY, SECRET_KEY, Emulator
from engine.backendai.emulator_sessions import install as install_sessions
from engine.backendai.emulator_vfolders import install as install_vfolders


@dataclass(frozen=True)
class Session:
    name: str
    status: str


class EmulatorCluster:
    """The emulator in this process, restartable on its port; every fault kind applies."""

    kinds = ("kill9", "term", "manager", "github", "slack", "stream")
    repositories = ("acme/vision", "acme/speech", "acme/ranking")
    pipelines = {"train": ("prepare", "train"), "lint": ("check",)}  # pipeline -> its tasks, in order
    task_keys = ("environment: {image: python}",)  # what each task of a backendai pipeline adds
    marks = True  # tasks run on this machine's filesystem: they can append to the marker files
    access_key, secret_key = ACCESS_KEY, SECRET_KEY

    def __enter__(self) -> EmulatorCluster:
        self._stack = contextlib.ExitStack()
        self.emulator = self._stack.enter_context(Emulator(rate_limit=1_000_000))
        install_sessions(self.emulator, step=0.02)
        self._stack.enter_context(install_vfolders(self.emulator))
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    @property
    def endpoint(self) -> str:
        return self.emulator.endpoint

    def stop_serving(self) -> None:
        self.emulator.stop_serving()

    def start_serving(self) -> None:
        self.emulator.start_serving()

    def cut_streams(self, after: int) -> int:
        cut = self.emulator.cut_streams()
        self.emulator.sessions.drop_stream(after=after)  # and the next one opened, after a few events
        return cut

    def sessions(self, job_ids=()) -> list[Session]:
        """Every session it ever created (job_ids: the campaign's jobs, which a shared real manager needs)."""
        return [Session(s.name, s.status) for s in self.emulator.sessions.sessions]
