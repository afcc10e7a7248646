//! The browser client, embedded in the binary: `cargo run` alone serves it,
//! with no build step and nothing fetched at run time.

use actix_web::http::header::{self, CacheControl, CacheDirective};
use actix_web::{HttpResponse, web};

use crate::http::error::ApiError;

/// One embedded file.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static str,
}

/// Every file of the client, by the path it is served at.
const ASSETS: &[Asset] = &[
    Asset {
        path: "index.html",
        content_type: "text/html; charset=utf-8",
        body: include_str!("../web/index.html"),
    },
    Asset {
        path: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../web/app.js"),
    },
    Asset {
        path: "account.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../web/account.js"),
    },
    Asset {
        path: "api.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../web/api.js"),
    },
    Asset {
        path: "socket.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../web/socket.js"),
    },
    Asset {
        path: "text.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../web/text.js"),
    },
    Asset {
        path: "style.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../web/style.css"),
    },
];

/// Scripts, styles and connections only from this server. `'self'` also
/// covers the WebSocket to this server (`ws:`/`wss:` of the same host, as
/// CSP Level 3 says and current browsers do): a script injected into the
/// page could not send data to another host over a WebSocket either.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

fn serve(asset: &Asset) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(asset.content_type)
        .insert_header(CacheControl(vec![CacheDirective::NoCache]))
        .insert_header((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(asset.body)
}

/// `GET /`: the client's page.
pub async fn index() -> HttpResponse {
    serve(&ASSETS[0])
}

/// `GET /assets/{file}`: the client's scripts and styles.
pub async fn asset(path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    ASSETS
        .iter()
        .find(|asset| asset.path == path.as_str())
        .map(serve)
        .ok_or(ApiError::NotFound)
}
