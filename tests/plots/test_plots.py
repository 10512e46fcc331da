"""`scaling plot` on a synthetic sweep: files written, cut-off metrics tolerated, skips said."""

import csv
import importlib
import json
import os

import jax
import numpy as np
import pytest

from scaling import plots
from scaling.errors import InputError
from scaling.fit import intervals, isoflop
from scaling.plots import cli

# Hoffmann et al. 2022 eq. 10: the law every synthetic run follows.
E, A, B, ALPHA, BETA = 1.69, 406.4, 410.7, 0.34, 0.28
COLUMNS = ("name", "params", "params_non_embedding", "tokens", "flops", "flops_kaplan", "loss",
           "budget")


def law(n, d):
  return E + A / n**ALPHA + B / d**BETA


def write_sweep(root, budgets, sizes_per_budget=4, *, truncate=None) -> tuple[str, list[str]]:
  """A sweep directory as `scaling sweep` writes it, and its run names: results.csv and
  runs/NAME/{run.json, metrics.jsonl}, every loss from Hoffmann's law with C = 6ND. Run number
  `truncate` gets a metrics.jsonl that ends in a half-written line."""
  g = (ALPHA * A / (BETA * B)) ** (1 / (ALPHA + BETA))
  rows = []
  for budget in budgets:
    n_opt = g * (budget / 6) ** (BETA / (ALPHA + BETA))
    for n in n_opt * np.geomspace(1 / 4, 4, sizes_per_budget):
      name = f"C{budget:.0e}_N{n:.2e}"
      tokens = budget / (6 * n)
      run_dir = os.path.join(root, "runs", name)
      os.makedirs(run_dir)
      with open(os.path.join(run_dir, "run.json"), "w", encoding="utf-8") as f:
        json.dump({"params": n, "params_non_embedding": 0.8 * n,
                   "flops_per_token": {"chinchilla": 6 * n, "kaplan": 5.4 * n}}, f)
      with open(os.path.join(run_dir, "metrics.jsonl"), "w", encoding="utf-8") as f:
        for step, seen in enumerate(np.linspace(tokens / 20, tokens, 20), start=1):
          row = {"step": step, "tokens": seen, "flops": 6 * n * seen,
                 "flops_kaplan": 5.4 * n * seen, "loss": law(n, seen) * (1 + 0.01 * np.sin(step))}
          if step == 20:
            row["eval_loss"] = law(n, seen)
          f.write(json.dumps(row) + "\n")
        if len(rows) == truncate:
          f.write('{"step": 21, "tokens": 1')
      rows.append({"name": name, "params": n, "params_non_embedding": 0.8 * n, "tokens": tokens,
                   "flops": budget, "flops_kaplan": 0.9 * budget, "loss": law(n, tokens),
                   "budget": budget})
  with open(os.path.join(root, "results.csv"), "w", encoding="utf-8", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
  return str(root), [row["name"] for row in rows]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
  return write_sweep(tmp_path_factory.mktemp("sweep"), [1e18, 1e19, 1e20], truncate=5)


def _nontrivial(path):
  return os.path.isfile(path) and os.path.getsize(path) > 10_000


def test_sweep_draws_every_figure_and_warns_on_a_truncated_line(sweep, capsys):
  sweep, names = sweep
  assert cli.main([sweep]) == 0
  out, err = capsys.readouterr()
  for name in ("training_curves", "isoflop", "parametric_contours"):
    for extension in ("png", "pdf"):
      path = os.path.join(sweep, "figures", f"{name}.{extension}")
      assert _nontrivial(path) and path in out.splitlines()
  assert "skipped model_size" in out  # an isoFLOP sweep has no token count shared by 3 sizes
  assert err.count("warning: ") == 1 and names[5] in err and "incomplete line" in err
  assert not jax.config.jax_enable_x64  # the contours' fit ran in float64 and switched it back


def test_too_few_budgets_skips_the_isoflop_figures(tmp_path, capsys):
  sweep, _ = write_sweep(tmp_path / "two", [1e18, 1e19])
  assert cli.main([sweep, "--out", str(tmp_path / "figs")]) == 0
  out = capsys.readouterr().out
  assert "skipped isoflop: 2 budgets with >= 3 model sizes (of 2)" in out
  assert "skipped parametric_contours: 8 runs" in out
  assert _nontrivial(str(tmp_path / "figs" / "training_curves.png"))
  assert not os.path.exists(tmp_path / "figs" / "isoflop.png")


def test_a_run_directory_gets_its_curve_and_the_library_warns(sweep, tmp_path, capsys):
  sweep, names = sweep
  run_dir = os.path.join(sweep, "runs", names[5])
  with pytest.warns(UserWarning, match="incomplete line"):
    paths = plots.training_curves(run_dir, str(tmp_path))
  assert all(_nontrivial(p) for p in paths)
  assert cli.main([run_dir, "--out", str(tmp_path)]) == 0
  assert "skipped isoflop: a run directory" in capsys.readouterr().out


def test_isoflop_report_adds_intervals_and_must_match_the_data(sweep, tmp_path):
  sweep, _ = sweep
  table = plots.runs.final_points(sweep, ["params", "tokens", "flops", "loss"])
  optima = isoflop.isoflop(table["budget"], table["params"], table["tokens"], table["loss"])
  assert optima.a == pytest.approx(BETA / (ALPHA + BETA), abs=0.02)
  report = {"approach": "isoflop", "law": "power", "a": optima.a, "b": optima.b,
            "params": {"a": optima.a, "b": optima.b, "k_N": optima.k_n, "k_D": optima.k_d},
            "ci95": {"a": [0.4, 0.5], "b": [0.5, 0.6]}}
  assert all(_nontrivial(p) for p in plots.isoflop(sweep, str(tmp_path), report))
  with pytest.raises(InputError, match="another --n-column"):
    plots.isoflop(sweep, str(tmp_path), report, n_column="params_non_embedding")


def test_ladder_draws_loss_against_size(tmp_path, capsys):
  root = tmp_path / "ladder"
  os.makedirs(root)
  sizes = np.geomspace(1e4, 1e6, 5)
  with open(root / "results.csv", "w", encoding="utf-8") as f:
    f.write("name,params,params_non_embedding,tokens,flops,flops_kaplan,loss,budget\n")
    for n in sizes:
      f.write(f"N{n:.0f},{1.5 * n},{n},1e7,{6e7 * n},{5e7 * n},{(8.8e13 / n) ** 0.076},{6e7 * n}\n")
  assert cli.main([str(root)]) == 0
  out = capsys.readouterr().out
  assert str(root / "figures" / "model_size.png") in out and "skipped training_curves" in out
  assert "skipped parametric_contours: 5 runs, 5 model sizes, 1 token counts" in out


@pytest.mark.parametrize("argv, match", [
    (["/nonexistent/sweep"], "no such file or directory"),
    (["{tmp}"], "neither a sweep directory"),
    (["{sweep}", "--fit", "/nonexistent.json"], "not a readable fit report"),
    (["{sweep}", "--flops-column", "bogus"], "invalid choice"),
])
def test_bad_input_is_an_input_error(sweep, tmp_path, argv, match):
  argv = [a.format(tmp=tmp_path, sweep=sweep[0]) for a in argv]
  with pytest.raises(InputError, match=match):
    cli.main(argv)


def test_a_sweep_in_a_bucket_is_drawn_there_and_fitted(sweep, gcs_dir, capsys):
  """`scaling plot gs://...` and `scaling fit --data gs://...` read what they read locally."""
  import emulated_gcs

  from scaling import storage
  from scaling.fit import cli as fit_cli

  local, names = sweep
  emulated_gcs.upload(local, gcs_dir, only=("runs", "results.csv"))
  assert cli.main([gcs_dir]) == 0
  out, err = capsys.readouterr()
  assert storage.join(gcs_dir, "figures", "isoflop.png") in out.splitlines()
  assert len(storage.read_bytes(storage.join(gcs_dir, "figures", "training_curves.png"))) > 10_000
  assert err.count("warning: ") == 1 and names[5] in err  # the same cut-off line, in the bucket

  report = storage.join(gcs_dir, "fit.json")
  assert fit_cli.main(["--data", gcs_dir, "--approach", "isoflop", "--out", report]) == 0
  fitted = storage.read_json(report)
  assert fitted["a"] == pytest.approx(BETA / (ALPHA + BETA), abs=0.02)


@pytest.mark.parametrize("kind", ["cases", "noise"])
def test_isoflop_figure_redraws_the_fitters_bootstrap_with_replicate_seeds(tmp_path, kind):
  """The error bars and bands come from the report's own bootstrap (same kind, resamples, seed and
  seed column), so the figure's a interval is the report's; replicates are told apart by seed."""
  from scaling.fit import cli as fit_cli

  isoflop_plot = importlib.import_module("scaling.plots.isoflop")  # plots.isoflop is the function

  root = tmp_path / "seeds"
  os.makedirs(root)
  rng = np.random.default_rng(0)
  g = (ALPHA * A / (BETA * B)) ** (1 / (ALPHA + BETA))
  lines = ["params,tokens,flops,loss,budget,seed"]
  for budget in (1e18, 1e19, 1e20):
    n_opt = g * (budget / 6) ** (BETA / (ALPHA + BETA))
    for n in n_opt * np.geomspace(1 / 4, 4, 5):
      for seed in (0, 1):
        loss = law(n, budget / (6 * n)) * np.exp(0.003 * rng.standard_normal())
        lines.append(f"{n},{budget / (6 * n)},{budget},{loss},{budget},{seed}")
  (root / "points.csv").write_text("\n".join(lines) + "\n")
  report_path = str(tmp_path / "iso.json")
  assert fit_cli.main(["--data", str(root / "points.csv"), "--approach", "isoflop",
                       "--bootstrap", "50", "--bootstrap-kind", kind, "--out", report_path]) == 0
  with open(report_path) as f:
    report = json.load(f)
  assert report["bootstrap"]["kind"].startswith(f"{kind}:")
  table = plots.runs.final_points(str(root / "points.csv"), ["params", "tokens", "flops", "loss"],
                                  optional=("seed",))
  points = (table["budget"], table["params"], table["tokens"], table["loss"])
  samples = isoflop_plot._bootstrap(report, points, report["window"], False, table["seed"])
  lo, hi = isoflop_plot._interval([report["optima"][0]["N_opt"]], samples["N_opt_BxM"][:, :1],
                                  report["bootstrap"])
  assert [lo[0], hi[0]] == pytest.approx(report["optima"][0]["ci95"]["N_opt"], rel=1e-9)
  half = report["bootstrap"]["quantile"] * intervals.spread(samples["a"], report["bootstrap"]["scale"])
  assert [report["a"] - half, report["a"] + half] == pytest.approx(report["ci95"]["a"])
  optima = isoflop.isoflop(*points, grouped=False)
  replicate = isoflop_plot._replicates(optima.profiles[0], table["seed"])
  assert replicate.sum() == 5 and set(table["seed"][optima.profiles[0].rows[replicate]]) == {"1"}
  paths = plots.isoflop(str(root / "points.csv"), str(tmp_path / "figures"), report)
  assert all(_nontrivial(p) for p in paths)
