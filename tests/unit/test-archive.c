/* libsandbox - tests of the public tar archive API (sandbox-archive.h):
 * round trips, streaming, errors, cancellation, and path safety against
 * hostile archives built here with libarchive (issue 8, item 8).
 *
 * Every hostile case extracts into ROOT/dest and then checks that ROOT
 * holds nothing but dest (and the bait file some cases aim at, unchanged).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <archive.h>
#include <archive_entry.h>
#include <stdio.h>
#include <linux/fs.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <gio/gunixinputstream.h>
#include <gio/gunixoutputstream.h>
#include <glib-unix.h>

#include <libsandbox/sandbox.h>

#include "../test-util.h"

typedef struct
{
  char  *root;   /* a fresh temporary directory */
  char  *dest;   /* root/dest, where archives go */
  GFile *dest_file;
} Fixture;

static void
remove_tree (const char *path)
{
  struct stat st;

  if (lstat (path, &st) != 0)
    return;
  if (S_ISDIR (st.st_mode))
    {
      g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
      const char *name;

      chmod (path, 0700);
      while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
        {
          g_autofree char *child = g_build_filename (path, name, NULL);
          remove_tree (child);
        }
      rmdir (path);
    }
  else
    unlink (path);
}

static void
fixture_set_up (Fixture       *f,
                gconstpointer  data)
{
  f->root = g_dir_make_tmp ("test-archive-XXXXXX", NULL);
  g_assert_nonnull (f->root);
  f->dest = g_build_filename (f->root, "dest", NULL);
  f->dest_file = g_file_new_for_path (f->dest);
}

static void
fixture_tear_down (Fixture       *f,
                   gconstpointer  data)
{
  remove_tree (f->root);
  g_free (f->root);
  g_free (f->dest);
  g_object_unref (f->dest_file);
}

static char *
path_in (const char *dir,
         const char *rel)
{
  return g_build_filename (dir, rel, NULL);
}

static void
write_file (const char *path,
            const char *contents,
            int         mode)
{
  g_autofree char *parent = g_path_get_dirname (path);

  g_assert_cmpint (g_mkdir_with_parents (parent, 0755), ==, 0);
  g_assert_true (g_file_set_contents (path, contents, -1, NULL));
  g_assert_cmpint (chmod (path, mode), ==, 0);
}

static char *
read_file (const char *path)
{
  char *contents = NULL;

  if (!g_file_get_contents (path, &contents, NULL, NULL))
    return NULL;
  return contents;
}

/* ------------------------------------------------------------------ */
/* Hostile archives, made with libarchive                             */

typedef enum { E_FILE, E_DIR, E_SYMLINK, E_HARDLINK } EntryKind;

typedef struct
{
  EntryKind   kind;
  const char *path;
  const char *data;   /* contents, or the link target */
} Entry;

static GBytes *
make_tar (const Entry *entries,
          guint        n)
{
  struct archive *a = archive_write_new ();
  size_t used = 0;
  gsize size = 1024 * 1024;
  guint8 *buffer = g_malloc0 (size);

  archive_write_set_format_pax_restricted (a);
  archive_write_set_bytes_in_last_block (a, 1);
  g_assert_cmpint (archive_write_open_memory (a, buffer, size, &used), ==, ARCHIVE_OK);
  for (guint i = 0; i < n; i++)
    {
      struct archive_entry *e = archive_entry_new ();

      archive_entry_set_pathname (e, entries[i].path);
      archive_entry_set_mtime (e, 1700000000, 0);
      switch (entries[i].kind)
        {
        case E_FILE:
          archive_entry_set_filetype (e, AE_IFREG);
          archive_entry_set_perm (e, 0644);
          archive_entry_set_size (e, strlen (entries[i].data));
          break;
        case E_DIR:
          archive_entry_set_filetype (e, AE_IFDIR);
          archive_entry_set_perm (e, 0755);
          break;
        case E_SYMLINK:
          archive_entry_set_filetype (e, AE_IFLNK);
          archive_entry_set_perm (e, 0777);
          archive_entry_set_symlink (e, entries[i].data);
          break;
        case E_HARDLINK:
        default:
          archive_entry_set_filetype (e, AE_IFREG);
          archive_entry_set_perm (e, 0644);
          archive_entry_set_hardlink (e, entries[i].data);
          break;
        }
      g_assert_cmpint (archive_write_header (a, e), ==, ARCHIVE_OK);
      if (entries[i].kind == E_FILE)
        g_assert_cmpint (archive_write_data (a, entries[i].data, strlen (entries[i].data)), ==,
                         (la_ssize_t) strlen (entries[i].data));
      archive_entry_free (e);
    }
  g_assert_cmpint (archive_write_close (a), ==, ARCHIVE_OK);
  archive_write_free (a);
  return g_bytes_new_take (g_realloc (buffer, used), used);
}

static gboolean
extract_bytes (Fixture              *f,
               GBytes               *tar,
               SandboxArchiveFlags   flags,
               GError              **error)
{
  g_autoptr(GInputStream) in = g_memory_input_stream_new_from_bytes (tar);

  return sandbox_archive_extract (in, f->dest_file, flags, NULL, error);
}

/* Extraction fails with SANDBOX_ERROR_PROTOCOL naming @culprit, and ROOT
 * holds only dest (plus @bait, if given, with its contents unchanged). */
