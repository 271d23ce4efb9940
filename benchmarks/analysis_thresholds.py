"""Does ``repcurate analyze`` predict the thresholds MCT's PTQ picks? Validation on real models.

    python benchmarks/analysis_thresholds.py [--models fashion-cnn,tiny-yolo] [--pool 64] [--sets 5]
        [--weights-bits 8] [--out benchmarks/results/analysis_thresholds.json]

For each model: one float pass of MCT's statistics collector over a seeded pool (Fashion-MNIST training images
for the Fashion-MNIST CNN, generated composites for the bundled detector), then for ``--sets`` seeded random
subsets (sizes spread over 8…pool): the thresholds the analysis predicts (:mod:`repcurate.analysis`) against
those of a real ``mct.ptq.pytorch_post_training_quantization`` run fed the same subset one image per batch, read
back from the quantized model's activation quantizers; and each corrected kernel's bias against the float bias
minus the predicted correction term. Reports the share of points predicted exactly, within one power-of-two
step, the largest bias difference, and the time of the analysis (collection + per-subset thresholds) vs PTQ.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _fashion_cnn(pool: int, seed: int) -> tuple[Any, np.ndarray]:
    from PIL import Image

    from benchmarks.fashion_mnist import fashion_arrays, load_model_file

    module = load_model_file("torch")
    images, _labels = fashion_arrays("train")
    idx = np.random.default_rng(seed).choice(len(images), pool, replace=False)
    x = np.stack([module.preprocess(Image.fromarray(images[i]).convert("RGB")) for i in idx]).astype(np.float32)
    return module.make_model().eval(), x


def _tiny_yolo(pool: int, seed: int) -> tuple[Any, np.ndarray]:
    from PIL import Image

    from repcurate.example_detection import compose_split
    from repcurate.models import tiny_yolo

    composites = compose_split("train", pool, seed=seed)
    x = np.stack([tiny_yolo.preprocess(Image.fromarray(c.image)) for c in composites]).astype(np.float32)
    return tiny_yolo.make_model().eval(), x


def _score(actual: dict[str, Any], predicted: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Points whose MCT threshold equals the prediction, within one power-of-two step, and the others."""
    exact = within = 0
    mismatches = []
    for point, quantizer in actual.items():
        got = float(np.asarray(getattr(quantizer, "threshold_np", np.nan)).reshape(-1)[0])
        want = predicted.get(point, {}).get("threshold")
        if want is not None and want == got:
            exact += 1
            within += 1
            continue
        step = abs(math.log2(want / got)) if want and got and want > 0 and got > 0 else math.inf
        within += step <= 1
        mismatches.append({"point": point, "predicted": want, "mct": got})
    return {"exact": exact, "within": within, "mismatches": mismatches}


MODELS = {"fashion-cnn": _fashion_cnn, "tiny-yolo": _tiny_yolo}


