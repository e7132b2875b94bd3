/* libsandbox - pausing a local sandbox and measuring what it uses
 *
 * A sandbox with a cgroup is frozen with the cgroup freezer. Without one,
 * every process of its pid namespace (its pid 1 and all that descends from
 * it: orphans are re-parented to that pid 1) gets SIGSTOP, pid 1 first so
 * that it starts nothing new, until a scan finds no process left running;
 * resuming sends SIGCONT the other way round. The file DIR/paused says the
 * sandbox is paused, to this and every other process: exec and file copies
 * refuse to start while it exists.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#define _GNU_SOURCE
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "sandbox-local-private.h"

#define PAUSED_FILE "paused"

static char *
paused_path (LocalConfig *config)
{
  return g_build_filename (config->dir, PAUSED_FILE, NULL);
}

gboolean
_local_is_paused (LocalConfig *config)
{
  g_autofree char *path = paused_path (config);

  return g_file_test (path, G_FILE_TEST_EXISTS);
}

gboolean
_local_check_not_paused (LocalConfig  *config,
                         GError      **error)
{
  if (!_local_is_paused (config))
    return TRUE;
  g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_FAILED,
               _("The local sandbox %s is paused: resume it first "
                 "(sandboxctl resume %s, or sandbox_instance_resume())."),
               config->id, config->id);
  return FALSE;
}

/* The fields of /proc/PID/stat after the command name: state is [0],
 * ppid [1], utime [11], stime [12], rss [21]. */
static gboolean
read_stat (gint64   pid,
           char    *state,
           gint64  *ppid,
           guint64 *ticks,
           guint64 *rss_pages)
{
  g_autofree char *path = g_strdup_printf ("/proc/%" G_GINT64_FORMAT "/stat", pid);
  g_autofree char *text = NULL;
  g_auto(GStrv) fields = NULL;
  char *end;

  if (!g_file_get_contents (path, &text, NULL, NULL))
    return FALSE;
  end = strrchr (text, ')');
  if (end == NULL || end[1] != ' ')
    return FALSE;
  fields = g_strsplit (end + 2, " ", -1);
  if (g_strv_length (fields) < 22)
    return FALSE;
  if (state)
    *state = fields[0][0];
  if (ppid)
    *ppid = g_ascii_strtoll (fields[1], NULL, 10);
  if (ticks)
    *ticks = g_ascii_strtoull (fields[11], NULL, 10) + g_ascii_strtoull (fields[12], NULL, 10);
  if (rss_pages)
    *rss_pages = g_ascii_strtoull (fields[21], NULL, 10);
  return TRUE;
}

/* The resident memory of PID in bytes: VmRSS of /proc/PID/status, which
 * the kernel sums exactly; the rss field of /proc/PID/stat is an estimate
 * that stays 0 for a small process (a static musl pid 1 and its spawner
 * fault in fewer pages than its per-CPU counters batch). */
static gboolean
read_rss (gint64   pid,
          guint64 *bytes)
{
  g_autofree char *path = g_strdup_printf ("/proc/%" G_GINT64_FORMAT "/status", pid);
  g_autofree char *text = NULL;
  const char *line;

  if (!g_file_get_contents (path, &text, NULL, NULL) ||
      (line = strstr (text, "\nVmRSS:")) == NULL)
    return FALSE;
  *bytes = g_ascii_strtoull (line + strlen ("\nVmRSS:"), NULL, 10) * 1024;
  return TRUE;
}

/* Whether the recorded pid 1 still is the sandbox's server. */
static gboolean
init_alive (LocalConfig *config)
{
  g_autofree char *link = NULL;
  g_autofree char *exe = NULL;

  if (config->init_pid <= 1 || config->init_pid > G_MAXINT)
    return FALSE;
  link = g_strdup_printf ("/proc/%" G_GINT64_FORMAT "/exe", config->init_pid);
  exe = g_file_read_link (link, NULL);
  return exe != NULL && g_str_has_suffix (exe, "sandbox-exec-helper");
}

