"""The input formats and what they hold, one table for all of gramlib (the conventions of DESIGN.md).

* ``binaural`` -- 2 channels, left ear first;
* ``foa`` -- first-order Ambisonics, 4 channels in ambiX (ACN order W, Y, Z, X; SN3D); the model adds the
  3 intensity-vector channels (x front, y left, z up) to its 4 log-mels;
* ``clean`` -- 1 channel, dry (the GRAM-Clean model).
"""
from __future__ import annotations

FORMATS = ("binaural", "foa", "clean")
AUDIO_CHANNELS = {"clean": 1, "binaural": 2, "foa": 4}  # A: waveform channels per format
FEATURE_CHANNELS = {"clean": 1, "binaural": 2, "foa": 7}  # C: model input channels per format
EARS = ("left", "right")
AMBIX = ("W", "Y", "Z", "X")
FEATURE_NAMES = {"clean": ("mono",), "binaural": EARS, "foa": AMBIX + ("I_x (front)", "I_y (left)", "I_z (up)")}
SPEED_OF_SOUND_M_S = 343.0


def check_format(fmt: str, accepted: tuple[str, ...] = FORMATS, error: type[Exception] = ValueError,
                 what: str = "format") -> str:
    """``fmt`` if it is one of ``accepted``, else ``error`` naming them."""
    if fmt not in accepted:
        raise error(f"unknown {what} {fmt!r}; accepted: {list(accepted)}")
    return fmt
