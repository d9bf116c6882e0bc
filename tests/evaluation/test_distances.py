"""FID and KID against what they must be: closed forms, SciPy's matrix square root, no bias."""

import numpy as np
import pytest
from scipy import linalg

from pix2color.evaluation import distances


def random_covariance(rng, dimensions: int) -> np.ndarray:
    square = rng.normal(size=(dimensions, dimensions))
    return square @ square.T / dimensions + 0.1 * np.eye(dimensions)


def test_the_frechet_distance_of_commuting_gaussians_is_its_closed_form():
    """With S_a = Q diag(a) Q' and S_b = Q diag(b) Q': |mu_a - mu_b|^2 + sum (sqrt a - sqrt b)^2."""
    rng = np.random.default_rng(0)
    dimensions = 12
    rotation, _ = np.linalg.qr(rng.normal(size=(dimensions, dimensions)))
    a, b = rng.uniform(0.1, 3, dimensions), rng.uniform(0.1, 3, dimensions)
    mean_a, mean_b = rng.normal(size=dimensions), rng.normal(size=dimensions)
    closed_form = np.sum((mean_a - mean_b) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    found = distances.frechet_distance_of_gaussians(mean_a, rotation @ np.diag(a) @ rotation.T,
                                                    mean_b, rotation @ np.diag(b) @ rotation.T)
    assert found == pytest.approx(closed_form, abs=1e-6)
    assert distances.frechet_distance_of_gaussians(mean_a, np.diag(a), mean_a, np.diag(a)) == pytest.approx(0, abs=1e-9)


def test_the_frechet_distance_agrees_with_scipy_s_matrix_square_root():
    """Any two covariances (they need not commute): Tr(S_a + S_b - 2 sqrtm(S_a S_b)) by SciPy."""
    rng = np.random.default_rng(1)
    for dimensions in (3, 30):
        covariance_a, covariance_b = random_covariance(rng, dimensions), random_covariance(rng, dimensions)
        mean_a, mean_b = rng.normal(size=dimensions), rng.normal(size=dimensions)
        root = linalg.sqrtm(covariance_a @ covariance_b)
        expected = (np.sum((mean_a - mean_b) ** 2) + np.trace(covariance_a) + np.trace(covariance_b)
                    - 2 * np.trace(root).real)
        assert distances.frechet_distance_of_gaussians(mean_a, covariance_a, mean_b, covariance_b) == pytest.approx(
            expected, abs=1e-6)


def test_the_frechet_distance_of_fewer_images_than_dimensions_is_real_and_zero_for_the_same_set():
    """13 images of 2048 features: singular covariances, where sqrtm of their product is ill-posed."""
    rng = np.random.default_rng(2)
    features = rng.normal(size=(13, 2048))
    assert distances.frechet_distance(features, features) == pytest.approx(0, abs=1e-7)
    other = distances.frechet_distance(features, rng.normal(size=(13, 2048)) + 0.5)
    assert np.isfinite(other) and other > 0
    with pytest.raises(ValueError, match="2 images or more"):
        distances.frechet_distance(features[:1], features)


def test_both_ways_to_the_trace_agree():
    """From the features (fewer images than dimensions) and from their Gaussians (more): equal."""
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(25, 30)), rng.normal(size=(28, 30)) * 1.3 + 0.2
    from_features = distances.frechet_distance(a, b)
    from_gaussians = distances.frechet_distance_of_gaussians(*distances.gaussian_of(a), *distances.gaussian_of(b))
    assert from_features == pytest.approx(from_gaussians, rel=1e-8)
    many_a, many_b = rng.normal(size=(50, 30)), rng.normal(size=(60, 30)) + 0.1  # more images: the Gaussians' way
    (mean_a, covariance_a), (mean_b, covariance_b) = distances.gaussian_of(many_a), distances.gaussian_of(many_b)
    by_scipy = (np.sum((mean_a - mean_b) ** 2) + np.trace(covariance_a + covariance_b)
                - 2 * np.trace(linalg.sqrtm(covariance_a @ covariance_b)).real)
    assert distances.frechet_distance(many_a, many_b) == pytest.approx(by_scipy, abs=1e-6)


def test_kid_is_unbiased_on_samples_of_one_distribution():
    """Its mean over many draws of two samples of one distribution is 0 (within 3 standard errors),
    where the biased estimator (the diagonal kept) is clearly positive; samples of two
    distributions give a clearly positive value."""
    rng = np.random.default_rng(3)
    draws = np.array([distances.polynomial_mmd(rng.normal(size=(20, 8)), rng.normal(size=(20, 8)))
                      for _ in range(400)])
    assert abs(draws.mean()) < 3 * draws.std() / np.sqrt(len(draws)), (draws.mean(), draws.std())
    a, b = rng.normal(size=(20, 8)), rng.normal(size=(20, 8))
    kernel = lambda x, y: (x @ y.T / 8 + 1) ** 3  # noqa: E731
    biased = kernel(a, a).mean() + kernel(b, b).mean() - 2 * kernel(a, b).mean()
    assert biased > distances.polynomial_mmd(a, b) + 0.05
    shifted = [distances.polynomial_mmd(rng.normal(size=(20, 8)), rng.normal(size=(20, 8)) + 1.0) for _ in range(20)]
    assert min(shifted) > 10 * draws.std()


def test_kid_subsets_hold_half_the_images_and_spread():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(30, 16)), rng.normal(size=(40, 16)) + 0.3
    mean, spread, size = distances.kernel_inception_distance(a, b, subsets=50, seed=1)
    assert size == 15 and spread > 0 and mean > 0
    assert distances.kernel_inception_distance(a, b, subsets=50, seed=1) == (mean, spread, size)  # seeded
    with pytest.raises(ValueError, match="2 to 30 images"):
        distances.kernel_inception_distance(a, b, subset_size=31)


def test_kid_of_paired_sets_leaves_out_each_pair_and_is_zero_for_identical_sets():
    """A colorization and its original are one image: the cross term leaves out the pairs (i, i),
    as the within terms do. Two identical sets then give exactly 0, where counting the pairs gives
    a value far below 0 (at 13 images)."""
    rng = np.random.default_rng(6)
    features = np.maximum(rng.normal(size=(13, 2048)), 0)  # ReLU-like, as Inception's pool features
    assert distances.polynomial_mmd(features, features, paired=True) == pytest.approx(0, abs=1e-9)
    assert distances.polynomial_mmd(features, features) < -0.005
    mean, spread, size = distances.kernel_inception_distance(features, features, paired=True)
    assert (mean, spread, size) == (pytest.approx(0, abs=1e-9), pytest.approx(0, abs=1e-9), 6)
    with pytest.raises(ValueError, match="as many images"):
        distances.polynomial_mmd(features, features[:5], paired=True)


@pytest.mark.parametrize("bad, words", [
    (lambda f: (f[:, 0], f), "shape"),
    (lambda f: (np.where(f > 2, np.nan, f), f), "NaN"),
    (lambda f: (f, f[:, :3]), "differ in dimensions"),
    (lambda f: (f[:3], f[:3]), "4 images or more"),
])
def test_bad_features_are_one_line(bad, words):
    features = np.random.default_rng(7).normal(size=(10, 6))
    with pytest.raises(ValueError, match=words):
        distances.kernel_inception_distance(*bad(features))
    with pytest.raises(ValueError, match="1 subset or more"):
        distances.kernel_inception_distance(features, features, subsets=0)
