/* A Daytona API emulator for the tests (not installed)
 *
 * Facts: shared/specs/daytona-api.md. What the official SDK offers and this
 * emulator does not serve is listed in docs/testing.md.
 *
 * Layout of this file:
 *   - logs (EmuLog) and the output stream commands write into
 *   - sandboxes, sessions, commands (the emulator's state)
 *   - replies: NestJS errors for the API, Go errors for the toolbox
 *   - control plane: /api/sandbox...
 *   - toolbox: /toolbox/{id}/process..., /toolbox/{id}/files...
 *   - dispatch (with the per-request hook), the thread, the public API
 *
 * Everything but the public API runs in the emulator's own thread.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include <libsandbox/sandbox.h>

#include "daytona-emulator.h"
#include "emu-common.h"

#define EMU_DAEMON_VERSION "0.190.0"
#define EMU_ORG_ID "emulator-organization"
#define STDOUT_MARK "\x01\x01\x01"
#define STDERR_MARK "\x02\x02\x02"

struct _DaytonaEmulator
{
  GThread         *thread;
  GMainContext    *context;
  GMainLoop       *loop;
  SoupServer      *server;
  SandboxBackend  *local;
  char            *base;        /* http://127.0.0.1:PORT */
  char            *url;         /* base + /api */
  char            *tmpdir;
  GHashTable      *sandboxes;   /* id -> EmuSandbox */
  GPtrArray       *order;       /* EmuSandbox, in creation order */
  EmuImages       *images;      /* snapshot / image -> image (DAYTONA_EMULATOR_IMAGES) */
  guint            pending;     /* local creations and destructions in flight */
  guint64          upload_bytes; /* file bytes received by the toolbox's uploads */

  GMutex           lock;        /* of the knobs */

  /* Knobs, under lock: */
  char            *api_key;
  guint            state_delay_ms;
  guint            minute_ms;   /* how long a "minute" of the auto-* intervals is */
  gboolean         never_start;
  char            *fail_reason;
  char            *break_method;
  char            *break_prefix;
  DaytonaEmulatorHook hook;
  gpointer         hook_data;
  DaytonaEmulatorHook reply_hook;
  gpointer         reply_hook_data;
  guint            live;        /* read under lock too */

  /* Volumes and the preview proxy (issue 18): */
  GHashTable      *volumes;     /* id -> EmuVolume */
  SoupSession     *proxy;       /* to the sandboxes' ports, for preview URLs */
  GHashTable      *signed_urls; /* token -> EmuSigned: signed preview URLs */
};

typedef struct
{
  char   *sandbox_id;
  guint   port;
  gint64  expires_at;           /* monotonic */
} EmuSigned;

typedef struct
{
  char *id;
  char *name;
  gint64 ready_at;              /* monotonic: pending_create until then, then ready */
  char *created_at;
  char *host_dir;               /* TMPDIR/volumes/ID: what sandboxes mount */
} EmuVolume;

/* ------------------------------------------------------------------ */
/* Logs                                                                */

typedef enum { LOG_STDOUT = 1, LOG_STDERR = 2 } LogKind;

typedef enum {
  LOG_MODE_COMBINED,  /* markers stripped, text/plain */
  LOG_MODE_RAW,       /* markers kept, text/plain */
  LOG_MODE_JSON,      /* {output, stdout, stderr}; markers in streams */
} LogMode;

typedef struct
{
  GByteArray *raw;        /* chunks with their 3-byte markers */
  GByteArray *combined;   /* chunks without markers */
  GByteArray *out;
  GByteArray *err;
  GPtrArray  *followers;  /* Follower */
  gboolean    done;
} EmuLog;

typedef struct
{
  EmuLog                  *log;
  SoupWebsocketConnection *conn;
  gboolean                 split;
} Follower;

static void
emu_log_clear (EmuLog *log)
{
  g_byte_array_unref (log->raw);
  g_byte_array_unref (log->combined);
  g_byte_array_unref (log->out);
  g_byte_array_unref (log->err);
  g_ptr_array_unref (log->followers);
}

static void
follower_free (Follower *follower)
{
  g_signal_handlers_disconnect_by_data (follower->conn, follower);
  if (soup_websocket_connection_get_state (follower->conn) == SOUP_WEBSOCKET_STATE_OPEN)
    soup_websocket_connection_close (follower->conn, SOUP_WEBSOCKET_CLOSE_GOING_AWAY, NULL);
  g_object_unref (follower->conn);
  g_free (follower);
}

static EmuLog *
emu_log_new (void)
{
  EmuLog *log = g_atomic_rc_box_new0 (EmuLog);

  log->raw = g_byte_array_new ();
  log->combined = g_byte_array_new ();
  log->out = g_byte_array_new ();
  log->err = g_byte_array_new ();
  log->followers = g_ptr_array_new_with_free_func ((GDestroyNotify) follower_free);
  return log;
}

static EmuLog *
emu_log_ref (EmuLog *log)
{
  return g_atomic_rc_box_acquire (log);
}

static void
emu_log_unref (EmuLog *log)
{
  g_atomic_rc_box_release_full (log, (GDestroyNotify) emu_log_clear);
}

/* Sends DATA in frames of at most 64 KiB: a WebSocket client takes
 * frames up to its limit only (libsoup's default: 128 KiB), and a log
 * stream's markers may fall anywhere in a frame. */
static void
send_frames (SoupWebsocketConnection *conn,
             const guint8            *data,
             gsize                    size)
{
  const gsize max = 64 * 1024;

  for (gsize off = 0; off < size; off += max)
    soup_websocket_connection_send_binary (conn, data + off, MIN (max, size - off));
}

static void
emu_log_append (EmuLog     *log,
                LogKind     kind,
                const void *data,
                gsize       size)
{
  const char *mark = kind == LOG_STDOUT ? STDOUT_MARK : STDERR_MARK;

  if (size == 0)
    return;
  g_byte_array_append (log->raw, (const guint8 *) mark, 3);
  g_byte_array_append (log->raw, data, size);
  g_byte_array_append (log->combined, data, size);
  g_byte_array_append (kind == LOG_STDOUT ? log->out : log->err, data, size);

  for (guint i = 0; i < log->followers->len; i++)
    {
      Follower *follower = g_ptr_array_index (log->followers, i);

      if (follower->split)
        {
          g_autofree guint8 *frame = g_malloc (size + 3);

          memcpy (frame, mark, 3);
          memcpy (frame + 3, data, size);
          send_frames (follower->conn, frame, size + 3);
        }
      else
        send_frames (follower->conn, data, size);
    }
}

static void
emu_log_finish (EmuLog *log)
{
  log->done = TRUE;
  for (guint i = 0; i < log->followers->len; i++)
    {
      Follower *follower = g_ptr_array_index (log->followers, i);

      soup_websocket_connection_close (follower->conn, SOUP_WEBSOCKET_CLOSE_NORMAL, NULL);
    }
}

/* Where a command writes (see _emu_sink_new). */
static void
emu_log_write (gpointer      log,
               gboolean      is_stderr,
               const guint8 *buf,
               gsize         len)
{
  emu_log_append (log, is_stderr ? LOG_STDERR : LOG_STDOUT, buf, len);
}

/* ------------------------------------------------------------------ */
/* State                                                               */

typedef struct _EmuSession EmuSession;
typedef struct _EmuSandbox EmuSandbox;

/* A session command. As in the daemon, the session's shell runs it: its
 * directory (.daytona/sessions/SESSION/CMD in the home directory) holds
 * cmd.sh, which the shell sources, out and err, where the shell sends its
 * output (the emulator reads them as they grow), in, a FIFO for its input
 * (runAsync only), and exit, written once it has finished. */
typedef struct
{
  char         *id;
  char         *command;
  EmuLog       *log;
  gboolean      running;
  int           exit_code;
  EmuSession   *session;
  char         *dir;        /* host path of its directory */
  int           in_fd;      /* the emulator's end of its stdin FIFO, or -1 */
  int           out_fd;
  int           err_fd;
  GSource      *poll;
  gpointer      job;        /* the Job of a synchronous request, or NULL */
  gboolean      echo_input;
} EmuCommand;

/* A session: one shell (bash, or sh without it) in the sandbox that reads
 * the numbers of the commands to run from the FIFO ctl, so that `cd`,
 * `export` and shell variables last from one command to the next. */
struct _EmuSession
{
  char         *id;
  GPtrArray    *commands;   /* EmuCommand */
  gboolean      deleted;
  EmuSandbox   *sb;
  char         *dir;        /* host path of the session's directory */
  char         *inner_dir;  /* the same in the sandbox */
  int           ctl_fd;     /* the emulator's end of ctl (read-write), or -1 */
  GCancellable *shell_cancel;
  gboolean      shell_running;
};

struct _EmuSandbox
{
  DaytonaEmulator *emu;
  char            *id;
  char            *name;
  char            *snapshot;
  char            *user;
  char            *target;
  char            *dockerfile;
  GHashTable      *env;      /* utf8 -> utf8 */
  GHashTable      *labels;   /* utf8 -> utf8 */
  gboolean         public;
  gboolean         network_block_all;
  char            *network_allow_list;
  char            *domain_allow_list;
  GPtrArray       *domain_addresses; /* utf8: what domainAllowList resolved to, or NULL */
  gboolean         has_network;      /* its local sandbox was made with the network */
  int              cpu, gpu, memory, disk;
  int              auto_stop, auto_archive, auto_delete;
  char            *state;
  char            *desired_state;
  char            *error_reason;
  char            *created_at;
  char            *updated_at;
  char            *last_activity_at;
  gint64           active_at;  /* monotonic: the last call that counts as activity */
  gint64           stopped_at; /* monotonic: when it last stopped */
  gboolean         deleted;   /* desiredState destroyed: not live any more */
  gboolean         removed;   /* answers 404 */
  SandboxInstance *local;
  GHashTable      *sessions;  /* id -> EmuSession */
  GHashTable      *ptys;      /* id -> EmuPty */
  GHashTable      *interps;   /* id -> EmuInterp (code interpreter contexts) */
  GHashTable      *lsp_servers; /* "language\nproject" -> set of open documents */
  char            *host_dir;  /* the sandbox's directories on the host: home/, root/ */
  GString         *build_log; /* an image's build log, or NULL */
  gboolean         build_done;
  GPtrArray       *build_steps;     /* utf8: the log lines of steps still to come */
  guint            build_step;
  GPtrArray       *build_followers; /* SoupServerMessage: build-logs?follow=true */
  GPtrArray       *volume_ids;      /* utf8: the volumes mounted, by id ... */
  GPtrArray       *volume_paths;    /* utf8: ... at these paths */
  char            *preview_token;   /* x-daytona-preview-token of its preview URLs */
  EmuImage        *image;           /* what the snapshot or image runs on */
  char            *image_error;     /* or why the build's base image is unknown */
  char            *linked_id;       /* linkedSandbox: the owner's id, or NULL */
};

static void egress_rules_of (EmuSandbox  *sb,
                             GPtrArray  **allow,
                             GPtrArray  **deny);
typedef struct _EmuPty EmuPty;
static void pty_unref (EmuPty *pty);
static void pty_kill_all (EmuSandbox *sb);
static void pty_forget_sandbox (EmuSandbox *sb);
typedef struct _EmuInterp EmuInterp;
static void interp_unref (EmuInterp *interp);
static void interp_kill_all (EmuSandbox *sb);
static void interp_forget_sandbox (EmuSandbox *sb);

static void
close_fd (int *fd)
{
  if (*fd >= 0)
    close (*fd);
  *fd = -1;
}

static void
emu_command_close (EmuCommand *command)
{
  if (command->poll != NULL)
    {
      g_source_destroy (command->poll);
      g_clear_pointer (&command->poll, g_source_unref);
    }
  close_fd (&command->in_fd);
  close_fd (&command->out_fd);
  close_fd (&command->err_fd);
}

static void
emu_command_free (EmuCommand *command)
{
  emu_command_close (command);
  g_free (command->id);
  g_free (command->command);
  g_free (command->dir);
  emu_log_unref (command->log);
  g_free (command);
}

static void
emu_session_free (EmuSession *session)
{
  g_free (session->id);
  g_ptr_array_unref (session->commands);
  g_free (session->dir);
  g_free (session->inner_dir);
  if (session->ctl_fd >= 0)
    close (session->ctl_fd);
  g_clear_object (&session->shell_cancel);
  g_free (session);
}

static void
emu_sandbox_free (EmuSandbox *sb)
{
  g_free (sb->id);
  g_free (sb->name);
  g_free (sb->linked_id);
  g_free (sb->snapshot);
  g_free (sb->user);
  g_free (sb->target);
  g_free (sb->dockerfile);
  g_clear_pointer (&sb->image, _emu_image_free);
  g_free (sb->image_error);
  g_clear_pointer (&sb->env, g_hash_table_unref);
  g_clear_pointer (&sb->labels, g_hash_table_unref);
  g_free (sb->network_allow_list);
  g_free (sb->domain_allow_list);
  g_clear_pointer (&sb->domain_addresses, g_ptr_array_unref);
  g_free (sb->state);
  g_free (sb->desired_state);
  g_free (sb->error_reason);
  g_free (sb->created_at);
  g_free (sb->updated_at);
  g_free (sb->last_activity_at);
  g_clear_object (&sb->local);
  g_hash_table_unref (sb->sessions);
  pty_forget_sandbox (sb);
  g_hash_table_unref (sb->ptys);
  interp_forget_sandbox (sb);
  g_hash_table_unref (sb->interps);
  g_hash_table_unref (sb->lsp_servers);
  g_free (sb->host_dir);
  if (sb->build_log != NULL)
    g_string_free (sb->build_log, TRUE);
  g_clear_pointer (&sb->build_followers, g_ptr_array_unref);
  g_clear_pointer (&sb->build_steps, g_ptr_array_unref);
  g_clear_pointer (&sb->volume_ids, g_ptr_array_unref);
  g_clear_pointer (&sb->volume_paths, g_ptr_array_unref);
  g_free (sb->preview_token);
  g_free (sb);
}

static char *
now_iso (void)
{
  g_autoptr(GDateTime) now = g_date_time_new_now_utc ();

  return g_date_time_format_iso8601 (now);
}

static void
sb_set_state (EmuSandbox *sb,
              const char *state)
{
  g_free (sb->state);
  sb->state = g_strdup (state);
  g_free (sb->updated_at);
  sb->updated_at = now_iso ();
}

/* A setting (state_delay_ms, minute_ms) that the test's thread may change
 * while the server's reads it. */
static guint
emu_setting (DaytonaEmulator *emu,
             const guint     *field)
{
  guint value;

  g_mutex_lock (&emu->lock);
  value = *field;
  g_mutex_unlock (&emu->lock);
  return value;
}

static void
emu_later (DaytonaEmulator *emu,
           guint            delay_ms,
           GSourceFunc      func,
           gpointer         data)
{
  g_autoptr(GSource) source = g_timeout_source_new (delay_ms);

  g_source_set_callback (source, func, data, NULL);
  g_source_attach (source, emu->context);
}

/* What resets the auto-stop timer: toolbox calls and lifecycle changes
 * (not a command running in the background), unless the request says
 * X-Daytona-Skip-Last-Activity-Update. */
static void
sb_touch (EmuSandbox *sb)
{
  sb->active_at = g_get_monotonic_time ();
  g_free (sb->last_activity_at);
  sb->last_activity_at = now_iso ();
}

static EmuSandbox *
emu_find (DaytonaEmulator *emu,
          const char      *id_or_name)
{
  EmuSandbox *sb = g_hash_table_lookup (emu->sandboxes, id_or_name);

  if (sb != NULL && !sb->removed)
    return sb;
  for (guint i = 0; i < emu->order->len; i++)
    {
      sb = g_ptr_array_index (emu->order, i);
      if (!sb->removed && g_strcmp0 (sb->name, id_or_name) == 0)
        return sb;
    }
  return NULL;
}

static void
emu_mark_deleted (EmuSandbox *sb)
{
  DaytonaEmulator *emu = sb->emu;

  if (sb->deleted)
    return;
  sb->deleted = TRUE;
  g_mutex_lock (&emu->lock);
  emu->live--;
  g_mutex_unlock (&emu->lock);
}

/* ------------------------------------------------------------------ */
/* Replies                                                             */

static gboolean
emu_take_break (DaytonaEmulator   *emu,
                SoupServerMessage *msg)
{
  const char *method = soup_server_message_get_method (msg);
  const char *path = g_uri_get_path (soup_server_message_get_uri (msg));
  gboolean hit = FALSE;

  g_mutex_lock (&emu->lock);
  if (emu->break_prefix != NULL &&
      g_strcmp0 (emu->break_method, method) == 0 &&
      g_str_has_prefix (path, emu->break_prefix))
    {
      hit = TRUE;
      g_clear_pointer (&emu->break_method, g_free);
      g_clear_pointer (&emu->break_prefix, g_free);
    }
  g_mutex_unlock (&emu->lock);
  return hit;
}

static void
reply_json (DaytonaEmulator   *emu,
            SoupServerMessage *msg,
            guint              status,
            JsonNode          *node)
{
  g_autofree char *text = NULL;
  gsize len;

  text = json_to_string (node, FALSE);
  json_node_unref (node);
  len = strlen (text);
  if (emu_take_break (emu, msg))
    len = MIN (len / 2, 7);  /* e.g. {"id":" : not JSON any more */
  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_COPY, text, len);
}

static JsonNode *
node_from_builder (JsonBuilder *builder)
{
  return json_builder_get_root (builder);
}

/* NestJS AllExceptionsFilter body. */
static void
api_error (DaytonaEmulator   *emu,
           SoupServerMessage *msg,
           guint              status,
           const char        *message)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autofree char *ts = now_iso ();
  g_autofree char *path = g_uri_to_string_partial (soup_server_message_get_uri (msg),
                                                   G_URI_HIDE_PASSWORD);
  const char *rest = strstr (path, "/api");

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "path");
  json_builder_add_string_value (b, rest ? rest : path);
  json_builder_set_member_name (b, "timestamp");
  json_builder_add_string_value (b, ts);
  json_builder_set_member_name (b, "statusCode");
  json_builder_add_int_value (b, status);
  json_builder_set_member_name (b, "error");
  json_builder_add_string_value (b, soup_status_get_phrase (status));
  json_builder_set_member_name (b, "message");
  json_builder_add_string_value (b, message);
  json_builder_end_object (b);
  reply_json (emu, msg, status, node_from_builder (b));
}

/* Go common_errors middleware body. */
static void
tb_error (DaytonaEmulator   *emu,
          SoupServerMessage *msg,
          guint              status,
          const char        *code,
          const char        *message)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autofree char *ts = now_iso ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "statusCode");
  json_builder_add_int_value (b, status);
  json_builder_set_member_name (b, "message");
  json_builder_add_string_value (b, message);
  json_builder_set_member_name (b, "code");
  json_builder_add_string_value (b, code);
  json_builder_set_member_name (b, "timestamp");
  json_builder_add_string_value (b, ts);
  json_builder_set_member_name (b, "path");
  json_builder_add_string_value (b, g_uri_get_path (soup_server_message_get_uri (msg)));
  json_builder_set_member_name (b, "method");
  json_builder_add_string_value (b, soup_server_message_get_method (msg));
  json_builder_end_object (b);
  reply_json (emu, msg, status, node_from_builder (b));
}

static void
reply_empty (SoupServerMessage *msg,
             guint              status)
{
  soup_server_message_set_status (msg, status, NULL);
  soup_message_body_complete (soup_server_message_get_response_body (msg));
}

/* The request body as a JSON object; NULL (and a 400 sent) if it is not one. */
static JsonObject *
request_object (DaytonaEmulator   *emu,
                SoupServerMessage *msg,
                gboolean           toolbox,
                gboolean           allow_empty)
{
  SoupMessageBody *body = soup_server_message_get_request_body (msg);
  g_autoptr(GBytes) bytes = soup_message_body_flatten (body);
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;
  JsonNode *root;

  if (g_bytes_get_size (bytes) == 0 && allow_empty)
    return json_object_new ();
  if (!json_parser_load_from_data (parser, g_bytes_get_data (bytes, NULL),
                                   g_bytes_get_size (bytes), &error) ||
      (root = json_parser_get_root (parser)) == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      g_autofree char *message = g_strdup_printf ("%s: the body must be a JSON object%s%s",
                                                  toolbox ? "invalid request body" : "Bad Request",
                                                  error ? ": " : "", error ? error->message : "");
      if (toolbox)
        tb_error (emu, msg, 400, "INVALID_REQUEST_BODY", message);
      else
        api_error (emu, msg, 400, message);
      return NULL;
    }
  return json_object_ref (json_node_get_object (root));
}

static gboolean
member_bool (JsonObject *object,
             const char *name)
{
  JsonNode *node = json_object_get_member (object, name);

  return node != NULL && JSON_NODE_HOLDS_VALUE (node) &&
         json_node_get_value_type (node) == G_TYPE_BOOLEAN && json_node_get_boolean (node);
}

/* ------------------------------------------------------------------ */
/* The Sandbox DTO                                                     */

static JsonNode *
sandbox_dto (EmuSandbox *sb,
             gboolean    list_item)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autofree char *proxy = g_strdup_printf ("%s/toolbox", sb->emu->base);

#define STR(k, v) G_STMT_START { json_builder_set_member_name (b, k); json_builder_add_string_value (b, v); } G_STMT_END
#define INT(k, v) G_STMT_START { json_builder_set_member_name (b, k); json_builder_add_int_value (b, v); } G_STMT_END
#define BOOL(k, v) G_STMT_START { json_builder_set_member_name (b, k); json_builder_add_boolean_value (b, v); } G_STMT_END
  json_builder_begin_object (b);
  STR ("id", sb->id);
  STR ("organizationId", EMU_ORG_ID);
  STR ("name", sb->name);
  if (sb->snapshot)
    STR ("snapshot", sb->snapshot);
  STR ("user", sb->user);
  _sandbox_json_add_string_map (b, "labels", sb->labels);
  BOOL ("public", sb->public);
  BOOL ("networkBlockAll", sb->network_block_all);
  BOOL ("kvm", FALSE);
  STR ("target", sb->target);
  INT ("cpu", sb->cpu);
  INT ("gpu", sb->gpu);
  INT ("memory", sb->memory);
  INT ("disk", sb->disk);
  STR ("state", sb->state);
  STR ("desiredState", sb->desired_state);
  if (sb->error_reason)
    {
      STR ("errorReason", sb->error_reason);
      BOOL ("recoverable", FALSE);
    }
  STR ("backupState", "None");
  INT ("autoStopInterval", sb->auto_stop);
  INT ("autoArchiveInterval", sb->auto_archive);
  INT ("autoDeleteInterval", sb->auto_delete);
  STR ("createdAt", sb->created_at);
  STR ("updatedAt", sb->updated_at);
  STR ("lastActivityAt", sb->last_activity_at);
  STR ("sandboxClass", "container");
  STR ("daemonVersion", EMU_DAEMON_VERSION);
  STR ("runnerId", "emulator-runner");
  STR ("toolboxProxyUrl", proxy);
  if (sb->linked_id)
    STR ("linkedSandboxId", sb->linked_id);
  if (!list_item)
    {
      _sandbox_json_add_string_map (b, "env", sb->env);
      if (sb->network_allow_list)
        STR ("networkAllowList", sb->network_allow_list);
      if (sb->domain_allow_list)
        STR ("domainAllowList", sb->domain_allow_list);
      json_builder_set_member_name (b, "volumes");
      json_builder_begin_array (b);
      for (guint i = 0; sb->volume_ids != NULL && i < sb->volume_ids->len; i++)
        {
          json_builder_begin_object (b);
          STR ("volumeId", g_ptr_array_index (sb->volume_ids, i));
          STR ("mountPath", g_ptr_array_index (sb->volume_paths, i));
          json_builder_end_object (b);
        }
      json_builder_end_array (b);
      if (sb->dockerfile)
        {
          json_builder_set_member_name (b, "buildInfo");
          json_builder_begin_object (b);
          STR ("dockerfileContent", sb->dockerfile);
          STR ("createdAt", sb->created_at);
          STR ("updatedAt", sb->created_at);
          STR ("snapshotRef", "emulator-build");
          json_builder_end_object (b);
        }
    }
  json_builder_end_object (b);
#undef STR
#undef INT
#undef BOOL
  return node_from_builder (b);
}

/* ------------------------------------------------------------------ */
/* Life cycle                                                          */

static gboolean
sb_removed_cb (gpointer data)
{
  EmuSandbox *sb = data;

  sb->removed = TRUE;
  return G_SOURCE_REMOVE;
}

static gboolean
sb_destroyed_cb (gpointer data)
{
  EmuSandbox *sb = data;

  sb_set_state (sb, "destroyed");
  if (g_file_test (sb->host_dir, G_FILE_TEST_EXISTS))
    {
      const char *argv[] = { "rm", "-rf", "--", sb->host_dir, NULL };

      g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL, NULL);
    }
  emu_later (sb->emu, 2 * emu_setting (sb->emu, &sb->emu->state_delay_ms) + 1, sb_removed_cb, sb);
  return G_SOURCE_REMOVE;
}

static void
local_destroyed (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  EmuSandbox *sb = user_data;
  g_autoptr(GError) error = NULL;

  if (!sandbox_instance_destroy_finish (SANDBOX_INSTANCE (source), result, &error))
    g_warning ("daytona-emulator: could not destroy local sandbox of %s: %s", sb->id, error->message);
  sb->emu->pending--;
  emu_later (sb->emu, emu_setting (sb->emu, &sb->emu->state_delay_ms), sb_destroyed_cb, sb);
}

/* Kills the sessions' shells, and so their commands. */
static void
sb_cancel_commands (EmuSandbox *sb)
{
  GHashTableIter iter;
  EmuSession *session;

  g_hash_table_iter_init (&iter, sb->sessions);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &session))
    if (session->shell_cancel != NULL)
      g_cancellable_cancel (session->shell_cancel);
  pty_kill_all (sb);
  interp_kill_all (sb);
}

static void build_log_append (EmuSandbox *sb, const char *text, gboolean done);
static void sb_update_linked_hosts (EmuSandbox *sb);

static void
sb_destroy (EmuSandbox *sb)
{
  build_log_append (sb, "ERROR: the sandbox was deleted during its build\n", TRUE);
  emu_mark_deleted (sb);
  sb_update_linked_hosts (sb);
  g_free (sb->desired_state);
  sb->desired_state = g_strdup ("destroyed");
  sb_set_state (sb, "destroying");
  sb_cancel_commands (sb);
  if (sb->local != NULL)
    {
      g_autoptr(SandboxInstance) local = g_steal_pointer (&sb->local);

      sb->emu->pending++;
      sandbox_instance_destroy_async (local, NULL, local_destroyed, sb);
    }
  else
    emu_later (sb->emu, emu_setting (sb->emu, &sb->emu->state_delay_ms), sb_destroyed_cb, sb);
}

/* Build logs: an image's build, step by step, as GET build-logs streams
 * it; the steps are not run (every image is the local backend's root file
 * system, see docs/testing.md). */
static void
build_log_append (EmuSandbox *sb,
                  const char *text,
                  gboolean    done)
{
  if (sb->build_log == NULL || sb->build_done)
    return;
  g_string_append (sb->build_log, text);
  sb->build_done = done;
  for (guint i = 0; i < sb->build_followers->len; i++)
    {
      SoupServerMessage *msg = g_ptr_array_index (sb->build_followers, i);
      SoupMessageBody *body = soup_server_message_get_response_body (msg);

      soup_message_body_append (body, SOUP_MEMORY_COPY, text, strlen (text));
      if (done)
        soup_message_body_complete (body);
      soup_server_message_unpause (msg);
    }
  if (done)
    g_ptr_array_set_size (sb->build_followers, 0);
}

static void
build_log_start (EmuSandbox *sb)
{
  g_auto(GStrv) lines = g_strsplit (sb->dockerfile ? sb->dockerfile : "", "\n", -1);
  g_autoptr(GPtrArray) steps = g_ptr_array_new ();

  sb->build_log = g_string_new (NULL);
  sb->build_followers = g_ptr_array_new_with_free_func (g_object_unref);
  sb->build_steps = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      char *line = g_strstrip (lines[i]);

      if (*line != '\0' && *line != '#')
        g_ptr_array_add (steps, line);
    }
  for (guint i = 0; i < steps->len; i++)
    g_ptr_array_add (sb->build_steps, g_strdup_printf ("Step %u/%u : %s\n", i + 1, steps->len,
                                                       (char *) g_ptr_array_index (steps, i)));
}

static void sb_start_local (EmuSandbox *sb);

/* One build step per state delay, then the sandbox starts. */
static gboolean
build_step_cb (gpointer data)
{
  EmuSandbox *sb = data;

  if (sb->deleted)
    return G_SOURCE_REMOVE;
  if (sb->build_step < sb->build_steps->len)
    {
      build_log_append (sb, g_ptr_array_index (sb->build_steps, sb->build_step), FALSE);
      sb->build_step++;
      emu_later (sb->emu, emu_setting (sb->emu, &sb->emu->state_delay_ms), build_step_cb, sb);
    }
  else if (sb->image_error != NULL)
    {
      g_autofree char *line = g_strdup_printf ("ERROR: %s\n", sb->image_error);

      g_free (sb->error_reason);
      sb->error_reason = g_strdup (sb->image_error);
      sb_set_state (sb, "build_failed");
      build_log_append (sb, line, TRUE);
    }
  else
    sb_start_local (sb);
  return G_SOURCE_REMOVE;
}

static void
build_follower_finished (SoupServerMessage *msg,
                         EmuSandbox        *sb)
{
  g_signal_handlers_disconnect_by_func (msg, build_follower_finished, sb);
  if (sb->build_followers != NULL)
    g_ptr_array_remove (sb->build_followers, msg);
}

static gboolean
sb_started_cb (gpointer data)
{
  EmuSandbox *sb = data;
  g_autofree char *reason = NULL;

  if (sb->deleted)
    return G_SOURCE_REMOVE;
  g_mutex_lock (&sb->emu->lock);
  reason = g_strdup (sb->emu->fail_reason);
  g_mutex_unlock (&sb->emu->lock);
  if (reason != NULL)
    {
      g_free (sb->error_reason);
      sb->error_reason = g_steal_pointer (&reason);
      sb_set_state (sb, sb->dockerfile ? "build_failed" : "error");
      {
        g_autofree char *line = g_strdup_printf ("ERROR: %s\n", sb->error_reason);

        build_log_append (sb, line, TRUE);
      }
    }
  else
    {
      g_autofree char *line = g_strdup_printf ("Successfully built: %s\n", sb->image->how);

      sb_set_state (sb, "started");
      build_log_append (sb, line, TRUE);
    }
  return G_SOURCE_REMOVE;
}

static void
local_created (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  EmuSandbox *sb = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(SandboxInstance) local = NULL;

  sb->emu->pending--;
  local = sandbox_backend_create_finish (SANDBOX_BACKEND (source), result, &error);
  if (local == NULL)
    {
      g_free (sb->error_reason);
      sb->error_reason = g_strdup_printf ("the runner could not create the sandbox: %s",
                                          error->message);
      sb_set_state (sb, "error");
      return;
    }
  if (sb->deleted)
    {
      sb->emu->pending++;
      sandbox_instance_destroy_async (local, NULL, local_destroyed, sb);
      return;
    }
  sb->local = g_steal_pointer (&local);
  sb_update_linked_hosts (sb);
  emu_later (sb->emu, emu_setting (sb->emu, &sb->emu->state_delay_ms), sb_started_cb, sb);
}

