//! The metrics listener on `METRICS_ADDRESS`: a small actix-web server of
//! its own, apart from the API's, answering `GET /metrics` in Prometheus's
//! text format and nothing else (other methods 405, other paths 404).

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::http::header;
use actix_web::{App, HttpResponse, HttpServer, web};
use metrics_exporter_prometheus::PrometheusHandle;
use p_chat_persistence::postgres::PgStore;

/// The path scraped.
pub const PATH: &str = "/metrics";
/// The content type of Prometheus's text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// The content type of the refusals.
const PLAIN_TEXT: &str = "text/plain; charset=utf-8";
/// Scrapes are small and rare: one worker serves them.
const WORKERS: usize = 1;
/// How long shutdown waits for a scrape in flight.
const SHUTDOWN_TIMEOUT_SECONDS: u64 = 2;

/// What a scrape reads: the recorder, and the pool whose state is sampled
/// at each scrape (PostgreSQL only).
#[derive(Clone)]
pub struct Scrape {
    /// Renders every metric recorded.
    pub handle: PrometheusHandle,
    /// The PostgreSQL pool, if the server runs on it.
    pub store: Option<PgStore>,
}

/// The metrics server on `listener`; it serves once polled (spawned) and
/// stops through its handle.
pub fn serve(listener: TcpListener, scrape: Scrape) -> std::io::Result<Server> {
    let scrape = web::Data::new(scrape);
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(scrape.clone())
            .service(
                web::resource(PATH)
                    .route(web::get().to(metrics))
                    .default_service(web::to(method_not_allowed)),
            )
            .default_service(web::to(not_found))
    })
    .workers(WORKERS)
    .disable_signals()
    .shutdown_timeout(SHUTDOWN_TIMEOUT_SECONDS)
    .listen(listener)?
    .run())
}

/// `GET /metrics`: samples the pool, then renders everything.
async fn metrics(scrape: web::Data<Scrape>) -> HttpResponse {
    if let Some(store) = &scrape.store {
        store.record_pool_state();
    }
    HttpResponse::Ok()
        .content_type(CONTENT_TYPE)
        .body(scrape.handle.render())
}

async fn method_not_allowed() -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header((header::ALLOW, "GET"))
        .content_type(PLAIN_TEXT)
        .body("405 method not allowed: GET /metrics only\n")
}

async fn not_found() -> HttpResponse {
    HttpResponse::NotFound()
        .content_type(PLAIN_TEXT)
        .body("404 not found: metrics are at GET /metrics\n")
}
