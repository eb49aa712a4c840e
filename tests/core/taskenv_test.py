"""Task environments: envs in FastTrack's order, secrets resolved, checked and masked; the secrets file."""

from __future__ import annotations

import textwrap

import pytest
from conftest import MINIMAL

from fasttrack_gitops.core.errors import UsageError
from fasttrack_gitops.core.pipeline import check_pipeline
from fasttrack_gitops.core.taskenv import (
    SecretsError,
    TaskEnvironment,
    check_secrets,
    masks,
    parse_dotenv,
    referenced_secrets,
    secrets_from_environ,
    task_environment,
)


def pipeline(text: str):
    result = check_pipeline(textwrap.dedent(text).encode("utf-8"), "p.yaml")
    assert result.pipeline is not None, result.diagnostics
    return result.pipeline


def environment(text: str, task: str, secrets=None) -> TaskEnvironment:
    p = pipeline(text)
    return task_environment(p, p.task(task), secrets or {})


ENVS = """\
version: "1"
name: envs
environment:
  envs:
    SEED: "42"
    MODE: pipeline
    SHARED: from-pipeline
tasks:
  - name: train
    command: python3 train.py
    environment:
      envs:
        SHARED: from-task
        EPOCHS: 3
        VERBOSE: true
        EMPTY:
  - name: plain
    command: echo plain
"""

SECRETS = """\
version: "1"
name: secrets
environment:
  envs:
    TOKEN: "${{ secrets.API_TOKEN }}"
tasks:
  - name: fetch
    command: "curl -H 'Authorization: ${{secrets.API_TOKEN}}' -u ${{   secrets.USER }}:${{ secrets.PASSWORD   }} x"
    environment:
      envs:
        DSN: "postgres://${{ secrets.USER }}:${{ secrets.PASSWORD }}@db/x"
        KEY: "${{ secrets.S3_KEY }}"
  - name: train
    command: python3 train.py --key ${{ secrets.S3_KEY }} --wandb ${{ secrets.WANDB }}
"""

ALL_SECRETS = {"API_TOKEN": "tok-123", "USER": "kim", "PASSWORD": "p@ss w0rd", "S3_KEY": "AKIA9999", "WANDB": "wb-xyz"}


# --- envs -----------------------------------------------------------------------------------------------------


def test_pipeline_envs_come_first_and_task_envs_win():
    env = environment(ENVS, "train")
    assert env.env == {
        "SEED": "42",
        "MODE": "pipeline",
        "SHARED": "from-task",
        "EPOCHS": "3",
        "VERBOSE": "true",
        "EMPTY": "",
    }
    assert list(env.env) == ["SEED", "MODE", "SHARED", "EPOCHS", "VERBOSE", "EMPTY"]
    assert env.command == "python3 train.py"
    assert env.warnings == ()


def test_a_task_without_envs_gets_the_pipelines():
    assert environment(ENVS, "plain").env == {"SEED": "42", "MODE": "pipeline", "SHARED": "from-pipeline"}


def test_a_pipeline_without_envs_gives_an_empty_environment():
    env = environment(MINIMAL, "train")
    assert env == TaskEnvironment(env={}, command="echo train", warnings=())


def test_a_service_task_without_a_command_has_none():
    env = environment(
        """\
        version: "1"
        name: svc
        tasks:
          - name: serve
            type: serving
            service: {replicas: 1}
        """,
        "serve",
    )
    assert env.command is None


# --- secret references ----------------------------------------------------------------------------------------


def test_secrets_are_resolved_in_envs_and_the_command():
    env = environment(SECRETS, "fetch", ALL_SECRETS)
    assert env.env == {"TOKEN": "tok-123", "DSN": "postgres://kim:p@ss w0rd@db/x", "KEY": "AKIA9999"}
    assert env.command == "curl -H 'Authorization: tok-123' -u kim:p@ss w0rd x"
    assert "${{" not in env.command


def test_each_task_gets_only_its_own_references_resolved():
    env = environment(SECRETS, "train", ALL_SECRETS)
    assert env.env == {"TOKEN": "tok-123"}
    assert env.command == "python3 train.py --key AKIA9999 --wandb wb-xyz"


@pytest.mark.parametrize(
    "reference",
    [
        "${{secrets.X}}",
        "${{ secrets.X }}",
        "${{  secrets.X}}",
        "${{secrets.X   }}",
        "${{\tsecrets.X\t}}",
    ],
)
def test_spaces_inside_the_braces_do_not_matter(reference):
    text = f"""\
        version: "1"
        name: p
        tasks:
          - name: t
            command: "echo {reference}"
            environment:
              envs:
                V: "{reference}"
        """
    p = pipeline(text)
    env = task_environment(p, p.task("t"), {"X": "value"})
    assert env.command == "echo value"
    assert env.env == {"V": "value"}
    assert referenced_secrets(p) == ["X"]


