"""Ahead-of-time compilation of the train step for a TPU slice: `scaling compile`."""
