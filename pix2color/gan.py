"""The conditional GAN trainer: one `keras.Model` holding the generator G and discriminator D.

Driven by `fit`; each batch does one D step then one G step (the report's alternation):

    D:  disc_loss   = 0.5 * (BCE(D(L, ab), real_label) + BCE(D(L, G(L)), 0))
        r1_penalty  = gamma / 2 * mean_batch(sum |dD(L, ab) / d ab|^2)      (real ab only)
    G:  gen_gan_loss = BCE(D(L, G(L)), 1)                                  (non-saturating)
        gen_l1_loss  = mean |ab - G(L)|
        gen_total_loss = gen_gan_loss + lambda_l1 * gen_l1_loss

G's forward pass is computed once and shared by both steps (the reference code does the
same), and D's forward pass on the real batch is shared by its loss and the R1 penalty.
Without a discriminator the trainer is the report's "L1 only" model.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from pix2color import metrics as image_metrics

TRAIN_METRICS_GAN = ("disc_loss", "r1_penalty", "gen_gan_loss", "gen_l1_loss", "gen_total_loss", "d_real", "d_fake")
TRAIN_METRICS_L1 = ("gen_l1_loss",)
IMAGE_METRICS = ("psnr", "ssim")
R1_MIXED_PRECISION_SCALE = 1024.0


def is_multi_worker(strategy: tf.distribute.Strategy) -> bool:
    """True under MultiWorkerMirroredStrategy with several workers (Keras' own test for it)."""
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and strategy.extended._in_multi_worker_mode()


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
    gradients = tf.cast(tape.gradient(logit_sum, real_ab), tf.float32)  # (N, S, S, 2)
    if mixed:
        gradients = gradients / R1_MIXED_PRECISION_SCALE
    squared_norms = tf.reduce_sum(tf.square(gradients), axis=[1, 2, 3])  # (N,)
    return 0.5 * gamma * tf.reduce_mean(squared_norms), real_logits


class ColorizationGAN(keras.Model):
    """pix2pix-style colorizer trained with `fit` on batches of (lightness, ab)."""

    def __init__(self, generator: keras.Model, discriminator: keras.Model | None = None, **kwargs):
        super().__init__(**kwargs)
        self.generator = generator
        self.discriminator = discriminator  # None: "L1 only" (no adversarial loss)
        names = TRAIN_METRICS_GAN if discriminator is not None else TRAIN_METRICS_L1
        self._train_metric_names = names
        self._trackers = {name: keras.metrics.Mean(name=name) for name in names + IMAGE_METRICS}

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
        step, with weight gamma * k, so the expected penalty is unchanged. real_label: 0.9 for
        one-sided label smoothing.
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

    @property
    def metrics(self):
        return list(self._trackers.values())

    def call(self, lightness, training=False):
        return self.generator(lightness, training=training)

    def _update(self, values: dict, batch_size: tf.Tensor) -> dict:
        """Add this replica's batch means to the running means, weighted by its batch size (a
        replica can get an empty share of a last, partial validation batch: it adds nothing)."""
        weight = tf.cast(batch_size, tf.float32)
        for name, value in values.items():
            value = tf.where(weight > 0, tf.cast(value, tf.float32), 0.0)
            self._trackers[name].update_state(value, sample_weight=weight)
        results = {name: self._trackers[name].result() for name in values}
        if is_multi_worker(self.distribute_strategy):
            # Keras averages logs across workers along axis 0, which scalars do not have.
            results = {name: tf.reshape(value, [1]) for name, value in results.items()}
        return results

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras 3.15 builds the model here from a batch it reduces across replicas in eager mode,
        # which fails with several workers ("Attempt to convert a value (PerReplica ...)",
        # keras-team/keras#20585). G, D, the optimizers and the metrics are built before `fit`.
        if not is_multi_worker(self.distribute_strategy):
            super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    # ------------------------------------------------------------------ training

    @staticmethod
    def _for_gradients(loss, optimizer):
        """The loss to differentiate: divided by the number of replicas (their gradients are
        summed, so the update is that of the global batch mean) and, under mixed precision,
        multiplied by the optimizer's loss scale (which `apply_gradients` divides out)."""
        loss = loss / tf.distribute.get_strategy().num_replicas_in_sync
        if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
            loss = optimizer.scale_loss(loss)
        return loss

    def _disc_loss(self, real_logits, fake_logits):
        """The report's D loss: half the BCE of real (label 1 or 0.9) and fake (label 0) patches."""
        return 0.5 * (bce_with_logits(self.real_label, real_logits) + bce_with_logits(0.0, fake_logits))

    def _real_logits_and_r1(self, lightness, real_ab):
        """D's real logits and the (possibly lazy) R1 penalty for this D step."""
        discriminator = self.discriminator
        if self.r1_gamma <= 0:
            return discriminator([lightness, real_ab], training=True), tf.constant(0.0)
        if self.r1_every == 1:
            penalty, real_logits = r1_penalty(discriminator, lightness, real_ab, self.r1_gamma)
            return real_logits, penalty

        def with_r1():
            penalty, logits = r1_penalty(discriminator, lightness, real_ab, self.r1_gamma * self.r1_every)
            return logits, penalty

        def without_r1():
            return discriminator([lightness, real_ab], training=True), tf.constant(0.0)

        due = tf.equal(self.d_optimizer.iterations % self.r1_every, 0)
        return tf.cond(due, with_r1, without_r1)

    def train_step(self, data):
        lightness, real_ab = data  # (N, S, S, 1), (N, S, S, 2)
        if self.discriminator is None:
            return self._l1_only_step(lightness, real_ab)
        generator, discriminator = self.generator, self.discriminator

        with tf.GradientTape() as g_tape:
            fake_ab = generator(lightness, training=True)  # one forward pass for both steps

            # --- D step: real vs (detached) fake, plus R1 on the real batch.
            with g_tape.stop_recording():
                with tf.GradientTape() as d_tape:
                    real_logits, r1 = self._real_logits_and_r1(lightness, real_ab)
                    fake_logits = discriminator([lightness, tf.stop_gradient(fake_ab)], training=True)
                    disc_loss = self._disc_loss(real_logits, fake_logits)
                    disc_total = self._for_gradients(disc_loss + r1, self.d_optimizer)
                d_grads = d_tape.gradient(disc_total, discriminator.trainable_variables)
                self.d_optimizer.apply_gradients(zip(d_grads, discriminator.trainable_variables))

            # --- G step against the updated D.
            gen_logits = discriminator([lightness, fake_ab], training=True)
            gen_gan_loss = bce_with_logits(1.0, gen_logits)
            gen_l1_loss = tf.reduce_mean(tf.abs(real_ab - fake_ab))
            gen_total_loss = gen_gan_loss + self.lambda_l1 * gen_l1_loss
            scaled_gen_loss = self._for_gradients(gen_total_loss, self.g_optimizer)
        g_grads = g_tape.gradient(scaled_gen_loss, generator.trainable_variables)
        self.g_optimizer.apply_gradients(zip(g_grads, generator.trainable_variables))

        return self._update({
            "disc_loss": disc_loss,
            "r1_penalty": r1,
            "gen_gan_loss": gen_gan_loss,
            "gen_l1_loss": gen_l1_loss,
            "gen_total_loss": gen_total_loss,
            "d_real": tf.reduce_mean(tf.sigmoid(real_logits)),
            "d_fake": tf.reduce_mean(tf.sigmoid(fake_logits)),
        }, tf.shape(lightness)[0])

    def _l1_only_step(self, lightness, real_ab):
        with tf.GradientTape() as tape:
            fake_ab = self.generator(lightness, training=True)
            gen_l1_loss = tf.reduce_mean(tf.abs(real_ab - fake_ab))
            scaled_loss = self._for_gradients(gen_l1_loss, self.g_optimizer)
        grads = tape.gradient(scaled_loss, self.generator.trainable_variables)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_variables))
        return self._update({"gen_l1_loss": gen_l1_loss}, tf.shape(lightness)[0])

    # ------------------------------------------------------------------ validation

    def test_step(self, data):
        """Same losses on validation data, plus PSNR / SSIM (report protocol).

        G runs deterministically here (BatchNorm moving statistics, no dropout): running it in
        training mode, as the report's evaluation does, would also update the moving
        statistics with validation images.
        """
        lightness, real_ab = data
        batch_size = tf.shape(lightness)[0]
        # On several replicas a replica's share of the last, partial batch can be empty.
        values = tf.cond(
            batch_size > 0,
            lambda: self._validation_values(lightness, real_ab),
            lambda: {name: tf.constant(0.0) for name in self._trackers},
        )
        return self._update(values, batch_size)

    def _validation_values(self, lightness, real_ab) -> dict:
        fake_ab = self.generator(lightness, training=False)
        values = {"gen_l1_loss": tf.reduce_mean(tf.abs(real_ab - fake_ab))}
        if self.discriminator is not None:
            values["r1_penalty"], real_logits = r1_penalty(
                self.discriminator, lightness, real_ab, self.r1_gamma, training=False
            )
            fake_logits = self.discriminator([lightness, fake_ab], training=False)
            values["disc_loss"] = self._disc_loss(real_logits, fake_logits)
            values["gen_gan_loss"] = bce_with_logits(1.0, fake_logits)
            values["gen_total_loss"] = values["gen_gan_loss"] + self.lambda_l1 * values["gen_l1_loss"]
            values["d_real"] = tf.reduce_mean(tf.sigmoid(real_logits))
            values["d_fake"] = tf.reduce_mean(tf.sigmoid(fake_logits))
        rgb_true = image_metrics.to_uint8_values(lightness, real_ab)
        rgb_fake = image_metrics.to_uint8_values(lightness, fake_ab)
        values["psnr"] = tf.reduce_mean(image_metrics.psnr(rgb_true, rgb_fake))
        values["ssim"] = tf.reduce_mean(image_metrics.ssim(rgb_true, rgb_fake))
        return {name: tf.cast(value, tf.float32) for name, value in values.items()}