/* The sandbox's user and home directory, as the service's: "daytona" in
 * /home/daytona unless the request named another (root: /root). */
static const char *
sb_user (EmuSandbox *sb)
{
  if (sb->user == NULL || *sb->user == '\0' || strchr (sb->user, '/') != NULL ||
      strcmp (sb->user, ".") == 0 || strcmp (sb->user, "..") == 0)
    return "daytona";
  return sb->user;
}

static char *
sb_home (EmuSandbox *sb)
{
  if (strcmp (sb_user (sb), "root") == 0)
    return g_strdup ("/root");
  return g_strdup_printf ("/home/%s", sb_user (sb));
}

/* Where the sandbox's PATH (under /home or /root) is on the host. */
static char *
sb_host_path (EmuSandbox *sb,
              const char *path)
{
  return g_build_filename (sb->host_dir, path, NULL);
}

/* The sandboxes linked with @sb: its owner and the owner's followers. */
static gboolean
sb_linked_with (EmuSandbox *sb,
                EmuSandbox *other)
{
  const char *group = sb->linked_id ? sb->linked_id : sb->id;

  if (other == sb || other->removed || other->deleted)
    return FALSE;
  return strcmp (other->id, group) == 0 || g_strcmp0 (other->linked_id, group) == 0;
}

/* Writes @sb's hosts file (in place: the sandbox has it mounted): the
 * image's /etc/hosts, then each linked sandbox's name and id on the
 * loopback, which linked sandboxes share here (they have the host's
 * network). An image without /etc/hosts gets none. */
static void
sb_write_hosts (EmuSandbox *sb)
{
  g_autofree char *path = sb_host_path (sb, "hosts");
  g_autofree char *source = g_build_filename (sb->image && sb->image->rootfs ? sb->image->rootfs : "/",
                                              "etc", "hosts", NULL);
  g_autofree char *base = NULL;
  g_autoptr(GString) text = g_string_new (NULL);
  FILE *file;

  if (!g_file_get_contents (source, &base, NULL, NULL))
    return;
  g_string_append (text, base);
  if (text->len > 0 && text->str[text->len - 1] != '\n')
    g_string_append_c (text, '\n');
  for (guint i = 0; i < sb->emu->order->len; i++)
    {
      EmuSandbox *other = g_ptr_array_index (sb->emu->order, i);

      if (sb_linked_with (sb, other))
        g_string_append_printf (text, "127.0.0.1\t%s %s\n", other->name, other->id);
    }
  if (g_mkdir_with_parents (sb->host_dir, 0755) != 0 || (file = fopen (path, "w")) == NULL)
    {
      g_warning ("daytona-emulator: cannot write %s: %s", path, g_strerror (errno));
      return;
    }
  fwrite (text->str, 1, text->len, file);
  fclose (file);
}

/* After @sb joined or left its link group: the others' hosts files. */
static void
sb_update_linked_hosts (EmuSandbox *sb)
{
  for (guint i = 0; i < sb->emu->order->len; i++)
    {
      EmuSandbox *other = g_ptr_array_index (sb->emu->order, i);

      if (sb_linked_with (sb, other) && other->local != NULL)
        sb_write_hosts (other);
    }
}

static void
sb_start_local (EmuSandbox *sb)
{
  /* The user's env comes last (below): it may set HOME or USER too. */
  g_autoptr(SandboxSpec) spec = _emu_local_spec_new_on ("daytona-emulator-id", sb->id, NULL, sb->image);
  g_autofree char *home = sb_home (sb);
  g_autofree char *host_home = sb_host_path (sb, home);
  GHashTableIter iter;
  gpointer key, value;

  if (sb->image == NULL)
    {
      /* A failed build has nothing to run. */
      sb_set_state (sb, "build_failed");
      return;
    }
  /* The home directory is the emulator's (kept across stop and start),
   * mounted at /home (or /root), and the work directory, as in the
   * service's images. */
  if (g_mkdir_with_parents (host_home, 0755) != 0)
    g_warning ("daytona-emulator: cannot make %s: %s", host_home, g_strerror (errno));
  if (strcmp (home, "/root") == 0)
    {
      /* The root user's processes are root inside, as in the service. */
      sandbox_spec_add_mount (spec, host_home, "/root", FALSE);
      sandbox_spec_set_run_as_root (spec, TRUE);
    }
  else
    {
      g_autofree char *host_homes = sb_host_path (sb, "home");

      sandbox_spec_add_mount (spec, host_homes, "/home", FALSE);
    }
  /* `whoami` and `ls -l` name the user as in the service's images. */
  if (strcmp (home, "/root") != 0)
    {
      g_autofree char *etc = sb_host_path (sb, "etc");
      g_autoptr(GError) error = NULL;

      if (!_emu_add_user_files_from (spec, sb->image->rootfs, etc, sb_user (sb), home, &error))
        g_warning ("daytona-emulator: %s", error->message);
    }
  /* /etc/hosts: the image's, plus the names of the sandboxes it is linked
   * with (rewritten in place as they come and go). */
  {
    g_autofree char *hosts = sb_host_path (sb, "hosts");

    sb_write_hosts (sb);
    if (g_file_test (hosts, G_FILE_TEST_IS_REGULAR))
      sandbox_spec_add_mount (spec, hosts, "/etc/hosts", TRUE);
  }
  sandbox_spec_set_env (spec, "HOME", home);
  sandbox_spec_set_env (spec, "USER", sb_user (sb));
  sandbox_spec_set_env (spec, "LOGNAME", sb_user (sb));
  g_hash_table_iter_init (&iter, sb->env);
  while (g_hash_table_iter_next (&iter, &key, &value))
    sandbox_spec_set_env (spec, key, value);
  /* networkBlockAll: the sandbox gets no network at all; otherwise it has
   * the host's, limited to networkAllowList's blocks and domainAllowList's
   * addresses when there are some (egress rules, which
   * network-settings can replace later). */
  sb->has_network = !sb->network_block_all;
  sandbox_spec_set_network (spec, sb->has_network);
  if (sb->has_network)
    {
      g_autoptr(GPtrArray) allow = NULL;
      g_autoptr(GPtrArray) deny = NULL;

      egress_rules_of (sb, &allow, &deny);
      sandbox_spec_set_egress_rules (spec, allow ? (const char * const *) allow->pdata : NULL,
                                     deny ? (const char * const *) deny->pdata : NULL);
    }
  for (guint i = 0; sb->volume_ids != NULL && i < sb->volume_ids->len; i++)
    {
      EmuVolume *volume = g_hash_table_lookup (sb->emu->volumes, g_ptr_array_index (sb->volume_ids, i));

      if (volume != NULL)
        sandbox_spec_add_mount (spec, volume->host_dir, g_ptr_array_index (sb->volume_paths, i), FALSE);
    }
  g_message ("daytona-emulator: sandbox %s: %s", sb->id, sb->image->how);
  sb->emu->pending++;
  sandbox_backend_create_async (sb->emu->local, spec, NULL, local_created, sb);
}

static gboolean
sb_autodelete_cb (gpointer data)
{
  EmuSandbox *sb = data;
  gint64 after = (gint64) sb->auto_delete * emu_setting (sb->emu, &sb->emu->minute_ms) * 1000;

  /* Still stopped, for as long as autoDeleteInterval (it may have been
   * started and stopped again since). */
  if (!sb->deleted && sb->auto_delete > 0 && g_strcmp0 (sb->state, "stopped") == 0 &&
      g_get_monotonic_time () - sb->stopped_at >= after - 1000)
    sb_destroy (sb);
  return G_SOURCE_REMOVE;
}

static gboolean
sb_stopped_cb (gpointer data)
{
  EmuSandbox *sb = data;

  if (sb->deleted)
    return G_SOURCE_REMOVE;
  sb_set_state (sb, "stopped");
  sb->stopped_at = g_get_monotonic_time ();
  if (sb->auto_delete == 0)
    sb_destroy (sb);
  else if (sb->auto_delete > 0)
    emu_later (sb->emu, (guint) MIN ((guint64) sb->auto_delete * emu_setting (sb->emu, &sb->emu->minute_ms), G_MAXUINT),
               sb_autodelete_cb, sb);
  return G_SOURCE_REMOVE;
}

/* Stops a started sandbox: its commands are killed. */
static void
sb_stop (EmuSandbox *sb)
{
  g_free (sb->desired_state);
  sb->desired_state = g_strdup ("stopped");
  sb_set_state (sb, "stopping");
  sb_cancel_commands (sb);
  /* From "stopping" on nothing of it runs: its local sandbox is frozen (the
   * service stops its container), its files are kept. */
  if (sb->local != NULL)
    {
      g_autoptr(GError) error = NULL;

      if (!sandbox_instance_pause (sb->local, NULL, &error))
        g_warning ("daytona-emulator: pausing the local sandbox of %s: %s", sb->id, error->message);
    }
  emu_later (sb->emu, emu_setting (sb->emu, &sb->emu->state_delay_ms), sb_stopped_cb, sb);
}

/* autoStopInterval: a started sandbox without activity for that many
 * minutes stops (and with autoDeleteInterval 0, is deleted). */
static gboolean
emu_autostop_tick (gpointer data)
{
  DaytonaEmulator *emu = data;
  gint64 now = g_get_monotonic_time ();
  gint64 minute = (gint64) emu_setting (emu, &emu->minute_ms) * 1000;

  for (guint i = 0; i < emu->order->len; i++)
    {
      EmuSandbox *sb = g_ptr_array_index (emu->order, i);

      if (!sb->deleted && sb->auto_stop > 0 && g_strcmp0 (sb->state, "started") == 0 &&
          g_strcmp0 (sb->desired_state, "started") == 0 &&
          now - sb->active_at >= (gint64) sb->auto_stop * minute)
        {
          g_debug ("daytona-emulator: %s auto-stops (no activity for %d min)", sb->id, sb->auto_stop);
          sb_stop (sb);
        }
    }
  return G_SOURCE_CONTINUE;
}

static gboolean
sb_transitioning (EmuSandbox *sb)
{
  if (g_strcmp0 (sb->state, "error") == 0 || g_strcmp0 (sb->state, "build_failed") == 0)
    return FALSE;
  return g_strcmp0 (sb->state, sb->desired_state) != 0;
}

/* ------------------------------------------------------------------ */
/* Control plane                                                       */

/* ------------------------------------------------------------------ */
/* Volumes: /api/volumes (a directory per volume, mounted read-write    */
/* into every sandbox that names it)                                    */

static void
emu_volume_free (EmuVolume *volume)
{
  g_free (volume->id);
  g_free (volume->name);
  g_free (volume->created_at);
  g_free (volume->host_dir);
  g_free (volume);
}

static EmuVolume *
emu_volume_find (DaytonaEmulator *emu,
                 const char      *id_or_name)
{
  GHashTableIter iter;
  gpointer value;

  if (g_hash_table_lookup (emu->volumes, id_or_name) != NULL)
    return g_hash_table_lookup (emu->volumes, id_or_name);
  g_hash_table_iter_init (&iter, emu->volumes);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (strcmp (((EmuVolume *) value)->name, id_or_name) == 0)
      return value;
  return NULL;
}

/* As the service: pending_create first, ready a moment later. */
static const char *
volume_state (EmuVolume *volume)
{
  return g_get_monotonic_time () >= volume->ready_at ? "ready" : "pending_create";
}

static void
volume_dto_build (JsonBuilder *b,
                  EmuVolume   *volume)
{
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "id");
  json_builder_add_string_value (b, volume->id);
  json_builder_set_member_name (b, "name");
  json_builder_add_string_value (b, volume->name);
  json_builder_set_member_name (b, "organizationId");
  json_builder_add_string_value (b, EMU_ORG_ID);
  json_builder_set_member_name (b, "state");
  json_builder_add_string_value (b, volume_state (volume));
  json_builder_set_member_name (b, "createdAt");
  json_builder_add_string_value (b, volume->created_at);
  json_builder_set_member_name (b, "updatedAt");
  json_builder_add_string_value (b, volume->created_at);
  json_builder_set_member_name (b, "lastUsedAt");
  json_builder_add_string_value (b, volume->created_at);
  json_builder_set_member_name (b, "errorReason");
  json_builder_add_null_value (b);
  json_builder_end_object (b);
}

static JsonNode *
volume_dto (EmuVolume *volume)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();

  volume_dto_build (b, volume);
  return node_from_builder (b);
}


/* volumes: [{volumeId (an id or a name), mountPath, subpath?}] */
static gboolean
volumes_from_request (DaytonaEmulator  *emu,
                      JsonNode         *node,
                      GPtrArray        *ids,
                      GPtrArray        *paths,
                      guint            *status,
                      char            **message)
{
  JsonArray *array;

  *status = 400;
  if (!JSON_NODE_HOLDS_ARRAY (node))
    {
      *message = g_strdup ("volumes must be an array");
      return FALSE;
    }
  array = json_node_get_array (node);
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      JsonNode *element = json_array_get_element (array, i);
      JsonObject *mount = JSON_NODE_HOLDS_OBJECT (element) ? json_node_get_object (element) : NULL;
      const char *id = mount ? _sandbox_json_get_string (mount, "volumeId") : NULL;
      const char *path = mount ? _sandbox_json_get_string (mount, "mountPath") : NULL;
      EmuVolume *volume;

      if (id == NULL || path == NULL || path[0] != '/' || strcmp (path, "/") == 0)
        {
          *message = g_strdup ("each volume needs a volumeId and an absolute mountPath other than /");
          return FALSE;
        }
      volume = emu_volume_find (emu, id);
      if (volume == NULL)
        {
          *message = g_strdup_printf ("Volume '%s' not found", id);
          *status = 404;
          return FALSE;
        }
      if (strcmp (volume_state (volume), "ready") != 0)
        {
          *message = g_strdup_printf ("Volume '%s' is not in a ready state. Current state: %s",
                                      volume->name, volume_state (volume));
          return FALSE;
        }
      g_ptr_array_add (ids, g_strdup (volume->id));
      g_ptr_array_add (paths, g_strdup (path));
    }
  return TRUE;
}

static void
api_volumes (DaytonaEmulator   *emu,
             SoupServerMessage *msg,
             const char        *rest)      /* after /api/volumes */
{
  const char *method = soup_server_message_get_method (msg);

  if ((*rest == '\0' || strcmp (rest, "/") == 0) && strcmp (method, "GET") == 0)
    {
      g_autoptr(JsonBuilder) b = json_builder_new ();
      GHashTableIter iter;
      gpointer value;

      json_builder_begin_array (b);
      g_hash_table_iter_init (&iter, emu->volumes);
      while (g_hash_table_iter_next (&iter, NULL, &value))
        volume_dto_build (b, value);
      json_builder_end_array (b);
      return reply_json (emu, msg, 200, node_from_builder (b));
    }
  if ((*rest == '\0' || strcmp (rest, "/") == 0) && strcmp (method, "POST") == 0)
    {
      g_autoptr(JsonObject) body = request_object (emu, msg, FALSE, TRUE);
      const char *name;
      EmuVolume *volume;

      if (body == NULL)
        return;
      name = _sandbox_json_get_string (body, "name");
      if (name == NULL || *name == '\0' || strchr (name, '/') != NULL || strcmp (name, "..") == 0)
        return api_error (emu, msg, 400, "name must be a valid volume name");
      if (emu_volume_find (emu, name) != NULL)
        {
          g_autofree char *m = g_strdup_printf ("Volume with name %s already exists", name);
          return api_error (emu, msg, 409, m);
        }
      volume = g_new0 (EmuVolume, 1);
      volume->id = g_uuid_string_random ();
      volume->name = g_strdup (name);
      /* The service's volume manager makes a volume ready within moments,
       * and Daytona's own example mounts one in a sandbox right after
       * creating it: here it is ready at once. */
      volume->ready_at = g_get_monotonic_time ();
      volume->created_at = now_iso ();
      volume->host_dir = g_strdup_printf ("%s/volumes/%s", emu->tmpdir, volume->id);
      if (g_mkdir_with_parents (volume->host_dir, 0755) != 0)
        {
          g_autofree char *m = g_strdup_printf ("Cannot make the volume's directory: %s", g_strerror (errno));
          emu_volume_free (volume);
          return api_error (emu, msg, 500, m);
        }
      g_hash_table_insert (emu->volumes, volume->id, volume);
      return reply_json (emu, msg, 200, volume_dto (volume));
    }
  if (g_str_has_prefix (rest, "/by-name/") && strcmp (method, "GET") == 0)
    {
      g_autofree char *name = g_uri_unescape_string (rest + strlen ("/by-name/"), NULL);
      EmuVolume *volume = NULL;
      GHashTableIter iter;
      gpointer value;

      g_hash_table_iter_init (&iter, emu->volumes);
      while (name != NULL && g_hash_table_iter_next (&iter, NULL, &value))
        if (strcmp (((EmuVolume *) value)->name, name) == 0)
          volume = value;
      if (volume == NULL)
        {
          g_autofree char *m = g_strdup_printf ("Volume with name %s not found", name ? name : "");
          return api_error (emu, msg, 404, m);
        }
      return reply_json (emu, msg, 200, volume_dto (volume));
    }
  if (g_str_has_prefix (rest, "/") && strchr (rest + 1, '/') == NULL)
    {
      g_autofree char *id = g_uri_unescape_string (rest + 1, NULL);
      EmuVolume *volume = id ? g_hash_table_lookup (emu->volumes, id) : NULL;

      if (volume == NULL)
        {
          g_autofree char *m = g_strdup_printf ("Volume with ID %s not found", id ? id : "");
          return api_error (emu, msg, 404, m);
        }
      if (strcmp (method, "GET") == 0)
        return reply_json (emu, msg, 200, volume_dto (volume));
      if (strcmp (method, "DELETE") == 0)
        {
          /* In use by a live sandbox: the service refuses too. */
          for (guint i = 0; i < emu->order->len; i++)
            {
              EmuSandbox *sb = g_ptr_array_index (emu->order, i);

              if (!sb->deleted && sb->volume_ids != NULL &&
                  g_ptr_array_find_with_equal_func (sb->volume_ids, volume->id, g_str_equal, NULL))
                {
                  g_autofree char *m = g_strdup_printf ("Volume %s is in use by sandbox %s",
                                                        volume->name, sb->id);
                  return api_error (emu, msg, 409, m);
                }
            }
          {
            g_autofree char *cmd = g_strdup_printf ("rm -rf '%s'", volume->host_dir);
            g_spawn_command_line_sync (cmd, NULL, NULL, NULL, NULL);
          }
          g_hash_table_remove (emu->volumes, id);
          reply_empty (msg, 200);
          return;
        }
    }
  {
    g_autofree char *m = g_strdup_printf ("Cannot %s /api/volumes%s", method, rest);
    api_error (emu, msg, 404, m);
  }
}

/* ------------------------------------------------------------------ */
/* Preview URLs: BASE/_preview/ID/PORT/... proxies to the port of the   */
/* local sandbox (which shares the host's loopback when it has network)*/

static JsonNode *
preview_dto (EmuSandbox *sb,
             guint       port)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autofree char *url = g_strdup_printf ("%s/_preview/%s/%u", sb->emu->base, sb->id, port);

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "sandboxId");
  json_builder_add_string_value (b, sb->id);
  json_builder_set_member_name (b, "port");
  json_builder_add_int_value (b, port);
  json_builder_set_member_name (b, "url");
  json_builder_add_string_value (b, url);
  json_builder_set_member_name (b, "token");
  json_builder_add_string_value (b, sb->preview_token);
  json_builder_end_object (b);
  return node_from_builder (b);
}

static void
emu_signed_free (EmuSigned *signed_url)
{
  g_free (signed_url->sandbox_id);
  g_free (signed_url);
}

static JsonNode *
signed_preview_dto (EmuSandbox *sb,
                    guint       port,
                    guint       expires_s)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  EmuSigned *signed_url = g_new0 (EmuSigned, 1);
  char *token = g_uuid_string_random ();
  g_autofree char *url = g_strdup_printf ("%s/_signed/%s", sb->emu->base, token);

  signed_url->sandbox_id = g_strdup (sb->id);
  signed_url->port = port;
  signed_url->expires_at = g_get_monotonic_time () + (gint64) expires_s * G_USEC_PER_SEC;
  g_hash_table_insert (sb->emu->signed_urls, token, signed_url);

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "sandboxId");
  json_builder_add_string_value (b, sb->id);
  json_builder_set_member_name (b, "port");
  json_builder_add_int_value (b, port);
  json_builder_set_member_name (b, "url");
  json_builder_add_string_value (b, url);
  json_builder_set_member_name (b, "token");
  json_builder_add_string_value (b, token);
  json_builder_end_object (b);
  return node_from_builder (b);
}

static void
preview_error (SoupServerMessage *msg,
               guint              status,
               const char        *message)
{
  g_autofree char *body = g_strdup_printf ("{\"statusCode\":%u,\"message\":\"%s\"}", status, message);

  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_COPY, body, strlen (body));
}

static void
preview_refused (SoupServerMessage *msg,
                 gpointer           user_data)
{
  preview_error (msg, 502, "The sandbox is running but port is not open");
}

static void preview_forward (DaytonaEmulator *emu, SoupServerMessage *msg, EmuSandbox *sb,
                             guint port, const char *path);

static void
handle_preview (DaytonaEmulator   *emu,
                SoupServerMessage *msg,
                const char        *rest)      /* after /_preview/ */
{
  g_auto(GStrv) parts = g_strsplit (rest, "/", 3);
  EmuSandbox *sb = parts[0] ? emu_find (emu, parts[0]) : NULL;
  guint64 port = 0;
  const char *token = soup_message_headers_get_one (soup_server_message_get_request_headers (msg),
                                                    "x-daytona-preview-token");

  if (sb == NULL || sb->deleted)
    return preview_error (msg, 404, "Sandbox not found");
  if (parts[1] == NULL || !g_ascii_string_to_unsigned (parts[1], 10, 1, 65535, &port, NULL))
    return preview_error (msg, 400, "Invalid port");
  if (!sb->public && g_strcmp0 (token, sb->preview_token) != 0)
    {
      /* The proxy also takes the API key, as Authorization: Bearer KEY. */
      const char *auth = soup_message_headers_get_one (soup_server_message_get_request_headers (msg),
                                                       "Authorization");
      gboolean ok;

      g_mutex_lock (&emu->lock);
      ok = auth != NULL && g_str_has_prefix (auth, "Bearer ") &&
           strcmp (auth + strlen ("Bearer "), emu->api_key) == 0;
      g_mutex_unlock (&emu->lock);
      if (!ok)
        return preview_error (msg, 401, "Unauthorized: send the x-daytona-preview-token header");
    }
  preview_forward (emu, msg, sb, (guint) port, parts[2]);
}

/* /_signed/TOKEN/...: a signed preview URL, the token in the URL itself. */
static void
handle_signed (DaytonaEmulator   *emu,
               SoupServerMessage *msg,
               const char        *rest)      /* after /_signed/ */
{
  g_auto(GStrv) parts = g_strsplit (rest, "/", 2);
  EmuSigned *signed_url = parts[0] ? g_hash_table_lookup (emu->signed_urls, parts[0]) : NULL;
  EmuSandbox *sb;

  if (signed_url == NULL || g_get_monotonic_time () >= signed_url->expires_at)
    return preview_error (msg, 401, "Unauthorized: the signed preview URL is invalid or expired");
  sb = emu_find (emu, signed_url->sandbox_id);
  if (sb == NULL || sb->deleted)
    return preview_error (msg, 404, "Sandbox not found");
  preview_forward (emu, msg, sb, signed_url->port, parts[1]);
}

static void
preview_forward (DaytonaEmulator   *emu,
                 SoupServerMessage *msg,
                 EmuSandbox        *sb,
                 guint              port,
                 const char        *path)
{
  g_autofree char *absolute = g_strconcat ("/", path ? path : "", NULL);

  if (sb->local == NULL || strcmp (sb->state, "started") != 0)
    return preview_error (msg, 502, "The sandbox is not running");
  sb_touch (sb);
  if (!_emu_forward_to_port (&emu->proxy, msg, port, absolute, preview_refused, NULL, NULL))
    preview_error (msg, 400, "Invalid path");
}

static gboolean
has_member (JsonObject *o,
            const char *name)
{
  JsonNode *n = json_object_get_member (o, name);

  return n != NULL && !JSON_NODE_HOLDS_NULL (n);
}

/* ------------------------------------------------------------------ */
/* Snapshots, images and network rules (docs/testing.md, "Images in the
 * emulators", "Network rules")                                        */

/* The snapshot API (/api/snapshots): a snapshot from an image name or a
 * Dockerfile "builds" (pending, pulling or building, one state delay per
 * step, then active) into what the image mapping gives its image or base
 * image; a build log as the sandboxes' (build-logs-url, build-logs with
 * follow). A create naming it runs on that image. Snapshots are freed with
 * the emulator (their timers may outlive a delete). */
#define SNAPSHOT_BUILD_MIN_MS 1500

typedef struct
{
  DaytonaEmulator *emu;
  char            *id;
  char            *name;
  char            *image_name;  /* or NULL: a build */
  char            *dockerfile;  /* or NULL */
  char            *state;
  char            *error_reason;
  char            *created_at;
  char            *updated_at;
  int              cpu, gpu, mem, disk;
  EmuImage        *image;       /* NULL when the name is unknown */
  char            *image_error;
  gboolean         removed;
  gboolean         general;     /* one of the service's own: resolved by name at each create */
  GString         *log;
  gboolean         log_done;
  GPtrArray       *steps;       /* utf8: log lines still to come */
  guint            step;
  gint64           building_since; /* monotonic, µs */
  GPtrArray       *followers;   /* SoupServerMessage: build-logs?follow=true */
} EmuSnapshot;

static void
emu_snapshot_free (EmuSnapshot *snap)
{
  g_free (snap->id);
  g_free (snap->name);
  g_free (snap->image_name);
  g_free (snap->dockerfile);
  g_free (snap->state);
  g_free (snap->error_reason);
  g_free (snap->created_at);
  g_free (snap->updated_at);
  g_clear_pointer (&snap->image, _emu_image_free);
  g_free (snap->image_error);
  g_string_free (snap->log, TRUE);
  g_ptr_array_unref (snap->steps);
  g_ptr_array_unref (snap->followers);
  g_free (snap);
}

static JsonNode *snapshot_dto (EmuSnapshot *snap);

/* Every snapshot, starting with the service's general ones (the default
 * snapshot daytona-small, and its bigger siblings). */
static GPtrArray *
emu_snapshots (DaytonaEmulator *emu)
{
  static const struct { const char *name; int cpu, mem, disk; } general[] = {
    { "daytona-small", 1, 1, 3 }, { "daytona-medium", 2, 4, 8 }, { "daytona-large", 4, 8, 10 },
  };
  GPtrArray *all = g_object_get_data (G_OBJECT (emu->server), "snapshots");

  if (all != NULL)
    return all;
  all = g_ptr_array_new_with_free_func ((GDestroyNotify) emu_snapshot_free);
  g_object_set_data_full (G_OBJECT (emu->server), "snapshots", all, (GDestroyNotify) g_ptr_array_unref);
  for (guint i = 0; i < G_N_ELEMENTS (general); i++)
    {
      EmuSnapshot *snap = g_new0 (EmuSnapshot, 1);

      snap->emu = emu;
      snap->id = g_uuid_string_random ();
      snap->name = g_strdup (general[i].name);
      snap->image_name = g_strdup ("daytonaio/sandbox:0.4.3");
      snap->general = TRUE;
      snap->state = g_strdup ("active");
      snap->cpu = general[i].cpu;
      snap->mem = general[i].mem;
      snap->disk = general[i].disk;
      snap->created_at = now_iso ();
      snap->updated_at = g_strdup (snap->created_at);
      snap->log = g_string_new (NULL);
      snap->log_done = TRUE;
      snap->steps = g_ptr_array_new_with_free_func (g_free);
      snap->followers = g_ptr_array_new_with_free_func (g_object_unref);
      g_ptr_array_add (all, snap);
    }
  return all;
}

static EmuSnapshot *
snapshot_find (DaytonaEmulator *emu,
               const char      *id_or_name)
{
  GPtrArray *all = emu_snapshots (emu);

  for (guint i = 0; i < all->len; i++)
    {
      EmuSnapshot *snap = g_ptr_array_index (all, i);

      if (!snap->removed && (strcmp (snap->id, id_or_name) == 0 || strcmp (snap->name, id_or_name) == 0))
        return snap;
    }
  return NULL;
}

static void
snapshot_set_state (EmuSnapshot *snap,
                    const char  *state)
{
  g_free (snap->state);
  snap->state = g_strdup (state);
  g_free (snap->updated_at);
  snap->updated_at = now_iso ();
}

static void
snapshot_log (EmuSnapshot *snap,
              const char  *text,
              gboolean     done)
{
  if (snap->log_done)
    return;
  g_string_append (snap->log, text);
  snap->log_done = done;
  for (guint i = 0; i < snap->followers->len; i++)
    {
      SoupServerMessage *msg = g_ptr_array_index (snap->followers, i);
      SoupMessageBody *body = soup_server_message_get_response_body (msg);

      soup_message_body_append (body, SOUP_MEMORY_COPY, text, strlen (text));
      if (done)
        soup_message_body_complete (body);
      soup_server_message_unpause (msg);
    }
  if (done)
    g_ptr_array_set_size (snap->followers, 0);
}

static void
snapshot_follower_finished (SoupServerMessage *msg,
                            EmuSnapshot       *snap)
{
  g_signal_handlers_disconnect_by_func (msg, snapshot_follower_finished, snap);
  g_ptr_array_remove (snap->followers, msg);
}

static gboolean
snapshot_step_cb (gpointer data)
{
  EmuSnapshot *snap = data;

  if (snap->removed)
    return G_SOURCE_REMOVE;
  if (g_strcmp0 (snap->state, "pending") == 0)
    {
      snapshot_set_state (snap, snap->dockerfile ? "building" : "pulling");
      snap->building_since = g_get_monotonic_time ();
    }
  if (snap->step < snap->steps->len)
    {
      snapshot_log (snap, g_ptr_array_index (snap->steps, snap->step), FALSE);
      snap->step++;
      emu_later (snap->emu, emu_setting (snap->emu, &snap->emu->state_delay_ms), snapshot_step_cb, snap);
      return G_SOURCE_REMOVE;
    }
  /* A build stays "building" for as long as the SDK's poll (1 s) takes to
   * see it, since that is when it starts following the build log. */
  if (snap->dockerfile != NULL && g_get_monotonic_time () - snap->building_since < SNAPSHOT_BUILD_MIN_MS * 1000)
    {
      emu_later (snap->emu, SNAPSHOT_BUILD_MIN_MS - (guint) ((g_get_monotonic_time () - snap->building_since) / 1000),
                 snapshot_step_cb, snap);
      return G_SOURCE_REMOVE;
    }
  if (snap->image == NULL)
    {
      g_autofree char *line = g_strdup_printf ("ERROR: %s\n", snap->image_error);

      snap->error_reason = g_strdup (snap->image_error);
      snapshot_set_state (snap, snap->dockerfile ? "build_failed" : "error");
      snapshot_log (snap, line, TRUE);
    }
  else
    {
      g_autofree char *line = g_strdup_printf ("Successfully built: %s\n", snap->image->how);

      snapshot_set_state (snap, "active");
      snapshot_log (snap, line, TRUE);
    }
  return G_SOURCE_REMOVE;
}

