"""The analysis against real MCT on a small Fashion-MNIST CNN built and trained here: predicted thresholds and
bias-correction terms equal what MCT's PTQ picks; the verdict separates 2-bit weights with bias correction
("matters") from 8-bit weights ("does not")."""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("model_compression_toolkit")

from repcurate.analysis import mct_thresholds as mt  # noqa: E402
from repcurate.analysis import stability  # noqa: E402
from repcurate.quantize.mct import core_config, target_platform  # noqa: E402

FMNIST = Path("/usr/share/datasets/fashion-mnist")
POOL = 192


def _fashion(n: int) -> tuple[np.ndarray, np.ndarray]:
    if (FMNIST / "train-images-idx3-ubyte.gz").exists():
        with gzip.open(FMNIST / "train-images-idx3-ubyte.gz") as f:
            x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)[:n]
        with gzip.open(FMNIST / "train-labels-idx1-ubyte.gz") as f:
            y = np.frombuffer(f.read(), np.uint8, offset=8)[:n]
    else:  # scikit-learn's bundled digits, upsampled to 28x28
        from sklearn.datasets import load_digits

        digits = load_digits()
        x = np.kron(digits.images[:n], np.ones((3, 3)))[:, None, 2:30, 2:30] * 16
        x = np.pad(x, ((0, 0), (0, 0), (0, 28 - x.shape[2]), (0, 28 - x.shape[3])))
        y = digits.target[:n]
    return ((x.astype(np.float32) / 255 - 0.28) / 0.35), y.astype(np.int64)


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    x, y = _fashion(POOL)
    nn = torch.nn
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 16, 3, stride=2),
                          nn.ReLU(), nn.Flatten(), nn.Linear(16 * 13 * 13, 10))
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(4):
        for i in range(0, POOL, 32):
            opt.zero_grad()
            nn.functional.cross_entropy(model(torch.from_numpy(x[i:i + 32])), torch.from_numpy(y[i:i + 32])).backward()
            opt.step()
    return model.eval(), x


def _core(bits: int) -> object:
    nn = torch.nn
    return core_config(bias_correction=True, weights_bits=bits, kernels=[(nn.Conv2d, "weight"), (nn.Linear, "weight")])


def _collect(model, x, bits):
    return mt.collect(model, (x[i:i + 1] for i in range(len(x))), _core(bits), target_platform(), first=x[:1])


def test_mct_contract_holds_and_catches_a_moved_function(monkeypatch):
    assert mt.check_contract() == []
    moved = dict(mt.MCT_FUNCTIONS)
    path = mt._path("get_activations_qparams")
    moved[path + "_gone"] = moved.pop(path)
    monkeypatch.setattr(mt, "MCT_FUNCTIONS", moved)
    assert any("get_activations_qparams_gone" in p for p in mt.check_contract())
    renamed = {path: ("get_activations_qparams", ("activation_quant_cfg", "stats_container"))}
    monkeypatch.setattr(mt, "MCT_FUNCTIONS", renamed)
    assert any("stats_container" in p for p in mt.check_contract())


