/* What both API emulators (Daytona, E2B) need the same way
 *
 * JSON helpers come from libsandbox/sandbox-json-private.h, compiled into
 * the emulators too, so that they read requests as the backends read
 * replies.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>
#include <libsoup/soup.h>
#include <libsandbox/sandbox.h>

#include "sandbox-json-private.h"

G_BEGIN_DECLS

typedef struct _EmuImage EmuImage;

/* Where an emulated command's output goes: @len bytes of stdout, or of
 * stderr when @is_stderr. */
typedef void (*EmuSinkWrite) (gpointer      user_data,
                              gboolean      is_stderr,
                              const guint8 *buf,
                              gsize         len);

/* A write-only GOutputStream (the stdout-stream or stderr-stream of a
 * SandboxCommand run in a local sandbox) that hands every write to @write,
 * (with @is_stderr), and completes every call at once on the calling thread, so that stdout
 * and stderr keep their order. @destroy frees @user_data with the stream. */
GOutputStream *_emu_sink_new                 (EmuSinkWrite       write,
                                              gboolean           is_stderr,
                                              gpointer           user_data,
                                              GDestroyNotify     destroy);

/* A new private directory (mode 0700, from @tmpl, "NAME-XXXXXX") for an
 * emulator's sandboxes' own files (their home directories, /tmp, volumes):
 * on a tmpfs of at least 1 GiB when there is one ($XDG_RUNTIME_DIR, else
 * /dev/shm), as the local backend keeps its sandboxes by default, else in
 * $TMPDIR. NULL with @error set when it cannot be made. */
char          *_emu_make_state_dir           (const char        *tmpl,
                                              GError           **error);
/* TRUE when _emu_make_state_dir puts the directory on a tmpfs. */
gboolean       _emu_state_on_tmpfs           (void);

/* The value of the query parameter @name, or NULL; @query (a server
 * callback's) may be NULL. */
const char    *_emu_query                    (GHashTable        *query,
                                              const char        *name);

/* Answers a request for a sandbox's port that nothing answered. */
typedef void (*EmuRefusedFunc) (SoupServerMessage *msg,
                                gpointer           user_data);

/* The preview proxy: sends @msg (its method, query and body) on to
 * http://127.0.0.1:@port@path on *@proxy (a session made on first use),
 * pauses it meanwhile, and answers it with what came back, or with
 * @refused (@msg, @user_data) when the port did not answer; @free_data
 * frees @user_data after. FALSE, with @user_data freed and @msg left to
 * the caller, when @path makes no URL. */
gboolean       _emu_forward_to_port          (SoupSession      **proxy,
                                              SoupServerMessage *msg,
                                              guint              port,
                                              const char        *path,
                                              EmuRefusedFunc     refused,
                                              gpointer           user_data,
                                              GDestroyNotify     free_data);

/* Connect to every request: libsoup 3.2 drops the Content-Length of a 204
 * while writing its headers and then takes the response for an
 * EOF-terminated one: it closes the connection without saying "Connection:
 * close". A client that reuses the connection at once (the e2b SDK's kill
 * then create) gets a reset. The real APIs keep the connection: this says
 * again that a 204 has no body. */
void           _emu_keep_alive_on_no_content (SoupServerMessage *msg);

/* An emulator runs its server on a thread of its own, in @context. */
typedef gboolean (*EmuStartFunc) (gpointer   emu,
                                  GError   **error);
typedef void     (*EmuStopFunc)  (gpointer   emu);

/* Starts the thread @name: it makes @context its thread-default, calls
 * @start, then runs @loop until _emu_thread_quit (), then calls @stop
 * (also after a failed @start). Returns once @start is done: the thread,
 * or NULL and @start's error (the thread is then joined already). */
GThread       *_emu_thread_new               (const char        *name,
                                              GMainContext      *context,
                                              GMainLoop         *loop,
                                              EmuStartFunc       start,
                                              EmuStopFunc        stop,
                                              gpointer           emu,
                                              GError           **error);
