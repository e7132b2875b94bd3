/* libsandbox - the Daytona backend: configuration and the sandbox life cycle
 *
 * REST over the shared client (libsandbox/sandbox-rest-private.h): POST
 * /sandbox, poll GET /sandbox/{id} on the SDK's schedule until it is
 * started, list by labels, get by id. Facts: shared/specs/daytona-api.md.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <math.h>
#include <string.h>

#include "sandbox-daytona-private.h"

struct _SandboxDaytonaBackend
{
  SandboxBackend     parent_instance;

  char              *api_key;
  char              *api_url;
  char              *target;
  guint              start_timeout;   /* s; 0: 60, or 900 when an image is built */
  SandboxRestClient *client;
};

G_DEFINE_FINAL_TYPE (SandboxDaytonaBackend, sandbox_daytona_backend, SANDBOX_TYPE_BACKEND)

enum {
  PROP_0,
  PROP_API_KEY,
  PROP_API_URL,
  PROP_TARGET,
  PROP_START_TIMEOUT,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static const char *
get_api_key (SandboxDaytonaBackend *self)
{
  return _sandbox_cloud_setting (self->api_key, "DAYTONA_API_KEY");
}

static const char *
get_api_url (SandboxDaytonaBackend *self)
{
  const char *url = _sandbox_cloud_setting (self->api_url, "DAYTONA_API_URL");

  return url != NULL ? url : DAYTONA_DEFAULT_API_URL;
}

static const char *
get_target (SandboxDaytonaBackend *self)
{
  return _sandbox_cloud_setting (self->target, "DAYTONA_TARGET");
}

SandboxRestClient *
_sandbox_daytona_backend_get_client (SandboxDaytonaBackend *self)
{
  if (self->client == NULL)
    {
      g_autofree char *auth = g_strdup_printf ("Bearer %s", get_api_key (self) ? get_api_key (self) : "");
      g_autofree char *hint = g_strdup_printf (_("Check DAYTONA_API_KEY (or the api-key property): "
                                                 "create a key at %s, and check that DAYTONA_API_URL "
                                                 "(%s) is the matching API."),
                                               DAYTONA_KEYS_URL, get_api_url (self));

      self->client = _sandbox_rest_client_new (DAYTONA_PROVIDER, get_api_url (self));
      _sandbox_rest_client_set_header (self->client, "Authorization", auth);
      _sandbox_rest_client_set_header (self->client, "X-Daytona-Source", "libsandbox");
      _sandbox_rest_client_set_header (self->client, "X-Daytona-SDK-Version", DAYTONA_PROTOCOL_VERSION);
      _sandbox_rest_client_set_auth_hint (self->client, hint);
    }
  return self->client;
}

static gboolean
sandbox_daytona_backend_check_configured (SandboxBackend  *backend,
                                          GError         **error)
{
  SandboxDaytonaBackend *self = SANDBOX_DAYTONA_BACKEND (backend);
  const char *url = get_api_url (self);

  if (get_api_key (self) == NULL)
    {
      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_CONFIGURED,
                   _("The daytona backend needs an API key: set DAYTONA_API_KEY (or the backend's "
                     "api-key property). Create a key in the Daytona dashboard at %s. "
                     "See docs/backends/daytona.md."), DAYTONA_KEYS_URL);
      return FALSE;
    }
  if (!g_uri_is_valid (url, G_URI_FLAGS_NONE, NULL) ||
      !(g_str_has_prefix (url, "http://") || g_str_has_prefix (url, "https://")))
    {
      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_CONFIGURED,
                   _("DAYTONA_API_URL (or the api-url property) is “%s”, which is not an http(s) "
                     "URL. Unset it to use %s, or set it to your Daytona API, ending in /api."),
                   url, DAYTONA_DEFAULT_API_URL);
      return FALSE;
    }
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* DTOs                                                                */

SandboxInstanceState
_sandbox_daytona_state_from_string (const char *state)
{
  static const char * const starting[] = { "creating", "starting", "restoring", "pending_build",
                                           "building_snapshot", "pulling_snapshot", "resuming",
                                           "unknown", NULL };
  static const char * const stopped[] = { "stopped", "stopping", "archived", "archiving",
                                          "paused", "pausing", NULL };

  if (state == NULL)
    return SANDBOX_INSTANCE_STATE_UNKNOWN;
  if (g_str_equal (state, "started") || g_str_equal (state, "resizing") ||
      g_str_equal (state, "snapshotting") || g_str_equal (state, "forking"))
    return SANDBOX_INSTANCE_STATE_RUNNING;
  if (g_strv_contains (starting, state))
    return SANDBOX_INSTANCE_STATE_STARTING;
  if (g_strv_contains (stopped, state))
    return SANDBOX_INSTANCE_STATE_STOPPED;
  if (g_str_equal (state, "destroyed") || g_str_equal (state, "destroying"))
    return SANDBOX_INSTANCE_STATE_DESTROYED;
  if (g_str_equal (state, "error") || g_str_equal (state, "build_failed"))
    return SANDBOX_INSTANCE_STATE_FAILED;
  return SANDBOX_INSTANCE_STATE_UNKNOWN;
}

