/* bench-sandbox: the C measurements behind bench/run
 *
 * Each mode prints raw samples, one per line, "sample LABEL VALUE" (VALUE
 * in microseconds unless the label says otherwise); bench/run turns them
 * into medians and ratios. Measurements only: nothing here asserts a speed.
 *
 *   bench-sandbox lifecycle N      create → exec true → destroy (libsandbox,
 *                                  local) vs one raw bwrap call with the
 *                                  local backend's flags vs fork/exec true,
 *                                  interleaved per iteration
 *   bench-sandbox live-exec N      exec true into one live sandbox vs
 *                                  fork/exec true, interleaved
 *   bench-sandbox concurrency lib|raw N
 *                                  N sandboxes created, used (exec echo) and
 *                                  destroyed concurrently on one main loop
 *                                  (lib), or N raw bwrap echo processes (raw)
 *   bench-sandbox loglat lib|raw LINES
 *                                  per-line latency from `date +%s%N` inside
 *                                  the command to the caller's output stream
 *   bench-sandbox transfer BACKEND FILE
 *                                  upload FILE then download it; times and
 *                                  client RSS growth (KiB)
 *   bench-sandbox phases N         where a lifecycle's time goes: create,
 *                                  exec true, destroy timed separately,
 *                                  interleaved with one raw bwrap
 *   bench-sandbox bwrap-argv DIR   print the raw bwrap command line (one
 *                                  argument a line) using DIR/tmp,
 *                                  DIR/var-tmp, DIR/work
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <libsandbox/sandbox.h>

static gint64
now_us (void)
{
  return g_get_monotonic_time ();
}

static void
die (const char *what,
     GError     *error)
{
  g_printerr ("bench-sandbox: %s: %s\n", what, error ? error->message : "failed");
  exit (1);
}

static long
proc_status_kib (const char *field)
{
  g_autofree char *contents = NULL;
  const char *p;

  if (!g_file_get_contents ("/proc/self/status", &contents, NULL, NULL))
    return -1;
  p = strstr (contents, field);
  if (p == NULL)
    return -1;
  return strtol (p + strlen (field) + 1, NULL, 10);
}

static int
run_argv (char * const *argv)
{
  pid_t pid = fork ();
  int status = 0;

  if (pid == 0)
    {
      int null = open ("/dev/null", O_WRONLY);

      if (null >= 0)
        dup2 (null, 1);
      execvp (argv[0], argv);
      _exit (127);
    }
  if (pid < 0)
    return -1;
  while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
    ;
  return status;
}

/* ------------------------------------------------------------------ */
/* The raw bwrap baseline: the flags of backends/local/sandbox-local-  */
/* instance.c build_bwrap_argv, minus the exec helper (bwrap's own pid  */
/* 1 instead: no --as-pid-1), --info-fd and the seccomp program.        */

static void
add_root (GPtrArray *argv)
{
  static const char * const managed[] = { "proc", "dev", "sys", "tmp", "run", NULL };
  g_autoptr(GDir) dir = g_dir_open ("/", 0, NULL);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *host = g_build_filename ("/", name, NULL);

      /* /sys: bound last, as the library does (build_bwrap_argv, add_sys). */
      if (g_strv_contains (managed, name))
        continue;
      /* The homes: only the tmpfs below (instance.c is_masked_home). */
      if ((g_strcmp0 (name, "root") == 0 || g_strcmp0 (name, "home") == 0) &&
          g_file_test (host, G_FILE_TEST_IS_DIR) && !g_file_test (host, G_FILE_TEST_IS_SYMLINK))
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
          g_ptr_array_add (argv, g_strdup (host));
        }
      g_ptr_array_add (argv, g_strdup (host));
    }
}

static GPtrArray *
raw_bwrap_argv (const char *dir,
                const char *program,
                const char *arg)
{
  GPtrArray *argv = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) ro_dirs = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) sys_masks = g_ptr_array_new_with_free_func (g_free);
  gboolean remount_ro = FALSE;

