"""Exceptions that carry a user-facing, one-line message."""


class SrganError(Exception):
    """A failure the user can act on; the CLI prints it on one line and exits 1."""

    exit_code = 1


class BadInputError(SrganError):
    """The user's input (a path, a file, a flag value) is unusable; the CLI exits 2."""

    exit_code = 2


class ImageTooLargeError(BadInputError):
    """An image has more pixels than the limit allows (checked before decoding)."""
