"""Structure of the generated HTML on a real digits project: sections, inline images that decode,
no external URL, the set / coverage / checks / confirm / doctor contents, determinism, fallbacks."""
from __future__ import annotations

import json
import re
import shutil
from collections import Counter

import pytest

import repcurate
from repcurate.errors import InputError
from tests.unit.report.report_testdata import CONFIRM_JSON, DOCTOR, SET_SIZE, check_image, decode_data_uri, parse


@pytest.fixture(scope="module")
def full(report_project, tmp_path_factory):
    out = tmp_path_factory.mktemp("report_html") / "report.html"
    page = report_project.full_report(out)
    return out, page, parse(page)


def test_written_atomically_and_returned(full):
    out, page, _ = full
    assert out.read_text(encoding="utf-8") == page
    assert not list(out.parent.glob(".report.html.tmp-*"))


def test_every_section_present(full):
    _, page, dom = full
    for section in ("top", "provenance", "set", "coverage", "checks", "confirm", "doctor"):
        assert section in dom.ids, section
    assert [i for i in dom.ids if i.startswith("check-")] == [
        "check-eval_data", "check-set_size", "check-class_coverage", "check-preprocessing_parity", "check-duplicates",
        "check-distribution_shift", "check-activation_ranges"]
    assert page.startswith("<!DOCTYPE html>")
    assert f"repcurate {repcurate.__version__}" in page


