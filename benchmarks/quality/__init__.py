"""Quality benchmarks on real MNIST: sample quality and likelihood against the acceptance targets."""
