"""Sweeping file trees (gc's file half): one pass measures and removes; hard links count once; nothing is followed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fasttrack_gitops.engine.sweep import Usage, disk_use, sweep_all

pytestmark = pytest.mark.skipif(os.name != "posix", reason="descriptor-relative removal is POSIX")


def blocks(path: Path) -> int:
    return os.lstat(path).st_blocks * 512


def job(root: Path, name: str, data: bytes = b"x" * 10000) -> Path:
    folder = root / name
    (folder / "tasks" / "a" / "outputs").mkdir(parents=True)
    (folder / "tasks" / "a" / "outputs" / "out.bin").write_bytes(data)
    (folder / "log.txt").write_text("done\n")
    return folder


def everything(path: Path) -> list[Path]:
    return [path, *path.rglob("*")]


def test_a_dry_run_measures_exactly_what_the_removal_then_frees(tmp_path):
    items = [[job(tmp_path, "one")], [job(tmp_path, "two"), tmp_path / "two.lock"], [tmp_path / "gone-already"]]
    (tmp_path / "two.lock").write_text("")
    expected = [sum(blocks(p) for p in everything(items[0][0])), disk_use(items[1][0]) + blocks(tmp_path / "two.lock")]

    measured, problems = sweep_all(items, remove=False)
    assert problems == [] and [Usage().add(found) for found in measured] == [*expected, 0]
    assert all(p.exists() for p in (items[0][0], items[1][0], items[1][1]))

    dry, real = Usage(), Usage()
    for found in measured:
        dry.add(found)
    removed, problems = sweep_all(items, remove=True)
    for found in removed:
        real.add(found)
    assert problems == [] and sorted(removed) == sorted(measured) and real.freed() == dry.freed() == sum(expected)
    assert sorted(os.listdir(tmp_path)) == []


def test_a_hard_linked_file_counts_once_and_frees_only_with_its_last_link(tmp_path):
    first, second = job(tmp_path, "first"), job(tmp_path, "second", b"")
    shared = second / "tasks" / "a" / "outputs" / "reused.bin"
    os.link(first / "tasks" / "a" / "outputs" / "out.bin", shared)
    size = blocks(shared)
    assert size > 0

    usage = Usage()
    found, _ = sweep_all([[second]], remove=False)
    second_bytes = usage.add(found[0])
    assert second_bytes == disk_use(second) and size <= second_bytes
    assert usage.freed() == second_bytes - size, "the first job still links the shared file: it frees nothing"

    usage, first_bytes = Usage(), disk_use(first)
    found, _ = sweep_all([[first], [second]], remove=True, workers=2)
    assert usage.add(found[0]) == first_bytes and usage.add(found[1]) == second_bytes - size, "counted in first only"
    assert usage.freed() == first_bytes + second_bytes - size
    assert not first.exists() and not second.exists()


def test_a_symbolic_link_goes_but_what_it_points_at_stays(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("keep me\n")
    folder = job(tmp_path, "job")
    (folder / "tasks" / "a" / "outputs" / "escape").symlink_to(outside)
    (folder / "vfroot").symlink_to(outside / "precious.txt")
    top_link = tmp_path / "top-link"
    top_link.symlink_to(outside, target_is_directory=True)

    found, problems = sweep_all([[folder], [top_link]], remove=True)
    assert problems == [] and len(found[1]) == 1, "a link is one inode, its target is not walked"
    assert not folder.exists() and not top_link.is_symlink()
    assert (outside / "precious.txt").read_text() == "keep me\n"


def test_folders_a_task_left_unwritable_or_unreadable_still_go(tmp_path):
    # (as root the modes stop nothing; as any other user, each is a step that fails before its chmod)
    folder = job(tmp_path, "job")
    outputs = folder / "tasks" / "a" / "outputs"
    os.chmod(outputs, 0o500)  # no write: its file cannot be unlinked as it is
    os.chmod(folder / "tasks" / "a", 0o000)  # no read or search
    try:
        found, problems = sweep_all([[folder]], remove=True)
    finally:
        if (folder / "tasks" / "a").exists():
            os.chmod(folder / "tasks" / "a", 0o700)
            os.chmod(outputs, 0o700)
    assert problems == [] and not folder.exists()
    assert len(found[0]) == 6  # job, tasks, a, outputs, out.bin, log.txt


def test_many_items_in_threads_come_back_in_order(tmp_path):
    items = [[job(tmp_path, f"j{i:03}", b"y" * (i * 100))] for i in range(150)]
    expected = [disk_use(paths[0]) for paths in items]
    found, problems = sweep_all(items, remove=True, workers=4)
    assert problems == [] and [Usage().add(f) for f in found] == expected
    assert os.listdir(tmp_path) == []
