"""The doctor and analyze take MCT from the quantizer registry (``get("mct")``), and their settings and weight
widths from it: a quantizer registered in its place is the one they offer and validate against."""
from __future__ import annotations

import pytest

import repcurate
from repcurate.errors import UsageError
from repcurate.quantize import registry
from repcurate.quantize.mct import MCTQuantizer, MCTSettings
from repcurate_cli.main import make_parser


class EightBitMCT(MCTQuantizer):
    """MCT offering 8-bit kernels only."""

    weight_bits = (8,)


@pytest.fixture
def eight_bit_mct():
    original = registry.get("mct")
    registry.register(EightBitMCT(), replace=True)
    yield
    registry.register(original, replace=True)


def test_the_registered_mct_gives_the_doctors_settings_type():
    settings = registry.get("mct").settings(weights_bits=4, tpc="imx500:4.0")
    assert isinstance(settings, MCTSettings) and settings.with_quantization(z_threshold=5.0).label().startswith("z_threshold")


def test_doctor_and_analyze_offer_the_registered_mcts_weight_widths(eight_bit_mct, tmp_path, capsys):
    with pytest.raises(UsageError, match=r"--weights-bits must be one of \(8,\)"):
        repcurate.doctor("absent.py:model", tmp_path / "absent-set", tmp_path / "absent-eval", weights_bits=4)
    for command in (["doctor", "--model", "m.py:f", "--repset", "s", "--eval-dir", "e", "--weights-bits", "4"],
                    ["analyze", "--images", "i", "--model", "m.py:f", "--weights-bits", "4"]):
        with pytest.raises(SystemExit) as exc:
            make_parser().parse_args(command)
        assert exc.value.code == 2 and "invalid choice: 4 (choose from 8)" in capsys.readouterr().err