static void
assert_refused (Fixture    *f,
                GBytes     *tar,
                const char *culprit,
                const char *bait)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *names = NULL;

  g_assert_false (extract_bytes (f, tar, SANDBOX_ARCHIVE_NONE, &error));
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL);
  g_test_message ("refused: %s", error->message);
  g_assert_nonnull (strstr (error->message, culprit));
  names = test_names_in (f->root);
  if (bait != NULL)
    {
      g_autofree char *want = g_strdup_printf ("%s dest", bait);
      g_autofree char *bait_path = path_in (f->root, bait);
      g_autofree char *contents = read_file (bait_path);

      g_assert_cmpstr (names, ==, want);
      g_assert_cmpstr (contents, ==, "bait\n");
    }
  else
    g_assert_cmpstr (names, ==, "dest");
}

static void
plant_bait (Fixture *f)
{
  g_autofree char *bait = path_in (f->root, "bait");

  write_file (bait, "bait\n", 0644);
}

static void
test_unsafe_dotdot (Fixture       *f,
                    gconstpointer  data)
{
  const Entry entries[] = {
    { E_FILE, "ok.txt", "ok\n" },
    { E_FILE, "../escaped", "x\n" },
  };
  g_autoptr(GBytes) tar = make_tar (entries, G_N_ELEMENTS (entries));
  g_autofree char *ok = path_in (f->dest, "ok.txt");
  g_autofree char *contents = NULL;

  assert_refused (f, tar, "../escaped", NULL);
  /* What came before the hostile entry is there. */
  contents = read_file (ok);
  g_assert_cmpstr (contents, ==, "ok\n");
}

/* An archive's names are the sandbox's (a task's outputs) or an image's:
 * a refused entry named in the message as it was reached the terminal
 * that showed it with its escape sequences (the window's title set, the
 * clipboard filled: OSC 52). The message shows each control character
 * escaped. */
static void
test_unsafe_names_shown_escaped (Fixture       *f,
                                 gconstpointer  data)
{
  const Entry entries[][1] = {
    { { E_FILE, "../\033]0;TITLE\007\033]52;c;ZWNobyBwd25lZAo=\007x", "x\n" } },
    { { E_SYMLINK, "\033[2Klink", "/etc" } },
  };

  for (guint i = 0; i < G_N_ELEMENTS (entries); i++)
    {
      g_autoptr(GBytes) tar = make_tar (entries[i], 1);
      g_autoptr(GError) error = NULL;

      g_assert_false (extract_bytes (f, tar, SANDBOX_ARCHIVE_NONE, &error));
      g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL);
      g_test_message ("refused: %s", error->message);
      g_assert_true (g_utf8_validate (error->message, -1, NULL));
      for (const char *p = error->message; *p != '\0'; p = g_utf8_next_char (p))
        {
          gunichar c = g_utf8_get_char (p);

          g_assert_false (c < 0x20 || (c >= 0x7f && c < 0xa0));
        }
      g_assert_nonnull (strstr (error->message, "\\x1b"));
    }
}

static void
test_unsafe_dotdot_inner (Fixture       *f,
                          gconstpointer  data)
{
  const Entry entries[] = {
    { E_DIR, "a", "" },
    { E_FILE, "a/../../escaped", "x\n" },
  };
  g_autoptr(GBytes) tar = make_tar (entries, G_N_ELEMENTS (entries));

  assert_refused (f, tar, "a/../../escaped", NULL);
}

static void
test_unsafe_absolute (Fixture       *f,
                      gconstpointer  data)
{
  g_autofree char *target = path_in (f->root, "absolute");
  const Entry entries[] = { { E_FILE, target, "x\n" } };
  g_autoptr(GBytes) tar = make_tar (entries, G_N_ELEMENTS (entries));

  assert_refused (f, tar, "absolute", NULL);
}

static void
test_unsafe_symlink_absolute (Fixture       *f,
                              gconstpointer  data)
{
  const Entry entries[] = {
    { E_SYMLINK, "etc", "/etc" },
    { E_FILE, "etc/evil", "x\n" },
  };
  g_autoptr(GBytes) tar = make_tar (entries, G_N_ELEMENTS (entries));
  g_autofree char *link = path_in (f->dest, "etc");

  assert_refused (f, tar, "/etc", NULL);
  g_assert_false (g_file_test (link, G_FILE_TEST_EXISTS | G_FILE_TEST_IS_SYMLINK));
}

/* A link out, then a file written through it: the bait must not change. */
static void
test_unsafe_symlink_then_file (Fixture       *f,
                               gconstpointer  data)
{
  const Entry entries[] = {
    { E_SYMLINK, "up", ".." },
    { E_FILE, "up/bait", "overwritten\n" },
  };
  g_autoptr(GBytes) tar = make_tar (entries, G_N_ELEMENTS (entries));

  plant_bait (f);
  assert_refused (f, tar, "up", "bait");
}

/* A link that stays inside, then a file through it: refused too (paths
 * through links are never followed), with a SANDBOX_ERROR. */
static void
test_unsafe_through_inner_link (Fixture       *f,
                                gconstpointer  data)
{
  const Entry entries[] = {
    { E_DIR, "real", "" },
    { E_SYMLINK, "alias", "real" },
    { E_FILE, "alias/f", "x\n" },
  };
  g_autoptr(GBytes) tar = make_tar (entries, G_N_ELEMENTS (entries));
  g_autofree char *inside = path_in (f->dest, "real/f");

  assert_refused (f, tar, "alias/f", NULL);
  g_assert_false (g_file_test (inside, G_FILE_TEST_EXISTS));
}

/* A link already in the destination, pointing out: an archive writing
 * through it is refused; one replacing it replaces the link, not the bait. */