def test_secret_values_are_inserted_literally():
    value = r"a\1b$0\g<0>${{ secrets.OTHER }}&"
    env = environment(SECRETS, "train", {**ALL_SECRETS, "S3_KEY": value})
    assert env.command == f"python3 train.py --key {value} --wandb wb-xyz"


def test_an_empty_secret_resolves_to_nothing():
    env = environment(SECRETS, "train", {**ALL_SECRETS, "WANDB": ""})
    assert env.command == "python3 train.py --key AKIA9999 --wandb "


def test_referenced_secrets_in_order_of_first_use_without_duplicates():
    # pipeline envs, then each task's envs and command, in file order
    assert referenced_secrets(pipeline(SECRETS)) == ["API_TOKEN", "USER", "PASSWORD", "S3_KEY", "WANDB"]


def test_a_pipeline_without_secrets_references_none():
    assert referenced_secrets(pipeline(ENVS)) == []
    check_secrets(pipeline(ENVS), {})


# --- check_secrets ----------------------------------------------------------------------------------------------


def test_all_secrets_provided_passes():
    check_secrets(pipeline(SECRETS), ALL_SECRETS)
    check_secrets(pipeline(SECRETS), {**ALL_SECRETS, "UNUSED": "x"})


def test_a_provided_but_empty_secret_is_fine():
    check_secrets(pipeline(SECRETS), {**ALL_SECRETS, "PASSWORD": "", "WANDB": ""})


def test_missing_secrets_are_a_usage_error_naming_every_one_and_how_to_provide_them():
    provided = {"API_TOKEN": "tok-123", "PASSWORD": "x"}
    with pytest.raises(SecretsError) as caught:
        check_secrets(pipeline(SECRETS), provided)
    message = str(caught.value)
    assert isinstance(caught.value, UsageError)
    assert caught.value.exit_code == 2
    assert "pipeline 'secrets'" in message
    assert "USER, S3_KEY, WANDB" in message  # every missing one, in order of first use
    assert "API_TOKEN" not in message and "PASSWORD" not in message
    assert "secrets USER" in message  # plural
    assert "FTG_SECRET_USER=..." in message
    assert "USER=..." in message and "--secrets-file" in message


def test_one_missing_secret_is_named_in_the_singular():
    with pytest.raises(
        SecretsError,
        match=r"uses secret WANDB, not provided; set FTG_SECRET_WANDB=\.\.\. "
        r"in the environment or put WANDB=\.\.\. in a file given with "
        r"--secrets-file",
    ):
        check_secrets(pipeline(SECRETS), {k: v for k, v in ALL_SECRETS.items() if k != "WANDB"})


def test_the_message_never_shows_a_provided_value():
    with pytest.raises(SecretsError) as caught:
        check_secrets(pipeline(SECRETS), {"API_TOKEN": "tok-123"})
    assert "tok-123" not in str(caught.value)


# --- reserved variables -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["PIPELINE_OUTPUT_ROOT", "PIPELINE_INPUT1", "PIPELINE_INPUT12", "PIPELINE_INPUT_ROOT", "PIPELINE_VFROOT"]
)
def test_a_pipeline_data_variable_set_in_envs_is_a_warning(name):
    env = environment(
        f"""\
        version: "1"
        name: p
        tasks:
          - name: t
            command: t
            environment:
              envs:
                {name}: /somewhere
        """,
        "t",
    )
    assert env.warnings == (
        f"task 't': {name} is set to the pipeline data folder path, not to the value in the pipeline file",
    )
    assert env.env == {name: "/somewhere"}


def test_pipeline_level_reserved_variables_warn_for_every_task():
    p = pipeline("""\
        version: "1"
        name: p
        environment:
          envs:
            PIPELINE_VFROOT: /v
        tasks:
          - name: a
            command: a
            environment:
              envs:
                PIPELINE_OUTPUT_ROOT: /o
          - name: b
            command: b
        """)
    assert task_environment(p, p.task("a"), {}).warnings == (
        "task 'a': PIPELINE_VFROOT is set to the pipeline data folder path, not to the value in the pipeline file",
        (
            "task 'a': PIPELINE_OUTPUT_ROOT is set to the pipeline data folder path, not to the value in the "
            "pipeline file"
        ),
    )
    assert len(task_environment(p, p.task("b"), {}).warnings) == 1


