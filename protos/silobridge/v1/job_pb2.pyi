from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ModelKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODEL_KIND_UNSPECIFIED: _ClassVar[ModelKind]
    MODEL_KIND_LOGISTIC: _ClassVar[ModelKind]
    MODEL_KIND_MLP: _ClassVar[ModelKind]

class EvaluationMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVALUATION_MODE_UNSPECIFIED: _ClassVar[EvaluationMode]
    EVALUATION_MODE_FINAL: _ClassVar[EvaluationMode]
    EVALUATION_MODE_ROUNDS: _ClassVar[EvaluationMode]
    EVALUATION_MODE_OFF: _ClassVar[EvaluationMode]

class Aggregator(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AGGREGATOR_UNSPECIFIED: _ClassVar[Aggregator]
    AGGREGATOR_FEDAVG: _ClassVar[Aggregator]
    AGGREGATOR_FEDADAM: _ClassVar[Aggregator]

class Measure(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MEASURE_UNSPECIFIED: _ClassVar[Measure]
    MEASURE_COUNT: _ClassVar[Measure]
    MEASURE_SUM: _ClassVar[Measure]
    MEASURE_MEAN: _ClassVar[Measure]
    MEASURE_VARIANCE: _ClassVar[Measure]
    MEASURE_HISTOGRAM: _ClassVar[Measure]
    MEASURE_QUANTILE: _ClassVar[Measure]

class NoiseKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NOISE_KIND_UNSPECIFIED: _ClassVar[NoiseKind]
    NOISE_KIND_GAUSSIAN: _ClassVar[NoiseKind]
    NOISE_KIND_LAPLACE: _ClassVar[NoiseKind]

class RegressionFamily(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REGRESSION_FAMILY_UNSPECIFIED: _ClassVar[RegressionFamily]
    REGRESSION_FAMILY_LINEAR: _ClassVar[RegressionFamily]
    REGRESSION_FAMILY_POISSON: _ClassVar[RegressionFamily]
MODEL_KIND_UNSPECIFIED: ModelKind
MODEL_KIND_LOGISTIC: ModelKind
MODEL_KIND_MLP: ModelKind
EVALUATION_MODE_UNSPECIFIED: EvaluationMode
EVALUATION_MODE_FINAL: EvaluationMode
EVALUATION_MODE_ROUNDS: EvaluationMode
EVALUATION_MODE_OFF: EvaluationMode
AGGREGATOR_UNSPECIFIED: Aggregator
AGGREGATOR_FEDAVG: Aggregator
AGGREGATOR_FEDADAM: Aggregator
MEASURE_UNSPECIFIED: Measure
MEASURE_COUNT: Measure
MEASURE_SUM: Measure
MEASURE_MEAN: Measure
MEASURE_VARIANCE: Measure
MEASURE_HISTOGRAM: Measure
MEASURE_QUANTILE: Measure
NOISE_KIND_UNSPECIFIED: NoiseKind
NOISE_KIND_GAUSSIAN: NoiseKind
NOISE_KIND_LAPLACE: NoiseKind
REGRESSION_FAMILY_UNSPECIFIED: RegressionFamily
REGRESSION_FAMILY_LINEAR: RegressionFamily
REGRESSION_FAMILY_POISSON: RegressionFamily

class FeatureSpec(_message.Message):
    __slots__ = ("column", "lower", "upper", "log", "categories")
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    LOWER_FIELD_NUMBER: _ClassVar[int]
    UPPER_FIELD_NUMBER: _ClassVar[int]
    LOG_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    column: str
    lower: float
    upper: float
    log: bool
    categories: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, column: _Optional[str] = ..., lower: _Optional[float] = ..., upper: _Optional[float] = ..., log: _Optional[bool] = ..., categories: _Optional[_Iterable[str]] = ...) -> None: ...

class RiskJobSpec(_message.Message):
    __slots__ = ("name", "purpose", "target", "positive", "model", "hidden", "features", "rounds", "local_epochs", "batch_size", "learning_rate", "max_grad_norm", "epsilon", "delta", "min_nodes", "aggregator", "server_learning_rate", "seed", "round_timeout_s", "node_wait_s", "analyst", "project", "evaluation", "evaluation_share", "evaluation_thresholds")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    POSITIVE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    HIDDEN_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    ROUNDS_FIELD_NUMBER: _ClassVar[int]
    LOCAL_EPOCHS_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    MAX_GRAD_NORM_FIELD_NUMBER: _ClassVar[int]
    EPSILON_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    MIN_NODES_FIELD_NUMBER: _ClassVar[int]
    AGGREGATOR_FIELD_NUMBER: _ClassVar[int]
    SERVER_LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    ROUND_TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    NODE_WAIT_S_FIELD_NUMBER: _ClassVar[int]
    ANALYST_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    EVALUATION_FIELD_NUMBER: _ClassVar[int]
    EVALUATION_SHARE_FIELD_NUMBER: _ClassVar[int]
    EVALUATION_THRESHOLDS_FIELD_NUMBER: _ClassVar[int]
    name: str
    purpose: str
    target: str
    positive: str
    model: ModelKind
    hidden: int
    features: _containers.RepeatedCompositeFieldContainer[FeatureSpec]
    rounds: int
    local_epochs: int
    batch_size: int
    learning_rate: float
    max_grad_norm: float
    epsilon: float
    delta: float
    min_nodes: int
    aggregator: Aggregator
    server_learning_rate: float
    seed: int
    round_timeout_s: float
    node_wait_s: float
    analyst: str
    project: str
    evaluation: EvaluationMode
    evaluation_share: float
    evaluation_thresholds: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, name: _Optional[str] = ..., purpose: _Optional[str] = ..., target: _Optional[str] = ..., positive: _Optional[str] = ..., model: _Optional[_Union[ModelKind, str]] = ..., hidden: _Optional[int] = ..., features: _Optional[_Iterable[_Union[FeatureSpec, _Mapping]]] = ..., rounds: _Optional[int] = ..., local_epochs: _Optional[int] = ..., batch_size: _Optional[int] = ..., learning_rate: _Optional[float] = ..., max_grad_norm: _Optional[float] = ..., epsilon: _Optional[float] = ..., delta: _Optional[float] = ..., min_nodes: _Optional[int] = ..., aggregator: _Optional[_Union[Aggregator, str]] = ..., server_learning_rate: _Optional[float] = ..., seed: _Optional[int] = ..., round_timeout_s: _Optional[float] = ..., node_wait_s: _Optional[float] = ..., analyst: _Optional[str] = ..., project: _Optional[str] = ..., evaluation: _Optional[_Union[EvaluationMode, str]] = ..., evaluation_share: _Optional[float] = ..., evaluation_thresholds: _Optional[_Iterable[float]] = ...) -> None: ...

class JobSpec(_message.Message):
    __slots__ = ("name", "purpose", "analyst", "project", "epsilon", "delta", "min_nodes", "seed", "round_timeout_s", "node_wait_s", "dataset", "risk", "statistics", "regression")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    ANALYST_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    EPSILON_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    MIN_NODES_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    ROUND_TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    NODE_WAIT_S_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    RISK_FIELD_NUMBER: _ClassVar[int]
    STATISTICS_FIELD_NUMBER: _ClassVar[int]
    REGRESSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    purpose: str
    analyst: str
    project: str
    epsilon: float
    delta: float
    min_nodes: int
    seed: int
    round_timeout_s: float
    node_wait_s: float
    dataset: str
    risk: RiskPayload
    statistics: StatisticsPayload
    regression: RegressionPayload
    def __init__(self, name: _Optional[str] = ..., purpose: _Optional[str] = ..., analyst: _Optional[str] = ..., project: _Optional[str] = ..., epsilon: _Optional[float] = ..., delta: _Optional[float] = ..., min_nodes: _Optional[int] = ..., seed: _Optional[int] = ..., round_timeout_s: _Optional[float] = ..., node_wait_s: _Optional[float] = ..., dataset: _Optional[str] = ..., risk: _Optional[_Union[RiskPayload, _Mapping]] = ..., statistics: _Optional[_Union[StatisticsPayload, _Mapping]] = ..., regression: _Optional[_Union[RegressionPayload, _Mapping]] = ...) -> None: ...

class RiskPayload(_message.Message):
    __slots__ = ("target", "positive", "model", "hidden", "features", "rounds", "local_epochs", "batch_size", "learning_rate", "max_grad_norm", "aggregator", "server_learning_rate", "evaluation", "evaluation_share", "evaluation_thresholds")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    POSITIVE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    HIDDEN_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    ROUNDS_FIELD_NUMBER: _ClassVar[int]
    LOCAL_EPOCHS_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    MAX_GRAD_NORM_FIELD_NUMBER: _ClassVar[int]
    AGGREGATOR_FIELD_NUMBER: _ClassVar[int]
    SERVER_LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    EVALUATION_FIELD_NUMBER: _ClassVar[int]
    EVALUATION_SHARE_FIELD_NUMBER: _ClassVar[int]
    EVALUATION_THRESHOLDS_FIELD_NUMBER: _ClassVar[int]
    target: str
    positive: str
    model: ModelKind
    hidden: int
    features: _containers.RepeatedCompositeFieldContainer[FeatureSpec]
    rounds: int
    local_epochs: int
    batch_size: int
    learning_rate: float
    max_grad_norm: float
    aggregator: Aggregator
    server_learning_rate: float
    evaluation: EvaluationMode
    evaluation_share: float
    evaluation_thresholds: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, target: _Optional[str] = ..., positive: _Optional[str] = ..., model: _Optional[_Union[ModelKind, str]] = ..., hidden: _Optional[int] = ..., features: _Optional[_Iterable[_Union[FeatureSpec, _Mapping]]] = ..., rounds: _Optional[int] = ..., local_epochs: _Optional[int] = ..., batch_size: _Optional[int] = ..., learning_rate: _Optional[float] = ..., max_grad_norm: _Optional[float] = ..., aggregator: _Optional[_Union[Aggregator, str]] = ..., server_learning_rate: _Optional[float] = ..., evaluation: _Optional[_Union[EvaluationMode, str]] = ..., evaluation_share: _Optional[float] = ..., evaluation_thresholds: _Optional[_Iterable[float]] = ...) -> None: ...