#define ADD(s) g_ptr_array_add (argv, g_strdup (s))
  ADD ("bwrap");
  ADD ("--die-with-parent"); ADD ("--new-session");
  ADD ("--unshare-user"); ADD ("--unshare-ipc"); ADD ("--unshare-pid");
  ADD ("--unshare-uts"); ADD ("--unshare-cgroup-try"); ADD ("--unshare-net");
  ADD ("--hostname"); ADD ("sbx-benchmark0");
  ADD ("--cap-drop"); ADD ("ALL");
  ADD ("--uid"); ADD ("1000"); ADD ("--gid"); ADD ("1000");
  add_root (argv);
  /* The library's masks (docs/security.md): homes, password hashes, sysctls.
   * A home that is a directory of the host's root is an empty directory of
   * the read-only root (add_home_masks), one that is a link a tmpfs. */
  for (guint i = 0; i < 2; i++)
    {
      const char *home = i == 0 ? "/root" : "/home";

      if (g_file_test (home, G_FILE_TEST_IS_DIR) && !g_file_test (home, G_FILE_TEST_IS_SYMLINK))
        {
          ADD ("--perms"); ADD ("0755"); ADD ("--dir"); ADD (home);
        }
      else if (g_file_test (home, G_FILE_TEST_IS_DIR))
        {
          ADD ("--tmpfs"); ADD (home);
          g_ptr_array_add (ro_dirs, g_strdup (home));
        }
    }
  ADD ("--ro-bind-try"); ADD ("/dev/null"); ADD ("/etc/shadow");
  ADD ("--ro-bind-try"); ADD ("/dev/null"); ADD ("/etc/gshadow");
  /* The other credentials the caller may read, and root-only directories
   * of /sys (build_bwrap_argv: readable_secrets, root_only_sys_dirs). */
  {
    static const char * const secrets[] = { "/etc/shadow-", "/etc/gshadow-", "/etc/security/opasswd",
                                             "/var/cache/debconf/passwords.dat", NULL };
    static const char * const sys_dirs[] = { "/sys/kernel/slab", "/sys/kernel/tracing", NULL };
    g_autoptr(GDir) ssh = g_dir_open ("/etc/ssh", 0, NULL);
    const char *name;

    for (guint i = 0; secrets[i] != NULL; i++)
      if (g_file_test (secrets[i], G_FILE_TEST_IS_REGULAR) && access (secrets[i], R_OK) == 0)
        {
          ADD ("--ro-bind"); ADD ("/dev/null"); ADD (secrets[i]);
        }
    while (ssh != NULL && (name = g_dir_read_name (ssh)) != NULL)
      if (g_str_has_prefix (name, "ssh_host_") && g_str_has_suffix (name, "_key"))
        {
          g_autofree char *path = g_build_filename ("/etc/ssh", name, NULL);

          if (g_file_test (path, G_FILE_TEST_IS_REGULAR) && access (path, R_OK) == 0)
            {
              ADD ("--ro-bind"); ADD ("/dev/null"); ADD (path);
            }
        }
    if (g_file_test ("/etc/ssl/private", G_FILE_TEST_IS_DIR) && access ("/etc/ssl/private", R_OK | X_OK) == 0)
      {
        ADD ("--tmpfs"); ADD ("/etc/ssl/private");
        remount_ro = TRUE;
      }
    for (guint i = 0; geteuid () == 0 && sys_dirs[i] != NULL; i++)
      if (g_file_test (sys_dirs[i], G_FILE_TEST_IS_DIR))
        g_ptr_array_add (sys_masks, g_strdup (sys_dirs[i]));
  }
  ADD ("--proc"); ADD ("/proc");
  ADD ("--ro-bind-try"); ADD ("/proc/sys"); ADD ("/proc/sys");
  ADD ("--ro-bind-try"); ADD ("/proc/sysrq-trigger"); ADD ("/proc/sysrq-trigger");
  /* The /proc files the library hides from a sandbox (build_bwrap_argv:
   * those it masks everywhere, and the root-only ones as root). */
  {
    static const char * const everyone[] = { "/proc/keys", "/proc/key-users", "/proc/kcore", "/proc/timer_list",
                                             "/proc/sched_debug", "/proc/latency_stats", NULL };
    static const char * const root_only[] = { "/proc/kpageflags", "/proc/kpagecount", "/proc/kpagecgroup",
                                              "/proc/slabinfo", "/proc/pagetypeinfo", NULL };

    for (guint i = 0; everyone[i] != NULL; i++)
      if (g_file_test (everyone[i], G_FILE_TEST_EXISTS))
        {
          ADD ("--ro-bind"); ADD ("/dev/null"); ADD (everyone[i]);
        }
    for (guint i = 0; geteuid () == 0 && root_only[i] != NULL; i++)
      if (g_file_test (root_only[i], G_FILE_TEST_EXISTS))
        {
          ADD ("--ro-bind"); ADD ("/dev/null"); ADD (root_only[i]);
        }
  }
  ADD ("--dev"); ADD ("/dev");
  ADD ("--remount-ro"); ADD ("/dev");
  ADD ("--tmpfs"); ADD ("/dev/shm");
  ADD ("--tmpfs"); ADD ("/run");
  ADD ("--bind"); g_ptr_array_add (argv, g_build_filename (dir, "tmp", NULL)); ADD ("/tmp");
  ADD ("--bind"); g_ptr_array_add (argv, g_build_filename (dir, "var-tmp", NULL)); ADD ("/var/tmp");
  ADD ("--bind"); g_ptr_array_add (argv, g_build_filename (dir, "work", NULL)); ADD ("/workspace");
  if (remount_ro)
    {
      ADD ("--remount-ro"); ADD ("/etc/ssl/private");
    }
  for (guint i = 0; i < ro_dirs->len; i++)
    {
      ADD ("--remount-ro"); ADD (g_ptr_array_index (ro_dirs, i));
    }
  /* The host's /sys last, with its masks (build_bwrap_argv: add_sys). */
  ADD ("--ro-bind"); ADD ("/sys"); ADD ("/sys");
  for (guint i = 0; i < sys_masks->len; i++)
    {
      ADD ("--tmpfs"); ADD (g_ptr_array_index (sys_masks, i));
    }
  for (guint i = 0; i < sys_masks->len; i++)
    {
      ADD ("--remount-ro"); ADD (g_ptr_array_index (sys_masks, i));
    }
  /* As the library: the root tmpfs read-only once its mount points exist. */
  ADD ("--remount-ro"); ADD ("/");
  ADD ("--chdir"); ADD ("/workspace");
  ADD ("--");
  ADD (program);
  if (arg != NULL)
    ADD (arg);
  g_ptr_array_add (argv, NULL);
