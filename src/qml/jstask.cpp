// SPDX-License-Identifier: MIT
#include "jstask_p.h"

namespace TaskPool::detail {

QString JsError::messageOf(const QJSValue& reason)
{
    if (reason.isError())
        return reason.property(QStringLiteral("message")).toString();
    return reason.toString();
}

JsSettler::JsSettler(QJSEngine* engine) : QObject(engine), m_engine(engine)
{
    QJSEngine::setObjectOwnership(this, QJSEngine::CppOwnership);
    m_fi.reportStarted();
}

JsSettler::~JsSettler()
{
    // The engine went away before the function's Promise settled: nothing can settle it any more.
    if (!m_settled) {
        m_fi.cancel();
        m_fi.reportFinished();
    }
}

bool JsSettler::settle()
{
    if (m_settled)
        return false;
    m_settled = true;
    setParent(nullptr);
    QJSEngine::setObjectOwnership(this, QJSEngine::JavaScriptOwnership);
    return true;
}

void JsSettler::resolve(const QJSValue& value)
{
    if (!settle())
        return;
    m_fi.reportResult(QVariant::fromValue(value));
    m_fi.reportFinished();
}

void JsSettler::reject(const QJSValue& reason)
{
    if (!settle())
        return;
    m_fi.reportException(JsError(JsError::messageOf(reason), reason, m_engine));
    m_fi.reportFinished();
}

namespace {

    // A thenable is adopted through Promise.resolve(), which follows nested thenables and ignores a
    // second settlement, as the Promise specification does. A plain value settles at once.
    constexpr auto runnerSource = R"JS(
(function (fn, args, settler) {
    var value;
    try {
        value = fn.apply(undefined, args);
    } catch (e) {
        settler.reject(e);
        return;
    }
    var thenable = false;
    try {
        thenable = value !== null && (typeof value === "object" || typeof value === "function")
                && typeof value.then === "function";
    } catch (e) {
        settler.reject(e);
        return;
    }
    if (thenable) {
        Promise.resolve(value).then(function (v) { settler.resolve(v); },
                                    function (e) { settler.reject(e); });
    } else {
        settler.resolve(value);
    }
})
)JS";

    constexpr auto deferredSource = R"JS(
(function () {
    var d = {};
    d.promise = new Promise(function (resolve, reject) { d.resolve = resolve; d.reject = reject; });
    return d;
})
)JS";

    // An Error's `name` cannot simply be assigned in this engine; defining it works.
    constexpr auto namedErrorSource = R"JS(
(function (name, message) {
    var error = new Error(message);
    Object.defineProperty(error, "name", { value: name, writable: true, configurable: true });
    return error;
})
)JS";

    // The abort signal of a task, shaped as the web's AbortSignal: `aborted` and `reason` (read
    // only), `onabort`, add/removeEventListener("abort", listener) and throwIfAborted(). Listeners
    // are called once, `onabort` first, each with {type: "abort", target: signal}; what one throws
    // is reported as a warning and does not stop the others.
    constexpr auto abortControllerSource = R"JS(
(function () {
    var state = { aborted: false, reason: undefined };
    var listeners = [];
    var signal = { onabort: null };
    Object.defineProperty(signal, "aborted", { get: function () { return state.aborted; }, enumerable: true });
    Object.defineProperty(signal, "reason", { get: function () { return state.reason; }, enumerable: true });
    // A signal aborts once, so every listener is a `once` listener.
    signal.addEventListener = function (type, listener) {
        if (type === "abort" && typeof listener === "function" && listeners.indexOf(listener) < 0)
            listeners.push(listener);
    };
    signal.removeEventListener = function (type, listener) {
        var index = listeners.indexOf(listener);
        if (type === "abort" && index >= 0)
            listeners.splice(index, 1);
    };
    signal.throwIfAborted = function () {
        if (state.aborted)
            throw state.reason;
    };
    signal.toString = function () { return "[object AbortSignal]"; };
    var abort = function (reason) {
        if (state.aborted)
            return false;
        state.aborted = true;
        state.reason = reason;
        var event = { type: "abort", target: signal };
        var calls = typeof signal.onabort === "function" ? [signal.onabort] : [];
        calls = calls.concat(listeners);
        listeners = [];
        for (var i = 0; i < calls.length; ++i) {
            try {
                calls[i].call(signal, event);
            } catch (e) {
                console.warn("TaskPool: an abort listener threw: " + e);
            }
        }
        return true;
    };
    return { signal: signal, abort: abort };
})
)JS";

    constexpr auto helpersProperty = "_q_taskpool_helpers";

} // namespace

JsHelpers::JsHelpers(QJSEngine* engine) : QObject(engine)
{
    QJSEngine::setObjectOwnership(this, QJSEngine::CppOwnership);
    runner = engine->evaluate(QString::fromUtf8(runnerSource));
    deferred = engine->evaluate(QString::fromUtf8(deferredSource));
    namedError = engine->evaluate(QString::fromUtf8(namedErrorSource));
    if (namedError.isCallable()) {
        const QJSValue make = namedError;
        cancelledError = engine
                             ->evaluate(QStringLiteral("(function (make) { return function (message) { return "
                                                       "make(\"CancelledError\", message) } })"))
                             .call({ make });
    }
    abortController = engine->evaluate(QString::fromUtf8(abortControllerSource));
}

JsHelpers* JsHelpers::of(QJSEngine* engine)
{
    auto* helpers = engine->property(helpersProperty).value<JsHelpers*>();
    if (!helpers) {
        helpers = new JsHelpers(engine);
        if (!helpers->isComplete()) {
            // An interrupted engine evaluates nothing: try again next time rather than keep these.
            helpers->deleteLater();
            return helpers;
        }
        engine->setProperty(helpersProperty, QVariant::fromValue(helpers));
    }
    return helpers;
}

} // namespace TaskPool::detail
