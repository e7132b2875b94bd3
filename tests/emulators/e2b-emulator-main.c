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
  g_autoptr(GOptionContext) options = NULL;
  g_autofree char *images = NULL;
  GOptionEntry entries[] = {
    { "images", 0, 0, G_OPTION_ARG_FILENAME, &images,
      "The image mapping: template names to images of the local image store "
      "(default: $E2B_EMULATOR_IMAGES; see docs/testing.md)", "FILE" },
    { NULL }
  };

  options = g_option_context_new ("- serve the E2B API on 127.0.0.1");
  g_option_context_add_main_entries (options, entries, NULL);
  if (!g_option_context_parse (options, &argc, &argv, &error))
    {
      g_printerr ("e2b-emulator: %s\n", error->message);
      return 2;
    }
  if (images != NULL)
    g_setenv ("E2B_EMULATOR_IMAGES", images, TRUE);
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
