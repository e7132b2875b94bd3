/* libsandbox - the local backend's isolation, tested as an attacker would
 * try to break out: each test runs the attack inside a sandbox and asserts
 * that it fails; where the attack code itself could be wrong, a control
 * runs the same code where it must succeed (a mounted socket, a process
 * inside the sandbox, ...), so that a failure can only come from isolation.
 *
 * Issue 8 §7; docs/security.md maps each test to the threat it covers.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE   /* unshare */
#endif
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/netlink.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <linux/magic.h>
#include <glib/gstdio.h>
#include <gio/gunixconnection.h>
#include <gio/gunixsocketaddress.h>

#include <libsandbox/sandbox.h>

#include "../test-util.h"

static SandboxInstance *
create (SandboxSpec *spec)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(SandboxBackend) backend = sandbox_backend_new_for_name ("local", &error);
  g_autoptr(SandboxSpec) empty = NULL;
  SandboxInstance *instance;

  g_assert_no_error (error);
  if (spec == NULL)
    spec = empty = sandbox_spec_new ();
  instance = sandbox_backend_create (backend, spec, NULL, &error);
  g_assert_no_error (error);
  return instance;
}

static SandboxInstance *
create_as_root (void)
{
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();

  sandbox_spec_set_run_as_root (spec, TRUE);
  return create (spec);
}

static void
destroy (SandboxInstance *instance)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (sandbox_instance_destroy (instance, NULL, &error));
  g_assert_no_error (error);
  g_object_unref (instance);
}

static void
exec_done (GObject      *source,
           GAsyncResult *res,
           gpointer      user_data)
{
  SandboxExecResult **result = user_data;
  g_autoptr(GError) error = NULL;

  *result = sandbox_instance_exec_finish (SANDBOX_INSTANCE (source), res, &error);
  g_assert_no_error (error);
}

/* Runs a shell script, iterating the default main context meanwhile (so
 * that a host service in this process can answer); returns its stdout. */
static char *
sh (SandboxInstance *instance,
    const char      *script,
    int             *status)
{
  g_autoptr(SandboxCommand) cmd = sandbox_command_new_shell (script);
  g_autoptr(SandboxExecResult) result = NULL;
  GBytes *out;

  sandbox_command_set_timeout_ms (cmd, 30000);   /* never hangs */
  sandbox_instance_exec_async (instance, cmd, NULL, exec_done, &result);
  while (result == NULL)
    g_main_context_iteration (NULL, TRUE);
  if (status != NULL)
    *status = sandbox_exec_result_get_exit_code (result);
  out = sandbox_exec_result_get_stdout (result);
  return g_strndup (g_bytes_get_data (out, NULL), g_bytes_get_size (out));
}

/* Runs SCRIPT in a sandbox as its default user, then in one with
 * run-as-root (with MEMORY_MB, 0 for no limit): the output is EXPECTED in
 * both. */
static void
expect_as_user_and_root (const char *script,
                         guint       memory_mb,
                         const char *expected)
{
  for (int as_root = 0; as_root <= 1; as_root++)
    {
      g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
      g_autofree char *out = NULL;
      SandboxInstance *instance;

      sandbox_spec_set_run_as_root (spec, as_root);
      if (memory_mb > 0)
        sandbox_spec_set_memory_mb (spec, memory_mb);
      instance = create (spec);
      out = sh (instance, script, NULL);
      g_test_message ("run-as-root=%d: %s", as_root, out);
      g_assert_cmpstr (out, ==, expected);
      destroy (instance);
    }
}

/* The Landlock ABI of this kernel (the sandboxes run on it), 0 without.
 * Asked by a child process: valgrind, which may run this test, does not
 * know the call (and does not trace children). */
static int
landlock_abi (void)
{
  static int abi = -1;

  if (abi < 0)
    {
      const char *argv[] = {
        "/usr/bin/python3", "-c",
        "import ctypes; print(max(0, ctypes.CDLL(None).syscall(444, None, 0, 1)))", NULL
      };
      g_autofree char *out = NULL;
      int status = -1;

      abi = 0;
      if (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL,
                        &out, NULL, &status, NULL) && status == 0)
        abi = atoi (out);
    }
  return abi;
}

static gboolean
have_python (void)
{
  /* The sandbox sees the host's /usr, and its PATH has nothing else. */
  return g_file_test ("/usr/bin/python3", G_FILE_TEST_IS_EXECUTABLE);
}

/* Puts SANDBOX_LOCAL_ROOT back as it was before a test pointed the backend
 * at a directory of its own: SAVED (a copy of its value), or unset. */
static void
restore_local_root (const char *saved)
{
  if (saved != NULL)
    g_setenv ("SANDBOX_LOCAL_ROOT", saved, TRUE);
  else
    g_unsetenv ("SANDBOX_LOCAL_ROOT");
}

/* Removes DIR and everything beneath it, links not followed. */
static void
rm_tree (const char *dir)
{
  g_autoptr(GDir) listing = g_dir_open (dir, 0, NULL);
  const char *name;

  while (listing != NULL && (name = g_dir_read_name (listing)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);
      struct stat st;

      if (lstat (path, &st) == 0 && S_ISDIR (st.st_mode))
        rm_tree (path);
      else
        g_unlink (path);
    }
  g_rmdir (dir);
}

/* An image root made of links into the host's /usr, which the spec then
 * mounts read-only: /bin/sh, /lib, /lib64. NULL where the host has no
 * merged /usr with /usr/bin/sh and /usr/lib64. Removed with rm_tree. */
static char *
make_usr_image (void)
{
  static const char * const links[] = { "bin/sh", "/usr/bin/sh", "lib", "usr/lib", "lib64", "usr/lib64", NULL };
  g_autoptr(GError) error = NULL;
  g_autofree char *image = NULL;
  g_autofree char *bin = NULL;

  if (!g_file_test ("/usr/bin/sh", G_FILE_TEST_EXISTS) || !g_file_test ("/usr/lib64", G_FILE_TEST_IS_DIR))
    return NULL;
  image = g_dir_make_tmp ("libsandbox-image-XXXXXX", &error);
  g_assert_no_error (error);
  bin = g_build_filename (image, "bin", NULL);
  g_assert_cmpint (g_mkdir (bin, 0755), ==, 0);
  for (guint i = 0; links[i] != NULL; i += 2)
    {
      g_autofree char *link = g_build_filename (image, links[i], NULL);
      g_assert_cmpint (symlink (links[i + 1], link), ==, 0);
    }
  return g_steal_pointer (&image);
}

/* ---- identity ---- */

static void
test_uid (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(SandboxBackend) other = sandbox_backend_new_for_name ("local", NULL);
  g_autoptr(SandboxInstance) found = NULL;
  SandboxInstance *user = create (NULL);
  SandboxInstance *root = create_as_root ();
  g_autofree char *u = sh (user, "id -u; id -g", NULL);
  g_autofree char *r = sh (root, "id -u; id -g", NULL);
  g_autofree char *again = NULL;

  g_assert_cmpstr (u, ==, "1000\n1000\n");
  g_assert_cmpstr (r, ==, "0\n0\n");
  /* Persisted with the instance: another process (object) finds it so. */
  found = sandbox_backend_get_instance (other, sandbox_instance_get_id (root), NULL, &error);
  g_assert_no_error (error);
  again = sh (found, "id -u", NULL);
  g_assert_cmpstr (again, ==, "0\n");
  destroy (user);
  destroy (root);
}

/* ---- /proc/sys ---- */

static void
test_proc_sys (void)
{
  /* Writes either nothing new (the value already there) or only in the
   * sandbox's own uts namespace, so that a broken isolation does no harm. */
  static const char script[] =
    "for f in /proc/sys/kernel/hostname /proc/sys/kernel/domainname; do "
    "  (echo pwned > $f) 2>/dev/null && echo \"WROTE $f\"; "
    "done; "
    "v=$(cat /proc/sys/vm/swappiness) && (echo $v > /proc/sys/vm/swappiness) 2>/dev/null && echo 'WROTE swappiness'; "
    "if [ -e /proc/sysrq-trigger ]; then (: >> /proc/sysrq-trigger) 2>/dev/null && echo 'OPENED sysrq-trigger'; fi; "
    "cat /proc/sys/kernel/hostname";

  for (int as_root = 0; as_root <= 1; as_root++)
    {
      SandboxInstance *instance = as_root ? create_as_root () : create (NULL);
      g_autofree char *out = sh (instance, script, NULL);
      g_autofree char *expected = g_strdup_printf ("%s\n", sandbox_instance_get_id (instance));

      g_test_message ("run-as-root=%d: %s", as_root, out);
      g_assert_cmpstr (out, ==, expected);
      destroy (instance);
    }
}

/* The sandbox user is the host's root when the caller is: the files of
 * /proc that only root may read, and that many guard by their mode alone,
 * show nothing (kpageflags, kpagecount: physical page flags and counts;
 * kpagecgroup; slabinfo, pagetypeinfo: the allocators' state). Before,
 * each read its host contents. Control: /proc/meminfo. */
static void
test_root_only_proc (void)
{
  static const char * const files[] = {
    "/proc/kpageflags", "/proc/kpagecount", "/proc/kpagecgroup", "/proc/slabinfo",
    "/proc/pagetypeinfo", NULL
  };
  g_autoptr(GString) script = g_string_new ("");
  g_autoptr(GString) expected = g_string_new ("");
  g_autofree char *out = NULL;
  SandboxInstance *instance;

  if (geteuid () != 0)
    {
      g_test_skip ("the sandbox user is the host's root only when the caller is");
      return;
    }
  for (guint i = 0; files[i] != NULL; i++)
    if (g_file_test (files[i], G_FILE_TEST_EXISTS))
      {
        g_string_append_printf (script, "echo %s $(head -c 64 %s 2>/dev/null | wc -c); ", files[i], files[i]);
        g_string_append_printf (expected, "%s 0\n", files[i]);
      }
  g_string_append (script, "head -c 9 /proc/meminfo");
  g_string_append (expected, "MemTotal:");
  instance = create (NULL);
  out = sh (instance, script->str, NULL);
  g_assert_cmpstr (out, ==, expected->str);
  destroy (instance);
}

/* The same, for the host's credentials beyond /etc/shadow and /etc/gshadow
 * (their backups shadow- and gshadow-, old passwords, debconf's answers,
 * the SSH host keys, the TLS private keys' directory) and the directories
 * of /sys that only root may read (the slab caches, the kernel's trace
 * buffers; debugfs and securityfs where mounted). Before, each read its
 * host contents when the caller was root. Controls: /etc/passwd, and the
 * same files read by this (root) process. */
static void
test_root_secrets (void)
{
  static const char * const files[] = {
    "/etc/shadow", "/etc/gshadow", "/etc/shadow-", "/etc/gshadow-", "/etc/security/opasswd",
    "/var/cache/debconf/passwords.dat", "/etc/ssh/ssh_host_rsa_key", "/etc/ssh/ssh_host_ecdsa_key",
    "/etc/ssh/ssh_host_ed25519_key", NULL
  };
  static const char * const dirs[] = {
    "/etc/ssl/private", "/sys/kernel/slab", "/sys/kernel/tracing", "/sys/kernel/debug",
    "/sys/kernel/security", NULL
  };
  g_autoptr(GString) script = g_string_new ("");
  g_autoptr(GString) expected = g_string_new ("");
  guint probed = 0;

  if (geteuid () != 0)
    {
      g_test_skip ("the sandbox user is the host's root only when the caller is");
      return;
    }
  for (guint i = 0; files[i] != NULL; i++)
    {
      g_autofree char *contents = NULL;
      gsize len = 0;

      /* Only files with something in them: an empty one reads 0 bytes anyway. */
      if (!g_file_get_contents (files[i], &contents, &len, NULL) || len == 0)
        continue;
      g_string_append_printf (script, "echo %s $(head -c 64 %s 2>/dev/null | wc -c); ", files[i], files[i]);
      g_string_append_printf (expected, "%s 0\n", files[i]);
      probed++;
    }
  for (guint i = 0; dirs[i] != NULL; i++)
    {
      g_autoptr(GDir) dir = g_dir_open (dirs[i], 0, NULL);

      if (dir == NULL || g_dir_read_name (dir) == NULL)
        continue;   /* absent or empty here (debugfs not mounted) */
      g_string_append_printf (script, "echo %s $(ls -A %s 2>/dev/null | wc -l); ", dirs[i], dirs[i]);
      g_string_append_printf (expected, "%s 0\n", dirs[i]);
      probed++;
    }
  if (probed == 0)
    {
      g_test_skip ("none of the files or directories has contents here");
      return;
    }
  g_string_append (script, "head -c 5 /etc/passwd");
  g_string_append (expected, "root:");

  for (int as_root = 0; as_root <= 1; as_root++)
    {
      SandboxInstance *instance = as_root ? create_as_root () : create (NULL);
      g_autofree char *out = sh (instance, script->str, NULL);

      g_test_message ("run-as-root=%d: %s", as_root, out);
      g_assert_cmpstr (out, ==, expected->str);
      destroy (instance);
    }
}

/* ---- links on the way to a mount point ---- */

/* bwrap makes each mount point by its path before the sandbox's root is
 * its root, following links: a sandbox that leaves links to
 * /oldroot/HOSTDIR (absolute) and ../../oldroot/HOSTDIR (relative) in a
 * directory it mounts read-write, and an image with such a link at its
 * top, made bwrap create directories (and an empty file, for a file
 * mount) in the host's HOSTDIR when a later sandbox mounted something
 * below the link. Now create refuses with SANDBOX_ERROR_INVALID_ARGUMENT
 * and the host directory stays empty. Control: the same mounts below a
 * real directory of the shared one work. */
static gboolean
dir_is_empty (const char *path)
{
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);

  return dir != NULL && g_dir_read_name (dir) == NULL;
}

static void
test_mount_path_links (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(SandboxBackend) backend = sandbox_backend_new_for_name ("local", &error);
  g_autofree char *shared = g_dir_make_tmp ("libsandbox-attack-XXXXXX", &error);
  g_autofree char *victim = g_dir_make_tmp ("libsandbox-attack-XXXXXX", &error);
  g_autofree char *source = g_dir_make_tmp ("libsandbox-attack-XXXXXX", &error);
  g_autofree char *image = g_dir_make_tmp ("libsandbox-attack-XXXXXX", &error);
  g_autofree char *source_file = g_build_filename (source, "f", NULL);
  g_autofree char *plant = g_strdup_printf ("ln -s /oldroot%s /data/abs && ln -s ../../oldroot%s /data/rel && "
                                            "ln -s /oldroot%s/planted /data/file && mkdir /data/ok && "
                                            "ln -s ok /data/inside && echo planted",
                                            victim, victim, victim);
  const char *paths[] = { "/data/abs/made", "/data/rel/made", "/data/file", NULL };
  g_autoptr(SandboxSpec) writer_spec = sandbox_spec_new ();
  SandboxInstance *writer;
  g_autofree char *out = NULL;

  g_assert_no_error (error);
  g_assert_true (g_file_set_contents (source_file, "host file\n", -1, NULL));

  /* An earlier sandbox plants the links in the directory it mounts. */
  sandbox_spec_add_mount (writer_spec, shared, "/data", FALSE);
  writer = create (writer_spec);
  out = sh (writer, plant, NULL);
  g_assert_cmpstr (out, ==, "planted\n");
  destroy (writer);

  for (guint i = 0; paths[i] != NULL; i++)
    {
      g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
      g_autoptr(SandboxInstance) instance = NULL;
      gboolean file = g_str_has_suffix (paths[i], "/file");

      sandbox_spec_add_mount (spec, shared, "/data", FALSE);
      sandbox_spec_add_mount (spec, file ? source_file : source, paths[i], TRUE);
      instance = sandbox_backend_create (backend, spec, NULL, &error);
      g_test_message ("%s: %s", paths[i], error ? error->message : "created");
      g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT);
      g_assert_null (instance);
      g_clear_error (&error);
      g_assert_true (dir_is_empty (victim));
    }

  /* An image whose top-level /data is such a link (create needs only its
   * /bin/sh to exist: pid 1 is the helper, bound in). */
  {
    g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
    g_autoptr(SandboxInstance) instance = NULL;
    g_autofree char *bin = g_build_filename (image, "bin", NULL);
    g_autofree char *sh_path = g_build_filename (bin, "sh", NULL);
    g_autofree char *link = g_build_filename (image, "data", NULL);
    g_autofree char *target = g_strdup_printf ("/oldroot%s", victim);

    g_assert_cmpint (g_mkdir (bin, 0755), ==, 0);
    g_assert_true (g_file_set_contents (sh_path, "", -1, NULL));
    g_assert_cmpint (symlink (target, link), ==, 0);
    sandbox_spec_set_image (spec, image);
    sandbox_spec_add_mount (spec, source, "/data/made", TRUE);
    instance = sandbox_backend_create (backend, spec, NULL, &error);
    g_test_message ("image: %s", error ? error->message : "created");
    g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT);
    g_assert_null (instance);
    g_clear_error (&error);
    g_assert_true (dir_is_empty (victim));
    g_unlink (link);
    g_unlink (sh_path);
    g_rmdir (bin);
    g_rmdir (image);
  }

  /* Controls: below a real directory of the shared one, and through a
   * relative link that stays inside it (followed, as bwrap does). */
  for (guint i = 0; i < 2; i++)
    {
      g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
      SandboxInstance *instance;
      g_autofree char *seen = NULL;

      sandbox_spec_add_mount (spec, shared, "/data", FALSE);
      sandbox_spec_add_mount (spec, source, i == 0 ? "/data/ok/made" : "/data/inside/made", TRUE);
      instance = create (spec);
      seen = sh (instance, "cat /data/ok/made/f", NULL);
      g_assert_cmpstr (seen, ==, "host file\n");
      destroy (instance);
    }

  g_assert_true (dir_is_empty (victim));
  g_rmdir (victim);
  {
    const char *names[] = { "abs", "rel", "file", "inside", NULL };

    for (guint i = 0; names[i] != NULL; i++)
      {
        g_autofree char *p = g_build_filename (shared, names[i], NULL);
        g_unlink (p);
      }
  }
  {
    g_autofree char *made = g_build_filename (shared, "ok", "made", NULL);
    g_autofree char *ok = g_build_filename (shared, "ok", NULL);

    g_rmdir (made);
    g_rmdir (ok);
  }
  g_rmdir (shared);
  g_unlink (source_file);
  g_rmdir (source);
}

/* An image is hostile content: its top-level /sys, bound by bwrap from
 * the image's directory, was bound from wherever it pointed when it was a
 * link, resolved on the host (/etc, /, the sandboxes' directory ...):
 * here a link to a host directory with a canary file showed the canary at
 * /sys. Now only a real directory of the image is bound. The image borrows
 * the host's /usr (a read-only spec mount) for its shell. Control: the
 * same canary read through an explicit mount. */
static void
test_image_sys_link (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *image = make_usr_image ();
  g_autofree char *secret_dir = NULL;
  g_autofree char *secret = NULL;
  g_autofree char *sys = NULL;
  g_autofree char *token = g_strdup_printf ("canary-%08x", g_random_int ());
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autoptr(SandboxSpec) control_spec = sandbox_spec_new ();
  SandboxInstance *instance;
  g_autofree char *out = NULL;
  g_autofree char *control = NULL;

  if (image == NULL)
    {
      g_test_skip ("needs a merged /usr with /usr/bin/sh and /usr/lib64");
      return;
    }
  secret_dir = g_dir_make_tmp ("libsandbox-attack-XXXXXX", &error);
  g_assert_no_error (error);
  secret = g_build_filename (secret_dir, "secret", NULL);
  sys = g_build_filename (image, "sys", NULL);
  g_assert_true (g_file_set_contents (secret, token, -1, NULL));
  g_assert_cmpint (symlink (secret_dir, sys), ==, 0);

  sandbox_spec_set_image (spec, image);
  sandbox_spec_add_mount (spec, "/usr", "/usr", TRUE);
  instance = create (spec);
  out = sh (instance, "cat /sys/secret 2>/dev/null; echo end", NULL);
  g_test_message ("%s", out);
  g_assert_cmpstr (out, ==, "end\n");
  destroy (instance);

  sandbox_spec_set_image (control_spec, image);
  sandbox_spec_add_mount (control_spec, "/usr", "/usr", TRUE);
  sandbox_spec_add_mount (control_spec, secret_dir, "/shown", TRUE);
  instance = create (control_spec);
  control = sh (instance, "cat /shown/secret; echo; echo end", NULL);
  g_assert_nonnull (strstr (control, token));
  destroy (instance);

  rm_tree (image);
  rm_tree (secret_dir);
}

/* The volumes directory (every volume's files) and the image store were
 * hidden only when they sat under a masked home, /tmp or /run: with
 * SANDBOX_LOCAL_VOLUMES or SANDBOX_IMAGE_STORE (or SANDBOX_LOCAL_ROOT) in
 * a directory such as /srv, every sandbox read every volume (here a
 * canary in another tenant's volume). Now covered like the sandboxes'
 * directory. Control: the volume mounted by the spec is read. */
static void
test_volumes_hidden (void)
{
  g_autofree char *base = NULL;
  g_autofree char *volumes = NULL, *images = NULL, *vol = NULL, *data = NULL, *blob = NULL;
  g_autofree char *token = g_strdup_printf ("canary-%08x", g_random_int ());
  g_autofree char *script = NULL;
  g_autofree char *out = NULL, *control = NULL;
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  SandboxInstance *instance;
  const char *parents[] = { "/srv", "/opt", "/var/lib", NULL };

  for (guint i = 0; base == NULL && parents[i] != NULL; i++)
    {
      g_autofree char *dir = g_strdup_printf ("%s/libsandbox-attack-%08x", parents[i], g_random_int ());

      if (g_mkdir (dir, 0700) == 0)
        base = g_steal_pointer (&dir);
    }
  if (base == NULL)
    {
      g_test_skip ("cannot create a directory under /srv, /opt or /var/lib");
      return;
    }
  volumes = g_build_filename (base, "volumes", NULL);
  images = g_build_filename (base, "images", NULL);
  vol = g_build_filename (volumes, "tenant", NULL);
  data = g_build_filename (vol, "data", NULL);
  blob = g_build_filename (images, "index.json", NULL);
  g_assert_cmpint (g_mkdir_with_parents (vol, 0700), ==, 0);
  g_assert_cmpint (g_mkdir_with_parents (images, 0700), ==, 0);
  g_assert_true (g_file_set_contents (data, token, -1, NULL));
  g_assert_true (g_file_set_contents (blob, token, -1, NULL));
  g_setenv ("SANDBOX_LOCAL_VOLUMES", volumes, TRUE);
  g_setenv ("SANDBOX_IMAGE_STORE", images, TRUE);

  script = g_strdup_printf ("cat %s %s 2>/dev/null; ls -A %s %s 2>/dev/null; echo end", data, blob, volumes, images);
  for (int as_root = 0; as_root <= 1; as_root++)
    {
      instance = as_root ? create_as_root () : create (NULL);
      g_clear_pointer (&out, g_free);
      out = sh (instance, script, NULL);
      g_test_message ("run-as-root=%d: %s", as_root, out);
      g_assert_null (strstr (out, token));
      g_assert_null (strstr (out, "tenant"));
      destroy (instance);
    }

  sandbox_spec_add_volume (spec, "tenant", "/v");
  instance = create (spec);
  control = sh (instance, "cat /v/data", NULL);
  g_assert_cmpstr (control, ==, token);
  destroy (instance);

  g_unsetenv ("SANDBOX_LOCAL_VOLUMES");
  g_unsetenv ("SANDBOX_IMAGE_STORE");
  g_unlink (data);
  g_unlink (blob);
  g_rmdir (vol);
  g_rmdir (volumes);
  g_rmdir (images);
  g_rmdir (base);
}

/* ---- resource limits of pid 1 and its helpers ---- */

/* A command runs as the same user as pid 1 and its helpers, and prlimit()
 * asks no more (no Landlock scope covers it): lowering pid 1's
 * RLIMIT_NOFILE to 4 ended the sandbox, and a hard RLIMIT_CPU of 1 s would
 * kill pid 1 outright. Now refused for every process but the caller
 * itself; the sandbox still serves. Controls: a command sets its own
 * limits (ulimit, prlimit of pid 0) and reads pid 1's. */
static void
test_prlimit_pid1 (void)
{
  static const char script[] =
    "python3 - <<'EOF'\n"
    "import os, resource\n"
    "for pid in [1] + [int(p) for p in os.listdir('/proc') if p.isdigit() and int(p) not in (1, os.getpid())]:\n"
    "    for res, lim in ((resource.RLIMIT_NOFILE, (4, 4)), (resource.RLIMIT_CPU, (1, 1))):\n"
    "        try:\n"
    "            resource.prlimit(pid, res, lim)\n"
    "            print('SET', pid, res)\n"
    "        except OSError as e:\n"
    "            pass\n"
    "print('read', resource.prlimit(1, resource.RLIMIT_NOFILE)[0] > 4)\n"
    "resource.prlimit(0, resource.RLIMIT_NOFILE, (64, 64))\n"
    "print('own', resource.getrlimit(resource.RLIMIT_NOFILE))\n"
    "EOF\n";

  if (!have_python ())
    {
      g_test_skip ("no /usr/bin/python3");
      return;
    }
  for (int as_root = 0; as_root <= 1; as_root++)
    {
      SandboxInstance *instance = as_root ? create_as_root () : create (NULL);
      g_autofree char *out = sh (instance, script, NULL);
      g_autofree char *after = NULL;

      g_test_message ("run-as-root=%d: %s", as_root, out);
      g_assert_cmpstr (out, ==, "read True\nown (64, 64)\n");
      /* pid 1 still serves, with its limits. */
      after = sh (instance, "prlimit --pid 1 --noheadings --output SOFT --nofile 2>/dev/null || echo none; echo alive", NULL);
      g_assert_true (g_str_has_suffix (after, "alive\n"));
      g_assert_false (g_str_has_prefix (after, "4\n"));
      destroy (instance);
    }
}

/* ---- mounting ---- */

static void
test_mount (void)
{
  static const char attack[] =
    "mkdir -p /workspace/m; "
    "mount -t tmpfs none /workspace/m 2>/dev/null && echo MOUNTED; "
    "mount --bind / /workspace/m 2>/dev/null && echo BOUND; "
    /* In a nested user namespace a mount may work, but only there. */
    "unshare -Urm sh -c 'mount -t tmpfs none /workspace/m && touch /workspace/m/inner' 2>/dev/null; "
    "echo end";
  static const char check[] =
    "grep -c ' /workspace/m ' /proc/self/mountinfo; ls -A /workspace/m; echo end";

  for (int as_root = 0; as_root <= 1; as_root++)
    {
      SandboxInstance *instance = as_root ? create_as_root () : create (NULL);
      g_autofree char *out = sh (instance, attack, NULL);
      g_autofree char *after = sh (instance, check, NULL);

      g_assert_cmpstr (out, ==, "end\n");
      /* Nothing mounted, nothing left behind in the real directory. */
      g_assert_cmpstr (after, ==, "0\nend\n");
      destroy (instance);
    }
}

/* ---- ptrace and signals to host processes ---- */

static const char ptrace_py[] =
  "import ctypes, errno, os, sys\n"
  "libc = ctypes.CDLL(None, use_errno=True)\n"
  "pid = int(sys.argv[1])\n"
  "r = libc.ptrace(16, pid, 0, 0)\n"            /* PTRACE_ATTACH */
  "e = ctypes.get_errno()\n"
  "print('ATTACHED' if r == 0 else errno.errorcode.get(e, str(e)))\n"
  "try:\n"
  "    os.kill(pid, 0)\n"
  "    print('SIGNALLED')\n"
  "except OSError as ex:\n"
  "    print(errno.errorcode.get(ex.errno, str(ex.errno)))\n";

static void
test_ptrace_host (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocess) victim = NULL;
  SandboxInstance *instance;
  g_autofree char *attack = NULL;
  g_autofree char *control = NULL;
  g_autofree char *out = NULL;
  g_autofree char *out_control = NULL;
  int pid;

  if (!have_python ())
    {
      g_test_skip ("needs /usr/bin/python3");
      return;
    }
  victim = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_SILENCE | G_SUBPROCESS_FLAGS_STDERR_SILENCE,
                             &error, "sleep", "3171", NULL);
  g_assert_no_error (error);
  pid = atoi (g_subprocess_get_identifier (victim));

  instance = create_as_root ();   /* the strongest attacker */
  {
    g_autofree char *quoted = g_shell_quote (ptrace_py);

    attack = g_strdup_printf ("P=%s; /usr/bin/python3 -c \"$P\" %d; test -e /proc/%d && echo VISIBLE; echo end",
                              quoted, pid, pid);
    out = sh (instance, attack, NULL);
    /* Control: the same code attaches to a process of the sandbox itself. */
    control = g_strdup_printf ("P=%s; sleep 1000 & /usr/bin/python3 -c \"$P\" $!; kill -9 $!", quoted);
    out_control = sh (instance, control, NULL);
  }
  g_test_message ("attack: %s control: %s", out, out_control);
  g_assert_cmpstr (out, ==, "ESRCH\nESRCH\nend\n");
  g_assert_cmpstr (out_control, ==, "ATTACHED\nSIGNALLED\n");
  /* The host process never noticed: alive and untraced. */
  {
    g_autofree char *status_path = g_strdup_printf ("/proc/%d/status", pid);
    g_autofree char *status = NULL;

    g_assert_true (g_file_get_contents (status_path, &status, NULL, NULL));
    g_assert_nonnull (strstr (status, "TracerPid:\t0\n"));
  }
  g_subprocess_force_exit (victim);
  g_subprocess_wait (victim, NULL, NULL);
  destroy (instance);
}

/* ---- host named pipes ---- */

/* Reads what is in the FIFO (opened non-blocking) now. */
static char *
drain (int fd)
{
  char buf[256];
  ssize_t n = read (fd, buf, sizeof buf - 1);

  return g_strndup (buf, n > 0 ? (gsize) n : 0);
}

/* A new directory (0755) under PARENT, a directory of the host's root that
 * a sandbox shows as it is; NULL where the sandbox has its own (/tmp,
 * /var/tmp, /run) or an empty one (/home, /root), or where none can be
 * made. */
static char *
host_shown_dir_new (const char *parent)
{
  g_autofree char *dir = NULL;

  if (!g_file_test (parent, G_FILE_TEST_IS_DIR) ||
      g_str_has_prefix (parent, "/tmp") || g_str_has_prefix (parent, "/var/tmp") ||
      g_str_has_prefix (parent, "/home") || g_str_has_prefix (parent, "/root") ||
      g_str_has_prefix (parent, "/run"))
    return NULL;
  dir = g_strdup_printf ("%s/libsandbox-attack-%08x", parent, g_random_int ());
  return g_mkdir (dir, 0755) == 0 ? g_steal_pointer (&dir) : NULL;
}

/* A host service's named pipe that the caller's uid may write, on the
 * host's root: the read-only mount does not stop opening it for writing,
 * Landlock does (writes only beneath the sandbox's own mounts). */
