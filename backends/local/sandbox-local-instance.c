/* libsandbox - a local (bubblewrap) sandbox
 *
 * Every exec is one bwrap process: new user, pid, ipc, uts (and, unless the
 * spec asks for the network, net) namespaces; the host's root (or an image
 * root file system) read-only; the instance's work and tmp directories
 * read-write; no capabilities; an environment made only of what the spec
 * and the command set. Inside, sandbox-exec-helper runs the command and
 * reports on fd 3 how it ended, so that exit status, signal and exec
 * failures are told apart.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <glib-unix.h>
#include <gio/gunixinputstream.h>

#include "sandbox-local-private.h"

#define HELPER_IN_SANDBOX "/run/libsandbox/sandbox-exec-helper"
#define STATUS_FD 3
#define INFO_FD 4     /* bwrap writes {"child-pid": N} here */
#define TAIL_MAX 4096

struct _SandboxLocalInstance
{
  SandboxInstance  parent_instance;

  LocalConfig     *config;
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
                       "state", SANDBOX_INSTANCE_STATE_RUNNING,
                       NULL);
  self->config = config;
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

/* ------------------------------------------------------------------ */
/* Paths: what a path inside the sandbox is on the host                 */

typedef struct
{
  const char *sandbox;
  char       *host;
  gboolean    writable;
  gboolean    follow_links;   /* symlinks resolve the same inside and out */
} Bind;

static void
bind_clear (Bind *bind)
{
  g_free (bind->host);
}

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

  g_array_set_clear_func (binds, (GDestroyNotify) bind_clear);

  for (guint i = config->mounts->len; i > 0; i--)
    {
      SandboxMount *mount = g_ptr_array_index (config->mounts, i - 1);

      bind = (Bind) { sandbox_mount_get_sandbox_path (mount),
                      g_strdup (sandbox_mount_get_host_path (mount)),
                      !sandbox_mount_get_read_only (mount), FALSE };
      g_array_append_val (binds, bind);
    }
  bind = (Bind) { config->workdir, g_build_filename (config->dir, "work", NULL), TRUE, FALSE };
  g_array_append_val (binds, bind);
  bind = (Bind) { "/tmp", g_build_filename (config->dir, "tmp", NULL), TRUE, FALSE };
  g_array_append_val (binds, bind);
  bind = (Bind) { "/", g_strdup (config->rootfs ? config->rootfs : "/"), FALSE, config->rootfs == NULL };
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

/* Maps an absolute sandbox path to the host. Refuses the virtual file
 * systems, and symbolic links in the middle of the path where following
 * them on the host would lead somewhere else than inside the sandbox. */
static char *
map_path (LocalConfig  *config,
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

  for (guint i = 0; virtual_dirs[i] != NULL; i++)
    if (is_under (canonical, virtual_dirs[i]))
      {
        g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT,
                     _("%s is on a virtual file system of the sandbox and cannot be copied."),
                     canonical);
        return NULL;
      }

  binds = collect_binds (config);
  for (guint i = 0; i < binds->len; i++)
    {
      Bind *bind = &g_array_index (binds, Bind, i);
      const char *rest;
      g_autofree char *host = NULL;

      if (!is_under (canonical, bind->sandbox))
        continue;

      if (for_writing && !bind->writable)
        {
          g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT,
                       _("%s is read-only in the sandbox. Copy files under the workdir (%s), "
                         "/tmp, or a read-write mount."), canonical, config->workdir);
          return NULL;
        }

      rest = canonical + (strcmp (bind->sandbox, "/") == 0 ? 0 : strlen (bind->sandbox));
      while (*rest == '/')
        rest++;
      host = g_build_filename (bind->host, rest, NULL);

      if (!bind->follow_links && *rest != '\0')
        {
          g_auto(GStrv) parts = g_strsplit (rest, "/", -1);
          g_autofree char *walk = g_strdup (bind->host);

          for (guint p = 0; parts[p] != NULL && parts[p + 1] != NULL; p++)
            {
              g_autofree char *next = g_build_filename (walk, parts[p], NULL);

              if (g_file_test (next, G_FILE_TEST_IS_SYMLINK))
                {
                  g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT,
                               _("%s goes through a symbolic link (%s); copy the path it "
                                 "points to instead."), canonical, parts[p]);
                  return NULL;
                }
              g_free (walk);
              walk = g_steal_pointer (&next);
            }
        }
      return g_steal_pointer (&host);
    }

  g_assert_not_reached ();
  return NULL;
}

