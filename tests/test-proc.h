/* Shared by the C tests: the host's processes, read from /proc. */
#pragma once

#include <string.h>
#include <glib.h>

/* How many host processes have a command line (arguments joined by spaces)
 * that starts with NEEDLE or, with ANYWHERE, contains it. */
static inline guint
test_count_processes (const char *needle,
                      gboolean    anywhere)
{
  g_autoptr(GDir) proc = g_dir_open ("/proc", 0, NULL);
  const char *name;
  guint n = 0;

  while (proc != NULL && (name = g_dir_read_name (proc)) != NULL)
    {
      g_autofree char *path = g_build_filename ("/proc", name, "cmdline", NULL);
      g_autofree char *cmdline = NULL;
      gsize len = 0;

      if (!g_ascii_isdigit (name[0]) || !g_file_get_contents (path, &cmdline, &len, NULL))
        continue;
      for (gsize i = 0; i + 1 < len; i++)
        if (cmdline[i] == '\0')
          cmdline[i] = ' ';
      if (anywhere ? strstr (cmdline, needle) != NULL : g_str_has_prefix (cmdline, needle))
        n++;
    }
  return n;
}

static inline gboolean
test_host_has_process (const char *needle)
{
  return test_count_processes (needle, FALSE) > 0;
}
