"""Metrics built on torchmetrics: likelihood bounds, FID/KID with a chosen feature extractor, label agreement."""