static void
test_host_fifo (void)
{
  g_autofree char *cwd = g_get_current_dir ();
  const char *parents[] = { "/var/lib", "/srv", "/opt", cwd, NULL };
  guint tried = 0;

  for (guint i = 0; parents[i] != NULL; i++)
    {
      g_autofree char *dir = NULL, *fifo = NULL, *script = NULL, *out = NULL, *control = NULL;
      g_autofree char *got = NULL, *got_control = NULL, *own = NULL;
      g_autoptr(SandboxSpec) mounted_spec = sandbox_spec_new ();
      SandboxInstance *instance, *mounted;
      int reader;

      dir = host_shown_dir_new (parents[i]);
      if (dir == NULL)
        continue;
      tried++;
      fifo = g_build_filename (dir, "pipe", NULL);
      g_assert_cmpint (mkfifo (fifo, 0666), ==, 0);
      g_assert_cmpint (g_chmod (fifo, 0666), ==, 0);
      /* The host service, reading (so a writer does not block). */
      reader = open (fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
      g_assert_cmpint (reader, >=, 0);

      instance = create_as_root ();   /* the strongest attacker */
      script = g_strdup_printf ("F='%s'; D='%s'\n"
                                "(printf A > \"$F\") 2>/dev/null && echo WROTE || echo REFUSED\n"
                                "(printf B > \"/proc/self/root$F\") 2>/dev/null && echo WROTE || echo REFUSED\n"
                                "ln -s \"$F\" /tmp/l; (printf C > /tmp/l) 2>/dev/null && echo WROTE || echo REFUSED\n"
                                "cd \"$D\" && (printf D > pipe) 2>/dev/null && echo WROTE || echo REFUSED\n",
                                fifo, dir);
      out = sh (instance, script, NULL);
      got = drain (reader);
      /* Controls: the sandbox's own FIFO works; the same write reaches the
       * host's FIFO when the spec mounts its directory. */
      own = sh (instance, "mkfifo /tmp/own && (cat /tmp/own &) && printf OWN > /tmp/own && wait; sleep 0.2", NULL);
      sandbox_spec_add_mount (mounted_spec, dir, NULL, FALSE);
      mounted = create (mounted_spec);
      control = g_strdup_printf ("(printf M > '%s') && echo WROTE", fifo);
      g_free (script);
      script = g_steal_pointer (&control);
      control = sh (mounted, script, NULL);
      got_control = drain (reader);

      g_test_message ("%s: %s host read \"%s\"; controls: %s %s, host read \"%s\"",
                      dir, out, got, own, control, got_control);
      g_assert_cmpstr (out, ==, "REFUSED\nREFUSED\nREFUSED\nREFUSED\n");
      g_assert_cmpstr (got, ==, "");
      g_assert_cmpstr (own, ==, "OWN");
      g_assert_cmpstr (control, ==, "WROTE\n");
      g_assert_cmpstr (got_control, ==, "M");

      close (reader);
      destroy (instance);
      destroy (mounted);
      g_unlink (fifo);
      g_rmdir (dir);
    }
  if (tried == 0)
    g_test_skip ("no host directory outside /tmp, /run and the homes to make a FIFO in");
}

/* ---- set-id files on the host ---- */

static const char setid_py[] =
  "import errno, os, stat, sys\n"
  "d = sys.argv[1]\n"
  "def attempt(name, f):\n"
  "    try:\n"
  "        f()\n"
  "        print(name, 'OK')\n"
  "    except OSError as ex:\n"
  "        print(name, errno.errorcode.get(ex.errno, ex.errno))\n"
  "t = d + '/t'\n"
  "open(t, 'w').close()\n"
  "attempt('chmod-4755', lambda: os.chmod(t, 0o4755))\n"
  "attempt('chmod-2755', lambda: os.chmod(t, 0o2755))\n"
  "attempt('fchmod-6755', lambda: os.fchmod(os.open(t, os.O_RDONLY), 0o6755))\n"
  "attempt('fchmodat-4755', lambda: os.chmod('t', 0o4755, dir_fd=os.open(d, os.O_RDONLY)))\n"
  "attempt('open-4755', lambda: os.open(d + '/o', os.O_CREAT | os.O_WRONLY, 0o4755))\n"
  "attempt('open-2755', lambda: os.open(d + '/g', os.O_CREAT | os.O_WRONLY, 0o2755))\n"
  "attempt('mknod-4755', lambda: os.mknod(d + '/n', stat.S_IFREG | 0o4755))\n"
  "def openat2():\n"
  "    import ctypes\n"
  "    libc = ctypes.CDLL(None, use_errno=True)\n"
  "    how = (ctypes.c_uint64 * 3)(os.O_CREAT | os.O_WRONLY, 0o4755, 0)\n"
  "    if libc.syscall(437, -100, (d + '/h').encode(), how, 24) < 0:\n"
  "        raise OSError(ctypes.get_errno(), 'openat2')\n"
  "attempt('openat2-4755', openat2)\n"
  "attempt('chmod-0755', lambda: os.chmod(t, 0o755))\n";

/* A file the sandbox makes set-user-ID (or set-group-ID) in a directory
 * the host shares would be one on the host, owned by the caller: any host
 * user reaching it would run as the caller (root, when the caller is). */
static void
test_setid_files (void)
{
  const char *expected =
    "chmod-4755 EPERM\nchmod-2755 EPERM\nfchmod-6755 EPERM\nfchmodat-4755 EPERM\n"
    "open-4755 EPERM\nopen-2755 EPERM\nmknod-4755 EPERM\nopenat2-4755 ENOSYS\nchmod-0755 OK\n";

  if (!have_python ())
    {
      g_test_skip ("needs /usr/bin/python3");
      return;
    }
  for (int as_root = 0; as_root <= 1; as_root++)
    {
      g_autoptr(GError) error = NULL;
      g_autofree char *dir = g_dir_make_tmp ("libsandbox-attack-XXXXXX", &error);
      g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
      g_autofree char *quoted = g_shell_quote (setid_py);
      g_autofree char *script = NULL, *out = NULL, *shell = NULL;
      g_autoptr(GDir) listing = NULL;
      const char *name;
      SandboxInstance *instance;
      guint files = 0;

      g_assert_no_error (error);
      sandbox_spec_add_mount (spec, dir, "/data", FALSE);
      sandbox_spec_set_run_as_root (spec, as_root);
      instance = create (spec);
      script = g_strdup_printf ("P=%s; /usr/bin/python3 -c \"$P\" /data", quoted);
      out = sh (instance, script, NULL);
      /* And with the shell's tools. */
      shell = sh (instance, "cp /bin/sh /data/sh && chmod 755 /data/sh && echo COPIED; "
                  "chmod u+s /data/sh 2>/dev/null || echo REFUSED; "
                  "chmod g+s /data/sh 2>/dev/null || echo REFUSED", NULL);
      g_test_message ("run-as-root=%d:\n%s%s", as_root, out, shell);
      g_assert_cmpstr (out, ==, expected);
      g_assert_cmpstr (shell, ==, "COPIED\nREFUSED\nREFUSED\n");

      /* What the host sees: no set-id bit on anything. */
      listing = g_dir_open (dir, 0, &error);
      g_assert_no_error (error);
      while ((name = g_dir_read_name (listing)) != NULL)
        {
          g_autofree char *path = g_build_filename (dir, name, NULL);
          struct stat st;

          g_assert_cmpint (lstat (path, &st), ==, 0);
          g_assert_cmpint (st.st_mode & (S_ISUID | S_ISGID), ==, 0);
          files++;
          g_unlink (path);
        }
      g_assert_cmpuint (files, >=, 2);   /* t and sh at least */
      destroy (instance);
      g_rmdir (dir);
    }
}

/* ---- no links, FIFOs or sockets in a NO_LINKS mount ---- */

static const char no_links_py[] =
  "import ctypes, errno, os, socket, stat, sys, threading\n"
  "os.umask(0o027)\n"
  "def attempt(name, f):\n"
  "    try:\n"
  "        f()\n"
  "        print(name, 'OK')\n"
  "    except OSError as ex:\n"
  "        print(name, errno.errorcode.get(ex.errno, ex.errno))\n"
  "def bind(path):\n"
  "    s = socket.socket(socket.AF_UNIX)\n"
  "    s.bind(path)\n"
  "    s.listen(1)\n"
  "    keep.append(s)\n"
  "keep = []\n"
  "for d in sys.argv[1:]:\n"
  "    print(d)\n"
  "    open(d + '/o', 'w').close()\n"
  "    os.makedirs(d + '/sub/x')\n"
  "    attempt('abs', lambda: os.symlink('/etc', d + '/l1'))\n"
  "    os.chdir(d)\n"
  "    attempt('rel', lambda: os.symlink('/etc', 'l2'))\n"
  "    attempt('rel-deep', lambda: os.symlink('/etc', 'sub/x/l3'))\n"
  "    os.chdir('/')\n"
  "    fd = os.open(d + '/sub', os.O_RDONLY | os.O_DIRECTORY)\n"
  "    attempt('symlinkat', lambda: os.symlink('/etc', 'l4', dir_fd=fd))\n"
  "    pfd = os.open(d + '/sub', os.O_PATH | os.O_DIRECTORY)\n"
  "    attempt('symlinkat-opath', lambda: os.symlink('/etc', 'x/l5', dir_fd=pfd))\n"
  "    attempt('mkfifo', lambda: os.mkfifo(d + '/f', 0o666))\n"
  "    attempt('mkfifoat', lambda: os.mkfifo('f2', 0o666, dir_fd=fd))\n"
  "    attempt('mknod-reg', lambda: os.mknod(d + '/r', stat.S_IFREG | 0o666))\n"
  "    attempt('bind', lambda: bind(d + '/s'))\n"
  "    attempt('bind-abstract', lambda: bind('\\0nolinks-' + d))\n"
  "    attempt('exists', lambda: os.symlink('/etc', d + '/o'))\n"
  "    os.close(fd)\n"
  "    os.close(pfd)\n";

/* One thread swaps /tmp/sw between a directory of /tmp and a link into
 * the mount (renameat2 RENAME_EXCHANGE) while another makes links in
 * /tmp/sw/: a check of the path followed by the kernel's own resolution
 * would let some land in the mount. Prints how many were made and
 * refused. */
static const char no_links_race_py[] =
  "import ctypes, os, socket, sys, threading\n"
  "libc = ctypes.CDLL(None, use_errno=True)\n"
  "nr = {'x86_64': 316, 'aarch64': 276}[os.uname().machine]\n"
  "d = sys.argv[1]\n"
  "how = sys.argv[3]\n"
  "os.mkdir(d + '/in' + how)\n"
  "os.mkdir('/tmp/sw' + how)\n"
  "os.symlink(d + '/in' + how, '/tmp/other' + how)\n"
  "sw, other = ('/tmp/sw' + how).encode(), ('/tmp/other' + how).encode()\n"
  "def make(p):\n"
  "    if how == 'link':\n"
  "        os.symlink('/etc', p)\n"
  "    else:\n"
  "        with socket.socket(socket.AF_UNIX) as s:\n"
  "            s.bind(p)\n"
  "stop = False\n"
  "def swap():\n"
  "    while not stop:\n"
  "        libc.syscall(nr, -100, sw, -100, other, 2)\n"
  "t = threading.Thread(target=swap)\n"
  "t.start()\n"
  "made = refused = i = 0\n"
  "n = int(sys.argv[2])\n"
  /* At least N calls; on a loaded machine one way may take them all, so
   * on until both ways were taken, up to 20 N. */
  "while i < n or (not (made and refused) and i < 20 * n):\n"
  "    try:\n"
  "        make('/tmp/sw%s/l%d' % (how, i))\n"
  "        made += 1\n"
  "    except PermissionError:\n"
  "        refused += 1\n"
  "    except FileNotFoundError:\n"
  "        pass\n"
  "    i += 1\n"
  "stop = True\n"
  "t.join()\n"
  "print('made', made > 0, 'refused', refused > 0)\n";

/* Whether DIR (recursively) holds anything but regular files and
 * directories; names it. */
static char *
find_special (const char *dir)
{
  g_autoptr(GDir) listing = g_dir_open (dir, 0, NULL);
  const char *name;

  while (listing != NULL && (name = g_dir_read_name (listing)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);
      struct stat st;

      g_assert_cmpint (lstat (path, &st), ==, 0);
      if (S_ISDIR (st.st_mode))
        {
          char *found = find_special (path);

          if (found != NULL)
            return found;
        }
      else if (!S_ISREG (st.st_mode))
        return g_steal_pointer (&path);
    }
  return NULL;
}

/* A host directory mounted read-write with SANDBOX_MOUNT_NO_LINKS (the
 * Metaflow datastore) gets no symbolic link, FIFO or socket from the
 * sandbox, however the path is spelled, even with a path swapped while
 * the call is made; elsewhere (/tmp, a plain read-write mount) the same
 * calls make what they should, owned as the command's files are. */
static void
test_mount_no_links (void)
{
  const char *refused =
    "abs EPERM\nrel EPERM\nrel-deep EPERM\nsymlinkat EPERM\nsymlinkat-opath EPERM\n"
    "mkfifo EPERM\nmkfifoat EPERM\nmknod-reg OK\nbind EPERM\nbind-abstract OK\nexists EPERM\n";
  const char *made =
    "abs OK\nrel OK\nrel-deep OK\nsymlinkat OK\nsymlinkat-opath OK\n"
    "mkfifo OK\nmkfifoat OK\nmknod-reg OK\nbind OK\nbind-abstract OK\nexists EEXIST\n";

  if (!have_python ())
    {
      g_test_skip ("needs /usr/bin/python3");
      return;
    }
  for (int as_root = 0; as_root <= 1; as_root++)
    {
      g_autoptr(GError) error = NULL;
      g_autofree char *data = g_dir_make_tmp ("libsandbox-nolinks-XXXXXX", &error);
      g_autofree char *plain = g_dir_make_tmp ("libsandbox-plain-XXXXXX", &error);
      g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
      g_autofree char *quoted = g_shell_quote (no_links_py);
      g_autofree char *race_quoted = g_shell_quote (no_links_race_py);
      g_autofree char *script = NULL, *out = NULL, *expected = NULL, *found = NULL;
      g_autofree char *race = NULL, *tmp_listing = NULL;
      g_autofree char *link_target = NULL, *o = NULL, *l = NULL, *f = NULL, *s = NULL;
      struct stat st_o, st;
      SandboxInstance *instance;
      int status = -1;

      g_assert_no_error (error);
      sandbox_spec_add_mount_full (spec, data, "/data", SANDBOX_MOUNT_NO_LINKS);
      sandbox_spec_add_mount (spec, plain, "/plain", FALSE);
      sandbox_spec_set_run_as_root (spec, as_root);
      instance = create (spec);

      script = g_strdup_printf ("P=%s; /usr/bin/python3 -c \"$P\" /data /plain /tmp", quoted);
      out = sh (instance, script, &status);
      g_test_message ("run-as-root=%d:\n%s", as_root, out);
      expected = g_strconcat ("/data\n", refused, "/plain\n", made, "/tmp\n", made, NULL);
      g_assert_cmpstr (out, ==, expected);
      g_assert_cmpint (status, ==, 0);

      /* What the command made in /tmp is there, as it asked. */
      tmp_listing = sh (instance, "cd /tmp && readlink l1 sub/x/l3 sub/x/l5 && stat -c '%A %F' f sub/f2 s", NULL);
      g_assert_cmpstr (tmp_listing, ==,
                       "/etc\n/etc\n/etc\n"
                       "prw-r----- fifo\nprw-r----- fifo\nsrwxr-x--- socket\n");
      /* A socket keeps the path it was bound to (getsockname), which
       * multiprocessing hands to the processes that connect. */
      g_free (tmp_listing);
      tmp_listing = sh (instance,
                        "cd /tmp/sub && /usr/bin/python3 -c \"import multiprocessing as mp, socket\n"
                        "for p in ('/tmp/sub/k', 'x/k', 'k2'):\n"
                        "    s = socket.socket(socket.AF_UNIX); s.bind(p); print(s.getsockname())\n"
                        "m = mp.Manager(); d = m.dict(); d['a'] = 1; print(dict(d))\"", NULL);
      g_assert_cmpstr (tmp_listing, ==, "/tmp/sub/k\nx/k\nk2\n{'a': 1}\n");

      /* The race: never a link in the mount, nor a socket (pid 1 binds
       * the caller's own path, confined by Landlock to the directory it
       * checked: 22 of 3,000 binds left a socket file in the mount). */
      for (int how = 0; how < 2; how++)
        {
          g_free (script);
          g_free (race);
          script = g_strdup_printf ("P=%s; /usr/bin/python3 -c \"$P\" /data 3000 %s", race_quoted,
                                    how == 0 ? "link" : "bind");
          race = sh (instance, script, &status);
          g_test_message ("race (%s): %s", how == 0 ? "link" : "bind", race);
          g_assert_cmpint (status, ==, 0);
          /* Both ways were taken: the race ran. */
          g_assert_cmpstr (race, ==, "made True refused True\n");
        }

      /* An upload's link (made by pid 1's file service) is refused in the
       * mount too, and made in /tmp. */
      if (as_root == 0)
        {
          g_autofree char *up = g_dir_make_tmp ("libsandbox-upload-XXXXXX", &error);
          g_autofree char *up_link = g_build_filename (up, "lnk", NULL);
          g_autoptr(GFile) source = g_file_new_for_path (up);
          g_autofree char *uploaded = NULL;

          g_assert_no_error (error);
          g_assert_cmpint (symlink ("/etc", up_link), ==, 0);
          g_assert_false (sandbox_instance_upload (instance, source, "/data/up", NULL, &error));
          g_assert_nonnull (error);
          g_assert_nonnull (strstr (error->message, "lnk"));
          g_clear_error (&error);
          g_assert_true (sandbox_instance_upload (instance, source, "/tmp/up", NULL, &error));
          g_assert_no_error (error);
          uploaded = sh (instance, "readlink /tmp/up/lnk", NULL);
          g_assert_cmpstr (uploaded, ==, "/etc\n");
          rm_tree (up);
        }

      /* What the host sees: nothing but files and directories in the
       * mount... */
      found = find_special (data);
      g_assert_cmpstr (found, ==, NULL);
      /* ...and in the plain mount what was asked for, owned as the file
       * the command opened (not made on its behalf) is. */
      o = g_build_filename (plain, "o", NULL);
      l = g_build_filename (plain, "l1", NULL);
      f = g_build_filename (plain, "f", NULL);
      s = g_build_filename (plain, "s", NULL);
      g_assert_cmpint (lstat (o, &st_o), ==, 0);
      g_assert_cmpint (lstat (l, &st), ==, 0);
      g_assert_true (S_ISLNK (st.st_mode));
      g_assert_cmpint (st.st_uid, ==, st_o.st_uid);
      g_assert_cmpint (st.st_gid, ==, st_o.st_gid);
      link_target = g_file_read_link (l, &error);
      g_assert_no_error (error);
      g_assert_cmpstr (link_target, ==, "/etc");
      g_assert_cmpint (lstat (f, &st), ==, 0);
      g_assert_true (S_ISFIFO (st.st_mode));
      g_assert_cmpint (st.st_mode & 07777, ==, 0640);   /* 0666 less the umask 027 */
      g_assert_cmpint (st.st_uid, ==, st_o.st_uid);
      g_assert_cmpint (st.st_gid, ==, st_o.st_gid);
      g_assert_cmpint (lstat (s, &st), ==, 0);
      g_assert_true (S_ISSOCK (st.st_mode));
      g_assert_cmpint (st.st_mode & 07777, ==, 0750);
      g_assert_cmpint (st.st_uid, ==, st_o.st_uid);
      g_assert_cmpint (st.st_gid, ==, st_o.st_gid);

      destroy (instance);
      rm_tree (data);
      rm_tree (plain);
    }

  /* An image root (where pid 1 otherwise mediates nothing): the same
   * rule. */
  {
    g_autofree char *image = make_usr_image ();

    if (image != NULL)
      {
        g_autoptr(GError) error = NULL;
        g_autofree char *data = g_dir_make_tmp ("libsandbox-nolinks-XXXXXX", &error);
        g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
        g_autofree char *out = NULL, *found = NULL;
        SandboxInstance *instance;

        g_assert_no_error (error);
        sandbox_spec_set_image (spec, image);
        sandbox_spec_add_mount (spec, "/usr", "/usr", TRUE);
        sandbox_spec_add_mount_full (spec, data, "/data", SANDBOX_MOUNT_NO_LINKS);
        instance = create (spec);
        out = sh (instance,
                  "ln -s /etc /data/l 2>/dev/null || echo NO-LINK; mkfifo /data/f 2>/dev/null || echo NO-FIFO; "
                  "ln -s /etc /tmp/l && mkfifo /tmp/f && echo TMP-OK", NULL);
        g_assert_cmpstr (out, ==, "NO-LINK\nNO-FIFO\nTMP-OK\n");
        found = find_special (data);
        g_assert_cmpstr (found, ==, NULL);
        destroy (instance);
        rm_tree (data);
        rm_tree (image);
      }
  }

  /* Without the flag, the same mount takes links, FIFOs and sockets, as
   * before. */
  {
    g_autoptr(GError) error = NULL;
    g_autofree char *data = g_dir_make_tmp ("libsandbox-nolinks-XXXXXX", &error);
    g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
    g_autofree char *out = NULL, *found = NULL;
    SandboxInstance *instance;

    g_assert_no_error (error);
    sandbox_spec_add_mount (spec, data, "/data", FALSE);
    instance = create (spec);
    out = sh (instance,
              "ln -s /etc /data/l && mkfifo /data/f && echo MADE; "
              "/usr/bin/python3 -c \"import socket; s = socket.socket(socket.AF_UNIX); "
              "s.bind('/data/s'); print(s.getsockname())\"", NULL);
    g_assert_cmpstr (out, ==, "MADE\n/data/s\n");
    found = find_special (data);
    g_assert_nonnull (found);
    destroy (instance);
    rm_tree (data);
  }
}

/* ---- file transfers ---- */

/* A file the sandbox makes huge and empty (truncate: no block used, not
 * even against a disk quota) must not become that many zeros on the
 * host's disk when downloaded: holes stay holes. */
static void
test_sparse_download (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("libsandbox-attack-XXXXXX", &error);
  g_autofree char *dest = NULL, *out = NULL;
  g_autoptr(GFile) file = NULL;
  SandboxInstance *instance = create (NULL);
  const goffset size = 256 << 20;
  struct stat st;
  char head[4] = { 0 }, tail[4] = { 0 }, middle[4] = { 1, 1, 1, 1 };
  int status = -1, fd;

  g_assert_no_error (error);
  out = sh (instance,
            "cd /workspace && truncate -s 256M big && printf head | dd of=big conv=notrunc 2>/dev/null"
            " && printf tail | dd of=big bs=1 seek=268435452 conv=notrunc 2>/dev/null"
            " && stat -c %s big", &status);
  g_assert_cmpint (status, ==, 0);
  g_assert_cmpstr (out, ==, "268435456\n");
  dest = g_build_filename (dir, "big", NULL);
  file = g_file_new_for_path (dest);
  g_assert_true (sandbox_instance_download (instance, "/workspace/big", file, NULL, &error));
  g_assert_no_error (error);

  g_assert_cmpint (stat (dest, &st), ==, 0);
  g_test_message ("%" G_GOFFSET_FORMAT " bytes in %" G_GINT64_FORMAT " blocks of 512",
                  (goffset) st.st_size, (gint64) st.st_blocks);
  g_assert_cmpint (st.st_size, ==, size);
  /* The two pages of data (and some metadata), not 256 MiB. */
  g_assert_cmpint ((gint64) st.st_blocks * 512, <, 4 << 20);
  fd = open (dest, O_RDONLY);
  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (pread (fd, head, 4, 0), ==, 4);
  g_assert_cmpint (pread (fd, middle, 4, size / 2), ==, 4);
  g_assert_cmpint (pread (fd, tail, 4, size - 4), ==, 4);
  close (fd);
  g_assert_cmpmem (head, 4, "head", 4);
  g_assert_cmpmem (middle, 4, "\0\0\0\0", 4);
  g_assert_cmpmem (tail, 4, "tail", 4);

  destroy (instance);
  g_unlink (dest);
  g_rmdir (dir);
}

/* A download keeps the tree's hard links: the sandbox pays for a file once,
 * however many names it has, and so does the host. Before, each name was
 * copied in full: a 1 MiB file with 200 names in the workdir (1 MiB of the
 * sandbox's disk, within any disk-mb) wrote 200 MiB to the host, and a
 * sandbox could fill the host's disk that way as with a sparse file. Also
 * checked: a name of the group outside the downloaded tree, and a file that
 * is linked only once, are plain copies. */
static void
test_hardlink_download (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("libsandbox-attack-XXXXXX", &error);
  g_autofree char *dest = NULL, *out = NULL, *first = NULL, *other = NULL;
  g_autoptr(GFile) file = NULL;
  SandboxInstance *instance = create (NULL);
  struct stat st, st2;
  guint64 blocks = 0;
  guint names = 0;
  int status = -1;
  GDir *d;
  const char *name;

  g_assert_no_error (error);
  out = sh (instance,
            "mkdir -p /workspace/t/a/b /workspace/t/c && cd /workspace/t && "
            "head -c 1048576 /dev/urandom > a/b/big && "
            "i=0; while [ $i -lt 100 ]; do ln a/b/big a/n$i && ln a/b/big c/m$i || exit 1; i=$((i+1)); done; "
            "ln a/b/big /workspace/outside && echo single > c/single && "
            "stat -c %h a/b/big", &status);
  g_assert_cmpint (status, ==, 0);
  g_assert_cmpstr (out, ==, "202\n");
  dest = g_build_filename (dir, "t", NULL);
  file = g_file_new_for_path (dest);
  g_assert_true (sandbox_instance_download (instance, "/workspace/t", file, NULL, &error));
  g_assert_no_error (error);

  /* All 201 names of the tree, one inode on the host, as in the sandbox. */
  first = g_build_filename (dest, "a", "b", "big", NULL);
  g_assert_cmpint (stat (first, &st), ==, 0);
  g_assert_cmpint (st.st_size, ==, 1 << 20);
  for (int sub = 0; sub < 2; sub++)
    {
      g_autofree char *path = g_build_filename (dest, sub == 0 ? "a" : "c", NULL);

      d = g_dir_open (path, 0, &error);
      g_assert_no_error (error);
      while ((name = g_dir_read_name (d)) != NULL)
        {
          g_autofree char *p = g_build_filename (path, name, NULL);

          g_assert_cmpint (lstat (p, &st2), ==, 0);
          if (S_ISDIR (st2.st_mode) || strcmp (name, "single") == 0)
            continue;
          g_assert_cmpuint (st2.st_ino, ==, st.st_ino);
          names++;
          blocks += (guint64) st2.st_blocks;
        }
      g_dir_close (d);
    }
  g_assert_cmpuint (names, ==, 200);
  g_test_message ("host inode %" G_GUINT64_FORMAT ": %u links",
                  (guint64) st.st_ino, (guint) st.st_nlink);
  g_assert_cmpuint (st.st_nlink, ==, 201);
  other = g_build_filename (dest, "c", "single", NULL);
  g_assert_cmpint (stat (other, &st2), ==, 0);
  g_assert_cmpuint (st2.st_nlink, ==, 1);
  g_assert_cmpuint (st2.st_ino, !=, st.st_ino);

  /* Again, over the first copy: the same links, nothing more. */
  g_assert_true (sandbox_instance_download (instance, "/workspace/t", file, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpint (stat (first, &st2), ==, 0);
  g_assert_cmpuint (st2.st_nlink, ==, 201);
  g_assert_cmpint (st2.st_size, ==, 1 << 20);

  destroy (instance);
  {
    g_autofree char *rm = g_strdup_printf ("rm -rf '%s'", dir);
    g_assert_true (g_spawn_command_line_sync (rm, NULL, NULL, NULL, NULL));
  }
}

/* Whether MESSAGE could be shown on a terminal as it is: valid UTF-8,
 * without a control character (C0, DEL, C1). */
static gboolean
is_displayable (const char *message)
{
  if (!g_utf8_validate (message, -1, NULL))
    return FALSE;
  for (const char *p = message; *p != '\0'; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);

      if (c < 0x20 || (c >= 0x7f && c < 0xa0))
        return FALSE;
    }
  return TRUE;
}

/* A file name is any bytes but '/' and NUL, and the sandbox names its
 * files: a download that fails on one put the name in its error message
 * as it was, and `sandboxctl cp` printed it on the user's terminal, whose
 * escape sequences then set the window's title, erased the line and put
 * a command on the clipboard (OSC 52); bytes that are not UTF-8 made a
 * GError message that is not UTF-8. Two failing downloads (a FIFO, a file
 * the sandbox cannot read) under such names: each message is UTF-8
 * without a control character, and shows the escapes (\x1b). */
static void
test_name_escapes (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("libsandbox-attack-XXXXXX", &error);
  g_autofree char *out = NULL;
  SandboxInstance *instance = create (NULL);
  int status = -1;

  g_assert_no_error (error);
  out = sh (instance,
            "mkdir -p /workspace/fifo /workspace/closed && "
            "mkfifo \"/workspace/fifo/$(printf 'a\\033]0;TITLE\\007\\033[2K\\033]52;c;ZWNobyBwd25lZAo=\\007b')\" && "
            "f=\"/workspace/closed/$(printf '\\377\\033[31mred\\302\\233')\" && : > \"$f\" && chmod 000 \"$f\" && "
            "echo made", &status);
  g_assert_cmpint (status, ==, 0);
  g_assert_cmpstr (out, ==, "made\n");

  for (guint i = 0; i < 2; i++)
    {
      g_autofree char *dest = g_build_filename (dir, i == 0 ? "fifo" : "closed", NULL);
      g_autoptr(GFile) file = g_file_new_for_path (dest);

      g_clear_error (&error);
      g_assert_false (sandbox_instance_download (instance, i == 0 ? "/workspace/fifo" : "/workspace/closed",
                                                 file, NULL, &error));
      g_assert_nonnull (error);
      g_test_message ("%s", error->message);
      g_assert_true (is_displayable (error->message));
      g_assert_nonnull (strstr (error->message, "\\x1b"));
    }

  destroy (instance);
  {
    g_autofree char *rm = g_strdup_printf ("rm -rf '%s'", dir);
    g_assert_true (g_spawn_command_line_sync (rm, NULL, NULL, NULL, NULL));
  }
}

/* sandbox_instance_download_archive() (a remote Metaflow task's logs and
 * outputs, a sandbox's directory as a tar) packs with the sandbox's own tar
 * and, when it fails, quoted its standard error in the message as it came,
 * cut at 2,000 bytes: a sandbox's tar (a remote sandbox's files are its
 * own; here one earlier in its PATH) wrote escape sequences, a C1 CSI
 * and bytes that are not UTF-8 there for the user's terminal. Now shown
 * escaped. */
static void
test_archive_stderr_escapes (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autoptr(GOutputStream) mem = g_memory_output_stream_new_resizable ();
  g_autofree char *out = NULL;
  SandboxInstance *instance;
  int status = -1;

  sandbox_spec_set_env (spec, "PATH", "/tmp/bin:/usr/bin:/bin");
  instance = create (spec);
  out = sh (instance,
            "mkdir -p /tmp/bin /tmp/d && echo x > /tmp/d/f && "
            "printf '#!/bin/sh\\nprintf \"\\\\033]0;TITLE\\\\007\\\\033]52;c;ZWNobyBwd25lZAo=\\\\007\\\\302\\\\2332J\\\\377\" >&2\\nexit 2\\n' "
            "> /tmp/bin/tar && chmod +x /tmp/bin/tar && echo made", &status);
  g_assert_cmpint (status, ==, 0);
  g_assert_cmpstr (out, ==, "made\n");

  g_assert_false (sandbox_instance_download_archive (instance, "/tmp/d", NULL, mem, NULL, &error));
  g_assert_nonnull (error);
  g_test_message ("%s", error->message);
  g_assert_true (is_displayable (error->message));
  g_assert_nonnull (strstr (error->message, "\\x1b]52;c;"));
  destroy (instance);
}

static void
download_done (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  GError **error = user_data;

  if (sandbox_instance_download_finish (SANDBOX_INSTANCE (source), result, error))
    *error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_EXISTS, "copied");
}

/* A download into a host directory that the sandbox writes too (a
 * read-write mount: the user copies a result into the project directory
 * the sandbox has): the sandbox leaves a FIFO under the name the copy
 * makes. The library opened it as a file, without O_NONBLOCK, and waited
 * in open() for a reader for good: `sandboxctl cp` hung, and not even
 * SIGTERM ended it (its copy thread stays in open()). With a reader the
 * sandbox holds, the file went into its pipe. Now both downloads fail at
 * once, naming the destination, and nothing reads the file. Control: the
 * same download onto a regular file the sandbox left there. */
static void
test_fifo_destination (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("libsandbox-attack-XXXXXX", &error);
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autofree char *out = NULL;
  SandboxInstance *instance;
  int status = -1;

  g_assert_no_error (error);
  sandbox_spec_add_mount (spec, dir, "/data", FALSE);
  instance = create (spec);
  out = sh (instance,
            "echo secret-result > /workspace/result && mkfifo /data/alone /data/read && "
            "echo old > /data/plain && echo made", &status);
  g_assert_cmpint (status, ==, 0);
  g_assert_cmpstr (out, ==, "made\n");

  for (guint i = 0; i < 3; i++)
    {
      static const char * const names[] = { "alone", "read", "plain" };
      g_autofree char *dest = g_build_filename (dir, names[i], NULL);
      g_autoptr(GFile) file = g_file_new_for_path (dest);
      gint64 deadline = g_get_monotonic_time () + 15 * G_USEC_PER_SEC;
      GError *result = NULL;
      /* The FIFO's reader (the sandbox's, as far as the kernel can tell). */
      int reader = i == 1 ? open (dest, O_RDONLY | O_NONBLOCK | O_CLOEXEC) : -1;

      g_assert_true (i != 1 || reader >= 0);
      sandbox_instance_download_async (instance, "/workspace/result", file, NULL, download_done, &result);
      while (result == NULL && g_get_monotonic_time () < deadline)
        if (!g_main_context_iteration (NULL, FALSE))
          g_usleep (10000);
      if (result == NULL)
        {
          /* Let the blocked open() go before failing. */
          int fd = open (dest, O_RDONLY | O_NONBLOCK | O_CLOEXEC);

          while (result == NULL)
            g_main_context_iteration (NULL, TRUE);
          if (fd >= 0)
            close (fd);
          g_error_free (result);
          g_assert_not_reached ();   /* the download waited on the FIFO */
        }
      g_test_message ("%s: %s", names[i], result->message);
      if (reader >= 0)
        {
          char buf[64];

          /* Nothing went into the pipe. */
          g_assert_cmpint (read (reader, buf, sizeof buf), <=, 0);
          close (reader);
        }
      if (i < 2)
        g_assert_error (result, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT);
      else
        {
          g_autofree char *contents = NULL;

          g_assert_error (result, G_IO_ERROR, G_IO_ERROR_EXISTS);   /* "copied" */
          g_assert_true (g_file_get_contents (dest, &contents, NULL, NULL));
          g_assert_cmpstr (contents, ==, "secret-result\n");
        }
      g_error_free (result);
    }
  destroy (instance);
  {
    g_autofree char *rm = g_strdup_printf ("rm -rf '%s'", dir);
    g_assert_true (g_spawn_command_line_sync (rm, NULL, NULL, NULL, NULL));
  }
}

/* Downloads SOURCE to DEST synchronously: NULL when copied, else the error. */
static GError *
download_to (SandboxInstance *instance,
             const char      *source,
             const char      *dest)
{
  g_autoptr(GFile) file = g_file_new_for_path (dest);
  GError *result = NULL;

  sandbox_instance_download_async (instance, source, file, NULL, download_done, &result);
  while (result == NULL)
    g_main_context_iteration (NULL, TRUE);
  if (g_error_matches (result, G_IO_ERROR, G_IO_ERROR_EXISTS))
    g_clear_error (&result);
  return result;
}

/* Session sec27 (a probe that held): the file service that opens a
 * download's files is a fork of pid 1, whose memory holds the sandbox's
 * secret and the cookie, and it resolves each path as the sandbox shows
 * it. A directory being downloaded, swapped again and again with a link
 * to /proc/self, has it open its own /proc files under the names the
 * directory listed (environ, maps, mem ...): the host copies what such a
 * file held by its size when opened, 0, so nothing of the service comes
 * down. Each download ends (copied, refused, or the top a link); no
 * regular file holds anything but what the sandbox wrote. */
static void
test_download_proc_self_swap (void)
{
  static const char * const names[] = {
    "environ", "maps", "mem", "auxv", "cmdline", "stat", "status", "limits", "mountinfo", "smaps",
  };
  g_autofree char *base = g_dir_make_tmp ("sbx-procswap-XXXXXX", NULL);
  g_autoptr(GString) setup = g_string_new ("mkdir -p /tmp/d && ln -s /proc/self /tmp/p");
  SandboxInstance *instance;
  guint dirs = 0, files = 0;

  if (!have_python ())
    {
      g_test_skip ("needs /usr/bin/python3");
      return;
    }
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    g_string_append_printf (setup, " && echo x > /tmp/d/%s", names[i]);
  instance = create (NULL);
  g_free (sh (instance, setup->str, NULL));
  g_free (sh (instance,
              "/usr/bin/python3 -c 'import ctypes\n"
              "libc = ctypes.CDLL(None)\n"
              "while True:\n"
              "    libc.renameat2(-100, b\"/tmp/d\", -100, b\"/tmp/p\", 2)\n' </dev/null >/dev/null 2>&1 &",
              NULL));
  for (guint round = 0; round < 150; round++)
    {
      g_autofree char *dest = g_strdup_printf ("%s/%u", base, round);
      g_autoptr(GError) error = download_to (instance, "/tmp/d", dest);
      struct stat st;

      if (error != NULL || lstat (dest, &st) != 0 || !S_ISDIR (st.st_mode))
        continue;
      dirs++;
      for (guint i = 0; i < G_N_ELEMENTS (names); i++)
        {
          g_autofree char *path = g_build_filename (dest, names[i], NULL);
          g_autofree char *contents = NULL;
          gsize len = 0;

          if (lstat (path, &st) != 0 || !S_ISREG (st.st_mode))
            continue;
          files++;
          g_assert_true (g_file_get_contents (path, &contents, &len, NULL));
          if (len != 0 && !(len == 2 && memcmp (contents, "x\n", 2) == 0))
            g_error ("%s came down with %" G_GSIZE_FORMAT " bytes of the file service's", path, len);
        }
    }
  g_test_message ("%u downloads came down as directories, %u files checked", dirs, files);
  g_assert_cmpuint (files, >, 0);
  destroy (instance);
  {
    g_autofree char *rm = g_strdup_printf ("rm -rf '%s'", base);
    g_assert_true (g_spawn_command_line_sync (rm, NULL, NULL, NULL, NULL));
  }
}

/* `sandboxctl cp ID:/f /dev/stdout`: a download replaced the link the
 * user named with a regular file (as root, /dev/stdout itself), since a
 * final link is never followed. A link the user names that leads to the
 * caller's own standard output or error is now written through (here
 * DIR/out -> /proc/self/fd/1, with fd 1 a pipe: the file comes out of the
 * pipe, the link stays). Links the sandbox plants in a directory it writes
 * (a read-write mount) still lead nowhere: to a host file, and to another
 * descriptor of this process (as its connection to pid 1 would be), each
 * is replaced by the downloaded file; the host file and the pipe get
 * nothing. */
static void
test_download_stream_destination (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("libsandbox-attack-XXXXXX", &error);
  g_autofree char *bait = g_build_filename (dir, "bait", NULL);
  g_autofree char *out_link = g_build_filename (dir, "out", NULL);
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autofree char *out = NULL, *script = NULL, *contents = NULL, *link_target = NULL;
  SandboxInstance *instance;
  int status = -1, pipe_fds[2], other[2], saved;
  char buf[4096];
  ssize_t n;

  g_assert_no_error (error);
  g_assert_true (g_file_set_contents (bait, "bait\n", -1, NULL));
  g_assert_cmpint (pipe2 (pipe_fds, O_CLOEXEC | O_NONBLOCK), ==, 0);
  g_assert_cmpint (pipe2 (other, O_CLOEXEC | O_NONBLOCK), ==, 0);
  sandbox_spec_add_mount (spec, dir, "/data", FALSE);
  instance = create (spec);
  script = g_strdup_printf ("echo secret-result > /workspace/result && "
                            "ln -s '%s' /data/to-host-file && ln -s /proc/self/fd/%d /data/to-fd && "
                            "echo made", bait, other[1]);
  out = sh (instance, script, &status);
  g_assert_cmpint (status, ==, 0);
  g_assert_cmpstr (out, ==, "made\n");

  /* The user names a link to the standard output. */
  g_assert_cmpint (symlink ("/proc/self/fd/1", out_link), ==, 0);
  fflush (stdout);
  saved = fcntl (STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
  g_assert_cmpint (saved, >=, 0);
  g_assert_cmpint (dup2 (pipe_fds[1], STDOUT_FILENO), ==, STDOUT_FILENO);
  error = download_to (instance, "/workspace/result", out_link);
  g_assert_cmpint (dup2 (saved, STDOUT_FILENO), ==, STDOUT_FILENO);
  close (saved);
  g_assert_no_error (error);
  /* (With the test's own output meanwhile, such as GLib's debug messages.) */
  n = read (pipe_fds[0], buf, sizeof buf - 1);
  g_assert_cmpint (n, >, 0);
  buf[n] = '\0';
  g_assert_nonnull (strstr (buf, "secret-result\n"));
  link_target = g_file_read_link (out_link, NULL);
  g_assert_cmpstr (link_target, ==, "/proc/self/fd/1");

  /* Links the sandbox planted: replaced, never followed. */
  for (guint i = 0; i < 2; i++)
    {
      static const char * const names[] = { "to-host-file", "to-fd" };
      g_autofree char *dest = g_build_filename (dir, names[i], NULL);
      g_autofree char *copied = NULL;
      struct stat st;

      error = download_to (instance, "/workspace/result", dest);
      g_assert_no_error (error);
      g_assert_cmpint (lstat (dest, &st), ==, 0);
      g_assert_true (S_ISREG (st.st_mode));
      g_assert_true (g_file_get_contents (dest, &copied, NULL, NULL));
      g_assert_cmpstr (copied, ==, "secret-result\n");
    }
  g_assert_true (g_file_get_contents (bait, &contents, NULL, NULL));
  g_assert_cmpstr (contents, ==, "bait\n");
  g_assert_cmpint (read (other[0], buf, sizeof buf), <, 0);
  g_assert_cmpint (errno, ==, EAGAIN);

  destroy (instance);
  close (pipe_fds[0]);
  close (pipe_fds[1]);
  close (other[0]);
  close (other[1]);
  {
    g_autofree char *rm = g_strdup_printf ("rm -rf '%s'", dir);
    g_assert_true (g_spawn_command_line_sync (rm, NULL, NULL, NULL, NULL));
  }
}

/* A download into a directory below a read-write mount of the sandbox:
 * the library made and opened the destination's directories by path, so
 * a link the sandbox left on the way (`sub` -> a host directory) led the
 * file there (`cp ID:/r DIR/sub/r` wrote the host directory's `r`), and
 * an upload from DIR/sub/secret sent the host directory's file. Below
 * a directory the sandbox mounts read-write, each name is now opened
 * without following links: the copy fails, naming the path, and the host
 * directory stays empty, also when the caller reaches the mount through a
 * link of its own. Controls: a real directory there, one the download
 * makes, and the caller's own link outside the mount are followed. */
static void
test_copy_parent_link (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("libsandbox-attack-XXXXXX", &error);
  g_autofree char *host = g_dir_make_tmp ("libsandbox-attack-host-XXXXXX", &error);
  g_autofree char *alias = g_strconcat (dir, "-alias", NULL);
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autofree char *script = NULL, *out = NULL, *names = NULL;
  SandboxInstance *instance;
  int status = -1;

  g_assert_no_error (error);
  g_assert_cmpint (symlink (dir, alias), ==, 0);
  sandbox_spec_add_mount (spec, dir, "/data", FALSE);
  instance = create (spec);
  script = g_strdup_printf ("echo result > /workspace/r && ln -s '%s' /data/sub && mkdir /data/real && "
                            "echo made", host);
  out = sh (instance, script, &status);
  g_assert_cmpint (status, ==, 0);
  g_assert_cmpstr (out, ==, "made\n");

  for (guint i = 0; i < 2; i++)
    {
      g_autofree char *dest = g_build_filename (i == 0 ? dir : alias, "sub", "r", NULL);

      error = download_to (instance, "/workspace/r", dest);
      g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT);
      g_test_message ("%s", error->message);
      g_assert_nonnull (strstr (error->message, "symbolic link"));
      g_clear_error (&error);
    }
  names = test_names_in (host);
  g_assert_cmpstr (names, ==, "");

  /* An upload the same way: DIR/sub/secret would have sent the host
   * directory's secret into the sandbox. */
  {
    g_autofree char *secret = g_build_filename (host, "secret", NULL);
    g_autofree char *source = g_build_filename (dir, "sub", "secret", NULL);
    g_autofree char *seen = NULL;
    g_autoptr(GFile) file = g_file_new_for_path (source);

    g_assert_true (g_file_set_contents (secret, "host-secret\n", -1, NULL));
    g_assert_false (sandbox_instance_upload (instance, file, "/workspace/got", NULL, &error));
    g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT);
    g_test_message ("%s", error->message);
    g_clear_error (&error);
    seen = sh (instance, "cat /workspace/got 2>/dev/null; echo end", NULL);
    g_assert_cmpstr (seen, ==, "end\n");
    g_assert_cmpint (unlink (secret), ==, 0);
  }

  /* Controls. */
  {
    static const char * const rels[] = { "real/r", "new/deeper/r" };

    for (guint i = 0; i < G_N_ELEMENTS (rels); i++)
      for (guint j = 0; j < 2; j++)
        {
          g_autofree char *dest = g_build_filename (j == 0 ? dir : alias, rels[i], NULL);
          g_autofree char *real = g_build_filename (dir, rels[i], NULL);
          g_autofree char *contents = NULL;

          g_assert_true (!g_file_test (real, G_FILE_TEST_EXISTS) || g_unlink (real) == 0);
          error = download_to (instance, "/workspace/r", dest);
          g_assert_no_error (error);
          g_assert_true (g_file_get_contents (real, &contents, NULL, NULL));
          g_assert_cmpstr (contents, ==, "result\n");
        }
    /* An upload from a real directory of the mount, through the caller's link. */
    {
      g_autofree char *source = g_build_filename (alias, "real", "r", NULL);
      g_autoptr(GFile) file = g_file_new_for_path (source);
      g_autofree char *seen = NULL;

      g_assert_true (sandbox_instance_upload (instance, file, "/workspace/up", NULL, &error));
      g_assert_no_error (error);
      seen = sh (instance, "cat /workspace/up", NULL);
      g_assert_cmpstr (seen, ==, "result\n");
    }
  }

  destroy (instance);
  g_assert_cmpint (unlink (alias), ==, 0);
  {
    g_autofree char *rm = g_strdup_printf ("rm -rf '%s' '%s'", dir, host);
    g_assert_true (g_spawn_command_line_sync (rm, NULL, NULL, NULL, NULL));
  }
}