GHashTable *
_sandbox_daytona_labels_from_dto (JsonObject *dto)
{
  GHashTable *labels = _sandbox_json_get_string_map (dto, "labels", SANDBOX_CLOUD_CREATE_TOKEN);

  /* pause's own label (sandbox-daytona-instance.c) is not the user's. */
  g_hash_table_remove (labels, PAUSED_AUTO_DELETE_LABEL);
  return labels;
}

char *
_sandbox_daytona_quote_path (const char *path)
{
  return g_uri_escape_string (path, "/", TRUE);
}

/* The reply must be a sandbox object with an id, else PROTOCOL. */
static JsonObject *
expect_sandbox (JsonNode    *node,
                const char  *endpoint,
                GError     **error)
{
  const char *id;

  if (node == NULL || !JSON_NODE_HOLDS_OBJECT (node) ||
      _sandbox_json_get_string (json_node_get_object (node), "id") == NULL)
    {
      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL,
                   _("Daytona's reply to %s is not a sandbox object (no “id”). Check that "
                     "DAYTONA_API_URL points at the Daytona API (ending in /api)."), endpoint);
      return NULL;
    }
  id = _sandbox_json_get_string (json_node_get_object (node), "id");
  if (!_sandbox_cloud_id_is_valid (id))
    {
      g_autofree char *shown = _sandbox_display_text (id);

      /* The id goes into messages, URLs and the caller's scripts: a
       * provider's escape sequences would reach the user's terminal. */
      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL,
                   _("Daytona's reply to %s names a sandbox “%s”, which is not a sandbox id "
                     "(letters, digits, “.”, “_”, “:” and “-”, at most 128). Check that "
                     "DAYTONA_API_URL points at the Daytona API, and remove such a sandbox in "
                     "the Daytona dashboard."), endpoint, shown);
      return NULL;
    }
  return json_object_ref (json_node_get_object (node));
}

/* The sandboxes of a GET sandbox reply: a bare array (before v0.180) or a
 * page {"items": [...], "nextCursor": "..."}; NULL if it is neither. */
JsonArray *
_sandbox_daytona_parse_list_page (JsonNode    *node,
                                  const char **next_cursor)
{
  JsonNode *items;

  if (next_cursor != NULL)
    *next_cursor = NULL;
  if (node != NULL && JSON_NODE_HOLDS_ARRAY (node))
    return json_node_get_array (node);
  if (node == NULL || !JSON_NODE_HOLDS_OBJECT (node))
    return NULL;
  items = json_object_get_member (json_node_get_object (node), "items");
  if (items == NULL || !JSON_NODE_HOLDS_ARRAY (items))
    return NULL;
  if (next_cursor != NULL)
    *next_cursor = _sandbox_json_get_string (json_node_get_object (node), "nextCursor");
  return json_node_get_array (items);
}

static gboolean
dto_is_gone (JsonObject *dto)
{
  return _sandbox_daytona_state_from_string (_sandbox_json_get_string (dto, "state")) == SANDBOX_INSTANCE_STATE_DESTROYED;
}

static JsonArray *
parse_page (JsonNode     *reply,
            SoupMessage  *msg,
            const char  **next)
{
  return _sandbox_daytona_parse_list_page (reply, next);
}

static SandboxInstance *
listed_instance_new (SandboxBackend *backend,
                     JsonObject     *item)
{
  /* An id that is not one (escape sequences ...) is left out. */
  if (!_sandbox_cloud_id_is_valid (_sandbox_json_get_string (item, "id")) || dto_is_gone (item))
    return NULL;
  return _sandbox_daytona_instance_new (SANDBOX_DAYTONA_BACKEND (backend), item, NULL);
}

/* Daytona's label filter: the labels as a JSON object. */
static char *
label_filter (GHashTable *labels)
{
  g_autoptr(JsonNode) filter = _sandbox_json_new_string_map (labels);
  g_autofree char *json = json_to_string (filter, FALSE);
  g_autofree char *escaped = g_uri_escape_string (json, NULL, TRUE);

  return g_strconcat ("labels=", escaped, NULL);
}

const SandboxCloudApi _sandbox_daytona_api = {
  .provider = DAYTONA_PROVIDER,
  .id_member = "id",
  .labels_member = "labels",
  .item_path = "sandbox/",
  .list_path = "sandbox?limit=200",
  .reap_path = "sandbox?limit=200",
  .page_parameter = "cursor",
  .busy_retries = 120,   /* 30 s: a sandbox still starting refuses to be deleted */
  /* auto-stop carries the spec's timeout, with auto-delete 0 */
  .gone_states = (const char * const[]) {
    "stopping", "stopped", "destroying", "destroyed", "archiving", "archived", NULL
  },
  .parse_page = parse_page,
  .instance_new = listed_instance_new,
  .label_filter = label_filter,
};

/* ------------------------------------------------------------------ */
/* Create                                                              */

