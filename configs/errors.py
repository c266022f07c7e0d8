"""The one exception family for user mistakes: reported as a single line with exit code 2."""


class UserError(ValueError):
    """Bad input from the user (a flag, a file, an env id): the message says what and what is allowed."""


class ConfigError(UserError):
    """An invalid configuration value, key or file."""