#undef ADD
  return argv;
}

static char *
make_raw_dir (void)
{
  g_autoptr(GError) error = NULL;
  char *dir = g_dir_make_tmp ("bench-bwrap-XXXXXX", &error);
  g_autofree char *tmp = NULL;
  g_autofree char *var_tmp = NULL;
  g_autofree char *work = NULL;

  if (dir == NULL)
    die ("mkdtemp", error);
  tmp = g_build_filename (dir, "tmp", NULL);
  var_tmp = g_build_filename (dir, "var-tmp", NULL);
  work = g_build_filename (dir, "work", NULL);
  g_mkdir (tmp, 0700);
  g_mkdir (var_tmp, 0700);
  g_mkdir (work, 0700);
  return dir;
}

static void
remove_raw_dir (const char *dir)
{
  g_autofree char *tmp = g_build_filename (dir, "tmp", NULL);
  g_autofree char *var_tmp = g_build_filename (dir, "var-tmp", NULL);
  g_autofree char *work = g_build_filename (dir, "work", NULL);

  g_rmdir (tmp);
  g_rmdir (var_tmp);
  g_rmdir (work);
  g_rmdir (dir);
}

/* ------------------------------------------------------------------ */
/* lifecycle, live-exec                                                */

static SandboxBackend *
get_backend (const char *name)
{
  g_autoptr(GError) error = NULL;
  SandboxBackend *backend = sandbox_backend_new_for_name (name, &error);

  if (backend == NULL || !sandbox_backend_check_configured (backend, &error))
    die (name, error);
  return backend;
}

static void
exec_or_die (SandboxInstance *instance,
             SandboxCommand  *command)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(SandboxExecResult) result = sandbox_instance_exec (instance, command, NULL, &error);

  if (result == NULL)
    die ("exec", error);
  if (!sandbox_exec_result_get_success (result))
    die ("exec: the command failed", NULL);
}

