"""What a 1-task local `run` imports: only what it uses (its start-up is mostly imports; bench/run_bench.py).

Each test runs the command in a process of its own, as a user does, and
reads `sys.modules` once the job has ended: everything the run imported on
its way, lazily or not. A module named below coming back on this path is a
start-up regression, and the test says which one and why it must stay out.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import git

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the local executor runs POSIX shells")

ONE_TASK = 'version: "26.4.4"\nname: one\ntasks:\n  - name: t\n    command: "true"\n'

# module (or package: its submodules too) -> why a 1-task local run must not import it
MUST_STAY_OUT = {
    # the network and server stacks: a local run sends and serves nothing
    "httpx": "the HTTP client: Backend.AI and the reporters only",
    "httpcore": "the HTTP client: Backend.AI and the reporters only",
    "anyio": "the HTTP client's async layer",
    "uvicorn": "the daemon's server",
    "starlette": "the daemon's web layer",
    "jinja2": "the console's templates",
    "watchfiles": "the daemon's config reload",
    "jwt": "GitHub App tokens: the daemon and the Action",
    "http.client": "the local deployment tasks' readiness probes only (executors/local_services.py)",
    "fasttrack_gitops.daemon": "the daemon shell",
    "fasttrack_gitops.ci": "the Action shell",
    "fasttrack_gitops.engine.backendai": "the Backend.AI client",
    "fasttrack_gitops.engine.executors.backendai": "the Backend.AI executor",
    "fasttrack_gitops.engine.executors.local_services": "deployment tasks only",
    "fasttrack_gitops.engine.reporters": "reporters: GitHub, GitLab, Slack",
    "fasttrack_gitops.engine.deliver": "the reports' outbox delivery",
    # what a run of this pipeline has no use for
    "rich": "the live table: only when stderr is a terminal (LineProgress otherwise)",
    "jsonschema": "the explaining validator: only for a file the fast one finds invalid",
    "fasttrack_gitops.engine.results": "model results: only when a task declares metrics",
    "fasttrack_gitops.core.metrics": "model results: only when a task declares metrics",
    "fasttrack_gitops.core.reports": "check and Slack texts: reporters only",
    "tomllib": "metrics files in TOML: model results only",
    # planning a repository at a commit (the daemon, the Action), not one file (engine/plan.py)
    "fasttrack_gitops.engine.plan_repo": "a repository's pipelines at a commit, planned: the daemon and the Action",
    "fasttrack_gitops.core.triggers": "which pipelines an event selects: the daemon and the Action",
    "fasttrack_gitops.core.events": "webhook events: the daemon and the Action",
    "fasttrack_gitops.core.comment_commands": "/fasttrack comments: the daemon",
    "fasttrack_gitops.core.concurrency_groups": "concurrency groups: the daemon and the Action",
    "fasttrack_gitops.engine.state.ledger": "the daemon's trigger keys and queue",
    "fasttrack_gitops.engine.gitrepo.history": "push and pull request history: the daemon and the Action",
    "dulwich.graph": "merge bases: history questions only",
    "dulwich.diff_tree": "changed paths: history questions only",
    "statistics": "a median of past durations (task_durations.py) needs no fractions, decimal and random",
    "fasttrack_gitops.engine.cache": "the task cache: only a job with a cached task (this one has none)",
    # the pipeline's checks of what this file does not have (core/pipeline/semantics.py)
    "fasttrack_gitops.core.pipeline.services": "deployment tasks' service blocks: only a file with one",
    "fasttrack_gitops.core.pipeline.cron": "on.schedule: only a file with one",
    "fasttrack_gitops.core.pipeline.results": "metrics, plots and artifacts: only a task that declares them",
}

# What the run must have imported: it planned, stored and ran the job (so an early failure cannot pass).
MUST_BE_IN = [
    "fasttrack_gitops.engine.plan",
    "fasttrack_gitops.engine.launch",
    "fasttrack_gitops.engine.executors.local",
    "fasttrack_gitops.engine.state.store",
    "dulwich.object_store",
    "jsonschema_rs",
]


def run_in_a_process(folder: Path, state: Path) -> tuple[set[str], str]:
    """sys.modules of a `fasttrack-gitops run pipeline.yaml` process once the job has ended, and its output."""
    probe = textwrap.dedent(f"""
        import json, sys
        from fasttrack_gitops.cli import main
        sys.argv = ["fasttrack-gitops", "run", "pipeline.yaml", "--state-dir", {str(state)!r}]
        code = main()
        print("MODULES=" + json.dumps(sorted(sys.modules)))
        sys.exit(code)
    """)
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "FTG_BWRAP": "0"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    line = next(line for line in done.stdout.splitlines() if line.startswith("MODULES="))
    return set(json.loads(line.removeprefix("MODULES="))), done.stdout


def unwanted(loaded: set[str]) -> dict[str, str]:
    """The loaded modules that must stay out, each with why."""
    return {
        module: why
        for module, why in MUST_STAY_OUT.items()
        if any(name == module or name.startswith(module + ".") for name in loaded)
    }


@pytest.mark.parametrize("in_git", [False, True], ids=["folder", "git-repository"])
def test_a_one_task_local_run_imports_only_what_it_uses(tmp_path, in_git):
    folder = tmp_path / "repo"
    folder.mkdir()
    (folder / "pipeline.yaml").write_text(ONE_TASK)
    if in_git:
        git(folder, "init", "-q")
        git(folder, "add", ".")
        git(folder, "commit", "-q", "-m", "one task")
    loaded, out = run_in_a_process(folder, tmp_path / "state")
    assert "succeeded" in out
    assert [m for m in MUST_BE_IN if m not in loaded] == []
    assert unwanted(loaded) == {}


def test_the_guard_sees_a_module_that_comes_back():
    """The check itself: a package's submodule counts, and a name that only starts alike does not."""
    assert unwanted({"fasttrack_gitops.engine.reporters.github", "statistics"}) == {
        "fasttrack_gitops.engine.reporters": MUST_STAY_OUT["fasttrack_gitops.engine.reporters"],
        "statistics": MUST_STAY_OUT["statistics"],
    }
    assert unwanted({"httpx_like", "fasttrack_gitops.core.eventsource"}) == {}