def test_self_contained_no_external_urls(full):
    _, page, dom = full
    for tag, attrs in dom.tags:
        for name in ("src", "href", "action", "srcset", "data", "poster"):
            value = attrs.get(name)
            if value is not None:
                assert value.startswith("data:") or (name == "href" and value.startswith("#")), (tag, name, value[:60])
    assert not [t for t, _ in dom.tags if t in ("script", "link", "iframe", "object", "embed")]
    without_data = re.sub(r'data:[^"]+', "", page)
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", without_data, re.IGNORECASE), \
        re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", without_data, re.IGNORECASE)
    assert "url(" not in without_data  # no CSS fetch either
    csp = [a for t, a in dom.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    assert csp and "default-src 'none'" in csp[0]["content"] and "img-src data:" in csp[0]["content"]


def test_every_image_decodes(full):
    _, _, dom = full
    images = dom.images()
    mimes = Counter(decode_data_uri(i["src"])[0] for i in images)
    for attrs in images:
        check_image(attrs["src"])
        assert attrs.get("alt")
    assert mimes["image/svg+xml"] >= 4  # coverage bars, parity histogram, channel stats, activation bars, confirm plot
    assert mimes["image/png"] + mimes["image/jpeg"] >= SET_SIZE + 2  # thumbnails, projections


def test_set_section_thumbnails_quotas_and_skipped(full, report_project):
    _, page, dom = full
    manifest = report_project.manifest()
    thumbs = dom.by_class("img", "thumb")
    assert len(thumbs) == SET_SIZE
    assert [t["title"] for t in thumbs] == [s["path"] for s in manifest["samples"]]  # grouped by class, manifest order
    for thumb in thumbs:
        size = check_image(thumb["src"])
        assert size is not None and max(size) <= 64
        assert len(thumb["src"]) < 4000  # small: a 1,000-image set stays well under 10 MB
    assert not dom.by_class("img", "tensor")  # every file is still there and unchanged
    for c in manifest["classes"]:
        assert (f'{c["selected"]} selected · quota {c["quota"]} · {c["available"]} available') in page
    assert "<code>3/broken.png</code></td><td>not_an_image</td>" in page
    assert "<code>4/empty.png</code></td><td>empty_file</td>" in page
    assert "Empty class folders (no usable image): z_empty" in page


def test_coverage_section(full, report_project):
    _, page, dom = full
    manifest = report_project.manifest()
    coverage = manifest["coverage"]
    assert f'{coverage["curated"]["mean"]:.4f}' in page
    assert f'{coverage["random"]["mean"]["mean"]:.4f} ± {coverage["random"]["mean"]["std"]:.4f}' in page
    alts = {i["alt"]: i["src"] for i in dom.images()}
    overview = alts["PCA projection of the training embeddings, selected images ringed"]
    per_class = alts["per-class PCA projections, selected images in red"]
    assert check_image(overview)[0] > 500 and check_image(per_class)[0] > 500
    points = manifest["projection"]["points"]
    assert points == manifest["counts"]["usable"]
    assert f"{points} of {points} images drawn from projection.npz" in page


def test_checks_section_cards_and_panels(full, report_project):
    _, page, dom = full
    report = json.loads(report_project.check_json.read_text())
    assert report["verdict"] == "fail"
    assert '<span class="verdict bg-fail">FAIL</span>' in page
    statuses = {c["id"]: c["status"] for c in report["checks"]}
    cards = {a["id"]: a["class"].split()[1] for a in dom.by_class("div", "card")}
    assert cards == {f"check-{k}": v for k, v in statuses.items()}
    for c in report["checks"]:
        assert c["message"].replace("'", "&#39;").replace('"', "&#34;") in page
    # preprocessing parity: the same raw file through both pipelines, with the named cause
    assert statuses["preprocessing_parity"] == "fail"
    alts = {i["alt"]: i["src"] for i in dom.images()}
    for alt in ("raw file", "set pipeline output", "eval pipeline output", "value histograms of both pipelines"):
        assert alt in alts
    assert check_image(alts["set pipeline output"]) == (8, 8)
    assert 'cause: <span class="cause">value_scale</span>' in page
    assert "range [0, " in page  # the eval tensor's 0..1 scale is printed beside it
    # distribution shift: both samples projected, statistics; activation ranges: worst layers bar chart
    assert "set and eval samples projected" in alts and "per-channel input statistics" in alts
    assert "permutation p-value" in page
    assert "worst layers by eval activations outside the set's range" in alts  # alt text, unescaped by the parser
    worst = next(c for c in report["checks"] if c["id"] == "activation_ranges")["details"]["worst"][0]["layer"]
    assert f"<code>{worst}</code>" in page


def test_confirm_section_table_plot_and_verdict(full):
    _, page, dom = full
    confirm = json.loads(CONFIRM_JSON.read_text())
    for row in confirm["summary"]:
        assert row["verdict"] in page
    for arm in confirm["arms"]:
        assert f'<td>{arm["set"]}</td>' in page
    curated_on = next(a for a in confirm["arms"] if a["set"] == "curated" and a["bias_correction"])
    assert f'{curated_on["metric"]["top1"] * 100:.2f}' in page
    assert "metric per calibration set with the random band" in {i["alt"] for i in dom.images()}
    assert "float model 76.75" in page


def test_doctor_findings_ranked_by_gain(full):
    _, page, _ = full
    positions = [page.index(f"{n}. {title}") for n, title in
                 enumerate(["set_size", "balance", "bias correction off", "no gain measured"], start=1)]
    assert positions == sorted(positions)
    assert "gain <span class=\"gain\">2.75</span>" in page
    assert "<code>size</code>: 300" in page
    assert '&#34;bias_correction&#34;: true' in page  # the recommended config, escaped JSON
    assert "(top-1 points)" in page


def test_provenance_header(full, report_project):
    _, page, _ = full
    manifest = report_project.manifest()
    for value in (manifest["model"]["fingerprint"], manifest["preprocessing"]["fingerprint"],
                  manifest["calibration"]["sha256"]):
        assert value in page
    assert f"seed <code>{manifest['seed']}</code>" in page
    build = f"repcurate build --train-dir {report_project.train} --out {report_project.repset} --size {SET_SIZE}"
    assert build in page
    assert f"--eval-preprocess {report_project.eval_preprocess} --model {report_project.model} --format json" in page
    assert "equivalent, reconstructed from the recorded settings" in page


def test_byte_identical_reruns(report_project, tmp_path, cli):
    first = report_project.full_report(tmp_path / "a.html")
    again = report_project.full_report(tmp_path / "b.html")
    assert first == again
    # and from another process (hash seeds, import order): the CLI writes the same bytes
    result = cli("report", "--repset", str(report_project.repset), "--check", str(report_project.check_json),
                 "--confirm", str(CONFIRM_JSON), "--doctor", str(report_project.doctor_json), "--out", str(tmp_path / "c.html"),
                 "--trust-set")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "c.html").read_bytes() == (tmp_path / "a.html").read_bytes()


