//! The agents' dashboard, served by the product itself on the HTTP API
//! (same origin as the REST routes): `GET /` the page, `GET
//! /assets/{version}/{file}` its files (embedded in this binary, plain ES
//! modules and CSS: no build step), `GET /config.json` where the WebSocket
//! API is.
//!
//! The version in asset paths is a hash of every file, so a file's URL
//! changes whenever any file does: assets are cached for a year
//! (`immutable`), the page and the configuration never. Every answer
//! carries a strict Content Security Policy (no inline script or style,
//! connections only to this origin and the WebSocket API).

use http::{Method, StatusCode};
use lambda_http::{Body, Error, Request, Response};
use sha2::{Digest, Sha256};

use domain::config::{ConfigError, Env};

/// The dashboard's files, by name.
const FILES: &[(&str, &str, &str)] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/app.js"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/api.js"),
    ),
    (
        "admin.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/admin.js"),
    ),
    (
        "render.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/render.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../assets/style.css"),
    ),
];

const INDEX: &str = include_str!("../assets/index.html");

/// Where the page's files are, in `index.html`.
const VERSION_MARK: &str = "{{VERSION}}";

pub struct State {
    version: String,
    index: String,
    config: String,
    csp: String,
}

impl State {
    /// `DASHBOARD_WS_URL`: the WebSocket API the page connects to
    /// (`wss://…/{stage}` in AWS, `ws://127.0.0.1:3001` locally).
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let ws_url = env.required("DASHBOARD_WS_URL")?.to_owned();
        if !(ws_url.starts_with("wss://") || ws_url.starts_with("ws://")) {
            return Err(ConfigError::invalid(
                "DASHBOARD_WS_URL",
                "must be a ws:// or wss:// URL",
            ));
        }
        Ok(Self::new(&ws_url))
    }

    pub fn new(ws_url: &str) -> Self {
        let mut hash = Sha256::new();
        hash.update(INDEX.as_bytes());
        for (name, _, text) in FILES {
            hash.update(name.as_bytes());
            hash.update(text.as_bytes());
        }
        let version = hex::encode(&hash.finalize()[..6]);
        let ws_origin = origin(ws_url);
        Self {
            index: INDEX.replace(VERSION_MARK, &version),
            config: serde_json::json!({"ws_url": ws_url, "version": version}).to_string(),
            csp: format!(
                "default-src 'none'; script-src 'self'; style-src 'self'; \
                 img-src 'self' blob: data:; media-src 'self' blob:; font-src 'self'; \
                 connect-src 'self' {ws_origin}; manifest-src 'self'; \
                 base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
            ),
            version,
        }
    }

    /// The hash in the page's asset paths.
    pub fn version(&self) -> &str {
        &self.version
    }

    fn file(&self, path: &str) -> Option<(&'static str, &'static str, bool)> {
        let rest = path.strip_prefix("/assets/")?;
        let (version, name) = rest.split_once('/')?;
        FILES
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, kind, text)| (*kind, *text, version == self.version))
    }
}

/// `scheme://host[:port]` of a URL, for the CSP.
fn origin(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.split('/').next().unwrap_or(rest);
            format!("{scheme}://{host}")
        }
        None => url.to_owned(),
    }
}

pub async fn handle(state: &State, req: Request) -> Result<Response<Body>, Error> {
    Ok(answer(state, req.method(), req.uri().path()))
}

/// The answer to `method path`.
pub fn answer(state: &State, method: &Method, path: &str) -> Response<Body> {
    if method != Method::GET && method != Method::HEAD {
        return plain(state, StatusCode::METHOD_NOT_ALLOWED, "GET only");
    }
    let (status, kind, body, cache) = match path {
        "/" | "/index.html" => (
            StatusCode::OK,
            "text/html; charset=utf-8",
            state.index.clone(),
            "no-cache",
        ),
        "/config.json" => (
            StatusCode::OK,
            "application/json",
            state.config.clone(),
            "no-store",
        ),
        _ => match state.file(path) {
            // The current version's file never changes under its URL.
            Some((kind, text, true)) => (
                StatusCode::OK,
                kind,
                text.to_owned(),
                "public, max-age=31536000, immutable",
            ),
            // A page from before a deploy asks for its own version: it gets
            // today's file, not kept by caches.
            Some((kind, text, false)) => (StatusCode::OK, kind, text.to_owned(), "no-cache"),
            None => return plain(state, StatusCode::NOT_FOUND, "not found"),
        },
    };
    let body = if method == Method::HEAD {
        String::new()
    } else {
        body
    };
    with_headers(state, Response::builder().status(status), kind, cache, body)
}

