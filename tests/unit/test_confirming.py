"""confirm's result: arms per point of the quantizer's settings grid, summary rows keyed by that point."""
from __future__ import annotations

from repcurate.commands.confirm import ConfirmResult


def _arm(name: str, bc: bool, top1: float) -> dict:
    return {"set": name, "bias_correction": bc, "metric": {"top1": top1}, "ptq_seconds": 1.0,
            "settings": {"bias_correction": bc}}


def test_summary_has_one_row_per_grid_point_on_before_off_whatever_the_arm_order():
    arms = [_arm("curated", False, 0.9), _arm("random-0", False, 0.8), _arm("curated", True, 0.95),
            _arm("random-0", True, 0.85)]
    rows = ConfirmResult(metric="top1", float={"top1": 0.97}, arms=arms).summary()
    assert [(r["bias_correction"], r["curated"], r["random_mean"]) for r in rows] == [(True, 0.95, 0.85), (False, 0.9, 0.8)]
    assert list(rows[0])[:2] == ["bias_correction", "curated"]  # the JSON keeps its keys and their order


def test_a_second_confirm_decodes_no_eval_image(tmp_path):
    import repcurate
    from repcurate.example_data import write_digits_folder
    from tests.unit.embed.engine_testdata import write_engine_project

    train, model, preprocess = write_engine_project(tmp_path, per_class=4)
    write_digits_folder(tmp_path / "eval", per_class=dict.fromkeys(range(3), 3), offset=10)
    log = tmp_path / "calls.txt"
    (tmp_path / "counting.py").write_text(
        "import numpy as np\n\n"
        "def preprocess(image):\n"
        f"    with open({str(log)!r}, 'a') as handle:\n"
        "        handle.write(f'{image.size[0]}x{image.size[1]}\\n')\n"
        "    return np.asarray(image.convert('L').resize((12, 12)), np.float32)[None] / 255.0\n", encoding="utf-8")
    repcurate.build(train, tmp_path / "set", size=6, model=model, preprocess=preprocess, use_cache=False,
                    progress=False, device="cpu")

    def eval_decodes() -> int:
        log.write_text("")
        repcurate.confirm(tmp_path / "set", model, tmp_path / "eval", random_sets=0, first_n=False,
                          bias_correction=(True,), preprocess=f"{tmp_path / 'counting.py'}:preprocess",
                          cache_dir=tmp_path / "cache", device="cpu")
        return log.read_text().splitlines().count("32x32")  # the digits; the probe images have other sizes

    assert eval_decodes() == 9
    assert eval_decodes() == 0
