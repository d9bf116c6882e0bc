"""Training a colorizer: `run.train(config)` builds the networks, restores a run, fits and saves.

- `run`: one training run, read top-down (build, restore, fit, save); `gan`: the conditional GAN
  (a D step then a G step); `precision`: float32 / bfloat16 networks; `distribute`: replicas,
  workers and TPUs; `callbacks`, `checkpoints`, `stopping`: what happens around `fit`;
  `run_folder`: a run's folder and its files; `best`: the checkpoint worth keeping; `plots`.

The networks themselves are in `pix2color.networks`, the data in `pix2color.data`. This file
imports nothing: `pix2color.config` uses `precision` before TensorFlow starts.
"""
