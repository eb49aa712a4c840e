"""The chaos campaign's driver (issue 16, item 1): commits pushed at a real daemon while its world misbehaves.

`Campaign(root, contracts, seed=, commits=).run()` makes 3 real git
repositories (each with two pipelines: `train`, prepare -> train, and `lint`,
one task), a real `fasttrack-gitops serve` process (executor `backendai`, or
`local`; the first repository is also watched, so its commits come by
webhook and by the watcher), the Backend.AI manager emulator in this process (restartable on its
port, tests/engine/backendai/emulator.py) and the contract-checking GitHub and
Slack servers of tests/engine/reporters. It then makes `commits` commits, each
to a repository the seeded random generator picks, and delivers each push as a
signed webhook (a push the daemon could not take, because it was down, is
redelivered after it is back with the same delivery id, as GitHub's
"Redeliver" does). Before each commit it may inject one fault (faults.py):
`kill -9` of the daemon (restarted a few commits later), a manager restart,
GitHub answering 502 or 429 with Retry-After for a while, Slack holding its
answers past the client's timeout for a while, or the manager's event streams
cut. Everything is loopback and bounded: commits, fault count and each wait.
The manager, the repositories, pipelines and fault kinds come from the
`cluster` (tests/chaos/cluster.py: the emulator; the real 23.09 manager is
tests/integration/chaos_cluster.py).

At the end every fault is lifted, the daemon is started if it is down, every
owed delivery redelivered, and the end state is awaited (polls with
deadlines, never sleeps that guess), then the daemon is stopped (SIGTERM) and
`Counts` (counts.py) reads what happened from the store, the emulator, the
fake GitHub and Slack and the marker files the tasks write. Which manager
state survives a restart, and why: all of it (sessions and folders), because
a real manager keeps them in its database and its agents keep running the
sessions while it is down; what goes is its listening port and every open
connection, event streams included.
"""

from __future__ import annotations

import json
import os
import random
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from chaos.cluster import EmulatorCluster
from chaos.faults import Faults
from conftest import git
from daemon.conftest import free_port, github_headers, push_payload
from daemon.recovery_test import Served
from engine.reporters.github_test import PLAIN_TOKEN, Clock, FakeGitHub
from engine.reporters.slack_test import TOKEN as SLACK_TOKEN
from engine.reporters.slack_test import FakeSlack

from fasttrack_gitops.core.job import JobStatus
from fasttrack_gitops.engine.state.store import Store

ENDED = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.INVALID)
SETTLE = 240.0  # seconds the end state may take to settle after the last fault (a loaded 2-core machine)


@dataclass
class Pushed:
    """One commit and its push webhook: delivered once the daemon answered 2xx."""

    repository: str
    round: int
    before: str
    after: str
    delivery: str
    delivered: bool = False


@dataclass
class World:
    """Everything the campaign runs against, for the counts to read."""

    root: Path
    repos: dict[str, Path]
    marks: Path
    cluster: EmulatorCluster  # or any object with its interface (tests/integration/chaos_cluster.py)
    github: FakeGitHub
    slack: FakeSlack
    daemon: Served
    executor: str
    pipelines: dict[str, tuple[str, ...]]
    pushes: list[Pushed] = field(default_factory=list)

    @property
    def state(self) -> Path:
        return self.daemon.state

    def views(self) -> list:
        if not (self.state / "state.db").exists():
            return []
        with Store(self.state) as store:
            return store.list_jobs(limit=0)


def pipeline_text(repository: str, name: str, round_: int, marks: Path, executor: str, cluster=None) -> str:
    """A pipeline whose every task appends '<round> <session or pid>' to its marker file, then naps a little.

    On a cluster whose tasks cannot reach this machine's files (the real stack's sandbox), a task only
    echoes and naps: the sessions on the manager are then the only witness of what ran.
    """
    cluster = cluster or EmulatorCluster()
    image = "".join(f"    {line}\n" for line in cluster.task_keys) if executor == "backendai" else ""
    tasks = []
    previous = None
    for task in cluster.pipelines[name]:
        runs = marks / f"{repository.replace('/', '_')}.{name}.{task}.runs"
        who = "${BACKENDAI_SESSION_ID:-$$}"
        command = f'echo "$ROUND {who}" >> {runs}; sleep 0.4' if cluster.marks else 'echo "$ROUND"; sleep 1'
        tasks.append(
            f"  - name: {task}\n"
            + (f"    dependencies: [{previous}]\n" if previous else "")
            + f"    command: '{command}'\n"
            + "    retry: {max_attempts: 3}\n"
            + image
        )
        previous = task
    notify = '  slack: {channel: "#ml-pipelines", on: [always]}\n' if name == "train" else ""
    return (
        f'version: "26.4.4"\nname: {name}\n'
        + (f"notify:\n{notify}" if notify else "")
        + f'environment:\n  envs: {{ROUND: "{round_}"}}\n'
        + "tasks:\n"
        + "".join(tasks)
    )


