/* libsandbox - the E2B backend: the control plane
 *
 * Sandboxes are created, found, listed and killed through the E2B REST API
 * (X-API-Key auth); everything inside a sandbox goes to its envd
 * (sandbox-e2b-instance.c). Facts: /work/shared/specs/e2b-api.md.
 *
 * Configuration: properties, else the environment the official SDKs read:
 *   api-key     E2B_API_KEY       (required)
 *   domain      E2B_DOMAIN        (default e2b.app)
 *   api-url     E2B_API_URL       (default https://api.<domain>)
 *   sandbox-url E2B_SANDBOX_URL   (default: per sandbox, from its domain)
 *   template    E2B_TEMPLATE      (default "base"; a spec's image wins)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "sandbox-e2b-private.h"

struct _SandboxE2bBackend
{
  SandboxBackend     parent_instance;

  char              *api_key;
  char              *api_url;
  char              *domain;
  char              *sandbox_url;
  char              *template_id;
  SandboxRestClient *api;
};

G_DEFINE_FINAL_TYPE (SandboxE2bBackend, sandbox_e2b_backend, SANDBOX_TYPE_BACKEND)

enum {
  PROP_0,
  PROP_API_KEY,
  PROP_API_URL,
  PROP_DOMAIN,
  PROP_SANDBOX_URL,
  PROP_TEMPLATE,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static const char *
get_api_key (SandboxE2bBackend *self)
{
  return _sandbox_cloud_setting (self->api_key, "E2B_API_KEY");
}

static const char *
get_domain (SandboxE2bBackend *self)
{
  const char *domain = _sandbox_cloud_setting (self->domain, "E2B_DOMAIN");

  return domain ? domain : E2B_DEFAULT_DOMAIN;
}

static char *
get_api_url (SandboxE2bBackend *self)
{
  const char *url = _sandbox_cloud_setting (self->api_url, "E2B_API_URL");

  return url ? g_strdup (url) : g_strdup_printf ("https://api.%s", get_domain (self));
}

SandboxRestClient *
_sandbox_e2b_backend_get_api (SandboxE2bBackend *self)
{
  if (self->api == NULL)
    {
      g_autofree char *url = get_api_url (self);

      self->api = _sandbox_rest_client_new ("E2B", url);
      _sandbox_rest_client_set_auth_hint (self->api, E2B_KEY_HINT);
    }
  /* The key may have been set since. */
  _sandbox_rest_client_set_header (self->api, "X-API-Key", get_api_key (self));
  return self->api;
}

char *
_sandbox_e2b_backend_envd_url (SandboxE2bBackend *self,
                               const char        *sandbox_id,
                               const char        *domain)
{
  static const char * const shared[] = { "e2b.app", "e2b.dev", "e2b.pro", "e2b-staging.dev", NULL };
  const char *url = _sandbox_cloud_setting (self->sandbox_url, "E2B_SANDBOX_URL");

  if (url != NULL)
    return g_strdup (url);
  if (domain == NULL || *domain == '\0')
    domain = get_domain (self);
  if (g_strv_contains (shared, domain))
    return g_strdup_printf ("https://sandbox.%s", domain);
  return g_strdup_printf ("https://%d-%s.%s", E2B_ENVD_PORT, sandbox_id, domain);
}

char *
_sandbox_e2b_backend_port_url (SandboxE2bBackend *self,
                               const char        *sandbox_id,
                               const char        *domain,
                               guint              port)
{
  const char *url = _sandbox_cloud_setting (self->sandbox_url, "E2B_SANDBOX_URL");
  const char *scheme = url != NULL && g_str_has_prefix (url, "http://") ? "http" : "https";

  if (domain == NULL || *domain == '\0')
    domain = get_domain (self);
  return g_strdup_printf ("%s://%u-%s.%s", scheme, port, sandbox_id, domain);
}

/* ------------------------------------------------------------------ */

