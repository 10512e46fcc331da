"""results.csv: the learning_rate and batch_size columns, and older files read as unknown."""

from scaling.sweep import results


def test_learning_rate_and_batch_round_trip(tmp_path):
  path = str(tmp_path / "results.csv")
  row = {"name": "a", "params": 10, "params_non_embedding": 5, "tokens": 100, "flops": 1e9,
         "flops_kaplan": 1e9, "loss": 2.5, "budget": 1e9, "seed": 0, "bpb": 3.6, "trunk": "",
         "learning_rate": 0.003, "batch_size": 16}
  results.write(path, [row])
  assert results.read(path) == [row]


def test_older_files_read_learning_rate_and_batch_as_unknown(tmp_path):
  path = tmp_path / "results.csv"
  path.write_text("name,params,params_non_embedding,tokens,flops,flops_kaplan,loss,budget,seed\n"
                  "a,10,5,100,1e9,1e9,2.5,1e9,1\n")
  (row,) = results.read(str(path))
  assert row["learning_rate"] is None and row["batch_size"] is None
  assert row["seed"] == 1 and row["trunk"] == "" and row["bpb"] == 0
