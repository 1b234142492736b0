"""Where every stage reads and writes, relative to the project root (the folder of params.yaml).

``data/`` and ``models/`` are DVC-cached and git-ignored; ``results/`` and ``figures/`` are small,
committed, and declared with ``cache: false``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .config import find_params


@dataclass(frozen=True)
class Paths:
    root: Path

    @classmethod
    def here(cls, start: Path | str | None = None) -> "Paths":
        return cls(find_params(start).parent)

    # data/ (DVC-cached)
    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def sources(self) -> Path:  # pretrain/, noise/{train,test}/
        return self.data / "sources"

    @property
    def tasks(self) -> Path:  # the dry HEAR-format task suite
        return self.data / "tasks"

    @property
    def rooms(self) -> Path:  # rooms/{train,test}/ RIR banks
        return self.data / "rooms"

    @property
    def nathear(self) -> Path:  # nathear/{binaural,foa}/<task>/
        return self.data / "nathear"

    @property
    def seld_data(self) -> Path:
        return self.data / "seld"

    # models/ (DVC-cached)
    def model(self, variant: str) -> Path:
        return self.root / "models" / variant

    # results/ and figures/ (committed)
    @property
    def results(self) -> Path:
        return self.root / "results"

    def eval_json(self, name: str) -> Path:
        return self.results / "eval" / f"{name}.json"

    @property
    def tables(self) -> Path:
        return self.results / "tables"

    @property
    def figures(self) -> Path:
        return self.root / "figures"