static void
test_unsafe_existing_link (Fixture       *f,
                           gconstpointer  data)
{
  g_autofree char *link = path_in (f->dest, "out");
  g_autofree char *bait = path_in (f->root, "bait");
  g_autofree char *contents = NULL;
  const Entry through[] = { { E_FILE, "out/bait", "overwritten\n" } };
  const Entry replace[] = { { E_FILE, "out", "replaced\n" } };
  g_autoptr(GBytes) tar_through = make_tar (through, G_N_ELEMENTS (through));
  g_autoptr(GBytes) tar_replace = make_tar (replace, G_N_ELEMENTS (replace));
  g_autoptr(GError) error = NULL;

  plant_bait (f);
  g_assert_cmpint (g_mkdir_with_parents (f->dest, 0755), ==, 0);
  g_assert_cmpint (symlink ("../bait", link), ==, 0);
  /* not through the link... */
  assert_refused (f, tar_through, "out/bait", "bait");
  /* ...and a file of the same name replaces the link itself */
  g_assert_true (extract_bytes (f, tar_replace, SANDBOX_ARCHIVE_NONE, &error));
  g_assert_no_error (error);
  g_assert_false (g_file_test (link, G_FILE_TEST_IS_SYMLINK));
  g_free (contents);
  contents = read_file (link);
  g_assert_cmpstr (contents, ==, "replaced\n");
  g_free (contents);
  contents = read_file (bait);
  g_assert_cmpstr (contents, ==, "bait\n");
}

/* Each link stays inside on its own, but x/y -> ".." turns "x/y/.." into
 * the parent of the destination: refused. */
static void
test_unsafe_symlink_chain (Fixture       *f,
                           gconstpointer  data)
{
  const Entry entries[] = {
    { E_DIR, "x", "" },
    { E_SYMLINK, "x/y", ".." },
    { E_SYMLINK, "s", "x/y/.." },
  };
  g_autoptr(GBytes) tar = make_tar (entries, G_N_ELEMENTS (entries));
  g_autofree char *s = path_in (f->dest, "s");

  assert_refused (f, tar, "x/y/..", NULL);
  g_assert_false (g_file_test (s, G_FILE_TEST_IS_SYMLINK));
}

/* Hard links are skipped: they could name any file, in or out. */
static void
test_unsafe_hardlink (Fixture       *f,
                      gconstpointer  data)
{
  g_autofree char *bait = path_in (f->root, "bait");
  const Entry entries[] = {
    { E_FILE, "ok.txt", "ok\n" },
    { E_HARDLINK, "h1", bait },
    { E_HARDLINK, "h2", "../bait" },
    { E_HARDLINK, "h3", "ok.txt" },
  };
  g_autoptr(GBytes) tar = make_tar (entries, G_N_ELEMENTS (entries));
  g_autoptr(GError) error = NULL;
  g_autofree char *names = NULL;
  g_autofree char *contents = NULL;
  struct stat st;

  plant_bait (f);
  g_assert_true (extract_bytes (f, tar, SANDBOX_ARCHIVE_NONE, &error));
  g_assert_no_error (error);
  names = test_names_in (f->dest);
  g_assert_cmpstr (names, ==, "ok.txt");
  g_assert_cmpint (stat (bait, &st), ==, 0);
  g_assert_cmpint (st.st_nlink, ==, 1);
  contents = read_file (bait);
  g_assert_cmpstr (contents, ==, "bait\n");
}

/* ------------------------------------------------------------------ */
/* The public API                                                      */

static GBytes *
archive_of (const char          *base,
            const char * const  *paths,
            GError             **error)
{
  g_autoptr(GFile) base_file = g_file_new_for_path (base);
  g_autoptr(GOutputStream) out = g_memory_output_stream_new_resizable ();

  if (!sandbox_archive_write (base_file, paths, out, NULL, error))
    return NULL;
  g_assert_true (g_output_stream_close (out, NULL, NULL));
  return g_memory_output_stream_steal_as_bytes (G_MEMORY_OUTPUT_STREAM (out));
}

static void
make_tree (const char *src)
{
  g_autofree char *readme = path_in (src, "README");
  g_autofree char *script = path_in (src, "bin/run.sh");
  g_autofree char *deep = path_in (src, "a/b/c/deep.txt");
  g_autofree char *empty = path_in (src, "empty/inner-empty");
  g_autofree char *link = path_in (src, "link");
  g_autofree char *up = path_in (src, "a/b/up");
  g_autofree char *dangling = path_in (src, "dangling");

  write_file (readme, "read me\n", 0644);
  write_file (script, "#!/bin/sh\necho hi\n", 0755);
  write_file (deep, "deep\n", 0600);
  g_assert_cmpint (g_mkdir_with_parents (empty, 0755), ==, 0);
  g_assert_cmpint (symlink ("bin/run.sh", link), ==, 0);
  g_assert_cmpint (symlink ("../../README", up), ==, 0);
  g_assert_cmpint (symlink ("not-there", dangling), ==, 0);
}

/* sandbox_archive_extract_paths: the archive is a sandbox's, the list the
 * caller's (a Metaflow task's own files). Before, the whole archive was
 * extracted: a sandbox whose listing named its own files could ship any
 * other file of the destination in the tar (another task's DONE.lock). */
