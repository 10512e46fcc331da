"""`scaling plot DIR [--out OUTDIR] [--fit REPORT.json ...]`: every figure a directory supports.

  scaling plot runs/isoflop_tiny                   # -> runs/isoflop_tiny/figures/*.png, *.pdf
  scaling plot runs/isoflop_tiny --fit iso.json --fit parametric.json --out figs

Which figures a directory supports is `scaling.plots.figures.supported`. Each figure drawn is
printed as its paths; each one skipped, with why.
"""

import sys
import warnings

from scaling.errors import ArgumentParser, InputError
from scaling.fit import points
from scaling.plots import figures


def _parser() -> ArgumentParser:
  parser = ArgumentParser(prog="scaling plot", description=__doc__.split("\n\n")[0])
  parser.add_argument("path", metavar="DIR", help="a sweep directory, a run directory or a CSV")
  parser.add_argument("--out", help="where the figures go (default: DIR/figures)")
  parser.add_argument("--fit", action="append", default=[], metavar="REPORT.json",
                      help="a `scaling fit --out` report to draw (isoflop, parametric, or a "
                           "power/saturating frontier fit); repeatable")
  parser.add_argument("--flops-column", default="flops", choices=("flops", "flops_kaplan"),
                      help="the FLOP convention on the axes (default: flops, chinchilla)")
  parser.add_argument("--n-column", choices=("params", "params_non_embedding"),
                      help="N on the axes (default: params, and params_non_embedding for L(N))")
  return parser


def main(argv: list[str]) -> int:
  args = _parser().parse_args(argv)
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    drawn, skipped = figures.draw(args.path, args.out, args.fit,
                                  flops_column=args.flops_column, n_column=args.n_column)
  for warning in caught:  # e.g. a metrics.jsonl cut off mid-write: one line each, like the fitter
    points.warn(str(warning.message))
  for paths in drawn.values():
    for path in paths:
      print(path)
  for figure, why in skipped.items():
    print(f"skipped {figure}: {why}")
  if not drawn:
    raise InputError(f"{args.path}: no figure to draw")
  return 0


if __name__ == "__main__":
  from scaling.cli import run

  sys.exit(run(main, sys.argv[1:], "plot"))
