/* libsandbox - path safety of directory downloads (issue 8, item 8): the
 * Daytona and E2B emulators, through their request hooks, answer every
 * directory listing of the real tree with hostile names added ("../escaped", "", ".",
 * "..", names with "/", absolute paths, members of the wrong JSON type).
 * The download must finish (an empty name once made it list the same
 * directory forever), bring exactly the real tree, and write nothing
 * outside the destination.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libsandbox/sandbox.h>

#include "../test-util.h"
#include <json-glib/json-glib.h>

#include "daytona-emulator.h"
#include "e2b-emulator.h"

static DaytonaEmulator *daytona;
static E2bEmulator *e2b;
static char *skip_reason;
static gint hostile;      /* atomic: hooks rewrite listings while set */
static gint rewritten;    /* atomic: how many listings they rewrote */
static gint hostile_errors; /* atomic: the Daytona hook fails downloads with hostile words */
static gint hostile_ids;    /* atomic: the hooks answer creates and listings with hostile ids */
static gint hostile_state;  /* atomic: the Daytona hook answers a sandbox's state with hostile words */
static gint hostile_parts;  /* atomic: the Daytona hook sends one file of a bulk-download twice */
static gint hostile_ctype;  /* atomic: the hooks answer a bulk-download (Daytona) or a command (E2B) with a hostile content type */
static gint hostile_port;   /* atomic: the Daytona hook answers preview URLs: 1 hostile URL, 2 hostile token, 3 javascript: */

/* What a hostile provider (or a remote sandbox's file name) says: a
 * window title and clipboard (OSC 0 and 52), a C1 CSI erasing the
 * screen and a right-to-left override (JSON escapes). */
#define HOSTILE_WORDS "\\u001b]0;TITLE\\u0007\\u001b]52;c;ZWNobyBwd25lZAo=\\u0007 \\u009b2J \\u202egnp.exe"

/* The hostile entries, as each API spells a file. */
static const char *daytona_extra =
  "[{\"name\":\"../escaped\",\"isDir\":false},{\"name\":\"\",\"isDir\":true},"
  "{\"name\":\".\",\"isDir\":true},{\"name\":\"..\",\"isDir\":true},"
  "{\"name\":\"/etc\",\"isDir\":true},{\"name\":\"a/../../escaped\",\"isDir\":false},"
  "{\"name\":{},\"isDir\":{}},{\"name\":7},\"not an object\",null]";
static const char *e2b_extra =
  "[{\"name\":\"../escaped\",\"type\":\"FILE_TYPE_FILE\"},{\"name\":\"\",\"type\":\"FILE_TYPE_DIRECTORY\"},"
  "{\"name\":\".\",\"type\":\"FILE_TYPE_DIRECTORY\"},{\"name\":\"..\",\"type\":\"FILE_TYPE_DIRECTORY\"},"
  "{\"name\":\"/etc\",\"type\":\"FILE_TYPE_DIRECTORY\"},{\"name\":\"a/../../escaped\",\"type\":\"FILE_TYPE_FILE\"},"
  "{\"name\":{},\"type\":[]},{\"name\":7},\"not an object\",null]";

/* The listing of the tree the test makes in the sandbox (/tmp/t: a file
 * "ok", a directory "sub" holding "inner"), as a JSON array in the
 * spelling of @api, with the hostile entries of @extra after it. */
static char *
listing (const char *dir,
         gboolean    daytona_api,
         const char *extra)
{
  g_autoptr(GString) json = g_string_new ("[");

  if (g_strcmp0 (dir, "/tmp/t") == 0)
    g_string_append (json, daytona_api
                     ? "{\"name\":\"ok\",\"isDir\":false,\"size\":3},{\"name\":\"sub\",\"isDir\":true},"
                     : "{\"name\":\"ok\",\"type\":\"FILE_TYPE_FILE\",\"path\":\"/tmp/t/ok\"},"
                       "{\"name\":\"sub\",\"type\":\"FILE_TYPE_DIRECTORY\",\"path\":\"/tmp/t/sub\"},");
  else if (g_strcmp0 (dir, "/tmp/t/sub") == 0)
    g_string_append (json, daytona_api
                     ? "{\"name\":\"inner\",\"isDir\":false,\"size\":3},"
                     : "{\"name\":\"inner\",\"type\":\"FILE_TYPE_FILE\",\"path\":\"/tmp/t/sub/inner\"},");
  /* the hostile entries, without their brackets */
  g_string_append_len (json, extra + 1, strlen (extra) - 2);
  g_string_append_c (json, ']');
  return g_string_free (g_steal_pointer (&json), FALSE);
}

