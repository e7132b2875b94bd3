/* libsandbox - a local (bubblewrap) sandbox
 *
 * An instance is one long-lived bwrap process, started by create: new user,
 * pid, ipc, uts (and, unless the spec asks for the network, net)
 * namespaces; the host's root (or an image root file system) read-only; the
 * instance's work and tmp directories read-write; no capabilities. Its pid 1
 * is sandbox-exec-helper in server mode, listening on DIR/sock (a socket
 * made here and inherited through bwrap). An exec connects, passes its
 * stdin, stdout and stderr, argv, environment (made only of what the spec
 * and the command set) and cwd; the server forks the command inside the
 * namespaces and reports how it ended, so that exit status, signal and exec
 * failures are told apart. Closing the connection kills the command's
 * process group; killing pid 1 ends the whole sandbox.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/magic.h>

#include <glib/gstdio.h>
#include <glib-unix.h>
#include <gio/gunixinputstream.h>
#include <gio/gunixoutputstream.h>

#include "sandbox-local-private.h"
#include "sandbox-private.h"
#include "sandbox-local-wire.h"
#include "sandbox-output-private.h"

#define HELPER_IN_SANDBOX "/run/libsandbox/sandbox-exec-helper"
/* The descriptors bwrap gets. It passes them on to the server, which keeps
 * only the listening socket, the inotify descriptor and the lease: nothing
 * that leads to the host's file systems. */
#define LISTEN_FD 3
#define INFO_FD 4     /* bwrap writes {"child-pid": N} here */
#define READY_FD 5    /* the server writes one byte once it serves */
#define TOKEN_FD 6    /* the sandbox's secret, read once by the server */
#define WATCH_FD 7    /* inotify: the instance directory removed */
#define LEASE_FD 8    /* end-of-file: the owner died (die-with-owner) */
#define SECCOMP_FD 9  /* the seccomp program, read by bwrap */
#define ONCE_FD 10    /* one-shot: the connection of the sandbox's one command */
/* bwrap's own copy of INFO_FD's read end. bwrap writes the child's pid to
 * INFO_FD before it lets the child go on; were we killed in between, the
 * write would find no reader and SIGPIPE would kill bwrap, leaving its child
 * (the sandbox's pid 1 to be) blocked for ever on bwrap's eventfd. With a
 * reader of its own the write succeeds, the child starts the server, and the
 * server ends the sandbox (die-with-owner: the lease) or keeps it (a sandbox
 * that outlives its creator, which `sandboxctl gc` finds). The server closes
 * it with every descriptor it was not meant to keep. */
#define INFO_KEEP_FD 11
#define HIGHEST_CHILD_FD INFO_KEEP_FD
#define TAIL_MAX 4096

struct _SandboxLocalInstance
{
  SandboxInstance  parent_instance;

  LocalConfig     *config;
  /* One-shot (a sandbox made for one command, _sandbox_local_instance_start
   * with ONCE): our end of the connection that pid 1 got at start. The
   * first exec uses it instead of connecting; the sandbox ends with that
   * command. -1 otherwise. */
  int              once_conn;
  /* That command's connection reached end-of-file after its status: pid 1
   * has killed and reaped everything and is on its way out. */
  gboolean         once_ended;
  /* Sent at start (see exec_send): our ends of that command's stdin,
   * stdout and stderr pipes, or -1 each. */
  int              once_ends[3];
};

G_DEFINE_FINAL_TYPE (SandboxLocalInstance, sandbox_local_instance, SANDBOX_TYPE_INSTANCE)

SandboxInstance *
_sandbox_local_instance_new (SandboxLocalBackend *backend,
                             LocalConfig         *config)
{
  SandboxLocalInstance *self;

  self = g_object_new (SANDBOX_TYPE_LOCAL_INSTANCE,
                       "id", config->id,
                       "backend", backend,
                       "state", _local_is_paused (config) ? SANDBOX_INSTANCE_STATE_STOPPED
                                                          : SANDBOX_INSTANCE_STATE_RUNNING,
                       NULL);
  self->config = config;
  self->once_conn = -1;
  for (guint i = 0; i < 3; i++)
    self->once_ends[i] = -1;
  sandbox_instance_set_labels (SANDBOX_INSTANCE (self), config->labels);
  return SANDBOX_INSTANCE (self);
}

LocalConfig *
_sandbox_local_instance_get_config (SandboxLocalInstance *self)
{
  return self->config;
}

static SandboxLocalBackend *
get_backend (SandboxLocalInstance *self)
{
  return SANDBOX_LOCAL_BACKEND (sandbox_instance_get_backend (SANDBOX_INSTANCE (self)));
}

/* Whether the sandbox's time to live (the spec's timeout) is over: pid 1
 * ends the sandbox then, under any command still running. */
static gboolean
reached_time_limit (LocalConfig *config)
{
  return config->expires != 0 && g_get_real_time () / G_USEC_PER_SEC >= config->expires;
}

static GError *
time_limit_error (LocalConfig *config,
                  const char  *program,
                  gboolean     started)
{
  if (!started)
    return g_error_new (SANDBOX_ERROR, SANDBOX_ERROR_TIMEOUT,
                        _("The local sandbox %s reached its time limit (%d s, the "
                          "spec's timeout) before the command “%s” could start: its "
                          "processes were killed. Give the sandbox a longer timeout (sandboxctl "
                          "--timeout), or none."),
                        config->id, (int) (config->expires - config->created), program);
  return g_error_new (SANDBOX_ERROR, SANDBOX_ERROR_TIMEOUT,
                      _("The local sandbox %s reached its time limit (%d s, the "
                        "spec's timeout) while the command “%s” was running: its "
                        "processes were killed. Give the sandbox a longer timeout (sandboxctl "
                        "--timeout), or none."),
                      config->id, (int) (config->expires - config->created), program);
}

static gboolean
instance_gone (SandboxLocalInstance  *self,
               GError               **error)
{
  g_autofree char *state = g_build_filename (self->config->dir, "instance.json", NULL);

  if (g_file_test (state, G_FILE_TEST_EXISTS))
    return FALSE;
  sandbox_instance_set_state (SANDBOX_INSTANCE (self), SANDBOX_INSTANCE_STATE_DESTROYED);
  g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_FOUND,
               _("The local sandbox %s has been destroyed."), self->config->id);
  return TRUE;
}

/* Refuses while the sandbox is paused (by any process), which the state
 * then says. */
static gboolean
check_not_paused (SandboxLocalInstance  *self,
                  GError               **error)
{
  if (_local_check_not_paused (self->config, error))
    return TRUE;
  sandbox_instance_set_state (SANDBOX_INSTANCE (self), SANDBOX_INSTANCE_STATE_STOPPED);
  return FALSE;
}

/* ------------------------------------------------------------------ */
/* Paths of the sandbox, checked from the spec alone: nothing on the    */
/* host is looked at (the sandbox resolves its paths itself, see Files) */

typedef struct
{
  const char *sandbox;
  gboolean    writable;
} Bind;

static gboolean
is_under (const char *path,
          const char *prefix)
{
  gsize len = strlen (prefix);

  if (strcmp (prefix, "/") == 0)
    return TRUE;
  return strncmp (path, prefix, len) == 0 && (path[len] == '\0' || path[len] == '/');
}

/* Most specific first. */
static GArray *
collect_binds (LocalConfig *config)
{
  GArray *binds = g_array_new (FALSE, TRUE, sizeof (Bind));
  Bind bind;

  for (guint i = config->mounts->len; i > 0; i--)
    {
      SandboxMount *mount = g_ptr_array_index (config->mounts, i - 1);

      bind = (Bind) { sandbox_mount_get_sandbox_path (mount), !sandbox_mount_get_read_only (mount) };
      g_array_append_val (binds, bind);
    }
  bind = (Bind) { config->workdir, TRUE };
  g_array_append_val (binds, bind);
  bind = (Bind) { "/tmp", TRUE };
  g_array_append_val (binds, bind);
  bind = (Bind) { "/", FALSE };
  g_array_append_val (binds, bind);

  /* Longest sandbox path first, so that nested binds win. */
  for (guint i = 1; i < binds->len; i++)
    for (guint j = i; j > 0; j--)
      {
        Bind *a = &g_array_index (binds, Bind, j - 1);
        Bind *b = &g_array_index (binds, Bind, j);

        if (strlen (a->sandbox) < strlen (b->sandbox))
          {
            Bind t = *a;
            *a = *b;
            *b = t;
          }
      }
  return binds;
}

/* Checks an absolute sandbox path given for a copy, and returns it in
 * canonical form. Refuses the virtual file systems and, for writing, what
 * the spec makes read-only (a link inside the sandbox may still lead a copy
 * elsewhere inside it, where the sandbox's own rights apply). */
static char *
check_path (LocalConfig  *config,
            const char   *path,
            gboolean      for_writing,
            GError      **error)
{
  static const char * const virtual_dirs[] = { "/proc", "/dev", "/sys", "/run", NULL };
  g_autoptr(GArray) binds = NULL;
  g_autofree char *canonical = NULL;

  if (path == NULL || !g_path_is_absolute (path))
    {
      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT,
                   _("“%s” is not an absolute path; paths in a sandbox start with /, "
                     "for example %s/data."), path ? path : "", config->workdir);
      return NULL;
    }
  canonical = g_canonicalize_filename (path, "/");
  if (strlen (canonical) > SBX_PATH_MAX)
    {
      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT,
                   _("The path %s is too long."), canonical);
      return NULL;
    }

  for (guint i = 0; virtual_dirs[i] != NULL; i++)
    if (is_under (canonical, virtual_dirs[i]))
      {
        g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT,
                     _("%s is on a virtual file system of the sandbox and cannot be copied."),
                     canonical);
        return NULL;
      }

  binds = collect_binds (config);
  for (guint i = 0; for_writing && i < binds->len; i++)
    {
      Bind *bind = &g_array_index (binds, Bind, i);

      if (!is_under (canonical, bind->sandbox))
        continue;
      if (!bind->writable)
        {
          g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT,
                       _("%s is read-only in the sandbox. Copy files under the workdir (%s), "
                         "/tmp, or a read-write mount."), canonical, config->workdir);
          return NULL;
        }
      break;
    }
  return g_steal_pointer (&canonical);
}

/* ------------------------------------------------------------------ */
/* The bwrap command line                                              */

static gboolean
is_managed_top (const char *name)
{
  static const char * const managed[] = { "proc", "dev", "sys", "tmp", "run", NULL };

  return g_strv_contains (managed, name);
}

/* The host's home directories, each hidden behind an empty tmpfs
 * (add_home_masks). */
static const char * const home_dirs[] = { "/root", "/home", NULL };

/* Whether the host's root has TARGET (one of home_dirs) as a directory
 * of its own, not a link: then add_home_masks puts a tmpfs on it and
 * add_root binds nothing there. A bind under that tmpfs would show
 * nothing, yet cost bwrap a mount and a pass over the mount table
 * (docs/benchmarks.md, "A sandboxed task, eleventh round"), and leave
 * the host's directory in the sandbox's mount tree, under the tmpfs. */
static gboolean
is_masked_home (const char *target)
{
  return g_strv_contains (home_dirs, target) && g_file_test (target, G_FILE_TEST_IS_DIR) &&
         !g_file_test (target, G_FILE_TEST_IS_SYMLINK);
}

static void
add_root (GPtrArray  *argv,
          const char *root)
{
  g_autoptr(GDir) dir = g_dir_open (root, 0, NULL);
  gboolean host_root = strcmp (root, "/") == 0;
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *host = g_build_filename (root, name, NULL);
      g_autofree char *target = g_build_filename ("/", name, NULL);

      if (host_root && is_masked_home (target))
        continue;

      /* The host's /sys: add_sys, called by build_bwrap_argv. */
      if (host_root && g_strcmp0 (name, "sys") == 0)
        continue;
      if (g_strcmp0 (name, "sys") == 0)
        {
          struct stat st;

          /* bwrap resolves a source on the host: an image's /sys that is a
           * link (to /, /root, ...) would show that host directory. Only
           * the image's own directory is bound. */
          if (lstat (host, &st) != 0 || !S_ISDIR (st.st_mode))
            continue;
          g_ptr_array_add (argv, g_strdup ("--ro-bind"));
          g_ptr_array_add (argv, g_steal_pointer (&host));
          g_ptr_array_add (argv, g_steal_pointer (&target));
          continue;
        }
      if (is_managed_top (name))
        continue;

      if (g_file_test (host, G_FILE_TEST_IS_SYMLINK))
        {
          g_autofree char *link = g_file_read_link (host, NULL);

          if (link == NULL)
            continue;
          g_ptr_array_add (argv, g_strdup ("--symlink"));
          g_ptr_array_add (argv, g_steal_pointer (&link));
        }
      else
        {
          g_ptr_array_add (argv, g_strdup ("--ro-bind"));
          g_ptr_array_add (argv, g_steal_pointer (&host));
        }
      g_ptr_array_add (argv, g_steal_pointer (&target));
    }
}

/* Whether the host directory PATH (the caller's $HOME) can be hidden
 * behind a tmpfs without hiding the system: not /, not a system directory,
 * not under what the sandbox already replaces or masks. */
static gboolean
is_maskable_home (const char *path)
{
  static const char * const system[] = {
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc",
    "/var", "/opt", "/nix", "/snap", "/boot", "/srv", NULL
  };
  static const char * const covered[] = {
    "/root", "/home", "/tmp", "/run", "/proc", "/dev", "/sys", NULL
  };

  if (path == NULL || !g_path_is_absolute (path) || g_strcmp0 (path, "/") == 0 ||
      g_strv_contains (system, path) || !g_file_test (path, G_FILE_TEST_IS_DIR))
    return FALSE;
  for (guint i = 0; covered[i] != NULL; i++)
    if (g_strcmp0 (path, covered[i]) == 0 ||
        (g_str_has_prefix (path, covered[i]) && path[strlen (covered[i])] == '/'))
      return FALSE;
  return TRUE;
}

/* The host's credentials that the caller may read: the sandbox user maps
 * to the caller's uid (and keeps its groups), so it may read them too;
 * when the caller is root, that is every one of them. The password hashes
 * and their backups (shadow-, gshadow-: the same hashes, one change
 * older), old passwords (pam_pwhistory), debconf's stored answers, the
 * SSH host keys; and the directory of TLS private keys. A file the caller
 * cannot read costs no mount. Looked up once per process. */
static const char * const secret_files_candidates[] = {
  "/etc/shadow", "/etc/gshadow", "/etc/shadow-", "/etc/gshadow-",
  "/etc/security/opasswd", "/var/cache/debconf/passwords.dat", NULL
};
static const char * const secret_dirs_candidates[] = { "/etc/ssl/private", NULL };

static void
readable_secrets (const char * const **files,
                  const char * const **dirs)
{
  static char **secret_files, **secret_dirs;

  if (g_once_init_enter (&secret_files))
    {
      g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();
      g_autoptr(GStrvBuilder) dir_builder = g_strv_builder_new ();
      g_autoptr(GDir) ssh = g_dir_open ("/etc/ssh", 0, NULL);
      const char *name;

      for (guint i = 0; secret_files_candidates[i] != NULL; i++)
        if (g_file_test (secret_files_candidates[i], G_FILE_TEST_IS_REGULAR) &&
            access (secret_files_candidates[i], R_OK) == 0)
          g_strv_builder_add (builder, secret_files_candidates[i]);
      while (ssh != NULL && (name = g_dir_read_name (ssh)) != NULL)
        if (g_str_has_prefix (name, "ssh_host_") && g_str_has_suffix (name, "_key"))
          {
            g_autofree char *path = g_build_filename ("/etc/ssh", name, NULL);

            if (g_file_test (path, G_FILE_TEST_IS_REGULAR) && access (path, R_OK) == 0)
              g_strv_builder_add (builder, path);
          }
      for (guint i = 0; secret_dirs_candidates[i] != NULL; i++)
        if (g_file_test (secret_dirs_candidates[i], G_FILE_TEST_IS_DIR) &&
            !g_file_test (secret_dirs_candidates[i], G_FILE_TEST_IS_SYMLINK) &&
            access (secret_dirs_candidates[i], R_OK | X_OK) == 0)
          g_strv_builder_add (dir_builder, secret_dirs_candidates[i]);
      secret_dirs = g_strv_builder_end (dir_builder);
      g_once_init_leave (&secret_files, g_strv_builder_end (builder));
    }
  *files = (const char * const *) secret_files;
  *dirs = (const char * const *) secret_dirs;
}

/* The host's home directories stay private: an empty tmpfs over /root,
 * /home and $HOME (spec mounts and the workdir, bound later, stay visible;
 * the tmpfs mounts, added to @masked and @ro_tmpfs, are made read-only
 * after those); and the credentials the caller may read
 * (readable_secrets), covered. A home that is a directory of the host's
 * root (is_masked_home: add_root binds nothing there) needs no tmpfs: an
 * empty directory made on the sandbox's root, itself an empty tmpfs that
 * is made read-only last, is the same empty read-only directory, without
 * a mount, and without the --remount-ro that costs bwrap a pass over the
 * mount table (docs/benchmarks.md, "A sandboxed task, twelfth round").
 * It is still added to @masked: nothing of the host shows under it. */
static void
add_home_masks (GPtrArray *argv,
                GPtrArray *masked,
                GPtrArray *ro_tmpfs)
{
  const char * const *secret_files, * const *secret_dirs;
  g_autofree char *home = g_canonicalize_filename (g_get_home_dir (), "/");

  for (guint i = 0; home_dirs[i] != NULL; i++)
    if (is_masked_home (home_dirs[i]))
      {
        g_ptr_array_add (argv, g_strdup ("--perms"));
        g_ptr_array_add (argv, g_strdup ("0755"));
        g_ptr_array_add (argv, g_strdup ("--dir"));
        g_ptr_array_add (argv, g_strdup (home_dirs[i]));
        g_ptr_array_add (masked, g_strdup (home_dirs[i]));
      }
    else if (g_file_test (home_dirs[i], G_FILE_TEST_IS_DIR))
      {
        /* A link to a directory: the tmpfs goes where it leads. */
        g_ptr_array_add (argv, g_strdup ("--tmpfs"));
        g_ptr_array_add (argv, g_strdup (home_dirs[i]));
        g_ptr_array_add (masked, g_strdup (home_dirs[i]));
        g_ptr_array_add (ro_tmpfs, g_strdup (home_dirs[i]));
      }
  if (is_maskable_home (home))
    {
      g_ptr_array_add (argv, g_strdup ("--tmpfs"));
      g_ptr_array_add (argv, g_strdup (home));
      g_ptr_array_add (ro_tmpfs, g_strdup (home));
      g_ptr_array_add (masked, g_steal_pointer (&home));
    }
  readable_secrets (&secret_files, &secret_dirs);
  for (guint i = 0; secret_files[i] != NULL; i++)
    {
      g_ptr_array_add (argv, g_strdup ("--ro-bind"));
      g_ptr_array_add (argv, g_strdup ("/dev/null"));
      g_ptr_array_add (argv, g_strdup (secret_files[i]));
    }
  for (guint i = 0; secret_dirs[i] != NULL; i++)
    {
      g_ptr_array_add (argv, g_strdup ("--tmpfs"));
      g_ptr_array_add (argv, g_strdup (secret_dirs[i]));
      g_ptr_array_add (masked, g_strdup (secret_dirs[i]));
      g_ptr_array_add (ro_tmpfs, g_strdup (secret_dirs[i]));
    }
}

/* The sandboxes' directory holds every sandbox's server socket and state,
 * the volumes directory every volume's files, the image store every
 * imported image: a read-only empty tmpfs covers each wherever it would
 * show inside, under the host's root (unless under /tmp or /run, which are
 * replaced, or under a home directory that @masked covers already; NULL:
 * none) and under any spec mount of a directory above it. (A mount from
 * inside the sandboxes' directory is refused by create.) Comes after the
 * spec mounts. */
static GPtrArray *
instances_targets (LocalConfig *config,
                   GPtrArray   *masked)
{
  g_autofree char *parent = g_path_get_dirname (config->dir);
  g_autofree char *volumes = _sandbox_local_volumes_dir (parent);
  g_autofree char *images = _sandbox_image_store_default_path (parent);
  const char *dirs[] = { parent, volumes, images };
  g_autoptr(GPtrArray) roots = g_ptr_array_new_with_free_func (g_free);
  GPtrArray *targets = g_ptr_array_new_with_free_func (g_free);

  for (guint d = 0; d < G_N_ELEMENTS (dirs); d++)
    {
      char *root = realpath (dirs[d], NULL);

      if (root == NULL || strcmp (root, "/") == 0)
        {
          free (root);
          continue;
        }
      g_ptr_array_add (roots, g_strdup (root));
      free (root);
    }
  for (guint d = 0; d < roots->len; d++)
    {
      const char *root = g_ptr_array_index (roots, d);

      if (config->rootfs == NULL)
        {
          g_auto(GStrv) parts = g_strsplit (root + 1, "/", 2);
          gboolean covered = is_managed_top (parts[0]);

          for (guint i = 0; !covered && masked != NULL && i < masked->len; i++)
            covered = is_under (root, g_ptr_array_index (masked, i));
          for (guint i = 0; !covered && i < targets->len; i++)
            covered = is_under (root, g_ptr_array_index (targets, i));
          if (!covered)
            g_ptr_array_add (targets, g_strdup (root));
        }
      for (guint i = 0; i < config->mounts->len; i++)
        {
          SandboxMount *mount = g_ptr_array_index (config->mounts, i);
          g_autofree char *host = realpath (sandbox_mount_get_host_path (mount), NULL);
          const char *rest;

          if (host == NULL || !is_under (root, host))
            continue;
          rest = root + (strcmp (host, "/") == 0 ? 0 : strlen (host));
          g_ptr_array_add (targets, g_build_filename (sandbox_mount_get_sandbox_path (mount), rest, NULL));
        }
    }
  return targets;
}

static void
hide_instances (GPtrArray   *argv,
                LocalConfig *config,
                GPtrArray   *masked)
{
  g_autoptr(GPtrArray) targets = instances_targets (config, masked);

  for (guint i = 0; i < targets->len; i++)
    {
      g_ptr_array_add (argv, g_strdup ("--tmpfs"));
      g_ptr_array_add (argv, g_strdup (g_ptr_array_index (targets, i)));
      g_ptr_array_add (argv, g_strdup ("--remount-ro"));
      g_ptr_array_add (argv, g_strdup (g_ptr_array_index (targets, i)));
    }
}