/* ------------------------------------------------------------------ */
/* The bwrap command line                                              */

static gboolean
is_managed_top (const char *name)
{
  static const char * const managed[] = { "proc", "dev", "sys", "tmp", "run", NULL };

  return g_strv_contains (managed, name);
}

static void
add_root (GPtrArray  *argv,
          const char *root)
{
  g_autoptr(GDir) dir = g_dir_open (root, 0, NULL);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *host = g_build_filename (root, name, NULL);
      g_autofree char *target = g_build_filename ("/", name, NULL);

      if (g_strcmp0 (name, "sys") == 0)
        {
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

/* The host's home directories stay private: an empty tmpfs over /root,
 * /home and $HOME (spec mounts and the workdir, bound later, stay visible;
 * the tmpfs mounts, added to @masked, are made read-only after those);
 * and the password hashes, which the sandbox user could otherwise read
 * when the caller is root (its uid maps to the caller's). */
static void
add_home_masks (GPtrArray *argv,
                GPtrArray *masked)
{
  static const char * const homes[] = { "/root", "/home", NULL };
  static const char * const secret_files[] = { "/etc/shadow", "/etc/gshadow", NULL };
  g_autofree char *home = g_canonicalize_filename (g_get_home_dir (), "/");

  for (guint i = 0; homes[i] != NULL; i++)
    if (g_file_test (homes[i], G_FILE_TEST_IS_DIR))
      {
        g_ptr_array_add (argv, g_strdup ("--tmpfs"));
        g_ptr_array_add (argv, g_strdup (homes[i]));
        g_ptr_array_add (masked, g_strdup (homes[i]));
      }
  if (is_maskable_home (home))
    {
      g_ptr_array_add (argv, g_strdup ("--tmpfs"));
      g_ptr_array_add (argv, g_strdup (home));
      g_ptr_array_add (masked, g_steal_pointer (&home));
    }
  for (guint i = 0; secret_files[i] != NULL; i++)
    if (g_file_test (secret_files[i], G_FILE_TEST_IS_REGULAR))
      {
        g_ptr_array_add (argv, g_strdup ("--ro-bind"));
        g_ptr_array_add (argv, g_strdup ("/dev/null"));
        g_ptr_array_add (argv, g_strdup (secret_files[i]));
      }
}

static GPtrArray *
build_bwrap_argv (SandboxLocalInstance *self,
                  SandboxCommand       *command)
{
  LocalConfig *config = self->config;
  SandboxLocalBackend *backend = get_backend (self);
  GPtrArray *argv = g_ptr_array_new_with_free_func (g_free);
  const char * const *cmd = sandbox_command_get_argv (command);
  const char *cwd = sandbox_command_get_cwd (command);
  g_autoptr(GPtrArray) masked = g_ptr_array_new_with_free_func (g_free);

#define ADD(s) g_ptr_array_add (argv, g_strdup (s))
  ADD (_sandbox_local_backend_get_bwrap (backend));
  ADD ("--die-with-parent");
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
  ADD ("--uid"); ADD (config->run_as_root ? "0" : LOCAL_SANDBOX_UID);
  ADD ("--gid"); ADD (config->run_as_root ? "0" : LOCAL_SANDBOX_UID);

  add_root (argv, config->rootfs ? config->rootfs : "/");
  if (config->rootfs == NULL)
    add_home_masks (argv, masked);

  ADD ("--proc"); ADD ("/proc");
  /* bwrap leaves these writable when the sandbox user maps to the host's
   * root (the caller is root): global sysctls and the magic SysRq key. */
  ADD ("--ro-bind-try"); ADD ("/proc/sys"); ADD ("/proc/sys");
  ADD ("--ro-bind-try"); ADD ("/proc/sysrq-trigger"); ADD ("/proc/sysrq-trigger");
  ADD ("--dev"); ADD ("/dev");
  ADD ("--tmpfs"); ADD ("/run");
  ADD ("--bind"); g_ptr_array_add (argv, g_build_filename (config->dir, "tmp", NULL)); ADD ("/tmp");
  ADD ("--bind"); g_ptr_array_add (argv, g_build_filename (config->dir, "work", NULL)); ADD (config->workdir);
  for (guint i = 0; i < config->mounts->len; i++)
    {
      SandboxMount *mount = g_ptr_array_index (config->mounts, i);

      ADD (sandbox_mount_get_read_only (mount) ? "--ro-bind" : "--bind");
      ADD (sandbox_mount_get_host_path (mount));
      ADD (sandbox_mount_get_sandbox_path (mount));
    }
  for (guint i = 0; i < masked->len; i++)
    {
      const char *path = g_ptr_array_index (masked, i);
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
  ADD ("--chdir"); ADD ("/");
  ADD ("--info-fd"); g_ptr_array_add (argv, g_strdup_printf ("%d", INFO_FD));
  ADD ("--");
  ADD (HELPER_IN_SANDBOX);
  g_ptr_array_add (argv, g_strdup_printf ("%d", STATUS_FD));
  ADD (cwd ? cwd : config->workdir);
  ADD ("--");
  for (guint i = 0; cmd[i] != NULL; i++)
    ADD (cmd[i]);
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
/* Resource limits, applied in the child between fork and exec          */

typedef struct
{
  LocalLimits limits;
  rlim_t      memory;      /* bytes, 0 for none */
  rlim_t      nproc;
  rlim_t      fsize;
  int         ncpu;        /* CPUs to keep in the affinity mask, 0 for all */
  int         cgroup_fd;   /* cgroup.procs of the exec's cgroup, or -1 */
} ChildLimits;

static void
child_setup (gpointer user_data)
{
  ChildLimits *limits = user_data;

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
      int kept = 0;

      if (sched_getaffinity (0, sizeof set, &set) == 0)
        {
          CPU_ZERO (&keep);
          for (int c = 0; c < CPU_SETSIZE && kept < limits->ncpu; c++)
            if (CPU_ISSET (c, &set))
              {
                CPU_SET (c, &keep);
                kept++;
              }
          sched_setaffinity (0, sizeof keep, &keep);
        }
    }
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

/* Creates a cgroup for one exec under SANDBOX_CGROUP_PARENT. */
static char *
make_cgroup (LocalConfig  *config,
             GError      **error)
{
  const char *parent = g_getenv ("SANDBOX_CGROUP_PARENT");
  g_autofree char *name = g_strdup_printf ("libsandbox-%s-%u", config->id, g_random_int ());
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
      g_autofree char *v = g_strdup_printf ("%u 100000", (guint) (config->cpu * 100000));
      if (!write_cgroup_file (dir, "cpu.max", v, error))
        goto fail;
    }
  return g_steal_pointer (&dir);

fail:
  g_rmdir (dir);
  return NULL;
}

/* ------------------------------------------------------------------ */
/* exec                                                                */

typedef struct _ExecData ExecData;

typedef struct
{
  ExecData      *exec;
  GInputStream  *in;
  GOutputStream *out;
  gboolean       capture;
  GByteArray    *tail;      /* last bytes of stderr, for bwrap's own errors */
} Pump;

struct _ExecData
{
  GTask        *task;
  GSubprocess  *process;
  Pump          out;
  Pump          err;
  GInputStream *status_in;
  GByteArray   *status;
  GInputStream *info_in;
  GByteArray   *info;
  int           child_pid;   /* the sandbox's pid 1, in our pid namespace */
  gboolean      info_done;
  GOutputStream *stdin_pipe;
  guint         pending;
  gboolean      timed_out;
  gboolean      cancelled;
  GSource      *timeout_source;
  GCancellable *cancellable;
  gulong        cancel_id;
  char         *pidfile;
  char         *cgroup;
  int           cgroup_fd;
  ChildLimits   limits;
  gint64        start;
  GError       *error;
  char         *program;
  char         *cwd;
};

static void
pump_clear (Pump *pump)
{
  g_clear_object (&pump->in);
  g_clear_object (&pump->out);
  g_clear_pointer (&pump->tail, g_byte_array_unref);
}

static void
exec_data_free (ExecData *data)
{
  pump_clear (&data->out);
  pump_clear (&data->err);
  g_clear_object (&data->process);
  g_clear_object (&data->status_in);
  g_clear_pointer (&data->status, g_byte_array_unref);
  g_clear_object (&data->info_in);
  g_clear_pointer (&data->info, g_byte_array_unref);
  g_clear_object (&data->stdin_pipe);
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
  if (data->pidfile != NULL)
    {
      g_unlink (data->pidfile);
      g_free (data->pidfile);
    }
  if (data->cgroup_fd >= 0)
    close (data->cgroup_fd);
  if (data->cgroup != NULL)
    {
      g_rmdir (data->cgroup);
      g_free (data->cgroup);
    }
  g_clear_error (&data->error);
  g_free (data->program);
  g_free (data->cwd);
  g_free (data);
}

/* Killing bwrap alone is not enough: if it dies before its child has
 * armed --die-with-parent, the sandbox lives on (holding our pipes open).
 * So the sandbox's pid 1 is killed, which takes down its whole pid
 * namespace; until bwrap has told us that pid (right after it forks),
 * the kill waits for it (info_got). */
static void
kill_process (ExecData *data)
{
  if (data->child_pid > 1)
    kill (data->child_pid, SIGKILL);
  else if (data->info_in != NULL && !data->info_done)
    return;
  if (data->process != NULL)
    g_subprocess_force_exit (data->process);
}

static GBytes *
captured (Pump *pump)
{
  if (!pump->capture)
    return NULL;
  g_output_stream_close (pump->out, NULL, NULL);
  return g_memory_output_stream_steal_as_bytes (G_MEMORY_OUTPUT_STREAM (pump->out));
}

static void
exec_complete (ExecData *data)
{
  GTask *task = data->task;
  g_autofree char *status = NULL;
  g_autoptr(GBytes) out = NULL;
  g_autoptr(GBytes) err = NULL;
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
      else
        g_task_return_new_error (task, SANDBOX_ERROR, SANDBOX_ERROR_EXEC,
                                 _("Cannot run “%s” in the sandbox: %s. Check that it is "
                                   "installed in the sandbox's image and on its PATH."),
                                 data->program, g_strerror (errnum));
      goto out;
    }

  if (strncmp (status, "status ", 7) == 0 || strstr (status, "\nstatus ") != NULL)
    {
      const char *line = strncmp (status, "status ", 7) == 0 ? status : strstr (status, "\nstatus ") + 1;

      wstatus = atoi (line + 7);
      if (WIFEXITED (wstatus))
        exit_status = WEXITSTATUS (wstatus);
      else if (WIFSIGNALED (wstatus))
        term_signal = WTERMSIG (wstatus);
    }
  else if (data->timed_out)
    term_signal = SIGKILL;
  else if (instance_gone (SANDBOX_LOCAL_INSTANCE (g_task_get_source_object (task)), NULL))
    {
      g_task_return_new_error (task, SANDBOX_ERROR, SANDBOX_ERROR_NOT_FOUND,
                               _("The sandbox was destroyed while the command “%s” was running."),
                               data->program);
      goto out;
    }
  else
    {
      /* The helper never reported: bubblewrap itself failed. */
      g_autofree char *tail = NULL;

      if (data->err.tail != NULL)
        tail = g_strstrip (g_strndup ((const char *) data->err.tail->data, data->err.tail->len));
      g_task_return_new_error (task, SANDBOX_ERROR, SANDBOX_ERROR_EXEC,
                               _("bubblewrap could not set up the sandbox%s%s. On a machine "
                                 "where unprivileged user namespaces are off, enable them "
                                 "(sysctl kernel.unprivileged_userns_clone=1); see "
                                 "docs/backends/local.md."),
                               tail && *tail ? ": " : "", tail ? tail : "");
      goto out;
    }

  out = captured (&data->out);
  err = captured (&data->err);
  {
    g_autoptr(SandboxExecResult) result =
      g_object_new (SANDBOX_TYPE_EXEC_RESULT,
                    "exit-status", exit_status,
                    "term-signal", term_signal,
                    "timed-out", data->timed_out,
                    "stdout", out,
                    "stderr", err,
                    "elapsed", (g_get_monotonic_time () - data->start) / (double) G_USEC_PER_SEC,
                    NULL);
    _sandbox_task_return_object (task, result);
  }

out:
  exec_data_free (data);
  g_object_unref (task);
}

static void
exec_step_done (ExecData *data)
{
  g_assert (data->pending > 0);
  if (--data->pending == 0)
    exec_complete (data);
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

static void pump_read (Pump *pump);

static void
pump_flushed (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  Pump *pump = user_data;

  g_output_stream_flush_finish (G_OUTPUT_STREAM (source), result, NULL);
  exec_step_done (pump->exec);
}

static void
pump_written (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  Pump *pump = user_data;
  GError *error = NULL;

  if (!g_output_stream_write_all_finish (G_OUTPUT_STREAM (source), result, NULL, &error))
    {
      /* Keep draining so the command is not blocked on a full pipe. */
      exec_record_error (pump->exec, error);
      g_clear_object (&pump->out);
      pump->out = g_memory_output_stream_new_resizable ();
      pump->capture = FALSE;
    }
  pump_read (pump);
}

static void
pump_got (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  Pump *pump = user_data;
  GError *error = NULL;
  g_autoptr(GBytes) bytes = g_input_stream_read_bytes_finish (G_INPUT_STREAM (source), result, &error);
  gsize size;
  const guint8 *buf;

  if (bytes == NULL)
    {
      exec_record_error (pump->exec, error);
      exec_step_done (pump->exec);
      return;
    }

  buf = g_bytes_get_data (bytes, &size);
  if (size == 0)
    {
      g_output_stream_flush_async (pump->out, G_PRIORITY_DEFAULT, NULL, pump_flushed, pump);
      return;
    }

  if (pump->tail != NULL)
    {
      g_byte_array_append (pump->tail, buf, size);
      if (pump->tail->len > TAIL_MAX)
        g_byte_array_remove_range (pump->tail, 0, pump->tail->len - TAIL_MAX);
    }

  g_output_stream_write_all_async (pump->out, buf, size, G_PRIORITY_DEFAULT, NULL,
                                   pump_written, pump);
  /* write_all_async copies nothing: keep the bytes alive until it is done. */
  g_object_set_data_full (G_OBJECT (pump->out), "sandbox-pending-bytes",
                          g_steal_pointer (&bytes), (GDestroyNotify) g_bytes_unref);
}

static void
pump_read (Pump *pump)
{
  g_input_stream_read_bytes_async (pump->in, 65536, G_PRIORITY_DEFAULT, NULL, pump_got, pump);
}

static void
pump_start (ExecData      *data,
            Pump          *pump,
            GInputStream  *in,
            GOutputStream *out,
            gboolean       keep_tail)
{
  pump->exec = data;
  pump->in = g_object_ref (in);
  pump->capture = (out == NULL);
  pump->out = out ? g_object_ref (out) : g_memory_output_stream_new_resizable ();
  pump->tail = keep_tail ? g_byte_array_new () : NULL;
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
  exec_step_done (data);
}

static void
info_got (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  ExecData *data = user_data;
  g_autoptr(GBytes) bytes = g_input_stream_read_bytes_finish (G_INPUT_STREAM (source), result, NULL);

  if (bytes != NULL && g_bytes_get_size (bytes) > 0 && data->info->len < 4096)
    {
      g_byte_array_append (data->info, g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
      g_input_stream_read_bytes_async (data->info_in, 1024, G_PRIORITY_DEFAULT, NULL, info_got, data);
      return;
    }

  if (data->info->len > 0)
    {
      g_autofree char *info = g_strndup ((const char *) data->info->data, data->info->len);
      const char *key = strstr (info, "\"child-pid\"");

      if (key != NULL && sscanf (key, "\"child-pid\" : %d", &data->child_pid) != 1)
        sscanf (key, "\"child-pid\": %d", &data->child_pid);
      if (data->child_pid > 1 && data->pidfile != NULL)
        {
          /* Recorded for destroy from another process. */
          g_autofree char *ident = g_path_get_basename (data->pidfile);   /* the process may be gone */
          g_autofree char *pids = g_strdup_printf ("%s %d", ident, data->child_pid);
          g_file_set_contents (data->pidfile, pids, -1, NULL);
        }
    }
  data->info_done = TRUE;
  /* Killed before we knew its pid 1: finish the job now. */
  if (data->cancelled || data->timed_out)
    kill_process (data);
  exec_step_done (data);
}

static void
process_waited (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  ExecData *data = user_data;

  g_subprocess_wait_finish (G_SUBPROCESS (source), result, NULL);
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

  g_debug ("Command %s ran out of time; killing its sandbox processes", data->program);
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
sandbox_local_instance_exec (SandboxInstance *instance,
                             SandboxCommand  *command,
                             GCancellable    *cancellable,
                             GTask           *task)
{
  SandboxLocalInstance *self = SANDBOX_LOCAL_INSTANCE (instance);
  LocalConfig *config = self->config;
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GPtrArray) argv = NULL;
  g_auto(GStrv) envp = NULL;
  GError *error = NULL;
  ExecData *data;
  int status_pipe[2], info_pipe[2];
  GBytes *stdin_bytes = sandbox_command_get_stdin (command);
  /* Without STDIN_PIPE, GSubprocess gives the command /dev/null, never our stdin. */
  GSubprocessFlags flags = G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE;

  if (g_task_return_error_if_cancelled (task) || instance_gone (self, &error))
    {
      if (error != NULL)
        g_task_return_error (task, error);
      return;
    }

  data = g_new0 (ExecData, 1);
  data->task = g_object_ref (task);
  data->cgroup_fd = -1;
  data->status = g_byte_array_new ();
  data->program = g_strdup (sandbox_command_get_argv (command)[0]);
  data->cwd = g_strdup (sandbox_command_get_cwd (command) ? sandbox_command_get_cwd (command)
                                                          : config->workdir);
  data->limits.cgroup_fd = -1;
  data->limits.limits = config->limits;

  if (config->limits == LOCAL_LIMITS_CGROUP2)
    {
      g_autofree char *procs = NULL;

      data->cgroup = make_cgroup (config, &error);
      if (data->cgroup == NULL)
        goto fail;
      procs = g_build_filename (data->cgroup, "cgroup.procs", NULL);
      data->cgroup_fd = open (procs, O_WRONLY | O_CLOEXEC);
      data->limits.cgroup_fd = data->cgroup_fd;
    }
  else if (config->limits == LOCAL_LIMITS_RLIMIT)
    {
      data->limits.memory = (rlim_t) config->memory_mb << 20;
      data->limits.nproc = config->pids_max;
      data->limits.ncpu = config->cpu > 0 ? MAX (1, (int) (config->cpu + 0.999)) : 0;
    }
  if (config->disk_mb > 0)
    data->limits.fsize = (rlim_t) config->disk_mb << 20;

  if (!g_unix_open_pipe (status_pipe, FD_CLOEXEC, &error))
    goto fail;
  data->status_in = g_unix_input_stream_new (status_pipe[0], TRUE);
  if (!g_unix_open_pipe (info_pipe, FD_CLOEXEC, &error))
    {
      close (status_pipe[1]);
      goto fail;
    }
  data->info_in = g_unix_input_stream_new (info_pipe[0], TRUE);
  data->info = g_byte_array_new ();

  if (stdin_bytes != NULL)
    flags |= G_SUBPROCESS_FLAGS_STDIN_PIPE;

  launcher = g_subprocess_launcher_new (flags);
  envp = build_environ (config, command);
  g_subprocess_launcher_set_environ (launcher, envp);
  g_subprocess_launcher_set_cwd (launcher, "/");
  g_subprocess_launcher_take_fd (launcher, status_pipe[1], STATUS_FD);
  g_subprocess_launcher_take_fd (launcher, info_pipe[1], INFO_FD);
  g_subprocess_launcher_set_child_setup (launcher, child_setup, &data->limits, NULL);

  argv = build_bwrap_argv (self, command);
  data->start = g_get_monotonic_time ();
  data->process = g_subprocess_launcher_spawnv (launcher, (const char * const *) argv->pdata, &error);
  /* The launcher holds the write end until it is finalized; drop it now so
   * that the status pipe reports EOF when the sandbox ends. */
  g_clear_object (&launcher);
  if (data->process == NULL)
    goto fail;

  {
    /* NULL once GLib has reaped the process: bwrap may have ended already. */
    const char *ident = g_subprocess_get_identifier (data->process);
    g_autofree char *pids = g_build_filename (config->dir, "pids", NULL);

    if (ident != NULL)
      {
        g_mkdir (pids, 0700);
        data->pidfile = g_build_filename (pids, ident, NULL);
        g_file_set_contents (data->pidfile, ident, -1, NULL);
      }
  }

  data->pending = 1;  /* released below, once everything is started */
  pump_start (data, &data->out, g_subprocess_get_stdout_pipe (data->process),
              sandbox_command_get_stdout_stream (command), FALSE);
  pump_start (data, &data->err, g_subprocess_get_stderr_pipe (data->process),
              sandbox_command_get_stderr_stream (command), TRUE);

  data->pending++;
  g_input_stream_read_bytes_async (data->status_in, 1024, G_PRIORITY_DEFAULT, NULL, status_got, data);

  data->pending++;
  g_input_stream_read_bytes_async (data->info_in, 1024, G_PRIORITY_DEFAULT, NULL, info_got, data);

  data->pending++;
  g_subprocess_wait_async (data->process, NULL, process_waited, data);

  if (stdin_bytes != NULL)
    {
      data->stdin_pipe = g_object_ref (g_subprocess_get_stdin_pipe (data->process));
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

  if (cancellable != NULL)
    {
      data->cancellable = g_object_ref (cancellable);
      data->cancel_id = g_cancellable_connect (cancellable, G_CALLBACK (exec_cancelled), data, NULL);
    }

  exec_step_done (data);
  return;

fail:
  g_task_return_error (task, error);
  g_object_unref (data->task);
  data->task = NULL;
  exec_data_free (data);
}

/* ------------------------------------------------------------------ */
/* Files                                                               */

static gboolean
copy_tree (GFile         *source,
           GFile         *destination,
           GCancellable  *cancellable,
           GError       **error)
{
  g_autoptr(GFileInfo) info = NULL;
  g_autoptr(GError) local_error = NULL;

  info = g_file_query_info (source, G_FILE_ATTRIBUTE_STANDARD_TYPE "," G_FILE_ATTRIBUTE_STANDARD_SYMLINK_TARGET,
                            G_FILE_QUERY_INFO_NOFOLLOW_SYMLINKS, cancellable, error);
  if (info == NULL)
    return FALSE;

  switch (g_file_info_get_file_type (info))
    {
    case G_FILE_TYPE_DIRECTORY:
      {
        g_autoptr(GFileEnumerator) children = NULL;

        if (!g_file_make_directory (destination, cancellable, &local_error) &&
            !g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_EXISTS))
          {
            g_propagate_error (error, g_steal_pointer (&local_error));
            return FALSE;
          }
        children = g_file_enumerate_children (source, G_FILE_ATTRIBUTE_STANDARD_NAME,
                                              G_FILE_QUERY_INFO_NOFOLLOW_SYMLINKS,
                                              cancellable, error);
        if (children == NULL)
          return FALSE;
        for (;;)
          {
            GFileInfo *child_info;
            GFile *child;
            g_autoptr(GFile) target = NULL;

            if (!g_file_enumerator_iterate (children, &child_info, &child, cancellable, error))
              return FALSE;
            if (child_info == NULL)
              break;
            target = g_file_get_child (destination, g_file_info_get_name (child_info));
            if (!copy_tree (child, target, cancellable, error))
              return FALSE;
          }
        return TRUE;
      }
    case G_FILE_TYPE_SYMBOLIC_LINK:
      g_file_delete (destination, NULL, NULL);
      return g_file_make_symbolic_link (destination, g_file_info_get_symlink_target (info),
                                        cancellable, error);
    case G_FILE_TYPE_REGULAR:
      return g_file_copy (source, destination,
                          G_FILE_COPY_OVERWRITE | G_FILE_COPY_NOFOLLOW_SYMLINKS,
                          cancellable, NULL, NULL, error);
    case G_FILE_TYPE_UNKNOWN:
    case G_FILE_TYPE_SPECIAL:
    case G_FILE_TYPE_SHORTCUT:
    case G_FILE_TYPE_MOUNTABLE:
    default:
      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT,
                   _("%s is not a regular file, directory or symbolic link, and cannot be copied."),
                   g_file_peek_path (source));
      return FALSE;
    }
}

typedef struct
{
  GFile *source;
  GFile *destination;
} CopyData;

static void
copy_data_free (CopyData *data)
{
  g_clear_object (&data->source);
  g_clear_object (&data->destination);
  g_free (data);
}

static void
copy_thread (GTask        *task,
             gpointer      source_object,
             gpointer      task_data,
             GCancellable *cancellable)
{
  CopyData *data = task_data;
  g_autoptr(GFile) parent = g_file_get_parent (data->destination);
  GError *error = NULL;

  if (!g_file_query_exists (data->source, cancellable))
    {
      g_task_return_new_error (task, SANDBOX_ERROR, SANDBOX_ERROR_NOT_FOUND,
                               _("%s does not exist."), g_file_peek_path (data->source));
      return;
    }
  if (parent != NULL &&
      !g_file_make_directory_with_parents (parent, cancellable, &error) &&
      !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_EXISTS))
    {
      g_task_return_error (task, error);
      return;
    }
  g_clear_error (&error);

  if (!copy_tree (data->source, data->destination, cancellable, &error))
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
}

static void
start_copy (GTask *task,
            GFile *source,
            GFile *destination)
{
  CopyData *data = g_new0 (CopyData, 1);

  data->source = g_object_ref (source);
  data->destination = g_object_ref (destination);
  g_task_set_task_data (task, data, (GDestroyNotify) copy_data_free);
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
  g_autofree char *host = NULL;
  g_autoptr(GFile) target = NULL;
  GError *error = NULL;

  if (instance_gone (self, &error) ||
      (host = map_path (self->config, destination, TRUE, &error)) == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  target = g_file_new_for_path (host);
  start_copy (task, source, target);
}

static void
sandbox_local_instance_download (SandboxInstance *instance,
                                 const char      *source,
                                 GFile           *destination,
                                 GCancellable    *cancellable,
                                 GTask           *task)
{
  SandboxLocalInstance *self = SANDBOX_LOCAL_INSTANCE (instance);
  g_autofree char *host = NULL;
  g_autoptr(GFile) from = NULL;
  GError *error = NULL;

  if (instance_gone (self, &error) ||
      (host = map_path (self->config, source, FALSE, &error)) == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  from = g_file_new_for_path (host);
  start_copy (task, from, destination);
}

/* ------------------------------------------------------------------ */
/* destroy                                                             */

static int
make_removable (const char        *path,
                const struct stat *st,
                int                type,
                struct FTW        *ftw)
{
  if (type == FTW_D && (st->st_mode & 0700) != 0700)
    chmod (path, st->st_mode | 0700);
  return 0;
}

static int
remove_entry (const char        *path,
              const struct stat *st,
              int                type,
              struct FTW        *ftw)
{
  if (type == FTW_DP)
    rmdir (path);
  else
    unlink (path);
  return 0;
}

gboolean
_local_remove_tree (const char  *path,
                    GError     **error)
{
  if (!g_file_test (path, G_FILE_TEST_EXISTS))
    return TRUE;
  nftw (path, make_removable, 32, FTW_PHYS | FTW_MOUNT);
  nftw (path, remove_entry, 32, FTW_PHYS | FTW_MOUNT | FTW_DEPTH);
  if (g_file_test (path, G_FILE_TEST_EXISTS))
    {
      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_FAILED,
                   _("Could not remove everything under %s; remove it by hand."), path);
      return FALSE;
    }
  return TRUE;
}

/* Kills the bwrap processes recorded in DIR/pids (by this or any other
 * process); killing bwrap takes down every process in the sandbox. */
static void
kill_recorded (const char *dir)
{
  g_autofree char *pids = g_build_filename (dir, "pids", NULL);
  g_autoptr(GDir) d = g_dir_open (pids, 0, NULL);
  const char *name;

  while (d != NULL && (name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *path = g_build_filename (pids, name, NULL);
      g_autofree char *contents = NULL;
      g_auto(GStrv) numbers = NULL;

      /* "BWRAP-PID [SANDBOX-PID-1]", in a file named after bwrap's pid. */
      if (!g_file_get_contents (path, &contents, NULL, NULL))
        contents = g_strdup (name);
      numbers = g_strsplit (contents, " ", 0);
      for (guint i = 0; numbers[i] != NULL; i++)
        {
          gint64 pid = g_ascii_strtoll (numbers[i], NULL, 10);
          g_autofree char *exe_link = NULL;
          g_autofree char *exe = NULL;

          if (pid <= 1)
            continue;
          exe_link = g_strdup_printf ("/proc/%" G_GINT64_FORMAT "/exe", pid);
          exe = g_file_read_link (exe_link, NULL);
          if (exe != NULL && g_str_has_suffix (exe, "bwrap"))
            kill ((pid_t) pid, SIGKILL);
        }
    }
}

gboolean
_local_destroy_dir (const char  *dir,
                    GError     **error)
{
  g_autofree char *state = g_build_filename (dir, "instance.json", NULL);

  /* Forget the instance first, so that nobody finds it half removed. */
  g_unlink (state);
  kill_recorded (dir);
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

  if (!_local_destroy_dir (self->config->dir, &error))
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
}

static void
sandbox_local_instance_destroy (SandboxInstance *instance,
                                GCancellable    *cancellable,
                                GTask           *task)
{
  g_task_run_in_thread (task, destroy_thread);
}

/* ------------------------------------------------------------------ */

static void
sandbox_local_instance_finalize (GObject *object)
{
  SandboxLocalInstance *self = SANDBOX_LOCAL_INSTANCE (object);

  g_clear_pointer (&self->config, _local_config_free);

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
}

static void
sandbox_local_instance_init (SandboxLocalInstance *self)
{
}