static gboolean
sandbox_e2b_backend_check_configured (SandboxBackend  *backend,
                                      GError         **error)
{
  SandboxE2bBackend *self = SANDBOX_E2B_BACKEND (backend);

  if (get_api_key (self) == NULL)
    {
      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_NOT_CONFIGURED,
                   _("The e2b backend needs an API key: set E2B_API_KEY (or the api-key "
                     "property). Keys are created at https://e2b.dev/dashboard?tab=keys."));
      return FALSE;
    }
  return TRUE;
}

static gboolean
configured_or_fail (SandboxE2bBackend *self,
                    GTask             *task)
{
  GError *error = NULL;

  if (sandbox_e2b_backend_check_configured (SANDBOX_BACKEND (self), &error))
    return TRUE;
  g_task_return_error (task, error);
  return FALSE;
}

static SandboxInstance *
instance_from_node (SandboxE2bBackend  *self,
                    JsonNode           *node,
                    GError            **error)
{
  SandboxInstance *instance;
  const char *id;

  if (node == NULL)
    {
      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL,
                   _("E2B answered with an empty body where a sandbox was expected; retry later."));
      return NULL;
    }
  id = JSON_NODE_HOLDS_OBJECT (node) ? _sandbox_json_get_string (json_node_get_object (node), "sandboxID") : NULL;
  if (id != NULL && !_sandbox_cloud_id_is_valid (id))
    {
      g_autofree char *shown = _sandbox_display_text (id);

      /* It would go into messages, the envd URL and the caller's scripts. */
      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL,
                   _("E2B named a sandbox “%s”, which is not a sandbox id (letters, digits, "
                     "“.”, “_”, “:” and “-”, at most 128). Check E2B_API_URL, and kill such a "
                     "sandbox in the E2B dashboard."), shown);
      return NULL;
    }
  if (!JSON_NODE_HOLDS_OBJECT (node) ||
      (instance = _sandbox_e2b_instance_new (self, json_node_get_object (node))) == NULL)
    {
      g_set_error (error, SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL,
                   _("E2B answered with something that is not a sandbox (no sandboxID); retry "
                     "later, and report it to E2B if it persists."));
      return NULL;
    }
  return instance;
}

