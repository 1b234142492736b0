"""Typed, frozen configuration loaded from ``params.yaml``.

``params.yaml`` is the single source of truth. Its top level holds

* ``profile`` -- the active profile (``cpu`` by default, ``smoke`` for CI, ``paper`` for GPUs, ``demo`` for
  the interactive notebooks' tiny project, :mod:`gramlib.interactive.demo`);
* one section per stage (``sources``, ``rooms``, ``nathear``, ``features``, ``model``, ``train``,
  ``evaluate``, ``baselines``, ``seld``, ``figures``);
* ``variants`` -- the pre-training variants that the ``pretrain@``/``evaluate@`` stages expand;
* ``profiles`` -- per-profile overrides, deep-merged onto the sections.

Every key is checked: a key that no dataclass declares raises :class:`ConfigError` naming the key,
its section and the accepted keys, so a typo never silently falls back to a default.
"""
from __future__ import annotations

import copy
import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

import yaml

PROFILES = ("cpu", "smoke", "paper", "demo")
PARAMS_FILE = "params.yaml"


class ConfigError(ValueError):
    """A params.yaml value or key that the code does not accept."""


# --------------------------------------------------------------------------------------------
# Stage sections
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DataPaths:
    """Real datasets plug in here; ``None`` means: build the embedded default instead."""

    audioset_dir: Optional[str] = None  # folder of clips (wav/flac, any rate, mono or multi) for pre-training
    noise_dir: Optional[str] = None  # WHAM!-like noise clips, split into train/test by file hash
    hear_tasks_dir: Optional[str] = None  # a HEAR 2021 tasks directory (tasks/<name>/task_metadata.json ...)


@dataclass(frozen=True)
class SourcesConfig:
    pretrain_clips: int = 240  # 10-s mono clips of the AudioSet stand-in
    clip_s: float = 10.0
    noise_train_clips: int = 48  # pre-training noise set
    noise_test_clips: int = 24  # Nat-HEAR noise set (disjoint)
    noise_clip_s: float = 10.0
    # total clips per embedded HEAR task (split by the task's own protocol)
    task_clips: dict[str, int] = field(default_factory=lambda: {
        "words": 320, "pitch": 320, "events": 300, "count": 240, "family": 300, "dcase": 32})
    paths: DataPaths = field(default_factory=DataPaths)


@dataclass(frozen=True)
class RoomsConfig:
    train_rooms: int = 96
    test_rooms: int = 32
    sets_per_room: int = 4  # listener/source/noise placements per room (one ISM run renders them all)
    rt60_s: tuple[float, float] = (0.2, 0.8)  # target range; the stored value is always the measured one
    length_m: tuple[float, float] = (5.0, 10.0)
    width_m: tuple[float, float] = (4.0, 8.0)
    height_m: tuple[float, float] = (2.5, 4.0)
    distance_m: tuple[float, float] = (1.5, 5.0)
    max_order: int = 8  # image-source order; the late tail is completed stochastically (see rooms.py)
    rir_s: float = 1.0  # paper: 3 s (96,000 taps at 32 kHz)
    diffuse_prob: float = 0.5  # share of sets with 3-5 noise sources (else one localized)
    n_diffuse: tuple[int, int] = (3, 5)
    shard_size: int = 64


@dataclass(frozen=True)
class NatHearConfig:
    formats: tuple[str, ...] = ("binaural", "foa")
    snr_db: tuple[float, float] = (5.0, 40.0)
    loc_clips: int = 240  # per localization task (words, events)
    t60_clips: int = 160  # per T60 task (words, events), no added noise
    seed_offset: int = 1000
    # <name>-loc / <name>-t60 tasks and the dry task each is built from (real HEAR: e.g. speech_commands-v0.0.2-5h)
    loc_sources: dict[str, str] = field(default_factory=lambda: {"words": "words", "events": "events"})


