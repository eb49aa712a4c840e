"""`fasttrack-gitops export` and `import`: a real repository with real commits, files on disk, exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import PROJECT, git

from fasttrack_gitops.cli import main

PIPELINE = """\
version: "26.4.4"
name: tuned
description: trains
ownership:
  domain: default
  scope: user
on:
  push:
    branches: [main]
concurrency: tuned
params:
  - {name: lr, type: number, default: 0.1}
tasks:
  - name: train
    code: tasks/train
    timeout: 10m
    cache: true
    command: |
      set -e
      python3 train.py --lr "$PARAM_LR"
  - name: serve
    type: deployment
    dependencies: [train]
    service:
      name: tuned-api
      replicas: 1
"""


def cli(capsys, *args) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "internal error" not in err, err
    return code, out, err


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / "pipelines").mkdir(parents=True)
    (repo / "tasks/train").mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    (repo / "pipelines/tuned.yaml").write_text(PIPELINE)
    (repo / "tasks/train/train.py").write_text("print('v1')\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "v1")
    return repo


def test_export_at_a_revision_for_an_older_release_and_import_brings_the_file_back(capsys, repo, tmp_path):
    first = git(repo, "rev-parse", "HEAD").strip()
    (repo / "pipelines/tuned.yaml").write_text(PIPELINE.replace("description: trains", "description: changed"))
    git(repo, "commit", "-q", "-am", "v2")
    out_file = tmp_path / "tuned-export.yaml"

    code, _, err = cli(
        capsys, "export", repo / "pipelines/tuned.yaml", "--rev", first, "--target-version", "25.6.5", "-o", out_file
    )

    assert code == 0, err
    exported = yaml.safe_load(out_file.read_text())
    assert (exported["version"], exported["description"]) == ("25.6.5", "trains")  # the commit asked for
    assert exported["ownership"] == {"domain_name": "default", "scope": "personal"}
    assert [t["type"] for t in exported["tasks"]] == ["Custom Task", "serving"]
    assert "on" not in exported and exported["x-fasttrack-gitops"]["tasks"]["train"]["code"] == "tasks/train"

    into = tmp_path / "other"
    code, out, err = cli(capsys, "import", out_file, "--into", into)

    assert code == 0, err
    assert out.strip() == f"wrote {into / 'pipelines/tuned.yaml'}"
    code, out, err = cli(capsys, "validate", into / "pipelines/tuned.yaml", "--format", "json")
    imported = yaml.safe_load((into / "pipelines/tuned.yaml").read_text())
    assert imported["version"] == "26.4.4" and imported["ownership"] == {"domain": "default", "scope": "user"}
    assert imported["tasks"][0]["code"] == "tasks/train" and imported["tasks"][1]["type"] == "deployment"
    assert imported["on"] == {"push": {"branches": ["main"]}} and "x-fasttrack-gitops" not in imported


def test_ship_code_writes_each_code_tree_by_id_and_commands_enter_it(capsys, repo, tmp_path):
    ship = tmp_path / "ship"
    code, out, err = cli(capsys, "export", repo / "pipelines/tuned.yaml", "--ship-code", ship, "-o", "-")

    assert code == 0, err
    tree = git(repo, "rev-parse", "HEAD:tasks/train").strip()
    assert (ship / tree / "train.py").read_text() == "print('v1')\n"
    [train, serve] = yaml.safe_load(out)["tasks"]
    assert train["command"].splitlines()[0].startswith(f"cd /pipeline/vfroot/fasttrack-gitops/code/{tree} || ")
    assert train["command"].endswith('python3 train.py --lr "$PARAM_LR"\n')
    assert "command" not in serve
    assert f"train: {ship / tree}" in err

    (tmp_path / "shipped.yaml").write_text(out)
    code, _, err = cli(capsys, "import", tmp_path / "shipped.yaml", "--into", tmp_path / "back", "--name", "again")
    assert code == 0, err
    back = yaml.safe_load((tmp_path / "back/pipelines/again.yaml").read_text())
    assert back["name"] == "again" and back["tasks"][0]["command"].startswith("set -e\n")  # the prefix undone


def test_import_replaces_literal_secrets_and_lists_them_without_their_values(capsys, tmp_path):
    real = PROJECT / "tests/data/fasttrack-examples/torchtune-llama-3.1-8b.yaml"

    code, out, err = cli(capsys, "import", real, "--into", tmp_path)

    assert code == 0, err
    written = (tmp_path / "pipelines/torchtune-example.yaml").read_text()
    assert "HF_TOKEN: ${{ secrets.HF_TOKEN }}" in written and "hf_XXXXXXXXX" not in written
    assert "HF_TOKEN (environment.envs)" in err and "hf_XXXXXXXXX" not in err + out
    code, out, _ = cli(
        capsys, "validate", tmp_path / "pipelines/torchtune-example.yaml", "--strict", "--format", "json"
    )
    assert code == 0, out


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("just: a mapping\n", "is not a FastTrack pipeline export: it has no version, name, tasks"),
        ("- a\n- list\n", "export (line 1: the top level is a list, not a mapping"),
        ("version: [unclosed\n", "is not a FastTrack pipeline export (line 2:"),
        ("\x89PNG\r\n\x1a\n", "is not a FastTrack pipeline export (line 1:"),
        (
            "version: 1\nname: x\ntasks:\n  - name: a\n    dependencies: [nope]\n",
            "is not a pipeline fasttrack-gitops can run",
        ),
    ],
)
def test_a_file_that_is_not_a_fasttrack_export_exits_2_and_writes_nothing(capsys, tmp_path, content, says):
    bad = tmp_path / "bad.yaml"
    bad.write_text(content)

    code, out, err = cli(capsys, "import", bad, "--into", tmp_path / "repo")

    assert code == 2 and says in err, err
    assert not (tmp_path / "repo").exists()


def test_import_never_replaces_a_pipeline_file_unless_forced(capsys, tmp_path):
    real = PROJECT / "tests/data/fasttrack-examples/docs-rag.yaml"
    assert cli(capsys, "import", real, "--into", tmp_path)[0] == 0
    target = tmp_path / "pipelines/docs-rag.yaml"
    target.write_text("mine\n")

    code, _, err = cli(capsys, "import", real, "--into", tmp_path)
    assert code == 2 and "exists; give another --name, or --force" in err and target.read_text() == "mine\n"
    assert cli(capsys, "import", real, "--into", tmp_path, "--force")[0] == 0
    assert target.read_text() != "mine\n"
    code, _, err = cli(capsys, "import", real, "--into", tmp_path, "--name", "no/slashes")
    assert code == 2 and "does not make a file name" in err


def test_export_of_an_invalid_or_missing_pipeline(capsys, repo, tmp_path):
    (repo / "pipelines/broken.yaml").write_text("version: 1\nname: b\ntasks: []\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "broken")

    code, _, err = cli(capsys, "export", repo / "pipelines/broken.yaml", "-o", tmp_path / "x.yaml")
    assert code == 1 and "FT108" in err and not (tmp_path / "x.yaml").exists()
    (repo / "pipelines/new.yaml").write_text(PIPELINE)
    code, _, err = cli(capsys, "export", repo / "pipelines/new.yaml", "-o", tmp_path / "x.yaml")
    assert code == 2 and "commit it first" in err
    code, _, err = cli(
        capsys, "export", repo / "pipelines/tuned.yaml", "--rev", "no-such-rev", "-o", tmp_path / "x.yaml"
    )
    assert code == 2, err


def make_vfolder(name: str) -> None:
    """A vfolder made through the manager's API, as FastTrack makes a pipeline's data folder."""
    import asyncio

    from fasttrack_gitops.engine.backendai import vfolders
    from fasttrack_gitops.engine.backendai.client import Client
    from fasttrack_gitops.engine.backendai.credentials import Credentials

    async def main():
        async with Client(Credentials.from_env()) as client:
            await vfolders.create_vfolder(client, name)

    asyncio.run(main())


def test_upload_to_puts_each_code_tree_into_the_pipeline_data_folder_once(capsys, repo, tmp_path, emulated_cluster):
    make_vfolder("tuned-1a2b")
    tree = git(repo, "rev-parse", "HEAD:tasks/train").strip()
    args = ("export", repo / "pipelines/tuned.yaml", "--ship-code", tmp_path / "ship", "--upload-to", "tuned-1a2b")

    code, _, err = cli(capsys, *args, "-o", tmp_path / "out.yaml")

    assert code == 0, err
    folder = emulated_cluster.vfolders.directory("tuned-1a2b") / "fasttrack-gitops/code" / tree
    assert (folder / "train.py").read_text() == "print('v1')\n" and (folder / ".ftg-complete").exists()
    assert "1 tree(s) uploaded now" in err
    uploads = sum(1 for r in emulated_cluster.requests_to("/folders/tuned-1a2b/request-upload"))
    assert uploads >= 2  # the file and the marker
    code, _, err = cli(capsys, *args, "-o", tmp_path / "again.yaml")
    assert code == 0 and "0 tree(s) uploaded now" in err
    assert sum(1 for r in emulated_cluster.requests_to("/folders/tuned-1a2b/request-upload")) == uploads  # none more

    code, _, err = cli(
        capsys,
        "export",
        repo / "pipelines/tuned.yaml",
        "--ship-code",
        tmp_path / "s2",
        "--upload-to",
        "nope",
        "-o",
        "-",
    )
    assert code == 2 and "there is no vfolder 'nope': create the pipeline in FastTrack first" in err
    code, _, err = cli(capsys, "export", repo / "pipelines/tuned.yaml", "--upload-to", "tuned-1a2b", "-o", "-")
    assert code == 2 and "--upload-to needs --ship-code DIR" in err
