"""Hyperparameter laws: LR vertices and the laws through them recovered from synthetic sweeps of a
known law, unbracketed points left out by name, and bad input as one line and exit 2."""

import json

import numpy as np
import pytest

from fit_synthetic import write_csv
from scaling.errors import InputError
from scaling.fit import cli, hparams

# The law the synthetic sweeps follow: lr_opt = C0 · N^-ALPHA · D^-BETA (Bjorck et al. 2024's form).
C0, ALPHA, BETA = 3.0, 0.3, 0.2
MULTIPLIERS = (0.25, 0.5, 1.0, 2.0, 4.0)
CURVATURE = 0.05  # loss = 2 + CURVATURE · ln(lr / lr_opt)²: a parabola in log LR about the optimum


def lr_opt(n, d):
  return C0 * n**-ALPHA * d**-BETA


def sweep(seed=0, sigma=0.003, offset=1.3, seeds=(0,), sizes=(1e4, 3e4, 1e5),
          horizons=(1e6, 4e6), multipliers=MULTIPLIERS, edge=None):
  """Rows of an hparams sweep: each (N, D) at LRs = offset × optimum × multipliers. `edge` (an
  (N, D)) has its grid shifted so its best LR is the grid's largest."""
  rng = np.random.default_rng(seed)
  rows = {key: [] for key in ("params", "tokens", "learning_rate", "loss", "budget", "seed")}
  for n in sizes:
    for d in horizons:
      shift = 1 / 8 if (n, d) == edge else offset
      for m in multipliers:
        lr = lr_opt(n, d) * shift * m
        for s in seeds:
          rows["params"].append(n)
          rows["tokens"].append(d)
          rows["learning_rate"].append(lr)
          rows["loss"].append(2 + CURVATURE * np.log(lr / lr_opt(n, d)) ** 2
                              + rng.normal(0, sigma))
          rows["budget"].append(6 * n * d)
          rows["seed"].append(s)
  return {key: np.array(value, dtype=float) for key, value in rows.items()}


def data_of(rows, seeds=False):
  return hparams.Data(n_P=rows["params"], d_P=rows["tokens"], lr_P=rows["learning_rate"],
                      loss_P=rows["loss"], c_P=rows["budget"],
                      seed_P=rows["seed"] if seeds else None)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vertices_and_law_recovered_within_their_intervals(seed):
  report = hparams.fit(data_of(sweep(seed=seed)), resamples=400, seed=seed)
  for point in report["points"]:
    assert point["status"] == "ok"
    truth = lr_opt(point["N"], point["D"])
    assert point["lr_opt"] == pytest.approx(truth, rel=0.1)
    lo, hi = point["ci95"]
    assert lo < point["lr_opt"] < hi and hi / lo < 1.5
  law = report["laws"]["lr_opt(N,D)"]
  assert law["n_points"] == 6
  for name, truth in (("alpha", ALPHA), ("beta", BETA)):
    lo, hi = law["ci95"][name]
    assert lo < truth < hi, (name, law)
  lo, hi = law["ci95"]["coefficient"]
  assert lo < C0 < hi
  assert report["bootstrap"]["kind"].startswith("noise") and report["bootstrap"]["scale"] == "iqr"


def test_law_of_compute_and_predictions():
  """With D ∝ N (one tokens per parameter), lr_opt(N,D) is not identifiable; lr_opt(C) is, and a
  prediction at a compute not fitted follows it."""
  sizes = (1e4, 3e4, 1e5, 3e5)
  rows = {key: [] for key in ("params", "tokens", "learning_rate", "loss", "budget")}
  for n in sizes:  # 20 tokens per parameter: C = 120 N², so lr_opt = C0·N^-α·(20N)^-β ∝ C^-(α+β)/2
    block = sweep(sizes=(n,), horizons=(20 * n,), sigma=0.002, seed=int(np.log(n)))
    for key in rows:
      rows[key].extend(block[key])
  rows = {key: np.array(value) for key, value in rows.items()}
  report = hparams.fit(data_of(rows), resamples=400, compute=(1e14,))
  assert "lr_opt(N,D)" not in report["laws"]
  assert any("do not vary N and D independently" in w for w in report["warnings"])
  law = report["laws"]["lr_opt(C)"]
  lo, hi = law["ci95"]["alpha"]
  assert lo < (ALPHA + BETA) / 2 < hi
  (prediction,) = report["predictions"]
  n = np.sqrt(1e14 / 120)
  lo, hi = prediction["lr_opt_ci95"]
  assert lo < lr_opt(n, 20 * n) < hi


