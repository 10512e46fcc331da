"""The hparams figure: drawn for an LR grid (with a fit report too), the loss figures skipped."""

import importlib.util
import json
import pathlib
import sys

import pytest

from scaling.errors import InputError
from scaling.fit import cli as fit_cli
from scaling.plots import figures

FIT_TESTS = pathlib.Path(__file__).resolve().parents[1] / "fit"
sys.path.insert(0, str(FIT_TESTS))
from fit_synthetic import write_csv  # noqa: E402

# tests/fit/test_hparams.py's synthetic sweeps, under another name than this module's
_spec = importlib.util.spec_from_file_location("fit_test_hparams", FIT_TESTS / "test_hparams.py")
fit_tests = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fit_tests)
sweep = fit_tests.sweep


def test_hparams_figure_with_and_without_a_report(tmp_path):
  path = write_csv(tmp_path / "hp.csv", sweep(edge=(3e4, 4e6)))
  drawn, skipped = figures.draw(path, str(tmp_path / "figs"))
  assert [p.rsplit("/", 1)[1] for p in drawn["hparams"]] == ["hparams.png", "hparams.pdf"]
  assert all((tmp_path / "figs" / name).stat().st_size > 10_000 for name in ("hparams.png",))
  for figure in ("isoflop", "parametric_contours", "model_size"):
    assert skipped[figure].startswith("an hparams sweep")
  report = tmp_path / "fit.json"
  assert fit_cli.main(["--approach", "hparams", "--data", path, "--bootstrap", "200",
                       "--out", str(report)]) == 0
  drawn, _ = figures.draw(path, str(tmp_path / "with_fit"), [str(report)])
  assert "hparams" in drawn


def test_a_sweep_without_an_lr_grid_has_no_hparams_figure(tmp_path):
  rows = sweep(multipliers=(1.0,))
  path = write_csv(tmp_path / "one.csv", rows)
  reasons = figures.supported(path)
  assert "not an hparams sweep" in reasons["hparams"]
  report = tmp_path / "fit.json"
  report.write_text(json.dumps({"approach": "hparams", "laws": {}, "points": []}))
  with pytest.raises(InputError, match="does not support it"):
    figures.draw(path, str(tmp_path / "figs"), [str(report)])