fn plain(state: &State, status: StatusCode, text: &str) -> Response<Body> {
    with_headers(
        state,
        Response::builder().status(status),
        "text/plain; charset=utf-8",
        "no-store",
        text.to_owned(),
    )
}

fn with_headers(
    state: &State,
    builder: http::response::Builder,
    kind: &str,
    cache: &str,
    body: String,
) -> Response<Body> {
    builder
        .header("content-type", kind)
        .header("cache-control", cache)
        .header("content-security-policy", &state.csp)
        .header("x-content-type-options", "nosniff")
        .header("referrer-policy", "no-referrer")
        .header("x-frame-options", "DENY")
        .header(
            "permissions-policy",
            "camera=(), microphone=(), geolocation=()",
        )
        .body(Body::from(body))
        .unwrap_or_else(|_| Response::new(Body::from("")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'a>(r: &'a Response<Body>, name: &str) -> &'a str {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    fn body(r: &Response<Body>) -> String {
        match r.body() {
            Body::Text(t) => t.clone(),
            Body::Binary(b) => String::from_utf8_lossy(b).into_owned(),
            Body::Empty => String::new(),
            _ => String::new(),
        }
    }

    #[test]
    fn the_page_names_versioned_files_that_are_served_for_a_year() {
        let s = State::new("wss://abc.execute-api.ap-south-1.amazonaws.com/prod");
        let page = answer(&s, &Method::GET, "/");
        assert_eq!(page.status(), 200);
        assert_eq!(header(&page, "cache-control"), "no-cache");
        let html = body(&page);
        assert!(!html.contains(VERSION_MARK));
        for (name, kind, _) in FILES {
            let path = format!("/assets/{}/{name}", s.version());
            if name.ends_with(".css") || *name == "app.js" {
                assert!(html.contains(&path), "{path} in the page");
            }
            let r = answer(&s, &Method::GET, &path);
            assert_eq!(r.status(), 200, "{path}");
            assert_eq!(header(&r, "content-type"), *kind);
            assert!(header(&r, "cache-control").contains("immutable"));
        }
        let old = answer(&s, &Method::GET, "/assets/000000000000/app.js");
        assert_eq!(header(&old, "cache-control"), "no-cache");
        assert_eq!(answer(&s, &Method::GET, "/assets/x/evil.js").status(), 404);
        assert_eq!(answer(&s, &Method::GET, "/../Cargo.toml").status(), 404);
        assert_eq!(answer(&s, &Method::POST, "/").status(), 405);
    }

    #[test]
    fn a_strict_policy_allows_only_our_origin_and_the_websocket_api() {
        let s = State::new("wss://abc.execute-api.ap-south-1.amazonaws.com/prod");
        let csp = header(&answer(&s, &Method::GET, "/"), "content-security-policy").to_owned();
        assert!(csp.contains("script-src 'self';"), "{csp}");
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
        assert!(csp.contains("connect-src 'self' wss://abc.execute-api.ap-south-1.amazonaws.com;"));
        let cfg: serde_json::Value =
            serde_json::from_str(&body(&answer(&s, &Method::GET, "/config.json"))).unwrap();
        assert_eq!(
            cfg["ws_url"],
            "wss://abc.execute-api.ap-south-1.amazonaws.com/prod"
        );
        // No inline script or style in the page itself.
        let html = body(&answer(&s, &Method::GET, "/"));
        assert!(
            !html.contains("<script>") && !html.contains("style="),
            "{html}"
        );
    }
}
