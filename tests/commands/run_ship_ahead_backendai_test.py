"""`run --executor backendai` ships every task's code before the task is ready: no upload on the critical path.

A chain of three tasks, each with a code folder of its own (three trees to
upload). The emulator records when each request arrived and when each event
was streamed: the uploads of the later tasks' trees all come before the first
task's session has ended, so when a dependency ends, its dependant's session
is asked for without an upload in between.
"""

from __future__ import annotations

import json
import os
from urllib.parse import parse_qs, urlsplit

import pytest
from commands.run_test import clean, cli, make_repo

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the emulator runs POSIX shells")

PIPELINE = """\
version: "26.4.4"
name: chain
tasks:
  - {name: first, command: sh main.sh, code: tasks/first, environment: {image: python}}
  - {name: second, command: sh main.sh, code: tasks/second, dependencies: [first], environment: {image: python}}
  - {name: third, command: sh main.sh, code: tasks/third, dependencies: [second], environment: {image: python}}
"""


def test_every_tree_is_uploaded_before_the_first_session_ends(capsys, tmp_path, emulated_cluster):
    root = tmp_path / "repo"
    files = {"pipelines/chain.yaml": PIPELINE}
    files.update({f"tasks/{name}/main.sh": f"echo {name}\n" for name in ("first", "second", "third")})
    # The first task lasts long enough for the uploads started with the job to end first on a loaded machine too
    # (they take ~40 ms here); without shipping ahead, the later trees go up only after it ended, whatever it lasts.
    files["tasks/first/main.sh"] = "sleep 2; echo first\n"
    make_repo(root, files)
    args = ["run", root / "pipelines/chain.yaml", "--executor", "backendai", "--state-dir", tmp_path / "state"]

    code, out, err = cli(capsys, *args, "--format", "json")

    clean(err)
    assert code == 0, err
    assert [t["status"] for t in json.loads(out)["tasks"]] == ["succeeded"] * 3
    uploads = [r for r in emulated_cluster.requests if r.method == "POST" and r.target.endswith("/request-upload")]
    trees = {json.loads(r.body)["path"].split("/")[1] for r in uploads}
    assert len(trees) == 3  # a tree each
    first_ended = min(at for at, event, name in emulated_cluster.sessions.published if event == "session_terminated")
    assert max(r.at for r in uploads) < first_ended, "a later task's code was uploaded after the first task ended"
    sessions = [r for r in emulated_cluster.requests if r.method == "POST" and urlsplit(r.target).path == "/session"]
    assert len(sessions) == 3 and not parse_qs(urlsplit(sessions[0].target).query).get("dry_run")
