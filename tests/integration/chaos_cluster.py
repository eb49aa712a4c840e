"""The real Backend.AI 23.09 manager of scripts/realstack as a chaos campaign's cluster (tests/chaos/cluster.py).

Its manager restart is the real one: `realstack.sh manager-stop` (SIGTERM to the
manager's process group, by its pid file) and `manager-start` (its own start
command, awaited until GET / answers); the agent, the storage-proxy, PostgreSQL,
Redis and etcd stay up, so sessions keep running while it is down, as in
production. Sessions are counted on the manager itself (GraphQL, every status,
TERMINATED included), by the deterministic names of the campaign's jobs. Tasks
run in the agent's bubblewrap sandbox, where the test's marker files are out of
reach: the sessions are the only witness of what ran.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

from chaos.cluster import Session

from fasttrack_gitops.engine.backendai.client import Client
from fasttrack_gitops.engine.backendai.credentials import Credentials
from fasttrack_gitops.engine.backendai.graphql import gql
from fasttrack_gitops.engine.backendai.session_spec import session_name

REALSTACK = Path(__file__).resolve().parents[2] / "scripts" / "realstack" / "realstack.sh"
LIVE = ("PENDING", "SCHEDULED", "PREPARING", "PULLING", "RUNNING")
IMAGE = "cr.backend.ai/stable/python:3.9-ubuntu20.04"  # the one image the real stack knows
STATUSES = "PENDING,SCHEDULED,PREPARING,RUNNING,RESTARTING,TERMINATING,TERMINATED,ERROR,CANCELLED"
QUERY = (
    "query($s: String, $ak: String) { compute_session_list(limit: 100, offset: 0, status: $s, access_key: $ak,"
    ' order: "-created_at") { items { name status } } }'
)


class RealCluster:
    """The running real stack (scripts/realstack-env.sh); entering it changes nothing."""

    kinds = ("kill9", "manager", "github")  # stream cuts come with the manager restart itself
    repositories = ("acme/chaos-real",)  # fixed names: the pipeline's data folder is reused run after run
    pipelines = {"train": ("train",)}
    task_keys = (f"environment: {{image: {IMAGE}}}", "resources: {cpu: 1, mem: 512m}")
    marks = False

    def __init__(self, credentials: Credentials):
        self.credentials = credentials
        self.endpoint = credentials.endpoint
        self.access_key = credentials.access_key
        self.secret_key = credentials.secret_key.reveal()
        self.restarts: list[str] = []  # what each manager stop/start printed, for a failure's message
        self.live_at_stop: list[list[Session]] = []  # per manager stop: the campaign's sessions not ended yet

    def __enter__(self) -> RealCluster:
        return self

    def __exit__(self, *exc) -> None:
        self.start_serving()  # whatever happened, the manager is up for the next test

    def _realstack(self, action: str) -> None:
        done = subprocess.run(["bash", str(REALSTACK), action], capture_output=True, text=True, timeout=180)
        self.restarts.append(f"{action}: exit {done.returncode}: {done.stderr.strip()}")
        assert done.returncode == 0, f"realstack.sh {action} failed:\n{done.stdout}\n{done.stderr}"

    def stop_serving(self) -> None:
        """Stop the manager once a session of ours is pending or running (waits up to 15 s for one)."""
        deadline = time.monotonic() + 15
        live = self._live()
        while not live and time.monotonic() < deadline:
            time.sleep(0.2)
            live = self._live()
        self.live_at_stop.append(live)
        self._realstack("manager-stop")

    def _live(self) -> list[Session]:
        # Sessions of ours ("ftg-", the newest first) waiting or running: the manager must not stop between two.
        return [s for s in self.sessions(prefixes=("ftg-",)) if s.status in LIVE]

    def start_serving(self) -> None:
        self._realstack("manager-start")  # a no-op when it runs

    def sessions(self, job_ids=(), prefixes: tuple[str, ...] = ()) -> list[Session]:
        # "ftg-<job slug>-": what every attempt's session name of these jobs begins with
        prefixes = prefixes or tuple(session_name(job, "task", 1).rsplit("-task-", 1)[0] + "-" for job in job_ids)

        async def listed():
            async with Client(self.credentials, trust_env=False, timeout=30.0) as client:
                return await gql(client, QUERY, {"s": STATUSES, "ak": self.access_key})

        items = asyncio.run(listed())["compute_session_list"]["items"]
        return [Session(i["name"], i["status"]) for i in items if i["name"].startswith(prefixes)]
