/* E2B API emulator: the server, its thread, the control plane
 *
 * One SoupServer on 127.0.0.1, port chosen by the kernel. A request that
 * carries E2b-Sandbox-Id (or whose Host is "<port>-<id>.<domain>") is for
 * envd (e2b-emulator-envd.c); anything else is the control plane.
 * Facts: /work/shared/specs/e2b-api.md, section 1.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>
#include <glib/gstdio.h>

#include "e2b-emulator-private.h"

#define DEFAULT_TIMEOUT_S 15
#define BOOT_ID_PATH      "/proc/sys/kernel/random/boot_id"
#define E2B_ENVD_PORT_EMU 49983

/* ------------------------------------------------------------------ */
/* Replies                                                             */

void
_emu_reply_json (SoupServerMessage *msg,
                 guint              status,
                 JsonNode          *node)
{
  g_autofree char *text = json_to_string (node, FALSE);

  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_COPY,
                                    text, strlen (text));
  json_node_unref (node);
}

/* Replies @status with {"code": @code (taken), "message": ...}. */
static void reply_error_node (SoupServerMessage *msg,
                              guint              status,
                              JsonNode          *code,
                              const char        *format,
                              va_list            args) G_GNUC_PRINTF (4, 0);

static void
reply_error_node (SoupServerMessage *msg,
                  guint              status,
                  JsonNode          *code,
                  const char        *format,
                  va_list            args)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autofree char *message = g_strdup_vprintf (format, args);

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "code");
  json_builder_add_value (builder, code);
  json_builder_set_member_name (builder, "message");
  json_builder_add_string_value (builder, message);
  json_builder_end_object (builder);
  _emu_reply_json (msg, status, json_builder_get_root (builder));
}

void
_emu_reply_error (SoupServerMessage *msg,
                  guint              status,
                  const char        *format,
                  ...)
{
  JsonNode *code = json_node_new (JSON_NODE_VALUE);
  va_list args;

  json_node_set_int (code, status);
  va_start (args, format);
  reply_error_node (msg, status, code, format, args);
  va_end (args);
}

void
_emu_reply_connect_error (SoupServerMessage *msg,
                          const char        *code,
                          const char        *format,
                          ...)
{
  JsonNode *code_node = json_node_new (JSON_NODE_VALUE);
  va_list args;

  json_node_set_string (code_node, code);
  va_start (args, format);
  reply_error_node (msg, _sandbox_connect_code_to_status (code), code_node, format, args);
  va_end (args);
}

JsonNode *
_emu_parse_json (GBytes *bytes)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  gsize len = 0;
  const char *data = bytes ? g_bytes_get_data (bytes, &len) : NULL;

  if (data == NULL || len == 0 ||
      !json_parser_load_from_data (parser, data, (gssize) len, NULL) ||
      json_parser_get_root (parser) == NULL)
    return NULL;
  return json_node_copy (json_parser_get_root (parser));
}

GBytes *
_emu_request_body (SoupServerMessage *msg)
{
  SoupMessageBody *body = soup_server_message_get_request_body (msg);

  return soup_message_body_flatten (body);
}

char *
_emu_rfc3339 (gint64 unix_usec)
{
  g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc (unix_usec / G_USEC_PER_SEC);

  return g_date_time_format (dt, "%Y-%m-%dT%H:%M:%SZ");
}

/* ------------------------------------------------------------------ */
/* Sandboxes                                                           */

static void
sandbox_free (EmuSandbox *sandbox)
{
  if (sandbox->ttl != NULL)
    {
      g_source_destroy (sandbox->ttl);
      g_source_unref (sandbox->ttl);
    }
  g_clear_pointer (&sandbox->processes, g_hash_table_unref);
  g_clear_pointer (&sandbox->watchers, g_hash_table_unref);
  g_clear_object (&sandbox->instance);
  g_clear_pointer (&sandbox->metadata, g_hash_table_unref);
  g_clear_pointer (&sandbox->envs, g_hash_table_unref);
  g_clear_pointer (&sandbox->started, g_date_time_unref);
  g_free (sandbox->host_root);
  g_free (sandbox->rootfs);
  g_free (sandbox->image_how);
  g_free (sandbox->image_name);
  g_free (sandbox->traffic_token);
  g_strfreev (sandbox->egress_allow);
  g_strfreev (sandbox->egress_deny);
  g_free (sandbox->id);
  g_free (sandbox->template_id);
  g_free (sandbox->access_token);
  g_free (sandbox);
}

static gboolean
remove_tree (const char *path)
{
  g_autoptr(GFile) file = g_file_new_for_path (path);
  g_autoptr(GFileEnumerator) children = NULL;
  GFileInfo *info;
  GFile *child;

  children = g_file_enumerate_children (file, G_FILE_ATTRIBUTE_STANDARD_NAME "," G_FILE_ATTRIBUTE_STANDARD_TYPE,
                                        G_FILE_QUERY_INFO_NOFOLLOW_SYMLINKS, NULL, NULL);
  while (children != NULL &&
         g_file_enumerator_iterate (children, &info, &child, NULL, NULL) && info != NULL)
    {
      if (g_file_info_get_file_type (info) == G_FILE_TYPE_DIRECTORY)
        remove_tree (g_file_peek_path (child));
      else
        g_file_delete (child, NULL, NULL);
    }
  return g_file_delete (file, NULL, NULL);
}

/* Kills a sandbox: its processes, its local instance, its files. */
static void
sandbox_kill (E2bEmulator *emu,
              const char  *id)
{
  EmuSandbox *sandbox = g_hash_table_lookup (emu->sandboxes, id);
  g_autoptr(GError) error = NULL;

  if (sandbox == NULL)
    return;
  g_hash_table_steal (emu->sandboxes, id);
  g_atomic_int_dec_and_test (&emu->live);

  _emu_envd_sandbox_gone (sandbox);
  if (sandbox->instance != NULL && !sandbox_instance_destroy (sandbox->instance, NULL, &error))
    g_warning ("e2b-emulator: destroying the local sandbox of %s: %s", sandbox->id, error->message);
  remove_tree (sandbox->host_root);
  sandbox_free (sandbox);
}

/* Pauses a running sandbox: with MEMORY its local sandbox is frozen (its
 * processes resume where they were); without, only its files are kept:
 * its processes end and the local sandbox goes, a resume boots it anew. */
static gboolean
sandbox_pause (EmuSandbox  *sandbox,
               gboolean     memory,
               GError     **error)
{
  if (memory)
    {
      if (!sandbox_instance_pause (sandbox->instance, NULL, error))
        return FALSE;
    }
  else
    {
      _emu_envd_sandbox_gone (sandbox);
      if (!sandbox_instance_destroy (sandbox->instance, NULL, error))
        return FALSE;
      g_clear_object (&sandbox->instance);
      sandbox->cold = TRUE;
    }
  /* A paused sandbox does not time out. */
  if (sandbox->ttl != NULL)
    {
      g_source_destroy (sandbox->ttl);
      g_clear_pointer (&sandbox->ttl, g_source_unref);
    }
  sandbox->paused = TRUE;
  return TRUE;
}

static gboolean
sandbox_expired (gpointer user_data)
{
  EmuSandbox *sandbox = user_data;
  g_autoptr(GError) error = NULL;

  g_debug ("e2b-emulator: sandbox %s reached its timeout", sandbox->id);
  /* lifecycle.onTimeout "pause" (autoPause): paused, not killed. */
  if (sandbox->auto_pause && !sandbox->paused)
    {
      if (sandbox_pause (sandbox, sandbox->auto_pause_memory, &error))
        return G_SOURCE_REMOVE;
      g_warning ("e2b-emulator: pausing %s on its timeout: %s; killing it", sandbox->id, error->message);
    }
  sandbox_kill (sandbox->emu, sandbox->id);
  return G_SOURCE_REMOVE;
}

static void
sandbox_set_timeout (EmuSandbox *sandbox,
                     gint64      seconds)
{
  if (sandbox->ttl != NULL)
    {
      g_source_destroy (sandbox->ttl);
      g_source_unref (sandbox->ttl);
    }
  seconds = MAX (seconds, 0);
  sandbox->end_at = g_get_real_time () + seconds * G_USEC_PER_SEC;
  sandbox->ttl = g_timeout_source_new ((guint) MIN (seconds * 1000, G_MAXUINT));
  g_source_set_callback (sandbox->ttl, sandbox_expired, sandbox, NULL);
  g_source_set_static_name (sandbox->ttl, "[e2b-emulator] sandbox timeout");
  g_source_attach (sandbox->ttl, sandbox->emu->context);
}

static char *
new_sandbox_id (void)
{
  static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  GString *id = g_string_new ("i");

  for (guint i = 0; i < 20; i++)
    g_string_append_c (id, alphabet[g_random_int_range (0, sizeof alphabet - 1)]);
  return g_string_free (id, FALSE);
}

static char *
new_token (void)
{
  GString *token = g_string_new (NULL);

  for (guint i = 0; i < 4; i++)
    g_string_append_printf (token, "%08x", g_random_int ());
  return g_string_free (token, FALSE);
}

#define ADD_STRING(b, k, v) G_STMT_START { json_builder_set_member_name (b, k); json_builder_add_string_value (b, v); } G_STMT_END
#define ADD_INT(b, k, v) G_STMT_START { json_builder_set_member_name (b, k); json_builder_add_int_value (b, v); } G_STMT_END

