"""Teachers: the OpenAI-compatible client against a real loopback server (429, 500, timeout, dead port), key hygiene,
the disk cache, token/cost accounting, the Anthropic and local-HF teachers, and teacher specs."""

from __future__ import annotations

import logging
import os
import time

import pytest
from http_fakes import FakeChatServer, dead_port

from rrr.curriculum.teachers import (
    AnthropicTeacher,
    HFTeacher,
    OpenAICompatibleTeacher,
    OracleTeacher,
    TeacherError,
    make_teacher,
    price_for,
)
from rrr.tasks import get_task
from rrr.utils.http import EndpointError

KEY_ENV = "RRR_TEST_TEACHER_KEY"
SECRET = "sk-test-SECRET-0123456789"
HELLO = [{"role": "user", "content": "hello"}]


@pytest.fixture
def server():
    with FakeChatServer(hang_seconds=2.0) as s:
        yield s


def openai_teacher(server, tmp_path, **kw) -> OpenAICompatibleTeacher:
    options = dict(api_key_env=KEY_ENV, timeout=1.0, max_retries=3, backoff=0.01, cache_dir=str(tmp_path / "cache"))
    options.update(kw)
    return OpenAICompatibleTeacher(server.base_url, "fake-model", **options)


def files_text(root) -> str:
    """Everything written under ``root`` (bytes decoded leniently), to search for secrets."""
    chunks = []
    for dirpath, _, names in os.walk(root):
        for name in names:
            with open(os.path.join(dirpath, name), "rb") as f:
                chunks.append(f.read().decode("utf-8", "replace"))
    return "\n".join(chunks)


# ------------------------------------------------------------------------------------------------------------------
# Retries, timeouts, dead endpoints
# ------------------------------------------------------------------------------------------------------------------
def test_succeeds_after_a_429_and_a_500(server, tmp_path):
    server.script(429, 500)
    teacher = openai_teacher(server, tmp_path)
    assert teacher.ask([HELLO]) == ["echo: hello"]
    assert len(server.requests) == 3  # 429 -> retry -> 500 -> retry -> 200
    assert all(r["path"] == "/v1/chat/completions" for r in server.requests)
    body = server.requests[-1]["json"]
    assert body["model"] == "fake-model" and body["messages"] == HELLO
    assert body["temperature"] == 0.0 and body["max_tokens"] == 1024
    assert teacher.usage.calls == 1


def test_survives_a_timeout_by_retrying(server, tmp_path):
    server.script("hang")  # the first request hangs past the client's timeout, the retry answers
    teacher = openai_teacher(server, tmp_path, timeout=0.3)
    start = time.time()
    assert teacher.ask([HELLO]) == ["echo: hello"]
    assert time.time() - start < 1.9  # did not wait for the hanging response
    assert len(server.requests) == 2


def test_dead_port_is_one_clear_endpoint_error(tmp_path):
    url = f"http://127.0.0.1:{dead_port()}/v1"
    teacher = OpenAICompatibleTeacher(url, "fake-model", api_key_env=KEY_ENV, backoff=0.01, timeout=1.0)
    with pytest.raises(EndpointError) as info:
        teacher.ask([HELLO])
    message = str(info.value)
    assert f"{url}/chat/completions" in message and "unreachable" in message
    assert info.value.__cause__ is None and "EndpointError" not in message  # one error, not a chain
    assert teacher.usage.calls == 0


def test_a_non_retryable_error_fails_at_once(server, tmp_path):
    server.script(("status", 400, {"error": {"message": "model not found"}}))
    with pytest.raises(EndpointError, match="HTTP 400: model not found"):
        openai_teacher(server, tmp_path).ask([HELLO])
    assert len(server.requests) == 1


def test_malformed_reply_is_an_endpoint_error(server, tmp_path):
    server.script(("status", 200, {"object": "chat.completion", "choices": []}))
    with pytest.raises(EndpointError, match=r"no choices\[0\]"):
        openai_teacher(server, tmp_path).ask([HELLO])


