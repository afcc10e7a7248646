//! The route table: every (method, path template) the server answers is
//! registered through it, so the set can be listed (actix cannot list its
//! routes) and compared with the OpenAPI document, and each resource's
//! other methods answer 405 with the `Allow` header built from the same set.

use actix_web::http::Method;
use actix_web::http::header::HeaderValue;
use actix_web::{FromRequest, Handler, Responder, Route, web};

use super::error::ApiError;

/// One method of a resource and the handler that answers it.
pub struct Endpoint {
    method: Method,
    route: Route,
}

impl Endpoint {
    /// `method` answered by `handler`.
    fn new<F, Args>(method: Method, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        Self {
            route: web::method(method.clone()).to(handler),
            method,
        }
    }
}

/// `GET` answered by `handler`.
pub fn get<F, Args>(handler: F) -> Endpoint
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    Endpoint::new(Method::GET, handler)
}

/// `POST` answered by `handler`.
pub fn post<F, Args>(handler: F) -> Endpoint
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    Endpoint::new(Method::POST, handler)
}

/// `PUT` answered by `handler`.
pub fn put<F, Args>(handler: F) -> Endpoint
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    Endpoint::new(Method::PUT, handler)
}

/// `PATCH` answered by `handler`.
pub fn patch<F, Args>(handler: F) -> Endpoint
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    Endpoint::new(Method::PATCH, handler)
}

/// `DELETE` answered by `handler`.
pub fn delete<F, Args>(handler: F) -> Endpoint
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    Endpoint::new(Method::DELETE, handler)
}

/// A path template with its methods.
struct Entry {
    path: &'static str,
    endpoints: Vec<Endpoint>,
}

/// Every route of the server, in registration (and so matching) order.
#[derive(Default)]
pub struct RouteTable {
    entries: Vec<Entry>,
}

impl RouteTable {
    /// Adds the resource at `path` (an actix path template, `{name}` for a
    /// segment) answering `endpoints`.
    pub fn at(mut self, path: &'static str, endpoints: impl IntoIterator<Item = Endpoint>) -> Self {
        self.entries.push(Entry {
            path,
            endpoints: endpoints.into_iter().collect(),
        });
        self
    }

    /// Every (method, path template) registered.
    pub fn operations(&self) -> Vec<(Method, &'static str)> {
        self.entries
            .iter()
            .flat_map(|entry| {
                entry
                    .endpoints
                    .iter()
                    .map(|endpoint| (endpoint.method.clone(), entry.path))
            })
            .collect()
    }

    /// Registers every resource on `cfg`; a resource's other methods answer
    /// 405 in the error envelope, with `Allow` listing its methods.
    pub fn install(self, cfg: &mut web::ServiceConfig) {
        for entry in self.entries {
            let allow = allow_header(&entry.endpoints);
            let mut resource =
                web::resource(entry.path).default_service(web::to(move || {
                    let allow = allow.clone();
                    async move {
                        Err::<actix_web::HttpResponse, _>(ApiError::MethodNotAllowed { allow })
                    }
                }));
            for endpoint in entry.endpoints {
                resource = resource.route(endpoint.route);
            }
            cfg.service(resource);
        }
    }
}

/// The `Allow` value of a resource: its methods, comma-separated (RFC 9110 §10.2.1).
fn allow_header(endpoints: &[Endpoint]) -> HeaderValue {
    let methods: Vec<&str> = endpoints
        .iter()
        .map(|endpoint| endpoint.method.as_str())
        .collect();
    HeaderValue::from_str(&methods.join(", ")).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn nothing() -> &'static str {
        ""
    }

    #[test]
    fn the_table_lists_every_method_of_every_path_in_order() {
        let table = RouteTable::default()
            .at("/a", [get(nothing), post(nothing)])
            .at("/b/{id}", [delete(nothing)]);
        assert_eq!(
            table.operations(),
            [
                (Method::GET, "/a"),
                (Method::POST, "/a"),
                (Method::DELETE, "/b/{id}")
            ]
        );
    }

    #[test]
    fn allow_lists_the_methods_of_the_resource() {
        assert_eq!(
            allow_header(&[put(nothing), patch(nothing), delete(nothing)]),
            "PUT, PATCH, DELETE"
        );
    }
}
