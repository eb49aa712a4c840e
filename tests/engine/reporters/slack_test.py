"""Slack: what a person sees in the channel as a job runs, against a server that plays Slack.

The server checks every body against tests/data/contracts/slack.json (the
chat.postMessage, chat.update and incoming-webhook schemas, whose `blocks`
items carry every Block Kit limit) and keeps the channel's messages the way
Slack would, so the tests read what is in the channel, not which calls
were made.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from dataclasses import replace

import httpx
import jsonschema
import pytest
from engine.reporters.contract_server import Answer, ContractServer

from fasttrack_gitops.core.reports import slack_blocks
from fasttrack_gitops.core.reports.model import GiveUp, JobReport, RetryLater, TaskRow
from fasttrack_gitops.engine.reporters.config import SlackReporterConfig
from fasttrack_gitops.engine.reporters.slack import SlackReporter, due_events, link_for

TOKEN = "xoxb-1234-5678-secret-token"
WEBHOOK_PATH = "/services/T0001/B0001/webhooksecret42"
CHANNELS = {"#ml-pipelines": "C0ML", "#general": "C0GEN"}
SHA = "3f9c2a7d81e04b5c9a6e2f1d0b8c7a6e5d4c3b2a"
LOG = (
    'epoch 1 loss=0.9\nepoch 2 loss=0.7\nTraceback (most recent call last):\n  File "train.py"\n'
    "ValueError: <nan> & bad\n"
)


# ---------------------------------------------------------------- a Slack workspace


class FakeSlack:
    """Slack's Web API and one incoming webhook on a ContractServer: messages kept by ts, threads by thread_ts."""

    def __init__(self, contracts):
        self.contract = json.loads((contracts / "slack.json").read_text())
        self.messages: dict[str, dict] = {}  # ts -> {"channel", "text", "blocks", "thread_ts"}
        self.webhook_posts: list[dict] = []
        self._ts = itertools.count(1)
        schemas = self.contract["schemas"]
        self.server = ContractServer()
        self.server.route("POST", r"/api/chat\.postMessage", self._post_message, schema=schemas["chatPostMessage"])
        self.server.route("POST", r"/api/chat\.update", self._update, schema=schemas["chatUpdate"])
        self.server.route("POST", WEBHOOK_PATH, self._webhook, schema=schemas["incomingWebhook"])

    @property
    def api_url(self) -> str:
        return self.server.url + "/api"

    @property
    def webhook_url(self) -> str:
        return self.server.url + WEBHOOK_PATH

    def _answer(self, body: dict, status: int = 200) -> Answer:
        """Slack's answer, itself checked against the published response schema."""
        errors = list(jsonschema.Draft202012Validator(self.contract["schemas"]["chatResponse"]).iter_errors(body))
        if errors:
            self.server.violations.append(f"fake answer breaks chatResponse: {errors[0].message}")
        return Answer(status, body)

    def _refused(self, request) -> Answer | None:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return self._answer({"ok": False, "error": "invalid_auth"})
        if request.json()["channel"] not in CHANNELS and request.json()["channel"] not in CHANNELS.values():
            return self._answer({"ok": False, "error": "channel_not_found"})
        return None

    def _post_message(self, request) -> Answer:
        if refused := self._refused(request):
            return refused
        body = request.json()
        channel = CHANNELS.get(body["channel"], body["channel"])
        ts = f"1700000000.{next(self._ts):06d}"
        self.messages[ts] = {
            "channel": channel,
            "text": body.get("text"),
            "blocks": body.get("blocks", []),
            "thread_ts": body.get("thread_ts"),
        }
        return self._answer({"ok": True, "channel": channel, "ts": ts, "message": {"text": body.get("text")}})

    def _update(self, request) -> Answer:
        if refused := self._refused(request):
            return refused
        body = request.json()
        message = self.messages.get(body["ts"])
        if message is None or message["channel"] != body["channel"]:
            return self._answer({"ok": False, "error": "message_not_found"})
        message.update(text=body.get("text"), blocks=body.get("blocks", []))
        return self._answer({"ok": True, "channel": body["channel"], "ts": body["ts"], "message": {}})

    def _webhook(self, request) -> Answer:
        self.webhook_posts.append(request.json())
        return Answer(200, b"ok", {"Content-Type": "text/plain"})

    # what a person sees

    def top_level(self) -> list[dict]:
        return [m for m in self.messages.values() if m["thread_ts"] is None]

    def thread(self, ts: str) -> list[dict]:
        return [m for m in self.messages.values() if m["thread_ts"] == ts]