# ------------------------------------------------------------------------------------------------------------------
# API keys
# ------------------------------------------------------------------------------------------------------------------
def test_api_key_is_sent_but_never_cached_logged_or_saved(server, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv(KEY_ENV, SECRET)
    caplog.set_level(logging.DEBUG)
    server.script(429)  # a retry, so the client logs a warning
    teacher = openai_teacher(server, tmp_path)
    assert teacher.ask([HELLO]) == ["echo: hello"]
    assert server.requests[-1]["headers"]["authorization"] == f"Bearer {SECRET}"
    assert any("retrying" in r.getMessage() for r in caplog.records)

    # a server that echoes the key in its error message: the client scrubs it
    server.script(("status", 401, {"error": {"message": f"invalid key {SECRET}"}}))
    with pytest.raises(EndpointError) as info:
        teacher.ask([[{"role": "user", "content": "another"}]])
    assert SECRET not in str(info.value) and "[REDACTED]" in str(info.value)

    # a whole (tiny) curriculum run through this teacher writes artifacts: none holds the key
    from rrr.curriculum.dataset import CurriculumConfig, build_curriculum
    from rrr.curriculum.self_improve import SelfImproveConfig, self_improve

    task = get_task("scheduling")
    examples = task.generate(4, seed=0)
    result = self_improve(task, teacher, examples, str(tmp_path / "stage1"), SelfImproveConfig(2, 2, progress=False))
    # (the echo teacher repeats the prompt, whose last <answer> is "NO": right on half of the balanced problems)
    cur = build_curriculum(
        task, teacher, examples, result.final_strategy, str(tmp_path / "cur"), CurriculumConfig(progress=False)
    )
    assert cur.stats["sft_rows"] >= 1 and os.path.isdir(cur.sft_path)
    assert SECRET not in files_text(tmp_path)
    assert SECRET not in caplog.text
    assert all(SECRET not in str(r.args) for r in caplog.records)
    assert SECRET not in repr(teacher) and SECRET not in str(teacher.usage_report())


def test_no_key_means_no_authorization_header(server, tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    openai_teacher(server, tmp_path).ask([HELLO])
    assert "authorization" not in server.requests[0]["headers"]


# ------------------------------------------------------------------------------------------------------------------
# Cache and accounting
# ------------------------------------------------------------------------------------------------------------------
def test_second_call_hits_the_disk_cache_not_the_server(server, tmp_path):
    first = openai_teacher(server, tmp_path)
    assert first.ask([HELLO]) == ["echo: hello"]
    assert len(server.requests) == 1 and first.usage.calls == 1
    files = [n for _, _, names in os.walk(tmp_path / "cache") for n in names]
    assert len(files) == 1 and files[0].endswith(".json")

    again = openai_teacher(server, tmp_path)  # a new process would look like this: empty memory, same cache dir
    assert again.ask([HELLO]) == ["echo: hello"]
    assert len(server.requests) == 1
    assert again.usage.calls == 0 and again.usage.cache_hits == 1

    hotter = openai_teacher(server, tmp_path, temperature=0.7)  # sampling parameters are part of the key
    hotter.ask([HELLO])
    assert len(server.requests) == 2


def test_cache_identity_names_the_endpoint_and_the_adapter():
    a = OpenAICompatibleTeacher("http://a.example:8000/v1", "m")
    b = OpenAICompatibleTeacher("http://b.example:8000/v1", "m")
    assert a.cache_identity() != b.cache_identity()
    assert AnthropicTeacher("m", base_url="http://a.example").cache_identity()["endpoint"] == "http://a.example"
    assert HFTeacher("m", adapter="runs/lora").cache_identity() != HFTeacher("m").cache_identity()
    task = get_task("scheduling")
    # teachers without an endpoint or adapter keep their old keys (an oracle cache stays valid)
    assert OracleTeacher(task).cache_identity() == {"kind": "oracle", "model": task.name}
    assert HFTeacher("m").cache_identity() == {"kind": "hf", "model": "m"}


def test_duplicates_in_a_batch_are_requested_once(server, tmp_path):
    teacher = openai_teacher(server, tmp_path, concurrency=4)
    prompts = [[{"role": "user", "content": f"q{i % 3}"}] for i in range(6)]
    assert teacher.ask(prompts) == [f"echo: q{i % 3}" for i in range(6)]
    assert len(server.requests) == 3 and teacher.usage.calls == 3 and teacher.usage.cache_hits == 3


def test_a_failed_request_in_a_concurrent_batch_does_not_waste_the_others(server, tmp_path):
    server.script(("status", 400, {"error": {"message": "bad request"}}))  # whichever request comes first
    teacher = openai_teacher(server, tmp_path, concurrency=4)
    prompts = [[{"role": "user", "content": f"q{i}"}] for i in range(4)]
    with pytest.raises(EndpointError, match="bad request"):
        teacher.ask(prompts)
    assert len(server.requests) == 4
    assert teacher.ask(prompts) == [f"echo: q{i}" for i in range(4)]
    assert len(server.requests) == 5  # only the failed one was asked again


def test_tokens_and_cost_are_tallied(server, tmp_path):
    teacher = openai_teacher(server, tmp_path, price_per_mtok=(1.0, 2.0))
    teacher.ask([HELLO, [{"role": "user", "content": "hi"}]])
    # the fake server counts characters: prompts "hello" + "hi", replies "echo: hello" + "echo: hi"
    assert teacher.usage.prompt_tokens == 7
    assert teacher.usage.completion_tokens == len("echo: hello") + len("echo: hi")
    report = teacher.usage_report()
    assert report["estimated_cost_usd"] == pytest.approx((7 * 1.0 + 19 * 2.0) / 1e6, abs=1e-4)
    assert report["calls"] == 2 and report["teacher"] == f"openai:fake-model@{server.base_url}"
    assert openai_teacher(server, tmp_path).estimated_cost_usd() is None  # unknown model, no price given
    assert price_for("gpt-4o-mini-2024-07-18") == (0.15, 0.60) and price_for("openai/gpt-4o") == (2.50, 10.00)
    assert price_for("claude-3-5-haiku-20241022") == (0.80, 4.00) and price_for("my-local-model") is None


# ------------------------------------------------------------------------------------------------------------------
# Other teachers and specs
# ------------------------------------------------------------------------------------------------------------------
def test_anthropic_teacher_speaks_the_messages_api(server, tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    teacher = AnthropicTeacher(
        "claude-3-5-haiku-20241022",
        api_key_env=KEY_ENV,
        base_url=server.root_url,
        backoff=0.01,
        cache_dir=str(tmp_path),
    )
    server.script(529)  # Anthropic's "overloaded" is retried too
    messages = [{"role": "system", "content": "be brief"}, *HELLO]
    assert teacher.ask([messages]) == ["echo: hello"]
    request = server.requests[-1]
    assert request["path"] == "/v1/messages"
    # the SDK owns the wire format: its auth header (x-api-key or a bearer token) and its API version
    headers = request["headers"]
    assert SECRET in (headers.get("x-api-key"), headers.get("authorization", "").removeprefix("Bearer "))
    assert headers.get("anthropic-version")
    assert request["json"]["system"] == "be brief" and request["json"]["messages"] == HELLO
    assert request["json"]["temperature"] == 0.0 and request["json"]["max_tokens"] == 1024
    assert teacher.usage.completion_tokens == len("echo: hello")
    assert teacher.estimated_cost_usd() > 0
    assert SECRET not in files_text(tmp_path)


def test_anthropic_teacher_without_key_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.delenv(KEY_ENV, raising=False)
    teacher = AnthropicTeacher("claude-3-5-haiku-20241022", api_key_env=KEY_ENV, cache_dir=str(tmp_path))
    with pytest.raises(TeacherError, match=KEY_ENV):
        teacher.ask([HELLO])


def test_hf_teacher_runs_a_local_model_lazily(tmp_path):
    from rrr.models import save_tiny_model

    model_dir = save_tiny_model(str(tmp_path / "tiny"))
    teacher = HFTeacher(model_dir, max_tokens=4, cache_dir=str(tmp_path / "cache"))
    assert teacher._generator is None
    texts = teacher.ask([HELLO, [{"role": "user", "content": "hi"}]])
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts)
    assert teacher.usage.calls == 2 and 0 < teacher.usage.completion_tokens <= 8 and teacher.usage.prompt_tokens > 0
    assert teacher.estimated_cost_usd() == 0.0
    cached = HFTeacher(model_dir, max_tokens=4, cache_dir=str(tmp_path / "cache"))
    assert cached.ask([HELLO]) == texts[:1] and cached._generator is None  # never loaded


def test_teacher_specs(monkeypatch, tmp_path):
    task = get_task("scheduling")
    assert isinstance(make_teacher("oracle", task=task), OracleTeacher)
    teacher = make_teacher("openai:Qwen/Qwen2.5-7B-Instruct@http://localhost:8000/v1/", concurrency=2)
    assert isinstance(teacher, OpenAICompatibleTeacher)
    assert (teacher.model, teacher.base_url, teacher.concurrency) == (
        "Qwen/Qwen2.5-7B-Instruct",
        "http://localhost:8000/v1",
        2,
    )
    assert isinstance(make_teacher("anthropic:claude-3-5-haiku-20241022"), AnthropicTeacher)
    assert isinstance(make_teacher("hf:runs/tiny-model"), HFTeacher)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(TeacherError, match="no base URL"):
        make_teacher("openai:gpt-4o-mini")
    monkeypatch.setenv("OPENAI_BASE_URL", "https://api.openai.com/v1")
    assert make_teacher("openai:gpt-4o-mini").base_url == "https://api.openai.com/v1"
    with pytest.raises(TeacherError, match=r"unknown teacher spec 'gpt4'.*oracle"):
        make_teacher("gpt4")
    with pytest.raises(TeacherError, match="needs the task"):
        make_teacher("oracle")
    with pytest.raises(TeacherError, match="http"):
        OpenAICompatibleTeacher("localhost:8000", "m")
    with pytest.raises(TeacherError, match="base_url"):
        OpenAICompatibleTeacher("", "m")
    same = make_teacher(teacher, cache_dir=str(tmp_path))
    assert same is teacher and teacher.cache.directory == str(tmp_path)


def test_oracle_teacher_operations():
    from rrr.curriculum.teachers import SolveResult

    task = get_task("scheduling", strict=True)
    oracle = OracleTeacher(task)
    examples = task.generate(6, seed=1)
    strategy = oracle.initial_strategy(task)
    solutions = oracle.solve_many(task, examples, strategy)
    results = [SolveResult(ex, s, task.verify(ex, s)) for ex, s in zip(examples, solutions)]
    assert all(r.passed for r in results)
    entry = oracle.journal(task, strategy, results)
    assert entry.startswith("Solved 6/6 correctly") and "By difficulty" in entry
    new = oracle.distill(task, entry, strategy)
    assert "start <= t < end" in new and "Checked on 6 training problems" in new
    wrong = "peak: 9\n<answer>NO</answer>"
    lesson = oracle.reflect(task, examples[0], wrong, task.verify(examples[0], wrong))
    assert "I counted a peak of 9" in lesson and not task.leaks_answer(examples[0], lesson)
    assert task.verify(examples[0], oracle.retry(task, examples[0], wrong, lesson)).passed
    assert oracle.usage.calls == 6 + 1 + 1 + 1 + 1 and oracle.spec == "oracle"
