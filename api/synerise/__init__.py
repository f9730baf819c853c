"""The Synerise-compatible surface (Synerise's documentation): request and error shapes in, services, JSON out."""
