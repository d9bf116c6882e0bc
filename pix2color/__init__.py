"""pix2color: automatic colorization of grayscale photos with a conditional GAN (pix2pix + R1)."""

__version__ = "0.1.0"
