/* libsandbox - a command to run in a sandbox
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined (__SANDBOX_INSIDE__) && !defined (SANDBOX_COMPILATION)
#error "Only <libsandbox/sandbox.h> can be included directly."
#endif

#include <gio/gio.h>
#include "sandbox-version-macros.h"

G_BEGIN_DECLS

#define SANDBOX_TYPE_COMMAND (sandbox_command_get_type ())

SANDBOX_AVAILABLE_IN_0_1
G_DECLARE_FINAL_TYPE (SandboxCommand, sandbox_command, SANDBOX, COMMAND, GObject)

SANDBOX_AVAILABLE_IN_0_1
SandboxCommand      *sandbox_command_new               (const char * const *argv);
SANDBOX_AVAILABLE_IN_0_1
SandboxCommand      *sandbox_command_new_shell         (const char         *script);
SANDBOX_AVAILABLE_IN_0_1
const char * const  *sandbox_command_get_argv          (SandboxCommand     *self);
SANDBOX_AVAILABLE_IN_0_1
const char          *sandbox_command_get_cwd           (SandboxCommand     *self);
SANDBOX_AVAILABLE_IN_0_1
void                 sandbox_command_set_cwd           (SandboxCommand     *self,
                                                        const char         *cwd);
SANDBOX_AVAILABLE_IN_0_1
guint                sandbox_command_get_timeout_ms    (SandboxCommand     *self);
SANDBOX_AVAILABLE_IN_0_1
void                 sandbox_command_set_timeout_ms    (SandboxCommand     *self,
                                                        guint               timeout_ms);
SANDBOX_AVAILABLE_IN_0_1
void                 sandbox_command_set_env           (SandboxCommand     *self,
                                                        const char         *name,
                                                        const char         *value);
SANDBOX_AVAILABLE_IN_0_1
GHashTable          *sandbox_command_get_env           (SandboxCommand     *self);
SANDBOX_AVAILABLE_IN_0_1
GOutputStream       *sandbox_command_get_stdout_stream (SandboxCommand     *self);
SANDBOX_AVAILABLE_IN_0_1
void                 sandbox_command_set_stdout_stream (SandboxCommand     *self,
                                                        GOutputStream      *stream);
SANDBOX_AVAILABLE_IN_0_1
GOutputStream       *sandbox_command_get_stderr_stream (SandboxCommand     *self);
SANDBOX_AVAILABLE_IN_0_1
void                 sandbox_command_set_stderr_stream (SandboxCommand     *self,
                                                        GOutputStream      *stream);
SANDBOX_AVAILABLE_IN_0_1
GBytes              *sandbox_command_get_stdin         (SandboxCommand     *self);
SANDBOX_AVAILABLE_IN_0_1
void                 sandbox_command_set_stdin         (SandboxCommand     *self,
                                                        GBytes             *stdin_bytes);

/* Interactive terminal (since 0.2) */
SANDBOX_AVAILABLE_IN_0_2
gboolean             sandbox_command_get_tty           (SandboxCommand     *self);
SANDBOX_AVAILABLE_IN_0_2
void                 sandbox_command_set_tty           (SandboxCommand     *self,
                                                        gboolean            tty);
SANDBOX_AVAILABLE_IN_0_2
void                 sandbox_command_get_tty_size      (SandboxCommand     *self,
                                                        guint              *rows,
                                                        guint              *cols);
SANDBOX_AVAILABLE_IN_0_2
void                 sandbox_command_resize_tty        (SandboxCommand     *self,
                                                        guint               rows,
                                                        guint               cols);
SANDBOX_AVAILABLE_IN_0_2
gboolean             sandbox_command_send_signal       (SandboxCommand     *self,
                                                        int                 signum);
SANDBOX_AVAILABLE_IN_0_2
gboolean             sandbox_command_send_input        (SandboxCommand     *self,
                                                        GBytes             *data);

SANDBOX_AVAILABLE_IN_0_2
const char          *sandbox_command_get_id_env        (SandboxCommand     *self);
SANDBOX_AVAILABLE_IN_0_2
void                 sandbox_command_set_id_env        (SandboxCommand     *self,
                                                        const char         *name);
SANDBOX_AVAILABLE_IN_0_2
const char          *sandbox_command_get_sandbox_id    (SandboxCommand     *self);

G_END_DECLS
