"""A set is untrusted data: code its manifest (or a check JSON) names never runs without --trust-set, files it
names are read only below its root and with a matching fingerprint, and a tampered set is refused by `report`
as by `check` / `load` (exit 3), with one line on stderr and no traceback."""
from __future__ import annotations

import json
import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import repcurate
from repcurate.example_data import write_digits_folder
from repcurate.render.thumbnails import encode_image
from repcurate.repset import CALIBRATION_NAME, MANIFEST_NAME, sha256_file
from tests.cli_asserts import assert_one_line_error

#: A user model and preprocessing that leave a MARKER file beside themselves when imported or called.
HOSTILE = '''
import pathlib
import numpy as np
import torch
from torch import nn

MARKER = pathlib.Path(__file__).with_name("MARKER")
MARKER.write_text("imported")


def make_model():
    MARKER.write_text("make_model")
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10)).eval()


def preprocess(image):
    MARKER.write_text("preprocess")
    return (np.asarray(image.convert("L").resize((8, 8)), dtype=np.float32) / 255.0)[None]
'''


class Project:
    """``hostile.py`` (leaves MARKER), ``clean.py`` (the same code, no marker), digits train / eval folders, a set
    built with the hostile model and preprocessing, and a real check JSON of it (recording the hostile pipeline)."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.hostile = work / "code" / "hostile.py"
        self.hostile.parent.mkdir()
        self.hostile.write_text(HOSTILE)
        self.clean = work / "clean.py"
        self.clean.write_text(HOSTILE.replace('MARKER.write_text("imported")', "").replace("MARKER.write_text(", "str("))
        self.marker = self.hostile.with_name("MARKER")
        self.train, self.eval = work / "train", work / "eval"
        write_digits_folder(self.train, per_class=dict.fromkeys(range(10), 4))
        write_digits_folder(self.eval, per_class=dict.fromkeys(range(10), 3), offset=4)
        self.repset = work / "set"
        repcurate.build(self.train, self.repset, size=20, model=f"{self.hostile}:make_model",
                        preprocess=f"{self.hostile}:preprocess", use_cache=False, progress=False)
        (self.repset / "manifest.sig").unlink()  # a set from elsewhere: not signed by this user's key
        result = repcurate.check(self.repset, self.eval, use_cache=False, trust_set=True, config={})
        self.check_json = work / "check.json"
        self.check_json.write_text(json.dumps(result.to_dict()))
        self.reset()

    def reset(self) -> None:
        self.marker.unlink(missing_ok=True)

    def copy_set(self, name: str) -> Path:
        return Path(shutil.copytree(self.repset, self.work / name))


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Project:
    return Project(tmp_path_factory.mktemp("set_safety"))


@pytest.fixture
def fresh(project: Project) -> Project:
    project.reset()
    yield project
    project.reset()


def _manifest(directory: Path) -> dict:
    return json.loads((directory / MANIFEST_NAME).read_text(encoding="utf-8"))


def _write_manifest(directory: Path, manifest: dict) -> None:
    (directory / MANIFEST_NAME).write_text(json.dumps(manifest), encoding="utf-8")


# ----------------------------------------------------------------------------- code named by the set


def test_check_refuses_the_sets_model_and_preprocessing_without_trust(fresh: Project, cli) -> None:
    args = ["check", "--repset", str(fresh.repset), "--eval-dir", str(fresh.eval), "--no-cache"]
    refused = cli(*args)
    assert_one_line_error(refused, 2, "manifest.json: model.spec", f"{fresh.hostile}:make_model",
                          "is code named by the set", "--model SPEC", "--trust-set")
    # the model named here runs; the set's preprocessing (needed for parity and to feed the model) still does not
    with_model = cli(*args, "--model", f"{fresh.clean}:make_model")
    assert_one_line_error(with_model, 2, "preprocessing.spec", f"{fresh.hostile}:preprocess", "--eval-preprocess SPEC")
    assert not fresh.marker.exists()
    # both named here: nothing of the set's runs, the check completes
    named = cli(*args, "--model", f"{fresh.clean}:make_model", "--eval-preprocess", f"{fresh.clean}:preprocess")
    assert named.returncode in (0, 1), named.stderr
    assert "Traceback" not in named.stderr and "running code recorded in the set" not in named.stderr
    assert not fresh.marker.exists()


def test_check_runs_the_sets_code_with_trust_set_and_says_so(fresh: Project, cli) -> None:
    trusted = cli("check", "--repset", str(fresh.repset), "--eval-dir", str(fresh.eval), "--no-cache", "--trust-set")
    assert trusted.returncode in (0, 1), trusted.stderr
    assert fresh.marker.exists()
    assert f"running code recorded in the set: model.spec = {fresh.hostile}:make_model" in trusted.stderr
    assert f"running code recorded in the set: preprocessing.spec = {fresh.hostile}:preprocess" in trusted.stderr


def test_check_library_refuses_up_front(fresh: Project) -> None:
    with pytest.raises(repcurate.errors.UsageError, match=re.escape("model.spec")):
        repcurate.check(fresh.repset, fresh.work / "no-such-eval-dir", use_cache=False)  # refused before the scan
    assert not fresh.marker.exists()


@pytest.mark.parametrize("command", ["confirm", "doctor"])
def test_confirm_and_doctor_refuse_the_sets_preprocessing_without_trust(fresh: Project, cli, command: str) -> None:
    args = [command, "--repset", str(fresh.repset), "--model", f"{fresh.clean}:make_model", "--eval-dir", str(fresh.eval)]
    refused = cli(*args)
    assert_one_line_error(refused, 2, "manifest.json: preprocessing.spec", f"{fresh.hostile}:preprocess",
                          "--preprocess SPEC", "--trust-set")
    assert not fresh.marker.exists()


@pytest.mark.parametrize("command", ["confirm", "doctor"])
def test_confirm_and_doctor_run_the_sets_preprocessing_with_trust_set(fresh: Project, cli, command: str) -> None:
    # an eval folder that does not exist ends the run (exit 3) right after the set's preprocessing was loaded
    extra = ["--random-sets", "0", "--no-first-n"] if command == "confirm" else ["--no-checks"]
    trusted = cli(command, "--repset", str(fresh.repset), "--model", f"{fresh.clean}:make_model",
                  "--eval-dir", str(fresh.work / "missing-eval"), "--trust-set", *extra)
    assert trusted.returncode == 3, trusted.stderr
    assert fresh.marker.exists()
    assert f"preprocessing.spec = {fresh.hostile}:preprocess" in trusted.stderr


def test_report_does_not_rerun_the_pipeline_a_check_json_names_without_trust(fresh: Project, cli) -> None:
    recorded = json.loads(fresh.check_json.read_text())
    parity = next(c for c in recorded["checks"] if c["id"] == "preprocessing_parity")
    assert parity["details"]["eval_pipeline"] == f"{fresh.hostile}:preprocess"
    out = fresh.work / "untrusted.html"
    result = cli("report", "--repset", str(fresh.repset), "--check", str(fresh.check_json), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert not fresh.marker.exists()
    page = out.read_text(encoding="utf-8")
    assert "is not re-run: it is code named by the check JSON, not by you" in page
    assert 'alt="eval pipeline output"' not in page and 'alt="set pipeline output"' in page
    trusted = cli("report", "--repset", str(fresh.repset), "--check", str(fresh.check_json), "--out", str(out), "--trust-set")
    assert trusted.returncode == 0, trusted.stderr
    assert fresh.marker.exists()
    assert 'alt="eval pipeline output"' in out.read_text(encoding="utf-8")


# ----------------------------------------------------------------------------- files named by the set


def _outside_image(work: Path) -> tuple[Path, str]:
    """An image outside every set root, and the base64 its thumbnail would have in a report."""
    path = work / "outside.png"
    if not path.exists():
        rng = np.random.default_rng(3)
        Image.fromarray(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8), "RGB").save(path)
    with Image.open(path) as image:
        uris = {encode_image(image.convert("RGB"), max_side=side).split(",", 1)[1] for side in (64, 160)}
    return path, min(uris, key=len)


@pytest.mark.parametrize("escape", ["/etc/passwd", "../outside.png", "C:/Windows/win.ini"])
def test_check_and_report_refuse_a_manifest_whose_sample_path_leaves_the_root(fresh: Project, cli, escape: str) -> None:
    """Decision: a sample path outside the root is a tampered manifest, refused at load (exit 3) before any
    file it names is opened: `check` and `report` fail with the JSON path of the bad entry."""
    outside, _ = _outside_image(fresh.work)
    tampered = fresh.copy_set(f"escape-{abs(hash(escape))}")
    manifest = _manifest(tampered)
    manifest["root"] = (fresh.work / "train").as_posix()
    manifest["samples"][3]["path"] = escape
    if escape == "../outside.png":
        manifest["samples"][3]["content_fingerprint"] = repcurate.data.scan.fingerprint_file(outside)
    _write_manifest(tampered, manifest)
    checked = cli("check", "--repset", str(tampered), "--eval-dir", str(fresh.eval), "--no-cache", "--trust-set")
    assert_one_line_error(checked, 3, "manifest.json: samples[3].path", repr(escape))
    out = fresh.work / "escape.html"
    reported = cli("report", "--repset", str(tampered), "--out", str(out))
    assert_one_line_error(reported, 3, "samples[3].path")
    assert not out.exists()


def test_report_of_an_in_memory_set_never_shows_a_file_outside_its_root(fresh: Project) -> None:
    outside, outside_b64 = _outside_image(fresh.work)
    loaded = repcurate.load(fresh.repset)
    loaded.manifest["samples"][0] = {**loaded.manifest["samples"][0], "path": "../outside.png",
                                     "content_fingerprint": repcurate.data.scan.fingerprint_file(outside)}
    loaded.manifest["root"] = (fresh.work / "train").as_posix()
    page = repcurate.report_html(loaded)
    assert outside_b64 not in page
    assert "the recorded path leaves the set&#39;s root: showing the set&#39;s tensor" in page


@pytest.mark.parametrize("named", ["absolute", "relative"])
def test_report_does_not_embed_a_file_that_only_the_check_json_names(fresh: Project, named: str) -> None:
    outside, outside_b64 = _outside_image(fresh.work)
    report = json.loads(fresh.check_json.read_text())
    parity = next(c for c in report["checks"] if c["id"] == "preprocessing_parity")
    file = outside.as_posix() if named == "absolute" else "../outside.png"
    parity["details"]["comparisons"] = [{"file": file, "source": "repset", "cause": "value_scale", "message": "m"},
                                        {"file": file, "source": "eval", "cause": "value_scale", "message": "m"}]
    parity["details"]["cause"] = "value_scale"
    page = repcurate.report_html(fresh.repset, check=report, eval_preprocess=f"{fresh.clean}:preprocess")
    assert outside_b64 not in page
    assert "a file named by the check JSON alone is not opened" in page
    assert not fresh.marker.exists()


def test_check_does_not_use_a_set_file_whose_content_changed(fresh: Project) -> None:
    swapped = fresh.copy_set("swapped")
    manifest = _manifest(swapped)
    root = fresh.work / "swapped-root"
    shutil.copytree(fresh.train, root)
    for sample in manifest["samples"]:  # every selected file replaced by another image
        shutil.copyfile(fresh.eval / "0" / sorted(p.name for p in (fresh.eval / "0").iterdir())[0], root / sample["path"])
    manifest["root"] = root.as_posix()
    _write_manifest(swapped, manifest)
    result = repcurate.check(swapped, fresh.eval, model=f"{fresh.clean}:make_model",
                             eval_preprocess=f"{fresh.clean}:preprocess", use_cache=False, config={})
    checks = {c.id: c for c in result.checks}
    assert checks["preprocessing_parity"].status.value == "skipped"  # no raw file could be compared
    assert "no raw file" in checks["preprocessing_parity"].message
    assert "near duplicates not checked: 20 repset files can no longer be read" in checks["duplicates"].message
    assert checks["distribution_shift"].status.value == "skipped"
    assert "20 repset files can no longer be read" in checks["distribution_shift"].message


# ----------------------------------------------------------------------------- integrity of calibration.npz


def _retamper(directory: Path, write) -> None:
    """Replace calibration.npz by ``write(path)`` and record the new file's sha256 (a consistent forgery)."""
    write(directory / CALIBRATION_NAME)
    manifest = _manifest(directory)
    manifest["calibration"]["sha256"] = sha256_file(directory / CALIBRATION_NAME)
    _write_manifest(directory, manifest)


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _pickled(path: Path) -> None:
    values = np.empty(20, dtype=object)
    values[:] = [{"x": i} for i in range(20)]
    np.savez(path.with_suffix(""), x=values)  # np.savez pickles object arrays


