"""CLI contract: one-line actionable errors, documented exit codes, no traceback, nothing half-written."""
from __future__ import annotations

import pytest

from repcurate.example_data import write_digits_folder
from tests.cli_asserts import assert_one_line_error


def test_missing_train_dir_is_input_error(tmp_path, cli):
    result = cli("build", "--train-dir", str(tmp_path / "nope"), "--out", str(tmp_path / "out"))
    assert_one_line_error(result, 3, str(tmp_path / "nope"), "fix:")
    assert not (tmp_path / "out").exists()


def test_folder_without_usable_images_exits_3(tmp_path, cli):
    (tmp_path / "train" / "a").mkdir(parents=True)
    (tmp_path / "train" / "a" / "x.png").write_bytes(b"garbage")
    (tmp_path / "train" / "a" / "y.jpg").write_bytes(b"")
    result = cli("build", "--train-dir", str(tmp_path / "train"), "--out", str(tmp_path / "out"), "--no-cache")
    assert_one_line_error(result, 3, "no usable image", "1 empty_file", "1 not_an_image")
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["train"]


@pytest.mark.parametrize("args, needle", [
    (["--size", "0"], "size"),
    (["--model", "no_such_model"], "--model"),
    (["--model", "torchvision.models:resnet18"], "--preprocess"),
    (["--strategy", "kcenter", "--match-dir", "."], "--strategy kmeans"),
])
def test_usage_errors_exit_2(tmp_path, cli, args, needle):
    write_digits_folder(tmp_path / "train", per_class={0: 2, 1: 2})
    result = cli("build", "--train-dir", str(tmp_path / "train"), "--out", str(tmp_path / "out"), "--no-cache", *args)
    assert_one_line_error(result, 2, needle)


def test_nonempty_out_is_refused_even_with_overwrite(tmp_path, cli):
    write_digits_folder(tmp_path / "train", per_class={0: 2, 1: 2})
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    for flags in ([], ["--overwrite"]):
        result = cli("build", "--train-dir", str(tmp_path / "train"), "--out", str(tmp_path / "out"), "--no-cache", *flags)
        assert_one_line_error(result, 2, "not written by repcurate", "--overwrite replaces only repcurate's own output")
        assert (tmp_path / "out" / "keep.txt").read_text() == "mine"


def test_missing_model_file_exits_3(tmp_path, cli):
    write_digits_folder(tmp_path / "train", per_class={0: 2, 1: 2})
    result = cli("build", "--train-dir", str(tmp_path / "train"), "--out", str(tmp_path / "out"), "--no-cache",
                 "--model", str(tmp_path / "absent.py") + ":make", "--preprocess", str(tmp_path / "absent.py") + ":pre")
    assert_one_line_error(result, 3, "absent.py", "not found")


def test_debug_shows_traceback(tmp_path, cli):
    result = cli("build", "--train-dir", str(tmp_path / "nope"), "--out", str(tmp_path / "out"), "--debug")
    assert result.returncode != 0
    assert "Traceback" in result.stderr


def test_version_and_help(cli):
    assert cli("--version").stdout.startswith("repcurate ")
    helptext = cli("build", "--help").stdout
    assert "--train-dir" in helptext and "exit codes" in helptext
    assert cli().returncode == 2
