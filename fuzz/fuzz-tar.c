/* libsandbox - fuzz target: tar extraction (sandbox_archive_extract) of a
 * stream as a sandbox could send it, into a fresh temporary directory.
 *
 * Checks, after each extraction (twice: replacing, then keeping what
 * exists): nothing appeared beside the destination or above it, and no
 * symbolic link in the destination leads out of it, however links chain
 * (resolved component by component over the real tree, as the kernel
 * would, dangling ends included: writing through one would create a file
 * there). Errors are SANDBOX_ERROR or G_IO_ERROR with a message.
 *
 * Then once more as an image layer (_sandbox_archive_extract_layer, issue
 * 16), where symbolic links keep any target and hard links are made:
 * still nothing beside or above the destination, every hard-linked file
 * has all its links inside it (none reaches a file outside), and when the
 * stream is accepted its checksum is that of every byte given.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sandbox-private.h"
#include "sandbox-archive.h"
#include "fuzz-common.h"

static char *root;   /* root/top/up/dest is where the archive goes */

/* rm -rf that never follows a link */
static void
remove_at (int         dir_fd,
           const char *name)
{
  struct stat st;

  if (fstatat (dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
    return;
  if (S_ISDIR (st.st_mode))
    {
      int fd = openat (dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      DIR *d;
      struct dirent *e;

      if (fd >= 0 && (d = fdopendir (fd)) != NULL)
        {
          fchmod (fd, 0700);
          while ((e = readdir (d)) != NULL)
            if (strcmp (e->d_name, ".") != 0 && strcmp (e->d_name, "..") != 0)
              remove_at (dirfd (d), e->d_name);
          closedir (d);
        }
      else if (fd >= 0)
        close (fd);
      unlinkat (dir_fd, name, AT_REMOVEDIR);
    }
  else
    unlinkat (dir_fd, name, 0);
}

/* The names in @path, which must be exactly @only (or nothing if NULL). */
static void
assert_only (const char *path,
             const char *only)
{
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;

  FUZZ_ASSERT (dir != NULL);
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      if (only == NULL || strcmp (name, only) != 0)
        fprintf (stderr, "fuzz-tar: %s/%s was written outside the destination\n", path, name);
      FUZZ_ASSERT (only != NULL && strcmp (name, only) == 0);
    }
}

/* Follows the path @rel (components below @dest) as the kernel would;
 * FALSE if it ever climbs above @dest or jumps to an absolute path. */
static gboolean
stays_inside (const char *dest,
              const char *rel)
{
  g_autoptr(GPtrArray) at = g_ptr_array_new_with_free_func (g_free);   /* where we are, below dest */
  g_autoptr(GQueue) todo = g_queue_new ();
  g_auto(GStrv) first = g_strsplit (rel, "/", -1);
  guint links = 0;
  gboolean ok = TRUE;

  for (guint i = 0; first[i] != NULL; i++)
    g_queue_push_tail (todo, g_strdup (first[i]));
  while (ok && !g_queue_is_empty (todo))
    {
      g_autofree char *c = g_queue_pop_head (todo);
      g_autoptr(GString) path = NULL;
      struct stat st;

      if (*c == '\0' || strcmp (c, ".") == 0)
        continue;
      if (strcmp (c, "..") == 0)
        {
          if (at->len == 0)
            ok = FALSE;
          else
            g_ptr_array_remove_index (at, at->len - 1);
          continue;
        }
      path = g_string_new (dest);
      for (guint i = 0; i < at->len; i++)
        g_string_append_printf (path, "/%s", (char *) g_ptr_array_index (at, i));
      g_string_append_printf (path, "/%s", c);
      if (lstat (path->str, &st) == 0 && S_ISLNK (st.st_mode))
        {
          g_autofree char *target = g_file_read_link (path->str, NULL);
          g_auto(GStrv) parts = NULL;

          if (target == NULL || ++links > 40)
            break;   /* unreadable or a loop: the kernel stops too */
          if (g_path_is_absolute (target))
            {
              ok = FALSE;
              break;
            }
          parts = g_strsplit (target, "/", -1);
          for (guint i = g_strv_length (parts); i > 0; i--)
            g_queue_push_head (todo, g_strdup (parts[i - 1]));
          continue;
        }
      g_ptr_array_add (at, g_steal_pointer (&c));
    }
  g_queue_free_full (g_steal_pointer (&todo), g_free);
  return ok;
}

static void
assert_links_inside (const char *dest,
                     const char *rel)
{
  g_autofree char *path = rel ? g_build_filename (dest, rel, NULL) : g_strdup (dest);
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *child = rel ? g_build_filename (rel, name, NULL) : g_strdup (name);
      g_autofree char *full = g_build_filename (dest, child, NULL);
      struct stat st;

      if (lstat (full, &st) != 0)
        continue;
      if (S_ISLNK (st.st_mode))
        {
          if (!stays_inside (dest, child))
            {
              g_autofree char *target = g_file_read_link (full, NULL);
              fprintf (stderr, "fuzz-tar: the link %s -> %s leads outside the destination\n",
                       child, target ? target : "?");
            }
          FUZZ_ASSERT (stays_inside (dest, child));
        }
      else if (S_ISDIR (st.st_mode))
        assert_links_inside (dest, child);
    }
}

/* Counts, per inode, the links to regular files below @path. */
static void
count_links (const char *path,
             GHashTable *seen,
             GHashTable *nlinks)
{
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *full = g_build_filename (path, name, NULL);
      struct stat st;
      gpointer key;

      if (lstat (full, &st) != 0)
        continue;
      if (S_ISDIR (st.st_mode))
        count_links (full, seen, nlinks);
      else if (S_ISREG (st.st_mode))
        {
          key = GSIZE_TO_POINTER ((gsize) st.st_ino);
          g_hash_table_insert (seen, key,
                               GUINT_TO_POINTER (GPOINTER_TO_UINT (g_hash_table_lookup (seen, key)) + 1));
          g_hash_table_insert (nlinks, key, GUINT_TO_POINTER ((guint) st.st_nlink));
        }
    }
}