static gint64
lib_cycle (SandboxBackend *backend,
           SandboxCommand *command)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autoptr(SandboxInstance) instance = NULL;
  gint64 start = now_us ();

  instance = sandbox_backend_create (backend, spec, NULL, &error);
  if (instance == NULL)
    die ("create", error);
  exec_or_die (instance, command);
  if (!sandbox_instance_destroy (instance, NULL, &error))
    die ("destroy", error);
  return now_us () - start;
}

static gint64
time_argv (char * const *argv)
{
  gint64 start = now_us ();
  int status = run_argv (argv);

  if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
    die (argv[0], NULL);
  return now_us () - start;
}

static int
mode_lifecycle (int n)
{
  g_autoptr(SandboxBackend) backend = get_backend ("local");
  const char *true_argv[] = { "true", NULL };
  g_autoptr(SandboxCommand) command = sandbox_command_new (true_argv);
  g_autofree char *dir = make_raw_dir ();
  g_autoptr(GPtrArray) bwrap = raw_bwrap_argv (dir, "true", NULL);
  char *fork_argv[] = { (char *) "/bin/true", NULL };

  /* Warm-up: page cache, lazily initialised state. */
  lib_cycle (backend, command);
  time_argv ((char * const *) bwrap->pdata);
  for (int i = 0; i < n; i++)
    {
      /* Rotate the order so no kind always runs first. */
      for (int k = 0; k < 3; k++)
        switch ((i + k) % 3)
          {
          case 0: printf ("sample lib %" G_GINT64_FORMAT "\n", lib_cycle (backend, command)); break;
          case 1: printf ("sample bwrap %" G_GINT64_FORMAT "\n", time_argv ((char * const *) bwrap->pdata)); break;
          default: printf ("sample fork %" G_GINT64_FORMAT "\n", time_argv (fork_argv)); break;
          }
    }
  remove_raw_dir (dir);
  return 0;
}

static int
mode_phases (int n)
{
  g_autoptr(SandboxBackend) backend = get_backend ("local");
  const char *true_argv[] = { "true", NULL };
  g_autoptr(SandboxCommand) command = sandbox_command_new (true_argv);
  g_autofree char *dir = make_raw_dir ();
  g_autoptr(GPtrArray) bwrap = raw_bwrap_argv (dir, "true", NULL);

  lib_cycle (backend, command);
  for (int i = 0; i < n; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
      g_autoptr(SandboxInstance) instance = NULL;
      gint64 t0, t1, t2, t3;

      if (i % 2 == 1)
        printf ("sample bwrap %" G_GINT64_FORMAT "\n", time_argv ((char * const *) bwrap->pdata));
      t0 = now_us ();
      instance = sandbox_backend_create (backend, spec, NULL, &error);
      if (instance == NULL)
        die ("create", error);
      t1 = now_us ();
      exec_or_die (instance, command);
      t2 = now_us ();
      if (!sandbox_instance_destroy (instance, NULL, &error))
        die ("destroy", error);
      t3 = now_us ();
      printf ("sample create %" G_GINT64_FORMAT "\nsample exec %" G_GINT64_FORMAT
              "\nsample destroy %" G_GINT64_FORMAT "\nsample lib %" G_GINT64_FORMAT "\n",
              t1 - t0, t2 - t1, t3 - t2, t3 - t0);
      if (i % 2 == 0)
        printf ("sample bwrap %" G_GINT64_FORMAT "\n", time_argv ((char * const *) bwrap->pdata));
    }
  remove_raw_dir (dir);
  return 0;
}

static int
mode_live_exec (int n)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(SandboxBackend) backend = get_backend ("local");
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autoptr(SandboxInstance) instance = NULL;
  const char *true_argv[] = { "true", NULL };
  g_autoptr(SandboxCommand) command = sandbox_command_new (true_argv);
  char *fork_argv[] = { (char *) "/bin/true", NULL };

  instance = sandbox_backend_create (backend, spec, NULL, &error);
  if (instance == NULL)
    die ("create", error);
  exec_or_die (instance, command); /* the first exec; the bench is about the next ones */
  for (int i = 0; i < n; i++)
    {
      gint64 start = now_us ();

      if (i % 2 == 0)
        {
          exec_or_die (instance, command);
          printf ("sample exec %" G_GINT64_FORMAT "\n", now_us () - start);
          printf ("sample fork %" G_GINT64_FORMAT "\n", time_argv (fork_argv));
        }
      else
        {
          printf ("sample fork %" G_GINT64_FORMAT "\n", time_argv (fork_argv));
          start = now_us ();
          exec_or_die (instance, command);
          printf ("sample exec %" G_GINT64_FORMAT "\n", now_us () - start);
        }
    }
  if (!sandbox_instance_destroy (instance, NULL, &error))
    die ("destroy", error);
  return 0;
}