static void
answer (SoupServerMessage *msg,
        const char        *json)
{
  soup_server_message_set_status (msg, 200, NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_COPY, json, strlen (json));
  g_atomic_int_inc (&rewritten);
}

/* Daytona, with hostile_errors set: the bulk-download of a directory
 * answers an "error" part whose file name and message hold escape
 * sequences, and the GET of a single file a 404 whose message does. */
static gboolean
daytona_errors (SoupServerMessage *msg,
                const char        *path)
{
  const char *method = soup_server_message_get_method (msg);
  const char *query;
  g_autoptr(GHashTable) params = NULL;

  if (strcmp (method, "POST") == 0 && g_str_has_suffix (path, "/files/bulk-download"))
    {
      static const char body[] =
        "--XyZ\r\n"
        "Content-Disposition: form-data; name=\"error\"; filename=\"/tmp/t/\x1b]0;T\x07ok\xff\"\r\n"
        "Content-Type: application/json\r\n\r\n"
        "{\"message\":\"" HOSTILE_WORDS "\",\"code\":\"FILE_NOT_FOUND\"}\r\n"
        "--XyZ--\r\n";

      soup_server_message_set_status (msg, 200, NULL);
      soup_server_message_set_response (msg, "multipart/form-data; boundary=XyZ", SOUP_MEMORY_STATIC,
                                        body, strlen (body));
      g_atomic_int_inc (&rewritten);
      return TRUE;
    }
  query = g_uri_get_query (soup_server_message_get_uri (msg));
  params = query ? g_uri_parse_params (query, -1, "&", G_URI_PARAMS_NONE, NULL) : NULL;
  if (strcmp (method, "GET") == 0 && g_str_has_suffix (path, "/files/download") &&
      params != NULL && g_strcmp0 (g_hash_table_lookup (params, "path"), "/tmp/t/ok") == 0)
    {
      static const char body[] = "{\"message\":\"" HOSTILE_WORDS "\"}";

      soup_server_message_set_status (msg, 404, NULL);
      soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_STATIC, body, strlen (body));
      g_atomic_int_inc (&rewritten);
      return TRUE;
    }
  return FALSE;
}

/* A sandbox id as a hostile provider gives it: a window title, the
 * clipboard (OSC 52) and a C1 CSI (JSON escapes). */
#define HOSTILE_ID "\\u001b]0;TITLE\\u0007\\u001b]52;c;ZWNobyBwd25lZAo=\\u0007\\u009b2J"

/* A content type that clears the screen and colours what follows, with a
 * C1 CSI (in UTF-8) after it. */
#define HOSTILE_CTYPE "text/\033[2J\033[31mred\302\2332J"

/* Daytona, with hostile_ids set: a create (POST /api/sandbox) answered
 * with a started sandbox of a hostile id, a listing with one; with
 * hostile_state set, a sandbox's GET with a hostile state. */
