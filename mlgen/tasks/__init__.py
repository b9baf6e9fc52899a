"""What the entry points run, as plain functions of a composed config (testable without Hydra's CLI)."""
