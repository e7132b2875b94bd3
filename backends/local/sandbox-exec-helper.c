/* sandbox-exec-helper - the process that runs commands inside a local sandbox
 *
 * Usage: sandbox-exec-helper --server LISTEN-FD READY-FD LOCK-FD EXPIRES
 *
 * bwrap starts it once per sandbox, as the sandbox's pid 1 (--as-pid-1), so
 * that every command of the sandbox runs in the same namespaces. It reaps
 * every process of the sandbox. It writes one byte to READY-FD once it
 * accepts connections on LISTEN-FD (a listening UNIX socket made by the
 * library before bwrap started), and keeps LOCK-FD (the instance directory,
 * flock'ed by the library) open for as long as it lives, so that anyone can
 * tell whether the sandbox still runs. At EXPIRES (unix seconds, 0 for
 * never), or when the instance directory is removed, it exits, which kills
 * everything in the sandbox's pid namespace.
 *
 * One connection is one command. The client sends
 *
 *   "SBX1" LENGTH (uint32, host order) with SCM_RIGHTS stdin, stdout, stderr
 *   LENGTH bytes: NUL-terminated strings CWD ARGC ARGV... ENVC ENV...
 *
 * (or just "SBXK" LENGTH 0: end the sandbox) and gets back, one line each:
 *
 *   error chdir|exec|request ERRNO   the command could not be started
 *   status WAIT-STATUS               the command ended (as from waitpid)
 *
 * On "SBXK" the server kills every process of the sandbox, reaps them all,
 * and exits: the connection reaches end-of-file once nothing but the
 * server's own exit is left.
 *
 * The command runs in a new session (so its own process group). When the
 * client shuts its side of the connection down before the status is sent (a
 * timeout, a cancellation, or the client exiting), the command's process
 * group is killed, and the status is still sent. Processes the command
 * leaves behind in other process groups keep running until the sandbox
 * ends.
 *
 * It is linked statically so that it runs in any image root file system.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define REQUEST_MAX (64u << 20)


typedef struct
{
  pid_t pid;
  int   conn;
  int   killed;  /* the client shut its side down: the command was killed */
} Job;

static Job *jobs;
static size_t n_jobs, jobs_size;
static volatile sig_atomic_t ending;
static int watch_fd = -1;

static void
write_all (int fd, const char *buf, size_t len)
{
  while (len > 0)
    {
      ssize_t n = send (fd, buf, len, MSG_NOSIGNAL);

      if (n < 0 && errno == ENOTSOCK)
        n = write (fd, buf, len);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return;
      buf += n;
      len -= (size_t) n;
    }
}

static void
report (int fd, const char *what, int value)
{
  char buf[64];
  int len = snprintf (buf, sizeof buf, "%s %d\n", what, value);

  write_all (fd, buf, (size_t) len);
}

static int
read_all (int fd, char *buf, size_t len)
{
  while (len > 0)
    {
      ssize_t n = read (fd, buf, len);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return -1;
      buf += n;
      len -= (size_t) n;
    }
  return 0;
}

/* Takes the next NUL-terminated string of the request. */
static char *
next_string (char **p, char *end)
{
  char *s = *p, *nul;

  if (s >= end || (nul = memchr (s, '\0', (size_t) (end - s))) == NULL)
    return NULL;
  *p = nul + 1;
  return s;
}

static char **
read_vector (char **p, char *end)
{
  char *count = next_string (p, end);
  long n;
  char **v;

  if (count == NULL || (n = strtol (count, NULL, 10)) < 0 || n > (end - *p))
    return NULL;
  v = calloc ((size_t) n + 1, sizeof (char *));
  if (v == NULL)
    return NULL;
  for (long i = 0; i < n; i++)
    if ((v[i] = next_string (p, end)) == NULL)
      return NULL;
  return v;
}

