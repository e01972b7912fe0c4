"""A small OpenAI-compatible server on loopback for the annotation tests.

It serves POST /v1/chat/completions over real HTTP (ThreadingHTTPServer, 127.0.0.1, port 0) with
deterministic replies, counts every request, tracks the most requests in flight at once, and can be told
to answer the next k requests with an error status (the one scripted behaviour: failure injection).

Replies are a pure function of the request:
- completer models answer "<model> says: ..." (the judge below scores by the words good/okay in it);
- a judge prompt (it contains "### Answer 1") gets a verdict whose shape is chosen by a marker in the
  question: [[bare]] JSON in prose, [[trailing]] trailing commas, [[truncated]] cut after two
  evaluations, [[garbage]] no JSON, [[badids]] ids out of range; otherwise a fenced ```json block;
- a difficulty prompt ("Rate how difficult") gets {"score": 8 if "hard" in the question else 3, ...};
- [[fail:MODEL]] in a user message makes that model's request fail with HTTP 400.
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ultramedical.config import AnnotateConfig, EndpointModel

_ANSWER = re.compile(r"### Answer (\d+)\n(.*?)(?=\n\n### Answer |\n\nReply with|\Z)", re.DOTALL)


def _words(text: str) -> int:
    return len(text.split())


def judge_reply(prompt: str) -> str:
    answers = _ANSWER.findall(prompt)
    evaluations = []
    for ident, text in answers:
        score = 5 if "good" in text else 3 if "okay" in text else 1
        evaluations.append(
            {"id": int(ident), "score": score, "explanation": f"answer {ident} scored {score}"}
        )
    ranking = [e["id"] for e in sorted(evaluations, key=lambda e: (-e["score"], e["id"]))]
    verdict = json.dumps({"evaluations": evaluations, "ranking": ranking})
    if "[[garbage]]" in prompt:
        return "I am sorry, but I cannot grade these answers."
    if "[[badids]]" in prompt:
        return json.dumps({"evaluations": [{"id": 9, "score": 4, "explanation": "x"}], "ranking": [9]})
    if "[[bare]]" in prompt:
        return f"Here is my assessment.\n{verdict}\nLet me know if you need more."
    if "[[trailing]]" in prompt:
        return verdict.replace("}]", "},]").replace("]}", ",]}")
    if "[[truncated]]" in prompt:
        cut = verdict.index('{"id": 3')
        return verdict[: cut + 12]
    return f"```json\n{verdict}\n```"


def reply_texts(model: str, messages: list[dict[str, str]], n: int) -> list[str]:
    prompt = "\n".join(str(m.get("content", "")) for m in messages)
    if "### Answer 1" in prompt:
        return [judge_reply(prompt)] * n
    if "Rate how difficult" in prompt:
        question = prompt.split("## Question", 1)[-1].split("Reply with", 1)[0]
        score = 8 if "hard" in question else 3
        return [json.dumps({"score": score, "justification": f"rated {score} by the fake judge"})] * n
    first_words = " ".join(prompt.split()[:6])
    suffixes = [""] if n == 1 else [f" (sample {i})" for i in range(n)]
    return [f"{model} says: the answer to '{first_words}' is reasoned here{s}." for s in suffixes]


class FakeOpenAIServer:
    """Start with `with FakeOpenAIServer() as server:`; `server.base_url` ends in /v1."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.requests = 0
        self.bodies: list[dict[str, Any]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.prompt_tokens = 0  # usage sums of the 200 replies, to check the client's accounting
        self.completion_tokens = 0
        self._fail_queue: list[tuple[int, str | None]] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def fail_next(self, status: int, k: int = 1, retry_after: str | None = None) -> None:
        """Answer the next k requests with this HTTP status (and a Retry-After header if given)."""
        with self._lock:
            self._fail_queue += [(status, retry_after)] * k

    def __enter__(self) -> FakeOpenAIServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _respond(self, body: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self._lock:
            self.requests += 1
            self.bodies.append(body)
            injected = self._fail_queue.pop(0) if self._fail_queue else None
        if injected is not None:
            status, retry_after = injected
            error = {"error": {"message": f"injected {status}", "type": "injected", "code": None}}
            return status, error, {"Retry-After": retry_after} if retry_after else {}
        model, messages = body.get("model", ""), body.get("messages", [])
        if any(f"[[fail:{model}]]" in str(m.get("content", "")) for m in messages):
            refusal = {"message": f"{model} refuses this prompt", "type": "invalid_request_error"}
            return 400, {"error": refusal}, {}
        texts = reply_texts(model, messages, int(body.get("n") or 1))
        usage = {"prompt_tokens": sum(_words(str(m.get("content", ""))) for m in messages)}
        usage["completion_tokens"] = sum(_words(t) for t in texts)
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        with self._lock:
            self.prompt_tokens += usage["prompt_tokens"]
            self.completion_tokens += usage["completion_tokens"]
        choices = [
            {"index": i, "message": {"role": "assistant", "content": t}, "finish_reason": "stop"}
            for i, t in enumerate(texts)
        ]
        reply = {"id": f"chatcmpl-{self.requests}", "object": "chat.completion", "created": int(time.time())}
        return 200, reply | {"model": model, "choices": choices, "usage": usage}, {}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._send(404, {"error": {"message": f"no route {self.path}"}})
                    return
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                with server._lock:
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    time.sleep(server.delay_s)
                    status, payload, headers = server._respond(body)
                finally:
                    with server._lock:
                        server.in_flight -= 1
                self._send(status, payload, headers)

            def _send(
                self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
            ) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler


def instruction(ident: str, question: str, answer: str = "", reference: str = "") -> dict[str, Any]:
    """An UltraMedical instruction record (the input of the pipeline)."""
    return {
        "id": ident,
        "type": "mcq" if answer else "open",
        "conversations": [
            {"from": "human", "value": question},
            {
                "from": "gpt",
                "value": reference or f"Reference explanation. So, the answer is {answer or 'none'}.",
            },
        ],
        "answer": answer,
        "score": "",
    }


PRICES = {"usd_per_1k_prompt_tokens": 0.5, "usd_per_1k_completion_tokens": 1.5}
JUDGE_PRICES = {"usd_per_1k_prompt_tokens": 2.0, "usd_per_1k_completion_tokens": 6.0}


def make_config(base_url: str, **overrides: object) -> AnnotateConfig:
    """Three completers of distinct quality (the fake judge scores good > okay > bad) and a judge."""
    completers = [
        EndpointModel(model=name, base_url=base_url, max_tokens=64, **PRICES)
        for name in ("good-model", "okay-model", "bad-model")
    ]
    judge = EndpointModel(
        model="judge-model", base_url=base_url, temperature=0.0, max_tokens=256, **JUDGE_PRICES
    )
    fields = {
        "completers": completers,
        "judge": judge,
        "concurrency": 4,
        "max_retries": 3,
        "backoff_base_s": 0.0,
    }
    return AnnotateConfig(**(fields | {"timeout_s": 10.0} | overrides))
