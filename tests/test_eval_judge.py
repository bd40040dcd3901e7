"""The LLM judge against a mocked OpenAI-compatible server (httpx.MockTransport; the SDK is not patched)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from engine.errors import ConfigError, ModelError
from evals.judge import CRITERIA, Judge, JudgeConfig, agreement, parse_judgement, weighted_kappa


def completion(content: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": "judge-model",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
    }


def judge_with(handler: Callable[[httpx.Request], httpx.Response]) -> Judge:
    config = JudgeConfig(model="judge-model", base_url="http://judge.test/v1", api_key="test-key")
    return Judge.from_config(config, http_client=httpx.Client(transport=httpx.MockTransport(handler)))


def test_judge_sends_the_rubric_and_parses_scores() -> None:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url == "http://judge.test/v1/chat/completions"
        assert request.headers["authorization"] == "Bearer test-key"
        seen.append(json.loads(request.content))
        answer = {"helpfulness": 4, "correctness": 5, "tone": 5, "policy": 5, "rationale": "fine"}
        return httpx.Response(200, json=completion(json.dumps(answer)))

    case = {"id": "c1", "text": "Where is my order?", "reference": "It ships today.", "facts": ["123"]}
    score = judge_with(handler).score(case, "Your order ships today.")
    assert score.scores == {"helpfulness": 4, "correctness": 5, "tone": 5, "policy": 5}
    body = seen[0]
    assert body["model"] == "judge-model" and body["temperature"] == 0
    payload = json.loads(body["messages"][1]["content"])
    assert payload["draft"] == "Your order ships today." and payload["required_facts"] == ["123"]
    assert "policy" in body["messages"][0]["content"]


def test_score_many_records_failures_and_agreement() -> None:
    answers = iter(
        [
            json.dumps({"helpfulness": 5, "correctness": 5, "tone": 4, "policy": 5}),
            "I think it is fine",  # not JSON: recorded, not fatal
            json.dumps({"helpfulness": 2, "correctness": 3, "tone": 4, "policy": 5}),
        ]
    )

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=completion(next(answers)))

    cases: list[tuple[dict[str, Any], str]] = [
        ({"id": "a", "text": "x", "human": {"helpfulness": 5, "tone": 4}}, "draft a"),
        ({"id": "b", "text": "y"}, "draft b"),
        ({"id": "c", "text": "z", "human": {"helpfulness": 4, "tone": 4}}, "draft c"),
    ]
    report = judge_with(handler).score_many(cases)
    assert report.scores[1] is None and report.errors[0].startswith("b:")
    assert report.means()["helpfulness"] == pytest.approx(3.5)
    agreement_table = report.agreement()
    assert agreement_table["helpfulness"]["exact"] == pytest.approx(0.5)
    assert agreement_table["tone"]["exact"] == 1.0
    assert report.to_dict()["failed"] == 1


def test_server_errors_become_model_errors() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, json={"error": {"message": "boom"}})

    with pytest.raises(ModelError, match="judge model judge-model failed"):
        judge_with(handler).score({"text": "x"}, "y")


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ('{"helpfulness": 4, "correctness": 5, "tone": 5}', "policy"),
        ('{"helpfulness": 9, "correctness": 5, "tone": 5, "policy": 5}', "helpfulness"),
        ('{"helpfulness": true, "correctness": 5, "tone": 5, "policy": 5}', "helpfulness"),
        ("no json here", "JSON"),
        ("[1, 2]", "not an object"),
    ],
)
def test_parse_judgement_rejects_incomplete_rubrics(content: str, problem: str) -> None:
    with pytest.raises(ModelError, match=problem):
        parse_judgement(content)


def test_parse_judgement_accepts_json_inside_prose() -> None:
    score = parse_judgement('Sure! {"helpfulness": 3, "correctness": 4.0, "tone": 5, "policy": 1, "rationale": "x"}')
    assert score.scores == dict(zip(CRITERIA, (3, 4, 5, 1), strict=True))


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        ([(1, 1), (3, 3), (5, 5)], 1.0),
        ([(1, 5), (5, 1)], -1.0),
        ([(4, 4), (4, 4)], 1.0),  # both constant and identical
    ],
)
def test_weighted_kappa(pairs: list[tuple[int, int]], expected: float) -> None:
    assert weighted_kappa(pairs) == pytest.approx(expected)


def test_agreement_within_one() -> None:
    table = agreement([{"tone": 4}, {"tone": 2}], [{"tone": 5}, {"tone": 5}])
    assert table["tone"]["within_one"] == 0.5 and table["tone"]["count"] == 2


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"REPLYDESK_JUDGE_MODEL": "m", "REPLYDESK_JUDGE_BASE_URL": "http://localhost:8000/v1"}, "m"),
        ({"REPLYDESK_JUDGE_MODEL": "m", "REPLYDESK_JUDGE_API_KEY": "k"}, "m"),
    ],
)
def test_config_from_env(env: dict[str, str], expected: str | None) -> None:
    config = JudgeConfig.from_env(env)
    assert (config.model if config else None) == expected


def test_config_without_key_or_url_is_an_error() -> None:
    with pytest.raises(ConfigError, match="REPLYDESK_JUDGE_API_KEY"):
        JudgeConfig.from_env({"REPLYDESK_JUDGE_MODEL": "m"})