static void
test_only_listed_paths (Fixture       *f,
                        gconstpointer  data)
{
  const char *paths[] = { "a/mine", "a/also", "a/absent", NULL };
  const Entry entries[] = {
    { E_DIR, "a", NULL },
    { E_FILE, "a/mine", "mine\n" },
    { E_FILE, "./a/also", "also\n" },
    { E_FILE, "other/DONE.lock", "planted\n" },
    { E_FILE, "a/after", "after\n" },
  };
  const Entry link_entries[] = { { E_SYMLINK, "a/mine", "also" } };
  const Entry hard_entries[] = {
    { E_FILE, "a/also", "also\n" },
    { E_HARDLINK, "a/mine", "a/also" },
  };
  const Entry dir_entries[] = { { E_DIR, "a/mine", NULL }, { E_DIR, "made", NULL } };
  const Entry *tars[] = { entries, link_entries, hard_entries, dir_entries };
  const guint sizes[] = { G_N_ELEMENTS (entries), G_N_ELEMENTS (link_entries),
                          G_N_ELEMENTS (hard_entries), G_N_ELEMENTS (dir_entries) };
  const char *culprits[] = { "other/DONE.lock", "a/mine", "a/mine", NULL };

  for (guint i = 0; i < G_N_ELEMENTS (tars); i++)
    {
      g_autoptr(GBytes) tar = make_tar (tars[i], sizes[i]);
      g_autoptr(GInputStream) in = g_memory_input_stream_new_from_bytes (tar);
      g_autoptr(GError) error = NULL;
      g_autofree char *mine = path_in (f->dest, "a/mine");
      g_autofree char *also = path_in (f->dest, "a/also");
      g_autofree char *contents = NULL;
      struct stat st;

      remove_tree (f->dest);
      if (culprits[i] == NULL)
        {
          /* Directory entries make nothing; no listed file is no error. */
          g_assert_true (sandbox_archive_extract_paths (in, f->dest_file, paths,
                                                        SANDBOX_ARCHIVE_NONE, NULL, &error));
          g_assert_no_error (error);
          g_assert_false (g_file_test (mine, G_FILE_TEST_EXISTS));
          g_autofree char *made = path_in (f->dest, "made");
          g_assert_false (g_file_test (made, G_FILE_TEST_EXISTS));
          continue;
        }
      g_assert_false (sandbox_archive_extract_paths (in, f->dest_file, paths,
                                                     SANDBOX_ARCHIVE_NONE, NULL, &error));
      g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL);
      g_test_message ("refused: %s", error->message);
      g_assert_nonnull (strstr (error->message, culprits[i]));
      if (i == 0)
        {
          g_autofree char *other = path_in (f->dest, "other");
          g_autofree char *after = path_in (f->dest, "a/after");

          contents = read_file (mine);
          g_assert_cmpstr (contents, ==, "mine\n");
          g_clear_pointer (&contents, g_free);
          contents = read_file (also);
          g_assert_cmpstr (contents, ==, "also\n");
          g_assert_false (g_file_test (other, G_FILE_TEST_EXISTS));
          g_assert_false (g_file_test (after, G_FILE_TEST_EXISTS));
        }
      else
        /* No link under a listed name (a symbolic one, nor a hard one). */
        g_assert_true (lstat (mine, &st) != 0);
    }
}

static void
test_round_trip (Fixture       *f,
                 gconstpointer  data)
{
  g_autofree char *src = path_in (f->root, "src");
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) tar = NULL;
  struct { const char *path; const char *contents; int mode; } files[] = {
    { "README", "read me\n", 0644 },
    { "bin/run.sh", "#!/bin/sh\necho hi\n", 0755 },
    { "a/b/c/deep.txt", "deep\n", 0600 },
  };
  struct { const char *path; const char *target; } links[] = {
    { "link", "bin/run.sh" },
    { "a/b/up", "../../README" },
    { "dangling", "not-there" },
  };
  g_autofree char *empty = path_in (f->dest, "empty/inner-empty");
  g_autofree char *through = path_in (f->dest, "a/b/up");
  g_autofree char *through_contents = NULL;

  make_tree (src);
  tar = archive_of (src, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (tar);
  g_assert_true (extract_bytes (f, tar, SANDBOX_ARCHIVE_NONE, &error));
  g_assert_no_error (error);

  for (guint i = 0; i < G_N_ELEMENTS (files); i++)
    {
      g_autofree char *path = path_in (f->dest, files[i].path);
      g_autofree char *contents = read_file (path);
      struct stat st;

      g_assert_cmpstr (contents, ==, files[i].contents);
      g_assert_cmpint (lstat (path, &st), ==, 0);
      g_assert_true (S_ISREG (st.st_mode));
      g_assert_cmpint (st.st_mode & 0777, ==, files[i].mode);
    }
  for (guint i = 0; i < G_N_ELEMENTS (links); i++)
    {
      g_autofree char *path = path_in (f->dest, links[i].path);
      g_autofree char *target = g_file_read_link (path, &error);

      g_assert_no_error (error);
      g_assert_cmpstr (target, ==, links[i].target);
    }
  g_assert_true (g_file_test (empty, G_FILE_TEST_IS_DIR));
  /* a link inside the tree leads where it did */
  through_contents = read_file (through);
  g_assert_cmpstr (through_contents, ==, "read me\n");
}

static void
test_paths_in_order (Fixture       *f,
                     gconstpointer  data)
{
  g_autofree char *src = path_in (f->root, "src");
  const char * const paths[] = { "bin", "README", NULL };
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) tar = NULL;
  struct archive *a;
  struct archive_entry *entry;
  g_autoptr(GString) order = g_string_new (NULL);
  gsize size;
  const void *p;
  g_autofree char *names = NULL;

  make_tree (src);
  tar = archive_of (src, paths, &error);
  g_assert_no_error (error);
  p = g_bytes_get_data (tar, &size);
  a = archive_read_new ();
  archive_read_support_format_tar (a);
  g_assert_cmpint (archive_read_open_memory (a, p, size), ==, ARCHIVE_OK);
  while (archive_read_next_header (a, &entry) == ARCHIVE_OK)
    g_string_append_printf (order, "%s;", archive_entry_pathname (entry));
  archive_read_free (a);
  /* the order of @paths, not the order of the directory */
  g_assert_cmpstr (order->str, ==, "bin/;bin/run.sh;README;");

  g_assert_true (extract_bytes (f, tar, SANDBOX_ARCHIVE_NONE, &error));
  g_assert_no_error (error);
  names = test_names_in (f->dest);
  g_assert_cmpstr (names, ==, "README bin");
}

