"""The explore and Colab notebooks run headless end to end (papermill, kernel "python3") on a demo
project built once in a temporary folder: nothing is written into the checkout's data/ or models/."""
import json
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # a whole pipeline / notebook run: `make test-fast` skips it

papermill = pytest.importorskip("papermill")

ROOT = Path(__file__).resolve().parents[1]
STEPS = 6  # the demo model's training steps: the notebooks' workflow, not a model worth keeping


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("demo")


def run(name: str, out_dir: Path, **parameters) -> dict:
    """Execute notebooks/<name> with ``parameters`` in ``out_dir`` (its working directory); return it."""
    out = out_dir / name
    papermill.execute_notebook(str(ROOT / "notebooks" / name), str(out), parameters=parameters,
                               kernel_name="python3", cwd=str(out_dir), progress_bar=False, log_output=False)
    return json.loads(out.read_text())


def outputs_text(cell: dict) -> str:
    return "".join("".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
                   for o in cell.get("outputs", []))


def test_explore_notebook_runs_on_the_demo_and_a_user_wav(demo_dir, tmp_path):
    from gramlib.core.audio import write_wav

    # a user's file: 48 kHz binaural (resampled; the FOA model gives no estimate, the classical one does)
    t = np.arange(48000) / 48000
    wav = write_wav(tmp_path / "mine.wav", 0.1 * np.stack([np.sin(2e3 * t), 0.5 * np.sin(2e3 * t)]), 48000)
    nb = run("explore.ipynb", tmp_path, build_demo_data=True, demo_dir=str(demo_dir), demo_steps=STEPS,
             wav_path=str(wav))
    text = "\n".join(outputs_text(c) for c in nb["cells"] if c["cell_type"] == "code")
    assert str(demo_dir.resolve()) in text  # the demo project, not the checkout
    assert "gram-ambisonics is a foa model; the file is binaural" in text
    assert not (tmp_path / "data").exists() and not (tmp_path / "models").exists()


def test_colab_notebook_skips_the_install_and_runs(demo_dir, tmp_path):
    nb = run("colab.ipynb", tmp_path, work_dir=str(demo_dir), steps=STEPS)
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    install = next(c for c in code if "%pip install" in "".join(c["source"]))
    assert outputs_text(install).strip() == "gramlib is already installed: nothing to do"
    text = "\n".join(outputs_text(c) for c in code)
    assert "timestamp embeddings (1, " in text and "scene embedding (1, " in text
    assert (demo_dir / "scene_foa.wav").is_file()


def test_held_out_scenes_and_figure_1_on_the_demo(demo_dir):
    from gramlib.figures import panels
    from gramlib.interactive import demo
    from gramlib.nathear import heldout
    from gramlib.train import reconstruct

    paths = demo.build_demo(demo_dir, steps=STEPS)  # the notebooks' build, reused
    examples = heldout.held_out_examples(paths, "foa", n=2)
    assert [e["audio"].shape for e in examples] == [(4, 64000)] * 2  # 2-s events clips, test rooms
    assert examples[0]["title"] != examples[1]["title"] and examples[0]["room"]["dims_m"]
    clean = heldout.held_out_examples(paths, "clean", n=1)[0]
    assert clean["audio"].shape == (1, 64000) and clean["room"] is None
    scene = reconstruct.figure1_scene(paths, "gram-ambisonics", seed=0)
    assert scene["mixture"].shape == scene["reconstruction"].shape == (7, 200, 128) and scene["mask"].sum() == 160
    assert panels.figure_1(scene) is not None
