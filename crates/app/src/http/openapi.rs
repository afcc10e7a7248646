//! The OpenAPI 3.1 description of the REST API, generated from the
//! handlers' `#[utoipa::path]` annotations and the body and view types, and
//! served at `GET /openapi.json`. Each handler lists its success responses
//! and the errors of its own use case; [`ErrorResponses`] adds what every
//! operation of a kind can answer (a body's 400/413/415, a path's 404, a
//! bearer's 401, 500 and 503) and the error envelope with its headers.
//! The coverage test below keeps the document and the route table equal.

use std::sync::OnceLock;

use actix_web::HttpResponse;
use actix_web::http::header::ContentType;
use p_chat_domain::DomainError;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, ParameterIn, PathItem};
use utoipa::openapi::schema::{AllOfBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use super::envelope::Failure;
use super::error::ApiError;
use super::{admin, health, messages, rooms, session, users};

/// The name of the bearer security scheme the handlers refer to.
const BEARER: &str = "bearer";

/// Paths that answer without touching the store (no 503).
const STORELESS: &[&str] = &["/health", "/openapi.json"];

/// The document: every described operation, the schemas they use, the
/// bearer scheme, and the error responses added by [`ErrorResponses`].
#[derive(OpenApi)]
#[openapi(
    info(
        title = "p-chat",
        description = "The p-chat REST API. Every answer is an envelope: \
            `{status: \"Success\", data}` or `{status: \"Error\", error: {code, message}}` \
            (the `/session/*` endpoints answer a failed authentication with the seed's `{}`). \
            The WebSocket (`GET /ws`) and its frames are described in docs/protocol.md."
    ),
    paths(
        health::health,
        health::ready,
        serve,
        session::register,
        session::verify_email,
        session::authorize,
        session::refresh,
        session::logout,
        session::resend_verification,
        session::forgot_password,
        session::reset_password,
        users::me,
        users::rename,
        users::delete,
        users::change_password,
        users::sessions,
        users::end_session,
        users::person,
        admin::users,
        admin::user,
        admin::set_role,
        admin::disable,
        admin::enable,
        admin::invites,
        admin::create_invite,
        admin::revoke_invite,
        rooms::create,
        rooms::mine,
        rooms::search_public,
        rooms::get,
        rooms::update,
        rooms::delete,
        rooms::members,
        rooms::add_member,
        rooms::join,
        rooms::remove_member,
        rooms::change_role,
        messages::events,
        messages::mark_read,
        messages::receipts,
        messages::history,
        messages::send,
        messages::edit,
        messages::delete,
        messages::react,
        messages::unreact,
        messages::search,
        rooms::open_direct,
    ),
    components(schemas(Failure)),
    modifiers(&BearerScheme, &ErrorResponses),
    tags(
        (name = "health", description = "Liveness, readiness and this description"),
        (name = "session", description = "Registration, login and recovery (the seed's `/session/*`)"),
        (name = "users", description = "The caller's account and other users"),
        (name = "admin", description = "Instance administration (administrators only)"),
        (name = "rooms", description = "Rooms, members and direct conversations"),
        (name = "messages", description = "Messages, reactions, read markers, events and search"),
    )
)]
pub struct ApiDoc;

/// `GET /openapi.json`: the document, serialized once per process.
#[utoipa::path(get, path = "/openapi.json", tag = "health",
    responses((status = 200, description = "This OpenAPI 3.1 document", content_type = "application/json", body = Object)))]
pub async fn serve() -> Result<HttpResponse, ApiError> {
    static DOCUMENT: OnceLock<Result<String, String>> = OnceLock::new();
    let document = DOCUMENT.get_or_init(|| ApiDoc::openapi().to_json().map_err(|e| e.to_string()));
    match document {
        Ok(json) => Ok(HttpResponse::Ok()
            .content_type(ContentType::json())
            .body(json.as_str())),
        Err(error) => Err(DomainError::Internal(format!("the OpenAPI document: {error}")).into()),
    }
}

/// Adds the bearer-token scheme (`Authorization: Bearer <access_token>`).
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("JWT")
            .description(Some(
                "The `access_token` of a token set (`/session/authorize`, `/session/refresh`)",
            ))
            .build();
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(BEARER, SecurityScheme::Http(scheme));
    }
}

/// Completes every operation's error responses: the ones a handler lists
/// get the error envelope (and their headers); the ones every operation
/// of a kind can answer are added.
struct ErrorResponses;

impl Modify for ErrorResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let storeless = STORELESS.contains(&path.as_str());
            for operation in operations_mut(item) {
                complete(operation, storeless);
            }
        }
    }
}

/// The operations of a path item, whatever their method.
fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.options.as_mut(),
        item.head.as_mut(),
        item.patch.as_mut(),
        item.trace.as_mut(),
    ]
    .into_iter()
    .flatten()
}