static JsonNode *
snapshot_dto (EmuSnapshot *snap)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
#define SNAP_STR(k, v) do { json_builder_set_member_name (b, k); \
    if ((v) != NULL) json_builder_add_string_value (b, v); else json_builder_add_null_value (b); } while (0)
#define SNAP_INT(k, v) do { json_builder_set_member_name (b, k); json_builder_add_int_value (b, v); } while (0)
  SNAP_STR ("id", snap->id);
  SNAP_STR ("organizationId", "emulator-organization");
  json_builder_set_member_name (b, "general");
  json_builder_add_boolean_value (b, snap->general);
  SNAP_STR ("name", snap->name);
  SNAP_STR ("imageName", snap->image_name);
  SNAP_STR ("state", snap->state);
  SNAP_STR ("size", NULL);
  SNAP_STR ("entrypoint", NULL);
  SNAP_INT ("cpu", snap->cpu);
  SNAP_INT ("gpu", snap->gpu);
  SNAP_INT ("mem", snap->mem);
  SNAP_INT ("disk", snap->disk);
  SNAP_STR ("errorReason", snap->error_reason);
  SNAP_STR ("createdAt", snap->created_at);
  SNAP_STR ("updatedAt", snap->updated_at);
  SNAP_STR ("lastUsedAt", NULL);
  SNAP_STR ("sourceSandboxId", NULL);
#undef SNAP_STR
#undef SNAP_INT
  json_builder_end_object (b);
  return node_from_builder (b);
}

static char *dockerfile_base (const char *dockerfile);

static void
snapshot_create (DaytonaEmulator   *emu,
                 SoupServerMessage *msg)
{
  g_autoptr(JsonObject) body = request_object (emu, msg, FALSE, FALSE);
  g_autoptr(GError) error = NULL;
  g_autofree char *source = NULL;
  JsonObject *build_info = NULL;
  JsonNode *node;
  const char *name;
  EmuSnapshot *snap;
  gint64 v;

  if (body == NULL)
    return;
  name = _sandbox_json_get_string (body, "name");
  node = json_object_get_member (body, "buildInfo");
  if (node != NULL && JSON_NODE_HOLDS_OBJECT (node))
    build_info = json_node_get_object (node);
  if (name == NULL || *name == '\0')
    return api_error (emu, msg, 400, "name must be a string");
  if (snapshot_find (emu, name) != NULL)
    {
      g_autofree char *m = g_strdup_printf ("Snapshot with name \"%s\" already exists", name);

      return api_error (emu, msg, 409, m);
    }
  if ((_sandbox_json_get_string (body, "imageName") == NULL) == (build_info == NULL))
    return api_error (emu, msg, 400, "Must specify either imageName or buildInfo");
  if (build_info != NULL && _sandbox_json_get_string (build_info, "dockerfileContent") == NULL)
    return api_error (emu, msg, 400, "buildInfo.dockerfileContent must be a string");

  snap = g_new0 (EmuSnapshot, 1);
  snap->emu = emu;
  snap->id = g_uuid_string_random ();
  snap->name = g_strdup (name);
  snap->image_name = g_strdup (_sandbox_json_get_string (body, "imageName"));
  snap->dockerfile = build_info ? g_strdup (_sandbox_json_get_string (build_info, "dockerfileContent")) : NULL;
  snap->cpu = _sandbox_json_get_int (body, "cpu", &v) ? (int) v : 1;
  snap->gpu = _sandbox_json_get_int (body, "gpu", &v) ? (int) v : 0;
  snap->mem = _sandbox_json_get_int (body, "memory", &v) ? (int) v : 1;
  snap->disk = _sandbox_json_get_int (body, "disk", &v) ? (int) v : 3;
  snap->created_at = now_iso ();
  snap->updated_at = g_strdup (snap->created_at);
  snap->state = g_strdup ("pending");
  snap->log = g_string_new (NULL);
  snap->steps = g_ptr_array_new_with_free_func (g_free);
  snap->followers = g_ptr_array_new_with_free_func (g_object_unref);
  if (snap->dockerfile != NULL)
    {
      g_auto(GStrv) lines = g_strsplit (snap->dockerfile, "\n", -1);
      g_autoptr(GPtrArray) steps = g_ptr_array_new ();

      for (guint i = 0; lines[i] != NULL; i++)
        if (*g_strstrip (lines[i]) != '\0' && *lines[i] != '#')
          g_ptr_array_add (steps, lines[i]);
      for (guint i = 0; i < steps->len; i++)
        g_ptr_array_add (snap->steps, g_strdup_printf ("Step %u/%u : %s\n", i + 1, steps->len,
                                                       (char *) g_ptr_array_index (steps, i)));
      source = dockerfile_base (snap->dockerfile);
    }
  else
    {
      g_ptr_array_add (snap->steps, g_strdup_printf ("Pulling image %s\n", snap->image_name));
      source = g_strdup (snap->image_name);
    }
  if (source == NULL)
    snap->image_error = g_strdup ("the Dockerfile has no FROM instruction");
  else if ((snap->image = _emu_images_resolve (emu->images, source, &error)) == NULL)
    snap->image_error = g_strdup_printf ("failed to pull image %s: not found: %s", source, error->message);
  g_ptr_array_add (emu_snapshots (emu), snap);
  reply_json (emu, msg, 200, snapshot_dto (snap));
  emu_later (emu, emu_setting (emu, &emu->state_delay_ms), snapshot_step_cb, snap);
}

static void
snapshot_list (DaytonaEmulator   *emu,
               SoupServerMessage *msg,
               GHashTable        *query)
{
  GPtrArray *all = emu_snapshots (emu);
  g_autoptr(GPtrArray) live = g_ptr_array_new ();
  g_autoptr(JsonBuilder) b = json_builder_new ();
  const char *page_s = _emu_query (query, "page");
  const char *limit_s = _emu_query (query, "limit");
  guint page = page_s ? MAX (1, (guint) g_ascii_strtoull (page_s, NULL, 10)) : 1;
  guint limit = limit_s ? MAX (1, (guint) g_ascii_strtoull (limit_s, NULL, 10)) : 100;

  for (guint i = 0; i < all->len; i++)
    if (!((EmuSnapshot *) g_ptr_array_index (all, i))->removed)
      g_ptr_array_add (live, g_ptr_array_index (all, i));
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "items");
  json_builder_begin_array (b);
  for (guint i = (page - 1) * limit; i < live->len && i < page * limit; i++)
    json_builder_add_value (b, snapshot_dto (g_ptr_array_index (live, i)));
  json_builder_end_array (b);
  json_builder_set_member_name (b, "total");
  json_builder_add_int_value (b, live->len);
  json_builder_set_member_name (b, "page");
  json_builder_add_int_value (b, page);
  json_builder_set_member_name (b, "totalPages");
  json_builder_add_int_value (b, (live->len + limit - 1) / limit);
  json_builder_end_object (b);
  reply_json (emu, msg, 200, node_from_builder (b));
}

/* /api/snapshots/{id}[/action] */
static void
snapshot_handle (DaytonaEmulator   *emu,
                 SoupServerMessage *msg,
                 const char        *rest,
                 GHashTable        *query)
{
  const char *method = soup_server_message_get_method (msg);
  g_auto(GStrv) parts = g_strsplit (rest, "/", 2);
  g_autofree char *id = g_uri_unescape_string (parts[0], NULL);
  const char *action = parts[1];
  EmuSnapshot *snap = id ? snapshot_find (emu, id) : NULL;

  if (snap == NULL)
    {
      g_autofree char *m = g_strdup_printf ("Snapshot %s not found", id ? id : parts[0]);

      return api_error (emu, msg, 404, m);
    }
  if (action == NULL && strcmp (method, "GET") == 0)
    return reply_json (emu, msg, 200, snapshot_dto (snap));
  if (action == NULL && strcmp (method, "DELETE") == 0 && snap->general)
    return api_error (emu, msg, 403, "Cannot delete a general snapshot");
  if (action == NULL && strcmp (method, "DELETE") == 0)
    {
      snap->removed = TRUE;
      snapshot_log (snap, "", TRUE);
      soup_server_message_set_status (msg, 200, NULL);
      return;
    }
  if (g_strcmp0 (action, "build-logs-url") == 0 && strcmp (method, "GET") == 0)
    {
      g_autoptr(JsonBuilder) b = json_builder_new ();
      g_autofree char *url = g_strdup_printf ("%s/api/snapshots/%s/build-logs", emu->base, snap->id);

      json_builder_begin_object (b);
      json_builder_set_member_name (b, "url");
      json_builder_add_string_value (b, url);
      json_builder_end_object (b);
      return reply_json (emu, msg, 200, node_from_builder (b));
    }
  if (g_strcmp0 (action, "build-logs") == 0 && strcmp (method, "GET") == 0)
    {
      SoupMessageHeaders *headers = soup_server_message_get_response_headers (msg);

      soup_server_message_set_status (msg, 200, NULL);
      if (g_strcmp0 (_emu_query (query, "follow"), "true") != 0 || snap->log_done)
        {
          soup_server_message_set_response (msg, "text/plain; charset=utf-8", SOUP_MEMORY_COPY,
                                            snap->log->str, snap->log->len);
          return;
        }
      soup_message_headers_set_encoding (headers, SOUP_ENCODING_CHUNKED);
      soup_message_headers_set_content_type (headers, "text/plain; charset=utf-8", NULL);
      if (snap->log->len > 0)
        soup_message_body_append (soup_server_message_get_response_body (msg), SOUP_MEMORY_COPY,
                                  snap->log->str, snap->log->len);
      g_ptr_array_add (snap->followers, g_object_ref (msg));
      g_signal_connect (msg, "finished", G_CALLBACK (snapshot_follower_finished), snap);
      soup_server_message_pause (msg);
      return;
    }
  {
    g_autofree char *m = g_strdup_printf ("Cannot %s /api/snapshots/%s", method, rest);

    api_error (emu, msg, 404, m);
  }
}

/* The default mapping: Daytona's default snapshots and the usual base
 * images run on the host's root. */
static const char default_images[] =
  "daytona-small = host\n"
  "daytona-medium = host\n"
  "daytona-large = host\n"
  "daytonaio/sandbox:* = host\n"
  "debian:* = host\n"
  "python:* = host\n"
  "ubuntu:* = host\n";

/* The base image of a Dockerfile: the first FROM's, without its flags and
 * stage name; NULL without one. */
static char *
dockerfile_base (const char *dockerfile)
{
  g_auto(GStrv) lines = g_strsplit (dockerfile, "\n", -1);

  for (guint i = 0; lines[i] != NULL; i++)
    {
      g_auto(GStrv) words = g_strsplit_set (g_strstrip (lines[i]), " \t", -1);
      guint w = 1;

      if (words[0] == NULL || g_ascii_strcasecmp (words[0], "FROM") != 0)
        continue;
      while (words[w] != NULL && (*words[w] == '\0' || g_str_has_prefix (words[w], "--")))
        w++;
      return words[w] ? g_strdup (words[w]) : NULL;
    }
  return NULL;
}

/* The egress rules of SB's local sandbox (NULL-terminated, or NULL for
 * none): everything denied with networkBlockAll; with networkAllowList or
 * domainAllowList, only their blocks and addresses allowed (and, with
 * domains, the resolver's nameservers); else none. */
static char *allow_list_network (const char *entry, char **message);

static void
egress_rules_of (EmuSandbox  *sb,
                 GPtrArray  **allow,
                 GPtrArray  **deny)
{
  gboolean domains = sb->domain_addresses != NULL && sb->domain_addresses->len > 0;

  *allow = *deny = NULL;
  if (!sb->network_block_all && (sb->network_allow_list == NULL || *sb->network_allow_list == '\0') &&
      !domains)
    return;
  *deny = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (*deny, g_strdup ("0.0.0.0/0"));
  g_ptr_array_add (*deny, NULL);
  if (sb->network_block_all)
    return;
  *allow = g_ptr_array_new_with_free_func (g_free);
  if (sb->network_allow_list != NULL)
    {
      g_auto(GStrv) entries = g_strsplit (sb->network_allow_list, ",", -1);

      for (guint i = 0; entries[i] != NULL; i++)
        {
          g_autofree char *m = NULL;
          char *network = *g_strstrip (entries[i]) != '\0' ? allow_list_network (entries[i], &m) : NULL;

          if (network != NULL)
            g_ptr_array_add (*allow, network);
        }
    }
  for (guint i = 0; domains && i < sb->domain_addresses->len; i++)
    g_ptr_array_add (*allow, g_strdup (g_ptr_array_index (sb->domain_addresses, i)));
  if (domains)
    {
      g_autofree char *conf = NULL;

      if (g_file_get_contents ("/etc/resolv.conf", &conf, NULL, NULL))
        {
          g_auto(GStrv) lines = g_strsplit (conf, "\n", -1);

          for (guint i = 0; lines[i] != NULL; i++)
            {
              g_auto(GStrv) words = g_strsplit_set (g_strstrip (lines[i]), " \t", -1);
              g_autoptr(GInetAddress) address = NULL;

              if (g_strv_length (words) >= 2 && strcmp (words[0], "nameserver") == 0 &&
                  (address = g_inet_address_new_from_string (words[1])) != NULL)
                g_ptr_array_add (*allow, g_inet_address_to_string (address));
            }
        }
    }
  if ((*allow)->len == 0)
    g_clear_pointer (allow, g_ptr_array_unref);
  else
    g_ptr_array_add (*allow, NULL);
}

/* domainAllowList (comma-separated names): their addresses, resolved once,
 * here (the service filters by name at its proxy). NULL and a 400 sent for
 * a name that is not one or does not resolve. */
static GPtrArray *
resolve_domain_list (DaytonaEmulator   *emu,
                     SoupServerMessage *msg,
                     const char        *list)
{
  g_autoptr(GPtrArray) addresses = g_ptr_array_new_with_free_func (g_free);
  g_auto(GStrv) names = g_strsplit (list, ",", -1);

  for (guint i = 0; names[i] != NULL; i++)
    {
      g_autoptr(GError) error = NULL;
      const char *name = g_strstrip (names[i]);
      GList *found;

      if (*name == '\0')
        continue;
      if (strspn (name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.") != strlen (name) ||
          strchr (name, '.') == NULL || g_hostname_is_ip_address (name))
        {
          g_autofree char *m = g_strdup_printf ("Invalid domainAllowList entry '%s': the Daytona emulator "
                                                "takes host names (no wildcards), which it resolves to "
                                                "their addresses (see docs/testing.md)", name);

          api_error (emu, msg, 400, m);
          return NULL;
        }
      found = g_resolver_lookup_by_name (g_resolver_get_default (), name, NULL, &error);
      if (found == NULL)
        {
          g_autofree char *m = g_strdup_printf ("domainAllowList entry '%s' does not resolve here: %s", name,
                                                error->message);

          api_error (emu, msg, 400, m);
          return NULL;
        }
      for (GList *l = found; l != NULL; l = l->next)
        g_ptr_array_add (addresses, g_inet_address_to_string (l->data));
      g_resolver_free_addresses (found);
    }
  return g_steal_pointer (&addresses);
}

/* networkAllowList: comma-separated IPv4 CIDR blocks (at most 10, as the
 * service takes), the only destinations the sandbox reaches: applied by
 * the local sandbox's pid 1 as egress rules (allow them, deny the rest).
 * networkBlockAll wins over it. Refuses (400) an entry that is not one. */
/* An entry of networkAllowList as the service takes it (an IPv4 address
 * and a prefix length, host bits allowed), as the network it names
 * ("192.168.1.0/16" -> "192.168.0.0/16"); NULL with the service's words
 * in @message when it is not one. */
static char *
allow_list_network (const char  *entry,
                    char       **message)
{
  g_auto(GStrv) parts = g_strsplit (entry, "/", 2);
  g_autoptr(GInetAddress) address = g_inet_address_new_from_string (parts[0]);
  const guint8 *bytes;
  guint64 prefix = 0;
  guint32 value, mask;

  if (address == NULL || g_inet_address_get_family (address) != G_SOCKET_FAMILY_IPV4)
    {
      *message = g_strdup_printf ("Invalid IP address: \"%s\" in network \"%s\". Must be a valid IPv4 "
                                  "address", parts[0], entry);
      return NULL;
    }
  if (parts[1] == NULL || *parts[1] == '\0')
    {
      *message = g_strdup_printf ("Invalid network format: \"%s\". Missing CIDR prefix length (e.g., /24)",
                                  entry);
      return NULL;
    }
  if (!g_ascii_string_to_unsigned (parts[1], 10, 0, 32, &prefix, NULL))
    {
      *message = g_strdup_printf ("Invalid CIDR prefix length: %s. Prefix must be between 0 and 32", entry);
      return NULL;
    }
  bytes = g_inet_address_to_bytes (address);
  value = ((guint32) bytes[0] << 24) | ((guint32) bytes[1] << 16) | ((guint32) bytes[2] << 8) | bytes[3];
  mask = prefix == 0 ? 0 : 0xffffffffu << (32 - prefix);
  value &= mask;
  return g_strdup_printf ("%u.%u.%u.%u/%u", value >> 24, (value >> 16) & 0xff, (value >> 8) & 0xff,
                          value & 0xff, (guint) prefix);
}

static gboolean
allow_list_refused (DaytonaEmulator   *emu,
                    SoupServerMessage *msg,
                    const char        *allow)
{
  g_auto(GStrv) entries = NULL;
  guint n = 0;

  if (allow == NULL || *allow == '\0')
    return FALSE;
  entries = g_strsplit (allow, ",", -1);
  for (guint i = 0; entries[i] != NULL; i++)
    {
      g_autofree char *m = NULL;
      g_autofree char *network = NULL;
      const char *entry = g_strstrip (entries[i]);

      if (*entry == '\0')
        continue;
      network = allow_list_network (entry, &m);
      if (network == NULL)
        {
          api_error (emu, msg, 400, m);
          return TRUE;
        }
      n++;
    }
  if (n > 10)
    {
      api_error (emu, msg, 400, "Network allow list cannot contain more than 10 networks");
      return TRUE;
    }
  return FALSE;
}

static gboolean
network_refused (DaytonaEmulator   *emu,
                 SoupServerMessage *msg,
                 JsonObject        *body)
{
  return !member_bool (body, "networkBlockAll") &&
         allow_list_refused (emu, msg, _sandbox_json_get_string (body, "networkAllowList"));
}

/* POST /sandbox/{id}/network-settings: networkBlockAll true blocks
 * everything; false restores all access and clears the allow lists;
 * networkAllowList / domainAllowList replace them (and unblock). Applied
 * to the running local sandbox at once (a stopped one when it starts). A
 * sandbox made with networkBlockAll has no network to open (501). */
static void
update_network_settings (DaytonaEmulator   *emu,
                         SoupServerMessage *msg,
                         EmuSandbox        *sb)
{
  g_autoptr(JsonObject) body = request_object (emu, msg, FALSE, FALSE);
  g_autoptr(GPtrArray) addresses = NULL;
  g_autoptr(GPtrArray) allow = NULL;
  g_autoptr(GPtrArray) deny = NULL;
  g_autoptr(GError) error = NULL;
  const char *allow_list, *domain_list;
  JsonNode *block;

  if (body == NULL)
    return;
  block = json_object_get_member (body, "networkBlockAll");
  if (block != NULL && (!JSON_NODE_HOLDS_VALUE (block) || json_node_get_value_type (block) != G_TYPE_BOOLEAN))
    block = NULL;
  allow_list = _sandbox_json_get_string (body, "networkAllowList");
  domain_list = _sandbox_json_get_string (body, "domainAllowList");
  if (block == NULL && allow_list == NULL && domain_list == NULL)
    return api_error (emu, msg, 400, "At least one of networkBlockAll, networkAllowList or domainAllowList must be set");
  if (allow_list_refused (emu, msg, allow_list))
    return;
  if (domain_list != NULL && (addresses = resolve_domain_list (emu, msg, domain_list)) == NULL)
    return;
  if (!sb->has_network && !(block != NULL && json_node_get_boolean (block)))
    return api_error (emu, msg, 501, "The Daytona emulator cannot open the network of a sandbox created with "
                      "networkBlockAll: its local sandbox has no network at all; create it without "
                      "networkBlockAll (and with an allow list) instead (see docs/testing.md)");

  if (block != NULL && json_node_get_boolean (block))
    sb->network_block_all = TRUE;
  else
    {
      sb->network_block_all = FALSE;
      if (allow_list != NULL || (block != NULL && domain_list == NULL))
        {
          g_free (sb->network_allow_list);
          sb->network_allow_list = allow_list && *allow_list ? g_strdup (allow_list) : NULL;
        }
      if (domain_list != NULL || (block != NULL && allow_list == NULL))
        {
          g_free (sb->domain_allow_list);
          sb->domain_allow_list = domain_list && *domain_list ? g_strdup (domain_list) : NULL;
          g_clear_pointer (&sb->domain_addresses, g_ptr_array_unref);
          sb->domain_addresses = g_steal_pointer (&addresses);
        }
    }
  egress_rules_of (sb, &allow, &deny);
  if (sb->has_network && sb->local != NULL &&
      sandbox_instance_get_state (sb->local) != SANDBOX_INSTANCE_STATE_STOPPED &&
      !sandbox_instance_set_egress_rules (sb->local, allow ? (const char * const *) allow->pdata : NULL,
                                          deny ? (const char * const *) deny->pdata : NULL, NULL, &error))
    return api_error (emu, msg, 500, error->message);
  reply_json (emu, msg, 200, sandbox_dto (sb, FALSE));
}

static void
api_create (DaytonaEmulator   *emu,
            SoupServerMessage *msg)
{
  g_autoptr(JsonObject) body = request_object (emu, msg, FALSE, TRUE);
  gboolean resources, build;
  EmuSandbox *sb;
  JsonObject *build_info = NULL;
  JsonNode *node;
  gint64 v;
  const char *name, *linked;
  EmuSandbox *owner = NULL;
  gboolean never_start;
  GPtrArray *volume_ids = NULL, *volume_paths = NULL;
  g_autoptr(EmuImage) image = NULL;
  g_autofree char *image_error = NULL;
  g_autoptr(GPtrArray) domain_addresses = NULL;

  if (body == NULL)
    return;
  resources = has_member (body, "cpu") || has_member (body, "gpu") ||
              has_member (body, "memory") || has_member (body, "disk");
  node = json_object_get_member (body, "buildInfo");
  if (node != NULL && JSON_NODE_HOLDS_OBJECT (node))
    build_info = json_node_get_object (node);
  build = build_info != NULL;

  if (build && has_member (body, "snapshot"))
    return api_error (emu, msg, 400, "Cannot specify a snapshot when using a build info entry");
  if (!build && resources)
    return api_error (emu, msg, 400, "Cannot specify Sandbox resources when using a snapshot");
  if (build && _sandbox_json_get_string (build_info, "dockerfileContent") == NULL)
    return api_error (emu, msg, 400, "buildInfo.dockerfileContent must be a string");
  if (build && has_member (body, "linkedSandbox"))
    return api_error (emu, msg, 400, "Cannot link a sandbox when using a build info entry");
  if (!member_bool (body, "networkBlockAll") && _sandbox_json_get_string (body, "domainAllowList") != NULL &&
      (domain_addresses = resolve_domain_list (emu, msg, _sandbox_json_get_string (body, "domainAllowList"))) == NULL)
    return;
  if (network_refused (emu, msg, body))
    return;
  {
    const char *snapshot = _sandbox_json_get_string (body, "snapshot");
    g_autoptr(GError) error = NULL;

    EmuSnapshot *made = snapshot ? snapshot_find (emu, snapshot) : NULL;

    if (made != NULL && g_strcmp0 (made->state, "active") != 0)
      {
        g_autofree char *m = g_strdup_printf ("Snapshot %s is %s", snapshot, made->state);

        return api_error (emu, msg, 400, m);
      }
    if (made != NULL && !made->general)
      {
        /* A snapshot of the API runs on what its image resolved to. */
        image = g_new0 (EmuImage, 1);
        image->reference = g_strdup (made->image->reference);
        image->rootfs = g_strdup (made->image->rootfs);
        image->image = made->image->image ? g_object_ref (made->image->image) : NULL;
        image->how = g_strdup_printf ("snapshot %s: %s", made->name, made->image->how);
      }
    else if (!build)
      {
        /* The service's general snapshots and other names: the mapping. */
        image = _emu_images_resolve (emu->images, snapshot ? snapshot : "daytona-small", &error);
        if (image == NULL)
          {
            g_autofree char *m = g_strdup_printf ("Snapshot %s not found. Did you add it through the Daytona "
                                                  "Dashboard? (emulator: %s)",
                                                  snapshot ? snapshot : "daytona-small", error->message);

            return api_error (emu, msg, 400, m);
          }
      }
    else
      {
        /* An unknown base image fails the build, as a failed pull does. */
        g_autofree char *base = dockerfile_base (_sandbox_json_get_string (build_info, "dockerfileContent"));

        if (base == NULL)
          image_error = g_strdup ("the Dockerfile has no FROM instruction");
        else if ((image = _emu_images_resolve (emu->images, base, &error)) == NULL)
          image_error = g_strdup_printf ("failed to pull image %s: not found: %s", base, error->message);
      }
  }
  name = _sandbox_json_get_string (body, "name");
  if (name != NULL && emu_find (emu, name) != NULL)
    {
      g_autofree char *m = g_strdup_printf ("Sandbox with name %s already exists", name);
      return api_error (emu, msg, 409, m);
    }
  /* linkedSandbox: co-located with an existing sandbox, on a network the
   * two share, where each resolves the other by name (as the service's
   * runners do with a link network). */
  linked = _sandbox_json_get_string (body, "linkedSandbox");
  if (linked != NULL && *linked != '\0')
    {
      if (!_sandbox_json_get_int (body, "autoDeleteInterval", &v) || v != 0)
        return api_error (emu, msg, 400, "Linked sandboxes must be ephemeral (set autoDeleteInterval to 0)");
      owner = emu_find (emu, linked);
      if (owner == NULL || owner->deleted)
        {
          g_autofree char *m = g_strdup_printf ("Sandbox with ID or name %s not found", linked);
          return api_error (emu, msg, 404, m);
        }
      if (owner->linked_id != NULL)
        {
          g_autofree char *m = g_strdup_printf ("Linked sandbox %s is itself linked to another sandbox; "
                                                "chained links are not allowed", owner->id);
          return api_error (emu, msg, 400, m);
        }
      if (g_strcmp0 (owner->state, "started") != 0 && g_strcmp0 (owner->state, "stopped") != 0)
        {
          g_autofree char *m = g_strdup_printf ("Linked sandbox must be in STARTED or STOPPED state with an "
                                                "assigned runner (current: %s)", owner->state);
          return api_error (emu, msg, 400, m);
        }
    }

  node = json_object_get_member (body, "volumes");
  if (node != NULL && !JSON_NODE_HOLDS_NULL (node))
    {
      g_autoptr(GPtrArray) ids = g_ptr_array_new_with_free_func (g_free);
      g_autoptr(GPtrArray) paths = g_ptr_array_new_with_free_func (g_free);
      g_autofree char *m = NULL;
      guint status;

      if (!volumes_from_request (emu, node, ids, paths, &status, &m))
        return api_error (emu, msg, status, m);
      volume_ids = g_steal_pointer (&ids);
      volume_paths = g_steal_pointer (&paths);
    }

  sb = g_new0 (EmuSandbox, 1);
  sb->emu = emu;
  sb->id = g_uuid_string_random ();
  sb->volume_ids = volume_ids;
  sb->volume_paths = volume_paths;
  sb->preview_token = g_uuid_string_random ();
  sb->name = g_strdup (name ? name : sb->id);
  sb->linked_id = owner ? g_strdup (owner->id) : NULL;
  if (!build)
    sb->snapshot = g_strdup (_sandbox_json_get_string (body, "snapshot") ? _sandbox_json_get_string (body, "snapshot")
                                                              : "daytona-small");
  else
    {
      sb->dockerfile = g_strdup (_sandbox_json_get_string (build_info, "dockerfileContent"));
      build_log_start (sb);
    }
  sb->image = g_steal_pointer (&image);
  sb->image_error = g_steal_pointer (&image_error);
  sb->user = g_strdup (_sandbox_json_get_string (body, "user") ? _sandbox_json_get_string (body, "user") : "daytona");
  sb->target = g_strdup (_sandbox_json_get_string (body, "target") ? _sandbox_json_get_string (body, "target") : "us");
  sb->env = _sandbox_json_get_string_map (body, "env", NULL);
  sb->labels = _sandbox_json_get_string_map (body, "labels", NULL);
  sb->public = member_bool (body, "public");
  sb->network_block_all = member_bool (body, "networkBlockAll");
  sb->network_allow_list = g_strdup (_sandbox_json_get_string (body, "networkAllowList"));
  sb->domain_allow_list = g_strdup (_sandbox_json_get_string (body, "domainAllowList"));
  sb->domain_addresses = g_steal_pointer (&domain_addresses);
  sb->cpu = _sandbox_json_get_int (body, "cpu", &v) ? (int) v : 1;
  sb->gpu = _sandbox_json_get_int (body, "gpu", &v) ? (int) v : 0;
  sb->memory = _sandbox_json_get_int (body, "memory", &v) ? (int) v : 1;
  sb->disk = _sandbox_json_get_int (body, "disk", &v) ? (int) v : 3;
  sb->auto_stop = _sandbox_json_get_int (body, "autoStopInterval", &v) ? (int) v : 15;
  sb->auto_archive = _sandbox_json_get_int (body, "autoArchiveInterval", &v) ? (int) v : 10080;
  sb->auto_delete = _sandbox_json_get_int (body, "autoDeleteInterval", &v) ? (int) v : -1;
  sb->created_at = now_iso ();
  sb->updated_at = g_strdup (sb->created_at);
  sb_touch (sb);
  sb->desired_state = g_strdup ("started");
  sb->state = g_strdup (build ? "pending_build" : "creating");
  sb->sessions = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, (GDestroyNotify) emu_session_free);
  sb->ptys = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, (GDestroyNotify) pty_unref);
  sb->interps = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, (GDestroyNotify) interp_unref);
  sb->lsp_servers = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) g_hash_table_unref);
  sb->host_dir = g_strdup_printf ("%s/sb-%s", emu->tmpdir, sb->id);

  g_hash_table_insert (emu->sandboxes, sb->id, sb);
  g_ptr_array_add (emu->order, sb);
  g_mutex_lock (&emu->lock);
  emu->live++;
  never_start = emu->never_start;
  g_mutex_unlock (&emu->lock);

  /* The real API answers with the DTO captured at creation (issue #2474):
   * clients poll for started. */
  if (never_start)
    sb_set_state (sb, "pending_build");
  reply_json (emu, msg, 200, sandbox_dto (sb, FALSE));
  if (!never_start && sb->build_steps != NULL)
    emu_later (emu, emu_setting (emu, &emu->state_delay_ms), build_step_cb, sb);
  else if (!never_start)
    sb_start_local (sb);
}

