/* libsandbox - local backend: starting bwrap, and reaping it
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

/*
 * A sandbox's bwrap is started the way posix_spawn() starts a program: a
 * child that shares this process's memory (CLONE_VM | CLONE_VFORK) runs the
 * caller's setup (session, keyring, rlimits, cgroup, CPU affinity), puts
 * the descriptors in their places and execs bwrap. GSubprocess forks (a
 * copy of every page table, torn down again by the exec) as soon as a
 * child_setup is given, which posix_spawn() has no way to express: about
 * a quarter of a millisecond more before bwrap runs, for every sandbox.
 *
 * bwrap is this process's child, reaped by one thread for the whole
 * process (GSubprocess reaps in GLib's worker thread, which is private):
 * it waits on a pidfd per child, so no zombie is left whatever the
 * application does with its main contexts. Without pidfds (Linux < 5.3) a
 * thread per child waits for it.
 */

#include "config.h"

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gi18n-lib.h>

#include "sandbox-local-private.h"
#include "sandbox-private.h"

#define SPAWN_STACK_SIZE (64 * 1024)

typedef struct
{
  const char * const *argv;
  const int          *fds;      /* fds[t]: what the child gets as descriptor t, or -1 */
  int                 n_fds;
  LocalSpawnSetup     setup;
  gpointer            setup_data;
  int                 err_fd;   /* close-on-exec: the exec's errno, if it fails */
  int                 max_fd;   /* without close_range: close up to here */
  sigset_t            mask;     /* the caller's signal mask, for the exec */
} SpawnArgs;

static void
report_errno (int fd)
{
  int errsv = errno;

  while (write (fd, &errsv, sizeof errsv) < 0 && errno == EINTR)
    ;
  _exit (127);
}

static void
close_from (int from,
            int to,
            int max_fd)
{
  if (from > to)
    return;
#ifdef SYS_close_range
  if (syscall (SYS_close_range, (unsigned int) from, (unsigned int) to, 0) == 0)
    return;
#endif
  for (int fd = from; fd <= to && fd < max_fd; fd++)
    close (fd);
}

/* In the child, which shares the caller's memory until its exec: only
 * system calls, nothing that allocates or takes a lock. */
static int
spawn_child (void *user_data)
{
  SpawnArgs *args = user_data;
  int moved[LOCAL_SPAWN_MAX_FDS];
  char *no_env[] = { NULL };
  int err_fd;

  /* The caller's signal handlers are not this child's to run: reset before
   * signals are let in again (an exec resets them too, but a signal could
   * come before it). Nor are the signals it ignores, which an exec keeps:
   * a caller ignoring SIGTERM or SIGALRM (`nohup`, a background job of a
   * shell, Python's SIGXFSZ) passed that on to pid 1 and every command. */
  for (int sig = 1; sig < NSIG; sig++)
    {
      struct sigaction sa;

      if (sig == SIGKILL || sig == SIGSTOP)
        continue;
      if (sigaction (sig, NULL, &sa) != 0)
        {
          /* The C library's own (32 and 33 with glibc), which its
           * sigaction() refuses to name: the kernel's call resets them. */
          struct { void *handler; unsigned long flags; void *restorer; uint64_t mask; } dfl = { 0 };

          dfl.handler = (void *) SIG_DFL;
          syscall (SYS_rt_sigaction, sig, &dfl, NULL, sizeof dfl.mask);
          continue;
        }
      if (sa.sa_handler != SIG_DFL)
        {
          sa.sa_handler = SIG_DFL;
          sa.sa_flags = 0;
          sigaction (sig, &sa, NULL);
        }
    }

  /* Above every descriptor the child is given, so that none is replaced
   * while they are put in place. */
  err_fd = fcntl (args->err_fd, F_DUPFD_CLOEXEC, args->n_fds);
  if (err_fd < 0)
    _exit (127);
  for (int t = 0; t < args->n_fds; t++)
    if ((moved[t] = args->fds[t] >= 0 ? fcntl (args->fds[t], F_DUPFD_CLOEXEC, args->n_fds) : -1) < 0 &&
        args->fds[t] >= 0)
      report_errno (err_fd);

  if (args->setup != NULL)
    args->setup (args->setup_data);
  if (chdir ("/") != 0)
    report_errno (err_fd);

  for (int t = 0; t < args->n_fds; t++)
    {
      if (moved[t] < 0)
        close (t);
      else if (dup2 (moved[t], t) < 0)   /* not close-on-exec */
        report_errno (err_fd);
    }
  /* Everything else, the caller's own descriptors among them, is closed,
   * as GSubprocess does. */
  close_from (args->n_fds, err_fd - 1, args->max_fd);
  close_from (err_fd + 1, INT_MAX, args->max_fd);

  sigprocmask (SIG_SETMASK, &args->mask, NULL);
  execve (args->argv[0], (char * const *) args->argv, no_env);
  report_errno (err_fd);
  return 127;
}

/* ------------------------------------------------------------------ */
/* The reaper                                                          */

typedef struct
{
  pid_t pid;
  int   pidfd;
} Child;

