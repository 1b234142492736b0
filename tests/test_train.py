"""Pre-training: schedule, a clear stop on NaN, SIGKILL + resume to the same loss, DDP = one process."""
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from gramlib.core import config
from gramlib.train.batches import TrainingError
from gramlib.train.loop import lr_at

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A smoke-size project (sources + rooms) with a longer training budget for these tests."""
    from gramlib.corpus import sources
    from gramlib.scenes import rirbank
    from gramlib.core.paths import Paths

    work = tmp_path_factory.mktemp("train")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["profile"] = "smoke"
    params["profiles"]["smoke"]["train"].update(steps_main=24, checkpoint_every=6, log_every=2, num_workers=1)
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    loaded = config.load_params(work / "params.yaml")
    paths = Paths(work)
    sources.build(config.section(loaded, "sources"), paths.sources, paths.tasks, seed=0)
    for split in ("train", "test"):
        rirbank.build_bank(config.section(loaded, "rooms"), paths.rooms, split, seed=0)
    return work


def launch(work: Path, variant: str, *, nproc: int = 1, wait: bool = True):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "gramlib.train.launch", "--variant", variant]
    if nproc > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               "-m", "gramlib.train.launch", "--variant", variant]
    proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if wait:
        out, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, out[-3000:]
    return proc


def summary(work: Path, variant: str) -> dict:
    return json.loads((work / "models" / variant / "train_summary.json").read_text())


def weights(work: Path, variant: str) -> dict:
    return load_file(str(work / "models" / variant / "model.safetensors"))


def test_lr_schedule_warms_up_then_decays_to_zero():
    cfg = config.section(config.load_params(ROOT / "params.yaml", "cpu"), "train")
    total = 1000
    lrs = [lr_at(s, cfg, total) for s in range(total + 1)]
    assert lrs[0] == pytest.approx(cfg.lr / cfg.warmup_steps)
    assert max(lrs) == pytest.approx(cfg.lr)
    assert all(a <= b for a, b in zip(lrs[:cfg.warmup_steps], lrs[1:cfg.warmup_steps]))
    assert all(a >= b for a, b in zip(lrs[cfg.warmup_steps:], lrs[cfg.warmup_steps + 1:]))
    assert lrs[-1] == pytest.approx(0.0, abs=1e-12)


def test_sigkill_then_resume_reaches_the_same_loss(project):
    launch(project, "gram-binaural")
    straight = summary(project, "gram-binaural")
    reference = weights(project, "gram-binaural")
    shutil.rmtree(project / "models" / "gram-binaural")
    shutil.rmtree(project / "results" / "train" / "gram-binaural")
    proc = launch(project, "gram-binaural", wait=False)
    ckpt = project / "models" / "gram-binaural" / "checkpoints"
    deadline = time.time() + 300
    while not list(ckpt.glob("step-0000012")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (project / "models" / "gram-binaural" / "model.safetensors").exists()
    launch(project, "gram-binaural")
    resumed = summary(project, "gram-binaural")
    assert resumed["final_loss"] == pytest.approx(straight["final_loss"], rel=1e-6)
    for key, value in weights(project, "gram-binaural").items():
        torch.testing.assert_close(value, reference[key], rtol=1e-5, atol=1e-6)
    loss_log = (project / "results" / "train" / "gram-binaural" / "plots" / "metrics" / "train" / "loss.tsv")
    steps = [int(line.split("\t")[0]) for line in loss_log.read_text().splitlines()[1:]]
    assert steps == sorted(set(steps)), "resumed DVCLive log repeats or skips steps"


def test_a_finished_run_started_again_keeps_its_summary(project):
    """Nothing left to train: the summary keeps the finished run's loss and time (no NaN, no zeroed wall time)."""
    launch(project, "gram-binaural")  # the run above is complete: resumes at its last step
    first = summary(project, "gram-binaural")
    launch(project, "gram-binaural")
    again = summary(project, "gram-binaural")
    assert again["final_loss"] == first["final_loss"] and math.isfinite(again["final_loss"])
    assert again["wall_s"] == first["wall_s"] > 0 and again["wall_s_this_session"] == 0.0


