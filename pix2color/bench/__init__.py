"""Benchmarks that print numbers (tests never time anything).

    python -m pix2color.bench train --image-size 256 --batch-size 4 [--generator resnet18] [--json FILE] [--trace DIR]
    python -m pix2color.bench infer [--model RUN] [--generator resnet18]
    python -m pix2color.bench data
    python -m pix2color.bench evaluate [--model RUN] [--images 168]
    python -m pix2color.bench web [--model RUN]
    python -m pix2color.bench video [--model RUN] [--width 640 --height 360] [--json FILE]

`train` prints seconds per training step for R1 off, R1 every step and lazy R1, with and without XLA,
and for R1 off / every step (XLA off) the step's parts as the reference benchmark times them: G's
forward pass, the D step, the G step.
`--generator resnet18` times the ResNet-18 U-Net too, after the U-Net, in the same process.
Steps run through `fit` on one fixed batch of sample photos repeated, so only the step is
timed, not decoding. "per step" is the median over the timed steps; for lazy R1 the mean over
whole cycles of `--r1-every` steps is printed too, since only one step in k pays for R1.
`video` makes a clip from the sample photos (`bench.clips`: pans, zooms, two cuts), colorizes
it with `--stabilise off` and `on` through the real decode/colorize/encode path, and prints frames
per second (and as a ratio to the network's own rate at the same batch size), flicker (mean |delta
ab| between consecutive output frames after compensating the true camera motion, on pixels whose
true colour did not change) and PSNR against the true colour frames.
"""
