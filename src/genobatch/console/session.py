"""Console sign-in: who may read the console, and the sessions that prove it.

Two ways in, both needing the server's credentials:

* the login form: an access key id and its secret, checked against the same key store SigV4
  requests are verified with (a constant-time comparison of the secret);
* a one-time login URL from ``genobatch console``: the CLI asks for a token with a SigV4-signed
  request, the token is good for :data:`LOGIN_TOKEN_TTL_S` and for one use.

Either way the browser gets a session cookie: 32 random bytes (``secrets``), HttpOnly and
SameSite=Strict, expiring after :data:`SESSION_TTL_S`. Each session has its own CSRF token, which
every state-changing form must echo. Sessions live in the server's memory: a restart signs
everyone out, which is the safe direction. Pure bookkeeping with an injected clock, so the
expiry rules are testable without waiting.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

COOKIE_NAME = "genobatch_console"
SESSION_TTL_S = 12 * 3600
LOGIN_TOKEN_TTL_S = 120
#: Bounds memory if someone scripts logins: the oldest sessions are dropped first.
MAX_SESSIONS = 1000


@dataclass(frozen=True)
class Session:
    """A signed-in browser: which key signed in, its CSRF token, and when it expires (epoch s)."""

    access_key_id: str
    csrf_token: str
    expires_at: float

    def csrf_matches(self, token: str | None) -> bool:
        """Whether a form's CSRF token is this session's (constant-time)."""
        return bool(token) and hmac.compare_digest(self.csrf_token, token or "")


class LoginRefused(Exception):
    """A login that must not succeed; the message is safe to show (it never says which part was wrong)."""


class Sessions:
    """Session cookies and one-time login tokens for one server process."""

    def __init__(self, secret_for: Callable[[str], str | None] | None, clock: Callable[[], float] = time.time) -> None:
        self.secret_for = secret_for
        self.clock = clock
        self._sessions: dict[str, Session] = {}
        self._login_tokens: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()
        # With --no-auth there is one anonymous session; its CSRF token still guards actions.
        self.anonymous = Session("anonymous", secrets.token_urlsafe(32), float("inf")) if secret_for is None else None

    @property
    def auth(self) -> bool:
        """Whether signing in is required (False under ``--no-auth``)."""
        return self.secret_for is not None

    def login(self, access_key_id: str, secret_access_key: str) -> str:
        """A new session id for a correct key pair; :class:`LoginRefused` otherwise."""
        if self.secret_for is None:
            raise LoginRefused("authentication is off on this server: no sign-in needed")
        access_key_id, secret_access_key = access_key_id.strip(), secret_access_key.strip()
        if not access_key_id or not secret_access_key:
            raise LoginRefused("Enter both the access key id and the secret access key.")
        known = self.secret_for(access_key_id)
        # Compare against a dummy when the key is unknown so that timing does not tell which was wrong.
        expected = known if known is not None else secrets.token_urlsafe(30)
        if not hmac.compare_digest(expected.encode(), secret_access_key.encode()) or known is None:
            raise LoginRefused("The access key id or the secret access key is wrong.")
        return self._open(access_key_id)

    def create_login_token(self, access_key_id: str) -> tuple[str, float]:
        """A one-time login token for a caller already authenticated as ``access_key_id``; (token, expiry)."""
        token = secrets.token_urlsafe(32)
        expires = self.clock() + LOGIN_TOKEN_TTL_S
        with self._lock:
            self._drop_expired()
            self._login_tokens[token] = (access_key_id, expires)
        return token, expires

    def redeem(self, token: str) -> str:
        """Exchange a one-time login token for a new session id; :class:`LoginRefused` if unknown,
        used or expired."""
        with self._lock:
            entry = self._login_tokens.pop(token, None)
        if entry is None or entry[1] < self.clock():
            raise LoginRefused(
                "This login link is not valid: it was used already or has expired. "
                "Run `genobatch console` again for a new one."
            )
        return self._open(entry[0])

    def get(self, session_id: str | None) -> Session | None:
        """The live session with this id (the anonymous one under ``--no-auth``), or None."""
        if self.anonymous is not None:
            return self.anonymous
        if not session_id:
            return None
        with self._lock:
            session = self._sessions.get(session_id)
            if session is not None and session.expires_at < self.clock():
                del self._sessions[session_id]
                return None
        return session

    def logout(self, session_id: str | None) -> None:
        """End a session (unknown ids are ignored)."""
        if session_id:
            with self._lock:
                self._sessions.pop(session_id, None)

    def _open(self, access_key_id: str) -> str:
        session_id = secrets.token_urlsafe(32)
        session = Session(access_key_id, secrets.token_urlsafe(32), self.clock() + SESSION_TTL_S)
        with self._lock:
            self._drop_expired()
            while len(self._sessions) >= MAX_SESSIONS:
                self._sessions.pop(next(iter(self._sessions)))
            self._sessions[session_id] = session
        return session_id

    def _drop_expired(self) -> None:
        now = self.clock()
        for key in [k for k, s in self._sessions.items() if s.expires_at < now]:
            del self._sessions[key]
        for key in [k for k, (_, expires) in self._login_tokens.items() if expires < now]:
            del self._login_tokens[key]