/* kind: 0 = Sandbox (create/connect), 1 = SandboxDetail, 2 = ListedSandbox */
static JsonNode *
sandbox_to_json (EmuSandbox *sandbox,
                 int         kind)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();

  json_builder_begin_object (builder);
  ADD_STRING (builder, "templateID", sandbox->template_id);
  ADD_STRING (builder, "sandboxID", sandbox->id);
  ADD_STRING (builder, "clientID", E2B_EMU_CLIENT_ID);
  ADD_STRING (builder, "envdVersion", E2B_EMU_ENVD_VERSION);
  if (kind != 2)
    {
      ADD_STRING (builder, "envdAccessToken", sandbox->access_token);
      ADD_STRING (builder, "domain", E2B_EMU_DOMAIN);
      if (sandbox->traffic_token != NULL)
        ADD_STRING (builder, "trafficAccessToken", sandbox->traffic_token);
    }
  if (kind != 0)
    {
      g_autofree char *started = _emu_rfc3339 (g_date_time_to_unix (sandbox->started) * G_USEC_PER_SEC);
      g_autofree char *end = _emu_rfc3339 (sandbox->end_at);

      ADD_STRING (builder, "startedAt", started);
      ADD_STRING (builder, "endAt", end);
      ADD_INT (builder, "cpuCount", 2);
      ADD_INT (builder, "memoryMB", 512);
      ADD_INT (builder, "diskSizeMB", 1024);
      ADD_STRING (builder, "state", sandbox->paused ? "paused" : "running");
      _sandbox_json_add_string_map (builder, "metadata", sandbox->metadata);
      if (kind == 1)
        {
          json_builder_set_member_name (builder, "lifecycle");
          json_builder_begin_object (builder);
          json_builder_set_member_name (builder, "autoResume");
          json_builder_add_boolean_value (builder, sandbox->auto_resume);
          ADD_STRING (builder, "onTimeout", sandbox->auto_pause ? "pause" : "kill");
          json_builder_end_object (builder);
        }
    }
  json_builder_end_object (builder);
  return json_builder_get_root (builder);
}

/* ------------------------------------------------------------------ */
/* Templates and network rules (docs/testing.md, "Images in the
 * emulators", "Network rules")                                        */

/* The default mapping: E2B's public templates run on the host's root. */
static const char default_images[] =
  "base = host\n"
  "rki5dems9wqfm4r03t7g = host\n"   /* base's id */
  "code-interpreter-v1 = host\n"
  "code-interpreter-beta = host\n"
  "desktop = host\n";

/* What a sandbox's network is: the network or none, and the egress rules
 * (addresses and CIDR blocks) its local sandbox applies. */
typedef struct
{
  gboolean   network;
  GPtrArray *allow;   /* char *, NULL-terminated when not empty */
  GPtrArray *deny;
} EmuNet;

static void
emu_net_clear (EmuNet *net)
{
  g_clear_pointer (&net->allow, g_ptr_array_unref);
  g_clear_pointer (&net->deny, g_ptr_array_unref);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (EmuNet, emu_net_clear)

static const char * const *
emu_net_list (GPtrArray *list)
{
  return list != NULL && list->len > 1 ? (const char * const *) list->pdata : NULL;
}

static gboolean
is_all_traffic (const char *entry)
{
  return strcmp (entry, "0.0.0.0/0") == 0;
}

/* A domain name as E2B's allowOut takes it: labels of letters, digits and
 * hyphens ("*." in front for its subdomains). */
static gboolean
is_domain (const char *entry)
{
  const char *p = g_str_has_prefix (entry, "*.") ? entry + 2 : entry;

  if (*p == '\0' || strchr (p, '.') == NULL || strlen (p) > 253)
    return FALSE;
  for (; *p != '\0'; p++)
    if (!g_ascii_isalnum (*p) && *p != '-' && *p != '.')
      return FALSE;
  return TRUE;
}

/* Adds the nameservers the sandbox's resolver uses (the host's
 * /etc/resolv.conf) and 8.8.8.8, which the service lets through whenever
 * a rule names a domain, so that names still resolve. */
static void
add_nameservers (GPtrArray *allow)
{
  g_autofree char *conf = NULL;
  g_auto(GStrv) lines = NULL;

  g_ptr_array_add (allow, g_strdup ("8.8.8.8"));
  if (!g_file_get_contents ("/etc/resolv.conf", &conf, NULL, NULL))
    return;
  lines = g_strsplit (conf, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      g_auto(GStrv) words = g_strsplit_set (g_strstrip (lines[i]), " \t", -1);
      g_autoptr(GInetAddress) address = NULL;

      if (g_strv_length (words) >= 2 && strcmp (words[0], "nameserver") == 0 &&
          (address = g_inet_address_new_from_string (words[1])) != NULL)
        g_ptr_array_add (allow, g_inet_address_to_string (address));
    }
}

/* Reads network.allowOut and network.denyOut (@rules: a create's
 * "network" or an update's body, may be NULL) and allow_internet_access
 * (@allow: -1 when absent; false is denyOut ["0.0.0.0/0"], as in the
 * service) into @net. Entries are IPv4/IPv6 addresses and CIDR blocks,
 * applied by the local sandbox's pid 1 to every connect() and datagram
 * (docs/testing.md, "Network rules"); allowOut may name domains, which
 * are resolved here, once, to their addresses (the service matches the
 * TLS server name or Host header instead). Allowed entries take precedence
 * over denied ones. Without entries, or with denyOut ["0.0.0.0/0"] alone,
 * the local sandbox has the network or none at all. FALSE with @refusal
 * set for what cannot be applied. */
static gboolean
network_rules (JsonObject *rules,
               int         allow,
               gboolean    fallback,
               EmuNet     *net,
               char      **refusal)
{
  static const char * const unsupported[] = { "dnsServers", "rules", "egressProxy", NULL };
  static const char * const members[] = { "allowOut", "denyOut" };
  gboolean any_domain = FALSE, deny_all = allow == 0;

  net->allow = g_ptr_array_new_with_free_func (g_free);
  net->deny = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; rules != NULL && unsupported[i] != NULL; i++)
    {
      JsonNode *node = json_object_get_member (rules, unsupported[i]);

      if (node != NULL && !JSON_NODE_HOLDS_NULL (node) &&
          !(JSON_NODE_HOLDS_ARRAY (node) && json_array_get_length (json_node_get_array (node)) == 0) &&
          !(JSON_NODE_HOLDS_OBJECT (node) && json_object_get_size (json_node_get_object (node)) == 0))
        {
          *refusal = g_strdup_printf ("network.%s cannot be applied by the E2B emulator: its sandboxes "
                                      "filter connections by address only (allowOut, denyOut; see "
                                      "docs/testing.md)", unsupported[i]);
          return FALSE;
        }
    }
  for (guint m = 0; m < G_N_ELEMENTS (members); m++)
    {
      JsonNode *node = rules ? json_object_get_member (rules, members[m]) : NULL;
      JsonArray *array;

      if (node == NULL || JSON_NODE_HOLDS_NULL (node))
        continue;
      if (!JSON_NODE_HOLDS_ARRAY (node))
        {
          *refusal = g_strdup_printf ("request body has an error: network.%s must be an array of strings",
                                      members[m]);
          return FALSE;
        }
      array = json_node_get_array (node);
      for (guint i = 0; i < json_array_get_length (array); i++)
        {
          JsonNode *item = json_array_get_element (array, i);
          const char *entry;
          g_autoptr(GInetAddressMask) mask = NULL;

          if (!JSON_NODE_HOLDS_VALUE (item) || json_node_get_value_type (item) != G_TYPE_STRING)
            {
              *refusal = g_strdup_printf ("request body has an error: network.%s must be an array of "
                                          "strings", members[m]);
              return FALSE;
            }
          entry = json_node_get_string (item);
          if (is_all_traffic (entry))
            {
              if (m == 1)
                deny_all = TRUE;
              else
                g_ptr_array_add (net->allow, g_strdup ("0.0.0.0/0"));
              continue;
            }
          if ((mask = g_inet_address_mask_new_from_string (entry, NULL)) != NULL)
            {
              g_ptr_array_add (m == 0 ? net->allow : net->deny, g_strdup (entry));
              continue;
            }
          if (m == 1 || !is_domain (entry))
            {
              *refusal = g_strdup_printf (m == 1 ? "invalid denyOut entry '%s': only IP addresses and CIDR "
                                                   "blocks can be denied (domains only in allowOut)"
                                                 : "invalid allowOut entry '%s': not an IP address, CIDR "
                                                   "block or domain", entry);
              return FALSE;
            }
          if (g_str_has_prefix (entry, "*."))
            {
              *refusal = g_strdup_printf ("allowOut entry '%s': the E2B emulator filters by address and "
                                          "cannot know every subdomain's; name the hosts (see "
                                          "docs/testing.md)", entry);
              return FALSE;
            }
          {
            g_autoptr(GError) error = NULL;
            GList *addresses = g_resolver_lookup_by_name (g_resolver_get_default (), entry, NULL, &error);

            if (addresses == NULL)
              {
                *refusal = g_strdup_printf ("allowOut entry '%s' does not resolve here: %s", entry,
                                            error->message);
                return FALSE;
              }
            for (GList *l = addresses; l != NULL; l = l->next)
              g_ptr_array_add (net->allow, g_inet_address_to_string (l->data));
            g_resolver_free_addresses (addresses);
            any_domain = TRUE;
          }
        }
    }
  if (any_domain)
    {
      if (!deny_all)
        {
          *refusal = g_strdup ("allowOut with domains needs denyOut [\"0.0.0.0/0\"]: domain filtering "
                               "lets through only what is allowed");
          return FALSE;
        }
      add_nameservers (net->allow);
    }
  if (deny_all)
    g_ptr_array_add (net->deny, g_strdup ("0.0.0.0/0"));

  if (net->allow->len == 0 && net->deny->len == 0)
    net->network = allow >= 0 ? allow : fallback;           /* no rules: all or nothing */
  else if (net->allow->len == 0 && net->deny->len == 1 && deny_all)
    {
      net->network = FALSE;                                 /* deny everything: no network at all */
      g_ptr_array_set_size (net->deny, 0);
    }
  else if (g_ptr_array_find_with_equal_func (net->allow, "0.0.0.0/0", g_str_equal, NULL))
    {
      net->network = TRUE;                                  /* allow everything: no rules */
      g_ptr_array_set_size (net->allow, 0);
      g_ptr_array_set_size (net->deny, 0);
    }
  else
    net->network = TRUE;
  if (net->allow->len > 0)
    g_ptr_array_add (net->allow, NULL);
  if (net->deny->len > 0)
    g_ptr_array_add (net->deny, NULL);
  return TRUE;
}