def test_replicate_seeds_are_resampled():
  report = hparams.fit(data_of(sweep(seeds=(0, 1, 2)), seeds=True), resamples=300)
  assert report["bootstrap"]["kind"].startswith("seeds")
  assert all(point["runs"] == 15 for point in report["points"])
  lo, hi = report["laws"]["lr_opt(N,D)"]["ci95"]["alpha"]
  assert lo < ALPHA < hi


def test_an_edge_best_point_is_named_and_left_out():
  edge = (3e4, 4e6)
  clean = hparams.fit(data_of(sweep(edge=None)), resamples=200)
  report = hparams.fit(data_of(sweep(edge=edge)), resamples=200)
  flagged = [p for p in report["points"] if p["status"] != "ok"]
  assert [(p["N"], p["D"]) for p in flagged] == [edge]
  assert flagged[0]["status"].startswith("unbracketed: lowest loss at the largest learning rate")
  assert flagged[0]["lr_opt"] is None and flagged[0]["ci95"] is None
  assert any(flagged[0]["name"] in w and "left out" in w for w in report["warnings"])
  assert report["laws"]["lr_opt(N,D)"]["n_points"] == 5
  # left out, not used: the other points' law is what the clean sweep gives without that point
  assert report["laws"]["lr_opt(N,D)"]["exponents"]["alpha"] != pytest.approx(
      clean["laws"]["lr_opt(N,D)"]["exponents"]["alpha"], rel=1e-9)
  assert report["laws"]["lr_opt(N,D)"]["exponents"]["alpha"] == pytest.approx(ALPHA, abs=0.05)


def test_laws_record_the_range_of_the_points_they_were_fitted_through():
  """What a fitted: recipe flags extrapolation against: a point left out is not in the range."""
  report = hparams.fit(data_of(sweep()), resamples=100)
  assert report["laws"]["lr_opt(N,D)"]["range"] == {"N": [1e4, 1e5], "D": [1e6, 4e6]}
  assert report["laws"]["lr_opt(C)"]["range"] == {"C": [6e10, 6 * 1e5 * 4e6]}
  report = hparams.fit(data_of(sweep(edge=(1e5, 4e6))), resamples=100)
  assert report["laws"]["lr_opt(C)"]["range"] == {"C": [6e10, 6 * 3e4 * 4e6]}


def test_lr_laws_are_fitted_at_each_points_best_batch():
  """Batch 8 has the lower loss everywhere; batch 32's optimal LR is off by (N/1e4)^0.15, which
  averaged in would bend alpha. The laws go through batch 8's vertices alone, and say so."""
  rows = {key: [] for key in ("params", "tokens", "learning_rate", "loss", "budget", "batch")}
  for batch, penalty in ((8, 0.0), (32, 0.05)):
    block = sweep(seed=batch, sizes=(1e4, 3e4, 1e5, 3e5))
    shift = 1.0 if batch == 8 else (block["params"] / 1e4) ** 0.15
    block["learning_rate"] = block["learning_rate"] * shift
    block["loss"] = block["loss"] + penalty
    for key in rows:
      rows[key].extend(block[key] if key != "batch" else np.full(block["loss"].size, batch))
  rows = {key: np.array(value, dtype=float) for key, value in rows.items()}
  report = hparams.fit(hparams.Data(n_P=rows["params"], d_P=rows["tokens"],
                                    lr_P=rows["learning_rate"], loss_P=rows["loss"],
                                    c_P=rows["budget"], batch_P=rows["batch"]), resamples=300)
  assert all(point["lr_law_batch"] == 8 for point in report["points"])
  assert any("best batch" in w for w in report["warnings"])
  law = report["laws"]["lr_opt(N,D)"]
  assert law["n_points"] == 8
  # through both batches alpha would be ALPHA - 0.15/2
  assert law["exponents"]["alpha"] == pytest.approx(ALPHA, abs=0.03)
  assert law["exponents"]["beta"] == pytest.approx(BETA, abs=0.03)
  assert report["laws"]["lr_opt(C)"]["n_points"] == 8