def _lying_header(path: Path) -> None:
    """The same bytes under a header that claims twice the rows (same header length, stored uncompressed)."""
    with zipfile.ZipFile(path) as archive:
        member = archive.read("x.npy")
    header_end = member.index(b"\n") + 1
    header = member[:header_end].decode("latin1")
    lying = header.replace("(20,", "(40,", 1)
    assert lying != header and len(lying) == len(header)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("x.npy", lying.encode("latin1") + member[header_end:])


@pytest.mark.parametrize(("tamper", "forged", "needle"), [
    (_flip_a_byte, False, "does not match the manifest's sha256"),
    (_pickled, True, "unreadable calibration archive"),
    (_lying_header, True, "calibration.npz"),
], ids=["sha256", "pickled-object-array", "lying-header"])
def test_report_refuses_a_tampered_calibration_file(fresh: Project, cli, tamper, forged: bool, needle: str) -> None:
    tampered = fresh.copy_set(f"tampered-{tamper.__name__}")
    if forged:
        _retamper(tampered, tamper)
    else:
        tamper(tampered / CALIBRATION_NAME)
    out = fresh.work / f"{tamper.__name__}.html"
    reported = cli("report", "--repset", str(tampered), "--out", str(out))
    assert_one_line_error(reported, 3, needle)
    assert not out.exists()
    with pytest.raises(repcurate.errors.InputError):
        repcurate.load(tampered)  # check and load refuse it the same way


