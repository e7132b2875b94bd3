"""Translations of the extension's own messages.

The extension shares the C library's gettext domain (``libsandbox-1.0``),
so one catalog per language covers both. Catalogs are looked up in
``$SANDBOX_LOCALEDIR`` (the same variable the library reads; the tests point
it at the build tree's catalogs), then where the packages install them.
Python's gettext picks the language from ``LANGUAGE``, ``LC_ALL``,
``LC_MESSAGES`` and ``LANG``, as the C library does.
"""

import gettext
import os
import sys
from typing import List, Optional, Tuple

DOMAIN = "libsandbox-1.0"

_translation: Optional[gettext.NullTranslations] = None
_languages_key: Optional[Tuple[str, ...]] = None


def _locale_dirs() -> List[str]:
    dirs = []
    env = os.environ.get("SANDBOX_LOCALEDIR")
    if env:
        dirs.append(env)
    for prefix in (sys.prefix, sys.base_prefix, "/usr", "/usr/local"):
        path = os.path.join(prefix, "share", "locale")
        if path not in dirs:
            dirs.append(path)
    return dirs


def _env_key() -> Tuple[str, ...]:
    names = ("SANDBOX_LOCALEDIR", "LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")
    return tuple(os.environ.get(name, "") for name in names)


def _catalog() -> gettext.NullTranslations:
    global _translation, _languages_key
    key = _env_key()
    if _translation is None or key != _languages_key:
        found: gettext.NullTranslations = gettext.NullTranslations()
        for localedir in _locale_dirs():
            if gettext.find(DOMAIN, localedir):
                found = gettext.translation(DOMAIN, localedir, fallback=True)
                break
        _translation, _languages_key = found, key
    return _translation


def _(message: str) -> str:
    """Translate *message* (marked for xgettext as ``_("...")``)."""
    return _catalog().gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """Translate a message with a count."""
    return _catalog().ngettext(singular, plural, n)
