// SPDX-License-Identifier: MIT
#pragma once

#include <QException>

#include <stdexcept>

namespace TaskPool {

//! Thrown by `co_await` on a cancelled future, and by `Future::exception()` for one.
/*!
 * A task may also throw it itself: it then ends cancelled, not failed. It derives from
 * QException so that a QFuture (and Qt's continuations) can carry it.
 */
class CancelledError : public QException {
public:
    CancelledError() = default;
    //! "the future was cancelled".
    const char* what() const noexcept override { return "the future was cancelled"; }
    //! Throws a copy (QException's way of carrying it across threads).
    void raise() const override { throw *this; }
    //! A heap copy (for QException).
    CancelledError* clone() const override { return new CancelledError(*this); }
};

//! Thrown by `submit()` and `map()` once the executor has been shut down.
class ShutdownError : public std::runtime_error {
public:
    ShutdownError() : std::runtime_error("cannot schedule new futures after shutdown") { }
};

//! Thrown by `asCompleted()` when its timeout passes before every future finished.
class TimeoutError : public std::runtime_error {
public:
    TimeoutError() : std::runtime_error("timed out waiting for futures") { }
    //! With a message of the caller's.
    explicit TimeoutError(const std::string& message) : std::runtime_error(message) { }
};

} // namespace TaskPool
