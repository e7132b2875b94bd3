/* E2B API emulator: internals shared by the control plane and envd parts
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <json-glib/json-glib.h>
#include "sandbox.h"
#include "sandbox-connect-private.h"

#include "e2b-emulator.h"
#include "emu-common.h"

G_BEGIN_DECLS

#define E2B_EMU_ENVD_VERSION "0.6.13"
#define E2B_EMU_ENVD_PORT    49983
#define E2B_EMU_CLIENT_ID    "6532622b"
#define E2B_EMU_DOMAIN       "e2b-emulator.localhost"
#define E2B_EMU_HOME         "/home/user"

typedef struct _EmuSandbox EmuSandbox;
typedef struct _EmuProcess EmuProcess;

struct _E2bEmulator
{
  GThread               *thread;
  GMainContext          *context;
  GMainLoop             *loop;
  SoupServer            *server;
  char                  *url;
  char                  *root;          /* host directory holding every sandbox's files */
  SandboxBackend        *local;
  GHashTable            *sandboxes;     /* id -> EmuSandbox */
  EmuImages             *images;        /* templateID -> image (E2B_EMULATOR_IMAGES) */
  guint                  live;          /* atomic */
  gint                   truncate_next; /* atomic */
  guint                  keepalive_ms;  /* atomic */
  E2bEmulatorRequestHook hook;
  gpointer               hook_data;
  E2bEmulatorRequestHook reply_hook;
  gpointer               reply_hook_data;
  SoupSession           *proxy;         /* to sandboxes' ports other than envd's */
  GHashTable            *snapshots;     /* snapshotID -> EmuSnapshot */
};

struct _EmuSandbox
{
  E2bEmulator     *emu;
  char            *id;
  char            *template_id;
  char            *access_token;
  GHashTable      *metadata;   /* utf8 -> utf8 */
  GHashTable      *envs;       /* utf8 -> utf8 */
  GDateTime       *started;
  gint64           end_at;     /* real time, µs */
  GSource         *ttl;
  SandboxInstance *instance;
  char            *host_root;  /* <root>/<id>: home/ and tmp/ are mounted at /home and /tmp */
  char            *rootfs;     /* the template's image root on the host, or NULL: the host's */
  char            *image_how;  /* what the template runs on, the first line of its logs */
  gint64           created_us; /* real time */
  gboolean         network;    /* its local sandbox has the network (else none at all) */
  char           **egress_allow; /* network.allowOut as addresses/CIDRs, or NULL */
  char           **egress_deny;  /* network.denyOut, likewise */
  GHashTable      *processes;  /* pid -> EmuProcess (running and recently ended) */
  guint            next_pid;
  GHashTable      *watchers;   /* id -> directory watcher (envd code), or NULL */
  gboolean         paused;     /* POST /pause: its local sandbox is frozen */
  gboolean         cold;       /* paused without memory: its local sandbox is gone, a resume boots anew */
  char            *image_name; /* what the image is resolved from (a cold boot resolves it again) */
  gboolean         auto_pause; /* on its timeout it pauses instead of going away */
  gboolean         auto_pause_memory;
  gboolean         auto_resume;
  gint64           timeout_s;  /* the time to live it was made with (an auto-resume's) */
  char            *traffic_token; /* network.allowPublicTraffic false: what its ports want, or NULL */
};

/* Replies */
void        _emu_reply_json          (SoupServerMessage *msg,
                                      guint              status,
                                      JsonNode          *node);
void        _emu_reply_error         (SoupServerMessage *msg,
                                      guint              status,
                                      const char        *format,
                                      ...) G_GNUC_PRINTF (3, 4);
void        _emu_reply_connect_error (SoupServerMessage *msg,
                                      const char        *code,
                                      const char        *format,
                                      ...) G_GNUC_PRINTF (3, 4);
JsonNode   *_emu_parse_json          (GBytes            *bytes);
GBytes     *_emu_request_body        (SoupServerMessage *msg);
char       *_emu_rfc3339             (gint64             unix_usec);

/* envd */
void        _emu_envd_handle         (E2bEmulator       *emu,
                                      EmuSandbox        *sandbox,
                                      SoupServerMessage *msg,
                                      const char        *path,
                                      GHashTable        *query);
/* Whether the v1 signature in QUERY (a signed file URL's) is SANDBOX's. */
gboolean _emu_envd_signed_by (EmuSandbox *sandbox,
                              GHashTable *query,
                              const char *operation,
                              const char *user_param);
/* Kills every process of a sandbox that is going away. */
void        _emu_envd_sandbox_gone   (EmuSandbox        *sandbox);
/* A metrics sample of SANDBOX measured by the local backend: the API's
 * SandboxMetric (CAMEL) or envd's /metrics. */
JsonNode   *_emu_sandbox_metrics     (EmuSandbox        *sandbox,
                                      gboolean           camel);

G_END_DECLS