def _terabyte_header(path: Path) -> None:
    """A header claiming 10^12 rows (256 TB of float32) over the real 20 rows' bytes, same header length."""
    with zipfile.ZipFile(path) as archive:
        member = archive.read("x.npy")
    header_end = member.index(b"\n") + 1
    header = member[:header_end].decode("latin1")
    claimed = "(1000000000000,"
    lying = header.replace("(20,", claimed, 1).replace(" " * (len(claimed) - 4) + "\n", "\n", 1)
    assert len(lying) == len(header)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("x.npy", lying.encode("latin1") + member[header_end:])


@pytest.mark.parametrize("command", ["check", "confirm", "export", "report"])
def test_a_header_claiming_terabytes_is_bad_input_everywhere(fresh: Project, cli, command: str) -> None:
    """Decision: an array header is checked against the bytes the archive stores before anything is allocated,
    so a forged set (header, manifest shape and sha256 all consistent) is exit 3, never 'out of memory' (5)."""
    tampered = fresh.work / f"terabytes-{command}"
    if not tampered.exists():
        fresh.copy_set(tampered.name)
        _retamper(tampered, _terabyte_header)
        manifest = _manifest(tampered)
        manifest["calibration"]["shape"][0] = 10 ** 12
        _write_manifest(tampered, manifest)
    out = fresh.work / f"terabytes-{command}.out"
    args = {"check": ["--eval-dir", str(fresh.eval), "--no-cache", "--trust-set"],
            "confirm": ["--eval-dir", str(fresh.eval), "--no-cache", "--trust-set", "--model", f"{fresh.clean}:make_model"],
            "export": ["--to", "npz", "--input-name", "x", "--out", str(out)],
            "report": ["--out", str(out)]}[command]
    result = cli(command, "--repset", str(tampered), *args)
    assert_one_line_error(result, 3, "calibration.npz")
    assert not out.exists()


