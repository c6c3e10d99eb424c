"""Rules every name that stands for an account or a client shares."""

import uuid


def refuse_uuid(value: str, what: str) -> str:
    """`value` unless it parses as a UUID, which users' ids are.

    Commands and routes take a user's id or a name, and tokens carry one or
    the other as `sub`: a UUID-shaped name could pass for a user's id.
    """
    try:
        uuid.UUID(value)
    except ValueError:
        return value
    raise ValueError(f"a {what} may not look like a UUID (users' ids are)")
