"""The daemon's scheduled gc: a real daemon on a state folder with real jobs; its retention section removes the old."""

from __future__ import annotations

import asyncio
import logging

from commands.run_test import cli
from conftest import await_until
from daemon.conftest import load, running, write_config

from fasttrack_gitops.daemon import retention


def test_the_daemon_collects_on_its_schedule_and_keeps_the_newest(tmp_path, source_repo, capsys, monkeypatch, caplog):
    state = tmp_path / "state"
    ids = []
    for _ in range(3):
        code, out, err = cli(
            capsys, "run", source_repo / "pipelines/demo.yaml", "--state-dir", state, "--format", "json"
        )
        assert code == 0, err
    from fasttrack_gitops.engine.state.store import Store

    with Store(state) as store:
        ids = [v.job.id for v in store.list_jobs(limit=0)]  # newest first
    assert len(ids) == 3
    config = load(
        write_config(
            tmp_path,
            source_repo,
            repo_extra="watch: false\n",
            extra="retention:\n  keep_per_pipeline: 1\n  interval: 1h\n",
        )
    )
    monkeypatch.setattr(retention, "FIRST_DELAY", 0.1)  # the first collection soon after the start, not in a minute
    caplog.set_level(logging.INFO, logger="fasttrack_gitops.daemon")

    async def scenario():
        async with running(config) as (daemon, _url):
            await await_until(lambda: any("gc: removed" in r.getMessage() for r in caplog.records), what="gc to run")
            assert [v.job.id for v in daemon.store.list_jobs(limit=0)] == ids[:1]

    asyncio.run(scenario())
    assert not (state / "data" / ids[1]).exists() and not (state / "logs" / ids[2]).exists()
    assert (state / "logs" / ids[0]).is_dir()
    assert any("gc: removed 2 job(s)" in r.getMessage() for r in caplog.records), [
        r.getMessage() for r in caplog.records
    ]


def test_without_a_limit_the_daemon_never_collects(tmp_path, source_repo):
    config = load(write_config(tmp_path, source_repo, repo_extra="watch: false\n"))
    stop = asyncio.Event()

    async def scenario():
        await asyncio.wait_for(retention.collect_forever(config, stop, first_delay=0), timeout=5)  # returns at once

    asyncio.run(scenario())
