"""Direction from FOA without learning: active intensity per 100-ms frame, the channel-convention
check, a classical SELD baseline, and a small feature embedder for tests.

For ambiX input (ACN order W, Y, Z, X; SN3D) a plane wave from unit direction u gives
[X, Y, Z] = u W, so the active intensity ``I = Re(conj(W) [X, Y, Z])`` summed over time-frequency
bins points to the source: its direction is the DoA. FuMa-ordered files (W, X, Y, Z) read as ambiX
put X where we expect Y, Y where we expect Z and Z where we expect X, so the estimate comes out with
permuted axes; a clockwise azimuth label convention shows up as a mirrored y axis. SN3D vs N3D only
scales X, Y, Z together, which leaves the direction unchanged: it cannot be detected this way
(N3D data reads as a more diffuse field in the model's intensity features, not as wrong directions).

The intensity vectors here are sums of ``Re(conj(W) v)`` over a band (100 Hz - 8 kHz by default,
below the spatial aliasing of the tetrahedral arrays behind the DCASE recordings); the model's own
input features (``gramlib.model.features``) normalise per bin by the energy density instead.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from scipy.signal import stft

from .labels import LABEL_HOP_S, SeldLabels, direction_deg

BAND_HZ = (100.0, 8000.0)
STFT_S = 0.02  # 20-ms window, 10-ms hop: ten STFT frames per label frame
# channel indices of (x, y, z) in the file under each hypothesis; W is channel 0 in both
CHANNEL_MAPS = {"ambix": (3, 1, 2), "fuma": (1, 2, 3)}


def _spectra(audio: np.ndarray, sample_rate_hz: int, band_hz=BAND_HZ) -> tuple[np.ndarray, np.ndarray]:
    """Band-limited STFT (4, K, T') of an FOA clip and the label frame of each STFT frame."""
    nper = int(round(STFT_S * sample_rate_hz))
    freqs, times, spec = stft(audio, fs=sample_rate_hz, nperseg=nper, noverlap=nper // 2, boundary=None,
                              padded=False)
    band = (freqs >= band_hz[0]) & (freqs <= band_hz[1])
    return spec[:, band, :], np.floor(times / LABEL_HOP_S + 1e-9).astype(int)


def frame_intensity(audio: np.ndarray, sample_rate_hz: int, n_frames: int, *, band_hz=BAND_HZ,
                    channel_map: str = "ambix") -> tuple[np.ndarray, np.ndarray]:
    """Per 100-ms frame: summed active intensity (n_frames, 3) in our axes, and W energy (n_frames,)."""
    spec, label_frame = _spectra(audio, sample_rate_hz, band_hz)
    w = spec[0]
    ix, iy, iz = CHANNEL_MAPS[channel_map]
    inten = np.stack([np.real(np.conj(w) * spec[i]).sum(0) for i in (ix, iy, iz)], axis=-1)  # (T', 3)
    energy = (np.abs(w) ** 2).sum(0)  # (T',)
    keep = label_frame < n_frames
    out_i, out_e = np.zeros((n_frames, 3)), np.zeros(n_frames)
    np.add.at(out_i, label_frame[keep], inten[keep])
    np.add.at(out_e, label_frame[keep], energy[keep])
    return out_i, out_e


# --------------------------------------------------------------------------------------------
# Convention check
# --------------------------------------------------------------------------------------------
HYPOTHESES = {  # name -> (channel map, label y-axis sign)
    "ambix": ("ambix", 1.0),
    "ambix, azimuth clockwise": ("ambix", -1.0),
    "fuma": ("fuma", 1.0),
    "fuma, azimuth clockwise": ("fuma", -1.0),
}
EXPLAIN = {
    "ambix": "the recording is ambiX (ACN W, Y, Z, X) and the labels' azimuth is counter-clockwise, as expected",
    "ambix, azimuth clockwise": "the channels are ambiX but the labels' azimuth runs clockwise; read the dataset "
                                "with azimuth_sign=-1 (params key seld.azimuth_sign)",
    "fuma": "the channels look FuMa-ordered (W, X, Y, Z): reorder them to ambiX (W, Y, Z, X; and scale W by "
            "sqrt(2) for SN3D) before using the data",
    "fuma, azimuth clockwise": "the channels look FuMa-ordered (W, X, Y, Z) and the azimuth clockwise: convert the "
                               "channels to ambiX and read with azimuth_sign=-1 (seld.azimuth_sign)",
}


def single_source_errors(audio: np.ndarray, sample_rate_hz: int, labels: SeldLabels,
                         band_hz=BAND_HZ) -> dict[str, np.ndarray]:
    """Angular errors (deg) of the intensity DoA against the label, in frames with exactly one
    labelled source, under each hypothesis of :data:`HYPOTHESES`."""
    frames, counts = np.unique(labels.frame, return_counts=True)
    single = frames[counts == 1]
    ref = labels.select(np.isin(labels.frame, single))
    out = {}
    for name, (cmap, ysign) in HYPOTHESES.items():
        inten, energy = frame_intensity(audio, sample_rate_hz, labels.n_frames, band_hz=band_hz, channel_map=cmap)
        vec = inten[ref.frame]
        loud = energy[ref.frame] > 1e-3 * (energy.max() + 1e-30)
        norm = np.linalg.norm(vec, axis=1)
        ok = loud & (norm > 0)
        est = vec[ok] / norm[ok, None]
        lab = ref.unit_vectors()[ok] * np.array([1.0, ysign, 1.0])
        out[name] = np.rad2deg(np.arccos(np.clip((est * lab).sum(1), -1, 1)))
    return out


def check_foa_convention(audio: np.ndarray | list, sample_rate_hz: int, labels: SeldLabels | list, *,
                         max_median_error_deg: float = 30.0, min_frames: int = 10, warn: bool = True) -> dict:
    """Does the recording look like ambiX with counter-clockwise azimuth labels?

    ``audio``: (4, S) FOA as read from disk (or a list of them, with a list of labels). Estimates the
    DoA of every frame with exactly one labelled source by the active intensity vector and compares
    it with the label under four hypotheses (ambiX or FuMa channel order, counter-clockwise or
    clockwise azimuth). Returns the median error per hypothesis, the best one, ``ok`` (best is ambiX
    with a median error below ``max_median_error_deg``) and a message; warns when not ok.
    """
    audios = audio if isinstance(audio, list) else [audio]
    labelss = labels if isinstance(labels, list) else [labels]
    pooled = {name: [] for name in HYPOTHESES}
    for a, lab in zip(audios, labelss):
        for name, err in single_source_errors(np.asarray(a, np.float64), sample_rate_hz, lab).items():
            pooled[name].append(err)
    errors = {name: np.concatenate(v) for name, v in pooled.items()}
    n = len(errors["ambix"])
    if n < min_frames:
        msg = f"only {n} single-source frames with signal (need {min_frames}); cannot check the FOA convention"
        if warn:
            warnings.warn(msg, stacklevel=2)
        return {"ok": False, "n_frames": n, "best": None, "median_error_deg": {}, "message": msg}
    medians = {name: float(np.median(e)) for name, e in errors.items()}
    best = min(medians, key=medians.get)
    ok = best == "ambix" and medians[best] <= max_median_error_deg
    msg = (f"intensity DoA vs labels over {n} single-source frames: median error "
           + ", ".join(f"{k} {v:.1f} deg" for k, v in medians.items()) + f". Best fit: {EXPLAIN[best]}.")
    if best == "ambix" and not ok:
        msg += (f" Even the best fit is {medians[best]:.0f} deg off: strong reverberation or noise, labels "
                f"that do not belong to this file, or a format other than FOA.")
    if warn and not ok:
        warnings.warn(msg, stacklevel=2)
    return {"ok": bool(ok), "n_frames": n, "best": best, "median_error_deg": medians, "message": msg}


# --------------------------------------------------------------------------------------------
# Classical baseline
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class IntensitySeldBaseline:
    """No-learning SELD reference: one DoA per 100-ms frame from the active intensity vector.

    ``activity="oracle"`` copies the reference rows (frame, class, track) and replaces their
    directions by the frame's intensity DoA -- detection is perfect by construction, so only the
    localization metrics (LE_CD, DoA error) say something; all sources of a frame share the one DoA.
    ``activity="energy"`` predicts one class-less source (class 0) in every frame whose W energy is
    ``threshold_db`` above the recording's 10th-percentile frame energy: only the class-agnostic
    DoA error and frame recall are meaningful for it.
    """

    activity: str = "oracle"
    threshold_db: float = 10.0
    band_hz: tuple[float, float] = BAND_HZ

    def predict(self, audio: np.ndarray, sample_rate_hz: int, reference: SeldLabels) -> SeldLabels:
        if self.activity not in ("oracle", "energy"):
            raise ValueError(f"activity must be 'oracle' or 'energy', got {self.activity!r}")
        inten, energy = frame_intensity(np.asarray(audio, np.float64), sample_rate_hz, reference.n_frames,
                                        band_hz=self.band_hz)
        az, el = direction_deg(inten + np.array([1e-12, 0.0, 0.0]))  # silent frames: straight ahead
        if self.activity == "oracle":
            f = reference.frame
            return SeldLabels(f, reference.class_idx, reference.track, az[f], el[f],
                              np.full(len(f), np.nan), reference.n_frames)
        level = 10 * np.log10(energy + 1e-20)
        active = np.flatnonzero(level > np.percentile(level, 10) + self.threshold_db)
        rows = [(int(f), 0, 0, float(az[f]), float(el[f])) for f in active]
        return SeldLabels.from_rows(rows, reference.n_frames)


# --------------------------------------------------------------------------------------------
# A feature embedder (HEAR-shaped) for tests and as a no-learning reference
# --------------------------------------------------------------------------------------------
class FoaFeatureEmbedder:
    """Hand-made FOA frame features with the HEAR timestamp-embedding interface.

    Per 40-ms frame (80-ms window) and each of ``n_bands`` log-spaced bands: the W log energy, the
    band's intensity direction ``I_b / E_b`` (E: the energy density of all four channels, as the
    model's features) and the same direction weighted by the band's share of the frame energy --
    the last lets a linear ACCDOA head tie a class's spectral shape to its direction.
    D = 7 * n_bands. Deterministic, no parameters learned.
    """

    def __init__(self, sample_rate: int = 32000, n_bands: int = 16, hop_ms: float = 40.0,
                 band_hz: tuple[float, float] = (100.0, 12000.0)):
        self.sample_rate = int(sample_rate)
        self.hop = int(round(hop_ms / 1000 * self.sample_rate))
        self.n_fft = 2 * self.hop
        freqs = np.fft.rfftfreq(self.n_fft, 1 / self.sample_rate)
        edges = np.geomspace(band_hz[0], band_hz[1], n_bands + 1)
        self.bands = np.stack([(freqs >= lo) & (freqs < hi) for lo, hi in zip(edges[:-1], edges[1:])]).astype(float)
        self.timestamp_embedding_size = 7 * n_bands

    def _one(self, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(4, S) -> features (T, D), frame-centre timestamps (T,) in ms; clips shorter than a window are padded."""
        n_frames = 1 + max(0, audio.shape[-1] - self.n_fft) // self.hop
        padded = np.pad(audio, ((0, 0), (0, max(0, self.n_fft - audio.shape[-1]))))
        idx = np.arange(self.n_fft)[None] + self.hop * np.arange(n_frames)[:, None]
        frames = padded[:, idx] * np.hanning(self.n_fft)  # (4, T, n_fft)
        spec = np.fft.rfft(frames, axis=-1)  # (4, T, K)
        w, y, z, x = spec
        e = (np.abs(spec) ** 2).sum(0)  # (T, K)
        inten = np.stack([np.real(np.conj(w) * v) for v in (x, y, z)], -1)  # (T, K, 3)
        e_b = e @ self.bands.T + 1e-10  # (T, B)
        dir_b = np.einsum("tkc,bk->tbc", 2 * inten, self.bands) / e_b[..., None]  # (T, B, 3)
        share = e_b / e_b.sum(1, keepdims=True)
        log_w = np.log((np.abs(w) ** 2) @ self.bands.T + 1e-10)
        weighted = dir_b * share[..., None]
        feats = np.concatenate([log_w, dir_b.reshape(n_frames, -1), weighted.reshape(n_frames, -1)], axis=1)
        ts = (np.arange(n_frames) * self.hop + self.n_fft / 2) / self.sample_rate * 1000.0
        return feats.astype(np.float32), ts.astype(np.float32)

    def get_timestamp_embeddings(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``audio`` (n, 4, S) float32 at ``sample_rate`` -> (emb (n, T, D), timestamps_ms (n, T))."""
        if audio.ndim != 3 or audio.shape[1] != 4:
            raise ValueError(f"FoaFeatureEmbedder takes (n, 4, S) FOA audio; got shape {tuple(audio.shape)}")
        out = [self._one(a.double().numpy()) for a in audio]
        return torch.from_numpy(np.stack([o[0] for o in out])), torch.from_numpy(np.stack([o[1] for o in out]))
