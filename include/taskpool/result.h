// SPDX-License-Identifier: MIT
//! \file result.h
//! Result<T>, a value or the exception that took its place, and Indexed<T>, a value with the input
//! position it came from.
#pragma once

#include <taskpool/errors.h>

#include <QtGlobal>

#include <exception>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <variant>

namespace TaskPool {

//! A value together with the position of the input it came from.
/*!
 * What TaskPoolExecutor::mapUnordered() yields (the position of the item in the zipped input, from
 * 0) and TaskPool::asCompletedIndexed() (the position of the future in its list). An aggregate, so
 * structured bindings work: `auto [index, value] = indexed;` (not in QCORO_FOREACH's first argument,
 * where the comma splits the macro's arguments: take `const auto &item` and use its members there).
 */
template <typename T> struct Indexed {
    //! The position in the input, from 0.
    qsizetype index;
    //! The value: a result, a Result<R>, or a future.
    T value;
};

//! The position of an input whose result is `void`: only the index.
template <> struct Indexed<void> {
    //! The position in the input, from 0.
    qsizetype index;
};

namespace detail {
    inline bool isCancelledError(const std::exception_ptr& error) noexcept
    {
        if (!error)
            return false;
        try {
            std::rethrow_exception(error);
        } catch (const CancelledError&) {
            return true;
        } catch (...) {
            return false;
        }
    }
    inline void checkError(const std::exception_ptr& error)
    {
        if (!error)
            throw std::invalid_argument("Result::fromError() needs an exception, not a null exception_ptr");
    }
} // namespace detail

//! The outcome of one task: its value, or the exception it ended with (CancelledError for a
//! cancelled one).
/*!
 * What the settled helpers give instead of throwing: TaskPool::gatherSettled(),
 * TaskPoolExecutor::mapSettled() and TaskPoolExecutor::mapUnorderedSettled() (as Python's
 * `asyncio.gather(return_exceptions=True)` and JavaScript's `Promise.allSettled`).
 *
 * \code
 * for (const TaskPool::Result<QString> &r : co_await TaskPool::gatherSettled(futures)) {
 *     if (r.hasValue())
 *         qInfo() << r.value();
 *     else if (!r.isCancelled())
 *         qWarning() << "failed";   // std::rethrow_exception(r.error()) to look closer
 * }
 * \endcode
 *
 * \a T may be move-only (map() results may be). A `Result<void>` holds no value, only whether
 * the task succeeded.
 */
template <typename T> class Result {
public:
    //! A successful outcome holding \a value.
    Result(T value) : m_outcome(std::in_place_index<0>, std::move(value)) { }
    //! A copy of \a other (a copyable T only).
    Result(const Result&) = default;
    //! \a other moved in.
    Result(Result&&) = default;
    //! Copies \a other; when the value's copy throws, this holds that exception and it is rethrown
    //! (never a Result with neither a value nor an error).
    Result& operator=(const Result& other) requires std::is_copy_constructible_v<T> { return assign(other); }
    //! Moves \a other in, as the copy does.
    Result&
    operator=(Result&& other) noexcept(std::is_nothrow_move_constructible_v<T>&& std::is_nothrow_move_assignable_v<T>)
    {
        return assign(std::move(other));
    }

    //! A failed outcome: \a error is what the task threw. A CancelledError makes a cancelled
    //! outcome (isCancelled()).
    /*! \throws std::invalid_argument when \a error is null. */
    static Result fromError(std::exception_ptr error)
    {
        detail::checkError(error);
        const bool cancelled = detail::isCancelledError(error);
        return Result(std::move(error), cancelled);
    }

    //! True when the task succeeded.
    bool hasValue() const noexcept { return m_outcome.index() == 0; }
    //! True when the task was cancelled (error() is then a CancelledError).
    bool isCancelled() const noexcept { return m_cancelled; }
    //! The exception the task ended with; null when it succeeded.
    std::exception_ptr error() const noexcept
    {
        const auto* error = std::get_if<1>(&m_outcome);
        return error ? *error : nullptr;
    }

    //! The value; rethrows error() when there is none.
    T& value() &
    {
        check();
        return *std::get_if<0>(&m_outcome);
    }
    //! \copydoc value()
    const T& value() const&
    {
        check();
        return *std::get_if<0>(&m_outcome);
    }
    //! The value, moved out; rethrows error() when there is none.
    T&& value() &&
    {
        check();
        return std::move(*std::get_if<0>(&m_outcome));
    }

private:
    Result(std::exception_ptr error, bool cancelled) :
        m_outcome(std::in_place_index<1>, std::move(error)), m_cancelled(cancelled)
    {
    }
    template <typename Other> Result& assign(Other&& other)
    {
        if (this == &other)
            return *this;
        try {
            m_outcome = std::forward<Other>(other).m_outcome;
            m_cancelled = other.m_cancelled;
        } catch (...) {
            m_outcome.template emplace<1>(std::current_exception()); // noexcept: an exception_ptr
            m_cancelled = false;
            throw;
        }
        return *this;
    }
    void check() const
    {
        if (const auto* error = std::get_if<1>(&m_outcome))
            std::rethrow_exception(*error);
    }

    std::variant<T, std::exception_ptr> m_outcome;
    bool m_cancelled = false;
};

//! The outcome of a task that returns nothing: success, or the exception it ended with.
template <> class Result<void> {
public:
    //! A successful outcome.
    Result() = default;

    //! A failed outcome: \a error is what the task threw. A CancelledError makes a cancelled
    //! outcome (isCancelled()).
    /*! \throws std::invalid_argument when \a error is null. */
    static Result fromError(std::exception_ptr error)
    {
        detail::checkError(error);
        Result result;
        result.m_cancelled = detail::isCancelledError(error);
        result.m_error = std::move(error);
        return result;
    }

    //! True when the task succeeded.
    bool hasValue() const noexcept { return !m_error; }
    //! True when the task was cancelled (error() is then a CancelledError).
    bool isCancelled() const noexcept { return m_cancelled; }
    //! The exception the task ended with; null when it succeeded.
    std::exception_ptr error() const noexcept { return m_error; }
    //! Returns when the task succeeded; rethrows error() otherwise.
    void value() const
    {
        if (m_error)
            std::rethrow_exception(m_error);
    }

private:
    std::exception_ptr m_error;
    bool m_cancelled = false;
};

} // namespace TaskPool
