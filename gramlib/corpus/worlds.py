"""The two disjoint worlds of the embedded corpus, and the seeding of every item.

* **pretrain** -- the AudioSet stand-in and the pre-training noise: :data:`PRETRAIN_WORDS`, half of
  espeak-ng's voice variants, the GM programs no task uses, drum keys no task uses.
* **task** -- the HEAR-format suite and the Nat-HEAR noise: :data:`TASK_WORDS` and
  :data:`TASK_AUX_WORDS`, a third of the variants for the tasks and the remaining sixth for the
  Nat-HEAR babble, four programs of each instrument family, the task drum keys.

Every item is a pure function of ``(seed, stream, index)`` through :func:`item_rng`, so any one can
be rebuilt alone; synthesized event classes are shared by both worlds but drawn from other streams.
"""
from __future__ import annotations

import functools
import zlib
from dataclasses import dataclass

import numpy as np

from .espeak import get_espeak
from .events import SYNTHESIZED
from .synth import GM_FAMILIES

LEVEL_DB = -20.0  # every clip of the corpus is normalised to this RMS (peak kept below 0.99)
TASK_WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")  # Speech Commands' 10
TASK_AUX_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "bed",
                  "bird", "cat", "dog", "happy", "house", "tree", "wow")  # count and dcase speech
_COMMON_WORDS = """
the of and to in is was he for it with as his that at by from this had not are but they have she
which you were her all their there been when who will more would if so what out said time about
them into than only other new some could these two may first then do any like my now over such our
man me even most made after also did many before must through back years where much your way well
down should because each just those people how too little state good very make world still own see
men work long get here between both life being under never day same another know while last might
us great old year off come since against came right used take three house use during without again
place around however home small found thought went say part once general high upon school every
don't does got united left number course war until always away something fact though water less
public put think almost hand enough far took head yet government system better set told nothing
night end why called didn't eyes find going look asked later knew point next city business give
group toward young days let room president side social given present several order national
possible rather second face per among form important often things looked early white case john
become large big need four within felt children along saw best church ever least power development
light thing family interest want members mind country area others done turned although open god
service certain kind problem began different door thus help sense means whole matter perhaps itself
york times law human line above name example action company hands local show whether five history
gave either today act feet across taken past quite anything seen having death week experience""".split()
PRETRAIN_WORDS = tuple(w for w in _COMMON_WORDS if w not in TASK_WORDS + TASK_AUX_WORDS)

ENGLISH_VOICES = ("en", "en-us", "en-gb-x-rp", "en-029", "en-us-nyc", "en-gb-scotland", "en-gb-x-gbclan",
                  "en-gb-x-gbcwmd")
INSTRUMENT_FAMILIES = ("keyboard", "mallet", "organ", "guitar", "bass", "strings", "brass", "reed", "flute",
                       "synth_lead")  # the `family` task's classes
TASK_DRUM_KEYS = {"kick": [36], "snare": [38], "cymbal": [49, 57]}
TASK_EVENT_CLASSES = tuple(sorted([*SYNTHESIZED, *TASK_DRUM_KEYS]))  # the `events` task's 12 classes
PRETRAIN_DRUM_KEYS = {"kick": [35], "snare": [40], "cymbal": [51, 52, 55, 59],
                      "percussion": [37, 39, *range(41, 49), 50, 53, 54, 56, 58, *range(60, 82)]}


@dataclass(frozen=True)
class World:
    """The words, voices, programs and drum keys one world may use."""

    name: str
    words: tuple[str, ...]
    voices: tuple[str, ...]
    programs: tuple[int, ...]
    drum_keys: dict
    noise_voices: tuple[str, ...]  # babble talkers of this world's noise

    @property
    def event_classes(self) -> list[str]:
        return sorted(SYNTHESIZED) + sorted(self.drum_keys)

    def family_programs(self, family: str) -> list[int]:
        return [p for p in GM_FAMILIES[family] if p in self.programs]


@functools.lru_cache(maxsize=1)
def worlds() -> dict[str, World]:
    """The pretrain and task worlds. Voice variants are dealt by sorted index: i % 6 in {0, 2, 4}
    pre-training, {1, 3} tasks, 5 the Nat-HEAR babble; programs: even offsets within the instrument
    families are task programs, all others pre-training programs."""
    variants = get_espeak().variants()
    voices = {group: tuple(f"{lang}+{v}" for i, v in enumerate(variants) if i % 6 in slots for lang in ENGLISH_VOICES)
              for group, slots in (("pretrain", {0, 2, 4}), ("task", {1, 3}), ("task-noise", {5}))}
    task_programs = tuple(p for f in INSTRUMENT_FAMILIES for p in GM_FAMILIES[f] if p % 2 == 0)
    pretrain_programs = tuple(p for p in range(128) if p not in task_programs)
    return {
        "pretrain": World("pretrain", PRETRAIN_WORDS, voices["pretrain"], pretrain_programs,
                          PRETRAIN_DRUM_KEYS, voices["pretrain"]),
        "task": World("task", TASK_WORDS + TASK_AUX_WORDS, voices["task"], task_programs, TASK_DRUM_KEYS,
                      voices["task-noise"]),
    }


def item_rng(seed: int, stream: str, index: int) -> np.random.Generator:
    """The generator of item ``index`` of ``stream`` (e.g. ``"pretrain"``, ``"task/words"``)."""
    return np.random.default_rng([int(seed), zlib.crc32(stream.encode()), int(index)])