@pytest.mark.parametrize(
    "name", ["PIPELINE_NAME", "PIPELINE_INPUT", "PIPELINE_OUTPUT", "MY_PIPELINE_VFROOT", "PIPELINE_INPUTX"]
)
def test_other_pipeline_variables_are_not_warned_about(name):
    env = environment(
        f"""\
        version: "1"
        name: p
        tasks:
          - name: t
            command: t
            environment:
              envs:
                {name}: x
        """,
        "t",
    )
    assert env.warnings == ()


# --- secrets from the environment -------------------------------------------------------------------------------


def test_secrets_from_environ_take_the_ftg_secret_variables():
    environ = {
        "FTG_SECRET_API_TOKEN": "tok",
        "FTG_SECRET_EMPTY": "",
        "PATH": "/bin",
        "FTG_OTHER": "x",
        "ftg_secret_lower": "no",
    }
    assert secrets_from_environ(environ) == {"API_TOKEN": "tok", "EMPTY": ""}


# --- parse_dotenv -----------------------------------------------------------------------------------------------


def test_parse_dotenv_reads_names_and_values():
    text = textwrap.dedent("""\
        # secrets for the demo pipeline

        API_TOKEN=tok-123
          USER = kim
        export PASSWORD=p@ss
        export   SPACED=yes
        DOUBLE="a value with spaces"
        SINGLE='it''s'
        URL=postgres://u:p@h/db?sslmode=require&x=1
        QUOTED_EQ="a=b=c"
        EMPTY=
        EMPTY_QUOTED=""
        HASH=abc#def
            # an indented comment
        """)
    assert parse_dotenv(text, ".secrets") == {
        "API_TOKEN": "tok-123",
        "USER": "kim",
        "PASSWORD": "p@ss",
        "SPACED": "yes",
        "DOUBLE": "a value with spaces",
        "SINGLE": "it''s",
        "URL": "postgres://u:p@h/db?sslmode=require&x=1",
        "QUOTED_EQ": "a=b=c",
        "EMPTY": "",
        "EMPTY_QUOTED": "",
        "HASH": "abc#def",
    }


def test_parse_dotenv_keeps_spaces_inside_quotes_and_unmatched_quotes():
    text = 'PADDED="  x  "\nOPEN="abc\nMIXED="abc\'\nONE="\n'
    assert parse_dotenv(text, "f") == {"PADDED": "  x  ", "OPEN": '"abc', "MIXED": "\"abc'", "ONE": '"'}


def test_parse_dotenv_takes_windows_line_endings():
    assert parse_dotenv("A=1\r\nB=2\r\n", "f") == {"A": "1", "B": "2"}


def test_a_later_line_wins():
    assert parse_dotenv("A=1\nA=2\n", "f") == {"A": "2"}


def test_an_empty_file_has_no_secrets():
    assert parse_dotenv("", "f") == {}
    assert parse_dotenv("\n# only a comment\n\n", "f") == {}


@pytest.mark.parametrize(
    "line",
    [
        "JUST_A_NAME",
        "1ABC=x",
        "MY-NAME=x",
        "=value",
        "two words=x",
        "export",
        "export =x",
        "NAME:x",
    ],
)
def test_a_malformed_line_is_an_error_naming_the_file_and_line(line):
    text = f"# header\nGOOD=1\n\n{line}\nLATER=2\n"
    with pytest.raises(SecretsError) as caught:
        parse_dotenv(text, "conf/.secrets")
    assert str(caught.value).startswith("conf/.secrets:4: expected NAME=value")
    assert caught.value.exit_code == 2


# --- masks ------------------------------------------------------------------------------------------------------


def test_masks_are_the_used_secret_values_longest_first():
    secrets = {"A": "xy", "B": "a-much-longer-value", "C": "medium-1", "UNUSED": "not-used-anywhere-at-all"}
    assert masks(secrets, ["A", "B", "C"]) == ("a-much-longer-value", "medium-1", "xy")


def test_masks_leave_out_empty_values_and_secrets_not_provided():
    assert masks({"A": "", "B": "bee"}, ["A", "B", "MISSING"]) == ("bee",)
    assert masks({"A": ""}, ["A"]) == ()
    assert masks({}, []) == ()


def test_masks_leave_out_secrets_the_pipeline_does_not_use():
    assert masks(ALL_SECRETS, referenced_secrets(pipeline(SECRETS))[:2]) == ("tok-123", "kim")
    assert masks(ALL_SECRETS, []) == ()


def test_a_value_shared_by_two_secrets_is_one_mask():
    assert masks({"A": "same", "B": "same"}, ["A", "B"]) == ("same",)


def test_masks_hide_every_secret_of_a_real_pipeline():
    p = pipeline(SECRETS)
    assert masks(ALL_SECRETS, referenced_secrets(p)) == ("p@ss w0rd", "AKIA9999", "tok-123", "wb-xyz", "kim")
