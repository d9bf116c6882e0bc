import keras
import numpy as np
import pytest
import tensorflow as tf

from pix2color.evaluation import metrics
from pix2color.networks import build_discriminator, build_generator
from pix2color.training import gan


def linear_discriminator(weights):
    """D(L, ab) = sum over pixels of w . [L, a, b]: a 1x1 convolution without bias."""
    lightness = keras.Input((None, None, 1))
    ab = keras.Input((None, None, 2))
    x = keras.layers.Concatenate()([lightness, ab])
    conv = keras.layers.Conv2D(1, 1, use_bias=False)
    model = keras.Model([lightness, ab], conv(x))
    conv.kernel.assign(np.reshape(weights, (1, 1, 3, 1)).astype(np.float32))
    return model


def test_r1_value_and_gradient_match_closed_form():
    w = np.array([0.7, -1.5, 2.0], np.float32)  # weights for L, a, b
    discriminator = linear_discriminator(w)
    batch, height, width, gamma = 3, 5, 4, 0.1
    lightness = tf.random.uniform((batch, height, width, 1))
    real_ab = tf.random.uniform((batch, height, width, 2))
    with tf.GradientTape() as tape:
        penalty, logits = gan.r1_penalty(discriminator, lightness, real_ab, gamma)
    # dD/d ab at every pixel is (w_a, w_b): |grad|^2 = H W (w_a^2 + w_b^2), whatever L's weight.
    expected = gamma / 2 * height * width * (w[1] ** 2 + w[2] ** 2)
    np.testing.assert_allclose(penalty.numpy(), expected, rtol=1e-5)
    (kernel_grad,) = tape.gradient(penalty, discriminator.trainable_variables)
    expected_grad = gamma * height * width * np.array([0.0, w[1], w[2]])
    np.testing.assert_allclose(kernel_grad.numpy().reshape(3), expected_grad, rtol=1e-5, atol=1e-6)
    assert logits.shape == (batch, height, width, 1)


def test_r1_gradient_through_batch_norm_matches_finite_differences():
    """R1 differentiates D twice. Keras' unsynchronized BatchNorm takes its variance with
    tf.nn.moments, whose stop_gradient on the mean is harmless once but drops terms of the
    second derivative (measured: 12% off for a conv kernel before a BN, and a non-zero gradient
    for a bias that BN cancels exactly). Checked per weight tensor in float64, with LeakyReLU
    made linear: its kinks make |dD/d ab|^2 jump, which finite differences cannot cross, while
    BatchNorm keeps D non-linear in its weights."""
    keras.utils.set_random_seed(0)
    keras.config.set_dtype_policy("float64")
    try:
        discriminator = build_discriminator(32, base_filters=8)
    finally:
        keras.config.set_dtype_policy("float32")
    for layer in discriminator.layers:
        if isinstance(layer, keras.layers.LeakyReLU):
            layer.negative_slope = 1.0
    rng = np.random.default_rng(0)
    lightness = tf.constant(rng.uniform(-1, 1, (4, 32, 32, 1)))
    real_ab = tf.constant(rng.uniform(-0.5, 0.5, (4, 32, 32, 2)))
    with tf.GradientTape() as tape:
        penalty, _ = gan.r1_penalty(discriminator, lightness, real_ab, 1.0)
    variables = discriminator.trainable_variables
    gradients = tape.gradient(penalty, variables)
    errors = {}
    for variable, gradient in zip(variables, gradients):
        # Along this tensor's computed gradient g: finite differences give <true gradient, g/|g|>,
        # which equals |g| only if g is right.
        norm = 0.0 if gradient is None else np.linalg.norm(gradient.numpy())
        if norm == 0:  # biases R1 does not depend on (the logits', and here the last BN's beta)
            continue
        start = variable.numpy()
        unit = gradient.numpy() / norm

        def penalty_at(step):
            variable.assign(start + step * unit)
            return float(gan.r1_penalty(discriminator, lightness, real_ab, 1.0)[0])

        numeric = (penalty_at(1e-3) - penalty_at(-1e-3)) / 2e-3
        variable.assign(start)
        errors[variable.path] = abs(norm - numeric) / abs(numeric)
    # Measured: at most 1e-3 (a BatchNorm beta); 0.35 with Keras' unsynchronized BatchNorm.
    assert len(errors) >= 9 and max(errors.values()) < 1e-2, errors


def make_trainer(size=32, discriminator=True, **compile_options):
    generator = build_generator(size, dropout=discriminator)
    trainer = gan.ColorizationGAN(generator, build_discriminator(size) if discriminator else None)
    trainer.compile(
        keras.optimizers.Adam(2e-4, beta_1=0.5),
        keras.optimizers.Adam(2e-4, beta_1=0.5) if discriminator else None,
        **compile_options,
    )
    return trainer


def random_batch(size=32, batch=4, seed=0):
    generator = tf.random.Generator.from_seed(seed)
    return generator.uniform((batch, size, size, 1), -1, 1), generator.uniform((batch, size, size, 2), -0.5, 0.5)


