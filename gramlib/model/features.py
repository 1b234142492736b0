"""Model input features: per-channel log-mel spectrograms, plus intensity vectors for FOA.

Layout everywhere: ``(B, C, T, F)`` -- batch, feature channels, frames, mel bins (the shape letters of
``gramlib.model.gram``); waveforms are ``(B, A, S)`` -- batch, audio channels, samples.

Front end (as the authors' code, ``gram-reference.md`` §1.2): 32 kHz, ``n_fft`` 1024, a 1024-sample
(32 ms) Hann window (the paper says 25 ms; we follow the code, whose checkpoints were trained with it),
hop 320 (10 ms), centred frames with reflect padding, 128 HTK mel bins over 50-16000 Hz without filter
normalisation, ``log(mel + 1e-5)``; always fp32, even under autocast.

==========  =====  ============================================================================
format      A, C   channels
==========  =====  ============================================================================
clean       1, 1   log-mel of the mono signal
binaural    2, 2   log-mel of the left (0) and right (1) ear
foa         4, 7   log-mels of W, Y, Z, X (ambiX/ACN order, as the input), then the intensity
                   vector (IV) channels I_x, I_y, I_z in our frame (x front, y left, z up)
==========  =====  ============================================================================

Intensity vectors. With the complex STFTs W, X, Y, Z of an SN3D-normalised FOA signal, per
time-frequency bin (t, k)::

    I(t, k) = 2 Re(conj(W) [X, Y, Z])               # active intensity, 3 components
    E(t, k) = |W|^2 + |X|^2 + |Y|^2 + |Z|^2 + 1e-6  # energy density (up to a constant)
    IV(t, m) = sum_k fb(k, m) I(t, k) / E(t, k)     # the log-mels' mel filterbank fb, no log

The paper says the IVs are "scaled to unit norm" (I / ||I||); the authors' code divides by E as above
(with no 1/3 on the dipole power, although its comment says so). We follow the code, because (a) for
SN3D input a single plane wave from unit direction u has X, Y, Z = u W, so I / E = 2u|W|^2 / 2|W|^2 = u
exactly: the code's rule *is* the unit-norm DoA vector wherever one source dominates; (b) where the
field is diffuse or several sources overlap, ||I / E|| < 1 keeps that diffuseness cue, which dividing
by ||I|| would erase; (c) it is bounded and stable in near-silent bins, where I / ||I|| is a direction
of pure noise. Dividing the dipole power by 3 (as the code's comment and the DCASE baseline) would give
||I / E|| = 1.5 for that plane wave in SN3D.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchaudio.transforms import MelScale, Spectrogram

from ..core.config import FeaturesConfig
from ..core.formats import AUDIO_CHANNELS, FEATURE_CHANNELS, check_format
IV_EPS = 1e-6  # added to the energy density E so that silent bins give IV = 0, not 0/0
NORM_EPS = 1e-5  # variance floor of the per-crop normalisation (nn.LayerNorm's default, as the authors)


class FeatureExtractor(nn.Module):
    """Waveforms ``(B, A, S)`` at ``cfg.sample_rate_hz`` -> float32 features ``(B, C, T, F)``.

    ``T = frames(S) = S // hop_length + 1`` (centred frames: a 10-s clip at 32 kHz gives 1001).
    FOA input is ambiX (ACN order W, Y, Z, X; SN3D), converted at the edge if it was anything else.
    """

    def __init__(self, cfg: FeaturesConfig, format: str):
        super().__init__()
        self.cfg, self.format = cfg, check_format(format)
        self.spectrogram = Spectrogram(n_fft=cfg.n_fft, win_length=cfg.win_length, hop_length=cfg.hop_length,
                                       power=None, center=True, pad_mode="reflect")
        self.mel = MelScale(n_mels=cfg.n_mels, sample_rate=cfg.sample_rate_hz, f_min=cfg.f_min_hz,
                            f_max=cfg.f_max_hz, n_stft=cfg.n_fft // 2 + 1, norm=None, mel_scale="htk")

    @property
    def audio_channels(self) -> int:
        """A: waveform channels expected at the input."""
        return AUDIO_CHANNELS[self.format]

    @property
    def n_channels(self) -> int:
        """C: feature channels produced (the model's ``in_channels``)."""
        return FEATURE_CHANNELS[self.format]

    def frames(self, n_samples: int) -> int:
        """T for a waveform of ``n_samples`` samples."""
        return n_samples // self.cfg.hop_length + 1

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """``wav`` (B, A, S) -> features (B, C, T, F), float32."""
        if wav.ndim != 3 or wav.shape[1] != self.audio_channels:
            raise ValueError(f"{self.format} features need waveforms shaped (batch, {self.audio_channels}, "
                             f"samples); got {tuple(wav.shape)}")
        if wav.shape[-1] < self.cfg.n_fft // 2 + 1:
            raise ValueError(f"waveforms need at least {self.cfg.n_fft // 2 + 1} samples; got {wav.shape[-1]}")
        with torch.autocast(device_type=wav.device.type, enabled=False):
            spec = self.spectrogram(wav.float())  # (B, A, K, T) complex, K = n_fft // 2 + 1
            power = spec.real.square() + spec.imag.square()  # (B, A, K, T)
            logmel = torch.log(self.mel(power) + self.cfg.log_offset)  # (B, A, F, T)
            if self.format == "foa":
                logmel = torch.cat([logmel, self.mel(intensity_vectors(spec, power))], dim=1)  # (B, 7, F, T)
        return logmel.transpose(-1, -2).contiguous()  # (B, C, T, F)


def intensity_vectors(spec: torch.Tensor, power: torch.Tensor) -> torch.Tensor:
    """Energy-normalised active intensity I / E per STFT bin (see the module docstring).

    ``spec`` (B, 4, K, T) complex STFT of W, Y, Z, X (ACN); ``power`` its squared magnitude.
    Returns (B, 3, K, T): the x (front), y (left), z (up) components.
    """
    w, dipoles = spec[:, :1], spec[:, [3, 1, 2]]  # (B, 1, K, T), (B, 3, K, T): X, Y, Z
    intensity = 2 * (w.conj() * dipoles).real  # (B, 3, K, T)
    energy = power.sum(dim=1, keepdim=True) + IV_EPS  # (B, 1, K, T)
    return intensity / energy


def instance_norm(x: torch.Tensor) -> torch.Tensor:
    """Normalise each example jointly over C x T x F to zero mean and unit variance.

    ``x`` (B, C, T, F) -> (B, C, T, F). The same per-crop normalisation at training and inference
    (the authors' ``LayerNorm([C, F, T], elementwise_affine=False)``), so there are no dataset
    statistics to carry around; fp32 even under autocast.
    """
    with torch.autocast(device_type=x.device.type, enabled=False):
        return F.layer_norm(x.float(), x.shape[1:], eps=NORM_EPS)


def pad_frames(feats: torch.Tensor, n_frames: int) -> torch.Tensor:
    """Zero-pad (B, C, T, F) at the end of the time axis to (B, C, n_frames, F), e.g. 1001 -> 1024.

    The pad value is 0 in the log domain, as the authors' code. Raises if T > n_frames (crop first).
    """
    n_have = feats.shape[-2]
    if n_have > n_frames:
        raise ValueError(f"cannot pad {n_have} frames to {n_frames}: the input is already longer")
    return F.pad(feats, (0, 0, 0, n_frames - n_have))


def random_crops(feats: torch.Tensor, n_crops: int, crop_frames: int,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """In-batch sampling: ``n_crops`` crops of ``crop_frames`` frames from every clip.

    ``feats`` (B, C, T, F) -> (B * n_crops, C, crop_frames, F), the crops of clip b at rows
    ``b * n_crops ... (b + 1) * n_crops - 1``. Starts are uniform over the T - crop_frames + 1 valid
    positions, drawn from ``generator`` (on its own device), so crops may overlap.
    """
    B, C, T, F_ = feats.shape
    if not 0 < crop_frames <= T:
        raise ValueError(f"crop_frames must be in 1..{T} (the clip's frames); got {crop_frames}")
    device = generator.device if generator is not None else torch.device("cpu")
    starts = torch.randint(0, T - crop_frames + 1, (B, n_crops), generator=generator, device=device)
    frames = starts.to(feats.device)[..., None] + torch.arange(crop_frames, device=feats.device)  # (B, n, L)
    rows = torch.arange(B, device=feats.device)[:, None, None]  # (B, 1, 1)
    crops = feats.transpose(1, 2)[rows, frames]  # (B, n, L, C, F)
    return crops.permute(0, 1, 3, 2, 4).reshape(B * n_crops, C, crop_frames, F_)
