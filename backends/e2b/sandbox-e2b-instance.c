/* libsandbox - one E2B sandbox: its envd
 *
 * Commands: process.Process/Start, a Connect server stream (JSON codec,
 * 5-byte envelopes) read incrementally as bytes arrive; output goes to the
 * command's streams as it comes, keepalives are ignored, the command's
 * timeout is sent as Connect-Timeout-Ms (envd kills the process at the
 * deadline). Cancelling kills the process (SendSignal SIGKILL).
 * Files: GET/POST /files, streamed; directories are walked file by file
 * (filesystem.Filesystem/ListDir, MakeDir) in a worker thread.
 * Facts: /work/shared/specs/e2b-api.md, section 2.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <signal.h>
#include <string.h>

#include "sandbox-e2b-private.h"

/* A stream that says nothing for this long after its deadline is dead. */
#define DEADLINE_GRACE_MS 10000
#define READ_CHUNK        16384

struct _SandboxE2bInstance
{
  SandboxInstance    parent_instance;

  char              *domain;
  char              *access_token;   /* NULL until known (listed sandboxes) */
  char              *envd_url;
  SandboxRestClient *envd;           /* unary Connect calls */
  char              *workdir;        /* default cwd of commands, or NULL */
  gboolean           as_root;        /* envd calls as root (run-as-root), not the template's user */
};

G_DEFINE_FINAL_TYPE (SandboxE2bInstance, sandbox_e2b_instance, SANDBOX_TYPE_INSTANCE)

static SandboxE2bBackend *
get_backend (SandboxE2bInstance *self)
{
  return SANDBOX_E2B_BACKEND (sandbox_instance_get_backend (SANDBOX_INSTANCE (self)));
}

static const char *
get_id (SandboxE2bInstance *self)
{
  return sandbox_instance_get_id (SANDBOX_INSTANCE (self));
}

/* METHOD sandboxes/ID on the E2B API, or sandboxes/ID/WHAT when WHAT is
 * not NULL, for @task: @done gets the answer and a reference on @task. */
static void
call_api (SandboxE2bInstance  *self,
          const char          *method,
          const char          *what,
          JsonNode            *body,
          SandboxRestFlags     flags,
          GCancellable        *cancellable,
          GAsyncReadyCallback  done,
          GTask               *task)
{
  g_autofree char *path = what ? g_strdup_printf ("sandboxes/%s/%s", get_id (self), what)
                               : g_strdup_printf ("sandboxes/%s", get_id (self));

  _sandbox_rest_client_call_async (_sandbox_e2b_backend_get_api (get_backend (self)), method, path, body,
                                   flags, cancellable, done, g_object_ref (task));
}

#define E2B_ROOT_AUTH "Basic cm9vdDo="   /* base64 ("root:") */

static void
set_envd (SandboxE2bInstance *self)
{
  g_clear_object (&self->envd);
  g_free (self->envd_url);
  self->envd_url = _sandbox_e2b_backend_envd_url (get_backend (self), get_id (self), self->domain);
  self->envd = _sandbox_rest_client_new ("E2B envd", self->envd_url);
  _sandbox_rest_client_set_auth_hint (self->envd, _("The sandbox's access token was refused; "
                                                    "get the sandbox again with its id."));
  _sandbox_rest_client_set_header (self->envd, "E2b-Sandbox-Id", get_id (self));
  _sandbox_rest_client_set_header (self->envd, "E2b-Sandbox-Port", G_STRINGIFY (E2B_ENVD_PORT));
  _sandbox_rest_client_set_header (self->envd, "X-Access-Token", self->access_token);
  _sandbox_rest_client_set_header (self->envd, "Connect-Protocol-Version", "1");
  /* envd runs a call as the user of its HTTP Basic credentials. */
  if (self->as_root)
    _sandbox_rest_client_set_header (self->envd, "Authorization", E2B_ROOT_AUTH);
}

SandboxInstance *
_sandbox_e2b_instance_new (SandboxE2bBackend *backend,
                           JsonObject        *object)
{
  const char *id = _sandbox_json_get_string (object, "sandboxID");
  SandboxE2bInstance *self;
  g_autoptr(GHashTable) labels = NULL;

  /* The id goes into messages, the envd URL and the caller's scripts: one
   * that is not an id (escape sequences, '/') is refused (a listing leaves
   * it out). */
  if (!_sandbox_cloud_id_is_valid (id))
    return NULL;
  self = g_object_new (SANDBOX_TYPE_E2B_INSTANCE,
                       "id", id,
                       "backend", backend,
                       "state", g_strcmp0 (_sandbox_json_get_string (object, "state"), "paused") == 0
                                ? SANDBOX_INSTANCE_STATE_STOPPED : SANDBOX_INSTANCE_STATE_RUNNING,
                       NULL);
  self->domain = g_strdup (_sandbox_json_get_string (object, "domain"));
  self->access_token = g_strdup (_sandbox_json_get_string (object, "envdAccessToken"));
  labels = _sandbox_json_get_string_map (object, "metadata", SANDBOX_CLOUD_CREATE_TOKEN);
  self->as_root = g_strcmp0 (g_hash_table_lookup (labels, SANDBOX_E2B_USER_KEY), "root") == 0;
  g_hash_table_remove (labels, SANDBOX_E2B_USER_KEY);
  sandbox_instance_set_labels (SANDBOX_INSTANCE (self), labels);
  set_envd (self);
  return SANDBOX_INSTANCE (self);
}

/* Created with run-as-root (the create answer has no metadata to say it). */
void
_sandbox_e2b_instance_set_root (SandboxInstance *instance)
{
  SandboxE2bInstance *self = SANDBOX_E2B_INSTANCE (instance);

  self->as_root = TRUE;
  set_envd (self);
}

void
_sandbox_e2b_instance_set_workdir (SandboxInstance *instance,
                                   const char      *workdir)
{
  SandboxE2bInstance *self = SANDBOX_E2B_INSTANCE (instance);

  g_free (self->workdir);
  self->workdir = g_strdup (workdir);
}

/* An envd answer that is not a success: 502 from the edge proxy means the
 * sandbox is gone. */
static GError *
envd_error (SandboxE2bInstance *self,
            const char         *method,
            const char         *endpoint,
            guint               status,
            GBytes             *body)
{
  gsize len = 0;
  const char *data = body ? g_bytes_get_data (body, &len) : NULL;

  if (status == 502 && data != NULL && g_strstr_len (data, len, "sandbox was not found") != NULL)
    {
      sandbox_instance_set_state (SANDBOX_INSTANCE (self), SANDBOX_INSTANCE_STATE_DESTROYED);
      return g_error_new (SANDBOX_ERROR, SANDBOX_ERROR_NOT_FOUND,
                          _("The E2B sandbox %s no longer exists (it was killed or reached its "
                            "timeout); create a new one, or raise the spec's timeout."), get_id (self));
    }
  if (status == 502 && data != NULL && g_strstr_len (data, len, "paused") != NULL)
    {
      /* Paused, perhaps by another process. */
      sandbox_instance_set_state (SANDBOX_INSTANCE (self), SANDBOX_INSTANCE_STATE_STOPPED);
      return g_error_new (SANDBOX_ERROR, SANDBOX_ERROR_FAILED,
                          _("The E2B sandbox %s is paused: resume it first "
                            "(sandboxctl resume %s, or sandbox_instance_resume())."),
                          get_id (self), get_id (self));
    }
  return _sandbox_rest_error_new ("E2B envd", method, endpoint, status, body,
                                  _("The sandbox's access token was refused; get the sandbox again "
                                    "with its id."));
}

/* A paused sandbox's envd does not answer: say so instead of waiting. */
static gboolean
refuse_if_paused (SandboxE2bInstance *self,
                  GTask              *task)
{
  if (sandbox_instance_get_state (SANDBOX_INSTANCE (self)) != SANDBOX_INSTANCE_STATE_STOPPED)
    return FALSE;
  g_task_return_new_error (task, SANDBOX_ERROR, SANDBOX_ERROR_FAILED,
                           _("The E2B sandbox %s is paused: resume it first "
                             "(sandboxctl resume %s, or sandbox_instance_resume())."),
                           get_id (self), get_id (self));
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* The access token of a listed sandbox: GET /sandboxes/{id} once       */

typedef void (*ReadyFunc) (SandboxE2bInstance *self, GTask *task);

typedef struct
{
  GTask     *task;    /* owned */
  ReadyFunc  ready;
} TokenWait;

static void
token_got (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  TokenWait *wait = user_data;
  GTask *task = wait->task;   /* owned */
  SandboxE2bInstance *self = g_task_get_source_object (task);
  ReadyFunc ready = wait->ready;
  g_autoptr(JsonNode) node = NULL;
  GError *error = NULL;

  g_free (wait);
  node = _sandbox_rest_client_call_finish (SANDBOX_REST_CLIENT (source), result, NULL, &error);
  if (node == NULL || !JSON_NODE_HOLDS_OBJECT (node) ||
      _sandbox_json_get_string (json_node_get_object (node), "envdAccessToken") == NULL)
    {
      if (error == NULL)
        error = g_error_new (SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL,
                             _("E2B did not give the access token of sandbox %s."), get_id (self));
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }
  g_free (self->access_token);
  self->access_token = g_strdup (_sandbox_json_get_string (json_node_get_object (node), "envdAccessToken"));
  if (_sandbox_json_get_string (json_node_get_object (node), "domain") != NULL)
    {
      g_free (self->domain);
      self->domain = g_strdup (_sandbox_json_get_string (json_node_get_object (node), "domain"));
    }
  set_envd (self);
  ready (self, task);
  g_object_unref (task);
}

/* Calls @ready once the envd access token is known. */
static void
with_envd (SandboxE2bInstance *self,
           GTask              *task,
           ReadyFunc           ready)
{
  g_autofree char *path = NULL;
  TokenWait *wait;

  if (self->access_token != NULL)
    {
      ready (self, task);
      return;
    }
  path = g_strdup_printf ("sandboxes/%s", get_id (self));
  wait = g_new0 (TokenWait, 1);
  wait->task = g_object_ref (task);
  wait->ready = ready;
  _sandbox_rest_client_call_async (_sandbox_e2b_backend_get_api (get_backend (self)), "GET", path, NULL,
                                   SANDBOX_REST_IDEMPOTENT, g_task_get_cancellable (task),
                                   token_got, wait);
}

static JsonNode *
pid_selector (guint pid)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "pid");
  json_builder_add_int_value (builder, pid);
  json_builder_end_object (builder);
  return json_builder_get_root (builder);
}

