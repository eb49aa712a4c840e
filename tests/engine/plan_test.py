"""Planning: a pipeline file at a snapshot, checked and frozen; one file for `run`, a commit's pipelines for serve and ci.

Real git repositories with real commits in a temp folder; nothing is stored
or run here (the shells' tests do that).
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import git

from fasttrack_gitops.core import triggers
from fasttrack_gitops.core.job import rerun
from fasttrack_gitops.core.pipeline.params import ParamError
from fasttrack_gitops.engine import gitrepo
from fasttrack_gitops.engine.gitrepo import GitError
from fasttrack_gitops.engine.plan import (
    NotInSnapshot,
    RepoSource,
    check_at,
    code_trees_at,
    freeze_at,
    pipelines_at,
    plan,
    plan_file,
    plan_invalid,
    rerun_job,
    snapshot_at,
)
from fasttrack_gitops.engine.state.ledger import JobKey

PIPELINE = """\
version: "26.4.4"
name: {name}
tasks:
  - name: prepare
    command: echo prepare
  - name: train
    dependencies: [prepare]
    code: tasks/train
    command: python3 train.py
"""

PARAMS = """\
version: "26.4.4"
name: tuned
params:
  - name: lr
    default: 0.1
  - name: epochs
    default: 3
tasks:
  - name: fit
    command: echo fit
"""

GROUPED = """\
version: "26.4.4"
name: deploy
concurrency:
  group: deploy-${{ branch }}
  cancel_in_progress: true
tasks:
  - name: ship
    command: echo ship
