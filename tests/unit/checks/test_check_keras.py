"""The checks with a Keras model: ``activation_ranges`` through the Keras probe model, and a set
built with a legacy ``.hdf5`` model is embedded again by ``distribution_shift`` / ``duplicates``."""
from __future__ import annotations

import warnings

import pytest

from repcurate.checks.base import Status

ONLY_RANGES = {"skip": ["set_size", "class_coverage", "preprocessing_parity", "duplicates", "distribution_shift"]}
TRAIN_IMAGES = 600


@pytest.fixture(scope="module")
def keras_model(digits):
    """A small Keras MLP on the digits CNN's (1, 8, 8) tensors, trained briefly (seeded); .keras and .hdf5."""
    tf = pytest.importorskip("tensorflow")
    from sklearn.datasets import load_digits

    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential([
        tf.keras.layers.Input((1, 8, 8)),
        tf.keras.layers.Flatten(name="flat"),
        tf.keras.layers.Dense(32, activation="relu", name="hidden"),
        tf.keras.layers.Dense(10, name="logits"),
    ])
    data = load_digits()
    x = ((data.images[:TRAIN_IMAGES] / 16.0 - 0.3) / 0.4)[:, None].astype("float32")
    model.compile(optimizer="adam", loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, data.target[:TRAIN_IMAGES], epochs=3, batch_size=64, verbose=0)
    paths = {suffix: digits.work / f"digits_mlp{suffix}" for suffix in (".keras", ".hdf5")}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="You are saving your model as an HDF5 file")  # on purpose
        for path in paths.values():
            model.save(path)
    return paths


def test_keras_activation_ranges(digits, good_set, keras_model, by_id):
    """Layers are named by Keras, and the 0/1-only set clips more than the balanced one."""
    biased_set = digits.build("zeros_and_ones", digits.folder("zeros_and_ones", part="train", classes={0, 1}), size=120)
    model = str(keras_model[".keras"])
    good = by_id(digits.check(good_set, model=model, config=ONLY_RANGES), "activation_ranges")
    biased = by_id(digits.check(biased_set, model=model, config=ONLY_RANGES), "activation_ranges")
    assert good.status is not Status.ERROR and biased.status is not Status.ERROR, (good.message, biased.message)
    assert {r["layer"] for r in biased.details["layers"]} == {"flat", "hidden", "logits"}
    assert biased.status in {Status.WARN, Status.FAIL} and biased.value > good.value


def test_set_built_with_an_hdf5_model_is_embedded_again(digits, keras_model, by_id):
    """The manifest records the .hdf5 path; the checks that need embeddings must reload it (they
    used to skip: only .keras / .h5 were recognised)."""
    repset = digits.build("hdf5", size=100, model=str(keras_model[".hdf5"]))
    result = digits.check(repset, config={"skip": ["activation_ranges"]})
    shift, duplicates = by_id(result, "distribution_shift"), by_id(result, "duplicates")
    assert shift.status is Status.PASS, shift.message
    assert duplicates.status is Status.PASS and "not checked" not in duplicates.message