static int
member_tristate (JsonObject *object,
                 const char *name)
{
  JsonNode *node = object ? json_object_get_member (object, name) : NULL;

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_BOOLEAN)
    return -1;
  return json_node_get_boolean (node);
}

/* PUT /sandboxes/{id}/network: the same rules, replacing the old ones (an
 * empty update clears them: all traffic), applied at once by the running
 * local sandbox's pid 1. A sandbox made without the network (internet
 * access off) has no network to open: only an update that keeps it
 * closed is accepted. */
static void
handle_update_network (EmuSandbox        *sandbox,
                       SoupServerMessage *msg)
{
  g_autoptr(GBytes) body = _emu_request_body (msg);
  g_autoptr(JsonNode) root = _emu_parse_json (body);
  JsonObject *object = root && JSON_NODE_HOLDS_OBJECT (root) ? json_node_get_object (root) : NULL;
  g_autofree char *refusal = NULL;
  g_autoptr(GError) error = NULL;
  EmuNet net = { 0 };

  if (object == NULL)
    {
      _emu_reply_error (msg, 400, "request body has an error: value is required but missing");
      return;
    }
  if (!network_rules (object, member_tristate (object, "allow_internet_access"), TRUE, &net, &refusal))
    {
      emu_net_clear (&net);
      _emu_reply_error (msg, 400, "%s", refusal);
      return;
    }
  if (!sandbox->network)
    {
      gboolean closed = !net.network;

      emu_net_clear (&net);
      if (closed)
        soup_server_message_set_status (msg, 204, NULL);
      else
        _emu_reply_error (msg, 501, "the E2B emulator cannot open the network of sandbox %s: it was "
                          "created with internet access off, so its local sandbox has no network at "
                          "all; create it with allow_internet_access true (and denyOut rules) instead "
                          "(see docs/testing.md)", sandbox->id);
      return;
    }
  /* Denying everything on a sandbox with the network is a rule too. */
  if (!net.network)
    {
      g_ptr_array_add (net.deny, g_strdup ("0.0.0.0/0"));
      g_ptr_array_add (net.deny, NULL);
    }
  if (sandbox->instance != NULL && !sandbox->paused &&
      !sandbox_instance_set_egress_rules (sandbox->instance, emu_net_list (net.allow),
                                          emu_net_list (net.deny), NULL, &error))
    {
      emu_net_clear (&net);
      _emu_reply_error (msg, 500, "failed to update the sandbox's network: %s", error->message);
      return;
    }
  /* Kept for the next boot (a resume), and applied then when paused. */
  g_strfreev (sandbox->egress_allow);
  g_strfreev (sandbox->egress_deny);
  sandbox->egress_allow = g_strdupv ((char **) emu_net_list (net.allow));
  sandbox->egress_deny = g_strdupv ((char **) emu_net_list (net.deny));
  emu_net_clear (&net);
  soup_server_message_set_status (msg, 204, NULL);
}

/* ------------------------------------------------------------------ */
/* Snapshots (POST /sandboxes/{id}/snapshots, GET /snapshots, DELETE
 * /templates/{id}): the sandbox's own areas copied aside; a sandbox made
 * from one (its ID or name as the templateID) runs on the image of the
 * template the snapshotted sandbox ran on, with a copy of those files.
 * Processes and memory are not kept: docs/testing.md. */
typedef struct
{
  char   *id;
  char   *name;        /* or NULL */
  char   *sandbox_id;  /* the sandbox it was taken of */
  char   *template_id; /* what that sandbox ran on */
  char   *dir;         /* <root>/snapshots/<id> */
  gint64  created_us;
} EmuSnapshot;

static void
snapshot_free (gpointer data)
{
  EmuSnapshot *snapshot = data;

  remove_tree (snapshot->dir);
  g_free (snapshot->id);
  g_free (snapshot->name);
  g_free (snapshot->sandbox_id);
  g_free (snapshot->template_id);
  g_free (snapshot->dir);
  g_free (snapshot);
}

/* By ID, or by name (the newest of that name). */
static EmuSnapshot *
snapshot_lookup (E2bEmulator *emu,
                 const char  *id_or_name)
{
  EmuSnapshot *found = g_hash_table_lookup (emu->snapshots, id_or_name);
  GHashTableIter iter;
  gpointer value;

  if (found != NULL)
    return found;
  g_hash_table_iter_init (&iter, emu->snapshots);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      EmuSnapshot *snapshot = value;

      if (g_strcmp0 (snapshot->name, id_or_name) == 0 &&
          (found == NULL || snapshot->created_us > found->created_us))
        found = snapshot;
    }
  return found;
}

static EmuSandbox *sandbox_start (E2bEmulator  *emu,
                                  const char   *template_id,
                                  EmuImage     *image,
                                  GHashTable   *metadata,
                                  GHashTable   *envs,
                                  gboolean      network,
                                  const char * const *egress_allow,
                                  const char * const *egress_deny,
                                  gint64        timeout,
                                  const char   *seed,
                                  GError      **error);
static gboolean sandbox_boot (EmuSandbox  *sandbox,
                              EmuImage    *image,
                              GError     **error);
static gboolean copy_areas (const char  *from,
                            const char  *to,
                            GError     **error);

static void
handle_create (E2bEmulator       *emu,
               SoupServerMessage *msg)
{
  g_autoptr(GBytes) body = _emu_request_body (msg);
  g_autoptr(JsonNode) root = _emu_parse_json (body);
  g_autoptr(GError) error = NULL;
  JsonObject *object;
  JsonNode *node;
  EmuSandbox *sandbox;
  EmuSnapshot *snapshot;
  GHashTable *metadata, *envs;
  int auto_pause, auto_pause_memory, public_traffic;
  gboolean auto_resume;
  gint64 timeout = DEFAULT_TIMEOUT_S;
  g_autoptr(EmuImage) image = NULL;
  g_auto(EmuNet) net = { 0 };

  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      _emu_reply_error (msg, 400, "request body has an error: value is required but missing");
      return;
    }
  object = json_node_get_object (root);
  node = json_object_get_member (object, "templateID");
  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING)
    {
      _emu_reply_error (msg, 400, "request body has an error: doesn't match schema: "
                        "property \"templateID\" is missing");
      return;
    }
  if (json_object_has_member (object, "timeout"))
    {
      timeout = json_object_get_int_member (object, "timeout");
      if (timeout <= 0)
        {
          _emu_reply_error (msg, 400, "Timeout must be greater than 0");
          return;
        }
    }
  if (timeout > 24 * 3600)
    {
      _emu_reply_error (msg, 400, "Timeout cannot be greater than 24 hours");
      return;
    }
  {
    JsonNode *rules = json_object_get_member (object, "network");
    g_autofree char *refusal = NULL;

    if (!network_rules (rules && JSON_NODE_HOLDS_OBJECT (rules) ? json_node_get_object (rules) : NULL,
                        member_tristate (object, "allow_internet_access"), TRUE, &net, &refusal))
      {
        _emu_reply_error (msg, 400, "%s", refusal);
        return;
      }
  }
  /* A snapshot's ID or name: a sandbox on its template's image, its files
   * copied from the snapshot. */
  snapshot = snapshot_lookup (emu, json_node_get_string (node));
  /* network.allowPublicTraffic false: its ports answer only requests
   * with the traffic access token, which needs a secure sandbox. */
  {
    JsonObject *rules = _sandbox_json_get_object (object, "network");

    public_traffic = member_tristate (rules, "allowPublicTraffic");
    if (public_traffic == 0 && member_tristate (object, "secure") == 0)
      {
        _emu_reply_error (msg, 400, "allowPublicTraffic false needs a secure sandbox: create it with secure true");
        return;
      }
  }
  /* The lifecycle: autoPause, autoPauseMemory (false: filesystem-only,
   * which cannot auto-resume), autoResume {"enabled"}. */
  auto_pause = member_tristate (object, "autoPause");
  auto_pause_memory = member_tristate (object, "autoPauseMemory");
  {
    JsonObject *resume = _sandbox_json_get_object (object, "autoResume");

    auto_resume = member_tristate (resume, "enabled") > 0;
  }
  if (auto_pause_memory == 0 && auto_resume)
    {
      _emu_reply_error (msg, 400, "autoResume cannot be combined with autoPauseMemory false: a "
                        "filesystem-only pause is resumed with connect");
      return;
    }
  image = _emu_images_resolve (emu->images, snapshot ? snapshot->template_id : json_node_get_string (node),
                               &error);
  if (image == NULL)
    {
      _emu_reply_error (msg, 404, "template '%s' not found: %s", json_node_get_string (node), error->message);
      return;
    }

  metadata = _sandbox_json_get_string_map (object, "metadata", NULL);
  envs = _sandbox_json_get_string_map (object, "envVars", NULL);
  sandbox = sandbox_start (emu, snapshot ? snapshot->id : json_node_get_string (node), image,
                           metadata, envs, net.network, emu_net_list (net.allow), emu_net_list (net.deny),
                           timeout, snapshot ? snapshot->dir : NULL, &error);
  if (sandbox == NULL)
    {
      _emu_reply_error (msg, 500, "failed to create the sandbox: %s", error->message);
      return;
    }
  sandbox->image_name = g_strdup (snapshot ? snapshot->template_id : json_node_get_string (node));
  sandbox->auto_pause = auto_pause > 0;
  sandbox->auto_pause_memory = auto_pause_memory != 0;
  sandbox->auto_resume = auto_resume;
  if (public_traffic == 0)
    sandbox->traffic_token = new_token ();
  _emu_reply_json (msg, 201, sandbox_to_json (sandbox, 0));
}

