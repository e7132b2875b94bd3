/* libsandbox - the wire protocol between the local backend and the server
 * that runs as each local sandbox's pid 1 (sandbox-exec-helper --server)
 *
 * Plain C: the helper is linked statically, without GLib.
 *
 * Every connection starts with a header: a 4-byte magic, a 32-bit LENGTH in
 * host order, and the sandbox's secret (SBX_TOKEN_HEX hexadecimal digits,
 * kept in the instance's directory, which no sandbox can see). The server
 * closes, without an answer, a connection whose secret is wrong or whose
 * peer runs inside the sandbox.
 *
 *   SBX_MAGIC_EXEC  LENGTH bytes follow: NUL-terminated strings CWD ARGC
 *                   ARGV... ENVC ENV...; the first message carries stdin,
 *                   stdout and stderr (SCM_RIGHTS). The server answers one
 *                   line: SBX_REPLY_ERROR "chdir|exec|request ERRNO" when
 *                   the command could not be started, else SBX_REPLY_STATUS
 *                   "WAIT-STATUS" (as from waitpid) when it ended.
 *   SBX_MAGIC_TTY   as SBX_MAGIC_EXEC, with two more strings after ENV...:
 *                   ROWS COLS. The command runs on a new pseudo-terminal of
 *                   the sandbox's own devpts (its controlling terminal, and
 *                   its stdin, stdout and stderr; the three descriptors sent
 *                   are closed). Before the command starts, the server sends
 *                   SBX_REPLY_PTY "\n" with the terminal's master side
 *                   attached (SCM_RIGHTS): the client reads the output from
 *                   it, writes input, resizes (TIOCSWINSZ) and signals the
 *                   foreground process group (TIOCSIG). The rest is as for
 *                   SBX_MAGIC_EXEC (an error line "pty ERRNO" when no
 *                   terminal could be made).
 *   SBX_MAGIC_EGRESS LENGTH bytes follow in the same message: the new
 *                   egress rules, as --egress takes them (no NUL). The
 *                   server answers SBX_REPLY_STATUS "0" once they apply, or
 *                   SBX_REPLY_ERROR "egress ERRNO" (EPERM: the sandbox has
 *                   no network; EINVAL: bad rules).
 *   SBX_MAGIC_END   LENGTH 0: end the sandbox. The connection reaches
 *                   end-of-file once nothing but the server's exit is left.
 *   SBX_MAGIC_FILES LENGTH 0: file service. A process of the sandbox, as the
 *                   sandbox's user and in its mount namespace, opens and
 *                   makes files for the client, so that every path is
 *                   resolved as the sandbox sees it and never on the host.
 *                   Requests (SbxFileRequest, then the path, then for
 *                   SBX_FILE_SYMLINK the link's target, without NULs) each
 *                   get an int32 errno (0 for success); a successful
 *                   SBX_FILE_OPEN carries the descriptor (SCM_RIGHTS).
 *
 * One-shot sandboxes (sandbox_backend_run): the server is started with
 * --once CONN-FD, one end of a socket pair whose other end the library
 * keeps. CONN-FD is served as an accepted connection from the start (the
 * client sends SBX_MAGIC_EXEC or SBX_MAGIC_TTY on it, as above), and the
 * sandbox ends once that command's status is sent; CONN-FD is closed only
 * after that, so its end-of-file says that nothing of the sandbox runs any
 * more. The listening socket serves as usual meanwhile.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <stdint.h>

#define SBX_MAGIC_EXEC  "SBX2"
#define SBX_MAGIC_END   "SBXK"
#define SBX_MAGIC_FILES "SBXF"
#define SBX_MAGIC_TTY   "SBXT"
#define SBX_MAGIC_EGRESS "SBXN"
#define SBX_MAGIC_LEN   4
#define SBX_TOKEN_HEX   64
#define SBX_HEADER_LEN  (SBX_MAGIC_LEN + 4 + SBX_TOKEN_HEX)

#define SBX_REPLY_ERROR  "error"
#define SBX_REPLY_STATUS "status"
#define SBX_REPLY_PTY    "pty"

/* The largest exec request, and the longest path of a file request. */
#define SBX_REQUEST_MAX  (64u << 20)
#define SBX_PATH_MAX     4096u

enum
{
  SBX_FILE_OPEN    = 'O',   /* open (path, flags | O_CLOEXEC, mode) */
  SBX_FILE_MKDIR   = 'M',   /* mkdir (path, mode) */
  SBX_FILE_SYMLINK = 'L',   /* symlink (target, path) */
  SBX_FILE_UNLINK  = 'U',   /* unlink (path) */
};

typedef struct
{
  uint32_t op;
  uint32_t flags;
  uint32_t mode;
  uint32_t path_len;
  uint32_t target_len;
} SbxFileRequest;