static void
test_keep_existing (Fixture       *f,
                    gconstpointer  data)
{
  const Entry entries[] = { { E_FILE, "f", "from the archive\n" }, { E_FILE, "g", "new\n" } };
  g_autoptr(GBytes) tar = make_tar (entries, G_N_ELEMENTS (entries));
  g_autofree char *path = path_in (f->dest, "f");
  g_autofree char *other = path_in (f->dest, "g");
  g_autofree char *contents = NULL;
  g_autoptr(GError) error = NULL;

  write_file (path, "already here\n", 0644);
  g_assert_true (extract_bytes (f, tar, SANDBOX_ARCHIVE_KEEP_EXISTING, &error));
  g_assert_no_error (error);
  contents = read_file (path);
  g_assert_cmpstr (contents, ==, "already here\n");
  g_free (contents);
  contents = read_file (other);
  g_assert_cmpstr (contents, ==, "new\n");
  g_assert_true (extract_bytes (f, tar, SANDBOX_ARCHIVE_NONE, &error));
  g_assert_no_error (error);
  g_free (contents);
  contents = read_file (path);
  g_assert_cmpstr (contents, ==, "from the archive\n");
}

/* A large file through a pipe, written by one thread and extracted by
 * another: never whole in memory (the pipe holds 64 KiB). */
#define LARGE_SIZE (48u * 1024u * 1024u)

typedef struct
{
  GFile         *base;
  GOutputStream *out;
  GCancellable  *cancellable;
  GError        *error;
  gboolean       ok;
} Writer;

static gpointer
writer_thread (gpointer user_data)
{
  Writer *w = user_data;

  w->ok = sandbox_archive_write (w->base, NULL, w->out, w->cancellable, &w->error);
  g_output_stream_close (w->out, NULL, NULL);
  return NULL;
}

static char *
checksum_of_file (const char *path)
{
  g_autoptr(GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
  g_autoptr(GMappedFile) map = g_mapped_file_new (path, FALSE, NULL);

  g_assert_nonnull (map);
  g_checksum_update (sum, (const guchar *) g_mapped_file_get_contents (map), g_mapped_file_get_length (map));
  return g_strdup (g_checksum_get_string (sum));
}

static void
test_large_streaming (Fixture       *f,
                      gconstpointer  data)
{
  g_autofree char *src = path_in (f->root, "src");
  g_autofree char *big = path_in (src, "big.bin");
  g_autofree char *copy = path_in (f->dest, "big.bin");
  g_autofree char *want = NULL;
  g_autofree char *got = NULL;
  g_autoptr(GInputStream) in = NULL;
  g_autoptr(GError) error = NULL;
  Writer w = { 0, };
  GThread *thread;
  int fds[2];
  FILE *fp;
  struct stat st;

  g_assert_cmpint (g_mkdir_with_parents (src, 0755), ==, 0);
  fp = fopen (big, "wb");
  g_assert_nonnull (fp);
  for (guint32 i = 0; i < LARGE_SIZE / 4; i++)
    {
      guint32 v = i * 2654435761u;
      fwrite (&v, sizeof v, 1, fp);
    }
  fclose (fp);
  want = checksum_of_file (big);

  g_assert_cmpint (pipe (fds), ==, 0);
  w.base = g_file_new_for_path (src);
  w.out = g_unix_output_stream_new (fds[1], TRUE);
  in = g_unix_input_stream_new (fds[0], TRUE);
  thread = g_thread_new ("archive-writer", writer_thread, &w);
  g_assert_true (sandbox_archive_extract (in, f->dest_file, SANDBOX_ARCHIVE_NONE, NULL, &error));
  g_assert_no_error (error);
  g_thread_join (thread);
  g_assert_no_error (w.error);
  g_assert_true (w.ok);
  g_object_unref (w.base);
  g_object_unref (w.out);

  g_assert_cmpint (stat (copy, &st), ==, 0);
  g_assert_cmpuint (st.st_size, ==, LARGE_SIZE);
  got = checksum_of_file (copy);
  g_assert_cmpstr (got, ==, want);
}

static void
test_missing_source (Fixture       *f,
                     gconstpointer  data)
{
  g_autofree char *src = path_in (f->root, "src");
  g_autofree char *nowhere = path_in (f->root, "nowhere");
  const char * const missing[] = { "README", "no-such-file", NULL };
  const char * const up[] = { "../etc", NULL };
  const char * const absolute[] = { "/etc/passwd", NULL };
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) tar = NULL;

  make_tree (src);
  tar = archive_of (nowhere, NULL, &error);
  g_assert_null (tar);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "nowhere"));
  g_clear_error (&error);

  tar = archive_of (src, missing, &error);
  g_assert_null (tar);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "no-such-file"));
  g_clear_error (&error);

  tar = archive_of (src, up, &error);
  g_assert_null (tar);
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  tar = archive_of (src, absolute, &error);
  g_assert_null (tar);
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT);
}

/* Garbage, and an archive cut in the middle of a file: an error that says
 * so; the complete files before the break are there, nothing after it,
 * and no temporary file is left. */
