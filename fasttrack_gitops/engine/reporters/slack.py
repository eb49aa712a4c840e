"""Slack: one message per job, updated in place, with a thread reply holding each failed task's log tail.

With a bot token (`slack.bot_token`) the message is posted with
chat.postMessage at the first event the pipeline's `notify.slack.on` asks
for (start, success, failure, always; failure by default), then changed
with chat.update as the job moves: an update notifies nobody, so what must
reach a person (a failed task's log, the end of a job whose message was
posted at its start) goes in a thread reply. With only an incoming webhook
(`slack.webhook_url`) nothing can be updated, so each notable event (start,
end) is its own message, posted once.

`state` (kept in the outbox) remembers the channel id and ts of the message,
which events and which failed tasks were posted, and a digest of what the
message shows, so sending the same report again sends nothing. Slack has no
idempotency key; a send that fails half-way (posted, then a reply was
refused) hands what it did to the deliverer on the exception (`state`),
which keeps it in the outbox for the retry, across restarts too.

The report is already masked; the bot token and the webhook URL (itself a
secret) appear in no message, log line or exception.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping

import httpx

from fasttrack_gitops import __version__
from fasttrack_gitops.core.masking import MaskingFilter
from fasttrack_gitops.core.reports import slack_blocks
from fasttrack_gitops.core.reports.model import GiveUp, JobReport, RetryLater, retry_after
from fasttrack_gitops.engine.reporters.config import SlackReporterConfig

log = logging.getLogger("fasttrack_gitops.engine.reporters")

DEFAULT_ON = ("failure",)  # pipeline.schema.json, notify.slack.on
SUCCESS = frozenset({"success", "neutral"})  # neutral: only tasks allowed to fail failed
FAILURE = frozenset({"failure", "timed_out"})
MAX_WEBHOOK_LOGS = 3  # failed tasks' log tails appended to a webhook's end message
# Errors that name a momentary problem on Slack's side (docs.slack.dev, chat.postMessage "Errors").
TRANSIENT = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout", "team_added_to_org"}
)
_TOKEN_ADVICE = (
    "the bot token in the daemon's configuration (slack.bot_token_env or slack.bot_token_file) no "
    "longer works: reinstall the Slack app and update the token"
)
_SCOPE_ADVICE = (
    "give the Slack app the chat:write scope (chat:write.public to post in public channels it has "
    "not joined) and reinstall it"
)
# chat.* errors that sending again can never fix -> what a person should do. {channel} and {where} filled in.
GIVE_UP_ADVICE = {
    "channel_not_found": "no such channel, or the app cannot see it: check notify.slack.channel in {where} (or the "
    "daemon's slack.default_channel); for a private channel, invite the app first",
    "not_in_channel": "the app is not a member: invite it (/invite @app in {channel}) or give it chat:write.public",
    "is_archived": "the channel is archived: unarchive it or set another notify.slack.channel in {where}",
    "invalid_auth": _TOKEN_ADVICE,
    "account_inactive": _TOKEN_ADVICE,
    "token_revoked": _TOKEN_ADVICE,
    "not_authed": _TOKEN_ADVICE,
    "no_permission": _SCOPE_ADVICE,
    "missing_scope": _SCOPE_ADVICE,
}
# What an incoming webhook answers (a text body, not JSON) when it can never take a message.
_WEBHOOK_ADVICE = (
    "the incoming webhook no longer posts (removed, or its channel archived or deleted): create a "
    "new one in the Slack app and update slack.webhook_url_env or slack.webhook_url_file"
)


# ---------------------------------------------------------------- decisions (pure)


def link_for(report: JobReport) -> str | None:
    """Where the button leads: the daemon's job page, else the commit's checks on GitHub (None without a
    commit: no button beats a broken one)."""
    if report.details_url:
        return report.details_url
    return f"https://github.com/{report.repository}/commit/{report.commit}/checks" if report.commit else None


def wanted(report: JobReport) -> frozenset[str]:
    """The pipeline's `notify.slack.on`, `failure` when it says nothing."""
    slack = report.notify.get("slack") or {}
    on = slack.get("on")
    return frozenset(DEFAULT_ON if on is None else on)


