/* sandbox-exec-helper - the process that runs commands inside a local sandbox
 *
 * Usage: sandbox-exec-helper [--user UID GID] [--once CONN-FD] [--egress RULES] [--no-links PATH...] --server LISTEN-FD READY-FD TOKEN-FD WATCH-FD LEASE-FD EXPIRES [SOCKET-DIR...]
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
 * Every connect() of a command is made by this process on the command's
 * behalf, and one to a socket file on the host's mounts is refused (see
 * "connect() on the commands' behalf" below); SOCKET-DIRs name the mounts
 * that are the sandbox's own. With --no-links PATH (repeatable: the spec's
 * SANDBOX_MOUNT_NO_LINKS mounts), it makes the commands' symbolic links,
 * FIFOs and sockets on their behalf too, never in those mounts (see
 * "Links, FIFOs and sockets on the commands' behalf").
 *
 * The wire protocol is in sandbox-local-wire.h. Each connection is served
 * by a child of pid 1: one command, made by the command spawner in a
 * Landlock domain of the commands' own (see "The command spawner"), or the
 * file service (file operations done inside the sandbox for uploads and
 * downloads), forked by pid 1 itself. The command runs in
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
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/sched.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <linux/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sandbox-local-wire.h"


/* A connection: its header not read yet (pid JOB_HEADER), its command
 * asked of the spawner (JOB_SPAWNING, SEQ the order of the request), or a
 * process serving it (the command, or pid 1's file service). */
#define JOB_HEADER    0
#define JOB_SPAWNING (-1)

typedef struct
{
  pid_t    pid;
  int      conn;
  int      killed;  /* the client shut its side down: the command was killed */
  uint64_t seq;
} Job;

static Job *jobs;
static size_t n_jobs, jobs_size;
static uint64_t spawn_seq;      /* the next spawn request's SEQ */
static size_t n_spawning;       /* jobs in JOB_SPAWNING */
static int spawner_sock = -1;   /* pid 1's end of the spawner's socket */
static pid_t spawner = -1;
static int in_spawner;          /* this process is the spawner (or a command it made) */

/* Descriptors in flight (session sec29). The kernel counts the descriptors
 * sent with SCM_RIGHTS and not yet received per user, the host's uid
 * (user_struct: no namespace sees its own count), and refuses a send
 * (ETOOMANYREFS) once that count is above the sender's RLIMIT_NOFILE soft
 * limit (too_many_unix_fds(), unless the sender has CAP_SYS_RESOURCE or
 * CAP_SYS_ADMIN on the host). Every sandbox of a caller runs as the
 * caller's uid: a command that sent 20,000 descriptors into a socket pair
 * and never read them made every other sandbox of the same caller fail
 * to start a command ("Too many references") and every copy into or out
 * of it (the file service and pid 1 pass descriptors), until it ended.
 * A command's own sends are refused once the count is above its limit,
 * so pid 1 and the processes it forks to serve (file service, spawner,
 * connect and send workers) raise their soft limit to the hard one, and
 * every command gets a hard limit NOFILE_RESERVE below it (its soft one
 * as before, lowered to that if it was above): commands of any sandbox
 * can fill the count up to their limit (plus the 253 descriptors of the
 * sends under way), never to the limit of pid 1's own sends. A send pid 1
 * makes for a command (egress rules) is made under the command's limit. */
#define NOFILE_RESERVE 1024
static rlim_t cmd_nofile_soft = RLIM_INFINITY;   /* what a command gets */
static rlim_t cmd_nofile_hard = RLIM_INFINITY;   /* RLIM_INFINITY: unchanged */

/* In pid 1, first thing: the commands' limits from the one bwrap started
 * it with, and pid 1's soft limit raised to the hard one. */
static void
nofile_split (void)
{
  struct rlimit rl;
  rlim_t reserve;

  if (getrlimit (RLIMIT_NOFILE, &rl) != 0 || rl.rlim_max == RLIM_INFINITY || rl.rlim_max < 64)
    return;
  reserve = rl.rlim_max >= 4 * NOFILE_RESERVE ? NOFILE_RESERVE : rl.rlim_max / 4;
  cmd_nofile_hard = rl.rlim_max - reserve;
  cmd_nofile_soft = rl.rlim_cur < cmd_nofile_hard ? rl.rlim_cur : cmd_nofile_hard;
  rl.rlim_cur = rl.rlim_max;
  setrlimit (RLIMIT_NOFILE, &rl);
}

/* In a command, before its exec: its limits (nofile_split). Lowering never
 * fails; if it did, the command would not run with pid 1's. */
static int
nofile_for_command (void)
{
  struct rlimit rl = { cmd_nofile_soft, cmd_nofile_hard };

  if (cmd_nofile_hard == RLIM_INFINITY)
    return 0;
  return setrlimit (RLIMIT_NOFILE, &rl);
}

/* Around a send pid 1 (or its worker) makes for a command with SCM_RIGHTS:
 * the soft limit the kernel compares the count with, lowered to the
 * commands' hard one, then back (pid 1 may raise it again, up to its hard
 * limit). */
static void
nofile_soft (int for_command)
{
  struct rlimit rl;

  if (cmd_nofile_hard == RLIM_INFINITY || getrlimit (RLIMIT_NOFILE, &rl) != 0)
    return;
  rl.rlim_cur = for_command ? cmd_nofile_hard : rl.rlim_max;
  setrlimit (RLIMIT_NOFILE, &rl);
}

/* Processes reaped while a spawn was unanswered that were no job's: one
 * may be a command the spawner made and a sibling killed before its pid
 * came. Emptied once no spawn is pending (a pid is reused only after the
 * kernel has gone round every other). */
#define MAX_UNCLAIMED 64
static struct { pid_t pid; int status; } unclaimed[MAX_UNCLAIMED];
static size_t n_unclaimed;
static volatile sig_atomic_t ending;
static int watch_fd = -1;
static char token[SBX_TOKEN_HEX];
/* One-shot (--once CONN-FD): the connection, made by the library before
 * bwrap started, that carries the sandbox's one command; the sandbox ends
 * with it. -1 otherwise. */
static int once_conn = -1;

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

static uint64_t cookie;         /* pid 1's own connect() and sendmsg() calls carry it */

/* Sends LEN bytes of BUF in one message, with FD attached when it is not
 * -1 (SCM_RIGHTS); retried on EINTR. Returns what sendmsg() returned.
 * (With egress rules every sendmsg() of the sandbox stops in pid 1's
 * seccomp listener unless it carries the cookie, which pid 1's own must:
 * pid 1 cannot answer itself.) */
static ssize_t
send_with_fd (int         sock,
              const void *buf,
              size_t      len,
              int         fd,
              int         flags)
{
  union { char buf[CMSG_SPACE (sizeof (int))]; struct cmsghdr align; } control;
  struct iovec iov = { (void *) buf, len };
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
    n = (ssize_t) syscall (SYS_sendmsg, sock, &msg, flags, cookie, 0, 0);
  while (n < 0 && errno == EINTR);
  return n;
}

/* Sends the int32 ERR, with FD attached when it is not -1. */
static void
file_reply (int conn,
            int32_t err,
            int fd)
{
  if (send_with_fd (conn, &err, sizeof err, fd, MSG_NOSIGNAL) != (ssize_t) sizeof err)
    _exit (0);
}

/* ------------------------------------------------------------------ */
/* connect() on the commands' behalf                                   */
/*
 * A socket file accepts connections even on a read-only mount, and the
 * host's root is bound into the sandbox: a service's socket anywhere on it
 * (/var/lib/…, /srv/…) would be in reach of a user its mode lets in. So
 * every connect() of a command stops in a seccomp user notification that
 * this process (pid 1) answers. It takes a copy of the socket
 * (pidfd_getfd) and of the address (process_vm_readv), and for a path
 * opens the socket file itself (O_PATH) and refuses it (EACCES) unless it
 * lies on one of the sandbox's own mounts (ALLOWED_MNT, the mounts of the
 * paths named after --server's arguments: /tmp, the workdir, the spec's
 * mounts…), not on the host's. It then connects its copy to exactly that
 * inode (/proc/self/fd/N) and answers with the result. It never lets the
 * kernel continue the call: the address or the descriptor could change
 * between the check and the call. Sockets of other families are connected
 * the same way, with the copied address. A blocking socket is connected by
 * a forked worker, so that pid 1 never waits on a peer.
 *
 * Datagram sockets could send to a path without connect(): the sandbox's
 * seccomp filter refuses AF_UNIX datagram sockets (sandbox-local-seccomp.c).
 */

#define MAX_ALLOWED_MNT 64
static uint64_t allowed_mnt[MAX_ALLOWED_MNT];
static int n_allowed_mnt = -1;   /* -1: no policy (an image root) */

static void
allow_sockets_in (char **paths, int n)
{
  n_allowed_mnt = 0;
  for (int i = 0; i < n && n_allowed_mnt < MAX_ALLOWED_MNT; i++)
    {
      struct statx stx;

      if (syscall (SYS_statx, AT_FDCWD, paths[i], AT_NO_AUTOMOUNT, STATX_MNT_ID, &stx) == 0 &&
          (stx.stx_mask & STATX_MNT_ID))
        allowed_mnt[n_allowed_mnt++] = stx.stx_mnt_id;
    }
}

/* Whether FD (O_PATH or any) lies on one of the N mounts IDS; UNKNOWN
 * when its mount cannot be told. */
static int
mnt_in (int             fd,
        const uint64_t *ids,
        int             n,
        int             unknown)
{
  struct statx stx;

  if (syscall (SYS_statx, fd, "", AT_EMPTY_PATH | AT_NO_AUTOMOUNT, STATX_MNT_ID, &stx) != 0 ||
      !(stx.stx_mask & STATX_MNT_ID))
    return unknown;
  for (int i = 0; i < n; i++)
    if (ids[i] == stx.stx_mnt_id)
      return 1;
  return 0;
}

static int
mnt_allowed (int fd)
{
  return mnt_in (fd, allowed_mnt, n_allowed_mnt, 0);
}

static int listener = -1;       /* the seccomp listener, or -1 */

/* The spec's NO_LINKS mounts (--no-links; see "Links, FIFOs and sockets
 * on the commands' behalf"), by mount id. */
#define MAX_NOLINKS_MNT 64
static uint64_t nolinks_mnt[MAX_NOLINKS_MNT];
static int n_nolinks_mnt;
static char **nolinks_paths;
static int n_nolinks_paths;

/* ------------------------------------------------------------------ */
/* Egress rules (--egress, the spec's sandbox_spec_set_egress_rules)   */
/*
 * "+ADDR/LEN" entries allow, "-ADDR/LEN" ones deny, comma separated, as
 * the library wrote them. A destination an allow entry matches is
 * reached; else one a deny entry matches is refused (EACCES); else it is
 * reached. 0.0.0.0/0 matches every destination, IPv6 too; an IPv4-mapped
 * IPv6 address is matched as the IPv4 address it is. They are applied
 * where pid 1 already stands between a command and the network: connect()
 * (made by pid 1 on a copy of the socket and of the address, so what is
 * checked is what is connected: TCP, and datagram sockets that connect, as
 * the resolver's do), and, with rules, sendto() with a destination,
 * sendmsg() and sendmmsg(): made by pid 1 on copies of the socket and the
 * message, so what is checked is what is sent (mediate_send).
 */
#define MAX_EGRESS 256
struct egress_rule
{
  int           allow;
  int           family;   /* AF_INET or AF_INET6; AF_UNSPEC: every destination */
  unsigned char addr[16];
  int           len;      /* prefix length in bits */
};
static struct egress_rule egress[MAX_EGRESS];
static int n_egress;
static int egress_on;   /* --egress given (a sandbox with the network): rules can be set */

/* Parses SPEC into RULES; returns how many, or -1. */
static int
parse_egress (const char         *spec,
              struct egress_rule *rules)
{
  char buf[8192], *save = NULL, *item;
  int n = 0;

  if (strlen (spec) >= sizeof buf)
    return -1;
  strcpy (buf, spec);
  for (item = strtok_r (buf, ",", &save); item != NULL; item = strtok_r (NULL, ",", &save))
    {
      struct egress_rule *r;
      char *slash;

      if (n >= MAX_EGRESS || (item[0] != '+' && item[0] != '-') ||
          (slash = strchr (item, '/')) == NULL)
        return -1;
      r = &rules[n++];
      r->allow = item[0] == '+';
      *slash = '\0';
      r->len = atoi (slash + 1);
      if (inet_pton (AF_INET, item + 1, r->addr) == 1)
        r->family = r->len == 0 ? AF_UNSPEC : AF_INET;
      else if (inet_pton (AF_INET6, item + 1, r->addr) == 1)
        r->family = AF_INET6;
      else
        return -1;
      if (r->len < 0 || r->len > (r->family == AF_INET6 ? 128 : 32))
        return -1;
    }
  return n;
}

static int
prefix_matches (const unsigned char *a,
                const unsigned char *b,
                int                  bits)
{
  int whole = bits / 8, rest = bits % 8;

  if (memcmp (a, b, whole) != 0)
    return 0;
  return rest == 0 || ((a[whole] ^ b[whole]) & (0xff << (8 - rest))) == 0;
}

/* Whether the rules let a command reach ADDR (LEN bytes, as copied from
 * it), read as the kernel reads it: a sockaddr_in6 of 24 bytes (RFC 2133's,
 * without sin6_scope_id) is a destination as good as one of 28, and the
 * sendto()/sendmsg() of an IPv4 UDP socket takes an AF_UNSPEC address as
 * AF_INET (SENDING; for connect() AF_UNSPEC only disconnects). Both were
 * let through as "another family". An IP address too short to hold its
 * destination is refused (the kernel refuses it too); addresses of other
 * families are not the rules' to judge. */
static int
egress_allowed (const struct sockaddr *addr,
                socklen_t              len,
                int                    sending)
{
  static const unsigned char v4_mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
  unsigned char bytes[16];
  int family, denied = 0;

  if (n_egress == 0 || len < sizeof addr->sa_family)
    return 1;
  if (addr->sa_family == AF_INET || (sending && addr->sa_family == AF_UNSPEC))
    {
      /* A short AF_UNSPEC names no destination (an IPv6 socket's send
       * goes to its peer; an IPv4 one's fails with EINVAL). */
      if (len < sizeof (struct sockaddr_in))
        return addr->sa_family == AF_UNSPEC;
      family = AF_INET;
      memcpy (bytes, &((const struct sockaddr_in *) addr)->sin_addr, 4);
    }
  else if (addr->sa_family == AF_INET6)
    {
      const unsigned char *a6 = (const unsigned char *) &((const struct sockaddr_in6 *) addr)->sin6_addr;

      if (len < offsetof (struct sockaddr_in6, sin6_scope_id))
        return 0;
      if (memcmp (a6, v4_mapped, 12) == 0)
        {
          family = AF_INET;
          memcpy (bytes, a6 + 12, 4);
        }
      else
        {
          family = AF_INET6;
          memcpy (bytes, a6, 16);
        }
    }
  else
    return 1;
  /* The unspecified address connects to this machine, as loopback does. */
  if (family == AF_INET && memcmp (bytes, "\0\0\0\0", 4) == 0)
    memcpy (bytes, "\x7f\0\0\x01", 4);
  else if (family == AF_INET6 && memcmp (bytes, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 16) == 0)
    bytes[15] = 1;
  for (int i = 0; i < n_egress; i++)
    {
      const struct egress_rule *r = &egress[i];

      if (r->family != AF_UNSPEC && (r->family != family || !prefix_matches (bytes, r->addr, r->len)))
        continue;
      if (r->allow)
        return 1;
      denied = 1;
    }
  return !denied;
}

/* Writes into OUT (at most 32 instructions), for a filter whose
 * accumulator holds the call's number, the NO_LINKS block: symlinkat()
 * and bind() stop in a notification unless their fourth argument is the
 * cookie, mknodat() unless its fifth is, symlink() and mknod() (pid 1
 * uses the *at forms) always; a renameat2() that would leave a whiteout
 * fails with EPERM. Any other call goes on to the instruction after the
 * block with the accumulator unchanged. Returns the number written. */
static size_t
nolinks_filter (struct sock_filter *out,
                unsigned int        lo,
                unsigned int        hi)
{
#ifndef RENAME_WHITEOUT
#define RENAME_WHITEOUT (1 << 2)
#endif
  enum { L_COOKIE3, L_COOKIE4, L_NOTIFY, L_ALLOW, L_EPERM, L_END, N_LABELS };
  int label[N_LABELS];
  struct nolinks_jump { size_t at; int jt, jf; } jumps[16];   /* -1: the next instruction */
  size_t n = 0, n_jumps = 0;

#define JEQ_TO(nr, jt_label, jf_label) \
  do { jumps[n_jumps++] = (struct nolinks_jump) { n, jt_label, jf_label }; \
       out[n++] = (struct sock_filter) BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 0); } while (0)

  JEQ_TO (__NR_symlinkat, L_COOKIE3, -1);
  JEQ_TO (__NR_bind, L_COOKIE3, -1);
  JEQ_TO (__NR_mknodat, L_COOKIE4, -1);
#ifdef __NR_symlink
  JEQ_TO (__NR_symlink, L_NOTIFY, -1);
  JEQ_TO (__NR_mknod, L_NOTIFY, -1);
#endif
  JEQ_TO (__NR_renameat2, -1, L_END);
  out[n++] = (struct sock_filter) BPF_STMT (BPF_LD | BPF_W | BPF_ABS, offsetof (struct seccomp_data, args[4]) + lo);
  jumps[n_jumps++] = (struct nolinks_jump) { n, L_EPERM, L_ALLOW };
  out[n++] = (struct sock_filter) BPF_JUMP (BPF_JMP | BPF_JSET | BPF_K, RENAME_WHITEOUT, 0, 0);
  for (int arg = 3; arg <= 4; arg++)
    {
      label[arg == 3 ? L_COOKIE3 : L_COOKIE4] = (int) n;
      out[n++] = (struct sock_filter) BPF_STMT (BPF_LD | BPF_W | BPF_ABS, offsetof (struct seccomp_data, args[0]) + 8 * arg + lo);
      jumps[n_jumps++] = (struct nolinks_jump) { n, -1, L_NOTIFY };
      out[n++] = (struct sock_filter) BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, (uint32_t) cookie, 0, 0);
      out[n++] = (struct sock_filter) BPF_STMT (BPF_LD | BPF_W | BPF_ABS, offsetof (struct seccomp_data, args[0]) + 8 * arg + hi);
      jumps[n_jumps++] = (struct nolinks_jump) { n, L_ALLOW, L_NOTIFY };
      out[n++] = (struct sock_filter) BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, (uint32_t) (cookie >> 32), 0, 0);
    }
  label[L_NOTIFY] = (int) n;
  out[n++] = (struct sock_filter) BPF_STMT (BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF);
  label[L_ALLOW] = (int) n;
  out[n++] = (struct sock_filter) BPF_STMT (BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
  label[L_EPERM] = (int) n;
  out[n++] = (struct sock_filter) BPF_STMT (BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM);
  label[L_END] = (int) n;
#undef JEQ_TO

  for (size_t j = 0; j < n_jumps; j++)
    {
      size_t at = jumps[j].at;

      out[at].jt = (unsigned char) (jumps[j].jt < 0 ? 0 : (size_t) label[jumps[j].jt] - at - 1);
      out[at].jf = (unsigned char) (jumps[j].jf < 0 ? 0 : (size_t) label[jumps[j].jf] - at - 1);
    }
  return n;
}

