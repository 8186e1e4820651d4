"""The exceptions Kiln raises, one per kiln_status other than KILN_OK."""

KILN_OK = 0
KILN_FAILED = 1
KILN_BAD_INPUT = 2
KILN_CANCELLED = 3


class KilnError(Exception):
    """A Kiln call failed while working (KILN_FAILED); the base class of every Kiln error.

    ``status`` is the C status code, ``str(error)`` Kiln's message.
    """

    status = KILN_FAILED


class BadInput(KilnError, ValueError):
    """The arguments are wrong (KILN_BAD_INPUT): found before any work started."""

    status = KILN_BAD_INPUT


class Cancelled(KilnError):
    """The generation was cancelled (KILN_CANCELLED), by ``Pipeline.cancel`` or Ctrl-C."""

    status = KILN_CANCELLED


def error_for(status, message):
    """The exception for a non-OK ``status`` with Kiln's ``message``."""
    kind = {KILN_BAD_INPUT: BadInput, KILN_CANCELLED: Cancelled}.get(status, KilnError)
    return kind(message)
