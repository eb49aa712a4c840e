"""The pre-commit hook: a valid manifest, the right files, and a real run on a committed repository."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest
from conftest import MINIMAL, console_script, git, required_module

MANIFEST = Path(__file__).resolve().parents[1] / ".pre-commit-hooks.yaml"
BROKEN = MINIMAL.replace("dependencies: [prepare]", "dependencies: [prepar]")


@pytest.fixture
def hook() -> dict:
    clientlib = required_module("pre_commit.clientlib", "pre-commit")
    if not MANIFEST.is_file():
        pytest.fail(f"{MANIFEST} is missing")
    hooks = clientlib.load_manifest(str(MANIFEST))  # raises InvalidManifestError when it is not a valid manifest
    [found] = [h for h in hooks if h["id"] == "fasttrack-validate"]
    return found


def test_the_manifest_is_valid_and_runs_validate(hook):
    assert hook["language"] == "python"
    assert shlex.split(hook["entry"]) == ["fasttrack-gitops", "validate"]
    assert hook["pass_filenames"] is True
    assert hook["types"] == ["yaml"]


@pytest.mark.parametrize(
    "path, selected",
    [
        ("pipelines/train.yaml", True),
        ("pipelines/team/nightly.yaml", True),
        ("examples-repo/pipelines/x.yml", True),
        ("src/app.py", False),
        ("pipelines/notes.md", False),
        ("my-pipelines/x.yaml", False),
        ("docs/pipelines.yaml", False),
    ],
)
def test_the_files_pattern_selects_pipeline_files(hook, path, selected):
    # pre-commit applies `files` with re.search to repository-relative paths.
    assert bool(re.search(hook["files"], path)) is selected
    assert bool(re.search(hook["exclude"], path)) is False


def test_pipeline_files_have_the_yaml_type(hook):
    identify = required_module("identify.identify", "pre-commit")
    for path in ("pipelines/train.yaml", "examples-repo/pipelines/x.yml"):
        assert set(hook["types"]) <= identify.tags_from_filename(path)


def _run_hook_as_pre_commit_does(hook: dict, repo: Path) -> subprocess.CompletedProcess:
    """The committed files the hook selects, passed to its entry from the repository root."""
    identify = required_module("identify.identify", "pre-commit")
    files = [
        f
        for f in git(repo, "ls-files").splitlines()
        if re.search(hook["files"], f)
        and not re.search(hook["exclude"], f)
        and set(hook["types"]) <= identify.tags_from_path(str(repo / f))
    ]
    command, *args = shlex.split(hook["entry"])
    assert command == "fasttrack-gitops"
    return subprocess.run(
        [console_script(), *args, *hook["args"], *files], cwd=repo, capture_output=True, text=True, timeout=60
    )


def test_the_hook_fails_a_commit_with_a_broken_pipeline_and_passes_the_fix(hook, tmp_path):
    repo = tmp_path / "repo"
    (repo / "pipelines").mkdir(parents=True)
    (repo / "pipelines" / "train.yaml").write_text(BROKEN)
    (repo / "src").mkdir()
    (repo / "src" / "app.py").write_text("print('not a pipeline')\n")
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "a broken pipeline")

    proc = _run_hook_as_pre_commit_does(hook, repo)
    assert proc.returncode == 1
    assert proc.stdout.splitlines()[0] == (
        "pipelines/train.yaml:7:20: error FT103: task 'train' depends on unknown task 'prepar' "
        "(did you mean 'prepare'?)"
    )
    assert "Traceback" not in proc.stderr

    (repo / "pipelines" / "train.yaml").write_text(MINIMAL)
    git(repo, "commit", "-q", "-am", "fix the dependency")
    proc = _run_hook_as_pre_commit_does(hook, repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines() == ["1 pipeline file valid"]
