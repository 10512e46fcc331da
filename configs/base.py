"""Every key `scaling train` reads, with its default: `scaling.train.config.defaults()`.

Each key's meaning is documented beside its default in scaling/train/config.py (so an installed
package carries it too). Start a new config from this file and override any key on the command line:

  scaling train --config configs/base.py --workdir DIR --config.model.d_model=128 --config.train_steps=500
"""

from scaling.train.config import defaults as get_config  # noqa: F401
