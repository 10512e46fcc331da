"""results.csv: every column round-trips; a value a run may not know reads as None, never 0; a
value every row has is an InputError naming the file and line when it is missing."""

import pytest

from scaling.errors import InputError
from scaling.sweep import results

ROW = {"name": "a", "params": 10, "params_non_embedding": 5, "tokens": 100, "flops": 1e9,
       "flops_kaplan": 1e9, "loss": 2.5, "budget": 1e9, "seed": 0, "bpb": 3.6, "trunk": "",
       "learning_rate": 0.003, "batch_size": 16}


def test_learning_rate_and_batch_round_trip(tmp_path):
  path = str(tmp_path / "results.csv")
  results.write(path, [ROW])
  assert results.read(path) == [ROW]


def test_an_unknown_bpb_round_trips_as_none(tmp_path):
  path = str(tmp_path / "results.csv")
  row = {**ROW, "bpb": None, "trunk": "N1e4_trunk"}
  results.write(path, [row])
  assert ",," in (tmp_path / "results.csv").read_text()  # written blank
  assert results.read(path) == [row]


def test_older_files_read_what_they_lack_as_unknown(tmp_path):
  path = tmp_path / "results.csv"
  path.write_text("name,params,params_non_embedding,tokens,flops,flops_kaplan,loss,budget\n"
                  "a,10,5,100,1e9,1e9,2.5,1e9\n")
  (row,) = results.read(str(path))
  assert row["learning_rate"] is None and row["batch_size"] is None and row["bpb"] is None
  assert row["seed"] == 0 and row["trunk"] == ""  # the default seed; trained alone


@pytest.mark.parametrize("body, named", [
    ("a,10,5,100,1e9,1e9,2.5,1e9,1\nb,10,5,100,1e9,1e9,,1e9,1\n", "results.csv line 3: loss is missing"),
    ("a,10,5,100,1e9,1e9,2.5,1e9\n", "results.csv line 2: seed is missing"),  # a short row
    ("a,10,5,1e2,1e9,1e9,2.5,1e9,1\n", "results.csv line 2: tokens '1e2' is not an integer"),
    ("a,10,5,100,1e9,1e9,low,1e9,1\n", "results.csv line 2: loss 'low' is not a number"),
])
def test_a_missing_or_garbled_value_is_an_input_error_naming_file_and_line(tmp_path, body, named):
  path = tmp_path / "results.csv"
  path.write_text("name,params,params_non_embedding,tokens,flops,flops_kaplan,loss,budget,seed\n"
                  + body)
  with pytest.raises(InputError, match=named):
    results.read(str(path))


def test_a_file_without_a_column_every_row_has_is_an_input_error(tmp_path):
  path = tmp_path / "results.csv"
  path.write_text("name,params,tokens,loss\na,10,100,2.5\n")
  with pytest.raises(InputError, match="missing columns 'params_non_embedding', 'flops'"):
    results.read(str(path))


def test_write_refuses_a_row_read_would_refuse(tmp_path):
  with pytest.raises(ValueError, match="'a' has no loss"):
    results.write(str(tmp_path / "results.csv"), [{**ROW, "loss": None}])
  assert not (tmp_path / "results.csv").exists()