/* SendSignal SIGKILL; @done gets the answer (any error is the caller's to
 * ignore: the process may have ended meanwhile). */
static void
kill_process (SandboxE2bInstance  *self,
              guint                pid,
              GAsyncReadyCallback  done,
              gpointer             user_data)
{
  g_autoptr(JsonObject) object = json_object_new ();
  g_autoptr(JsonNode) body = json_node_new (JSON_NODE_OBJECT);

  json_object_set_member (object, "process", pid_selector (pid));
  json_object_set_string_member (object, "signal", "SIGNAL_SIGKILL");
  json_node_set_object (body, object);
  _sandbox_rest_client_call_async (self->envd, "POST", "process.Process/SendSignal", body,
                                   SANDBOX_REST_NONE, NULL, done, user_data);
}

/* ------------------------------------------------------------------ */
/* exec                                                                */

typedef struct
{
  SandboxE2bInstance   *self;
  SandboxCommand       *command;
  GCancellable         *op;            /* cancels the HTTP exchange */
  GCancellable         *user;
  gulong                user_id;
  SoupMessage          *msg;
  GInputStream         *body;
  SandboxConnectReader *reader;
  SandboxOutput        *output;
  GSource              *guard;
  gint64                start;
  guint                 pid;
  gboolean              got_start;
  gboolean              got_end;
  gboolean              got_end_stream;
  gboolean              cancelled;
  gboolean              timed_out;
  gboolean              closing;
  gboolean              flushed;
  gboolean              kill_sent;     /* SendSignal answered (or failed) */
  gboolean              stdin_closing;  /* CloseStdin sent */
  int                   exit_status;
  int                   term_signal;
  guint                 attempt;       /* of Start, retried on 429 only */
  gboolean              gone_checked;  /* asked E2B whether the sandbox still exists */
  GError               *error;
  GMainContext         *context;       /* the exec's: where its request runs */
  struct _E2bTty       *tty;           /* a command on a terminal (PTY), or NULL */
} ExecData;

/* ------------------------------------------------------------------ */
/* A command on a terminal: envd's PTY. The command's resize-tty,       */
/* send-input and send-signal signals (emitted in any thread) become    */
/* Update, SendInput {"pty"} and SendSignal calls, made on the exec's   */
/* context once the process has its pid.                                */

typedef struct _E2bTty
{
  gatomicrefcount     ref;
  GMutex              lock;
  SandboxE2bInstance *self;
  GMainContext       *context;
  SandboxCommand     *command;
  guint               pid;       /* 0 until started, and again once ended */
  gulong              handlers[3];
  GQueue              calls;     /* E2bTtyCall, sent one at a time, in order */
  gboolean            busy;      /* a call is on its way */
} E2bTty;

typedef struct
{
  E2bTty     *tty;
  const char *method;
  JsonNode   *body;
} E2bTtyCall;

static E2bTty *
e2b_tty_ref (E2bTty *tty)
{
  g_atomic_ref_count_inc (&tty->ref);
  return tty;
}

static void
e2b_tty_unref (gpointer data, GClosure *closure)
{
  E2bTty *tty = data;

  if (!g_atomic_ref_count_dec (&tty->ref))
    return;
  g_mutex_clear (&tty->lock);
  g_object_unref (tty->self);
  g_main_context_unref (tty->context);
  g_free (tty);
}

static void
e2b_tty_call_free (gpointer data)
{
  E2bTtyCall *call = data;

  e2b_tty_unref (call->tty, NULL);
  json_node_unref (call->body);
  g_free (call);
}

static gboolean e2b_tty_next (gpointer user_data);

static void
e2b_tty_call_done (GObject      *source,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  E2bTtyCall *call = user_data;
  E2bTty *tty = e2b_tty_ref (call->tty);
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) node = _sandbox_rest_client_call_finish (SANDBOX_REST_CLIENT (source), result,
                                                               NULL, &error);

  if (error != NULL)
    g_debug ("E2B %s: %s", call->method, error->message);
  e2b_tty_call_free (call);
  e2b_tty_next (tty);
  e2b_tty_unref (tty, NULL);
}

/* On the exec's context: sends the next queued call. One at a time, so
 * that keys arrive in the order they were typed (calls made at once could
 * overtake each other on different connections). */
static gboolean
e2b_tty_next (gpointer user_data)
{
  E2bTty *tty = user_data;
  E2bTtyCall *call;
  g_autofree char *path = NULL;

  g_mutex_lock (&tty->lock);
  call = g_queue_pop_head (&tty->calls);
  if (call == NULL)
    tty->busy = FALSE;
  g_mutex_unlock (&tty->lock);
  if (call == NULL)
    return G_SOURCE_REMOVE;
  path = g_strconcat ("process.Process/", call->method, NULL);
  g_main_context_push_thread_default (tty->context);
  /* A resize (an absolute size) and a kill can be sent again after a
   * dropped connection or a 502-504; a lost resize would leave the
   * command's window wrong without a sign. Keys cannot: they would be
   * typed twice. */
  _sandbox_rest_client_call_async (tty->self->envd, "POST", path, call->body,
                                   strcmp (call->method, "SendInput") == 0 ? SANDBOX_REST_NONE
                                                                           : SANDBOX_REST_IDEMPOTENT,
                                   NULL, e2b_tty_call_done, call);
  g_main_context_pop_thread_default (tty->context);
  return G_SOURCE_REMOVE;
}

/* Queues METHOD for the exec's context; FALSE when the process is not
 * running. Takes MEMBERS (the request without "process"). */
static gboolean
e2b_tty_call (E2bTty     *tty,
              const char *method,
              JsonObject *members)
{
  g_autoptr(JsonObject) object = members;
  gboolean ok;

  g_mutex_lock (&tty->lock);
  ok = tty->pid != 0;
  if (ok)
    {
      E2bTtyCall *call = g_new0 (E2bTtyCall, 1);

      json_object_set_member (object, "process", pid_selector (tty->pid));
      call->tty = e2b_tty_ref (tty);
      call->method = method;
      call->body = json_node_new (JSON_NODE_OBJECT);
      json_node_set_object (call->body, object);
      g_queue_push_tail (&tty->calls, call);
      if (!tty->busy)
        {
          g_autoptr(GSource) source = g_idle_source_new ();

          tty->busy = TRUE;
          g_source_set_callback (source, e2b_tty_next, e2b_tty_ref (tty),
                                 (GDestroyNotify) (void (*) (void)) e2b_tty_unref);
          g_source_set_static_name (source, "[libsandbox] e2b pty");
          g_source_attach (source, tty->context);
        }
    }
  g_mutex_unlock (&tty->lock);
  return ok;
}

static JsonObject *
pty_size_request (guint rows,
                  guint cols)
{
  JsonObject *object = json_object_new ();
  JsonObject *pty = json_object_new ();
  JsonObject *size = json_object_new ();

  json_object_set_int_member (size, "rows", rows);
  json_object_set_int_member (size, "cols", cols);
  json_object_set_object_member (pty, "size", size);
  json_object_set_object_member (object, "pty", pty);
  return object;
}

static void
e2b_tty_resize (SandboxCommand *command,
                guint           rows,
                guint           cols,
                E2bTty         *tty)
{
  e2b_tty_call (tty, "Update", pty_size_request (rows, cols));
}

static JsonObject *
pty_input_request (const void *bytes,
                   gsize       len)
{
  JsonObject *object = json_object_new ();
  JsonObject *input = json_object_new ();
  g_autofree char *b64 = g_base64_encode (bytes, len);

  json_object_set_string_member (input, "pty", b64);
  json_object_set_object_member (object, "input", input);
  return object;
}

static gboolean
e2b_tty_input (SandboxCommand *command,
               GBytes         *bytes,
               E2bTty         *tty)
{
  gsize len = 0;
  const void *p = g_bytes_get_data (bytes, &len);

  return e2b_tty_call (tty, "SendInput", pty_input_request (p, len));
}

/* envd signals only SIGKILL and SIGTERM; the keys of a terminal's line
 * discipline stand for the signals it makes from them. */
static gboolean
e2b_tty_signal (SandboxCommand *command,
                int             signum,
                E2bTty         *tty)
{
  const char *key = _sandbox_cloud_tty_signal_key (signum);
  JsonObject *object;

  if (key != NULL)
    return e2b_tty_call (tty, "SendInput", pty_input_request (key, 1));
  if (signum != SIGKILL && signum != SIGTERM)
    return FALSE;
  object = json_object_new ();
  json_object_set_string_member (object, "signal", signum == SIGKILL ? "SIGNAL_SIGKILL"
                                                                     : "SIGNAL_SIGTERM");
  return e2b_tty_call (tty, "SendSignal", object);
}

static E2bTty *
e2b_tty_new (SandboxE2bInstance *self,
             SandboxCommand     *command,
             GMainContext       *context)
{
  E2bTty *tty = g_new0 (E2bTty, 1);

  g_atomic_ref_count_init (&tty->ref);
  g_mutex_init (&tty->lock);
  tty->self = g_object_ref (self);
  tty->context = g_main_context_ref (context);
  tty->command = command;
  tty->handlers[0] = g_signal_connect_data (command, "resize-tty", G_CALLBACK (e2b_tty_resize),
                                            e2b_tty_ref (tty), e2b_tty_unref, 0);
  tty->handlers[1] = g_signal_connect_data (command, "send-input", G_CALLBACK (e2b_tty_input),
                                            e2b_tty_ref (tty), e2b_tty_unref, 0);
  tty->handlers[2] = g_signal_connect_data (command, "send-signal", G_CALLBACK (e2b_tty_signal),
                                            e2b_tty_ref (tty), e2b_tty_unref, 0);
  return tty;
}

static void
e2b_tty_set_pid (E2bTty *tty,
                 guint   pid)
{
  g_mutex_lock (&tty->lock);
  tty->pid = pid;
  g_mutex_unlock (&tty->lock);
}

static void
e2b_tty_close (E2bTty *tty)
{
  e2b_tty_set_pid (tty, 0);
  for (guint i = 0; i < G_N_ELEMENTS (tty->handlers); i++)
    g_signal_handler_disconnect (tty->command, tty->handlers[i]);
  e2b_tty_unref (tty, NULL);
}