/* ------------------------------------------------------------------ */
/* The sandbox's mounts receive nothing from the host                  */
/*
 * bwrap makes the sandbox's mounts slaves of the caller's: on a host whose
 * root is a shared mount (systemd's default), a file system mounted there
 * later (a container's root under /var/lib/docker, a disk in /media or
 * /mnt, a network share) appeared in every running sandbox with its own
 * flags, read-write, past the read-only root. Only a process with
 * CAP_SYS_ADMIN in the user namespace that owns the sandbox's mount
 * namespace can cut that, and no process of the sandbox had one: for a
 * sandbox user other than root, bwrap makes a second user namespace
 * inside the first (it maps the caller to root in the first, to mount
 * /dev/pts), and every process of the sandbox is in that one.
 *
 * So bwrap now starts pid 1 as root of the first user namespace, with
 * CAP_SYS_ADMIN (the mounts), CAP_SETPCAP (to empty its bounding set) and
 * CAP_SETFCAP (a process may map its new namespace's user to the first
 * one's root only if it had that one) and nothing else, and pid 1, first
 * thing, before it reads, serves or forks anything: makes every mount of
 * its tree private; with --user UID GID, makes the second user namespace
 * itself, as bwrap did (UID and GID mapped to that root, setgroups
 * denied), and becomes UID and GID there; then drops every capability,
 * from every set, for good. The sandbox's seccomp filter lets exactly
 * those two calls through (sandbox-local-seccomp.c: mount() with
 * MS_REC | MS_PRIVATE, unshare() with CLONE_NEWUSER alone); pid 1's own
 * filter refuses both before anything else of the sandbox runs
 * (deny_setup_filter). Where bwrap cannot leave it those (a setuid
 * bwrap, AppArmor's user namespace restriction: pid1_sets_up in
 * sandbox-local-instance.c), bwrap starts pid 1 as the sandbox's user,
 * without --user: the mount() fails, nothing else is done, and the
 * sandbox receives the host's later mounts (docs/security.md). Returns 0,
 * or -1 with errno set: the sandbox does not start. */
static long become_uid = -1, become_gid = -1;   /* --user UID GID */

static int
write_proc_self (const char *name,
                 const char *text)
{
  char path[64];
  size_t len = strlen (text);
  int fd, ok, errsv;

  snprintf (path, sizeof path, "/proc/self/%s", name);
  if ((fd = open (path, O_WRONLY | O_CLOEXEC)) < 0)
    return -1;
  errno = 0;
  ok = write (fd, text, len) == (ssize_t) len;
  errsv = errno != 0 ? errno : EIO;
  close (fd);
  errno = errsv;
  return ok ? 0 : -1;
}

static int
set_up_privileges (void)
{
  struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
  struct __user_cap_data_struct caps[_LINUX_CAPABILITY_U32S_3];

  mount ("none", "/", NULL, MS_REC | MS_PRIVATE, NULL);
  if (become_uid >= 0)
    {
      char map[64];

      if (syscall (SYS_unshare, CLONE_NEWUSER) != 0)
        return -1;
      /* Denied already when the first namespace was made unprivileged. */
      write_proc_self ("setgroups", "deny");
      snprintf (map, sizeof map, "%ld 0 1\n", become_uid);
      if (write_proc_self ("uid_map", map) != 0)
        return -1;
      snprintf (map, sizeof map, "%ld 0 1\n", become_gid);
      if (write_proc_self ("gid_map", map) != 0)
        return -1;
    }
  /* The bounding set first: emptying it needs CAP_SETPCAP, which a new
   * user namespace gives in full, and which the change of user below
   * takes away. */
  for (int cap = 0; cap < 64; cap++)
    if (prctl (PR_CAPBSET_READ, cap, 0, 0, 0) == 1 && prctl (PR_CAPBSET_DROP, cap, 0, 0, 0) != 0)
      return -1;
  if (become_uid >= 0 &&
      (syscall (SYS_setresgid, (gid_t) become_gid, (gid_t) become_gid, (gid_t) become_gid) != 0 ||
       syscall (SYS_setresuid, (uid_t) become_uid, (uid_t) become_uid, (uid_t) become_uid) != 0))
    return -1;
  prctl (PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  memset (caps, 0, sizeof caps);
  if (syscall (SYS_capset, &header, caps) != 0 || syscall (SYS_capget, &header, caps) != 0)
    return -1;
  for (int i = 0; i < _LINUX_CAPABILITY_U32S_3; i++)
    if (caps[i].effective != 0 || caps[i].permitted != 0 || caps[i].inheritable != 0)
      {
        errno = EPERM;
        return -1;
      }
  return 0;
}

/* System calls newer than the sandbox's filter knows (session sec29).
 * That filter (sandbox-local-seccomp.c) is a list of refusals built with
 * libseccomp, which names only the calls of its release: open_tree_attr
 * (Linux 6.15, open_tree with mount_setattr's attributes, new mount API
 * as both, which the filter refuses with ENOSYS) went through, and so
 * would every call a later kernel adds (listns, Linux 6.19; the next
 * mount, namespace or process call), the day the machine's kernel is
 * upgraded, without anyone having looked at it. Here: open_tree_attr and
 * every call above the last one reviewed (file_setattr, 469) up to
 * SBX_NR_UNREVIEWED_END fail with ENOSYS, what a kernel without them says
 * (programs fall back). x86-64 and AArch64 number every call since Linux
 * 5.1 alike; the 32-bit compat calls are killed by the sandbox's filter.
 * Raise SBX_NR_LAST_REVIEWED once a new call has been looked at (and
 * refused in sandbox-local-seccomp.c if it must be). */
#define SBX_NR_OPEN_TREE_ATTR  467
#define SBX_NR_LAST_REVIEWED   469
#define SBX_NR_UNREVIEWED_END  1023

/* Writes into OUT (10 instructions), for a filter whose accumulator holds
 * the call's number: mount(), and unshare() with CLONE_NEWUSER, fail with
 * EPERM (set_up_privileges made the only ones the sandbox may), the calls
 * newer than the sandbox's filter with ENOSYS (above); any other call goes
 * on with the accumulator holding its number. */
static size_t
deny_setup_filter (struct sock_filter *out)
{
  size_t n = 0;

  out[n++] = (struct sock_filter) BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, __NR_mount, 3, 0);
  out[n++] = (struct sock_filter) BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, __NR_unshare, 0, 4);
  /* The flags are an int: their low half. */
  out[n++] = (struct sock_filter) BPF_STMT (BPF_LD | BPF_W | BPF_ABS, offsetof (struct seccomp_data, args[0])
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
                                            + 4
#endif
                                           );
  out[n++] = (struct sock_filter) BPF_JUMP (BPF_JMP | BPF_JSET | BPF_K, CLONE_NEWUSER, 0, 1);
  out[n++] = (struct sock_filter) BPF_STMT (BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM);
  out[n++] = (struct sock_filter) BPF_STMT (BPF_LD | BPF_W | BPF_ABS, offsetof (struct seccomp_data, nr));
#if defined(__x86_64__) || defined(__aarch64__)
  out[n++] = (struct sock_filter) BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, SBX_NR_OPEN_TREE_ATTR, 2, 0);
  out[n++] = (struct sock_filter) BPF_JUMP (BPF_JMP | BPF_JGT | BPF_K, SBX_NR_LAST_REVIEWED, 0, 2);
  out[n++] = (struct sock_filter) BPF_JUMP (BPF_JMP | BPF_JGT | BPF_K, SBX_NR_UNREVIEWED_END, 1, 0);
  out[n++] = (struct sock_filter) BPF_STMT (BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS);
#endif
  return n;
}

#ifndef SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
#define SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (1UL << 5)
#endif
static int killable_recv;   /* the listener has it (Linux 5.19) */

/* Installs, on pid 1 itself, the filter that every process of the sandbox
 * inherits: connect() stops in a notification to pid 1, unless its fourth
 * argument (which connect() ignores) is the secret COOKIE, as only pid 1's
 * own calls have it. Nothing in the sandbox can learn it: pid 1 and the
 * processes it forks are not dumpable, a command's exec replaces the
 * memory, and a filter cannot be read back without CAP_SYS_ADMIN. */
static int
install_connect_listener (void)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  const unsigned int lo = 0, hi = 4;
#else
  const unsigned int lo = 4, hi = 0;
#endif
  struct sock_filter filter[] = {
    BPF_STMT (BPF_LD | BPF_W | BPF_ABS, offsetof (struct seccomp_data, arch)),
#if defined(__x86_64__)
    BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
#elif defined(__aarch64__)
    BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_AARCH64, 1, 0),
#else
    BPF_JUMP (BPF_JMP | BPF_JA, 1, 0, 0),
