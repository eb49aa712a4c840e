"""Who the GitHub reporter is, and what GitHub's refusals mean for a send.

Two ways to be someone on GitHub, behind one small interface
(`token(installation_id=, repository=)`, `invalidate(token)`, `renewable`):

- `AppAuth`, a GitHub App: a JWT signed with the App's private key (valid
  ten minutes at most, so it is made fresh for each exchange) buys an
  installation token valid one hour. The token is cached until five minutes
  before it expires, so a job's many updates cost one exchange, and a 401
  drops it (revoked, or the machine's clock jumped) so the next call buys a
  new one. The installation comes from the webhook that made the job, or is
  looked up once per repository.
- `TokenAuth`, a plain token (a PAT, or Actions' GITHUB_TOKEN): nothing to
  renew; a 401 is final.

`refusal()` turns a non-2xx answer into the deliverer's terms: RetryLater
(rate limits with GitHub's own advice, 5xx) or GiveUp. No message here ever
holds a token, a JWT or the key: only statuses and GitHub's own words.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone

import httpx
import jwt

from fasttrack_gitops import __version__
from fasttrack_gitops.core.reports.model import GiveUp, RetryLater, retry_after

API_VERSION = "2022-11-28"
JWT_BACKDATE = 60  # seconds: GitHub's advice, against a clock that runs a little ahead of GitHub's
JWT_LIFETIME = 9 * 60  # GitHub refuses more than 10 minutes; keep a margin
REFRESH_MARGIN = 5 * 60  # a cached installation token is renewed this long before it expires
TOKEN_LIFETIME = 3600.0  # what GitHub gives; assumed when an answer has no readable expires_at

Clock = Callable[[], float]


def api_headers(token: str) -> dict[str, str]:
    """The headers of every API request: GitHub's recommended media type and a pinned API version."""
    return {
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": API_VERSION,
        "Authorization": f"Bearer {token}",
        "User-Agent": f"fasttrack-gitops/{__version__}",
    }


class TokenAuth:
    """A configured token: the same for every repository, and nothing can renew it."""

    renewable = False

    def __init__(self, token: str):
        self._token = token

    def __repr__(self) -> str:
        return "TokenAuth(<token>)"

    async def token(self, *, installation_id: int | None, repository: str) -> str:
        return self._token

    def invalidate(self, token: str) -> None:
        """Nothing to drop: the reporter gives up at once, since asking again would send the same token."""


class AppAuth:
    """A GitHub App's installation tokens, cached per installation; installations cached per repository."""

    renewable = True

    def __init__(
        self, app_id: int, private_key: str, client: httpx.AsyncClient, api_url: str, *, clock: Clock = time.time
    ):
        self.app_id = app_id
        self._private_key = private_key
        self._client = client
        self._api = api_url.rstrip("/")
        self._clock = clock
        self._installations: dict[str, int] = {}  # repository (case-folded) -> installation id
        self._tokens: dict[int, tuple[str, float]] = {}  # installation id -> (token, expires at, epoch)
        self._lock = asyncio.Lock()  # two jobs reporting at once must not buy two tokens

    def __repr__(self) -> str:
        return f"AppAuth(app_id={self.app_id})"

    async def token(self, *, installation_id: int | None, repository: str) -> str:
        """A token that may act on `repository`: the cached one while it has 5 minutes left, else a new one."""
        async with self._lock:
            key = repository.casefold()
            installation = installation_id or self._installations.get(key) or await self._lookup(repository)
            self._installations[key] = installation
            cached = self._tokens.get(installation)
            if cached and self._clock() < cached[1] - REFRESH_MARGIN:
                return cached[0]
            token, expires_at = await self._exchange(installation, repository)
            self._tokens[installation] = (token, expires_at)
            return token

    def invalidate(self, token: str) -> None:
        """GitHub refused `token` (401): forget it, so the next token() buys another."""
        self._tokens = {i: cached for i, cached in self._tokens.items() if cached[0] != token}

    def app_jwt(self) -> str:
        """The App's own credential (RS256), good for a few minutes: issued at now-60 s, expires at now+9 min."""
        now = int(self._clock())
        claims = {"iat": now - JWT_BACKDATE, "exp": now + JWT_LIFETIME, "iss": str(self.app_id)}
        try:
            return jwt.encode(claims, self._private_key, algorithm="RS256")
        except (jwt.PyJWTError, ValueError, TypeError):  # no PEM RSA key; its error is not shown, lest it quote the key
            raise GiveUp(
                "github: the App's private key cannot sign a JWT (it must be the PEM file GitHub generated for the App)"
            ) from None

    async def _lookup(self, repository: str) -> int:
        """The installation of this App on `repository` (when no webhook told us): GET /repos/{repo}/installation."""
        doing = f"looking up the GitHub App's installation on {repository}"
        response = await self._as_app("GET", f"/repos/{repository}/installation", doing)
        if response.status_code == 404:
            raise GiveUp(
                f"the GitHub App {self.app_id} is not installed on {repository} (or cannot see it): "
                "install it on the repository"
            )
        installation = _json(response).get("id")
        if not response.is_success or not isinstance(installation, int):
            raise refusal(response, doing, now=self._clock())
        return installation

    async def _exchange(self, installation: int, repository: str) -> tuple[str, float]:
        """A new installation token and when it expires: POST /app/installations/{id}/access_tokens."""
        doing = f"getting a token for the GitHub App's installation {installation}"
        response = await self._as_app("POST", f"/app/installations/{installation}/access_tokens", doing, body={})
        if response.status_code == 404:  # uninstalled (and maybe installed again, with a new id)
            self._installations.pop(repository.casefold(), None)
            raise GiveUp(
                f"the GitHub App {self.app_id} has no installation {installation} any more: "
                f"is it still installed on {repository}?"
            )
        answer = _json(response)
        if not response.is_success or not isinstance(answer.get("token"), str):
            raise refusal(response, doing, now=self._clock())
        return answer["token"], _epoch(answer.get("expires_at")) or self._clock() + TOKEN_LIFETIME

    async def _as_app(self, method: str, path: str, doing: str, *, body: dict | None = None) -> httpx.Response:
        """One request authenticated as the App itself; a refused JWT is a configuration error, not a retry."""
        try:
            response = await self._client.request(
                method, self._api + path, json=body, headers=api_headers(self.app_jwt())
            )
        except httpx.RequestError as e:
            raise RetryLater(f"GitHub did not answer while {doing}: {type(e).__name__}") from e
        if response.status_code == 401:
            raise GiveUp(
                f"GitHub refused the App's JWT (401) while {doing}: check github.app_id, the private "
                "key, and this machine's clock"
            )
        return response


