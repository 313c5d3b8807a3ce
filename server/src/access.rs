//! Who may call what: Triton's restricted API categories (`--http-restricted-api`,
//! `--grpc-restricted-protocol`: a header with a fixed value) and bearer tokens
//! (`--auth-token-file`) on everything but health checks.
//!
//! Both front ends classify each endpoint into a [`Category`] and ask [`Access::check`]; a
//! restricted endpoint without its header is refused as Triton refuses it (REST 403, gRPC
//! UNAVAILABLE), a missing or unknown token gets REST 401 / gRPC UNAUTHENTICATED. With an admin
//! listener (`--admin-port`), the `--admin-api` categories are refused the same way on the
//! public listeners; the admin listener's own rules ([`Access::admin`]) keep only the tokens.

use std::path::Path;

/// Why an access setting could not be used.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("{flag} '{spec}': {reason}")]
    Spec {
        flag: &'static str,
        spec: String,
        reason: String,
    },
    #[error("--auth-token-file {path}: {reason}")]
    Tokens { path: String, reason: String },
}

/// Triton's API categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    Health,
    Metadata,
    Inference,
    SharedMemory,
    ModelConfig,
    ModelRepository,
    Statistics,
    Trace,
    Logging,
}

impl Category {
    const ALL: [Category; 9] = [
        Category::Health,
        Category::Metadata,
        Category::Inference,
        Category::SharedMemory,
        Category::ModelConfig,
        Category::ModelRepository,
        Category::Statistics,
        Category::Trace,
        Category::Logging,
    ];

