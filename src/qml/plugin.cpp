// SPDX-License-Identifier: MIT
// The `TaskPool` QML module's plugin (its qmldir is the file at the repository root).
#include <taskpool/qml.h>

#include <QQmlEngine>
#include <QQmlExtensionPlugin>

class TaskPoolQmlPlugin : public QQmlExtensionPlugin {
    Q_OBJECT
    Q_PLUGIN_METADATA(IID QQmlExtensionInterface_iid)

public:
    void registerTypes(const char* uri) override
    {
        Q_ASSERT(QByteArrayView(uri) == "TaskPool");
        qmlRegisterModule(uri, 1, 0);
        qmlRegisterType<TaskPool::QmlTaskPoolExecutor>(uri, 1, 0, "TaskPoolExecutor");
        qmlRegisterUncreatableType<TaskPool::TaskFuture>(
            uri, 1, 0, "TaskFuture",
            QStringLiteral("TaskFuture objects come from TaskPoolExecutor.submit() or from C++ "
                           "(TaskPool::toTaskFuture)"));
    }
};

#include "plugin.moc"