def outcome(report: JobReport) -> str | None:
    """ "success" or "failure" for a job that ended one way or the other, else None (still going, cancelled,
    skipped, held for approval: only `always` asks about those)."""
    if not report.ended:
        return None
    if report.conclusion in SUCCESS:
        return "success"
    return "failure" if report.conclusion in FAILURE else "other"


def due_events(report: JobReport) -> frozenset[str]:
    """The notable events this report holds that `on` asks about: "start" (a task started), "end"."""
    on = wanted(report)
    events = set()
    if report.started and on & {"start", "always"}:
        events.add("start")
    if report.ended and ("always" in on or outcome(report) in on):
        events.add("end")
    return frozenset(events)


def failed_tasks(report: JobReport) -> list[str]:
    """Failed tasks with a log tail, in the job's task order: each gets one thread reply."""
    states = {row.name: row.state for row in report.tasks}
    order = {name: i for i, name in enumerate(states)}
    names = [n for n in report.failed_logs if states.get(n, "failed") == "failed"]
    return sorted(names, key=lambda n: order.get(n, len(order)))


def digest(body: Mapping) -> str:
    """A short fingerprint of what a message shows, so an unchanged report is not sent again."""
    shown = json.dumps({"text": body.get("text"), "blocks": body.get("blocks")}, sort_keys=True)
    return hashlib.sha256(shown.encode()).hexdigest()[:16]


# ---------------------------------------------------------------- the reporter (I/O)


