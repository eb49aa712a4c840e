"""A deployment task on the real Backend.AI 23.09 manager, which has no app proxy (coordinator).

The realstack runs a real 23.09 manager with no wsproxy (backendai-services.md
§4): it can never create a model service. As installed, its default
resource group does not even take inference sessions (404 "No such scaling
group. The scaling group 'default' does not accept the session type
'SessionTypes.INFERENCE'."); with inference allowed (the test sets it for
its run and restores it), POST /services answers 503 "No coordinator
configured for this resource group". What a user sees is each line with the
fix, and nothing is left behind: the model folder was made (usage mode
model) and holds the staged code, no service exists.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from conftest import DATA, git

from fasttrack_gitops.cli import main
from fasttrack_gitops.engine.backendai import services, vfolders
from fasttrack_gitops.engine.backendai.graphql import gql

pytestmark = pytest.mark.timeout(300)

IMAGE = "cr.backend.ai/stable/python:3.9-ubuntu20.04"  # the one image the real stack knows
PIPELINE = f"""\
version: "23.09"
name: realstack-serve
tasks:
  - name: serve
    type: deployment
    code: model
    environment: {{{{image: {IMAGE}, scaling-group: default}}}}
    resources: {{{{cpu: 1, mem: 512m}}}}
    service:
      name: ftg-svc-{{stamp}}
      model: ftg-model-{{stamp}}
      model_definition_path: model-definition-gradio.yaml
      replicas: 1
      open_to_public: true
"""


MODIFY = "mutation($n: String!, $p: ModifyScalingGroupInput!) { modify_scaling_group(name: $n, props: $p) { ok msg } }"


def serve(tmp_path, capsys, stamp: str, run: str) -> dict:
    repo = tmp_path / run
    (repo / "pipelines").mkdir(parents=True)
    (repo / "model").mkdir()
    (repo / "pipelines/p.yaml").write_text(PIPELINE.format(stamp=stamp))
    (repo / "model/model-definition-gradio.yaml").write_text(
        (DATA / "services/model-definition-gradio.yaml").read_text().replace("PORT_UI", "8000")
    )
    (repo / "model/server.py").write_text((DATA / "services/server.py").read_text())
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "pipeline")
    args = ["run", str(repo / "pipelines/p.yaml"), "--executor", "backendai", "--state-dir", str(tmp_path / "state")]
    capsys.readouterr()
    code = main([*args, "--format", "json"])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    task = json.loads(out)["tasks"][0]
    print(f"realstack ({run}) says:", task["reason"])  # shown with -s: what a user of the 23.09 stack reads
    assert code == 1 and task["status"] == "failed" and task["url"] is None
    return task


async def scheduler_opts(client, opts: dict | None = None) -> dict:
    """The default resource group's scheduler options; with `opts`, set them first (the stack's keypair is admin)."""
    if opts is not None:
        done = await client.request(
            "POST",
            "/admin/gql",
            json={"query": MODIFY, "variables": {"n": "default", "p": {"scheduler_opts": json.dumps(opts)}}},
        )
        assert done["data"]["modify_scaling_group"]["ok"], done
    found = await gql(client, 'query { scaling_group(name: "default") { scheduler_opts } }')
    return json.loads(found["scaling_group"]["scheduler_opts"])


def test_a_deployment_task_says_why_this_cluster_cannot_serve(tmp_path, capsys, make_client):
    stamp = str(int(time.time()))[-8:]

    # As installed, the default resource group does not take inference sessions (23.09's default).
    task = serve(tmp_path, capsys, stamp, "as-installed")
    assert "does not accept the session type" in task["reason"]
    assert "does not allow the 'inference' session type: an admin must add it" in task["reason"]

    # With inference allowed, the next refusal is the missing app proxy: 503 "No coordinator".
    async def allow(on: bool) -> dict:
        async with make_client() as client:
            opts = await scheduler_opts(client)
            types = [t for t in opts["allowed_session_types"] if t != "inference"] + (["inference"] if on else [])
            return await scheduler_opts(client, {**opts, "allowed_session_types": types})

    assert "inference" in asyncio.run(allow(True))["allowed_session_types"]
    try:
        task = serve(tmp_path, capsys, stamp, "with-inference")
    finally:
        assert "inference" not in asyncio.run(allow(False))["allowed_session_types"]
    assert "No coordinator configured for this resource group [503]" in task["reason"]
    assert "wsproxy_addr" in task["reason"] and "environment.scaling-group" in task["reason"]

    async def look():
        async with make_client() as client:
            folder = await vfolders.get_vfolder(client, f"ftg-model-{stamp}")
            files = {e.name for e in await vfolders.list_files(client, folder.name)}
            found = await services.find_service(client, f"ftg-svc-{stamp}")
            await client.request("DELETE", "/folders/{name}", path_params={"name": folder.name})
            return folder, files, found

    folder, files, found = asyncio.run(look())
    assert folder.usage_mode == "model"
    # 23.09 reads only model-definition.yaml: the named file was copied to it, beside the staged code.
    assert {"model-definition-gradio.yaml", "model-definition.yaml", "server.py"} <= files
    assert found is None  # nothing was created