@pytest.fixture
def slack(contracts):
    fake = FakeSlack(contracts)
    with fake.server.serving():
        yield fake


def bot(slack: FakeSlack, **kwargs) -> SlackReporter:
    config = SlackReporterConfig(bot_token=TOKEN, webhook_url=None, default_channel="#general", api_url=slack.api_url)
    return SlackReporter(replace(config, **kwargs))


def hook(slack: FakeSlack) -> SlackReporter:
    return SlackReporter(SlackReporterConfig(bot_token=None, webhook_url=slack.webhook_url, default_channel=None))


def run(coroutine):
    return asyncio.run(coroutine)


async def sends(reporter: SlackReporter, reports, state=None) -> dict:
    """Send each report in turn, as the deliverer does, carrying the state; the last state."""
    state = {} if state is None else state
    try:
        for report in reports:
            state = await reporter.send(report, state)
    finally:
        await reporter.aclose()
    return state


# ---------------------------------------------------------------- jobs


def job(
    tasks: dict[str, str] | None = None, *, on=None, channel="#ml-pipelines", conclusion=None, **kwargs
) -> JobReport:
    """A report of train-compare at SHA on main, pushed by alice; tasks as name -> state."""
    tasks = {"prepare": "succeeded", "train": "running", "evaluate": "pending"} if tasks is None else tasks
    rows = tuple(
        TaskRow(
            name, state, None if state in ("running", "pending") else 12.5, 1, "exit 3" if state == "failed" else ""
        )
        for name, state in tasks.items()
    )
    slack = {"channel": channel} if channel else {}
    if on is not None:
        slack["on"] = list(on)
    ended = {"success": "succeeded", "failure": "failed", "neutral": "succeeded", "cancelled": "cancelled"}
    values = {
        "job_id": "j-1",
        "repository": "acme/ml",
        "pipeline": "train-compare",
        "pipeline_path": "pipelines/train-compare.yaml",
        "commit": SHA,
        "ref": "refs/heads/main",
        "trigger": {"event": "push", "sender": "alice"},
        "status": ended.get(conclusion, "running"),
        "conclusion": conclusion,
        "started": any(s != "pending" for s in tasks.values()),
        "title": f"{len(tasks)} tasks",
        "summary": "",
        "text": "",
        "tasks": rows,
        "notify": {"slack": slack},
    }
    return JobReport(**{**values, **kwargs})


RUNNING = job()
SUCCEEDED = job({"prepare": "succeeded", "train": "succeeded", "evaluate": "succeeded"}, conclusion="success")
FAILED = job(
    {"prepare": "succeeded", "train": "failed", "evaluate": "cancelled"},
    conclusion="failure",
    failed_logs={"train": LOG},
    title="1 of 3 tasks succeeded; train failed (exit 3)",
)


def texts(blocks: list[dict], kind: str) -> list[str]:
    return [b["text"]["text"] for b in blocks if b["type"] == kind and "text" in b]


def context(blocks: list[dict]) -> list[str]:
    return [e["text"] for b in blocks if b["type"] == "context" for e in b["elements"]]


def button_urls(blocks: list[dict]) -> list[str]:
    return [e["url"] for b in blocks if b["type"] == "actions" for e in b["elements"]]


