"""SECURITY.md "The local sandbox is not a security boundary", as a task of a real `serve` process finds it.

`fasttrack-gitops serve` runs as its own process with its credentials in its environment, as a deployment starts
it (tests/daemon/recovery_test.py's Served). Its one local task looks around the way a hostile one would: its own
environment, the daemon's state folder, and every process's /proc/<pid>/environ it can read. What it finds is
what SECURITY.md says: none of the daemon's credentials in its own environment; the state folder readable (the
same user, the host's file system), with bubblewrap and without; the daemon's original environment readable
without bubblewrap only.
When a sandbox change hides them, this test fails and SECURITY.md's section is to be updated with it.
"""

from __future__ import annotations

import httpx
import pytest
from conftest import PATIENCE, require_bwrap, wait_until
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


@pytest.mark.parametrize("bwrap", [False, True], ids=["plain", "bubblewrap"])
def test_a_local_task_gets_no_credential_of_the_daemon_but_can_read_what_its_user_can(
    tmp_path,
    source_repo,
    daemon,
    bwrap,
):
    if bwrap:
        require_bwrap()
    loot = tmp_path / "loot"
    loot.mkdir()
    commit_file(source_repo, "pipelines/look.yaml", LOOK_AROUND.format(loot=loot, state=tmp_path / "state"))
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
    environ = (loot / "environ").read_text()
    if bwrap:  # in a user namespace of its own the kernel refuses another namespace's /proc/<pid>/environ
        assert API_TOKEN not in environ
    else:  # a plain child of the same user reads the daemon's original environment
        assert f"FTG_TEST_API_TOKEN={API_TOKEN}" in environ
