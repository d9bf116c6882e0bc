"""Judging a colorizer beyond PSNR / SSIM: the distances the field reports between the
distribution of colorized images and that of the photos.

- `distances`: the Fréchet distance (FID) and the kernel inception distance (KID, unbiased) of two
  sets of features; NumPy only.
- `inception`: Inception-v3 pool features (2048-d) of 8-bit RGB images, from Keras' own
  `keras.applications.InceptionV3` (ImageNet weights, a local file, or random weights to check
  a pipeline offline).

May import Keras and TensorFlow (`inception`, inside its functions), and nothing of pix2color but its errors.
"""