static void
upload_done (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  GError **error = user_data;

  if (sandbox_instance_upload_finish (SANDBOX_INSTANCE (source), result, error))
    *error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_EXISTS, "copied");
}

/* An upload from a host directory that the sandbox writes too (a
 * read-write mount): the library looked at the file (fstatat: a regular
 * file), then opened it without O_NONBLOCK, so a FIFO swapped in between
 * (renameat2 RENAME_EXCHANGE, in a loop) made the open() wait for a writer
 * for good. Now each of 400 uploads ends within its time, copied or
 * refused. */
static void
test_fifo_upload_source (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("libsandbox-attack-XXXXXX", &error);
  g_autofree char *src = NULL, *out = NULL;
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autoptr(GFile) file = NULL;
  g_autoptr(SandboxCommand) swapper = NULL;
  SandboxExecResult *swapped = NULL;
  SandboxInstance *instance;
  guint copied = 0, refused = 0;
  int status = -1;

  g_assert_no_error (error);
  src = g_build_filename (dir, "f", NULL);
  file = g_file_new_for_path (src);
  sandbox_spec_add_mount (spec, dir, "/data", FALSE);
  instance = create (spec);
  out = sh (instance, "echo data > /data/f && mkfifo /data/p && echo made", &status);
  g_assert_cmpstr (out, ==, "made\n");
  /* Swaps f and p for 20 s, or until /data/stop appears. */
  swapper = sandbox_command_new ((const char * const[]) {
      "python3", "-c",
      "import ctypes, os, time\n"
      "libc = ctypes.CDLL(None, use_errno=True)\n"
      "end = time.monotonic() + 20\n"
      "while time.monotonic() < end and not os.path.exists('/data/stop'):\n"
      "    for _ in range(200):\n"
      "        libc.renameat2(-100, b'/data/f', -100, b'/data/p', 2)\n",
      NULL });
  sandbox_command_set_timeout_ms (swapper, 30000);
  sandbox_instance_exec_async (instance, swapper, NULL, exec_done, &swapped);

  for (guint i = 0; i < 400; i++)
    {
      g_autofree char *dest = g_strdup_printf ("/workspace/copy-%u", i);
      gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
      GError *result = NULL;

      sandbox_instance_upload_async (instance, file, dest, NULL, upload_done, &result);
      while (result == NULL && g_get_monotonic_time () < deadline)
        if (!g_main_context_iteration (NULL, FALSE))
          g_usleep (1000);
      if (result == NULL)
        {
          g_autofree char *stop = g_build_filename (dir, "stop", NULL);
          g_autofree char *other = g_build_filename (dir, "p", NULL);
          int fds[2];

          /* Stop the swap, let the blocked open() go (the FIFO is f or p
           * now: a writer for each), then fail. */
          g_assert_true (g_file_set_contents (stop, "", 0, NULL));
          g_usleep (G_USEC_PER_SEC);
          fds[0] = open (src, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
          fds[1] = open (other, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
          g_usleep (G_USEC_PER_SEC / 10);
          for (guint f = 0; f < 2; f++)
            if (fds[f] >= 0)
              close (fds[f]);
          while (result == NULL)
            g_main_context_iteration (NULL, TRUE);
          g_error_free (result);
          g_assert_not_reached ();   /* the upload waited on the FIFO */
        }
      if (g_error_matches (result, G_IO_ERROR, G_IO_ERROR_EXISTS))
        copied++;
      else
        refused++;
      g_error_free (result);
    }
  g_test_message ("400 uploads against the swap: %u copied, %u refused", copied, refused);
  {
    g_autofree char *stop = g_build_filename (dir, "stop", NULL);

    g_assert_true (g_file_set_contents (stop, "", 0, NULL));
  }
  while (swapped == NULL)
    g_main_context_iteration (NULL, TRUE);
  g_object_unref (swapped);

  destroy (instance);
  {
    g_autofree char *rm = g_strdup_printf ("rm -rf '%s'", dir);
    g_assert_true (g_spawn_command_line_sync (rm, NULL, NULL, NULL, NULL));
  }
}

/* The file service that serves uploads and downloads is a process of the
 * sandbox, running as its user: a command that tries to stop it (SIGSTOP)
 * is refused by Landlock's signal scope, and the download succeeds. Were
 * it stopped, the copy would fail, not wait forever
 * (SANDBOX_LOCAL_FILE_TIMEOUT_MS, set short here). Control: the same
 * download before anything tries to stop it. */
static void
test_stopped_file_service (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("libsandbox-attack-XXXXXX", &error);
  g_autofree char *dest = NULL, *dest2 = NULL, *out = NULL;
  g_autoptr(GFile) file = NULL, file2 = NULL;
  SandboxInstance *instance = create (NULL);
  int status = -1;

  g_assert_no_error (error);
  g_setenv ("SANDBOX_LOCAL_FILE_TIMEOUT_MS", "2000", TRUE);
  out = sh (instance, "mkdir /workspace/d && cd /workspace/d && for i in $(seq 3000); do echo $i > f$i; done && echo MADE", &status);
  g_assert_cmpstr (out, ==, "MADE\n");
  /* Control first: nothing stops it yet. */
  dest2 = g_build_filename (dir, "control", NULL);
  file2 = g_file_new_for_path (dest2);
  g_assert_true (sandbox_instance_download (instance, "/workspace/d", file2, NULL, &error));
  g_assert_no_error (error);
  /* Then stop every child of pid 1 still running the helper (a command is
   * that only until its exec): the file service of the next download. */
  g_free (out);
  out = sh (instance,
            "setsid sh -c 'while :; do for p in /proc/[0-9]*; do n=${p#/proc/}; "
            "[ \"$n\" = 1 ] && continue; grep -q \"^PPid:.1$\" $p/status 2>/dev/null || continue; "
            "[ \"$(cat $p/comm 2>/dev/null)\" = sandbox-exec-he ] && kill -STOP $n 2>/dev/null; "
            "done; done' </dev/null >/dev/null 2>&1 & echo STARTED", NULL);
  g_assert_cmpstr (out, ==, "STARTED\n");
  dest = g_build_filename (dir, "d", NULL);
  file = g_file_new_for_path (dest);
  /* The commands are in a Landlock domain nested in that of pid 1 and its
   * helpers (sandbox-exec-helper.c, "The command spawner"): the file
   * service cannot be stopped, and the download completes. (Where it
   * could, the answer time-out would fail it.) */
  g_assert_true (sandbox_instance_download (instance, "/workspace/d", file, NULL, &error));
  g_assert_no_error (error);
  {
    g_autofree char *last = g_build_filename (dest, "f3000", NULL);

    g_assert_true (g_file_test (last, G_FILE_TEST_IS_REGULAR));
  }
  g_unsetenv ("SANDBOX_LOCAL_FILE_TIMEOUT_MS");

  destroy (instance);
  {
    g_autofree char *rm = g_strdup_printf ("rm -rf '%s'", dir);
    g_assert_true (g_spawn_command_line_sync (rm, NULL, NULL, NULL, NULL));
  }
}

/* One exec's command still signals another's (a command's `kill` of a
 * process it knows, as in a shell): the commands share their domain. */
static void
test_signal_commands (void)
{
  g_autoptr(SandboxCommand) cmd = sandbox_command_new_shell ("sleep 300 & echo $! > /tmp/victim; wait $!; echo \"ENDED $?\"");
  g_autoptr(SandboxExecResult) result = NULL;
  SandboxInstance *instance = create (NULL);
  g_autofree char *out = NULL, *first = NULL;
  GBytes *bytes;

  sandbox_command_set_timeout_ms (cmd, 60000);
  sandbox_instance_exec_async (instance, cmd, NULL, exec_done, &result);
  out = sh (instance, "while [ ! -s /tmp/victim ]; do sleep 0.05; done; kill -TERM $(cat /tmp/victim) && echo KILLED", NULL);
  g_assert_cmpstr (out, ==, "KILLED\n");
  while (result == NULL)
    g_main_context_iteration (NULL, TRUE);
  bytes = sandbox_exec_result_get_stdout (result);
  first = g_strndup (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
  g_assert_cmpstr (first, ==, "ENDED 143\n");
  destroy (instance);
}

/* The command spawner is in the commands' domain: a command can stop or
 * kill it. Neither keeps the sandbox from running the next command: pid 1
 * continues it while a spawn waits, and makes a new one when it dies. */
static void
test_stop_spawner (void)
{
  static const char find[] =
    "for p in /proc/[0-9]*; do [ \"$(cat $p/comm 2>/dev/null)\" = sandbox-spawner ] && "
    "grep -q '^PPid:.1$' $p/status && grep -q '^State:.S' $p/status && ";
  SandboxInstance *instance = create (NULL);
  g_autofree char *stop = g_strconcat (find, "kill -STOP ${p#/proc/} && echo STOPPED; done", NULL);
  g_autofree char *kill9 = g_strconcat (find, "kill -KILL ${p#/proc/} && echo KILLED; done", NULL);
  g_autofree char *out = NULL;

  out = sh (instance, stop, NULL);
  g_assert_cmpstr (out, ==, "STOPPED\n");
  g_free (out);
  out = sh (instance, "echo NEXT", NULL);
  g_assert_cmpstr (out, ==, "NEXT\n");
  g_free (out);
  out = sh (instance, kill9, NULL);
  g_assert_cmpstr (out, ==, "KILLED\n");
  g_clear_pointer (&out, g_free);
  /* The next command is served by a new spawner, also when it was sent
   * while the killed one was still on its way out (its socket not yet
   * closed): it used to be refused then with EAGAIN (pid 1 could not tell
   * whether that spawner had made it already); see
   * test_spawner_killed_with_request. */
  g_free (out);
  out = sh (instance, "echo AGAIN", NULL);
  g_assert_cmpstr (out, ==, "AGAIN\n");
  destroy (instance);
}

typedef struct
{
  SandboxExecResult *result;
  GError            *error;
  gboolean           done;
} ExecOutcome;

static void
exec_outcome (GObject      *source,
              GAsyncResult *res,
              gpointer      user_data)
{
  ExecOutcome *outcome = user_data;

  outcome->result = sandbox_instance_exec_finish (SANDBOX_INSTANCE (source), res, &outcome->error);
  outcome->done = TRUE;
}

/* A command (A) keeps the spawner stopped, so that the request of the next
 * command (B) waits on its socket, unread; then A kills the spawner. pid 1
 * used to refuse B (EAGAIN): it could not tell whether the dead spawner had
 * made B's command already. Every command now tells pid 1 its pid before it
 * reads its request, and pid 1 stops listening before it hands what no
 * command told it of to a new spawner: B runs, once. Three rounds (the
 * spawner may read B's request in the moment between pid 1's SIGCONT and
 * A's next SIGSTOP; then B ran before too). */
static void
test_spawner_killed_with_request (void)
{
  static const char a_script[] =
    "for p in /proc/[0-9]*; do [ \"$(cat $p/comm 2>/dev/null)\" = sandbox-spawner ] && "
    "grep -q '^PPid:.1$' $p/status && P=${p#/proc/}; done; "
    "[ -n \"$P\" ] || exit 3; "
    "( while kill -STOP $P 2>/dev/null; do :; done ) & S=$!; "
    "echo $P > /tmp/stopping; "
    "while [ ! -e /tmp/go ]; do sleep 0.01; done; "
    "kill -KILL $P; kill $S; rm -f /tmp/go /tmp/stopping; echo A-DONE";
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("libsandbox-attack-XXXXXX", &error);
  g_autofree char *go_path = g_build_filename (dir, "go", NULL);
  g_autofree char *seen_path = g_build_filename (dir, "seen", NULL);
  g_autoptr(GFile) go = g_file_new_for_path (go_path);
  g_autoptr(GFile) seen = g_file_new_for_path (seen_path);
  SandboxInstance *instance = create (NULL);
  guint refused = 0;

  g_assert_no_error (error);
  g_assert_true (g_file_set_contents (go_path, "", 0, NULL));
  for (int round = 0; round < 3; round++)
    {
      g_autoptr(SandboxCommand) a = sandbox_command_new_shell (a_script);
      g_autoptr(SandboxCommand) b = sandbox_command_new_shell ("echo B");
      g_autoptr(SandboxExecResult) a_result = NULL;
      ExecOutcome b_outcome = { NULL, NULL, FALSE };
      gint64 until;
      GBytes *bytes;

      sandbox_command_set_timeout_ms (a, 60000);
      sandbox_command_set_timeout_ms (b, 60000);
      sandbox_instance_exec_async (instance, a, NULL, exec_done, &a_result);
      /* A's stopper runs once /tmp/stopping is there (the file service is
       * pid 1's, not the spawner's: it works meanwhile). */
      for (;;)
        {
          g_autoptr(GError) not_yet = NULL;

          if (sandbox_instance_download (instance, "/tmp/stopping", seen, NULL, &not_yet))
            break;
          g_assert_null (a_result);
          g_usleep (10000);
        }
      g_unlink (seen_path);
      sandbox_instance_exec_async (instance, b, NULL, exec_outcome, &b_outcome);
      /* B's request reaches the stopped spawner; then A kills it. */
      until = g_get_monotonic_time () + 300 * 1000;
      while (g_get_monotonic_time () < until)
        g_main_context_iteration (NULL, FALSE);
      g_assert_true (sandbox_instance_upload (instance, go, "/tmp/go", NULL, &error));
      g_assert_no_error (error);
      while (a_result == NULL)
        g_main_context_iteration (NULL, TRUE);
      bytes = sandbox_exec_result_get_stdout (a_result);
      g_assert_cmpmem (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes), "A-DONE\n", 7);
      while (!b_outcome.done)
        g_main_context_iteration (NULL, TRUE);
      if (b_outcome.error != NULL)
        {
          g_test_message ("round %d: B refused: %s", round, b_outcome.error->message);
          refused++;
          g_clear_error (&b_outcome.error);
          continue;
        }
      bytes = sandbox_exec_result_get_stdout (b_outcome.result);
      g_assert_cmpmem (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes), "B\n", 2);
      g_clear_object (&b_outcome.result);
    }
  g_assert_cmpuint (refused, ==, 0);
  destroy (instance);
  g_unlink (go_path);
  g_rmdir (dir);
}

/* The host walks the sandbox's directories for its metrics (disk used)
 * and to remove them at destroy. A tree nested 30,000 levels deep (far
 * beyond PATH_MAX, a thread's stack for a recursive walk, and the
 * descriptor limit) crashed the caller in nftw() and was left behind by
 * destroy: both walks now go one level at a time, holding one directory.
 * The 64 KiB at the bottom are counted, and nothing is left. */
static void
test_deep_tree (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(SandboxMetrics) metrics = NULL;
  SandboxInstance *instance;
  g_autofree char *out = NULL, *dir = NULL;

  if (!have_python ())
    {
      g_test_skip ("needs /usr/bin/python3");
      return;
    }
  instance = create (NULL);
  dir = g_build_filename (g_get_user_runtime_dir (), "libsandbox", "local",
                          sandbox_instance_get_id (instance), NULL);
  g_assert_true (g_file_test (dir, G_FILE_TEST_IS_DIR));
  out = sh (instance,
            "/usr/bin/python3 -c \"import os\n"
            "os.chdir('/workspace')\n"
            "for i in range(30000):\n"
            "    os.mkdir('d'); os.chdir('d')\n"
            "open('f', 'wb').write(os.urandom(65536))\n"
            "os.chmod('.', 0o100)\n"
            "print('DEEP')\"", NULL);
  g_assert_cmpstr (out, ==, "DEEP\n");
  metrics = sandbox_instance_get_metrics (instance, NULL, &error);
  g_assert_no_error (error);
  g_test_message ("disk used: %" G_GUINT64_FORMAT, sandbox_metrics_get_disk_used (metrics));
  g_assert_cmpuint (sandbox_metrics_get_disk_used (metrics), >=, 65536);

  /* Downloading it: the copy recursed once per level with a 4 KiB buffer
   * on the stack and crashed the test process (SIGSEGV) some 2,000 levels
   * down; it now fails where the path gets longer than the file service
   * takes (SBX_PATH_MAX). Control: 1,000 levels download whole. */
  {
    g_autofree char *host = g_dir_make_tmp ("libsandbox-attack-XXXXXX", &error);
    g_autofree char *too_deep = NULL, *deep = NULL, *bottom = NULL, *contents = NULL;
    g_autoptr(GFile) too_deep_file = NULL, deep_file = NULL;
    g_autoptr(GString) path = NULL;
    const char *rm[] = { "/bin/rm", "-rf", NULL, NULL };
    int status = -1;

    g_assert_no_error (error);
    out = (g_free (out), sh (instance,
                             "cd /workspace && mkdir ok && cd ok && "
                             "for i in $(seq 1000); do mkdir d && cd d || exit 1; done && "
                             "echo bottom > f && echo OK", NULL));
    g_assert_cmpstr (out, ==, "OK\n");
    too_deep = g_build_filename (host, "too-deep", NULL);
    too_deep_file = g_file_new_for_path (too_deep);
    g_assert_false (sandbox_instance_download (instance, "/workspace/d", too_deep_file, NULL, &error));
    g_assert_nonnull (error);
    g_assert_true (error->domain == SANDBOX_ERROR);
    g_clear_error (&error);
    deep = g_build_filename (host, "ok", NULL);
    deep_file = g_file_new_for_path (deep);
    g_assert_true (sandbox_instance_download (instance, "/workspace/ok", deep_file, NULL, &error));
    g_assert_no_error (error);
    path = g_string_new (deep);
    for (int i = 0; i < 1000; i++)
      g_string_append (path, "/d");
    /* Longer than PATH_MAX: read through /proc/self/cwd of a shell. */
    bottom = g_strdup_printf ("cd %s && cat f", path->str + strlen (deep) + 1);
    {
      const char *cat[] = { "/bin/sh", "-c", bottom, NULL };

      g_assert_true (g_spawn_sync (deep, (char **) cat, NULL, G_SPAWN_DEFAULT, NULL, NULL,
                                   &contents, NULL, &status, &error));
      g_assert_no_error (error);
      g_assert_cmpstr (contents, ==, "bottom\n");
    }
    rm[2] = host;
    g_assert_true (g_spawn_sync (NULL, (char **) rm, NULL, G_SPAWN_DEFAULT, NULL, NULL,
                                 NULL, NULL, &status, &error));
    g_assert_no_error (error);
    g_assert_false (g_file_test (host, G_FILE_TEST_EXISTS));
  }
  destroy (instance);
  g_assert_false (g_file_test (dir, G_FILE_TEST_EXISTS));
}

/* A terminal's line discipline cannot be changed (TIOCSETD), not even to
 * the default one: another would make the kernel load its module (n_gsm,
 * n_hdlc, ...) for the sandbox. Control: TIOCGETD on the same terminal. */
static void
test_line_discipline (void)
{
  static const char ldisc_py[] =
    "import errno, fcntl, os, struct, termios\n"
    "m, s = os.openpty()\n"
    "print('GETD', struct.unpack('i', fcntl.ioctl(s, termios.TIOCGETD, b'0000'))[0])\n"
    "for fd in (s, m):\n"
    "    try:\n"
    "        fcntl.ioctl(fd, termios.TIOCSETD, struct.pack('i', 0))\n"
    "        print('SETD OK')\n"
    "    except OSError as ex:\n"
    "        print('SETD', errno.errorcode[ex.errno])\n";
  g_autofree char *quoted = g_shell_quote (ldisc_py);
  g_autofree char *script = g_strdup_printf ("P=%s; /usr/bin/python3 -c \"$P\"", quoted);

  if (!have_python ())
    {
      g_test_skip ("needs /usr/bin/python3");
      return;
    }
  expect_as_user_and_root (script, 0, "GETD 0\nSETD EPERM\nSETD EPERM\n");
}

/* No socket() or socketpair() can ask for a protocol the kernel would
 * load a module for (it runs the host's modprobe as root for anyone):
 * SCTP, DCCP, L2TP, SMC, and netlink's iSCSI, netfilter, generic, RDMA and
 * crypto families; also with high bits set in the argument (the kernel
 * reads an int). Without the filter these reach the kernel, which answers
 * EPROTONOSUPPORT or ESOCKTNOSUPPORT after trying to load the module (or
 * makes the socket, when it is built in). Controls: TCP, UDP and the
 * netlink families programs use (routes, socket diagnostics, uevents). */
static void
test_module_autoload (void)
{
  static const char autoload_py[] =
    "import ctypes, errno, os, socket\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "def sys(nr, *args):\n"
    "    r = libc.syscall(nr, *[ctypes.c_long(a) for a in args])\n"
    "    if r < 0:\n"
    "        return errno.errorcode[ctypes.get_errno()]\n"
    "    os.close(r)\n"
    "    return 'OK'\n"
    "def sock(f, t, p):\n"
    "    try:\n"
    "        socket.socket(f, t, p).close()\n"
    "        return 'OK'\n"
    "    except OSError as ex:\n"
    "        return errno.errorcode[ex.errno]\n"
    "I, I6, N = socket.AF_INET, socket.AF_INET6, socket.AF_NETLINK\n"
    "for f, t, p in ((I, 1, 132), (I, 5, 132), (I6, 1, 132), (I, 6, 33), (I6, 6, 33),\n"
    "                (I, 2, 115), (I6, 2, 115), (I, 1, 256), (I, 1, 1000), (I, 3, 47),\n"
    "                (N, 3, 8), (N, 3, 12), (N, 3, 16), (N, 3, 20), (N, 3, 21), (N, 3, 22)):\n"
    "    print(f, t, p, sock(f, t, p))\n"
    "print('high', sys(41, I, 1, 132 | 1 << 32))\n"
    "pair = (ctypes.c_int * 2)()\n"
    "r = libc.socketpair(N, 3, 21, pair)\n"
    "print('pair', errno.errorcode[ctypes.get_errno()] if r < 0 else 'OK')\n"
    "for f, t, p in ((I, 1, 0), (I, 1, 6), (I, 2, 17), (I6, 1, 6), (N, 3, 0), (N, 3, 4), (N, 3, 15)):\n"
    "    print('control', f, t, p, sock(f, t, p))\n";
  g_autofree char *quoted = g_shell_quote (autoload_py);
  g_autofree char *script = g_strdup_printf ("P=%s; /usr/bin/python3 -c \"$P\"", quoted);

  if (!have_python ())
    {
      g_test_skip ("needs /usr/bin/python3");
      return;
    }
  for (int as_root = 0; as_root <= 1; as_root++)
    {
      g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
      g_auto(GStrv) lines = NULL;
      g_autofree char *out = NULL;
      SandboxInstance *instance;
      guint denied = 0, controls = 0;

      sandbox_spec_set_run_as_root (spec, as_root);
      instance = create (spec);
      out = sh (instance, script, NULL);
      g_test_message ("run-as-root=%d: %s", as_root, out);
      lines = g_strsplit (out, "\n", -1);
      for (guint i = 0; lines[i] != NULL && lines[i][0] != '\0'; i++)
        {
          if (g_str_has_prefix (lines[i], "control "))
            {
              g_assert_true (g_str_has_suffix (lines[i], " OK"));
              controls++;
            }
          else
            {
              g_assert_true (g_str_has_suffix (lines[i], " EPERM"));
              denied++;
            }
        }
      g_assert_cmpuint (denied, ==, 18);
      g_assert_cmpuint (controls, ==, 7);
      destroy (instance);
    }
}

/* The file systems in memory that the sandbox writes (/dev/shm, /run)
 * hold no more than half the spec's memory limit, which their pages escape
 * (RLIMIT_AS counts a process's address space, not a tmpfs), and /dev
 * itself is not writable: before, a sandbox limited to 64 MiB left 48 MiB
 * in each, for as long as it lived. Controls: 1 MiB in /dev/shm and /run,
 * writing /dev/null, opening a pseudo-terminal. */
static void
test_memory_tmpfs (void)
{
  static const char script[] =
    "for f in /dev/shm/big /run/big /dev/big; do "
    "  head -c 50331648 /dev/zero > $f 2>/dev/null && echo \"WROTE $f\"; "
    "  rm -f $f 2>/dev/null; "
    "done; "
    "head -c 1048576 /dev/zero > /dev/shm/small && head -c 1048576 /dev/zero > /run/small && echo small; "
    "echo x > /dev/null && echo null; "
    "/usr/bin/python3 -c 'import os; m, s = os.openpty(); print(os.ttyname(s)[:9])'";

  if (!have_python ())
    {
      g_test_skip ("needs /usr/bin/python3");
      return;
    }
  expect_as_user_and_root (script, 64, "small\nnull\n/dev/pts/\n");
}

/* The sandboxes' directory defaults to a tmpfs ($XDG_RUNTIME_DIR, else
 * /dev/shm/libsandbox-UID): /tmp, /var/tmp and the workdir, bound from it,
 * were memory of the host that no limit counted. A sandbox limited to
 * 64 MiB of memory kept 48 MiB in each (any number of such files, up to
 * half the host's memory, until destroy), and disk-mb (RLIMIT_FSIZE)
 * bounded only each file. With the directory on a tmpfs and a limit set,
 * each is now a tmpfs of the sandbox's own, the three holding at most
 * half the memory limit (and at most the disk limit) together. Controls: 1 MiB in each, an upload
 * and a download through the workdir, the metrics count what the sandbox
 * holds there, and nothing of it is left in the host's directory. */
static void
test_memory_on_tmpfs_root (void)
{
  static const char script[] =
    "for d in /tmp /var/tmp /workspace; do "
    "  head -c 50331648 /dev/zero > $d/big 2>/dev/null && echo \"WROTE $d\"; "
    "  rm -f $d/big; "
    "  head -c 1048576 /dev/zero > $d/small && echo \"small $d\"; "
    "  rm -f $d/small; "
    "done; "
    "head -c 8388608 /dev/zero > /workspace/kept && echo kept";
  /* Each file under disk-mb (RLIMIT_FSIZE), 24 MiB in all, spread over
   * the three: what fits, in MiB. */
  static const char files[] =
    "n=0; for i in 1 2 3 4 5 6 7 8; do for d in /tmp /var/tmp /workspace; do "
    "  head -c 1048576 /dev/zero > $d/f$i 2>/dev/null && n=$((n+1)) || rm -f $d/f$i; "
    "done; done; echo $n";
  struct statfs fs;
  g_autofree char *root = NULL;
  g_autofree char *saved = g_strdup (g_getenv ("SANDBOX_LOCAL_ROOT"));

  if (statfs ("/dev/shm", &fs) != 0 || fs.f_type != TMPFS_MAGIC ||
      (guint64) fs.f_bavail * fs.f_bsize < (guint64) 1 << 30)
    {
      g_test_skip ("needs a tmpfs of 1 GiB at /dev/shm");
      return;
    }
  root = g_strdup_printf ("/dev/shm/libsandbox-attack-%08x", g_random_int ());
  g_assert_cmpint (g_mkdir (root, 0700), ==, 0);
  g_setenv ("SANDBOX_LOCAL_ROOT", root, TRUE);

  for (int as_root = 0; as_root <= 1; as_root++)
    {
      g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
      g_autoptr(SandboxMetrics) metrics = NULL;
      g_autoptr(GError) error = NULL;
      g_autofree char *out = NULL, *up = NULL, *up_file = NULL, *down = NULL, *got = NULL;
      g_autoptr(GFile) source = NULL, dest = NULL;
      SandboxInstance *instance;
      GDir *dir;
      const char *name;

      sandbox_spec_set_run_as_root (spec, as_root);
      sandbox_spec_set_memory_mb (spec, 64);
      instance = create (spec);
      out = sh (instance, script, NULL);
      g_test_message ("run-as-root=%d: %s", as_root, out);
      /* 48 MiB fits nowhere (together, half the limit: 32 MiB). */
      g_assert_cmpstr (out, ==, "small /tmp\nsmall /var/tmp\nsmall /workspace\nkept\n");

      metrics = sandbox_instance_get_metrics (instance, NULL, &error);
      g_assert_no_error (error);
      g_test_message ("disk used: %" G_GUINT64_FORMAT, sandbox_metrics_get_disk_used (metrics));
      g_assert_cmpuint (sandbox_metrics_get_disk_used (metrics), >=, 8 << 20);

      /* The host's copy of the instance directory holds none of it. */
      dir = g_dir_open (root, 0, &error);
      g_assert_no_error (error);
      while ((name = g_dir_read_name (dir)) != NULL)
        {
          g_autofree char *work = g_build_filename (root, name, "work", "kept", NULL);

          g_assert_false (g_file_test (work, G_FILE_TEST_EXISTS));
        }
      g_dir_close (dir);

      /* Uploads and downloads go through the workdir as before. */
      up = g_dir_make_tmp ("libsandbox-upload-XXXXXX", &error);
      g_assert_no_error (error);
      up_file = g_build_filename (up, "f", NULL);
      g_assert_true (g_file_set_contents (up_file, "uploaded", -1, NULL));
      source = g_file_new_for_path (up_file);
      g_assert_true (sandbox_instance_upload (instance, source, "/workspace/f", NULL, &error));
      g_assert_no_error (error);
      down = g_build_filename (up, "back", NULL);
      dest = g_file_new_for_path (down);
      g_assert_true (sandbox_instance_download (instance, "/workspace/f", dest, NULL, &error));
      g_assert_no_error (error);
      g_assert_true (g_file_get_contents (down, &got, NULL, NULL));
      g_assert_cmpstr (got, ==, "uploaded");
      g_unlink (down);
      g_unlink (up_file);
      g_rmdir (up);
      destroy (instance);
    }

  /* disk-mb 16: the total of the three is bounded, not each file, nor
   * each mount (before, 16 MiB fitted in each: 24 of these 24 MiB). */
  {
    g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
    g_autofree char *out = NULL;
    SandboxInstance *instance;

    sandbox_spec_set_disk_mb (spec, 16);
    instance = create (spec);
    out = sh (instance, files, NULL);
    g_test_message ("disk-mb 16: %s MiB written", out);
    g_assert_cmpint (atoi (out), <=, 16);
    g_assert_cmpint (atoi (out), >=, 12);
    destroy (instance);
  }

  restore_local_root (saved);
  g_assert_cmpint (g_rmdir (root), ==, 0);
}

/* The root of the sandbox is bwrap's tmpfs, of no size limit, owned by
 * the sandbox user: Landlock kept files out of it (no write access there),
 * but a command could make directories, links, FIFOs and empty files in
 * it, and so keep any amount of the host's memory beyond its limit (a
 * link of 4,000 bytes takes a page) until destroy. It is read-only now.
 * Controls: the same in /tmp and the workdir. */
static void
test_root_read_only (void)
{
  static const char script[] =
    "mkdir /d 2>/dev/null && echo MKDIR; "
    "ln -s x /l 2>/dev/null && echo LINK; "
    "mkfifo /f 2>/dev/null && echo FIFO; "
    "/usr/bin/python3 -c 'import os; os.mknod(\"/r\")' 2>/dev/null && echo FILE; "
    "/usr/bin/python3 -c 'import os; os.symlink(\"y\" * 4000, \"/big\")' 2>/dev/null && echo BIGLINK; "
    "mkdir /tmp/d && ln -s x /tmp/l && mkfifo /tmp/f && mkdir /workspace/d && "
    "ln -s x /workspace/l && echo controls";

  if (!have_python ())
    {
      g_test_skip ("needs /usr/bin/python3");
      return;
    }
  expect_as_user_and_root (script, 0, "controls\n");
}

/* Together, the file systems in memory that a sandbox may write hold no
 * more than its memory limit: /dev/shm and /run a quarter each, /tmp,
 * /var/tmp and the workdir (their own tmpfs mounts when the sandboxes'
 * directory is in memory) half, shared. Before, each of the five held half
 * of it (a sandbox limited to 64 MiB kept 150 MiB in them, as an
 * unprivileged caller, where no cgroup counts them), and the root tmpfs
 * had no limit at all. Measured from inside: the sizes of every writable
 * tmpfs mount, as the user and as root. */
static void
test_memory_tmpfs_total (void)
{
  static const char script[] =
    "import os\n"
    "total = 0\n"
    "for line in open('/proc/self/mountinfo'):\n"
    "    f = line.split()\n"
    "    fs = f[f.index('-') + 1]\n"
    "    if fs != 'tmpfs' or 'ro' in f[5].split(','):\n"
    "        continue\n"
    "    st = os.statvfs(f[4])\n"
    "    total += st.f_blocks * st.f_frsize\n"
    "    print(f[4], st.f_blocks * st.f_frsize >> 20)\n"
    "print('total', total >> 20)\n";
  struct statfs fs;
  g_autofree char *root = NULL;
  g_autofree char *saved = g_strdup (g_getenv ("SANDBOX_LOCAL_ROOT"));

  if (!have_python ())
    {
      g_test_skip ("needs /usr/bin/python3");
      return;
    }
  if (statfs ("/dev/shm", &fs) != 0 || fs.f_type != TMPFS_MAGIC)
    {
      g_test_skip ("needs a tmpfs at /dev/shm");
      return;
    }
  root = g_strdup_printf ("/dev/shm/libsandbox-attack-%08x", g_random_int ());
  g_assert_cmpint (g_mkdir (root, 0700), ==, 0);
  g_setenv ("SANDBOX_LOCAL_ROOT", root, TRUE);
  for (int as_root = 0; as_root <= 1; as_root++)
    {
      g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
      const char * const argv[] = { "/usr/bin/python3", "-c", script, NULL };
      g_autoptr(SandboxCommand) cmd = sandbox_command_new (argv);
      g_autoptr(SandboxExecResult) result = NULL;
      g_autoptr(GError) error = NULL;
      g_autofree char *out = NULL;
      const char *total;
      GBytes *bytes;
      SandboxInstance *instance;

      sandbox_spec_set_run_as_root (spec, as_root);
      sandbox_spec_set_memory_mb (spec, 64);
      instance = create (spec);
      result = sandbox_instance_exec (instance, cmd, NULL, &error);
      g_assert_no_error (error);
      bytes = sandbox_exec_result_get_stdout (result);
      out = g_strndup (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
      g_test_message ("run-as-root=%d:\n%s", as_root, out);
      g_assert_cmpint (sandbox_exec_result_get_exit_code (result), ==, 0);
      total = strstr (out, "total ");
      g_assert_nonnull (total);
      g_assert_cmpint (atoi (total + 6), <=, 64);
      /* Controls: each is still of some use. */
      g_assert_nonnull (strstr (out, "/dev/shm 16\n"));
      g_assert_nonnull (strstr (out, "/workspace 16\n"));
      g_assert_nonnull (strstr (out, "/tmp 8\n"));
      destroy (instance);
    }
  restore_local_root (saved);
  g_assert_cmpint (g_rmdir (root), ==, 0);
}

/* Runs the Python program SCRIPT in a sandbox with the network, as the
 * user and as root, where its output must be WITH_NETWORK, and in one
 * without (a namespace of its own), where it must be WITHOUT. */
static void
expect_with_and_without_network (const char *script,
                                 const char *with_network,
                                 const char *without)
{
  const char * const argv[] = { "/usr/bin/python3", "-c", script, NULL };

  for (int mode = 0; mode < 3; mode++)
    {
      g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
      g_autoptr(SandboxCommand) cmd = sandbox_command_new (argv);
      g_autoptr(SandboxExecResult) result = NULL;
      g_autoptr(GError) error = NULL;
      g_autofree char *out = NULL;
      GBytes *bytes;
      SandboxInstance *instance;

      /* 0, 1: with the network, as the user and as root; 2: without. */
      sandbox_spec_set_network (spec, mode < 2);
      sandbox_spec_set_run_as_root (spec, mode == 1);
      instance = create (spec);
      result = sandbox_instance_exec (instance, cmd, NULL, &error);
      g_assert_no_error (error);
      bytes = sandbox_exec_result_get_stdout (result);
      out = g_strndup (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
      g_test_message ("mode %d: %s", mode, out);
      g_assert_cmpstr (out, ==, mode < 2 ? with_network : without);
      destroy (instance);
    }
}

/* With `network` the sandbox shares the host's network namespace, and its
 * sockets belong to the caller's uid (root's here): SO_REUSEPORT let a
 * command bind the port of a host service of that uid that listens with
 * it, and take a share of that service's connections. Now refused (EPERM)
 * in a sandbox with the network, as the user and as root, and the bind
 * then fails. Controls: SO_REUSEADDR and another port still bind; without
 * the network (a namespace of its own) SO_REUSEPORT is allowed. */
static void
test_reuseport_host (void)
{
  static const char script_fmt[] =
    "import socket\n"
    "s = socket.socket()\n"
    "try:\n"
    "    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)\n"
    "    print('set')\n"
    "except OSError as e:\n"
    "    print('refused', e.errno)\n"
    "try:\n"
    "    s.bind(('127.0.0.1', %d)); s.listen(); print('JOINED')\n"
    "except OSError as e:\n"
    "    print('bind failed')\n"
    "t = socket.socket()\n"
    "t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "t.bind(('127.0.0.1', 0)); t.listen(); print('other port')\n";
  g_autofree char *script = NULL;
  struct sockaddr_in addr = { 0 };
  socklen_t len = sizeof addr;
  int one = 1, host;

  if (!have_python ())
    {
      g_test_skip ("needs /usr/bin/python3");
      return;
    }
  host = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  g_assert_cmpint (host, >=, 0);
  g_assert_cmpint (setsockopt (host, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one), ==, 0);
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  g_assert_cmpint (bind (host, (struct sockaddr *) &addr, sizeof addr), ==, 0);
  g_assert_cmpint (listen (host, 8), ==, 0);
  g_assert_cmpint (getsockname (host, (struct sockaddr *) &addr, &len), ==, 0);

  script = g_strdup_printf (script_fmt, ntohs (addr.sin_port));
  expect_with_and_without_network (script, "refused 1\nbind failed\nother port\n", "set\nJOINED\nother port\n");
  close (host);
}

/* The same through SO_REUSEADDR, on UDP: a socket with it may bind a port
 * that a host service holds with it too (mDNS, SSDP, many UDP services),
 * whatever either's uid, and the last one bound gets the port's unicast
 * datagrams: a command of a sandbox with the network took the host
 * service's. Now refused on anything but a stream socket (EPERM), where
 * it only lets a server restart within TIME_WAIT. Controls: a TCP socket
 * gets it (and reads it back), and without the network, in a namespace of
 * its own, so does a UDP one. */
static void
test_reuseaddr_udp_host (void)
{
  static const char script_fmt[] =
    "import socket\n"
    "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
    "try:\n"
    "    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "    print('set')\n"
    "except OSError as e:\n"
    "    print('refused', e.errno)\n"
    "try:\n"
    "    s.bind(('127.0.0.1', %d)); print('JOINED')\n"
    "except OSError as e:\n"
    "    print('bind failed')\n"
    "t = socket.socket()\n"
    "t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "print('tcp', t.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR))\n";
  g_autofree char *script = NULL;
  struct sockaddr_in addr = { 0 };
  socklen_t len = sizeof addr;
  int one = 1, host;

  if (!have_python ())
    {
      g_test_skip ("needs /usr/bin/python3");
      return;
    }
  host = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  g_assert_cmpint (host, >=, 0);
  g_assert_cmpint (setsockopt (host, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one), ==, 0);
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
  g_assert_cmpint (bind (host, (struct sockaddr *) &addr, sizeof addr), ==, 0);
  g_assert_cmpint (getsockname (host, (struct sockaddr *) &addr, &len), ==, 0);

  script = g_strdup_printf (script_fmt, ntohs (addr.sin_port));
  expect_with_and_without_network (script, "refused 1\nbind failed\ntcp 1\n", "set\nJOINED\ntcp 1\n");
  close (host);
}

/* A crash in the sandbox dumps no core: with a pipe in the host's
 * core_pattern (apport, systemd-coredump) the kernel handed the process's
 * memory to the host's crash handler, which runs as root and keeps the
 * dump on the host after the sandbox is gone; the hard RLIMIT_CORE was
 * unlimited, so a command could raise its own. Now 0, hard, as the user
 * and as root; with this host's file pattern, no core file appears either
 * (before: one per crash, when core_pattern names a file). */
static void
test_core_dumps (void)
{
  static const char script[] =
    "cd /workspace && ulimit -Hc && ulimit -c unlimited 2>/dev/null; "
    "sh -c 'kill -SEGV $$'; ls | grep '^core' || echo no-core";

  expect_as_user_and_root (script, 0, "0\nno-core\n");
}

/* No real-time scheduling and no raised priority in a sandbox, whatever
 * the caller's own limits allow: with RLIMIT_RTPRIO 10 (an audio group's
 * limit, a service's LimitRTPRIO=), a command set SCHED_FIFO without any
 * capability, and a busy loop at that priority takes a CPU from every
 * host process. The test raises its own limits (it runs as root), as such
 * a caller has them. Controls: SCHED_BATCH, and a lower priority (nice 5). */
static void
test_realtime (void)
{
  static const char script[] =
    "chrt -f 1 true 2>/dev/null && echo FIFO; chrt -r 1 true 2>/dev/null && echo RR; "
    "nice -n -5 true 2>/dev/null && echo NICE; "
    "chrt -b 0 true && echo batch; nice -n 5 true && echo lower";
  struct rlimit saved_rt, saved_nice, ten = { 10, 10 }, twenty = { 20, 20 };

  g_assert_cmpint (getrlimit (RLIMIT_RTPRIO, &saved_rt), ==, 0);
  g_assert_cmpint (getrlimit (RLIMIT_NICE, &saved_nice), ==, 0);
  if (setrlimit (RLIMIT_RTPRIO, &ten) != 0 || setrlimit (RLIMIT_NICE, &twenty) != 0)
    {
      /* A container without CAP_SYS_RESOURCE: no caller here can have them. */
      setrlimit (RLIMIT_RTPRIO, &saved_rt);
      g_test_skip ("needs CAP_SYS_RESOURCE (to raise the test's own RLIMIT_RTPRIO)");
      return;
    }
  expect_as_user_and_root (script, 0, "batch\nlower\n");
  g_assert_cmpint (setrlimit (RLIMIT_RTPRIO, &saved_rt), ==, 0);
  g_assert_cmpint (setrlimit (RLIMIT_NICE, &saved_nice), ==, 0);
}

/* What the caller stands at is not the sandbox's: bwrap was started with
 * the calling thread's scheduling policy and nice value, its I/O class,
 * its process's oom_score_adj, personality and ignored signals, which
 * every process of the sandbox then had. A caller running SCHED_FIFO (or
 * at nice -10, or in the real-time I/O class) gave an untrusted command a
 * CPU before every host process, whatever RLIMIT_RTPRIO says; a negative
 * oom_score_adj had the host's processes killed before the sandbox's;
 * ADDR_NO_RANDOMIZE (`setarch -R`) turned address randomization off in
 * pid 1; an ignored SIGTERM or SIGXFSZ (`nohup`, Python) stayed ignored in
 * the commands. Each is set on this process where it may be (only to
 * create the sandbox), and checked in pid 1 and in a command. */
static void
test_caller_standing (void)
{
  static const int ignored[] = { SIGTERM, SIGALRM, SIGXFSZ, SIGUSR2, SIGHUP };
  static const char script[] =
    "for p in 1 $$; do "
    "  echo $(grep ^SigIgn /proc/$p/status | cut -f2) $(cut -d' ' -f19,41 /proc/$p/stat) "
    "    $(cat /proc/$p/oom_score_adj 2>/dev/null || echo 0); "
    "done; "
    "cat /proc/self/personality; "
    "if command -v ionice >/dev/null; then ionice -p $$ | cut -d: -f1; else echo none; fi";
  struct sigaction saved[G_N_ELEMENTS (ignored)];
  struct sched_param fifo = { 1 }, other = { 0 };
  int saved_nice, saved_persona, saved_policy = sched_getscheduler (0);
  long saved_ioprio = syscall (SYS_ioprio_get, 1, 0);
  g_autofree char *saved_oom = NULL;
  g_autofree char *out = NULL;
  g_autofree char *expected = NULL;
  SandboxInstance *instance;
  gboolean rt = FALSE, nice_set = FALSE, oom_set = FALSE, io_set = FALSE;

  for (guint i = 0; i < G_N_ELEMENTS (ignored); i++)
    {
      struct sigaction ign = { 0 };

      ign.sa_handler = SIG_IGN;
      g_assert_cmpint (sigaction (ignored[i], &ign, &saved[i]), ==, 0);
    }
  saved_persona = personality (0xffffffff);
  g_assert_cmpint (personality (saved_persona | ADDR_NO_RANDOMIZE), !=, -1);
  errno = 0;
  saved_nice = getpriority (PRIO_PROCESS, 0);
  nice_set = setpriority (PRIO_PROCESS, 0, -5) == 0;
  rt = sched_setscheduler (0, SCHED_FIFO, &fifo) == 0;
  io_set = syscall (SYS_ioprio_set, 1, 0, (1 << 13) | 4) == 0;   /* IOPRIO_CLASS_RT, level 4 */
  if (g_file_get_contents ("/proc/self/oom_score_adj", &saved_oom, NULL, NULL))
    oom_set = g_file_set_contents ("/proc/self/oom_score_adj", "-100", -1, NULL);

  instance = create (NULL);

  if (rt)
    g_assert_cmpint (sched_setscheduler (0, saved_policy, &other), ==, 0);
  if (io_set)
    g_assert_cmpint (syscall (SYS_ioprio_set, 1, 0, saved_ioprio), ==, 0);
  if (oom_set)
    g_assert_true (g_file_set_contents ("/proc/self/oom_score_adj", saved_oom, -1, NULL));
  if (nice_set)
    setpriority (PRIO_PROCESS, 0, saved_nice);
  personality (saved_persona);
  for (guint i = 0; i < G_N_ELEMENTS (ignored); i++)
    g_assert_cmpint (sigaction (ignored[i], &saved[i], NULL), ==, 0);
  g_test_message ("set here: SCHED_FIFO %d, nice -5 %d, I/O class RT %d, oom_score_adj -100 %d",
                  rt, nice_set, io_set, oom_set);

  out = sh (instance, script, NULL);
  g_test_message ("pid 1, then the command: SigIgn nice policy oom_score_adj; personality; I/O class:\n%s", out);
  /* pid 1 ignores SIGPIPE itself (0x1000). What this process had before
   * stays where it was no higher than the plain value (a CI runner at nice
   * 10, in the idle I/O class, SCHED_BATCH); else nice 0, SCHED_OTHER (0),
   * oom_score_adj 0, I/O class none. */
  {
    int base = saved_policy & ~SCHED_RESET_ON_FORK;
    int policy = rt || base == SCHED_FIFO || base == SCHED_RR ? SCHED_OTHER : base;
    int oom = !oom_set && saved_oom != NULL ? MAX (atoi (saved_oom), 0) : 0;
    int nice = nice_set ? 0 : MAX (saved_nice, 0);
    static const char * const io_class[] = { "none", "realtime", "best-effort", "idle" };
    long io = !io_set && saved_ioprio >= 0 ? saved_ioprio >> 13 : 0;
    g_autofree char *line = g_strdup_printf ("%d %d %d", nice, policy, oom);
    g_autofree char *ionice = g_find_program_in_path ("ionice");

    expected = g_strdup_printf ("0000000000001000 %s\n0000000000000000 %s\n00000000\n%s\n", line, line,
                                io == 1 || io > 3 || ionice == NULL ? "none" : io_class[io]);
  }
  g_assert_cmpstr (out, ==, expected);
  destroy (instance);
}

/* pid 1 starts with CAP_SYS_ADMIN, CAP_SETPCAP and CAP_SETFCAP in bwrap's
 * user namespace, and the sandbox's seccomp filter lets through the two
 * calls it makes with them (mount with MS_REC | MS_PRIVATE, unshare with
 * CLONE_NEWUSER alone): its own filter must close both before any command
 * runs, and no capability may be left, in any set, in pid 1 or a command.
 * As the user, as root, and with an image root (where pid 1 needs no
 * seccomp listener: its filter is then the one refusing these alone). */
static void
test_pid1_setup_calls (void)
{
  static const char probe_py[] =
    "import ctypes, os\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "def call(*args):\n"
    "    r = libc.syscall(*[ctypes.c_ulong(a) if isinstance(a, int) else a for a in args])\n"
    "    return os.strerror(ctypes.get_errno()) if r < 0 else 'DONE'\n"
    "print('unshare', call(272, 0x10000000))\n"
    "print('mount', call(165, b'none', b'/', None, 0x44000, None))\n"
    "for pid in ('self', '1'):\n"
    "    caps = [l.split()[1] for l in open('/proc/%s/status' % pid) if l.startswith('Cap')]\n"
    "    print(pid, ' '.join(sorted(set(caps))))\n";
  g_autofree char *quoted = g_shell_quote (probe_py);
  g_autofree char *script = g_strdup_printf ("P=%s; /usr/bin/python3 -c \"$P\"", quoted);
  g_autofree char *expected = g_strdup_printf ("unshare %s\nmount %s\nself 0000000000000000\n1 0000000000000000\n",
                                               g_strerror (EPERM), g_strerror (EPERM));
  g_autofree char *image = NULL;

  if (!have_python ())
    {
      g_test_skip ("needs /usr/bin/python3");
      return;
    }
  expect_as_user_and_root (script, 0, expected);
  if ((image = make_usr_image ()) == NULL)
    return;   /* no merged /usr to make an image of */
  {
    g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
    g_autofree char *out = NULL;
    SandboxInstance *instance;

    sandbox_spec_set_image (spec, image);
    sandbox_spec_add_mount (spec, "/usr", "/usr", TRUE);
    instance = create (spec);
    out = sh (instance, script, NULL);
    g_test_message ("image root: %s", out);
    g_assert_cmpstr (out, ==, expected);
    destroy (instance);
  }
  rm_tree (image);
}

/* The unprivileged caller of test_host_mount_later (uid and gid 65534,
 * in a forked child; this process, root, mounts LATER meanwhile).
 * Skipped, with a message, where such a user cannot make a user
 * namespace (bwrap needs one). */
static void
host_mount_later_unprivileged (const char *before,
                               const char *later)
{
  const uid_t nobody = 65534;
  /* In /tmp: the test's own directories are root's, mode 0700. */
  g_autofree char *root = g_strdup ("/tmp/test-local-attacks-XXXXXX");
  g_autofree char *planted = g_build_filename (later, "planted", NULL);
  g_autofree char *rm = NULL;
  int ready[2], go[2], status = 0;
  char byte = 0;
  pid_t pid;

  {
    /* The library then leaves the mounts as they are (pid1_sets_up). */
    g_autofree char *restricted = NULL;

    if (g_file_get_contents ("/proc/sys/kernel/apparmor_restrict_unprivileged_userns", &restricted, NULL, NULL) &&
        atoi (restricted) != 0)
      {
        g_test_message ("not tried as an unprivileged caller: AppArmor restricts unprivileged user "
                        "namespaces here (docs/security.md, \"What is not promised\")");
        return;
      }
  }
  g_assert_nonnull (g_mkdtemp (root));
  g_assert_cmpint (chown (root, nobody, nobody), ==, 0);
  rm = g_strdup_printf ("rm -rf %s", root);
  pid = fork ();
  if (pid == 0)
    {
      const char *helper = g_getenv ("SANDBOX_EXEC_HELPER");
      int ok = setgroups (0, NULL) == 0 && setresgid (nobody, nobody, nobody) == 0 &&
               setresuid (nobody, nobody, nobody) == 0;

      /* The build tree's helper, where the suite runs from one (a build
       * under a directory only root may enter, as rpmbuild's is, cannot
       * serve another user). */
      if (ok && helper != NULL && access (helper, X_OK) != 0)
        _exit (2);
      _exit (ok && unshare (CLONE_NEWUSER) == 0 ? 0 : 1);
    }
  g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
  if (WIFEXITED (status) && WEXITSTATUS (status) == 2)
    {
      g_test_message ("not tried as an unprivileged caller: uid %u cannot run the exec helper "
                      "%s (the build tree is not open to other users)", (unsigned) nobody,
                      g_getenv ("SANDBOX_EXEC_HELPER"));
      g_assert_true (g_spawn_command_line_sync (rm, NULL, NULL, NULL, NULL));
      return;
    }
  if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
    {
      g_test_message ("not tried as an unprivileged caller: uid %u cannot make a user "
                      "namespace here (kernel.unprivileged_userns_clone, "
                      "user.max_user_namespaces)", (unsigned) nobody);
      g_assert_true (g_spawn_command_line_sync (rm, NULL, NULL, NULL, NULL));
      return;
    }

  g_assert_cmpint (pipe (ready), ==, 0);
  g_assert_cmpint (pipe (go), ==, 0);
  pid = fork ();
  g_assert_cmpint (pid, >=, 0);
  if (pid == 0)
    {
      SandboxInstance *instance;
      g_autofree char *script = NULL;
      g_autofree char *out = NULL;

      close (ready[0]);
      close (go[1]);
      if (setgroups (0, NULL) != 0 || setresgid (nobody, nobody, nobody) != 0 ||
          setresuid (nobody, nobody, nobody) != 0)
        _exit (2);
      g_setenv ("SANDBOX_LOCAL_ROOT", root, TRUE);
      g_setenv ("XDG_RUNTIME_DIR", root, TRUE);
      instance = create (NULL);
      if (write (ready[1], "c", 1) != 1 || read (go[0], &byte, 1) != 1)
        _exit (3);
      script = g_strdup_printf ("grep -c ' %s ' /proc/self/mountinfo; grep -c ' %s ' /proc/self/mountinfo; "
                                "touch '%s/planted' 2>/dev/null && echo WROTE; true",
                                before, later, later);
      out = sh (instance, script, NULL);
      g_test_message ("unprivileged caller: %s", out);
      destroy (instance);
      _exit (g_strcmp0 (out, "1\n0\n") == 0 ? 0 : 4);
    }
  close (ready[1]);
  close (go[0]);
  g_assert_cmpint (read (ready[0], &byte, 1), ==, 1);
  g_assert_cmpint (mount ("later", later, "tmpfs", 0, "size=64k,mode=0777"), ==, 0);
  g_assert_cmpint (write (go[1], "m", 1), ==, 1);
  g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
  close (ready[0]);
  close (go[1]);
  g_assert_false (g_file_test (planted, G_FILE_TEST_EXISTS));
  g_assert_cmpint (umount (later), ==, 0);
  g_assert_true (WIFEXITED (status));
  g_assert_cmpint (WEXITSTATUS (status), ==, 0);
  g_assert_true (g_spawn_command_line_sync (rm, NULL, NULL, NULL, NULL));
}

/* A file system the host mounts after a sandbox started: bwrap made the
 * sandbox's mounts slaves of the caller's, so on a host whose root is a
 * shared mount (systemd's default; a container's root under
 * /var/lib/docker, a disk in /media) it appeared in every running sandbox
 * read-write, past the read-only root, and a root caller's sandbox wrote
 * to it as the host's root. Run in a mount namespace of its own whose root
 * is shared, as on such a host. Control: a mount made before the sandbox
 * starts shows (read-only), so that the path is one the sandbox sees. */
static void
test_host_mount_later (void)
{
  if (g_test_subprocess ())
    {
      const char *before = "/mnt/test-mount-before";
      const char *later = "/mnt/test-mount-later";

      g_assert_cmpint (unshare (CLONE_NEWNS), ==, 0);
      /* Out of the host's peer groups first: nothing mounted here may
       * reach the host. Then a tmpfs on /mnt, which sandboxes show (the
       * test's own directory may not be: under /tmp it is the sandbox's
       * own /tmp), and a root whose mounts are shared, as on such a host. */
      g_assert_cmpint (mount ("none", "/", "none", MS_REC | MS_PRIVATE, NULL), ==, 0);
      g_assert_cmpint (mount ("mnt", "/mnt", "tmpfs", 0, "size=1m,mode=0755"), ==, 0);
      g_assert_cmpint (mount ("none", "/", "none", MS_REC | MS_SHARED, NULL), ==, 0);
      g_assert_cmpint (g_mkdir (before, 0755), ==, 0);
      g_assert_cmpint (g_mkdir (later, 0755), ==, 0);
      g_assert_cmpint (mount ("before", before, "tmpfs", 0, "size=64k"), ==, 0);
      /* First (no thread of the library runs yet, so a fork may use it):
       * an unprivileged caller's sandbox, whose processes had no
       * capability over its mounts at all (pid 1 was already in bwrap's
       * second user namespace): there, only pid 1 can cut them off now. */
      host_mount_later_unprivileged (before, later);
      for (int as_root = 0; as_root <= 1; as_root++)
        {
          SandboxInstance *instance = as_root ? create_as_root () : create (NULL);
          g_autofree char *planted = g_build_filename (later, "planted", NULL);
          g_autofree char *script = NULL;
          g_autofree char *out = NULL;

          g_assert_cmpint (mount ("later", later, "tmpfs", 0, "size=64k,mode=0777"), ==, 0);
          script = g_strdup_printf ("grep -c ' %s ' /proc/self/mountinfo; grep -c ' %s ' /proc/self/mountinfo; "
                                    "touch '%s/planted' 2>/dev/null && echo WROTE; true",
                                    before, later, later);
          out = sh (instance, script, NULL);
          g_test_message ("run-as-root=%d: %s", as_root, out);
          g_assert_cmpstr (out, ==, "1\n0\n");
          g_assert_false (g_file_test (planted, G_FILE_TEST_EXISTS));
          g_assert_cmpint (umount (later), ==, 0);
          destroy (instance);
        }
      umount (before);
      return;
    }
  if (!g_file_test ("/mnt", G_FILE_TEST_IS_DIR) || g_file_test ("/mnt", G_FILE_TEST_IS_SYMLINK))
    {
      g_test_skip ("needs a /mnt directory on the host");
      return;
    }
  {
    /* Whether a mount namespace can be made here (root, CAP_SYS_ADMIN). */
    pid_t pid = fork ();
    int status = 0;

    if (pid == 0)
      _exit (unshare (CLONE_NEWNS) == 0 && mount ("none", "/", "none", MS_REC | MS_SHARED, NULL) == 0 ? 0 : 1);
    g_assert_cmpint (waitpid (pid, &status, 0), ==, pid);
    if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
      {
        g_test_skip ("needs CAP_SYS_ADMIN, to mount on the host");
        return;
      }
  }
  g_test_trap_subprocess (NULL, 120 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_test_trap_assert_passed ();
}

/* The number of non-empty lines of TEXT. */
static guint
count_lines (const char *text)
{
  g_auto(GStrv) lines = g_strsplit (text, "\n", -1);
  guint n = 0;

  for (guint i = 0; lines[i] != NULL; i++)
    n += lines[i][0] != '\0';
  return n;
}

/* The spec's pids and memory limits hold for the whole sandbox when the
 * caller is root and no cgroup v2 is delegated (CI): RLIMIT_NPROC binds no
 * process of the host's root, and RLIMIT_AS each process alone. A command
 * forks stopped children until fork fails (pids-max 16: before, all 64
 * forked), and forks children that each hold 48 MiB and stop (memory-mb
 * 128: before, all 4 held their 192 MiB together). Deterministic: each
 * child stops itself once it holds what it made. */
static void
test_limits_as_root (void)
{
  static const char forks_py[] =
    "import os, signal\n"
    "kids = []\n"
    "for i in range(64):\n"
    "    try:\n"
    "        pid = os.fork()\n"
    "    except OSError:\n"
    "        break\n"
    "    if pid == 0:\n"
    "        os.kill(os.getpid(), signal.SIGSTOP)\n"
    "        os._exit(0)\n"
    "    kids.append(pid)\n"
    "print('forked', len(kids))\n"
    "for pid in kids:\n"
    "    os.kill(pid, signal.SIGKILL)\n";
  static const char memory_py[] =
    "import os, signal\n"
    "kids = []\n"
    "for i in range(4):\n"
    "    pid = os.fork()\n"
    "    if pid == 0:\n"
    "        try:\n"
    "            held = b'x' * (48 << 20)\n"
    "        except MemoryError:\n"
    "            os._exit(1)\n"
    "        os.kill(os.getpid(), signal.SIGSTOP)\n"
    "        os._exit(0)\n"
    "    os.waitpid(pid, os.WUNTRACED)\n"
    "    kids.append(pid)\n"
    "holding = 0\n"
    "for pid in kids:\n"
    "    try:\n"
    "        with open('/proc/%d/stat' % pid) as f:\n"
    "            holding += f.read().rsplit(')', 1)[1].split()[0] == 'T'\n"
    "    except OSError:\n"
    "        pass\n"
    "    os.kill(pid, signal.SIGKILL)\n"
    "print('holding', holding)\n";
  g_autofree char *quoted_forks = g_shell_quote (forks_py);
  g_autofree char *quoted_memory = g_shell_quote (memory_py);
  g_autofree char *forks = g_strdup_printf ("P=%s; /usr/bin/python3 -c \"$P\"", quoted_forks);
  g_autofree char *memory = g_strdup_printf ("P=%s; /usr/bin/python3 -c \"$P\"", quoted_memory);
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autofree char *out = NULL, *id = NULL, *mine = NULL;
  g_auto(GStrv) lines = NULL;
  char *dirs[2] = { NULL, NULL };
  SandboxInstance *instance;
  int n = -1;

  if (geteuid () != 0 || !g_file_test ("/sys/fs/cgroup/pids/cgroup.procs", G_FILE_TEST_EXISTS) ||
      !g_file_test ("/sys/fs/cgroup/memory/cgroup.procs", G_FILE_TEST_EXISTS) ||
      g_getenv ("SANDBOX_CGROUP_PARENT") != NULL)
    {
      g_test_skip ("for root on a host with cgroup v1 pids and memory hierarchies "
                   "(an ordinary user's RLIMIT_NPROC holds; cgroup2 mode has its own)");
      return;
    }
  if (!have_python ())
    {
      g_test_skip ("needs /usr/bin/python3");
      return;
    }
  sandbox_spec_set_pids_max (spec, 16);
  sandbox_spec_set_memory_mb (spec, 128);
  instance = create (spec);
  out = sh (instance, forks, NULL);
  g_test_message ("pids-max 16: %s", out);
  g_assert_true (sscanf (out, "forked %d", &n) == 1);
  g_assert_cmpint (n, >=, 1);
  g_assert_cmpint (n, <, 16);
  g_free (out);
  out = sh (instance, memory, NULL);
  g_test_message ("memory-mb 128: %s", out);
  g_assert_true (sscanf (out, "holding %d", &n) == 1);
  g_assert_cmpint (n, >=, 1);
  g_assert_cmpint (n, <=, 2);
  g_free (out);

  /* Every process of the sandbox is in its own cgroups (bwrap joins them
   * before its exec): bwrap and pid 1 at least are listed there, and the
   * sandbox's cgroup namespace is rooted there. They are gone soon after
   * destroy, also when the dying pid 1 still held them then (removed by
   * a process of their own). */
  id = g_strdup (sandbox_instance_get_id (instance));
  out = sh (instance, "grep -E '^[0-9]+:(memory|pids):' /proc/self/cgroup", NULL);
  g_test_message ("cgroups of a command: %s", out);
  lines = g_strsplit (g_strstrip (out), "\n", -1);
  g_assert_cmpuint (g_strv_length (lines), ==, 2);
  for (guint i = 0; lines[i] != NULL; i++)
    g_assert_true (g_str_has_suffix (lines[i], ":/"));
  g_assert_true (g_file_get_contents ("/proc/self/cgroup", &mine, NULL, NULL));
  for (guint i = 0; i < 2; i++)
    {
      const char *controller = i == 0 ? "memory" : "pids";
      g_autofree char *key = g_strdup_printf (":%s:", controller);
      g_autofree char *parent = NULL, *procs = NULL, *listed = NULL;
      const char *at = strstr (mine, key);

      g_assert_nonnull (at);
      at += strlen (key);
      parent = g_strndup (at, strcspn (at, "\n"));
      dirs[i] = g_strdup_printf ("/sys/fs/cgroup/%s%s/libsandbox-%s", controller,
                                 strcmp (parent, "/") == 0 ? "" : parent, id);
      procs = g_build_filename (dirs[i], "cgroup.procs", NULL);
      g_assert_true (g_file_get_contents (procs, &listed, NULL, NULL));
      g_test_message ("%s: %s", procs, listed);
      g_assert_cmpuint (count_lines (listed), >=, 2);
    }
  destroy (instance);
  for (guint i = 0; i < 2; i++)
    {
      for (int tries = 0; tries < 500 && g_file_test (dirs[i], G_FILE_TEST_EXISTS); tries++)
        g_usleep (10000);
      g_assert_false (g_file_test (dirs[i], G_FILE_TEST_EXISTS));
      g_free (dirs[i]);
    }
}

/* ---- signals out of the sandbox ---- */

/* Hands a pidfd of a host process to whoever connects. */
static gboolean
send_pidfd (GSocketService    *service,
            GSocketConnection *connection,
            GObject           *source,
            gpointer           user_data)
{
  g_autoptr(GError) error = NULL;

  g_unix_connection_send_fd (G_UNIX_CONNECTION (connection), GPOINTER_TO_INT (user_data), NULL, &error);
  g_assert_no_error (error);
  return TRUE;
}

static const char pidfd_kill_py[] =
  "import array, errno, os, signal, socket, sys\n"
  "s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
  "s.connect(sys.argv[1])\n"
  "msg, anc, flags, addr = s.recvmsg(1, socket.CMSG_SPACE(4))\n"
  "fd = array.array('i', anc[0][2])[0]\n"
  "try:\n"
  "    signal.pidfd_send_signal(fd, signal.SIGKILL)\n"
  "    print('SIGNALLED')\n"
  "except OSError as ex:\n"
  "    print(errno.errorcode.get(ex.errno, ex.errno))\n"
  "pid = os.fork()\n"
  "if pid == 0:\n"
  "    signal.pause()\n"
  "    os._exit(0)\n"
  "signal.pidfd_send_signal(os.pidfd_open(pid), signal.SIGKILL)\n"
  "print('OWN', os.waitpid(pid, 0)[1])\n";

/* A host process's pidfd that reaches the sandbox (through a socket of a
 * mounted directory here) cannot be used to signal it: the kernel refuses a
 * pidfd of a process outside the caller's pid namespace (EINVAL), and
 * Landlock's signal scope (ABI 6) would refuse it too (EPERM). */
static void
test_signal_host (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocess) victim = NULL;
  g_autoptr(GSocketAddress) address = NULL;
  g_autoptr(GSocketService) service = NULL;
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autofree char *dir = NULL, *path = NULL, *quoted = NULL, *script = NULL, *out = NULL;
  SandboxInstance *instance;
  int pidfd;

  if (!have_python ())
    {
      g_test_skip ("needs /usr/bin/python3");
      return;
    }
  victim = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_SILENCE | G_SUBPROCESS_FLAGS_STDERR_SILENCE,
                             &error, "sleep", "3172", NULL);
  g_assert_no_error (error);
  pidfd = (int) syscall (SYS_pidfd_open, atoi (g_subprocess_get_identifier (victim)), 0);
  if (pidfd < 0 && errno == ENOSYS)
    {
      /* Linux < 5.3, or valgrind, which does not know the call. */
      g_test_skip ("needs pidfd_open (Linux 5.3)");
      g_subprocess_force_exit (victim);
      g_subprocess_wait (victim, NULL, NULL);
      return;
    }
  g_assert_cmpint (pidfd, >=, 0);

  dir = g_dir_make_tmp ("libsandbox-attack-XXXXXX", &error);
  g_assert_no_error (error);
  path = g_build_filename (dir, "sock", NULL);
  address = g_unix_socket_address_new (path);
  service = g_socket_service_new ();
  g_socket_listener_add_address (G_SOCKET_LISTENER (service), address, G_SOCKET_TYPE_STREAM,
                                 G_SOCKET_PROTOCOL_DEFAULT, NULL, NULL, &error);
  g_assert_no_error (error);
  g_signal_connect (service, "incoming", G_CALLBACK (send_pidfd), GINT_TO_POINTER (pidfd));
  g_socket_service_start (service);

  sandbox_spec_add_mount (spec, dir, "/host", FALSE);
  sandbox_spec_set_run_as_root (spec, TRUE);   /* the strongest attacker */
  instance = create (spec);
  quoted = g_shell_quote (pidfd_kill_py);
  script = g_strdup_printf ("P=%s; /usr/bin/python3 -c \"$P\" /host/sock", quoted);
  out = sh (instance, script, NULL);
  g_test_message ("%s", out);
  /* Refused; control: its own child is signalled by the same call. */
  g_assert_true (g_str_equal (out, "EINVAL\nOWN 9\n") || g_str_equal (out, "EPERM\nOWN 9\n"));
  /* The host process lives on (not reaped: its pid is still its own). */
  g_assert_cmpint (kill (atoi (g_subprocess_get_identifier (victim)), 0), ==, 0);

  g_socket_service_stop (service);
  destroy (instance);
  close (pidfd);
  g_subprocess_force_exit (victim);
  g_subprocess_wait (victim, NULL, NULL);
  g_unlink (path);
  g_rmdir (dir);
}

static const char worker_py[] =
  "import ctypes, errno, os, signal, socket, sys, time\n"
  "libc = ctypes.CDLL(None, use_errno=True)\n"
  "def err(): return errno.errorcode.get(ctypes.get_errno(), ctypes.get_errno())\n"
  "l = socket.socket(socket.AF_UNIX); l.bind(\"/tmp/s\"); l.listen(0)\n"
  "fill = []\n"
  "for i in range(4):\n"
  "    c = socket.socket(socket.AF_UNIX); c.setblocking(False)\n"
  "    try: c.connect(\"/tmp/s\")\n"
  "    except OSError: pass\n"
  "    fill.append(c)\n"
  "blocked = os.fork()\n"
  "if blocked == 0:\n"
  "    c = socket.socket(socket.AF_UNIX); c.connect(\"/tmp/s\"); os._exit(0)\n"
  "def targets():\n"
  "    for _ in range(100):\n"
  "        found = []\n"
  "        for p in os.listdir(\"/proc\"):\n"
  "            if p.isdigit() and int(p) > 1:\n"
  "                try:\n"
  "                    st = open(\"/proc/%s/status\" % p).read()\n"
  "                except OSError:\n"
  "                    continue\n"
  "                if \"\\nPPid:\\t1\\n\" in st and open(\"/proc/%s/comm\" % p).read().startswith(\"sandbox-exec\"):\n"
  "                    found.append(int(p))\n"
  "        if found: return found\n"
  "        time.sleep(0.05)\n"
  "    return []\n"
  "workers = targets()\n"
  "print(\"workers\", len(workers))\n"
  "def probe(w):\n"
  "    out = []\n"
  "    for f in (\"syscall\", \"mem\", \"environ\", \"stack\", \"cmdline\"):\n"
  "        try:\n"
  "            open(\"/proc/%d/%s\" % (w, f), \"rb\").read(1)\n"
  "            out.append(f + \"=READ\")\n"
  "        except OSError as ex:\n"
  "            out.append(f + \"=\" + errno.errorcode[ex.errno])\n"
  "    buf = ctypes.create_string_buffer(8)\n"
  "    local = (ctypes.c_void_p * 2)(ctypes.addressof(buf), 8)\n"
  "    remote = (ctypes.c_void_p * 2)(0x400000, 8)\n"
  "    r = libc.syscall(310, w, local, 1, remote, 1, 0)\n"
  "    out.append(\"vm_readv=\" + (\"READ\" if r >= 0 else err()))\n"
  "    pidfd = os.pidfd_open(w)\n"
  "    got = [fd for fd in range(32) if libc.syscall(438, pidfd, fd, 0) >= 0]\n"
  "    out.append(\"getfd=\" + (\"NONE\" if not got else \"GOT%s\" % got))\n"
  "    r = libc.ptrace(16, w, 0, 0)\n"
  "    out.append(\"attach=\" + (\"OK\" if r == 0 else err()))\n"
  "    if r == 0: libc.ptrace(17, w, 0, 0)\n"
  "    try:\n"
  "        os.kill(w, signal.SIGSTOP); os.kill(w, signal.SIGCONT)\n"
  "        out.append(\"stop=OK\")\n"
  "    except OSError as ex:\n"
  "        out.append(\"stop=\" + errno.errorcode[ex.errno])\n"
  "    try:\n"
  "        signal.pidfd_send_signal(pidfd, signal.SIGCONT)\n"
  "        out.append(\"pidfd_signal=OK\")\n"
  "    except OSError as ex:\n"
  "        out.append(\"pidfd_signal=\" + errno.errorcode[ex.errno])\n"
  "    return \" \".join(out)\n"
  "for w in workers:\n"
  "    print(\"worker\", probe(w))\n"
  "print(\"control\", probe(blocked))\n"
  "os.kill(blocked, 9)\n";

/* pid 1 connects a command's blocking socket in a forked worker, which
 * holds the seccomp listener, the command's socket and, in its memory and
 * its registers, the secret cookie that lets pid 1's own connect() pass
 * unmediated. While it waits on a full backlog, nothing of the sandbox,
 * root included, can read its memory or registers (/proc/PID/syscall
 * shows the cookie as the fourth argument), take its descriptors or trace
 * it: it is not dumpable, as pid 1. Control: the same probes work on the
 * command's own child, blocked in the same connect(). */
static void
test_connect_worker (void)
{
  if (!have_python ())
    {
      g_test_skip ("needs /usr/bin/python3");
      return;
    }
  for (int as_root = 0; as_root <= 1; as_root++)
    {
      g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
      g_autofree char *quoted = g_shell_quote (worker_py);
      g_autofree char *script = g_strdup_printf ("cd /tmp && P=%s; /usr/bin/python3 -c \"$P\"", quoted);
      g_autofree char *out = NULL;
      SandboxInstance *instance;

      sandbox_spec_set_run_as_root (spec, as_root);
      instance = create (spec);
      out = sh (instance, script, NULL);
      g_test_message ("run-as-root=%d:\n%s", as_root, out);
      g_assert_true (g_str_has_prefix (out, "workers 1\nworker syscall=EPERM mem=EACCES environ=EACCES "
                                       "stack=EACCES cmdline=READ vm_readv=EPERM getfd=NONE attach=EPERM "
                                       "stop=EPERM pidfd_signal=EPERM\n"));
      g_assert_nonnull (strstr (out, "\ncontrol syscall=READ "));
      g_assert_nonnull (strstr (out, " getfd=GOT"));
      g_assert_nonnull (strstr (out, " attach=OK stop=OK pidfd_signal=OK\n"));
      destroy (instance);
    }
}

/* ---- host UNIX sockets ---- */

static gboolean
count_accept (GSocketService    *service,
              GSocketConnection *connection,
              GObject           *source,
              gpointer           user_data)
{
  (*(guint *) user_data)++;
  return TRUE;
}

static GSocketService *
listen_unix (GSocketAddress *address,
             guint          *accepted)
{
  GSocketService *service = g_socket_service_new ();
  g_autoptr(GError) error = NULL;

  g_socket_listener_add_address (G_SOCKET_LISTENER (service), address, G_SOCKET_TYPE_STREAM,
                                 G_SOCKET_PROTOCOL_DEFAULT, NULL, NULL, &error);
  g_assert_no_error (error);
  g_signal_connect (service, "incoming", G_CALLBACK (count_accept), accepted);
  g_socket_service_start (service);
  return service;
}

/* A host user's service: a socket at PATH that anyone may connect to. */
static GSocketService *
listen_unix_world (const char *path,
                   guint      *accepted)
{
  g_autoptr(GSocketAddress) address = g_unix_socket_address_new (path);
  GSocketService *service = listen_unix (address, accepted);

  g_assert_cmpint (g_chmod (path, 0777), ==, 0);
  return service;
}

static const char connect_py[] =
  "import errno, socket, sys\n"
  "s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
  "try:\n"
  "    s.connect(sys.argv[1].replace('@', '\\0', 1))\n"
  "    print('CONNECTED')\n"
  "except OSError as ex:\n"
  "    print('REFUSED', errno.errorcode.get(ex.errno, ex.errno))\n";

static char *
connect_from (SandboxInstance *instance,
              const char      *where)
{
  g_autofree char *quoted = g_shell_quote (connect_py);
  g_autofree char *target = g_shell_quote (where);
  g_autofree char *script = g_strdup_printf ("P=%s; /usr/bin/python3 -c \"$P\" %s", quoted, target);

  return sh (instance, script, NULL);
}

static void
test_host_unix_sockets (void)
{
  g_autofree char *dir = NULL;
  g_autofree char *path = NULL;
  g_autofree char *abstract = NULL;
  g_autoptr(GSocketAddress) path_address = NULL;
  g_autoptr(GSocketAddress) abstract_address = NULL;
  g_autoptr(GSocketService) path_service = NULL;
  g_autoptr(GSocketService) abstract_service = NULL;
  g_autoptr(SandboxSpec) mounted_spec = sandbox_spec_new ();
  g_autoptr(SandboxSpec) network_spec = sandbox_spec_new ();
  SandboxInstance *instance, *mounted, *networked;
  guint path_accepted = 0, abstract_accepted = 0;
  g_autofree char *o1 = NULL, *o2 = NULL, *c1 = NULL, *c2 = NULL, *c3 = NULL;

  if (!have_python ())
    {
      g_test_skip ("needs /usr/bin/python3");
      return;
    }
  /* Under /run, where host services keep theirs; else the runtime dir. */
  dir = g_strdup_printf ("/run/libsandbox-attack-%08x", g_random_int ());
  if (g_mkdir (dir, 0700) != 0)
    {
      g_free (dir);
      dir = g_strdup_printf ("%s/libsandbox-attack-%08x", g_get_user_runtime_dir (), g_random_int ());
      g_assert_cmpint (g_mkdir_with_parents (dir, 0700), ==, 0);
    }
  path = g_build_filename (dir, "sock", NULL);
  abstract = g_strdup_printf ("libsandbox-attack-%08x", g_random_int ());
  path_address = g_unix_socket_address_new (path);
  abstract_address = g_unix_socket_address_new_with_type (abstract, -1, G_UNIX_SOCKET_ADDRESS_ABSTRACT);
  path_service = listen_unix (path_address, &path_accepted);
  abstract_service = listen_unix (abstract_address, &abstract_accepted);

  instance = create_as_root ();
  o1 = connect_from (instance, path);
  {
    g_autofree char *at = g_strconcat ("@", abstract, NULL);
    o2 = connect_from (instance, at);
    /* Control: the same code connects when the socket's directory is
     * mounted. */
    sandbox_spec_add_mount (mounted_spec, dir, NULL, FALSE);
    mounted = create (mounted_spec);
    c1 = connect_from (mounted, path);
    /* With `network` the sandbox shares the host's network namespace, and
     * so its abstract sockets: Landlock's scope (ABI 6) keeps them out of
     * reach; an older kernel cannot (documented), and connects. Root
     * inside, the strongest attacker. */
    sandbox_spec_set_network (network_spec, TRUE);
    sandbox_spec_set_run_as_root (network_spec, TRUE);
    networked = create (network_spec);
    c2 = connect_from (networked, at);
    /* Control: its own abstract sockets still connect. */
    c3 = sh (networked,
             "/usr/bin/python3 -c \"import socket\n"
             "l = socket.socket(socket.AF_UNIX); l.bind('\\0own'); l.listen(1)\n"
             "c = socket.socket(socket.AF_UNIX); c.connect('\\0own'); print('CONNECTED')\"",
             NULL);
  }
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_test_message ("path: %s abstract: %s control: %s with network: %s (Landlock ABI %d)",
                  o1, o2, c1, c2, landlock_abi ());
  g_assert_true (g_str_has_prefix (o1, "REFUSED"));
  g_assert_true (g_str_has_prefix (o2, "REFUSED"));
  g_assert_cmpstr (c1, ==, "CONNECTED\n");
  g_assert_cmpstr (c3, ==, "CONNECTED\n");
  g_assert_cmpuint (path_accepted, ==, 1);       /* the control's only */
  if (landlock_abi () >= 6)
    {
      g_assert_cmpstr (c2, ==, "REFUSED EPERM\n");
      g_assert_cmpuint (abstract_accepted, ==, 0);
    }
  else
    {
      g_assert_cmpstr (c2, ==, "CONNECTED\n");
      g_assert_cmpuint (abstract_accepted, ==, 1);
    }

  g_socket_service_stop (path_service);
  g_socket_service_stop (abstract_service);
  destroy (instance);
  destroy (mounted);
  destroy (networked);
  g_unlink (path);
  g_rmdir (dir);
}

/* Any host user may bind a socket in the host's world-writable
 * directories (/tmp, /var/tmp), and a socket on a read-only mount still
 * accepts connections: the sandbox must not see those directories. The
 * sockets are made both before the sandbox and while it runs. */
/* Sockets the sandbox's own processes bind (in /tmp, in the workdir) and
 * loopback TCP: connect() still works, whichever way it is called, now that
 * pid 1 makes every connect() on the command's behalf. And no UNIX datagram
 * socket, which could send to a host socket's path without connect(). */
static const char own_sockets_py[] =
  "import errno, os, socket, threading\n"
  "def tryc(fn):\n"
  "    try:\n"
  "        fn()\n"
  "        return 'OK'\n"
  "    except OSError as ex:\n"
  "        return 'ERR-' + errno.errorcode.get(ex.errno, str(ex.errno))\n"
  "out = []\n"
  "for d in ('/tmp', os.getcwd()):\n"
  "    p = os.path.join(d, 'own.sock')\n"
  "    srv = socket.socket(socket.AF_UNIX)\n"
  "    srv.bind(p)\n"
  "    srv.listen(8)\n"
  "    c = socket.socket(socket.AF_UNIX)\n"
  "    out.append(tryc(lambda: c.connect(p)))\n"
  "    os.chdir(d)\n"
  "    out.append(tryc(lambda: socket.socket(socket.AF_UNIX).connect('own.sock')))\n"
  "    nb = socket.socket(socket.AF_UNIX)\n"
  "    nb.setblocking(False)\n"
  "    out.append(tryc(lambda: nb.connect(p)))\n"
  "    r = []\n"
  "    t = threading.Thread(target=lambda: r.append(tryc(lambda: socket.socket(socket.AF_UNIX).connect(p))))\n"
  "    t.start()\n"
  "    t.join()\n"
  "    out += r\n"
  "    a, _ = srv.accept()\n"
  "    c.sendall(b'hi')\n"
  "    out.append(a.recv(2).decode())\n"
  "    srv.close()\n"
  "    os.unlink(p)\n"
  "ts = socket.socket()\n"
  "ts.bind(('127.0.0.1', 0))\n"
  "ts.listen(8)\n"
  "port = ts.getsockname()[1]\n"
  "tc = socket.socket()\n"
  "out.append(tryc(lambda: tc.connect(('127.0.0.1', port))))\n"
  "tn = socket.socket()\n"
  "tn.setblocking(False)\n"
  "rc = tn.connect_ex(('127.0.0.1', port))\n"
  "out.append('NB-' + (errno.errorcode.get(rc, str(rc)) if rc else 'OK'))\n"
  "out.append(tryc(lambda: socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)))\n"
  "out.append(tryc(lambda: socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)))\n"
  "out.append(tryc(lambda: socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)))\n"
  "print(' '.join(out))\n";

static const char forged_connect_py[] =
  "import ctypes, errno, os, random, socket, sys\n"
  "libc = ctypes.CDLL(None, use_errno=True)\n"
  "s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
  "path = sys.argv[1].encode()\n"
  "addr = (ctypes.c_ushort(socket.AF_UNIX).value.to_bytes(2, sys.byteorder) + path + bytes(108 - len(path)))\n"
  "buf = ctypes.create_string_buffer(addr, len(addr))\n"
  "nr = {'x86_64': 42, 'aarch64': 203}[os.uname().machine]\n"
  "libc.syscall.restype = ctypes.c_long\n"
  "for _ in range(64):\n"
  "    rc = libc.syscall(ctypes.c_long(nr), ctypes.c_long(s.fileno()), buf, ctypes.c_long(len(addr)),\n"
  "                      ctypes.c_ulong(random.getrandbits(64)), ctypes.c_long(0), ctypes.c_long(0))\n"
  "    if rc == 0:\n"
  "        print('CONNECTED')\n"
  "        break\n"
  "else:\n"
  "    print('REFUSED', errno.errorcode.get(ctypes.get_errno()))\n";

/* A host service's socket anywhere on the host's root, not only where
 * services usually keep them: in new directories under /var/lib, /srv,
 * /opt and the test's own directory (each where this user may create one
 * and the sandbox sees the host's). Mode 0777 sockets, made before the
 * sandbox and while it runs, reached by absolute and relative paths and
 * through symbolic links the sandbox makes: all refused, and the host
 * accepts nothing. Controls: the directory mounted by the spec connects;
 * the sandbox's own sockets and loopback TCP connect. */
static void
test_host_unix_sockets_anywhere (void)
{
  g_autofree char *cwd = g_get_current_dir ();
  const char *parents[] = { "/var/lib", "/srv", "/opt", cwd, NULL };
  guint tried = 0;

  if (!have_python ())
    {
      g_test_skip ("needs /usr/bin/python3");
      return;
    }
  for (guint i = 0; parents[i] != NULL; i++)
    {
      g_autofree char *dir = NULL, *before = NULL, *during = NULL;
      g_autoptr(GSocketService) before_service = NULL, during_service = NULL;
      g_autoptr(SandboxSpec) mounted_spec = sandbox_spec_new ();
      g_autofree char *quoted = g_shell_quote (connect_py);
      g_autofree char *o1 = NULL, *o2 = NULL, *o3 = NULL, *o4 = NULL, *o5 = NULL, *c1 = NULL;
      g_autofree char *relative = NULL, *linked = NULL, *linked_dir = NULL;
      g_autofree char *quoted_forged = g_shell_quote (forged_connect_py);
      g_autofree char *forged = NULL, *o6 = NULL;
      SandboxInstance *instance, *mounted;
      guint accepted = 0;

      dir = host_shown_dir_new (parents[i]);
      if (dir == NULL)
        continue;
      tried++;
      before = g_build_filename (dir, "before", NULL);
      during = g_build_filename (dir, "during", NULL);
      before_service = listen_unix_world (before, &accepted);

      instance = create_as_root ();
      during_service = listen_unix_world (during, &accepted);
      o1 = connect_from (instance, before);
      o2 = connect_from (instance, during);
      relative = g_strdup_printf ("cd '%s' && P=%s; /usr/bin/python3 -c \"$P\" during", dir, quoted);
      o3 = sh (instance, relative, NULL);
      linked = g_strdup_printf ("ln -sf '%s' /tmp/l && P=%s; /usr/bin/python3 -c \"$P\" /tmp/l",
                                before, quoted);
      o4 = sh (instance, linked, NULL);
      linked_dir = g_strdup_printf ("ln -sfn '%s' /tmp/d && cd /tmp/d && P=%s; /usr/bin/python3 -c \"$P\" before",
                                    dir, quoted);
      o5 = sh (instance, linked_dir, NULL);

      /* connect() with a made-up fourth argument (pid 1's own calls carry
       * a secret one there) is mediated all the same. */
      forged = g_strdup_printf ("P=%s; /usr/bin/python3 -c \"$P\" '%s'", quoted_forged, before);
      o6 = sh (instance, forged, NULL);

      sandbox_spec_add_mount (mounted_spec, dir, NULL, FALSE);
      mounted = create (mounted_spec);
      c1 = connect_from (mounted, during);
      while (g_main_context_iteration (NULL, FALSE))
        ;
      g_test_message ("%s: %s | %s | %s | %s | %s | %s; control: %s", dir, o1, o2, o3, o4, o5, o6, c1);
      g_assert_cmpstr (o1, ==, "REFUSED EACCES\n");
      g_assert_cmpstr (o2, ==, "REFUSED EACCES\n");
      g_assert_cmpstr (o3, ==, "REFUSED EACCES\n");
      g_assert_cmpstr (o4, ==, "REFUSED EACCES\n");
      g_assert_cmpstr (o5, ==, "REFUSED EACCES\n");
      g_assert_cmpstr (o6, ==, "REFUSED EACCES\n");
      g_assert_cmpstr (c1, ==, "CONNECTED\n");
      g_assert_cmpuint (accepted, ==, 1);   /* the control's only */

      g_socket_service_stop (before_service);
      g_socket_service_stop (during_service);
      destroy (instance);
      destroy (mounted);
      g_unlink (before);
      g_unlink (during);
      g_rmdir (dir);
    }
  if (tried == 0)
    g_test_skip ("no directory of the host's root where this user may make one");
}

/* Session sec27: socket(AF_UNIX, SOCK_RAW) is a datagram socket (the
 * kernel turns the type into SOCK_DGRAM), which sends to a path with
 * sendto() and no connect(), past pid 1's check of where a socket lives:
 * only SOCK_DGRAM was refused. Each way to make one, then a send to the
 * host's datagram socket at argv[1]; the controls make the two kinds a
 * command may have. */
static const char unix_raw_py[] =
  "import errno, socket, sys\n"
  "path = sys.argv[1]\n"
  "def send_from(make):\n"
  "    try:\n"
  "        s = make()\n"
  "    except OSError as ex:\n"
  "        return 'ERR-' + errno.errorcode.get(ex.errno, str(ex.errno))\n"
  "    if isinstance(s, tuple):\n"
  "        s = s[0]\n"
  "    try:\n"
  "        s.sendto(b'escaped', path)\n"
  "        return 'SENT'\n"
  "    except OSError as ex:\n"
  "        return 'MADE-' + errno.errorcode.get(ex.errno, str(ex.errno))\n"
  "raw = 3\n"
  "out = [send_from(lambda: socket.socket(socket.AF_UNIX, raw)),\n"
  "       send_from(lambda: socket.socket(socket.AF_UNIX, raw | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK)),\n"
  "       send_from(lambda: socket.socketpair(socket.AF_UNIX, raw)),\n"
  "       send_from(lambda: socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM))]\n"
  "def ok(make):\n"
  "    try:\n"
  "        make()\n"
  "        return 'OK'\n"
  "    except OSError as ex:\n"
  "        return 'ERR-' + errno.errorcode.get(ex.errno, str(ex.errno))\n"
  "out.append(ok(lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)))\n"
  "out.append(ok(lambda: socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)))\n"
  "out.append(ok(lambda: socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)))\n"
  "print(' '.join(out))\n";

static void
test_unix_raw_datagram (void)
{
  g_autofree char *cwd = g_get_current_dir ();
  const char *parents[] = { "/var/lib", "/srv", "/opt", cwd, NULL };
  guint tried = 0;

  if (!have_python ())
    {
      g_test_skip ("needs /usr/bin/python3");
      return;
    }
  for (guint i = 0; parents[i] != NULL; i++)
    {
      g_autofree char *dir = NULL, *path = NULL, *quoted = g_shell_quote (unix_raw_py);
      g_autofree char *script = NULL, *out_user = NULL, *out_root = NULL;
      g_autoptr(GSocketAddress) address = NULL;
      g_autoptr(GSocket) host = NULL;
      g_autoptr(GError) error = NULL;
      SandboxInstance *user, *root;
      char buf[64];
      gssize got;

      dir = host_shown_dir_new (parents[i]);
      if (dir == NULL)
        continue;
      tried++;
      /* A host service's datagram socket (journald's, syslog's) that
       * anyone may write to. */
      path = g_build_filename (dir, "dgram", NULL);
      host = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_DATAGRAM, G_SOCKET_PROTOCOL_DEFAULT, &error);
      g_assert_no_error (error);
      address = g_unix_socket_address_new (path);
      g_assert_true (g_socket_bind (host, address, FALSE, &error));
      g_assert_no_error (error);
      g_assert_cmpint (g_chmod (path, 0777), ==, 0);
      g_socket_set_blocking (host, FALSE);

      script = g_strdup_printf ("P=%s; /usr/bin/python3 -c \"$P\" '%s'", quoted, path);
      user = create (NULL);
      root = create_as_root ();
      out_user = sh (user, script, NULL);
      out_root = sh (root, script, NULL);
      g_test_message ("%s: user: %s root: %s", path, out_user, out_root);
      got = g_socket_receive (host, buf, sizeof buf, NULL, &error);
      if (got >= 0)
        g_test_message ("the host's socket received %" G_GSSIZE_FORMAT " bytes", got);
      g_assert_cmpint (got, ==, -1);
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK);
      g_assert_cmpstr (out_user, ==, "ERR-EACCES ERR-EACCES ERR-EACCES ERR-EACCES OK OK OK\n");
      g_assert_cmpstr (out_root, ==, "ERR-EACCES ERR-EACCES ERR-EACCES ERR-EACCES OK OK OK\n");

      destroy (user);
      destroy (root);
      g_socket_close (host, NULL);
      g_unlink (path);
      g_rmdir (dir);
    }
  if (tried == 0)
    g_test_skip ("no directory of the host's root where this user may make one");
}

