"""What the app keeps in a browser session: the signed-in agent's id, the interface language and the
agent's current selections. Never data: every page reads that fresh from the services."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st
from sqlalchemy.orm import Session

from engine.errors import ReplyDeskError
from engine.services.accounts import SignedIn, signed_in
from engine.ui import auth
from engine.ui.container import AppServices
from engine.ui.i18n import t

AGENT_ID = "agent_id"
LANGUAGE = "ui_language"
CONVERSATION = "conversation_id"
FLASH = "flash"
SSO_REFUSAL = "sso_refusal"  # why this browser's single sign-on identity was refused


def language() -> str:
    value = st.session_state.get(LANGUAGE, "en")
    return value if isinstance(value, str) else "en"


def tr(key: str, **values: object) -> str:
    """`t` in the session's interface language."""
    return t(key, language(), **values)


def sign_in(agent_id: int, ui_language: str) -> None:
    st.session_state[AGENT_ID] = agent_id
    st.session_state[LANGUAGE] = ui_language


def sign_out() -> bool:
    """Forget the signed-in agent. True when the browser is now on its way through the single sign-on logout
    (which reloads the app by itself): the caller must not rerun, or the logout redirect could be lost."""
    for key in list(st.session_state.keys()):
        if key != LANGUAGE:
            del st.session_state[key]
    sso = auth.single_sign_on()
    if sso.identity() is None:
        return False
    sso.log_out()  # else the provider's identity would sign this browser straight back in
    return True


def current_user(app: AppServices) -> SignedIn | None:
    agent_id = st.session_state.get(AGENT_ID)
    if not isinstance(agent_id, int):
        return None
    return app.run(lambda session: signed_in(session, agent_id))


def require_user(app: AppServices) -> SignedIn:
    user = current_user(app)
    if user is None:
        st.warning(tr("login.required"))
        st.stop()
    assert user is not None  # st.stop() never returns
    return user


def open_conversation(conversation_id: int) -> None:
    st.session_state[CONVERSATION] = conversation_id
    st.switch_page("app_pages/conversation.py")


def flash(kind: str, message: str) -> None:
    """A message shown once, after the rerun that an action triggers."""
    st.session_state[FLASH] = (kind, message)


def show_flash() -> None:
    kind, message = st.session_state.pop(FLASH, (None, None))
    if kind == "success":
        st.success(message)
    elif kind == "error":
        st.error(message)
    elif kind == "info":
        st.info(message)


def attempt(app: AppServices, action: Callable[[Session], object]) -> bool:
    """Run one user action in its own transaction; a domain error is shown, not raised. True when done."""
    return attempt_steps(lambda: app.run(action))


def attempt_steps(action: Callable[[], object]) -> bool:
    """Run a user action that manages its own transactions (one with slow work between them, such as an LLM
    call); a domain error is shown, not raised. True when done."""
    try:
        action()
    except ReplyDeskError as exc:
        st.error(tr("error.prefix", message=str(exc)))
        return False
    return True
