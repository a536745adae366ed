"""Job kinds at the coordinator: each kind drives its rounds, combines replies, renders results."""