/* bwrap makes and mounts each destination by its path, following links
 * on the way, and it does so before the sandbox's root is its root: a
 * link that a sandbox left in a read-write mount (or a volume) that a
 * later sandbox mounts again, or that an image holds, whose target is
 * /oldroot/PATH or ../../oldroot/PATH, leads bwrap to the host's PATH,
 * where it makes the missing directories (or an empty file, for a file
 * mount) as the caller. So a destination below another mount, or in an
 * image root, is walked here first in what will be under it, one name at
 * a time without following links. A relative link that stays inside the
 * sandbox (lib64 -> lib) is followed here as bwrap would, and the walk
 * starts again from the path it leads to; an absolute link (bwrap reads
 * it against its own root, not the sandbox's), one that climbs above the
 * sandbox's root, or more than 40 of them, is refused. The host's own root
 * is trusted (the sandbox cannot write it), as are the managed /proc,
 * /dev, /tmp, /run, made fresh.
 * Returns FALSE with @error set for such a link; *@next set to the path to
 * walk again after a link inside. */

/* DIR + "/" + LINK + "/" + REST, with "." and ".." taken away; NULL if it
 * climbs above "/". */
static char *
join_inside (const char         *dir,
             const char         *link,
             const char * const *rest)
{
  g_autoptr(GPtrArray) out = g_ptr_array_new ();
  g_autoptr(GString) path = g_string_new ("");
  g_auto(GStrv) a = g_strsplit (dir, "/", -1);
  g_auto(GStrv) b = g_strsplit (link, "/", -1);
  GStrv lists[] = { a, b, (GStrv) rest };

  for (guint l = 0; l < G_N_ELEMENTS (lists); l++)
    for (guint i = 0; lists[l][i] != NULL; i++)
      {
        const char *c = lists[l][i];

        if (*c == '\0' || strcmp (c, ".") == 0)
          continue;
        if (strcmp (c, "..") == 0)
          {
            if (out->len == 0)
              return NULL;
            g_ptr_array_remove_index (out, out->len - 1);
            continue;
          }
        g_ptr_array_add (out, (gpointer) c);
      }
  for (guint i = 0; i < out->len; i++)
    g_string_append_printf (path, "/%s", (const char *) g_ptr_array_index (out, i));
  return path->len > 0 ? g_string_free (g_steal_pointer (&path), FALSE) : g_strdup ("/");
}

static gboolean
walk_destination (LocalConfig  *config,
                  const char   *target,
                  guint         n_mounts,
                  gboolean      after_workdir,
                  char        **next,
                  GError      **error)
{
  g_autofree char *work = g_build_filename (config->dir, "work", NULL);
  g_autofree char *tmp = g_build_filename (config->dir, "tmp", NULL);
  const char *best_target = NULL, *best_host = NULL, *rel;
  g_auto(GStrv) parts = NULL;
  g_autoptr(GString) walked = NULL;
  int dirfd;
  gboolean ok = TRUE;

  *next = NULL;
  /* The last mount made before it at a directory above it: bwrap's path
   * to it goes through that mount's files. */
  if (is_under (target, "/tmp") && strcmp (target, "/tmp") != 0)
    best_target = "/tmp", best_host = tmp;
  if (after_workdir && is_under (target, config->workdir) && strcmp (target, config->workdir) != 0 &&
      (best_target == NULL || strlen (config->workdir) > strlen (best_target)))
    best_target = config->workdir, best_host = work;
  for (guint i = 0; i < n_mounts && i < config->mounts->len; i++)
    {
      SandboxMount *mount = g_ptr_array_index (config->mounts, i);
      const char *path = sandbox_mount_get_sandbox_path (mount);

      if (is_under (target, path) && strcmp (target, path) != 0)
        best_target = path, best_host = sandbox_mount_get_host_path (mount);
    }
  if (best_target == NULL)
    {
      g_auto(GStrv) top = g_strsplit (target + 1, "/", 2);

      if (config->rootfs == NULL ||
          (is_managed_top (top[0]) && strcmp (top[0], "sys") != 0))
        return TRUE;
      best_target = "/";
      best_host = config->rootfs;
    }
  rel = target + strlen (best_target);
  parts = g_strsplit (rel, "/", -1);
  walked = g_string_new (strcmp (best_target, "/") == 0 ? "" : best_target);
  dirfd = open (best_host, O_PATH | O_DIRECTORY | O_CLOEXEC);
  for (guint i = 0; ok && dirfd >= 0 && parts[i] != NULL; i++)
    {
      struct stat st;
      int next_fd;

      if (*parts[i] == '\0' || strcmp (parts[i], ".") == 0)
        continue;
      if (strcmp (parts[i], "..") != 0 &&
          (fstatat (dirfd, parts[i], &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISLNK (st.st_mode)))
        {
          /* Missing (bwrap makes real directories from here on) or not a
           * directory (bwrap fails): nothing further to walk. */
          g_string_append_printf (walked, "/%s", parts[i]);
          next_fd = openat (dirfd, parts[i], O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
          close (dirfd);
          dirfd = next_fd;
          continue;
        }
      if (strcmp (parts[i], "..") != 0)
        {
          g_autofree char *link = NULL;
          char buf[PATH_MAX];
          ssize_t len = readlinkat (dirfd, parts[i], buf, sizeof buf - 1);

          if (len > 0)
            {
              buf[len] = '\0';
              link = g_strdup (buf);
            }
          if (link != NULL && link[0] != '/')
            *next = join_inside (walked->len > 0 ? walked->str : "/", link,
                                 (const char * const *) parts + i + 1);
          if (*next != NULL)
            break;
        }
      {
        g_autofree char *where = g_build_filename (best_host, NULL);

        g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT,
                     _("The mount path “%s” goes through “%s”, a link (or “..”) in %s, "
                       "which the sandbox's set-up would follow outside the sandbox. "
                       "Remove the link, or mount at another path."),
                     target, parts[i], where);
        ok = FALSE;
      }
    }
  if (dirfd >= 0)
    close (dirfd);
  return ok;
}

static gboolean
check_destination (LocalConfig *config,
                   const char  *target,
                   guint        n_mounts,
                   gboolean     after_workdir,
                   GError     **error)
{
  g_autofree char *path = g_strdup (target);

  for (int links = 0; ; links++)
    {
      g_autofree char *next = NULL;

      if (!walk_destination (config, path, n_mounts, after_workdir, &next, error))
        return FALSE;
      if (next == NULL)
        return TRUE;
      if (links == 40)
        {
          g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT,
                       _("The mount path “%s” goes through “%s”, a link (or “..”) in %s, "
                         "which the sandbox's set-up would follow outside the sandbox. "
                         "Remove the link, or mount at another path."),
                       target, path, "/");
          return FALSE;
        }
      g_free (path);
      path = g_steal_pointer (&next);
    }
}

static gboolean
check_destinations (LocalConfig  *config,
                    GError      **error)
{
  g_autoptr(GPtrArray) hidden = instances_targets (config, NULL);

  if (!check_destination (config, config->workdir, 0, FALSE, error))
    return FALSE;
  for (guint i = 0; i < config->mounts->len; i++)
    if (!check_destination (config, sandbox_mount_get_sandbox_path (g_ptr_array_index (config->mounts, i)),
                            i, TRUE, error))
      return FALSE;
  for (guint i = 0; i < hidden->len; i++)
    if (!check_destination (config, g_ptr_array_index (hidden, i), config->mounts->len, TRUE, error))
      return FALSE;
  return TRUE;
}

/* The files of /proc that only root may read and that the kernel guards
 * by that mode alone (no capability check), when this process runs as
 * root (none otherwise: the sandbox user cannot read them either), and
 * that this kernel has. Chosen, not listed from /proc: each is one more
 * mount for bwrap, some 0.6 ms of every create. */
static const char * const *
root_only_proc_files (void)
{
  static const char * const none[] = { NULL };
  static const char * const candidates[] = {
    "/proc/kpageflags", "/proc/kpagecount", "/proc/kpagecgroup",   /* physical pages */
    "/proc/slabinfo", "/proc/pagetypeinfo",   /* the allocators' state (and zone->lock) */
    NULL
  };
  static char **files;

  if (geteuid () != 0)
    return none;
  if (g_once_init_enter (&files))
    {
      g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();

      for (guint i = 0; candidates[i] != NULL; i++)
        if (g_file_test (candidates[i], G_FILE_TEST_EXISTS))
          g_strv_builder_add (builder, candidates[i]);
      g_once_init_leave (&files, g_strv_builder_end (builder));
    }
  return (const char * const *) files;
}

/* The directories of the host's /sys that only root may read, when this
 * process runs as root (the sandbox user is then the host's root as far
 * as file modes go) and the sandbox shows the host's root: the slab
 * allocator's state per cache (/sys/kernel/slab: what /proc/slabinfo
 * tells), the kernel's trace buffers (tracefs: reading trace_pipe takes
 * the host's events from whoever traces, with the names and pids of host
 * processes), and debugfs and securityfs where they are mounted. Each is
 * one more mount; looked up once per process. */
static const char * const *
root_only_sys_dirs (void)
{
  static const char * const none[] = { NULL };
  static char **dirs;

  if (geteuid () != 0)
    return none;
  if (g_once_init_enter (&dirs))
    {
      g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();
      struct stat kernel, st;

      if (stat ("/sys/kernel", &kernel) == 0)
        {
          /* sysfs itself, and tracefs (mounted there on first use) */
          if (stat ("/sys/kernel/slab", &st) == 0 && S_ISDIR (st.st_mode))
            g_strv_builder_add (builder, "/sys/kernel/slab");
          if (stat ("/sys/kernel/tracing", &st) == 0 && S_ISDIR (st.st_mode))
            g_strv_builder_add (builder, "/sys/kernel/tracing");
          /* empty directories of sysfs unless mounted */
          if (stat ("/sys/kernel/debug", &st) == 0 && S_ISDIR (st.st_mode) && st.st_dev != kernel.st_dev)
            g_strv_builder_add (builder, "/sys/kernel/debug");
          if (stat ("/sys/kernel/security", &st) == 0 && S_ISDIR (st.st_mode) && st.st_dev != kernel.st_dev)
            g_strv_builder_add (builder, "/sys/kernel/security");
        }
      g_once_init_leave (&dirs, g_strv_builder_end (builder));
    }
  return (const char * const *) dirs;
}

/* Whether bwrap can start pid 1 with the capabilities it needs first
 * (build_bwrap_argv): not a setuid bwrap (which allows --cap-add to root
 * only), nor where AppArmor restricts unprivileged user namespaces
 * (Ubuntu 23.10 and later), whose profiles for bwrap may refuse every
 * capability to the program it starts. (A security module that refuses
 * them anyway makes pid 1 fail at start, saying so.) */
static gboolean
pid1_sets_up (const char *bwrap)
{
  static gsize restricted;   /* 1: no, 2: yes */
  struct stat st;

  if (g_once_init_enter (&restricted))
    {
      g_autofree char *value = NULL;

      g_file_get_contents ("/proc/sys/kernel/apparmor_restrict_unprivileged_userns", &value, NULL, NULL);
      g_once_init_leave (&restricted, value != NULL && atoi (value) != 0 ? 2 : 1);
    }
  if (restricted == 2)
    return FALSE;
  return getuid () == 0 || stat (bwrap, &st) != 0 || (st.st_mode & S_ISUID) == 0;
}

/* The host's /sys, read-only, and over the directories of it that only
 * root may read (root_only_sys_dirs) an empty tmpfs, added to @ro_tmpfs
 * to be made read-only. */
static void
add_sys (GPtrArray *argv,
         GPtrArray *ro_tmpfs)
{
  struct stat st;

  if (lstat ("/sys", &st) != 0 || !S_ISDIR (st.st_mode))
    return;
  g_ptr_array_add (argv, g_strdup ("--ro-bind"));
  g_ptr_array_add (argv, g_strdup ("/sys"));
  g_ptr_array_add (argv, g_strdup ("/sys"));
  for (guint i = 0; root_only_sys_dirs ()[i] != NULL; i++)
    {
      g_ptr_array_add (argv, g_strdup ("--tmpfs"));
      g_ptr_array_add (argv, g_strdup (root_only_sys_dirs ()[i]));
      g_ptr_array_add (ro_tmpfs, g_strdup (root_only_sys_dirs ()[i]));
    }
}

/* Whether the host's /sys (add_sys) can be bound last, after every other
 * mount but the root's remount: nothing else goes below /sys (no spec
 * mount, workdir or hidden directory there, nor behind a top-level link
 * of the host, which could lead there). Its order changes nothing the
 * sandbox sees, but bwrap 0.8 reads and parses the whole of
 * /proc/self/mountinfo after each bind and --remount-ro, and the host's
 * /sys brings all its mounts along (cgroups, tracefs, debugfs, ...: 13
 * lines on the machine of docs/benchmarks.md, "A sandboxed task, twelfth
 * round"); bound last, the passes before it do not read them. */
static gboolean
sys_can_come_last (LocalConfig *config)
{
  g_autoptr(GPtrArray) paths = instances_targets (config, NULL);

  g_ptr_array_add (paths, g_strdup (config->workdir));
  for (guint i = 0; i < config->mounts->len; i++)
    g_ptr_array_add (paths, g_strdup (sandbox_mount_get_sandbox_path (g_ptr_array_index (config->mounts, i))));
  for (guint i = 0; i < paths->len; i++)
    {
      const char *path = g_ptr_array_index (paths, i);
      g_auto(GStrv) parts = g_strsplit (path + (*path == '/'), "/", 2);
      g_autofree char *top = g_build_filename ("/", parts[0] != NULL ? parts[0] : "", NULL);

      if (!g_path_is_absolute (path) || is_under (path, "/sys") || is_under ("/sys", path) ||
          g_file_test (top, G_FILE_TEST_IS_SYMLINK))
        return FALSE;
    }
  return TRUE;
}

/* The sandbox's one bwrap process, with the server as its pid 1. No
 * --die-with-parent: the sandbox outlives the process that created it.
 * PID1_SETUP: pid1_sets_up()'s answer for the backend's bwrap. */
static GPtrArray *
build_bwrap_argv (SandboxLocalInstance *self,
                  gboolean              watch,
                  gboolean              once,
                  gboolean              pid1_setup)
{
  LocalConfig *config = self->config;
  SandboxLocalBackend *backend = get_backend (self);
  GPtrArray *argv = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) masked = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) ro_tmpfs = g_ptr_array_new_with_free_func (g_free);
  gboolean sys_last = FALSE;
  gboolean var_tmp_private = config->rootfs == NULL && g_file_test ("/var/tmp", G_FILE_TEST_IS_DIR) &&
                             !g_file_test ("/var/tmp", G_FILE_TEST_IS_SYMLINK);
  g_autofree char *user_id = NULL, *group_id = NULL;
  gboolean pid1_becomes_user = FALSE;
  guint64 own_size;

#define ADD(s) g_ptr_array_add (argv, g_strdup (s))
  ADD (_sandbox_local_backend_get_bwrap (backend));
  ADD ("--new-session");
  ADD ("--unshare-user");
  ADD ("--unshare-ipc");
  ADD ("--unshare-pid");
  ADD ("--unshare-uts");
  ADD ("--unshare-cgroup-try");
  if (!config->network)
    ADD ("--unshare-net");
  ADD ("--hostname"); ADD (config->id);
  ADD ("--cap-drop"); ADD ("ALL");
  if (!config->run_as_root && config->uid >= 0)
    {
      /* The image's User: the caller, who owns every file of the image,
       * is mapped to it. */
      user_id = g_strdup_printf ("%" G_GINT64_FORMAT, config->uid);
      group_id = g_strdup_printf ("%" G_GINT64_FORMAT, config->gid);
    }
  else
    {
      user_id = g_strdup (config->run_as_root ? "0" : LOCAL_SANDBOX_UID);
      group_id = g_strdup (config->run_as_root ? "0" : LOCAL_SANDBOX_UID);
    }
  if (pid1_setup)
    {
      /* pid 1 starts as root of bwrap's user namespace, with these three
       * capabilities there and nothing else, for the first thing it
       * does: making the sandbox's mounts private, so that none the host
       * makes later shows inside, then the sandbox user's namespace in
       * bwrap's stead (--user below), then dropping every capability
       * from every set, before anything else of the sandbox runs
       * (sandbox-exec-helper.c, "The sandbox's mounts receive nothing
       * from the host"). */
      ADD ("--cap-add"); ADD ("CAP_SYS_ADMIN");
      ADD ("--cap-add"); ADD ("CAP_SETPCAP");
      ADD ("--cap-add"); ADD ("CAP_SETFCAP");
      ADD ("--uid"); ADD ("0");
      ADD ("--gid"); ADD ("0");
      pid1_becomes_user = strcmp (user_id, "0") != 0 || strcmp (group_id, "0") != 0;
    }
  else
    {
      ADD ("--uid"); ADD (user_id);
      ADD ("--gid"); ADD (group_id);
    }

  add_root (argv, config->rootfs ? config->rootfs : "/");
  if (config->rootfs == NULL)
    {
      sys_last = sys_can_come_last (config);
      if (!sys_last)
        add_sys (argv, ro_tmpfs);
      add_home_masks (argv, masked, ro_tmpfs);
      for (guint i = 0; root_only_sys_dirs ()[i] != NULL; i++)
        g_ptr_array_add (masked, g_strdup (root_only_sys_dirs ()[i]));
    }

  ADD ("--proc"); ADD ("/proc");
  /* bwrap leaves these writable when the sandbox user maps to the host's
   * root (the caller is root): global sysctls and the magic SysRq key. */
  ADD ("--ro-bind-try"); ADD ("/proc/sys"); ADD ("/proc/sys");
  ADD ("--ro-bind-try"); ADD ("/proc/sysrq-trigger"); ADD ("/proc/sysrq-trigger");
  /* Keyrings are not namespaced: /proc/keys would list the caller's keys
   * (their owner is the uid the sandbox user maps to). The others tell
   * about the kernel and other processes, as Docker masks them too. */
  {
    static const char * const masked_proc[] = {
      "/proc/keys", "/proc/key-users", "/proc/kcore", "/proc/timer_list",
      "/proc/sched_debug", "/proc/latency_stats", NULL
    };

    /* Only those this kernel has: bwrap cannot make a file in /proc. */
    for (guint i = 0; masked_proc[i] != NULL; i++)
      if (g_file_test (masked_proc[i], G_FILE_TEST_EXISTS))
        {
          ADD ("--ro-bind"); ADD ("/dev/null"); ADD (masked_proc[i]);
        }
    /* When the caller is root, so is the sandbox user on the host: the
     * files of /proc only root may read (mode 0400) that the kernel guards
     * by that mode alone would be readable too: physical page flags and
     * counts (kpageflags, kpagecount, kpagecgroup), the slab and page
     * allocators' state (slabinfo, pagetypeinfo): what exploits of the
     * kernel use. */
    for (guint i = 0; root_only_proc_files ()[i] != NULL; i++)
      {
        const char *path = root_only_proc_files ()[i];

        if (!g_strv_contains (masked_proc, path))
          {
            ADD ("--ro-bind"); ADD ("/dev/null"); ADD (path);
          }
      }
  }
  /* /dev and /run are file systems in memory that no limit counts (not
   * RLIMIT_AS, not the disk): /dev is made read-only (its device nodes and
   * /dev/pts are mounts of their own and stay usable), and /dev/shm and
   * /run, the sandbox's to write, hold at most a quarter of the spec's
   * memory limit each when there is one: with /tmp, /var/tmp and the
   * workdir in memory (below, half of it together), no more than the
   * limit in all. (In cgroup modes their pages count against the memory
   * limit too.) */
  ADD ("--dev"); ADD ("/dev");
  ADD ("--remount-ro"); ADD ("/dev");
  for (guint i = 0; i < 2; i++)
    {
      if (config->memory_mb > 0)
        {
          ADD ("--size");
          g_ptr_array_add (argv, g_strdup_printf ("%" G_GUINT64_FORMAT, (guint64) config->memory_mb << 18));
        }
      ADD ("--tmpfs"); ADD (i == 0 ? "/dev/shm" : "/run");
    }
  /* /tmp, /var/tmp and the workdir are the instance directory's, on the
   * host, unless that is in memory (a tmpfs: $XDG_RUNTIME_DIR, /dev/shm)
   * and the spec sets a limit: then what the sandbox writes there is
   * memory no limit counts (not RLIMIT_AS, not the disk), up to half of
   * the host's; each is a tmpfs of the sandbox's own instead, sharing
   * what _local_own_tmpfs_size says they may hold together: half for the
   * workdir, a quarter each for /tmp and /var/tmp. */
  own_size = _local_own_tmpfs_size (config);
  for (guint i = 0; i < 3; i++)
    {
      static const char * const host_name[] = { "tmp", "var-tmp", "work" };
      const char *target = i == 0 ? "/tmp" : i == 1 ? "/var/tmp" : config->workdir;

      /* The host's other world-writable directory: any host user can bind a
       * socket there, which the sandbox could then connect to (a socket on a
       * read-only mount still accepts connections). Private, as /tmp is. */
      if (i == 1 && !var_tmp_private)
        continue;
      if (own_size > 0)
        {
          ADD ("--perms"); ADD (i < 2 ? "1777" : "0755");
          ADD ("--size");
          g_ptr_array_add (argv, g_strdup_printf ("%" G_GUINT64_FORMAT, i < 2 ? own_size / 4 : own_size / 2));
          ADD ("--tmpfs"); ADD (target);
        }
      else
        {
          ADD ("--bind"); g_ptr_array_add (argv, g_build_filename (config->dir, host_name[i], NULL)); ADD (target);
        }
    }
  for (guint i = 0; i < config->mounts->len; i++)
    {
      SandboxMount *mount = g_ptr_array_index (config->mounts, i);

      ADD (sandbox_mount_get_read_only (mount) ? "--ro-bind" : "--bind");
      ADD (sandbox_mount_get_host_path (mount));
      ADD (sandbox_mount_get_sandbox_path (mount));
    }
  hide_instances (argv, config, masked);
  for (guint i = 0; i < ro_tmpfs->len; i++)
    {
      const char *path = g_ptr_array_index (ro_tmpfs, i);
      gboolean covered = is_under (path, config->workdir);

      /* A mount at (or above) it replaced the tmpfs: leave that one alone. */
      for (guint j = 0; !covered && j < config->mounts->len; j++)
        covered = is_under (path, sandbox_mount_get_sandbox_path (g_ptr_array_index (config->mounts, j)));
      if (!covered)
        {
          ADD ("--remount-ro"); ADD (path);
        }
    }
  ADD ("--ro-bind"); ADD (_sandbox_local_backend_get_helper (backend)); ADD (HELPER_IN_SANDBOX);
  if (sys_last)
    {
      g_autoptr(GPtrArray) sys_tmpfs = g_ptr_array_new_with_free_func (g_free);

      add_sys (argv, sys_tmpfs);
      for (guint i = 0; i < sys_tmpfs->len; i++)
        {
          ADD ("--remount-ro"); ADD (g_ptr_array_index (sys_tmpfs, i));
        }
    }
  /* The root itself is bwrap's tmpfs, of no size limit, and the sandbox
   * user's: Landlock kept files out of it, but not directories, links,
   * FIFOs and empty files, in which a sandbox kept any amount of the
   * host's memory (a 4 KiB link target takes a page). Read-only, once
   * every mount point is made; the mounts on it keep their own flags. */
  ADD ("--remount-ro"); ADD ("/");
  ADD ("--chdir"); ADD ("/");
  ADD ("--as-pid-1");
  ADD ("--info-fd"); g_ptr_array_add (argv, g_strdup_printf ("%d", INFO_FD));
  ADD ("--seccomp"); g_ptr_array_add (argv, g_strdup_printf ("%d", SECCOMP_FD));
  ADD ("--");
  ADD (HELPER_IN_SANDBOX);
  if (pid1_becomes_user)
    {
      ADD ("--user"); ADD (user_id); ADD (group_id);
    }
  if (once)
    {
      ADD ("--once"); g_ptr_array_add (argv, g_strdup_printf ("%d", ONCE_FD));
    }
  /* With the network, the rules (maybe none) that
   * sandbox_instance_set_egress_rules can replace later. */
  if (config->network)
    {
      ADD ("--egress"); ADD (config->egress != NULL ? config->egress : "");
    }
  /* The spec's mounts in which the sandbox may make no link, FIFO, socket
   * or device node: pid 1 mediates those calls (sandbox-exec-helper.c,
   * "Links, FIFOs and sockets on the commands' behalf"). A read-only one
   * needs nothing. */
  for (guint i = 0; i < config->mounts->len; i++)
    {
      SandboxMount *mount = g_ptr_array_index (config->mounts, i);

      if ((sandbox_mount_get_flags (mount) & SANDBOX_MOUNT_NO_LINKS) && !sandbox_mount_get_read_only (mount))
        {
          ADD ("--no-links"); ADD (sandbox_mount_get_sandbox_path (mount));
        }
    }
  ADD ("--server");
  g_ptr_array_add (argv, g_strdup_printf ("%d", LISTEN_FD));
  g_ptr_array_add (argv, g_strdup_printf ("%d", READY_FD));
  g_ptr_array_add (argv, g_strdup_printf ("%d", TOKEN_FD));
  g_ptr_array_add (argv, g_strdup_printf ("%d", watch ? WATCH_FD : -1));
  g_ptr_array_add (argv, g_strdup_printf ("%d", config->die_with_owner ? LEASE_FD : -1));
  g_ptr_array_add (argv, g_strdup_printf ("%" G_GINT64_FORMAT, config->expires));
  /* The host's root is bound in: pid 1 connects sockets for the commands,
   * and only to socket files on these mounts, the sandbox's own (the spec's
   * mounts among them, which the caller chose to show). An image root holds
   * no host socket: no restriction. (Each path must be a mount of the
   * sandbox's: /var/tmp only when it is its own, else it would name the
   * host's /var.) */
  if (config->rootfs == NULL)
    {
      static const char * const own[] = { "/", "/tmp", "/run", "/dev", "/dev/shm", NULL };

      for (guint i = 0; own[i] != NULL; i++)
        ADD (own[i]);
      if (var_tmp_private)
        ADD ("/var/tmp");
      ADD (config->workdir);
      for (guint i = 0; i < config->mounts->len; i++)
        ADD (sandbox_mount_get_sandbox_path (g_ptr_array_index (config->mounts, i)));
    }
  g_ptr_array_add (argv, NULL);
