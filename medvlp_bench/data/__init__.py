"""Data utilities: image IO, image caches, splits, locations."""