class SlackReporter:
    """Slack messages for the jobs whose pipeline sets `notify.slack`."""

    name = "slack"
    min_interval = 1.0  # Slack allows about one message per second per channel

    def __init__(
        self,
        config: SlackReporterConfig,
        *,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self._config = config
        self._clock = clock
        self._own_client = client is None
        self._client = client or httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=10.0))
        if config.webhook_url:  # httpx logs each request's URL at INFO, and this URL is a secret
            _mask_in_httpx_log(config.webhook_url)

    def channel(self, report: JobReport) -> str | None:
        """The channel a bot posts to: the pipeline's, else the daemon's default."""
        slack = report.notify.get("slack") or {}
        return slack.get("channel") or self._config.default_channel

    def mode(self, report: JobReport) -> str | None:
        """ "bot" (a token and a channel), "webhook" (a webhook URL: its channel is fixed), or None."""
        if report.notify.get("slack") is None:
            return None
        if self._config.bot_token and self.channel(report):
            return "bot"
        return "webhook" if self._config.webhook_url else None

    def wants(self, report: JobReport) -> bool:
        """The pipeline asks for Slack and the daemon can reach a channel for it."""
        return self.mode(report) is not None

    async def send(self, report: JobReport, state: Mapping) -> dict:
        """Make Slack show the report; the new state. A send that fails half-way says how far it got."""
        progress = copy.deepcopy(dict(state))
        try:
            if self.mode(report) == "bot":
                await self._send_bot(report, progress)
            elif self.mode(report) == "webhook":
                await self._send_webhook(report, progress)
        except (RetryLater, GiveUp) as e:
            e.state = progress  # the deliverer keeps it: the retry goes on from here, never posts twice
            raise
        return progress

    async def aclose(self) -> None:
        if self._own_client:
            await self._client.aclose()

    # ------------------------------------------------ bot token: one message, updated, with thread replies

    async def _send_bot(self, report: JobReport, progress: dict) -> None:
        """Post (when due) or update the message, then the thread replies it owes."""
        due = due_events(report)
        if "ts" not in progress:
            if not due:
                return
            await self._post_message(report, progress)
            progress["events"] = sorted(due)  # the new message shows these events itself
        else:
            await self._update_message(report, progress)
        await self._reply_failures(report, progress)
        if "end" in due and "end" not in progress.get("events", ()):
            reply = {**self._thread(progress), **slack_blocks.end_reply(report)}
            await self._post(report, "chat.postMessage", reply)
            progress["events"] = sorted({*progress.get("events", ()), "end"})

    @staticmethod
    def _message(report: JobReport) -> dict:
        """The message's content: the blocks and the notification text Slack wants beside them."""
        return {
            "text": slack_blocks.fallback_text(report),
            "blocks": slack_blocks.blocks(report, link=link_for(report)),
        }

    @staticmethod
    def _thread(progress: Mapping) -> dict:
        return {"channel": progress["channel"], "thread_ts": progress["ts"]}

    async def _post_message(self, report: JobReport, progress: dict) -> None:
        """A new message for the job; its channel id and ts are what later updates and replies need."""
        body = {"channel": self.channel(report), **self._message(report), "unfurl_links": False, "unfurl_media": False}
        answer = await self._post(report, "chat.postMessage", body)
        if not answer.get("ts") or not answer.get("channel"):
            raise RetryLater("Slack accepted the message but did not say where it is (no ts or channel)")
        progress.update(channel=answer["channel"], ts=answer["ts"], digest=digest(body), replied=[])
        log.info("slack: posted job %s to %s", report.job_id, self.channel(report))

    async def _update_message(self, report: JobReport, progress: dict) -> None:
        """chat.update when what the message shows changed; a message someone deleted is posted anew."""
        body = {"channel": progress["channel"], "ts": progress["ts"], **self._message(report)}
        if progress.get("digest") == digest(body):
            return
        answer = await self._post(report, "chat.update", body, tolerate=frozenset({"message_not_found"}))
        if answer.get("error") == "message_not_found":
            log.info("slack: the message of job %s was deleted; posting it again", report.job_id)
            await self._post_message(report, progress)  # a new thread: its replies are owed again
            return
        progress["digest"] = digest(body)

    async def _reply_failures(self, report: JobReport, progress: dict) -> None:
        """One thread reply per failed task, with the end of its log; `replied` remembers which."""
        replied = progress.setdefault("replied", [])
        for task in failed_tasks(report):
            if task in replied:
                continue
            reply = slack_blocks.log_reply(report, task, report.failed_logs[task])
            await self._post(report, "chat.postMessage", {**self._thread(progress), **reply})
            replied.append(task)

    async def _post(self, report: JobReport, method: str, body: dict, *, tolerate: frozenset = frozenset()) -> dict:
        """One Web API call; Slack's answer when ok (or its error is in `tolerate`), else RetryLater or GiveUp."""
        url = f"{self._config.api_url.rstrip('/')}/{method}"
        headers = {
            "Authorization": f"Bearer {self._config.bot_token}",
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": f"fasttrack-gitops/{__version__}",
        }
        response = await self._request(url, body, headers, what=f"Slack {method}")
        if response.status_code == 429:
            raise RetryLater(f"Slack {method}: rate limited", after=retry_after(response.headers, self._clock()))
        if response.status_code >= 500 or response.status_code == 408:
            raise RetryLater(f"Slack {method} answered HTTP {response.status_code}")
        if response.status_code != 200:
            raise GiveUp(
                f"Slack {method} answered HTTP {response.status_code}: is slack.api_url "
                f"({self._config.api_url}) Slack's Web API?"
            )
        answer = _json(response)
        if answer.get("ok") is True or answer.get("error") in tolerate:
            return answer
        raise self._refusal(report, method, str(answer.get("error") or "no error given"), response)

    def _refusal(self, report: JobReport, method: str, error: str, response: httpx.Response) -> Exception:
        """Slack's `ok: false` as the exception the deliverer understands: what is wrong, with which channel,
        and what to do."""
        channel = self.channel(report)
        if error == "ratelimited":
            return RetryLater(
                f"Slack {method} to {channel}: rate limited", after=retry_after(response.headers, self._clock())
            )
        if error in TRANSIENT:
            return RetryLater(f"Slack {method} to {channel}: {error}")
        advice = GIVE_UP_ADVICE.get(error, "Slack refused the message; see its documentation of this error")
        return GiveUp(
            f"Slack cannot post to {channel} ({method}: {error}): "
            + advice.format(channel=channel, where=report.pipeline_path or "the pipeline file")
        )

    async def _request(self, url: str, body: dict, headers: dict, *, what: str) -> httpx.Response:
        """POST a JSON body; a network failure becomes RetryLater, named without the URL (it may be a secret)."""
        try:
            return await self._client.post(url, content=json.dumps(body).encode(), headers=headers)
        except (httpx.UnsupportedProtocol, httpx.InvalidURL):
            raise GiveUp(f"{what}: the configured URL is not a usable http(s) URL") from None
        except httpx.TransportError as e:
            raise RetryLater(f"{what}: no answer ({type(e).__name__})") from None

    # ------------------------------------------------ incoming webhook: one message per event, never twice

    async def _send_webhook(self, report: JobReport, progress: dict) -> None:
        """Post one message when an event is due that was not posted; a job that ended before its start was
        posted gets only its end message (it says both)."""
        posted = set(progress.get("events", ()))
        due = due_events(report)
        if not due - posted:
            return
        body = self._message(report)
        if "end" in due:
            room = slack_blocks.MAX_BLOCKS - len(body["blocks"])
            body["blocks"] = body["blocks"] + self._log_blocks(report, room=room)
        await self._post_webhook(body)
        progress["events"] = sorted(posted | due)

    @staticmethod
    def _log_blocks(report: JobReport, *, room: int) -> list[dict]:
        """The failed tasks' log tails for a webhook's end message (there is no thread to reply in)."""
        found: list[dict] = []
        for task in failed_tasks(report)[:MAX_WEBHOOK_LOGS]:
            more = slack_blocks.log_blocks(report, task, report.failed_logs[task])
            if len(found) + len(more) > room:
                break
            found += more
        return found

    async def _post_webhook(self, body: dict) -> None:
        """POST the incoming webhook; it answers "ok", or a word (text, not JSON) with a 4xx."""
        headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": f"fasttrack-gitops/{__version__}"}
        assert self._config.webhook_url is not None  # the "webhook" mode is the one with a webhook URL
        response = await self._request(self._config.webhook_url, body, headers, what="Slack incoming webhook")
        code = response.status_code
        if code == 200:
            return
        error = " ".join(response.text.split())[:100] or f"HTTP {code}"
        if code == 429:
            raise RetryLater("Slack incoming webhook: rate limited", after=retry_after(response.headers, self._clock()))
        if code >= 500 or code == 408:
            raise RetryLater(f"Slack incoming webhook answered HTTP {code}")
        if code == 400:
            raise GiveUp(f"Slack incoming webhook refused the message ({error}); this is a bug in fasttrack-gitops")
        raise GiveUp(f"Slack incoming webhook refused the message (HTTP {code}, {error}): {_WEBHOOK_ADVICE}")


def _mask_in_httpx_log(secret: str) -> None:
    """Mask `secret` in httpx's own log records, once per process (a filter is never removed: another
    reporter may use the same URL)."""
    logger, masking = logging.getLogger("httpx"), MaskingFilter([secret])
    if masking not in logger.filters:
        logger.addFilter(masking)


def _json(response: httpx.Response) -> dict:
    try:
        data = response.json()
    except ValueError:
        raise RetryLater(f"Slack answered HTTP {response.status_code} with a body that is not JSON") from None
    if not isinstance(data, dict):
        raise RetryLater("Slack answered with JSON that is not an object")
    return data
