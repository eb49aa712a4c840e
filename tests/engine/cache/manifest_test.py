"""A task's outputs folder: hashed into a manifest, refused when it holds what cannot be cached, checked again later."""

from __future__ import annotations

import hashlib
import os
import socket

import pytest
from conftest import cannot_run

from fasttrack_gitops.core.cache import ManifestError, OutputFile, manifest_text, parse_manifest
from fasttrack_gitops.engine.cache import manifest


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def outputs(tmp_path):
    """A task's outputs: a nested folder, a file larger than one read, an empty file, an empty folder."""
    folder = tmp_path / "tasks" / "train" / "outputs"
    (folder / "model" / "layers").mkdir(parents=True)
    (folder / "empty-folder").mkdir()
    (folder / "metrics.json").write_bytes(b'{"loss": 0.1}')
    (folder / "model" / "layers" / "weights.bin").write_bytes(b"w" * (manifest.CHUNK + 17))
    (folder / "model" / "empty").write_bytes(b"")
    return folder


# -- scan


def test_scan_lists_every_regular_file_by_relative_path_with_size_and_sha256(outputs):
    files = manifest.scan(outputs, task="train")
    assert files == (
        OutputFile("metrics.json", 13, sha(b'{"loss": 0.1}')),
        OutputFile("model/empty", 0, sha(b"")),
        OutputFile("model/layers/weights.bin", manifest.CHUNK + 17, sha(b"w" * (manifest.CHUNK + 17))),
    )
    assert parse_manifest(manifest_text(files)) == files  # what a Backend.AI session would write: the same lines


def test_scan_of_an_empty_or_missing_folder_is_no_files(tmp_path):
    (tmp_path / "empty").mkdir()
    assert manifest.scan(tmp_path / "empty", task="train") == ()
    assert manifest.scan(tmp_path / "never-made", task="train") == ()


def test_a_symlink_is_refused_saying_where_it_points(outputs):
    (outputs / "model.bin").symlink_to("/etc/passwd")
    with pytest.raises(ManifestError) as caught:
        manifest.scan(outputs, task="train")
    assert str(caught.value) == (
        "outputs of task 'train' hold a symlink, model.bin -> /etc/passwd; outputs with symlinks are not cached: "
        "write the file itself"
    )


def test_a_symlinked_folder_is_refused_not_followed(outputs, tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "secret.txt").write_text("not ours")
    (outputs / "model" / "linked").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ManifestError, match=r"hold a symlink, model/linked -> .*elsewhere;"):
        manifest.scan(outputs, task="train")


def test_an_outputs_folder_that_is_itself_a_symlink_is_refused(tmp_path, outputs):
    link = tmp_path / "linked-outputs"
    link.symlink_to(outputs)
    with pytest.raises(ManifestError, match=r"^the outputs of task 'train' are a symlink to .*outputs; "):
        manifest.scan(link, task="train")


def test_a_fifo_is_refused_without_opening_it(outputs):
    os.mkfifo(outputs / "model" / "pipe0")  # opening it to hash it would block until a writer came
    with pytest.raises(ManifestError) as caught:
        manifest.scan(outputs, task="train")
    assert str(caught.value) == (
        "outputs of task 'train' hold a FIFO, model/pipe0; only regular files can be cached: remove it"
    )


def test_a_socket_is_refused(tmp_path):
    folder = tmp_path / "o"  # a short path: a socket's path is limited to ~100 bytes
    folder.mkdir()
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(folder / "sock"))
        with pytest.raises(ManifestError, match=r"^outputs of task 'serve' hold a socket, sock; "):
            manifest.scan(folder, task="serve")
    finally:
        server.close()


def test_a_name_with_a_newline_is_refused(outputs):
    (outputs / "model" / "evil\nffff 1 other").write_bytes(b"x")
    with pytest.raises(ManifestError) as caught:
        manifest.scan(outputs, task="train")
    assert str(caught.value) == (
        "outputs of task 'train' hold a name containing a newline, 'model/evil\\nffff 1 other'; rename it"
    )


