"""gramlib.interactive.showcase and gramlib.interactive.demo on tiny synthetic inputs (no project data needed)."""
import numpy as np
import pytest
import torch

from gramlib.eval import localize
from gramlib.train import reconstruct
from gramlib.core import views
from gramlib.interactive import demo, showcase
from gramlib.core.audio import SAMPLE_RATE_HZ, write_wav
from gramlib.model.checkpoint import save_checkpoint
from gramlib.core.config import FeaturesConfig, ModelConfig
from gramlib.scenes.hrtf import directions_deg, unit_vectors
from gramlib.model.gram import GRAM
from gramlib.scenes.rooms import RoomError

TINY = ModelConfig(embed_dim=16, depth=1, heads=2, decoder_dim=16, decoder_depth=1, decoder_heads=2)


def angle_deg(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.degrees(np.arccos(np.clip(a @ b / np.linalg.norm(a) / np.linalg.norm(b), -1, 1))))


def plane_wave_foa(azimuth_deg, elevation_deg, n=SAMPLE_RATE_HZ, seed=0) -> np.ndarray:
    """ambiX (W, Y, Z, X), SN3D: white noise from one direction."""
    x, y, z = unit_vectors(azimuth_deg, elevation_deg)
    s = 0.1 * np.random.default_rng(seed).standard_normal(n)
    return np.stack([s, y * s, z * s, x * s]).astype(np.float32)


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny") / "gram-binaural"
    save_checkpoint(folder, GRAM(TINY, FeaturesConfig(), in_channels=2), config={"format": "binaural"})
    return folder


def test_reconstruction_keeps_visible_patches_and_masks_the_configured_share(tiny_checkpoint):
    audio = 0.1 * np.random.default_rng(1).standard_normal((2, 40000)).astype(np.float32)  # 1.25 s: padded crop
    shown = reconstruct.reconstruct(tiny_checkpoint, audio, seed=3)
    C, T, F = shown["crop"].shape
    assert (C, T, F) == (2, 200, 128) and shown["recon"].shape == shown["mask_image"].shape == (C, T, F)
    assert shown["grid"] == (8, 25) and shown["mask"].shape == (200,) and shown["mask"].sum() == 160
    visible = ~shown["mask_image"]
    np.testing.assert_array_equal(shown["recon"][visible], shown["crop"][visible])
    np.testing.assert_array_equal(shown["recon"][~visible], shown["prediction"][~visible])
    assert not np.allclose(shown["recon"][~visible], shown["crop"][~visible])
    # the mask image is the patch mask, frequency-major (token = row * n_cols + col), on every channel
    rows, cols = shown["grid"]
    patch = shown["mask"].reshape(rows, cols)
    assert shown["mask_image"][1, 8 * 4 + 3, 16 * 6 + 5] == patch[6, 4]
    again = reconstruct.reconstruct(tiny_checkpoint, audio, seed=3)
    np.testing.assert_array_equal(again["mask"], shown["mask"])
    assert not np.array_equal(reconstruct.reconstruct(tiny_checkpoint, audio, seed=4)["mask"], shown["mask"])


def test_reconstruct_duplicates_mono_and_rejects_other_channel_counts(tiny_checkpoint):
    mono = 0.1 * np.random.default_rng(2).standard_normal(20000).astype(np.float32)
    shown = reconstruct.reconstruct(tiny_checkpoint, mono, seed=0)
    np.testing.assert_allclose(shown["crop"][0], shown["crop"][1])
    with pytest.raises(ValueError, match="takes mono or 2-channel audio; got 4 channels"):
        reconstruct.reconstruct(tiny_checkpoint, np.zeros((4, 20000), np.float32), seed=0)
    with pytest.raises(FileNotFoundError, match="dvc repro"):
        reconstruct.reconstruct(tiny_checkpoint.parent / "missing", mono, seed=0)


def test_wrong_channel_count_names_the_file_and_what_is_accepted(tmp_path):
    path = write_wav(tmp_path / "three.wav", np.zeros((3, 4000), np.float32), SAMPLE_RATE_HZ)
    with pytest.raises(ValueError) as err:
        localize.localize_wav(path)
    message = str(err.value)
    assert str(path) in message and "3 channel(s)" in message
    assert "2 (binaural, left ear first)" in message and "4 (first-order Ambisonics, ambiX W, Y, Z, X)" in message