/* In the forked child: read the request, then become the command. */
static void __attribute__((noreturn))
run_command (int conn)
{
  char header[8];
  union { char buf[CMSG_SPACE (3 * sizeof (int))]; struct cmsghdr align; } control;
  struct iovec iov = { header, sizeof header };
  struct msghdr msg = { 0 };
  struct cmsghdr *cmsg;
  int fds[3] = { -1, -1, -1 };
  uint32_t len;
  char *payload, *p, *cwd, **argv, **envp;
  sigset_t none;
  ssize_t n;

  sigemptyset (&none);
  sigprocmask (SIG_SETMASK, &none, NULL);
  signal (SIGPIPE, SIG_DFL);
  signal (SIGCHLD, SIG_DFL);
  signal (SIGUSR1, SIG_DFL);
  setsid ();

  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.buf;
  msg.msg_controllen = sizeof control.buf;
  do
    n = recvmsg (conn, &msg, MSG_CMSG_CLOEXEC | MSG_WAITALL);
  while (n < 0 && errno == EINTR);
  if (n == (ssize_t) sizeof header && memcmp (header, "SBXK", 4) == 0)
    {
      /* pid 1 takes signals from its namespace only where it handles them. */
      kill (1, SIGUSR1);
      pause ();
      _exit (0);
    }
  if (n != (ssize_t) sizeof header || memcmp (header, "SBX1", 4) != 0)
    {
      report (conn, "error request", EPROTO);
      _exit (127);
    }
  for (cmsg = CMSG_FIRSTHDR (&msg); cmsg != NULL; cmsg = CMSG_NXTHDR (&msg, cmsg))
    if (cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS &&
        cmsg->cmsg_len == CMSG_LEN (3 * sizeof (int)))
      memcpy (fds, CMSG_DATA (cmsg), sizeof fds);
  memcpy (&len, header + 4, sizeof len);
  if (fds[0] < 0 || len > REQUEST_MAX || (payload = malloc ((size_t) len + 1)) == NULL ||
      read_all (conn, payload, len) < 0)
    {
      report (conn, "error request", EPROTO);
      _exit (127);
    }
  payload[len] = '\0';
  p = payload;
  cwd = next_string (&p, payload + len);
  argv = read_vector (&p, payload + len);
  envp = read_vector (&p, payload + len);
  if (cwd == NULL || argv == NULL || argv[0] == NULL || envp == NULL)
    {
      report (conn, "error request", EPROTO);
      _exit (127);
    }

  for (int i = 0; i < 3; i++)
    if (dup2 (fds[i], i) < 0)
      {
        report (conn, "error request", errno);
        _exit (127);
      }
  for (int i = 0; i < 3; i++)
    close (fds[i]);

  if (chdir (cwd) != 0)
    {
      report (conn, "error chdir", errno);
      _exit (127);
    }
  environ = envp;
  execvp (argv[0], argv);
  report (conn, "error exec", errno);
  _exit (127);
}

static void
on_sigchld (int sig)
{
  (void) sig;
}

static void
on_sigusr1 (int sig)
{
  (void) sig;
  ending = 1;
}

static void close_others (const int *keep,
                          int        n_keep);

/* Kills every other process of the pid namespace and reaps them all, then
 * closes every connection: its end-of-file tells a client that the sandbox
 * is gone. (Left to exit, the descriptors would close only after the
 * kernel has torn down the namespaces, milliseconds later.) The inotify
 * descriptor is left to exit: closing it waits for an SRCU grace period. */
static int
end_sandbox (void)
{
  int keep[1] = { watch_fd };

  kill (-1, SIGKILL);
  while (waitpid (-1, NULL, __WALL) >= 0 || errno == EINTR)
    ;
  close_others (keep, watch_fd >= 3 ? 1 : 0);
  return 0;
}

static void
reap (void)
{
  int wstatus;
  pid_t pid;

  while ((pid = waitpid (-1, &wstatus, WNOHANG)) > 0)
    for (size_t i = 0; i < n_jobs; i++)
      if (jobs[i].pid == pid)
        {
          report (jobs[i].conn, "status", wstatus);
          close (jobs[i].conn);
          jobs[i] = jobs[--n_jobs];
          break;
        }
}

static void
accept_one (int listen_fd)
{
  int conn = accept4 (listen_fd, NULL, NULL, SOCK_CLOEXEC);
  char header[8];
  pid_t pid;

  if (conn < 0)
    return;
  /* An end request that has already arrived is served here, without a
   * fork (the child would only signal us). */
  if (recv (conn, header, sizeof header, MSG_PEEK | MSG_DONTWAIT) == (ssize_t) sizeof header &&
      memcmp (header, "SBXK", 4) == 0)
    {
      ending = 1;
      return;   /* conn stays open until end_sandbox closes everything */
    }
  if (n_jobs == jobs_size)
    {
      size_t size = jobs_size ? 2 * jobs_size : 16;
      Job *more = realloc (jobs, size * sizeof (Job));

      if (more == NULL)
        {
          report (conn, "error request", ENOMEM);
          close (conn);
          return;
        }
      jobs = more;
      jobs_size = size;
    }
  pid = fork ();
  if (pid == 0)
    run_command (conn);
  if (pid < 0)
    {
      report (conn, "error exec", errno);
      close (conn);
      return;
    }
  jobs[n_jobs++] = (Job) { pid, conn, 0 };
}

/* Closes every descriptor from 3 up but the KEEP ones (bwrap's info pipe,
 * for one), which must be sorted. */
static void
close_others (const int *keep, int n_keep)
{
  unsigned int first = 3;

  for (int k = 0; k <= n_keep; k++)
    {
      unsigned int last = k < n_keep ? (unsigned int) keep[k] - 1 : ~0u;

      if (k < n_keep && keep[k] < 3)
        continue;
      if (last >= first && !(k < n_keep && (unsigned int) keep[k] < first))
        {
#ifdef SYS_close_range
          if (syscall (SYS_close_range, first, last, 0) != 0)
#endif
            for (unsigned int fd = first; fd <= last && fd < 1024; fd++)
              close ((int) fd);
        }
      if (k < n_keep)
        first = (unsigned int) keep[k] + 1;
    }
}

