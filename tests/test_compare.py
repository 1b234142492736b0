"""gramlib.interactive.compare: every number in two result folders, timings left out, exit status for CI."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from gramlib.interactive.compare import STRUCTURE, TEXT, NUMBER, TIMING_KEYS, compare_dirs, is_timing, main

ROOT = Path(__file__).resolve().parents[1]

SCORES_MD = """\
| model | words | count | wall_s | Avg |
|---|---|---|---|---|
| GRAM-Binaural | 62.5 | 50.8 ± 6.8 | 76.962 | **53.9** |
| naive | 62.5 | 54.2 ± 4.9 | 12.000 | 55.3 |

First metric of each task in %; 2 seeds.
"""

COST_CSV = "model,steps,wall_s,final_loss\ngram-binaural,360,76.96,0.19\nnaive,0,1.5,nan\n"

EVAL = {
    "name": "gram-binaural",
    "train": {"steps": 360, "final_loss": 0.1875, "wall_s": 76.962, "device": "cpu", "ok": True},
    "tasks": {"hear/words": {"top1_acc": 0.6250001, "seconds": 3.28, "embed_seconds": 14.7,
                             "folds": [{"scores": {"top1_acc": 0.625}}, {"scores": {"top1_acc": 0.5}}]}},
}


def make_tree(root: Path, eval_json=None, md=SCORES_MD, cost=COST_CSV) -> Path:
    (root / "eval").mkdir(parents=True)
    (root / "tables").mkdir()
    (root / "train" / "gram-binaural").mkdir(parents=True)
    (root / "eval" / "gram-binaural.json").write_text(json.dumps(EVAL if eval_json is None else eval_json))
    (root / "tables" / "scores.md").write_text(md)
    (root / "tables" / "cost.csv").write_text(cost)
    (root / "train" / "gram-binaural" / "loss.tsv").write_text("step\tloss\n20\t1.25\n40\t0.75\n")
    (root / "eval" / "figure.png").write_bytes(b"\x89PNG not compared")
    return root


def edited(value):
    return json.loads(json.dumps(value))


def test_identical_trees_ok(tmp_path):
    a, b = make_tree(tmp_path / "a"), make_tree(tmp_path / "b")
    rep = compare_dirs(a, b)
    assert rep.ok and rep.differences == []
    assert rep.n_files == 4  # the .png is skipped
    assert rep.n_numbers > 10
    assert main([str(a), str(b)]) == 0


def test_json_number_in_seventh_digit(tmp_path):
    ev = edited(EVAL)
    ev["tasks"]["hear/words"]["top1_acc"] = 0.6250002  # differs in the 7th significant digit
    a, b = make_tree(tmp_path / "a"), make_tree(tmp_path / "b", eval_json=ev)
    rep = compare_dirs(a, b)
    assert not rep.ok
    assert [(d.path, d.kind) for d in rep.differences] == [
        ("eval/gram-binaural.json:tasks/hear/words/top1_acc", NUMBER)]
    line = str(rep.differences[0])
    assert line.startswith("eval/gram-binaural.json:tasks/hear/words/top1_acc: 0.6250001 != 0.6250002 (")
    assert compare_dirs(a, b, rtol=1e-5).ok
    assert compare_dirs(a, b, atol=1e-6).ok


def test_json_lists_text_bool_and_missing_keys(tmp_path):
    ev = edited(EVAL)
    ev["tasks"]["hear/words"]["folds"][1]["scores"]["top1_acc"] = 0.75
    ev["train"]["device"] = "cuda"
    ev["train"]["ok"] = False
    del ev["train"]["steps"]
    ev["extra"] = 1
    rep = compare_dirs(make_tree(tmp_path / "a"), make_tree(tmp_path / "b", eval_json=ev))
    got = {d.path: d.kind for d in rep.differences}
    assert got == {
        "eval/gram-binaural.json:tasks/hear/words/folds[1]/scores/top1_acc": NUMBER,
        "eval/gram-binaural.json:train/device": TEXT,
        "eval/gram-binaural.json:train/ok": TEXT,
        "eval/gram-binaural.json:train/steps": STRUCTURE,
        "eval/gram-binaural.json:extra": STRUCTURE,
    }
    assert rep.summary().endswith("1 differ beyond rtol=0 atol=0; 4 structure/text differences")


def test_timing_keys_ignored(tmp_path):
    ev = edited(EVAL)
    ev["train"]["wall_s"] = 55.6
    ev["tasks"]["hear/words"]["seconds"] = 9.9
    del ev["tasks"]["hear/words"]["embed_seconds"]  # a timing key on one side only is no difference
    md = SCORES_MD.replace("76.962", "99.125")
    cost = COST_CSV.replace("76.96", "50.01")
    a, b = make_tree(tmp_path / "a"), make_tree(tmp_path / "b", eval_json=ev, md=md, cost=cost)
    assert compare_dirs(a, b).ok
    assert is_timing("embed_seconds") and is_timing("Wall_H") and is_timing("crops_per_s")
    assert not is_timing("top1_acc") and not is_timing("final_loss")
    assert "seconds" in TIMING_KEYS


def test_ignore_patterns(tmp_path):
    ev = edited(EVAL)
    ev["train"]["device"] = "cuda"
    ev["train"]["final_loss"] = 0.5
    a, b = make_tree(tmp_path / "a"), make_tree(tmp_path / "b", eval_json=ev)
    rep = compare_dirs(a, b, ignore=["*/device"])
    assert [d.path for d in rep.differences] == ["eval/gram-binaural.json:train/final_loss"]
    assert compare_dirs(a, b, ignore=["eval/*"]).ok  # whole files by their path


def test_markdown_cell_change_reported(tmp_path):
    md = SCORES_MD.replace("54.2 ± 4.9", "54.2 ± 5.0")
    rep = compare_dirs(make_tree(tmp_path / "a"), make_tree(tmp_path / "b", md=md))
    assert [(d.path, d.kind, d.a, d.b) for d in rep.differences] == [
        ("tables/scores.md:line 4/count#1", NUMBER, "4.9", "5.0")]


def test_markdown_text_and_line_count(tmp_path):
    a = make_tree(tmp_path / "a")
    md = SCORES_MD.replace("**53.9**", "53.9").replace("2 seeds", "3 seeds") + "extra line\n"
    rep = compare_dirs(a, make_tree(tmp_path / "b", md=md))
    got = [(d.path, d.kind) for d in rep.differences]
    assert ("tables/scores.md", STRUCTURE) in got  # line count
    assert ("tables/scores.md:line 3/Avg", TEXT) in got  # bold marker moved
    assert ("tables/scores.md:line 6#0", NUMBER) in got  # 2 seeds -> 3 seeds
    assert ("tables/scores.md:B line 7", STRUCTURE) in got  # the extra line, aligned after the rest
    assert not any(p.startswith("tables/scores.md:line 3/Avg#") for p, _ in got)  # 53.9 == 53.9


def test_csv_cell_change(tmp_path):
    cost = COST_CSV.replace("0.19", "0.20")
    rep = compare_dirs(make_tree(tmp_path / "a"), make_tree(tmp_path / "b", cost=cost))
    assert [(d.path, d.kind) for d in rep.differences] == [("tables/cost.csv:row 0/final_loss", NUMBER)]
    # NaN equals NaN, "0.190" equals "0.19" as a number
    assert compare_dirs(make_tree(tmp_path / "c"),
                        make_tree(tmp_path / "d", cost=COST_CSV.replace("0.19", "0.190"))).ok


def test_tsv_and_headerless_csv(tmp_path):
    a, b = make_tree(tmp_path / "a"), make_tree(tmp_path / "b")
    (b / "train" / "gram-binaural" / "loss.tsv").write_text("step\tloss\n20\t1.25\n40\t0.5\n")
    for root, last in ((a, "-62"), (b, "-61")):
        (root / "pred.csv").write_text(f"26,0,0,170,-62\n27,0,0,161,{last}\n")
    rep = compare_dirs(a, b)
    assert [d.path for d in rep.differences] == ["pred.csv:row 1/col 4",
                                                 "train/gram-binaural/loss.tsv:row 1/loss"]


def test_file_on_one_side_only(tmp_path):
    a, b = make_tree(tmp_path / "a"), make_tree(tmp_path / "b")
    (b / "eval" / "new.detail.json").write_text("{}")
    (b / "tables" / "scores.md").unlink()
    rep = compare_dirs(a, b)
    assert {(d.path, d.kind, d.note) for d in rep.differences} == {
        ("eval/new.detail.json", STRUCTURE, "file only in B"),
        ("tables/scores.md", STRUCTURE, "file only in A"),
    }


def test_bad_folder_exit_2(tmp_path, capsys):
    a = make_tree(tmp_path / "a")
    assert main([str(a), str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert "missing" in err and "does not exist" in err and "folder" in err
    assert "Traceback" not in err
    with pytest.raises(FileNotFoundError):
        compare_dirs(a, tmp_path / "missing")


def test_cli_returns_1_on_difference(tmp_path):
    ev = edited(EVAL)
    ev["train"]["final_loss"] = 0.2
    a, b = make_tree(tmp_path / "a"), make_tree(tmp_path / "b", eval_json=ev)
    proc = subprocess.run([sys.executable, "-m", "gramlib.interactive.compare", str(a), str(b), "--max-lines", "5"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith("eval/gram-binaural.json:train/final_loss: 0.1875 != 0.2 (abs diff")
    assert " numbers compared in 4 files; " in lines[-1]
    assert "1 differ beyond rtol=0 atol=0" in lines[-1]
    ok = subprocess.run([sys.executable, "-m", "gramlib.interactive.compare", str(a), str(b), "--rtol", "0.1"],
                        capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = subprocess.run([sys.executable, "-m", "gramlib.interactive.compare", str(a), str(tmp_path / "nope")],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "nope" in bad.stderr


def test_max_lines_cap(tmp_path, capsys):
    a, b = make_tree(tmp_path / "a"), make_tree(tmp_path / "b", cost=COST_CSV.replace("0", "9"))
    assert main([str(a), str(b), "--max-lines", "1"]) == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 3 and "more differences not shown" in out[1]


def test_real_results_against_itself():
    results = ROOT / "results"
    if not results.is_dir():
        pytest.skip("no results/ folder in this checkout")
    rep = compare_dirs(results, results)
    assert rep.ok, rep.lines(20)
    assert rep.n_files > 0 and rep.n_numbers > 0


def test_timing_keys_match_whole_words_only():
    from gramlib.interactive.compare import is_timing

    assert all(map(is_timing, ["embed_seconds", "wall_h", "train_s", "crops_per_s", "seconds"]))
    assert not any(map(is_timing, ["train_steps", "time_shift", "validate", "candidate", "median_abs_error_s"]))
