"""``gram``: the command line of gramlib, usable without DVC (each subcommand has ``--help``).

    gram nathear TASKS_DIR OUT_DIR            Nat-HEAR (binaural and/or FOA, with loc and T60 tasks)
                                              from any HEAR-layout tasks folder
    gram evaluate MODULE --model W --tasks-dir DIR --out metrics.json
                                              any HEAR 2021 module on suite folders, our probe protocol
    gram embed CHECKPOINT WAV_DIR OUT_DIR     one .npy per WAV (scene, timestamp or CLS embeddings)
    gram localize WAV [--by classical|CHECKPOINT]
                                              azimuth / elevation of the sound in a binaural or FOA WAV
    gram pretrain --variant V [--profile P]   pre-train one variant of params.yaml (resumes by default)

Settings not given as options come from params.yaml (the active profile, or ``--profile``): ``--params``,
else the one found from the working directory upward, else the checkout's own. Every command runs the
pinned numerics of the pipeline stage it corresponds to (:mod:`gramlib.core.numerics`): the environment is
set before torch is imported, so the same command gives the same bits as the stage. Bad arguments and
bad input end with one line naming the argument or file (exit status 2).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..core import config, numerics

NO_PROJECT = ("embed", "localize")  # commands that need no project: outside one they run on the defaults
STAGE_OF = {"nathear": "nathear", "evaluate": "evaluate", "embed": "evaluate", "localize": "evaluate",
            "pretrain": "pretrain"}
EMBEDDING_KINDS = ("scene", "timestamp", "cls")


class CommandError(ValueError):
    """A bad argument or input, reported as one line."""


# ------------------------------------------------------------------------------------ parser
def _range(text: str) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH (two numbers), got {text!r}") from None
    if low > high:
        raise argparse.ArgumentTypeError(f"expected LOW <= HIGH, got {text!r}")
    return low, high


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _pairs(text: str) -> dict[str, str]:
    out = {}
    for item in filter(None, text.split(",")):
        name, sep, source = item.partition("=")
        if not sep or not name or not source:
            raise argparse.ArgumentTypeError(f"expected NAME=SOURCE_TASK[,...], got {text!r}")
        out[name] = source
    return out


def build_parser() -> argparse.ArgumentParser:
    summary = __doc__.split("\n\n")[1]
    parser = argparse.ArgumentParser(prog="gram", description="GRAM and Nat-HEAR without DVC; each command has --help.",
                                     epilog=summary, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", help="params.yaml profile (default: the file's active profile)")
    parser.add_argument("--params", type=Path, help="params.yaml to read (default: found from the working directory)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("nathear", help="build Nat-HEAR from a HEAR-layout tasks folder",
                       description="Re-render every task of TASKS_DIR in simulated held-out rooms with noise (binaural "
                       "and/or FOA), and build the localization and T60 tasks, into OUT_DIR/<format>/<task>. The "
                       "test-room RIR bank is simulated into OUT_DIR/rooms unless --rooms-dir names one; test noise "
                       "is synthesized into OUT_DIR/noise unless --noise-dir names a folder of WAVs.")
    p.add_argument("tasks_dir", type=Path, help="folder of HEAR tasks (<task>/task_metadata.json, <task>/32000/...)")
    p.add_argument("out_dir", type=Path)
    p.add_argument("--formats", nargs="+", choices=("binaural", "foa"), help="default: params build.formats")
    p.add_argument("--rooms-dir", type=Path, help="an existing test-room RIR bank (from gram nathear or dvc repro rooms)")
    p.add_argument("--noise-dir", type=Path, help="folder of noise WAVs (or test/*.wav, or a noise manifest.csv)")
    p.add_argument("--test-rooms", type=_positive, help="rooms to simulate (default: params rooms.test_rooms)")
    p.add_argument("--sets-per-room", type=_positive, help="placements per room (default: params)")
    p.add_argument("--rt60-s", type=_range, metavar="LOW,HIGH", help="target RT60 range in s (default: params)")
    p.add_argument("--snr-db", type=_range, metavar="LOW,HIGH", help="signal-to-noise range in dB (default: params)")
    p.add_argument("--loc-clips", type=_positive, help="clips per localization task (default: params)")
    p.add_argument("--t60-clips", type=_positive, help="clips per T60 task (default: params)")
    p.add_argument("--loc-sources", type=_pairs, metavar="NAME=TASK[,...]",
                   help="spatial tasks and the dry task each is built from, e.g. speech=speech_commands-v0.0.2-5h "
                   "(default: params build.loc_sources)")
    p.add_argument("--seed", type=int, help="default: params seed")

    p = sub.add_parser("evaluate", help="score a HEAR 2021 module on suite folders",
                       description="Embed every task of each --tasks-dir with a HEAR 2021 module (load_model, "
                       "get_scene_embeddings, get_timestamp_embeddings; get_cls_embeddings when it has one) and run "
                       "gramlib's probe protocol (params evaluate section). Writes the metrics JSON the pipeline "
                       "writes (and its .detail.json), and prints one line per task.")
    p.add_argument("module", help="importable module name, e.g. gramlib.model.hear or hearbaseline.wav2vec2")
    p.add_argument("--model", default="", help="the path given to the module's load_model (default: none)")
    p.add_argument("--tasks-dir", type=Path, action="append", required=True,
                   help="a suite folder holding task folders (repeatable); its folder name names the suite")
    p.add_argument("--tasks", nargs="+", help="only these task names")
    p.add_argument("--out", type=Path, required=True, help="metrics JSON to write")
    p.add_argument("--name", help="model name in the results (default: MODULE)")
    p.add_argument("--seed", type=int, help="probe seed base (default: params seed)")

    p = sub.add_parser("embed", help="embed a folder of WAVs with a GRAM checkpoint",
                       description="One .npy per WAV under OUT_DIR (same relative path): scene (D,), timestamp "
                       "(T, D) with <name>.timestamps.npy (T,) in ms, or cls (D,). WAVs at another rate are resampled.")
    p.add_argument("checkpoint", type=Path, help="a GRAM checkpoint folder (model.safetensors + config.json), "
                   "or the authors' released weights (file or Hugging Face folder)")
    p.add_argument("wav_dir", type=Path)
    p.add_argument("out_dir", type=Path)
    p.add_argument("--kind", choices=EMBEDDING_KINDS, default="scene")

    p = sub.add_parser("localize", help="the direction of the sound in a binaural or FOA WAV",
                       description="Prints azimuth (counter-clockwise from the front, +90 = left) and elevation in "
                       "degrees. --by classical: the intensity vector (FOA) or HRTF matching (binaural); --by "
                       "CHECKPOINT: a GRAM checkpoint and a ridge probe fitted on its project's Nat-HEAR task.")
    p.add_argument("wav", type=Path, help="2 channels (left ear first) or 4 (ambiX W, Y, Z, X)")
    p.add_argument("--by", default="classical", help="classical, intensity, gcc-hrtf, or a checkpoint folder")
    p.add_argument("--nathear-dir", type=Path, help="Nat-HEAR folder for the probe (default: the model's project)")
    p.add_argument("--task", default="words-loc", help="Nat-HEAR localization task of the probe (default: words-loc)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")

    p = sub.add_parser("pretrain", help="pre-train one variant outside DVC (resumes by default)",
                       description="Trains variant --variant of params.yaml into models/<variant> of the project "
                       "(data/ must hold the sources and rooms: `dvc repro rooms` or the pipeline's first stages). "
                       "An existing checkpoint of the same config is resumed; --fresh starts over.")
    p.add_argument("--variant", required=True)
    p.add_argument("--fresh", action="store_true", help="delete the variant's checkpoints first")
    return parser


# ------------------------------------------------------------------------------------ commands
def _load_params(args) -> dict:
    path = args.params
    if path is None:
        try:
            path = config.find_params()
        except config.ConfigError:
            path = Path(__file__).resolve().parents[2] / config.PARAMS_FILE  # an editable install's checkout
            if not path.is_file() and args.command in NO_PROJECT:
                return {"profile": "cpu"}  # the defaults, which equal the checkout's params.yaml (tested)
            if not path.is_file():
                raise CommandError("no params.yaml in the working directory or above it: run inside a gramlib "
                                   "project or pass --params") from None
    if not Path(path).is_file():
        raise CommandError(f"--params: {path} not found")
    return config.load_params(path, profile=args.profile)


def _require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise CommandError(f"{what}: {path} is not a folder")
    return path


def cmd_nathear(args, params: dict) -> int:
    import dataclasses  # a subcommand imports its layers when it runs: `gram --help` stays fast

    from ..corpus import sources  # a subcommand imports its layers when it runs: `gram --help` stays fast
    from ..nathear import build  # a subcommand imports its layers when it runs: `gram --help` stays fast
    from ..scenes import rirbank  # a subcommand imports its layers when it runs: `gram --help` stays fast

    _require_dir(args.tasks_dir, "TASKS_DIR")
    seed = int(params["seed"] if args.seed is None else args.seed)
    rate = config.section(params, "features").sample_rate_hz
    cfg = config.section(params, "nathear")
    over = {k: v for k, v in {"formats": tuple(args.formats) if args.formats else None, "snr_db": args.snr_db,
                              "loc_clips": args.loc_clips, "t60_clips": args.t60_clips,
                              "loc_sources": args.loc_sources}.items() if v is not None}
    cfg = dataclasses.replace(cfg, **over)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    rooms_dir = args.rooms_dir
    if rooms_dir is None:
        rooms_cfg = config.section(params, "rooms")
        over = {k: v for k, v in {"test_rooms": args.test_rooms, "sets_per_room": args.sets_per_room,
                                  "rt60_s": args.rt60_s}.items() if v is not None}
        rooms_dir = args.out_dir / "rooms"
        rirbank.build_bank(dataclasses.replace(rooms_cfg, **over), rooms_dir, "test", seed, rate)
    else:
        _require_dir(rooms_dir, "--rooms-dir")
    noise = args.noise_dir
    if noise is None:  # the sources stage's test noise (no train noise), written with its manifest
        src = dataclasses.replace(config.section(params, "sources"), noise_train_clips=0)
        sources.build_noise(src, args.out_dir, seed, rate)
        noise = args.out_dir / "noise"
    elif not noise.exists():
        raise CommandError(f"--noise-dir: {noise} not found")
    summary = build.build_nathear(args.tasks_dir, rooms_dir, noise, args.out_dir, cfg, seed, rate)
    for row in summary.itertuples():
        print(f"{row.format:9s} {row.task:24s} {row.clips:6d} clips  {args.out_dir / row.path}")
    return 0


def cmd_evaluate(args, params: dict) -> int:
    from ..core.tasks import list_tasks  # a subcommand imports its layers when it runs: `gram --help` stays fast
    from ..eval import evaluation  # a subcommand imports its layers when it runs: `gram --help` stays fast
    from ..eval.hearmodule import HearModel, HearModuleError  # a subcommand imports its layers when it runs: `gram --help` stays fast

    try:
        embedder = HearModel.load(args.module, args.model)
    except HearModuleError as err:
        raise CommandError(f"MODULE: {err}") from err
    dirs = {}
    for folder in args.tasks_dir:
        _require_dir(folder, "--tasks-dir")
        if not list_tasks(folder):
            raise CommandError(f"--tasks-dir: {folder} holds no task folder (<task>/task_metadata.json)")
        dirs[folder.name if folder.name not in dirs else str(folder)] = folder
    if args.tasks:
        found = {t.name for d in dirs.values() for t in list_tasks(d)}
        unknown = sorted(set(args.tasks) - found)
        if unknown:
            raise CommandError(f"--tasks: no task {unknown} in the suites; they hold {sorted(found)}")
    cfg = config.section(params, "evaluate")
    seed = int(params["seed"] if args.seed is None else args.seed)
    name = args.name or args.module
    results = evaluation.evaluate_model(name, embedder, dirs, cfg, seed, only=tuple(args.tasks) if args.tasks else None,
                                        meta={"kind": "hear-module", "module": args.module, "model": args.model})
    evaluation.write_results(args.out, results)
    for key, res in results["tasks"].items():
        metric = res["first_metric"]
        low, high = res.get(f"{metric}_ci95_low"), res.get(f"{metric}_ci95_high")
        interval = f"  (95 % interval {low:.4g} to {high:.4g})" if low is not None else ""
        print(f"{key:40s} {metric:28s} {res[metric]:.4g}{interval}")
    for suite, agg in results["aggregate"].items():
        print(f"{suite + '/average':40s} {'classification tasks, %':28s} {agg['average']:.4g}")
    print(f"wrote {args.out}")
    return 0


def cmd_embed(args, params: dict) -> int:
    import numpy as np  # a subcommand imports its layers when it runs: `gram --help` stays fast
    import torch  # a subcommand imports its layers when it runs: `gram --help` stays fast

    from ..model import hear  # a subcommand imports its layers when it runs: `gram --help` stays fast
    from ..core.audio import read_wav  # a subcommand imports its layers when it runs: `gram --help` stays fast

    if not args.checkpoint.exists():
        raise CommandError(f"CHECKPOINT: {args.checkpoint} not found (a gramlib checkpoint folder, or an "
                           f"authors' checkpoint file or folder)")
    _require_dir(args.wav_dir, "WAV_DIR")
    wavs = sorted(p for p in args.wav_dir.rglob("*") if p.suffix.lower() in (".wav", ".flac"))
    if not wavs:
        raise CommandError(f"WAV_DIR: {args.wav_dir} holds no .wav or .flac file")
    model = hear.load_model(str(args.checkpoint))
    for path in wavs:
        audio = torch.from_numpy(read_wav(path, sample_rate_hz=model.sample_rate, resample=True))[None]
        try:
            with torch.no_grad():
                if args.kind == "timestamp":
                    emb, ts = hear.get_timestamp_embeddings(audio, model)
                else:
                    emb = (hear.get_cls_embeddings if args.kind == "cls" else hear.get_scene_embeddings)(audio, model)
        except ValueError as err:
            raise CommandError(f"{path}: {err}") from err
        out = args.out_dir / path.relative_to(args.wav_dir).with_suffix(".npy")
        out.parent.mkdir(parents=True, exist_ok=True)
        np.save(out, emb[0].numpy())
        if args.kind == "timestamp":
            np.save(out.with_suffix(".timestamps.npy"), ts[0].numpy())
    print(f"wrote {len(wavs)} {args.kind} embeddings ({tuple(emb.shape[1:])}) to {args.out_dir}")
    return 0


def cmd_localize(args, params: dict) -> int:
    from ..eval.localize import localize_wav  # a subcommand imports its layers when it runs: `gram --help` stays fast

    if not args.wav.is_file():
        raise CommandError(f"WAV: {args.wav} not found")
    found = localize_wav(args.wav, args.by, nathear_dir=args.nathear_dir, task=args.task)
    if args.json:
        print(json.dumps({k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in found.items()}))
    else:
        print(f"azimuth {found['azimuth_deg']:.1f} deg, elevation {found['elevation_deg']:.1f} deg "
              f"({found['format']}, {found['method']})")
    return 0


def cmd_pretrain(args, params: dict) -> int:
    import shutil  # a subcommand imports its layers when it runs: `gram --help` stays fast

    from ..train import launch  # a subcommand imports its layers when it runs: `gram --help` stays fast
    from ..core.paths import Paths  # a subcommand imports its layers when it runs: `gram --help` stays fast

    config.resolve_variant(params, args.variant)  # an unknown variant is named before anything runs
    if args.fresh:
        shutil.rmtree(Paths.here().model(args.variant), ignore_errors=True)
    summary = launch.pretrain(args.variant, profile=args.profile)
    print(json.dumps({k: summary[k] for k in ("steps", "final_loss", "wall_s", "parameters") if k in summary}))
    return 0


COMMANDS = {"nathear": cmd_nathear, "evaluate": cmd_evaluate, "embed": cmd_embed, "localize": cmd_localize,
            "pretrain": cmd_pretrain}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        params = _load_params(args)
        env = numerics.environment(config.section(params, "numerics"),
                                   numerics.stage_threads(params, STAGE_OF[args.command],
                                                          getattr(args, "variant", None)))
        numerics.apply_environment(env)  # before torch loads: the commands import it lazily for this reason
        numerics.pin_process()
        return COMMANDS[args.command](args, params)
    except Exception as err:  # noqa: BLE001 - gramlib's own errors (and bad files) name what is wrong: one line
        if not (isinstance(err, (ValueError, FileNotFoundError)) or type(err).__module__.startswith("gramlib")):
            raise  # anything else is a bug: keep its traceback
        print(f"gram {args.command}: error: {str(err).splitlines()[0] if str(err) else type(err).__name__}",
              file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