    /// The category's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Category::Health => "health",
            Category::Metadata => "metadata",
            Category::Inference => "inference",
            Category::SharedMemory => "shared-memory",
            Category::ModelConfig => "model-config",
            Category::ModelRepository => "model-repository",
            Category::Statistics => "statistics",
            Category::Trace => "trace",
            Category::Logging => "logging",
        }
    }

    fn parse(s: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.name() == s)
    }

    /// The category of a REST endpoint, by path; None for paths that are no endpoint.
    pub fn of_rest_path(path: &str) -> Option<Category> {
        let p = path.trim_end_matches('/');
        let segments: Vec<&str> = p.split('/').skip(1).collect();
        match segments.as_slice() {
            ["v2"] => Some(Category::Metadata),
            ["v2", "health", ..] => Some(Category::Health),
            ["v2", "repository", ..] => Some(Category::ModelRepository),
            ["v2", "models", "stats"] => Some(Category::Statistics),
            ["v2", "trace", ..] => Some(Category::Trace),
            ["v1", "models", ..] => Some(Category::Inference),
            ["v2", "models", _, rest @ ..] => {
                let rest = match rest {
                    ["versions", _, tail @ ..] => tail,
                    other => other,
                };
                match rest {
                    [] => Some(Category::Metadata),
                    ["ready"] => Some(Category::Health),
                    ["config"] => Some(Category::ModelConfig),
                    ["stats"] => Some(Category::Statistics),
                    ["infer"] | ["explain"] => Some(Category::Inference),
                    ["trace", "setting"] => Some(Category::Trace),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// The category of a gRPC method (the last segment of its path).
    pub fn of_grpc_method(method: &str) -> Category {
        match method {
            "ServerLive" | "ServerReady" | "ModelReady" | "Check" | "Watch" => Category::Health,
            "ServerMetadata" | "ModelMetadata" => Category::Metadata,
            "ModelInfer" | "ModelStreamInfer" => Category::Inference,
            "ModelConfig" => Category::ModelConfig,
            "ModelStatistics" => Category::Statistics,
            "RepositoryIndex" | "RepositoryModelLoad" | "RepositoryModelUnload" => {
                Category::ModelRepository
            }
            "TraceSetting" => Category::Trace,
            "LogSettings" => Category::Logging,
            _ => Category::SharedMemory,
        }
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// A restricted category without its header (and value).
    Restricted { header: String },
    /// A category served only on the admin listener.
    AdminOnly,
    /// No bearer token, or one that is not on the list.
    Unauthenticated,
}

impl From<Denied> for crate::error::ServerError {
    fn from(d: Denied) -> Self {
        match d {
            Denied::Restricted { .. } | Denied::AdminOnly => {
                crate::error::ServerError::Restricted(d.message())
            }
            Denied::Unauthenticated => crate::error::ServerError::Unauthenticated(d.message()),
        }
    }
}

impl Denied {
    pub fn message(&self) -> String {
        match self {
            Denied::Restricted { header } => {
                format!("This API is restricted, expecting header '{header}'")
            }
            Denied::AdminOnly => {
                "This API is served only on the admin listener (--admin-port)".into()
            }
            Denied::Unauthenticated => {
                "a valid bearer token is required (Authorization: Bearer <token>)".into()
            }
        }
    }
}

/// One front end's access rules.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// (category, header name in lower case, value).
    restricted: Vec<(Category, String, String)>,
    tokens: Vec<String>,
    /// Categories this listener does not serve at all (they are the admin listener's).
    admin_only: Vec<Category>,
}

impl Access {
    /// Rules from `<categories>:<header>=<value>` specs (of `flag`) and a token file.
    pub fn new(
        flag: &'static str,
        specs: &[String],
        token_file: Option<&Path>,
    ) -> Result<Access, AccessError> {
        let mut restricted: Vec<(Category, String, String)> = Vec::new();
        for spec in specs {
            let bad = |reason: &str| AccessError::Spec {
                flag,
                spec: spec.clone(),
                reason: reason.to_string(),
            };
            let (cats, kv) = spec
                .split_once(':')
                .ok_or_else(|| bad("expected <categories>:<header>=<value>"))?;
            let (header, value) = kv
                .split_once('=')
                .ok_or_else(|| bad("expected <header>=<value> after ':'"))?;
            let header = header.trim().to_ascii_lowercase();
            if header.is_empty() || axum::http::HeaderName::from_bytes(header.as_bytes()).is_err() {
                return Err(bad("the header name is not a valid HTTP header name"));
            }
            for c in cats.split(',').map(str::trim) {
                let cat = Category::parse(c).ok_or_else(|| {
                    bad(&format!(
                        "unknown category '{c}'; categories: {}",
                        Category::ALL.map(Category::name).join(", ")
                    ))
                })?;
                if restricted.iter().any(|(k, _, _)| *k == cat) {
                    return Err(bad(&format!("category '{c}' is restricted twice")));
                }
                restricted.push((cat, header.clone(), value.to_string()));
            }
        }
        let tokens = match token_file {
            None => Vec::new(),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| AccessError::Tokens {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })?;
                let tokens: Vec<String> = text
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(str::to_string)
                    .collect();
                if tokens.is_empty() {
                    return Err(AccessError::Tokens {
                        path: path.display().to_string(),
                        reason: "holds no token".into(),
                    });
                }
                tokens
            }
        };
        Ok(Access {
            restricted,
            tokens,
            admin_only: Vec::new(),
        })
    }

    /// Leaves `categories` (names, as on the command line) to the admin listener.
    pub fn without(mut self, categories: &[String]) -> Result<Access, AccessError> {
        for c in categories
            .iter()
            .map(|c| c.trim())
            .filter(|c| !c.is_empty())
        {
            let cat = Category::parse(c).ok_or_else(|| AccessError::Spec {
                flag: "--admin-api",
                spec: c.to_string(),
                reason: format!(
                    "unknown category; categories: {}",
                    Category::ALL.map(Category::name).join(", ")
                ),
            })?;
            if !self.admin_only.contains(&cat) {
                self.admin_only.push(cat);
            }
        }
        Ok(self)
    }

    /// The admin listener's rules: every category, behind the same tokens.
    pub fn admin(&self) -> Access {
        Access {
            restricted: Vec::new(),
            tokens: self.tokens.clone(),
            admin_only: Vec::new(),
        }
    }

    /// Whether every request passes (nothing configured).
    pub fn is_open(&self) -> bool {
        self.restricted.is_empty() && self.tokens.is_empty() && self.admin_only.is_empty()
    }

    /// Checks a request of `category`; `header(name)` reads one of its headers (lower-case
    /// name).
    pub fn check<'a>(
        &self,
        category: Category,
        header: impl Fn(&str) -> Option<&'a str>,
    ) -> Result<(), Denied> {
        if self.admin_only.contains(&category) {
            return Err(Denied::AdminOnly);
        }
        if let Some((_, name, value)) = self.restricted.iter().find(|(c, _, _)| *c == category) {
            if !header(name).is_some_and(|v| constant_time_eq(v.as_bytes(), value.as_bytes())) {
                return Err(Denied::Restricted {
                    header: name.clone(),
                });
            }
        }
        if !self.tokens.is_empty() && category != Category::Health {
            let given = header("authorization")
                .and_then(|v| {
                    v.strip_prefix("Bearer ")
                        .or_else(|| v.strip_prefix("bearer "))
                })
                .map(str::trim);
            let ok = given.is_some_and(|g| {
                // Every token is compared, so the time taken does not tell which one matched.
                self.tokens.iter().fold(false, |acc, t| {
                    constant_time_eq(g.as_bytes(), t.as_bytes()) | acc
                })
            });
            if !ok {
                return Err(Denied::Unauthenticated);
            }
        }
        Ok(())
    }
}

