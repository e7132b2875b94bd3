/* libsandbox - text that a sandbox, a provider or an archive chose, as a
 * message shows it
 *
 * A file of its own, needing only GLib: sandboxctl compiles it in for the
 * cells of its tables (tools/Makefile.am), the E2B emulator with the
 * Connect client whose errors use it (tests/emulators/Makefile.am).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "sandbox-display-private.h"

/* Unicode's explicit bidirectional formatting characters: shown as they
 * are, they reorder the text around them (a name that reads as another). */
static gboolean
is_bidi_control (gunichar c)
{
  return c == 0x061c || c == 0x200e || c == 0x200f || (c >= 0x202a && c <= 0x202e) ||
         (c >= 0x2066 && c <= 0x2069);
}

/* _sandbox_display_text:
 * @text: bytes a sandbox, an image or an archive chose (a file name, a
 *   link's target, an entry of a listing)
 *
 * A file name is any bytes but `/` and NUL. Put in an error message as it
 * is, a name that a sandbox made reaches whatever shows the message: on a
 * terminal (`sandboxctl cp`'s error, a Metaflow log line) its escape
 * sequences set the window's title, erase or rewrite what the terminal
 * shows, or put text on the clipboard (OSC 52) for the user to paste; and
 * bytes that are not UTF-8 make the message one that GLib and the language
 * bindings must not be given. So the message shows each control character
 * (U+0000-U+001F, U+007F, the C1 controls U+0080-U+009F) as `\xNN`, each
 * byte that is not UTF-8 as `\xNN` too, each bidirectional formatting
 * character as `\uNNNN`, and a backslash as `\\`, so that what is shown
 * names exactly one string.
 *
 * Returns: the text to show, to free
 */
char *
_sandbox_display_text (const char *text)
{
  const char *p = text, *end;
  GString *out;

  if (text == NULL)
    return g_strdup ("(null)");
  /* The common case: printable ASCII, no backslash. */
  for (end = text; *end != '\0'; end++)
    if ((guchar) *end < 0x20 || (guchar) *end >= 0x7f || *end == '\\')
      break;
  if (*end == '\0')
    return g_strdup (text);

  end = text + strlen (text);
  out = g_string_sized_new ((gsize) (end - text) + 16);
  while (p < end)
    {
      gunichar c = g_utf8_get_char_validated (p, end - p);

      if (c == (gunichar) -1 || c == (gunichar) -2)
        {
          g_string_append_printf (out, "\\x%02x", (guchar) *p);
          p++;
          continue;
        }
      if (c < 0x20 || (c >= 0x7f && c < 0xa0))
        g_string_append_printf (out, "\\x%02x", (guint) c);
      else if (is_bidi_control (c))
        g_string_append_printf (out, "\\u%04x", (guint) c);
      else if (c == '\\')
        g_string_append (out, "\\\\");
      else
        g_string_append_unichar (out, c);
      p = g_utf8_next_char (p);
    }
  return g_string_free (out, FALSE);
}
