"""scan_directory / scan_list / scan on real image trees built in tmp_path."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from repcurate.data.scan import (
    FileEntry,
    ImageRecord,
    ScanResult,
    SkippedFile,
    fingerprint_file,
    fingerprint_files,
    list_directory,
    list_source,
    scan_directory,
    scan_list,
)
from repcurate.data.sources import scan
from repcurate.errors import InputError, UsageError


def _blake(path: Path) -> str:
    return hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()


def _save(path: Path, array: np.ndarray, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **kwargs)
    return path


def _skipped(result: ScanResult) -> list[tuple[str, str]]:
    return [(s.path, s.reason) for s in result.skipped]


@pytest.fixture
def class_tree(tmp_path, big_digits, chelsea) -> Path:
    """A class-per-folder collection with nesting, odd names, hidden entries and bad files."""
    root = tmp_path / "train"
    chelsea = np.ascontiguousarray(chelsea[100:164, 200:264])  # a 64x64 crop keeps the fixture fast
    _save(root / "cat" / "a.png", chelsea)
    _save(root / "cat" / "sub" / "deeper" / "b.jpg", chelsea, quality=90)
    _save(root / "cat" / ".hidden.png", chelsea)
    _save(root / "cat" / ".cache" / "x.png", chelsea)
    (root / "cat" / "notes.txt").write_text("not an image", encoding="utf-8")
    _save(root / "dog" / "C.JPG", big_digits[2], format="JPEG")
    _save(root / "dog" / "d.Png", big_digits[3], format="PNG")
    _save(root / "dog" / "same_as_d.png", big_digits[3])  # identical bytes to d.Png
    (root / "dog" / "zero.png").touch()
    os.symlink(root / "dog" / "missing.png", root / "dog" / "broken.png")
    _save(root / "ñandú" / "ß.png", big_digits[4])
    (root / "empty").mkdir()
    _save(root / ".git" / "objects" / "y.png", chelsea)
    (root / ".DS_Store").write_bytes(b"\x00\x01")
    (root / "README.md").write_text("# train\n", encoding="utf-8")
    _save(root / "top.png", big_digits[5])
    return root


# --------------------------------------------------------------------------- class layout


def test_class_layout_finds_nested_images_with_labels(class_tree):
    result = scan_directory(class_tree)
    assert result.root == class_tree.resolve()
    assert result.layout == "classes"
    assert result.labelled
    assert result.class_folders == ["cat", "dog", "empty", "ñandú"]
    assert [(r.path, r.label) for r in result.records] == [
        ("cat/a.png", "cat"),
        ("cat/sub/deeper/b.jpg", "cat"),
        ("dog/C.JPG", "dog"),
        ("dog/d.Png", "dog"),
        ("dog/same_as_d.png", "dog"),
        ("ñandú/ß.png", "ñandú"),
    ]
    for record in result.records:
        assert isinstance(record, ImageRecord)
        on_disk = class_tree / record.path
        assert record.size_bytes == on_disk.stat().st_size > 0
        assert record.fingerprint == _blake(on_disk)
        assert len(record.fingerprint) == 32


def test_class_layout_reports_what_it_skipped(class_tree):
    result = scan_directory(class_tree, layout="classes")
    assert _skipped(result) == [
        ("README.md", "outside_class_folder"),
        ("cat/notes.txt", "unsupported_extension"),
        ("dog/broken.png", "unreadable"),
        ("dog/zero.png", "empty_file"),
        ("top.png", "outside_class_folder"),
    ]
    by_path = {s.path: s for s in result.skipped}
    assert by_path["cat/notes.txt"].detail == ".txt is not an image extension"
    assert by_path["dog/zero.png"].detail == "the file has 0 bytes"
    assert by_path["dog/broken.png"].detail == "file not found (missing or a broken link)"
    assert by_path["top.png"].to_dict() == {
        "path": "top.png",
        "reason": "outside_class_folder",
        "detail": "a file at the top level of a class-per-folder layout",
    }


def test_hidden_files_and_folders_are_ignored_everywhere(class_tree):
    for layout in ("classes", "flat"):
        result = scan_directory(class_tree, layout=layout)
        seen = [r.path for r in result.records] + [s.path for s in result.skipped]
        assert not any(part.startswith(".") for p in seen for part in p.split("/")), layout
    assert ".git" not in scan_directory(class_tree).class_folders


def test_empty_class_folder_is_listed_without_records(class_tree):
    result = scan_directory(class_tree)
    assert "empty" in result.class_folders
    assert not [r for r in result.records if r.label == "empty"]


def test_identical_files_share_a_fingerprint(class_tree):
    records = {r.path: r for r in scan_directory(class_tree).records}
    assert records["dog/d.Png"].fingerprint == records["dog/same_as_d.png"].fingerprint
    assert records["dog/d.Png"].fingerprint != records["dog/C.JPG"].fingerprint
    assert fingerprint_file(class_tree / "dog" / "d.Png") == records["dog/d.Png"].fingerprint


def test_records_are_sorted_posix_relative_paths(class_tree):
    result = scan_directory(class_tree)
    paths = [r.path for r in result.records]
    assert paths == sorted(paths)
    for path in paths + [s.path for s in result.skipped]:
        assert not path.startswith("/") and "\\" not in path
        assert not Path(path).is_absolute()
    assert [s.path for s in result.skipped] == sorted(s.path for s in result.skipped)


def test_non_ascii_names_round_trip(tmp_path, big_digits):
    root = tmp_path / "données"
    _save(root / "ñandú" / "ß.png", big_digits[0])
    _save(root / "日本" / "猫 1.jpg", big_digits[1], format="JPEG")
    result = scan_directory(root)
    assert result.class_folders == ["ñandú", "日本"]
    assert [(r.path, r.label) for r in result.records] == [("ñandú/ß.png", "ñandú"), ("日本/猫 1.jpg", "日本")]
    assert (result.root / result.records[1].path).is_file()


def test_worker_count_does_not_change_the_result(class_tree):
    one = scan_directory(class_tree, workers=1)
    many = scan_directory(class_tree, workers=8)
    assert one.records == many.records
    assert one.skipped == many.skipped
    assert one.class_folders == many.class_folders


def test_symlinked_files_and_folders_are_followed(tmp_path, big_digits):
    elsewhere = tmp_path / "elsewhere"
    _save(elsewhere / "far.png", big_digits[6])
    root = tmp_path / "root"
    _save(root / "cls" / "own.png", big_digits[7])
    os.symlink(elsewhere, root / "cls" / "linked_dir")
    os.symlink(elsewhere / "far.png", root / "cls" / "linked_file.png")
    result = scan_directory(root)
    assert [r.path for r in result.records] == ["cls/linked_dir/far.png", "cls/linked_file.png", "cls/own.png"]
    assert result.records[0].fingerprint == result.records[1].fingerprint == _blake(elsewhere / "far.png")


# Each test below has one loop only: with two, an unguarded walk branches at every level and
# takes 2**40 steps before the OS refuses the path (ELOOP) instead of 40.
@pytest.mark.parametrize("loop", ["up_to_class", "up_to_root"])
def test_symlink_loop_is_walked_once(tmp_path, big_digits, loop):
    root = tmp_path / "root"
    _save(root / "cls" / "a.png", big_digits[0])
    _save(root / "cls" / "sub" / "b.png", big_digits[1])
    if loop == "up_to_class":
        os.symlink("..", root / "cls" / "sub" / "up")  # sub/up -> cls: cls/sub/up/sub/up/...
    else:
        os.symlink(root, root / "cls" / "to_root")  # cls/to_root -> root, which contains cls
    for layout in ("classes", "flat"):
        result = scan_directory(root, layout=layout)
        assert [r.path for r in result.records] == ["cls/a.png", "cls/sub/b.png"], layout


def test_two_symlinks_pointing_at_each_other_terminate(tmp_path, big_digits):
    root = tmp_path / "root"
    _save(root / "cls" / "a" / "x.png", big_digits[0])
    _save(root / "cls" / "b" / "y.png", big_digits[1])
    os.symlink(root / "cls" / "b", root / "cls" / "a" / "to_b")
    os.symlink(root / "cls" / "a", root / "cls" / "b" / "to_a")
    paths = [r.path for r in scan_directory(root).records]
    # each real folder appears at most once along any one path
    assert paths == ["cls/a/to_b/y.png", "cls/a/x.png", "cls/b/to_a/x.png", "cls/b/y.png"]


@pytest.mark.parametrize("layout", ["classes", "flat"])
def test_links_that_lead_out_of_the_class_folder_are_skipped_as_symlink_loops(tmp_path, big_digits, layout):
    """``c1/up -> ..`` used to scan the whole tree again under class c1 (other classes' images became
    exact duplicates of c1's and those classes vanished); a link into another class counted its images twice."""
    root = tmp_path / "root"
    for c in range(4):
        _save(root / f"c{c}" / f"{c}.png", big_digits[c])
    os.symlink("..", root / "c1" / "up")
    os.symlink(root / "c3", root / "c2" / "sideways")
    result = scan_directory(root, layout=layout)
    # flat: the whole root is one folder; a link inside it is an exact duplicate, not a loop
    sideways = ["c2/sideways/3.png"] if layout == "flat" else []
    assert [r.path for r in result.records] == ["c0/0.png", "c1/1.png", "c2/2.png", *sideways, "c3/3.png"]
    loops = {s.path: s.detail for s in result.skipped if s.reason == "symlink_loop"}
    if layout == "classes":
        assert sorted(loops) == ["c1/up", "c2/sideways"]
        assert "contains the whole collection" in loops["c1/up"]
        assert "counted twice" in loops["c2/sideways"]
    else:
        assert sorted(loops) == ["c1/up"]


def test_class_folder_that_links_to_the_root_is_listed_and_skipped(tmp_path, big_digits):
    root = tmp_path / "root"
    _save(root / "a" / "x.png", big_digits[0])
    os.symlink(".", root / "b")
    result = scan_directory(root)
    assert [r.path for r in result.records] == ["a/x.png"]
    assert result.class_folders == ["a", "b"]
    assert _skipped(result) == [("b", "symlink_loop")]


def test_undecodable_names_are_skipped_with_an_escaped_path(tmp_path, big_digits):
    root = tmp_path / "root"
    good = _save(root / "cls" / "good.png", big_digits[0])
    raw_root = os.fsencode(root)
    for name in (b"/cls/\xff\xfe.png", b"/cls/sub\xe9/x.png", b"/bad\xff/y.png"):
        os.makedirs(os.path.dirname(raw_root + name), exist_ok=True)
        with open(raw_root + name, "wb") as handle:
            handle.write(good.read_bytes())
    result = scan_directory(root)
    assert [r.path for r in result.records] == ["cls/good.png"]
    assert _skipped(result) == [("bad\\xff", "undecodable_name"), ("cls/\\xff\\xfe.png", "undecodable_name"),
                                ("cls/sub\\xe9", "undecodable_name")]
    assert result.class_folders == ["cls"]
    text = json.dumps([s.to_dict() for s in result.skipped], ensure_ascii=False)
    text.encode("utf-8")  # the manifest writer's step that used to raise UnicodeEncodeError
    flat = scan_directory(root, layout="flat")
    assert [r.path for r in flat.records] == ["cls/good.png"]
    assert {s.reason for s in flat.skipped} == {"undecodable_name"}


def test_undecodable_root_is_refused_up_front(tmp_path, big_digits):
    root = os.fsencode(tmp_path) + b"/r\xff"
    os.makedirs(root + b"/cls")
    Image.fromarray(big_digits[0]).save(os.fsdecode(root + b"/cls/a.png"))
    with pytest.raises(InputError, match="not valid UTF-8"):
        scan_directory(Path(os.fsdecode(root)))


# --------------------------------------------------------------------------- flat and auto


def test_flat_layout_is_unlabelled_and_recursive(tmp_path, big_digits, chelsea):
    root = tmp_path / "calib"
    _save(root / "1.png", big_digits[1])
    _save(root / "2.BMP", big_digits[2], format="BMP")
    _save(root / "more" / "3.webp", np.ascontiguousarray(chelsea[:48, :48]), lossless=True)
    (root / ".thumbs.png").write_bytes(b"hidden")
    (root / "list.txt").write_text("x", encoding="utf-8")
    result = scan_directory(root, layout="flat")
    assert result.layout == "flat"
    assert not result.labelled
    assert result.class_folders == []
    assert [(r.path, r.label) for r in result.records] == [("1.png", None), ("2.BMP", None), ("more/3.webp", None)]
    assert _skipped(result) == [("list.txt", "unsupported_extension")]


def test_flat_layout_on_a_class_tree_keeps_top_level_files(class_tree):
    result = scan_directory(class_tree, layout="flat")
    paths = [r.path for r in result.records]
    assert "top.png" in paths and "cat/sub/deeper/b.jpg" in paths
    assert all(r.label is None for r in result.records)
    assert ("README.md", "unsupported_extension") in _skipped(result)
    assert not any(s.reason == "outside_class_folder" for s in result.skipped)


def test_auto_layout_detection(tmp_path, big_digits):
    files_only = tmp_path / "files_only"
    _save(files_only / "a.png", big_digits[0])
    assert scan_directory(files_only).layout == "flat"

    only_hidden_dir = tmp_path / "only_hidden_dir"
    _save(only_hidden_dir / "a.png", big_digits[0])
    _save(only_hidden_dir / ".cache" / "b.png", big_digits[1])
    result = scan_directory(only_hidden_dir)
    assert result.layout == "flat"
    assert [r.path for r in result.records] == ["a.png"]

    with_dir = tmp_path / "with_dir"
    _save(with_dir / "a.png", big_digits[0])
    _save(with_dir / "k" / "b.png", big_digits[1])
    result = scan_directory(with_dir, layout="auto")
    assert result.layout == "classes"
    assert [(r.path, r.label) for r in result.records] == [("k/b.png", "k")]
    assert _skipped(result) == [("a.png", "outside_class_folder")]


def test_empty_directory_scans_to_nothing(tmp_path):
    result = scan_directory(tmp_path)
    assert result.layout == "flat"
    assert result.records == [] and result.skipped == [] and not result.labelled


def test_directory_errors(tmp_path, big_digits):
    with pytest.raises(InputError, match="directory not found"):
        scan_directory(tmp_path / "nope")
    image = _save(tmp_path / "one.png", big_digits[0])
    with pytest.raises(InputError, match="not a directory"):
        scan_directory(image)
    with pytest.raises(UsageError, match="unknown layout 'tree'"):
        scan_directory(tmp_path, layout="tree")
    with pytest.raises(InputError):
        scan(tmp_path / "nope")
    assert InputError.exit_code == 3 and UsageError.exit_code == 2


# --------------------------------------------------------------------------- list files


@pytest.fixture
def list_images(tmp_path, big_digits, chelsea) -> Path:
    base = tmp_path / "ds"
    chelsea = np.ascontiguousarray(chelsea[100:164, 200:264])
    _save(base / "imgs" / "a.png", big_digits[0])
    _save(base / "imgs" / "b.jpg", chelsea, quality=90)
    _save(base / "imgs" / "ñ.png", big_digits[1])
    (base / "imgs" / "zero.png").touch()
    _save(tmp_path / "outside" / "far.png", big_digits[2])
    return base


def test_csv_list_with_relative_absolute_missing_and_duplicate_rows(list_images, tmp_path):
    absolute_inside = (list_images / "imgs" / "b.jpg").resolve()
    absolute_outside = (tmp_path / "outside" / "far.png").resolve()
    csv_file = list_images / "train.csv"
    csv_file.write_text(
        "path,label\n"
        "imgs/ñ.png,bird\n"
        "imgs/a.png,cat\n"
        f"{absolute_inside},dog\n"
        f"{absolute_outside},\n"
        "imgs/missing.png,cat\n"
        "imgs/a.png,dog\n"
        "imgs/zero.png,cat\n"
        "imgs/notes.txt,cat\n",
        encoding="utf-8",
    )
    result = scan_list(csv_file)
    # the root holds the list and every listed file, so no recorded path is absolute or climbs out with ..
    assert result.root == tmp_path.resolve()
    assert result.layout == "list"
    assert result.labelled
    assert result.class_folders == []
    assert [(r.path, r.label) for r in result.records] == [
        ("ds/imgs/a.png", "cat"),  # the first listing wins
        ("ds/imgs/b.jpg", "dog"),
        ("ds/imgs/ñ.png", "bird"),
        ("outside/far.png", None),
    ]
    assert result.records[3].fingerprint == _blake(absolute_outside)
    assert result.records[1].size_bytes == absolute_inside.stat().st_size
    assert _skipped(result) == [
        ("ds/imgs/a.png", "listed_twice"),
        ("ds/imgs/missing.png", "unreadable"),
        ("ds/imgs/notes.txt", "unsupported_extension"),
        ("ds/imgs/zero.png", "empty_file"),
    ]
    assert scan(csv_file).records == result.records


def test_list_root_holds_files_listed_with_dotdot(list_images, tmp_path):
    csv_file = list_images / "imgs" / "up.csv"
    csv_file.write_text("path\n../../outside/far.png\na.png\n", encoding="utf-8")
    result = scan_list(csv_file)
    assert result.root == tmp_path.resolve()
    assert [r.path for r in result.records] == ["ds/imgs/a.png", "outside/far.png"]
    assert all(".." not in r.path.split("/") and not r.path.startswith("/") for r in result.records)


def test_csv_duplicate_by_absolute_and_relative_path(list_images):
    csv_file = list_images / "dups.csv"
    csv_file.write_text(f"path\nimgs/a.png\n{(list_images / 'imgs' / 'a.png').resolve()}\n./imgs/a.png\n", encoding="utf-8")
    result = scan_list(csv_file)
    assert [r.path for r in result.records] == ["imgs/a.png"]
    assert _skipped(result) == [("imgs/a.png", "listed_twice"), ("imgs/a.png", "listed_twice")]
    assert result.layout == "flat" and not result.labelled


def test_csv_with_bom_and_extra_columns(list_images):
    csv_file = list_images / "excel.CSV"
    csv_file.write_bytes("\ufeffid,path,label\n1, imgs/a.png , cat \n2,imgs/b.jpg,\n".encode("utf-8"))
    result = scan(csv_file)
    assert [(r.path, r.label) for r in result.records] == [("imgs/a.png", "cat"), ("imgs/b.jpg", None)]


def test_csv_without_path_header_is_refused(list_images):
    csv_file = list_images / "noheader.csv"
    csv_file.write_text("imgs/a.png,cat\nimgs/b.jpg,dog\n", encoding="utf-8")
    with pytest.raises(InputError, match="header row with a 'path' column"):
        scan_list(csv_file)
    empty = list_images / "empty.csv"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(InputError, match="'path' column"):
        scan_list(empty)


def test_csv_empty_path_names_the_line(list_images):
    csv_file = list_images / "gap.csv"
    csv_file.write_text("path,label\nimgs/a.png,cat\n,dog\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"gap\.csv:3: empty path"):
        scan_list(csv_file)


def test_jsonl_list(list_images):
    jsonl = list_images / "train.jsonl"
    lines = [
        json.dumps({"path": "imgs/b.jpg", "label": "dog"}),
        "",
        json.dumps({"path": "imgs/a.png", "label": 3}, ensure_ascii=False),
        json.dumps({"path": "imgs/ñ.png", "label": None}, ensure_ascii=False),
        json.dumps({"path": str((list_images / "imgs" / "a.png").resolve())}),
        json.dumps({"path": "imgs/gone.webp", "label": "cat"}),
    ]
    jsonl.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = scan(jsonl)
    assert result.layout == "list"
    assert [(r.path, r.label) for r in result.records] == [
        ("imgs/a.png", "3"),
        ("imgs/b.jpg", "dog"),
        ("imgs/ñ.png", None),
    ]
    assert _skipped(result) == [("imgs/a.png", "listed_twice"), ("imgs/gone.webp", "unreadable")]


def test_ndjson_is_a_list_too(list_images):
    nd = list_images / "calib.ndjson"
    nd.write_text('{"path": "imgs/a.png"}\n', encoding="utf-8")
    result = scan(nd)
    assert [(r.path, r.label) for r in result.records] == [("imgs/a.png", None)]
    assert result.layout == "flat"


def test_bad_json_line_names_the_line(list_images):
    jsonl = list_images / "bad.jsonl"
    jsonl.write_text('{"path": "imgs/a.png"}\n\n{"path": imgs/b.jpg}\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"bad\.jsonl:3: invalid JSON"):
        scan_list(jsonl)


@pytest.mark.parametrize("line", ['["imgs/a.png"]', '{"file": "imgs/a.png"}', '{"path": 7}'])
def test_json_line_without_a_path_string_names_the_line(list_images, line):
    jsonl = list_images / "nopath.jsonl"
    jsonl.write_text('{"path": "imgs/a.png"}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"nopath\.jsonl:2: each line needs a \"path\" string"):
        scan_list(jsonl)


def test_list_file_errors(tmp_path):
    with pytest.raises(InputError, match="list file not found"):
        scan_list(tmp_path / "missing.csv")
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("path\nni\xf1o.png\n".encode("latin-1"))
    with pytest.raises(InputError, match="cannot read the list file"):
        scan_list(latin1)


def test_scan_dispatches_on_what_it_is_given(class_tree, list_images):
    assert scan(class_tree).layout == "classes"
    assert scan(class_tree, layout="flat").layout == "flat"
    csv_file = list_images / "x.csv"
    csv_file.write_text("path,label\nimgs/a.png,cat\n", encoding="utf-8")
    assert scan(csv_file).layout == "list"
    # a folder whose name ends in .csv is still a folder
    folder = list_images.parent / "folder.csv"
    _save(folder / "one.png", np.zeros((4, 4), dtype=np.uint8))
    assert [r.path for r in scan(folder).records] == ["one.png"]


def test_skipped_file_to_dict_round_trip():
    skipped = SkippedFile("a/b.png", "empty_file", "the file has 0 bytes")
    assert SkippedFile(**skipped.to_dict()) == skipped


# --------------------------------------------------------------------------- listing, then fingerprinting a subset


def test_listing_knows_every_file_and_skip_without_reading_any(class_tree):
    listing = list_directory(class_tree)
    full = scan(class_tree)
    assert [(f.path, f.label, f.size_bytes) for f in listing.files] == \
        [(r.path, r.label, r.size_bytes) for r in full.records]
    assert listing.skipped == full.skipped  # empty, missing, non-image, top-level: all found by the listing
    assert all(isinstance(f, FileEntry) for f in listing.files)
    assert list_source(class_tree).files == listing.files


def test_fingerprinting_reads_only_the_files_it_is_given(class_tree):
    listing = list_directory(class_tree)
    chosen = [f for f in listing.files if f.label == "dog"]
    others = [f for f in listing.files if f.label != "dog"]
    (class_tree / others[0].path).unlink()  # gone after listing, but not asked for: never opened
    (class_tree / chosen[0].path).unlink()  # gone after listing and asked for: unreadable
    result = fingerprint_files(listing, chosen, workers=2)
    assert [r.path for r in result.records] == [f.path for f in chosen[1:]]
    assert [r.fingerprint for r in result.records] == [_blake(class_tree / f.path) for f in chosen[1:]]
    gone = [s for s in result.skipped if s.path in (chosen[0].path, others[0].path)]
    assert [(s.path, s.reason) for s in gone] == [(chosen[0].path, "unreadable")]
    assert set(listing.skipped) <= set(result.skipped)
