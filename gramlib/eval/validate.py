"""Run the official HEAR validator (hearvalidator 2021.0.6) without installing tensorflow.

    python -m gramlib.eval.validate gramlib.model.hear -m models/gram-binaural -d cpu     # prints "Looks good!"

hearvalidator imports tensorflow unconditionally but only uses it to recognise TF models; a stand-in
module (with the attributes torch and einops probe for) is enough for a torch model. If tensorflow
is installed it is used as is.
"""
from __future__ import annotations

import importlib.machinery
import sys
import types


def install_tensorflow_stand_in() -> None:
    try:
        import tensorflow  # noqa: F401
        return
    except ImportError:
        pass
    tf = types.ModuleType("tensorflow")
    tf.__spec__ = importlib.machinery.ModuleSpec("tensorflow", None)  # torch._dynamo calls find_spec on it
    for name in ("Module", "Tensor", "Variable"):  # nothing a torch model is an instance of
        setattr(tf, name, type(name, (), {}))
    sys.modules["tensorflow"] = tf


def main(argv: list[str] | None = None) -> None:
    install_tensorflow_stand_in()
    from hearvalidator.validate import main as validate  # the validator (and its TensorFlow stand-in) only when run

    sys.argv = ["hear-validator", *(sys.argv[1:] if argv is None else argv)]
    validate()


if __name__ == "__main__":
    main()
