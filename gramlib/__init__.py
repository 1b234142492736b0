"""gramlib: GRAM spatial audio representation models and the Nat-HEAR benchmark.

Subpackages are layers that follow the pipeline (:data:`LAYERS`, lowest first); a module imports only
from its own layer and those below it (tests/test_layers.py). See DESIGN.md for the pipeline and the
README's Layout section for what each layer owns. Importing the package is cheap: heavy
modules (torch, pyroomacoustics) load only when their module is imported — except in a process whose
numerics the stage runner pinned (``GRAM_PINNED=1``, :mod:`gramlib.core.numerics`), where importing gramlib
applies the torch-level settings before any stage code runs.
"""
import os as _os

__version__ = "0.1.0"

# The layers, lowest first. A pipeline stage's code dependencies are the layers its notebook reaches.
LAYERS = ("core", "corpus", "scenes", "nathear", "model", "train", "eval", "seld", "figures", "interactive")

if _os.environ.get("GRAM_PINNED") == "1":
    import warnings as _warnings

    from .core import numerics as _numerics

    # a stage's kernel has no widgets: tqdm's text bars are what the stage runner shows on the terminal
    _warnings.filterwarnings("ignore", message="IProgress not found")

    _numerics.pin_process()
