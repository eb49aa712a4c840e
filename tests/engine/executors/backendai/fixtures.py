"""A Backend.AI emulator with sessions and vfolders together, and attempts to hand the `backendai` executor."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from engine.backendai.emulator import ACCESS_KEY, SECRET_KEY, Emulator
from engine.backendai.emulator_sessions import install as install_sessions
from engine.backendai.emulator_vfolders import install as install_vfolders

from fasttrack_gitops.core.pipeline.model import Task
from fasttrack_gitops.engine import datafolder
from fasttrack_gitops.engine.backendai.client import Client
from fasttrack_gitops.engine.backendai.credentials import Credentials
from fasttrack_gitops.engine.backendai.retry import RetryPolicy
from fasttrack_gitops.engine.executors.backendai.executor import BackendAIExecutor
from fasttrack_gitops.engine.executors.base import AttemptResult, AttemptSpec

JOB = "20261128-101530-3fa9c1"
TREE = "a1" * 20
FOLDER = datafolder.folder_name("/repos/demo", "demo")  # the pipeline folder of make_spec's attempts


@pytest.fixture
def cluster():
    """A 23.09 manager emulator whose batch sessions mount its vfolders (`emu.sessions`, `emu.vfolders`)."""
    with Emulator() as emu:
        install_sessions(emu, step=0.02)
        with install_vfolders(emu):
            yield emu


def make_executor(emu: Emulator, **options) -> BackendAIExecutor:
    """An executor on a fresh client (call inside the event loop); fast polling for tests."""
    client = Client(
        Credentials(emu.endpoint, ACCESS_KEY, SECRET_KEY),
        trust_env=False,
        retry=RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05),
    )
    options.setdefault("poll_interval", 0.05)
    options.setdefault("destroy_wait", 5.0)
    return BackendAIExecutor(client=client, **options)


@pytest.fixture
def make_spec(tmp_path: Path):
    """make_spec('echo hi', task='train', timeout=1) -> an AttemptSpec whose code folder holds code.txt."""
    work = tmp_path / "code"
    work.mkdir()
    (work / "code.txt").write_text("the task's code\n")

    def _make(command: str, *, task: str = "train", number: int = 1, job_id: str = JOB, **changes) -> AttemptSpec:
        task_fields = {
            key: changes.pop(key)
            for key in list(changes)
            if key in Task.__dataclass_fields__ and key not in AttemptSpec.__dataclass_fields__
        }
        task_fields.setdefault("image", "python")
        fields = {
            "job_id": job_id,
            "task": Task(name=task, command=command, **task_fields),
            "number": number,
            "workdir": work,
            "outputs": tmp_path / "data" / job_id / task / "outputs",
            "inputs": (),
            "vfroot": tmp_path / "data" / "vfroot",
            "env": {},
            "log_path": tmp_path / "logs" / job_id / task / f"{number}.log",
            "timeout": None,
            "pipeline": "demo",
            "repository": "/repos/demo",
            "code_tree": TREE,
        }
        fields.update(changes)
        return AttemptSpec(**fields)

    return _make


@dataclass
class Ran:
    result: AttemptResult
    log: str
    started: int  # how many times started() was called
    calls: dict = field(default_factory=dict)  # the client's calls made by this attempt alone


async def attempt(executor: BackendAIExecutor, spec: AttemptSpec, *, cancel: asyncio.Event | None = None) -> Ran:
    """Run one attempt; what it returned, its log, and the API calls it cost."""
    before = executor.client.calls.copy()
    count = []
    result = await executor.run(
        spec, cancel=cancel or asyncio.Event(), started=lambda handle=None, queued=False: queued or count.append(1)
    )
    calls = {key: n for key, n in (executor.client.calls - before).items() if n}
    text = spec.log_path.read_text() if spec.log_path.exists() else ""
    return Ran(result, text, len(count), calls)


def run(emu: Emulator, scenario, **options):
    """asyncio.run(scenario(executor)) with a fresh executor, closed (and its client) afterwards."""

    async def main():
        executor = make_executor(emu, **options)
        try:
            return await scenario(executor)
        finally:
            await executor.close()
            await executor.client.aclose()

    return asyncio.run(main())