static gboolean
daytona_hostile_api (SoupServerMessage *msg,
                     const char        *path)
{
  const char *method = soup_server_message_get_method (msg);
  const char *body = NULL;
  g_autofree char *made = NULL;

  if (g_atomic_int_get (&hostile_ids) && strcmp (path, "/api/sandbox") == 0)
    body = strcmp (method, "POST") == 0
      ? "{\"id\":\"" HOSTILE_ID "\",\"state\":\"started\",\"labels\":{}}"
      : "[{\"id\":\"" HOSTILE_ID "\",\"state\":\"started\",\"labels\":{}},"
        "{\"id\":\"../x\",\"state\":\"started\",\"labels\":{}},"
        "{\"id\":\"ok-1\",\"state\":\"started\",\"labels\":{}}]";
  else if (g_atomic_int_get (&hostile_state) && strcmp (method, "GET") == 0 &&
           g_str_has_prefix (path, "/api/sandbox/") && strchr (path + strlen ("/api/sandbox/"), '/') == NULL)
    body = made = g_strdup_printf ("{\"id\":\"%s\",\"state\":\"" HOSTILE_ID "\",\"labels\":{}}",
                                   path + strlen ("/api/sandbox/"));
  else if (g_atomic_int_get (&hostile_port) && g_str_has_suffix (path, "/preview-url"))
    body = g_atomic_int_get (&hostile_port) == 1
      ? "{\"url\":\"https://8080-x.example/" HOSTILE_ID "\",\"token\":\"t\"}"
      : g_atomic_int_get (&hostile_port) == 2
      ? "{\"url\":\"https://8080-x.example/\",\"token\":\"t" HOSTILE_ID "\"}"
      : "{\"url\":\"javascript:alert(1)//\"}";
  else if (g_atomic_int_get (&hostile_ctype) && strcmp (method, "POST") == 0 &&
           g_str_has_suffix (path, "/files/bulk-download"))
    {
      soup_server_message_set_status (msg, 200, NULL);
      soup_server_message_set_response (msg, HOSTILE_CTYPE, SOUP_MEMORY_STATIC, "x", 1);
      g_atomic_int_inc (&rewritten);
      return TRUE;
    }
  else if (g_atomic_int_get (&hostile_parts) && strcmp (method, "POST") == 0 &&
           g_str_has_suffix (path, "/files/bulk-download"))
    {
      /* Both files asked for: /tmp/t/ok twice, /tmp/t/sub/inner never. */
      static const char parts[] =
        "--XyZ\r\n"
        "Content-Disposition: form-data; name=\"file\"; filename=\"/tmp/t/ok\"\r\n"
        "Content-Type: application/octet-stream\r\n\r\n"
        "ok\n\r\n"
        "--XyZ\r\n"
        "Content-Disposition: form-data; name=\"file\"; filename=\"/tmp/t/ok\"\r\n"
        "Content-Type: application/octet-stream\r\n\r\n"
        "ok\n\r\n"
        "--XyZ--\r\n";

      soup_server_message_set_status (msg, 200, NULL);
      soup_server_message_set_response (msg, "multipart/form-data; boundary=XyZ", SOUP_MEMORY_STATIC,
                                        parts, strlen (parts));
      g_atomic_int_inc (&rewritten);
      return TRUE;
    }
  if (body == NULL)
    return FALSE;
  soup_server_message_set_status (msg, 200, NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_COPY, body, strlen (body));
  g_atomic_int_inc (&rewritten);
  return TRUE;
}

/* Daytona: GET .../files?path=DIR */
static gboolean
daytona_listing (DaytonaEmulator   *emulator,
                 SoupServerMessage *msg,
                 const char        *path,
                 gpointer           user_data)
{
  const char *query = g_uri_get_query (soup_server_message_get_uri (msg));
  g_autoptr(GHashTable) params = NULL;
  g_autofree char *json = NULL;

  if (g_atomic_int_get (&hostile_errors) && daytona_errors (msg, path))
    return TRUE;
  if (daytona_hostile_api (msg, path))
    return TRUE;

  if (!g_atomic_int_get (&hostile) || strcmp (soup_server_message_get_method (msg), "GET") != 0 ||
      !g_str_has_suffix (path, "/files") || query == NULL)
    return FALSE;
  params = g_uri_parse_params (query, -1, "&", G_URI_PARAMS_NONE, NULL);
  json = listing (params ? g_hash_table_lookup (params, "path") : NULL, TRUE, daytona_extra);
  answer (msg, json);
  return TRUE;
}

