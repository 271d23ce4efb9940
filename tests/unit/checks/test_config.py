"""Check settings are range-checked: every parameter of every check declares the values it may
take (``Param`` next to its default) and ``resolve_params`` refuses anything else with exit 2,
naming the parameter and the allowed range. Config files of the wrong shape are usage errors too."""
from __future__ import annotations

import json
import math
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from repcurate.checks.base import Param
from repcurate.checks.config import read_config_file, resolve_params, skipped_ids
from repcurate.checks.registry import CHECKS
from repcurate.errors import UsageError


def _all_params() -> list[tuple[str, str, Param]]:
    return [(check.id, name, param) for check in CHECKS for name, param in check.parameters.items()]


# ------------------------------------------------------------------ the values the issue named
@pytest.mark.parametrize("check_id, name, value, needle", [
    ("duplicates", "fail_fraction", math.nan, "duplicates.fail_fraction must be a number from 0 to 1, got nan"),
    ("duplicates", "fail_fraction", math.inf, "duplicates.fail_fraction must be a number from 0 to 1, got inf"),
    ("duplicates", "fail_fraction", 1.5, "duplicates.fail_fraction must be a number from 0 to 1, got 1.5"),
    ("distribution_shift", "permutations", -5, "distribution_shift.permutations must be an integer >= 1, got -5"),
    ("distribution_shift", "k", 0, "distribution_shift.k must be an integer >= 1, got 0"),
    ("preprocessing_parity", "samples", 0, "preprocessing_parity.samples must be an integer >= 1, got 0"),
    ("preprocessing_parity", "samples", -1, "preprocessing_parity.samples must be an integer >= 1, got -1"),
    ("distribution_shift", "alpha", -0.01, "distribution_shift.alpha must be a number from 0 to 1, got -0.01"),
    ("duplicates", "near_distance", -0.1, "duplicates.near_distance must be a number from 0 to 2, got -0.1"),
    ("class_coverage", "warn_balance_ratio", 0.5, "class_coverage.warn_balance_ratio must be a finite number >= 1, got 0.5"),
    ("class_coverage", "warn_balance_ratio", math.inf, "class_coverage.warn_balance_ratio must be a finite number >= 1, got inf"),
    ("set_size", "fail_below", -1, "set_size.fail_below must be an integer >= 0, got -1"),
    ("activation_ranges", "worst", 0, "activation_ranges.worst must be an integer >= 1, got 0"),
    # wrong types get the same sentence
    ("set_size", "fail_below", "ten", "set_size.fail_below must be an integer >= 0, got 'ten'"),
    ("set_size", "fail_below", 10.0, "set_size.fail_below must be an integer >= 0, got 10.0"),
    ("set_size", "fail_below", True, "set_size.fail_below must be an integer >= 0, got True"),
    ("duplicates", "fail_fraction", False, "duplicates.fail_fraction must be a number from 0 to 1, got False"),
    ("duplicates", "fail_fraction", [0.1], "duplicates.fail_fraction must be a number from 0 to 1, got [0.1]"),
])
def test_out_of_range_value_is_a_usage_error_naming_parameter_and_range(check_id, name, value, needle):
    with pytest.raises(UsageError) as caught:
        resolve_params({check_id: {name: value}}, source="check.toml")
    assert str(caught.value) == f"check.toml: {needle}"
    assert caught.value.exit_code == 2


def test_bounds_are_inclusive_and_ints_widen_to_floats():
    params = resolve_params({"duplicates": {"fail_fraction": 1, "warn_fraction": 0, "near_distance": 2},
                             "distribution_shift": {"k": 1, "permutations": 1, "alpha": 0.0},
                             "set_size": {"fail_below": 0}})
    assert params["duplicates"] == {"near_distance": 2.0, "warn_fraction": 0.0, "fail_fraction": 1.0}
    assert all(isinstance(v, float) for v in params["duplicates"].values())
    assert params["distribution_shift"]["k"] == 1 and params["set_size"]["fail_below"] == 0


