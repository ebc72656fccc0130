//! JWT verification (seed 001: HS256 only; scopes `read`, `write`, `admin`).
//!
//! `jsonwebtoken` does the parsing and claim validation; its cryptography is pluggable, and the
//! only algorithm this server accepts is HS256, so we install a provider that implements exactly
//! that with `hmac`/`sha2` instead of linking RSA/EC/EdDSA backends we would refuse anyway.

use std::collections::HashSet;
use std::sync::Once;

use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::signature::{self, Signer, Verifier};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, EncodingKey, Validation};
use serde::{Deserialize, Deserializer, Serialize};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Why a token was refused. Never carries the token itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token (send `Authorization: Bearer <jwt>` or `?token=<jwt>`)")]
    MissingToken,
    #[error("invalid token: {0}")]
    InvalidToken(String),
    #[error("token has expired")]
    Expired,
    #[error("token lacks the `{needed}` scope")]
    MissingScope { needed: Scope },
    #[error("token is not valid for workspace `{workspace}`")]
    WorkspaceNotAllowed { workspace: String },
}

impl AuthError {
    /// 401 for an unusable token, 403 for a valid token that is not allowed to do this.
    pub fn status(&self) -> u16 {
        match self {
            AuthError::MissingScope { .. } | AuthError::WorkspaceNotAllowed { .. } => 403,
            _ => 401,
        }
    }
}

/// A permission. `admin` implies `write`, and `write` implies `read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Read,
    Write,
    Admin,
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
        })
    }
}

/// The claims this server reads. Unknown claims are ignored.
#[derive(Debug, Clone, Deserialize)]
pub struct Claims {
    /// Unix seconds; required (`jsonwebtoken` rejects a token without it, with a clear error).
    #[serde(default)]
    pub exp: Option<u64>,
    #[serde(default)]
    pub sub: Option<String>,
    /// `"read write"` (RFC 8693 style) or `["read", "write"]`.
    #[serde(default, deserialize_with = "scopes")]
    pub scope: Vec<String>,
    /// When present, the only workspaces this token may open.
    #[serde(default)]
    pub workspaces: Option<Vec<String>>,
}

fn scopes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Text(String),
        List(Vec<String>),
    }
    Ok(match Option::<Either>::deserialize(d)? {
        None => Vec::new(),
        Some(Either::Text(s)) => s.split_whitespace().map(str::to_owned).collect(),
        Some(Either::List(v)) => v,
    })
}

/// A verified token: what its bearer may do, and until when.
#[derive(Debug, Clone)]
pub struct Grant {
    scopes: HashSet<Scope>,
    workspaces: Option<Vec<String>>,
    /// Unix seconds after which the token (and any socket it opened) is no longer valid.
    pub expires_at: u64,
    pub subject: Option<String>,
}

impl Grant {
    pub fn has(&self, scope: Scope) -> bool {
        self.scopes.iter().any(|s| *s >= scope)
    }

    pub fn require(&self, scope: Scope) -> Result<(), AuthError> {
        if self.has(scope) {
            Ok(())
        } else {
            Err(AuthError::MissingScope { needed: scope })
        }
    }

    pub fn may_open(&self, workspace: &str) -> bool {
        self.workspaces.as_ref().is_none_or(|list| list.iter().any(|w| w == workspace))
    }

    /// Scope and workspace check in one, for a request on `workspace`.
    pub fn authorize(&self, workspace: &str, scope: Scope) -> Result<(), AuthError> {
        self.require(scope)?;
        if self.may_open(workspace) {
            Ok(())
        } else {
            Err(AuthError::WorkspaceNotAllowed { workspace: workspace.to_owned() })
        }
    }
}

/// Verifies HS256 tokens against the server's secret.
#[derive(Clone)]
pub struct Authenticator {
    key: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Authenticator { key: <redacted> }")
    }
}

impl Authenticator {
    pub fn new(secret: &[u8]) -> Self {
        install_provider();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp"]);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = false;
        // A little slack for clock skew between the token issuer and this server.
        validation.leeway = 5;
        Authenticator { key: DecodingKey::from_secret(secret), validation }
    }