/* Copies the sandbox's own areas (home/, tmp/, root/) from the host
 * directory FROM into TO (a sandbox's or a snapshot's). */
static gboolean
copy_areas (const char  *from,
            const char  *to,
            GError     **error)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  int status = 0;
  g_autofree char *err = NULL;

  g_ptr_array_add (argv, g_strdup ("cp"));
  g_ptr_array_add (argv, g_strdup ("-a"));
  g_ptr_array_add (argv, g_strdup ("--"));
  for (guint i = 0; i < 3; i++)
    {
      static const char * const areas[] = { "home", "tmp", "root" };
      char *area = g_build_filename (from, areas[i], NULL);

      if (g_file_test (area, G_FILE_TEST_IS_DIR))
        g_ptr_array_add (argv, area);
      else
        g_free (area);
    }
  if (argv->len == 3)
    return TRUE;
  g_ptr_array_add (argv, g_strdup (to));
  g_ptr_array_add (argv, NULL);
  if (g_mkdir_with_parents (to, 0755) != 0 ||
      !g_spawn_sync (NULL, (char **) argv->pdata, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL,
                     NULL, NULL, NULL, &err, &status, error))
    return FALSE;
  if (!g_spawn_check_wait_status (status, error))
    {
      g_prefix_error (error, "copying %s to %s: %s: ", from, to, err ? g_strstrip (err) : "");
      return FALSE;
    }
  return TRUE;
}

/* Starts a sandbox on IMAGE (its files copied from the host directory SEED
 * when not NULL), takes METADATA and ENVS. */
static EmuSandbox *
sandbox_start (E2bEmulator  *emu,
               const char   *template_id,
               EmuImage     *image,
               GHashTable   *metadata,
               GHashTable   *envs,
               gboolean      network,
               const char * const *egress_allow,
               const char * const *egress_deny,
               gint64        timeout,
               const char   *seed,
               GError      **error)
{
  g_autofree char *home = NULL;
  g_autofree char *tmp = NULL;
  EmuSandbox *sandbox;

  sandbox = g_new0 (EmuSandbox, 1);
  sandbox->emu = emu;
  sandbox->id = new_sandbox_id ();
  sandbox->template_id = g_strdup (template_id);
  sandbox->access_token = new_token ();
  sandbox->metadata = metadata;
  sandbox->envs = envs;
  sandbox->started = g_date_time_new_now_utc ();
  sandbox->processes = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL, NULL);
  sandbox->next_pid = 400 + g_random_int_range (0, 100);
  sandbox->host_root = g_build_filename (emu->root, sandbox->id, NULL);

  home = g_build_filename (sandbox->host_root, "home", NULL);
  tmp = g_build_filename (sandbox->host_root, "tmp", NULL);
  if (seed != NULL && !copy_areas (seed, sandbox->host_root, error))
    {
      remove_tree (sandbox->host_root);
      sandbox_free (sandbox);
      return NULL;
    }
  {
    g_autofree char *user = g_build_filename (home, "user", NULL);
    g_mkdir_with_parents (user, 0755);
    g_mkdir_with_parents (tmp, 01777);
  }
  sandbox->rootfs = g_strdup (image->rootfs);
  sandbox->image_how = g_strdup (image->how);
  sandbox->created_us = g_get_real_time ();
  sandbox->network = network;
  sandbox->egress_allow = g_strdupv ((char **) egress_allow);
  sandbox->egress_deny = g_strdupv ((char **) egress_deny);
  g_message ("e2b-emulator: sandbox %s: %s", sandbox->id, image->how);
  if (!sandbox_boot (sandbox, image, error))
    {
      remove_tree (sandbox->host_root);
      sandbox_free (sandbox);
      return NULL;
    }

  g_hash_table_insert (emu->sandboxes, sandbox->id, sandbox);
  g_atomic_int_inc (&emu->live);
  sandbox_set_timeout (sandbox, timeout);
  sandbox->timeout_s = timeout;
  /* startedAt and endAt from one clock reading, as the service's: the
   * sandbox's time to live is exactly endAt - startedAt. */
  g_date_time_unref (sandbox->started);
  sandbox->started = g_date_time_new_from_unix_utc ((sandbox->end_at - MAX (timeout, 0) * G_USEC_PER_SEC) /
                                                    G_USEC_PER_SEC);
  return sandbox;
}

/* Boots SANDBOX's local sandbox on IMAGE, with the sandbox's own areas
 * mounted and a new boot id: each E2B sandbox is a machine of its own, a
 * cold boot (the resume of a pause without memory) gets another. */
static gboolean
sandbox_boot (EmuSandbox  *sandbox,
              EmuImage    *image,
              GError     **error)
{
  E2bEmulator *emu = sandbox->emu;
  g_autoptr(SandboxSpec) spec = NULL;
  g_autofree char *home = g_build_filename (sandbox->host_root, "home", NULL);
  g_autofree char *tmp = g_build_filename (sandbox->host_root, "tmp", NULL);
  g_autofree char *boot_id = g_build_filename (sandbox->host_root, "boot_id", NULL);
  g_autofree char *uuid = g_uuid_string_random ();
  g_autofree char *line = g_strconcat (uuid, "\n", NULL);

  if (!g_file_set_contents (boot_id, line, -1, error))
    return FALSE;
  spec = _emu_local_spec_new_on ("e2b-emulator-id", sandbox->id, sandbox->envs, image);
  sandbox_spec_add_mount (spec, home, "/home", FALSE);
  sandbox_spec_add_mount (spec, tmp, "/tmp", FALSE);
  sandbox_spec_add_mount (spec, boot_id, BOOT_ID_PATH, TRUE);
  /* root's home, which E2B's templates have, writable (the host's own,
   * on the host's root, is hidden by an empty read-only one). */
  {
    g_autofree char *in_image = image->rootfs ? g_build_filename (image->rootfs, "root", NULL) : NULL;

    if (in_image == NULL || !g_file_test (in_image, G_FILE_TEST_IS_DIR))
      {
        g_autofree char *root_home = g_build_filename (sandbox->host_root, "root", NULL);

        g_mkdir_with_parents (root_home, 0755);
        sandbox_spec_add_mount (spec, root_home, "/root", FALSE);
      }
  }
  /* `whoami` and `ls -l` name the default user as in E2B's templates (an
   * image without it gets it). */
  {
    g_autofree char *etc = g_build_filename (sandbox->host_root, "etc", NULL);

    g_autoptr(GError) local_error = NULL;

    if (!_emu_add_user_files_from (spec, image->rootfs, etc, "user", E2B_EMU_HOME, &local_error))
      g_warning ("e2b-emulator: %s", local_error->message);
  }
  /* allow_internet_access defaults to true, as in E2B's API; allowOut and
   * denyOut as egress rules (network_rules). */
  sandbox_spec_set_network (spec, sandbox->network);
  sandbox_spec_set_egress_rules (spec, (const char * const *) sandbox->egress_allow,
                                 (const char * const *) sandbox->egress_deny);

  sandbox->instance = sandbox_backend_create (emu->local, spec, NULL, error);
  return sandbox->instance != NULL;
}

/* GET /sandboxes/{id}/logs: one line, what the template runs on. */
static JsonNode *
sandbox_logs (EmuSandbox *sandbox)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autofree char *when = _emu_rfc3339 (sandbox->created_us);

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "logs");
  json_builder_begin_array (builder);
  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "timestamp");
  json_builder_add_string_value (builder, when);
  json_builder_set_member_name (builder, "line");
  json_builder_add_string_value (builder, sandbox->image_how);
  json_builder_end_object (builder);
  json_builder_end_array (builder);
  json_builder_end_object (builder);
  return json_builder_get_root (builder);
}

static void
not_found (SoupServerMessage *msg,
           const char        *id)
{
  _emu_reply_error (msg, 404, "Sandbox \"%s\" doesn't exist or you don't have access to it", id);
}

static gboolean
metadata_matches (EmuSandbox *sandbox,
                  const char *filter)
{
  g_autoptr(GHashTable) wanted = NULL;
  GHashTableIter iter;
  gpointer key, value;

  if (filter == NULL || *filter == '\0')
    return TRUE;
  wanted = soup_form_decode (filter);
  g_hash_table_iter_init (&iter, wanted);
  while (g_hash_table_iter_next (&iter, &key, &value))
    if (g_strcmp0 (g_hash_table_lookup (sandbox->metadata, key), value) != 0)
      return FALSE;
  return TRUE;
}

static gint
compare_started (gconstpointer a,
                 gconstpointer b,
                 gpointer      user_data)
{
  EmuSandbox *x = *(EmuSandbox **) a, *y = *(EmuSandbox **) b;
  gboolean asc = GPOINTER_TO_INT (user_data);
  gint c = g_date_time_compare (x->started, y->started);

  /* The same second (a timeout change keeps whole seconds): the service's
   * start times are finer, so the one created first started first. */
  if (c == 0)
    c = x->created_us < y->created_us ? -1 : x->created_us > y->created_us ? 1 : 0;
  if (c == 0)
    c = strcmp (x->id, y->id);
  return asc ? c : -c;
}