def assert_valid_blocks(contracts, blocks: list[dict]) -> None:
    """Each block against its own schema in blockSchemas, and the list against `blocks` (50 at most)."""
    contract = json.loads((contracts / "slack.json").read_text())
    jsonschema.Draft202012Validator(contract["schemas"]["blocks"]).validate(blocks)
    for block in blocks:
        jsonschema.Draft202012Validator(contract["blockSchemas"][block["type"]]).validate(block)


# ---------------------------------------------------------------- the message (pure)


def test_a_succeeded_job_reads_as_header_context_sections_and_a_button(contracts):
    blocks = slack_blocks.blocks(SUCCEEDED, link="https://ci.example.com/jobs/j-1")

    assert texts(blocks, "header") == ["✅ train-compare succeeded"]
    assert context(blocks) == [
        "*acme/ml*",
        "`pipelines/train-compare.yaml`",
        "branch `main`",
        "commit `3f9c2a7`",
        "push by alice",
    ]
    assert texts(blocks, "section") == ["*Succeeded* (3): prepare, train, evaluate"]
    assert button_urls(blocks) == ["https://ci.example.com/jobs/j-1"]
    assert_valid_blocks(contracts, blocks)


def test_a_failed_job_lists_what_went_wrong_first_with_why():
    blocks = slack_blocks.blocks(FAILED, link=None)

    assert texts(blocks, "header") == ["❌ train-compare failed"]
    assert texts(blocks, "section") == [
        "*Failed* (1): train (exit 3)",
        "*Cancelled* (1): evaluate",
        "*Succeeded* (1): prepare",
    ]
    assert button_urls(blocks) == []  # no link, no button
    assert slack_blocks.fallback_text(FAILED) == (
        "❌ train-compare failed: 1 of 3 tasks succeeded; train failed (exit 3) (acme/ml@3f9c2a7)"
    )


def test_a_running_job_and_a_pull_request_say_so():
    report = job(trigger={"event": "pull_request", "number": 12, "sender": "bob"}, ref="refs/pull/12/head")
    blocks = slack_blocks.blocks(report, link=None)

    assert texts(blocks, "header") == ["🏃 train-compare is running"]
    assert "pull request #12 by bob" in context(blocks)
    assert texts(blocks, "section") == ["*Running* (1): train", "*Pending* (1): evaluate", "*Succeeded* (1): prepare"]


def test_the_button_leads_to_the_job_page_or_else_the_commit_checks_on_github():
    page = "https://ci.example.com/jobs/j-1"
    assert link_for(replace(RUNNING, details_url=page)) == page
    assert link_for(RUNNING) == f"https://github.com/acme/ml/commit/{SHA}/checks"
    assert link_for(replace(RUNNING, commit="")) is None


def test_names_and_logs_are_shown_never_parsed_as_links_or_mentions():
    report = job({"<!channel>&co": "failed"}, conclusion="failure", failed_logs={"<!channel>&co": "<@U123> & more"})
    blocks = slack_blocks.blocks(report, link=None)
    reply = slack_blocks.log_reply(report, "<!channel>&co", report.failed_logs["<!channel>&co"])

    assert texts(blocks, "section") == ["*Failed* (1): &lt;!channel&gt;&amp;co (exit 3)"]
    assert "&lt;@U123&gt; &amp; more" in reply["blocks"][1]["text"]["text"]


def test_200_tasks_with_long_names_stay_within_slack_limits(contracts):
    long = "x" * 300
    tasks = {f"{long}-{i:03d}": ("failed" if i % 2 else "succeeded") for i in range(200)}
    report = job(
        tasks,
        conclusion="failure",
        pipeline="p" * 400,
        title="t" * 50_000,
        trigger={"event": "push", "sender": "s" * 5000},
    )
    blocks = slack_blocks.blocks(report, link="https://ci.example.com/" + "a" * 100)

    assert len(blocks) <= 50
    header = texts(blocks, "header")[0]
    assert len(header) <= 150 and header.startswith("❌ ppp") and header.endswith("… failed")
    sections = texts(blocks, "section")
    assert all(len(s) <= 3000 for s in sections)
    assert sections[0].startswith("*Failed* (100): x") and sections[0].endswith(" more")
    assert "… and " in sections[1]
    assert len(slack_blocks.fallback_text(report)) <= 3000
    assert_valid_blocks(contracts, blocks)