static void
test_corrupt (Fixture       *f,
              gconstpointer  data)
{
  const Entry entries[] = {
    { E_FILE, "first", "first\n" },
    { E_FILE, "second", "a longer second file that the cut will truncate\n" },
    { E_FILE, "third", "third\n" },
  };
  g_autoptr(GBytes) tar = make_tar (entries, G_N_ELEMENTS (entries));
  g_autoptr(GBytes) cut = g_bytes_new_from_bytes (tar, 0, 1024 + 512 + 20);
  g_autoptr(GBytes) garbage = g_bytes_new_static ("this is not a tar stream at all", 31);
  g_autoptr(GError) error = NULL;
  g_autofree char *names = NULL;

  g_assert_false (extract_bytes (f, garbage, SANDBOX_ARCHIVE_NONE, &error));
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_FAILED);
  g_assert_nonnull (strstr (error->message, "archive"));
  g_clear_error (&error);

  g_assert_false (extract_bytes (f, cut, SANDBOX_ARCHIVE_NONE, &error));
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_FAILED);
  names = test_names_in (f->dest);
  g_assert_cmpstr (names, ==, "first");
}

static void
test_cancelled_before (Fixture       *f,
                       gconstpointer  data)
{
  g_autofree char *src = path_in (f->root, "src");
  g_autoptr(GFile) base = NULL;
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GOutputStream) out = g_memory_output_stream_new_resizable ();
  g_autoptr(GError) error = NULL;
  const Entry entries[] = { { E_FILE, "f", "x\n" } };
  g_autoptr(GBytes) tar = make_tar (entries, G_N_ELEMENTS (entries));
  g_autoptr(GInputStream) in = g_memory_input_stream_new_from_bytes (tar);
  g_autofree char *names = NULL;

  make_tree (src);
  base = g_file_new_for_path (src);
  g_cancellable_cancel (cancellable);
  g_assert_false (sandbox_archive_write (base, NULL, out, cancellable, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  g_assert_false (sandbox_archive_extract (in, f->dest_file, SANDBOX_ARCHIVE_NONE, cancellable, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  names = test_names_in (f->dest);
  g_assert_cmpstr (names, ==, "");
}

/* Writes the first half of @tar to @fd, then cancels the extraction that
 * waits for the rest, and closes the pipe once it has. */
typedef struct
{
  int           fd;
  GBytes       *tar;
  GCancellable *cancellable;
} Feeder;

static gpointer
feeder_thread (gpointer user_data)
{
  Feeder *feeder = user_data;
  gsize size;
  const guint8 *p = g_bytes_get_data (feeder->tar, &size);
  gsize half = size / 2, done = 0;

  while (done < half)
    {
      ssize_t n = write (feeder->fd, p + done, half - done);

      if (n < 0 && errno == EINTR)
        continue;
      g_assert_cmpint (n, >, 0);
      done += n;
    }
  g_usleep (100 * 1000);
  g_cancellable_cancel (feeder->cancellable);
  g_usleep (100 * 1000);
  close (feeder->fd);
  return NULL;
}

static gboolean
cancel_later (gpointer user_data)
{
  g_cancellable_cancel (user_data);
  return G_SOURCE_REMOVE;
}

/* Cancelled while blocked: writing into a pipe nobody reads, and
 * extracting from a pipe that stops in the middle of a file. */
static void
test_cancelled_midway (Fixture       *f,
                       gconstpointer  data)
{
  g_autofree char *src = path_in (f->root, "src");
  g_autofree char *big = path_in (src, "big.bin");
  g_autoptr(GError) error = NULL;
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GMainContext) context = g_main_context_new ();
  g_autoptr(GSource) timer = NULL;
  g_autoptr(GFile) base = NULL;
  g_autoptr(GOutputStream) out = NULL;
  g_autoptr(GInputStream) in = NULL;
  g_autoptr(GBytes) tar = NULL;
  g_autofree char *names = NULL;
  gint64 start;
  int fds[2];

  g_assert_cmpint (g_mkdir_with_parents (src, 0755), ==, 0);
  {
    g_autofree char *zeros = g_malloc0 (1024 * 1024);
    g_assert_true (g_file_set_contents (big, zeros, 1024 * 1024, NULL));
  }
  base = g_file_new_for_path (src);

  /* write: the pipe fills after 64 KiB and the write waits (non-blocking
   * fd: GUnixOutputStream then polls with the cancellable) */
  g_assert_cmpint (pipe (fds), ==, 0);
  g_assert_true (g_unix_set_fd_nonblocking (fds[1], TRUE, NULL));
  out = g_unix_output_stream_new (fds[1], TRUE);
  timer = g_timeout_source_new (200);
  g_source_set_callback (timer, cancel_later, cancellable, NULL);
  g_source_attach (timer, NULL);
  {
    Writer w = { base, out, cancellable, NULL, FALSE };
    GThread *thread = g_thread_new ("archive-writer", writer_thread, &w);

    start = g_get_monotonic_time ();
    while (!g_cancellable_is_cancelled (cancellable))
      g_main_context_iteration (NULL, TRUE);
    g_thread_join (thread);
    g_assert_false (w.ok);
    g_assert_error (w.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
    g_clear_error (&w.error);
    g_assert_cmpint (g_get_monotonic_time () - start, <, 30 * G_USEC_PER_SEC);
  }
  close (fds[0]);

  /* extract: the stream stops in the middle of big.bin and waits */
  g_cancellable_reset (cancellable);
  tar = archive_of (src, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (pipe (fds), ==, 0);
  in = g_unix_input_stream_new (fds[0], TRUE);
  {
    Feeder feeder = { fds[1], tar, cancellable };
    GThread *thread = g_thread_new ("archive-feeder", feeder_thread, &feeder);

    start = g_get_monotonic_time ();
    g_assert_false (sandbox_archive_extract (in, f->dest_file, SANDBOX_ARCHIVE_NONE, cancellable, &error));
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
    g_assert_cmpint (g_get_monotonic_time () - start, <, 30 * G_USEC_PER_SEC);
    g_thread_join (thread);
  }
  /* no partial file, no temporary file */
  names = test_names_in (f->dest);
  g_assert_cmpstr (names, ==, "");
}

/* libsandbox loads libarchive at the first tar stream (it is not linked):
 * without it, both directions fail with an error that says what to
 * install, and nothing else breaks. Run in a child, since the library
 * tries the load once per process. */
static void
test_libarchive_missing (Fixture       *f,
                         gconstpointer  data)
{
  if (g_test_subprocess ())
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GFile) base = g_file_new_for_path (f->root);
      g_autoptr(GOutputStream) out = g_memory_output_stream_new_resizable ();
      g_autoptr(GInputStream) in = g_memory_input_stream_new_from_data ("", 0, NULL);

      g_setenv ("SANDBOX_LIBARCHIVE", "libsandbox-test-no-such-libarchive.so.0", TRUE);
      g_assert_false (sandbox_archive_write (base, NULL, out, NULL, &error));
      g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_SUPPORTED);
      g_assert_nonnull (strstr (error->message, "libarchive13"));
      g_assert_nonnull (strstr (error->message, "libsandbox-test-no-such-libarchive.so.0"));
      g_clear_error (&error);
      g_assert_false (sandbox_archive_extract (in, f->dest_file, SANDBOX_ARCHIVE_NONE, NULL, &error));
      g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_SUPPORTED);
      g_print ("both refused\n");
      return;
    }
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_passed ();
  g_test_trap_assert_stdout ("*both refused*");
}

