//! Serving the API: the guarded service and reflection, over plain TCP
//! or TLS, with graceful shutdown.

use crate::auth::Auth;
use crate::guard::Guarded;
use crate::pb;
use crate::service::WeftService;
use crate::tls::ServerTls;
use std::sync::Arc;
use weft_server::Runtime;

/// Largest request the server decodes: components are big (an interpreted
/// language's component is tens of MB); payloads inside are checked
/// against the runtime's own, much smaller limit.
const MAX_MESSAGE_BYTES: usize = 128 * 1024 * 1024;

/// Serve the API (and reflection) on `listener`, every call checked by
/// `auth` (see `guard.rs`), until `shutdown` resolves, then drain: in-flight calls finish, waiting calls answer at
/// once. With `tls`, every connection is a TLS one (mutual TLS when it has a
/// client CA), handshaken apart from the others so a slow or failing client
/// holds up no one; [`ServerTls::reload`] applies to the next connection.
pub async fn serve(
    runtime: Runtime,
    listener: tokio::net::TcpListener,
    tls: Option<Arc<ServerTls>>,
    auth: Arc<Auth>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::DESCRIPTOR)
        .build_v1()?;
    let (drain, draining) = tokio::sync::watch::channel(false);
    let shutdown = async move {
        shutdown.await;
        let _ = drain.send(true);
    };
    let inner = WeftService::new(runtime, auth.clone(), draining);
    let service = pb::weft_server::WeftServer::new(Guarded { inner, auth })
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let server = tonic::transport::Server::builder()
        .add_service(reflection)
        .add_service(service);
    let Some(tls) = tls else {
        // No Nagle: a small response would wait for the client's delayed
        // ACK (40 ms on Linux) whenever the connection is not busy.
        let incoming =
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
        server
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await?;
        return Ok(());
    };
    let (connections, incoming) = tokio::sync::mpsc::channel(64);
    let accepting = tokio::spawn(accept_tls(listener, tls, connections));
    let served = server
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::ReceiverStream::new(incoming),
            shutdown,
        )
        .await;
    accepting.abort();
    let _ = accepting.await;
    served?;
    Ok(())
}

/// A TLS handshake that takes longer than this is dropped.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Accept TCP connections and hand each, once its TLS handshake is done,
/// to the server; until the server stops taking them.
async fn accept_tls(
    listener: tokio::net::TcpListener,
    tls: Arc<ServerTls>,
    connections: tokio::sync::mpsc::Sender<
        std::io::Result<tokio_rustls::server::TlsStream<tokio::net::TcpStream>>,
    >,
) {
    let mut handshakes = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (tcp, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors, say: back off, not spin.
                        tracing::warn!("accepting a connection failed: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                let acceptor = tls.acceptor();
                let connections = connections.clone();
                handshakes.spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            let _ = connections.send(Ok(stream)).await;
                        }
                        Ok(Err(e)) => tracing::info!(%peer, "TLS handshake refused: {e}"),
                        Err(_) => tracing::info!(%peer, "TLS handshake timed out"),
                    }
                });
            }
            Some(_) = handshakes.join_next(), if !handshakes.is_empty() => {}
            () = connections.closed() => return,
        }
    }
}
