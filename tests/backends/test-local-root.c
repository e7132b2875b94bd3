/* Where the local sandboxes are kept by default (issue 14): without
 * XDG_RUNTIME_DIR, in a private directory on a tmpfs (RUN_USER/UID, else
 * SHM/libsandbox-UID), never in one that someone else made or could enter,
 * and never visible inside a sandbox.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "sandbox-private.h"

#ifndef TMPFS_MAGIC
#define TMPFS_MAGIC 0x01021994
#endif

static gboolean
is_large_tmpfs (const char *path)
{
  struct statfs fs;

  return statfs (path, &fs) == 0 && fs.f_type == TMPFS_MAGIC &&
         (guint64) fs.f_blocks * (guint64) fs.f_bsize >= SANDBOX_RUNTIME_DIR_MIN_SIZE;
}

typedef struct
{
  char *top;        /* on /dev/shm: removed at the end */
  char *run_user;   /* top/run-user, as /run/user */
  char *shm;        /* top/shm, as /dev/shm */
  char *mine;       /* run_user/UID */
  char *ours;       /* shm/libsandbox-UID */
} Fixture;

static void
fixture_set_up (Fixture       *f,
                gconstpointer  data)
{
  if (!is_large_tmpfs ("/dev/shm"))
    return;
  f->top = g_build_filename ("/dev/shm", "test-local-root-XXXXXX", NULL);
  g_assert_nonnull (g_mkdtemp (f->top));
  f->run_user = g_build_filename (f->top, "run-user", NULL);
  f->shm = g_build_filename (f->top, "shm", NULL);
  g_assert_cmpint (g_mkdir (f->run_user, 0755), ==, 0);
  g_assert_cmpint (g_mkdir (f->shm, 01777), ==, 0);
  f->mine = g_strdup_printf ("%s/%u", f->run_user, (guint) geteuid ());
  f->ours = g_strdup_printf ("%s/libsandbox-%u", f->shm, (guint) geteuid ());
}

static void
fixture_tear_down (Fixture       *f,
                   gconstpointer  data)
{
  if (f->top != NULL)
    {
      g_autofree char *argv0 = g_find_program_in_path ("rm");
      const char *argv[] = { argv0, "-rf", f->top, NULL };

      g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL,
                                   NULL, NULL, NULL, NULL));
    }
  g_free (f->top);
  g_free (f->run_user);
  g_free (f->shm);
  g_free (f->mine);
  g_free (f->ours);
}

#define NEED_TMPFS(f) G_STMT_START { \
    if ((f)->top == NULL) { g_test_skip ("/dev/shm is not a tmpfs of 1 GiB or more"); return; } \
  } G_STMT_END

static void
assert_private_dir (const char *path)
{
  struct stat st;

  g_assert_cmpint (lstat (path, &st), ==, 0);
  g_assert_true (S_ISDIR (st.st_mode));
  g_assert_cmpuint (st.st_uid, ==, geteuid ());
  g_assert_cmpuint (st.st_mode & 07777, ==, 0700);
}

/* No runtime directory of systemd: one of ours is made on the tmpfs,
 * private, and the same one is found again. */
static void
test_shm_made (Fixture       *f,
               gconstpointer  data)
{
  g_autofree char *dir = NULL;
  g_autofree char *again = NULL;

  NEED_TMPFS (f);
  dir = _sandbox_runtime_dir_fallback (f->run_user, f->shm);
  g_assert_cmpstr (dir, ==, f->ours);
  assert_private_dir (dir);
  again = _sandbox_runtime_dir_fallback (f->run_user, f->shm);
  g_assert_cmpstr (again, ==, f->ours);
}

/* systemd's /run/user/UID comes first when it is there. */
static void
test_run_user_first (Fixture       *f,
                     gconstpointer  data)
{
  g_autofree char *dir = NULL;

  NEED_TMPFS (f);
  g_assert_cmpint (g_mkdir (f->mine, 0700), ==, 0);
  dir = _sandbox_runtime_dir_fallback (f->run_user, f->shm);
  g_assert_cmpstr (dir, ==, f->mine);
  g_assert_false (g_file_test (f->ours, G_FILE_TEST_EXISTS));
}