static void
exec_data_free (ExecData *data)
{
  if (data->user != NULL)
    g_cancellable_disconnect (data->user, data->user_id);
  if (data->guard != NULL)
    {
      g_source_destroy (data->guard);
      g_source_unref (data->guard);
    }
  g_clear_object (&data->user);
  g_clear_pointer (&data->tty, e2b_tty_close);
  g_clear_pointer (&data->context, g_main_context_unref);
  g_clear_object (&data->op);
  g_clear_object (&data->command);
  g_clear_object (&data->msg);
  g_clear_object (&data->body);
  g_clear_pointer (&data->reader, _sandbox_connect_reader_free);
  g_clear_object (&data->output);
  g_clear_error (&data->error);
  g_clear_object (&data->self);
  g_free (data);
}

static void
weak_ref_free (gpointer ref)
{
  g_weak_ref_clear (ref);
  g_free (ref);
}

/* On the exec's own context (see _sandbox_cancellable_connect_in): the
 * request itself (libsoup, not thread-safe) is cancelled there, never from
 * the thread that cancelled the caller's cancellable. */
static gboolean
exec_user_cancelled (gpointer user_data)
{
  g_autoptr(GTask) task = g_weak_ref_get (user_data);
  ExecData *data;

  if (task == NULL)
    return G_SOURCE_REMOVE;
  data = g_task_get_task_data (task);
  data->cancelled = TRUE;
  g_cancellable_cancel (data->op);
  return G_SOURCE_REMOVE;
}

static gboolean
exec_guard_hit (gpointer user_data)
{
  ExecData *data = user_data;

  /* envd should have ended the stream at the deadline; it did not. */
  g_clear_pointer (&data->guard, g_source_unref);
  data->timed_out = TRUE;
  g_cancellable_cancel (data->op);
  return G_SOURCE_REMOVE;
}

static void exec_complete (GTask *task);
static void exec_fail     (GTask *task, GError *error);

/* Everything the command wrote has been written (or could not be). */
static void
exec_output_flushed (GObject      *source,
                     GAsyncResult *result,
                     gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  ExecData *data = g_task_get_task_data (task);
  GError *error = NULL;

  if (_sandbox_output_flush_finish (data->output, result, &error))
    {
      exec_complete (task);
      return;
    }
  /* The caller gave up waiting for a slow reader. */
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    data->cancelled = TRUE;
  exec_fail (task, error);
}

static void
exec_closed (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;

  g_input_stream_close_finish (G_INPUT_STREAM (source), result, NULL);
  exec_complete (task);
}


static void
gone_checked (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  ExecData *data = g_task_get_task_data (task);

  data->error = _sandbox_cloud_check_gone_finish (result);
  exec_complete (task);
}

/* The command's stream broke after the command started: when E2B says the
 * sandbox no longer exists, that is what the caller is told. */
static gboolean
check_gone (GTask *task)
{
  ExecData *data = g_task_get_task_data (task);

  if (data->gone_checked || data->error == NULL || !data->got_start || data->cancelled ||
      data->timed_out || g_error_matches (data->error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_FOUND))
    return FALSE;
  data->gone_checked = TRUE;
  _sandbox_cloud_check_gone_async (_sandbox_e2b_backend_get_api (get_backend (data->self)), &_sandbox_e2b_api,
                                   SANDBOX_INSTANCE (data->self), g_steal_pointer (&data->error),
                                   gone_checked, g_object_ref (task));
  return TRUE;
}

static void
exec_killed (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  ExecData *data = g_task_get_task_data (task);
  g_autoptr(JsonNode) node = _sandbox_rest_client_call_finish (SANDBOX_REST_CLIENT (source), result, NULL, NULL);

  data->kill_sent = TRUE;
  exec_complete (task);
}

static void
exec_complete (GTask *task)
{
  ExecData *data = g_task_get_task_data (task);
  g_autoptr(SandboxExecResult) result = NULL;

  /* Close the body before answering, on this main context: only then
   * does libsoup let go of the connection (a synchronous caller's context
   * is gone afterwards). */
  if (data->body != NULL && !data->closing)
    {
      data->closing = TRUE;
      g_input_stream_close_async (data->body, G_PRIORITY_DEFAULT, NULL, exec_closed, g_object_ref (task));
      return;
    }

  /* The kill is waited for, as the body's close: a synchronous caller's
   * context is not iterated once the call returns, and a request left in
   * flight there was never sent (a cancelled command ran on). */
  if ((data->cancelled || data->timed_out) && data->pid != 0 && !data->got_end && !data->flushed &&
      !data->kill_sent)
    {
      kill_process (data->self, data->pid, exec_killed, g_object_ref (task));
      return;
    }

  /* Wait for the output to be written, without blocking (the caller may
   * read its stream slowly); a cancellation stops waiting. */
  if (!data->flushed)
    {
      data->flushed = TRUE;
      if (data->cancelled || (data->error != NULL && !data->timed_out))
        _sandbox_output_cancel (data->output);
      _sandbox_output_flush_async (data->output, data->user, exec_output_flushed, g_object_ref (task));
      return;
    }

  if (data->cancelled)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                               _("The command was cancelled and killed"));
      return;
    }
  if (data->error == NULL && !data->timed_out && !data->got_end)
    data->error = g_error_new (SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL,
                               _("The command's stream from E2B sandbox %s ended without an end "
                                 "event, so how the command ended is unknown; run it again."),
                               get_id (data->self));
  if (check_gone (task))
    return;
  if (data->error != NULL && !data->timed_out)
    {
      g_task_return_error (task, g_steal_pointer (&data->error));
      return;
    }
  if (data->timed_out)
    {
      data->exit_status = -1;
      data->term_signal = SIGKILL;
    }

  result = _sandbox_output_steal_result (data->output, data->exit_status, data->term_signal, data->timed_out,
                                         data->start);
  _sandbox_task_return_object (task, result);
}

static void
exec_fail (GTask  *task,
           GError *error)
{
  ExecData *data = g_task_get_task_data (task);

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED) && (data->cancelled || data->timed_out))
    g_error_free (error);
  else if (data->error == NULL)
    data->error = error;
  else
    g_error_free (error);
  exec_complete (task);
}

static void exec_read (GTask *task);
static void exec_pump (GTask *task);

/* A Connect framing error (sandbox-connect.c knows no provider): says who
 * sent the stream and what to do. */
static GError *
stream_error (GError *error)
{
  GError *framed = g_error_new (SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL,
                                _("E2B envd sent a broken command stream: %s The command may "
                                  "or may not have run; check its effects, then run it again."),
                                error->message);

  g_error_free (error);
  return framed;
}

/* Back-pressure: the stream is read again once the output has caught up. */
static void
exec_caught_up (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  GTask *task = user_data;  /* owned */
  ExecData *data = g_task_get_task_data (task);
  GError *error = NULL;

  if (!_sandbox_output_flush_finish (data->output, result, &error))
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        data->cancelled = FALSE;
      g_cancellable_cancel (data->op);
      exec_fail (task, error);
      g_object_unref (task);
      return;
    }
  exec_pump (task);
  g_object_unref (task);
}

static void
stdin_sent (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  GTask *task = user_data;  /* owned */
  ExecData *data = g_task_get_task_data (task);
  g_autoptr(JsonNode) node = NULL;
  GError *error = NULL;

  node = _sandbox_rest_client_call_finish (SANDBOX_REST_CLIENT (source), result, NULL, &error);
  if (error != NULL && data->error == NULL && !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    data->error = error;
  else
    g_clear_error (&error);

  if (!data->stdin_closing && error == NULL)
    {
      g_autoptr(JsonObject) object = json_object_new ();
      g_autoptr(JsonNode) body = json_node_new (JSON_NODE_OBJECT);

      data->stdin_closing = TRUE;
      json_object_set_member (object, "process", pid_selector (data->pid));
      json_node_set_object (body, object);
      _sandbox_rest_client_call_async (data->self->envd, "POST", "process.Process/CloseStdin", body,
                                       SANDBOX_REST_NONE, data->op, stdin_sent, g_object_ref (task));
    }
  g_object_unref (task);
}

static void
send_stdin (GTask *task)
{
  ExecData *data = g_task_get_task_data (task);
  GBytes *input = sandbox_command_get_stdin (data->command);
  g_autofree char *b64 = g_base64_encode (g_bytes_get_data (input, NULL), g_bytes_get_size (input));
  g_autoptr(JsonObject) object = json_object_new ();
  g_autoptr(JsonObject) in = json_object_new ();
  g_autoptr(JsonNode) body = json_node_new (JSON_NODE_OBJECT);

  json_object_set_member (object, "process", pid_selector (data->pid));
  /* On a terminal: typed on it (a PTY has no stdin to close). */
  json_object_set_string_member (in, data->tty != NULL ? "pty" : "stdin", b64);
  if (data->tty != NULL)
    data->stdin_closing = TRUE;
  json_object_set_object_member (object, "input", json_object_ref (in));
  json_node_set_object (body, object);
  _sandbox_rest_client_call_async (data->self->envd, "POST", "process.Process/SendInput", body,
                                   SANDBOX_REST_NONE, data->op, stdin_sent, g_object_ref (task));
}

static const char *
event_string (JsonObject *object,
              const char *name)
{
  return _sandbox_json_get_string (object, name);
}

static gint64
event_int (JsonObject *object,
           const char *name)
{
  JsonNode *node = json_object_get_member (object, name);

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_INT64)
    return 0;
  return json_node_get_int (node);
}

void
_sandbox_e2b_event_clear (SandboxE2bEvent *event)
{
  g_clear_pointer (&event->data, g_bytes_unref);
}

/* envd's status of a process that a signal ended: Go's ProcessState
 * string, "signal: segmentation fault", with " (core dumped)" after it
 * when it dumped core. Every such status used to be SIGKILL but for
 * "terminated" and "interrupt": a Metaflow step that crashed was said to
 * have been killed, "out of memory?" (session mfx21). Unknown: SIGKILL. */