static GMutex  reaper_lock;
static GArray *reaper_children;   /* Child */
static int     reaper_wake = -1;  /* eventfd: the list changed */
/* In a forked child: its parent's list, reachable and not freed (see
 * reaper_forked). */
static GArray *reaper_parents_children;

/* Reaps CHILD if it has ended: its pid, 0, or -1 with errno set. Through
 * its pidfd where the kernel can (Linux 5.4): a child that the application
 * reaped itself (waitpid (-1), a SIGCHLD handler) leaves its pid free, and
 * waitpid() by that pid could take the status of the application's own
 * next child, made with it meanwhile. */
static pid_t
reap_pidfd (const Child *child)
{
  siginfo_t info;

  /* P_PIDFD is 3; an enum, not a macro, in some C libraries' headers. */
  memset (&info, 0, sizeof info);
  if (syscall (SYS_waitid, 3, child->pidfd, &info, WEXITED | WNOHANG, NULL) == 0)
    return info.si_pid == child->pid ? child->pid : 0;
  if (errno != EINVAL)
    return -1;
  return waitpid (child->pid, NULL, WNOHANG);
}

static gpointer
reaper_thread (gpointer data)
{
  g_autofree struct pollfd *pfds = NULL;
  guint size = 0;

  for (;;)
    {
      guint n;

      g_mutex_lock (&reaper_lock);
      n = reaper_children->len;
      if (n + 1 > size)
        {
          size = MAX (2 * size, n + 1);
          pfds = g_renew (struct pollfd, pfds, size);
        }
      pfds[0] = (struct pollfd) { reaper_wake, POLLIN, 0 };
      for (guint i = 0; i < n; i++)
        pfds[i + 1] = (struct pollfd) { g_array_index (reaper_children, Child, i).pidfd, POLLIN, 0 };
      g_mutex_unlock (&reaper_lock);

      if (poll (pfds, n + 1, -1) < 0)
        continue;
      if (pfds[0].revents & POLLIN)
        {
          uint64_t value;

          while (read (reaper_wake, &value, sizeof value) < 0 && errno == EINTR)
            ;
        }

      /* Only this thread removes children, and new ones are appended: the
       * first N are still those polled. Walked downwards, an entry moved
       * into a freed place was either walked already or not polled. */
      g_mutex_lock (&reaper_lock);
      for (guint i = n; i-- > 0;)
        {
          Child *child = &g_array_index (reaper_children, Child, i);
          pid_t got;

          if (pfds[i + 1].revents == 0)
            continue;
          got = reap_pidfd (child);
          /* Reaped; or reaped by someone else (ECHILD): gone either way. */
          if (got == child->pid || (got < 0 && errno == ECHILD) || (pfds[i + 1].revents & POLLNVAL))
            {
              close (child->pidfd);
              g_array_remove_index_fast (reaper_children, i);
            }
        }
      g_mutex_unlock (&reaper_lock);
    }
  return NULL;
}

static gpointer
wait_one_thread (gpointer data)
{
  pid_t pid = GPOINTER_TO_INT (data);

  while (waitpid (pid, NULL, 0) < 0 && errno == EINTR)
    ;
  return NULL;
}

/* A child of fork() has none of its parent's threads: it starts its own
 * reaper for the sandboxes it makes. (The lock may have been held by the
 * parent's reaper at the fork.) System calls only: this runs in every
 * child the application forks (g_spawn, subprocess), where another
 * thread may have held an allocator's lock at the fork; freeing the list
 * deadlocked such a child under AddressSanitizer. Its memory, a copy of
 * the parent's, is left to the child's exit or exec. */
static void
reaper_forked (void)
{
  g_mutex_init (&reaper_lock);
  if (reaper_wake >= 0)
    close (reaper_wake);
  reaper_wake = -1;
  if (reaper_children != NULL)
    {
      for (guint i = 0; i < reaper_children->len; i++)
        close (g_array_index (reaper_children, Child, i).pidfd);
      reaper_parents_children = reaper_children;
      reaper_children = NULL;
    }
}

/* PID, a child of this process, is reaped when it ends. */
static void
reap_later (pid_t pid)
{
  int pidfd = -1;
  gboolean start = FALSE;

#ifdef SYS_pidfd_open
  pidfd = (int) syscall (SYS_pidfd_open, pid, 0);
#endif
  g_mutex_lock (&reaper_lock);
  if (pidfd >= 0 && reaper_wake < 0)
    {
      static gsize at_fork = 0;

      if (g_once_init_enter (&at_fork))
        {
          pthread_atfork (NULL, NULL, reaper_forked);
          g_once_init_leave (&at_fork, 1);
        }
      reaper_wake = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
      if (reaper_wake >= 0)
        {
          reaper_children = g_array_new (FALSE, FALSE, sizeof (Child));
          start = TRUE;
        }
    }
  if (pidfd >= 0 && reaper_wake >= 0)
    {
      Child child = { pid, pidfd };
      uint64_t one = 1;

      g_array_append_val (reaper_children, child);
      if (start)
        g_thread_unref (g_thread_new ("sandbox-reaper", reaper_thread, NULL));
      else if (write (reaper_wake, &one, sizeof one) < 0)
        {
          /* The counter is full: the thread has a wake-up pending anyway. */
        }
      g_mutex_unlock (&reaper_lock);
      return;
    }
  g_mutex_unlock (&reaper_lock);
  if (pidfd >= 0)
    close (pidfd);
  g_thread_unref (g_thread_new ("sandbox-reaper", wait_one_thread, GINT_TO_POINTER (pid)));
}

