"""Sign-in rate limiting, per username and per address, counted in the database.

After `attempts` failed sign-ins within `window` seconds for one username, or `per_address` from
one address, further attempts are refused with 429 and Retry-After until the window has passed;
a success clears the username's failures. The failures are rows (SignInFailure), so every worker
process of the server counts the same ones and a restart forgets none.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from backend.auth.models import SignInFailure
from backend.errors import AppError
from backend.timeutil import utcnow


class TooManyAttemptsError(AppError):
    status_code = 429


def _user_key(username: str) -> str:
    return f"u:{username.lower()}"


@dataclass(frozen=True)
class LoginLimiter:
    attempts: int = 5
    window: float = 900.0  # seconds
    per_address: int = 30

    def check(self, session: Session, username: str, address: str) -> None:
        """Raise TooManyAttemptsError while either key is over its limit."""
        now = utcnow()
        limits = {_user_key(username): self.attempts, f"a:{address}": self.per_address}
        counts = session.execute(
            select(SignInFailure.key, func.count(), func.min(SignInFailure.at))
            .where(
                SignInFailure.key.in_(limits),
                SignInFailure.at > now - timedelta(seconds=self.window),
            )
            .group_by(SignInFailure.key)
        ).all()
        for key, n, oldest in counts:
            if n >= limits[key]:
                wait = int((oldest - now).total_seconds() + self.window) + 1
                raise TooManyAttemptsError(
                    f"too many failed sign-ins; try again in {wait} s",
                    detail={"retry_after": wait},
                )

    def failed(self, session: Session, username: str, address: str) -> None:
        """Count a failure for both keys, and forget failures older than the window."""
        now = utcnow()
        session.execute(
            delete(SignInFailure).where(SignInFailure.at <= now - timedelta(seconds=self.window))
        )
        session.add_all(
            [
                SignInFailure(key=_user_key(username), at=now),
                SignInFailure(key=f"a:{address}", at=now),
            ]
        )
        session.flush()

    def succeeded(self, session: Session, username: str) -> None:
        session.execute(delete(SignInFailure).where(SignInFailure.key == _user_key(username)))
