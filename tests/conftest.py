"""Test-wide settings: offline hub, quiet TRL, deterministic seeds."""

import os

# Tiny models gain nothing from intra-op threads, and two threads fighting other processes on a 2-core machine run
# ~10x slower (measured in scripts/bench_rollout.py). Must be set before torch is imported.
os.environ.setdefault("OMP_NUM_THREADS", "1")

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_MODE", "disabled")

# --- No key leaks: every test runs with canary API keys, and the session fails if one shows up anywhere ---------
# Any test that reaches a loopback endpoint sends these keys (clients read them from the environment). After the
# session, every file under pytest's temp directory (each test's output dirs, logs and subprocess transcripts) and
# every captured stdout/stderr/log section is searched for them: redaction is checked everywhere, not only in the
# tests written for it. A real key is never used by the tests (the canaries override it).
CANARY_KEYS = {
    "OPENAI_API_KEY": "sk-rrr-canary-openai-0123456789abcdef",
    "ANTHROPIC_API_KEY": "sk-ant-rrr-canary-anthropic-0123456789abcdef",
}
os.environ.update(CANARY_KEYS)
_LEAKS: dict[str, None] = {}  # ordered set


def _leaked(text: str) -> list[str]:
    return [name for name, key in CANARY_KEYS.items() if key in text]


def pytest_runtest_logreport(report):
    for title, content in report.sections:
        for name in _leaked(content):
            _LEAKS[f"{report.nodeid}: {name} in {title}"] = None
    if report.failed:
        for name in _leaked(report.longreprtext):
            _LEAKS[f"{report.nodeid}: {name} in the failure report"] = None


def pytest_sessionfinish(session, exitstatus):
    factory = getattr(session.config, "_tmp_path_factory", None)
    base = factory.getbasetemp() if factory is not None and factory._basetemp is not None else None
    needles = {name: key.encode() for name, key in CANARY_KEYS.items()}
    if base is not None:
        for root, _dirs, files in os.walk(base):
            for file in files:
                path = os.path.join(root, file)
                try:
                    with open(path, "rb") as f:
                        data = f.read()
                except OSError:
                    continue
                _LEAKS.update((f"{path}: {name}", None) for name, key in needles.items() if key in data)
    if _LEAKS:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        lines = ["API KEY LEAKED (canary keys found; redaction failed):", *_LEAKS]
        if reporter is not None:
            reporter.ensure_newline()
            reporter.write_line("\n".join(lines), red=True, bold=True)
        session.exitstatus = 1
