//! The HTTP adapter: one module per resource, plus the envelope, the error
//! mapping and the bearer-token extractor they share. Handlers extract, call
//! one service method and wrap the result; rules live in the domain.

mod admin;
pub mod auth;
pub mod body;
pub mod client_ip;
pub mod envelope;
pub mod error;
mod health;
mod messages;
pub mod openapi;
pub mod paths;
pub mod request_id;
mod rooms;
pub mod routes;
mod session;
mod users;
pub mod views;

use actix_web::{HttpResponse, web};

use self::error::ApiError;
use self::routes::{RouteTable, delete, get, patch, post, put};

/// The largest request body accepted (CONTRACT section 1).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Registers every route, and the extractor settings that turn malformed
/// input into the error envelope instead of actix's plain-text defaults.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(error::json_config())
        .app_data(error::query_config())
        .app_data(error::path_config())
        .app_data(web::PayloadConfig::new(MAX_BODY_BYTES));
    routes().install(cfg);
    cfg.default_service(web::to(not_found));
}

/// Every route of the server: the one list `configure` installs and the
/// OpenAPI coverage test compares with the document (a route registered
/// any other way would escape both).
pub fn routes() -> RouteTable {
    RouteTable::default()
        .at("/health", [get(health::health)])
        .at("/ready", [get(health::ready)])
        .at("/openapi.json", [get(openapi::serve)])
        .at("/session/register", [post(session::register)])
        .at("/session/emailVerify", [get(session::verify_email)])
        .at("/session/authorize", [post(session::authorize)])
        .at("/session/refresh", [post(session::refresh)])
        .at("/session/logout", [post(session::logout)])
        .at(
            "/session/resendVerification",
            [post(session::resend_verification)],
        )
        .at("/session/forgotPassword", [post(session::forgot_password)])
        .at("/session/resetPassword", [post(session::reset_password)])
        .at(
            "/users/me",
            [get(users::me), patch(users::rename), delete(users::delete)],
        )
        .at("/users/me/password", [post(users::change_password)])
        .at("/users/me/sessions", [get(users::sessions)])
        .at("/users/me/sessions/{id}", [delete(users::end_session)])
        // After every /users/me route, which would take "me" for an id.
        .at("/users/{id}", [get(users::person)])
        .at("/admin/users", [get(admin::users)])
        .at(
            "/admin/users/{id}",
            [get(admin::user), patch(admin::set_role)],
        )
        .at("/admin/users/{id}/disable", [post(admin::disable)])
        .at("/admin/users/{id}/enable", [post(admin::enable)])
        .at(
            "/admin/invites",
            [get(admin::invites), post(admin::create_invite)],
        )
        .at("/admin/invites/{id}", [delete(admin::revoke_invite)])
        .at("/rooms", [post(rooms::create), get(rooms::mine)])
        // Before /rooms/{id}, which would take "public" for an id.
        .at("/rooms/public", [get(rooms::search_public)])
        .at(
            "/rooms/{id}",
            [get(rooms::get), patch(rooms::update), delete(rooms::delete)],
        )
        .at(
            "/rooms/{id}/members",
            [get(rooms::members), post(rooms::add_member)],
        )
        .at(
            "/rooms/{id}/members/{user}",
            [
                put(rooms::join),
                delete(rooms::remove_member),
                patch(rooms::change_role),
            ],
        )
        .at("/rooms/{id}/events", [get(messages::events)])
        .at("/rooms/{id}/read", [put(messages::mark_read)])
        .at("/rooms/{id}/receipts", [get(messages::receipts)])
        .at(
            "/rooms/{id}/messages",
            [get(messages::history), post(messages::send)],
        )
        .at(
            "/rooms/{id}/messages/{message_id}",
            [patch(messages::edit), delete(messages::delete)],
        )
        .at(
            "/rooms/{id}/messages/{message_id}/reactions/{emoji}",
            [put(messages::react), delete(messages::unreact)],
        )
        .at("/search/messages", [get(messages::search)])
        .at("/dms", [post(rooms::open_direct)])
        .at("/ws", [get(crate::ws::upgrade)])
        .at("/", [get(crate::web::index)])
        .at("/assets/{file}", [get(crate::web::asset)])
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}