/* ------------------------------------------------------------------ */
/* Writing a tree that someone else writes too                         */

/* The tree archived may be one a sandbox writes too (a read-write mount:
 * the Metaflow datastore, a project directory), and the archive goes
 * elsewhere (a remote sandbox, as a task's inputs). A path through a link,
 * or a directory swapped for a link mid-walk, led the host to archive
 * host files; a FIFO swapped in for a file made it wait for good. */

/* A host directory with a secret, outside the tree. */
static char *
plant_secret_dir (Fixture *f)
{
  g_autofree char *secret = path_in (f->root, "host/secret");

  write_file (secret, "HOST-SECRET\n", 0600);
  return path_in (f->root, "host");
}

static gboolean
bytes_contain (GBytes     *bytes,
               const char *needle)
{
  gsize size = 0;
  const char *data = bytes != NULL ? g_bytes_get_data (bytes, &size) : NULL;

  return data != NULL && memmem (data, size, needle, strlen (needle)) != NULL;
}

/* A path whose directory is a link: refused, nothing of the host archived
 * (before, "sub/secret" archived the host's file). Control: the same path
 * through a real directory. */
static void
test_write_through_link (Fixture       *f,
                         gconstpointer  data)
{
  g_autofree char *host = plant_secret_dir (f);
  g_autofree char *src = path_in (f->root, "src");
  g_autofree char *sub = path_in (src, "sub");
  g_autofree char *real = path_in (src, "real/secret");
  const char * const through[] = { "sub/secret", NULL };
  const char * const whole_sub[] = { "sub/", NULL };
  const char * const control[] = { "real/secret", NULL };
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) tar = NULL;

  write_file (real, "mine\n", 0644);
  g_assert_cmpint (symlink (host, sub), ==, 0);

  tar = archive_of (src, through, &error);
  g_assert_false (bytes_contain (tar, "HOST-SECRET"));
  g_assert_null (tar);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_DIRECTORY);
  g_assert_nonnull (strstr (error->message, "sub"));
  g_clear_error (&error);

  /* "sub/" names the link itself: stored as a link, not followed. */
  tar = archive_of (src, whole_sub, &error);
  g_assert_no_error (error);
  g_assert_false (bytes_contain (tar, "HOST-SECRET"));
  g_clear_pointer (&tar, g_bytes_unref);

  tar = archive_of (src, control, &error);
  g_assert_no_error (error);
  g_assert_true (bytes_contain (tar, "mine\n"));
}

typedef struct
{
  char          *a;
  char          *b;
  volatile gint  stop;
  guint          swaps;
} Swapper;

static gpointer
swap_thread (gpointer data)
{
  Swapper *s = data;

  while (!g_atomic_int_get (&s->stop))
    if (renameat2 (AT_FDCWD, s->a, AT_FDCWD, s->b, RENAME_EXCHANGE) == 0)
      s->swaps++;
  return NULL;
}

/* A directory of the tree swapped for a link to a host directory, and
 * back, while the tree is archived 3,000 times: no archive holds the
 * host's file (before, the walk listed and read the host directory
 * through the link 1 to 3 times in 1,000). Each archive either succeeds
 * or fails naming the change. */
static void
test_write_swap_race (Fixture       *f,
                      gconstpointer  data)
{
  g_autofree char *host = plant_secret_dir (f);
  g_autofree char *src = path_in (f->root, "src");
  g_autofree char *inner = path_in (src, "d/secret");
  Swapper s = { 0 };
  GThread *thread;
  guint leaks = 0, written = 0;

  write_file (inner, "inside\n", 0644);
  s.a = path_in (src, "d");
  s.b = path_in (src, "l");
  g_assert_cmpint (symlink (host, s.b), ==, 0);
  thread = g_thread_new ("swap", swap_thread, &s);
  for (guint i = 0; i < 3000; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GBytes) tar = archive_of (src, NULL, &error);

      if (bytes_contain (tar, "HOST-SECRET"))
        leaks++;
      if (tar != NULL)
        written++;
      else
        g_assert_nonnull (error);
    }
  g_atomic_int_set (&s.stop, 1);
  g_thread_join (thread);
  g_test_message ("%u swaps, %u archives written", s.swaps, written);
  g_assert_cmpuint (leaks, ==, 0);
  g_assert_cmpuint (written, >, 0);
  g_free (s.a);
  g_free (s.b);
}

