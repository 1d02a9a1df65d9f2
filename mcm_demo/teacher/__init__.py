"""Training of the embedded teacher: VAE, then text encoder + UNet3D together."""