/* A directory in the shared tmpfs that others could enter, or a link
 * planted in its place, is not used (nor changed): the caller falls back
 * to the cache directory. */
static void
test_squatted (Fixture       *f,
               gconstpointer  data)
{
  g_autofree char *elsewhere = NULL;
  g_autofree char *dir = NULL;
  struct stat st;

  NEED_TMPFS (f);
  g_assert_cmpint (g_mkdir (f->ours, 0755), ==, 0);
  dir = _sandbox_runtime_dir_fallback (f->run_user, f->shm);
  g_assert_null (dir);
  g_assert_cmpint (stat (f->ours, &st), ==, 0);
  g_assert_cmpuint (st.st_mode & 07777, ==, 0755);
  g_assert_cmpint (g_rmdir (f->ours), ==, 0);

  /* A link to a private directory is still a link. */
  elsewhere = g_build_filename (f->top, "elsewhere", NULL);
  g_assert_cmpint (g_mkdir (elsewhere, 0700), ==, 0);
  g_assert_cmpint (symlink (elsewhere, f->ours), ==, 0);
  g_assert_null (_sandbox_runtime_dir_fallback (f->run_user, f->shm));

  /* The same for a /run/user/UID that is not private: the tmpfs one is
   * taken instead. */
  g_assert_cmpint (g_unlink (f->ours), ==, 0);
  g_assert_cmpint (g_mkdir (f->mine, 0755), ==, 0);
  g_free (dir);
  dir = _sandbox_runtime_dir_fallback (f->run_user, f->shm);
  g_assert_cmpstr (dir, ==, f->ours);
}

/* One that another user made first (possible only as root here). */
static void
test_other_owner (Fixture       *f,
                  gconstpointer  data)
{
  NEED_TMPFS (f);
  if (geteuid () != 0)
    {
      g_test_skip ("needs root, to make a directory of another user");
      return;
    }
  g_assert_cmpint (g_mkdir (f->ours, 0700), ==, 0);
  g_assert_cmpint (chown (f->ours, 65534, 65534), ==, 0);
  g_assert_null (_sandbox_runtime_dir_fallback (f->run_user, f->shm));
}

/* A directory that is not on a tmpfs is no better than the cache. */
static void
test_not_tmpfs (Fixture       *f,
                gconstpointer  data)
{
  g_autofree char *cwd = g_get_current_dir ();
  g_autofree char *disk = g_build_filename (cwd, "test-local-root-disk-XXXXXX", NULL);
  g_autofree char *run_user = NULL;

  NEED_TMPFS (f);
  if (is_large_tmpfs (cwd))
    {
      g_test_skip ("the build directory is on a tmpfs");
      return;
    }
  g_assert_nonnull (g_mkdtemp (disk));
  g_assert_null (_sandbox_runtime_dir_fallback (disk, disk));
  run_user = g_strdup_printf ("%s/libsandbox-%u", disk, (guint) geteuid ());
  g_rmdir (run_user);
  g_assert_cmpint (g_rmdir (disk), ==, 0);
}

/* The backend's default: with XDG_RUNTIME_DIR, under it; without, on a
 * tmpfs where there is one; and the sandbox sees none of it. */