def test_a_list_that_does_not_fit_counts_what_it_left_out():
    text = slack_blocks.fold("*Succeeded* (200): ", [f"task-{i:03d}" for i in range(200)], limit=100)

    assert len(text) <= 100
    assert text.startswith("*Succeeded* (200): task-000, task-001, ")
    shown = text.count("task-")
    assert text.endswith(f"… and {200 - shown} more")


def test_a_long_log_keeps_its_end_from_a_whole_line(contracts):
    log = "".join(f"line {i} " + "y" * 50 + "\n" for i in range(2000)) + "the error at the end\n"
    blocks = slack_blocks.log_blocks(FAILED, "train", log)

    code = blocks[1]["text"]["text"]
    assert len(code) <= 3000
    assert code.startswith("```\n…\nline ") and code.endswith("the error at the end\n```")
    assert_valid_blocks(contracts, blocks)


def test_an_invalid_pipeline_says_where_it_is_wrong(contracts):
    report = job(
        {},
        status="invalid",
        conclusion="failure",
        started=False,
        title="The pipeline file is not valid",
        annotations=(
            {
                "path": "pipelines/train-compare.yaml",
                "line": 4,
                "column": 3,
                "message": "unknown key 'taks'; did you mean 'tasks'?",
            },
        ),
    )
    blocks = slack_blocks.blocks(report, link=None)

    where = "• `pipelines/train-compare.yaml:4:3` unknown key 'taks'; did you mean 'tasks'?"
    assert texts(blocks, "section") == [f"The pipeline file is not valid\n{where}"]
    assert_valid_blocks(contracts, blocks)


def test_the_route_schema_covers_blocks(contracts):
    """A too-long header inside chat.postMessage breaks the schema the server checks, so blocks are checked."""
    schema = json.loads((contracts / "slack.json").read_text())["schemas"]["chatPostMessage"]
    body = {
        "channel": "C0ML",
        "text": "x",
        "blocks": [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}],
    }
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(body))


# ---------------------------------------------------------------- when to post (pure)


@pytest.mark.parametrize(
    ("on", "report", "events"),
    [
        (None, RUNNING, set()),
        (None, FAILED, {"end"}),
        (None, SUCCEEDED, set()),
        (["start"], RUNNING, {"start"}),
        (["start"], SUCCEEDED, {"start"}),
        (["success"], SUCCEEDED, {"end"}),
        (["success"], FAILED, set()),
        (["always"], RUNNING, {"start"}),
        (["always"], FAILED, {"start", "end"}),
        (["always"], job(conclusion="cancelled"), {"start", "end"}),
        (["failure"], job(conclusion="cancelled"), set()),
        ([], FAILED, set()),
    ],
)
def test_on_decides_which_events_post(on, report, events):
    slack = {"channel": "#ml-pipelines"} | ({} if on is None else {"on": on})
    assert due_events(replace(report, notify={"slack": slack})) == events


# ---------------------------------------------------------------- with a bot token


def test_on_start_posts_one_message_then_updates_it_in_place(slack):
    later = job({"prepare": "succeeded", "train": "succeeded", "evaluate": "running"}, on=["start"])
    state = run(sends(bot(slack), [job(on=["start"]), later, later, replace(SUCCEEDED, notify=later.notify)]))

    [message] = slack.top_level()
    assert texts(message["blocks"], "header") == ["✅ train-compare succeeded"]
    assert texts(message["blocks"], "section") == ["*Succeeded* (3): prepare, train, evaluate"]
    assert message["channel"] == "C0ML" and state["ts"] in slack.messages and state["channel"] == "C0ML"
    assert len(slack.server.calls("POST", r"/api/chat\.postMessage")) == 1
    assert len(slack.server.calls("POST", r"/api/chat\.update")) == 2  # the same report again sent nothing
    assert not slack.thread(state["ts"])  # on: start does not ask to hear about the end


