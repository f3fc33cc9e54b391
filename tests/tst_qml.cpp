// SPDX-License-Identifier: MIT
// The TaskPool QML module, driven through QQmlEngine: the module loads from the build's copy of
// the root qmldir, TaskPoolExecutor/TaskFuture behave in QML, and C++ futures reach QML.
#include "testutil.h"

#ifdef TASKPOOL_QML_IMPORT_DIR

#include <taskpool/qml.h>

#include <QFile>
#include <QPointer>
#include <QProcess>
#include <QPromise>
#include <QQmlComponent>
#include <QQmlContext>
#include <QQmlEngine>
#include <QQmlExpression>
#include <QRegularExpression>
#include <QSignalSpy>
#include <QTimer>

#include <memory>
#include <stdexcept>

using namespace TestUtil;
using TaskPool::TaskFuture;

namespace {

const QString importDir = QStringLiteral(TASKPOOL_QML_IMPORT_DIR);
const QString testDir = QStringLiteral(TASKPOOL_QML_TEST_DIR);

//! An engine whose import path points at <build>/qml, and one root object made from QML.
class Qml {
public:
    Qml() : engine(std::make_unique<QQmlEngine>()) { engine->addImportPath(importDir); }

    bool load(const QUrl& url)
    {
        QQmlComponent component(engine.get(), url);
        return create(component);
    }
    bool loadData(const QByteArray& source)
    {
        QQmlComponent component(engine.get());
        component.setData(source, QUrl(QStringLiteral("inline.qml")));
        return create(component);
    }
    bool loadHarness() { return load(QUrl::fromLocalFile(testDir + QStringLiteral("/Harness.qml"))); }

    //! Evaluates \a expression with the root object as scope; a JavaScript error lands in error.
    QVariant eval(const QString& expression)
    {
        QQmlExpression e(engine->contextForObject(root.get()), root.get(), expression);
        const QVariant value = e.evaluate();
        error = e.hasError() ? e.error().description() : QString();
        return value;
    }
    QString text() { return eval(QStringLiteral("text()")).toString(); }
    int status(const QString& future) { return eval(future + QStringLiteral(".status")).toInt(); }

    std::unique_ptr<QQmlEngine> engine;
    std::unique_ptr<QObject> root;
    QString error;

private:
    bool create(QQmlComponent& component)
    {
        root.reset(component.create());
        if (!root)
            qWarning() << component.errors();
        return root != nullptr;
    }
};

QCoro::Task<int> twice(int x)
{
    co_await TestUtil::sleep(1ms);
    co_return 2 * x;
}

//! A C++ backend as an application would write one: coroutine jobs handed to QML.
class Backend : public QObject {
    Q_OBJECT
public:
    TaskPool::TaskPoolExecutor pool { 2 };
    Gate gate;
    TaskPool::Future<int> lastFuture;

    // Reports progress 1 of 0..4, waits for the gate, then 4 of 4 and the result 7.
    Q_INVOKABLE TaskPool::TaskFuture* startWithProgress()
    {
        lastFuture = pool.submit([this](QPromise<int>& promise) -> QCoro::Task<void> {
            promise.setProgressRange(0, 4);
            promise.setProgressValue(1);
            co_await gate;
            promise.setProgressValue(4);
            promise.addResult(7);
        });
        return TaskPool::toTaskFuture(lastFuture, &pool);
    }
    Q_INVOKABLE TaskPool::TaskFuture* doubled(int x) { return TaskPool::toTaskFuture(pool.submit(twice, x), &pool); }
    Q_INVOKABLE TaskPool::TaskFuture* point()
    {
        return TaskPool::toTaskFuture(pool.submit([]() -> QCoro::Task<QPoint> { co_return QPoint(3, 4); }));
    }
    Q_INVOKABLE TaskPool::TaskFuture* failing()
    {
        return TaskPool::toTaskFuture(pool.submit([]() -> QCoro::Task<QString> {
            co_await TestUtil::sleep(1ms);
            throw std::runtime_error("the backend failed");
        }));
    }
    Q_INVOKABLE TaskPool::TaskFuture* waiting()
    {
        return TaskPool::toTaskFuture(pool.submit([this]() -> QCoro::Task<void> { co_await gate; }), &pool);
    }
    // A QFuture that does not come from a pool.
    QFutureInterface<QString> foreign;
    Q_INVOKABLE TaskPool::TaskFuture* foreignFuture()
    {
        foreign = QFutureInterface<QString>();
        return TaskPool::toTaskFuture(foreign.future());
    }
};

} // namespace

class tst_Qml : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void moduleLoadsFromRootQmldirCopy();
    void importThroughEnvironment();
    void bindingsFollowTasks();
    void promiseJobsRespectMaxWorkers();
    void valuesAndArguments();
    void failures();
    void cancellation();
    void shutdownFromQml();
    void thenCallbacks();
    void thenKeepsUnreferencedFutureAlive();
    void mapSubmitsEachItem();
    void progressFromCppJob();
    void cppFutureConversion();
    void badInput();
    void destroyedExecutor();
    void futureOutlivesExecutor();
    void engineDestroyedFirst();
    void settledFuturesAreCollected();
    void submitForwardsEachArgumentCount();
    void callsWithoutEngine();
    void interruptedEngineFailsTask();
    void settledAndResultlessFutures();

    // Cancellation reaching JavaScript tasks, and the scheduling controls (issues 12 and 13).
    void abortSignalOnCancel();
    void abortSignalShapeAndArguments();
    void abortSignalOnTimeout();
    void abortSignalOnShutdownContextAndDestruction();
    void cancelledBeforeItsFunctionRan();
    void controlPropertiesNotify();
    void pauseResumeClear();
    void priorityOrder();
    void rateLimitHoldsStarts();
    void keyLimits();
    void whenIdleAndPendingBelow();
    void badOptions();

    // Regressions (issues 11 and 14), each named after its case.
    void regression11_2_executorWithOtherChildren();
    void regression11_3_futureOfRunningTask();
    void regression11_3_queuedJsTaskAfterExecutorGone();
    void regression11_3_queuedCppTaskAfterExecutorGone();
    void regression14_10_idleAfterJsTaskFutures();
    void regression14_10_idleAfterCppTaskFutures();
};

void tst_Qml::moduleLoadsFromRootQmldirCopy()
{
    // The build copies the qmldir at the root of the repository next to the plugin.
    QFile root(testDir + QStringLiteral("/../../qmldir"));
    QFile copy(importDir + QStringLiteral("/TaskPool/qmldir"));
    QVERIFY(root.open(QIODevice::ReadOnly));
    QVERIFY(copy.open(QIODevice::ReadOnly));
    const QByteArray qmldir = root.readAll();
    QCOMPARE(copy.readAll(), qmldir);
    QVERIFY(qmldir.startsWith("module TaskPool\n"));
    // Every file it names is where the build put the module: the plugin and the type information
    // that qmltyperegistrar generated (what qmllint and qmlls read).
    QStringList named;
    for (const QByteArray& line : qmldir.split('\n')) {
        const QList<QByteArray> words = line.simplified().split(' ');
        if (words.size() >= 2 && words.at(words.size() - 2) == "plugin")
            named << QStringLiteral("lib%1.so").arg(QString::fromUtf8(words.last()));
        else if (words.size() == 2 && words.first() == "typeinfo")
            named << QString::fromUtf8(words.last());
    }
    QCOMPARE(named.size(), 2);
    for (const QString& file : std::as_const(named))
        QVERIFY2(QFile::exists(importDir + QStringLiteral("/TaskPool/") + file), qPrintable(file));
    QFile typeinfo(importDir + QStringLiteral("/TaskPool/") + named.last());
    QVERIFY(typeinfo.open(QIODevice::ReadOnly));
    const QByteArray types = typeinfo.readAll();
    QVERIFY(types.contains("exports: [\"TaskPool/TaskPoolExecutor 1.0\"]"));
    QVERIFY(types.contains("exports: [\"TaskPool/TaskFuture 1.0\"]"));

    // A program that links TaskPool::Qml (as this test does) has the module without an import
    // path: its types register when the library loads. Programs that do not link it load the
    // plugin through the import path (the qml_module_* tests run qmltestrunner for that).
    {
        QQmlEngine bare;
        QQmlComponent component(&bare);
        component.setData("import TaskPool\nTaskPoolExecutor { maxWorkers: 2 }", QUrl(QStringLiteral("bare.qml")));
        std::unique_ptr<QObject> object(component.create());
        QVERIFY2(object, qPrintable(component.errorString()));
        QCOMPARE(object->property("maxWorkers").toInt(), 2);
    }

    Qml qml;
    QVERIFY(qml.loadData("import TaskPool\nTaskPoolExecutor { maxWorkers: 3; taskNamePrefix: \"Root\" }"));
    auto* pool = qobject_cast<TaskPool::QmlTaskPoolExecutor*>(qml.root.get());
    QVERIFY(pool);
    QCOMPARE(pool->maxWorkers(), 3);
    QCOMPARE(pool->executor()->maxWorkers(), 3);
    QCOMPARE(pool->taskNamePrefix(), QStringLiteral("Root"));
    QCOMPARE(qml.eval(QStringLiteral("[TaskFuture.Pending, TaskFuture.Running, TaskFuture.Finished, "
                                     "TaskFuture.Failed, TaskFuture.Cancelled, TaskFuture.Canceled].join()"))
                 .toString(),
             QStringLiteral("0,1,2,3,4,4")); // Canceled: the former spelling, the same value
}

void tst_Qml::importThroughEnvironment()
{
    // What an application does with a custom prefix: QML_IMPORT_PATH. A fresh process (this test
    // in child mode), where nothing registered the module before; it links TaskPool::Qml, so it
    // finds the module with and without the import path.
    auto child = [](const QString& importPath) {
        QProcess process;
        QProcessEnvironment environment = QProcessEnvironment::systemEnvironment();
        environment.insert(QStringLiteral("TST_QML_IMPORT_CHILD"), QStringLiteral("1"));
        environment.remove(QStringLiteral("QML_IMPORT_PATH"));
        environment.remove(QStringLiteral("QML2_IMPORT_PATH"));
        if (!importPath.isEmpty())
            environment.insert(QStringLiteral("QML_IMPORT_PATH"), importPath);
        process.setProcessEnvironment(environment);
        process.start(QCoreApplication::applicationFilePath(), {});
        const bool ended = process.waitForFinished(60000);
        return std::make_pair(ended && process.exitStatus() == QProcess::NormalExit ? process.exitCode() : -1,
                              QString::fromLocal8Bit(process.readAllStandardError()));
    };
    const auto [found, foundLog] = child(importDir);
    QVERIFY2(found == 0, qPrintable(foundLog));
    const auto [linked, linkedLog] = child({});
    QVERIFY2(linked == 0, qPrintable(linkedLog));
}

