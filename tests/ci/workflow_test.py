"""Workflow commands, the outputs file and the step summary file, as the runner reads them."""

from __future__ import annotations

import io

from ci.conftest import Step, parse_outputs

from fasttrack_gitops.ci.workflow import Log, append_summary, command, output_lines, write_outputs


def log_of(write) -> list[str]:
    stream = io.StringIO()
    write(Log(stream))
    return stream.getvalue().splitlines()


def test_data_escapes_percent_and_line_breaks_only():
    assert command("error", "50% done\r\nnext: a, b") == "::error::50%25 done%0D%0Anext: a, b"


def test_properties_also_escape_colons_and_commas():
    line = command("error", "boom", file="dir:x/a,b.yaml", line=3, col=None, title="T%1\n")
    assert line == "::error file=dir%3Ax/a%2Cb.yaml,line=3,title=T%251%0A::boom"


def test_a_group_is_closed_even_when_its_body_fails():
    def write(log: Log) -> None:
        try:
            with log.group("train / fit (failed)"):
                log.line("inside")
                raise RuntimeError
        except RuntimeError:
            pass

    assert log_of(write) == ["::group::train / fit (failed)", "inside", "::endgroup::"]


def test_a_multiline_secret_is_masked_whole_and_line_by_line():
    lines = log_of(lambda log: log.add_mask("-----BEGIN KEY-----\nabc123\n-----END KEY-----"))
    assert sorted(lines) == sorted(
        [
            "::add-mask::-----BEGIN KEY-----%0Aabc123%0A-----END KEY-----",
            "::add-mask::-----BEGIN KEY-----",
            "::add-mask::abc123",
            "::add-mask::-----END KEY-----",
        ]
    )


def test_verbatim_text_cannot_issue_commands():
    text = "::add-mask::oops\n::error::fake failure\n::stop-commands::x\n::x::\nplain\n"
    lines = log_of(lambda log: log.verbatim(text))
    step = Step(0, "\n".join(lines) + "\n", "", {}, "")
    assert step.obeyed() == []  # the runner acts on none of it
    assert lines[1:-1] == text.splitlines()


def test_outputs_round_trip_through_the_runners_syntax(tmp_path):
    summary = "## Title\n\nline with ghadelimiter_ in it\nname<<EOF\nEOF\n"
    path = tmp_path / "output"
    write_outputs(path, [("job-ids", "a b"), ("conclusion", "success"), ("summary", summary), ("empty", "")])
    assert parse_outputs(path.read_text()) == {
        "job-ids": "a b",
        "conclusion": "success",
        "summary": summary,
        "empty": "",
    }


def test_the_delimiter_is_not_in_the_value():
    block = output_lines("summary", "x\ny")
    delimiter = block.splitlines()[0].partition("<<")[2]
    assert delimiter.startswith("ghadelimiter_") and block.endswith(f"\n{delimiter}\n")
    assert "x\ny" not in delimiter


def test_the_step_summary_is_appended_to(tmp_path):
    path = tmp_path / "summary"
    path.write_text("earlier step\n")
    append_summary(path, "## ours")
    assert path.read_text() == "earlier step\n## ours\n"
