//! The HTTP adapter: one module per resource, plus the envelope, the error
//! mapping and the bearer-token extractor they share. Handlers extract, call
//! one service method and wrap the result; rules live in the domain.

mod admin;
pub mod auth;
pub mod client_ip;
pub mod envelope;
pub mod error;
mod health;
mod messages;
pub mod request_id;
mod rooms;
mod session;
mod users;
pub mod views;

use actix_web::{HttpResponse, Resource, web};

use self::error::ApiError;

/// The largest request body accepted (CONTRACT section 1).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Registers every route, and the extractor settings that turn malformed
/// input into the error envelope instead of actix's plain-text defaults.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(error::json_config())
        .app_data(error::query_config())
        .app_data(error::path_config())
        .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
        .service(resource("/health").route(web::get().to(health::health)))
        .service(resource("/ready").route(web::get().to(health::ready)))
        .service(resource("/session/register").route(web::post().to(session::register)))
        .service(resource("/session/emailVerify").route(web::get().to(session::verify_email)))
        .service(resource("/session/authorize").route(web::post().to(session::authorize)))
        .service(resource("/session/refresh").route(web::post().to(session::refresh)))
        .service(resource("/session/logout").route(web::post().to(session::logout)))
        .service(
            resource("/session/resendVerification")
                .route(web::post().to(session::resend_verification)),
        )
        .service(
            resource("/session/forgotPassword").route(web::post().to(session::forgot_password)),
        )
        .service(resource("/session/resetPassword").route(web::post().to(session::reset_password)))
        .service(
            resource("/users/me")
                .route(web::get().to(users::me))
                .route(web::patch().to(users::rename))
                .route(web::delete().to(users::delete)),
        )
        .service(resource("/users/me/password").route(web::post().to(users::change_password)))
        .service(resource("/users/me/sessions").route(web::get().to(users::sessions)))
        .service(resource("/users/me/sessions/{id}").route(web::delete().to(users::end_session)))
        // After every /users/me route, which would take "me" for an id.
        .service(resource("/users/{id}").route(web::get().to(users::person)))
        .service(resource("/admin/users").route(web::get().to(admin::users)))
        .service(
            resource("/admin/users/{id}")
                .route(web::get().to(admin::user))
                .route(web::patch().to(admin::set_role)),
        )
        .service(resource("/admin/users/{id}/disable").route(web::post().to(admin::disable)))
        .service(resource("/admin/users/{id}/enable").route(web::post().to(admin::enable)))
        .service(
            resource("/admin/invites")
                .route(web::get().to(admin::invites))
                .route(web::post().to(admin::create_invite)),
        )
        .service(resource("/admin/invites/{id}").route(web::delete().to(admin::revoke_invite)))
        .service(
            resource("/rooms")
                .route(web::post().to(rooms::create))
                .route(web::get().to(rooms::mine)),
        )
        // Before /rooms/{id}, which would take "public" for an id.
        .service(resource("/rooms/public").route(web::get().to(rooms::search_public)))
        .service(
            resource("/rooms/{id}")
                .route(web::get().to(rooms::get))
                .route(web::patch().to(rooms::update))
                .route(web::delete().to(rooms::delete)),
        )
        .service(
            resource("/rooms/{id}/members")
                .route(web::get().to(rooms::members))
                .route(web::post().to(rooms::add_member)),
        )
        .service(
            resource("/rooms/{id}/members/{user}")
                .route(web::put().to(rooms::join))
                .route(web::delete().to(rooms::remove_member))
                .route(web::patch().to(rooms::change_role)),
        )
        .service(resource("/rooms/{id}/events").route(web::get().to(messages::events)))
        .service(resource("/rooms/{id}/read").route(web::put().to(messages::mark_read)))
        .service(resource("/rooms/{id}/receipts").route(web::get().to(messages::receipts)))
        .service(
            resource("/rooms/{id}/messages")
                .route(web::get().to(messages::history))
                .route(web::post().to(messages::send)),
        )
        .service(
            resource("/rooms/{id}/messages/{message_id}")
                .route(web::patch().to(messages::edit))
                .route(web::delete().to(messages::delete)),
        )
        .service(
            resource("/rooms/{id}/messages/{message_id}/reactions/{emoji}")
                .route(web::put().to(messages::react))
                .route(web::delete().to(messages::unreact)),
        )
        .service(resource("/search/messages").route(web::get().to(messages::search)))
        .service(resource("/dms").route(web::post().to(rooms::open_direct)))
        .service(resource("/ws").route(web::get().to(crate::ws::upgrade)))
        .service(resource("/").route(web::get().to(crate::web::index)))
        .service(resource("/assets/{file}").route(web::get().to(crate::web::asset)))
        .default_service(web::to(not_found));
}

/// A resource whose unsupported methods answer 405 in the error envelope.
fn resource(path: &str) -> Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}

async fn method_not_allowed() -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed)
}