void tst_Qml::bindingsFollowTasks()
{
    Qml qml;
    QVERIFY(qml.loadHarness());
    QCOMPARE(qml.eval(QStringLiteral("[active, pending, workers, shut].join()")).toString(),
             QStringLiteral("0,0,0,false"));

    qml.eval(QStringLiteral("root.a = pool.submit(later, 'a'); root.b = pool.submit(later, 'b'); "
                            "root.c = pool.submit(later, 'c')"));
    QVERIFY2(qml.error.isEmpty(), qPrintable(qml.error));
    // Functions run from the event loop, never inside submit().
    QCOMPARE(qml.text(), QString());
    QTRY_COMPARE(qml.text(), QStringLiteral("start a,start b"));
    QCOMPARE(qml.eval(QStringLiteral("[active, pending, workers].join()")).toString(), QStringLiteral("2,1,2"));
    QCOMPARE(qml.eval(QStringLiteral("pool.workerNames.slice().sort().join()")).toString(),
             QStringLiteral("Qml_0,Qml_1"));
    QCOMPARE(qml.status(QStringLiteral("a")), int(TaskFuture::Running));
    QCOMPARE(qml.status(QStringLiteral("c")), int(TaskFuture::Pending));

    QVERIFY(qml.eval(QStringLiteral("settle('a', true, 1)")).toBool());
    QTRY_COMPARE(qml.text(), QStringLiteral("start a,start b,start c"));
    QCOMPARE(qml.status(QStringLiteral("a")), int(TaskFuture::Finished));
    QCOMPARE(qml.eval(QStringLiteral("[active, pending, workers].join()")).toString(), QStringLiteral("2,0,2"));

    qml.eval(QStringLiteral("settle('b', true, 2); settle('c', true, 3)"));
    QTRY_COMPARE(qml.eval(QStringLiteral("active")).toInt(), 0);
    QTRY_COMPARE(qml.status(QStringLiteral("c")), int(TaskFuture::Finished));
    QCOMPARE(qml.eval(QStringLiteral("[a.result, b.result, c.result].join()")).toString(), QStringLiteral("1,2,3"));
    QCOMPARE(qml.eval(QStringLiteral("maxActive")).toInt(), 2);

    qml.eval(QStringLiteral("root.s = pool.shutdown()"));
    QVERIFY(qml.eval(QStringLiteral("shut")).toBool());
    QTRY_COMPARE(qml.eval(QStringLiteral("workers")).toInt(), 0);
    QTRY_COMPARE(qml.status(QStringLiteral("s")), int(TaskFuture::Finished));
}

void tst_Qml::promiseJobsRespectMaxWorkers()
{
    Qml qml;
    QVERIFY(qml.loadHarness());
    qml.eval(QStringLiteral("pool.maxWorkers = 3; root.fs = []; "
                            "for (var i = 0; i < 10; ++i) fs.push(pool.submit(later, 'j' + i))"));
    QVERIFY2(qml.error.isEmpty(), qPrintable(qml.error));
    // Settle the jobs one at a time, in an order unlike the start order; at each step exactly
    // min(3, left) are running, and the next job starts only once a Promise settled.
    const int order[] = { 1, 0, 2, 4, 3, 5, 8, 6, 7, 9 };
    int settled = 0;
    for (int j : order) {
        const QString name = QStringLiteral("'j%1'").arg(j);
        QTRY_VERIFY(qml.eval(QStringLiteral("has(%1)").arg(name)).toBool());
        const int left = 10 - settled;
        QTRY_COMPARE(qml.eval(QStringLiteral("running")).toInt(), std::min(3, left));
        QTRY_COMPARE(qml.eval(QStringLiteral("active")).toInt(), std::min(3, left));
        QTRY_COMPARE(qml.eval(QStringLiteral("pending")).toInt(), left - std::min(3, left));
        QCOMPARE(qml.eval(QStringLiteral("running")).toInt(), std::min(3, left));
        qml.eval(QStringLiteral("settle(%1, true, %2)").arg(name).arg(j * 10));
        ++settled;
    }
    QTRY_COMPARE(qml.eval(QStringLiteral("active")).toInt(), 0);
    QTRY_COMPARE(
        qml.eval(QStringLiteral("fs.every(function (f) { return f.status === TaskFuture.Finished })")).toBool(), true);
    QCOMPARE(qml.eval(QStringLiteral("fs.map(function (f) { return f.result }).join()")).toString(),
             QStringLiteral("0,10,20,30,40,50,60,70,80,90"));
    QCOMPARE(qml.eval(QStringLiteral("maxRunning")).toInt(), 3);
    QCOMPARE(qml.eval(QStringLiteral("maxActive")).toInt(), 3);
    // Started in submission order.
    QCOMPARE(qml.text(),
             QStringLiteral("start j0,start j1,start j2,start j3,start j4,start j5,start j6,start j7,"
                            "start j8,start j9"));
}

void tst_Qml::valuesAndArguments()
{
    Qml qml;
    QVERIFY(qml.loadHarness());
    qml.eval(QStringLiteral("root.o = {x: 1}; "
                            "root.f1 = pool.submit(function (a, b) { return a * b }, 6, 7); "
                            "root.f2 = pool.submit(function () { return root.o }); "
                            "root.f3 = pool.submit(function () { return arguments.length }, 1, 2, 3, 4, 5, 6, 7, 8); "
                            "root.f4 = pool.submit(function () {}); "
                            "root.f5 = pool.submit(function (p) { return p }, Promise.resolve('adopted')); "
                            "root.f6 = pool.submit(function () { return {then: function (ok) { ok('thenable') }} })"));
    QVERIFY2(qml.error.isEmpty(), qPrintable(qml.error));
    for (const char* f : { "f1", "f2", "f3", "f4", "f5", "f6" })
        QTRY_COMPARE(qml.status(QString::fromLatin1(f)), int(TaskFuture::Finished));
    QCOMPARE(qml.eval(QStringLiteral("f1.result")).toInt(), 42);
    QVERIFY(qml.eval(QStringLiteral("f2.result === root.o")).toBool()); // the same JS object
    QCOMPARE(qml.eval(QStringLiteral("f3.result")).toInt(), 8);
    QVERIFY(qml.eval(QStringLiteral("f4.result === undefined")).toBool());
    QCOMPARE(qml.eval(QStringLiteral("f5.result")).toString(), QStringLiteral("adopted"));
    QCOMPARE(qml.eval(QStringLiteral("f6.result")).toString(), QStringLiteral("thenable"));
    QCOMPARE(qml.eval(QStringLiteral("f1.progress")).toDouble(), 1.0);
    QCOMPARE(qml.eval(QStringLiteral("f1.done && f1.error === ''")).toBool(), true);
}

void tst_Qml::failures()
{
    Qml qml;
    QVERIFY(qml.loadHarness());
    qml.eval(
        QStringLiteral("root.events = []; "
                       "root.f1 = pool.submit(function () { throw new Error('boom') }); "
                       "f1.failed.connect(function (e) { events.push('failed ' + e) }); "
                       "f1.finished.connect(function () { events.push('finished ' + f1.status) }); "
                       "root.f2 = pool.submit(function () { return Promise.reject(new TypeError('bad type')) }); "
                       "root.f3 = pool.submit(function () { return Promise.reject('plain') }); "
                       "root.f4 = pool.submit(later, 'r'); "
                       "root.f5 = pool.submit(function () { return {then: function (ok, fail) { fail('custom') }} }); "
                       "root.f6 = pool.submit(function () { return {get then() { throw new RangeError('getter') }} }); "
                       "root.f7 = pool.submit(function () { return undefinedName + 1 })"));
    QVERIFY2(qml.error.isEmpty(), qPrintable(qml.error));
    QTRY_VERIFY(qml.eval(QStringLiteral("has('r')")).toBool());
    qml.eval(QStringLiteral("settle('r', false, new Error('rejected later'))"));
    for (const char* f : { "f1", "f2", "f3", "f4", "f5", "f6", "f7" })
        QTRY_COMPARE(qml.status(QString::fromLatin1(f)), int(TaskFuture::Failed));
    QCOMPARE(
        qml.eval(QStringLiteral("[f1.error, f2.error, f3.error, f4.error, f5.error, f6.error].join('|')")).toString(),
        QStringLiteral("boom|bad type|plain|rejected later|custom|getter"));
    QVERIFY(qml.eval(QStringLiteral("f7.error")).toString().contains(QStringLiteral("undefinedName")));
    QVERIFY(qml.eval(QStringLiteral("f1.result === undefined && f1.done")).toBool());
    QCOMPARE(qml.eval(QStringLiteral("events.join()")).toString(),
             QStringLiteral("failed boom,finished %1").arg(int(TaskFuture::Failed)));

    // The executor is unharmed: its workers go on.
    qml.eval(QStringLiteral("root.ok = pool.submit(function () { return 'fine' })"));
    QTRY_COMPARE(qml.status(QStringLiteral("ok")), int(TaskFuture::Finished));
    QCOMPARE(qml.eval(QStringLiteral("ok.result")).toString(), QStringLiteral("fine"));
    QCOMPARE(qml.eval(QStringLiteral("active")).toInt(), 0);
}

void tst_Qml::cancellation()
{
    Qml qml;
    QVERIFY(qml.loadHarness());
    qml.eval(QStringLiteral("pool.maxWorkers = 1; root.events = []; "
                            "root.a = pool.submit(later, 'a'); root.b = pool.submit(later, 'b'); "
                            "b.cancelled.connect(function () { events.push('b cancelled') }); "
                            "b.canceled.connect(function () { events.push('b canceled') }); "
                            "b.finished.connect(function () { events.push('b finished') })"));
    QTRY_VERIFY(qml.eval(QStringLiteral("has('a')")).toBool());
    QCOMPARE(qml.eval(QStringLiteral("pending")).toInt(), 1);

    // A queued task: cancelled at once, never starts.
    QVERIFY(qml.eval(QStringLiteral("b.cancel()")).toBool());
    QCOMPARE(qml.status(QStringLiteral("b")), int(TaskFuture::Cancelled));
    QCOMPARE(qml.eval(QStringLiteral("events.join()")).toString(), QStringLiteral("b cancelled,b canceled,b finished"));
    QCOMPARE(qml.eval(QStringLiteral("pool.pendingCount")).toInt(), 0);
    QVERIFY(!qml.eval(QStringLiteral("b.cancel()")).toBool()); // already settled

    // A running task: cancelled at once, but its slot stays taken until its Promise settles.
    QVERIFY(qml.eval(QStringLiteral("a.cancel()")).toBool());
    QCOMPARE(qml.status(QStringLiteral("a")), int(TaskFuture::Canceled));
    qml.eval(QStringLiteral("root.c = pool.submit(later, 'c')"));
    QCOMPARE(qml.eval(QStringLiteral("[active, pending].join()")).toString(), QStringLiteral("1,1"));
    qml.eval(QStringLiteral("settle('a', true, 'late')"));
    QTRY_VERIFY(qml.eval(QStringLiteral("has('c')")).toBool());
    QCOMPARE(qml.status(QStringLiteral("a")), int(TaskFuture::Canceled));
    QVERIFY(qml.eval(QStringLiteral("a.result === undefined && a.error === ''")).toBool());
    QCOMPARE(qml.text(), QStringLiteral("start a,start c")); // b never started

    qml.eval(QStringLiteral("settle('c', true, 3)"));
    QTRY_COMPARE(qml.status(QStringLiteral("c")), int(TaskFuture::Finished));
    QVERIFY(!qml.eval(QStringLiteral("c.cancel()")).toBool());
    QCOMPARE(qml.status(QStringLiteral("c")), int(TaskFuture::Finished));
}