class StatisticSpec(_message.Message):
    __slots__ = ("measure", "column", "lower", "upper", "edges", "quantiles", "bins")
    MEASURE_FIELD_NUMBER: _ClassVar[int]
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    LOWER_FIELD_NUMBER: _ClassVar[int]
    UPPER_FIELD_NUMBER: _ClassVar[int]
    EDGES_FIELD_NUMBER: _ClassVar[int]
    QUANTILES_FIELD_NUMBER: _ClassVar[int]
    BINS_FIELD_NUMBER: _ClassVar[int]
    measure: Measure
    column: str
    lower: float
    upper: float
    edges: _containers.RepeatedScalarFieldContainer[float]
    quantiles: _containers.RepeatedScalarFieldContainer[float]
    bins: int
    def __init__(self, measure: _Optional[_Union[Measure, str]] = ..., column: _Optional[str] = ..., lower: _Optional[float] = ..., upper: _Optional[float] = ..., edges: _Optional[_Iterable[float]] = ..., quantiles: _Optional[_Iterable[float]] = ..., bins: _Optional[int] = ...) -> None: ...

class GroupingSpec(_message.Message):
    __slots__ = ("column", "keys", "edges", "private")
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    EDGES_FIELD_NUMBER: _ClassVar[int]
    PRIVATE_FIELD_NUMBER: _ClassVar[int]
    column: str
    keys: _containers.RepeatedScalarFieldContainer[str]
    edges: _containers.RepeatedScalarFieldContainer[float]
    private: bool
    def __init__(self, column: _Optional[str] = ..., keys: _Optional[_Iterable[str]] = ..., edges: _Optional[_Iterable[float]] = ..., private: _Optional[bool] = ...) -> None: ...

