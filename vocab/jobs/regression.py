"""The population-regression job kind: the spec of a DP regression of a bounded target.

Two families share one payload (`silobridge.v1.RegressionPayload`):

* linear: each node releases its noisy sufficient statistics once (`regression_plan`);
* poisson: a log-link model trained with DP-SGD over rounds, like the risk kind, then
  (unless `refine_share` is 0) refined by one Newton step from a noisy release of each
  node's score and Fisher information, which also gives standard errors.

Both encode a row the same way, from declared bounds and levels only: a numeric feature is
clipped to its bounds and scaled to [-1, 1]; a categorical feature becomes one 0/1 input
per declared level except the first, which is the reference category (the intercept
stands for it, and a full one-hot block would be collinear with the intercept). A
coefficient of a level is its difference from the reference level.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Any, ClassVar

from vocab.errors import JobSpecError
from vocab.jobspec import MAX_LEARNING_RATE, FeatureSpec, parse_features
from vocab.spec import (
    ENVELOPE_KEYS,
    JobEnvelope,
    check_positive_float,
    check_positive_int,
    job_table,
)

__all__ = [
    "DEFAULT_REFINE_SHARE",
    "INTERCEPT",
    "MAX_COEFFICIENTS",
    "MAX_ROWS_PER_PERSON",
    "Family",
    "RegressionSpec",
    "parse_regression_spec",
]

INTERCEPT = "intercept"
"""The name of the first coefficient."""

MAX_COEFFICIENTS = 128
"""Most coefficients (intercept included) a regression may have.

A linear job releases about d^2 / 2 noisy sums at sensitivity of order d, so its noise
grows quickly with d; beyond this the estimates are noise at any realistic epsilon.
"""

MAX_ROWS_PER_PERSON = 1000
"""Largest `max_rows` (rows one person may contribute); the noise grows linearly with it."""

DEFAULT_REFINE_SHARE = 0.5
"""Share of a poisson job's epsilon planned for its refinement release.

The refinement decides the final estimate (a Newton step from the DP-SGD fit corrects its
errors to second order), so it gets half; DP-SGD only has to land near the optimum.
Measured in `bench.population`."""

MAX_TARGET_MAGNITUDE = 1e12
"""Largest magnitude of a declared target bound: beyond it float64 sums lose the units."""


class Family(enum.Enum):
    """Regression families: how the target depends on the linear predictor."""

    LINEAR = "linear"
    """Identity link, squared error; solved from noisy sufficient statistics."""
    POISSON = "poisson"
    """Log link, Poisson likelihood (counts or rates); trained with DP-SGD."""


@dataclass(frozen=True, kw_only=True)
class RegressionSpec(JobEnvelope):
    """A population regression of `target` on `features`; fields mirror `RegressionPayload`.

    `max_rows` is how many rows one person may contribute at a node that declares a person
    id (a node without one counts a row as a person). The DP-SGD fields (`rounds` to
    `max_grad_norm`), `exposure` and `refine_share` matter to the poisson family only.
    `refine_share` is the share of epsilon planned for the final refinement release (0: no
    refinement, coefficients straight from DP-SGD and no standard errors).
    """

    KIND: ClassVar[str] = "regression"

    family: Family = Family.LINEAR
    target: str
    target_lower: float
    target_upper: float
    features: tuple[FeatureSpec, ...]
    max_rows: int = 1
    rounds: int = 3
    local_epochs: int = 2
    batch_size: int = 256
    learning_rate: float = 0.5
    max_grad_norm: float = 1.0
    exposure: str = ""
    refine_share: float = DEFAULT_REFINE_SHARE

    def validate_payload(self) -> None:
        _validate(self)

    @property
    def refines(self) -> bool:
        """Whether a poisson job ends with the refinement release (round `rounds + 1`)."""
        return self.family is Family.POISSON and self.refine_share > 0

    @property
    def message_rounds(self) -> int:
        if self.family is Family.LINEAR:
            return 1
        return self.rounds + 1 if self.refines else self.rounds

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column the job reads at a node: features, target, then exposure if any."""
        exposure = (self.exposure,) if self.exposure else ()
        return (*(f.column for f in self.features), self.target, *exposure)

    @property
    def n_inputs(self) -> int:
        """Model inputs besides the intercept: one per numeric feature, levels - 1 per
        categorical one."""
        return sum(_inputs(f) for f in self.features)

    @property
    def n_coefficients(self) -> int:
        """Coefficients including the intercept: the columns of the design matrix."""
        return self.n_inputs + 1

    @property
    def coefficient_names(self) -> tuple[str, ...]:
        """`intercept`, then `column` per numeric feature (`log1p(column)` when logged) and
        `column=level` per non-reference level, in spec order."""
        names = [INTERCEPT]
        for f in self.features:
            if f.is_categorical:
                names.extend(f"{f.column}={level}" for level in f.categories[1:])
            else:
                names.append(f"log1p({f.column})" if f.log else f.column)
        return tuple(names)


