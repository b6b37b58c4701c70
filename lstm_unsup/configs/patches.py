"""Composite model on 32x32 natural-image patches (Table 2, right column:
paper 210.7 squared loss per frame). Without video files this trains on the
labelled stand-in (scikit-learn's sample photos under synthetic motion);
point --config.data.patch_source at UCF-101 frames for the real thing.

  python -m lstm_unsup.main --config=lstm_unsup/configs/patches.py:cpu \
      --workdir=runs/patches_cpu
"""

from lstm_unsup.configs import default


def get_config(scale: str = "cpu"):
  config = default.get_config(scale)
  default.use_patches(config)
  return config
