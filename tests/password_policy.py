"""The passwords the one policy refuses, and the words every way in refuses them with.

The API (user creation, sign-up, reset, change) and authctl (user create,
set-password) are each tested against this one table.
"""

REFUSED = {
    "too-short": ("short", "password must be at least 8 characters"),
    "too-long": ("x" * 1025, "password must be at most 1024 characters"),
    "nul": ("with a \x00 inside", "password must not contain NUL characters"),
    # JSON may carry one (\ud800); so may stdin decoded with surrogateescape.
    "lone-surrogate": ("half \ud800 a pair", "password must be valid Unicode text"),
}