typedef struct
{
  char       *id;
  char       *workdir;
  char       *endpoint;     /* sandbox/{id} */
  char       *token;        /* the value of SANDBOX_CLOUD_CREATE_TOKEN */
  JsonObject *dto;
  gint64      begun;        /* monotonic, us */
  gint64      deadline;
  guint       timeout_s;
  guint       interval_ms;
} CreateData;

static void
create_data_free (CreateData *data)
{
  g_free (data->id);
  g_free (data->workdir);
  g_free (data->endpoint);
  g_free (data->token);
  g_clear_pointer (&data->dto, json_object_unref);
  g_free (data);
}

/* Fails the creation with @error after deleting the half-made sandbox. */
static void
create_fail (GTask  *task,
             GError *error)
{
  SandboxDaytonaBackend *self = g_task_get_source_object (task);
  CreateData *data = g_task_get_task_data (task);

  if (data->id == NULL)
    {
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }
  _sandbox_cloud_delete_and_fail (_sandbox_daytona_backend_get_client (self), &_sandbox_daytona_api, data->id,
                                  error, task);
}

static void create_poll (GTask *task);

/* The wait before the create's next state poll, after one of @interval_ms,
 * @elapsed_us into the create: right away first (a create answer can be
 * stale, see shared/specs/daytona-api.md 2.5), then from 5 ms growing by
 * half up to 250 ms (polls at 0, 5, 12, 22, 37, 59, 92, 141, 214 ms…), so
 * that a sandbox is seen started at most half its start time (and 5 ms)
 * late: a 40 ms start at 59 ms, a 90 ms one at 92 (doubling polled at 35,
 * 75, 155: 75 and 155), for four polls more in a second's start (13, not 9;
 * the SDK polls every 100 ms). After 5 s the SDK's schedule: x1.1
 * per poll, at most 1 s. A first poll at the SDK's fixed 100 ms made a
 * create 100 ms slower than the SDK's. */
guint
_sandbox_daytona_next_poll_ms (guint  interval_ms,
                               gint64 elapsed_us)
{
  if (elapsed_us > 5 * G_USEC_PER_SEC)
    return MIN ((guint) (interval_ms * 1.1) + 1, 1000);
  return CLAMP (interval_ms + interval_ms / 2, 5, 250);
}

/* Decides what the sandbox's latest state means. */
static void
create_check (GTask *task)
{
  SandboxDaytonaBackend *self = g_task_get_source_object (task);
  CreateData *data = g_task_get_task_data (task);
  const char *state = _sandbox_json_get_string (data->dto, "state");
  guint delay_ms;

  if (g_strcmp0 (state, "started") == 0)
    {
      g_autoptr(SandboxInstance) instance = NULL;
      g_autofree char *folder_url = NULL;
      GError *cancelled = NULL;

      /* Cancelled at the last moment: GTask would drop the instance and
       * report the cancellation, leaving the sandbox running. */
      if (g_cancellable_set_error_if_cancelled (g_task_get_cancellable (task), &cancelled))
        {
          create_fail (task, cancelled);
          return;
        }
      instance = _sandbox_daytona_instance_new (self, data->dto, data->workdir);
      /* The toolbox's files/folder does mkdir -p (spec 3.6) as the daemon's
       * user, the sandbox's OS user its commands run as (as the
       * emulator's file API does): one request, where an exec is several
       * and the daemon's poll for its end. */
      folder_url = data->workdir ? _sandbox_daytona_instance_folder_url (SANDBOX_DAYTONA_INSTANCE (instance),
                                                                         data->workdir) : NULL;
      _sandbox_cloud_return_with_workdir (_sandbox_daytona_backend_get_client (self), &_sandbox_daytona_api,
                                          instance, data->workdir, folder_url, task);
      return;
    }
  if (g_strcmp0 (state, "error") == 0 || g_strcmp0 (state, "build_failed") == 0)
    {
      /* The provider's words: shown escaped (_sandbox_display_text). */
      g_autofree char *reason = _sandbox_json_get_string (data->dto, "errorReason")
        ? _sandbox_display_text (_sandbox_json_get_string (data->dto, "errorReason")) : NULL;
      /* A build that failed (an image that cannot be pulled, a step of
       * its Dockerfile) fails again for the same spec: not a transient
       * failure a caller should retry, as SANDBOX_ERROR_FAILED may be. */
      SandboxError code = g_strcmp0 (state, "build_failed") == 0 ? SANDBOX_ERROR_INVALID_ARGUMENT
                                                                 : SANDBOX_ERROR_FAILED;

      create_fail (task, g_error_new (SANDBOX_ERROR, code,
                                      _("Daytona could not start sandbox %s (state %s): %s. It has "
                                        "been deleted. Check the image or snapshot, and the "
                                        "resources asked for."),
                                      data->id, state, reason ? reason : _("no reason given")));
      return;
    }
  if (g_strcmp0 (state, "destroyed") == 0 || g_strcmp0 (state, "destroying") == 0)
    {
      g_autofree char *reason = _sandbox_json_get_string (data->dto, "errorReason")
        ? _sandbox_display_text (_sandbox_json_get_string (data->dto, "errorReason")) : NULL;

      create_fail (task, g_error_new (SANDBOX_ERROR, SANDBOX_ERROR_FAILED,
                                      _("Daytona destroyed sandbox %s while it was starting%s%s. "
                                        "Try again; if it persists, check the organisation's "
                                        "quotas in the dashboard."),
                                      data->id, reason ? ": " : "", reason ? reason : ""));
      return;
    }
  if (g_cancellable_is_cancelled (g_task_get_cancellable (task)))
    {
      create_fail (task, g_error_new (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                      _("Creating the Daytona sandbox was cancelled; it has been deleted.")));
      return;
    }
  if (g_get_monotonic_time () >= data->deadline)
    {
      /* The provider's word: shown escaped. */
      g_autofree char *shown_state = _sandbox_display_text (state ? state : "unknown");

      create_fail (task, g_error_new (SANDBOX_ERROR, SANDBOX_ERROR_TIMEOUT,
                                      _("Daytona sandbox %s did not start within %u s (it is still "
                                        "“%s”); it has been deleted. Try again later, or raise the "
                                        "daytona backend's start-timeout."),
                                      data->id, data->timeout_s, shown_state));
      return;
    }

  delay_ms = data->interval_ms;
  data->interval_ms = _sandbox_daytona_next_poll_ms (data->interval_ms,
                                                     g_get_monotonic_time () - data->begun);
  _sandbox_cloud_task_later (task, MIN (delay_ms, (guint) ((data->deadline - g_get_monotonic_time ()) / 1000) + 1),
                             create_poll, "[libsandbox] daytona start poll");
}