static int
signal_of_status (const char *status)
{
  static const struct { const char *name; int signum; } names[] = {
    { "hangup", SIGHUP }, { "interrupt", SIGINT }, { "quit", SIGQUIT },
    { "illegal instruction", SIGILL }, { "trace/breakpoint trap", SIGTRAP },
    { "aborted", SIGABRT }, { "bus error", SIGBUS }, { "floating point exception", SIGFPE },
    { "killed", SIGKILL }, { "user defined signal 1", SIGUSR1 },
    { "segmentation fault", SIGSEGV }, { "user defined signal 2", SIGUSR2 },
    { "broken pipe", SIGPIPE }, { "alarm clock", SIGALRM }, { "terminated", SIGTERM },
    { "cpu time limit exceeded", SIGXCPU }, { "file size limit exceeded", SIGXFSZ },
  };
  g_autofree char *name = NULL;

  if (status == NULL || !g_str_has_prefix (status, "signal: "))
    return SIGKILL;
  name = g_ascii_strdown (status + strlen ("signal: "), -1);
  if (g_str_has_suffix (name, " (core dumped)"))
    name[strlen (name) - strlen (" (core dumped)")] = '\0';
  for (gsize i = 0; i < G_N_ELEMENTS (names); i++)
    if (strcmp (name, names[i].name) == 0)
      return names[i].signum;
  return SIGKILL;
}

/* One event of a process stream ({"start": {"pid"}}, {"data": {"stdout" |
 * "stderr": base64}}, {"end": {"exited", "exitCode", "status"}}), checked
 * member by member: a member of another type than expected reads as
 * absent, never as a critical. */
SandboxE2bEventKind
_sandbox_e2b_parse_process_event (JsonObject      *event,
                                  SandboxE2bEvent *out)
{
  JsonNode *node;

  memset (out, 0, sizeof *out);
  if ((node = json_object_get_member (event, "start")) != NULL && JSON_NODE_HOLDS_OBJECT (node))
    {
      gint64 pid = event_int (json_node_get_object (node), "pid");

      out->pid = pid > 0 && pid <= G_MAXUINT ? (guint) pid : 0;
      return SANDBOX_E2B_EVENT_START;
    }
  if ((node = json_object_get_member (event, "data")) != NULL && JSON_NODE_HOLDS_OBJECT (node))
    {
      JsonObject *output = json_node_get_object (node);
      const char *b64;

      out->is_stderr = json_object_has_member (output, "stderr");
      /* A PTY's output is the terminal's: standard output. */
      b64 = event_string (output, out->is_stderr ? "stderr" :
                          json_object_has_member (output, "pty") ? "pty" : "stdout");
      if (b64 != NULL)
        {
          gsize len = 0;
          guchar *bytes = g_base64_decode (b64, &len);

          out->data = g_bytes_new_take (bytes, len);
        }
      return SANDBOX_E2B_EVENT_DATA;
    }
  if ((node = json_object_get_member (event, "end")) != NULL && JSON_NODE_HOLDS_OBJECT (node))
    {
      JsonObject *end = json_node_get_object (node);
      JsonNode *exited = json_object_get_member (end, "exited");
      const char *status = event_string (end, "status");
      gint64 code = event_int (end, "exitCode");

      if (exited != NULL && JSON_NODE_HOLDS_VALUE (exited) &&
          json_node_get_value_type (exited) == G_TYPE_BOOLEAN && json_node_get_boolean (exited))
        out->exit_status = code >= 0 && code <= 255 ? (int) code : 255;
      else
        {
          out->exit_status = -1;
          out->term_signal = signal_of_status (status);
        }
      return SANDBOX_E2B_EVENT_END;
    }
  /* keepalive, and anything newer */
  return SANDBOX_E2B_EVENT_OTHER;
}

/* The event of one frame of a process stream, {"event": {...}}: the
 * object node, or NULL if the payload is something else (or empty). */
JsonNode *
_sandbox_e2b_parse_event_frame (GBytes *payload)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  gsize len = 0;
  const char *data = payload ? g_bytes_get_data (payload, &len) : NULL;
  JsonNode *root, *event;

  if (len == 0 || !json_parser_load_from_data (parser, data, (gssize) len, NULL) ||
      (root = json_parser_get_root (parser)) == NULL || !JSON_NODE_HOLDS_OBJECT (root) ||
      (event = json_object_get_member (json_node_get_object (root), "event")) == NULL ||
      !JSON_NODE_HOLDS_OBJECT (event))
    return NULL;
  return json_node_copy (event);
}

/* One event; FALSE when it started an asynchronous write (the pump
 * resumes when it is done). */
static gboolean
exec_event (GTask      *task,
            JsonObject *event,
            GError    **error)
{
  ExecData *data = g_task_get_task_data (task);
  g_auto(SandboxE2bEvent) ev = { 0, };

  switch (_sandbox_e2b_parse_process_event (event, &ev))
    {
    case SANDBOX_E2B_EVENT_START:
      data->got_start = TRUE;
      data->pid = ev.pid;
      if (data->tty != NULL)
        e2b_tty_set_pid (data->tty, ev.pid);
      if (sandbox_command_get_stdin (data->command) != NULL)
        send_stdin (task);
      break;
    case SANDBOX_E2B_EVENT_DATA:
      if (ev.data == NULL || g_bytes_get_size (ev.data) == 0)
        break;   /* pty output or unknown: not ours */
      _sandbox_output_write (data->output, ev.is_stderr, g_bytes_get_data (ev.data, NULL),
                             g_bytes_get_size (ev.data));
      if (_sandbox_output_get_pending (data->output) <= SANDBOX_OUTPUT_HIGH_WATER)
        break;
      _sandbox_output_flush_async (data->output, data->op, exec_caught_up, g_object_ref (task));
      return FALSE;
    case SANDBOX_E2B_EVENT_END:
      data->got_end = TRUE;
      if (data->tty != NULL)
        e2b_tty_set_pid (data->tty, 0);
      data->exit_status = ev.exit_status;
      data->term_signal = ev.term_signal;
      break;
    case SANDBOX_E2B_EVENT_OTHER:
    default:
      break;
    }
  /* keepalive, and anything newer: ignored. */
  return TRUE;
}

static void
exec_pump (GTask *task)
{
  ExecData *data = g_task_get_task_data (task);
  GBytes *payload;
  guint8 flags;

  while (_sandbox_connect_reader_next (data->reader, &flags, &payload))
    {
      g_autoptr(GBytes) owned = payload;
      g_autoptr(JsonNode) event = NULL;
      GError *error = NULL;

      if (flags & SANDBOX_CONNECT_FLAG_END_STREAM)
        {
          g_autofree char *code = NULL;

          data->got_end_stream = TRUE;
          if (!_sandbox_connect_parse_end_stream (payload, _("The command"), &code, &error))
            {
              if (g_strcmp0 (code, "deadline_exceeded") == 0 &&
                  sandbox_command_get_timeout_ms (data->command) > 0)
                {
                  data->timed_out = TRUE;
                  g_error_free (error);
                }
              else if (!data->got_end &&
                       (g_strcmp0 (code, "internal") == 0 || g_strcmp0 (code, "invalid_argument") == 0 ||
                        g_strcmp0 (code, "failed_precondition") == 0))
                {
                  /* envd could not start the command (not found, bad cwd). */
                  GError *exec_error = g_error_new (SANDBOX_ERROR, SANDBOX_ERROR_EXEC,
                                                    _("The command could not be started in E2B "
                                                      "sandbox %s: %s"), get_id (data->self),
                                                    error->message);
                  g_error_free (error);
                  exec_fail (task, exec_error);
                  return;
                }
              else
                {
                  exec_fail (task, error);
                  return;
                }
            }
          continue;
        }
      if ((event = _sandbox_e2b_parse_event_frame (payload)) == NULL)
        {
          exec_fail (task, g_error_new (SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL,
                                        _("E2B sent a process event that is not a JSON "
                                          "{\"event\":…} object.")));
          return;
        }
      if (!data->got_start && !json_object_has_member (json_node_get_object (event), "start"))
        {
          exec_fail (task, g_error_new (SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL,
                                        _("E2B's process stream did not begin with a start event.")));
          return;
        }
      if (!exec_event (task, json_node_get_object (event), &error))
        return;
    }
  exec_read (task);
}

static void
exec_got (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  GTask *task = user_data;  /* owned */
  ExecData *data = g_task_get_task_data (task);
  g_autoptr(GBytes) bytes = NULL;
  GError *error = NULL;

  bytes = g_input_stream_read_bytes_finish (G_INPUT_STREAM (source), result, &error);
  if (bytes == NULL)
    {
      exec_fail (task, _sandbox_rest_transport_error_new ("E2B envd", "POST",
                                                          "/process.Process/Start", error));
      g_error_free (error);
      g_object_unref (task);
      return;
    }
  if (g_bytes_get_size (bytes) == 0)
    {
      if (!_sandbox_connect_reader_finish (data->reader, &error))
        exec_fail (task, stream_error (error));
      else if (!data->got_end_stream && !data->timed_out)
        exec_fail (task, g_error_new (SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL,
                                      _("The command's stream from E2B ended without its "
                                        "end-of-stream frame; the connection was cut. Run the "
                                        "command again.")));
      else
        exec_complete (task);
      g_object_unref (task);
      return;
    }
  if (!_sandbox_connect_reader_feed (data->reader, g_bytes_get_data (bytes, NULL),
                                     g_bytes_get_size (bytes), &error))
    {
      exec_fail (task, stream_error (error));
      g_object_unref (task);
      return;
    }
  exec_pump (task);
  g_object_unref (task);
}

static void
exec_read (GTask *task)
{
  ExecData *data = g_task_get_task_data (task);

  g_input_stream_read_bytes_async (data->body, READ_CHUNK, G_PRIORITY_DEFAULT, data->op,
                                   exec_got, g_object_ref (task));
}

static void
exec_error_body (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  ExecData *data = g_task_get_task_data (task);
  GOutputStream *out = G_OUTPUT_STREAM (source);
  g_autoptr(GBytes) body = NULL;

  g_output_stream_splice_finish (out, result, NULL);
  body = g_memory_output_stream_steal_as_bytes (G_MEMORY_OUTPUT_STREAM (out));
  exec_fail (task, envd_error (data->self, "POST", "/process.Process/Start",
                               soup_message_get_status (data->msg), body));
}

static void exec_start (SandboxE2bInstance *self, GTask *task);

static void
exec_start_again (GTask *task)
{
  ExecData *data = g_task_get_task_data (task);

  exec_start (data->self, task);
}

static void
body_dropped (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  g_input_stream_close_finish (G_INPUT_STREAM (source), result, NULL);
  g_object_unref (source);
}

/* A 429 means the command was not started: start it again later (the
 * REST client's policy for a non-idempotent call). */
