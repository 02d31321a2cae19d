"""The shared episode code on a real tiny model: phases, groups, retries, stored attempts, leak penalty."""

import pytest

from rrr.episode import EpisodeConfig, run_episodes
from rrr.generation import HFGenerator, SamplingParams
from rrr.models import build_tiny_model, build_tiny_tokenizer
from rrr.tasks import get_task
from rrr.tasks.scheduling import SchedulingTask


@pytest.fixture(scope="module")
def generator():
    tok = build_tiny_tokenizer()
    return HFGenerator(build_tiny_model(tok), tok)


def config(**kw):
    base = dict(
        attempt=SamplingParams(6, 1.0),
        reflection=SamplingParams(5, 1.0),
        retry=SamplingParams(6, 0.7),
        reflections_per_failure=3,
        retries_per_reflection=2,
    )
    return EpisodeConfig(**{**base, **kw})


def test_groups_retries_and_stored_attempts(generator):
    task = get_task("scheduling")
    examples = task.generate(4, seed=3)
    stored = [task.reference_answer(examples[0]), "<answer>MAYBE</answer>", None, None]
    episodes = run_episodes(task, generator, examples, config(), first_attempts=stored)
    solved, failed = episodes[0], episodes[1]
    assert solved.first_try_passed and solved.solved_without_reflection and solved.reflections == []
    assert failed.attempt.text == "<answer>MAYBE</answer>" and failed.attempt.generation is None
    for ep in episodes[1:]:  # the random model fails its sampled attempts too
        assert len(ep.reflections) == 3
        assert all(len(o.retries) == 2 and len(o.verdicts) == 2 for o in ep.reflections)
        # every reflection in a group saw the same failed attempt: that is what makes it a GRPO group
        prompts = {tuple(o.reflection.prompt_ids) for o in ep.reflections}
        assert len(prompts) == 1
        assert 0.0 <= ep.reflections[0].reward <= 1.0
        assert ep.no_signal == (len({o.reward for o in ep.reflections}) == 1)


def test_first_attempt_tries_resample_until_a_failure(generator):
    class AlwaysPass(SchedulingTask):
        def verify(self, example, completion):
            from rrr.tasks import Verdict

            return Verdict(True, "ok")

    task = AlwaysPass()
    eps = run_episodes(task, generator, task.generate(2, seed=0), config(first_attempt_tries=3))
    assert all(len(ep.attempts) == 3 and ep.solved_without_reflection for ep in eps)


def test_leak_penalty_is_subtracted(generator):
    class Leaky(SchedulingTask):
        def leaks_answer(self, example, reflection):
            return True

    task = Leaky()
    ex = task.generate(1, seed=1)
    eps = run_episodes(task, generator, ex, config(leak_penalty=0.5), first_attempts=["<answer>MAYBE</answer>"])
    for o in eps[0].reflections:
        assert o.leaked and o.reward == pytest.approx(o.success_rate - 0.5)


def test_config_rejects_impossible_settings():
    with pytest.raises(ValueError, match="retry temperature"):
        EpisodeConfig(retry=SamplingParams(4, 0.0), retries_per_reflection=2)
    with pytest.raises(ValueError, match="reflections_per_failure"):
        EpisodeConfig(reflections_per_failure=0)
    with pytest.raises(ValueError):
        SamplingParams(0)


def test_trained_tiny_model_keeps_its_tokenizer(tmp_path):
    """Saved by a trainer (no marker file), the char-level tokenizer must still round-trip spaces and newlines."""
    from rrr.models import load_tokenizer

    tok = build_tiny_tokenizer()
    build_tiny_model(tok).save_pretrained(str(tmp_path))  # config.json says qwen2, as after training
    tok.save_pretrained(str(tmp_path))
    loaded = load_tokenizer(str(tmp_path))
    text = "peak: 2\n<answer>YES</answer> ok"
    assert loaded.decode(loaded(text)["input_ids"]) == text