/* Whether the events on watch_fd say that the instance is being removed:
 * its socket or instance.json deleted. */
static int
directory_removed (void)
{
  union { char buf[4096]; struct inotify_event align; } events;
  ssize_t n = read (watch_fd, events.buf, sizeof events.buf);

  for (char *p = events.buf; n > 0 && p < events.buf + n;)
    {
      struct inotify_event *event = (struct inotify_event *) p;

      if ((event->mask & IN_DELETE_SELF) ||
          (event->len > 0 && (strcmp (event->name, "sock") == 0 ||
                              strcmp (event->name, "instance.json") == 0)))
        return 1;
      p += sizeof *event + event->len;
    }
  return 0;
}

static int
serve (int listen_fd, int ready_fd, int lock_fd, long long expires)
{
  struct sigaction sa = { 0 };
  sigset_t block, none;
  struct pollfd *pfds = NULL;
  size_t pfds_size = 0;
  int keep[3] = { listen_fd, ready_fd, lock_fd };
  char dir_path[64];

  for (int i = 0; i < 3; i++)
    for (int j = i + 1; j < 3; j++)
      if (keep[j] < keep[i])
        {
          int t = keep[i];
          keep[i] = keep[j];
          keep[j] = t;
        }
  close_others (keep, 3);
  fcntl (listen_fd, F_SETFD, FD_CLOEXEC);
  fcntl (lock_fd, F_SETFD, FD_CLOEXEC);

  sa.sa_handler = on_sigchld;
  sa.sa_flags = SA_NOCLDSTOP;
  sigaction (SIGCHLD, &sa, NULL);
  sa.sa_handler = on_sigusr1;
  sa.sa_flags = 0;
  sigaction (SIGUSR1, &sa, NULL);
  signal (SIGPIPE, SIG_IGN);
  sigemptyset (&block);
  sigaddset (&block, SIGCHLD);
  sigaddset (&block, SIGUSR1);
  sigprocmask (SIG_BLOCK, &block, NULL);
  sigemptyset (&none);

  /* Nobody could reach the sandbox once its directory is gone. */
  snprintf (dir_path, sizeof dir_path, "/proc/self/fd/%d", lock_fd);
  watch_fd = inotify_init1 (IN_CLOEXEC | IN_NONBLOCK);
  if (watch_fd >= 0 && inotify_add_watch (watch_fd, dir_path, IN_DELETE | IN_DELETE_SELF) < 0)
    {
      close (watch_fd);
      watch_fd = -1;
    }

  write_all (ready_fd, "R", 1);
  close (ready_fd);

  for (;;)
    {
      struct timespec ts, *tsp = NULL;
      size_t n = 0;

      if (expires > 0)
        {
          long long left = expires - (long long) time (NULL);

          if (left <= 0)
            return end_sandbox ();
          ts.tv_sec = (time_t) left;
          ts.tv_nsec = 0;
          tsp = &ts;
        }

      if (pfds_size < n_jobs + 2)
        {
          pfds_size = 2 * (n_jobs + 2);
          free (pfds);
          pfds = calloc (pfds_size, sizeof (struct pollfd));
          if (pfds == NULL)
            return 125;
        }
      pfds[n++] = (struct pollfd) { listen_fd, POLLIN, 0 };
      pfds[n++] = (struct pollfd) { watch_fd, POLLIN, 0 };
      for (size_t i = 0; i < n_jobs; i++)
        if (!jobs[i].killed)
          pfds[n++] = (struct pollfd) { jobs[i].conn, POLLRDHUP, 0 };

      if (ppoll (pfds, n, tsp, &none) < 0 && errno != EINTR)
        return 125;

      if (ending)
        return end_sandbox ();
      if ((pfds[1].revents & POLLIN) && directory_removed ())
        return end_sandbox ();

      reap ();

      for (size_t k = 2; k < n; k++)
        {
          if ((pfds[k].revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) == 0)
            continue;
          for (size_t i = 0; i < n_jobs; i++)
            if (jobs[i].conn == pfds[k].fd && !jobs[i].killed)
              {
                /* The client gave up: so does its command. The status
                 * follows once it is reaped. */
                kill (-jobs[i].pid, SIGKILL);
                kill (jobs[i].pid, SIGKILL);
                jobs[i].killed = 1;
                break;
              }
        }

      if (pfds[0].revents & POLLIN)
        accept_one (listen_fd);
      if (ending)
        return end_sandbox ();
    }
}

int
main (int argc, char **argv)
{
  if (argc == 6 && strcmp (argv[1], "--server") == 0)
    return serve (atoi (argv[2]), atoi (argv[3]), atoi (argv[4]), atoll (argv[5]));

  fprintf (stderr, "usage: %s --server LISTEN-FD READY-FD LOCK-FD EXPIRES\n", argv[0]);
  return 125;
}