static void
create_polled (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  GTask *task = user_data;
  CreateData *data = g_task_get_task_data (task);
  GError *error = NULL;
  g_autoptr(JsonNode) node = _sandbox_rest_client_call_finish (SANDBOX_REST_CLIENT (source), result,
                                                              NULL, &error);
  JsonObject *dto;

  if (node == NULL && error == NULL)
    error = g_error_new (SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL,
                         _("Daytona sent an empty reply to GET %s."), data->endpoint);
  if (error != NULL)
    {
      create_fail (task, error);
      return;
    }
  dto = expect_sandbox (node, data->endpoint, &error);
  if (dto == NULL)
    {
      create_fail (task, error);
      return;
    }
  g_clear_pointer (&data->dto, json_object_unref);
  data->dto = dto;
  create_check (task);
}

static void
create_poll (GTask *task)
{
  SandboxDaytonaBackend *self = g_task_get_source_object (task);
  CreateData *data = g_task_get_task_data (task);

  _sandbox_rest_client_call_async (_sandbox_daytona_backend_get_client (self), "GET", data->endpoint,
                                   NULL, SANDBOX_REST_IDEMPOTENT, g_task_get_cancellable (task),
                                   create_polled, task);
}

static void
create_posted (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  GTask *task = user_data;
  CreateData *data = g_task_get_task_data (task);
  GError *error = NULL;
  g_autoptr(JsonNode) node = _sandbox_rest_client_call_finish (SANDBOX_REST_CLIENT (source), result,
                                                              NULL, &error);

  if (error == NULL)
    data->dto = expect_sandbox (node, "POST sandbox", &error);
  if (error != NULL)
    {
      /* If the answer was lost or garbled, or the caller gave up waiting
       * for it, the sandbox may exist all the same: deleted first. */
      _sandbox_cloud_create_failed (_sandbox_daytona_backend_get_client (g_task_get_source_object (task)),
                                    &_sandbox_daytona_api, data->token, error, task);
      return;
    }
  data->id = g_strdup (_sandbox_json_get_string (data->dto, "id"));
  {
    g_autofree char *escaped = g_uri_escape_string (data->id, NULL, TRUE);
    data->endpoint = g_strdup_printf ("sandbox/%s", escaped);
  }
  g_debug ("Daytona sandbox %s created, state %s", data->id, _sandbox_json_get_string (data->dto, "state"));
  create_check (task);
}

static guint
gib (guint mb)
{
  return (mb + 1023) / 1024;
}

