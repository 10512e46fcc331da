"""A model small enough to train in under a minute on a 2-core CPU, with the loss visibly falling.

  scaling train --config configs/tiny.py --workdir /tmp/tiny
"""

from scaling.train.config import defaults


def get_config():
  config = defaults()
  config.model.d_model = 64
  config.model.n_layers = 2
  config.model.n_heads = 4
  config.model.seq_len = 64
  config.batch_size = 16
  config.train_steps = 300
  config.learning_rate = 3e-3
  config.log_every = 10
  config.eval_every = 100
  config.checkpoint_every = 100
  return config