def test_the_same_report_again_sends_nothing(slack):
    state = run(sends(bot(slack), [FAILED]))
    before = len(slack.server.requests)

    assert run(sends(bot(slack), [FAILED], state)) == state
    assert len(slack.server.requests) == before


def test_by_default_only_a_failure_posts_then_its_log_goes_in_the_thread(slack):
    running = job(on=None)
    failed = replace(FAILED, notify=running.notify)
    state = run(sends(bot(slack), [running, replace(running, title="still going")]))
    assert state == {} and slack.server.requests == []

    state = run(sends(bot(slack), [failed, failed], state))

    [message] = slack.top_level()
    assert texts(message["blocks"], "header") == ["❌ train-compare failed"]
    assert "push by alice" in context(message["blocks"])
    assert button_urls(message["blocks"]) == [f"https://github.com/acme/ml/commit/{SHA}/checks"]
    [reply] = slack.thread(state["ts"])
    intro, code = texts(reply["blocks"], "section")
    assert intro == "*train* failed (exit 3). The end of its log:"
    assert code.startswith("```\nepoch 1") and "ValueError: &lt;nan&gt; &amp; bad\n```" in code
    assert state["replied"] == ["train"]


def test_a_succeeded_job_posts_nothing_by_default(slack):
    succeeded = replace(SUCCEEDED, notify={"slack": {"channel": "#ml-pipelines"}})
    assert run(sends(bot(slack), [RUNNING, succeeded])) == {}
    assert slack.server.requests == []


def test_on_success_posts_only_when_the_job_succeeds(slack):
    notify = {"slack": {"channel": "#ml-pipelines", "on": ["success"]}}
    run(sends(bot(slack), [replace(RUNNING, notify=notify), replace(FAILED, notify=notify)]))
    assert slack.server.requests == []

    run(sends(bot(slack), [replace(SUCCEEDED, notify=notify)]))
    [message] = slack.top_level()
    assert texts(message["blocks"], "header") == ["✅ train-compare succeeded"]


def test_always_posts_at_start_and_tells_the_thread_each_failure_and_the_end(slack):
    notify = {"slack": {"channel": "#ml-pipelines", "on": ["always"]}}
    one_failed = job(
        {"prepare": "failed", "train": "running", "evaluate": "pending"},
        notify=notify,
        failed_logs={"prepare": "disk full\n"},
    )
    ended = job(
        {"prepare": "failed", "train": "failed", "evaluate": "cancelled"},
        conclusion="failure",
        notify=notify,
        failed_logs={"prepare": "disk full\n", "train": LOG},
    )
    state = run(sends(bot(slack), [replace(RUNNING, notify=notify), one_failed, one_failed, ended, ended]))

    [message] = slack.top_level()
    assert texts(message["blocks"], "header") == ["❌ train-compare failed"]
    thread = slack.thread(state["ts"])
    assert [texts(m["blocks"], "section")[0] for m in thread] == [
        "*prepare* failed (exit 3). The end of its log:",
        "*train* failed (exit 3). The end of its log:",
        "❌ train-compare failed: 3 tasks (acme/ml@3f9c2a7)",
    ]
    assert state["events"] == ["end", "start"] and state["replied"] == ["prepare", "train"]


def test_the_channel_defaults_to_the_daemons(slack):
    report = job(on=["start"], channel=None)
    run(sends(bot(slack), [report]))
    assert [m["channel"] for m in slack.top_level()] == ["C0GEN"]


def test_a_deleted_message_is_posted_again_and_its_new_ts_kept(slack):
    notify = {"slack": {"channel": "#ml-pipelines", "on": ["always"]}}
    first = run(sends(bot(slack), [replace(RUNNING, notify=notify)]))
    del slack.messages[first["ts"]]

    state = run(sends(bot(slack), [replace(SUCCEEDED, notify=notify)], first))

    [message] = slack.top_level()
    assert state["ts"] != first["ts"] and slack.messages[state["ts"]] is message
    assert texts(message["blocks"], "header") == ["✅ train-compare succeeded"]