/// Adds the common error responses of `operation` and fills in the bodies.
fn complete(operation: &mut Operation, storeless: bool) {
    let has_in = |place: ParameterIn| {
        operation
            .parameters
            .iter()
            .flatten()
            .any(|parameter| parameter.parameter_in == place)
    };
    let (query, path) = (has_in(ParameterIn::Query), has_in(ParameterIn::Path));
    let body = operation.request_body.is_some();
    let secured = operation
        .security
        .as_ref()
        .is_some_and(|requirements| !requirements.is_empty());
    let mut common: Vec<(&str, String)> = Vec::new();
    if body || query {
        let mut codes = Vec::new();
        if body {
            codes.push("`malformed_json`, `invalid_body`");
        }
        if query {
            codes.push("`invalid_query`");
        }
        common.push((
            "400",
            format!("The input cannot be read: {}", codes.join(", ")),
        ));
    }
    if secured {
        common.push((
            "401",
            "`missing_token`, `invalid_token` (with `WWW-Authenticate`)".into(),
        ));
    }
    if path {
        common.push(("404", "`not_found`: a path segment names nothing".into()));
    }
    if body {
        common.push(("413", "`payload_too_large`: more than 64 KiB".into()));
        common.push((
            "415",
            "`unsupported_media_type`: the body is not `application/json`".into(),
        ));
    }
    common.push(("500", "`internal_error`".into()));
    if !storeless {
        common.push((
            "503",
            "`service_unavailable`: the database does not answer (with `Retry-After`)".into(),
        ));
    }
    let responses = &mut operation.responses.responses;
    for (status, description) in common {
        match responses.get_mut(status) {
            // A handler's own 400 (its fields' codes) or 404 (a room, a
            // message): unreadable input, or an id that is not one, is
            // answered there too.
            Some(RefOr::T(listed))
                if (status == "400" || status == "404") && listed.content.is_empty() =>
            {
                listed.description = format!("{}; {description}", listed.description);
            }
            Some(_) => {}
            None => {
                responses.insert(status.to_owned(), RefOr::T(Response::new(description)));
            }
        }
    }
    for (status, response) in responses.iter_mut() {
        if let RefOr::T(response) = response
            && status.starts_with(['4', '5'])
            && response.content.is_empty()
        {
            fill_error(status, response);
        }
    }
}

/// The error codes a response's description names: its backticked
/// snake_case words. Every error response lists all its codes this way.
fn codes_in(description: &str) -> Vec<&str> {
    description
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|word| {
            !word.is_empty()
                && word
                    .bytes()
                    .all(|byte| byte.is_ascii_lowercase() || byte == b'_')
        })
        .collect()
}

/// The envelope of an error response: `Failure`, with `error.code` one of
/// `codes`.
fn failure_schema(codes: &[&str]) -> RefOr<Schema> {
    let failure = Ref::from_schema_name("Failure");
    if codes.is_empty() {
        return failure.into();
    }
    let code = ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(codes.iter().copied()));
    let detail = ObjectBuilder::new().property("code", code).required("code");
    AllOfBuilder::new()
        .item(failure)
        .item(ObjectBuilder::new().property("error", detail))
        .into()
}

