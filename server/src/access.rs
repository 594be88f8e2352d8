//! Who may call the server and what each client may do: bearer tokens kept
//! as SHA-256 hashes, an access level and optional package limits per
//! client, and address allow-lists. Checked by a gRPC interceptor before
//! any handler runs; refusals are logged with the address, never the token.

use std::net::IpAddr;
use std::sync::Arc;

use pbpersist::storage::protocol::{failure::Kind, refusal};
use sha2::Digest;
use tonic::{Request, Status};

/// What a client may do, each level including the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Access {
    /// Load objects and read the log.
    ReadOnly,
    /// Also commit and store schemas.
    ReadWrite,
    /// Also collect garbage and pack.
    Admin,
}

/// One client the server knows.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Client {
    /// A name for logs.
    pub name: String,
    /// The SHA-256 of the client's token, in hex (`pbpersist-server
    /// new-token` makes a token and its hash).
    pub token_sha256: String,
    /// What it may do.
    pub access: Access,
    /// If set, the only protobuf packages whose types it may write
    /// (`shop` allows `shop.Order` and `shop.v1.Order`).
    #[serde(default)]
    pub packages: Option<Vec<String>>,
}

impl Access {
    /// The right's name, as the configuration file spells it.
    pub fn name(self) -> &'static str {
        match self {
            Access::ReadOnly => "read-only",
            Access::ReadWrite => "read-write",
            Access::Admin => "admin",
        }
    }
}

impl Client {
    /// Whether this client may write an object of the type `type_name`.
    pub fn may_write_type(&self, type_name: &str) -> bool {
        self.packages.as_ref().is_none_or(|packages| {
            packages.iter().any(|p| type_name.strip_prefix(p.as_str()).is_some_and(|rest| rest.starts_with('.')))
        })
    }

    /// Whether this client may store a `.proto` file of package `package`:
    /// one of its packages or a package inside one (`shop` allows `shop`
    /// and `shop.v1`).
    pub fn may_write_package(&self, package: &str) -> bool {
        self.packages.as_ref().is_none_or(|packages| {
            packages
                .iter()
                .any(|p| package.strip_prefix(p.as_str()).is_some_and(|rest| rest.is_empty() || rest.starts_with('.')))
        })
    }
}

/// The hash a configuration file keeps for `token`.
pub fn hash_token(token: &str) -> String {
    sha2::Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// The caller of a request, as the gate admitted it.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    /// `None` when the server has no clients configured: everyone may do
    /// what the server allows.
    pub(crate) client: Option<Arc<Client>>,
}

impl Caller {
    pub(crate) fn access(&self) -> Access {
        self.client.as_ref().map_or(Access::Admin, |c| c.access)
    }

    pub(crate) fn name(&self) -> &str {
        self.client.as_ref().map_or("anyone", |c| c.name.as_str())
    }

    /// Refuses a call that needs more than the caller may do.
    pub(crate) fn require(&self, access: Access, what: &str) -> Result<(), Status> {
        self.lacks(access, what).map_or(Ok(()), |why| {
            tracing::warn!(client = self.name(), call = what, "refused: not allowed for this client");
            Err(refusal(Kind::PermissionDenied, why))
        })
    }

    /// Why the caller may not do `what`, which needs `access`, if it may not.
    pub(crate) fn lacks(&self, access: Access, what: &str) -> Option<String> {
        (self.access() < access).then(|| {
            format!(
                "client {} may not {what}: that takes the {} right, and it has {}",
                self.name(),
                access.name(),
                self.access().name()
            )
        })
    }

    pub(crate) fn may_write_type(&self, type_name: &str) -> bool {
        self.client.as_ref().is_none_or(|c| c.may_write_type(type_name))
    }

    pub(crate) fn may_write_package(&self, package: &str) -> bool {
        self.client.as_ref().is_none_or(|c| c.may_write_package(package))
    }

    /// The packages the caller may write, for messages.
    pub(crate) fn packages(&self) -> String {
        match self.client.as_ref().and_then(|c| c.packages.as_ref()) {
            Some(p) => p.join(", "),
            None => "any".to_owned(),
        }
    }

    /// Who the caller is counted as for per-client limits: its name, or
    /// its address when the server asks for no tokens.
    pub(crate) fn who(&self, address: Option<std::net::SocketAddr>) -> String {
        match (&self.client, address) {
            (Some(c), _) => c.name.clone(),
            (None, Some(a)) => a.ip().to_string(),
            (None, None) => "anyone".to_owned(),
        }
    }
}

/// The gate every call passes.
#[derive(Debug, Clone)]
pub(crate) struct Gate {
    /// Clients by token hash; empty means no tokens are asked for.
    clients: Vec<(String, Arc<Client>)>,
    /// Addresses allowed to call; empty means any.
    allow: Vec<ipnet::IpNet>,
    metrics: Arc<crate::Metrics>,
}

impl Gate {
    pub(crate) fn new(clients: Vec<Client>, allow: Vec<ipnet::IpNet>, metrics: Arc<crate::Metrics>) -> Self {
        let clients = clients.into_iter().map(|c| (c.token_sha256.to_ascii_lowercase(), Arc::new(c))).collect();
        Gate { clients, allow, metrics }
    }

    /// Admits a request or refuses it; an admitted one carries its `Caller`.
    pub(crate) fn admit(&self, request: Request<()>) -> Result<Request<()>, Status> {
        let admitted = self.check(request);
        if admitted.is_err() {
            self.metrics.refused();
        }
        admitted
    }

    fn check(&self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let address = request.remote_addr();
        if !self.allow.is_empty() {
            let ip = address.map(|a| canonical(a.ip()));
            if !ip.is_some_and(|ip| self.allow.iter().any(|net| net.contains(&ip))) {
                tracing::warn!(address = ?address, "refused: address not allowed");
                return Err(refusal(Kind::PermissionDenied, "this address may not call the server"));
            }
        }
        let client = if self.clients.is_empty() {
            None
        } else {
            let token = request
                .metadata()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "));
            let Some(token) = token else {
                tracing::warn!(address = ?address, "refused: no token");
                return Err(refusal(Kind::Unauthenticated, "a bearer token is required"));
            };
            let hash = hash_token(token);
            match self.clients.iter().find(|(h, _)| *h == hash) {
                Some((_, client)) => Some(client.clone()),
                None => {
                    tracing::warn!(address = ?address, "refused: unknown token");
                    return Err(refusal(Kind::Unauthenticated, "the token is not known"));
                }
            }
        };
        request.extensions_mut().insert(Caller { client });
        Ok(request)
    }
}

/// IPv4 addresses reached over IPv6 as IPv4, so one allow-list entry
/// covers both.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The caller an admitted request carries; a request the gate did not see
/// is refused rather than trusted.
pub(crate) fn caller<T>(request: &Request<T>) -> Result<Caller, Status> {
    request.extensions().get::<Caller>().cloned().ok_or_else(|| refusal(Kind::Backend, "the request passed no gate"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packages_limit_types_by_whole_name_parts() {
        let c = Client {
            name: "shop".into(),
            token_sha256: hash_token("t"),
            access: Access::ReadWrite,
            packages: Some(vec!["shop".into()]),
        };
        assert!(c.may_write_type("shop.Order"));
        assert!(c.may_write_type("shop.v1.Order"));
        assert!(!c.may_write_type("shopping.Order"));
        assert!(!c.may_write_type("pbpersist.Root"));
        assert!(c.may_write_package("shop"));
        assert!(c.may_write_package("shop.v1"));
        assert!(!c.may_write_package("shopping"));
        assert!(!c.may_write_package(""));
    }
}
