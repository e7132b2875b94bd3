/* Fault injection: every backend x fault x operation against the in-process
 * emulators (issue 8). Table-driven; each case is bounded by a watchdog
 * (alarm) that kills the program, so a hang fails the test.
 *
 * What is asserted, for each case:
 *   - a transient fault on a call the client may repeat is retried and the
 *     operation succeeds (and the emulator saw the retry);
 *   - otherwise the operation fails with a SANDBOX_ERROR whose message
 *     names the provider (what happened) — never a hang, never a crash;
 *   - the emulator reports 0 live sandboxes afterwards: no orphan, no
 *     duplicate, even when the provider created the sandbox and then the
 *     answer was lost.
 *
 * The client's I/O timeout is SANDBOX_HTTP_TIMEOUT=4 s (FAULTS_HTTP_TIMEOUT_S
 * overrides it) and its reply limit SANDBOX_HTTP_MAX_REPLY=1 MiB here, so
 * the stall and oversize faults stay fast. It was 1 s, and an unfaulted
 * create (the emulator starts a real local sandbox) outlasted it on a busy
 * machine; the stall and the watchdog are derived from it, so a stall still
 * outlasts the timeout.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>
#include <unistd.h>
#include <glib/gstdio.h>
#include <libsandbox/sandbox.h>

#include "daytona-emulator.h"
#include "e2b-emulator.h"

static guint http_timeout_s = 4;
#define WATCHDOG_S (20 + 3 * http_timeout_s)
#define STALL_MS   (http_timeout_s * 1000 + 1500)   /* longer than the client's timeout */

typedef enum { DAYTONA, E2B } Backend;
typedef enum { OP_CREATE, OP_GET, OP_LIST, OP_EXEC, OP_UPLOAD, OP_DOWNLOAD, OP_DESTROY } Op;
typedef enum {
  F_500, F_502, F_503, F_504, F_429, F_RESET, F_STALL, F_BAD_JSON, F_OVERSIZE,
  F_TRUNCATED_ENVELOPE, F_NO_END, F_OVERSIZE_FRAME,
} Fault;
typedef enum { BEFORE, AFTER } Phase;   /* before or after the emulator handled the request */
typedef enum { EXPECT_OK, EXPECT_ERROR } Expect;

static const char *op_names[] = { "create", "get", "list", "exec", "upload", "download", "destroy" };
static const char *fault_names[] = {
  "500", "502", "503", "504", "429", "reset", "stall", "bad-json", "oversize",
  "truncated-envelope", "no-end", "oversize-frame",
};

/* The armed fault; read and written in the emulator thread under the lock. */
static struct {
  GMutex      lock;
  gboolean    armed;
  const char *method;
  const char *pattern;    /* glob over the path */
  Fault       fault;
  Phase       phase;
  guint       times;      /* how many requests get the fault */
  guint       hits;       /* how many requests got the fault */
  guint       seen;       /* how many requests matched method and pattern */
  gint64      stamps[8];  /* when the first of them arrived (monotonic, us) */
} arm;

static DaytonaEmulator *daytona;
static E2bEmulator *e2b;

/* ------------------------------------------------------------------ */
/* Faults (emulator thread)                                            */

static void
reply (SoupServerMessage *msg,
       guint              status,
       const char        *content_type,
       const char        *body,
       gsize              len)
{
  soup_server_message_set_status (msg, status, NULL);
  soup_message_body_truncate (soup_server_message_get_response_body (msg));
  soup_server_message_set_response (msg, content_type, SOUP_MEMORY_COPY, body, len);
  soup_message_headers_set_content_length (soup_server_message_get_response_headers (msg), len);
}

static gboolean
unstall (gpointer user_data)
{
  SoupServerMessage *msg = user_data;

  reply (msg, 503, "application/json", "{\"message\":\"injected: stalled\"}", 31);
  soup_server_message_unpause (msg);
  g_object_unref (msg);
  return G_SOURCE_REMOVE;
}