/* E2B: POST .../filesystem.Filesystem/ListDir {"path": DIR} */
static gboolean
e2b_listing (E2bEmulator       *emulator,
             SoupServerMessage *msg,
             const char        *path,
             gpointer           user_data)
{
  SoupMessageBody *body = soup_server_message_get_request_body (msg);
  g_autoptr(GBytes) flat = NULL;
  g_autoptr(JsonParser) parser = json_parser_new ();
  const char *dir = NULL;
  g_autofree char *entries = NULL;
  g_autofree char *json = NULL;

  if (g_atomic_int_get (&hostile_ids) && (strcmp (path, "/sandboxes") == 0 || strcmp (path, "/v2/sandboxes") == 0))
    {
      /* A create answered with a sandbox of a hostile id, a listing with one. */
      static const char created[] =
        "{\"sandboxID\":\"" HOSTILE_ID "\",\"clientID\":\"c\",\"envdAccessToken\":\"t\",\"templateID\":\"base\"}";
      static const char listed[] =
        "[{\"sandboxID\":\"" HOSTILE_ID "\",\"clientID\":\"c\",\"state\":\"running\",\"metadata\":{}},"
        "{\"sandboxID\":\"a/../b\",\"clientID\":\"c\",\"state\":\"running\",\"metadata\":{}},"
        "{\"sandboxID\":\"ok1\",\"clientID\":\"c\",\"state\":\"running\",\"metadata\":{}}]";
      gboolean post = strcmp (soup_server_message_get_method (msg), "POST") == 0;

      soup_server_message_set_status (msg, post ? 201 : 200, NULL);
      soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_STATIC,
                                        post ? created : listed, strlen (post ? created : listed));
      g_atomic_int_inc (&rewritten);
      return TRUE;
    }
  if (g_atomic_int_get (&hostile_ctype) && g_str_has_suffix (path, "/process.Process/Start"))
    {
      soup_server_message_set_status (msg, 200, NULL);
      soup_server_message_set_response (msg, HOSTILE_CTYPE, SOUP_MEMORY_STATIC, "x", 1);
      g_atomic_int_inc (&rewritten);
      return TRUE;
    }
  if (!g_atomic_int_get (&hostile) || !g_str_has_suffix (path, "/filesystem.Filesystem/ListDir"))
    return FALSE;
  flat = soup_message_body_flatten (body);
  if (g_bytes_get_size (flat) > 0 &&
      json_parser_load_from_data (parser, g_bytes_get_data (flat, NULL), g_bytes_get_size (flat), NULL) &&
      JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    dir = json_object_get_string_member_with_default (json_node_get_object (json_parser_get_root (parser)),
                                                      "path", NULL);
  entries = listing (dir, FALSE, e2b_extra);
  json = g_strdup_printf ("{\"entries\":%s}", entries);
  answer (msg, json);
  return TRUE;
}

static void
remove_tree (const char *path)
{
  struct stat st;

  if (lstat (path, &st) != 0)
    return;
  if (S_ISDIR (st.st_mode))
    {
      g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
      const char *name;

      while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
        {
          g_autofree char *child = g_build_filename (path, name, NULL);
          remove_tree (child);
        }
      rmdir (path);
    }
  else
    unlink (path);
}