static void
instance_from_reply (GObject      *source,
                     GAsyncResult *result,
                     gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  SandboxE2bBackend *self = g_task_get_source_object (task);
  g_autoptr(JsonNode) node = NULL;
  SandboxInstance *instance;
  GError *error = NULL;

  node = _sandbox_rest_client_call_finish (SANDBOX_REST_CLIENT (source), result, NULL, &error);
  if (error != NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  instance = instance_from_node (self, node, &error);
  if (instance == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  _sandbox_task_return_object (task, instance);
  g_object_unref (instance);
}

/* create: POST /sandboxes, not retried (it could start two sandboxes).
 * When its outcome is unknown (the answer was lost, garbled or late, or
 * the call was cancelled), the sandbox it may have made is found by its
 * create token and killed before the error is returned. */

typedef struct
{
  GHashTable *labels;     /* asked for: the create answer does not repeat them */
  char       *token;      /* the value of SANDBOX_CLOUD_CREATE_TOKEN */
  char       *workdir;    /* SandboxSpec:workdir, or NULL */
  gboolean    as_root;    /* SandboxSpec:run-as-root */
} CreateData;

static void
create_data_free (CreateData *data)
{
  g_clear_pointer (&data->labels, g_hash_table_unref);
  g_free (data->token);
  g_free (data->workdir);
  g_free (data);
}

static JsonArray *
parse_page (JsonNode     *reply,
            SoupMessage  *msg,
            const char  **next)
{
  if (next != NULL)
    *next = msg ? soup_message_headers_get_one (soup_message_get_response_headers (msg), "X-Next-Token") : NULL;
  return reply != NULL && JSON_NODE_HOLDS_ARRAY (reply) ? json_node_get_array (reply) : NULL;
}

static SandboxInstance *
listed_instance_new (SandboxBackend *backend,
                     JsonObject     *item)
{
  return _sandbox_e2b_instance_new (SANDBOX_E2B_BACKEND (backend), item);
}

/* E2B's metadata filter: each key and value encoded, then k=v&k2=v2 (as
 * the SDKs send it), encoded again. */
static char *
label_filter (GHashTable *labels)
{
  g_autoptr(GString) filter = g_string_new (NULL);
  g_autofree char *escaped = NULL;
  GHashTableIter iter;
  gpointer key, value;

  g_hash_table_iter_init (&iter, labels);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      g_autofree char *k = g_uri_escape_string (key, NULL, FALSE);
      g_autofree char *v = g_uri_escape_string (value, NULL, FALSE);

      g_string_append_printf (filter, "%s%s=%s", filter->len ? "&" : "", k, v);
    }
  escaped = g_uri_escape_string (filter->str, NULL, FALSE);
  return g_strconcat ("metadata=", escaped, NULL);
}

const SandboxCloudApi _sandbox_e2b_api = {
  .provider = "E2B",
  .id_member = "sandboxID",
  .labels_member = "metadata",
  .item_path = "sandboxes/",
  .list_path = "v2/sandboxes?state=running,paused&limit=100",
  .reap_path = "v2/sandboxes?limit=100",
  .page_parameter = "nextToken",
  .busy_retries = 0,
  .parse_page = parse_page,
  .instance_new = listed_instance_new,
  .label_filter = label_filter,
};

static void
create_posted (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  GTask *task = user_data;   /* owned */
  SandboxE2bBackend *self = g_task_get_source_object (task);
  CreateData *data = g_task_get_task_data (task);
  g_autoptr(JsonNode) node = NULL;
  SandboxInstance *instance = NULL;
  GError *error = NULL;

  node = _sandbox_rest_client_call_finish (SANDBOX_REST_CLIENT (source), result, NULL, &error);
  if (error == NULL)
    instance = instance_from_node (self, node, &error);
  if (instance != NULL && g_cancellable_is_cancelled (g_task_get_cancellable (task)))
    {
      /* Made, but the caller gave up on it: do not leave it running. */
      g_clear_object (&instance);
      g_cancellable_set_error_if_cancelled (g_task_get_cancellable (task), &error);
    }
  if (error != NULL)
    {
      /* A refusal (4xx) made nothing; any other failure may have. */
      _sandbox_cloud_create_failed (_sandbox_e2b_backend_get_api (self), &_sandbox_e2b_api, data->token,
                                    error, task);
      return;
    }
  sandbox_instance_set_labels (instance, data->labels);
  if (data->as_root)
    _sandbox_e2b_instance_set_root (instance);
  _sandbox_e2b_instance_set_workdir (instance, data->workdir);
  _sandbox_cloud_return_with_workdir (_sandbox_e2b_backend_get_api (self), &_sandbox_e2b_api, instance,
                                      data->workdir, NULL, task);
  g_object_unref (instance);
}

static void
sandbox_e2b_backend_create (SandboxBackend *backend,
                            SandboxSpec    *spec,
                            GCancellable   *cancellable,
                            GTask          *task)
{
  SandboxE2bBackend *self = SANDBOX_E2B_BACKEND (backend);
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(JsonNode) body = NULL;
  const char *template_id = sandbox_spec_get_image (spec);
  guint ttl = sandbox_spec_get_timeout (spec);
  g_autoptr(GHashTable) metadata = NULL;
  g_autofree char *token = NULL;
  CreateData *data;

  if (!configured_or_fail (self, task))
    return;
  if (sandbox_spec_get_mounts (spec) != NULL && sandbox_spec_get_mounts (spec)->len > 0)
    {
      g_task_return_new_error (task, SANDBOX_ERROR, SANDBOX_ERROR_NOT_SUPPORTED,
                               _("E2B sandboxes cannot mount host directories; upload the files "
                                 "after creating the sandbox instead."));
      return;
    }
  if (template_id == NULL || *template_id == '\0')
    template_id = _sandbox_cloud_setting (self->template_id, "E2B_TEMPLATE");

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "templateID");
  json_builder_add_string_value (builder, template_id ? template_id : E2B_DEFAULT_TEMPLATE);
  json_builder_set_member_name (builder, "timeout");
  json_builder_add_int_value (builder, ttl > 0 ? ttl : E2B_DEFAULT_TTL_S);
  metadata = _sandbox_cloud_create_labels (sandbox_spec_get_labels (spec), &token);
  /* Commands and files as root: said in the metadata, so that an instance
   * got again by id (another process) knows it too. */
  if (sandbox_spec_get_run_as_root (spec))
    g_hash_table_insert (metadata, (char *) SANDBOX_E2B_USER_KEY, (char *) "root");
  _sandbox_json_add_string_map (builder, "metadata", metadata);
  _sandbox_json_add_string_map (builder, "envVars", sandbox_spec_get_env (spec));
  json_builder_set_member_name (builder, "secure");
  json_builder_add_boolean_value (builder, TRUE);
  json_builder_set_member_name (builder, "allow_internet_access");
  json_builder_add_boolean_value (builder, sandbox_spec_get_network (spec));
  json_builder_end_object (builder);
  body = json_builder_get_root (builder);

  data = g_new0 (CreateData, 1);
  data->labels = g_hash_table_ref (sandbox_spec_get_labels (spec));
  data->token = g_steal_pointer (&token);
  data->as_root = sandbox_spec_get_run_as_root (spec);
  data->workdir = g_strdup (sandbox_spec_get_workdir (spec));
  g_task_set_task_data (task, data, (GDestroyNotify) create_data_free);
  /* Not idempotent: a retried create could start two sandboxes. */
  _sandbox_rest_client_call_async (_sandbox_e2b_backend_get_api (self), "POST", "sandboxes", body,
                                   SANDBOX_REST_NONE, cancellable, create_posted,
                                   g_object_ref (task));
}

