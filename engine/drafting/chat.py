"""One chat completion through the `openai` client, with the project's retry policy.

The SDK's own retries are off (callers build the client with `max_retries=0`) so that every caller can say
how many attempts were made. Timeouts, unreachable servers, 408/409/429 and 5xx are retried with backoff
(0.5 s, 1 s, ... up to 8 s); anything else fails at once. Failures come back as `ChatFailure` with a `kind`,
and each caller words the message for its own user.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import openai

FailureKind = Literal["timeout", "unreachable", "status", "client", "no_choices", "refused", "filtered", "cut_off"]


@dataclass
class ChatFailure(Exception):
    kind: FailureKind
    attempts: int = 1
    status: int | None = None  # HTTP status, for kind "status"
    client_error: str | None = None  # exception class name, for kind "client"


def retryable(status: int) -> bool:
    return status in (408, 409, 429) or status >= 500


def complete(
    client: openai.OpenAI,
    *,
    model: str,
    messages: list[dict[str, str]],
    temperature: float,
    max_tokens: int,
    max_retries: int,
    sleep: Callable[[float], None],
) -> str | None:
    """The first choice's text; raises `ChatFailure`."""
    attempts = 1 + max_retries
    for attempt in range(1, attempts + 1):
        try:
            response = client.chat.completions.create(
                model=model,
                messages=messages,  # type: ignore[arg-type]
                temperature=temperature,
                max_tokens=max_tokens,
            )
        except openai.APITimeoutError as exc:
            if attempt == attempts:
                raise ChatFailure("timeout", attempts) from exc
        except openai.APIConnectionError as exc:
            if attempt == attempts:
                raise ChatFailure("unreachable", attempts) from exc
        except openai.APIStatusError as exc:
            if not retryable(exc.status_code) or attempt == attempts:
                raise ChatFailure("status", attempt, status=exc.status_code) from exc
        except openai.OpenAIError as exc:
            raise ChatFailure("client", attempt, client_error=type(exc).__name__) from exc
        else:
            if not response.choices:
                raise ChatFailure("no_choices", attempt)
            choice = response.choices[0]
            if choice.message.refusal:
                raise ChatFailure("refused", attempt)
            if choice.finish_reason == "content_filter":
                raise ChatFailure("filtered", attempt)
            if choice.finish_reason == "length":
                raise ChatFailure("cut_off", attempt)
            return choice.message.content
        sleep(min(8.0, 0.5 * 2 ** (attempt - 1)))
    raise AssertionError("unreachable: the loop returns or raises")
