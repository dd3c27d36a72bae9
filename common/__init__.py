"""Plumbing shared by every process role: settings, Kafka and S3 clients, logging."""
