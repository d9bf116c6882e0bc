"""The Fréchet distance and the kernel inception distance between two sets of features.

FID (Heusel et al. 2017): fit a Gaussian to each set, d^2 = |mu_a - mu_b|^2 + Tr(S_a + S_b -
2 (S_a S_b)^(1/2)). It is biased: with few images the estimate is too large, and for 2048-d
features a covariance needs more than 2048 images to be of full rank.

KID (Bińkowski et al. 2018): the squared maximum mean discrepancy with the cubic polynomial
kernel k(x, y) = (x . y / d + 1)^3, estimated without bias (its mean over draws of one
distribution is 0, so it can be slightly negative), on subsets of the images; the mean over the
subsets and their spread. Colorizations and their originals are paired, image by image, and
are measured so (`paired`).
"""

from __future__ import annotations

import numpy as np

KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000


def checked(features, *others) -> list[np.ndarray]:
    """Feature sets as float64 arrays (N, D) of one D, finite; ValueError in one line otherwise."""
    arrays = [np.asarray(found, np.float64) for found in (features, *others)]
    for array in arrays:
        if array.ndim != 2:
            raise ValueError(f"features must be an array (images, dimensions); got shape {array.shape}")
        if not np.isfinite(array).all():
            raise ValueError("features hold NaN or infinite values")
    if len({array.shape[1] for array in arrays}) > 1:
        raise ValueError(f"the feature sets differ in dimensions: {[array.shape[1] for array in arrays]}")
    return arrays


def gaussian_of(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (unbiased, N - 1) of features (N, D), in float64."""
    features, = checked(features)
    if len(features) < 2:
        raise ValueError(f"a Fréchet distance needs features of 2 images or more (got {len(features)})")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance_of_gaussians(mean_a, covariance_a, mean_b, covariance_b) -> float:
    """d^2 between N(mean_a, covariance_a) and N(mean_b, covariance_b).

    Tr((S_a S_b)^(1/2)) is computed as the sum of the square roots of the eigenvalues of the
    symmetric S_a^(1/2) S_b S_a^(1/2) (the same eigenvalues): real and stable even when the
    covariances are singular, as they are with fewer images than dimensions."""
    mean_a, mean_b = np.asarray(mean_a, np.float64), np.asarray(mean_b, np.float64)
    covariance_a, covariance_b = np.atleast_2d(covariance_a), np.atleast_2d(covariance_b)
    values, vectors = np.linalg.eigh(covariance_a)
    root_a = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    middle = root_a @ covariance_b @ root_a
    trace_of_root = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
    return float(np.sum((mean_a - mean_b) ** 2) + np.trace(covariance_a) + np.trace(covariance_b)
                 - 2 * trace_of_root)


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """FID of two sets of features (N_a, D) and (N_b, D).

    With fewer images than dimensions (the usual case below a few thousand images) the
    covariances are singular, and the eigenvalues of their square roots that should be 0 come out
    as rounding noise whose square roots add up. There, with the centred features A and B
    (S_a = A'A / (N_a - 1)), the nonzero eigenvalues of S_a S_b are the squared singular values of
    A B' / sqrt((N_a - 1)(N_b - 1)), so Tr((S_a S_b)^(1/2)) is that matrix's nuclear norm: exact."""
    mean_a, covariance_a = gaussian_of(features_a)
    mean_b, covariance_b = gaussian_of(features_b)
    if min(len(features_a), len(features_b)) > covariance_a.shape[0]:
        return frechet_distance_of_gaussians(mean_a, covariance_a, mean_b, covariance_b)
    centred_a = np.asarray(features_a, np.float64) - mean_a
    centred_b = np.asarray(features_b, np.float64) - mean_b
    cross = centred_a @ centred_b.T / np.sqrt((len(centred_a) - 1) * (len(centred_b) - 1))
    trace_of_root = np.linalg.svd(cross, compute_uv=False).sum()
    return float(np.sum((mean_a - mean_b) ** 2) + np.trace(covariance_a) + np.trace(covariance_b)
                 - 2 * trace_of_root)


def polynomial_mmd(features_a: np.ndarray, features_b: np.ndarray, paired: bool = False) -> float:
    """The unbiased squared MMD of two sets of features with k(x, y) = (x . y / d + 1)^3.

    `paired`: row i of each set comes from the same image (a colorization and its original), as
    in `evaluate`. The cross term then leaves out the pairs (i, i) too, as the within terms leave
    out (i, i): a pair is not two independent draws, and with it the estimate of two identical
    sets would be far below 0 (-0.018 for 13 images) instead of 0."""
    a, b = checked(features_a, features_b)
    m, n, dimensions = len(a), len(b), a.shape[1]
    if m < 2 or n < 2:
        raise ValueError(f"a kernel inception distance needs features of 2 images or more in each set (got {m}, {n})")
    if paired and m != n:
        raise ValueError(f"paired feature sets hold as many images each (got {m} and {n})")
    k_aa = (a @ a.T / dimensions + 1) ** 3
    k_bb = (b @ b.T / dimensions + 1) ** 3
    k_ab = (a @ b.T / dimensions + 1) ** 3
    within_a = (k_aa.sum() - np.trace(k_aa)) / (m * (m - 1))
    within_b = (k_bb.sum() - np.trace(k_bb)) / (n * (n - 1))
    across = (k_ab.sum() - np.trace(k_ab)) / (m * (m - 1)) if paired else k_ab.mean()
    return float(within_a + within_b - 2 * across)


def kernel_inception_distance(features_a: np.ndarray, features_b: np.ndarray, subsets: int = KID_SUBSETS,
                              subset_size: int | None = None, seed: int = 0,
                              paired: bool = False) -> tuple[float, float, int]:
    """KID: the mean and standard deviation of `polynomial_mmd` over `subsets` random subsets of
    each set, drawn without replacement, and the subset size used. By default a subset holds half
    the images of the smaller set (so that subsets differ and their spread means something), at
    most `KID_SUBSET_SIZE`. `paired`: one subset of images is drawn for both sets, which keeps its
    pairs (`polynomial_mmd`)."""
    features_a, features_b = checked(features_a, features_b)
    count = min(len(features_a), len(features_b))
    if count < 4:
        raise ValueError(f"KID needs 4 images or more in each set (got {count}): subsets of 2 at least, "
                         "which differ")
    size = subset_size or min(KID_SUBSET_SIZE, count // 2)
    if not 2 <= size <= count or subsets < 1:
        raise ValueError(f"KID takes 1 subset or more, of 2 to {count} images (got {subsets} of {size})")
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(subsets):
        chosen_a = rng.choice(len(features_a), size, replace=False)
        chosen_b = chosen_a if paired else rng.choice(len(features_b), size, replace=False)
        values.append(polynomial_mmd(features_a[chosen_a], features_b[chosen_b], paired))
    return float(np.mean(values)), float(np.std(values)), size


def to_originals(outputs: np.ndarray, originals: np.ndarray, seed: int = 0) -> dict[str, float]:
    """How far a colorizer's outputs are from their originals, image for image: FID, and KID over
    `KID_SUBSETS` paired subsets (`kid`, its spread `kid_std`, and `kid_subset`, the images in each)."""
    kid, spread, subset = kernel_inception_distance(outputs, originals, KID_SUBSETS, seed=seed, paired=True)
    return {"fid": frechet_distance(outputs, originals), "kid": kid, "kid_std": spread, "kid_subset": subset}