@dataclass(frozen=True)
class FeaturesConfig:
    sample_rate_hz: int = 32000
    n_fft: int = 1024
    win_length: int = 1024  # 32 ms, as the authors' code (the paper text says 25 ms)
    hop_length: int = 320  # 10 ms
    n_mels: int = 128
    f_min_hz: float = 50.0
    f_max_hz: float = 16000.0
    log_offset: float = 1e-5
    crop_frames: int = 200  # 2-s model input
    clip_frames: int = 1024  # a 10-s clip (1001 frames) zero-padded to 1024, as the paper


@dataclass(frozen=True)
class ModelConfig:
    encoder: Literal["transformer", "mamba"] = "transformer"
    patch_mels: int = 16  # "frame" patching: 16 mel x 8 frames -> 8 x 25 tokens per crop
    patch_frames: int = 8  # "time" patching: patch_mels=128, patch_frames=2 -> 1 x 100 tokens
    embed_dim: int = 128
    depth: int = 4
    heads: int = 4
    mlp_ratio: float = 4.0
    decoder_dim: int = 64
    decoder_depth: int = 1
    decoder_heads: int = 8
    decoder_windows: Optional[list[int]] = None  # None: derived from the token grid (see model.py)
    mask_ratio: float = 0.8
    masking: Literal["unstructured", "time", "freq"] = "unstructured"
    mamba_state: int = 64
    mamba_expand: int = 2
    mamba_headdim: int = 32
    mamba_chunk: int = 32
    mamba_depth: Optional[int] = None  # None: parameter-matched to the Transformer encoder (see mamba.py)
    mamba_bidirectional: bool = True  # weight-tied forward + reversed scan; the authors' GRAM-M was causal


@dataclass(frozen=True)
class TrainConfig:
    steps_main: int = 360
    steps_ablation: int = 100
    batch_clips: int = 2  # scenes mixed per step
    n_crops: int = 16  # in-batch sampling: 2-s crops drawn from each 10-s scene
    grad_accum: int = 1
    lr: float = 1.0e-3
    warmup_steps: int = 30
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = 1.0
    lambda_clean: float = 0.0  # probability that an example is dry and channel-duplicated
    snr_db: tuple[float, float] = (5.0, 40.0)  # SNR range of the pre-training scenes (paper: U(5, 40) dB)
    data_fraction: float = 1.0  # share of the pre-training pool used (Fig 2A)
    checkpoint_every: int = 60
    keep_checkpoints: int = 3  # newest resumable checkpoints kept on disk
    curve_points: int = 0  # evenly spaced weight snapshots kept for learning curves (Figure 6)
    log_every: int = 20
    num_workers: int = 1
    torch_threads: int = 2
    bf16: bool = False
    compile: bool = False
    devices: int = 1


@dataclass(frozen=True)
class EvaluateConfig:
    probe_grid: Literal["linear", "smoke", "cpu", "reduced", "full"] = "linear"
    max_epochs: int = 200
    patience_checks: int = 20
    check_every: int = 3
    embed_batch: int = 32
    ablation_tasks: tuple[str, ...] = ("words", "words-loc")
    suites: Literal["native", "all"] = "native"  # GRAMs on HEAR + their own Nat-HEAR format, or on both formats
    event_hop_ms: float = 80.0  # event tasks: average timestamp frames up to this hop (0: the model's own)
    probe_seed: int = 42
    curve_variants: tuple[str, ...] = ("abl-binaural", "grad-accum")  # Figure 6: score vs training step
    curve_tasks: tuple[str, ...] = ("words",)
    standardize_inputs: bool = True  # z-score embeddings with the train split's statistics (heareval: raw)
    bootstrap: int = 1000  # resamples of the test items behind each score's 95 % interval (0: none)
    sensitivity_rel: float = 1.0e-6  # re-run every probe on embeddings perturbed by this relative amount (0: off)


@dataclass(frozen=True)
class BaselinesConfig:
    names: tuple[str, ...] = ("naive", "intensity", "gcc-hrtf", "random-gram")
    naive_dim: int = 512  # random-projection width; hearbaseline's naive uses 4096 (slow probes on CPU)
    random_gram_variant: str = "gram-binaural"  # the variant whose configuration the untrained GRAM has


