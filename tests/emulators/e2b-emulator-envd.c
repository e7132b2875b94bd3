/* E2B API emulator: envd (the daemon inside a sandbox)
 *
 * process.Process and filesystem.Filesystem over the Connect protocol with
 * the JSON codec, and the /files, /health, /envs HTTP endpoints.
 * Facts: /work/shared/specs/e2b-api.md, section 2.
 *
 * Commands run through libsandbox's local backend; a process's output is
 * forwarded live, frame by frame, into every stream watching it.
 * The sandbox's /home and /tmp are host directories of the emulator
 * (mounted into the local sandbox), so the filesystem service works on
 * them directly; the rest of the file system is the host's, read-only.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <glib/gstdio.h>
#include <glib-unix.h>

#include "e2b-emulator-private.h"

#define RETENTION_S         30
#define DEFAULT_KEEPALIVE_S 90
#define DATA_CHUNK          (32 * 1024)

/* ------------------------------------------------------------------ */
/* Types                                                               */

typedef struct _EmuStream EmuStream;
typedef struct _EmuWatcher EmuWatcher;

static void watcher_stream_gone (EmuWatcher *watcher);

struct _EmuProcess
{
  gint          ref;
  EmuSandbox   *sandbox;      /* NULL once the sandbox is gone */
  guint         pid;
  char         *tag;
  JsonNode     *config;       /* ProcessConfig as started, for List */
  GCancellable *cancellable;
  GList        *streams;      /* EmuStream, live watchers */
  gboolean      running;
  gboolean      killed;
  JsonNode     *end;          /* the "end" event once finished */
  int           stdin_fd;     /* write end of the stdin FIFO, or -1 */
  char         *stdin_fifo;   /* host path of the FIFO */
  gboolean      stdin_wanted; /* stdin enabled and not closed */
  GByteArray   *stdin_pending; /* input sent before the command opened the FIFO */
  GSource      *stdin_poll;
  GSource      *retention;
  GSource      *kill_later;
  gint64        started;      /* monotonic µs */
  SandboxCommand *pty_command; /* a PTY process: its command, run on a terminal */
};

struct _EmuStream
{
  E2bEmulator       *emu;
  SoupServerMessage *msg;
  EmuProcess        *proc;
  GSource           *keepalive;
  GSource           *deadline;
  gboolean           kill_on_deadline;
  gboolean           sent_since_tick;
  gboolean           done;
  gboolean           truncate;
  guint              ref;          /* the message's, and callers' in flight */
  EmuWatcher        *watcher;      /* a WatchDir stream's watcher */
  gboolean           bare;         /* events not in an "event" member (WatchDirResponse's oneof) */
};

/* A write can finish the message at once (the client has gone), which
 * drops the message's reference: code that goes on using a stream after
 * writing holds a reference of its own. */
static EmuStream *
stream_ref (EmuStream *stream)
{
  stream->ref++;
  return stream;
}

static void
stream_unref (EmuStream *stream)
{
  if (--stream->ref == 0)
    g_free (stream);
}

static EmuProcess *
process_ref (EmuProcess *proc)
{
  g_atomic_int_inc (&proc->ref);
  return proc;
}

static void
process_stop_stdin_poll (EmuProcess *proc)
{
  if (proc->stdin_poll != NULL)
    {
      g_source_destroy (proc->stdin_poll);
      g_clear_pointer (&proc->stdin_poll, g_source_unref);
    }
}

/* Everything about stdin goes: the process ended. */
static void
process_close_stdin (EmuProcess *proc)
{
  process_stop_stdin_poll (proc);
  proc->stdin_wanted = FALSE;
  if (proc->stdin_fd >= 0)
    {
      close (proc->stdin_fd);
      proc->stdin_fd = -1;
    }
  if (proc->stdin_fifo != NULL)
    {
      g_unlink (proc->stdin_fifo);
      g_clear_pointer (&proc->stdin_fifo, g_free);
    }
  g_clear_pointer (&proc->stdin_pending, g_byte_array_unref);
}

static gboolean
write_all (int           fd,
           const guint8 *data,
           gsize         len)
{
  for (gsize done = 0; done < len;)
    {
      gssize n = write (fd, data + done, len - done);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return FALSE;
      done += n;
    }
  return TRUE;
}

/* The command opens the FIFO for reading when it starts; until then input
 * is kept here. Opening the write end without blocking only succeeds once
 * there is a reader. */
static gboolean
process_stdin_poll (gpointer user_data)
{
  EmuProcess *proc = user_data;
  int fd = open (proc->stdin_fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC);

  if (fd < 0)
    return G_SOURCE_CONTINUE;
  fcntl (fd, F_SETFL, fcntl (fd, F_GETFL) & ~O_NONBLOCK);
  proc->stdin_fd = fd;
  if (proc->stdin_pending != NULL)
    write_all (fd, proc->stdin_pending->data, proc->stdin_pending->len);
  g_clear_pointer (&proc->stdin_pending, g_byte_array_unref);
  if (!proc->stdin_wanted)
    {
      close (proc->stdin_fd);
      proc->stdin_fd = -1;
    }
  g_clear_pointer (&proc->stdin_poll, g_source_unref);
  return G_SOURCE_REMOVE;
}

static gboolean
process_write_stdin (EmuProcess   *proc,
                     const guint8 *data,
                     gsize         len)
{
  if (proc->stdin_fd >= 0)
    return write_all (proc->stdin_fd, data, len);
  if (proc->stdin_pending == NULL)
    proc->stdin_pending = g_byte_array_new ();
  g_byte_array_append (proc->stdin_pending, data, (guint) len);
  return TRUE;
}

/* CloseStdin: EOF for the command, once it has read what was sent. */
static void
process_end_stdin (EmuProcess *proc)
{
  proc->stdin_wanted = FALSE;
  if (proc->stdin_fd >= 0)
    {
      close (proc->stdin_fd);
      proc->stdin_fd = -1;
    }
}

static void
process_unref (EmuProcess *proc)
{
  if (!g_atomic_int_dec_and_test (&proc->ref))
    return;
  g_assert (proc->streams == NULL);
  process_close_stdin (proc);
  if (proc->retention != NULL)
    {
      g_source_destroy (proc->retention);
      g_source_unref (proc->retention);
    }
  if (proc->kill_later != NULL)
    {
      g_source_destroy (proc->kill_later);
      g_source_unref (proc->kill_later);
    }
  g_clear_object (&proc->cancellable);
  g_clear_object (&proc->pty_command);
  g_clear_pointer (&proc->config, json_node_unref);
  g_clear_pointer (&proc->end, json_node_unref);
  g_free (proc->tag);
  g_free (proc);
}

/* ------------------------------------------------------------------ */
/* Helpers                                                             */

/* The user of a request: HTTP Basic "user:" or envd's default. */
static char *
request_user (SoupServerMessage  *msg,
              GError            **error)
{
  const char *auth = soup_message_headers_get_one (soup_server_message_get_request_headers (msg),
                                                   "Authorization");
  g_autofree guchar *decoded = NULL;
  gsize len = 0;
  char *colon;
  g_autofree char *user = NULL;

  if (auth == NULL || !g_str_has_prefix (auth, "Basic "))
    return g_strdup ("user");
  decoded = g_base64_decode (auth + 6, &len);
  user = g_strndup ((const char *) decoded, len);
  colon = strchr (user, ':');
  if (colon != NULL)
    *colon = '\0';
  if (*user == '\0')
    return g_strdup ("user");
  if (strcmp (user, "user") != 0 && strcmp (user, "root") != 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED,
                   "invalid username: '%s'", user);
      return NULL;
    }
  return g_steal_pointer (&user);
}

static const char *
user_home (const char *user)
{
  return g_strcmp0 (user, "root") == 0 ? "/root" : E2B_EMU_HOME;
}

/* envd's ExpandAndResolve: "~" is the home, relative paths are under it. */
static char *
resolve_path (const char *user,
              const char *path)
{
  const char *home = user_home (user);

  if (path == NULL || *path == '\0')
    return g_strdup (home);
  if (path[0] == '~' && (path[1] == '\0' || path[1] == '/'))
    return g_canonicalize_filename (path[1] ? path + 2 : ".", home);
  return g_canonicalize_filename (path, home);
}

static gboolean
is_under (const char *path,
          const char *prefix)
{
  gsize len = strlen (prefix);

  return strncmp (path, prefix, len) == 0 && (path[len] == '\0' || path[len] == '/');
}

/* Sandbox path (absolute, canonical) -> host path. */
static char *
host_path (EmuSandbox *sandbox,
           const char *path,
           gboolean   *writable)
{
  const char *roots[] = { "/home", "/tmp" };

  /* Each sandbox's own boot id (e2b-emulator.c, sandbox_boot). */
  if (strcmp (path, "/proc/sys/kernel/random/boot_id") == 0)
    {
      if (writable)
        *writable = FALSE;
      return g_build_filename (sandbox->host_root, "boot_id", NULL);
    }

  for (guint i = 0; i < G_N_ELEMENTS (roots); i++)
    if (is_under (path, roots[i]))
      {
        if (writable)
          *writable = TRUE;
        return g_build_filename (sandbox->host_root, path, NULL);
      }
  /* The host's root, or an image without /root, gets the emulator's
   * (e2b-emulator.c). */
  if (is_under (path, "/root"))
    {
      g_autofree char *own = g_build_filename (sandbox->host_root, "root", NULL);

      if (g_file_test (own, G_FILE_TEST_IS_DIR))
        {
          if (writable)
            *writable = TRUE;
          return g_build_filename (sandbox->host_root, path, NULL);
        }
    }
  if (writable)
    *writable = FALSE;
  /* The rest is the template's image (or the host's root). */
  return sandbox->rootfs ? g_build_filename (sandbox->rootfs, path, NULL) : g_strdup (path);
}

/* ------------------------------------------------------------------ */
/* EntryInfo                                                           */

static char *
permissions_string (mode_t mode)
{
  char s[11];
  const char *rwx = "rwxrwxrwx";

  s[0] = S_ISDIR (mode) ? 'd' : S_ISLNK (mode) ? 'L' : '-';
  for (int i = 0; i < 9; i++)
    s[i + 1] = (mode & (1 << (8 - i))) ? rwx[i] : '-';
  s[10] = '\0';
  return g_strdup (s);
}

/* Where PATH (absolute) leads once every symlink in it is followed, in the
 * sandbox's view, as envd's filepath.EvalSymlinks: an absolute path, with
 * *exists FALSE when it ends in nothing or loops. */