/* Session sec27: NETLINK_USERSOCK lets any user send to another
 * process's socket of that protocol in the same network namespace: with
 * `network`, the host's. A host service's such socket (port id argv[1])
 * took the sandbox's message; no Landlock scope covers netlink. Control:
 * a NETLINK_ROUTE socket. */
static const char usersock_py[] =
  "import errno, socket, struct, sys\n"
  "def send():\n"
  "    try:\n"
  "        s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 2)\n"
  "    except OSError as ex:\n"
  "        return 'ERR-' + errno.errorcode.get(ex.errno, str(ex.errno))\n"
  "    try:\n"
  "        s.sendto(struct.pack('=LHHLL', 24, 0x10, 0, 1, 0) + b'escaped!', (int(sys.argv[1]), 0))\n"
  "        return 'SENT'\n"
  "    except OSError as ex:\n"
  "        return 'MADE-' + errno.errorcode.get(ex.errno, str(ex.errno))\n"
  "def make(protocol):\n"
  "    try:\n"
  "        socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, protocol).close()\n"
  "        return 'OK'\n"
  "    except OSError as ex:\n"
  "        return 'ERR-' + errno.errorcode.get(ex.errno, str(ex.errno))\n"
  "print(send(), make(11), make(0))\n";

static void
test_netlink_usersock (void)
{
  g_autofree char *quoted = g_shell_quote (usersock_py);
  struct sockaddr_nl bound = { .nl_family = AF_NETLINK };
  socklen_t bound_len = sizeof bound;
  int host;

  if (!have_python ())
    {
      g_test_skip ("needs /usr/bin/python3");
      return;
    }
  host = socket (AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_USERSOCK);
  if (host < 0)
    {
      g_test_skip ("no NETLINK_USERSOCK socket on this host");
      return;
    }
  g_assert_cmpint (bind (host, (struct sockaddr *) &bound, sizeof bound), ==, 0);
  g_assert_cmpint (getsockname (host, (struct sockaddr *) &bound, &bound_len), ==, 0);
  for (int as_root = 0; as_root <= 1; as_root++)
    {
      g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
      g_autofree char *script = g_strdup_printf ("P=%s; /usr/bin/python3 -c \"$P\" %u", quoted,
                                                 (unsigned) bound.nl_pid);
      g_autofree char *out = NULL;
      SandboxInstance *instance;
      char buf[64];
      ssize_t got;

      sandbox_spec_set_network (spec, TRUE);
      sandbox_spec_set_run_as_root (spec, as_root);
      instance = create (spec);
      out = sh (instance, script, NULL);
      got = recv (host, buf, sizeof buf, 0);
      g_test_message ("run-as-root=%d: %s; the host's socket received %zd", as_root, out, got);
      g_assert_cmpint (got, ==, -1);
      g_assert_cmpint (errno, ==, EAGAIN);
      /* USERSOCK, then CONNECTOR refused; ROUTE, the control, made. */
      g_assert_cmpstr (out, ==, "ERR-EPERM ERR-EPERM OK\n");
      destroy (instance);
    }
  close (host);
}

