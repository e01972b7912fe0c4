"""The reward service over real HTTP on loopback, one live service for the module (Ray Serve, bearer auth
on, the tiny reward model, small limits):

- fuzzed from its own OpenAPI schema (schemathesis, the schema read from the running service's
  /openapi.json): whatever is sent, schema-valid or not, the answer is a success or a client error, never a
  5xx, and it matches the schema; the same traffic without the token is always a 401;
- a bounded soak: a fixed number of small requests from several client threads, every one answered with
  the right rewards, the replica's resident memory not creeping, and the test process left without extra
  threads or open connections. The measured numbers (requests, req/s, replica RSS before and after) are
  printed; run with `-s` to see.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import count
from typing import Any

import psutil
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
    positive_data_acceptance,
    status_code_conformance,
)
from serving_support import ITEMS, reward_service

pytestmark = pytest.mark.slow

TOKEN = "http-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CLIENTS = 8
WARMUP_REQUESTS = 100  # before the baseline: first batches of each shape, lazy imports, allocator pools
SOAK_REQUESTS = 1_000  # ~20 req/s measured on 2 heavily shared cores (load average 16-55): ~75 s
# Allowed growth of the replica's RSS over the soak. Measured: +20 to +23 MiB, and the curve printed
# below shows how: flat, one step of ~15 MiB partway through (an allocator arena/pool growing once under
# concurrency), flat again; not a slope. 50 MiB leaves room for that step and noise, while a steady leak
# of more than ~35 KiB per request (50 MiB / 1,500) fails the test.
RSS_GROWTH_BOUND = 50 * 2**20
# The test process may own a couple of transient threads/fds of Ray's own (gRPC, log monitor) that
# come and go independently of the clients; anything beyond that is a leak of the clients'.
THREAD_SLACK = 2
FD_SLACK = 8
RSS_EVERY = 250


# Bounded: the 80 fuzz examples take ~5 s on 2 shared cores (starting Ray and Serve, in the fixtures, is
# most of the rest); deadline off because latency through Serve's proxy and the batcher varies
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


@dataclass
class Service:
    url: str
    port: int


@pytest.fixture(scope="module")
def service(ray_cluster: None, artifacts: Any) -> Iterator[Service]:
    with reward_service(artifacts, TOKEN) as url:
        yield Service(url, int(url.rsplit(":", 1)[1]))


@pytest.fixture(scope="module")
def rewards_cases(service: Service) -> Any:
    """Schemathesis cases for POST /v1/rewards, schema-valid and schema-violating, from the live schema."""
    from schemathesis import GenerationMode

    schema = schemathesis.openapi.from_url(f"{service.url}/openapi.json", headers=AUTH, timeout=30)
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
    data: st.DataObject, rewards_cases: Any, service: Service
) -> None:
    case = data.draw(rewards_cases, label="case")
    response = case.call(base_url=service.url, headers=AUTH, timeout=60)
    code = response.status_code
    SEEN[f"{case.meta.generation.mode.value} {code}"] += 1
    assert code < 500, f"{code}: {response.text[:500]}"
    assert code == 200 or code in CLIENT_ERRORS, f"{code}: {response.text[:500]}"
    case.validate_response(
        response,
        excluded_checks=excluded_checks(code),
        headers=AUTH,
        transport_kwargs={"base_url": service.url, "headers": AUTH, "timeout": 60},
    )


@settings(FUZZ, max_examples=20)
@given(data=st.data())
def test_without_the_token_everything_is_401(
    data: st.DataObject, rewards_cases: Any, service: Service
) -> None:
    case = data.draw(rewards_cases, label="case")
    response = case.call(base_url=service.url, timeout=60)
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


def _picks(index: int) -> list[int]:
    """Which ITEMS request `index` sends: 1 to 3 of them, varied so batches mix request sizes."""
    size = 1 + index % 3
    return [(index + k) % len(ITEMS) for k in range(size)]


def _run(
    service: Service, total: int, expected: list[float], replica: psutil.Process, rss: list[int]
) -> tuple[list[str], float]:
    """`total` requests from CLIENTS threads, each with its own keep-alive session; the failures, wall s.

    The replica's RSS is appended to `rss` every RSS_EVERY requests, to show the curve (a leak climbs
    steadily; allocator pools settling flatten out).
    """
    failures: list[str] = []
    next_index = count()
    lock = threading.Lock()

    def client() -> None:
        with requests.Session() as session:
            session.headers.update(AUTH)
            while True:
                with lock:
                    index = next(next_index)
                if index >= total:
                    return
                if index % RSS_EVERY == 0:
                    rss.append(replica.memory_info().rss)
                pick = _picks(index)
                try:
                    response = session.post(
                        service.url + "/v1/rewards", json={"items": [ITEMS[j] for j in pick]}, timeout=60
                    )
                except requests.RequestException as exc:
                    failures.append(f"request {index}: {type(exc).__name__}: {exc}")
                    continue
                if response.status_code != 200:
                    failures.append(f"request {index}: {response.status_code} {response.text[:200]}")
                    continue
                rewards = response.json()["rewards"]
                want = [expected[j] for j in pick]
                if len(rewards) != len(want) or any(
                    not math.isfinite(got) or abs(got - w) > 1e-4
                    for got, w in zip(rewards, want, strict=True)
                ):
                    failures.append(f"request {index}: rewards {rewards}, expected {want}")

    start = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        for future in [pool.submit(client) for _ in range(CLIENTS)]:
            future.result()
    return failures, time.perf_counter() - start


def _established_to(port: int) -> list[Any]:
    """This process's open TCP connections to `port` (the service)."""
    return [
        c
        for c in psutil.Process().net_connections(kind="tcp")
        if c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED
    ]


