/* sandbox-exec-helper - the process that runs commands inside a local sandbox
 *
 * Usage: sandbox-exec-helper --server LISTEN-FD READY-FD TOKEN-FD WATCH-FD LEASE-FD EXPIRES
 *
 * bwrap starts it once per sandbox, as the sandbox's pid 1 (--as-pid-1), so
 * that every command of the sandbox runs in the same namespaces. It reaps
 * every process of the sandbox. It reads the sandbox's secret from
 * TOKEN-FD, and writes one byte to READY-FD once it accepts connections on
 * LISTEN-FD (a listening UNIX socket made by the library before bwrap
 * started). It ends the sandbox (exits, which kills everything in its pid
 * namespace) at EXPIRES (unix seconds, 0 for never), when WATCH-FD (an
 * inotify descriptor watching the instance directory, or -1) reports the
 * directory removed, or when LEASE-FD (the read end of a pipe whose write
 * end the sandbox's owner holds, or -1) reaches end-of-file: the owner died.
 *
 * It keeps no descriptor of the host's file systems (the library hands it
 * only a socket, pipes and the inotify descriptor) and is not dumpable, so
 * that the commands, which run as the same user, can neither trace it nor
 * reach its descriptors through /proc/1.
 *
 * The wire protocol is in sandbox-local-wire.h. Each connection is served
 * by a forked child: one command, or the file service (file operations
 * done inside the sandbox for uploads and downloads). The command runs in
 * a new session (so its own process group). When the client shuts its side
 * of the connection down before the status is sent (a timeout, a
 * cancellation, or the client exiting), the command's process group is
 * killed, and the status is still sent. Processes the command leaves behind
 * in other process groups keep running until the sandbox ends.
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
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sandbox-local-wire.h"


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
static char token[SBX_TOKEN_HEX];

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

static void close_others (const int *keep,
                          int        n_keep);

/* Whether HEADER carries this sandbox's secret (compared in constant time). */
static int
token_ok (const char *header)
{
  unsigned char diff = 0;

  for (size_t i = 0; i < SBX_TOKEN_HEX; i++)
    diff |= (unsigned char) (header[SBX_MAGIC_LEN + 4 + i] ^ token[i]);
  return diff == 0;
}

/* Sends the int32 ERR, with FD attached when it is not -1. */
static void
file_reply (int conn,
            int32_t err,
            int fd)
{
  union { char buf[CMSG_SPACE (sizeof (int))]; struct cmsghdr align; } control;
  struct iovec iov = { &err, sizeof err };
  struct msghdr msg = { 0 };
  ssize_t n;

  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (fd >= 0)
    {
      struct cmsghdr *cmsg;

      memset (&control, 0, sizeof control);
      msg.msg_control = control.buf;
      msg.msg_controllen = sizeof control.buf;
      cmsg = CMSG_FIRSTHDR (&msg);
      cmsg->cmsg_level = SOL_SOCKET;
      cmsg->cmsg_type = SCM_RIGHTS;
      cmsg->cmsg_len = CMSG_LEN (sizeof (int));
      memcpy (CMSG_DATA (cmsg), &fd, sizeof fd);
    }
  do
    n = sendmsg (conn, &msg, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n != (ssize_t) sizeof err)
    _exit (0);
}

/* In the forked child: the file service. Every path is resolved here,
 * inside the sandbox's mount namespace and with the sandbox user's rights,
 * so a link the sandbox planted leads only where the sandbox itself could
 * go; the client only reads and writes the descriptors it gets. */
static void __attribute__((noreturn))
serve_files (int conn)
{
  static char path[SBX_PATH_MAX + 1], target[SBX_PATH_MAX + 1];

  umask (022);
  for (;;)
    {
      SbxFileRequest req;
      int fd = -1;
      int32_t err = 0;

      if (read_all (conn, (char *) &req, sizeof req) < 0)
        _exit (0);
      if (req.path_len == 0 || req.path_len > SBX_PATH_MAX || req.target_len > SBX_PATH_MAX ||
          read_all (conn, path, req.path_len) < 0 || read_all (conn, target, req.target_len) < 0)
        _exit (1);
      path[req.path_len] = '\0';
      target[req.target_len] = '\0';
      if (memchr (path, '\0', req.path_len) != NULL || memchr (target, '\0', req.target_len) != NULL)
        err = EINVAL;
      else
        switch (req.op)
          {
          case SBX_FILE_OPEN:
            fd = open (path, (int) req.flags | O_CLOEXEC | O_NOCTTY, (mode_t) (req.mode & 07777));
            break;
          case SBX_FILE_MKDIR:
            err = mkdir (path, (mode_t) (req.mode & 07777));
            break;
          case SBX_FILE_SYMLINK:
            err = symlink (target, path);
            break;
          case SBX_FILE_UNLINK:
            err = unlink (path);
            break;
          default:
            errno = EINVAL;
            err = -1;
            break;
          }
      if (err < 0 || (req.op == SBX_FILE_OPEN && fd < 0))
        err = errno;
      file_reply (conn, err, fd);
      if (fd >= 0)
        close (fd);
    }
}

