"""bargan: bar-by-bar music GAN pipeline."""