/* ------------------------------------------------------------------ */
/* concurrency                                                         */

typedef struct {
  GMainLoop       *loop;
  SandboxBackend  *backend;
  SandboxCommand  *command;
  GPtrArray       *instances;
  int              n;
  int              pending;
  long             rss_before;
  long             rss_live;
} Conc;

static void conc_destroyed (GObject *source, GAsyncResult *result, gpointer user_data);

static void
conc_executed (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  Conc *c = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(SandboxExecResult) r = sandbox_instance_exec_finish (SANDBOX_INSTANCE (source), result, &error);

  if (r == NULL || !sandbox_exec_result_get_success (r))
    die ("exec", error);
  if (--c->pending == 0)
    {
      c->pending = c->n;
      for (guint i = 0; i < c->instances->len; i++)
        sandbox_instance_destroy_async (g_ptr_array_index (c->instances, i), NULL, conc_destroyed, c);
    }
}

static void
conc_created (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  Conc *c = user_data;
  g_autoptr(GError) error = NULL;
  SandboxInstance *instance = sandbox_backend_create_finish (SANDBOX_BACKEND (source), result, &error);

  if (instance == NULL)
    die ("create", error);
  g_ptr_array_add (c->instances, instance);
  if (--c->pending == 0)
    {
      /* All N are live: what does the client hold per instance? */
      c->rss_live = proc_status_kib ("VmRSS:");
      c->pending = c->n;
      for (guint i = 0; i < c->instances->len; i++)
        sandbox_instance_exec_async (g_ptr_array_index (c->instances, i), c->command, NULL, conc_executed, c);
    }
}

static void
conc_destroyed (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  Conc *c = user_data;
  g_autoptr(GError) error = NULL;

  if (!sandbox_instance_destroy_finish (SANDBOX_INSTANCE (source), result, &error))
    die ("destroy", error);
  if (--c->pending == 0)
    g_main_loop_quit (c->loop);
}

static void
raw_waited (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  Conc *c = user_data;
  g_autoptr(GError) error = NULL;

  if (!g_subprocess_wait_check_finish (G_SUBPROCESS (source), result, &error))
    die ("bwrap", error);
  if (--c->pending == 0)
    g_main_loop_quit (c->loop);
}

static int
mode_concurrency (const char *kind,
                  int         n)
{
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  const char *echo_argv[] = { "echo", "hello", NULL };
  g_autoptr(SandboxCommand) command = sandbox_command_new (echo_argv);
  g_autoptr(GPtrArray) instances = g_ptr_array_new_with_free_func (g_object_unref);
  Conc c = { loop, NULL, command, instances, n, n, 0, 0 };
  gint64 start;

  if (strcmp (kind, "lib") == 0)
    {
      g_autoptr(SandboxBackend) backend = get_backend ("local");

      lib_cycle (backend, command); /* warm-up, not counted */
      c.backend = backend;
      c.rss_before = proc_status_kib ("VmRSS:");
      start = now_us ();
      for (int i = 0; i < n; i++)
        {
          g_autoptr(SandboxSpec) spec = sandbox_spec_new ();

          sandbox_backend_create_async (backend, spec, NULL, conc_created, &c);
        }
      g_main_loop_run (loop);
      printf ("sample total %" G_GINT64_FORMAT "\n", now_us () - start);
      printf ("sample kib_per_instance %.2f\n", (double) (c.rss_live - c.rss_before) / n);
      return 0;
    }
  else
    {
      g_autofree char *dir = make_raw_dir ();
      g_autoptr(GPtrArray) argv = raw_bwrap_argv (dir, "echo", "hello");
      g_autoptr(GPtrArray) procs = g_ptr_array_new_with_free_func (g_object_unref);

      start = now_us ();
      for (int i = 0; i < n; i++)
        {
          g_autoptr(GError) error = NULL;
          GSubprocess *p = g_subprocess_newv ((const char * const *) argv->pdata,
                                              G_SUBPROCESS_FLAGS_STDOUT_SILENCE, &error);

          if (p == NULL)
            die ("bwrap", error);
          g_ptr_array_add (procs, p);
          g_subprocess_wait_check_async (p, NULL, raw_waited, &c);
        }
      g_main_loop_run (loop);
      printf ("sample total %" G_GINT64_FORMAT "\n", now_us () - start);
      remove_raw_dir (dir);
      return 0;
    }
}

