"""Any HEAR 2021 module, as the evaluator calls it.

A HEAR module is an importable Python module with ``load_model(model_file_path)``,
``get_scene_embeddings(audio, model)`` and ``get_timestamp_embeddings(audio, model)``; the model it
returns has ``sample_rate``, ``scene_embedding_size`` and ``timestamp_embedding_size``. Two optional
extensions are used when present: ``get_cls_embeddings(audio, model)`` (the CLS token, which GRAM's
localization and T60 probes read) and the model's ``audio_channels`` (absent: a mono model, given
``(n, samples)`` as the HEAR API specifies; otherwise ``(n, audio_channels, samples)``).

    model = HearModel.load("gramlib.model.hear", "models/gram-binaural")
    model = HearModel.load("my_package.my_module", "weights.pt")
    evaluation.evaluate_model("mine", model, suites, cfg, seed=0)

GRAM checkpoints (:mod:`gramlib.model.hear`) and the baselines (:mod:`gramlib.eval.baselines`) are such
modules; nothing in the evaluator knows which one it runs.
"""
from __future__ import annotations

import importlib
from types import ModuleType

import torch

REQUIRED_FUNCTIONS = ("load_model", "get_scene_embeddings", "get_timestamp_embeddings")
REQUIRED_ATTRIBUTES = ("sample_rate", "scene_embedding_size", "timestamp_embedding_size")


class HearModuleError(ValueError):
    """A module or model that does not follow the HEAR 2021 API."""


class HearModel:
    """A HEAR module and the model its ``load_model`` returned."""

    def __init__(self, module: ModuleType, model, name: str | None = None):
        self.name = name or getattr(module, "__name__", "module")
        missing = [f for f in REQUIRED_FUNCTIONS if not callable(getattr(module, f, None))]
        if missing:
            raise HearModuleError(f"{self.name} is not a HEAR 2021 module: it has no {', '.join(missing)}")
        missing = [a for a in REQUIRED_ATTRIBUTES if not hasattr(model, a)]
        if missing:
            raise HearModuleError(f"the model {self.name}.load_model returned has no {', '.join(missing)} "
                                  f"(a HEAR 2021 model declares {', '.join(REQUIRED_ATTRIBUTES)})")
        self.module, self.model = module, model
        self.sample_rate = int(model.sample_rate)
        self.audio_channels = int(getattr(model, "audio_channels", 1))
        if self.sample_rate <= 0 or self.audio_channels <= 0:
            raise HearModuleError(f"{self.name}: sample_rate {model.sample_rate} and audio_channels "
                                  f"{self.audio_channels} must be positive")
        self.has_cls = callable(getattr(module, "get_cls_embeddings", None))

    @classmethod
    def load(cls, module: str | ModuleType, model_file_path: str | None = None) -> "HearModel":
        """Import ``module`` (a name or a module) and call its ``load_model`` (with the path, if given)."""
        if isinstance(module, str):
            try:
                module = importlib.import_module(module)
            except ImportError as err:
                raise HearModuleError(f"cannot import the HEAR module {module!r}: {err}") from err
        if not callable(getattr(module, "load_model", None)):
            raise HearModuleError(f"{module.__name__} is not a HEAR 2021 module: it has no load_model")
        model = module.load_model(model_file_path) if model_file_path else module.load_model()
        return cls(module, model)

    def _input(self, audio: torch.Tensor) -> torch.Tensor:
        """(n, C, S) task audio, already adapted to ``audio_channels``; a mono model gets (n, S)."""
        return audio[:, 0] if audio.ndim == 3 and self.audio_channels == 1 else audio

    def scene_embeddings(self, audio: torch.Tensor) -> torch.Tensor:
        return self.module.get_scene_embeddings(self._input(audio), self.model)

    def timestamp_embeddings(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.module.get_timestamp_embeddings(self._input(audio), self.model)

    def cls_embeddings(self, audio: torch.Tensor) -> torch.Tensor:
        if not self.has_cls:
            raise HearModuleError(f"{self.name} has no get_cls_embeddings")
        return self.module.get_cls_embeddings(self._input(audio), self.model)
