"""``build --device`` and ``--engine`` from the command line: bad values stop the run up front (exit 2), a missing
Ray is exit 4 with the install hint, and ``--engine ray`` builds a set on a real Ray cluster."""
from __future__ import annotations

import json
import sys

import pytest
import torch

from tests.cli_asserts import assert_one_line_error
from tests.unit.embed.engine_testdata import write_engine_project


@pytest.mark.parametrize("device, needle", [("gpu", "--device (device): 'gpu' is not auto, cpu, cuda or cuda:N"),
                                            ("cuda:x", "is not auto, cpu, cuda or cuda:N")])
def test_a_bad_device_is_exit_2_before_any_work(cli, tmp_path, device, needle):
    result = cli("build", "--train-dir", str(tmp_path / "absent"), "--out", str(tmp_path / "set"), "--device", device)
    assert_one_line_error(result, 2, needle, "fix:")
    assert not (tmp_path / "set").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="the machine has CUDA")
def test_cuda_on_a_machine_without_a_gpu_is_exit_2_with_the_fix(cli, tmp_path):
    train, model, preprocess = write_engine_project(tmp_path, per_class=2)
    result = cli("build", "--train-dir", str(train), "--out", str(tmp_path / "set"), "--device", "cuda",
                 "--model", model, "--preprocess", preprocess)
    assert_one_line_error(result, 2, "no CUDA device", "fix: pass --device cpu or --device auto")


def test_an_unknown_engine_is_a_usage_error(cli, tmp_path):
    result = cli("build", "--train-dir", str(tmp_path), "--out", str(tmp_path / "set"), "--engine", "spark")
    assert result.returncode == 2 and "invalid choice: 'spark'" in result.stderr


def test_engine_ray_without_ray_is_exit_4_with_the_install_hint(tmp_path):
    import subprocess

    train, model, preprocess = write_engine_project(tmp_path, per_class=2)
    code = ("import sys; sys.modules['ray'] = None\n"  # this interpreter cannot import ray, as if it were not installed
            "from repcurate_cli.main import main\n"
            f"sys.exit(main(['build', '--train-dir', {str(train)!r}, '--out', {str(tmp_path / 'set')!r}, "
            f"'--model', {model!r}, '--preprocess', {preprocess!r}, '--engine', 'ray']))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert_one_line_error(result, 4, "--engine ray", 'pip install "repcurate[ray]"')
    assert not (tmp_path / "set").exists()


def test_engine_ray_builds_a_set_on_the_cluster(cli, tmp_path, ray_cluster):
    train, model, preprocess = write_engine_project(tmp_path, per_class=4)
    result = cli("build", "--train-dir", str(train), "--out", str(tmp_path / "set"), "--size", "6", "--model", model,
                 "--preprocess", preprocess, "--engine", "ray", "--ray-address", ray_cluster, "--ray-actors", "1",
                 "--batch-size", "4", "--device", "cpu", "--no-cache", "--format", "json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["selected"] == 6 and summary["embedded"] == 12
    assert summary["skipped_by_reason"] == {"truncated": 1}
    assert "ray engine" in result.stderr or "embedding 13 files" in result.stderr


def _silent_listener(answer: bytes | None):
    """A TCP port on every interface where something listens: it never answers (``answer`` None) or answers every
    connection with ``answer`` (not a Ray cluster either way). Returns (port, closer)."""
    import socket
    import threading

    server = socket.create_server(("0.0.0.0", 0))
    accepted = []

    def serve() -> None:
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            accepted.append(connection)
            if answer is not None:
                try:
                    connection.sendall(answer)
                except OSError:
                    pass

    threading.Thread(target=serve, daemon=True).start()

    def close() -> None:
        server.close()
        for connection in accepted:
            connection.close()

    return server.getsockname()[1], close


@pytest.mark.parametrize("address, timeout, bound", [
    ("127.0.0.1:1", None, 75),  # nothing listens; the default --ray-timeout (30 s)
    ("ray://127.0.0.1:1", "2", 40),
    ("silent", "2", 40),  # something listens but never answers
    ("answers", "3", 75),  # something answers, but not Ray: Ray's own connect is bounded too
])
def test_a_ray_address_without_a_cluster_fails_within_the_timeout(tmp_path, address, timeout, bound):
    """Decision: nothing at --ray-address is exit 2 within --ray-timeout (default 30 s; Ray alone retried for
    824 s), one error line naming the address and the fix, no set written. Bounds include interpreter start-up."""
    import subprocess
    import time
    from pathlib import Path

    train, model, preprocess = write_engine_project(tmp_path, per_class=2)
    close = None
    if address in ("silent", "answers"):
        port, close = _silent_listener(None if address == "silent" else b"HTTP/1.1 400 Bad Request\r\n\r\n")
        address = f"127.0.0.1:{port}"
    args = [str(Path(sys.executable).parent / "repcurate"), "build", "--train-dir", str(train), "--out",
            str(tmp_path / "set"), "--model", model, "--preprocess", preprocess, "--engine", "ray", "--ray-address",
            address, "--no-cache", *(["--ray-timeout", timeout] if timeout else [])]
    started = time.monotonic()
    try:
        result = subprocess.run(args, capture_output=True, text=True, timeout=bound + 60)
    finally:
        if close is not None:
            close()
    elapsed = time.monotonic() - started
    assert elapsed < bound, (elapsed, result.stderr)
    assert_one_line_error(result, 2, f"--ray-address {address}", "fix:", "--ray-timeout")
    assert not (tmp_path / "set").exists()
