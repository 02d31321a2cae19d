"""Two processes whose data differ make the same generation calls, and train only their own completions.

Each rank holds different items (``LockstepTask``: an easy item passes every attempt and is resampled, a hard one
fails), so the ranks differ in their number of failures, of reflection rows and of first-attempt rounds. Without
lockstep the ranks make different numbers of calls of different sizes: under TRL's vLLM server mode rank 1 then
trains on rank 0's completions (or the run hangs), under ZeRO-3 / FSDP the parameter gathers deadlock.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import warnings

import pytest
from fake_vllm_server import FakeVLLMServer, completion_for

from rrr.models import build_tiny_tokenizer, save_tiny_model

HERE = os.path.dirname(os.path.abspath(__file__))


#: A rank that dies in native code with this message (std::terminate on a still-joinable C++ thread) was seen once in
#: about ten runs on a loaded 2-core machine, with no Python traceback from either rank. It is outside what these
#: tests check (a deadlock still fails by timeout, a wrong pairing still fails its assertions), so such a run is
#: repeated once, with a warning; a second abort fails the test.
NATIVE_ABORT = "terminate called without an active exception"


class NativeAbort(Exception):
    """A rank aborted in native code (see ``NATIVE_ABORT``)."""


def run_two_ranks(
    tmp_path, mode: str, model_dir: str, server: str | None = None, timeout: int = 300, attempt: int = 0
) -> list[dict]:
    out = tmp_path / f"{mode}{attempt or ''}"
    out.mkdir()
    with socket.socket() as sock:  # a free port, so concurrent runs do not meet at the default 29500
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port)]
    cmd += [os.path.join(HERE, "lockstep_worker.py"), "--mode", mode, "--model", model_dir, "--out", str(out)]
    if server:
        cmd += ["--server", server]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the two ranks did not finish in {timeout} s: out of step in a collective (deadlock)")
    if result.returncode != 0 and NATIVE_ABORT in result.stderr:
        raise NativeAbort(result.stderr[-4000:])
    assert result.returncode == 0, result.stderr[-4000:]
    return [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]


def once_more_on_native_abort(run):
    """``run(attempt)``, repeated once (attempt 1) if a rank aborted in native code; a second abort fails."""
    try:
        return run(0)
    except NativeAbort as exc:
        warnings.warn(f"a rank aborted in native code; running the two ranks once more:\n{exc}", stacklevel=2)
    try:
        return run(1)
    except NativeAbort as exc:
        pytest.fail(f"a rank aborted in native code twice:\n{exc}")


def calls(record: dict) -> list[tuple]:
    """What must be identical on every rank: each agreement's result and each call's phase and size."""
    keep = []
    for e in record["log"]:
        if e["kind"] == "agree":
            keep.append(("agree", e["result"]))
        elif e["kind"] == "generate":
            keep.append(("generate", e["max_new_tokens"], e["sent"]))
    return keep


def per_step(record: dict, key) -> dict[int, object]:
    """A statistic of each rollout (training step) of one rank."""
    return {e["step"]: key(e) for e in record["log"] if e["kind"] == "rollout"}


ATTEMPT_TOKENS, REFLECTION_TOKENS, RETRY_TOKENS = 5, 4, 3  # the worker's budgets: they tell the phases apart


def attempt_rounds(record: dict) -> list[int]:
    """First-attempt rounds each rank *needed* per rollout: attempt calls with local rows (an easy item passes and is
    resampled; a rank holding only hard items is done after one round)."""
    rounds, current = [], 0
    for e in record["log"]:
        if e["kind"] == "generate" and e["max_new_tokens"] == ATTEMPT_TOKENS and e["local"] > 0:
            current += 1
        if e["kind"] == "rollout":
            rounds.append(current)
            current = 0
    return rounds


def assert_data_differed(ranks: list[dict]) -> None:
    """The scenario under test really happened: ranks differed in failures and in local rows sent."""
    failures = [per_step(r, lambda e: sum(not s for s in e["skipped"])) for r in ranks]
    assert any(failures[0][s] != failures[1][s] for s in failures[0]), failures
    assert any(0 in (failures[0][s], failures[1][s]) and failures[0][s] != failures[1][s] for s in failures[0]), (
        f"no step where one rank had nothing to reflect on while the other had: {failures}"
    )
    local = [[(e["local"]) for e in r["log"] if e["kind"] == "generate"] for r in ranks]
    assert local[0] != local[1], "the ranks generated the same local rows: the data did not differ"
    rounds = [attempt_rounds(r) for r in ranks]
    assert rounds[0] != rounds[1], f"the ranks needed the same first-attempt rounds every step: {rounds}"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_model(str(tmp_path_factory.mktemp("lockstep") / "tiny"))


@pytest.mark.slow
def test_two_ranks_with_different_data_stay_in_lockstep_with_hf_generate(tmp_path, model_dir):
    ranks = once_more_on_native_abort(lambda attempt: run_two_ranks(tmp_path, "hf", model_dir, attempt=attempt))
    assert_data_differed(ranks)
    assert calls(ranks[0]) == calls(ranks[1]), "the ranks made different generation calls"
    assert ranks[0]["steps"] == ranks[1]["steps"] == 4


@pytest.mark.slow
def test_two_ranks_train_only_their_own_completions_under_trl_server_mode(tmp_path, model_dir):
    tok = build_tiny_tokenizer()
    vocab = [tok.convert_tokens_to_ids(c) for c in "abcdefgh"]

    def run(attempt):  # a fresh server per attempt: it counts the requests of one run only
        with FakeVLLMServer(vocab, tok.eos_token_id) as server:
            ranks = run_two_ranks(tmp_path, "server", model_dir, server=server.base_url, attempt=attempt)
            return ranks, list(server.request_sizes)

    ranks, sizes = once_more_on_native_abort(run)
    assert_data_differed(ranks)
    assert calls(ranks[0]) == calls(ranks[1]), "the ranks made different generation calls"
    # one server request per call, carrying both ranks' equally padded rows
    sent = [e["sent"] for e in ranks[0]["log"] if e["kind"] == "generate" and e["sent"] > 0]
    assert sizes == [2 * n for n in sent]
    trained = 0
    for record in ranks:
        for e in (e for e in record["log"] if e["kind"] == "rollout"):
            rows = zip(e["prompt_ids"], e["completion_ids"], e["skipped"], e["logprobs"])
            for prompt, completion, skipped, logprobs in rows:
                if skipped:
                    continue
                # the reflection the rank trains on was generated for this rank's own reflection prompt
                assert completion == completion_for(prompt, vocab, tok.eos_token_id, REFLECTION_TOKENS)
                assert logprobs == [-0.5] * len(completion)
                trained += 1
    assert trained > 0
    assert ranks[0]["steps"] == ranks[1]["steps"] == 4


@pytest.mark.slow
def test_outcome_budget_counts_every_rank_and_ranks_stop_together(tmp_path, model_dir):
    ranks = once_more_on_native_abort(lambda attempt: run_two_ranks(tmp_path, "outcome", model_dir, attempt=attempt))
    total = ranks[0]["local_tokens"] + ranks[1]["local_tokens"]
    for r in ranks:
        assert r["generated"] == pytest.approx(total), "the budget must count the tokens of every rank"
    assert ranks[0]["steps"] == ranks[1]["steps"]
    assert total >= 200
