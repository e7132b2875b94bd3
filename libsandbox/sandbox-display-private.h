/* libsandbox - text that a sandbox, a provider or an archive chose, as a
 * message or a table shows it (sandbox-display.c)
 *
 * A header of its own, needing only GLib: sandboxctl and the E2B emulator
 * compile sandbox-display.c in (tools/Makefile.am,
 * tests/emulators/Makefile.am), so that there is one escaping and not a
 * copy per program.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* TEXT (a file name or link target a sandbox, an image or an archive
 * chose; a provider's id, label or error) as a person is shown it: valid
 * UTF-8, its control characters, bidirectional formatting characters and
 * bytes that are not UTF-8 escaped. */
char *_sandbox_display_text (const char *text);

G_END_DECLS
