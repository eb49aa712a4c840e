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
- `session_spec`: what a batch session is asked to be (`SessionSpec`,
  deterministic names, the create body with only the fields the server's
  version accepts).
- `sessions`: batch compute sessions on the manager (create, info, logs,
  destroy) and `graphql` for a terminated session's result and exit code.
- `events`: the session event stream (`GET /events/session`, server-sent
  events) with an incremental parser; a dropped stream raises StreamDropped.
- `vfolders` and `tus`: virtual folders (create, list, mkdir, upload and
  download through the storage proxy, resumable).
- `resources`: what each scaling group has free and the keypair's limits
  (`/resource/check-presets`), so that only sessions that fit are asked for.

Still to come (the rest of issue 4): the `backendai` executor built on these,
`fasttrack-gitops doctor`, and the end-to-end lane on the real stack.
"""