def test_every_parameter_declares_a_range_its_default_satisfies():
    """One uniform declaration per parameter: a ``Param`` whose default is inside its own range."""
    assert _all_params(), "no check declares parameters"
    for check in CHECKS:
        assert check.defaults == {name: p.default for name, p in check.parameters.items()}, check.id
    for check_id, name, param in _all_params():
        assert param.kind in (int, float), (check_id, name)
        assert param.minimum is not None, f"{check_id}.{name} declares no lower bound"
        assert param.validate(param.default) == param.default, (check_id, name)
        below = param.minimum - 1
        with pytest.raises(ValueError):
            param.validate(param.kind(below))
        if param.maximum is not None:
            with pytest.raises(ValueError):
                param.validate(param.kind(param.maximum + 1))
        if param.kind is float:
            for bad in (math.nan, math.inf, -math.inf):
                with pytest.raises(ValueError):
                    param.validate(bad)


# ------------------------------------------------------------------ config files of the wrong shape
@pytest.mark.parametrize("name, text, needle", [
    ("check.json", "[1, 2]", "the config must be a table {check_id: {param: value}}, got a list"),
    ("check.json", '"duplicates"', "the config must be a table {check_id: {param: value}}, got a string"),
    ("check.json", "3", "the config must be a table {check_id: {param: value}}, got a number"),
    ("check.json", "null", "the config must be a table {check_id: {param: value}}, got null"),
    ("pyproject.toml", "tool = 3\n", "[tool.repcurate.check] must be a table"),
    ("pyproject.toml", "[tool]\nrepcurate = [1]\n", "[tool.repcurate.check] must be a table"),
    ("pyproject.toml", "[tool.repcurate]\ncheck = \"all\"\n", "[tool.repcurate.check] must be a table"),
])
def test_config_file_of_the_wrong_shape_is_a_usage_error(tmp_path, name, text, needle):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(UsageError) as caught:
        read_config_file(path)
    assert str(caught.value).startswith(f"{path}: ") and needle in str(caught.value)


def test_nan_in_a_toml_or_json_file_is_refused(tmp_path):
    for name, text in (("check.toml", "[duplicates]\nfail_fraction = nan\n"),
                       ("check.json", json.dumps({"duplicates": {"fail_fraction": math.nan}}))):
        path = tmp_path / name
        path.write_text(text)
        with pytest.raises(UsageError, match=re.escape(f"{path}: duplicates.fail_fraction must be a number from 0 to 1, got nan")):
            resolve_params(read_config_file(path), source=str(path))


@pytest.mark.parametrize("config, needle", [
    ([], "the config must be a table {check_id: {param: value}}, got a list"),
    ({"skip": [["duplicates"]]}, "unknown check ['duplicates'] in skip"),
    ({3: {}}, "unknown check 3"),
    ({"skip": ["eval_data"]}, "eval_data cannot be skipped"),
])
def test_malformed_settings_are_usage_errors(config, needle):
    with pytest.raises(UsageError, match=re.escape(needle)):
        resolve_params(config)
        skipped_ids(config)


# ------------------------------------------------------------------ property-based: any config is accepted or a UsageError
PROPERTY_SETTINGS = settings(deadline=None, derandomize=True, database=None, max_examples=300,
                             suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
CHECK_IDS = [c.id for c in CHECKS]
PARAM_NAMES = sorted({name for c in CHECKS for name in c.parameters})

#: Numbers at and around every bound, the non-finite ones, and huge ones.
EDGE_NUMBERS = st.sampled_from([0, 1, -1, 2, 5, 0.0, 0.5, 1.0, 1.5, -0.01, 2.5, math.nan, math.inf, -math.inf,
                                10**30, -10**30, 2**63, 1e308, -1e308, 5e-324])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), EDGE_NUMBERS,
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                      st.dictionaries(st.text(max_size=6), inner, max_size=3)),
                      max_leaves=8)
PARAM_TABLES = st.dictionaries(st.one_of(st.sampled_from(PARAM_NAMES), st.text(max_size=6)),
                               st.one_of(EDGE_NUMBERS, SCALARS, VALUES), max_size=4)
SKIP_LISTS = st.lists(st.one_of(st.sampled_from(CHECK_IDS), st.text(max_size=6), SCALARS), max_size=4)
NUMBERS = st.one_of(EDGE_NUMBERS, st.integers(-5, 1000), st.floats(-1.0, 3.0), st.floats(), st.booleans())
#: Well-formed shapes: real check ids with their real parameter names, numbers of every kind.
KNOWN_TABLES = st.sampled_from(CHECKS).flatmap(
    lambda check: st.tuples(st.just(check.id), st.dictionaries(st.sampled_from(sorted(check.parameters) or ["x"]),
                                                                NUMBERS, max_size=3)))
