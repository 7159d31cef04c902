"""A simulated inference server: a GPU's latency and slot limit, answering every client's format.

`SimulatedApp` (served by `local_server.LocalServer`) holds one of its `capacity` slots for each
generation, for `LatencyModel.seconds(tokens)`, where the number of generated tokens is drawn
from a long-tailed (lognormal) law per kind of prompt, as real completion lengths are. It tells
the prompt's kind from its first words and answers in the format that kind's client parses:

    instructions    "Come up with a series of ..." (ours and the paper's): a numbered list
                    continuing the prompt's, of instructions made of random pseudo-words, so the
                    supply of novel instructions never runs out
    classification  "Can the following task be regarded ...": " Yes" or " No"
    output_first    "Given the classification task ...": "Class label: ... / Input: ..."
    input_first     "Come up with examples ...": "Example k / Input: ... / Output: ..."
    alpaca          Stanford Alpaca's "20 diverse task instructions": `###`-separated
                    "N. Instruction: / N. Input: / N. Output:" blocks

Routes: OpenAI's `/v1/completions` (a prompt or a list of them, `n`, as the legacy `openai<1`
client sends them, also as `/v1/engines/<engine>/completions`), TGI's `/generate`, `/health`,
`/v1/models`, and `/stats` (busy slot-seconds and the span they fall in, for the share of the
endpoints' time used).
Answers are a function of (seed, prompt), never of arrival order. `simulated_servers()` runs
endpoints in a process of their own, so that they do not share the client's interpreter lock.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import random
import re
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from self_instruct.backends.base import cut_at_stop
from self_instruct.testing.local_server import LocalServer, Reply, in_child_process, tgi_error
from self_instruct.testing.scripted_backend import (
    ANGLES,
    OUTPUT_FIRST_TEXT,
    VERBS,
    input_first_text,
)
from self_instruct.testing.tgi_server import tgi_details, tgi_headers

KIND_PREFIXES = (  # the paper's header sentences (ours are the same) and Alpaca's prompt.txt
    ("instructions", "Come up with a series of"),
    ("classification", "Can the following task be regarded as a classification task"),
    ("output_first", "Given the classification task definition and the class labels"),
    ("input_first", "Come up with examples for the following tasks"),
    ("alpaca", "You are asked to come up with a set of 20 diverse task instructions"),
)
LAST_ITEM = {"instructions": 16, "alpaca": 20}  # where the paper's and Alpaca's stops cut lists
_ENGINE_ROUTE = re.compile(r"/v1/engines/[^/]+/completions")
_LIST_END = re.compile(r"(\d+)\.(?: Instruction:)?\s*$")
SYLLABLES = tuple(c + v for c in "bdgklmnprstvz" for v in "aeiou")  # no "f": "file" is banned


@dataclass(frozen=True)
class LatencyModel:
    """Seconds a generation holds a slot: `base` + `per_token` x tokens drawn per prompt kind."""

    base: float = 0.3  # queueing, prefill and the answer's round trip
    per_token: float = 0.01  # one decoding step
    # kind -> (median tokens, sigma of their log): the spread is the long tail
    tokens_law: dict[str, tuple[int, float]] = field(
        default_factory=lambda: {
            "instructions": (150, 0.7),
            "classification": (1, 0.0),
            "output_first": (60, 0.7),
            "input_first": (100, 0.7),
            "alpaca": (1500, 0.5),
            "other": (16, 0.0),
        }
    )

    def tokens(self, kind: str, rng: random.Random, max_tokens: int) -> tuple[int, bool]:
        """Tokens generated, and whether the request's limit cut them."""
        median, sigma = self.tokens_law[kind]
        drawn = max(1, round(median * math.exp(rng.gauss(0.0, sigma))))
        return min(drawn, max_tokens), drawn > max_tokens

    def seconds(self, tokens: int) -> float:
        return self.base + self.per_token * tokens


NEAR_ZERO = LatencyModel(base=0.0, per_token=0.0)  # the client's own ceiling


def prompt_kind(prompt: str) -> str:
    return next((kind for kind, start in KIND_PREFIXES if prompt.startswith(start)), "other")


def pseudo_word(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3)))


