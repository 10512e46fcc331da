"""Sampling text from a trained run: `scaling generate`."""