"""


def put(root: Path, relpath: str, text: str) -> None:
    path = root / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")


def commit(root: Path, message: str = "change") -> str:
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)
    return git(root, "rev-parse", "HEAD").strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository on main: pipelines/train.yaml (task train's code in tasks/train), committed once."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    put(root, "pipelines/train.yaml", PIPELINE.format(name="train"))
    put(root, "tasks/train/train.py", "print('fit')\n")
    commit(root, "first")
    return root


def tree_of(root: Path, rev_path: str) -> str:
    return git(root, "rev-parse", rev_path).strip()


# -- check_at: one file at a snapshot -----------------------------------------------------------


def test_check_at_reads_the_commit_and_looks_code_folders_up_in_it(repo):
    put(repo, "pipelines/train.yaml", PIPELINE.format(name="train").replace("tasks/train", "tasks/other"))
    put(repo, "tasks/other/x.py", "")  # only in the work tree
    snap = gitrepo.open_snapshot(repo, "HEAD")

    checked = check_at(snap, "pipelines/train.yaml")

    assert checked is not None and checked.pipeline is not None  # the committed file, whose code folder is there
    assert checked.pipeline.task("train").code == "tasks/train"
    assert check_at(snap, "pipelines/nope.yaml") is None


def test_check_at_names_the_file_as_shown_and_fails_a_code_folder_missing_at_the_commit(repo):
    put(repo, "pipelines/train.yaml", PIPELINE.format(name="train").replace("tasks/train", "tasks/other"))
    put(repo, "tasks/other/x.py", "")
    commit(repo)
    git(repo, "rm", "-rq", "tasks/other")
    commit(repo, "the code folder goes")

    checked = check_at(gitrepo.open_snapshot(repo, "HEAD"), "pipelines/train.yaml", shown="./pipelines/train.yaml")

    assert checked is not None and checked.pipeline is None
    [d] = checked.diagnostics
    assert (d.code, d.file) == ("FT113", "./pipelines/train.yaml")


# -- freeze_at: the code trees, one rule ---------------------------------------------------------


def test_freeze_at_records_the_snapshot_and_each_tasks_code_tree(repo):
    head = git(repo, "rev-parse", "HEAD").strip()
    snap = snapshot_at(RepoSource("acme/pipes", repo), head, "refs/heads/main")
    checked = check_at(snap, "pipelines/train.yaml")

    job = freeze_at(snap, checked.pipeline, pipeline_path="pipelines/train.yaml", repository="acme/pipes", trigger={})

    assert (job.source, job.commit, job.ref, job.dirty) == ("commit", head, "refs/heads/main", False)
    assert job.tree == tree_of(repo, "HEAD^{tree}")
    assert job.code_trees == {"train": tree_of(repo, "HEAD:tasks/train"), "prepare": job.tree}  # no code: the root
    assert job.diagnostics == ()


def test_a_pipeline_is_frozen_only_at_a_snapshot_holding_its_code_folders(repo):
    """The rule run and the daemon share: a code folder missing at the snapshot is an error, never the root."""
    checked = check_at(gitrepo.open_snapshot(repo, "HEAD"), "pipelines/train.yaml")
    git(repo, "rm", "-rq", "tasks/train")
    commit(repo, "the code folder goes")
    later = gitrepo.open_snapshot(repo, "HEAD")

    with pytest.raises(GitError, match="code folder 'tasks/train' is not in commit"):
        code_trees_at(later, checked.pipeline)
    with pytest.raises(GitError):
        freeze_at(later, checked.pipeline, pipeline_path="pipelines/train.yaml", repository="r", trigger={})


def test_a_code_folder_that_is_a_symlink_ships_the_tree_it_leads_to(repo):
    (repo / "tasks" / "current").symlink_to("train")
    put(repo, "pipelines/train.yaml", PIPELINE.format(name="train").replace("tasks/train", "tasks/current"))
    commit(repo)
    snap = gitrepo.open_snapshot(repo, "HEAD")

    assert code_trees_at(snap, check_at(snap, "pipelines/train.yaml").pipeline) == {
        "train": tree_of(repo, "HEAD:tasks/train")
    }


# -- plan_file: what `run` plans ------------------------------------------------------------------


def test_plan_file_at_a_revision(repo):
    first = git(repo, "rev-parse", "HEAD").strip()
    put(repo, "pipelines/train.yaml", PIPELINE.format(name="renamed"))
    commit(repo)

    planned = plan_file(repo, "pipelines/train.yaml", rev=first)

    assert planned.job is not None and planned.diagnostics == []
    job = planned.job
    assert (job.pipeline, job.commit, job.source, job.ref) == ("train", first, "commit", first)
    assert job.repository == str(repo.resolve())
    assert job.trigger == {"event": "cli"}
    assert planned.snapshot.commit == first


def test_plan_file_of_the_work_tree_is_dirty_and_holds_the_uncommitted_code(repo, tmp_path):
    put(repo, "tasks/train/train.py", "print('changed')\n")

    planned = plan_file(repo, "pipelines/train.yaml", worktree=True, objects=tmp_path / "objects")

    job = planned.job
    assert (job.source, job.dirty) == ("worktree", True)
    assert job.code_trees["train"] != tree_of(repo, "HEAD:tasks/train")
    fresh = tmp_path / "fresh"
    gitrepo.materialise(planned.snapshot, job.code_trees["train"], fresh)
    assert (fresh / "train.py").read_text() == "print('changed')\n"


def test_plan_file_of_a_folder_in_no_repository_is_unversioned(tmp_path):
    folder = tmp_path / "plain"
    put(folder, "flow.yaml", PIPELINE.format(name="plain"))
    put(folder, "tasks/train/train.py", "")

    planned = plan_file(folder, "flow.yaml", objects=tmp_path / "objects")

    assert (planned.job.source, planned.job.commit, planned.job.dirty) == ("unversioned", None, False)
    assert planned.job.code_trees["train"] == gitrepo.tree_id(planned.snapshot, "tasks/train")


def test_plan_file_of_an_invalid_file_makes_no_job_and_says_why(repo):
    put(repo, "pipelines/train.yaml", PIPELINE.format(name="train").replace("command:", "comand:", 1))
    commit(repo)

    planned = plan_file(repo, "pipelines/train.yaml", shown="the/path/I/typed.yaml")

    assert planned.job is None
    assert "FT101" in {d.code for d in planned.diagnostics}
    assert {d.file for d in planned.diagnostics} == {"the/path/I/typed.yaml"}


def test_plan_file_of_a_file_not_in_the_commit(repo):
    put(repo, "pipelines/new.yaml", PIPELINE.format(name="new"))

    with pytest.raises(NotInSnapshot, match=r"pipelines/new.yaml is not a file in .* at commit") as raised:
        plan_file(repo, "pipelines/new.yaml")
    assert raised.value.snapshot.kind == "commit"


# -- a repository at a commit: the daemon's and the Action's ----------------------------------------


def test_pipelines_at_sorts_valid_from_invalid_files(repo):
    put(repo, "pipelines/broken.yaml", "version: 1\nname: broken\ntasks:\n  - nme: x\n")
    head = commit(repo)

    found = pipelines_at(RepoSource("acme/pipes", repo), head)

    assert list(found.valid) == ["pipelines/train.yaml"]
    name, diagnostics = found.invalid["pipelines/broken.yaml"]
    assert name == "broken" and diagnostics[0]["line"] == 4
    assert [c.name for c in found.candidates] == ["train"]
    assert found.snapshot.commit == head


def test_pipelines_at_reads_a_monorepo_folder_and_its_settings_at_the_commit(repo):
    put(repo, "ml/.fasttrack.yaml", "pipelines: [flows/*.yaml]\n")
    put(repo, "ml/flows/a.yaml", PIPELINE.format(name="a").replace("tasks/train", "code/a"))
    put(repo, "ml/code/a/run.py", "")
    head = commit(repo)

    found = pipelines_at(RepoSource("acme/mono", repo, prefix="ml"), head)

    assert list(found.valid) == ["flows/a.yaml"] and not found.invalid
    [planned] = plan(RepoSource("acme/mono", repo, prefix="ml"), found, [_selection("flows/a.yaml", "a")], ref=None)
    assert planned.job.code_trees["train"] == tree_of(repo, "HEAD:ml/code/a")
    assert planned.job.tree == tree_of(repo, "HEAD:ml")


def _selection(path: str, name: str, **trigger) -> triggers.Selection:
    trigger = {"event": "push", "ref": "refs/heads/main", **trigger}
    return triggers.Selection(path, name, trigger, triggers.trigger_key(trigger), f"{name} was selected")


def test_plan_freezes_each_selection_under_its_key_with_the_facts_of_the_delivery(repo):
    put(repo, "pipelines/deploy.yaml", GROUPED)
    head = commit(repo)
    source = RepoSource("acme/pipes", repo)
    found = pipelines_at(source, head)
    selections = [_selection("pipelines/train.yaml", "train"), _selection("pipelines/deploy.yaml", "deploy")]

    train, deploy = plan(source, found, selections, ref="refs/heads/main", trigger_extra={"installation": 42})

    assert train.key == JobKey("acme/pipes", head, "pipelines/train.yaml", "push:refs/heads/main")
    assert train.job.trigger == {
        "event": "push",
        "ref": "refs/heads/main",
        "reason": "train was selected",
        "installation": 42,
    }
    assert (train.job.commit, train.job.ref, train.job.repository) == (head, "refs/heads/main", "acme/pipes")
    assert train.job.code_trees["train"] == tree_of(repo, "HEAD:tasks/train")
    assert (train.group, train.cancel_in_progress) == (None, False)
    assert (deploy.group, deploy.cancel_in_progress) == ("acme/pipes:deploy-main", True)
    # The delivery's facts are recorded, not keyed: the same push polled (no installation) is the same job.
    [polled] = plan(source, found, selections[:1], ref="refs/heads/main")
    assert polled.key == train.key and "installation" not in polled.job.trigger


def test_plan_invalid_makes_a_job_per_invalid_file_carrying_its_diagnostics(repo):
    put(repo, "pipelines/broken.yaml", "version: 1\nname: broken\ntasks:\n  - nme: x\n")
    head = commit(repo)
    source = RepoSource("acme/pipes", repo)
    trigger = {"event": "push", "ref": "refs/heads/main"}

    [planned] = plan_invalid(
        source, pipelines_at(source, head), ref="refs/heads/main", trigger=trigger, trigger_extra={"installation": 7}
    )

    assert planned.key == JobKey("acme/pipes", head, "pipelines/broken.yaml", "push:refs/heads/main")
    assert planned.job.invalid and planned.job.pipeline == "broken"
    assert planned.job.trigger == {**trigger, "installation": 7}
    assert planned.job.diagnostics[0]["file"] == "pipelines/broken.yaml"
    assert planned.reason == "pipelines/broken.yaml is not valid"


def test_rerun_job_repeats_the_frozen_job_and_its_findings(repo):
    put(repo, "pipelines/tuned.yaml", PARAMS)
    head = commit(repo)
    source = RepoSource("acme/pipes", repo)
    [old] = plan(
        source, pipelines_at(source, head), [_selection("pipelines/tuned.yaml", "tuned", params={"lr": "1"})], ref=None
    )
    warning = {"file": "pipelines/tuned.yaml", "line": 3, "code": "FT201", "message": "a finding"}
    old = replace(old, job=replace(old.job, diagnostics=(warning,)))

    new = rerun_job(old.job, trigger={"event": "rerun", "id": "x", "of": old.job.id})

    assert new.id != old.job.id and new.rerun_of == old.job.id
    assert (new.spec, new.code_trees, new.commit, new.tree) == (old.job.spec, old.job.code_trees, head, old.job.tree)
    assert new.trigger == {"event": "rerun", "id": "x", "of": old.job.id}
    assert new.diagnostics == old.job.diagnostics != ()  # the findings go with it
    assert new.pipeline_model().params[0].value == 1.0  # and the parameter values given to the first
    assert rerun(old.job).diagnostics == ()  # which the core's rerun alone would drop


# -- parameters: overrides frozen into the job, refused before a job exists ---------------------------


def test_a_job_runs_with_the_defaults_or_the_values_given_and_records_them(repo):
    put(repo, "pipelines/tuned.yaml", PARAMS)
    head = commit(repo)

    defaults = plan_file(repo, "pipelines/tuned.yaml").job
    given = plan_file(repo, "pipelines/tuned.yaml", params={"epochs": "5"}).job

    assert [(p.name, p.value) for p in defaults.pipeline_model().params] == [("lr", 0.1), ("epochs", 3)]
    assert [(p.name, p.value) for p in given.pipeline_model().params] == [("lr", 0.1), ("epochs", 5)]
    assert given.spec["params"][1] == {"name": "epochs", "type": "integer", "default": 3, "value": 5}
    assert given.trigger["params"] == {"epochs": "5"} and "params" not in defaults.trigger
    assert given.spec_id != defaults.spec_id

    source = RepoSource("acme/pipes", repo)
    [planned] = plan(
        source, pipelines_at(source, head), [_selection("pipelines/tuned.yaml", "tuned", params={"lr": 0.5})], ref=None
    )
    assert planned.job.pipeline_model().params[0].value == 0.5


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ({"batch": "8"}, "pipeline 'tuned' has no parameter 'batch'; its parameters: lr, epochs"),
        ({"epochs": "three"}, "parameter 'epochs' is an integer: 'three' is not; write e.g. 3"),
        ({"lr": "nan"}, "parameter 'lr' is a number: 'nan' is not"),
    ],
)
def test_an_unknown_parameter_or_a_wrong_value_makes_no_job(repo, given, says):
    put(repo, "pipelines/tuned.yaml", PARAMS)
    commit(repo)

    with pytest.raises(ParamError, match=re.escape(says)):
        plan_file(repo, "pipelines/tuned.yaml", params=given)


def test_empty_params_as_fasttrack_exports_them_are_no_warning(repo):
    put(repo, "pipelines/train.yaml", PIPELINE.format(name="train").replace("tasks:\n", "params: []\ntasks:\n", 1))
    commit(repo)

    planned = plan_file(repo, "pipelines/train.yaml")

    assert planned.diagnostics == [] and planned.job.diagnostics == ()