def novel_instruction(rng: random.Random) -> str:
    """A verb, five to eight random pseudo-words and an angle: two of them share so few words
    that ROUGE-L keeps nearly all, however many there are."""
    words = " ".join(pseudo_word(rng) for _ in range(rng.randint(5, 8)))
    return f"{rng.choice(VERBS)} the {words} {rng.choice(ANGLES)}"


def _first_item(prompt: str) -> int:
    """The number the prompt's list ends with ("9." or Alpaca's "4. Instruction:")."""
    found = _LIST_END.search(prompt)
    return int(found.group(1)) if found else 1


def instruction_list(prompt: str, rng: random.Random) -> str:
    """The paper's continuation: " item\\n10. item\\n..." up to item 16 (its stop cuts there)."""
    first = _first_item(prompt)
    rest = range(first + 1, LAST_ITEM["instructions"] + 1)
    return f" {novel_instruction(rng)}" + "".join(f"\n{n}. {novel_instruction(rng)}" for n in rest)


def alpaca_list(prompt: str, rng: random.Random) -> str:
    """Alpaca's continuation: `###`-separated instruction / input / output blocks up to 20."""
    first = _first_item(prompt)
    blocks = []
    for n in range(first, LAST_ITEM["alpaca"] + 1):
        given = "<noinput>" if rng.random() < 0.4 else f"case of the {pseudo_word(rng)}"
        answer = f"answer about the {pseudo_word(rng)} {pseudo_word(rng)}"
        blocks.append(
            f"{n}. Instruction: {novel_instruction(rng)}\n{n}. Input:\n{given}\n"
            f"{n}. Output:\n{answer}\n"
        )
    return "###\n".join(blocks)[len(f"{first}. Instruction:") :]


def write(kind: str, prompt: str, rng: random.Random) -> str:
    """The text a model would continue `prompt` with, in its kind's format."""
    if kind == "instructions":
        return instruction_list(prompt, rng)
    if kind == "alpaca":
        return alpaca_list(prompt, rng)
    if kind == "classification":
        return rng.choice((" Yes", " No", " No"))
    if kind == "output_first":
        return OUTPUT_FIRST_TEXT
    if kind == "input_first":
        return input_first_text(rng)
    return f"echo {prompt[-40:]}"


@dataclass
class Generation:
    text: str
    tokens: int
    finish_reason: str  # "length" or "stop", OpenAI's names


