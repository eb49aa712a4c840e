"""The end of a failed task's log: real files in tmp_path, real logs from a real run, secrets that must not leak."""

from __future__ import annotations

import asyncio
import builtins
import textwrap
from pathlib import Path

import pytest

from fasttrack_gitops.core.job import TaskState, freeze
from fasttrack_gitops.core.pipeline import check_pipeline
from fasttrack_gitops.engine.executors import get_executor
from fasttrack_gitops.engine.reporters import logtail
from fasttrack_gitops.engine.reporters.logtail import failed_log_tails, log_tail
from fasttrack_gitops.engine.runner import JobRunner
from fasttrack_gitops.engine.state.store import Store

SECRET = "hunter2-CANARY-7f3a9c"


@pytest.fixture
def bytes_read(monkeypatch) -> list[int]:
    """Every byte logtail reads from any file, as a list of read sizes."""
    reads: list[int] = []

    class Counting:
        def __init__(self, f):
            self._f = f

        def read(self, *args):
            data = self._f.read(*args)
            reads.append(len(data))
            return data

        def __getattr__(self, name):
            return getattr(self._f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._f.close()

    monkeypatch.setattr(logtail, "open", lambda *a, **k: Counting(builtins.open(*a, **k)), raising=False)
    return reads


def test_a_missing_log_has_no_tail(tmp_path: Path):
    assert log_tail(tmp_path / "never-started.log") == ""


def test_a_short_log_is_shown_whole_and_masked(tmp_path: Path):
    log = tmp_path / "1.log"
    log.write_text(f"step 1\nusing token {SECRET}\nstep 2 failed\n")

    assert log_tail(log, masks=[SECRET]) == "step 1\nusing token ***\nstep 2 failed\n"


def test_a_10_mb_log_is_read_from_its_end_only(tmp_path: Path, bytes_read: list[int]):
    log = tmp_path / "1.log"
    with open(log, "w") as f:
        line = "epoch 0001 step 000000 loss 0.123456 lr 0.001 " + "." * 50 + "\n"
        while f.tell() < 10 * 1024 * 1024:
            f.write(line)
        f.writelines(f"final line {i}\n" for i in range(150))
    assert log.stat().st_size > 10 * 1024 * 1024

    tail = log_tail(log)

    assert sum(bytes_read) <= 64 * 1024  # the file's end, never the file
    lines = tail.splitlines()
    assert len(lines) == 100
    assert lines[0] == "final line 50" and lines[-1] == "final line 149"


def test_limits_are_the_callers(tmp_path: Path, bytes_read: list[int]):
    log = tmp_path / "1.log"
    log.write_text("".join(f"line {i:04}\n" for i in range(1000)))  # 10 bytes a line

    assert log_tail(log, max_lines=3) == "line 0997\nline 0998\nline 0999\n"
    bytes_read.clear()
    tail = log_tail(log, max_bytes=55)
    assert sum(bytes_read) == 55
    assert tail == "line 0995\nline 0996\nline 0997\nline 0998\nline 0999\n"  # the cut line is left out


@pytest.mark.parametrize("cut_inside", [1, 5, len(SECRET) - 1])
def test_a_secret_cut_in_two_by_the_window_leaves_no_fragment(tmp_path: Path, cut_inside: int):
    log = tmp_path / "1.log"
    tail_lines = "".join(f"after {i}\n" for i in range(5))
    log.write_text("x" * 1000 + f"token={SECRET}\n" + tail_lines)
    # The window starts `cut_inside` characters into the secret: masking alone would not recognise the rest.
    window = len(SECRET) - cut_inside + 1 + len(tail_lines)

    tail = log_tail(log, max_bytes=window, masks=[SECRET])

    assert tail == tail_lines
    for n in range(3, len(SECRET)):
        assert SECRET[-n:] not in tail


def test_a_multi_line_secret_cut_by_the_window_leaves_none_of_its_lines(tmp_path: Path):
    key = "-----BEGIN KEY-----\nMIIEvQIBADANBg\nkqhkiG9w0BAQEF\n-----END KEY-----"
    log = tmp_path / "1.log"
    after = "".join(f"after {i}\n" for i in range(40))
    log.write_text("x" * 1000 + "\nkey:\n" + key + "\n" + after)

    tail = log_tail(log, max_bytes=len(after) + 40, masks=[key])  # from inside the key's second line

    assert "kqhkiG9w0BAQEF" not in tail and "END KEY" not in tail and "Bg" not in tail
    assert tail.endswith("after 39\n")


def test_one_line_longer_than_the_window_keeps_its_end_without_a_cut_secret(tmp_path: Path):
    log = tmp_path / "1.log"
    log.write_text("noise " * 10_000 + SECRET + " " * 40 + " and the error at the end")
    window = len(" and the error at the end") + len(SECRET) + 30  # the cut falls inside the secret

    tail = log_tail(log, max_bytes=window, masks=[SECRET])

    assert tail.startswith("…") and tail.endswith(" at the end\n")
    for n in range(3, len(SECRET)):
        assert SECRET[-n:] not in tail


def test_a_cut_through_a_utf8_character_shows_no_replacement_character(tmp_path: Path):
    log = tmp_path / "1.log"
    log.write_bytes(("손실 " * 100 + "\n").encode() + "학습 끝: 실패\n".encode())
    size = len("학습 끝: 실패\n".encode())

    tail = log_tail(log, max_bytes=size + 2)  # 2 bytes into a 3-byte character

    assert tail == "학습 끝: 실패\n"


def test_progress_bars_and_colours_show_as_a_terminal_shows_them(tmp_path: Path):
    log = tmp_path / "1.log"
    log.write_bytes(
        b"\x1b[32mstarting\x1b[0m\r\n"
        b" 10%|#         |\r 50%|#####     |\r100%|##########|\n"
        b"\x1b[31mError:\x1b[0m out of memory\x07\n"
    )

    assert log_tail(log) == "starting\n100%|##########|\nError: out of memory\n"


def test_a_secret_split_by_a_colour_code_is_still_masked(tmp_path: Path):
    log = tmp_path / "1.log"
    log.write_text(f"{SECRET[:6]}\x1b[1m{SECRET[6:]}\n")

    assert log_tail(log, masks=[SECRET]) == "***\n"


def test_the_tails_of_a_real_run_are_the_failed_tasks_last_attempts(tmp_path: Path):
    store = Store(tmp_path / "state")
    checked = check_pipeline(
        textwrap.dedent("""\
        version: "26.4.4"
        name: tails
        tasks:
          - name: prepare
            command: echo prepared
          - name: train
            dependencies: [prepare]
            command: |
              for i in 1 2 3; do echo "step $i"; done
              echo "the token is hunter2-CANARY-7f3a9c"; exit 3
            retry: {max_attempts: 2, delay: 0}
        """).encode(),
        "pipelines/p.yaml",
    )
    assert checked.pipeline is not None, checked.diagnostics
    job = freeze(
        checked.pipeline,
        pipeline_path="pipelines/p.yaml",
        repository=str(tmp_path),
        source="commit",
        commit="c0ffee" * 6 + "beef",
        ref="refs/heads/main",
        tree="7" * 40,
        code_trees={},
    )
    store.create_job(job)
    runner = JobRunner(job, store, get_executor("local", bwrap=False), workdir=lambda task: tmp_path)

    async def drive():
        try:
            return await runner.run()
        finally:
            await runner.executor.close()

    asyncio.run(drive())
    view = store.view(job.id)
    assert view.tasks["train"].state == TaskState.FAILED and len(view.tasks["train"].attempts) == 2
    store.log_path(job.id, "train", 1).write_text("the first attempt's output\n")  # must not be the one shown

    tails = failed_log_tails(store, view, masks=[SECRET], max_lines=3)

    assert list(tails) == ["train"]  # prepare succeeded: no tail
    assert tails["train"] == "step 2\nstep 3\nthe token is ***\n"


def test_a_log_that_cannot_be_read_says_so_instead_of_failing_the_report(tmp_path: Path):
    folder = tmp_path / "1.log"
    folder.mkdir()  # not a file: reading it fails, even as root

    assert log_tail(folder).startswith(f"(the log {folder} cannot be read: ")
