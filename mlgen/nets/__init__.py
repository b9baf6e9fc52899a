"""Plain nn.Modules built from the data's `(shape, num_classes)`; no losses, no Lightning."""
