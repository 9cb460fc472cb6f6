//! The HTTP side: one multithreaded tokio runtime, an accept loop per listener, HTTP/1.1 with
//! upgrades (for attach/exec hijacking) through hyper, the `/v1.xx` prefix stripped before
//! routing, Docker's `Server`/`Api-Version` headers on every answer, and the idle timeout
//! (`--time`): the service exits once no connection has been open for that long.
use crate::error::{error_body, ApiError};
use crate::listen::{self, InheritedSocket, ListenAddr, ListenError};
use crate::state::{Activity, AppState};
use crate::version::{self, API_VERSION};
use axum::body::Body;
use axum::http::{HeaderValue, Request, Response, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

/// What `berth system service` was asked.
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    /// The Berth root (images, containers).
    pub root: PathBuf,
    /// Where to listen; ignored for sockets systemd passes (`LISTEN_FDS`).
    pub listen: Vec<ListenAddr>,
    /// Exit after this long without any open connection; `None` serves forever.
    pub idle_timeout: Option<Duration>,
    /// TLS material for `tcp://` listeners.
    pub tls: Option<crate::tls::TlsFiles>,
}

/// Errors that stop the service.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Listen(#[from] ListenError),
    #[error("starting the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}

enum Listener {
    Unix(tokio::net::UnixListener, Option<PathBuf>),
    Tcp(tokio::net::TcpListener),
}

