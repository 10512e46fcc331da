"""What every figure shares: saving as PNG and PDF, log-scaled colours, fit reports, labels.

Figures are `matplotlib.figure.Figure` objects, never pyplot: no global state and no display
backend, so drawing works headless and inside other programs.
"""

import io
import json

import matplotlib
import PIL.Image
import numpy as np
from matplotlib.colors import ListedColormap, LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import Formatter, FuncFormatter, LogLocator, NullFormatter

from scaling import storage
from scaling.errors import InputError

FORMATS = ("png", "pdf")
DPI = 120  # legible, and 20-70 kB per PNG
SIZE_COLORMAP = "viridis"  # model size, as in Chinchilla Figs. 2-3
BUDGET_COLORMAP = "plasma"  # compute budget
LOSS_COLORMAP = "cividis_r"  # loss contours: light = low loss, dark = high

FLOPS_LABELS = {"flops": "training FLOPs C (chinchilla convention)",
                "flops_kaplan": "training FLOPs C (kaplan convention)"}
PARAMS_LABELS = {"params": "parameters N (all, as Hoffmann et al. count)",
                 "params_non_embedding": "non-embedding parameters N (Kaplan et al.)"}


def new_figure(width: float, height: float) -> Figure:
  return Figure(figsize=(width, height), layout="constrained")


def save(figure: Figure, out_dir: str, name: str) -> list[str]:
  """Writes OUT_DIR/NAME.png and NAME.pdf (local or gs://); returns their paths."""
  png, pdf = (storage.join(out_dir, f"{name}.{extension}") for extension in FORMATS)
  # A line plot has few colours: 256 of them (a palette PNG) look the same and take a third of the
  # bytes of full RGB, which matters for the PNGs committed beside experiment READMEs.
  rendered, png_bytes, pdf_bytes = io.BytesIO(), io.BytesIO(), io.BytesIO()
  figure.savefig(rendered, format="png", dpi=DPI)
  image = PIL.Image.open(rendered).convert("RGB")
  image.quantize(colors=256, method=PIL.Image.Quantize.MEDIANCUT).save(
      png_bytes, format="png", optimize=True)
  figure.savefig(pdf_bytes, format="pdf", metadata={"CreationDate": None})  # no date: same file
  try:
    storage.write_bytes(png, png_bytes.getvalue())
    storage.write_bytes(pdf, pdf_bytes.getvalue())
  except OSError as e:
    raise InputError(f"{out_dir}: cannot write the figures there ({e.strerror or e})") from None
  return [png, pdf]


def log_norm(values) -> LogNorm:
  """A colour scale over positive values; a single value gets a decade around it."""
  low, high = float(min(values)), float(max(values))
  if low == high:
    low, high = low / 3, high * 3
  return LogNorm(vmin=low, vmax=high)


def colormap(name: str):
  """A named colormap; plasma (budgets) stops at 85 %, before its yellow fades into white."""
  cmap = matplotlib.colormaps[name]
  if name == BUDGET_COLORMAP:
    cmap = ListedColormap(cmap(np.linspace(0.0, 0.85, 256)), name=f"{name}_dark")
  return cmap


def load_report(report) -> dict | None:
  """A `scaling fit --out` report: the dict itself, a path to its JSON, or None."""
  if report is None or isinstance(report, dict):
    return report
  try:
    loaded = storage.read_json(report)
  except (OSError, json.JSONDecodeError) as e:
    raise InputError(f"{report}: not a readable fit report ({e})") from None
  # an hparams report holds its fitted values in `laws`, every other one in `params`
  if not isinstance(loaded, dict) or "approach" not in loaded or not (
      "params" in loaded or loaded["approach"] == "hparams" and "laws" in loaded):
    raise InputError(f"{report}: not a fit report (no 'approach' and 'params'; written by "
                     "scaling fit --out)")
  return loaded


def interval(report: dict | None, name: str) -> str:
  """' [lo, hi]' (the report's 95 % bootstrap interval of `name`) or ''."""
  ci = (report or {}).get("ci95", {}).get(name)
  return f" [{ci[0]:.3g}, {ci[1]:.3g}]" if ci else ""


class DistinctDecimals(Formatter):
  """Plain numbers with the fewest decimals that keep every tick label on the axis distinct: a
  log axis over a narrow range (losses 3.3-3.5) gets 3.35, 3.40, 3.45, not 3.4, 3.4, 3.4."""

  def __call__(self, value, pos=None) -> str:
    return f"{value:.4g}"

  def format_ticks(self, values) -> list[str]:
    for decimals in range(6):
      labels = [f"{v:.{decimals}f}" for v in values]
      if len(set(labels)) == len(labels):
        return labels
    return [f"{v:.6g}" for v in values]


def log_loss_axis(ax) -> None:
  """A log-scaled loss axis labelled in plain numbers (losses span less than a decade). Major
  and minor ticks are labelled together, so their decimals are chosen together."""
  ax.set_yscale("log")
  ax.yaxis.set_major_formatter(DistinctDecimals())
  ax.yaxis.set_minor_formatter(DistinctDecimals())
  ax.grid(True, which="both", alpha=0.25)


def _compact(value, _=None) -> str:
  """2e4 as '2×10⁴' in mathtext; 1 ... 999 as they are."""
  if 1 <= value < 1000:
    return f"{value:g}"
  mantissa, exponent = f"{value:.0e}".split("e")
  power = f"10^{{{int(exponent)}}}"
  return f"${power}$" if mantissa == "1" else f"${mantissa}\\times{power}$"


def tidy_log_ticks(ax, which: str = "x") -> None:
  """Labels at 1, 2, 5 × 10^k on a log axis spanning under 2.5 decades (matplotlib would label
  every minor tick, and they collide); wider axes keep matplotlib's decades."""
  axis = ax.xaxis if which == "x" else ax.yaxis
  low, high = sorted(ax.get_xlim() if which == "x" else ax.get_ylim())
  if high / low >= 10**2.5:
    return
  axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
  axis.set_major_formatter(FuncFormatter(_compact))
  axis.set_minor_formatter(NullFormatter())