static gboolean
labels_match (EmuSandbox *sb,
              JsonObject *want)
{
  JsonObjectIter iter;
  const char *key;
  JsonNode *value;

  if (want == NULL)
    return TRUE;
  json_object_iter_init (&iter, want);
  while (json_object_iter_next (&iter, &key, &value))
    {
      const char *have = g_hash_table_lookup (sb->labels, key);

      if (have == NULL || !JSON_NODE_HOLDS_VALUE (value) ||
          g_strcmp0 (have, json_node_get_string (value)) != 0)
        return FALSE;
    }
  return TRUE;
}

static void
api_list (DaytonaEmulator   *emu,
          SoupServerMessage *msg,
          GHashTable        *query,
          gboolean           paginated)
{
  const char *labels = _emu_query (query, "labels");
  const char *cursor = _emu_query (query, "cursor");
  const char *limit_s = _emu_query (query, "limit");
  const char *page_s = _emu_query (query, "page");
  const char *id_prefix = _emu_query (query, "id");
  const char *name_prefix = _emu_query (query, "name");
  gboolean include_deleted = g_strcmp0 (_emu_query (query, "includeErroredDeleted"), "true") == 0;
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GPtrArray) matches = g_ptr_array_new ();
  g_autoptr(JsonBuilder) b = json_builder_new ();
  JsonObject *want = NULL;
  guint limit = limit_s ? (guint) g_ascii_strtoull (limit_s, NULL, 10) : 100;
  guint start = 0, end;

  if (labels != NULL)
    {
      if (!json_parser_load_from_data (parser, labels, -1, NULL) ||
          !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
        return api_error (emu, msg, 400, "labels must be a JSON-encoded object");
      want = json_node_get_object (json_parser_get_root (parser));
    }
  if (limit < 1 || limit > 200)
    return api_error (emu, msg, 400, "limit must not be greater than 200, limit must not be less than 1");

  for (guint i = emu->order->len; i > 0; i--)  /* newest first */
    {
      EmuSandbox *sb = g_ptr_array_index (emu->order, i - 1);

      if (sb->removed || (!include_deleted && (sb->deleted || g_strcmp0 (sb->state, "error") == 0)))
        continue;
      if (id_prefix && !g_str_has_prefix (sb->id, id_prefix))
        continue;
      if (name_prefix && !g_str_has_prefix (sb->name, name_prefix))
        continue;
      if (labels_match (sb, want))
        g_ptr_array_add (matches, sb);
    }

  if (paginated)
    start = (page_s ? MAX (1, atoi (page_s)) - 1 : 0) * limit;
  else if (cursor != NULL)
    start = (guint) g_ascii_strtoull (cursor, NULL, 10);
  start = MIN (start, matches->len);
  end = MIN (start + limit, matches->len);

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "items");
  json_builder_begin_array (b);
  for (guint i = start; i < end; i++)
    json_builder_add_value (b, sandbox_dto (g_ptr_array_index (matches, i), !paginated));
  json_builder_end_array (b);
  if (paginated)
    {
      json_builder_set_member_name (b, "total");
      json_builder_add_int_value (b, matches->len);
      json_builder_set_member_name (b, "page");
      json_builder_add_int_value (b, start / limit + 1);
      json_builder_set_member_name (b, "totalPages");
      json_builder_add_int_value (b, (matches->len + limit - 1) / limit);
    }
  else
    {
      json_builder_set_member_name (b, "nextCursor");
      if (end < matches->len)
        {
          g_autofree char *next = g_strdup_printf ("%u", end);
          json_builder_add_string_value (b, next);
        }
      else
        json_builder_add_null_value (b);
    }
  json_builder_end_object (b);
  reply_json (emu, msg, 200, node_from_builder (b));
}

static void
api_sandbox (DaytonaEmulator   *emu,
             SoupServerMessage *msg,
             const char        *rest,      /* after /api/sandbox/ */
             GHashTable        *query)
{
  const char *method = soup_server_message_get_method (msg);
  g_auto(GStrv) parts = g_strsplit (rest, "/", 3);
  g_autofree char *id = g_uri_unescape_string (parts[0], NULL);
  const char *action = parts[1];
  EmuSandbox *sb;

  sb = emu_find (emu, id ? id : "");
  if (sb == NULL)
    {
      g_autofree char *m = g_strdup_printf ("Sandbox with ID or name %s not found", id ? id : "");
      return api_error (emu, msg, 404, m);
    }

  if (action == NULL && strcmp (method, "GET") == 0)
    return reply_json (emu, msg, 200, sandbox_dto (sb, FALSE));

  if (action == NULL && strcmp (method, "DELETE") == 0)
    {
      if (!sb->deleted)
        {
          if (sb_transitioning (sb) && g_strcmp0 (sb->state, "pending_build") != 0)
            return api_error (emu, msg, 409, "Sandbox state change in progress");
          sb_destroy (sb);
        }
      return reply_json (emu, msg, 200, sandbox_dto (sb, FALSE));
    }

  if (g_strcmp0 (action, "start") == 0 && strcmp (method, "POST") == 0)
    {
      if (sb->deleted)
        return api_error (emu, msg, 400, "Sandbox is being destroyed");
      if (g_strcmp0 (sb->state, "started") == 0 && g_strcmp0 (sb->desired_state, "started") == 0)
        return reply_json (emu, msg, 200, sandbox_dto (sb, FALSE));
      if (sb_transitioning (sb))
        return api_error (emu, msg, 409, "Sandbox state change in progress");
      if (g_strcmp0 (sb->state, "stopped") != 0)
        return api_error (emu, msg, 400, "Sandbox is not in a startable state");
      if (sb->local != NULL && sandbox_instance_get_state (sb->local) == SANDBOX_INSTANCE_STATE_STOPPED)
        {
          g_autoptr(GError) error = NULL;

          g_autoptr(GPtrArray) allow = NULL;
          g_autoptr(GPtrArray) deny = NULL;

          egress_rules_of (sb, &allow, &deny);
          if (!sandbox_instance_resume (sb->local, NULL, &error) ||
              /* network-settings changed while it was stopped */
              (sb->has_network &&
               !sandbox_instance_set_egress_rules (sb->local, allow ? (const char * const *) allow->pdata : NULL,
                                                   deny ? (const char * const *) deny->pdata : NULL, NULL,
                                                   &error)))
            return api_error (emu, msg, 500, error->message);
        }
      g_free (sb->desired_state);
      sb->desired_state = g_strdup ("started");
      sb_set_state (sb, "starting");
      sb_touch (sb);
      emu_later (emu, emu_setting (emu, &emu->state_delay_ms), sb_started_cb, sb);
      return reply_json (emu, msg, 200, sandbox_dto (sb, FALSE));
    }

  if (g_strcmp0 (action, "stop") == 0 && strcmp (method, "POST") == 0)
    {
      if (sb_transitioning (sb))
        return api_error (emu, msg, 409, "Sandbox state change in progress");
      if (g_strcmp0 (sb->state, "started") != 0 && g_strcmp0 (sb->state, "paused") != 0)
        return api_error (emu, msg, 400, "Sandbox is not in a stoppable state");
      sb_stop (sb);
      return reply_json (emu, msg, 200, sandbox_dto (sb, FALSE));
    }

  if (g_strcmp0 (action, "build-logs-url") == 0 && strcmp (method, "GET") == 0)
    {
      g_autoptr(JsonBuilder) b = json_builder_new ();
      g_autofree char *url = g_strdup_printf ("%s/api/sandbox/%s/build-logs", emu->base, sb->id);

      if (sb->build_log == NULL)
        return api_error (emu, msg, 400, "Sandbox has no build info");
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "url");
      json_builder_add_string_value (b, url);
      json_builder_end_object (b);
      return reply_json (emu, msg, 200, node_from_builder (b));
    }

  /* The log so far; with follow=true, streamed until the build ends. */
  if (g_strcmp0 (action, "build-logs") == 0 && strcmp (method, "GET") == 0)
    {
      SoupMessageBody *body = soup_server_message_get_response_body (msg);
      gboolean follow = g_strcmp0 (_emu_query (query, "follow"), "true") == 0;

      if (sb->build_log == NULL)
        return api_error (emu, msg, 400, "Sandbox has no build info");
      if (!follow || sb->build_done)
        {
          soup_server_message_set_status (msg, 200, NULL);
          soup_server_message_set_response (msg, "text/plain; charset=utf-8", SOUP_MEMORY_COPY,
                                            sb->build_log->str, sb->build_log->len);
          return;
        }
      soup_server_message_set_status (msg, 200, NULL);
      soup_message_headers_set_encoding (soup_server_message_get_response_headers (msg),
                                         SOUP_ENCODING_CHUNKED);
      soup_message_headers_set_content_type (soup_server_message_get_response_headers (msg),
                                             "text/plain; charset=utf-8", NULL);
      if (sb->build_log->len > 0)
        soup_message_body_append (body, SOUP_MEMORY_COPY, sb->build_log->str, sb->build_log->len);
      g_ptr_array_add (sb->build_followers, g_object_ref (msg));
      g_signal_connect (msg, "finished", G_CALLBACK (build_follower_finished), sb);
      soup_server_message_pause (msg);
      return;
    }

  if (g_strcmp0 (action, "toolbox-proxy-url") == 0 && strcmp (method, "GET") == 0)
    {
      g_autoptr(JsonBuilder) b = json_builder_new ();
      g_autofree char *url = g_strdup_printf ("%s/toolbox", emu->base);

      json_builder_begin_object (b);
      json_builder_set_member_name (b, "url");
      json_builder_add_string_value (b, url);
      json_builder_end_object (b);
      return reply_json (emu, msg, 200, node_from_builder (b));
    }

  if (g_strcmp0 (action, "network-settings") == 0 && strcmp (method, "POST") == 0)
    return update_network_settings (emu, msg, sb);

  if (g_strcmp0 (action, "labels") == 0 && strcmp (method, "PUT") == 0)
    {
      g_autoptr(JsonObject) body = request_object (emu, msg, FALSE, FALSE);
      g_autoptr(JsonBuilder) b = json_builder_new ();

      if (body == NULL)
        return;
      if (_sandbox_json_get_object (body, "labels") == NULL)
        return api_error (emu, msg, 400, "labels must be an object");
      g_hash_table_unref (sb->labels);
      sb->labels = _sandbox_json_get_string_map (body, "labels", NULL);
      json_builder_begin_object (b);
      _sandbox_json_add_string_map (b, "labels", sb->labels);
      json_builder_end_object (b);
      return reply_json (emu, msg, 200, node_from_builder (b));
    }

  if (parts[1] && parts[2] && strcmp (method, "POST") == 0 &&
      (g_strcmp0 (action, "autostop") == 0 || g_strcmp0 (action, "autoarchive") == 0 ||
       g_strcmp0 (action, "autodelete") == 0))
    {
      int minutes = atoi (parts[2]);

      if (g_strcmp0 (action, "autostop") == 0)
        sb->auto_stop = minutes;
      else if (g_strcmp0 (action, "autoarchive") == 0)
        sb->auto_archive = minutes;
      else
        sb->auto_delete = minutes;
      return reply_json (emu, msg, 200, sandbox_dto (sb, FALSE));
    }

  if (g_strcmp0 (action, "ports") == 0 && parts[2] != NULL)
    {
      guint64 port = 0;
      g_autofree char *number = g_strndup (parts[2], strcspn (parts[2], "/"));
      const char *what = parts[2] + strlen (number);

      if (!g_ascii_string_to_unsigned (number, 10, 1, 65535, &port, NULL))
        return api_error (emu, msg, 400, "Invalid port");
      if (strcmp (what, "/preview-url") == 0 && strcmp (method, "GET") == 0)
        return reply_json (emu, msg, 200, preview_dto (sb, (guint) port));
      if (strcmp (what, "/signed-preview-url") == 0 && strcmp (method, "GET") == 0)
        {
          const char *expires = query ? g_hash_table_lookup (query, "expiresInSeconds") : NULL;
          guint64 seconds = 60;

          if (expires != NULL && !g_ascii_string_to_unsigned (expires, 10, 1, 86400, &seconds, NULL))
            return api_error (emu, msg, 400, "expiresInSeconds must be from 1 to 86400");
          return reply_json (emu, msg, 200, signed_preview_dto (sb, (guint) port, (guint) seconds));
        }
      if (g_str_has_prefix (what, "/signed-preview-url/") && g_str_has_suffix (what, "/expire") &&
          strcmp (method, "POST") == 0)
        {
          const char *start = what + strlen ("/signed-preview-url/");
          g_autofree char *token = g_strndup (start, strlen (start) - strlen ("/expire"));

          g_hash_table_remove (emu->signed_urls, token);
          reply_empty (msg, 200);
          return;
        }
    }

  {
    g_autofree char *m = g_strdup_printf ("Cannot %s /api/sandbox/%s (not served by the Daytona emulator)",
                                          method, rest);
    api_error (emu, msg, 404, m);
  }
}

static void
handle_api (DaytonaEmulator   *emu,
            SoupServerMessage *msg,
            const char        *path,
            GHashTable        *query)
{
  const char *method = soup_server_message_get_method (msg);
  const char *rest = path + strlen ("/api");

  if (strcmp (rest, "/health") == 0 || strcmp (rest, "/health/ready") == 0)
    {
      g_autoptr(JsonBuilder) b = json_builder_new ();

      json_builder_begin_object (b);
      json_builder_set_member_name (b, "status");
      json_builder_add_string_value (b, "ok");
      json_builder_end_object (b);
      return reply_json (emu, msg, 200, node_from_builder (b));
    }

  if (strcmp (rest, "/sandbox") == 0 || strcmp (rest, "/sandbox/") == 0)
    {
      if (strcmp (method, "POST") == 0)
        return api_create (emu, msg);
      if (strcmp (method, "GET") == 0)
        return api_list (emu, msg, query, FALSE);
    }
  else if (strcmp (rest, "/sandbox/paginated") == 0 && strcmp (method, "GET") == 0)
    return api_list (emu, msg, query, TRUE);
  else if (g_str_has_prefix (rest, "/sandbox/"))
    return api_sandbox (emu, msg, rest + strlen ("/sandbox/"), query);
  else if (strcmp (rest, "/volumes") == 0 || g_str_has_prefix (rest, "/volumes/"))
    return api_volumes (emu, msg, rest + strlen ("/volumes"));
  else if (strcmp (rest, "/snapshots") == 0 && strcmp (method, "POST") == 0)
    return snapshot_create (emu, msg);
  else if (strcmp (rest, "/snapshots") == 0 && strcmp (method, "GET") == 0)
    return snapshot_list (emu, msg, query);
  else if (g_str_has_prefix (rest, "/snapshots/") && rest[strlen ("/snapshots/")] != '\0')
    return snapshot_handle (emu, msg, rest + strlen ("/snapshots/"), query);

  {
    g_autofree char *m = g_strdup_printf ("Cannot %s %s", method, path);
    api_error (emu, msg, 404, m);
  }
}

/* ------------------------------------------------------------------ */
/* Running commands in the local sandbox                               */

typedef void (*RunDone) (SandboxExecResult *result,
                         GError            *error,
                         gpointer           data);

typedef struct
{
  RunDone  done;
  gpointer data;
} RunCtx;

static void
run_finished (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  RunCtx *ctx = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(SandboxExecResult) res = sandbox_instance_exec_finish (SANDBOX_INSTANCE (source),
                                                                    result, &error);

  ctx->done (res, error, ctx->data);
  g_free (ctx);
}

static char *
sb_resolve (EmuSandbox *sb,
            const char *path)
{
  g_autofree char *workdir = sb_home (sb);

  if (path == NULL || *path == '\0')
    return g_strdup (workdir);
  if (g_path_is_absolute (path))
    return g_canonicalize_filename (path, "/");
  return g_canonicalize_filename (path, workdir);
}

/* @env: (element-type utf8 utf8) (nullable) */
static void
emu_run (EmuSandbox   *sb,
         const char   *script,
         const char   *cwd,
         GHashTable   *env,
         guint         timeout_s,
         EmuLog       *log,
         GCancellable *cancellable,
         RunDone       done,
         gpointer      data)
{
  g_autoptr(SandboxCommand) command = sandbox_command_new_shell (script);
  g_autoptr(GOutputStream) out = _emu_sink_new (emu_log_write, FALSE, emu_log_ref (log),
                                                (GDestroyNotify) emu_log_unref);
  g_autoptr(GOutputStream) err = _emu_sink_new (emu_log_write, TRUE, emu_log_ref (log),
                                                (GDestroyNotify) emu_log_unref);
  g_autofree char *dir = sb_resolve (sb, cwd);
  RunCtx *ctx = g_new0 (RunCtx, 1);

  ctx->done = done;
  ctx->data = data;
  sandbox_command_set_cwd (command, dir);
  if (timeout_s > 0)
    sandbox_command_set_timeout_ms (command, timeout_s * 1000);
  if (env != NULL)
    {
      GHashTableIter iter;
      const char *k, *v;

      g_hash_table_iter_init (&iter, env);
      while (g_hash_table_iter_next (&iter, (gpointer *) &k, (gpointer *) &v))
        sandbox_command_set_env (command, k, v);
    }
  sandbox_command_set_stdout_stream (command, out);
  sandbox_command_set_stderr_stream (command, err);
  sandbox_instance_exec_async (sb->local, command, cancellable, run_finished, ctx);
}

static GHashTable *
env_from_json (JsonObject *object)
{
  GHashTable *env = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  JsonObjectIter iter;
  const char *key;
  JsonNode *value;

  if (object == NULL)
    return env;
  json_object_iter_init (&iter, object);
  while (json_object_iter_next (&iter, &key, &value))
    if (JSON_NODE_HOLDS_VALUE (value) && json_node_get_value_type (value) == G_TYPE_STRING)
      g_hash_table_insert (env, g_strdup (key), g_strdup (json_node_get_string (value)));
  return env;
}

static char *
bytes_to_utf8 (GByteArray *array)
{
  if (array->len == 0)
    return g_strdup ("");
  return g_utf8_make_valid ((const char *) array->data, array->len);
}

/* ------------------------------------------------------------------ */
/* Toolbox: process/execute                                            */

typedef struct
{
  DaytonaEmulator   *emu;
  EmuSandbox        *sb;
  SoupServerMessage *msg;
  EmuLog            *log;
  EmuCommand        *command;   /* sessions */
  gboolean           sync_reply;
  LogMode            mode;
  char              *path;      /* file operations */
  GPtrArray         *items;     /* file operations */
  guint              index;
  GPtrArray          *results;
  GPtrArray          *errors;
} Job;

static Job *
job_new (DaytonaEmulator   *emu,
         EmuSandbox        *sb,
         SoupServerMessage *msg)
{
  Job *job = g_new0 (Job, 1);

  job->emu = emu;
  job->sb = sb;
  job->msg = msg ? g_object_ref (msg) : NULL;
  job->log = emu_log_new ();
  if (msg != NULL)
    soup_server_message_pause (msg);
  return job;
}

static void
job_free (Job *job)
{
  if (job->msg != NULL)
    {
      soup_server_message_unpause (job->msg);
      g_object_unref (job->msg);
    }
  emu_log_unref (job->log);
  g_free (job->path);
  g_clear_pointer (&job->items, g_ptr_array_unref);
  g_clear_pointer (&job->results, g_ptr_array_unref);
  g_clear_pointer (&job->errors, g_ptr_array_unref);
  g_free (job);
}

static void
execute_done (SandboxExecResult *result,
              GError            *error,
              gpointer           data)
{
  Job *job = data;
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autofree char *text = NULL;
  int code;

  if (result != NULL && sandbox_exec_result_get_timed_out (result))
    {
      tb_error (job->emu, job->msg, 408, "REQUEST_TIMEOUT", "request timeout: command execution timeout");
      job_free (job);
      return;
    }
  if (result != NULL)
    {
      text = bytes_to_utf8 (job->log->combined);
      code = sandbox_exec_result_get_exit_code (result);
    }
  else
    {
      /* The daemon answers 200 with exitCode -1 when the process cannot start. */
      text = g_strdup (error->message);
      code = -1;
    }
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "exitCode");
  json_builder_add_int_value (b, code);
  json_builder_set_member_name (b, "result");
  json_builder_add_string_value (b, text);
  json_builder_end_object (b);
  reply_json (job->emu, job->msg, 200, node_from_builder (b));
  job_free (job);
}

static void
tb_execute (DaytonaEmulator   *emu,
            EmuSandbox        *sb,
            SoupServerMessage *msg)
{
  g_autoptr(JsonObject) body = request_object (emu, msg, TRUE, FALSE);
  const char *command;
  JsonNode *envs;
  g_autoptr(GHashTable) env = NULL;
  gint64 timeout = 0;
  Job *job;

  if (body == NULL)
    return;
  command = _sandbox_json_get_string (body, "command");
  {
    g_autofree char *copy = g_strstrip (g_strdup (command ? command : ""));

    if (*copy == '\0')
      return tb_error (emu, msg, 400, "BAD_REQUEST", "bad request: command is required");
  }
  _sandbox_json_get_int (body, "timeout", &timeout);
  envs = json_object_get_member (body, "envs");
  env = env_from_json (envs && JSON_NODE_HOLDS_OBJECT (envs) ? json_node_get_object (envs) : NULL);
  job = job_new (emu, sb, msg);
  emu_run (sb, command, _sandbox_json_get_string (body, "cwd"), env, (guint) MAX (timeout, 0),
           job->log, NULL, execute_done, job);
}

/* ------------------------------------------------------------------ */
/* Toolbox: code-run                                                   */

/* POST /process/code-run {code, language, argv?, envs?, timeout?}: the
 * daemon pipes the code (base64 on the line) to the language's
 * interpreter — python3 -u -, node -, or ts-node on a temporary file for
 * typescript — with stdout and stderr in one output, and answers
 * {exitCode, result, artifacts?}. Lines that start with the artifact
 * marker are taken out of the result; a chart's JSON becomes
 * artifacts.charts. (The daemon wraps code that imports matplotlib so that
 * it prints such lines; the emulator does not.) */

#define CODE_RUN_ARTIFACT_MARKER "dtn_artifact_k39fd2:"

static char *
code_run_script_for (const char  *language,
                     const char  *code,
                     const char  *argv);

/* One pipe for both streams (as the daemon's combined output): what the
 * code writes arrives in the order it wrote it; two pipes read apart could
 * put a stderr line inside a print's pieces. */
static char *
code_run_script (const char  *language,
                 const char  *code,
                 const char  *argv)
{
  g_autofree char *script = code_run_script_for (language, code, argv);

  return g_strconcat ("exec 2>&1; ", script, NULL);
}

static char *
code_run_script_for (const char  *language,
                     const char  *code,
                     const char  *argv)
{
  if (strcmp (language, "python") == 0)
    {
      g_autofree char *b64 = g_base64_encode ((const guchar *) code, strlen (code));

      return g_strdup_printf ("printf '%%s' '%s' | base64 -d | python3 -u - %s", b64, argv);
    }
  else
    {
      /* node sees the script as argv[1]: taken out, as the daemon does. */
      g_autofree char *full = g_strconcat ("process.argv.splice(1, 1);\n", code, NULL);
      g_autofree char *b64 = g_base64_encode ((const guchar *) full, strlen (full));

      if (strcmp (language, "javascript") == 0)
        return g_strdup_printf ("printf '%%s' '%s' | base64 -d | node - %s", b64, argv);
      return g_strdup_printf ("_f=/tmp/dtn_$$.ts; printf '%%s' '%s' | base64 -d > \"$_f\"; "
                              "npm_config_loglevel=error npx ts-node -T --ignore-diagnostics 5107 "
                              "-O '{\"module\":\"CommonJS\"}' \"$_f\" %s; _dtn_ec=$?; rm -f \"$_f\"; "
                              "exit $_dtn_ec", b64, argv);
    }
}

static void
code_run_done (SandboxExecResult *result,
               GError            *error,
               gpointer           data)
{
  Job *job = data;
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autofree char *text = NULL;
  g_auto(GStrv) lines = NULL;
  g_autoptr(GString) kept = g_string_new (NULL);
  g_autoptr(JsonArray) charts = json_array_new ();
  guint n_kept = 0;
  int code;

  if (result != NULL && sandbox_exec_result_get_timed_out (result))
    {
      tb_error (job->emu, job->msg, 408, "REQUEST_TIMEOUT", "request timeout: command execution timeout");
      job_free (job);
      return;
    }
  if (result != NULL)
    {
      text = bytes_to_utf8 (job->log->combined);
      code = sandbox_exec_result_get_exit_code (result);
    }
  else
    {
      text = g_strdup (error->message);
      code = -1;
    }
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      g_autoptr(JsonParser) parser = NULL;
      JsonNode *root;
      JsonObject *artifact;

      if (!g_str_has_prefix (lines[i], CODE_RUN_ARTIFACT_MARKER))
        {
          if (n_kept++ > 0)
            g_string_append_c (kept, '\n');
          g_string_append (kept, lines[i]);
          continue;
        }
      parser = json_parser_new ();
      if (json_parser_load_from_data (parser, lines[i] + strlen (CODE_RUN_ARTIFACT_MARKER), -1, NULL) &&
          (root = json_parser_get_root (parser)) != NULL && JSON_NODE_HOLDS_OBJECT (root) &&
          g_strcmp0 (_sandbox_json_get_string (artifact = json_node_get_object (root), "type"), "chart") == 0 &&
          json_object_get_member (artifact, "value") != NULL &&
          JSON_NODE_HOLDS_OBJECT (json_object_get_member (artifact, "value")))
        json_array_add_element (charts, json_node_copy (json_object_get_member (artifact, "value")));
    }
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "exitCode");
  json_builder_add_int_value (b, code);
  json_builder_set_member_name (b, "result");
  json_builder_add_string_value (b, kept->str);
  if (json_array_get_length (charts) > 0)
    {
      JsonNode *node = json_node_new (JSON_NODE_ARRAY);

      json_node_set_array (node, charts);
      json_builder_set_member_name (b, "artifacts");
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "charts");
      json_builder_add_value (b, node);
      json_builder_end_object (b);
    }
  json_builder_end_object (b);
  reply_json (job->emu, job->msg, 200, node_from_builder (b));
  job_free (job);
}

static void
tb_code_run (DaytonaEmulator   *emu,
             EmuSandbox        *sb,
             SoupServerMessage *msg)
{
  g_autoptr(JsonObject) body = request_object (emu, msg, TRUE, FALSE);
  const char *code, *language;
  JsonNode *envs, *argv_node;
  g_autoptr(GHashTable) env = NULL;
  g_autoptr(GString) argv = g_string_new (NULL);
  g_autofree char *script = NULL;
  gint64 timeout = 0;
  Job *job;

  if (body == NULL)
    return;
  code = _sandbox_json_get_string (body, "code");
  language = _sandbox_json_get_string (body, "language");
  if (code == NULL || language == NULL)
    return tb_error (emu, msg, 400, "INVALID_REQUEST_BODY",
                     "invalid request body: code and language are required");
  if (strcmp (language, "python") != 0 && strcmp (language, "javascript") != 0 &&
      strcmp (language, "typescript") != 0)
    {
      g_autofree char *m = g_strdup_printf ("bad request: unsupported language: %s", language);
      return tb_error (emu, msg, 400, "BAD_REQUEST", m);
    }
  /* The daemon joins argv with spaces, unquoted. */
  argv_node = json_object_get_member (body, "argv");
  if (argv_node != NULL && JSON_NODE_HOLDS_ARRAY (argv_node))
    for (guint i = 0; i < json_array_get_length (json_node_get_array (argv_node)); i++)
      {
        const char *arg = json_array_get_string_element (json_node_get_array (argv_node), i);

        g_string_append_printf (argv, "%s%s", i ? " " : "", arg ? arg : "");
      }
  _sandbox_json_get_int (body, "timeout", &timeout);
  envs = json_object_get_member (body, "envs");
  env = env_from_json (envs && JSON_NODE_HOLDS_OBJECT (envs) ? json_node_get_object (envs) : NULL);
  script = code_run_script (language, code, argv->str);
  job = job_new (emu, sb, msg);
  emu_run (sb, script, NULL, env, (guint) MAX (timeout, 0), job->log, NULL, code_run_done, job);
}

/* ------------------------------------------------------------------ */
/* Toolbox: sessions                                                   */

static int
compare_versions (const char *a,
                  const char *b)
{
  g_auto(GStrv) va = g_strsplit (a, ".", 3);
  g_auto(GStrv) vb = g_strsplit (b, ".", 3);

  for (guint i = 0; i < 3; i++)
    {
      gint64 x = va[0] && (i == 0 || va[i - 1]) && va[i] ? g_ascii_strtoll (va[i], NULL, 10) : 0;
      gint64 y = vb[0] && (i == 0 || vb[i - 1]) && vb[i] ? g_ascii_strtoll (vb[i], NULL, 10) : 0;

      if (x != y)
        return x < y ? -1 : 1;
      if (va[i] == NULL || vb[i] == NULL)
        break;
    }
  return 0;
}

/* §3.2: what the SDK version header asks for. */
static LogMode
log_mode (SoupServerMessage *msg)
{
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  const char *version = soup_message_headers_get_one (headers, "X-Daytona-SDK-Version");
  const char *protocols = soup_message_headers_get_one (headers, "Sec-WebSocket-Protocol");
  g_autofree char *from_protocol = NULL;
  const char *v;

  if (version == NULL && protocols != NULL && (v = strstr (protocols, "X-Daytona-SDK-Version~")) != NULL)
    {
      v += strlen ("X-Daytona-SDK-Version~");
      from_protocol = g_strndup (v, strcspn (v, ", "));
      version = from_protocol;
    }
  if (version == NULL)
    {
      const char *split = soup_message_headers_get_one (headers, "X-Daytona-Split-Output");
      return g_strcmp0 (split, "true") == 0 ? LOG_MODE_RAW : LOG_MODE_COMBINED;
    }
  if (strstr (version, "dev") != NULL)
    return LOG_MODE_JSON;
  if (version[0] == 'v')
    version++;
  if (!g_ascii_isdigit (version[0]))
    return LOG_MODE_RAW;
  if (compare_versions (version, "0.27.0") < 0)
    return LOG_MODE_COMBINED;
  if (compare_versions (version, "0.167.0") >= 0)
    return LOG_MODE_JSON;
  return LOG_MODE_RAW;
}

static JsonNode *
command_dto (EmuCommand *command)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "id");
  json_builder_add_string_value (b, command->id);
  json_builder_set_member_name (b, "command");
  json_builder_add_string_value (b, command->command);
  if (!command->running)
    {
      json_builder_set_member_name (b, "exitCode");
      json_builder_add_int_value (b, command->exit_code);
    }
  json_builder_end_object (b);
  return node_from_builder (b);
}

static JsonNode *
session_dto (EmuSession *session)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "sessionId");
  json_builder_add_string_value (b, session->id);
  json_builder_set_member_name (b, "commands");
  json_builder_begin_array (b);
  for (guint i = 0; i < session->commands->len; i++)
    json_builder_add_value (b, command_dto (g_ptr_array_index (session->commands, i)));
  json_builder_end_array (b);
  json_builder_end_object (b);
  return node_from_builder (b);
}

