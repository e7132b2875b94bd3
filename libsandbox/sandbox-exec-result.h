/* libsandbox - how a command ended
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined (__SANDBOX_INSIDE__) && !defined (SANDBOX_COMPILATION)
#error "Only <libsandbox/sandbox.h> can be included directly."
#endif

#include <glib-object.h>
#include "sandbox-version-macros.h"

G_BEGIN_DECLS

#define SANDBOX_TYPE_EXEC_RESULT (sandbox_exec_result_get_type ())

SANDBOX_AVAILABLE_IN_0_1
G_DECLARE_FINAL_TYPE (SandboxExecResult, sandbox_exec_result, SANDBOX, EXEC_RESULT, GObject)

SANDBOX_AVAILABLE_IN_0_1
SandboxExecResult *sandbox_exec_result_new             (int                exit_status,
                                                        int                term_signal);
SANDBOX_AVAILABLE_IN_0_1
int                sandbox_exec_result_get_exit_status (SandboxExecResult *self);
SANDBOX_AVAILABLE_IN_0_1
int                sandbox_exec_result_get_term_signal (SandboxExecResult *self);
SANDBOX_AVAILABLE_IN_0_1
gboolean           sandbox_exec_result_get_timed_out   (SandboxExecResult *self);
SANDBOX_AVAILABLE_IN_0_1
gboolean           sandbox_exec_result_get_success     (SandboxExecResult *self);
SANDBOX_AVAILABLE_IN_0_1
int                sandbox_exec_result_get_exit_code   (SandboxExecResult *self);
SANDBOX_AVAILABLE_IN_0_1
GBytes            *sandbox_exec_result_get_stdout      (SandboxExecResult *self);
SANDBOX_AVAILABLE_IN_0_1
GBytes            *sandbox_exec_result_get_stderr      (SandboxExecResult *self);
SANDBOX_AVAILABLE_IN_0_1
double             sandbox_exec_result_get_elapsed     (SandboxExecResult *self);

G_END_DECLS
