"""The faults the chaos campaign injects, on a schedule drawn from its seeded random generator.

Every kind happens at least once in any campaign (so the 10-commit variant
covers them all), more of them in longer ones (one extra per 10 commits,
kind drawn at random). The daemon is stopped two ways: `kill -9`, and
SIGTERM (it drains: running jobs get shutdown_grace, the rest are
interrupted); a stop due while it is down brings it back first. GitHub's 502
comes in two kinds: before it did anything, and after it did what was asked
(a gateway timing out on a slow backend: the check run exists, the answer
says otherwise). Each is bounded: the daemon stays down 1-3 commits, the
manager 1-4 s, GitHub's and Slack's outages 2-8 s. Faults overlap when their
windows do (a daemon killed while the manager restarts and GitHub answers
502): that is the point.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

from engine.reporters.contract_server import Answer

KINDS = ("kill9", "term", "manager", "github", "slack", "stream")
CHECK_RUNS = r"/repos/[^/]+/[^/]+/check-runs(/\d+)?"
SLACK = r"/api/chat\.(postMessage|update)"
SLACK_HOLD = 35.0  # seconds a Slack answer is held in an outage: past the reporter's 30 s timeout


class Faults:
    def __init__(
        self, world, rng: random.Random, say: Callable[[str], None], commits: int, kinds: tuple[str, ...] = KINDS
    ):
        self.world, self.rng, self.say = world, rng, say
        chosen = kinds
        kinds = list(chosen) + [rng.choice(chosen) for _ in range(commits // 10)]
        rounds = sorted(rng.sample(range(1, commits + 1), min(len(kinds), commits)))
        rng.shuffle(kinds)
        self.schedule: dict[int, list[str]] = {}
        for index, kind in enumerate(kinds):
            self.schedule.setdefault(rounds[index % len(rounds)], []).append(kind)
        self.injected: dict[str, int] = dict.fromkeys(chosen, 0)
        self.daemon_back_at: int | None = None  # the round before which a killed daemon is started again
        self.round = 0
        self._manager_thread: threading.Thread | None = None

    def maybe(self, round_: int) -> None:
        """Before the commit of `round_`: bring the daemon back when its time came, then this round's faults."""
        self.round = round_
        if self.daemon_back_at is not None and round_ >= self.daemon_back_at:
            self._start_daemon()
        for kind in self.schedule.get(round_, ()):
            getattr(self, "_" + kind)()

    def lift_all(self) -> None:
        """After the last commit: the manager serves and the daemon runs (outages end by themselves)."""
        if self._manager_thread is not None:
            self._manager_thread.join()
        if self.daemon_back_at is not None:
            self._start_daemon()

    # -- each kind ---------------------------------------------------------------------------------
    def _kill9(self) -> None:
        if self.daemon_back_at is not None:
            self._start_daemon()  # down already: up for a moment, then down again
        self.world.daemon.kill9()
        rounds = self.rng.randint(1, 3)
        self.say(f"kill -9 of the daemon; it stays down for {rounds} commit(s)")
        self.injected["kill9"] += 1
        self.daemon_back_at = self.round + rounds

    def _term(self) -> None:
        """A graceful stop (SIGTERM: webhooks 503, running jobs get shutdown_grace, the rest are interrupted)."""
        if self.daemon_back_at is not None:
            self._start_daemon()
        code = self.world.daemon.terminate(timeout=60)
        rounds = self.rng.randint(1, 3)
        self.say(f"SIGTERM to the daemon (it exited with {code}); it stays down for {rounds} commit(s)")
        self.injected["term"] += 1
        self.daemon_back_at = self.round + rounds

    def _start_daemon(self) -> None:
        self.daemon_back_at = None
        self.world.daemon.start()
        self.say(f"the daemon is back (start {self.world.daemon.starts})")

    def _manager(self) -> None:
        if self._manager_thread is not None and self._manager_thread.is_alive():
            return  # restarting already
        down = self.rng.uniform(1, 4)
        self.say(f"the manager stops (port closed, connections cut) for {down:.1f}s")
        self.injected["manager"] += 1
        self.world.cluster.stop_serving()
        self._manager_thread = threading.Thread(target=self._manager_back, args=(down,), daemon=True)
        self._manager_thread.start()

    def _manager_back(self, down: float) -> None:
        time.sleep(down)
        self.world.cluster.start_serving()
        self.say("the manager is back")

    def _stream(self) -> None:
        after = self.rng.randint(0, 3)
        cut = self.world.cluster.cut_streams(after)
        self.say(f"the manager's event streams were cut ({cut} open); the next one drops after {after} events")
        self.injected["stream"] += 1

    def _github(self) -> None:
        seconds = self.rng.uniform(2, 8)
        # The first is the nastiest kind, so that every campaign (the 10-commit one too) has it; then any.
        kind = self.rng.choice(("502", "502 after", "429")) if self.injected["github"] else "502 after"
        handled = kind == "502 after"  # the gateway timed out after GitHub did the work: only the answer is lost
        if kind != "429":
            answer = Answer(502, b"<html><body><h1>502 Bad Gateway</h1></body></html>", {"Content-Type": "text/html"})
            what = "502 after doing what was asked" if handled else "502"
        else:
            wait = self.rng.randint(1, 3)
            answer = Answer(
                429,
                {
                    "message": "You have exceeded a secondary rate limit.",
                    "documentation_url": "https://docs.github.com",
                },
                {"Retry-After": str(wait)},
            )
            what = f"429 with Retry-After: {wait}"
        for method in ("POST", "PATCH"):
            self.world.github.server.fail_for(method, CHECK_RUNS, answer, seconds=seconds, handled=handled)
        self.say(f"GitHub answers {what} to check runs for {seconds:.1f}s")
        self.injected["github"] += 1

    def _slack(self) -> None:
        seconds = self.rng.uniform(2, 8)
        held = Answer(200, {"ok": False, "error": "request_timeout"}, delay=SLACK_HOLD)
        self.world.slack.server.fail_for("POST", SLACK, held, seconds=seconds)
        self.say(f"Slack holds its answers {SLACK_HOLD:g}s (past the client's timeout) for {seconds:.1f}s")
        self.injected["slack"] += 1
