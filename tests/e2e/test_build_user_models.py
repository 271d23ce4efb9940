"""`repcurate build` with the user's own model (PyTorch file:factory, Keras .keras) feeding real MCT PTQ."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from repcurate.example_data import write_digits_folder
from tests.e2e.model_files import TORCH_MODEL_SOURCE, train_digits_cnn

SIZE = 60


@pytest.fixture(scope="module")
def torch_project(tmp_path_factory) -> tuple[Path, Path, Path]:
    work = tmp_path_factory.mktemp("torch_user")
    train = work / "train"
    write_digits_folder(train, per_class=dict.fromkeys(range(10), 40))
    weights = work / "digits.pt"
    train_digits_cnn(weights)
    model_file = work / "digits_model.py"
    model_file.write_text(TORCH_MODEL_SOURCE.format(weights=str(weights)))
    return work, train, model_file


def test_torch_user_model_set_feeds_mct(torch_project, cli):
    import model_compression_toolkit as mct
    import torch
    from sklearn.datasets import load_digits

    import repcurate

    work, train, model_file = torch_project
    out = work / "repset"
    result = cli("build", "--train-dir", str(train), "--out", str(out), "--size", str(SIZE),
                 "--model", f"{model_file}:make_model", "--preprocess", f"{model_file}:preprocess",
                 "--no-cache", "--format", "json")
    assert result.returncode == 0, result.stderr
    repset = repcurate.load(out)
    assert len(repset) == SIZE
    assert repset.tensors.shape == (SIZE, 1, 8, 8)
    assert repset.manifest["model"]["layer"] == "head"
    assert repset.manifest["model"]["embedding_dim"] == 64
    assert repset.manifest["preprocessing"]["spec"] == f"{model_file}:preprocess"

    gen = repset.mct_data_gen(batch_size=16)
    first = [b[0].copy() for b in gen()]
    assert [len(b) for b in first] == [15, 15, 15, 15]
    assert all(np.array_equal(a[0], b) for a, b in zip(gen(), first))

    namespace: dict = {}
    exec(model_file.read_text(), namespace)
    model = namespace["make_model"]()
    tpc = mct.get_target_platform_capabilities(tpc_version="1.0", device_type="imx500")
    q_model, _info = mct.ptq.pytorch_post_training_quantization(model, gen, target_platform_capabilities=tpc)
    digits = load_digits()
    x = torch.tensor(((digits.images / 16.0 - 0.3) / 0.4)[:, None], dtype=torch.float32)
    with torch.no_grad():
        float_pred = model(x).argmax(1).numpy()
        quant_pred = q_model(x).argmax(1).cpu().numpy()
    float_acc = float((float_pred == digits.target).mean())
    agreement = float((quant_pred == float_pred).mean())
    assert float_acc > 0.9
    assert agreement > 0.95


def test_same_seed_same_bytes_without_cache(torch_project, cli):
    work, train, model_file = torch_project
    outs = []
    for name in ("a", "b"):
        out = work / f"det_{name}"
        result = cli("build", "--train-dir", str(train), "--out", str(out), "--size", "25", "--seed", "3",
                     "--model", f"{model_file}:make_model", "--preprocess", f"{model_file}:preprocess",
                     "--strategy", "kcenter", "--no-cache")
        assert result.returncode == 0, result.stderr
        outs.append(out)
    for name in ("manifest.json", "calibration.npz"):
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes()


def test_keras_model_file(tmp_path, cli):
    tf = pytest.importorskip("tensorflow")
    import model_compression_toolkit as mct
    from sklearn.datasets import load_digits

    import repcurate

    tf.keras.utils.set_random_seed(0)
    train = tmp_path / "train"
    write_digits_folder(train, per_class=dict.fromkeys(range(10), 20))
    model = tf.keras.Sequential([
        tf.keras.layers.Input((8, 8, 1)),
        tf.keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
        tf.keras.layers.GlobalAveragePooling2D(name="pool"),
        tf.keras.layers.Dense(10, name="logits"),
    ])
    digits = load_digits()
    model.compile(optimizer="adam", loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit((digits.images / 16.0)[..., None], digits.target, epochs=5, batch_size=64, verbose=0)
    model_path = tmp_path / "digits.keras"
    model.save(model_path)
    (tmp_path / "pre.py").write_text(
        "import numpy as np\nfrom PIL import Image\n"
        "def preprocess(image):\n"
        "    g = image.convert('L').resize((8, 8), Image.BILINEAR)\n"
        "    return (np.asarray(g, dtype=np.float32) / 255.0)[:, :, None]\n")
    out = tmp_path / "repset"
    result = cli("build", "--train-dir", str(train), "--out", str(out), "--size", "30",
                 "--model", str(model_path), "--preprocess", f"{tmp_path / 'pre.py'}:preprocess", "--no-cache",
                 "--format", "json")
    assert result.returncode == 0, result.stderr
    repset = repcurate.load(out)
    assert repset.manifest["model"]["framework"] == "keras"
    assert repset.manifest["model"]["layer"] == "logits:input"
    assert repset.manifest["model"]["embedding_dim"] == 16
    assert repset.tensors.shape == (30, 8, 8, 1)
    tpc = mct.get_target_platform_capabilities(tpc_version="1.0", device_type="imx500")
    q_model, _ = mct.ptq.keras_post_training_quantization(model, repset.mct_data_gen(batch_size=10),
                                                          target_platform_capabilities=tpc)
    assert q_model.predict(repset.tensors[:4], verbose=0).shape == (4, 10)


def test_match_dir_moves_the_set_towards_the_target_domain(torch_project, cli, tmp_path):
    """Target = unseen digits 0–4 only: the curated set must sit closer to it (MMD) than random sets."""
    import repcurate

    _work, train, model_file = torch_project
    target = tmp_path / "device"
    write_digits_folder(target, per_class=dict.fromkeys(range(5), 25), offset=60)
    flat_train = tmp_path / "flat"
    flat_train.mkdir()
    for path in sorted(train.rglob("*.png")):
        (flat_train / f"{path.parent.name}_{path.name}").write_bytes(path.read_bytes())
    out = tmp_path / "matched"
    result = cli("build", "--train-dir", str(flat_train), "--out", str(out), "--size", "40",
                 "--match-dir", str(target), "--model", f"{model_file}:make_model",
                 "--preprocess", f"{model_file}:preprocess", "--no-cache", "--format", "json")
    assert result.returncode == 0, result.stderr
    manifest = repcurate.load(out).manifest
    match = manifest["domain_match"]
    assert match["images"] == 125
    assert match["mmd_curated"] < 0.5 * match["mmd_random"]["mean"]
    assert manifest["layout"] == "flat" and manifest["classes"][0]["label"] is None
    from_target_digits = sum(int(s["path"].split("_")[0]) < 5 for s in manifest["samples"])
    # 40 picks; a random set gives about 20, importance-weighted k-means on the training set gave 24.
    assert from_target_digits >= 28


def test_jsonl_list_input(torch_project, cli, tmp_path):
    import json as jsonlib

    import repcurate

    _work, train, model_file = torch_project
    rows = [{"path": str(p), "label": f"digit-{p.parent.name}"} for p in sorted(train.rglob("*.png"))[:100]]
    rows.append({"path": "missing.png", "label": "digit-0"})
    list_file = tmp_path / "list.jsonl"
    list_file.write_text("\n".join(jsonlib.dumps(r) for r in rows) + "\n")
    out = tmp_path / "from_list"
    result = cli("build", "--train-dir", str(list_file), "--out", str(out), "--size", "20",
                 "--model", f"{model_file}:make_model", "--preprocess", f"{model_file}:preprocess", "--no-cache")
    assert result.returncode == 0, result.stderr
    manifest = repcurate.load(out).manifest
    assert manifest["layout"] == "list"
    assert [s["reason"] for s in manifest["skipped"]] == ["unreadable"]
    assert all(s["label"].startswith("digit-") for s in manifest["samples"])
    assert sum(c["quota"] for c in manifest["classes"]) == 20
