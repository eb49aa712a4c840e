"""A pipeline's concurrency group for one selection: the `${{ name }}` placeholders and their values. Pure.

`concurrency: {group: "deploy-${{ branch }}"}` puts every job whose group
expands to the same text in one queue; the pipeline check (FT117) allows
only the names in CONCURRENCY_PLACEHOLDERS, which PLACEHOLDERS documents.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from fasttrack_gitops.core.triggers import Selection

# name -> what it expands to; the keys are CONCURRENCY_PLACEHOLDERS (pipeline/model.py), in the same order.
PLACEHOLDERS: dict[str, str] = {
    "ref": "the full git ref: refs/heads/main, refs/tags/v1.2, refs/pull/12/head",
    "branch": "the branch name (a pull request's head branch); empty for tags and schedules",
    "pr": "the pull request number; empty outside pull requests",
    "sha": "the commit id the job runs",
    "pipeline": "the pipeline's name",
    "repository": "the repository, owner/repo",
    "event": "what started the job: push, pull_request, schedule, manual or rerun",
}

_PLACEHOLDER = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)


def concurrency_group(template: str, context: Mapping[str, str]) -> str:
    """'deploy-${{ branch }}' -> 'deploy-main'; a name without a value expands to ''.

    The pipeline check (FT117) has already refused unknown names, so an
    empty expansion only means "this event has none" (no pr on a push).
    """
    return _PLACEHOLDER.sub(lambda m: str(context.get(m.group(1).strip(), "")), template)


def group_context(selection: Selection, *, repository: str, commit: str) -> dict[str, str]:
    """The placeholder values for one selection at one commit (see PLACEHOLDERS)."""
    t = selection.trigger
    if t["event"] == "pull_request":
        ref, branch, pr = f"refs/pull/{t['number']}/head", t.get("head_ref", ""), str(t["number"])
    else:
        ref = _full_ref(t.get("ref") or "")
        branch = ref[len("refs/heads/") :] if ref.startswith("refs/heads/") else ""
        pr = str(t["number"]) if t.get("number") is not None else ""
    return {
        "ref": ref,
        "branch": branch,
        "pr": pr,
        "sha": commit,
        "pipeline": selection.name,
        "repository": repository,
        "event": t["event"],
    }


def _full_ref(ref: str) -> str:
    """A manual run's ref as given: a full ref stays; a commit id is no ref; a short name is a branch."""
    if not ref or ref.startswith("refs/"):
        return ref
    if re.fullmatch(r"[0-9a-f]{40}", ref):
        return ""
    return f"refs/heads/{ref}"
