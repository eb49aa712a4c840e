"""Fuzz: `/fasttrack` commands in pull-request comments (core/comment_commands.py): anyone may write a comment.

Invariants: any comment body gives a Command or None; any argument to `run` gives (pipeline, parameters) or a
ParamError saying what to fix (never a traceback); a command inside a fenced block or a quote is never one.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fasttrack_gitops.core.comment_commands import COMMAND_VERBS, command_allowed, parse_command, run_arguments
from fasttrack_gitops.core.pipeline.params import ParamError

WORDS = st.sampled_from(
    ["/fasttrack", "/FastTrack", "run", "retest", "cancel", "ok-to-test", "train", "a=1", "b='x y'", '"', "'", "="]
    + ["```", "~~~", ">", "\\", "\n", "\r\n", " ", "\t", "\u2028", "\x0b", "é", "$(id)", "--", "a=", "=b"]
)
BODIES = st.one_of(st.lists(WORDS, max_size=20).map(" ".join), st.lists(WORDS, max_size=20).map("".join), st.text())


@given(body=BODIES)
def test_any_comment_gives_a_command_or_none_and_its_arguments_or_a_clear_error(body):
    command = parse_command(body)
    if command is None:
        return
    assert command.verb in (*COMMAND_VERBS, "unknown")
    if command.verb == "run":
        try:
            pipeline, values = run_arguments(command.argument)
        except ParamError as e:
            assert str(e)
        else:
            assert pipeline is None or isinstance(pipeline, str)
            assert all(isinstance(k, str) and isinstance(v, str) for k, v in values.items())


@given(argument=st.one_of(st.lists(WORDS, max_size=12).map(" ".join), st.text()))
def test_any_run_argument_gives_parameters_or_a_param_error(argument):
    try:
        run_arguments(argument)
    except ParamError as e:
        assert str(e)


@given(body=BODIES, fence=st.sampled_from(["```", "~~~", "```yaml"]))
def test_a_command_inside_a_fenced_block_is_not_one(body, fence):
    fenced = f"{fence}\n/fasttrack run\n{fence}"
    assert parse_command(fenced) is None
    assert parse_command("> /fasttrack run") is None


@given(association=st.text())
def test_any_author_association_is_allowed_or_not(association):
    assert command_allowed(association) in (True, False)