/* A file swapped for a FIFO (no writer) and back while the tree is
 * archived 2,000 times: each archive ends, with the file or refused. Before,
 * open() met the FIFO after lstat() saw the file, and waited for good. */
static void
test_write_fifo_race (Fixture       *f,
                      gconstpointer  data)
{
  g_autofree char *src = path_in (f->root, "src");
  Swapper s = { 0 };
  GThread *thread;
  guint written = 0;

  s.a = path_in (src, "f");
  s.b = path_in (src, "p");
  write_file (s.a, "file\n", 0644);
  g_assert_cmpint (mkfifo (s.b, 0644), ==, 0);
  thread = g_thread_new ("swap", swap_thread, &s);
  for (guint i = 0; i < 2000; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GBytes) tar = archive_of (src, NULL, &error);

      if (tar != NULL)
        written++;
    }
  g_atomic_int_set (&s.stop, 1);
  g_thread_join (thread);
  g_test_message ("%u swaps, %u archives written", s.swaps, written);
  g_assert_cmpuint (written, >, 0);
  g_free (s.a);
  g_free (s.b);
}

/* A sparse entry (GNU tar --sparse: a map of data blocks and the size)
 * says 256 MiB in a tar of a few KiB. The extraction wrote the holes as
 * zeros: a sandbox's tar (a task's logs or outputs, an image layer) had
 * this machine write all of it, or fill its disk. The holes stay holes. */
static void
test_unsafe_sparse_entry (Fixture       *f,
                          gconstpointer  data)
{
  g_autofree char *src = path_in (f->root, "src");
  g_autofree char *tar = path_in (f->root, "sparse.tar");
  g_autofree char *cmd = NULL;
  g_autofree char *qsrc = g_shell_quote (src), *qtar = g_shell_quote (tar);
  g_autofree char *out = NULL;
  g_autoptr(GFile) tar_file = g_file_new_for_path (tar);
  g_autoptr(GFileInputStream) in = NULL;
  g_autoptr(GError) error = NULL;
  const char *argv[] = { "/bin/sh", "-c", NULL, NULL };
  char tail[6] = { 0 };
  struct stat st;
  int status, fd;

  g_assert_cmpint (g_mkdir_with_parents (src, 0755), ==, 0);
  cmd = g_strdup_printf ("cd %s && truncate -s 256M big && printf tail >> big && "
                         "tar --sparse -cf %s big", qsrc, qtar);
  argv[2] = cmd;
  if (!g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, NULL, NULL, &status, NULL) ||
      !g_spawn_check_wait_status (status, NULL))
    {
      g_test_skip ("no GNU tar with --sparse here");
      return;
    }
  g_assert_cmpint (stat (tar, &st), ==, 0);
  g_assert_cmpint (st.st_size, <, 1 << 20);

  in = g_file_read (tar_file, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (sandbox_archive_extract (G_INPUT_STREAM (in), f->dest_file, SANDBOX_ARCHIVE_NONE, NULL, &error));
  g_assert_no_error (error);
  out = path_in (f->dest, "big");
  g_assert_cmpint (stat (out, &st), ==, 0);
  g_assert_cmpint (st.st_size, ==, (256 << 20) + 4);
  /* Its blocks: the tail, not 256 MiB of zeros. */
  g_assert_cmpint ((gint64) st.st_blocks * 512, <, 1 << 20);
  fd = open (out, O_RDONLY | O_CLOEXEC);
  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (pread (fd, tail, 4, 256 << 20), ==, 4);
  close (fd);
  g_assert_cmpstr (tail, ==, "tail");
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

#define ADD(name, func) g_test_add ("/archive/" name, Fixture, NULL, fixture_set_up, func, fixture_tear_down)
  ADD ("round-trip", test_round_trip);
  ADD ("paths-in-order", test_paths_in_order);
  ADD ("keep-existing", test_keep_existing);
  ADD ("large-streaming", test_large_streaming);
  ADD ("missing-source", test_missing_source);
  ADD ("corrupt", test_corrupt);
  ADD ("cancelled-before", test_cancelled_before);
  ADD ("cancelled-midway", test_cancelled_midway);
  ADD ("unsafe/dotdot", test_unsafe_dotdot);
  ADD ("unsafe/dotdot-inner", test_unsafe_dotdot_inner);
  ADD ("unsafe/absolute", test_unsafe_absolute);
  ADD ("unsafe/symlink-absolute", test_unsafe_symlink_absolute);
  ADD ("unsafe/symlink-then-file", test_unsafe_symlink_then_file);
  ADD ("unsafe/through-inner-link", test_unsafe_through_inner_link);
  ADD ("unsafe/existing-link", test_unsafe_existing_link);
  ADD ("unsafe/symlink-chain", test_unsafe_symlink_chain);
  ADD ("unsafe/hardlink", test_unsafe_hardlink);
  ADD ("unsafe/only-listed-paths", test_only_listed_paths);
  ADD ("unsafe/names-shown-escaped", test_unsafe_names_shown_escaped);
  ADD ("unsafe/sparse-entry", test_unsafe_sparse_entry);
  ADD ("libarchive-missing", test_libarchive_missing);
  ADD ("write/through-link", test_write_through_link);
  ADD ("write/swap-race", test_write_swap_race);
  ADD ("write/fifo-race", test_write_fifo_race);
#undef ADD
  return g_test_run ();
}