static gboolean
exec_retry_start (GTask *task)
{
  ExecData *data = g_task_get_task_data (task);
  guint delay_ms = 0;

  if (data->cancelled ||
      !_sandbox_rest_client_should_retry (data->self->envd, SANDBOX_REST_NONE, data->attempt,
                                          data->msg, NULL, &delay_ms))
    return FALSE;
  data->attempt++;
  if (data->guard != NULL)
    {
      g_source_destroy (data->guard);
      g_clear_pointer (&data->guard, g_source_unref);
    }
  /* The refused answer's body is dropped; the stream keeps itself alive
   * until closed. */
  g_input_stream_close_async (data->body, G_PRIORITY_DEFAULT, NULL, body_dropped, NULL);
  data->body = NULL;
  g_clear_object (&data->msg);
  _sandbox_cloud_task_later (task, delay_ms, exec_start_again, "[libsandbox] e2b start retry");
  return TRUE;
}

static void
exec_sent (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  ExecData *data = g_task_get_task_data (task);
  GError *error = NULL;
  guint status;
  const char *type;

  data->body = soup_session_send_finish (SOUP_SESSION (source), result, &error);
  if (data->body == NULL)
    {
      exec_fail (task, _sandbox_rest_transport_error_new ("E2B envd", "POST",
                                                          "/process.Process/Start", error));
      g_error_free (error);
      return;
    }
  status = soup_message_get_status (data->msg);
  if (status == 429 && exec_retry_start (task))
    return;
  if (status != 200)
    {
      g_autoptr(GOutputStream) out = g_memory_output_stream_new_resizable ();

      g_output_stream_splice_async (out, data->body, G_OUTPUT_STREAM_SPLICE_CLOSE_SOURCE |
                                    G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET, G_PRIORITY_DEFAULT,
                                    NULL, exec_error_body, g_object_ref (task));
      return;
    }
  type = soup_message_headers_get_content_type (soup_message_get_response_headers (data->msg), NULL);
  if (g_strcmp0 (type, "application/connect+json") != 0)
    {
      /* The provider's header (libsoup keeps its control characters): escaped. */
      g_autofree char *shown = _sandbox_display_text (type ? type : "no content type");

      exec_fail (task, g_error_new (SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL,
                                    _("E2B answered a command with “%s” instead of a Connect "
                                      "stream; check E2B_SANDBOX_URL."), shown));
      return;
    }
  exec_read (task);
}

static void
exec_start (SandboxE2bInstance *self,
            GTask              *task)
{
  ExecData *data = g_task_get_task_data (task);
  SandboxCommand *command = data->command;
  const char * const *argv = sandbox_command_get_argv (command);
  guint timeout_ms = sandbox_command_get_timeout_ms (command);
  const char *cwd = sandbox_command_get_cwd (command) ? sandbox_command_get_cwd (command) : self->workdir;
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(JsonNode) request = NULL;
  g_autoptr(GBytes) envelope = NULL;
  SoupMessageHeaders *headers;
  GHashTableIter iter;
  gpointer key, value;

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "process");
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "cmd");
  json_builder_add_string_value (builder, argv[0]);
  json_builder_set_member_name (builder, "args");
  json_builder_begin_array (builder);
  for (guint i = 1; argv[i] != NULL; i++)
    json_builder_add_string_value (builder, argv[i]);
  json_builder_end_array (builder);
  json_builder_set_member_name (builder, "envs");
  json_builder_begin_object (builder);
  g_hash_table_iter_init (&iter, sandbox_command_get_env (command));
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      json_builder_set_member_name (builder, key);
      json_builder_add_string_value (builder, value);
    }
  json_builder_end_object (builder);
  if (cwd != NULL)
    {
      json_builder_set_member_name (builder, "cwd");
      json_builder_add_string_value (builder, cwd);
    }
  json_builder_end_object (builder);
  json_builder_set_member_name (builder, "stdin");
  json_builder_add_boolean_value (builder, sandbox_command_get_stdin (command) != NULL &&
                                  !sandbox_command_get_tty (command));
  if (sandbox_command_get_tty (command))
    {
      guint rows, cols;

      sandbox_command_get_tty_size (command, &rows, &cols);
      json_builder_set_member_name (builder, "pty");
      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "size");
      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "cols");
      json_builder_add_int_value (builder, cols);
      json_builder_set_member_name (builder, "rows");
      json_builder_add_int_value (builder, rows);
      json_builder_end_object (builder);
      json_builder_end_object (builder);
    }
  json_builder_end_object (builder);
  request = json_builder_get_root (builder);
  envelope = _sandbox_connect_envelope_new_json (0, request);

  data->msg = _sandbox_rest_client_new_message (self->envd, "POST", "process.Process/Start");
  if (data->msg == NULL)
    {
      exec_fail (task, g_error_new (SANDBOX_ERROR, SANDBOX_ERROR_NOT_CONFIGURED,
                                    _("“%s” is not a valid envd URL; check E2B_SANDBOX_URL."),
                                    self->envd_url));
      return;
    }
  headers = soup_message_get_request_headers (data->msg);
  soup_message_headers_replace (headers, "Keepalive-Ping-Interval", "50");
  if (timeout_ms > 0)
    {
      g_autofree char *ms = g_strdup_printf ("%u", timeout_ms);

      soup_message_headers_replace (headers, "Connect-Timeout-Ms", ms);
      data->guard = g_timeout_source_new (timeout_ms + DEADLINE_GRACE_MS);
      g_source_set_callback (data->guard, exec_guard_hit, data, NULL);
      g_source_attach (data->guard, g_main_context_get_thread_default ());
    }
  soup_message_set_request_body_from_bytes (data->msg, "application/connect+json", envelope);
  data->start = g_get_monotonic_time ();
  soup_session_send_async (_sandbox_rest_client_get_session (self->envd), data->msg, G_PRIORITY_DEFAULT,
                           data->op, exec_sent, g_object_ref (task));
}

static void
sandbox_e2b_instance_exec (SandboxInstance *instance,
                           SandboxCommand  *command,
                           GCancellable    *cancellable,
                           GTask           *task)
{
  SandboxE2bInstance *self = SANDBOX_E2B_INSTANCE (instance);
  ExecData *data;

  if (refuse_if_paused (self, task))
    return;
  data = g_new0 (ExecData, 1);
  data->self = g_object_ref (self);
  data->command = g_object_ref (command);
  data->op = g_cancellable_new ();
  data->context = g_main_context_ref_thread_default ();
  data->reader = _sandbox_connect_reader_new (0);
  data->output = _sandbox_output_new (command);
  if (sandbox_command_get_tty (command))
    data->tty = e2b_tty_new (self, command, data->context);
  g_task_set_task_data (task, data, (GDestroyNotify) exec_data_free);
  if (cancellable != NULL)
    {
      GWeakRef *ref = g_new0 (GWeakRef, 1);

      g_weak_ref_init (ref, task);
      data->user = g_object_ref (cancellable);
      data->user_id = _sandbox_cancellable_connect_in (cancellable, data->context, exec_user_cancelled,
                                                       ref, weak_ref_free);
    }
  with_envd (self, task, exec_start);
}

/* ------------------------------------------------------------------ */
/* Files: synchronous HTTP in a worker thread, one session per transfer */

typedef struct
{
  SoupSession *session;
  SandboxRestClient *policy;   /* whose retry policy transfers follow */
  char        *envd_url;
  char        *sandbox_id;
  char        *token;
  gboolean     as_root;    /* as root (HTTP Basic), not the template's user */
  GFile       *local;
  char        *remote;
  gboolean     upload;     /* else a download */
  SandboxInstance *instance;  /* the task's source object: reports progress */
} FilesData;

static void
files_data_free (FilesData *data)
{
  g_clear_object (&data->session);
  g_clear_object (&data->policy);
  g_clear_object (&data->local);
  g_free (data->envd_url);
  g_free (data->sandbox_id);
  g_free (data->token);
  g_free (data->remote);
  g_free (data);
}

/* A request to envd, or NULL with @error set when its URL is not one. */
static SoupMessage *
files_message (FilesData   *data,
               const char  *method,
               const char  *path_and_query,
               GError     **error)
{
  g_autofree char *url = g_strconcat (data->envd_url, g_str_has_suffix (data->envd_url, "/") ? "" : "/",
                                      path_and_query, NULL);
  SoupMessage *msg = soup_message_new (method, url);
  SoupMessageHeaders *headers;

  if (msg == NULL)
    {
      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_CONFIGURED,
                   _("“%s” is not a valid envd URL; check E2B_SANDBOX_URL."), data->envd_url);
      return NULL;
    }
  headers = soup_message_get_request_headers (msg);
  soup_message_headers_replace (headers, "E2b-Sandbox-Id", data->sandbox_id);
  soup_message_headers_replace (headers, "E2b-Sandbox-Port", G_STRINGIFY (E2B_ENVD_PORT));
  soup_message_headers_replace (headers, "X-Access-Token", data->token);
  if (data->as_root)
    soup_message_headers_replace (headers, "Authorization", E2B_ROOT_AUTH);
  return msg;
}

static GError *
files_http_error (FilesData  *data,
                  SoupMessage *msg,
                  const char *method,
                  const char *endpoint,
                  GInputStream *stream)
{
  g_autoptr(GOutputStream) out = g_memory_output_stream_new_resizable ();
  g_autoptr(GBytes) body = NULL;
  guint status = soup_message_get_status (msg);
  gsize len;
  const char *text;

  if (stream != NULL)
    g_output_stream_splice (out, stream, G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET, NULL, NULL);
  else
    g_output_stream_close (out, NULL, NULL);
  body = g_memory_output_stream_steal_as_bytes (G_MEMORY_OUTPUT_STREAM (out));
  text = g_bytes_get_data (body, &len);
  if (status == 502 && text != NULL && g_strstr_len (text, len, "sandbox was not found") != NULL)
    return g_error_new (SANDBOX_ERROR, SANDBOX_ERROR_NOT_FOUND,
                        _("The E2B sandbox %s no longer exists (it was killed or reached its "
                          "timeout)."), data->sandbox_id);
  return _sandbox_rest_error_new ("E2B envd", method, endpoint, status, body, NULL);
}

/* Replaces the transport error in *@error (a dropped or refused
 * connection to envd during METHOD ENDPOINT) by the library's, keeping the
 * raw one in *@failed_error (when not NULL) for the retry policy. */
