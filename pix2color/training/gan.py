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

from pix2color.evaluation import metrics as image_metrics
from pix2color.training.distribute import loss_to_differentiate

LOSSES = ("disc_loss", "r1_penalty", "gen_gan_loss", "gen_l1_loss", "gen_total_loss")
GAN_LOGS = LOSSES + ("d_real", "d_fake")  # d_real / d_fake: D's mean probability of "real" on each
L1_ONLY_LOGS = ("gen_l1_loss",)
IMAGE_METRICS = ("psnr", "ssim")
R1_FLOAT16_SCALE = 1024.0


# ---------------------------------------------------------------------------- the losses


def bce_with_logits(target: float, logits: tf.Tensor) -> tf.Tensor:
    """Mean binary cross-entropy of logits against a constant target (PyTorch's BCEWithLogits)."""
    labels = tf.fill(tf.shape(logits), tf.cast(target, logits.dtype))
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits))


def discriminator_loss(real_logits: tf.Tensor, fake_logits: tf.Tensor, real_label: float) -> tf.Tensor:
    """The report's D loss: half the BCE of real (label 1 or 0.9) and generated (label 0) patches."""
    return 0.5 * (bce_with_logits(real_label, real_logits) + bce_with_logits(0.0, fake_logits))


def generator_adversarial_loss(fake_logits: tf.Tensor, real_label: float) -> tf.Tensor:
    """G's non-saturating loss: generated patches scored against the real label (0.9 with label
    smoothing, as the reference code does)."""
    return bce_with_logits(real_label, fake_logits)


def l1_loss(real_ab: tf.Tensor, fake_ab: tf.Tensor) -> tf.Tensor:
    """Mean absolute difference of the ab channels."""
    return tf.reduce_mean(tf.abs(real_ab - fake_ab))


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
    scaled = discriminator.compute_dtype == "float16"
    with tf.GradientTape() as tape:
        tape.watch(real_ab)
        real_logits = discriminator([lightness, real_ab], training=training)
        # In float16 D's backward pass would underflow on these small input gradients: scale
        # them up there, and back down in float32. bfloat16 has float32's range: no scaling.
        logit_sum = tf.reduce_sum(real_logits) * (R1_FLOAT16_SCALE if scaled else 1.0)
    # (N, S, S, 2) in the logits' dtype: float32 under bfloat16 and float16, so that the squares
    # and their sum over S x S x 2 values are taken in float32.
    gradients = tf.cast(tape.gradient(logit_sum, real_ab), real_logits.dtype)
    if scaled:
        gradients = gradients / R1_FLOAT16_SCALE
    squared_norms = tf.reduce_sum(tf.square(gradients), axis=[1, 2, 3])  # (N,)
    return 0.5 * gamma * tf.reduce_mean(squared_norms), real_logits


# ---------------------------------------------------------------------------- the trainer