def test_a_channel_that_does_not_exist_gives_up_at_once_saying_what_to_do(slack, caplog):
    report = replace(FAILED, notify={"slack": {"channel": "#nope"}})
    with caplog.at_level(logging.DEBUG), pytest.raises(GiveUp) as raised:
        run(sends(bot(slack), [report]))

    message = str(raised.value)
    assert "#nope" in message and "channel_not_found" in message
    assert "notify.slack.channel in pipelines/train-compare.yaml" in message
    assert TOKEN not in message and TOKEN not in caplog.text
    assert len(slack.server.requests) == 1  # no retry loop


def test_a_revoked_token_gives_up_without_showing_it(slack):
    with pytest.raises(GiveUp) as raised:
        run(sends(bot(slack, bot_token="xoxb-revoked-secret"), [FAILED]))

    assert "invalid_auth" in str(raised.value) and "reinstall" in str(raised.value)
    assert "xoxb-revoked-secret" not in str(raised.value)
    assert len(slack.server.requests) == 1


def test_rate_limited_retries_after_what_slack_says_and_posts_once(slack):
    slack.server.fail_next(
        "POST", r"/api/chat\.postMessage", Answer(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "7"})
    )
    with pytest.raises(RetryLater) as raised:
        run(sends(bot(slack), [FAILED]))
    assert raised.value.after == 7.0

    run(sends(bot(slack), [FAILED]))
    assert len(slack.top_level()) == 1


def test_ratelimited_in_a_200_answer_also_retries_after(slack):
    slack.server.fail_next(
        "POST", r"/api/chat\.postMessage", Answer(200, {"ok": False, "error": "ratelimited"}, {"Retry-After": "30"})
    )
    with pytest.raises(RetryLater) as raised:
        run(sends(bot(slack), [FAILED]))
    assert raised.value.after == 30.0


def test_a_server_error_retries_with_the_deliverers_backoff(slack):
    slack.server.fail_next("POST", r"/api/chat\.postMessage", Answer(503, b"upstream down"))
    with pytest.raises(RetryLater) as raised:
        run(sends(bot(slack), [FAILED]))
    assert raised.value.after is None


def test_a_send_that_fails_half_way_does_not_post_its_message_twice(slack):
    """The message is posted, then its thread reply meets a 500: the retry sends only the reply."""
    post_message, seen = slack._post_message, []

    def second_fails(request):
        seen.append(request)
        return Answer(500, b"") if len(seen) == 2 else post_message(request)

    slack.server.routes[0].handler = second_fails
    reporter = bot(slack)

    async def scenario():
        with pytest.raises(RetryLater) as raised:
            await reporter.send(FAILED, {})
        assert raised.value.state["ts"]  # how far it got, which the deliverer keeps in the outbox
        return await sends(reporter, [FAILED], raised.value.state)

    state = run(scenario())
    assert len(slack.top_level()) == 1
    assert [texts(m["blocks"], "section")[0] for m in slack.thread(state["ts"])] == [
        "*train* failed (exit 3). The end of its log:"
    ]


def test_no_answer_at_all_retries(contracts):
    reporter = SlackReporter(
        SlackReporterConfig(
            bot_token=TOKEN, webhook_url=None, default_channel="#general", api_url="http://127.0.0.1:9/api"
        )
    )
    with pytest.raises(RetryLater) as raised:
        run(sends(reporter, [FAILED]))
    assert TOKEN not in str(raised.value)


# ---------------------------------------------------------------- with only an incoming webhook