def _inputs(feature: FeatureSpec) -> int:
    return len(feature.categories) - 1 if feature.is_categorical else 1


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float)


def _check_column(value: Any, key: str) -> None:
    if not isinstance(value, str) or not value or len(value) > 128:
        raise JobSpecError(
            f"job `{key}` must name a column (a non-empty string), got {value!r}",
            f"set `{key}` in [job]",
        )


def _validate_feature(feature: Any) -> None:
    if not isinstance(feature, FeatureSpec):
        raise JobSpecError(f"a feature must be a FeatureSpec, got {type(feature).__name__}")
    _check_column(feature.column, "features")
    where = f"feature `{feature.column}`"
    if not isinstance(feature.categories, tuple) or not all(
        isinstance(c, str) for c in feature.categories
    ):
        raise JobSpecError(f"{where}: `categories` must be strings")
    if feature.is_categorical:
        if len(set(feature.categories)) != len(feature.categories):
            raise JobSpecError(f"{where} lists a category twice", "make `categories` unique")
        if len(feature.categories) < 2:
            raise JobSpecError(
                f"{where} has one category: the first level is the reference, so a "
                "single level adds nothing",
                "list at least two levels (the first is the reference) or drop the feature",
            )
        return
    lo, hi = feature.lower, feature.upper
    if not (_is_number(lo) and _is_number(hi) and math.isfinite(lo) and math.isfinite(hi)):
        raise JobSpecError(
            f"{where} needs finite numeric bounds, got [{lo!r}, {hi!r}]",
            "declare public bounds `lower`/`upper` (or `categories` for a categorical column)",
        )
    if not lo < hi:
        raise JobSpecError(
            f"{where} needs lower < upper, got [{lo}, {hi}]",
            "declare public bounds `lower`/`upper` (or `categories` for a categorical column)",
        )
    if not isinstance(feature.log, bool):
        raise JobSpecError(f"{where}: `log` must be true or false, got {feature.log!r}")
    if feature.log and lo < 0:
        raise JobSpecError(f"{where} uses log but lower < 0", "set lower >= 0 or drop `log`")


def _validate_target(spec: RegressionSpec) -> None:
    _check_column(spec.target, "target")
    lo, hi = spec.target_lower, spec.target_upper
    for key, value in (("target_lower", lo), ("target_upper", hi)):
        if not (_is_number(value) and math.isfinite(value)) or abs(value) > MAX_TARGET_MAGNITUDE:
            raise JobSpecError(
                f"job `{key}` must be a finite number of magnitude at most "
                f"{MAX_TARGET_MAGNITUDE:g}, got {value!r}",
                "declare the target's public bounds `target_lower` < `target_upper` in [job]",
            )
    if not lo < hi:
        raise JobSpecError(
            f"job `target_lower` ({lo}) must be below `target_upper` ({hi})",
            "declare the target's public bounds; values outside are clipped to them",
        )
    if spec.family is Family.POISSON and lo < 0:
        raise JobSpecError(
            f"job `target_lower` is {lo} but a poisson target is a count or rate",
            "set `target_lower` >= 0",
        )


def _validate_columns(spec: RegressionSpec) -> None:
    if not isinstance(spec.features, tuple) or not spec.features:
        raise JobSpecError("job has no features", "add at least one [features.<column>] table")
    for feature in spec.features:
        _validate_feature(feature)
    if not isinstance(spec.exposure, str) or len(spec.exposure) > 128:
        raise JobSpecError(f"job `exposure` must be a column name, got {spec.exposure!r}")
    if spec.exposure and spec.family is not Family.POISSON:
        raise JobSpecError(
            "job `exposure` is set but only a poisson regression uses an exposure",
            'set family = "poisson" or drop `exposure`',
        )
    seen: set[str] = set()
    for column in spec.columns:
        if column in seen:
            raise JobSpecError(
                f"column `{column}` is used twice (as target, exposure or feature)",
                "use each column once",
            )
        seen.add(column)
    if spec.n_coefficients > MAX_COEFFICIENTS:
        raise JobSpecError(
            f"job has {spec.n_coefficients} coefficients, above {MAX_COEFFICIENTS}",
            "use fewer features or fewer categorical levels",
        )


