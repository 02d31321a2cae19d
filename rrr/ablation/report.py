"""The ablation's outputs: one markdown table, the same as JSON, and a PNG a person can read at a glance."""

from __future__ import annotations

import os
from dataclasses import asdict

from rrr.evaluation.stats import pct, pp
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
            f"| {LABELS.get(arm, arm)}{note} | {pct(m.get('first_try'))} | {pct(m.get('second_try'))} | {gain} | "
            f"{r.get('steps', '–')} | {int(tokens) if tokens is not None else '–'} | {r.get('wall_seconds', '–')} |"
        )
    if baseline is not None:
        lines.append(f"\nMajority-class baseline (always the most common answer): {100 * baseline:.1f}%")
    return "\n".join(lines) + "\n"


def frozen_table(frozen: dict) -> str:
    """Each arm's retry pass rate on the base model's frozen failures, and its paired difference from base."""
    samples, temperature = frozen["settings"]["samples"], frozen["settings"]["temperature"]
    sampled = samples > 0
    key = "sampled" if sampled else "greedy"
    head = "| arm | greedy reflection % | " + (f"T={temperature:g} reflections (x{samples}) % | " if sampled else "")
    head += "paired gain over base (pp) | leak rate % |"
    lines = [
        f"Retry pass rate on the base model's {frozen['n']} failed first attempts on the test set (every arm "
        "reflects on the same attempts; greedy retry):",
        "",
        head,
        "|---|---|" + ("---|" if sampled else "") + "---|---|",
    ]
    notes = []
    for arm, m in frozen["arms"].items():
        gain = (m.get("gain_vs_base") or {}).get(key)
        lines.append(
            f"| {LABELS.get(arm, arm)} | {pct(m['greedy'])} | "
            + (f"{pct(m['sampled'])} | " if sampled else "")
            + f"{pp(gain) if arm != 'base' else '(reference)'} | {pct(m['leak_rate'])} |"
        )
        start = m.get("gain_vs_start")
        if start:
            notes.append(f"{LABELS.get(arm, arm)} over {LABELS.get(start['start'], start['start'])}: {pp(start[key])}")
    text = "\n".join(lines) + "\n"
    if notes:
        text += "\nPaired gain over the model the arm started from (pp): " + "; ".join(notes) + ".\n"
    return text


def plot(results: dict, path: str, title: str, frozen: dict | None = None) -> None:
    """Grouped bars: 1st and 2nd try per arm with 95% CIs; the majority baseline as a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = [a for a, r in results.items() if r.get("eval")]
    width_in = max(6, 1.6 * len(arms) + 2)
    if frozen:
        fig, (ax, ax2) = plt.subplots(1, 2, figsize=(width_in + 5, 4.5), gridspec_kw={"width_ratios": [3, 2]})
    else:
        fig, ax = plt.subplots(figsize=(width_in, 4.5))
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
    if frozen:
        _plot_gains(ax2, frozen)
    fig.tight_layout()
    tmp = path + ".tmp.png"
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, path)


def _plot_gains(ax, frozen: dict) -> None:
    """Horizontal bars: each arm's paired gain over base on the frozen failures, with its 95% interval."""
    key = "sampled" if frozen["settings"]["samples"] else "greedy"
    arms = [a for a, m in frozen["arms"].items() if (m.get("gain_vs_base") or {}).get(key)]
    gains = [frozen["arms"][a]["gain_vs_base"][key] for a in arms]
    ys = list(range(len(arms)))[::-1]
    values = [100 * g["diff"] for g in gains]
    errors = [
        [v - 100 * g["ci"][0] for v, g in zip(values, gains)],
        [100 * g["ci"][1] - v for v, g in zip(values, gains)],
    ]
    colours = ["#2e8b57" if g["ci"][0] > 0 else "#c0392b" if g["ci"][1] < 0 else "#999999" for g in gains]
    ax.barh(ys, values, xerr=errors, capsize=3, color=colours)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(ys)
    ax.set_yticklabels([LABELS.get(a, a) for a in arms], fontsize=8)
    ax.set_xlabel("paired gain over base (pp, 95% CI)")
    ax.set_title(f"fixing the base model's {frozen['n']} frozen failures", fontsize=10)


def write_report(config, results: dict, frozen: dict | None = None) -> dict:
    out = config.output_dir
    text = table(results)
    if frozen:
        text += "\n" + frozen_table(frozen)
    title = f"{config.task} · {config.model} · n_test={config.n_test}"
    atomic_write_text(os.path.join(out, "ablation.md"), f"# Ablation: {title}\n\n{text}")
    report = {"config": asdict(config), "arms": results, "frozen": frozen}
    atomic_write_json(os.path.join(out, "ablation.json"), report)
    plot(results, os.path.join(out, "ablation.png"), title, frozen)
    report["table"] = text
    return report