def test_changed_config_does_not_resume(project, capsys):
    from gramlib.train import launch as launcher
    from gramlib.core.paths import Paths

    params = config.load_params(project / "params.yaml")
    run = launcher.make_run("gram-binaural", params, Paths(project))
    assert run.step == 24  # the finished run above
    params["profiles"] = None
    params["train"] = {**params["train"], "lr": params["train"]["lr"] * 2}
    assert launcher.make_run("gram-binaural", params, Paths(project)).step == 0
    assert "another configuration" in capsys.readouterr().out


@pytest.mark.slow
def test_two_ddp_processes_match_one(project):
    launch(project, "gram-clean")
    single = weights(project, "gram-clean")
    single_loss = summary(project, "gram-clean")["final_loss"]
    shutil.rmtree(project / "models" / "gram-clean")
    launch(project, "gram-clean", nproc=2)
    assert summary(project, "gram-clean")["processes"] == 2
    assert summary(project, "gram-clean")["final_loss"] == pytest.approx(single_loss, rel=1e-4)
    for key, value in weights(project, "gram-clean").items():
        torch.testing.assert_close(value, single[key], rtol=1e-3, atol=1e-4)  # summation order differs


def test_non_finite_loss_stops_with_a_clear_error(project, monkeypatch):
    from gramlib.train import launch as launcher
    from gramlib.core.paths import Paths
    from gramlib.train.loop import Run

    shutil.rmtree(project / "models" / "gram-ambisonics", ignore_errors=True)
    run = launcher.make_run("gram-ambisonics", config.load_params(project / "params.yaml"), Paths(project))
    monkeypatch.setattr(Run, "micro_loss", lambda self, batch, step: torch.tensor(float("nan"), requires_grad=True))
    with pytest.raises(TrainingError, match="non-finite loss nan at step 0"):
        run.train(progress=False)


def test_missing_data_is_named(tmp_path):
    from gramlib.train import launch as launcher
    from gramlib.core.paths import Paths

    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    with pytest.raises(TrainingError, match="run the `sources` stage first"):
        launcher.make_run("gram-binaural", config.load_params(tmp_path / "params.yaml"), Paths(tmp_path))


def test_bf16_and_compile_train_like_fp32(project):
    """The GPU recipe's code path (bf16 autocast + torch.compile), run on CPU: dynamo must trace the model
    without breaking, the loss must stay near fp32's, and the saved weights must load without the
    compile wrapper's key prefix. aot_eager runs dynamo and AOT autograd but needs no C++ compiler."""
    from gramlib.train import launch as launcher
    from gramlib.model.checkpoint import load_gram
    from gramlib.core.paths import Paths

    params = config.load_params(project / "params.yaml")
    params["train"] = {**params["train"], "steps_main": 8}
    plain = launcher.make_run("gram-binaural-time", params, Paths(project), device="cpu").train(progress=False)
    plain_weights = weights(project, "gram-binaural-time")
    params["train"] = {**params["train"], "bf16": True, "compile": True}
    run = launcher.make_run("gram-binaural-time", params, Paths(project), device="cpu", accel_on_cpu=True,
                            compile_backend="aot_eager")
    assert run.step == 0 and run.net is not run.model
    torch._dynamo.reset()
    fast = run.train(progress=False)
    torch._dynamo.reset()
    assert math.isfinite(fast["final_loss"])
    assert fast["final_loss"] == pytest.approx(plain["final_loss"], rel=0.05)
    fast_weights = weights(project, "gram-binaural-time")
    assert fast_weights.keys() == plain_weights.keys()
    assert any(not torch.equal(fast_weights[k], plain_weights[k]) for k in plain_weights)  # bf16 did act
    _, _, cfg = load_gram(project / "models" / "gram-binaural-time")  # strict load: same keys as GRAM's
    assert cfg["train"]["bf16"] and cfg["train"]["compile"]
