"""Coordinator side: the Flower ServerApp that runs jobs, aggregates and writes results."""