static void
envelope (GString    *out,
          guint8      flags,
          const char *json,
          guint32     claimed)
{
  guint32 len = claimed ? claimed : (guint32) strlen (json);
  guint8 header[5] = { flags, len >> 24, (len >> 16) & 0xff, (len >> 8) & 0xff, len & 0xff };

  g_string_append_len (out, (char *) header, 5);
  g_string_append (out, json);
}

static void
inject (SoupServerMessage *msg,
        Fault              fault)
{
  g_autofree char *body = NULL;

  switch (fault)
    {
    case F_500: case F_502: case F_503: case F_504:
      {
        guint status = fault == F_500 ? 500 : fault == F_502 ? 502 : fault == F_503 ? 503 : 504;

        body = g_strdup_printf ("{\"message\":\"injected %u\"}", status);
        reply (msg, status, "application/json", body, strlen (body));
      }
      break;
    case F_429:
      body = g_strdup ("{\"message\":\"injected: slow down\"}");
      reply (msg, 429, "application/json", body, strlen (body));
      soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Retry-After", "1");
      break;
    case F_RESET:
      {
        /* Headers promising more than is sent, then the connection drops. */
        GIOStream *stream = soup_server_message_steal_connection (msg);
        const char *partial = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                              "Content-Length: 4096\r\n\r\n{\"id\":\"sbx-";

        g_output_stream_write_all (g_io_stream_get_output_stream (stream), partial, strlen (partial),
                                   NULL, NULL, NULL);
        g_io_stream_close (stream, NULL, NULL);
        g_object_unref (stream);
      }
      break;
    case F_STALL:
      {
        GSource *source = g_timeout_source_new (STALL_MS);

        if (soup_server_message_get_status (msg) == 0)
          soup_server_message_set_status (msg, 503, NULL);
        soup_server_message_pause (msg);
        g_source_set_callback (source, unstall, g_object_ref (msg), NULL);
        g_source_attach (source, g_main_context_get_thread_default ());
        g_source_unref (source);
      }
      break;
    case F_BAD_JSON:
      reply (msg, 200, "application/json", "{\"id\": \"tru", 11);
      break;
    case F_OVERSIZE:
      {
        gsize len = 2 * 1024 * 1024;
        char *big = g_malloc (len);

        /* A JSON object that is no sandbox, list or file: 2 MiB of padding. */
        memset (big, 'x', len);
        memcpy (big, "{\"pad\":\"", 8);
        memcpy (big + len - 2, "\"}", 2);
        reply (msg, 200, "application/json", big, len);
        g_free (big);
      }
      break;
    case F_TRUNCATED_ENVELOPE:
    case F_NO_END:
    case F_OVERSIZE_FRAME:
      {
        g_autoptr(GString) out = g_string_new (NULL);

        envelope (out, 0, "{\"event\":{\"start\":{\"pid\":42}}}", 0);
        if (fault == F_TRUNCATED_ENVELOPE)
          g_string_append_len (out, "\0\0\0\0\x40{\"event\"", 13);
        else if (fault == F_OVERSIZE_FRAME)
          envelope (out, 0, "{}", 100u * 1024u * 1024u);
        else
          envelope (out, 0, "{\"event\":{\"data\":{\"stdout\":\"aGkK\"}}}", 0);
        reply (msg, 200, "application/connect+json", out->str, out->len);
      }
      break;
    default:
      g_assert_not_reached ();
    }
}

