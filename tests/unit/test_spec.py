"""split_spec / load_object: code references given as path/to/file.py:name or package.module:name."""
from __future__ import annotations

import os.path
import re
import sys
import textwrap

import pytest

from repcurate.data.images import decode_image
from repcurate.errors import InputError, UsageError
from repcurate.spec import load_object, split_spec


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("prep.py:fn", ("prep.py", "fn")),
        ("path/to/prep.py:make_transform", ("path/to/prep.py", "make_transform")),
        ("pkg.module:fn", ("pkg.module", "fn")),
        ("pkg.module:Class.method", ("pkg.module", "Class.method")),
        (r"C:\models\prep.py:fn", (r"C:\models\prep.py", "fn")),  # split at the last colon
        ("/abs/dir:with:colons/prep.py:fn", ("/abs/dir:with:colons/prep.py", "fn")),
        ("prep.py:ñandú", ("prep.py", "ñandú")),
    ],
)
def test_split_spec(spec, expected):
    assert split_spec(spec) == expected


@pytest.mark.parametrize(
    "spec",
    ["prep.py", "pkg.module", ":fn", "prep.py:", "prep.py:1fn", "prep.py:fn-name", "prep.py:fn()", "prep.py:a..b", "prep.py:.a", "prep.py:a.",
     "", ":"],
)
def test_split_spec_rejects_what_is_not_a_code_reference(spec):
    with pytest.raises(UsageError, match=re.escape("is not a code reference; fix: use path/to/file.py:name or package.module:name")):
        split_spec(spec)


def test_usage_and_input_errors_have_their_exit_codes():
    assert UsageError.exit_code == 2
    assert InputError.exit_code == 3


@pytest.fixture
def user_file(tmp_path):
    path = tmp_path / "user_code.py"
    path.write_text(
        textwrap.dedent(
            """
            CALLS = []
            SCALE = 2.5

            def double(x):
                return 2 * x

            class Transforms:
                factor = 3

                @staticmethod
                def triple(x):
                    return 3 * x
            """
        ),
        encoding="utf-8",
    )
    return path


def test_load_object_from_a_file(user_file):
    double = load_object(f"{user_file}:double")
    assert double(21) == 42
    assert load_object(f"{user_file}:SCALE") == 2.5
    assert load_object(f"{user_file}:Transforms.triple")(5) == 15
    assert load_object(f"{user_file}:Transforms.factor") == 3


def test_a_file_is_imported_once(user_file):
    first = load_object(f"{user_file}:CALLS")
    first.append("seen")
    assert load_object(f"{user_file}:CALLS") is first
    assert load_object(f"{user_file}:double") is load_object(f"{user_file}:double")
    module = sys.modules[load_object(f"{user_file}:double").__module__]
    assert module.__name__.startswith("repcurate_user_user_code_")
    assert module.__file__ == str(user_file)


def test_two_files_with_the_same_name_do_not_collide(tmp_path):
    for sub, value in (("a", 1), ("b", 2)):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "prep.py").write_text(f"VALUE = {value}\n", encoding="utf-8")
    assert load_object(f"{tmp_path / 'a' / 'prep.py'}:VALUE") == 1
    assert load_object(f"{tmp_path / 'b' / 'prep.py'}:VALUE") == 2


def test_relative_file_path(tmp_path, monkeypatch):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "rel_prep.py").write_text("def f(x):\n    return x + 1\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert load_object("sub/rel_prep.py:f")(1) == 2
    assert load_object("./sub/rel_prep.py:f")(2) == 3


def test_load_object_from_a_module():
    assert load_object("os.path:join") is os.path.join
    assert load_object("repcurate.data.images:decode_image") is decode_image
    assert load_object("repcurate.errors:InputError.exit_code") == 3


def test_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match=r"file not found; fix: give an existing \.py file"):
        load_object(f"{tmp_path / 'nope.py'}:fn")
    (tmp_path / "folder.py").mkdir()
    with pytest.raises(InputError, match="file not found"):
        load_object(f"{tmp_path / 'folder.py'}:fn")


def test_missing_attribute_names_the_attribute(user_file):
    with pytest.raises(InputError, match=r"user_code\.py has no attribute 'halve'"):
        load_object(f"{user_file}:halve")
    with pytest.raises(InputError, match=r"has no attribute 'quadruple'"):
        load_object(f"{user_file}:Transforms.quadruple")
    with pytest.raises(InputError, match=r"os\.path:nothing_here: os\.path has no attribute 'nothing_here'"):
        load_object("os.path:nothing_here")


def test_file_that_fails_to_import_is_an_input_error_and_is_not_cached(tmp_path):
    path = tmp_path / "broken_prep.py"
    path.write_text("import numpy\nraise RuntimeError('config missing')\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"importing it raised RuntimeError: config missing") as info:
        load_object(f"{path}:fn")
    assert isinstance(info.value.__cause__, RuntimeError)
    assert not [name for name in sys.modules if name.startswith("repcurate_user_broken_prep_")]
    path.write_text("def fn():\n    return 'fixed'\n", encoding="utf-8")
    assert load_object(f"{path}:fn")() == "fixed"


def test_file_with_a_syntax_error_is_an_input_error(tmp_path):
    path = tmp_path / "typo.py"
    path.write_text("def fn(:\n    pass\n", encoding="utf-8")
    with pytest.raises(InputError, match="importing it raised SyntaxError"):
        load_object(f"{path}:fn")


def test_non_python_file_is_an_input_error(tmp_path):
    path = tmp_path / "prep.txt"
    path.write_text("def fn():\n    return 1\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"cannot be imported as Python; fix: give a \.py file"):
        load_object(f"{path}:fn")


def test_missing_module_is_an_input_error():
    with pytest.raises(InputError, match=r"repcurate_no_such_module_q: cannot import module .*fix: install it or use path/to/file\.py:fn"):
        load_object("repcurate_no_such_module_q:fn")


def test_module_with_a_missing_dependency_is_an_input_error(tmp_path, monkeypatch):
    name = f"repcurate_needs_dep_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text("import repcurate_absent_dependency_zz\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(InputError, match="repcurate_absent_dependency_zz"):
        load_object(f"{name}:fn")


def test_module_that_raises_while_importing_is_an_input_error(tmp_path, monkeypatch):
    name = f"repcurate_raises_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text("raise ValueError('bad setting')\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(InputError, match=r"importing it raised ValueError: bad setting") as info:
        load_object(f"{name}:fn")
    assert isinstance(info.value.__cause__, ValueError)
    assert name not in sys.modules


def test_bad_spec_is_a_usage_error_before_anything_is_imported(tmp_path):
    with pytest.raises(UsageError):
        load_object(str(tmp_path / "prep.py"))
