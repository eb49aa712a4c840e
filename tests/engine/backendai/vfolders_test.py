"""Virtual folders against the emulator: the manager's /folders API and the storage proxy's tus, over 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import os
import random

import pytest
from engine.backendai.emulator import ACCESS_KEY, Emulator
from engine.backendai.emulator_vfolders import install
from fuzz.tus_test import upload as upload_against

from fasttrack_gitops.engine.backendai import errors, vfolders
from fasttrack_gitops.engine.backendai.vfolders import (
    InvalidPathError,
    NoSuchPathError,
    NoSuchVFolderError,
)

UPLOAD = ("POST", "/folders/{name}/request-upload")
MKDIR = ("POST", "/folders/{name}/mkdir")
PATCH, HEAD = ("PATCH", "storage-proxy /upload"), ("HEAD", "storage-proxy /upload")


@pytest.fixture
def vf(emulator):
    with install(emulator) as folders:
        yield folders


@pytest.fixture
def client(make_client, emulator):
    return make_client(emulator)


def run(client, step):
    """Run `step(client)` in one event loop, then close the client."""

    async def main():
        async with client:
            return await step(client)

    return asyncio.run(main())


def blob(size: int, seed: int = 7) -> bytes:
    return random.Random(seed).randbytes(size)


def upload_then_download(name, path, data, **kwargs):
    async def step(client):
        await vfolders.create_vfolder(client, name)
        await vfolders.upload(client, name, path, data, **kwargs)
        return await vfolders.download(client, name, path)

    return step


# -- folders ------------------------------------------------------------------------------------------


def test_creating_a_folder_twice_returns_the_same_folder(client, emulator, vf):
    async def twice(client):
        return [await vfolders.create_vfolder(client, "pipeline-data") for _ in range(2)]

    first, second = run(client, twice)
    assert first.id == second.id and first.name == "pipeline-data" and first.host == "local:volume1"
    assert (first.usage_mode, first.permission, first.ownership_type) == ("general", "rw", "user")
    created = emulator.requests_to("/folders")
    assert [r.status for r in created] == [201, 400]  # the second is the manager's vfolder-already-exists
    assert json.loads(created[0].body) == {"name": "pipeline-data", "usage_mode": "general", "permission": "rw"}
    assert [r.status for r in emulator.requests_to("/folders/pipeline-data")] == [200]


def test_host_and_group_are_sent_only_when_given_and_folders_are_listed(client, emulator, vf):
    async def step(client):
        await vfolders.create_vfolder(client, "shared", host="local:volume1", group="research")
        return await vfolders.list_vfolders(client)

    (folder,) = run(client, step)
    assert (folder.name, folder.ownership_type) == ("shared", "group") and folder.group
    sent = json.loads(emulator.requests_to("/folders")[0].body)
    assert (sent["host"], sent["group"]) == ("local:volume1", "research")


def test_an_unknown_folder_says_which_folder_and_key(client, vf):
    with pytest.raises(NoSuchVFolderError) as caught:
        run(client, lambda c: vfolders.get_vfolder(c, "nope"))
    message = str(caught.value)
    assert isinstance(caught.value, errors.NotFoundError) and caught.value.status == 404
    assert "'nope'" in message and ACCESS_KEY in message and "No such virtual folder" in message
    assert "shared" in message


# -- directories and listings ----------------------------------------------------------------------


def test_mkdir_makes_nested_directories_and_list_files_shows_them(client, emulator, vf):
    async def step(client):
        await vfolders.create_vfolder(client, "data")
        await vfolders.mkdir(client, "data", "jobs/42/outputs")
        await vfolders.mkdir(client, "data", "jobs/42/outputs")  # exist_ok by default
        listed = await vfolders.list_files(client, "data", "jobs/42")
        checks = [await vfolders.exists(client, "data", p) for p in ("jobs/42/outputs", "jobs/7", "jobs/7/x/y", ".")]
        return listed, checks

    listed, checks = run(client, step)
    assert [(e.name, e.is_dir) for e in listed] == [("outputs", True)]
    assert checks == [True, False, False, True]
    sent = json.loads(emulator.requests_to("/folders/data/mkdir")[0].body)
    assert sent == {"path": "jobs/42/outputs", "parents": True, "exist_ok": True}
    assert emulator.requests_to("/folders/data/files")[0].target == "/folders/data/files?path=jobs%2F42"


def test_mkdir_without_exist_ok_on_an_existing_directory_is_the_servers_error(client, vf):
    async def step(client):
        await vfolders.create_vfolder(client, "data")
        await vfolders.mkdir(client, "data", "a")
        await vfolders.mkdir(client, "data", "a", exist_ok=False)

    with pytest.raises(vfolders.PathExistsError, match="File exists") as caught:  # what a lock held looks like
        run(client, step)
    assert caught.value.slug == "invalid-api-params" and caught.value.problem.data["errno"] == 17


def test_listing_a_missing_directory_is_no_such_path(client, vf):
    async def step(client):
        await vfolders.create_vfolder(client, "data")
        await vfolders.list_files(client, "data", "missing/dir")

    with pytest.raises(NoSuchPathError, match="'missing/dir' in vfolder 'data'"):
        run(client, step)


# -- upload and download --------------------------------------------------------------------------


def test_a_small_file_goes_up_in_one_patch_and_comes_back(client, emulator, vf):
    assert run(client, upload_then_download("data", "notes/hello.txt", b"hello\n")) == b"hello\n"
    # the proxy makes notes/ itself (as 23.09.10 does): no mkdir, no HEAD
    assert (client.calls[MKDIR], client.calls[UPLOAD], client.calls[PATCH], client.calls[HEAD]) == (0, 1, 1, 0)
    assert json.loads(emulator.requests_to("/folders/data/request-upload")[0].body) == {
        "path": "notes/hello.txt",
        "size": 6,
    }
    patch = next(r for r in vf.requests if r.method == "PATCH")
    assert patch.headers["upload-offset"] == "0" and patch.headers["tus-resumable"] == "1.0.0"
    assert patch.headers["content-type"] == "application/offset+octet-stream"
    assert all("authorization" not in r.headers for r in vf.requests)  # the token is the credential
    assert (vf.directory("data") / "notes" / "hello.txt").read_bytes() == b"hello\n"


def test_a_multi_chunk_file_arrives_byte_identical(client, vf):
    data = blob(3 * 2**20 + 123)
    assert run(client, upload_then_download("data", "big.bin", data, chunk_size=256 * 1024)) == data
    offsets = [int(r.headers["upload-offset"]) for r in vf.requests if r.method == "PATCH"]
    assert offsets == list(range(0, len(data), 256 * 1024)) and client.calls[HEAD] == 0


def test_a_file_object_is_uploaded_from_its_start(client, vf, tmp_path):
    source = tmp_path / "model.bin"
    source.write_bytes(blob(300_000))
    with open(source, "rb") as handle:
        handle.read(10)
        assert run(client, upload_then_download("data", "model.bin", handle, chunk_size=100_000)) == source.read_bytes()


def test_a_dropped_patch_resumes_from_the_servers_offset(client, vf, sleeps):
    data = blob(2**20)
    vf.drop_patch(after=100_000)  # the proxy keeps the first 100000 bytes, then the connection drops
    assert run(client, upload_then_download("data", "weights.bin", data, chunk_size=256 * 1024)) == data
    patches = [r for r in vf.requests if r.method in ("PATCH", "HEAD")]
    assert [(r.method, r.headers.get("upload-offset")) for r in patches[:3]] == [
        ("PATCH", "0"),
        ("HEAD", None),
        ("PATCH", "100000"),
    ]  # from the proxy's offset, not the chunk's
    assert patches[0].status is None and client.calls[HEAD] == 1 and len(sleeps) == 1


def test_a_proxy_5xx_is_retried_after_asking_the_offset(client, vf, sleeps):
    data = blob(600_000)
    vf.fail_proxy(500, "PATCH")
    assert run(client, upload_then_download("data", "x.bin", data, chunk_size=256 * 1024)) == data
    assert [r.status for r in vf.requests if r.method == "PATCH"][:2] == [500, 204]
    assert client.calls[HEAD] == 1 and len(sleeps) == 1


def test_newer_proxies_that_check_the_offset_get_the_right_one(client, vf):
    vf.strict_offsets = True  # 409 on a wrong Upload-Offset, as newer storage proxies answer
    vf.drop_patch(after=5000)
    data = blob(50_000)
    assert run(client, upload_then_download("data", "x.bin", data, chunk_size=20_000)) == data
    assert 409 not in [r.status for r in vf.requests]


def test_a_lost_upload_session_starts_over_with_a_new_one(client, emulator, vf):
    vf.lose_session()
    assert run(client, upload_then_download("data", "a.bin", blob(1000))) == blob(1000)
    assert [r.status for r in vf.requests if r.method == "PATCH"] == [404, 204]
    assert client.calls[UPLOAD] == 2


def test_a_manager_5xx_on_request_upload_is_retried(client, emulator, vf):
    emulator.fail(500, path="/folders/data/request-upload")
    assert run(client, upload_then_download("data", "a.txt", b"abc")) == b"abc"
    assert [r.status for r in emulator.requests_to("/folders/data/request-upload")] == [500, 200]


def test_make_parents_sends_a_mkdir_first(client, emulator, vf):
    assert run(client, upload_then_download("data", "a/b/c.txt", b"abc", make_parents=True)) == b"abc"
    assert json.loads(emulator.requests_to("/folders/data/mkdir")[0].body)["path"] == "a/b"


def test_a_proxy_that_keeps_failing_gives_up_with_its_answer(client, vf, sleeps):
    vf.fail_proxy(502, "PATCH", times=10)
    with pytest.raises(errors.ServerError, match="storage proxy .* PATCH /upload for vfolder 'data' path 'x.txt'"):
        run(client, upload_then_download("data", "x.txt", b"abc"))
    assert [r.method for r in vf.requests] == ["PATCH", "HEAD"] * 3 + ["PATCH"] and len(sleeps) == 3


def test_a_dropped_download_resumes_with_a_range(client, vf):
    data = blob(500_000)
    vf.drop_download(after=123_456)
    assert run(client, upload_then_download("data", "d.bin", data)) == data
    gets = [r for r in vf.requests if r.method == "GET"]
    assert [r.headers.get("range") for r in gets] == [None, "bytes=123456-"] and gets[1].status == 206


def test_download_to_a_local_file(client, vf, tmp_path):
    async def step(client):
        await vfolders.create_vfolder(client, "data")
        await vfolders.upload(client, "data", "out/result.json", b'{"ok": true}')
        return await vfolders.download_to(client, "data", "out/result.json", tmp_path / "result.json")

    assert run(client, step) == 12 and (tmp_path / "result.json").read_bytes() == b'{"ok": true}'


def test_a_missing_file_to_download_is_not_found_and_the_token_is_not_shown(client, vf):
    async def step(client):
        await vfolders.create_vfolder(client, "data")
        await vfolders.download(client, "data", "missing.txt")

    with pytest.raises(errors.NotFoundError, match="File not found") as caught:
        run(client, step)
    assert "token" not in str(caught.value) and vf.endpoint in str(caught.value)


def test_rename_then_delete(client, vf):
    async def step(client):
        await vfolders.create_vfolder(client, "data")
        await vfolders.upload(client, "data", "code/.partial-3f9a/main.py", b"print(1)")
        await vfolders.rename(client, "data", "code/.partial-3f9a", "3f9a")  # publish a tree in one step
        renamed = await vfolders.download(client, "data", "code/3f9a/main.py")
        await vfolders.delete_files(client, "data", ["code/3f9a"], recursive=True)
        return renamed, [e.name for e in await vfolders.list_files(client, "data", "code")]

    assert run(client, step) == (b"print(1)", [])
    with pytest.raises(InvalidPathError):
        run(client, lambda c: vfolders.rename(c, "data", "code/x", "../y"))


def test_move_replaces_a_file_at_the_target_and_needs_its_folder(client, vf):
    async def step(client):
        await vfolders.create_vfolder(client, "data")
        await vfolders.upload(client, "data", "cache/tmp/1.json", b"new")
        await vfolders.upload(client, "data", "cache/entries/k.json", b"old")
        await vfolders.move(client, "data", "cache/tmp/1.json", "cache/entries/k.json")
        moved = await vfolders.download(client, "data", "cache/entries/k.json")
        await vfolders.upload(client, "data", "cache/tmp/2.json", b"x")
        try:
            await vfolders.move(client, "data", "cache/tmp/2.json", "cache/nowhere/k.json")
        except NoSuchPathError as e:
            return moved, [x.name for x in await vfolders.list_files(client, "data", "cache/tmp")], str(e)

    moved, left, error = run(client, step)
    assert moved == b"new" and left == ["2.json"]
    assert "no such path 'cache/tmp/2.json -> cache/nowhere/k.json' in vfolder 'data'" in error
    assert json.loads(vf.emu.requests_to("/folders/data/move-file")[0].body) == {
        "src": "cache/tmp/1.json",
        "dst": "cache/entries/k.json",
    }


# -- errors ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("server", "status"), [("23.09", 412), ("25.15", 400)])
def test_an_upload_over_the_folders_quota_is_a_quota_error(make_client, server, status):
    with Emulator(server) as emu, install(emu) as vf:

        async def step(client):
            await vfolders.create_vfolder(client, "small")
            vf.folders["small"]["quota"] = 1000
            await vfolders.upload(client, "small", "big.bin", blob(2000))

        with pytest.raises(errors.QuotaError) as caught:
            run(make_client(emu), step)
    message = str(caught.value)
    assert caught.value.status == status and "'big.bin' in vfolder 'small'" in message and "quota" in message
    assert not any(r.method == "PATCH" for r in vf.requests)


def test_uploading_to_a_folder_that_does_not_exist(client, vf):
    with pytest.raises(NoSuchVFolderError, match="no vfolder 'ghost' that access key .* may upload to"):
        run(client, lambda c: vfolders.upload(c, "ghost", "a.txt", b"x"))


BAD_PATHS = ["../escape.txt", "/etc/passwd", "a/../../b", "a/..", "nul\x00byte"]


@pytest.mark.parametrize("path", BAD_PATHS)
def test_escaping_and_absolute_paths_are_refused_before_any_request(client, emulator, vf, tmp_path, path):
    calls = [
        lambda c: vfolders.upload(c, "data", path, b"x"),
        lambda c: vfolders.download(c, "data", path),
        lambda c: vfolders.mkdir(c, "data", path),
        lambda c: vfolders.list_files(c, "data", path),
        lambda c: vfolders.exists(c, "data", path),
        lambda c: vfolders.upload_tree(c, "data", path, tmp_path),
        lambda c: vfolders.delete_files(c, "data", [path]),
        lambda c: vfolders.rename(c, "data", path, "b"),
    ]
    for call in calls:
        with pytest.raises(InvalidPathError):
            run(client, call)
    assert emulator.requests == [] and vf.requests == []


@pytest.mark.parametrize("name", ["", "a/b", ".."])
def test_bad_folder_names_are_refused_before_any_request(client, emulator, name):
    with pytest.raises(InvalidPathError):
        run(client, lambda c: vfolders.list_files(c, name))
    assert emulator.requests == []


# -- trees -------------------------------------------------------------------------------------------


def make_tree(root):
    (root / "pkg" / "sub").mkdir(parents=True)
    (root / "data").mkdir()
    (root / "empty_dir").mkdir()
    (root / "main.py").write_text("print('hi')\n")
    (root / "run.sh").write_text("#!/bin/sh\necho run\n")
    os.chmod(root / "run.sh", 0o755)
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "sub" / "deep.txt").write_bytes(blob(70_000))
    (root / "data" / "empty.bin").write_bytes(b"")
    (root / "secret-link").symlink_to("/etc/hostname")  # never followed
    return root


def test_upload_tree_ships_every_file_and_directory(client, vf, tmp_path):
    tree = make_tree(tmp_path / "tree")

    async def step(client):
        await vfolders.create_vfolder(client, "data")
        client.calls.clear()
        result = await vfolders.upload_tree(client, "data", "code/3f9a", tree, chunk_size=64 * 1024)
        listings = {p: await vfolders.list_files(client, "data", p) for p in ("code/3f9a", "code/3f9a/pkg/sub")}
        files = {rel: await vfolders.download(client, "data", f"code/3f9a/{rel}") for rel in result.files}
        return result, listings, files

    result, listings, files = run(client, step)
    expected = ("data/empty.bin", "main.py", "pkg/__init__.py", "pkg/sub/deep.txt", "run.sh")
    assert result.files == expected and result.skipped == ("secret-link",)
    assert result.directories == ("empty_dir",)  # the proxy makes the directories of the files
    assert files == {rel: (tree / rel).read_bytes() for rel in expected}
    top = {e.name: e for e in listings["code/3f9a"]}
    assert sorted(top) == ["data", "empty_dir", "main.py", "pkg", "run.sh"]
    assert top["pkg"].is_dir and top["main.py"].size == 12
    assert top["run.sh"].mode == "644"  # the API keeps no modes: the executable bit is lost
    assert [e.name for e in listings["code/3f9a/pkg/sub"]] == ["deep.txt"]


def test_upload_tree_api_calls(client, vf, tmp_path):
    """The call budget: two calls per small file, one mkdir per empty directory."""
    tree = make_tree(tmp_path / "tree")

    async def step(client):
        await vfolders.create_vfolder(client, "data")
        client.calls.clear()
        await vfolders.upload_tree(client, "data", "code/3f9a", tree)

    run(client, step)
    assert dict(client.calls) == {MKDIR: 1, UPLOAD: 5, PATCH: 5}  # 11 for 5 files and 1 empty directory


def test_upload_tree_of_a_flat_folder_makes_its_destination(client, vf, tmp_path):
    (tmp_path / "only.txt").write_text("x")

    async def step(client):
        await vfolders.create_vfolder(client, "data")
        await vfolders.upload_tree(client, "data", "code/flat", tmp_path)
        return await vfolders.exists(client, "data", "code/flat/only.txt")

    assert run(client, step) is True


def test_a_proxy_whose_offset_goes_back_and_forth_does_not_keep_the_upload_going():
    """Found writing tests/fuzz/tus_test.py: 10, 5, 10, 5, ... reset the failure count at each step forward, so
    the upload never ended. Progress is now passing the furthest offset the proxy has reported."""
    assert asyncio.run(upload_against([(204, "10"), (204, "5")])) < 20