static void
test_own_sockets (void)
{
  g_autofree char *quoted = g_shell_quote (own_sockets_py);
  g_autofree char *script = g_strdup_printf ("P=%s; /usr/bin/python3 -c \"$P\"", quoted);
  g_autofree char *out = NULL;
  g_auto(GStrv) words = NULL;
  SandboxInstance *instance;

  if (!have_python ())
    {
      g_test_skip ("needs /usr/bin/python3");
      return;
    }
  instance = create (NULL);
  out = sh (instance, script, NULL);
  g_test_message ("%s", out);
  words = g_strsplit (g_strstrip (out), " ", -1);
  g_assert_cmpuint (g_strv_length (words), ==, 15);
  for (guint i = 0; i < 10; i++)
    g_assert_cmpstr (words[i], ==, (i % 5 == 4) ? "hi" : "OK");
  g_assert_cmpstr (words[10], ==, "OK");            /* blocking TCP */
  g_assert_true (g_str_equal (words[11], "NB-OK") || g_str_equal (words[11], "NB-EINPROGRESS"));
  g_assert_cmpstr (words[12], ==, "ERR-EACCES");    /* UNIX datagram */
  g_assert_cmpstr (words[13], ==, "ERR-EACCES");
  g_assert_cmpstr (words[14], ==, "OK");            /* stream socketpair */
  destroy (instance);
}

