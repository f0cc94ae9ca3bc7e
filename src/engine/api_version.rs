//! Which Engine API version the service speaks, and putting it on every
//! request.
//!
//! An engine answers a request in the shape of the API version its path
//! names (`/v1.51/containers/json`); a request without one gets the
//! engine's newest shape, which a later engine may change (API 1.52 removed
//! fields of events and inspect). The service therefore names a version on
//! every request: the engine's own when it is older than the newest the
//! suite proves, else that newest. bollard 0.21 builds its paths without the
//! version it negotiates, so the prefix is put on its requests here, by a
//! request modifier; the stats stream, read without bollard
//! (`engine::stats_stream`), names the same version itself.

use std::fmt;

use bollard::BollardRequest;

/// An Engine API version, `major.minor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiVersion {
    pub major: u32,
    pub minor: u32,
}

/// The newest API version the service is proven against: Docker 28.5 in
/// the platform lane (docs/platforms.md). Raise it only with a lane run on
/// an engine that speaks the new version.
pub const NEWEST_TESTED: ApiVersion = ApiVersion {
    major: 1,
    minor: 51,
};

impl ApiVersion {
    /// `1.41`; `None` for anything else.
    pub fn parse(text: &str) -> Option<ApiVersion> {
        let (major, minor) = text.trim().split_once('.')?;
        Some(ApiVersion {
            major: major.parse().ok()?,
            minor: minor.parse().ok()?,
        })
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl From<ApiVersion> for bollard::ClientVersion {
    fn from(version: ApiVersion) -> Self {
        bollard::ClientVersion {
            major_version: version.major as usize,
            minor_version: version.minor as usize,
        }
    }
}

/// The version to speak with an engine whose `/version` says it speaks
/// `newest` down to `oldest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// The engine's newest, or [`NEWEST_TESTED`] when the engine is newer.
    Tested(ApiVersion),
    /// The engine no longer speaks [`NEWEST_TESTED`]: its oldest, which
    /// the service has not been proven against.
    Untested(ApiVersion),
}

impl Choice {
    pub fn version(self) -> ApiVersion {
        match self {
            Choice::Tested(version) | Choice::Untested(version) => version,
        }
    }
}

pub fn choose(newest: ApiVersion, oldest: Option<ApiVersion>) -> Choice {
    let wanted = newest.min(NEWEST_TESTED);
    match oldest {
        Some(oldest) if oldest > wanted => Choice::Untested(oldest),
        _ => Choice::Tested(wanted),
    }
}

/// `request` with its path naming `version` (or no version, for the probe
/// that asks the engine which it speaks), whatever prefix it had before.
pub fn with_version(mut request: BollardRequest, version: Option<ApiVersion>) -> BollardRequest {
    let uri = request.uri();
    let target = uri.path_and_query().map_or("/", |p| p.as_str());
    let target = match version {
        Some(version) => format!("/v{version}{}", unversioned(target)),
        None => unversioned(target).to_string(),
    };
    let mut parts = uri.clone().into_parts();
    // A path bollard built always parses again; were it not to, the request
    // goes out as bollard made it.
    if let Ok(target) = target.parse() {
        parts.path_and_query = Some(target);
        if let Ok(uri) = hyper::Uri::from_parts(parts) {
            *request.uri_mut() = uri;
        }
    }
    request
}

/// `target` without a leading `/v<major>.<minor>`.
fn unversioned(target: &str) -> &str {
    let Some(rest) = target.strip_prefix("/v") else {
        return target;
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    if ApiVersion::parse(&rest[..end]).is_some() {
        &rest[end..]
    } else {
        target
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> ApiVersion {
        ApiVersion::parse(text).unwrap()
    }

    #[test]
    fn speaks_the_engine_s_version_up_to_the_newest_tested() {
        // Docker 20.10, Podman's compatible API.
        assert_eq!(
            choose(v("1.41"), Some(v("1.12"))),
            Choice::Tested(v("1.41"))
        );
        // Docker 26.1, 28.5; Docker 29.0 still speaks 1.51.
        assert_eq!(
            choose(v("1.45"), Some(v("1.24"))),
            Choice::Tested(v("1.45"))
        );
        assert_eq!(
            choose(v("1.51"), Some(v("1.24"))),
            Choice::Tested(v("1.51"))
        );
        assert_eq!(
            choose(v("1.52"), Some(v("1.44"))),
            Choice::Tested(v("1.51"))
        );
        assert_eq!(choose(v("1.51"), None), Choice::Tested(v("1.51")));
        // An engine that no longer speaks it: its oldest, said to be untested.
        assert_eq!(
            choose(v("1.60"), Some(v("1.55"))),
            Choice::Untested(v("1.55"))
        );
    }

    #[test]
    fn versions_compare_by_number_not_text() {
        assert!(v("1.9") < v("1.41"));
        assert!(v("2.0") > v("1.99"));
        assert_eq!(ApiVersion::parse("1"), None);
        assert_eq!(ApiVersion::parse("one.two"), None);
        assert_eq!(v("1.41").to_string(), "1.41");
    }

    fn target(uri: &str, version: Option<ApiVersion>) -> String {
        let request = hyper::Request::builder()
            .uri(uri)
            .body(bollard::body_full(Default::default()))
            .unwrap();
        with_version(request, version).uri().to_string()
    }

    #[test]
    fn every_request_names_the_version_once() {
        let unix = "unix://2f7661722f72756e2f646f636b65722e736f636b";
        assert_eq!(
            target(
                &format!("{unix}/containers/json?all=false"),
                Some(v("1.41"))
            ),
            format!("{unix}/v1.41/containers/json?all=false")
        );
        // Were bollard to put its own version on, it is replaced, not doubled.
        assert_eq!(
            target(&format!("{unix}/v1.53/info"), Some(v("1.45"))),
            format!("{unix}/v1.45/info")
        );
        assert_eq!(
            target(&format!("{unix}/v1.53/version"), None),
            format!("{unix}/version")
        );
        // A path that only starts like a version is left whole.
        assert_eq!(
            target(&format!("{unix}/volumes"), Some(v("1.41"))),
            format!("{unix}/v1.41/volumes")
        );
    }
}
