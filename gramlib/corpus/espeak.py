"""Spoken words from espeak-ng, through a ctypes binding to the library bundled in ``espeakng-loader``.

The ``espeakng-loader`` wheel ships ``libespeak-ng.so`` and the whole ``espeak-ng-data`` folder, so
speech synthesis needs no system package and no executable (the ``espeakng``/``py-espeak-ng``
bindings shell out to ``espeak-ng`` and are not used). espeak-ng is GPL-3: it is installed, never
vendored.

libespeak-ng keeps global state (current voice, parameters, the output callback), so there is one
:class:`Espeak` per process (:func:`get_espeak`) and every synthesis runs under a lock.

A voice is written as espeak-ng does: a language voice, optionally followed by ``+`` and a variant,
e.g. ``"en-us+f3"``. espeak-ng silently ignores an unknown variant; this binding rejects it.

Reproducibility. libespeak-ng carries state from one utterance to the next, so the same call gives
different samples depending on what was spoken before: the wave generator's pitch-flutter index and
glottal-cycle counter keep counting, its gain control, harmonic limits and echo buffer keep their last
values, and the Klatt engine keeps its filter state. Before every utterance this binding seeds
espeak-ng's random generator and restores those static variables (plain numbers, no pointers) to
their values right after initialisation; their addresses come from the library's ELF symbol table
(the bundled library is not stripped). Variants that switch to the Klatt engine are refused. With
that, an utterance is a pure function of (text, voice, rate, pitch, range): checked by
tests/test_sources.py.
"""
from __future__ import annotations

import ctypes
import re
import struct
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_PARAM_RATE, _PARAM_PITCH, _PARAM_RANGE = 1, 3, 4
_EE_OK = 0
# static variables of wavegen.c that carry over between utterances (all plain numbers)
_CARRIED_STATE = ("Flutter_ix", "cycle_count", "agc", "h_switch_sign", "maxh", "maxh2", "amplitude2", "echo_buf")
_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class EspeakError(RuntimeError):
    """espeak-ng could not be loaded, or refused a voice or a text."""


class _Voice(ctypes.Structure):
    # espeak_VOICE from speak_lib.h; `languages` starts with a priority byte.
    _fields_ = [("name", ctypes.c_char_p), ("languages", ctypes.c_char_p), ("identifier", ctypes.c_char_p),
                ("gender", ctypes.c_ubyte), ("age", ctypes.c_ubyte), ("variant", ctypes.c_ubyte),
                ("xx1", ctypes.c_ubyte), ("score", ctypes.c_int), ("spare", ctypes.c_void_p)]


@dataclass(frozen=True)
class VoiceInfo:
    name: str  # e.g. "English (Great Britain)"
    language: str  # e.g. "en-gb"
    identifier: str  # file under espeak-ng-data/lang, e.g. "gmw/en"

    @property
    def voice(self) -> str:
        """What :meth:`Espeak.synth` accepts before the ``+variant`` (the file name, e.g. ``"en"``)."""
        return self.identifier.rsplit("/", 1)[-1].lower()


def _elf_symbols(path: str, names: tuple[str, ...]) -> dict[str, tuple[int, int]]:
    """``{name: (st_value, st_size)}`` from an ELF64 little-endian ``.symtab``, for ``names``.

    Static locals appear as ``name.<number>``; the suffix is ignored.
    """
    data = Path(path).read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return {}
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    found: dict[str, tuple[int, int]] = {}
    for sh_type, offset, size, link in ((s[1], s[4], s[5], s[6]) for s in sections):
        if sh_type != 2:  # SHT_SYMTAB
            continue
        str_offset = sections[link][4]
        for pos in range(offset, offset + size, 24):
            st_name, _, _, _, st_value, st_size = struct.unpack_from("<IBBHQQ", data, pos)
            end = data.index(b"\0", str_offset + st_name)
            name = data[str_offset + st_name:end].decode("ascii", "replace").split(".")[0]
            if name in names and st_value:
                found[name] = (st_value, st_size)
    return found