WELL_FORMED = st.builds(lambda tables, skip: {**dict(tables), **({"skip": skip} if skip is not None else {})},
                        st.lists(KNOWN_TABLES, max_size=4), st.one_of(st.none(), st.lists(st.sampled_from(CHECK_IDS), max_size=3)))
CONFIGS = st.one_of(
    WELL_FORMED,
    st.dictionaries(st.one_of(st.sampled_from([*CHECK_IDS, "skip"]), st.text(max_size=8)),
                    st.one_of(PARAM_TABLES, SKIP_LISTS, VALUES), max_size=5),
    VALUES,  # wrong top-level types: lists, strings, numbers, null
)


def _assert_accepted_values_are_in_range(resolved: dict, config: dict) -> None:
    assert set(resolved) == set(CHECK_IDS)
    for check in CHECKS:
        assert set(resolved[check.id]) == set(check.parameters)
        for name, param in check.parameters.items():
            value = resolved[check.id][name]
            assert type(value) is param.kind, (check.id, name, value)
            assert math.isfinite(value), (check.id, name, value)
            assert param.minimum is None or value >= param.minimum, (check.id, name, value)
            assert param.maximum is None or value <= param.maximum, (check.id, name, value)
            given_value = config.get(check.id, {}).get(name, param.default)
            assert value == given_value, (check.id, name, value, given_value)


def _check_settings(config: object, source: str = "config") -> None:
    """``resolve_params`` and ``skipped_ids`` accept ``config`` or raise UsageError, nothing else."""
    try:
        resolved = resolve_params(config, source=source)  # type: ignore[arg-type]
    except UsageError as exc:
        assert exc.exit_code == 2 and str(exc).startswith(f"{source}: ")
    else:
        _assert_accepted_values_are_in_range(resolved, config)  # type: ignore[arg-type]
    try:
        skip = skipped_ids(config, source=source)  # type: ignore[arg-type]
    except UsageError as exc:
        assert exc.exit_code == 2
    else:
        assert set(skip) <= set(CHECK_IDS) and not {c.id for c in CHECKS if c.required} & set(skip)


@PROPERTY_SETTINGS
@given(CONFIGS)
def test_any_settings_structure_is_accepted_in_range_or_a_usage_error(config):
    _check_settings(config)


def _toml_value(value: object) -> str:
    """Inline TOML for a generated value (``None`` has no TOML form: written as ``null``, invalid TOML)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in value.items()) + "}"


def _toml_document(config: object) -> str:
    if not isinstance(config, dict):
        return f"value = {_toml_value(config)}\n"  # a TOML document is always a table
    return "".join(f"{json.dumps(str(k))} = {_toml_value(v)}\n" for k, v in config.items())


@PROPERTY_SETTINGS
@given(config=CONFIGS, form=st.sampled_from(["check.json", "check.toml", "pyproject.toml"]))
def test_any_config_file_is_accepted_in_range_or_a_usage_error(tmp_path, config, form):
    path = tmp_path / form
    if form == "check.json":
        path.write_text(json.dumps(config))  # NaN / Infinity as Python's json writes them
    elif form == "check.toml":
        path.write_text(_toml_document(config))
    else:
        path.write_text(f"[tool.repcurate]\ncheck = {_toml_value(config)}\n")
    try:
        data = read_config_file(path)
    except UsageError as exc:
        assert exc.exit_code == 2 and str(exc).startswith(f"{path}: ")
        return
    assert isinstance(data, dict)
    _check_settings(data, source=str(path))


@PROPERTY_SETTINGS
@given(payload=st.binary(max_size=64), form=st.sampled_from(["check.json", "check.toml", "pyproject.toml"]))
def test_arbitrary_bytes_as_a_config_file_are_a_usage_error_or_a_table(tmp_path, payload, form):
    path = tmp_path / form
    path.write_bytes(payload)
    try:
        data = read_config_file(path)
    except UsageError:
        return
    assert isinstance(data, dict)
    _check_settings(data, source=str(path))
