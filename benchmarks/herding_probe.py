"""Probe behind BENCHMARKS.md's "why curation cannot beat the random mean on balanced data".

    python benchmarks/herding_probe.py SIZES BITS      e.g.  python benchmarks/herding_probe.py 32,128 2

Fashion-MNIST arrays and the committed CNN; PTQ through repcurate's MCT quantizer (bias correction on).
Arms: 10 uniform random sets, k-means medoids on the penultimate features, greedy mean matching
(kernel herding with a linear kernel) on the penultimate features and on the per-channel input
means of every conv / linear layer (what MCT's bias correction consumes), 1,024- and 8,192-image
random sets (N = 32 only), and a long-tailed pool (rho = 100): 5 random sets vs class-balanced
herding. Prints one line per arm (top-1 %, distance of the set's activation means to the
population's) and writes herding_probe_SIZES_BITS.json in the current directory.
"""
import json
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import numpy as np
import torch

from benchmarks.fashion_mnist import fashion_arrays
from benchmarks.models import fashion_cnn as fc
from benchmarks.ptq_backend import backend_for
from repcurate.quantize.mct import target_platform
from repcurate.repset import mct_data_gen

logging.getLogger("Model Compression Toolkit").setLevel(logging.ERROR)
torch.set_num_threads(2)

xtr, ytr = fashion_arrays("train")
xte, yte = fashion_arrays("t10k")
Xtr = fc.normalise(xtr)[:, None]
Xte = fc.normalise(xte)[:, None]
model = fc.make_model()
# features: penultimate and per-layer input channel means of every conv/linear
acts: dict[int, np.ndarray] = {}
hooks = []
layers = [m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
def mk(i):
    def hook(mod, inp):
        a = inp[0]
        acts[i] = (a.mean(dim=(2, 3)) if a.ndim == 4 else a).detach().numpy()
    return hook
for i, m in enumerate(layers):
    hooks.append(m.register_forward_pre_hook(mk(i)))
pen, means = [], []
with torch.no_grad():
    for s in range(0, len(Xtr), 2000):
        model(torch.from_numpy(Xtr[s:s+2000]))
        pen.append(acts[len(layers) - 1])
        means.append(np.concatenate([acts[i] for i in range(len(layers))], 1))
for h in hooks:
    h.remove()
pen = np.concatenate(pen)
means = np.concatenate(means)
print("features", pen.shape, means.shape, flush=True)

def herd(F, idx, k):
    """greedy mean matching of rows idx of F, k picks"""
    Fi = F[idx]
    mu = Fi.mean(0)
    S = np.zeros_like(mu)
    chosen = []
    avail = np.ones(len(idx), bool)
    for m in range(k):
        d = (((S[None] + Fi) / (m + 1) - mu) ** 2).sum(1)
        d[~avail] = np.inf
        j = int(np.argmin(d))
        chosen.append(idx[j])
        avail[j] = False
        S += Fi[j]
    return chosen

def per_class(fn, N, F, seed=0):
    out = []
    for c in range(10):
        idx = np.flatnonzero(ytr == c)
        out += fn(F, idx, N // 10 + (1 if c < N % 10 else 0), seed)
    return out

def kmeans_medoids(F, idx, k, seed):
    import faiss
    X = np.ascontiguousarray(F[idx], dtype=np.float32)
    km = faiss.Kmeans(X.shape[1], k, niter=25, seed=seed + 1, verbose=False)
    km.train(X)
    index = faiss.IndexFlatL2(X.shape[1])
    index.add(X)
    _, nearest = index.search(km.centroids, 1)
    return list(dict.fromkeys(int(idx[i]) for i in nearest[:, 0]))

def std(F):
    s = F.std(0)
    s[s == 0] = 1
    return (F - F.mean(0)) / s

def build_arms(N):
    def rng(k):
        return np.random.default_rng([N, k])
    A = {f"random-{k}": list(rng(k).choice(len(ytr), N, replace=False)) for k in range(10)}
    A["kmeans-pen"] = per_class(kmeans_medoids, N, pen / np.linalg.norm(pen, axis=1, keepdims=True))
    A["herd-pen"] = per_class(lambda F, i, k, s: herd(F, i, k), N, pen)
    A["herd-acts"] = per_class(lambda F, i, k, s: herd(F, i, k), N, means)
    A["herd-acts-std"] = per_class(lambda F, i, k, s: herd(F, i, k), N, std(means))
    # global herding (no class quotas), raw activation means
    A["herd-acts-global"] = herd(means, np.arange(len(ytr)), N)
    if N == 32:
        A["all-1024"] = list(rng(99).choice(len(ytr), 1024, replace=False))
        A["all-8192"] = list(rng(98).choice(len(ytr), 8192, replace=False))
    # long-tailed pool (rho=100): random from it vs class-balanced herding inside it
    keep = []
    for c in range(10):
        idx = np.flatnonzero(ytr == c)
        n_c = round(6000 * 100 ** (-c / 9))
        keep += list(np.random.default_rng(c).choice(idx, n_c, replace=False))
    keep = np.array(sorted(keep))
    for k in range(5):
        A[f"lt-random-{k}"] = list(np.random.default_rng([N, 50 + k]).choice(keep, N, replace=False))
    A["lt-herd-acts"] = []
    for c in range(10):
        idx = keep[ytr[keep] == c]
        A["lt-herd-acts"] += herd(means, idx, N // 10 + (1 if c < N % 10 else 0))
    return A

be = backend_for("torch")
tpc = target_platform("imx500:1.0")
fmodel, _ = be.prepare(model)
f_top1 = float((be.outputs(fmodel, Xte).argmax(1) == yte).mean())
print("float", f_top1, flush=True)
results = []
for N in [int(a) for a in sys.argv[1].split(",")]:
    A = build_arms(N)
    for bits in [int(a) for a in sys.argv[2].split(",")]:
        for name, idx in A.items():
            gen = mct_data_gen(Xtr[np.sort(idx)], 32 if len(idx) <= 1024 else 256)
            q, sec = be.quantize(fmodel, gen, bias_correction=True, weights_bits=bits, tpc=tpc)
            t1 = float((be.outputs(q, Xte).argmax(1) == yte).mean())
            mean_err = float(np.linalg.norm(means[idx].mean(0) - means.mean(0)))
            results.append({"N": N, "bits": bits, "arm": name, "top1": t1, "mean_err": mean_err})
            print(N, bits, name, round(t1 * 100, 2), round(mean_err, 4), f"{sec:.1f}s", flush=True)
        r = [x["top1"] for x in results if x["N"] == N and x["bits"] == bits and x["arm"].startswith("random")]
        print(f"== N={N} bits={bits} random {np.mean(r)*100:.2f} ± {np.std(r)*100:.2f} min {min(r)*100:.2f}", flush=True)
json.dump(results, open(f"herding_probe_{sys.argv[1]}_{sys.argv[2]}.json", "w"))