@dataclass(frozen=True)
class SeldConfig:
    variant: str = "gram-ambisonics"  # the model whose embeddings the SELD probe reads
    recordings: int = 24  # synthetic DCASE-format recordings
    recording_s: float = 30.0
    classes: int = 13
    max_overlap: int = 3
    moving_prob: float = 0.5
    dataset_dir: Optional[str] = None  # a real DCASE-format dataset (TUT-2018, TAU-2019, STARSS23)
    dataset_format: Literal["synthetic", "tut2018", "tau2019", "dcase2020", "starss23"] = "synthetic"
    epochs: int = 60
    head: Literal["linear", "mlp"] = "linear"
    output: Literal["accdoa", "multi-accdoa"] = "accdoa"  # the paper's probe used single ACCDOA
    subset: Optional[str] = None  # tut2018: "ov1_split1" etc. (or "ov1": every split, averaged)
    test_fold: Optional[int] = None  # tau2019 / dcase2020 (2020 layout); None: fold 1, the DCASE setup
    azimuth_sign: Literal[1, -1] = 1  # -1 mirrors label azimuths (see seld_foa.check_foa_convention)
    val_fraction: float = 0.2  # share of TRAIN recordings held out for model selection (never the test fold)
    chunk_s: float = 20.0  # recordings are embedded in chunks of this length to bound memory
    lr: float = 1.0e-3
    batch_frames: int = 512  # 100-ms frames per probe step
    synth_sample_rate_hz: int = 24000  # the synthetic set is written at the DCASE rate, then resampled
    # the synthetic set's rooms and sources (gramlib.seld.synth)
    synth_room_m: tuple[tuple[float, float], tuple[float, float], tuple[float, float]] = (
        (5.0, 10.0), (4.0, 8.0), (2.7, 4.0))  # length, width, height ranges
    synth_rt60_s: tuple[float, float] = (0.2, 0.6)  # target RT60 (Sabine); the manifest stores the measured one
    synth_distance_m: tuple[float, float] = (1.0, 2.0)
    synth_elevation_deg: tuple[int, int] = (-40, 40)  # the DCASE 2019-2021 range
    synth_speeds_deg_s: tuple[int, ...] = (10, 20, 40)  # angular speeds of moving sources
    synth_snr_db: tuple[float, float] = (20.0, 30.0)  # diffuse noise under the events


@dataclass(frozen=True)
class FiguresConfig:
    score_pool: tuple[str, ...] = ("gram-binaural", "gram-binaural-time", "gram-ambisonics", "gram-clean", "naive")
    dpi: int = 150
    figure1_variant: str = "gram-binaural"  # the model whose reconstruction Figure 1 shows
    extra_models: tuple[str, ...] = ()  # results/eval/<name>.json of models evaluated outside the pipeline


@dataclass(frozen=True)
class NumericsConfig:
    """Pinned CPU numerics (see :mod:`gramlib.core.numerics`): the same bits on any x86-64 CPU with AVX2."""

    cpu_capability: Literal["avx2", "avx512", "default"] = "avx2"  # ATEN_CPU_CAPABILITY
    mkl_cbwr: str = "COMPATIBLE"  # MKL_CBWR: the branch MKL documents as equal on Intel and non-Intel CPUs
    onednn: bool = False  # oneDNN JIT kernels (cache-size-dependent blocking); off: ATen + MKL paths
    deterministic: bool = True  # torch.use_deterministic_algorithms
    threads: dict[str, int] = field(default_factory=lambda: {
        "sources": 2, "rooms": 2, "nathear": 2, "evaluate": 2, "baselines": 2, "seld": 2, "figures": 2})


@dataclass(frozen=True)
class Variant:
    """One pre-training variant: only what differs from the shared ``model``/``train`` sections."""

    axis: str  # "main" or the ablation it belongs to
    value: Any  # its value on that axis
    format: Literal["binaural", "foa", "clean"]
    seed: int = 0
    budget: Literal["main", "ablation"] = "ablation"
    set: dict = field(default_factory=dict)  # {"model": {...}, "train": {...}} overrides
    also: list = field(default_factory=list)  # other [axis, value] points this model stands for