static char *
follow_symlinks (EmuSandbox *sandbox,
                 const char *path,
                 gboolean   *exists)
{
  g_autofree char *current = g_canonicalize_filename (path, "/");
  guint links = 0;

  *exists = FALSE;
  while (links < 40)
    {
      g_auto(GStrv) parts = g_strsplit (current + 1, "/", -1);
      g_autofree char *prefix = g_strdup ("/");
      gboolean expanded = FALSE;

      for (guint i = 0; parts[i] != NULL && !expanded; i++)
        {
          g_autofree char *candidate = g_build_filename (prefix, parts[i], NULL);
          g_autofree char *host = host_path (sandbox, candidate, NULL);
          g_autofree char *target = g_file_read_link (host, NULL);

          if (target != NULL)
            {
              g_autofree char *rest = g_strjoinv ("/", parts + i + 1);
              g_autofree char *joined = g_build_filename (target, rest, NULL);

              g_free (current);
              current = g_canonicalize_filename (joined, prefix);
              expanded = TRUE;
              links++;
            }
          else
            {
              g_free (prefix);
              prefix = g_steal_pointer (&candidate);
            }
        }
      if (!expanded)
        {
          g_autofree char *host = host_path (sandbox, current, NULL);

          *exists = g_file_test (host, G_FILE_TEST_EXISTS);
          break;
        }
    }
  return g_steal_pointer (&current);
}

/* File metadata: envd keeps each key as the extended attribute
 * "user.e2b.<key>" of the file (spec 2.3), so that a command that sets one
 * (setxattr) is seen by the file service too. */
#define METADATA_XATTR_PREFIX "user.e2b."

/* The file's metadata (following symlinks), or NULL when it has none. */
static GHashTable *
metadata_read (const char *host)
{
  g_autofree char *names = NULL;
  ssize_t len = listxattr (host, NULL, 0);
  GHashTable *metadata = NULL;

  if (len <= 0)
    return NULL;
  names = g_malloc0 ((gsize) len + 1);
  len = listxattr (host, names, (size_t) len);
  for (ssize_t at = 0; len > 0 && at < len; at += (ssize_t) strlen (names + at) + 1)
    {
      const char *name = names + at;
      char value[4097];
      ssize_t n;

      if (!g_str_has_prefix (name, METADATA_XATTR_PREFIX) || name[strlen (METADATA_XATTR_PREFIX)] == '\0')
        continue;
      n = getxattr (host, name, value, sizeof value - 1);
      if (n < 0)
        continue;
      value[n] = '\0';
      if (metadata == NULL)
        metadata = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
      g_hash_table_replace (metadata, g_strdup (name + strlen (METADATA_XATTR_PREFIX)), g_strdup (value));
    }
  return metadata;
}

/* Replaces the file's metadata with METADATA (may be NULL: none), as an
 * upload does. */
static gboolean
metadata_write (const char  *host,
                GHashTable  *metadata,
                GError     **error)
{
  g_autoptr(GHashTable) old = metadata_read (host);
  GHashTableIter iter;
  gpointer key, value;

  if (old != NULL)
    {
      g_hash_table_iter_init (&iter, old);
      while (g_hash_table_iter_next (&iter, &key, NULL))
        {
          g_autofree char *name = g_strconcat (METADATA_XATTR_PREFIX, key, NULL);

          removexattr (host, name);
        }
    }
  if (metadata == NULL)
    return TRUE;
  g_hash_table_iter_init (&iter, metadata);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      g_autofree char *name = g_strconcat (METADATA_XATTR_PREFIX, key, NULL);

      if (setxattr (host, name, value, strlen (value), 0) != 0)
        {
          int errsv = errno;

          g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                       "cannot store the metadata key '%s': %s", (const char *) key, g_strerror (errsv));
          return FALSE;
        }
    }
  return TRUE;
}

/* Adds "metadata": {…} to BUILDER when the map has keys (a protobuf map
 * without entries is left out, and so does envd's upload reply). */
static void
metadata_add (JsonBuilder *builder,
              GHashTable  *metadata)
{
  if (metadata != NULL && g_hash_table_size (metadata) > 0)
    _sandbox_json_add_string_map (builder, "metadata", metadata);
}

/* An entry as envd reports it: a symlink has the type and mode of what it
 * leads to (FILE_TYPE_UNSPECIFIED when that is missing), its own size and
 * permissions, and symlinkTarget, the absolute path it leads to. */
static JsonNode *
entry_info (EmuSandbox  *sandbox,
            const char  *sandbox_path,
            const char  *host,
            gboolean     writable,
            GError     **error)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  struct stat st;
  g_autofree char *base = g_path_get_basename (sandbox_path);
  g_autofree char *size = NULL;
  g_autofree char *perms = NULL;
  g_autoptr(GDateTime) mtime = NULL;
  g_autofree char *mtime_s = NULL;
  const char *type;
  guint mode;
  g_autofree char *link_target = NULL;
  struct passwd *pw;
  struct group *gr;

  if (lstat (host, &st) != 0)
    {
      int errsv = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv),
                   "no such file or directory: %s", sandbox_path);
      return NULL;
    }
  type = S_ISDIR (st.st_mode) ? "FILE_TYPE_DIRECTORY" : "FILE_TYPE_FILE";
  mode = st.st_mode & 07777;
  if (S_ISLNK (st.st_mode))
    {
      gboolean exists;
      struct stat target_st;

      link_target = follow_symlinks (sandbox, sandbox_path, &exists);
      if (exists)
        {
          g_autofree char *target_host = host_path (sandbox, link_target, NULL);

          exists = stat (target_host, &target_st) == 0;
        }
      if (exists)
        {
          type = S_ISDIR (target_st.st_mode) ? "FILE_TYPE_DIRECTORY" : "FILE_TYPE_FILE";
          mode = target_st.st_mode & 07777;
        }
      else
        {
          type = "FILE_TYPE_UNSPECIFIED";
          mode = 0;
        }
    }
  size = g_strdup_printf ("%" G_GINT64_FORMAT, (gint64) st.st_size);
  perms = permissions_string (st.st_mode);
  mtime = g_date_time_new_from_unix_utc (st.st_mtim.tv_sec);
  mtime_s = g_date_time_format (mtime, "%Y-%m-%dT%H:%M:%SZ");

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "name");
  json_builder_add_string_value (builder, base);
  json_builder_set_member_name (builder, "type");
  json_builder_add_string_value (builder, type);
  json_builder_set_member_name (builder, "path");
  json_builder_add_string_value (builder, sandbox_path);
  json_builder_set_member_name (builder, "size");
  json_builder_add_string_value (builder, size);
  json_builder_set_member_name (builder, "mode");
  json_builder_add_int_value (builder, mode);
  json_builder_set_member_name (builder, "permissions");
  json_builder_add_string_value (builder, perms);
  /* Files in the sandbox's writable areas belong to its user. */
  pw = writable ? NULL : getpwuid (st.st_uid);
  gr = writable ? NULL : getgrgid (st.st_gid);
  json_builder_set_member_name (builder, "owner");
  json_builder_add_string_value (builder, writable ? "user" : pw ? pw->pw_name : "root");
  json_builder_set_member_name (builder, "group");
  json_builder_add_string_value (builder, writable ? "user" : gr ? gr->gr_name : "root");
  json_builder_set_member_name (builder, "modifiedTime");
  json_builder_add_string_value (builder, mtime_s);
  if (link_target != NULL)
    {
      json_builder_set_member_name (builder, "symlinkTarget");
      json_builder_add_string_value (builder, link_target);
    }
  {
    g_autoptr(GHashTable) metadata = metadata_read (host);

    metadata_add (builder, metadata);
  }
  json_builder_end_object (builder);
  return json_builder_get_root (builder);
}

/* json_node_init_object() takes its own reference on the object. */
static JsonNode *
empty_object_node (void)
{
  JsonNode *node = json_node_new (JSON_NODE_OBJECT);

  json_node_take_object (node, json_object_new ());
  return node;
}

static JsonNode *
wrap (const char *member,
      JsonNode   *value)
{
  JsonObject *object = json_object_new ();
  JsonNode *node = json_node_new (JSON_NODE_OBJECT);

  json_object_set_member (object, member, value);
  json_node_take_object (node, object);
  return node;
}

/* ------------------------------------------------------------------ */
/* Streams                                                             */

static void stream_finish (EmuStream *stream, const char *code, const char *message);
static void process_kill (EmuProcess *proc);

static void
stream_write (EmuStream *stream,
              GBytes    *envelope)
{
  SoupMessageBody *body;

  if (stream->msg == NULL)
    return;
  body = soup_server_message_get_response_body (stream->msg);

  if (stream->truncate)
    {
      /* Test knob: cut the stream in the middle of this frame. */
      g_autoptr(GBytes) part = g_bytes_new_from_bytes (envelope, 0, MIN (3, g_bytes_get_size (envelope)));

      soup_message_body_append_bytes (body, part);
      soup_message_body_complete (body);
      stream->done = TRUE;
    }
  else
    soup_message_body_append_bytes (body, envelope);
  soup_server_message_unpause (stream->msg);
}

static void
stream_send_event (EmuStream  *stream,
                   const char *kind,
                   JsonNode   *value)
{
  g_autoptr(JsonNode) event = NULL;
  g_autoptr(GBytes) envelope = NULL;

  if (stream->done)
    {
      json_node_unref (value);
      return;
    }
  event = stream->bare ? wrap (kind, value) : wrap ("event", wrap (kind, value));
  envelope = _sandbox_connect_envelope_new_json (0, event);
  stream->sent_since_tick = TRUE;
  stream_ref (stream);
  stream_write (stream, envelope);
  stream_unref (stream);
}

static void
stream_clear_sources (EmuStream *stream)
{
  if (stream->watcher != NULL)
    {
      EmuWatcher *watcher = stream->watcher;

      stream->watcher = NULL;
      watcher_stream_gone (watcher);
    }
  if (stream->keepalive != NULL)
    {
      g_source_destroy (stream->keepalive);
      g_clear_pointer (&stream->keepalive, g_source_unref);
    }
  if (stream->deadline != NULL)
    {
      g_source_destroy (stream->deadline);
      g_clear_pointer (&stream->deadline, g_source_unref);
    }
}

