"""The conditional GAN trainer: one `keras.Model` holding the generator G and discriminator D.

Driven by `fit`; each batch does one D step then one G step (the report's alternation):

    D:  disc_loss      = 0.5 * (BCE(D(L, ab), real_label) + BCE(D(L, G(L)), 0))
        r1_penalty     = gamma / 2 * mean_batch(sum |dD(L, ab) / d ab|^2)      (real ab only)
    G:  gen_gan_loss   = BCE(D(L, G(L)), real_label)                          (non-saturating)
        gen_l1_loss    = mean |ab - G(L)|
        gen_total_loss = gen_gan_loss + lambda_l1 * gen_l1_loss

real_label is 1, or 0.9 with label smoothing: the report's code uses one loss object, with
the smoothed label, for both networks. G's forward pass is computed once and shared by both
steps, and D's forward pass on the real batch is shared by its loss and R1, as in the
reference code. Without a discriminator the trainer is the report's "L1 only" model.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from pix2color import metrics as image_metrics
from pix2color.distribute import ReplicaAwareModel

GAN_LOGS = ("disc_loss", "r1_penalty", "gen_gan_loss", "gen_l1_loss", "gen_total_loss", "d_real", "d_fake")
L1_ONLY_LOGS = ("gen_l1_loss",)
IMAGE_METRICS = ("psnr", "ssim")
R1_MIXED_PRECISION_SCALE = 1024.0


def bce_with_logits(target: float, logits: tf.Tensor) -> tf.Tensor:
    """Mean binary cross-entropy of logits against a constant target (PyTorch's BCEWithLogits)."""
    labels = tf.fill(tf.shape(logits), tf.cast(target, logits.dtype))
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits))


def r1_penalty(
    discriminator: keras.Model,
    lightness: tf.Tensor,
    real_ab: tf.Tensor,
    gamma: float,
    training: bool = True,
) -> tuple[tf.Tensor, tf.Tensor]:
    """R1 (Mescheder et al. 2018) on the real ab only: returns (penalty, D's real logits).

    Called under an outer tape, the penalty is differentiable w.r.t. D's weights (double
    backprop). The gradient is of the sum of D's patch logits, as in the reference code.
    """
    mixed = discriminator.compute_dtype == "float16"
    with tf.GradientTape() as tape:
        tape.watch(real_ab)
        real_logits = discriminator([lightness, real_ab], training=training)
        # Under mixed precision D's backward pass runs in float16, where these small input
        # gradients would underflow: scale them up there, and back down in float32.
        logit_sum = tf.reduce_sum(real_logits) * (R1_MIXED_PRECISION_SCALE if mixed else 1.0)
    gradients = tf.cast(tape.gradient(logit_sum, real_ab), real_logits.dtype)  # (N, S, S, 2); float32 if mixed
    if mixed:
        gradients = gradients / R1_MIXED_PRECISION_SCALE
    squared_norms = tf.reduce_sum(tf.square(gradients), axis=[1, 2, 3])  # (N,)
    return 0.5 * gamma * tf.reduce_mean(squared_norms), real_logits


