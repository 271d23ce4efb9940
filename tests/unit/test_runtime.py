"""Process-level settings: TensorFlow's start-up log lines are kept off stderr unless --debug."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

import repcurate_cli.main as cli_main
from repcurate.errors import UsageError

_CHILD = """
import sys
if sys.argv[1] == "quiet":
    from repcurate.runtime import quiet_tensorflow
    quiet_tensorflow()
import tensorflow as tf
tf.get_logger().warning("a tensorflow python warning")
tf.constant([1.0]) + 1.0
"""


def test_quiet_tensorflow_keeps_its_log_lines_off_stderr() -> None:
    pytest.importorskip("tensorflow")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # (tests/conftest.py sets it)
    loud = subprocess.run([sys.executable, "-c", _CHILD, "loud"], capture_output=True, text=True, env=env, timeout=300)
    quiet = subprocess.run([sys.executable, "-c", _CHILD, "quiet"], capture_output=True, text=True, env=env, timeout=300)
    assert loud.returncode == quiet.returncode == 0, (loud.stderr, quiet.stderr)
    assert "tensorflow/" in loud.stderr and "a tensorflow python warning" in loud.stderr  # the control is noisy
    assert quiet.stderr == ""


@pytest.mark.parametrize("debug", [False, True])
def test_the_cli_quiets_tensorflow_unless_debug(monkeypatch, tmp_path, debug) -> None:
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    argv = ["build", "--train-dir", str(tmp_path / "absent"), "--out", str(tmp_path / "out"), "--seed", "-1"]
    if debug:
        with pytest.raises(UsageError):  # --debug re-raises the usage error with its traceback
            cli_main.main([*argv, "--debug"])
        assert "TF_CPP_MIN_LOG_LEVEL" not in os.environ
    else:
        assert cli_main.main(argv) == 2
        assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "2"