# ----------------------------------------------------------------------------- where confirm draws random sets


def _tampered_source(fresh: Project, name: str, source: str) -> Path:
    copy = fresh.copy_set(name)
    manifest = _manifest(copy)
    manifest["train_source"] = source
    _write_manifest(copy, manifest)
    return copy


def test_confirm_never_scans_the_training_source_an_untrusted_set_names(fresh: Project, cli, tmp_path: Path) -> None:
    # The manifest of a set from elsewhere names /usr as its training source: without --trust-set confirm refuses
    # before drawing anything (it used to scan /usr and quantize with "random sets" of system icons).
    tampered = _tampered_source(fresh, "tampered-usr", "/usr")
    common = ["confirm", "--repset", str(tampered), "--model", f"{fresh.clean}:make_model",
              "--preprocess", f"{fresh.clean}:preprocess", "--eval-dir", str(fresh.eval), "--no-cache",
              "--random-sets", "1", "--no-first-n", "--bias-correction", "off"]
    refused = cli(*common)
    assert_one_line_error(refused, 2, "records its training source as /usr", "fix: pass --train-dir")
    # The training folder named on the command line is what is read, whatever the manifest says.
    drawn = cli(*common, "--train-dir", str(fresh.train), "--format", "json")
    assert drawn.returncode == 0, drawn.stderr[-2000:]
    assert sorted({arm["set"] for arm in json.loads(drawn.stdout)["arms"]}) == ["curated", "random-0"]


def test_confirm_without_random_or_first_n_sets_reads_no_training_source(fresh: Project, cli) -> None:
    tampered = _tampered_source(fresh, "tampered-root", "/")
    result = cli("confirm", "--repset", str(tampered), "--model", f"{fresh.clean}:make_model",
                 "--preprocess", f"{fresh.clean}:preprocess", "--eval-dir", str(fresh.eval), "--no-cache",
                 "--random-sets", "0", "--no-first-n", "--bias-correction", "off", "--format", "json")
    assert result.returncode == 0, result.stderr[-2000:]
    assert {arm["set"] for arm in json.loads(result.stdout)["arms"]} == {"curated"}
