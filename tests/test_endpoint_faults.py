"""Hostile endpoints on loopback: nothing hangs, nothing crashes with a raw traceback, no key leaks, no bad reply is
cached.

Every test drives rrr's public clients (``OpenAIChatClient``, ``OpenAICompatibleTeacher``, ``AnthropicTeacher``,
``OpenAIGenerator``, ``scripts/evaluate.py``) against a real ``ThreadingHTTPServer`` (``tests/http_fakes.py``) that
drips, truncates, garbles, resets, refuses and echoes the ``Authorization`` header — never by patching the HTTP
stack, so the tests hold whatever client library sits underneath. A client that could hang runs in a thread with a
bound, so a regression fails in seconds instead of hanging the suite.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from http_fakes import FakeChatServer

from rrr.curriculum.teachers import AnthropicTeacher, OpenAICompatibleTeacher
from rrr.generation import SamplingParams
from rrr.generation.openai import OpenAIChatClient, OpenAIGenerator
from rrr.utils.http import EndpointError

ROOT = Path(__file__).resolve().parent.parent
KEY_ENV = "RRR_TEST_FAULT_KEY"
SECRET = "sk-fault-SECRET-9876543210abcdef"
HELLO = [{"role": "user", "content": "hello"}]


@pytest.fixture
def server():
    with FakeChatServer(hang_seconds=5.0, drip_interval=0.5, huge_bytes=20_000_000) as s:
        yield s


def teacher(server, tmp_path, **kw) -> OpenAICompatibleTeacher:
    options = dict(api_key_env=KEY_ENV, timeout=2.0, max_retries=2, backoff=0.01, cache_dir=str(tmp_path / "cache"))
    options.update(kw)
    return OpenAICompatibleTeacher(server.base_url, "fake-model", **options)


def bounded(fn, limit: float):
    """``(result or exception, seconds)`` of ``fn()`` run in a thread; fails the test if it is still running after
    ``limit`` seconds (the thread is a daemon: the server's shutdown ends it)."""
    box: dict = {}

    def run():
        try:
            box["value"] = fn()
        except BaseException as exc:  # returned, so the test can assert on it
            box["value"] = exc

    start = time.monotonic()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(limit)
    elapsed = time.monotonic() - start
    assert not thread.is_alive(), f"still running after {limit}s: no overall deadline"
    return box["value"], elapsed


def cache_files(tmp_path) -> list[str]:
    return [os.path.join(d, n) for d, _, names in os.walk(tmp_path / "cache") for n in names]


def tree_text(root) -> str:
    chunks = []
    for dirpath, _, names in os.walk(root):
        for name in names:
            with open(os.path.join(dirpath, name), "rb") as f:
                chunks.append(name + "\n" + f.read().decode("utf-8", "replace"))
    return "\n".join(chunks)


# ------------------------------------------------------------------------------------------------------------------
# Problem 3: an overall deadline per request
# ------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("action", ["drip", "drip_headers"])
def test_a_dripping_server_cannot_outlast_the_deadline(server, tmp_path, action):
    server.default = action
    result, elapsed = bounded(lambda: teacher(server, tmp_path, timeout=2.0, max_retries=0).ask([HELLO]), 8)
    assert isinstance(result, EndpointError), result
    assert "2s deadline" in str(result) and elapsed < 3.5
    assert cache_files(tmp_path) == []


def test_a_deadline_hit_is_retried_then_one_error(server, tmp_path):
    server.script("drip")  # the first attempt drips past the deadline, the retry answers
    result, elapsed = bounded(lambda: teacher(server, tmp_path, timeout=1.0, max_retries=1).ask([HELLO]), 6)
    assert result == ["echo: hello"] and len(server.requests) == 2 and elapsed < 2.5


def test_the_generator_has_the_same_deadline(server):
    server.default = "drip"
    gen = OpenAIGenerator(server.base_url, "fake-model", api_key_env=KEY_ENV, timeout=1.0, max_retries=0)
    result, elapsed = bounded(lambda: gen.generate([HELLO], SamplingParams(max_new_tokens=4)), 6)
    assert isinstance(result, EndpointError) and "deadline" in str(result) and elapsed < 2.5


# ------------------------------------------------------------------------------------------------------------------
# Problem 3: every transport failure is retried, then one clear error
# ------------------------------------------------------------------------------------------------------------------
TRANSPORT_FAULTS = ["truncate", "invalid_json", "bad_status_line", "disconnect", "reset"]


@pytest.mark.parametrize("action", TRANSPORT_FAULTS)
def test_a_transport_failure_is_retried(server, tmp_path, action):
    server.script(action)
    result, _ = bounded(lambda: teacher(server, tmp_path).ask([HELLO]), 10)
    assert result == ["echo: hello"] and len(server.requests) == 2


@pytest.mark.parametrize("action", TRANSPORT_FAULTS)
def test_a_transport_failure_that_persists_is_one_endpoint_error(server, action):
    server.default = action
    url = f"{server.base_url}/chat/completions"
    client = OpenAIChatClient(server.base_url, KEY_ENV, max_retries=1, backoff=0.01, timeout=2)
    result, _ = bounded(lambda: client.chat(HELLO, model="m", max_tokens=4), 10)
    assert isinstance(result, EndpointError), repr(result)
    assert url in str(result) and "\n" not in str(result) and len(server.requests) == 2
    assert result.__cause__ is None


@pytest.mark.parametrize(
    "usage",
    ["lots", ["a"], 7, None, {"prompt_tokens": "12", "completion_tokens": 3}, {"prompt_tokens": -5}, {}],
)
def test_a_malformed_usage_field_is_unknown_usage_not_a_crash(server, tmp_path, usage):
    server.script(("bad_usage", usage))
    t = teacher(server, tmp_path)
    assert t.ask([HELLO]) == ["echo: hello"]
    assert t.usage.prompt_tokens == 0 and t.usage.completion_tokens >= 0 and t.usage.unknown_usage == 1
    assert t.usage_report()["unknown_usage"] == 1


@pytest.mark.parametrize(
    "reply",
    [
        {"choices": "nope"},
        {"choices": [None]},
        {"choices": [{"message": ["x"]}]},
        {"choices": [{"message": {"content": 5}}]},
        {"choices": [{"message": {"content": [{"type": "text", "text": 3}]}}]},
    ],
)
def test_a_malformed_choice_is_one_clear_error(server, tmp_path, reply):
    server.default = ("status", 200, reply)
    with pytest.raises(EndpointError, match="chat/completions returned"):
        teacher(server, tmp_path).ask([HELLO])
    gen = OpenAIGenerator(server.base_url, "fake-model", api_key_env=KEY_ENV, max_retries=0)
    with pytest.raises(EndpointError, match="unexpected response"):
        gen.generate([HELLO], SamplingParams(max_new_tokens=4))
    assert cache_files(tmp_path) == []


def test_a_reply_that_is_json_but_not_an_object_is_one_clear_error(server):
    server.default = ("status", 200, ["not", "an", "object"])
    with pytest.raises(EndpointError, match="not an object"):
        OpenAIChatClient(server.base_url, KEY_ENV, max_retries=0).chat(HELLO, model="m", max_tokens=4)


def test_tls_to_a_plain_server_and_bad_urls_are_one_clear_error(server):
    with pytest.raises(EndpointError, match="SSL"):
        tls = OpenAIChatClient(f"https://127.0.0.1:{server.port}/v1", KEY_ENV, max_retries=1, backoff=0.01, timeout=2)
        tls.chat(HELLO, model="m", max_tokens=4)
    for url in ("localhost:8000/v1/chat/completions", "ftp://127.0.0.1/x", "file:///etc/passwd"):
        with pytest.raises(EndpointError, match="not an http"):
            OpenAIChatClient(url, KEY_ENV, max_retries=3)


# ------------------------------------------------------------------------------------------------------------------
# Problem 10: a size cap
# ------------------------------------------------------------------------------------------------------------------
def test_a_huge_reply_is_refused_not_buffered_or_cached(server, tmp_path):
    server.default = "huge"  # 20 MB
    result, _ = bounded(lambda: teacher(server, tmp_path).ask([HELLO]), 10)
    assert isinstance(result, EndpointError) and "limit" in str(result)
    assert len(server.requests) == 1  # not worth a retry: the next reply would be as big
    assert cache_files(tmp_path) == []
    gen = OpenAIGenerator(server.base_url, "fake-model", max_retries=0, max_response_bytes=1_000_000)
    with pytest.raises(EndpointError, match="limit"):
        gen.generate([HELLO], SamplingParams(max_new_tokens=4))


def test_a_reply_over_the_cache_cap_is_used_but_not_cached(tmp_path):
    with FakeChatServer(huge_bytes=5_000) as server:
        server.script("huge")
        t = teacher(server, tmp_path)
        t.cache.max_entry_chars = 1_000
        assert t.ask([HELLO]) == ["x" * 5_000]
        assert cache_files(tmp_path) == []
        assert t.ask([HELLO]) == ["echo: hello"] and len(server.requests) == 2


# ------------------------------------------------------------------------------------------------------------------
# Problem 10: the cache key has the endpoint; refusals and empty replies are not cached
# ------------------------------------------------------------------------------------------------------------------
def test_the_cache_is_keyed_by_endpoint(tmp_path):
    with (
        FakeChatServer(reply=lambda body: "from A") as a,
        FakeChatServer(reply=lambda body: "from B") as b,
    ):
        assert teacher(a, tmp_path).ask([HELLO]) == ["from A"]
        assert teacher(b, tmp_path).ask([HELLO]) == ["from B"]  # same model name, same cache dir
        assert len(a.requests) == 1 and len(b.requests) == 1
        again = teacher(a, tmp_path)
        assert again.ask([HELLO]) == ["from A"] and again.usage.cache_hits == 1 and len(a.requests) == 1


@pytest.mark.parametrize("action", ["content_filter", "null_content", "empty"])
def test_refusals_and_empty_replies_are_not_cached(server, tmp_path, action, caplog):
    caplog.set_level(logging.WARNING, logger="rrr.curriculum")
    server.script(action)
    first = teacher(server, tmp_path)
    assert first.ask([HELLO]) == [""]  # a counted empty reply, not an error
    assert cache_files(tmp_path) == []
    assert first.ask([HELLO]) == ["echo: hello"]  # asked again, even by the same teacher
    second = teacher(server, tmp_path)
    assert second.ask([HELLO]) == ["echo: hello"] and second.usage.calls == 0
    assert len(server.requests) == 2
    assert first.usage.empty_replies == 1 and first.usage_report()["empty_replies"] == 1
    assert "not cached" in caplog.text


def test_the_generator_treats_a_refusal_as_an_empty_generation(server):
    server.script("content_filter", "null_content")
    gen = OpenAIGenerator(server.base_url, "fake-model", max_retries=0, max_concurrency=1)
    out = gen.generate([HELLO, HELLO, HELLO], SamplingParams(max_new_tokens=4))
    assert [g.text for g in out] == ["", "", "echo: hello"]


# ------------------------------------------------------------------------------------------------------------------
# Problem 2: keys redacted at the source
# ------------------------------------------------------------------------------------------------------------------
def test_an_echoed_key_reaches_no_warning_exception_or_file(server, tmp_path, monkeypatch, caplog, capsys):
    monkeypatch.setenv(KEY_ENV, SECRET)
    caplog.set_level(logging.DEBUG)
    server.script(("echo_auth", 429), ("echo_auth", 503), ("echo_auth", 429), "echo_auth")  # retried, then 401
    t = teacher(server, tmp_path, max_retries=5)
    with pytest.raises(EndpointError) as info:
        t.ask([HELLO])
    assert server.requests[0]["headers"]["authorization"] == f"Bearer {SECRET}"
    # rrr's warnings (the SDK's own DEBUG lines say "Not retrying" too)
    assert sum("retrying" in r.getMessage() for r in caplog.records if r.name.startswith("rrr")) == 3
    assert "Incorrect API key provided: Bearer [REDACTED]" in str(info.value)
    captured = capsys.readouterr()
    for text in (str(info.value), caplog.text, captured.out, captured.err, tree_text(tmp_path)):
        assert SECRET not in text and "sk-fault" not in text

    monkeypatch.setenv(KEY_ENV, SECRET)
    anthropic = AnthropicTeacher("claude-x", api_key_env=KEY_ENV, base_url=server.root_url, backoff=0.01)
    server.script(("echo_auth", 429), "echo_auth")  # echoes the SDK's auth header (x-api-key or Authorization)
    with pytest.raises(EndpointError) as info:
        anthropic.ask([HELLO])
    headers = server.requests[-1]["headers"]
    assert SECRET in (headers.get("x-api-key"), headers.get("authorization", "").removeprefix("Bearer "))
    assert SECRET not in str(info.value) and SECRET not in caplog.text

    gen = OpenAIGenerator(server.base_url, "fake-model", api_key_env=KEY_ENV, backoff=0.01)
    server.script(("echo_auth", 429), "echo_auth")
    with pytest.raises(EndpointError) as info:
        gen.generate([HELLO], SamplingParams(max_new_tokens=4))
    assert SECRET not in str(info.value) and SECRET not in caplog.text


@pytest.mark.parametrize(
    "reply",
    [
        ("status", 200, {"choices": [], "pad": "x" * 270 + SECRET}),  # quoted in a shape error, cut at 300
        ("status", 401, {"error": {"message": "x" * 290 + SECRET}}),  # an error message, cut at 300
    ],
)
def test_a_key_straddling_a_message_cut_leaves_no_fragment(server, tmp_path, monkeypatch, reply):
    monkeypatch.setenv(KEY_ENV, SECRET)
    server.default = reply
    with pytest.raises(EndpointError) as info:
        teacher(server, tmp_path).ask([HELLO])
    assert "sk-fau" not in str(info.value) and "[REDAC" in str(info.value)


def test_a_reply_that_echoes_the_key_is_not_cached_with_it(tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    with FakeChatServer(reply=lambda body: f"your key is {SECRET}; Bearer tokens go in headers") as server:
        assert teacher(server, tmp_path).ask([HELLO]) == ["your key is [REDACTED]; Bearer tokens go in headers"]
        gen = OpenAIGenerator(server.base_url, "fake-model", api_key_env=KEY_ENV, max_retries=0)
        assert gen.generate([HELLO], SamplingParams(max_new_tokens=4))[0].text.startswith("your key is [REDACTED];")
    assert cache_files(tmp_path) and SECRET not in tree_text(tmp_path)


def test_rrr_log_lines_are_redacted_whoever_logs_them(server, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv(KEY_ENV, SECRET)
    teacher(server, tmp_path).ask([HELLO])  # the key is read (and registered) by the client
    caplog.set_level(logging.DEBUG)
    logging.getLogger("rrr.curriculum").warning("a message quoting %s and Bearer abc123xyz789", SECRET)
    logging.getLogger("rrr.http").warning("x-api-key: %s", "another-value-123456")
    assert SECRET not in caplog.text and "abc123xyz789" not in caplog.text and "another-value" not in caplog.text
    assert caplog.text.count("[REDACTED]") == 3


def test_the_sdk_loggers_are_redacted_too(server, tmp_path, monkeypatch, caplog):
    """The SDKs and their HTTP stack log at DEBUG; whatever they might say about a request, the key is not in it."""
    monkeypatch.setenv(KEY_ENV, SECRET)
    teacher(server, tmp_path).ask([HELLO])
    caplog.set_level(logging.DEBUG)
    for name in ("openai._base_client", "httpx2", "httpcore2.http11"):
        logging.getLogger(name).debug("request headers: {'Authorization': 'Bearer %s'}", SECRET)
    assert SECRET not in caplog.text and caplog.text.count("[REDACTED]") == 3


def test_evaluate_cli_against_an_echoing_endpoint_leaks_no_key(server, tmp_path):
    """The issue's reproduction: ``evaluate.py --base-url`` against an endpoint that echoes ``Authorization`` in
    retried errors (each a warning) and then in a 401: the key is in no output and no file."""
    server.script(*[("echo_auth", 429)] * 5)
    server.default = "echo_auth"
    out = tmp_path / "eval"
    env = {**os.environ, KEY_ENV: SECRET, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, str(ROOT / "scripts" / "evaluate.py"), "--model", "served", "--base-url"]
    argv += [server.base_url, "--api-key-env", KEY_ENV, "--task", "countdown", "--n", "2", "--source", "generated"]
    argv += ["--no-progress", "--output-dir", str(out)]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120, cwd=str(tmp_path))
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert server.requests and server.requests[0]["headers"]["authorization"] == f"Bearer {SECRET}"
    assert proc.stderr.count("retrying") >= 5 and "Incorrect API key provided" in proc.stderr
    assert "Traceback" not in proc.stderr
    for text in (proc.stdout, proc.stderr, tree_text(out), tree_text(tmp_path)):
        assert SECRET not in text and "sk-fault" not in text
