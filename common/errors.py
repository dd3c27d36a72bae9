"""The project's root exception and the infrastructure failures every role meets."""


class ImageServiceError(Exception):
    """Root of every error this service raises on purpose."""

    code = "internal_error"


class StoreUnavailable(ImageServiceError):
    """The object store did not answer or answered with a server error: transient."""

    code = "store_unavailable"


class ObjectExists(ImageServiceError):
    """A write that must create an object found one already there."""

    code = "object_exists"


class ObjectNotFound(ImageServiceError):
    """The object store answered, and the object is not there."""

    code = "object_not_found"


class BrokerUnavailable(ImageServiceError):
    """Kafka did not acknowledge in time: transient."""

    code = "broker_unavailable"