# --------------------------------------------------------------------------------------------
# Accepted ranges: every value, from params.yaml or a default, is checked when its section is built
# --------------------------------------------------------------------------------------------
def _above(x):
    return (lambda v: v > x), f"a number > {x}"


def _at_least(x):
    return (lambda v: v >= x), f"a number >= {x}"


def _within(lo, hi):
    return (lambda v: lo <= v <= hi), f"a number in [{lo}, {hi}]"


def _span(lo=None):
    """[low, high] with low <= high (and low above ``lo`` when given)."""
    text = "[low, high] with low <= high" + (f" and low > {lo}" if lo is not None else "")
    return (lambda v: v[0] <= v[1] and (lo is None or v[0] > lo)), text


def _counts(x):
    return (lambda v: all(n >= x for n in v.values())), f"a mapping of integers >= {x}"


POSITIVE, COUNT, PROBABILITY = _above(0), _at_least(1), _within(0.0, 1.0)
LIMITS: dict[type, dict[str, tuple]] = {
    SourcesConfig: {"pretrain_clips": COUNT, "clip_s": POSITIVE, "noise_train_clips": COUNT,
                    "noise_test_clips": COUNT, "noise_clip_s": POSITIVE, "task_clips": _counts(0)},
    RoomsConfig: {"train_rooms": COUNT, "test_rooms": COUNT, "sets_per_room": COUNT, "rt60_s": _span(0),
                  "length_m": _span(0), "width_m": _span(0), "height_m": _span(0), "distance_m": _span(0),
                  "max_order": _at_least(0), "rir_s": POSITIVE, "diffuse_prob": PROBABILITY, "n_diffuse": _span(0),
                  "shard_size": COUNT},
    NatHearConfig: {"snr_db": _span(), "loc_clips": _at_least(0), "t60_clips": _at_least(0),
                    "seed_offset": _at_least(0)},
    FeaturesConfig: {"sample_rate_hz": POSITIVE, "n_fft": COUNT, "win_length": COUNT, "hop_length": COUNT,
                     "n_mels": COUNT, "f_min_hz": _at_least(0), "f_max_hz": POSITIVE, "log_offset": POSITIVE,
                     "crop_frames": COUNT, "clip_frames": COUNT},
    ModelConfig: {"patch_mels": COUNT, "patch_frames": COUNT, "embed_dim": COUNT, "depth": COUNT, "heads": COUNT,
                  "mlp_ratio": POSITIVE, "decoder_dim": COUNT, "decoder_heads": COUNT,
                  "decoder_depth": _at_least(0),  # 0: an encoder only (the authors' released weights)
                  "mask_ratio": ((lambda v: 0 < v < 1), "a number in (0, 1)"), "mamba_state": COUNT,
                  "mamba_expand": COUNT, "mamba_headdim": COUNT, "mamba_chunk": COUNT},
    TrainConfig: {"steps_main": COUNT, "steps_ablation": COUNT, "batch_clips": COUNT, "n_crops": COUNT,
                  "grad_accum": COUNT, "lr": POSITIVE, "warmup_steps": _at_least(0), "weight_decay": _at_least(0),
                  "betas": ((lambda v: all(0 <= b < 1 for b in v)), "two numbers in [0, 1)"),
                  "grad_clip": POSITIVE, "lambda_clean": PROBABILITY,
                  "data_fraction": ((lambda v: 0 < v <= 1), "a number in (0, 1]"), "snr_db": _span(),
                  "checkpoint_every": COUNT, "keep_checkpoints": COUNT, "curve_points": _at_least(0),
                  "log_every": COUNT, "num_workers": _at_least(0), "torch_threads": COUNT, "devices": COUNT},
    EvaluateConfig: {"max_epochs": COUNT, "patience_checks": COUNT, "check_every": COUNT, "embed_batch": COUNT,
                     "event_hop_ms": _at_least(0), "bootstrap": _at_least(0), "sensitivity_rel": _at_least(0)},
    BaselinesConfig: {"naive_dim": COUNT},
    SeldConfig: {"recordings": COUNT, "recording_s": POSITIVE, "classes": COUNT, "max_overlap": COUNT,
                 "moving_prob": PROBABILITY, "epochs": COUNT, "val_fraction": ((lambda v: 0 <= v < 1), "a number in [0, 1)"),
                 "chunk_s": POSITIVE, "lr": POSITIVE, "batch_frames": COUNT, "synth_sample_rate_hz": POSITIVE,
                 "synth_room_m": ((lambda v: all(lo <= hi and lo > 0 for lo, hi in v)),
                                  "three [low, high] ranges with 0 < low <= high"),
                 "synth_rt60_s": _span(0), "synth_distance_m": _span(0),
                 "synth_elevation_deg": ((lambda v: -90 <= v[0] <= v[1] <= 90), "[low, high] within [-90, 90]"),
                 "synth_speeds_deg_s": ((lambda v: len(v) > 0 and all(x >= 0 for x in v)),
                                        "a non-empty list of numbers >= 0"),
                 "synth_snr_db": _span()},
    FiguresConfig: {"dpi": COUNT},
    NumericsConfig: {"threads": _counts(1)},
}


