/* libsandbox - Daytona backend internals shared by its backend and instance
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "sandbox-cloud-private.h"
#include "sandbox-output-private.h"
#include "sandbox-daytona-backend.h"

G_BEGIN_DECLS

#define DAYTONA_PROVIDER "Daytona"
#define DAYTONA_DEFAULT_API_URL "https://app.daytona.io/api"
#define DAYTONA_KEYS_URL "https://app.daytona.io/dashboard/keys"
/* The toolbox protocol we speak (spec §3.2: >= 0.167 gives JSON logs and
 * stdout/stderr markers in the log stream). */
#define DAYTONA_PROTOCOL_VERSION "0.190.0"

/* How the shared cloud code (sandbox-cloud-private.h) talks to Daytona. */
extern const SandboxCloudApi _sandbox_daytona_api;

SandboxRestClient   *_sandbox_daytona_backend_get_client (SandboxDaytonaBackend *self);

SandboxInstance     *_sandbox_daytona_instance_new       (SandboxDaytonaBackend *backend,
                                                          JsonObject            *dto,
                                                          const char            *workdir);
void                 _sandbox_daytona_instance_update    (SandboxDaytonaInstance *self,
                                                          JsonObject             *dto);
SandboxInstanceState _sandbox_daytona_state_from_string  (const char             *state);
GHashTable          *_sandbox_daytona_labels_from_dto    (JsonObject             *dto);
char                *_sandbox_daytona_quote_path         (const char             *path);
guint                _sandbox_daytona_next_poll_ms       (guint                   interval_ms,
                                                          gint64                  elapsed_us);
char                *_sandbox_daytona_instance_folder_url (SandboxDaytonaInstance *self,
                                                           const char             *path);

/* Parsers of what the API, the toolbox or a sandbox sends; each is run by
 * fuzz/fuzz-daytona.c or fuzz/fuzz-multipart.c. */
JsonArray           *_sandbox_daytona_parse_list_page    (JsonNode               *node,
                                                          const char            **next_cursor);
gboolean             _sandbox_daytona_parse_exit_code    (JsonNode               *node,
                                                          int                    *exit_code);
gboolean             _sandbox_daytona_parse_file_entry   (JsonNode               *entry,
                                                          const char            **name,
                                                          gboolean               *is_dir);
gboolean             _sandbox_daytona_parse_is_dir       (JsonNode               *node);
void                 _sandbox_daytona_parse_part_headers (SoupMessageHeaders     *headers,
                                                          char                  **name,
                                                          char                  **filename);
GError              *_sandbox_daytona_part_error         (const char             *path,
                                                          const guint8           *body,
                                                          gsize                   len);
void                 _sandbox_daytona_multipart_file_head (GString               *text,
                                                          const char             *boundary,
                                                          guint                   index,
                                                          const char             *remote);

/* The command log stream: stdout and stderr told apart by 0x01 0x01 0x01
 * and 0x02 0x02 0x02 markers, which a frame boundary may cut. */
typedef void (*SandboxDaytonaEmit) (int           kind,
                                    const guint8 *buf,
                                    gsize         len,
                                    gpointer      user_data);
typedef struct
{
  int    kind;          /* 1 or 2: where bytes go now */
  guint8 partial[2];    /* a marker cut by a frame boundary */
  guint  npartial;
} SandboxDaytonaDemux;

void                 _sandbox_daytona_demux              (SandboxDaytonaDemux    *demux,
                                                          const guint8           *chunk,
                                                          gsize                   len,
                                                          SandboxDaytonaEmit      emit,
                                                          gpointer                user_data);
void                 _sandbox_daytona_demux_flush        (SandboxDaytonaDemux    *demux,
                                                          SandboxDaytonaEmit      emit,
                                                          gpointer                user_data);

/* The exit status an exec's script prints on its stdout after the command,
 * the last thing it writes: "\036" NONCE ":" STATUS "\036", NONCE a random
 * word of the exec's own. Seen in the log stream, it spares the status
 * request. The stdout bytes are fed through it: the trailer is taken out,
 * what may begin one is held until the next bytes (or the flush) say. */
typedef struct
{
  char       *prefix;   /* "\036" NONCE ":" */
  GByteArray *held;     /* stdout that may begin a trailer */
  gboolean    seen;
  int         status;   /* the latest trailer's, once seen */
} SandboxDaytonaTrailer;

void                 _sandbox_daytona_trailer_init       (SandboxDaytonaTrailer  *trailer,
                                                          const char             *nonce);
void                 _sandbox_daytona_trailer_clear      (SandboxDaytonaTrailer  *trailer);
void                 _sandbox_daytona_trailer_feed       (SandboxDaytonaTrailer  *trailer,
                                                          const guint8           *buf,
                                                          gsize                   len,
                                                          SandboxDaytonaEmit      emit,
                                                          gpointer                user_data);
void                 _sandbox_daytona_trailer_flush      (SandboxDaytonaTrailer  *trailer,
                                                          SandboxDaytonaEmit      emit,
                                                          gpointer                user_data);

/* Where pause keeps a sandbox's autoDeleteInterval while it is stopped. */
#define PAUSED_AUTO_DELETE_LABEL "libsandbox.paused-auto-delete"

/* The output of the metrics command (sandbox-daytona-instance.c). */
SandboxMetrics *_sandbox_daytona_parse_metrics (const char *text);

G_END_DECLS
