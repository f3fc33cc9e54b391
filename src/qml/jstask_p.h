// SPDX-License-Identifier: MIT
// Internal to the TaskPool QML module: how a JavaScript function runs as a task.
#pragma once

#include <QException>
#include <QFuture>
#include <QFutureInterface>
#include <QJSEngine>
#include <QJSValue>
#include <QObject>
#include <QPointer>
#include <QVariant>

namespace TaskPool::detail {

//! The failure of a JavaScript task: the value it threw or rejected with, and its message.
class JsError : public QException {
public:
    JsError(QString message, QJSValue reason, QJSEngine* engine) :
        m_message(std::move(message)), m_utf8(m_message.toUtf8()), m_reason(std::move(reason)), m_engine(engine)
    {
    }
    const char* what() const noexcept override { return m_utf8.constData(); }
    void raise() const override { throw *this; }
    JsError* clone() const override { return new JsError(*this); }

    QString message() const { return m_message; }
    QJSValue reason() const { return m_reason; }
    //! The engine the reason belongs to; null once it was destroyed.
    QJSEngine* engine() const { return m_engine; }

    //! The message of a thrown or rejected value: an Error's `message`, anything else as a string.
    static QString messageOf(const QJSValue& reason);

private:
    QString m_message;
    QByteArray m_utf8;
    QJSValue m_reason;
    QPointer<QJSEngine> m_engine;
};

//! What a task's function settles through: JavaScript calls resolve() or reject() once (later
//! calls are ignored), which settles future().
/*!
 * Until it settles it is a child of the engine, so that the garbage collector leaves it alone
 * while a Promise that may still call it is pending, and so that it goes away with the engine
 * (cancelling the task). Once settled it is handed to the collector.
 */
class JsSettler : public QObject {
    Q_OBJECT
public:
    explicit JsSettler(QJSEngine* engine);
    ~JsSettler() override;

    QFuture<QVariant> future() { return m_fi.future(); }

    Q_INVOKABLE void resolve(const QJSValue& value);
    Q_INVOKABLE void reject(const QJSValue& reason);

private:
    bool settle();

    QFutureInterface<QVariant> m_fi;
    QPointer<QJSEngine> m_engine;
    bool m_settled = false;
};

//! Helpers evaluated once per engine (a child of the engine, found through a dynamic property).
class JsHelpers : public QObject {
    Q_OBJECT
public:
    //! The engine's helpers; incomplete (not callable) while the engine is interrupted.
    static JsHelpers* of(QJSEngine* engine);
    bool isComplete() const
    {
        return runner.isCallable() && deferred.isCallable() && cancelledError.isCallable() && namedError.isCallable()
            && abortController.isCallable();
    }

    //! runner(fn, args, settler): calls fn(...args) and settles settler with the outcome.
    QJSValue runner;
    //! deferred(): {promise, resolve, reject}.
    QJSValue deferred;
    //! cancelledError(message): an Error named "CancelledError".
    QJSValue cancelledError;
    //! namedError(name, message): an Error with that name ("TimeoutError", ...).
    QJSValue namedError;
    //! abortController(): {signal, abort(reason)}: the abort signal a task's function receives, and
    //! what aborts it (once; later calls return false).
    QJSValue abortController;

private:
    explicit JsHelpers(QJSEngine* engine);
};

} // namespace TaskPool::detail
