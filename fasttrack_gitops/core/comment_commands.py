"""`/fasttrack` commands in pull-request comments, who may give them, and the fork gate they open. Pure.

A trusted person drives the daemon from a pull request: `run [PIPELINE]`,
`retest`, `cancel`, and `ok-to-test`, which lets a fork's pull request run
(with secrets) after it was held at a `Gate`.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Any

from fasttrack_gitops.core.events import TRUSTED_ASSOCIATIONS
from fasttrack_gitops.core.pipeline.params import ParamError, parse_assignments

COMMAND_VERBS = ("run", "retest", "cancel", "ok-to-test")


@dataclass(frozen=True)
class Command:
    """One /fasttrack line of a comment, as written."""

    verb: str  # one of COMMAND_VERBS, or "unknown" (then argument is the verb as written, None if missing)
    argument: str | None


_COMMAND_LINE = re.compile(r"/fasttrack(?:\s+(\S+)(?:\s+(.*?))?)?\s*", re.IGNORECASE)


def parse_command(body: str) -> Command | None:
    """The first line of the comment that is a /fasttrack command; None when there is none.

    Lines inside fenced code blocks and quoted lines ("> /fasttrack run")
    are not commands: they show or cite one, and running it again would
    surprise everyone.
    """
    fenced = False
    for line in body.splitlines():
        text = line.strip()
        if text.startswith(("```", "~~~")):
            fenced = not fenced
            continue
        match = None if fenced else _COMMAND_LINE.fullmatch(text)
        if match:
            verb, argument = match.group(1), match.group(2) or None
            if verb is not None and verb.lower() in COMMAND_VERBS:
                return Command(verb.lower(), argument)
            return Command("unknown", verb)
    return None


def run_arguments(argument: str | None) -> tuple[str | None, dict[str, str]]:
    """`/fasttrack run [PIPELINE] [NAME=VALUE ...]` -> (the pipeline or None, the parameter values).

    The words are split as a shell would split them (quotes keep spaces in a
    value) but never given to one: the values reach tasks as environment
    variables only.
    """
    try:
        words = shlex.split(argument or "")
    except ValueError as e:
        raise ParamError(f"cannot read the arguments ({e}); close the quotes around a value") from None
    pipeline = words.pop(0) if words and "=" not in words[0] else None
    return pipeline, parse_assignments(words, where="parameter")


def command_allowed(association: str) -> bool:
    """Whether a comment's author may drive the daemon (owners, members, collaborators)."""
    return association.upper() in TRUSTED_ASSOCIATIONS


@dataclass(frozen=True)
class Gate:
    """A pull request from a fork, waiting for /fasttrack ok-to-test (or approved)."""

    repository: str
    number: int
    head_sha: str
    event: dict[str, Any]  # the PullRequest record, as JSON
    held_at: float
    approved_by: str | None