/* Quits @loop from any thread and joins @thread. */
void           _emu_thread_quit              (GThread           *thread,
                                              GMainContext      *context,
                                              GMainLoop         *loop);

/* For an emulator program, once it has printed the VAR=value lines a
 * client needs: prints "READY" and serves until SIGINT or SIGTERM. */
void           _emu_main_serve               (void);

/* The id a local sandbox's processes run with (the local backend's
 * LOCAL_SANDBOX_UID): the uid and gid that _emu_add_user_files names. */
#define EMU_SANDBOX_ID "1000"

/* Makes @user (home directory @home) the name of the sandbox's uid and gid,
 * as the provider's images do: copies of the host's /etc/passwd and
 * /etc/group with that entry, written in @dir, mounted read-only over
 * them in @spec. */
gboolean       _emu_add_user_files           (SandboxSpec       *spec,
                                              const char        *dir,
                                              const char        *user,
                                              const char        *home,
                                              GError           **error);

/* The spec of the local sandbox that stands for an emulated one: @env (may
 * be NULL) in its environment, the label @label=@id, ending with the
 * emulator (even when it is killed), and the host's file system read-only,
 * /var/tmp too (a local sandbox makes it private; tests keep Pythons
 * there). */
SandboxSpec   *_emu_local_spec_new           (const char        *label,
                                              const char        *id,
                                              GHashTable        *env);
/* The same on @image (NULL: the host root), whose root leaves /var/tmp
 * alone. */
SandboxSpec   *_emu_local_spec_new_on        (const char        *label,
                                              const char        *id,
                                              GHashTable        *env,
                                              const EmuImage    *image);


/* ------------------------------------------------------------------ */
/* Images: a provider's template, image or snapshot name -> an image of the
 * local backend's image store, or the host root (docs/testing.md,
 * "Images in the emulators"). */

typedef struct _EmuImages EmuImages;

/* What a name resolved to: @reference, for sandbox_spec_set_image (), is
 * NULL for the host root, else the store image's id; @rootfs the image's
 * root on the host (NULL for the host root); @image NULL for the host root;
 * @how one line saying what the name runs on and by which rule, for the
 * sandbox's logs. */
struct _EmuImage
{
  char         *reference;
  char         *rootfs;
  SandboxImage *image;
  char         *how;
};

/* The mapping: the rules of the file named by the environment variable
 * @env_var (unset or empty: none; a file that cannot be read is an error),
 * then the name itself in the store, then @defaults (rules in the same
 * format: "PATTERN = REFERENCE" lines, "#" comments, PATTERN a glob,
 * REFERENCE a store reference, "=" for the name itself, or "host"). */
EmuImages     *_emu_images_new               (const char        *env_var,
                                              const char        *defaults,
                                              GError           **error);
void           _emu_images_free              (EmuImages         *self);
/* @name's image, or NULL with G_IO_ERROR_NOT_FOUND when no rule maps it
 * (the message names the mapping variable), or when its rule names an
 * image the store lacks (the message says how to import it). */
EmuImage      *_emu_images_resolve           (EmuImages         *self,
                                              const char        *name,
                                              GError           **error);
void           _emu_image_free               (EmuImage          *image);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (EmuImage, _emu_image_free)

/* Makes @user's home @home (under @host_homes, the host directory mounted
 * at /home, or /root) and the passwd/group entries of
 * _emu_add_user_files, but from @rootfs's own /etc when @rootfs is not
 * NULL: an image lacking the provider's user gets it, as the providers'
 * base images have it. */
gboolean       _emu_add_user_files_from      (SandboxSpec       *spec,
                                              const char        *rootfs,
                                              const char        *dir,
                                              const char        *user,
                                              const char        *home,
                                              GError           **error);

G_END_DECLS
