"""Which pipelines an event selects: GitHub Actions' `on:` rules, told through tables of events.

Every candidate is made from a real pipeline file through check_pipeline, so
the tests exercise the same normalised `on` the daemon sees. Each row names
the event, whether the pipeline runs, and a part of the reason a person reads.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from fasttrack_gitops.core import triggers
from fasttrack_gitops.core.events import ZERO_COMMIT, Manual, PullRequest, Push, Tick
from fasttrack_gitops.core.pipeline import check_pipeline
from fasttrack_gitops.core.triggers import (
    Candidate,
    Selection,
    explain_manual,
    explain_pull_request,
    explain_push,
    explain_tick,
    select_manual,
    select_pull_request,
    select_push,
    select_tick,
    trigger_key,
)

REPO = "acme/models"
BEFORE, AFTER = "1" * 40, "2" * 40
FOLLOW = ["main", "release/*"]


def candidate(
    on: str | None = None, *, path: str = "pipelines/p.yaml", name: str = "p", concurrency: object = None
) -> Candidate:
    """A Candidate from a pipeline file whose `on` is the given YAML (flow style), or no `on`."""
    text = f'version: "1"\nname: {name}\n'
    if on is not None:
        text += f"on: {on}\n"
    if concurrency is not None:
        text += f"concurrency: {json.dumps(concurrency)}\n"
    text += "tasks:\n  - name: a\n    command: echo a\n"
    result = check_pipeline(text.encode(), path)
    assert result.ok, result.diagnostics
    p = result.pipeline
    return Candidate(path=path, name=p.name, triggers=p.triggers, concurrency=p.concurrency)


def push(ref: str, *, after: str = AFTER, sender: str = "alice") -> Push:
    return Push(repository=REPO, ref=ref, before=BEFORE, after=after, sender=sender)


def pull_request(
    action: str = "opened", *, base: str = "main", head_repository: str = REPO, number: int = 12
) -> PullRequest:
    return PullRequest(
        repository=REPO,
        action=action,
        number=number,
        head_sha=AFTER,
        head_ref="feature/x",
        head_repository=head_repository,
        base_ref=base,
        sender="bob",
    )


def decide_push(on, ref, changed=None):
    [decision] = explain_push([candidate(on)], push(ref), changed=changed, follow_branches=FOLLOW)
    return decision


# --- push: branches and tags -------------------------------------------------------------------

PUSH_REFS = [
    # on, ref, runs, part of the reason
    (None, "refs/heads/main", True, "push to main (no `on`; main is a followed branch)"),
    (None, "refs/heads/release/2.0", True, "release/2.0 is a followed branch"),
    (
        None,
        "refs/heads/dev",
        False,
        ("push to dev: the pipeline has no `on` and dev is not a followed branch (main, release/*)"),
    ),
    (None, "refs/tags/v1", False, "push of tag v1: the pipeline has no `on`, so only pushes to followed branches"),
    ("push", "refs/heads/dev", True, "push to dev"),
    ("push", "refs/tags/v1", True, "push of tag v1"),
    ("[pull_request]", "refs/heads/main", False, "push to main: `on` has no push"),
    ("{schedule: [{cron: '0 3 * * *'}]}", "refs/heads/main", False, "`on` has no push"),
    ("{push: {branches: main}}", "refs/heads/main", True, "push to main"),
    ("{push: {branches: [main]}}", "refs/heads/dev", False, "push to dev: dev does not match on.push.branches (main)"),
    ("{push: {branches: [main]}}", "refs/tags/v1", False, "on.push has only a branches filter, so tag pushes"),
    ("{push: {branches: ['feature/*']}}", "refs/heads/feature/a", True, "push to feature/a"),
    ("{push: {branches: ['feature/*']}}", "refs/heads/feature/a/b", False, "does not match"),  # * stops at /
    ("{push: {branches: ['feature/**']}}", "refs/heads/feature/a/b", True, "push to feature/a/b"),
    ("{push: {branches: ['release/*', '!release/old']}}", "refs/heads/release/new", True, "push to release/new"),
    (
        "{push: {branches: ['release/*', '!release/old']}}",
        "refs/heads/release/old",
        False,
        "release/old does not match on.push.branches (release/*, !release/old)",
    ),
    (
        "{push: {branches-ignore: ['wip/**']}}",
        "refs/heads/wip/a/b",
        False,
        "wip/a/b matches on.push.branches-ignore (wip/**)",
    ),
    ("{push: {branches-ignore: ['wip/**']}}", "refs/heads/main", True, "push to main"),
    ("{push: {branches-ignore: ['wip/**']}}", "refs/tags/v1", False, "only a branches filter"),
    ("{push: {tags: ['v*']}}", "refs/tags/v1.2", True, "push of tag v1.2"),
    ("{push: {tags: ['v*']}}", "refs/tags/nightly", False, "nightly does not match on.push.tags (v*)"),
    ("{push: {tags: ['v*']}}", "refs/heads/main", False, "on.push has only a tags filter, so branch pushes"),
    ("{push: {tags: ['v*', '!v*-rc*']}}", "refs/tags/v2-rc1", False, "does not match on.push.tags"),
    ("{push: {branches: [main], tags: ['v*']}}", "refs/heads/main", True, "push to main"),
    ("{push: {branches: [main], tags: ['v*']}}", "refs/tags/v3", True, "push of tag v3"),
    ("{push: {branches: [main], tags: ['v*']}}", "refs/heads/dev", False, "does not match on.push.branches"),
    ("push", "refs/notes/commits", False, "only branch and tag pushes run pipelines"),
]


@pytest.mark.parametrize("on, ref, runs, reason", PUSH_REFS)
def test_push_branch_and_tag_filters(on, ref, runs, reason):
    decision = decide_push(on, ref)
    assert decision.selected is runs
    assert reason in decision.reason


# --- push and pull_request: paths ----------------------------------------------------------------

PATHS = [
    # on.push filter, changed, runs, part of the reason
    ("{paths: ['tasks/**']}", ["tasks/train/main.py"], True, "push to main changed tasks/train/main.py"),
    ("{paths: ['tasks/**']}", ["README.md", "tasks/a.py"], True, "changed tasks/a.py"),
    ("{paths: ['tasks/**']}", ["README.md"], False, "push to main: no changed file matches on.push.paths (tasks/**)"),
    ("{paths: ['tasks/**']}", None, True, "changed files unknown, so the path filters were not applied"),
    ("{paths: ['tasks/**']}", [], False, "push to main: no file changed, and on.push has path filters"),
    ("{paths: ['tasks/**', '!tasks/**/*.md']}", ["tasks/a/README.md"], False, "no changed file matches"),
    ("{paths: ['tasks/**', '!tasks/**/*.md']}", ["tasks/a/README.md", "tasks/a/x.py"], True, "changed tasks/a/x.py"),
    (
        "{paths-ignore: ['docs/**', '*.md']}",
        ["docs/a.md", "README.md"],
        False,
        "every changed file matches on.push.paths-ignore (docs/**, *.md)",
    ),
    ("{paths-ignore: ['docs/**']}", ["docs/a.md", "src/x.py"], True, "push to main changed src/x.py"),
    ("{paths-ignore: ['docs/**']}", None, True, "changed files unknown"),
    ("{paths-ignore: ['docs/**']}", [], False, "no file changed"),
    ("{paths: ['**.py'], paths-ignore: ['tests/**']}", ["tests/a.py"], False, "every changed file matches"),
    ("{branches: [main], paths: ['tasks/**']}", ["tasks/a.py"], True, "push to main changed tasks/a.py"),
    ("{}", [], True, "push to main"),  # no path filter: an empty push still runs
]


@pytest.mark.parametrize("spec, changed, runs, reason", PATHS)
def test_push_path_filters(spec, changed, runs, reason):
    decision = decide_push(f"{{push: {spec}}}", "refs/heads/main", changed)
    assert decision.selected is runs
    assert reason in decision.reason


def test_path_filters_are_not_evaluated_for_tag_pushes():
    """GitHub: "Path filters are not evaluated for pushes of tags"."""
    decision = decide_push("{push: {tags: ['v*'], paths: ['tasks/**']}}", "refs/tags/v1", ["README.md"])
    assert decision.selected and decision.reason == "push of tag v1"


def test_the_reason_names_a_few_changed_files_and_counts_the_rest():
    changed = {"tasks/e.py", "tasks/a.py", "tasks/c.py", "tasks/b.py", "tasks/d.py"}
    decision = decide_push("{push: {paths: ['tasks/**']}}", "refs/heads/main", changed)
    assert decision.reason == "push to main changed tasks/a.py, tasks/b.py, tasks/c.py and 2 more"


@pytest.mark.parametrize("ref, kind", [("refs/heads/main", "branch"), ("refs/tags/v1", "tag")])
def test_a_deleted_branch_or_tag_selects_nothing(ref, kind):
    gone = push(ref, after=ZERO_COMMIT)
    candidates = [candidate(None), candidate("push", path="b.yaml"), candidate("{push: {tags: ['*']}}", path="c.yaml")]
    assert select_push(candidates, gone, changed=None, follow_branches=FOLLOW) == []
    decisions = explain_push(candidates, gone, changed=None, follow_branches=FOLLOW)
    assert {d.reason.split(": ", 1)[1] for d in decisions} == {f"the {kind} was deleted"}


def test_select_push_returns_the_selected_ones_with_their_trigger_and_key():
    candidates = [
        candidate(
            "{push: {branches: [main]}}",
            path="pipelines/train.yaml",
            name="train",
            concurrency={"group": "train-${{ branch }}", "cancel_in_progress": True},
        ),
        candidate("{push: {branches: [dev]}}", path="pipelines/dev.yaml", name="dev"),
        candidate(None, path="pipelines/eval.yaml", name="eval"),
    ]
    selections = select_push(candidates, push("refs/heads/main"), changed=["x"], follow_branches=["main"])
    assert [s.name for s in selections] == ["train", "eval"]
    train = selections[0]
    assert train == Selection(
        path="pipelines/train.yaml",
        name="train",
        trigger={"event": "push", "ref": "refs/heads/main", "before": BEFORE, "after": AFTER, "sender": "alice"},
        key="push:refs/heads/main",
        reason="push to main",
        concurrency={"group": "train-${{ branch }}", "cancel_in_progress": True},
    )
    assert json.loads(json.dumps(train.trigger)) == train.trigger
    assert train.trigger is not selections[1].trigger  # each job record gets its own copy
    explained = explain_push(candidates, push("refs/heads/main"), changed=["x"], follow_branches=["main"])
    assert [(d.candidate.name, d.selected) for d in explained] == [("train", True), ("dev", False), ("eval", True)]
    assert explained[1].reason == "push to main: main does not match on.push.branches (dev)"


def test_no_followed_branches_means_a_pipeline_without_on_never_runs_on_push():
    [decision] = explain_push([candidate(None)], push("refs/heads/main"), changed=None, follow_branches=[])
    assert not decision.selected
    assert decision.reason.endswith("main is not a followed branch (none)")


# --- pull requests -----------------------------------------------------------------------------------

PULL_REQUESTS = [
    # on, action, base, changed, runs, part of the reason
    (None, "opened", "main", None, False, "pull request #12 into main (opened): the pipeline has no `on`"),
    ("push", "opened", "main", None, False, "`on` has no pull_request"),
    ("pull_request", "opened", "main", None, True, "pull request #12 into main (opened)"),
    ("pull_request", "synchronize", "main", None, True, "(synchronize)"),
    ("pull_request", "reopened", "dev", None, True, "into dev (reopened)"),
    (
        "pull_request",
        "closed",
        "main",
        None,
        False,
        "closed is not in the default types (opened, synchronize, reopened)",
    ),
    ("pull_request", "labeled", "main", None, False, "labeled is not in the default types"),
    ("{pull_request: {types: [closed, labeled]}}", "closed", "main", None, True, "(closed)"),
    (
        "{pull_request: {types: [closed, labeled]}}",
        "opened",
        "main",
        None,
        False,
        "opened is not in on.pull_request.types (closed, labeled)",
    ),
    ("{pull_request: {branches: [main]}}", "opened", "main", None, True, "into main"),
    (
        "{pull_request: {branches: [main]}}",
        "opened",
        "dev",
        None,
        False,
        "dev does not match on.pull_request.branches (main)",
    ),
    ("{pull_request: {branches: ['release/**']}}", "opened", "release/2/hotfix", None, True, "release/2/hotfix"),
    ("{pull_request: {paths: ['tasks/**']}}", "synchronize", "main", ["tasks/a.py"], True, "changed tasks/a.py"),
    (
        "{pull_request: {paths: ['tasks/**']}}",
        "synchronize",
        "main",
        ["README.md"],
        False,
        "no changed file matches on.pull_request.paths (tasks/**)",
    ),
    ("{pull_request: {paths: ['tasks/**']}}", "synchronize", "main", None, True, "changed files unknown"),
    ("{pull_request: {paths: ['tasks/**']}}", "synchronize", "main", [], False, "no file changed"),
    (
        "{pull_request: {paths-ignore: ['docs/**']}}",
        "opened",
        "main",
        ["docs/x.md"],
        False,
        "every changed file matches on.pull_request.paths-ignore (docs/**)",
    ),
]


@pytest.mark.parametrize("on, action, base, changed, runs, reason", PULL_REQUESTS)
def test_pull_request_rules(on, action, base, changed, runs, reason):
    [decision] = explain_pull_request([candidate(on)], pull_request(action, base=base), changed=changed)
    assert decision.selected is runs
    assert reason in decision.reason


@pytest.mark.parametrize("head_repository, fork", [(REPO, False), ("ACME/Models", False), ("mallory/models", True)])
def test_a_pull_request_from_a_fork_is_selected_and_marked(head_repository, fork):
    [selection] = select_pull_request(
        [candidate("pull_request")], pull_request(head_repository=head_repository), changed=None
    )
    assert selection.trigger == {
        "event": "pull_request",
        "number": 12,
        "action": "opened",
        "head_sha": AFTER,
        "base_ref": "main",
        "head_ref": "feature/x",
        "fork": fork,
        "sender": "bob",
    }
    assert selection.key == "pull_request:12"


# --- manual runs -----------------------------------------------------------------------------------------

MANUAL_CANDIDATES = [
    ("pipelines/train.yaml", "train", "{push: {branches: [main]}}"),
    ("pipelines/eval.yaml", "eval", None),
    ("pipelines/nightly.yaml", "nightly", "{schedule: [{cron: '0 3 * * *'}], manual: false}"),
    ("pipelines/by-hand.yaml", "by-hand", "[manual]"),
    ("pipelines/odd.yaml", "pipelines/train.yaml", "push"),  # a name that looks like another file's path
]


def manual(pipeline: str) -> Manual:
    return Manual(repository=REPO, pipeline=pipeline, ref="main", request_id="req-7", sender="carol")


@pytest.mark.parametrize(
    "asked, runs",
    [
        ("train", "pipelines/train.yaml"),  # by name, although its `on` has no manual: an operator asked
        ("eval", "pipelines/eval.yaml"),  # no `on` at all
        ("nightly", "pipelines/nightly.yaml"),  # even `manual: false`
        ("by-hand", "pipelines/by-hand.yaml"),
        ("pipelines/eval.yaml", "pipelines/eval.yaml"),  # by path
        ("./pipelines/eval.yaml", "pipelines/eval.yaml"),
        ("pipelines/train.yaml", "pipelines/train.yaml"),  # a path wins over an equal name
        ("pipelines/odd.yaml", "pipelines/odd.yaml"),
        ("nope", None),
        ("Train", None),
    ],
)
def test_manual_runs_by_name_or_path(asked, runs):
    candidates = [candidate(on, path=path, name=name) for path, name, on in MANUAL_CANDIDATES]
    selections = select_manual(candidates, manual(asked))
    assert [s.path for s in selections] == ([runs] if runs else [])
    for s in selections:
        assert s.trigger == {"event": "manual", "ref": "main", "request_id": "req-7", "sender": "carol"}
        assert s.key == "manual:req-7"
        assert s.reason == f"manual run of {s.name} at main by carol"


def test_explain_manual_says_what_was_asked_for():
    decisions = explain_manual([candidate(None, name="a"), candidate(None, path="b.yaml", name="b")], manual("b"))
    assert [(d.selected, d.reason) for d in decisions] == [
        (False, "manual run asked for b"),
        (True, "manual run of b at main by carol"),
    ]


# --- schedules ---------------------------------------------------------------------------------------------

AT = 1764302400.0  # 2025-11-28 04:00 UTC


def tick(cron: str = "0 4 * * *", path: str = "pipelines/nightly.yaml") -> Tick:
    return Tick(repository=REPO, pipeline_path=path, cron=cron, at=AT)


@pytest.mark.parametrize(
    "on, event, runs, reason",
    [
        (
            "{schedule: [{cron: '0 3 * * *'}, {cron: '0 4 * * *'}]}",
            tick(),
            True,
            "schedule '0 4 * * *' fell due at 2025-11-28 04:00 UTC",
        ),
        ("{schedule: [{cron: '0  4 * * *'}]}", tick(), True, "fell due"),  # spacing is not a change
        ("{schedule: [{cron: '0 5 * * *'}]}", tick(), False, "schedule '0 4 * * *' is no longer in on.schedule"),
        ("push", tick(), False, "is no longer in on.schedule"),
        (None, tick(), False, "is no longer in on.schedule"),
        (
            "{schedule: [{cron: '0 4 * * *'}]}",
            tick(path="pipelines/other.yaml"),
            False,
            "belongs to pipelines/other.yaml",
        ),
    ],
)
def test_tick_selects_its_pipeline_while_the_schedule_is_still_there(on, event, runs, reason):
    [decision] = explain_tick([candidate(on, path="pipelines/nightly.yaml")], event)
    assert decision.selected is runs
    assert reason in decision.reason


def test_tick_selection_trigger_and_key():
    others = [candidate("{schedule: [{cron: '0 4 * * *'}]}", path=f"pipelines/{n}.yaml", name=n) for n in "ab"]
    nightly = candidate("{schedule: [{cron: '0 4 * * *'}]}", path="pipelines/nightly.yaml", name="nightly")
    [selection] = select_tick([*others, nightly], tick())
    assert selection.name == "nightly"
    assert selection.trigger == {"event": "schedule", "cron": "0 4 * * *", "at": AT}
    assert selection.key == "schedule:0 4 * * *@1764302400"


# --- trigger keys --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "trigger, key",
    [
        ({"event": "push", "ref": "refs/heads/main", "before": BEFORE, "after": AFTER}, "push:refs/heads/main"),
        ({"event": "push", "ref": "refs/tags/v1"}, "push:refs/tags/v1"),
        ({"event": "pull_request", "number": 12, "action": "synchronize"}, "pull_request:12"),
        ({"event": "schedule", "cron": "0 3 * * *", "at": 1764300000.0}, "schedule:0 3 * * *@1764300000"),
        ({"event": "schedule", "cron": "0 3 * * *", "at": 1764300000.9}, "schedule:0 3 * * *@1764300000"),
        ({"event": "manual", "ref": "main", "request_id": "r1"}, "manual:r1"),
        ({"event": "rerun", "id": "01HZX", "job": "01HZA"}, "rerun:01HZX"),
    ],
)
def test_trigger_key_for_each_event(trigger, key):
    assert trigger_key(trigger) == key


def test_trigger_key_refuses_an_event_it_cannot_tell_apart():
    with pytest.raises(ValueError, match="'rerun' trigger needs an 'id'"):
        trigger_key({"event": "rerun"})


# --- the module stays pure -------------------------------------------------------------------------------------


def test_triggers_does_no_io():
    tree = ast.parse(Path(triggers.__file__).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    forbidden = {
        "httpx",
        "sqlite3",
        "subprocess",
        "dulwich",
        "fasttrack_gitops.engine.state.store",
        "fasttrack_gitops.cli",
        "fasttrack_gitops.engine.gitrepo",
        "fasttrack_gitops.daemon",
        "os",
        "asyncio",
    }
    assert not {name for name in imported if name.split(".")[0] in forbidden or name in forbidden}, imported