static void
assert_hard_links_inside (const char *dest)
{
  g_autoptr(GHashTable) seen = g_hash_table_new (NULL, NULL);
  g_autoptr(GHashTable) nlinks = g_hash_table_new (NULL, NULL);
  GHashTableIter iter;
  gpointer key, value;

  count_links (dest, seen, nlinks);
  g_hash_table_iter_init (&iter, seen);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      guint n = GPOINTER_TO_UINT (g_hash_table_lookup (nlinks, key));
      if (GPOINTER_TO_UINT (value) != n)
        fprintf (stderr, "fuzz-tar: a layer's file has %u links, %u of them in the destination\n",
                 n, GPOINTER_TO_UINT (value));
      FUZZ_ASSERT (GPOINTER_TO_UINT (value) == n);
    }
}

static void
remove_root (void)
{
  g_autofree char *parent = g_path_get_dirname (root);
  g_autofree char *base = g_path_get_basename (root);
  int fd = open (parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

  if (fd >= 0)
    {
      remove_at (fd, base);
      close (fd);
    }
}

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  fuzz_init ();
  root = g_dir_make_tmp ("sandbox-fuzz-tar-XXXXXX", NULL);
  FUZZ_ASSERT (root != NULL);
  atexit (remove_root);
  return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  g_autofree char *top = NULL;
  g_autofree char *up = NULL;
  g_autofree char *dest = NULL;
  g_autoptr(GFile) dest_file = NULL;
  int root_fd;

  if (root == NULL)
    LLVMFuzzerInitialize (NULL, NULL);
  top = g_build_filename (root, "top", NULL);
  up = g_build_filename (top, "up", NULL);
  dest = g_build_filename (up, "dest", NULL);
  FUZZ_ASSERT (g_mkdir_with_parents (dest, 0700) == 0);
  dest_file = g_file_new_for_path (dest);

  for (int round = 0; round < 2; round++)
    {
      g_autoptr(GInputStream) in = g_memory_input_stream_new_from_data (data, size, NULL);
      g_autoptr(GError) error = NULL;

      if (!sandbox_archive_extract (in, dest_file,
                                    round == 0 ? SANDBOX_ARCHIVE_NONE : SANDBOX_ARCHIVE_KEEP_EXISTING,
                                    NULL, &error))
        FUZZ_ASSERT_ERROR (error);
      assert_only (root, "top");
      assert_only (top, "up");
      assert_only (up, "dest");
      assert_links_inside (dest, NULL);
    }

  /* As an image layer, into an empty destination. */
  {
    g_autoptr(GInputStream) in = g_memory_input_stream_new_from_data (data, size, NULL);
    g_autoptr(GChecksum) checksum = g_checksum_new (G_CHECKSUM_SHA256);
    g_autoptr(GError) error = NULL;
    g_autofree char *whole = NULL;
    int up_fd = open (up, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    FUZZ_ASSERT (up_fd >= 0);
    remove_at (up_fd, "dest");
    close (up_fd);
    FUZZ_ASSERT (g_mkdir (dest, 0700) == 0);
    if (_sandbox_archive_extract_layer (in, dest_file, checksum, NULL, &error))
      {
        whole = g_compute_checksum_for_data (G_CHECKSUM_SHA256, data, size);
        FUZZ_ASSERT (strcmp (whole, g_checksum_get_string (checksum)) == 0);
      }
    else
      FUZZ_ASSERT_ERROR (error);
    assert_only (root, "top");
    assert_only (top, "up");
    assert_only (up, "dest");
    assert_hard_links_inside (dest);
  }

  root_fd = open (root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  FUZZ_ASSERT (root_fd >= 0);
  remove_at (root_fd, "top");
  close (root_fd);
  return 0;
}
