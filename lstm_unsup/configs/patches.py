"""Composite model on 32x32 natural-image patches (Table 2, right column:
paper 210.7 squared loss per frame on UCF-101). Without video files this
trains on the stand-in (scikit-learn's sample photos under synthetic
motion); point --config.data.patch_source at video frames for real video.

  python -m lstm_unsup.main --config=lstm_unsup/configs/patches.py:cpu \
      --workdir=runs/patches_cpu

Measured on 2 CPU cores as the Table 2 patches cell on the stand-in (2 x 512
units, batch 16, 4,000 steps; `python -m experiments.table2 --scale=cpu
--columns=patches --rows=composite`): about 16.5 minutes per seed, future
squared loss 183.1 ± 19.6 per frame over seeds 0 and 1. Not comparable with
the paper's number: other data.
"""

from lstm_unsup.configs import default


def get_config(scale: str = "cpu"):
  config = default.get_config(scale)
  default.use_patches(config)
  return config