/* ------------------------------------------------------------------ */
/* loglat: an output stream that timestamps each line as it arrives    */

#define BENCH_TYPE_LATENCY_STREAM (bench_latency_stream_get_type ())
G_DECLARE_FINAL_TYPE (BenchLatencyStream, bench_latency_stream, BENCH, LATENCY_STREAM, GOutputStream)

struct _BenchLatencyStream {
  GOutputStream parent_instance;
  GString      *partial;
  int           lines;
};

G_DEFINE_FINAL_TYPE (BenchLatencyStream, bench_latency_stream, G_TYPE_OUTPUT_STREAM)

static gssize
bench_latency_stream_write (GOutputStream *stream,
                            const void    *buffer,
                            gsize          count,
                            GCancellable  *cancellable,
                            GError       **error)
{
  BenchLatencyStream *self = BENCH_LATENCY_STREAM (stream);
  struct timespec ts;
  gint64 arrival;
  char *nl;

  clock_gettime (CLOCK_REALTIME, &ts);
  arrival = (gint64) ts.tv_sec * 1000000000 + ts.tv_nsec;
  g_string_append_len (self->partial, buffer, count);
  while ((nl = strchr (self->partial->str, '\n')) != NULL)
    {
      gint64 sent = g_ascii_strtoll (self->partial->str, NULL, 10);

      if (sent > 0)
        {
          printf ("sample line %.1f\n", (double) (arrival - sent) / 1000.0);
          self->lines++;
        }
      g_string_erase (self->partial, 0, nl - self->partial->str + 1);
    }
  return count;
}

static void
bench_latency_stream_finalize (GObject *object)
{
  g_string_free (BENCH_LATENCY_STREAM (object)->partial, TRUE);
  G_OBJECT_CLASS (bench_latency_stream_parent_class)->finalize (object);
}

static void
bench_latency_stream_class_init (BenchLatencyStreamClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = bench_latency_stream_finalize;
  G_OUTPUT_STREAM_CLASS (klass)->write_fn = bench_latency_stream_write;
}

static void
bench_latency_stream_init (BenchLatencyStream *self)
{
  self->partial = g_string_new (NULL);
}

static void
spliced (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  g_autoptr(GError) error = NULL;

  if (g_output_stream_splice_finish (G_OUTPUT_STREAM (source), result, &error) < 0)
    die ("splice", error);
  g_main_loop_quit (user_data);
}

static int
mode_loglat (const char *kind,
             int         lines)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(BenchLatencyStream) out = g_object_new (BENCH_TYPE_LATENCY_STREAM, NULL);
  g_autofree char *script = g_strdup_printf ("i=0; while [ $i -lt %d ]; do date +%%s%%N; i=$((i+1)); "
                                             "sleep 0.01; done", lines);
  const char *argv[] = { "sh", "-c", script, NULL };

  if (strcmp (kind, "lib") == 0)
    {
      g_autoptr(SandboxBackend) backend = get_backend ("local");
      g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
      g_autoptr(SandboxInstance) instance = sandbox_backend_create (backend, spec, NULL, &error);
      g_autoptr(SandboxCommand) command = sandbox_command_new (argv);

      if (instance == NULL)
        die ("create", error);
      sandbox_command_set_stdout_stream (command, G_OUTPUT_STREAM (out));
      exec_or_die (instance, command);
      if (!sandbox_instance_destroy (instance, NULL, &error))
        die ("destroy", error);
    }
  else
    {
      g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
      g_autoptr(GSubprocess) p = g_subprocess_newv (argv, G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error);

      if (p == NULL)
        die ("sh", error);
      g_output_stream_splice_async (G_OUTPUT_STREAM (out), g_subprocess_get_stdout_pipe (p),
                                    G_OUTPUT_STREAM_SPLICE_CLOSE_SOURCE, G_PRIORITY_DEFAULT, NULL,
                                    spliced, loop);
      g_main_loop_run (loop);
      if (!g_subprocess_wait_check (p, NULL, &error))
        die ("sh", error);
    }
  if (out->lines != lines)
    g_printerr ("bench-sandbox: %d of %d lines arrived\n", out->lines, lines);
  return 0;
}