#undef ADD

  return argv;
}

static char **
build_environ (LocalConfig    *config,
               SandboxCommand *command)
{
  g_autoptr(GHashTable) env = g_hash_table_new (g_str_hash, g_str_equal);
  GHashTable *layers[] = { config->env, sandbox_command_get_env (command) };
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();
  GHashTableIter iter;
  gpointer key, value;

  g_hash_table_insert (env, (gpointer) "PATH", (gpointer) LOCAL_DEFAULT_PATH);
  g_hash_table_insert (env, (gpointer) "HOME", config->workdir);
  for (guint i = 0; i < G_N_ELEMENTS (layers); i++)
    {
      g_hash_table_iter_init (&iter, layers[i]);
      while (g_hash_table_iter_next (&iter, &key, &value))
        g_hash_table_insert (env, key, value);
    }

  g_hash_table_iter_init (&iter, env);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      g_autofree char *pair = g_strdup_printf ("%s=%s", (char *) key, (char *) value);
      g_strv_builder_add (builder, pair);
    }
  return g_strv_builder_end (builder);
}

/* ------------------------------------------------------------------ */
/* Resource limits, applied to the sandbox's bwrap between fork and    */
/* exec: every process of the sandbox inherits them                    */

typedef struct
{
  LocalLimits limits;
  rlim_t      memory;      /* bytes, 0 for none */
  rlim_t      nproc;
  rlim_t      fsize;
  int         ncpu;        /* CPUs to keep in the affinity mask, 0 for all */
  guint       cpu_start;   /* which of the allowed CPUs comes first (random) */
  int         cgroup_fd;   /* cgroup.procs of the exec's cgroup, or -1 */
  int         v1_fds[2];   /* "tasks" of its cgroup v1 backstops, or -1 */
  gboolean    private_ns;  /* pid 1 cannot make the mounts private: try here */
} ChildLimits;

/* Where a sandbox limited to fewer CPUs than the machine has starts
 * picking them: the next value of a counter shared by the caller's
 * sandboxes (round robin, so that one-CPU sandboxes alternate over the
 * CPUs), kept in the user's runtime directory (not among the sandboxes),
 * or a random one when the counter cannot be kept. */
static guint
next_cpu_start (void)
{
  g_autofree char *runtime = _sandbox_user_runtime_dir ();
  g_autofree char *path = g_build_filename (runtime, "libsandbox-cpu-next", NULL);
  guint32 value = 0;
  int fd = open (path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);

  if (fd < 0)
    return g_random_int ();
  if (flock (fd, LOCK_EX) != 0 || pread (fd, &value, sizeof value, 0) < 0)
    {
      close (fd);
      return g_random_int ();
    }
  value++;
  if (pwrite (fd, &value, sizeof value, 0) != sizeof value)
    value = g_random_int ();
  close (fd);
  return value;
}

/* In child_setup: none of the caller's own standing goes to the sandbox.
 * A caller that runs real-time (SCHED_FIFO, SCHED_RR: an audio
 * application, a service with CPUSchedulingPolicy=), at a negative nice
 * value or in the real-time I/O class passed it on to every process of
 * the sandbox, whatever RLIMIT_RTPRIO (child_setup) says: a busy loop in
 * the sandbox then took a CPU from every host process. A negative
 * oom_score_adj (a daemon the OOM killer spares, down to -1000) made the
 * sandbox's processes the last ones killed when memory runs out, host
 * processes first. A personality flag (ADDR_NO_RANDOMIZE from `setarch
 * -R`, READ_IMPLIES_EXEC) turned off address randomization or
 * non-executable memory for pid 1 and the commands. Each only lowers what
 * the caller had, which needs no privilege. */
static void
drop_caller_standing (void)
{
  struct sched_param param = { 0 };
  int policy = sched_getscheduler (0);
  unsigned long persona;
  long ioprio;
  int fd;

  if (policy >= 0 && ((policy & ~SCHED_RESET_ON_FORK) == SCHED_FIFO ||
                      (policy & ~SCHED_RESET_ON_FORK) == SCHED_RR))
    sched_setscheduler (0, SCHED_OTHER, &param);
  errno = 0;
  if (getpriority (PRIO_PROCESS, 0) < 0 && errno == 0)
    setpriority (PRIO_PROCESS, 0, 0);
  /* IOPRIO_WHO_PROCESS, this process; class IOPRIO_CLASS_RT (1) in the
   * top three of 16 bits, set to IOPRIO_CLASS_NONE (0: from the nice
   * value). */
  ioprio = syscall (SYS_ioprio_get, 1, 0);
  if (ioprio >= 0 && (ioprio >> 13) == 1)
    syscall (SYS_ioprio_set, 1, 0, 0);
  fd = open ("/proc/self/oom_score_adj", O_RDWR | O_CLOEXEC);
  if (fd >= 0)
    {
      char buf[16];
      ssize_t n = read (fd, buf, sizeof buf - 1);

      if (n > 0 && buf[0] == '-')
        {
          /* Raising it needs no privilege. */
          if (pwrite (fd, "0", 1, 0) < 0)
            {
              /* Nothing to do: it is no lower than it was. */
            }
        }
      close (fd);
    }
  persona = (unsigned long) personality (0xffffffff);
  if (persona != (unsigned long) -1 && (persona & ~(unsigned long) PER_MASK) != 0)
    personality (persona & PER_MASK);
}

static void
child_setup (gpointer user_data)
{
  ChildLimits *limits = user_data;

  drop_caller_standing ();
  /* The sandbox's mounts receive nothing the host mounts later: pid 1
   * makes them private (sandbox-exec-helper.c), unless bwrap cannot leave
   * it the capability for that (pid1_sets_up). Then a mount namespace of
   * bwrap's own, private, where the caller may (CAP_SYS_ADMIN: root);
   * an unprivileged caller's sandboxes then still receive them
   * (docs/security.md, "What is not promised"). */
  if (limits->private_ns && unshare (CLONE_NEWNS) == 0)
    mount ("none", "/", "none", MS_REC | MS_PRIVATE, NULL);

  /* Away from the creator's terminal and process group: the sandbox lives
   * on after it. */
  setsid ();
  /* A new, empty session keyring: keyrings are not namespaced, and the
   * caller's would otherwise be the sandbox's (the seccomp filter denies
   * the keyring calls too). Nothing to hide where keyrings are off. */
  syscall (SYS_keyctl, 1 /* KEYCTL_JOIN_SESSION_KEYRING */, NULL);
  /* No core dumps, hard limit: a crash in the sandbox would otherwise be
   * handed, with the process's memory, to the host's crash handler
   * (core_pattern "|apport ...", "|systemd-coredump ..."), which runs as
   * the host's root and keeps the dump on the host's disk after the
   * sandbox is gone; with a file pattern, a command could still raise its
   * soft limit and write one. */
  /* Nor real-time scheduling or a raised priority, which the caller's own
   * limits may allow without a capability (RLIMIT_RTPRIO, RLIMIT_NICE: an
   * audio group's 95, a service's LimitRTPRIO=): a SCHED_FIFO loop takes
   * a CPU from every host process, whatever the spec's cpu limit says. */
  {
    struct rlimit zero = { 0, 0 };
    setrlimit (RLIMIT_CORE, &zero);
    setrlimit (RLIMIT_RTPRIO, &zero);
    setrlimit (RLIMIT_NICE, &zero);
  }
  if (limits->fsize > 0)
    {
      struct rlimit rl = { limits->fsize, limits->fsize };
      setrlimit (RLIMIT_FSIZE, &rl);
    }
  if (limits->cgroup_fd >= 0)
    {
      /* Move this process (and so the whole sandbox) into the cgroup. */
      if (write (limits->cgroup_fd, "0\n", 2) < 0)
        _exit (126);
      return;
    }
  /* This thread into the cgroup v1 backstops: the forked child's only
   * thread, so this whole process (bwrap, and every process of the
   * sandbox after it), before its exec. */
  for (guint i = 0; i < G_N_ELEMENTS (limits->v1_fds); i++)
    if (limits->v1_fds[i] >= 0 && write (limits->v1_fds[i], "0\n", 2) < 0)
      _exit (126);
  if (limits->memory > 0)
    {
      struct rlimit rl = { limits->memory, limits->memory };
      setrlimit (RLIMIT_AS, &rl);
    }
  if (limits->nproc > 0)
    {
      struct rlimit rl = { limits->nproc, limits->nproc };
      setrlimit (RLIMIT_NPROC, &rl);
    }
  if (limits->ncpu > 0)
    {
      cpu_set_t set, keep;
      int allowed = 0, kept = 0, skip;

      /* ncpu of the allowed CPUs, from a random one on (cyclically): each
       * sandbox's own, so that sandboxes limited to one CPU spread over the
       * machine instead of all sharing its first CPU. */
      if (sched_getaffinity (0, sizeof set, &set) == 0 && (allowed = CPU_COUNT (&set)) > limits->ncpu)
        {
          CPU_ZERO (&keep);
          skip = (int) (limits->cpu_start % (guint) allowed);
          for (int pass = 0; pass < 2 && kept < limits->ncpu; pass++)
            for (int c = 0; c < CPU_SETSIZE && kept < limits->ncpu; c++)
              if (CPU_ISSET (c, &set))
                {
                  if (pass == 0 && skip > 0)
                    {
                      skip--;
                      continue;
                    }
                  if (!CPU_ISSET (c, &keep))
                    {
                      CPU_SET (c, &keep);
                      kept++;
                    }
                }
          sched_setaffinity (0, sizeof keep, &keep);
        }
    }
}

/* A descriptor for child_setup, moved above the numbers bwrap's
 * descriptors are given in the child (LISTEN_FD ... HIGHEST_CHILD_FD), which the
 * launcher sets up before child_setup runs and would otherwise replace. */
static int
open_for_child (const char *path)
{
  int fd = open (path, O_WRONLY | O_CLOEXEC);
  int high;

  if (fd < 0 || fd > HIGHEST_CHILD_FD)
    return fd;
  high = fcntl (fd, F_DUPFD_CLOEXEC, HIGHEST_CHILD_FD + 1);
  close (fd);
  return high;
}

static gboolean
write_cgroup_file (const char  *dir,
                   const char  *name,
                   const char  *value,
                   GError     **error)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);

  return g_file_set_contents_full (path, value, -1, G_FILE_SET_CONTENTS_NONE, 0644, error);
}

/* rlimit mode as root. RLIMIT_NPROC binds no process whose user is the
 * host's root (the kernel exempts it), and RLIMIT_AS bounds each process,
 * not their sum: a sandbox with pids-max and memory-mb, made by root, could
 * still fork without end and use any amount of memory. Where the host has
 * cgroup v1 hierarchies for pids and memory that root can write (machines
 * without a delegated cgroup v2, as CI's), the sandbox also gets a child
 * cgroup in each, under the caller's own, with pids.max and
 * memory.limit_in_bytes; every process of the sandbox is moved there
 * before bwrap runs. Best effort: a hierarchy that is missing or refuses
 * leaves the rlimits alone. Returns the "tasks" descriptors in FDS. */
static void
make_cgroups_v1 (LocalConfig *config,
                 int          fds[2])
{
  static const char * const controllers[] = { "pids", "memory" };
  g_autofree char *self_cgroups = NULL;
  g_auto(GStrv) lines = NULL;
  g_autoptr(GStrvBuilder) made = g_strv_builder_new ();

  fds[0] = fds[1] = -1;
  if (geteuid () != 0 || config->limits != LOCAL_LIMITS_RLIMIT ||
      !g_file_get_contents ("/proc/self/cgroup", &self_cgroups, NULL, NULL))
    return;
  lines = g_strsplit (self_cgroups, "\n", -1);
  for (guint c = 0; c < G_N_ELEMENTS (controllers); c++)
    {
      guint64 value = c == 0 ? config->pids_max : (guint64) config->memory_mb << 20;
      const char *file = c == 0 ? "pids.max" : "memory.limit_in_bytes";
      g_autofree char *dir = NULL, *name = NULL, *limit = NULL, *procs = NULL;

      if (value == 0)
        continue;
      /* "ID:CONTROLLERS:PATH", PATH being this process's cgroup there. */
      for (guint i = 0; dir == NULL && lines[i] != NULL; i++)
        {
          g_auto(GStrv) fields = g_strsplit (lines[i], ":", 3);
          g_auto(GStrv) names = NULL;

          if (g_strv_length (fields) != 3 || fields[2][0] != '/' || strstr (fields[2], "/..") != NULL)
            continue;
          names = g_strsplit (fields[1], ",", -1);
          if (g_strv_contains ((const char * const *) names, controllers[c]))
            dir = g_strdup_printf ("/sys/fs/cgroup/%s%s", controllers[c],
                                   strcmp (fields[2], "/") == 0 ? "" : fields[2]);
        }
      if (dir == NULL)
        continue;
      name = g_strdup_printf ("%s/libsandbox-%s", dir, config->id);
      limit = g_strdup_printf ("%" G_GUINT64_FORMAT, value);
      if (g_mkdir (name, 0755) != 0)
        {
          g_debug ("No cgroup v1 %s for sandbox %s: %s", controllers[c], config->id, g_strerror (errno));
          continue;
        }
      /* "tasks", not cgroup.procs: child_setup moves the calling thread
       * ("0"), the only one of the forked child, which needs no global
       * lock; moving a whole process through cgroup.procs takes the
       * cgroup threadgroup lock for writing, i.e. waits for an RCU grace
       * period (5-15 ms here, every create). */
      procs = g_build_filename (name, "tasks", NULL);
      if (!write_cgroup_file (name, file, limit, NULL) ||
          (fds[c] = open_for_child (procs)) < 0)
        {
          g_debug ("No cgroup v1 %s for sandbox %s", controllers[c], config->id);
          g_rmdir (name);
          continue;
        }
      g_strv_builder_add (made, name);
    }
  g_strfreev (config->cgroups_v1);
  config->cgroups_v1 = g_strv_builder_end (made);
  if (config->cgroups_v1[0] == NULL)
    g_clear_pointer (&config->cgroups_v1, g_strfreev);
}

/* Removes the cgroup v1 directories PATHS once their last task is gone,
 * from a process of its own that this one does not wait for: the last
 * task is the sandbox's pid 1, and its exit (the kernel tearing down the
 * sandbox's namespaces, waiting for an RCU grace period) takes 5-20 ms
 * after it was killed, which the destroy (and `sandboxctl run`, and the
 * task of a Metaflow run) would otherwise wait for. The process tries for
 * about 2 s, holds no descriptor (not the caller's pipes, whose end of
 * file must not wait for it) and calls only async-signal-safe functions
 * (this process may have threads). */
static void
remove_cgroups_later (char **paths)
{
  pid_t child = fork ();

  if (child < 0)
    {
      /* No process for it: wait here, as long as it would have tried. */
      for (guint i = 0; paths[i] != NULL; i++)
        for (guint tries = 0; g_rmdir (paths[i]) != 0 && errno == EBUSY && tries < 400; tries++)
          g_usleep (5000);
      return;
    }
  if (child == 0)
    {
      /* The middle process ends at once: the remover is nobody's child
       * here, so nobody has to reap it. */
      if (fork () != 0)
        _exit (0);
#ifdef SYS_close_range
      if (syscall (SYS_close_range, 0U, ~0U, 0) != 0)
#endif
        for (int fd = 0; fd < 1024; fd++)
          close (fd);
      for (int tries = 0; tries < 2000; tries++)
        {
          gboolean busy = FALSE;

          for (guint i = 0; paths[i] != NULL; i++)
            if (paths[i][0] != '\0' && rmdir (paths[i]) != 0)
              {
                if (errno == EBUSY)
                  busy = TRUE;
                else
                  paths[i][0] = '\0';
              }
            else
              paths[i][0] = '\0';
          if (!busy)
            break;
          {
            struct timespec ts = { 0, 1000000 };

            nanosleep (&ts, NULL);
          }
        }
      _exit (0);
    }
  while (waitpid (child, NULL, 0) < 0 && errno == EINTR)
    ;
}

void
_local_remove_cgroups (LocalConfig *config)
{
  g_autoptr(GStrvBuilder) busy = g_strv_builder_new ();
  g_auto(GStrv) left = NULL;

  if (config->cgroup != NULL)
    g_rmdir (config->cgroup);
  if (config->cgroups_v1 == NULL)
    return;
  /* A cgroup v1 directory stays busy until its last task has exited,
   * which lags the kill by 3-17 ms (pid 1's namespaces end first): one
   * try, which succeeds when the caller waited for the sandbox's
   * processes, then a process of its own removes what is still busy.
   * (Waiting here 0.7 ms more, 0.1 ms doubling, removed none of them in
   * 30 `sandboxctl run`s out of 30: docs/benchmarks.md, "A sandboxed
   * task, eleventh round".) */
  for (guint i = 0; config->cgroups_v1[i] != NULL; i++)
    if (g_rmdir (config->cgroups_v1[i]) != 0 && errno == EBUSY)
      g_strv_builder_add (busy, config->cgroups_v1[i]);
  left = g_strv_builder_end (busy);
  if (left[0] != NULL)
    remove_cgroups_later (left);
}

/* Creates the instance's cgroup under SANDBOX_CGROUP_PARENT. */
static char *
make_cgroup (LocalConfig  *config,
             GError      **error)
{
  const char *parent = g_getenv ("SANDBOX_CGROUP_PARENT");
  g_autofree char *name = g_strdup_printf ("libsandbox-%s", config->id);
  g_autofree char *dir = g_build_filename (parent, name, NULL);

  if (g_mkdir (dir, 0755) != 0)
    {
      int errsv = errno;
      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_FAILED,
                   _("Cannot create the cgroup %s: %s. Unset SANDBOX_CGROUP_PARENT to use rlimits."),
                   dir, g_strerror (errsv));
      return NULL;
    }
  if (config->memory_mb > 0)
    {
      g_autofree char *v = g_strdup_printf ("%" G_GUINT64_FORMAT, (guint64) config->memory_mb << 20);
      if (!write_cgroup_file (dir, "memory.max", v, error))
        goto fail;
    }
  if (config->pids_max > 0)
    {
      g_autofree char *v = g_strdup_printf ("%u", config->pids_max);
      if (!write_cgroup_file (dir, "pids.max", v, error))
        goto fail;
    }
  if (config->cpu > 0)
    {
      /* A quota past what cpu.max takes (an unsigned wrap would make it tiny):
       * no quota, as many CPUs as there are. */
      g_autofree char *v = config->cpu * 100000 < G_MAXUINT
                             ? g_strdup_printf ("%u 100000", (guint) (config->cpu * 100000))
                             : g_strdup ("max 100000");
      if (!write_cgroup_file (dir, "cpu.max", v, error))
        goto fail;
    }
  return g_steal_pointer (&dir);

fail:
  g_rmdir (dir);
  return NULL;
}

/* ------------------------------------------------------------------ */
/* The sandbox's server: started once, by create                       */

static void
clear_fd (int *fd)
{
  if (*fd >= 0)
    close (*fd);
  *fd = -1;
}

/* Fills ADDR with DIR/sock, through /proc/self/fd/DIRFD when the path is
 * too long for sun_path. */
static gboolean
socket_address (const char         *dir,
                int                 dirfd,
                struct sockaddr_un *addr)
{
  g_autofree char *path = g_build_filename (dir, "sock", NULL);