def test_a_48_khz_foa_wav_is_resampled_and_localized(tmp_path):
    audio = plane_wave_foa(120.0, 25.0, n=48000)
    path = write_wav(tmp_path / "foa48k.wav", audio, 48000)
    read, fmt, _ = localize.read_spatial(path)
    assert fmt == "foa" and read.shape == (4, SAMPLE_RATE_HZ)  # 1 s at 32 kHz
    found = localize.localize_wav(path)
    assert found["method"] == "intensity" and found["format"] == "foa"
    assert abs(found["azimuth_deg"] - 120.0) < 1.0 and abs(found["elevation_deg"] - 25.0) < 1.0
    assert abs(np.linalg.norm(found["vector"]) - 1) < 1e-9
    same = localize.localize_wav(audio, "intensity", sample_rate_hz=48000)  # an array at its own rate
    assert angle_deg(same["vector"], found["vector"]) < 1.0
    with pytest.raises(ValueError, match="'gcc-hrtf' localizes binaural audio"):
        localize.localize_wav(path, "gcc-hrtf")


def test_make_scene_puts_the_source_where_asked_and_intensity_finds_it():
    rng = np.random.default_rng(0)
    source = (0.1 * rng.standard_normal(SAMPLE_RATE_HZ // 2)).astype(np.float32)
    scene = showcase.make_scene(source=source, room={"dims_m": (9.0, 8.0, 4.0), "rt60_s": 0.15},
                                direction=(120.0, 20.0, 1.5), fmt="foa", seed=1, max_order=3, rir_s=0.3)
    assert scene["foa"].shape == (4, source.size) and scene["binaural"].shape == (2, source.size)
    assert scene["audio"] is scene["foa"] and scene["dry"].shape == source.shape
    d, room = scene["direction"], scene["room"]
    assert abs(d["azimuth_deg"] - 120.0) < 1e-6 and abs(d["elevation_deg"] - 20.0) < 1e-6
    assert abs(np.linalg.norm(np.subtract(room["source_m"], room["listener_m"])) - 1.5) < 1e-9
    assert room["noise_m"] == [] and set(room["rt60_s"]) == {"binaural", "foa"}
    found = localize.localize_wav(scene["foa"])
    assert angle_deg(found["vector"], d["vector"]) < 20.0, found
    with pytest.raises(RoomError, match="does not fit in the room"):
        showcase.make_scene(source=source, room={"dims_m": (4.0, 3.0, 2.5), "rt60_s": 0.3},
                            direction=(0.0, 0.0, 6.0), seed=0, max_order=2, rir_s=0.3)


def test_make_scene_noise_is_placed_and_mixed():
    rng = np.random.default_rng(1)
    source = (0.1 * rng.standard_normal(8000)).astype(np.float32)
    noise = (0.1 * rng.standard_normal(20000)).astype(np.float32)
    scene = showcase.make_scene(source=source, noise=noise, snr_db=10.0, fmt="binaural", seed=2, max_order=2,
                                rir_s=0.3)
    assert scene["audio"] is scene["binaural"] and len(scene["room"]["noise_m"]) >= 1
    assert np.all(np.isfinite(scene["binaural"])) and np.max(np.abs(scene["binaural"])) <= 0.99 + 1e-6
    az, el = directions_deg(scene["direction"]["vector"])
    assert abs(az - scene["direction"]["azimuth_deg"]) < 1e-6 and el >= -40.0 - 1e-6  # KEMAR range


def test_doa_polar_and_feature_maps_draw():
    found = {"a": {"azimuth_deg": 90.0, "elevation_deg": -10.0}}
    fig = views.doa_polar(found, truth={"azimuth_deg": 80.0, "elevation_deg": 0.0})
    theta, radius = fig.axes[0].lines[1].get_data()  # the estimate (the truth is drawn first)
    assert np.isclose(theta[0], np.pi / 2) and np.isclose(radius[0], np.cos(np.radians(10.0)))
    feats, names = showcase.features(plane_wave_foa(0.0, 0.0, n=8000), "foa")
    assert feats.shape == (7, 26, 128) and names[4].startswith("I_x")
    assert np.median(feats[4][:, 10:100]) > 0.9  # a plane wave from the front: I/E = (1, 0, 0)
    views.feature_maps(feats, names)


def test_demo_outside_a_project_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="run `dvc repro`"):
        demo.project("models/gram-ambisonics", build_demo_data=False)
    with pytest.raises(ValueError, match="unknown demo format"):
        demo.demo_params(formats=("stereo",))
    params = demo.demo_params(steps=7, formats=("binaural", "clean"))
    assert params["profiles"]["demo"]["train"]["steps_main"] == 7 and params["profile"] == "demo"
    assert set(params["variants"]) == {"gram-binaural", "gram-clean"}


def test_localize_by_something_unknown_says_what_is_accepted():
    with pytest.raises(ValueError, match=r"neither a localizer \(accepted: \['classical', 'intensity', 'gcc-hrtf'\]\)"):
        localize.localize_wav(plane_wave_foa(0.0, 0.0, n=4000), "music")


def test_the_demo_never_overwrites_a_project(tmp_path):
    (tmp_path / "params.yaml").write_text("profile: cpu\n")
    with pytest.raises(ValueError, match="not a demo's"):
        demo.build_demo(tmp_path)
    assert (tmp_path / "params.yaml").read_text() == "profile: cpu\n"