/**
 * _local_spawn:
 * @argv: the program (an absolute path) and its arguments
 * @fds: (array length=n_fds): @fds[t] is given to the child as its
 *   descriptor t (-1: t is closed); the caller keeps its own copies
 * @n_fds: at most %LOCAL_SPAWN_MAX_FDS
 * @setup: (nullable): run in the child before its descriptors are put in
 *   place, as a GSpawnChildSetupFunc: system calls only
 * @setup_data: for @setup
 * @pidfd: (out): a pidfd of the child, which stays valid after it is
 *   reaped (signals it, never a process that reused its pid), or -1 where
 *   the kernel has none
 * @error: return location for a #GError
 *
 * Starts @argv with an empty environment in `/`, every other descriptor
 * closed, and returns once it has been exec'd; it is reaped when it ends.
 *
 * Returns: its pid, or -1 with @error set
 */
pid_t
_local_spawn (const char * const  *argv,
              const int           *fds,
              int                  n_fds,
              LocalSpawnSetup      setup,
              gpointer             setup_data,
              int                 *pidfd,
              GError             **error)
{
  SpawnArgs args = { argv, fds, n_fds, setup, setup_data, -1, 0 };
  int err_pipe[2];
  sigset_t all;
  char *stack;
  pid_t pid;
  int child_errno = 0;
  ssize_t n;

  g_return_val_if_fail (n_fds <= LOCAL_SPAWN_MAX_FDS, -1);

  *pidfd = -1;

  stack = mmap (NULL, SPAWN_STACK_SIZE, PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED || pipe2 (err_pipe, O_CLOEXEC) != 0)
    {
      int errsv = errno;

      if (stack != MAP_FAILED)
        munmap (stack, SPAWN_STACK_SIZE);
      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_FAILED,
                   _("Cannot start %s: %s"), argv[0], g_strerror (errsv));
      return -1;
    }
  args.err_fd = err_pipe[1];
  args.max_fd = (int) MIN (sysconf (_SC_OPEN_MAX), 65536);

  /* No signal handler of ours may run in the child (it shares our memory):
   * blocked until the child has reset them. */
  sigfillset (&all);
  pthread_sigmask (SIG_SETMASK, &all, &args.mask);
  pid = clone (spawn_child, stack + SPAWN_STACK_SIZE, CLONE_VM | CLONE_VFORK | SIGCHLD, &args);
  pthread_sigmask (SIG_SETMASK, &args.mask, NULL);
  munmap (stack, SPAWN_STACK_SIZE);
  close (err_pipe[1]);

  if (pid < 0)
    child_errno = errno;
  else
    {
      /* End-of-file at once: the exec closed the pipe. (Where the clone
       * does not wait for the exec, under valgrind, this does.) */
      do
        n = read (err_pipe[0], &child_errno, sizeof child_errno);
      while (n < 0 && errno == EINTR);
      if (n != (ssize_t) sizeof child_errno)
        child_errno = 0;
    }
  close (err_pipe[0]);

  if (child_errno != 0)
    {
      if (pid > 0)
        while (waitpid (pid, NULL, 0) < 0 && errno == EINTR)
          ;
      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_CONFIGURED,
                   _("Cannot start %s: %s. Set SANDBOX_BWRAP to a working bubblewrap, or "
                     "reinstall it; see docs/backends/local.md."),
                   argv[0], g_strerror (child_errno));
      return -1;
    }
  /* Before the reaper knows of it: nobody can have reaped it yet. */
#ifdef SYS_pidfd_open
  *pidfd = (int) syscall (SYS_pidfd_open, pid, 0);
  if (*pidfd >= 0)
    fcntl (*pidfd, F_SETFD, FD_CLOEXEC);
#endif
  reap_later (pid);
  return pid;
}

/* Whether the child whose pidfd this is has ended (FALSE without one). */
gboolean
_local_spawn_ended (int pidfd)
{
  struct pollfd pfd = { pidfd, POLLIN, 0 };

  return pidfd >= 0 && poll (&pfd, 1, 0) == 1 && (pfd.revents & POLLIN);
}

/* Sends SIGKILL through PIDFD (the signal reaches that process or none,
 * never one that reused its pid), or to PID when there is no pidfd. */
void
_local_spawn_kill (int   pidfd,
                   pid_t pid)
{
#ifdef SYS_pidfd_send_signal
  if (pidfd >= 0)
    {
      syscall (SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
      return;
    }
#endif
  if (pid > 0)
    kill (pid, SIGKILL);
}
