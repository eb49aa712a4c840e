"""`/fasttrack` commands in pull-request comments, and who may give them."""

from __future__ import annotations

import pytest

from fasttrack_gitops.core.comment_commands import Command, command_allowed, parse_command, run_arguments
from fasttrack_gitops.core.pipeline.params import ParamError


@pytest.mark.parametrize(
    "body, command",
    [
        ("/fasttrack run", Command("run", None)),
        ("/fasttrack run train", Command("run", "train")),
        ("/fasttrack run pipelines/train.yaml", Command("run", "pipelines/train.yaml")),
        ("   /FastTrack   RUN    train   ", Command("run", "train")),
        ("/fasttrack\trun\ttrain", Command("run", "train")),
        ("/fasttrack retest", Command("retest", None)),
        ("/fasttrack cancel", Command("cancel", None)),
        ("/fasttrack ok-to-test", Command("ok-to-test", None)),
        ("/fasttrack OK-TO-TEST", Command("ok-to-test", None)),
        ("Looks good to me.\n\n/fasttrack retest\nThanks!", Command("retest", None)),
        ("Looks good\r\n/fasttrack cancel\r\n", Command("cancel", None)),
        ("/fasttrack cancel\n/fasttrack run", Command("cancel", None)),  # the first command line wins
        ("/fasttrack deploy now", Command("unknown", "deploy")),
        ("/fasttrack Deploy", Command("unknown", "Deploy")),  # as written, for the reply
        ("/fasttrack", Command("unknown", None)),
        ("please /fasttrack run", None),  # not at the start of a line
        ("> /fasttrack run", None),  # a quote of someone's command
        ("```\n/fasttrack run\n```", None),  # an example in a code block
        ("```\n/fasttrack run\n```\n/fasttrack retest", Command("retest", None)),
        ("/fasttracker run", None),
        ("`/fasttrack run`", None),
        ("", None),
        ("LGTM", None),
    ],
)
def test_parse_command(body, command):
    assert parse_command(body) == command


@pytest.mark.parametrize(
    "association, allowed",
    [
        ("OWNER", True),
        ("MEMBER", True),
        ("COLLABORATOR", True),
        ("member", True),
        ("CONTRIBUTOR", False),
        ("FIRST_TIME_CONTRIBUTOR", False),
        ("FIRST_TIMER", False),
        ("NONE", False),
        ("", False),
    ],
)
def test_only_owners_members_and_collaborators_may_command(association, allowed):
    assert command_allowed(association) is allowed


@pytest.mark.parametrize(
    ("argument", "expected"),
    [
        (None, (None, {})),
        ("train", ("train", {})),
        ("train lr=0.5 note='two words'", ("train", {"lr": "0.5", "note": "two words"})),
        ("lr=0.5", (None, {"lr": "0.5"})),
        ("train cmd='$(rm -rf /); echo'", ("train", {"cmd": "$(rm -rf /); echo"})),  # text, for an env var only
    ],
)
def test_run_arguments_are_the_pipeline_and_name_value_words(argument, expected):
    assert run_arguments(argument) == expected


@pytest.mark.parametrize(
    ("argument", "says"), [("train lr", "write NAME=VALUE"), ("train note='open", "close the quotes")]
)
def test_run_arguments_that_do_not_read_are_refused(argument, says):
    with pytest.raises(ParamError, match=says):
        run_arguments(argument)
