"""repcurate.io.safe_read on real special files: a FIFO, /dev/zero (directly and through a symlink), files over the
cap, documents nested 100,000 levels deep and a real "billion laughs" YAML. Each case runs under a SIGALRM
deadline: a hang fails the test instead of blocking the run."""
from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from repcurate.io.safe_read import CAPS, UnsafeFile, cap, parse_json, parse_yaml, read_bytes, read_text

DEEP = 100_000
#: Ten chained anchors, each alias list 10 wide: 10**10 strings once expanded (what consumed 12.5 GB before).
BILLION_LAUGHS = "names: &a0 [lol]\n" + "".join(
    f"x{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 10)) + "train: images\n"


class Hang(Exception):
    """A block outlived its deadline (not an ``OSError``: a reader's ``except OSError`` must not swallow it)."""


@contextlib.contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Fail (instead of hanging) when the block runs longer than ``seconds``."""
    def expire(signum, frame):
        raise Hang(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "label.txt")
    with deadline(10), pytest.raises(UnsafeFile) as refused:
        read_text(tmp_path / "label.txt", "label")
    assert refused.value.reason == "not_a_regular_file" and "FIFO" in refused.value.detail


@pytest.mark.parametrize("kind", sorted(CAPS))
def test_dev_zero_behind_a_symlink_is_refused_for_every_kind(tmp_path: Path, kind: str) -> None:
    os.symlink("/dev/zero", tmp_path / "file")
    with deadline(10), pytest.raises(UnsafeFile) as refused:
        read_bytes(tmp_path / "file", kind)
    assert refused.value.reason == "not_a_regular_file" and "character device" in refused.value.detail


def test_a_file_over_the_cap_is_too_large_and_the_cap_can_be_raised(tmp_path: Path, monkeypatch) -> None:
    big = tmp_path / "instances.json"
    with big.open("wb") as handle:  # sparse: 300 MiB that cost no disk, over the 256 MiB annotation cap
        handle.truncate(300 << 20)
    with deadline(10), pytest.raises(UnsafeFile) as refused:
        read_bytes(big, "annotation")
    assert refused.value.reason == "too_large" and "REPCURATE_MAX_ANNOTATION_BYTES" in refused.value.detail
    small = tmp_path / "small.json"
    small.write_text("[1, 2, 3]")
    monkeypatch.setenv("REPCURATE_MAX_ANNOTATION_BYTES", "4")
    assert cap("annotation") == 4
    with pytest.raises(UnsafeFile, match="4-byte limit"):
        read_bytes(small, "annotation")
    monkeypatch.setenv("REPCURATE_MAX_ANNOTATION_BYTES", "1K")
    assert read_bytes(small, "annotation") == b"[1, 2, 3]"


def test_a_missing_file_and_a_folder_are_named_as_such(tmp_path: Path) -> None:
    with pytest.raises(UnsafeFile) as missing:
        read_bytes(tmp_path / "nope.txt", "label")
    assert missing.value.reason == "not_found"
    with pytest.raises(UnsafeFile) as folder:
        read_bytes(tmp_path, "label")
    assert folder.value.reason == "not_a_regular_file"


@pytest.mark.parametrize("text", ["[" * DEEP + "]" * DEEP, '{"a":' * DEEP + "1" + "}" * DEEP,
                                  "[" * 150 + "]" * 150])
def test_deep_json_is_too_deep_not_a_recursion_error(text: str) -> None:
    with deadline(20), pytest.raises(UnsafeFile) as refused:
        parse_json(text)
    assert refused.value.reason == "too_deep"


def test_real_json_and_yaml_still_parse() -> None:
    assert parse_json('{"images": [{"id": 1}], "categories": []}') == {"images": [{"id": 1}], "categories": []}
    assert parse_yaml("path: .\ntrain: images/train\nnames:\n  0: cat\n  1: dog\n") == {
        "path": ".", "train": "images/train", "names": {0: "cat", 1: "dog"}}


def test_a_billion_laughs_yaml_is_refused_before_it_expands() -> None:
    with deadline(10), pytest.raises(UnsafeFile) as refused:
        parse_yaml(BILLION_LAUGHS)
    assert refused.value.reason == "yaml_alias" and "line 2" in refused.value.detail


def test_deep_yaml_is_refused() -> None:
    nested = "a: " + "[" * 200 + "]" * 200 + "\n"
    with deadline(20), pytest.raises(UnsafeFile) as refused:
        parse_yaml(nested)
    assert refused.value.reason == "too_deep"