def weights_of(model):
    return [w.numpy().copy() for w in model.trainable_weights]


def changed(before, model):
    return any(not np.allclose(b, a.numpy()) for b, a in zip(before, model.trainable_weights))


def test_train_step_updates_both_networks_and_reports_named_losses():
    trainer = make_trainer()
    g_before, d_before = weights_of(trainer.generator), weights_of(trainer.discriminator)
    dataset = tf.data.Dataset.from_tensors(random_batch()).repeat()
    history = trainer.fit(dataset, steps_per_epoch=2, epochs=1, verbose=0).history
    assert set(history) == set(gan.GAN_LOGS)
    assert all(np.isfinite(values[0]) for values in history.values())
    assert history["r1_penalty"][0] > 0
    assert 0 < history["d_real"][0] < 1 and 0 < history["d_fake"][0] < 1
    assert changed(g_before, trainer.generator) and changed(d_before, trainer.discriminator)
    assert int(trainer.g_optimizer.iterations) == 2 and int(trainer.d_optimizer.iterations) == 2
    expected_total = history["gen_gan_loss"][0] + 100 * history["gen_l1_loss"][0]
    np.testing.assert_allclose(history["gen_total_loss"][0], expected_total, rtol=1e-4)


def test_r1_off_reports_zero_penalty():
    trainer = make_trainer(r1_gamma=0.0)
    history = trainer.fit(tf.data.Dataset.from_tensors(random_batch()).repeat(), steps_per_epoch=1, verbose=0).history
    assert history["r1_penalty"] == [0.0]


def test_lazy_r1_penalises_every_kth_step_with_scaled_gamma():
    lightness, ab = random_batch()
    every = make_trainer(r1_gamma=0.01, r1_every=1)
    lazy = make_trainer(r1_gamma=0.01, r1_every=4)
    lazy.discriminator.set_weights(every.discriminator.get_weights())
    _, full_penalty = every.real_logits_and_r1(lightness, ab)
    for iteration, expected in [(0, 4 * full_penalty), (1, 0.0), (3, 0.0), (4, 4 * full_penalty)]:
        lazy.d_optimizer.iterations.assign(iteration)
        _, penalty = lazy.real_logits_and_r1(lightness, ab)
        np.testing.assert_allclose(penalty.numpy(), np.asarray(expected), rtol=1e-4)
    assert full_penalty > 0


def test_label_smoothing_changes_the_real_target():
    real_logits, fake_logits = tf.fill((2, 3, 3, 1), 8.0), tf.fill((2, 3, 3, 1), -8.0)
    plain, smooth = make_trainer(real_label=1.0), make_trainer(real_label=0.9)
    np.testing.assert_allclose(gan.discriminator_loss(real_logits, fake_logits, plain.real_label), 0.5 * (bce(1.0, 8.0) + bce(0.0, -8.0)), rtol=1e-4)
    np.testing.assert_allclose(gan.discriminator_loss(real_logits, fake_logits, smooth.real_label), 0.5 * (bce(0.9, 8.0) + bce(0.0, -8.0)), rtol=1e-4)


def bce(target, logit):
    """-(t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))), in a form that does not overflow."""
    return np.maximum(logit, 0) - logit * target + np.log1p(np.exp(-np.abs(logit)))


def deterministic_trainer(d_optimizer, real_label=1.0):
    """A trainer whose G has no dropout, so a step can be recomputed outside it."""
    keras.utils.set_random_seed(3)
    trainer = gan.ColorizationGAN(build_generator(32, dropout=False), build_discriminator(32))
    trainer.compile(keras.optimizers.SGD(0.01), d_optimizer, real_label=real_label)
    return trainer


def generator_gan_loss(trainer, lightness, fake_ab, real_label):
    logits = trainer.discriminator([lightness, fake_ab], training=True).numpy()
    return float(np.mean(bce(real_label, logits.astype(np.float64))))


@pytest.mark.parametrize("real_label", [1.0, 0.9])
def test_generator_step_targets_the_real_label_and_sees_the_updated_discriminator(real_label):
    """The reference's one cGANLoss serves both networks: with label smoothing G's target is 0.9
    too. And G's step comes after D's: its loss is that of the updated D."""
    trainer = deterministic_trainer(keras.optimizers.SGD(1.0), real_label)
    lightness, ab = random_batch()
    fake_ab = trainer.generator(lightness, training=True)  # G before the step (BN on batch statistics)
    before = generator_gan_loss(trainer, lightness, fake_ab, real_label)
    logs = trainer.train_step((lightness, ab))
    after = generator_gan_loss(trainer, lightness, fake_ab, real_label)  # D after the step
    np.testing.assert_allclose(float(logs["gen_gan_loss"]), after, rtol=1e-4)
    assert abs(after - before) > 100 * abs(float(logs["gen_gan_loss"]) - after)  # not the loss of the old D
    other_label = 1.9 - real_label  # 0.9 <-> 1.0
    assert abs(generator_gan_loss(trainer, lightness, fake_ab, other_label) - after) > 1e-3


