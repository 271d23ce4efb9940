"""confirm --sizes: nested curated subsets by the build's quota rule, the curve, and the recommendation rule."""
from __future__ import annotations

import pytest

from repcurate.errors import UsageError
from repcurate.sizing import check_sizes, check_sizes_fit, curated_subset, curve, recommend


def _manifest(per_class: dict[str, int], balance: str = "uniform") -> dict:
    samples = [{"label": label, "path": f"{label}/{i}.png"} for label, n in per_class.items() for i in range(n)]
    return {"samples": samples, "parameters": {"balance": balance}}


def test_a_subset_keeps_every_class_and_each_class_s_first_picks():
    manifest = _manifest({"a": 10, "b": 10, "c": 4})
    rows = curated_subset(manifest, 9)
    labels = [manifest["samples"][r]["label"] for r in rows]
    assert sorted(labels) == ["a"] * 3 + ["b"] * 3 + ["c"] * 3  # not a prefix of the set (all of class a)
    assert list(rows) == [0, 1, 2, 10, 11, 12, 20, 21, 22]  # each class's picks in the strategy's order
    assert set(curated_subset(manifest, 9)) <= set(curated_subset(manifest, 15))  # nested
    assert len(curated_subset(manifest, 24)) == 24
    # a class with fewer picks gives all it has; the rest is spread over the others (the build's water-fill)
    assert [manifest["samples"][r]["label"] for r in curated_subset(manifest, 20)].count("c") == 4


def test_proportional_sets_keep_their_proportions():
    manifest = _manifest({"a": 30, "b": 10}, balance="proportional")
    labels = [manifest["samples"][r]["label"] for r in curated_subset(manifest, 8)]
    assert labels.count("a") == 6 and labels.count("b") == 2


@pytest.mark.parametrize("sizes", [[], [0], [16, "32"], "16,32", [True]])
def test_bad_sizes_are_usage_errors(sizes):
    with pytest.raises(UsageError, match="--sizes"):
        check_sizes(sizes, 1.0)


def test_sizes_are_sorted_and_deduplicated_and_must_fit_the_set():
    assert check_sizes([64, 16, 64, 32], 1.0) == [16, 32, 64]
    with pytest.raises(UsageError, match="--tolerance"):
        check_sizes([16], 0.0)
    with pytest.raises(UsageError, match=r"500 is larger than the set \(300 samples.*fix:.*--size 500"):
        check_sizes_fit([16, 500], 300, "repset")


def _run(name, size, top1):
    return {"set": name, "size": size, "bias_correction": True, "settings": {"bias_correction": True},
            "metric": {"top1": top1}}


def _rows(values):
    runs = [_run(name, size, v) for size, by_set in values.items() for name, v in by_set.items()]
    return curve(runs, "top1", lambda a: a["settings"])


def test_the_smallest_size_close_to_the_largest_with_a_narrow_random_band_is_recommended():
    rows = _rows({16: {"curated": 0.50, "random-0": 0.40, "random-1": 0.60},
                  32: {"curated": 0.615, "random-0": 0.58, "random-1": 0.62},   # close, but random spread 4 points
                  64: {"curated": 0.612, "random-0": 0.607, "random-1": 0.612},  # close and steady: the answer
                  128: {"curated": 0.62, "random-0": 0.61, "random-1": 0.615}})
    assert [r["size"] for r in rows] == [16, 32, 64, 128]
    assert rows[0]["random_min"] == 0.40 and rows[0]["random_max"] == 0.60 and rows[0]["random_spread"] == 0.2
    [pick] = recommend(rows, "top1", 1.0, ["bias_correction"])
    assert pick["size"] == 64 and pick["bias_correction"] is True and "within 1 points" in pick["reason"]
    [loose] = recommend(rows, "top1", 5.0, ["bias_correction"])
    assert loose["size"] == 32
    [none] = recommend(_rows({16: {"curated": 0.5, "random-0": 0.4, "random-1": 0.6},
                              32: {"curated": 0.5, "random-0": 0.4, "random-1": 0.6}}), "top1", 1.0, ["bias_correction"])
    assert none["size"] is None and "fix:" in none["reason"]
