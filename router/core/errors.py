"""Herald's one error tree.

    HeraldError                      code, message, fields; never shown as a class name
    ├── InputError                   the caller sent something wrong: fixing the input helps
    │   ├── ValidationFailed         422, lists every problem with its field path
    │   ├── RuleFileError            a rule file is broken (file:line:col per problem)
    │   ├── BatchOverBurst           413: a batch the publish rate can never admit: split it
    │   └── ConfigError              config.yaml / environment is wrong (refused at start-up)
    │       ├── OutboundConfigError      a configured URL points where Herald may not send
    │       └── ChannelOff               a channel is not configured at all: it stays off
    ├── AuthError                    401: no, wrong, expired or revoked credential
    │   └── Forbidden                403: a valid credential of a kind that may not do this
    ├── NotFound                     404: unknown id, or another tenant's id
    ├── Conflict                     409: the request clashes with stored state
    ├── RateLimited                  429: slow down, retry_after seconds
    └── Unavailable                  503: a backing service is down; retrying later helps

Each error carries a stable ``code`` (``rule.syntax``, ``token.expired``) that
clients can branch on; the API renders all of them through one handler.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input, located by path or by file position."""

    message: str
    path: str = ""
    file: str = ""
    line: int = 0
    column: int = 0

    def located(self) -> str:
        if self.file:
            return f"{self.file}:{self.line}:{self.column}: {self.message}"
        return f"{self.path}: {self.message}" if self.path else self.message

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"message": self.message}
        if self.path:
            data["path"] = self.path
        if self.file:
            data.update(file=self.file, line=self.line, column=self.column)
        return data


class HeraldError(Exception):
    status = 500
    code = "herald.error"

    def __init__(self, message: str, *, code: str | None = None, **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.fields = fields

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        body.update({k: v for k, v in self.fields.items() if v is not None})
        return body


class InputError(HeraldError):
    status = 400
    code = "input.invalid"


class ValidationFailed(InputError):
    status = 422
    code = "input.invalid"

    def __init__(self, problems: list[Problem], message: str = "") -> None:
        self.problems = problems
        text = message or "; ".join(p.located() for p in problems)
        super().__init__(text, problems=[p.as_dict() for p in problems])


class RuleFileError(InputError):
    code = "rule.invalid"

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__(
            "\n".join(p.located() for p in problems), problems=[p.as_dict() for p in problems]
        )


class BatchOverBurst(InputError):
    status = 413
    code = "batch_over_burst"

    def __init__(self, events: int, burst: int) -> None:
        super().__init__(
            f"the batch holds {events} events, more than this tenant's publish burst of {burst}; "
            f"no wait makes it fit: split it into batches of at most {burst}",
            events=events, burst=burst)


class ConfigError(InputError):
    code = "config.invalid"


class OutboundConfigError(ConfigError):
    """A configured URL the outbound policy refuses: fatal at start-up (a security setting)."""

    code = "config.outbound_refused"


class ChannelOff(ConfigError):
    """A channel left unconfigured (no SMTP host, no VAPID keys): the worker starts and
    logs it; deliveries on it fail saying how to turn it on. A channel configured wrongly
    raises plain ConfigError instead, which stops the start-up."""

    code = "config.channel_off"


class AuthError(HeraldError):
    status = 401
    code = "auth.required"


class Forbidden(AuthError):
    status = 403  # signing in again does not help: another kind of credential would
    code = "auth.forbidden"


class NotFound(HeraldError):
    status = 404
    code = "not_found"


class Conflict(HeraldError):
    status = 409
    code = "conflict"


class RateLimited(HeraldError):
    status = 429
    code = "rate_limited"

    def __init__(self, retry_after: float) -> None:
        super().__init__(
            f"too many requests; retry after {retry_after:.0f}s", retry_after=retry_after
        )
        self.retry_after = retry_after


class Unavailable(HeraldError):
    status = 503
    code = "unavailable"
