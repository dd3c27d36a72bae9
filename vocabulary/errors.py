"""Why a resize cannot be done. Each class carries the stable error code clients see."""

from common.errors import ImageServiceError


class ResizeError(ImageServiceError):
    """A permanent failure: retrying the same input gives the same answer."""

    code = "resize_failed"


class NotAnImage(ResizeError):
    code = "not_an_image"


class UnsupportedFormat(ResizeError):
    code = "unsupported_format"


class TooManyPixels(ResizeError):
    code = "too_many_pixels"


class CorruptImage(ResizeError):
    code = "corrupt_image"


class InvalidRequest(ResizeError):
    code = "invalid_request"


class SourceNotAllowed(ResizeError):
    """The request names an object outside the places the workers may read."""

    code = "source_not_allowed"


class SourceMissing(ResizeError):
    code = "source_missing"


class SourceExpired(ResizeError):
    """The original is past ORIGINAL_TTL_SECONDS: gone, or about to be, so no result is made from it."""

    code = "source_expired"


class SourceDeleted(ResizeError):
    """The original was erased (the task deleted) while it was being resized; the results were removed."""

    code = "source_deleted"


class ResourceLimit(ResizeError):
    """The resize met its memory or time limit (or its process was killed): final, not retried."""

    code = "resource_limit"


class WorkerCrashed(ResizeError):
    """Attempts at the request took WORKER_CRASH_LIMIT worker processes down with them: final, dead-lettered."""

    code = "worker_crashed"