static void
sandbox_e2b_backend_get_instance (SandboxBackend *backend,
                                  const char     *id,
                                  GCancellable   *cancellable,
                                  GTask          *task)
{
  SandboxE2bBackend *self = SANDBOX_E2B_BACKEND (backend);
  g_autofree char *escaped = NULL;
  g_autofree char *path = NULL;

  if (!configured_or_fail (self, task))
    return;
  escaped = g_uri_escape_string (id, NULL, FALSE);
  path = g_strdup_printf ("sandboxes/%s", escaped);
  _sandbox_rest_client_call_async (_sandbox_e2b_backend_get_api (self), "GET", path, NULL,
                                   SANDBOX_REST_IDEMPOTENT, cancellable, instance_from_reply,
                                   g_object_ref (task));
}

/* list: GET /v2/sandboxes, page by page (idempotent: retried); the next
 * page's token is in the X-Next-Token header. */
static void
sandbox_e2b_backend_list (SandboxBackend *backend,
                          GHashTable     *labels,
                          GCancellable   *cancellable,
                          GTask          *task)
{
  SandboxE2bBackend *self = SANDBOX_E2B_BACKEND (backend);

  if (!configured_or_fail (self, task))
    return;
  _sandbox_cloud_list (_sandbox_e2b_backend_get_api (self), &_sandbox_e2b_api, labels, task);
}

/* ------------------------------------------------------------------ */

