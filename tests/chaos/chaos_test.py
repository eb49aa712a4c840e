"""The chaos campaign (issue 16, item 1): commits pushed at a real `serve` while everything around it fails.

The short variant (10 commits, every fault kind at least once) runs with the
suite; the long one is the same test with more commits and its own seed:

    FTG_CHAOS_COMMITS=100 .venv/bin/python -m pytest tests/chaos -q -s
    FTG_CHAOS_COMMITS=100 FTG_CHAOS_SEED=7 FTG_CHAOS_EXECUTOR=local .venv/bin/python -m pytest tests/chaos -q -s

It prints its seed and counts (with -s; a failure shows them too). The
assertions are about the end state after everything settled, never about
timing: every commit has exactly one job per pipeline, every job ended, no
attempt ran twice, every check run completed with the job's conclusion,
no report owed, nothing left running.
"""

from __future__ import annotations

import os

import pytest
from chaos.chaoslib import Campaign

COMMITS = int(os.environ.get("FTG_CHAOS_COMMITS", "10"))
# A hang fails, bounded by the campaign's size: ~45 s for 10 commits, ~90 s for 100 on a quiet machine.
pytestmark = [
    pytest.mark.skipif(os.name != "posix", reason="daemon processes, kill -9 and POSIX shells"),
    pytest.mark.timeout(int(os.environ.get("FTG_CHAOS_TIMEOUT", 300 + 6 * COMMITS))),
]
SEED = int(os.environ.get("FTG_CHAOS_SEED", "16"))
EXECUTORS = os.environ.get("FTG_CHAOS_EXECUTOR", "backendai").split(",")


@pytest.mark.parametrize("executor", EXECUTORS)
def test_every_commit_gets_one_job_that_ends_and_reports_once_through_chaos(tmp_path, contracts, executor):
    counts = Campaign(tmp_path, contracts, seed=SEED, commits=COMMITS, executor=executor).run()
    print(f"\n{counts}")
    problems = counts.problems()
    assert not problems, "\n".join([str(counts), *problems, "what the campaign did:", *counts.log])
    assert counts.jobs == 2 * counts.commits
    assert all(counts.faults.values()), f"a fault kind was never injected: {counts.faults}"