/* Ends the stream: the end-of-stream frame, with an error if @code. */
static void
stream_finish (EmuStream  *stream,
               const char *code,
               const char *message)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(JsonNode) end = NULL;
  g_autoptr(GBytes) envelope = NULL;

  stream_clear_sources (stream);
  if (stream->proc != NULL)
    {
      stream->proc->streams = g_list_remove (stream->proc->streams, stream);
      g_clear_pointer (&stream->proc, process_unref);
    }
  if (stream->done)
    return;

  json_builder_begin_object (builder);
  if (code != NULL)
    {
      json_builder_set_member_name (builder, "error");
      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "code");
      json_builder_add_string_value (builder, code);
      json_builder_set_member_name (builder, "message");
      json_builder_add_string_value (builder, message);
      json_builder_end_object (builder);
    }
  json_builder_end_object (builder);
  end = json_builder_get_root (builder);
  envelope = _sandbox_connect_envelope_new_json (SANDBOX_CONNECT_FLAG_END_STREAM, end);
  stream_ref (stream);
  stream_write (stream, envelope);
  if (!stream->done && stream->msg != NULL)
    {
      SoupServerMessage *msg = stream->msg;

      stream->done = TRUE;
      soup_message_body_complete (soup_server_message_get_response_body (msg));
      soup_server_message_unpause (msg);
    }
  stream_unref (stream);
}

/* Cuts the stream as the service does when its sandbox is killed or
 * expires mid-command: the connection ends without an end event and without
 * the end-of-stream frame (nor the last HTTP chunk). */
static void
stream_cut (EmuStream *stream)
{
  GSocket *socket = stream->msg != NULL ? soup_server_message_get_socket (stream->msg) : NULL;

  stream_clear_sources (stream);
  if (stream->proc != NULL)
    {
      stream->proc->streams = g_list_remove (stream->proc->streams, stream);
      g_clear_pointer (&stream->proc, process_unref);
    }
  if (stream->done || stream->msg == NULL)
    return;
  stream->done = TRUE;
  if (socket != NULL)
    g_socket_shutdown (socket, TRUE, TRUE, NULL);
  /* libsoup then fails to write the last chunk and finishes the message. */
  soup_message_body_complete (soup_server_message_get_response_body (stream->msg));
  soup_server_message_unpause (stream->msg);
}

/* The stream's first reference belongs to its message: dropped when the
 * message finishes or, if it never does (the connection closed while it
 * waited for the next chunk, or the emulator stopped), when it is freed. */
static void
stream_release_msg (EmuStream *stream)
{
  stream_clear_sources (stream);
  if (stream->proc != NULL)
    {
      stream->proc->streams = g_list_remove (stream->proc->streams, stream);
      g_clear_pointer (&stream->proc, process_unref);
    }
  stream->msg = NULL;
  stream->done = TRUE;
  stream_unref (stream);
}

static void
stream_msg_freed (gpointer  user_data,
                  GObject  *where_the_msg_was)
{
  stream_release_msg (user_data);
}

static void
stream_msg_finished (SoupServerMessage *msg,
                     gpointer           user_data)
{
  EmuStream *stream = user_data;

  /* The client went away or the body was written: forget the message. */
  g_signal_handlers_disconnect_by_data (msg, stream);
  g_object_weak_unref (G_OBJECT (msg), stream_msg_freed, stream);
  stream_release_msg (stream);
}

static gboolean
stream_keepalive_tick (gpointer user_data)
{
  EmuStream *stream = user_data;

  if (!stream->sent_since_tick)
    stream_send_event (stream, "keepalive", empty_object_node ());
  stream->sent_since_tick = FALSE;
  return G_SOURCE_CONTINUE;
}

static gboolean
stream_deadline_hit (gpointer user_data)
{
  EmuStream *stream = user_data;
  EmuProcess *proc = stream->proc;

  g_clear_pointer (&stream->deadline, g_source_unref);
  if (stream->kill_on_deadline && proc != NULL && proc->running)
    {
      /* envd runs the process on the request's context: it dies with it. */
      process_kill (proc);
    }
  stream_finish (stream, "deadline_exceeded", "context deadline exceeded");
  return G_SOURCE_REMOVE;
}

/* Starts a streaming answer on @msg (HTTP 200, chunked). */
static EmuStream *
stream_new (E2bEmulator       *emu,
            SoupServerMessage *msg,
            gboolean           kill_on_deadline)
{
  SoupMessageHeaders *request = soup_server_message_get_request_headers (msg);
  SoupMessageHeaders *response = soup_server_message_get_response_headers (msg);
  const char *timeout = soup_message_headers_get_one (request, "Connect-Timeout-Ms");
  const char *interval = soup_message_headers_get_one (request, "Keepalive-Ping-Interval");
  EmuStream *stream = g_new0 (EmuStream, 1);
  guint keepalive_ms = g_atomic_int_get (&emu->keepalive_ms);
  guint64 value;

  stream->emu = emu;
  stream->msg = msg;
  stream->ref = 1;
  stream->kill_on_deadline = kill_on_deadline;

  soup_server_message_set_status (msg, 200, NULL);
  soup_message_headers_set_encoding (response, SOUP_ENCODING_CHUNKED);
  soup_message_headers_replace (response, "Content-Type", "application/connect+json");
  /* A process stream's connection is not kept alive: the stream ends when
   * the sandbox is killed, and the SDK's client (pyqwest), reusing such a
   * connection under load, got a reset on its next Start instead of the
   * proxy's answer. Unary calls and files keep their connections. */
  soup_message_headers_replace (response, "Connection", "close");
  g_signal_connect (msg, "finished", G_CALLBACK (stream_msg_finished), stream);
  g_object_weak_ref (G_OBJECT (msg), stream_msg_freed, stream);

  if (keepalive_ms == 0)
    keepalive_ms = (interval && g_ascii_string_to_unsigned (interval, 10, 1, 86400, &value, NULL)
                    ? (guint) value : DEFAULT_KEEPALIVE_S) * 1000;
  stream->keepalive = g_timeout_source_new (keepalive_ms);
  g_source_set_callback (stream->keepalive, stream_keepalive_tick, stream, NULL);
  g_source_attach (stream->keepalive, emu->context);

  if (timeout != NULL && g_ascii_string_to_unsigned (timeout, 10, 1, G_MAXUINT, &value, NULL))
    {
      stream->deadline = g_timeout_source_new ((guint) value);
      g_source_set_callback (stream->deadline, stream_deadline_hit, stream, NULL);
      g_source_attach (stream->deadline, emu->context);
    }
  return stream;
}

/* A streaming call that fails before it starts: 200 + end-of-stream error. */
static void
stream_fail (E2bEmulator       *emu,
             SoupServerMessage *msg,
             const char        *code,
             const char        *message)
{
  EmuStream *stream = stream_new (emu, msg, FALSE);

  stream_finish (stream, code, message);
}

static void
stream_attach (EmuStream  *stream,
               EmuProcess *proc)
{
  stream->proc = process_ref (proc);
  proc->streams = g_list_append (proc->streams, stream);
}

/* ------------------------------------------------------------------ */
/* Output: data events                                                 */

static void
emit_data (EmuProcess   *proc,
           gboolean      is_stderr,
           const guint8 *data,
           gsize         len)
{
  while (len > 0)
    {
      gsize n = MIN (len, DATA_CHUNK);
      g_autofree char *b64 = g_base64_encode (data, n);

      for (GList *l = proc->streams; l != NULL;)
        {
          EmuStream *stream = l->data;
          JsonNode *value = json_node_new (JSON_NODE_VALUE);

          l = l->next;
          json_node_set_string (value, b64);
          stream_send_event (stream, "data", wrap (proc->pty_command != NULL ? "pty" :
                                                   is_stderr ? "stderr" : "stdout", value));
        }
      data += n;
      len -= n;
    }
}

/* ------------------------------------------------------------------ */
/* process.Process                                                     */

static gboolean
process_forget (gpointer user_data)
{
  EmuProcess *proc = user_data;

  g_clear_pointer (&proc->retention, g_source_unref);
  if (proc->sandbox != NULL &&
      g_hash_table_remove (proc->sandbox->processes, GUINT_TO_POINTER (proc->pid)))
    process_unref (proc);
  return G_SOURCE_REMOVE;
}

static gboolean
process_kill_now (gpointer user_data)
{
  EmuProcess *proc = user_data;

  g_clear_pointer (&proc->kill_later, g_source_unref);
  g_cancellable_cancel (proc->cancellable);
  return G_SOURCE_REMOVE;
}

/* Kills a process. bubblewrap that is killed while it is still setting up
 * can leave the command behind (the local backend kills bwrap only), so
 * a process gets KILL_GRACE_MS to start before it is killed. */
#define KILL_GRACE_MS 300
static void
process_kill (EmuProcess *proc)
{
  gint64 age_ms = (g_get_monotonic_time () - proc->started) / 1000;

  proc->killed = TRUE;
  if (proc->kill_later != NULL || g_cancellable_is_cancelled (proc->cancellable))
    return;
  if (age_ms >= KILL_GRACE_MS || proc->sandbox == NULL)
    {
      g_cancellable_cancel (proc->cancellable);
      return;
    }
  proc->kill_later = g_timeout_source_new ((guint) (KILL_GRACE_MS - age_ms));
  g_source_set_callback (proc->kill_later, process_kill_now, proc, NULL);
  g_source_attach (proc->kill_later, proc->sandbox->emu->context);
}

static JsonNode *
end_event (EmuProcess        *proc,
           SandboxExecResult *result)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autofree char *status = NULL;
  int exit_status = result ? sandbox_exec_result_get_exit_status (result) : -1;
  int term_signal = result ? sandbox_exec_result_get_term_signal (result) : 9;

  if (exit_status >= 0)
    status = g_strdup_printf ("exit status %d", exit_status);
  else
    status = g_strdup_printf ("signal: %s", term_signal == 9 ? "killed" :
                              term_signal == 15 ? "terminated" :
                              term_signal == 2 ? "interrupt" : g_strsignal (term_signal));

  json_builder_begin_object (builder);
  if (exit_status != 0)
    {
      json_builder_set_member_name (builder, "exitCode");
      json_builder_add_int_value (builder, exit_status >= 0 ? exit_status : -1);
    }
  if (exit_status >= 0)
    {
      json_builder_set_member_name (builder, "exited");
      json_builder_add_boolean_value (builder, TRUE);
    }
  json_builder_set_member_name (builder, "status");
  json_builder_add_string_value (builder, status);
  if (exit_status != 0)
    {
      json_builder_set_member_name (builder, "error");
      json_builder_add_string_value (builder, status);
    }
  json_builder_end_object (builder);
  return json_builder_get_root (builder);
}