static gboolean
matches (SoupServerMessage *msg,
         const char        *path,
         Phase              phase,
         Fault             *fault)
{
  gboolean hit = FALSE;
  gboolean same;

  g_mutex_lock (&arm.lock);
  same = arm.armed && strcmp (soup_server_message_get_method (msg), arm.method) == 0 &&
         g_pattern_match_simple (arm.pattern, path);
  if (same && phase == BEFORE)
    {
      /* Every request of the route, faulted or not: retries are counted. */
      if (arm.seen < G_N_ELEMENTS (arm.stamps))
        arm.stamps[arm.seen] = g_get_monotonic_time ();
      arm.seen++;
    }
  if (same && arm.phase == phase && arm.times > 0)
    {
      arm.times--;
      arm.hits++;
      *fault = arm.fault;
      hit = TRUE;
    }
  g_mutex_unlock (&arm.lock);
  return hit;
}

static gboolean
before_hook (SoupServerMessage *msg,
             const char        *path)
{
  Fault fault;

  if (!matches (msg, path, BEFORE, &fault))
    return FALSE;
  g_object_set_data (G_OBJECT (msg), "faulted", GINT_TO_POINTER (1));
  inject (msg, fault);
  return TRUE;
}

static void
after_hook (SoupServerMessage *msg,
            const char        *path)
{
  Fault fault;

  if (g_object_get_data (G_OBJECT (msg), "faulted") == NULL && matches (msg, path, AFTER, &fault))
    inject (msg, fault);
}

static gboolean
daytona_before (DaytonaEmulator *e, SoupServerMessage *msg, const char *path, gpointer data)
{
  return before_hook (msg, path);
}

static gboolean
daytona_after (DaytonaEmulator *e, SoupServerMessage *msg, const char *path, gpointer data)
{
  after_hook (msg, path);
  return FALSE;
}

static gboolean
e2b_before (E2bEmulator *e, SoupServerMessage *msg, const char *path, gpointer data)
{
  return before_hook (msg, path);
}

static gboolean
e2b_after (E2bEmulator *e, SoupServerMessage *msg, const char *path, gpointer data)
{
  after_hook (msg, path);
  return FALSE;
}

/* ------------------------------------------------------------------ */
/* The table                                                           */

typedef struct {
  Backend     backend;
  Op          op;
  const char *method;
  const char *pattern;
  gboolean    retried;   /* idempotent: the client may send it again */
  gboolean    rest;      /* retries any 429 (the REST client's policy) */
} Route;

static const Route routes[] = {
  { DAYTONA, OP_CREATE,   "POST",   "/api/sandbox",                      FALSE, TRUE },
  { DAYTONA, OP_GET,      "GET",    "/api/sandbox/*",                    TRUE, TRUE },
  { DAYTONA, OP_LIST,     "GET",    "/api/sandbox",                      TRUE, TRUE },
  { DAYTONA, OP_EXEC,     "POST",   "/toolbox/*/process/session",        FALSE, TRUE },
  { DAYTONA, OP_UPLOAD,   "POST",   "/toolbox/*/files/bulk-upload",      TRUE, TRUE },
  /* One file: GET files/download (a tree goes through bulk-download). */
  { DAYTONA, OP_DOWNLOAD, "GET",    "/toolbox/*/files/download",         TRUE, TRUE },
  { DAYTONA, OP_DESTROY,  "DELETE", "/api/sandbox/*",                    TRUE, TRUE },
  { E2B,     OP_CREATE,   "POST",   "/sandboxes",                        FALSE, TRUE },
  { E2B,     OP_GET,      "GET",    "/sandboxes/*",                      TRUE, TRUE },
  { E2B,     OP_LIST,     "GET",    "/v2/sandboxes",                     TRUE, TRUE },
  { E2B,     OP_EXEC,     "POST",   "/process.Process/Start",            FALSE, TRUE },
  { E2B,     OP_UPLOAD,   "POST",   "/files",                            TRUE, TRUE },
  { E2B,     OP_DOWNLOAD, "GET",    "/files",                            TRUE, TRUE },
  { E2B,     OP_DESTROY,  "DELETE", "/sandboxes/*",                      TRUE, TRUE },
};