class Campaign:
    def __init__(
        self, root: Path, contracts: Path, *, seed: int, commits: int, executor: str = "backendai", cluster=None
    ):
        self.root, self.contracts, self.seed, self.commits, self.executor = root, contracts, seed, commits, executor
        self.cluster = cluster or EmulatorCluster()  # not entered yet: run() does
        self.rng = random.Random(seed)
        self.log: list[str] = []  # what the campaign did, in order (printed with the counts)
        self.injected: dict[str, int] = {}  # faults injected, by kind
        self.started = time.monotonic()

    def say(self, text: str) -> None:
        line = f"{time.monotonic() - self.started:7.2f}s {text}"
        self.log.append(line)
        if os.environ.get("FTG_CHAOS_VERBOSE"):
            print(line, flush=True)

    # -- the run ---------------------------------------------------------------------------------
    def run(self):
        """Set everything up, push, inject faults, settle, stop; the Counts."""
        from chaos.counts import Counts

        self.started = time.monotonic()
        contracts = self.contracts
        github = FakeGitHub(json.loads((contracts / "github-rest.json").read_text()), Clock())
        slack = FakeSlack(contracts)
        with self.cluster as cluster, github.server.serving(), slack.server.serving():
            world = self._world(cluster, github, slack)
            try:
                self._campaign(world)
                counts = Counts.read(
                    world, seed=self.seed, wall=time.monotonic() - self.started, faults=self.injected, log=self.log
                )
            finally:
                world.daemon.stop()
        return counts

    def _world(self, cluster, github: FakeGitHub, slack: FakeSlack) -> World:
        marks = self.root / "marks"
        marks.mkdir(parents=True)
        repos = {}
        for name in cluster.repositories:
            repo = self.root / name.replace("/", "_")
            repo.mkdir()
            git(repo, "init", "-q", "-b", "main")
            for pipeline in cluster.pipelines:  # round 0: the first commit, made before the daemon starts (no job)
                text = pipeline_text(name, pipeline, 0, marks, self.executor, cluster)
                (repo / "pipelines").mkdir(exist_ok=True)
                (repo / "pipelines" / f"{pipeline}.yaml").write_text(text)
            git(repo, "add", "-A")
            git(repo, "commit", "-q", "-m", "round 0")
            repos[name] = repo
        port = free_port()
        config = self.root / "ftg.yaml"
        config.write_text(self._config(repos, port, github, slack, cluster))
        env = {
            **os.environ,
            "FTG_TEST_WEBHOOK_SECRET": "test-webhook-secret-value",
            "FTG_TEST_GH_TOKEN": PLAIN_TOKEN,
            "FTG_TEST_SLACK_TOKEN": SLACK_TOKEN,
            "FTG_TEST_BACKEND_ACCESS_KEY": cluster.access_key,
            "FTG_TEST_BACKEND_SECRET_KEY": cluster.secret_key,
            "FTG_BWRAP": "0",
        }
        daemon = Served(config, port, self.root / "daemon.log", env)
        return World(self.root, repos, marks, cluster, github, slack, daemon, self.executor, dict(cluster.pipelines))

    def _config(self, repos: dict[str, Path], port: int, github: FakeGitHub, slack: FakeSlack, cluster) -> str:
        # The first repository is also watched (a local clone): its commits reach the daemon twice, by webhook
        # and by the watcher, and must still make one job each.
        listed = "".join(
            f"  - {{name: {name}, url: {path}, provider: github, branches: [main], watch: {str(i == 0).lower()}}}\n"
            for i, (name, path) in enumerate(repos.items())
        )
        return (
            textwrap.dedent(f"""\
            state_dir: {self.root / "state"}
            listen: 127.0.0.1:{port}
            executor: {self.executor}
            shutdown_grace: 5s
            max_running_jobs: 6
            github:
              webhook_secret_env: FTG_TEST_WEBHOOK_SECRET
              token_env: FTG_TEST_GH_TOKEN
              api_url: {github.url}
            slack:
              bot_token_env: FTG_TEST_SLACK_TOKEN
              default_channel: "#ml-pipelines"
              api_url: {slack.api_url}
            backendai:
              endpoint: {cluster.endpoint}
              access_key_env: FTG_TEST_BACKEND_ACCESS_KEY
              secret_key_env: FTG_TEST_BACKEND_SECRET_KEY
            repositories:
            """)
            + listed
        )

    def _campaign(self, world: World) -> None:
        faults = Faults(world, self.rng, self.say, self.commits, kinds=world.cluster.kinds)
        world.daemon.start()
        self.say(
            f"seed {self.seed}: {self.commits} commits to {len(world.repos)} repositories, executor {self.executor}"
        )
        for round_ in range(1, self.commits + 1):
            faults.maybe(round_)
            pushed = self._commit(world, round_)
            self._deliver(world, pushed)
            time.sleep(self.rng.uniform(0.1, 1.0))  # commits spread over the faults' windows
        faults.lift_all()
        self.injected = faults.injected
        for pushed in world.pushes:  # GitHub's "Redeliver" of what the daemon could not take while it was down
            if not pushed.delivered:
                self._deliver(world, pushed, must=True)
        self._settle(world)
        self.say("settled; stopping the daemon (SIGTERM)")
        code = world.daemon.terminate(timeout=60)
        self.say(f"the daemon exited with {code}")

    def _commit(self, world: World, round_: int) -> Pushed:
        name = self.rng.choice(list(world.repos))
        repo = world.repos[name]
        before = git(repo, "rev-parse", "HEAD").strip()
        for pipeline in world.pipelines:  # one commit changes every pipeline: each selects its own job
            (repo / "pipelines" / f"{pipeline}.yaml").write_text(
                pipeline_text(name, pipeline, round_, world.marks, self.executor, world.cluster)
            )
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", f"round {round_}")
        after = git(repo, "rev-parse", "HEAD").strip()
        pushed = Pushed(name, round_, before, after, f"chaos-{self.seed}-{round_}")
        world.pushes.append(pushed)
        return pushed

    def _deliver(self, world: World, pushed: Pushed, *, must: bool = False) -> None:
        """POST the signed push webhook; a refused or unanswered one stays owed (must: retry until taken)."""
        data = push_payload(self.contracts, ref="refs/heads/main", before=pushed.before, after=pushed.after)
        data["repository"]["full_name"] = pushed.repository
        body = json.dumps(data).encode()
        headers = github_headers(body, "push", pushed.delivery)
        deadline = time.monotonic() + SETTLE
        while True:
            try:
                answer = httpx.post(world.daemon.url + "/webhooks/github", content=body, headers=headers, timeout=30)
                if answer.is_success:
                    pushed.delivered = True
                    return
                self.say(f"round {pushed.round}: the webhook was answered {answer.status_code}: {answer.text[:200]}")
            except httpx.TransportError as e:
                self.say(f"round {pushed.round}: the webhook found no daemon ({type(e).__name__})")
            if not must or time.monotonic() > deadline:
                return
            time.sleep(0.5)

    def _settle(self, world: World) -> None:
        """Wait until every push has its jobs, every job ended and every report went out."""
        expected = len(world.pushes) * len(world.pipelines)
        deadline = time.monotonic() + SETTLE
        while True:
            views = [v for v in world.views() if v.job.trigger.get("event") == "push"]
            ended = [v for v in views if v.status in ENDED]
            owed = _owed(world.state)
            checks = [r for r in world.github.check_runs.values() if r.get("status") == "completed"]
            if len(views) >= expected and len(ended) == len(views) and not owed and len(checks) >= len(views):
                return
            if time.monotonic() > deadline:
                self.say(
                    f"not settled after {SETTLE:g}s: {len(views)}/{expected} jobs, {len(ended)} ended, "
                    f"owed {owed}, {len(checks)} checks completed"
                )
                return
            time.sleep(0.25)


def _owed(state: Path) -> dict[str, int]:
    from fasttrack_gitops.engine.state.outbox import Outbox

    if not (state / "state.db").exists():
        return {}
    with Store(state) as store:
        return Outbox(store).pending()
