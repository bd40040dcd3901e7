"""The ReplyDesk error hierarchy.

Every message says what went wrong *and what to do next*; the UI and the CLI show it as is.

    ReplyDeskError
    ├── ConfigError            settings or a config file is wrong
    ├── DatabaseError          database unreachable or not migrated
    ├── InputError             a CLI input line or a user-supplied value is malformed
    ├── MailParseError         a mail could not be parsed (its raw bytes are kept regardless)
    ├── MailboxError           IMAP trouble (auth, TLS, unreachable, folder missing)
    ├── SendError              SMTP trouble; `permanent` tells whether a retry can help
    ├── ComplianceBlocked      a text failed the compliance gate and must not be sent
    ├── TemplateError          a template is broken or a variable is missing
    ├── ModelError             a language/intent/embedding model or an LLM failed
    ├── AmazonApiError         SP-API / Login with Amazon trouble
    ├── PermissionDenied       the user may not do this
    └── ConflictError          someone else holds the conversation, or the state moved on
"""

from __future__ import annotations


class ReplyDeskError(Exception):
    """Base class; `str(err)` is a complete, user-facing sentence."""

    code = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class ConfigError(ReplyDeskError):
    code = "config"


class DatabaseError(ReplyDeskError):
    code = "database"


class InputError(ReplyDeskError):
    code = "input"


class MailParseError(ReplyDeskError):
    code = "unparsed"


class MailboxError(ReplyDeskError):
    code = "mailbox"


class SendError(ReplyDeskError):
    code = "send"

    def __init__(self, message: str, *, permanent: bool = False, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.permanent = permanent


class ComplianceBlocked(ReplyDeskError):
    code = "compliance"


class TemplateError(ReplyDeskError):
    code = "template"


class ModelError(ReplyDeskError):
    code = "model"


class AmazonApiError(ReplyDeskError):
    code = "amazon_api"

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.status = status


class PermissionDenied(ReplyDeskError):
    code = "permission"


class ConflictError(ReplyDeskError):
    code = "conflict"