typedef struct {
  const Route *route;
  Fault        fault;
  Phase        phase;
  guint        times;
  Expect       expect;
  char        *name;
} Case;

static void
case_free (gpointer data)
{
  Case *c = data;

  g_free (c->name);
  g_free (c);
}

static Expect
expected (const Route *route,
          Fault        fault,
          Phase        phase)
{
  if (phase == AFTER)
    return EXPECT_ERROR;  /* after-phase cases: a lost answer to a create */
  switch (fault)
    {
    case F_429:
      /* Rate limited: the request was not processed, so always retried
       * (by the REST client; hand-made requests are not). */
      return route->rest ? EXPECT_OK : EXPECT_ERROR;
    case F_RESET:
      /* A Daytona download is multipart: a body cut after its headers is
       * found broken while parts are written out, and is not retried. */
      if (route->backend == DAYTONA && route->op == OP_DOWNLOAD)
        return EXPECT_ERROR;
      return route->retried ? EXPECT_OK : EXPECT_ERROR;
    case F_502: case F_503: case F_504: case F_STALL:
      return route->retried ? EXPECT_OK : EXPECT_ERROR;
    case F_500: case F_BAD_JSON: case F_OVERSIZE:
    case F_TRUNCATED_ENVELOPE: case F_NO_END: case F_OVERSIZE_FRAME:
    default:
      return EXPECT_ERROR;
    }
}

/* ------------------------------------------------------------------ */
/* Running one case                                                    */

static SandboxBackend *
backend_new (Backend which)
{
  return which == DAYTONA ? daytona_emulator_new_backend (daytona) : e2b_emulator_new_backend (e2b);
}

static guint
count_live (Backend which)
{
  return which == DAYTONA ? daytona_emulator_count_live (daytona) : e2b_emulator_count_live (e2b);
}

static void
wait_none_live (Backend which)
{
  /* Deletion completes asynchronously in the emulators (state delay). */
  for (guint i = 0; i < 100 && count_live (which) > 0; i++)
    g_usleep (50 * 1000);
  g_assert_cmpuint (count_live (which), ==, 0);
}

/* A writable directory of each emulated sandbox. */
static const char *
home_of (Backend which)
{
  return which == DAYTONA ? "/workspace" : "/home/user";
}

/* The message says what happened (names the provider) and what to do. */
static void
assert_actionable (const char   *name,
                   Backend       which,
                   const GError *error)
{
  static const char * const actions[] = {
    "retry", "Retry", "try again", "again", "check", "Check", "raise", "report", "remove",
    "list", "slow down", "upload", "delete", NULL,
  };
  gboolean has_action = FALSE;

  if (strstr (error->message, which == DAYTONA ? "Daytona" : "E2B") == NULL)
    g_error ("%s: the message does not name the provider: %s", name, error->message);
  for (guint i = 0; actions[i] != NULL; i++)
    has_action |= strstr (error->message, actions[i]) != NULL;
  if (!has_action)
    g_error ("%s: the message does not say what to do: %s", name, error->message);
}