static void
files_transport_error (const char  *method,
                       const char  *endpoint,
                       GError     **failed_error,
                       GError     **error)
{
  GError *mapped = _sandbox_rest_transport_error_new ("E2B envd", method, endpoint, *error);

  if (failed_error != NULL)
    *failed_error = g_error_copy (*error);
  g_clear_error (error);
  g_propagate_error (error, mapped);
}

/* Sends @msg (on /files) to envd: the answer's body, or NULL with @error
 * set. A failure that another attempt may cure leaves the answer in
 * *@failed_msg or the raw transport error in *@failed_error. */
static GInputStream *
files_send (FilesData     *data,
            SoupMessage   *msg,
            SoupMessage  **failed_msg,
            GError       **failed_error,
            GCancellable  *cancellable,
            GError       **error)
{
  const char *method = soup_message_get_method (msg);
  g_autoptr(GInputStream) answer = soup_session_send (data->session, msg, cancellable, error);

  if (answer == NULL)
    {
      files_transport_error (method, "/files", failed_error, error);
      return NULL;
    }
  if (!SOUP_STATUS_IS_SUCCESSFUL (soup_message_get_status (msg)))
    {
      *failed_msg = g_object_ref (msg);
      g_propagate_error (error, files_http_error (data, msg, method, "/files", answer));
      return NULL;
    }
  return g_steal_pointer (&answer);
}

/* A unary Connect call; returns the parsed answer. */
static JsonNode *
files_rpc (FilesData     *data,
           const char    *rpc,
           JsonNode      *request,
           const char    *accepted_code,
           gboolean      *accepted,
           GCancellable  *cancellable,
           GError       **error)
{
  g_autoptr(SoupMessage) msg = NULL;
  g_autofree char *json = json_to_string (request, FALSE);
  g_autoptr(GBytes) body = NULL;
  g_autoptr(GBytes) answer = NULL;
  g_autoptr(JsonParser) parser = json_parser_new ();
  guint status;

  if (accepted != NULL)
    *accepted = FALSE;
  msg = files_message (data, "POST", rpc, error);
  if (msg == NULL)
    return NULL;
  soup_message_headers_replace (soup_message_get_request_headers (msg), "Connect-Protocol-Version", "1");
  body = g_bytes_new (json, strlen (json));
  soup_message_set_request_body_from_bytes (msg, "application/json", body);
  answer = soup_session_send_and_read (data->session, msg, cancellable, error);
  if (answer == NULL)
    {
      files_transport_error ("POST", rpc, NULL, error);
      return NULL;
    }
  status = soup_message_get_status (msg);
  if (status != 200)
    {
      g_autofree char *code = NULL;
      GError *connect = _sandbox_connect_error_from_body (answer, rpc, &code);

      if (accepted_code != NULL && g_strcmp0 (code, accepted_code) == 0)
        {
          g_clear_error (&connect);
          *accepted = TRUE;
          return NULL;
        }
      g_clear_error (&connect);
      {
        g_autoptr(GInputStream) in = g_memory_input_stream_new_from_bytes (answer);
        g_propagate_error (error, files_http_error (data, msg, "POST", rpc, in));
      }
      return NULL;
    }
  if (g_bytes_get_size (answer) == 0 ||
      !json_parser_load_from_data (parser, g_bytes_get_data (answer, NULL),
                                   (gssize) g_bytes_get_size (answer), NULL) ||
      json_parser_get_root (parser) == NULL || !JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    {
      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL,
                   _("E2B answered %s with something that is not a JSON object."), rpc);
      return NULL;
    }
  return json_node_copy (json_parser_get_root (parser));
}

static JsonNode *
path_request (const char *member,
              const char *path,
              gint64      depth)
{
  JsonObject *object = json_object_new ();
  JsonNode *node = json_node_new (JSON_NODE_OBJECT);

  json_object_set_string_member (object, member, path);
  if (depth > 0)
    json_object_set_int_member (object, "depth", depth);
  json_node_take_object (node, object);
  return node;
}

static gboolean
make_dir (FilesData     *data,
          const char    *path,
          GCancellable  *cancellable,
          GError       **error)
{
  g_autoptr(JsonNode) request = path_request ("path", path, 0);
  g_autoptr(JsonNode) answer = NULL;
  gboolean exists = FALSE;

  answer = files_rpc (data, "filesystem.Filesystem/MakeDir", request, "already_exists", &exists,
                      cancellable, error);
  return answer != NULL || exists;
}

static void
on_wrote_body_data (SoupMessage *msg,
                    guint        chunk_size,
                    gpointer     user_data)
{
  sandbox_instance_add_transferred (SANDBOX_INSTANCE (user_data), chunk_size);
}

/* Copies IN to OUT (closing both) as a splice would, adding each chunk to
 * INSTANCE's transfer progress. */
static gboolean
copy_counting (SandboxInstance  *instance,
               GInputStream     *in,
               GOutputStream    *out,
               GCancellable     *cancellable,
               GError          **error)
{
  g_autofree char *buf = g_malloc (64 * 1024);
  gboolean ok = TRUE;

  for (;;)
    {
      gssize n = g_input_stream_read (in, buf, 64 * 1024, cancellable, error);

      if (n < 0)
        ok = FALSE;
      if (n <= 0)
        break;
      if (!g_output_stream_write_all (out, buf, (gsize) n, NULL, cancellable, error))
        {
          ok = FALSE;
          break;
        }
      sandbox_instance_add_transferred (instance, (guint64) n);
    }
  /* Closing only reports an error the copy did not already have. */
  if (!g_input_stream_close (in, NULL, ok ? error : NULL) && ok)
    ok = FALSE;
  if (!g_output_stream_close (out, NULL, ok ? error : NULL) && ok)
    ok = FALSE;
  return ok;
}

/* envd's request for the file @path of the sandbox: GET reads it, POST
 * writes it. NULL with @error set as files_message (). */
static SoupMessage *
file_message (FilesData   *data,
              const char  *method,
              const char  *path,
              GError     **error)
{
  g_autofree char *escaped = g_uri_escape_string (path, "/", FALSE);
  g_autofree char *query = g_strdup_printf ("files?path=%s", escaped);

  return files_message (data, method, query, error);
}

/* One attempt. A failure that another attempt may cure leaves the answer
 * in *@failed_msg or the raw transport error in *@failed_error. */
static gboolean
upload_file_once (FilesData     *data,
                  GFile         *source,
                  const char    *destination,
                  SoupMessage  **failed_msg,
                  GError       **failed_error,
                  GCancellable  *cancellable,
                  GError       **error)
{
  g_autoptr(SoupMessage) msg = file_message (data, "POST", destination, error);
  g_autoptr(GFileInputStream) in = NULL;
  g_autoptr(GFileInfo) info = NULL;
  g_autoptr(GInputStream) answer = NULL;

  if (msg == NULL)
    return FALSE;
  in = g_file_read (source, cancellable, error);
  if (in == NULL)
    return FALSE;
  info = g_file_input_stream_query_info (in, G_FILE_ATTRIBUTE_STANDARD_SIZE, cancellable, error);
  if (info == NULL)
    return FALSE;
  /* Streamed from the file: never whole in memory. */
  soup_message_set_request_body (msg, "application/octet-stream", G_INPUT_STREAM (in),
                                 g_file_info_get_size (info));
  g_signal_connect (msg, "wrote-body-data", G_CALLBACK (on_wrote_body_data), data->instance);
  answer = files_send (data, msg, failed_msg, failed_error, cancellable, error);
  if (answer == NULL)
    return FALSE;
  {
    g_autoptr(GOutputStream) sink = g_memory_output_stream_new_resizable ();
    g_autoptr(GError) local_error = NULL;

    /* The answer must arrive whole: a connection that drops here means
     * the upload's outcome is unknown. */
    if (g_output_stream_splice (sink, answer, G_OUTPUT_STREAM_SPLICE_CLOSE_SOURCE |
                                G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET, cancellable, &local_error) < 0)
      {
        g_propagate_error (error, g_steal_pointer (&local_error));
        files_transport_error ("POST", "/files", failed_error, error);
        return FALSE;
      }
  }
  return TRUE;
}

static gboolean download_file_once (FilesData *data, const char *source, GFile *destination,
                                    SoupMessage **failed_msg, GError **failed_error,
                                    GCancellable *cancellable, GError **error);

typedef gboolean (*TransferOnce) (FilesData *data, gpointer source, gpointer destination,
                                  SoupMessage **failed_msg, GError **failed_error,
                                  GCancellable *cancellable, GError **error);

/* A transfer is idempotent (an upload overwrites, a download reads): a
 * transient failure is tried again, per the REST client's policy. */
static gboolean
transfer (FilesData     *data,
          TransferOnce   once,
          gpointer       source,
          gpointer       destination,
          GCancellable  *cancellable,
          GError       **error)
{
  for (guint attempt = 0;; attempt++)
    {
      g_autoptr(SoupMessage) failed_msg = NULL;
      g_autoptr(GError) failed_error = NULL;
      GError *local_error = NULL;
      guint delay_ms = 0;
      gint64 until;

      if (once (data, source, destination, &failed_msg, &failed_error, cancellable, &local_error))
        return TRUE;
      if ((failed_msg == NULL && failed_error == NULL) ||
          !_sandbox_rest_client_should_retry (data->policy, SANDBOX_REST_IDEMPOTENT, attempt,
                                              failed_msg, failed_error, &delay_ms))
        {
          g_propagate_error (error, local_error);
          return FALSE;
        }
      g_clear_error (&local_error);
      /* A worker thread: wait, but not past a cancellation. */
      until = g_get_monotonic_time () + (gint64) delay_ms * 1000;
      while (g_get_monotonic_time () < until)
        {
          if (g_cancellable_set_error_if_cancelled (cancellable, error))
            return FALSE;
          g_usleep (MIN (10000, MAX (0, until - g_get_monotonic_time ())));
        }
    }
}

static gboolean
upload_file (FilesData     *data,
             GFile         *source,
             const char    *destination,
             GCancellable  *cancellable,
             GError       **error)
{
  return transfer (data, (TransferOnce) upload_file_once, source, (gpointer) destination,
                   cancellable, error);
}

static gboolean
download_file (FilesData     *data,
               const char    *source,
               GFile         *destination,
               GCancellable  *cancellable,
               GError       **error)
{
  return transfer (data, (TransferOnce) download_file_once, (gpointer) source, destination,
                   cancellable, error);
}