static void
handle_list (E2bEmulator       *emu,
             SoupServerMessage *msg,
             GHashTable        *query,
             gboolean           v2)
{
  const char *metadata = _emu_query (query, "metadata");
  const char *state = _emu_query (query, "state");
  const char *order = _emu_query (query, "order");
  const char *limit_s = _emu_query (query, "limit");
  const char *token = _emu_query (query, "nextToken");
  const char *template = _emu_query (query, "template");
  const char *started_after = _emu_query (query, "startedAfter");
  g_autoptr(GDateTime) after = NULL;
  g_autoptr(GPtrArray) matching = g_ptr_array_new ();
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  SoupMessageHeaders *headers = soup_server_message_get_response_headers (msg);
  GHashTableIter iter;
  gpointer value;
  guint64 limit = 100, offset = 0;
  g_autofree char *total = NULL;

  if (limit_s != NULL &&
      (!g_ascii_string_to_unsigned (limit_s, 10, 1, 100, &limit, NULL)))
    {
      _emu_reply_error (msg, 400, "limit must be between 1 and 100");
      return;
    }
  if (token != NULL && !g_ascii_string_to_unsigned (token, 10, 0, G_MAXUINT, &offset, NULL))
    {
      _emu_reply_error (msg, 400, "invalid next token");
      return;
    }
  if (order != NULL && strcmp (order, "asc") != 0 && strcmp (order, "desc") != 0)
    {
      _emu_reply_error (msg, 400, "order must be asc or desc");
      return;
    }

  if (v2 && started_after != NULL)
    {
      /* A form-decoded "+00:00" arrives as " 00:00". */
      g_autoptr(GString) text = g_string_new (started_after);

      g_string_replace (text, " ", "+", 0);
      after = g_date_time_new_from_iso8601 (text->str, NULL);
      if (after == NULL)
        {
          _emu_reply_error (msg, 400, "invalid startedAfter: %s", started_after);
          return;
        }
    }

  g_hash_table_iter_init (&iter, emu->sandboxes);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      EmuSandbox *sandbox = value;

      if (!metadata_matches (sandbox, metadata))
        continue;
      /* startedAfter: started at or after it, to the second the API
       * reports startedAt with. */
      if (after != NULL)
        {
          g_autoptr(GDateTime) started = g_date_time_new_from_unix_utc (g_date_time_to_unix (sandbox->started));

          if (g_date_time_compare (started, after) < 0)
            continue;
        }
      if (template != NULL && strcmp (template, sandbox->template_id) != 0)
        continue;
      if (v2 && state != NULL && strstr (state, sandbox->paused ? "paused" : "running") == NULL)
        continue;
      g_ptr_array_add (matching, sandbox);
    }
  g_ptr_array_sort_with_data (matching, compare_started,
                              GINT_TO_POINTER (g_strcmp0 (order, "asc") == 0));

  if (!v2)
    {
      offset = 0;
      limit = G_MAXUINT;
    }
  json_builder_begin_array (builder);
  for (guint i = (guint) offset; i < matching->len && i < offset + limit; i++)
    json_builder_add_value (builder, sandbox_to_json (g_ptr_array_index (matching, i), 2));
  json_builder_end_array (builder);

  if (v2 && offset + limit < matching->len)
    {
      g_autofree char *next = g_strdup_printf ("%" G_GUINT64_FORMAT, offset + limit);
      soup_message_headers_replace (headers, "X-Next-Token", next);
    }
  total = g_strdup_printf ("%u", g_hash_table_size (emu->sandboxes));
  soup_message_headers_replace (headers, "X-Total-Running", total);
  _emu_reply_json (msg, 200, json_builder_get_root (builder));
}

static gint64
body_timeout (SoupServerMessage *msg,
              const char        *member,
              gboolean          *present)
{
  g_autoptr(GBytes) body = _emu_request_body (msg);
  g_autoptr(JsonNode) root = _emu_parse_json (body);

  *present = root != NULL && JSON_NODE_HOLDS_OBJECT (root) &&
             json_object_has_member (json_node_get_object (root), member);
  return *present ? json_object_get_int_member (json_node_get_object (root), member) : 0;
}

/* Refresh and connect: the body's @member (or the default) seconds from
 * now, when that is later than the sandbox's end (they only extend it).
 * FALSE once it has replied 404 for a missing sandbox. */
static gboolean
extend_timeout (SoupServerMessage *msg,
                EmuSandbox        *sandbox,
                const char        *id,
                const char        *member)
{
  gboolean present;
  gint64 seconds = body_timeout (msg, member, &present);

  if (sandbox == NULL)
    {
      not_found (msg, id);
      return FALSE;
    }
  if (!present)
    seconds = DEFAULT_TIMEOUT_S;
  if (g_get_real_time () + seconds * G_USEC_PER_SEC > sandbox->end_at)
    sandbox_set_timeout (sandbox, seconds);
  return TRUE;
}

/* Thaws a paused sandbox; FALSE once it has replied 500. */
static gboolean
sandbox_resume (SoupServerMessage *msg,
                EmuSandbox        *sandbox)
{
  g_autoptr(GError) error = NULL;

  if (sandbox->cold)
    {
      /* Paused without memory: a cold boot from its files. */
      g_autoptr(EmuImage) image = _emu_images_resolve (sandbox->emu->images, sandbox->image_name, &error);

      if (image == NULL || !sandbox_boot (sandbox, image, &error))
        {
          _emu_reply_error (msg, 500, "cannot resume sandbox %s: %s", sandbox->id, error->message);
          return FALSE;
        }
      sandbox->cold = FALSE;
    }
  else if (!sandbox_instance_resume (sandbox->instance, NULL, &error) ||
           /* rules updated while it was frozen */
           (sandbox->network &&
            !sandbox_instance_set_egress_rules (sandbox->instance, (const char * const *) sandbox->egress_allow,
                                                (const char * const *) sandbox->egress_deny, NULL, &error)))
    {
      _emu_reply_error (msg, 500, "cannot resume sandbox %s: %s", sandbox->id, error->message);
      return FALSE;
    }
  sandbox->paused = FALSE;
  return TRUE;
}

JsonNode *
_emu_sandbox_metrics (EmuSandbox *sandbox,
                      gboolean    camel)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(SandboxMetrics) metrics = sandbox->instance != NULL
    ? sandbox_instance_get_metrics (sandbox->instance, NULL, NULL) : NULL;
  double alive = MAX (1.0, (double) (g_get_real_time () / G_USEC_PER_SEC -
                                     g_date_time_to_unix (sandbox->started)));
  guint cpus = metrics ? MAX (1, sandbox_metrics_get_cpu_count (metrics)) : 2;
  double seconds = metrics ? MAX (0.0, sandbox_metrics_get_cpu_seconds (metrics)) : 0;
  /* The service samples load; the local backend counts processor time:
   * the mean load since the sandbox started stands in for it. */
  double pct = MIN (100.0, 100.0 * seconds / alive / cpus);

  json_builder_begin_object (builder);
  if (camel)
    {
      g_autofree char *now = _emu_rfc3339 (g_get_real_time ());

      ADD_STRING (builder, "timestamp", now);
      ADD_INT (builder, "timestampUnix", g_get_real_time () / G_USEC_PER_SEC);
    }
  else
    ADD_INT (builder, "ts", g_get_real_time () / G_USEC_PER_SEC);
  ADD_INT (builder, camel ? "cpuCount" : "cpu_count", cpus);
  json_builder_set_member_name (builder, camel ? "cpuUsedPct" : "cpu_used_pct");
  json_builder_add_double_value (builder, pct);
  ADD_INT (builder, camel ? "memUsed" : "mem_used", metrics ? sandbox_metrics_get_memory_used (metrics) : 0);
  ADD_INT (builder, camel ? "memTotal" : "mem_total", metrics ? sandbox_metrics_get_memory_total (metrics) : 0);
  ADD_INT (builder, camel ? "memCache" : "mem_cache", 0);
  if (!camel)
    {
      ADD_INT (builder, "mem_used_mib", metrics ? sandbox_metrics_get_memory_used (metrics) >> 20 : 0);
      ADD_INT (builder, "mem_total_mib", metrics ? sandbox_metrics_get_memory_total (metrics) >> 20 : 0);
    }
  ADD_INT (builder, camel ? "diskUsed" : "disk_used", metrics ? sandbox_metrics_get_disk_used (metrics) : 0);
  ADD_INT (builder, camel ? "diskTotal" : "disk_total", metrics ? sandbox_metrics_get_disk_total (metrics) : 0);
  json_builder_end_object (builder);
  return json_builder_get_root (builder);
}

static char *
new_snapshot_id (void)
{
  static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  GString *id = g_string_new (NULL);

  for (guint i = 0; i < 20; i++)
    g_string_append_c (id, alphabet[g_random_int_range (0, sizeof alphabet - 1)]);
  return g_string_free (id, FALSE);
}

static JsonNode *
snapshot_to_json (EmuSnapshot *snapshot)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();

  json_builder_begin_object (builder);
  ADD_STRING (builder, "snapshotID", snapshot->id);
  json_builder_set_member_name (builder, "names");
  json_builder_begin_array (builder);
  if (snapshot->name != NULL)
    json_builder_add_string_value (builder, snapshot->name);
  json_builder_end_array (builder);
  json_builder_end_object (builder);
  return json_builder_get_root (builder);
}

/* POST /sandboxes/{id}/snapshots {"name"?}: 201 SnapshotInfo. The sandbox
 * keeps running. */