static void
test_backend_default (void)
{
  g_autofree char *xdg = g_strdup (g_getenv ("XDG_RUNTIME_DIR"));
  g_autoptr(SandboxBackend) backend = NULL;
  g_autoptr(SandboxBackend) with_xdg = NULL;
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autoptr(SandboxInstance) instance = NULL;
  g_autoptr(SandboxCommand) command = NULL;
  g_autoptr(SandboxExecResult) result = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *root = NULL;
  g_autofree char *xdg_root = NULL;
  g_autofree char *runtime = NULL;
  g_autofree char *expected = NULL;
  g_autofree char *instance_dir = NULL;
  g_autofree char *script = NULL;
  g_autofree char *out = NULL;
  GBytes *bytes;

  g_unsetenv ("SANDBOX_LOCAL_ROOT");
  /* G_TEST_OPTION_ISOLATE_DIRS: GLib's runtime directory is the test's. */
  g_assert_nonnull (xdg);
  with_xdg = sandbox_backend_new_for_name ("local", &error);
  g_assert_no_error (error);
  g_object_get (with_xdg, "root-dir", &xdg_root, NULL);
  expected = g_build_filename (g_get_user_runtime_dir (), "libsandbox", "local", NULL);
  g_assert_cmpstr (xdg_root, ==, expected);
  g_clear_pointer (&expected, g_free);

  g_unsetenv ("XDG_RUNTIME_DIR");
  runtime = _sandbox_user_runtime_dir ();
  backend = sandbox_backend_new_for_name ("local", &error);
  g_assert_no_error (error);
  g_object_get (backend, "root-dir", &root, NULL);
  expected = g_build_filename (runtime, "libsandbox", "local", NULL);
  g_assert_cmpstr (root, ==, expected);
  if (is_large_tmpfs ("/dev/shm"))
    {
      g_autoptr(SandboxImageStore) store = sandbox_image_store_new (NULL);
      g_autofree char *images = NULL;
      g_autofree char *cache_images = g_build_filename (g_get_user_cache_dir (), "libsandbox",
                                                        "images", NULL);

      g_assert_true (is_large_tmpfs (runtime));
      /* Images (and volumes) stay on disk, where they were. */
      g_object_get (store, "path", &images, NULL);
      g_assert_cmpstr (images, ==, cache_images);
    }

  if (!sandbox_backend_check_configured (backend, NULL))
    {
      g_setenv ("XDG_RUNTIME_DIR", xdg, TRUE);
      g_test_skip ("bwrap is not usable here");
      return;
    }
  instance = sandbox_backend_create (backend, spec, NULL, &error);
  g_assert_no_error (error);
  instance_dir = g_build_filename (root, sandbox_instance_get_id (instance), NULL);
  g_assert_true (g_file_test (instance_dir, G_FILE_TEST_IS_DIR));
  /* Nothing of the host's /dev/shm, nor the sandboxes' directory. */
  script = g_strdup_printf ("ls -A /dev/shm; test -e '%s' && echo visible; echo end", root);
  command = sandbox_command_new ((const char * const[]) { "sh", "-c", script, NULL });
  result = sandbox_instance_exec (instance, command, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (sandbox_exec_result_get_exit_code (result), ==, 0);
  bytes = sandbox_exec_result_get_stdout (result);
  g_assert_nonnull (bytes);
  out = g_strndup (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
  g_assert_cmpstr (out, ==, "end\n");
  g_assert_true (sandbox_instance_destroy (instance, NULL, &error));
  g_assert_no_error (error);
  g_assert_false (g_file_test (instance_dir, G_FILE_TEST_EXISTS));
  g_setenv ("XDG_RUNTIME_DIR", xdg, TRUE);
}

/* Images and volumes: beside the sandboxes, but for the /dev/shm
 * fallback, where they stay in the cache. */
static void
test_data_dir (void)
{
  g_autofree char *shm_root = g_strdup_printf ("/dev/shm/libsandbox-%u/libsandbox/local",
                                               (guint) geteuid ());
  g_autofree char *cache = g_build_filename (g_get_user_cache_dir (), "libsandbox", NULL);
  g_autofree char *beside = _sandbox_local_data_dir ("/srv/sbx/libsandbox/local");
  g_autofree char *kept = _sandbox_local_data_dir (shm_root);

  g_assert_cmpstr (beside, ==, "/srv/sbx/libsandbox");
  g_assert_cmpstr (kept, ==, cache);
}

/* _sandbox_check_private_dir: a sandboxes' (or volumes') directory is
 * trusted only where no other user can change it or any directory above
 * it (the library trusts the records there and follows its paths). */
static void
test_private_dir (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *top = g_build_filename (g_get_tmp_dir (), "test-local-root-XXXXXX", NULL);
  g_autofree char *mine = NULL, *open_dir = NULL, *below_open = NULL, *sticky = NULL;
  g_autofree char *below_sticky = NULL, *missing = NULL, *link = NULL, *foreign = NULL;
  g_autofree char *below_foreign = NULL, *rm = NULL;

  g_assert_nonnull (g_mkdtemp (top));   /* 0700, ours, in a sticky /tmp */
  rm = g_strdup_printf ("rm -rf %s", top);
  mine = g_build_filename (top, "mine", NULL);
  g_assert_cmpint (g_mkdir (mine, 0755), ==, 0);
  g_assert_true (_sandbox_check_private_dir (mine, "test directory", &error));
  g_assert_no_error (error);
  /* Not there (yet): nothing to trust. */
  missing = g_build_filename (top, "missing", "local", NULL);
  g_assert_true (_sandbox_check_private_dir (missing, "test directory", &error));
  g_assert_no_error (error);

  /* Writable by others itself, or below a directory others may write
   * without the sticky bit: refused, naming the directory at fault. */
  open_dir = g_build_filename (top, "open", NULL);
  g_assert_cmpint (g_mkdir (open_dir, 0700), ==, 0);
  g_assert_cmpint (g_chmod (open_dir, 0777), ==, 0);
  g_assert_false (_sandbox_check_private_dir (open_dir, "test directory", &error));
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_CONFIGURED);
  g_clear_error (&error);
  below_open = g_build_filename (open_dir, "local", NULL);
  g_assert_cmpint (g_mkdir (below_open, 0700), ==, 0);
  g_assert_false (_sandbox_check_private_dir (below_open, "test directory", &error));
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_CONFIGURED);
  g_assert_nonnull (strstr (error->message, open_dir));
  g_clear_error (&error);
  /* Control: the same, sticky (as /tmp): others cannot rename our entries. */
  sticky = g_build_filename (top, "sticky", NULL);
  g_assert_cmpint (g_mkdir (sticky, 0700), ==, 0);
  g_assert_cmpint (g_chmod (sticky, 01777), ==, 0);
  below_sticky = g_build_filename (sticky, "local", NULL);
  g_assert_cmpint (g_mkdir (below_sticky, 0700), ==, 0);
  g_assert_true (_sandbox_check_private_dir (below_sticky, "test directory", &error));
  g_assert_no_error (error);
  /* A link to our own directory is judged where it leads. */
  link = g_build_filename (top, "link", NULL);
  g_assert_cmpint (symlink (mine, link), ==, 0);
  g_assert_true (_sandbox_check_private_dir (link, "test directory", &error));
  g_assert_no_error (error);

  /* Another user's directory above ours (root only can make one). */
  if (geteuid () == 0)
    {
      foreign = g_build_filename (top, "foreign", NULL);
      below_foreign = g_build_filename (foreign, "local", NULL);
      g_assert_cmpint (g_mkdir_with_parents (below_foreign, 0700), ==, 0);
      g_assert_cmpint (chown (foreign, 65534, 65534), ==, 0);
      g_assert_false (_sandbox_check_private_dir (below_foreign, "test directory", &error));
      g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_CONFIGURED);
      g_assert_nonnull (strstr (error->message, "uid 65534"));
      g_clear_error (&error);
      /* Or the directory itself. */
      g_assert_cmpint (chown (foreign, 0, 0), ==, 0);
      g_assert_cmpint (chown (below_foreign, 65534, 65534), ==, 0);
      g_assert_false (_sandbox_check_private_dir (below_foreign, "test directory", &error));
      g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_CONFIGURED);
      g_clear_error (&error);
    }
  g_assert_true (g_spawn_command_line_sync (rm, NULL, NULL, NULL, NULL));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

#define ADD(name, func) \
  g_test_add ("/local/root/" name, Fixture, NULL, fixture_set_up, func, fixture_tear_down)
  ADD ("shm-made", test_shm_made);
  ADD ("run-user-first", test_run_user_first);
  ADD ("squatted", test_squatted);
  ADD ("other-owner", test_other_owner);
  ADD ("not-tmpfs", test_not_tmpfs);
  g_test_add_func ("/local/root/data-dir", test_data_dir);
  g_test_add_func ("/local/root/backend-default", test_backend_default);
  g_test_add_func ("/local/root/private-dir", test_private_dir);
  return g_test_run ();
}