static gboolean
upload_tree (FilesData     *data,
             GFile         *source,
             const char    *destination,
             GCancellable  *cancellable,
             GError       **error)
{
  g_autoptr(GFileInfo) info = g_file_query_info (source, G_FILE_ATTRIBUTE_STANDARD_TYPE,
                                                 G_FILE_QUERY_INFO_NONE, cancellable, error);
  g_autoptr(GFileEnumerator) children = NULL;

  if (info == NULL)
    {
      if (error != NULL && g_error_matches (*error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND))
        {
          g_clear_error (error);
          g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_FOUND,
                       _("%s does not exist."), g_file_peek_path (source));
        }
      return FALSE;
    }
  if (g_file_info_get_file_type (info) == G_FILE_TYPE_REGULAR)
    return upload_file (data, source, destination, cancellable, error);
  if (g_file_info_get_file_type (info) != G_FILE_TYPE_DIRECTORY)
    {
      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT,
                   _("%s is not a regular file or directory, and cannot be uploaded."),
                   g_file_peek_path (source));
      return FALSE;
    }
  if (!make_dir (data, destination, cancellable, error))
    return FALSE;
  children = g_file_enumerate_children (source, G_FILE_ATTRIBUTE_STANDARD_NAME, G_FILE_QUERY_INFO_NONE,
                                        cancellable, error);
  if (children == NULL)
    return FALSE;
  for (;;)
    {
      GFileInfo *child_info;
      GFile *child;
      g_autofree char *target = NULL;

      if (!g_file_enumerator_iterate (children, &child_info, &child, cancellable, error))
        return FALSE;
      if (child_info == NULL)
        return TRUE;
      target = g_build_filename (destination, g_file_info_get_name (child_info), NULL);
      if (!upload_tree (data, child, target, cancellable, error))
        return FALSE;
    }
}

static gboolean
download_file_once (FilesData     *data,
                    const char    *source,
                    GFile         *destination,
                    SoupMessage  **failed_msg,
                    GError       **failed_error,
                    GCancellable  *cancellable,
                    GError       **error)
{
  g_autoptr(SoupMessage) msg = file_message (data, "GET", source, error);
  g_autoptr(GInputStream) in = NULL;
  g_autoptr(GFileOutputStream) out = NULL;
  g_autoptr(GFile) parent = g_file_get_parent (destination);

  if (msg == NULL)
    return FALSE;
  in = files_send (data, msg, failed_msg, failed_error, cancellable, error);
  if (in == NULL)
    return FALSE;
  if (parent != NULL)
    g_file_make_directory_with_parents (parent, cancellable, NULL);
  out = g_file_replace (destination, NULL, FALSE, G_FILE_CREATE_NONE, cancellable, error);
  if (out == NULL)
    return FALSE;
  /* A single file: its size is the copy's, when the answer says it. */
  if (strcmp (source, data->remote) == 0 &&
      soup_message_headers_get_encoding (soup_message_get_response_headers (msg)) ==
        SOUP_ENCODING_CONTENT_LENGTH)
    sandbox_instance_set_transfer_total (data->instance,
                                         soup_message_headers_get_content_length (
                                           soup_message_get_response_headers (msg)));
  /* Streamed to the file, never whole in memory, counting the progress. */
  if (!copy_counting (data->instance, in, G_OUTPUT_STREAM (out), cancellable, error))
    {
      /* A dropped connection is the provider's failure, not a local one. */
      if (!g_error_matches (*error, G_IO_ERROR, G_IO_ERROR_CANCELLED) &&
          ((*error)->domain == G_IO_ERROR && ((*error)->code == G_IO_ERROR_PARTIAL_INPUT ||
                                              (*error)->code == G_IO_ERROR_TIMED_OUT ||
                                              (*error)->code == G_IO_ERROR_CONNECTION_CLOSED ||
                                              (*error)->code == G_IO_ERROR_BROKEN_PIPE)))
        files_transport_error ("GET", "/files", failed_error, error);
      return FALSE;
    }
  return TRUE;
}

/* Whether a filesystem.Filesystem/Stat answer describes a directory. */
gboolean
_sandbox_e2b_parse_stat_is_dir (JsonNode *answer)
{
  JsonNode *entry = NULL;

  if (answer != NULL && JSON_NODE_HOLDS_OBJECT (answer))
    entry = json_object_get_member (json_node_get_object (answer), "entry");
  if (entry == NULL || !JSON_NODE_HOLDS_OBJECT (entry))
    return FALSE;
  return g_strcmp0 (_sandbox_json_get_string (json_node_get_object (entry), "type"), "FILE_TYPE_DIRECTORY") == 0;
}

/* The names to download from a filesystem.Filesystem/ListDir answer: each
 * one plain path component (not empty, ".", ".." or with a "/"), because
 * it becomes a local path below the destination (and an empty one would
 * list the same directory forever); symbolic links (FILE_TYPE_SYMLINK, or
 * any type with a symlinkTarget) are left out. */
GPtrArray *
_sandbox_e2b_parse_list_dir (JsonNode *answer)
{
  GPtrArray *names = g_ptr_array_new_with_free_func (g_free);
  JsonNode *entries = NULL;
  JsonArray *array;

  if (answer != NULL && JSON_NODE_HOLDS_OBJECT (answer))
    entries = json_object_get_member (json_node_get_object (answer), "entries");
  if (entries == NULL || !JSON_NODE_HOLDS_ARRAY (entries))
    return names;
  array = json_node_get_array (entries);
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      JsonNode *child = json_array_get_element (array, i);
      const char *name;

      if (!JSON_NODE_HOLDS_OBJECT (child))
        continue;
      name = _sandbox_json_get_string (json_node_get_object (child), "name");
      if (name == NULL || *name == '\0' || strchr (name, '/') != NULL ||
          strcmp (name, "..") == 0 || strcmp (name, ".") == 0)
        continue;
      /* envd types a symlink as what it leads to and names that in
       * symlinkTarget: following it could leave the tree or loop. */
      if (g_strcmp0 (_sandbox_json_get_string (json_node_get_object (child), "type"), "FILE_TYPE_SYMLINK") == 0 ||
          json_object_has_member (json_node_get_object (child), "symlinkTarget"))
        continue;
      g_ptr_array_add (names, g_strdup (name));
    }
  return names;
}

static gboolean
download_tree (FilesData     *data,
               const char    *source,
               GFile         *destination,
               GCancellable  *cancellable,
               GError       **error)
{
  g_autoptr(JsonNode) request = path_request ("path", source, 0);
  g_autoptr(JsonNode) answer = NULL;
  gboolean missing = FALSE;

  answer = files_rpc (data, "filesystem.Filesystem/Stat", request, "not_found", &missing, cancellable, error);
  if (missing)
    {
      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_FOUND,
                   _("%s does not exist in E2B sandbox %s."), source, data->sandbox_id);
      return FALSE;
    }
  if (answer == NULL)
    return FALSE;
  if (!_sandbox_e2b_parse_stat_is_dir (answer))
    return download_file (data, source, destination, cancellable, error);

  {
    g_autoptr(JsonNode) list_request = path_request ("path", source, 1);
    g_autoptr(JsonNode) listing = NULL;
    g_autoptr(GPtrArray) names = NULL;
    GError *local_error = NULL;

    if (!g_file_make_directory_with_parents (destination, cancellable, &local_error) &&
        !g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_EXISTS))
      {
        g_propagate_error (error, local_error);
        return FALSE;
      }
    g_clear_error (&local_error);
    listing = files_rpc (data, "filesystem.Filesystem/ListDir", list_request, NULL, NULL, cancellable, error);
    if (listing == NULL)
      return FALSE;
    names = _sandbox_e2b_parse_list_dir (listing);
    for (guint i = 0; i < names->len; i++)
      {
        const char *name = g_ptr_array_index (names, i);
        g_autofree char *child_path = NULL;
        g_autoptr(GFile) target = NULL;

        child_path = g_build_filename (source, name, NULL);
        target = g_file_get_child (destination, name);
        if (!download_tree (data, child_path, target, cancellable, error))
          return FALSE;
      }
  }
  return TRUE;
}

/* The copy, in a worker thread: envd's file API is called synchronously. */
static void
files_thread (GTask        *task,
              gpointer      source_object,
              gpointer      task_data,
              GCancellable *cancellable)
{
  FilesData *data = task_data;
  GError *error = NULL;
  gboolean copied = data->upload ? upload_tree (data, data->local, data->remote, cancellable, &error)
                                 : download_tree (data, data->remote, data->local, cancellable, &error);

  if (copied)
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
}

static void
files_start (SandboxE2bInstance *self,
             GTask              *task)
{
  FilesData *data = g_task_get_task_data (task);
  g_autofree char *user_agent = g_strdup_printf ("libsandbox/%s", SANDBOX_VERSION_S);

  data->envd_url = g_strdup (self->envd_url);
  data->sandbox_id = g_strdup (get_id (self));
  data->token = g_strdup (self->access_token);
  data->as_root = self->as_root;
  data->session = soup_session_new_with_options ("user-agent", user_agent,
                                                 "timeout", _sandbox_rest_timeout_s (), NULL);
  data->policy = g_object_ref (self->envd);
  _sandbox_rest_session_setup_tls (data->session);   /* self->envd warned */
  g_task_run_in_thread (task, files_thread);
}

static gboolean
check_path (const char  *path,
            GTask       *task)
{
  if (path != NULL && g_path_is_absolute (path))
    return TRUE;
  g_task_return_new_error (task, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT,
                           _("“%s” is not an absolute path; paths in a sandbox start with /, "
                             "for example /home/user/data."), path ? path : "");
  return FALSE;
}

/* The start of an upload (@upload) or a download: @remote checked, the
 * copy's data set on @task, then run in a worker once envd is known. */
static void
files_begin (SandboxInstance *instance,
             GFile           *local,
             const char      *remote,
             gboolean         upload,
             GTask           *task)
{
  FilesData *data;

  if (refuse_if_paused (SANDBOX_E2B_INSTANCE (instance), task) || !check_path (remote, task))
    return;
  data = g_new0 (FilesData, 1);
  data->local = g_object_ref (local);
  data->remote = g_strdup (remote);
  data->upload = upload;
  data->instance = instance;
  g_task_set_task_data (task, data, (GDestroyNotify) files_data_free);
  with_envd (SANDBOX_E2B_INSTANCE (instance), task, files_start);
}

