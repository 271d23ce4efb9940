"""The stability analysis as text (the JSON is :meth:`Analysis.to_dict`)."""
from __future__ import annotations

from typing import Any


def text(result: dict[str, Any]) -> str:
    """A short plain-text report of an analysis result dictionary."""
    a = result["analysis"]
    lines = [
        f"verdict: {a['verdict']} (chosen size {a['chosen_size']}; {result['settings']['label']})",
        f"recommended size: {a['recommended_size'] or 'none of the sizes tried'} "
        f"(thresholds identical to the pool's); sufficient size: {a['sufficient_size'] or 'none of the sizes tried'}",
        f"pool: {a['pool']} images, {len(a['points'])} activation quantization points, "
        f"{a['draws_per_size']} random sets per size (seed {a['seed']})",
        "",
        f"{'size':>5}  {'points stable':>13}  {'costly flips':>12}  {'max bias move (steps)':>21}",
    ]
    for row in a["sizes"]:
        costly = sum(1 for v in row["costly_flips"].values() if v and v > 0.05)
        moves = [v for v in row["bias_spread_steps"].values() if v is not None]
        lines.append(f"{row['size']:>5}  {row['stable_points']:>13.0%}  {costly:>12}  "
                     f"{(max(moves) if moves else 0.0):>21.3f}")
    if a["most_flipping"]:
        lines += ["", "points that flip most: " + ", ".join(f"{p['point']} ({p['flip_share']:.0%})"
                                                            for p in a["most_flipping"])]
    built = a.get("built_set")
    if built:
        rnd = built["random_matched_mean"]
        lines += ["", f"built set ({built['size']} images): {built['matched']}/{built['points']} points match the pool's "
                      f"threshold" + (f"; random sets of its size: {rnd} on average "
                                      f"({built['random_matched_min']}..{built['random_matched_max']})" if rnd is not None
                                      else "")]
    lines += ["", f"rule: {a['rule']}",
              f"statistics: {result['statistics_bytes'] / 2**20:.1f} MiB for {result['images']} images; "
              f"collect {result['seconds']['collect']:.1f} s, analyse {result['seconds']['analyse']:.1f} s"]
    return "\n".join(lines) + "\n"