  memset (addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  if (strlen (path) < sizeof addr->sun_path)
    {
      strcpy (addr->sun_path, path);
      return TRUE;
    }
  if (dirfd < 0)
    return FALSE;
  g_snprintf (addr->sun_path, sizeof addr->sun_path, "/proc/self/fd/%d/sock", dirfd);
  return TRUE;
}

/* -1 with errno set on failure. */
static int
socket_at (const char *dir,
           gboolean    listening)
{
  struct sockaddr_un addr;
  int dirfd = -1, fd, res, errsv;

  if (!socket_address (dir, -1, &addr))
    {
      dirfd = open (dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (dirfd < 0)
        return -1;
      socket_address (dir, dirfd, &addr);
    }
  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    res = -1;
  else if (listening)
    res = bind (fd, (struct sockaddr *) &addr, sizeof addr) == 0 ? listen (fd, SOMAXCONN) : -1;
  else
    do
      res = connect (fd, (struct sockaddr *) &addr, sizeof addr);
    while (res < 0 && errno == EINTR);
  errsv = errno;
  if (dirfd >= 0)
    close (dirfd);
  if (res < 0 && fd >= 0)
    {
      close (fd);
      fd = -1;
    }
  errno = errsv;
  return fd;
}

/* Whether the sandbox's server still runs: only it listens on DIR/sock. */
gboolean
_local_server_alive (const char *dir)
{
  struct sockaddr_un addr;
  int dirfd = -1, fd;
  gboolean alive;

  if (!socket_address (dir, -1, &addr))
    {
      dirfd = open (dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (dirfd < 0)
        return FALSE;
      socket_address (dir, dirfd, &addr);
    }
  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  /* A full backlog (EAGAIN) still means someone listens. */
  alive = fd >= 0 && (connect (fd, (struct sockaddr *) &addr, sizeof addr) == 0 ||
                      errno == EAGAIN || errno == EINPROGRESS);
  if (fd >= 0)
    close (fd);
  if (dirfd >= 0)
    close (dirfd);
  return alive;
}

/* Writes the header every connection to the server starts with. */
static void
fill_header (char        header[SBX_HEADER_LEN],
             const char *magic,
             guint32     len,
             const char *token)
{
  memcpy (header, magic, SBX_MAGIC_LEN);
  memcpy (header + SBX_MAGIC_LEN, &len, sizeof len);
  memset (header + SBX_MAGIC_LEN + 4, 0, SBX_TOKEN_HEX);
  if (token != NULL)
    memcpy (header + SBX_MAGIC_LEN + 4, token, MIN (strlen (token), SBX_TOKEN_HEX));
}

/* ------------------------------------------------------------------ */
/* Leases: the write ends of the pipes whose end-of-file tells the      */
/* servers of die-with-owner sandboxes that their owner (this process) */
/* is gone. Held for the process's life, or until destroy.              */

G_LOCK_DEFINE_STATIC (leases);
static GHashTable *leases;   /* id -> fd + 1 */

static void
lease_hold (const char *id,
            int         fd)
{
  G_LOCK (leases);
  if (leases == NULL)
    leases = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_hash_table_insert (leases, g_strdup (id), GINT_TO_POINTER (fd + 1));
  G_UNLOCK (leases);
}

static void
lease_release (const char *id)
{
  gpointer key = NULL, value = NULL;

  G_LOCK (leases);
  if (leases != NULL)
    g_hash_table_steal_extended (leases, id, &key, &value);
  G_UNLOCK (leases);
  g_free (key);
  if (value != NULL)
    close (GPOINTER_TO_INT (value) - 1);
}

typedef struct
{
  SandboxInstance *instance;
  pid_t            bwrap_pid;
  int              bwrap_pidfd; /* -1 without pidfds */
  GInputStream    *ready;
  int              info_fd;
  int              log_fd;    /* bwrap's stderr, for its errors */
} StartData;

static void
start_data_free (StartData *data)
{
  g_clear_object (&data->instance);
  g_clear_object (&data->ready);
  if (data->bwrap_pidfd >= 0)
    close (data->bwrap_pidfd);
  if (data->info_fd >= 0)
    close (data->info_fd);
  if (data->log_fd >= 0)
    close (data->log_fd);
  g_free (data);
}

static void
start_failed (GTask      *task,
              StartData  *data,
              const char *reason)
{
  SandboxLocalInstance *self = SANDBOX_LOCAL_INSTANCE (data->instance);
  char log[TAIL_MAX + 1];
  gsize len = 0;
  GError *error = NULL;

  if (data->bwrap_pid > 0)
    _local_spawn_kill (data->bwrap_pidfd, data->bwrap_pid);
  /* Everything that had the write end is gone: read to the end. */
  for (; reason == NULL && data->log_fd >= 0 && len < TAIL_MAX;)
    {
      ssize_t n = read (data->log_fd, log + len, TAIL_MAX - len);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        break;
      len += (gsize) n;
    }
  log[len] = '\0';
  if (reason == NULL)
    reason = g_strstrip (log);
  _local_remove_cgroups (self->config);
  _local_destroy_dir (self->config->dir, NULL);
  if (self->config->limits == LOCAL_LIMITS_RLIMIT &&
      (self->config->memory_mb > 0 || self->config->pids_max > 0))
    /* The limits hold bubblewrap itself: a memory-mb too small to load it,
     * or a pids-max at or below the processes it needs (with RLIMIT_NPROC,
     * which holds a user that is not root, every process of the user
     * counts) fails it as a kernel without user namespaces would. Said so,
     * not blamed on the namespaces. */
    g_set_error (&error, SANDBOX_ERROR, SANDBOX_ERROR_EXEC,
                 _("bubblewrap could not set up the sandbox%s%s. The memory-mb (%u) and "
                   "pids-max (%u) limits hold bubblewrap itself too: memory-mb is the address "
                   "space of each process, and pids-max counts bubblewrap's processes (and, "
                   "unless you are root, every process of your user). Raise them, or leave "
                   "them out (0 is no limit); see Resource limits in docs/backends/local.md."),
                 reason && *reason ? ": " : "", reason ? reason : "",
                 self->config->memory_mb, self->config->pids_max);
  else
    g_set_error (&error, SANDBOX_ERROR, SANDBOX_ERROR_EXEC,
                 _("bubblewrap could not set up the sandbox%s%s. On a machine "
                   "where unprivileged user namespaces are off, enable them "
                   "(sysctl kernel.unprivileged_userns_clone=1); see "
                   "docs/backends/local.md."),
                 reason && *reason ? ": " : "", reason ? reason : "");
  g_task_return_error (task, error);
  g_object_unref (task);
}

static void
server_ready (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  GTask *task = user_data;
  StartData *data = g_task_get_task_data (task);
  SandboxLocalInstance *self = SANDBOX_LOCAL_INSTANCE (data->instance);
  g_autoptr(GBytes) bytes = g_input_stream_read_bytes_finish (G_INPUT_STREAM (source), result, NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonParser) parser = json_parser_new ();
  char info[1024];
  gsize len = 0;
  gint64 child_pid = 0;

  if (bytes == NULL || g_bytes_get_size (bytes) == 0)
    {
      start_failed (task, data, NULL);
      return;
    }

  /* bwrap wrote {"child-pid": N} and closed its end before the sandbox
   * started; the server closed the copy it inherited. */
  for (;;)
    {
      ssize_t n = read (data->info_fd, info + len, sizeof info - 1 - len);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        break;
      len += (gsize) n;
    }
  info[len] = '\0';
  if (json_parser_load_from_data (parser, info, (gssize) len, NULL) &&
      JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    child_pid = json_object_get_int_member_with_default (json_node_get_object (json_parser_get_root (parser)),
                                                         "child-pid", 0);
  if (child_pid <= 1 || child_pid > G_MAXINT)
    {
      start_failed (task, data, "no child-pid on --info-fd");
      return;
    }

  /* Recorded for destroy, from this or any other process; from now on
   * the instance can be found. */
  /* None once bwrap has ended: a one-shot sandbox's command, sent at
   * start, may have run and ended already; nothing is left to kill (and
   * its pid may be reused once it is reaped). */
  self->config->bwrap_pid = _local_spawn_ended (data->bwrap_pidfd) ? 0 : data->bwrap_pid;
  self->config->init_pid = child_pid;
  if (!_local_config_save (self->config, &error))
    {
      start_failed (task, data, error->message);
      return;
    }
  /* Recorded: image rm now sees this sandbox by itself. */
  if (self->config->image_hold >= 0)
    {
      close (self->config->image_hold);
      self->config->image_hold = -1;
    }

  if (g_cancellable_is_cancelled (g_task_get_cancellable (task)))
    {
      /* Cancelled while it started: nobody will get this sandbox, so it
       * must not keep running. */
      _local_destroy_dir (self->config->dir, NULL);
      g_task_return_error_if_cancelled (task);
      g_object_unref (task);
      return;
    }

  g_debug ("Local sandbox %s: server up (bwrap %" G_GINT64_FORMAT ", pid 1 = %" G_GINT64_FORMAT ")",
           self->config->id, self->config->bwrap_pid, child_pid);
  _sandbox_task_return_object (task, data->instance);
  g_object_unref (task);
}

static gboolean exec_send (SandboxLocalInstance *self,
                           SandboxCommand       *command,
                           int                  *conn,
                           int                   ends[3],
                           GError              **error);

/* Starts the sandbox's bwrap with its server as pid 1 and returns INSTANCE
 * on TASK once the server accepts commands. bwrap runs in its own session
 * and outlives this process; it is reaped (_local_spawn) if it ends first. */
void
_sandbox_local_instance_start (SandboxLocalInstance *self,
                               SandboxCommand       *once,
                               GTask                *task)
{
  LocalConfig *config = self->config;
  g_autoptr(GPtrArray) argv = NULL;
  int child_fds[HIGHEST_CHILD_FD + 1];
  ChildLimits limits = { 0 };
  gboolean pid1_setup;
  StartData *data;
  GError *error = NULL;
  int listen_fd = -1, null_fd = -1, watch_fd = -1;
  int seccomp_pair[2] = { -1, -1 };
  gboolean bwrap_ended = FALSE;   /* before it read the seccomp program */
  int ready_pipe[2] = { -1, -1 }, info_pipe[2] = { -1, -1 }, log_pipe[2] = { -1, -1 };
  int info_keep = -1;
  int token_pipe[2] = { -1, -1 }, lease_pipe[2] = { -1, -1 }, stdin_pipe[2] = { -1, -1 };
  int once_pair[2] = { -1, -1 };
  guint8 secret[SBX_TOKEN_HEX / 2];
  int errsv;

  data = g_new0 (StartData, 1);
  data->instance = g_object_ref (SANDBOX_INSTANCE (self));
  data->info_fd = -1;
  data->log_fd = -1;
  data->bwrap_pidfd = -1;
  g_task_set_task_data (task, data, (GDestroyNotify) start_data_free);

  limits.cgroup_fd = -1;
  limits.v1_fds[0] = limits.v1_fds[1] = -1;
  limits.limits = config->limits;
  if (!check_destinations (config, &error))
    goto fail;
  if (config->limits == LOCAL_LIMITS_CGROUP2)
    {
      g_autofree char *procs = NULL;

      config->cgroup = make_cgroup (config, &error);
      if (config->cgroup == NULL)
        goto fail;
      procs = g_build_filename (config->cgroup, "cgroup.procs", NULL);
      limits.cgroup_fd = open_for_child (procs);
    }
  else if (config->limits == LOCAL_LIMITS_RLIMIT)
    {
      make_cgroups_v1 (config, limits.v1_fds);
      limits.memory = (rlim_t) config->memory_mb << 20;
      limits.nproc = config->pids_max;
      /* More CPUs than an affinity mask holds: all of them (no overflow). */
      limits.ncpu = config->cpu > 0 && config->cpu < CPU_SETSIZE ? MAX (1, (int) (config->cpu + 0.999)) : 0;
      limits.cpu_start = next_cpu_start ();
    }
  if (config->disk_mb > 0)
    limits.fsize = (rlim_t) config->disk_mb << 20;

  /* The server's secret: only the instance directory, which no sandbox
   * sees, keeps it. */
  if (getrandom (secret, sizeof secret, 0) != sizeof secret)
    {
      errsv = errno;
      g_set_error (&error, SANDBOX_ERROR, SANDBOX_ERROR_FAILED,
                   _("Cannot make the sandbox's secret: %s"), g_strerror (errsv));
      goto fail;
    }
  g_free (config->token);
  config->token = g_malloc (SBX_TOKEN_HEX + 1);
  for (guint i = 0; i < sizeof secret; i++)
    g_snprintf (config->token + 2 * i, 3, "%02x", secret[i]);

  listen_fd = socket_at (config->dir, TRUE);
  /* bwrap's stdin, which its pid 1 keeps: an empty pipe, not a host file. */
  if (pipe2 (stdin_pipe, O_CLOEXEC) == 0)
    {
      null_fd = stdin_pipe[0];
      clear_fd (&stdin_pipe[1]);
    }
  /* The server ends the sandbox when its directory is removed: the watch
   * is set here, so that the server holds no descriptor of the directory. */
  watch_fd = inotify_init1 (IN_CLOEXEC | IN_NONBLOCK);
  if (watch_fd >= 0 && inotify_add_watch (watch_fd, config->dir, IN_DELETE | IN_DELETE_SELF) < 0)
    clear_fd (&watch_fd);
  if (listen_fd < 0 || null_fd < 0 ||
      pipe2 (ready_pipe, O_CLOEXEC) < 0 || pipe2 (info_pipe, O_CLOEXEC) < 0 ||
      pipe2 (log_pipe, O_CLOEXEC) < 0 || pipe2 (token_pipe, O_CLOEXEC) < 0 ||
      write (token_pipe[1], config->token, SBX_TOKEN_HEX) != SBX_TOKEN_HEX ||
      (config->die_with_owner && pipe2 (lease_pipe, O_CLOEXEC) < 0) ||
      (once != NULL && socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, once_pair) < 0) ||
      socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, seccomp_pair) < 0)
    {
      errsv = errno;
      g_set_error (&error, SANDBOX_ERROR, SANDBOX_ERROR_FAILED,
                   _("Cannot prepare the sandbox directory %s: %s. Check that it is on a "
                     "local file system you can write to (see SANDBOX_LOCAL_ROOT)."),
                   config->dir, g_strerror (errsv));
      goto fail;
    }

  /* What bwrap gets as each of its descriptors. */
  for (guint i = 0; i < G_N_ELEMENTS (child_fds); i++)
    child_fds[i] = -1;
  child_fds[STDIN_FILENO] = null_fd;
  child_fds[STDOUT_FILENO] = child_fds[STDERR_FILENO] = log_pipe[1];
  child_fds[LISTEN_FD] = listen_fd;
  child_fds[INFO_FD] = info_pipe[1];
  child_fds[INFO_KEEP_FD] = info_keep = fcntl (info_pipe[0], F_DUPFD_CLOEXEC, HIGHEST_CHILD_FD + 1);
  child_fds[READY_FD] = ready_pipe[1];
  child_fds[TOKEN_FD] = token_pipe[0];
  child_fds[SECCOMP_FD] = seccomp_pair[1];
  child_fds[WATCH_FD] = watch_fd;
  child_fds[LEASE_FD] = lease_pipe[0];
  child_fds[ONCE_FD] = once_pair[1];
  pid1_setup = pid1_sets_up (_sandbox_local_backend_get_bwrap (get_backend (self)));
  argv = build_bwrap_argv (self, watch_fd >= 0, once_pair[1] >= 0, pid1_setup);
  limits.private_ns = !pid1_setup;
  clear_fd (&token_pipe[1]);

  data->bwrap_pid = _local_spawn ((const char * const *) argv->pdata, child_fds, G_N_ELEMENTS (child_fds),
                                  child_setup, &limits, &data->bwrap_pidfd, &error);
  /* The child has its copies (or there is none). */
  clear_fd (&null_fd);
  clear_fd (&log_pipe[1]);
  clear_fd (&listen_fd);
  clear_fd (&info_pipe[1]);
  clear_fd (&info_keep);
  clear_fd (&ready_pipe[1]);
  clear_fd (&token_pipe[0]);
  clear_fd (&seccomp_pair[1]);
  clear_fd (&watch_fd);
  clear_fd (&lease_pipe[0]);
  clear_fd (&once_pair[1]);
  for (guint i = 0; i < G_N_ELEMENTS (limits.v1_fds); i++)
    clear_fd (&limits.v1_fds[i]);
  if (limits.cgroup_fd >= 0)
    close (limits.cgroup_fd);
  if (data->bwrap_pid < 0)
    goto fail;
  /* bwrap reads the seccomp program only after the sandbox's mounts, just
   * before it starts pid 1: it is built (libseccomp, once per process)
   * while bwrap is at work, not before it starts. Should that fail, bwrap
   * is killed before it could see the end of an incomplete program. */
  if (!_local_seccomp_write (seccomp_pair[0], &error))
    {
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE))
        {
          /* bwrap ended before it read the program (a limit it could not
           * start under, say): what it said is the reason, not the pipe. */
          g_clear_error (&error);
          data->log_fd = log_pipe[0];
          log_pipe[0] = -1;
          bwrap_ended = TRUE;
          goto fail;
        }
      _local_spawn_kill (data->bwrap_pidfd, data->bwrap_pid);
      goto fail;
    }
  clear_fd (&seccomp_pair[0]);
  if (lease_pipe[1] >= 0)
    {
      lease_hold (config->id, lease_pipe[1]);
      lease_pipe[1] = -1;
    }

  clear_fd (&self->once_conn);
  self->once_conn = once_pair[0];
  once_pair[0] = -1;
  /* The command goes at once: pid 1 runs it as soon as it is up, while we
   * read its ready byte. (If this fails, the first exec sends it.) */
  if (self->once_conn >= 0 &&
      !exec_send (self, once, &self->once_conn, self->once_ends, NULL))
    for (guint i = 0; i < 3; i++)
      clear_fd (&self->once_ends[i]);
  data->info_fd = info_pipe[0];
  data->log_fd = log_pipe[0];
  info_pipe[0] = log_pipe[0] = -1;
  data->ready = g_unix_input_stream_new (ready_pipe[0], TRUE);
  ready_pipe[0] = -1;
  g_input_stream_read_bytes_async (data->ready, 1, G_PRIORITY_DEFAULT, NULL, server_ready, task);
  return;

fail:
  for (int i = 0; i < 2; i++)
    {
      clear_fd (&ready_pipe[i]);
      clear_fd (&info_pipe[i]);
      clear_fd (&log_pipe[i]);
      clear_fd (&token_pipe[i]);
      clear_fd (&lease_pipe[i]);
      clear_fd (&once_pair[i]);
      clear_fd (&seccomp_pair[i]);
    }
  clear_fd (&listen_fd);
  clear_fd (&null_fd);
  clear_fd (&watch_fd);
  if (bwrap_ended)
    {
      /* start_failed reads bwrap's log and cleans up as for any start. */
      start_failed (task, data, NULL);
      return;
    }
  for (guint i = 0; i < G_N_ELEMENTS (limits.v1_fds); i++)
    clear_fd (&limits.v1_fds[i]);
  _local_remove_cgroups (config);
  _local_destroy_dir (config->dir, NULL);
  g_task_return_error (task, error);
  g_object_unref (task);
}

/* ------------------------------------------------------------------ */
/* exec: one connection to the server                                  */

typedef struct _ExecData ExecData;

typedef struct
{
  ExecData      *exec;
  GInputStream  *in;
  gboolean       is_stderr;
  GSource       *wait;      /* readable-source while waiting for data */
  gboolean       draining;  /* take what is in the pipe, but wait no more */
  gsize          drained;
  gboolean       is_tty;    /* a terminal's master: EIO is its end-of-file */
  gboolean       tty_waited; /* draining a terminal: waited once for late output */
} Pump;

/* Once the command has ended, at most this much more is read from each
 * pipe: everything the command wrote is in the pipe by then (at most its
 * capacity); more can only come from processes it left running. */
#define DRAIN_MAX (1 << 20)

struct _ExecData
{
  GTask        *task;
  int           conn;        /* to the server; shut down = kill the command */
  Pump          out;
  Pump          err;
  SandboxOutput *output;     /* where both pumps write */
  GInputStream *status_in;
  GByteArray   *status;
  GOutputStream *stdin_pipe;
  guint         pending;
  gboolean      timed_out;
  gboolean      cancelled;
  GSource      *timeout_source;
  GCancellable *cancellable;
  gulong        cancel_id;
  gint64        start;
  GError       *error;
  char         *program;
  char         *cwd;
  struct _TtyLink *tty;      /* a command on a terminal, or NULL */
  gboolean      once;        /* on a one-shot sandbox's connection */
};

/* ------------------------------------------------------------------ */
/* A command on a terminal: the master side of the sandbox's            */
/* pseudo-terminal (SBX_MAGIC_TTY in sandbox-local-wire.h), shared with */
/* the handlers of the command's resize-tty, send-signal and send-input */
/* signals, which may run in any thread.                               */

typedef struct _TtyLink
{
  gatomicrefcount  ref;
  GMutex           lock;
  int              master;   /* -1 once the command has ended */
  SandboxCommand  *command;
  gulong           handlers[3];
  GMainContext    *context;  /* the exec's: where queued input is written */
  GByteArray      *pending;  /* input the terminal could not take yet */
  GSource         *writer;   /* waits for room, while pending is not empty */
} TtyLink;

static TtyLink *
tty_link_ref (TtyLink *link)
{
  g_atomic_ref_count_inc (&link->ref);
  return link;
}

static void
tty_link_unref (gpointer data, GClosure *closure)
{
  TtyLink *link = data;

  if (!g_atomic_ref_count_dec (&link->ref))
    return;
  if (link->master >= 0)
    close (link->master);
  g_byte_array_unref (link->pending);
  g_main_context_unref (link->context);
  g_mutex_clear (&link->lock);
  g_free (link);
}

static void
tty_resize (SandboxCommand *command,
            guint           rows,
            guint           cols,
            TtyLink        *link)
{
  struct winsize ws = { (unsigned short) rows, (unsigned short) cols, 0, 0 };

  g_mutex_lock (&link->lock);
  if (link->master >= 0)
    ioctl (link->master, TIOCSWINSZ, &ws);
  g_mutex_unlock (&link->lock);
}

