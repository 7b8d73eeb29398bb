"""Pretraining machinery shared by the method plugins: image-report data, the Lightning fit, the model store."""
