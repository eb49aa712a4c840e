"""SECURITY.md "The local sandbox is not a security boundary", as a task of a real `serve` process finds it.

`fasttrack-gitops serve` runs as its own process with its credentials in its environment, as a deployment starts
it (tests/daemon/recovery_test.py's Served). Its one local task looks around the way a hostile one would: its own
environment, the daemon's state folder, and every process's /proc/<pid>/environ it can read. What it finds is
what SECURITY.md says: none of the daemon's credentials in its own environment, nor in the daemon's
/proc/<pid>/environ (serve makes itself non-dumpable); the state folder readable (the same user, the host's file
system), with bubblewrap and without.
When a sandbox change hides the state folder, this test fails and SECURITY.md is to be updated with it.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import httpx
import pytest
from conftest import PATIENCE, cannot_run, console_script, require_bwrap, wait_until
from daemon import recovery_test
from daemon.conftest import commit_file

API_TOKEN = "api-token-of-the-served-daemon-3a9f"
LOOK_AROUND = """\
version: "26.4.4"
name: look
tasks:
  - name: around
    command: >-
      env > {loot}/env;
      ls {state} > {loot}/state;
      for p in /proc/[0-9]*; do tr '\\0' '\\n' < $p/environ 2>/dev/null | grep -a FTG_TEST_API_TOKEN; done
      > {loot}/environ; true
"""


def as_a_user(tmp_path) -> str:
    """A command that runs `fasttrack-gitops` as uid 1000 of a user namespace of its own, so that it and its tasks
    hold no capability, as a deployment's user (root's CAP_SYS_PTRACE would read any /proc/<pid>/environ)."""
    unshare = shutil.which("unshare")
    if unshare is None:
        cannot_run("as root this test needs unshare (util-linux) to run serve as a user")
    probe = subprocess.run([unshare, "--user", "--map-user=1000", "--map-group=1000", "true"], capture_output=True)
    if probe.returncode != 0:
        cannot_run(f"as root this test runs serve in a user namespace, not allowed here: {probe.stderr.decode()}")
    wrapper = tmp_path / "fasttrack-gitops-as-a-user"
    wrapper.write_text(f'#!/bin/sh\nexec {unshare} --user --map-user=1000 --map-group=1000 {console_script()} "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


@pytest.mark.parametrize("bwrap", [False, True], ids=["plain", "bubblewrap"])
def test_a_local_task_gets_no_credential_of_the_daemon_but_can_read_what_its_user_can(
    tmp_path,
    source_repo,
    daemon,
    bwrap,
    monkeypatch,
):
    if bwrap:
        require_bwrap()
    loot = tmp_path / "loot"
    loot.mkdir()
    commit_file(source_repo, "pipelines/look.yaml", LOOK_AROUND.format(loot=loot, state=tmp_path / "state"))
    if os.geteuid() == 0:  # root reads any /proc/<pid>/environ: run serve as a deployment's user
        monkeypatch.setattr(recovery_test, "console_script", lambda: as_a_user(tmp_path))
    served = daemon(extra="api_token_env: FTG_TEST_API_TOKEN\n", bwrap=bwrap)
    served.env["FTG_TEST_API_TOKEN"] = API_TOKEN
    served.start()
    bearer = {"Authorization": f"Bearer {API_TOKEN}"}
    answer = httpx.post(
        served.url + "/api/trigger",
        json={"repository": "acme/pipes", "pipeline": "look"},
        headers=bearer,
        timeout=PATIENCE,
    )
    assert answer.status_code == 201, answer.text
    (job,) = answer.json()["jobs"]
    wait_until(lambda: served.view(job).status.value in ("succeeded", "failed"), what="the task to end")
    assert served.view(job).status.value == "succeeded", served.log()
    assert API_TOKEN not in (loot / "env").read_text()  # withheld from the task's own environment ...
    assert "state.db" in (loot / "state").read_text().split()  # ... but the state folder is the user's
    # serve is not dumpable, so the kernel keeps its /proc/<pid>/environ (and its memory) from its own user's
    # processes; bubblewrap's user namespace would too
    assert API_TOKEN not in (loot / "environ").read_text()