static void
done_cb (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

/* A new sandbox of @backend holding the tree the downloads ask for:
 * /tmp/t/ok and /tmp/t/sub/inner. */
static SandboxInstance *
sandbox_with_tree (SandboxBackend *backend,
                   SandboxSpec    *spec)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(SandboxCommand) command = NULL;
  g_autoptr(SandboxExecResult) result = NULL;
  SandboxInstance *instance = sandbox_backend_create (backend, spec, NULL, &error);

  g_assert_no_error (error);
  command = sandbox_command_new_shell ("mkdir -p /tmp/t/sub && echo ok > /tmp/t/ok && echo in > /tmp/t/sub/inner");
  result = sandbox_instance_exec (instance, command, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (sandbox_exec_result_get_exit_status (result), ==, 0);
  return instance;
}

static void
check_download (SandboxBackend *backend)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autoptr(SandboxInstance) instance = NULL;
  g_autoptr(GAsyncResult) downloaded = NULL;
  g_autofree char *root = g_dir_make_tmp ("test-hostile-XXXXXX", NULL);
  g_autofree char *dest = g_build_filename (root, "dest", NULL);
  g_autofree char *sub = g_build_filename (dest, "sub", NULL);
  g_autofree char *ok = g_build_filename (dest, "ok", NULL);
  g_autofree char *names = NULL;
  g_autofree char *contents = NULL;
  g_autoptr(GFile) dest_file = g_file_new_for_path (dest);
  gint64 deadline;

  sandbox_spec_set_label (spec, "suite", "test-hostile-listing");
  instance = sandbox_with_tree (backend, spec);

  g_atomic_int_set (&rewritten, 0);
  g_atomic_int_set (&hostile, 1);
  sandbox_instance_download_async (instance, "/tmp/t", dest_file, NULL, done_cb, &downloaded);
  /* Never hangs: an empty name once listed the same directory forever. */
  deadline = g_get_monotonic_time () + 30 * G_USEC_PER_SEC;
  while (downloaded == NULL && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, TRUE);
  g_atomic_int_set (&hostile, 0);
  g_assert_nonnull (downloaded);
  g_assert_true (sandbox_instance_download_finish (instance, downloaded, &error));
  g_assert_no_error (error);

  /* Both listings were hostile, and only the real tree arrived. */
  g_assert_cmpint (g_atomic_int_get (&rewritten), ==, 2);
  names = test_names_in (root);
  g_assert_cmpstr (names, ==, "dest");
  g_free (names);
  names = test_names_in (dest);
  g_assert_cmpstr (names, ==, "ok sub");
  g_free (names);
  names = test_names_in (sub);
  g_assert_cmpstr (names, ==, "inner");
  contents = NULL;
  g_assert_true (g_file_get_contents (ok, &contents, NULL, NULL));
  g_assert_cmpstr (contents, ==, "ok\n");

  g_assert_true (sandbox_instance_destroy (instance, NULL, &error));
  g_assert_no_error (error);
  remove_tree (root);
}

static void
test_daytona (void)
{
  g_autoptr(SandboxBackend) backend = NULL;

  if (daytona == NULL)
    {
      g_test_skip (skip_reason);
      return;
    }
  backend = daytona_emulator_new_backend (daytona);
  check_download (backend);
  g_assert_cmpuint (daytona_emulator_count_live (daytona), ==, 0);
}

static void
test_e2b (void)
{
  g_autoptr(SandboxBackend) backend = NULL;

  if (e2b == NULL)
    {
      g_test_skip (skip_reason);
      return;
    }
  backend = e2b_emulator_new_backend (e2b);
  check_download (backend);
  g_assert_cmpuint (e2b_emulator_count_live (e2b), ==, 0);
}

/* A message a user may see on a terminal: UTF-8, no control character
 * (C0, DEL, C1), no bidirectional formatting character. */
static void
assert_displayable (const char *message)
{
  const char *p;

  g_test_message ("shown: %s", message);
  g_assert_true (g_utf8_validate (message, -1, NULL));
  for (p = message; *p != '\0'; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);

      g_assert_false (c < 0x20 || (c >= 0x7f && c < 0xa0));
      g_assert_false (c == 0x202e || c == 0x200f || (c >= 0x2066 && c <= 0x2069));
    }
}

/* Daytona's words in a download's error (an "error" part of
 * bulk-download, a 404 of a single file's GET) and the file name a part
 * names went into the GError as they came: escape sequences (the C1 CSI,
 * the right-to-left override; the REST client turned only C0 controls
 * into spaces, the bulk-download's message kept them all) reached the
 * terminal that shows sandboxctl's error. Now each is shown escaped. */