static void
handle_snapshot_create (E2bEmulator       *emu,
                        EmuSandbox        *sandbox,
                        SoupServerMessage *msg)
{
  g_autoptr(GBytes) body = _emu_request_body (msg);
  g_autoptr(JsonNode) root = _emu_parse_json (body);
  JsonObject *object = root && JSON_NODE_HOLDS_OBJECT (root) ? json_node_get_object (root) : NULL;
  const char *name = object ? _sandbox_json_get_string (object, "name") : NULL;
  g_autoptr(GError) error = NULL;
  EmuSnapshot *snapshot;

  if (name != NULL && (*name == '\0' || strpbrk (name, " /\t\n") != NULL))
    {
      _emu_reply_error (msg, 400, "invalid snapshot name '%s': use letters, digits, '-', '_' and '.'", name);
      return;
    }
  snapshot = g_new0 (EmuSnapshot, 1);
  snapshot->id = new_snapshot_id ();
  snapshot->name = g_strdup (name);
  snapshot->sandbox_id = g_strdup (sandbox->id);
  /* A snapshot of a sandbox made from a snapshot runs on the same image. */
  snapshot->template_id = g_strdup (sandbox->image_name);
  snapshot->dir = g_build_filename (emu->root, "snapshots", snapshot->id, NULL);
  snapshot->created_us = g_get_real_time ();
  if (!copy_areas (sandbox->host_root, snapshot->dir, &error))
    {
      _emu_reply_error (msg, 500, "cannot snapshot sandbox %s: %s", sandbox->id, error->message);
      snapshot_free (snapshot);
      return;
    }
  g_hash_table_insert (emu->snapshots, snapshot->id, snapshot);
  _emu_reply_json (msg, 201, snapshot_to_json (snapshot));
}

static gint
compare_snapshots (gconstpointer a,
                   gconstpointer b)
{
  const EmuSnapshot *x = *(EmuSnapshot **) a, *y = *(EmuSnapshot **) b;

  /* Newest first. */
  if (x->created_us != y->created_us)
    return x->created_us > y->created_us ? -1 : 1;
  return strcmp (x->id, y->id);
}

/* GET /snapshots?sandboxID=&name=&limit=&nextToken=: [SnapshotInfo],
 * X-Next-Token when more follow. */
static void
handle_snapshot_list (E2bEmulator       *emu,
                      SoupServerMessage *msg,
                      GHashTable        *query)
{
  const char *sandbox_id = _emu_query (query, "sandboxID");
  const char *name = _emu_query (query, "name");
  const char *limit_s = _emu_query (query, "limit");
  const char *token = _emu_query (query, "nextToken");
  guint64 limit = 100, offset = 0;
  g_autoptr(GPtrArray) matching = g_ptr_array_new ();
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  GHashTableIter iter;
  gpointer value;

  if (limit_s != NULL && !g_ascii_string_to_unsigned (limit_s, 10, 1, 100, &limit, NULL))
    {
      _emu_reply_error (msg, 400, "limit must be between 1 and 100");
      return;
    }
  if (token != NULL && !g_ascii_string_to_unsigned (token, 10, 0, G_MAXUINT, &offset, NULL))
    {
      _emu_reply_error (msg, 400, "invalid next token");
      return;
    }
  g_hash_table_iter_init (&iter, emu->snapshots);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      EmuSnapshot *snapshot = value;

      if ((sandbox_id == NULL || strcmp (sandbox_id, snapshot->sandbox_id) == 0) &&
          (name == NULL || g_strcmp0 (name, snapshot->name) == 0))
        g_ptr_array_add (matching, snapshot);
    }
  g_ptr_array_sort (matching, compare_snapshots);
  json_builder_begin_array (builder);
  for (guint i = (guint) offset; i < matching->len && i < offset + limit; i++)
    json_builder_add_value (builder, snapshot_to_json (g_ptr_array_index (matching, i)));
  json_builder_end_array (builder);
  if (offset + limit < matching->len)
    {
      g_autofree char *next = g_strdup_printf ("%" G_GUINT64_FORMAT, offset + limit);

      soup_message_headers_replace (soup_server_message_get_response_headers (msg), "X-Next-Token", next);
    }
  _emu_reply_json (msg, 200, json_builder_get_root (builder));
}

/* POST /sandboxes/{id}/fork {"timeout"?, "count"?}: 201, one
 * {"sandbox": Sandbox} (or {"error": Error}) per fork, each a new sandbox
 * on the same template with a copy of the source's files, envs, metadata
 * and network; the source keeps running. */
static void
handle_fork (E2bEmulator       *emu,
             EmuSandbox        *source,
             SoupServerMessage *msg)
{
  g_autoptr(GBytes) body = _emu_request_body (msg);
  g_autoptr(JsonNode) root = _emu_parse_json (body);
  JsonObject *object = root && JSON_NODE_HOLDS_OBJECT (root) ? json_node_get_object (root) : NULL;
  gint64 timeout = DEFAULT_TIMEOUT_S, count = 1;
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(EmuImage) image = NULL;

  if (object != NULL)
    {
      _sandbox_json_get_int (object, "timeout", &timeout);
      _sandbox_json_get_int (object, "count", &count);
    }
  if (count < 1 || count > 100)
    {
      _emu_reply_error (msg, 400, "count must be between 1 and 100");
      return;
    }
  if (timeout <= 0 || timeout > 24 * 3600)
    {
      _emu_reply_error (msg, 400, "timeout must be between 1 s and 24 hours");
      return;
    }
  if (source->paused)
    {
      _emu_reply_error (msg, 409, "Sandbox %s is paused; resume it with connect before forking", source->id);
      return;
    }
  image = _emu_images_resolve (emu->images, source->image_name, &error);
  if (image == NULL)
    {
      _emu_reply_error (msg, 500, "cannot fork sandbox %s: %s", source->id, error->message);
      return;
    }
  json_builder_begin_array (builder);
  for (gint64 i = 0; i < count; i++)
    {
      EmuSandbox *fork;

      g_clear_error (&error);
      fork = sandbox_start (emu, source->template_id, image,
                            g_hash_table_ref (source->metadata), g_hash_table_ref (source->envs),
                            source->network, (const char * const *) source->egress_allow,
                            (const char * const *) source->egress_deny, timeout, source->host_root, &error);
      json_builder_begin_object (builder);
      if (fork != NULL)
        {
          fork->image_name = g_strdup (source->image_name);
          fork->auto_pause = source->auto_pause;
          fork->auto_pause_memory = source->auto_pause_memory;
          fork->auto_resume = source->auto_resume;
          if (source->traffic_token != NULL)
            fork->traffic_token = new_token ();
          json_builder_set_member_name (builder, "sandbox");
          json_builder_add_value (builder, sandbox_to_json (fork, 0));
        }
      else
        {
          json_builder_set_member_name (builder, "error");
          json_builder_begin_object (builder);
          ADD_INT (builder, "code", 500);
          ADD_STRING (builder, "message", error->message);
          json_builder_end_object (builder);
        }
      json_builder_end_object (builder);
    }
  json_builder_end_array (builder);
  _emu_reply_json (msg, 201, json_builder_get_root (builder));
}

/* DELETE /templates/{id}: a snapshot (templates proper are not built by
 * the emulator). */
static void
handle_template_delete (E2bEmulator       *emu,
                        SoupServerMessage *msg,
                        const char        *id)
{
  EmuSnapshot *snapshot = snapshot_lookup (emu, id);

  if (snapshot == NULL)
    {
      _emu_reply_error (msg, 404, "template '%s' not found", id);
      return;
    }
  g_hash_table_remove (emu->snapshots, snapshot->id);
  soup_server_message_set_status (msg, 204, NULL);
}

