"""pix2color's web application: `pix2color serve` (see `app.create_app`)."""
