"""One training step of the report's own PyTorch code, for tests/training/test_reference_step.py.

Run with an interpreter that has torch (never a dependency of pix2color) on the reference
snapshot (github.com/Julien-Gustin/Image-Colorization, unpacked):

    python reference_step_torch.py REFERENCE_CODE BATCH.npz OUT.npz GAMMA [float32|float64]

It builds the reference's `UNet(1, 2, stochastic=False)` and `PatchGAN(3)`, initialises them
with the reference's `init_weights` (in float32, then converted to the requested precision), and
runs the body of `GanTrain._step` with the reference's
own methods (`_discriminator_step` with R1, then `_generator_step`). OUT.npz holds, under
pix2color's layer names and in Keras layouts: the initial weights (`init/...`), the gradients
of the D step (`d_grad/...`), D's weights after its Adam update (`d_after/...`), the gradients
of the G step (`g_grad/...`), the generated ab and the losses.
Nothing of the reference is copied here; it is imported from REFERENCE_CODE.
"""

import sys
import types

import numpy as np


def stub_unused_helpers() -> None:
    """trainer.py imports the evaluation (piqa) and plotting (matplotlib, torchvision) helpers at
    import time; the step never uses them, so they are replaced by empty modules."""
    evaluation = types.ModuleType("python.eval.evaluation")
    evaluation.Evalutation = None
    sys.modules["python.eval.evaluation"] = evaluation
    sys.modules["python.utils.images"] = types.ModuleType("python.utils.images")


def keras_layout(weight) -> np.ndarray:
    """torch Conv2d (out, in, kh, kw) / ConvTranspose2d (in, out, kh, kw) -> Keras
    Conv2D (kh, kw, in, out) / Conv2DTranspose (kh, kw, out, in): the same permutation."""
    value = weight.detach().cpu().numpy().copy()  # a copy: the optimizer updates the tensor in place
    return value.transpose(2, 3, 1, 0) if value.ndim == 4 else value


def named_tensors(generator, discriminator, torch):
    """pix2color name -> torch parameter or buffer, for both networks."""
    found = {}

    def add_conv(name, conv):
        found[f"{name}/kernel"] = conv.weight
        if conv.bias is not None:
            found[f"{name}/bias"] = conv.bias

    def add_bn(name, bn):
        found.update({f"{name}/gamma": bn.weight, f"{name}/beta": bn.bias,
                      f"{name}/moving_mean": bn.running_mean, f"{name}/moving_variance": bn.running_var})

    module, level = generator.model[0], 0  # the outermost UNetModule is level 0
    while module is not None:
        for layer in module.down.down:
            if isinstance(layer, torch.nn.Conv2d):
                add_conv(f"down{level}_conv", layer)
            elif isinstance(layer, torch.nn.BatchNorm2d):
                add_bn(f"down{level}_bn", layer)
        for layer in module.up.up:
            if isinstance(layer, torch.nn.ConvTranspose2d):
                add_conv(f"up{level}_convt", layer)
            elif isinstance(layer, torch.nn.BatchNorm2d):
                add_bn(f"up{level}_bn", layer)
        module, level = module.inner_module, level + 1

    convs = [layer for layer in discriminator.model if isinstance(layer, torch.nn.Conv2d)]
    bns = [layer for layer in discriminator.model if isinstance(layer, torch.nn.BatchNorm2d)]
    for index, conv in enumerate(convs):
        add_conv("logits" if index == len(convs) - 1 else f"conv{index}", conv)
    for index, bn in enumerate(bns, start=1):
        add_bn(f"bn{index}", bn)
    return found


def main(reference_code: str, batch_file: str, out_file: str, gamma: float, dtype: str = "float32") -> None:
    sys.path.insert(0, reference_code)
    stub_unused_helpers()
    import torch
    from python.models.discriminator import PatchGAN
    from python.models.generator import UNet
    from python.models.utils import init_weights
    from python.train.trainer import GanTrain

    torch.manual_seed(0)
    torch.set_num_threads(2)
    generator, discriminator = UNet(1, 2, stochastic=False), PatchGAN(3)
    generator.apply(init_weights)
    discriminator.apply(init_weights)
    if dtype == "float64":
        generator, discriminator = generator.double(), discriminator.double()
        torch.set_default_dtype(torch.float64)  # before GanTrain makes its label tensors
    tensors = named_tensors(generator, discriminator, torch)
    results = {f"init/{name}": keras_layout(value) for name, value in tensors.items()}

    batch = np.load(batch_file)
    lightness = torch.from_numpy(batch["lightness"].transpose(0, 3, 1, 2).astype(dtype))  # NHWC -> NCHW
    real_ab = torch.from_numpy(batch["ab"].transpose(0, 3, 1, 2).astype(dtype))
    trainer = GanTrain(generator, discriminator, None, None, reg_R1=True, gamma_2=gamma)
    generator.train()
    discriminator.train()

    fake_ab = generator(lightness)  # as GanTrain.train, then the body of GanTrain._step:
    trainer._set_requires_grad(trainer.discriminator, True)
    d_total, r1, d_gan = trainer._discriminator_step(lightness, real_ab, fake_ab.detach())
    d_parameters = {name: value for name, value in tensors.items()
                    if name.startswith(("conv", "bn", "logits")) and value.grad is not None}
    results.update({f"d_grad/{name}": keras_layout(value.grad) for name, value in d_parameters.items()})
    results.update({f"d_after/{name}": keras_layout(value) for name, value in d_parameters.items()})
    trainer._set_requires_grad(trainer.discriminator, False)
    g_total, g_l1, g_gan = trainer._generator_step(lightness, real_ab, fake_ab)
    results.update({f"g_grad/{name}": keras_layout(value.grad) for name, value in tensors.items()
                    if name.startswith(("down", "up")) and value.grad is not None})

    results["fake_ab"] = fake_ab.detach().numpy().transpose(0, 2, 3, 1)
    losses = {"disc_total": d_total, "r1_penalty": r1, "disc_loss": d_gan,
              "gen_total_loss": g_total, "gen_l1_loss": g_l1, "gen_gan_loss": g_gan}
    results.update({f"loss/{name}": np.float64(float(torch.as_tensor(value).detach())) for name, value in losses.items()})
    np.savez(out_file, **results)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), *sys.argv[5:])
