"""Physical checks of the HRTF, the image-source rendering, the late tail and the RIR banks."""
import json
import pickle

import numpy as np
import pytest

from gramlib.scenes import rir, rirbank, rooms
from gramlib.core.config import RoomsConfig
from gramlib.core.formats import SPEED_OF_SOUND_M_S
from gramlib.scenes.hrtf import HrtfError, load_kemar, unit_vectors

RATE = 32000
DIMS = (10.0, 9.0, 8.0)
LISTENER = np.array([5.0, 4.5, 4.0])
SMALL = RoomsConfig(train_rooms=2, test_rooms=2, sets_per_room=2, rt60_s=(0.2, 0.6), length_m=(4.0, 6.0),
                    width_m=(4.0, 5.0), height_m=(2.5, 3.0), distance_m=(1.5, 2.0), max_order=4, rir_s=0.4,
                    shard_size=3)


def anechoic(fmt, az_deg, el_deg, distance_m=2.0, yaw_deg=0.0, n=2048):
    """RIR of one source in room direction (az, el), direct path only (max_order 0)."""
    u = unit_vectors(az_deg, el_deg)
    images = rir.image_sources(DIMS, 0.5, [(LISTENER, yaw_deg, [LISTENER + distance_m * u])], 0, RATE)[0][0]
    return rir.render(images, fmt, n, RATE, tail_rt60_s=None)


def onset(x, fraction=0.1):
    return int(np.argmax(np.abs(x) >= fraction * np.abs(x).max()))


def test_hrtf_shapes_convention_and_bad_rate():
    h = load_kemar(RATE)
    assert h.hrirs.shape == (710, 2, h.n_taps) and h.hrirs.dtype == np.float32
    assert np.allclose(np.linalg.norm(h.directions_xyz, axis=1), 1)
    left = h.nearest(np.array([[0.0, 1.0, 0.0]]))[0]
    assert (h.azimuth_deg[left], h.elevation_deg[left]) == (90.0, 0.0)
    assert np.sum(h.hrirs[left, 0] ** 2) > 4 * np.sum(h.hrirs[left, 1] ** 2)  # +y = left = channel 0
    assert load_kemar(RATE) is h  # cached
    with pytest.raises(HrtfError, match="96000"):
        load_kemar(96000)


def test_direct_path_delay_is_distance_over_c():
    for distance in (1.5, 3.7):
        expected = distance / SPEED_OF_SOUND_M_S * RATE
        w = anechoic("foa", 30.0, 10.0, distance)[0]
        assert abs(np.argmax(np.abs(w)) - expected) <= 1
        ears = anechoic("binaural", 0.0, 0.0, distance)  # frontal: both ears arrive with the head centre
        for ear in ears:
            assert abs(onset(ear) - expected) <= 1


def test_left_source_is_louder_and_earlier_in_left_ear():
    left, right = anechoic("binaural", 90.0, 0.0)
    assert np.sum(left ** 2) > 4 * np.sum(right ** 2)
    assert onset(left) + 5 < onset(right)  # ITD ~ 0.6 ms ~ 20 samples


@pytest.mark.parametrize("az, el, expected", [(0, 0, (0, 0, 1)), (180, 0, (0, 0, -1)), (90, 0, (1, 0, 0)),
                                              (270, 0, (-1, 0, 0)), (0, 90, (0, 1, 0)), (0, -90, (0, -1, 0))])
def test_anechoic_foa_channel_ratios(az, el, expected):
    w, y, z, x = anechoic("foa", az, el)
    peak = np.argmax(np.abs(w))
    assert np.allclose([y[peak] / w[peak], z[peak] / w[peak], x[peak] / w[peak]], expected, atol=1e-6)


def test_intensity_vector_recovers_direction():
    rng = np.random.default_rng(0)
    for az, el in [(37.0, 12.0), (200.0, -50.0), (300.0, 65.0)]:
        foa = anechoic("foa", az, el)
        source = rng.standard_normal(4000)
        w, y, z, x = (np.convolve(source, ch) for ch in foa)
        intensity = np.array([np.sum(w * x), np.sum(w * y), np.sum(w * z)])
        truth = unit_vectors(az, el)
        error = np.degrees(np.arccos(np.clip(intensity @ truth / np.linalg.norm(intensity), -1, 1)))
        assert error < 2.0


def test_head_yaw_rotates_binaural_direction():
    # head turned 90 deg left (yaw +90): a source on the room's +y is straight ahead of the head
    assert np.allclose(anechoic("binaural", 90.0, 0.0, yaw_deg=90.0), anechoic("binaural", 0.0, 0.0), atol=1e-6)
    # ... and a source on the room's +x is on the head's right: louder in the right ear
    left, right = anechoic("binaural", 0.0, 0.0, yaw_deg=90.0)
    assert np.sum(right ** 2) > 4 * np.sum(left ** 2)
    # head turned right (yaw -90): the room's +y is behind the head
    assert np.allclose(anechoic("binaural", 90.0, 0.0, yaw_deg=-90.0), anechoic("binaural", 180.0, 0.0), atol=1e-6)