@pytest.mark.parametrize("unit", [1.0, 1e-3])
def test_batch_law_from_swept_batch_sizes(unit):
  """The loss at each batch's best LR is lowest at batch_opt = 4·C^0.1 (a parabola in log B),
  whatever the batch column's unit (1e-3: batches below 1, whose log is negative)."""
  rng = np.random.default_rng(0)
  rows = {key: [] for key in ("params", "tokens", "learning_rate", "loss", "budget",
                              "batch_size")}
  for n in (1e4, 1e5):
    for d in (1e6, 1e7):
      c = 6 * n * d
      best_batch = 4 * c**0.1
      for batch in best_batch * np.array([0.25, 0.5, 1.0, 2.0, 4.0]) ** 0.9:
        for m in MULTIPLIERS:
          lr = lr_opt(n, d) * 1.2 * m
          rows["params"].append(n)
          rows["tokens"].append(d)
          rows["learning_rate"].append(lr)
          rows["budget"].append(c)
          rows["batch_size"].append(batch * unit)
          rows["loss"].append(2 + CURVATURE * np.log(lr / lr_opt(n, d)) ** 2
                              + 0.02 * np.log(batch / best_batch) ** 2 + rng.normal(0, 0.001))
  rows = {key: np.array(value) for key, value in rows.items()}
  report = hparams.fit(hparams.Data(n_P=rows["params"], d_P=rows["tokens"],
                                    lr_P=rows["learning_rate"], loss_P=rows["loss"],
                                    c_P=rows["budget"], batch_P=rows["batch_size"]),
                       resamples=300, compute=(1e13,))
  law = report["laws"]["batch_opt(C)"]
  assert law["n_points"] == 4 and all(row["status"] == "ok" for row in report["batch_optima"])
  for row in report["batch_optima"]:
    assert row["batch_opt"] == pytest.approx(4 * row["C"] ** 0.1 * unit, rel=0.1)
  lo, hi = law["ci95"]["beta"]
  assert lo < law["exponents"]["beta"] < hi and law["exponents"]["beta"] == pytest.approx(0.1,
                                                                                          abs=0.03)
  assert report["predictions"][0]["batch_opt"] == pytest.approx(4 * 1e13**0.1 * unit, rel=0.2)


# The command line: the JSON keys of the issue, and bad input as one line, exit 2.

def test_cli_report_keys(tmp_path, capsys):
  path = write_csv(tmp_path / "hp.csv", sweep())
  out = tmp_path / "hp.json"
  assert cli.main(["--approach", "hparams", "--data", path, "--compute", "1e12", "--params",
                   "3e5", "--tokens", "1e7", "--out", str(out)]) == 0
  report = json.loads(out.read_text())
  assert report["approach"] == "hparams" and report["inputs"]["N"] == "params"
  assert {"name", "N", "D", "lr_opt", "ci95", "status"} <= set(report["points"][0])
  assert set(report["laws"]) == {"lr_opt(N,D)", "lr_opt(C)"}
  law = report["laws"]["lr_opt(N,D)"]
  assert set(law["exponents"]) == {"alpha", "beta"}
  assert set(law["ci95"]) == {"coefficient", "alpha", "beta"}
  assert isinstance(report["warnings"], list)
  (at_nd, at_c) = report["predictions"]
  assert at_nd["lr_opt"] == pytest.approx(lr_opt(3e5, 1e7), rel=0.1) and "lr_opt" in at_c
  assert "lr_opt(N,D): coefficient" in capsys.readouterr().out
  # it always bootstraps: --seed alone picks the resamples, the same seed gives the same report
  again = tmp_path / "again.json"
  assert cli.main(["--approach", "hparams", "--data", path, "--seed", "0", "--out",
                   str(again)]) == 0
  assert json.loads(again.read_text())["points"] == report["points"]