def test_set_only_report(report_project, tmp_path):
    page = repcurate.report_html(report_project.repset)
    dom = parse(page)
    assert "set" in dom.ids and "coverage" in dom.ids
    assert not {"checks", "confirm", "doctor"} & set(dom.ids)
    assert not (tmp_path / "report.html").exists()


def test_thumbnails_fall_back_to_tensors_when_files_are_gone(report_project, tmp_path):
    moved = tmp_path / "repset"
    shutil.copytree(report_project.repset, moved)
    manifest = json.loads((moved / "manifest.json").read_text())
    manifest["root"] = str(tmp_path / "gone")
    (moved / "manifest.json").write_text(json.dumps(manifest))
    dom = parse(repcurate.report_html(moved))
    fallback = dom.by_class("img", "tensor")
    assert len(fallback) == SET_SIZE
    assert check_image(fallback[0]["src"]) == (8, 8)  # the digits CNN's 1×8×8 tensors
    assert "not readable any more" in fallback[0]["title"]


def test_changed_file_is_not_shown_as_the_selected_one(report_project, tmp_path):
    train = tmp_path / "train"
    shutil.copytree(report_project.train, train)
    moved = tmp_path / "repset"
    shutil.copytree(report_project.repset, moved)
    manifest = json.loads((moved / "manifest.json").read_text())
    manifest["root"] = str(train)
    (moved / "manifest.json").write_text(json.dumps(manifest))
    changed = manifest["samples"][3]["path"]
    (train / changed).write_bytes((train / manifest["samples"][4]["path"]).read_bytes())
    dom = parse(repcurate.report_html(moved))
    fallback = dom.by_class("img", "tensor")
    assert [t["title"].split(" — ")[0] for t in fallback] == [changed]
    assert "changed since the build" in fallback[0]["title"]


def test_set_without_projection_still_reports(report_project, tmp_path):
    old = tmp_path / "repset"
    shutil.copytree(report_project.repset, old)
    (old / "projection.npz").unlink()
    manifest = json.loads((old / "manifest.json").read_text())
    del manifest["projection"]
    (old / "manifest.json").write_text(json.dumps(manifest))
    page = repcurate.report_html(old)
    assert "No projection to draw:" in page and "records no projection" in page and "fix: rebuild the set" in page
    assert len(parse(page).by_class("img", "thumb")) == SET_SIZE


def test_in_memory_results_are_accepted(report_project):
    import repcurate.repset as repset_module

    loaded = repset_module.load(report_project.repset)
    page = repcurate.report_html(loaded, check=json.loads(report_project.check_json.read_text()), doctor=DOCTOR)
    dom = parse(page)
    assert "checks" in dom.ids and "doctor" in dom.ids
    assert "the in-memory set has no projection" in page


@pytest.mark.parametrize("kind, content, needle", [
    ("check", '{"verdict": "pass"}', "not a check report (missing checks)"),
    ("confirm", '{"metric": "top1", "arms": {}}', "not a confirm report (missing arms (not a list))"),
    ("doctor", "[1, 2]", "not a doctor report (missing findings)"),
    ("check", "{not json", "unreadable JSON"),
])
def test_malformed_inputs_are_input_errors(report_project, tmp_path, kind, content, needle):
    bad = tmp_path / f"{kind}.json"
    bad.write_text(content)
    with pytest.raises(InputError, match=re.escape(needle)) as info:
        repcurate.report_html(report_project.repset, **{kind: bad})
    assert str(bad) in str(info.value) and "fix:" in str(info.value)


def test_missing_inputs_name_the_file(report_project, tmp_path):
    with pytest.raises(InputError, match="not found; fix: pass the file written by `repcurate check --format json`"):
        repcurate.report_html(report_project.repset, check=tmp_path / "missing.json")
    with pytest.raises(InputError, match=re.escape("manifest.json: not found")):
        repcurate.report_html(tmp_path)


def test_a_non_report_object_is_a_usage_error(report_project):
    from repcurate.errors import UsageError

    with pytest.raises(UsageError, match="confirm=int: not a report; fix:"):
        repcurate.report_html(report_project.repset, confirm=42)
