"""The resize worker role: the consumer loop and the pure resize engine."""
