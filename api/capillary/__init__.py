"""Capillary-compatible customer upsert API (Capillary's documentation)."""