static gboolean
tty_signal (SandboxCommand *command,
            int             signum,
            TtyLink        *link)
{
  gboolean ok = FALSE;

  g_mutex_lock (&link->lock);
  /* To the terminal's foreground process group, as a key would. A pty
   * makes only the signals of its keys (SIGINT, SIGQUIT, SIGTSTP); the
   * others go to that group by its id as this side sees it (the sandbox's
   * pid namespace is a child of ours), asked twice so that a group that
   * ended in between is never mistaken for a new one with the same id. */
  if (link->master >= 0)
    {
      ok = ioctl (link->master, TIOCSIG, signum) == 0;
      if (!ok)
        {
          pid_t pgrp = -1, again = -1;

          if (ioctl (link->master, TIOCGPGRP, &pgrp) == 0 && pgrp > 1 &&
              kill (-pgrp, 0) == 0 && ioctl (link->master, TIOCGPGRP, &again) == 0 &&
              again == pgrp)
            ok = kill (-pgrp, signum) == 0;
        }
    }
  g_mutex_unlock (&link->lock);
  return ok;
}

/* Writes what is pending without blocking; with the lock held. */
static void
tty_flush_locked (TtyLink *link)
{
  while (link->master >= 0 && link->pending->len > 0)
    {
      ssize_t n = write (link->master, link->pending->data, link->pending->len);

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && errno == EAGAIN)
        return;
      if (n <= 0)
        {
          /* The terminal is gone: nobody will read the rest. */
          g_byte_array_set_size (link->pending, 0);
          return;
        }
      g_byte_array_remove_range (link->pending, 0, (guint) n);
    }
}

static gboolean tty_writable (int fd, GIOCondition condition, gpointer user_data);

/* With the lock held: waits for room on the exec's context while input is
 * pending. */
static void
tty_schedule_locked (TtyLink *link)
{
  if (link->pending->len == 0 || link->master < 0 || link->writer != NULL)
    return;
  link->writer = g_unix_fd_source_new (link->master, G_IO_OUT);
  g_source_set_callback (link->writer, (GSourceFunc) (void (*) (void)) tty_writable,
                         tty_link_ref (link), (GDestroyNotify) (void (*) (void)) tty_link_unref);
  g_source_set_static_name (link->writer, "[libsandbox] terminal input");
  g_source_attach (link->writer, link->context);
}

static gboolean
tty_writable (int          fd,
              GIOCondition condition,
              gpointer     user_data)
{
  TtyLink *link = user_data;
  gboolean more;

  g_mutex_lock (&link->lock);
  tty_flush_locked (link);
  more = link->pending->len > 0 && link->master >= 0;
  if (!more)
    g_clear_pointer (&link->writer, g_source_unref);
  g_mutex_unlock (&link->lock);
  return more ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

/* Types DATA on the terminal, in order, never blocking: what the terminal
 * cannot take yet (its input queue is full while the command does not
 * read) waits, on the exec's context, for room. Blocking here could
 * deadlock a caller that reads the command's output on the same thread. */
static gboolean
tty_input (SandboxCommand *command,
           GBytes         *bytes,
           TtyLink        *link)
{
  gsize len = 0;
  const guint8 *p = g_bytes_get_data (bytes, &len);
  gboolean ok;

  g_mutex_lock (&link->lock);
  ok = link->master >= 0;
  if (ok)
    {
      g_byte_array_append (link->pending, p, (guint) len);
      tty_flush_locked (link);
      tty_schedule_locked (link);
    }
  g_mutex_unlock (&link->lock);
  return ok;
}

static TtyLink *
tty_link_new (SandboxCommand *command,
              int             master,
              GMainContext   *context)
{
  TtyLink *link = g_new0 (TtyLink, 1);

  g_atomic_ref_count_init (&link->ref);
  link->context = g_main_context_ref (context);
  link->pending = g_byte_array_new ();
  g_mutex_init (&link->lock);
  link->master = master;
  link->command = command;
  link->handlers[0] = g_signal_connect_data (command, "resize-tty", G_CALLBACK (tty_resize),
                                             tty_link_ref (link), tty_link_unref, 0);
  link->handlers[1] = g_signal_connect_data (command, "send-signal", G_CALLBACK (tty_signal),
                                             tty_link_ref (link), tty_link_unref, 0);
  link->handlers[2] = g_signal_connect_data (command, "send-input", G_CALLBACK (tty_input),
                                             tty_link_ref (link), tty_link_unref, 0);
  return link;
}

/* The command has ended: the handlers do nothing more. */
static void
tty_link_close (TtyLink *link)
{
  g_mutex_lock (&link->lock);
  if (link->master >= 0)
    close (link->master);
  link->master = -1;
  g_byte_array_set_size (link->pending, 0);
  if (link->writer != NULL)
    {
      g_source_destroy (link->writer);
      g_clear_pointer (&link->writer, g_source_unref);
    }
  g_mutex_unlock (&link->lock);
  for (guint i = 0; i < G_N_ELEMENTS (link->handlers); i++)
    g_signal_handler_disconnect (link->command, link->handlers[i]);
  tty_link_unref (link, NULL);
}

/* Receives the master side of the command's terminal. Returns it, or -1
 * with what came instead (an error line) appended to STATUS. */
static int
receive_pty (int         conn,
             GByteArray *status)
{
  union { char buf[CMSG_SPACE (sizeof (int))]; struct cmsghdr align; } control;
  char line[sizeof SBX_REPLY_PTY];
  struct iovec iov = { line, sizeof line };
  struct msghdr msg = { 0 };
  struct cmsghdr *cmsg;
  int master = -1;
  ssize_t n;

  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.buf;
  msg.msg_controllen = sizeof control.buf;
  do
    n = recvmsg (conn, &msg, MSG_CMSG_CLOEXEC | MSG_WAITALL);
  while (n < 0 && errno == EINTR);
  if (n <= 0)
    return -1;
  for (cmsg = CMSG_FIRSTHDR (&msg); cmsg != NULL; cmsg = CMSG_NXTHDR (&msg, cmsg))
    if (cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS &&
        cmsg->cmsg_len == CMSG_LEN (sizeof (int)))
      memcpy (&master, CMSG_DATA (cmsg), sizeof master);
  if (n == (ssize_t) sizeof line && memcmp (line, SBX_REPLY_PTY "\n", sizeof line) == 0 &&
      master >= 0)
    return master;
  if (master >= 0)
    close (master);
  g_byte_array_append (status, (const guint8 *) line, (guint) n);
  return -1;
}

static void
pump_clear (Pump *pump)
{
  g_clear_object (&pump->in);
  if (pump->wait != NULL)
    {
      g_source_destroy (pump->wait);
      g_clear_pointer (&pump->wait, g_source_unref);
    }
}

static void
exec_data_free (ExecData *data)
{
  pump_clear (&data->out);
  pump_clear (&data->err);
  g_clear_object (&data->output);
  g_clear_object (&data->status_in);
  g_clear_pointer (&data->status, g_byte_array_unref);
  g_clear_object (&data->stdin_pipe);
  g_clear_pointer (&data->tty, tty_link_close);
  if (data->timeout_source != NULL)
    {
      g_source_destroy (data->timeout_source);
      g_source_unref (data->timeout_source);
    }
  if (data->cancellable != NULL)
    {
      g_cancellable_disconnect (data->cancellable, data->cancel_id);
      g_object_unref (data->cancellable);
    }
  if (data->conn >= 0)
    close (data->conn);
  g_clear_error (&data->error);
  g_free (data->program);
  g_free (data->cwd);
  g_free (data);
}

/* The server kills the command's process group when our side of the
 * connection shuts down, and still reports the status. Safe from any
 * thread. */
static void
kill_process (ExecData *data)
{
  if (data->conn >= 0)
    shutdown (data->conn, SHUT_WR);
}

static void
exec_complete (ExecData *data)
{
  GTask *task = data->task;
  SandboxLocalInstance *self = SANDBOX_LOCAL_INSTANCE (g_task_get_source_object (task));
  g_autofree char *status = NULL;
  int exit_status = -1, term_signal = 0;
  int wstatus = 0;
  char stage[16] = "";
  int errnum = 0;

  status = g_strndup (data->status->len ? (const char *) data->status->data : "", data->status->len);

  if (data->cancelled)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                               _("The command was cancelled and killed"));
      goto out;
    }
  if (data->error != NULL)
    {
      g_task_return_error (task, g_steal_pointer (&data->error));
      goto out;
    }

  if (sscanf (status, "error %15s %d", stage, &errnum) == 2)
    {
      if (strcmp (stage, "chdir") == 0)
        g_task_return_new_error (task, SANDBOX_ERROR, SANDBOX_ERROR_EXEC,
                                 _("Cannot run the command in %s: %s in the sandbox. "
                                   "Use an existing directory as the working directory, "
                                   "or create it first."),
                                 data->cwd, g_strerror (errnum));
      else if (strcmp (stage, "pty") == 0)
        g_task_return_new_error (task, SANDBOX_ERROR, SANDBOX_ERROR_EXEC,
                                 _("Cannot give the command “%s” a terminal in the sandbox: %s. "
                                   "Run it without a terminal, or check that the sandbox's "
                                   "/dev/pts is usable."),
                                 data->program, g_strerror (errnum));
      else
        g_task_return_new_error (task, SANDBOX_ERROR, SANDBOX_ERROR_EXEC,
                                 _("Cannot run “%s” in the sandbox: %s. Check that it is "
                                   "installed in the sandbox's image and on its PATH."),
                                 data->program, g_strerror (errnum));
      goto out;
    }

  if (strncmp (status, "status ", 7) == 0)
    {
      wstatus = atoi (status + 7);
      if (WIFEXITED (wstatus))
        exit_status = WEXITSTATUS (wstatus);
      else if (WIFSIGNALED (wstatus))
        term_signal = WTERMSIG (wstatus);
    }
  else if (instance_gone (self, NULL))
    {
      g_task_return_new_error (task, SANDBOX_ERROR, SANDBOX_ERROR_NOT_FOUND,
                               _("The sandbox was destroyed while the command “%s” was running."),
                               data->program);
      goto out;
    }
  else if (reached_time_limit (self->config))
    {
      sandbox_instance_set_state (SANDBOX_INSTANCE (self), SANDBOX_INSTANCE_STATE_STOPPED);
      g_task_return_error (task, time_limit_error (self->config, data->program, TRUE));
      goto out;
    }
  else
    {
      /* The server never reported: the sandbox died under the command. */
      sandbox_instance_set_state (SANDBOX_INSTANCE (self), SANDBOX_INSTANCE_STATE_STOPPED);
      g_task_return_new_error (task, SANDBOX_ERROR, SANDBOX_ERROR_UNAVAILABLE,
                               _("The local sandbox %s stopped while the command “%s” was "
                                 "running (its processes were killed, or it reached its "
                                 "timeout). Remove it with “sandboxctl rm %s” and create "
                                 "a new one."),
                               self->config->id, data->program, self->config->id);
      goto out;
    }

  {
    g_autoptr(SandboxExecResult) result =
      _sandbox_output_steal_result (data->output, exit_status, term_signal, data->timed_out, data->start);

    _sandbox_task_return_object (task, result);
  }

out:
  exec_data_free (data);
  g_object_unref (task);
}

static void
exec_record_error (ExecData *data,
                   GError   *error)
{
  if (data->error == NULL && !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    data->error = error;
  else
    g_error_free (error);
}

/* Everything the command wrote has been written (or could not be). */
static void
exec_output_flushed (GObject      *source,
                     GAsyncResult *result,
                     gpointer      user_data)
{
  ExecData *data = user_data;
  GError *error = NULL;

  if (!_sandbox_output_flush_finish (data->output, result, &error))
    exec_record_error (data, error);
  exec_complete (data);
}

/* Once the command has ended and its pipes are read: wait for its output
 * to be written, without blocking (the caller may read its stream slowly);
 * a cancellation stops waiting. */
static void
exec_step_done (ExecData *data)
{
  g_assert (data->pending > 0);
  if (--data->pending > 0)
    return;
  if (data->cancelled)
    _sandbox_output_cancel (data->output);
  _sandbox_output_flush_async (data->output, data->cancellable, exec_output_flushed, data);
}

static void pump_read (Pump *pump);

/* The command has ended: the pipes may stay open in processes it left
 * behind, so they are read only as far as they hold data. */
static void
pumps_drain (ExecData *data)
{
  Pump *pumps[] = { &data->out, &data->err };

  for (guint i = 0; i < G_N_ELEMENTS (pumps); i++)
    {
      pumps[i]->draining = TRUE;
      /* Waiting for data that may never come: read what is there instead.
       * (A pump that is writing drains when it reads next.) */
      if (pumps[i]->wait != NULL)
        {
          g_source_destroy (pumps[i]->wait);
          g_clear_pointer (&pumps[i]->wait, g_source_unref);
          pump_read (pumps[i]);
        }
    }
}

/* Back-pressure: the pipe is read again once the output has caught up. */
static void
pump_caught_up (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  Pump *pump = user_data;

  /* A write error or a cancellation is the exec's to report: keep
   * draining so the command is not blocked on a full pipe. */
  _sandbox_output_flush_finish (SANDBOX_OUTPUT (source), result, NULL);
  pump_read (pump);
}

static gboolean
pump_readable (GObject  *stream,
               gpointer  user_data)
{
  Pump *pump = user_data;

  g_clear_pointer (&pump->wait, g_source_unref);
  pump_read (pump);
  return G_SOURCE_REMOVE;
}

/* Waits for PUMP's input to become readable, or (READY_TIME not -1) until
 * that monotonic time, whichever comes first; then reads again. */
static void
pump_wait (Pump   *pump,
           gint64  ready_time)
{
  pump->wait = g_pollable_input_stream_create_source (G_POLLABLE_INPUT_STREAM (pump->in), NULL);
  g_source_set_callback (pump->wait, (GSourceFunc) (void (*) (void)) pump_readable, pump, NULL);
  g_source_set_static_name (pump->wait, "[libsandbox] exec output");
  g_source_set_ready_time (pump->wait, ready_time);
  g_source_attach (pump->wait, g_task_get_context (pump->exec->task));
}

/* Reads without blocking, into the output, until it holds too much (then
 * waits for it to catch up) or the pipe is empty (then waits for data with
 * a source, which unlike a cancelled read never loses what a read took). */
static void
pump_read (Pump *pump)
{
  SandboxOutput *output = pump->exec->output;
  guint8 buf[65536];
  gssize n;
  GError *error = NULL;
  gboolean got = FALSE;

  for (;;)
    {
      if (_sandbox_output_get_pending (output) > SANDBOX_OUTPUT_HIGH_WATER)
        {
          _sandbox_output_flush_async (output, pump->exec->cancellable, pump_caught_up, pump);
          return;
        }
      n = !pump->draining || pump->drained < DRAIN_MAX
          ? g_pollable_input_stream_read_nonblocking (G_POLLABLE_INPUT_STREAM (pump->in), buf, sizeof buf,
                                                      NULL, &error)
          : 0;
      if (n <= 0)
        break;
      got = TRUE;
      if (pump->draining)
        pump->drained += (gsize) n;
      _sandbox_output_write (output, pump->is_stderr, buf, (gsize) n);
    }
  if (n < 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK) && !pump->draining)
    {
      g_clear_error (&error);
      pump_wait (pump, -1);
      return;
    }
  /* A terminal passes what the command wrote to the master side a little
   * after the write (the kernel's flip buffer), so the command's last
   * lines may not be readable yet when its end is known: wait for them,
   * up to 100 ms at a time for as long as more comes. The master reads EIO
   * once no process has the terminal open, which ends this at once. */
  if (n < 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK) &&
      pump->draining && pump->is_tty && (got || !pump->tty_waited))
    {
      g_clear_error (&error);
      pump->tty_waited = TRUE;
      pump_wait (pump, g_get_monotonic_time () + 100 * G_TIME_SPAN_MILLISECOND);
      return;
    }
  /* End of file, an error, or (draining) nothing more for now: done. A
   * terminal's master reads EIO once no process has the terminal open. */
  if (error != NULL && !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK) &&
      !pump->is_tty)
    exec_record_error (pump->exec, error);
  else
    g_clear_error (&error);
  exec_step_done (pump->exec);
}

static void
pump_start (ExecData *data,
            Pump     *pump,
            int       fd,
            gboolean  is_stderr)
{
  pump->exec = data;
  pump->in = g_unix_input_stream_new (fd, TRUE);
  pump->is_stderr = is_stderr;
  data->pending++;
  pump_read (pump);
}

