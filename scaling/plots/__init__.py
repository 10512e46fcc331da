"""Figures of scaling-law sweeps (matplotlib, PNG and PDF), each a function returning its paths.

- `training_curves(path, out_dir)`: loss against FLOPs per run, coloured by size, with the
  compute-efficient frontier (Chinchilla Fig. 2, Kaplan Fig. 1 left).
- `isoflop(sweep_dir, out_dir, fit_report)`: IsoFLOP profiles, N_opt(C) and D_opt(C) with their
  power laws (Chinchilla Fig. 3); `isoflop_figure(...)` draws it from arrays of any source.
- `parametric_contours(sweep_dir, out_dir, fit_report)`: the parametric fit's loss over (C, N) with
  the efficient frontier (Chinchilla Fig. 4).
- `model_size(sweep_dir, out_dir, fit_report)`: L(N) at fixed tokens (Kaplan Fig. 1 right).
- `hparams.hparams(sweep_dir, out_dir, fit_report)`: loss against LR per point and the LR laws
  of an hparams sweep (docs/fit.md "Hyperparameter laws").
- `draw(path, out_dir, fit_reports)`: every figure a directory supports (what `scaling plot` runs).
"""

from scaling.plots.figures import draw, supported
from scaling.plots.curves import training_curves
from scaling.plots.isoflop import isoflop, isoflop_figure
from scaling.plots.model_size import model_size
from scaling.plots.parametric import parametric_contours

__all__ = ["draw", "supported", "training_curves", "isoflop", "isoflop_figure", "model_size",
           "parametric_contours"]