static void
process_exec_done (GObject      *source,
                   GAsyncResult *res,
                   gpointer      user_data)
{
  EmuProcess *proc = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(SandboxExecResult) result = NULL;

  result = sandbox_instance_exec_finish (SANDBOX_INSTANCE (source), res, &error);
  g_debug ("process %u ended: %s", proc->pid, result ? "result" : error->message);
  proc->running = FALSE;
  process_close_stdin (proc);

  if (result == NULL && !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      /* The command could not be run at all. */
      g_autofree char *message = g_strdup_printf ("error starting process: %s", error->message);

      while (proc->streams != NULL)
        stream_finish (proc->streams->data, "internal", message);
      proc->end = end_event (proc, NULL);
    }
  else
    {
      proc->end = end_event (proc, result);
      while (proc->streams != NULL)
        {
          EmuStream *stream = stream_ref (proc->streams->data);

          stream_send_event (stream, "end", json_node_ref (proc->end));
          stream_finish (stream, NULL, NULL);
          stream_unref (stream);
        }
    }

  /* envd keeps an ended process for late Connect calls. */
  if (proc->sandbox != NULL)
    {
      proc->retention = g_timeout_source_new_seconds (RETENTION_S);
      g_source_set_callback (proc->retention, process_forget, proc, NULL);
      g_source_attach (proc->retention, proc->sandbox->emu->context);
    }
  process_unref (proc);
}

static EmuProcess *
find_process (EmuSandbox *sandbox,
              JsonObject *request,
              char      **description)
{
  JsonObject *selector = _sandbox_json_get_object (request, "process");
  const char *tag = _sandbox_json_get_string (selector, "tag");
  gint64 pid = 0;
  GHashTableIter iter;
  gpointer value;

  if (tag != NULL)
    {
      *description = g_strdup_printf ("process with tag %s not found", tag);
      g_hash_table_iter_init (&iter, sandbox->processes);
      while (g_hash_table_iter_next (&iter, NULL, &value))
        if (g_strcmp0 (((EmuProcess *) value)->tag, tag) == 0)
          return value;
      return NULL;
    }
  _sandbox_json_get_int (selector, "pid", &pid);
  *description = g_strdup_printf ("process with pid %" G_GINT64_FORMAT " not found", pid);
  return g_hash_table_lookup (sandbox->processes, GUINT_TO_POINTER ((guint) pid));
}

/* The single message of a streaming request. */
static JsonObject *
stream_request (SoupServerMessage *msg,
                JsonNode         **holder,
                char             **problem)
{
  g_autoptr(GBytes) body = _emu_request_body (msg);
  g_autoptr(SandboxConnectReader) reader = _sandbox_connect_reader_new (0);
  g_autoptr(GBytes) payload = NULL;
  g_autoptr(GError) error = NULL;
  guint8 flags;

  if (!_sandbox_connect_reader_feed (reader, g_bytes_get_data (body, NULL), g_bytes_get_size (body), &error) ||
      !_sandbox_connect_reader_next (reader, &flags, &payload))
    {
      *problem = g_strdup_printf ("protocol error: %s", error ? error->message : "incomplete envelope");
      return NULL;
    }
  *holder = _emu_parse_json (payload);
  if (*holder == NULL || !JSON_NODE_HOLDS_OBJECT (*holder))
    {
      *problem = g_strdup ("invalid request message: not a JSON object");
      return NULL;
    }
  return json_node_get_object (*holder);
}

static void
process_start (E2bEmulator       *emu,
               EmuSandbox        *sandbox,
               SoupServerMessage *msg,
               const char        *user)
{
  g_autoptr(JsonNode) holder = NULL;
  g_autofree char *problem = NULL;
  JsonObject *request = stream_request (msg, &holder, &problem);
  JsonObject *config;
  JsonNode *args_node, *stdin_node;
  const char *cmd, *cwd_in;
  g_autofree char *cwd = NULL;
  g_autofree char *cwd_host = NULL;
  g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(SandboxCommand) command = NULL;
  g_autoptr(GOutputStream) out = NULL;
  g_autoptr(GOutputStream) err = NULL;
  gboolean want_stdin;
  EmuProcess *proc;
  EmuStream *stream;
  JsonObject *pty;
  gint64 pty_rows = 0, pty_cols = 0;

  if (request == NULL)
    {
      stream_fail (emu, msg, "invalid_argument", problem);
      return;
    }
  pty = _sandbox_json_get_object (request, "pty");
  if (pty != NULL)
    {
      /* As envd: a PTY of that size (zero values omitted: 0). */
      JsonObject *size = _sandbox_json_get_object (pty, "size");

      pty_rows = size != NULL ? json_object_get_int_member_with_default (size, "rows", 0) : 0;
      pty_cols = size != NULL ? json_object_get_int_member_with_default (size, "cols", 0) : 0;
      if (pty_rows < 1 || pty_rows > G_MAXUINT16 || pty_cols < 1 || pty_cols > G_MAXUINT16)
        {
          stream_fail (emu, msg, "invalid_argument", "error starting pty: invalid size");
          return;
        }
    }
  config = _sandbox_json_get_object (request, "process");
  cmd = _sandbox_json_get_string (config, "cmd");
  if (cmd == NULL || *cmd == '\0')
    {
      stream_fail (emu, msg, "invalid_argument", "process.cmd is required");
      return;
    }
  cwd_in = _sandbox_json_get_string (config, "cwd");
  cwd = resolve_path (user, cwd_in);
  cwd_host = host_path (sandbox, cwd, NULL);
  if (!g_file_test (cwd_host, G_FILE_TEST_IS_DIR))
    {
      g_autofree char *message = g_strdup_printf ("cwd '%s' does not exist", cwd);
      stream_fail (emu, msg, "invalid_argument", message);
      return;
    }
  stdin_node = json_object_get_member (request, "stdin");
  /* Absent: envd keeps stdin open, for old clients. */
  want_stdin = stdin_node == NULL || json_node_get_boolean (stdin_node);
  /* A PTY's input is typed on its terminal (SendInput with "pty"). */
  if (pty != NULL)
    want_stdin = FALSE;

  proc = g_new0 (EmuProcess, 1);
  proc->ref = 1;   /* the sandbox's table */
  proc->sandbox = sandbox;
  proc->pid = sandbox->next_pid++;
  proc->tag = g_strdup (_sandbox_json_get_string (request, "tag"));
  proc->config = json_node_copy (json_object_get_member (request, "process"));
  proc->cancellable = g_cancellable_new ();
  proc->running = TRUE;
  proc->stdin_fd = -1;
  proc->started = g_get_monotonic_time ();
  g_hash_table_insert (sandbox->processes, GUINT_TO_POINTER (proc->pid), proc);

  g_ptr_array_add (argv, g_strdup (cmd));
  args_node = json_object_get_member (config, "args");
  if (args_node != NULL && JSON_NODE_HOLDS_ARRAY (args_node))
    {
      JsonArray *args = json_node_get_array (args_node);

      for (guint i = 0; i < json_array_get_length (args); i++)
        g_ptr_array_add (argv, g_strdup (json_array_get_string_element (args, i)));
    }

  if (want_stdin)
    {
      /* Input arrives later (SendInput): the command reads a FIFO in the
       * sandbox's /tmp that the emulator holds open for writing. */
      g_autofree char *name = g_strdup_printf (".e2b-stdin-%u", proc->pid);
      g_autofree char *inside = g_build_filename ("/tmp", name, NULL);
      g_autofree char *script = g_strdup_printf ("exec \"$0\" \"$@\" < %s", inside);

      proc->stdin_fifo = g_build_filename (sandbox->host_root, "tmp", name, NULL);
      if (mkfifo (proc->stdin_fifo, 0600) == 0)
        {
          proc->stdin_wanted = TRUE;
          proc->stdin_poll = g_timeout_source_new (5);
          g_source_set_callback (proc->stdin_poll, process_stdin_poll, proc, NULL);
          g_source_attach (proc->stdin_poll, emu->context);
          g_ptr_array_insert (argv, 0, g_strdup ("/bin/sh"));
          g_ptr_array_insert (argv, 1, g_strdup ("-c"));
          g_ptr_array_insert (argv, 2, g_steal_pointer (&script));
        }
      else
        process_close_stdin (proc);
    }
  g_ptr_array_add (argv, NULL);

  command = sandbox_command_new ((const char * const *) argv->pdata);
  sandbox_command_set_cwd (command, cwd);
  sandbox_command_set_env (command, "HOME", user_home (user));
  sandbox_command_set_env (command, "USER", user);
  sandbox_command_set_env (command, "LOGNAME", user);
  {
    JsonObject *envs = _sandbox_json_get_object (config, "envs");
    JsonObjectIter iter;
    const char *key;
    JsonNode *value;

    if (envs != NULL)
      {
        json_object_iter_init (&iter, envs);
        while (json_object_iter_next (&iter, &key, &value))
          if (JSON_NODE_HOLDS_VALUE (value))
            sandbox_command_set_env (command, key, json_node_get_string (value));
      }
  }
  if (pty != NULL)
    {
      sandbox_command_set_tty (command, TRUE);
      sandbox_command_resize_tty (command, (guint) pty_rows, (guint) pty_cols);
      proc->pty_command = g_object_ref (command);
    }
  else if (!proc->stdin_wanted)
    {
      g_autoptr(GBytes) empty = g_bytes_new (NULL, 0);
      sandbox_command_set_stdin (command, empty);
    }
  out = _emu_sink_new ((EmuSinkWrite) emit_data, FALSE, process_ref (proc), (GDestroyNotify) process_unref);
  err = _emu_sink_new ((EmuSinkWrite) emit_data, TRUE, process_ref (proc), (GDestroyNotify) process_unref);
  sandbox_command_set_stdout_stream (command, out);
  sandbox_command_set_stderr_stream (command, err);

  stream = stream_ref (stream_new (emu, msg, TRUE));
  stream_attach (stream, proc);
  {
    JsonNode *start = empty_object_node ();
    json_object_set_int_member (json_node_get_object (start), "pid", proc->pid);
    stream_send_event (stream, "start", start);
  }
  /* Test knob: the frame after the start event is cut short. */
  if (g_atomic_int_compare_and_exchange (&emu->truncate_next, 1, 0))
    stream->truncate = TRUE;
  stream_unref (stream);

  sandbox_instance_exec_async (sandbox->instance, command, proc->cancellable,
                               process_exec_done, process_ref (proc));
}

static void
process_connect (E2bEmulator       *emu,
                 EmuSandbox        *sandbox,
                 SoupServerMessage *msg)
{
  g_autoptr(JsonNode) holder = NULL;
  g_autofree char *problem = NULL;
  g_autofree char *description = NULL;
  JsonObject *request = stream_request (msg, &holder, &problem);
  EmuProcess *proc;
  EmuStream *stream;
  JsonNode *start;

  if (request == NULL)
    {
      stream_fail (emu, msg, "invalid_argument", problem);
      return;
    }
  proc = find_process (sandbox, request, &description);
  if (proc == NULL)
    {
      stream_fail (emu, msg, "not_found", description);
      return;
    }
  stream = stream_ref (stream_new (emu, msg, FALSE));
  start = empty_object_node ();
  json_object_set_int_member (json_node_get_object (start), "pid", proc->pid);
  stream_send_event (stream, "start", start);
  if (stream->msg == NULL)
    ;   /* the client has gone already */
  else if (proc->running)
    stream_attach (stream, proc);
  else
    {
      stream_send_event (stream, "end", json_node_ref (proc->end));
      stream_finish (stream, NULL, NULL);
    }
  stream_unref (stream);
}