class Espeak:
    """The bundled libespeak-ng, initialised once. Use :func:`get_espeak` rather than this class."""

    def __init__(self) -> None:
        try:
            import espeakng_loader  # the espeak-ng library loads on first speech
        except ImportError as err:  # pragma: no cover - a dependency of the project
            raise EspeakError("espeakng-loader is not installed (it bundles libespeak-ng)") from err
        self.data_dir = Path(espeakng_loader.get_data_path())
        self._lib = ctypes.CDLL(espeakng_loader.get_library_path())
        self._declare()
        # espeak_Initialize wants the folder that *contains* espeak-ng-data
        rate = self._lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, str(self.data_dir.parent).encode(), 0)
        if rate <= 0:
            raise EspeakError(f"espeak_Initialize failed with {rate} for data folder {self.data_dir}")
        self.sample_rate_hz = int(rate)  # 22050
        self._chunks: list[np.ndarray] = []
        self._callback = _SynthCallback(self._collect)  # keep a reference: ctypes does not
        self._lib.espeak_SetSynthCallback(self._callback)
        self._lock = threading.RLock()
        self._state = self._snapshot_state(espeakng_loader.get_library_path())
        self._variants = self._reproducible_variants()

    def _declare(self) -> None:
        lib = self._lib
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                     ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_ListVoices.argtypes = [ctypes.c_void_p]
        lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]

    def _snapshot_state(self, lib_path: str) -> list[tuple[int, bytes]]:
        """``(address, bytes)`` of each carried-over static variable, as it is now (fresh)."""
        wanted = _CARRIED_STATE + ("espeak_Synth",)
        symbols = _elf_symbols(lib_path, wanted)
        if set(symbols) != set(wanted):
            warnings.warn(f"{lib_path}: symbols {sorted(set(wanted) - set(symbols))} not found; speech will "
                          "depend on what was spoken before in this process (not reproducible)",
                          RuntimeWarning, stacklevel=3)
            return []
        base = ctypes.cast(self._lib.espeak_Synth, ctypes.c_void_p).value - symbols["espeak_Synth"][0]
        return [(base + offset, ctypes.string_at(base + offset, size))
                for name, (offset, size) in symbols.items() if name != "espeak_Synth"]

    def _reproducible_variants(self) -> list[str]:
        folder = self.data_dir / "voices" / "!v"
        klatt = re.compile(r"^\s*klatt", re.MULTILINE)  # the Klatt engine keeps state between calls
        return sorted(p.name for p in folder.iterdir()
                      if p.is_file() and not klatt.search(p.read_text(errors="replace")))

    def _collect(self, wav, n_samples: int, _events) -> int:
        if n_samples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n_samples,)).copy())
        return 0  # 0 = continue synthesis

    def voices(self) -> list[VoiceInfo]:
        """Every language voice of the bundled data, sorted by language code."""
        out = []
        with self._lock:
            table = self._lib.espeak_ListVoices(None)
            while table[len(out)]:
                v = table[len(out)].contents
                out.append(VoiceInfo(v.name.decode(), v.languages[1:].decode().lower(), v.identifier.decode()))
        return sorted(out, key=lambda v: v.language)

    def variants(self) -> list[str]:
        """Voice variants (``"f3"``, ``"Storm"``, ...) usable after a ``+``, sorted; Klatt ones excluded."""
        return list(self._variants)

    def _select_voice(self, voice: str) -> None:
        """Make ``voice`` current, or raise :class:`EspeakError` naming what is accepted."""
        language, _, variant = voice.partition("+")
        if variant and variant not in self._variants:
            raise EspeakError(f"unknown or unsupported espeak-ng voice variant {variant!r} in {voice!r}; "
                              f"accepted: {self._variants}")
        if not language or self._lib.espeak_SetVoiceByName(voice.encode()) != _EE_OK:
            raise EspeakError(f"unknown espeak-ng voice {voice!r}: {language!r} is not one of the "
                              f"{len(self.voices())} bundled language voices (e.g. 'en-us', 'en-gb-x-rp', 'de')")

    def synth(self, text: str, voice: str = "en-us", *, rate_wpm: int = 175, pitch: int = 50,
              pitch_range: int = 50) -> np.ndarray:
        """Speak ``text``: float32 mono samples at :attr:`sample_rate_hz` (22,050 Hz).

        ``rate_wpm`` 80-450 words per minute; ``pitch`` and ``pitch_range`` 0-100 (espeak-ng's units).
        """
        data = text.encode("utf-8") + b"\0"
        with self._lock:
            self._select_voice(voice)
            for param, value in ((_PARAM_RATE, rate_wpm), (_PARAM_PITCH, pitch), (_PARAM_RANGE, pitch_range)):
                self._lib.espeak_SetParameter(param, int(value), 0)
            for address, fresh in self._state:
                ctypes.memmove(address, fresh, len(fresh))
            self._lib.espeak_ng_SetRandSeed(0)
            self._chunks.clear()
            status = self._lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
            self._lib.espeak_Synchronize()
            chunks, self._chunks = self._chunks, []
        if status != _EE_OK:
            raise EspeakError(f"espeak_Synth failed with status {status} for text {text!r}, voice {voice!r}")
        if not chunks:
            raise EspeakError(f"espeak-ng produced no audio for text {text!r} with voice {voice!r}")
        return np.concatenate(chunks).astype(np.float32) / 32768.0


_INSTANCE: Espeak | None = None
_INSTANCE_LOCK = threading.Lock()


def get_espeak() -> Espeak:
    """The process-wide espeak-ng instance (created on first use)."""
    global _INSTANCE
    with _INSTANCE_LOCK:
        if _INSTANCE is None:
            _INSTANCE = Espeak()
        return _INSTANCE
