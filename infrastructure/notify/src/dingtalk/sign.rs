//! DingTalk's request signature for robots whose security setting is
//! "signature": `sign = base64(HMAC-SHA256(key = secret, timestamp + "\n" +
//! secret))`, sent URL-encoded as `&timestamp=…&sign=…` with the timestamp in
//! milliseconds. DingTalk refuses a timestamp more than an hour off.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use reqwest::Url;
use sha2::Sha256;

/// The signature of `timestamp_ms` with `secret`, base64 (not yet
/// URL-encoded).
pub(crate) fn sign(secret: &str, timestamp_ms: i64) -> String {
    let to_sign = format!("{timestamp_ms}\n{secret}");
    // HMAC takes keys of any length, so this never fails; an error would
    // only mean an empty signature, which DingTalk refuses (permanent 310000).
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(to_sign.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// `url` with `timestamp` and `sign` appended (form-URL-encoded, so `+`,
/// `/` and `=` of the base64 are escaped).
pub(crate) fn signed_url(url: &Url, secret: &str, timestamp_ms: i64) -> Url {
    let mut signed = url.clone();
    signed
        .query_pairs_mut()
        .append_pair("timestamp", &timestamp_ms.to_string())
        .append_pair("sign", &sign(secret, timestamp_ms));
    signed
}

#[cfg(test)]
mod tests {
    use super::*;

    // Computed independently of this code:
    //   printf '1700000000000\nSEC0123456789abcdef' \
    //     | openssl dgst -sha256 -hmac 'SEC0123456789abcdef' -binary | base64
    const SECRET: &str = "SEC0123456789abcdef";
    const EXPECTED: &str = "TSZbRFUuvaSQaRKUpF970OPCb2/LcQAP3wOvwZIzBZk=";

    #[test]
    fn signature_matches_a_known_vector() {
        assert_eq!(sign(SECRET, 1_700_000_000_000), EXPECTED);
        assert_ne!(sign(SECRET, 1_700_000_000_001), EXPECTED);
    }

    #[test]
    fn signed_url_appends_url_encoded_parameters() {
        let url = Url::parse("https://oapi.dingtalk.com/robot/send?access_token=abc").unwrap();
        let signed = signed_url(&url, SECRET, 1_700_000_000_000);
        assert_eq!(
            signed.as_str(),
            "https://oapi.dingtalk.com/robot/send?access_token=abc&timestamp=1700000000000\
             &sign=TSZbRFUuvaSQaRKUpF970OPCb2%2FLcQAP3wOvwZIzBZk%3D"
        );
    }
}
