/* libsandbox - runs a fuzz target over files (or directories of files)
 * once, without libFuzzer: a regression test of the committed corpus in
 * a normal build (make check), printing TAP, one test per file.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <gio/gio.h>

#include "fuzz-common.h"

static int n;

static int
compare_paths (gconstpointer a,
               gconstpointer b)
{
  return g_strcmp0 (*(const char * const *) a, *(const char * const *) b);
}

static void
replay_file (const char *path)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *contents = NULL;
  gsize len;

  if (!g_file_get_contents (path, &contents, &len, &error))
    {
      printf ("not ok %d - %s: %s\n", ++n, path, error->message);
      return;
    }
  LLVMFuzzerTestOneInput ((const uint8_t *) contents, len);   /* aborts on a failure */
  printf ("ok %d - %s\n", ++n, path);
  fflush (stdout);
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GPtrArray) files = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) args = g_ptr_array_new_with_free_func (g_free);

  for (int i = 1; i < argc; i++)
    g_ptr_array_add (args, g_strdup (argv[i]));
  if (args->len == 0)
    {
      /* fuzz/replay-NAME: the committed corpus fuzz/corpus/NAME */
      g_autofree char *base = g_path_get_basename (argv[0]);
      const char *name = base;
      const char *srcdir = g_getenv ("G_TEST_SRCDIR") ? g_getenv ("G_TEST_SRCDIR") : FUZZ_TOP_SRCDIR;

      if (g_str_has_prefix (name, "lt-"))
        name += 3;
      if (g_str_has_prefix (name, "replay-"))
        name += 7;
      g_ptr_array_add (args, g_build_filename (srcdir, "fuzz", "corpus", name, NULL));
    }
  for (guint i = 0; i < args->len; i++)
    {
      const char *arg = g_ptr_array_index (args, i);

      if (g_file_test (arg, G_FILE_TEST_IS_DIR))
        {
          g_autoptr(GDir) dir = g_dir_open (arg, 0, NULL);
          g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
          const char *name;

          while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
            g_ptr_array_add (names, g_build_filename (arg, name, NULL));
          g_ptr_array_sort (names, compare_paths);
          for (guint j = 0; j < names->len; j++)
            g_ptr_array_add (files, g_strdup (g_ptr_array_index (names, j)));
        }
      else
        g_ptr_array_add (files, g_strdup (arg));
    }
  if (files->len == 0)
    {
      printf ("1..0 # SKIP no corpus files\n");
      return 0;
    }
  printf ("1..%u\n", files->len);
  fflush (stdout);
  for (guint i = 0; i < files->len; i++)
    replay_file (g_ptr_array_index (files, i));
  return 0;
}
