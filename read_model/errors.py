"""Errors of the status view."""

from common.errors import ImageServiceError


class ViewError(ImageServiceError):
    code = "view_unavailable"
