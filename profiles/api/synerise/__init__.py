"""The Synerise-compatible surface (seeds 000–002): request and error shapes in, services, JSON out."""