def _validate(spec: RegressionSpec) -> None:
    if not isinstance(spec.family, Family):
        raise JobSpecError(
            f"job `family` must be one of {[f.value for f in Family]}, got {spec.family!r}"
        )
    if spec.delta <= 0:
        raise JobSpecError(
            "job `delta` must be > 0: a regression's Gaussian noise gives (epsilon, delta)-DP",
            "use a delta well below 1/rows, e.g. 1e-5",
        )
    _validate_target(spec)
    _validate_columns(spec)
    check_positive_int(spec.max_rows, "max_rows", MAX_ROWS_PER_PERSON)
    for name, upper in (("rounds", 1000), ("local_epochs", 1000), ("batch_size", 1_000_000)):
        check_positive_int(getattr(spec, name), name, upper)
    for name in ("learning_rate", "max_grad_norm"):
        check_positive_float(getattr(spec, name), name)
    share = spec.refine_share
    if not (_is_number(share) and 0.0 <= share < 1.0):
        raise JobSpecError(
            f"job `refine_share` must be a number in [0, 1), got {share!r}",
            "set the share of epsilon for the poisson refinement, e.g. 0.5; 0 turns it off",
        )
    if spec.learning_rate > MAX_LEARNING_RATE:
        raise JobSpecError(
            f"job `learning_rate` is {spec.learning_rate!r}, above {MAX_LEARNING_RATE:g}",
            f"set `learning_rate` to at most {MAX_LEARNING_RATE:g}: larger steps only diverge",
        )


_PAYLOAD_KEYS = frozenset(
    {"family", "target", "target_lower", "target_upper", "max_rows", "rounds", "local_epochs",
     "batch_size", "learning_rate", "max_grad_norm", "exposure", "refine_share"}
)  # fmt: skip
_JOB_KEYS = ENVELOPE_KEYS | _PAYLOAD_KEYS
_FEATURE_KEYS = frozenset({"lower", "upper", "log", "categories"})
_FLOAT_KEYS = ("target_lower", "target_upper", "learning_rate", "max_grad_norm", "refine_share")


def _family(raw: Any) -> Family:
    try:
        return Family(raw)
    except ValueError:
        allowed = ", ".join(repr(f.value) for f in Family)
        raise JobSpecError(f"job `family` = {raw!r} is not one of {allowed}") from None


def parse_regression_spec(doc: dict[str, Any], *, source: str = "job spec") -> RegressionSpec:
    """Build a validated `RegressionSpec` from a parsed TOML document.

    The document has a `[job]` table (envelope keys, `kind = "regression"` and the payload
    keys) and one `[features.<column>]` table per feature, in design-matrix order.

    Raises:
        JobSpecError: naming the bad key and how to fix it.
    """
    job = job_table(
        doc, source=source, kind=RegressionSpec.KIND, tables=("job", "features"),
        keys=_JOB_KEYS, required=("name", "target"),
    )  # fmt: skip
    for key in ("target_lower", "target_upper"):
        if key not in job:
            raise JobSpecError(
                f"{source}: [job] needs `{key}`",
                "declare the target's public bounds; values outside are clipped to them",
            )
    kwargs: dict[str, Any] = {k: v for k, v in job.items() if k != "kind"}
    if "family" in kwargs:
        kwargs["family"] = _family(kwargs["family"])
    for key in _FLOAT_KEYS:
        if key in kwargs:
            if not _is_number(kwargs[key]):
                raise JobSpecError(
                    f"{source}: job `{key}` must be a number, got {kwargs[key]!r}",
                    f"set `{key}` in [job]",
                )
            kwargs[key] = float(kwargs[key])
    kwargs["features"] = parse_features(doc, source)
    try:
        return RegressionSpec(**kwargs)
    except TypeError as err:
        raise JobSpecError(f"{source}: {err}") from err
