"""Offline sound synthesis: spoken words (espeak-ng) and instrument notes and drum hits (General MIDI).

Everything here is a pure function of its arguments (a ``numpy.random.Generator`` where there is
randomness), returns float32 mono ``(n_samples,)`` at the requested rate, and needs nothing but pip
packages: espeak-ng from ``espeakng-loader`` (see :mod:`gramlib.corpus.espeak`) and the TimGM6mb
SoundFont that ships inside ``pretty_midi``, rendered by ``tinysoundfont`` (GPL-2 soundfont:
installed, never vendored).
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from ..core.audio import resample_audio
from .espeak import get_espeak

SILENT_RMS = 1e-4  # renders quieter than this are dropped (presets without a zone for the key)
MAX_PEAK = 1.0  # renders louder than this are dropped (unstable filters)
DRUM_CHANNEL = 9

# General MIDI program families (program numbers 0-127), in GM order. Only the families with a
# clear, sustained pitch take part in the instrument tasks; the rest only appear in pre-training.
GM_FAMILIES: dict[str, range] = {
    "keyboard": range(0, 8), "mallet": range(8, 16), "organ": range(16, 24), "guitar": range(24, 32),
    "bass": range(32, 40), "strings": range(40, 48), "ensemble": range(48, 56), "brass": range(56, 64),
    "reed": range(64, 72), "flute": range(72, 80), "synth_lead": range(80, 88), "synth_pad": range(88, 96),
    "synth_fx": range(96, 104), "ethnic": range(104, 112), "percussive": range(112, 120),
    "sound_fx": range(120, 128),
}
# a playable MIDI range per family (low, high inclusive), so notes sound like the instrument
FAMILY_PITCH_RANGE: dict[str, tuple[int, int]] = {
    "keyboard": (36, 84), "mallet": (53, 89), "organ": (36, 84), "guitar": (40, 76), "bass": (28, 55),
    "strings": (43, 84), "ensemble": (43, 79), "brass": (40, 77), "reed": (45, 81), "flute": (60, 93),
    "synth_lead": (48, 84), "synth_pad": (40, 79), "synth_fx": (40, 84), "ethnic": (48, 79),
    "percussive": (40, 76), "sound_fx": (40, 79),
}


def family_of(program: int) -> str:
    """The GM family name of a program number."""
    for name, programs in GM_FAMILIES.items():
        if program in programs:
            return name
    raise ValueError(f"GM program must be 0-127, got {program}")


def place(out: np.ndarray, audio: np.ndarray, start: int, gain: float = 1.0) -> None:
    """Add ``audio`` into ``out`` from sample ``start``, cropped to ``out``'s end."""
    start = max(0, start)
    piece = audio[:max(0, len(out) - start)]
    out[start:start + len(piece)] += gain * piece


# --------------------------------------------------------------------------------------------
# Speech
# --------------------------------------------------------------------------------------------
def trim_silence(audio: np.ndarray, sample_rate_hz: int, floor_db: float = -40.0, margin_s: float = 0.01
                 ) -> np.ndarray:
    """Cut leading and trailing parts whose 10-ms RMS is ``floor_db`` below the loudest frame."""
    hop = max(1, int(0.01 * sample_rate_hz))
    n_frames = int(np.ceil(len(audio) / hop))
    frames = np.pad(audio, (0, n_frames * hop - len(audio))).reshape(n_frames, hop)
    level = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
    active = np.nonzero(level > level.max() * 10 ** (floor_db / 20))[0]
    if len(active) == 0:
        return audio[:0]
    margin = int(margin_s * sample_rate_hz)
    start = max(0, active[0] * hop - margin)
    stop = min(len(audio), (active[-1] + 1) * hop + margin)
    return audio[start:stop]


def spoken(text: str, voice: str, sample_rate_hz: int, *, rate_wpm: int = 175, pitch: int = 50,
           pitch_range: int = 50) -> np.ndarray:
    """``text`` spoken by an espeak-ng ``voice`` (e.g. ``"en-us+f3"``), resampled and trimmed."""
    engine = get_espeak()
    audio = engine.synth(text, voice, rate_wpm=rate_wpm, pitch=pitch, pitch_range=pitch_range)
    audio = resample_audio(audio, engine.sample_rate_hz, sample_rate_hz)
    return trim_silence(audio, sample_rate_hz)


def random_speech(rng: np.random.Generator, text: str, voices: list[str], sample_rate_hz: int,
                  rate_wpm: tuple[int, int] = (130, 230)) -> tuple[np.ndarray, str]:
    """``text`` from a random voice of ``voices`` at a random rate, pitch and pitch range.

    Returns ``(audio, voice)``.
    """
    voice = voices[int(rng.integers(len(voices)))]
    audio = spoken(text, voice, sample_rate_hz, rate_wpm=int(rng.integers(*rate_wpm)),
                   pitch=int(rng.integers(15, 85)), pitch_range=int(rng.integers(20, 90)))
    return audio, voice


_SYLLABLE_ONSETS = ["b", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "z", "sh", "ch"]
_SYLLABLE_VOWELS = ["a", "e", "i", "o", "u", "ai", "ou", "ee"]