static void
test_host_unix_sockets_world_writable (void)
{
  static const char * const parents[] = { "/tmp", "/var/tmp", NULL };

  if (!have_python ())
    {
      g_test_skip ("needs /usr/bin/python3");
      return;
    }
  for (guint i = 0; parents[i] != NULL; i++)
    {
      g_autofree char *dir = NULL;
      g_autofree char *before = NULL, *during = NULL;
      g_autoptr(GSocketService) before_service = NULL, during_service = NULL;
      g_autofree char *o1 = NULL, *o2 = NULL;
      guint accepted = 0;
      SandboxInstance *instance;

      if (!g_file_test (parents[i], G_FILE_TEST_IS_DIR))
        continue;
      dir = g_strdup_printf ("%s/libsandbox-attack-%08x", parents[i], g_random_int ());
      g_assert_cmpint (g_mkdir (dir, 0755), ==, 0);
      before = g_build_filename (dir, "before", NULL);
      during = g_build_filename (dir, "during", NULL);
      before_service = listen_unix_world (before, &accepted);

      instance = create_as_root ();
      during_service = listen_unix_world (during, &accepted);
      o1 = connect_from (instance, before);
      o2 = connect_from (instance, during);
      while (g_main_context_iteration (NULL, FALSE))
        ;
      g_test_message ("%s: before: %s during: %s", parents[i], o1, o2);
      g_assert_true (g_str_has_prefix (o1, "REFUSED"));
      g_assert_true (g_str_has_prefix (o2, "REFUSED"));
      g_assert_cmpuint (accepted, ==, 0);

      g_socket_service_stop (before_service);
      g_socket_service_stop (during_service);
      destroy (instance);
      g_unlink (before);
      g_unlink (during);
      g_rmdir (dir);
    }
}

/* ---- the host's home directories ---- */

/* /root and /home hold the sandbox's empty tmpfs and nothing beneath it:
 * the host's directories were bound there first, then covered (a mount
 * that showed nothing, but cost bwrap a pass over the mount table and
 * left the host's directories in the sandbox's mount tree, where
 * /proc/self/mountinfo listed them). Control: a spec mount below /root
 * still shows on top of the tmpfs. */
static void
test_host_home_unmounted (void)
{
  static const char * const homes[] = { "/home", "/root", NULL };
  g_autoptr(GString) expected = g_string_new ("");
  g_autofree char *dir = NULL;

  /* A home that is a directory of the host's root is no mount at all in
   * the sandbox (neither the host's nor a tmpfs): an empty directory of
   * the sandbox's read-only root, as empty and read-only as the tmpfs
   * that was there before (twelfth round of docs/benchmarks.md). */
  g_autoptr(GString) homes_found = g_string_new ("");

  for (guint i = 0; homes[i] != NULL; i++)
    if (g_file_test (homes[i], G_FILE_TEST_IS_DIR) && !g_file_test (homes[i], G_FILE_TEST_IS_SYMLINK))
      {
        g_string_append_printf (homes_found, " %s", homes[i]);
        g_string_append_printf (expected, "%s: empty\n%s: Read-only file system\n", homes[i], homes[i]);
      }
  if (expected->len == 0)
    {
      g_test_skip ("no /root or /home directory on this host");
      return;
    }
  for (int as_root = 0; as_root <= 1; as_root++)
    {
      SandboxInstance *instance = as_root ? create_as_root () : create (NULL);
      g_autofree char *script = g_strdup_printf (
        "awk '$5 == \"/root\" || $5 == \"/home\" { print $5, $9 }' /proc/self/mountinfo; "
        "for d in%s; do [ -z \"$(ls -A $d)\" ] && echo \"$d: empty\"; "
        "mkdir $d/x 2>&1 | sed \"s|.*'$d/x': |$d: |\"; done", homes_found->str);
      g_autofree char *out = sh (instance, script, NULL);

      g_test_message ("run-as-root=%d: %s", as_root, out);
      g_assert_cmpstr (out, ==, expected->str);
      destroy (instance);
    }

  /* Control: a host directory mounted below /root by the spec. */
  dir = g_strdup_printf ("/root/libsandbox-home-%08x", g_random_int ());
  if (g_mkdir (dir, 0700) == 0)
    {
      g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
      g_autofree char *file = g_build_filename (dir, "seen", NULL);
      g_autofree char *script = g_strdup_printf ("cat %s", file);
      g_autofree char *out = NULL;
      SandboxInstance *instance;

      g_assert_true (g_file_set_contents (file, "mounted", -1, NULL));
      sandbox_spec_add_mount (spec, dir, NULL, TRUE);
      instance = create (spec);
      out = sh (instance, script, NULL);
      g_assert_cmpstr (out, ==, "mounted");
      destroy (instance);
      g_unlink (file);
      g_rmdir (dir);
    }
}

/* The host's /sys is bound after every other mount when nothing else
 * goes below it (bwrap reads the whole mount table after each mount, and
 * /sys brings the host's cgroup, tracing, ... mounts along), and where it
 * was when something does. Either way: read-only, nosuid, nodev, with its
 * root-only directories behind an empty read-only tmpfs, and a spec mount
 * below it stays visible. */
static void
test_sys_last (void)
{
  g_autofree char *dir = g_dir_make_tmp ("libsandbox-sys-XXXXXX", NULL);
  g_autofree char *file = g_build_filename (dir, "seen", NULL);
  const char *check =
    /* the options of /sys; the last mount at each masked directory */
    "awk '$5 == \"/sys\" { split($6, o, \",\"); print \"sys\", o[1], o[2], o[3] } "
    "     $5 ~ /^\\/sys\\/kernel\\/(slab|tracing|debug|security)$/ { last[$5] = $9 \" \" substr($6, 1, 2) } "
    "     END { for (m in last) if (last[m] != \"tmpfs ro\") print \"open:\", m, last[m] }' /proc/self/mountinfo; "
    "for d in /sys/kernel/slab /sys/kernel/tracing; do [ -d $d ] && [ -n \"$(ls -A $d)\" ] && echo \"listed: $d\"; done; "
    "touch /sys/x 2>/dev/null && echo 'sys writable'; "
    /* the order: the line of /sys after the sandbox's /tmp */
    "awk '$5 == \"/tmp\" { t = NR } $5 == \"/sys\" { s = NR } END { print (s > t ? \"sys last\" : \"sys first\") }' "
    "/proc/self/mountinfo";

  g_assert_nonnull (dir);
  g_assert_true (g_file_set_contents (file, "mounted", -1, NULL));
  for (int below = 0; below <= 1; below++)
    {
      g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
      g_autofree char *script = NULL;
      g_autofree char *out = NULL;
      SandboxInstance *instance;

      if (below)
        sandbox_spec_add_mount (spec, dir, "/sys/fs/cgroup", TRUE);
      instance = create (spec);
      script = g_strdup_printf ("%s; %s", check, below ? "cat /sys/fs/cgroup/seen" : "true");
      out = sh (instance, script, NULL);
      g_test_message ("spec mount below /sys=%d: %s", below, out);
      g_assert_cmpstr (out, ==, below ? "sys ro nosuid nodev\nsys first\nmounted"
                                      : "sys ro nosuid nodev\nsys last\n");
      destroy (instance);
    }
  g_unlink (file);
  g_rmdir (dir);
}

static void
test_host_home (void)
{
  static const char * const parents[] = { "/root", "/home", NULL };
  g_autofree char *token = g_strdup_printf ("canary-%08x%08x", g_random_int (), g_random_int ());
  g_autoptr(GPtrArray) dirs = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autoptr(GString) script = g_string_new ("cat /etc/shadow /etc/gshadow 2>/dev/null; ls -A /root /home; ");
  SandboxInstance *instance, *mounted;
  g_autofree char *out = NULL;
  g_autofree char *control = NULL;

  for (guint i = 0; parents[i] != NULL; i++)
    {
      g_autofree char *dir = g_strdup_printf ("%s/libsandbox-canary-%08x", parents[i], g_random_int ());
      g_autofree char *file = g_build_filename (dir, "secret", NULL);

      if (g_mkdir (dir, 0700) != 0)
        continue;   /* not ours to write: nothing to plant */
      g_assert_true (g_file_set_contents (file, token, -1, NULL));
      g_string_append_printf (script, "cat %s 2>/dev/null; ", file);
      g_ptr_array_add (dirs, g_steal_pointer (&dir));
    }
  if (dirs->len == 0)
    {
      g_test_skip ("cannot create a directory under /root or /home");
      return;
    }
  g_string_append (script, "echo end");

  for (int as_root = 0; as_root <= 1; as_root++)
    {
      instance = as_root ? create_as_root () : create (NULL);
      g_clear_pointer (&out, g_free);
      out = sh (instance, script->str, NULL);
      g_test_message ("run-as-root=%d: %s", as_root, out);
      /* Empty home directories, no password hashes, no canary. */
      g_assert_cmpstr (out, ==, "/home:\n\n/root:\nend\n");
      destroy (instance);
    }

  /* Control: explicitly mounted, the same files are read. */
  for (guint i = 0; i < dirs->len; i++)
    sandbox_spec_add_mount (spec, g_ptr_array_index (dirs, i), NULL, TRUE);
  mounted = create (spec);
  control = sh (mounted, script->str, NULL);
  g_assert_nonnull (strstr (control, token));
  destroy (mounted);

  for (guint i = 0; i < dirs->len; i++)
    {
      g_autofree char *file = g_build_filename (g_ptr_array_index (dirs, i), "secret", NULL);
      g_unlink (file);
      g_rmdir (g_ptr_array_index (dirs, i));
    }
}

/* ---- processes that try to outlive destroy ---- */

static void
exec_ignore (GObject      *source,
             GAsyncResult *res,
             gpointer      user_data)
{
  g_autoptr(SandboxExecResult) result =
    sandbox_instance_exec_finish (SANDBOX_INSTANCE (source), res, NULL);

  *(gboolean *) user_data = TRUE;
}

static void
test_outlive_destroy (void)
{
  static const char * const escapees[] = {
    "sleep 3181", "sleep 3182", "sleep 3183", "sleep 3184", "sleep 3185", NULL
  };
  SandboxInstance *instance = create (NULL);
  g_autoptr(SandboxCommand) cmd = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *first = NULL;
  gboolean done = FALSE, all;

  /* Background, new session, double fork, nohup, daemon in a new session;
   * an earlier exec's leftovers too. */
  first = sh (instance, "(setsid sleep 3185 </dev/null >/dev/null 2>&1 &); echo ok", NULL);
  g_assert_cmpstr (first, ==, "ok\n");
  cmd = sandbox_command_new_shell ("sleep 3181 & setsid sleep 3182 & (sleep 3183 &); "
                                   "nohup sleep 3184 >/dev/null 2>&1 & sleep 3186");
  sandbox_instance_exec_async (instance, cmd, NULL, exec_ignore, &done);
  for (int i = 0; i < 200; i++)
    {
      all = TRUE;
      for (guint j = 0; j < 4; j++)
        all = all && test_host_has_process (escapees[j]);
      if (all && test_host_has_process ("sleep 3186"))
        break;
      g_usleep (50 * G_TIME_SPAN_MILLISECOND);
    }
  g_assert_true (test_host_has_process ("sleep 3186"));

  g_assert_true (sandbox_instance_destroy (instance, NULL, &error));
  g_assert_no_error (error);
  while (!done)
    g_main_context_iteration (NULL, TRUE);
  for (int i = 0; i < 50; i++)
    {
      gboolean any = test_host_has_process ("sleep 318");

      if (!any)
        break;
      g_usleep (100 * G_TIME_SPAN_MILLISECOND);
    }
  for (guint j = 0; escapees[j] != NULL; j++)
    g_assert_false (test_host_has_process (escapees[j]));
  g_assert_false (test_host_has_process ("sleep 3186"));
  g_object_unref (instance);
}

/* ---- secrets in the helpers the commands can reach ---- */

/* The sandbox's secret (its "token") in JSON, the text of an instance.json,
 * and its pid 1 in *INIT_PID; NULL when JSON has not both (yet). */
static char *
instance_token (const char *json,
                gint64     *init_pid)
{
  g_autoptr(GRegex) pid_re = g_regex_new ("\"init_pid\" *: *([0-9]+)", 0, 0, NULL);
  g_autoptr(GRegex) token_re = g_regex_new ("\"token\" *: *\"([0-9a-f]+)\"", 0, 0, NULL);
  g_autoptr(GMatchInfo) m1 = NULL, m2 = NULL;
  g_autofree char *pid_s = NULL;

  if (!g_regex_match (pid_re, json, 0, &m1) || !g_regex_match (token_re, json, 0, &m2))
    return NULL;
  pid_s = g_match_info_fetch (m1, 1);
  *init_pid = g_ascii_strtoll (pid_s, NULL, 10);
  return g_match_info_fetch (m2, 1);
}

/* How many times NEEDLE occurs in the readable private memory of PID
 * (read through /proc/PID/mem, as the caller may: it owns the sandbox's
 * user namespace), or -1 if the memory cannot be read. */
static int
memory_count (gint64 pid, const char *needle)
{
  g_autofree char *maps_path = g_strdup_printf ("/proc/%" G_GINT64_FORMAT "/maps", pid);
  g_autofree char *mem_path = g_strdup_printf ("/proc/%" G_GINT64_FORMAT "/mem", pid);
  g_autofree char *maps = NULL;
  g_auto(GStrv) lines = NULL;
  size_t needle_len = strlen (needle);
  int fd, count = 0;

  if (!g_file_get_contents (maps_path, &maps, NULL, NULL) ||
      (fd = open (mem_path, O_RDONLY | O_CLOEXEC)) < 0)
    return -1;
  lines = g_strsplit (maps, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      guint64 start, end;
      char perms[8];
      g_autofree char *buf = NULL;

      if (sscanf (lines[i], "%" G_GINT64_MODIFIER "x-%" G_GINT64_MODIFIER "x %4s", &start, &end, perms) != 3 ||
          perms[0] != 'r' || strstr (lines[i], "[vvar") != NULL || end - start > (64u << 20))
        continue;
      buf = g_malloc (end - start);
      if (pread (fd, buf, end - start, (off_t) start) != (ssize_t) (end - start))
        continue;
      for (const char *p = buf; p + needle_len <= buf + (end - start); p++)
        if (*p == needle[0] && memcmp (p, needle, needle_len) == 0)
          count++;
    }
  close (fd);
  return count;
}

/* The command spawner is in the commands' Landlock domain (a command may
 * signal it, to make it dump core, say), and was a fork of pid 1: its
 * memory held the sandbox's secret and the cookie that lets a connect(),
 * symlink() or sendmsg() past pid 1. With fs.suid_dumpable=2 (Ubuntu,
 * Debian with systemd-coredump) a non-dumpable process's core still goes
 * to the crash handler, and a root caller's sandbox reads what it stores.
 * The spawner is now a new image of the helper: neither is in it. Looked
 * for here: the secret (instance.json has it; the cookie is pid 1's
 * alone). Control: pid 1's memory has it. */
static void
test_spawner_secrets (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *root = g_dir_make_tmp ("libsandbox-secrets-XXXXXX", &error);
  g_autofree char *saved = g_strdup (g_getenv ("SANDBOX_LOCAL_ROOT"));
  g_autofree char *json_path = NULL, *json = NULL, *out = NULL, *children = NULL, *children_path = NULL;
  g_autofree char *token = NULL;
  g_auto(GStrv) kids = NULL;
  SandboxInstance *instance;
  gint64 init_pid, spawner = 0;

  g_assert_no_error (error);
  g_setenv ("SANDBOX_LOCAL_ROOT", root, TRUE);
  instance = create (NULL);
  out = sh (instance, "echo ok", NULL);   /* the spawner has made a command */
  g_assert_cmpstr (out, ==, "ok\n");
  json_path = g_build_filename (root, sandbox_instance_get_id (instance), "instance.json", NULL);
  g_assert_true (g_file_get_contents (json_path, &json, NULL, NULL));
  token = instance_token (json, &init_pid);
  g_assert_nonnull (token);
  children_path = g_strdup_printf ("/proc/%" G_GINT64_FORMAT "/task/%" G_GINT64_FORMAT "/children",
                                   init_pid, init_pid);
  g_assert_true (g_file_get_contents (children_path, &children, NULL, NULL));
  kids = g_strsplit (g_strstrip (children), " ", -1);
  for (guint i = 0; kids[i] != NULL && spawner == 0; i++)
    {
      g_autofree char *comm_path = g_strdup_printf ("/proc/%s/comm", kids[i]);
      g_autofree char *comm = NULL;

      if (g_file_get_contents (comm_path, &comm, NULL, NULL) && strcmp (g_strstrip (comm), "sandbox-spawner") == 0)
        spawner = g_ascii_strtoll (kids[i], NULL, 10);
    }
  g_assert_cmpint (spawner, >, 1);
  /* Control: the scan finds the secret where it is. */
  g_assert_cmpint (memory_count (init_pid, token), >=, 1);
  g_assert_cmpint (memory_count (spawner, token), ==, 0);
  destroy (instance);

  restore_local_root (saved);
  g_assert_cmpint (g_rmdir (root), ==, 0);
}