/// Gives an error response the envelope and the headers its status carries.
fn fill_error(status: &str, response: &mut Response) {
    let codes = codes_in(&response.description);
    let mut built = ResponseBuilder::new()
        .description(response.description.clone())
        .content(
            "application/json",
            Content::new(Some(failure_schema(&codes))),
        );
    let header = |kind: Type, description: &str| {
        HeaderBuilder::new()
            .schema(ObjectBuilder::new().schema_type(kind))
            .description(Some(description))
            .build()
    };
    built = match status {
        "401" => built.header(
            "WWW-Authenticate",
            header(Type::String, "The bearer challenge (RFC 6750)"),
        ),
        "405" => built.header("Allow", header(Type::String, "The methods of this path")),
        "429" | "503" => built.header(
            "Retry-After",
            header(Type::Integer, "Seconds to wait before trying again"),
        ),
        _ => built,
    };
    *response = built.build();
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use actix_web::http::Method;

    use super::*;
    use crate::http::routes::RouteTable;

    /// Routes that are not REST and stay out of the document: the WebSocket
    /// upgrade (docs/protocol.md) and the embedded web client.
    const NOT_DESCRIBED: &[(Method, &str)] = &[
        (Method::GET, "/ws"),
        (Method::GET, "/"),
        (Method::GET, "/assets/{file}"),
    ];

    /// (method, path) of every operation of `document`.
    fn described(document: &utoipa::openapi::OpenApi) -> BTreeSet<(String, String)> {
        document
            .paths
            .paths
            .iter()
            .flat_map(|(path, item)| {
                [
                    (Method::GET, &item.get),
                    (Method::PUT, &item.put),
                    (Method::POST, &item.post),
                    (Method::DELETE, &item.delete),
                    (Method::OPTIONS, &item.options),
                    (Method::HEAD, &item.head),
                    (Method::PATCH, &item.patch),
                    (Method::TRACE, &item.trace),
                ]
                .into_iter()
                .filter(|(_, operation)| operation.is_some())
                .map(|(method, _)| (method.to_string(), path.clone()))
            })
            .collect()
    }

    /// (method, path) of every route of `table` that the document must describe.
    fn registered(table: &RouteTable) -> BTreeSet<(String, String)> {
        table
            .operations()
            .into_iter()
            .filter(|operation| !NOT_DESCRIBED.contains(operation))
            .map(|(method, path)| (method.to_string(), path.to_owned()))
            .collect()
    }

    #[test]
    fn every_route_is_described_and_every_description_is_a_route() {
        let routes = registered(&crate::http::routes());
        let document = described(&ApiDoc::openapi());
        let undescribed: Vec<_> = routes.difference(&document).collect();
        let unrouted: Vec<_> = document.difference(&routes).collect();
        assert!(
            undescribed.is_empty(),
            "routes without a description: {undescribed:?}"
        );
        assert!(
            unrouted.is_empty(),
            "descriptions without a route: {unrouted:?}"
        );
    }

    #[test]
    fn the_routes_left_out_of_the_document_exist() {
        let all = crate::http::routes().operations();
        for route in NOT_DESCRIBED {
            assert!(all.contains(route), "{route:?} is not a route any more");
        }
    }

    #[test]
    fn a_route_added_without_a_description_is_caught() {
        async fn nothing() -> &'static str {
            ""
        }
        let table = crate::http::routes().at("/extra", [crate::http::routes::get(nothing)]);
        let missing: Vec<_> = registered(&table)
            .difference(&described(&ApiDoc::openapi()))
            .cloned()
            .collect();
        assert_eq!(missing, [("GET".to_owned(), "/extra".to_owned())]);
    }

    #[test]
    fn the_document_is_openapi_3_1_with_the_bearer_scheme_and_the_envelopes() {
        let json: serde_json::Value =
            serde_json::from_str(&ApiDoc::openapi().to_json().unwrap()).unwrap();
        assert!(json["openapi"].as_str().unwrap().starts_with("3.1"));
        assert_eq!(
            json["components"]["securitySchemes"][BEARER]["scheme"],
            "bearer"
        );
        let send = &json["paths"]["/rooms/{id}/messages"]["post"];
        for status in [
            "201", "400", "401", "404", "413", "415", "429", "500", "503",
        ] {
            assert!(send["responses"][status].is_object(), "send lacks {status}");
        }
        assert_eq!(
            send["responses"]["429"]["content"]["application/json"]["schema"]["allOf"][0]["$ref"],
            "#/components/schemas/Failure"
        );
        assert!(send["responses"]["429"]["headers"]["Retry-After"].is_object());
        assert!(json["paths"]["/health"]["get"]["responses"]["503"].is_null());
    }

    #[test]
    fn an_error_status_enumerates_its_codes() {
        let json: serde_json::Value =
            serde_json::from_str(&ApiDoc::openapi().to_json().unwrap()).unwrap();
        let responses = &json["paths"]["/admin/users/{id}/enable"]["post"]["responses"];
        let code = |status: &str| {
            responses[status]["content"]["application/json"]["schema"]["allOf"][1]["properties"]
                ["error"]["properties"]["code"]["enum"]
                .clone()
        };
        assert_eq!(
            code("403"),
            serde_json::json!(["not_admin", "own_account", "account_deleted"])
        );
        assert_eq!(
            code("404"),
            serde_json::json!(["user_not_found", "not_found"])
        );
        assert_eq!(
            code("401"),
            serde_json::json!(["missing_token", "invalid_token"])
        );
        let rename = &json["paths"]["/users/me"]["patch"]["responses"]["400"];
        assert_eq!(
            rename["content"]["application/json"]["schema"]["allOf"][1]["properties"]["error"]["properties"]
                ["code"]["enum"],
            serde_json::json!(["invalid_display_name", "malformed_json", "invalid_body"])
        );
    }

    #[test]
    fn every_error_response_of_the_envelope_enumerates_its_codes() {
        let json: serde_json::Value =
            serde_json::from_str(&ApiDoc::openapi().to_json().unwrap()).unwrap();
        for (path, item) in json["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                for (status, response) in operation["responses"].as_object().unwrap() {
                    let schema = &response["content"]["application/json"]["schema"];
                    if !status.starts_with(['4', '5'])
                        || schema["$ref"] == "#/components/schemas/Rejected"
                    {
                        continue;
                    }
                    let codes =
                        &schema["allOf"][1]["properties"]["error"]["properties"]["code"]["enum"];
                    assert!(
                        codes.as_array().is_some_and(|codes| !codes.is_empty()),
                        "{method} {path} {status} lists no error code"
                    );
                }
            }
        }
    }

    #[test]
    fn the_codes_of_a_description_are_its_backticked_snake_case_words() {
        assert_eq!(
            codes_in("`room_not_found`, `forbidden`: not `{user}` nor `Retry-After` nor `a/b`"),
            ["room_not_found", "forbidden"]
        );
        assert!(codes_in("no codes here").is_empty());
    }
}