static void
test_daytona_error_text (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(SandboxBackend) backend = NULL;
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autoptr(SandboxInstance) instance = NULL;
  g_autofree char *root = NULL;
  g_autofree char *dest = NULL;
  g_autofree char *single = NULL;
  g_autoptr(GFile) dest_file = NULL;
  g_autoptr(GFile) single_file = NULL;

  if (daytona == NULL)
    {
      g_test_skip (skip_reason);
      return;
    }
  root = g_dir_make_tmp ("test-hostile-XXXXXX", NULL);
  dest = g_build_filename (root, "dest", NULL);
  single = g_build_filename (root, "single", NULL);
  dest_file = g_file_new_for_path (dest);
  single_file = g_file_new_for_path (single);
  backend = daytona_emulator_new_backend (daytona);
  sandbox_spec_set_label (spec, "suite", "test-hostile-listing");
  instance = sandbox_with_tree (backend, spec);

  g_atomic_int_set (&rewritten, 0);
  g_atomic_int_set (&hostile_errors, 1);
  g_assert_false (sandbox_instance_download (instance, "/tmp/t", dest_file, NULL, &error));
  g_assert_nonnull (error);
  assert_displayable (error->message);
  g_assert_nonnull (strstr (error->message, "\\x1b"));
  g_clear_error (&error);
  g_assert_false (sandbox_instance_download (instance, "/tmp/t/ok", single_file, NULL, &error));
  g_assert_nonnull (error);
  assert_displayable (error->message);
  g_clear_error (&error);
  g_atomic_int_set (&hostile_errors, 0);
  g_assert_cmpint (g_atomic_int_get (&rewritten), >=, 2);

  g_assert_true (sandbox_instance_destroy (instance, NULL, &error));
  g_assert_no_error (error);
  remove_tree (root);
}

/* The ids in a listing: "ok-1" only, the hostile ones left out. */
static void
check_listed_ids (SandboxBackend *backend,
                  const char     *want)
{
  g_autoptr(GError) error = NULL;
  GList *listed = sandbox_backend_list (backend, NULL, NULL, &error);
  g_autoptr(GString) ids = g_string_new (NULL);

  g_assert_no_error (error);
  for (GList *l = listed; l != NULL; l = l->next)
    {
      assert_displayable (sandbox_instance_get_id (l->data));
      g_string_append_printf (ids, "%s%s", ids->len ? " " : "", sandbox_instance_get_id (l->data));
    }
  g_list_free_full (listed, g_object_unref);
  g_assert_cmpstr (ids->str, ==, want);
}

/* A hostile provider (or anyone between) names a new sandbox with escape
 * sequences: the id went into every message that names the sandbox
 * (sandboxctl's "destroying sandbox ID", a command's failure), into URLs
 * and into the caller's scripts (--id-env, a Metaflow step's metadata).
 * The create is now refused with a message showing the id escaped, and a
 * listing leaves such a sandbox out. Before, the create succeeded with it. */
static void
test_provider_ids (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(SandboxBackend) dbackend = NULL;
  g_autoptr(SandboxBackend) ebackend = NULL;
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autoptr(SandboxInstance) instance = NULL;

  if (daytona == NULL || e2b == NULL)
    {
      g_test_skip (skip_reason);
      return;
    }
  sandbox_spec_set_label (spec, "suite", "test-hostile-listing");
  dbackend = daytona_emulator_new_backend (daytona);
  ebackend = e2b_emulator_new_backend (e2b);

  g_atomic_int_set (&rewritten, 0);
  g_atomic_int_set (&hostile_ids, 1);
  instance = sandbox_backend_create (dbackend, spec, NULL, &error);
  g_assert_null (instance);
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL);
  assert_displayable (error->message);
  g_assert_nonnull (strstr (error->message, "\\x1b]52;c;"));
  g_clear_error (&error);
  check_listed_ids (dbackend, "ok-1");

  instance = sandbox_backend_create (ebackend, spec, NULL, &error);
  g_assert_null (instance);
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL);
  assert_displayable (error->message);
  g_assert_nonnull (strstr (error->message, "\\x1b]52;c;"));
  g_clear_error (&error);
  check_listed_ids (ebackend, "ok1");
  g_atomic_int_set (&hostile_ids, 0);
  g_assert_cmpint (g_atomic_int_get (&rewritten), >=, 4);
  g_assert_cmpuint (daytona_emulator_count_live (daytona), ==, 0);
  g_assert_cmpuint (e2b_emulator_count_live (e2b), ==, 0);
}

/* Daytona says a starting sandbox is in a state of escape sequences until
 * the create gives up: the message quoted the state as it came ("it is
 * still “...”"). Now escaped. */