SECTIONS: dict[str, type] = {
    "sources": SourcesConfig,
    "rooms": RoomsConfig,
    "nathear": NatHearConfig,
    "features": FeaturesConfig,
    "model": ModelConfig,
    "train": TrainConfig,
    "evaluate": EvaluateConfig,
    "baselines": BaselinesConfig,
    "seld": SeldConfig,
    "figures": FiguresConfig,
    "numerics": NumericsConfig,
}
TOP_LEVEL = {"profile", "seed", "variants", "profiles", *SECTIONS}
# With this set to a file, every params key a process reads (a section, ``seed``, ``variants.<slug>``) is
# appended to it with the stage label of GRAM_STAGE; the pipeline test checks dvc.yaml lists each stage's reads.
READ_LOG_ENV = "GRAM_PARAMS_READ_LOG"


class Params(dict):
    """Merged params (a plain dict) that notes which top-level keys are read, when READ_LOG_ENV is set."""

    def __getitem__(self, key):
        note_read(key)
        return super().__getitem__(key)

    def get(self, key, default=None):
        note_read(key)
        return super().get(key, default)


yaml.SafeDumper.add_representer(Params, lambda dumper, data: dumper.represent_dict(dict(data)))


def note_read(key: str) -> None:
    log = os.environ.get(READ_LOG_ENV)
    if log:
        with open(log, "a") as f:
            f.write(f"{os.environ.get('GRAM_STAGE', '?')}\t{key}\n")


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------
def find_params(start: Path | str | None = None) -> Path:
    """The params.yaml of the project that contains ``start`` (default: the working directory)."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / PARAMS_FILE).is_file():
            return folder / PARAMS_FILE
    raise ConfigError(f"no {PARAMS_FILE} found in {here} or any parent folder")


def load_params(path: Path | str | None = None, profile: str | None = None) -> dict:
    """Read params.yaml, check its keys, and deep-merge the active profile's overrides.

    ``profile`` overrides the file's ``profile`` key. The result is a plain dict; use
    :func:`section` or :func:`variant_configs` for typed views.
    """
    path = Path(path) if path else find_params()
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"cannot read {path}: {err}") from err
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a mapping at its top level")
    unknown = sorted(set(raw) - TOP_LEVEL)
    if unknown:
        raise ConfigError(f"unknown top-level key(s) {unknown} in {path}; accepted: {sorted(TOP_LEVEL)}")
    profile = profile or raw.get("profile", "cpu")
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r} in {path}; accepted: {list(PROFILES)}")
    merged = {k: copy.deepcopy(v) for k, v in raw.items() if k != "profiles"}
    overrides = (raw.get("profiles") or {}).get(profile) or {}
    for name, over in overrides.items():
        if name not in SECTIONS and name != "seed":
            raise ConfigError(f"profile {profile!r} overrides unknown section {name!r}; accepted: {list(SECTIONS)}")
        if name == "seed":
            merged["seed"] = over
            continue
        merged[name] = deep_merge(merged.get(name) or {}, over, where=f"profiles.{profile}.{name}")
    merged["profile"] = profile
    for name, cls in SECTIONS.items():  # validate every section now, not when a stage first reads it
        build(cls, merged.get(name) or {}, name)
    for slug, spec in (merged.get("variants") or {}).items():
        resolve_variant(merged, slug, spec)
    return Params(merged)


def deep_merge(base: dict, over: dict, where: str) -> dict:
    """``base`` updated by ``over``; nested mappings merge, anything else is replaced."""
    out = copy.deepcopy(base)
    for key, value in (over or {}).items():
        if isinstance(out.get(key), dict) and isinstance(value, dict):
            out[key] = deep_merge(out[key], value, f"{where}.{key}")
        else:
            out[key] = copy.deepcopy(value)
    return out


def section(params: dict, name: str):
    """The typed, frozen dataclass of one section of merged params."""
    if name not in SECTIONS:
        raise ConfigError(f"unknown section {name!r}; accepted: {list(SECTIONS)}")
    note_read(name)
    return build(SECTIONS[name], dict.get(params, name) or {}, name)


def resolve_variant(params: dict, slug: str, spec: dict | None = None) -> tuple[Variant, ModelConfig, TrainConfig]:
    """A variant with its model and train sections after its own overrides."""
    variants = dict.get(params, "variants") or {}
    if spec is None:
        for key in (f"variants.{slug}", "model", "train"):
            note_read(key)
        if slug not in variants:
            raise ConfigError(f"unknown variant {slug!r}; accepted: {sorted(variants)}")
        spec = variants[slug]
    variant = build(Variant, spec, f"variants.{slug}")
    unknown = sorted(set(variant.set) - {"model", "train"})
    if unknown:
        raise ConfigError(f"variants.{slug}.set may override 'model' and 'train' only, not {unknown}")
    model = build(ModelConfig, deep_merge(dict.get(params, "model") or {}, variant.set.get("model", {}), slug),
                  f"variants.{slug}.set.model")
    train = build(TrainConfig, deep_merge(dict.get(params, "train") or {}, variant.set.get("train", {}), slug),
                  f"variants.{slug}.set.train")
    return variant, model, train


# --------------------------------------------------------------------------------------------
# dict -> dataclass with type checks
# --------------------------------------------------------------------------------------------
def build(cls: type, data: dict, where: str):
    """Instantiate dataclass ``cls`` from ``data``, rejecting unknown keys and wrong types."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping, got {type(data).__name__}: {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ConfigError(f"unknown key(s) {unknown} in section '{where}'; accepted: {names}")
    kwargs = {k: _coerce(hints[k], v, f"{where}.{k}") for k, v in data.items()}
    try:
        built = cls(**kwargs)
    except TypeError as err:  # a required field is missing
        raise ConfigError(f"section '{where}': {err}") from err
    for key, (accepts, what) in LIMITS.get(cls, {}).items():
        value = getattr(built, key)
        if not accepts(value):
            raise ConfigError(f"{where}.{key} = {value!r} is out of range; accepted: {what}")
    return built


def _coerce(tp, value, where: str):
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(arg, value, where)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError("; ".join(errors))
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{where} = {value!r} is not accepted; choose one of {list(args)}")
        return value
    if dataclasses.is_dataclass(tp):
        return build(tp, value, where)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{where} must have {len(args)} entries, got {value!r}")
        return tuple(_coerce(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
    if origin is list or tp is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        return [_coerce(args[0], v, f"{where}[{i}]") if args else v for i, v in enumerate(value)]
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a mapping, got {value!r}")
        if not args:
            return dict(value)
        return {_coerce(args[0], k, where): _coerce(args[1], v, f"{where}.{k}") for k, v in value.items()}
    raise ConfigError(f"{where}: unsupported type {tp}")  # pragma: no cover - a programming error