def validate(name: str, *, pool: int, sets: int, weights_bits: int, seed: int) -> dict[str, Any]:
    import model_compression_toolkit as mct
    import torch

    from repcurate.analysis import mct_thresholds as mt
    from repcurate.frameworks.torch_rewrite import make_mct_compatible
    from repcurate.quantize.mct import core_config, target_platform

    model, x = MODELS[name](pool, seed)
    model, _ = make_mct_compatible(model)
    tpc = target_platform("imx500:1.0")

    def core() -> Any:
        return core_config(bias_correction=True, weights_bits=weights_bits,
                           kernels=[(torch.nn.Conv2d, "weight"), (torch.nn.Linear, "weight")])

    started = time.perf_counter()
    collected = mt.collect(model, (x[i:i + 1] for i in range(len(x))), core(), tpc, first=x[:1])
    collect_s = time.perf_counter() - started
    floats = {k.name: collected._nodes[k.name].get_weights_by_keys("bias") for k in collected.kernels}
    rng = np.random.default_rng(seed + 1)
    sizes = np.linspace(8, pool, sets).round().astype(int).tolist()
    rows, predict_s, simulate_s, ptq_s = [], 0.0, 0.0, 0.0
    for size in sizes:
        subset = sorted(rng.choice(pool, size, replace=False).tolist())
        started = time.perf_counter()
        predicted = collected.thresholds(subset)
        terms = collected.bias_terms(subset)
        predict_s += time.perf_counter() - started
        started = time.perf_counter()
        simulated, final_biases = collected.simulate(subset)
        simulate_s += time.perf_counter() - started

        def gen(subset: list[int] = subset) -> Any:
            for i in subset:
                yield [x[i:i + 1]]

        started = time.perf_counter()
        q_model, _ = mct.ptq.pytorch_post_training_quantization(model, gen, core_config=core(),
                                                                target_platform_capabilities=tpc)
        ptq_s += time.perf_counter() - started
        modules = dict(q_model.named_modules())
        suffix = "_activation_holder_quantizer"
        actual = {n[:-len(suffix)]: m.activation_holder_quantizer for n, m in modules.items() if n.endswith(suffix)}
        fast = _score(actual, predicted)
        full = _score(actual, simulated)
        bias_diff = max((float(np.max(np.abs(modules[k].layer.bias.detach().numpy() - (floats[k] - t))))
                         for k, t in terms.items() if k in modules and modules[k].layer.bias is not None), default=0.0)
        full_bias_diff = max((float(np.max(np.abs(modules[k].layer.bias.detach().numpy() - b)))
                              for k, b in final_biases.items() if k in modules and modules[k].layer.bias is not None),
                             default=0.0)
        rows.append({"size": size, "points": len(actual), "exact": fast["exact"], "within_one_step": fast["within"],
                     "max_bias_abs_diff": bias_diff, "mismatches": fast["mismatches"],
                     "simulated_exact": full["exact"], "simulated_within_one_step": full["within"],
                     "simulated_max_bias_abs_diff": full_bias_diff, "simulated_mismatches": full["mismatches"]})
    total = sum(r["points"] for r in rows)
    return {"model": name, "pool": pool, "weights_bits": weights_bits, "tpc": "imx500:1.0", "bias_correction": True,
            "points_per_model": rows[0]["points"], "kernels_corrected": len(collected.kernels),
            "exact_share": round(sum(r["exact"] for r in rows) / total, 4),
            "within_one_step_share": round(sum(r["within_one_step"] for r in rows) / total, 4),
            "max_bias_abs_diff": max(r["max_bias_abs_diff"] for r in rows),
            "simulated_exact_share": round(sum(r["simulated_exact"] for r in rows) / total, 4),
            "simulated_within_one_step_share": round(sum(r["simulated_within_one_step"] for r in rows) / total, 4),
            "simulated_max_bias_abs_diff": max(r["simulated_max_bias_abs_diff"] for r in rows),
            "statistics_bytes": collected.nbytes(), "seconds": {"collect": round(collect_s, 2),
                                                                "predict_all_sets": round(predict_s, 2),
                                                                "simulate_all_sets": round(simulate_s, 2),
                                                                "ptq_all_sets": round(ptq_s, 2)},
            "sets": rows}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="fashion-cnn,tiny-yolo")
    parser.add_argument("--pool", type=int, default=64)
    parser.add_argument("--sets", type=int, default=5)
    parser.add_argument("--weights-bits", type=int, default=8, choices=(8, 4, 2))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/analysis_thresholds.json"))
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(2)
    results = [validate(m, pool=args.pool, sets=args.sets, weights_bits=args.weights_bits, seed=args.seed)
               for m in args.models.split(",")]
    args.out.write_text(json.dumps({"command": "python benchmarks/" + Path(__file__).name + " " + " ".join(argv or sys.argv[1:]),
                                    "results": results}, indent=1) + "\n")
    for r in results:
        print(f"{r['model']}: fast path {r['exact_share']:.1%} exact, {r['within_one_step_share']:.1%} within one step; "
              f"simulated {r['simulated_exact_share']:.1%} exact, bias diff {r['simulated_max_bias_abs_diff']:.2e} "
              f"({r['points_per_model']} points x {len(r['sets'])} sets); max bias diff {r['max_bias_abs_diff']:.2e}; "
              f"{r['seconds']}")


if __name__ == "__main__":
    main()