static void
run_done (GObject      *source,
          GAsyncResult *res,
          gpointer      user_data)
{
  SandboxExecResult **result = user_data;
  g_autoptr(GError) error = NULL;

  *result = sandbox_backend_run_finish (SANDBOX_BACKEND (source), res, &error);
  g_assert_no_error (error);
}

/* The host pid of the child of INIT_PID (a host pid) that has a child
 * named COMM, or 0. */
static gint64
parent_of_comm (gint64      init_pid,
                const char *comm)
{
  g_autofree char *path = g_strdup_printf ("/proc/%" G_GINT64_FORMAT "/task/%" G_GINT64_FORMAT "/children",
                                           init_pid, init_pid);
  g_autofree char *children = NULL;
  g_auto(GStrv) kids = NULL;

  if (!g_file_get_contents (path, &children, NULL, NULL))
    return 0;
  kids = g_strsplit (g_strstrip (children), " ", -1);
  for (guint i = 0; kids[i] != NULL; i++)
    {
      g_autofree char *grand_path = g_strdup_printf ("/proc/%s/task/%s/children", kids[i], kids[i]);
      g_autofree char *grand = NULL;
      g_auto(GStrv) grandkids = NULL;

      if (!g_file_get_contents (grand_path, &grand, NULL, NULL))
        continue;
      grandkids = g_strsplit (g_strstrip (grand), " ", -1);
      for (guint j = 0; grandkids[j] != NULL; j++)
        {
          g_autofree char *comm_path = g_strdup_printf ("/proc/%s/comm", grandkids[j]);
          g_autofree char *name = NULL;

          if (g_file_get_contents (comm_path, &name, NULL, NULL) && strcmp (g_strstrip (name), comm) == 0)
            return g_ascii_strtoll (kids[i], NULL, 10);
        }
    }
  return 0;
}

/* ---- the host's state ---- */

/* The sandboxes' directory in a directory another host user owns: root
 * running `sudo -E sandboxctl ...` keeps the invoking user's
 * XDG_RUNTIME_DIR (and HOME, for the cache), whose owner may rename,
 * replace and add entries there. A planted instance.json there named
 * another sandbox's pid 1 and bwrap, with a timeout in the past: root's
 * `sandboxctl ls` (list) "removed the expired sandbox" and killed them.
 * Now the library refuses a sandboxes' directory that anyone but the
 * caller and root could change: the list fails, naming it, and the other
 * sandbox lives. Control: the other sandbox answers before, and is listed
 * in its own directory. Root only (it makes a directory of uid 65534). */
static void
test_foreign_sandboxes_dir (void)
{
  const uid_t nobody = 65534;
  g_autoptr(GError) error = NULL;
  g_autoptr(GRegex) expires_re = g_regex_new ("\"expires\" *: *[0-9]+", 0, 0, NULL);
  g_autoptr(GRegex) id_re = g_regex_new ("\"id\" *: *\"[^\"]*\"", 0, 0, NULL);
  g_autoptr(SandboxBackend) backend = NULL;
  GList *listed;
  g_autofree char *evil = g_strdup ("/tmp/test-local-attacks-XXXXXX");
  g_autofree char *local = NULL, *planted = NULL, *json_path = NULL, *json = NULL;
  g_autofree char *forged = NULL, *forged2 = NULL, *forged_path = NULL, *out = NULL, *rm = NULL;
  g_autofree char *saved = g_strdup (g_getenv ("SANDBOX_LOCAL_ROOT"));
  SandboxInstance *victim;

  if (geteuid () != 0)
    {
      g_test_skip ("needs root, to make a directory of another user");
      return;
    }
  victim = create (NULL);
  out = sh (victim, "echo alive", NULL);
  g_assert_cmpstr (out, ==, "alive\n");
  g_clear_pointer (&out, g_free);

  /* What the other user makes: their directory, their sandboxes'
   * directory in it, and a sandbox's directory whose instance.json is a
   * copy of the victim's, expired. */
  g_assert_nonnull (g_mkdtemp (evil));
  rm = g_strdup_printf ("rm -rf %s", evil);
  local = g_build_filename (evil, "local", NULL);
  planted = g_build_filename (local, "sbx-0123456789ab", NULL);
  g_assert_cmpint (g_mkdir_with_parents (planted, 0755), ==, 0);
  {
    g_autoptr(SandboxBackend) plain = sandbox_backend_new_for_name ("local", &error);
    g_autofree char *root = NULL;

    g_assert_no_error (error);
    g_object_get (plain, "root-dir", &root, NULL);
    json_path = g_build_filename (root, sandbox_instance_get_id (victim), "instance.json", NULL);
  }
  g_assert_true (g_file_get_contents (json_path, &json, NULL, NULL));
  forged = g_regex_replace_literal (expires_re, json, -1, 0, "\"expires\": 1", 0, NULL);
  if (strcmp (forged, json) == 0)
    {
      /* No timeout recorded: add one. */
      g_free (forged);
      forged = g_strdup_printf ("{\"expires\": 1, %s", json + 1);
    }
  forged2 = g_regex_replace_literal (id_re, forged, -1, 0, "\"id\": \"sbx-0123456789ab\"", 0, NULL);
  forged_path = g_build_filename (planted, "instance.json", NULL);
  g_assert_true (g_file_set_contents (forged_path, forged2, -1, NULL));
  g_assert_cmpint (chown (forged_path, nobody, nobody), ==, 0);
  g_assert_cmpint (chown (planted, nobody, nobody), ==, 0);
  g_assert_cmpint (chown (local, nobody, nobody), ==, 0);
  g_assert_cmpint (chown (evil, nobody, nobody), ==, 0);

  g_setenv ("SANDBOX_LOCAL_ROOT", local, TRUE);
  backend = sandbox_backend_new_for_name ("local", &error);   /* reads it */
  g_assert_no_error (error);
  listed = sandbox_backend_list (backend, NULL, NULL, &error);
  g_test_message ("list in %s: %s", local, error != NULL ? error->message : "listed");
  g_list_free_full (listed, g_object_unref);
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_CONFIGURED);
  g_assert_nonnull (strstr (error->message, evil));
  g_clear_error (&error);

  /* The victim still runs. */
  out = sh (victim, "echo alive", NULL);
  g_assert_cmpstr (out, ==, "alive\n");
  destroy (victim);

  restore_local_root (saved);
  g_assert_true (g_spawn_command_line_sync (rm, NULL, NULL, NULL, NULL));
}

/* A terminal's holder (hold_tty in the helper) lives beside the command,
 * in its Landlock domain, for as long as the command runs: a command may
 * signal it (SIGSEGV, for a core that fs.suid_dumpable=2 hands the crash
 * handler). It must hold no secret of the sandbox. The one-shot command's
 * (`sandboxctl run -t`) was a fork of pid 1, whose memory holds the
 * sandbox's secret and the cookie that lets a call past pid 1's checks;
 * the spawner's (`sandboxctl exec -t`) kept the request's header, which
 * carries the secret. Looked for (ONCE: the one-shot's, else an exec's):
 * the secret, in the holder's memory read from the host through
 * /proc/PID/mem. Control: pid 1's memory has it. */
static void
tty_holder_secrets (gboolean once)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *root = g_dir_make_tmp ("libsandbox-secrets-XXXXXX", &error);
  g_autofree char *saved = g_strdup (g_getenv ("SANDBOX_LOCAL_ROOT"));
  g_autoptr(SandboxBackend) backend = NULL;
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autoptr(SandboxCommand) cmd = sandbox_command_new_shell (
    "while [ ! -e /workspace/go ]; do sleep 0.05; done; echo done");
  g_autoptr(SandboxExecResult) result = NULL;
  g_autofree char *token = NULL, *dir = NULL, *go = NULL;
  SandboxInstance *instance = NULL;
  gint64 init_pid = 0, holder = 0;

  g_assert_no_error (error);
  g_setenv ("SANDBOX_LOCAL_ROOT", root, TRUE);
  backend = sandbox_backend_new_for_name ("local", &error);   /* reads it */
  g_assert_no_error (error);
  sandbox_command_set_tty (cmd, TRUE);
  sandbox_command_set_timeout_ms (cmd, 60000);   /* never hangs */
  if (once)
    sandbox_backend_run_async (backend, spec, cmd, NULL, run_done, &result);
  else
    {
      instance = sandbox_backend_create (backend, spec, NULL, &error);
      g_assert_no_error (error);
      sh (instance, "true", NULL);   /* not the sandbox's first command */
      sandbox_instance_exec_async (instance, cmd, NULL, exec_done, &result);
    }

  /* The sandbox's directory, then the command's holder: the child of pid
   * 1 whose child is the command's shell. */
  while (holder == 0 && result == NULL)
    {
      g_main_context_iteration (NULL, FALSE);
      if (dir == NULL)
        {
          g_autoptr(GDir) listing = g_dir_open (root, 0, NULL);
          const char *name;

          while (listing != NULL && dir == NULL && (name = g_dir_read_name (listing)) != NULL)
            {
              g_autofree char *json_path = g_build_filename (root, name, "instance.json", NULL);
              g_autofree char *json = NULL;

              if (g_file_get_contents (json_path, &json, NULL, NULL) &&
                  (token = instance_token (json, &init_pid)) != NULL)
                dir = g_build_filename (root, name, NULL);
            }
        }
      if (dir != NULL)
        holder = parent_of_comm (init_pid, "sh");
      if (holder == 0)
        g_usleep (10000);
    }
  g_assert_null (result);
  g_assert_cmpint (holder, >, 1);
  /* Control: the scan finds the secret where it is. */
  g_assert_cmpint (memory_count (init_pid, token), >=, 1);
  g_assert_cmpint (memory_count (holder, token), ==, 0);

  go = g_build_filename (dir, "work", "go", NULL);
  g_assert_true (g_file_set_contents (go, "", 0, NULL));
  while (result == NULL)
    g_main_context_iteration (NULL, TRUE);
  g_assert_cmpint (sandbox_exec_result_get_exit_code (result), ==, 0);
  if (instance != NULL)
    destroy (instance);

  restore_local_root (saved);
  g_assert_cmpint (g_rmdir (root), ==, 0);
}

static void
test_tty_holder_secrets (void)
{
  tty_holder_secrets (TRUE);
  tty_holder_secrets (FALSE);
}

/* A one-shot sandbox's command is forked by pid 1 itself, not by the
 * spawner (sandbox-exec-helper.c, "The command spawner"); it must be in a
 * Landlock domain of its own all the same. pid 1 handles SIGUSR1 (end the
 * sandbox) and SIGCHLD, which a process of its domain could send it (the
 * kernel only shields it from signals it does not handle); a signal that
 * got through would end the sandbox before ALIVE. Like every command, it
 * reads nothing of pid 1's. */
static void
test_one_shot_command_domain (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(SandboxBackend) backend = sandbox_backend_new_for_name ("local", &error);
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autoptr(SandboxCommand) cmd = sandbox_command_new_shell (
    "kill -USR1 1 2>/dev/null && echo SIGNALLED || echo REFUSED; "
    "kill -CHLD 1 2>/dev/null && echo SIGNALLED || echo REFUSED; "
    "cat /proc/1/environ >/dev/null 2>&1 && echo READ || echo NOREAD; "
    "sleep 0.3; echo ALIVE");
  g_autoptr(SandboxExecResult) result = NULL;
  g_autofree char *out = NULL;
  GBytes *bytes;

  g_assert_no_error (error);
  result = sandbox_backend_run (backend, spec, cmd, NULL, &error);
  g_assert_no_error (error);
  bytes = sandbox_exec_result_get_stdout (result);
  out = g_strndup (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
  g_test_message ("one-shot command: %s (Landlock ABI %d)", out, landlock_abi ());
  if (landlock_abi () >= 6)
    {
      g_assert_cmpstr (out, ==, "REFUSED\nREFUSED\nNOREAD\nALIVE\n");
      g_assert_cmpint (sandbox_exec_result_get_exit_code (result), ==, 0);
    }
  else
    g_assert_nonnull (strstr (out, "NOREAD\n"));
}

/* A one-shot sandbox's command is forked by pid 1 itself, any other by
 * the spawner (sandbox-exec-helper.c, "The command spawner"): two paths
 * that must give a command the same process. Compared here field by
 * field (signals, capabilities, no_new_privs, seccomp filters, umask,
 * limits, descriptors, session and process group, parent, priority,
 * oom_score_adj, personality, directory, environment), as the user and as
 * root: a difference is a difference between the paths. */
static void
test_one_shot_same_as_exec (void)
{
  static const char script[] =
    "grep -E '^(Umask|Sig(Blk|Ign|Cgt)|Cap|NoNewPrivs|Seccomp|Speculation)' /proc/self/status; "
    "cat /proc/self/limits; ls /proc/self/fd; "
    "set -- $(cut -d' ' -f4,5,6,19,41 /proc/$$/stat); "
    "echo ppid=$1 pgrp=$(($2 == $$)) session=$(($3 == $$)) nice=$4 policy=$5; "
    "cat /proc/self/oom_score_adj /proc/self/personality; pwd; env | sort";

  for (int as_root = 0; as_root <= 1; as_root++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(SandboxBackend) backend = sandbox_backend_new_for_name ("local", &error);
      g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
      g_autoptr(SandboxCommand) cmd = sandbox_command_new_shell (script);
      g_autoptr(SandboxExecResult) result = NULL;
      g_autofree char *once = NULL, *exec = NULL;
      SandboxInstance *instance;
      GBytes *bytes;

      g_assert_no_error (error);
      sandbox_spec_set_run_as_root (spec, as_root);
      result = sandbox_backend_run (backend, spec, cmd, NULL, &error);
      g_assert_no_error (error);
      bytes = sandbox_exec_result_get_stdout (result);
      once = g_strndup (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));

      instance = create (spec);
      sh (instance, "true", NULL);   /* not the sandbox's first command */
      exec = sh (instance, script, NULL);
      destroy (instance);

      g_test_message ("run-as-root=%d, one-shot:\n%s", as_root, once);
      g_assert_nonnull (strstr (once, "ppid=1 pgrp=1 session=1"));
      g_assert_cmpstr (once, ==, exec);
    }
}

/* ---- file leases ---- */

/* A lease is taken on an inode, whatever the mount: a command leased a
 * host file it sees read-only (here through a read-only mount; the host's
 * root is one too), and a host process opening that file (for writing
 * under a read lease, at all under a write lease, which needs only that
 * nobody else has it open) waited for the sandbox to let go, or for the
 * lease-break time, 45 s. The owner may take one, and the sandbox user is
 * the caller: as root, every root-owned file of the host. Now refused
 * (EPERM). Control: F_GETLEASE still answers (F_UNLCK). */
static void
test_file_lease (void)
{
  static const char probe[] =
    "import fcntl, os, signal, sys, time\n"
    "signal.signal(signal.SIGIO, signal.SIG_IGN)\n"
    "fd = os.open(sys.argv[1], os.O_RDONLY)\n"
    "for t in (fcntl.F_WRLCK, fcntl.F_RDLCK):\n"
    "    try:\n"
    "        fcntl.fcntl(fd, fcntl.F_SETLEASE, t)\n"
    "        print('leased', flush=True)\n"
    "        break\n"
    "    except OSError as e:\n"
    "        print('errno', e.errno, flush=True)\n"
    "print('get', fcntl.fcntl(fd, fcntl.F_GETLEASE), flush=True)\n"
    "time.sleep(4)\n";
  g_autofree char *quoted = g_shell_quote (probe);
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("libsandbox-lease-XXXXXX", &error);
  g_autofree char *file = NULL, *script = NULL, *expected = NULL;

  g_assert_no_error (error);
  if (!have_python ())
    {
      g_test_skip ("needs /usr/bin/python3");
      g_rmdir (dir);
      return;
    }
  file = g_build_filename (dir, "shared", NULL);
  g_assert_true (g_file_set_contents (file, "host data", -1, NULL));
  script = g_strdup_printf ("P=%s; /usr/bin/python3 -c \"$P\" /shared/shared 2>&1", quoted);
  expected = g_strdup_printf ("errno %d\nerrno %d\nget %d\n", EPERM, EPERM, F_UNLCK);
  for (int as_root = 0; as_root <= 1; as_root++)
    {
      g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
      g_autoptr(SandboxCommand) cmd = sandbox_command_new_shell (script);
      g_autoptr(SandboxExecResult) result = NULL;
      g_autofree char *out = NULL;
      SandboxInstance *instance;
      gint64 start, waited;
      int fd;

      sandbox_spec_set_run_as_root (spec, as_root);
      sandbox_spec_add_mount (spec, dir, "/shared", TRUE);
      instance = create (spec);
      sandbox_command_set_timeout_ms (cmd, 30000);
      sandbox_instance_exec_async (instance, cmd, NULL, exec_done, &result);
      /* While the command holds what it got: the host opens the file. */
      g_usleep (1500 * G_TIME_SPAN_MILLISECOND);
      start = g_get_monotonic_time ();
      fd = open (file, O_RDWR | O_CLOEXEC);
      waited = g_get_monotonic_time () - start;
      g_assert_cmpint (fd, >=, 0);
      close (fd);
      while (result == NULL)
        g_main_context_iteration (NULL, TRUE);
      out = g_strndup (g_bytes_get_data (sandbox_exec_result_get_stdout (result), NULL),
                       g_bytes_get_size (sandbox_exec_result_get_stdout (result)));
      g_test_message ("run-as-root=%d: %s(the host's open took %" G_GINT64_FORMAT " ms)",
                      as_root, out, waited / 1000);
      g_assert_cmpstr (out, ==, expected);
      g_assert_cmpint (waited, <, G_USEC_PER_SEC);
      destroy (instance);
    }
  g_unlink (file);
  g_rmdir (dir);
}

/* ---- network ---- */

static void
test_no_route (void)
{
  SandboxInstance *instance = create_as_root ();
  g_autofree char *out = sh (instance,
                             "tail -n +2 /proc/net/route | wc -l; "
                             "grep -vc ' lo$' /proc/net/if_inet6 2>/dev/null || true; "
                             "ls /sys/class/net 2>/dev/null | grep -vx lo | wc -l", NULL);

  /* No route, no address but loopback's. (/sys is the host's, read-only,
   * so it lists host interfaces: not checked.) */
  g_assert_true (g_str_has_prefix (out, "0\n0\n"));
  destroy (instance);
}

