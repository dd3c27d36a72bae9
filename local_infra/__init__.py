"""Local infrastructure: a real Kafka broker and S3 server for development, tests and benchmarks."""
