"""Console sessions and one-time login tokens: the rules, with an injected clock (no waiting)."""

from __future__ import annotations

import pytest

from genobatch.console.session import LOGIN_TOKEN_TTL_S, SESSION_TTL_S, LoginRefused, Sessions

pytestmark = pytest.mark.no_store
KEYS = {"GBIAAAAAAAAAAAAAAAAA": "s" * 40}


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_login_checks_the_key_store_and_sessions_expire() -> None:
    clock = Clock()
    sessions = Sessions(KEYS.get, clock)
    for key, secret in (("GBIAAAAAAAAAAAAAAAAA", "wrong"), ("GBIAUNKNOWN", "s" * 40), ("", ""), (" ", "s" * 40)):
        with pytest.raises(LoginRefused):
            sessions.login(key, secret)
    session_id = sessions.login("GBIAAAAAAAAAAAAAAAAA", "s" * 40)
    session = sessions.get(session_id)
    assert session is not None and session.access_key_id == "GBIAAAAAAAAAAAAAAAAA"
    assert (
        session.csrf_matches(session.csrf_token)
        and not session.csrf_matches("other")
        and not session.csrf_matches(None)
    )
    assert sessions.get("forged") is None and sessions.get(None) is None
    clock.now += SESSION_TTL_S + 1
    assert sessions.get(session_id) is None


def test_login_tokens_work_once_and_expire() -> None:
    clock = Clock()
    sessions = Sessions(KEYS.get, clock)
    token, expires = sessions.create_login_token("GBIAAAAAAAAAAAAAAAAA")
    assert expires == clock.now + LOGIN_TOKEN_TTL_S
    session_id = sessions.redeem(token)
    assert sessions.get(session_id).access_key_id == "GBIAAAAAAAAAAAAAAAAA"
    with pytest.raises(LoginRefused, match="used already or has expired"):
        sessions.redeem(token)
    late, _ = sessions.create_login_token("GBIAAAAAAAAAAAAAAAAA")
    clock.now += LOGIN_TOKEN_TTL_S + 1
    with pytest.raises(LoginRefused):
        sessions.redeem(late)


def test_logout_and_no_auth() -> None:
    sessions = Sessions(KEYS.get, Clock())
    session_id = sessions.login("GBIAAAAAAAAAAAAAAAAA", "s" * 40)
    sessions.logout(session_id)
    assert sessions.get(session_id) is None
    anonymous = Sessions(None)
    assert not anonymous.auth
    assert anonymous.get(None) is anonymous.anonymous and anonymous.anonymous.csrf_token
    with pytest.raises(LoginRefused):
        anonymous.login("x", "y")
