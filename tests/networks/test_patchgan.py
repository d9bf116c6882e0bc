import pytest
import tensorflow as tf
from layer_table import BN_CANCELS_BIAS, LEAKY, assert_matches_reference

from pix2color.networks import build_discriminator

DISCRIMINATOR_256 = {
    #           kind    s  p  in   out shape        bias             BN     drop  before after  skip
    "conv0":  ("conv", 2, 1, 3,   (128, 128, 64),  True,            False, None, None,  LEAKY, None),
    "conv1":  ("conv", 2, 1, 64,  (64, 64, 128),   BN_CANCELS_BIAS, True,  None, LEAKY, LEAKY, None),
    "conv2":  ("conv", 2, 1, 128, (32, 32, 256),   BN_CANCELS_BIAS, True,  None, LEAKY, LEAKY, None),
    "conv3":  ("conv", 1, 1, 256, (31, 31, 512),   BN_CANCELS_BIAS, True,  None, LEAKY, LEAKY, None),
    "logits": ("conv", 1, 1, 512, (30, 30, 1),     True,            False, None, LEAKY, None,  None),
}


@pytest.mark.parametrize("patch, size, grid", [(70, 64, 6), (16, 64, 30), (286, 256, 6), (1, 32, 32)])
def test_patch_sizes(patch, size, grid):
    discriminator = build_discriminator(size, patch_size=patch)
    logits = discriminator([tf.zeros((1, size, size, 1)), tf.zeros((1, size, size, 2))])
    assert logits.shape == (1, grid, grid, 1)


def test_discriminator_is_the_reference_patchgan_layer_for_layer():
    assert_matches_reference(build_discriminator(256), DISCRIMINATOR_256)
