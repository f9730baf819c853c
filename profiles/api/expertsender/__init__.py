"""ExpertSender ECDP-compatible customer API (seed 004)."""