static void
sandbox_e2b_backend_get_property (GObject    *object,
                                  guint       prop_id,
                                  GValue     *value,
                                  GParamSpec *pspec)
{
  SandboxE2bBackend *self = SANDBOX_E2B_BACKEND (object);

  switch (prop_id)
    {
    case PROP_API_KEY: g_value_set_string (value, self->api_key); break;
    case PROP_API_URL: g_value_take_string (value, get_api_url (self)); break;
    case PROP_DOMAIN: g_value_set_string (value, get_domain (self)); break;
    case PROP_SANDBOX_URL: g_value_set_string (value, _sandbox_cloud_setting (self->sandbox_url, "E2B_SANDBOX_URL")); break;
    case PROP_TEMPLATE: g_value_set_string (value, self->template_id); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
sandbox_e2b_backend_set_property (GObject      *object,
                                  guint         prop_id,
                                  const GValue *value,
                                  GParamSpec   *pspec)
{
  SandboxE2bBackend *self = SANDBOX_E2B_BACKEND (object);
  char **field;

  switch (prop_id)
    {
    case PROP_API_KEY: field = &self->api_key; break;
    case PROP_API_URL: field = &self->api_url; break;
    case PROP_DOMAIN: field = &self->domain; break;
    case PROP_SANDBOX_URL: field = &self->sandbox_url; break;
    case PROP_TEMPLATE: field = &self->template_id; break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec); return;
    }
  g_free (*field);
  *field = g_value_dup_string (value);
  if (prop_id == PROP_API_URL || prop_id == PROP_DOMAIN)
    g_clear_object (&self->api);
}

static void
sandbox_e2b_backend_finalize (GObject *object)
{
  SandboxE2bBackend *self = SANDBOX_E2B_BACKEND (object);

  g_clear_object (&self->api);
  g_free (self->api_key);
  g_free (self->api_url);
  g_free (self->domain);
  g_free (self->sandbox_url);
  g_free (self->template_id);
  G_OBJECT_CLASS (sandbox_e2b_backend_parent_class)->finalize (object);
}

static SandboxBackendCapabilities
sandbox_e2b_backend_get_capabilities (SandboxBackend *backend)
{
  return SANDBOX_BACKEND_CAPABILITY_NETWORK_POLICY | SANDBOX_BACKEND_CAPABILITY_IMAGES |
         SANDBOX_BACKEND_CAPABILITY_PORTS |
         SANDBOX_BACKEND_CAPABILITY_PAUSE | SANDBOX_BACKEND_CAPABILITY_METRICS |
         SANDBOX_BACKEND_CAPABILITY_TTY;
}

static char *
sandbox_e2b_backend_dup_default_workdir (SandboxBackend *backend)
{
  return g_strdup (E2B_DEFAULT_WORKDIR);
}

static void
sandbox_e2b_backend_class_init (SandboxE2bBackendClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  SandboxBackendClass *backend_class = SANDBOX_BACKEND_CLASS (klass);

  object_class->get_property = sandbox_e2b_backend_get_property;
  object_class->set_property = sandbox_e2b_backend_set_property;
  object_class->finalize = sandbox_e2b_backend_finalize;

  backend_class->check_configured = sandbox_e2b_backend_check_configured;
  backend_class->get_capabilities = sandbox_e2b_backend_get_capabilities;
  backend_class->dup_default_workdir = sandbox_e2b_backend_dup_default_workdir;
  backend_class->create = sandbox_e2b_backend_create;
  backend_class->get_instance = sandbox_e2b_backend_get_instance;
  backend_class->list = sandbox_e2b_backend_list;

  properties[PROP_API_KEY] = _sandbox_cloud_param_string ("api-key");
  properties[PROP_API_URL] = _sandbox_cloud_param_string ("api-url");
  properties[PROP_DOMAIN] = _sandbox_cloud_param_string ("domain");
  properties[PROP_SANDBOX_URL] = _sandbox_cloud_param_string ("sandbox-url");
  properties[PROP_TEMPLATE] = _sandbox_cloud_param_string ("template");
  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
sandbox_e2b_backend_init (SandboxE2bBackend *self)
{
}
