"""Errors the CLI turns into one line `error: ...` and exit code 2."""


class BleedOriginError(Exception):
    """Base class of the toolkit's expected errors."""


class InputError(BleedOriginError):
    """Bad user input: missing/corrupt video, malformed annotation, point outside the frame, ..."""


class ConfigError(BleedOriginError):
    """Bad configuration: unknown key, wrong type, unknown model name."""
