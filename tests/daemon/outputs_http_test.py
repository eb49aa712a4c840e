"""The daemon's outputs API as a person with the token, GitHub's image proxy with a signed link, and an attacker see it.

The real daemon on a real socket runs a real job (POST /api/trigger) whose
task writes an SVG, a PNG, a text file, a file over the configured limit
and a link to /etc/passwd; everything is then asked for over HTTP with
httpx, as a browser or camo would.
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import quote

from conftest import await_until
from daemon.conftest import REPO_NAME, commit_file
from daemon.http_test import quiet_config, serving

from fasttrack_gitops.core.job import JobStatus
from fasttrack_gitops.core.signing import output_path, sign, signed_output_url

TOKEN = "api-token-for-the-outputs-test-0123"
SIGNING = "signing-secret-for-the-outputs-test"
PICTURES = """\
version: "26.4.4"
name: pictures
tasks:
  - name: draw
    command: >-
      cd "$PIPELINE_OUTPUT_ROOT" && mkdir plots &&
      printf '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>' > plots/loss.svg &&
      printf '\\211PNG' > plot.png && echo hello > notes.txt && head -c 2048 /dev/zero > big.bin &&
      ln -s /etc/passwd passwd
"""
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
CONFIG = "api_token_env: FTG_TEST_API_TOKEN\nsigning_secret_env: FTG_TEST_SIGNING\noutputs_max_size: 1k\n"


def config_for(tmp_path, source_repo, extra: str = CONFIG):
    commit_file(source_repo, "pipelines/pictures.yaml", PICTURES, "pictures")
    return quiet_config(
        tmp_path, source_repo, extra=extra, environ={"FTG_TEST_API_TOKEN": TOKEN, "FTG_TEST_SIGNING": SIGNING}
    )


async def finished_job(daemon, client) -> str:
    answer = await client.post(
        "/api/trigger",
        json={"repository": REPO_NAME, "pipeline": "pictures", "ref": "main"},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert answer.status_code == 201, answer.text
    (job,) = answer.json()["jobs"]
    view = await await_until(
        lambda: (v := daemon.store.view(job)).status in (JobStatus.SUCCEEDED, JobStatus.FAILED) and v
    )
    assert view.status == JobStatus.SUCCEEDED, view
    return job


def test_outputs_are_served_to_the_token_and_to_signed_links_and_refused_to_everyone_else(tmp_path, source_repo):
    config = config_for(tmp_path, source_repo)
    bearer = {"Authorization": f"Bearer {TOKEN}"}

    async def scenario():
        async with serving(config) as (daemon, client):
            job = await finished_job(daemon, client)
            base = f"/api/jobs/{job}/tasks/draw/outputs"

            listed = await client.get(base, headers=bearer)
            assert listed.status_code == 200, listed.text
            assert listed.json() == {
                "job": job,
                "task": "draw",
                "reused_from": None,
                "outputs": [
                    {"path": "big.bin", "size": 2048, "is_dir": False},
                    {"path": "notes.txt", "size": 6, "is_dir": False},
                    {"path": "plot.png", "size": 4, "is_dir": False},
                    {"path": "plots", "size": 0, "is_dir": True},
                    {"path": "plots/loss.svg", "size": len(SVG), "is_dir": False},
                ],
            }
            assert (
                await client.get(f"/api/jobs/{job[:10]}/tasks/draw/outputs", headers=bearer)
            ).json() == listed.json()

            svg = await client.get(f"{base}/plots/loss.svg", headers=bearer)
            assert svg.status_code == 200 and svg.content == SVG
            assert svg.headers["content-type"] == "image/svg+xml"
            assert svg.headers["content-security-policy"] == "default-src 'none'; style-src 'unsafe-inline'"
            assert svg.headers["x-content-type-options"] == "nosniff"
            assert svg.headers["content-disposition"].startswith("inline;")
            png = await client.get(f"{base}/plot.png", headers=bearer)
            assert (png.status_code, png.headers["content-type"], png.content) == (200, "image/png", b"\x89PNG")
            notes = await client.get(f"{base}/notes.txt", headers=bearer)
            assert notes.content == b"hello\n" and notes.headers["content-type"] == "text/plain; charset=utf-8"
            assert notes.headers["content-disposition"].startswith('attachment; filename="notes.txt"')

            # no token, a wrong one: 401, and nothing of the outputs in the answer
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
                for path in (base, f"{base}/notes.txt"):
                    refused = await client.get(path, headers=headers)
                    assert refused.status_code == 401, (headers, path, refused.text)
                    assert "Bearer" in refused.json()["error"] and b"hello" not in refused.content

            # a signed link: no token needed, until it expires; any change to it is refused
            url = signed_output_url(str(client.base_url), SIGNING.encode(), job, "draw", "plots/loss.svg", 60)
            assert TOKEN not in url and SIGNING not in url
            assert (await client.get(url)).content == SVG
            expired = signed_output_url("", SIGNING.encode(), job, "draw", "plots/loss.svg", 60, now=time.time() - 120)
            other_key = signed_output_url("", b"another daemon's secret", job, "draw", "plots/loss.svg", 60)
            plain = output_path(job, "draw", "plots/loss.svg")
            query = sign(SIGNING.encode(), plain, expires=int(time.time()) + 60)
            later = sign(SIGNING.encode(), plain, expires=int(time.time()) + 600).split("&")[0]
            for link, reason in (
                (expired, "expired"),
                (other_key, "bad signature"),
                (f"{base}/notes.txt?{query}", "bad signature"),  # the signature of another path
                (
                    f"{quote(plain)}?{later}&{query.split('&')[1]}",
                    "bad signature",
                ),  # a later expiry, the same signature
                (f"{quote(plain)}?{query.split('&')[1]}", "missing"),
            ):
                refused = await client.get(link)
                assert refused.status_code == 403, (link, refused.text)
                assert reason in refused.json()["error"]

            # too large, out of the outputs, unknown: said, never served
            big = await client.get(f"{base}/big.bin", headers=bearer)
            assert (
                big.status_code == 413 and "1024 bytes" in big.json()["error"] and "--download" in big.json()["error"]
            )
            for path, status in (
                (f"{base}/passwd", 400),
                (f"{base}/%2E%2E/%2E%2E/%2E%2E/%2E%2E/state.db", 400),
                (f"{base}/plots/..%2F..%2F..%2Fsum", 400),
                (f"{base}/nope.png", 404),
                (f"{base}/plots", 404),
                (f"/api/jobs/{job}/tasks/nope/outputs", 404),
                ("/api/jobs/no-such-job/tasks/draw/outputs/plot.png", 404),
            ):
                answer = await client.get(path, headers=bearer)
                assert answer.status_code == status, (path, answer.text)
                assert answer.json()["error"] and "root:" not in answer.text
                assert str(config.state_dir) not in answer.text
            assert (await client.post(base, headers=bearer)).status_code == 405

    asyncio.run(scenario())


def test_without_an_api_token_outputs_are_served_by_signed_link_only(tmp_path, source_repo):
    config = config_for(tmp_path, source_repo, extra="outputs_max_size: 1k\n")
    assert config.api_token is None and config.signing_secret is None

    async def scenario():
        async with serving(config) as (daemon, client):
            job = await finished_job(daemon, client)
            refused = await client.get(f"/api/jobs/{job}/tasks/draw/outputs/notes.txt")
            assert refused.status_code == 401 and "signed link only" in refused.json()["error"]
            # the secret is the process's own: a link signed with any other is refused
            guessed = signed_output_url("", SIGNING.encode(), job, "draw", "notes.txt", 60)
            assert (await client.get(guessed)).status_code == 403

    asyncio.run(scenario())