def _error(argv, capsys) -> str:
  assert cli.run(cli.main, argv) == 2
  err = capsys.readouterr().err.strip()
  assert "\n" not in err and err.startswith("error: ")
  return err


def test_bad_inputs_are_one_line_exit_2(tmp_path, capsys):
  rows = sweep()
  no_lr = write_csv(tmp_path / "no_lr.csv", {k: v for k, v in rows.items() if k != "learning_rate"})
  assert "missing column 'learning_rate'" in _error(["--approach", "hparams", "--data", no_lr],
                                                    capsys)
  one_lr = sweep(multipliers=(1.0,))
  path = write_csv(tmp_path / "one_lr.csv", one_lr)
  assert "a parabola in log LR needs 3" in _error(["--approach", "hparams", "--data", path], capsys)
  with_nan = dict(rows, learning_rate=np.where(np.arange(rows["loss"].size) == 4, np.nan,
                                               rows["learning_rate"]))
  path = write_csv(tmp_path / "nan.csv", with_nan)
  assert "learning_rate is nan" in _error(["--approach", "hparams", "--data", path], capsys)
  edges = sweep(offset=20.0)  # every best LR at the smallest of its grid
  path = write_csv(tmp_path / "edges.csv", edges)
  assert "0 bracketed points" in _error(["--approach", "hparams", "--data", path], capsys)
  path = write_csv(tmp_path / "ok.csv", rows)
  assert "--lr-column does not apply" in _error(["--data", path, "--lr-column", "lr"], capsys)
  assert "pair up" in _error(["--approach", "hparams", "--data", path, "--params", "1e5"], capsys)
  assert "missing column 'lr'" in _error(["--approach", "hparams", "--data", path,
                                          "--lr-column", "lr"], capsys)


def test_fit_needs_three_bracketed_points():
  rows = sweep(sizes=(1e4,), horizons=(1e6, 4e6))
  with pytest.raises(InputError, match=r"^hparams: 2 points \(N, D\), a law needs 3: add sizes"):
    hparams.fit(data_of(rows), resamples=50)


def test_partial_replicates_do_not_collapse_the_intervals():
  """One extra seed at one LR of one point is not a replicated sweep: a seed bootstrap would redraw
  every other run as itself and give those points zero-width intervals."""
  rows = sweep(seed=0)
  rows = {key: np.append(value, value[2]) for key, value in rows.items()}
  rows["seed"][-1], rows["loss"][-1] = 1, rows["loss"][-1] + 0.003
  report = hparams.fit(data_of(rows, seeds=True), resamples=300)
  assert report["bootstrap"]["kind"].startswith("noise")
  for point in report["points"]:
    lo, hi = point["ci95"]
    assert hi / lo > 1.01, point
  lo, hi = report["laws"]["lr_opt(N,D)"]["ci95"]["alpha"]
  assert lo < ALPHA < hi and hi - lo > 0.01


def test_three_learning_rates_without_seeds_cannot_measure_the_noise(tmp_path, capsys):
  """Each parabola through 3 LRs interpolates: no residual, no replicate, so no interval can be
  honest; it is one line and exit 2, not intervals of zero width."""
  path = write_csv(tmp_path / "three.csv", sweep(multipliers=(0.5, 1.0, 2.0), offset=1.0))
  assert "5 or more learning rates, or replicate seeds" in _error(
      ["--approach", "hparams", "--data", path], capsys)
  report = hparams.fit(data_of(sweep(multipliers=(0.5, 1.0, 2.0), offset=1.0, seeds=(0, 1)),
                               seeds=True), resamples=200)
  assert report["bootstrap"]["kind"].startswith("seeds")
  assert all(p["ci95"][1] / p["ci95"][0] > 1.01 for p in report["points"] if p["ci95"])