/* The pids (host namespace) of the sandbox's processes: its pid 1 first,
 * then every descendant, parents before children. */
static GArray *
sandbox_pids (LocalConfig *config)
{
  GArray *pids = g_array_new (FALSE, FALSE, sizeof (gint64));
  g_autoptr(GArray) all = g_array_new (FALSE, FALSE, sizeof (gint64));
  g_autoptr(GArray) parents = g_array_new (FALSE, FALSE, sizeof (gint64));
  g_autoptr(GHashTable) member = g_hash_table_new (NULL, NULL);
  DIR *proc;
  struct dirent *entry;
  gboolean grew = TRUE;

  if (!init_alive (config))
    return pids;
  g_array_append_val (pids, config->init_pid);
  g_hash_table_add (member, GSIZE_TO_POINTER ((gsize) config->init_pid));

  proc = opendir ("/proc");
  if (proc == NULL)
    return pids;
  while ((entry = readdir (proc)) != NULL)
    {
      gint64 pid, ppid;

      if (!g_ascii_isdigit (entry->d_name[0]))
        continue;
      pid = g_ascii_strtoll (entry->d_name, NULL, 10);
      if (read_stat (pid, NULL, &ppid, NULL, NULL))
        {
          g_array_append_val (all, pid);
          g_array_append_val (parents, ppid);
        }
    }
  closedir (proc);

  /* Descendants, one generation per round. */
  while (grew)
    {
      grew = FALSE;
      for (guint i = 0; i < all->len; i++)
        {
          gint64 pid = g_array_index (all, gint64, i);
          gint64 ppid = g_array_index (parents, gint64, i);

          if (g_hash_table_contains (member, GSIZE_TO_POINTER ((gsize) pid)) ||
              !g_hash_table_contains (member, GSIZE_TO_POINTER ((gsize) ppid)))
            continue;
          g_hash_table_add (member, GSIZE_TO_POINTER ((gsize) pid));
          g_array_append_val (pids, pid);
          grew = TRUE;
        }
    }
  return pids;
}

static gboolean
write_file (const char  *dir,
            const char  *name,
            const char  *value,
            GError     **error)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);

  return g_file_set_contents_full (path, value, -1, G_FILE_SET_CONTENTS_NONE, 0644, error);
}

static gboolean
cgroup_freeze (LocalConfig  *config,
               gboolean      freeze,
               GError      **error)
{
  g_autofree char *freeze_path = g_build_filename (config->cgroup, "cgroup.freeze", NULL);
  g_autofree char *events = g_build_filename (config->cgroup, "cgroup.events", NULL);
  const char *want = freeze ? "frozen 1" : "frozen 0";
  FILE *f;

  f = fopen (freeze_path, "we");
  if (f == NULL || fputs (freeze ? "1\n" : "0\n", f) < 0 || fclose (f) != 0)
    {
      int errsv = errno;

      if (freeze)
        g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_FAILED,
                     _("Cannot freeze the cgroup %s: %s. Unset SANDBOX_CGROUP_PARENT for "
                       "sandboxes that are paused with signals."), config->cgroup, g_strerror (errsv));
      else
        g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_FAILED,
                     _("Cannot thaw the cgroup %s: %s. Write 0 to its cgroup.freeze, or "
                       "destroy the sandbox."), config->cgroup, g_strerror (errsv));
      return FALSE;
    }
  for (int i = 0; i < 5000; i++)
    {
      g_autofree char *text = NULL;

      if (g_file_get_contents (events, &text, NULL, NULL) && strstr (text, want) != NULL)
        return TRUE;
      g_usleep (1000);
    }
  return TRUE;
}

/* The sandbox's pid namespace, as /proc/PID/ns/pid of its pid 1 shows it;
 * FALSE when it cannot be read. */
static gboolean
sandbox_pid_ns (LocalConfig *config,
                struct stat *ns)
{
  g_autofree char *path = g_strdup_printf ("/proc/%" G_GINT64_FORMAT "/ns/pid", config->init_pid);