static gboolean
run_op (Op               op,
        Backend          which,
        SandboxBackend  *backend,
        SandboxInstance *instance,
        const char      *dir,
        SandboxInstance **created,
        GError         **error)
{
  switch (op)
    {
    case OP_CREATE:
      {
        g_autoptr(SandboxSpec) spec = sandbox_spec_new ();

        sandbox_spec_set_label (spec, "test", "faults");
        *created = sandbox_backend_create (backend, spec, NULL, error);
        return *created != NULL;
      }
    case OP_GET:
      {
        g_autoptr(SandboxInstance) got = sandbox_backend_get_instance (backend, sandbox_instance_get_id (instance),
                                                                       NULL, error);
        if (got != NULL)
          g_assert_cmpstr (sandbox_instance_get_id (got), ==, sandbox_instance_get_id (instance));
        return got != NULL;
      }
    case OP_LIST:
      {
        GList *list = sandbox_backend_list (backend, NULL, NULL, error);
        gboolean ok = *error == NULL;

        if (ok)
          g_assert_cmpuint (g_list_length (list), ==, 1);
        g_list_free_full (list, g_object_unref);
        return ok;
      }
    case OP_EXEC:
      {
        g_autoptr(SandboxCommand) command = sandbox_command_new_shell ("echo hi");
        g_autoptr(SandboxExecResult) result = sandbox_instance_exec (instance, command, NULL, error);

        if (result != NULL)
          {
            g_assert_cmpint (sandbox_exec_result_get_exit_status (result), ==, 0);
            g_assert_cmpmem (g_bytes_get_data (sandbox_exec_result_get_stdout (result), NULL),
                             g_bytes_get_size (sandbox_exec_result_get_stdout (result)), "hi\n", 3);
          }
        return result != NULL;
      }
    case OP_UPLOAD:
      {
        g_autofree char *path = g_build_filename (dir, "up.txt", NULL);
        g_autoptr(GFile) file = g_file_new_for_path (path);

        g_autofree char *dest = g_strconcat (home_of (which), "/up.txt", NULL);

        g_assert_true (g_file_set_contents (path, "payload\n", -1, NULL));
        return sandbox_instance_upload (instance, file, dest, NULL, error);
      }
    case OP_DOWNLOAD:
      {
        g_autofree char *path = g_build_filename (dir, "down.txt", NULL);
        g_autoptr(GFile) file = g_file_new_for_path (path);
        g_autofree char *contents = NULL;
        g_autofree char *src = g_strconcat (home_of (which), "/seed.txt", NULL);

        if (!sandbox_instance_download (instance, src, file, NULL, error))
          return FALSE;
        g_assert_true (g_file_get_contents (path, &contents, NULL, NULL));
        g_assert_cmpstr (contents, ==, "seed\n");
        return TRUE;
      }
    case OP_DESTROY:
      return sandbox_instance_destroy (instance, NULL, error);
    default:
      g_assert_not_reached ();
    }
}

static void
run_case (gconstpointer user_data)
{
  const Case *c = user_data;
  const Route *route = c->route;
  g_autoptr(SandboxBackend) backend = backend_new (route->backend);
  g_autoptr(SandboxInstance) instance = NULL;
  g_autoptr(SandboxInstance) created = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("test-faults-XXXXXX", NULL);
  gboolean ok;

  alarm (WATCHDOG_S);
  if (route->op != OP_CREATE)
    {
      g_autoptr(SandboxSpec) spec = sandbox_spec_new ();

      instance = sandbox_backend_create (backend, spec, NULL, &error);
      g_assert_no_error (error);
      if (route->op == OP_DOWNLOAD)
        {
          g_autofree char *script = g_strdup_printf ("echo seed > %s/seed.txt", home_of (route->backend));
          g_autoptr(SandboxCommand) seed = sandbox_command_new_shell (script);
          g_autoptr(SandboxExecResult) r = sandbox_instance_exec (instance, seed, NULL, &error);

          g_assert_no_error (error);
          g_assert_cmpint (sandbox_exec_result_get_exit_status (r), ==, 0);
        }
    }

  g_mutex_lock (&arm.lock);
  arm.method = route->method;
  arm.pattern = route->pattern;
  arm.fault = c->fault;
  arm.phase = c->phase;
  arm.times = c->times;
  arm.hits = 0;
  arm.seen = 0;
  arm.armed = TRUE;
  g_mutex_unlock (&arm.lock);

  ok = run_op (route->op, route->backend, backend, instance, dir, &created, &error);

  g_mutex_lock (&arm.lock);
  arm.armed = FALSE;
  g_mutex_unlock (&arm.lock);

  g_test_message ("%s: %s", c->name, error ? error->message : "ok");
  g_assert_cmpuint (arm.hits, ==, 1);   /* the fault was really injected, once */
  if (c->expect == EXPECT_OK)
    {
      g_assert_no_error (error);
      g_assert_true (ok);
      /* Sent again exactly once, after a wait: Retry-After (1 s) for a
       * 429, else the backoff base (20 ms, -20% jitter). Lower bounds only:
       * timers never fire early. */
      g_assert_cmpuint (arm.seen, ==, 2);
      g_assert_cmpint (arm.stamps[1] - arm.stamps[0], >=, c->fault == F_429 ? 990 * 1000 : 16 * 1000);
    }
  else
    {
      g_assert_false (ok);
      g_assert_nonnull (error);
      if (error->domain != SANDBOX_ERROR)
        g_error ("%s: expected a SANDBOX_ERROR, got %s %d: %s", c->name,
                 g_quark_to_string (error->domain), error->code, error->message);
      assert_actionable (c->name, route->backend, error);
      /* Not sent again: a non-idempotent call (no duplicate create), or a
       * fault that repeating would not cure. */
      g_assert_cmpuint (arm.seen, ==, 1);
    }

  if (created != NULL)
    g_assert_true (sandbox_instance_destroy (created, NULL, NULL));
  if (instance != NULL)
    {
      g_clear_error (&error);
      sandbox_instance_destroy (instance, NULL, &error);
      g_assert_no_error (error);
    }
  wait_none_live (route->backend);
  {
    g_autofree char *cmd = g_strdup_printf ("rm -rf '%s'", dir);
    g_spawn_command_line_sync (cmd, NULL, NULL, NULL, NULL);
  }
  alarm (0);
}