class RowFilterSpec(_message.Message):
    __slots__ = ("column", "values", "lower", "upper")
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    LOWER_FIELD_NUMBER: _ClassVar[int]
    UPPER_FIELD_NUMBER: _ClassVar[int]
    column: str
    values: _containers.RepeatedScalarFieldContainer[str]
    lower: float
    upper: float
    def __init__(self, column: _Optional[str] = ..., values: _Optional[_Iterable[str]] = ..., lower: _Optional[float] = ..., upper: _Optional[float] = ...) -> None: ...

class StatisticsPayload(_message.Message):
    __slots__ = ("statistics", "group_by", "filters", "max_rows", "max_groups", "noise", "threshold", "max_partitions", "selection_share")
    STATISTICS_FIELD_NUMBER: _ClassVar[int]
    GROUP_BY_FIELD_NUMBER: _ClassVar[int]
    FILTERS_FIELD_NUMBER: _ClassVar[int]
    MAX_ROWS_FIELD_NUMBER: _ClassVar[int]
    MAX_GROUPS_FIELD_NUMBER: _ClassVar[int]
    NOISE_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    MAX_PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    SELECTION_SHARE_FIELD_NUMBER: _ClassVar[int]
    statistics: _containers.RepeatedCompositeFieldContainer[StatisticSpec]
    group_by: _containers.RepeatedCompositeFieldContainer[GroupingSpec]
    filters: _containers.RepeatedCompositeFieldContainer[RowFilterSpec]
    max_rows: int
    max_groups: int
    noise: NoiseKind
    threshold: float
    max_partitions: int
    selection_share: float
    def __init__(self, statistics: _Optional[_Iterable[_Union[StatisticSpec, _Mapping]]] = ..., group_by: _Optional[_Iterable[_Union[GroupingSpec, _Mapping]]] = ..., filters: _Optional[_Iterable[_Union[RowFilterSpec, _Mapping]]] = ..., max_rows: _Optional[int] = ..., max_groups: _Optional[int] = ..., noise: _Optional[_Union[NoiseKind, str]] = ..., threshold: _Optional[float] = ..., max_partitions: _Optional[int] = ..., selection_share: _Optional[float] = ...) -> None: ...

