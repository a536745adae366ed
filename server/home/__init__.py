"""The coordinator home: its folder and variable, signed audit log and registered node keys."""

__all__: list[str] = []