/* A fault that persists: the retries are capped, then a SANDBOX_ERROR. */
static void
test_capped (gconstpointer user_data)
{
  Backend which = GPOINTER_TO_INT (user_data);
  g_autoptr(SandboxBackend) backend = backend_new (which);
  g_autoptr(GError) error = NULL;
  g_autoptr(SandboxInstance) got = NULL;

  alarm (WATCHDOG_S);
  g_mutex_lock (&arm.lock);
  arm.method = "GET";
  arm.pattern = which == DAYTONA ? "/api/sandbox/*" : "/sandboxes/*";
  arm.fault = F_503;
  arm.phase = BEFORE;
  arm.times = 1000;
  arm.hits = 0;
  arm.seen = 0;
  arm.armed = TRUE;
  g_mutex_unlock (&arm.lock);
  got = sandbox_backend_get_instance (backend, "sbx-doesnotexist", NULL, &error);
  g_mutex_lock (&arm.lock);
  arm.armed = FALSE;
  g_mutex_unlock (&arm.lock);
  g_assert_null (got);
  g_assert_error (error, SANDBOX_ERROR, SANDBOX_ERROR_UNAVAILABLE);
  g_assert_nonnull (strstr (error->message, "503"));
  /* 1 + the default 4 retries, and no more. */
  g_assert_cmpuint (arm.hits, ==, 5);
  g_assert_cmpuint (arm.seen, ==, 5);
  /* Exponential, capped: base 20 ms doubling to the 50 ms cap, each wait
   * at least 80% of its nominal value (jitter); lower bounds only. */
  {
    const gint64 nominal_ms[] = { 20, 40, 50, 50 };

    for (guint i = 0; i < G_N_ELEMENTS (nominal_ms); i++)
      g_assert_cmpint (arm.stamps[i + 1] - arm.stamps[i], >=, nominal_ms[i] * 800);
  }
  assert_actionable ("capped", which, error);
  alarm (0);
}

static void
add (const Route *route,
     Fault        fault,
     Phase        phase)
{
  Case *c = g_new0 (Case, 1);

  c->route = route;
  c->fault = fault;
  c->phase = phase;
  c->times = 1;
  c->expect = expected (route, fault, phase);
  c->name = g_strdup_printf ("/faults/%s/%s/%s%s", route->backend == DAYTONA ? "daytona" : "e2b",
                             op_names[route->op], fault_names[fault], phase == AFTER ? "-after" : "");
  g_test_add_data_func_full (c->name, c, run_case, case_free);
}

