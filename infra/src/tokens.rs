//! Bearer tokens for the local run: HS256 JWTs signed with a key made when the local run
//! starts, standing in for the identity provider (customers and staff) and for IAM
//! (`admin`, on the stock admin routes).

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{Error, Result};

/// The issuer of every local token (the `iss` claim).
pub const ISSUER: &str = "https://stockroom.local";
/// The audience of customer and staff tokens: the customer routes.
pub const AUDIENCE: &str = "stockroom-local";
/// The audience of admin tokens: the stock admin routes, where IAM signs in AWS.
pub const ADMIN_AUDIENCE: &str = "stockroom-local-admin";
/// How long a token lives unless asked otherwise.
pub const DEFAULT_TTL_SECONDS: u64 = 3600;

/// Who a token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// A customer: acts only for themselves.
    Customer,
    /// Staff: in the staff group, acts for any customer.
    Staff,
    /// A back-office system: what IAM vouches for in AWS; the subject is the session name.
    Admin,
}

/// The HMAC key the local run signs and verifies with.
#[derive(Clone)]
pub struct SigningKey(Vec<u8>);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(..)")
    }
}

impl SigningKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        SigningKey(rand::random::<[u8; 32]>().to_vec())
    }

    pub fn from_bytes(bytes: &[u8]) -> Self {
        SigningKey(bytes.to_vec())
    }

    /// Where the running local run keeps its key, for `./infra/token` (git ignores it).
    pub fn path() -> PathBuf {
        crate::project_root().join(".stockroom").join("jwt.key")
    }

    /// Writes the key as hex, readable by this user only.
    pub fn save(&self, path: &Path) -> Result<()> {
        let hex: String = self.0.iter().map(|b| format!("{b:02x}")).collect();
        let context = format!("writing {}", path.display());
        std::fs::write(path, hex).map_err(Error::io(context.clone()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                .map_err(Error::io(context))?;
        }
        Ok(())
    }

    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(Error::io(format!("reading {}", path.display())))?;
        let text = text.trim();
        let bytes = (0..text.len())
            .step_by(2)
            .map(|i| {
                text.get(i..i + 2)
                    .and_then(|b| u8::from_str_radix(b, 16).ok())
            })
            .collect::<Option<Vec<u8>>>()
            .filter(|bytes| !bytes.is_empty())
            .ok_or_else(|| Error::Setup(format!("{} holds no key", path.display())))?;
        Ok(SigningKey(bytes))
    }

    fn encoding(&self) -> EncodingKey {
        EncodingKey::from_secret(&self.0)
    }

    fn decoding(&self) -> DecodingKey {
        DecodingKey::from_secret(&self.0)
    }
}

/// The claims a local token carries, as an identity provider would issue them.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    aud: String,
    iat: u64,
    exp: u64,
    #[serde(rename = "cognito:groups", skip_serializing_if = "Option::is_none")]
    groups: Option<Vec<String>>,
}

/// A token for `kind` named `subject`, valid for `ttl_seconds` from now (0: already
/// expired, for tests).
pub fn mint(key: &SigningKey, kind: TokenKind, subject: &str, ttl_seconds: u64) -> Result<String> {
    let issued = now();
    let claims = Claims {
        iss: ISSUER.into(),
        sub: subject.into(),
        aud: match kind {
            TokenKind::Customer | TokenKind::Staff => AUDIENCE.into(),
            TokenKind::Admin => ADMIN_AUDIENCE.into(),
        },
        iat: issued,
        // A token of no lifetime is already past: exp is checked with no leeway.
        exp: (issued + ttl_seconds).saturating_sub(u64::from(ttl_seconds == 0)),
        groups: (kind == TokenKind::Staff).then(|| vec![stockroom::identity::STAFF_GROUP.into()]),
    };
    sign(key, &claims)
}

/// Any claims signed with `key` (tests make tokens `mint` would not: another audience,
/// another issuer, no subject).
pub fn sign(key: &SigningKey, claims: &impl Serialize) -> Result<String> {
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &key.encoding())
        .map_err(|e| Error::Setup(format!("signing a token: {e}")))
}

/// Seconds since the Unix epoch, as `exp` and `iat` count.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// The token's claims if `key` signed it, it has not expired, and it is from the local
/// issuer for `audience`: every claim, as the JWT has it.
pub fn verify(
    key: &SigningKey,
    token: &str,
    audience: &str,
) -> Result<Map<String, Value>, Refused> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 0;
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    jsonwebtoken::decode::<Map<String, Value>>(token, &key.decoding(), &validation)
        .map(|data| data.claims)
        .map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            Refused(
                match e.kind() {
                    ErrorKind::ExpiredSignature => "the token has expired",
                    ErrorKind::InvalidSignature => "the token's signature does not verify",
                    ErrorKind::InvalidAudience => "the token is not for these routes",
                    ErrorKind::InvalidIssuer => "the token is from another issuer",
                    ErrorKind::MissingRequiredClaim(_) => "the token lacks a required claim",
                    _ => "the token is not a readable JWT",
                }
                .into(),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minted_token_verifies_for_its_audience_only() {
        let key = SigningKey::generate();
        let token = mint(&key, TokenKind::Staff, "sam", 60).unwrap();
        let claims = verify(&key, &token, AUDIENCE).unwrap();
        assert_eq!(claims["sub"], "sam");
        assert_eq!(claims["iss"], ISSUER);
        assert_eq!(claims["cognito:groups"], serde_json::json!(["staff"]));
        assert!(verify(&key, &token, ADMIN_AUDIENCE).is_err());
        let admin = mint(&key, TokenKind::Admin, "ops", 60).unwrap();
        assert!(verify(&key, &admin, ADMIN_AUDIENCE).is_ok());
        assert!(verify(&key, &admin, AUDIENCE).is_err());
    }

    #[test]
    fn expired_and_foreign_tokens_are_refused() {
        let key = SigningKey::generate();
        let expired = mint(&key, TokenKind::Customer, "ann", 0).unwrap();
        assert_eq!(
            verify(&key, &expired, AUDIENCE).unwrap_err().0,
            "the token has expired"
        );
        let foreign = mint(&SigningKey::generate(), TokenKind::Customer, "ann", 60).unwrap();
        assert!(verify(&key, &foreign, AUDIENCE).is_err());
        assert!(verify(&key, "not.a.jwt", AUDIENCE).is_err());
    }

    #[test]
    fn a_saved_key_loads_back() {
        let key = SigningKey::generate();
        let dir = std::env::temp_dir().join(format!("stockroom-key-{}", ulid::Ulid::generate()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("jwt.key");
        key.save(&path).unwrap();
        let loaded = SigningKey::load(&path).unwrap();
        let token = mint(&loaded, TokenKind::Customer, "ann", 60).unwrap();
        assert!(verify(&key, &token, AUDIENCE).is_ok());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
