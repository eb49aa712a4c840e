"""The chaos campaign on the REAL Backend.AI 23.09 manager (issue 16, item 1; the emulator variant: tests/chaos).

A real `serve` (executor backendai) against the real manager of scripts/realstack and
the contract-checking GitHub and Slack servers; a few commits of a one-task
pipeline (cpu 1, echo and a 1 s nap); at least once each: `kill -9` of the
daemon and its restart, a restart of the manager process (realstack.sh
manager-stop / manager-start: down for seconds while sessions run or wait), and
GitHub answering 502 for a while. The end state is checked as in the emulator
variant, sessions counted on the manager by name (TERMINATED ones included):

    eval "$(scripts/realstack-env.sh)" && FTG_REALSTACK=1 .venv/bin/python -m pytest tests/integration/chaos_test.py -q -s
"""

from __future__ import annotations

import os

import pytest
from chaos.chaoslib import Campaign
from integration.chaos_cluster import RealCluster

COMMITS = int(os.environ.get("FTG_CHAOS_REAL_COMMITS", "5"))
SEED = int(os.environ.get("FTG_CHAOS_SEED", "16"))
pytestmark = pytest.mark.timeout(300 + 20 * COMMITS)


def test_every_commit_gets_one_job_through_daemon_kills_manager_restarts_and_github_502(
    tmp_path, contracts, credentials
):
    cluster = RealCluster(credentials)
    counts = Campaign(tmp_path, contracts, seed=SEED, commits=COMMITS, cluster=cluster).run()
    print(f"\n{counts}")
    problems = counts.problems()
    assert not problems, "\n".join([str(counts), *problems, "what the campaign did:", *counts.log, *cluster.restarts])
    assert counts.jobs == len(cluster.pipelines) * counts.commits
    assert all(counts.faults.values()), f"a fault kind was never injected: {counts.faults}"
    # at most one session per attempt, counted on the manager (an attempt begun while the manager
    # was down never got one: it is recorded as failed to start and retried)
    assert 0 < counts.sessions <= counts.attempts
    assert not counts.ran_twice
    # the manager went down while a session of the campaign was pending or running
    assert any(cluster.live_at_stop), f"no session was live at a manager stop: {cluster.live_at_stop}"
    print(f"sessions live at each manager stop: {[[s.status for s in live] for live in cluster.live_at_stop]}")