/* ------------------------------------------------------------------ */
/* transfer                                                            */

static int
mode_transfer (const char *name,
               const char *path)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(SandboxBackend) backend = get_backend (name);
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autoptr(SandboxInstance) instance = NULL;
  g_autoptr(GFile) source = g_file_new_for_path (path);
  g_autofree char *back_path = g_strconcat (path, ".back", NULL);
  g_autoptr(GFile) back = g_file_new_for_path (back_path);
  long rss_before;
  gint64 start;

  instance = sandbox_backend_create (backend, spec, NULL, &error);
  if (instance == NULL)
    die ("create", error);
  rss_before = proc_status_kib ("VmRSS:");
  start = now_us ();
  if (!sandbox_instance_upload (instance, source, "/tmp/bench.bin", NULL, &error))
    die ("upload", error);
  printf ("sample upload %" G_GINT64_FORMAT "\n", now_us () - start);
  start = now_us ();
  if (!sandbox_instance_download (instance, "/tmp/bench.bin", back, NULL, &error))
    die ("download", error);
  printf ("sample download %" G_GINT64_FORMAT "\n", now_us () - start);
  printf ("sample rss_growth_kib %ld\n", proc_status_kib ("VmHWM:") - rss_before);
  printf ("instance %s\n", sandbox_instance_get_id (instance));
  g_file_delete (back, NULL, NULL);
  if (!sandbox_instance_destroy (instance, NULL, &error))
    die ("destroy", error);
  return 0;
}

int
main (int   argc,
      char *argv[])
{
  setvbuf (stdout, NULL, _IOLBF, 0);
  if (argc == 3 && strcmp (argv[1], "lifecycle") == 0)
    return mode_lifecycle (atoi (argv[2]));
  if (argc == 3 && strcmp (argv[1], "phases") == 0)
    return mode_phases (atoi (argv[2]));
  if (argc == 3 && strcmp (argv[1], "live-exec") == 0)
    return mode_live_exec (atoi (argv[2]));
  if (argc == 4 && strcmp (argv[1], "concurrency") == 0)
    return mode_concurrency (argv[2], atoi (argv[3]));
  if (argc == 4 && strcmp (argv[1], "loglat") == 0)
    return mode_loglat (argv[2], atoi (argv[3]));
  if (argc == 4 && strcmp (argv[1], "transfer") == 0)
    return mode_transfer (argv[2], argv[3]);
  if (argc == 3 && strcmp (argv[1], "bwrap-argv") == 0)
    {
      /* The raw bwrap baseline for other languages, one argument a line. */
      g_autofree char *tmp = g_build_filename (argv[2], "tmp", NULL);
      g_autofree char *var_tmp = g_build_filename (argv[2], "var-tmp", NULL);
      g_autofree char *work = g_build_filename (argv[2], "work", NULL);
      g_autoptr(GPtrArray) bwrap = raw_bwrap_argv (argv[2], "true", NULL);

      g_mkdir (tmp, 0700);
      g_mkdir (var_tmp, 0700);
      g_mkdir (work, 0700);
      for (guint i = 0; i + 1 < bwrap->len; i++)
        printf ("%s\n", (char *) g_ptr_array_index (bwrap, i));
      return 0;
    }
  g_printerr ("usage: bench-sandbox lifecycle N | phases N | live-exec N | concurrency lib|raw N |\n"
              "                     loglat lib|raw LINES | transfer BACKEND FILE | bwrap-argv DIR\n");
  return 2;
}