def pseudo_words(rng: np.random.Generator, n_words: int) -> str:
    """Pronounceable nonsense words (for babble that contains no word of any task)."""
    words = []
    for _ in range(n_words):
        n_syllables = int(rng.integers(1, 4))
        words.append("".join(_SYLLABLE_ONSETS[int(rng.integers(len(_SYLLABLE_ONSETS)))]
                             + _SYLLABLE_VOWELS[int(rng.integers(len(_SYLLABLE_VOWELS)))]
                             for _ in range(n_syllables)))
    return " ".join(words)


# --------------------------------------------------------------------------------------------
# Instrument notes and drum hits (tinysoundfont + TimGM6mb)
# --------------------------------------------------------------------------------------------
def soundfont_path() -> Path:
    """The General MIDI SoundFont that ships inside the pretty_midi wheel."""
    import pretty_midi  # MIDI rendering only for notes

    path = Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"
    if not path.is_file():
        raise FileNotFoundError(f"TimGM6mb.sf2 not found at {path}; reinstall pretty_midi")
    return path


class NoteRenderer:
    """One tinysoundfont synthesizer; renders one note at a time, flushed between notes.

    Render at >= 32 kHz: some presets' filters are unstable near Nyquist at 16 kHz.
    """

    def __init__(self, sample_rate_hz: int, gain_db: float = -6.0):
        import tinysoundfont  # the soundfont loads on first note

        self.sample_rate_hz = sample_rate_hz
        self.synth = tinysoundfont.Synth(samplerate=sample_rate_hz, gain=gain_db)
        self.sfid = self.synth.sfload(str(soundfont_path()))

    def preset_name(self, program: int, bank: int = 0) -> str:
        return self.synth.sfpreset_name(self.sfid, bank, program)

    def render(self, program: int, pitch: int, velocity: int, hold_s: float, total_s: float,
               *, drums: bool = False, bend_semitones: float = 0.0) -> np.ndarray | None:
        """A note held ``hold_s`` then released, ``total_s`` long; ``None`` if silent or exploding.

        With ``drums`` the program is a drum kit (bank 128) and the pitch a GM percussion key.
        ``bend_semitones`` (|x| <= 12) detunes the whole note with the pitch wheel.
        """
        synth, sr = self.synth, self.sample_rate_hz
        synth.notes_off()
        synth.sounds_off()
        synth.generate(int(0.05 * sr))  # flush the previous note's tail
        channel = DRUM_CHANNEL if drums else 0
        synth.program_select(channel, self.sfid, 128 if drums else 0, program, is_drums=drums)
        synth.pitchbend_range(channel, 12.0)
        synth.pitchbend(channel, int(round(8192 + 8191 * np.clip(bend_semitones, -12, 12) / 12)))
        synth.noteon(channel, pitch, velocity)
        n_hold = int(round(min(hold_s, total_s) * sr))
        held = np.frombuffer(synth.generate(n_hold), dtype=np.float32) if n_hold else np.zeros(0, np.float32)
        synth.noteoff(channel, pitch)
        tail = np.frombuffer(synth.generate(int(round(total_s * sr)) - n_hold), dtype=np.float32)
        audio = np.concatenate([held, tail]).reshape(-1, 2).mean(axis=1)  # stereo -> mono
        if not np.all(np.isfinite(audio)) or np.abs(audio).max() > MAX_PEAK:
            return None
        return audio.astype(np.float32) if np.sqrt(np.mean(audio ** 2)) >= SILENT_RMS else None


@functools.lru_cache(maxsize=4)
def note_renderer(sample_rate_hz: int) -> NoteRenderer:
    """The process's renderer at one rate (loading the SoundFont takes ~60 ms)."""
    return NoteRenderer(sample_rate_hz)


def random_note(rng: np.random.Generator, programs: list[int], pitch: int | None, sample_rate_hz: int,
                total_s: float, tries: int = 20) -> tuple[np.ndarray, int, int]:
    """A note of a random program of ``programs`` at ``pitch`` (random in the family's range if None).

    Random velocity and hold time; silent or exploding renders are redrawn. Returns
    ``(audio, program, pitch)``.
    """
    renderer = note_renderer(sample_rate_hz)
    for _ in range(tries):
        program = int(programs[int(rng.integers(len(programs)))])
        low, high = FAMILY_PITCH_RANGE[family_of(program)]
        key = int(rng.integers(low, high + 1)) if pitch is None else pitch
        hold_s = total_s * float(rng.uniform(0.4, 0.8))
        audio = renderer.render(program, key, int(rng.integers(50, 128)), hold_s, total_s)
        if audio is not None:
            return audio, program, key
    raise RuntimeError(f"{tries} renders of programs {programs} at pitch {pitch} were silent or clipped")


def drum_hit(rng: np.random.Generator, keys: list[int], sample_rate_hz: int, total_s: float = 0.8
             ) -> np.ndarray:
    """One hit of a random GM percussion key of ``keys`` on a random drum kit, random velocity."""
    renderer = note_renderer(sample_rate_hz)
    kits = [0, 8, 16, 24, 25, 32, 48]  # TimGM6mb's kits (40 "Brush" is near-silent)
    for _ in range(20):
        key, kit = int(keys[int(rng.integers(len(keys)))]), kits[int(rng.integers(len(kits)))]
        audio = renderer.render(kit, key, int(rng.integers(60, 128)), 0.05, total_s, drums=True,
                                bend_semitones=rng.uniform(-3, 3))  # tuned drums: more variety per key
        if audio is not None:
            return trim_silence(audio, sample_rate_hz, floor_db=-50.0)
    raise RuntimeError(f"renders of drum keys {keys} were silent or clipped")
