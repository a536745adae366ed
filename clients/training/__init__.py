"""DP-SGD shared by the kinds that train (risk, Poisson regression): the engine and its sizing."""

__all__: list[str] = []
