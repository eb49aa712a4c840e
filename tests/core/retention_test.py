"""The retention decision on plain facts: what goes, what stays, and why."""

from __future__ import annotations

import pytest

from fasttrack_gitops.core.retention import JobFacts, RetentionPolicy, decide, unneeded_trees

DAY = 86400.0
NOW = 1_800_000_000.0


def job(job_id: str, age_days: float, *, pipeline: str = "train", **kw) -> JobFacts:
    fields = dict(repository="acme/models", pipeline=pipeline, created_at=NOW - age_days * DAY, ended=True)
    return JobFacts(id=job_id, **{**fields, **kw})


def test_without_a_limit_nothing_goes():
    jobs = [job("a", 400), job("b", 1)]
    assert not RetentionPolicy().limited
    assert decide(jobs, RetentionPolicy(), NOW).collect == ()


def test_jobs_older_than_max_age_go_oldest_first():
    jobs = [job("new", 1), job("old", 40), job("older", 50)]
    assert decide(jobs, RetentionPolicy(max_age=30 * DAY), NOW).collect == ("older", "old")


def test_keep_per_pipeline_counts_each_pipeline_of_each_repository_apart():
    jobs = [job(f"t{i}", i) for i in range(5)]
    jobs += [job(f"e{i}", i, pipeline="eval") for i in range(2)]
    jobs += [job("other", 9, repository="acme/other")]
    decision = decide(jobs, RetentionPolicy(keep_per_pipeline=2), NOW)
    assert decision.collect == ("t4", "t3", "t2")


def test_either_limit_lets_a_job_go():
    jobs = [job("a", 1), job("b", 2), job("c", 60)]
    assert decide(jobs, RetentionPolicy(max_age=30 * DAY, keep_per_pipeline=5), NOW).collect == ("c",)
    assert decide(jobs, RetentionPolicy(max_age=90 * DAY, keep_per_pipeline=2), NOW).collect == ("c",)


def test_a_job_that_has_not_ended_is_never_collected():
    jobs = [job("running", 90, ended=False), job("done", 90)]
    decision = decide(jobs, RetentionPolicy(max_age=DAY), NOW)
    assert decision.collect == ("done",)
    assert decision.kept == {"running": "it has not ended"}


def test_a_job_whose_report_is_owed_stays():
    decision = decide([job("owed", 90, owed=True)], RetentionPolicy(max_age=DAY), NOW)
    assert decision.collect == () and "report" in decision.kept["owed"]


def test_outputs_a_kept_job_reuses_stay_but_not_what_those_reused_in_turn():
    jobs = [
        job("kept", 1, reused_from=frozenset({"mid"})),
        job("mid", 50, reused_from=frozenset({"root"})),  # its outputs that kept reuses were made by mid itself
        job("root", 60),
        job("alone", 70),
    ]
    decision = decide(jobs, RetentionPolicy(max_age=30 * DAY), NOW)
    assert decision.collect == ("alone", "root")
    assert decision.kept == {"mid": "job kept reuses its outputs"}


def test_a_chain_of_reuse_keeps_one_source_per_kept_job_not_the_whole_history():
    jobs = [job(f"j{i}", i, reused_from=frozenset({f"j{i + 1}"})) for i in range(10)]  # each reuses the one before
    decision = decide(jobs, RetentionPolicy(keep_per_pipeline=2), NOW)
    assert decision.collect == tuple(f"j{i}" for i in range(9, 2, -1))
    assert decision.kept == {"j2": "job j1 reuses its outputs"}


def test_a_collected_job_does_not_keep_what_it_reused():
    jobs = [job("gone", 50, reused_from=frozenset({"source"})), job("source", 60)]
    assert decide(jobs, RetentionPolicy(max_age=30 * DAY), NOW).collect == ("source", "gone")


def test_a_rerun_that_has_not_ended_keeps_its_source_one_that_ended_does_not():
    running = [job("rerun", 0, ended=False, rerun_of="first"), job("first", 50)]
    assert decide(running, RetentionPolicy(max_age=30 * DAY), NOW).collect == ()
    ended = [job("rerun", 0, rerun_of="first"), job("first", 50)]
    assert decide(ended, RetentionPolicy(max_age=30 * DAY), NOW).collect == ("first",)


def test_trees_a_kept_job_names_stay():
    jobs = [job("kept", 1, trees=frozenset({"t1"})), job("gone", 50, trees=frozenset({"t1", "t2"}))]
    decision = decide(jobs, RetentionPolicy(max_age=30 * DAY), NOW)
    assert unneeded_trees(["t1", "t2", "t3"], decision) == ["t2", "t3"]


@pytest.mark.parametrize(
    "bad", [dict(max_age=-1.0), dict(keep_per_pipeline=-1), dict(interval=0.0)], ids=["age", "count", "interval"]
)
def test_a_policy_out_of_range_is_refused(bad):
    with pytest.raises(ValueError, match="must be"):
        RetentionPolicy(**bad)
