/* daytona-emulator: the Daytona API emulator as a program
 *
 * Listens on 127.0.0.1 (a free port), prints what a client needs, one
 * VAR=value per line (DAYTONA_API_URL first), then a line "READY", and
 * serves until SIGINT or SIGTERM, when it deletes every sandbox it still
 * has. See docs/testing.md, "Daytona emulator".
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>

#include "daytona-emulator.h"
#include "emu-common.h"

/* --request-log FILE: one line per request ("METHOD PATH", milliseconds
 * since the start), to count what a client sends. Before the first, a
 * line "# 0.0 = DATE TIME.MMM" says when that start was in local time, as
 * Metaflow stamps its log lines: a run's requests line up with its tasks'
 * marks (docs/benchmarks.md, "Remote backends, tenth look"). */
static gboolean
log_request (DaytonaEmulator   *emulator,
             SoupServerMessage *msg,
             const char        *path,
             gpointer           user_data)
{
  static gint64 start;
  SoupMessageBody *body = soup_server_message_get_request_body (msg);
  g_autofree char *text = NULL;

  if (start == 0)
    {
      g_autoptr(GDateTime) now = g_date_time_new_now_local ();
      g_autofree char *stamp = g_date_time_format (now, "%Y-%m-%d %H:%M:%S");

      start = g_get_monotonic_time ();
      fprintf (user_data, "# 0.0 = %s.%03d\n", stamp, g_date_time_get_microsecond (now) / 1000);
    }
  /* A command's text, its first 120 bytes (what an exec or execute ran). */
  if (g_str_has_suffix (path, "/exec") || g_str_has_suffix (path, "/execute"))
    text = g_strndup (body->data, MIN (body->length, 120));
  fprintf (user_data, "%.1f %s %s%s%s\n", (g_get_monotonic_time () - start) / 1000.0,
           soup_server_message_get_method (msg), path, text ? " " : "", text ? g_strdelimit (text, "\n", ' ') : "");
  fflush (user_data);
  return FALSE;
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GError) error = NULL;
  g_autoptr(DaytonaEmulator) emulator = NULL;
  g_autoptr(GOptionContext) options = NULL;
  g_autofree char *api_key = NULL;
  int state_delay_ms = -1;
  g_autofree char *images = NULL;
  g_autofree char *request_log = NULL;
  GOptionEntry entries[] = {
    { "api-key", 0, 0, G_OPTION_ARG_STRING, &api_key,
      "The API key to accept (default: $DAYTONA_EMULATOR_API_KEY or " DAYTONA_EMULATOR_DEFAULT_API_KEY ")", "KEY" },
    { "state-delay-ms", 0, 0, G_OPTION_ARG_INT, &state_delay_ms,
      "How long each sandbox state transition takes (default 100)", "MS" },
    { "images", 0, 0, G_OPTION_ARG_FILENAME, &images,
      "The image mapping: snapshot and image names to images of the local image store "
      "(default: $DAYTONA_EMULATOR_IMAGES; see docs/testing.md)", "FILE" },
    { "request-log", 0, 0, G_OPTION_ARG_FILENAME, &request_log,
      "Append one line per request to FILE (its method and path)", "FILE" },
    { NULL }
  };

  options = g_option_context_new ("- serve the Daytona API on 127.0.0.1");
  g_option_context_add_main_entries (options, entries, NULL);
  if (!g_option_context_parse (options, &argc, &argv, &error))
    {
      g_printerr ("daytona-emulator: %s\n", error->message);
      return 2;
    }

  if (images != NULL)
    g_setenv ("DAYTONA_EMULATOR_IMAGES", images, TRUE);
  emulator = daytona_emulator_new (&error);
  if (emulator == NULL)
    {
      g_printerr ("daytona-emulator: %s\n", error->message);
      return 1;
    }
  if (api_key != NULL)
    daytona_emulator_set_api_key (emulator, api_key);
  if (state_delay_ms >= 0)
    daytona_emulator_set_state_delay (emulator, state_delay_ms);

  if (request_log != NULL)
    {
      FILE *f = fopen (request_log, "a");

      if (f == NULL)
        {
          g_printerr ("daytona-emulator: cannot open %s: %s\n", request_log, g_strerror (errno));
          return 1;
        }
      daytona_emulator_set_hook (emulator, log_request, f);
    }
  printf ("DAYTONA_API_URL=%s\n", daytona_emulator_get_url (emulator));
  printf ("DAYTONA_API_KEY=%s\n", daytona_emulator_get_api_key (emulator));
  _emu_main_serve ();
  return 0;
}
