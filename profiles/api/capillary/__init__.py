"""Capillary-compatible customer upsert API (seed 003)."""
