"""The reward service fuzzed from its own OpenAPI schema (schemathesis), over real HTTP on loopback.

The service runs on Ray Serve with bearer auth on, the tiny reward model and small limits; the schema is
read from the running service's /openapi.json. Property: whatever schemathesis sends (schema-valid or
not), the service answers with a client error or a success, never a 5xx, and its answers match the
schema. A second test sends the same kind of traffic without the token: always a 401, never a 5xx.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
    positive_data_acceptance,
    status_code_conformance,
)
from serving_support import reward_service

pytestmark = pytest.mark.slow

TOKEN = "fuzz-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# Bounded: the 80 examples take ~5 s on 2 shared cores (starting Ray and Serve, in the fixtures, is the
# rest of the file's time); deadline off because latency through Serve's proxy and the batcher varies
# with load on the machine, which is not what is tested.
FUZZ = settings(
    max_examples=60,
    deadline=None,
    database=None,  # no .hypothesis directory written by test runs
    suppress_health_check=list(HealthCheck),
)
# The codes the service may answer with, other than 200: 422 (schema, limits) is documented in the
# schema; 400 (a body FastAPI cannot even decode, e.g. invalid UTF-8: "There was an error parsing the
# body") and 413 (over serve.max_body_bytes, from BodySizeLimitMiddleware) are deliberate but not in the
# schema, so for those two alone the status_code_conformance check is relaxed. 401 only without the
# token, 503 only under overload (not reached by one client). Never a 5xx otherwise.
CLIENT_ERRORS = {400, 413, 422}
UNDOCUMENTED = {400, 413}

# positive_data_acceptance is relaxed: the schema cannot express every rule the service enforces, so
# schema-valid bodies are rightly refused with 422: a conversation must end with the assistant turn and
# have a user turn before it (a pydantic model validator), and serve.max_items / serve.max_item_chars
# are configured limits that the schema does not carry. Every other default check stays on (no server
# error, status code / content type / response schema conformance, negative data rejection, ...).
RELAXED_CHECKS = [positive_data_acceptance]
# A schema-violating body that is also over the size limit is refused with 413 before it is parsed:
# refused all the same, though 413 is not among the codes negative_data_rejection counts as a refusal.
OVERSIZE_CHECKS = [status_code_conformance, negative_data_rejection]
SEEN: Counter[str] = Counter()  # status codes answered to the authenticated fuzz, printed at the end


def excluded_checks(code: int) -> list[Any]:
    """The schemathesis checks that do not apply to an answer with this status code (see above)."""
    if code == 413:
        return RELAXED_CHECKS + OVERSIZE_CHECKS
    if code in UNDOCUMENTED:
        return RELAXED_CHECKS + [status_code_conformance]
    return RELAXED_CHECKS


@pytest.fixture(scope="module")
def service_url(ray_cluster: None, artifacts: Any) -> Iterator[str]:
    with reward_service(artifacts, TOKEN) as url:
        yield url


@pytest.fixture(scope="module")
def rewards_cases(service_url: str) -> Any:
    """Schemathesis cases for POST /v1/rewards, schema-valid and schema-violating, from the live schema."""
    from schemathesis import GenerationMode

    schema = schemathesis.openapi.from_url(f"{service_url}/openapi.json", headers=AUTH, timeout=30)
    operation = schema["/v1/rewards"]["POST"]
    return st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE)
    )


# Driven by a plain hypothesis @given over the operation's as_strategy(): schemathesis' own
# `from_fixture(...).parametrize()` fails under pytest 9 (it sets `request.node._nodeid`, which pytest 9
# no longer has), and its module-level `@schema.parametrize()` needs the URL at import time, before the
# service exists. Only /v1/rewards is fuzzed: /v1/reload loads model directories named by the client
# (admin-only, covered in test_reward_service.py) and the GET routes take no input.
@FUZZ
@given(data=st.data())
def test_rewards_never_5xx_and_answers_match_the_schema(
    data: st.DataObject, rewards_cases: Any, service_url: str
) -> None:
    case = data.draw(rewards_cases, label="case")
    response = case.call(base_url=service_url, headers=AUTH, timeout=60)
    code = response.status_code
    SEEN[f"{case.meta.generation.mode.value} {code}"] += 1
    assert code < 500, f"{code}: {response.text[:500]}"
    assert code == 200 or code in CLIENT_ERRORS, f"{code}: {response.text[:500]}"
    case.validate_response(
        response,
        excluded_checks=excluded_checks(code),
        headers=AUTH,
        transport_kwargs={"base_url": service_url, "headers": AUTH, "timeout": 60},
    )


@settings(FUZZ, max_examples=20)
@given(data=st.data())
def test_without_the_token_everything_is_401(
    data: st.DataObject, rewards_cases: Any, service_url: str
) -> None:
    case = data.draw(rewards_cases, label="case")
    response = case.call(base_url=service_url, timeout=60)
    assert response.status_code == 401, f"{response.status_code}: {response.text[:500]}"
    assert response.headers.get("www-authenticate") == ["Bearer"]  # schemathesis keeps header lists


def test_fuzz_reached_both_acceptance_and_rejection() -> None:
    """The fuzz above exercised the scoring path and the validation path, not only one of them.

    Hypothesis tries the simplest schema-valid body (one pair item) early, so some 200s are certain;
    most schema-valid conversations are rightly refused (see RELAXED_CHECKS), so are many 422s.
    """
    assert SEEN, "this test reads what test_rewards_never_5xx_and_answers_match_the_schema saw: run the file"
    print(f"\nstatus codes answered to the fuzz (generation mode, code): {dict(sorted(SEEN.items()))}")
    codes = {int(key.split()[1]) for key in SEEN}
    assert 200 in codes and 422 in codes, SEEN
