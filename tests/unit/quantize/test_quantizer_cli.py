"""A quantizer is its module plus one ``register()`` line: the command line offers every registered quantizer, its
weight widths and its settings-grid axes, and ``repcurate confirm`` runs it, with no list of its own to edit.

The throwaway quantizer below is real (it rounds every kernel to N bits per tensor, to nearest or down) and is
registered by the test alone; ``confirm`` runs in this process (``repcurate_cli.main.main``), where it is registered.
"""
from __future__ import annotations

import copy
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytest

import repcurate
from repcurate.errors import UsageError
from repcurate.example_data import write_digits_folder
from repcurate.frameworks.base import Framework
from repcurate.quantize import registry
from repcurate.quantize.base import DataGen, GridAxis, settings_grid
from repcurate_cli.main import main, make_parser
from tests.unit.embed.engine_testdata import write_engine_project

ARGS = ["confirm", "--repset", "set", "--model", "model.py:make_model", "--eval-dir", "val"]


@dataclass(frozen=True)
class RoundingSettings:
    """Kernel bits and how a weight is rounded onto the grid."""

    weights_bits: int = 8
    rounding: str = "nearest"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def label(self) -> str:
        return f"{self.weights_bits}-bit kernels, rounded {self.rounding}"


class RoundingQuantizer:
    """Weight-only fake quantization of a PyTorch model: every Conv/Linear kernel symmetric per tensor at
    ``weights_bits``, rounded to the nearest grid step or down (``floor``, a biased rounding)."""

    name = "rounding"
    axes = (GridAxis("rounding", {"nearest": "nearest", "floor": "floor"}, "the rounding quantizer's grid: nearest, "
                     "floor (default: both)", metavar="MODES"),)
    weight_bits = (8, 4, 3)
    base_fields = ("weights_bits",)

    def settings(self, **fields: Any) -> RoundingSettings:
        settings = RoundingSettings(**fields)
        if settings.weights_bits not in self.weight_bits or settings.rounding not in ("nearest", "floor"):
            raise UsageError(f"rounding: {settings} is not a setting it offers")
        return settings

    def grid(self, base: RoundingSettings, axes: Mapping[str, Sequence[Any]] | None = None) -> list[RoundingSettings]:
        return settings_grid(self, base, axes)

    def prepare(self, framework: Framework, model: Any) -> tuple[Any, list[str]]:
        import torch

        if not isinstance(model, torch.nn.Module):
            raise UsageError("the rounding quantizer needs a PyTorch model; fix: pass --quantizer mct")
        return model.eval(), []

    def quantize(self, framework: Framework, model: Any, data_gen: DataGen,
                 settings: RoundingSettings) -> tuple[Any, float]:
        import torch

        started = time.perf_counter()
        quantized = copy.deepcopy(model)
        steps = 2 ** (settings.weights_bits - 1) - 1
        round_ = torch.round if settings.rounding == "nearest" else torch.floor
        with torch.no_grad():
            for layer in quantized.modules():
                if isinstance(layer, (torch.nn.Conv2d, torch.nn.Linear)):
                    scale = layer.weight.abs().max().clamp_min(1e-12) / steps
                    layer.weight.copy_(round_(layer.weight / scale).clamp(-steps, steps) * scale)
        return quantized, max(time.perf_counter() - started, 1e-6)

    def export_suffix(self, framework: Framework) -> str:
        return ".pt"

    def require_exporter(self, framework: Framework) -> None:
        return None

    def export(self, framework: Framework, q_model: Any, path: Path, data_gen: DataGen) -> None:
        import torch

        torch.save(q_model.state_dict(), path)


@pytest.fixture
def rounding():
    registry.register(RoundingQuantizer())  # the one line a new quantizer adds to quantize/registry.py
    yield
    registry.REGISTRY.pop("rounding")


def test_a_registered_quantizer_its_weight_width_and_its_axis_are_cli_options(rounding):
    args = make_parser().parse_args([*ARGS, "--quantizer", "rounding", "--weights-bits", "3", "--rounding", "Floor"])
    assert (args.quantizer, args.weights_bits, args.rounding) == ("rounding", 3, ("floor",))
    assert registry.get(args.quantizer).name == "rounding"


def test_an_unregistered_quantizer_and_its_axis_are_usage_errors(capsys):
    for extra in (["--quantizer", "rounding"], ["--rounding", "floor"]):
        with pytest.raises(SystemExit) as exc:
            make_parser().parse_args([*ARGS, *extra])
        assert exc.value.code == 2 and "rounding" in capsys.readouterr().err


def test_confirm_runs_a_registered_quantizer_over_its_own_grid(rounding, tmp_path, capsys):
    train, model, preprocess = write_engine_project(tmp_path, per_class=4)
    write_digits_folder(tmp_path / "eval", per_class=dict.fromkeys(range(3), 4), offset=10)
    repcurate.build(train, tmp_path / "set", size=6, model=model, preprocess=preprocess, use_cache=False,
                    progress=False, device="cpu")
    confirm = ["confirm", "--repset", str(tmp_path / "set"), "--model", model, "--preprocess", preprocess,
               "--eval-dir", str(tmp_path / "eval"), "--train-dir", str(train), "--random-sets", "1", "--no-first-n",
               "--quantizer", "rounding", "--weights-bits", "3", "--device", "cpu", "--no-cache", "--format", "json"]
    with pytest.raises(SystemExit) as shown:
        main(["confirm", "--help"])
    help_text = capsys.readouterr().out
    assert shown.value.code == 0 and "--rounding MODES" in help_text and "the rounding quantizer's grid" in help_text

    assert main([*confirm, "--rounding", "nearest,floor", "--output", str(tmp_path / "confirm.json")]) == 0
    report = json.loads((tmp_path / "confirm.json").read_text(encoding="utf-8"))
    assert report["settings"]["quantizer"] == "rounding" and report["settings"]["weights_bits"] == 3
    assert report["settings"]["options"]["rounding"] == ["nearest", "floor"]
    runs = {(arm["set"], arm["rounding"]): arm for arm in report["arms"]}
    assert set(runs) == {(s, r) for s in ("curated", "random-0") for r in ("nearest", "floor")}
    assert all(arm["settings"] == {"rounding": arm["rounding"]} for arm in report["arms"])
    assert [row["rounding"] for row in report["summary"]] == ["nearest", "floor"]
    for arm_set in ("curated", "random-0"):
        nearest, floor = runs[(arm_set, "nearest")]["metric"], runs[(arm_set, "floor")]["metric"]
        sqnr = next(key for key in nearest if key.startswith("sqnr_db"))
        assert nearest[sqnr] > floor[sqnr] + 1.0, "rounding down is biased: its outputs are further from the float model's"

    assert main([*confirm, "--bias-correction", "on"]) == 2  # another quantizer's axis: a usage error naming it
    assert "--bias-correction (bias_correction) is not a setting of the rounding quantizer" in capsys.readouterr().err