def test_a_name_with_another_line_break_is_refused(outputs):
    (outputs / "line\u2028break").write_bytes(b"x")  # splitlines() would cut the manifest line there too
    with pytest.raises(ManifestError, match="hold a name containing a line break"):
        manifest.scan(outputs, task="train")


def test_a_name_that_is_not_utf8_is_refused(outputs):
    try:
        fd = os.open(os.fsencode(outputs) + b"/caf\xe9.txt", os.O_CREAT | os.O_WRONLY, 0o644)
    except OSError as e:  # a file system that insists on UTF-8 names
        cannot_run(f"this file system refuses a Latin-1 name: {e}")
    os.close(fd)
    with pytest.raises(ManifestError, match="hold a name that is not UTF-8"):
        manifest.scan(outputs, task="train")


# -- verify


def recorded(folder):
    files = manifest.scan(folder, task="train")
    return files, {f.path: manifest.signature(folder / f.path) for f in files}


def test_an_untouched_folder_verifies(outputs):
    files, signatures = recorded(outputs)
    assert manifest.verify(outputs, files, signatures) is None
    assert manifest.verify(outputs, files, {}) is None  # no signatures: every file hashed, and still the same


def test_a_file_whose_signature_is_unchanged_is_trusted_without_reading_it(outputs):
    files, signatures = recorded(outputs)
    weights = outputs / "model" / "layers" / "weights.bin"
    before = os.stat(weights)
    with open(weights, "r+b") as f:  # the same size, written in place (the same inode)...
        f.write(b"X")
    os.utime(weights, ns=(before.st_atime_ns, before.st_mtime_ns))  # ...and the old mtime put back
    assert manifest.signature(weights) == signatures["model/layers/weights.bin"]
    # Trusted: verify did not read the file (reading it would have found the change, as without signatures).
    assert manifest.verify(outputs, files, signatures) is None
    assert manifest.verify(outputs, files, {}) == "model/layers/weights.bin changed"


def test_a_changed_file_is_hashed_again_and_named(outputs):
    files, signatures = recorded(outputs)
    (outputs / "metrics.json").write_bytes(b'{"loss": 0.2}')  # the same size, a new mtime
    os.utime(outputs / "metrics.json", ns=(1, 1))
    assert manifest.verify(outputs, files, signatures) == "metrics.json changed"


def test_a_touched_file_with_the_same_content_still_verifies(outputs):
    files, signatures = recorded(outputs)
    os.utime(outputs / "metrics.json", ns=(1, 1))
    assert manifest.verify(outputs, files, signatures) is None


def test_a_missing_file_an_extra_file_and_a_missing_folder_are_named(outputs, tmp_path):
    files, signatures = recorded(outputs)
    (outputs / "extra.txt").write_text("new")
    assert manifest.verify(outputs, files, signatures) == "extra.txt is not in the manifest"
    (outputs / "extra.txt").unlink()
    (outputs / "model" / "empty").unlink()
    assert manifest.verify(outputs, files, signatures) == "model/empty is missing"
    assert manifest.verify(tmp_path / "gone", files, signatures) == "the folder is missing"


def test_a_file_replaced_by_a_symlink_to_the_same_content_does_not_verify(outputs, tmp_path):
    files, signatures = recorded(outputs)
    copy = tmp_path / "copy.json"
    copy.write_bytes((outputs / "metrics.json").read_bytes())
    (outputs / "metrics.json").unlink()
    (outputs / "metrics.json").symlink_to(copy)
    assert manifest.verify(outputs, files, signatures) == "metrics.json is a symlink now"


def test_an_outputs_folder_replaced_by_a_symlink_does_not_verify(outputs, tmp_path):
    files, signatures = recorded(outputs)
    moved = outputs.rename(tmp_path / "moved")
    outputs.symlink_to(moved)  # the same files, reached through a link: nothing vouches for where it points
    assert manifest.verify(outputs, files, signatures) == "the folder is a symlink now"
