"""Model cards (gramlib.figures.cards) and Figure 1's scene file (gramlib.core.scenefile)."""
import json

import numpy as np
import pytest
import yaml

from gramlib.core import scenefile
from gramlib.figures import cards, panels

CONFIG = {"format": "foa", "audio_channels": 4, "in_channels": 7, "seed": 3, "steps": 360, "variant": "gram-x",
          "axis": "main", "value": "GRAM-X", "features": {"sample_rate_hz": 32000},
          "model": {"encoder": "transformer", "depth": 4, "embed_dim": 128, "heads": 4, "patch_mels": 16,
                    "patch_frames": 8, "mask_ratio": 0.8}, "train": {"lambda_clean": 0.0}}
METRICS = {"train": {"parameters": 1025338, "scenes_seen": 720, "crops_seen": 11520, "final_loss": 0.2369},
           "aggregate": {"hear": {"average": 52.3, "n_tasks": 6}},
           "tasks": {"hear/words": {"task": "words", "kind": "multiclass", "first_metric": "top1_acc", "top1_acc": 0.6875,
                                    "top1_acc_ci95_low": 0.59, "top1_acc_ci95_high": 0.81, "n_test": 64},
                     "nathear-foa/events-loc": {"task": "events-loc", "kind": "localization", "n_test": 48,
                                                "first_metric": "median_angular_error_deg",
                                                "median_angular_error_deg": 29.72}}}


def test_card_front_matter_is_a_model_index_of_the_scores(tmp_path):
    (tmp_path / "gram-x").mkdir()
    (tmp_path / "gram-x" / "config.json").write_text(json.dumps(CONFIG))
    (tmp_path / "m.json").write_text(json.dumps(METRICS))
    text = cards.write_card(tmp_path / "gram-x", tmp_path / "m.json", profile="cpu").read_text()
    front = yaml.safe_load(text.split("---\n")[1])
    index = front["model-index"][0]
    assert index["name"] == "gram-x" and front["library_name"] == "gramlib"
    by_type = {r["dataset"]["type"]: r for r in index["results"]}
    assert by_type["hear/words"]["metrics"][0] == {"type": "top1_acc", "value": 0.6875, "name": "top1_acc (test, 64 items)",
                                                   "args": {"ci95": [0.59, 0.81]}}
    assert by_type["nathear-foa/events-loc"]["task"]["type"] == "sound-localization"
    assert "args" not in by_type["nathear-foa/events-loc"]["metrics"][0]  # no interval stored: none claimed
    assert "1,025,338" in text and "seed 3" in text and 'hear.load_model("models/gram-x")' in text
    assert "torch.zeros(1, 4, 32000)" in text  # the example feeds the model's own channel count


def test_card_names_a_missing_input(tmp_path):
    (tmp_path / "gram-x").mkdir()
    with pytest.raises(FileNotFoundError, match="config.json is missing"):
        cards.write_card(tmp_path / "gram-x", tmp_path / "m.json", profile="cpu")


def scene(seed=0):
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(2, 16, 8)).astype(np.float32)
    return {"mixture": mix, "reconstruction": -mix, "mask": rng.random(8) < 0.5, "grid": (4, 2),
            "channels": ["L", "R"], "title": "t",
            "room": {"dims_m": (5.0, 4.0, 3.0), "listener_m": np.array([2.0, 2.0, 1.5]), "rt60_s": np.float64(0.4)}}


def test_scene_file_round_trips_with_the_same_bytes_every_time(tmp_path):
    a, b = scenefile.save_scene(tmp_path / "a.npz", scene()), scenefile.save_scene(tmp_path / "b.npz", scene())
    assert a.read_bytes() == b.read_bytes()  # fixed zip dates: a re-run gives an identical file
    back = scenefile.load_scene(a)
    np.testing.assert_array_equal(back["mixture"], scene()["mixture"])
    np.testing.assert_array_equal(back["mask"], scene()["mask"])
    assert back["grid"] == (4, 2) and back["room"]["listener_m"] == [2.0, 2.0, 1.5] and back["channels"] == ["L", "R"]
    panels.figure_1(back)  # what the figures stage draws from it


def test_scene_file_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.npz.*pretrain"):
        scenefile.load_scene(tmp_path / "absent.npz")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="bad.npz is not a scene file"):
        scenefile.load_scene(tmp_path / "bad.npz")
    with pytest.raises(ValueError, match="lacks \\['title'\\]"):
        scenefile.save_scene(tmp_path / "x.npz", {k: v for k, v in scene().items() if k != "title"})