def test_a_webhook_posts_the_start_and_the_end_once_each(slack):
    notify = {"slack": {"on": ["always"]}}
    running, ended = replace(RUNNING, notify=notify), replace(FAILED, notify=notify)

    state = run(sends(hook(slack), [running, running, ended, ended]))

    start, end = slack.webhook_posts
    assert texts(start["blocks"], "header") == ["🏃 train-compare is running"]
    assert texts(end["blocks"], "header") == ["❌ train-compare failed"]
    assert end["text"].startswith("❌ train-compare failed")
    assert "ValueError: &lt;nan&gt;" in texts(end["blocks"], "section")[-1]  # no thread: the log is in the message
    assert state == {"events": ["end", "start"]}
    assert run(sends(hook(slack), [ended], state)) == state and len(slack.webhook_posts) == 2


def test_a_webhook_job_that_ended_before_its_first_send_posts_once(slack):
    notify = {"slack": {"on": ["start", "success"]}}
    run(sends(hook(slack), [replace(SUCCEEDED, notify=notify)] * 2))

    [only] = slack.webhook_posts
    assert texts(only["blocks"], "header") == ["✅ train-compare succeeded"]


def test_a_removed_webhook_gives_up_without_showing_its_url(slack, caplog):
    slack.server.fail_next("POST", WEBHOOK_PATH, Answer(404, b"no_service", {"Content-Type": "text/plain"}))
    with caplog.at_level(logging.DEBUG), pytest.raises(GiveUp) as raised:
        run(sends(hook(slack), [FAILED]))

    assert "no_service" in str(raised.value) and "slack.webhook_url" in str(raised.value)
    assert "webhooksecret42" not in str(raised.value) and "webhooksecret42" not in caplog.text
    assert len(slack.server.requests) == 1


def test_a_webhook_rate_limit_retries_after(slack):
    slack.server.fail_next("POST", WEBHOOK_PATH, Answer(429, b"rate_limited", {"Retry-After": "2"}))
    with pytest.raises(RetryLater) as raised:
        run(sends(hook(slack), [FAILED]))
    assert raised.value.after == 2.0


def test_a_big_job_reaches_slack_within_its_limits_both_ways(slack):
    """200 tasks with long names and long logs: Slack (the server's schemas) takes every message."""
    tasks = {f"{'stage-' * 40}{i:03d}": ("failed" if i < 5 else "succeeded") for i in range(200)}
    logs = {name: "z" * 10_000 + "\nthe last line\n" for name, state in tasks.items() if state == "failed"}
    report = job(tasks, conclusion="failure", failed_logs=logs, notify={"slack": {"channel": "#ml-pipelines"}})

    state = run(sends(bot(slack), [report]))
    run(sends(hook(slack), [report]))

    [message] = slack.top_level()
    assert len(message["blocks"]) <= 50 and len(slack.thread(state["ts"])) == 5
    [posted] = slack.webhook_posts
    assert len(posted["blocks"]) <= 50
    assert sum("the last line" in t for t in texts(posted["blocks"], "section")) == 3  # MAX_WEBHOOK_LOGS


# ---------------------------------------------------------------- which jobs


def test_wants_a_pipeline_that_asks_for_slack_and_a_channel_it_can_reach():
    config = SlackReporterConfig(bot_token=TOKEN, webhook_url=None, default_channel=None)
    reporter = SlackReporter(config)
    assert reporter.wants(FAILED)
    assert not reporter.wants(replace(FAILED, notify={}))  # the pipeline did not ask
    assert not reporter.wants(replace(FAILED, notify={"slack": {}}))  # no channel anywhere
    assert SlackReporter(replace(config, default_channel="#general")).wants(replace(FAILED, notify={"slack": {}}))
    webhook_only = SlackReporter(SlackReporterConfig(None, "https://hooks.slack.com/services/x", None))
    assert webhook_only.wants(replace(FAILED, notify={"slack": {}}))
    assert not SlackReporter(SlackReporterConfig(None, None, "#general")).wants(FAILED)
    assert "secret" not in repr(config) and TOKEN not in repr(config)


def test_aclose_leaves_a_client_it_was_given_open():
    async def scenario():
        client = httpx.AsyncClient()
        await SlackReporter(SlackReporterConfig(TOKEN, None, "#general"), client=client).aclose()
        assert not client.is_closed
        await client.aclose()

    run(scenario())
