"""A cache entry's file: written whole, read back the same, and anything else refused with what is wrong."""

from __future__ import annotations

import json

import pytest

from fasttrack_gitops.core.cache import OutputFile
from fasttrack_gitops.engine.cache import Entry, EntryError

KEY = "1" * 64
WHAT = "cache/entries/1111.json"


def an_entry(**changes) -> Entry:
    fields = dict(
        key=KEY,
        job="20260101-000000-abcdef",
        task="train",
        pipeline="ml",
        commit="c" * 40,
        created_at=1767225600.5,
        ingredients={"version": 1, "image": "pytorch:2.1", "envs": {"TOKEN": "${{ secrets.HF_TOKEN }}"}},
        files=(OutputFile("metrics.json", 12, "b" * 64), OutputFile("model/weights.bin", 1024, "a" * 64)),
        local={"signatures": {"metrics.json": [12, 1767225600000000000, 42]}},
    )
    fields.update(changes)
    return Entry(**fields)  # type: ignore[arg-type]


def test_an_entry_reads_back_as_it_was_written():
    entry = an_entry()
    again = Entry.from_json(entry.to_json(), key=KEY, what=WHAT)
    assert again == entry
    assert again.digest == entry.digest and again.size == 1036
    assert Entry.from_json(an_entry(commit=None, files=(), local={}).to_json(), key=None, what=WHAT) == an_entry(
        commit=None, files=(), local={}
    )


@pytest.mark.parametrize("cut", [0, 1, 40, -2])
def test_a_truncated_entry_is_not_complete_json(cut):
    data = an_entry().to_json()
    with pytest.raises(EntryError) as caught:
        Entry.from_json(data[:cut], key=KEY, what=WHAT)
    assert str(caught.value).startswith(f"{WHAT} is not complete JSON (")


def test_an_entry_for_another_key_is_refused_naming_both():
    data = an_entry(key="2" * 64).to_json()
    with pytest.raises(EntryError, match=f"^{WHAT} holds key 222222222222, not 111111111111$"):
        Entry.from_json(data, key=KEY, what=WHAT)
    assert Entry.from_json(data, key=None, what=WHAT).key == "2" * 64  # latest/<task>.json: any key


def test_a_manifest_that_does_not_match_its_digest_is_refused():
    raw = json.loads(an_entry().to_json())
    raw["manifest"] = raw["manifest"].replace(" 1024 ", " 1025 ")  # a size edited by hand
    with pytest.raises(EntryError, match=f"^{WHAT}: its manifest does not match its digest$"):
        Entry.from_json(json.dumps(raw).encode(), key=KEY, what=WHAT)


def test_a_manifest_that_does_not_parse_is_refused_naming_the_line():
    raw = json.loads(an_entry().to_json())
    raw["manifest"] += f"{'c' * 64} 3 ../../etc/passwd\n"
    with pytest.raises(EntryError, match=f"^{WHAT}: manifest, line 3: path '../../etc/passwd'"):
        Entry.from_json(json.dumps(raw).encode(), key=KEY, what=WHAT)


@pytest.mark.parametrize("field", ["key", "job", "task", "pipeline", "created_at", "ingredients", "manifest"])
def test_an_entry_without_a_field_is_refused(field):
    raw = json.loads(an_entry().to_json())
    del raw[field]
    with pytest.raises(EntryError, match=f"^{WHAT} lacks a field or has a wrong one \\(.*{field}"):
        Entry.from_json(json.dumps(raw).encode(), key=KEY, what=WHAT)


def test_a_field_of_the_wrong_type_is_refused():
    raw = json.loads(an_entry().to_json())
    raw["job"] = 12
    with pytest.raises(EntryError, match=f"^{WHAT} lacks a field or has a wrong one \\(job is not a string\\)$"):
        Entry.from_json(json.dumps(raw).encode(), key=KEY, what=WHAT)


@pytest.mark.parametrize("data", [b"[]", b"{}", b'{"version": 2}', b"null"])
def test_what_is_not_a_version_1_entry_is_refused(data):
    with pytest.raises(EntryError, match=f"^{WHAT} is not a version 1 cache entry$"):
        Entry.from_json(data, key=KEY, what=WHAT)
