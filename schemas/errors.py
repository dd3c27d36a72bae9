"""Errors of the event contract."""


class SerializationError(ValueError):
    """Bytes that are not a valid event of this contract, or an event that cannot be encoded."""