static void
test_daytona_state_text (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(SandboxBackend) backend = NULL;
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autoptr(SandboxInstance) instance = NULL;

  if (daytona == NULL)
    {
      g_test_skip (skip_reason);
      return;
    }
  backend = daytona_emulator_new_backend (daytona);
  g_object_set (backend, "start-timeout", 1u, NULL);
  sandbox_spec_set_label (spec, "suite", "test-hostile-listing");
  g_atomic_int_set (&rewritten, 0);
  g_atomic_int_set (&hostile_state, 1);
  instance = sandbox_backend_create (backend, spec, NULL, &error);
  g_atomic_int_set (&hostile_state, 0);
  g_assert_null (instance);
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_TIMEOUT);
  assert_displayable (error->message);
  g_assert_nonnull (strstr (error->message, "\\x1b]0;TITLE"));
  g_assert_cmpint (g_atomic_int_get (&rewritten), >=, 1);
  g_assert_cmpuint (daytona_emulator_count_live (daytona), ==, 0);
}

/* Daytona answers a port's preview URL with escape sequences in the URL
 * or its token, or with a javascript: URL: sandboxctl port-url printed
 * them as they came. Now refused, the words shown escaped; control: the
 * emulator's own URL. */
static void
test_daytona_port_url (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(SandboxBackend) backend = NULL;
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autoptr(SandboxInstance) instance = NULL;
  g_autofree char *url = NULL;
  g_autofree char *token = NULL;

  if (daytona == NULL)
    {
      g_test_skip (skip_reason);
      return;
    }
  backend = daytona_emulator_new_backend (daytona);
  sandbox_spec_set_label (spec, "suite", "test-hostile-listing");
  instance = sandbox_backend_create (backend, spec, NULL, &error);
  g_assert_no_error (error);

  for (int kind = 1; kind <= 3; kind++)
    {
      g_atomic_int_set (&hostile_port, kind);
      url = sandbox_instance_dup_port_url (instance, 8080, &token, NULL, &error);
      g_atomic_int_set (&hostile_port, 0);
      g_test_message ("kind %d: url %s", kind, url ? url : "(none)");
      g_assert_null (url);
      g_assert_null (token);
      g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL);
      assert_displayable (error->message);
      g_clear_error (&error);
    }
  url = sandbox_instance_dup_port_url (instance, 8080, &token, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (url, "http"));

  g_assert_true (sandbox_instance_destroy (instance, NULL, &error));
  g_assert_no_error (error);
}

/* Daytona answers a directory's bulk-download with one of its two files
 * twice and the other never: the parts were counted, not the files, so
 * the download said it was complete without sub/inner. Now refused. */
static void
test_daytona_repeated_part (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(SandboxBackend) backend = NULL;
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autoptr(SandboxInstance) instance = NULL;
  g_autofree char *root = NULL;
  g_autofree char *dest = NULL;
  g_autoptr(GFile) dest_file = NULL;

  if (daytona == NULL)
    {
      g_test_skip (skip_reason);
      return;
    }
  root = g_dir_make_tmp ("test-hostile-XXXXXX", NULL);
  dest = g_build_filename (root, "dest", NULL);
  dest_file = g_file_new_for_path (dest);
  backend = daytona_emulator_new_backend (daytona);
  sandbox_spec_set_label (spec, "suite", "test-hostile-listing");
  instance = sandbox_with_tree (backend, spec);

  g_atomic_int_set (&rewritten, 0);
  g_atomic_int_set (&hostile_parts, 1);
  g_assert_false (sandbox_instance_download (instance, "/tmp/t", dest_file, NULL, &error));
  g_atomic_int_set (&hostile_parts, 0);
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_PROTOCOL);
  assert_displayable (error->message);
  g_clear_error (&error);
  g_assert_cmpint (g_atomic_int_get (&rewritten), ==, 1);

  g_assert_true (sandbox_instance_destroy (instance, NULL, &error));
  g_assert_no_error (error);
  remove_tree (root);
}

/* A provider answers a Daytona bulk-download and an E2B command with a
 * content type of escape sequences: the messages quoted it as it came. */