def test_soak_every_request_succeeds_and_memory_stays_flat(service: Service) -> None:
    # Reference rewards, one item per request: every soak response must match them (batched with others).
    expected = []
    for item in ITEMS:
        response = requests.post(
            service.url + "/v1/rewards", json={"items": [item]}, headers=AUTH, timeout=60
        )
        assert response.status_code == 200, response.text
        expected.append(response.json()["rewards"][0])

    stats = requests.get(service.url + "/v1/stats", headers=AUTH, timeout=30).json()
    replica = psutil.Process(stats["pid"])
    me = psutil.Process()
    threads_before, fds_before = threading.active_count(), me.num_fds()
    connections_before = len(_established_to(service.port))

    failures, _ = _run(service, WARMUP_REQUESTS, expected, replica, [])
    assert not failures, failures[:10]
    rss_before = replica.memory_info().rss
    before = requests.get(service.url + "/v1/stats", headers=AUTH, timeout=30).json()

    curve: list[int] = []
    failures, wall = _run(service, SOAK_REQUESTS, expected, replica, curve)
    after = requests.get(service.url + "/v1/stats", headers=AUTH, timeout=30).json()
    rss_after = replica.memory_info().rss
    time.sleep(0.5)  # closed sessions' sockets are released by the kernel asynchronously
    threads_after, fds_after = threading.active_count(), me.num_fds()
    connections_after = len(_established_to(service.port))

    growth = rss_after - rss_before
    batches = after["batches"] - before["batches"]
    items = after["items"] - before["items"]
    print(
        f"\nsoak: {SOAK_REQUESTS} requests ({items} items) from {CLIENTS} clients in {wall:.1f} s = "
        f"{SOAK_REQUESTS / wall:.0f} req/s; {batches} forwards, mean {items / max(batches, 1):.1f} items, "
        f"largest {after['largest_batch']}\n"
        f"replica pid {stats['pid']} RSS: {rss_before / 2**20:.1f} MiB after {WARMUP_REQUESTS} warm-up "
        f"requests -> {rss_after / 2**20:.1f} MiB after the soak ({growth / 2**20:+.1f} MiB, bound "
        f"{RSS_GROWTH_BOUND / 2**20:.0f} MiB); every {RSS_EVERY} requests: "
        f"{', '.join(f'{value / 2**20:.1f}' for value in curve)} MiB\n"
        f"test process: threads {threads_before} -> {threads_after}, fds {fds_before} -> {fds_after}, "
        f"connections to the service {connections_before} -> {connections_after}"
    )
    assert not failures, f"{len(failures)} of {SOAK_REQUESTS} failed: {failures[:10]}"
    assert after["requests"] - before["requests"] == SOAK_REQUESTS
    assert items == sum(len(_picks(i)) for i in range(SOAK_REQUESTS))
    assert growth <= RSS_GROWTH_BOUND, f"replica RSS grew {growth / 2**20:.1f} MiB over the soak"
    assert threads_after <= threads_before + THREAD_SLACK
    assert fds_after <= fds_before + FD_SLACK
    assert connections_after <= connections_before
