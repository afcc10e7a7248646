//! The JSON body extractor: actix's `web::Json` (its limit, content type
//! and error mapping from `error::json_config`) plus the one rule serde's
//! derived structs lack: the body must be a JSON object. Derived structs
//! also accept an array of their fields in order (`[null, null]`), which
//! no client means and the API description does not allow.

use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::error::JsonPayloadError;
use actix_web::{FromRequest, HttpRequest, web};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::error::json_error;

/// A request body that is a JSON object read as `T`.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T> Deref for Json<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, actix_web::Error>>>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let object = web::Json::<Map<String, Value>>::from_request(request, payload);
        Box::pin(async move {
            let web::Json(object) = object.await?;
            T::deserialize(Value::Object(object))
                .map(Json)
                .map_err(|error| json_error(JsonPayloadError::Deserialize(error)).into())
        })
    }
}

#[cfg(test)]
mod tests {
    use actix_web::http::StatusCode;
    use actix_web::http::header::CONTENT_TYPE;
    use actix_web::test::TestRequest;
    use serde::Deserialize;

    use super::*;
    use crate::http::error::json_config;

    #[derive(Debug, Deserialize)]
    struct Body {
        a: Option<i64>,
        b: Option<String>,
    }

    async fn extract(body: &'static str) -> Result<Json<Body>, actix_web::Error> {
        let (request, mut payload) = TestRequest::post()
            .insert_header((CONTENT_TYPE, "application/json"))
            .app_data(json_config())
            .set_payload(body)
            .to_http_parts();
        Json::<Body>::from_request(&request, &mut payload).await
    }

    #[actix_web::test]
    async fn an_object_is_read_as_the_struct() {
        let body = extract(r#"{"a": 1, "b": "x"}"#).await.unwrap();
        assert_eq!((body.a, body.b.as_deref()), (Some(1), Some("x")));
    }

    #[actix_web::test]
    async fn an_array_of_the_fields_is_refused_like_any_other_wrong_type() {
        for body in ["[null, null]", "[1, \"x\"]", "null", "3"] {
            let error = extract(body).await.unwrap_err();
            assert_eq!(
                error.as_response_error().status_code(),
                StatusCode::BAD_REQUEST,
                "{body}"
            );
        }
    }

    #[actix_web::test]
    async fn a_field_of_the_wrong_type_is_refused() {
        let error = extract(r#"{"a": "one"}"#).await.unwrap_err();
        assert_eq!(
            error.as_response_error().status_code(),
            StatusCode::BAD_REQUEST
        );
    }
}
