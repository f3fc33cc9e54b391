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
    constexpr auto cancelledErrorSource = R"JS(
(function (message) {
    var error = new Error(message);
    Object.defineProperty(error, "name", { value: "CancelledError", writable: true, configurable: true });
    return error;
})
)JS";

    constexpr auto helpersProperty = "_q_taskpool_helpers";

} // namespace

JsHelpers::JsHelpers(QJSEngine* engine) : QObject(engine)
{
    QJSEngine::setObjectOwnership(this, QJSEngine::CppOwnership);
    runner = engine->evaluate(QString::fromUtf8(runnerSource));
    deferred = engine->evaluate(QString::fromUtf8(deferredSource));
    cancelledError = engine->evaluate(QString::fromUtf8(cancelledErrorSource));
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
