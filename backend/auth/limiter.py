"""Sign-in rate limiting, per username and per address, counted in the database.

After `attempts` failed sign-ins within `window` seconds for one username, or `per_address` from
one address, further attempts are refused with 429 and Retry-After until the window has passed;
a success clears the username's failures. The failures are rows (SignInFailure), so every worker
process of the server counts the same ones and a restart forgets none.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import Session

from backend.auth import repository
from backend.errors import AppError
from backend.timeutil import utcnow


class TooManyAttemptsError(AppError):
    status_code = 429


def _user_key(username: str) -> str:
    return f"u:{username.lower()}"


def _address_key(address: str) -> str:
    return f"a:{address}"


@dataclass(frozen=True)
class LoginLimiter:
    attempts: int = 5
    window: float = 900.0  # seconds
    per_address: int = 30

    def check(self, session: Session, username: str, address: str) -> None:
        """Raise TooManyAttemptsError while either key is over its limit."""
        now = utcnow()
        limits = {_user_key(username): self.attempts, _address_key(address): self.per_address}
        since = now - timedelta(seconds=self.window)
        for row in repository.recent_failures(session, limits, since):
            if row.failures >= limits[row.key]:
                wait = int((row.oldest - now).total_seconds() + self.window) + 1
                raise TooManyAttemptsError(
                    f"too many failed sign-ins; try again in {wait} s",
                    detail={"retry_after": wait},
                )

    def failed(self, session: Session, username: str, address: str) -> None:
        """Count a failure for both keys, and forget failures older than the window."""
        now = utcnow()
        repository.forget_failures_before(session, now - timedelta(seconds=self.window))
        repository.add_failures(session, (_user_key(username), _address_key(address)), now)

    def succeeded(self, session: Session, username: str) -> None:
        repository.clear_failures(session, _user_key(username))