void tst_Qml::shutdownFromQml()
{
    Qml qml;
    QVERIFY(qml.loadHarness());
    qml.eval(QStringLiteral("pool.maxWorkers = 1; root.a = pool.submit(later, 'a'); root.b = pool.submit(later, 'b')"));
    QVERIFY2(qml.error.isEmpty(), qPrintable(qml.error));
    QTRY_VERIFY(qml.eval(QStringLiteral("has('a')")).toBool());
    qml.eval(QStringLiteral("root.s = pool.shutdown({cancelFutures: true})"));
    QVERIFY2(qml.error.isEmpty(), qPrintable(qml.error));
    QVERIFY(qml.eval(QStringLiteral("shut")).toBool());
    QCOMPARE(qml.eval(QStringLiteral("pool.pendingCount")).toInt(), 0); // cancelled at once
    QTRY_COMPARE(qml.status(QStringLiteral("b")), int(TaskFuture::Canceled)); // seen from the event loop
    QCOMPARE(qml.status(QStringLiteral("a")), int(TaskFuture::Running)); // running work is not cancelled
    QCOMPARE(qml.status(QStringLiteral("s")), int(TaskFuture::Running)); // waits for 'a'
    qml.eval(QStringLiteral("root.s2 = pool.shutdown({wait: false})")); // idempotent; does not wait
    QCOMPARE(qml.status(QStringLiteral("s2")), int(TaskFuture::Finished));
    qml.eval(QStringLiteral("settle('a', true, 'done')"));
    QTRY_COMPARE(qml.status(QStringLiteral("s")), int(TaskFuture::Finished));
    QCOMPARE(qml.status(QStringLiteral("a")), int(TaskFuture::Finished));
    QCOMPARE(qml.eval(QStringLiteral("workers")).toInt(), 0);
    QCOMPARE(qml.text(), QStringLiteral("start a"));
}

void tst_Qml::thenCallbacks()
{
    Qml qml;
    QVERIFY(qml.loadHarness());
    qml.eval(QStringLiteral("root.events = []; "
                            "root.ok = pool.submit(later, 'ok'); "
                            "ok.then(function (r) { events.push('ok ' + r); return r + 1 })"
                            "  .then(function (r) { events.push('chained ' + r) }); "
                            "root.bad = pool.submit(function () { throw new TypeError('nope') }); "
                            "bad.then(function () { events.push('wrong') }, function (e) { events.push('bad ' + e.name "
                            "+ ' ' + e.message) }); "
                            "root.gone = pool.submit(later, 'gone'); "
                            "gone.then(null, function (e) { events.push('gone ' + e.name) }); "
                            "gone.cancel(); "
                            "root.adopt = pool.submit(function () { return root.ok })"));
    QVERIFY2(qml.error.isEmpty(), qPrintable(qml.error));
    // Callbacks never run synchronously, not even for an already settled future.
    QCOMPARE(qml.eval(QStringLiteral("events.length")).toInt(), 0);
    QTRY_VERIFY(qml.eval(QStringLiteral("has('ok')")).toBool());
    QTRY_COMPARE(qml.eval(QStringLiteral("events.slice().sort().join()")).toString(),
                 QStringLiteral("bad TypeError nope,gone CancelledError"));
    qml.eval(QStringLiteral("root.events = []"));
    qml.eval(QStringLiteral("settle('ok', true, 41)"));
    QTRY_COMPARE(qml.eval(QStringLiteral("events.join()")).toString(), QStringLiteral("ok 41,chained 42"));
    // A TaskFuture is a thenable: a job returning one adopts its outcome.
    QTRY_COMPARE(qml.status(QStringLiteral("adopt")), int(TaskFuture::Finished));
    QCOMPARE(qml.eval(QStringLiteral("adopt.result")).toInt(), 41);

    // then() on a settled future still calls back, later.
    qml.eval(QStringLiteral("root.events = []; ok.then(function (r) { events.push('again ' + r) }); "
                            "bad.then(null, function (e) { events.push('again ' + e.message) })"));
    QCOMPARE(qml.eval(QStringLiteral("events.length")).toInt(), 0);
    QTRY_COMPARE(qml.eval(QStringLiteral("events.join()")).toString(), QStringLiteral("again 41,again nope"));

    // A C++ failure reaches onError as an Error with the message.
    Backend backend;
    qml.engine->rootContext()->setContextProperty(QStringLiteral("backend"), &backend);
    qml.eval(QStringLiteral("root.events = []; backend.failing().then(null, function (e) { "
                            "events.push(e instanceof Error, e.message) })"));
    QTRY_COMPARE(qml.eval(QStringLiteral("events.join()")).toString(), QStringLiteral("true,the backend failed"));
}

void tst_Qml::thenKeepsUnreferencedFutureAlive()
{
    Qml qml;
    QVERIFY(qml.loadHarness());
    // Neither future is stored anywhere: then() and a signal connection must keep them alive.
    qml.eval(QStringLiteral("root.events = []; "
                            "pool.submit(later, 'x').then(function (r) { events.push('then ' + r) }); "
                            "pool.submit(later, 'y').finished.connect(function () { events.push('finished y') })"));
    QVERIFY2(qml.error.isEmpty(), qPrintable(qml.error));
    QTRY_VERIFY(qml.eval(QStringLiteral("has('x') && has('y')")).toBool());
    for (int i = 0; i < 3; ++i) {
        qml.engine->collectGarbage();
        QCoreApplication::sendPostedEvents(nullptr, QEvent::DeferredDelete);
        QCoreApplication::processEvents();
    }
    qml.eval(QStringLiteral("settle('x', true, 'x'); settle('y', true, 'y')"));
    QTRY_COMPARE(qml.eval(QStringLiteral("events.slice().sort().join()")).toString(),
                 QStringLiteral("finished y,then x"));
}

void tst_Qml::mapSubmitsEachItem()
{
    Qml qml;
    QVERIFY(qml.loadHarness());
    qml.eval(QStringLiteral("root.fs = pool.map(function (x) { return x * x }, [1, 2, 3, 4])"));
    QVERIFY2(qml.error.isEmpty(), qPrintable(qml.error));
    QCOMPARE(qml.eval(QStringLiteral("fs.length")).toInt(), 4);
    QTRY_VERIFY(qml.eval(QStringLiteral("fs.every(function (f) { return f.done })")).toBool());
    QCOMPARE(qml.eval(QStringLiteral("fs.map(function (f) { return f.result }).join()")).toString(),
             QStringLiteral("1,4,9,16"));
    QCOMPARE(qml.eval(QStringLiteral("pool.map(function (x) { return x }, []).length")).toInt(), 0);
}