static void
sandbox_daytona_backend_create (SandboxBackend *backend,
                                SandboxSpec    *spec,
                                GCancellable   *cancellable,
                                GTask          *task)
{
  SandboxDaytonaBackend *self = SANDBOX_DAYTONA_BACKEND (backend);
  g_autoptr(JsonBuilder) b = json_builder_new ();
  g_autoptr(JsonNode) body = NULL;
  const char *image = sandbox_spec_get_image (spec);
  const char *snapshot = NULL;
  gboolean resources = sandbox_spec_get_cpu (spec) > 0 || sandbox_spec_get_memory_mb (spec) > 0 ||
                       sandbox_spec_get_disk_mb (spec) > 0 || sandbox_spec_get_gpu (spec) > 0;
  CreateData *data;
  char *token = NULL;

  if (sandbox_spec_get_mounts (spec) != NULL && sandbox_spec_get_mounts (spec)->len > 0)
    {
      g_task_return_new_error (task, SANDBOX_ERROR, SANDBOX_ERROR_NOT_SUPPORTED,
                               _("The daytona backend cannot mount host directories into a sandbox; "
                                 "upload the files instead (sandbox_instance_upload), or use the "
                                 "local backend."));
      return;
    }
  if (image != NULL && g_str_has_prefix (image, "snapshot:"))
    {
      snapshot = image + strlen ("snapshot:");
      image = NULL;
    }
  if (resources && image == NULL)
    {
      g_task_return_new_error (task, SANDBOX_ERROR, SANDBOX_ERROR_INVALID_ARGUMENT,
                               _("Daytona takes cpu, memory, disk and gpu from the snapshot, so they "
                                 "can only be chosen when the sandbox is built from an image: set "
                                 "the spec's image (for example “python:3.12-slim”), or drop the "
                                 "resources to use the %s."),
                               snapshot ? _("snapshot's") : _("default snapshot's"));
      return;
    }

  json_builder_begin_object (b);
  if (snapshot != NULL)
    {
      json_builder_set_member_name (b, "snapshot");
      json_builder_add_string_value (b, snapshot);
    }
  if (image != NULL)
    {
      g_autofree char *dockerfile = g_strdup_printf ("FROM %s\n", image);

      json_builder_set_member_name (b, "buildInfo");
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "dockerfileContent");
      json_builder_add_string_value (b, dockerfile);
      json_builder_end_object (b);
      if (sandbox_spec_get_cpu (spec) > 0)
        {
          json_builder_set_member_name (b, "cpu");
          json_builder_add_int_value (b, (gint64) ceil (sandbox_spec_get_cpu (spec)));
        }
      if (sandbox_spec_get_memory_mb (spec) > 0)
        {
          json_builder_set_member_name (b, "memory");
          json_builder_add_int_value (b, gib (sandbox_spec_get_memory_mb (spec)));
        }
      if (sandbox_spec_get_disk_mb (spec) > 0)
        {
          json_builder_set_member_name (b, "disk");
          json_builder_add_int_value (b, gib (sandbox_spec_get_disk_mb (spec)));
        }
      if (sandbox_spec_get_gpu (spec) > 0)
        {
          json_builder_set_member_name (b, "gpu");
          json_builder_add_int_value (b, sandbox_spec_get_gpu (spec));
        }
    }
  _sandbox_json_add_string_map (b, "env", sandbox_spec_get_env (spec));
  {
    g_autoptr(GHashTable) labels = _sandbox_cloud_create_labels (sandbox_spec_get_labels (spec), &token);

    _sandbox_json_add_string_map (b, "labels", labels);
  }
  json_builder_set_member_name (b, "networkBlockAll");
  json_builder_add_boolean_value (b, !sandbox_spec_get_network (spec));
  /* The sandbox's user, whose commands and files they are (the snapshot's,
   * "daytona", unless run-as-root). */
  if (sandbox_spec_get_run_as_root (spec))
    {
      json_builder_set_member_name (b, "user");
      json_builder_add_string_value (b, "root");
    }
  if (get_target (self) != NULL)
    {
      json_builder_set_member_name (b, "target");
      json_builder_add_string_value (b, get_target (self));
    }
  if (g_hash_table_size (sandbox_spec_get_volumes (spec)) > 0)
    {
      GHashTableIter iter;
      gpointer key, value;

      /* volumeId may be a name (spec §2.2). */
      json_builder_set_member_name (b, "volumes");
      json_builder_begin_array (b);
      g_hash_table_iter_init (&iter, sandbox_spec_get_volumes (spec));
      while (g_hash_table_iter_next (&iter, &key, &value))
        {
          json_builder_begin_object (b);
          json_builder_set_member_name (b, "volumeId");
          json_builder_add_string_value (b, key);
          json_builder_set_member_name (b, "mountPath");
          json_builder_add_string_value (b, value);
          json_builder_end_object (b);
        }
      json_builder_end_array (b);
    }
  if (sandbox_spec_get_timeout (spec) > 0)
    {
      /* The TTL: stop after that long without activity, delete when stopped. */
      json_builder_set_member_name (b, "autoStopInterval");
      json_builder_add_int_value (b, MAX (1, (sandbox_spec_get_timeout (spec) + 59) / 60));
      json_builder_set_member_name (b, "autoDeleteInterval");
      json_builder_add_int_value (b, 0);
    }
  json_builder_end_object (b);
  body = json_builder_get_root (b);

  data = g_new0 (CreateData, 1);
  data->workdir = g_strdup (sandbox_spec_get_workdir (spec));
  data->token = token;
  data->timeout_s = self->start_timeout ? self->start_timeout : (image ? 900 : 60);
  data->begun = g_get_monotonic_time ();
  data->deadline = data->begun + (gint64) data->timeout_s * G_USEC_PER_SEC;
  data->interval_ms = 0;      /* the next poll: see create_check () */
  g_task_set_task_data (task, data, (GDestroyNotify) create_data_free);

  /* Not retried on 5xx: a second POST could make a second sandbox. */
  _sandbox_rest_client_call_async (_sandbox_daytona_backend_get_client (self), "POST", "sandbox", body,
                                   SANDBOX_REST_NONE, cancellable, create_posted, g_object_ref (task));
}

