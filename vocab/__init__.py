"""Shared vocabulary of silobridge: job specs, models, privacy values and accounting math."""
