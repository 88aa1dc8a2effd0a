//! `POST /oauth2/token`: the authorization-code grant with PKCE (S256) and the refresh-token
//! grant, answering in the OAuth2 shapes (RFC 6749 §5.1 and §5.2), not the API's envelope.
//!
//! SHA-256 and unpadded base64url are implemented here (a few dozen lines, checked against the
//! FIPS 180-2 vectors and RFC 7636's example) rather than adding crates for them.

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::{RawJson, Shared, SharedState};
use crate::sim::{epoch_millis, lock};

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
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let sextet = |v: u32| char::from(ALPHABET.get((v & 63) as usize).copied().unwrap_or(b'A'));
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let byte = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let n = (byte(0) << 16) | (byte(1) << 8) | byte(2);
        for k in 0..=chunk.len() {
            out.push(sextet(n >> (18 - 6 * k)));
        }
    }
    out
}

const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

/// SHA-256 (FIPS 180-4). Every index below is into a fixed-size array with a constant loop
/// bound, so none can fail whatever the input.
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let mut msg = data.to_vec();
    let bit_len = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_be_bytes());

    for block in msg.chunks_exact(64) {
        let mut w = [0u32; 64];
        for (slot, word) in w.iter_mut().zip(block.chunks_exact(4)) {
            *slot = u32::from_be_bytes(word.try_into().unwrap_or([0; 4]));
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
        for (k, wi) in K.iter().zip(w.iter()) {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(*k)
                .wrapping_add(*wi);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            hh = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (state, v) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
            *state = state.wrapping_add(v);
        }
    }
    let mut out = [0u8; 32];
    for (chunk, word) in out.chunks_exact_mut(4).zip(h) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
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