static void
test_content_type_text (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(SandboxBackend) dbackend = NULL;
  g_autoptr(SandboxBackend) ebackend = NULL;
  g_autoptr(SandboxSpec) spec = sandbox_spec_new ();
  g_autoptr(SandboxInstance) instance = NULL;
  g_autoptr(SandboxInstance) einstance = NULL;
  g_autoptr(SandboxCommand) probe = NULL;
  g_autoptr(SandboxExecResult) result = NULL;
  g_autofree char *root = NULL;
  g_autofree char *dest = NULL;
  g_autoptr(GFile) dest_file = NULL;

  if (daytona == NULL || e2b == NULL)
    {
      g_test_skip (skip_reason);
      return;
    }
  root = g_dir_make_tmp ("test-hostile-XXXXXX", NULL);
  dest = g_build_filename (root, "dest", NULL);
  dest_file = g_file_new_for_path (dest);
  sandbox_spec_set_label (spec, "suite", "test-hostile-listing");
  dbackend = daytona_emulator_new_backend (daytona);
  instance = sandbox_with_tree (dbackend, spec);

  g_atomic_int_set (&rewritten, 0);
  g_atomic_int_set (&hostile_ctype, 1);
  g_assert_false (sandbox_instance_download (instance, "/tmp/t", dest_file, NULL, &error));
  g_assert_nonnull (error);
  assert_displayable (error->message);
  g_clear_error (&error);

  ebackend = e2b_emulator_new_backend (e2b);
  einstance = sandbox_backend_create (ebackend, spec, NULL, &error);
  g_assert_no_error (error);
  probe = sandbox_command_new_shell ("true");
  g_clear_object (&result);
  result = sandbox_instance_exec (einstance, probe, NULL, &error);
  g_atomic_int_set (&hostile_ctype, 0);
  g_assert_null (result);
  g_assert_nonnull (error);
  assert_displayable (error->message);
  g_clear_error (&error);
  g_assert_cmpint (g_atomic_int_get (&rewritten), >=, 2);

  g_assert_true (sandbox_instance_destroy (instance, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (sandbox_instance_destroy (einstance, NULL, &error));
  g_assert_no_error (error);
  remove_tree (root);
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GError) error = NULL;
  int status;

  g_test_init (&argc, &argv, NULL);
  g_unsetenv ("E2B_API_URL");
  g_unsetenv ("E2B_SANDBOX_URL");
  g_unsetenv ("E2B_DOMAIN");
  g_setenv ("DAYTONA_EMULATOR_STATE_DELAY_MS", "20", TRUE);

  /* Without bwrap (or the exec helper) the emulators cannot run commands:
   * the tests are skipped, as test-daytona and test-e2b do. */
  daytona = daytona_emulator_new (&error);
  if (daytona != NULL)
    daytona_emulator_set_hook (daytona, daytona_listing, NULL);
  else
    {
      g_free (skip_reason);
      skip_reason = g_strdup (error->message);
    }
  g_clear_error (&error);
  e2b = e2b_emulator_new (&error);
  if (e2b != NULL)
    e2b_emulator_set_request_hook (e2b, e2b_listing, NULL);
  else
    {
      g_free (skip_reason);
      skip_reason = g_strdup (error->message);
    }

  g_test_add_func ("/hostile-listing/daytona", test_daytona);
  g_test_add_func ("/hostile-listing/e2b", test_e2b);
  g_test_add_func ("/hostile-listing/daytona-error-text", test_daytona_error_text);
  g_test_add_func ("/hostile-listing/provider-ids", test_provider_ids);
  g_test_add_func ("/hostile-listing/daytona-state-text", test_daytona_state_text);
  g_test_add_func ("/hostile-listing/daytona-port-url", test_daytona_port_url);
  g_test_add_func ("/hostile-listing/daytona-repeated-part", test_daytona_repeated_part);
  g_test_add_func ("/hostile-listing/content-type-text", test_content_type_text);
  status = g_test_run ();
  g_clear_pointer (&e2b, e2b_emulator_free);
  g_clear_pointer (&daytona, daytona_emulator_free);
  return status;
}