class RegressionPayload(_message.Message):
    __slots__ = ("family", "target", "target_lower", "target_upper", "features", "max_rows", "rounds", "local_epochs", "batch_size", "learning_rate", "max_grad_norm", "exposure", "refine_share")
    FAMILY_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    TARGET_LOWER_FIELD_NUMBER: _ClassVar[int]
    TARGET_UPPER_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    MAX_ROWS_FIELD_NUMBER: _ClassVar[int]
    ROUNDS_FIELD_NUMBER: _ClassVar[int]
    LOCAL_EPOCHS_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    MAX_GRAD_NORM_FIELD_NUMBER: _ClassVar[int]
    EXPOSURE_FIELD_NUMBER: _ClassVar[int]
    REFINE_SHARE_FIELD_NUMBER: _ClassVar[int]
    family: RegressionFamily
    target: str
    target_lower: float
    target_upper: float
    features: _containers.RepeatedCompositeFieldContainer[FeatureSpec]
    max_rows: int
    rounds: int
    local_epochs: int
    batch_size: int
    learning_rate: float
    max_grad_norm: float
    exposure: str
    refine_share: float
    def __init__(self, family: _Optional[_Union[RegressionFamily, str]] = ..., target: _Optional[str] = ..., target_lower: _Optional[float] = ..., target_upper: _Optional[float] = ..., features: _Optional[_Iterable[_Union[FeatureSpec, _Mapping]]] = ..., max_rows: _Optional[int] = ..., rounds: _Optional[int] = ..., local_epochs: _Optional[int] = ..., batch_size: _Optional[int] = ..., learning_rate: _Optional[float] = ..., max_grad_norm: _Optional[float] = ..., exposure: _Optional[str] = ..., refine_share: _Optional[float] = ...) -> None: ...