class ColorizationGAN(keras.Model):
    """pix2pix-style colorizer trained with `fit` on batches of (lightness, ab)."""

    def __init__(self, generator: keras.Model, discriminator: keras.Model | None = None, **kwargs):
        super().__init__(**kwargs)
        self.generator = generator
        self.discriminator = discriminator  # None: "L1 only" (no adversarial loss)
        logged = (GAN_LOGS if discriminator is not None else L1_ONLY_LOGS) + IMAGE_METRICS
        self.running_means = {name: keras.metrics.Mean(name=name) for name in logged}  # over the epoch

    @property
    def metrics(self):
        return list(self.running_means.values())

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
        g_tape = tf.GradientTape()
        with g_tape:  # G's forward pass, once: the D step sees it detached, the G step differentiates it
            fake_ab = self.generator(lightness, training=True)  # (N, S, S, 2)
        d_values = self.discriminator_step(lightness, real_ab, fake_ab)
        g_values = self.generator_step(lightness, real_ab, fake_ab, g_tape)  # against the updated D
        values = {**d_values, **g_values}
        return self.update_metrics({name: values[name] for name in GAN_LOGS}, tf.shape(lightness)[0])

    def discriminator_step(self, lightness, real_ab, fake_ab) -> dict:
        """One D update: real patches against generated ones, plus R1 on the real ab."""
        with tf.GradientTape() as tape:
            real_logits, r1 = self.real_logits_and_r1(lightness, real_ab)
            fake_logits = self.discriminator([lightness, tf.stop_gradient(fake_ab)], training=True)
            disc_loss = discriminator_loss(real_logits, fake_logits, self.real_label)
            loss = loss_to_differentiate(disc_loss + r1, self.d_optimizer)
        variables = self.discriminator.trainable_variables
        self.d_optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return {
            "disc_loss": disc_loss,
            "r1_penalty": r1,
            "d_real": tf.reduce_mean(tf.sigmoid(real_logits)),
            "d_fake": tf.reduce_mean(tf.sigmoid(fake_logits)),
        }

    def generator_step(self, lightness, real_ab, fake_ab, tape: tf.GradientTape) -> dict:
        """One G update; `tape` recorded `fake_ab = G(lightness)` and records the losses too."""
        with tape:
            fake_logits = self.discriminator([lightness, fake_ab], training=True)
            gen_gan_loss = generator_adversarial_loss(fake_logits, self.real_label)
            gen_l1_loss = l1_loss(real_ab, fake_ab)
            gen_total_loss = gen_gan_loss + self.lambda_l1 * gen_l1_loss
            loss = loss_to_differentiate(gen_total_loss, self.g_optimizer)
        variables = self.generator.trainable_variables
        self.g_optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return {"gen_gan_loss": gen_gan_loss, "gen_l1_loss": gen_l1_loss, "gen_total_loss": gen_total_loss}

    def l1_only_step(self, lightness, real_ab):
        """The report's "L1 only" model: G alone, no adversarial loss."""
        with tf.GradientTape() as tape:
            gen_l1_loss = l1_loss(real_ab, self.generator(lightness, training=True))
            loss = loss_to_differentiate(gen_l1_loss, self.g_optimizer)
        variables = self.generator.trainable_variables
        self.g_optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return self.update_metrics({"gen_l1_loss": gen_l1_loss}, tf.shape(lightness)[0])

    def real_logits_and_r1(self, lightness, real_ab):
        """D's logits on the real batch, and the R1 penalty of this D step (0 when off, or lazy
        and not due)."""
        discriminator = self.discriminator

        def without_r1():
            logits = discriminator([lightness, real_ab], training=True)
            return logits, tf.zeros((), logits.dtype)

        def with_r1():
            penalty, logits = r1_penalty(discriminator, lightness, real_ab, self.r1_gamma * self.r1_every)
            return logits, penalty

        if self.r1_gamma <= 0:
            return without_r1()
        if self.r1_every == 1:
            return with_r1()
        due = tf.equal(self.d_optimizer.iterations % self.r1_every, 0)
        return tf.cond(due, with_r1, without_r1)

    def update_metrics(self, values: dict, batch_size: tf.Tensor) -> dict:
        """Add this replica's batch means to the running means, weighted by its batch size, and
        return the logs. A replica can get an empty share of a last, partial validation batch:
        it adds nothing (its means of nothing may be NaN)."""
        weight = tf.cast(batch_size, tf.float32)
        for name, value in values.items():
            value = tf.where(weight > 0, tf.cast(value, tf.float32), 0.0)
            self.running_means[name].update_state(value, sample_weight=weight)
        return {name: self.running_means[name].result() for name in values}

    # ------------------------------------------------------------------ validation

    def test_step(self, data):
        """Measures this replica's share of a validation batch with `validation_values`. On several
        replicas a share of the last, partial batch can be empty: it is skipped (no layer runs on
        an empty batch)."""
        lightness, real_ab = data
        batch_size = tf.shape(lightness)[0]
        values = tf.cond(
            batch_size > 0,
            lambda: {name: tf.cast(value, tf.float32)
                     for name, value in self.validation_values(lightness, real_ab).items()},
            lambda: {name: tf.constant(0.0) for name in self.running_means},
        )
        return self.update_metrics(values, batch_size)

    def validation_values(self, lightness, real_ab) -> dict:
        """The losses on validation data, plus PSNR / SSIM (report protocol).

        G runs deterministically here (BatchNorm moving statistics, no dropout): running it in
        training mode, as the report's evaluation does, would also update the moving
        statistics with validation images.
        """
        fake_ab = self.generator(lightness, training=False)
        values = {"gen_l1_loss": l1_loss(real_ab, fake_ab)}
        if self.discriminator is not None:
            r1, real_logits = r1_penalty(self.discriminator, lightness, real_ab, self.r1_gamma, training=False)
            fake_logits = self.discriminator([lightness, fake_ab], training=False)
            values["disc_loss"] = discriminator_loss(real_logits, fake_logits, self.real_label)
            values["r1_penalty"] = r1
            values["gen_gan_loss"] = generator_adversarial_loss(fake_logits, self.real_label)
            values["gen_total_loss"] = values["gen_gan_loss"] + self.lambda_l1 * values["gen_l1_loss"]
            values["d_real"] = tf.reduce_mean(tf.sigmoid(real_logits))
            values["d_fake"] = tf.reduce_mean(tf.sigmoid(fake_logits))
        rgb_true = image_metrics.to_uint8_values(lightness, real_ab)
        rgb_fake = image_metrics.to_uint8_values(lightness, fake_ab)
        values["psnr"] = tf.reduce_mean(image_metrics.psnr(rgb_true, rgb_fake))
        values["ssim"] = tf.reduce_mean(image_metrics.ssim(rgb_true, rgb_fake))
        return values