static void
status_got (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  ExecData *data = user_data;
  g_autoptr(GBytes) bytes = g_input_stream_read_bytes_finish (G_INPUT_STREAM (source), result, NULL);

  if (bytes != NULL && g_bytes_get_size (bytes) > 0)
    {
      g_byte_array_append (data->status, g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
      if (data->status->len < 4096)
        {
          g_input_stream_read_bytes_async (data->status_in, 1024, G_PRIORITY_DEFAULT, NULL,
                                           status_got, data);
          return;
        }
    }
  /* The server closes the connection once the command has ended (or it
   * died itself); a one-shot sandbox's once the sandbox has. */
  if (data->once && data->status->len > 0)
    SANDBOX_LOCAL_INSTANCE (g_task_get_source_object (data->task))->once_ended = TRUE;
  pumps_drain (data);
  exec_step_done (data);
}

static void
stdin_written (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  ExecData *data = user_data;

  /* A command that exits without reading its input is not an error. */
  g_output_stream_write_all_finish (G_OUTPUT_STREAM (source), result, NULL, NULL);
  g_output_stream_close (G_OUTPUT_STREAM (source), NULL, NULL);
  exec_step_done (data);
}

static gboolean
exec_timed_out (gpointer user_data)
{
  ExecData *data = user_data;

  g_debug ("Command %s ran out of time; killing its process group", data->program);
  data->timed_out = TRUE;
  kill_process (data);
  return G_SOURCE_REMOVE;
}

static void
exec_cancelled (GCancellable *cancellable,
                gpointer      user_data)
{
  ExecData *data = user_data;

  /* Runs in whichever thread cancelled: only flag and kill. */
  data->cancelled = TRUE;
  kill_process (data);
}

static void
add_string (GByteArray *payload,
            const char *s)
{
  g_byte_array_append (payload, (const guint8 *) s, strlen (s) + 1);
}

static void
add_vector (GByteArray         *payload,
            const char * const *v)
{
  char count[16];

  g_snprintf (count, sizeof count, "%u", g_strv_length ((char **) v));
  add_string (payload, count);
  for (guint i = 0; v[i] != NULL; i++)
    add_string (payload, v[i]);
}

/* After ETOOMANYREFS on a send with descriptors: the kernel counts the
 * descriptors in flight per user (the caller's uid, which every sandbox of
 * the caller runs as) and refuses a sender without CAP_SYS_ADMIN whose
 * soft RLIMIT_NOFILE the count is above. A command of another sandbox
 * can hold that many (up to its own limit, which pid 1 sets 1,024 below
 * the hard limit the sandbox was made with: session sec29); this process's
 * soft limit is raised to its hard one, for good (another thread may be
 * using what it allows), and TRUE says to send again. FALSE when it was
 * already there. */
static gboolean
send_fds_raised (void)
{
  struct rlimit rl;

  if (getrlimit (RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max)
    {
      errno = ETOOMANYREFS;
      return FALSE;
    }
  g_debug ("descriptors in flight above this process's open-files limit (%llu): raised to %llu",
           (unsigned long long) rl.rlim_cur, (unsigned long long) rl.rlim_max);
  rl.rlim_cur = rl.rlim_max;
  if (setrlimit (RLIMIT_NOFILE, &rl) != 0)
    {
      errno = ETOOMANYREFS;
      return FALSE;
    }
  return TRUE;
}

/* Sends the command to the server with its stdin, stdout and stderr. */
/* Sends the request on *CONN; when *CONN is -1, connects it to the
 * server in DIR first, once the request is ready, so that the server,
 * woken by the connection, finds the header there (one wake-up, not two).
 * FALSE with errno set; *CONN stays -1 when the connect failed. */
static gboolean
send_request (int                *conn,
              const char         *dir,
              const char         *token,
              const char         *cwd,
              const char * const *argv,
              const char * const *envp,
              const int           fds[3],
              SandboxCommand     *command)
{
  g_autoptr(GByteArray) payload = g_byte_array_new ();
  union { char buf[CMSG_SPACE (3 * sizeof (int))]; struct cmsghdr align; } control;
  char header[SBX_HEADER_LEN];
  struct iovec iov[2];
  struct msghdr msg = { 0 };
  struct cmsghdr *cmsg;
  guint32 len;
  gsize sent = 0, total;

  add_string (payload, cwd);
  add_vector (payload, argv);
  add_vector (payload, envp);
  if (sandbox_command_get_tty (command))
    {
      guint rows, cols;
      char size[16];

      sandbox_command_get_tty_size (command, &rows, &cols);
      g_snprintf (size, sizeof size, "%u", rows);
      add_string (payload, size);
      g_snprintf (size, sizeof size, "%u", cols);
      add_string (payload, size);
    }
  len = payload->len;
  fill_header (header, sandbox_command_get_tty (command) ? SBX_MAGIC_TTY : SBX_MAGIC_EXEC,
               len, token);
  total = sizeof header + len;

  memset (&control, 0, sizeof control);
  iov[0] = (struct iovec) { header, sizeof header };
  iov[1] = (struct iovec) { payload->data, payload->len };
  msg.msg_iov = iov;
  msg.msg_iovlen = 2;
  msg.msg_control = control.buf;
  msg.msg_controllen = sizeof control.buf;
  cmsg = CMSG_FIRSTHDR (&msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN (3 * sizeof (int));
  memcpy (CMSG_DATA (cmsg), fds, 3 * sizeof (int));

  if (*conn < 0 && (*conn = socket_at (dir, FALSE)) < 0)
    return FALSE;
  while (sent < total)
    {
      ssize_t n = sendmsg (*conn, &msg, MSG_NOSIGNAL);

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && errno == ETOOMANYREFS && msg.msg_control != NULL && send_fds_raised ())
        continue;
      if (n <= 0)
        return FALSE;
      sent += (gsize) n;
      /* The rest goes without the descriptors. */
      msg.msg_control = NULL;
      msg.msg_controllen = 0;
      while (msg.msg_iovlen > 0 && (gsize) n >= msg.msg_iov[0].iov_len)
        {
          n -= (ssize_t) msg.msg_iov[0].iov_len;
          msg.msg_iov++;
          msg.msg_iovlen--;
        }
      if (msg.msg_iovlen > 0)
        {
          msg.msg_iov[0].iov_base = (char *) msg.msg_iov[0].iov_base + n;
          msg.msg_iov[0].iov_len -= (gsize) n;
        }
    }
  return TRUE;
}

static char *
command_cwd (LocalConfig    *config,
             SandboxCommand *command)
{
  return g_strdup (sandbox_command_get_cwd (command) ? sandbox_command_get_cwd (command)
                   : config->cwd ? config->cwd : config->workdir);
}

/* Makes COMMAND's pipes and sends it on *CONN with their other ends
 * (connecting *CONN first when it is -1, see send_request).
 * Returns our ends in ENDS: stdin's write end (-1 without stdin bytes:
 * the command reads an empty pipe, never our stdin), stdout's and
 * stderr's read ends. FALSE with ERROR unset: the connect (*CONN still
 * -1) or the send failed (errno).
 * (Pipes only: a command gets no descriptor of a host file.) */
static gboolean
exec_send (SandboxLocalInstance *self,
           SandboxCommand       *command,
           int                  *conn,
           int                   ends[3],
           GError              **error)
{
  LocalConfig *config = self->config;
  g_auto(GStrv) envp = NULL;
  g_autofree char *cwd = command_cwd (config, command);
  int out_pipe[2] = { -1, -1 }, err_pipe[2] = { -1, -1 }, in_pipe[2] = { -1, -1 };
  int fds[3];
  gboolean sent;
  int errsv;

  if (!g_unix_open_pipe (out_pipe, FD_CLOEXEC, error) ||
      !g_unix_open_pipe (err_pipe, FD_CLOEXEC, error) ||
      !g_unix_open_pipe (in_pipe, FD_CLOEXEC, error))
    {
      for (int i = 0; i < 2; i++)
        {
          clear_fd (&in_pipe[i]);
          clear_fd (&out_pipe[i]);
          clear_fd (&err_pipe[i]);
        }
      return FALSE;
    }
  if (sandbox_command_get_stdin (command) == NULL)
    clear_fd (&in_pipe[1]);

  envp = build_environ (config, command);
  fds[0] = in_pipe[0];
  fds[1] = out_pipe[1];
  fds[2] = err_pipe[1];
  sent = send_request (conn, config->dir, config->token, cwd, sandbox_command_get_argv (command),
                       (const char * const *) envp, fds, command);
  errsv = errno;
  /* The command holds the other ends now. */
  clear_fd (&in_pipe[0]);
  clear_fd (&out_pipe[1]);
  clear_fd (&err_pipe[1]);
  if (!sent)
    {
      clear_fd (&in_pipe[1]);
      clear_fd (&out_pipe[0]);
      clear_fd (&err_pipe[0]);
      errno = errsv;
      return FALSE;
    }
  ends[0] = in_pipe[1];
  ends[1] = out_pipe[0];
  ends[2] = err_pipe[0];
  return TRUE;
}

static void
sandbox_local_instance_exec (SandboxInstance *instance,
                             SandboxCommand  *command,
                             GCancellable    *cancellable,
                             GTask           *task)
{
  SandboxLocalInstance *self = SANDBOX_LOCAL_INSTANCE (instance);
  LocalConfig *config = self->config;
  GError *error = NULL;
  ExecData *data;
  int out_pipe[2] = { -1, -1 }, err_pipe[2] = { -1, -1 }, in_pipe[2] = { -1, -1 };
  int ends[3] = { -1, -1, -1 };
  GBytes *stdin_bytes = sandbox_command_get_stdin (command);
  gboolean sent = FALSE;
  int master = -1;

  if (g_task_return_error_if_cancelled (task) || instance_gone (self, &error) ||
      !check_not_paused (self, &error))
    {
      if (error != NULL)
        g_task_return_error (task, error);
      return;
    }

  data = g_new0 (ExecData, 1);
  data->task = g_object_ref (task);
  data->status = g_byte_array_new ();
  data->program = g_strdup (sandbox_command_get_argv (command)[0]);
  data->cwd = command_cwd (config, command);
  data->start = g_get_monotonic_time ();

  /* A one-shot sandbox's command goes on the connection its pid 1 got at
   * start (it is already waiting on it); any later exec connects. */
  if (self->once_conn >= 0)
    {
      data->conn = self->once_conn;
      data->once = TRUE;
      self->once_conn = -1;
      /* Sent at start, with this command (sandbox_backend_run's). */
      sent = self->once_ends[1] >= 0;
      for (guint i = 0; i < 3; i++)
        {
          ends[i] = self->once_ends[i];
          self->once_ends[i] = -1;
        }
    }
  else
    data->conn = -1;   /* connected by exec_send, once the request is ready */

  if (!sent && !exec_send (self, command, &data->conn, ends, &error))
    {
      int errsv = errno;

      if (error != NULL || instance_gone (self, &error))
        goto fail;
      /* Connected or not: a sandbox whose time ran out while the request
       * was on its way (a slow or loaded caller) closes the connection. */
      if (reached_time_limit (config))
        {
          sandbox_instance_set_state (instance, SANDBOX_INSTANCE_STATE_STOPPED);
          error = time_limit_error (config, sandbox_command_get_argv (command)[0], FALSE);
          goto fail;
        }
      if (data->conn < 0)
        {
          sandbox_instance_set_state (instance, SANDBOX_INSTANCE_STATE_STOPPED);
          g_set_error (&error, SANDBOX_ERROR, SANDBOX_ERROR_UNAVAILABLE,
                       _("The local sandbox %s is not running any more (%s): its processes "
                         "were killed, the machine restarted, or it reached its timeout. "
                         "Remove it with “sandboxctl rm %s” and create a new one."),
                       config->id, g_strerror (errsv), config->id);
          goto fail;
        }
      g_set_error (&error, SANDBOX_ERROR, SANDBOX_ERROR_UNAVAILABLE,
                   _("The local sandbox %s did not take the command (%s). Remove it "
                     "with “sandboxctl rm %s” and create a new one."),
                   config->id, g_strerror (errsv), config->id);
      goto fail;
    }
  in_pipe[1] = ends[0];
  out_pipe[0] = ends[1];
  err_pipe[0] = ends[2];
  if (sandbox_command_get_tty (command) &&
      (master = receive_pty (data->conn, data->status)) >= 0)
    {
      /* The output is the terminal's (the pipes are closed unused); the
       * stdin bytes are typed on it. */
      g_unix_set_fd_nonblocking (master, TRUE, NULL);
      data->tty = tty_link_new (command, master, g_task_get_context (task));
      clear_fd (&out_pipe[0]);
      out_pipe[0] = fcntl (master, F_DUPFD_CLOEXEC, 3);
      clear_fd (&in_pipe[1]);
      if (stdin_bytes != NULL)
        tty_input (command, stdin_bytes, data->tty);
      if (out_pipe[0] < 0)
        {
          g_set_error (&error, G_IO_ERROR, g_io_error_from_errno (errno),
                       "%s", g_strerror (errno));
          goto fail;
        }
      data->out.is_tty = TRUE;
    }
  g_unix_set_fd_nonblocking (data->conn, TRUE, NULL);
  g_unix_set_fd_nonblocking (out_pipe[0], TRUE, NULL);
  g_unix_set_fd_nonblocking (err_pipe[0], TRUE, NULL);

  /* Before the pumps start: the first read may find the pipe full (a
   * one-shot command runs before its exec starts, and a slow caller may
   * start late) and wait at once for the caller's stream to take it; that
   * wait must end with a cancellation too. */
  if (cancellable != NULL)
    {
      data->cancellable = g_object_ref (cancellable);
      data->cancel_id = g_cancellable_connect (cancellable, G_CALLBACK (exec_cancelled), data, NULL);
    }

  data->pending = 1;  /* released below, once everything is started */
  data->output = _sandbox_output_new (command);
  pump_start (data, &data->out, out_pipe[0], FALSE);
  pump_start (data, &data->err, err_pipe[0], TRUE);
  out_pipe[0] = err_pipe[0] = -1;

  data->status_in = g_unix_input_stream_new (data->conn, FALSE);
  data->pending++;
  g_input_stream_read_bytes_async (data->status_in, 1024, G_PRIORITY_DEFAULT, NULL, status_got, data);

  if (stdin_bytes != NULL && in_pipe[1] >= 0)
    {
      g_unix_set_fd_nonblocking (in_pipe[1], TRUE, NULL);
      data->stdin_pipe = g_unix_output_stream_new (in_pipe[1], TRUE);
      in_pipe[1] = -1;
      data->pending++;
      g_output_stream_write_all_async (data->stdin_pipe,
                                       g_bytes_get_data (stdin_bytes, NULL),
                                       g_bytes_get_size (stdin_bytes),
                                       G_PRIORITY_DEFAULT, NULL, stdin_written, data);
      /* The command holds a reference: its stdin bytes outlive the write. */
      g_task_set_task_data (task, g_object_ref (command), g_object_unref);
    }

  if (sandbox_command_get_timeout_ms (command) > 0)
    {
      data->timeout_source = g_timeout_source_new (sandbox_command_get_timeout_ms (command));
      g_source_set_callback (data->timeout_source, exec_timed_out, data, NULL);
      g_source_set_static_name (data->timeout_source, "[libsandbox] exec timeout");
      g_source_attach (data->timeout_source, g_main_context_get_thread_default ());
    }

  exec_step_done (data);
  return;

fail:
  for (int i = 0; i < 2; i++)
    {
      clear_fd (&in_pipe[i]);
      clear_fd (&out_pipe[i]);
      clear_fd (&err_pipe[i]);
    }
  g_task_return_error (task, error);
  g_object_unref (data->task);
  data->task = NULL;
  exec_data_free (data);
}

/* ------------------------------------------------------------------ */
/* Files. Every path of the sandbox is resolved by the sandbox's own    */
/* file service (sandbox-local-wire.h): inside its mount namespace and  */
/* with its user's rights, so a link the sandbox planted, or swapped in */
/* mid-copy, leads only where the sandbox itself can go. This side only */
/* reads and writes the descriptors it gets, and makes host files one   */
/* name at a time relative to directory descriptors, never following a  */
/* link and never resolving a path twice.                               */

typedef struct
{
  LocalConfig *config;
  int          conn;
  char        *source;        /* host path (upload) or sandbox path (download) */
  char        *destination;   /* sandbox path (upload) or host path (download) */
  gboolean     upload;
  SandboxInstance *instance;  /* the task's source object: reports progress */
  /* Download: the host directory the copy is made in (names below it are
   * relative to it), and the files of the sandbox with more than one name
   * copied so far ("DEV:INO" -> HostLink), so that their other names
   * become links to the copy, as in the sandbox. */
  int          top_fd;
  GHashTable  *links;
} CopyData;

typedef struct
{
  char  *path;   /* relative to top_fd, made by this copy */
  dev_t  dev;    /* the host copy's */
  ino_t  ino;
} HostLink;

static void
host_link_free (gpointer data)
{
  HostLink *link = data;

  g_free (link->path);
  g_free (link);
}

static void
copy_data_free (CopyData *data)
{
  if (data->conn >= 0)
    close (data->conn);
  g_free (data->source);
  g_free (data->destination);
  g_clear_pointer (&data->links, g_hash_table_unref);
  g_free (data);
}

/* The error for ERRNUM, which the sandbox (or the host) answered about
 * PATH. The names in PATH below the copy's source are the sandbox's:
 * shown escaped (_sandbox_display_text), or a name made of escape
 * sequences would drive the terminal that shows the message. */
static gboolean
set_copy_error (GError     **error,
                int          errnum,
                const char  *raw_path,
                LocalConfig *config)
{
  g_autofree char *path = _sandbox_display_text (raw_path);

  switch (errnum)
    {
    case ENOENT:
      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_FOUND,
                   _("%s does not exist."), path);
      break;
    case EROFS:
      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT,
                   _("%s is read-only in the sandbox. Copy files under the workdir (%s), "
                     "/tmp, or a read-write mount."), path, config->workdir);
      break;
    case ELOOP:
    case ENOTDIR:
    case EISDIR:
    case EEXIST:
    case ENAMETOOLONG:
      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT,
                   _("Cannot copy %s: %s"), path, g_strerror (errnum));
      break;
    default:
      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_FAILED,
                   _("Cannot copy %s: %s"), path, g_strerror (errnum));
      break;
    }
  return FALSE;
}

static gboolean
send_all (int          conn,
          const void  *buf,
          gsize        len)
{
  const char *p = buf;

  while (len > 0)
    {
      ssize_t n = send (conn, p, len, MSG_NOSIGNAL);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return FALSE;
      p += n;
      len -= (gsize) n;
    }
  return TRUE;
}

/* One request to the file service. Returns the errno it answered (0 for
 * done), with the descriptor of an open in *FD_OUT; EPIPE when the
 * service went away (the sandbox ended). */
/* How long the file service may take to answer one request:
 * SANDBOX_LOCAL_FILE_TIMEOUT_MS, default 60 s (an open or a mkdir). */
static gint64
file_reply_timeout_ms (void)
{
  static gint64 timeout;

  if (g_once_init_enter (&timeout))
    {
      const char *env = g_getenv ("SANDBOX_LOCAL_FILE_TIMEOUT_MS");
      gint64 value = env != NULL ? g_ascii_strtoll (env, NULL, 10) : 0;

      g_once_init_leave (&timeout, value > 0 ? value : 60000);
    }
  return timeout;
}

static int
file_request (int          conn,
              guint32      op,
              const char  *path,
              int          flags,
              guint32      mode,
              const char  *target,
              int         *fd_out)
{
  SbxFileRequest req = { op, (guint32) flags, mode, (guint32) strlen (path),
                         target != NULL ? (guint32) strlen (target) : 0 };
  union { char buf[CMSG_SPACE (sizeof (int))]; struct cmsghdr align; } control;
  gint32 answer = 0;
  struct iovec iov = { &answer, sizeof answer };
  struct msghdr msg = { 0 };
  struct cmsghdr *cmsg;
  int fd = -1;
  ssize_t n;

  if (fd_out != NULL)
    *fd_out = -1;
  if (req.path_len > SBX_PATH_MAX || req.target_len > SBX_PATH_MAX)
    return ENAMETOOLONG;
  if (!send_all (conn, &req, sizeof req) || !send_all (conn, path, req.path_len) ||
      (target != NULL && !send_all (conn, target, req.target_len)))
    return EPIPE;

  /* The file service is a process of the sandbox, running as its user:
   * a command can stop it (SIGSTOP) at any time. The copy must not wait
   * forever on it: no answer within the limit fails the copy. */
  {
    struct pollfd pfd = { conn, POLLIN, 0 };
    gint64 deadline = g_get_monotonic_time () + file_reply_timeout_ms () * G_TIME_SPAN_MILLISECOND;
    int r;

    for (;;)
      {
        gint64 left = (deadline - g_get_monotonic_time ()) / G_TIME_SPAN_MILLISECOND;

        if (left <= 0)
          return ETIMEDOUT;
        r = poll (&pfd, 1, (int) MIN (left, G_MAXINT));
        if (r > 0)
          break;
        if (r < 0 && errno != EINTR)
          return EPIPE;
      }
  }
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.buf;
  msg.msg_controllen = sizeof control.buf;
  do
    n = recvmsg (conn, &msg, MSG_CMSG_CLOEXEC | MSG_WAITALL);
  while (n < 0 && errno == EINTR);
  for (cmsg = CMSG_FIRSTHDR (&msg); n > 0 && cmsg != NULL; cmsg = CMSG_NXTHDR (&msg, cmsg))
    if (cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS &&
        cmsg->cmsg_len == CMSG_LEN (sizeof (int)))
      memcpy (&fd, CMSG_DATA (cmsg), sizeof fd);
  if (n != (ssize_t) sizeof answer)
    {
      if (fd >= 0)
        close (fd);
      return EPIPE;
    }
  if (answer != 0 || fd_out == NULL)
    {
      if (fd >= 0)
        close (fd);
      return answer != 0 ? answer : 0;
    }
  if (fd < 0)
    return EPROTO;
  *fd_out = fd;
  return 0;
}

/* Copies from IN to OUT until end-of-file, or LIMIT bytes if it is not
 * negative, reporting each chunk to INSTANCE's transfer progress. */
static int
copy_dense (SandboxInstance *instance,
            int              in,
            int              out,
            goffset          limit,
            GCancellable    *cancellable)
{
  gboolean plain = FALSE;
  g_autofree char *buf = NULL;

  for (;;)
    {
      size_t chunk = limit >= 0 ? (size_t) MIN (limit, 16 << 20) : 16 << 20;
      ssize_t n;

      if (g_cancellable_is_cancelled (cancellable))
        return ECANCELED;
      if (chunk == 0)
        return 0;
      if (!plain)
        {
          n = copy_file_range (in, NULL, out, NULL, chunk, 0);
          if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS ||
                        errno == EOPNOTSUPP || errno == EBADF))
            {
              plain = TRUE;
              continue;
            }
        }
      else
        {
          if (buf == NULL)
            buf = g_malloc (1 << 20);
          n = read (in, buf, MIN (chunk, 1 << 20));
          if (n > 0)
            {
              for (ssize_t done = 0; done < n;)
                {
                  ssize_t w = write (out, buf + done, (size_t) (n - done));

                  if (w < 0 && errno == EINTR)
                    continue;
                  if (w < 0)
                    return errno;
                  done += w;
                }
            }
        }
      if (n == 0)
        return 0;
      if (n < 0 && errno != EINTR)
        return errno;
      if (n > 0)
        sandbox_instance_add_transferred (instance, (guint64) n);
      if (n > 0 && limit >= 0)
        limit -= n;
    }
}

/* Copies SIZE bytes (what a regular file IN held when it was opened) from
 * IN to OUT, both at offset 0, keeping IN's holes as holes. A file the
 * sandbox made with truncate (say 100 GiB that take no block) must not
 * become 100 GiB of zeros written on the host: only its data is copied,
 * and the size set at the end. Falls back to copying every byte where the
 * file system cannot tell holes (no SEEK_DATA). */
static int
copy_data (SandboxInstance *instance,
           int              in,
           int              out,
           goffset          size,
           GCancellable    *cancellable)
{
  off_t pos = 0;

  if (size <= 0 || lseek (in, 0, SEEK_DATA) < 0)
    {
      if (size > 0 && errno != ENXIO)
        return copy_dense (instance, in, out, size, cancellable);
      /* Empty, or all hole (ENXIO: no data past 0). */
      if (size > 0 && ftruncate (out, size) != 0)
        return errno;
      if (size > 0)
        sandbox_instance_add_transferred (instance, (guint64) size);
      return 0;
    }
  while (pos < size)
    {
      off_t data = lseek (in, pos, SEEK_DATA), hole, before;
      int err;

      if (data < 0 && errno != ENXIO)
        return errno;
      if (data < 0 || data > size)
        data = size;   /* the rest is a hole */
      hole = data < size ? lseek (in, data, SEEK_HOLE) : size;
      if (hole < 0)
        return errno;
      if (hole > size)
        hole = size;
      if (data > pos)
        sandbox_instance_add_transferred (instance, (guint64) (data - pos));
      if (hole == data)
        break;
      if (lseek (in, data, SEEK_SET) != data || lseek (out, data, SEEK_SET) != data)
        return errno;
      if ((err = copy_dense (instance, in, out, hole - data, cancellable)) != 0)
        return err;
      before = lseek (out, 0, SEEK_CUR);
      if (before < hole)
        {
          /* The file shrank while it was copied: so does the copy. */
          size = before;
          break;
        }
      pos = hole;
    }
  if (ftruncate (out, size) != 0)
    return errno;
  return 0;
}

static char *
child_path (const char *dir,
            const char *name)
{
  return g_strconcat (dir, strcmp (dir, "/") == 0 ? "" : "/", name, NULL);
}

static gboolean
is_entry_name (const char *name)
{
  return strcmp (name, ".") != 0 && strcmp (name, "..") != 0 && strchr (name, '/') == NULL;
}

/* Makes NAME in DIRFD a hard link to LINK's copy, made earlier by this
 * download below data->top_fd: reached one name at a time without
 * following links, and checked to be that very file afterwards. FALSE if
 * not (the caller copies the file instead). */
