/* libsandbox - local backend internals shared by its backend and instance
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <json-glib/json-glib.h>

#include "sandbox-local-backend.h"

G_BEGIN_DECLS

#define LOCAL_DEFAULT_WORKDIR "/workspace"
/* The unprivileged user and group commands run as unless the spec sets
 * run-as-root (the first regular user on most distributions, as `user` on
 * E2B and `daytona` on Daytona). */
#define LOCAL_SANDBOX_UID "1000"
#define LOCAL_DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* How resource limits are applied to the processes of an instance. */
typedef enum {
  LOCAL_LIMITS_NONE,
  LOCAL_LIMITS_RLIMIT,
  LOCAL_LIMITS_CGROUP2,
} LocalLimits;

/* What an instance is, as stored in DIR/instance.json. */
typedef struct
{
  char       *id;
  char       *dir;          /* host directory of the instance */
  char       *rootfs;       /* NULL: the host's root */
  char       *workdir;      /* absolute path inside the sandbox */
  gboolean    network;
  gboolean    run_as_root;  /* else uid/gid LOCAL_SANDBOX_UID inside */
  double      cpu;
  guint       memory_mb;
  guint       disk_mb;
  guint       pids_max;
  gint64      created;      /* unix seconds */
  gint64      expires;      /* unix seconds, 0 for never */
  LocalLimits limits;
  GHashTable *env;          /* utf8 -> utf8 */
  GHashTable *labels;       /* utf8 -> utf8 */
  GPtrArray  *mounts;       /* SandboxMount */
  gint64      bwrap_pid;    /* the sandbox's bwrap, in the host's pid namespace */
  gint64      init_pid;     /* the sandbox's pid 1 (its server), likewise */
  char       *cgroup;       /* the instance's cgroup directory, or NULL */
  char      **cgroups_v1;   /* rlimit mode as root: its cgroup v1 directories
                             * (pids, memory) that bound what rlimits cannot,
                             * or NULL */
  char       *token;        /* the secret its server asks of every client */
  gboolean    die_with_owner; /* ends when the creating process does */
  char       *image;        /* id of the imported image the root is, or NULL */
  char       *cwd;          /* the image's WorkingDir: commands' default cwd, or NULL */
  char       *egress;       /* egress rules as pid 1 takes them ("+ADDR/LEN,-ADDR/LEN"), or NULL/"" */
  gint64      uid, gid;     /* the image's User, mapped; -1 for the default */
  int         image_hold;   /* not saved: the image store's lock, held shared
                             * from the image lookup until instance.json is
                             * written (image rm waits for it), or -1 */
} LocalConfig;

void          _local_config_free        (LocalConfig *config);
LocalConfig  *_local_config_load        (const char  *dir,
                                         GError     **error);
gboolean      _local_encode_egress      (const char * const  *allow,
                                         const char * const  *deny,
                                         gboolean             network,
                                         char               **out,
                                         GError             **error);
gboolean      _local_config_save        (LocalConfig *config,
                                         GError     **error);
const char   *_local_limits_to_string   (LocalLimits  limits);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (LocalConfig, _local_config_free)

const char   *_sandbox_local_backend_get_bwrap (SandboxLocalBackend *self);
/* Where the volumes of the sandboxes' directory ROOT_DIR are. */
char         *_sandbox_local_volumes_dir (const char *root_dir);
const char   *_sandbox_local_backend_get_helper (SandboxLocalBackend *self);

SandboxInstance *_sandbox_local_instance_new (SandboxLocalBackend *backend,
                                              LocalConfig         *config);
/* Starts the instance's sandbox; returns the instance on TASK, whose
 * reference it takes. ONCE (or NULL): a one-shot sandbox for this command,
 * sent to its pid 1 at start on a connection of its own; the instance's
 * first exec (which must be of ONCE) runs on it, and the sandbox ends when
 * that command does. */
void          _sandbox_local_instance_start (SandboxLocalInstance *self,
                                             SandboxCommand       *once,
                                             GTask                *task);
/* _local_server_alive (): declared in sandbox-private.h (the image store uses it). */
LocalConfig  *_sandbox_local_instance_get_config (SandboxLocalInstance *self);

/* Writes the sandbox's seccomp program for bwrap into FD (a pipe). */
gboolean      _local_seccomp_write      (int          fd,
                                         GError     **error);

guint64       _local_tree_size          (const char  *path);
guint64       _local_own_tmpfs_size     (LocalConfig *config);
guint64       _local_own_tmpfs_used     (LocalConfig *config,
                                         guint64     *total);
gboolean      _local_remove_tree        (const char  *path,
                                         GError     **error);
/* Removes the instance's cgroup directories (once its processes are gone). */
void          _local_remove_cgroups     (LocalConfig *config);
/* Kills what runs in the instance at DIR and removes it. */
gboolean      _local_destroy_dir        (const char  *dir,
                                         GError     **error);

/* Pause, resume and metrics (sandbox-local-pause.c). */
gboolean        _local_is_paused        (LocalConfig  *config);
gboolean        _local_check_not_paused (LocalConfig  *config,
                                         GError      **error);
gboolean        _local_pause            (LocalConfig  *config,
                                         GError      **error);
gboolean        _local_resume           (LocalConfig  *config,
                                         GError      **error);
SandboxMetrics *_local_metrics          (LocalConfig  *config,
                                         GError      **error);

/* Starting bwrap (sandbox-local-spawn.c): posix_spawn()'s way, with a
 * setup step in the child; the child is reaped when it ends. */
#define LOCAL_SPAWN_MAX_FDS 16
typedef void (*LocalSpawnSetup) (gpointer data);
pid_t           _local_spawn            (const char * const  *argv,
                                         const int           *fds,
                                         int                  n_fds,
                                         LocalSpawnSetup      setup,
                                         gpointer             setup_data,
                                         int                 *pidfd,
                                         GError             **error);
gboolean        _local_spawn_ended      (int                  pidfd);
void            _local_spawn_kill       (int                  pidfd,
                                         pid_t                pid);

G_END_DECLS
