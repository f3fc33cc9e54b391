// SPDX-License-Identifier: MIT
#pragma once
#ifndef TASKPOOL_INSIDE_PUBLIC_HEADER
#error "Do not include taskpool/detail headers directly; include <taskpool/taskpool.h>"
#endif

#include <taskpool/taskpool_export.h>

#include <coroutine>
#include <exception>

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

//! A coroutine nobody awaits: it starts at once and frees its frame when it returns.
struct Detached {
    struct promise_type {
        Detached get_return_object() noexcept { return {}; }
        std::suspend_never initial_suspend() const noexcept { return {}; }
        std::suspend_never final_suspend() const noexcept { return {}; }
        void return_void() const noexcept { }
        void unhandled_exception() const noexcept { std::terminate(); }
    };
};

//! An awaitable that suspends and comes back from a later turn of the event loop.
struct Yield {
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> handle) const { yieldLater(handle); }
    void await_resume() const noexcept { }
};

} // namespace TaskPool::detail
