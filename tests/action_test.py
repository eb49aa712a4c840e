"""The GitHub Action (action.yml) and the example workflow: linters find nothing, inputs reach the command only
through FTG_CI_* variables, and the README documents every input and output."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import EXAMPLES_REPO, PROJECT, cannot_run

ACTION_FILE = PROJECT / "action.yml"
WORKFLOW_FILE = EXAMPLES_REPO / ".github" / "workflows" / "fasttrack.yml"
ACTION = yaml.safe_load(ACTION_FILE.read_text(encoding="utf-8"))
STEPS = ACTION["runs"]["steps"]
[CI_STEP] = [step for step in STEPS if step.get("id") == "ci"]

# The inputs that `fasttrack-gitops ci` takes as --NAME / FTG_CI_NAME (the rest configure the action itself).
COMMAND_INPUTS = {
    "mode",
    "params",
    "executor",
    "pipelines",
    "wait",
    "backend-endpoint",
    "backend-access-key",
    "backend-secret-key",
    "github-token",
    "slack-bot-token",
    "slack-webhook-url",
    "slack-channel",
    "daemon-url",
    "no-cache",
    "state-dir",
}
# The daemon's API token: the command reads it, as `trigger` does, from FTG_API_TOKEN.
OTHER_VARIABLES = {"daemon-token": "FTG_API_TOKEN"}
SECRET_INPUTS = {
    "backend-access-key",
    "backend-secret-key",
    "github-token",
    "slack-bot-token",
    "slack-webhook-url",
    "daemon-token",
}
OUTPUTS = {"job-ids", "conclusion", "summary", "results-dir"}
BRANDING_COLORS = {"white", "black", "yellow", "blue", "green", "orange", "red", "purple", "gray-dark"}


def envvar(name: str) -> str:
    return "FTG_CI_" + name.upper().replace("-", "_")


def tool(name: str) -> Path:
    """A linter installed by the `test` extra, beside this Python."""
    path = Path(sys.executable).parent / name
    if not path.is_file():
        cannot_run(f"{name} is not installed beside {sys.executable}; pip install -e '.[test]' installs it")
    return path


# -- the linters ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [ACTION_FILE, WORKFLOW_FILE], ids=["action.yml", "fasttrack.yml"])
def test_zizmor_finds_nothing(path):
    # --no-ignores --no-config: a finding cannot be hidden by an inline comment or a configuration file.
    result = subprocess.run(
        [tool("zizmor"), "--offline", "--no-config", "--no-ignores", "--no-progress", "--color", "never", path],
        capture_output=True,
        text=True,
        cwd=PROJECT,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout, result.stdout + result.stderr


def test_actionlint_finds_nothing_in_the_example_workflow():
    result = subprocess.run(
        [tool("actionlint"), "-no-color", WORKFLOW_FILE.relative_to(EXAMPLES_REPO)],
        capture_output=True,
        text=True,
        cwd=EXAMPLES_REPO,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


# -- action.yml's structure -------------------------------------------------------------------------------------


def test_it_is_a_composite_action_with_valid_branding():
    assert ACTION["runs"]["using"] == "composite"
    assert ACTION["name"] and ACTION["description"]
    assert ACTION["branding"]["color"] in BRANDING_COLORS
    assert re.fullmatch(r"[a-z0-9-]+", ACTION["branding"]["icon"])


def test_every_input_and_output_is_documented():
    for name, spec in {**ACTION["inputs"], **ACTION["outputs"]}.items():
        assert spec.get("description", "").strip(), f"{name} has no description"


def test_input_defaults():
    defaults = {name: spec.get("default") for name, spec in ACTION["inputs"].items()}
    assert defaults["mode"] == "validate"
    assert defaults["executor"] == "backendai"
    assert defaults["wait"] == "true"
    assert defaults["github-token"] == "${{ github.token }}"
    assert defaults["pipelines"] == ""
    assert defaults["version"] == ""
    assert defaults["no-cache"] == "false"
    assert all(not spec.get("required") for spec in ACTION["inputs"].values())


def test_every_run_step_is_bash_and_interpolates_nothing():
    run_steps = [step for step in STEPS if "run" in step]
    assert run_steps
    for step in run_steps:
        assert step.get("shell") == "bash", step["name"]
        # Inputs reach scripts only as environment variables: `${{ }}` in a script is shell injection.
        assert "${{" not in step["run"], step["name"]
        assert "set -x" not in step["run"], step["name"]


def test_every_run_script_is_valid_bash():
    for step in STEPS:
        if "run" in step:
            result = subprocess.run(["bash", "-n"], input=step["run"], capture_output=True, text=True, check=False)
            assert result.returncode == 0, f"{step['name']}: {result.stderr}"


def test_every_command_input_reaches_the_ci_step_as_its_variable():
    assert set(ACTION["inputs"]) >= COMMAND_INPUTS
    expected = {envvar(name): f"${{{{ inputs.{name} }}}}" for name in COMMAND_INPUTS}
    expected |= {variable: f"${{{{ inputs.{name} }}}}" for name, variable in OTHER_VARIABLES.items()}
    assert CI_STEP["env"] == expected
    assert 'fasttrack-gitops" ci' in CI_STEP["run"]


def test_every_input_is_used_and_secrets_only_where_the_command_runs():
    used = {}
    for step in STEPS:
        for value in [*step.get("env", {}).values(), *step.get("with", {}).values()]:
            for name in re.findall(r"\$\{\{ inputs\.([\w-]+) \}\}", value):
                used.setdefault(name, []).append(step.get("id") or step["name"])
    assert set(used) == set(ACTION["inputs"])
    for name in SECRET_INPUTS:
        assert used[name] == ["ci"], f"{name} reaches {used[name]}"


def test_the_declared_plots_and_artifacts_are_uploaded_by_an_action_pinned_to_a_commit():
    [upload] = [step for step in STEPS if "upload-artifact" in step.get("uses", "")]
    assert re.fullmatch(r"actions/upload-artifact@[0-9a-f]{40}", upload["uses"])
    assert upload["with"]["path"] == "${{ steps.ci.outputs.results-dir }}"
    assert "steps.ci.outputs.results-dir != ''" in upload["if"]


def test_outputs_come_from_the_ci_step():
    assert {name: spec["value"] for name, spec in ACTION["outputs"].items()} == {
        name: f"${{{{ steps.ci.outputs.{name} }}}}" for name in OUTPUTS
    }


def test_the_package_goes_into_its_own_virtual_environment():
    [install] = [step for step in STEPS if "pip install" in step.get("run", "")]
    assert 'python3 -m venv "$venv"' in install["run"]
    assert 'venv="$RUNNER_TEMP/fasttrack-gitops-venv"' in install["run"]
    assert "$GITHUB_ACTION_PATH" in install["run"]
    assert '"fasttrack-gitops==$FTG_VERSION"' in install["run"]
    assert CI_STEP["run"].strip().endswith('"$RUNNER_TEMP/fasttrack-gitops-venv/bin/fasttrack-gitops" ci')


def test_the_ci_command_reads_each_input_from_its_variable():
    """The command side of the contract: every --NAME the action sets is an option reading FTG_CI_NAME."""
    from fasttrack_gitops.ci.command import command

    options = {param.opts[0].removeprefix("--"): param for param in command.params if param.opts[0].startswith("--")}
    assert set(options) == COMMAND_INPUTS, "the action's inputs and the command's options differ"
    for name in COMMAND_INPUTS:
        assert envvar(name) in (
            [options[name].envvar] if isinstance(options[name].envvar, str) else list(options[name].envvar or ())
        ), name


# -- the example workflow ---------------------------------------------------------------------------------------


def workflow_uses(workflow: dict) -> list[tuple[str, dict]]:
    """(job name, step) for every step of the workflow that uses an action."""
    return [(job, step) for job, spec in workflow["jobs"].items() for step in spec["steps"] if "uses" in step]


def test_the_example_workflow_uses_the_action_as_published():
    workflow = yaml.safe_load(WORKFLOW_FILE.read_text(encoding="utf-8"))
    ours = [(job, step) for job, step in workflow_uses(workflow) if step["uses"].startswith("fasttrack-gitops/")]
    assert {step["with"]["mode"] for _, step in ours} == {"validate", "run"}
    for job, step in ours:
        assert re.fullmatch(r"fasttrack-gitops/fasttrack-gitops@[0-9a-f]{40}", step["uses"]), step["uses"]
        # actionlint cannot see a remote action's inputs: check the `with:` keys here.
        assert set(step["with"]) <= set(ACTION["inputs"]), job
        for name in SECRET_INPUTS & set(step["with"]):
            assert step["with"][name].startswith("${{ secrets."), (job, name)


def test_the_example_workflow_checks_out_with_history_and_no_credentials():
    workflow = yaml.safe_load(WORKFLOW_FILE.read_text(encoding="utf-8"))
    checkouts = {job: step for job, step in workflow_uses(workflow) if step["uses"].startswith("actions/checkout@")}
    assert checkouts.keys() == workflow["jobs"].keys()
    for step in checkouts.values():
        assert step["with"]["persist-credentials"] is False
    assert checkouts["run"]["with"]["fetch-depth"] == 0  # paths are compared with history
    assert workflow["permissions"] == {}
    for spec in workflow["jobs"].values():
        assert spec["permissions"] == {"contents": "read", "checks": "write"}


# -- the README -------------------------------------------------------------------------------------------------


def test_the_readme_documents_every_input_and_output():
    readme = (PROJECT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Use in GitHub Actions", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([\w-]+)` \|", section, re.MULTILINE))
    assert documented == set(ACTION["inputs"]) | OUTPUTS