static int
host_socket (const char *ip, int type, guint *port)
{
  struct sockaddr_in sin = { .sin_family = AF_INET };
  socklen_t len = sizeof sin;
  int fd = socket (AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (inet_pton (AF_INET, ip, &sin.sin_addr), ==, 1);
  g_assert_cmpint (bind (fd, (struct sockaddr *) &sin, sizeof sin), ==, 0);
  if (type == SOCK_STREAM)
    g_assert_cmpint (listen (fd, 16), ==, 0);
  g_assert_cmpint (getsockname (fd, (struct sockaddr *) &sin, &len), ==, 0);
  *port = ntohs (sin.sin_port);
  return fd;
}

/* How many connections (TCP) or datagrams (UDP) FD got. */
static guint
host_arrivals (int fd, int type)
{
  guint n = 0;
  char buf[64];

  for (;;)
    {
      int c = type == SOCK_STREAM ? accept (fd, NULL, NULL) : (int) recv (fd, buf, sizeof buf, 0);

      if (c < 0)
        return n;
      if (type == SOCK_STREAM)
        close (c);
      n++;
    }
}

/* Runs the Python program PY through LAUNCHER ("/usr/bin/python3", or
 * with a timeout and -u), with ARGS (shell words) or none, in a sandbox
 * with the network whose egress rules allow ALLOW_ADDR and deny every
 * other destination; returns its output, stderr included, once the
 * sandbox is destroyed. */
static char *
egress_run_py (const char *allow_addr,
               const char *launcher,
               const char *py,
               const char *args)
{
  const char *allow[] = { allow_addr, NULL };
  const char *deny_all[] = { "0.0.0.0/0", "::/0", NULL };
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autofree char *quoted = g_shell_quote (py);
  g_autofree char *script = NULL;
  SandboxInstance *instance;
  char *out;

  sandbox_spec_set_network (spec, TRUE);
  sandbox_spec_set_egress_rules (spec, allow, deny_all);
  instance = create (spec);
  script = g_strdup_printf ("P=%s; %s -c \"$P\"%s%s 2>&1", quoted, launcher, args != NULL ? " " : "",
                            args != NULL ? args : "");
  out = sh (instance, script, NULL);
  g_test_message ("%s", out);
  destroy (instance);
  return out;
}

/* Egress rules: pid 1 read a destination only when it had the full size
 * of its family's address, and passed anything else as "another family".
 * The kernel takes a sockaddr_in6 of 24 bytes (RFC 2133's, without
 * sin6_scope_id) for connect() and sendto(), and the sendto() of an IPv4
 * UDP socket takes AF_UNSPEC for AF_INET: under "deny everything but
 * 127.0.0.1", a TCP connection and two datagrams reached 127.0.0.2. Now
 * read as the kernel reads them. Controls: the same short address and
 * AF_UNSPEC reach the allowed 127.0.0.1, and AF_UNSPEC still disconnects
 * a UDP socket. */
static void
test_egress_short_address (void)
{
  static const char probe[] =
    "import ctypes, socket, struct, sys\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "def sin6(ip, port):\n"
    "    return struct.pack('=H', socket.AF_INET6) + struct.pack('!HI', port, 0) + "
    "socket.inet_pton(socket.AF_INET6, '::ffff:' + ip)\n"
    "def unspec(ip, port):\n"
    "    return struct.pack('=H', 0) + struct.pack('!H', port) + socket.inet_aton(ip) + bytes(8)\n"
    "def res(r):\n"
    "    return 'ok' if r >= 0 else 'errno %d' % ctypes.get_errno()\n"
    "for ip, tcp, udp in ((sys.argv[1], int(sys.argv[2]), int(sys.argv[3])),\n"
    "                     (sys.argv[4], int(sys.argv[5]), int(sys.argv[6]))):\n"
    "    s = socket.socket(socket.AF_INET6)\n"
    "    print(ip, 'tcp6/24', res(libc.connect(s.fileno(), sin6(ip, tcp), 24)))\n"
    "    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)\n"
    "    print(ip, 'udp6/24', res(libc.sendto(s.fileno(), b'x', 1, 0, sin6(ip, udp), 24)))\n"
    "    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
    "    print(ip, 'unspec', res(libc.sendto(s.fileno(), b'x', 1, 0, unspec(ip, udp), 16)))\n"
    "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
    "s.connect((sys.argv[4], int(sys.argv[6])))\n"
    "print('disconnect', res(libc.connect(s.fileno(), unspec('0.0.0.0', 0), 16)))\n";
  g_autofree char *args = NULL, *out = NULL, *expected = NULL;
  guint denied_tcp, denied_udp, allowed_tcp, allowed_udp;
  int fds[4];

  if (!have_python ())
    {
      g_test_skip ("needs /usr/bin/python3");
      return;
    }
  fds[0] = host_socket ("127.0.0.2", SOCK_STREAM, &denied_tcp);
  fds[1] = host_socket ("127.0.0.2", SOCK_DGRAM, &denied_udp);
  fds[2] = host_socket ("127.0.0.1", SOCK_STREAM, &allowed_tcp);
  fds[3] = host_socket ("127.0.0.1", SOCK_DGRAM, &allowed_udp);
  args = g_strdup_printf ("127.0.0.2 %u %u 127.0.0.1 %u %u", denied_tcp, denied_udp, allowed_tcp, allowed_udp);
  out = egress_run_py ("127.0.0.1", "/usr/bin/python3", probe, args);
  expected = g_strdup_printf ("127.0.0.2 tcp6/24 errno %d\n127.0.0.2 udp6/24 errno %d\n"
                              "127.0.0.2 unspec errno %d\n"
                              "127.0.0.1 tcp6/24 ok\n127.0.0.1 udp6/24 ok\n127.0.0.1 unspec ok\n"
                              "disconnect ok\n", EACCES, EACCES, EACCES);
  g_assert_cmpstr (out, ==, expected);
  g_assert_cmpuint (host_arrivals (fds[0], SOCK_STREAM), ==, 0);
  g_assert_cmpuint (host_arrivals (fds[1], SOCK_DGRAM), ==, 0);
  g_assert_cmpuint (host_arrivals (fds[2], SOCK_STREAM), ==, 1);
  g_assert_cmpuint (host_arrivals (fds[3], SOCK_DGRAM), ==, 2);
  for (int i = 0; i < 4; i++)
    close (fds[i]);
}

/* With egress rules, pid 1 read each destination of a sendto(),
 * sendmsg() or sendmmsg() from the command's memory, refused a denied one
 * and let the kernel send the rest (SECCOMP_USER_NOTIF_FLAG_CONTINUE):
 * the kernel read the message again, so a process sharing the memory that
 * rewrote the sockaddr, or the msghdr's msg_name pointer, between the two
 * reads had datagrams reach a denied address (under "deny all but
 * 127.0.0.1", hundreds of the sends reached 127.0.0.2). Now pid 1 sends
 * on a copy of the socket with its own copy of the destination, data and
 * control data, and nothing reaches it; one more way in, a thread
 * swapping another socket over the descriptor between pid 1's look and
 * the send, must not either. The flips run in a forked process sharing a
 * MAP_SHARED page (no interpreter lock between the two); the swap in a
 * thread. Controls: sends to the allowed address arrive, and each send
 * either succeeds or is refused (EACCES), nothing else. */
static const char egress_send_race_py[] =
  "import ctypes, mmap, os, socket, struct, sys, threading\n"
  "libc = ctypes.CDLL(None, use_errno=True)\n"
  "D, dport, A, aport, N = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])\n"
  "def sin(ip, port):\n"
  "    return struct.pack('=H', socket.AF_INET) + struct.pack('!H', port) + socket.inet_aton(ip) + bytes(8)\n"
  "good, bad = sin(A, aport), sin(D, dport)\n"
  "page = mmap.mmap(-1, 4096)\n"
  "base = ctypes.addressof(ctypes.c_char.from_buffer(page))\n"
  /* 0: stop flag; 64: the flipped sockaddr; 128: the good one; 192: the
   * bad one; 256: the data; 512: a msghdr; 576: its iovec; 1024: two
   * mmsghdrs (64 bytes each). */
  "page[128:144] = good\n"
  "page[192:208] = bad\n"
  "page[256:257] = b'x'\n"
  "def msghdr(at, name):\n"
  "    struct.pack_into('=QI4xQQQQi4x', page, at, name, 16, base + 576, 1, 0, 0, 0)\n"
  "struct.pack_into('=QQ', page, 576, base + 256, 1)\n"
  "def flipper(at, a, b):\n"
  "    page[0] = 0\n"
  "    pid = os.fork()\n"
  "    if pid == 0:\n"
  "        while page[0] == 0:\n"
  "            page[at:at + len(a)] = b\n"
  "            page[at:at + len(a)] = a\n"
  "        os._exit(0)\n"
  "    return pid\n"
  "def stop(pid):\n"
  "    page[0] = 1\n"
  "    os.waitpid(pid, 0)\n"
  "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
  "fd = s.fileno()\n"
  "def count(name, call):\n"
  "    ok = refused = other = 0\n"
  "    for i in range(N):\n"
  "        r = call()\n"
  "        e = ctypes.get_errno()\n"
  "        if r >= 0: ok += 1\n"
  "        elif e == 13: refused += 1\n"
  "        else: other += 1; print(name, 'errno', e)\n"
  "    print(name, 'sent', ok > 0, 'refused', refused > 0, 'other', other)\n"
  /* sendto: the sockaddr itself rewritten */
  "page[64:80] = good\n"
  "pid = flipper(64, good, bad)\n"
  "count('sendto', lambda: libc.sendto(fd, ctypes.c_void_p(base + 256), 1, 0, ctypes.c_void_p(base + 64), 16))\n"
  "stop(pid)\n"
  /* sendmsg: the sockaddr rewritten, then the msg_name pointer */
  "page[64:80] = good\n"
  "msghdr(512, base + 64)\n"
  "pid = flipper(64, good, bad)\n"
  "count('sendmsg', lambda: libc.sendmsg(fd, ctypes.c_void_p(base + 512), 0))\n"
  "stop(pid)\n"
  "msghdr(512, base + 128)\n"
  "pid = flipper(512, struct.pack('=Q', base + 128), struct.pack('=Q', base + 192))\n"
  "count('sendmsg-name', lambda: libc.sendmsg(fd, ctypes.c_void_p(base + 512), 0))\n"
  "stop(pid)\n"
  /* sendmmsg: the first message's sockaddr rewritten */
  "page[64:80] = good\n"
  "msghdr(1024, base + 64)\n"
  "msghdr(1088, base + 128)\n"
  "pid = flipper(64, good, bad)\n"
  "count('sendmmsg', lambda: libc.sendmmsg(fd, ctypes.c_void_p(base + 1024), 2, 0))\n"
  "stop(pid)\n"
  /* the socket swapped: a connected UNIX stream socket, whose sends the
   * rules leave alone, and the UDP one, in turn at one number */
  "u, peer = socket.socketpair()\n"
  "spare = os.dup(fd)\n"
  "target = os.dup(fd)\n"
  "done = []\n"
  "def swap():\n"
  "    while not done:\n"
  "        os.dup2(u.fileno(), target)\n"
  "        os.dup2(spare, target)\n"
  "t = threading.Thread(target=swap)\n"
  "t.start()\n"
  "msghdr(512, base + 192)\n"
  "ok = 0\n"
  "for i in range(N):\n"
  "    if libc.sendmsg(target, ctypes.c_void_p(base + 512), 0) >= 0: ok += 1\n"
  "done.append(1)\n"
  "t.join()\n"
  "print('swap sent', ok)\n";

static void
test_egress_send_race (void)
{
  g_autofree char *args = NULL, *out = NULL;
  guint denied_port, allowed_port, to_denied, to_allowed;
  int denied, allowed, big = 8 << 20;

  if (!have_python ())
    {
      g_test_skip ("needs /usr/bin/python3");
      return;
    }
  denied = host_socket ("127.0.0.2", SOCK_DGRAM, &denied_port);
  allowed = host_socket ("127.0.0.1", SOCK_DGRAM, &allowed_port);
  /* Not every datagram need be kept; one to the denied address is enough. */
  setsockopt (denied, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  setsockopt (allowed, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  args = g_strdup_printf ("127.0.0.2 %u 127.0.0.1 %u 3000", denied_port, allowed_port);
  out = egress_run_py ("127.0.0.1", "/usr/bin/python3", egress_send_race_py, args);
  to_denied = host_arrivals (denied, SOCK_DGRAM);
  to_allowed = host_arrivals (allowed, SOCK_DGRAM);
  g_test_message ("datagrams to the denied address: %u, to the allowed one: %u", to_denied, to_allowed);
  close (denied);
  close (allowed);
  g_assert_cmpuint (to_denied, ==, 0);
  g_assert_cmpuint (to_allowed, >, 0);
  g_assert_cmpstr (out, ==,
                   "sendto sent True refused True other 0\n"
                   "sendmsg sent True refused True other 0\n"
                   "sendmsg-name sent True refused True other 0\n"
                   "sendmmsg sent True refused True other 0\n"
                   "swap sent 0\n");
}

/* Control for egress-send-race: the sends pid 1 now makes for a command
 * (with egress rules) keep what the kernel's own do. A 60,000-byte
 * datagram arrives whole; sendmsg() gathers its iovecs; sendmmsg()
 * returns 3 and writes each msg_len; SCM_RIGHTS passes the command's own
 * descriptor (a bad one: EBADF, and so is every number below 64 the
 * command has not open, though pid 1 has some: never one of pid 1's); an 8 MiB sendmsg() loop on a full
 * blocking UNIX stream socket, under a SIGALRM every millisecond,
 * delivers every byte exactly once, 5 times over (a send pid 1 made whose
 * answer the signal overtook was sent again when the call started
 * again: 1 round in 2 had a chunk twice); a full non-blocking one says EAGAIN; a closed
 * peer gives EPIPE, and SIGPIPE kills a process that asked for it; TCP
 * Fast Open's sendto() to the allowed address carries its data. */
static const char egress_send_semantics_py[] =
  "import array, ctypes, hashlib, os, signal, socket, struct, subprocess, sys, threading, time\n"
  "libc = ctypes.CDLL(None, use_errno=True)\n"
  "A = '127.0.0.1'\n"
  "# a datagram arrives whole\n"
  "u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
  "u.bind((A, 0))\n"
  "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
  "big = os.urandom(60000)\n"
  "s.sendto(big, u.getsockname())\n"
  "print('sendto', u.recv(65536) == big)\n"
  "s.sendmsg([b'a', b'bc', b'def'], [], 0, u.getsockname())\n"
  "print('sendmsg', u.recv(100))\n"
  "# sendmmsg: three messages, each msg_len written back\n"
  "name = struct.pack('=H', socket.AF_INET) + struct.pack('!H', u.getsockname()[1]) + socket.inet_aton(A) + bytes(8)\n"
  "bufs = [ctypes.create_string_buffer(b'x' * n) for n in (1, 2, 3)]\n"
  "nb = ctypes.create_string_buffer(name)\n"
  "iovs = (ctypes.c_uint64 * 6)(*sum([[ctypes.addressof(b), n] for b, n in zip(bufs, (1, 2, 3))], []))\n"
  "vec = ctypes.create_string_buffer(64 * 3)\n"
  "for i in range(3):\n"
  "    struct.pack_into('=QI4xQQQQi4xI4x', vec, 64 * i, ctypes.addressof(nb), 16, ctypes.addressof(iovs) + 16 * i, 1, 0, 0, 0, 99)\n"
  "r = libc.sendmmsg(s.fileno(), vec, 3, 0)\n"
  "print('sendmmsg', r, [struct.unpack_from('=I', vec, 64 * i + 56)[0] for i in range(3)], [len(u.recv(10)) for i in range(3)])\n"
  "# SCM_RIGHTS: a pipe's end passed on a socketpair, the peer writes to it\n"
  "a, b = socket.socketpair()\n"
  "rd, wr = os.pipe()\n"
  "a.sendmsg([b'fd'], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array('i', [wr]))])\n"
  "msg, anc, flags, addr = b.recvmsg(10, socket.CMSG_SPACE(4))\n"
  "fd = array.array('i', anc[0][2])[0]\n"
  "os.write(fd, b'through')\n"
  "print('scm_rights', msg, os.read(rd, 100))\n"
  "# a bad descriptor\n"
  "try:\n"
  "    a.sendmsg([b'fd'], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array('i', [999]))])\n"
  "    print('badfd sent')\n"
  "except OSError as e:\n"
  "    print('badfd errno', e.errno)\n"
  "res = set()\n"
  "for n in range(3, 64):\n"
  "    try:\n"
  "        os.fstat(n)\n"
  "        continue\n"
  "    except OSError:\n"
  "        pass\n"
  "    try:\n"
  "        a.sendmsg([b'fd'], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array('i', [n]))])\n"
  "        res.add('sent')\n"
  "    except OSError as e:\n"
  "        res.add(e.errno)\n"
  "print('not-mine', sorted(res))\n"
  "# a full non-blocking socket: EAGAIN\n"
  "a, b = socket.socketpair()\n"
  "a.setblocking(False)\n"
  "try:\n"
  "    while True:\n"
  "        a.sendmsg([b'x' * 65536])\n"
  "except BlockingIOError:\n"
  "    print('nonblocking EAGAIN')\n"
  "# EPIPE, and SIGPIPE without MSG_NOSIGNAL\n"
  "a, b = socket.socketpair()\n"
  "b.close()\n"
  "try:\n"
  "    a.sendmsg([b'x'])\n"
  "except OSError as e:\n"
  "    print('epipe', e.errno)\n"
  "p = subprocess.run([sys.executable, '-c', 'import signal, socket\\nsignal.signal(signal.SIGPIPE, signal.SIG_DFL)\\na, b = socket.socketpair()\\nb.close()\\na.sendmsg([b\"x\"])'])\n"
  "print('sigpipe', p.returncode)\n"
  "# TCP Fast Open's sendto carries the data to the allowed address\n"
  "L = socket.socket()\n"
  "L.bind((A, 0))\n"
  "L.listen(1)\n"
  "c = socket.socket()\n"
  "c.sendto(b'hello', 0x20000000, L.getsockname())\n"
  "conn, _ = L.accept()\n"
  "print('fastopen', conn.recv(10))\n"
;

static void
test_egress_send_semantics (void)
{
  g_autofree char *out = NULL, *expected = NULL;

  if (!have_python ())
    {
      g_test_skip ("needs /usr/bin/python3");
      return;
    }
  out = egress_run_py ("127.0.0.1", "/usr/bin/python3", egress_send_semantics_py, NULL);
  expected = g_strdup_printf ("sendto True\nsendmsg b'abcdef'\nsendmmsg 3 [1, 2, 3] [1, 2, 3]\n"
                              "scm_rights b'fd' b'through'\nbadfd errno %d\nnot-mine [%d]\n"
                              "nonblocking EAGAIN\nepipe %d\nsigpipe %d\nfastopen b'hello'\n",
                              EBADF, EBADF, EPIPE, -SIGPIPE);
  g_assert_cmpstr (out, ==, expected);
}

/* A blocking stream send longer than the socket's buffer, interrupted by
 * a SIGALRM every millisecond, 5 times over: every byte must arrive once.
 * With egress rules pid 1 makes the send. Before session sec24 a signal
 * could end the command's wait after pid 1 had sent, even after the
 * kernel had accepted pid 1's answer (which the interrupted call then
 * drops), and the call made again sent the data a second time; or a
 * worker descheduled past pid 1's bounded wait did: 21 of 250 runs
 * under CPU load lost or repeated data. Now the wait is killable only
 * (SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV) and the worker ends it for a
 * signal only before it sends. */
static const char egress_send_restart_py[] =
  "import hashlib, os, signal, socket, threading, time\n"
  "# a blocking stream send longer than the buffer, interrupted by signals: every byte once\n"
  "signal.signal(signal.SIGALRM, lambda *x: None)\n"
  "ok = True\n"
  "calls = 0\n"
  "for round in range(5):\n"
  "    a, b = socket.socketpair()\n"
  "    data = os.urandom(8 << 20)\n"
  "    got = []\n"
  "    def reader():\n"
  "        time.sleep(0.1)\n"
  "        h = hashlib.sha256()\n"
  "        n = 0\n"
  "        while True:\n"
  "            c = b.recv(1 << 20)\n"
  "            if not c:\n"
  "                break\n"
  "            h.update(c)\n"
  "            n += len(c)\n"
  "        got.extend([h.hexdigest(), n])\n"
  "    signal.setitimer(signal.ITIMER_REAL, 0.001, 0.001)\n"
  "    t = threading.Thread(target=reader)\n"
  "    t.start()\n"
  "    view = memoryview(data)\n"
  "    while view:\n"
  "        n = a.sendmsg([view])\n"
  "        view = view[n:]\n"
  "        calls += 1\n"
  "    signal.setitimer(signal.ITIMER_REAL, 0, 0)\n"
  "    a.close()\n"
  "    t.join()\n"
  "    if got[0] != hashlib.sha256(data).hexdigest():\n"
  "        ok = False\n"
  "        print('round', round, 'received', got[1], 'of', len(data))\n"
  "print('stream', ok, calls > 5)\n"

;

static void
test_egress_send_restart (void)
{
  g_autofree char *out = NULL;

  if (!have_python ())
    {
      g_test_skip ("needs /usr/bin/python3");
      return;
    }
  out = egress_run_py ("127.0.0.1", "/usr/bin/python3", egress_send_restart_py, NULL);
  g_assert_cmpstr (out, ==, "stream True True\n");
}

/* Control for egress-send-restart: pid 1's answer to a call it took can
 * no longer be lost to a signal (the command's wait in it is killable
 * only), so the workers that make blocking calls must end them for a
 * signal the command handles, as the kernel's own call would end: a
 * blocking send on a full socket nobody reads, a blocking connect() to a
 * UNIX listener whose backlog is full, and a blocking send whose reader
 * is slow, each interrupted by a SIGALRM handler (which raises, or only
 * counts while the send goes on: every byte once, each call's count
 * right); and a SIGSTOP stops a process waiting in a blocking send (it
 * goes on after SIGCONT). Without the workers' watch, the first two would
 * wait forever and the process would not stop. With the old helper the
 * connect() made again after the interrupted one waited forever: pid 1's
 * worker had gone on connecting the socket meanwhile. */
static const char egress_signal_interrupts_py[] =
  "import hashlib, os, signal, socket, threading, time\n"
  "class Alarm(Exception):\n"
  "    pass\n"
  "def boom(*x):\n"
  "    raise Alarm()\n"
  "signal.signal(signal.SIGALRM, boom)\n"
  "a, b = socket.socketpair()\n"
  "try:\n"
  "    while True:\n"
  "        signal.setitimer(signal.ITIMER_REAL, 0.2)\n"
  "        a.sendmsg([b'x' * 65536])\n"
  "        signal.setitimer(signal.ITIMER_REAL, 0)\n"
  "except Alarm:\n"
  "    print('send interrupted')\n"
  "path = '/tmp/l.sock'\n"
  "L = socket.socket(socket.AF_UNIX)\n"
  "L.bind(path)\n"
  "L.listen(0)\n"
  "c1 = socket.socket(socket.AF_UNIX)\n"
  "c1.connect(path)\n"
  "c2 = socket.socket(socket.AF_UNIX)\n"
  "signal.setitimer(signal.ITIMER_REAL, 0.2)\n"
  "try:\n"
  "    c2.connect(path)\n"
  "    print('connect returned')\n"
  "except Alarm:\n"
  "    print('connect interrupted')\n"
  "L.accept()\n"
  "c2.connect(path)\n"
  "print('connect again')\n"
  "# a handler that returns: the send goes on, every byte once\n"
  "handled = [0]\n"
  "signal.signal(signal.SIGALRM, lambda *x: handled.__setitem__(0, handled[0] + 1))\n"
  "a, b = socket.socketpair()\n"
  "data = os.urandom(4 << 20)\n"
  "got = []\n"
  "def reader():\n"
  "    h = hashlib.sha256()\n"
  "    while True:\n"
  "        time.sleep(0.01)\n"
  "        c = b.recv(65536)\n"
  "        if not c:\n"
  "            break\n"
  "        h.update(c)\n"
  "    got.append(h.hexdigest())\n"
  "t = threading.Thread(target=reader)\n"
  "t.start()\n"
  "signal.setitimer(signal.ITIMER_REAL, 0.02, 0.02)\n"
  "view = memoryview(data)\n"
  "while view:\n"
  "    n = a.send(view)\n"
  "    assert 0 < n <= len(view), n\n"
  "    view = view[n:]\n"
  "signal.setitimer(signal.ITIMER_REAL, 0, 0)\n"
  "a.close()\n"
  "t.join()\n"
  "print('slow reader', got[0] == hashlib.sha256(data).hexdigest(), handled[0] > 5)\n"
  "# SIGSTOP stops a process waiting in a blocking send; it goes on after SIGCONT\n"
  "a, b = socket.socketpair()\n"
  "pid = os.fork()\n"
  "if pid == 0:\n"
  "    view = memoryview(b'z' * (4 << 20))\n"
  "    while view:\n"
  "        view = view[a.send(view):]\n"
  "    os._exit(0)\n"
  "a.close()\n"
  "time.sleep(0.3)\n"
  "os.kill(pid, signal.SIGSTOP)\n"
  "def state():\n"
  "    return open('/proc/%d/stat' % pid).read().rsplit(')', 1)[1].split()[0]\n"
  "for i in range(1000):\n"
  "    if state() == 'T':\n"
  "        break\n"
  "    time.sleep(0.01)\n"
  "print('stopped', state())\n"
  "os.kill(pid, signal.SIGCONT)\n"
  "n = 0\n"
  "while True:\n"
  "    c = b.recv(1 << 20)\n"
  "    if not c:\n"
  "        break\n"
  "    n += len(c)\n"
  "print('received', n == 4 << 20, os.waitpid(pid, 0)[1])\n"
;

static void
test_egress_signal_interrupts (void)
{
  g_autofree char *out = NULL;

  if (!have_python ())
    {
      g_test_skip ("needs /usr/bin/python3");
      return;
    }
  /* A call left waiting would hang: the timeout ends the script. */
  out = egress_run_py ("127.0.0.1", "timeout 20 /usr/bin/python3 -u", egress_signal_interrupts_py, NULL);
  g_assert_cmpstr (out, ==, "send interrupted\nconnect interrupted\nconnect again\nslow reader True True\n"
                   "stopped T\nreceived True 0\n");
}

/* A blocking TCP Fast Open sendto() that a signal interrupts while it
 * connects (the listener's accept queue full, so the SYN waits for its
 * retransmission), with egress rules: pid 1's worker makes it. As with
 * the kernel's own: a handler that raises ends the call and no data is
 * sent on that connection; a handler that returns has Python make the
 * call again, which waits for the connection and sends the data once.
 * The old helper went on sending in the worker: the data arrived after
 * the call said it was interrupted, and the call made again failed
 * (EALREADY) although the data went. */
static const char egress_fastopen_interrupted_py[] =
  "import signal, socket, sys, threading, time\n"
  "MSG_FASTOPEN = 0x20000000\n"
  "class Alarm(Exception):\n"
  "    pass\n"
  "for mode in ('raise', 'return'):\n"
  "    def handler(*x):\n"
  "        if mode == 'raise':\n"
  "            raise Alarm()\n"
  "    signal.signal(signal.SIGALRM, handler)\n"
  "    L = socket.socket()\n"
  "    L.bind(('127.0.0.1', 0))\n"
  "    L.listen(0)\n"
  "    c1 = socket.socket()\n"
  "    c1.connect(L.getsockname())\n"
  "    time.sleep(0.1)\n"
  "    c2 = socket.socket()\n"
  "    t = threading.Thread(target=lambda: (time.sleep(0.6), L.accept()))\n"
  "    t.start()\n"
  "    signal.setitimer(signal.ITIMER_REAL, 0.2)\n"
  "    try:\n"
  "        print(mode, 'sendto', c2.sendto(b'hello', MSG_FASTOPEN, L.getsockname()), end=' ')\n"
  "    except Alarm:\n"
  "        print(mode, 'interrupted', end=' ')\n"
  "    except OSError as e:\n"
  "        print(mode, 'errno', e.errno, end=' ')\n"
  "    t.join()\n"
  "    s, _ = L.accept()\n"
  "    s.settimeout(3)\n"
  "    got = b''\n"
  "    try:\n"
  "        while True:\n"
  "            c = s.recv(100)\n"
  "            if not c:\n"
  "                break\n"
  "            got += c\n"
  "    except socket.timeout:\n"
  "        pass\n"
  "    print('received', got)\n"
  "    sys.stdout.flush()\n"
;

static void
test_egress_fastopen_interrupted (void)
{
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autofree char *quoted = g_shell_quote (egress_fastopen_interrupted_py);
  g_autofree char *script = NULL, *native = NULL, *out = NULL;
  SandboxInstance *instance;

  if (!have_python ())
    {
      g_test_skip ("needs /usr/bin/python3");
      return;
    }
  /* The kernel's own answer: the same script without egress rules (the
   * kernel sends), then with them (pid 1 sends). */
  sandbox_spec_set_network (spec, TRUE);
  instance = create (spec);
  script = g_strdup_printf ("P=%s; timeout 20 /usr/bin/python3 -u -c \"$P\" 2>&1", quoted);
  native = sh (instance, script, NULL);
  g_test_message ("without rules: %s", native);
  destroy (instance);
  g_assert_cmpstr (native, ==, "raise interrupted received b''\nreturn sendto 5 received b'hello'\n");

  out = egress_run_py ("127.0.0.1", "timeout 20 /usr/bin/python3 -u", egress_fastopen_interrupted_py, NULL);
  g_assert_cmpstr (out, ==, native);
}

/* Runs ARGV (a program on PATH) to its end; whether it succeeded. */
static gboolean
run_program (const char * const *argv)
{
  int status = -1;

  return g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL,
                       NULL, NULL, NULL, NULL, &status, NULL) &&
         g_spawn_check_wait_status (status, NULL);
}

/* With egress rules, pid 1 checks each destination a command names; but
 * an IPv6 routing header on the socket (setsockopt IPV6_RTHDR: a segment
 * routing header needs no capability) makes the kernel send every packet
 * to the header's next address first. Under "deny all but ::1", a
 * datagram and a TCP SYN for ::1 went to the denied fd00:5ec::2 (seen on
 * lo; a host there gets them whether it routes them on or not). Now the
 * header is refused (EPERM), and a routing header given to one sendmsg()
 * (a type 2 one, where the kernel has Mobile IPv6) is refused by pid 1
 * (EACCES): nothing reaches the denied address. Run in a network
 * namespace of its own, on whose lo the denied address is made; control:
 * the datagram for ::1 is sent. */
static void
test_egress_routing_header (void)
{
  static const char probe[] =
    "import socket\n"
    "D = 'fd00:5ec::2'\n"
    "def r(f):\n"
    "    try:\n"
    "        f()\n"
    "        return 'ok'\n"
    "    except OSError as e:\n"
    "        return 'errno %s' % e.errno\n"
    "srh = bytes([17, 4, 4, 1, 1, 0, 0, 0]) + socket.inet_pton(socket.AF_INET6, '::1') + "
    "socket.inet_pton(socket.AF_INET6, D)\n"
    "s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)\n"
    "print('direct', r(lambda: s.sendto(b'direct', (D, 9))))\n"
    "print('srh', r(lambda: s.setsockopt(41, 57, srh)))\n"
    "print('udp', r(lambda: s.sendto(b'exfil', ('::1', 9))))\n"
    "t = socket.socket(socket.AF_INET6)\n"
    "t.settimeout(2)\n"
    "print('srh-tcp', r(lambda: t.setsockopt(41, 57, srh)))\n"
    "r(lambda: t.connect(('::1', 9)))\n"
    "u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)\n"
    "rh2 = bytes([17, 2, 2, 1, 0, 0, 0, 0]) + socket.inet_pton(socket.AF_INET6, D)\n"
    "print('cmsg', r(lambda: u.sendmsg([b'exfil2'], [(41, 57, rh2)], 0, ('::1', 9))))\n";

  if (g_test_subprocess ())
    {
      const char * const up[] = { "ip", "link", "set", "lo", "up", NULL };
      const char * const add[] = { "ip", "-6", "addr", "add", "fd00:5ec::2/128", "dev", "lo", "nodad", NULL };
      struct sockaddr_ll ll = { .sll_family = AF_PACKET, .sll_protocol = htons (ETH_P_ALL) };
      g_autofree char *out = NULL;
      struct in6_addr denied;
      guint to_denied = 0, to_allowed = 0;
      guint8 buf[2048];
      ssize_t n;
      int cap;

      g_assert_cmpint (unshare (CLONE_NEWNET), ==, 0);
      g_assert_true (run_program (up));
      g_assert_true (run_program (add));
      g_assert_cmpint (inet_pton (AF_INET6, "fd00:5ec::2", &denied), ==, 1);
      cap = socket (AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons (ETH_P_ALL));
      g_assert_cmpint (cap, >=, 0);
      ll.sll_ifindex = (int) if_nametoindex ("lo");
      g_assert_cmpint (bind (cap, (struct sockaddr *) &ll, sizeof ll), ==, 0);

      out = egress_run_py ("::1", "/usr/bin/python3", probe, NULL);
      /* Every IPv6 packet lo carried meanwhile (each is seen twice). */
      while ((n = recv (cap, buf, sizeof buf, 0)) > 0)
        if (n >= 14 + 40 && (buf[14] >> 4) == 6)
          {
            if (memcmp (buf + 14 + 24, &denied, 16) == 0)
              to_denied++;
            else if (memcmp (buf + 14 + 24, &in6addr_loopback, 16) == 0)
              to_allowed++;
          }
      close (cap);
      g_test_message ("packets to the denied address: %u, to ::1: %u", to_denied, to_allowed);
      g_assert_cmpuint (to_denied, ==, 0);
      g_assert_cmpuint (to_allowed, >, 0);
      g_assert_cmpstr (out, ==, "direct errno 13\nsrh errno 1\nudp ok\nsrh-tcp errno 1\ncmsg errno 13\n");
      return;
    }
  if (geteuid () != 0 || !have_python ())
    {
      g_test_skip ("needs root (a network namespace, a packet socket) and /usr/bin/python3");
      return;
    }
  {
    g_autofree char *ip = g_find_program_in_path ("ip");

    if (ip == NULL)
      {
        g_test_skip ("needs ip(8)");
        return;
      }
  }
  g_test_trap_subprocess (NULL, 120 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_test_trap_assert_passed ();
}

typedef struct
{
  int           listener;
  volatile gint stop;
} MptcpServer;

/* Accepts the host's side of each MPTCP connection, and keeps it. */
static gpointer
mptcp_accept_thread (gpointer data)
{
  MptcpServer *server = data;
  GPtrArray *kept = g_ptr_array_new ();

  while (!g_atomic_int_get (&server->stop))
    {
      int fd = accept4 (server->listener, NULL, NULL, SOCK_CLOEXEC);

      if (fd >= 0)
        g_ptr_array_add (kept, GINT_TO_POINTER (fd));
      else
        g_usleep (10000);
    }
  for (guint i = 0; i < kept->len; i++)
    close (GPOINTER_TO_INT (g_ptr_array_index (kept, i)));
  g_ptr_array_free (kept, TRUE);
  return NULL;
}

/* With egress rules, pid 1 checks the address each connect() names; but
 * an MPTCP connection (socket(..., IPPROTO_MPTCP)) adds subflows of its
 * own, made by the kernel: where the namespace accepts the addresses a
 * peer announces (ip mptcp limits add_addr_accepted, 0 by default), a
 * server reached at the allowed 127.0.0.1 that announces 127.0.0.2 had the
 * sandbox's kernel join it there too (a SYN and data to the denied
 * address, seen on lo). Now a sandbox with the network cannot make an
 * MPTCP socket (EPROTONOSUPPORT, as a kernel without MPTCP says, so
 * programs fall back to TCP). Control: TCP to 127.0.0.1 goes through. */
static void
test_egress_mptcp (void)
{
  static const char probe[] =
    "import socket, time\n"
    "def r(f):\n"
    "    try:\n"
    "        f()\n"
    "        return 'ok'\n"
    "    except OSError as e:\n"
    "        return 'errno %s' % e.errno\n"
    "def mptcp():\n"
    "    m = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262)\n"
    "    m.connect(('127.0.0.1', 7777))\n"
    "    m.send(b'x')\n"
    "    time.sleep(1.5)\n"
    "    m.send(b'y')\n"
    "    time.sleep(0.5)\n"
    "print('mptcp', r(mptcp))\n"
    "t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n"
    "print('tcp', r(lambda: t.connect(('127.0.0.1', 7777))))\n";

  if (g_test_subprocess ())
    {
      const char * const up[] = { "ip", "link", "set", "lo", "up", NULL };
      const char * const limits[] = { "ip", "mptcp", "limits", "set", "add_addr_accepted", "2",
                                      "subflows", "2", NULL };
      const char * const endpoint[] = { "ip", "mptcp", "endpoint", "add", "127.0.0.2", "signal", NULL };
      struct sockaddr_ll ll = { .sll_family = AF_PACKET, .sll_protocol = htons (ETH_P_ALL) };
      struct sockaddr_in any = { .sin_family = AF_INET, .sin_port = htons (7777) };
      g_autofree char *out = NULL;
      MptcpServer server = { -1, 0 };
      GThread *thread;
      guint to_denied = 0, to_allowed = 0;
      guint8 buf[2048];
      ssize_t n;
      int cap, one = 1;

      g_assert_cmpint (unshare (CLONE_NEWNET), ==, 0);
      g_assert_true (run_program (up));
      g_assert_true (run_program (limits));
      g_assert_true (run_program (endpoint));
      server.listener = socket (AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 262);
      g_assert_cmpint (server.listener, >=, 0);
      g_assert_cmpint (setsockopt (server.listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one), ==, 0);
      g_assert_cmpint (bind (server.listener, (struct sockaddr *) &any, sizeof any), ==, 0);
      g_assert_cmpint (listen (server.listener, 16), ==, 0);
      thread = g_thread_new ("mptcp-accept", mptcp_accept_thread, &server);
      cap = socket (AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons (ETH_P_ALL));
      g_assert_cmpint (cap, >=, 0);
      ll.sll_ifindex = (int) if_nametoindex ("lo");
      g_assert_cmpint (bind (cap, (struct sockaddr *) &ll, sizeof ll), ==, 0);

      out = egress_run_py ("127.0.0.1", "/usr/bin/python3", probe, NULL);
      g_atomic_int_set (&server.stop, 1);
      g_thread_join (thread);
      close (server.listener);
      /* Every IPv4 TCP packet for port 7777 that lo carried meanwhile. */
      while ((n = recv (cap, buf, sizeof buf, 0)) > 0)
        if (n >= 14 + 20 + 4 && (buf[14] >> 4) == 4 && buf[14 + 9] == IPPROTO_TCP)
          {
            guint ihl = (buf[14] & 15) * 4;

            if (n < 14 + ihl + 4 || buf[14 + ihl + 2] != 7777 >> 8 || buf[14 + ihl + 3] != (7777 & 0xff))
              continue;
            if (memcmp (buf + 14 + 16, "\x7f\x00\x00\x02", 4) == 0)
              to_denied++;
            else if (memcmp (buf + 14 + 16, "\x7f\x00\x00\x01", 4) == 0)
              to_allowed++;
          }
      close (cap);
      g_test_message ("packets to the denied address: %u, to 127.0.0.1: %u", to_denied, to_allowed);
      g_assert_cmpuint (to_denied, ==, 0);
      g_assert_cmpuint (to_allowed, >, 0);
      g_assert_cmpstr (out, ==, "mptcp errno 93\ntcp ok\n");
      return;
    }
  if (geteuid () != 0 || !have_python ())
    {
      g_test_skip ("needs root (a network namespace, a packet socket) and /usr/bin/python3");
      return;
    }
  {
    const char * const show[] = { "ip", "mptcp", "limits", "show", NULL };
    int probe_fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 262);

    if (probe_fd >= 0)
      close (probe_fd);
    if (probe_fd < 0 || !run_program (show))
      {
        g_test_skip ("needs MPTCP in the kernel (net.mptcp.enabled) and ip(8) that knows it");
        return;
      }
  }
  g_test_trap_subprocess (NULL, 120 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_test_trap_assert_passed ();
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
  signal (SIGPIPE, SIG_IGN);

  g_test_add_func ("/local/attack/uid", test_uid);
  g_test_add_func ("/local/attack/proc-sys", test_proc_sys);
  g_test_add_func ("/local/attack/root-only-proc", test_root_only_proc);
  g_test_add_func ("/local/attack/root-secrets", test_root_secrets);
  g_test_add_func ("/local/attack/prlimit-pid1", test_prlimit_pid1);
  g_test_add_func ("/local/attack/mount", test_mount);
  g_test_add_func ("/local/attack/mount-path-links", test_mount_path_links);
  g_test_add_func ("/local/attack/image-sys-link", test_image_sys_link);
  g_test_add_func ("/local/attack/volumes-hidden", test_volumes_hidden);
  g_test_add_func ("/local/attack/ptrace-host", test_ptrace_host);
  g_test_add_func ("/local/attack/signal-host", test_signal_host);
  g_test_add_func ("/local/attack/sparse-download", test_sparse_download);
  g_test_add_func ("/local/attack/hardlink-download", test_hardlink_download);
  g_test_add_func ("/local/attack/name-escapes", test_name_escapes);
  g_test_add_func ("/local/attack/archive-stderr-escapes", test_archive_stderr_escapes);
  g_test_add_func ("/local/attack/fifo-destination", test_fifo_destination);
  g_test_add_func ("/local/attack/download-stream-destination", test_download_stream_destination);
  g_test_add_func ("/local/attack/download-proc-self-swap", test_download_proc_self_swap);
  g_test_add_func ("/local/attack/egress-send-restart", test_egress_send_restart);
  g_test_add_func ("/local/attack/egress-signal-interrupts", test_egress_signal_interrupts);
  g_test_add_func ("/local/attack/egress-fastopen-interrupted", test_egress_fastopen_interrupted);
  g_test_add_func ("/local/attack/copy-parent-link", test_copy_parent_link);
  g_test_add_func ("/local/attack/fifo-upload-source", test_fifo_upload_source);
  g_test_add_func ("/local/attack/stopped-file-service", test_stopped_file_service);
  g_test_add_func ("/local/attack/signal-commands", test_signal_commands);
  g_test_add_func ("/local/attack/stop-spawner", test_stop_spawner);
  g_test_add_func ("/local/attack/spawner-killed-with-request", test_spawner_killed_with_request);
  g_test_add_func ("/local/attack/deep-tree", test_deep_tree);
  g_test_add_func ("/local/attack/line-discipline", test_line_discipline);
  g_test_add_func ("/local/attack/module-autoload", test_module_autoload);
  g_test_add_func ("/local/attack/memory-tmpfs", test_memory_tmpfs);
  g_test_add_func ("/local/attack/memory-on-tmpfs-root", test_memory_on_tmpfs_root);
  g_test_add_func ("/local/attack/memory-tmpfs-total", test_memory_tmpfs_total);
  g_test_add_func ("/local/attack/root-read-only", test_root_read_only);
  g_test_add_func ("/local/attack/limits-as-root", test_limits_as_root);
  g_test_add_func ("/local/attack/host-fifo", test_host_fifo);
  g_test_add_func ("/local/attack/setid-files", test_setid_files);
  g_test_add_func ("/local/attack/mount-no-links", test_mount_no_links);
  g_test_add_func ("/local/attack/connect-worker", test_connect_worker);
  g_test_add_func ("/local/attack/host-unix-sockets", test_host_unix_sockets);
  g_test_add_func ("/local/attack/host-unix-sockets-world-writable", test_host_unix_sockets_world_writable);
  g_test_add_func ("/local/attack/host-unix-sockets-anywhere", test_host_unix_sockets_anywhere);
  g_test_add_func ("/local/attack/unix-raw-datagram", test_unix_raw_datagram);
  g_test_add_func ("/local/attack/netlink-usersock", test_netlink_usersock);
  g_test_add_func ("/local/attack/own-sockets", test_own_sockets);
  g_test_add_func ("/local/attack/host-home", test_host_home);
  g_test_add_func ("/local/attack/host-home-unmounted", test_host_home_unmounted);
  g_test_add_func ("/local/attack/sys-last", test_sys_last);
  g_test_add_func ("/local/attack/outlive-destroy", test_outlive_destroy);
  g_test_add_func ("/local/attack/no-route", test_no_route);
  g_test_add_func ("/local/attack/egress-short-address", test_egress_short_address);
  g_test_add_func ("/local/attack/egress-routing-header", test_egress_routing_header);
  g_test_add_func ("/local/attack/egress-send-race", test_egress_send_race);
  g_test_add_func ("/local/attack/egress-send-semantics", test_egress_send_semantics);
  g_test_add_func ("/local/attack/egress-mptcp", test_egress_mptcp);
  g_test_add_func ("/local/attack/reuseport-host", test_reuseport_host);
  g_test_add_func ("/local/attack/reuseaddr-udp-host", test_reuseaddr_udp_host);
  g_test_add_func ("/local/attack/core-dumps", test_core_dumps);
  g_test_add_func ("/local/attack/realtime", test_realtime);
  g_test_add_func ("/local/attack/caller-standing", test_caller_standing);
  g_test_add_func ("/local/attack/host-mount-later", test_host_mount_later);
  g_test_add_func ("/local/attack/pid1-setup-calls", test_pid1_setup_calls);
  g_test_add_func ("/local/attack/file-lease", test_file_lease);
  g_test_add_func ("/local/attack/spawner-secrets", test_spawner_secrets);
  g_test_add_func ("/local/attack/tty-holder-secrets", test_tty_holder_secrets);
  g_test_add_func ("/local/attack/foreign-sandboxes-dir", test_foreign_sandboxes_dir);
  g_test_add_func ("/local/attack/one-shot-command-domain", test_one_shot_command_domain);
  g_test_add_func ("/local/attack/one-shot-same-as-exec", test_one_shot_same_as_exec);

  return g_test_run ();
}