static void
process_list (EmuSandbox        *sandbox,
              SoupServerMessage *msg)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  GHashTableIter iter;
  gpointer value;

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "processes");
  json_builder_begin_array (builder);
  g_hash_table_iter_init (&iter, sandbox->processes);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      EmuProcess *proc = value;

      if (!proc->running)
        continue;
      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "config");
      json_builder_add_value (builder, json_node_copy (proc->config));
      json_builder_set_member_name (builder, "pid");
      json_builder_add_int_value (builder, proc->pid);
      if (proc->tag != NULL)
        {
          json_builder_set_member_name (builder, "tag");
          json_builder_add_string_value (builder, proc->tag);
        }
      json_builder_end_object (builder);
    }
  json_builder_end_array (builder);
  json_builder_end_object (builder);
  _emu_reply_json (msg, 200, json_builder_get_root (builder));
}

static void
process_unary (EmuSandbox        *sandbox,
               SoupServerMessage *msg,
               const char        *method,
               JsonObject        *request)
{
  g_autofree char *description = NULL;
  EmuProcess *proc;

  if (strcmp (method, "List") == 0)
    {
      process_list (sandbox, msg);
      return;
    }
  if (strcmp (method, "SendSignal") != 0 && strcmp (method, "SendInput") != 0 &&
      strcmp (method, "CloseStdin") != 0 && strcmp (method, "Update") != 0)
    {
      _emu_reply_connect_error (msg, "unimplemented", "process.Process/%s is not supported by the E2B emulator", method);
      return;
    }

  proc = find_process (sandbox, request, &description);
  if (proc == NULL || !proc->running)
    {
      _emu_reply_connect_error (msg, "not_found", "%s", description);
      return;
    }

  if (strcmp (method, "SendSignal") == 0)
    {
      JsonNode *signal = json_object_get_member (request, "signal");
      gint64 number = 0;

      if (signal != NULL && json_node_get_value_type (signal) == G_TYPE_STRING)
        number = g_strcmp0 (json_node_get_string (signal), "SIGNAL_SIGKILL") == 0 ? 9 :
                 g_strcmp0 (json_node_get_string (signal), "SIGNAL_SIGTERM") == 0 ? 15 : 0;
      else if (signal != NULL)
        number = json_node_get_int (signal);
      if (number != 9 && number != 15)
        {
          _emu_reply_connect_error (msg, "unimplemented", "invalid signal: %" G_GINT64_FORMAT, number);
          return;
        }
      /* A PTY's SIGTERM goes to the terminal's foreground process group,
       * as envd's to its shell; SIGKILL kills everything. */
      if (number == 15 && proc->pty_command != NULL &&
          sandbox_command_send_signal (proc->pty_command, SIGTERM))
        ;
      else
        process_kill (proc);
    }
  else if (strcmp (method, "Update") == 0)
    {
      JsonObject *size = _sandbox_json_get_object (_sandbox_json_get_object (request, "pty"), "size");
      gint64 rows = size != NULL ? json_object_get_int_member_with_default (size, "rows", 0) : 0;
      gint64 cols = size != NULL ? json_object_get_int_member_with_default (size, "cols", 0) : 0;

      if (proc->pty_command == NULL)
        {
          _emu_reply_connect_error (msg, "failed_precondition", "process is not a pty");
          return;
        }
      if (rows < 1 || rows > G_MAXUINT16 || cols < 1 || cols > G_MAXUINT16)
        {
          _emu_reply_connect_error (msg, "invalid_argument", "invalid pty size");
          return;
        }
      sandbox_command_resize_tty (proc->pty_command, (guint) rows, (guint) cols);
    }
  else if (strcmp (method, "SendInput") == 0 &&
           _sandbox_json_get_string (_sandbox_json_get_object (request, "input"), "pty") != NULL)
    {
      const char *data = _sandbox_json_get_string (_sandbox_json_get_object (request, "input"), "pty");
      gsize len = 0;
      g_autofree guchar *raw = g_base64_decode (data, &len);
      g_autoptr(GBytes) bytes = g_bytes_new_take (g_steal_pointer (&raw), len);

      if (proc->pty_command == NULL)
        {
          _emu_reply_connect_error (msg, "failed_precondition", "process is not a pty");
          return;
        }
      if (!sandbox_command_send_input (proc->pty_command, bytes))
        {
          _emu_reply_connect_error (msg, "internal", "error writing to pty");
          return;
        }
    }
  else if (strcmp (method, "SendInput") == 0)
    {
      const char *data = _sandbox_json_get_string (_sandbox_json_get_object (request, "input"), "stdin");
      g_autofree guchar *bytes = NULL;
      gsize len = 0;

      if (!proc->stdin_wanted)
        {
          _emu_reply_connect_error (msg, "internal", "stdin not enabled or closed");
          return;
        }
      if (data == NULL)
        {
          _emu_reply_connect_error (msg, "unimplemented", "only stdin input is supported by the E2B emulator");
          return;
        }
      bytes = g_base64_decode (data, &len);
      if (!process_write_stdin (proc, bytes, len))
        {
          _emu_reply_connect_error (msg, "internal", "writing to stdin: %s", g_strerror (errno));
          return;
        }
    }
  else
    process_end_stdin (proc);

  _emu_reply_json (msg, 200, json_from_string ("{}", NULL));
}

/* ------------------------------------------------------------------ */
/* filesystem.Filesystem                                               */

static int
compare_names (gconstpointer a,
               gconstpointer b)
{
  return strcmp (*(const char * const *) a, *(const char * const *) b);
}

/* As envd's walk: each directory's entries sorted by name (bytes), a
 * directory followed by what is in it (symlinks are not walked into). */
static void
list_dir (EmuSandbox *sandbox,
          GPtrArray  *entries,
          const char *sandbox_dir,
          const char *host_dir,
          gboolean    writable,
          guint       depth)
{
  g_autoptr(GDir) dir = g_dir_open (host_dir, 0, NULL);
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    g_ptr_array_add (names, g_strdup (name));
  g_ptr_array_sort (names, compare_names);
  for (guint i = 0; i < names->len; i++)
    {
      g_autofree char *child = g_build_filename (sandbox_dir, g_ptr_array_index (names, i), NULL);
      g_autofree char *child_host = g_build_filename (host_dir, g_ptr_array_index (names, i), NULL);
      JsonNode *entry = entry_info (sandbox, child, child_host, writable, NULL);

      if (entry == NULL)
        continue;
      g_ptr_array_add (entries, entry);
      if (depth > 1 && g_file_test (child_host, G_FILE_TEST_IS_DIR) &&
          !g_file_test (child_host, G_FILE_TEST_IS_SYMLINK))
        list_dir (sandbox, entries, child, child_host, writable, depth - 1);
    }
}

/* Directory watchers (CreateWatcher, GetWatcherEvents, RemoveWatcher):
 * inotify on the host directory, its events named and typed as envd's
 * fsnotify does; with recursive, every directory below is watched too,
 * including those made later. */
struct _EmuWatcher
{
  EmuSandbox *sandbox;
  EmuStream  *stream;     /* WatchDir: where events go, or NULL (polled) */
  char       *id;
  char       *path;       /* the watched directory, in the sandbox */
  char       *host;       /* the same on the host */
  gboolean    recursive;
  gboolean    include_entry;
  int         fd;
  GSource    *source;
  GHashTable *dirs;       /* watch descriptor -> directory relative to path ("" for itself) */
  GPtrArray  *events;     /* JsonNode: FilesystemEvent */
};

#define WATCH_MASK (IN_CREATE | IN_MODIFY | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ATTRIB | \
                    IN_DELETE_SELF | IN_MOVE_SELF)

static void
watcher_free (EmuWatcher *watcher)
{
  if (watcher->stream != NULL)
    {
      EmuStream *stream = watcher->stream;

      /* The sandbox is gone: its streams are cut. */
      watcher->stream = NULL;
      stream->watcher = NULL;
      stream_cut (stream);
      stream_unref (stream);
    }
  if (watcher->source != NULL)
    {
      g_source_destroy (watcher->source);
      g_source_unref (watcher->source);
    }
  if (watcher->fd >= 0)
    close (watcher->fd);
  g_hash_table_unref (watcher->dirs);
  g_ptr_array_unref (watcher->events);
  g_free (watcher->id);
  g_free (watcher->path);
  g_free (watcher->host);
  g_free (watcher);
}

static void
watcher_add (EmuWatcher *watcher,
             const char *relative,
             gboolean    below)
{
  g_autofree char *host = g_build_filename (watcher->host, relative, NULL);
  int wd = inotify_add_watch (watcher->fd, host, WATCH_MASK | IN_ONLYDIR | IN_DONT_FOLLOW);

  if (wd < 0)
    return;
  g_hash_table_insert (watcher->dirs, GINT_TO_POINTER (wd), g_strdup (relative));
  if (below)
    {
      g_autoptr(GDir) dir = g_dir_open (host, 0, NULL);
      const char *name;

      while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
        {
          g_autofree char *child = *relative ? g_build_filename (relative, name, NULL) : g_strdup (name);
          g_autofree char *child_host = g_build_filename (watcher->host, child, NULL);

          if (g_file_test (child_host, G_FILE_TEST_IS_DIR) && !g_file_test (child_host, G_FILE_TEST_IS_SYMLINK))
            watcher_add (watcher, child, TRUE);
        }
    }
}

/* fsnotify's names for inotify's events. */
static const char *
watch_event_type (guint32 mask)
{
  if (mask & (IN_CREATE | IN_MOVED_TO))
    return "EVENT_TYPE_CREATE";
  if (mask & (IN_DELETE | IN_DELETE_SELF))
    return "EVENT_TYPE_REMOVE";
  if (mask & IN_MODIFY)
    return "EVENT_TYPE_WRITE";
  if (mask & (IN_MOVED_FROM | IN_MOVE_SELF))
    return "EVENT_TYPE_RENAME";
  if (mask & IN_ATTRIB)
    return "EVENT_TYPE_CHMOD";
  return NULL;
}

