"""The Backend.AI layer: a small async client for the manager's REST API, on httpx.

Layers, httpx's way (each module answers one question):

- `credentials`: where the endpoint and keypair come from (`BACKEND_ENDPOINT`,
  `BACKEND_ACCESS_KEY`, `BACKEND_SECRET_KEY`), and a `Secret` that never
  shows itself in a repr, a log or an error.
- `auth`: `KeypairAuth`, an `httpx.Auth` that signs each request exactly as the
  manager verifies it (HMAC-SHA256 over the seven-line string to sign).
- `versions`: which API version to send, from the manager's `GET /` answer.
- `retry`: the backoff policy (exponential, jittered; rate-limit waits).
- `errors`: the problem+json answers turned into exceptions with one-line
  messages a person understands.
- `client`: `Client`, which ties them together: negotiation, signed requests,
  timeouts, retries, error mapping, a per-endpoint call counter.

Still to come (the later parts of issue 4): compute sessions (create a batch
session, info, logs, destroy, GraphQL `compute_session` for the result), the
session event stream (`GET /events/session`), vfolders (create, list, mkdir,
tus upload through the storage proxy, download), and the `backendai`
executor built on them.
"""