static void
handle_sandbox (E2bEmulator       *emu,
                SoupServerMessage *msg,
                const char        *method,
                const char        *id,
                const char        *action)
{
  EmuSandbox *sandbox;
  gboolean present;
  gint64 seconds;

  /* Old-style "<id>-<clientID>" ids. */
  g_autofree char *short_id = g_strdup (id);
  char *dash = strchr (short_id, '-');

  if (dash != NULL)
    {
      if (strchr (dash + 1, '-') != NULL)
        {
          _emu_reply_error (msg, 400, "Invalid sandbox ID");
          return;
        }
      *dash = '\0';
    }
  sandbox = g_hash_table_lookup (emu->sandboxes, short_id);

  if (action == NULL && strcmp (method, "GET") == 0)
    {
      if (sandbox == NULL)
        { not_found (msg, short_id); return; }
      _emu_reply_json (msg, 200, sandbox_to_json (sandbox, 1));
    }
  else if (action == NULL && strcmp (method, "DELETE") == 0)
    {
      if (sandbox == NULL)
        { not_found (msg, short_id); return; }
      sandbox_kill (emu, short_id);
      soup_server_message_set_status (msg, 204, NULL);
    }
  else if (g_strcmp0 (action, "timeout") == 0 && strcmp (method, "POST") == 0)
    {
      seconds = body_timeout (msg, "timeout", &present);
      if (!present)
        { _emu_reply_error (msg, 400, "request body has an error: value is required but missing"); return; }
      if (sandbox == NULL)
        { not_found (msg, short_id); return; }
      sandbox_set_timeout (sandbox, MAX (seconds, 0));
      soup_server_message_set_status (msg, 204, NULL);
    }
  else if (g_strcmp0 (action, "refreshes") == 0 && strcmp (method, "POST") == 0)
    {
      if (!extend_timeout (msg, sandbox, short_id, "duration"))
        return;
      soup_server_message_set_status (msg, 204, NULL);
    }
  else if (g_strcmp0 (action, "connect") == 0 && strcmp (method, "POST") == 0)
    {
      /* v2 makes the timeout optional: the default applies. A paused
       * sandbox is resumed: 201 instead of 200. */
      gboolean was_paused = sandbox != NULL && sandbox->paused;

      if (was_paused && !sandbox_resume (msg, sandbox))
        return;
      if (!extend_timeout (msg, sandbox, short_id, "timeout"))
        return;
      _emu_reply_json (msg, was_paused ? 201 : 200, sandbox_to_json (sandbox, 0));
    }
  else if (g_strcmp0 (action, "network") == 0 && strcmp (method, "PUT") == 0)
    {
      if (sandbox == NULL)
        { not_found (msg, short_id); return; }
      handle_update_network (sandbox, msg);
    }
  else if (g_strcmp0 (action, "pause") == 0 && strcmp (method, "POST") == 0)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GBytes) body = _emu_request_body (msg);
      g_autoptr(JsonNode) root = _emu_parse_json (body);
      /* {"memory": false}: a filesystem-only pause. */
      int memory = member_tristate (root && JSON_NODE_HOLDS_OBJECT (root) ? json_node_get_object (root) : NULL,
                                    "memory");

      if (sandbox == NULL)
        { not_found (msg, short_id); return; }

      if (sandbox->paused)
        { _emu_reply_error (msg, 409, "Sandbox %s is already paused", short_id); return; }
      if (!sandbox_pause (sandbox, memory != 0, &error))
        { _emu_reply_error (msg, 500, "cannot pause sandbox %s: %s", short_id, error->message); return; }
      soup_server_message_set_status (msg, 204, NULL);
    }
  else if (g_strcmp0 (action, "resume") == 0 && strcmp (method, "POST") == 0)
    {
      seconds = body_timeout (msg, "timeout", &present);
      if (sandbox == NULL)
        { not_found (msg, short_id); return; }
      if (!sandbox->paused)
        { _emu_reply_error (msg, 409, "Sandbox %s is already running", short_id); return; }
      if (!sandbox_resume (msg, sandbox))
        return;
      sandbox_set_timeout (sandbox, present ? seconds : DEFAULT_TIMEOUT_S);
      _emu_reply_json (msg, 201, sandbox_to_json (sandbox, 0));
    }
  else if (g_strcmp0 (action, "snapshots") == 0 && strcmp (method, "POST") == 0)
    {
      if (sandbox == NULL)
        { not_found (msg, short_id); return; }
      handle_snapshot_create (emu, sandbox, msg);
    }
  else if (g_strcmp0 (action, "fork") == 0 && strcmp (method, "POST") == 0)
    {
      if (sandbox == NULL)
        { not_found (msg, short_id); return; }
      handle_fork (emu, sandbox, msg);
    }
  else if (g_strcmp0 (action, "logs") == 0)
    {
      if (sandbox == NULL)
        { not_found (msg, short_id); return; }
      _emu_reply_json (msg, 200, sandbox_logs (sandbox));
    }
  else if (g_strcmp0 (action, "metrics") == 0)
    {
      JsonArray *samples;
      JsonNode *node;

      if (sandbox == NULL)
        { not_found (msg, short_id); return; }
      samples = json_array_new ();
      node = json_node_new (JSON_NODE_ARRAY);
      {
        /* ?start=&end= (Unix seconds): the one sample (now) stands for the
         * sandbox's life; a range that ends before it started, or begins
         * after now, has none. 5 s of slack: the service's buckets. */
        const char *text = g_uri_get_query (soup_server_message_get_uri (msg));
        g_autoptr(GHashTable) params = text != NULL
          ? g_uri_parse_params (text, -1, "&", G_URI_PARAMS_NONE, NULL) : NULL;
        const char *start = params ? g_hash_table_lookup (params, "start") : NULL;
        const char *end = params ? g_hash_table_lookup (params, "end") : NULL;
        gint64 now = g_get_real_time () / G_USEC_PER_SEC;
        gint64 born = g_date_time_to_unix (sandbox->started);

        if ((end == NULL || g_ascii_strtoll (end, NULL, 10) + 5 >= born) &&
            (start == NULL || g_ascii_strtoll (start, NULL, 10) <= now + 5))
          json_array_add_element (samples, _emu_sandbox_metrics (sandbox, TRUE));
      }
      json_node_take_array (node, samples);
      _emu_reply_json (msg, 200, node);
    }
  else
    _emu_reply_error (msg, 404, "no such endpoint: %s %s", method, g_uri_get_path (soup_server_message_get_uri (msg)));
}

static void
handle_api (E2bEmulator       *emu,
            SoupServerMessage *msg,
            const char        *path,
            GHashTable        *query)
{
  const char *method = soup_server_message_get_method (msg);
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  const char *key = soup_message_headers_get_one (headers, "X-API-Key");
  g_auto(GStrv) parts = NULL;
  guint n;
  gboolean v2 = FALSE;

  if (strcmp (path, "/health") == 0)
    {
      soup_server_message_set_status (msg, 200, NULL);
      soup_server_message_set_response (msg, "text/plain", SOUP_MEMORY_STATIC, "Health check successful", 23);
      return;
    }
  if (strcmp (path, "/_emulator/live") == 0)
    {
      g_autofree char *text = g_strdup_printf ("{\"live\":%u}", g_atomic_int_get (&emu->live));
      _emu_reply_json (msg, 200, json_from_string (text, NULL));
      return;
    }

  if (key == NULL || strcmp (key, e2b_emulator_get_api_key (emu)) != 0)
    {
      if (key != NULL && !g_str_has_prefix (key, "e2b_"))
        _emu_reply_error (msg, 401, "Invalid API key format");
      else
        _emu_reply_error (msg, 401, "Invalid API key, please visit https://e2b.dev/docs/api-key "
                          "for more information.");
      return;
    }

  parts = g_strsplit (path + 1, "/", -1);
  n = g_strv_length (parts);
  if (n > 0 && strcmp (parts[0], "v2") == 0)
    {
      v2 = TRUE;
      n--;
    }
  {
    char **p = parts + (v2 ? 1 : 0);

    if (n == 1 && strcmp (p[0], "sandboxes") == 0)
      {
        if (strcmp (method, "POST") == 0)
          { handle_create (emu, msg); return; }
        if (strcmp (method, "GET") == 0)
          { handle_list (emu, msg, query, v2); return; }
      }
    else if ((n == 2 || n == 3) && strcmp (p[0], "sandboxes") == 0 && *p[1] != '\0')
      { handle_sandbox (emu, msg, method, p[1], n == 3 ? p[2] : NULL); return; }
    else if (n == 1 && !v2 && strcmp (p[0], "snapshots") == 0 && strcmp (method, "GET") == 0)
      { handle_snapshot_list (emu, msg, query); return; }
    else if (n == 2 && !v2 && strcmp (p[0], "templates") == 0 && strcmp (method, "DELETE") == 0)
      { handle_template_delete (emu, msg, p[1]); return; }
  }
  _emu_reply_error (msg, 404, "no such endpoint: %s %s", method, path);
}

/* ------------------------------------------------------------------ */
/* Routing                                                             */

/* The edge proxy for a port other than envd's: what a server listening on
 * it in the local sandbox answers (the sandbox shares the host's loopback
 * when it has internet access), or the proxy's 502. */
static void
port_error (SoupServerMessage *msg,
            const char        *sandbox_id,
            guint              port)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();

  json_builder_begin_object (builder);
  ADD_STRING (builder, "sandboxId", sandbox_id);
  ADD_STRING (builder, "message", "The sandbox is running but port is not open");
  ADD_INT (builder, "port", port);
  ADD_INT (builder, "code", 502);
  json_builder_end_object (builder);
  _emu_reply_json (msg, 502, json_builder_get_root (builder));
}

typedef struct
{
  char  *sandbox_id;
  guint  port;
} PortForward;

static void
port_forward_free (PortForward *forward)
{
  g_free (forward->sandbox_id);
  g_free (forward);
}

static void
port_refused (SoupServerMessage *msg,
              gpointer           user_data)
{
  PortForward *forward = user_data;

  port_error (msg, forward->sandbox_id, forward->port);
}

static void
port_forward (E2bEmulator       *emu,
              EmuSandbox        *sandbox,
              SoupServerMessage *msg,
              const char        *path,
              guint              port)
{
  PortForward *forward;

  if (sandbox->instance == NULL)
    return port_error (msg, sandbox->id, port);
  forward = g_new0 (PortForward, 1);
  forward->sandbox_id = g_strdup (sandbox->id);
  forward->port = port;
  if (!_emu_forward_to_port (&emu->proxy, msg, port, path, port_refused, forward,
                             (GDestroyNotify) port_forward_free))
    port_error (msg, sandbox->id, port);
}

/* The port a request is for: E2b-Sandbox-Port, or the "<port>-" of its Host. */
static guint
request_port (SoupMessageHeaders *headers)
{
  const char *header = soup_message_headers_get_one (headers, "E2b-Sandbox-Port");
  const char *host = soup_message_headers_get_one (headers, "Host");
  guint64 port = 0;

  if (header != NULL && g_ascii_string_to_unsigned (header, 10, 1, 65535, &port, NULL))
    return (guint) port;
  if (host != NULL && g_ascii_isdigit (*host))
    {
      char *end = NULL;

      port = g_ascii_strtoull (host, &end, 10);
      if (end == NULL || *end != '-')
        port = 0;
    }
  return port > 0 && port <= 65535 ? (guint) port : E2B_ENVD_PORT_EMU;
}

/* "49983-<id>.<domain>" -> "<id>" */
static char *
sandbox_from_host (const char *host)
{
  const char *dash, *dot;

  if (host == NULL || !g_ascii_isdigit (*host))
    return NULL;
  dash = strchr (host, '-');
  dot = dash ? strchr (dash, '.') : NULL;
  if (dash == NULL || dot == NULL || dot == dash + 1)
    return NULL;
  return g_strndup (dash + 1, dot - dash - 1);
}

