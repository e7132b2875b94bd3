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

#include "e2b-emulator.h"
#include "emu-common.h"

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GError) error = NULL;
  g_autoptr(E2bEmulator) emulator = NULL;

  emulator = e2b_emulator_new (&error);
  if (emulator == NULL)
    {
      g_printerr ("e2b-emulator: %s\n", error->message);
      return 1;
    }

  printf ("E2B_API_URL=%s\n", e2b_emulator_get_api_url (emulator));
  printf ("E2B_SANDBOX_URL=%s\n", e2b_emulator_get_sandbox_url (emulator));
  printf ("E2B_API_KEY=%s\n", e2b_emulator_get_api_key (emulator));
  _emu_main_serve ();
  return 0;
}