static gboolean
watcher_read (int          fd,
              GIOCondition condition,
              gpointer     data)
{
  EmuWatcher *watcher = data;
  char buf[8192] __attribute__ ((aligned (__alignof__ (struct inotify_event))));
  gssize n;

  while ((n = read (fd, buf, sizeof buf)) > 0)
    for (char *p = buf; p < buf + n; p += sizeof (struct inotify_event) + ((struct inotify_event *) p)->len)
      {
        const struct inotify_event *event = (const struct inotify_event *) p;
        const char *dir = g_hash_table_lookup (watcher->dirs, GINT_TO_POINTER (event->wd));
        const char *type = watch_event_type (event->mask);
        g_autofree char *name = NULL;
        g_autoptr(JsonBuilder) builder = NULL;

        if (event->mask & IN_IGNORED)
          {
            g_hash_table_remove (watcher->dirs, GINT_TO_POINTER (event->wd));
            continue;
          }
        if (dir == NULL || type == NULL)
          continue;
        /* The watched directory's own events name it; the others, the
         * entry relative to it. */
        if (event->len > 0 && event->name[0] != '\0')
          name = *dir ? g_build_filename (dir, event->name, NULL) : g_strdup (event->name);
        else if (*dir)
          name = g_strdup (dir);
        else
          name = g_path_get_basename (watcher->path);
        /* Below the watched directory only when recursive (fsnotify
         * watches one directory). */
        if (watcher->recursive && (event->mask & (IN_CREATE | IN_MOVED_TO)) && (event->mask & IN_ISDIR))
          watcher_add (watcher, name, TRUE);
        if (*dir && !(event->len > 0 && event->name[0] != '\0'))
          continue;  /* a subdirectory's own events come from its parent's watch */

        builder = json_builder_new ();
        json_builder_begin_object (builder);
        json_builder_set_member_name (builder, "name");
        json_builder_add_string_value (builder, name);
        json_builder_set_member_name (builder, "type");
        json_builder_add_string_value (builder, type);
        if (watcher->include_entry)
          {
            g_autofree char *path = g_build_filename (watcher->path, name, NULL);
            g_autofree char *host = g_build_filename (watcher->host, name, NULL);
            JsonNode *entry = entry_info (watcher->sandbox, path, host, TRUE, NULL);

            if (entry != NULL)
              {
                json_builder_set_member_name (builder, "entry");
                json_builder_add_value (builder, entry);
              }
          }
        json_builder_end_object (builder);
        if (watcher->stream != NULL)
          stream_send_event (watcher->stream, "filesystem", json_builder_get_root (builder));
        else
          g_ptr_array_add (watcher->events, json_builder_get_root (builder));
      }
  return G_SOURCE_CONTINUE;
}

/* The client of a WatchDir stream went away (or it ended): so does the
 * watcher. */
static void
watcher_stream_gone (EmuWatcher *watcher)
{
  EmuStream *stream = watcher->stream;

  watcher->stream = NULL;
  if (watcher->sandbox->watchers != NULL)
    g_hash_table_remove (watcher->sandbox->watchers, watcher->id);
  if (stream != NULL)
    stream_unref (stream);
}

static EmuWatcher *
watcher_new (EmuSandbox   *sandbox,
             JsonObject   *request,
             const char   *path,
             const char   *host,
             const char  **code,
             char        **problem)
{
  EmuWatcher *watcher;

  if (sandbox->watchers == NULL)
    sandbox->watchers = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, (GDestroyNotify) watcher_free);
  if (!g_file_test (host, G_FILE_TEST_EXISTS))
    {
      *code = "not_found";
      *problem = g_strdup_printf ("path %s not found", path);
      return NULL;
    }
  if (!g_file_test (host, G_FILE_TEST_IS_DIR))
    {
      *code = "invalid_argument";
      *problem = g_strdup_printf ("path %s not a directory", path);
      return NULL;
    }
  watcher = g_new0 (EmuWatcher, 1);
  watcher->sandbox = sandbox;
  watcher->id = g_uuid_string_random ();
  watcher->path = g_strdup (path);
  watcher->host = g_strdup (host);
  watcher->recursive = json_object_get_boolean_member_with_default (request, "recursive", FALSE);
  watcher->include_entry = json_object_get_boolean_member_with_default (request, "includeEntry", FALSE);
  watcher->dirs = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL, g_free);
  watcher->events = g_ptr_array_new_with_free_func ((GDestroyNotify) json_node_unref);
  watcher->fd = inotify_init1 (IN_NONBLOCK | IN_CLOEXEC);
  if (watcher->fd < 0)
    {
      int errsv = errno;

      watcher_free (watcher);
      *code = "internal";
      *problem = g_strdup_printf ("error creating watcher: %s", g_strerror (errsv));
      return NULL;
    }
  watcher_add (watcher, "", watcher->recursive);
  /* Ahead of the requests: a directory made by one request is watched
   * before the next one writes into it. */
  watcher->source = g_unix_fd_source_new (watcher->fd, G_IO_IN);
  g_source_set_priority (watcher->source, G_PRIORITY_HIGH);
  g_source_set_callback (watcher->source, G_SOURCE_FUNC (watcher_read), watcher, NULL);
  g_source_attach (watcher->source, sandbox->emu->context);
  g_hash_table_insert (sandbox->watchers, watcher->id, watcher);
  return watcher;
}

/* WatchDir: the events as a stream, after a start event. */
static void
watch_dir (E2bEmulator       *emu,
           EmuSandbox        *sandbox,
           SoupServerMessage *msg,
           const char        *user)
{
  g_autoptr(JsonNode) holder = NULL;
  g_autofree char *problem = NULL;
  JsonObject *request = stream_request (msg, &holder, &problem);
  g_autofree char *path = NULL;
  g_autofree char *host = NULL;
  const char *code = NULL;
  EmuWatcher *watcher;
  EmuStream *stream;

  if (request == NULL)
    return stream_fail (emu, msg, "invalid_argument", problem);
  path = resolve_path (user, _sandbox_json_get_string (request, "path"));
  host = host_path (sandbox, path, NULL);
  watcher = watcher_new (sandbox, request, path, host, &code, &problem);
  if (watcher == NULL)
    return stream_fail (emu, msg, code, problem);
  stream = stream_ref (stream_new (emu, msg, FALSE));
  stream->bare = TRUE;
  stream_send_event (stream, "start", empty_object_node ());
  if (stream->msg == NULL)
    g_hash_table_remove (sandbox->watchers, watcher->id);  /* the client has gone already */
  else
    {
      watcher->stream = stream_ref (stream);
      stream->watcher = watcher;
    }
  stream_unref (stream);
}

static void
watcher_rpc (EmuSandbox        *sandbox,
             SoupServerMessage *msg,
             const char        *method,
             JsonObject        *request,
             const char        *path,
             const char        *host)
{
  const char *id = _sandbox_json_get_string (request, "watcherId");
  EmuWatcher *watcher = NULL;

  if (sandbox->watchers == NULL)
    sandbox->watchers = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, (GDestroyNotify) watcher_free);
  if (strcmp (method, "CreateWatcher") == 0)
    {
      g_autoptr(JsonBuilder) builder = json_builder_new ();
      g_autofree char *problem = NULL;
      const char *code = NULL;

      watcher = watcher_new (sandbox, request, path, host, &code, &problem);
      if (watcher == NULL)
        return _emu_reply_connect_error (msg, code, "%s", problem);
      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "watcherId");
      json_builder_add_string_value (builder, watcher->id);
      json_builder_end_object (builder);
      return _emu_reply_json (msg, 200, json_builder_get_root (builder));
    }
  if (id != NULL)
    watcher = g_hash_table_lookup (sandbox->watchers, id);
  if (watcher == NULL || watcher->stream != NULL)
    return _emu_reply_connect_error (msg, "not_found", "watcher with id %s not found", id ? id : "");
  if (strcmp (method, "GetWatcherEvents") == 0)
    {
      g_autoptr(JsonBuilder) builder = json_builder_new ();

      watcher_read (watcher->fd, G_IO_IN, watcher);
      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "events");
      json_builder_begin_array (builder);
      for (guint i = 0; i < watcher->events->len; i++)
        json_builder_add_value (builder, json_node_ref (g_ptr_array_index (watcher->events, i)));
      json_builder_end_array (builder);
      json_builder_end_object (builder);
      g_ptr_array_set_size (watcher->events, 0);
      return _emu_reply_json (msg, 200, json_builder_get_root (builder));
    }
  g_hash_table_remove (sandbox->watchers, watcher->id);
  _emu_reply_json (msg, 200, json_from_string ("{}", NULL));
}

