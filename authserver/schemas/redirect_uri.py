"""Which redirect URIs a client may register (RFC 6749 §3.1.2, RFC 8252 §7,
RFC 9700 §2.1, §4.1).

Registered URIs are compared as exact strings, so the rules here are about what
may be registered at all: absolute, no fragment, no user-info, https, or http
only to the device itself (loopback), or a native app's private-use scheme in
reverse-domain form.
"""

from urllib.parse import urlsplit

MAX_REDIRECT_URI = 2048
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
# Schemes a browser would run or read locally instead of handing to an app.
UNSAFE_SCHEMES = frozenset(
    {"javascript", "data", "vbscript", "file", "about", "blob", "filesystem", "ftp"}
)


def redirect_uri_problem(uri: str) -> str | None:
    """Why `uri` may not be registered as a redirect URI, or None if it may."""
    if not uri or len(uri) > MAX_REDIRECT_URI:
        return f"must be 1 to {MAX_REDIRECT_URI} characters"
    if not uri.isascii() or not uri.isprintable() or " " in uri:
        return "must be printable ASCII without spaces (percent-encode the rest)"
    if "*" in uri:
        return "must not contain wildcards (URIs match exactly)"
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        return "is not a valid URI"
    scheme = parts.scheme.lower()
    if not scheme:
        return "must be absolute (with a scheme)"
    if "#" in uri:
        return "must not have a fragment (RFC 6749 §3.1.2)"
    if "@" in parts.netloc:
        return "must not carry user information"
    if scheme == "https":
        return None if parts.hostname else "needs a host"
    if scheme == "http":
        if parts.hostname in LOOPBACK_HOSTS:
            return None
        return "must use https (http only for localhost, 127.0.0.1 or [::1])"
    if scheme in UNSAFE_SCHEMES:
        return f"must not use the {scheme} scheme"
    if "." not in scheme:
        # RFC 8252 §7.1: a private-use scheme names a domain the app owns.
        return "a native app's scheme must be a reverse domain name (com.example.app)"
    if parts.netloc or not parts.path:
        return "a native app's URI looks like com.example.app:/callback"
    return None
