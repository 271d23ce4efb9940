"""A quantizer is its module plus one ``register()`` line: the command line offers every registered quantizer and
its weight widths, with no list of its own to edit."""
from __future__ import annotations

import pytest

from repcurate.quantize import registry
from repcurate.quantize.onnxruntime import ORTQuantizer
from repcurate_cli.main import make_parser

ARGS = ["confirm", "--repset", "set", "--model", "model.py:make_model", "--eval-dir", "val"]


class ThrowawayQuantizer(ORTQuantizer):
    """A quantizer registered only by this test (ONNX Runtime's behaviour, another name and weight width)."""

    name = "throwaway"
    weight_bits = (8, 6)


@pytest.fixture
def throwaway():
    registry.register(ThrowawayQuantizer())
    yield
    registry.REGISTRY.pop("throwaway")


def test_a_registered_quantizer_and_its_weight_width_are_cli_choices(throwaway):
    args = make_parser().parse_args([*ARGS, "--quantizer", "throwaway", "--weights-bits", "6"])
    assert (args.quantizer, args.weights_bits) == ("throwaway", 6)
    assert registry.get(args.quantizer).name == "throwaway"


def test_an_unregistered_quantizer_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        make_parser().parse_args([*ARGS, "--quantizer", "throwaway"])
    assert exc.value.code == 2 and "throwaway" in capsys.readouterr().err