static void
filesystem_unary (EmuSandbox        *sandbox,
                  SoupServerMessage *msg,
                  const char        *method,
                  JsonObject        *request,
                  const char        *user)
{
  g_autofree char *path = resolve_path (user, _sandbox_json_get_string (request, "path"));
  gboolean writable = FALSE;
  g_autofree char *host = host_path (sandbox, path, &writable);
  g_autoptr(GError) error = NULL;
  JsonNode *entry;

  if (strcmp (method, "CreateWatcher") == 0 || strcmp (method, "GetWatcherEvents") == 0 ||
      strcmp (method, "RemoveWatcher") == 0)
    watcher_rpc (sandbox, msg, method, request, path, host);
  else if (strcmp (method, "Stat") == 0)
    {
      entry = entry_info (sandbox, path, host, writable, &error);
      if (entry == NULL)
        _emu_reply_connect_error (msg, "not_found", "file not found: %s", path);
      else
        _emu_reply_json (msg, 200, wrap ("entry", entry));
    }
  else if (strcmp (method, "ListDir") == 0)
    {
      gint64 depth = 1;
      g_autoptr(GPtrArray) entries = g_ptr_array_new ();
      g_autoptr(JsonBuilder) builder = json_builder_new ();

      _sandbox_json_get_int (request, "depth", &depth);
      if (!g_file_test (host, G_FILE_TEST_EXISTS))
        {
          _emu_reply_connect_error (msg, "not_found", "directory not found: %s", path);
          return;
        }
      if (!g_file_test (host, G_FILE_TEST_IS_DIR))
        {
          _emu_reply_connect_error (msg, "invalid_argument", "path is not a directory: %s", path);
          return;
        }
      list_dir (sandbox, entries, path, host, writable, (guint) CLAMP (depth, 1, 64));
      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "entries");
      json_builder_begin_array (builder);
      for (guint i = 0; i < entries->len; i++)
        json_builder_add_value (builder, g_ptr_array_index (entries, i));
      json_builder_end_array (builder);
      json_builder_end_object (builder);
      _emu_reply_json (msg, 200, json_builder_get_root (builder));
    }
  else if (strcmp (method, "MakeDir") == 0)
    {
      if (g_file_test (host, G_FILE_TEST_IS_DIR))
        _emu_reply_connect_error (msg, "already_exists", "directory already exists: %s", path);
      else if (g_file_test (host, G_FILE_TEST_EXISTS))
        _emu_reply_connect_error (msg, "invalid_argument", "path already exists but it is not a directory: %s", path);
      else if (!writable)
        _emu_reply_connect_error (msg, "permission_denied", "error creating directory %s: permission denied", path);
      else if (g_mkdir_with_parents (host, 0755) != 0)
        _emu_reply_connect_error (msg, "internal", "error creating directory %s: %s", path, g_strerror (errno));
      else
        _emu_reply_json (msg, 200, wrap ("entry", entry_info (sandbox, path, host, writable, NULL)));
    }
  else if (strcmp (method, "Move") == 0)
    {
      g_autofree char *source = resolve_path (user, _sandbox_json_get_string (request, "source"));
      g_autofree char *destination = resolve_path (user, _sandbox_json_get_string (request, "destination"));
      gboolean source_writable = FALSE, destination_writable = FALSE;
      g_autofree char *source_host = host_path (sandbox, source, &source_writable);
      g_autofree char *destination_host = host_path (sandbox, destination, &destination_writable);
      g_autofree char *parent = g_path_get_dirname (destination_host);

      if (!g_file_test (source_host, G_FILE_TEST_EXISTS) && !g_file_test (source_host, G_FILE_TEST_IS_SYMLINK))
        _emu_reply_connect_error (msg, "not_found", "source file not found: %s", source);
      else if (!source_writable || !destination_writable)
        _emu_reply_connect_error (msg, "permission_denied", "error renaming %s: permission denied", source);
      else if (g_mkdir_with_parents (parent, 0755) != 0 || g_rename (source_host, destination_host) != 0)
        _emu_reply_connect_error (msg, "internal", "error renaming %s: %s", source, g_strerror (errno));
      else
        _emu_reply_json (msg, 200, wrap ("entry", entry_info (sandbox, destination, destination_host, TRUE, NULL)));
    }
  else if (strcmp (method, "Remove") == 0)
    {
      if (!writable)
        _emu_reply_connect_error (msg, "permission_denied", "error removing %s: permission denied", path);
      else
        {
          g_autoptr(GFile) file = g_file_new_for_path (host);

          if (g_file_test (host, G_FILE_TEST_IS_DIR) && !g_file_test (host, G_FILE_TEST_IS_SYMLINK))
            {
              g_autofree char *quoted = g_shell_quote (host);
              g_autofree char *rm = g_strdup_printf ("rm -rf -- %s", quoted);

              g_spawn_command_line_sync (rm, NULL, NULL, NULL, NULL);
            }
          else
            g_file_delete (file, NULL, NULL);
          _emu_reply_json (msg, 200, json_from_string ("{}", NULL));
        }
    }
  else
    _emu_reply_connect_error (msg, "unimplemented", "filesystem.Filesystem/%s is not supported by the E2B emulator", method);
}

/* ------------------------------------------------------------------ */
/* /files                                                              */

static gboolean
write_in_place (const char  *host,
                GBytes      *contents,
                GError     **error)
{
  gsize len;
  const guint8 *data = g_bytes_get_data (contents, &len);
  gsize done = 0;
  int fd = open (host, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);

  if (fd < 0)
    {
      int errsv = errno;

      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv), "%s", g_strerror (errsv));
      return FALSE;
    }
  if (fchown (fd, getuid (), getgid ()) != 0)
    g_debug ("e2b-emulator: fchown %s: %s", host, g_strerror (errno));
  while (done < len)
    {
      gssize n = write (fd, data + done, len - done);

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          int errsv = errno;

          close (fd);
          g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv), "%s", g_strerror (errsv));
          return FALSE;
        }
      done += (gsize) n;
    }
  if (close (fd) != 0)
    {
      int errsv = errno;

      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errsv), "%s", g_strerror (errsv));
      return FALSE;
    }
  return TRUE;
}

/* Whether the query's v1 signature is SANDBOX's for OPERATION (expired
 * or not). */
gboolean
_emu_envd_signed_by (EmuSandbox *sandbox,
                     GHashTable *query,
                     const char *operation,
                     const char *user_param)
{
  const char *signature = g_hash_table_lookup (query, "signature");
  const char *expiration = g_hash_table_lookup (query, "signature_expiration");
  const char *path = g_hash_table_lookup (query, "path");
  g_autofree char *raw = NULL;
  guint8 digest[32];
  gsize digest_len = sizeof digest;
  g_autoptr(GChecksum) checksum = g_checksum_new (G_CHECKSUM_SHA256);
  g_autofree char *b64 = NULL;
  char *eq;

  if (signature == NULL || sandbox->access_token == NULL)
    return FALSE;
  raw = expiration
        ? g_strdup_printf ("%s:%s:%s:%s:%s", path ? path : "", operation, user_param ? user_param : "",
                           sandbox->access_token, expiration)
        : g_strdup_printf ("%s:%s:%s:%s", path ? path : "", operation, user_param ? user_param : "",
                           sandbox->access_token);
  g_checksum_update (checksum, (const guchar *) raw, -1);
  g_checksum_get_digest (checksum, digest, &digest_len);
  b64 = g_base64_encode (digest, digest_len);
  if ((eq = strchr (b64, '=')) != NULL)
    *eq = '\0';
  return g_str_has_prefix (signature, "v1_") && strcmp (signature + 3, b64) == 0;
}

static JsonNode *
write_info (const char *path,
            GHashTable *metadata)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autofree char *base = g_path_get_basename (path);

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "path");
  json_builder_add_string_value (builder, path);
  json_builder_set_member_name (builder, "name");
  json_builder_add_string_value (builder, base);
  json_builder_set_member_name (builder, "type");
  json_builder_add_string_value (builder, "file");
  metadata_add (builder, metadata);
  json_builder_end_object (builder);
  return json_builder_get_root (builder);
}

/* Writes one uploaded file; on failure replies and returns FALSE. */
static gboolean
store_file (EmuSandbox        *sandbox,
            SoupServerMessage *msg,
            const char        *user,
            const char        *target,
            GBytes            *data,
            gboolean           gzipped,
            GHashTable        *metadata,
            JsonBuilder       *builder)
{
  g_autofree char *path = resolve_path (user, target);
  gboolean writable = FALSE;
  g_autofree char *host = host_path (sandbox, path, &writable);
  g_autofree char *parent = g_path_get_dirname (host);
  g_autoptr(GBytes) contents = g_bytes_ref (data);
  g_autoptr(GError) error = NULL;

  if (gzipped)
    {
      g_autoptr(GInputStream) raw = g_memory_input_stream_new_from_bytes (data);
      g_autoptr(GZlibDecompressor) gunzip = g_zlib_decompressor_new (G_ZLIB_COMPRESSOR_FORMAT_GZIP);
      g_autoptr(GInputStream) in = g_converter_input_stream_new (raw, G_CONVERTER (gunzip));
      g_autoptr(GOutputStream) out = g_memory_output_stream_new_resizable ();

      if (g_output_stream_splice (out, in, G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET, NULL, &error) < 0)
        {
          _emu_reply_error (msg, 400, "failed to decompress the body: %s", error->message);
          return FALSE;
        }
      g_bytes_unref (contents);
      contents = g_memory_output_stream_steal_as_bytes (G_MEMORY_OUTPUT_STREAM (out));
    }

  if (g_file_test (host, G_FILE_TEST_IS_DIR))
    {
      _emu_reply_error (msg, 400, "path '%s' is a directory", path);
      return FALSE;
    }
  if (!writable)
    {
      _emu_reply_error (msg, 401, "error opening file '%s': permission denied", path);
      return FALSE;
    }
  /* In place, as envd writes: open (create, truncate), chown to the
   * user, then the data (a watcher sees CREATE, CHMOD, WRITE). */
  /* Through the sandbox's symlinks, never out of its writable areas. */
  {
    gboolean exists, inside = FALSE;
    g_autofree char *resolved = follow_symlinks (sandbox, path, &exists);

    g_free (host);
    host = host_path (sandbox, resolved, &inside);
    if (!inside)
      {
        _emu_reply_error (msg, 401, "error opening file '%s': permission denied", path);
        return FALSE;
      }
  }
  if (g_mkdir_with_parents (parent, 0755) != 0 ||
      !write_in_place (host, contents, &error))
    {
      _emu_reply_error (msg, 500, "error writing file '%s': %s", path,
                        error ? error->message : g_strerror (errno));
      return FALSE;
    }
  if (!metadata_write (host, metadata, &error))
    {
      _emu_reply_error (msg, 500, "error writing the metadata of '%s': %s", path, error->message);
      return FALSE;
    }
  json_builder_add_value (builder, write_info (path, metadata));
  return TRUE;
}

#define METADATA_HEADER_PREFIX "X-Metadata-"

static gboolean
printable_ascii (const char *text)
{
  for (const char *c = text; *c != '\0'; c++)
    if (*c < 0x20 || *c > 0x7e)
      return FALSE;
  return TRUE;
}

/* The metadata an upload's headers carry (an empty table for none), or
 * NULL with *refusal set when envd would answer 400: keys and values of
 * printable ASCII, a key of at most 246 bytes, 4096 bytes in all. */
static GHashTable *
upload_metadata (SoupMessageHeaders  *headers,
                 char               **refusal)
{
  g_autoptr(GHashTable) metadata = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  SoupMessageHeadersIter iter;
  const char *name, *value;
  gsize total = 0;

  soup_message_headers_iter_init (&iter, headers);
  while (soup_message_headers_iter_next (&iter, &name, &value))
    {
      g_autofree char *key = NULL;

      if (g_ascii_strncasecmp (name, METADATA_HEADER_PREFIX, strlen (METADATA_HEADER_PREFIX)) != 0)
        continue;
      key = g_ascii_strdown (name + strlen (METADATA_HEADER_PREFIX), -1);
      if (*key == '\0' || !printable_ascii (key) || !printable_ascii (value) || strlen (key) > 246)
        {
          *refusal = g_strdup_printf ("invalid metadata key or value '%s': use printable ASCII, "
                                      "keys of at most 246 bytes", key);
          return NULL;
        }
      total += strlen (key) + strlen (value);
      g_hash_table_replace (metadata, g_steal_pointer (&key), g_strdup (value));
    }
  if (total > 4096)
    {
      *refusal = g_strdup ("the file metadata is too large: 4096 bytes of keys and values at most");
      return NULL;
    }
  return g_steal_pointer (&metadata);
}