static void
logs_reply (DaytonaEmulator   *emu,
            SoupServerMessage *msg,
            EmuLog            *log,
            LogMode            mode)
{
  if (mode == LOG_MODE_JSON)
    {
      g_autoptr(JsonBuilder) b = json_builder_new ();
      g_autofree char *output = bytes_to_utf8 (log->raw);
      g_autofree char *out = bytes_to_utf8 (log->out);
      g_autofree char *err = bytes_to_utf8 (log->err);

      json_builder_begin_object (b);
      json_builder_set_member_name (b, "output");
      json_builder_add_string_value (b, output);
      json_builder_set_member_name (b, "stdout");
      json_builder_add_string_value (b, out);
      json_builder_set_member_name (b, "stderr");
      json_builder_add_string_value (b, err);
      json_builder_end_object (b);
      reply_json (emu, msg, 200, node_from_builder (b));
      return;
    }
  {
    GByteArray *data = mode == LOG_MODE_RAW ? log->raw : log->combined;

    soup_server_message_set_status (msg, 200, NULL);
    soup_server_message_set_response (msg, "text/plain; charset=utf-8", SOUP_MEMORY_COPY,
                                      (const char *) data->data, data->len);
  }
}

/* Answers the synchronous request of a session command that has finished. */
static void
session_command_reply (Job *job)
{
  EmuCommand *command = job->command;
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autofree char *output = bytes_to_utf8 (command->log->raw);

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "cmdId");
  json_builder_add_string_value (b, command->id);
  json_builder_set_member_name (b, "output");
  json_builder_add_string_value (b, output);
  if (job->mode == LOG_MODE_JSON)
    {
      g_autofree char *out = bytes_to_utf8 (command->log->out);
      g_autofree char *err = bytes_to_utf8 (command->log->err);

      json_builder_set_member_name (b, "stdout");
      json_builder_add_string_value (b, out);
      json_builder_set_member_name (b, "stderr");
      json_builder_add_string_value (b, err);
    }
  json_builder_set_member_name (b, "exitCode");
  json_builder_add_int_value (b, command->exit_code);
  json_builder_end_object (b);
  reply_json (job->emu, job->msg, 200, node_from_builder (b));
}

/* Appends what the command wrote to FILE (out or err) since last time. */
static void
session_command_read (EmuCommand *command,
                      int        *fd,
                      const char *file,
                      LogKind     kind)
{
  guint8 buf[65536];
  gssize n;

  if (*fd < 0)
    {
      g_autofree char *path = g_build_filename (command->dir, file, NULL);

      *fd = open (path, O_RDONLY | O_CLOEXEC);
      if (*fd < 0)
        return;
    }
  while ((n = read (*fd, buf, sizeof buf)) > 0)
    emu_log_append (command->log, kind, buf, (gsize) n);
}

static void
session_command_finish (EmuCommand *command,
                        int         exit_code)
{
  Job *job = command->job;

  if (!command->running)
    return;
  session_command_read (command, &command->out_fd, "out", LOG_STDOUT);
  session_command_read (command, &command->err_fd, "err", LOG_STDERR);
  emu_command_close (command);
  command->exit_code = exit_code;
  command->running = FALSE;
  emu_log_finish (command->log);
  command->job = NULL;
  if (job != NULL)
    {
      session_command_reply (job);
      job_free (job);
    }
}

/* Every 20 ms while a session command runs: its new output, and whether
 * the shell has written its exit status. */
static gboolean
session_command_poll (gpointer data)
{
  EmuCommand *command = data;
  g_autofree char *exit_path = g_build_filename (command->dir, "exit", NULL);
  g_autofree char *text = NULL;

  session_command_read (command, &command->out_fd, "out", LOG_STDOUT);
  session_command_read (command, &command->err_fd, "err", LOG_STDERR);
  if (g_file_get_contents (exit_path, &text, NULL, NULL))
    {
      g_clear_pointer (&command->poll, g_source_unref);
      session_command_finish (command, (int) g_ascii_strtoll (text, NULL, 10));
      return G_SOURCE_REMOVE;
    }
  return G_SOURCE_CONTINUE;
}

/* The session's shell ended: killed (the session deleted, the sandbox
 * stopped) or it ran `exit`. What it was running ends with it: with the
 * shell's status, or 137 (SIGKILL) when killed. */
static void
session_shell_done (SandboxExecResult *result,
                    GError            *error,
                    gpointer           data)
{
  EmuSession *session = data;
  int code = 137;

  if (result != NULL && !sandbox_exec_result_get_timed_out (result))
    code = sandbox_exec_result_get_exit_code (result);
  else if (error != NULL && !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    g_debug ("daytona-emulator: the shell of session %s failed: %s", session->id, error->message);
  session->shell_running = FALSE;
  close_fd (&session->ctl_fd);
  for (guint i = 0; i < session->commands->len; i++)
    {
      EmuCommand *command = g_ptr_array_index (session->commands, i);
      g_autofree char *exit_path = g_build_filename (command->dir, "exit", NULL);
      g_autofree char *text = NULL;

      if (!command->running)
        continue;
      if (g_file_get_contents (exit_path, &text, NULL, NULL))
        session_command_finish (command, (int) g_ascii_strtoll (text, NULL, 10));
      else
        session_command_finish (command, code);
    }
}

/* The session's shell: it runs, one after the other, the commands whose
 * names come on ctl, each sourced (as the daemon does) with its input from
 * its FIFO, or /dev/null for a synchronous one. */
#define SESSION_LOOP \
  "exec 9<>\"$__daytona_session/ctl\"\n" \
  "while IFS= read -r __daytona_cmd <&9; do\n" \
  "  __daytona_dir=\"$__daytona_session/$__daytona_cmd\"\n" \
  "  if [ -p \"$__daytona_dir/in\" ]; then __daytona_in=\"$__daytona_dir/in\"; else __daytona_in=/dev/null; fi\n" \
  "  { . \"$__daytona_dir/cmd.sh\"; } < \"$__daytona_in\" > \"$__daytona_dir/out\" 2> \"$__daytona_dir/err\"\n" \
  "  echo $? > \"$__daytona_dir/exit.tmp\" && mv \"$__daytona_dir/exit.tmp\" \"$__daytona_dir/exit\"\n" \
  "done\n"

/* Starts the session's shell (again, after `exit` ended it). */
static gboolean
session_start_shell (EmuSession  *session,
                     GError     **error)
{
  EmuSandbox *sb = session->sb;
  g_autofree char *ctl = g_build_filename (session->dir, "ctl", NULL);
  g_autofree char *loop = g_build_filename (session->dir, "loop.sh", NULL);
  g_autofree char *inner_loop = g_build_filename (session->inner_dir, "loop.sh", NULL);
  g_autofree char *q_session = g_shell_quote (session->inner_dir);
  g_autofree char *q_loop = g_shell_quote (inner_loop);
  g_autofree char *script = g_strdup_printf ("__daytona_session=%s\n" SESSION_LOOP, q_session);
  g_autofree char *start = NULL;
  EmuLog *log;

  if (g_mkdir_with_parents (session->dir, 0755) != 0 ||
      (g_unlink (ctl) != 0 && errno != ENOENT) || mkfifo (ctl, 0600) != 0)
    {
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno),
                   "failed to create the session directory: %s", g_strerror (errno));
      return FALSE;
    }
  if (!g_file_set_contents (loop, script, -1, error))
    return FALSE;
  /* Read-write: it never blocks, and what is written before the shell
   * opens its end waits in the FIFO. */
  session->ctl_fd = open (ctl, O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (session->ctl_fd < 0)
    {
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno),
                   "failed to open the session's pipe: %s", g_strerror (errno));
      return FALSE;
    }
  /* The daemon's shell: bash where there is one, sh otherwise. */
  start = g_strdup_printf ("if command -v bash >/dev/null 2>&1; then exec bash %s; else exec sh %s; fi",
                           q_loop, q_loop);
  g_clear_object (&session->shell_cancel);
  session->shell_cancel = g_cancellable_new ();
  session->shell_running = TRUE;
  log = emu_log_new ();
  emu_run (sb, start, NULL, NULL, 0, log, session->shell_cancel, session_shell_done, session);
  emu_log_unref (log);
  return TRUE;
}

static EmuSession *
session_new (EmuSandbox *sb,
             const char *id)
{
  EmuSession *session = g_new0 (EmuSession, 1);
  g_autofree char *home = sb_home (sb);
  g_autofree char *escaped = g_uri_escape_string (id, NULL, FALSE);

  session->id = g_strdup (id);
  session->sb = sb;
  session->ctl_fd = -1;
  session->commands = g_ptr_array_new_with_free_func ((GDestroyNotify) emu_command_free);
  session->inner_dir = g_build_filename (home, ".daytona", "sessions", escaped, NULL);
  session->dir = sb_host_path (sb, session->inner_dir);
  return session;
}

/* Hands COMMAND to the session's shell. */
static gboolean
session_run (EmuSession  *session,
             EmuCommand  *command,
             gboolean     with_input,
             GError     **error)
{
  g_autofree char *cmd = NULL;
  g_autofree char *line = NULL;

  if (!session->shell_running && !session_start_shell (session, error))
    return FALSE;
  command->dir = g_build_filename (session->dir, command->id, NULL);
  cmd = g_build_filename (command->dir, "cmd.sh", NULL);
  if (g_mkdir_with_parents (command->dir, 0755) != 0)
    {
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno),
                   "failed to create log directory: %s", g_strerror (errno));
      return FALSE;
    }
  if (!g_file_set_contents (cmd, command->command, -1, error))
    return FALSE;
  if (with_input)
    {
      g_autofree char *in = g_build_filename (command->dir, "in", NULL);

      if (mkfifo (in, 0600) == 0)
        command->in_fd = open (in, O_RDWR | O_NONBLOCK | O_CLOEXEC);
    }
  line = g_strdup_printf ("%s\n", command->id);
  if (write (session->ctl_fd, line, strlen (line)) != (gssize) strlen (line))
    {
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno),
                   "failed to write command: %s", g_strerror (errno));
      return FALSE;
    }
  command->poll = g_timeout_source_new (20);
  g_source_set_callback (command->poll, session_command_poll, command, NULL);
  g_source_attach (command->poll, session->sb->emu->context);
  return TRUE;
}

typedef struct
{
  EmuLog   *log;
  gboolean  split;
  GList    *extensions;
} Upgrade;

static void
upgrade_free (Upgrade *up)
{
  emu_log_unref (up->log);
  g_list_free_full (up->extensions, g_object_unref);
  g_free (up);
}

static void
follower_closed (SoupWebsocketConnection *conn,
                 Follower                *follower)
{
  g_ptr_array_remove (follower->log->followers, follower);
}

static void
ws_upgraded (SoupServerMessage *msg,
             Upgrade           *up)
{
  g_autoptr(GIOStream) stream = NULL;
  Follower *follower;
  GByteArray *backlog;

  g_signal_handlers_disconnect_by_func (msg, ws_upgraded, up);
  stream = soup_server_message_steal_connection (msg);
  follower = g_new0 (Follower, 1);
  follower->log = up->log;
  follower->split = up->split;
  follower->conn = soup_websocket_connection_new (
      stream, soup_server_message_get_uri (msg), SOUP_WEBSOCKET_CONNECTION_SERVER,
      soup_message_headers_get_one (soup_server_message_get_request_headers (msg), "Origin"),
      soup_message_headers_get_one (soup_server_message_get_response_headers (msg), "Sec-WebSocket-Protocol"),
      g_steal_pointer (&up->extensions));
  soup_websocket_connection_set_keepalive_interval (follower->conn, 20);
  g_signal_connect (follower->conn, "closed", G_CALLBACK (follower_closed), follower);
  g_ptr_array_add (up->log->followers, follower);

  backlog = up->split ? up->log->raw : up->log->combined;
  if (backlog->len > 0)
    send_frames (follower->conn, backlog->data, backlog->len);
  if (up->log->done)
    soup_websocket_connection_close (follower->conn, SOUP_WEBSOCKET_CLOSE_NORMAL, NULL);
  upgrade_free (up);
}

static gboolean
is_websocket (SoupServerMessage *msg)
{
  const char *upgrade = soup_message_headers_get_one (soup_server_message_get_request_headers (msg),
                                                      "Upgrade");

  return upgrade != NULL && g_ascii_strcasecmp (upgrade, "websocket") == 0;
}

static void
ws_follow (SoupServerMessage *msg,
           EmuLog            *log,
           LogMode            mode)
{
  Upgrade *up = g_new0 (Upgrade, 1);
  g_autoptr(GPtrArray) supported = g_ptr_array_new_with_free_func (g_type_class_unref);

  /* What SoupServer itself offers: clients such as libsoup ask for deflate. */
  g_ptr_array_add (supported, g_type_class_ref (SOUP_TYPE_WEBSOCKET_EXTENSION_DEFLATE));
  if (!soup_websocket_server_process_handshake (msg, NULL, NULL, supported, &up->extensions))
    {
      g_free (up);
      return;  /* it answered 400 */
    }
  up->log = emu_log_ref (log);
  up->split = mode != LOG_MODE_COMBINED;
  g_signal_connect (msg, "wrote-informational", G_CALLBACK (ws_upgraded), up);
}

static EmuCommand *
find_command (EmuSession *session,
              const char *id)
{
  for (guint i = 0; i < session->commands->len; i++)
    {
      EmuCommand *command = g_ptr_array_index (session->commands, i);

      if (g_strcmp0 (command->id, id) == 0)
        return command;
    }
  return NULL;
}

/* POST .../command/{id}/input: DATA (with a newline added) goes to the
 * command's stdin, and into its log as stdout unless it asked for no echo. */
static void
tb_session_input (DaytonaEmulator   *emu,
                  EmuSession        *session,
                  EmuCommand        *command,
                  SoupServerMessage *msg)
{
  g_autoptr(JsonObject) body = request_object (emu, msg, TRUE, FALSE);
  g_autofree char *data = NULL;
  gsize len, done = 0;

  if (body == NULL)
    return;
  if (_sandbox_json_get_string (body, "data") == NULL)
    return tb_error (emu, msg, 400, "INVALID_REQUEST_BODY", "invalid request body: data is required");
  if (!session->shell_running)
    return tb_error (emu, msg, 410, "GONE", "gone: session process has exited");
  if (!command->running)
    {
      g_autofree char *m = g_strdup_printf ("gone: command has already completed with exit code %d",
                                            command->exit_code);
      return tb_error (emu, msg, 410, "GONE", m);
    }
  if (command->in_fd < 0)
    return tb_error (emu, msg, 500, "INTERNAL_SERVER_ERROR",
                     "internal server error: failed to open input pipe: the command was not started with runAsync");
  data = g_strdup (_sandbox_json_get_string (body, "data"));
  if (!g_str_has_suffix (data, "\n"))
    {
      char *with = g_strconcat (data, "\n", NULL);

      g_free (data);
      data = with;
    }
  len = strlen (data);
  while (done < len)
    {
      gssize n = write (command->in_fd, data + done, len - done);

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          g_autofree char *m = g_strdup_printf ("internal server error: failed to write to input pipe: %s",
                                                g_strerror (errno));
          return tb_error (emu, msg, 500, "INTERNAL_SERVER_ERROR", m);
        }
      done += (gsize) n;
    }
  if (command->echo_input)
    emu_log_append (command->log, LOG_STDOUT, data, len);
  reply_empty (msg, 204);
}

static void
tb_sessions (DaytonaEmulator   *emu,
             EmuSandbox        *sb,
             SoupServerMessage *msg,
             const char        *rest,   /* after /process/session */
             GHashTable        *query)
{
  const char *method = soup_server_message_get_method (msg);
  g_auto(GStrv) parts = NULL;
  EmuSession *session;
  guint n;

  if (*rest == '\0' || strcmp (rest, "/") == 0)
    {
      if (strcmp (method, "POST") == 0)
        {
          g_autoptr(JsonObject) body = request_object (emu, msg, TRUE, FALSE);
          const char *id;

          if (body == NULL)
            return;
          id = _sandbox_json_get_string (body, "sessionId");
          if (id == NULL || *id == '\0')
            return tb_error (emu, msg, 400, "INVALID_REQUEST_BODY", "invalid request body: sessionId is required");
          if (strcmp (id, "entrypoint") == 0)
            return tb_error (emu, msg, 400, "BAD_REQUEST", "bad request: session ID entrypoint is reserved");
          if (g_hash_table_contains (sb->sessions, id))
            return tb_error (emu, msg, 409, "CONFLICT", "conflict: session already exists");
          {
            g_autoptr(GError) error = NULL;

            session = session_new (sb, id);
            if (!session_start_shell (session, &error))
              {
                g_autofree char *m = g_strdup_printf ("bad request: %s", error->message);

                emu_session_free (session);
                return tb_error (emu, msg, 400, "BAD_REQUEST", m);
              }
          }
          g_hash_table_insert (sb->sessions, session->id, session);
          return reply_empty (msg, 201);
        }
      if (strcmp (method, "GET") == 0)
        {
          g_autoptr(JsonBuilder) b = json_builder_new ();
          GHashTableIter iter;

          json_builder_begin_array (b);
          g_hash_table_iter_init (&iter, sb->sessions);
          while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &session))
            json_builder_add_value (b, session_dto (session));
          json_builder_end_array (b);
          return reply_json (emu, msg, 200, node_from_builder (b));
        }
    }

  parts = g_strsplit (rest + 1, "/", 0);
  n = g_strv_length (parts);

  if (g_strcmp0 (parts[0], "entrypoint") == 0 && strcmp (method, "GET") == 0)
    {
      if (n == 1)
        {
          g_autoptr(JsonBuilder) b = json_builder_new ();

          json_builder_begin_object (b);
          json_builder_set_member_name (b, "sessionId");
          json_builder_add_string_value (b, "entrypoint");
          json_builder_set_member_name (b, "commands");
          json_builder_begin_array (b);
          json_builder_end_array (b);
          json_builder_end_object (b);
          return reply_json (emu, msg, 200, node_from_builder (b));
        }
      if (n == 2 && strcmp (parts[1], "logs") == 0)
        {
          EmuLog *empty = emu_log_new ();

          empty->done = TRUE;
          if (is_websocket (msg))
            ws_follow (msg, empty, log_mode (msg));
          else
            logs_reply (emu, msg, empty, log_mode (msg));
          emu_log_unref (empty);
          return;
        }
    }

  session = n > 0 ? g_hash_table_lookup (sb->sessions, parts[0]) : NULL;
  if (session == NULL)
    {
      g_autofree char *m = g_strdup_printf ("not found: session %s not found", n > 0 ? parts[0] : "");
      return tb_error (emu, msg, 404, "NOT_FOUND", m);
    }

  if (n == 1 && strcmp (method, "GET") == 0)
    return reply_json (emu, msg, 200, session_dto (session));

  if (n == 1 && strcmp (method, "DELETE") == 0)
    {
      /* Its shell goes, and what runs in it. */
      if (session->shell_cancel != NULL)
        g_cancellable_cancel (session->shell_cancel);
      /* Running commands still point at the session: keep it for later. */
      g_hash_table_steal (sb->sessions, session->id);
      g_ptr_array_add (g_object_get_data (G_OBJECT (emu->server), "dead-sessions"), session);
      return reply_empty (msg, 204);
    }

  if (n == 2 && strcmp (parts[1], "exec") == 0 && strcmp (method, "POST") == 0)
    {
      g_autoptr(JsonObject) body = request_object (emu, msg, TRUE, FALSE);
      EmuCommand *command;
      gboolean run_async;
      Job *job;

      if (body == NULL)
        return;
      if (_sandbox_json_get_string (body, "command") == NULL || *_sandbox_json_get_string (body, "command") == '\0')
        return tb_error (emu, msg, 400, "INVALID_REQUEST_BODY", "invalid request body: command is required");
      run_async = member_bool (body, "runAsync") || member_bool (body, "async");

      command = g_new0 (EmuCommand, 1);
      command->id = g_uuid_string_random ();
      command->command = g_strdup (_sandbox_json_get_string (body, "command"));
      command->log = emu_log_new ();
      command->running = TRUE;
      command->session = session;
      command->in_fd = command->out_fd = command->err_fd = -1;
      command->echo_input = !member_bool (body, "suppressInputEcho");
      g_ptr_array_add (session->commands, command);

      {
        g_autoptr(GError) error = NULL;

        if (!session_run (session, command, run_async, &error))
          {
            g_autofree char *m = g_strdup_printf ("bad request: %s", error->message);

            command->running = FALSE;
            command->exit_code = -1;
            emu_command_close (command);
            emu_log_finish (command->log);
            return tb_error (emu, msg, 400, "BAD_REQUEST", m);
          }
      }
      if (!run_async)
        {
          job = job_new (emu, sb, msg);
          job->command = command;
          job->sync_reply = TRUE;
          job->mode = log_mode (msg);
          command->job = job;
        }
      if (run_async)
        {
          g_autoptr(JsonBuilder) b = json_builder_new ();

          json_builder_begin_object (b);
          json_builder_set_member_name (b, "cmdId");
          json_builder_add_string_value (b, command->id);
          json_builder_end_object (b);
          reply_json (emu, msg, 202, node_from_builder (b));
        }
      return;
    }

  if (n >= 3 && strcmp (parts[1], "command") == 0)
    {
      EmuCommand *command = find_command (session, parts[2]);

      if (command == NULL)
        {
          g_autofree char *m = g_strdup_printf ("not found: command %s not found", parts[2]);
          return tb_error (emu, msg, 404, "NOT_FOUND", m);
        }
      if (n == 3 && strcmp (method, "GET") == 0)
        return reply_json (emu, msg, 200, command_dto (command));
      if (n == 4 && strcmp (parts[3], "logs") == 0 && strcmp (method, "GET") == 0)
        {
          const char *follow = _emu_query (query, "follow");

          if (g_strcmp0 (follow, "true") == 0 && is_websocket (msg))
            return ws_follow (msg, command->log, log_mode (msg));
          return logs_reply (emu, msg, command->log, log_mode (msg));
        }
      if (n == 4 && strcmp (parts[3], "input") == 0 && strcmp (method, "POST") == 0)
        return tb_session_input (emu, session, command, msg);
    }

  {
    g_autofree char *m = g_strdup_printf ("not found: %s /process/session%s is not served", method, rest);
    tb_error (emu, msg, 404, "NOT_FOUND", m);
  }
}

/* ------------------------------------------------------------------ */
/* Toolbox: files                                                      */

#define STAT_FMT "%s|%a|%A|%F|%U|%G|%Y|%n"

static void
add_file_info (JsonBuilder *b,
               const char  *line,
               const char  *dir)
{
  g_auto(GStrv) f = g_strsplit (line, "|", 8);
  g_autoptr(GDateTime) mtime = NULL;
  g_autofree char *mod_time = NULL;
  g_autofree char *modified_at = NULL;
  g_autofree char *name = NULL;
  g_autofree char *path = NULL;
  g_autofree char *perm = NULL;

  if (g_strv_length (f) < 8)
    return;
  mtime = g_date_time_new_from_unix_utc (g_ascii_strtoll (f[6], NULL, 10));
  mod_time = g_date_time_format (mtime, "%Y-%m-%d %H:%M:%S +0000 UTC");
  modified_at = g_date_time_format_iso8601 (mtime);
  name = g_path_get_basename (f[7]);
  path = dir ? g_build_filename (dir, name, NULL) : g_strdup (f[7]);
  perm = g_strdup_printf ("%04o", (guint) g_ascii_strtoull (f[1], NULL, 8));

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "name");
  json_builder_add_string_value (b, name);
  json_builder_set_member_name (b, "path");
  json_builder_add_string_value (b, path);
  json_builder_set_member_name (b, "size");
  json_builder_add_int_value (b, g_ascii_strtoll (f[0], NULL, 10));
  json_builder_set_member_name (b, "mode");
  json_builder_add_string_value (b, f[2]);
  json_builder_set_member_name (b, "permissions");
  json_builder_add_string_value (b, perm);
  json_builder_set_member_name (b, "isDir");
  json_builder_add_boolean_value (b, strcmp (f[3], "directory") == 0);
  json_builder_set_member_name (b, "owner");
  json_builder_add_string_value (b, f[4]);
  json_builder_set_member_name (b, "group");
  json_builder_add_string_value (b, f[5]);
  json_builder_set_member_name (b, "modTime");
  json_builder_add_string_value (b, mod_time);
  json_builder_set_member_name (b, "modifiedAt");
  json_builder_add_string_value (b, modified_at);
  json_builder_end_object (b);
}

typedef enum {
  FILE_LIST, FILE_INFO, FILE_DELETE, FILE_FOLDER,
  FILE_MOVE, FILE_PERMISSIONS, FILE_FIND, FILE_SEARCH, FILE_REPLACE
} FileOp;

static gboolean
file_script_failed (Job               *job,
                    SandboxExecResult *result,
                    GError            *error)
{
  int code;
  g_autofree char *err = NULL;
  g_autofree char *m = NULL;

  if (result == NULL)
    {
      m = g_strdup_printf ("internal server error: %s", error->message);
      tb_error (job->emu, job->msg, 500, "INTERNAL_SERVER_ERROR", m);
      return TRUE;
    }
  code = sandbox_exec_result_get_exit_code (result);
  if (code == 0)
    return FALSE;
  err = g_strstrip (bytes_to_utf8 (job->log->err));
  if (code == 44)
    {
      m = g_strdup_printf ("not found: %s: no such file or directory", job->path);
      tb_error (job->emu, job->msg, 404, "NOT_FOUND", m);
    }
  else if (code == 45)
    {
      m = g_strdup_printf ("bad request: %s: directory not empty (delete it with recursive=true)", job->path);
      tb_error (job->emu, job->msg, 400, "BAD_REQUEST", m);
    }
  else if (code == 46)
    {
      m = g_strdup_printf ("bad request: %s is not a directory", job->path);
      tb_error (job->emu, job->msg, 400, "BAD_REQUEST", m);
    }
  else
    {
      m = g_strdup_printf ("bad request: %s", *err ? err : "the operation failed");
      tb_error (job->emu, job->msg, 400, "BAD_REQUEST", m);
    }
  return TRUE;
}

/* The replies of find ([{file, line, content}]), search ({files}) and
 * replace ([{file, success, error?}]) from their scripts' output. */
static JsonNode *
walk_reply (FileOp      op,
            GByteArray *out)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autofree char *text = bytes_to_utf8 (out);
  g_auto(GStrv) lines = NULL;

  /* bytes_to_utf8 keeps the NULs grep puts after file names. */
  text = g_realloc (text, out->len + 1);
  if (out->len > 0)
    memcpy (text, out->data, out->len);
  text[out->len] = '\0';
  for (gsize i = 0; i < out->len; i++)
    if (text[i] == '\0')
      text[i] = '\001';
  lines = g_strsplit (text, "\n", 0);
  if (op == FILE_SEARCH)
    {
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "files");
    }
  json_builder_begin_array (b);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      g_auto(GStrv) f = g_strsplit (lines[i], "\001", 3);
      g_autofree char *valid = NULL;

      if (*lines[i] == '\0')
        continue;
      if (op == FILE_SEARCH)
        {
          valid = g_utf8_make_valid (lines[i], -1);
          json_builder_add_string_value (b, valid);
          continue;
        }
      if (f[0] == NULL || f[1] == NULL)
        continue;
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "file");
      if (op == FILE_FIND)
        {
          char *colon = strchr (f[1], ':');

          valid = g_utf8_make_valid (f[0], -1);
          json_builder_add_string_value (b, valid);
          json_builder_set_member_name (b, "line");
          json_builder_add_int_value (b, g_ascii_strtoll (f[1], NULL, 10));
          json_builder_set_member_name (b, "content");
          g_free (valid);
          valid = g_utf8_make_valid (colon ? colon + 1 : "", -1);
          json_builder_add_string_value (b, valid);
        }
      else
        {
          valid = g_utf8_make_valid (f[1], -1);
          json_builder_add_string_value (b, valid);
          json_builder_set_member_name (b, "success");
          json_builder_add_boolean_value (b, strcmp (f[0], "ok") == 0);
          if (strcmp (f[0], "ok") != 0)
            {
              json_builder_set_member_name (b, "error");
              json_builder_add_string_value (b, f[2] ? f[2] : "");
            }
        }
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  if (op == FILE_SEARCH)
    json_builder_end_object (b);
  return node_from_builder (b);
}

static void
file_script_done (SandboxExecResult *result,
                  GError            *error,
                  gpointer           data)
{
  Job *job = data;
  FileOp op = job->index;

  if (!file_script_failed (job, result, error))
    {
      if (op == FILE_LIST || op == FILE_INFO)
        {
          g_autoptr(JsonBuilder) b = json_builder_new ();
          g_autofree char *text = bytes_to_utf8 (job->log->out);
          g_auto(GStrv) lines = g_strsplit (text, "\n", 0);

          if (op == FILE_LIST)
            json_builder_begin_array (b);
          for (guint i = 0; lines[i] != NULL; i++)
            if (*lines[i] != '\0')
              {
                add_file_info (b, lines[i], op == FILE_LIST ? job->path : NULL);
                if (op == FILE_INFO)
                  break;
              }
          if (op == FILE_LIST)
            json_builder_end_array (b);
          reply_json (job->emu, job->msg, 200, node_from_builder (b));
        }
      else if (op == FILE_FIND || op == FILE_SEARCH || op == FILE_REPLACE)
        reply_json (job->emu, job->msg, 200, walk_reply (op, job->log->out));
      else
        reply_empty (job->msg, op == FILE_FOLDER ? 201 : op == FILE_DELETE ? 204 : 200);
    }
  job_free (job);
}

static void
file_script (DaytonaEmulator   *emu,
             EmuSandbox        *sb,
             SoupServerMessage *msg,
             FileOp             op,
             const char        *path,
             GHashTable        *env)
{
  static const char * const scripts[] = {
    [FILE_LIST] = "[ -e \"$P\" ] || exit 44; [ -d \"$P\" ] || exit 46; "
                  "find \"$P\" -mindepth 1 -maxdepth 1 -exec stat -c '" STAT_FMT "' {} +",
    [FILE_INFO] = "[ -e \"$P\" ] || [ -L \"$P\" ] || exit 44; stat -c '" STAT_FMT "' -- \"$P\"",
    [FILE_DELETE] = "[ -e \"$P\" ] || [ -L \"$P\" ] || exit 44; "
                    "if [ -d \"$P\" ] && [ ! -L \"$P\" ]; then "
                    "if [ \"$R\" = true ]; then rm -rf -- \"$P\"; else rmdir -- \"$P\" 2>/dev/null || exit 45; fi; "
                    "else rm -f -- \"$P\"; fi",
    [FILE_FOLDER] = "mkdir -p -m \"$M\" -- \"$P\"",
    [FILE_MOVE] = "[ -e \"$S\" ] || [ -L \"$S\" ] || exit 44; mv -f -- \"$S\" \"$P\"",
    [FILE_PERMISSIONS] = "[ -e \"$P\" ] || exit 44; "
                         "if [ -n \"$M\" ]; then chmod \"$M\" -- \"$P\" || exit 1; fi; "
                         "if [ -n \"$O\" ]; then chown -- \"$O\" \"$P\" || exit 1; fi; "
                         "if [ -n \"$G\" ]; then chgrp -- \"$G\" \"$P\" || exit 1; fi",
    /* The daemon's walks: regular text files (no NUL in their first 512
     * bytes), lines containing the text; names matching the glob. Paths
     * as the walk gives them: under PATH as the request wrote it. */
    [FILE_FIND] = "[ -e \"$P\" ] || exit 44; find \"$P\" -type f -print0 | sort -z | "
                  "xargs -0 -r grep -nIHF --null -e \"$T\" --; exit 0",
    [FILE_SEARCH] = "[ -e \"$P\" ] || exit 44; find \"$P\" -name \"$T\" -print | sort",
    /* strings.ReplaceAll on each whole file, as the daemon. */
    [FILE_REPLACE] = "printf '%s\\n' \"$FILES\" | while IFS= read -r f; do "
                     "[ -n \"$f\" ] || continue; "
                     "if [ ! -f \"$f\" ]; then printf 'err\\001%s\\001open %s: no such file or directory\\n' \"$f\" \"$f\"; "
                     "elif e=$(perl -0777 -i -pe 's/\\Q$ENV{O}\\E/$ENV{N}/g' -- \"$f\" 2>&1) && [ -z \"$e\" ]; then "
                     "printf 'ok\\001%s\\n' \"$f\"; "
                     "else printf 'err\\001%s\\001%s\\n' \"$f\" \"$e\"; fi; done",
  };
  Job *job = job_new (emu, sb, msg);

  job->index = op;
  if (op == FILE_FIND || op == FILE_SEARCH || op == FILE_REPLACE)
    {
      /* Relative paths stay relative: the walk names what it finds that
       * way, from the home directory (the daemon's working directory). */
      job->path = g_strdup (path ? path : "");
      g_hash_table_insert (env, g_strdup ("P"), g_strdup (job->path));
      emu_run (sb, scripts[op], NULL, env, 0, job->log, NULL, file_script_done, job);
      return;
    }
  job->path = sb_resolve (sb, path);
  g_hash_table_insert (env, g_strdup ("P"), g_strdup (job->path));
  if (op == FILE_MOVE)
    {
      /* What can be missing is the source. */
      g_free (job->path);
      job->path = g_strdup (g_hash_table_lookup (env, "S"));
    }
  emu_run (sb, scripts[op], "/", env, 0, job->log, NULL, file_script_done, job);
}

