"""The CLI's last line of defence: errors raised while an interrupt unwinds still exit as interrupted."""
from __future__ import annotations

import argparse

import pytest

from repcurate.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_TERMINATED, Terminated
from repcurate_cli.common import run_guarded


def _failing_clean_up(interrupt: BaseException) -> None:
    try:
        raise interrupt
    except BaseException:  # noqa: BLE001 - a library's clean-up failing on the way out, chained only implicitly as in real code
        raise ValueError("Can't close the ZIP file while there is an open writing handle on it")  # noqa: B904


@pytest.mark.parametrize("interrupt, code", [(KeyboardInterrupt(), EXIT_INTERRUPTED), (Terminated(), EXIT_TERMINATED)])
def test_an_error_raised_while_unwinding_an_interrupt_is_the_interrupt(interrupt, code, capsys) -> None:
    args = argparse.Namespace(debug=False)
    assert run_guarded(args, lambda _: _failing_clean_up(interrupt)) == code
    assert "internal error" not in capsys.readouterr().err


def test_a_plain_error_is_still_internal(capsys) -> None:
    def fail(_: argparse.Namespace) -> None:
        raise ValueError("bug")

    assert run_guarded(argparse.Namespace(debug=False), fail) == EXIT_INTERNAL
    assert "internal error: ValueError: bug" in capsys.readouterr().err