/// Equal contents, in a time that depends only on the lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<&'a str> {
        move |n| pairs.iter().find(|(k, _)| *k == n).map(|(_, v)| *v)
    }

    #[test]
    fn rest_paths_and_grpc_methods_fall_into_tritons_categories() {
        use Category::*;
        for (path, cat) in [
            ("/v2", Some(Metadata)),
            ("/v2/health/ready", Some(Health)),
            ("/v2/models/m", Some(Metadata)),
            ("/v2/models/m/versions/1", Some(Metadata)),
            ("/v2/models/m/ready", Some(Health)),
            ("/v2/models/m/versions/1/config", Some(ModelConfig)),
            ("/v2/models/m/infer", Some(Inference)),
            ("/v2/models/m/versions/2/explain", Some(Inference)),
            ("/v1/models/m:predict", Some(Inference)),
            ("/v2/models/stats", Some(Statistics)),
            ("/v2/models/m/stats", Some(Statistics)),
            ("/v2/repository/models/m/load", Some(ModelRepository)),
            ("/v2/trace/setting", Some(Trace)),
            ("/v2/models/m/trace/setting", Some(Trace)),
            ("/nope", None),
        ] {
            assert_eq!(Category::of_rest_path(path), cat, "{path}");
        }
        assert_eq!(Category::of_grpc_method("ModelInfer"), Inference);
        assert_eq!(
            Category::of_grpc_method("RepositoryModelLoad"),
            ModelRepository
        );
        assert_eq!(Category::of_grpc_method("Check"), Health);
    }

    #[test]
    fn admin_only_categories_are_refused_here_and_served_by_the_admin_rules() {
        let a = Access::new("--http-restricted-api", &[], None)
            .and_then(|a| a.without(&["model-repository".into(), " logging".into()]))
            .expect("valid");
        assert!(!a.is_open());
        let none = headers(&[]);
        assert_eq!(
            a.check(Category::ModelRepository, &none),
            Err(Denied::AdminOnly)
        );
        assert_eq!(a.check(Category::Logging, &none), Err(Denied::AdminOnly));
        assert_eq!(a.check(Category::Inference, &none), Ok(()));
        let admin = a.admin();
        assert!(admin.is_open());
        assert_eq!(admin.check(Category::ModelRepository, &none), Ok(()));
        let err = Access::new("--http-restricted-api", &[], None)
            .and_then(|a| a.without(&["repository".into()]))
            .expect_err("unknown category");
        assert!(err.to_string().contains("--admin-api"), "{err}");
    }

    #[test]
    fn restricted_categories_need_their_header() {
        let a = Access::new(
            "--http-restricted-api",
            &["model-repository,statistics:Admin-Key=s3cret".into()],
            None,
        )
        .expect("valid");
        let none = headers(&[]);
        assert_eq!(a.check(Category::Inference, &none), Ok(()));
        assert_eq!(
            a.check(Category::ModelRepository, &none),
            Err(Denied::Restricted {
                header: "admin-key".into()
            })
        );
        let wrong = headers(&[("admin-key", "guess")]);
        assert!(a.check(Category::Statistics, &wrong).is_err());
        let right = headers(&[("admin-key", "s3cret")]);
        assert_eq!(a.check(Category::Statistics, &right), Ok(()));
    }

    #[test]
    fn bad_specs_name_the_flag_and_the_problem() {
        for (spec, want) in [
            ("model-repository", "expected <categories>"),
            ("bogus:k=v", "unknown category 'bogus'"),
            ("health,health:k=v", "restricted twice"),
            ("health:=v", "header name"),
        ] {
            let e = Access::new("--http-restricted-api", &[spec.into()], None)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("--http-restricted-api") && e.contains(want),
                "{spec}: {e}"
            );
        }
    }

    #[test]
    fn bearer_tokens_guard_everything_but_health() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("tokens");
        std::fs::write(&file, "# tokens\nalpha\n\nbeta\n").expect("write");
        let a = Access::new("--http-restricted-api", &[], Some(&file)).expect("valid");
        assert_eq!(a.check(Category::Health, headers(&[])), Ok(()));
        assert_eq!(
            a.check(Category::Inference, headers(&[])),
            Err(Denied::Unauthenticated)
        );
        let ok = [("authorization", "Bearer beta")];
        assert_eq!(a.check(Category::Inference, headers(&ok)), Ok(()));
        let bad = [("authorization", "Bearer gamma")];
        assert!(a.check(Category::Metadata, headers(&bad)).is_err());
        std::fs::write(&file, "\n# nothing\n").expect("write");
        assert!(Access::new("--http-restricted-api", &[], Some(&file)).is_err());
    }
}
