"""The command of every dvc.yaml stage: pin the numerics, then execute the stage's notebook.

    python -m gramlib.stage STAGE NOTEBOOK OUTPUT [-p NAME VALUE ...]

It reads params.yaml (the active profile), sets the environment of :func:`gramlib.numerics.environment`
for STAGE (thread count from ``numerics.threads``, pre-training from the variant's
``train.torch_threads``), and runs NOTEBOOK with papermill into OUTPUT; the notebook's kernel inherits
that environment, and its ``import gramlib`` applies the torch-level settings
(:func:`gramlib.numerics.pin_process`). So ``dvc repro`` with or without ``make`` runs the same numerics.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    from .numerics import STAGES

    parser = argparse.ArgumentParser(prog="python -m gramlib.stage", description=__doc__.split("\n")[0])
    parser.add_argument("stage", choices=STAGES)
    parser.add_argument("notebook", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="a notebook parameter (as papermill -p)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    from . import config, numerics

    if not args.notebook.is_file():
        print(f"gramlib.stage: notebook {args.notebook} not found", file=sys.stderr)
        return 2
    parameters = dict(args.parameter)
    params = config.load_params()
    env = numerics.environment(config.section(params, "numerics"),
                               numerics.stage_threads(params, args.stage, parameters.get("variant")))
    numerics.apply_environment(env)
    import papermill

    args.output.parent.mkdir(parents=True, exist_ok=True)
    papermill.execute_notebook(str(args.notebook), str(args.output), parameters=parameters, progress_bar=False,
                               cwd=os.getcwd())
    return 0


if __name__ == "__main__":
    sys.exit(main())
