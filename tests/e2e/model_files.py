"""The example models the tests use: the digits CNN of examples/confirm_digits.py and the planted-problem
CNNs of examples/doctor_models.py, and the digits folders + set the quantization tests run them on."""
import importlib.util
from pathlib import Path

import repcurate
from repcurate.example_data import write_digits_folder

_spec = importlib.util.spec_from_file_location(
    "repcurate_example_confirm_digits", Path(__file__).resolve().parents[2] / "examples" / "confirm_digits.py")
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)

TORCH_MODEL_SOURCE = _module.MODEL_SOURCE
train_digits_cnn = _module.train_digits_cnn
train_digits_keras = _module.train_digits_keras
write_model = _module.write_model

_doctor_spec = importlib.util.spec_from_file_location(
    "repcurate_example_doctor_models", Path(__file__).resolve().parents[2] / "examples" / "doctor_models.py")
doctor_models = importlib.util.module_from_spec(_doctor_spec)
_doctor_spec.loader.exec_module(doctor_models)
write_doctor_variant = doctor_models.write_variant


def write_digits_project(work: Path, model: str, preprocess: str, *, train_per_class: int, eval_per_class: int,
                         set_size: int) -> None:
    """``work/train`` and ``work/eval`` (held-out digits, by writer) and ``work/repset`` built from the
    training folder with ``model`` / ``preprocess`` (no embedding cache)."""
    write_digits_folder(work / "train", per_class=dict.fromkeys(range(10), train_per_class))
    write_digits_folder(work / "eval", per_class=dict.fromkeys(range(10), eval_per_class), offset=train_per_class)
    repcurate.build(work / "train", work / "repset", size=set_size, model=model, preprocess=preprocess,
                    use_cache=False, progress=False)
