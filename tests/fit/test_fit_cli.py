"""`scaling fit`: a readable table, the JSON report, and exit 2 with one line on bad input."""

import json
import os
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from fit_synthetic import isoflop_grid, write_csv, write_run
from scaling.errors import InputError
from scaling.fit import cli

REQUIRED = {"law", "approach", "params", "objective", "n_points", "starts", "starts_at_best"}


@pytest.fixture(scope="module")
def points_csv(tmp_path_factory, points_sigma_001):
  params, tokens, loss = points_sigma_001
  return write_csv(tmp_path_factory.mktemp("points") / "points.csv",
                   {"params": params, "tokens": tokens, "loss": loss, "flops": 6 * params * tokens})


@pytest.fixture(autouse=True)
def no_persistent_cache(monkeypatch):
  """In-process runs must not switch on JAX's persistent cache for the rest of the test session."""
  monkeypatch.setenv("SCALING_FIT_CACHE", "off")


def test_parametric_fit_with_bootstrap_and_allocation(points_csv, tmp_path, capsys):
  out = tmp_path / "fit.json"
  assert cli.main(["--data", points_csv, "--bootstrap", "50", "--seed", "1",
                   "--compute", "1e21", "--out", str(out)]) == 0
  report = json.loads(out.read_text())
  assert REQUIRED <= set(report)
  assert list(report["params"]) == ["E", "A", "B", "alpha", "beta"]
  assert report["starts"] == 4500 and report["n_points"] == 250 and report["starts_at_best"] >= 1
  assert set(report["stderr"]) >= {"E", "A", "B", "alpha", "beta", "a", "b", "N_opt@1e+21"}
  assert all(lo < hi for lo, hi in report["ci95"].values())
  assert report["a"] == pytest.approx(report["params"]["beta"]
                                      / (report["params"]["alpha"] + report["params"]["beta"]))
  assert report["allocation"][0]["flops"] == 1e21
  table = capsys.readouterr().out
  assert "chinchilla law, parametric fit to 250 points" in table and "95% interval" in table


def test_isoflop_and_budget_column(tmp_path, capsys):
  budgets, params, tokens, loss = isoflop_grid(np.geomspace(1e18, 1e21, 4))
  path = write_csv(tmp_path / "iso.csv", {"params": params, "tokens": tokens, "loss": loss,
                                         "flops": budgets * (1 + 1e-3 * np.sin(params)),
                                         "budget": budgets})
  out = tmp_path / "iso.json"
  assert cli.main(["--data", path, "--approach", "isoflop", "--out", str(out)]) == 0
  report = json.loads(out.read_text())
  assert report["a"] == pytest.approx(0.4516, abs=0.01) and len(report["optima"]) == 4
  assert "isoflop fit" in capsys.readouterr().out


def test_y_bpb_fits_the_bpb_column_instead_of_the_loss(tmp_path):
  budgets, params, tokens, loss = isoflop_grid(np.geomspace(1e18, 1e21, 4))
  path = write_csv(tmp_path / "iso.csv", {"params": params, "tokens": tokens, "flops": budgets,
                                         "loss": loss, "bpb": loss / np.log(2)})
  reports = {}
  for y in ("loss", "bpb"):
    out = tmp_path / f"{y}.json"
    assert cli.main(["--data", path, "--approach", "isoflop", "--y", y, "--out", str(out)]) == 0
    reports[y] = json.loads(out.read_text())
  assert reports["bpb"]["y"] == "bpb" and reports["loss"]["y"] == "loss"
  assert reports["bpb"]["a"] == pytest.approx(reports["loss"]["a"])  # a constant factor apart
  for in_nats, in_bits in zip(reports["loss"]["optima"], reports["bpb"]["optima"]):
    assert in_bits["loss"] == pytest.approx(in_nats["loss"] / np.log(2))