def test_predicted_thresholds_and_bias_terms_equal_mct_ptq(trained):
    import model_compression_toolkit as mct

    model, x = trained
    pool = x[:64]
    collected = _collect(model, pool, 2)
    assert len(collected.points) == 4 and len(collected.kernels) == 3
    floats = {n.name: n.get_weights_by_keys("bias") for n in collected.graph.get_topo_sorted_nodes()
              if n.name in {k.name for k in collected.kernels}}
    rng = np.random.default_rng(3)
    differing = set()
    for size in (4, 12, 24):
        subset = sorted(rng.choice(len(pool), size, replace=False).tolist())
        predicted = collected.thresholds(subset)
        terms = collected.bias_terms(subset)

        def gen(subset=subset):
            for i in subset:
                yield [pool[i:i + 1]]

        q_model, _ = mct.ptq.pytorch_post_training_quantization(model, gen, core_config=_core(2),
                                                                target_platform_capabilities=target_platform())
        modules = dict(q_model.named_modules())
        for name, params in predicted.items():
            quantizer = modules[f"{name}_activation_holder_quantizer"].activation_holder_quantizer
            assert float(np.asarray(quantizer.threshold_np).reshape(-1)[0]) == params["threshold"], (size, name)
            assert bool(quantizer.signed) == params["is_signed"]
            differing.add((name, params["threshold"]))
        simulated, final_biases = collected.simulate(subset)
        assert {name: p["threshold"] for name, p in simulated.items()} == {
            name: p["threshold"] for name, p in predicted.items()}
        for name, term in terms.items():
            bias = modules[name].layer.bias.detach().numpy()
            np.testing.assert_allclose(bias, floats[name] - term, rtol=0, atol=1e-6)
            np.testing.assert_allclose(bias, final_biases[name], rtol=0, atol=1e-6)
    assert len(differing) > len(predicted)  # the subsets gave different thresholds somewhere: the test can tell


def test_verdict_separates_2bit_bias_correction_from_8bit(trained):
    model, x = trained
    results = {}
    for bits in (8, 2):
        analysis = stability.analyze(_collect(model, x, bits), sizes=(16, 32, 64), repeats=6, seed=0, chosen=64)
        results[bits] = analysis.to_dict()
    assert results[2]["verdict"] == stability.MATTERS
    assert results[2]["matters"] and not results[8]["matters"]
    assert results[8]["verdict"].startswith("any reasonable set of >= ")
    assert results[8]["sufficient_size"] <= 64
    # same activation thresholds at both weight widths: the difference comes from the bias terms
    assert results[8]["pool_thresholds"] == results[2]["pool_thresholds"]
    moves2 = max(v for row in results[2]["sizes"] for v in row["bias_spread_steps"].values())
    moves8 = max(v for row in results[8]["sizes"] for v in row["bias_spread_steps"].values())
    assert moves2 > stability.HALF_STEP > moves8


def test_simulation_follows_shift_negative_correction(trained):
    """SiLU before a convolution: MCT adds a shift-negative node and shifts the next bias; simulate() predicts
    both (the fast per-point path cannot: the added node has no statistics of its own)."""
    import model_compression_toolkit as mct

    _model, x = trained
    torch.manual_seed(1)
    nn = torch.nn
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.SiLU(), nn.Conv2d(8, 8, 3, stride=2), nn.ReLU(),
                          nn.Flatten(), nn.Linear(8 * 13 * 13, 10)).eval()
    with torch.no_grad():  # MCT shifts only when SiLU's minimum (-0.28) is <= 5 % of the threshold: widen the range
        model[0].weight.mul_(20)
    pool = x[:32]
    collected = _collect(model, pool, 4)
    for subset in ([0, 3, 5, 9, 17, 30], list(range(0, 32, 2))):
        simulated, biases = collected.simulate(subset)

        def gen(subset=subset):
            for i in subset:
                yield [pool[i:i + 1]]

        q_model, _ = mct.ptq.pytorch_post_training_quantization(model, gen, core_config=_core(4),
                                                                target_platform_capabilities=target_platform())
        suffix = "_activation_holder_quantizer"
        actual = {n[:-len(suffix)]: float(np.asarray(m.activation_holder_quantizer.threshold_np).reshape(-1)[0])
                  for n, m in q_model.named_modules() if n.endswith(suffix)}
        assert any("post_add" in name for name in actual)  # MCT did apply shift-negative correction
        assert {name: p["threshold"] for name, p in simulated.items()} == actual
        modules = dict(q_model.named_modules())
        for name, bias in biases.items():
            np.testing.assert_allclose(modules[name].layer.bias.detach().numpy(), bias, rtol=0, atol=1e-6)
