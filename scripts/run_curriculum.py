"""Teacher -> curriculum -> student for one task, measured side by side (the Linguistic RL pipeline, reproducible).

    # offline, CPU: the oracle teacher and the tiny local model (make tiny-model)
    python scripts/run_curriculum.py --task scheduling --teacher oracle --student runs/tiny-model \
        --output-dir runs/curriculum-scheduling
    # a hosted or served teacher; stages 1-2 only, then fine-tune on a GPU with scripts/train_sft.py
    python scripts/run_curriculum.py --task scheduling --task-kwargs '{"strict": true}' \
        --teacher anthropic:claude-3-5-haiku-20241022 --student Qwen/Qwen2.5-1.5B-Instruct \
        --output-dir runs/curriculum-scheduling --skip-sft
    python scripts/run_curriculum.py --task my_pkg.tasks:MyTask --teacher openai:my-model@http://localhost:8000/v1 ...

Teacher specs: oracle | openai:<model>@<base_url> (key from OPENAI_API_KEY) | anthropic:<model> (ANTHROPIC_API_KEY)
| hf:<model name or path>. Prints student baseline, teacher baseline, teacher after self-improvement and student
after SFT on a held-out, answer-balanced test split with 95% CIs and the majority-class baseline; writes
<output-dir>/summary.json and summary.md. Teacher calls are cached: a re-run makes none.

The code is ``rrr.cli.curriculum`` (also ``rrr curriculum``).
"""

import sys

from rrr.cli.curriculum import main

if __name__ == "__main__":
    from rrr.utils.cli import run

    sys.exit(run(main))
