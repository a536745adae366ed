"""Job kinds at the node: each kind plans its releases and executes them (one folder each)."""
