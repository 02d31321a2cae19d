"""Evaluation and failure mining: metrics agree with samples, resume, comparison, backends, bad input."""

from __future__ import annotations

import json
import math
import os
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from rrr.evaluation import EvalConfig, EvaluationError, evaluate, load_results, make_generator, summarize
from rrr.evaluation.stats import pass_at_k, wilson_interval
from rrr.generation.openai import OpenAIGenerator
from rrr.models import save_tiny_model
from rrr.tasks import get_task
from rrr.tasks.countdown import solve
from rrr.utils.io import read_jsonl

SMALL = dict(attempt_max_tokens=12, reflection_max_tokens=8, retry_max_tokens=12, source="generated")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return save_tiny_model(str(tmp_path_factory.mktemp("models") / "tiny"))


def run_cli(argv):
    import importlib.util

    spec = importlib.util.spec_from_file_location("evaluate_cli", os.path.join("scripts", "evaluate.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.main(argv)


# ------------------------------------------------------------------------------------------------------------------
def test_wilson_and_pass_at_k_known_values():
    lo, hi = wilson_interval(5, 10)
    assert lo == pytest.approx(0.2366, abs=1e-3) and hi == pytest.approx(0.7634, abs=1e-3)
    assert wilson_interval(0, 20)[0] == 0.0 and wilson_interval(20, 20)[1] == 1.0
    assert pass_at_k(10, 0, 3) == 0.0 and pass_at_k(10, 10, 1) == 1.0
    assert pass_at_k(4, 1, 1) == pytest.approx(0.25)
    assert pass_at_k(4, 1, 2) == pytest.approx(1 - math.comb(3, 2) / math.comb(4, 2))


def test_results_agree_with_samples_and_resume_skips_finished(tiny, tmp_path):
    gen, _ = make_generator(tiny, "hf")
    cfg = EvalConfig(task="scheduling", n=12, **SMALL)
    out = str(tmp_path / "eval")
    first = evaluate(gen, cfg, out, model_name="tiny", progress=False)
    rows = read_jsonl(os.path.join(out, "samples.jsonl"))
    assert len(rows) == 12
    task = get_task("scheduling")
    examples = [dict(ex) for ex in task.load(split="test", n=12, source="generated")]
    baselines = {"majority_baseline": 0.5, "surface_baseline": task.surface_baseline(examples)}
    assert first["metrics"] == json.loads(json.dumps(summarize(rows) | baselines))
    assert first["metrics"]["verifier_errors"] == 0 and first["metrics"]["verifications"] >= 12
    with open(os.path.join(out, "results.md")) as f:
        assert "surface baseline" in f.read()
    m = first["metrics"]
    assert m["second_try"]["k"] == m["first_try"]["k"] + m["gain"]["k"]
    assert set(m["per_difficulty"]) == {"easy", "medium", "hard"}
    assert os.path.exists(os.path.join(out, "results.md"))

    # an interrupted run: results.json missing, half the samples written -> the rerun only evaluates the rest
    os.remove(os.path.join(out, "results.json"))
    with open(os.path.join(out, "samples.jsonl"), "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows[:5])
    again = evaluate(gen, cfg, out, model_name="tiny", progress=False)
    assert again["timing"]["examples_evaluated_now"] == 7 and again["timing"]["resumed"] == 5
    assert again["metrics"] == first["metrics"]  # greedy: the same answers

    with pytest.raises(EvaluationError, match="different evaluation"):
        evaluate(gen, EvalConfig(task="scheduling", n=6, **SMALL), out, model_name="tiny", progress=False)


def test_pass_at_k_columns(tiny, tmp_path):
    gen, _ = make_generator(tiny, "hf")
    res = evaluate(gen, EvalConfig(task="countdown", n=4, num_samples=4, **SMALL), None, progress=False)
    assert set(res["metrics"]["pass_at_k"]) == {"pass@1", "pass@2", "pass@4"}


def test_cli_compares_two_models_side_by_side(tiny, tmp_path, capsys):
    other = save_tiny_model(str(tmp_path / "models" / "other"), seed=1)
    out = tmp_path / "eval"  # not tmp_path: <out>/other would be the model's own directory, which rrr refuses
    argv = ["--model", tiny, other, "--task", "countdown", "--n", "4", "--no-progress", "--output-dir", str(out)]
    argv += ["--attempt-max-tokens", "8", "--reflection-max-tokens", "8", "--retry-max-tokens", "8"]
    argv += ["--source", "generated"]
    assert run_cli(argv) == 0
    table = capsys.readouterr().out
    assert table.count("| countdown |") == 2
    assert run_cli(["--compare", str(out / "tiny"), str(out / "other")]) == 0
    assert capsys.readouterr().out.count("| countdown |") == 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--model", "/nonexistent/model"], "does not exist"),
        (["--model", "TINY", "--adapter", "ADAPTER"], "does not fit"),
        (["--model", "TINY", "--source", "COLUMNLESS"], "needs columns"),
        (["--model", "served", "--base-url", "http://127.0.0.1:9/v1"], "unreachable"),
    ],
)
def test_bad_input_is_one_clear_error(tiny, tmp_path, capsys, argv, message):
    if "ADAPTER" in argv:
        from peft import LoraConfig, get_peft_model

        from rrr.models import build_tiny_model

        bigger = build_tiny_model(hidden_size=32, num_layers=1)
        get_peft_model(bigger, LoraConfig(r=2, target_modules=["q_proj"])).save_pretrained(str(tmp_path / "adapter"))
    columnless = tmp_path / "rows.jsonl"
    columnless.write_text('{"question": "1+1"}\n')
    argv = [a.replace("TINY", tiny).replace("ADAPTER", str(tmp_path / "adapter")) for a in argv]
    argv = [str(columnless) if a == "COLUMNLESS" else a for a in argv]
    out = tmp_path / "out"
    start = time.time()
    code = run_cli([*argv, "--task", "countdown", "--n", "2", "--no-progress", "--output-dir", str(out)])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (out / "results.json").exists()
    assert time.time() - start < 30


# ------------------------------------------------------------------------------------------------------------------
# OpenAI-compatible backend against a real HTTP server on loopback
# ------------------------------------------------------------------------------------------------------------------
class CountdownServer(BaseHTTPRequestHandler):
    """Answers wrong on the first attempt and right (via the task's solver) once a reflection is in context."""

    requests: ClassVar[list[dict]] = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        messages = body["messages"]
        numbers = re.search(r"\[([\d, ]+)\]", messages[0]["content"])
        target = re.search(r"equals (\d+)", messages[0]["content"])
        nums = [int(x) for x in numbers.group(1).split(",")]
        if len(messages) == 1:
            text = "<answer>1 + 1</answer>"
        elif messages[-1]["content"].lower().startswith(("your", "the", "that")) and len(messages) == 3:
            text = "I used the wrong numbers; I must use each given number once."
        else:
            text = f"<answer>{solve(nums, int(target.group(1)))}</answer>"
        payload = json.dumps({"choices": [{"message": {"content": text}, "finish_reason": "stop"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def countdown_server():
    CountdownServer.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), CountdownServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def test_openai_backend_first_try_vs_second_try(countdown_server, tmp_path, monkeypatch):
    from rrr.tasks import get_task

    prompt = get_task("countdown").attempt_prompt({"nums": [1, 2, 3], "target": 6})
    assert "[1, 2, 3]" in prompt and "equals 6" in prompt, "the fake server parses the real prompt"
    monkeypatch.setenv("MY_KEY", "sk-test-123")
    gen = OpenAIGenerator(countdown_server, "served-model", api_key_env="MY_KEY")
    res = evaluate(gen, EvalConfig(task="countdown", n=6, source="generated"), str(tmp_path / "e"), progress=False)
    m = res["metrics"]
    assert m["first_try"]["acc"] == 0.0 and m["second_try"]["acc"] == 1.0 and m["fix_rate"]["acc"] == 1.0
    assert all(
        r["auth"] == "Bearer sk-test-123" and r["path"] == "/v1/chat/completions" for r in CountdownServer.requests
    )
    assert "sk-test-123" not in (tmp_path / "e" / "results.json").read_text()
    assert load_results(str(tmp_path / "e"))["model"] == "model"


# ------------------------------------------------------------------------------------------------------------------
# Failure mining feeds the trainer
# ------------------------------------------------------------------------------------------------------------------
def test_mined_failures_train_with_column_first_attempts(tiny, tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("mine_cli", os.path.join("scripts", "mine_failures.py"))
    mine = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mine)
    out = str(tmp_path / "failures")
    argv = ["--model", tiny, "--task", "scheduling", "--n", "12", "--k", "2", "--max-tokens", "8", "--no-progress"]
    assert mine.main([*argv, "--source", "generated", "--output-dir", out]) == 0
    report = json.loads(Path(out, "mining_report.json").read_text())
    assert report["kept"] == 12 and set(report["per_difficulty"]) == {"easy", "medium", "hard"}

    from trl import ModelConfig

    from rrr.training import RRRConfig, train

    args = RRRConfig(
        output_dir=str(tmp_path / "run"),
        task="scheduling",
        dataset_source=out,
        first_attempt_source="column",
        max_completion_length=4,
        retry_max_tokens=4,
        num_generations=2,
        per_device_train_batch_size=4,
        max_steps=1,
        use_cpu=True,
        bf16=False,
        gradient_checkpointing=False,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
    )
    summary = train(args, ModelConfig(model_name_or_path=tiny))
    assert summary["global_step"] == 1
    episodes = read_jsonl(os.path.join(args.output_dir, "episodes.jsonl"))
    stored = {r["failed_attempt"] for r in read_jsonl_dataset(out)}
    assert episodes and all(e["first_attempt"] in stored for e in episodes)


def read_jsonl_dataset(path):
    import datasets

    return list(datasets.load_from_disk(path))


def test_resume_refuses_samples_of_retrained_weights(tmp_path):
    from rrr.evaluation import evaluate_model

    model = save_tiny_model(str(tmp_path / "m"))
    out = str(tmp_path / "eval")
    evaluate_model(model, "scheduling", n=2, output_dir=out, progress=False, backend="hf", **SMALL)
    save_tiny_model(model, seed=5)  # retrained in place: same path, new weights
    with pytest.raises(EvaluationError, match="different evaluation"):
        evaluate_model(model, "scheduling", n=2, output_dir=out, progress=False, backend="hf", **SMALL)


# ------------------------------------------------------------------------------------------------------------------
# Frozen failures: several students on the same failed attempts
# ------------------------------------------------------------------------------------------------------------------
def test_frozen_failures_come_from_an_evaluation_and_every_student_scores_the_same_ones(tiny, tmp_path):
    from rrr.evaluation.frozen import FrozenConfig, load_frozen_failures, paired_gains, score_on_frozen
    from rrr.evaluation.stats import paired_difference
    from rrr.tasks import get_task

    task = get_task("scheduling")
    gen, _ = make_generator(tiny, "hf")
    cfg = EvalConfig(task="scheduling", n=10, **SMALL)
    out = str(tmp_path / "eval")
    evaluate(gen, cfg, out, model_name="tiny", progress=False)
    examples = [dict(ex) for ex in task.load(split="test", n=10, seed=0, source="generated")]
    failed, attempts = load_frozen_failures(os.path.join(out, "samples.jsonl"), examples, task)
    rows = [r for r in read_jsonl(os.path.join(out, "samples.jsonl")) if not r["attempt_passed"]]
    assert [task.example_id(ex) for ex in failed] == [r["id"] for r in rows] and attempts == [
        r["attempt"] for r in rows
    ]

    frozen = FrozenConfig(reflection_max_tokens=8, retry_max_tokens=12, samples=3, temperature=1.0)
    scores = {name: score_on_frozen(task, gen, failed, attempts, frozen) for name in ("a", "b")}
    for s in scores.values():
        assert len(s.greedy) == len(s.sampled) == len(failed) and len(s.leaked) == 3 * len(failed)
        assert all(v in (0.0, 1.0 / 3, 2.0 / 3, 1.0) for v in s.sampled)
        assert [r["attempt"] for r in s.sample_rows("x")] == attempts  # the frozen attempts, not new ones
    # the greedy score on a student's own failures is its evaluation's fix rate
    assert sum(scores["a"].greedy) == sum(r["retry_passed"] for r in rows)
    assert paired_gains(scores, reference="a")["b"]["greedy"] == paired_difference(
        scores["b"].greedy, scores["a"].greedy
    )

    with pytest.raises(ValueError, match="not among the given examples"):
        load_frozen_failures(os.path.join(out, "samples.jsonl"), examples[:1], task)
    with pytest.raises(FileNotFoundError, match="evaluate the reference student first"):
        load_frozen_failures(str(tmp_path / "nope.jsonl"), examples, task)
    with pytest.raises(ValueError, match="temperature > 0"):
        FrozenConfig(samples=2, temperature=0.0)


def test_paired_difference_interval():
    from rrr.evaluation.stats import paired_difference

    same = paired_difference([1, 0, 1, 0], [1, 0, 1, 0])
    assert same["diff"] == 0 and same["ci"] == [0, 0] and not same["significant"]
    better = paired_difference([1.0] * 30 + [0.0] * 10, [0.0] * 30 + [0.0] * 10)
    assert better["diff"] == 0.75 and better["ci"][0] > 0.6 and better["significant"]
    with pytest.raises(ValueError, match="differ in length"):
        paired_difference([1], [1, 0])


def test_a_frozen_failure_that_now_passes_is_one_clear_error():
    from rrr.evaluation.frozen import FrozenConfig, score_on_frozen
    from rrr.generation import HFGenerator
    from rrr.models import build_tiny_model, build_tiny_tokenizer
    from rrr.tasks import get_task

    task = get_task("scheduling")
    (ex,) = task.generate(1, seed=0)
    tok = build_tiny_tokenizer()
    with pytest.raises(ValueError, match="pass the verifier now"):
        score_on_frozen(
            task, HFGenerator(build_tiny_model(tok), tok), [ex], [task.reference_answer(ex)], FrozenConfig()
        )