    pub fn verify(&self, token: &str) -> Result<Grant, AuthError> {
        let data = jsonwebtoken::decode::<Claims>(token.trim(), &self.key, &self.validation).map_err(|e| {
            match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                ErrorKind::InvalidSignature => AuthError::InvalidToken("bad signature".into()),
                ErrorKind::InvalidAlgorithm => AuthError::InvalidToken("only HS256 is accepted".into()),
                ErrorKind::MissingRequiredClaim(c) => AuthError::InvalidToken(format!("missing `{c}` claim")),
                ErrorKind::ImmatureSignature => AuthError::InvalidToken("token not valid yet (`nbf`)".into()),
                // Everything else (bad base64, unknown `alg` such as `none`, malformed JSON) is
                // reported without detail: the token is unusable, and its content is not echoed.
                _ => AuthError::InvalidToken("malformed token or unsupported algorithm".into()),
            }
        })?;
        let mut scopes = HashSet::new();
        for s in &data.claims.scope {
            match s.as_str() {
                "read" => scopes.insert(Scope::Read),
                "write" => scopes.insert(Scope::Write),
                "admin" => scopes.insert(Scope::Admin),
                _ => false, // scopes meant for other services are not an error
            };
        }
        Ok(Grant {
            scopes,
            workspaces: data.claims.workspaces,
            expires_at: data.claims.exp.unwrap_or(0),
            subject: data.claims.sub,
        })
    }
}

/// Signs a token with `secret` (HS256). For tests, tools and the bench; the server never issues tokens.
pub fn sign_token(secret: &[u8], claims: &serde_json::Value) -> String {
    install_provider();
    jsonwebtoken::encode(&jsonwebtoken::Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(secret))
        .expect("HS256 signing with an HMAC key cannot fail")
}

fn install_provider() {
    static ONCE: Once = Once::new();
    static PROVIDER: CryptoProvider = CryptoProvider {
        signer_factory: new_signer,
        verifier_factory: new_verifier,
        key_utils: KeyUtils::new_unimplemented(),
    };
    // An `Err` means another provider was installed first; any provider verifies HS256 correctly.
    ONCE.call_once(|| {
        let _ = PROVIDER.install_default();
    });
}

struct Hs256(HmacSha256);

impl Signer<Vec<u8>> for Hs256 {
    fn try_sign(&self, msg: &[u8]) -> Result<Vec<u8>, signature::Error> {
        let mut mac = self.0.clone();
        mac.update(msg);
        Ok(mac.finalize().into_bytes().to_vec())
    }
}

impl Verifier<Vec<u8>> for Hs256 {
    fn verify(&self, msg: &[u8], sig: &Vec<u8>) -> Result<(), signature::Error> {
        let mut mac = self.0.clone();
        mac.update(msg);
        // Constant-time comparison.
        mac.verify_slice(sig).map_err(|_| signature::Error::new())
    }
}

impl JwtSigner for Hs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}

impl JwtVerifier for Hs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}

fn new_signer(alg: &Algorithm, key: &EncodingKey) -> jsonwebtoken::errors::Result<Box<dyn JwtSigner>> {
    if *alg != Algorithm::HS256 || key.family() != AlgorithmFamily::Hmac {
        return Err(ErrorKind::InvalidAlgorithm.into());
    }
    let mac = HmacSha256::new_from_slice(key.as_bytes()).map_err(|_| ErrorKind::InvalidKeyFormat)?;
    Ok(Box::new(Hs256(mac)))
}

fn new_verifier(alg: &Algorithm, key: &DecodingKey) -> jsonwebtoken::errors::Result<Box<dyn JwtVerifier>> {
    if *alg != Algorithm::HS256 || key.family() != AlgorithmFamily::Hmac {
        return Err(ErrorKind::InvalidAlgorithm.into());
    }
    let mac = HmacSha256::new_from_slice(key.try_get_as_bytes()?).map_err(|_| ErrorKind::InvalidKeyFormat)?;
    Ok(Box::new(Hs256(mac)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> u64 {
        jsonwebtoken::get_current_timestamp()
    }

    #[test]
    fn scope_string_and_array_are_both_accepted_and_admin_implies_write() {
        let auth = Authenticator::new(b"s3cret");
        let a = auth.verify(&sign_token(b"s3cret", &json!({"exp": now() + 60, "scope": "read admin"}))).unwrap();
        assert!(a.has(Scope::Write) && a.has(Scope::Read));
        let b = auth.verify(&sign_token(b"s3cret", &json!({"exp": now() + 60, "scope": ["read"]}))).unwrap();
        assert!(b.has(Scope::Read) && !b.has(Scope::Write));
    }

    #[test]
    fn wrong_secret_and_missing_exp_are_refused() {
        let auth = Authenticator::new(b"s3cret");
        let bad = sign_token(b"other", &json!({"exp": now() + 60, "scope": "read"}));
        assert!(matches!(auth.verify(&bad), Err(AuthError::InvalidToken(_))));
        let no_exp = sign_token(b"s3cret", &json!({"scope": "read"}));
        assert!(matches!(auth.verify(&no_exp), Err(AuthError::InvalidToken(m)) if m.contains("exp")));
    }
}