int
main (int argc, char **argv)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *root = NULL;

  if (g_getenv ("FAULTS_HTTP_TIMEOUT_S") != NULL)
    http_timeout_s = MAX (1, (guint) g_ascii_strtoull (g_getenv ("FAULTS_HTTP_TIMEOUT_S"), NULL, 10));
  {
    g_autofree char *timeout = g_strdup_printf ("%u", http_timeout_s);

    g_setenv ("SANDBOX_HTTP_TIMEOUT", timeout, TRUE);
  }
  g_setenv ("SANDBOX_HTTP_MAX_REPLY", "1048576", TRUE);
  g_setenv ("SANDBOX_HTTP_RETRY_BASE_MS", "20", TRUE);
  g_setenv ("SANDBOX_HTTP_RETRY_MAX_MS", "50", TRUE);
  g_test_init (&argc, &argv, NULL);
  if (g_getenv ("FAULTS_KEEP_GOING") != NULL)
    g_test_set_nonfatal_assertions ();
  root = g_dir_make_tmp ("test-faults-root-XXXXXX", NULL);
  g_setenv ("SANDBOX_LOCAL_ROOT", root, TRUE);

  daytona = daytona_emulator_new (&error);
  g_assert_no_error (error);
  daytona_emulator_set_hook (daytona, daytona_before, NULL);
  daytona_emulator_set_reply_hook (daytona, daytona_after, NULL);
  e2b = e2b_emulator_new (&error);
  g_assert_no_error (error);
  e2b_emulator_set_request_hook (e2b, e2b_before, NULL);
  e2b_emulator_set_reply_hook (e2b, e2b_after, NULL);

  for (guint r = 0; r < G_N_ELEMENTS (routes); r++)
    {
      const Route *route = &routes[r];
      Fault common[] = { F_500, F_502, F_503, F_504, F_429, F_RESET, F_STALL, F_BAD_JSON, F_OVERSIZE };

      for (guint f = 0; f < G_N_ELEMENTS (common); f++)
        {
          /* Bodies of hand-made file transfers are not JSON. */
          /* Bodies of file transfers are not JSON, and a DELETE's body is
           * not read. */
          if ((common[f] == F_BAD_JSON || common[f] == F_OVERSIZE) &&
              (route->op == OP_UPLOAD || route->op == OP_DOWNLOAD || route->op == OP_DESTROY))
            continue;
          add (route, common[f], BEFORE);
        }
      if (route->op == OP_CREATE)
        {
          /* The provider made the sandbox, then its answer was lost. */
          add (route, F_502, AFTER);
          add (route, F_RESET, AFTER);
          add (route, F_STALL, AFTER);
          add (route, F_BAD_JSON, AFTER);
        }
      if (route->backend == E2B && route->op == OP_EXEC)
        {
          add (route, F_TRUNCATED_ENVELOPE, BEFORE);
          add (route, F_NO_END, BEFORE);
          add (route, F_OVERSIZE_FRAME, BEFORE);
        }
    }
  g_test_add_data_func ("/faults/daytona/capped-retries", GINT_TO_POINTER (DAYTONA), test_capped);
  g_test_add_data_func ("/faults/e2b/capped-retries", GINT_TO_POINTER (E2B), test_capped);

  {
    int ret = g_test_run ();

    g_clear_pointer (&daytona, daytona_emulator_free);
    g_clear_pointer (&e2b, e2b_emulator_free);
    {
      g_autofree char *cmd = g_strdup_printf ("rm -rf '%s'", root);
      g_spawn_command_line_sync (cmd, NULL, NULL, NULL, NULL);
    }
    return ret;
  }
}