def test_measure_rt60_of_exponential_decay():
    rng = np.random.default_rng(1)
    for rt60 in (0.25, 0.7):
        t = np.arange(int(0.8 * RATE)) / RATE  # cut before full decay at 0.7 s: truncation compensated
        noise = rng.standard_normal(t.size) * 10 ** (-3 * t / rt60)
        assert abs(rir.measure_rt60(noise, RATE) / rt60 - 1) < 0.05


def test_sampled_rooms_measure_their_target_rt60():
    rng = np.random.default_rng(2)
    errors = []
    for r in range(3):
        room = rooms.sample_room(rng, SMALL, f"t-{r}", "train")
        placements = [rooms.sample_placement(rng, room, SMALL)]
        room, sets, _ = rooms.render_room(room, placements, max_order=SMALL.max_order,
                                          rir_samples=int(SMALL.rir_s * RATE), seed=r)
        for fmt in rooms.FORMATS:
            errors.append(sets[0].rt60_s[fmt] / room.target_rt60_s - 1)
            assert sets[0].rirs[fmt][0].shape == (rooms.N_CHANNELS[fmt], int(SMALL.rir_s * RATE))
    assert np.max(np.abs(errors)) < 0.2


def test_placement_geometry():
    rng = np.random.default_rng(3)
    room = rooms.sample_room(rng, SMALL, "t", "train")
    for _ in range(5):
        p = rooms.sample_placement(rng, room, SMALL)
        for fmt, point in p.sources_m.items():
            rel = rooms.head_to_room(point - p.listener_m, -p.yaw_deg)
            assert SMALL.distance_m[0] <= np.linalg.norm(rel) <= SMALL.distance_m[1]
            if fmt == "binaural":
                assert np.degrees(np.arcsin(rel[2] / np.linalg.norm(rel))) >= -40.0
        assert len(p.noises_m) in (1, 3, 4, 5)


def test_bank_roundtrip_and_disjoint_splits(tmp_path):
    manifests = {s: rirbank.build_bank(SMALL, tmp_path, s, seed=0) for s in ("train", "test")}
    assert set(manifests["train"].room_id).isdisjoint(manifests["test"].room_id)
    assert not set(manifests["train"].length_m).intersection(manifests["test"].length_m)
    bank = rirbank.RirBank(tmp_path / "test")
    assert len(bank) == SMALL.test_rooms * SMALL.sets_per_room == 4
    assert len(list((tmp_path / "test").glob("shard-*.npz"))) == 2  # shard_size 3
    row = bank.manifest.iloc[3]
    source, noise = bank.get(3, "foa")
    assert source.shape == (4, int(SMALL.rir_s * RATE)) and source.dtype == np.float32
    assert noise.shape == (row.n_noise, 4, source.shape[1]) and np.abs(noise).max() > 0
    assert abs(rir.measure_rt60(source[:1], RATE) - row.foa_rt60_s) < 0.02  # float16 storage
    assert json.loads((tmp_path / "test" / "bank.json").read_text())["rir_samples"] == source.shape[1]
    copy = pickle.loads(pickle.dumps(bank))  # as DataLoader workers receive it: no open maps
    assert not copy._members and np.array_equal(copy.get(3, "foa")[0], source)
    with pytest.raises(rooms.RoomError, match="unknown RIR format 'stereo'"):
        bank.get(0, "stereo")


def test_bad_parameters_raise_clear_errors():
    with pytest.raises(rooms.RoomError, match=r"outside the room"):
        rooms.check_inside([11.0, 1.0, 1.0], DIMS, "source")
    room = rooms.RoomSpec("r", "train", DIMS, 0.4)
    bad = rooms.Placement(LISTENER, 0.0, {"binaural": LISTENER + 1, "foa": np.array([5.0, 4.5, 9.5])},
                          np.array([[1.0, 1.0, 1.0]]))
    with pytest.raises(rooms.RoomError, match=r"source 1 of set 0 at \[5.0, 4.5, 9.5\]"):
        rooms.render_room(room, [bad], max_order=2, rir_samples=4000)
    for value in (0.0, -0.3):
        with pytest.raises(rooms.RoomError, match="positive number of seconds"):
            rooms.absorption_for_rt60(value, DIMS)
    with pytest.raises(rooms.RoomError, match="cannot reach RT60 0.010 s"):
        rooms.absorption_for_rt60(0.01, DIMS)
    with pytest.raises(rooms.RoomError, match="cannot reach"):
        rooms.check_config(RoomsConfig(rt60_s=(0.2, 30.0), rir_s=40.0), RATE)
    with pytest.raises(HrtfError, match="sample_rate_hz=96000"):
        rooms.check_config(SMALL, 96000)
    with pytest.raises(rooms.RoomError, match="unknown RIR format"):
        rooms.render_room(room, [], max_order=2, rir_samples=100, formats=("ambisonics",))
    with pytest.raises(rooms.RoomError, match="unknown split"):
        rirbank.build_bank(SMALL, "/tmp/unused", "valid", seed=0)
