"""What the app keeps in a browser session: the signed-in agent's id, the interface language and the
agent's current selections. Never data: every page reads that fresh from the services."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable

import streamlit as st
from sqlalchemy.orm import Session

from engine.errors import ReplyDeskError
from engine.services.accounts import SignedIn, signed_in
from engine.ui import auth
from engine.ui.container import AppServices
from engine.ui.format import escape_markdown
from engine.ui.i18n import t

log = logging.getLogger(__name__)

AGENT_ID = "agent_id"
GENERATION = "session_generation"  # the account's session generation at sign-in
LAST_ACTIVE = "last_active"  # time.time() of the last user action (a full rerun; auto-refreshes do not count)
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


def sign_in(agent_id: int, ui_language: str, session_generation: int = 0) -> None:
    st.session_state[AGENT_ID] = agent_id
    st.session_state[LANGUAGE] = ui_language
    st.session_state[GENERATION] = session_generation
    st.session_state[LAST_ACTIVE] = time.time()


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


def idle_expired(app: AppServices) -> bool:
    """True when the signed-in session has had no user action for longer than the idle timeout."""
    last = st.session_state.get(LAST_ACTIVE)
    if not isinstance(last, int | float):
        return False
    return time.time() - last > app.settings.session_idle_hours * 3600


def current_user(app: AppServices) -> SignedIn | None:
    """The signed-in agent, counting this run as activity; signs the session out when it was idle too long
    or its account's sessions were ended (password reset, role change, deactivation, unbind)."""
    agent_id = st.session_state.get(AGENT_ID)
    if not isinstance(agent_id, int):
        return None
    generation = st.session_state.get(GENERATION)
    generation = generation if isinstance(generation, int) else 0
    user = None if idle_expired(app) else app.run(lambda session: signed_in(session, agent_id, generation))
    if user is None:
        if sign_out():
            st.stop()  # the single sign-on logout redirect reloads the app
        flash("info", tr("login.session_ended"))
        return None
    st.session_state[LAST_ACTIVE] = time.time()
    return user


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
        show_error(exc)
        return False
    except Exception:  # shown as a short message; the details stay in the server log under the reference
        reference = uuid.uuid4().hex[:10]
        log.exception("Unexpected error (reference %s)", reference)
        st.error(tr("error.unexpected", reference=reference))
        return False
    return True


def show_error(exc: BaseException) -> None:
    """A domain error's sentence, escaped: it can quote buyer or reply text, which must not render as markup."""
    st.error(tr("error.prefix", message=escape_markdown(str(exc))))