  return stat (path, ns) == 0;
}

/* Sends SIG to PID only if it is a process of the sandbox's pid namespace
 * NS: the pid was found by a scan, and a process of the sandbox that ended
 * since may have left it to a process of the host. A pidfd pins the
 * process that is checked; one that has ended is not signalled. */
static void
signal_member (gint64             pid,
               int                sig,
               const struct stat *ns)
{
#if defined(SYS_pidfd_open) && defined(SYS_pidfd_send_signal)
  g_autofree char *path = g_strdup_printf ("/proc/%" G_GINT64_FORMAT "/ns/pid", pid);
  struct stat st;
  int pidfd = (int) syscall (SYS_pidfd_open, (pid_t) pid, 0);

  if (pidfd < 0 && errno != ENOSYS)
    return;   /* gone */
  if (pidfd >= 0)
    {
      if (ns != NULL && stat (path, &st) == 0 && st.st_dev == ns->st_dev && st.st_ino == ns->st_ino)
        syscall (SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
      close (pidfd);
      return;
    }
#endif
  kill ((pid_t) pid, sig);
}

/* Whether PID waits in a call that the sandbox's pid 1 handles (seccomp
 * user notification, "Signals during a blocking call" in
 * sandbox-exec-helper.c): once pid 1 has the call, only its answer or a
 * kill ends the wait, so a SIGSTOP stays pending until then; with pid 1
 * and its workers stopped, the process is held there all the same. */
static gboolean
waits_on_pid1 (gint64 pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%" G_GINT64_FORMAT "/wchan", pid);
  g_autofree char *wchan = NULL;

  return g_file_get_contents (path, &wchan, NULL, NULL) &&
         g_str_has_prefix (wchan, "seccomp_do_user_notification");
}

/* SIGSTOPs every process until a scan finds none that is not stopped
 * (or held in a call of pid 1's, the others stopped). */
static void
stop_all (LocalConfig *config)
{
  struct stat ns_st;
  const struct stat *ns = sandbox_pid_ns (config, &ns_st) ? &ns_st : NULL;

  for (int round = 0; round < 1000; round++)
    {
      g_autoptr(GArray) pids = sandbox_pids (config);
      gboolean all_stopped = TRUE;

      for (guint i = 0; i < pids->len; i++)
        {
          gint64 pid = g_array_index (pids, gint64, i);
          char state = 0;

          if (!read_stat (pid, &state, NULL, NULL, NULL))
            continue;
          if (state == 'T' || state == 't' || state == 'Z' || state == 'X')
            continue;
          signal_member (pid, SIGSTOP, ns);
          if (pid != config->init_pid && waits_on_pid1 (pid))
            continue;
          all_stopped = FALSE;
        }
      if (all_stopped)
        return;
      g_usleep (1000);
    }
}

static void
continue_all (LocalConfig *config)
{
  g_autoptr(GArray) pids = sandbox_pids (config);
  struct stat ns_st;
  const struct stat *ns = sandbox_pid_ns (config, &ns_st) ? &ns_st : NULL;

  /* Children first, pid 1 last: it starts new processes again only when
   * the ones it has run. */
  for (guint i = pids->len; i > 0; i--)
    signal_member (g_array_index (pids, gint64, i - 1), SIGCONT, ns);
}

gboolean
_local_pause (LocalConfig  *config,
              GError      **error)
{
  g_autofree char *marker = paused_path (config);

  if (!init_alive (config))
    {
      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_UNAVAILABLE,
                   _("The local sandbox %s is not running: there is nothing to pause. "
                     "Destroy it and create a new one."), config->id);
      return FALSE;
    }
  /* The marker first: from now on no new command starts. */
  if (!write_file (config->dir, PAUSED_FILE, "", error))
    return FALSE;
  if (config->cgroup != NULL)
    {
      if (!cgroup_freeze (config, TRUE, error))
        {
          g_unlink (marker);
          return FALSE;
        }
      return TRUE;
    }
  stop_all (config);
  return TRUE;
}

