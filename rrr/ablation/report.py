"""The ablation's outputs: one markdown table, the same as JSON, and a PNG a person can read at a glance."""

from __future__ import annotations

import os
from dataclasses import asdict

from rrr.utils.io import atomic_write_json, atomic_write_text

LABELS = {
    "base": "base (no training)",
    "sft": "SFT (teacher curriculum)",
    "rrr": "RRR GRPO",
    "sft_rrr": "SFT → RRR",
    "outcome": "outcome GRPO (same tokens)",
    "reflection_sft": "reflection SFT (own)",
    "reflection_dpo": "reflection DPO (own)",
}


def _pct(m) -> str:
    if not m:
        return "–"
    lo, hi = m["ci"]
    return f"{100 * m['acc']:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"


def table(results: dict) -> str:
    head = "| arm | 1st try % [95% CI] | 2nd try % [95% CI] | gain (pp) | steps | generated tokens | wall (s) |"
    lines = [head, "|---|---|---|---|---|---|---|"]
    baseline = None
    for arm, r in results.items():
        m = r.get("eval") or {}
        baseline = m.get("majority_baseline", baseline)
        gain = f"+{100 * m['gain']['acc']:.1f}" if m else "–"
        note = f" ({r['skipped']})" if r.get("skipped") else ""
        tokens = r.get("generated_tokens")
        lines.append(
            f"| {LABELS.get(arm, arm)}{note} | {_pct(m.get('first_try'))} | {_pct(m.get('second_try'))} | {gain} | "
            f"{r.get('steps', '–')} | {int(tokens) if tokens is not None else '–'} | {r.get('wall_seconds', '–')} |"
        )
    if baseline is not None:
        lines.append(f"\nMajority-class baseline (always the most common answer): {100 * baseline:.1f}%")
    return "\n".join(lines) + "\n"


def plot(results: dict, path: str, title: str) -> None:
    """Grouped bars: 1st and 2nd try per arm with 95% CIs; the majority baseline as a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = [a for a, r in results.items() if r.get("eval")]
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(arms) + 2), 4.5))
    width = 0.38
    for k, (key, colour) in enumerate((("first_try", "#8fb3d9"), ("second_try", "#1f5f99"))):
        accs = [100 * results[a]["eval"][key]["acc"] for a in arms]
        los = [acc - 100 * results[a]["eval"][key]["ci"][0] for a, acc in zip(arms, accs)]
        his = [100 * results[a]["eval"][key]["ci"][1] - acc for a, acc in zip(arms, accs)]
        xs = [i + (k - 0.5) * width for i in range(len(arms))]
        ax.bar(
            xs,
            accs,
            width,
            yerr=[los, his],
            capsize=3,
            color=colour,
            label="1st try" if k == 0 else "2nd try (after reflection)",
        )
        for x, acc in zip(xs, accs):
            ax.text(x, acc + 1, f"{acc:.0f}", ha="center", va="bottom", fontsize=8)
    baseline = next(
        (results[a]["eval"].get("majority_baseline") for a in arms if "majority_baseline" in results[a]["eval"]), None
    )
    if baseline is not None:
        ax.axhline(100 * baseline, ls="--", color="grey", lw=1, label="majority baseline")
    ax.set_xticks(range(len(arms)))
    ax.set_xticklabels([LABELS.get(a, a) for a in arms], rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 105)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    tmp = path + ".tmp.png"
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, path)


def write_report(config, results: dict) -> dict:
    out = config.output_dir
    text = table(results)
    title = f"{config.task} · {config.model} · n_test={config.n_test}"
    atomic_write_text(os.path.join(out, "ablation.md"), f"# Ablation: {title}\n\n{text}")
    report = {"config": asdict(config), "arms": results}
    atomic_write_json(os.path.join(out, "ablation.json"), report)
    plot(results, os.path.join(out, "ablation.png"), title)
    report["table"] = text
    return report
