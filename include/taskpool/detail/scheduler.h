// SPDX-License-Identifier: MIT
#pragma once
#ifndef TASKPOOL_INSIDE_PUBLIC_HEADER
#error "Do not include taskpool/detail headers directly; include <taskpool/taskpool.h>"
#endif

#include <taskpool/taskpool_export.h>

#include <coroutine>

class QThread;

namespace TaskPool::detail {

//! Resumes \a handle soon from the event loop of \a thread (the current one when null).
/*!
 * Everything that becomes ready in one thread before its event loop gets to it is resumed from one
 * posted event: a resumption costs a vector push, not an event. Resuming from the event loop rather
 * than inline keeps stacks flat and makes a task that deletes its executor or awaits again safe.
 */
TASKPOOL_EXPORT void resumeLater(std::coroutine_handle<> handle, QThread* thread = nullptr);

//! Resumes \a handle from a later turn of the current thread's event loop, after the events
//! already posted (resumeLater() may resume it within the drain that is running).
TASKPOOL_EXPORT void yieldLater(std::coroutine_handle<> handle);

//! An awaitable that suspends and comes back from a later turn of the event loop.
struct Yield {
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> handle) const { yieldLater(handle); }
    void await_resume() const noexcept { }
};

} // namespace TaskPool::detail
