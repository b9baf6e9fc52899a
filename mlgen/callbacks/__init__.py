"""Callbacks that Lightning does not ship: config in checkpoints, image grids, EMA, throughput."""