def test_one_horizon_rounded_to_whole_steps_fits_no_plane():
  """D = 20·N rounded to 512-token steps is still one horizon: the plane through it is
  near-singular (alpha 1.6, beta -1.1, intervals ±50 before), so only lr_opt(C) is fitted."""
  rows = {key: [] for key in ("params", "tokens", "learning_rate", "loss", "budget")}
  for n in (1e4, 3e4, 1e5, 3e5):
    block = sweep(sizes=(n,), horizons=(round(20 * n / 512) * 512,), sigma=0.002,
                  seed=int(np.log(n)))
    for key in rows:
      rows[key].extend(block[key])
  report = hparams.fit(data_of({key: np.array(value) for key, value in rows.items()}),
                       resamples=200)
  assert "lr_opt(N,D)" not in report["laws"]
  assert any("do not vary N and D independently" in w for w in report["warnings"])
  lo, hi = report["laws"]["lr_opt(C)"]["ci95"]["alpha"]
  assert lo < (ALPHA + BETA) / 2 < hi


@pytest.mark.parametrize("c_column, convention", [("budget", "6n_total"), ("flops", "chinchilla")])
def test_report_names_the_flop_convention_of_c(tmp_path, c_column, convention):
  """From a sweep directory the report says what its C counts (the plan's convention for
  `budget`, results.csv's chinchilla `flops`), which a fitted: recipe evaluates the laws of C in."""
  rows = sweep()
  keep = ("params", "tokens", "learning_rate", "loss", "seed", c_column)
  path = write_csv(tmp_path / "results.csv", {key: rows["budget" if key == "flops" else key]
                                              for key in keep})
  (tmp_path / "plan.json").write_text(json.dumps({"recipe": {"name": "cpu_tiny"},
                                                  "flops_convention": "6n_total"}))
  out = tmp_path / "fit.json"
  assert cli.main(["--approach", "hparams", "--data", str(tmp_path), "--bootstrap", "100",
                   "--out", str(out)]) == 0
  report = json.loads(out.read_text())
  assert report["recipe"] == "cpu_tiny"
  assert (report["inputs"]["C"], report["inputs"]["C_convention"]) == (c_column, convention)
  assert cli.main(["--approach", "hparams", "--data", path, "--bootstrap", "100", "--out",
                   str(out)]) == 0  # the same file, its plan.json beside it
  assert json.loads(out.read_text())["inputs"]["C_convention"] == convention


def test_two_seed_intervals_are_as_wide_as_the_calibrated_noise_bootstraps():
  """Redrawing 2 seeds with replacement varies their mean half as much as new runs would: the
  seed intervals were 0.63x the noise bootstrap's (which covers 96 % on these sweeps; they 76 %).
  With the sqrt(n/(n-1)) inflation and t at the seeds' df they are ~0.95x (89 % coverage)."""
  ratios = []
  for rep in range(5):
    rows = sweep(seed=rep, sigma=0.01, offset=1.414, seeds=(0, 1))
    by_seeds = hparams.fit(data_of(rows, seeds=True), resamples=1000, seed=rep)
    by_noise = hparams.fit(data_of(rows), resamples=1000, seed=rep)
    assert by_seeds["bootstrap"]["kind"].startswith("seeds")
    assert by_noise["bootstrap"]["kind"].startswith("noise")
    widths = [[np.log(p["ci95"][1] / p["ci95"][0]) for p in report["points"] if p["ci95"]]
              for report in (by_seeds, by_noise)]
    ratios.append(np.mean(widths[0]) / np.mean(widths[1]))
  assert np.mean(ratios) > 0.8, ratios