/* In the forked child: read the request, then become the command. */
static void __attribute__((noreturn))
run_command (int conn)
{
  char header[SBX_HEADER_LEN];
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
  if (n != (ssize_t) sizeof header || !token_ok (header))
    _exit (127);   /* not our client: no answer */
  for (cmsg = CMSG_FIRSTHDR (&msg); cmsg != NULL; cmsg = CMSG_NXTHDR (&msg, cmsg))
    if (cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS &&
        cmsg->cmsg_len == CMSG_LEN (3 * sizeof (int)))
      memcpy (fds, CMSG_DATA (cmsg), sizeof fds);
  {
    /* The server's other descriptors (other clients' connections among
     * them, whose end-of-file tells those clients their command ended)
     * are not this child's to keep. */
    int keep[4] = { conn, fds[0], fds[1], fds[2] };

    for (int i = 0; i < 4; i++)
      for (int j = i + 1; j < 4; j++)
        if (keep[j] < keep[i])
          {
            int t = keep[i];
            keep[i] = keep[j];
            keep[j] = t;
          }
    close_others (keep, 4);
  }
  if (memcmp (header, SBX_MAGIC_END, SBX_MAGIC_LEN) == 0)
    {
      /* pid 1 takes signals from its namespace only where it handles them. */
      kill (1, SIGUSR1);
      pause ();
      _exit (0);
    }
  if (memcmp (header, SBX_MAGIC_FILES, SBX_MAGIC_LEN) == 0)
    serve_files (conn);
  if (memcmp (header, SBX_MAGIC_EXEC, SBX_MAGIC_LEN) != 0)
    {
      report (conn, SBX_REPLY_ERROR " request", EPROTO);
      _exit (127);
    }
  memcpy (&len, header + SBX_MAGIC_LEN, sizeof len);
  if (fds[0] < 0 || len > SBX_REQUEST_MAX || (payload = malloc ((size_t) len + 1)) == NULL ||
      read_all (conn, payload, len) < 0)
    {
      report (conn, SBX_REPLY_ERROR " request", EPROTO);
      _exit (127);
    }
  payload[len] = '\0';
  p = payload;
  cwd = next_string (&p, payload + len);
  argv = read_vector (&p, payload + len);
  envp = read_vector (&p, payload + len);
  if (cwd == NULL || argv == NULL || argv[0] == NULL || envp == NULL)
    {
      report (conn, SBX_REPLY_ERROR " request", EPROTO);
      _exit (127);
    }

  for (int i = 0; i < 3; i++)
    if (dup2 (fds[i], i) < 0)
      {
        report (conn, SBX_REPLY_ERROR " request", errno);
        _exit (127);
      }
  for (int i = 0; i < 3; i++)
    close (fds[i]);

  if (chdir (cwd) != 0)
    {
      report (conn, SBX_REPLY_ERROR " chdir", errno);
      _exit (127);
    }
  environ = envp;
  execvp (argv[0], argv);
  report (conn, SBX_REPLY_ERROR " exec", errno);
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
          report (jobs[i].conn, SBX_REPLY_STATUS, wstatus);
          close (jobs[i].conn);
          jobs[i] = jobs[--n_jobs];
          break;
        }
}