/* Uploads: each item is a destination and its content. */
typedef struct
{
  char   *path;
  GBytes *content;
} Item;

static void
item_free (Item *item)
{
  g_free (item->path);
  g_clear_pointer (&item->content, g_bytes_unref);
  g_free (item);
}

static char *
emu_tmp_path (DaytonaEmulator *emu)
{
  static gint counter;

  return g_strdup_printf ("%s/t%d", emu->tmpdir, g_atomic_int_add (&counter, 1));
}

static void upload_next (Job *job);

static void
upload_done (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  Job *job = user_data;
  Item *item = g_ptr_array_index (job->items, job->index);
  g_autoptr(GError) error = NULL;

  if (!sandbox_instance_upload_finish (SANDBOX_INSTANCE (source), result, &error))
    g_ptr_array_add (job->errors, g_strdup_printf ("%s: %s", item->path, error->message));
  else
    g_ptr_array_add (job->results, item);
  if (job->path != NULL)
    g_unlink (job->path);
  g_clear_pointer (&job->path, g_free);
  job->index++;
  upload_next (job);
}

static void
upload_next (Job *job)
{
  Item *item;
  g_autofree char *tmp_path = NULL;
  g_autoptr(GError) error = NULL;

  if (job->index >= job->items->len)
    {
      g_autoptr(JsonBuilder) b = json_builder_new ();
      gboolean failed = job->errors->len > 0;

      json_builder_begin_object (b);
      if (failed)
        {
          json_builder_set_member_name (b, "errors");
          json_builder_begin_array (b);
          for (guint i = 0; i < job->errors->len; i++)
            json_builder_add_string_value (b, g_ptr_array_index (job->errors, i));
          json_builder_end_array (b);
        }
      json_builder_set_member_name (b, "files");
      json_builder_begin_array (b);
      for (guint i = 0; i < job->results->len; i++)
        {
          Item *done = g_ptr_array_index (job->results, i);

          json_builder_begin_object (b);
          json_builder_set_member_name (b, "path");
          json_builder_add_string_value (b, done->path);
          json_builder_set_member_name (b, "bytes");
          json_builder_add_int_value (b, g_bytes_get_size (done->content));
          json_builder_end_object (b);
        }
      json_builder_end_array (b);
      json_builder_end_object (b);
      g_ptr_array_set_free_func (job->results, NULL);
      reply_json (job->emu, job->msg, failed ? 400 : 200, node_from_builder (b));
      job_free (job);
      return;
    }

  item = g_ptr_array_index (job->items, job->index);
  tmp_path = emu_tmp_path (job->emu);
  if (!g_file_set_contents (tmp_path, g_bytes_get_data (item->content, NULL),
                            g_bytes_get_size (item->content), &error))
    {
      g_ptr_array_add (job->errors, g_strdup_printf ("%s: %s", item->path, error->message));
      job->index++;
      upload_next (job);
      return;
    }
  {
    g_autoptr(GFile) tmp = g_file_new_for_path (tmp_path);
    g_autofree char *dest = sb_resolve (job->sb, item->path);

    g_free (job->path);
    job->path = g_strdup (tmp_path);
    sandbox_instance_upload_async (job->sb->local, tmp, dest, NULL, upload_done, job);
  }
}

static void
upload_start (DaytonaEmulator   *emu,
              EmuSandbox        *sb,
              SoupServerMessage *msg,
              GPtrArray         *items)
{
  Job *job = job_new (emu, sb, msg);

  for (guint i = 0; i < items->len; i++)
    {
      Item *item = g_ptr_array_index (items, i);

      emu->upload_bytes += g_bytes_get_size (item->content);
    }
  job->items = g_ptr_array_ref (items);
  job->results = g_ptr_array_new ();
  job->errors = g_ptr_array_new_with_free_func (g_free);
  upload_next (job);
}

static char *
part_name (SoupMessageHeaders *headers)
{
  g_autofree char *disposition = NULL;
  g_autoptr(GHashTable) params = NULL;

  if (!soup_message_headers_get_content_disposition (headers, &disposition, &params))
    return NULL;
  return g_strdup (g_hash_table_lookup (params, "name"));
}

static void
tb_bulk_upload (DaytonaEmulator   *emu,
                EmuSandbox        *sb,
                SoupServerMessage *msg)
{
  g_autoptr(GBytes) body = soup_message_body_flatten (soup_server_message_get_request_body (msg));
  g_autoptr(SoupMultipart) multipart =
    soup_multipart_new_from_message (soup_server_message_get_request_headers (msg), body);
  g_autoptr(GPtrArray) items = g_ptr_array_new_with_free_func ((GDestroyNotify) item_free);
  g_autoptr(GHashTable) paths = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);

  if (multipart == NULL)
    {
      g_autoptr(JsonBuilder) b = json_builder_new ();

      json_builder_begin_object (b);
      json_builder_set_member_name (b, "errors");
      json_builder_begin_array (b);
      json_builder_add_string_value (b, "invalid multipart form");
      json_builder_end_array (b);
      json_builder_end_object (b);
      return reply_json (emu, msg, 400, node_from_builder (b));
    }

  for (int i = 0; i < soup_multipart_get_length (multipart); i++)
    {
      SoupMessageHeaders *headers;
      GBytes *part;
      g_autofree char *name = NULL;

      soup_multipart_get_part (multipart, i, &headers, &part);
      name = part_name (headers);
      if (name == NULL || !g_str_has_prefix (name, "files["))
        continue;
      if (g_str_has_suffix (name, "].path"))
        g_hash_table_insert (paths, g_strndup (name, strlen (name) - strlen (".path")),
                             g_strndup (g_bytes_get_data (part, NULL), g_bytes_get_size (part)));
      else if (g_str_has_suffix (name, "].file"))
        {
          g_autofree char *key = g_strndup (name, strlen (name) - strlen (".file"));
          const char *path = g_hash_table_lookup (paths, key);
          Item *item;

          if (path == NULL)
            continue;  /* the .path part must come first (single-pass reader) */
          item = g_new0 (Item, 1);
          item->path = g_strdup (path);
          item->content = g_bytes_ref (part);
          g_ptr_array_add (items, item);
        }
    }
  upload_start (emu, sb, msg, items);
}

static void
tb_upload_one (DaytonaEmulator   *emu,
               EmuSandbox        *sb,
               SoupServerMessage *msg,
               const char        *path)
{
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  g_autoptr(GBytes) body = soup_message_body_flatten (soup_server_message_get_request_body (msg));
  g_autoptr(GPtrArray) items = g_ptr_array_new_with_free_func ((GDestroyNotify) item_free);
  const char *type = soup_message_headers_get_content_type (headers, NULL);
  Item *item;

  if (path == NULL)
    return tb_error (emu, msg, 400, "BAD_REQUEST", "bad request: path is required");
  item = g_new0 (Item, 1);
  item->path = g_strdup (path);
  if (type != NULL && g_str_has_prefix (type, "multipart/"))
    {
      g_autoptr(SoupMultipart) multipart = soup_multipart_new_from_message (headers, body);

      for (int i = 0; multipart && i < soup_multipart_get_length (multipart); i++)
        {
          SoupMessageHeaders *part_headers;
          GBytes *part;
          g_autofree char *name = NULL;

          soup_multipart_get_part (multipart, i, &part_headers, &part);
          name = part_name (part_headers);
          if (g_strcmp0 (name, "file") == 0)
            item->content = g_bytes_ref (part);
        }
      if (item->content == NULL)
        {
          item_free (item);
          return tb_error (emu, msg, 400, "BAD_REQUEST", "bad request: no file part in the form");
        }
    }
  else
    item->content = g_bytes_ref (body);
  g_ptr_array_add (items, item);
  upload_start (emu, sb, msg, items);
}

/* Downloads. */
typedef struct
{
  char   *path;     /* as the client asked */
  char   *tmp;      /* host copy */
  guint   status;
  char   *code;
  char   *message;
} DlItem;

static void
dl_item_free (DlItem *item)
{
  if (item->tmp != NULL)
    {
      g_autoptr(GFile) tmp = g_file_new_for_path (item->tmp);

      if (g_file_test (item->tmp, G_FILE_TEST_IS_DIR))
        {
          g_autofree char *cmd = g_strdup_printf ("rm -rf '%s'", item->tmp);
          g_spawn_command_line_sync (cmd, NULL, NULL, NULL, NULL);
        }
      else
        g_file_delete (tmp, NULL, NULL);
    }
  g_free (item->path);
  g_free (item->tmp);
  g_free (item->code);
  g_free (item->message);
  g_free (item);
}

static void download_next (Job *job);

static void
download_done (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  Job *job = user_data;
  DlItem *item = g_ptr_array_index (job->items, job->index);
  g_autoptr(GError) error = NULL;

  if (!sandbox_instance_download_finish (SANDBOX_INSTANCE (source), result, &error))
    {
      if (g_error_matches (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_FOUND))
        item->status = 404, item->code = g_strdup ("FILE_NOT_FOUND");
      else if (g_error_matches (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT))
        item->status = 400, item->code = g_strdup ("INVALID_FILE_PATH");
      else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED))
        item->status = 403, item->code = g_strdup ("FILE_ACCESS_DENIED");
      else
        item->status = 500, item->code = g_strdup ("FILE_READ_FAILED");
      if (item->status == 404)
        item->message = g_strdup_printf ("not found: open %s: no such file or directory", item->path);
      else
        item->message = g_strdup_printf ("error: %s", error->message);
    }
  else if (g_file_test (item->tmp, G_FILE_TEST_IS_DIR))
    {
      item->status = 400;
      item->code = g_strdup ("INVALID_FILE_PATH");
      item->message = g_strdup_printf ("bad request: path must be a file: %s", item->path);
    }
  else
    item->status = 200;
  job->index++;
  download_next (job);
}

static void
append_part_header (GString    *out,
                    const char *boundary,
                    const char *name,
                    const char *path,
                    const char *type,
                    gssize      length)  /* a file part's Content-Length, or -1 */
{
  g_autofree char *escaped = g_uri_escape_string (path, "/", FALSE);
  g_autoptr(GString) quoted = g_string_new (path);

  g_string_replace (quoted, "\\", "\\\\", 0);
  g_string_replace (quoted, "\"", "\\\"", 0);
  g_string_append_printf (out,
                          "--%s\r\nContent-Disposition: form-data; name=\"%s\"; filename=\"%s\"; "
                          "filename*=utf-8''%s\r\nContent-Type: %s\r\n",
                          boundary, name, quoted->str, escaped, type);
  /* As the daemon: file parts say their size (the SDK's download progress
   * reports it as total_bytes), error parts do not. */
  if (length >= 0)
    g_string_append_printf (out, "Content-Length: %" G_GSSIZE_FORMAT "\r\n", length);
  g_string_append (out, "\r\n");
}

static void
download_next (Job *job)
{
  DlItem *item;

  if (job->index < job->items->len)
    {
      g_autoptr(GFile) tmp = NULL;
      g_autofree char *src = NULL;

      item = g_ptr_array_index (job->items, job->index);
      item->tmp = emu_tmp_path (job->emu);
      tmp = g_file_new_for_path (item->tmp);
      src = sb_resolve (job->sb, item->path);
      sandbox_instance_download_async (job->sb->local, src, tmp, NULL, download_done, job);
      return;
    }

  if (job->sync_reply)  /* GET /files/download: one file, raw */
    {
      item = g_ptr_array_index (job->items, 0);
      if (item->status != 200)
        tb_error (job->emu, job->msg, item->status,
                  item->status == 404 ? "NOT_FOUND" : item->status == 400 ? "BAD_REQUEST" : "INTERNAL_SERVER_ERROR",
                  item->message);
      else
        {
          g_autoptr(GMappedFile) mapped = g_mapped_file_new (item->tmp, FALSE, NULL);
          g_autoptr(GBytes) bytes = mapped ? g_mapped_file_get_bytes (mapped) : g_bytes_new (NULL, 0);
          g_autofree char *base = g_path_get_basename (item->path);
          g_autofree char *disposition = g_strdup_printf ("attachment; filename=%s", base);

          soup_message_headers_replace (soup_server_message_get_response_headers (job->msg),
                                        "Content-Disposition", disposition);
          soup_server_message_set_status (job->msg, 200, NULL);
          soup_message_headers_set_content_type (soup_server_message_get_response_headers (job->msg),
                                                 "application/octet-stream", NULL);
          if (g_bytes_get_size (bytes) > 0)  /* libsoup takes no empty chunk */
            soup_message_body_append_bytes (soup_server_message_get_response_body (job->msg), bytes);
          soup_message_body_complete (soup_server_message_get_response_body (job->msg));
        }
      job_free (job);
      return;
    }

  {
    g_autofree char *boundary = g_uuid_string_random ();
    g_autofree char *type = g_strdup_printf ("multipart/form-data; boundary=%s", boundary);
    SoupMessageBody *body = soup_server_message_get_response_body (job->msg);

    soup_server_message_set_status (job->msg, 200, NULL);
    soup_message_headers_replace (soup_server_message_get_response_headers (job->msg),
                                  "Content-Type", type);
    for (guint i = 0; i < job->items->len; i++)
      {
        g_autoptr(GString) head = g_string_new (i == 0 ? "" : "\r\n");

        item = g_ptr_array_index (job->items, i);
        if (item->status == 200)
          {
            g_autoptr(GMappedFile) mapped = g_mapped_file_new (item->tmp, FALSE, NULL);
            g_autoptr(GBytes) bytes = mapped ? g_mapped_file_get_bytes (mapped) : g_bytes_new (NULL, 0);

            append_part_header (head, boundary, "file", item->path, "application/octet-stream",
                                (gssize) g_bytes_get_size (bytes));
            soup_message_body_append (body, SOUP_MEMORY_COPY, head->str, head->len);
            if (g_bytes_get_size (bytes) > 0)
              soup_message_body_append_bytes (body, bytes);
          }
        else
          {
            g_autoptr(JsonBuilder) b = json_builder_new ();
            g_autoptr(JsonGenerator) gen = json_generator_new ();
            g_autoptr(JsonNode) root = NULL;
            g_autofree char *text = NULL;

            json_builder_begin_object (b);
            json_builder_set_member_name (b, "statusCode");
            json_builder_add_int_value (b, item->status);
            json_builder_set_member_name (b, "message");
            json_builder_add_string_value (b, item->message);
            json_builder_set_member_name (b, "code");
            json_builder_add_string_value (b, item->code);
            json_builder_end_object (b);
            root = json_builder_get_root (b);
            json_generator_set_root (gen, root);
            text = json_generator_to_data (gen, NULL);
            append_part_header (head, boundary, "error", item->path, "application/json", -1);
            g_string_append (head, text);
            soup_message_body_append (body, SOUP_MEMORY_COPY, head->str, head->len);
          }
      }
    {
      g_autofree char *tail = g_strdup_printf ("%s--%s--\r\n", job->items->len ? "\r\n" : "", boundary);
      soup_message_body_append (body, SOUP_MEMORY_COPY, tail, strlen (tail));
    }
    soup_message_body_complete (body);
  }
  job_free (job);
}

static void
download_start (DaytonaEmulator   *emu,
                EmuSandbox        *sb,
                SoupServerMessage *msg,
                GPtrArray         *items,
                gboolean           single)
{
  Job *job = job_new (emu, sb, msg);

  job->items = g_ptr_array_ref (items);
  job->sync_reply = single;
  download_next (job);
}

static void
tb_bulk_download (DaytonaEmulator   *emu,
                  EmuSandbox        *sb,
                  SoupServerMessage *msg)
{
  g_autoptr(JsonObject) body = request_object (emu, msg, TRUE, FALSE);
  g_autoptr(GPtrArray) items = g_ptr_array_new_with_free_func ((GDestroyNotify) dl_item_free);
  JsonNode *paths;

  if (body == NULL)
    return;
  paths = json_object_get_member (body, "paths");
  if (paths == NULL || !JSON_NODE_HOLDS_ARRAY (paths) || json_array_get_length (json_node_get_array (paths)) == 0)
    {
      g_autoptr(JsonBuilder) b = json_builder_new ();

      json_builder_begin_object (b);
      json_builder_set_member_name (b, "error");
      json_builder_add_string_value (b, "paths must be a non-empty array");
      json_builder_end_object (b);
      return reply_json (emu, msg, 400, node_from_builder (b));
    }
  for (guint i = 0; i < json_array_get_length (json_node_get_array (paths)); i++)
    {
      DlItem *item = g_new0 (DlItem, 1);

      item->path = g_strdup (json_array_get_string_element (json_node_get_array (paths), i));
      if (item->path == NULL)
        item->path = g_strdup ("");
      g_ptr_array_add (items, item);
    }
  download_start (emu, sb, msg, items, FALSE);
}

static void
tb_files (DaytonaEmulator   *emu,
          EmuSandbox        *sb,
          SoupServerMessage *msg,
          const char        *rest,     /* after /files */
          GHashTable        *query)
{
  const char *method = soup_server_message_get_method (msg);
  const char *path = _emu_query (query, "path");
  g_autoptr(GHashTable) env = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);

  if ((*rest == '\0' || strcmp (rest, "/") == 0) && strcmp (method, "GET") == 0)
    return file_script (emu, sb, msg, FILE_LIST, path, env);
  if ((*rest == '\0' || strcmp (rest, "/") == 0) && strcmp (method, "DELETE") == 0)
    {
      if (path == NULL)
        return tb_error (emu, msg, 400, "BAD_REQUEST", "bad request: path is required");
      g_hash_table_insert (env, g_strdup ("R"),
                           g_strdup (g_strcmp0 (g_hash_table_lookup (query, "recursive"), "true") == 0 ? "true" : "false"));
      return file_script (emu, sb, msg, FILE_DELETE, path, env);
    }
  if (strcmp (rest, "/info") == 0 && strcmp (method, "GET") == 0)
    {
      if (path == NULL)
        return tb_error (emu, msg, 400, "BAD_REQUEST", "bad request: path is required");
      return file_script (emu, sb, msg, FILE_INFO, path, env);
    }
  if (strcmp (rest, "/folder") == 0 && strcmp (method, "POST") == 0)
    {
      const char *mode = _emu_query (query, "mode");
      char *end = NULL;
      guint64 bits;

      if (path == NULL)
        return tb_error (emu, msg, 400, "BAD_REQUEST", "bad request: path is required");
      if (mode == NULL || *mode == '\0')
        return tb_error (emu, msg, 400, "BAD_REQUEST", "bad request: mode is required");
      bits = g_ascii_strtoull (mode, &end, 8);
      if (*end != '\0' || bits > 07777)
        return tb_error (emu, msg, 400, "BAD_REQUEST", "bad request: invalid mode format");
      g_hash_table_insert (env, g_strdup ("M"), g_strdup_printf ("%o", (guint) bits));
      return file_script (emu, sb, msg, FILE_FOLDER, path, env);
    }
  if (strcmp (rest, "/move") == 0 && strcmp (method, "POST") == 0)
    {
      const char *source = _emu_query (query, "source");
      const char *destination = _emu_query (query, "destination");

      if (source == NULL || *source == '\0' || destination == NULL || *destination == '\0')
        return tb_error (emu, msg, 400, "BAD_REQUEST", "bad request: source and destination paths are required");
      g_hash_table_insert (env, g_strdup ("S"), sb_resolve (sb, source));
      return file_script (emu, sb, msg, FILE_MOVE, destination, env);
    }
  if (strcmp (rest, "/permissions") == 0 && strcmp (method, "POST") == 0)
    {
      const char *mode = _emu_query (query, "mode");

      if (path == NULL || *path == '\0')
        return tb_error (emu, msg, 400, "BAD_REQUEST", "bad request: path is required");
      if (mode != NULL && *mode != '\0')
        {
          char *end = NULL;
          guint64 bits = g_ascii_strtoull (mode, &end, 8);

          if (*end != '\0' || bits > 07777)
            return tb_error (emu, msg, 400, "BAD_REQUEST", "bad request: invalid mode format");
          g_hash_table_insert (env, g_strdup ("M"), g_strdup_printf ("%o", (guint) bits));
        }
      g_hash_table_insert (env, g_strdup ("O"), g_strdup (_emu_query (query, "owner") ? _emu_query (query, "owner") : ""));
      g_hash_table_insert (env, g_strdup ("G"), g_strdup (_emu_query (query, "group") ? _emu_query (query, "group") : ""));
      return file_script (emu, sb, msg, FILE_PERMISSIONS, path, env);
    }
  if ((strcmp (rest, "/find") == 0 || strcmp (rest, "/search") == 0) && strcmp (method, "GET") == 0)
    {
      const char *pattern = _emu_query (query, "pattern");

      if (path == NULL || *path == '\0' || pattern == NULL)
        return tb_error (emu, msg, 400, "BAD_REQUEST", "bad request: path and pattern are required");
      g_hash_table_insert (env, g_strdup ("T"), g_strdup (pattern));
      return file_script (emu, sb, msg, strcmp (rest, "/find") == 0 ? FILE_FIND : FILE_SEARCH, path, env);
    }
  if (strcmp (rest, "/replace") == 0 && strcmp (method, "POST") == 0)
    {
      g_autoptr(JsonObject) body = request_object (emu, msg, TRUE, FALSE);
      JsonArray *files;
      g_autoptr(GString) list = g_string_new (NULL);

      if (body == NULL)
        return;
      files = json_object_has_member (body, "files") && JSON_NODE_HOLDS_ARRAY (json_object_get_member (body, "files"))
              ? json_object_get_array_member (body, "files") : NULL;
      if (files == NULL || _sandbox_json_get_string (body, "pattern") == NULL)
        return tb_error (emu, msg, 400, "BAD_REQUEST", "invalid request body: files and pattern are required");
      for (guint i = 0; i < json_array_get_length (files); i++)
        {
          JsonNode *file = json_array_get_element (files, i);

          if (JSON_NODE_HOLDS_VALUE (file) && json_node_get_value_type (file) == G_TYPE_STRING)
            g_string_append_printf (list, "%s\n", json_node_get_string (file));
        }
      g_hash_table_insert (env, g_strdup ("FILES"), g_strdup (list->str));
      g_hash_table_insert (env, g_strdup ("O"), g_strdup (_sandbox_json_get_string (body, "pattern")));
      g_hash_table_insert (env, g_strdup ("N"), g_strdup (_sandbox_json_get_string (body, "newValue")
                                                          ? _sandbox_json_get_string (body, "newValue") : ""));
      return file_script (emu, sb, msg, FILE_REPLACE, NULL, env);
    }
  if (strcmp (rest, "/bulk-upload") == 0 && strcmp (method, "POST") == 0)
    return tb_bulk_upload (emu, sb, msg);
  if ((strcmp (rest, "/upload") == 0 || strcmp (rest, "/upload-v2") == 0) && strcmp (method, "POST") == 0)
    return tb_upload_one (emu, sb, msg, path);
  if (strcmp (rest, "/bulk-download") == 0 && strcmp (method, "POST") == 0)
    return tb_bulk_download (emu, sb, msg);
  if (strcmp (rest, "/download") == 0 && strcmp (method, "GET") == 0)
    {
      g_autoptr(GPtrArray) items = g_ptr_array_new_with_free_func ((GDestroyNotify) dl_item_free);
      DlItem *item;

      if (path == NULL)
        return tb_error (emu, msg, 400, "BAD_REQUEST", "bad request: path is required");
      item = g_new0 (DlItem, 1);
      item->path = g_strdup (path);
      g_ptr_array_add (items, item);
      return download_start (emu, sb, msg, items, TRUE);
    }

  {
    g_autofree char *m = g_strdup_printf ("not found: %s /files%s is not served by the Daytona emulator",
                                          method, rest);
    tb_error (emu, msg, 404, "NOT_FOUND", m);
  }
}

/* ------------------------------------------------------------------ */
/* Toolbox dispatch                                                    */

/* ------------------------------------------------------------------ */
/* Toolbox: PTY sessions                                               */

/* A PTY session: a login shell on a real terminal (the local backend's),
 * whose output goes to every WebSocket attached to it and whose input is
 * what they send. As in the daemon, it starts at creation (or, with
 * lazyStart, at the first connection), runs once, and leaves the table
 * when its shell ends; its clients then get the "exited" control message
 * (if they asked for it with the X-Daytona-Pty-Exit-Control subprotocol)
 * and a close frame whose reason is {"exitCode": N, "exitReason": …}. */

#define PTY_EXIT_CONTROL "X-Daytona-Pty-Exit-Control"
#define PTY_ENVS_PREFIX "X-Daytona-Pty-Envs~"

typedef struct
{
  EmuPty                  *pty;
  SoupWebsocketConnection *conn;
  gboolean                 exit_control;
} PtyClient;

struct _EmuPty
{
  int             ref;
  EmuSandbox     *sb;         /* NULL once the sandbox has been freed */
  char           *id;
  char           *cwd;
  GHashTable     *envs;       /* utf8 -> utf8 */
  char           *created_at;
  guint           cols, rows;
  gboolean        lazy;
  gboolean        active;
  gboolean        started;    /* it runs once only */
  SandboxCommand *command;
  GCancellable   *cancel;
  GPtrArray      *clients;    /* PtyClient */
  GByteArray     *backlog;    /* output before its first client came */
  gboolean        had_client;
};

static EmuPty *
pty_ref (EmuPty *pty)
{
  pty->ref++;
  return pty;
}

static void
pty_client_free (PtyClient *client)
{
  g_signal_handlers_disconnect_by_data (client->conn, client);
  if (soup_websocket_connection_get_state (client->conn) == SOUP_WEBSOCKET_STATE_OPEN)
    soup_websocket_connection_close (client->conn, SOUP_WEBSOCKET_CLOSE_GOING_AWAY, NULL);
  g_object_unref (client->conn);
  g_free (client);
}

static void
pty_unref (EmuPty *pty)
{
  if (--pty->ref > 0)
    return;
  g_ptr_array_unref (pty->clients);
  g_byte_array_unref (pty->backlog);
  g_clear_object (&pty->command);
  g_clear_object (&pty->cancel);
  g_hash_table_unref (pty->envs);
  g_free (pty->id);
  g_free (pty->cwd);
  g_free (pty->created_at);
  g_free (pty);
}

/* The sandbox stops or goes: its terminals' shells are killed. */
static void
pty_kill_all (EmuSandbox *sb)
{
  GHashTableIter iter;
  EmuPty *pty;

  g_hash_table_iter_init (&iter, sb->ptys);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &pty))
    g_cancellable_cancel (pty->cancel);
}

static void
pty_forget_sandbox (EmuSandbox *sb)
{
  GHashTableIter iter;
  EmuPty *pty;

  g_hash_table_iter_init (&iter, sb->ptys);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &pty))
    pty->sb = NULL;
}

static JsonNode *
pty_info (EmuPty *pty)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();
  GHashTableIter iter;
  const char *k, *v;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "id");
  json_builder_add_string_value (b, pty->id);
  json_builder_set_member_name (b, "cwd");
  json_builder_add_string_value (b, pty->cwd);
  json_builder_set_member_name (b, "envs");
  json_builder_begin_object (b);
  g_hash_table_iter_init (&iter, pty->envs);
  while (g_hash_table_iter_next (&iter, (gpointer *) &k, (gpointer *) &v))
    {
      json_builder_set_member_name (b, k);
      json_builder_add_string_value (b, v);
    }
  json_builder_end_object (b);
  json_builder_set_member_name (b, "cols");
  json_builder_add_int_value (b, pty->cols);
  json_builder_set_member_name (b, "rows");
  json_builder_add_int_value (b, pty->rows);
  json_builder_set_member_name (b, "createdAt");
  json_builder_add_string_value (b, pty->created_at);
  json_builder_set_member_name (b, "active");
  json_builder_add_boolean_value (b, pty->active);
  json_builder_set_member_name (b, "lazyStart");
  json_builder_add_boolean_value (b, pty->lazy);
  json_builder_end_object (b);
  return node_from_builder (b);
}

static void
pty_write (gpointer      data,
           gboolean      is_stderr,
           const guint8 *buf,
           gsize         len)
{
  EmuPty *pty = data;

  if (!pty->had_client)
    {
      g_byte_array_append (pty->backlog, buf, len);
      return;
    }
  for (guint i = 0; i < pty->clients->len; i++)
    {
      PtyClient *client = g_ptr_array_index (pty->clients, i);

      if (soup_websocket_connection_get_state (client->conn) == SOUP_WEBSOCKET_STATE_OPEN)
        send_frames (client->conn, buf, len);
    }
}

/* The daemon's words for how a shell ended (128 + N: signal N). */
static const char *
pty_exit_reason (int code, char **owned)
{
  if (code == 0)
    return NULL;
  if (code == 130)
    return "Ctrl+C";
  if (code == 137)
    return "SIGKILL";
  if (code == 143)
    return "SIGTERM";
  if (code > 128)
    return *owned = g_strdup_printf ("signal %d", code - 128);
  return "non-zero exit";
}

