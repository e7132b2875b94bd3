/* e2b-emulator: the E2B API emulator as a program
 *
 * Listens on 127.0.0.1 (a free port), prints the environment a client
 * needs, one VAR=value per line, then a line "READY", and serves until
 * SIGINT or SIGTERM. See docs/testing.md, "E2B emulator".
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <stdio.h>
#include <glib-unix.h>

#include "e2b-emulator.h"

static gboolean
on_signal (gpointer user_data)
{
  g_main_loop_quit (user_data);
  return G_SOURCE_REMOVE;
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GError) error = NULL;
  g_autoptr(E2bEmulator) emulator = NULL;
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);

  emulator = e2b_emulator_new (&error);
  if (emulator == NULL)
    {
      g_printerr ("e2b-emulator: %s\n", error->message);
      return 1;
    }

  printf ("E2B_API_URL=%s\n", e2b_emulator_get_api_url (emulator));
  printf ("E2B_SANDBOX_URL=%s\n", e2b_emulator_get_sandbox_url (emulator));
  printf ("E2B_API_KEY=%s\n", e2b_emulator_get_api_key (emulator));
  printf ("READY\n");
  fflush (stdout);

  g_unix_signal_add (SIGINT, on_signal, loop);
  g_unix_signal_add (SIGTERM, on_signal, loop);
  g_main_loop_run (loop);
  return 0;
}
