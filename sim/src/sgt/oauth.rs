//! `POST /oauth2/token`: the authorization-code grant with PKCE (S256) and the refresh-token
//! grant, answering in the OAuth2 shapes (RFC 6749 §5.1 and §5.2), not the API's envelope.
//!
//! PKCE is checked with the same `sha2` and `base64` crates the client's `sgt::oauth` uses.

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::{RawJson, Shared, SharedState};
use crate::{epoch_millis, lock};

const SCOPE: &str = "devices:read devices:write telemetry:read events:write";

fn oauth_error(error: &str, description: &str) -> RawJson {
    RawJson {
        status: StatusCode::BAD_REQUEST,
        body: json!({ "error": error, "error_description": description }),
    }
}

/// `POST /oauth2/token` (form-encoded).
pub(crate) async fn token(State(s): SharedState, body: Bytes) -> RawJson {
    let Ok(form) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body) else {
        return oauth_error(
            "invalid_request",
            "The body must be application/x-www-form-urlencoded.",
        );
    };
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    match field("grant_type") {
        None => oauth_error("invalid_request", "grant_type is required."),
        Some("authorization_code") => {
            let (Some(code), Some(verifier), Some(_redirect_uri), Some(client_id)) = (
                field("code"),
                field("code_verifier"),
                field("redirect_uri"),
                field("client_id"),
            ) else {
                return oauth_error(
                    "invalid_request",
                    "code, code_verifier, redirect_uri and client_id are required.",
                );
            };
            let mut data = lock(&s.data);
            let Some(challenge) = data.auth_codes.get(code) else {
                return oauth_error(
                    "invalid_grant",
                    "Unknown or already used authorization code.",
                );
            };
            if pkce_s256(verifier) != *challenge {
                return oauth_error(
                    "invalid_grant",
                    "code_verifier does not match the code_challenge.",
                );
            }
            data.auth_codes.remove(code);
            drop(data);
            let refresh = format!("sgt_rt_{}", s.random_token(32));
            lock(&s.data)
                .refresh_tokens
                .insert(refresh.clone(), client_id.to_owned());
            issue(&s, client_id, &refresh)
        }
        Some("refresh_token") => {
            let Some(refresh) = field("refresh_token") else {
                return oauth_error("invalid_request", "refresh_token is required.");
            };
            let client_id = lock(&s.data).refresh_tokens.get(refresh).cloned();
            match client_id {
                Some(client_id) => issue(&s, &client_id, refresh),
                None => oauth_error("invalid_grant", "Unknown or revoked refresh token."),
            }
        }
        Some(_) => oauth_error(
            "unsupported_grant_type",
            "grant_type must be authorization_code or refresh_token.",
        ),
    }
}

/// A new access token (accepted by the API until the token TTL has passed), with `refresh`.
fn issue(s: &Shared, client_id: &str, refresh: &str) -> RawJson {
    let ttl_secs = s.token_ttl.as_secs();
    let exp = epoch_millis() / 1000 + ttl_secs;
    let header = base64url(br#"{"alg":"RS256","kid":"sgt-sim","typ":"JWT"}"#);
    let payload = base64url(
        json!({
            "sub": "usr_sim",
            "tenant": s.tenant,
            "client_id": client_id,
            "exp": exp,
            "jti": s.random_token(16),
        })
        .to_string()
        .as_bytes(),
    );
    let signature = base64url(&sha256(format!("{header}.{payload}:{}", s.seed).as_bytes()));
    let access = format!("{header}.{payload}.{signature}");
    let until = Instant::now()
        .checked_add(s.token_ttl)
        .unwrap_or_else(Instant::now);
    lock(&s.data).access_tokens.insert(access.clone(), until);
    RawJson {
        status: StatusCode::OK,
        body: json!({
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": ttl_secs,
            "refresh_token": refresh,
            "scope": Value::from(SCOPE),
        }),
    }
}

/// The PKCE S256 challenge of a verifier: `BASE64URL(SHA256(verifier))`, unpadded.
pub(crate) fn pkce_s256(verifier: &str) -> String {
    base64url(&sha256(verifier.as_bytes()))
}

/// Unpadded base64url (RFC 4648 §5).
pub(crate) fn base64url(data: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

/// SHA-256.
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(data).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn sha256_matches_the_fips_vectors() {
        assert_eq!(
            hex(&sha256(b"")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex(&sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            hex(&sha256(
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
            )),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
        let million = vec![b'a'; 1_000_000];
        assert_eq!(
            hex(&sha256(&million)),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
        );
    }

    #[test]
    fn pkce_matches_rfc_7636_appendix_b() {
        assert_eq!(
            pkce_s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn base64url_is_unpadded() {
        assert_eq!(base64url(b""), "");
        assert_eq!(base64url(b"f"), "Zg");
        assert_eq!(base64url(b"fo"), "Zm8");
        assert_eq!(base64url(b"foo"), "Zm9v");
        assert_eq!(base64url(b"foob"), "Zm9vYg");
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
    }
}