static void
pty_close_clients (EmuPty *pty,
                   int     code)
{
  g_autofree char *owned = NULL;
  const char *reason = pty_exit_reason (code, &owned);
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonNode) close_node = NULL;
  g_autofree char *close_text = NULL;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "exitCode");
  json_builder_add_int_value (b, code);
  if (reason != NULL)
    {
      json_builder_set_member_name (b, "exitReason");
      json_builder_add_string_value (b, reason);
    }
  json_builder_end_object (b);
  close_node = json_builder_get_root (b);
  close_text = json_to_string (close_node, FALSE);

  while (pty->clients->len > 0)
    {
      PtyClient *client = g_ptr_array_steal_index (pty->clients, 0);

      if (soup_websocket_connection_get_state (client->conn) == SOUP_WEBSOCKET_STATE_OPEN)
        {
          if (client->exit_control)
            {
              g_autoptr(JsonBuilder) c = json_builder_new ();
              g_autoptr(JsonNode) node = NULL;
              g_autofree char *text = NULL;

              json_builder_begin_object (c);
              json_builder_set_member_name (c, "type");
              json_builder_add_string_value (c, "control");
              json_builder_set_member_name (c, "status");
              json_builder_add_string_value (c, "exited");
              json_builder_set_member_name (c, "exitCode");
              json_builder_add_int_value (c, code);
              if (reason != NULL)
                {
                  json_builder_set_member_name (c, "exitReason");
                  json_builder_add_string_value (c, reason);
                }
              json_builder_end_object (c);
              node = json_builder_get_root (c);
              text = json_to_string (node, FALSE);
              soup_websocket_connection_send_text (client->conn, text);
            }
          soup_websocket_connection_close (client->conn,
                                           code == 0 ? SOUP_WEBSOCKET_CLOSE_NORMAL
                                                     : SOUP_WEBSOCKET_CLOSE_SERVER_ERROR,
                                           close_text);
        }
      pty_client_free (client);
    }
}

static void
pty_ended (EmuPty *pty,
           int     code)
{
  pty->active = FALSE;
  pty_close_clients (pty, code);
  /* Gone from the table: it cannot be used again. */
  if (pty->sb != NULL && g_hash_table_lookup (pty->sb->ptys, pty->id) == pty)
    g_hash_table_remove (pty->sb->ptys, pty->id);
}

static void
pty_exited (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  EmuPty *pty = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(SandboxExecResult) res = sandbox_instance_exec_finish (SANDBOX_INSTANCE (source),
                                                                    result, &error);
  int code = 137;   /* killed (DELETE, or the sandbox stopped) */

  if (res != NULL && sandbox_exec_result_get_term_signal (res) > 0)
    code = 128 + sandbox_exec_result_get_term_signal (res);
  else if (res != NULL)
    code = sandbox_exec_result_get_exit_status (res);
  else if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      g_debug ("daytona-emulator: the shell of PTY %s failed: %s", pty->id, error->message);
      code = 1;
    }
  pty_ended (pty, code);
  pty_unref (pty);
}

static gboolean
pty_start (EmuPty  *pty,
           GError **error)
{
  EmuSandbox *sb = pty->sb;
  g_autoptr(GOutputStream) out = NULL;
  GHashTableIter iter;
  const char *k, *v;

  if (pty->started)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                           "PTY session has already been used and cannot be restarted");
      return FALSE;
    }
  if (sb == NULL || sb->local == NULL)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_FAILED, "the sandbox is not running");
      return FALSE;
    }
  /* The daemon's shell, interactive and a login shell. */
  pty->command = sandbox_command_new_shell ("if command -v bash >/dev/null 2>&1; then exec bash -i -l; fi; "
                                            "exec sh -i -l");
  sandbox_command_set_tty (pty->command, TRUE);
  sandbox_command_resize_tty (pty->command, pty->rows, pty->cols);
  sandbox_command_set_cwd (pty->command, pty->cwd);
  g_hash_table_iter_init (&iter, pty->envs);
  while (g_hash_table_iter_next (&iter, (gpointer *) &k, (gpointer *) &v))
    sandbox_command_set_env (pty->command, k, v);
  out = _emu_sink_new (pty_write, FALSE, pty_ref (pty), (GDestroyNotify) pty_unref);
  sandbox_command_set_stdout_stream (pty->command, out);
  pty->cancel = g_cancellable_new ();
  pty->started = TRUE;
  pty->active = TRUE;
  sandbox_instance_exec_async (sb->local, pty->command, pty->cancel, pty_exited, pty_ref (pty));
  return TRUE;
}

/* Validates and adds a PTY session; on failure, answers MSG and returns NULL. */
static EmuPty *
pty_create (DaytonaEmulator   *emu,
            EmuSandbox        *sb,
            SoupServerMessage *msg,
            const char        *id,
            const char        *cwd,
            GHashTable        *envs,    /* taken */
            gint64             cols,
            gint64             rows,
            gboolean           lazy)
{
  EmuPty *pty;
  g_autoptr(GError) error = NULL;

  if (id == NULL || *id == '\0')
    {
      g_hash_table_unref (envs);
      tb_error (emu, msg, 400, "BAD_REQUEST", "session ID is required");
      return NULL;
    }
  if (g_hash_table_contains (sb->ptys, id))
    {
      g_autofree char *m = g_strdup_printf ("PTY session with ID '%s' already exists", id);

      g_hash_table_unref (envs);
      tb_error (emu, msg, 409, "CONFLICT", m);
      return NULL;
    }
  if (cols < 1 || cols > 1000 || rows < 1 || rows > 1000)
    {
      g_hash_table_unref (envs);
      tb_error (emu, msg, 400, "BAD_REQUEST", cols < 1 || cols > 1000
                ? "invalid value for cols - must be less than 1000"
                : "invalid value for rows - must be less than 1000");
      return NULL;
    }
  pty = g_new0 (EmuPty, 1);
  pty->ref = 1;   /* the table's */
  pty->sb = sb;
  pty->id = g_strdup (id);
  pty->cwd = sb_resolve (sb, cwd);
  pty->envs = envs;
  if (!g_hash_table_contains (envs, "TERM"))
    g_hash_table_insert (envs, g_strdup ("TERM"), g_strdup ("xterm-256color"));
  pty->created_at = now_iso ();
  pty->cols = (guint) cols;
  pty->rows = (guint) rows;
  pty->lazy = lazy;
  pty->clients = g_ptr_array_new_with_free_func ((GDestroyNotify) pty_client_free);
  pty->backlog = g_byte_array_new ();
  g_hash_table_insert (sb->ptys, pty->id, pty);
  if (!lazy && !pty_start (pty, &error))
    {
      g_hash_table_remove (sb->ptys, id);
      tb_error (emu, msg, 500, "INTERNAL_SERVER_ERROR", "failed to start PTY session");
      return NULL;
    }
  return pty;
}

typedef struct
{
  EmuPty   *pty;
  GList    *extensions;
  gboolean  exit_control;
  char     *refusal;   /* the "error" control message to send, or NULL */
} PtyUpgrade;

static void
pty_upgrade_free (PtyUpgrade *up)
{
  g_clear_pointer (&up->pty, pty_unref);
  g_list_free_full (up->extensions, g_object_unref);
  g_free (up->refusal);
  g_free (up);
}

static void
pty_client_message (SoupWebsocketConnection *conn,
                    SoupWebsocketDataType    type,
                    GBytes                  *message,
                    PtyClient               *client)
{
  if (!client->pty->active || !sandbox_command_send_input (client->pty->command, message))
    soup_websocket_connection_close (conn, SOUP_WEBSOCKET_CLOSE_SERVER_ERROR, "PTY session unavailable");
}

static void
pty_client_closed (SoupWebsocketConnection *conn,
                   PtyClient               *client)
{
  g_ptr_array_remove (client->pty->clients, client);
}

static void
pty_ws_upgraded (SoupServerMessage *msg,
                 PtyUpgrade        *up)
{
  g_autoptr(GIOStream) stream = NULL;
  SoupWebsocketConnection *conn;
  PtyClient *client;

  g_signal_handlers_disconnect_by_func (msg, pty_ws_upgraded, up);
  stream = soup_server_message_steal_connection (msg);
  conn = soup_websocket_connection_new (
      stream, soup_server_message_get_uri (msg), SOUP_WEBSOCKET_CONNECTION_SERVER,
      soup_message_headers_get_one (soup_server_message_get_request_headers (msg), "Origin"),
      soup_message_headers_get_one (soup_server_message_get_response_headers (msg), "Sec-WebSocket-Protocol"),
      g_steal_pointer (&up->extensions));
  soup_websocket_connection_set_keepalive_interval (conn, 20);

  if (up->refusal != NULL)
    {
      /* As the daemon: the upgrade succeeds, then an error control message. */
      g_autoptr(JsonBuilder) b = json_builder_new ();
      g_autoptr(JsonNode) node = NULL;
      g_autofree char *text = NULL;

      json_builder_begin_object (b);
      json_builder_set_member_name (b, "type");
      json_builder_add_string_value (b, "control");
      json_builder_set_member_name (b, "status");
      json_builder_add_string_value (b, "error");
      json_builder_set_member_name (b, "error");
      json_builder_add_string_value (b, up->refusal);
      json_builder_end_object (b);
      node = json_builder_get_root (b);
      text = json_to_string (node, FALSE);
      soup_websocket_connection_send_text (conn, text);
      soup_websocket_connection_close (conn, SOUP_WEBSOCKET_CLOSE_NORMAL, NULL);
      g_object_unref (conn);
      pty_upgrade_free (up);
      return;
    }

  client = g_new0 (PtyClient, 1);
  client->pty = up->pty;
  client->conn = conn;
  client->exit_control = up->exit_control;
  g_signal_connect (conn, "message", G_CALLBACK (pty_client_message), client);
  g_signal_connect (conn, "closed", G_CALLBACK (pty_client_closed), client);
  g_ptr_array_add (up->pty->clients, client);
  soup_websocket_connection_send_text (conn, "{\"type\":\"control\",\"status\":\"connected\"}");
  if (!up->pty->had_client)
    {
      up->pty->had_client = TRUE;
      if (up->pty->backlog->len > 0)
        send_frames (conn, up->pty->backlog->data, up->pty->backlog->len);
      g_byte_array_set_size (up->pty->backlog, 0);
    }
  pty_upgrade_free (up);
}

/* Answers the upgrade of MSG and, once it is written, attaches the
 * connection to PTY (or, with REFUSAL, sends that error and closes). */
static void
pty_ws_attach (SoupServerMessage *msg,
               EmuPty            *pty,
               const char        *refusal)
{
  static const char *protocols[] = { PTY_EXIT_CONTROL, NULL };
  const char *offered = soup_message_headers_get_one (soup_server_message_get_request_headers (msg),
                                                      "Sec-WebSocket-Protocol");
  PtyUpgrade *up = g_new0 (PtyUpgrade, 1);
  g_autoptr(GPtrArray) supported = g_ptr_array_new_with_free_func (g_type_class_unref);

  up->exit_control = offered != NULL && strstr (offered, PTY_EXIT_CONTROL) != NULL;
  g_ptr_array_add (supported, g_type_class_ref (SOUP_TYPE_WEBSOCKET_EXTENSION_DEFLATE));
  /* Chooses the exit-control token when offered; other tokens (the envs)
   * carry data and are not chosen. */
  if (!soup_websocket_server_process_handshake (msg, NULL, up->exit_control ? (char **) protocols : NULL,
                                                supported, &up->extensions))
    {
      g_free (up);
      return;  /* it answered 400 */
    }
  up->pty = pty != NULL ? pty_ref (pty) : NULL;
  up->refusal = g_strdup (refusal);
  g_signal_connect (msg, "wrote-informational", G_CALLBACK (pty_ws_upgraded), up);
}

/* The envs of create-connect: a subprotocol token holding base64url (no
 * padding) of a JSON object. */
static GHashTable *
pty_envs_from_protocols (const char *offered)
{
  const char *start;
  g_autofree char *token = NULL;
  g_autofree guchar *json = NULL;
  gsize len = 0, n;
  g_autoptr(JsonParser) parser = json_parser_new ();
  JsonNode *root;

  if (offered == NULL || (start = strstr (offered, PTY_ENVS_PREFIX)) == NULL)
    return env_from_json (NULL);
  start += strlen (PTY_ENVS_PREFIX);
  n = strcspn (start, ", ");
  token = g_malloc0 (n + 4);
  for (gsize i = 0; i < n; i++)
    token[i] = start[i] == '-' ? '+' : start[i] == '_' ? '/' : start[i];
  while (n % 4 != 0)
    token[n++] = '=';
  json = g_base64_decode (token, &len);
  if (json == NULL || !json_parser_load_from_data (parser, (const char *) json, (gssize) len, NULL) ||
      (root = json_parser_get_root (parser)) == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    return env_from_json (NULL);
  return env_from_json (json_node_get_object (root));
}

static gint64
query_int (GHashTable *query,
           const char *key,
           gint64      fallback)
{
  const char *text = query != NULL ? g_hash_table_lookup (query, key) : NULL;

  return text != NULL ? g_ascii_strtoll (text, NULL, 10) : fallback;
}

/* ------------------------------------------------------------------ */
/* Toolbox: the code interpreter                                       */

/* Stateful Python contexts (/process/interpreter/context, WebSocket
 * /process/interpreter/execute). A context is one python3 process in the
 * sandbox, on a terminal of the local backend (the way to write to a
 * running command), that keeps its globals between runs: the driver
 * below puts the terminal in raw mode, reads one request a line (base64
 * of {"code", "envs", "timeout"}), runs it, and writes records
 * "\x1e<json>\n": {"type": "stdout"|"stderr", "text"}, {"type": "error",
 * "name", "value", "traceback"}, then "__done__" (or "__timeout__" when
 * the run's timeout hit). The emulator passes the stdout, stderr and
 * error records to the run's WebSocket as the daemon's messages and
 * closes it normally at the end, with 4008 on a timeout. Runs of one
 * context queue; the default context (no contextId) is made at its first
 * run and is not listed. */

#define INTERP_RECORD '\x1e'
#define INTERP_TIMEOUT_CLOSE 4008

static const char interp_driver[] =
  "import base64, json, os, signal, sys, traceback, tty\n"
  "out = os.fdopen(1, 'wb', buffering=0)\n"
  "def emit(**record):\n"
  "    out.write(b'\\x1e' + json.dumps(record).encode() + b'\\n')\n"
  "class Stream:\n"
  "    def __init__(self, kind):\n"
  "        self.kind = kind\n"
  "    def write(self, text):\n"
  "        if text:\n"
  "            emit(type=self.kind, text=text)\n"
  "        return len(text)\n"
  "    def flush(self):\n"
  "        pass\n"
  "    def isatty(self):\n"
  "        return False\n"
  "class RunTimeout(BaseException):\n"
  "    pass\n"
  "def on_alarm(*args):\n"
  "    raise RunTimeout()\n"
  "signal.signal(signal.SIGALRM, on_alarm)\n"
  "tty.setraw(0)\n"
  "inp = os.fdopen(0, 'rb', buffering=0)\n"
  "namespace = {'__name__': '__main__', '__builtins__': __builtins__}\n"
  "pending = b''\n"
  "emit(type='__ready__')\n"
  "while True:\n"
  "    while b'\\n' not in pending:\n"
  "        chunk = inp.read(65536)\n"
  "        if not chunk:\n"
  "            sys.exit(0)\n"
  "        pending += chunk\n"
  "    line, pending = pending.split(b'\\n', 1)\n"
  "    request = json.loads(base64.b64decode(line.strip()))\n"
  "    saved = dict(os.environ)\n"
  "    os.environ.update(request.get('envs') or {})\n"
  "    sys.stdout, sys.stderr = Stream('stdout'), Stream('stderr')\n"
  "    end = '__done__'\n"
  "    try:\n"
  "        signal.alarm(int(request.get('timeout') or 0))\n"
  "        try:\n"
  "            exec(compile(request['code'], '<cell>', 'exec'), namespace)\n"
  "        finally:\n"
  "            signal.alarm(0)\n"
  "    except RunTimeout:\n"
  "        end = '__timeout__'\n"
  "    except BaseException as error:\n"
  "        emit(type='error', name=type(error).__name__, value=str(error),\n"
  "             traceback=traceback.format_exc())\n"
  "    finally:\n"
  "        sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__\n"
  "        os.environ.clear()\n"
  "        os.environ.update(saved)\n"
  "    emit(type=end)\n";

typedef struct
{
  SoupWebsocketConnection *conn;
  char                    *line;   /* the request for the driver */
} InterpRun;

struct _EmuInterp
{
  int             ref;
  EmuSandbox     *sb;         /* NULL once the sandbox has been freed */
  char           *id;
  char           *cwd;
  char           *created_at;
  gboolean        listed;     /* made by POST (not the default context) */
  gboolean        active;
  gboolean        ready;      /* the driver said so */
  gboolean        busy;       /* the head of runs was sent */
  SandboxCommand *command;
  GCancellable   *cancel;
  GByteArray     *output;     /* not yet a whole line */
  GQueue         *runs;       /* InterpRun */
};

static void
interp_run_free (InterpRun *run)
{
  g_clear_object (&run->conn);
  g_free (run->line);
  g_free (run);
}

static EmuInterp *
interp_ref (EmuInterp *interp)
{
  interp->ref++;
  return interp;
}

static void
interp_unref (EmuInterp *interp)
{
  if (--interp->ref > 0)
    return;
  g_queue_free_full (interp->runs, (GDestroyNotify) interp_run_free);
  g_byte_array_unref (interp->output);
  g_clear_object (&interp->command);
  g_clear_object (&interp->cancel);
  g_free (interp->id);
  g_free (interp->cwd);
  g_free (interp->created_at);
  g_free (interp);
}

static void
interp_kill_all (EmuSandbox *sb)
{
  GHashTableIter iter;
  EmuInterp *interp;

  g_hash_table_iter_init (&iter, sb->interps);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &interp))
    g_cancellable_cancel (interp->cancel);
}

static void
interp_forget_sandbox (EmuSandbox *sb)
{
  GHashTableIter iter;
  EmuInterp *interp;

  g_hash_table_iter_init (&iter, sb->interps);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &interp))
    interp->sb = NULL;
}

static JsonNode *
interp_info (EmuInterp *interp)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "id");
  json_builder_add_string_value (b, interp->id);
  json_builder_set_member_name (b, "cwd");
  json_builder_add_string_value (b, interp->cwd);
  json_builder_set_member_name (b, "language");
  json_builder_add_string_value (b, "python");
  json_builder_set_member_name (b, "createdAt");
  json_builder_add_string_value (b, interp->created_at);
  json_builder_set_member_name (b, "active");
  json_builder_add_boolean_value (b, interp->active);
  json_builder_end_object (b);
  return node_from_builder (b);
}

static void
interp_close (SoupWebsocketConnection *conn,
              gushort                  code,
              const char              *reason)
{
  if (conn != NULL && soup_websocket_connection_get_state (conn) == SOUP_WEBSOCKET_STATE_OPEN)
    soup_websocket_connection_close (conn, code, reason);
}

/* Sends the next queued run to the driver, when it is free. */
static void
interp_pump (EmuInterp *interp)
{
  InterpRun *run = g_queue_peek_head (interp->runs);
  g_autoptr(GBytes) line = NULL;

  if (run == NULL || !interp->ready || interp->busy || !interp->active)
    return;
  line = g_bytes_new (run->line, strlen (run->line));
  if (!sandbox_command_send_input (interp->command, line))
    {
      interp_close (run->conn, SOUP_WEBSOCKET_CLOSE_SERVER_ERROR, "the interpreter is not running");
      interp_run_free (g_queue_pop_head (interp->runs));
      return;
    }
  interp->busy = TRUE;
}

static void
interp_record (EmuInterp  *interp,
               const char *text)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  InterpRun *run = g_queue_peek_head (interp->runs);
  JsonNode *root;
  const char *type;

  if (!json_parser_load_from_data (parser, text, -1, NULL) ||
      (root = json_parser_get_root (parser)) == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    return;
  type = json_object_get_string_member_with_default (json_node_get_object (root), "type", "");
  if (strcmp (type, "__ready__") == 0)
    {
      interp->ready = TRUE;
      interp_pump (interp);
    }
  else if (strcmp (type, "__done__") == 0 || strcmp (type, "__timeout__") == 0)
    {
      if (run == NULL)
        return;
      if (strcmp (type, "__done__") == 0)
        interp_close (run->conn, SOUP_WEBSOCKET_CLOSE_NORMAL, NULL);
      else
        interp_close (run->conn, INTERP_TIMEOUT_CLOSE, "execution timed out");
      interp_run_free (g_queue_pop_head (interp->runs));
      interp->busy = FALSE;
      interp_pump (interp);
    }
  else if (run != NULL && run->conn != NULL &&
           soup_websocket_connection_get_state (run->conn) == SOUP_WEBSOCKET_STATE_OPEN)
    soup_websocket_connection_send_text (run->conn, text);
}

static void
interp_write (gpointer      data,
              gboolean      is_stderr,
              const guint8 *buf,
              gsize         len)
{
  EmuInterp *interp = data;
  guint8 *nl;

  g_byte_array_append (interp->output, buf, len);
  while ((nl = memchr (interp->output->data, '\n', interp->output->len)) != NULL)
    {
      gsize n = (gsize) (nl - interp->output->data);
      g_autofree char *line = g_strndup ((const char *) interp->output->data, n);

      g_byte_array_remove_range (interp->output, 0, (guint) n + 1);
      /* What the code's own subprocesses write straight to the terminal
       * is not a record: it is ignored. */
      if (line[0] == INTERP_RECORD)
        interp_record (interp, line + 1);
    }
}

static void
interp_exited (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  EmuInterp *interp = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(SandboxExecResult) res = sandbox_instance_exec_finish (SANDBOX_INSTANCE (source), result, &error);
  InterpRun *run;

  interp->active = FALSE;
  while ((run = g_queue_pop_head (interp->runs)) != NULL)
    {
      interp_close (run->conn, SOUP_WEBSOCKET_CLOSE_SERVER_ERROR, "the interpreter context ended");
      interp_run_free (run);
    }
  /* Gone from the table: a run on the default context starts another. */
  if (interp->sb != NULL && g_hash_table_lookup (interp->sb->interps, interp->id) == interp)
    g_hash_table_remove (interp->sb->interps, interp->id);
  interp_unref (interp);
}

/* A new context running in SB (added to its table), or NULL with ERROR. */
static EmuInterp *
interp_new (EmuSandbox  *sb,
            const char  *id,
            const char  *cwd,
            gboolean     listed,
            GError     **error)
{
  const char *argv[] = { "python3", "-u", "-c", interp_driver, NULL };
  g_autoptr(GOutputStream) out = NULL;
  EmuInterp *interp;

  if (sb->local == NULL)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_FAILED, "the sandbox is not running");
      return NULL;
    }
  interp = g_new0 (EmuInterp, 1);
  interp->ref = 1;   /* the table's */
  interp->sb = sb;
  interp->id = id ? g_strdup (id) : g_uuid_string_random ();
  interp->cwd = sb_resolve (sb, cwd);
  interp->created_at = now_iso ();
  interp->listed = listed;
  interp->output = g_byte_array_new ();
  interp->runs = g_queue_new ();
  interp->command = sandbox_command_new (argv);
  sandbox_command_set_tty (interp->command, TRUE);
  sandbox_command_set_cwd (interp->command, interp->cwd);
  out = _emu_sink_new (interp_write, FALSE, interp_ref (interp), (GDestroyNotify) interp_unref);
  sandbox_command_set_stdout_stream (interp->command, out);
  interp->cancel = g_cancellable_new ();
  interp->active = TRUE;
  g_hash_table_insert (sb->interps, interp->id, interp);
  sandbox_instance_exec_async (sb->local, interp->command, interp->cancel, interp_exited, interp_ref (interp));
  return interp;
}

typedef struct
{
  EmuSandbox *sb;     /* borrowed: the message is answered while it lives */
  GList      *extensions;
} InterpUpgrade;

/* The first message of an execute connection: the request. */
static void
interp_ws_message (SoupWebsocketConnection *conn,
                   SoupWebsocketDataType    type,
                   GBytes                  *message,
                   DaytonaEmulator         *emu)
{
  EmuSandbox *sb = g_hash_table_lookup (emu->sandboxes,
                                        g_object_get_data (G_OBJECT (conn), "daytona-emulator-sandbox-id"));
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(GError) error = NULL;
  gsize len;
  const char *data = g_bytes_get_data (message, &len);
  JsonObject *request;
  JsonNode *root, *node;
  const char *context_id, *code;
  EmuInterp *interp;
  InterpRun *run;
  g_autofree char *json = NULL;
  g_autofree char *b64 = NULL;

  g_signal_handlers_disconnect_by_func (conn, interp_ws_message, emu);
  if (sb == NULL || sb->local == NULL)
    {
      interp_close (conn, SOUP_WEBSOCKET_CLOSE_SERVER_ERROR, "the sandbox is not running");
      return;
    }
  if (!json_parser_load_from_data (parser, data, (gssize) len, NULL) ||
      (root = json_parser_get_root (parser)) == NULL || !JSON_NODE_HOLDS_OBJECT (root) ||
      (code = json_object_get_string_member_with_default (json_node_get_object (root), "code", NULL)) == NULL)
    {
      interp_close (conn, SOUP_WEBSOCKET_CLOSE_POLICY_VIOLATION, "invalid request: {\"code\": …} expected");
      return;
    }
  request = json_node_get_object (root);
  context_id = json_object_get_string_member_with_default (request, "contextId", NULL);
  interp = g_hash_table_lookup (sb->interps, context_id ? context_id : "default");
  if (interp == NULL && context_id != NULL && strcmp (context_id, "default") != 0)
    {
      g_autofree char *reason = g_strdup_printf ("context %s not found", context_id);

      interp_close (conn, SOUP_WEBSOCKET_CLOSE_SERVER_ERROR, reason);
      return;
    }
  if (interp == NULL && (interp = interp_new (sb, "default", NULL, FALSE, &error)) == NULL)
    {
      interp_close (conn, SOUP_WEBSOCKET_CLOSE_SERVER_ERROR, error->message);
      return;
    }

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "code");
  json_builder_add_string_value (b, code);
  if ((node = json_object_get_member (request, "envs")) != NULL && JSON_NODE_HOLDS_OBJECT (node))
    {
      json_builder_set_member_name (b, "envs");
      json_builder_add_value (b, json_node_copy (node));
    }
  if ((node = json_object_get_member (request, "timeout")) != NULL && JSON_NODE_HOLDS_VALUE (node))
    {
      json_builder_set_member_name (b, "timeout");
      json_builder_add_int_value (b, json_node_get_int (node));
    }
  json_builder_end_object (b);
  {
    g_autoptr(JsonNode) built = json_builder_get_root (b);

    json = json_to_string (built, FALSE);
  }
  b64 = g_base64_encode ((const guchar *) json, strlen (json));

  run = g_new0 (InterpRun, 1);
  run->conn = g_object_ref (conn);
  run->line = g_strconcat (b64, "\n", NULL);
  g_queue_push_tail (interp->runs, run);
  interp_pump (interp);
}

static void
interp_ws_upgraded (SoupServerMessage *msg,
                    InterpUpgrade     *up)
{
  g_autoptr(GIOStream) stream = NULL;
  SoupWebsocketConnection *conn;

  g_signal_handlers_disconnect_by_func (msg, interp_ws_upgraded, up);
  stream = soup_server_message_steal_connection (msg);
  conn = soup_websocket_connection_new (
      stream, soup_server_message_get_uri (msg), SOUP_WEBSOCKET_CONNECTION_SERVER,
      soup_message_headers_get_one (soup_server_message_get_request_headers (msg), "Origin"),
      NULL, g_steal_pointer (&up->extensions));
  soup_websocket_connection_set_keepalive_interval (conn, 20);
  /* The connection lives until it closes; the sandbox may not, so the
   * request looks it up again. */
  g_object_set_data_full (G_OBJECT (conn), "daytona-emulator-sandbox-id", g_strdup (up->sb->id), g_free);
  g_signal_connect (conn, "message", G_CALLBACK (interp_ws_message), up->sb->emu);
  g_signal_connect (conn, "closed", G_CALLBACK (g_object_unref), NULL);
  g_free (up);
}

static void
tb_interpreter (DaytonaEmulator   *emu,
                EmuSandbox        *sb,
                SoupServerMessage *msg,
                const char        *rest)
{
  const char *method = soup_server_message_get_method (msg);
  EmuInterp *interp;

  if (strcmp (rest, "/execute") == 0 && strcmp (method, "GET") == 0)
    {
      InterpUpgrade *up;
      g_autoptr(GPtrArray) supported = g_ptr_array_new_with_free_func (g_type_class_unref);

      if (!is_websocket (msg))
        return tb_error (emu, msg, 400, "BAD_REQUEST", "bad request: execute is a WebSocket endpoint");
      up = g_new0 (InterpUpgrade, 1);
      up->sb = sb;
      g_ptr_array_add (supported, g_type_class_ref (SOUP_TYPE_WEBSOCKET_EXTENSION_DEFLATE));
      if (!soup_websocket_server_process_handshake (msg, NULL, NULL, supported, &up->extensions))
        {
          g_free (up);
          return;  /* it answered 400 */
        }
      g_signal_connect (msg, "wrote-informational", G_CALLBACK (interp_ws_upgraded), up);
      return;
    }
  if (strcmp (rest, "/context") == 0 && strcmp (method, "POST") == 0)
    {
      g_autoptr(JsonObject) object = request_object (emu, msg, TRUE, TRUE);
      const char *cwd = object ? json_object_get_string_member_with_default (object, "cwd", NULL) : NULL;
      const char *language = object ? json_object_get_string_member_with_default (object, "language", NULL) : NULL;
      g_autoptr(GError) error = NULL;

      if (object == NULL)
        return;
      if (language != NULL && *language != '\0' && g_ascii_strcasecmp (language, "python") != 0)
        return tb_error (emu, msg, 400, "BAD_REQUEST", "unsupported language: only python contexts exist");
      interp = interp_new (sb, NULL, cwd, TRUE, &error);
      if (interp == NULL)
        return tb_error (emu, msg, 500, "INTERNAL_SERVER_ERROR", error->message);
      return reply_json (emu, msg, 200, interp_info (interp));
    }
  if (strcmp (rest, "/context") == 0 && strcmp (method, "GET") == 0)
    {
      g_autoptr(JsonBuilder) b = json_builder_new ();
      GHashTableIter iter;

      json_builder_begin_object (b);
      json_builder_set_member_name (b, "contexts");
      json_builder_begin_array (b);
      g_hash_table_iter_init (&iter, sb->interps);
      while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &interp))
        if (interp->listed)
          json_builder_add_value (b, interp_info (interp));
      json_builder_end_array (b);
      json_builder_end_object (b);
      return reply_json (emu, msg, 200, node_from_builder (b));
    }
  if (g_str_has_prefix (rest, "/context/") && strcmp (method, "DELETE") == 0)
    {
      g_autoptr(JsonBuilder) b = json_builder_new ();
      const char *id = rest + strlen ("/context/");

      interp = g_hash_table_lookup (sb->interps, id);
      if (interp == NULL || !interp->listed)
        return tb_error (emu, msg, interp == NULL ? 404 : 400, interp == NULL ? "NOT_FOUND" : "BAD_REQUEST",
                         interp == NULL ? "context not found" : "the default context cannot be deleted");
      interp_ref (interp);
      g_hash_table_remove (sb->interps, id);
      g_cancellable_cancel (interp->cancel);
      interp_unref (interp);
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "message");
      json_builder_add_string_value (b, "Context deleted");
      json_builder_end_object (b);
      return reply_json (emu, msg, 200, node_from_builder (b));
    }
  tb_error (emu, msg, 404, "NOT_FOUND", "no such interpreter endpoint");
}

/* ------------------------------------------------------------------ */
/* Toolbox: LSP                                                        */