static gboolean
download_link (CopyData       *data,
               const HostLink *link,
               int             dirfd,
               const char     *name)
{
  g_auto(GStrv) parts = g_strsplit (link->path, "/", -1);
  guint n = g_strv_length (parts);
  int parent;
  gboolean ok = FALSE;
  struct stat st;

  if (fstatat (dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
      st.st_dev == link->dev && st.st_ino == link->ino)
    return TRUE;   /* the same name again (a directory listed while it changed) */
  if (n == 0)
    return FALSE;
  parent = fcntl (data->top_fd, F_DUPFD_CLOEXEC, 3);
  for (guint i = 0; parent >= 0 && i + 1 < n; i++)
    {
      int next = openat (parent, parts[i], O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

      close (parent);
      parent = next;
    }
  if (parent < 0)
    return FALSE;
  if (fstatat (dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR (st.st_mode))
    unlinkat (dirfd, name, 0);
  if (linkat (parent, parts[n - 1], dirfd, name, 0) == 0)
    {
      if (fstatat (dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
          st.st_dev == link->dev && st.st_ino == link->ino)
        ok = TRUE;
      else
        unlinkat (dirfd, name, 0);
    }
  close (parent);
  return ok;
}

/* The download's destination, the name the caller gave (NAME in DIRFD),
 * when it is a symbolic link to the very file that this process's
 * standard output or standard error is (/dev/stdout, /dev/stderr,
 * /dev/fd/1, /proc/self/fd/2 ...): a duplicate of that descriptor, which
 * the copy writes as a command's output is printed (like cp and cat, and
 * without truncating or seeking it). -1 for any other name: a link is then
 * replaced by the file, as before, since a link in a directory that a
 * sandbox may write (a read-write mount) may be the sandbox's, planted to
 * lead the copy to a host file, a device, or a descriptor of this process
 * (its connection to the sandbox's pid 1). Such a link can lead the copy
 * only to where the caller's own output goes. Whether the link leads there
 * is decided by what it names (device and inode), so a link changed
 * meanwhile changes nothing: the copy writes to the descriptor, not
 * through the link. */
static int
standard_stream_destination (int         dirfd,
                             const char *name)
{
  struct stat st, std_st;

  if (fstatat (dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISLNK (st.st_mode) ||
      fstatat (dirfd, name, &st, 0) != 0 || S_ISDIR (st.st_mode))
    return -1;
  for (int fd = STDOUT_FILENO; fd <= STDERR_FILENO; fd++)
    if (fstat (fd, &std_st) == 0 && std_st.st_dev == st.st_dev && std_st.st_ino == st.st_ino)
      return fcntl (fd, F_DUPFD_CLOEXEC, 3);
  return -1;
}

/* Makes host file NAME in DIRFD (a host directory) from the sandbox's
 * SPATH, and, for a directory, everything under it. HPATH is the same
 * file relative to data->top_fd. */
static gboolean
download_entry (CopyData      *data,
                const char    *spath,
                int            dirfd,
                const char    *name,
                const char    *hpath,
                GCancellable  *cancellable,
                GError       **error)
{
  struct stat st;
  int pfd = -1, err;
  gboolean ok = FALSE;

  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return FALSE;
  err = file_request (data->conn, SBX_FILE_OPEN, spath, O_PATH | O_NOFOLLOW, 0, NULL, &pfd);
  if (err != 0)
    return set_copy_error (error, err, spath, data->config);
  if (fstat (pfd, &st) != 0)
    {
      err = errno;
      close (pfd);
      return set_copy_error (error, err, spath, data->config);
    }

  if (S_ISLNK (st.st_mode))
    {
      /* On the heap: this function recurses once per level of the tree. */
      g_autofree char *target = g_malloc (SBX_PATH_MAX + 1);
      ssize_t n = readlinkat (pfd, "", target, SBX_PATH_MAX);

      if (n < 0)
        err = errno;
      else
        {
          target[n] = '\0';
          if (unlinkat (dirfd, name, 0) != 0 && errno != ENOENT)
            err = errno;
          else if (symlinkat (target, dirfd, name) != 0)
            err = errno;
        }
      ok = err == 0 || set_copy_error (error, err, spath, data->config);
    }
  else if (S_ISDIR (st.st_mode))
    {
      int sdir = -1, hdir = -1;
      DIR *dir = NULL;
      struct dirent *entry;

      if (mkdirat (dirfd, name, 0755) != 0 && errno != EEXIST)
        err = errno;
      else if ((hdir = openat (dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
        err = errno;
      else if ((err = file_request (data->conn, SBX_FILE_OPEN, spath,
                                    O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0, NULL, &sdir)) == 0 &&
               (dir = fdopendir (sdir)) == NULL)
        {
          err = errno;
          close (sdir);
        }
      if (err != 0)
        set_copy_error (error, err, spath, data->config);
      else
        {
          ok = TRUE;
          while (ok && (errno = 0, entry = readdir (dir)) != NULL)
            {
              g_autofree char *child = NULL, *hchild = NULL;

              if (!is_entry_name (entry->d_name))
                continue;
              child = child_path (spath, entry->d_name);
              hchild = g_strconcat (hpath, "/", entry->d_name, NULL);
              ok = download_entry (data, child, hdir, entry->d_name, hchild, cancellable, error);
            }
        }
      if (dir != NULL)
        closedir (dir);
      if (hdir >= 0)
        close (hdir);
    }
  else if (S_ISREG (st.st_mode))
    {
      int in = -1, out = -1;
      struct stat in_st;
      g_autofree char *key = NULL;

      /* Opened without blocking, in case a swap put a FIFO there. */
      err = file_request (data->conn, SBX_FILE_OPEN, spath, O_RDONLY | O_NOFOLLOW | O_NONBLOCK,
                          0, NULL, &in);
      if (err == 0 && (fstat (in, &in_st) != 0 || !S_ISREG (in_st.st_mode)))
        err = EINVAL;
      /* A file with other names: one that this download copied already
       * becomes a link to that copy. Else a sandbox would make the host
       * write a file as many times as it has names, which cost the
       * sandbox nothing (a 1 MiB file with 100,000 names: 100 GB). */
      if (err == 0 && in_st.st_nlink > 1 && data->links != NULL)
        {
          HostLink *link;

          key = g_strdup_printf ("%" G_GUINT64_FORMAT ":%" G_GUINT64_FORMAT,
                                 (guint64) in_st.st_dev, (guint64) in_st.st_ino);
          link = g_hash_table_lookup (data->links, key);
          if (link != NULL && download_link (data, link, dirfd, name))
            {
              close (in);
              close (pfd);
              return TRUE;
            }
        }
      if (err == 0)
        {
          struct stat out_st;
          gboolean stream = FALSE;

          fcntl (in, F_SETFL, fcntl (in, F_GETFL) & ~O_NONBLOCK);
          if (strcmp (spath, data->source) == 0 &&
              (out = standard_stream_destination (dirfd, name)) >= 0)
            stream = TRUE;
          /* Without blocking, and only into a file: the destination may be
           * a directory the sandbox writes too (a read-write mount), where
           * it can leave a FIFO under the name the copy will make. Opened
           * as it was, a FIFO stopped this process's copy for good (in
           * open(), waiting for a reader: not even SIGTERM ended
           * sandboxctl cp), or took the file for the sandbox's reader. A
           * device node the caller named (/dev/null) is written as before. */
          if (!stream)
            out = openat (dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC,
                          in_st.st_mode & 0777);
          if (!stream && out < 0 && errno == ELOOP && unlinkat (dirfd, name, 0) == 0)
            out = openat (dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC,
                          in_st.st_mode & 0777);
          if (!stream &&
              ((out < 0 && errno == ENXIO) ||
               (out >= 0 && (fstat (out, &out_st) != 0 ||
                             !(S_ISREG (out_st.st_mode) || S_ISCHR (out_st.st_mode) ||
                               S_ISBLK (out_st.st_mode))))))
            {
              g_autofree char *shown = _sandbox_display_text (hpath);

              if (out >= 0)
                close (out);
              close (in);
              close (pfd);
              g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT,
                           _("%s is not a regular file, directory or symbolic link, and cannot be copied."),
                           shown);
              return FALSE;
            }
          if (out >= 0 && !stream)
            fcntl (out, F_SETFL, fcntl (out, F_GETFL) & ~O_NONBLOCK);
          /* Only a regular file is written at offsets (its holes kept)
           * and truncated: a terminal, a pipe or the caller's output is
           * written in order. */
          if (out >= 0 && !stream && !S_ISREG (out_st.st_mode))
            stream = TRUE;
          /* What the file held when it was opened: a command that keeps
           * writing to it cannot make the copy endless. */
          /* A single file: the copy's size is known. */
          if (strcmp (spath, data->source) == 0)
            sandbox_instance_set_transfer_total (data->instance, in_st.st_size);
          if (out < 0)
            err = errno;
          else if (stream)
            err = copy_dense (data->instance, in, out, in_st.st_size, cancellable);
          else
            err = copy_data (data->instance, in, out, in_st.st_size, cancellable);
          if (err == 0 && !stream && key != NULL && !g_hash_table_contains (data->links, key))
            {
              if (fstat (out, &out_st) == 0)
                {
                  HostLink *link = g_new0 (HostLink, 1);

                  link->path = g_strdup (hpath);
                  link->dev = out_st.st_dev;
                  link->ino = out_st.st_ino;
                  g_hash_table_insert (data->links, g_steal_pointer (&key), link);
                }
            }
        }
      if (in >= 0)
        close (in);
      if (out >= 0 && close (out) != 0 && err == 0)
        err = errno;
      if (err == ECANCELED)
        g_cancellable_set_error_if_cancelled (cancellable, error);
      else
        ok = err == 0 || set_copy_error (error, err, spath, data->config);
    }
  else
    {
      g_autofree char *shown = _sandbox_display_text (spath);

      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT,
                   _("%s is not a regular file, directory or symbolic link, and cannot be copied."),
                   shown);
    }

  close (pfd);
  return ok;
}

/* Makes the sandbox's SPATH from host file NAME in DIRFD, and, for a
 * directory, everything under it. */
static gboolean
upload_entry (CopyData      *data,
              int            dirfd,
              const char    *name,
              const char    *spath,
              GCancellable  *cancellable,
              GError       **error)
{
  struct stat st;
  int err = 0;

  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return FALSE;
  if (fstatat (dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
    return set_copy_error (error, errno, name, data->config);

  if (S_ISDIR (st.st_mode))
    {
      int hdir;
      DIR *dir;
      struct dirent *entry;
      gboolean ok = TRUE;

      err = file_request (data->conn, SBX_FILE_MKDIR, spath, 0, (st.st_mode & 0777) | 0700, NULL, NULL);
      if (err != 0 && err != EEXIST)
        return set_copy_error (error, err, spath, data->config);
      hdir = openat (dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (hdir < 0 || (dir = fdopendir (hdir)) == NULL)
        {
          err = errno;
          if (hdir >= 0)
            close (hdir);
          return set_copy_error (error, err, name, data->config);
        }
      while (ok && (entry = readdir (dir)) != NULL)
        {
          g_autofree char *child = NULL;

          if (!is_entry_name (entry->d_name))
            continue;
          child = child_path (spath, entry->d_name);
          ok = upload_entry (data, hdir, entry->d_name, child, cancellable, error);
        }
      closedir (dir);
      return ok;
    }
  if (S_ISLNK (st.st_mode))
    {
      g_autofree char *target = g_malloc (SBX_PATH_MAX + 1);
      ssize_t n = readlinkat (dirfd, name, target, SBX_PATH_MAX);

      if (n < 0)
        return set_copy_error (error, errno, name, data->config);
      target[n] = '\0';
      file_request (data->conn, SBX_FILE_UNLINK, spath, 0, 0, NULL, NULL);
      err = file_request (data->conn, SBX_FILE_SYMLINK, spath, 0, 0, target, NULL);
      return err == 0 || set_copy_error (error, err, spath, data->config);
    }
  if (S_ISREG (st.st_mode))
    {
      /* Without blocking, and checked again once open: a sandbox that
       * writes this host directory too (a read-write mount) can swap a
       * FIFO in after the fstatat above, on which a plain open() would
       * wait for a writer for good. */
      int in = openat (dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC), out = -1;
      const int flags = O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_NONBLOCK;
      struct stat in_st, out_st;

      if (in < 0)
        return set_copy_error (error, errno, name, data->config);
      if (fstat (in, &in_st) != 0 || !S_ISREG (in_st.st_mode))
        {
          close (in);
          return set_copy_error (error, EINVAL, name, data->config);
        }
      fcntl (in, F_SETFL, fcntl (in, F_GETFL) & ~O_NONBLOCK);
      err = file_request (data->conn, SBX_FILE_OPEN, spath, flags, st.st_mode & 0777, NULL, &out);
      /* A link in the way is replaced, as cp would. */
      if (err == ELOOP && file_request (data->conn, SBX_FILE_UNLINK, spath, 0, 0, NULL, NULL) == 0)
        err = file_request (data->conn, SBX_FILE_OPEN, spath, flags | O_EXCL, st.st_mode & 0777, NULL, &out);
      /* Only into a regular file (opened without blocking: a FIFO the
       * sandbox put there must not hang the copy). */
      if (err == 0 && (fstat (out, &out_st) != 0 || !S_ISREG (out_st.st_mode)))
        err = EINVAL;
      if (err == 0)
        {
          fcntl (out, F_SETFL, fcntl (out, F_GETFL) & ~O_NONBLOCK);
          err = copy_dense (data->instance, in, out, -1, cancellable);
        }
      close (in);
      if (out >= 0 && close (out) != 0 && err == 0)
        err = errno;
      if (err == ECANCELED)
        return !g_cancellable_set_error_if_cancelled (cancellable, error);
      return err == 0 || set_copy_error (error, err, spath, data->config);
    }
  {
    g_autofree char *shown = _sandbox_display_text (data->source);

    g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT,
                 _("%s is not a regular file, directory or symbolic link, and cannot be copied."),
                 shown);
  }
  return FALSE;
}

/* Makes the directories above the sandbox's PATH, as mkdir -p would. */
static gboolean
upload_parents (CopyData    *data,
                const char  *path,
                GError     **error)
{
  g_autofree char *parent = g_path_get_dirname (path);
  g_auto(GStrv) parts = g_strsplit (parent, "/", -1);
  g_autoptr(GString) walk = g_string_new ("");

  for (guint i = 0; parts[i] != NULL; i++)
    {
      int err;

      if (*parts[i] == '\0')
        continue;
      g_string_append_c (walk, '/');
      g_string_append (walk, parts[i]);
      err = file_request (data->conn, SBX_FILE_MKDIR, walk->str, 0, 0755, NULL, NULL);
      if (err != 0 && err != EEXIST)
        return set_copy_error (error, err, walk->str, data->config);
    }
  return TRUE;
}

/* Whether directory FD, or a directory above it, is one of the N (device,
 * inode) pairs in IDS. */
static gboolean
dir_is_below (int                fd,
              const struct stat *ids,
              guint              n)
{
  int cur = fcntl (fd, F_DUPFD_CLOEXEC, 3);
  gboolean found = FALSE;

  while (cur >= 0 && !found)
    {
      struct stat st, up_st;
      int up;

      if (fstat (cur, &st) != 0)
        break;
      for (guint i = 0; i < n && !found; i++)
        found = st.st_dev == ids[i].st_dev && st.st_ino == ids[i].st_ino;
      if (found)
        break;
      up = openat (cur, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (up < 0 || fstat (up, &up_st) != 0 || (up_st.st_dev == st.st_dev && up_st.st_ino == st.st_ino))
        {
          if (up >= 0)
            close (up);
          break;   /* the root */
        }
      close (cur);
      cur = up;
    }
  if (cur >= 0)
    close (cur);
  return found;
}

/* Opens the directory a download is made in, PARENT (the caller's path:
 * relative to the working directory, or absolute), making the directories
 * that are missing if MAKE, as g_file_make_directory_with_parents() did
 * (an upload's source directory is opened the same way, without MAKE). The
 * caller's path is followed as given (links too, as cp does), but not
 * below a directory that this sandbox mounts read-write: a sandbox that
 * writes the directory may have left a link there to lead the copy into a
 * host directory of its choice (`sandboxctl cp ID:/r ./shared/sub/r`,
 * where the sandbox made `sub` a link to /root/.ssh), so from such a
 * directory on, each name is opened without following links and a link
 * fails the copy. -1 with ERROR set on failure. */
static int
open_download_dir (LocalConfig  *config,
                   const char   *parent,
                   gboolean      make,
                   GError      **error)
{
  g_autoptr(GArray) ids = g_array_new (FALSE, FALSE, sizeof (struct stat));
  g_auto(GStrv) parts = NULL;
  g_autoptr(GString) walked = NULL;
  gboolean inside;
  int fd;

  for (guint i = 0; config->mounts != NULL && i < config->mounts->len; i++)
    {
      SandboxMount *mount = g_ptr_array_index (config->mounts, i);
      struct stat st;

      if (!sandbox_mount_get_read_only (mount) &&
          stat (sandbox_mount_get_host_path (mount), &st) == 0 && S_ISDIR (st.st_mode))
        g_array_append_val (ids, st);
    }

  /* O_PATH: each directory on the way needs only search permission (a
   * home directory of mode 0711), as for a path the kernel resolves. */
  fd = open (g_path_is_absolute (parent) ? "/" : ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
  inside = fd >= 0 && ids->len > 0 && dir_is_below (fd, (struct stat *) ids->data, ids->len);
  parts = g_strsplit (parent, "/", -1);
  walked = g_string_new (g_path_is_absolute (parent) ? "/" : "");
  for (guint i = 0; fd >= 0 && parts[i] != NULL; i++)
    {
      const char *name = parts[i];
      const int flags = O_PATH | O_DIRECTORY | O_CLOEXEC | (inside ? O_NOFOLLOW : 0);
      struct stat st;
      int next;

      if (*name == '\0' || strcmp (name, ".") == 0)
        continue;
      if (walked->len > 0 && walked->str[walked->len - 1] != '/')
        g_string_append_c (walked, '/');
      g_string_append (walked, name);
      next = openat (fd, name, flags);
      if (next < 0 && errno == ENOENT && make && (mkdirat (fd, name, 0777) == 0 || errno == EEXIST))
        next = openat (fd, name, flags);
      if (next < 0)
        {
          int errsv = errno;

          if (inside && fstatat (fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK (st.st_mode))
            g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT,
                         _("%s goes through a symbolic link in a directory that the sandbox "
                           "writes, which may have been left there to lead the copy elsewhere. "
                           "Copy to or from a directory the sandbox does not write, or name the "
                           "directory the link leads to."), parent);
          else if (!make && (errsv == ENOENT || errsv == ENOTDIR))
            g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_FOUND, _("%s does not exist."), parent);
          else
            g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_FAILED,
                         _("Cannot write to %s: %s"), walked->str, g_strerror (errsv));
          close (fd);
          return -1;
        }
      close (fd);
      fd = next;
      /* Into a read-write mount (or out of one, through ".."). */
      if (ids->len > 0 && (!inside || strcmp (name, "..") == 0))
        inside = dir_is_below (fd, (struct stat *) ids->data, ids->len);
    }
  if (fd < 0)
    {
      int errsv = errno;

      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_FAILED,
                   _("Cannot write to %s: %s"), parent, g_strerror (errsv));
    }
  return fd;
}

static void
copy_thread (GTask        *task,
             gpointer      source_object,
             gpointer      task_data,
             GCancellable *cancellable)
{
  CopyData *data = task_data;
  GError *error = NULL;
  gboolean ok;

  if (data->upload)
    {
      g_autofree char *dir = g_path_get_dirname (data->source);
      g_autofree char *name = g_path_get_basename (data->source);
      /* The source's directories: as a download's (open_download_dir),
       * no link is followed below a read-write mount of the sandbox, where
       * one could lead the upload to a host file. */
      int dirfd = open_download_dir (data->config, dir, FALSE, &error);

      if (dirfd < 0 && !g_error_matches (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_FOUND))
        {
          g_task_return_error (task, error);
          return;
        }
      g_clear_error (&error);
      if (dirfd < 0 || faccessat (dirfd, name, F_OK, AT_SYMLINK_NOFOLLOW) != 0)
        {
          if (dirfd >= 0)
            close (dirfd);
          g_task_return_new_error (task, SANDBOX_ERROR, SANDBOX_ERROR_NOT_FOUND,
                                   _("%s does not exist."), data->source);
          return;
        }
      ok = upload_parents (data, data->destination, &error) &&
           upload_entry (data, dirfd, name, data->destination, cancellable, &error);
      close (dirfd);
    }
  else
    {
      g_autoptr(GFile) destination = g_file_new_for_path (data->destination);
      g_autoptr(GFile) parent = g_file_get_parent (destination);
      g_autofree char *name = g_file_get_basename (destination);
      int dirfd = -1;

      if (parent != NULL &&
          (dirfd = open_download_dir (data->config, g_file_peek_path (parent), TRUE, &error)) < 0)
        {
          g_task_return_error (task, error);
          return;
        }
      /* Hard links are kept below a destination with a parent. */
      data->top_fd = dirfd;
      if (dirfd >= 0)
        data->links = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, host_link_free);
      ok = download_entry (data, data->source, parent != NULL ? dirfd : AT_FDCWD,
                           parent != NULL ? name : data->destination, name, cancellable, &error);
      if (dirfd >= 0)
        close (dirfd);
    }

  if (!ok)
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
}

/* Connects to the sandbox's file service, then copies in a thread. */
static void
start_copy (SandboxLocalInstance *self,
            GTask                *task,
            gboolean              upload,
            char                 *source,
            char                 *destination)
{
  CopyData *data = g_new0 (CopyData, 1);
  char header[SBX_HEADER_LEN];
  GError *error = NULL;

  data->config = self->config;
  data->instance = SANDBOX_INSTANCE (self);
  data->upload = upload;
  data->source = source;
  data->destination = destination;
  g_task_set_task_data (task, data, (GDestroyNotify) copy_data_free);

  data->conn = socket_at (self->config->dir, FALSE);
  fill_header (header, SBX_MAGIC_FILES, 0, self->config->token);
  if (data->conn < 0 || !send_all (data->conn, header, sizeof header))
    {
      int errsv = errno;

      if (!instance_gone (self, &error))
        {
          sandbox_instance_set_state (SANDBOX_INSTANCE (self), SANDBOX_INSTANCE_STATE_STOPPED);
          g_set_error (&error, SANDBOX_ERROR, SANDBOX_ERROR_UNAVAILABLE,
                       _("The local sandbox %s is not running any more (%s), so its files "
                         "cannot be copied. Remove it with “sandboxctl rm %s” and create a "
                         "new one."), self->config->id, g_strerror (errsv), self->config->id);
        }
      g_task_return_error (task, error);
      return;
    }
  g_task_run_in_thread (task, copy_thread);
}

static void
sandbox_local_instance_upload (SandboxInstance *instance,
                               GFile           *source,
                               const char      *destination,
                               GCancellable    *cancellable,
                               GTask           *task)
{
  SandboxLocalInstance *self = SANDBOX_LOCAL_INSTANCE (instance);
  g_autofree char *path = NULL;
  GError *error = NULL;

  if (instance_gone (self, &error) || !check_not_paused (self, &error) ||
      (path = check_path (self->config, destination, TRUE, &error)) == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  if (g_file_peek_path (source) == NULL)
    {
      g_task_return_new_error (task, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT,
                               _("Only local files can be uploaded to a local sandbox."));
      return;
    }
  start_copy (self, task, TRUE, g_strdup (g_file_peek_path (source)), g_steal_pointer (&path));
}

static void
sandbox_local_instance_download (SandboxInstance *instance,
                                 const char      *source,
                                 GFile           *destination,
                                 GCancellable    *cancellable,
                                 GTask           *task)
{
  SandboxLocalInstance *self = SANDBOX_LOCAL_INSTANCE (instance);
  g_autofree char *path = NULL;
  GError *error = NULL;

  if (instance_gone (self, &error) || !check_not_paused (self, &error) ||
      (path = check_path (self->config, source, FALSE, &error)) == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  if (g_file_peek_path (destination) == NULL)
    {
      g_task_return_new_error (task, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT,
                               _("Files of a local sandbox can only be downloaded to local paths."));
      return;
    }
  start_copy (self, task, FALSE, g_steal_pointer (&path), g_strdup (g_file_peek_path (destination)));
}

/* ------------------------------------------------------------------ */
/* destroy                                                             */

/* One directory on the way down from the root of a walk_tree(). */
typedef struct
{
  dev_t      dev;
  ino_t      ino;
  char      *name;   /* in its parent; NULL for the root */
  GPtrArray *todo;   /* its subdirectories not yet walked */
} WalkFrame;

/* Reads the directory FD (kept open): adds every entry's blocks to
 * *BLOCKS, removes every entry but directories when REMOVE, and returns
 * the names of the subdirectories on DEV (mount points are left). */
static GPtrArray *
read_level (int       fd,
            dev_t     dev,
            gboolean  remove,
            guint64  *blocks)
{
  GPtrArray *subdirs = g_ptr_array_new_with_free_func (g_free);
  int copy = fcntl (fd, F_DUPFD_CLOEXEC, 3);
  DIR *dir = copy >= 0 ? fdopendir (copy) : NULL;
  struct dirent *entry;

  if (dir == NULL)
    {
      if (copy >= 0)
        close (copy);
      return subdirs;
    }
  while ((entry = readdir (dir)) != NULL)
    {
      struct stat st;

      if (strcmp (entry->d_name, ".") == 0 || strcmp (entry->d_name, "..") == 0)
        continue;
      if (fstatat (fd, entry->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        continue;
      if (blocks != NULL)
        *blocks += (guint64) st.st_blocks * 512;
      if (S_ISDIR (st.st_mode))
        {
          if (st.st_dev == dev)
            g_ptr_array_add (subdirs, g_strdup (entry->d_name));
        }
      else if (remove)
        unlinkat (fd, entry->d_name, 0);
    }
  closedir (dir);
  return subdirs;
}

/* Opens the subdirectory NAME of FD, without following a link; when
 * REMOVE, one the sandbox made unreadable is made readable first (it is
 * ours to remove). */
static int
open_subdir (int         fd,
             const char *name,
             gboolean    remove)
{
  int child = openat (fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

  if (child < 0 && errno == EACCES && remove)
    {
      int path = openat (fd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      g_autofree char *proc = path >= 0 ? g_strdup_printf ("/proc/self/fd/%d", path) : NULL;
      struct stat st;

      if (path >= 0 && fstat (path, &st) == 0 && chmod (proc, (st.st_mode & 07777) | 0700) == 0)
        child = openat (fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (path >= 0)
        close (path);
    }
  else if (child >= 0 && remove)
    {
      struct stat st;

      /* Readable but not searchable: its entries could not be removed. */
      if (fstat (child, &st) == 0 && (st.st_mode & 0700) != 0700)
        fchmod (child, (st.st_mode & 07777) | 0700);
    }
  return child;
}

/* Walks the tree below the directory ROOT_FD (which it closes): adds up
 * the blocks of everything in it to *BLOCKS (when not NULL), and, when
 * REMOVE, removes everything in it. One name at a time relative to its
 * directory: what a sandbox left in its directories (links, unreadable
 * directories) is never followed; stays on ROOT_FD's file system.
 *
 * Without recursion, and holding one directory open at a time: a sandbox
 * can nest directories far deeper than a thread's stack or the descriptor
 * limit would allow a recursive walk (nftw() crashed on 60,000 levels). It
 * goes back up through "..", which must be the directory it came down
 * from (device and inode): a sandbox that moves a directory meanwhile
 * stops the walk there, never leads it elsewhere. Returns FALSE then. */
static gboolean
walk_tree (int       root_fd,
           gboolean  remove,
           guint64  *blocks)
{
  g_autoptr(GArray) stack = g_array_new (FALSE, FALSE, sizeof (WalkFrame));
  WalkFrame frame = { 0 };
  struct stat st;
  gboolean ok = TRUE;
  int cur = root_fd;

  if (fstat (cur, &st) != 0)
    {
      close (cur);
      return FALSE;
    }
  if (blocks != NULL)
    *blocks += (guint64) st.st_blocks * 512;
  frame.dev = st.st_dev;
  frame.ino = st.st_ino;
  frame.todo = read_level (cur, st.st_dev, remove, blocks);
  g_array_append_val (stack, frame);

  while (stack->len > 0)
    {
      WalkFrame *top = &g_array_index (stack, WalkFrame, stack->len - 1);

      if (top->todo->len > 0)
        {
          char *name = g_ptr_array_steal_index_fast (top->todo, top->todo->len - 1);
          int child = open_subdir (cur, name, remove);

          if (child < 0 || fstat (child, &st) != 0 || st.st_dev != top->dev)
            {
              if (child >= 0)
                close (child);
              g_free (name);
              continue;
            }
          frame.dev = st.st_dev;
          frame.ino = st.st_ino;
          frame.name = name;
          frame.todo = read_level (child, st.st_dev, remove, blocks);
          g_array_append_val (stack, frame);
          close (cur);
          cur = child;
          continue;
        }

      if (stack->len > 1)
        {
          WalkFrame *parent = &g_array_index (stack, WalkFrame, stack->len - 2);
          int up = openat (cur, "..", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

          if (up < 0 || fstat (up, &st) != 0 || st.st_dev != parent->dev || st.st_ino != parent->ino)
            {
              /* Moved while we were below it. */
              if (up >= 0)
                close (up);
              ok = FALSE;
              break;
            }
          if (remove)
            unlinkat (up, top->name, AT_REMOVEDIR);
          close (cur);
          cur = up;
        }
      g_free (top->name);
      g_ptr_array_unref (top->todo);
      g_array_set_size (stack, stack->len - 1);
    }
  for (guint i = 0; i < stack->len; i++)
    {
      g_free (g_array_index (stack, WalkFrame, i).name);
      g_ptr_array_unref (g_array_index (stack, WalkFrame, i).todo);
    }
  close (cur);
  return ok;
}

/* What the tmpfs mounts that hold the sandbox's /tmp, /var/tmp and
 * workdir may hold together, in bytes (the workdir half of it, the others
 * a quarter each), or 0 when those are bound from the instance directory.
 * Only a sandbox whose directory is in memory (tmpfs, ramfs) and whose
 * spec sets a memory or disk limit gets them: there, its files are memory
 * of the host that neither limit counts. The smaller of the disk limit and
 * half the memory limit (/dev/shm and /run have a quarter each), of those
 * set: the sum, not each mount, so that writing to all three holds no
 * more. Depends on the configuration and where the directory lies only,
 * so every process computes the same (metrics, another process's lookup). */
guint64
_local_own_tmpfs_size (LocalConfig *config)
{
  struct statfs fs;
  guint64 size = 0;

  if (config->memory_mb == 0 && config->disk_mb == 0)
    return 0;
  if (statfs (config->dir, &fs) != 0 || (fs.f_type != TMPFS_MAGIC && fs.f_type != RAMFS_MAGIC))
    return 0;
  if (config->disk_mb > 0)
    size = (guint64) config->disk_mb << 20;
  if (config->memory_mb > 0 && (size == 0 || ((guint64) config->memory_mb << 19) < size))
    size = (guint64) config->memory_mb << 19;
  return size;
}

/* What the sandbox holds in its own tmpfs mounts (_local_own_tmpfs_size),
 * in bytes, and what they can hold in all (TOTAL): each is found through
 * its pid 1's root, one name at a time without following links (the
 * sandbox may have swapped a directory above a workdir for a link), and
 * counted only if it is a tmpfs. */
guint64
_local_own_tmpfs_used (LocalConfig *config,
                       guint64     *total)
{
  guint64 used = 0;

  *total = 0;
  if (_local_own_tmpfs_size (config) == 0 || config->init_pid <= 1)
    return 0;
  for (guint i = 0; i < 3; i++)
    {
      const char *target = i == 0 ? "/tmp" : i == 1 ? "/var/tmp" : config->workdir;
      g_autofree char *root = NULL;
      g_auto(GStrv) parts = NULL;
      struct statfs fs;
      int fd;

      /* A workdir of /tmp is the same mount as it (one below it is a
       * mount of its own). */
      if (i == 2 && (strcmp (target, "/tmp") == 0 || strcmp (target, "/var/tmp") == 0))
        break;
      root = g_strdup_printf ("/proc/%" G_GINT64_FORMAT "/root", config->init_pid);
      parts = g_strsplit (target, "/", -1);
      fd = open (root, O_PATH | O_DIRECTORY | O_CLOEXEC);
      for (guint j = 0; fd >= 0 && parts[j] != NULL; j++)
        {
          int next;

          if (*parts[j] == '\0' || strcmp (parts[j], ".") == 0)
            continue;
          next = strcmp (parts[j], "..") == 0 ? -1
                 : openat (fd, parts[j], O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
          close (fd);
          fd = next;
        }
      if (fd >= 0 && fstatfs (fd, &fs) == 0 && fs.f_type == TMPFS_MAGIC)
        {
          used += (guint64) (fs.f_blocks - fs.f_bfree) * (guint64) fs.f_bsize;
          *total += (guint64) fs.f_blocks * (guint64) fs.f_bsize;
        }
      if (fd >= 0)
        close (fd);
    }
  return used;
}

guint64
_local_tree_size (const char *path)
{
  guint64 blocks = 0;
  int fd = open (path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

  if (fd >= 0)
    walk_tree (fd, FALSE, &blocks);
  return blocks;
}

gboolean
_local_remove_tree (const char  *path,
                    GError     **error)
{
  struct stat st;
  int dirfd;

  if (lstat (path, &st) != 0 && errno == ENOENT)
    return TRUE;
  dirfd = open (path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dirfd >= 0)
    walk_tree (dirfd, TRUE, NULL);
  if (rmdir (path) != 0 && errno != ENOENT && unlink (path) != 0)
    {
      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_FAILED,
                   _("Could not remove everything under %s; remove it by hand."), path);
      return FALSE;
    }
  return TRUE;
}

/* Waits until PID has ended, at most 10 s. For the sandbox's pid 1 this
 * means every process of its pid namespace has ended too: the kernel kills
 * and reaps them before pid 1's exit completes. */
static void
wait_gone (int   pidfd,
           pid_t pid)
{
  if (pidfd >= 0)
    {
      struct pollfd pfd = { pidfd, POLLIN, 0 };

      while (poll (&pfd, 1, 10000) < 0 && errno == EINTR)
        ;
      return;
    }
  for (int i = 0; i < 10000 && kill (pid, 0) == 0; i++)
    g_usleep (1000);
}

/* Kills the processes recorded in instance.json (by this or any other
 * process): the sandbox's pid 1, whose death takes down every process in
 * the sandbox, and its bwrap; then waits for them to be gone. */
static void
kill_recorded (LocalConfig *config,
               gboolean     wait)
{
  gint64 pids[] = { config->init_pid, config->bwrap_pid };

  for (guint i = 0; i < G_N_ELEMENTS (pids); i++)
    {
      gint64 pid = pids[i];
      g_autofree char *exe_link = NULL;
      g_autofree char *exe = NULL;
      int pidfd = -1;

      if (pid <= 1 || pid > G_MAXINT)
        continue;
#ifdef SYS_pidfd_open
      pidfd = (int) syscall (SYS_pidfd_open, (pid_t) pid, 0);
#endif
      /* Only if it still is what was recorded, not a reused pid. */
      exe_link = g_strdup_printf ("/proc/%" G_GINT64_FORMAT "/exe", pid);
      exe = g_file_read_link (exe_link, NULL);
      if (exe != NULL && (g_str_has_suffix (exe, "bwrap") ||
                          g_str_has_suffix (exe, "sandbox-exec-helper")))
        {
          /* Through the pidfd, opened before the check: should the pid be
           * reused in between (the process ended), the signal goes to the
           * process checked or nowhere, never to the newcomer. */
          _local_spawn_kill (pidfd, (pid_t) pid);
          if (wait)
            wait_gone (pidfd, (pid_t) pid);
        }
      else if (wait && exe == NULL && pidfd >= 0)
        {
          /* Already on its way out (the server leaves when instance.json
           * goes): wait all the same. */
          wait_gone (pidfd, (pid_t) pid);
        }
      if (pidfd >= 0)
        close (pidfd);
    }
}

/* Asks the server of the sandbox at DIR to end it: it kills and reaps every
 * other process of the sandbox, then exits. Returns the connection, whose
 * end-of-file says it is done, or -1. */
static int
ask_server_to_end (LocalConfig *config)
{
  char request[SBX_HEADER_LEN];
  int conn = socket_at (config->dir, FALSE);

  fill_header (request, SBX_MAGIC_END, 0, config->token);
  if (conn >= 0 && send (conn, request, sizeof request, MSG_NOSIGNAL) != sizeof request)
    clear_fd (&conn);
  return conn;
}

/* Whether the server closed CONN (after ending the sandbox) within 5 s. */
static gboolean
server_ended (int conn)
{
  gint64 deadline = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;
  char buf[256];

  for (;;)
    {
      struct pollfd pfd = { conn, POLLIN, 0 };
      gint64 left = (deadline - g_get_monotonic_time ()) / 1000;
      ssize_t n;

      if (left <= 0 || (poll (&pfd, 1, (int) left) < 0 && errno != EINTR))
        return FALSE;
      n = recv (conn, buf, sizeof buf, MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
        return TRUE;
    }
}

static gboolean destroy_dir (const char  *dir,
                             gboolean     ended,
                             GError     **error);

gboolean
_local_destroy_dir (const char  *dir,
                    GError     **error)
{
  return destroy_dir (dir, FALSE, error);
}

/* ENDED: the server is known to have ended the sandbox already (a one-shot
 * sandbox whose command's connection reached end-of-file), so it is not
 * asked again, nor waited for. */
static gboolean
destroy_dir (const char  *dir,
             gboolean     ended,
             GError     **error)
{
  g_autofree char *state = g_build_filename (dir, "instance.json", NULL);
  g_autoptr(LocalConfig) config = _local_config_load (dir, NULL);

  g_autofree char *id = g_path_get_basename (dir);
  int conn = -1;

  /* A paused sandbox runs again for its server to end it. */
  if (config != NULL && _local_is_paused (config))
    _local_resume (config, NULL);
  if (config != NULL && !ended)
    conn = ask_server_to_end (config);

  /* This process no longer owns it. */
  lease_release (id);

  /* Forget the instance first, so that nobody finds it half removed. */
  g_unlink (state);
  /* When the server is done, nothing of the sandbox runs any more but its
   * pid 1 and bwrap on their way out: those get killed without waiting for
   * the kernel to tear down their namespaces. Without the server's word,
   * kill_recorded waits for that too. */
  ended = ended || (conn >= 0 && server_ended (conn));
  clear_fd (&conn);
  if (config != NULL)
    {
      kill_recorded (config, !ended);
      _local_remove_cgroups (config);
    }
  return _local_remove_tree (dir, error);
}

static void
destroy_thread (GTask        *task,
                gpointer      source_object,
                gpointer      task_data,
                GCancellable *cancellable)
{
  SandboxLocalInstance *self = source_object;
  GError *error = NULL;

  /* Cancelled before it began: nothing is destroyed. */
  if (g_task_return_error_if_cancelled (task))
    return;
  if (!destroy_dir (self->config->dir, self->once_ended, &error))
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
}

/* A one-shot sandbox that its server has ended (the command's connection
 * reached end-of-file): nothing of it runs any more, and what is left are
 * its records and its directories, as made by create when the command
 * wrote nothing there. Removed here, with the instance's own record (not
 * read again from instance.json); returns FALSE if something is left (a
 * paused sandbox, files the command left), which destroy_dir then removes
 * in a thread as for any sandbox. */
static gboolean
destroy_ended_now (LocalConfig *config)
{
  static const char * const dirs[] = { "work", "tmp", "var-tmp" };
  g_autofree char *state = g_build_filename (config->dir, "instance.json", NULL);
  g_autofree char *sock = g_build_filename (config->dir, "sock", NULL);

  if (_local_is_paused (config))
    return FALSE;
  lease_release (config->id);
  g_unlink (state);
  kill_recorded (config, FALSE);
  _local_remove_cgroups (config);
  for (guint i = 0; i < G_N_ELEMENTS (dirs); i++)
    {
      g_autofree char *path = g_build_filename (config->dir, dirs[i], NULL);

      if (rmdir (path) != 0 && errno != ENOENT)
        return FALSE;
    }
  g_unlink (sock);
  return rmdir (config->dir) == 0 || errno == ENOENT;
}

static void
sandbox_local_instance_destroy (SandboxInstance *instance,
                                GCancellable    *cancellable,
                                GTask           *task)
{
  SandboxLocalInstance *self = SANDBOX_LOCAL_INSTANCE (instance);

  /* The end of every sandbox_backend_run of the local backend: a few
   * system calls, not worth a thread. */
  if (self->once_ended)
    {
      if (g_task_return_error_if_cancelled (task))
        return;
      if (destroy_ended_now (self->config))
        {
          g_task_return_boolean (task, TRUE);
          return;
        }
    }
  g_task_run_in_thread (task, destroy_thread);
}

/* Ports (since 0.2): a sandbox with network shares the host's network
 * namespace, so its servers are on the host's loopback already; one
 * without network has its own namespace, which nothing outside reaches. */
static void
sandbox_local_instance_dup_port_url (SandboxInstance *instance,
                                     guint            port,
                                     GCancellable    *cancellable,
                                     GTask           *task)
{
  SandboxLocalInstance *self = SANDBOX_LOCAL_INSTANCE (instance);

  if (!self->config->network)
    {
      g_task_return_new_error (task, SANDBOX_ERROR, SANDBOX_ERROR_NOT_SUPPORTED,
                               _("The local sandbox %s has no network, so nothing outside it "
                                 "can reach its port %u. Create it with the network on "
                                 "(“sandboxctl create --network”, or the spec's network "
                                 "property); its servers are then on this machine's 127.0.0.1."),
                               self->config->id, port);
      return;
    }
  {
    g_autofree char *url = g_strdup_printf ("http://127.0.0.1:%u", port);
    _sandbox_task_return_port_url (task, url, NULL);
  }
}

/* ------------------------------------------------------------------ */
/* Egress rules of a running sandbox: pid 1 holds them                 */

static void
egress_thread (GTask        *task,
               gpointer      source_object,
               gpointer      task_data,
               GCancellable *cancellable)
{
  SandboxLocalInstance *self = source_object;
  const char *rules = task_data;
  GError *error = NULL;
  g_autofree char *request = NULL;
  size_t len = strlen (rules);
  gint64 deadline = g_get_monotonic_time () + 10 * G_USEC_PER_SEC;
  char reply[64];
  size_t got = 0;
  int conn;

  if (instance_gone (self, &error) || !check_not_paused (self, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  request = g_malloc (SBX_HEADER_LEN + len);
  fill_header (request, SBX_MAGIC_EGRESS, (guint32) len, self->config->token);
  memcpy (request + SBX_HEADER_LEN, rules, len);
  conn = socket_at (self->config->dir, FALSE);
  if (conn < 0 || send (conn, request, SBX_HEADER_LEN + len, MSG_NOSIGNAL) != (ssize_t) (SBX_HEADER_LEN + len))
    {
      int errsv = errno;

      if (conn >= 0)
        close (conn);
      g_task_return_new_error (task, SANDBOX_ERROR, SANDBOX_ERROR_FAILED,
                               _("Cannot reach the server of the local sandbox %s: %s"),
                               self->config->id, g_strerror (errsv));
      return;
    }
  while (got < sizeof reply - 1 && memchr (reply, '\n', got) == NULL)
    {
      struct pollfd pfd = { conn, POLLIN, 0 };
      gint64 left = (deadline - g_get_monotonic_time ()) / 1000;
      ssize_t n;

      if (left <= 0 || (poll (&pfd, 1, (int) left) < 0 && errno != EINTR))
        break;
      n = recv (conn, reply + got, sizeof reply - 1 - got, MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
        break;
      if (n > 0)
        got += (size_t) n;
    }
  close (conn);
  reply[got] = '\0';
  if (!g_str_has_prefix (reply, SBX_REPLY_STATUS " 0\n"))
    {
      g_task_return_new_error (task, SANDBOX_ERROR, SANDBOX_ERROR_FAILED,
                               _("The local sandbox %s did not take the new egress rules (%s)."),
                               self->config->id, got > 0 ? g_strchomp (reply) : "no answer");
      return;
    }
  g_free (self->config->egress);
  self->config->egress = g_strdup (rules);
  if (!_local_config_save (self->config, &error))
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
}

static void
sandbox_local_instance_set_egress_rules (SandboxInstance    *instance,
                                         const char * const *allow,
                                         const char * const *deny,
                                         GCancellable       *cancellable,
                                         GTask              *task)
{
  SandboxLocalInstance *self = SANDBOX_LOCAL_INSTANCE (instance);
  GError *error = NULL;
  char *rules = NULL;

  if (!self->config->network)
    {
      g_task_return_new_error (task, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT,
                               _("The local sandbox %s has no network, so egress rules cannot "
                                 "apply; create it with the network on."), self->config->id);
      return;
    }
  if (!_local_encode_egress (allow, deny, TRUE, &rules, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  g_task_set_task_data (task, rules, g_free);
  g_task_run_in_thread (task, egress_thread);
}

/* ------------------------------------------------------------------ */
/* pause, resume, metrics (sandbox-local-pause.c does the work)        */

static void
pause_thread (GTask        *task,
              gpointer      source_object,
              gpointer      task_data,
              GCancellable *cancellable)
{
  SandboxLocalInstance *self = source_object;
  GError *error = NULL;
  gboolean pause = GPOINTER_TO_INT (task_data);

  if (instance_gone (self, &error) ||
      !(pause ? _local_pause (self->config, &error) : _local_resume (self->config, &error)))
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
}

static void
sandbox_local_instance_pause (SandboxInstance *instance,
                              GCancellable    *cancellable,
                              GTask           *task)
{
  g_task_set_task_data (task, GINT_TO_POINTER (TRUE), NULL);
  g_task_run_in_thread (task, pause_thread);
}

static void
sandbox_local_instance_resume (SandboxInstance *instance,
                               GCancellable    *cancellable,
                               GTask           *task)
{
  g_task_set_task_data (task, GINT_TO_POINTER (FALSE), NULL);
  g_task_run_in_thread (task, pause_thread);
}

static void
metrics_thread (GTask        *task,
                gpointer      source_object,
                gpointer      task_data,
                GCancellable *cancellable)
{
  SandboxLocalInstance *self = source_object;
  GError *error = NULL;
  SandboxMetrics *metrics = NULL;
  GValue value = G_VALUE_INIT;

  if (instance_gone (self, &error) || (metrics = _local_metrics (self->config, &error)) == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  g_value_init (&value, SANDBOX_TYPE_METRICS);
  g_value_take_object (&value, metrics);
  g_task_return_value (task, &value);
  g_value_unset (&value);
}

static void
sandbox_local_instance_get_metrics (SandboxInstance *instance,
                                    GCancellable    *cancellable,
                                    GTask           *task)
{
  g_task_run_in_thread (task, metrics_thread);
}

/* ------------------------------------------------------------------ */

static void
sandbox_local_instance_finalize (GObject *object)
{
  SandboxLocalInstance *self = SANDBOX_LOCAL_INSTANCE (object);

  g_clear_pointer (&self->config, _local_config_free);
  clear_fd (&self->once_conn);
  for (guint i = 0; i < 3; i++)
    clear_fd (&self->once_ends[i]);

  G_OBJECT_CLASS (sandbox_local_instance_parent_class)->finalize (object);
}

static void
sandbox_local_instance_class_init (SandboxLocalInstanceClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  SandboxInstanceClass *instance_class = SANDBOX_INSTANCE_CLASS (klass);

  object_class->finalize = sandbox_local_instance_finalize;

  instance_class->exec = sandbox_local_instance_exec;
  instance_class->upload = sandbox_local_instance_upload;
  instance_class->download = sandbox_local_instance_download;
  instance_class->destroy = sandbox_local_instance_destroy;
  instance_class->pause = sandbox_local_instance_pause;
  instance_class->resume = sandbox_local_instance_resume;
  instance_class->get_metrics = sandbox_local_instance_get_metrics;
  instance_class->dup_port_url = sandbox_local_instance_dup_port_url;
  instance_class->set_egress_rules = sandbox_local_instance_set_egress_rules;
}

static void
sandbox_local_instance_init (SandboxLocalInstance *self)
{
}