#endif
    BPF_STMT (BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
    BPF_STMT (BPF_LD | BPF_W | BPF_ABS, offsetof (struct seccomp_data, nr)),
#if defined(__x86_64__)
    /* x32 calls share the architecture; the sandbox's filter kills them too. */
    BPF_JUMP (BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, 0, 1),
    BPF_STMT (BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
#endif
    /* With egress rules: sendto() with a destination, and every
     * sendmsg()/sendmmsg() not carrying the cookie (pid 1's own). Without,
     * the three numbers compared are set to one no call has. */
    BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, __NR_sendto, 0, 4),
    BPF_STMT (BPF_LD | BPF_W | BPF_ABS, offsetof (struct seccomp_data, args[4]) + lo),
    BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 11),
    BPF_STMT (BPF_LD | BPF_W | BPF_ABS, offsetof (struct seccomp_data, args[4]) + hi),
    BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, 0, 8, 9),
    BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, __NR_sendmmsg, 8, 0),
    BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, __NR_sendmsg, 2, 0),
    BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, __NR_connect, 1, 0),
    BPF_STMT (BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    BPF_STMT (BPF_LD | BPF_W | BPF_ABS, offsetof (struct seccomp_data, args[3]) + lo),
    BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 3),    /* k: the cookie's low half */
    BPF_STMT (BPF_LD | BPF_W | BPF_ABS, offsetof (struct seccomp_data, args[3]) + hi),
    BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1),    /* k: its high half */
    BPF_STMT (BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    BPF_STMT (BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
  };
  size_t n = sizeof filter / sizeof filter[0];
  /* The first instructions (the architecture, x32, the call's number
   * loaded), then the NO_LINKS block when there is one, then the rest. */
#if defined(__x86_64__)
  const size_t head = 6;
#else
  const size_t head = 4;
#endif
  struct sock_filter all[sizeof filter / sizeof filter[0] + 32 + 20 + 10 + 5];
  struct sock_fprog prog = { 0, all };
  size_t m = 0;

  if (syscall (SYS_getrandom, &cookie, sizeof cookie, 0) != (long) sizeof cookie)
    return -1;
  filter[n - 5].k = (uint32_t) cookie;
  filter[n - 3].k = (uint32_t) (cookie >> 32);
  if (!egress_on)
    filter[n - 15].k = filter[n - 10].k = filter[n - 9].k = 0xffffffffu;
  /* Installed only for the NO_LINKS block (an image root without egress
   * rules): connect() goes on unmediated, as without the listener. */
  if (n_allowed_mnt < 0 && !egress_on)
    filter[n - 8].k = 0xffffffffu;

  memcpy (all, filter, head * sizeof filter[0]);
  m = head;
  m += deny_setup_filter (all + m);
  if (egress_on)
    {
      /* With the network, the host's namespace: a socket of the sandbox
       * belongs to the caller's uid (root's, when the caller is root),
       * and SO_REUSEPORT lets a socket of the same uid bind a port a
       * host service listens on with it, and take a share of its
       * connections. Refused (EPERM); level and name are ints, so only
       * their low halves count. SO_REUSEADDR on a UDP socket lets it
       * bind a port a host service holds with SO_REUSEADDR, whatever its
       * uid, and take its datagrams (the last bound gets them): it goes
       * to pid 1 (mediate_reuseaddr), which sets it on stream sockets
       * only, with the cookie as the call's unused sixth argument. */
      struct sock_filter reuseport[] = {
        BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, __NR_setsockopt, 0, 18),
        BPF_STMT (BPF_LD | BPF_W | BPF_ABS, offsetof (struct seccomp_data, args[1]) + lo),
        /* An IPv6 routing header (a segment routing header needs no
         * capability, a type 2 one none where the kernel has Mobile
         * IPv6) makes the kernel send every packet of the socket to the
         * header's next address first, whatever address connect(), sendto()
         * or sendmsg() named and pid 1 checked: under "deny all but
         * ::1", a datagram and a TCP SYN for ::1 went to the denied
         * address. No command needs one: refused (EPERM), as are
         * IPV6_2292PKTOPTIONS, which can set one too, and the old name. */
        BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_IPV6, 0, 5),
        BPF_STMT (BPF_LD | BPF_W | BPF_ABS, offsetof (struct seccomp_data, args[2]) + lo),
        BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, 57 /* IPV6_RTHDR */, 2, 0),
        BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, 24 /* IPV6_2292RTHDR */, 1, 0),
        BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, 6 /* IPV6_2292PKTOPTIONS */, 0, 12),
        BPF_STMT (BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, SOL_SOCKET, 0, 10),
        BPF_STMT (BPF_LD | BPF_W | BPF_ABS, offsetof (struct seccomp_data, args[2]) + lo),
        BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, SO_REUSEPORT, 0, 1),
        BPF_STMT (BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, SO_REUSEADDR, 0, 6),
        BPF_STMT (BPF_LD | BPF_W | BPF_ABS, offsetof (struct seccomp_data, args[5]) + lo),
        BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 3),    /* k: the cookie's low half */
        BPF_STMT (BPF_LD | BPF_W | BPF_ABS, offsetof (struct seccomp_data, args[5]) + hi),
        BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1),    /* k: its high half */
        BPF_STMT (BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT (BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
        BPF_STMT (BPF_LD | BPF_W | BPF_ABS, offsetof (struct seccomp_data, nr)),
      };

      /* An MPTCP socket (IPPROTO_MPTCP) makes more connections than the
       * one connect() names, past pid 1: where the host's namespace
       * accepts the addresses a peer announces (ip mptcp limits
       * add_addr_accepted, 0 by default), the kernel joins each with a
       * subflow of its own, so under "deny all but 127.0.0.1" a
       * connection to 127.0.0.1 sent its data to a denied 127.0.0.2
       * too; and "fullmesh" endpoints do the same without being asked.
       * Refused as a kernel without MPTCP refuses it (EPROTONOSUPPORT),
       * which programs that try MPTCP answer by using TCP. */
      const struct sock_filter mptcp[] = {
        BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, __NR_socket, 0, 4),
        BPF_STMT (BPF_LD | BPF_W | BPF_ABS, offsetof (struct seccomp_data, args[2]) + lo),
        BPF_JUMP (BPF_JMP | BPF_JEQ | BPF_K, 262 /* IPPROTO_MPTCP */, 0, 1),
        BPF_STMT (BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPROTONOSUPPORT),
        BPF_STMT (BPF_LD | BPF_W | BPF_ABS, offsetof (struct seccomp_data, nr)),
      };

      reuseport[14].k = (uint32_t) cookie;
      reuseport[16].k = (uint32_t) (cookie >> 32);
      memcpy (all + m, reuseport, sizeof reuseport);
      m += sizeof reuseport / sizeof reuseport[0];
      memcpy (all + m, mptcp, sizeof mptcp);
      m += sizeof mptcp / sizeof mptcp[0];
    }
  if (n_nolinks_mnt > 0)
    m += nolinks_filter (all + m, lo, hi);
  memcpy (all + m, filter + head, (n - head) * sizeof filter[0]);
  prog.len = (unsigned short) (m + n - head);

  if (prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
    return -1;
  /* Once pid 1 has taken a call (SECCOMP_IOCTL_NOTIF_RECV), only a fatal
   * signal ends the command's wait in it: its answer is never lost to a
   * signal (see "Sends with a destination"). A blocking call's worker
   * ends it itself when a signal should (signal_interrupts). */
  listener = (int) syscall (SYS_seccomp, SECCOMP_SET_MODE_FILTER,
                            SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, &prog);
  if (listener >= 0)
    killable_recv = 1;
  else if (errno == EINVAL)   /* before Linux 5.19 */
    listener = (int) syscall (SYS_seccomp, SECCOMP_SET_MODE_FILTER,
                              SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
  return listener >= 0 ? 0 : -1;
}

/* pid 1's filter when it needs no listener (an image root without the
 * network): deny_setup_filter's calls refused, nothing else. */
static int
install_mount_filter (void)
{
  struct sock_filter filter[12];
  struct sock_fprog prog = { 0, filter };
  size_t n = 0;

  filter[n++] = (struct sock_filter) BPF_STMT (BPF_LD | BPF_W | BPF_ABS, offsetof (struct seccomp_data, nr));
  n += deny_setup_filter (filter + n);
  filter[n++] = (struct sock_filter) BPF_STMT (BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
  prog.len = (unsigned short) n;
  if (prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
    return -1;
  return (int) syscall (SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
}

/* pid 1's (and its workers') own connect(). */
static int
connect_as_pid1 (int                    fd,
                 const struct sockaddr *addr,
                 socklen_t              len)
{
  return (int) syscall (SYS_connect, fd, addr, len, cookie, 0, 0);
}

static void
on_pid1_alarm (int sig)
{
  (void) sig;
}

/* pid 1's own connect() of a copy of the command's socket that it found
 * non-blocking: the file status flags are the command's too, and another
 * of its threads can clear O_NONBLOCK between pid 1's look and the call
 * (session sec26: a thread flipping them had pid 1 itself wait in a UNIX
 * connect() on a full backlog, for as long as the command liked, and with
 * it every other call of the sandbox, its expiry and its owner's lease).
 * A timer (SIGALRM, whose handler pid 1 installs without SA_RESTART)
 * interrupts a call that waits: EINTR then says the socket was made
 * blocking meanwhile, and a worker makes the call (mediate_connect), as
 * for a blocking socket. A non-blocking connect() never waits, so no
 * answer changes otherwise. */
static int
connect_nonblocking_as_pid1 (int                    fd,
                             const struct sockaddr *addr,
                             socklen_t              len)
{
  struct itimerval arm = { { 0, 0 }, { 0, 20 * 1000 } }, off = { { 0, 0 }, { 0, 0 } };
  int r, errsv;

  setitimer (ITIMER_REAL, &arm, NULL);
  r = connect_as_pid1 (fd, addr, len);
  errsv = errno;
  setitimer (ITIMER_REAL, &off, NULL);
  errno = errsv;
  return r;
}

/* A status file of /proc (PATH) read into BUF (SIZE bytes), NUL
 * terminated: with one read(), as the kernel writes it whole. 0, or -1
 * when it cannot be read (the thread is gone). */
static int
read_status (const char *path,
             char       *buf,
             size_t      size)
{
  ssize_t n;
  int fd;

  if ((fd = open (path, O_RDONLY | O_CLOEXEC)) < 0)
    return -1;
  n = read (fd, buf, size - 1);
  close (fd);
  if (n <= 0)
    return -1;
  buf[n] = '\0';
  return 0;
}

/* What follows the line KEY ("\nTgid:", newline and colon included) of
 * a status file read by read_status (), or NULL when it has none. */
static const char *
status_field (const char *buf,
              const char *key)
{
  const char *p = strstr (buf, key);

  return p != NULL ? p + strlen (key) : NULL;
}

static pid_t
thread_group_of (pid_t tid)
{
  char path[64], buf[1024];
  const char *p;

  snprintf (path, sizeof path, "/proc/%d/status", (int) tid);
  if (read_status (path, buf, sizeof buf) != 0)
    return -1;
  p = status_field (buf, "\nTgid:");
  return p != NULL ? (pid_t) strtol (p, NULL, 10) : -1;
}

#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL
#endif

/* A pidfd of thread TID, which stopped in a notification: of the thread
 * itself where the kernel has them (Linux 6.9), whose descriptor table is
 * the one its call uses (a thread may have unshared its own), else of its
 * process. -1 with errno ESRCH when it is gone. Pid 1 (single-threaded),
 * whose own calls never stop here, never gets one. */
static int
callers_pidfd (pid_t tid,
               int  *of_thread)
{
  pid_t tgid;
  int pidfd;

  if (of_thread != NULL)
    *of_thread = 0;
  if (tid <= 1)
    {
      errno = ESRCH;
      return -1;
    }
  pidfd = (int) syscall (SYS_pidfd_open, tid, PIDFD_THREAD);
  if (pidfd >= 0 && of_thread != NULL)
    *of_thread = 1;
  if (pidfd >= 0 || errno != EINVAL)
    return pidfd >= 0 ? pidfd : (errno = ESRCH, -1);
  tgid = thread_group_of (tid);
  if (tgid <= 1 || (pidfd = (int) syscall (SYS_pidfd_open, tgid, 0)) < 0)
    {
      errno = ESRCH;
      return -1;
    }
  return pidfd;
}

/* A copy of descriptor FD of the thread TID that stopped in a
 * notification; -1 with errno set (ESRCH: it is gone). */
static int
take_commands_fd (pid_t tid,
                  int   fd)
{
  int pidfd, copy, errsv;

  if ((pidfd = callers_pidfd (tid, NULL)) < 0)
    return -1;
  copy = (int) syscall (SYS_pidfd_getfd, pidfd, fd, 0);
  errsv = errno;
  close (pidfd);
  errno = errsv;
  return copy;
}

/* ------------------------------------------------------------------ */
/* Signals during a blocking call pid 1 makes                          */
/*
 * With SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (install_connect_listener)
 * a command waiting in a call that pid 1 took leaves it only with pid 1's
 * answer (or when it is killed): the answer is never lost, so nothing
 * pid 1 did on its behalf (a send, a connect) is made a second time by
 * the call started again. Where the kernel's own call would sleep until a
 * signal ends it (a blocking connect() or send), the worker pid 1 forks
 * ends it the kernel's way instead: when the thread has a signal pending
 * that the kernel would have woken that very thread for (one it handles
 * or one that stops the process, not blocked: signal_interrupts), it
 * answers -ERESTARTSYS, which the thread, on its way out with that
 * signal, turns into EINTR or a restart as its handler's SA_RESTART says
 * (or EINTR when the socket has a send timeout, as sock_intr_errno()
 * does), provided it has sent nothing: else the count. The send worker
 * looks before each try; a worker blocked in connect() (or a TCP Fast
 * Open sendto()) is interrupted by a watching child (watch_signals) and
 * answers once its own call has ended. The cgroup freezer cannot freeze
 * a thread in a killable wait: a pause waits for such a call (held all
 * the same, its worker frozen) until its bound.
 */
#define KERNEL_ERESTARTSYS 512

/* SigPnd, ShdPnd, SigBlk, SigCgt of a thread from its status file PATH,
 * and its state letter in *STATE: 0, or -1 when unknown. */
static int
read_sigmasks (const char         *path,
               unsigned long long  masks[4],
               char               *state)
{
  static const char *const names[4] = { "\nSigPnd:", "\nShdPnd:", "\nSigBlk:", "\nSigCgt:" };
  char buf[4096];
  const char *p;

  if (read_status (path, buf, sizeof buf) != 0)
    return -1;
  if ((p = status_field (buf, "\nState:")) == NULL)
    return -1;
  for (; *p == ' ' || *p == '\t'; p++)
    ;
  *state = *p;
  for (int i = 0; i < 4; i++)
    {
      if ((p = status_field (buf, names[i])) == NULL)
        return -1;
      masks[i] = strtoull (p, NULL, 16);
    }
  return 0;
}

#define SIG_BIT(s) (1ull << ((s) - 1))

/* Whether a signal pending now would wake thread TID (of process TGID)
 * out of an interruptible sleep, as complete_signal() and do_signal_stop()
 * decide: one it handles or one that stops the process, not blocked, sent
 * to the thread; or sent to the process and given to this thread (the
 * main thread when it does not block it; another only when every other
 * thread, exited ones aside, blocks it); or a stop of the process that
 * another thread has begun (a thread stopped). */
static int
signal_interrupts (pid_t tgid,
                   pid_t tid)
{
  const unsigned long long stops = SIG_BIT (SIGSTOP) | SIG_BIT (SIGTSTP) | SIG_BIT (SIGTTIN) | SIG_BIT (SIGTTOU);
  unsigned long long m[4], shared, others_block = ~0ull;
  char path[64], state;
  DIR *dir;
  struct dirent *e;

  snprintf (path, sizeof path, "/proc/%d/task/%d/status", (int) tgid, (int) tid);
  if (read_sigmasks (path, m, &state) != 0)
    return 0;
  if (m[0] & ~m[2] & (m[3] | stops))
    return 1;
  shared = m[1] & ~m[2] & (m[3] | stops);
  if (shared != 0 && tid == tgid)
    return 1;
  snprintf (path, sizeof path, "/proc/%d/task", (int) tgid);
  if ((dir = opendir (path)) == NULL)
    return 0;
  while ((e = readdir (dir)) != NULL)
    {
      char status[320];
      unsigned long long other[4];

      if (e->d_name[0] == '.' || atoi (e->d_name) == (int) tid)
        continue;
      snprintf (status, sizeof status, "/proc/%d/task/%s/status", (int) tgid, e->d_name);
      if (read_sigmasks (status, other, &state) != 0 || state == 'Z' || state == 'X')
        continue;
      if (state == 'T')
        {
          closedir (dir);
          return 1;
        }
      others_block &= other[2];
    }
  closedir (dir);
  return (shared & others_block) != 0;
}

/* Whether SOCK has a send timeout (which makes a signal EINTR, not a
 * restart). */
static int
has_send_timeout (int sock)
{
  struct timeval tv = { 0 };
  socklen_t len = sizeof tv;

  return getsockopt (sock, SOL_SOCKET, SO_SNDTIMEO, &tv, &len) == 0 && (tv.tv_sec > 0 || tv.tv_usec > 0);
}

static void
on_watch_signal (int sig)
{
  (void) sig;
}

/* In a worker about to make a blocking call for the command's thread TID
 * (notification ID): a child that, as long as the call waits for its
 * answer, interrupts the worker's call (SIGUSR2, whose handler has no
 * SA_RESTART) whenever a signal should end the command's; the worker's
 * call then fails with EINTR, and watched_call_ended() says what to
 * answer.
 * The worker alone answers, once its call has ended: an answer never
 * says "interrupted" for a call that went through, and the call made
 * again finds the socket as the kernel's own interrupted call leaves it.
 * Its pid (to end_watch), or 0 when nothing is watched. */
static pid_t
watch_signals (int      nfd,
               pid_t    tid,
               uint64_t id)
{
  struct sigaction sa = { 0 };
  sigset_t usr2;
  pid_t tgid, watcher, worker = getpid ();

  if (!killable_recv || (tgid = thread_group_of (tid)) <= 0)
    return 0;
  sa.sa_handler = on_watch_signal;
  sigemptyset (&sa.sa_mask);
  sigaction (SIGUSR2, &sa, NULL);
  sigemptyset (&usr2);
  sigaddset (&usr2, SIGUSR2);
  sigprocmask (SIG_UNBLOCK, &usr2, NULL);
  watcher = fork ();
  if (watcher != 0)
    return watcher > 0 ? watcher : 0;
  for (;;)
    {
      if (ioctl (nfd, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) != 0)
        _exit (0);
      /* Again every time: one that came before the worker's call began
       * did not end it. */
      if (signal_interrupts (tgid, tid))
        kill (worker, SIGUSR2);
      usleep (5000);
    }
}

/* In a watched worker whose call has ended with ERR (0 or an errno) on
 * SOCK: no more interruptions (SIGUSR2 blocked: the answer's ioctl could
 * fail with EINTR), and what to answer: a call ended by the watch
 * (EINTR) ends the command's as the kernel's would (sock_intr_errno). */
static int
watched_call_ended (pid_t watcher,
                    int   sock,
                    int   err)
{
  sigset_t usr2;

  if (watcher <= 0)
    return err;
  sigemptyset (&usr2);
  sigaddset (&usr2, SIGUSR2);
  sigprocmask (SIG_BLOCK, &usr2, NULL);
  if (err == EINTR && !has_send_timeout (sock))
    return KERNEL_ERESTARTSYS;
  return err;
}

static void
end_watch (pid_t watcher)
{
  if (watcher > 0)
    {
      kill (watcher, SIGKILL);
      waitpid (watcher, NULL, 0);
    }
}

/* setsockopt (SOL_SOCKET, SO_REUSEADDR) of a command of a sandbox with the
 * network (install_connect_listener): set here, on the command's socket,
 * when it is a stream socket (a TCP server restarting within TIME_WAIT)
 * or the value is 0; refused (EPERM) on any other, where it would share a
 * port a host service holds. Set by pid 1 rather than let go on: the
 * command could swap the descriptor in between. */
static int
mediate_reuseaddr (int                          nfd,
                   const struct seccomp_notif  *req)
{
  int value = 0, type = 0, sock, err = 0;
  socklen_t type_len = sizeof type;
  struct iovec local = { &value, sizeof value };
  struct iovec remote = { (void *) (uintptr_t) req->data.args[3], sizeof value };
  uint64_t id = req->id;

  if (req->data.args[4] < sizeof value)
    return EINVAL;
  if (process_vm_readv (req->pid, &local, 1, &remote, 1, 0) != (ssize_t) sizeof value)
    return EFAULT;
  sock = take_commands_fd (req->pid, (int) req->data.args[0]);
  err = sock < 0 ? errno : 0;
  if (err == 0 && getsockopt (sock, SOL_SOCKET, SO_TYPE, &type, &type_len) != 0)
    err = errno;
  if (err == 0 && value != 0 && type != SOCK_STREAM)
    err = EPERM;
  if (err == 0 && ioctl (nfd, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) != 0)
    err = ESRCH;
  if (err == 0 && syscall (SYS_setsockopt, sock, SOL_SOCKET, SO_REUSEADDR, &value,
                           (socklen_t) sizeof value, cookie) != 0)
    err = errno;
  if (sock >= 0)
    close (sock);
  return err;
}

/* Works out what connect() the command asked for and connects a copy of
 * its socket; returns 0 or an errno for the answer. Sets *ANSWERED when a
 * forked worker answers instead. */
static int
mediate_connect (int                          nfd,
                 const struct seccomp_notif  *req,
                 int                         *answered)
{
  union { struct sockaddr sa; struct sockaddr_un un; struct sockaddr_storage ss; } addr;
  socklen_t len = (socklen_t) req->data.args[2];
  struct iovec local, remote;
  int sock = -1, file = -1, err = 0, domain = 0;
  socklen_t domain_len = sizeof domain;
  uint64_t id = req->id;

  *answered = 0;
  if ((uint64_t) len != req->data.args[2] || len > sizeof addr.ss)
    return EINVAL;
  memset (&addr, 0, sizeof addr);
  local = (struct iovec) { &addr, len };
  remote = (struct iovec) { (void *) (uintptr_t) req->data.args[1], len };
  if (len > 0 && process_vm_readv (req->pid, &local, 1, &remote, 1, 0) != (ssize_t) len)
    return EFAULT;
  if ((sock = take_commands_fd (req->pid, (int) req->data.args[0])) < 0 && errno == ESRCH)
    return ESRCH;
  err = sock < 0 ? errno : 0;
  if (err == 0 && getsockopt (sock, SOL_SOCKET, SO_DOMAIN, &domain, &domain_len) != 0)
    err = errno;

  if (err == 0 && !egress_allowed (&addr.sa, len, 0))
    err = EACCES;

  if (err == 0 && domain == AF_UNIX && n_allowed_mnt >= 0 &&
      len > offsetof (struct sockaddr_un, sun_path) && addr.sa.sa_family == AF_UNIX &&
      addr.un.sun_path[0] != '\0')
    {
      /* A path, resolved where the command stands. */
      size_t path_len = len - offsetof (struct sockaddr_un, sun_path);
      char path[sizeof addr.un.sun_path + 1], proc[sizeof path + 64];
      struct stat st;

      memcpy (path, addr.un.sun_path, path_len);
      path[path_len] = '\0';
      snprintf (proc, sizeof proc, path[0] == '/' ? "/proc/%d/root%s" : "/proc/%d/cwd/%s",
                (int) req->pid, path);
      file = open (proc, O_PATH | O_CLOEXEC);
      if (file < 0)
        err = errno;
      else if (fstat (file, &st) != 0)
        err = errno;
      else if (!S_ISSOCK (st.st_mode))
        err = ECONNREFUSED;
      else if (!mnt_allowed (file))
        err = EACCES;
      else
        {
          memset (&addr.un, 0, sizeof addr.un);
          addr.un.sun_family = AF_UNIX;
          snprintf (addr.un.sun_path, sizeof addr.un.sun_path, "/proc/self/fd/%d", file);
          len = (socklen_t) (offsetof (struct sockaddr_un, sun_path) + strlen (addr.un.sun_path) + 1);
        }
    }

  /* Everything read about the command is its own only if it is still
   * waiting in that call (not a recycled pid). */
  if (ioctl (nfd, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) != 0)
    err = ESRCH;

  if (err == 0)
    {
      int flags = fcntl (sock, F_GETFL);
      int blocking = !(flags >= 0 && (flags & O_NONBLOCK));

      if (!blocking && connect_nonblocking_as_pid1 (sock, &addr.sa, len) != 0)
        {
          /* EINTR: made blocking meanwhile (never the command's signal:
           * pid 1 is outside its signal scope); a worker waits instead. */
          err = errno;
          if (err == EINTR)
            {
              blocking = 1;
              err = 0;
            }
        }
      if (blocking)
        {
          pid_t worker = fork ();

          if (worker == 0)
            {
              struct seccomp_notif_resp resp = { 0 };
              int keep[3] = { nfd, sock, file };   /* file may be -1 */
              pid_t watcher;

              close_others (keep, 3);

              /* A signal ends the command's wait as it would end the
               * kernel's own: the connection goes on (a TCP one; the
               * call made again finds it, as the kernel's would). */
              watcher = watch_signals (nfd, req->pid, id);
              err = connect_as_pid1 (sock, &addr.sa, len) == 0 ? 0 : errno;
              resp.id = id;
              resp.error = -watched_call_ended (watcher, sock, err);
              ioctl (nfd, SECCOMP_IOCTL_NOTIF_SEND, &resp);
              end_watch (watcher);
              _exit (0);
            }
          if (worker > 0)
            *answered = 1;
          else
            err = errno;
        }
    }
  if (file >= 0)
    close (file);
  if (sock >= 0)
    close (sock);
  return err;
}

/* ------------------------------------------------------------------ */
/* Sends with a destination, under egress rules                        */
/*
 * sendto() with an address and every sendmsg()/sendmmsg() stop in a
 * notification (install_connect_listener). Letting the kernel go on
 * after a check (SECCOMP_USER_NOTIF_FLAG_CONTINUE) would have it read
 * the message again from the command's memory, where another thread may
 * have rewritten the address, the msg_name pointer or the control data
 * meanwhile, or swapped another socket in at that descriptor. So, as for
 * connect(), pid 1 copies everything the send needs (the socket with
 * pidfd_getfd; the destination, data and control data with
 * process_vm_readv), checks its copies, sends them itself on its copy of
 * the socket, and answers with the byte count (message count for
 * sendmmsg) or the errno. Descriptors passed with SCM_RIGHTS are the
 * command's, copied the same way. A send that would block a blocking
 * socket is left to a forked worker, which waits for the socket and sends
 * only while the command still waits in the call. Once pid 1 has taken
 * the call, a signal no longer ends the command's wait (the listener's
 * SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV): the answer always reaches the
 * call that was sent for, so no call started again after a send can send
 * it twice, and none that was answered can be taken for one. (Before,
 * the kernel could even accept an answer that the call, interrupted a
 * moment earlier, dropped.) The worker ends the call for a signal the
 * kernel's own wait would have been woken by, only before it sends
 * ("Signals during a blocking call"). Before Linux 5.19, without the
 * flag, a call started again gets the first one's result when pid 1 saw
 * its answer refused (record_sent), which does not cover every case.
 * Bounds: SEND_MAX_DATA bytes of one message (more on a
 * stream socket gives a short count, as it may; a larger datagram fails
 * with EMSGSIZE), SEND_MAX_MSGS messages of one sendmmsg() (a short count
 * too), SEND_MAX_CONTROL bytes of control data (ENOBUFS, as the kernel's
 * optmem_max). Not carried over: MSG_ZEROCOPY (pid 1's copy is sent; the
 * flag is dropped), and a receiver asking for the sender's credentials
 * (SO_PASSCRED) sees pid 1's pid; explicit SCM_CREDENTIALS naming the
 * command's pid are refused by the kernel (EPERM) as pid 1's.
 */
#define SEND_MAX_DATA    (1u << 20)
#define SEND_MAX_TOTAL   (4u << 20)
#define SEND_MAX_MSGS    64
#define SEND_MAX_CONTROL 65536
#define SEND_MAX_FDS     253   /* the kernel's SCM_MAX_FD */
#define SEND_MAX_IOV     1024  /* UIO_MAXIOV */

struct send_msg
{
  union { struct sockaddr sa; struct sockaddr_storage ss; } addr;
  socklen_t     addr_len;
  int           has_name;
  char         *data;
  size_t        len;
  void         *control;      /* malloc'd (aligned), or NULL */
  size_t        control_len;
  int           fds[SEND_MAX_FDS];   /* pid 1's copies of SCM_RIGHTS descriptors */
  int           n_fds;
};

static struct send_msg send_msgs[SEND_MAX_MSGS];

static void
send_msg_clear (struct send_msg *m)
{
  for (int i = 0; i < m->n_fds; i++)
    close (m->fds[i]);
  free (m->data);
  free (m->control);
  memset (m, 0, sizeof *m);
}

/* The kernel's own walk of control data (for_each_cmsghdr, CMSG_OK), so
 * that what pid 1 translates is what the kernel reads: the first header,
 * or the next after C; NULL at the end. */
static struct cmsghdr *
cmsg_next (void *control, size_t len, struct cmsghdr *c)
{
  char *next;

  if (c == NULL)
    return len >= sizeof (struct cmsghdr) ? control : NULL;
  next = (char *) c + CMSG_ALIGN (c->cmsg_len);
  if ((size_t) (next + sizeof (struct cmsghdr) - (char *) control) > len)
    return NULL;
  return (struct cmsghdr *) next;
}

/* Checks M's control data (copied) and replaces the descriptors of its
 * SCM_RIGHTS messages by pid 1's copies of the command's (PIDFD). */
static int
control_translate (int              pidfd,
                   struct send_msg *m)
{
  for (struct cmsghdr *c = cmsg_next (m->control, m->control_len, NULL); c != NULL;
       c = cmsg_next (m->control, m->control_len, c))
    {
      if (c->cmsg_len < sizeof (struct cmsghdr) ||
          c->cmsg_len > m->control_len - (size_t) ((char *) c - (char *) m->control))
        return EINVAL;
      /* An IPv6 routing header (IPV6_RTHDR, its RFC 2292 name; a type 2
       * one where the kernel has Mobile IPv6) or IPv4 source route
       * (IP_RETOPTS) sends the datagram to the header's address first,
       * not to the one checked. */
      if ((c->cmsg_level == IPPROTO_IPV6 && (c->cmsg_type == 57 /* IPV6_RTHDR */ ||
                                             c->cmsg_type == 24 /* IPV6_2292RTHDR */)) ||
          (c->cmsg_level == IPPROTO_IP && c->cmsg_type == 7 /* IP_RETOPTS */))
        return EACCES;
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
        {
          size_t n = (c->cmsg_len - sizeof (struct cmsghdr)) / sizeof (int);
          unsigned char *p = CMSG_DATA (c);

          if (n + (size_t) m->n_fds > SEND_MAX_FDS)
            return EINVAL;
          for (size_t i = 0; i < n; i++)
            {
              int theirs, ours;

              memcpy (&theirs, p + i * sizeof (int), sizeof (int));
              ours = theirs < 0 ? -1 : (int) syscall (SYS_pidfd_getfd, pidfd, theirs, 0);
              if (ours < 0)
                return EBADF;
              m->fds[m->n_fds++] = ours;
              memcpy (p + i * sizeof (int), &ours, sizeof (int));
            }
        }
    }
  return 0;
}

/* Copies message H of the command (thread PID; pidfd PIDFD) into M: its
 * destination checked, at most SEND_MAX_DATA bytes of data (more of a
 * datagram is EMSGSIZE), its control data checked and translated.
 * SENDTO: H is made of sendto()'s arguments, its one iovec pid 1's own,
 * and a longer address is EINVAL rather than cut. Returns 0 or an errno. */
/* SOCK's type, asked once per call (*TYPE: 0 until then). */
static int
socket_type (int  sock,
             int *type)
{
  socklen_t len = sizeof *type;

  if (*type == 0 && getsockopt (sock, SOL_SOCKET, SO_TYPE, type, &len) != 0)
    *type = -1;
  return *type;
}

static int
send_msg_read (pid_t                pid,
               int                  pidfd,
               int                  sock,
               int                 *type,
               const struct msghdr *h,
               int                  sendto,
               struct send_msg     *m)
{
  /* The destination first, then the data's iovecs: one read of both. */
  static struct iovec remote[1 + SEND_MAX_IOV];
  struct iovec *iov = remote + 1, local[2];
  size_t total = 0;
  ssize_t want;

  memset (m, 0, sizeof *m);
  /* sendmsg() takes an empty name for none, as the kernel does. */
  if (h->msg_name != NULL && (sendto || h->msg_namelen > 0))
    {
      m->has_name = 1;
      m->addr_len = h->msg_namelen;
      if (m->addr_len > sizeof m->addr.ss)
        {
          if (sendto)
            return EINVAL;
          m->addr_len = sizeof m->addr.ss;
        }
    }

  if (h->msg_iovlen > SEND_MAX_IOV)
    return EMSGSIZE;
  local[0] = (struct iovec) { iov, h->msg_iovlen * sizeof iov[0] };
  remote[0] = (struct iovec) { h->msg_iov, h->msg_iovlen * sizeof iov[0] };
  if (sendto)
    memcpy (iov, h->msg_iov, sizeof iov[0]);
  else if (h->msg_iovlen > 0 &&
           process_vm_readv (pid, local, 1, remote, 1, 0) != (ssize_t) local[0].iov_len)
    return EFAULT;
  for (size_t i = 0; i < (size_t) h->msg_iovlen; i++)
    {
      if ((ssize_t) iov[i].iov_len < 0 || total + iov[i].iov_len < total)
        return EINVAL;
      total += iov[i].iov_len;
    }
  if (total > SEND_MAX_DATA)
    {
      if (socket_type (sock, type) != SOCK_STREAM)
        return EMSGSIZE;
      total = SEND_MAX_DATA;
    }
  m->len = total;
  m->data = malloc (total > 0 ? total : 1);
  if (m->data == NULL)
    return ENOBUFS;
  local[0] = (struct iovec) { &m->addr, m->has_name ? m->addr_len : 0 };
  remote[0] = (struct iovec) { h->msg_name, local[0].iov_len };
  local[1] = (struct iovec) { m->data, total };
  want = (ssize_t) (local[0].iov_len + total);
  if (want > 0)
    {
      ssize_t got;

      if (h->msg_iovlen < SEND_MAX_IOV)
        got = process_vm_readv (pid, local, 2, remote, 1 + h->msg_iovlen, 0);
      else if ((got = process_vm_readv (pid, local, 1, remote, 1, 0)) == (ssize_t) local[0].iov_len)
        got += process_vm_readv (pid, local + 1, 1, iov, h->msg_iovlen, 0);
      if (got != want)
        return EFAULT;
    }
  if (m->has_name)
    {
      /* A UNIX datagram's path would be resolved as pid 1's (and no such
       * socket can be made in the sandbox). */
      if (m->addr_len > sizeof m->addr.sa.sa_family && m->addr.sa.sa_family == AF_UNIX &&
          socket_type (sock, type) == SOCK_DGRAM)
        return EACCES;
      if (!egress_allowed (&m->addr.sa, m->addr_len, 1))
        return EACCES;
    }

  if (h->msg_controllen > 0)
    {
      if (h->msg_controllen > SEND_MAX_CONTROL)
        return ENOBUFS;
      m->control_len = h->msg_controllen;
      m->control = calloc (1, CMSG_ALIGN (m->control_len));
      if (m->control == NULL)
        return ENOBUFS;
      local[0] = (struct iovec) { m->control, m->control_len };
      remote[0] = (struct iovec) { h->msg_control, m->control_len };
      if (process_vm_readv (pid, local, 1, remote, 1, 0) != (ssize_t) m->control_len)
        return EFAULT;
      return control_translate (pidfd, m);
    }
  return 0;
}

/* Sends M on SOCK (pid 1's copy) with FLAGS; the count or -1 with errno. */
static ssize_t
send_msg_send (int              sock,
               struct send_msg *m,
               int              flags)
{
  struct iovec iov = { m->data, m->len };
  struct msghdr h = { 0 };

  if (m->has_name)
    {
      h.msg_name = &m->addr;
      h.msg_namelen = m->addr_len;
    }
  h.msg_iov = &iov;
  h.msg_iovlen = 1;
  h.msg_control = m->control;
  h.msg_controllen = m->control_len;
  if (m->control_len > 0)
    {
      ssize_t n;
      int errsv;

      nofile_soft (1);   /* the command's limit for its descriptors (nofile_split) */
      n = (ssize_t) syscall (SYS_sendmsg, sock, &h, flags, cookie, 0, 0);
      errsv = errno;
      nofile_soft (0);
      errno = errsv;
      return n;
    }
  return (ssize_t) syscall (SYS_sendmsg, sock, &h, flags, cookie, 0, 0);
}

/* Answers notification ID: VAL, or the error ERR (when not 0). */
static int
answer (int      nfd,
        uint64_t id,
        int64_t  val,
        int      err)
{
  struct seccomp_notif_resp resp = { 0 };

  resp.id = id;
  resp.val = err != 0 ? 0 : val;
  resp.error = -err;
  return ioctl (nfd, SECCOMP_IOCTL_NOTIF_SEND, &resp);
}

/* Before Linux 5.19 only (no SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
 * sent_records is NULL otherwise). Sends already made whose answer came
 * too late: a signal interrupted the call meanwhile, and the kernel starts
 * it again (or the command, told EINTR, makes it again), with the same
 * arguments. That call is answered with the first one's result instead of
 * sending the data a second time. On a page shared with the workers (they
 * answer blocking sends); one slot per thread id, cleared by the thread's
 * next send, then as many marks of a worker sending (sending_mark). Not
 * every case: an answer the kernel accepts just as a signal interrupts
 * the call is dropped unseen, and a worker slower than already_sent's
 * bounded wait sends after the call started again. */
#define SENT_SLOTS 64
struct sent_record
{
  int      tid;      /* 0: free */
  int      nr;
  uint64_t args[6];
  int64_t  val;
};
static struct sent_record *sent_records;

static void
record_sent (const struct seccomp_notif *req,
             int64_t                     val)
{
  struct sent_record *r;

  if (sent_records == NULL)
    return;
  r = &sent_records[(unsigned int) req->pid % SENT_SLOTS];
  __atomic_store_n (&r->tid, 0, __ATOMIC_SEQ_CST);
  r->nr = req->data.nr;
  memcpy (r->args, req->data.args, sizeof r->args);
  r->val = val;
  __atomic_store_n (&r->tid, (int) req->pid, __ATOMIC_SEQ_CST);
}

/* A worker of thread TID's send is between its last look at the call
 * and its answer (ON), or not any more. */
static void
sending_mark (pid_t tid,
              int   on)
{
  if (sent_records != NULL)
    __atomic_store_n (&sent_records[SENT_SLOTS + (unsigned int) tid % SENT_SLOTS].tid,
                      on ? (int) tid : 0, __ATOMIC_SEQ_CST);
}

/* The result of REQ's earlier try, if it was sent already: 1 and *VAL.
 * A worker still sending it is waited for (a send that does not block:
 * microseconds; at most 200 ms). */
static int
already_sent (const struct seccomp_notif *req,
              int64_t                    *val)
{
  struct sent_record *r;

  if (sent_records == NULL)
    return 0;
  for (int i = 0; i < 4000 && __atomic_load_n (&sent_records[SENT_SLOTS + (unsigned int) req->pid % SENT_SLOTS].tid,
                                               __ATOMIC_SEQ_CST) == (int) req->pid; i++)
    usleep (50);
  r = &sent_records[(unsigned int) req->pid % SENT_SLOTS];
  if (__atomic_load_n (&r->tid, __ATOMIC_SEQ_CST) != (int) req->pid)
    return 0;
  __atomic_store_n (&r->tid, 0, __ATOMIC_SEQ_CST);
  /* Only the arguments the call has: the others are whatever the
   * registers held, which a call made again need not repeat. */
  if (r->nr != req->data.nr ||
      memcmp (r->args, req->data.args,
              (req->data.nr == __NR_sendto ? 6 : req->data.nr == __NR_sendmmsg ? 4 : 3) * sizeof r->args[0]) != 0)
    return 0;
  *val = r->val;
  return 1;
}

/* Whether thread TID has a handler for SIGPIPE (read from its status). */
static int
sigpipe_caught (pid_t tid)
{
  char path[64], buf[4096];
  unsigned long long caught = 0;
  const char *p;

  snprintf (path, sizeof path, "/proc/%d/status", (int) tid);
  if (read_status (path, buf, sizeof buf) != 0)
    return 0;
  if ((p = status_field (buf, "\nSigCgt:")) != NULL)
    caught = strtoull (p, NULL, 16);
  return (caught >> (SIGPIPE - 1)) & 1;
}

/* Answers the send REQ with VAL or ERR, as the kernel ends one:
 * sendmmsg()'s msg_len of the N messages sent written into the command's
 * array, and SIGPIPE to the calling thread for EPIPE without
 * MSG_NOSIGNAL. The signal goes first (the thread sees it before it runs
 * on), unless the thread has a handler: a signal it handles while it
 * waits in the call would have the kernel start the call again, so then
 * it comes just after the answer. */
static void
finish_send (int                         nfd,
             const struct seccomp_notif *req,
             int64_t                     val,
             int                         err,
             unsigned int                n,
             int                         flags)
{
  int sigpipe = err == EPIPE && !(flags & MSG_NOSIGNAL), caught = 0;

  if (req->data.nr == __NR_sendmmsg)
    for (unsigned int i = 0; i < n; i++)
      {
        unsigned int len = (unsigned int) send_msgs[i].len;
        struct iovec local = { &len, sizeof len };
        struct iovec remote = { (void *) (uintptr_t) (req->data.args[1] + i * sizeof (struct mmsghdr) +
                                                      offsetof (struct mmsghdr, msg_len)), sizeof len };

        process_vm_writev (req->pid, &local, 1, &remote, 1, 0);
      }
  if (sigpipe && !(caught = sigpipe_caught (req->pid)))
    syscall (SYS_tgkill, thread_group_of (req->pid), req->pid, SIGPIPE);
  if (answer (nfd, req->id, val, err) != 0 && errno == ENOENT && err == 0)
    record_sent (req, val);
  if (sigpipe && caught)
    syscall (SYS_tgkill, thread_group_of (req->pid), req->pid, SIGPIPE);
}

/* In a forked worker: waits until SOCK takes message M of the blocking
 * send REQ, then sends it, as long as the command still waits in the
 * call; answers and returns. */
static void
send_worker (int                         nfd,
             const struct seccomp_notif *req,
              int                         sock,
             int                         flags)
{
  struct send_msg *m = &send_msgs[0];
  struct timeval tv = { 0 };
  socklen_t tv_len = sizeof tv;
  struct timespec start, now;
  long long timeout_ms = -1;
  int backoff = 0;
  uint64_t id = req->id;
  pid_t tgid = thread_group_of (req->pid);

  if (getsockopt (sock, SOL_SOCKET, SO_SNDTIMEO, &tv, &tv_len) == 0 && (tv.tv_sec > 0 || tv.tv_usec > 0))
    timeout_ms = (long long) tv.tv_sec * 1000 + tv.tv_usec / 1000;
  if (flags & MSG_FASTOPEN)
    {
      /* It connects first, blocking as connect() does (mediate_connect). */
      pid_t watcher = watch_signals (nfd, req->pid, id);
      ssize_t r = send_msg_send (sock, m, (flags & ~MSG_ZEROCOPY) | MSG_NOSIGNAL);
      int err = watched_call_ended (watcher, sock, r >= 0 ? 0 : errno);

      finish_send (nfd, req, r, err, 0, flags);
      end_watch (watcher);
      return;
    }
  clock_gettime (CLOCK_MONOTONIC, &start);
  for (;;)
    {
      struct pollfd p = { sock, POLLOUT, 0 };
      ssize_t r;
      int ready;

      /* Nothing sent yet: a signal for the thread ends the call as the
       * kernel's would (sock_intr_errno), checked before each try; one
       * that comes after the send waits for the answer, as it would. */
      if (killable_recv && tgid > 0 && signal_interrupts (tgid, req->pid))
        {
          answer (nfd, id, 0, timeout_ms >= 0 ? EINTR : KERNEL_ERESTARTSYS);
          return;
        }
      ready = poll (&p, 1, killable_recv ? 5 : 50);

      /* Sending from here to the answer (or its record): pid 1 waits
       * for that before it serves the thread's next call. */
      sending_mark (req->pid, 1);
      if (ioctl (nfd, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) != 0)
        {
          sending_mark (req->pid, 0);
          return;   /* interrupted: the call starts again, or the command is gone */
        }
      if (ready != 0)
        {
          r = send_msg_send (sock, m, (flags & ~MSG_ZEROCOPY) | MSG_NOSIGNAL | MSG_DONTWAIT);
          if (r >= 0 || (errno != EAGAIN))
            {
              int err = r >= 0 ? 0 : errno;

              if (r >= 0)
                m->len = (size_t) r;
              finish_send (nfd, req, req->data.nr == __NR_sendmmsg ? 1 : r, err, r >= 0 ? 1 : 0, flags);
              sending_mark (req->pid, 0);
              return;
            }
          sending_mark (req->pid, 0);
          /* Writable, yet full (a receiver's queue): not in a busy loop. */
          usleep (backoff);
          backoff = backoff < (killable_recv ? 5000 : 20000) ? backoff + 1000 : backoff;
        }
      clock_gettime (CLOCK_MONOTONIC, &now);
      if (timeout_ms >= 0 &&
          (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 >= timeout_ms)
        {
          answer (nfd, id, 0, EAGAIN);
          return;
        }
    }
}

/* Thread pidfds of the latest senders, kept for their next sends (a
 * pidfd names its one thread for good: once that thread is gone, its
 * calls fail with ESRCH, and a new one is opened). */
#define PIDFD_CACHE 16
static struct { pid_t tid; int fd; } sender_pidfds[PIDFD_CACHE];

/* A copy of descriptor FD of thread TID, and in *PIDFD a pidfd of it
 * that *OWNED says the caller must close; -1 with errno set. */
static int
take_senders_fd (pid_t tid,
                 int   fd,
                 int  *pidfd,
                 int  *owned)
{
  unsigned int slot = (unsigned int) tid % PIDFD_CACHE;
  int of_thread, copy;

  *owned = 0;
  if (sender_pidfds[slot].tid == tid && tid > 1)
    {
      *pidfd = sender_pidfds[slot].fd;
      copy = (int) syscall (SYS_pidfd_getfd, *pidfd, fd, 0);
      if (copy >= 0 || errno != ESRCH)
        return copy;
    }
  if (sender_pidfds[slot].tid != 0)
    {
      close (sender_pidfds[slot].fd);
      sender_pidfds[slot].tid = 0;
    }
  if ((*pidfd = callers_pidfd (tid, &of_thread)) < 0)
    return -1;
  /* A process's pidfd (before Linux 6.9) is not kept: the thread's id
   * may come back in another process. */
  if (of_thread)
    {
      sender_pidfds[slot].tid = tid;
      sender_pidfds[slot].fd = *pidfd;
    }
  else
    *owned = 1;
  return (int) syscall (SYS_pidfd_getfd, *pidfd, fd, 0);
}

/* A sendto() with a destination, a sendmsg() or sendmmsg() of a command:
 * made by pid 1 (see above), which answers it (or a worker does). */
static void
mediate_send (int                          nfd,
              const struct seccomp_notif  *req)
{
  const __u64 *a = req->data.args;
  int nr = req->data.nr, flags, sock = -1, pidfd = -1, pidfd_owned = 0, type = 0, err = 0, nonblocking = -1;
  unsigned int count, n_read = 0, n_filled = 0, sent = 0;
  struct msghdr heads[SEND_MAX_MSGS];
  size_t budget = SEND_MAX_TOTAL;
  int64_t val = 0;
  uint64_t id = req->id;

  if (n_egress == 0)
    {
      /* Nothing to decide: the kernel sends it. */
      struct seccomp_notif_resp resp = { 0 };

      resp.id = id;
      resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
      ioctl (nfd, SECCOMP_IOCTL_NOTIF_SEND, &resp);
      return;
    }

  if (already_sent (req, &val))
    {
      answer (nfd, id, val, 0);
      return;
    }
  flags = (int) (nr == __NR_sendmsg ? a[2] : a[3]);
  count = nr == __NR_sendmmsg ? (unsigned int) a[2] : 1;
  if (count > SEND_MAX_MSGS)
    count = SEND_MAX_MSGS;   /* a short count, as sendmmsg() may give */
  if (count == 0)
    {
      answer (nfd, id, 0, 0);
      return;
    }

  sock = take_senders_fd (req->pid, (int) a[0], &pidfd, &pidfd_owned);
  if (sock < 0 && pidfd < 0)
    {
      answer (nfd, id, 0, ESRCH);
      return;
    }
  if (sock < 0)
    err = errno;

  if (err == 0 && nr == __NR_sendto)
    {
      static struct iovec one;

      memset (heads, 0, sizeof heads[0]);
      one = (struct iovec) { (void *) (uintptr_t) a[1], (size_t) a[2] };
      if (one.iov_len > INT_MAX)
        one.iov_len = INT_MAX;
      heads[0].msg_name = (void *) (uintptr_t) a[4];
      if ((int) a[5] < 0)
        err = EINVAL;
      heads[0].msg_namelen = (socklen_t) a[5];
      heads[0].msg_iov = &one;
      heads[0].msg_iovlen = 1;
    }
  else if (err == 0)
    {
      size_t stride = nr == __NR_sendmmsg ? sizeof (struct mmsghdr) : sizeof (struct msghdr);

      for (unsigned int i = 0; i < count; i++)
        {
          struct iovec local = { &heads[i], sizeof heads[i] };
          struct iovec remote = { (void *) (uintptr_t) (a[1] + i * stride), sizeof heads[i] };

          if (process_vm_readv (req->pid, &local, 1, &remote, 1, 0) != (ssize_t) sizeof heads[i])
            {
              if (i == 0)
                err = EFAULT;
              count = i;
              break;
            }
        }
    }

  for (unsigned int i = 0; err == 0 && i < count; i++)
    {
      int e;

      /* A message that may not fit ends the call early (a short count). */
      if (i > 0 && budget < SEND_MAX_DATA)
        break;
      e = send_msg_read (req->pid, pidfd, sock, &type, &heads[i], nr == __NR_sendto, &send_msgs[i]);
      n_filled = i + 1;
      if (e != 0)
        {
          /* A later message's error ends the call early (sendmmsg()
           * counts what went); the command learns it on its next. */
          if (i == 0)
            err = e;
          break;
        }
      n_read = i + 1;
      budget -= send_msgs[i].len;
    }

  /* Everything read about the command is its own only if it is still
   * waiting in that call (not a recycled pid). */
  if (err == 0 && ioctl (nfd, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) != 0)
    err = ESRCH;

  /* Whether the call may block is asked only when it matters. */
  if (flags & MSG_DONTWAIT)
    nonblocking = 1;
  else if (err == 0 && (flags & MSG_FASTOPEN))
    nonblocking = (fcntl (sock, F_GETFL) & O_NONBLOCK) != 0;
  for (unsigned int i = 0; err == 0 && i < n_read; i++)
    {
      ssize_t r = -1;

      /* A blocking TCP Fast Open send connects first: in a worker. */
      if ((flags & MSG_FASTOPEN) && !nonblocking)
        errno = EAGAIN;
      else
        r = send_msg_send (sock, &send_msgs[i], (flags & ~MSG_ZEROCOPY) | MSG_NOSIGNAL | MSG_DONTWAIT);
      if (r < 0 && errno == EAGAIN && i == 0 && nonblocking < 0)
        {
          int errsv = errno;

          nonblocking = (fcntl (sock, F_GETFL) & O_NONBLOCK) != 0;
          errno = errsv;
        }
      if (r < 0 && errno == EAGAIN && !nonblocking && i == 0)
        {
          /* It would block: a worker waits for the socket. */
          pid_t worker = fork ();

          if (worker == 0)
            {
              int keep[2 + SEND_MAX_FDS], n_keep = 0;

              keep[n_keep++] = nfd;
              keep[n_keep++] = sock;
              for (int k = 0; k < send_msgs[0].n_fds; k++)
                keep[n_keep++] = send_msgs[0].fds[k];
              close_others (keep, n_keep);
              send_worker (nfd, req, sock, flags);
              _exit (0);
            }
          if (worker < 0)
            err = errno;
          else
            goto out;   /* the worker answers */
          break;
        }
      if (r < 0)
        {
          if (i == 0)
            err = errno;
          break;
        }
      sent = i + 1;
      val = nr == __NR_sendmmsg ? (int64_t) sent : (int64_t) r;
      if ((size_t) r < send_msgs[i].len)
        {
          send_msgs[i].len = (size_t) r;
          break;   /* a stream socket's short count: the rest is the command's to send */
        }
    }
  finish_send (nfd, req, val, err, sent, flags);

out:
  for (unsigned int i = 0; i < n_filled; i++)
    send_msg_clear (&send_msgs[i]);
  if (sock >= 0)
    close (sock);
  if (pidfd_owned)
    close (pidfd);
}

/* ------------------------------------------------------------------ */
/* Links, FIFOs and sockets on the commands' behalf (--no-links)       */
/*
 * A spec mount with SANDBOX_MOUNT_NO_LINKS is a read-write host
 * directory that host processes use after the sandbox (the Metaflow
 * datastore): a symbolic link planted there would lead them elsewhere on
 * the host, a FIFO would hang them. Landlock cannot say "not in this
 * mount, yet in /tmp" (a rule on a directory covers everything beneath
 * it), so when the sandbox has such a mount, symlink(), symlinkat(),
 * mknod(), mknodat() and bind() stop in a notification to this process,
 * as connect() does. It resolves the parent directory of the new entry as
 * the caller would (from /proc/TID/cwd, from its own root for an absolute
 * path: the sandbox's processes share it, or from a copy of the caller's
 * directory descriptor), opens it (O_PATH), and decides on that
 * descriptor's mount: one of the NO_LINKS mounts (by mount id,
 * NOLINKS_MNT) refuses with EPERM, except a regular file made by mknod;
 * anywhere else this process makes the entry itself, relative to that
 * very descriptor (symlinkat, mknodat with the caller's umask), and
 * answers with the result. The kernel never resolves the caller's path
 * again, so nothing can be swapped between the check and the call. It
 * acts only for a caller with its own credentials (uid, gid, groups,
 * capabilities), else EPERM: what it makes is owned as the caller's would
 * be. Its own calls carry the cookie (symlinkat's and bind's fourth
 * argument, mknodat's fifth), and a rename() that would
 * leave a whiteout (a 0:0 device node) is refused outright (EPERM).
 *
 * bind() is the exception: the kernel keeps the path a socket is bound
 * to, and programs hand getsockname()'s answer to others (Python's
 * multiprocessing), so this process binds the caller's own path (see
 * bind_checked), in a child that Landlock lets make sockets only beneath
 * the directory it checked (bind_confined): a directory of that path
 * swapped from another thread between the check and the bind makes the
 * bind fail, not a socket file in the mount (short of a NO_LINKS mount
 * below that very directory). A socket file is not followed, and opening
 * one fails at once (ENXIO).
 */

/* Looks up the mount ids of the --no-links paths; -1 if one has none. */
static int
find_nolinks_mounts (void)
{
  for (int i = 0; i < n_nolinks_paths && i < MAX_NOLINKS_MNT; i++)
    {
      struct statx stx;

      if (syscall (SYS_statx, AT_FDCWD, nolinks_paths[i], AT_NO_AUTOMOUNT, STATX_MNT_ID, &stx) != 0)
        return -1;
      if (!(stx.stx_mask & STATX_MNT_ID))
        {
          errno = ENOSYS;
          return -1;
        }
      nolinks_mnt[n_nolinks_mnt++] = stx.stx_mnt_id;
    }
  return 0;
}

/* Whether FD (O_PATH) lies on a NO_LINKS mount; an unknown mount counts
 * as one. */
static int
on_nolinks_mount (int fd)
{
  return mnt_in (fd, nolinks_mnt, n_nolinks_mnt, 1);
}

/* Copies the NUL-terminated string at ADDR in TID's memory into BUF
 * (SIZE bytes, NUL included); returns 0 or an errno. Read page by page:
 * a string may end right before an unmapped page. */
static int
read_remote_string (pid_t     tid,
                    uint64_t  addr,
                    char     *buf,
                    size_t    size)
{
  size_t got = 0;

  if (addr == 0)
    return EFAULT;
  while (got < size)
    {
      size_t chunk = 4096 - (size_t) ((addr + got) & 4095);
      struct iovec local, remote;
      ssize_t n;

      if (chunk > size - got)
        chunk = size - got;
      local = (struct iovec) { buf + got, chunk };
      remote = (struct iovec) { (void *) (uintptr_t) (addr + got), chunk };
      n = process_vm_readv (tid, &local, 1, &remote, 1, 0);
      if (n <= 0)
        return EFAULT;
      if (memchr (buf + got, '\0', (size_t) n) != NULL)
        return 0;
      got += (size_t) n;
    }
  return ENAMETOOLONG;
}

/* The lines of /proc/PID/status that make a process's rights over files,
 * its umask and its thread group. Returns 0, or -1. */
static int
read_creds (const char *status_path,
            char       *creds,
            size_t      size,
            mode_t     *umask_out,
            pid_t      *tgid_out)
{
  static const char * const keys[] = { "\nUid:", "\nGid:", "\nGroups:", "\nCapEff:", "\nCapBnd:" };
  char buf[4096];
  size_t used = 0;
  const char *u;

  if (read_status (status_path, buf, sizeof buf) != 0)
    return -1;
  for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
    {
      const char *line = strstr (buf, keys[k]), *end;

      if (line == NULL || (end = strchr (line + 1, '\n')) == NULL ||
          (size_t) (end - line) >= size - used)
        return -1;
      memcpy (creds + used, line, (size_t) (end - line));
      used += (size_t) (end - line);
    }
  creds[used] = '\0';
  if ((u = status_field (buf, "\nUmask:")) == NULL)
    return -1;
  *umask_out = (mode_t) (strtol (u, NULL, 8) & 0777);
  if ((u = status_field (buf, "\nTgid:")) == NULL)
    return -1;
  *tgid_out = (pid_t) strtol (u, NULL, 10);
  return 0;
}

/* Opens (O_PATH) the directory in which PATH (from the caller TID of
 * process TGID, relative to its descriptor DIRFD; TID 0: this process)
 * would make its entry,
 * and points *NAME at the entry's last component (trailing slashes kept).
 * Returns the descriptor, or -errno. */
static int
open_parent (pid_t   tid,
             pid_t   tgid,
             int     dirfd,
             char   *path,
             char  **name)
{
  char proc[64];
  size_t len = strlen (path), end = len, start;
  int base, dir, err;

  if (len == 0)
    return -ENOENT;
  while (end > 0 && path[end - 1] == '/')
    end--;
  if (end == 0)
    return -EEXIST;   /* "/" */
  start = end;
  while (start > 0 && path[start - 1] != '/')
    start--;
  *name = path + start;

  /* Every process of the sandbox has its root (the sandbox's seccomp
   * filter refuses chroot's way there, a new mount namespace), so an
   * absolute path starts from this process's own. */
  if (path[0] == '/')
    base = open ("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  else if (dirfd == AT_FDCWD && tid == 0)
    base = open (".", O_PATH | O_DIRECTORY | O_CLOEXEC);
  else if (dirfd == AT_FDCWD)
    {
      snprintf (proc, sizeof proc, "/proc/%d/cwd", (int) tid);
      base = open (proc, O_PATH | O_DIRECTORY | O_CLOEXEC);
    }
  else if (tid == 0)
    base = fcntl (dirfd, F_DUPFD_CLOEXEC, 0);
  else
    {
      int pidfd = (int) syscall (SYS_pidfd_open, tgid, 0);
      struct stat st;

      if (pidfd < 0)
        return -ESRCH;
      base = (int) syscall (SYS_pidfd_getfd, pidfd, dirfd, 0);
      err = errno;
      close (pidfd);
      if (base < 0)
        return err == EBADF ? -EBADF : -err;
      if (fstat (base, &st) != 0 || !S_ISDIR (st.st_mode))
        {
          close (base);
          return -ENOTDIR;
        }
    }
  if (base < 0)
    return -errno;
  if (start == 0)
    return base;

  /* The directory part, from there; "/a/b/c" keeps "a/b/" (a leading "/"
   * means the caller's root, which BASE is). */
  {
    char saved = path[start];
    const char *rel = path;

    path[start] = '\0';
    while (*rel == '/')
      rel++;
    dir = *rel == '\0' ? dup (base) : openat (base, rel, O_PATH | O_DIRECTORY | O_CLOEXEC);
    err = errno;
    path[start] = saved;
    close (base);
    return dir >= 0 ? dir : -err;
  }
}

/* Binds SOCK (a copy of the caller TID's socket) to the caller's own
 * address ADDR (ADDR_LEN bytes; its path PATH, whose entry NAME is to be
 * made in DIR, checked already), so that getsockname() returns what the
 * caller asked for (Python's multiprocessing hands that address to the
 * processes that connect). The kernel resolves the path again: for a bare
 * name, from DIR itself (this process's cwd for the call), with no gap;
 * for a path with directories, from the caller's cwd, then DIR must hold
 * a socket of that name, else EPERM (a directory was swapped meanwhile).
 * Returns 0, or -1 with errno set. */
static int
bind_checked (pid_t                     tid,
              int                       sock,
              const struct sockaddr_un *addr,
              socklen_t                 addr_len,
              const char               *path,
              const char               *name,
              int                       dir,
              int                       caller_cwd)
{
  struct stat st;
  char proc[64];
  int cwd = -1, r, errsv;

  if (name == path)
    cwd = dup (dir);
  else if (path[0] != '/' && caller_cwd >= 0)
    cwd = dup (caller_cwd);
  else if (path[0] != '/')
    {
      snprintf (proc, sizeof proc, "/proc/%d/cwd", (int) tid);
      cwd = open (proc, O_PATH | O_DIRECTORY | O_CLOEXEC);
    }
  if ((name == path || path[0] != '/') && (cwd < 0 || fchdir (cwd) != 0))
    {
      errsv = errno;
      if (cwd >= 0)
        close (cwd);
      errno = errsv;
      return -1;
    }
  r = (int) syscall (SYS_bind, sock, addr, addr_len, cookie, 0, 0);
  errsv = errno;
  if (cwd >= 0)
    {
      close (cwd);
      if (chdir ("/") != 0)
        _exit (125);
    }
  if (r == 0 && name != path &&
      (fstatat (dir, name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISSOCK (st.st_mode)))
    {
      r = -1;
      errsv = EPERM;
    }
  errno = errsv;
  return r;
}

static int bind_confined (pid_t                     tid,
                          int                       sock,
                          const struct sockaddr_un *addr,
                          socklen_t                 addr_len,
                          const char               *path,
                          const char               *name,
                          int                       dir);

/* Works out which symlink/mknod/bind the command asked for and makes the
 * entry itself; returns 0 or an errno for the answer. */
static int
mediate_create (int                          nfd,
                const struct seccomp_notif  *req)
{
  static char path[4096 + 1], target[4096 + 1];
  static char own_creds[2048], creds[2048];
  static mode_t own_umask;
  const __u64 *a = req->data.args;
  int nr = req->data.nr, dirfd = AT_FDCWD, dir = -1, sock = -1, err = 0;
  uint64_t path_addr = 0, id = req->id;
  mode_t mode = 0, caller_umask = 022;
  dev_t dev = 0;
  char *name = NULL, proc[64];
  union { struct sockaddr sa; struct sockaddr_un un; struct sockaddr_storage ss; } addr;
  socklen_t addr_len = 0;
  pid_t tgid;

  /* This process's own, read once: they do not change. */
  if (own_creds[0] == '\0' &&
      read_creds ("/proc/self/status", own_creds, sizeof own_creds, &own_umask, &tgid) != 0)
    {
      own_creds[0] = '\0';
      return ESRCH;
    }
  snprintf (proc, sizeof proc, "/proc/%d/status", (int) req->pid);
  if (read_creds (proc, creds, sizeof creds, &caller_umask, &tgid) != 0)
    return ESRCH;
  /* Tgid 1 is pid 1, whose own calls never stop here. */
  if (tgid <= 1)
    return ESRCH;
  if (strcmp (own_creds, creds) != 0)
    return EPERM;   /* not with rights it does not have */

  switch (nr)
    {
#ifdef __NR_symlink
    case __NR_symlink:
      err = read_remote_string (req->pid, a[0], target, sizeof target);
      path_addr = a[1];
      break;
#endif
    case __NR_symlinkat:
      err = read_remote_string (req->pid, a[0], target, sizeof target);
      dirfd = (int) a[1];
      path_addr = a[2];
      break;
#ifdef __NR_mknod
    case __NR_mknod:
      path_addr = a[0];
      mode = (mode_t) a[1];
      dev = (dev_t) (unsigned int) a[2];
      break;
#endif
    case __NR_mknodat:
      dirfd = (int) a[0];
      path_addr = a[1];
      mode = (mode_t) a[2];
      dev = (dev_t) (unsigned int) a[3];
      break;
    case __NR_bind:
      {
        int pidfd;
        int domain = 0;
        socklen_t domain_len = sizeof domain;
        struct iovec local, remote;

        addr_len = (socklen_t) a[2];
        if ((uint64_t) addr_len != a[2] || addr_len > sizeof addr.ss)
          return EINVAL;
        memset (&addr, 0, sizeof addr);
        local = (struct iovec) { &addr, addr_len };
        remote = (struct iovec) { (void *) (uintptr_t) a[1], addr_len };
        if (addr_len > 0 && process_vm_readv (req->pid, &local, 1, &remote, 1, 0) != (ssize_t) addr_len)
          return EFAULT;
        if ((pidfd = (int) syscall (SYS_pidfd_open, tgid, 0)) < 0)
          return ESRCH;
        sock = (int) syscall (SYS_pidfd_getfd, pidfd, (int) a[0], 0);
        err = sock < 0 ? errno : 0;
        close (pidfd);
        if (err == 0 && getsockopt (sock, SOL_SOCKET, SO_DOMAIN, &domain, &domain_len) != 0)
          err = errno;
        /* A path: its last component is bound from its directory. */
        if (err == 0 && domain == AF_UNIX && addr_len > offsetof (struct sockaddr_un, sun_path) &&
            addr.sa.sa_family == AF_UNIX && addr.un.sun_path[0] != '\0')
          {
            size_t path_len = addr_len - offsetof (struct sockaddr_un, sun_path);

            memcpy (path, addr.un.sun_path, path_len);
            path[path_len] = '\0';
            path_addr = 1;   /* the path is in PATH already */
          }
        break;
      }
    default:
      return ENOSYS;
    }

  if (err == 0 && path_addr > 1)
    err = read_remote_string (req->pid, path_addr, path, sizeof path);
  if (err == 0 && path_addr != 0)
    {
      dir = open_parent (req->pid, tgid, dirfd, path, &name);
      if (dir < 0)
        err = -dir;
      else if (on_nolinks_mount (dir) &&
               !((nr == __NR_mknodat
#ifdef __NR_mknod
                  || nr == __NR_mknod
#endif
                 ) && ((mode & S_IFMT) == 0 || (mode & S_IFMT) == S_IFREG)))
        err = EPERM;
    }

  /* Everything read about the command is its own only if it is still
   * waiting in that call (not a recycled pid). */
  if (ioctl (nfd, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) != 0)
    err = ESRCH;

  if (err == 0)
    {
      long r;

      umask (caller_umask);
      if (nr == __NR_bind && dir < 0)
        r = syscall (SYS_bind, sock, &addr.sa, addr_len, cookie, 0, 0);
      else if (nr == __NR_bind)
        r = bind_confined (req->pid, sock, &addr.un, addr_len, path, name, dir);
      else if (nr == __NR_symlinkat
#ifdef __NR_symlink
               || nr == __NR_symlink
#endif
              )
        r = syscall (SYS_symlinkat, target, dir, name, cookie, 0, 0);
      else
        r = syscall (SYS_mknodat, dir, name, mode, dev, cookie, 0);
      err = r == 0 ? 0 : errno;
      umask (own_umask);
    }
  if (dir >= 0)
    close (dir);
  if (sock >= 0)
    close (sock);
  return err;
}

/* The file service's own symlink(): the same rule, for a link the
 * sandbox's owner uploads (a path there could lead into a NO_LINKS
 * mount through a link the sandbox made). Returns 0 or -1 with errno. */
static int
symlink_checked (const char *target,
                 char       *path)
{
  char *name = NULL;
  int dir, r, errsv;

  if (n_nolinks_mnt == 0)
    return symlink (target, path);
  dir = open_parent (0, 0, AT_FDCWD, path, &name);
  if (dir < 0)
    {
      errno = -dir;
      return -1;
    }
  if (on_nolinks_mount (dir))
    {
      close (dir);
      errno = EPERM;
      return -1;
    }
  r = (int) syscall (SYS_symlinkat, target, dir, name, cookie, 0, 0);
  errsv = errno;
  close (dir);
  errno = errsv;
  return r;
}

/* ------------------------------------------------------------------ */
/* Landlock                                                            */
/*
 * Before it serves anything, pid 1 puts itself, and so every process of
 * the sandbox (each inherits the domain, none can leave it), in a Landlock
 * domain. Its own connect() on a command's behalf and the file service are
 * in it too.
 *
 * Scopes (ABI 6, Linux 6.12). With `network` the host's network namespace
 * is shared, and with it the host's abstract UNIX sockets (D-Bus, X11,
 * private ones), which no file mode protects: an abstract socket made
 * outside the sandbox now refuses a connection from inside. Signals reach
 * only processes of the sandbox (the pid namespace already hides the
 * others; this holds for a pidfd or F_SETOWN too).
 *
 * Writes (ABI 2, Linux 5.19). The host's root is bound read-only, which
 * stops writing its files but not opening its FIFOs and devices for
 * writing: a host service's named pipe that the caller's uid may write
 * would take the sandbox's input. So opening a file for writing is allowed
 * only beneath the sandbox's own mounts (ALLOWED_DIRS, the same as for
 * sockets, without the root tmpfs: /tmp, /run, /dev, the workdir, the
 * spec's mounts...) and /proc: everywhere else the mount is read-only
 * anyway. REFER is handled (and granted everywhere) because a ruleset that
 * handles any file access otherwise refuses every rename and link across
 * directories; an image root (no ALLOWED_DIRS) shows no host file and gets
 * the scopes only.
 *
 * On a kernel without these, or with Landlock off, the sandbox runs
 * without them (docs/security.md says what is then reachable). The kernel
 * headers of the build machine may predate the fields: the layouts are
 * ABI-stable, so they are spelled out here. */
struct sbx_landlock_ruleset_attr
{
  uint64_t handled_access_fs;
  uint64_t handled_access_net;
  uint64_t scoped;
};

struct sbx_landlock_path_beneath_attr
{
  uint64_t allowed_access;
  int32_t  parent_fd;
} __attribute__((packed));

#define SBX_LANDLOCK_CREATE_RULESET_VERSION     (1U << 0)
#define SBX_LANDLOCK_RESTRICT_SELF_LOG_SAME_EXEC_OFF (1U << 0)
#define SBX_LANDLOCK_RULE_PATH_BENEATH          1
#define SBX_LANDLOCK_ACCESS_FS_WRITE_FILE       (1ULL << 1)
#define SBX_LANDLOCK_ACCESS_FS_REFER            (1ULL << 13)
#define SBX_LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0)
#define SBX_LANDLOCK_SCOPE_SIGNAL               (1ULL << 1)

#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#endif
#ifndef SYS_landlock_add_rule
#define SYS_landlock_add_rule 445
#endif
#ifndef SYS_landlock_restrict_self
#define SYS_landlock_restrict_self 446
#endif

#define SBX_LANDLOCK_ACCESS_FS_MAKE_SOCK        (1ULL << 9)

/* bind_checked, in a child that Landlock lets make a socket only beneath
 * DIR, the directory checked (not on a NO_LINKS mount): the kernel
 * resolves the caller's path again to bind it, and a directory of that
 * path swapped meanwhile for a link into a NO_LINKS mount (renameat2
 * RENAME_EXCHANGE from another thread) had the socket file made there
 * (22 of 3,000 binds); now that bind fails (EACCES) and makes nothing.
 * Without Landlock, as before. Returns 0, or -1 with errno set. */
static int
bind_confined (pid_t                     tid,
               int                       sock,
               const struct sockaddr_un *addr,
               socklen_t                 addr_len,
               const char               *path,
               const char               *name,
               int                       dir)
{
  long abi = syscall (SYS_landlock_create_ruleset, NULL, 0, SBX_LANDLOCK_CREATE_RULESET_VERSION);
  int status = 0;
  pid_t child;

  if (abi < 1)
    return bind_checked (tid, sock, addr, addr_len, path, name, dir, -1);
  child = fork ();
  if (child == 0)
    {
      struct sbx_landlock_ruleset_attr attr = { 0 };
      struct sbx_landlock_path_beneath_attr rule = { SBX_LANDLOCK_ACCESS_FS_MAKE_SOCK, dir };
      int ruleset, caller_cwd = -1;

      /* Before the domain, which may not look into the caller's /proc. */
      if (name != path && path[0] != '/')
        {
          char proc[64];

          snprintf (proc, sizeof proc, "/proc/%d/cwd", (int) tid);
          if ((caller_cwd = open (proc, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
            _exit (errno > 0 && errno < 256 ? errno : EPERM);
        }

      attr.handled_access_fs = SBX_LANDLOCK_ACCESS_FS_MAKE_SOCK;
      ruleset = (int) syscall (SYS_landlock_create_ruleset, &attr, sizeof attr.handled_access_fs, 0);
      if (ruleset < 0 ||
          syscall (SYS_landlock_add_rule, ruleset, SBX_LANDLOCK_RULE_PATH_BENEATH, &rule, 0) != 0 ||
          syscall (SYS_landlock_restrict_self, ruleset,
                   abi >= 7 ? SBX_LANDLOCK_RESTRICT_SELF_LOG_SAME_EXEC_OFF : 0) != 0)
        _exit (EPERM);
      if (bind_checked (tid, sock, addr, addr_len, path, name, dir, caller_cwd) == 0)
        _exit (0);
      _exit (errno > 0 && errno < 256 ? errno : EPERM);
    }
  if (child < 0)
    return -1;
  while (waitpid (child, &status, 0) < 0)
    if (errno != EINTR)
      {
        errno = EPERM;
        return -1;
      }
  if (!WIFEXITED (status))
    {
      errno = EPERM;
      return -1;
    }
  if (WEXITSTATUS (status) != 0)
    {
      errno = WEXITSTATUS (status);
      return -1;
    }
  return 0;
}

static char **allowed_dirs;      /* the sandbox's own mounts, or NULL */
static int n_allowed_dirs;

static void
landlock_allow (int         ruleset,
                const char *path,
                uint64_t    access)
{
  struct sbx_landlock_path_beneath_attr rule = { access, -1 };

  rule.parent_fd = open (path, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rule.parent_fd < 0)
    return;   /* not there: nothing to allow */
  syscall (SYS_landlock_add_rule, ruleset, SBX_LANDLOCK_RULE_PATH_BENEATH, &rule, 0);
  close (rule.parent_fd);
}

/* Returns the Landlock ABI of the domain now enforced, or 0 when none
 * could be (no Landlock, or nothing this kernel can restrict). */
static int
restrict_sandbox (void)
{
  struct sbx_landlock_ruleset_attr attr = { 0 };
  long abi = syscall (SYS_landlock_create_ruleset, NULL, 0, SBX_LANDLOCK_CREATE_RULESET_VERSION);
  const uint64_t write = SBX_LANDLOCK_ACCESS_FS_WRITE_FILE | SBX_LANDLOCK_ACCESS_FS_REFER;
  int ruleset, ok;

  if (abi >= 2 && allowed_dirs != NULL)
    attr.handled_access_fs = write;
  if (abi >= 6)
    attr.scoped = SBX_LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | SBX_LANDLOCK_SCOPE_SIGNAL;
  if (attr.handled_access_fs == 0 && attr.scoped == 0)
    return 0;
  ruleset = (int) syscall (SYS_landlock_create_ruleset, &attr,
                           abi >= 6 ? sizeof attr : offsetof (struct sbx_landlock_ruleset_attr, scoped), 0);
  if (ruleset < 0)
    return 0;
  if (attr.handled_access_fs != 0)
    {
      landlock_allow (ruleset, "/", SBX_LANDLOCK_ACCESS_FS_REFER);
      landlock_allow (ruleset, "/proc", write);
      for (int i = 0; i < n_allowed_dirs; i++)
        if (strcmp (allowed_dirs[i], "/") != 0)
          landlock_allow (ruleset, allowed_dirs[i], write);
    }
  /* ABI 7 logs denials of the restricting program to the audit log: a
   * command could make pid 1 (its connect() on the command's behalf) log
   * one per call. Denials of the commands themselves are not logged by
   * default (another executable). */
  ok = syscall (SYS_landlock_restrict_self, ruleset,
                abi >= 7 ? SBX_LANDLOCK_RESTRICT_SELF_LOG_SAME_EXEC_OFF : 0) == 0;
  close (ruleset);
  return ok ? (int) abi : 0;
}

static void
serve_listener (int nfd)
{
  struct seccomp_notif req;
  struct seccomp_notif_resp resp;
  int answered = 0;

  memset (&req, 0, sizeof req);
  if (ioctl (nfd, SECCOMP_IOCTL_NOTIF_RECV, &req) != 0)
    return;   /* the caller went away (a signal, or it died) */
  memset (&resp, 0, sizeof resp);
  resp.id = req.id;
  if (req.data.nr == __NR_connect)
    resp.error = -mediate_connect (nfd, &req, &answered);
  else if (req.data.nr == __NR_symlinkat || req.data.nr == __NR_mknodat || req.data.nr == __NR_bind
#ifdef __NR_symlink
           || req.data.nr == __NR_symlink || req.data.nr == __NR_mknod
#endif
          )
    resp.error = -mediate_create (nfd, &req);
  else if (req.data.nr == __NR_setsockopt)
    resp.error = -mediate_reuseaddr (nfd, &req);
  else if (req.data.nr == __NR_sendto || req.data.nr == __NR_sendmsg || req.data.nr == __NR_sendmmsg)
    {
      mediate_send (nfd, &req);
      answered = 1;
    }
  else
    resp.error = -ENOSYS;
  if (!answered)
    ioctl (nfd, SECCOMP_IOCTL_NOTIF_SEND, &resp);
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
            err = symlink_checked (target, path);
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

/* ------------------------------------------------------------------ */
/* Commands on a terminal (SBX_MAGIC_TTY)                              */
/*
 * The terminal is a new pseudo-terminal of the sandbox's own devpts
 * instance (bwrap --dev): never one of the host's, whose TIOCSTI would type
 * commands on the host. The master side goes to the client, which is on
 * the host; the command gets only the slave side. The slave is taken with
 * TIOCGPTPEER from the master itself, so no path of the sandbox (which its
 * processes could swap) decides which terminal it is.
 */

/* Opens the sandbox's ptmx; returns the master, or -1 with errno set. */
static int
open_pty_master (unsigned short rows,
                 unsigned short cols)
{
  struct winsize ws = { rows, cols, 0, 0 };
  struct stat st;
  int unlock = 0;
  int master = open ("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);

  if (master < 0)
    return -1;
  /* Only a multiplexer (5:2) hands out terminals; anything else planted
   * at that path is refused. */
  if (fstat (master, &st) != 0 || !S_ISCHR (st.st_mode) ||
      major (st.st_rdev) != 5 || minor (st.st_rdev) != 2)
    {
      close (master);
      errno = ENOTTY;
      return -1;
    }
  if (ioctl (master, TIOCSPTLCK, &unlock) != 0 || ioctl (master, TIOCSWINSZ, &ws) != 0)
    {
      int errsv = errno;

      close (master);
      errno = errsv;
      return -1;
    }
  return master;
}

/* Sends SBX_REPLY_PTY with MASTER attached. */
static int
send_pty (int conn,
          int master)
{
  static const char line[] = SBX_REPLY_PTY "\n";

  return send_with_fd (conn, line, sizeof line - 1, master, MSG_NOSIGNAL) == (ssize_t) (sizeof line - 1) ? 0 : -1;
}

/* In the forked child, a session leader without a terminal: makes the
 * terminal, hands its master to the client, and makes the slave the
 * controlling terminal and stdin, stdout and stderr. Exits on failure. */
static int
setup_tty (int         conn,
           const char *rows_s,
           const char *cols_s)
{
  long rows = rows_s ? strtol (rows_s, NULL, 10) : 0;
  long cols = cols_s ? strtol (cols_s, NULL, 10) : 0;
  int master, slave;

  if (rows < 1 || rows > 65535 || cols < 1 || cols > 65535)
    {
      report (conn, SBX_REPLY_ERROR " request", EPROTO);
      _exit (127);
    }
  master = open_pty_master ((unsigned short) rows, (unsigned short) cols);
  if (master < 0 ||
      (slave = ioctl (master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0)
    {
      report (conn, SBX_REPLY_ERROR " pty", errno);
      _exit (127);
    }
  if (send_pty (conn, master) != 0)
    _exit (127);
  if (ioctl (slave, TIOCSCTTY, 0) != 0)
    {
      report (conn, SBX_REPLY_ERROR " pty", errno);
      _exit (127);
    }
  for (int i = 0; i < 3; i++)
    if (dup2 (slave, i) < 0)
      {
        report (conn, SBX_REPLY_ERROR " pty", errno);
        _exit (127);
      }
  close (slave);
  return master;
}

/* The signals a terminal sends its foreground process group, which the
 * holder below shares with the command, and those a caller sends that
 * group (sandbox_command_send_signal): the command's to handle, not the
 * holder's, which must live to report how the command ended. */
static const int tty_signals[] = {
  SIGINT, SIGQUIT, SIGTSTP, SIGTTIN, SIGTTOU, SIGHUP, SIGTERM, SIGUSR1, SIGUSR2, SIGALRM, SIGPIPE,
};

/* In the forked child, after setup_tty: forks the command, which returns
 * from here, while this process stays the terminal's session leader until
 * the command has ended and its output has left the terminal. When a
 * session leader exits, the kernel hangs its terminal up, and a hang-up
 * discards what the command wrote that had not yet reached the master's
 * side: a command that ends right after its last write (`echo hi`) lost
 * its output when the host was busy. This process keeps MASTER only to
 * see that the client has read what is there (TIOCINQ), then exits as
 * the command did. It shares the command's process group, so ending the
 * exec (a kill of the group) ends both; it ignores the terminal's own
 * signals (Ctrl-C is for the command). */
static void
hold_tty (int conn,
          int master)
{
  struct rlimit no_core = { 0, 0 };
  sigset_t none;
  pid_t pid;
  int status, quiet = 0;

  for (size_t i = 0; i < sizeof tty_signals / sizeof tty_signals[0]; i++)
    signal (tty_signals[i], SIG_IGN);
  pid = fork ();
  if (pid < 0)
    {
      report (conn, SBX_REPLY_ERROR " pty", errno);
      _exit (127);
    }
  if (pid == 0)
    {
      for (size_t i = 0; i < sizeof tty_signals / sizeof tty_signals[0]; i++)
        signal (tty_signals[i], SIG_DFL);
      close (master);
      return;
    }

  close (conn);
  for (int fd = 0; fd < 3; fd++)
    close (fd);
  while (waitpid (pid, &status, 0) < 0)
    if (errno != EINTR)
      _exit (127);
  /* Until the master has held nothing unread for 20 ms (the kernel moves
   * the command's last bytes to it a moment after the write), or 10 s
   * for a client that does not read. */
  for (int i = 0; i < 2000 && quiet < 4; i++)
    {
      int unread = 0;

      if (ioctl (master, TIOCINQ, &unread) != 0)
        break;
      quiet = unread == 0 ? quiet + 1 : 0;
      usleep (5000);
    }
  if (WIFEXITED (status))
    _exit (WEXITSTATUS (status));
  if (WIFSIGNALED (status))
    {
      /* End as the command did, without a core of this process. */
      setrlimit (RLIMIT_CORE, &no_core);
      signal (WTERMSIG (status), SIG_DFL);
      sigemptyset (&none);
      sigprocmask (SIG_SETMASK, &none, NULL);
      /* kill (getpid ()), not raise (): this process was made by the
       * spawner's raw clone, after which musl's raise () would signal the
       * spawner (the thread id it keeps is the parent's); glibc's asks
       * the kernel. */
      kill (getpid (), WTERMSIG (status));
      _exit (128 + WTERMSIG (status));
    }
  _exit (127);
}

/* execvp, as glibc's: a file found that is not a binary nor has "#!" (ENOEXEC)
 * runs through /bin/sh, as POSIX asks. musl's execvp does not do that;
 * the helper is built with either (configure --with-musl), and commands
 * must behave the same. Returns only on error, with errno set. */
static void
exec_command (char **argv)
{
  execvp (argv[0], argv);
#ifndef __GLIBC__
  if (errno == ENOEXEC)
    {
      static char candidate[SBX_PATH_MAX + 1];
      const char *path = getenv ("PATH");
      const char *p = path != NULL ? path : "/bin:/usr/bin";
      size_t argc = 0;
      char **sh_argv;

      while (argv[argc] != NULL)
        argc++;
      if ((sh_argv = calloc (argc + 2, sizeof (char *))) == NULL)
        {
          errno = ENOEXEC;
          return;
        }
      sh_argv[0] = (char *) "/bin/sh";
      for (size_t i = 1; i < argc; i++)
        sh_argv[i + 1] = argv[i];
      if (strchr (argv[0], '/') != NULL)
        {
          sh_argv[1] = argv[0];
          execv ("/bin/sh", sh_argv);
        }
      else
        for (;;)
          {
            const char *end = strchrnul (p, ':');
            size_t len = (size_t) (end - p);

            if (len + 1 + strlen (argv[0]) < sizeof candidate)
              {
                memcpy (candidate, p, len);
                candidate[len] = '/';
                strcpy (candidate + len + 1, argv[0]);
                if (access (candidate, X_OK) == 0)
                  {
                    sh_argv[1] = candidate;
                    execv ("/bin/sh", sh_argv);
                    break;
                  }
              }
            if (*end == '\0')
              break;
            p = end + 1;
          }
      free (sh_argv);
      errno = ENOEXEC;
    }
#endif
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
  int is_tty;

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
  /* pid 1 checked the secret before it passed the connection on; the
   * spawner does not know it (start_spawner). */
  if (n != (ssize_t) sizeof header || (!in_spawner && !token_ok (header)))
    _exit (127);   /* not our client: no answer */
  /* The header carries the sandbox's secret, which nothing here needs
   * again: a terminal's holder (hold_tty) keeps this memory beside the
   * command, in its domain, for as long as the command runs. */
  explicit_bzero (header + SBX_MAGIC_LEN + 4, SBX_TOKEN_HEX);
  for (cmsg = CMSG_FIRSTHDR (&msg); cmsg != NULL; cmsg = CMSG_NXTHDR (&msg, cmsg))
    if (cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS &&
        cmsg->cmsg_len == CMSG_LEN (3 * sizeof (int)))
      memcpy (fds, CMSG_DATA (cmsg), sizeof fds);
  {
    /* The server's other descriptors (other clients' connections among
     * them, whose end-of-file tells those clients their command ended)
     * are not this child's to keep. */
    int keep[4] = { conn, fds[0], fds[1], fds[2] };

    close_others (keep, 4);
  }
  /* An end request never comes here: pid 1 serves it (dispatch). */
  if (memcmp (header, SBX_MAGIC_FILES, SBX_MAGIC_LEN) == 0)
    serve_files (conn);
  is_tty = memcmp (header, SBX_MAGIC_TTY, SBX_MAGIC_LEN) == 0;
  if (!is_tty && memcmp (header, SBX_MAGIC_EXEC, SBX_MAGIC_LEN) != 0)
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
  if (is_tty)
    {
      char *rows = next_string (&p, payload + len);
      char *cols = next_string (&p, payload + len);

      hold_tty (conn, setup_tty (conn, rows, cols));
    }

  if (chdir (cwd) != 0)
    {
      report (conn, SBX_REPLY_ERROR " chdir", errno);
      _exit (127);
    }
  environ = envp;
  if (nofile_for_command () != 0)
    {
      report (conn, SBX_REPLY_ERROR " exec", errno);
      _exit (127);
    }
  exec_command (argv);
  report (conn, SBX_REPLY_ERROR " exec", errno);
  _exit (127);
}

/* ------------------------------------------------------------------ */
/* The command spawner                                                 */
/*
 * The commands run as the same user as pid 1 and the processes it forks to
 * serve the host (the file service, the connect workers): in one Landlock
 * domain with them, a command could stop or kill them (a stopped file
 * service hangs the host's transfers). So the commands get a domain of
 * their own, nested in pid 1's: pid 1 forks one spawner at the start,
 * which restricts itself further (signal and abstract-socket scopes) and
 * then makes every command. A process may signal, trace, or take the
 * descriptors of (pidfd_getfd, /proc/PID/fd, mem) only processes of its
 * own domain or of one nested in it: commands reach each other (one
 * exec's `kill` of another's process works as before), never pid 1 or
 * its helpers. pid 1 still signals and reaps them all.
 *
 * The spawner makes each command with CLONE_PARENT, so that the command is
 * pid 1's child, reaped by pid 1 as before: pid 1 sends it the connection,
 * and it answers the command's pid. A command that ends (or is killed by
 * a sibling) before its pid comes is reaped all the same: its status is
 * kept (unclaimed) until the answer comes. The spawner is in the commands' domain: a command can stop or kill it, which
 * only holds up its own sandbox's next commands (pid 1 sends it SIGCONT
 * while a spawn waits, and makes a new one if it dies).
 *
 * A one-shot sandbox (sandbox_backend_run, `sandboxctl run`) has one
 * command, which pid 1 forks itself (dispatch): the spawner's fork and
 * exec, its round trip and its end would double the time pid 1 takes to
 * start a short command and to report its end. That command gets a domain
 * of its own like the spawner's; a spawner is made only if another
 * command comes (`sandboxctl exec` into it), whose commands then do not
 * reach the first one's processes. */

/* Puts the calling process in a nested domain that scopes signals and
 * abstract UNIX sockets to it (and, as every Landlock domain, ptrace). */
static void
restrict_commands (void)
{
  struct sbx_landlock_ruleset_attr attr = { 0 };
  long abi = syscall (SYS_landlock_create_ruleset, NULL, 0, SBX_LANDLOCK_CREATE_RULESET_VERSION);
  int ruleset;

  if (abi < 6)
    return;
  attr.scoped = SBX_LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | SBX_LANDLOCK_SCOPE_SIGNAL;
  /* A layer that does not handle REFER refuses every rename and link
   * across directories (EXDEV, Landlock's ABI-1 rule), also when it
   * handles no file access at all: handled, and granted everywhere. */
  attr.handled_access_fs = SBX_LANDLOCK_ACCESS_FS_REFER;
  ruleset = (int) syscall (SYS_landlock_create_ruleset, &attr, sizeof attr, 0);
  if (ruleset < 0)
    return;
  landlock_allow (ruleset, "/", SBX_LANDLOCK_ACCESS_FS_REFER);
  syscall (SYS_landlock_restrict_self, ruleset,
           abi >= 7 ? SBX_LANDLOCK_RESTRICT_SELF_LOG_SAME_EXEC_OFF : 0);
  close (ruleset);
}

/* Receives one message of at most LEN bytes into BUF with up to N_FDS (at
 * most 2) descriptors; returns the number of bytes (0 at end-of-file, -1
 * on error). */
static ssize_t
recv_fds (int     sock,
          void   *buf,
          size_t  len,
          int    *fds,
          int     n_fds)
{
  union { char buf[CMSG_SPACE (2 * sizeof (int))]; struct cmsghdr align; } control;
  struct iovec iov = { buf, len };
  struct msghdr msg = { 0 };
  struct cmsghdr *cmsg;
  ssize_t n;

  for (int i = 0; i < n_fds; i++)
    fds[i] = -1;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.buf;
  msg.msg_controllen = sizeof control.buf;
  do
    n = recvmsg (sock, &msg, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  for (cmsg = CMSG_FIRSTHDR (&msg); n > 0 && cmsg != NULL; cmsg = CMSG_NXTHDR (&msg, cmsg))
    if (cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS)
      {
        int got = (int) ((cmsg->cmsg_len - CMSG_LEN (0)) / sizeof (int));

        for (int i = 0; i < got; i++)
          {
            int fd;

            memcpy (&fd, CMSG_DATA (cmsg) + i * sizeof (int), sizeof fd);
            if (i < n_fds)
              fds[i] = fd;
            else
              close (fd);
          }
      }
  return n;
}

/* What the spawner's socket carries back to pid 1: the pid of the command
 * made for request SEQ (or -errno: none was made). The spawner sends it
 * after its clone, and the command itself before it reads its request
 * (run_spawner): pid 1 takes the first, and knows, once it has shut its
 * side for reading and taken what is queued, which requests a command may
 * have read (lost_spawner). */
typedef struct
{
  int32_t  answer;
  uint32_t unused;
  uint64_t seq;
} SpawnAnswer;

static void __attribute__((noreturn))
run_spawner (int sock)
{
  int keep[1] = { sock };
  sigset_t none;

  close_others (keep, 1);
  /* Told apart from pid 1's helpers in ps (a command is named so until
   * its exec). */
  prctl (PR_SET_NAME, "sandbox-spawner", 0, 0, 0);
  signal (SIGCHLD, SIG_DFL);
  signal (SIGUSR1, SIG_DFL);
  signal (SIGPIPE, SIG_IGN);
  sigemptyset (&none);
  sigprocmask (SIG_SETMASK, &none, NULL);
  restrict_commands ();
  for (;;)
    {
      int fds[1];   /* the connection */
      uint64_t seq = 0;
      ssize_t n = recv_fds (sock, &seq, sizeof seq, fds, 1);
      SpawnAnswer answer = { 0, 0, 0 };
      pid_t pid;

      if (n <= 0)
        _exit (0);   /* pid 1 is gone */
      answer.seq = seq;
      if (fds[0] < 0 || n != (ssize_t) sizeof seq)
        answer.answer = -EPROTO;
      else if ((pid = (pid_t) syscall (SYS_clone, CLONE_PARENT | SIGCHLD, 0, 0, 0, 0)) == 0)
        {
          SpawnAnswer me = { (int32_t) syscall (SYS_getpid), 0, seq };

          /* Told to pid 1 before the request is read, or never read: once
           * this spawner is gone, pid 1 shuts the socket for reading and
           * hands every request no command told it of to the next spawner
           * (lost_spawner); a command that comes too late ends here. */
          if (send (sock, &me, sizeof me, MSG_NOSIGNAL) != (ssize_t) sizeof me)
            _exit (127);
          close (sock);
          signal (SIGPIPE, SIG_DFL);
          run_command (fds[0]);
        }
      else
        answer.answer = pid > 0 ? (int32_t) pid : -errno;
      if (fds[0] >= 0)
        close (fds[0]);
      if (send (sock, &answer, sizeof answer, MSG_NOSIGNAL) != (ssize_t) sizeof answer)
        _exit (0);
    }
}

/* Forks the spawner; returns 0, or -1 with errno set. */
static int
start_spawner (void)
{
  int pair[2];

  if (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0)
    return -1;
  spawner = fork ();
  if (spawner == 0)
    {
      /* A new image of this program, not a copy of pid 1: the spawner is
       * in the commands' domain (they may signal it), and pid 1's memory
       * holds the sandbox's secret and the cookie that lets a connect(),
       * symlink() or sendmsg() past pid 1's checks. Not dumpable, it could
       * not be traced, but a command could make it dump core (SIGSEGV),
       * which a host with fs.suid_dumpable=2 writes for its crash handler
       * (apport, systemd-coredump) where a root caller's sandbox reads it.
       * Until the new image makes itself not dumpable it is still in pid
       * 1's Landlock domain, out of the commands' reach. */
      char fd_arg[16], soft_arg[24], hard_arg[24];
      char *args[] = { (char *) "sandbox-spawner", (char *) "--spawner", fd_arg, soft_arg, hard_arg, NULL };

      close (pair[0]);
      fcntl (pair[1], F_SETFD, 0);
      snprintf (fd_arg, sizeof fd_arg, "%d", pair[1]);
      /* The commands' descriptor limits (nofile_split). */
      snprintf (soft_arg, sizeof soft_arg, "%llu", (unsigned long long) cmd_nofile_soft);
      snprintf (hard_arg, sizeof hard_arg, "%llu", (unsigned long long) cmd_nofile_hard);
      execv ("/proc/self/exe", args);
      _exit (127);
    }
  close (pair[1]);
  if (spawner < 0)
    {
      int errsv = errno;

      close (pair[0]);
      errno = errsv;
      return -1;
    }
  spawner_sock = pair[0];
  return 0;
}

static void
remove_job (size_t i)
{
  if (jobs[i].pid == JOB_SPAWNING)
    n_spawning--;
  /* A one-shot sandbox has nothing left to do: it ends, and its
   * connection stays open until end_sandbox has reaped everything. */
  if (jobs[i].conn == once_conn)
    ending = 1;
  else
    close (jobs[i].conn);
  jobs[i] = jobs[--n_jobs];
}

static void spawn (size_t i,
                   int    may_restart);

/* Takes the answers waiting on the spawner's socket (SpawnAnswer), each
 * for the request of its SEQ: a command's pid, or an error. Returns 0, or
 * -1 at the socket's end (or an error of it). */
static int
take_answers (void)
{
  for (;;)
    {
      SpawnAnswer answer;
      ssize_t n = recv (spawner_sock, &answer, sizeof answer, MSG_DONTWAIT);
      size_t k;

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && errno == EAGAIN)
        return 0;
      if (n != (ssize_t) sizeof answer)
        return -1;
      for (k = 0; k < n_jobs; k++)
        if (jobs[k].pid == JOB_SPAWNING && jobs[k].seq == answer.seq)
          break;
      if (k == n_jobs)
        continue;   /* answered already (the spawner and its command both tell) */
      if (answer.answer <= 0)
        {
          report (jobs[k].conn, SBX_REPLY_ERROR " exec", -answer.answer);
          remove_job (k);
          continue;
        }
      n_spawning--;
      jobs[k].pid = (pid_t) answer.answer;
      for (size_t u = 0; u < n_unclaimed; u++)
        if (unclaimed[u].pid == (pid_t) answer.answer)
          {
            /* Killed before its pid came. */
            report (jobs[k].conn, SBX_REPLY_STATUS, unclaimed[u].status);
            close (jobs[k].conn);
            jobs[k] = jobs[--n_jobs];
            unclaimed[u] = unclaimed[--n_unclaimed];
            break;
          }
      if (n_spawning == 0)
        n_unclaimed = 0;
    }
}

/* The spawner is gone (or its socket failed). pid 1 shuts its side of the
 * socket for reading: from then on no command of that spawner can tell it
 * of itself, and one that cannot ends without reading its request
 * (run_spawner). Then it takes what is queued: every request still
 * unanswered was read by no command, and never will be, so a new spawner
 * gets it, as if it had just come: a command is never made twice, nor
 * refused because the spawner that had it died (a command may kill it). */
static void
lost_spawner (void)
{
  int *again = NULL;
  size_t n_again = 0;

  if (spawner_sock >= 0)
    {
      shutdown (spawner_sock, SHUT_RD);
      take_answers ();
      close (spawner_sock);
    }
  spawner_sock = -1;
  spawner = -1;
  if (n_spawning > 0 && (again = calloc (n_spawning, sizeof (int))) != NULL)
    {
      /* In the order they came. */
      while (n_again < n_spawning)
        {
          size_t oldest = n_jobs;

          for (size_t i = 0; i < n_jobs; i++)
            if (jobs[i].pid == JOB_SPAWNING && (oldest == n_jobs || jobs[i].seq < jobs[oldest].seq))
              oldest = i;
          jobs[oldest].pid = JOB_HEADER;
          again[n_again++] = jobs[oldest].conn;
        }
      n_spawning = 0;
    }
  else if (n_spawning > 0)
    {
      /* Out of memory: refused, as a last resort; none was read. */
      for (size_t i = n_jobs; i-- > 0;)
        if (jobs[i].pid == JOB_SPAWNING)
          {
            report (jobs[i].conn, SBX_REPLY_ERROR " exec", ENOMEM);
            remove_job (i);
          }
    }
  start_spawner ();
  for (size_t a = 0; a < n_again; a++)
    for (size_t i = 0; i < n_jobs; i++)
      if (jobs[i].conn == again[a] && jobs[i].pid == JOB_HEADER)
        {
          spawn (i, 0);
          break;
        }
  free (again);
}

/* Asks the spawner for the command of JOBS[I], whose header has come.
 * MAY_RESTART: when the spawner is gone already (its socket closed), start
 * a new one and ask that one. */
static void
spawn (size_t i,
       int    may_restart)
{
  uint64_t seq = spawn_seq;
  ssize_t n = -1;
  int errsv;

  if (spawner_sock < 0 && start_spawner () != 0)
    {
      report (jobs[i].conn, SBX_REPLY_ERROR " exec", errno);
      remove_job (i);
      return;
    }
  n = send_with_fd (spawner_sock, &seq, sizeof seq, jobs[i].conn, MSG_NOSIGNAL | MSG_DONTWAIT);
  if (n == (ssize_t) sizeof seq)
    {
      jobs[i].pid = JOB_SPAWNING;
      jobs[i].seq = spawn_seq++;
      n_spawning++;
      return;
    }
  errsv = n < 0 ? errno : EIO;
  if (errsv != EAGAIN && may_restart)
    {
      /* Not delivered: the spawner is gone. */
      int conn = jobs[i].conn;

      lost_spawner ();
      for (i = 0; i < n_jobs; i++)
        if (jobs[i].conn == conn)
          {
            spawn (i, 0);
            break;
          }
      return;
    }
  report (jobs[i].conn, SBX_REPLY_ERROR " exec", errsv);
  remove_job (i);
}

/* Takes the spawner's answers. */
static void
spawned (void)
{
  if (take_answers () != 0)
    lost_spawner ();
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
    {
      size_t i;

      if (pid == spawner)
        {
          lost_spawner ();
          continue;
        }
      for (i = 0; i < n_jobs; i++)
        if (jobs[i].pid == pid)
          {
            report (jobs[i].conn, SBX_REPLY_STATUS, wstatus);
            /* The sandbox's one command ended: so does the sandbox. Its
             * connection stays open until end_sandbox has reaped everything:
             * its end-of-file tells the client that nothing runs any more. */
            if (jobs[i].conn == once_conn)
              ending = 1;
            else
              close (jobs[i].conn);
            jobs[i] = jobs[--n_jobs];
            break;
          }
      if (i == n_jobs && n_spawning > 0)
        {
          if (n_unclaimed == MAX_UNCLAIMED)
            memmove (unclaimed, unclaimed + 1, --n_unclaimed * sizeof unclaimed[0]);
          unclaimed[n_unclaimed].pid = pid;
          unclaimed[n_unclaimed++].status = wstatus;
        }
    }
}

static int
add_job (int conn)
{
  if (n_jobs == jobs_size)
    {
      size_t size = jobs_size ? 2 * jobs_size : 16;
      Job *more = realloc (jobs, size * sizeof (Job));

      if (more == NULL)
        {
          report (conn, SBX_REPLY_ERROR " request", ENOMEM);
          close (conn);
          return -1;
        }
      jobs = more;
      jobs_size = size;
    }
  jobs[n_jobs++] = (Job) { JOB_HEADER, conn, 0, 0 };
  return 0;
}

/* SBX_MAGIC_EGRESS: the new rules follow the header, sent with it in one
 * message (waited for here until all of it came); answered by pid 1
 * itself, which alone holds the rules. */
static void
set_egress (size_t      i,
            const char *header)
{
  static char request[SBX_HEADER_LEN + 8192];
  static struct egress_rule rules[MAX_EGRESS];
  int conn = jobs[i].conn;
  uint32_t len;
  ssize_t n;
  int count;

  memcpy (&len, header + SBX_MAGIC_LEN, sizeof len);
  if (!egress_on || len >= sizeof request - SBX_HEADER_LEN)
    {
      report (conn, SBX_REPLY_ERROR " egress", egress_on ? E2BIG : EPERM);
      remove_job (i);
      return;
    }
  do
    n = recv (conn, request, SBX_HEADER_LEN + len, MSG_PEEK | MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  if (n >= 0 && n < (ssize_t) (SBX_HEADER_LEN + len))
    return;   /* the rest is on its way */
  if (n < 0 || recv (conn, request, SBX_HEADER_LEN + len, MSG_DONTWAIT) != n)
    {
      remove_job (i);
      return;
    }
  request[SBX_HEADER_LEN + len] = '\0';
  count = memchr (request + SBX_HEADER_LEN, '\0', len) != NULL ? -1 : parse_egress (request + SBX_HEADER_LEN, rules);
  if (count < 0)
    report (conn, SBX_REPLY_ERROR " egress", EINVAL);
  else
    {
      memcpy (egress, rules, (size_t) count * sizeof rules[0]);
      n_egress = count;
      report (conn, SBX_REPLY_STATUS, 0);
    }
  remove_job (i);
}

/* The header of JOBS[I] may have come: an end request is served here, a
 * command goes to the spawner, and the file service (or anything else, for
 * run_command to refuse) to a child of pid 1's own. */
static void
dispatch (size_t i)
{
  char header[SBX_HEADER_LEN];
  int conn = jobs[i].conn;
  ssize_t n;
  pid_t pid;
  int is_exec, is_tty;

  do
    n = recv (conn, header, sizeof header, MSG_PEEK | MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  if (n < 0 && errno == EAGAIN)
    return;
  if (n != (ssize_t) sizeof header)
    {
      /* Closed at once (someone checking that the sandbox runs), or not
       * our client: the header comes in one message. */
      remove_job (i);
      return;
    }
  if (!token_ok (header))
    {
      remove_job (i);   /* not our client: no answer */
      return;
    }
  if (memcmp (header, SBX_MAGIC_END, SBX_MAGIC_LEN) == 0)
    {
      /* conn stays open until end_sandbox closes everything */
      jobs[i] = jobs[--n_jobs];
      ending = 1;
      return;
    }
  if (memcmp (header, SBX_MAGIC_EGRESS, SBX_MAGIC_LEN) == 0)
    {
      set_egress (i, header);
      return;
    }
  is_tty = memcmp (header, SBX_MAGIC_TTY, SBX_MAGIC_LEN) == 0;
  is_exec = is_tty || memcmp (header, SBX_MAGIC_EXEC, SBX_MAGIC_LEN) == 0;
  /* A one-shot sandbox's command is forked here, without the spawner's
   * fork and exec (see "The command spawner"): until its exec it is a copy
   * of pid 1, but in a Landlock domain of its own that nothing else is in
   * (no command ran before it), not dumpable, in its own session: no
   * process of the sandbox can reach it before it is the command. Not one
   * with a terminal: its holder (hold_tty) lives beside the command, in
   * its domain, for as long as it runs, and a copy of pid 1 there would
   * hold the sandbox's secret and the cookie for a command to crash out
   * of it (a core dump, see start_spawner). The spawner makes it, as any
   * other command: a terminal is for people, who do not see the spawner's
   * fork and exec. */
  if (is_exec && !(conn == once_conn && spawner < 0 && !is_tty))
    {
      spawn (i, 1);
      return;
    }
  pid = fork ();
  if (pid == 0)
    {
      if (is_exec)
        restrict_commands ();
      run_command (conn);
    }
  if (pid < 0)
    {
      report (conn, SBX_REPLY_ERROR " exec", errno);
      remove_job (i);
      return;
    }
  jobs[i].pid = pid;
}

static void
accept_one (int listen_fd)
{
  int conn = accept4 (listen_fd, NULL, NULL, SOCK_CLOEXEC);
  struct ucred peer;
  socklen_t peer_len = sizeof peer;

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
  if (add_job (conn) == 0)
    dispatch (n_jobs - 1);
}

/* Closes every descriptor from 3 up but the KEEP ones (bwrap's info pipe,
 * for one; at most 8 + 256, in any order, -1 for none). */
static void
close_others (const int *unsorted, int n_keep)
{
  int keep[8 + 256];
  unsigned int first = 3;

  n_keep = n_keep < 8 + 256 ? n_keep : 8 + 256;
  for (int i = 0; i < n_keep; i++)
    {
      int j = i;

      for (; j > 0 && keep[j - 1] > unsorted[i]; j--)
        keep[j] = keep[j - 1];
      keep[j] = unsorted[i];
    }

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
  int keep[5] = { listen_fd, ready_fd, watch, lease_fd, once_conn };

  /* Not dumpable: the commands run as the same user, and must neither
   * trace this process nor open its descriptors or memory through /proc.
   * (Kept across fork, so the children that serve a connection inherit
   * it; a command's exec resets it for the command alone.) */
  prctl (PR_SET_DUMPABLE, 0, 0, 0, 0);
  /* First: nothing else of the sandbox runs yet. */
  if (set_up_privileges () != 0)
    {
      fprintf (stderr, "sandbox-exec-helper: cannot make the sandbox's user namespace or drop "
               "the capabilities bwrap left: %s\n", strerror (errno));
      return 125;
    }
  /* bwrap loaded the sandbox's seccomp filter before starting us; the
   * library hands it the program while it runs, and an incomplete one is
   * refused by bwrap. Checked here all the same: no filter, no sandbox. */
  if (prctl (PR_GET_SECCOMP, 0, 0, 0, 0) != 2)
    {
      fprintf (stderr, "sandbox-exec-helper: started without the sandbox's seccomp filter\n");
      return 125;
    }
  if (!read_token (token_fd))
    return 125;

  /* Whatever else bwrap or the library passed on goes. */
  close_others (keep, 5);
  fcntl (listen_fd, F_SETFD, FD_CLOEXEC);
  /* Before anything is served or forked: every process inherits it. The
   * seccomp filter installed next sets no_new_privs, which bwrap has set
   * already (Landlock needs it). */
  prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  restrict_sandbox ();
  if (n_nolinks_paths > 0 && find_nolinks_mounts () != 0)
    {
      /* Fail closed: the caller asked for a mount without links. */
      fprintf (stderr, "sandbox-exec-helper: cannot find the mount of a --no-links path "
               "(statx with STATX_MNT_ID): %s; Linux 5.8 or later is needed\n", strerror (errno));
      return 125;
    }
  if ((n_allowed_mnt >= 0 || egress_on || n_nolinks_mnt > 0) && install_connect_listener () != 0)
    {
      /* Fail closed: without it, host sockets would be in reach. */
      fprintf (stderr, "sandbox-exec-helper: cannot filter connect() (seccomp user "
               "notification): %s; Linux 5.6 or later is needed\n", strerror (errno));
      return 125;
    }
  if (egress_on && !killable_recv)
    {
      /* Before Linux 5.19 a signal can make a command's send start again
       * after pid 1 made it: the send workers pid 1 forks keep its result
       * here for that call (mediate_send). */
      void *page = mmap (NULL, 2 * SENT_SLOTS * sizeof (struct sent_record), PROT_READ | PROT_WRITE,
                         MAP_SHARED | MAP_ANONYMOUS, -1, 0);

      sent_records = page != MAP_FAILED ? page : NULL;
    }
  if (!(n_allowed_mnt >= 0 || egress_on || n_nolinks_mnt > 0) && install_mount_filter () != 0)
    {
      fprintf (stderr, "sandbox-exec-helper: cannot install a seccomp filter: %s\n", strerror (errno));
      return 125;
    }
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
  /* Ends a connect() of pid 1's that waits (connect_nonblocking_as_pid1). */
  sa.sa_handler = on_pid1_alarm;
  sa.sa_flags = 0;
  sigaction (SIGALRM, &sa, NULL);
  signal (SIGPIPE, SIG_IGN);
  sigemptyset (&block);
  sigaddset (&block, SIGCHLD);
  sigaddset (&block, SIGUSR1);
  sigprocmask (SIG_BLOCK, &block, NULL);
  sigemptyset (&none);

  if (once_conn < 0)
    {
      write_all (ready_fd, "R", 1);
      close (ready_fd);
    }
  /* After the ready byte: the sandbox's creation does not wait for it.
   * Should it fail, the first command tries again (spawn). A one-shot
   * sandbox's command needs none (dispatch); a spawner is started only if
   * another command comes. */
  if (once_conn < 0)
    start_spawner ();

  /* One-shot: the command's request is (or will be) on once_conn; it is
   * served like any accepted connection (dispatch, then the spawner). The
   * command comes first, the ready byte after: it wakes the library, whose
   * bookkeeping (instance.json) then runs beside the command instead of
   * before it. */
  if (once_conn >= 0)
    {
      fcntl (once_conn, F_SETFD, FD_CLOEXEC);
      if (add_job (once_conn) == 0)
        dispatch (n_jobs - 1);
      write_all (ready_fd, "R", 1);
      close (ready_fd);
    }

  for (;;)
    {
      struct timespec ts, *tsp = NULL;
      size_t n = 0, n_conns;

      if (expires > 0)
        {
          long long left = expires - (long long) time (NULL);

          if (left <= 0)
            return end_sandbox ();
          ts.tv_sec = (time_t) left;
          ts.tv_nsec = 0;
          tsp = &ts;
        }

      if (n_spawning > 0 && spawner > 0)
        {
          /* A command may have stopped the spawner; poll again soon. */
          kill (spawner, SIGCONT);
          if (tsp == NULL || ts.tv_sec > 0)
            {
              ts.tv_sec = 0;
              ts.tv_nsec = 100 * 1000 * 1000;
              tsp = &ts;
            }
        }

      if (pfds_size < n_jobs + 5)
        {
          pfds_size = 2 * (n_jobs + 5);
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
        if (jobs[i].pid == JOB_HEADER)
          pfds[n++] = (struct pollfd) { jobs[i].conn, POLLIN | POLLRDHUP, 0 };
        else if (jobs[i].pid > 0 && !jobs[i].killed)
          pfds[n++] = (struct pollfd) { jobs[i].conn, POLLRDHUP, 0 };
      n_conns = n;
      pfds[n++] = (struct pollfd) { listener, POLLIN, 0 };
      pfds[n++] = (struct pollfd) { spawner_sock, POLLIN, 0 };

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

      /* A command may be waiting in connect(). */
      if (pfds[n_conns].revents & POLLIN)
        serve_listener (listener);

      /* The spawner's answers before reaping: a command killed at once is
       * then already a job. */
      if (pfds[n_conns + 1].revents & (POLLIN | POLLHUP | POLLERR))
        spawned ();

      reap ();

      for (size_t k = 3; k < n_conns; k++)
        {
          if ((pfds[k].revents & (POLLIN | POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) == 0)
            continue;
          for (size_t i = 0; i < n_jobs; i++)
            if (jobs[i].conn == pfds[k].fd && jobs[i].pid == JOB_HEADER)
              {
                dispatch (i);
                break;
              }
            else if (jobs[i].conn == pfds[k].fd && jobs[i].pid > 0 && !jobs[i].killed)
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
  if (argc == 5 && strcmp (argv[1], "--spawner") == 0)
    {
      /* start_spawner: not dumpable before anything else. */
      prctl (PR_SET_DUMPABLE, 0, 0, 0, 0);
      in_spawner = 1;
      cmd_nofile_soft = (rlim_t) strtoull (argv[3], NULL, 10);
      cmd_nofile_hard = (rlim_t) strtoull (argv[4], NULL, 10);
      run_spawner (atoi (argv[2]));
    }
  if (argc >= 4 && strcmp (argv[1], "--user") == 0)
    {
      become_uid = strtol (argv[2], NULL, 10);
      become_gid = strtol (argv[3], NULL, 10);
      if (become_uid < 0 || become_gid < 0 || become_uid > 0x7fffffff || become_gid > 0x7fffffff)
        {
          fprintf (stderr, "sandbox-exec-helper: bad --user: %s %s\n", argv[2], argv[3]);
          return 125;
        }
      argv += 3;
      argc -= 3;
      argv[0] = argv[-3];
    }
  if (argc >= 3 && strcmp (argv[1], "--once") == 0)
    {
      once_conn = atoi (argv[2]);
      argv += 2;
      argc -= 2;
      argv[0] = argv[-2];
    }
  if (argc >= 3 && strcmp (argv[1], "--egress") == 0)
    {
      egress_on = 1;
      if ((n_egress = parse_egress (argv[2], egress)) < 0)
        {
          fprintf (stderr, "sandbox-exec-helper: bad --egress rules: %s\n", argv[2]);
          return 125;
        }
      argv += 2;
      argc -= 2;
      argv[0] = argv[-2];
    }
  while (argc >= 3 && strcmp (argv[1], "--no-links") == 0)
    {
      char **grown = realloc (nolinks_paths, (size_t) (n_nolinks_paths + 1) * sizeof (char *));

      if (grown == NULL || n_nolinks_paths >= MAX_NOLINKS_MNT)
        {
          fprintf (stderr, "sandbox-exec-helper: too many --no-links mounts\n");
          return 125;
        }
      nolinks_paths = grown;
      nolinks_paths[n_nolinks_paths++] = argv[2];
      argv += 2;
      argc -= 2;
      argv[0] = argv[-2];
    }
  if (argc >= 8 && strcmp (argv[1], "--server") == 0)
    {
      /* Then the paths on whose mounts a command may connect to a socket
       * file; none: no restriction (an image root, where no host socket
       * shows). */
      if (argc > 8)
        {
          allow_sockets_in (argv + 8, argc - 8);
          allowed_dirs = argv + 8;
          n_allowed_dirs = argc - 8;
        }
      nofile_split ();
      return serve (atoi (argv[2]), atoi (argv[3]), atoi (argv[4]), atoi (argv[5]),
                    atoi (argv[6]), atoll (argv[7]));
    }

  fprintf (stderr, "usage: %s [--user UID GID] [--once CONN-FD] [--egress RULES] [--no-links PATH...] --server LISTEN-FD READY-FD TOKEN-FD WATCH-FD LEASE-FD EXPIRES "
           "[SOCKET-DIR...]\n", argv[0]);
  return 125;
}