void tst_Qml::progressFromCppJob()
{
    Backend backend;
    Qml qml;
    qml.engine->rootContext()->setContextProperty(QStringLiteral("backend"), &backend);
    QVERIFY(qml.loadData(R"(
        import QtQml
        import TaskPool
        QtObject {
            property TaskFuture job: null
            property real progress: job ? job.progress : -1
            property int status: job ? job.status : -1
            property var progressSeen: []
            onProgressChanged: progressSeen.push(progress)
            function start() { job = backend.startWithProgress(); return true }
        }
    )"));
    QVERIFY(qml.eval(QStringLiteral("start()")).toBool());
    QTRY_COMPARE(qml.eval(QStringLiteral("progress")).toDouble(), 0.25);
    QCOMPARE(qml.eval(QStringLiteral("status")).toInt(), int(TaskFuture::Running));
    QCOMPARE(
        qml.eval(QStringLiteral("[job.progressMinimum, job.progressValue, job.progressMaximum].join()")).toString(),
        QStringLiteral("0,1,4"));
    backend.gate.open();
    QTRY_COMPARE(qml.eval(QStringLiteral("status")).toInt(), int(TaskFuture::Finished));
    QCOMPARE(qml.eval(QStringLiteral("progress")).toDouble(), 1.0);
    QCOMPARE(qml.eval(QStringLiteral("job.progressValue")).toInt(), 4);
    QCOMPARE(qml.eval(QStringLiteral("job.result")).toInt(), 7);
    QCOMPARE(qml.eval(QStringLiteral("progressSeen.join()")).toString(), QStringLiteral("-1,0,0.25,1"));
}

void tst_Qml::cppFutureConversion()
{
    Backend backend;
    Qml qml;
    qml.engine->rootContext()->setContextProperty(QStringLiteral("backend"), &backend);
    QVERIFY(qml.loadHarness());
    qml.eval(QStringLiteral("root.d = backend.doubled(21); root.p = backend.point(); root.f = backend.failing(); "
                            "root.w = backend.waiting(); root.x = backend.foreignFuture()"));
    QVERIFY2(qml.error.isEmpty(), qPrintable(qml.error));
    auto* d = qvariant_cast<TaskFuture*>(qml.eval(QStringLiteral("d")));
    QVERIFY(d);
    QCOMPARE(QJSEngine::objectOwnership(d), QJSEngine::JavaScriptOwnership);

    QTRY_COMPARE(qml.status(QStringLiteral("d")), int(TaskFuture::Finished));
    QCOMPARE(qml.eval(QStringLiteral("d.result")).toInt(), 42);
    QTRY_COMPARE(qml.status(QStringLiteral("p")), int(TaskFuture::Finished));
    QCOMPARE(qml.eval(QStringLiteral("p.result.x + ',' + p.result.y")).toString(), QStringLiteral("3,4"));
    QTRY_COMPARE(qml.status(QStringLiteral("f")), int(TaskFuture::Failed));
    QCOMPARE(qml.eval(QStringLiteral("f.error")).toString(), QStringLiteral("the backend failed"));

    // With its executor, a queued C++ task is Pending until a worker starts it.
    qml.eval(QStringLiteral("root.a = backend.waiting(); root.b = backend.waiting()"));
    QTRY_COMPARE(qml.status(QStringLiteral("w")), int(TaskFuture::Running));
    QTRY_COMPARE(qml.status(QStringLiteral("a")), int(TaskFuture::Running));
    QCOMPARE(qml.status(QStringLiteral("b")), int(TaskFuture::Pending));
    QCOMPARE(backend.pool.pendingCount(), 1);
    // A running C++ task cancelled from QML: Canceled at once; the coroutine is left to end.
    QVERIFY(qml.eval(QStringLiteral("w.cancel()")).toBool());
    QCOMPARE(qml.status(QStringLiteral("w")), int(TaskFuture::Canceled));
    QCOMPARE(backend.pool.activeCount(), 2);
    QCOMPARE(qml.status(QStringLiteral("b")), int(TaskFuture::Pending)); // w's slot is still taken
    backend.gate.open();
    QTRY_COMPARE(qml.status(QStringLiteral("b")), int(TaskFuture::Finished));
    QTRY_COMPARE(backend.pool.activeCount(), 0);

    // A foreign QFuture: Pending until started, then its result; cancel() goes through QFuture.
    QCOMPARE(qml.status(QStringLiteral("x")), int(TaskFuture::Pending));
    backend.foreign.reportStarted();
    QTRY_COMPARE(qml.status(QStringLiteral("x")), int(TaskFuture::Running));
    backend.foreign.reportResult(QStringLiteral("from outside"));
    backend.foreign.reportFinished();
    QTRY_COMPARE(qml.status(QStringLiteral("x")), int(TaskFuture::Finished));
    QCOMPARE(qml.eval(QStringLiteral("x.result")).toString(), QStringLiteral("from outside"));
    qml.eval(QStringLiteral("root.y = backend.foreignFuture()"));
    backend.foreign.reportStarted();
    QVERIFY(qml.eval(QStringLiteral("y.cancel()")).toBool());
    QCOMPARE(qml.status(QStringLiteral("y")), int(TaskFuture::Canceled));
    QVERIFY(backend.foreign.isCanceled());
    backend.foreign.reportFinished();

    // A future converted after it settled starts out settled.
    auto settled = backend.pool.submit([] { return 5; });
    QTRY_VERIFY(settled.isFinished());
    std::unique_ptr<TaskFuture> late(new TaskFuture(settled));
    QCOMPARE(late->status(), TaskFuture::Finished);
    QCOMPARE(late->result().toInt(), 5);
    QVERIFY(!late->cancel());
}

void tst_Qml::badInput()
{
    Qml qml;
    QVERIFY(qml.loadHarness());
    const struct {
        const char* call;
        const char* message;
    } cases[] = {
        { "pool.submit()", "TypeError: TaskPoolExecutor.submit: a function to run is required" },
        { "pool.submit(42)",
          "TypeError: TaskPoolExecutor.submit: the first argument must be a function, got the value 42" },
        { "pool.submit('text', 1)",
          "TypeError: TaskPoolExecutor.submit: the first argument must be a function, got the string \"text\"" },
        { "pool.submit(null)", "TypeError: TaskPoolExecutor.submit: the first argument must be a function, got null" },
        { "pool.submit(undefined, 1, 2)",
          "TypeError: TaskPoolExecutor.submit: the first argument must be a function, got undefined" },
        { "pool.submit([1, 2])",
          "TypeError: TaskPoolExecutor.submit: the first argument must be a function, got an array" },
        { "pool.submit({})",
          "TypeError: TaskPoolExecutor.submit: the first argument must be a function, got an object" },
        { "pool.map(1, [])",
          "TypeError: TaskPoolExecutor.map: the first argument must be a function, got the value 1" },
        { "pool.map(function () {}, 5)",
          "TypeError: TaskPoolExecutor.map: the second argument must be an array, got the value 5" },
        { "pool.shutdown('now')",
          "TypeError: TaskPoolExecutor.shutdown: options must be an object like {wait: true, cancelFutures: false}, "
          "got the string \"now\"" },
    };
    for (const auto& c : cases) {
        const QVariant value = qml.eval(QString::fromLatin1(c.call));
        QVERIFY2(qml.error.endsWith(QString::fromUtf8(c.message)),
                 qPrintable(c.call + (QStringLiteral(": ") + qml.error)));
        QVERIFY(!value.isValid() || value.isNull() || value.value<QObject*>() == nullptr);
    }
    // Nothing was queued and the executor is unharmed.
    QCOMPARE(qml.eval(QStringLiteral("[active, pending, shut].join()")).toString(), QStringLiteral("0,0,false"));

    // maxWorkers <= 0 is refused with a warning; the bound stays.
    QTest::ignoreMessage(QtWarningMsg, QRegularExpression(QStringLiteral("maxWorkers must be greater than 0")));
    qml.eval(QStringLiteral("pool.maxWorkers = 0"));
    QCOMPARE(qml.eval(QStringLiteral("pool.maxWorkers")).toInt(), 2);

    qml.eval(QStringLiteral("root.f = pool.submit(function (a) { return a }, 'still works')"));
    QTRY_COMPARE(qml.status(QStringLiteral("f")), int(TaskFuture::Finished));
    QCOMPARE(qml.eval(QStringLiteral("f.result")).toString(), QStringLiteral("still works"));

    // After shutdown: a JavaScript error, nothing queued.
    qml.eval(QStringLiteral("pool.shutdown()"));
    qml.eval(QStringLiteral("pool.submit(function () { log.push('ran') })"));
    QVERIFY2(qml.error.endsWith(
                 QStringLiteral("Error: TaskPoolExecutor.submit: cannot schedule new futures after shutdown")),
             qPrintable(qml.error));
    qml.eval(QStringLiteral("pool.map(function () { log.push('ran') }, [1])"));
    QVERIFY2(
        qml.error.endsWith(QStringLiteral("Error: TaskPoolExecutor.map: cannot schedule new futures after shutdown")),
        qPrintable(qml.error));
    QCOMPARE(qml.eval(QStringLiteral("pending")).toInt(), 0);
    qml.eval(QStringLiteral("root.s = pool.shutdown()")); // idempotent
    QTRY_COMPARE(qml.status(QStringLiteral("s")), int(TaskFuture::Finished));
    QCOMPARE(qml.text(), QString());

    // then() called from C++ (no calling engine) is harmless.
    auto* f = qvariant_cast<TaskFuture*>(qml.eval(QStringLiteral("f")));
    QVERIFY(f);
    TaskFuture detached(QFuture<int> {});
    QVERIFY(detached.then().isUndefined());
}

void tst_Qml::destroyedExecutor()
{
    Qml qml;
    QVERIFY(qml.loadHarness());
    qml.eval(QStringLiteral("root.dyn = Qt.createQmlObject('import TaskPool; TaskPoolExecutor { maxWorkers: 1 }', "
                            "root, 'dynamic'); root.f = dyn.submit(later, 'd')"));
    QVERIFY2(qml.error.isEmpty(), qPrintable(qml.error));
    QTRY_VERIFY(qml.eval(QStringLiteral("has('d')")).toBool()); // running (a queued task would be cancelled)
    qml.eval(QStringLiteral("dyn.destroy()"));
    QTRY_VERIFY(qml.eval(QStringLiteral("dyn === null")).toBool()); // the object is gone
    // Calling it now is a JavaScript error, and runs nothing.
    qml.eval(QStringLiteral("dyn.submit(function () { log.push('ran') })"));
    QVERIFY2(qml.error.contains(QStringLiteral("TypeError: Cannot call method 'submit' of null")),
             qPrintable(qml.error));
    // The running task takes no abort signal: it goes on and finishes.
    qml.eval(QStringLiteral("settle('d', true, 'after')"));
    QTRY_COMPARE(qml.status(QStringLiteral("f")), int(TaskFuture::Finished));
    QCOMPARE(qml.eval(QStringLiteral("f.result")).toString(), QStringLiteral("after"));
    QCOMPARE(qml.text(), QStringLiteral("start d"));
}

void tst_Qml::futureOutlivesExecutor()
{
    Qml qml;
    QVERIFY(qml.loadHarness());
    auto* pool = qvariant_cast<TaskPool::QmlTaskPoolExecutor*>(qml.eval(QStringLiteral("pool")));
    QVERIFY(pool);
    qml.eval(QStringLiteral("pool.maxWorkers = 1; root.a = pool.submit(later, 'a'); "
                            "root.b = pool.submit(function (x) { return x + 1 }, 1)"));
    QTRY_VERIFY(qml.eval(QStringLiteral("has('a')")).toBool());
    delete pool; // the QML executor goes away first: its queued task is cancelled, 'a' is asked to stop
    QVERIFY(qml.eval(QStringLiteral("pool === null")).toBool());
    QCOMPARE(qml.status(QStringLiteral("a")), int(TaskFuture::Running));
    QCOMPARE(qml.status(QStringLiteral("b")), int(TaskFuture::Cancelled));
    // 'a' takes no abort signal and goes on; its TaskFuture still follows it.
    qml.eval(QStringLiteral("settle('a', true, 'a')"));
    QTRY_COMPARE(qml.status(QStringLiteral("a")), int(TaskFuture::Finished));
    QCOMPARE(qml.eval(QStringLiteral("[a.status, a.result, b.result].join()")).toString(),
             QStringLiteral("%1,a,").arg(int(TaskFuture::Finished)));
    QCOMPARE(qml.text(), QStringLiteral("start a"));
}

void tst_Qml::engineDestroyedFirst()
{
    // A C++-owned QML executor that outlives its engine: queued JavaScript tasks end Canceled
    // without calling into the dead engine, and a running one's pending Promise releases its slot.
    TaskPool::QmlTaskPoolExecutor pool;
    pool.setMaxWorkers(1);
    int canceled = 0, failed = 0, finished = 0;
    connect(pool.executor(), &TaskPool::TaskPoolExecutor::taskCanceled, this, [&] { ++canceled; });
    connect(pool.executor(), &TaskPool::TaskPoolExecutor::taskFailed, this, [&] { ++failed; });
    connect(pool.executor(), &TaskPool::TaskPoolExecutor::taskFinished, this, [&] { ++finished; });
    QPointer<TaskFuture> running, queued, thenned;
    {
        Qml qml;
        qml.engine->rootContext()->setContextProperty(QStringLiteral("cpool"), &pool);
        QVERIFY(qml.loadHarness());
        qml.eval(QStringLiteral("root.a = cpool.submit(later, 'a'); root.b = cpool.submit(later, 'b'); "
                                "root.b.then(function () { log.push('never') })"));
        QVERIFY2(qml.error.isEmpty(), qPrintable(qml.error));
        QTRY_VERIFY(qml.eval(QStringLiteral("has('a')")).toBool());
        running = qvariant_cast<TaskFuture*>(qml.eval(QStringLiteral("a")));
        queued = qvariant_cast<TaskFuture*>(qml.eval(QStringLiteral("b")));
        QVERIFY(running && queued);
        QCOMPARE(pool.activeCount(), 1);
        QCOMPARE(pool.pendingCount(), 1);
    }
    // The engine deleted the futures it owned, even the one kept alive for then().
    QVERIFY(running.isNull());
    QVERIFY(queued.isNull());
    QTRY_COMPARE(pool.activeCount(), 0);
    QTRY_COMPARE(canceled, 2);
    QCOMPARE(failed, 0);
    QCOMPARE(finished, 0);
    QCOMPARE(pool.pendingCount(), 0);

    // The executor is unharmed and serves a new engine.
    Qml again;
    again.engine->rootContext()->setContextProperty(QStringLiteral("cpool"), &pool);
    QVERIFY(again.loadHarness());
    again.eval(QStringLiteral("root.c = cpool.submit(function () { return 'c' })"));
    QTRY_COMPARE(again.status(QStringLiteral("c")), int(TaskFuture::Finished));
    QCOMPARE(finished, 1);
}

void tst_Qml::settledFuturesAreCollected()
{
    Qml qml;
    QVERIFY(qml.loadHarness());
    qml.eval(QStringLiteral("root.f = pool.submit(function () { return 1 })"));
    QTRY_COMPARE(qml.status(QStringLiteral("f")), int(TaskFuture::Finished));
    QPointer<TaskFuture> f = qvariant_cast<TaskFuture*>(qml.eval(QStringLiteral("f")));
    QVERIFY(f);
    qml.engine->collectGarbage();
    QCoreApplication::sendPostedEvents(nullptr, QEvent::DeferredDelete);
    QVERIFY(f); // still referenced by root.f
    qml.eval(QStringLiteral("root.f = null"));
    QTRY_VERIFY_WITH_TIMEOUT(
        [&] {
            qml.engine->collectGarbage();
            QCoreApplication::sendPostedEvents(nullptr, QEvent::DeferredDelete);
            return f.isNull();
        }(),
        5000);
}

void tst_Qml::submitForwardsEachArgumentCount()
{
    Qml qml;
    QVERIFY(qml.loadHarness());
    // submit() has one overload per argument count: each must pass all its arguments, in order.
    qml.eval(
        QStringLiteral("root.fs = []; var join = function () { return Array.prototype.slice.call(arguments).join() }; "
                       "fs.push(pool.submit(join, 1)); fs.push(pool.submit(join, 1, 2)); "
                       "fs.push(pool.submit(join, 1, 2, 3)); fs.push(pool.submit(join, 1, 2, 3, 4)); "
                       "fs.push(pool.submit(join, 1, 2, 3, 4, 5)); fs.push(pool.submit(join, 1, 2, 3, 4, 5, 6)); "
                       "fs.push(pool.submit(join, 1, 2, 3, 4, 5, 6, 7)); "
                       "fs.push(pool.submit(join, 1, 2, 3, 4, 5, 6, 7, 8))"));
    QVERIFY2(qml.error.isEmpty(), qPrintable(qml.error));
    QTRY_VERIFY(qml.eval(QStringLiteral("fs.every(function (f) { return f.status === 2 })")).toBool());
    QCOMPARE(qml.eval(QStringLiteral("fs.map(function (f) { return f.result }).join('|')")).toString(),
             QStringLiteral("1|1,2|1,2,3|1,2,3,4|1,2,3,4,5|1,2,3,4,5,6|1,2,3,4,5,6,7|1,2,3,4,5,6,7,8"));
}

void tst_Qml::callsWithoutEngine()
{
    // Called from C++ on an executor no engine knows: nothing to run the function in, so nothing
    // is queued and nothing is returned.
    QJSEngine other;
    const QJSValue fn = other.evaluate(QStringLiteral("(function (x) { return x })"));
    QVERIFY(fn.isCallable());
    TaskPool::QmlTaskPoolExecutor pool;
    QCOMPARE(pool.submit(fn, QJSValue(1)), nullptr);
    QVERIFY(pool.map(fn, other.newArray(2)).isUndefined());
    QCOMPARE(pool.pendingCount(), 0);
    QCOMPARE(pool.activeCount(), 0);
    QCOMPARE(pool.workerCount(), 0);
}

void tst_Qml::interruptedEngineFailsTask()
{
    // Not the harness: its bindings on the executor's counts would be evaluated while the engine
    // is interrupted (the failing task changes the counts), and an interrupted engine evaluates
    // every binding to undefined ("Unable to assign [undefined] to int"). Here nothing but the
    // task meets the interruption.
    QTest::failOnWarning(QRegularExpression(QStringLiteral("Unable to assign")));
    Qml qml;
    QVERIFY(qml.loadData("import QtQml\nimport TaskPool\n"
                         "QtObject { id: root; property TaskPoolExecutor pool: TaskPoolExecutor { maxWorkers: 2 }\n"
                         "           property var events; property var f; property var ok }\n"));
    // The engine's very first task meets the interruption: the per-engine helpers cannot be made
    // then, and must not be kept broken for the tasks after it.
    qml.eval(QStringLiteral("root.events = []; root.f = pool.submit(function () { events.push('ran'); return 1 })"));
    QVERIFY2(qml.error.isEmpty(), qPrintable(qml.error));
    auto* f = qvariant_cast<TaskFuture*>(qml.eval(QStringLiteral("f")));
    QVERIFY(f);
    // The task runs from a later turn of the event loop: by then the engine refuses to run it.
    qml.engine->setInterrupted(true);
    QTRY_COMPARE(f->status(), TaskFuture::Failed);
    QVERIFY2(f->error().contains(QStringLiteral("interrupted")), qPrintable(f->error()));
    QVERIFY(!f->result().isValid());
    qml.engine->setInterrupted(false);
    QCOMPARE(qml.eval(QStringLiteral("events.length")).toInt(), 0); // the function never ran
    // The executor is unharmed.
    qml.eval(QStringLiteral("root.ok = pool.submit(function () { return 'fine' })"));
    QTRY_COMPARE(qml.status(QStringLiteral("ok")), int(TaskFuture::Finished));
    QCOMPARE(qml.eval(QStringLiteral("ok.result")).toString(), QStringLiteral("fine"));
}

void tst_Qml::settledAndResultlessFutures()
{
    // A pool future that settled before the conversion, with its executor: Finished from the
    // start (not Pending, waiting for a start that already happened).
    TaskPool::TaskPoolExecutor pool(1);
    auto settled = pool.submit([] { return 5; });
    QTRY_VERIFY(settled.isFinished());
    {
        TaskFuture late(settled, &pool);
        QCOMPARE(late.status(), TaskFuture::Finished);
        QCOMPARE(late.result().toInt(), 5);
        QVERIFY(late.isDone());
    }
    // The executor's later tasks are not confused by it.
    auto next = pool.submit([] { return 6; });
    TaskFuture tracked(next, &pool);
    QTRY_COMPARE(tracked.status(), TaskFuture::Finished);
    QCOMPARE(tracked.result().toInt(), 6);

    // A QFuture<int> that finished without reporting a result is a failure, not a result.
    QFutureInterface<int> empty;
    empty.reportStarted();
    TaskFuture resultless(empty.future());
    QCOMPARE(resultless.status(), TaskFuture::Running);
    empty.reportFinished();
    QTRY_COMPARE(resultless.status(), TaskFuture::Failed);
    QVERIFY(!resultless.result().isValid());
    QCOMPARE(resultless.error(), QStringLiteral("the future finished without a result"));
}

void tst_Qml::abortSignalOnCancel()
{
    Qml qml;
    QVERIFY(qml.loadHarness());
    qml.eval(QStringLiteral("pool.maxWorkers = 1; root.events = []; root.a = pool.submit(abortable, 'a'); "
                            "root.b = pool.submit(later, 'b')"));
    QVERIFY2(qml.error.isEmpty(), qPrintable(qml.error));
    QTRY_VERIFY(qml.eval(QStringLiteral("has('a')")).toBool());
    QVERIFY(
        qml.eval(QStringLiteral("abortSignals.a.aborted === false && abortSignals.a.reason === undefined")).toBool());
    qml.eval(QStringLiteral("abortSignals.a.addEventListener('abort', function (e) { events.push('listener ' + "
                            "e.type) }); a.cancel()"));
    QVERIFY2(qml.error.isEmpty(), qPrintable(qml.error));
    QCOMPARE(qml.status(QStringLiteral("a")), int(TaskFuture::Cancelled)); // settled at once
    // The signal is set from the event loop, right after: onabort first, then the listeners.
    QCOMPARE(qml.text(), QStringLiteral("start a"));
    QTRY_VERIFY2(qml.text().startsWith(QStringLiteral("start a,abort a CancelledError")), qPrintable(qml.text()));
    QCOMPARE(qml.eval(QStringLiteral("events.join()")).toString(), QStringLiteral("listener abort"));
    QVERIFY(qml.eval(QStringLiteral("abortSignals.a.aborted")).toBool());
    QCOMPARE(qml.eval(QStringLiteral("abortSignals.a.reason.name")).toString(), QStringLiteral("CancelledError"));
    // The task rejected with the reason: its slot frees and the next task starts; it stays Cancelled.
    QTRY_VERIFY(qml.eval(QStringLiteral("has('b')")).toBool());
    QCOMPARE(qml.status(QStringLiteral("a")), int(TaskFuture::Cancelled));
    QCOMPARE(qml.eval(QStringLiteral("a.error")).toString(), QString());
    // Once: neither a second cancel nor the rest of the run calls it again.
    QVERIFY(!qml.eval(QStringLiteral("a.cancel()")).toBool());
    qml.eval(QStringLiteral("settle('b', true, 2)"));
    QTRY_COMPARE(qml.status(QStringLiteral("b")), int(TaskFuture::Finished));
    QCOMPARE(qml.text(), QStringLiteral("start a,abort a CancelledError,start b"));
    QCOMPARE(qml.eval(QStringLiteral("events.join()")).toString(), QStringLiteral("listener abort"));

    // A task that ended is not aborted afterwards: cancel() has nothing left to cancel.
    qml.eval(QStringLiteral("root.c = pool.submit(abortable, 'c')"));
    QTRY_VERIFY(qml.eval(QStringLiteral("has('c')")).toBool());
    qml.eval(QStringLiteral("settle('c', true, 3)"));
    QTRY_COMPARE(qml.status(QStringLiteral("c")), int(TaskFuture::Finished));
    QVERIFY(!qml.eval(QStringLiteral("c.cancel()")).toBool());
    for (int turn = 0; turn < 5; ++turn)
        QCoreApplication::processEvents();
    QVERIFY(!qml.eval(QStringLiteral("abortSignals.c.aborted")).toBool());
    QVERIFY(!qml.text().contains(QStringLiteral("abort c")));
}

void tst_Qml::abortSignalShapeAndArguments()
{
    Qml qml;
    QVERIFY(qml.loadHarness());
    // The signal goes into the last declared parameter, only when the call leaves it unfilled.
    qml.eval(
        QStringLiteral("root.f1 = pool.submit(function (a, b, signal) { return [a, b === undefined, typeof "
                       "signal.aborted].join() }, 1); "
                       "root.f2 = pool.submit(function (signal) { return signal.toString() }); "
                       "root.f3 = pool.submit(function (a, b) { return arguments.length + ':' + a + ':' + b }, 1, 2); "
                       "root.f4 = pool.submit(function () { return arguments.length }); "
                       "root.f5 = pool.map(function (x, signal) { return x + (signal.aborted ? 100 : 10) }, [1, 2])"));
    QVERIFY2(qml.error.isEmpty(), qPrintable(qml.error));
    for (const char* f : { "f1", "f2", "f3", "f4", "f5[0]", "f5[1]" })
        QTRY_COMPARE(qml.status(QString::fromLatin1(f)), int(TaskFuture::Finished));
    QCOMPARE(qml.eval(QStringLiteral("f1.result")).toString(), QStringLiteral("1,true,boolean"));
    QCOMPARE(qml.eval(QStringLiteral("f2.result")).toString(), QStringLiteral("[object AbortSignal]"));
    QCOMPARE(qml.eval(QStringLiteral("f3.result")).toString(), QStringLiteral("2:1:2"));
    QCOMPARE(qml.eval(QStringLiteral("f4.result")).toInt(), 0);
    QCOMPARE(qml.eval(QStringLiteral("f5[0].result + ',' + f5[1].result")).toString(), QStringLiteral("11,12"));

    // aborted and reason are read-only; throwIfAborted() throws the reason; a removed listener
    // and one added after the abort are not called; a throwing listener does not stop the others.
    qml.eval(
        QStringLiteral("root.events = []; root.a = pool.submit(function (signal) { "
                       "  root.s = signal; signal.aborted = true; "
                       "  var removed = function () { events.push('removed') }; "
                       "  signal.addEventListener('abort', function () { throw new Error('listener failed') }); "
                       "  signal.addEventListener('abort', removed); signal.removeEventListener('abort', removed); "
                       "  signal.addEventListener('abort', function () { events.push('second') }); "
                       "  signal.throwIfAborted(); "
                       "  return new Promise(function (resolve) { root.handles.a = { resolve: resolve } }) })"));
    QVERIFY2(qml.error.isEmpty(), qPrintable(qml.error));
    QTRY_VERIFY(qml.eval(QStringLiteral("has('a')")).toBool());
    QVERIFY(!qml.eval(QStringLiteral("s.aborted")).toBool());
    QTest::ignoreMessage(QtWarningMsg,
                         QRegularExpression(QStringLiteral("an abort listener threw: Error: listener failed")));
    qml.eval(QStringLiteral("a.cancel()"));
    QTRY_COMPARE(qml.eval(QStringLiteral("events.join()")).toString(), QStringLiteral("second"));
    qml.eval(QStringLiteral("s.addEventListener('abort', function () { events.push('late') }); "
                            "try { s.throwIfAborted(); events.push('no throw') } catch (e) { events.push(e.name) }"));
    QCOMPARE(qml.eval(QStringLiteral("events.join()")).toString(), QStringLiteral("second,CancelledError"));
    qml.eval(QStringLiteral("settle('a', true, 1)"));
    QTRY_COMPARE(qml.eval(QStringLiteral("active")).toInt(), 0);

    // A task that rejects with an error named CancelledError ends Cancelled, not Failed.
    qml.eval(
        QStringLiteral("root.b = pool.submit(function () { var e = new Error('stop'); "
                       "Object.defineProperty(e, 'name', { value: 'CancelledError' }); return Promise.reject(e) })"));
    QTRY_COMPARE(qml.status(QStringLiteral("b")), int(TaskFuture::Cancelled));
}

void tst_Qml::abortSignalOnTimeout()
{
    Qml qml;
    QVERIFY(qml.loadHarness());
    // A per-task timeout: the TaskFuture fails with the timeout's message and the signal is set
    // with a TimeoutError.
    qml.eval(QStringLiteral("root.events = []; root.a = pool.submit({timeout: 20}, abortable, 'a'); "
                            "a.then(null, function (e) { events.push(e.name + ': ' + e.message) })"));
    QVERIFY2(qml.error.isEmpty(), qPrintable(qml.error));
    QTRY_COMPARE(qml.status(QStringLiteral("a")), int(TaskFuture::Failed));
    QCOMPARE(qml.eval(QStringLiteral("a.error")).toString(), QStringLiteral("the task did not finish within 20 ms"));
    QTRY_COMPARE(qml.text(), QStringLiteral("start a,abort a TimeoutError"));
    QCOMPARE(qml.eval(QStringLiteral("abortSignals.a.reason.message")).toString(),
             QStringLiteral("the task did not finish within 20 ms"));
    QTRY_COMPARE(qml.eval(QStringLiteral("events.join()")).toString(),
                 QStringLiteral("TimeoutError: the task did not finish within 20 ms"));
    QTRY_COMPARE(qml.eval(QStringLiteral("active")).toInt(), 0); // it rejected: the slot is free
    QCOMPARE(qml.status(QStringLiteral("a")), int(TaskFuture::Failed));

    // The executor's default timeout, and `timeout: 0` (none) overriding it.
    qml.eval(QStringLiteral("root.log = []; pool.timeout = 20; root.b = pool.submit(abortable, 'b'); "
                            "root.c = pool.submit({timeout: 0}, abortable, 'c')"));
    QVERIFY2(qml.error.isEmpty(), qPrintable(qml.error));
    QTRY_COMPARE(qml.status(QStringLiteral("b")), int(TaskFuture::Failed));
    QCOMPARE(qml.eval(QStringLiteral("b.error")).toString(), QStringLiteral("the task did not finish within 20 ms"));
    QTRY_VERIFY(qml.text().contains(QStringLiteral("abort b TimeoutError")));
    QCOMPARE(qml.status(QStringLiteral("c")), int(TaskFuture::Running));
    // c has no timeout: it is still running after b's ended (same start, same default).
    qml.eval(QStringLiteral("settle('c', true, 'c')"));
    QTRY_COMPARE(qml.status(QStringLiteral("c")), int(TaskFuture::Finished));
    QVERIFY(!qml.text().contains(QStringLiteral("abort c")));
}

void tst_Qml::abortSignalOnShutdownContextAndDestruction()
{
    {
        // shutdown({cancelFutures: true}): queued tasks end Cancelled, running ones are aborted.
        Qml qml;
        QVERIFY(qml.loadHarness());
        qml.eval(QStringLiteral("pool.maxWorkers = 1; root.a = pool.submit(abortable, 'a'); "
                                "root.b = pool.submit(abortable, 'b')"));
        QTRY_VERIFY(qml.eval(QStringLiteral("has('a')")).toBool());
        qml.eval(QStringLiteral("root.s = pool.shutdown({cancelFutures: true})"));
        QCOMPARE(qml.status(QStringLiteral("b")), int(TaskFuture::Cancelled));
        QTRY_COMPARE(qml.text(), QStringLiteral("start a,abort a CancelledError"));
        // It rejected with the CancelledError: it ends Cancelled, and the shutdown finishes.
        QTRY_COMPARE(qml.status(QStringLiteral("s")), int(TaskFuture::Finished));
        QCOMPARE(qml.status(QStringLiteral("a")), int(TaskFuture::Cancelled));
    }
    {
        // The context option: its destruction cancels the queued task and aborts the running one;
        // tasks of other contexts go on.
        Qml qml;
        QVERIFY(qml.loadHarness());
        qml.eval(QStringLiteral(
            "root.o = Qt.createQmlObject('import QtQml; QtObject {}', root, 'owner'); "
            "root.w = Qt.createQmlObject('import QtQml; QtObject {}', root, 'other'); "
            "pool.maxWorkers = 2; root.a = pool.submit({context: o}, abortable, 'a'); "
            "root.c = pool.submit({context: w}, abortable, 'c'); root.b = pool.submit({context: o}, abortable, 'b')"));
        QVERIFY2(qml.error.isEmpty(), qPrintable(qml.error));
        QTRY_VERIFY(qml.eval(QStringLiteral("has('a') && has('c')")).toBool());
        QCOMPARE(qml.status(QStringLiteral("b")), int(TaskFuture::Pending));
        qml.eval(QStringLiteral("o.destroy()"));
        QTRY_COMPARE(qml.status(QStringLiteral("b")), int(TaskFuture::Cancelled));
        QTRY_COMPARE(qml.text(), QStringLiteral("start a,start c,abort a CancelledError"));
        QCOMPARE(qml.status(QStringLiteral("a")), int(TaskFuture::Cancelled));
        QCOMPARE(qml.status(QStringLiteral("c")), int(TaskFuture::Running));
        qml.eval(QStringLiteral("settle('c', true, 'c')"));
        QTRY_COMPARE(qml.status(QStringLiteral("c")), int(TaskFuture::Finished));
        QCOMPARE(qml.text(), QStringLiteral("start a,start c,abort a CancelledError"));
    }
    {
        // Destroying the QML executor (its owner destroyed it): the same as a cancelling shutdown.
        Qml qml;
        QVERIFY(qml.loadHarness());
        qml.eval(QStringLiteral("root.dyn = Qt.createQmlObject('import TaskPool; TaskPoolExecutor { maxWorkers: 1 }', "
                                "root, 'dynamic'); root.a = dyn.submit(abortable, 'a'); "
                                "root.b = dyn.submit(abortable, 'b')"));
        QVERIFY2(qml.error.isEmpty(), qPrintable(qml.error));
        QTRY_VERIFY(qml.eval(QStringLiteral("has('a')")).toBool());
        qml.eval(QStringLiteral("dyn.destroy()"));
        QTRY_COMPARE(qml.text(), QStringLiteral("start a,abort a CancelledError"));
        QTRY_COMPARE(qml.status(QStringLiteral("a")), int(TaskFuture::Cancelled));
        QCOMPARE(qml.status(QStringLiteral("b")), int(TaskFuture::Cancelled));
        QVERIFY(qml.eval(QStringLiteral("dyn === null")).toBool());
    }
}

void tst_Qml::cancelledBeforeItsFunctionRan()
{
    // Submitted to a free worker and cancelled in the same turn: the function is never called.
    Qml qml;
    QVERIFY(qml.loadHarness());
    qml.eval(QStringLiteral("root.a = pool.submit(function () { log.push('ran a') }); a.cancel(); "
                            "root.b = pool.submit(function () { log.push('ran b') })"));
    QVERIFY2(qml.error.isEmpty(), qPrintable(qml.error));
    QCOMPARE(qml.status(QStringLiteral("a")), int(TaskFuture::Cancelled));
    QTRY_COMPARE(qml.status(QStringLiteral("b")), int(TaskFuture::Finished));
    QTRY_COMPARE(qml.eval(QStringLiteral("active")).toInt(), 0);
    QCOMPARE(qml.text(), QStringLiteral("ran b"));
}

void tst_Qml::controlPropertiesNotify()
{
    Qml qml;
    QVERIFY(qml.loadHarness());
    auto* pool = qvariant_cast<TaskPool::QmlTaskPoolExecutor*>(qml.eval(QStringLiteral("pool")));
    QVERIFY(pool);
    QCOMPARE(
        qml.eval(QStringLiteral("[paused, rateLimited, rateLimit, rateWindow, timeout, maxPerKey].join()")).toString(),
        QStringLiteral("false,false,0,1000,0,2147483647"));

    // Each write from QML reaches the C++ executor and is notified once; a write of the same
    // value is not notified.
    qml.eval(QStringLiteral("pool.paused = true; pool.paused = true; pool.timeout = 1500; pool.maxPerKey = 3; "
                            "pool.rateWindow = 250; pool.rateLimit = 4"));
    QVERIFY2(qml.error.isEmpty(), qPrintable(qml.error));
    QCOMPARE(qml.eval(QStringLiteral("[paused, rateLimit, rateWindow, timeout, maxPerKey].join()")).toString(),
             QStringLiteral("true,4,250,1500,3"));
    QVERIFY(pool->executor()->isPaused());
    QCOMPARE(pool->executor()->defaultTimeout(), std::optional(std::chrono::milliseconds(1500)));
    QCOMPARE(pool->executor()->maxPerKey(), 3);
    QCOMPARE(pool->executor()->rateLimit(), 4);
    QCOMPARE(pool->executor()->rateWindow(), std::chrono::milliseconds(250));
    QCOMPARE(qml.eval(QStringLiteral("JSON.stringify(notified)")).toString(),
             QStringLiteral("{\"paused\":1,\"timeout\":1,\"maxPerKey\":1,\"rateLimit\":2}"));

    // pause()/resume(), setRateLimit(starts, window) and changes made in C++ are seen in QML.
    qml.eval(QStringLiteral("pool.resume(); pool.setRateLimit(6, 2000)"));
    QCOMPARE(qml.eval(QStringLiteral("[paused, rateLimit, rateWindow].join()")).toString(),
             QStringLiteral("false,6,2000"));
    pool->executor()->pause();
    pool->executor()->setMaxPerKey(5);
    pool->executor()->setRateLimit(0);
    QCOMPARE(qml.eval(QStringLiteral("[paused, rateLimit, rateWindow, maxPerKey].join()")).toString(),
             QStringLiteral("true,0,2000,5"));
    QCOMPARE(qml.eval(QStringLiteral("JSON.stringify(notified)")).toString(),
             QStringLiteral("{\"paused\":3,\"timeout\":1,\"maxPerKey\":2,\"rateLimit\":4}"));

    // Bad values: a warning, the old value kept, nothing notified.
    QTest::ignoreMessage(QtWarningMsg, QRegularExpression(QStringLiteral("must not be negative")));
    QTest::ignoreMessage(QtWarningMsg, QRegularExpression(QStringLiteral("rate limit must not be negative")));
    QTest::ignoreMessage(QtWarningMsg, QRegularExpression(QStringLiteral("rate window must be longer than 0 ms")));
    QTest::ignoreMessage(QtWarningMsg, QRegularExpression(QStringLiteral("maxPerKey must be greater than 0")));
    qml.eval(QStringLiteral("pool.timeout = -1; pool.rateLimit = -2; pool.rateWindow = 0; pool.maxPerKey = 0"));
    QCOMPARE(qml.eval(QStringLiteral("[rateLimit, rateWindow, timeout, maxPerKey].join()")).toString(),
             QStringLiteral("0,2000,1500,5"));
    QCOMPARE(qml.eval(QStringLiteral("JSON.stringify(notified)")).toString(),
             QStringLiteral("{\"paused\":3,\"timeout\":1,\"maxPerKey\":2,\"rateLimit\":4}"));
}

void tst_Qml::pauseResumeClear()
{
    Qml qml;
    QVERIFY(qml.loadHarness());
    qml.eval(QStringLiteral("root.a = pool.submit(later, 'a')"));
    QTRY_VERIFY(qml.eval(QStringLiteral("has('a')")).toBool());
    qml.eval(QStringLiteral("pool.pause(); "
                            "root.fs = [pool.submit(later, 'b'), pool.submit(later, 'c'), pool.submit(later, 'd')]"));
    QVERIFY2(qml.error.isEmpty(), qPrintable(qml.error));
    for (int turn = 0; turn < 5; ++turn)
        QCoreApplication::processEvents();
    QCOMPARE(qml.text(), QStringLiteral("start a"));
    QCOMPARE(qml.eval(QStringLiteral("[paused, active, pending].join()")).toString(), QStringLiteral("true,1,3"));
    // clear() cancels the queued tasks only; the pool is not shut down.
    QCOMPARE(qml.eval(QStringLiteral("pool.clear()")).toInt(), 3);
    QVERIFY(qml.eval(QStringLiteral("fs.every(function (f) { return f.status === TaskFuture.Cancelled })")).toBool());
    QCOMPARE(qml.eval(QStringLiteral("[active, pending, shut].join()")).toString(), QStringLiteral("1,0,false"));
    qml.eval(QStringLiteral("root.e = pool.submit(later, 'e')"));
    QCOMPARE(qml.eval(QStringLiteral("pending")).toInt(), 1);
    qml.eval(QStringLiteral("pool.resume()"));
    QTRY_COMPARE(qml.text(), QStringLiteral("start a,start e"));
    qml.eval(QStringLiteral("settle('a', true, 1); settle('e', true, 5)"));
    QTRY_COMPARE(qml.eval(QStringLiteral("active")).toInt(), 0);
    QCOMPARE(qml.eval(QStringLiteral("pool.clear()")).toInt(), 0);
}

void tst_Qml::priorityOrder()
{
    Qml qml;
    QVERIFY(qml.loadHarness());
    qml.eval(QStringLiteral("pool.maxWorkers = 1; pool.paused = true; "
                            "pool.submit(later, 'p0'); pool.submit({priority: 5}, later, 'p5a'); "
                            "pool.submit({priority: -1}, later, 'pm1'); pool.submit({priority: 5}, later, 'p5b'); "
                            "pool.map({priority: 2}, later, ['p2a', 'p2b']); pool.submit({}, later, 'p0b')"));
    QVERIFY2(qml.error.isEmpty(), qPrintable(qml.error));
    QCOMPARE(qml.eval(QStringLiteral("pending")).toInt(), 7);
    qml.eval(QStringLiteral("pool.paused = false"));
    const QStringList order
        = { QStringLiteral("p5a"), QStringLiteral("p5b"), QStringLiteral("p2a"), QStringLiteral("p2b"),
            QStringLiteral("p0"),  QStringLiteral("p0b"), QStringLiteral("pm1") };
    QStringList expected;
    for (const QString& name : order) {
        expected << QStringLiteral("start ") + name;
        QTRY_COMPARE(qml.text(), expected.join(u','));
        qml.eval(QStringLiteral("settle('%1', true, 0)").arg(name));
    }
    QTRY_COMPARE(qml.eval(QStringLiteral("active")).toInt(), 0);
}

void tst_Qml::rateLimitHoldsStarts()
{
    Qml qml;
    QVERIFY(qml.loadHarness());
    // Two starts per minute: the third task waits for the limit, not for a worker.
    qml.eval(QStringLiteral("pool.maxWorkers = 4; pool.setRateLimit(2, 60000); root.fs = []; "
                            "for (var i = 0; i < 3; ++i) fs.push(pool.submit(function (x) { return x }, i))"));
    QVERIFY2(qml.error.isEmpty(), qPrintable(qml.error));
    QTRY_VERIFY(qml.eval(QStringLiteral("rateLimited")).toBool());
    QTRY_COMPARE(qml.status(QStringLiteral("fs[1]")), int(TaskFuture::Finished));
    QCOMPARE(qml.status(QStringLiteral("fs[2]")), int(TaskFuture::Pending));
    QCOMPARE(qml.eval(QStringLiteral("[active, pending].join()")).toString(), QStringLiteral("0,1"));
    QVERIFY(qml.eval(QStringLiteral("notified.rateLimited >= 1")).toBool());
    // Lifting the limit lets it start at once.
    qml.eval(QStringLiteral("pool.rateLimit = 0"));
    QTRY_COMPARE(qml.status(QStringLiteral("fs[2]")), int(TaskFuture::Finished));
    QVERIFY(!qml.eval(QStringLiteral("rateLimited")).toBool());
}

void tst_Qml::keyLimits()
{
    Qml qml;
    QVERIFY(qml.loadHarness());
    qml.eval(QStringLiteral("pool.maxWorkers = 4; pool.maxPerKey = 1; pool.setKeyLimit('wide', 2); "
                            "pool.submit({key: 'h1'}, later, 'h1a'); pool.submit({key: 'h1'}, later, 'h1b'); "
                            "pool.submit({key: 'h2'}, later, 'h2a'); pool.submit({key: 'wide'}, later, 'w1'); "
                            "pool.submit({key: 'wide'}, later, 'w2')"));
    QVERIFY2(qml.error.isEmpty(), qPrintable(qml.error));
    QCOMPARE(qml.eval(QStringLiteral("pool.keyLimit('wide') + ',' + pool.keyLimit('h1')")).toString(),
             QStringLiteral("2,1"));
    // h1b waits for h1a; the tasks of the other keys are not held back behind it.
    QTRY_COMPARE(qml.eval(QStringLiteral("log.slice().sort().join()")).toString(),
                 QStringLiteral("start h1a,start h2a,start w1,start w2"));
    QCOMPARE(qml.eval(QStringLiteral("[active, pending].join()")).toString(), QStringLiteral("4,1"));
    qml.eval(QStringLiteral("settle('w1', true, 0)"));
    for (int turn = 0; turn < 5; ++turn)
        QCoreApplication::processEvents();
    QVERIFY(!qml.eval(QStringLiteral("has('h1b')")).toBool()); // a free worker, but not for its key
    qml.eval(QStringLiteral("settle('h1a', true, 0)"));
    QTRY_VERIFY(qml.eval(QStringLiteral("has('h1b')")).toBool());
    qml.eval(QStringLiteral("settle('h1b', true, 0); settle('h2a', true, 0); settle('w2', true, 0)"));
    QTRY_COMPARE(qml.eval(QStringLiteral("active")).toInt(), 0);
}

void tst_Qml::whenIdleAndPendingBelow()
{
    Qml qml;
    QVERIFY(qml.loadHarness());
    // Idle now: finished at once.
    qml.eval(QStringLiteral("root.events = []; root.x = pool.whenIdle()"));
    QVERIFY2(qml.error.isEmpty(), qPrintable(qml.error));
    QTRY_COMPARE(qml.status(QStringLiteral("x")), int(TaskFuture::Finished));

    qml.eval(
        QStringLiteral("pool.maxWorkers = 1; root.a = pool.submit(later, 'a'); root.b = pool.submit(later, 'b'); "
                       "root.c = pool.submit(later, 'c'); root.y = pool.whenIdle(); root.p = pool.pendingBelow(2); "
                       "root.w = pool.pendingBelow(3); "
                       "y.then(function () { events.push('idle ' + [a.status, b.status, c.status].join('/')) }); "
                       "p.then(function () { events.push('below 2') })"));
    QVERIFY2(qml.error.isEmpty(), qPrintable(qml.error));
    QTRY_VERIFY(qml.eval(QStringLiteral("has('a')")).toBool());
    QTRY_COMPARE(qml.status(QStringLiteral("w")), int(TaskFuture::Finished)); // 2 queued < 3
    QCOMPARE(qml.status(QStringLiteral("p")), int(TaskFuture::Running));
    QCOMPARE(qml.status(QStringLiteral("y")), int(TaskFuture::Running));
    qml.eval(QStringLiteral("settle('a', true, 1)"));
    QTRY_COMPARE(qml.eval(QStringLiteral("events.join()")).toString(), QStringLiteral("below 2"));
    QCOMPARE(qml.status(QStringLiteral("y")), int(TaskFuture::Running));
    QTRY_VERIFY(qml.eval(QStringLiteral("has('b')")).toBool());
    qml.eval(QStringLiteral("settle('b', true, 2)"));
    QTRY_VERIFY(qml.eval(QStringLiteral("has('c')")).toBool());
    QCOMPARE(qml.status(QStringLiteral("y")), int(TaskFuture::Running));
    qml.eval(QStringLiteral("settle('c', true, 3)"));
    const QString f = QString::number(int(TaskFuture::Finished));
    QTRY_COMPARE(qml.eval(QStringLiteral("events.join()")).toString(), QStringLiteral("below 2,idle %1/%1/%1").arg(f));
}

void tst_Qml::badOptions()
{
    Qml qml;
    QVERIFY(qml.loadHarness());
    const struct {
        const char* call;
        const char* message;
    } cases[] = {
        { "pool.submit({priority: 1}, 5)",
          "TypeError: TaskPoolExecutor.submit: the function must follow the options object, got the value 5" },
        { "pool.submit({prority: 1}, later, 'x')",
          "TypeError: TaskPoolExecutor.submit: unknown option \"prority\" (the options are priority, timeout, key and "
          "context)" },
        { "pool.submit({priority: 'high'}, later, 'x')",
          "TypeError: TaskPoolExecutor.submit: the priority must be an integer, got the string \"high\"" },
        { "pool.submit({priority: 1.5}, later, 'x')",
          "TypeError: TaskPoolExecutor.submit: the priority must be an integer, got the value 1.5" },
        { "pool.submit({timeout: -5}, later, 'x')",
          "TypeError: TaskPoolExecutor.submit: the timeout must be a number of milliseconds >= 0 (0: none), got the "
          "value -5" },
        { "pool.submit({key: 7}, later, 'x')",
          "TypeError: TaskPoolExecutor.submit: the key must be a string, got the value 7" },
        { "pool.submit({context: 'me'}, later, 'x')",
          "TypeError: TaskPoolExecutor.submit: the context must be a QML object, got the string \"me\"" },
        { "pool.map({priority: 'x'}, later, [1])",
          "TypeError: TaskPoolExecutor.map: the priority must be an integer, got the string \"x\"" },
        { "pool.map(5, later, [1])",
          "TypeError: TaskPoolExecutor.map: with three arguments the first must be an options object like "
          "{priority: 1}, got the value 5" },
        { "pool.pendingBelow(0)", "RangeError: TaskPoolExecutor.pendingBelow: count must be greater than 0, got 0" },
        { "pool.setKeyLimit('k', 0)", "RangeError: TaskPoolExecutor.setKeyLimit: a key limit must be greater than 0" },
    };
    for (const auto& c : cases) {
        const QVariant value = qml.eval(QString::fromLatin1(c.call));
        QVERIFY2(qml.error.endsWith(QString::fromUtf8(c.message)),
                 qPrintable(c.call + (QStringLiteral(": ") + qml.error)));
        QVERIFY(!value.isValid() || value.isNull() || value.value<QObject*>() == nullptr
                || (value.canConvert<QJSValue>() && value.value<QJSValue>().isUndefined()));
    }
    QCOMPARE(qml.eval(QStringLiteral("[active, pending, shut].join()")).toString(), QStringLiteral("0,0,false"));
    QCOMPARE(qml.text(), QString());
    // A plain object as an argument after the function is an argument, as before.
    qml.eval(QStringLiteral("root.f = pool.submit(function (o) { return o.priority }, {priority: 9})"));
    QTRY_COMPARE(qml.status(QStringLiteral("f")), int(TaskFuture::Finished));
    QCOMPARE(qml.eval(QStringLiteral("f.result")).toInt(), 9);
    // The options form with the most arguments.
    qml.eval(QStringLiteral("root.f = pool.submit({priority: 1}, function () { return Array.prototype.slice.call("
                            "arguments).join() }, 1, 2, 3, 4, 5, 6, 7, 8)"));
    QVERIFY2(qml.error.isEmpty(), qPrintable(qml.error));
    QTRY_COMPARE(qml.status(QStringLiteral("f")), int(TaskFuture::Finished));
    QCOMPARE(qml.eval(QStringLiteral("f.result")).toString(), QStringLiteral("1,2,3,4,5,6,7,8"));
}

void tst_Qml::regression11_2_executorWithOtherChildren()
{
    // The executor has children of its own (a QTimer, a plain QObject) before and after the first
    // TaskFuture: none of them may be taken for the TaskFuture's bookkeeping (that wrote into a
    // QHash that was not there: a heap overflow under ASan, and the start was never seen).
    TaskPool::TaskPoolExecutor pool(1);
    auto* timer = new QTimer(&pool);
    timer->setInterval(1234);
    auto* other = new QObject(&pool);
    other->setObjectName(QStringLiteral("other"));
    Gate gate;
    auto first = pool.submit(gated, &gate, 1);
    auto second = pool.submit(gated, &gate, 2);
    TaskFuture a(first, &pool);
    auto* later = new QTimer(&pool);
    TaskFuture b(second, &pool);
    QCOMPARE(a.status(), TaskFuture::Pending);
    QCOMPARE(b.status(), TaskFuture::Pending);
    QTRY_COMPARE(a.status(), TaskFuture::Running);
    QCOMPARE(b.status(), TaskFuture::Pending); // one worker: still queued
    gate.open();
    QTRY_COMPARE(b.status(), TaskFuture::Finished);
    QCOMPARE(a.status(), TaskFuture::Finished);
    QCOMPARE(a.result().toInt() + b.result().toInt(), 3);
    // The other children are unharmed.
    QCOMPARE(timer->interval(), 1234);
    QCOMPARE(other->objectName(), QStringLiteral("other"));
    later->setInterval(5);
    QCOMPARE(later->interval(), 5);
    // A property of the executor's own with the tracker's name is not taken for it either.
    TaskPool::TaskPoolExecutor spoofed(1);
    spoofed.setProperty("_q_taskpool_futureTracker", QVariant::fromValue<QObject*>(other));
    Gate hold;
    TaskFuture c(spoofed.submit(gated, &hold, 3), &spoofed);
    QTRY_COMPARE(c.status(), TaskFuture::Running);
    hold.open();
    QTRY_COMPARE(c.status(), TaskFuture::Finished);
    QCOMPARE(other->objectName(), QStringLiteral("other"));
}

void tst_Qml::regression11_3_futureOfRunningTask()
{
    // A TaskFuture made for a task that already runs is Running at once, not Pending until the
    // task settles (the start it waited for had been signalled before it existed).
    TaskPool::TaskPoolExecutor pool(1);
    Gate gate;
    auto running = pool.submit(gated, &gate, 1);
    auto queued = pool.submit(gated, &gate, 2);
    QTRY_COMPARE(pool.activeCount(), 1);
    TaskFuture a(running, &pool); // the first TaskFuture of this executor
    QCOMPARE(a.status(), TaskFuture::Running);
    TaskFuture b(queued, &pool);
    QCOMPARE(b.status(), TaskFuture::Pending);
    TaskFuture again(running, &pool); // a second one for the same task
    QCOMPARE(again.status(), TaskFuture::Running);
    QSignalSpy started(&b, &TaskFuture::started);
    gate.open();
    QTRY_COMPARE(b.status(), TaskFuture::Finished);
    QCOMPARE(started.size(), 1);
    QCOMPARE(a.status(), TaskFuture::Finished);
    QCOMPARE(again.result().toInt(), 1);

    // Two TaskFutures of one queued task both see its start.
    Gate hold;
    auto third = pool.submit(gated, &hold, 3);
    TaskFuture c1(third, &pool), c2(third, &pool);
    QCOMPARE(c1.status(), TaskFuture::Pending);
    QCOMPARE(c2.status(), TaskFuture::Pending);
    QTRY_COMPARE(c1.status(), TaskFuture::Running);
    QCOMPARE(c2.status(), TaskFuture::Running);
    hold.open();
    QTRY_COMPARE(c2.status(), TaskFuture::Finished);
    QTRY_COMPARE(c1.status(), TaskFuture::Finished);
}

void tst_Qml::regression11_3_queuedJsTaskAfterExecutorGone()
{
    // A JavaScript task still queued when its QML executor is destroyed never sits Pending for
    // good: the destruction cancels it at once (issue 12: a destroyed executor's work ends with
    // it), and it never starts.
    Qml qml;
    QVERIFY(qml.loadHarness());
    auto* pool = qvariant_cast<TaskPool::QmlTaskPoolExecutor*>(qml.eval(QStringLiteral("pool")));
    QVERIFY(pool);
    qml.eval(QStringLiteral("pool.maxWorkers = 1; root.a = pool.submit(later, 'a'); root.b = pool.submit(later, 'b')"));
    QVERIFY2(qml.error.isEmpty(), qPrintable(qml.error));
    QTRY_VERIFY(qml.eval(QStringLiteral("has('a')")).toBool());
    delete pool;
    QCOMPARE(qml.status(QStringLiteral("a")), int(TaskFuture::Running));
    QCOMPARE(qml.status(QStringLiteral("b")), int(TaskFuture::Cancelled));
    qml.eval(QStringLiteral("settle('a', true, 1)"));
    QTRY_COMPARE(qml.status(QStringLiteral("a")), int(TaskFuture::Finished));
    for (int turn = 0; turn < 5; ++turn)
        QCoreApplication::processEvents();
    QVERIFY(!qml.eval(QStringLiteral("has('b')")).toBool());
    QCOMPARE(qml.status(QStringLiteral("b")), int(TaskFuture::Cancelled));
    QCOMPARE(qml.text(), QStringLiteral("start a"));
}

void tst_Qml::regression11_3_queuedCppTaskAfterExecutorGone()
{
    // A C++ task still queued when its executor object is destroyed: nothing signals its start
    // any more, so its TaskFuture leaves Pending (shows Running, as an untracked pool future does)
    // rather than stay Pending while the task runs.
    auto pool = std::make_unique<TaskPool::TaskPoolExecutor>(1);
    Gate gate;
    TaskFuture a(pool->submit(gated, &gate, 1), pool.get());
    TaskFuture b(pool->submit(gated, &gate, 2), pool.get());
    QTRY_COMPARE(a.status(), TaskFuture::Running);
    QCOMPARE(b.status(), TaskFuture::Pending);
    pool.reset();
    QTRY_COMPARE(b.status(), TaskFuture::Running);
    gate.open();
    QTRY_COMPARE(b.status(), TaskFuture::Finished);
    QCOMPARE(a.status(), TaskFuture::Finished);
    QCOMPARE(b.result().toInt(), 2);
}

void tst_Qml::regression14_10_idleAfterJsTaskFutures()
{
    // In onIdle every TaskFuture of the executor has settled: status, result and error final.
    Qml qml;
    QVERIFY(qml.loadHarness());
    qml.eval(QStringLiteral(
        "root.events = []; root.fs = []; "
        "pool.idle.connect(function () { events.push(fs.map(function (f) { return f.status + ':' + f.result "
        "+ ':' + f.error }).join(' ')) }); "
        "fs.push(pool.submit(function () { return 1 })); "
        "fs.push(pool.submit(function () { return Promise.resolve(2) })); "
        "fs.push(pool.submit(function () { throw new Error('no') })); "
        "fs.push(pool.submit(later, 'x')); "
        "fs.push(pool.submit(function () { return 5 }))"));
    QVERIFY2(qml.error.isEmpty(), qPrintable(qml.error));
    QTRY_VERIFY(qml.eval(QStringLiteral("has('x')")).toBool());
    qml.eval(QStringLiteral("settle('x', true, 4)"));
    QTRY_COMPARE(qml.eval(QStringLiteral("events.length")).toInt(), 1);
    const QString f = QString::number(int(TaskFuture::Finished));
    QCOMPARE(qml.eval(QStringLiteral("events[0]")).toString(),
             QStringLiteral("%1:1: %1:2: %2:undefined:no %1:4: %1:5:").arg(f).arg(int(TaskFuture::Failed)));
}

void tst_Qml::regression14_10_idleAfterCppTaskFutures()
{
    // C++ jobs on a QML executor, reporting progress through their QPromise: when the executor
    // signals idle (in C++ and in QML), their TaskFutures have settled with their final progress.
    TaskPool::QmlTaskPoolExecutor pool;
    pool.setMaxWorkers(2);
    auto job = [](QPromise<int>& promise, int steps, bool fail) -> QCoro::Task<void> {
        promise.setProgressRange(0, steps);
        for (int step = 1; step <= steps; ++step) {
            co_await TestUtil::sleep(1ms);
            promise.setProgressValue(step);
        }
        if (fail)
            throw std::runtime_error("job failed");
        promise.addResult(steps);
    };
    std::vector<std::unique_ptr<TaskFuture>> futures;
    for (int steps : { 3, 4, 2 })
        futures.emplace_back(TaskPool::toTaskFuture(pool.executor()->submit(job, steps, false), pool.executor()));
    futures.emplace_back(TaskPool::toTaskFuture(pool.executor()->submit(job, 4, true), pool.executor()));
    Gate gate;
    futures.emplace_back(TaskPool::toTaskFuture(pool.executor()->submit(gated, &gate, 9), pool.executor()));
    auto snapshot = [&] {
        QStringList seen;
        for (const auto& f : futures)
            seen << QStringLiteral("%1/%2/%3").arg(int(f->status())).arg(f->progress()).arg(f->result().toInt());
        return seen.join(u' ');
    };
    QStringList atIdle, atQmlIdle;
    connect(pool.executor(), &TaskPool::TaskPoolExecutor::idle, this, [&] { atIdle << snapshot(); });
    connect(&pool, &TaskPool::QmlTaskPoolExecutor::idle, this, [&] { atQmlIdle << snapshot(); });
    QTRY_COMPARE(futures[3]->status(), TaskFuture::Failed);
    QTRY_COMPARE(pool.activeCount(), 1); // only the gated one is left
    QVERIFY(atIdle.isEmpty());
    gate.open();
    QTRY_COMPARE(atQmlIdle.size(), 1);
    const QString f = QString::number(int(TaskFuture::Finished));
    const QString expected = QStringLiteral("%1/1/3 %1/1/4 %1/1/2 %2/1/0 %1/1/9").arg(f).arg(int(TaskFuture::Failed));
    QCOMPARE(atQmlIdle.first(), expected);
    QCOMPARE(atIdle, QStringList { expected });
}

// Child mode of importThroughEnvironment: import TaskPool with only the environment's import path.
static int importChild()
{
    QQmlEngine engine;
    QQmlComponent component(&engine);
    component.setData("import TaskPool\nTaskPoolExecutor { maxWorkers: 1 }", QUrl(QStringLiteral("child.qml")));
    std::unique_ptr<QObject> object(component.create());
    if (!object) {
        qWarning().noquote() << component.errorString();
        return 1;
    }
    return object->property("maxWorkers").toInt() == 1 ? 0 : 2;
}

int main(int argc, char** argv)
{
    QCoreApplication app(argc, argv);
    if (qEnvironmentVariableIsSet("TST_QML_IMPORT_CHILD"))
        return importChild();
    tst_Qml test;
    QTEST_SET_MAIN_SOURCE_PATH
    return QTest::qExec(&test, argc, argv);
}

#else // the QML module is not built (TASKPOOL_BUILD_QML=OFF)

class tst_Qml : public QObject {
    Q_OBJECT
private Q_SLOTS:
    void qmlModuleNotBuilt() { QSKIP("TASKPOOL_BUILD_QML is OFF"); }
};

QTEST_GUILESS_MAIN(tst_Qml)

#endif

#include "tst_qml.moc"