@dataclass
class SimulatedApp:
    """One endpoint: `capacity` slots, the latency model, and counters of what it served."""

    latency: LatencyModel = field(default_factory=LatencyModel)
    capacity: int = 64
    stopping: threading.Event = field(default_factory=threading.Event)
    usage: bool = True  # False: OpenAI answers without `usage` (optional in the protocol)

    def __post_init__(self) -> None:
        self._slots = ThreadPoolExecutor(self.capacity, thread_name_prefix="slot")
        self._lock = threading.Lock()
        self.busy_seconds = 0.0  # slot-seconds spent generating
        self.generations = self.requests = self.tokens = 0
        self.first_start = self.last_end = None  # of any generation, in time.time() seconds

    def handle(self, method: str, path: str, body) -> Reply:
        if method == "GET" and path == "/health":
            return Reply(200, b"")
        if method == "GET" and path == "/v1/models":
            return Reply(200, {"object": "list", "data": [{"id": "simulated", "object": "model"}]})
        if method == "GET" and path == "/stats":
            return Reply(200, self.stats())
        if method == "POST" and path == "/generate":
            return self._tgi(body)
        if method == "POST" and (path == "/v1/completions" or _ENGINE_ROUTE.fullmatch(path)):
            return self._completions(body)
        return tgi_error(404, f"no route {method} {path}", "validation")

    def stats(self) -> dict:
        with self._lock:
            return {
                "busy_seconds": self.busy_seconds,
                "first_start": self.first_start,
                "last_end": self.last_end,
                "generations": self.generations,
                "requests": self.requests,
                "tokens": self.tokens,
                "capacity": self.capacity,
            }

    def generate(self, jobs: Sequence[tuple[str, int, Sequence[str], object, int]]):
        """Generations for (prompt, max_tokens, stop, seed, choice index) jobs, each in a slot."""
        with self._lock:
            self.requests += 1
        futures = [self._slots.submit(self._generate, *job) for job in jobs]
        return [future.result() for future in futures]

    def _generate(self, prompt: str, max_tokens: int, stop, seed, index: int) -> Generation:
        rng = random.Random(hashlib.sha256(f"{seed}|{index}|{prompt}".encode()).digest())
        kind = prompt_kind(prompt)
        tokens, cut = self.latency.tokens(kind, rng, max_tokens)
        text, _ = cut_at_stop(write(kind, prompt, rng), stop)
        start, started = time.perf_counter(), time.time()
        if seconds := self.latency.seconds(tokens):
            self.stopping.wait(seconds)
        held = time.perf_counter() - start
        with self._lock:
            self.first_start = min(self.first_start or started, started)
            self.last_end = max(self.last_end or 0.0, started + held)
            self.busy_seconds += held
            self.generations += 1
            self.tokens += tokens
        return Generation(text, tokens, "length" if cut else "stop")

    def _completions(self, body: dict) -> Reply:
        prompts = [body["prompt"]] if isinstance(body["prompt"], str) else body["prompt"]
        n, max_tokens = body.get("n") or 1, body.get("max_tokens") or 16
        stop = body.get("stop") or []
        stop = [stop] if isinstance(stop, str) else stop
        jobs = [(p, max_tokens, stop, body.get("seed"), i) for p in prompts for i in range(n)]
        done = self.generate(jobs)
        choices = [
            {"index": j, "text": g.text, "logprobs": None, "finish_reason": g.finish_reason}
            for j, g in enumerate(done)
        ]
        prompt_tokens = sum(len(p.split()) for p in prompts)
        generated = sum(g.tokens for g in done)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": generated,
            "total_tokens": prompt_tokens + generated,
        }
        answer = {
            "id": "cmpl-simulated",
            "object": "text_completion",
            "created": int(time.time()),
            "model": body.get("model") or "simulated",
            "choices": choices,
        }
        return Reply(200, answer | {"usage": usage} if self.usage else answer)

    def _tgi(self, body: dict) -> Reply:
        parameters = body.get("parameters") or {}
        job = (
            body["inputs"],
            parameters.get("max_new_tokens") or 20,
            parameters.get("stop") or [],
            parameters.get("seed"),
            0,
        )
        [done] = self.generate([job])
        answer: dict = {"generated_text": done.text}
        if parameters.get("details"):
            words = list(enumerate(done.text.split()))
            answer["details"] = tgi_details(parameters, done.tokens, [], words)
        return Reply(200, answer, headers=tgi_headers(len(body["inputs"].split()), done.tokens))


def _serve(connection, endpoints: int, latency: LatencyModel, capacity: int) -> None:
    """Child process: serve `endpoints` apps until the parent says stop."""
    with contextlib.ExitStack() as stack:
        servers = [
            stack.enter_context(LocalServer(SimulatedApp(latency, capacity)))
            for _ in range(endpoints)
        ]
        connection.send([server.url for server in servers])
        connection.recv()


@contextlib.contextmanager
def simulated_servers(
    endpoints: int = 1, latency: LatencyModel | None = None, capacity: int = 64
) -> Iterator[list[str]]:
    """Start `endpoints` simulated servers in a child process; yields their base URLs."""
    with in_child_process(_serve, endpoints, latency or LatencyModel(), capacity) as urls:
        yield urls


@dataclass
class Served:
    """What endpoints served: busy slot-seconds, and the span from the first generation's start
    to the last one's end (seconds; 0 if none)."""

    busy_seconds: float
    span: float


def served(urls: Sequence[str]) -> Served:
    """What the servers at `urls` have served so far, all together."""
    stats = []
    for url in urls:
        with urllib.request.urlopen(f"{url}/stats", timeout=10) as answer:
            stats.append(json.load(answer))
    starts = [s["first_start"] for s in stats if s["first_start"] is not None]
    ends = [s["last_end"] for s in stats if s["last_end"] is not None]
    span = max(ends) - min(starts) if starts else 0.0
    return Served(sum(s["busy_seconds"] for s in stats), span)
