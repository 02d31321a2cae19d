"""The demo's before/after and paired tables (the statistics are ``rrr.evaluation.stats``'s).

Why paired: after RRR the student's *first* attempts change too, so "2nd try before vs after" on two independent
evaluations mixes a change in which problems fail with a change in how well the student recovers. The headline
comparison therefore holds the failures fixed — the SFT student's failed first attempts on held-out problems — and
asks both students to reflect on exactly those attempts; the per-problem differences give a paired interval that is
much narrower than two independent Wilson intervals.
"""

from __future__ import annotations

from rrr.evaluation.stats import pct, pp


def format_tables(results: dict) -> str:
    """The demo's markdown report: the before/after evaluation, the paired headline, and the time per stage."""
    lines: list[str] = []
    evals = results["evaluations"]
    n_test = next(iter(evals.values()))["n"] if evals else 0
    lines += [
        f"### Held-out test set ({n_test} problems, greedy; 2nd try = one reflection + one retry after a failure)",
        "",
        "| student | 1st try | after reflection | failures fixed | majority baseline |",
        "|---|---|---|---|---|",
    ]
    for name, m in evals.items():
        lines.append(
            f"| {name} | {pct(m['first_try'])} | {pct(m['second_try'])} | {pct(m['fix_rate'])} | "
            f"{100 * m['majority_baseline']:.1f} |"
        )
    paired = results.get("paired")
    if paired:
        k = paired["reflection_samples"]
        lines += [
            "",
            f"### Headline: retry pass rate on {paired['n']} frozen held-out failures (the SFT student's failed first "
            "attempts; each student reflects on the same attempts, greedy retry)",
            "",
            f"| reflections by | greedy reflection | T={paired['temperature']:g} reflections ({k} per failure) | "
            "witness is faithful (lists the peak's meetings) | leak rate |",
            "|---|---|---|---|---|",
        ]
        for name, m in paired["students"].items():
            lines.append(
                f"| {name} | {pct(m['greedy'])} | {pct(m['sampled'])} | {pct(m['faithful_witness'])} | "
                f"{pct(m['leak_rate'])} |"
            )
        rule = paired.get("shift_rule")
        if rule:
            lines.append(
                f"| no reflection: best shift rule (failed answer {rule['shift']:+d}, chosen on these failures) | "
                f"{pct(rule)} | | | |"
            )
        lines += [
            "",
            "| paired gain over SFT (pp, 95% CI) | greedy reflection | sampled reflections |",
            "|---|---|---|",
        ]
        for name, g in paired["gains"].items():
            lines.append(f"| {name} | {pp(g['greedy'])} | {pp(g['sampled'])} |")
    verdict = results.get("verdict")
    if verdict:
        lines += ["", f"**{verdict}**"]
    timing = results.get("timing")
    if timing:
        lines += ["", "| stage | seconds |", "|---|---|"]
        lines += [f"| {name} | {sec:.0f} |" for name, sec in timing.items()]
    return "\n".join(lines) + "\n"
