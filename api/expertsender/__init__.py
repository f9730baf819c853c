"""ExpertSender ECDP-compatible customer API (ExpertSender's documentation)."""
