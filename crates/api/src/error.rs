//! The service's one error type: an HTTP status plus the message Docker clients print, sent as
//! Docker's `{"message": …}` body. Library errors map to Docker's status codes here (404 for a
//! missing object, 409 for a conflict, 400 for bad input, 500 otherwise) and nowhere else.
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use berth_engine::net::NetError;
use berth_engine::EngineError;
use berth_image::ImageError;

/// An error answered to a client.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

pub type ApiResult<T> = std::result::Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, message)
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

/// Docker's JSON error body.
pub fn error_body(message: &str) -> String {
    serde_json::json!({ "message": message }).to_string()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            error_body(&self.message),
        )
            .into_response()
    }
}

impl From<EngineError> for ApiError {
    fn from(err: EngineError) -> ApiError {
        let status = match &err {
            EngineError::NoSuchContainer(_)
            | EngineError::ImageNotFound { .. }
            | EngineError::NoSuchVolume(_) => StatusCode::NOT_FOUND,
            EngineError::NameInUse { .. }
            | EngineError::State { .. }
            | EngineError::VolumeInUse { .. }
            | EngineError::UpdateRefused { .. } => StatusCode::CONFLICT,
            EngineError::InvalidFlag { .. }
            | EngineError::InvalidName(_)
            | EngineError::InvalidFilter(_)
            | EngineError::FilterSyntax(_)
            | EngineError::AmbiguousContainer(_)
            | EngineError::InvalidVolume { .. }
            | EngineError::InvalidOption { .. } => StatusCode::BAD_REQUEST,
            EngineError::Network(net) => return net_status(net, err.to_string()),
            // Docker answers 501 for a log driver that cannot be read.
            EngineError::LogsNotReadable { .. } => StatusCode::NOT_IMPLEMENTED,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let message = match &err {
            // Docker's daemon words it so; the CLI turns a 404 on create into a pull.
            EngineError::ImageNotFound { reference, .. } => {
                format!("No such image: {reference}")
            }
            _ => err.to_string(),
        };
        ApiError::new(status, message)
    }
}

/// Docker's daemon answers these network errors so (403 for what its network controller
/// forbids: predefined networks, networks with endpoints, double connects).
fn net_status(err: &NetError, message: String) -> ApiError {
    let status = match err {
        NetError::NetworkNotFound(_) => StatusCode::NOT_FOUND,
        NetError::NetworkExists(_) | NetError::AddressInUse { .. } => StatusCode::CONFLICT,
        NetError::Predefined { .. }
        | NetError::InUse { .. }
        | NetError::AlreadyConnected { .. }
        | NetError::NotConnected { .. } => StatusCode::FORBIDDEN,
        NetError::Invalid { .. } | NetError::Port { .. } => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    ApiError::new(status, message)
}

impl From<NetError> for ApiError {
    fn from(err: NetError) -> ApiError {
        let message = err.to_string();
        net_status(&err, message)
    }
}

impl From<ImageError> for ApiError {
    fn from(err: ImageError) -> ApiError {
        let status = match &err {
            ImageError::NoSuchImage(_) | ImageError::NoSuchLayer { .. } => StatusCode::NOT_FOUND,
            ImageError::Conflict(_) => StatusCode::CONFLICT,
            ImageError::InvalidReference { .. }
            | ImageError::AmbiguousId { .. }
            | ImageError::InvalidFilter(_)
            | ImageError::BadArchive(_)
            | ImageError::BadTar { .. }
            | ImageError::UnsafeEntry { .. }
            | ImageError::BadChange { .. } => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, err.to_string())
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(err: tokio::task::JoinError) -> ApiError {
        ApiError::internal(format!("request handler failed: {err}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_take_dockers_status_codes() {
        let e: ApiError = EngineError::NoSuchContainer("x".into()).into();
        assert_eq!(e.status, StatusCode::NOT_FOUND);
        assert_eq!(e.message, "No such container: x");
        let e: ApiError = EngineError::NameInUse {
            name: "a".into(),
            id: "b".into(),
        }
        .into();
        assert_eq!(e.status, StatusCode::CONFLICT);
        let e: ApiError = ImageError::NoSuchImage("busybox".into()).into();
        assert_eq!(e.status, StatusCode::NOT_FOUND);
        assert_eq!(error_body("boom"), r#"{"message":"boom"}"#);
    }
}