static void
accept_one (int listen_fd)
{
  int conn = accept4 (listen_fd, NULL, NULL, SOCK_CLOEXEC);
  char header[SBX_HEADER_LEN];
  struct ucred peer;
  socklen_t peer_len = sizeof peer;
  ssize_t n;
  pid_t pid;

  if (conn < 0)
    return;
  /* Only the host side may connect: a process of this sandbox has a pid in
   * its namespace (one outside it has none here), and one of another
   * sandbox does not know the secret. */
  if (getsockopt (conn, SOL_SOCKET, SO_PEERCRED, &peer, &peer_len) != 0 || peer.pid != 0)
    {
      close (conn);
      return;
    }
  n = recv (conn, header, sizeof header, MSG_PEEK | MSG_DONTWAIT);
  if (n == 0)
    {
      /* Closed at once: someone checking that the sandbox runs. */
      close (conn);
      return;
    }
  /* An end request that has already arrived is served here, without a
   * fork (the child would only signal us). */
  if (n == (ssize_t) sizeof header && memcmp (header, SBX_MAGIC_END, SBX_MAGIC_LEN) == 0 &&
      token_ok (header))
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
          report (conn, SBX_REPLY_ERROR " request", ENOMEM);
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
      report (conn, SBX_REPLY_ERROR " exec", errno);
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

/* Reads the sandbox's secret from FD, then closes it. */
static int
read_token (int fd)
{
  int ok = read_all (fd, token, sizeof token) == 0;

  close (fd);
  return ok;
}

static int
serve (int       listen_fd,
       int       ready_fd,
       int       token_fd,
       int       watch,
       int       lease_fd,
       long long expires)
{
  struct sigaction sa = { 0 };
  sigset_t block, none;
  struct pollfd *pfds = NULL;
  size_t pfds_size = 0;
  int keep[4] = { listen_fd, ready_fd, watch, lease_fd };
  int n_keep = 0;

  /* Not dumpable: the commands run as the same user, and must neither
   * trace this process nor open its descriptors or memory through /proc.
   * (Kept across fork, so the children that serve a connection inherit
   * it; a command's exec resets it for the command alone.) */
  prctl (PR_SET_DUMPABLE, 0, 0, 0, 0);
  if (!read_token (token_fd))
    return 125;

  for (int i = 0; i < 4; i++)
    if (keep[i] >= 3)
      keep[n_keep++] = keep[i];
  for (int i = 0; i < n_keep; i++)
    for (int j = i + 1; j < n_keep; j++)
      if (keep[j] < keep[i])
        {
          int t = keep[i];
          keep[i] = keep[j];
          keep[j] = t;
        }
  /* Whatever else bwrap or the library passed on goes. */
  close_others (keep, n_keep);
  fcntl (listen_fd, F_SETFD, FD_CLOEXEC);
  if (lease_fd >= 0)
    fcntl (lease_fd, F_SETFD, FD_CLOEXEC);
  if (watch >= 0)
    {
      fcntl (watch, F_SETFD, FD_CLOEXEC);
      fcntl (watch, F_SETFL, O_NONBLOCK);
      watch_fd = watch;
    }

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

      if (pfds_size < n_jobs + 3)
        {
          pfds_size = 2 * (n_jobs + 3);
          free (pfds);
          pfds = calloc (pfds_size, sizeof (struct pollfd));
          if (pfds == NULL)
            return 125;
        }
      /* A negative descriptor is skipped by ppoll. */
      pfds[n++] = (struct pollfd) { listen_fd, POLLIN, 0 };
      pfds[n++] = (struct pollfd) { watch_fd, POLLIN, 0 };
      pfds[n++] = (struct pollfd) { lease_fd, POLLIN, 0 };
      for (size_t i = 0; i < n_jobs; i++)
        if (!jobs[i].killed)
          pfds[n++] = (struct pollfd) { jobs[i].conn, POLLRDHUP, 0 };

      if (ppoll (pfds, n, tsp, &none) < 0 && errno != EINTR)
        return 125;

      if (ending)
        return end_sandbox ();
      if ((pfds[1].revents & POLLIN) && directory_removed ())
        return end_sandbox ();
      /* The owner's end of the lease closed (it died, or let go) or wrote:
       * either way the sandbox ends with it. */
      if (pfds[2].revents & (POLLIN | POLLHUP | POLLERR))
        return end_sandbox ();

      reap ();

      for (size_t k = 3; k < n; k++)
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
  if (argc == 8 && strcmp (argv[1], "--server") == 0)
    return serve (atoi (argv[2]), atoi (argv[3]), atoi (argv[4]), atoi (argv[5]),
                  atoi (argv[6]), atoll (argv[7]));

  fprintf (stderr, "usage: %s --server LISTEN-FD READY-FD TOKEN-FD WATCH-FD LEASE-FD EXPIRES\n",
           argv[0]);
  return 125;
}