/// Runs the service until a signal (SIGINT/SIGTERM) or the idle timeout. Blocks the caller.
/// Everything that must happen single-threaded (socket activation, group creation) happens
/// before the runtime starts.
pub fn serve(opts: ServiceOptions) -> Result<(), ServiceError> {
    let inherited = listen::inherited_sockets()?;
    let mut unix_std = Vec::new();
    let mut tcp_std = Vec::new();
    if inherited.is_empty() {
        for addr in &opts.listen {
            match addr {
                ListenAddr::Unix(path) => {
                    unix_std.push((listen::bind_unix(path)?, Some(path.clone())))
                }
                ListenAddr::Tcp(a) => {
                    if opts.tls.is_none() {
                        return Err(ListenError::TcpWithoutTls(a.clone()).into());
                    }
                    let l = std::net::TcpListener::bind(a.as_str()).map_err(|source| {
                        ListenError::Io {
                            context: "listening on",
                            path: a.clone(),
                            source,
                        }
                    })?;
                    l.set_nonblocking(true).map_err(|source| ListenError::Io {
                        context: "listening on",
                        path: a.clone(),
                        source,
                    })?;
                    tcp_std.push(l);
                }
            }
        }
    } else {
        for socket in inherited {
            match socket {
                InheritedSocket::Unix(l) => unix_std.push((l, None)),
                InheritedSocket::Tcp(l) => {
                    if opts.tls.is_none() {
                        return Err(ListenError::TcpWithoutTls("an inherited socket".into()).into());
                    }
                    tcp_std.push(l)
                }
            }
        }
    }
    let tls = match &opts.tls {
        Some(files) if !tcp_std.is_empty() => Some(crate::tls::acceptor(files)?),
        _ => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(ServiceError::Runtime)?;
    let state = Arc::new(AppState::new(&opts.root));
    // Before the first request: what a killed command (or a killed earlier service) left.
    state.recover();
    runtime.block_on(async move {
        let mut listeners = Vec::new();
        for (l, path) in unix_std {
            match tokio::net::UnixListener::from_std(l) {
                Ok(l) => listeners.push(Listener::Unix(l, path)),
                Err(e) => tracing::error!("unix listener: {e}"),
            }
        }
        for l in tcp_std {
            match tokio::net::TcpListener::from_std(l) {
                Ok(l) => listeners.push(Listener::Tcp(l)),
                Err(e) => tracing::error!("tcp listener: {e}"),
            }
        }
        let router = crate::routes::router(state.clone());
        let mut paths = Vec::new();
        for l in listeners {
            if let Listener::Unix(_, Some(p)) = &l {
                paths.push(p.clone());
            }
            tokio::spawn(accept_loop(l, state.clone(), router.clone(), tls.clone()));
        }
        wait_for_end(&state.activity, opts.idle_timeout).await;
        for p in paths {
            let _ = std::fs::remove_file(p);
        }
    });
    // Hijacked sessions may still hold blocking threads; do not wait for them.
    runtime.shutdown_timeout(Duration::from_millis(100));
    Ok(())
}

async fn wait_for_end(activity: &Activity, idle: Option<Duration>) {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let terminated = async {
        match term.as_mut() {
            Some(s) => {
                s.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    let idle_expired = async {
        let Some(idle) = idle else {
            return std::future::pending::<()>().await;
        };
        loop {
            let wait = activity.idle_remaining(idle);
            if wait.is_zero() {
                return;
            }
            tokio::time::sleep(wait.min(Duration::from_millis(500))).await;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminated => {}
        _ = idle_expired => {}
    }
}

async fn accept_loop(
    listener: Listener,
    state: Arc<AppState>,
    router: axum::Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    loop {
        match &listener {
            Listener::Unix(l, _) => match l.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(serve_connection(
                        TokioIo::new(stream),
                        state.clone(),
                        router.clone(),
                    ));
                }
                Err(e) => accept_failed(e).await,
            },
            Listener::Tcp(l) => match l.accept().await {
                Ok((stream, _)) => {
                    let Some(acceptor) = tls.clone() else {
                        continue;
                    };
                    let state = state.clone();
                    let router = router.clone();
                    tokio::spawn(async move {
                        match acceptor.accept(stream).await {
                            Ok(stream) => {
                                serve_connection(TokioIo::new(stream), state, router).await
                            }
                            Err(e) => tracing::debug!("TLS handshake: {e}"),
                        }
                    });
                }
                Err(e) => accept_failed(e).await,
            },
        }
    }
}

async fn accept_failed(e: std::io::Error) {
    tracing::warn!("accept: {e}");
    // EMFILE and friends: back off instead of spinning.
    tokio::time::sleep(Duration::from_millis(50)).await;
}

async fn serve_connection<I>(io: TokioIo<I>, state: Arc<AppState>, router: axum::Router)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let _busy = state.activity.enter();
    let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
        let router = router.clone();
        let state = state.clone();
        async move {
            if wants_recovery(req.uri().path()) {
                let state = state.clone();
                if let Err(e) = tokio::task::spawn_blocking(move || state.recover()).await {
                    tracing::warn!("recovery pass: {e}");
                }
            }
            Ok::<_, std::convert::Infallible>(dispatch(router, req).await)
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .serve_connection(io, service)
        .with_upgrades();
    if let Err(e) = conn.await {
        tracing::debug!("connection: {e}");
    }
}

/// Whether the recovery pass runs before this request, as it runs before every CLI command
/// (so `ps` and `inspect` through the API say what the CLI's say): every path but the
/// liveness probes clients send in bursts.
fn wants_recovery(path: &str) -> bool {
    !(path.ends_with("/_ping") || path.ends_with("/version"))
}

/// Strips the version prefix, routes, and stamps Docker's headers on the answer.
async fn dispatch(router: axum::Router, req: Request<hyper::body::Incoming>) -> Response<Body> {
    let mut req = req.map(Body::new);
    let path = req.uri().path().to_string();
    let mut response = match version::split_path(&path) {
        Err(err) => axum::response::IntoResponse::into_response(err),
        Ok((version, tail)) => {
            let rewritten = match req.uri().query() {
                Some(q) => format!("{tail}?{q}"),
                None => tail.to_string(),
            };
            match rewritten.parse::<Uri>() {
                Ok(uri) => {
                    *req.uri_mut() = uri;
                    req.extensions_mut().insert(version);
                    match router.oneshot(req).await {
                        Ok(r) => r,
                        Err(never) => match never {},
                    }
                }
                Err(e) => axum::response::IntoResponse::into_response(ApiError::bad_request(
                    format!("invalid request path {path:?}: {e}"),
                )),
            }
        }
    };
    let headers = response.headers_mut();
    headers.insert(
        "Server",
        HeaderValue::from_static(concat!("Berth/", env!("CARGO_PKG_VERSION"), " (linux)")),
    );
    headers.insert("Api-Version", HeaderValue::from_static(API_VERSION));
    headers.insert("Ostype", HeaderValue::from_static("linux"));
    headers.insert("Docker-Experimental", HeaderValue::from_static("false"));
    response
}

/// Docker's answer for a path no route matches.
pub async fn not_found(uri: Uri) -> Response<Body> {
    let mut r = Response::new(Body::from(error_body(&format!(
        "page not found: {}",
        uri.path()
    ))));
    *r.status_mut() = StatusCode::NOT_FOUND;
    r.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}
