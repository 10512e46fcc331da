"""Shared points for the fit tests: Hoffmann et al. 2022's published law, with log-normal noise."""

import pytest

from scaling.fit.bench import hoffmann_points


@pytest.fixture(scope="session")
def points_sigma_0001():
  """The fitter's first check: 250 points, N in 1e7-1e10, D in 1e8-1e12, σ = 0.001."""
  return hoffmann_points(250, 0.001, seed=0)


@pytest.fixture(scope="session")
def points_sigma_001():
  return hoffmann_points(250, 0.01, seed=0)