gboolean
_local_resume (LocalConfig  *config,
               GError      **error)
{
  g_autofree char *marker = paused_path (config);

  /* A sandbox that runs is left alone: a process its user stopped stays
   * stopped. */
  if (!_local_is_paused (config))
    return TRUE;
  if (config->cgroup != NULL)
    {
      if (!cgroup_freeze (config, FALSE, error))
        return FALSE;
    }
  else
    continue_all (config);
  if (g_unlink (marker) != 0 && errno != ENOENT)
    {
      int errsv = errno;

      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_FAILED,
                   _("Cannot remove %s: %s. Remove it by hand to let the sandbox run commands again."),
                   marker, g_strerror (errsv));
      return FALSE;
    }
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* metrics                                                             */


static guint64
meminfo_total (void)
{
  g_autofree char *text = NULL;
  const char *line;

  if (!g_file_get_contents ("/proc/meminfo", &text, NULL, NULL) ||
      (line = strstr (text, "MemTotal:")) == NULL)
    return 0;
  return g_ascii_strtoull (line + strlen ("MemTotal:"), NULL, 10) * 1024;
}

static guint64
read_u64_file (const char *dir,
               const char *name)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  g_autofree char *text = NULL;

  if (!g_file_get_contents (path, &text, NULL, NULL) || !g_ascii_isdigit (text[0]))
    return 0;
  return g_ascii_strtoull (text, NULL, 10);
}

SandboxMetrics *
_local_metrics (LocalConfig  *config,
                GError      **error)
{
  g_autoptr(GArray) pids = NULL;
  long ticks_per_s = sysconf (_SC_CLK_TCK);
  long page = sysconf (_SC_PAGESIZE);
  guint64 ticks = 0, rss = 0, disk_used, disk_total = 0, memory_total, own_total = 0;
  guint cpus = g_get_num_processors ();
  struct statvfs vfs;

  if (!init_alive (config))
    {
      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_UNAVAILABLE,
                   _("The local sandbox %s is not running: it has no metrics. "
                     "Destroy it and create a new one."), config->id);
      return NULL;
    }
  pids = sandbox_pids (config);
  for (guint i = 0; i < pids->len; i++)
    {
      guint64 t = 0, r = 0;

      if (read_stat (g_array_index (pids, gint64, i), NULL, NULL, &t, &r))
        {
          guint64 exact;

          ticks += t;
          rss += read_rss (g_array_index (pids, gint64, i), &exact) ? exact : r * (guint64) page;
        }
    }
  if (config->cgroup != NULL)
    {
      guint64 current = read_u64_file (config->cgroup, "memory.current");

      if (current > 0)
        rss = current;
    }

  /* Not nftw(): the sandbox's directories may be nested deeper than a
   * recursive walk survives. */
  disk_used = _local_tree_size (config->dir);
  /* And what its own tmpfs mounts hold, where it has them (then the
   * directories above are empty mount points), of what they can hold. */
  disk_used += _local_own_tmpfs_used (config, &own_total);
  if (own_total > 0)
    disk_total = own_total;
  else if (config->disk_mb > 0)
    disk_total = (guint64) config->disk_mb * 1024 * 1024;
  else if (statvfs (config->dir, &vfs) == 0)
    disk_total = (guint64) vfs.f_blocks * vfs.f_frsize;

  memory_total = config->memory_mb > 0 ? (guint64) config->memory_mb * 1024 * 1024 : meminfo_total ();
  if (config->cpu > 0 && config->cpu < cpus)
    cpus = MAX (1, (guint) (config->cpu + 0.999));

  return g_object_new (SANDBOX_TYPE_METRICS,
                       "cpu-seconds", ticks_per_s > 0 ? (double) ticks / ticks_per_s : -1.0,
                       "cpu-count", cpus,
                       "memory-used", rss,
                       "memory-total", memory_total,
                       "disk-used", disk_used,
                       "disk-total", disk_total,
                       NULL);
}