static void
sandbox_e2b_instance_upload (SandboxInstance *instance,
                             GFile           *source,
                             const char      *destination,
                             GCancellable    *cancellable,
                             GTask           *task)
{
  files_begin (instance, source, destination, TRUE, task);
}

static void
sandbox_e2b_instance_download (SandboxInstance *instance,
                               const char      *source,
                               GFile           *destination,
                               GCancellable    *cancellable,
                               GTask           *task)
{
  files_begin (instance, destination, source, FALSE, task);
}

/* ------------------------------------------------------------------ */
/* destroy                                                             */

static void
sandbox_e2b_instance_destroy (SandboxInstance *instance,
                              GCancellable    *cancellable,
                              GTask           *task)
{
  SandboxE2bInstance *self = SANDBOX_E2B_INSTANCE (instance);

  _sandbox_cloud_destroy (_sandbox_e2b_backend_get_api (get_backend (self)), &_sandbox_e2b_api, 0, task);
}

/* ------------------------------------------------------------------ */
/* pause (POST /sandboxes/{id}/pause), resume (POST .../connect, which  */
/* resumes a paused sandbox: 201, or finds it running: 200), metrics    */
/* (GET .../metrics, the latest sample; envd's GET /metrics while the   */
/* service has none yet)                                               */

static void
pause_done (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  g_autoptr(JsonNode) node = NULL;
  GError *error = NULL;
  guint status = 0;

  node = _sandbox_rest_client_call_finish (SANDBOX_REST_CLIENT (source), result, &status, &error);
  /* 409: already paused, which is what was asked. */
  if (error != NULL && status != 409)
    {
      g_task_return_error (task, error);
      return;
    }
  g_clear_error (&error);
  g_task_return_boolean (task, TRUE);
}

static void
sandbox_e2b_instance_pause (SandboxInstance *instance,
                            GCancellable    *cancellable,
                            GTask           *task)
{
  g_autoptr(JsonNode) body = json_from_string ("{}", NULL);

  call_api (SANDBOX_E2B_INSTANCE (instance), "POST", "pause", body, SANDBOX_REST_NONE, cancellable,
            pause_done, task);
}

static void
resume_done (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  SandboxE2bInstance *self = g_task_get_source_object (task);
  g_autoptr(JsonNode) node = NULL;
  GError *error = NULL;
  JsonObject *object;

  node = _sandbox_rest_client_call_finish (SANDBOX_REST_CLIENT (source), result, NULL, &error);
  if (error != NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  if (node != NULL && JSON_NODE_HOLDS_OBJECT (node))
    {
      /* A resumed sandbox may have a new token or domain. */
      object = json_node_get_object (node);
      if (_sandbox_json_get_string (object, "envdAccessToken") != NULL)
        {
          g_free (self->access_token);
          self->access_token = g_strdup (_sandbox_json_get_string (object, "envdAccessToken"));
        }
      if (_sandbox_json_get_string (object, "domain") != NULL)
        {
          g_free (self->domain);
          self->domain = g_strdup (_sandbox_json_get_string (object, "domain"));
        }
      set_envd (self);
    }
  g_task_return_boolean (task, TRUE);
}

static void
sandbox_e2b_instance_resume (SandboxInstance *instance,
                             GCancellable    *cancellable,
                             GTask           *task)
{
  g_autofree char *json = g_strdup_printf ("{\"timeout\": %d}", E2B_DEFAULT_TTL_S);
  g_autoptr(JsonNode) body = json_from_string (json, NULL);

  /* connect only ever extends the sandbox's time-out. */
  call_api (SANDBOX_E2B_INSTANCE (instance), "POST", "connect", body, SANDBOX_REST_NONE, cancellable,
            resume_done, task);
}

/* The number in the member @a (else @b) of @object, or @fallback. */
static double
member_number (JsonObject *object,
               const char *a,
               const char *b,
               double      fallback)
{
  const char *names[] = { a, b };

  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      JsonNode *node = json_object_get_member (object, names[i]);

      if (node == NULL || !JSON_NODE_HOLDS_VALUE (node))
        continue;
      if (json_node_get_value_type (node) == G_TYPE_INT64)
        return (double) json_node_get_int (node);
      if (json_node_get_value_type (node) == G_TYPE_DOUBLE)
        return json_node_get_double (node);
    }
  return fallback;
}

static guint64
member_u64 (JsonObject *object,
            const char *a,
            const char *b)
{
  double value = member_number (object, a, b, 0);

  /* Negative or beyond 2^64 (a cast of those is undefined). */
  if (!(value > 0))
    return 0;
  return value >= 18446744073709551615.0 ? G_MAXUINT64 : (guint64) value;
}

/* From a SandboxMetric of the API (camelCase) or envd's /metrics
 * (snake_case). */
SandboxMetrics *
_sandbox_e2b_parse_metrics (JsonObject *object)
{
  return g_object_new (SANDBOX_TYPE_METRICS,
                       "cpu-percent", CLAMP (member_number (object, "cpuUsedPct", "cpu_used_pct", -1), -1.0, 100.0),
                       "cpu-count", (guint) MIN (member_u64 (object, "cpuCount", "cpu_count"), G_MAXUINT),
                       "memory-used", member_u64 (object, "memUsed", "mem_used"),
                       "memory-total", member_u64 (object, "memTotal", "mem_total"),
                       "disk-used", member_u64 (object, "diskUsed", "disk_used"),
                       "disk-total", member_u64 (object, "diskTotal", "disk_total"),
                       NULL);
}

static void
return_metrics (GTask      *task,
                JsonObject *object)
{
  GValue value = G_VALUE_INIT;

  g_value_init (&value, SANDBOX_TYPE_METRICS);
  g_value_take_object (&value, _sandbox_e2b_parse_metrics (object));
  g_task_return_value (task, &value);
  g_value_unset (&value);
}

static void
envd_metrics_done (GObject      *source,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  g_autoptr(JsonNode) node = NULL;
  GError *error = NULL;

  node = _sandbox_rest_client_call_finish (SANDBOX_REST_CLIENT (source), result, NULL, &error);
  if (error != NULL)
    g_task_return_error (task, error);
  else if (node == NULL || !JSON_NODE_HOLDS_OBJECT (node))
    g_task_return_new_error (task, SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL,
                             _("E2B answered the metrics of sandbox %s with something that is not "
                               "an object; try again, or report it."),
                             sandbox_instance_get_id (g_task_get_source_object (task)));
  else
    return_metrics (task, json_node_get_object (node));
}

static void
envd_metrics (SandboxE2bInstance *self,
              GTask              *task)
{
  _sandbox_rest_client_call_async (self->envd, "GET", "metrics", NULL, SANDBOX_REST_IDEMPOTENT,
                                   g_task_get_cancellable (task), envd_metrics_done,
                                   g_object_ref (task));
}

static void
metrics_done (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  SandboxE2bInstance *self = g_task_get_source_object (task);
  g_autoptr(JsonNode) node = NULL;
  GError *error = NULL;
  JsonArray *samples;
  JsonNode *last;

  node = _sandbox_rest_client_call_finish (SANDBOX_REST_CLIENT (source), result, NULL, &error);
  if (error != NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  if (node == NULL || !JSON_NODE_HOLDS_ARRAY (node))
    {
      g_task_return_new_error (task, SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL,
                               _("E2B answered the metrics of sandbox %s with something that is not "
                                 "a list; try again, or report it."), get_id (self));
      return;
    }
  samples = json_node_get_array (node);
  last = json_array_get_length (samples) > 0
         ? json_array_get_element (samples, json_array_get_length (samples) - 1) : NULL;
  if (last != NULL && JSON_NODE_HOLDS_OBJECT (last))
    {
      return_metrics (task, json_node_get_object (last));
      return;
    }
  /* A sandbox younger than the service's sampling interval has no sample:
   * ask its envd, unless it is paused. */
  if (sandbox_instance_get_state (SANDBOX_INSTANCE (self)) == SANDBOX_INSTANCE_STATE_STOPPED)
    {
      g_task_return_new_error (task, SANDBOX_ERROR, SANDBOX_ERROR_FAILED,
                               _("E2B has no metrics of the paused sandbox %s yet; resume it first."),
                               get_id (self));
      return;
    }
  with_envd (self, task, envd_metrics);
}

static void
sandbox_e2b_instance_get_metrics (SandboxInstance *instance,
                                  GCancellable    *cancellable,
                                  GTask           *task)
{
  call_api (SANDBOX_E2B_INSTANCE (instance), "GET", "metrics", NULL, SANDBOX_REST_IDEMPOTENT, cancellable,
            metrics_done, task);
}

/* ------------------------------------------------------------------ */

static void
sandbox_e2b_instance_finalize (GObject *object)
{
  SandboxE2bInstance *self = SANDBOX_E2B_INSTANCE (object);

  g_clear_object (&self->envd);
  g_free (self->envd_url);
  g_free (self->domain);
  g_free (self->access_token);
  g_free (self->workdir);
  G_OBJECT_CLASS (sandbox_e2b_instance_parent_class)->finalize (object);
}

/* Ports (since 0.2): the edge proxy's host for the port; no token, as the
 * library creates sandboxes with public traffic allowed. */
static void
sandbox_e2b_instance_dup_port_url (SandboxInstance *instance,
                                   guint            port,
                                   GCancellable    *cancellable,
                                   GTask           *task)
{
  SandboxE2bInstance *self = SANDBOX_E2B_INSTANCE (instance);
  g_autofree char *url = _sandbox_e2b_backend_port_url (get_backend (self), get_id (self), self->domain, port);

  _sandbox_task_return_port_url (task, url, NULL);
}

static void
sandbox_e2b_instance_class_init (SandboxE2bInstanceClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  SandboxInstanceClass *instance_class = SANDBOX_INSTANCE_CLASS (klass);

  object_class->finalize = sandbox_e2b_instance_finalize;

  instance_class->exec = sandbox_e2b_instance_exec;
  instance_class->upload = sandbox_e2b_instance_upload;
  instance_class->download = sandbox_e2b_instance_download;
  instance_class->destroy = sandbox_e2b_instance_destroy;
  instance_class->pause = sandbox_e2b_instance_pause;
  instance_class->resume = sandbox_e2b_instance_resume;
  instance_class->get_metrics = sandbox_e2b_instance_get_metrics;
  instance_class->dup_port_url = sandbox_e2b_instance_dup_port_url;
}

static void
sandbox_e2b_instance_init (SandboxE2bInstance *self)
{
}
