"""The ``gram`` command line on a tiny HEAR-layout suite: every subcommand writes what it says, bad
arguments end with one line naming the argument, and ``--help`` works for each."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gramlib.interactive import cli
from gramlib.core.audio import write_wav
from gramlib.core.tasks import TaskWriter, read_task
from test_nathear import tone  # the same windowed test tone

ROOT = Path(__file__).resolve().parents[1]
RATE = 32000
SMOKE = ["--params", str(ROOT / "params.yaml"), "--profile", "smoke"]


def gram(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """``python -m gramlib.interactive.cli`` in a fresh process: each command pins its numerics before torch loads."""
    return subprocess.run([sys.executable, "-m", "gramlib.interactive.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    meta = {"task_name": "words", "embedding_type": "scene", "prediction_type": "multiclass",
            "split_mode": "trainvaltest", "sample_duration": 0.5, "evaluation": ["top1_acc"]}
    writer = TaskWriter(root / "tasks", "words", meta, RATE)
    for i, split in enumerate(["train"] * 12 + ["valid"] * 6 + ["test"] * 6):
        writer.add(split, f"w{i:02d}.wav", tone(rng, 0.5) * (1.0 + i % 2), "loud" if i % 2 else "soft")
    writer.close()
    return root


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from gramlib.core import config
    from gramlib.model.checkpoint import save_checkpoint
    from gramlib.model.gram import build_model

    params = config.load_params(ROOT / "params.yaml", profile="smoke")
    _, model = build_model("binaural", config.section(params, "model"), config.section(params, "features"), seed=0)
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "gram", model, config={"format": "binaural"})


def test_every_subcommand_has_help():
    for command in cli.COMMANDS:
        with pytest.raises(SystemExit) as done:
            cli.main([command, "--help"])
        assert done.value.code == 0


def test_nathear_builds_binaural_tasks_with_loc_and_t60(suite, tmp_path):
    out = tmp_path / "nathear"
    done = gram(*SMOKE, "nathear", str(suite / "tasks"), str(out), "--formats", "binaural", "--test-rooms", "3",
                "--sets-per-room", "2", "--loc-clips", "8", "--t60-clips", "6", "--snr-db", "10,20",
                "--loc-sources", "words=words")
    assert done.returncode == 0, done.stderr[-2000:]
    assert {p.name for p in (out / "binaural").iterdir()} == {"words", "words-loc", "words-t60"}
    assert not (out / "foa").exists() and (out / "rooms" / "test" / "manifest.csv").is_file()
    loc = read_task(out / "binaural" / "words-loc")
    assert sum(len(loc.files(s)) for s in loc.splits) == 8
    assert read_task(out / "binaural" / "words").metadata["nathear"]["snr_db"] == [10.0, 20.0]
    assert "words-loc" in done.stdout


def test_evaluate_scores_a_hear_module_and_writes_the_pipelines_json(suite, checkpoint, tmp_path):
    out = tmp_path / "metrics.json"
    done = gram(*SMOKE, "evaluate", "gramlib.model.hear", "--model", str(checkpoint), "--tasks-dir", str(suite / "tasks"),
                "--out", str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    res = json.loads(out.read_text())
    task = res["tasks"]["tasks/words"]
    assert 0.0 <= task["top1_acc"] <= 1.0 and task["n_test"] == 6
    assert task["top1_acc_ci95_low"] <= task["top1_acc"] <= task["top1_acc_ci95_high"]
    assert res["module"] == "gramlib.model.hear" and res["numerics"]["pinned"] is True
    assert "tasks/words" in done.stdout and out.with_suffix(".detail.json").is_file()


def test_embed_writes_one_array_per_wav(suite, checkpoint, tmp_path):
    wavs = suite / "tasks" / "words" / str(RATE) / "test"
    for kind, ndim in (("scene", 1), ("timestamp", 2)):
        done = gram(*SMOKE, "embed", str(checkpoint), str(wavs), str(tmp_path / kind), "--kind", kind)
        assert done.returncode == 0, done.stderr[-2000:]
        arrays = sorted((tmp_path / kind).glob("w??.npy"))
        assert len(arrays) == 6 and np.load(arrays[0]).ndim == ndim
    stamps = np.load(tmp_path / "timestamp" / "w18.timestamps.npy")
    assert stamps.ndim == 1 and len(stamps) == len(np.load(tmp_path / "timestamp" / "w18.npy"))


def test_localize_prints_the_direction_of_a_plane_wave_from_the_left(tmp_path):
    rng = np.random.default_rng(1)
    s = rng.standard_normal(RATE).astype(np.float32) * 0.1
    foa = np.stack([s, s, 0 * s, 0 * s])  # ambiX W, Y, Z, X with SN3D gains of a source at +y (left)
    write_wav(tmp_path / "left.wav", foa, RATE)
    done = gram(*SMOKE, "localize", str(tmp_path / "left.wav"), "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert abs(found["azimuth_deg"] - 90.0) < 2.0 and abs(found["elevation_deg"]) < 2.0


def test_pretrain_refuses_an_unknown_variant_and_names_missing_data(tmp_path):
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    done = gram("--profile", "smoke", "pretrain", "--variant", "no-such-variant", cwd=tmp_path)
    assert done.returncode == 2 and "no-such-variant" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    done = gram("--profile", "smoke", "pretrain", "--variant", "gram-binaural", cwd=tmp_path)
    assert done.returncode != 0 and "sources" in done.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("args, named", [
    (["nathear", "/no/such/tasks", "/tmp/x"], "TASKS_DIR"),
    (["nathear", ".", "/tmp/x", "--snr-db", "40,5"], "--snr-db"),
    (["nathear", ".", "/tmp/x", "--test-rooms", "0"], "--test-rooms"),
    (["evaluate", "no_such_module_xyz", "--tasks-dir", ".", "--out", "/tmp/m.json"], "MODULE"),
    (["evaluate", "json", "--tasks-dir", ".", "--out", "/tmp/m.json"], "not a HEAR 2021 module"),
    (["embed", "/no/ckpt", ".", "/tmp/e"], "CHECKPOINT"),
    (["localize", "/no/such.wav"], "WAV"),
    (["embed", ".", ".", "/tmp/e", "--kind", "frames"], "--kind"),
])
def test_bad_arguments_end_with_one_line_naming_them(args, named):
    done = gram(*SMOKE, *args)
    assert done.returncode == 2
    lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
    assert named in lines[-1], done.stderr
    assert "Traceback" not in done.stderr


def test_the_console_script_is_declared_and_installed():
    import importlib
    import shutil
    import tomllib

    target = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]["gram"]
    module, func = target.split(":")
    assert getattr(importlib.import_module(module), func) is cli.main
    script = Path(sys.executable).parent / "gram"
    if script.exists() or shutil.which("gram"):  # installed by make setup (pip install -e)
        done = subprocess.run([str(script if script.exists() else shutil.which("gram")), "--help"],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and "nathear" in done.stdout
