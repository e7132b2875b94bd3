/* Helpers shared by the C tests. */
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

static inline int
test_compare_strings (gconstpointer a,
                      gconstpointer b)
{
  return strcmp (*(const char * const *) a, *(const char * const *) b);
}

/* The sorted names in @dir, joined by spaces. */
static inline char *
test_names_in (const char *dir)
{
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GString) out = g_string_new (NULL);
  const char *name;

  while (d != NULL && (name = g_dir_read_name (d)) != NULL)
    g_ptr_array_add (names, g_strdup (name));
  g_ptr_array_sort (names, test_compare_strings);
  for (guint i = 0; i < names->len; i++)
    g_string_append_printf (out, "%s%s", i ? " " : "", (char *) g_ptr_array_index (names, i));
  return g_string_free (g_steal_pointer (&out), FALSE);
}

static inline gboolean
test_wake_up (gpointer data)
{
  return G_SOURCE_CONTINUE;
}

/* Runs the default main context until *A and *B are TRUE, or SECONDS have
 * passed (a 50 ms tick keeps it from sleeping past the deadline); TRUE if
 * they both came true. */
static inline gboolean
test_iterate_until (const gboolean *a,
                    const gboolean *b,
                    guint           seconds)
{
  gint64 deadline = g_get_monotonic_time () + seconds * G_USEC_PER_SEC;
  guint tick = g_timeout_add (50, test_wake_up, NULL);

  while (!(*a && *b) && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, TRUE);
  g_source_remove (tick);
  return *a && *b;
}