static void
server_dispatch (SoupServer        *server,
                 SoupServerMessage *msg,
                 const char        *path,
                 GHashTable        *query,
                 gpointer           user_data)
{
  E2bEmulator *emu = user_data;
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  const char *sandbox_id = soup_message_headers_get_one (headers, "E2b-Sandbox-Id");
  g_autofree char *from_host = NULL;
  EmuSandbox *sandbox;

  g_debug ("%s %s%s%s", soup_server_message_get_method (msg), path,
           sandbox_id ? " for " : "", sandbox_id ? sandbox_id : "");
  if (emu->hook != NULL && emu->hook (emu, msg, path, emu->hook_data))
    return;

  if (sandbox_id == NULL)
    sandbox_id = from_host = sandbox_from_host (soup_message_headers_get_one (headers, "Host"));
  if (sandbox_id == NULL && strcmp (path, "/files") == 0 && query != NULL &&
      g_hash_table_contains (query, "signature"))
    {
      /* A signed file URL made against E2B_SANDBOX_URL carries neither a
       * sandbox header nor a sandbox host: its signature, made with one
       * sandbox's envd token, says which. */
      GHashTableIter iter;
      EmuSandbox *candidate;
      const char *operation = strcmp (soup_server_message_get_method (msg), "GET") == 0 ? "read" : "write";

      g_hash_table_iter_init (&iter, emu->sandboxes);
      while (sandbox_id == NULL && g_hash_table_iter_next (&iter, NULL, (gpointer *) &candidate))
        if (_emu_envd_signed_by (candidate, query, operation, g_hash_table_lookup (query, "username")))
          sandbox_id = candidate->id;
    }
  if (sandbox_id == NULL)
    {
      handle_api (emu, msg, path, query);
      return;
    }

  sandbox = g_hash_table_lookup (emu->sandboxes, sandbox_id);
  if (sandbox == NULL)
    {
      g_autoptr(JsonBuilder) builder = json_builder_new ();

      json_builder_begin_object (builder);
      ADD_STRING (builder, "sandboxId", sandbox_id);
      ADD_STRING (builder, "message", "The sandbox was not found");
      ADD_INT (builder, "code", 502);
      json_builder_end_object (builder);
      _emu_reply_json (msg, 502, json_builder_get_root (builder));
      return;
    }
  /* lifecycle.autoResume: traffic to a paused sandbox resumes it, for
   * the time to live it was made with. */
  if (sandbox->paused && sandbox->auto_resume)
    {
      g_debug ("e2b-emulator: traffic resumes sandbox %s", sandbox->id);
      if (!sandbox_resume (msg, sandbox))
        return;
      sandbox_set_timeout (sandbox, sandbox->timeout_s);
    }
  if (sandbox->paused)
    {
      /* The edge proxy of a paused sandbox without auto-resume. */
      g_autoptr(JsonBuilder) builder = json_builder_new ();

      json_builder_begin_object (builder);
      ADD_STRING (builder, "sandboxId", sandbox_id);
      ADD_STRING (builder, "message", "The sandbox is paused; resume it with connect");
      ADD_INT (builder, "code", 502);
      json_builder_end_object (builder);
      _emu_reply_json (msg, 502, json_builder_get_root (builder));
      return;
    }
  if (request_port (headers) != E2B_ENVD_PORT_EMU)
    {
      const char *token = soup_message_headers_get_one (headers, "e2b-traffic-access-token");

      if (sandbox->traffic_token != NULL && g_strcmp0 (token, sandbox->traffic_token) != 0)
        {
          g_autoptr(JsonBuilder) builder = json_builder_new ();

          json_builder_begin_object (builder);
          ADD_STRING (builder, "sandboxId", sandbox_id);
          ADD_STRING (builder, "message", token == NULL
                      ? "The sandbox does not allow public traffic: send its traffic access token in the "
                        "e2b-traffic-access-token header"
                      : "The traffic access token is not this sandbox's");
          ADD_INT (builder, "code", 403);
          json_builder_end_object (builder);
          _emu_reply_json (msg, 403, json_builder_get_root (builder));
          return;
        }
      port_forward (emu, sandbox, msg, path, request_port (headers));
      return;
    }
  _emu_envd_handle (emu, sandbox, msg, path, query);
}

/* The reply hook after the real dispatch (fault injection). */
static void
server_callback (SoupServer        *server,
                 SoupServerMessage *msg,
                 const char        *path,
                 GHashTable        *query,
                 gpointer           user_data)
{
  E2bEmulator *emu = user_data;

  _emu_keep_alive_on_no_content (msg);
  server_dispatch (server, msg, path, query, user_data);
  if (emu->reply_hook != NULL && soup_server_message_get_status (msg) != 0)
    emu->reply_hook (emu, msg, path, emu->reply_hook_data);
}

/* ------------------------------------------------------------------ */
/* Thread                                                              */

static gboolean
start_server (gpointer   data,
              GError   **error)
{
  E2bEmulator *emu = data;
  g_autoptr(GSList) uris = NULL;

  emu->local = sandbox_backend_new_for_name ("local", error);
  if (emu->local == NULL || !sandbox_backend_check_configured (emu->local, error))
    return FALSE;
  emu->images = _emu_images_new ("E2B_EMULATOR_IMAGES", default_images, error);
  if (emu->images == NULL)
    return FALSE;

  /* Its sandboxes' home, /tmp and /root (kept across a pause, as E2B's). */
  emu->root = _emu_make_state_dir ("e2b-emulator-XXXXXX", error);
  if (emu->root == NULL)
    return FALSE;

  emu->server = soup_server_new ("server-header", "e2b-emulator ", NULL);
  soup_server_add_handler (emu->server, NULL, server_callback, emu, NULL);
  if (!soup_server_listen_local (emu->server, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, error))
    return FALSE;
  uris = soup_server_get_uris (emu->server);
  if (uris == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "the server has no address");
      return FALSE;
    }
  emu->url = g_strdup_printf ("http://127.0.0.1:%d", g_uri_get_port (uris->data));
  g_slist_free_full (g_steal_pointer (&uris), (GDestroyNotify) g_uri_unref);
  return TRUE;
}

/* Shut down: every sandbox goes. */
static void
stop_server (gpointer data)
{
  E2bEmulator *emu = data;
  GList *ids = g_hash_table_get_keys (emu->sandboxes);

  for (GList *l = ids; l != NULL; l = l->next)
    l->data = g_strdup (l->data);
  for (GList *l = ids; l != NULL; l = l->next)
    sandbox_kill (emu, l->data);
  g_list_free_full (ids, g_free);
  g_hash_table_remove_all (emu->snapshots);
  if (emu->server != NULL)
    soup_server_disconnect (emu->server);
  g_clear_object (&emu->server);
  g_clear_object (&emu->proxy);
  while (g_main_context_pending (emu->context))
    g_main_context_iteration (emu->context, FALSE);
  g_clear_object (&emu->local);
  g_clear_pointer (&emu->images, _emu_images_free);
  if (emu->root != NULL)
    remove_tree (emu->root);
}

E2bEmulator *
e2b_emulator_new (GError **error)
{
  E2bEmulator *emu = g_new0 (E2bEmulator, 1);

  emu->context = g_main_context_new ();
  emu->loop = g_main_loop_new (emu->context, FALSE);
  emu->sandboxes = g_hash_table_new (g_str_hash, g_str_equal);
  emu->snapshots = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, snapshot_free);
  emu->thread = _emu_thread_new ("e2b-emulator", emu->context, emu->loop, start_server, stop_server,
                                 emu, error);
  if (emu->thread == NULL)
    {
      g_prefix_error (error, "Cannot start the E2B emulator: ");
      e2b_emulator_free (emu);
      return NULL;
    }
  return emu;
}

const char *
e2b_emulator_get_api_url (E2bEmulator *self)
{
  return self->url;
}

const char *
e2b_emulator_get_sandbox_url (E2bEmulator *self)
{
  return self->url;
}

const char *
e2b_emulator_get_api_key (E2bEmulator *self)
{
  /* $E2B_EMULATOR_API_KEY, for tests that look for a recognisable key. */
  const char *key = g_getenv ("E2B_EMULATOR_API_KEY");

  return key != NULL && *key != '\0' ? key : E2B_EMULATOR_API_KEY;
}

SandboxBackend *
e2b_emulator_new_backend (E2bEmulator *self)
{
  g_autoptr(GError) error = NULL;
  SandboxBackend *backend = sandbox_backend_new_for_name ("e2b", &error);

  g_assert_no_error (error);
  g_object_set (backend, "api-key", e2b_emulator_get_api_key (self),
                "api-url", e2b_emulator_get_api_url (self),
                "sandbox-url", e2b_emulator_get_sandbox_url (self), NULL);
  return backend;
}

guint
e2b_emulator_count_live (E2bEmulator *self)
{
  return (guint) g_atomic_int_get (&self->live);
}

void
e2b_emulator_set_truncate_next_stream (E2bEmulator *self,
                                       gboolean     truncate)
{
  g_atomic_int_set (&self->truncate_next, truncate ? 1 : 0);
}

void
e2b_emulator_set_keepalive_ms (E2bEmulator *self,
                               guint        ms)
{
  g_atomic_int_set (&self->keepalive_ms, ms);
}

void
e2b_emulator_set_request_hook (E2bEmulator            *self,
                               E2bEmulatorRequestHook  hook,
                               gpointer                user_data)
{
  self->hook = hook;
  self->hook_data = user_data;
}

void
e2b_emulator_free (E2bEmulator *self)
{
  if (self == NULL)
    return;
  if (self->thread != NULL)
    _emu_thread_quit (self->thread, self->context, self->loop);
  g_hash_table_unref (self->sandboxes);
  g_hash_table_unref (self->snapshots);
  g_main_loop_unref (self->loop);
  g_main_context_unref (self->context);
  g_free (self->url);
  g_free (self->root);
  g_free (self);
}

void
e2b_emulator_set_reply_hook (E2bEmulator            *self,
                             E2bEmulatorRequestHook  hook,
                             gpointer                user_data)
{
  self->reply_hook = hook;
  self->reply_hook_data = user_data;
}
