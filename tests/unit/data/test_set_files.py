"""Files named by a manifest: confined below the root, used only when their content matches the fingerprint."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from repcurate.data.images import DecodeError
from repcurate.data.scan import fingerprint_file
from repcurate.data.set_files import content_fingerprint, decode_verified, read_verified, unsafe_path_reason


@pytest.mark.parametrize("path", ["/etc/passwd", "../outside.png", "a/../../b.png", "..", "C:/x.png", "c:x.png",
                                  "\\\\server\\share\\x.png", "\\x.png", "a\\..\\..\\b.png", "", "a\x00.png", 5, None])
def test_paths_that_leave_the_root_are_unsafe(path) -> None:
    assert unsafe_path_reason(path) is not None


@pytest.mark.parametrize("path", ["a.png", "cat/001.png", "cat/sub/..x.png", "ñ/é.png", "a b/c.png", "...png"])
def test_relative_paths_below_the_root_are_safe(path: str) -> None:
    assert unsafe_path_reason(path) is None


def test_content_fingerprint_is_the_scan_fingerprint(tmp_path: Path) -> None:
    path = tmp_path / "x.bin"
    path.write_bytes(os.urandom(3 << 20))  # several hash chunks
    assert content_fingerprint(path.read_bytes()) == fingerprint_file(path)


def test_a_file_is_decoded_only_when_its_content_matches(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8), "RGB").save(tmp_path / "a.png")
    Image.fromarray(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8), "RGB").save(tmp_path / "b.png")
    recorded = fingerprint_file(tmp_path / "a.png")
    assert decode_verified(tmp_path, "a.png", recorded).image.size == (30, 20)
    (tmp_path / "a.png").write_bytes((tmp_path / "b.png").read_bytes())  # swapped after the build
    with pytest.raises(DecodeError) as changed:
        decode_verified(tmp_path, "a.png", recorded)
    assert changed.value.reason == "content_changed"
    with pytest.raises(DecodeError) as escaping:
        read_verified(tmp_path / "sub", "../b.png", fingerprint_file(tmp_path / "b.png"))  # right content, wrong place
    assert escaping.value.reason == "unsafe_path"


def test_only_regular_files_are_opened(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.png")  # reading it would never end
    with pytest.raises(DecodeError) as fifo:
        read_verified(tmp_path, "pipe.png", "0" * 32)
    assert fifo.value.reason == "not_a_regular_file"
    with pytest.raises(DecodeError) as missing:
        read_verified(tmp_path, "missing.png", "0" * 32)
    assert missing.value.reason == "unreadable"