static void
files_upload (EmuSandbox        *sandbox,
              SoupServerMessage *msg,
              GHashTable        *query,
              const char        *user)
{
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  const char *type = soup_message_headers_get_content_type (headers, NULL);
  const char *encoding = soup_message_headers_get_one (headers, "Content-Encoding");
  const char *path = _emu_query (query, "path");
  g_autoptr(GBytes) body = _emu_request_body (msg);
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(GHashTable) metadata = NULL;
  g_autofree char *refusal = NULL;

  /* X-Metadata-<key>: <value>, the key lowercased (envd >= 0.6.2). */
  metadata = upload_metadata (headers, &refusal);
  if (metadata == NULL)
    {
      _emu_reply_error (msg, 400, "%s", refusal);
      return;
    }
  json_builder_begin_array (builder);
  if (g_strcmp0 (type, "application/octet-stream") == 0)
    {
      if (path == NULL || *path == '\0')
        {
          _emu_reply_error (msg, 400, "path is required for application/octet-stream uploads");
          return;
        }
      if (!store_file (sandbox, msg, user, path, body, g_strcmp0 (encoding, "gzip") == 0, metadata, builder))
        return;
    }
  else if (g_strcmp0 (type, "multipart/form-data") == 0)
    {
      g_autoptr(SoupMultipart) multipart = soup_multipart_new_from_message (headers, body);
      g_autoptr(GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
      guint stored = 0;

      if (multipart == NULL)
        {
          _emu_reply_error (msg, 400, "error parsing multipart form");
          return;
        }
      for (int i = 0; i < soup_multipart_get_length (multipart); i++)
        {
          SoupMessageHeaders *part_headers;
          GBytes *part_body;
          g_autoptr(GHashTable) params = NULL;
          const char *name, *filename, *target;

          const char *disposition, *semi;

          /* Parsed by hand: libsoup strips the directories from "filename",
           * and envd takes it verbatim as the destination path. */
          if (!soup_multipart_get_part (multipart, i, &part_headers, &part_body) ||
              (disposition = soup_message_headers_get_one (part_headers, "Content-Disposition")) == NULL ||
              (semi = strchr (disposition, ';')) == NULL)
            continue;
          params = soup_header_parse_semi_param_list (semi + 1);
          name = g_hash_table_lookup (params, "name");
          filename = g_hash_table_lookup (params, "filename");
          if (g_strcmp0 (name, "file") != 0)
            continue;
          target = path && *path ? path : filename;
          if (target == NULL || *target == '\0')
            {
              _emu_reply_error (msg, 400, "the part has no file name and no path was given");
              return;
            }
          if (g_hash_table_contains (seen, target))
            {
              _emu_reply_error (msg, 400, "cannot upload the same path twice: %s", target);
              return;
            }
          g_hash_table_add (seen, g_strdup (target));
          if (!store_file (sandbox, msg, user, target, part_body, FALSE, metadata, builder))
            return;
          stored++;
        }
      if (stored == 0)
        {
          _emu_reply_error (msg, 400, "no file part in the multipart form");
          return;
        }
    }
  else
    {
      _emu_reply_error (msg, 400, "unsupported content type: %s", type ? type : "(none)");
      return;
    }
  json_builder_end_array (builder);
  _emu_reply_json (msg, 200, json_builder_get_root (builder));
}

static void
files_download (EmuSandbox        *sandbox,
                SoupServerMessage *msg,
                GHashTable        *query,
                const char        *user)
{
  const char *param = _emu_query (query, "path");
  g_autofree char *path = resolve_path (user, param);
  g_autofree char *host = host_path (sandbox, path, NULL);
  g_autofree char *base = g_path_get_basename (path);
  g_autofree char *disposition = NULL;
  g_autoptr(GMappedFile) mapped = NULL;
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(GError) error = NULL;

  if (!g_file_test (host, G_FILE_TEST_EXISTS))
    {
      _emu_reply_error (msg, 404, "path '%s' does not exist", path);
      return;
    }
  if (g_file_test (host, G_FILE_TEST_IS_DIR))
    {
      _emu_reply_error (msg, 400, "path '%s' is a directory", path);
      return;
    }
  mapped = g_mapped_file_new (host, FALSE, &error);
  if (mapped == NULL)
    {
      _emu_reply_error (msg, 500, "error opening file '%s': %s", path, error->message);
      return;
    }
  bytes = g_mapped_file_get_bytes (mapped);
  disposition = g_strdup_printf ("inline; filename=\"%s\"", base);
  soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                "Content-Disposition", disposition);
  soup_server_message_set_status (msg, 200, NULL);
  soup_message_headers_set_content_type (soup_server_message_get_response_headers (msg),
                                         "application/octet-stream", NULL);
  /* An empty file: libsoup takes no empty chunk. */
  if (g_bytes_get_size (bytes) > 0)
    soup_message_body_append_bytes (soup_server_message_get_response_body (msg), bytes);
}

/* ------------------------------------------------------------------ */
/* Dispatch                                                            */

void
_emu_envd_sandbox_gone (EmuSandbox *sandbox)
{
  GHashTableIter iter;
  gpointer value;

  if (sandbox->watchers != NULL)
    g_hash_table_remove_all (sandbox->watchers);
  g_hash_table_iter_init (&iter, sandbox->processes);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      EmuProcess *proc = value;

      if (proc->retention != NULL)
        {
          g_source_destroy (proc->retention);
          g_clear_pointer (&proc->retention, g_source_unref);
        }
      proc->sandbox = NULL;
      while (proc->streams != NULL)
        stream_cut (proc->streams->data);
      if (proc->running)
        {
          proc->killed = TRUE;
          g_cancellable_cancel (proc->cancellable);
        }
      g_hash_table_iter_remove (&iter);
      process_unref (proc);
    }
}

void
_emu_envd_handle (E2bEmulator       *emu,
                  EmuSandbox        *sandbox,
                  SoupServerMessage *msg,
                  const char        *path,
                  GHashTable        *query)
{
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  const char *method = soup_server_message_get_method (msg);
  const char *token = soup_message_headers_get_one (headers, "X-Access-Token");
  const char *type = soup_message_headers_get_content_type (headers, NULL);
  gboolean token_ok = g_strcmp0 (token, sandbox->access_token) == 0;
  g_autoptr(GError) error = NULL;
  g_autofree char *user = NULL;

  if (strcmp (path, "/health") == 0)
    {
      soup_server_message_set_status (msg, 204, NULL);
      soup_message_headers_replace (soup_server_message_get_response_headers (msg), "Cache-Control", "no-store");
      return;
    }

  if (strcmp (path, "/files") == 0)
    {
      const char *user_param = _emu_query (query, "username");
      gboolean download = strcmp (method, "GET") == 0;

      const char *expiration = _emu_query (query, "signature_expiration");
      gboolean signed_ok = token == NULL &&
                           _emu_envd_signed_by (sandbox, query, download ? "read" : "write", user_param);

      if (!token_ok && signed_ok && expiration != NULL &&
          g_ascii_strtoll (expiration, NULL, 10) < g_get_real_time () / G_USEC_PER_SEC)
        {
          _emu_reply_error (msg, 401, "signature is already expired");
          return;
        }
      if (!token_ok && !signed_ok)
        {
          _emu_reply_error (msg, 401, "unauthorized access, please provide a valid access token or "
                            "method signing if supported");
          return;
        }
      if (user_param != NULL && strcmp (user_param, "user") != 0 && strcmp (user_param, "root") != 0)
        {
          _emu_reply_error (msg, 401, "error looking up user '%s': unknown user", user_param);
          return;
        }
      user = g_strdup (user_param ? user_param : "user");
      if (download)
        files_download (sandbox, msg, query, user);
      else if (strcmp (method, "POST") == 0)
        files_upload (sandbox, msg, query, user);
      else
        _emu_reply_error (msg, 405, "method not allowed");
      return;
    }

  if (!token_ok)
    {
      _emu_reply_error (msg, 401, "unauthorized access, please provide a valid access token or "
                        "method signing if supported");
      return;
    }

  if (strcmp (path, "/envs") == 0)
    {
      g_autoptr(JsonBuilder) builder = json_builder_new ();
      GHashTableIter iter;
      gpointer key, value;

      json_builder_begin_object (builder);
      g_hash_table_iter_init (&iter, sandbox->envs);
      while (g_hash_table_iter_next (&iter, &key, &value))
        {
          json_builder_set_member_name (builder, key);
          json_builder_add_string_value (builder, value);
        }
      json_builder_end_object (builder);
      _emu_reply_json (msg, 200, json_builder_get_root (builder));
      return;
    }

  if (g_str_has_prefix (path, "/process.Process/") || g_str_has_prefix (path, "/filesystem.Filesystem/"))
    {
      const char *rpc = strchr (path + 1, '/') + 1;
      gboolean is_process = g_str_has_prefix (path, "/process.");
      gboolean streaming = is_process ? (strcmp (rpc, "Start") == 0 || strcmp (rpc, "Connect") == 0)
                                      : strcmp (rpc, "WatchDir") == 0;

      if (strcmp (method, "POST") != 0)
        {
          _emu_reply_error (msg, 405, "method not allowed");
          return;
        }
      user = request_user (msg, &error);
      if (streaming)
        {
          if (g_strcmp0 (type, "application/connect+json") != 0)
            {
              _emu_reply_error (msg, 415, "unsupported content type %s", type ? type : "(none)");
              return;
            }
          if (user == NULL)
            stream_fail (emu, msg, "unauthenticated", error->message);
          else if (!is_process)
            watch_dir (emu, sandbox, msg, user);
          else if (strcmp (rpc, "Start") == 0)
            process_start (emu, sandbox, msg, user);
          else
            process_connect (emu, sandbox, msg);
          return;
        }
      if (g_strcmp0 (type, "application/json") != 0)
        {
          _emu_reply_error (msg, 415, "unsupported content type %s", type ? type : "(none)");
          return;
        }
      if (user == NULL)
        {
          _emu_reply_connect_error (msg, "unauthenticated", "%s", error->message);
          return;
        }
      {
        g_autoptr(GBytes) body = _emu_request_body (msg);
        g_autoptr(JsonNode) root = _emu_parse_json (body);

        if (root != NULL && !JSON_NODE_HOLDS_OBJECT (root))
          {
            _emu_reply_connect_error (msg, "invalid_argument", "the request is not a JSON object");
            return;
          }
        if (is_process)
          process_unary (sandbox, msg, rpc, root ? json_node_get_object (root) : NULL);
        else
          filesystem_unary (sandbox, msg, rpc, root ? json_node_get_object (root) : NULL, user);
      }
      return;
    }

  if (strcmp (path, "/metrics") == 0)
    {
      _emu_reply_json (msg, 200, _emu_sandbox_metrics (sandbox, FALSE));
      return;
    }
  _emu_reply_error (msg, 404, "no such envd endpoint: %s %s", method, path);
}
