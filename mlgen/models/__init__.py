"""LightningModules: the training logic of one model family each, nothing about data or launchers."""