/* /lsp/start, /stop, /did-open, /did-close, /document-symbols,
 * /workspacesymbols for languageId "python". The daemon runs a language
 * server (pylsp) in the sandbox; the host's root has none, so the
 * emulator answers the symbol queries with Python's own parser (ast), run
 * by python3 in the sandbox: classes (kind 5), methods (6), functions
 * (12) and module or class variables (13), as SymbolInformation
 * {name, kind, location {uri, range}}; lines from the first one that does
 * not parse on are left out (a file being edited), and workspace symbols
 * are those of the project's .py files whose name contains the query
 * (any case). A server must be started for its project before documents
 * are opened or queried, as in the daemon. Completions are not served. */

static const char lsp_indexer[] =
  "import ast, json, os, sys\n"
  "def parse(path):\n"
  "    with open(path, encoding='utf-8', errors='replace') as f:\n"
  "        lines = f.read().split('\\n')\n"
  "    while lines:\n"
  "        try:\n"
  "            return ast.parse('\\n'.join(lines))\n"
  "        except SyntaxError as error:\n"
  "            bad = (error.lineno or len(lines)) - 1\n"
  "            lines = lines[:bad] if 0 <= bad < len(lines) else lines[:-1]\n"
  "    return ast.parse('')\n"
  "def symbols(path):\n"
  "    found = []\n"
  "    uri = 'file://' + os.path.abspath(path)\n"
  "    def add(name, kind, node):\n"
  "        found.append({'name': name, 'kind': kind, 'location': {'uri': uri, 'range': {\n"
  "            'start': {'line': node.lineno - 1, 'character': node.col_offset},\n"
  "            'end': {'line': node.end_lineno - 1, 'character': node.end_col_offset}}}})\n"
  "    def walk(body, in_class):\n"
  "        for node in body:\n"
  "            if isinstance(node, ast.ClassDef):\n"
  "                add(node.name, 5, node)\n"
  "                walk(node.body, True)\n"
  "            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):\n"
  "                add(node.name, 6 if in_class else 12, node)\n"
  "            elif isinstance(node, (ast.Assign, ast.AnnAssign)):\n"
  "                targets = node.targets if isinstance(node, ast.Assign) else [node.target]\n"
  "                for target in targets:\n"
  "                    if isinstance(target, ast.Name):\n"
  "                        add(target.id, 13, target)\n"
  "    walk(parse(path).body, False)\n"
  "    return found\n"
  "mode, where, query = sys.argv[1], sys.argv[2], sys.argv[3].lower()\n"
  "if mode == 'document':\n"
  "    out = symbols(where)\n"
  "else:\n"
  "    out = []\n"
  "    for root, dirs, files in os.walk(where):\n"
  "        dirs[:] = sorted(d for d in dirs if not d.startswith('.'))\n"
  "        for name in sorted(files):\n"
  "            if name.endswith('.py'):\n"
  "                try:\n"
  "                    out += [s for s in symbols(os.path.join(root, name)) if query in s['name'].lower()]\n"
  "                except OSError:\n"
  "                    pass\n"
  "print(json.dumps(out))\n";

static char *
lsp_key (EmuSandbox *sb,
         const char *language,
         const char *project)
{
  g_autofree char *resolved = sb_resolve (sb, project);

  return g_strdup_printf ("%s\n%s", language, resolved);
}

/* A document's path in the sandbox: "file://" then an absolute path, or
 * one relative to the working directory (the SDK's relative paths). */
static char *
lsp_document_path (EmuSandbox *sb,
                   const char *uri)
{
  const char *path = g_str_has_prefix (uri, "file://") ? uri + strlen ("file://") : uri;

  return sb_resolve (sb, path);
}

static void
lsp_symbols_done (SandboxExecResult *result,
                  GError            *error,
                  gpointer           data)
{
  Job *job = data;
  g_autofree char *text = NULL;
  g_autoptr(JsonParser) parser = json_parser_new ();
  JsonNode *root;

  if (result == NULL || sandbox_exec_result_get_exit_code (result) != 0)
    {
      g_autofree char *err = job->log->err->len > 0 ? g_strndup ((const char *) job->log->err->data,
                                                                  job->log->err->len) : NULL;
      g_autofree char *m = g_strdup_printf ("failed to get symbols: %s",
                                            error ? error->message : err ? g_strstrip (err) : "python3 failed");

      tb_error (job->emu, job->msg, 500, "INTERNAL_SERVER_ERROR", m);
      job_free (job);
      return;
    }
  text = g_strndup ((const char *) job->log->out->data, job->log->out->len);
  if (!json_parser_load_from_data (parser, text, -1, NULL) || (root = json_parser_get_root (parser)) == NULL ||
      !JSON_NODE_HOLDS_ARRAY (root))
    {
      tb_error (job->emu, job->msg, 500, "INTERNAL_SERVER_ERROR", "failed to get symbols: unreadable answer");
      job_free (job);
      return;
    }
  reply_json (job->emu, job->msg, 200, json_node_copy (root));
  job_free (job);
}

static void
tb_lsp (DaytonaEmulator   *emu,
        EmuSandbox        *sb,
        SoupServerMessage *msg,
        const char        *rest,
        GHashTable        *query)
{
  const char *method = soup_server_message_get_method (msg);
  gboolean post = strcmp (method, "POST") == 0;
  g_autoptr(JsonObject) body = NULL;
  const char *language, *project, *uri = NULL;
  g_autofree char *key = NULL;
  GHashTable *documents;

  if (post && (strcmp (rest, "/start") == 0 || strcmp (rest, "/stop") == 0 ||
               strcmp (rest, "/did-open") == 0 || strcmp (rest, "/did-close") == 0))
    {
      if ((body = request_object (emu, msg, TRUE, FALSE)) == NULL)
        return;
      language = _sandbox_json_get_string (body, "languageId");
      project = _sandbox_json_get_string (body, "pathToProject");
      uri = _sandbox_json_get_string (body, "uri");
    }
  else if (!post && (strcmp (rest, "/document-symbols") == 0 || strcmp (rest, "/workspacesymbols") == 0))
    {
      language = query ? g_hash_table_lookup (query, "languageId") : NULL;
      project = query ? g_hash_table_lookup (query, "pathToProject") : NULL;
      uri = query ? g_hash_table_lookup (query, "uri") : NULL;
    }
  else
    {
      g_autofree char *m = g_strdup_printf ("not found: %s /lsp%s is not served by the Daytona emulator "
                                            "(see docs/testing.md)", method, rest);
      return tb_error (emu, msg, 404, "NOT_FOUND", m);
    }
  if (language == NULL || project == NULL)
    return tb_error (emu, msg, 400, "BAD_REQUEST", "invalid request: languageId and pathToProject are required");
  if (strcmp (language, "python") != 0)
    {
      g_autofree char *m = g_strdup_printf ("bad request: the Daytona emulator has no %s language server: "
                                            "only languageId python is served (see docs/testing.md)", language);
      return tb_error (emu, msg, 400, "BAD_REQUEST", m);
    }
  key = lsp_key (sb, language, project);
  documents = g_hash_table_lookup (sb->lsp_servers, key);

  if (strcmp (rest, "/start") == 0)
    {
      if (documents == NULL)
        g_hash_table_insert (sb->lsp_servers, g_steal_pointer (&key),
                             g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL));
      soup_server_message_set_status (msg, 200, NULL);
      return;
    }
  if (documents == NULL)
    {
      g_autofree char *m = g_strdup_printf ("bad request: no %s language server was started for %s", language,
                                            project);
      return tb_error (emu, msg, 400, "BAD_REQUEST", m);
    }
  if (strcmp (rest, "/stop") == 0)
    {
      g_hash_table_remove (sb->lsp_servers, key);
      soup_server_message_set_status (msg, 200, NULL);
      return;
    }
  if (strcmp (rest, "/workspacesymbols") != 0 && uri == NULL)
    return tb_error (emu, msg, 400, "BAD_REQUEST", "invalid request: uri is required");
  if (strcmp (rest, "/did-open") == 0 || strcmp (rest, "/did-close") == 0)
    {
      g_autofree char *path = lsp_document_path (sb, uri);

      if (strcmp (rest, "/did-open") == 0)
        g_hash_table_add (documents, g_steal_pointer (&path));
      else
        g_hash_table_remove (documents, path);
      soup_server_message_set_status (msg, 200, NULL);
      return;
    }
  {
    gboolean document = strcmp (rest, "/document-symbols") == 0;
    g_autofree char *where = document ? lsp_document_path (sb, uri) : sb_resolve (sb, project);
    const char *wanted = query ? g_hash_table_lookup (query, "query") : NULL;
    g_autofree char *q_code = g_shell_quote (lsp_indexer);
    g_autofree char *q_where = g_shell_quote (where);
    g_autofree char *q_query = g_shell_quote (wanted ? wanted : "");
    g_autofree char *script = g_strdup_printf ("exec python3 -c %s %s %s %s", q_code,
                                               document ? "document" : "workspace", q_where, q_query);
    Job *job = job_new (emu, sb, msg);

    emu_run (sb, script, NULL, NULL, 60, job->log, NULL, lsp_symbols_done, job);
  }
}

static void
tb_pty (DaytonaEmulator   *emu,
        EmuSandbox        *sb,
        SoupServerMessage *msg,
        const char        *rest,
        GHashTable        *query)
{
  const char *method = soup_server_message_get_method (msg);
  g_auto(GStrv) parts = g_strsplit (*rest == '/' ? rest + 1 : rest, "/", 3);
  guint n = *rest == '\0' ? 0 : g_strv_length (parts);
  EmuPty *pty;

  if (n == 0 && strcmp (method, "POST") == 0)
    {
      g_autoptr(JsonObject) body = request_object (emu, msg, TRUE, FALSE);
      JsonNode *envs;
      gint64 cols = 80, rows = 24;

      if (body == NULL)
        return;
      _sandbox_json_get_int (body, "cols", &cols);
      _sandbox_json_get_int (body, "rows", &rows);
      envs = json_object_get_member (body, "envs");
      pty = pty_create (emu, sb, msg, _sandbox_json_get_string (body, "id"),
                        _sandbox_json_get_string (body, "cwd"),
                        env_from_json (envs && JSON_NODE_HOLDS_OBJECT (envs) ? json_node_get_object (envs) : NULL),
                        cols, rows, json_object_get_boolean_member_with_default (body, "lazyStart", FALSE));
      if (pty != NULL)
        {
          g_autoptr(JsonBuilder) b = json_builder_new ();

          json_builder_begin_object (b);
          json_builder_set_member_name (b, "sessionId");
          json_builder_add_string_value (b, pty->id);
          json_builder_end_object (b);
          reply_json (emu, msg, 201, node_from_builder (b));
        }
      return;
    }
  if (n == 0 && strcmp (method, "GET") == 0)
    {
      g_autoptr(JsonBuilder) b = json_builder_new ();
      GHashTableIter iter;

      json_builder_begin_object (b);
      json_builder_set_member_name (b, "sessions");
      json_builder_begin_array (b);
      g_hash_table_iter_init (&iter, sb->ptys);
      while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &pty))
        json_builder_add_value (b, pty_info (pty));
      json_builder_end_array (b);
      json_builder_end_object (b);
      return reply_json (emu, msg, 200, node_from_builder (b));
    }
  if (n == 1 && strcmp (parts[0], "create-connect") == 0 && strcmp (method, "GET") == 0)
    {
      const char *offered = soup_message_headers_get_one (soup_server_message_get_request_headers (msg),
                                                          "Sec-WebSocket-Protocol");

      if (!is_websocket (msg))
        return tb_error (emu, msg, 400, "BAD_REQUEST", "bad request: create-connect is a WebSocket endpoint");
      pty = pty_create (emu, sb, msg, query ? g_hash_table_lookup (query, "id") : NULL,
                        query ? g_hash_table_lookup (query, "cwd") : NULL,
                        pty_envs_from_protocols (offered),
                        query_int (query, "cols", 80), query_int (query, "rows", 24), FALSE);
      if (pty != NULL)
        pty_ws_attach (msg, pty, NULL);
      return;
    }

  pty = n > 0 ? g_hash_table_lookup (sb->ptys, parts[0]) : NULL;
  if (n == 2 && strcmp (parts[1], "connect") == 0 && strcmp (method, "GET") == 0)
    {
      g_autofree char *refusal = NULL;
      g_autoptr(GError) error = NULL;

      if (!is_websocket (msg))
        return tb_error (emu, msg, 400, "BAD_REQUEST", "bad request: connect is a WebSocket endpoint");
      if (pty == NULL)
        refusal = g_strdup_printf ("Failed to connect to PTY session: PTY session %s not found", parts[0]);
      else if (!pty->active && pty->lazy && !pty_start (pty, &error))
        refusal = g_strdup_printf ("Failed to connect to PTY session: failed to start PTY session: %s",
                                   error->message);
      else if (!pty->active && !pty->lazy)
        refusal = g_strdup_printf ("Failed to connect to PTY session: PTY session '%s' has terminated "
                                   "and is no longer available", parts[0]);
      pty_ws_attach (msg, refusal == NULL ? pty : NULL, refusal);
      return;
    }
  if (pty == NULL)
    return tb_error (emu, msg, 404, "NOT_FOUND", "PTY session not found");
  if (n == 1 && strcmp (method, "GET") == 0)
    return reply_json (emu, msg, 200, pty_info (pty));
  if (n == 1 && strcmp (method, "DELETE") == 0)
    {
      g_autoptr(JsonBuilder) b = json_builder_new ();

      pty_ref (pty);
      g_hash_table_remove (sb->ptys, pty->id);
      if (pty->active)
        {
          g_cancellable_cancel (pty->cancel);
          pty_ended (pty, 137);
        }
      pty_unref (pty);
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "message");
      json_builder_add_string_value (b, "PTY session deleted");
      json_builder_end_object (b);
      return reply_json (emu, msg, 200, node_from_builder (b));
    }
  if (n == 2 && strcmp (parts[1], "resize") == 0 && strcmp (method, "POST") == 0)
    {
      g_autoptr(JsonObject) body = request_object (emu, msg, TRUE, FALSE);
      gint64 cols = 0, rows = 0;

      if (body == NULL)
        return;
      if (!_sandbox_json_get_int (body, "cols", &cols) || !_sandbox_json_get_int (body, "rows", &rows) ||
          cols < 1 || rows < 1)
        return tb_error (emu, msg, 400, "BAD_REQUEST", "cols and rows are required (1 to 1000)");
      if (cols > 1000)
        return tb_error (emu, msg, 400, "BAD_REQUEST", "cols must be less than 1000");
      if (rows > 1000)
        return tb_error (emu, msg, 400, "BAD_REQUEST", "rows must be less than 1000");
      if (!pty->active && !pty->lazy)
        {
          g_autofree char *m = g_strdup_printf ("PTY session '%s' has terminated and cannot be resized",
                                                pty->id);
          return tb_error (emu, msg, 410, "GONE", m);
        }
      if (!pty->active)
        return tb_error (emu, msg, 500, "INTERNAL_SERVER_ERROR", "cannot resize inactive PTY session");
      pty->cols = (guint) cols;
      pty->rows = (guint) rows;
      sandbox_command_resize_tty (pty->command, pty->rows, pty->cols);
      return reply_json (emu, msg, 200, pty_info (pty));
    }
  {
    g_autofree char *m = g_strdup_printf ("not found: %s /process/pty%s", method, rest);
    tb_error (emu, msg, 404, "NOT_FOUND", m);
  }
}

static void
reply_dir (DaytonaEmulator   *emu,
           SoupServerMessage *msg,
           const char        *key,
           const char        *value)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, key);
  json_builder_add_string_value (b, value);
  json_builder_end_object (b);
  reply_json (emu, msg, 200, node_from_builder (b));
}

static void
handle_toolbox (DaytonaEmulator   *emu,
                SoupServerMessage *msg,
                const char        *id,
                const char        *rest,
                GHashTable        *query)
{
  const char *method = soup_server_message_get_method (msg);
  EmuSandbox *sb = emu_find (emu, id);

  if (sb == NULL || sb->deleted)
    {
      g_autofree char *m = g_strdup_printf ("not found: sandbox %s not found", id);
      return tb_error (emu, msg, 404, "NOT_FOUND", m);
    }
  if (g_strcmp0 (sb->state, "started") != 0 || sb->local == NULL)
    {
      g_autofree char *m = g_strdup_printf ("bad request: failed to resolve container IP for sandbox %s "
                                            "(state %s). Is the Sandbox started?", sb->id, sb->state);
      return tb_error (emu, msg, 400, "BAD_REQUEST", m);
    }
  if (g_strcmp0 (soup_message_headers_get_one (soup_server_message_get_request_headers (msg),
                                               "X-Daytona-Skip-Last-Activity-Update"), "true") != 0)
    sb_touch (sb);

  if (strcmp (method, "GET") == 0)
    {
      if (strcmp (rest, "/version") == 0)
        return reply_dir (emu, msg, "version", EMU_DAEMON_VERSION);
      if (strcmp (rest, "/work-dir") == 0 || strcmp (rest, "/user-home-dir") == 0 ||
          strcmp (rest, "/project-dir") == 0)
        {
          g_autofree char *home = sb_home (sb);

          return reply_dir (emu, msg, "dir", home);
        }
    }
  if (strcmp (rest, "/process/execute") == 0 && strcmp (method, "POST") == 0)
    return tb_execute (emu, sb, msg);
  if (strcmp (rest, "/process/code-run") == 0 && strcmp (method, "POST") == 0)
    return tb_code_run (emu, sb, msg);
  if (g_str_has_prefix (rest, "/lsp/"))
    return tb_lsp (emu, sb, msg, rest + strlen ("/lsp"), query);
  if (g_str_has_prefix (rest, "/process/interpreter/"))
    return tb_interpreter (emu, sb, msg, rest + strlen ("/process/interpreter"));
  if (g_str_has_prefix (rest, "/process/pty"))
    return tb_pty (emu, sb, msg, rest + strlen ("/process/pty"), query);
  if (g_str_has_prefix (rest, "/process/session"))
    return tb_sessions (emu, sb, msg, rest + strlen ("/process/session"), query);
  if (strcmp (rest, "/files") == 0 || g_str_has_prefix (rest, "/files/"))
    return tb_files (emu, sb, msg, rest + strlen ("/files"), query);

  {
    g_autofree char *m = g_strdup_printf ("not found: %s %s is not served by the Daytona emulator "
                                          "(see docs/testing.md)", method, rest);
    tb_error (emu, msg, 404, "NOT_FOUND", m);
  }
}

/* ------------------------------------------------------------------ */
/* Dispatch                                                            */

static gboolean
check_auth (DaytonaEmulator   *emu,
            SoupServerMessage *msg,
            gboolean           toolbox)
{
  const char *header = soup_message_headers_get_one (soup_server_message_get_request_headers (msg),
                                                     "Authorization");
  gboolean ok;

  g_mutex_lock (&emu->lock);
  ok = header != NULL && g_str_has_prefix (header, "Bearer ") &&
       strcmp (header + strlen ("Bearer "), emu->api_key) == 0;
  g_mutex_unlock (&emu->lock);
  if (ok)
    return TRUE;
  if (toolbox)
    tb_error (emu, msg, 401, "UNAUTHORIZED", "unauthorized: invalid or missing API key");
  else
    api_error (emu, msg, 401, header ? "Invalid API key" : "Unauthorized");
  return FALSE;
}

static void
reply_stats (DaytonaEmulator   *emu,
             SoupServerMessage *msg)
{
  g_autoptr(JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "live");
  json_builder_add_int_value (b, daytona_emulator_count_live (emu));
  json_builder_set_member_name (b, "total");
  json_builder_add_int_value (b, emu->order->len);
  json_builder_set_member_name (b, "pending");
  json_builder_add_int_value (b, emu->pending);
  json_builder_set_member_name (b, "upload_bytes");
  json_builder_add_int_value (b, (gint64) emu->upload_bytes);
  json_builder_end_object (b);
  reply_json (emu, msg, 200, node_from_builder (b));
}

static void
server_dispatch (SoupServer        *server,
                 SoupServerMessage *msg,
                 const char        *path,
                 GHashTable        *query,
                 gpointer           user_data)
{
  DaytonaEmulator *emu = user_data;

  if (strcmp (path, "/_emulator/stats") == 0)
    return reply_stats (emu, msg);

  if (g_str_has_prefix (path, "/_preview/"))
    return handle_preview (emu, msg, path + strlen ("/_preview/"));
  if (g_str_has_prefix (path, "/_signed/"))
    return handle_signed (emu, msg, path + strlen ("/_signed/"));

  if (g_str_has_prefix (path, "/api/socket.io"))
    {
      /* No server push: the SDK falls back to polling. */
      return api_error (emu, msg, 404, "Cannot GET /api/socket.io/ (the Daytona emulator has no "
                                       "event gateway; clients poll)");
    }

  if (g_str_has_prefix (path, "/toolbox/") || g_str_has_prefix (path, "/api/toolbox/"))
    {
      gboolean legacy = g_str_has_prefix (path, "/api/");
      const char *start = path + strlen (legacy ? "/api/toolbox/" : "/toolbox/");
      const char *slash = strchr (start, '/');
      g_autofree char *id = g_strndup (start, slash ? (gsize) (slash - start) : strlen (start));
      const char *rest = slash ? slash : "";

      if (legacy)
        {
          if (!g_str_has_prefix (rest, "/toolbox"))
            return api_error (emu, msg, 404, "Cannot find the toolbox route");
          rest += strlen ("/toolbox");
        }
      if (!check_auth (emu, msg, TRUE))
        return;
      return handle_toolbox (emu, msg, id, rest, query);
    }

  if (strcmp (path, "/api") == 0 || g_str_has_prefix (path, "/api/"))
    {
      if (!check_auth (emu, msg, FALSE))
        return;
      return handle_api (emu, msg, path, query);
    }

  {
    g_autofree char *m = g_strdup_printf ("Cannot %s %s", soup_server_message_get_method (msg), path);
    api_error (emu, msg, 404, m);
  }
}

/* The hooks around the real dispatch (fault injection). */
static void
server_callback (SoupServer        *server,
                 SoupServerMessage *msg,
                 const char        *path,
                 GHashTable        *query,
                 gpointer           user_data)
{
  DaytonaEmulator *emu = user_data;
  DaytonaEmulatorHook hook, reply_hook;
  gpointer hook_data, reply_hook_data;

  _emu_keep_alive_on_no_content (msg);
  g_mutex_lock (&emu->lock);
  hook = emu->hook;
  hook_data = emu->hook_data;
  reply_hook = emu->reply_hook;
  reply_hook_data = emu->reply_hook_data;
  g_mutex_unlock (&emu->lock);
  if (hook != NULL && hook (emu, msg, path, hook_data))
    return;
  server_dispatch (server, msg, path, query, user_data);
  if (reply_hook != NULL && soup_server_message_get_status (msg) != 0)
    reply_hook (emu, msg, path, reply_hook_data);
}

/* ------------------------------------------------------------------ */
/* The thread                                                          */

static gboolean
emulator_start (gpointer   data,
                GError   **error)
{
  DaytonaEmulator *emu = data;
  GSList *uris;

  emu->local = sandbox_backend_new_for_name ("local", error);
  if (emu->local == NULL)
    return FALSE;
  emu->images = _emu_images_new ("DAYTONA_EMULATOR_IMAGES", default_images, error);
  if (emu->images == NULL)
    return FALSE;
  emu->server = soup_server_new ("server-header", "daytona-emulator ", NULL);
  g_object_set_data_full (G_OBJECT (emu->server), "dead-sessions",
                          g_ptr_array_new_with_free_func ((GDestroyNotify) emu_session_free),
                          (GDestroyNotify) g_ptr_array_unref);
  soup_server_add_handler (emu->server, NULL, server_callback, emu, NULL);
  if (!soup_server_listen_local (emu->server, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, error))
    return FALSE;
  uris = soup_server_get_uris (emu->server);
  emu->base = g_strdup_printf ("http://127.0.0.1:%d", g_uri_get_port (uris->data));
  emu->url = g_strdup_printf ("%s/api", emu->base);
  g_slist_free_full (uris, (GDestroyNotify) g_uri_unref);
  {
    g_autoptr(GSource) tick = g_timeout_source_new (100);

    g_source_set_callback (tick, emu_autostop_tick, emu, NULL);
    g_source_set_static_name (tick, "[daytona-emulator] auto-stop");
    g_source_attach (tick, emu->context);
  }
  return TRUE;
}

/* Shutting down: nothing may be left running. */
static void
emulator_stop (gpointer data)
{
  DaytonaEmulator *emu = data;

  if (emu->server != NULL)
    soup_server_disconnect (emu->server);
  for (guint i = 0; i < emu->order->len; i++)
    {
      EmuSandbox *sb = g_ptr_array_index (emu->order, i);

      sb->deleted = TRUE;
      sb_cancel_commands (sb);
    }
  while (emu->pending > 0)
    g_main_context_iteration (emu->context, TRUE);
  for (guint i = 0; i < emu->order->len; i++)
    {
      EmuSandbox *sb = g_ptr_array_index (emu->order, i);

      if (sb->local != NULL)
        sandbox_instance_destroy (sb->local, NULL, NULL);
    }
  /* Let cancelled commands finish. */
  while (g_main_context_iteration (emu->context, FALSE))
    ;
  g_clear_object (&emu->proxy);
  g_clear_object (&emu->server);
  g_clear_pointer (&emu->images, _emu_images_free);
}

/* ------------------------------------------------------------------ */
/* Public API                                                          */

DaytonaEmulator *
daytona_emulator_new (GError **error)
{
  DaytonaEmulator *emu = g_new0 (DaytonaEmulator, 1);
  const char *delay = g_getenv ("DAYTONA_EMULATOR_STATE_DELAY_MS");
  const char *key = g_getenv ("DAYTONA_EMULATOR_API_KEY");
  const char *minute = g_getenv ("DAYTONA_EMULATOR_MINUTE_MS");

  g_mutex_init (&emu->lock);
  emu->context = g_main_context_new ();
  emu->loop = g_main_loop_new (emu->context, FALSE);
  emu->sandboxes = g_hash_table_new (g_str_hash, g_str_equal);
  emu->order = g_ptr_array_new_with_free_func ((GDestroyNotify) emu_sandbox_free);
  emu->volumes = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, (GDestroyNotify) emu_volume_free);
  emu->signed_urls = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) emu_signed_free);
  emu->api_key = g_strdup (key && *key ? key : DAYTONA_EMULATOR_DEFAULT_API_KEY);
  emu->state_delay_ms = delay ? (guint) g_ascii_strtoull (delay, NULL, 10) : 100;
  emu->minute_ms = minute ? (guint) CLAMP (g_ascii_strtoull (minute, NULL, 10), 1, 60000) : 60000;
  emu->tmpdir = _emu_make_state_dir ("daytona-emulator-XXXXXX", error);
  if (emu->tmpdir == NULL)
    {
      daytona_emulator_free (emu);
      return NULL;
    }

  emu->thread = _emu_thread_new ("daytona-emulator", emu->context, emu->loop, emulator_start,
                                 emulator_stop, emu, error);
  if (emu->thread == NULL)
    {
      daytona_emulator_free (emu);
      return NULL;
    }
  return emu;
}

void
daytona_emulator_free (DaytonaEmulator *self)
{
  if (self == NULL)
    return;
  if (self->thread != NULL)
    _emu_thread_quit (self->thread, self->context, self->loop);
  if (self->tmpdir != NULL)
    {
      g_autofree char *cmd = g_strdup_printf ("rm -rf '%s'", self->tmpdir);
      g_spawn_command_line_sync (cmd, NULL, NULL, NULL, NULL);
    }
  g_clear_object (&self->local);
  g_hash_table_unref (self->sandboxes);
  g_ptr_array_unref (self->order);
  g_hash_table_unref (self->volumes);
  g_hash_table_unref (self->signed_urls);
  g_main_loop_unref (self->loop);
  g_main_context_unref (self->context);
  g_free (self->base);
  g_free (self->url);
  g_free (self->tmpdir);
  g_free (self->api_key);
  g_free (self->fail_reason);
  g_free (self->break_method);
  g_free (self->break_prefix);
  g_mutex_clear (&self->lock);
  g_free (self);
}

const char *
daytona_emulator_get_url (DaytonaEmulator *self)
{
  return self->url;
}

const char *
daytona_emulator_get_api_key (DaytonaEmulator *self)
{
  return self->api_key;
}

SandboxBackend *
daytona_emulator_new_backend (DaytonaEmulator *self)
{
  g_autoptr(GError) error = NULL;
  SandboxBackend *backend = sandbox_backend_new_for_name ("daytona", &error);

  g_assert_no_error (error);
  g_object_set (backend, "api-key", daytona_emulator_get_api_key (self),
                "api-url", daytona_emulator_get_url (self), NULL);
  return backend;
}

void
daytona_emulator_set_api_key (DaytonaEmulator *self,
                              const char      *api_key)
{
  g_mutex_lock (&self->lock);
  g_free (self->api_key);
  self->api_key = g_strdup (api_key);
  g_mutex_unlock (&self->lock);
}

guint
daytona_emulator_count_live (DaytonaEmulator *self)
{
  guint live;

  g_mutex_lock (&self->lock);
  live = self->live;
  g_mutex_unlock (&self->lock);
  return live;
}

void
daytona_emulator_set_state_delay (DaytonaEmulator *self,
                                  guint            delay_ms)
{
  g_mutex_lock (&self->lock);
  self->state_delay_ms = delay_ms;
  g_mutex_unlock (&self->lock);
}

void
daytona_emulator_set_minute_ms (DaytonaEmulator *self,
                                guint            minute_ms)
{
  g_mutex_lock (&self->lock);
  self->minute_ms = MAX (minute_ms, 1);
  g_mutex_unlock (&self->lock);
}

void
daytona_emulator_set_never_start (DaytonaEmulator *self,
                                  gboolean         never_start)
{
  g_mutex_lock (&self->lock);
  self->never_start = never_start;
  g_mutex_unlock (&self->lock);
}

void
daytona_emulator_set_fail_start (DaytonaEmulator *self,
                                 const char      *error_reason)
{
  g_mutex_lock (&self->lock);
  g_free (self->fail_reason);
  self->fail_reason = g_strdup (error_reason);
  g_mutex_unlock (&self->lock);
}

void
daytona_emulator_break_json_once (DaytonaEmulator *self,
                                  const char      *method,
                                  const char      *path_prefix)
{
  g_mutex_lock (&self->lock);
  g_free (self->break_method);
  g_free (self->break_prefix);
  self->break_method = g_strdup (method);
  self->break_prefix = g_strdup (path_prefix);
  g_mutex_unlock (&self->lock);
}

void
daytona_emulator_set_hook (DaytonaEmulator     *self,
                           DaytonaEmulatorHook  hook,
                           gpointer             user_data)
{
  g_mutex_lock (&self->lock);
  self->hook = hook;
  self->hook_data = user_data;
  g_mutex_unlock (&self->lock);
}

void
daytona_emulator_set_reply_hook (DaytonaEmulator     *self,
                                 DaytonaEmulatorHook  hook,
                                 gpointer             user_data)
{
  g_mutex_lock (&self->lock);
  self->reply_hook = hook;
  self->reply_hook_data = user_data;
  g_mutex_unlock (&self->lock);
}