class ColorizationGAN(ReplicaAwareModel):
    """pix2pix-style colorizer trained with `fit` on batches of (lightness, ab)."""

    def __init__(self, generator: keras.Model, discriminator: keras.Model | None = None, **kwargs):
        logged = GAN_LOGS if discriminator is not None else L1_ONLY_LOGS
        super().__init__(logged + IMAGE_METRICS, **kwargs)
        self.generator = generator
        self.discriminator = discriminator  # None: "L1 only" (no adversarial loss)

    def compile(
        self,
        g_optimizer: keras.optimizers.Optimizer,
        d_optimizer: keras.optimizers.Optimizer | None = None,
        lambda_l1: float = 100.0,
        r1_gamma: float = 0.001,
        r1_every: int = 1,
        real_label: float = 1.0,
        **kwargs,
    ):
        """Set the optimizers and the loss options.

        r1_gamma: R1 weight (0 = off). r1_every: lazy R1 (StyleGAN2): penalise only every k-th D
        step, with weight gamma * k, so the expected penalty is unchanged. real_label: the
        target of real patches for D and of generated patches for G; 0.9 for label smoothing.
        """
        super().compile(**kwargs)
        if self.discriminator is not None and d_optimizer is None:
            raise ValueError("a GAN needs a discriminator optimizer (d_optimizer)")
        if r1_every < 1:
            raise ValueError(f"r1_every must be >= 1 (got {r1_every})")
        self.g_optimizer = g_optimizer
        self.d_optimizer = d_optimizer
        self.lambda_l1 = float(lambda_l1)
        self.r1_gamma = float(r1_gamma)
        self.r1_every = int(r1_every)
        self.real_label = float(real_label)
        # Build the optimizer slots now, so a checkpoint can restore them before training.
        g_optimizer.build(self.generator.trainable_variables)
        if d_optimizer is not None:
            d_optimizer.build(self.discriminator.trainable_variables)

    def call(self, lightness, training=False):
        return self.generator(lightness, training=training)

    # ------------------------------------------------------------------ training

    def train_step(self, data):
        lightness, real_ab = data  # (N, S, S, 1), (N, S, S, 2)
        if self.discriminator is None:
            return self.l1_only_step(lightness, real_ab)
        generator, discriminator = self.generator, self.discriminator

        g_tape = tf.GradientTape()
        with g_tape:  # G's forward pass, once: the D step sees it detached, the G step differentiates it
            fake_ab = generator(lightness, training=True)  # (N, S, S, 2)

        # D step: real patches vs generated ones, plus R1 on the real ab.
        with tf.GradientTape() as d_tape:
            real_logits, r1 = self.real_logits_and_r1(lightness, real_ab)
            fake_logits = discriminator([lightness, tf.stop_gradient(fake_ab)], training=True)
            disc_loss = self.disc_loss(real_logits, fake_logits)
            d_scaled = self.scale_loss(disc_loss + r1, self.d_optimizer)
        d_grads = d_tape.gradient(d_scaled, discriminator.trainable_variables)
        self.d_optimizer.apply_gradients(zip(d_grads, discriminator.trainable_variables))

        # G step, against the updated D.
        with g_tape:
            gen_gan_loss, gen_l1_loss, gen_total_loss = self.generator_losses(lightness, real_ab, fake_ab)
            g_scaled = self.scale_loss(gen_total_loss, self.g_optimizer)
        g_grads = g_tape.gradient(g_scaled, generator.trainable_variables)
        self.g_optimizer.apply_gradients(zip(g_grads, generator.trainable_variables))

        return self.update_metrics({
            "disc_loss": disc_loss,
            "r1_penalty": r1,
            "gen_gan_loss": gen_gan_loss,
            "gen_l1_loss": gen_l1_loss,
            "gen_total_loss": gen_total_loss,
            "d_real": tf.reduce_mean(tf.sigmoid(real_logits)),
            "d_fake": tf.reduce_mean(tf.sigmoid(fake_logits)),
        }, tf.shape(lightness)[0])

    def l1_only_step(self, lightness, real_ab):
        """The report's "L1 only" model: G alone, no adversarial loss."""
        with tf.GradientTape() as tape:
            fake_ab = self.generator(lightness, training=True)
            gen_l1_loss = tf.reduce_mean(tf.abs(real_ab - fake_ab))
            scaled = self.scale_loss(gen_l1_loss, self.g_optimizer)
        grads = tape.gradient(scaled, self.generator.trainable_variables)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_variables))
        return self.update_metrics({"gen_l1_loss": gen_l1_loss}, tf.shape(lightness)[0])

    def generator_losses(self, lightness, real_ab, fake_ab):
        """G's adversarial loss against D (target: the real label, 0.9 with label smoothing, as the
        reference), its L1 loss, and their weighted sum."""
        gen_gan_loss = bce_with_logits(self.real_label, self.discriminator([lightness, fake_ab], training=True))
        gen_l1_loss = tf.reduce_mean(tf.abs(real_ab - fake_ab))
        return gen_gan_loss, gen_l1_loss, gen_gan_loss + self.lambda_l1 * gen_l1_loss

    def disc_loss(self, real_logits, fake_logits):
        """The report's D loss: half the BCE of real (label 1 or 0.9) and fake (label 0) patches."""
        return 0.5 * (bce_with_logits(self.real_label, real_logits) + bce_with_logits(0.0, fake_logits))

    def real_logits_and_r1(self, lightness, real_ab):
        """D's logits on the real batch, and the R1 penalty of this D step (0 when off or lazy
        and not due)."""
        discriminator = self.discriminator

        def without_r1():
            logits = discriminator([lightness, real_ab], training=True)
            return logits, tf.zeros((), logits.dtype)

        if self.r1_gamma <= 0:
            return without_r1()
        if self.r1_every == 1:
            penalty, real_logits = r1_penalty(discriminator, lightness, real_ab, self.r1_gamma)
            return real_logits, penalty

        def with_r1():
            penalty, logits = r1_penalty(discriminator, lightness, real_ab, self.r1_gamma * self.r1_every)
            return logits, penalty

        due = tf.equal(self.d_optimizer.iterations % self.r1_every, 0)
        return tf.cond(due, with_r1, without_r1)

    # ------------------------------------------------------------------ validation

    def validation_values(self, lightness, real_ab) -> dict:
        """The losses on validation data, plus PSNR / SSIM (report protocol); run by `test_step`.

        G runs deterministically here (BatchNorm moving statistics, no dropout): running it in
        training mode, as the report's evaluation does, would also update the moving
        statistics with validation images.
        """
        fake_ab = self.generator(lightness, training=False)
        values = {"gen_l1_loss": tf.reduce_mean(tf.abs(real_ab - fake_ab))}
        if self.discriminator is not None:
            values["r1_penalty"], real_logits = r1_penalty(
                self.discriminator, lightness, real_ab, self.r1_gamma, training=False
            )
            fake_logits = self.discriminator([lightness, fake_ab], training=False)
            values["disc_loss"] = self.disc_loss(real_logits, fake_logits)
            values["gen_gan_loss"] = bce_with_logits(self.real_label, fake_logits)
            values["gen_total_loss"] = values["gen_gan_loss"] + self.lambda_l1 * values["gen_l1_loss"]
            values["d_real"] = tf.reduce_mean(tf.sigmoid(real_logits))
            values["d_fake"] = tf.reduce_mean(tf.sigmoid(fake_logits))
        rgb_true = image_metrics.to_uint8_values(lightness, real_ab)
        rgb_fake = image_metrics.to_uint8_values(lightness, fake_ab)
        values["psnr"] = tf.reduce_mean(image_metrics.psnr(rgb_true, rgb_fake))
        values["ssim"] = tf.reduce_mean(image_metrics.ssim(rgb_true, rgb_fake))
        return values