def test_envelope_from_a_sweep_directory(tmp_path):
  sweep = tmp_path / "sweep"
  for i, size in enumerate(np.geomspace(3e7, 3e9, 7)):
    write_run(sweep / f"run{i}", size, list(np.geomspace(1e8, 3e11, 30)))
  write_csv(sweep / "results.csv", {"params": [1e8], "tokens": [1e9], "loss": [3.0], "flops": [1e18]})
  out = tmp_path / "env.json"
  assert cli.main(["--data", str(sweep), "--approach", "envelope", "--compute", "1e21",
                   "--out", str(out)]) == 0
  report = json.loads(out.read_text())
  assert report["a"] == pytest.approx(0.4516, abs=0.03)
  assert report["allocation"][0]["N_opt"] == pytest.approx(report["params"]["k_N"]
                                                           * 1e21 ** report["a"])


def test_frontier_power_law(tmp_path):
  params = np.geomspace(1e6, 1e9, 30)
  loss = (8.8e13 / params) ** 0.076
  path = write_csv(tmp_path / "kaplan.csv", {"params": np.concatenate([params, params]),
                                             "tokens": np.full(60, 1e9),
                                             "loss": np.concatenate([loss, loss * 1.1])})
  out = tmp_path / "frontier.json"
  assert cli.main(["--data", path, "--approach", "frontier", "--law", "power", "--out", str(out)]) == 0
  report = json.loads(out.read_text())
  assert report["frontier_points"] == 30 and report["params"]["alpha"] == pytest.approx(0.076, rel=1e-6)


@pytest.mark.parametrize("args, match", [
    (["--law", "nope"], "argument --law: invalid choice"),
    (["--bootstrap", "1"], "--bootstrap must be 0"),
    (["--approach", "frontier", "--law", "chinchilla"], "fits a law of one input"),
    (["--law", "power", "--compute", "1e20"], "--compute needs a law of"),
    # Options that do not apply are refused, not ignored.
    (["--approach", "envelope", "--bootstrap", "10"],
     "--bootstrap does not apply to --approach envelope"),
    (["--x", "tokens"], "--x picks the input of the one-input laws power and saturating; "
                        "chinchilla is a law of (N, D)"),
    (["--approach", "isoflop", "--law", "chinchilla"], "--law does not apply to --approach isoflop"),
    (["--approach", "isoflop", "--huber-delta", "0.01"], "--huber-delta does not apply"),
    (["--window", "3"], "--window does not apply to --approach parametric"),
    (["--seed", "3"], "--seed does not apply without --bootstrap"),
    (["--approach", "isoflop", "--bootstrap-kind", "noise"],
     "--bootstrap-kind does not apply without --bootstrap"),
    (["--bootstrap", "10", "--bootstrap-kind", "noise"],
     "--bootstrap-kind does not apply to --approach parametric"),
    (["--approach", "isoflop", "--bootstrap", "10", "--bootstrap-kind", "wild"],
     "argument --bootstrap-kind: invalid choice: 'wild'"),
    (["--least-squares", "--huber-delta", "0.1"], "--huber-delta does not apply with --least-squares"),
    (["--compute", "1e20", "--flops-per-token", "0"], "--flops-per-token must be positive"),
    (["--flops-per-token", "6"], "--flops-per-token does not apply without --compute"),
    (["--flops-column", "flops_kaplan"], "--flops-column does not apply here"),
    (["--approach", "isoflop", "--window", "-1"], "--window must be >= 0"),
    (["--law", "data_constrained"], "law data_constrained needs a 'unique_tokens' or an 'epochs' column"),
    (["--law", "data_constrained", "--x", "params"], "data_constrained is a law of (N, D, U)"),
])
def test_bad_arguments(points_csv, args, match, capsys):
  assert cli.run(cli.main, ["--data", points_csv, *args]) == 2
  err = capsys.readouterr().err
  assert err.startswith("error: ") and err.count("\n") == 1 and match in err


def _run_cli(*args, **env):
  return subprocess.run([sys.executable, "-m", "scaling.fit.cli", *args], capture_output=True,
                        text=True, env={**os.environ, "SCALING_FIT_CACHE": "off", **env})