# ---------------------------------------------------------------- what an answer means


def refusal(response: httpx.Response, doing: str, *, now: float) -> RetryLater | GiveUp:
    """The exception a non-2xx answer means: wait (rate limit, 5xx) or stop (anything else is ours to fix)."""
    status = response.status_code
    if rate_limited(response):
        return RetryLater(f"GitHub's rate limit ({status}) while {doing}", after=rate_limit_wait(response, now))
    if status >= 500:
        return RetryLater(f"GitHub answered {status} while {doing}")
    if status == 401:
        return GiveUp(
            f"the GitHub token was refused (401) while {doing}: check github.token_env/token_file, "
            "or the App's installation"
        )
    if status == 422:  # a body GitHub finds invalid: a bug of ours, so its words are what to report
        return GiveUp(f"GitHub refused the request while {doing} (422): {github_message(response)}")
    return GiveUp(f"GitHub answered {status} while {doing}: {github_message(response)}")


def rate_limited(response: httpx.Response) -> bool:
    """429, or a 403 that is a primary (no requests left) or secondary (Retry-After, "rate limit") limit."""
    if response.status_code == 429:
        return True
    if response.status_code != 403:
        return False
    headers = response.headers
    return (
        headers.get("x-ratelimit-remaining") == "0"
        or "retry-after" in headers
        or "rate limit" in github_message(response).lower()
    )


def rate_limit_wait(response: httpx.Response, now: float) -> float | None:
    """GitHub's advice in seconds: Retry-After, else until X-RateLimit-Reset when none are left; else None."""
    exhausted = response.headers.get("x-ratelimit-remaining") == "0"  # with requests left, the reset asks no wait
    return retry_after(response.headers, now, reset="x-ratelimit-reset" if exhausted else None)


def github_message(response: httpx.Response, limit: int = 500) -> str:
    """GitHub's explanation: `message` and, for a 422, what each error names; the reason phrase when none."""
    answer = _json(response)
    parts = [str(answer.get("message") or response.reason_phrase or "no message")]
    for error in answer.get("errors") or []:
        if isinstance(error, Mapping):
            parts.append(
                str(
                    error.get("message")
                    or " ".join(str(error[k]) for k in ("resource", "field", "code") if error.get(k))
                )
            )
        else:
            parts.append(str(error))
    text = "; ".join(p for p in parts if p)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def installation_of(trigger: Mapping) -> int | None:
    """The App installation a job's trigger record names: an id, or the webhook's {"id": ...}; else None."""
    value = trigger.get("installation")
    if isinstance(value, Mapping):
        value = value.get("id")
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _json(response: httpx.Response) -> dict:
    try:
        answer = response.json()
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}


def _epoch(stamp: object) -> float | None:
    """An ISO 8601 time as GitHub writes it ("2016-07-11T22:14:10Z") in epoch seconds; None if unreadable."""
    if not isinstance(stamp, str):
        return None
    try:
        when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))  # Python 3.10 does not read "Z"
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp()
