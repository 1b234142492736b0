"""gramlib: GRAM spatial audio representation models and the Nat-HEAR benchmark.

One module per concept; see DESIGN.md for the pipeline. Importing the package is cheap: heavy
modules (torch, pyroomacoustics) load only when their module is imported — except in a process whose
numerics the stage runner pinned (``GRAM_PINNED=1``, :mod:`gramlib.numerics`), where importing gramlib
applies the torch-level settings before any stage code runs.
"""
import os as _os

__version__ = "0.1.0"

if _os.environ.get("GRAM_PINNED") == "1":
    import warnings as _warnings

    from . import numerics as _numerics

    # a stage's kernel has no widgets: tqdm's text bars are what the stage runner shows on the terminal
    _warnings.filterwarnings("ignore", message="IProgress not found")

    _numerics.pin_process()
