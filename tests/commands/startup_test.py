"""The collector around start-up: held back while a command loads, restored once a run has started, never touched
for a command run in-process (a test, any caller that goes on)."""

from __future__ import annotations

import gc
import os
import subprocess
import sys

from commands.run_test import cli

from fasttrack_gitops.commands import startup


def test_paused_while_loading_and_restored_with_start_up_frozen_once_started():
    default = gc.get_threshold()
    try:
        startup.pause()
        assert gc.get_threshold()[0] == startup.STARTUP_THRESHOLD and gc.get_threshold()[1:] == default[1:]
        startup.started()
        assert gc.get_threshold() == default and gc.get_freeze_count() > 0
        frozen = gc.get_freeze_count()
        startup.started()  # a second time (a rerun after a run): nothing more is frozen (frozen objects freed leave)
        assert gc.get_threshold() == default and gc.get_freeze_count() <= frozen
    finally:
        gc.unfreeze()
        gc.set_threshold(*default)


def test_a_command_run_in_process_leaves_the_collector_alone(capsys, tmp_path):
    default, frozen = gc.get_threshold(), gc.get_freeze_count()
    code, out, _ = cli(capsys, "validate", "--help")
    assert code == 0 and "Usage" in out
    assert gc.get_threshold() == default and gc.get_freeze_count() <= frozen


def test_a_run_process_collects_as_usual_once_started(tmp_path):
    (tmp_path / "pipeline.yaml").write_text('version: "26.4.4"\nname: one\ntasks:\n  - name: t\n    command: "true"\n')
    probe = (
        "import gc, sys\n"
        "from fasttrack_gitops.cli import main\n"
        "sys.argv = ['fasttrack-gitops', 'run', 'pipeline.yaml', '--state-dir', 'state']\n"
        "code = main()\n"
        "print(code, gc.get_threshold()[0], gc.get_freeze_count() > 0)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "FTG_BWRAP": "0"},
    )
    last = done.stdout.strip().splitlines()[-1]
    # the default threshold is back (a short command would still hold STARTUP_THRESHOLD) and start-up is frozen
    assert last == f"0 {gc.get_threshold()[0]} True", done.stdout + done.stderr