/* ------------------------------------------------------------------ */
/* Get, list                                                           */

static void
got_instance (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  SandboxDaytonaBackend *self = g_task_get_source_object (task);
  const char *endpoint = g_task_get_task_data (task);
  GError *error = NULL;
  g_autoptr(JsonNode) node = _sandbox_rest_client_call_finish (SANDBOX_REST_CLIENT (source), result,
                                                              NULL, &error);
  g_autoptr(JsonObject) dto = NULL;
  g_autoptr(SandboxInstance) instance = NULL;

  if (error == NULL)
    dto = expect_sandbox (node, endpoint, &error);
  if (error != NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  if (dto_is_gone (dto))
    {
      g_task_return_new_error (task, SANDBOX_ERROR, SANDBOX_ERROR_NOT_FOUND,
                               _("Daytona sandbox %s has been deleted. List the live ones with "
                                 "“sandboxctl ls --backend daytona”."), _sandbox_json_get_string (dto, "id"));
      return;
    }
  instance = _sandbox_daytona_instance_new (self, dto, NULL);
  _sandbox_task_return_object (task, instance);
}

static void
sandbox_daytona_backend_get_instance (SandboxBackend *backend,
                                      const char     *id,
                                      GCancellable   *cancellable,
                                      GTask          *task)
{
  SandboxDaytonaBackend *self = SANDBOX_DAYTONA_BACKEND (backend);
  g_autofree char *escaped = g_uri_escape_string (id, NULL, TRUE);
  char *endpoint = g_strdup_printf ("sandbox/%s", escaped);

  g_task_set_task_data (task, endpoint, g_free);
  _sandbox_rest_client_call_async (_sandbox_daytona_backend_get_client (self), "GET", endpoint, NULL,
                                   SANDBOX_REST_IDEMPOTENT, cancellable, got_instance, g_object_ref (task));
}

static void
sandbox_daytona_backend_list (SandboxBackend *backend,
                              GHashTable     *labels,
                              GCancellable   *cancellable,
                              GTask          *task)
{
  SandboxDaytonaBackend *self = SANDBOX_DAYTONA_BACKEND (backend);

  _sandbox_cloud_list (_sandbox_daytona_backend_get_client (self), &_sandbox_daytona_api, labels, task);
}

/* ------------------------------------------------------------------ */
/* Volumes (since 0.2): /volumes, by name                              */

typedef struct
{
  char   *name;
  char   *by_name;      /* volumes/by-name/NAME */
  guint   polls;
} VolumeData;

static void
volume_data_free (VolumeData *data)
{
  g_free (data->name);
  g_free (data->by_name);
  g_free (data);
}

static void
volume_data_new (GTask      *task,
                 const char *name)
{
  VolumeData *data = g_new0 (VolumeData, 1);
  g_autofree char *escaped = g_uri_escape_string (name, NULL, TRUE);

  data->name = g_strdup (name);
  data->by_name = g_strdup_printf ("volumes/by-name/%s", escaped);
  g_task_set_task_data (task, data, (GDestroyNotify) volume_data_free);
}

static SandboxRestClient *
task_client (GTask *task)
{
  return _sandbox_daytona_backend_get_client (g_task_get_source_object (task));
}

/* GETs the volume @task is about (volumes/by-name/NAME, which answers 404
 * when there is none): the first step of a create, a delete and a poll. */
static void
volume_get (GTask               *task,
            GAsyncReadyCallback  callback)
{
  VolumeData *data = g_task_get_task_data (task);

  _sandbox_rest_client_call_async (task_client (task), "GET", data->by_name, NULL, SANDBOX_REST_IDEMPOTENT,
                                   g_task_get_cancellable (task), callback, g_object_ref (task));
}

static void volume_poll (GTask *task);

/* A new volume is pending_create, then creating, then ready (a sandbox
 * cannot mount it before). */
static void
volume_polled (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  VolumeData *data = g_task_get_task_data (task);
  GError *error = NULL;
  g_autoptr(JsonNode) node = _sandbox_rest_client_call_finish (SANDBOX_REST_CLIENT (source), result,
                                                              NULL, &error);
  JsonObject *dto;
  const char *state;

  if (error != NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  dto = node != NULL && JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
  state = dto != NULL ? _sandbox_json_get_string (dto, "state") : NULL;
  if (g_strcmp0 (state, "ready") == 0)
    {
      g_task_return_boolean (task, TRUE);
      return;
    }
  if (g_strcmp0 (state, "error") == 0 || data->polls >= 240)
    {
      const char *said = dto != NULL ? _sandbox_json_get_string (dto, "errorReason") : NULL;
      g_autofree char *reason = said != NULL ? _sandbox_display_text (said) : NULL;
      g_autofree char *shown_state = _sandbox_display_text (state ? state : "?");

      g_task_return_new_error (task, SANDBOX_ERROR, SANDBOX_ERROR_FAILED,
                               _("The Daytona volume “%s” did not become ready (state %s%s%s). "
                                 "Delete it with “sandboxctl volume rm %s” and create it again."),
                               data->name, shown_state, reason ? ": " : "",
                               reason ? reason : "", data->name);
      return;
    }
  data->polls++;
  _sandbox_cloud_task_later (task, 250, volume_poll, "[libsandbox] daytona volume poll");
}

static void
volume_poll (GTask *task)
{
  volume_get (task, volume_polled);
}

static void
volume_posted (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  GError *error = NULL;
  guint status = 0;
  g_autoptr(JsonNode) node = _sandbox_rest_client_call_finish (SANDBOX_REST_CLIENT (source), result,
                                                              &status, &error);

  /* 409: it exists already, which is a success once it is ready. */
  if (error != NULL && status != 409)
    {
      g_task_return_error (task, error);
      return;
    }
  g_clear_error (&error);
  volume_poll (task);
}

static void
volume_looked_up (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  VolumeData *data = g_task_get_task_data (task);
  GError *error = NULL;
  guint status = 0;
  g_autoptr(JsonNode) node = _sandbox_rest_client_call_finish (SANDBOX_REST_CLIENT (source), result,
                                                              &status, &error);
  g_autoptr(JsonBuilder) b = NULL;
  g_autoptr(JsonNode) body = NULL;

  if (error == NULL)
    {
      volume_poll (task);
      return;
    }
  if (status != 404)
    {
      g_task_return_error (task, error);
      return;
    }
  g_clear_error (&error);
  b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "name");
  json_builder_add_string_value (b, data->name);
  json_builder_end_object (b);
  body = json_builder_get_root (b);
  _sandbox_rest_client_call_async (task_client (task), "POST", "volumes", body, SANDBOX_REST_NONE,
                                   g_task_get_cancellable (task), volume_posted, g_object_ref (task));
}

static void
sandbox_daytona_backend_create_volume (SandboxBackend *backend,
                                       const char     *name,
                                       GCancellable   *cancellable,
                                       GTask          *task)
{
  volume_data_new (task, name);
  volume_get (task, volume_looked_up);
}

static void
volume_deleted (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  GError *error = NULL;
  g_autoptr(JsonNode) node = _sandbox_rest_client_call_finish (SANDBOX_REST_CLIENT (source), result,
                                                              NULL, &error);

  if (error != NULL)
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
}

static void
volume_found_for_delete (GObject      *source,
                         GAsyncResult *result,
                         gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  VolumeData *data = g_task_get_task_data (task);
  GError *error = NULL;
  guint status = 0;
  g_autoptr(JsonNode) node = _sandbox_rest_client_call_finish (SANDBOX_REST_CLIENT (source), result,
                                                              &status, &error);
  JsonObject *dto;
  const char *id;
  g_autofree char *escaped = NULL;
  g_autofree char *endpoint = NULL;

  if (error != NULL)
    {
      if (status == 404)
        {
          g_clear_error (&error);
          g_task_return_new_error (task, SANDBOX_ERROR, SANDBOX_ERROR_NOT_FOUND,
                                   _("There is no Daytona volume “%s”; list them with "
                                     "“sandboxctl volume ls --backend daytona”."), data->name);
        }
      else
        g_task_return_error (task, error);
      return;
    }
  dto = node != NULL && JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
  id = dto != NULL ? _sandbox_json_get_string (dto, "id") : NULL;
  if (id == NULL)
    {
      g_task_return_new_error (task, SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL,
                               _("Daytona described the volume “%s” without an id; check that "
                                 "the API URL (DAYTONA_API_URL) is a Daytona API."), data->name);
      return;
    }
  escaped = g_uri_escape_string (id, NULL, TRUE);
  endpoint = g_strdup_printf ("volumes/%s", escaped);
  _sandbox_rest_client_call_async (task_client (task), "DELETE", endpoint, NULL, SANDBOX_REST_IDEMPOTENT,
                                   g_task_get_cancellable (task), volume_deleted, g_object_ref (task));
}

static void
sandbox_daytona_backend_delete_volume (SandboxBackend *backend,
                                       const char     *name,
                                       GCancellable   *cancellable,
                                       GTask          *task)
{
  volume_data_new (task, name);
  volume_get (task, volume_found_for_delete);
}

static void
volumes_listed (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  GError *error = NULL;
  g_autoptr(JsonNode) node = _sandbox_rest_client_call_finish (SANDBOX_REST_CLIENT (source), result,
                                                              NULL, &error);
  g_autoptr(GStrvBuilder) names = g_strv_builder_new ();
  JsonArray *array;

  if (error != NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  array = node != NULL && JSON_NODE_HOLDS_ARRAY (node) ? json_node_get_array (node) : NULL;
  for (guint i = 0; array != NULL && i < json_array_get_length (array); i++)
    {
      JsonNode *element = json_array_get_element (array, i);
      JsonObject *dto = JSON_NODE_HOLDS_OBJECT (element) ? json_node_get_object (element) : NULL;
      const char *name = dto ? _sandbox_json_get_string (dto, "name") : NULL;
      const char *state = dto ? _sandbox_json_get_string (dto, "state") : NULL;

      if (name == NULL || g_strcmp0 (state, "deleted") == 0 ||
          g_strcmp0 (state, "deleting") == 0 || g_strcmp0 (state, "pending_delete") == 0)
        continue;
      g_strv_builder_add (names, name);
    }
  _sandbox_task_return_strv (task, g_strv_builder_end (names));
}

static void
sandbox_daytona_backend_list_volumes (SandboxBackend *backend,
                                      GCancellable   *cancellable,
                                      GTask          *task)
{
  _sandbox_rest_client_call_async (task_client (task), "GET", "volumes", NULL, SANDBOX_REST_IDEMPOTENT,
                                   cancellable, volumes_listed, g_object_ref (task));
}

/* ------------------------------------------------------------------ */
/* GObject                                                             */

static void
sandbox_daytona_backend_finalize (GObject *object)
{
  SandboxDaytonaBackend *self = SANDBOX_DAYTONA_BACKEND (object);

  g_free (self->api_key);
  g_free (self->api_url);
  g_free (self->target);
  g_clear_object (&self->client);
  G_OBJECT_CLASS (sandbox_daytona_backend_parent_class)->finalize (object);
}

static void
sandbox_daytona_backend_get_property (GObject    *object,
                                      guint       prop_id,
                                      GValue     *value,
                                      GParamSpec *pspec)
{
  SandboxDaytonaBackend *self = SANDBOX_DAYTONA_BACKEND (object);

  switch (prop_id)
    {
    case PROP_API_KEY: g_value_set_string (value, self->api_key); break;
    case PROP_API_URL: g_value_set_string (value, self->api_url); break;
    case PROP_TARGET: g_value_set_string (value, self->target); break;
    case PROP_START_TIMEOUT: g_value_set_uint (value, self->start_timeout); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
sandbox_daytona_backend_set_property (GObject      *object,
                                      guint         prop_id,
                                      const GValue *value,
                                      GParamSpec   *pspec)
{
  SandboxDaytonaBackend *self = SANDBOX_DAYTONA_BACKEND (object);

  switch (prop_id)
    {
    case PROP_API_KEY: g_free (self->api_key); self->api_key = g_value_dup_string (value); break;
    case PROP_API_URL: g_free (self->api_url); self->api_url = g_value_dup_string (value); break;
    case PROP_TARGET: g_free (self->target); self->target = g_value_dup_string (value); break;
    case PROP_START_TIMEOUT: self->start_timeout = g_value_get_uint (value); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec); return;
    }
  /* A new key or URL takes effect with the next request. */
  if (prop_id == PROP_API_KEY || prop_id == PROP_API_URL)
    g_clear_object (&self->client);
}

static SandboxBackendCapabilities
sandbox_daytona_backend_get_capabilities (SandboxBackend *backend)
{
  return SANDBOX_BACKEND_CAPABILITY_CPU_LIMIT | SANDBOX_BACKEND_CAPABILITY_MEMORY_LIMIT |
         SANDBOX_BACKEND_CAPABILITY_DISK_LIMIT | SANDBOX_BACKEND_CAPABILITY_GPU |
         SANDBOX_BACKEND_CAPABILITY_LIMITS_NEED_IMAGE | SANDBOX_BACKEND_CAPABILITY_NETWORK_POLICY |
         SANDBOX_BACKEND_CAPABILITY_IMAGES | SANDBOX_BACKEND_CAPABILITY_PORTS |
         SANDBOX_BACKEND_CAPABILITY_VOLUMES |
         SANDBOX_BACKEND_CAPABILITY_PAUSE | SANDBOX_BACKEND_CAPABILITY_METRICS |
         SANDBOX_BACKEND_CAPABILITY_TTY;
}

static void
sandbox_daytona_backend_class_init (SandboxDaytonaBackendClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  SandboxBackendClass *backend_class = SANDBOX_BACKEND_CLASS (klass);

  object_class->finalize = sandbox_daytona_backend_finalize;
  object_class->get_property = sandbox_daytona_backend_get_property;
  object_class->set_property = sandbox_daytona_backend_set_property;

  backend_class->check_configured = sandbox_daytona_backend_check_configured;
  backend_class->get_capabilities = sandbox_daytona_backend_get_capabilities;
  backend_class->create = sandbox_daytona_backend_create;
  backend_class->get_instance = sandbox_daytona_backend_get_instance;
  backend_class->list = sandbox_daytona_backend_list;
  backend_class->create_volume = sandbox_daytona_backend_create_volume;
  backend_class->delete_volume = sandbox_daytona_backend_delete_volume;
  backend_class->list_volumes = sandbox_daytona_backend_list_volumes;

  properties[PROP_API_KEY] = _sandbox_cloud_param_string ("api-key");
  properties[PROP_API_URL] = _sandbox_cloud_param_string ("api-url");
  properties[PROP_TARGET] = _sandbox_cloud_param_string ("target");
  properties[PROP_START_TIMEOUT] =
    g_param_spec_uint ("start-timeout", NULL, NULL, 0, G_MAXUINT, 0,
                       G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
sandbox_daytona_backend_init (SandboxDaytonaBackend *self)
{
}
