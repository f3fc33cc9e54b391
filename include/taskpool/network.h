// SPDX-License-Identifier: MIT
//! \file network.h
//! cancellable(QNetworkReply *): awaits a reply, and aborts it when a std::stop_token is stopped.
/*!
 * Not included by `<taskpool/taskpool.h>`: it needs Qt Network, which TaskPool itself does not
 * link. Include it yourself and link Qt's Network module:
 *
 * ```cmake
 * find_package(Qt6 REQUIRED COMPONENTS Network)
 * target_link_libraries(app PRIVATE TaskPool::TaskPool Qt6::Network)
 * ```
 *
 * The rules of cancel.h (threads, when the coroutine resumes) hold here too.
 */
#pragma once

#include <taskpool/cancel.h>

#include <QNetworkReply>
#include <QPointer>

#include <memory>
#include <optional>
#include <stop_token>

namespace TaskPool {

namespace detail {

    //! The awaiter of cancellable(QNetworkReply *).
    class ReplyAwaiter : public StopAwaiter<PostOnStop> {
    public:
        ReplyAwaiter(QNetworkReply* reply, std::stop_token token) : StopAwaiter(std::move(token)), m_reply(reply) { }
        ~ReplyAwaiter()
        {
            QObject::disconnect(m_finished);
            QObject::disconnect(m_destroyed);
        }

        bool await_ready() const noexcept { return m_token.stop_requested() || !running(); }
        void await_suspend(std::coroutine_handle<> handle)
        {
            arm(handle);
            m_finished = QObject::connect(m_reply, &QNetworkReply::finished, m_reply, [this] { ended(); });
            m_destroyed = QObject::connect(m_reply, &QObject::destroyed, [this] { ended(); });
            listen(PostOnStop { m_state, [this] { abortInThread(); } }); // abort() in its thread
        }
        QNetworkReply* await_resume()
        {
            if (stopped()) {
                if (running())
                    m_reply->abort(); // stopped before the co_await: abort it here, at once
                throw CancelledError();
            }
            return m_reply.data();
        }

    private:
        bool running() const { return m_reply && !m_reply->isFinished(); }
        void ended()
        {
            m_state->decide(StopWaitState::Completed); // unless stopped before
            StopWaitState::resume(m_state);
        }
        void abortInThread()
        {
            if (running())
                m_reply->abort(); // emits finished(): ended() resumes the coroutine
            if (!running())
                StopWaitState::resume(m_state);
        }

        QPointer<QNetworkReply> m_reply;
        QMetaObject::Connection m_finished;
        QMetaObject::Connection m_destroyed;
    };

    //! What cancellable(QNetworkReply *) returns: movable; its awaiter is not.
    class [[nodiscard]] ReplyWait {
    public:
        ReplyWait(QNetworkReply* reply, std::stop_token token) : m_reply(reply), m_token(std::move(token)) { }
        ReplyAwaiter operator co_await() const { return ReplyAwaiter(m_reply, m_token); }

    private:
        QNetworkReply* m_reply;
        std::stop_token m_token;
    };

} // namespace detail

//! Awaits the end of \a reply; on stop, aborts it and throws CancelledError.
/*!
 * `QNetworkReply *r = co_await TaskPool::cancellable(manager.get(request), token);` gives the
 * reply once it has finished (as `co_await reply` does with QCoro), or nullptr when the reply was
 * destroyed while awaited. It does not suspend for a reply that has already finished. The reply
 * stays the caller's: delete it (`deleteLater()`) as usual.
 *
 * On stop, `abort()` is called from the next turn of the awaiting thread's event loop (the
 * server sees the connection closed), and the coroutine resumes with CancelledError once the reply
 * has finished. When stop was already requested at the `co_await`, a running reply is aborted at
 * once and CancelledError thrown without suspending. A stop that comes after the reply finished
 * changes nothing. The reply must live in the awaiting thread.
 */
inline detail::ReplyWait cancellable(QNetworkReply* reply, std::stop_token token)
{
    return detail::ReplyWait(reply, std::move(token));
}

} // namespace TaskPool