def test_generator_step_leaves_the_discriminator_weights_alone():
    trainer = deterministic_trainer(keras.optimizers.SGD(0.0))  # the D step itself changes nothing
    d_before = weights_of(trainer.discriminator)
    g_before = weights_of(trainer.generator)
    trainer.train_step(random_batch())
    for before, after in zip(d_before, trainer.discriminator.trainable_weights):
        np.testing.assert_array_equal(before, after.numpy())
    assert changed(g_before, trainer.generator)


def test_gan_only_has_no_l1_in_the_generator_loss():
    trainer = make_trainer(lambda_l1=0.0)
    history = trainer.fit(tf.data.Dataset.from_tensors(random_batch()).repeat(), steps_per_epoch=1, verbose=0).history
    np.testing.assert_allclose(history["gen_total_loss"], history["gen_gan_loss"], rtol=1e-6)
    assert history["gen_l1_loss"][0] > 0  # still reported


def test_l1_only_trains_the_generator_alone():
    trainer = make_trainer(discriminator=False)
    before = weights_of(trainer.generator)
    history = trainer.fit(tf.data.Dataset.from_tensors(random_batch()).repeat(), steps_per_epoch=2, verbose=0).history
    assert set(history) == {"gen_l1_loss"}
    assert changed(before, trainer.generator)
    with pytest.raises(ValueError, match="discriminator optimizer"):
        gan.ColorizationGAN(build_generator(32), build_discriminator(32)).compile(
            keras.optimizers.Adam()
        )


def test_validation_reports_losses_and_image_quality():
    trainer = make_trainer()
    lightness, ab = random_batch()
    results = trainer.evaluate(lightness, ab, batch_size=4, verbose=0, return_dict=True)
    for name in ("disc_loss", "gen_gan_loss", "gen_l1_loss", "r1_penalty", "psnr", "ssim"):
        assert np.isfinite(results[name])
    # PSNR/SSIM are those of the deterministic generator output, under the report's protocol.
    fake = trainer.generator(lightness, training=False)
    truth, pred = metrics.to_uint8_values(lightness, ab), metrics.to_uint8_values(lightness, fake)
    np.testing.assert_allclose(results["psnr"], tf.reduce_mean(metrics.psnr(truth, pred)), rtol=1e-4)


def test_psnr_and_ssim_match_skimage_in_both_protocols():
    """Report protocol: piqa's value_range=256 sets PSNR's peak and SSIM's constants; common: 255."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    rng = np.random.default_rng(0)
    truth = rng.integers(0, 256, (2, 48, 48, 3)).astype(np.float32)
    pred = np.clip(truth + rng.normal(0, 20, truth.shape), 0, 255).round().astype(np.float32)
    for peak in (metrics.REPORT_PEAK, metrics.COMMON_PEAK):
        ours_psnr = metrics.psnr(truth, pred, peak).numpy()
        ours_ssim = metrics.ssim(truth, pred, peak).numpy()
        for index in range(2):
            np.testing.assert_allclose(
                ours_psnr[index], peak_signal_noise_ratio(truth[index], pred[index], data_range=peak), rtol=1e-5
            )
            reference = structural_similarity(
                truth[index], pred[index], data_range=peak, channel_axis=-1,
                gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
            )
            np.testing.assert_allclose(ours_ssim[index], reference, atol=2e-3)
        # The separable window is tf.image.ssim's window.
        np.testing.assert_allclose(
            ours_ssim, tf.image.ssim(truth, pred, max_val=peak, filter_size=11, filter_sigma=1.5), atol=1e-5
        )
    both = metrics.ssim_for_peaks(truth, pred, (256.0, 255.0))
    np.testing.assert_allclose(both[1], metrics.ssim(truth, pred, 255.0), rtol=1e-6)
    # The constants matter: the two protocols' SSIMs differ by more than the tolerance above.
    assert np.all(np.abs(metrics.ssim(truth, pred, 256.0).numpy() - metrics.ssim(truth, pred, 255.0).numpy()) > 0)


def test_the_trainer_overrides_no_private_keras_method_but_the_documented_one():
    """A reader of `ColorizationGAN` meets only Keras' public API: neither it nor a pix2color class
    it is built with defines a method named with an underscore that keras.Model has, but the one
    the multi-worker trainer needs, documented where it is (`distribute.MultiWorkerFit`). The
    multi-worker class is built as training builds it, so the mix-in is checked too."""
    from pix2color.training import distribute

    overrides = set()
    for trainer in (gan.ColorizationGAN, distribute.for_multi_worker(gan.ColorizationGAN)):
        for cls in trainer.__mro__:
            if cls.__module__.startswith("pix2color"):
                overrides |= {(cls.__name__, name) for name in vars(cls) if name.startswith("_")
                              and not name.startswith("__") and hasattr(keras.Model, name)}
    assert overrides == {("MultiWorkerFit", "_maybe_symbolic_build")}