@pytest.mark.parametrize("csv_body, match", [
    ("params,tokens\n1e8,1e9\n", "missing column 'loss'"),
    ("", "empty file"),
    ("params,tokens,loss\n1e8,1e9,nan\n", "loss is nan"),
    ("params,tokens,loss\n-1,1e9,3\n", "params must be positive"),
    ("params,tokens,loss\n1e8,1e9,3\n2e8,1e9,2.9\n", "has 5 parameters but only 2 points"),
    ("params,tokens,loss\n" + "".join(f"1e8,{d}e9,{3 - d / 10}\n" for d in range(1, 9)),
     "every point has params = 1e+08: law chinchilla in N is not identifiable"),
    ("params,tokens,loss\n" + "".join(f"{n}e8,{n + 1}e9,{3 - n / 10}\n" for n in range(1, 6)),
     "has 5 parameters but only 5 points"),
    ('{"step": 1, "eval_loss": 3.0}\n', "not a CSV file: it reads as JSON"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, csv_body, match):
  path = tmp_path / "bad.csv"
  path.write_text(csv_body)
  result = _run_cli("--data", str(path))
  assert result.returncode == 2, result.stderr
  assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
  assert match in result.stderr and result.stdout == ""


@pytest.mark.parametrize("name, body, match", [
    ("metrics.jsonl", '{"step": 1}\n', "expected a CSV file, a run directory or a sweep directory, "
                                       "got a .jsonl file (a metrics.jsonl belongs to a run"),
    ("points.parquet", "PAR1", "got a .parquet file"),
    ("points.csv", b"\xff\xfe\x00\x01", "not a text CSV file"),
])
def test_data_that_is_not_csv_says_what_it_got(tmp_path, name, body, match):
  path = tmp_path / name
  path.write_bytes(body if isinstance(body, bytes) else body.encode())
  result = _run_cli("--data", str(path))
  assert result.returncode == 2 and result.stderr.count("\n") == 1 and match in result.stderr


def test_a_vanished_term_is_flagged(tmp_path, capsys):
  """Points from L = 2 + 400/N^0.34 (no data term): B → 0 is reported, not passed off."""
  rng = np.random.default_rng(0)
  params, tokens = np.exp(rng.uniform(16, 22, 60)), np.exp(rng.uniform(19, 25, 60))
  path = write_csv(tmp_path / "nob.csv", {"params": params, "tokens": tokens,
                                         "loss": 2 + 400 / params**0.34})
  out = tmp_path / "fit.json"
  assert cli.main(["--data", path, "--out", str(out)]) == 0
  warnings = json.loads(out.read_text())["warnings"]
  assert any(w.startswith("B·x^-beta") and "at its bound 0" in w for w in warnings), warnings
  assert "at its bound 0" in capsys.readouterr().err


def test_isoflop_report_says_which_points_each_budget_used(tmp_path, capsys):
  budgets, params, tokens, loss = isoflop_grid(np.geomspace(1e18, 1e21, 4), sizes_per_budget=11,
                                               span=30)
  cut = (budgets == 1e21) & (params > np.median(params[budgets == 1e21]))  # no bracketed minimum
  columns = {"params": params[~cut], "tokens": tokens[~cut], "loss": loss[~cut],
             "flops": budgets[~cut]}
  path = write_csv(tmp_path / "iso.csv", columns)
  out = tmp_path / "iso.json"
  assert cli.main(["--data", path, "--approach", "isoflop", "--compute", "1e22", "--out",
                   str(out)]) == 0
  report = json.loads(out.read_text())
  assert report["window"] == 2 and len(report["optima"]) == 3
  first, last = report["budgets"][0], report["budgets"][-1]
  assert first["status"] == "fitted" and 5 <= len(first["params_fitted"]) <= 6
  assert len(first["params_fitted"]) + len(first["params_left_out"]) == 11
  assert last["status"].startswith("left out: lowest loss at the largest size")
  assert "isoFLOP budget 1e+21: lowest loss at the largest size" in capsys.readouterr().err
  assert any("1e+21" in w for w in report["warnings"])
  allocation = report["allocation"][0]
  assert allocation["N_opt"] == pytest.approx(report["params"]["k_N"] * 1e22 ** report["a"])
  assert report["compute_convention"].startswith("C in the data's 'flops' column")
  assert cli.main(["--data", path, "--approach", "isoflop", "--window", "0", "--out",
                   str(out)]) == 0
  report = json.loads(out.read_text())
  assert report["budgets"][0]["params_left_out"] == [] and report["window"] == 0


def test_isoflop_bootstrap_resamples_seeds(tmp_path):
  budgets, params, tokens, loss = isoflop_grid(np.geomspace(1e18, 1e21, 4), sigma=0.003)
  noise = np.exp(0.003 * np.random.default_rng(1).standard_normal((2, loss.size)))
  path = write_csv(tmp_path / "seeds.csv", {
      "params": np.tile(params, 3), "tokens": np.tile(tokens, 3), "flops": np.tile(budgets, 3),
      "loss": np.concatenate([loss, loss * noise[0], loss * noise[1]]),
      "seed": np.repeat(["0", "1", "2"], loss.size)})
  out = tmp_path / "seeds.json"
  assert cli.main(["--data", path, "--approach", "isoflop", "--bootstrap", "100",
                   "--bootstrap-kind", "cases", "--compute", "1e22", "--out", str(out)]) == 0
  report = json.loads(out.read_text())
  assert "seeds (the seed column)" in report["bootstrap"]["kind"]
  lo, hi = report["ci95"]["a"]
  assert lo < report["a"] < hi and lo < 0.4516 < hi
  lo, hi = report["ci95"]["N_opt@1e+22"]
  assert lo < report["allocation"][0]["N_opt"] < hi
  # Each budget's own minimum gets its interval too (what the isoFLOP figure's error bars draw).
  for row in report["optima"]:
    for key in ("N_opt", "D_opt"):
      lo, hi = row["ci95"][key]
      assert lo < row[key] < hi and hi / lo < 2


def test_isoflop_noise_bootstrap_reports_its_sigma(tmp_path):
  """The noise bootstrap, the default kind: the report names the kind, its interval's spread and
  its σ (the larger of the seeds' SD and the parabolas' residual RMS, with both), and every
  interval the case bootstrap gives is there."""
  budgets, params, tokens, truth = isoflop_grid(np.geomspace(1e18, 1e21, 4), sigma=0)
  noise = np.exp(0.003 * np.random.default_rng(1).standard_normal(2 * truth.size))
  path = write_csv(tmp_path / "seeds.csv", {
      "params": np.tile(params, 2), "tokens": np.tile(tokens, 2), "flops": np.tile(budgets, 2),
      "loss": np.tile(truth, 2) * noise, "seed": np.repeat(["0", "1"], truth.size)})
  out = tmp_path / "noise.json"
  assert cli.main(["--data", path, "--approach", "isoflop", "--bootstrap", "100",
                   "--compute", "1e22", "--out", str(out)]) == 0
  report = json.loads(out.read_text())
  bootstrap = report["bootstrap"]
  assert bootstrap["kind"].startswith("noise: the design kept")
  assert bootstrap["scale"] == "iqr" and "IQR / 1.349" in bootstrap["interval"]
  assert bootstrap["quantile"] == pytest.approx(stats.t.ppf(0.975, bootstrap["sigma_dof"]), rel=1e-5)
  assert bootstrap["sigma"] == max(bootstrap["seed_sd"], bootstrap["residual_rms"])
  assert bootstrap["seed_dof"] == truth.size and bootstrap["sigma_dof"] > 0
  assert bootstrap["sigma_source"] in ("seeds", "parabolas")
  assert bootstrap["seed_sd"] == pytest.approx(0.003 * np.mean(truth), rel=0.3)
  assert bootstrap["loss_scale"] == pytest.approx(np.mean(truth), rel=0.01)
  lo, hi = report["ci95"]["a"]
  assert lo < report["a"] < hi and lo < 0.4516 < hi
  assert "N_opt@1e+22" in report["ci95"]
  for row in report["optima"]:
    lo, hi = row["ci95"]["N_opt"]
    assert lo < row["N_opt"] < hi and row["resamples_with_minimum"] > 90


def test_parametric_allocation_in_the_datas_flop_convention(tmp_path, points_sigma_001):
  """Budgets are in the data's FLOP column: with flops = 7·N·D, D_opt = C / (7·N_opt); with
  --flops-per-token 6, C = 6·N·D."""
  params, tokens, loss = points_sigma_001
  path = write_csv(tmp_path / "seven.csv", {"params": params, "tokens": tokens, "loss": loss,
                                           "flops": 7 * params * tokens})
  reports = []
  for extra in ([], ["--flops-per-token", "6"]):
    out = tmp_path / "fit.json"
    assert cli.main(["--data", path, "--compute", "1e21", "--out", str(out), *extra]) == 0
    reports.append(json.loads(out.read_text()))
  own, six = (r["allocation"][0] for r in reports)
  assert own["D_opt"] == pytest.approx(1e21 / (7 * own["N_opt"]), rel=1e-6)
  assert six["D_opt"] == pytest.approx(1e21 / (6 * six["N_opt"]), rel=1e-6)
  assert "f(N) = 7·N^1 fitted to flops/tokens" in reports[0]["compute_convention"]
  assert "--flops-per-token 6" in reports[1]["compute_convention"]


def test_isoflop_budget_with_too_few_sizes_exits_2(tmp_path):
  budgets, params, tokens, loss = isoflop_grid([1e18, 1e19], sizes_per_budget=3)
  keep = slice(0, 5)
  path = write_csv(tmp_path / "iso.csv", {"params": params[keep], "tokens": tokens[keep],
                                         "loss": loss[keep], "flops": budgets[keep]})
  result = _run_cli("--data", path, "--approach", "isoflop")
  assert result.returncode == 2
  assert "isoFLOP budget 1e+19 has 2 model sizes; a parabola needs at least 3" in result.stderr


def test_a_fit_process_imports_neither_train_nor_scipy(points_csv, tmp_path):
  """The fitter is independent of the training code, and a `scaling fit` process never pays for
  importing scipy (jaxlib's LAPACK bindings would pull it in)."""
  out = tmp_path / "fit.json"
  script = ("import sys; from scaling.fit import cli; "
            f"code = cli.run(cli.main, ['--data', {points_csv!r}, '--out', {str(out)!r}]); "
            "bad = [m for m in sys.modules if m.startswith(('scaling.train', 'scipy'))]; "
            "assert not bad, bad; sys.exit(code)")
  result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={**os.environ, "SCALING_FIT_CACHE": str(tmp_path / "cache")})
  assert result.returncode == 0, result.stderr
  assert REQUIRED <= set(json.loads(out.read_text()))
  assert os.listdir(tmp_path / "cache")  # the compiled solver was cached for the next run


def test_the_default_bootstrap_resamples_cases_where_run_noise_is_unmeasured(tmp_path, capsys):
  """3 sizes per budget and one run each: no replicates, no residual degrees of freedom. The
  default kind falls back to the case bootstrap and says so; asked for by name, noise is an error."""
  budgets, params, tokens, loss = isoflop_grid(np.geomspace(1e18, 1e21, 4), sizes_per_budget=3,
                                               sigma=0.003)
  path = write_csv(tmp_path / "three.csv", {"params": params, "tokens": tokens, "flops": budgets,
                                            "loss": loss})
  out = tmp_path / "three.json"
  assert cli.main(["--data", path, "--approach", "isoflop", "--bootstrap", "50",
                   "--out", str(out)]) == 0
  report = json.loads(out.read_text())
  assert report["bootstrap"]["kind"].startswith("cases:") and report["bootstrap"]["scale"] == "sd"
  message = "cannot measure the runs' noise"
  assert any(message in w and "--bootstrap-kind cases" in w for w in report["warnings"])
  assert message in capsys.readouterr().err
  with pytest.raises(InputError, match=message):
    cli.main(["--data", path, "--approach", "isoflop", "--bootstrap", "50",
              "--bootstrap-kind", "noise"])


def test_an_isoflop_process_with_bootstrap_never_imports_jax(tmp_path):
  budgets, params, tokens, loss = isoflop_grid(np.geomspace(1e18, 1e21, 4), sigma=0.002)
  path = write_csv(tmp_path / "iso.csv", {"params": params, "tokens": tokens, "loss": loss,
                                         "flops": budgets})
  script = ("import sys; from scaling.fit import cli; "
            f"code = cli.run(cli.main, ['--data', {path!r}, '--approach', 'isoflop', "
            "'--bootstrap', '50', '--compute', '1e22']); "
            "bad = [m for m in sys.modules if m.startswith(('jax', 'scipy'))]; "
            "assert not bad, bad[:3]; sys.exit(code)")
  result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
  assert result.returncode == 0, result.stderr


def test_a_law_registered_in_laws_py_alone_is_fitted_and_drawn(monkeypatch, tmp_path, capsys):
  """Adding a law is one `laws.register` and nothing else: `scaling fit --help` offers it, `--law`
  fits it (its terms checked, its exponents reported) and the contour figure draws its report,
  title formula from the entry. The law: Hoffmann's with one exponent for both terms."""
  from scaling.fit import laws
  from scaling.plots import parametric

  monkeypatch.setattr(laws, "LAWS", dict(laws.LAWS))
  laws.register(laws.Law(
      name="one_exponent", inputs=("N", "D"), theta_names=("a", "b", "e", "alpha"),
      log_loss=lambda t, log_x: laws.logsumexp(t[0] - t[3] * log_x[:, 0],
                                               t[1] - t[3] * log_x[:, 1], t[2]),
      start_grid=((0.0, 5.0, 10.0), (0.0, 5.0, 10.0), (-1.0, 0.0, 1.0), (0.2, 0.5, 1.0)),
      params=lambda t: {"E": np.exp(t[..., 2]), "A": np.exp(t[..., 0]), "B": np.exp(t[..., 1]),
                        "alpha": t[..., 3]},
      exponents=lambda p: (p["alpha"] / (2 * p["alpha"]),) * 2,  # Hoffmann eq. 4 with β = α
      formula="L(N, D) = E + A/N^α + B/D^α, one exponent (a test law)",
      terms=(("A", "alpha", 0), ("B", "alpha", 1))))
  with pytest.raises(SystemExit):
    cli.main(["--help"])
  assert "one_exponent" in capsys.readouterr().out

  rng = np.random.default_rng(0)
  params, tokens = np.exp(rng.uniform(16, 23, 80)), np.exp(rng.uniform(19, 27, 80))
  loss = (1.8 + 400 / params**0.3 + 1500 / tokens**0.3) * np.exp(0.002 * rng.standard_normal(80))
  path = write_csv(tmp_path / "points.csv", {"params": params, "tokens": tokens, "loss": loss,
                                             "flops": 6 * params * tokens})
  out = tmp_path / "fit.json"
  assert cli.main(["--data", path, "--law", "one_exponent", "--compute", "1e21",
                   "--out", str(out)]) == 0
  report = json.loads(out.read_text())
  assert report["law"] == "one_exponent" and list(report["params"]) == ["E", "A", "B", "alpha"]
  assert report["params"]["alpha"] == pytest.approx(0.3, abs=0.01)
  assert report["a"] == report["b"] == 0.5 and report["warnings"] == []
  assert "one_exponent law, parametric fit to 80 points" in capsys.readouterr().out

  figures = parametric.parametric_contours(path, str(tmp_path / "figures"), str(out))
  assert figures and all(os.path.getsize(p) > 10_000 for p in figures)
  with pytest.raises(InputError, match=r"law of \(N, D\) \(chinchilla, kaplan, one_exponent\)"):
    parametric.parametric_contours(path, str(tmp_path / "figures"), {**report, "law": "power"})


def test_a_one_input_law_registered_in_laws_py_alone_is_fitted_and_drawn_as_l_of_n(monkeypatch,
                                                                                  tmp_path):
  """A law of one input needs no plotting code either: a frontier fit of it is drawn by the L(N)
  figure through the law's own function, and `scaling plot` routes its report there."""
  from scaling.fit import laws
  from scaling.plots import figures, model_size  # the L(N) figure's function

  monkeypatch.setattr(laws, "LAWS", dict(laws.LAWS))
  laws.register(laws.Law(
      name="shifted_power", inputs=("x",), theta_names=("a", "log_x0", "alpha"),
      log_loss=lambda t, log_x: t[0] - t[2] * jnp.log(jnp.exp(log_x[:, 0]) + jnp.exp(t[1])),
      start_grid=((0.0, 5.0, 10.0), (10.0, 12.0, 14.0), (0.05, 0.1, 0.3)),
      params=lambda t: {"A": np.exp(t[..., 0]), "x0": np.exp(t[..., 1]), "alpha": t[..., 2]},
      formula="L = A·(x + x0)^-α (a test law)"))
  params = np.geomspace(1e6, 1e9, 12)
  loss = 20.0 * (params + 3e5) ** -0.08
  path = write_csv(tmp_path / "points.csv", {"params_non_embedding": params, "params": params,
                                             "tokens": np.full(12, 1e9), "loss": loss})
  out = tmp_path / "fit.json"
  assert cli.main(["--data", path, "--approach", "frontier", "--law", "shifted_power",
                   "--x", "params", "--out", str(out)]) == 0
  report = json.loads(out.read_text())
  assert report["params"]["alpha"] == pytest.approx(0.08, rel=0.02)
  assert figures.route_reports([str(out)]) == {"model_size": report}
  drawn = model_size(path, str(tmp_path / "figures"), str(out))
  assert drawn and all(os.path.getsize(p) > 10_000 for p in drawn)


def _strict_json(text: str):
  """json.loads that refuses NaN and Infinity, which RFC 8259 JSON does not have."""
  def refuse(constant):
    raise ValueError(f"not RFC 8259 JSON: {constant}")
  return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize("args, match", [
    (["--approach", "isoflop", "--compute", "inf"], "--compute must be positive, got inf"),
    (["--approach", "isoflop", "--compute", "nan"], "--compute must be positive, got nan"),
    (["--compute", "0"], "--compute must be positive, got 0"),
    (["--compute", "1e21", "-5"], "--compute must be positive, got -5"),
    (["--compute", "1e21", "--flops-per-token", "inf"], "--flops-per-token must be positive"),
    (["--huber-delta", "nan"], "--huber-delta must be positive, got nan"),
    (["--huber-delta", "-1"], "--huber-delta must be positive, got -1"),
    (["--approach", "isoflop", "--budget-rtol", "nan"], "--budget-rtol must be a number in [0, 1)"),
    (["--bootstrap", "10", "--seed", "-1"], "--seed must be an integer ≥ 0, got -1"),
    (["--fix", "E=inf"], "--fix E must be a number, got inf"),
    (["--fix", "E=1.69", "E=1.7"], "--fix names E twice (E=1.69 and E=1.7)"),
])
def test_every_number_is_finite_and_in_range_or_one_line(points_csv, args, match, capsys):
  assert cli.run(cli.main, ["--data", points_csv, *args]) == 2
  err = capsys.readouterr().err
  assert err.startswith("error: ") and err.count("\n") == 1 and match in err, err


def test_the_report_is_rfc_8259_json_with_non_finite_values_as_null():
  text = cli.report_json({"params": {"a": 0.5}, "stderr": {"a": float("inf"), "b": float("nan")},
                          "ci95": {"a": [0.1, float("-inf")]}, "warnings": ["kept"]})
  report = _strict_json(text)
  assert report["stderr"] == {"a": None, "b": None} and report["ci95"]["a"] == [0.1, None]
  assert report["warnings"] == ["kept", "stderr.a is inf (written as null)",
                                "stderr.b is nan (written as null)",
                                "ci95.a[1] is -inf (written as null)"]


def _sweep(tmp_path):
  sweep = tmp_path / "sweep"
  for i, size in enumerate(np.geomspace(3e7, 3e9, 7)):
    write_run(sweep / "runs" / f"run{i}", size, list(np.geomspace(1e8, 3e11, 30)))
  write_csv(sweep / "results.csv", {"params": np.geomspace(3e7, 3e9, 7), "tokens": np.full(7, 1e9),
                                    "loss": np.linspace(3, 2.5, 7), "flops": np.full(7, 1e18)})
  (sweep / "plan.json").write_text("{}")
  return sweep


@pytest.mark.parametrize("out", ["DATA", "results.csv", "plan.json", "runs/run0/metrics.jsonl",
                                 "runs/run0/run.json", "runs/run0/status.json",
                                 "runs/run0/checkpoints/10/x.json"])
def test_an_out_that_is_an_input_or_a_file_of_the_sweep_is_refused(tmp_path, out):
  sweep = _sweep(tmp_path)
  data = str(sweep / "results.csv") if out == "DATA" else str(sweep)
  target = data if out == "DATA" else str(sweep / out)
  before = {p: p.read_bytes() for p in sweep.rglob("*") if p.is_file()}
  result = _run_cli("--data", data, "--approach", "envelope", "--out", target)
  assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
  assert result.stdout == "" and f"--out {target}" in result.stderr
  assert {p: p.read_bytes() for p in sweep.rglob("*") if p.is_file()} == before


def test_an_out_beside_a_sweeps_files_is_fine(tmp_path):
  sweep = _sweep(tmp_path)
  out = sweep / "fits" / "envelope.json"
  result = _run_cli("--data", str(sweep), "--approach", "envelope", "--out", str(out))
  assert result.returncode == 0, result.stderr
  assert _strict_json(out.read_text())["approach"] == "envelope"


def test_an_out_that_is_a_directory_is_refused_before_fitting_and_leaves_nothing(points_csv,
                                                                                tmp_path):
  (tmp_path / "reports").mkdir()
  result = _run_cli("--data", points_csv, "--out", str(tmp_path / "reports"))
  assert result.returncode == 2 and result.stdout == ""  # no table: refused before the fit
  assert "is a directory; name a file such as" in result.stderr
  assert sorted(os.listdir(tmp_path)) == ["reports"] and os.listdir(tmp_path / "reports") == []


def test_an_unreachable_bucket_for_out_is_one_line_before_fitting(points_csv, gcs, tmp_path):
  result = _run_cli("--data", points_csv, "--out", "gs://no-such-bucket/fit.json")
  assert result.returncode == 2 and result.stdout == "", result.stderr
  assert result.stderr == "error: --out gs://no-such-bucket/fit.json: bucket gs://no-such-bucket " \
                          "does not exist\n"
  result = _run_cli("--data", points_csv, "--out", f"{gcs}/fit.json",
                    STORAGE_EMULATOR_HOST="http://127.0.0.1:9")  # nobody listens there
  assert result.returncode == 2 and result.stdout == "" and result.stderr.count("\n") == 1
  assert "cannot reach the storage API at http://127.0.0.1:9" in result.stderr


def test_a_one_input_law_says_which_input_x_is(points_csv, capsys):
  assert cli.main(["--data", points_csv, "--law", "power"]) == 0
  assert "inputs: x = params (--x picks params, tokens or flops)" in capsys.readouterr().out
