"""`fasttrack-gitops validate`, as a user runs it: on files, on folders, in CI formats, on bad input."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import MINIMAL, cannot_run, git, without_root_privilege

from fasttrack_gitops.cli import main

BROKEN = """\
version: "26.4.4"
name: demo
tasks:
  - name: train
    command: echo train
  - name: b
    dependencies: [trian]
    command: echo b
"""
BROKEN_LINE = "broken.yaml:7:20: error FT103: task 'b' depends on unknown task 'trian' (did you mean 'train'?)"

WITH_SECRET_LITERAL = """\
version: "26.4.4"
name: warned
environment:
  envs:
    HF_TOKEN: hf_XXXXXXXXX
tasks:
  - name: train
    command: echo train
"""


def with_code(code: str, name: str = "demo") -> str:
    return f"""\
version: "26.4.4"
name: {name}
tasks:
  - name: train
    command: python3 main.py
    code: {code}
"""


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["validate", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys, *argv: str) -> tuple[int, dict]:
    code, out, _ = run(capsys, "--format", "json", *argv)
    return code, json.loads(out)


def codes(report: dict) -> list[str]:
    return [d["code"] for d in report["diagnostics"]]


# --- the happy paths -----------------------------------------------------------


def test_the_examples_repository_is_valid(capsys, examples_repo):
    code, out, err = run(capsys, str(examples_repo))
    assert code == 0
    assert out.splitlines() == ["2 pipeline files valid"]
    assert err == ""


def test_the_examples_repository_has_no_diagnostics_at_all(capsys, examples_repo):
    code, report = run_json(capsys, str(examples_repo))
    assert code == 0
    assert report["diagnostics"] == []
    assert (report["errors"], report["warnings"]) == (0, 0)
    assert sorted(Path(f["file"]).name for f in report["files"]) == ["data-quality.yaml", "train-compare.yaml"]
    assert all(f["valid"] for f in report["files"])


def test_real_exported_pipelines_validate_with_warnings_at_most(capsys, fasttrack_examples):
    code, report = run_json(capsys, *map(str, fasttrack_examples))
    assert code == 0
    assert report["errors"] == 0
    assert len(report["files"]) == len(fasttrack_examples)
    torchtune = [d for d in report["diagnostics"] if "torchtune" in d["file"]]
    assert "FT202" in codes({"diagnostics": torchtune})
    assert all(d["severity"] == "warning" for d in report["diagnostics"])


def test_a_folder_argument_is_validated_as_a_repository(capsys, write, tmp_path):
    write("pipelines/a.yaml", MINIMAL)
    code, report = run_json(capsys, str(tmp_path))
    assert code == 0
    assert [f["file"] for f in report["files"]] == [f"{tmp_path}/pipelines/a.yaml"]


# --- text output -----------------------------------------------------------------


def test_a_broken_file_prints_compiler_style_lines(capsys, write, tmp_path, monkeypatch):
    write("broken.yaml", BROKEN)
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "broken.yaml")
    assert code == 1
    assert out.splitlines() == [BROKEN_LINE, "1 pipeline file checked: 1 error"]
    assert re.fullmatch(r"[^:]+:\d+:\d+: (error|warning) FT\d{3}: .+", out.splitlines()[0])


def test_several_paths_at_once_files_and_a_folder(capsys, write, tmp_path, examples_repo):
    one = write("loose/one.yaml", MINIMAL.replace("name: demo", "name: one"))
    two = write("loose/two.yaml", BROKEN.replace("name: demo", "name: two"))
    code, report = run_json(capsys, str(one), str(two), str(examples_repo))
    assert code == 1
    assert len(report["files"]) == 4
    assert [d["file"] for d in report["diagnostics"]] == [str(two)]
    assert codes(report) == ["FT103"]


def test_the_default_path_is_the_current_folder(capsys, examples_repo, monkeypatch):
    monkeypatch.chdir(examples_repo)
    code, out, _ = run(capsys)
    assert code == 0
    assert out.splitlines() == ["2 pipeline files valid"]


def test_the_default_path_reports_files_relative_to_the_current_folder(capsys, write, tmp_path, monkeypatch):
    write("pipelines/broken.yaml", BROKEN)
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys)
    assert code == 1
    assert out.splitlines()[0] == "pipelines/" + BROKEN_LINE


# --- repositories ----------------------------------------------------------------


def test_a_folder_without_pipelines_is_FT301(capsys, tmp_path):
    (tmp_path / "src").mkdir()
    code, report = run_json(capsys, str(tmp_path))
    assert code == 1
    assert codes(report) == ["FT301"]
    assert "pipelines/**/*.yaml" in report["diagnostics"][0]["message"]
    assert report["files"] == []


def test_the_current_folder_without_pipelines_is_FT301_on_dot(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys)
    assert code == 1
    assert out.startswith(".:1:1: error FT301: no pipeline files in .")


def test_settings_globs_change_where_pipelines_are_found(capsys, write, tmp_path, monkeypatch):
    write(".fasttrack.yaml", 'pipelines: ["flows/*.yaml"]\n')
    write("flows/a.yaml", MINIMAL)
    write("pipelines/not-a-pipeline.yaml", BROKEN)  # no longer where pipelines are
    monkeypatch.chdir(tmp_path)
    code, report = run_json(capsys, ".")
    assert code == 0
    assert [f["file"] for f in report["files"]] == ["flows/a.yaml"]


def test_settings_with_an_unknown_key_is_FT101_naming_the_settings_file(capsys, write, tmp_path, monkeypatch):
    write(".fasttrack.yaml", "pipeline: [flows/*.yaml]\n")
    write("pipelines/a.yaml", MINIMAL)
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys)
    assert code == 1
    first = out.splitlines()[0]
    assert first.startswith(".fasttrack.yaml:1:1: error FT101: ")
    assert "'pipeline'" in first and ".fasttrack.yaml" in first.split("FT101:")[1]
    assert "did you mean 'pipelines'" in first


def test_two_files_with_the_same_pipeline_name_is_FT302(capsys, write, tmp_path, monkeypatch):
    write("pipelines/a.yaml", MINIMAL)
    write("pipelines/b.yaml", MINIMAL)
    monkeypatch.chdir(tmp_path)
    code, report = run_json(capsys)
    assert code == 1
    assert codes(report) == ["FT302"]
    d = report["diagnostics"][0]
    assert (d["file"], d["line"], d["path"]) == ("pipelines/b.yaml", 2, "$.name")
    assert "pipelines/a.yaml" in d["message"]


# --- code: folders -----------------------------------------------------------------


def test_code_folder_present_is_fine(capsys, write, tmp_path):
    write("tasks/train/main.py", "print('hi')\n")
    write("pipelines/p.yaml", with_code("tasks/train"))
    code, report = run_json(capsys, str(tmp_path))
    assert code == 0, report
    assert report["diagnostics"] == []


def test_code_folder_missing_from_the_repository_is_FT113(capsys, write, tmp_path):
    write("pipelines/p.yaml", with_code("tasks/nope"))
    code, report = run_json(capsys, str(tmp_path))
    assert code == 1
    assert codes(report) == ["FT113"]
    assert "does not exist" in report["diagnostics"][0]["message"]
    assert report["diagnostics"][0]["path"] == "$.tasks[0].code"


def test_code_naming_a_file_is_FT113(capsys, write, tmp_path):
    write("tasks/train.py", "print('hi')\n")
    write("pipelines/p.yaml", with_code("tasks/train.py"))
    code, report = run_json(capsys, str(tmp_path))
    assert code == 1
    assert codes(report) == ["FT113"]
    assert "is a file, not a directory" in report["diagnostics"][0]["message"]


def test_code_symlink_leading_out_of_the_repository_is_FT112(capsys, write, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    repo = tmp_path / "repo"
    write("repo/pipelines/p.yaml", with_code("tasks/linked"))
    (repo / "tasks").mkdir()
    (repo / "tasks" / "linked").symlink_to(outside, target_is_directory=True)
    code, report = run_json(capsys, str(repo))
    assert code == 1
    assert codes(report) == ["FT112"]
    assert "symlink" in report["diagnostics"][0]["message"]


def test_a_lone_file_resolves_code_from_the_folder_with_settings(capsys, write, tmp_path, monkeypatch):
    write("proj/.fasttrack.yaml", 'pipelines: ["pipelines/*.yaml"]\n')
    write("proj/tasks/train/main.py", "print('hi')\n")
    pipeline = write("proj/pipelines/p.yaml", with_code("tasks/train"))
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    code, out, _ = run(capsys, str(pipeline))
    assert (code, out.splitlines()) == (0, ["1 pipeline file valid"])
    # Without the settings file the root is the pipeline's own folder, where tasks/train is not.
    (tmp_path / "proj" / ".fasttrack.yaml").unlink()
    code, out, _ = run(capsys, str(pipeline))
    assert code == 1
    assert "FT113" in out


def test_a_lone_file_in_a_git_repository_resolves_code_from_the_git_root(capsys, write, tmp_path, monkeypatch):
    repo = tmp_path / "proj"
    write("proj/tasks/train/main.py", "print('hi')\n")
    write("proj/deploy/pipelines/p.yaml", with_code("tasks/train"))
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "a pipeline")
    monkeypatch.chdir(repo / "deploy")
    code, out, _ = run(capsys, "pipelines/p.yaml")
    assert (code, out.splitlines()) == (0, ["1 pipeline file valid"])


# --- machine formats -------------------------------------------------------------


def test_json_format_is_an_object_with_diagnostics_files_and_counts(capsys, write, tmp_path, monkeypatch):
    write("broken.yaml", BROKEN)
    monkeypatch.chdir(tmp_path)
    code, report = run_json(capsys, "broken.yaml")
    assert code == 1
    assert set(report) >= {"diagnostics", "files", "errors", "warnings"}
    assert (report["errors"], report["warnings"]) == (1, 0)
    [d] = report["diagnostics"]
    assert set(d) == {"file", "line", "column", "severity", "code", "message", "path"}
    assert d == {
        "file": "broken.yaml",
        "line": 7,
        "column": 20,
        "severity": "error",
        "code": "FT103",
        "message": "task 'b' depends on unknown task 'trian' (did you mean 'train'?)",
        "path": "$.tasks[1].dependencies[0]",
    }
    [f] = report["files"]
    assert (f["file"], f["pipeline"], f["valid"], f["errors"], f["warnings"]) == ("broken.yaml", "demo", False, 1, 0)


def test_json_format_counts_warnings(capsys, write):
    path = write("warned.yaml", WITH_SECRET_LITERAL)
    code, report = run_json(capsys, str(path))
    assert code == 0
    assert (report["errors"], report["warnings"]) == (0, 1)
    assert report["diagnostics"][0]["severity"] == "warning"
    assert report["files"][0]["valid"] is True


def test_github_format_prints_workflow_commands(capsys, write, tmp_path, monkeypatch):
    write("broken.yaml", BROKEN)
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "--format", "github", "broken.yaml")
    assert code == 1
    assert out.splitlines()[0] == (
        "::error file=broken.yaml,line=7,col=20,title=FT103::"
        "task 'b' depends on unknown task 'trian' (did you mean 'train'?)"
    )


def test_github_format_escapes_percent_newlines_and_property_separators(capsys, write, tmp_path, monkeypatch):
    write("we,ird:name.yaml", BROKEN.replace("[trian]", '["50%\\nx"]'))
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "--format", "github", "we,ird:name.yaml")
    assert code == 1
    first = out.splitlines()[0]
    assert first == (
        "::error file=we%2Cird%3Aname.yaml,line=7,col=20,title=FT103::task 'b' depends on unknown task '50%25%0Ax'"
    )


def test_github_format_marks_warnings_as_warnings(capsys, write):
    path = write("warned.yaml", WITH_SECRET_LITERAL)
    code, out, _ = run(capsys, "--format", "github", str(path))
    assert code == 0
    assert out.startswith("::warning file=")
    assert ",title=FT202::" in out


# --- options -----------------------------------------------------------------------


def test_strict_fails_on_warnings(capsys, write):
    path = write("warned.yaml", WITH_SECRET_LITERAL)
    assert run(capsys, str(path))[0] == 0
    code, out, _ = run(capsys, "--strict", str(path))
    assert code == 1
    assert "warning FT202" in out


def test_strict_passes_a_clean_pipeline(capsys, write):
    path = write("clean.yaml", MINIMAL)
    assert run(capsys, "--strict", str(path))[0] == 0


def test_max_file_size_refuses_a_bigger_file_with_FT002(capsys, examples_repo):
    pipeline = examples_repo / "pipelines" / "train-compare.yaml"
    assert pipeline.stat().st_size > 1024
    code, report = run_json(capsys, "--max-file-size", "1k", str(pipeline))
    assert code == 1
    assert codes(report) == ["FT002"]
    assert "1 KiB limit" in report["diagnostics"][0]["message"]


def test_max_file_size_message_tells_the_real_size(capsys, write):
    path = write("big.yaml", MINIMAL + "#" * (4096 - len(MINIMAL) - 1) + "\n")
    assert path.stat().st_size == 4096
    code, report = run_json(capsys, "--max-file-size", "1k", str(path))
    assert codes(report) == ["FT002"]
    assert "file is 4 KiB" in report["diagnostics"][0]["message"]


def test_max_file_size_accepts_plain_bytes(capsys, write):
    path = write("clean.yaml", MINIMAL)
    assert run(capsys, "--max-file-size", str(len(MINIMAL)), str(path))[0] == 0
    code, report = run_json(capsys, "--max-file-size", str(len(MINIMAL) - 1), str(path))
    assert codes(report) == ["FT002"]


def test_max_file_size_that_is_not_a_size_is_a_usage_error(capsys, examples_repo):
    code, out, err = run(capsys, "--max-file-size", "nonsense", str(examples_repo))
    assert code == 2
    assert out == ""
    assert "'nonsense' is not a size" in err


# --- bad input ---------------------------------------------------------------------


def test_a_path_that_does_not_exist_is_a_usage_error(capsys, tmp_path):
    code, out, err = run(capsys, str(tmp_path / "nope.yaml"))
    assert code == 2
    assert out == ""
    assert "does not exist" in err
    assert "Traceback" not in err


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_an_unreadable_file_is_FT001(write):
    path = write("secret.yaml", MINIMAL)
    path.chmod(0)
    # In a process of its own, so that one run as root can be one that cannot read a chmod 000 file.
    command = [sys.executable, "-m", "fasttrack_gitops", "validate", "--format", "json", str(path)]
    proc = subprocess.run(without_root_privilege(command), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert [(d["code"], d["message"]) for d in json.loads(proc.stdout)["diagnostics"]] == [
        ("FT001", "cannot read the file: Permission denied")
    ]


def test_a_pipeline_file_that_cannot_be_opened_is_FT001(capsys, tmp_path, monkeypatch):
    # A dangling symlink under pipelines/ is listed but cannot be opened (works as root too).
    (tmp_path / "pipelines").mkdir()
    (tmp_path / "pipelines" / "gone.yaml").symlink_to(tmp_path / "nowhere.yaml")
    monkeypatch.chdir(tmp_path)
    code, report = run_json(capsys)
    assert code == 1
    assert codes(report) == ["FT001"]
    d = report["diagnostics"][0]
    assert (d["file"], d["line"], d["column"]) == ("pipelines/gone.yaml", 1, 1)
    assert "cannot read the file" in d["message"]


def test_invalid_utf8_is_FT003(capsys, write, tmp_path, monkeypatch):
    write("latin1.yaml", b'version: "1"\nname: caf\xe9\ntasks: []\n')
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "latin1.yaml")
    assert code == 1
    assert out.splitlines()[0] == "latin1.yaml:2:10: error FT003: invalid UTF-8 byte 0xe9; save the file as UTF-8"


def test_a_tab_used_for_indentation_is_FT005(capsys, write, tmp_path, monkeypatch):
    write("tabbed.yaml", 'version: "1"\nname: x\ntasks:\n  - name: a\n\tcommand: x\n')
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "tabbed.yaml")
    assert code == 1
    assert out.splitlines()[0].startswith("tabbed.yaml:5:1: error FT005: ")


def test_an_absolute_glob_in_settings_is_a_diagnostic_not_an_internal_error(capsys, write, tmp_path, monkeypatch):
    write("elsewhere/a.yaml", MINIMAL)
    write("repo/.fasttrack.yaml", f'pipelines: ["{tmp_path}/elsewhere/*.yaml"]\n')
    monkeypatch.chdir(tmp_path / "repo")
    code, out, err = run(capsys)
    assert "internal error" not in err
    assert code == 1
    assert ".fasttrack.yaml" in out


def test_a_code_symlink_loop_is_a_diagnostic_not_an_internal_error(capsys, write, tmp_path, monkeypatch):
    write("pipelines/p.yaml", with_code("loop"))
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys)
    assert "internal error" not in err
    assert code == 1
    assert "FT113" in out or "FT112" in out


def test_a_parent_folder_glob_in_settings_is_FT100_on_the_settings_file(capsys, write, tmp_path, monkeypatch):
    write("repo/.fasttrack.yaml", 'pipelines: ["../elsewhere/*.yaml"]\n')
    monkeypatch.chdir(tmp_path / "repo")
    code, out, _ = run(capsys)
    assert code == 1
    assert out.startswith(".fasttrack.yaml:1:13: error FT100: pipelines[0] is '../elsewhere/*.yaml'; expected a glob ")
    assert "FT301" not in out  # the broken settings are the news, not the missing pipelines


def test_a_leading_dot_slash_in_settings_globs_is_harmless(capsys, write, tmp_path, monkeypatch):
    write("repo/.fasttrack.yaml", 'pipelines: ["./flows/*.yaml"]\n')
    write("repo/flows/p.yaml", MINIMAL)
    monkeypatch.chdir(tmp_path / "repo")
    assert run(capsys) == (0, "1 pipeline file valid\n", "")


def test_a_dangling_code_symlink_does_not_exist(capsys, write, tmp_path, monkeypatch):
    write("pipelines/p.yaml", with_code("gone"))
    (tmp_path / "gone").symlink_to(tmp_path / "nowhere")
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys)
    assert code == 1
    assert "FT113: task 'train' has code 'gone', which does not exist in the repository" in out


def test_a_pipelines_subfolder_validates_its_repositorys_pipelines(capsys, examples_repo, monkeypatch):
    monkeypatch.chdir(examples_repo.parent)
    assert run(capsys, "examples-repo/pipelines") == (0, "2 pipeline files valid\n", "")


def test_a_pipelines_folder_outside_any_repository_checks_its_files(capsys, write, tmp_path, monkeypatch):
    """`validate pipelines/` in a plain folder means the files under it, with code: paths from the folder above."""
    if any((f / ".git").exists() or (f / ".fasttrack.yaml").exists() for f in (tmp_path, *tmp_path.parents)):
        cannot_run(f"the test folder {tmp_path} is inside a repository")
    write("pipelines/a.yaml", with_code("tasks/train", name="a"))
    write("tasks/train/main.py", "print('hi')\n")
    write("pipelines/nested/broken.yaml", BROKEN)
    monkeypatch.chdir(tmp_path)

    code, out, _ = run(capsys, "pipelines/")

    assert code == 1
    assert out.splitlines() == [f"pipelines/nested/{BROKEN_LINE}", "2 pipeline files checked: 1 error"]
    assert run(capsys, str(tmp_path / "pipelines"))[1].startswith(f"{tmp_path}/pipelines/nested/broken.yaml:7:20:")
    monkeypatch.chdir(tmp_path / "pipelines")
    assert run(capsys, ".")[1].startswith("../pipelines/nested/broken.yaml:7:20: error FT103")
    assert run(capsys, "nested")[1].startswith("../pipelines/nested/broken.yaml:7:20: error FT103")


def test_a_file_named_twice_is_checked_once(capsys, write, tmp_path, monkeypatch):
    write("pipelines/broken.yaml", BROKEN)
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, ".", "pipelines/broken.yaml")
    assert code == 1
    assert out.count("FT103") == 1
    assert out.splitlines()[-1] == "1 pipeline file checked: 1 error"


def test_lone_files_are_checked_together_for_duplicate_names(capsys, write, tmp_path, monkeypatch):
    """pre-commit passes the changed files one by one; two of them naming the same pipeline is still caught."""
    write("pipelines/a.yaml", MINIMAL)
    write("pipelines/b.yaml", MINIMAL)
    write(".fasttrack.yaml", "pipelnes: []\n")
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "pipelines/a.yaml", "pipelines/b.yaml")
    assert code == 1
    assert "pipelines/b.yaml:2:7: error FT302: pipeline name 'demo' is already used by pipelines/a.yaml" in out
    assert out.count("FT101") == 1  # the settings file is reported once, not once per file
    assert (
        ".fasttrack.yaml:1:1: error FT101: unknown key 'pipelnes' in .fasttrack.yaml (did you mean 'pipelines'?)" in out
    )


def test_settings_above_the_git_root_are_not_used(capsys, write, tmp_path, monkeypatch):
    write(".fasttrack.yaml", 'pipelines: ["nowhere/*.yaml"]\n')
    write("project/pipelines/p.yaml", with_code("tasks/train"))
    write("project/tasks/train/main.py", "print('hi')\n")
    git(tmp_path / "project", "init", "-q")
    monkeypatch.chdir(tmp_path / "project")
    assert run(capsys, "pipelines/p.yaml") == (0, "1 pipeline file valid\n", "")


def test_a_newline_inside_a_value_does_not_break_the_one_line_format(capsys, write):
    path = write("p.yaml", MINIMAL.replace("dependencies: [prepare]", 'dependencies: ["pre\\npare"]'))
    code, out, _ = run(capsys, str(path))
    assert code == 1
    lines = out.splitlines()
    assert len(lines) == 2 and "unknown task 'pre\\npare'" in lines[0]


# --- every bad input, as a real process: an exit code and a message, never a traceback ----------


def _bad_inputs() -> dict:
    """name -> build(tmp) -> (argv after 'validate', expected exit code, text expected in stdout+stderr)."""

    def broken(tmp):
        (tmp / "broken.yaml").write_text(BROKEN)
        return ["broken.yaml"], 1, BROKEN_LINE

    def no_pipelines(tmp):
        (tmp / "empty").mkdir()
        return ["empty"], 1, "FT301"

    def settings_unknown_key(tmp):
        (tmp / ".fasttrack.yaml").write_text("pipeline: [x]\n")
        (tmp / "pipelines").mkdir()
        (tmp / "pipelines" / "a.yaml").write_text(MINIMAL)
        return ["."], 1, "FT101"

    def same_name(tmp):
        (tmp / "pipelines").mkdir()
        (tmp / "pipelines" / "a.yaml").write_text(MINIMAL)
        (tmp / "pipelines" / "b.yaml").write_text(MINIMAL)
        return ["."], 1, "FT302"

    def code_missing(tmp):
        (tmp / "pipelines").mkdir()
        (tmp / "pipelines" / "p.yaml").write_text(with_code("tasks/nope"))
        return ["."], 1, "FT113"

    def code_is_a_file(tmp):
        (tmp / "pipelines").mkdir()
        (tmp / "pipelines" / "p.yaml").write_text(with_code("README"))
        (tmp / "README").write_text("hi\n")
        return ["."], 1, "FT113"

    def code_symlink_out(tmp):
        (tmp / "pipelines").mkdir()
        (tmp / "pipelines" / "p.yaml").write_text(with_code("out"))
        (tmp / "out").symlink_to("/")
        return ["."], 1, "FT112"

    def too_big(tmp):
        (tmp / "big.yaml").write_text(MINIMAL + "#" * 2048 + "\n")
        return ["--max-file-size", "1k", "big.yaml"], 1, "FT002"

    def size_nonsense(tmp):
        return ["--max-file-size", "nonsense", "."], 2, "'nonsense' is not a size"

    def missing_path(tmp):
        return ["no-such.yaml"], 2, "does not exist"

    def cannot_open(tmp):
        (tmp / "pipelines").mkdir()
        (tmp / "pipelines" / "gone.yaml").symlink_to(tmp / "nowhere")
        return ["."], 1, "FT001"

    def bad_utf8(tmp):
        (tmp / "bad.yaml").write_bytes(b"name: \xff\n")
        return ["bad.yaml"], 1, "FT003"

    def tab(tmp):
        (tmp / "tab.yaml").write_text('version: "1"\nname: x\ntasks:\n  - name: a\n\tcommand: x\n')
        return ["tab.yaml"], 1, "FT005"

    def unknown_format(tmp):
        return ["--format", "xml", "."], 2, "Invalid value for '--format'"

    cases = dict(
        broken=broken,
        no_pipelines=no_pipelines,
        settings_unknown_key=settings_unknown_key,
        same_name=same_name,
        code_missing=code_missing,
        code_is_a_file=code_is_a_file,
        code_symlink_out=code_symlink_out,
        too_big=too_big,
        size_nonsense=size_nonsense,
        missing_path=missing_path,
        cannot_open=cannot_open,
        bad_utf8=bad_utf8,
        tab=tab,
        unknown_format=unknown_format,
    )
    if os.name == "posix":  # run without root's power to read any file (test_bad_input_in_a_real_process...)

        def unreadable(tmp):
            (tmp / "locked.yaml").write_text(MINIMAL)
            (tmp / "locked.yaml").chmod(0)
            return ["locked.yaml"], 1, "FT001"

        cases["unreadable"] = unreadable
    return cases


BAD_INPUTS = _bad_inputs()


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_in_a_real_process_exits_cleanly_without_a_traceback(case, tmp_path):
    argv, expected_code, expected_text = BAD_INPUTS[case](tmp_path)
    command = [sys.executable, "-m", "fasttrack_gitops", "validate", *argv]
    proc = subprocess.run(
        without_root_privilege(command) if case == "unreadable" else command,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == expected_code, proc.stdout + proc.stderr
    assert expected_text in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert "internal error" not in proc.stderr
