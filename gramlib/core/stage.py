"""The command of every dvc.yaml stage: pin the numerics, then execute the stage's notebook.

    python -m gramlib.core.stage STAGE NOTEBOOK OUTPUT [-p NAME VALUE ...]

It reads params.yaml (the active profile), sets the environment of :func:`gramlib.core.numerics.environment`
for STAGE (thread count from ``numerics.threads``, pre-training from the variant's
``train.torch_threads``), and runs NOTEBOOK with papermill into OUTPUT; the notebook's kernel inherits
that environment, and its ``import gramlib`` applies the torch-level settings
(:func:`gramlib.core.numerics.pin_process`). So ``dvc repro`` with or without ``make`` runs the same numerics.

What the terminal shows: every line the notebook's cells print, prefixed with the stage
(``pretrain@gram-binaural | ...``), and its progress bars as one line per ``PROGRESS_EVERY_S`` at most
(the last state of a bar is always shown), so a long stage shows step / total, loss, rate and ETA as it
runs while the executed notebook stays as it was. The kernel talks to papermill over local IPC sockets
(no TCP warning). A failing stage ends with one line naming the stage, the notebook, the cell and the
error, and exits non-zero.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from . import config, numerics
from .numerics import STAGES

PROGRESS_EVERY_S = 5.0


class StageLog:
    """A text stream for papermill's ``stdout_file``/``stderr_file``: complete lines go to ``out`` with a
    prefix at once; a progress bar's in-place updates (text after a carriage return, no newline) at most
    once every ``every_s`` seconds, the latest one pending until :meth:`close`."""

    def __init__(self, label: str, out=None, every_s: float = PROGRESS_EVERY_S, clock=time.monotonic):
        self.prefix, self.out, self.every_s, self.clock = f"{label} | ", out or sys.stderr, every_s, clock
        self.last_progress, self.pending, self.partial = -float("inf"), None, ""

    def _emit(self, text: str) -> None:
        if text.strip():
            self.out.write(self.prefix + text.rstrip() + "\n")
            self.out.flush()

    def _end_bar(self) -> None:
        """Text that is not a redraw follows a bar: show the bar's last state first."""
        if self.pending:
            self._emit(self.pending)
        self.pending = None

    def write(self, text: str) -> int:
        lines = (self.partial + text).replace("\r\n", "\n").split("\n")
        self.partial = ""
        for line in lines[:-1]:  # complete lines: the last state after any carriage return
            if "\r" not in line:
                self._end_bar()
            self.pending = None
            self._emit(line.rsplit("\r", 1)[-1])
        tail = lines[-1]
        if "\r" not in tail:
            if tail:
                self._end_bar()
            self.partial = tail  # an unfinished line: wait for its end
        elif self.clock() - self.last_progress >= self.every_s:  # a progress bar redrawn in place
            self._emit(tail.rsplit("\r", 1)[-1])
            self.last_progress, self.pending = self.clock(), None
        else:
            self.pending = tail.rsplit("\r", 1)[-1]
        return len(text)

    def flush(self) -> None:
        self.out.flush()

    def close(self) -> None:
        for text in (self.pending, self.partial):
            if text:
                self._emit(text)
        self.pending, self.partial = None, ""


def _ipc_kernel_manager():
    """A kernel manager whose kernel uses local IPC sockets, not TCP on localhost."""
    from jupyter_client.manager import AsyncKernelManager  # the stage runner's kernel manager, only when a stage runs

    class IpcKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs):
            kwargs.setdefault("transport", "ipc")
            super().__init__(**kwargs)

    return IpcKernelManager


def parse(argv: list[str] | None = None) -> argparse.Namespace:

    parser = argparse.ArgumentParser(prog="python -m gramlib.core.stage", description=__doc__.split("\n")[0])
    parser.add_argument("stage", choices=STAGES)
    parser.add_argument("notebook", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="a notebook parameter (as papermill -p)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)

    if not args.notebook.is_file():
        print(f"gramlib.core.stage: notebook {args.notebook} not found", file=sys.stderr)
        return 2
    parameters = dict(args.parameter)
    params = config.load_params()
    env = numerics.environment(config.section(params, "numerics"),
                               numerics.stage_threads(params, args.stage, parameters.get("variant")))
    numerics.apply_environment(env)
    import papermill  # papermill loads after the numerics are pinned
    from papermill.exceptions import PapermillExecutionError  # papermill loads after the numerics are pinned

    label = args.stage + (f"@{parameters['variant']}" if "variant" in parameters else "")
    os.environ["GRAM_STAGE"] = label  # the kernel's params reads are noted under it (config.READ_LOG_ENV)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    log = StageLog(label)
    failure = None
    try:
        papermill.execute_notebook(str(args.notebook), str(args.output), parameters=parameters, progress_bar=False,
                                   cwd=os.getcwd(), stdout_file=log, stderr_file=log,
                                   kernel_manager_class=_ipc_kernel_manager())
    except PapermillExecutionError as err:
        failure = err
    log.close()  # a bar's last state, before any failure line
    if failure is not None:
        first = str(failure.evalue).strip().splitlines()[0] if str(failure.evalue).strip() else ""
        print(f"stage {label} failed: {args.notebook} cell {failure.cell_index + 1} (In [{failure.exec_count}]): "
              f"{failure.ename}: {first}  (executed notebook: {args.output})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
