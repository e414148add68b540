"""User-facing errors: one line saying what is wrong and how to fix it.

The CLI turns a `UserError` into that line on stderr and exit code 2, without a traceback. Anything
else is a bug in masklab and keeps its traceback.
"""


class UserError(Exception):
    """Bad input from the user (file, config value, checkpoint); the message names the fix."""


class TrainingDiverged(UserError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""
