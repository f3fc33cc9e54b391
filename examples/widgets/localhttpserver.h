// SPDX-License-Identifier: MIT
#pragma once

#include <QObject>
#include <QTcpServer>
#include <QUrl>

#include <chrono>

//! The HTTP server on 127.0.0.1 that the jobs download their parts from.
/*!
 * It answers each GET with a short text after a latency (a QTimer, so it holds any number of
 * requests at once on one thread), and counts what became of the requests: served, aborted (the
 * client closed the connection before the answer, as QNetworkReply::abort() does) and still in
 * flight; served() + aborted() + inFlight() is every request received. Connections are kept alive.
 * It listens only on 127.0.0.1, on an ephemeral port, and stops with its owner. (The daemon
 * example has a fuller one: status codes, holding answers back, the peak in flight.)
 */
class LocalHttpServer : public QObject {
    Q_OBJECT

public:
    explicit LocalHttpServer(std::chrono::milliseconds latency, QObject* parent = nullptr);
    ~LocalHttpServer() override;

    //! Listens on 127.0.0.1 on an ephemeral port; false (see errorString()) when it cannot.
    bool listen();
    QString errorString() const { return m_server.errorString(); }
    //! `http://127.0.0.1:<port>`
    QUrl baseUrl() const;

    std::chrono::milliseconds latency() const { return m_latency; }
    //! Changes the latency of the requests received from now on.
    void setLatency(std::chrono::milliseconds latency) { m_latency = latency; }
    //! Requests received and not answered yet.
    int inFlight() const { return m_inFlight; }
    //! Requests answered.
    qint64 served() const { return m_served; }
    //! Requests whose client went away before the answer (an aborted QNetworkReply).
    qint64 aborted() const { return m_aborted; }

Q_SIGNALS:
    //! A request came in, was answered or was aborted.
    void countsChanged();

private:
    friend class HttpConnection;
    void requestStarted();
    void requestEnded(bool answered);

    QTcpServer m_server;
    std::chrono::milliseconds m_latency;
    int m_inFlight = 0;
    qint64 m_served = 0;
    qint64 m_aborted = 0;
};
